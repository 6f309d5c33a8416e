package inventory

import (
	"encoding/hex"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// appendCSVRow appends e's CSV record, newline included, to dst: the bytes
// encoding/csv writes for newClientRow(e, cat, conflict).CSV(), built
// without a ClientRow and, for the usual row, without a heap allocation.
func appendCSVRow(dst []byte, e *ledger.ClientEntry, cat *catalog.Catalog, conflict func(guid.GUID) (host.Conflict, bool)) []byte {
	dst = appendGUIDCell(dst, e.CMID)
	dst = append(dst, ',')
	start := len(dst)
	dst = finishTextCell(append(dst, e.Workstation...), start)
	dst = append(dst, ',')
	start = len(dst)
	if a, ok := sourceAddr(e.Source); ok {
		dst = a.AppendTo(dst) // an IPv6 zone is any text
	}
	dst = finishTextCell(dst, start)
	dst = append(dst, ',')
	start = len(dst)
	dst = finishTextCell(append(dst, e.Source...), start)
	dst = append(dst, ',')
	app, product, edition := catalogNames(cat, e)
	start = len(dst)
	dst = finishTextCell(append(dst, app...), start)
	dst = append(dst, ',')
	dst = appendGUIDCell(dst, e.App)
	dst = append(dst, ',')
	start = len(dst)
	dst = finishTextCell(append(dst, product...), start)
	dst = append(dst, ',')
	dst = appendGUIDCell(dst, e.CountedID)
	dst = append(dst, ',')
	start = len(dst)
	dst = finishTextCell(append(dst, edition...), start)
	dst = append(dst, ',')
	dst = appendGUIDCell(dst, e.SKU)
	dst = append(dst, ',')
	dst = appendTimeCell(dst, e.FirstSeen)
	dst = append(dst, ',')
	dst = appendTimeCell(dst, e.LastSeen)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, uint64(e.Requests), 10)
	dst = append(dst, ',')
	if n := kms.HRESULT(e.LastResult).Name(); n != "" {
		dst = appendCell(dst, n)
	} else {
		dst = appendHex32(dst, e.LastResult)
	}
	dst = append(dst, ',')
	dst = appendHex32(dst, e.LastResult)
	dst = append(dst, ',')
	dst = appendCell(dst, host.LicenseStateName(e.LicenseStatus))
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(e.Protocol), 10)
	dst = append(dst, ',')
	dst = append(dst, clientState(e)...)
	dst = append(dst, ',')
	if e.Counted {
		dst = appendTimeCell(dst, e.LastCounted)
		dst = append(dst, ',')
		dst = appendTimeCell(dst, e.CountedUntil)
	} else {
		dst = append(dst, ',')
	}
	dst = append(dst, ',')
	if conflict != nil {
		if c, ok := conflict(e.CMID); ok {
			if c.Names() {
				dst = append(dst, "workstations"...)
			} else {
				dst = append(dst, "addresses"...)
			}
			dst = append(dst, ',')
			dst = appendField(dst, printable.CSVList(escapeAll(c.Workstations)))
			dst = append(dst, ',')
			dst = appendField(dst, printable.CSVList(escapeAll(c.Addresses)))
			return append(dst, '\n')
		}
	}
	return append(dst, ",,\n"...)
}

// plainCell reports whether b is its own CSV cell: printable ASCII that
// printable.CSVCell leaves as it is (no ';', no leading = + - @) and
// encoding/csv writes unquoted (no ',' or '"', no leading space, not \.).
func plainCell(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	switch b[0] {
	case '=', '+', '-', '@', ' ':
		return false
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == ',' || c == '"' || c == ';' {
			return false
		}
	}
	return len(b) != 2 || b[0] != '\\' || b[1] != '.'
}

// finishCell makes the text appended to dst since start a CSV cell:
// unchanged when plain, else printable.CSVCell of it, quoted as
// encoding/csv quotes.
func finishCell(dst []byte, start int) []byte {
	if plainCell(dst[start:]) {
		return dst
	}
	return appendField(dst[:start], printable.CSVCell(string(dst[start:])))
}

// finishTextCell is finishCell for text from a client, ledger.db or the
// catalog, which the listing escapes (printable.Escape) before CSVCell
// sees it: every format shows the same escaped text, and a leading tab is
// \x09, not a formula.
func finishTextCell(dst []byte, start int) []byte {
	if plainCell(dst[start:]) {
		return dst
	}
	return appendField(dst[:start], printable.CSVCell(printable.Escape(string(dst[start:]))))
}

// appendCell appends the cell of s (see finishCell).
func appendCell(dst []byte, s string) []byte {
	start := len(dst)
	return finishCell(append(dst, s...), start)
}

func appendGUIDCell(dst []byte, g guid.GUID) []byte {
	c := g.Canonical()
	dst = hex.AppendEncode(dst, c[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, c[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, c[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, c[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, c[10:16])
}

// appendTimeCell appends t in UTC as RFC 3339, nothing for the zero time.
func appendTimeCell(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return dst
	}
	start := len(dst)
	return finishCell(t.UTC().AppendFormat(dst, time.RFC3339), start)
}

// appendHex32 appends v as 0x%08X.
func appendHex32(dst []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	dst = append(dst, '0', 'x')
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, digits[v>>uint(shift)&0xf])
	}
	return dst
}

// appendField appends field as encoding/csv's Writer (comma ',', LF line
// ends) writes it: quoted, with quotes doubled, when it is \., holds a
// comma, quote, CR or LF, or begins with a space character.
func appendField(dst []byte, field string) []byte {
	if !fieldNeedsQuotes(field) {
		return append(dst, field...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(field); i++ {
		if field[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, field[i])
	}
	return append(dst, '"')
}

func fieldNeedsQuotes(field string) bool {
	if field == "" {
		return false
	}
	if field == `\.` {
		return true
	}
	for i := 0; i < len(field); i++ {
		switch field[i] {
		case '\n', '\r', '"', ',':
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r)
}

// catalogNames returns the catalog's names of e's application, counted ID
// (product) and edition, each empty when the catalog does not know it.
func catalogNames(cat *catalog.Catalog, e *ledger.ClientEntry) (app, product, edition string) {
	if a, ok := cat.Application(e.App); ok {
		app = a.Name
	}
	if c, ok := cat.CountedID(e.CountedID); ok {
		product = c.Name
	}
	if ed, ok := cat.EditionBySKU(e.SKU); ok {
		edition = ed.Name
	}
	return app, product, edition
}
