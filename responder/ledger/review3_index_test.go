package ledger

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestReview3ClientReadsWhileRecordsMove: renewals at an advancing clock
// move each record to a new key (delete and put), and prunes run between
// them; a concurrent Client must find every client already applied, with
// at least the requests applied, at every moment: the index and the store
// never disagree for a reader.
func TestReview3ClientReadsWhileRecordsMove(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	ctx := context.Background()
	const n = 40
	done := make(chan error, 1)
	var recorded atomic.Int64
	go func() {
		for i := range 4 * n {
			clock.Advance(time.Second)
			if err := l.Record(ctx, act(clock, i%n, testkit.AppWindows)); err != nil {
				done <- err
				return
			}
			var err error
			if i%7 == 0 {
				err = l.Prune(ctx)
			} else {
				err = l.Flush(ctx)
			}
			if err != nil {
				done <- err
				return
			}
			recorded.Store(int64(i + 1))
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if c, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows); err != nil || !ok || c.Requests != 4 {
					t.Fatalf("client %d at the end: %+v %v %v", i, c, ok, err)
				}
			}
			if s := l.Stats(); s.Clients != n {
				t.Fatalf("clients %d, want %d", s.Clients, n)
			}
			return
		default:
		}
		r := int(recorded.Load())
		if r == 0 {
			continue
		}
		for j := 0; j < min(r, n); j++ {
			want := uint32((r-1-j)/n + 1)
			c, ok, err := l.Client(testkit.CMID(j), testkit.AppWindows)
			if err != nil || !ok || c.Requests < want {
				t.Fatalf("client %d after %d records: %+v %v %v, want at least %d requests", j, r, c, ok, err, want)
			}
		}
	}
}
