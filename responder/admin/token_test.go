package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// TestTokenAuth: the comparison accepts only the exact bearer token.
func TestTokenAuth(t *testing.T) {
	tok := "0123456789abcdef0123456789abcdef"
	a := newTokenAuth([]byte(tok), nil, func() {})
	for h, want := range map[string]bool{
		"Bearer " + tok: true, "bearer " + tok: true, "Bearer " + tok + "x": false, "Bearer " + tok[:31]: false,
		"Basic " + tok: false, tok: false, "": false,
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/status", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if got := a.ok(r); got != want {
			t.Errorf("Authorization %q: %v, want %v", h, got, want)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:9688": true, "[::1]:9688": true, "localhost:9688": true,
		"0.0.0.0:9688": false, ":9688": false, "[::]:9688": false, "192.0.2.1:9688": false} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v", addr, got)
		}
	}
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
		_ = statusapi.CheckToken([]byte(h))
	})
}
