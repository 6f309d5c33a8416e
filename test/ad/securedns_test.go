package ad

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestDCTakesSecureUpdatesOnly: the zone is AD-integrated with secure updates only, as Windows
// installs it: a workstation holding a ticket registers _vlmcs._tcp by GSS-TSIG, an unsigned
// registration is refused, and the zone cannot be transferred.
func TestDCTakesSecureUpdatesOnly(t *testing.T) {
	needDC(t)
	srv := "_vlmcs._tcp.secure.corp.example"
	register(t, srv+" 600 SRV 0 0 1688 pc42.secure.corp.example", "pc42.secure.corp.example 600 A 127.0.0.42")

	code, out := nsupdate(t, false, "update add "+srv+" 600 SRV 0 0 1688 pc43.secure.corp.example")
	if code == 0 || !strings.Contains(out, "REFUSED") {
		t.Errorf("unsigned update: exit %d, want REFUSED:\n%s", code, out)
	}
	if got := lookup(t, srv, dns.TypeSRV); len(got) != 1 || !strings.Contains(got[0], "pc42") {
		t.Errorf("SRV after the unsigned update = %q, want pc42's only", got)
	}

	m := new(dns.Msg)
	m.SetAxfr("corp.example.")
	ch, err := new(dns.Transfer).In(m, dc.DNSAddr())
	transferred := 0
	if err == nil {
		for env := range ch {
			if env.Error != nil {
				err = env.Error
				break
			}
			transferred += len(env.RR)
		}
	}
	if err == nil || transferred > 0 {
		t.Errorf("zone transfer: %d records, err %v; want refused", transferred, err)
	}
}
