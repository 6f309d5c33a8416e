package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/test/testkit"
)

func openTest(t testing.TB, dir string, clock *testkit.Clock, opts Options) *Ledger {
	t.Helper()
	if clock != nil {
		opts.Clock = clock.Now
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func act(clock *testkit.Clock, i int, app guid.GUID) Activation {
	return Activation{
		Time: clock.Now(), CMID: testkit.CMID(i), App: app, CountedID: testkit.KMSWin10,
		Workstation: fmt.Sprintf("PC-%04d", i), Source: "127.0.0.1:4000", Protocol: 6,
		Counted: true, Cap: 10,
	}
}

func TestRecordAndReadBack(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	ctx := context.Background()
	first := clock.Now()
	a := act(clock, 1, testkit.AppWindows)
	if err := l.Record(ctx, a); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	a = act(clock, 1, testkit.AppWindows)
	a.Result, a.Workstation = 0xC004F06C, "PC-renamed"
	if err := l.Record(ctx, a); err != nil {
		t.Fatal(err)
	}
	c, ok, err := l.Client(testkit.CMID(1), testkit.AppWindows)
	if err != nil || !ok {
		t.Fatalf("Client: ok=%v err=%v", ok, err)
	}
	if c.Requests != 2 || !c.FirstSeen.Equal(first) || !c.LastSeen.Equal(clock.Now()) ||
		c.Workstation != "PC-renamed" || c.LastResult != 0xC004F06C || c.CountedID != testkit.KMSWin10 {
		t.Fatalf("record %+v", c)
	}
	if _, ok, _ := l.Client(testkit.CMID(1), testkit.AppOffice); ok {
		t.Fatal("record found under the wrong application")
	}
	if s := l.Stats(); s.Clients != 1 || s.Records != 2 || s.FileSize == 0 || s.LogSize == 0 {
		t.Fatalf("stats %+v", s)
	}
	if !l.Healthy() {
		t.Fatalf("unhealthy: %v", l.LastError())
	}
}

func TestRecordValidation(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	tests := []struct {
		name string
		mod  func(*Activation)
		want string
	}{
		{"zero time", func(a *Activation) { a.Time = time.Time{} }, "zero or outside"},
		{"far future", func(a *Activation) { a.Time = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, "zero or outside"},
		{"long workstation", func(a *Activation) { a.Workstation = strings.Repeat("x", 256) }, "workstation name is 256 bytes"},
		{"long source", func(a *Activation) { a.Source = strings.Repeat("x", 300) }, "source address is 300 bytes"},
		{"cap", func(a *Activation) { a.Cap = MaxCap + 1 }, "cap 2001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := act(clock, 1, testkit.AppWindows)
			tt.mod(&a)
			err := l.Record(context.Background(), a)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func countsOf(t *testing.T, l *Ledger) map[guid.GUID]AppCount {
	t.Helper()
	cs, err := l.Counts()
	if err != nil {
		t.Fatal(err)
	}
	m := map[guid.GUID]AppCount{}
	for _, c := range cs {
		m[c.App] = c
	}
	return m
}

func TestCountsAndCaps(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	ctx := context.Background()
	for i, a := range []Activation{
		act(clock, 1, testkit.AppWindows),
		act(clock, 2, testkit.AppWindows),
		act(clock, 1, testkit.AppOffice),
	} {
		if i == 1 {
			a.Cap = 50
		}
		if err := l.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// A refused request is audited but not counted, and a smaller cap
	// never lowers the stored one.
	refused := act(clock, 3, testkit.AppWindows)
	refused.Counted, refused.Cap, refused.Result = false, 10, 0xC004F042
	if err := l.Record(ctx, refused); err != nil {
		t.Fatal(err)
	}
	m := countsOf(t, l)
	if w := m[testkit.AppWindows]; w.Cap != 50 || len(w.Clients) != 2 {
		t.Fatalf("windows count %+v", w)
	}
	if o := m[testkit.AppOffice]; o.Cap != 10 || len(o.Clients) != 1 || o.Clients[0].CMID != testkit.CMID(1) {
		t.Fatalf("office count %+v", o)
	}
	if _, ok, _ := l.Client(testkit.CMID(3), testkit.AppWindows); !ok {
		t.Fatal("refused request not audited")
	}
}

func TestPersistenceAcrossReopen(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{})
	ctx := context.Background()
	for i := range 5 {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	id := Identity{EPIDs: map[string]string{"g": "epid"}, HwID: [8]byte{9, 8, 7}, HasHwID: true}
	if err := l.SetIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, act(clock, 9, testkit.AppWindows)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v, want ErrClosed", err)
	}
	l2 := openTest(t, dir, clock, Options{})
	if s := l2.Stats(); s.Clients != 5 {
		t.Fatalf("clients after reopen %d, want 5", s.Clients)
	}
	if w := countsOf(t, l2)[testkit.AppWindows]; len(w.Clients) != 5 || w.Cap != 10 {
		t.Fatalf("count after reopen %+v", w)
	}
	got, err := l2.Identity()
	if err != nil || got.EPIDs["g"] != "epid" || got.HwID != id.HwID || !got.HasHwID {
		t.Fatalf("identity after reopen %+v %v", got, err)
	}
	n := 0
	if err := l2.Clients(func(Client) bool { n++; return true }); err != nil || n != 5 {
		t.Fatalf("Clients visited %d (%v), want 5", n, err)
	}
}

func TestLockedStore(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, nil, Options{})
	_, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keySchema, []byte{9})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "schema version 9") {
		t.Fatalf("Open of a future schema: %v", err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(notDir, Options{}); err == nil {
		t.Fatal("Open of a regular file as directory succeeded")
	}
	for _, o := range []Options{{Retention: time.Hour}, {Retention: 29 * 24 * time.Hour}, {MaxRefusals: MaxRefusalsLimit + 1}, {CountWindow: time.Second}, {MaxBatch: -1}, {MaxSize: -1}, {PruneInterval: time.Millisecond}} {
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Errorf("Open with %+v succeeded", o)
		}
	}
}

func TestRetention(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{Retention: 10 * 24 * time.Hour, CountWindow: 3 * 24 * time.Hour})
	ctx := context.Background()
	for i := range 4 {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * 24 * time.Hour)
	// Client 0 comes back: it must survive both prunes below.
	if err := l.Record(ctx, act(clock, 0, testkit.AppWindows)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * 24 * time.Hour) // 4 days: clients 1..3 left the count window
	if err := l.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if w := countsOf(t, l)[testkit.AppWindows]; len(w.Clients) != 1 || w.Clients[0].CMID != testkit.CMID(0) {
		t.Fatalf("count after window %+v", w)
	}
	if s := l.Stats(); s.Clients != 4 {
		t.Fatalf("audit records pruned too early: %+v", s)
	}
	clock.Advance(7 * 24 * time.Hour) // 11 days: 1..3 are past retention, 0 is 9 days old
	// Pruning waits for a client answered at the new time (see
	// maxClockLead): client 9 is.
	if err := l.Record(ctx, act(clock, 9, testkit.AppWindows)); err != nil {
		t.Fatal(err)
	}
	if err := l.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Clients != 2 || s.Pruned != 3 {
		t.Fatalf("stats after retention %+v", s)
	}
	if _, ok, _ := l.Client(testkit.CMID(0), testkit.AppWindows); !ok {
		t.Fatal("refreshed client pruned")
	}
	if _, ok, _ := l.Client(testkit.CMID(1), testkit.AppWindows); ok {
		t.Fatal("expired client kept")
	}
}

func TestPruneTrimsToCap(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	ctx := context.Background()
	for i := range 25 {
		clock.Advance(time.Minute)
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil { // cap 10
			t.Fatal(err)
		}
	}
	if err := l.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	w := countsOf(t, l)[testkit.AppWindows]
	if len(w.Clients) != 10 {
		t.Fatalf("kept %d count entries, want the cap of 10", len(w.Clients))
	}
	SortNewestFirst(w.Clients)
	for i, s := range w.Clients {
		if want := testkit.CMID(24 - i); s.CMID != want {
			t.Fatalf("entry %d is %v, want %v (newest kept)", i, s.CMID, want)
		}
	}
}

func TestConcurrentRecordsBatch(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	const writers, each = 64, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- l.Record(context.Background(), act(clock, w*each+i, testkit.AppWindows))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	if s.Clients != writers*each || s.Records != writers*each {
		t.Fatalf("stats %+v", s)
	}
	if s.Batches >= s.Records {
		t.Fatalf("%d records took %d commits: no group commit", s.Records, s.Batches)
	}
	t.Logf("%d records in %d log syncs, %d store commits", s.Records, s.Batches, s.Commits)
}

func TestDiskFullMakesUnhealthy(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{MaxSize: 256 << 10, MaxPending: 100})
	ctx := context.Background()
	acked := 0
	var failure error
	for i := 0; i < 100000 && failure == nil; i++ {
		a := act(clock, i, testkit.AppWindows)
		a.Workstation = strings.Repeat("w", 200)
		if failure = l.Record(ctx, a); failure == nil {
			acked++
		}
	}
	if failure == nil {
		t.Fatal("no write failed under MaxSize")
	}
	if l.Healthy() || l.LastError() == nil {
		t.Fatalf("ledger healthy after failed commit %v", failure)
	}
	if !strings.Contains(failure.Error(), "cannot be written") {
		t.Fatalf("failure %q does not say what failed", failure)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTest(t, dir, clock, Options{})
	if got := l2.Stats().Clients; got != uint64(acked) {
		t.Fatalf("%d acknowledged records, %d stored", acked, got)
	}
	if err := l2.Record(ctx, act(clock, 1<<20, testkit.AppWindows)); err != nil || !l2.Healthy() {
		t.Fatalf("after reopen with room: %v healthy=%v", err, l2.Healthy())
	}
}

func TestRecordContextCancelled(t *testing.T) {
	clock := testkit.NewClock()
	l := openTest(t, t.TempDir(), clock, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Record(ctx, act(clock, 1, testkit.AppWindows)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record with a cancelled context: %v", err)
	}
	if _, ok, _ := l.Client(testkit.CMID(1), testkit.AppWindows); ok {
		t.Fatal("a request whose context was already cancelled was stored")
	}
}
