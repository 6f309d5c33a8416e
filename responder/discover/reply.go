package discover

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsexchange"
	"github.com/kmsdns/kmsdns/responder/kms"
)

// Limits on what one reply may make us keep.
const (
	// maxTargets bounds the targets kept from one answer.
	maxTargets = 128
	// maxAddrs bounds the addresses kept per target.
	maxAddrs = 16
)

// parseSRVReply checks that r answers q (an SRV query) and returns the
// targets it names with their glue. NXDOMAIN and NODATA (including an
// answer whose only targets are "." — "decidedly not available", RFC 2782)
// become *LookupError with Windows' HRESULT.
func parseSRVReply(q, r *dns.Msg) ([]Target, error) {
	qname := q.Question[0].Name
	lerr := func(code kms.HRESULT, format string, args ...any) error {
		return &LookupError{Name: qname, Code: code, Detail: fmt.Sprintf(format, args...)}
	}
	if !r.Response {
		return nil, fmt.Errorf("discover: SRV %s: reply does not have the QR bit set", qname)
	}
	if r.Id != q.Id {
		return nil, fmt.Errorf("discover: SRV %s: reply ID %d, want %d", qname, r.Id, q.Id)
	}
	if r.Opcode != dns.OpcodeQuery {
		return nil, fmt.Errorf("discover: SRV %s: reply opcode %d, want QUERY", qname, r.Opcode)
	}
	if len(r.Question) > 0 && !questionMatches(r, qname, dns.TypeSRV) {
		return nil, fmt.Errorf("discover: SRV %s: reply is for another question (%s)", qname, r.Question[0].String())
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, lerr(kms.ErrDNSNameNotExist, "NXDOMAIN: the name does not exist")
	default:
		return nil, lerr(rcodeHRESULT(r.Rcode), "server answered %s", rcodeName(r.Rcode))
	}
	if len(r.Question) != 1 {
		return nil, fmt.Errorf("discover: SRV %s: NOERROR reply has %d questions, want 1", qname, len(r.Question))
	}

	owner, _ := dnsexchange.FollowAliases(r.Answer, qname)
	var (
		targets []Target
		dot     int
	)
	for _, rr := range r.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok || srv.Hdr.Class != dns.ClassINET || !strings.EqualFold(srv.Hdr.Name, owner) {
			continue
		}
		if srv.Target == "." {
			dot++
			continue
		}
		if srv.Target == "" {
			continue // an SRV RR without RDATA (RDLENGTH 0) names no host
		}
		name := dns.CanonicalName(srv.Target)
		if duplicate(targets, name, srv.Port) || len(targets) == maxTargets {
			continue
		}
		targets = append(targets, Target{
			Name:     name,
			Port:     srv.Port,
			Priority: srv.Priority,
			Weight:   srv.Weight,
			TTL:      srv.Hdr.Ttl,
		})
	}
	if len(targets) == 0 {
		if dot > 0 {
			return nil, lerr(kms.ErrDNSNoRecords, "the SRV target is \".\": the service is not available in this domain")
		}
		return nil, lerr(kms.ErrDNSNoRecords, "NODATA: the name has no SRV records")
	}
	for i := range targets {
		targets[i].Addrs = dnsexchange.AppendAddrs(nil, r.Extra, targets[i].Name, maxAddrs)
		targets[i].Addrs = dnsexchange.AppendAddrs(targets[i].Addrs, r.Answer, targets[i].Name, maxAddrs)
	}
	return targets, nil
}

func duplicate(ts []Target, name string, port uint16) bool {
	for _, t := range ts {
		if t.Name == name && t.Port == port {
			return true
		}
	}
	return false
}

// questionMatches reports whether r's single question is (name, qtype, IN),
// names compared without regard to case.
func questionMatches(r *dns.Msg, name string, qtype uint16) bool {
	if len(r.Question) != 1 {
		return false
	}
	q := r.Question[0]
	return q.Qtype == qtype && q.Qclass == dns.ClassINET && strings.EqualFold(q.Name, name)
}

func rcodeName(rc int) string {
	if n, ok := dns.RcodeToString[rc]; ok {
		return n
	}
	return fmt.Sprintf("RCODE%d", rc)
}
