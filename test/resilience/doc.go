// Package resilience holds kms-responder's process-level hardening tests:
// slowloris and hostile clients, a full disk, an unreachable DNS server, and
// (with `make soak`) repeated kill -9 under load. The tests run
// the real binary ($KMSDNS_BIN/kms-responder, or one built per run) on
// loopback with ports chosen at run time and stop it in t.Cleanup; the
// soakcheck command is the load client and ledger checker that
// build/soak.sh uses to prove no answered activation was lost.
package resilience
