package audit

import (
	"errors"
	"net/netip"

	"github.com/kmsdns/kmsdns/plugin/pkg/approval"
)

// Approver decides whether a KMS host is approved: the vlmcs plugin's
// `approve` rules (*approval.Rules). name is the SRV target, addrs its
// addresses.
type Approver interface {
	Host(name string, addrs []netip.Addr) bool
}

// ParseRules parses `approve` arguments with the plugin's own rules
// (plugin/pkg/approval); at least one rule is required.
func ParseRules(args []string) (*approval.Rules, error) {
	if len(args) == 0 {
		return nil, errors.New("no approve rule given")
	}
	return approval.Parse(args...)
}
