// Package suggest finds the known words closest to a mistyped one, for
// "did you mean" hints in configuration and command-line errors.
package suggest

import (
	"sort"
	"strings"
)

// Closest returns up to max candidates closest to word (case-insensitive
// edit distance, ties in candidate order): those within a third of the
// word's length (at least 2 edits), and any candidate word is a prefix of
// or contains. It returns nil when nothing is close.
func Closest(word string, candidates []string, max int) []string {
	w := strings.ToLower(word)
	limit := len(w) / 3
	if limit < 2 {
		limit = 2
	}
	type scored struct {
		s    string
		d, i int
	}
	var hits []scored
	for i, c := range candidates {
		lc := strings.ToLower(c)
		d := distance(w, lc)
		if d <= limit || (len(w) >= 3 && strings.Contains(lc, w)) {
			hits = append(hits, scored{c, d, i})
		}
	}
	sort.SliceStable(hits, func(a, b int) bool {
		if hits[a].d != hits[b].d {
			return hits[a].d < hits[b].d
		}
		return hits[a].i < hits[b].i
	})
	var out []string
	for _, h := range hits {
		if len(out) == max {
			break
		}
		out = append(out, h.s)
	}
	return out
}

// Hint formats Closest's result as an error suffix: `; did you mean "a"?`
// or `; did you mean one of "a", "b"?`, or "" when there is none.
func Hint(word string, candidates []string) string {
	c := Closest(word, candidates, 3)
	switch len(c) {
	case 0:
		return ""
	case 1:
		return `; did you mean "` + c[0] + `"?`
	}
	return `; did you mean one of "` + strings.Join(c, `", "`) + `"?`
}

// distance is the Levenshtein distance between a and b, in bytes; inputs
// are short (keys and names), so the quadratic table is fine.
func distance(a, b string) int {
	if len(a) > 256 || len(b) > 256 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
