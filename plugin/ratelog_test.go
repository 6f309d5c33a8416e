package vlmcs

import (
	"strings"
	"testing"
	"time"
)

// TestRateLogClasses: once the period's budget is spent, the first line of each class not yet
// written in the period is still written; further lines of it and unclassed lines are not.
func TestRateLogClasses(t *testing.T) {
	var got []string
	l := &rateLog{burst: 2, period: time.Hour, out: func(s string) { got = append(got, s) }}
	for range 5 {
		l.Classf("update unsigned unsigned", "noise")
	}
	l.Classf("update signed tsig-badsig", "bad signature")
	l.Classf("update signed tsig-badsig", "bad signature again")
	l.Classf("rogue", "rogue target")
	l.Logf("unclassed")
	want := "noise|noise|bad signature|rogue target"
	if s := strings.Join(got, "|"); s != want {
		t.Errorf("written %q, want %q", s, want)
	}
}
