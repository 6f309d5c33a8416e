package vlmcs

import (
	"math/rand/v2"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// packedVariants is how many member orders a pool answer is pre-packed in.
const packedVariants = 8

// packedMax is the largest pre-packed answer served on the fast path: a plain-DNS UDP
// reply without EDNS, which the slow path would write unchanged.
const packedMax = 512

// packedBuf holds one reply while the fast path writes it.
type packedBuf [packedMax]byte

// newPackedBuf is the New function of a pool's packedBufs.
func newPackedBuf() any { return new(packedBuf) }

// packAnswers packs the SRV answer with its glue for up to packedVariants member orders (all
// of them when there are no more), with ID 0, QR and AA set and the question `srvName` SRV IN.
// Variants over packedMax bytes are left out: such answers take the slow path.
func packAnswers(srvName string, srv, extra []dns.RR) [][]byte {
	if len(srv) == 0 {
		return nil
	}
	var out [][]byte
	for _, order := range memberOrders(len(srv)) {
		m := new(dns.Msg)
		m.Response, m.Authoritative = true, true
		m.Question = []dns.Question{{Name: strings.ToLower(srvName), Qtype: dns.TypeSRV, Qclass: dns.ClassINET}}
		m.Answer = make([]dns.RR, len(srv))
		for i, k := range order {
			m.Answer[i] = srv[k]
		}
		m.Extra = extra
		b, err := m.Pack()
		if err != nil || len(b) > packedMax {
			return nil
		}
		out = append(out, b)
	}
	return out
}

// memberOrders returns every order of n members when there are at most packedVariants of
// them, else packedVariants uniformly random ones.
func memberOrders(n int) [][]int {
	if n <= 3 { // 3! = 6 <= packedVariants
		var all [][]int
		var perm func(cur []int, used []bool)
		perm = func(cur []int, used []bool) {
			if len(cur) == n {
				all = append(all, append([]int(nil), cur...))
				return
			}
			for i := range n {
				if !used[i] {
					used[i] = true
					perm(append(cur, i), used)
					used[i] = false
				}
			}
		}
		perm(nil, make([]bool, n))
		return all
	}
	out := make([][]int, packedVariants)
	for v := range out {
		o := make([]int, n)
		for i := range o {
			o[i] = i
		}
		rand.Shuffle(n, func(i, j int) { o[i], o[j] = o[j], o[i] })
		out[v] = o
	}
	return out
}

// writePacked writes one of the answer's pre-packed variants as the reply to r when that is
// exactly what the slow path would write: a UDP query without EDNS or other additional
// records, one SRV IN question whose name matches the packed one byte for byte but for case.
// It reports whether it wrote the reply.
func writePacked(w dns.ResponseWriter, r *dns.Msg, a *answer, bufs *sync.Pool) bool {
	if len(a.packed) == 0 || len(r.Extra) != 0 || len(r.Question) != 1 {
		return false
	}
	q := r.Question[0]
	if q.Qtype != dns.TypeSRV || q.Qclass != dns.ClassINET {
		return false
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); !udp {
		return false
	}
	src := a.packed[rand.IntN(len(a.packed))]
	const qOff = 12 // the header's length; the question's name follows it
	if len(src) < qOff+1+len(q.Name) || len(q.Name) != len(a.qname) {
		return false
	}
	buf := bufs.Get().(*packedBuf)
	defer bufs.Put(buf)
	b := buf[:copy(buf[:], src)]
	// The wire name is the presentation name with each dot turned into the length of the
	// label after it: a byte of a label sits one position later in the wire form.
	for i := 0; i < len(q.Name); i++ {
		c := q.Name[i]
		if c >= 0x80 || lowerASCII(c) != a.qname[i] {
			return false
		}
		if c != '.' {
			b[qOff+1+i] = c
		}
	}
	b[0], b[1] = byte(r.Id>>8), byte(r.Id)
	if r.RecursionDesired {
		b[2] |= 0x01
	}
	if r.CheckingDisabled {
		b[3] |= 0x10
	}
	w.Write(b)
	return true
}

// lowerASCII returns c in lower case when it is an ASCII upper-case letter.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
