// Command coredns is the kmsdns custom CoreDNS build: stock CoreDNS (no fork) with the vlmcs
// plugin and a curated set of stock plugins that network teams put in front of Active
// Directory DNS.
//
// Plugin order (execution order) is CoreDNS's own, restricted to the linked plugins, with
// vlmcs inserted immediately before tsig. vlmcs must see every UPDATE, signed or not, to apply
// its rules and to log and count every refusal, bad signatures included; if tsig ran first it
// would answer NOTAUTH itself. vlmcs reads miekg/dns's TSIG verdict from the ResponseWriter
// (the server holds the secrets: vlmcs `key`/`keyfile`, or the tsig plugin's). Being before
// cache, vlmcs answers are never cached by CoreDNS's cache (their short TTL bounds downstream
// caches); in scrub zones vlmcs filters the (possibly cached) answer of the plugins after it
// on every query. acl and rewrite come after vlmcs, so they do not apply to vlmcs answers.
//
// Linked: root, bind, reload, ready, health, prometheus, errors, log, loadbalance, vlmcs,
// tsig, acl, transfer, cache, hosts, file, forward (transfer serves AXFR from file zones, as
// the Active Directory stand-in of `make run` and the audit tests do). Nothing else is imported, which keeps the build
// short and the binary small (see README.md, "Build").
//
// `-version` (and the start-up banner) shows the kmsdns version next to CoreDNS's:
//
//	CoreDNS-1.15.0 (kmsdns v0.1.0-4-g1a2b3c4d5e6f, commit 1a2b3c4d5e6f, 2026-12-01T10:00:00Z)
//	linux/amd64, go1.26.8,
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The curated stock plugins; each registers itself in init.
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/root"
	_ "github.com/coredns/coredns/plugin/transfer"
	_ "github.com/coredns/coredns/plugin/tsig"

	_ "github.com/kmsdns/kmsdns/plugin"
	"github.com/kmsdns/kmsdns/plugin/pkg/version"
)

// linked are the directives this binary registers (prometheus is the metrics package).
var linked = []string{
	"root", "bind", "reload", "ready", "health", "prometheus", "errors", "log",
	"loadbalance", "tsig", "acl", "transfer", "cache", "hosts", "file", "forward",
}

// directives returns CoreDNS's order restricted to the linked plugins, with vlmcs before tsig.
func directives(stock []string) ([]string, error) {
	var d []string
	for _, n := range stock {
		if slices.Contains(linked, n) {
			d = append(d, n)
		}
	}
	if len(d) != len(linked) {
		return nil, fmt.Errorf("stock directive order lacks some of %v", linked)
	}
	i := slices.Index(d, "tsig")
	return slices.Insert(d, i, "vlmcs"), nil
}

func init() {
	d, err := directives(dnsserver.Directives)
	if err == nil {
		err = dnsserver.SetDirectives(d)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "coredns: plugin order:", err)
		os.Exit(2)
	}
	// coremain prints "CoreDNS-" + AppVersion for -version and at start.
	caddy.AppVersion = appVersion(coremain.CoreVersion, version.Get())
	// and "OS/ARCH, GOVERSION, " + GitCommit on the next line: the commit
	// this binary was built from, so the line never ends in ", ".
	coremain.GitCommit = releaseCommit(version.Get())
}

// releaseCommit names the build's commit for CoreDNS's release line: the
// kmsdns commit (12 digits), or "devel" when the build has no stamp.
func releaseCommit(v version.Info) string {
	c := v.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if c == "" {
		return "devel"
	}
	return c
}

// appVersion is CoreDNS's version followed by the kmsdns build's.
func appVersion(core string, v version.Info) string {
	s := core + " (kmsdns " + v.Version
	if v.Commit != "" {
		c := v.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += ", commit " + c
	}
	if v.Date != "" {
		s += ", " + v.Date
	}
	return s + ")"
}

func main() { coremain.Run() }
