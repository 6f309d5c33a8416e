package main

import (
	"testing"
	"time"
)

func TestHistQuantile(t *testing.T) {
	us := time.Microsecond
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", []time.Duration{10 * us}, 0.99, 11 * us},
		{"median of 1..100", seq(100), 0.50, 50 * us},
		{"p99 of 1..100", seq(100), 0.99, 99 * us},
		{"p99.9 of 1..1000", seq(1000), 0.999, 999 * us},
		{"overflow", []time.Duration{time.Second}, 0.5, histMax},
		{"negative clamps to 0", []time.Duration{-5 * us}, 0.5, us},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHist()
			for _, d := range tc.samples {
				h.add(d)
			}
			if got := h.quantile(tc.q); got != tc.want {
				t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestHistMerge(t *testing.T) {
	a, b := newHist(), newHist()
	for _, d := range seq(50) {
		a.add(d)
	}
	for _, d := range seq(100)[50:] {
		b.add(d)
	}
	b.add(time.Second)
	a.merge(b)
	if a.n != 101 || a.overflow != 1 || a.max != time.Second {
		t.Fatalf("merged n=%d overflow=%d max=%v, want 101, 1, 1s", a.n, a.overflow, a.max)
	}
	if got := a.quantile(0.5); got != 51*time.Microsecond {
		t.Errorf("median = %v, want 51µs", got)
	}
}

// seq returns the latencies 0µs .. n-1µs (bucket i holds [i, i+1) µs).
func seq(n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i) * time.Microsecond
	}
	return s
}
