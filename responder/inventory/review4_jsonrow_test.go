package inventory

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/catalog"
)

// TestReview4JSONRowStringsPrintable: the JSON listing escapes the stored
// workstation (printable.Escape) but writes the stored source, and the
// address parsed from it (an IPv6 zone is any text), as stored. A
// ledger.db whose record holds a source with a bidi override or a C1
// control (U+009B, the 8-bit CSI) puts that character raw into the JSON
// row (encoding/json escapes neither), where the CSV row has it escaped
// by printable.CSVCell. Rule: every text field of a listing row is
// escaped the same way in both formats (statusapi.ClientRow.Escape before
// encoding, or its equivalent in appendJSONRow).
func TestReview4JSONRowStringsPrintable(t *testing.T) {
	cat := catalog.Default()
	now := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC).UnixNano()
	for _, src := range []string{"[fe80::1%\u202eexe.txt]:1688", "10.0.0.5:1688\u009b31m", "\u202e10.0.0.5:1688"} {
		e := fuzzEntry("PC-01", src, cat.Applications()[0].ID, cat.CountedIDs()[0].ID, cat.Editions()[0].SKUID, now, now, 1, 0, 1, 6, true)
		var row map[string]any
		if err := json.Unmarshal(appendJSONRow(nil, &e, cat, nil), &row); err != nil {
			t.Fatal(err)
		}
		for k, v := range row {
			if s, ok := v.(string); ok && !printable.Valid(s) {
				t.Errorf("source %q: JSON field %q is %q, not printable", src, k, s)
			}
		}
	}
}
