// Package resilience holds kms-responder's process-level hardening tests
// (issue 6): slowloris and hostile clients, a full disk, an unreachable DNS
// server and repeated kill -9 under load. The tests run the real binary on
// loopback with ports chosen at run time; soak.go is the checker that
// build/soak.sh uses to prove no answered activation was lost.
package resilience
