package tsigkey

import (
	"fmt"
	"strings"
)

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

// describe names a token for an error without its text, which may be a
// secret written in the wrong place.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokString:
		return "a quoted string"
	case tokWord:
		return "a word"
	case tokOpen:
		return "'{'"
	case tokClose:
		return "'}'"
	}
	return "';'"
}

// lexer splits BIND configuration text into words, quoted strings and the
// punctuation { } ;, skipping white space and comments: '#' and '//' to the
// end of the line, '/*' to '*/'. A comment starts only where a token could;
// inside a word ("a//b") the characters are the word's.
type lexer struct {
	src  string
	pos  int
	line int
}

func newLexer(src string) *lexer { return &lexer{src: src, line: 1} }

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
