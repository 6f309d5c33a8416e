package inventory

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// oracleJSONRow is the reference encoding of a JSON listing row: the
// ClientRow written by json.Encoder.
func oracleJSONRow(e *ledger.ClientEntry, cat *catalog.Catalog, conflict func(guid.GUID) (host.Conflict, bool)) []byte {
	var b bytes.Buffer
	r := newClientRow(e, cat, conflict)
	if err := json.NewEncoder(&b).Encode(&r); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// jsonSeeds adds what JSON escapes to the CSV cell classes: HTML
// characters, backslashes, U+2028.
var jsonSeeds = append([]string{"<b>&amp;", "AT&T", "a>b", "a<b", `C:\x`, "a\u2029b", "\x7f"}, csvCellSeeds...)

// TestAppendJSONRowOracle: rows of known and unknown products, every
// state, with and without a machine-ID conflict, hostile workstation and
// source text, are byte for byte what json.Encoder writes.
func TestAppendJSONRowOracle(t *testing.T) {
	cat := catalog.Default()
	app, cid, sku := cat.Applications()[0].ID, cat.CountedIDs()[0].ID, cat.Editions()[0].SKUID
	other := guid.MustParse("00000000-0000-0000-0000-0000000000ff")
	now := time.Date(2026, 12, 1, 8, 30, 0, 123456789, time.UTC).UnixNano()
	conflict := func(guid.GUID) (host.Conflict, bool) {
		return host.Conflict{Workstations: []string{"=PC1", "<PC2>", "a\"b", "\x1b"}, Addresses: []string{"10.0.0.1", "fe80::1%<x>"}}, true
	}
	addrOnly := func(guid.GUID) (host.Conflict, bool) {
		return host.Conflict{Workstations: []string{"PC1"}, Addresses: []string{"10.0.0.1", "10.0.0.2"}}, true
	}
	for i, ws := range jsonSeeds {
		for _, src := range []string{"10.0.0.5:50000", "[2001:db8::1]:1688", "[fe80::1%<eth0>]:1688", "[::ffff:10.1.2.3]:9", ws} {
			for _, c := range []func(guid.GUID) (host.Conflict, bool){nil, conflict, addrOnly} {
				for _, res := range []uint32{0, 0xC004F042, 0x12345678} {
					e := fuzzEntry(ws, src, app, cid, sku, now-int64(i)*1e9, now, uint32(i), res, uint32(i%9), 6, i%2 == 0)
					if i%3 == 0 {
						e.App, e.CountedID, e.SKU = other, other, other
					}
					if i%4 == 0 {
						e.FirstSeen = time.Time{}
					}
					if got, want := appendJSONRow(nil, &e, cat, c), oracleJSONRow(&e, cat, c); !bytes.Equal(got, want) {
						t.Fatalf("workstation %q source %q:\n got %s\nwant %s", ws, src, got, want)
					}
				}
			}
		}
	}
}

// FuzzAppendJSONRow: a whole row from any stored workstation, source,
// times and codes is byte for byte what json.Encoder writes.
func FuzzAppendJSONRow(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s, "10.0.0.5:50000", int64(1764577800e9), int64(1764577900e9), uint32(3), uint32(0), uint32(1), uint8(6), true, uint8(0))
	}
	f.Add("PC", "[fe80::1%\"]:1", int64(-1), int64(0), uint32(0), uint32(0xC004F042), uint32(99), uint8(4), false, uint8(15))
	cat := catalog.Default()
	conflict := func(guid.GUID) (host.Conflict, bool) {
		return host.Conflict{Workstations: []string{"@a", "b<c"}, Addresses: []string{"\"q\""}}, true
	}
	f.Fuzz(func(t *testing.T, ws, src string, first, last int64, requests, result, license uint32, protocol uint8, counted bool, pick uint8) {
		app, cid, sku, c := fuzzPick(cat, pick, conflict)
		e := fuzzEntry(ws, src, app, cid, sku, first, last, requests, result, license, protocol, counted)
		if got, want := appendJSONRow(nil, &e, cat, c), oracleJSONRow(&e, cat, c); !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}
