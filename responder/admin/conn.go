package admin

import (
	"net"
	"net/http"
	"sync"
)

// cappedListener keeps at most max admin connections open. At the cap a new
// connection evicts an idle keep-alive connection when there is one, else
// it is closed at once: held connections can neither exhaust the
// process's descriptors (which the KMS listener needs) nor lock out the
// scraper for longer than one request's timeouts.
type cappedListener struct {
	net.Listener
	max               int
	onRefuse, onEvict func()

	mu    sync.Mutex
	conns map[net.Conn]http.ConnState
}

func newCappedListener(ln net.Listener, max int, onRefuse, onEvict func()) *cappedListener {
	return &cappedListener{Listener: ln, max: max, onRefuse: onRefuse, onEvict: onEvict, conns: map[net.Conn]http.ConnState{}}
}

// Accept returns the next connection that fits under the cap.
func (l *cappedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if len(l.conns) >= l.max && !l.evictIdleLocked() {
			l.mu.Unlock()
			l.onRefuse()
			c.Close()
			continue
		}
		l.conns[c] = http.StateNew
		l.mu.Unlock()
		return c, nil
	}
}

// evictIdleLocked closes one idle connection; false if none is idle.
func (l *cappedListener) evictIdleLocked() bool {
	for c, st := range l.conns {
		if st == http.StateIdle {
			delete(l.conns, c)
			l.onEvict()
			c.Close()
			return true
		}
	}
	return false
}

// track is the http.Server's ConnState hook.
func (l *cappedListener) track(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	default:
		if _, ok := l.conns[c]; ok {
			l.conns[c] = st
		}
	}
}

// open returns the number of connections counted against the cap.
func (l *cappedListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
