package main

import (
	"io"
	"net/http"
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
		"after=AAAA", "since=99999999999d", "address=::1/129", "app=0ff1ce15-a989-479d-af46-f275c6370663", "since=-1h"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		if flt, err := parseClientFilter(q, now); err == nil && flt.since.After(now) && !strings.Contains(s, "since=") {
			t.Fatalf("%q: since %v without a since parameter", s, flt.since)
		}
		if b, err := decodeCursor(q.Get("after")); err == nil && b != nil && len(b) != 40 {
			t.Fatalf("%q: cursor of %d bytes accepted", s, len(b))
		}
	})
}

// FuzzClientListing: the command reads GET /clients from whatever answers
// at --admin; a malformed or hostile document is an error, never a panic.
func FuzzClientListing(f *testing.F) {
	for _, s := range []string{`{"clients": [` + "\n" + `{"cmid":"x","workstation":"pc"}` + "\n" + `],` + "\n" + `"next": "abc"}`,
		`{"clients": []}`, `{"clients": [`, `[]`, `{"clients": [1,2]}`, `{"clients": [], "error": "boom"}`, `{"x":1}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = printClientTable(io.Discard, strings.NewReader(string(b)), false)
		_, _ = printClientTable(io.Discard, strings.NewReader(string(b)), true)
	})
}

// FuzzAdminAuthorization: any Authorization header is compared without a
// panic, and only the exact token passes.
func FuzzAdminAuthorization(f *testing.F) {
	tok := "0123456789abcdef0123456789abcdef"
	for _, s := range []string{"Bearer " + tok, "bearer " + tok, "Bearer", "Basic x", "", "Bearer  " + tok, "Bearer " + tok + " "} {
		f.Add(s)
	}
	a := newTokenAuth([]byte(tok), nil, func() {})
	f.Fuzz(func(t *testing.T, h string) {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/clients", nil)
		r.Header["Authorization"] = []string{h}
		if a.ok(r) {
			scheme, rest, _ := strings.Cut(h, " ")
			if !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(rest) != tok {
				t.Fatalf("%q accepted", h)
			}
		}
		_ = checkToken([]byte(h))
	})
}
