package main

import (
	"flag"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// signals are the ones failover may send.
var signals = map[string]syscall.Signal{"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM}

func runWatch(mode string, args []string) error {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	var c common
	c.bind(fs)
	target := fs.String("target", "", "SRV target to watch (required)")
	poll := fs.Duration("poll", 20*time.Millisecond, "query interval")
	maxWait := fs.Duration("max", 15*time.Second, "give up after this long")
	pid := fs.Int("pid", 0, "failover: process to signal")
	sig := fs.String("signal", "KILL", "failover: KILL or TERM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ap, err := c.loopback()
	if err != nil {
		return err
	}
	if *target == "" {
		return fmt.Errorf("-target is required")
	}
	if err := positive("poll", *poll); err != nil {
		return err
	}
	if err := positive("max", *maxWait); err != nil {
		return err
	}
	want := mode == "await" // await: until listed; failover: until not listed
	cl := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(dns.CanonicalName(c.name), dns.TypeSRV)
	t0 := time.Now()
	if mode == "failover" {
		s, ok := signals[*sig]
		if !ok || *pid <= 1 {
			return fmt.Errorf("failover needs -pid > 1 and -signal KILL or TERM")
		}
		t0 = time.Now()
		if err := syscall.Kill(*pid, s); err != nil {
			return fmt.Errorf("kill -%s %d: %v", *sig, *pid, err)
		}
	}
	tick := time.NewTicker(*poll)
	defer tick.Stop()
	for time.Since(t0) < *maxWait {
		r, _, err := cl.Exchange(q, ap.String())
		if err == nil && r.Rcode == dns.RcodeSuccess && lists(r, *target) == want {
			fmt.Printf("%s: %s after %.1f ms\n", mode, *target, float64(time.Since(t0))/float64(time.Millisecond))
			return nil
		}
		<-tick.C
	}
	return fmt.Errorf("%s: %s not reached within %v", mode, *target, *maxWait)
}

// lists reports whether an SRV answer names target.
func lists(r *dns.Msg, target string) bool {
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok && strings.EqualFold(s.Target, dns.CanonicalName(target)) {
			return true
		}
	}
	return false
}
