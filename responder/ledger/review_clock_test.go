package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestReviewSkewRefusalDefeatsClockGuard: pruning waits while the clock
// is more than a day past the newest *answered* client, so that a host
// clock that jumped ahead deletes nothing. But when the host's clock is
// wrong, honest clients are refused for skew (0xC004F06C), and a refusal
// of a client answered before updates its audit record's last request
// to the host's wrong time: the guard takes that as an answered client
// at the new time, and the next prune deletes every audit record older
// than the retention, for good. Expected safe behaviour: only answered
// (successful) requests vouch for the clock; a refusal, above all a
// clock-skew refusal, never lets pruning run.
func TestReviewSkewRefusalDefeatsClockGuard(t *testing.T) {
	const day = 24 * time.Hour
	ctx := context.Background()
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	for i := 1; i <= 3; i++ {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	// The host's clock jumps 200 days ahead. Client 1 comes back with the
	// right time and is refused for skew.
	clock.Advance(200 * day)
	skew := act(clock, 1, testkit.AppWindows)
	skew.Counted, skew.Result = false, 0xC004F06C
	if err := l.Record(ctx, skew); err != nil {
		t.Fatal(err)
	}
	if err := l.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 3; i++ {
		if _, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows); err != nil || !ok {
			t.Errorf("client %d's audit record was deleted (err %v) after the clock jumped 200 days and the only request since was refused for clock skew", i, err)
		}
	}
}
