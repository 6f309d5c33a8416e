package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// CheckReport is what Check found in a data directory.
type CheckReport struct {
	// OK is false when Open would refuse the directory (or a damaged
	// segment was set aside by an earlier quarantine).
	OK bool `json:"ok"`
	// Applied is the store's last applied log sequence number.
	Applied uint64 `json:"applied_sequence"`
	// Clients and Refusals are the store's record counters.
	Clients  uint64 `json:"clients"`
	Refusals uint64 `json:"refusal_records"`
	// Files has one entry per file checked.
	Files []CheckedFile `json:"files"`
}

// CheckedFile is the verdict on one file.
type CheckedFile struct {
	Path string `json:"path"`
	// State is "ok", "torn" (a crash-torn tail Open recovers from),
	// "damaged", "harmless" (damage confined to activations the store
	// already holds) or "set-aside" (a *.corrupt file).
	State  string `json:"state"`
	Detail string `json:"detail"`
}

// Check verifies the ledger in dir without changing anything: the store
// file against its meta page and every record in it against its format,
// then the log as Open would (see scanLog). It fails when the store is in
// use by a running serve; the report says whether Open would refuse.
func Check(dir string) (CheckReport, error) {
	rep := CheckReport{OK: true}
	add := func(path, state, detail string) {
		rep.Files = append(rep.Files, CheckedFile{Path: path, State: state, Detail: detail})
		if state == "damaged" || state == "set-aside" {
			rep.OK = false
		}
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return rep, fmt.Errorf("ledger: %w", err)
	}
	held := &dataDir{root: r, path: filepath.Clean(dir), own: true}
	defer held.close()
	segs, err := listSegments(held)
	if err != nil {
		return rep, err
	}
	path := held.join(FileName)
	exists, err := checkStoreFile(held, path, len(segs) > 0)
	var d *DamageError
	switch {
	case errors.As(err, &d):
		add(path, "damaged", d.Error())
	case err != nil:
		return rep, err
	case !exists:
		add(path, "ok", "no store yet (a first start creates it)")
	default:
		if err := guardFaults(path, func() error { return checkStore(held, path, &rep) }); err != nil {
			if errors.As(err, &d) {
				add(path, "damaged", d.Error())
			} else {
				return rep, err
			}
		} else {
			add(path, "ok", fmt.Sprintf("%d clients, %d refusal records, applied through sequence %d", rep.Clients, rep.Refusals, rep.Applied))
		}
	}
	scans, err := scanLog(segs, rep.Applied)
	if err != nil {
		return rep, err
	}
	for i := range scans {
		sc := &scans[i]
		last, _ := sc.lastSeq()
		switch {
		case sc.damage != nil:
			add(sc.seg.path, "damaged", sc.damage.Error())
		case sc.tornAt > 0:
			add(sc.seg.path, "torn", fmt.Sprintf("%d frames through sequence %d, then a crash-torn batch at offset %d that was never acknowledged (Open drops it)", len(sc.frames), last, sc.tornAt))
		case sc.tornAt < 0:
			add(sc.seg.path, "harmless", "damaged, but every activation it may hold is already in the store (Open removes it)")
		case len(sc.frames) == 0:
			add(sc.seg.path, "ok", "no frames")
		default:
			add(sc.seg.path, "ok", fmt.Sprintf("frames %d..%d", sc.frames[0].seq, last))
		}
	}
	entries, err := held.readDir()
	if err != nil {
		return rep, fmt.Errorf("ledger: %w", err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".corrupt") {
			add(held.join(e.Name()), "set-aside", "set aside by --ledger-quarantine: its activations are missing from the ledger; restore a copy, or remove it to accept the loss")
		}
	}
	return rep, nil
}

// checkStore opens the store read-only and decodes every record.
func checkStore(dir *dataDir, path string, rep *CheckReport) error {
	opts := Options{}
	if err := opts.setDefaults(); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, boltOptions(&opts, true, dir))
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("ledger: %s is in use by a running kms-responder serve: stop it, or copy the data directory and check the copy", path)
	}
	if err != nil {
		return &DamageError{Path: path, Offset: -1, What: "bbolt cannot open it: " + err.Error(), Lost: "restore ledger.db from a copy (see responder/README.md, Recovery)"}
	}
	defer db.Close()
	var bad []string
	err = db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			for key, dst := range map[string]*uint64{string(keyApplied): &rep.Applied, string(keyClients): &rep.Clients, string(keyRefusals): &rep.Refusals} {
				if v := meta.Get([]byte(key)); len(v) == 8 {
					*dst = binary.BigEndian.Uint64(v)
				} else if v != nil {
					bad = append(bad, fmt.Sprintf("meta %q has %d bytes", key, len(v)))
				}
			}
		}
		if b := tx.Bucket(bucketIdentity); b != nil {
			if v := b.Get(keyIdentity); v != nil {
				if _, err := DecodeIdentity(v); err != nil {
					bad = append(bad, "identity: "+err.Error())
				}
			}
		}
		for _, name := range [][]byte{bucketAudit, bucketRefused} {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			if err := b.ForEach(func(k, v []byte) error {
				if _, err := DecodeClient(v); err != nil || len(k) != 32 {
					bad = append(bad, fmt.Sprintf("%s record %x: %v", name, k, err))
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketCount); b != nil {
			if err := b.ForEachBucket(func(app []byte) error {
				return b.Bucket(app).ForEach(func(k, v []byte) error {
					if _, err := decodeSeen(v); err != nil || len(k) != 16 {
						bad = append(bad, fmt.Sprintf("count entry %x/%x: %v", app, k, err))
					}
					return nil
				})
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return &DamageError{Path: path, Offset: -1, What: "reading it failed: " + err.Error(), Lost: "restore ledger.db from a copy (see responder/README.md, Recovery)"}
	}
	if len(bad) > 0 {
		n, more := len(bad), ""
		if len(bad) > 5 {
			more = fmt.Sprintf(" (and %d more)", len(bad)-5)
			bad = bad[:5]
		}
		return &DamageError{Path: path, Offset: -1, What: fmt.Sprintf("%d records do not decode: %s%s", n, strings.Join(bad, "; "), more),
			Lost: "serve skips or replaces them; restore ledger.db from a copy to get them back"}
	}
	return nil
}
