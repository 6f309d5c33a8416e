package ledger

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/test/testkit"
)

// TestReviewZeroedLogTailAcrossBatches: three activations are answered,
// each in its own synced batch, and the machine stops before the store
// applied them (a copy of the data directory taken then stands for the
// disk after kill -9). Zeroing the last segment from the second frame
// to its end (a lost extent, a bad block range, a careless dd) makes
// two acknowledged batches vanish; the log then ends in zeros, which is
// exactly what unwritten preallocated space looks like, so Open
// succeeds, rebuilds a count of 1 where clients were told 1, 2 and 3,
// and logs nothing. Only one batch can be crash-torn. Expected safe
// behaviour: Open (and Check) refuse, naming the sequence numbers lost,
// e.g. because the log records how far it was synced somewhere the same
// damage does not erase.
func TestReviewZeroedLogTailAcrossBatches(t *testing.T) {
	src := t.TempDir()
	l, err := Open(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 3 {
		a := Activation{Time: now, CMID: testkit.CMID(i + 1), App: testkit.AppWindows, CountedID: testkit.KMSWin10,
			Workstation: "ws", Source: "127.0.0.1:1", Counted: true, Cap: 50}
		if err := l.Record(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	// The copy: what the disk holds if the machine stopped now.
	dst := t.TempDir()
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pending := l.Stats().Pending
	l.Close()
	if pending < 3 {
		t.Skipf("the store applied the activations before the copy (%d pending)", pending)
	}
	var seg string
	entries, _ = os.ReadDir(dst)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), walPrefix) {
			seg = filepath.Join(dst, e.Name())
		}
	}
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	second := frameHeaderLen + int(binary.BigEndian.Uint32(b[0:4]))
	clear(b[second:])
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	rep, cerr := Check(dst)
	l2, err := Open(dst, Options{})
	if err == nil {
		defer l2.Close()
		n := 0
		for i := range 3 {
			if _, ok, _ := l2.Client(testkit.CMID(i+1), testkit.AppWindows); ok {
				n++
			}
		}
		t.Errorf("Open accepted a log whose last two acknowledged batches were zeroed: %d of 3 answered clients rebuilt (check: %+v, %v)", n, rep, cerr)
	}
}
