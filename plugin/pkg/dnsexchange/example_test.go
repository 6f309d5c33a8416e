package dnsexchange_test

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsexchange"
	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
)

// A signed SRV query: UDP first, TCP when the answer is truncated.
func ExampleExchange() {
	key, err := tsigkey.ParseSpec("hmac-sha256:audit-key:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		fmt.Println(err)
		return
	}
	m := new(dns.Msg)
	m.SetQuestion("_vlmcs._tcp.corp.example.", dns.TypeSRV)
	m.SetEdns0(1232, false)
	m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := dnsexchange.Exchange(ctx, "127.0.0.1:53", m, dnsexchange.Options{Key: &key, Timeout: 2 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Net, dns.RcodeToString[rep.Msg.Rcode], len(rep.Msg.Answer))
}
