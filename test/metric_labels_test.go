package test

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/test/harness"
)

// TestMetricLabelsFromListener: with a block bound to two addresses, what a request causes is
// counted under the listener it came in on (CoreDNS's metrics.WithServer), the pool's gauges
// under the block's first listen address, and an update naming no publish zone under the zone
// of the Corefile that holds its name, never under a made-up zone.
func TestMetricLabelsFromListener(t *testing.T) {
	c := harness.StartCoreDNS(t, `example.test:{{PORT}} {
	bind 127.0.0.1 127.0.0.2
	prometheus 127.0.0.1:{{METRICS}}
	vlmcs {
		approve kms1.example.test
		probe off
	}
}
`)
	port := strconv.Itoa(c.Port)
	second := net.JoinHostPort("127.0.0.2", port)

	u := new(dns.Msg)
	u.SetUpdate("sub.example.test.")
	if r, _, err := new(dns.Client).Exchange(u, second); err != nil || r.Rcode != dns.RcodeNotZone {
		t.Fatalf("update for a zone inside the publish zone: %v %v, want NOTZONE", r, err)
	}
	q := new(dns.Msg)
	q.SetQuestion("_vlmcs._tcp.example.test.", dns.TypeSRV)
	if r, _, err := new(dns.Client).Exchange(q, second); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("SRV query: %v %v", r, err)
	}

	metrics := scrape(t, c)
	for _, want := range []string{
		`coredns_vlmcs_updates_total{reason="notzone",result="NOTZONE",server="dns://127.0.0.2:` + port + `",zone="example.test."} 1`,
		`coredns_vlmcs_answers_total{kind="empty",server="dns://127.0.0.2:` + port + `",zone="example.test."} 1`,
		`coredns_vlmcs_members{server="dns://127.0.0.1:` + port + `",state="unprobeable",zone="example.test."} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, `zone="other"`) {
		t.Errorf("metrics hold a made-up zone:\n%s", metrics)
	}
}
