package inventory

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// appendJSONRow appends e's listing object, newline included, to dst: the
// bytes json.Encoder writes for newClientRow(e, cat, conflict), built
// without a ClientRow and, for the usual row, without a heap allocation.
func appendJSONRow(dst []byte, e *ledger.ClientEntry, cat *catalog.Catalog, conflict func(guid.GUID) (host.Conflict, bool)) []byte {
	dst = append(dst, `{"cmid":"`...)
	dst = appendGUIDCell(dst, e.CMID)
	dst = append(dst, `","workstation":`...)
	dst = appendJSONText(dst, e.Workstation)
	dst = append(dst, `,"address":`...)
	if a, ok := sourceAddr(e.Source); ok {
		start := len(dst)
		dst = append(a.AppendTo(append(dst, '"')), '"')
		if !jsonPlain(dst[start+1 : len(dst)-1]) {
			dst = appendJSONText(dst[:start], a.String())
		}
	} else {
		dst = append(dst, `""`...)
	}
	dst = append(dst, `,"source":`...)
	dst = appendJSONText(dst, e.Source)
	app, product, edition := catalogNames(cat, e)
	dst = append(dst, `,"application":`...)
	dst = appendJSONText(dst, app)
	dst = append(dst, `,"application_id":"`...)
	dst = appendGUIDCell(dst, e.App)
	dst = append(dst, `","product":`...)
	dst = appendJSONText(dst, product)
	dst = append(dst, `,"counted_id":"`...)
	dst = appendGUIDCell(dst, e.CountedID)
	dst = append(dst, `","edition":`...)
	dst = appendJSONText(dst, edition)
	dst = append(dst, `,"sku":"`...)
	dst = appendGUIDCell(dst, e.SKU)
	dst = append(dst, `","first_request":`...)
	dst = appendJSONTime(dst, e.FirstSeen)
	dst = append(dst, `,"last_request":`...)
	dst = appendJSONTime(dst, e.LastSeen)
	dst = append(dst, `,"requests":`...)
	dst = strconv.AppendUint(dst, uint64(e.Requests), 10)
	dst = append(dst, `,"last_result":`...)
	if n := kms.HRESULT(e.LastResult).Name(); n != "" {
		dst = appendJSONString(dst, n)
	} else {
		dst = append(dst, '"')
		dst = append(appendHex32(dst, e.LastResult), '"')
	}
	dst = append(dst, `,"last_result_code":"`...)
	dst = appendHex32(dst, e.LastResult)
	dst = append(dst, `","license_state":`...)
	dst = appendJSONString(dst, host.LicenseStateName(e.LicenseStatus))
	dst = append(dst, `,"protocol":`...)
	dst = strconv.AppendInt(dst, int64(e.Protocol), 10)
	dst = append(dst, `,"state":"`...)
	dst = append(dst, clientState(e)...)
	dst = append(dst, '"')
	if e.Counted {
		if !e.LastCounted.IsZero() {
			dst = append(dst, `,"last_counted":`...)
			dst = appendJSONTime(dst, e.LastCounted)
		}
		if !e.CountedUntil.IsZero() {
			dst = append(dst, `,"counted_until":`...)
			dst = appendJSONTime(dst, e.CountedUntil)
		}
	}
	if conflict != nil {
		if c, ok := conflict(e.CMID); ok {
			if c.Names() {
				dst = append(dst, `,"cmid_conflict":"workstations"`...)
			} else {
				dst = append(dst, `,"cmid_conflict":"addresses"`...)
			}
			dst = appendJSONList(dst, `,"cmid_seen_as":`, c.Workstations)
			dst = appendJSONList(dst, `,"cmid_seen_from":`, c.Addresses)
		}
	}
	return append(dst, "}\n"...)
}

// appendJSONList appends key and l as a JSON array of escaped texts
// (appendJSONText), nothing when l is
// empty (omitempty).
func appendJSONList(dst []byte, key string, l []string) []byte {
	if len(l) == 0 {
		return dst
	}
	dst = append(dst, key...)
	dst = append(dst, '[')
	for i, s := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONText(dst, s)
	}
	return append(dst, ']')
}

// appendJSONTime appends t in UTC as time.Time's MarshalJSON does.
func appendJSONTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	start := len(dst)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	if y := t.UTC().Year(); y < 0 || y > 9999 || !jsonPlain(dst[start:]) {
		b, _ := t.UTC().MarshalJSON()
		return append(dst[:start-1], b...)
	}
	return append(dst, '"')
}

// jsonPlain reports whether b is written in a JSON string as it is by
// encoding/json: printable ASCII other than " \ < > &.
func jsonPlain(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendJSONString appends s quoted as encoding/json quotes it (HTML
// characters escaped).
func appendJSONString(dst []byte, s string) []byte {
	start := len(dst)
	dst = append(dst, '"')
	dst = append(dst, s...)
	if jsonPlain(dst[start+1:]) {
		return append(dst, '"')
	}
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst[:start], b...)
}

// appendJSONText appends s, text from a client or ledger.db, escaped by
// printable.Escape and quoted as encoding/json quotes it: the bytes
// json.Encoder writes for the listing's field.
func appendJSONText(dst []byte, s string) []byte {
	start := len(dst)
	dst = append(dst, '"')
	dst = append(dst, s...)
	if jsonPlain(dst[start+1:]) { // printable ASCII: Escape changes nothing
		return append(dst, '"')
	}
	b, _ := json.Marshal(printable.Escape(s)) // a string always marshals
	return append(dst[:start], b...)
}
