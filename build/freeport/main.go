// Command freeport prints loopback ports that are free for both TCP and UDP,
// for the scripts under build/ that start servers (make run, make bench).
//
//	go run ./build/freeport [-addr 127.0.0.1] [-n 1]
//	go run ./build/freeport -check 127.0.0.1:1053 -check 127.0.0.2:1688
//
// With -check it instead verifies that each address's port is free for TCP
// and UDP, binding without SO_REUSEPORT: CoreDNS binds with SO_REUSEPORT, so
// a stale instance would otherwise share the port and answer silently.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
)

type addrList []string

func (a *addrList) String() string     { return strings.Join(*a, ",") }
func (a *addrList) Set(s string) error { *a = append(*a, s); return nil }

func main() {
	addr := flag.String("addr", "127.0.0.1", "loopback address to find ports on")
	n := flag.Int("n", 1, "how many ports")
	var checks addrList
	flag.Var(&checks, "check", "`ADDR:PORT` that must be free (repeatable)")
	flag.Parse()
	if len(checks) > 0 {
		bad := 0
		for _, c := range checks {
			if err := free(c); err != nil {
				fmt.Fprintf(os.Stderr, "freeport: %s is in use: %v\n", c, err)
				bad++
			}
		}
		if bad > 0 {
			os.Exit(1)
		}
		return
	}
	seen := map[string]bool{}
	for len(seen) < *n {
		port, err := pick(*addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "freeport:", err)
			os.Exit(1)
		}
		if !seen[port] {
			seen[port] = true
			fmt.Println(port)
		}
	}
}

// pick asks the kernel for a free TCP port and checks UDP on it too.
func pick(host string) (string, error) {
	for range 50 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", err
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ln.Close()
		if free(net.JoinHostPort(host, port)) == nil {
			return port, nil
		}
	}
	return "", fmt.Errorf("no port free for both TCP and UDP on %s", host)
}

// free binds addr for TCP and UDP (without SO_REUSEPORT) and releases it.
func free(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return pc.Close()
}
