package dcerpc

import "time"

// workerIdle is how long a connection goroutine whose connection ended
// waits to be handed a new one before it exits.
const workerIdle = 30 * time.Second

// start serves c on a connection goroutine: one that finished its
// connection and waits for another, else a new one. A goroutine that ran a
// request has grown its stack to what a request needs; reusing it spares
// each new connection a goroutine start and the stack growth (copying the
// stack once or twice), a few µs per connection, and it keeps its read and
// write buffers.
func (s *Server) start(c *conn) {
	select {
	case s.handoff <- c:
	default:
		go s.work(c)
	}
}

// work serves c, then each connection handed to it, until none comes for
// workerIdle or Shutdown has finished.
func (s *Server) work(c *conn) {
	var idle *time.Timer
	for {
		c.serve()
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case next := <-s.handoff:
			// Only rbuf[:rlen] is ever read, so nothing of the previous
			// peer's bytes reaches the next.
			next.rbuf, next.wbuf = c.rbuf, c.wbuf[:0]
			c = next
		case <-idle.C:
			return
		case <-s.hard.Done():
			idle.Stop()
			return
		}
	}
}
