package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

func TestDirectives(t *testing.T) {
	d := dnsserver.Directives // set by init
	i := slices.Index(d, "vlmcs")
	if i < 0 || i+1 >= len(d) || d[i+1] != "tsig" {
		t.Fatalf("vlmcs is not immediately before tsig: %v", d)
	}
	for _, n := range []string{"acl", "cache", "hosts", "file", "forward"} {
		if slices.Index(d, n) < i {
			t.Errorf("%s runs before vlmcs: %v", n, d)
		}
	}
	if len(d) != len(linked)+1 {
		t.Errorf("%d directives, want the %d linked plus vlmcs: %v", len(d), len(linked), d)
	}
	// Every directive is a registered plugin (else a Corefile using it fails oddly).
	registered := map[string]bool{}
	for _, n := range caddy.ListPlugins()["others"] { // "dns.NAME" for the dns server type
		registered[strings.TrimPrefix(n, "dns.")] = true
	}
	for _, n := range d {
		if !registered[n] {
			t.Errorf("directive %q has no registered plugin", n)
		}
	}
	if _, err := directives([]string{"root", "vlmcs"}); err == nil {
		t.Error("a stock order lacking linked plugins was accepted")
	}
}
