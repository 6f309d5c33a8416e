package ledger

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/test/testkit"
)

// writeSchema2 rewrites the closed schema-3 store at path in the schema-2
// layout, as the release before schema 3 wrote it: audit records under
// CMID ‖ App sealed over that key, the audit-ts retention index, schema
// byte 2.
func writeSchema2(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		audit, err := tx.CreateBucket(bucketAudit)
		if err != nil {
			return err
		}
		ts, err := tx.CreateBucket(bucketAuditTS)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketRecords).ForEach(func(k, sv []byte) error {
			v, err := unseal("client record", k, sv)
			if err != nil {
				return err
			}
			if err := audit.Put(bytes.Clone(k[8:]), seal(k[8:], v)); err != nil {
				return err
			}
			return ts.Put(bytes.Clone(k), nil)
		}); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketRecords); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte{2})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// editStore runs fn in a write transaction on the closed store at path.
func editStore(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// bucketNames returns the store's top-level bucket names.
func bucketNames(t *testing.T, path string) []string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, string(name))
			return nil
		})
	})
	slices.Sort(names)
	return names
}

// listing is every client of a full ClientsPage listing, newest first, as
// CMID:requests strings.
func listing(t *testing.T, l *Ledger) []string {
	t.Helper()
	var out []string
	var after []byte
	for {
		p, err := l.ClientsPage(ClientsQuery{After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			out = append(out, e.CMID.String()+":"+e.App.String()+":"+e.LastSeen.UTC().Format(time.RFC3339Nano))
		}
		if p.Next == nil {
			return out
		}
		after = p.Next
	}
}

// upgradeFixture records clients 0..n-1, renews the even ones a minute
// later, refuses one client that was never answered, closes the ledger and
// returns the listing it gave.
func upgradeFixture(t *testing.T, dir string, clock *testkit.Clock, n int) []string {
	t.Helper()
	l, err := Open(dir, Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	for i := 0; i < n; i += 2 {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	refused := act(clock, n+100, testkit.AppWindows)
	refused.Result, refused.Counted = 0xC004F042, false
	if err := l.Record(ctx, refused); err != nil {
		t.Fatal(err)
	}
	want := listing(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestSchema2Upgrade: a schema-2 store (records keyed by client, a
// retention index) passes Check as schema 2; Open upgrades it in several
// transactions (a small chunk) to schema 3 with every record, renewal
// order, refusal record and count intact, the schema-2 buckets gone, and
// a client renewed after the upgrade moves to the head of the listing.
func TestSchema2Upgrade(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	const n = 25
	want := upgradeFixture(t, dir, clock, n)
	if len(want) != n+1 {
		t.Fatalf("listing before the upgrade has %d clients, want %d", len(want), n+1)
	}
	path := filepath.Join(dir, FileName)
	writeSchema2(t, path)
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != 2 || rep.Clients != n || rep.Refusals != 1 {
		t.Fatalf("Check of the schema-2 store: %+v %v", rep, err)
	}
	l, err := Open(dir, Options{Clock: clock.Now, migrateChunk: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if got := listing(t, l); !slices.Equal(got, want) {
		t.Fatalf("listing after the upgrade:\n%v\nwant\n%v", got, want)
	}
	if s := l.Stats(); s.Clients != n || s.Refusals != 1 {
		t.Fatalf("stats after the upgrade %+v", s)
	}
	if w := countsOf(t, l)[testkit.AppWindows]; len(w.Clients) != 10 {
		t.Fatalf("count after the upgrade: %d clients, want 10 (the cap)", len(w.Clients))
	}
	c, ok, err := l.Client(testkit.CMID(2), testkit.AppWindows)
	if err != nil || !ok || c.Requests != 2 {
		t.Fatalf("client 2 after the upgrade: %+v %v %v", c, ok, err)
	}
	clock.Advance(time.Minute)
	if err := l.Record(context.Background(), act(clock, 7, testkit.AppWindows)); err != nil {
		t.Fatal(err)
	}
	p, err := l.ClientsPage(ClientsQuery{Limit: 1})
	if err != nil || len(p.Entries) != 1 || p.Entries[0].CMID != testkit.CMID(7) || p.Entries[0].Requests != 2 {
		t.Fatalf("newest after a renewal: %+v %v", p, err)
	}
	l.Close()
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != schemaVersion || rep.Clients != n {
		t.Fatalf("Check after the upgrade: %+v %v", rep, err)
	}
	for _, name := range bucketNames(t, path) {
		if name == string(bucketAudit) || name == string(bucketAuditTS) {
			t.Fatalf("schema-2 bucket %q left after the upgrade", name)
		}
	}
}

// TestSchema2UpgradeInterrupted: an upgrade killed before its last
// transaction leaves a schema-2 store with a partial new bucket (here a
// part of the records and a record no client has). Check judges it as the
// schema-2 store it is; the next Open drops the partial bucket and
// upgrades again: each client once, nothing invented.
func TestSchema2UpgradeInterrupted(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	const n = 10
	want := upgradeFixture(t, dir, clock, n)
	path := filepath.Join(dir, FileName)
	writeSchema2(t, path)
	editStore(t, path, func(tx *bolt.Tx) error {
		records, err := tx.CreateBucket(bucketRecords)
		if err != nil {
			return err
		}
		cur := tx.Bucket(bucketAuditTS).Cursor()
		k, _ := cur.First()
		for i := 0; k != nil && i < 3; k, _ = cur.Next() {
			i++
			sv := tx.Bucket(bucketAudit).Get(k[8:])
			v, err := unseal("client record", k[8:], sv)
			if err != nil {
				return err
			}
			if err := records.Put(bytes.Clone(k), seal(k, v)); err != nil {
				return err
			}
		}
		ghost := tsKey(clock.Now(), testkit.CMID(999), testkit.AppWindows)
		return records.Put(ghost, []byte("not a record"))
	})
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != 2 {
		t.Fatalf("Check of the interrupted upgrade: %+v %v", rep, err)
	}
	l := openTest(t, dir, clock, Options{migrateChunk: 2})
	if got := listing(t, l); !slices.Equal(got, want) {
		t.Fatalf("listing after the repeated upgrade:\n%v\nwant\n%v", got, want)
	}
	if _, ok, err := l.Client(testkit.CMID(999), testkit.AppWindows); ok || err != nil {
		t.Fatalf("the partial bucket's stray record survived: %v %v", ok, err)
	}
	l.Close()
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != schemaVersion || rep.Clients != n {
		t.Fatalf("Check after the repeated upgrade: %+v %v", rep, err)
	}
}

// TestSchema2UpgradeIndexDisagrees: a schema-2 store whose retention index
// misses one record and names one that is gone still upgrades with every
// record it holds, and the clients counter is the number of records.
func TestSchema2UpgradeIndexDisagrees(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	const n = 6
	want := upgradeFixture(t, dir, clock, n)
	path := filepath.Join(dir, FileName)
	writeSchema2(t, path)
	editStore(t, path, func(tx *bolt.Tx) error {
		ts := tx.Bucket(bucketAuditTS)
		k, _ := ts.Cursor().Last()
		if err := ts.Delete(bytes.Clone(k)); err != nil {
			return err
		}
		return ts.Put(tsKey(clock.Now(), testkit.CMID(555), testkit.AppWindows), nil)
	})
	l := openTest(t, dir, clock, Options{migrateChunk: 2})
	if got := listing(t, l); !slices.Equal(got, want) {
		t.Fatalf("listing after the upgrade:\n%v\nwant\n%v", got, want)
	}
	if s := l.Stats(); s.Clients != n {
		t.Fatalf("clients after the upgrade %d, want %d", s.Clients, n)
	}
}

// TestSchema2FileUpgrade opens a copy of testdata/schema2/ledger.db, a
// store written by the release before schema 3 (serve, five activations
// of three clients, then SIGTERM): Check accepts it as schema 2, Open
// upgrades it with the counts, records and identity intact, and Check
// then verifies it as schema 3.
func TestSchema2FileUpgrade(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "schema2", FileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != 2 || rep.Clients != 3 {
		t.Fatalf("Check of the schema-2 file: %+v %v", rep, err)
	}
	// The file was written on 2026-12-07 at about 05:23 UTC.
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	l := openTest(t, dir, nil, Options{Clock: func() time.Time { return at }})
	if s := l.Stats(); s.Clients != 3 {
		t.Fatalf("stats after upgrade %+v", s)
	}
	cs, err := l.Counts()
	if err != nil || len(cs) != 1 || len(cs[0].Clients) != 3 {
		t.Fatalf("counts after upgrade %+v %v", cs, err)
	}
	if id, err := l.Identity(); err != nil || id.EPIDs["windows-server-2025"] == "" {
		t.Fatalf("identity after upgrade %+v %v", id, err)
	}
	p, err := l.ClientsPage(ClientsQuery{Limit: 10})
	if err != nil || len(p.Entries) != 3 || p.Next != nil {
		t.Fatalf("listing after upgrade %+v %v", p, err)
	}
	var requests uint32
	for _, e := range p.Entries {
		requests += e.Requests
		c, ok, err := l.Client(e.CMID, e.App)
		if err != nil || !ok || c.LastSeen != e.LastSeen {
			t.Fatalf("Client(%s) after upgrade: %+v %v %v", e.CMID, c, ok, err)
		}
	}
	if requests != 5 {
		t.Fatalf("%d requests in the records, want 5", requests)
	}
	l.Close()
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != schemaVersion || rep.Clients != 3 {
		t.Fatalf("Check after upgrade: %+v %v", rep, err)
	}
}

// TestRecordKeyDisagreesRefused: a record stored under another client's
// key, or a second record of one client, each with a valid checksum, is
// damage to Open and Check alike, and neither changes the file.
func TestRecordKeyDisagreesRefused(t *testing.T) {
	cases := map[string]func(tx *bolt.Tx, clock *testkit.Clock) error{
		"moved": func(tx *bolt.Tx, clock *testkit.Clock) error {
			b := tx.Bucket(bucketRecords)
			k, sv := b.Cursor().First()
			v, err := unseal("client record", k, sv)
			if err != nil {
				return err
			}
			nk := tsKey(clock.Now(), testkit.CMID(77), testkit.AppWindows)
			v = bytes.Clone(v)
			if err := b.Delete(bytes.Clone(k)); err != nil {
				return err
			}
			return b.Put(nk, seal(nk, v))
		},
		"duplicate": func(tx *bolt.Tx, clock *testkit.Clock) error {
			b := tx.Bucket(bucketRecords)
			k, sv := b.Cursor().First()
			c, err := decodeRecord("client record", k, sv)
			if err != nil {
				return err
			}
			c.LastSeen = clock.Now().Add(time.Hour)
			nk := tsKey(c.LastSeen, c.CMID, c.App)
			return b.Put(nk, seal(nk, encodeClient(&c)))
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			clock := testkit.NewClock()
			dir := t.TempDir()
			recordN(t, dir, clock, 3)
			path := filepath.Join(dir, FileName)
			editStore(t, path, func(tx *bolt.Tx) error { return edit(tx, clock) })
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, openErr := Open(dir, Options{Clock: clock.Now})
			var d *DamageError
			if !errors.As(openErr, &d) {
				t.Fatalf("Open: %v, want a DamageError", openErr)
			}
			rep, err := Check(dir)
			if err != nil || rep.OK || len(rep.Files) == 0 || !strings.Contains(rep.Files[0].Detail, d.What) {
				t.Fatalf("Check: %+v %v; Open said %v", rep, err, openErr)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("Open or Check changed the damaged store")
			}
		})
	}
}

// TestIndexFollowsRenewalsAndPrune: Client finds a record through the
// in-memory index after renewals move it and not after retention removes
// it, and a reopened ledger's index (rebuilt by Open's walk) agrees.
func TestIndexFollowsRenewalsAndPrune(t *testing.T) {
	clock := testkit.NewClock()
	dir := t.TempDir()
	l := openTest(t, dir, clock, Options{Retention: 48 * time.Hour, CountWindow: 24 * time.Hour})
	ctx := context.Background()
	for i := range 3 {
		if err := l.Record(ctx, act(clock, i, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(30 * time.Hour)
	for range 2 {
		if err := l.Record(ctx, act(clock, 1, testkit.AppWindows)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(30 * time.Hour)
	if err := l.Record(ctx, act(clock, 2, testkit.AppWindows)); err != nil {
		t.Fatal(err)
	}
	if err := l.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(l *Ledger, when string) {
		t.Helper()
		for i, want := range []uint32{0, 3, 2} {
			c, ok, err := l.Client(testkit.CMID(i), testkit.AppWindows)
			if err != nil || ok != (want > 0) || c.Requests != want {
				t.Fatalf("%s: client %d: %+v %v %v, want %d requests", when, i, c, ok, err, want)
			}
		}
		if s := l.Stats(); s.Clients != 2 {
			t.Fatalf("%s: %d clients, want 2", when, s.Clients)
		}
	}
	check(l, "after the prune")
	l.Close()
	l = openTest(t, dir, clock, Options{Retention: 48 * time.Hour, CountWindow: 24 * time.Hour})
	check(l, "reopened")
	var got []guid.GUID
	if err := l.Clients(func(c Client) bool { got = append(got, c.CMID); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []guid.GUID{testkit.CMID(1), testkit.CMID(2)}) {
		t.Fatalf("Clients order %v, want clients 1 then 2 (oldest last request first)", got)
	}
}

// migrateUntil runs in the helper process: it opens the schema-2 store in
// dir with one record per upgrade transaction and, once stop records are
// copied, prints "copied N" and waits to be killed.
func migrateUntil(dir, stop string) {
	n, _ := strconv.ParseUint(stop, 10, 64)
	opts := Options{migrateChunk: 1, migrated: func(copied uint64) {
		if copied >= n {
			fmt.Printf("copied %d\n", copied)
			time.Sleep(time.Minute) // the parent kills us; a dead parent must not leave us for long
			os.Exit(4)
		}
	}}
	if _, err := Open(dir, opts); err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	fmt.Println("upgraded")
	os.Exit(3)
}

// TestSchema2UpgradeKill9: an upgrade killed with SIGKILL after a third
// of the records were copied leaves a store Check judges as schema 2; the
// next Open upgrades it again with every client, in the same order,
// once. The second kill lands on a store with a partial new bucket left
// by the first.
func TestSchema2UpgradeKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	clock := testkit.NewClock()
	dir := t.TempDir()
	const n = 30
	want := upgradeFixture(t, dir, clock, n)
	writeSchema2(t, filepath.Join(dir, FileName))
	for _, stop := range []int{n / 3, 2 * n / 3} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envHelperDir+"="+dir, envHelperMigrate+"="+strconv.Itoa(stop))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if line != fmt.Sprintf("copied %d\n", stop) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper printed %q (%v), want copied %d: %s", line, err, stop, stderr.String())
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("helper did not die by SIGKILL: %v", err)
		}
		if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != 2 || rep.Clients != n {
			t.Fatalf("Check after a kill at %d records: %+v %v", stop, rep, err)
		}
		if names := bucketNames(t, filepath.Join(dir, FileName)); !slices.Contains(names, string(bucketRecords)) {
			t.Fatalf("no partial %s bucket after a kill at %d records: %v", bucketRecords, stop, names)
		}
	}
	l := openTest(t, dir, clock, Options{migrateChunk: 4})
	if got := listing(t, l); !slices.Equal(got, want) {
		t.Fatalf("listing after the upgrade:\n%v\nwant\n%v", got, want)
	}
	if s := l.Stats(); s.Clients != n || s.Refusals != 1 {
		t.Fatalf("stats after the upgrade %+v", s)
	}
	l.Close()
	if rep, err := Check(dir); err != nil || !rep.OK || rep.Schema != schemaVersion || rep.Clients != n {
		t.Fatalf("Check after the upgrade: %+v %v", rep, err)
	}
}
