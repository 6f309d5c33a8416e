package inventory

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// oracleCSVRow is the reference encoding of a listing row: the ClientRow
// of the JSON listing, its CSV cells, written by encoding/csv.
func oracleCSVRow(e *ledger.ClientEntry, cat *catalog.Catalog, conflict func(guid.GUID) (host.Conflict, bool)) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	r := newClientRow(e, cat, conflict)
	w.Write(r.CSV())
	w.Flush()
	return b.Bytes()
}

// oracleField is the reference of appendCell: printable.CSVCell written by
// encoding/csv as the one field of a record.
func oracleField(s string) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{printable.CSVCell(s)})
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

// csvCellSeeds are cells of every class a spreadsheet or CSV reader cares
// about: controls, quotes, commas, line ends, ';', leading = + - @ tab CR
// and space, non-UTF-8, bidi overrides, Unicode spaces, and \. alone.
var csvCellSeeds = []string{"", "PC-01", "a,b", `say "hi"`, "line\nbreak", "cr\rhere", "=1+2", "+1", "-1", "@SUM(A1)",
	"\tx", "\rx", " lead", "trail ", "a;b", "=a;=b", "\x1b[31mred", "\xff\xfe", "\u202eevil", "\u00a0nbsp", "\u3000ideo",
	"\u2028sep", `\.`, `\`, `"`, ",", ";", "'quoted", "\x85next", "d\u00e9j\u00e0", "\U000e0001tag", "\x00nul"}

// TestAppendCellOracle: each cell class is written exactly as
// printable.CSVCell and encoding/csv write it.
func TestAppendCellOracle(t *testing.T) {
	for _, s := range csvCellSeeds {
		if got, want := string(appendCell(nil, s)), oracleField(s); got != want {
			t.Errorf("cell %q: got %q, want %q", s, got, want)
		}
	}
}

func fuzzEntry(ws, src string, app, counted, sku guid.GUID, first, last int64, requests, result, license uint32, protocol uint8, counted2 bool) ledger.ClientEntry {
	e := ledger.ClientEntry{Client: ledger.Client{CMID: guid.MustParse("3a1e5c07-0c8f-4bd0-9d1a-6b2f8e4c7d21"), App: app, CountedID: counted, SKU: sku,
		Workstation: ws, Source: src, Requests: requests, LastResult: result, LicenseStatus: license, Protocol: protocol}}
	if first != 0 {
		e.FirstSeen = time.Unix(0, first)
	}
	if last != 0 {
		e.LastSeen = time.Unix(0, last).In(time.FixedZone("X", 3600))
	}
	if counted2 {
		e.Counted = true
		e.LastCounted = e.LastSeen
		e.CountedUntil = time.Unix(0, last).Add(30 * 24 * time.Hour)
	}
	return e
}

// TestAppendCSVRowOracle: rows of known and unknown products, every
// state, with and without a machine-ID conflict, hostile workstation and
// source text, are byte for byte what the reference encoding writes.
func TestAppendCSVRowOracle(t *testing.T) {
	cat := catalog.Default()
	app := cat.Applications()[0].ID
	cid := cat.CountedIDs()[0].ID
	sku := cat.Editions()[0].SKUID
	other := guid.MustParse("00000000-0000-0000-0000-0000000000ff")
	now := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC).UnixNano()
	conflict := func(guid.GUID) (host.Conflict, bool) {
		return host.Conflict{Workstations: []string{"=PC1", "PC;2", "a,b", "\x1b"}, Addresses: []string{"10.0.0.1", " -x"}}, true
	}
	addrOnly := func(guid.GUID) (host.Conflict, bool) {
		return host.Conflict{Workstations: []string{"PC1"}, Addresses: []string{"10.0.0.1", "10.0.0.2"}}, true
	}
	for i, ws := range csvCellSeeds {
		for _, src := range []string{"10.0.0.5:50000", "[2001:db8::1]:1688", "[fe80::1%eth0]:1688", "[::ffff:10.1.2.3]:9", ws, "=x:1"} {
			for _, c := range []func(guid.GUID) (host.Conflict, bool){nil, conflict, addrOnly} {
				for _, res := range []uint32{uint32(kms.OK), 0xC004F042, 0x12345678} {
					e := fuzzEntry(ws, src, app, cid, sku, now-int64(i)*1e9, now, uint32(i), res, uint32(i%9), 6, i%2 == 0)
					if i%3 == 0 {
						e.App, e.CountedID, e.SKU = other, other, other
					}
					if got, want := appendCSVRow(nil, &e, cat, c), oracleCSVRow(&e, cat, c); !bytes.Equal(got, want) {
						t.Fatalf("workstation %q source %q:\n got %q\nwant %q", ws, src, got, want)
					}
				}
			}
		}
	}
}

// FuzzAppendCell: any text is one cell exactly as printable.CSVCell and
// encoding/csv write it.
func FuzzAppendCell(f *testing.F) {
	for _, s := range csvCellSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendCell([]byte("x,"), s)), "x,"+oracleField(s); got != want {
			t.Fatalf("cell %q: got %q, want %q", s, got, want)
		}
	})
}

// FuzzAppendCSVRow: a whole row from any stored workstation, source,
// times and codes is byte for byte the reference encoding.
func FuzzAppendCSVRow(f *testing.F) {
	for _, s := range csvCellSeeds {
		f.Add(s, "10.0.0.5:50000", int64(1764577800e9), int64(1764577900e9), uint32(3), uint32(0), uint32(1), uint8(6), true, uint8(0))
	}
	f.Add("PC", "=cmd|' /C calc'!A0", int64(-1), int64(1), uint32(0), uint32(0xC004F042), uint32(99), uint8(4), false, uint8(3))
	cat := catalog.Default()
	conflict := func(guid.GUID) (host.Conflict, bool) {
		return host.Conflict{Workstations: []string{"@a", "b;c"}, Addresses: []string{"\"q\""}}, true
	}
	f.Fuzz(func(t *testing.T, ws, src string, first, last int64, requests, result, license uint32, protocol uint8, counted bool, pick uint8) {
		app, cid, sku, c := fuzzPick(cat, pick, conflict)
		e := fuzzEntry(ws, src, app, cid, sku, first, last, requests, result, license, protocol, counted)
		if got, want := appendCSVRow(nil, &e, cat, c), oracleCSVRow(&e, cat, c); !bytes.Equal(got, want) {
			t.Fatalf("got  %q\nwant %q", got, want)
		}
	})
}

// fuzzPick chooses, by the bits of pick, a fuzzed row's application,
// counted ID and edition (the catalog's or unknown ones) and whether its
// client has conflicts.
func fuzzPick(cat *catalog.Catalog, pick uint8, conflict func(guid.GUID) (host.Conflict, bool)) (app, cid, sku guid.GUID, c func(guid.GUID) (host.Conflict, bool)) {
	app, cid, sku = guid.GUID{1}, guid.GUID{2}, guid.GUID{3}
	if apps := cat.Applications(); pick&1 != 0 {
		app = apps[int(pick)%len(apps)].ID
	}
	if cids := cat.CountedIDs(); pick&2 != 0 {
		cid = cids[int(pick)%len(cids)].ID
	}
	if eds := cat.Editions(); pick&4 != 0 {
		sku = eds[int(pick)%len(eds)].SKUID
	}
	if pick&8 != 0 {
		c = conflict
	}
	return app, cid, sku, c
}
