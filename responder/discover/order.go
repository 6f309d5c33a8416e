package discover

import (
	"math/rand/v2"
	"slices"
)

// Order returns the targets in the order a client tries them (RFC 2782):
// ascending priority, and within one priority repeated weighted random
// draws over the targets not yet drawn: a number x uniform in [0, sum of
// weights] picks the first target whose running sum of weights reaches x,
// with weight-0 targets placed first. So a target of weight w is drawn
// with probability about w/sum, a weight-0 target rarely (x = 0), and when
// all weights are 0 the order is uniformly random. r supplies the
// randomness (nil: math/rand/v2's global source). targets is not modified.
func Order(targets []Target, r *rand.Rand) []Target {
	intN := rand.IntN
	shuffle := rand.Shuffle
	if r != nil {
		intN, shuffle = r.IntN, r.Shuffle
	}
	sorted := slices.Clone(targets)
	// "Any order" within a priority is made random, so that equal
	// candidates are not always drawn in answer order.
	shuffle(len(sorted), func(i, j int) { sorted[i], sorted[j] = sorted[j], sorted[i] })
	slices.SortStableFunc(sorted, func(a, b Target) int { return int(a.Priority) - int(b.Priority) })

	out := make([]Target, 0, len(sorted))
	for start := 0; start < len(sorted); {
		end := start + 1
		for end < len(sorted) && sorted[end].Priority == sorted[start].Priority {
			end++
		}
		out = appendWeighted(out, sorted[start:end], intN)
		start = end
	}
	return out
}

// appendWeighted draws the targets of one priority one by one, RFC 2782's
// way: weight-0 targets first in the running list, a random number in
// [0, sum of weights], the first target whose running sum reaches it.
func appendWeighted(out, group []Target, intN func(int) int) []Target {
	list := make([]Target, 0, len(group))
	for _, t := range group {
		if t.Weight == 0 {
			list = append(list, t)
		}
	}
	for _, t := range group {
		if t.Weight != 0 {
			list = append(list, t)
		}
	}
	for len(list) > 0 {
		sum := 0
		for _, t := range list {
			sum += int(t.Weight)
		}
		x := intN(sum + 1)
		pick, running := len(list)-1, 0
		for i, t := range list {
			running += int(t.Weight)
			if running >= x {
				pick = i
				break
			}
		}
		out = append(out, list[pick])
		list = slices.Delete(list, pick, pick+1)
	}
	return out
}
