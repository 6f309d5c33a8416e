package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/kmsdns/kmsdns/responder/audit"
)

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("doctor", stderr)
	var f clientFlags
	var suffixes []string
	dnsServer := fs.String("dns", "", "the client's DNS server `HOST:PORT` (default: the first nameserver of --resolv-conf)")
	fs.Var(stringList{&suffixes}, "domain", "a `DOMAIN` of the client's DNS suffix search list, in order, repeatable (default: --resolv-conf's search list)")
	resolvConf := fs.String("resolv-conf", "/etc/resolv.conf", "resolv.conf `file` to read the DNS server and search list from when not given")
	clockOffset := fs.Duration("clock-offset", 0, "the client's clock minus this machine's (e.g. -6h for a client 6 hours behind)")
	f.bind(fs)
	if help, err := parseFlags(fs, args); help {
		return exitOK, nil
	} else if err != nil {
		return exitUsage, err
	}
	if *dnsServer == "" || len(suffixes) == 0 {
		data, err := os.ReadFile(*resolvConf)
		if err != nil {
			return exitUsage, usagef("give --dns and --domain, or a readable --resolv-conf: %v", err)
		}
		rc, err := audit.ParseResolvConf(data)
		if err != nil {
			return exitUsage, usagef("--resolv-conf %s: %v", *resolvConf, err)
		}
		if *dnsServer == "" {
			if len(rc.Nameservers) == 0 {
				return exitUsage, usagef("%s names no nameserver: give --dns HOST:PORT", *resolvConf)
			}
			*dnsServer = netip.AddrPortFrom(rc.Nameservers[0], 53).String()
		}
		if len(suffixes) == 0 {
			suffixes = rc.Search
		}
	}
	if _, err := audit.ServerAddr(*dnsServer); err != nil {
		return exitUsage, usagef("--dns: %v", err)
	}
	cat, err := loadCatalog(f.catalogFile)
	if err != nil {
		return exitUsage, usageError{err}
	}
	p, err := f.resolveProduct(cat)
	if err != nil {
		return exitUsage, err
	}
	cfg := audit.DoctorConfig{Server: *dnsServer, Suffixes: suffixes, Product: p, Protocol: p.Protocol,
		Workstation: f.workstation, ClockOffset: *clockOffset, Timeout: f.timeout, DisableNDR64: !f.ndr64}
	if cfg.Workstation == "" {
		cfg.Workstation, _ = os.Hostname()
	}
	if cfg.CMID, _, err = f.clientMachineID(); err != nil {
		return exitUsage, err
	}
	d, err := audit.Doctor(ctx, cfg)
	if err != nil {
		return exitError, err
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d)
	} else {
		printDiagnosis(stdout, d)
	}
	return exitCodeFor(d.Verdict()), nil
}

func printDiagnosis(w io.Writer, d *audit.Diagnosis) {
	fmt.Fprintf(w, "Client:    DNS server %s, suffix search list: %s\n", d.DNSServer, orNone(d.Suffixes))
	fmt.Fprintf(w, "Product:   %s\n", d.Product)
	for _, s := range d.Steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %-11s %s\n", mark, s.Step, s.Detail)
	}
	if d.Activated {
		fmt.Fprintf(w, "Result:    activated (count %d, needs %d)\n", d.Count, d.Required)
		return
	}
	fmt.Fprintf(w, "Result:    fails at %s: %s\n", d.FailedStep, d.Code)
	fmt.Fprintf(w, "Cause:     %s\n", d.Cause)
	fmt.Fprintf(w, "Fix:       %s\n", d.Fix)
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "(none)"
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSuffix(s, ".")
	}
	return strings.Join(out, ", ")
}
