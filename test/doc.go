// Package test holds kmsdns's end-to-end tests: the real bin/coredns and kms-responder on
// loopback, driven by the shared harness (test/harness) and by real peers (dig, nsupdate).
package test
