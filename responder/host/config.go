package host

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/suggest"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// Defaults and limits of the host's settings.
const (
	// DefaultActivationInterval is how often, in minutes, an unactivated
	// client retries (slmgr /sai default).
	DefaultActivationInterval = 120
	// DefaultRenewalInterval is how often, in minutes, an activated client
	// renews (slmgr /sri default).
	DefaultRenewalInterval = 10080
	// MinInterval and MaxInterval bound both intervals, in minutes.
	MinInterval = 15
	MaxInterval = 43200
	// DefaultLCID is the locale ID in generated ePIDs (en-US).
	DefaultLCID = 1033
	// DefaultMaxClockSkew is the largest difference between a client's
	// clock and the host's that the host accepts.
	DefaultMaxClockSkew = 4 * time.Hour
	// CountWindow is how long a client stays in its application's count
	// after its last successful request.
	CountWindow = ledger.DefaultCountWindow
	// MaxNPolicy is the largest minimum count a request may ask for.
	MaxNPolicy = 1000
)

// Config is the host's configuration. Only Groups is required.
type Config struct {
	// Groups names the host key groups (CSVLKs) this host holds, as listed
	// by `kms-responder catalog`: at most one Windows group, plus any
	// Office groups. Order matters only when two groups cover the same
	// product; the first one serves it.
	Groups []string
	// ActivationInterval and RenewalInterval are the intervals in minutes
	// the host tells its clients (defaults 120 and 10080, valid 15-43200).
	ActivationInterval, RenewalInterval int
	// EPIDs overrides the generated ePID of a configured group, keyed by
	// group name.
	EPIDs map[string]string
	// HwID, when set, overrides the generated hardware ID (see ParseHwID).
	HwID *[8]byte
	// LCID is the locale ID in generated ePIDs (default 1033).
	LCID int
	// HostBuild is the Windows build in generated ePIDs (default: the
	// newest build the catalog lists). It must be at least the minimum
	// build of every configured group.
	HostBuild int
	// MaxClockSkew is the largest client clock difference accepted
	// (default 4 hours).
	MaxClockSkew time.Duration
	// Clock returns the host's time; nil means time.Now.
	Clock func() time.Time
}

// settings is a validated Config resolved against the catalog.
type settings struct {
	groups           []*catalog.HostKeyGroup
	activation       int
	renewal          int
	epidOverride     map[string]kms.EPID // by canonical group name
	hwid             [8]byte
	hasHwID          bool
	lcid, build      int
	platform         int
	skew             time.Duration
	clock            func() time.Time
	wallClock        bool // clock is time.Now: Activate reads it once
	windowsGroupName string
}

// errNoGroup tells an operator how to choose a host key group.
var errNoGroup = errors.New(`host: no host key group configured: a KMS host must hold a host key; ` +
	`run "kms-responder catalog" to list the groups and what they activate, then pass --group NAME ` +
	`(one Windows group, plus an Office group per Office version if wanted)`)

// resolve checks cfg against cat and fills in defaults.
func resolve(cfg Config, cat *catalog.Catalog) (*settings, error) {
	s := &settings{
		activation: orDefault(cfg.ActivationInterval, DefaultActivationInterval),
		renewal:    orDefault(cfg.RenewalInterval, DefaultRenewalInterval),
		lcid:       orDefault(cfg.LCID, DefaultLCID),
		skew:       cfg.MaxClockSkew,
		clock:      cfg.Clock,
	}
	if s.skew == 0 {
		s.skew = DefaultMaxClockSkew
	}
	if s.clock == nil {
		s.clock, s.wallClock = time.Now, true
	}
	if len(cfg.Groups) == 0 {
		return nil, errNoGroup
	}
	seen := map[string]bool{}
	var windows *catalog.HostKeyGroup
	minBuild := 0
	for _, name := range cfg.Groups {
		g, ok := cat.Group(strings.TrimSpace(name))
		if !ok {
			return nil, fmt.Errorf(`host: unknown host key group %q%s (names as "kms-responder catalog" prints them, any case, or a CSVLK activation ID)`,
				name, suggest.Hint(name, cat.GroupNames()))
		}
		if seen[g.Name] {
			return nil, fmt.Errorf("host: host key group %q configured twice", g.Name)
		}
		seen[g.Name] = true
		if app, ok := cat.Application(g.AppID); ok && app.Key == "windows" {
			if windows != nil {
				return nil, fmt.Errorf("host: groups %q and %q are both Windows host keys; a KMS host holds one Windows key (the newest activates the older products)", windows.Name, g.Name)
			}
			windows = g
		}
		minBuild = max(minBuild, g.MinBuild)
		s.groups = append(s.groups, g)
	}
	if windows != nil {
		s.windowsGroupName = windows.Name
	}
	if err := CheckInterval(s.activation); err != nil {
		return nil, fmt.Errorf("host: activation interval %w", err)
	}
	if err := CheckInterval(s.renewal); err != nil {
		return nil, fmt.Errorf("host: renewal interval %w", err)
	}
	if err := CheckLCID(s.lcid); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if s.skew < 0 {
		return nil, fmt.Errorf("host: maximum clock skew %v is negative", s.skew)
	}
	builds := cat.HostBuilds()
	if len(builds) == 0 {
		return nil, errors.New("host: the catalog lists no host builds")
	}
	s.build = cfg.HostBuild
	if s.build == 0 {
		s.build = builds[len(builds)-1].Build
	}
	if s.build < minBuild {
		return nil, fmt.Errorf("host: host build %d is older than %d, the oldest build that can hold all configured host keys", s.build, minBuild)
	}
	if s.platform = cat.PlatformID(s.build); s.platform == 0 {
		return nil, fmt.Errorf("host: host build %d predates every build in the catalog", s.build)
	}
	s.epidOverride = map[string]kms.EPID{}
	for name, text := range cfg.EPIDs {
		g, ok := cat.Group(name)
		if !ok || !seen[g.Name] {
			return nil, fmt.Errorf("host: ePID given for %q, which is not a configured host key group", name)
		}
		e, err := kms.ParseEPID(strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("host: ePID for %s: %w", g.Name, err)
		}
		s.epidOverride[g.Name] = e
	}
	if cfg.HwID != nil {
		s.hwid, s.hasHwID = *cfg.HwID, true
	}
	return s, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// CheckInterval reports whether minutes is a valid activation or renewal
// interval (MinInterval to MaxInterval). Config users that read the
// setting themselves call it to report the error where it was written.
func CheckInterval(minutes int) error {
	if minutes < MinInterval || minutes > MaxInterval {
		return fmt.Errorf("%d minutes is outside %d-%d", minutes, MinInterval, MaxInterval)
	}
	return nil
}

// CheckLCID reports whether lcid is a locale ID (1-65535).
func CheckLCID(lcid int) error {
	if lcid < 1 || lcid > 0xFFFF {
		return fmt.Errorf("LCID %d is not a locale ID (1-65535)", lcid)
	}
	return nil
}

// ParseHwID reads a hardware ID: 16 hex digits, optionally prefixed with
// 0x and surrounded by spaces.
func ParseHwID(s string) ([8]byte, error) {
	var h [8]byte
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("HwID %q is not 16 hex digits", s)
	}
	copy(h[:], b)
	return h, nil
}
