package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// loadResult is one sender's (or the merged) outcome.
type loadResult struct {
	sent, ok, bad, timeouts uint64
	lat                     *hist
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var c common
	c.bind(fs)
	conc := fs.Int("c", 4, "concurrent senders (1-256), one query outstanding each")
	dur := fs.Duration("d", 10*time.Second, "duration")
	timeout := fs.Duration("timeout", 500*time.Millisecond, "per-query timeout")
	minAns := fs.Int("answers", 1, "answer records a good response must carry at least")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ap, err := c.loopback()
	if err != nil {
		return err
	}
	if *conc < 1 || *conc > 256 {
		return fmt.Errorf("-c %d: want 1-256", *conc)
	}
	if err := positive("d", *dur); err != nil {
		return err
	}
	if err := positive("timeout", *timeout); err != nil {
		return err
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.CanonicalName(c.name), dns.TypeSRV)
	wire, err := q.Pack()
	if err != nil {
		return fmt.Errorf("packing the query: %v", err)
	}
	conns := make([]*net.UDPConn, *conc)
	for i := range conns {
		conns[i], err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("sender %d: %v", i, err)
		}
		defer conns[i].Close()
	}
	results := make([]loadResult, *conc)
	start := time.Now()
	end := start.Add(*dur)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { results[i] = send(conns[i], wire, uint16(i)<<8, end, *timeout, *minAns) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := loadResult{lat: newHist()}
	for _, r := range results {
		total.sent += r.sent
		total.ok += r.ok
		total.bad += r.bad
		total.timeouts += r.timeouts
		total.lat.merge(r.lat)
	}
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }
	fmt.Fprintf(os.Stdout, "dnsload: sent=%d ok=%d bad=%d timeouts=%d qps=%.0f p50_us=%s p99_us=%s p999_us=%s max_us=%s\n",
		total.sent, total.ok, total.bad, total.timeouts, float64(total.ok)/elapsed.Seconds(),
		us(total.lat.quantile(0.50)), us(total.lat.quantile(0.99)), us(total.lat.quantile(0.999)), us(total.lat.max))
	if total.ok == 0 {
		return errors.New("no good responses")
	}
	return nil
}

// send runs one closed-loop sender until end. IDs are base+counter so stale answers to an
// earlier, timed-out query are recognised and skipped.
func send(conn *net.UDPConn, query []byte, base uint16, end time.Time, timeout time.Duration, minAns int) loadResult {
	r := loadResult{lat: newHist()}
	msg := make([]byte, len(query))
	copy(msg, query)
	buf := make([]byte, 4096)
	for id := base; time.Now().Before(end); id = base | (id+1)&0xff {
		msg[0], msg[1] = byte(id>>8), byte(id)
		t0 := time.Now()
		if _, err := conn.Write(msg); err != nil {
			r.bad++
			continue
		}
		r.sent++
		deadline := t0.Add(timeout)
		_ = conn.SetReadDeadline(deadline)
		for {
			n, err := conn.Read(buf)
			if err != nil { // deadline passed (or the socket failed): lost
				r.timeouts++
				r.lat.add(timeout)
				break
			}
			if n < 12 || uint16(buf[0])<<8|uint16(buf[1]) != id {
				continue // stale answer to an earlier query
			}
			r.lat.add(time.Since(t0))
			if good(buf[:n], minAns) {
				r.ok++
			} else {
				r.bad++
			}
			break
		}
	}
	return r
}

// good reports whether a response header says QR, NOERROR, not truncated, with at least
// minAns answer records.
func good(resp []byte, minAns int) bool {
	if len(resp) < 12 {
		return false
	}
	qr := resp[2]&0x80 != 0
	tc := resp[2]&0x02 != 0
	rcode := resp[3] & 0x0f
	ancount := int(resp[6])<<8 | int(resp[7])
	return qr && !tc && rcode == 0 && ancount >= minAns
}
