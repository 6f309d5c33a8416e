package main

import "time"

// histMax is the largest latency the histogram resolves; slower answers land in the overflow.
const histMax = 100 * time.Millisecond

// hist counts latencies in 1 µs buckets up to histMax.
type hist struct {
	buckets  []uint32
	overflow uint64
	n        uint64
	max      time.Duration
}

func newHist() *hist { return &hist{buckets: make([]uint32, histMax/time.Microsecond)} }

// add records one latency.
func (h *hist) add(d time.Duration) {
	h.n++
	if d > h.max {
		h.max = d
	}
	i := int(d / time.Microsecond)
	if i < 0 {
		i = 0
	}
	if i >= len(h.buckets) {
		h.overflow++
		return
	}
	h.buckets[i]++
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	for i, c := range o.buckets {
		h.buckets[i] += c
	}
	h.overflow += o.overflow
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which fraction q of the samples lie (bucket upper
// edge), histMax when it falls in the overflow, 0 for an empty histogram.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.buckets {
		seen += uint64(c)
		if seen >= rank {
			return time.Duration(i+1) * time.Microsecond
		}
	}
	return histMax
}
