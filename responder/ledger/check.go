package ledger

import (
	"errors"
	"fmt"
	"os"
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
	// Schema is the store's schema version (1: values without
	// checksums; 2: audit records keyed by client; serve upgrades both
	// to 3 when it opens the store).
	Schema int `json:"schema"`
	// Unacknowledged, when set, is the damage a quarantine recorded:
	// serve runs unhealthy until `kms-responder ledger acknowledge`.
	Unacknowledged string `json:"unacknowledged_damage,omitempty"`
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
func Check(dir string) (CheckReport, error) { return CheckRoot(dir, nil) }

// CheckRoot is Check of the data directory root holds (opened and checked
// by the caller, as serve's Options.Root), named dir in the report; nil
// opens dir.
func CheckRoot(dir string, root *os.Root) (CheckReport, error) {
	rep := CheckReport{OK: true}
	add := func(path, state, detail string) {
		rep.Files = append(rep.Files, CheckedFile{Path: path, State: state, Detail: detail})
		if state == "damaged" || state == "unacknowledged" {
			rep.OK = false
		}
	}
	held, err := openExistingDataDir(dir, root)
	if err != nil {
		return rep, err
	}
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
			add(path, "ok", fmt.Sprintf("%d clients, %d refusal records, applied through sequence %d, schema %d", rep.Clients, rep.Refusals, rep.Applied, rep.Schema))
			if rep.Unacknowledged != "" {
				add(path, "unacknowledged", "a quarantine recorded damage: "+rep.Unacknowledged+"; serve runs unhealthy until `kms-responder ledger acknowledge`")
			}
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
	err = db.View(func(tx *bolt.Tx) error {
		schema, err := readSchema(tx)
		var d *DamageError
		if errors.As(err, &d) {
			return err
		}
		if err != nil {
			return &DamageError{Path: path, Offset: -1, What: err.Error(), Lost: "restore ledger.db from a copy (see responder/README.md, Recovery)"}
		}
		switch schema {
		case 0:
		case 1:
			if _, err := verifyV1(tx, path); err != nil {
				return err
			}
			rep.Schema = 1
		case 2, schemaVersion:
			if _, err := verifyStore(tx, path, schema); err != nil {
				return err
			}
			rep.Schema = int(schema)
		default:
			return &DamageError{Path: path, Offset: -1, What: fmt.Sprintf("has schema version %d, written by a newer release; this build reads versions 1 to %d", schema, schemaVersion),
				Lost: "use the release that wrote it"}
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return nil
		}
		get := getCounter
		if schema == 1 {
			get = getCounterV1
		}
		for _, c := range []struct {
			key []byte
			dst *uint64
		}{{keyApplied, &rep.Applied}, {keyClients, &rep.Clients}, {keyRefusals, &rep.Refusals}} {
			if *c.dst, err = get(meta, c.key); err != nil {
				return err
			}
		}
		if schema >= 2 {
			v, err := getSealed(meta, "meta \"damage\"", keyDamage)
			if err != nil {
				return err
			}
			rep.Unacknowledged = string(v)
		}
		return nil
	})
	var d *DamageError
	if err != nil && !errors.As(err, &d) {
		err = &DamageError{Path: path, Offset: -1, What: err.Error(), Lost: "restore ledger.db from a copy (see responder/README.md, Recovery)"}
	}
	return err
}
