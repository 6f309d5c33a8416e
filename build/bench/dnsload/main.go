// Command dnsload is kmsdns's DNS load client for `make bench` (Debian's dnsperf 2.10 reports
// no latency percentiles). Loopback only; every mode stops by itself.
//
//	dnsload load -server 127.0.0.1:PORT [-name N] [-c 4] [-d 10s] [-timeout 500ms]
//	dnsload failover -server ADDR -pid PID -signal KILL|TERM -target T [-poll 20ms] [-max 15s]
//	dnsload await -server ADDR -target T [-poll 20ms] [-max 15s]
//
// load: C senders, each on its own UDP socket with one query outstanding (closed loop), for a
// fixed duration; prints one line: sent, ok, bad (wrong ID/flags/rcode or too few answers),
// timeouts, queries/s and p50/p99/p99.9/max latency in microseconds. A timed-out query counts
// as a latency of at least the timeout.
//
// failover: sends the signal to PID, then queries the SRV name every poll interval until an
// answer no longer lists target; prints the milliseconds from the signal to that answer.
// await: polls until an answer lists target (a restarted member is back).
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "load":
		err = runLoad(os.Args[2:])
	case "failover", "await":
		err = runWatch(os.Args[1], os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dnsload load|failover|await -server ADDR:PORT [flags] (-h for flags)")
	os.Exit(2)
}

// common are the flags every mode shares.
type common struct {
	server string
	name   string
}

func (c *common) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "DNS server `ADDR:PORT` (loopback only)")
	fs.StringVar(&c.name, "name", "_vlmcs._tcp.example.test.", "SRV name to query")
}

// loopback parses the server address and refuses anything off loopback.
func (c *common) loopback() (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(c.server)
	if err != nil {
		return ap, fmt.Errorf("-server %q: %v", c.server, err)
	}
	if !ap.Addr().IsLoopback() {
		return ap, fmt.Errorf("-server %s: not a loopback address", ap)
	}
	return ap, nil
}

// positive checks that a duration flag is > 0.
func positive(flagName string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("-%s %v: must be positive", flagName, d)
	}
	return nil
}
