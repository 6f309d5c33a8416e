package vlmcs

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode"

	"github.com/coredns/coredns/plugin"
	"github.com/kmsdns/kmsdns/internal/dnsname"
	"github.com/miekg/dns"
)

// maxKeyFile bounds the size of a TSIG key file.
const maxKeyFile = 1 << 20

// parseKeyFile reads TSIG keys in BIND's key file format:
//
//	key "kms1-key." { algorithm hmac-sha256; secret "base64=="; };
//
// It returns key name (normalized) → base64 secret. The algorithm is accepted but not
// stored: miekg/dns takes the algorithm from the signed message.
func parseKeyFile(data []byte) (map[string]string, error) {
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("key file is %d bytes, more than %d", len(data), maxKeyFile)
	}
	toks := tokenizeKeyFile(string(data))
	keys := map[string]string{}
	i := 0
	next := func() (keyToken, bool) {
		if i >= len(toks) {
			return keyToken{}, false
		}
		i++
		return toks[i-1], true
	}
	expect := func(want string) error {
		t, ok := next()
		if !ok {
			return fmt.Errorf("unexpected end of key file, expecting %q", want)
		}
		if t.text != want {
			return fmt.Errorf("line %d: unexpected %q, expecting %q", t.line, t.text, want)
		}
		return nil
	}
	for i < len(toks) {
		t, _ := next()
		if t.text == ";" {
			continue
		}
		if t.text != "key" {
			return nil, fmt.Errorf("line %d: unexpected %q, expecting \"key\"", t.line, t.text)
		}
		nt, ok := next()
		if !ok || nt.text == "{" || nt.text == ";" {
			return nil, fmt.Errorf("line %d: key without a name", t.line)
		}
		name := plugin.Name(nt.text).Normalize()
		if _, ok := dns.IsDomainName(name); !ok || name == "." || !dnsname.Visible(nt.text) {
			return nil, fmt.Errorf("line %d: key name %q is not a domain name of visible ASCII (write IDN in punycode)", nt.line, nt.text)
		}
		if _, dup := keys[name]; dup {
			return nil, fmt.Errorf("line %d: key %q defined twice", nt.line, name)
		}
		if err := expect("{"); err != nil {
			return nil, err
		}
		secret := ""
		for {
			st, ok := next()
			if !ok {
				return nil, fmt.Errorf("key %q: unexpected end of key file, expecting \"}\"", name)
			}
			if st.text == "}" {
				break
			}
			if st.text == ";" {
				continue
			}
			val, ok := next()
			if !ok || val.text == ";" || val.text == "}" {
				return nil, fmt.Errorf("line %d: %q without a value", st.line, st.text)
			}
			switch st.text {
			case "algorithm":
				if _, err := algorithmName(val.text); err != nil {
					return nil, fmt.Errorf("line %d: %v", val.line, err)
				}
			case "secret":
				if _, err := base64.StdEncoding.DecodeString(val.text); err != nil || val.text == "" {
					return nil, fmt.Errorf("line %d: key %q: secret is not base64", val.line, name)
				}
				secret = val.text
			default:
				return nil, fmt.Errorf("line %d: unknown key property %q", st.line, st.text)
			}
		}
		if secret == "" {
			return nil, fmt.Errorf("key %q has no secret", name)
		}
		keys[name] = secret
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key file defines no key")
	}
	return keys, nil
}

// algorithmName validates a TSIG algorithm name as written in key files.
func algorithmName(s string) (string, error) {
	switch strings.TrimSuffix(strings.ToLower(s), ".") {
	case "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512":
		return strings.ToLower(s), nil
	}
	return "", fmt.Errorf("unsupported TSIG algorithm %q", s)
}

type keyToken struct {
	text string
	line int
}

// tokenizeKeyFile splits a key file into words, quoted strings, braces and semicolons;
// '#' and '//' start comments.
func tokenizeKeyFile(s string) []keyToken {
	var toks []keyToken
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case unicode.IsSpace(rune(c)):
			i++
		case c == '#' || (c == '/' && i+1 < len(s) && s[i+1] == '/'):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, keyToken{string(c), line})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' && s[j] != '\n' {
				j++
			}
			toks = append(toks, keyToken{s[i+1 : j], line})
			i = j + 1
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune("{};\"", rune(s[j])) {
				j++
			}
			toks = append(toks, keyToken{s[i:j], line})
			i = j
		}
	}
	return toks
}
