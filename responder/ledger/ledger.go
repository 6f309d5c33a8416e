package ledger

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// FileName is the name of the store inside the data directory.
const FileName = "ledger.db"

// schemaVersion is the layout version written to the meta bucket. Version
// 2 seals every value with a CRC-32C (see seal.go); version 3 keys the
// audit records by last request (bucketRecords, see doc.go). Open upgrades
// a version-1 store (migrateV1) and a version-2 store (migrateV2) in
// place; a build that reads only older versions refuses a newer store by
// its schema byte.
const schemaVersion = 3

// Defaults for Options.
const (
	DefaultRetention     = 180 * 24 * time.Hour
	DefaultCountWindow   = 30 * 24 * time.Hour
	DefaultPruneInterval = time.Hour
	DefaultMaxBatch      = 1024
	DefaultMaxPending    = 131072
	DefaultLockTimeout   = time.Second
	DefaultMaxRefusals   = 10000
	// MaxRefusalsLimit is the largest Options.MaxRefusals accepted.
	MaxRefusalsLimit = 10_000_000
)

// CheckRetention reports whether retention keeps audit records at least
// one day and at least as long as the count window, so that every client
// a count includes still has its record.
func CheckRetention(retention, countWindow time.Duration) error {
	switch {
	case retention < 24*time.Hour:
		return fmt.Errorf("%v is shorter than one day", retention)
	case retention < countWindow:
		w := countWindow.String()
		if countWindow%(24*time.Hour) == 0 {
			w = fmt.Sprintf("%d-day", countWindow/(24*time.Hour))
		}
		return fmt.Errorf("%v is shorter than the %s counting window", retention, w)
	}
	return nil
}

// CheckMaxRefusals reports whether n is a valid Options.MaxRefusals
// (1 to MaxRefusalsLimit).
func CheckMaxRefusals(n int) error {
	if n < 1 || n > MaxRefusalsLimit {
		return fmt.Errorf("%d is outside 1-%d", n, MaxRefusalsLimit)
	}
	return nil
}

// Bucket and key names.
var (
	bucketMeta     = []byte("meta")
	bucketIdentity = []byte("identity")
	bucketRecords  = []byte("audit-by-time")
	bucketAudit    = []byte("audit")    // schema 1 and 2 only
	bucketAuditTS  = []byte("audit-ts") // schema 1 and 2 only
	bucketCount    = []byte("count")
	bucketCap      = []byte("cap")
	bucketRefused  = []byte("refused")
	bucketRefTS    = []byte("refused-ts")

	keySchema   = []byte("schema")
	keyClients  = []byte("clients")
	keyApplied  = []byte("applied")
	keyIdentity = []byte("host")
	keyRefusals = []byte("refusals")
	// keyDamage holds, once a damaged log was quarantined, what was lost:
	// the ledger stays unhealthy, across restarts, until the operator
	// acknowledges it (Acknowledge).
	keyDamage = []byte("damage")
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
	// MaxBatch bounds the number of activations appended to the log with
	// one sync (default 1024).
	MaxBatch int
	// MaxPending bounds the acknowledged activations not yet applied to the
	// store (default 131072). When that many wait, Wait (and Record) waits for the
	// applier, and fails if the store cannot be written.
	MaxPending int
	// MaxSize, when positive, is the largest size in bytes the store file
	// may grow to; writes beyond it fail as on a full disk.
	MaxSize int
	// MaxRefusals is how many audit records of clients that were only
	// ever refused the ledger keeps (default 10000); beyond it the
	// oldest are dropped, so that refused, unauthenticated requests
	// cannot grow the store without bound. Clients ever answered keep
	// their records for Retention.
	MaxRefusals int
	// LockTimeout is how long Open waits for another process to release the
	// store (default one second).
	LockTimeout time.Duration
	// Clock returns the current time; nil means time.Now. Retention and the
	// count window are measured with it.
	Clock func() time.Time
	// Quarantine, instead of refusing to open a damaged log, applies what
	// can be read of each damaged segment, renames it to *.corrupt and
	// keeps the ledger unhealthy (LastError reports the damage) until
	// the next Open. A damaged store file is always refused.
	Quarantine bool
	// Root, when set, is the data directory already opened (and checked)
	// by the caller, who closes it after the Ledger; every file operation
	// goes through it, and Open's dir only names it in messages. Without
	// it Open creates and opens dir itself.
	Root *os.Root
	// Logger receives warnings about skipped corrupt records, torn log
	// tails and failed log writes or store updates; nil discards them.
	Logger *slog.Logger

	// WriteFault injects log write failures, for tests only: when set, it
	// is called before each append to the log with the segment offset
	// the append starts at, its length and the end of the segment's
	// zero-filled space; a non-nil error fails the append as a full disk
	// would. Production code leaves it nil.
	WriteFault func(off int64, n int, alloc int64) error

	// segmentSize is the log segment size (tests shrink it).
	segmentSize int64
	// migrateChunk is how many audit records one transaction of the
	// schema-3 upgrade copies (default migrateChunk; tests shrink it).
	migrateChunk int
	// migrated, when set (tests only), is called after each committed
	// transaction of the schema-3 upgrade's copy with the records copied
	// so far.
	migrated func(copied uint64)
	// commitFault, when set (tests only), is called after each store
	// transaction commits; a non-nil error is reported as the commit's,
	// as when bbolt's last sync fails after its new meta page was
	// written (the change took effect, the commit says it failed).
	commitFault func() error
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
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.segmentSize == 0 {
		o.segmentSize = walSegmentSize
	}
	if o.migrateChunk == 0 {
		o.migrateChunk = migrateChunk
	}
	if o.MaxRefusals == 0 {
		o.MaxRefusals = DefaultMaxRefusals
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
	if err := CheckRetention(o.Retention, o.CountWindow); err != nil {
		return fmt.Errorf("ledger: retention %w", err)
	}
	if err := CheckMaxRefusals(o.MaxRefusals); err != nil {
		return fmt.Errorf("ledger: max refusal records %w", err)
	}
	switch {
	case o.CountWindow < time.Minute:
		return fmt.Errorf("ledger: count window %v is shorter than one minute", o.CountWindow)
	case o.PruneInterval < time.Second:
		return fmt.Errorf("ledger: prune interval %v is shorter than one second", o.PruneInterval)
	case o.MaxBatch < 1:
		return fmt.Errorf("ledger: max batch %d is not positive", o.MaxBatch)
	case o.MaxPending < 1:
		return fmt.Errorf("ledger: max pending %d is not positive", o.MaxPending)
	case o.MaxSize < 0:
		return fmt.Errorf("ledger: max size %d is negative", o.MaxSize)
	}
	return nil
}

// Ledger is an open store. Its methods are safe for concurrent use.
type Ledger struct {
	db   *bolt.DB
	dir  *dataDir
	opts Options
	log  *slog.Logger

	// mu guards closed, which readers check.
	mu      sync.RWMutex
	closed  bool
	q       logQueue
	logDone chan struct{} // closed when the log writer has exited

	// Log writer state (writer goroutine only, or Open before it starts).
	wal     walWriter
	nextSeq uint64
	// durable is every application's count as the synced log holds it:
	// the store's counts at Open, then every logged activation replayed
	// (see replayCount). Pending.Count reports from it.
	durable map[guid.GUID]*CountSet

	// Hand-off from the log writer to the applier, guarded by amu.
	amu      sync.Mutex
	roomCond *sync.Cond // signalled when pending shrinks or applying fails
	pending  []entry
	spare    []entry   // the other half of pending's double buffer
	segments []segment // log segments, oldest first; the last is current

	kick      chan struct{} // wakes the applier early
	applyReqs chan applyReq
	stopApply chan struct{}
	applyDone chan struct{} // closed when the applier has exited

	// Applier state (applier goroutine only, or Open before it starts).
	appliedSeq uint64

	// index maps every audit record's client to its key in bucketRecords.
	// The applier is its only writer and changes it, under idxMu, in the
	// same critical section as it commits the transaction that made the
	// change, so that a reader holding idxMu shared sees the index and
	// the store agree.
	idxMu sync.RWMutex
	index *clientIndex

	clients  atomic.Uint64 // audit records stored
	refusals atomic.Uint64 // refusal-only records stored
	dropped  atomic.Uint64 // refusal-only records dropped for the budget since Open
	batches  atomic.Uint64 // log syncs
	records  atomic.Uint64 // activations acknowledged since Open
	commits  atomic.Uint64 // store transactions applying the log
	pruned   atomic.Uint64 // audit records removed by retention since Open
	lastSize atomic.Int64  // store file size, as of the last apply
	logSize  atomic.Int64  // log segments' size, as of the last apply
	logErr   atomic.Pointer[errorBox]
	applyErr atomic.Pointer[errorBox]
	// storeStale is set when a store commit failed: it may have taken
	// effect, so the index and counters are reloaded before the next
	// apply (reloadFromStore).
	storeStale atomic.Bool
	damage     atomic.Pointer[errorBox] // a quarantined log, for good
	// storeFault is a panic (or map fault) inside a store transaction
	// of the applier, for as long as the process runs (see guardStore).
	storeFault atomic.Pointer[errorBox]
}

type errorBox struct{ err error }

// Open opens (creating if needed) the store in dir, applies whatever the
// write-ahead log holds that the store lacks (after a crash), and starts the
// log writer and the applier.
func Open(dir string, opts Options) (*Ledger, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	d, err := openDataDir(dir, opts.Root)
	if err != nil {
		return nil, err
	}
	path := d.join(FileName)
	segs, err := listSegments(d)
	if err != nil {
		d.close()
		return nil, err
	}
	if _, err := checkStoreFile(d, path, len(segs) > 0); err != nil {
		d.close()
		return nil, err
	}
	var l *Ledger
	err = guardFaults(path, func() error {
		var err error
		l, err = open(d, path, segs, opts)
		return err
	})
	if err != nil {
		if l != nil {
			l.wal.close()
			l.db.Close()
		}
		d.close()
		return nil, err
	}
	go l.runLog()
	go l.runApply()
	return l, nil
}

// boltOptions are the store's bbolt options; OpenFile opens the store
// relative to the held data directory, never through a symbolic link.
func boltOptions(opts *Options, readOnly bool, d *dataDir) *bolt.Options {
	return &bolt.Options{
		Timeout:        opts.LockTimeout,
		MaxSize:        opts.MaxSize,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		ReadOnly:       readOnly,
		// Mapped large from the start: see storeMmapSize.
		InitialMmapSize: storeMmapSize(readOnly),
		// Open's walks read every page: map them at once (see mapPopulate).
		MmapFlags: mapPopulate,
		OpenFile:  d.openFile,
	}
}

// open is Open after the files were checked; on failure after the store
// opened it returns the Ledger so that the caller can close it.
func open(dir *dataDir, path string, segs []segment, opts Options) (*Ledger, error) {
	db, err := bolt.Open(path, 0o600, boltOptions(&opts, false, dir))
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("ledger: %s is locked by another process (is kms-responder serve running?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	l := &Ledger{
		db:        db,
		dir:       dir,
		opts:      opts,
		log:       opts.Logger,
		q:         logQueue{next: newBatch(firstBatchCap), wake: make(chan struct{}, 1)},
		logDone:   make(chan struct{}),
		kick:      make(chan struct{}, 1),
		applyReqs: make(chan applyReq),
		stopApply: make(chan struct{}),
		applyDone: make(chan struct{}),
		wal:       walWriter{dir: dir, fault: opts.WriteFault},
	}
	l.roomCond = sync.NewCond(&l.amu)
	if err := l.init(); err != nil {
		return l, fmt.Errorf("ledger: %s: %w", path, err)
	}
	if err := l.recover(segs); err != nil {
		return l, err
	}
	l.updateSize()
	if err := l.prune(); err != nil {
		l.log.Warn("ledger: initial prune failed", "err", err)
	}
	if why, err := l.clockImplausible(opts.Clock()); why != "" || err != nil {
		l.log.Warn("ledger: not trimming expired count entries at open", "reason", why, "err", err)
	} else if err := l.pruneCounts(opts.Clock().Add(-opts.CountWindow)); err != nil {
		l.log.Warn("ledger: initial count trim failed", "err", err)
	}
	if err := l.loadDurable(); err != nil {
		return l, fmt.Errorf("ledger: %s: %w", path, err)
	}
	l.updateSize()
	if err := releaseMapped(l.db, l.lastSize.Load()); err != nil {
		l.log.Warn("ledger: cannot release the pages Open read", "err", err)
	}
	return l, nil
}

// loadDurable fills the log writer's durable counts from the store, which
// holds the whole log once Open has recovered it.
func (l *Ledger) loadDurable() error {
	l.durable = map[guid.GUID]*CountSet{}
	return l.db.View(func(tx *bolt.Tx) error {
		b := buckets{cap: tx.Bucket(bucketCap), count: tx.Bucket(bucketCount)}
		apps := map[guid.GUID]bool{}
		collect := func(k []byte) error {
			if len(k) == 16 {
				apps[guid.GUID(k)] = true
			}
			return nil
		}
		if err := b.cap.ForEach(func(k, _ []byte) error { return collect(k) }); err != nil {
			return err
		}
		if err := b.count.ForEachBucket(collect); err != nil {
			return err
		}
		for app := range apps {
			sc, err := loadCount(&b, app)
			if err != nil {
				return err
			}
			l.durable[app] = sc.set
		}
		return nil
	})
}

// init upgrades a schema-1 or schema-2 store, checks every stored value
// (verifyStore, the code Check runs) while it builds the client index,
// creates the buckets and loads counters.
func (l *Ledger) init() error {
	l.db.AllocSize = storeAllocSize
	path := l.db.Path()
	var schema byte
	err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		schema, err = readSchema(tx)
		return err
	})
	if err != nil {
		return err
	}
	switch schema {
	case 0:
		if err := l.db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return fmt.Errorf("create bucket %q: %w", bucketMeta, err)
			}
			return meta.Put(keySchema, []byte{schemaVersion})
		}); err != nil {
			return err
		}
	case 1, 2:
		if schema == 1 {
			if err := l.db.Update(func(tx *bolt.Tx) error { return migrateV1(tx, path) }); err != nil {
				return err
			}
			l.log.Info("ledger: store upgraded to schema 2 (a CRC-32C on every value)", "path", path)
		}
		if err := l.db.View(func(tx *bolt.Tx) error {
			_, err := verifyStore(tx, path, 2)
			return err
		}); err != nil {
			return err
		}
		if err := l.migrateV2(); err != nil {
			return err
		}
		l.log.Info("ledger: store upgraded to schema 3 (audit records keyed by last request); releases that read only schemas 1 and 2 refuse it now", "path", path)
	case schemaVersion:
	default:
		return fmt.Errorf("store has schema version %d, written by a newer release; this build reads versions 1 to %d (run the release that wrote it)", schema, schemaVersion)
	}
	if err := l.db.View(func(tx *bolt.Tx) error {
		var err error
		l.index, err = verifyStore(tx, path, schemaVersion)
		return err
	}); err != nil {
		return err
	}
	return l.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketIdentity, bucketRecords, bucketCount, bucketCap, bucketRefused, bucketRefTS} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		for _, c := range []struct {
			key []byte
			dst func(uint64)
		}{
			{keyClients, l.clients.Store},
			{keyRefusals, l.refusals.Store},
			{keyApplied, func(v uint64) { l.appliedSeq = v }},
		} {
			v, err := getCounter(meta, c.key)
			if err != nil {
				return err
			}
			c.dst(v)
		}
		dmg, err := getSealed(meta, "meta \"damage\"", keyDamage)
		if err != nil {
			return err
		}
		if dmg != nil {
			l.damage.Store(&errorBox{fmt.Errorf("ledger: damaged log quarantined, not yet acknowledged (kms-responder ledger acknowledge): %s", dmg)})
		}
		counts := tx.Bucket(bucketCount)
		return counts.ForEachBucket(func(k []byte) error {
			if len(k) != 16 {
				return fmt.Errorf("count bucket name %x has %d bytes, want 16", k, len(k))
			}
			return nil
		})
	})
}

// Close stops accepting records, syncs those already queued, applies the
// log to the store and closes it. It is safe to call more than once.
func (l *Ledger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.applyDone
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.q.close()
	<-l.logDone
	close(l.stopApply)
	<-l.applyDone
	l.wal.close()
	l.dropLogIfApplied()
	err := l.db.Close()
	l.dir.close()
	if err != nil {
		return fmt.Errorf("ledger: close: %w", err)
	}
	return nil
}

// dropLogIfApplied removes the log segments when the store holds every
// activation they hold, so that a clean stop leaves only ledger.db (which
// any release reading this store format opens).
func (l *Ledger) dropLogIfApplied() {
	l.amu.Lock()
	applied := len(l.pending) == 0
	segs := l.segments
	l.segments = nil
	l.amu.Unlock()
	if !applied || l.logErr.Load() != nil || l.applyErr.Load() != nil {
		return
	}
	for _, s := range segs {
		if err := l.dir.remove(s.path); err != nil {
			l.log.Warn("ledger: cannot remove applied log segment", "path", s.path, "err", err)
			return
		}
	}
	syncDir(l.dir)
}

// Path returns the store's file name.
func (l *Ledger) Path() string { return l.db.Path() }

// Healthy reports whether the last log write and the last store update
// succeeded, no damaged log was quarantined at Open and no store
// transaction failed inside bbolt (see guardStore). A host must not be published while its ledger is unhealthy;
// the next successful write makes it healthy again, except after damage.
func (l *Ledger) Healthy() bool { return l.LastError() == nil }

// LastError returns the error of the last failed log write or store update,
// or nil when both last succeeded.
func (l *Ledger) LastError() error {
	if b := l.damage.Load(); b != nil {
		return b.err
	}
	if b := l.storeFault.Load(); b != nil {
		return b.err
	}
	if b := l.logErr.Load(); b != nil {
		return b.err
	}
	if b := l.applyErr.Load(); b != nil {
		return b.err
	}
	return nil
}

// Stats are the ledger's counters for status output and metrics.
type Stats struct {
	Clients uint64 // audit records of clients ever answered
	// Refusals is the number of records of clients only ever refused
	// (at most Options.MaxRefusals); RefusalsDropped how many were
	// dropped, oldest first, to stay within it since Open.
	Refusals, RefusalsDropped uint64
	Records                   uint64 // activations acknowledged since Open
	Batches                   uint64 // log syncs since Open (each acknowledges a batch)
	Commits                   uint64 // store transactions applying the log since Open
	Pending                   int    // acknowledged activations not yet in the store
	// PendingLimit is Options.MaxPending: with Pending at it the log
	// writer waits for the applier before it acknowledges more.
	PendingLimit int
	Pruned       uint64 // audit records removed by retention since Open
	FileSize     int64  // size of the store file in bytes
	LogSize      int64  // size of the log segments in bytes
}

// Stats returns the current counters.
func (l *Ledger) Stats() Stats {
	l.amu.Lock()
	pending := len(l.pending)
	l.amu.Unlock()
	return Stats{
		Clients:  l.clients.Load(),
		Refusals: l.refusals.Load(), RefusalsDropped: l.dropped.Load(),
		Records:      l.records.Load(),
		Batches:      l.batches.Load(),
		Commits:      l.commits.Load(),
		Pending:      pending,
		PendingLimit: l.opts.MaxPending,
		Pruned:       l.pruned.Load(),
		FileSize:     l.lastSize.Load(),
		LogSize:      l.logSize.Load(),
	}
}

func (l *Ledger) updateSize() {
	if fi, err := l.dir.lstat(l.db.Path()); err == nil {
		l.lastSize.Store(fi.Size())
	}
	l.amu.Lock()
	segs := append([]segment(nil), l.segments...)
	l.amu.Unlock()
	var n int64
	for _, s := range segs {
		if fi, err := l.dir.lstat(s.path); err == nil {
			n += fi.Size()
		}
	}
	l.logSize.Store(n)
}
