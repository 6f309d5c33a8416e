package inventory

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzClientQuery: the filters and cursor of GET /clients (a query string
// from any admin client) are accepted or refused with an error, never a
// panic.
func FuzzClientQuery(f *testing.F) {
	for _, s := range []string{"", "since=7d&state=counted", "address=10.0.0.0/8&product=Server+2025", "since=2026-11-01",
		"after=AAAA", "since=99999999999d", "since=1600-01-01", "since=2262-04-12T00:00:00Z", "address=::1/129", "app=0ff1ce15-a989-479d-af46-f275c6370663", "since=-1h"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		if flt, err := ParseFilter(q, now); err == nil {
			if flt.since.After(now) && !strings.Contains(s, "since=") {
				t.Fatalf("%q: since %v without a since parameter", s, flt.since)
			}
			if !flt.since.IsZero() && (flt.since.Before(minSince) || flt.since.After(maxSince)) {
				t.Fatalf("%q: since %v outside what int64 nanoseconds hold", s, flt.since)
			}
		}
		if b, err := DecodeCursor(q.Get("after")); err == nil && b != nil && len(b) != 40 {
			t.Fatalf("%q: cursor of %d bytes accepted", s, len(b))
		}
	})
}
