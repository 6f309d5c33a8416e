package discover

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestOrderPriorityAndWeights(t *testing.T) {
	targets := []Target{
		{Name: "p5a.", Priority: 5},
		{Name: "w70.", Priority: 1, Weight: 70},
		{Name: "p5b.", Priority: 5},
		{Name: "w10.", Priority: 1, Weight: 10},
		{Name: "p0.", Priority: 0, Weight: 3},
		{Name: "w20.", Priority: 1, Weight: 20},
	}
	r := rand.New(rand.NewPCG(2782, 1))
	const draws = 100000
	first := map[string]int{}   // first of priority 1
	p5first := map[string]int{} // first of priority 5
	for range draws {
		got := Order(targets, r)
		if len(got) != len(targets) {
			t.Fatalf("Order returned %d targets, want %d", len(got), len(targets))
		}
		seen := map[string]bool{}
		for i, tg := range got {
			if seen[tg.Name] {
				t.Fatalf("%s drawn twice: %v", tg.Name, got)
			}
			seen[tg.Name] = true
			if i > 0 && got[i-1].Priority > tg.Priority {
				t.Fatalf("priorities out of order: %v", got)
			}
		}
		first[got[1].Name]++
		p5first[got[4].Name]++
	}
	if targets[0].Name != "p5a." || targets[1].Name != "w70." {
		t.Fatal("Order modified its input")
	}
	// x is uniform on 0..100; x = 0 takes whichever target the shuffle put
	// first, so each gets w/101 plus a third of 1/101.
	for name, w := range map[string]float64{"w10.": 10, "w20.": 20, "w70.": 70} {
		want := (w + 1.0/3) / 101
		got := float64(first[name]) / draws
		if math.Abs(got-want) > 0.006 {
			t.Errorf("%s drawn first %.4f of the time, want %.4f", name, got, want)
		}
	}
	// Equal zero weights: either first, evenly.
	if got := float64(p5first["p5a."]) / draws; math.Abs(got-0.5) > 0.01 {
		t.Errorf("p5a. first in its priority %.4f of the time, want 0.5", got)
	}
}

func TestOrderZeroWeightRarelyFirst(t *testing.T) {
	targets := []Target{{Name: "zero."}, {Name: "a.", Weight: 50}, {Name: "b.", Weight: 50}}
	r := rand.New(rand.NewPCG(7, 7))
	const draws = 100000
	var zeroFirst, zeroLast int
	for range draws {
		got := Order(targets, r)
		if got[0].Name == "zero." {
			zeroFirst++
		}
		if got[2].Name == "zero." {
			zeroLast++
		}
	}
	// RFC 2782: weight 0 is chosen only when the random number is 0.
	if got, want := float64(zeroFirst)/draws, 1.0/101; math.Abs(got-want) > 0.003 {
		t.Errorf("weight-0 target first %.4f of the time, want %.4f", got, want)
	}
	// In the second round it competes with one weight-50 target: 1/51.
	if got, want := float64(zeroLast)/draws, (1-1.0/101)*(50.0/51); math.Abs(got-want) > 0.006 {
		t.Errorf("weight-0 target last %.4f of the time, want %.4f", got, want)
	}
}

func TestOrderEmptyAndNilRand(t *testing.T) {
	if got := Order(nil, nil); len(got) != 0 {
		t.Errorf("Order(nil) = %v", got)
	}
	one := []Target{{Name: "only.", Priority: 3, Weight: 9}}
	if got := Order(one, nil); len(got) != 1 || got[0].Name != "only." {
		t.Errorf("Order(one) = %v", got)
	}
}

func BenchmarkOrder(b *testing.B) {
	targets := make([]Target, 16)
	for i := range targets {
		targets[i] = Target{Priority: uint16(i % 3), Weight: uint16(i * 7 % 50)}
	}
	r := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		Order(targets, r)
	}
}
