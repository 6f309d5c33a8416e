// Package ledger is the durable store of kms-responder: the client-counting
// state of every application, the host's identity (ePIDs and HwID) and one
// audit record per client.
//
// The store is a single bbolt file. Every activation is written through
// Record, which returns only after the transaction holding it has been
// committed and fsync'd; concurrent callers are batched into one transaction
// by a single writer goroutine (group commit), so many connections share the
// cost of one fsync. A host answers a client only after Record returned nil.
//
// Values are encoded in the package's own versioned binary format (see
// codec.go); every decoder checks bounds and reports what is wrong and where.
//
// Layout (bucket → key → value):
//
//	meta      "schema"                     → version byte
//	meta      "clients"                    → uint64, number of audit records
//	identity  "host"                       → Identity
//	audit     CMID‖App                     → Client
//	audit-ts  lastSeen‖CMID‖App            → empty (index for retention)
//	count     App                          → nested bucket: CMID → lastSeen
//	cap       App                          → the application's client cap
package ledger
