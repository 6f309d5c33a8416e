package dnsname

import (
	"fmt"
	"strings"
)

// Pattern is a host-name rule: one host name, or "*.suffix" for every host name strictly
// below suffix. It matches label by label; the zero Pattern matches nothing.
type Pattern struct {
	suffix   string   // canonical, fully qualified
	labels   []string // of suffix, decoded
	wildcard bool
}

// ParsePattern reads a pattern written in a configuration file: a host name or "*.suffix",
// in visible ASCII without escapes (see Visible), every label a host label (see HostLabel).
func ParsePattern(s string) (Pattern, error) {
	if !Visible(s) {
		return Pattern{}, fmt.Errorf("%q holds white space, escapes or non-ASCII bytes (write IDN labels in punycode)", s)
	}
	rest, wild := strings.CutPrefix(s, "*.")
	if strings.Contains(rest, "*") {
		return Pattern{}, fmt.Errorf("%q: a wildcard is allowed only as the whole first label (*.suffix)", s)
	}
	n, err := HostName(rest)
	if err != nil {
		return Pattern{}, err
	}
	labels, _ := Labels(n)
	return Pattern{suffix: n, labels: labels, wildcard: wild}, nil
}

// Match reports whether name (presentation format, any case, escapes allowed) matches: it
// must be a host name (see HostName) equal to the pattern's name, or strictly below the
// suffix of a "*.suffix" pattern.
func (p Pattern) Match(name string) bool {
	if p.suffix == "" {
		return false
	}
	labels, err := Labels(name)
	if err != nil {
		return false
	}
	for _, l := range labels {
		if !HostLabel(l) {
			return false
		}
	}
	return p.match(labels)
}

// match compares decoded labels.
func (p Pattern) match(labels []string) bool {
	if p.wildcard {
		if len(labels) <= len(p.labels) {
			return false
		}
		labels = labels[len(labels)-len(p.labels):]
	} else if len(labels) != len(p.labels) {
		return false
	}
	for i, l := range labels {
		if l != p.labels[i] {
			return false
		}
	}
	return true
}

// MatchAny reports whether name matches one of patterns, decoding name once.
func MatchAny(patterns []Pattern, name string) bool {
	if len(patterns) == 0 {
		return false
	}
	labels, err := Labels(name)
	if err != nil {
		return false
	}
	for _, l := range labels {
		if !HostLabel(l) {
			return false
		}
	}
	for _, p := range patterns {
		if p.suffix != "" && p.match(labels) {
			return true
		}
	}
	return false
}

// Wildcard reports whether p is a "*.suffix" pattern.
func (p Pattern) Wildcard() bool { return p.wildcard }

// String returns the pattern in canonical form ("*.corp.test." or "kms1.corp.test.").
func (p Pattern) String() string {
	if p.wildcard {
		return "*." + p.suffix
	}
	return p.suffix
}

// MatchAnyPlain is MatchAny for a name PlainHostName returned as a host name: it compares
// strings, allocating nothing. Labels of such a name hold no dots, so a suffix that starts
// after a dot is a suffix of whole labels.
func MatchAnyPlain(patterns []Pattern, canonical string) bool {
	for _, p := range patterns {
		switch {
		case p.suffix == "":
		case p.wildcard:
			n := len(canonical) - len(p.suffix)
			if n >= 2 && canonical[n-1] == '.' && canonical[n:] == p.suffix {
				return true
			}
		case canonical == p.suffix:
			return true
		}
	}
	return false
}
