package publish

import (
	"time"

	"github.com/miekg/dns"
)

// Fudge is the TSIG time window in seconds (RFC 8945's recommended 300).
const Fudge = 300

// udpSize is the EDNS0 buffer size advertised for answers (DNS flag day
// 2020 value).
const udpSize = 1232

// registerMsg builds the register/refresh UPDATE of the contract: delete
// the target's A and AAAA RRsets, add one A/AAAA per address, add the SRV
// record, and request the lease in an EDNS0 Update Lease option. Without
// addresses only the SRV record is added.
func (s *settings) registerMsg() *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(s.zone)
	if len(s.addrs) > 0 {
		m.Ns = append(m.Ns,
			&dns.ANY{Hdr: dns.RR_Header{Name: s.target, Rrtype: dns.TypeA, Class: dns.ClassANY}},
			&dns.ANY{Hdr: dns.RR_Header{Name: s.target, Rrtype: dns.TypeAAAA, Class: dns.ClassANY}},
		)
		for _, a := range s.addrs {
			if a.Is4() {
				m.Ns = append(m.Ns, &dns.A{
					Hdr: dns.RR_Header{Name: s.target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: s.ttl},
					A:   a.AsSlice(),
				})
			} else {
				m.Ns = append(m.Ns, &dns.AAAA{
					Hdr:  dns.RR_Header{Name: s.target, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: s.ttl},
					AAAA: a.AsSlice(),
				})
			}
		}
	}
	m.Ns = append(m.Ns, &dns.SRV{
		Hdr:      dns.RR_Header{Name: s.service, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: s.ttl},
		Priority: s.priority,
		Weight:   s.weight,
		Port:     s.port,
		Target:   s.target,
	})
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(udpSize)
	opt.Option = append(opt.Option, &dns.EDNS0_UL{Code: dns.EDNS0UL, Lease: s.lease})
	m.Extra = append(m.Extra, opt)
	s.sign(m)
	return m
}

// withdrawMsg builds the withdraw UPDATE of the contract: delete this
// target's SRV record and the target's A and AAAA RRsets.
func (s *settings) withdrawMsg() *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(s.zone)
	m.Ns = append(m.Ns, &dns.SRV{
		Hdr:      dns.RR_Header{Name: s.service, Rrtype: dns.TypeSRV, Class: dns.ClassNONE},
		Priority: s.priority,
		Weight:   s.weight,
		Port:     s.port,
		Target:   s.target,
	})
	if len(s.addrs) > 0 {
		m.Ns = append(m.Ns,
			&dns.ANY{Hdr: dns.RR_Header{Name: s.target, Rrtype: dns.TypeA, Class: dns.ClassANY}},
			&dns.ANY{Hdr: dns.RR_Header{Name: s.target, Rrtype: dns.TypeAAAA, Class: dns.ClassANY}},
		)
	}
	s.sign(m)
	return m
}

// sign appends the TSIG skeleton that miekg/dns fills in when it writes
// the message. The time is the system clock's: the server checks it
// against its own.
func (s *settings) sign(m *dns.Msg) {
	if s.key != nil {
		now := time.Now()
		if s.tsigNow != nil {
			now = s.tsigNow()
		}
		m.SetTsig(s.key.Name, s.key.Algorithm, Fudge, now.Unix())
	}
}
