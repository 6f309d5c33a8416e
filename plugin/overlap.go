package vlmcs

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
)

// Server blocks that take a vlmcs zone's questions away. CoreDNS hands each question to the
// server block with the longest matching zone on the listener it came in on, so a block on
// the listener of a vlmcs block whose zone is at or below a zone of vlmcs (a conditional
// forward for a search domain inside the zone) answers every name under its zone,
// `_vlmcs._tcp.<that zone>` too, without vlmcs seeing the question. Such a Corefile is refused
// at startup unless that block carries vlmcs for the zone itself.

// vlmcsBlocksKey is the caddy instance storage key of the server blocks that carry vlmcs:
// the block's first config → its vlmcs zones and where the directive is.
type vlmcsBlocksKey struct{}

// overlapCheckedKey marks, in caddy instance storage, that checkOverlap ran for the load.
type overlapCheckedKey struct{}

// vlmcsBlock is one server block that carries vlmcs.
type vlmcsBlock struct {
	zones []string
	where string
}

// noteBlock records, during setup, that the block of c carries vlmcs for cfg's zones.
func noteBlock(c *caddy.Controller, cfg *config) {
	blocks, _ := c.Get(vlmcsBlocksKey{}).(map[*dnsserver.Config]vlmcsBlock)
	if blocks == nil {
		blocks = map[*dnsserver.Config]vlmcsBlock{}
		c.Set(vlmcsBlocksKey{}, blocks)
	}
	blocks[dnsserver.GetConfig(c)] = vlmcsBlock{zones: cfg.zones, where: cfg.where}
}

// checkOverlap refuses, once per Corefile load (from OnStartup, when every block's setup has
// run), a block on the listener of a vlmcs block (transport and port, bind addresses that
// overlap) whose zone is at or below a zone of that vlmcs block and that does not carry vlmcs
// for the zone itself.
func checkOverlap(c *caddy.Controller) error {
	if done, _ := c.Get(overlapCheckedKey{}).(bool); done {
		return nil
	}
	c.Set(overlapCheckedKey{}, true)
	blocks, _ := c.Get(vlmcsBlocksKey{}).(map[*dnsserver.Config]vlmcsBlock)
	configs, err := serverConfigs(c)
	if err != nil {
		return err
	}
	for _, vc := range configs {
		vb, ok := blocks[vc.first]
		if !ok {
			continue
		}
		for _, oc := range configs {
			if oc.first == vc.first || oc.cfg.Transport != vc.cfg.Transport || oc.cfg.Port != vc.cfg.Port || !bindsOverlap(oc.cfg.ListenHosts, vc.cfg.ListenHosts) {
				continue
			}
			for _, z := range vb.zones {
				if !dnsname.InZone(z, oc.cfg.Zone) {
					continue
				}
				if ob, ok := blocks[oc.first]; ok && slices.ContainsFunc(ob.zones, func(oz string) bool { return dnsname.InZone(oz, oc.cfg.Zone) }) {
					continue
				}
				return fmt.Errorf("%s: the server block %s://%s:%s (bind %s) serves %s, at or below the vlmcs zone %s of the block %s://%s:%s on the same listener, without vlmcs for it: CoreDNS would hand it every question under %s, _vlmcs._tcp names too, and vlmcs would never judge them; add a vlmcs directive for %s to that block, bind the blocks to other addresses, or remove it",
					vb.where, oc.cfg.Transport, oc.cfg.Zone, oc.cfg.Port, binds(oc.cfg.ListenHosts), oc.cfg.Zone, z, vc.cfg.Transport, vc.cfg.Zone, vc.cfg.Port, oc.cfg.Zone, z)
			}
		}
	}
	return nil
}

// binds writes a block's bind addresses ("" is every address).
func binds(hosts []string) string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h
		if h == "" {
			out[i] = "every address"
		}
	}
	return strings.Join(out, " ")
}

// bindsOverlap reports whether two blocks' bind addresses share one ("", 0.0.0.0 and :: bind
// every address).
func bindsOverlap(a, b []string) bool {
	every := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	for _, x := range a {
		for _, y := range b {
			if every(x) || every(y) || x == y {
				return true
			}
		}
	}
	return false
}

// serverConfig is one zone of one server block, with the block's first config.
type serverConfig struct {
	cfg, first *dnsserver.Config
}

// serverConfigs returns every zone config of the Corefile being loaded. CoreDNS keeps them in
// its unexported server-type context and offers no accessor, so they are read by reflection;
// a CoreDNS whose context has another shape is reported as an error rather than the check
// being skipped.
func serverConfigs(c *caddy.Controller) ([]serverConfig, error) {
	ctx := reflect.ValueOf(c.Context())
	if ctx.Kind() != reflect.Pointer || ctx.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("cannot read the server blocks of this CoreDNS build (context %T)", c.Context())
	}
	list := ctx.Elem().FieldByName("configs")
	if !list.IsValid() || list.Kind() != reflect.Slice || list.Type().Elem() != reflect.TypeFor[*dnsserver.Config]() {
		return nil, fmt.Errorf("cannot read the server blocks of this CoreDNS build (no configs list in %T)", c.Context())
	}
	out := make([]serverConfig, 0, list.Len())
	for i := range list.Len() {
		cfg := (*dnsserver.Config)(list.Index(i).UnsafePointer())
		first := cfg
		f := reflect.ValueOf(cfg).Elem().FieldByName("firstConfigInBlock")
		if !f.IsValid() || f.Type() != reflect.TypeFor[*dnsserver.Config]() {
			return nil, fmt.Errorf("cannot read the server blocks of this CoreDNS build (no firstConfigInBlock)")
		}
		if p := f.UnsafePointer(); p != nil {
			first = (*dnsserver.Config)(p)
		}
		out = append(out, serverConfig{cfg: cfg, first: first})
	}
	return out, nil
}
