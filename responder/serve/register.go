package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/publish"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// RegisterConfig is the DNS registration: one publisher per zone.
type RegisterConfig struct {
	// Publish holds the settings every zone shares; Zone, Target and
	// Logger are set per zone. No Addresses: the specific (not wildcard)
	// listen addresses are published.
	Publish publish.Config
	// Zones are the zones to register in and this host's name in each.
	Zones []Zone
	// KeyHint names where a TSIG key could come from, for the warning
	// logged when Publish.Key is nil.
	KeyHint string
	// Also is a second registration run with this one, with its own servers and signing:
	// an Active Directory zone by GSS-TSIG next to CoreDNS by TSIG.
	Also *RegisterConfig
}

// Zone is one zone to register in and this host's name (SRV target) in it.
type Zone struct {
	Zone, Target string
}

// registration keeps this responder registered in every configured zone at
// every configured DNS server: one publisher per zone.
type registration struct {
	zones []zoneRegistration
}

type zoneRegistration struct {
	zone, target string
	pub          *publish.Publisher
}

// newRegistration builds the publishers. The published addresses default to
// the listen addresses when those are specific.
func newRegistration(c RegisterConfig, lns []net.Listener, log *slog.Logger) (*registration, error) {
	base := c.Publish
	if len(base.Addresses) == 0 {
		for _, ln := range lns {
			ap := netip.MustParseAddrPort(ln.Addr().String())
			if !ap.Addr().IsUnspecified() {
				base.Addresses = append(base.Addresses, ap.Addr().Unmap())
			}
		}
	}
	if base.Key == nil && base.Sign == nil {
		log.Warn("DNS registration is configured without a TSIG key: the vlmcs plugin refuses unsigned updates "+
			"unless this host's network is listed with `unsigned` (over TCP); give "+c.KeyHint,
			"servers", base.Servers)
	}
	reg := &registration{}
	for _, z := range c.Zones {
		pc := base
		pc.Zone, pc.Target = z.Zone, z.Target
		pc.Logger = log // the publisher names server, zone and target on every line
		pub, err := publish.New(pc)
		if err != nil {
			return nil, fmt.Errorf("registration in %s: %w", z.Zone, err)
		}
		reg.zones = append(reg.zones, zoneRegistration{zone: z.Zone, target: z.Target, pub: pub})
	}
	if c.Also != nil {
		also, err := newRegistration(*c.Also, lns, log)
		if err != nil {
			return nil, err
		}
		reg.zones = append(reg.zones, also.zones...)
	}
	return reg, nil
}

// run keeps every zone registered until ctx ends.
func (r *registration) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, z := range r.zones {
		wg.Go(func() { _ = z.pub.Run(ctx) })
	}
	wg.Wait()
}

// withdraw deletes the records in every zone at every server, in parallel.
func (r *registration) withdraw(ctx context.Context) error {
	errs := make([]error, len(r.zones))
	var wg sync.WaitGroup
	for i, z := range r.zones {
		wg.Go(func() {
			if err := z.pub.Withdraw(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", z.zone, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *registration) suspend(reason string) {
	for _, z := range r.zones {
		z.pub.Suspend(reason)
	}
}

func (r *registration) resume() {
	for _, z := range r.zones {
		z.pub.Resume()
	}
}

// registered reports whether some zone is registered at some server.
func (r *registration) registered() bool {
	for _, z := range r.zones {
		for _, s := range z.pub.State().Servers {
			if s.Registered {
				return true
			}
		}
	}
	return false
}

// status lists the registration per zone and server for GET /status.
func (r *registration) status() []statusapi.Registration {
	var out []statusapi.Registration
	for _, z := range r.zones {
		ps := z.pub.State()
		for _, s := range ps.Servers {
			ri := statusapi.Registration{Server: s.Server, Zone: z.zone, Target: z.target, Registered: s.Registered, LastError: s.LastError, Repairs: s.Repairs, Refusals: s.Refusals}
			if s.GrantedLease > 0 {
				ri.Lease = s.GrantedLease.String()
			}
			if !s.LastSuccess.IsZero() {
				t := s.LastSuccess
				ri.LastSuccess = &t
			}
			if ps.Suspended {
				ri.Suspended = ps.Reason
			}
			out = append(out, ri)
		}
	}
	return out
}

// watchLedger withdraws the DNS registration while the ledger cannot record
// activations (disk full, unwritable), so clients go to other hosts, and
// registers again when it recovers.
func (r *registration) watchLedger(ctx context.Context, store *ledger.Ledger, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	suspended := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		healthy := store.Healthy()
		switch {
		case !healthy && !suspended:
			log.Error("ledger cannot record activations: withdrawing DNS registration")
			r.suspend("ledger cannot record activations")
			suspended = true
		case healthy && suspended:
			log.Info("ledger recovered: registering again")
			r.resume()
			suspended = false
		}
	}
}
