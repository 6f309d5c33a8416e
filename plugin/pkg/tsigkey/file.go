package tsigkey

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kmsdns/kmsdns/plugin/pkg/fileperm"
)

// MaxFileSize is the largest key file Parse and ReadFile accept (a key
// clause is about 100 bytes).
const MaxFileSize = 64 << 10

// Parse parses the contents of a key file, which holds either
//
//   - one or more BIND key clauses, as tsig-keygen writes them and
//     nsupdate -k and named read them:
//     key "name" { algorithm hmac-sha256; secret "base64"; };
//   - or a single key spec "[ALGORITHM:]NAME:SECRET" as ParseSpec takes.
//
// Comments are BIND's, in both forms: '#' and '//' to the end of the line,
// and '/* ... */'. Keywords are case-insensitive; every clause needs its
// algorithm and its secret, each once, and a name no other clause has.
// Errors give the line and never contain a secret.
func Parse(data []byte) ([]Key, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("key file is %d bytes, larger than %d", len(data), MaxFileSize)
	}
	lx := newLexer(string(data))
	first, err := lx.next()
	if err != nil {
		return nil, err
	}
	switch {
	case first.kind == tokEOF:
		return nil, errors.New("key file holds no key (want BIND key clauses or one [ALGORITHM:]NAME:SECRET line)")
	case first.kind == tokWord && strings.EqualFold(first.text, "key"):
		return parseClauses(lx, first)
	case first.kind == tokWord:
		if t, err := lx.next(); err != nil {
			return nil, err
		} else if t.kind != tokEOF {
			return nil, fmt.Errorf("line %d: unexpected %s after the key spec on line %d; a key file holds one key spec or BIND key clauses", t.line, t.describe(), first.line)
		}
		k, err := ParseSpec(first.text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", first.line, err)
		}
		return []Key{k}, nil
	}
	return nil, fmt.Errorf("line %d: want \"key\" or a key spec, got %s", first.line, first.describe())
}

// parseClauses parses `key NAME { algorithm ALG; secret "S"; };` clauses,
// the first keyword already read.
func parseClauses(lx *lexer, kw token) ([]Key, error) {
	var keys []Key
	seen := map[string]int{}
	for {
		k, err := parseClause(lx, kw)
		if err != nil {
			return nil, err
		}
		if at, dup := seen[k.Name]; dup {
			return nil, fmt.Errorf("line %d: key %q is defined twice (first on line %d)", kw.line, k.Name, at)
		}
		seen[k.Name] = kw.line
		keys = append(keys, k)
		if kw, err = lx.next(); err != nil {
			return nil, err
		}
		if kw.kind == tokEOF {
			return keys, nil
		}
		if kw.kind != tokWord || !strings.EqualFold(kw.text, "key") {
			return nil, fmt.Errorf("line %d: want \"key\" or the end of the file, got %s", kw.line, kw.describe())
		}
	}
}

func parseClause(lx *lexer, kw token) (Key, error) {
	name, err := lx.expect("the key name after \"key\"", tokWord, tokString)
	if err != nil {
		return Key{}, err
	}
	if _, err := lx.expect("'{' after the key name", tokOpen); err != nil {
		return Key{}, err
	}
	var alg, secret token
	for {
		t, err := lx.expect("algorithm, secret or '}'", tokWord, tokClose)
		if err != nil {
			return Key{}, err
		}
		if t.kind == tokClose {
			break
		}
		var dst *token
		stmt := strings.ToLower(t.text)
		switch stmt {
		case "algorithm":
			dst = &alg
		case "secret":
			dst = &secret
		default:
			return Key{}, fmt.Errorf("line %d: unknown statement in key clause (want algorithm or secret)", t.line)
		}
		if dst.kind != tokEOF {
			return Key{}, fmt.Errorf("line %d: %s given twice (first on line %d)", t.line, stmt, dst.line)
		}
		v, err := lx.expect("a value after "+stmt, tokWord, tokString)
		if err != nil {
			return Key{}, err
		}
		*dst = v
		if _, err := lx.expect("';' after the "+stmt, tokSemi); err != nil {
			return Key{}, err
		}
	}
	if _, err := lx.expect("';' after the key clause's '}'", tokSemi); err != nil {
		return Key{}, err
	}
	if alg.kind == tokEOF {
		return Key{}, fmt.Errorf("line %d: key clause has no algorithm", kw.line)
	}
	if secret.kind == tokEOF {
		return Key{}, fmt.Errorf("line %d: key clause has no secret", kw.line)
	}
	k, err := New(alg.text, name.text, secret.text)
	if err != nil {
		return Key{}, fmt.Errorf("line %d: %w", kw.line, err)
	}
	return k, nil
}

// ReadFile reads and parses a key file. The file must be a regular file of
// at most MaxFileSize bytes that meets plugin/pkg/fileperm's rules for a
// secret: owned by root or the running user, accessible by neither group
// nor others (as ssh requires of private keys), in directories only they
// can change; a copy systemd hands over in $CREDENTIALS_DIRECTORY is
// exempt. A key file others could read or change is refused, not used.
// Errors name the file.
func ReadFile(path string) ([]Key, error) {
	data, err := fileperm.ReadFile("", path, fileperm.Secret, MaxFileSize+1)
	if err != nil {
		return nil, err
	}
	keys, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}
