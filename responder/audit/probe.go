package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
)

// ClientMachineID is the fixed client machine ID every audit request
// carries, so a host counts an audit as one client however often it runs
// (a KMS host counts distinct client machine IDs over 30 days).
var ClientMachineID = guid.MustParse("6b6d7364-6e73-4175-8469-74636d696400")

// Workstation is the workstation name audit requests carry; a host's
// event log (12290) shows it.
const Workstation = "kmsdns-audit"

// Probe is what connecting to one address showed.
type Probe struct {
	// Connected is set when the TCP connection was accepted.
	Connected bool `json:"connected"`
	// Bound is set when the DCE/RPC bind to the KMS interface was accepted.
	Bound bool `json:"bound"`
	// Error says what failed, empty when the bind succeeded.
	Error     string  `json:"error"`
	LatencyMS float64 `json:"latency_ms"`
}

// AppAnswer is one application's KMS answer from a host.
type AppAnswer struct {
	// Application is the catalog key: "windows", "office2010", "office".
	Application string `json:"application"`
	// CountedID is the counted ID of the request answered (or of the last
	// refused one).
	CountedID   string `json:"counted_id"`
	CountedName string `json:"counted_name"`
	// Status is "answered", "refused" (0xC004F042 for every counted ID
	// tried) or "error".
	Status  string `json:"status"`
	HRESULT string `json:"hresult"`
	EPID    string `json:"epid"`
	HwID    string `json:"hwid"`
	// Count is the host's current count for the application.
	Count uint32 `json:"count"`
	// HostKey decodes the ePID (nil when it could not be decoded).
	HostKey *HostKey `json:"host_key"`
	Error   string   `json:"error"`
}

// probeAll probes every address of every record, at most cfg.Parallel at
// once, and classifies each.
func probeAll(ctx context.Context, cfg Config, r *resolver, recs []found) []Finding {
	var findings []Finding
	for _, f := range recs {
		ap := cfg.approverFor(f.rec.Domain)
		approved := ap != nil && ap.Host(f.rec.Target, f.addrs)
		if len(f.addrs) == 0 {
			reason := "the target has no address"
			if f.addrErr != "" {
				reason += ": " + f.addrErr
			}
			findings = append(findings, Finding{Record: f.rec, Approved: approved, Class: ClassUnresolvable, Reason: reason, Apps: []AppAnswer{}})
			continue
		}
		for _, a := range f.addrs {
			fd := Finding{Record: f.rec, Address: a.String(), Approved: approved, Apps: []AppAnswer{}}
			if why := notProbed(a, f.rec.Port, cfg.Ports, cfg.ProbeLocal); why != "" {
				fd.Class, fd.Reason = ClassNotProbed, why
			}
			findings = append(findings, fd)
		}
	}
	// One probe per distinct (address, port, identify?) is enough: a host
	// listed under several names or domains is asked once.
	type job struct {
		addr     netip.AddrPort
		identify bool
	}
	type result struct {
		probe Probe
		apps  []AppAnswer
	}
	results := map[job]*result{}
	var jobs []job
	for _, f := range findings {
		if f.Address == "" || f.Class == ClassNotProbed {
			continue
		}
		j := job{netip.AddrPortFrom(netip.MustParseAddr(f.Address), f.Port), identifyHost(cfg.Identify, f.Approved)}
		if _, ok := results[j]; !ok {
			results[j] = &result{}
			jobs = append(jobs, j)
		}
	}
	prog := &progress{total: len(jobs), fn: cfg.Progress}
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		res := results[j]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res.probe, res.apps = probeHost(ctx, cfg, j.addr, j.identify)
			prog.tick()
		})
	}
	wg.Wait()
	for i := range findings {
		f := &findings[i]
		if f.Address == "" {
			continue
		}
		if f.Class == ClassNotProbed {
			f.Fix = advise(f, cfg.Catalog)
			continue
		}
		res := results[job{netip.AddrPortFrom(netip.MustParseAddr(f.Address), f.Port), identifyHost(cfg.Identify, f.Approved)}]
		f.Probe = res.probe
		if res.apps != nil {
			f.Apps = res.apps
		}
		classify(f, cfg.Catalog)
	}
	return findings
}

func identifyHost(mode Identify, approved bool) bool {
	switch mode {
	case IdentifyAll:
		return true
	case IdentifyNone:
		return false
	}
	return !approved
}

// probeHost connects to addr, binds to the KMS interface and, when
// identify is set, sends one KMS request per application.
func probeHost(ctx context.Context, cfg Config, addr netip.AddrPort, identify bool) (Probe, []AppAnswer) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	dial := func() (*dcerpc.Client, error) {
		return dcerpc.Dial(ctx, "tcp", addr.String(), dcerpc.ClientConfig{Timeout: cfg.Timeout})
	}
	c, err := dial()
	p := Probe{LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		p.Connected = !isDialError(err)
		p.Error = printable.Escape(probeError(err))
		return p, nil
	}
	p.Connected, p.Bound = true, true
	if !identify {
		c.Close()
		return p, nil
	}
	return p, identifyApps(ctx, c, dial, cfg.Catalog)
}

// isDialError reports whether err happened before the connection was
// accepted (refused, unreachable, timed out connecting).
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// probeError says in words why a connection or bind failed.
func probeError(err error) string {
	var (
		op  *net.OpError
		up  *dcerpc.UnexpectedPDUError
		pe  *dcerpc.ParseError
		ne  net.Error
		msg = err.Error()
	)
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		if ne, ok := op.Err.(net.Error); ok && ne.Timeout() {
			return "no answer to the TCP connection (host down, or a firewall drops it)"
		}
		if strings.Contains(op.Err.Error(), "refused") {
			return "connection refused (nothing listens on the port)"
		}
		return "cannot connect: " + op.Err.Error()
	case errors.As(err, &up):
		return fmt.Sprintf("the DCE/RPC bind was answered with %v, not bind_ack: the KMS interface is not offered", up.Got)
	case errors.Is(err, dcerpc.ErrNoSyntax):
		return "the DCE/RPC bind was accepted for no transfer syntax of the KMS interface"
	case errors.As(err, &pe):
		return "the port does not speak DCE/RPC: " + pe.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "the port accepted the connection but never answered the DCE/RPC bind"
	case strings.Contains(msg, "EOF") || strings.Contains(msg, "reset"):
		return "the port closed the connection at the DCE/RPC bind"
	}
	return msg
}

// identifyApps asks the host once per application (trying the counted IDs
// that cover the most host key groups first, until one is not refused).
func identifyApps(ctx context.Context, c *dcerpc.Client, dial func() (*dcerpc.Client, error), cat *catalog.Catalog) []AppAnswer {
	defer func() { c.Close() }()
	var out []AppAnswer
	for _, app := range cat.Applications() {
		ans := AppAnswer{Application: app.Key}
		for _, cid := range probeIDs(cat, app.ID) {
			req := kmsclient.NewRequest(kmsclient.Product{Name: cid.Name, AppID: app.ID, KMSID: cid.ID, SKUID: skuOf(cat, cid), Threshold: uint32(cid.Threshold)},
				6, ClientMachineID, Workstation, time.Now())
			ans.CountedID, ans.CountedName = cid.ID.String(), cid.Name
			o, err := kmsclient.Activate(ctx, c, req, nil)
			if err != nil && o == nil {
				// A transport failure breaks the association: one new one.
				c.Close()
				nc, derr := dial()
				if derr != nil {
					ans.Status, ans.Error = "error", printable.Escape(err.Error())
					return append(out, ans)
				}
				c = nc
				if o, err = kmsclient.Activate(ctx, c, req, nil); err != nil && o == nil {
					ans.Status, ans.Error = "error", printable.Escape(err.Error())
					break
				}
			}
			ans.HRESULT = o.Status.Error()
			if o.Status == kms.ErrKMSIDMismatch {
				ans.Status = "refused"
				continue
			}
			if o.Status != kms.OK {
				ans.Status = "error"
				break
			}
			ans.Status = "answered"
			ans.EPID = o.Response.EPID
			ans.HwID = hex.EncodeToString(o.Response.HwID[:])
			ans.Count = o.Response.CurrentCount
			if hk, err := DecodeEPID(cat, o.Response.EPID); err == nil {
				ans.HostKey = &hk
			} else {
				ans.Error = printable.Escape(err.Error())
			}
			break
		}
		out = append(out, ans)
	}
	return out
}

// probeIDs returns counted IDs of app to ask for, so that every host key
// group of the app covers at least one of them: greedily the ID covering
// the most groups not yet covered (ties: the later, newer ID).
func probeIDs(cat *catalog.Catalog, app guid.GUID) []*catalog.CountedID {
	uncovered := map[string]bool{}
	for _, g := range cat.Groups() {
		if g.AppID == app {
			uncovered[g.Name] = true
		}
	}
	var out []*catalog.CountedID
	for len(uncovered) > 0 {
		var best *catalog.CountedID
		bestN := 0
		for _, cid := range cat.CountedIDs() {
			if cid.AppID != app || cid.Refusable() {
				continue
			}
			n := 0
			for _, g := range cat.GroupsCovering(app, cid.ID) {
				if uncovered[g.Name] {
					n++
				}
			}
			if n > 0 && n >= bestN {
				best, bestN = cid, n
			}
		}
		if best == nil {
			break
		}
		for _, g := range cat.GroupsCovering(app, best.ID) {
			delete(uncovered, g.Name)
		}
		out = append(out, best)
	}
	return out
}

func skuOf(cat *catalog.Catalog, cid *catalog.CountedID) guid.GUID {
	if es := cat.EditionsOf(cid.ID); len(es) > 0 {
		return es[0].SKUID
	}
	return guid.GUID{}
}
