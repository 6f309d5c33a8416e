// Package monitoring tests what build/monitoring ships: the Prometheus rules
// (promtool check and unit tests, every alert tested firing and silent), the
// Grafana dashboard's structure, and, end to end, a real Prometheus (Debian's
// prometheus package) scraping the real bin/coredns and kms-responder on
// loopback with the rules loaded: a killed responder, a rogue registration
// and a full disk each fire their alert through Prometheus's HTTP API and
// resolve after recovery, and every metric name the rules and the dashboard
// use is one the running binaries export.
//
// The tests need prometheus and promtool: build/test.sh installs them when
// run as root; otherwise the tests are skipped, saying so.
package monitoring
