package publish

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsexchange"
)

// DefaultCheckInterval is how often kms-responder serve checks, by default, that each DNS
// server still answers with its record (Config.CheckInterval).
const DefaultCheckInterval = 2 * time.Second

// maxCheckBackoff bounds how far checks spread out while re-registering does not bring the
// record back (a server that registers but does not serve this host, e.g. one whose probes
// cannot reach it): at most this many check intervals apart.
const maxCheckBackoff = 32

// present asks server for the SRV RRset at _vlmcs._tcp.<zone> (unsigned, UDP with a TCP
// retry when truncated) and reports whether it lists this host's target and port.
func (s *settings) present(ctx context.Context, server string) (bool, error) {
	build := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(s.service, dns.TypeSRV)
		m.RecursionDesired = false
		m.SetEdns0(dns.DefaultMsgSize, false)
		return m
	}
	src, explicit := s.sourceFor(server)
	rep, err := dnsexchange.Exchange(ctx, server, build(), dnsexchange.Options{
		Timeout: s.timeout, TCPOnly: s.tcpOnly, Source: src, SourceFallback: !explicit,
	})
	if err != nil {
		return false, err
	}
	r := rep.Msg
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return false, fmt.Errorf("%s: SRV query answered %s", server, rcodeName(r.Rcode))
	}
	for _, rr := range r.Answer {
		if srv, ok := rr.(*dns.SRV); ok && srv.Port == s.port && strings.EqualFold(dns.Fqdn(srv.Target), s.target) {
			return true, nil
		}
	}
	return false, nil
}

// freeMisses is how many re-registrations in a row are checked at the full rate before
// checks back off: a server restarted several times in a row (an upgrade of a cluster) must
// get this host back quickly each time.
const freeMisses = 3

// checkDelay returns the wait before the next check after misses re-registrations in a
// row that did not bring the record back: the check interval, doubled per miss beyond
// freeMisses, up to maxCheckBackoff intervals.
func checkDelay(every time.Duration, misses int) time.Duration {
	d := every
	for i := freeMisses; i < misses && d < every*maxCheckBackoff; i++ {
		d *= 2
	}
	return min(d, every*maxCheckBackoff)
}

// watch waits up to d for the next refresh of a registered server, checking every check
// interval that the server still answers with this host. It returns early, for the caller
// to register again at once, when the record is missing (a restarted server that lost its
// state) or when a Suspend, Resume or Withdraw wakes the loop.
func (p *Publisher) watch(ctx context.Context, sv *server, d time.Duration) {
	deadline := p.s.clock.Now().Add(d)
	for {
		p.mu.Lock()
		every := checkDelay(p.s.checkEvery, sv.misses)
		p.mu.Unlock()
		left := deadline.Sub(p.s.clock.Now())
		if left <= every {
			p.sleep(ctx, sv, left)
			return
		}
		if !p.sleep(ctx, sv, every) {
			return
		}
		ok, err := p.s.present(ctx, sv.addr)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// Unreachable or failing: the refresh, and its retries, deal with the server.
			p.s.log.Debug("DNS registration check failed", "server", sv.addr, "zone", p.s.zone, "target", p.s.target, "err", err)
			continue
		}
		p.mu.Lock()
		if ok {
			sv.misses = 0
			p.mu.Unlock()
			continue
		}
		sv.misses++
		sv.st.Repairs++
		misses := sv.misses
		p.mu.Unlock()
		p.s.log.Warn("DNS server no longer lists this host; registering again", "server", sv.addr, "zone", p.s.zone,
			"target", p.s.target, "misses_in_a_row", misses)
		return
	}
}

// sleep waits d (nothing when d <= 0) and reports whether it ran out rather than being
// cut short by ctx or a wake-up.
func (p *Publisher) sleep(ctx context.Context, sv *server, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := p.s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-sv.wake: // the caller steps at once, which acts on it
		return false
	case <-t.C():
		return true
	}
}
