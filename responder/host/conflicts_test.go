package host

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestConflicts: a machine ID seen from a second workstation name is
// flagged "workstations" (case does not count as a new name), one seen from
// one name at a second address "addresses"; names and addresses kept are
// bounded; the counters say how many.
func TestConflicts(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	in := f.request(1, testkit.AppWindows, testkit.KMSWin10)
	f.activate(in)
	in.Workstation = "pc-001" // same name, other case
	f.activate(in)
	if _, ok := f.host.Conflict(in.CMID); ok {
		t.Fatal("a name differing only in case is a conflict")
	}
	for i := range 6 {
		in.Workstation = fmt.Sprintf("CLONE-%d", i)
		in.Peer = netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:5000", i))
		f.activate(in)
	}
	c, ok := f.host.Conflict(in.CMID)
	if !ok || !c.Names() || len(c.Workstations) != conflictNames || c.Workstations[0] != "PC-001" || c.Workstations[1] != "CLONE-0" {
		t.Fatalf("conflict %+v ok=%v, want the first %d names, PC-001 first", c, ok, conflictNames)
	}
	if len(c.Addresses) != conflictNames || c.Addresses[0] != "127.0.0.1" {
		t.Fatalf("addresses %v", c.Addresses)
	}

	roam := f.request(2, testkit.AppWindows, testkit.KMSWin10)
	f.activate(roam)
	roam.Peer = netip.MustParseAddrPort("[::ffff:192.0.2.9]:1")
	f.activate(roam)
	c, ok = f.host.Conflict(roam.CMID)
	if !ok || c.Names() || len(c.Addresses) != 2 || c.Addresses[1] != "192.0.2.9" {
		t.Fatalf("roaming client: %+v ok=%v", c, ok)
	}
	f.activate(f.request(3, testkit.AppWindows, testkit.KMSWin10))
	if _, ok := f.host.Conflict(testkit.CMID(3)); ok {
		t.Fatal("a client seen once is a conflict")
	}
	st := f.host.ConflictStats()
	if st.Workstations != 1 || st.Addresses != 1 || st.Tracked != 3 {
		t.Fatalf("stats %+v, want 1 workstation, 1 address conflict, 3 tracked", st)
	}
}

// TestConflictTrackerBound: the tracker never holds more than
// MaxTrackedCMIDs machine IDs nor MaxConflicts conflicts; beyond that,
// conflicts are still counted, once each.
func TestConflictTrackerBound(t *testing.T) {
	tr := newConflictTracker()
	for i := range MaxTrackedCMIDs + 100 {
		tr.observe(testkit.CMID(i), "PC", netip.MustParseAddr("10.0.0.1"))
	}
	if len(tr.seen) != MaxTrackedCMIDs || tr.untracked != 100 {
		t.Fatalf("%d tracked, %d forgotten", len(tr.seen), tr.untracked)
	}
	tr = newConflictTracker()
	n := MaxConflicts + 10
	for i := range n {
		tr.observe(testkit.CMID(i), "A", netip.MustParseAddr("10.0.0.1"))
		tr.observe(testkit.CMID(i), "B", netip.MustParseAddr("10.0.0.1"))
		tr.observe(testkit.CMID(i), "C", netip.MustParseAddr("10.0.0.1"))
	}
	if len(tr.conflicts) != MaxConflicts || tr.names != n {
		t.Fatalf("%d conflicts kept, %d counted; want %d kept, %d counted", len(tr.conflicts), tr.names, MaxConflicts, n)
	}
}

// TestExpiringWithin: with an injected clock, clients whose last counted
// request is 23 or more days old leave the count within 7 days; the first
// to leave is the oldest.
func TestExpiringWithin(t *testing.T) {
	f := newFixture(t, "windows-server-2025")
	start := f.clock.Now()
	for i := range 5 {
		f.count(i, testkit.AppWindows, testkit.KMSWin10)
		f.clock.Advance(5 * 24 * time.Hour) // clients at days 0, 5, 10, 15, 20
	}
	f.clock.Advance(24 * time.Hour) // now: day 26
	var got *Expiring
	for _, e := range f.host.ExpiringWithin(7 * 24 * time.Hour) {
		if e.AppID == testkit.AppWindows {
			got = &e
		}
	}
	// Leaving by day 33: those seen before day 3 (day 0) leave at day 30.
	// Day 5 leaves at 35: not within 7 days.
	if got == nil || got.Count != 5 || got.Leaving != 1 || !got.Next.Equal(start.Add(30*24*time.Hour)) {
		t.Fatalf("expiring %+v", got)
	}
	f.clock.Advance(10 * 24 * time.Hour) // day 36: day 0 and 5 are out
	for _, e := range f.host.ExpiringWithin(7 * 24 * time.Hour) {
		if e.AppID == testkit.AppWindows && (e.Count != 3 || e.Leaving != 1) { // day 10 leaves at 40
			t.Fatalf("day 36: %+v", e)
		}
	}
}
