// Package ledger is the durable store of kms-responder: the client-counting
// state of every application, the host's identity (ePIDs and HwID) and one
// audit record per client.
//
// Durability comes from a write-ahead log. The host calls Enqueue while it
// holds the lock that orders its count changes, so the log receives
// activations in the order the host counted them, and then, outside that
// lock, calls Wait on the returned Pending: Wait returns nil only after the activation has been appended to
// the log and the log synced to disk. Concurrent activations share one
// append and one sync (group commit), so many connections share the cost of
// one fsync. A host answers a client only after Wait returned nil. Record
// is Enqueue followed by Wait, for callers that need no ordering with
// their own state. An applier goroutine folds logged activations
// into a bbolt store in large transactions (every two seconds, or sooner
// when many are pending), which is far cheaper per activation than one
// B-tree transaction per batch; Open replays whatever the log holds that the
// store lacks, so a crash at any point loses no acknowledged activation.
// Reads through a Ledger apply pending activations first.
//
// How far the log was synced is kept where damage to the log's tail cannot
// erase it: in a synced mark at the head of each segment (see wal.go). A
// log whose frames end before its mark lost acknowledged activations and
// is refused as damage, though zeros at its end look like unwritten space;
// only the last batch, which a crash can tear, may be missing. The mark is
// a small write into the segment's first page, made with each batch's
// frames and covered by the batch's one data sync: a separate mark file
// would need a second sync per batch, and the store's applied sequence or
// the next segment's name lag by up to two seconds or a whole segment.
//
// Where the CPU per activation goes, how it is measured and what changed it
// is in PERFORMANCE.md beside this file.
//
// Values are encoded in the package's own versioned binary formats (see
// record.go, identity.go and wal.go); every decoder checks bounds and
// reports what is wrong and where.
//
// Files in the data directory:
//
//	ledger.db                 bbolt store
//	wal-<first sequence>.log  log segments (synced mark, then frames); applied ones are deleted
//
// Store layout, schema 3 (bucket → key → value):
//
//	meta      "schema"                     → version byte
//	meta      "clients"                    → uint64, number of audit records
//	meta      "applied"                    → uint64, last log sequence applied
//	identity  "host"                       → Identity
//	audit-by-time lastSeen‖CMID‖App        → Client (sealed over this key)
//	refused   CMID‖App                     → Client, of a client only ever refused
//	refused-ts lastSeen‖CMID‖App           → empty (index for the refusal budget)
//	meta      "refusals"                   → uint64, number of refused records
//	count     App                          → nested bucket: CMID → lastSeen
//	cap       App                          → the application's client cap
//
// lastSeen is the client's last request as sortable nanoseconds
// (sortableNanos, big-endian), so audit-by-time is in the order of last
// requests: a new client's record is put after every key (an append to
// the rightmost page, which the applier packs full), and a renewal deletes
// the record's old key and appends the new one. Retention pruning walks
// it from the oldest key, ClientsPage from the newest, with the key as its
// cursor. A client's key is found through an in-memory map CMID‖App →
// lastSeen (clientIndex, index.go) that Open builds from verifyStore's
// walk (in a goroutine beside it, indexbuild.go) and the applier keeps. Each key is checked against the
// record's own CMID, application and last request, and a client with two
// records is damage.
//
// Schema 2 kept the records under CMID‖App in "audit" with a retention
// index "audit-ts" (lastSeen‖CMID‖App → empty): each new client was a
// random insert into audit plus an index entry, and bbolt rewrites every
// page a transaction touches. Open upgrades a schema-2 store in place
// (migrate.go), one way.
package ledger
