package inventory

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// TestSummarizer: with an injected time, activated clients whose last
// request is within the renewal plus retry interval renew on time, older
// ones stopped coming; those still counted are told when they leave.
func TestSummarizer(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	z := newSummarizer(now, 7*day+2*time.Hour)
	rows := []statusapi.ClientRow{
		{Product: "Windows", Address: "10.0.1.5", LastResult: "S_OK", State: statusapi.StateCounted, LastRequest: now.Add(-day), CountedUntil: now.Add(29 * day)},
		{Product: "Windows", Address: "10.0.1.6", LastResult: "S_OK", State: statusapi.StateCounted, LastRequest: now.Add(-25 * day), CountedUntil: now.Add(5 * day), CMIDConflict: "workstations"},
		{Product: "Windows", Address: "10.0.2.6", LastResult: "S_OK", State: statusapi.StateCounted, LastRequest: now.Add(-10 * day), CountedUntil: now.Add(20 * day)},
		{Product: "Office", Address: "2001:db8::1", LastResult: "S_OK", State: statusapi.StateExpired, LastRequest: now.Add(-40 * day)},
		{Product: "", CountedID: "x", Address: "2001:db8::2", LastResult: "SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH", State: statusapi.StateRefused, LastRequest: now},
	}
	for i := range rows {
		z.add(&rows[i])
	}
	s := z.summary()
	if s.Clients != 5 || s.Counted != 3 || s.Expired != 1 || s.Refused != 1 {
		t.Fatalf("states %+v", s)
	}
	if s.RenewingOnTime != 1 || s.StoppedComing != 3 || s.StoppedCounted != 2 || s.Leaving7d != 1 {
		t.Fatalf("renewal: on time %d, stopped %d, still counted %d, leaving 7d %d", s.RenewingOnTime, s.StoppedComing, s.StoppedCounted, s.Leaving7d)
	}
	if !s.FirstLeaving.Equal(now.Add(5*day)) || !s.LastLeaving.Equal(now.Add(20*day)) || s.Conflicts != 1 {
		t.Fatalf("leaving %v..%v conflicts %d", s.FirstLeaving, s.LastLeaving, s.Conflicts)
	}
	if len(s.Products) != 3 || s.Products[0].Name != "Windows" || s.Products[0].Clients != 3 || s.Products[0].Counted != 3 {
		t.Fatalf("products %+v", s.Products)
	}
	if s.NetworksTotal != 3 || s.Networks[0].Name != "10.0.1.0/24" || s.Networks[0].Clients != 2 || s.Networks[1].Name != "2001:db8::/64" {
		t.Fatalf("networks %+v", s.Networks)
	}
	if s.OnTimeWindow != "7d2h" {
		t.Fatalf("on time window %q", s.OnTimeWindow)
	}
}

// TestSummarizerBounds: a flood of distinct networks and unknown products
// (client-chosen values) stays within the tally bounds.
func TestSummarizerBounds(t *testing.T) {
	z := newSummarizer(time.Now(), time.Hour)
	for i := range 70000 {
		r := statusapi.ClientRow{CountedID: strings.Repeat("x", i%1000), Address: "10." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255) + ".1", LastResult: "S_OK", State: statusapi.StateExpired}
		z.add(&r)
	}
	if len(z.products) > summaryMaxProducts || len(z.networks) > summaryMaxNetworks || z.s.OtherClients == 0 {
		t.Fatalf("%d products, %d networks, %d other", len(z.products), len(z.networks), z.s.OtherClients)
	}
	if s := z.summary(); len(s.Networks) != summaryTopNetworks || s.NetworksTotal != summaryMaxNetworks {
		t.Fatalf("listed %d of %d networks", len(s.Networks), s.NetworksTotal)
	}
}

func TestParseClientFilter(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query string
		want  time.Time
		err   string
	}{
		{"since=7d", now.Add(-7 * 24 * time.Hour), ""},
		{"since=36h", now.Add(-36 * time.Hour), ""},
		{"since=2026-11-01", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), ""},
		{"since=yesterday", time.Time{}, "neither a duration"},
		{"since=-5d", time.Time{}, "neither a duration"},
		// int64 nanoseconds end in 1677 and 2262: clamped, never wrapped.
		{"since=1600-01-01", time.Unix(0, math.MinInt64).UTC(), ""},
		{"since=0001-01-01T00:00:00Z", time.Unix(0, math.MinInt64).UTC(), ""},
		{"since=2262-04-12T00:00:00Z", time.Unix(0, math.MaxInt64).UTC(), ""},
		{"since=9999-12-31", time.Unix(0, math.MaxInt64).UTC(), ""},
		{"since=2262-04-11T23:47:16Z", time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC), ""},
		{"state=counted&address=10.0.0.0/8", time.Time{}, ""},
		{"state=gone", time.Time{}, "not counted, expired or refused"},
		{"address=10.0.0.0/33", time.Time{}, "address"},
		{"product=" + strings.Repeat("a", 300), time.Time{}, "longer than 256"},
	} {
		q, _ := url.ParseQuery(tc.query)
		f, err := ParseFilter(q, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.query, err, tc.err)
			}
			continue
		}
		if err != nil || !f.since.Equal(tc.want) {
			t.Errorf("%s: since %v err %v, want %v", tc.query, f.since, err, tc.want)
		}
	}
	if _, err := DecodeCursor("AAAA"); err == nil {
		t.Error("a 3-byte cursor was accepted")
	}
}
