package discover_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/kmsdns/kmsdns/responder/discover"
)

func ExampleOrder() {
	targets := []discover.Target{
		{Name: "backup.example.test.", Priority: 10},
		{Name: "big.example.test.", Priority: 0, Weight: 90},
		{Name: "small.example.test.", Priority: 0, Weight: 10},
	}
	// Count which host is tried first over many clients.
	r := rand.New(rand.NewPCG(1, 2))
	first := map[string]int{}
	for range 1000 {
		first[discover.Order(targets, r)[0].Name]++
	}
	fmt.Println("backup first:", first["backup.example.test."])
	fmt.Println("big first more often than small:", first["big.example.test."] > 5*first["small.example.test."])
	// Output:
	// backup first: 0
	// big first more often than small: true
}
