package admin

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
)

func TestClientText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/metrics", "/metrics"},
		{"/x\u009b31m\u202egnp.exe", `/x\u009b31m\u202egnp.exe`},
		{"a\x1b]0;t\x07", `a\x1b]0;t\x07`},
		{"\xff", `\xff`},
		{strings.Repeat("é", 150), strings.Repeat("é", 100) + "..."},
		{strings.Repeat("\u202e", 100), strings.Repeat(`\u202e`, 33) + "..."},
	} {
		if got := clientText(tc.in); got != tc.want {
			t.Errorf("clientText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRefusalLogsEscapeClientText: what a refused requester chose (Host,
// path) reaches the JSON log escaped, for the Host and the token refusals.
func TestRefusalLogsEscapeClientText(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	hf := newHostFilter("127.0.0.1:9688", nil, log, func() {})
	ta := newTokenAuth([]byte("0123456789abcdef0123"), log, func() {})
	for _, h := range []http.Handler{hf.wrap(next), ta.wrap(next)} {
		r := httptest.NewRequest(http.MethodGet, "http://x/x%C2%9B31m%E2%80%AEgnp.exe", nil)
		r.Host = "rebind\u009b.example"
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 refusal lines, got %q", buf.String())
	}
	for _, l := range lines {
		if !printable.Valid(l) || !strings.Contains(l, `\\u009b`) {
			t.Errorf("log line not escaped: %q", l)
		}
	}
}
