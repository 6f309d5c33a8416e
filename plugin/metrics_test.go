package vlmcs

import (
	"strings"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmsdns/kmsdns/plugin/pkg/refusal"
)

// TestHelpNamesEveryValue: a metric's Help string (what `# HELP` shows an operator) names every
// value its state, result, kind or reason label takes.
func TestHelpNamesEveryValue(t *testing.T) {
	tests := []struct {
		name   string
		c      prometheus.Collector
		values []string
	}{
		{"members", membersGauge, memberStates[:]},
		{"updates_total", updatesTotal, []string{refusal.OK, refusal.Format, refusal.NotZone, refusal.BadKey, refusal.BadSig,
			refusal.BadTime, refusal.Unsigned, refusal.Outside, refusal.DeleteAll, refusal.UnapprovedTarget,
			refusal.UnapprovedAddr, refusal.ForeignAddr, refusal.NotGranted, refusal.Prereq, refusal.Replay, refusal.Full,
			refusal.Transport, refusal.Signed, refusal.BeforeStart, refusal.UnapprovedPort, refusal.MemberLimit,
			refusal.ForeignTarget, refusal.BadName, refusal.Static, refusal.ReplayFull}},
		{"health_changes_total", healthChanges, []string{healthUp.String(), healthDown.String()}},
		{"answers_total", answersTotal, []string{"members", "last_known", "empty"}},
		{"scrubbed_records_total", scrubbedTotal, []string{"unapproved", "unresolved", "unhealthy", "glue", "alias", "alias-loop", "dname", "passthrough", "address", "delegation"}},
		{"refused_queries_total", refusedTotal, []string{"transfer", "opcode"}},
		{"probes_total", probesTotal, []string{"success", "failure", "skipped"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan *prometheus.Desc, 1)
			tc.c.Describe(ch)
			desc := (<-ch).String()
			for _, v := range tc.values {
				if !strings.Contains(desc, v) {
					t.Errorf("Help of %s does not name %q: %s", tc.name, v, desc)
				}
			}
		})
	}
}

// TestUpdateZoneLabel: an update naming no publish zone is counted under a zone of the
// Corefile that holds its name, never under the name the sender chose nor a made-up value.
func TestUpdateZoneLabel(t *testing.T) {
	v := &Vlmcs{cfg: &config{zones: []string{"example.org.", "ad.example.org."}, block: []string{"example.org.", "ad.example.org.", "test."}}}
	tests := []struct {
		zone, want string
	}{
		{"sub.ad.example.org.", "ad.example.org."},
		{"SUB.Example.ORG.", "example.org."},
		{"attacker-chosen-1.test.", "test."},
		{"elsewhere.", "."},
	}
	for _, tc := range tests {
		r := new(dns.Msg)
		r.SetUpdate(tc.zone)
		if got := v.updateZoneLabel(r); got != tc.want {
			t.Errorf("zone %s: label %q, want %q", tc.zone, got, tc.want)
		}
	}
	if got := v.updateZoneLabel(new(dns.Msg)); got != "." {
		t.Errorf("no zone section: label %q, want \".\"", got)
	}
}

// TestServerLabel: the server label of what happens outside requests is written as CoreDNS
// writes the listener's address, which metrics.WithServer reports for requests.
func TestServerLabel(t *testing.T) {
	tests := []struct {
		hosts     []string
		transport string
		want      string
	}{
		{nil, "", "dns://:53"},
		{[]string{""}, "dns", "dns://:53"},
		{[]string{"127.0.0.1", "::1"}, "dns", "dns://127.0.0.1:53"},
		{[]string{"::1"}, "dns", "dns://[::1]:53"},
		{[]string{"0:0::1"}, "dns", "dns://[::1]:53"},
	}
	for _, tc := range tests {
		dc := &dnsserver.Config{ListenHosts: tc.hosts, Transport: tc.transport, Port: "53"}
		if got := serverLabel(dc); got != tc.want {
			t.Errorf("hosts %v: %q, want %q", tc.hosts, got, tc.want)
		}
	}
}
