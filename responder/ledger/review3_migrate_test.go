package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// openNoPanic opens dir and turns a panic inside Open into an error, so a
// crash of the upgrade is reported as the finding rather than ending the
// test binary.
func openNoPanic(dir string, opts Options) (l *Ledger, err error) {
	defer func() {
		if r := recover(); r != nil {
			l, err = nil, fmt.Errorf("Open panicked: %v", r)
		}
	}()
	return Open(dir, opts)
}

// TestReview3Schema2MissingBucketJudgedAlike: a schema-2 store that lacks
// one of the schema-2 audit buckets (audit or audit-ts; the store holds
// no client, or a retention index was never created) passes Check as a
// good schema-2 store. Open must then judge it alike: upgrade it (there
// is nothing to copy) rather than panic (audit missing: migrateV2 calls
// Stats on a nil bucket) or refuse it with an upgrade error (audit-ts
// missing: the final DeleteBucket fails with "bucket not found").
func TestReview3Schema2MissingBucketJudgedAlike(t *testing.T) {
	for _, missing := range [][]byte{bucketAudit, bucketAuditTS} {
		t.Run(string(missing), func(t *testing.T) {
			clock := testkit.NewClock()
			dir := t.TempDir()
			l := openTest(t, dir, clock, Options{})
			l.Close()
			path := filepath.Join(dir, FileName)
			writeSchema2(t, path)
			editStore(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(missing) })
			rep, err := Check(dir)
			if err != nil || !rep.OK || rep.Schema != 2 {
				t.Fatalf("Check of the schema-2 store without %q: %+v %v", missing, rep, err)
			}
			l, err = openNoPanic(dir, Options{Clock: clock.Now})
			if err != nil {
				t.Fatalf("Check accepts the schema-2 store without bucket %q, Open does not: %v", missing, err)
			}
			l.Close()
			if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != schemaVersion {
				t.Fatalf("Check after the upgrade: %+v %v", rep, err)
			}
		})
	}
}

// TestReview3Schema2RecordUnderOtherKeyJudgedAlike: in a schema-2 store,
// client 1's audit record (under client 1's key, its checksum valid over
// that key) names client 2. Schema 2's check reads only the record's
// format, so Check accepts the store; the upgrade then copies the record
// under client 2's key beside client 2's own record, commits schema 3,
// and the verifying walk after it refuses the store it just wrote (a
// second record of client 2): the upgrade turned a store Check accepted
// into one neither this release nor the last one opens. Open and Check
// must judge the store alike before anything is changed.
func TestReview3Schema2RecordUnderOtherKeyJudgedAlike(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	upgradeFixture(t, dir, clock, 4)
	path := filepath.Join(dir, FileName)
	writeSchema2(t, path)
	editStore(t, path, func(tx *bolt.Tx) error {
		audit := tx.Bucket(bucketAudit)
		k := clientKey(testkit.CMID(1), testkit.AppWindows)
		c, v, err := v2Record(audit, k)
		if err != nil || v == nil {
			return fmt.Errorf("client 1's record: %v", err)
		}
		c.CMID = testkit.CMID(2)
		return audit.Put(k, seal(k, encodeClient(&c)))
	})
	rep, checkErr := Check(dir)
	l, openErr := openNoPanic(dir, Options{Clock: clock.Now})
	if l != nil {
		l.Close()
	}
	checkOK := checkErr == nil && rep.OK
	if checkOK != (openErr == nil) {
		after, afterErr := Check(dir)
		t.Fatalf("Check and Open judge the schema-2 store differently: Check ok=%v schema %d %v; Open %v; Check after Open: ok=%v schema %d %v",
			rep.OK, rep.Schema, checkErr, openErr, after.OK, after.Schema, afterErr)
	}
}

// copyDir copies the regular files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestReview3Schema2UpgradeWithUnappliedLog: the previous release was
// killed with acknowledged activations in its log that its store did not
// hold yet (renewals and a new client); the new release upgrades the
// store and then replays the log. Every acknowledged activation must be
// in the upgraded store: the same listing, counters and request counts
// as the ledger that applied them itself.
func TestReview3Schema2UpgradeWithUnappliedLog(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{})
	ctx := context.Background()
	for i := range 6 {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	for _, i := range []int{0, 3, 10} {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	// The moment of the kill: the three are in the log, not the store
	// (the applier runs every two seconds).
	if s := l.Stats(); s.Pending == 0 {
		t.Skip("the applier applied the activations before the copy")
	}
	killed := copyDir(t, dir)
	want := listing(t, l)
	l.Close()
	writeSchema2(t, filepath.Join(killed, FileName))
	l2 := openTest(t, killed, clock, Options{migrateChunk: 2})
	if got := listing(t, l2); !slices.Equal(got, want) {
		t.Fatalf("listing after upgrade and replay:\n%v\nwant\n%v", got, want)
	}
	if s := l2.Stats(); s.Clients != 7 {
		t.Fatalf("clients after upgrade and replay %d, want 7", s.Clients)
	}
	c, ok, err := l2.Client(testkit.CMID(3), testkit.AppWindows)
	if err != nil || !ok || c.Requests != 2 {
		t.Fatalf("client 3 after upgrade and replay: %+v %v %v", c, ok, err)
	}
}

// TestReview3Schema2UpgradeOnFullDisk: the upgrade copies every record
// before it drops the schema-2 buckets, so it needs room for a second copy.
// On a store that cannot grow (MaxSize, as a full disk), Open must fail
// with an error that says so and leave the schema-2 store intact; once
// there is room, the upgrade completes with every client.
func TestReview3Schema2UpgradeOnFullDisk(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	const n = 400
	want := upgradeFixture(t, dir, clock, n)
	path := filepath.Join(dir, FileName)
	writeSchema2(t, path)
	compactStore(t, path)
	var used int64
	editStore(t, path, func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	_, err := openNoPanic(dir, Options{Clock: clock.Now, MaxSize: int(used) + 8*4096, migrateChunk: 64})
	if err == nil {
		t.Skip("the upgrade fit in the free pages of the schema-2 store")
	}
	t.Logf("Open on a full disk: %v", err)
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != 2 || rep.Clients != n {
		t.Fatalf("Check after the failed upgrade: %+v %v", rep, err)
	}
	l := openTest(t, dir, clock, Options{migrateChunk: 64})
	if got := listing(t, l); !slices.Equal(got, want) {
		t.Fatalf("listing after the upgrade: %d entries, want %d", len(got), len(want))
	}
}

// compactStore rewrites the closed store at path without free pages, as a
// store that grew to its size would be.
func compactStore(t *testing.T, path string) {
	t.Helper()
	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".compact"
	dst, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bolt.Compact(dst, src, 0)
	src.Close()
	dst.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestGuardFaultsTellsBugsFromDamage: a panic raised by the ledger's own
// code (a nil dereference, an explicit panic) is reported as an internal
// error, never as damage that sends the operator to restore an older copy;
// a memory fault inside the store's map is damage.
func TestGuardFaultsTellsBugsFromDamage(t *testing.T) {
	var nilBucket *bolt.Bucket
	var nilMap map[string]int
	for name, fn := range map[string]func() error{
		"nil dereference in bbolt": func() error { _ = nilBucket.Stats(); return nil },
		"nil map write":            func() error { nilMap["x"] = 1; return nil },
		"explicit panic":           func() error { panic("boom") },
	} {
		err := guardFaults("ledger.db", fn)
		var de *DamageError
		if err == nil || errors.As(err, &de) || !strings.Contains(err.Error(), "internal error at") {
			t.Errorf("%s: got %v, want an internal error that is not a DamageError", name, err)
		}
	}
	if !isStoreFault(fakeFault(1<<30), "go.etcd.io/bbolt.(*Cursor).search") {
		t.Error("a memory fault inside the store's map is not taken as damage")
	}
	if !isStoreFault("invalid page type: 0: 4", "go.etcd.io/bbolt.(*Cursor).search (cursor.go:1)") {
		t.Error("a panic bbolt raises on a bad page is not taken as damage")
	}
}

// fakeFault is a memory fault at an address, as the runtime reports one
// under debug.SetPanicOnFault.
type fakeFault uintptr

func (f fakeFault) Error() string { return "unexpected fault address" }
func (f fakeFault) RuntimeError() {}
func (f fakeFault) Addr() uintptr { return uintptr(f) }
