package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/publish"
)

// registration keeps this responder registered in every configured zone at
// every configured DNS server: one publisher per zone.
type registration struct {
	zones []zoneRegistration
}

type zoneRegistration struct {
	zone, target string
	pub          *publish.Publisher
}

// tsigKeyEnv names the environment variable that may hold the TSIG key
// (ALG:NAME:BASE64SECRET) when the config names neither a key nor a key file.
const tsigKeyEnv = "KMS_RESPONDER_TSIG_KEY"

// newRegistration builds the publishers. The published addresses default to
// the listen addresses when those are specific.
func newRegistration(c *serveConfig, lns []net.Listener, log *slog.Logger) (*registration, error) {
	r := c.Register
	base := publish.Config{
		Servers:  r.Servers,
		Port:     uint16(r.Port),
		Priority: uint16(r.Priority),
		Weight:   uint16(r.Weight),
		TTL:      uint32(r.TTL),
		Lease:    time.Duration(r.Lease),

		CheckInterval: time.Duration(r.CheckInterval),
	}
	for _, a := range r.Addresses {
		base.Addresses = append(base.Addresses, netip.MustParseAddr(a))
	}
	if len(base.Addresses) == 0 {
		for _, ln := range lns {
			ap := netip.MustParseAddrPort(ln.Addr().String())
			if !ap.Addr().IsUnspecified() {
				base.Addresses = append(base.Addresses, ap.Addr().Unmap())
			}
		}
	}
	key, err := c.tsigKey()
	if err != nil {
		return nil, err
	}
	base.Key = key
	if r.GSS.On {
		r.GSS.apply(&base)
	} else if key == nil {
		log.Warn("DNS registration is configured without a TSIG key: the vlmcs plugin refuses unsigned updates "+
			"unless this host's network is listed with `unsigned` (over TCP); give --tsig-key-file (or $"+tsigKeyEnv+")",
			"servers", r.Servers)
	}
	reg := &registration{}
	for _, zone := range r.Zones {
		target, err := targetIn(r.Target, zone, len(r.Zones))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.where("register.target", "target"), err)
		}
		pc := base
		pc.Zone, pc.Target = zone, target
		pc.Logger = log // the publisher names server, zone and target on every line
		pub, err := publish.New(pc)
		if err != nil {
			return nil, fmt.Errorf("registration in %s: %w", zone, err)
		}
		reg.zones = append(reg.zones, zoneRegistration{zone: zone, target: target, pub: pub})
	}
	return reg, nil
}

// targetIn names this host inside zone: a single label ("kms1") is placed
// in every zone; a full name must lie inside the one configured zone.
func targetIn(target, zone string, zones int) (string, error) {
	t := strings.TrimSuffix(target, ".")
	if !strings.Contains(t, ".") {
		return t + "." + strings.TrimSuffix(zone, ".") + ".", nil
	}
	if zones > 1 {
		return "", fmt.Errorf("with several zones give the target as a host label (e.g. kms1), not %q", target)
	}
	return t + ".", nil
}

// tsigKey reads the registration key from the config file's tsig_key, the
// key file, or $KMS_RESPONDER_TSIG_KEY — never from a command-line value,
// which `ps` would show. Nil means unsigned updates.
func (c *serveConfig) tsigKey() (*tsigkey.Key, error) {
	r := c.Register
	var (
		k   tsigkey.Key
		err error
	)
	switch {
	case r.TSIGKey != "":
		if k, err = tsigkey.ParseSpec(r.TSIGKey); err != nil {
			return nil, fmt.Errorf("%s: %w", c.where("register.tsig_key", "tsig-key-file"), err)
		}
	case r.TSIGKeyFile != "":
		keys, err := tsigkey.ReadFile(r.TSIGKeyFile)
		if err == nil && len(keys) != 1 {
			err = fmt.Errorf("%s holds %d keys; the responder registers with one", r.TSIGKeyFile, len(keys))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.where("register.tsig_key_file", "tsig-key-file"), err)
		}
		k = keys[0]
	case os.Getenv(tsigKeyEnv) != "":
		if k, err = tsigkey.ParseSpec(os.Getenv(tsigKeyEnv)); err != nil {
			return nil, fmt.Errorf("$%s: %w", tsigKeyEnv, err)
		}
	default:
		return nil, nil
	}
	return &k, nil
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
func (r *registration) status() []registrationInfo {
	var out []registrationInfo
	for _, z := range r.zones {
		ps := z.pub.State()
		for _, s := range ps.Servers {
			ri := registrationInfo{Server: s.Server, Zone: z.zone, Target: z.target, Registered: s.Registered, LastError: s.LastError, Repairs: s.Repairs, Refusals: s.Refusals}
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
