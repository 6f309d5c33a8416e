package ad

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/gsstsig"
	"github.com/kmsdns/kmsdns/test/samba"
)

// TestGSSTSIGContextWithTheDC: a context negotiated with the DC's own Kerberos signs an update
// the DC applies, and the DC's signed answer verifies.
func TestGSSTSIGContextWithTheDC(t *testing.T) {
	needDC(t)
	cl, err := gsstsig.Credentials{}.Client()
	if err != nil {
		t.Fatal(err)
	}
	c, err := gsstsig.Negotiate(context.Background(), cl, dc.DNSAddr(), samba.DCName, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetUpdate("corp.example.")
	rr, _ := dns.NewRR("go.gss.corp.example. 600 IN A 127.0.0.77")
	m.Insert([]dns.RR{rr})
	m.SetTsig(c.KeyName, gsstsig.Algorithm, 300, time.Now().Unix())
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigProvider: c}).Exchange(m, dc.DNSAddr())
	if err != nil {
		t.Fatalf("signed update: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("signed update: %s", dns.RcodeToString[r.Rcode])
	}
	if got := lookup(t, "go.gss.corp.example", dns.TypeA); len(got) != 1 {
		t.Errorf("A after the signed update: %q", got)
	}
}
