package publish

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Limits on key material, so that a hostile spec or file cannot make the
// parser allocate without bound.
const (
	// MaxKeySpecLen is the longest key spec ParseKeySpec accepts.
	MaxKeySpecLen = 2048
	// MinSecretLen is the shortest decoded TSIG secret accepted (128 bits;
	// RFC 8945 §6 asks for keys at least as long as the hash output).
	MinSecretLen = 16
	// MaxSecretLen is the longest decoded TSIG secret accepted.
	MaxSecretLen = 512
)

// DefaultAlgorithm is the TSIG algorithm used when a key spec names none.
const DefaultAlgorithm = dns.HmacSHA256

// Key is a TSIG key as miekg/dns uses it: the canonical (lower-case, fully
// qualified) key name, the algorithm name in miekg's form (for example
// "hmac-sha256.") and the base64-encoded secret.
type Key struct {
	Name      string
	Algorithm string
	Secret    string
}

// String names the key without revealing its secret.
func (k Key) String() string {
	return strings.TrimSuffix(k.Algorithm, ".") + ":" + k.Name
}

// algorithms maps the accepted algorithm spellings to miekg/dns's names.
// hmac-md5 is deliberately absent: miekg/dns no longer implements it.
var algorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// ParseAlgorithm returns miekg/dns's name for a TSIG algorithm given as
// "hmac-sha256" or "hmac-sha256." (any case).
func ParseAlgorithm(s string) (string, error) {
	name := strings.TrimSuffix(strings.ToLower(s), ".")
	if a, ok := algorithms[name]; ok {
		return a, nil
	}
	if name == "hmac-md5" || name == "hmac-md5.sig-alg.reg.int" {
		return "", fmt.Errorf("TSIG algorithm %q is not supported (insecure; use hmac-sha256)", s)
	}
	return "", fmt.Errorf("unknown TSIG algorithm %q (want hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512)", s)
}

// NewKey checks and canonicalizes a key from its parts: the key name must
// be a domain name, the algorithm one ParseAlgorithm accepts, and the
// secret standard base64 of MinSecretLen to MaxSecretLen bytes.
func NewKey(algorithm, name, secret string) (Key, error) {
	alg, err := ParseAlgorithm(algorithm)
	if err != nil {
		return Key{}, err
	}
	if name == "" || name == "." {
		return Key{}, fmt.Errorf("TSIG key name is empty")
	}
	if !printableASCII(name) {
		return Key{}, fmt.Errorf("TSIG key name %q holds white space, escapes or non-ASCII bytes (write IDN labels in punycode)", name)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return Key{}, fmt.Errorf("TSIG key name %q is not a valid domain name", name)
	}
	if secret == "" {
		return Key{}, fmt.Errorf("TSIG key %q: secret is empty", name)
	}
	if len(secret) > base64.StdEncoding.EncodedLen(MaxSecretLen) {
		return Key{}, fmt.Errorf("TSIG key %q: secret is longer than %d bytes", name, MaxSecretLen)
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return Key{}, fmt.Errorf("TSIG key %q: secret is not base64: %v", name, err)
	}
	if len(raw) < MinSecretLen {
		return Key{}, fmt.Errorf("TSIG key %q: secret is %d bytes, want at least %d", name, len(raw), MinSecretLen)
	}
	if len(raw) > MaxSecretLen {
		return Key{}, fmt.Errorf("TSIG key %q: secret is %d bytes, want at most %d", name, len(raw), MaxSecretLen)
	}
	return Key{
		Name:      dns.CanonicalName(name),
		Algorithm: alg,
		// Re-encode so equal secrets compare equal whatever the padding.
		Secret: base64.StdEncoding.EncodeToString(raw),
	}, nil
}

// ParseKeySpec parses a key given as "[ALGORITHM:]NAME:SECRET", the form
// of nsupdate -y, for example "hmac-sha256:kms1-key:c2VjcmV0...". Without
// an algorithm, DefaultAlgorithm (hmac-sha256) is used. Surrounding white
// space is ignored.
func ParseKeySpec(spec string) (Key, error) {
	if len(spec) > MaxKeySpecLen {
		return Key{}, fmt.Errorf("key spec is %d bytes, longer than %d", len(spec), MaxKeySpecLen)
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return Key{}, fmt.Errorf("key spec is empty (want [ALGORITHM:]NAME:SECRET)")
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 2:
		return NewKey(DefaultAlgorithm, parts[0], parts[1])
	case 3:
		return NewKey(parts[0], parts[1], parts[2])
	default:
		return Key{}, fmt.Errorf("key spec has %d colon-separated fields, want [ALGORITHM:]NAME:SECRET", len(parts))
	}
}
