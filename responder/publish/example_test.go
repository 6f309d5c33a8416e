package publish_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
	"github.com/kmsdns/kmsdns/responder/publish"
)

// A responder registers with two DNS servers, withdraws while it cannot
// record activations, and withdraws for good on shutdown.
func ExamplePublisher() {
	key, _ := tsigkey.ParseSpec("hmac-sha256:kms1-key:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM=")
	p, err := publish.New(publish.Config{
		Servers:   []string{"192.0.2.53:53", "192.0.2.54:53"},
		Zone:      "example.test",
		Target:    "kms1.example.test",
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Lease:     2 * time.Minute,
		Key:       &key,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go p.Run(ctx)

	p.Suspend("disk full") // later: p.Resume()

	shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	p.Withdraw(shutdown) // Run returns
	cancel()
}
