// Command coredns (bench build) is the kmsdns CoreDNS build plus two benchmark-only plugins:
// constant (build/bench/constant, the prepacked-answer baseline) and pprof (CPU profiles of a
// benchmark run). build/bench/bench-dns.sh builds it into a temporary directory; it is never
// installed. The plugin order is CoreDNS's own with vlmcs and then constant before tsig, as in
// build/coredns.
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/pprof"
	_ "github.com/coredns/coredns/plugin/root"
	_ "github.com/coredns/coredns/plugin/tsig"

	_ "github.com/kmsdns/kmsdns/build/bench/constant"
	_ "github.com/kmsdns/kmsdns/plugin"
)

// linked are the stock directives this binary registers.
var linked = []string{"root", "bind", "pprof", "errors", "log", "tsig", "file"}

func init() {
	var d []string
	for _, n := range dnsserver.Directives {
		if slices.Contains(linked, n) {
			d = append(d, n)
		}
	}
	i := slices.Index(d, "tsig")
	if len(d) != len(linked) || i < 0 {
		fmt.Fprintf(os.Stderr, "coredns: stock directive order lacks some of %v\n", linked)
		os.Exit(2)
	}
	if err := dnsserver.SetDirectives(slices.Insert(d, i, "vlmcs", "constant")); err != nil {
		fmt.Fprintln(os.Stderr, "coredns: plugin order:", err)
		os.Exit(2)
	}
}

func main() { coremain.Run() }
