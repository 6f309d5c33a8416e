package ledger

import bolt "go.etcd.io/bbolt"

// indexBatch is how many records the walk hands the index builder at once.
const indexBatch = 1024

// indexEntry is one record for the index: its client and the time part of
// its key.
type indexEntry struct {
	id clientID
	ts uint64
}

// indexBuilder builds the client index from the records verifyStore's
// walk accepts, in a goroutine of its own, so that the index's inserts
// (a cache miss each in a table of tens of megabytes at a million
// clients) overlap the walk's checksums and format checks. The goroutine
// inserts each client whose hash is free; the others (a hash another
// client holds, or a second record of one client) it keeps in order, and
// finish judges them with clientIndex.add after the walk, as a walk that
// built the index itself would have.
type indexBuilder struct {
	index *clientIndex // set by the goroutine, read once done is closed
	batch []indexEntry
	full  chan []indexEntry
	free  chan []indexEntry
	done  chan struct{}
	held  []indexEntry // only the goroutine touches it until done is closed
}

// startIndexBuild starts building an index sized for n clients.
func startIndexBuild(n int) *indexBuilder {
	b := &indexBuilder{
		full: make(chan []indexEntry, 4),
		free: make(chan []indexEntry, 5),
		done: make(chan struct{}),
	}
	b.batch = make([]indexEntry, 0, indexBatch)
	for range 4 {
		b.free <- make([]indexEntry, 0, indexBatch)
	}
	go func() {
		defer close(b.done)
		x := newClientIndex(n)
		b.index = x
		for batch := range b.full {
			for i := range batch {
				if !x.addFree(&batch[i].id, batch[i].ts) {
					b.held = append(b.held, batch[i])
				}
			}
			b.free <- batch[:0]
		}
	}()
	return b
}

// add hands the builder one record's client and time.
func (b *indexBuilder) add(id *clientID, ts uint64) {
	b.batch = append(b.batch, indexEntry{*id, ts})
	if len(b.batch) == cap(b.batch) {
		b.full <- b.batch
		b.batch = <-b.free
	}
}

// finish waits for the goroutine and judges the held records against
// records: it calls bad for each second record of a client (its client
// and time), in the walk's order, and returns the index.
func (b *indexBuilder) finish(records *bolt.Bucket, bad func(id *clientID, ts uint64)) *clientIndex {
	if len(b.batch) > 0 {
		b.full <- b.batch
		b.batch = nil
	}
	b.stop()
	for i := range b.held {
		if !b.index.add(records, &b.held[i].id, b.held[i].ts) {
			bad(&b.held[i].id, b.held[i].ts)
		}
	}
	return b.index
}

// stop ends the goroutine (once; finish calls it, and verifyStore defers
// it for a walk that panics).
func (b *indexBuilder) stop() {
	select {
	case <-b.done:
	default:
		close(b.full)
		<-b.done
	}
}
