package host

import (
	"fmt"
	"math"
	"testing"
)

// TestCountedReason checks the answered request's reason, built without
// fmt, against the fmt formats the log line has always had, on both sides
// of the threshold and at the extremes of each number.
func TestCountedReason(t *testing.T) {
	for _, tc := range []struct {
		group          string
		newClient      bool
		count, capN    int
		need           uint32
		wantActivation bool
	}{
		{"windows-server-2025", true, 25, 50, 25, true},
		{"windows-server-2025", false, 26, 50, 25, true},
		{"office-ltsc-2024", true, 4, 10, 5, false},
		{"office-ltsc-2024", false, 0, 0, 1, false},
		{"g", false, 0, 0, 0, true},
		{"a-group-name-long-enough-to-outgrow-the-stack-buffer-of-the-reason-" +
			"a-group-name-long-enough-to-outgrow-the-stack-buffer", true, 7, math.MaxInt, math.MaxUint32, false},
		{"g", false, math.MaxInt, math.MaxInt, math.MaxUint32, true},
		{"", true, 2000, 2000, 1000, true},
	} {
		who := "known client"
		if tc.newClient {
			who = "new client"
		}
		want := fmt.Sprintf("counted, below threshold: count %d of %d needed, by %s; %s, cap %d", tc.count, tc.need, tc.group, who, tc.capN)
		if tc.wantActivation {
			want = fmt.Sprintf("activated by %s; %s, count %d of cap %d (needs %d)", tc.group, who, tc.count, tc.capN, tc.need)
		}
		if got := countedReason(tc.group, tc.newClient, tc.count, tc.capN, tc.need); got != want {
			t.Errorf("countedReason(%q, %v, %d, %d, %d)\n got %q\nwant %q", tc.group, tc.newClient, tc.count, tc.capN, tc.need, got, want)
		}
	}
}
