package dnsname

import (
	"strings"
	"testing"
)

// FuzzName checks that the name functions agree with each other on any input and never panic.
func FuzzName(f *testing.F) {
	for _, s := range []string{"kms1.corp.test.", `evil\.kms.corp.test.`, `\065\.`, ".", "", "a..b", `\`, `a\0`, `\999.x.`, "*.kms.corp.test", strings.Repeat("a.", 130)} {
		f.Add(s, "corp.test.")
	}
	f.Fuzz(func(t *testing.T, name, zone string) {
		labels, err := Labels(name)
		c, cerr := Canonical(name)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("Labels and Canonical disagree on %q: %v, %v", name, err, cerr)
		}
		if err != nil {
			if Equal(name, name) || InZone(zone, name) {
				t.Fatalf("invalid name %q compared equal or in zone", name)
			}
			return
		}
		if !Equal(name, c) || !InZone(c, name) || Below(c, name) {
			t.Fatalf("%q and its canonical form %q differ", name, c)
		}
		if c2, err := Canonical(c); err != nil || c2 != c {
			t.Fatalf("Canonical(%q) = %q, %v: not stable", c, c2, err)
		}
		if got, _ := Labels(c); len(got) != len(labels) {
			t.Fatalf("%q has %d labels, its canonical form %q %d", name, len(labels), c, len(got))
		}
		if h, err := HostName(name); err == nil {
			if h != c {
				t.Fatalf("HostName(%q) = %q, Canonical %q", name, h, c)
			}
			if p, err := ParsePattern("*." + zone); err == nil && p.Match(name) != Below(zone, name) {
				t.Fatalf("*.%s matching %q disagrees with Below", zone, name)
			}
		}
		if InZone(zone, name) {
			rel, ok := TrimZone(zone, name)
			if !ok {
				t.Fatalf("TrimZone(%q, %q) failed", zone, name)
			}
			joined := zone
			if rel != "" {
				if z, _ := Canonical(zone); z == "." {
					joined = rel + "."
				} else {
					joined = rel + "." + zone
				}
			}
			if !Equal(joined, name) {
				t.Fatalf("TrimZone(%q, %q) = %q does not rebuild the name (%q)", zone, name, rel, joined)
			}
		}
		_, _ = ParsePrefix(name)
	})
}

// FuzzPlainHostName checks that the allocation-free path agrees with HostName and MatchAny on
// every name without escapes.
func FuzzPlainHostName(f *testing.F) {
	for _, s := range []string{"kms1.corp.test.", "KMS1.Corp.Test", "a..b.", ".", "", "-a.b.", "a_b.c", strings.Repeat("a.", 127), strings.Repeat("a", 64) + ".x.", "x.kms.corp.test.", "kms.corp.test.", "xkms.corp.test."} {
		f.Add(s)
	}
	patterns := []Pattern{}
	for _, p := range []string{"*.kms.corp.test", "kms1.corp.test", "*.test"} {
		pt, err := ParsePattern(p)
		if err != nil {
			f.Fatal(err)
		}
		patterns = append(patterns, pt)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, isHost, plain := PlainHostName(name)
		if !plain {
			if !strings.Contains(name, `\`) {
				t.Fatalf("%q without a backslash reported as not plain", name)
			}
			return
		}
		want, err := HostName(name)
		if isHost != (err == nil) || c != want {
			t.Fatalf("PlainHostName(%q) = %q, %v; HostName = %q, %v", name, c, isHost, want, err)
		}
		if isHost {
			for _, p := range patterns {
				if MatchAnyPlain([]Pattern{p}, c) != MatchAny([]Pattern{p}, c) {
					t.Fatalf("pattern %q on %q: MatchAnyPlain and MatchAny disagree", p.suffix, c)
				}
			}
		}
	})
}

// FuzzDepthBelowPlain checks that the string comparison of names without escapes agrees with
// the wire-format comparison on every input.
func FuzzDepthBelowPlain(f *testing.F) {
	for _, p := range [][2]string{{"corp.test.", "kms1.CORP.test."}, {".", "a.b"}, {"", "x."}, {"a..b", "c.a..b"}, {"test.", "atest."}, {"b.c", "a.b.c."}, {strings.Repeat("a", 64), "x." + strings.Repeat("a", 64)}, {"z.", strings.Repeat("ab.", 90) + "z."}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, zone, name string) {
		if strings.Contains(zone, `\`) || strings.Contains(name, `\`) {
			return
		}
		d1, ok1 := depthBelowPlain(zone, name)
		d2, ok2 := depthBelowWire(zone, name)
		if ok1 != ok2 || (ok1 && d1 != d2) {
			t.Fatalf("depthBelow(%q, %q): plain %d %v, wire %d %v", zone, name, d1, ok1, d2, ok2)
		}
	})
}

// FuzzEqualPlain checks that Equal's string comparison of names without escapes agrees with the
// wire-format comparison.
func FuzzEqualPlain(f *testing.F) {
	for _, p := range [][2]string{{"corp.test.", "CORP.test"}, {".", ""}, {"a..b", "a..b"}, {"a.b", "a.b.."}, {strings.Repeat("a", 64), strings.Repeat("a", 64)}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.Contains(a, `\`) || strings.Contains(b, `\`) {
			return
		}
		if Equal(a, b) != equalWire(a, b) {
			t.Fatalf("Equal(%q, %q) = %v, wire says %v", a, b, Equal(a, b), equalWire(a, b))
		}
	})
}
