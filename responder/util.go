package main

import (
	"net"
	"strings"
)

// withDefaultPort appends port to hostport when it has none ("kms1" →
// "kms1:1688", "::1" → "[::1]:1688").
func withDefaultPort(hostport, port string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	h := strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	return net.JoinHostPort(h, port)
}
