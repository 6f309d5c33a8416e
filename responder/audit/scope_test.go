package audit

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestAuditConnectsOnlyWhereRecordsPoint runs an audit against a hostile
// DNS server (an in-process miekg/dns server: no real server crafts such
// answers) whose SRV answer carries glue for names that are not targets, an
// address record at another owner, and a target on a port other than the
// one listened to. The audit may connect only to the target's own address
// and the SRV record's port.
func TestAuditConnectsOnlyWhereRecordsPoint(t *testing.T) {
	// Two listeners that count connections: the target's and a bystander's.
	listen := func(addr string) (*net.TCPListener, *atomic.Int32) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		n := new(atomic.Int32)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				n.Add(1)
				c.Close()
			}
		}()
		t.Cleanup(func() { l.Close() })
		return l.(*net.TCPListener), n
	}
	target, targetHits := listen("127.0.0.1:0")
	bystander, bystanderHits := listen("127.0.0.2:0")
	tport := target.Addr().(*net.TCPAddr).Port
	bport := bystander.Addr().(*net.TCPAddr).Port

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		rr := func(s string) dns.RR { r, _ := dns.NewRR(s); return r }
		switch q.Question[0].Qtype {
		case dns.TypeSRV:
			m.Answer = append(m.Answer,
				rr("_VLMCS._TCP.corp.test. 60 IN SRV 0 0 "+strconv.Itoa(tport)+" kms.corp.test."),
				// An address record at another owner in the answer.
				rr("other.corp.test. 60 IN A 127.0.0.2"))
			m.Extra = append(m.Extra,
				rr("kms.corp.test. 60 IN A 127.0.0.1"),
				// Glue for a name no SRV record names.
				rr("bystander.corp.test. 60 IN A 127.0.0.2"),
				// An SRV record at another owner, smuggled into additional.
				rr("_vlmcs._tcp.corp.test. 60 IN SRV 0 0 "+strconv.Itoa(bport)+" bystander.corp.test."))
		case dns.TypeSOA:
			m.Ns = append(m.Ns, rr("corp.test. 60 IN SOA ns. h. 1 2 3 4 5"))
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()

	ports, err := ParsePorts([]string{strconv.Itoa(tport), strconv.Itoa(bport)})
	if err != nil {
		t.Fatal(err)
	}
	// Loopback is reported, not probed, unless asked; a port outside the
	// ports rule is never probed.
	for _, cfg := range []Config{{}, {ProbeLocal: true}} {
		cfg.Server, cfg.Domains, cfg.Timeout = pc.LocalAddr().String(), []string{"corp.test"}, time.Second
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Findings) != 1 || rep.Findings[0].Class != ClassNotProbed || targetHits.Load() != 0 {
			t.Errorf("probe-local %v: findings %+v, %d connections: want one not-probed finding, none", cfg.ProbeLocal, rep.Findings, targetHits.Load())
		}
	}
	rep, err := Run(context.Background(), Config{Server: pc.LocalAddr().String(), Domains: []string{"corp.test"}, Timeout: time.Second,
		Ports: ports, ProbeLocal: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Address != "127.0.0.1" || int(rep.Findings[0].Port) != tport {
		t.Errorf("findings %+v, want only kms.corp.test at 127.0.0.1:%d", rep.Findings, tport)
	}
	if targetHits.Load() == 0 {
		t.Error("the target was not probed")
	}
	if n := bystanderHits.Load(); n != 0 {
		t.Errorf("the audit connected %d time(s) to an address no record names", n)
	}
}

// TestDoctorTruncatedWithoutTCP: a server whose SRV answers are truncated
// over UDP and that takes no TCP stops the doctor at the SRV step, named.
func TestDoctorTruncatedWithoutTCP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Truncated = true
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()
	d, err := Doctor(context.Background(), DoctorConfig{Server: pc.LocalAddr().String(), Suffixes: []string{"corp.test"}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d.FailedStep != StepSRV || !strings.Contains(d.Cause, "truncated over UDP") || !strings.Contains(d.Fix, "TCP port 53") {
		t.Errorf("step %q cause %q fix %q", d.FailedStep, d.Cause, d.Fix)
	}
}
