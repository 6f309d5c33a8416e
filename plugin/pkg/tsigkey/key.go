// Package tsigkey reads the TSIG keys both binaries use: the CoreDNS
// plugin's `keyfile` and the responder's registration key. It holds the one
// key file parser, the accepted algorithms and the checks on key names,
// secrets and key file permissions.
//
// No error of this package contains a secret: errors name the line, the
// statement and the key name, never the text of an unexpected token (which
// may be a misplaced secret).
package tsigkey

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Limits on key material, so that a hostile spec or file cannot make the
// parser allocate without bound.
const (
	// MaxSpecLen is the longest key spec ParseSpec accepts.
	MaxSpecLen = 2048
	// MinSecretLen is the shortest decoded secret accepted (128 bits; RFC
	// 8945 §6 asks for keys at least as long as the hash output).
	MinSecretLen = 16
	// MaxSecretLen is the longest decoded secret accepted.
	MaxSecretLen = 512
)

// DefaultAlgorithm is the algorithm of a key spec that names none.
const DefaultAlgorithm = dns.HmacSHA256

// Key is a TSIG key as miekg/dns uses it: the canonical (lower-case, fully
// qualified) key name, the algorithm in miekg's form (for example
// "hmac-sha256.") and the secret in standard base64.
type Key struct {
	Name      string
	Algorithm string
	Secret    string
}

// String names the key without revealing its secret.
func (k Key) String() string {
	return strings.TrimSuffix(k.Algorithm, ".") + ":" + k.Name
}

// algorithms maps the accepted spellings to miekg/dns's names. hmac-md5 is
// deliberately absent: it is insecure and miekg/dns no longer implements it.
var algorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// ParseAlgorithm returns miekg/dns's name for a TSIG algorithm written as
// "hmac-sha256" or "hmac-sha256." in any case.
func ParseAlgorithm(s string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(s), ".")
	if a, ok := algorithms[name]; ok {
		return a, nil
	}
	if name == "hmac-md5" || name == "hmac-md5.sig-alg.reg.int" {
		return "", fmt.Errorf("TSIG algorithm %s is not supported (insecure; use hmac-sha256)", name)
	}
	const want = "(want hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512)"
	// Quoted back only when it cannot be a secret written in the wrong
	// place: standard base64 has no '-'.
	if len(name) <= 40 && strings.Contains(name, "-") && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") == "" {
		return "", fmt.Errorf("unknown TSIG algorithm %q %s", name, want)
	}
	return "", errors.New("unknown TSIG algorithm " + want)
}

// New checks and canonicalizes a key from its parts: the algorithm one
// ParseAlgorithm accepts, the name a domain name of letters, digits, '-'
// and '_' (IDN in punycode), and the secret standard base64 of
// MinSecretLen to MaxSecretLen bytes.
func New(algorithm, name, secret string) (Key, error) {
	alg, err := ParseAlgorithm(algorithm)
	if err != nil {
		return Key{}, err
	}
	canon, err := checkName(name)
	if err != nil {
		return Key{}, err
	}
	if secret == "" {
		return Key{}, fmt.Errorf("TSIG key %q: secret is empty", canon)
	}
	if len(secret) > base64.StdEncoding.EncodedLen(MaxSecretLen) {
		return Key{}, fmt.Errorf("TSIG key %q: secret is longer than %d bytes", canon, MaxSecretLen)
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		// base64's error gives an offset, not the text.
		return Key{}, fmt.Errorf("TSIG key %q: secret is not base64: %v", canon, err)
	}
	if len(raw) < MinSecretLen {
		return Key{}, fmt.Errorf("TSIG key %q: secret is %d bytes, want at least %d (tsig-keygen makes 32)", canon, len(raw), MinSecretLen)
	}
	if len(raw) > MaxSecretLen {
		return Key{}, fmt.Errorf("TSIG key %q: secret is %d bytes, want at most %d", canon, len(raw), MaxSecretLen)
	}
	// Re-encoded so that equal secrets compare equal.
	return Key{Name: canon, Algorithm: alg, Secret: base64.StdEncoding.EncodeToString(raw)}, nil
}

// checkName returns the canonical form of a key name. Names hold letters,
// digits, '-' and '_' in dot-separated labels: besides being what
// tsig-keygen and Windows use, this keeps a base64 secret (which has '/',
// '+' or '=' in all but rare cases) from being taken for a name and quoted
// in an error. A rejected name is not quoted back.
func checkName(name string) (string, error) {
	if name == "" || name == "." {
		return "", errors.New("TSIG key name is empty")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", errors.New("TSIG key name is not a domain name of letters, digits, '-' and '_' (write IDN labels in punycode)")
		}
	}
	if _, ok := dns.IsDomainName(name); !ok || strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		return "", errors.New("TSIG key name is not a valid domain name (empty label, or a label over 63 or a name over 255 bytes)")
	}
	return dns.CanonicalName(name), nil
}

// ParseSpec parses a key written as "[ALGORITHM:]NAME:SECRET", the form of
// nsupdate -y, for example "hmac-sha256:kms1-key:c2VjcmV0...". Without an
// algorithm, DefaultAlgorithm is used. Surrounding white space is ignored.
func ParseSpec(spec string) (Key, error) {
	if len(spec) > MaxSpecLen {
		return Key{}, fmt.Errorf("key spec is %d bytes, longer than %d", len(spec), MaxSpecLen)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return Key{}, errors.New("key spec is empty (want [ALGORITHM:]NAME:SECRET)")
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 2:
		return New(DefaultAlgorithm, parts[0], parts[1])
	case 3:
		return New(parts[0], parts[1], parts[2])
	}
	return Key{}, fmt.Errorf("key spec has %d colon-separated fields, want [ALGORITHM:]NAME:SECRET", len(parts))
}
