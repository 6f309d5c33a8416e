package vlmcs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRogueSet(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name    string
		observe func(r *rogueSet)
		want    int    // series exported
		has     string // a line the exposition must hold
	}{
		{"one target", func(r *rogueSet) { r.observe("dns://:53", "corp.test.", "rogue-pc.corp.test.", t0) }, 1,
			`coredns_vlmcs_rogue_target_last_seen_timestamp_seconds{server="dns://:53",target="rogue-pc.corp.test.",zone="corp.test."}`},
		{"seen again: one series", func(r *rogueSet) {
			r.observe("dns://:53", "corp.test.", "a.corp.test.", t0)
			r.observe("dns://:53", "corp.test.", "a.corp.test.", t0.Add(time.Second))
		}, 1, ""},
		{"same name in two zones", func(r *rogueSet) {
			r.observe("dns://:53", "corp.test.", "a.example.", t0)
			r.observe("dns://:53", "lab.test.", "a.example.", t0)
		}, 2, ""},
		{"bounded: names beyond the cap are not exported", func(r *rogueSet) {
			for i := range maxRogueTargets + 50 {
				r.observe("dns://:53", "corp.test.", fmt.Sprintf("h%d.corp.test.", i), t0)
			}
		}, maxRogueTargets, ""},
		{"forgotten after an hour unseen", func(r *rogueSet) {
			r.observe("dns://:53", "corp.test.", "old.corp.test.", t0.Add(-rogueForget-time.Minute))
			r.observe("dns://:53", "corp.test.", "new.corp.test.", t0)
		}, 1, `target="new.corp.test."`},
		{"a full set makes room by forgetting old names", func(r *rogueSet) {
			for i := range maxRogueTargets {
				r.observe("dns://:53", "corp.test.", fmt.Sprintf("h%d.corp.test.", i), t0.Add(-2*rogueForget))
			}
			r.observe("dns://:53", "corp.test.", "fresh.corp.test.", t0)
		}, 1, `target="fresh.corp.test."`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRogueSet()
			tc.observe(r)
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(r)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					var ls []string
					for _, l := range m.GetLabel() {
						ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
					}
					lines = append(lines, mf.GetName()+"{"+strings.Join(ls, ",")+"}")
				}
			}
			if len(lines) != tc.want {
				t.Errorf("%d series, want %d", len(lines), tc.want)
			}
			if tc.has != "" && !strings.Contains(strings.Join(lines, "\n"), tc.has) {
				t.Errorf("no series with %s in %v", tc.has, lines)
			}
		})
	}
}
