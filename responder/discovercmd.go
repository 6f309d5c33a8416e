package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/discover"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
)

// Discovery limits. A Windows client tries each host of the SRV answer
// once, moving on from an unreachable one after about 2 s of TCP back-off;
// it has no reason to spend minutes. 16 attempts cover a usual answer
// (several hosts, a few addresses each); 60 s bounds what a person or a
// script waits even when every host is blackholed at the default
// --timeout of 10 s.
const (
	defaultDiscoverBudget   = 60 * time.Second
	defaultDiscoverAttempts = 16
)

// discoverReport is activate's report plus how the host was found.
type discoverReport struct {
	activationReport
	Domain   string        `json:"domain"`
	Targets  []targetJSON  `json:"targets"`
	Attempts []attemptJSON `json:"attempts"`
	Stopped  string        `json:"stopped,omitempty"`
}

// targetJSON is one SRV target as discovery found it, in the order a client
// tries them.
type targetJSON struct {
	Name      string   `json:"name"`
	Port      uint16   `json:"port"`
	Priority  uint16   `json:"priority"`
	Weight    uint16   `json:"weight"`
	Addresses []string `json:"addresses"`
}

// attemptJSON is one try of one host address.
type attemptJSON struct {
	Target  string `json:"target"`
	Port    uint16 `json:"port"`
	Address string `json:"address,omitempty"`
	Served  bool   `json:"served"`
	HRESULT string `json:"hresult,omitempty"` // the host's refusal, e.g. 0xC004F042
	Error   string `json:"error,omitempty"`
}

func (a attemptJSON) String() string {
	where := fmt.Sprintf("%s:%d", a.Target, a.Port)
	if a.Address != "" {
		where += " (" + a.Address + ")"
	}
	if a.Served {
		return where + ": served"
	}
	return where + ": " + a.Error
}

func targetsJSON(ts []discover.Target) []targetJSON {
	out := make([]targetJSON, 0, len(ts))
	for _, t := range ts {
		tj := targetJSON{Name: t.Name, Port: t.Port, Priority: t.Priority, Weight: t.Weight, Addresses: []string{}}
		for _, a := range t.Addrs {
			tj.Addresses = append(tj.Addresses, a.String())
		}
		out = append(out, tj)
	}
	return out
}

func attemptsJSON(as []discover.Attempt) []attemptJSON {
	out := make([]attemptJSON, 0, len(as))
	for _, a := range as {
		aj := attemptJSON{Target: strings.TrimSuffix(a.Target.Name, "."), Port: a.Target.Port, Served: a.Err == nil}
		if a.Addr.IsValid() {
			aj.Address = a.Addr.String()
		}
		if a.Err != nil {
			aj.Error = a.Err.Error()
			var h kms.HRESULT
			if errors.As(a.Err, &h) {
				aj.HRESULT = fmt.Sprintf("0x%08X", uint32(h))
			}
		}
		out = append(out, aj)
	}
	return out
}

func (t targetJSON) String() string {
	return fmt.Sprintf("%s:%d (priority %d, weight %d, %v)", t.Name, t.Port, t.Priority, t.Weight, t.Addresses)
}

func runDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("discover", stderr)
	var f clientFlags
	dnsServer := fs.String("dns", "", "DNS server `HOST:PORT` to ask (as the client's resolver)")
	domain := fs.String("domain", "", "`DOMAIN` to search for _VLMCS._TCP records (the client's DNS suffix)")
	lookupOnly := fs.Bool("lookup-only", false, "find a host that binds to the KMS interface, but send no activation (nothing is counted)")
	total := fs.Duration("total-timeout", defaultDiscoverBudget, "time budget for the whole discovery: the SRV lookup and every host tried (0: none)")
	maxAttempts := fs.Int("max-attempts", defaultDiscoverAttempts, "most host addresses tried before giving up (0: no cap)")
	f.bind(fs)
	if help, err := parseFlags(fs, args); help {
		return exitOK, nil
	} else if err != nil {
		return exitUsage, err
	}
	if *dnsServer == "" || *domain == "" {
		return exitUsage, usagef("--dns HOST:PORT and --domain DOMAIN are required")
	}
	if *total < 0 || *maxAttempts < 0 {
		return exitUsage, usagef("--total-timeout and --max-attempts must not be negative (0: no limit)")
	}
	if *total > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, *total,
			fmt.Errorf("--total-timeout %s spent: %w", *total, context.DeadlineExceeded))
		defer cancel()
	}
	if *lookupOnly {
		return lookupOnlyDiscover(ctx, withDefaultPort(*dnsServer, "53"), *domain, f, discover.Limits{MaxAttempts: *maxAttempts}, stdout)
	}
	p, req, source, err := f.request()
	if err != nil {
		return exitUsage, err
	}
	rep := discoverReport{Domain: *domain}
	rep.Product, rep.Protocol, rep.CMID, rep.CMIDSource = p.Name, int(req.MajorVersion), req.ClientMachineID.String(), source

	lookupCtx, cancel := context.WithTimeout(ctx, f.timeout)
	targets, err := discover.Lookup(lookupCtx, withDefaultPort(*dnsServer, "53"), *domain)
	cancel()
	if err != nil {
		return rep.fail(stdout, f.jsonOut, err, f.cat, p)
	}
	ordered := discover.Order(targets, nil)
	rep.Targets = targetsJSON(ordered)
	type served struct {
		out    *kmsclient.Outcome
		syntax string
	}
	res, attempts, err := discover.Try(ctx, ordered, discover.Limits{MaxAttempts: *maxAttempts}, func(ctx context.Context, t discover.Target, addr netip.AddrPort) (served, error) {
		out, syntax, err := f.dialAndActivate(ctx, addr.String(), req)
		return served{out, syntax}, err
	})
	rep.Attempts = attemptsJSON(attempts)
	if err != nil && res.out == nil {
		return rep.fail(stdout, f.jsonOut, err, f.cat, p)
	}
	last := attempts[len(attempts)-1]
	server := fmt.Sprintf("%s (%s)", last.Target.Name, last.Addr)
	rep.activationReport = newReport(server, p, req, res.out, res.syntax)
	rep.noteCoveringGroups(f.cat, p, res.out.Verdict)
	rep.CMIDSource = source
	rep.print(stdout, f.jsonOut)
	return exitCodeFor(res.out.Verdict), nil
}

// fail reports a discovery that reached no serving host; the verdict is
// the Windows error code for what went wrong.
func (r discoverReport) fail(w io.Writer, asJSON bool, err error, cat *catalog.Catalog, p kmsclient.Product) (int, error) {
	code := kms.ErrNoKMSContacted
	var h kms.HRESULT
	if errors.As(err, &h) {
		code = h
	}
	r.Verdict = verdictText(code)
	r.HostStatus = code.Error()
	r.Error = err.Error()
	var te *discover.TryError
	if errors.As(err, &te) && te.Stopped != nil {
		r.Stopped = te.Stopped.Error()
	}
	r.noteCoveringGroups(cat, p, code)
	r.print(w, asJSON)
	return exitError, nil
}

func (r discoverReport) print(w io.Writer, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return
	}
	fmt.Fprintf(w, "Searched:             _VLMCS._TCP.%s\n", r.Domain)
	for i, t := range r.Targets {
		fmt.Fprintf(w, "  host %d:             %s\n", i+1, t)
	}
	for _, a := range r.Attempts {
		fmt.Fprintf(w, "  attempt:            %s\n", a)
	}
	r.activationReport.print(w, false)
}

// lookupReport is what discover --lookup-only found: the hosts in the order a
// client tries them, and the first that accepted a bind to the KMS interface.
type lookupReport struct {
	Domain   string        `json:"domain"`
	Targets  []targetJSON  `json:"targets"`
	Attempts []attemptJSON `json:"attempts"`
	Server   string        `json:"server,omitempty"`
	Syntax   string        `json:"transfer_syntax,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// lookupOnlyDiscover runs discovery up to the RPC bind: it shows which host a
// client would use without sending a request, so no host counts it.
func lookupOnlyDiscover(ctx context.Context, dnsServer, domain string, f clientFlags, limits discover.Limits, stdout io.Writer) (int, error) {
	rep := lookupReport{Domain: domain}
	lookupCtx, cancel := context.WithTimeout(ctx, f.timeout)
	targets, err := discover.Lookup(lookupCtx, dnsServer, domain)
	cancel()
	if err == nil {
		ordered := discover.Order(targets, nil)
		rep.Targets = targetsJSON(ordered)
		var attempts []discover.Attempt
		var syntax string
		syntax, attempts, err = discover.Try(ctx, ordered, limits, func(ctx context.Context, t discover.Target, addr netip.AddrPort) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			c, err := dcerpc.Dial(ctx, "tcp", addr.String(), dcerpc.ClientConfig{DisableNDR64: !f.ndr64, Timeout: f.timeout})
			if err != nil {
				return "", err
			}
			defer c.Close()
			return bindSyntaxes(c.BindInfo()), nil
		})
		rep.Attempts = attemptsJSON(attempts)
		if err == nil {
			last := attempts[len(attempts)-1]
			rep.Server, rep.Syntax = fmt.Sprintf("%s (%s)", last.Target.Name, last.Addr), syntax
		}
	}
	if err != nil {
		rep.Error = err.Error()
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprintf(stdout, "Searched:             _VLMCS._TCP.%s\n", rep.Domain)
		for i, t := range rep.Targets {
			fmt.Fprintf(stdout, "  host %d:             %s\n", i+1, t)
		}
		for _, a := range rep.Attempts {
			fmt.Fprintf(stdout, "  attempt:            %s\n", a)
		}
		if rep.Error != "" {
			fmt.Fprintf(stdout, "Error:                %s\n", rep.Error)
		} else {
			fmt.Fprintf(stdout, "KMS host:             %s accepted a bind (%s); no activation sent\n", rep.Server, rep.Syntax)
		}
	}
	if err != nil {
		return exitError, nil
	}
	return exitOK, nil
}

// bindSyntaxes names the transfer syntaxes a bind obtained.
func bindSyntaxes(b dcerpc.BindInfo) string {
	switch {
	case b.NDR32 && b.NDR64:
		return "NDR32 and NDR64"
	case b.NDR64:
		return "NDR64"
	}
	return "NDR32"
}
