package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestApplierStoreFaultMakesUnhealthy: a store transaction of the applier
// that panics inside bbolt (here: every tree page of the file garbled
// under the running ledger, so the first page bbolt reads fails its own
// check) makes the ledger unhealthy with a *DamageError instead of
// killing the process; the store is not written again, activations are
// refused once MaxPending of them wait, and Close returns.
func TestApplierStoreFaultMakesUnhealthy(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	l := openTest(t, dir, nil, Options{Clock: func() time.Time { return at }, MaxPending: 4})
	ctx := context.Background()
	for i := range 3 {
		if err := l.Record(ctx, logActivation(i, at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 2*64*1024)
	if n, err := f.ReadAt(head, 0); n < 2*boltPageHeader+2*boltMetaLen {
		t.Fatal(err)
	}
	m, err := parseBoltMeta(head[boltPageHeader:])
	if err != nil {
		t.Fatal(err)
	}
	if m1, err := parseBoltMeta(head[int(m.pageSize)+boltPageHeader:]); err == nil && m1.txid > m.txid {
		m = m1
	}
	id := make([]byte, 8)
	for p := uint64(2); p < m.hwm; p++ {
		binary.NativeEndian.PutUint64(id, p+1_000_000)
		if _, err := f.WriteAt(id, int64(p)*int64(m.pageSize)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Record(ctx, logActivation(3, at)); err != nil {
		t.Fatal(err)
	}
	err = l.Flush(ctx)
	var d *DamageError
	if !errors.As(err, &d) {
		t.Fatalf("Flush after the store's pages were garbled: %v, want a *DamageError", err)
	}
	if l.Healthy() || !errors.As(l.LastError(), &d) {
		t.Fatalf("healthy=%v, last error %v: want unhealthy with a *DamageError", l.Healthy(), l.LastError())
	}
	refused := false
	for i := 4; i < 20 && !refused; i++ {
		refused = l.Record(ctx, logActivation(i, at)) != nil
	}
	if !refused {
		t.Fatal("Record kept accepting activations for a store that cannot be written")
	}
	if err := l.Flush(ctx); !errors.As(err, &d) {
		t.Fatalf("second Flush: %v, want the same *DamageError", err)
	}
	l.Close()
}
