// Package printable is the one rule for text that other parties choose
// (a KMS client's workstation name, a KMS host's ePID, a DNS server's
// Extended DNS Error text) before it is stored, printed or exported:
// only printable characters pass, everything else is escaped so that it
// is visible and inert.
//
// Not printable are the C0 controls (U+0000..U+001F), DEL (U+007F), the C1
// controls (U+0080..U+009F, among them U+009B, the 8-bit CSI a terminal
// obeys like ESC [), the Unicode format characters (category Cf: the bidi
// overrides and isolates such as U+202E, zero-width space, joiners, BOM,
// the tag characters), the line and paragraph separators (U+2028, U+2029)
// and bytes that are not valid UTF-8.
package printable

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Is reports whether r may be shown as it is.
func Is(r rune) bool {
	switch {
	case r >= 0x20 && r < 0x7f:
		return true // printable ASCII: neither a control nor in Cf or Cs
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return false
	case r == '\u2028', r == '\u2029':
		return false
	case r == utf8.RuneError, r > unicode.MaxRune:
		return false
	case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Cs, r):
		return false
	}
	return true
}

// Valid reports whether every character of s is printable: Escape(s) == s.
func Valid(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			i++ // printable ASCII, the usual case, without decoding
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !Is(r) {
			return false
		}
		i += n
	}
	return true
}

// Escape returns s with every character that is not printable written as
// a Go escape: \x1b for a byte below U+0080 or a byte that is not UTF-8,
// \u202e or \U000e0001 for others. Printable text, the backslash included,
// is unchanged, so Escape of an escaped string changes nothing.
func Escape(s string) string {
	if Valid(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case Is(r):
			b.WriteString(s[i : i+n])
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// Replace returns s with every character that is not printable replaced
// by repl (which must itself be printable).
func Replace(s string, repl rune) string {
	if Valid(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if Is(r) {
			b.WriteString(s[i : i+n])
		} else {
			b.WriteRune(repl)
		}
		i += n
	}
	return b.String()
}

// CSVCell returns s escaped (Escape) for a spreadsheet cell: a ';' in it
// is written \x3b, since a spreadsheet whose list separator is ';' (Excel
// in many locales) splits a comma CSV on it and would make the rest a cell
// of its own; and when it begins with a character a spreadsheet reads as
// the start of a formula (= + - @, tab or carriage return), it is
// prefixed with a single quote, as OWASP's CSV injection advice says.
// Quoting the cell is left to the CSV writer.
func CSVCell(s string) string {
	e := strings.ReplaceAll(Escape(s), ";", `\x3b`)
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + e
	}
	return e
}

// CSVList returns the cell of a list: each element a CSVCell (so none
// starts a formula or holds a ';'), joined by ';'. No ';'-separated part
// of it starts a formula.
func CSVList(elems []string) string {
	cells := make([]string, len(elems))
	for i, e := range elems {
		cells[i] = CSVCell(e)
	}
	return strings.Join(cells, ";")
}

// Truncate returns s cut to at most max bytes at a character boundary.
// Cut after Escape, it may end inside an escape (`\u20`), which stays
// printable text.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max <= 0 {
		return ""
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
