package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/kmsdns/kmsdns/responder/guid"
)

// FileName is the name of the store inside the data directory.
const FileName = "ledger.db"

// schemaVersion is the layout version written to the meta bucket.
const schemaVersion = 1

// Defaults for Options.
const (
	DefaultRetention     = 180 * 24 * time.Hour
	DefaultCountWindow   = 30 * 24 * time.Hour
	DefaultPruneInterval = time.Hour
	DefaultMaxBatch      = 1024
	DefaultLockTimeout   = time.Second
)

// Bucket and key names.
var (
	bucketMeta     = []byte("meta")
	bucketIdentity = []byte("identity")
	bucketAudit    = []byte("audit")
	bucketAuditTS  = []byte("audit-ts")
	bucketCount    = []byte("count")
	bucketCap      = []byte("cap")

	keySchema   = []byte("schema")
	keyClients  = []byte("clients")
	keyIdentity = []byte("host")
)

// ErrClosed is returned by calls on a closed Ledger.
var ErrClosed = errors.New("ledger: closed")

// Options tune a Ledger. The zero value gives the defaults.
type Options struct {
	// Retention is how long an audit record is kept after the client's last
	// request (default 180 days, the validity of a KMS activation; at least
	// one day).
	Retention time.Duration
	// CountWindow is how long a client stays in its application's count
	// after its last successful request (default 30 days).
	CountWindow time.Duration
	// PruneInterval is how often expired records are removed (default one
	// hour). Pruning also runs when the ledger opens.
	PruneInterval time.Duration
	// MaxBatch bounds the number of activations committed in one
	// transaction (default 1024).
	MaxBatch int
	// MaxSize, when positive, is the largest size in bytes the store file
	// may grow to; writes beyond it fail as on a full disk.
	MaxSize int
	// LockTimeout is how long Open waits for another process to release the
	// store (default one second).
	LockTimeout time.Duration
	// Clock returns the current time; nil means time.Now. Retention and the
	// count window are measured with it.
	Clock func() time.Time
	// Logger receives warnings about skipped corrupt records and failed
	// commits; nil discards them.
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.CountWindow == 0 {
		o.CountWindow = DefaultCountWindow
	}
	if o.PruneInterval == 0 {
		o.PruneInterval = DefaultPruneInterval
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Retention < 24*time.Hour:
		return fmt.Errorf("ledger: retention %v is shorter than one day", o.Retention)
	case o.CountWindow < time.Minute:
		return fmt.Errorf("ledger: count window %v is shorter than one minute", o.CountWindow)
	case o.PruneInterval < time.Second:
		return fmt.Errorf("ledger: prune interval %v is shorter than one second", o.PruneInterval)
	case o.MaxBatch < 1:
		return fmt.Errorf("ledger: max batch %d is not positive", o.MaxBatch)
	case o.MaxSize < 0:
		return fmt.Errorf("ledger: max size %d is negative", o.MaxSize)
	}
	return nil
}

// Ledger is an open store. Its methods are safe for concurrent use.
type Ledger struct {
	db   *bolt.DB
	opts Options
	log  *slog.Logger

	// mu guards closed; senders hold it shared while they enqueue so that
	// Close can close queue safely.
	mu     sync.RWMutex
	closed bool
	queue  chan *op
	done   chan struct{} // closed when the writer goroutine has exited

	clients  atomic.Uint64 // audit records stored
	batches  atomic.Uint64 // transactions committed
	records  atomic.Uint64 // activations committed
	lastErr  atomic.Pointer[errorBox]
	pruned   atomic.Uint64 // audit records removed by retention
	lastSize atomic.Int64

	// countN is the number of entries in each application's count bucket;
	// only the writer goroutine (or Open, before it starts) uses it.
	countN map[guid.GUID]int
}

type errorBox struct{ err error }

// Open opens (creating if needed) the store in dir and starts its writer.
func Open(dir string, opts Options) (*Ledger, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        opts.LockTimeout,
		MaxSize:        opts.MaxSize,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("ledger: %s is locked by another process (is kms-responder serve running?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	l := &Ledger{
		db:     db,
		opts:   opts,
		log:    opts.Logger,
		queue:  make(chan *op, opts.MaxBatch),
		done:   make(chan struct{}),
		countN: map[guid.GUID]int{},
	}
	if err := l.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: %s: %w", path, err)
	}
	l.updateSize()
	if err := l.prune(); err != nil {
		l.log.Warn("ledger: initial prune failed", "err", err)
	}
	go l.run()
	return l, nil
}

// init creates the buckets, checks the schema version and loads counters.
func (l *Ledger) init() error {
	return l.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketIdentity, bucketAudit, bucketAuditTS, bucketCount, bucketCap} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			if err := meta.Put(keySchema, []byte{schemaVersion}); err != nil {
				return err
			}
		case len(v) != 1:
			return fmt.Errorf("schema version value has %d bytes, want 1", len(v))
		case v[0] != schemaVersion:
			return fmt.Errorf("store has schema version %d; this build reads version %d", v[0], schemaVersion)
		}
		if v := meta.Get(keyClients); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("client counter has %d bytes, want 8", len(v))
			}
			l.clients.Store(binary.BigEndian.Uint64(v))
		}
		counts := tx.Bucket(bucketCount)
		return counts.ForEachBucket(func(k []byte) error {
			if len(k) != 16 {
				return fmt.Errorf("count bucket name %x has %d bytes, want 16", k, len(k))
			}
			l.countN[guid.GUID(k)] = counts.Bucket(k).Stats().KeyN
			return nil
		})
	})
}

// Close stops accepting records, commits those already queued and closes
// the store. It is safe to call more than once.
func (l *Ledger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("ledger: close: %w", err)
	}
	return nil
}

// Path returns the store's file name.
func (l *Ledger) Path() string { return l.db.Path() }

// Healthy reports whether the last commit succeeded. A host must not answer
// clients while its ledger is unhealthy; the next successful commit makes
// it healthy again.
func (l *Ledger) Healthy() bool { return l.LastError() == nil }

// LastError returns the error of the last failed commit, or nil when the last
// commit succeeded.
func (l *Ledger) LastError() error {
	if b := l.lastErr.Load(); b != nil {
		return b.err
	}
	return nil
}

func (l *Ledger) setErr(err error) {
	if err == nil {
		if l.lastErr.Load() != nil {
			l.lastErr.Store(nil)
		}
		return
	}
	l.lastErr.Store(&errorBox{err})
}

// Stats are the ledger's counters for status output and metrics.
type Stats struct {
	Clients  uint64 // audit records stored
	Records  uint64 // activations committed since Open
	Batches  uint64 // transactions committed since Open
	Pruned   uint64 // audit records removed by retention since Open
	FileSize int64  // size of the store file in bytes
}

// Stats returns the current counters.
func (l *Ledger) Stats() Stats {
	return Stats{
		Clients:  l.clients.Load(),
		Records:  l.records.Load(),
		Batches:  l.batches.Load(),
		Pruned:   l.pruned.Load(),
		FileSize: l.lastSize.Load(),
	}
}

func (l *Ledger) updateSize() {
	if fi, err := os.Stat(l.db.Path()); err == nil {
		l.lastSize.Store(fi.Size())
	}
}

// Client returns the audit record of (cmid, app).
func (l *Ledger) Client(cmid, app guid.GUID) (Client, bool, error) {
	var c Client
	var found bool
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAudit).Get(clientKey(cmid, app))
		if v == nil {
			return nil
		}
		var err error
		c, err = DecodeClient(v)
		found = err == nil
		return err
	})
	return c, found, err
}

// Clients calls fn for every audit record, in CMID order, until fn returns
// false. Corrupt records are skipped and logged.
func (l *Ledger) Clients(fn func(Client) bool) error {
	return l.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketAudit).Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			c, err := DecodeClient(v)
			if err != nil {
				l.log.Warn("ledger: skipping corrupt client record", "key", fmt.Sprintf("%x", k), "err", err)
				continue
			}
			if !fn(c) {
				return nil
			}
		}
		return nil
	})
}

// Seen is one client in an application's count.
type Seen struct {
	CMID     guid.GUID
	LastSeen time.Time
}

// AppCount is the stored counting state of one application.
type AppCount struct {
	App     guid.GUID
	Cap     int    // client cap; 0 when no request has set one
	Clients []Seen // clients seen within the count window, any order
}

// Counts returns the counting state of every application. Entries older
// than the count window (by the ledger's clock) are left out.
func (l *Ledger) Counts() ([]AppCount, error) {
	cutoff := l.opts.Clock().Add(-l.opts.CountWindow)
	var out []AppCount
	err := l.db.View(func(tx *bolt.Tx) error {
		apps := map[guid.GUID]int{}
		get := func(k []byte) (*AppCount, error) {
			if len(k) != 16 {
				return nil, fmt.Errorf("ledger: application key %x has %d bytes, want 16", k, len(k))
			}
			app := guid.GUID(k)
			i, ok := apps[app]
			if !ok {
				i = len(out)
				apps[app] = i
				out = append(out, AppCount{App: app})
			}
			return &out[i], nil
		}
		err := tx.Bucket(bucketCap).ForEach(func(k, v []byte) error {
			ac, err := get(k)
			if err != nil {
				return err
			}
			ac.Cap, err = decodeCap(v)
			return err
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketCount).ForEachBucket(func(k []byte) error {
			ac, err := get(k)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketCount).Bucket(k).ForEach(func(cmid, v []byte) error {
				t, err := decodeSeen(v)
				if err != nil || len(cmid) != 16 {
					l.log.Warn("ledger: skipping corrupt count entry", "app", ac.App.String(), "key", fmt.Sprintf("%x", cmid), "err", err)
					return nil
				}
				if t.After(cutoff) {
					ac.Clients = append(ac.Clients, Seen{CMID: guid.GUID(cmid), LastSeen: t})
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Identity returns the stored host identity; a fresh store has none.
func (l *Ledger) Identity() (Identity, error) {
	id := Identity{EPIDs: map[string]string{}}
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIdentity).Get(keyIdentity)
		if v == nil {
			return nil
		}
		var err error
		id, err = DecodeIdentity(v)
		return err
	})
	return id, err
}

// SetIdentity durably replaces the stored host identity.
func (l *Ledger) SetIdentity(ctx context.Context, id Identity) error {
	b, err := encodeIdentity(&id)
	if err != nil {
		return err
	}
	return l.submit(ctx, &op{identity: b})
}
