package audit

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/dnsexchange"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/discover"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
)

// Doctor steps, in the order a Windows client takes them.
const (
	StepSuffix    = "suffix"      // a DNS suffix to search
	StepSRV       = "srv"         // _VLMCS._TCP.<suffix> SRV lookup
	StepAddress   = "address"     // the targets' addresses
	StepTCP       = "tcp"         // TCP connection to the target's port
	StepBind      = "rpc-bind"    // DCE/RPC bind to the KMS interface
	StepRequest   = "kms-request" // the KMS request for the product
	StepActivated = "activated"   // the client's verdict
)

// DoctorConfig is one client's view: its DNS server, suffix search list
// and the product it activates.
type DoctorConfig struct {
	Server   string
	Suffixes []string
	Product  kmsclient.Product
	Protocol int
	// CMID and Workstation go in the request. CMID defaults to the fixed
	// audit client ID (ClientMachineID), so repeated runs add at most one
	// client to a host's count; give the client's own to count it as itself.
	CMID        guid.GUID
	Workstation string
	// ClockOffset is added to this machine's clock to give the client's
	// (to check a client whose clock is known to differ).
	ClockOffset  time.Duration
	Timeout      time.Duration
	DisableNDR64 bool
	Catalog      *catalog.Catalog
}

// StepResult is one step's outcome.
type StepResult struct {
	Step   string `json:"step"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Diagnosis is Doctor's result. Its JSON form is the --json schema.
type Diagnosis struct {
	Schema    string       `json:"schema"`
	DNSServer string       `json:"dns_server"`
	Suffixes  []string     `json:"suffixes"`
	Product   string       `json:"product"`
	Steps     []StepResult `json:"steps"`
	// Activated is set when the client would be activated.
	Activated bool `json:"activated"`
	// FailedStep is the step that failed ("" when activated).
	FailedStep string `json:"failed_step"`
	// Code is the Windows error code a client reports for the failure.
	Code  string `json:"code"`
	Cause string `json:"cause"`
	Fix   string `json:"fix"`
	// Host is the KMS host that answered last ("name:port (address)").
	Host string `json:"host"`
	// Count and Required are the host's count and the product's threshold.
	Count    uint32 `json:"count"`
	Required uint32 `json:"required"`
	EPID     string `json:"epid"`
	// SkewSeconds is the measured clock difference (host minus client)
	// when the host refused the client's clock; Limit is the host's bound.
	SkewSeconds  float64 `json:"skew_seconds"`
	LimitSeconds float64 `json:"limit_seconds"`
	verdict      kms.HRESULT
}

// DoctorSchemaV1 is the current Diagnosis.Schema.
const DoctorSchemaV1 = "kmsdns-doctor/v1"

// Verdict returns the client's verdict: kms.OK when activated,
// kms.ErrNotEnoughCount below the threshold, else an error code.
func (d *Diagnosis) Verdict() kms.HRESULT { return d.verdict }

func (d *Diagnosis) step(name string, ok bool, format string, args ...any) {
	d.Steps = append(d.Steps, StepResult{Step: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

func (d *Diagnosis) fail(step string, code kms.HRESULT, cause, fix string) *Diagnosis {
	d.FailedStep, d.verdict, d.Code, d.Cause, d.Fix = step, code, code.Error(), cause, fix
	if n := len(d.Steps); n == 0 || d.Steps[n-1].Step != step || d.Steps[n-1].OK {
		d.step(step, false, "%s", cause)
	}
	return d
}

// Doctor walks a client's discovery and activation and stops at the first
// step that fails for every host, naming the cause and the fix.
func Doctor(ctx context.Context, cfg DoctorConfig) (*Diagnosis, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Catalog == nil {
		cfg.Catalog = catalog.Default()
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = 6
	}
	server, err := ServerAddr(cfg.Server)
	if err != nil {
		return nil, err
	}
	d := &Diagnosis{Schema: DoctorSchemaV1, DNSServer: server, Product: cfg.Product.Name, Steps: []StepResult{}, Suffixes: []string{},
		Required: cfg.Product.Threshold}
	for _, s := range cfg.Suffixes {
		if s = strings.TrimSpace(s); s != "" && s != "." {
			d.Suffixes = append(d.Suffixes, canonical(s))
		}
	}
	if len(d.Suffixes) == 0 {
		return d.fail(StepSuffix, 0x8007007B, "the client has no DNS suffix, so Windows sends no _VLMCS._TCP query at all",
			"give the client a DNS suffix (join the domain, set the primary DNS suffix or DHCP option 15), or name the domain to search with `slmgr /skms-domain DOMAIN` (or a host with `slmgr /skms HOST`)"), nil
	}
	d.step(StepSuffix, true, "searching %s", strings.Join(trimDots(d.Suffixes), ", "))

	// SRV: the first suffix that has records wins, as on Windows.
	r := &resolver{server: server, timeout: cfg.Timeout}
	var (
		targets  []discover.Target
		outcomes []string
		lastCode kms.HRESULT = kms.ErrDNSNameNotExist
	)
	for _, s := range d.Suffixes {
		name := Service + s
		ans, err := r.lookupSRV(ctx, name)
		switch {
		case err != nil && ans.trunc:
			return d.fail(StepSRV, 0x8007232A, fmt.Sprintf("the answer for %s was truncated over UDP and the retry over TCP failed: %v", name, err),
				"let the client reach the DNS server over TCP port 53 (a Windows client retries truncated answers over TCP), or publish fewer records"), nil
		case err != nil:
			return d.fail(StepSRV, 0x8007232A, fmt.Sprintf("no answer for %s: %v", name, err),
				"check that the client's DNS server "+server+" is reachable and answers (UDP and TCP 53)"), nil
		case ans.rcode == dns.RcodeNameError:
			outcomes = append(outcomes, name+": NXDOMAIN (the name does not exist, 0x8007232B)")
			lastCode = kms.ErrDNSNameNotExist
			continue
		case ans.rcode != dns.RcodeSuccess:
			return d.fail(StepSRV, 0x8007232A, fmt.Sprintf("%s: the DNS server answered %s", name, rcodeText(ans.rcode)),
				"fix the DNS server "+server+" (it fails for this name)"), nil
		}
		var ts []discover.Target
		for _, s := range ans.srvs {
			if s.Target == "." || s.Target == "" {
				continue
			}
			t := discover.Target{Name: canonical(s.Target), Port: s.Port, Priority: s.Priority, Weight: s.Weight, TTL: s.Hdr.Ttl}
			t.Addrs = dnsexchange.AppendAddrs(nil, ans.glue, s.Target, maxAddrs)
			ts = append(ts, t)
		}
		if len(ts) == 0 {
			outcomes = append(outcomes, name+": NODATA (the name has no SRV records, 0x8007251D)")
			lastCode = kms.ErrDNSNoRecords
			continue
		}
		via := ""
		if len(ans.aliases) > 0 {
			via = " via " + strings.Join(trimDots(ans.aliases), " -> ")
		}
		if ans.trunc {
			via += " (truncated over UDP, complete over TCP)"
		}
		d.step(StepSRV, true, "%s%s: %d host(s)", name, via, len(ts))
		targets = ts
		break
	}
	if targets == nil {
		return d.fail(StepSRV, lastCode, "no KMS host is published in any searched domain: "+strings.Join(outcomes, "; "),
			"publish _VLMCS._TCP SRV records in one of "+strings.Join(trimDots(d.Suffixes), ", ")+" (a KMS host registers itself where DNS lets it; `DnsDomainPublishList` adds domains; the vlmcs plugin publishes approved hosts), or point the client at the domain that has them with `slmgr /skms-domain DOMAIN`"), nil
	}

	// Addresses: glue, else A/AAAA through the same server.
	var noAddr []string
	for i := range targets {
		if len(targets[i].Addrs) == 0 {
			a, err := r.resolveAddrs(ctx, targets[i].Name)
			targets[i].Addrs = a
			if err != nil {
				noAddr = append(noAddr, trimDot(targets[i].Name)+" ("+err.Error()+")")
			}
		}
	}
	withAddr := 0
	for _, t := range targets {
		if len(t.Addrs) > 0 {
			withAddr++
		}
	}
	if withAddr == 0 {
		return d.fail(StepAddress, kms.ErrNoKMSContacted, "no SRV target has an address: "+strings.Join(noAddr, "; "),
			"register the KMS hosts' A/AAAA records, or delete SRV records whose hosts are gone (`kms-responder audit`)"), nil
	}
	d.step(StepAddress, true, "%d of %d target(s) have addresses", withAddr, len(targets))

	// Hosts in the client's order.
	reached := StepTCP
	var failures []string
	for _, t := range discover.Order(targets, nil) {
		for _, a := range t.Addrs {
			ap := netip.AddrPortFrom(a, t.Port)
			where := fmt.Sprintf("%s:%d (%s)", trimDot(t.Name), t.Port, a)
			stepReached, done, why := tryHost(ctx, cfg, d, ap, where)
			if done {
				return d, nil
			}
			failures = append(failures, where+": "+why)
			if stepReached != StepRequest { // a refusal is already a step
				d.step(stepReached, false, "%s: %s (a client tries the next host)", where, why)
			}
			if stepOrder(stepReached) > stepOrder(reached) {
				reached = stepReached
			}
			if stepReached == StepRequest {
				break // the host answered: its other addresses say the same
			}
		}
	}
	all := strings.Join(failures, "; ")
	switch reached {
	case StepTCP:
		return d.fail(StepTCP, 0x800706BA, "no KMS host accepts a TCP connection: "+all,
			"start the KMS service on the hosts and open TCP to them; records of hosts that are gone are stale: find and delete them with `kms-responder audit`"), nil
	case StepBind:
		return d.fail(StepBind, 0x800706BA, "the hosts that accept TCP are not KMS hosts (no DCE/RPC bind to the KMS interface): "+all,
			"the SRV records point at the wrong host or port: fix or delete them (`kms-responder audit`)"), nil
	}
	groups := cfg.Catalog.GroupsCovering(cfg.Product.AppID, cfg.Product.KMSID)
	var names []string
	for _, g := range groups {
		names = append(names, g.Name)
	}
	fix := "install a host key that covers the product on a KMS host"
	if len(names) > 0 {
		fix += " (one of: " + strings.Join(names, ", ") + ")"
	}
	return d.fail(StepRequest, kms.ErrKMSIDMismatch, "every KMS host refused "+cfg.Product.Name+" with 0xC004F042: their host key group does not cover it: "+all,
		fix+", or remove hosts that cannot serve it from DNS"), nil
}

func stepOrder(s string) int {
	for i, x := range []string{StepSuffix, StepSRV, StepAddress, StepTCP, StepBind, StepRequest, StepActivated} {
		if x == s {
			return i
		}
	}
	return -1
}

// tryHost takes one address through TCP, bind and the request. done is
// set when the diagnosis is final (activated, or a host verdict that ends
// the client's search); else step is how far it got and why says what
// failed there.
func tryHost(ctx context.Context, cfg DoctorConfig, d *Diagnosis, ap netip.AddrPort, where string) (step string, done bool, why string) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout*4)
	defer cancel()
	dial := func() (*dcerpc.Client, error) {
		return dcerpc.Dial(ctx, "tcp", ap.String(), dcerpc.ClientConfig{Timeout: cfg.Timeout, DisableNDR64: cfg.DisableNDR64})
	}
	c, err := dial()
	if err != nil {
		if isDialError(err) {
			return StepTCP, false, probeError(err)
		}
		return StepBind, false, probeError(err)
	}
	defer c.Close()
	d.step(StepTCP, true, "%s accepts TCP", where)
	d.step(StepBind, true, "%s binds to the KMS interface", where)
	d.Host = where
	cmid := cfg.CMID
	if cmid.IsNil() {
		cmid = ClientMachineID
	}
	clientNow := func() time.Time { return time.Now().Add(cfg.ClockOffset) }
	send := func(at time.Time) (*kmsclient.Outcome, error) {
		return kmsclient.Activate(ctx, c, kmsclient.NewRequest(cfg.Product, cfg.Protocol, cmid, cfg.Workstation, at), nil)
	}
	out, err := send(clientNow())
	if out == nil {
		return StepRequest, false, "the KMS request failed: " + err.Error()
	}
	switch out.Status {
	case kms.OK:
	case kms.ErrKMSIDMismatch:
		d.step(StepRequest, false, "%s refuses %s: 0xC004F042 (a client tries the next host)", where, cfg.Product.Name)
		return StepRequest, false, "0xC004F042 (its host key group does not cover " + cfg.Product.Name + ")"
	case kms.ErrInvalidTimestamp:
		skew, limit, ok := measureSkew(func(o time.Duration) bool {
			o2, _ := send(clientNow().Add(o))
			return o2 != nil && o2.Status != kms.ErrInvalidTimestamp
		})
		cause := where + " refuses the client's clock (0xC004F06C)"
		if !ok {
			cause += fmt.Sprintf(": the clocks differ by more than %s", (skewStep * maxSkewSteps).Round(time.Hour))
		} else {
			d.SkewSeconds, d.LimitSeconds = skew.Seconds(), limit.Seconds()
			dir := "behind"
			if skew < 0 {
				dir = "ahead of"
			}
			cause = fmt.Sprintf("%s: the client's clock is %s %s the host's (measured; the host accepts %s either way)",
				cause, skew.Abs().Round(time.Minute), dir, limit.Round(time.Minute))
		}
		d.fail(StepRequest, kms.ErrInvalidTimestamp, cause,
			"set the client's and the host's clocks right (w32tm /resync on Windows, NTP elsewhere); KMS compares UTC, so time zones do not matter")
		return StepRequest, true, ""
	default:
		d.fail(StepRequest, out.Status, fmt.Sprintf("%s refuses the request: %v", where, out.Status),
			"see the KMS host's event log (12290) for why it refuses this client")
		return StepRequest, true, ""
	}
	resp := out.Response
	d.EPID, d.Count = resp.EPID, resp.CurrentCount
	d.step(StepRequest, true, "%s answered: ePID %s, count %d", where, resp.EPID, resp.CurrentCount)
	if out.Verdict == kms.ErrNotEnoughCount {
		d.fail(StepActivated, kms.ErrNotEnoughCount,
			fmt.Sprintf("the host counts %d client(s); %s needs %d (0xC004F038)", resp.CurrentCount, cfg.Product.Name, cfg.Product.Threshold),
			fmt.Sprintf("wait until %d distinct machines have asked (25 for Windows client editions, 5 for Windows Server and Office; the client retries every activation interval); if the count stays low, cloned images share one client machine ID (generalize them with sysprep), or the clients are split across several hosts in DNS (`kms-responder audit`)", cfg.Product.Threshold))
		return StepActivated, true, ""
	}
	d.Activated, d.verdict = true, kms.OK
	d.step(StepActivated, true, "%s activated by %s (count %d, needs %d)", cfg.Product.Name, where, resp.CurrentCount, cfg.Product.Threshold)
	return StepActivated, true, ""
}

// maxSkewProbes bounds the requests measureSkew sends.
const maxSkewProbes = 64

// skewStep is measureSkew's search step: under twice the 4-hour window a
// Windows KMS host (and kms-responder by default) accepts, so no window
// of at least ±3.5 h is stepped over.
const skewStep = 7 * time.Hour

// maxSkewSteps bounds the search to ±skewStep*maxSkewSteps (about 5.8 days).
const maxSkewSteps = 20

// measureSkew finds how far the host's clock is from the client's, given
// accepts(o) telling whether the host takes a client time shifted by o: it
// accepts o when |o - skew| <= limit. It steps outward (±7 h, ±14 h, ...)
// for an accepted shift, then bisects both edges of the accepted window to
// a minute: skew is the window's middle, limit its half width. ok is false
// when no shift within about 6 days is accepted.
func measureSkew(accepts func(time.Duration) bool) (skew, limit time.Duration, ok bool) {
	n := 0
	try := func(o time.Duration) bool { n++; return accepts(o) }
	var in time.Duration
	found := false
	for k := 1; k <= maxSkewSteps && !found; k++ {
		for _, o := range []time.Duration{time.Duration(k) * skewStep, -time.Duration(k) * skewStep} {
			if try(o) {
				in, found = o, true
				break
			}
		}
	}
	if !found {
		return 0, 0, false
	}
	edge := func(dir time.Duration) (time.Duration, bool) {
		// good is accepted; find a refused bad beyond it, then bisect.
		good, width := in, time.Hour
		bad := good + dir*width
		for try(bad) {
			if n >= maxSkewProbes {
				return 0, false
			}
			good, width = bad, width*2
			bad = good + dir*width
		}
		for (bad-good).Abs() > time.Minute && n < maxSkewProbes {
			mid := good + (bad-good)/2
			if try(mid) {
				good = mid
			} else {
				bad = mid
			}
		}
		return good, true
	}
	lo, ok1 := edge(-1)
	hi, ok2 := edge(1)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	return (lo + hi) / 2, (hi - lo) / 2, true
}
