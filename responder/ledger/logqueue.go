package ledger

import (
	"math"
	"sync"
	"time"
)

// logQueue hands activations from Enqueue to the log writer. Enqueue
// appends to the batch being gathered; the writer takes that batch whole
// once it holds at least one activation (after lingering, see runLog) and
// starts a new one. Each Enqueue takes one short lock, and wakes the writer
// only when the writer waits for it.
type logQueue struct {
	mu   sync.Mutex
	next *batch // being gathered; never nil
	// closed stops Enqueue; the writer logs what next holds, then exits.
	closed bool
	// lingerFor is, while the writer lingers, the batch size it waits
	// for; 0 otherwise.
	lingerFor int
	// wake (capacity 1) wakes the writer: the first activation of a
	// batch, the size it lingers for, a full batch, or close.
	wake chan struct{}
	// room is closed when the writer takes a batch that Enqueue found
	// full; nil while nobody waits for room.
	room chan struct{}
}

// firstBatchCap is the capacity of the first batch's slice; later ones are
// sized from the recent average batch.
const firstBatchCap = 16

// signal wakes the writer if it is not already due to wake.
func (q *logQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close stops Enqueue and wakes the writer to drain what is queued.
func (q *logQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// take waits until the batch being gathered holds an activation and
// returns it, starting a new one of capacity capHint; it returns nil once
// the queue is closed and empty. When the batch holds fewer than below
// activations, take first lingers for up to wait until it holds target.
func (q *logQueue) take(below, target float64, wait time.Duration, capHint int) *batch {
	q.mu.Lock()
	for len(q.next.ops) == 0 {
		if q.closed {
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()
		<-q.wake
		q.mu.Lock()
	}
	if n, want := len(q.next.ops), int(math.Ceil(target)); float64(n) < below && n < want && wait > 0 && !q.closed {
		q.lingerFor = want
		q.mu.Unlock()
		q.linger(want, wait)
		q.mu.Lock()
		q.lingerFor = 0
	}
	b := q.next
	q.next = newBatch(capHint)
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return b
}

// linger waits until the batch being gathered holds want activations (or
// is full, or the queue closes), or wait has passed.
func (q *logQueue) linger(want int, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-q.wake:
			q.mu.Lock()
			done := len(q.next.ops) >= want || q.closed
			q.mu.Unlock()
			if done {
				return
			}
		case <-timer.C:
			return
		}
	}
}
