package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// recordN writes n counted activations of clients 0..n-1 and closes the
// ledger, leaving only ledger.db.
func recordN(t *testing.T, dir string, clock *testkit.Clock, n int) {
	t.Helper()
	l, err := Open(dir, Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Record(context.Background(), act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFlippedCountByteRefusedByOpenAndCheck flips one byte of one count
// entry in ledger.db: Open refuses the store and Check says damaged, with
// the same message, and neither changes the file.
func TestFlippedCountByteRefusedByOpenAndCheck(t *testing.T) {
	for _, where := range []string{"value", "key"} {
		t.Run(where, func(t *testing.T) {
			clock := testkit.NewClock()
			dir := t.TempDir()
			recordN(t, dir, clock, 3)
			path := filepath.Join(dir, FileName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// A count entry is the CMID key followed by its sealed
			// last-seen time in a leaf page.
			cmid := testkit.CMID(1)
			entry := append(cmid[:], seal(countSealKey(testkit.AppWindows, cmid[:]), encodeSeen(clock.Now()))...)
			i := bytes.Index(b, entry)
			if i < 0 || bytes.Contains(b[i+1:], entry) {
				t.Fatalf("count entry found %d times", bytes.Count(b, entry))
			}
			off := i + 20 // inside the time
			if where == "key" {
				off = i + 3
			}
			b[off] ^= 0x10
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, openErr := Open(dir, Options{Clock: clock.Now})
			var d *DamageError
			if !errors.As(openErr, &d) || !strings.Contains(d.Error(), "checksum") {
				t.Fatalf("Open: %v, want a DamageError about a checksum", openErr)
			}
			rep, err := Check(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || len(rep.Files) == 0 || rep.Files[0].State != "damaged" || rep.Files[0].Detail != d.Error() {
				t.Fatalf("Check %+v disagrees with Open's %q", rep, d.Error())
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, b) {
				t.Fatal("Open or Check changed the damaged store")
			}
		})
	}
}

// TestSchema1Upgrade writes a schema-1 store (values without checksums),
// opens it: the counts, records and identity survive, the store is now
// schema 3 and verifies, and Check agrees.
func TestSchema1Upgrade(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{})
	if err := l.SetIdentity(context.Background(), Identity{HwID: [8]byte{1, 2, 3}, EPIDs: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	recordN(t, dir, clock, 4)
	path := filepath.Join(dir, FileName)
	// Write the schema-2 layout, strip every seal and set the schema byte
	// to 1.
	writeSchema2(t, path)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		var vals []storedValue
		if err := forEachValue(tx, 2, func(sv storedValue) error {
			sv.k, sv.v = bytes.Clone(sv.k), bytes.Clone(sv.v[:len(sv.v)-sealLen])
			vals = append(vals, sv)
			return nil
		}); err != nil {
			return err
		}
		for _, sv := range vals {
			if err := sv.bucket.Put(sv.k, sv.v); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte{1})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != 1 || rep.Clients != 4 {
		t.Fatalf("Check of the schema-1 store: %+v %v", rep, err)
	}
	l = openTest(t, dir, clock, Options{})
	if w := countsOf(t, l)[testkit.AppWindows]; len(w.Clients) != 4 {
		t.Fatalf("count after upgrade %+v", w)
	}
	if id, err := l.Identity(); err != nil || id.HwID != [8]byte{1, 2, 3} {
		t.Fatalf("identity after upgrade %+v %v", id, err)
	}
	if _, ok, err := l.Client(testkit.CMID(2), testkit.AppWindows); !ok || err != nil {
		t.Fatalf("client record after upgrade: %v %v", ok, err)
	}
	l.Close()
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != schemaVersion {
		t.Fatalf("Check after upgrade: %+v %v", rep, err)
	}
}

// TestClockAheadDeletesNothing reopens the ledger with the clock 31 and
// 181 days ahead and prunes: nothing is deleted, and back at the right
// time the count and the audit records are all there.
func TestClockAheadDeletesNothing(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	recordN(t, dir, clock, 5)
	for _, days := range []int{31, 181} {
		at := clock.Now().Add(time.Duration(days) * 24 * time.Hour)
		l := openTest(t, dir, nil, Options{Clock: func() time.Time { return at }})
		if err := l.Prune(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := l.Stats(); s.Clients != 5 || s.Pruned != 0 {
			t.Fatalf("%d days ahead: %+v", days, s)
		}
		l.Close()
	}
	l := openTest(t, dir, clock, Options{})
	if w := countsOf(t, l)[testkit.AppWindows]; len(w.Clients) != 5 {
		t.Fatalf("count after the clock came back: %+v", w)
	}
}

// TestPendingCountIsTheLogsCount: a batch whose append fails (the write
// fault hook) leaves no trace in the counts later activations report:
// each reports the count a reopened ledger holds at it.
func TestPendingCountIsTheLogsCount(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	var calls int
	fault := func(off int64, n int, alloc int64) error {
		calls++
		if calls == 2 {
			return errors.New("injected: no space left on device")
		}
		return nil
	}
	l, err := Open(dir, Options{Clock: clock.Now, WriteFault: fault})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var counts []int
	for i := range 4 {
		p, err := l.Enqueue(ctx, act(clock, i, testkit.AppWindows))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(ctx); err != nil {
			if i != 1 {
				t.Fatalf("activation %d: %v", i, err)
			}
			continue
		}
		counts = append(counts, p.Count())
	}
	if fmt.Sprint(counts) != "[1 2 3]" {
		t.Fatalf("counts reported %v, want [1 2 3] (client 1's write failed)", counts)
	}
	l.Close()
	l = openTest(t, dir, clock, Options{})
	if w := countsOf(t, l)[testkit.AppWindows]; len(w.Clients) != 3 {
		t.Fatalf("reopened count %d, want 3", len(w.Clients))
	}
}

// TestSchema1FileUpgrade opens a copy of testdata/schema1/ledger.db, a
// store written by the release before checksums (serve, three Windows 11
// clients, then SIGTERM): Check accepts it as schema 1, Open upgrades it
// with the counts, records and identity intact, and Check then verifies
// it as schema 3.
func TestSchema1FileUpgrade(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "schema1", FileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != 1 || rep.Clients != 3 {
		t.Fatalf("Check of the schema-1 file: %+v %v", rep, err)
	}
	// The file was written on 2026-12-07 at about 02:55 UTC.
	at := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	l := openTest(t, dir, nil, Options{Clock: func() time.Time { return at }})
	if s := l.Stats(); s.Clients != 3 {
		t.Fatalf("stats after upgrade %+v", s)
	}
	cs, err := l.Counts()
	if err != nil || len(cs) != 1 || len(cs[0].Clients) != 3 || cs[0].Cap != 50 {
		t.Fatalf("counts after upgrade %+v %v", cs, err)
	}
	if id, err := l.Identity(); err != nil || id.EPIDs["windows-server-2025"] == "" {
		t.Fatalf("identity after upgrade %+v %v", id, err)
	}
	l.Close()
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != schemaVersion || rep.Clients != 3 {
		t.Fatalf("Check after upgrade: %+v %v", rep, err)
	}
}

// TestDamageWhileRunningIsNotReplaced: a count entry that fails its
// checksum while the ledger runs is neither believed nor replaced: the
// apply fails, the ledger turns unhealthy, and the bad value stays for
// Check.
func TestDamageWhileRunningIsNotReplaced(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{})
	ctx := context.Background()
	for i := range 2 {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cmid := testkit.CMID(1)
	var bad []byte
	if err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCount).Bucket(testkit.AppWindows[:])
		bad = bytes.Clone(b.Get(cmid[:]))
		bad[3] ^= 0x40
		return b.Put(cmid[:], bad)
	}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := l.Record(ctx, act(clock, 2, testkit.AppWindows)); err != nil {
		t.Fatal(err) // the log write succeeds; the store apply does not
	}
	if err := l.Flush(ctx); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Flush over a damaged count entry: %v", err)
	}
	if l.Healthy() {
		t.Fatal("ledger healthy over a damaged count entry")
	}
	if err := l.db.View(func(tx *bolt.Tx) error {
		if got := tx.Bucket(bucketCount).Bucket(testkit.AppWindows[:]).Get(cmid[:]); !bytes.Equal(got, bad) {
			t.Errorf("damaged entry replaced: %x, was %x", got, bad)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestQuarantineAppliesEveryIntactFrame crafts damaged logs and opens them
// with Options.Quarantine: every intact frame is applied, the exact
// sequence numbers not read are reported, the ledger stays unhealthy
// across a reopen without the option, Check agrees, and Acknowledge ends
// it.
func TestQuarantineAppliesEveryIntactFrame(t *testing.T) {
	clock := testkit.NewClock()
	segment := func(seqs ...int) []byte {
		var b []byte
		for _, s := range seqs {
			a := logActivation(s, clock.Now())
			b = appendFrame(b, uint64(s), encodeLogActivation(nil, &a, true))
		}
		return append(b, make([]byte, preallocChunk-len(b))...)
	}
	for _, tt := range []struct {
		name    string
		files   map[uint64][]byte
		flip    bool // flip a byte of frame 2 in segment 1
		clients int
		missing string
	}{
		{"bit flip in the newest segment", map[uint64][]byte{1: segment(1, 2, 3, 4, 5, 6)}, true, 5,
			"sequence numbers not read: 2, any from 7 on"},
		{"bit flip in a sealed segment", map[uint64][]byte{1: segment(1, 2, 3, 4), 5: segment(5, 6)}, true, 5,
			"sequence numbers not read: 2\n"},
		{"gap between segments", map[uint64][]byte{1: segment(1, 2, 3), 6: segment(6, 7)}, false, 5,
			"sequence numbers not read: 4-5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			openTest(t, dir, clock, Options{}).Close()
			for start, b := range tt.files {
				b = bytes.Clone(b)
				if start == 1 && tt.flip {
					// Frame 2 starts after frame 1 (its header and
					// payload); flip a byte inside frame 2's payload.
					n := int(b[3]) | int(b[2])<<8
					b[frameHeaderLen+n+frameHeaderLen+10] ^= 0x20
				}
				if err := os.WriteFile(filepath.Join(dir, segmentName(start)), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Open(dir, Options{Clock: clock.Now}); err == nil {
				t.Fatal("Open without Quarantine accepted a damaged log")
			}
			l := openTest(t, dir, clock, Options{Quarantine: true})
			err := l.LastError()
			if err == nil || !strings.Contains(err.Error()+"\n", tt.missing) {
				t.Fatalf("LastError %v, want it to say %q", err, tt.missing)
			}
			if s := l.Stats(); s.Clients != uint64(tt.clients) {
				t.Fatalf("%d clients after quarantine, want %d", s.Clients, tt.clients)
			}
			l.Close()
			l = openTest(t, dir, clock, Options{})
			if l.Healthy() {
				t.Fatal("healthy on a reopen after a quarantine never acknowledged")
			}
			l.Close()
			if rep, err := Check(dir); err != nil || rep.OK || rep.Unacknowledged == "" {
				t.Fatalf("Check after a quarantine: %+v %v", rep, err)
			}
			was, err := Acknowledge(dir, 0)
			if err != nil || !strings.Contains(was+"\n", tt.missing) {
				t.Fatalf("Acknowledge: %q %v", was, err)
			}
			if rep, err := Check(dir); err != nil || !rep.OK {
				t.Fatalf("Check after Acknowledge: %+v %v", rep, err)
			}
			if l := openTest(t, dir, clock, Options{}); !l.Healthy() {
				t.Fatalf("unhealthy after Acknowledge: %v", l.LastError())
			}
		})
	}
}
