// Package dnsname compares and checks domain names label by label.
//
// A name in presentation format can spell one label in many ways: any case, and escapes
// ("\065" is "A", "\." is a dot inside a label). Comparing such strings, even case-blind, is
// wrong: "evil\.kms.corp.test." is one label below corp.test, yet ends with ".kms.corp.test.".
// Every function here decodes the name with miekg/dns's packer first and then compares the
// decoded labels, with ASCII letters folded to lower case (RFC 4343).
//
// kmsdns uses it for the `approve` and `grant` name rules, for scrub-zone alias chains, and to
// check names read from configuration files.
package dnsname

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// maxWire is the longest name in wire format (RFC 1035 §3.1).
const maxWire = 255

// errInvalid is wrapped by every error about a name that is not a domain name.
var errInvalid = errors.New("not a valid domain name")

// wire returns name (fully qualified or not; "" is the root) in wire format with ASCII
// letters in lower case.
func wire(name string, buf *[maxWire]byte) ([]byte, error) {
	if len(name) > 4*maxWire { // every wire byte takes at most 4 presentation bytes ("\DDD")
		return nil, fmt.Errorf("%w: %d bytes long", errInvalid, len(name))
	}
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalid, err)
	}
	w := buf[:n]
	// Fold only the label bytes, not the length octets (a length can be 'A'..'Z' = 65..90).
	for i := 0; i < len(w) && w[i] != 0; i += int(w[i]) + 1 {
		for j := i + 1; j <= i+int(w[i]); j++ {
			if c := w[j]; 'A' <= c && c <= 'Z' {
				w[j] = c + 'a' - 'A'
			}
		}
	}
	return w, nil
}

// Labels returns the labels of name from the leftmost one, decoded (escapes resolved, ASCII
// letters in lower case), without the root label: nil for the root. It fails when name is not a
// domain name (empty label, label over 63 bytes, name over 255 bytes in wire format).
func Labels(name string) ([]string, error) {
	var buf [maxWire]byte
	w, err := wire(name, &buf)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := 0; w[i] != 0; i += int(w[i]) + 1 {
		out = append(out, string(w[i+1:i+1+int(w[i])]))
	}
	return out, nil
}

// Canonical returns name fully qualified, with ASCII letters in lower case and escapes written
// the way miekg/dns presents names read from the wire ("\065" becomes "a", a dot inside a
// label stays "\."). Two names are the same name exactly when their canonical forms are equal
// strings, so canonical names can be map keys.
func Canonical(name string) (string, error) {
	var buf [maxWire]byte
	w, err := wire(name, &buf)
	if err != nil {
		return "", err
	}
	s, _, err := dns.UnpackDomainName(w, 0)
	if err != nil { // cannot happen for a name the packer wrote
		return "", fmt.Errorf("%w: %v", errInvalid, err)
	}
	return s, nil
}

// Equal reports whether a and b are the same domain name. A string that is not a domain name
// equals nothing.
func Equal(a, b string) bool {
	if strings.IndexByte(a, '\\') < 0 && strings.IndexByte(b, '\\') < 0 {
		ab, _, okA := plainBody(a)
		bb, _, okB := plainBody(b)
		return okA && okB && equalFoldASCII(ab, bb)
	}
	return equalWire(a, b)
}

// equalWire is Equal for any presentation names, compared in wire format.
func equalWire(a, b string) bool {
	var ba, bb [maxWire]byte
	wa, err := wire(a, &ba)
	if err != nil {
		return false
	}
	wb, err := wire(b, &bb)
	return err == nil && string(wa) == string(wb)
}

// InZone reports whether name is zone or a name below it.
func InZone(zone, name string) bool {
	n, ok := depthBelow(zone, name)
	return ok && n >= 0
}

// Below reports whether name is strictly below zone (at least one label more).
func Below(zone, name string) bool {
	n, ok := depthBelow(zone, name)
	return ok && n > 0
}

// depthBelow returns how many labels name has below zone, and false when name is not zone or
// below it (or either is not a domain name).
func depthBelow(zone, name string) (int, bool) {
	// Names without escapes (every name read from a message, and the Corefile's) are compared as
	// strings: this runs for every record of every answer vlmcs passes on.
	if strings.IndexByte(zone, '\\') < 0 && strings.IndexByte(name, '\\') < 0 {
		return depthBelowPlain(zone, name)
	}
	return depthBelowWire(zone, name)
}

// depthBelowPlain is depthBelow for names without escapes, where every dot separates labels.
func depthBelowPlain(zone, name string) (int, bool) {
	zb, zl, ok := plainBody(zone)
	if !ok {
		return 0, false
	}
	nb, nl, ok := plainBody(name)
	if !ok || nl < zl {
		return 0, false
	}
	switch {
	case zl == 0:
		return nl, true
	case len(nb) == len(zb):
		return 0, equalFoldASCII(nb, zb)
	case len(nb) > len(zb) && nb[len(nb)-len(zb)-1] == '.':
		return nl - zl, equalFoldASCII(nb[len(nb)-len(zb):], zb)
	}
	return 0, false
}

// plainBody returns a name without escapes minus its trailing dot, and its number of labels;
// false when it is not a domain name as PackDomainName judges (an empty label, a label over 63
// bytes, over 255 bytes in wire format). "" and "." are the root.
func plainBody(s string) (string, int, bool) {
	if s == "" || s == "." {
		return "", 0, true
	}
	body := strings.TrimSuffix(s, ".")
	if len(body)+2 > maxWire {
		return "", 0, false
	}
	labels := 0
	for rest := body; ; {
		label, tail, more := strings.Cut(rest, ".")
		if len(label) == 0 || len(label) > 63 {
			return "", 0, false
		}
		labels++
		if !more {
			return body, labels, true
		}
		rest = tail
	}
}

// equalFoldASCII compares with ASCII letters folded, as wire does (no other byte folds).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// depthBelowWire is depthBelow for any presentation name: both are packed and compared in
// wire format.
func depthBelowWire(zone, name string) (int, bool) {
	var bz, bn [maxWire]byte
	wz, err := wire(zone, &bz)
	if err != nil {
		return 0, false
	}
	wn, err := wire(name, &bn)
	if err != nil {
		return 0, false
	}
	// Walk name's label boundaries; the suffix starting at a boundary must equal zone.
	depth := 0
	for i := 0; i < len(wn); i += int(wn[i]) + 1 {
		if len(wn)-i == len(wz) {
			return depth, string(wn[i:]) == string(wz)
		}
		if len(wn)-i < len(wz) || wn[i] == 0 {
			return 0, false
		}
		depth++
	}
	return 0, false
}

// TrimZone returns the labels of name above zone as a relative presentation name (no trailing
// dot; "" when name is zone), and false when name is not zone or below it. It is the left part
// of a DNAME substitution (RFC 6672 §2.2): TrimZone(name, owner) + "." + target.
func TrimZone(zone, name string) (string, bool) {
	n, ok := depthBelow(zone, name)
	if !ok {
		return "", false
	}
	if n == 0 {
		return "", true
	}
	idx := dns.Split(dns.Fqdn(name))
	if n >= len(idx) { // zone is the root
		return strings.TrimSuffix(dns.Fqdn(name), "."), true
	}
	return dns.Fqdn(name)[:idx[n]-1], true
}

// HostLabel reports whether l (a decoded label) can be a label of a host name: 1 to 63 ASCII
// letters, digits, hyphens or underscores (RFC 952 and RFC 1123 §2.1, plus the underscore that
// Windows allows in computer names and that service labels such as "_tcp" use). A dot, a
// space, a control byte or any byte above 0x7f inside a label is refused.
func HostLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// HostName checks that name (presentation format, escapes allowed) is a host name: a domain
// name other than the root whose every decoded label passes HostLabel. It returns the
// canonical form.
func HostName(name string) (string, error) {
	labels, err := Labels(name)
	if err != nil {
		return "", fmt.Errorf("%s is not a host name: %w", quote(name), err)
	}
	if len(labels) == 0 {
		return "", fmt.Errorf("%s is not a host name: the root", quote(name))
	}
	for _, l := range labels {
		if !HostLabel(l) {
			return "", fmt.Errorf("%s is not a host name: label %q holds a byte other than a letter, digit, hyphen or underscore", quote(name), l)
		}
	}
	return strings.Join(labels, ".") + ".", nil
}

// quote quotes a name for an error: as it is when it is printable ASCII without quotes (a
// presentation-format name keeps its single backslashes), else Go-quoted.
func quote(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '"' {
			return strconv.Quote(s)
		}
	}
	return `"` + s + `"`
}

// Visible reports whether s is made of visible ASCII (0x21..0x7e) other than the backslash.
// Names read from configuration files and flags are checked with it before they are
// lower-cased: lower-casing bytes that are not UTF-8 changes them, and a name written with
// escapes or other bytes would not read as the name the operator meant. IDN labels are written
// in punycode ("xn--...").
func Visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// ParsePrefix reads an address (a host prefix: /32 or /128) or a network in CIDR notation,
// masked to its prefix length. IPv4-mapped IPv6 addresses become IPv4; an IPv4-mapped network
// and addresses with a zone ("%eth0") are refused.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot be a network", s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a network (CIDR)", s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%q: write an IPv4 network in IPv4 form", s)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a network", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// PlainHostName is HostName for names without escapes, the form names take on the wire path,
// and allocates nothing when name is already lower case and fully qualified. plain is false
// when name holds a backslash: such a name needs HostName's decoding. Otherwise isHost reports
// what HostName's error would, and canonical is HostName's result ("" when isHost is false).
func PlainHostName(name string) (canonical string, isHost, plain bool) {
	if strings.IndexByte(name, '\\') >= 0 {
		return "", false, false
	}
	body, fq := strings.CutSuffix(name, ".")
	// The wire form is one length byte per label plus the final zero: len(body)+2 bytes.
	if body == "" || len(body)+2 > maxWire {
		return "", false, true
	}
	for rest := body; ; {
		label, tail, more := strings.Cut(rest, ".")
		if !HostLabel(label) {
			return "", false, true
		}
		if !more {
			break
		}
		rest = tail
	}
	canonical = strings.ToLower(name)
	if !fq {
		canonical += "."
	}
	return canonical, true, true
}
