package main

import (
	"os"
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

func TestUnsetEnvReferences(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/Corefile"
	content := "# {$IN_A_COMMENT} is fine\nexample.test:{$PORT} {\n    key k. {$SECRET} # {$ALSO_COMMENT}\n    forward . {%AD%} {$SET}\n}\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{"SET": "127.0.0.1", "SECRET": ""}
	err = unsetEnvReferences(path, f, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		t.Fatal("unset variables accepted")
	}
	for _, want := range []string{path + ":2: {$PORT} is not set", path + ":3: {$SECRET} is not set", path + ":4: {%AD%} is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, notWant := range []string{"IN_A_COMMENT", "ALSO_COMMENT", "{$SET}"} {
		if strings.Contains(err.Error(), notWant) {
			t.Errorf("error names %s:\n%v", notWant, err)
		}
	}
}
