package publish

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxKeyFileLen is the largest key file LoadKeyFile reads.
const MaxKeyFileLen = 64 << 10

// LoadKeyFile reads a TSIG key from a file in one of the forms
// ParseKeyFile accepts. Errors name the file.
func LoadKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFileLen+1))
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	k, err := ParseKeyFile(data)
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParseKeyFile parses the contents of a key file, which holds either
//
//   - one key spec line as ParseKeySpec takes ("hmac-sha256:name:secret"),
//     with blank lines and lines starting with '#' ignored, or
//   - one BIND key clause, as tsig-keygen writes and nsupdate -k reads:
//     key "name" { algorithm hmac-sha256; secret "base64"; };
//     with #, // and /* */ comments.
//
// Errors give the line they refer to.
func ParseKeyFile(data []byte) (Key, error) {
	if len(data) > MaxKeyFileLen {
		return Key{}, fmt.Errorf("key file is larger than %d bytes", MaxKeyFileLen)
	}
	text := string(data)
	lx := lexer{src: text, line: 1}
	first, err := lx.next()
	if err != nil {
		return Key{}, err
	}
	if first.kind == tokWord && strings.EqualFold(first.text, "key") {
		return parseKeyClause(&lx, first)
	}
	return parseSpecLines(text)
}

// parseSpecLines accepts exactly one non-comment line and parses it as a
// key spec.
func parseSpecLines(text string) (Key, error) {
	var (
		spec string
		at   int
	)
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if at != 0 {
			return Key{}, fmt.Errorf("line %d: a second key spec (the first is on line %d); a key file holds one key", i+1, at)
		}
		spec, at = line, i+1
	}
	if at == 0 {
		return Key{}, errors.New("key file holds no key (want a [ALGORITHM:]NAME:SECRET line or a BIND key clause)")
	}
	k, err := ParseKeySpec(spec)
	if err != nil {
		return Key{}, fmt.Errorf("line %d: %w", at, err)
	}
	return k, nil
}

// parseKeyClause parses `key NAME { algorithm ALG; secret "S"; };` after
// its first token.
func parseKeyClause(lx *lexer, kw token) (Key, error) {
	name, err := lx.expect("the key name", tokWord, tokString)
	if err != nil {
		return Key{}, err
	}
	if _, err := lx.expect("'{' after the key name", tokOpen); err != nil {
		return Key{}, err
	}
	var alg, secret token
	for {
		t, err := lx.expect("a statement or '}'", tokWord, tokClose)
		if err != nil {
			return Key{}, err
		}
		if t.kind == tokClose {
			break
		}
		var dst *token
		switch strings.ToLower(t.text) {
		case "algorithm":
			dst = &alg
		case "secret":
			dst = &secret
		default:
			return Key{}, fmt.Errorf("line %d: unknown statement %q in key clause (want algorithm or secret)", t.line, t.text)
		}
		if dst.kind != tokEOF {
			return Key{}, fmt.Errorf("line %d: %s given twice (first on line %d)", t.line, strings.ToLower(t.text), dst.line)
		}
		v, err := lx.expect("a value after "+strings.ToLower(t.text), tokWord, tokString)
		if err != nil {
			return Key{}, err
		}
		*dst = v
		if _, err := lx.expect("';' after "+strings.ToLower(t.text), tokSemi); err != nil {
			return Key{}, err
		}
	}
	if _, err := lx.expect("';' after the key clause", tokSemi); err != nil {
		return Key{}, err
	}
	if t, err := lx.next(); err != nil {
		return Key{}, err
	} else if t.kind != tokEOF {
		return Key{}, fmt.Errorf("line %d: unexpected %s after the key clause; a key file holds one key", t.line, t.describe())
	}
	if alg.kind == tokEOF {
		return Key{}, fmt.Errorf("line %d: key %q has no algorithm", kw.line, name.text)
	}
	if secret.kind == tokEOF {
		return Key{}, fmt.Errorf("line %d: key %q has no secret", kw.line, name.text)
	}
	k, err := NewKey(alg.text, name.text, secret.text)
	if err != nil {
		return Key{}, fmt.Errorf("line %d: %w", kw.line, err)
	}
	return k, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokOpen
	tokClose
	tokSemi
)

type token struct {
	kind tokKind
	text string
	line int
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	case tokWord:
		return fmt.Sprintf("%q", t.text)
	default:
		return fmt.Sprintf("'%s'", t.text)
	}
}

// lexer splits BIND configuration text into words, quoted strings and the
// punctuation { } ;, skipping white space and comments.
type lexer struct {
	src  string
	pos  int
	line int
}

func (lx *lexer) next() (token, error) {
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == '\n':
			lx.line++
			lx.pos++
		case c == ' ' || c == '\t' || c == '\r':
			lx.pos++
		case c == '#' || strings.HasPrefix(lx.src[lx.pos:], "//"):
			for lx.pos < len(lx.src) && lx.src[lx.pos] != '\n' {
				lx.pos++
			}
		case strings.HasPrefix(lx.src[lx.pos:], "/*"):
			start := lx.line
			end := strings.Index(lx.src[lx.pos+2:], "*/")
			if end < 0 {
				return token{}, fmt.Errorf("line %d: comment is not closed", start)
			}
			lx.line += strings.Count(lx.src[lx.pos:lx.pos+2+end], "\n")
			lx.pos += 2 + end + 2
		case c == '{' || c == '}' || c == ';':
			lx.pos++
			kind := tokSemi
			if c == '{' {
				kind = tokOpen
			} else if c == '}' {
				kind = tokClose
			}
			return token{kind: kind, text: string(c), line: lx.line}, nil
		case c == '"':
			end := strings.IndexAny(lx.src[lx.pos+1:], "\"\n")
			if end < 0 || lx.src[lx.pos+1+end] != '"' {
				return token{}, fmt.Errorf("line %d: quoted string is not closed on its line", lx.line)
			}
			t := token{kind: tokString, text: lx.src[lx.pos+1 : lx.pos+1+end], line: lx.line}
			lx.pos += end + 2
			return t, nil
		default:
			start := lx.pos
			for lx.pos < len(lx.src) && !strings.ContainsRune(" \t\r\n{};\"#", rune(lx.src[lx.pos])) {
				lx.pos++
			}
			return token{kind: tokWord, text: lx.src[start:lx.pos], line: lx.line}, nil
		}
	}
	return token{kind: tokEOF, line: lx.line}, nil
}

// expect returns the next token if it is of one of the kinds, else an
// error saying what was wanted where.
func (lx *lexer) expect(what string, kinds ...tokKind) (token, error) {
	t, err := lx.next()
	if err != nil {
		return token{}, err
	}
	for _, k := range kinds {
		if t.kind == k {
			return t, nil
		}
	}
	return token{}, fmt.Errorf("line %d: want %s, got %s", t.line, what, t.describe())
}
