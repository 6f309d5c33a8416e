package admin

import (
	"cmp"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
)

// Reasons a cappedListener counts.
const (
	reasonConnCap = "connection_cap" // at the cap, nothing waiting to evict: the new one closed
	reasonEvicted = "evicted"        // the connection waiting longest, silent, closed to admit a new one
	reasonSlowHdr = "slow_header"    // the connection waiting longest, sending its request header, closed to admit a new one
	reasonAddrCap = "address_cap"    // a request beyond its address's cap: its connection closed
)

// cappedListener keeps at most max admin connections open.
//
// A connection is waiting from when it is accepted, or goes idle after a
// response, until the server has read its whole request header (then
// http.Server reports it active): silent while it has sent nothing (bytes
// that arrived unread count as sent: see hasUnread), sending headers once
// the server has read part of a request from it. At the cap a new
// connection closes the one waiting longest, of any address, of the
// larger group of waiting ones, silent or sending headers (silent on a
// tie); it is closed itself only when none is waiting.
//
// Waiting therefore holds nothing: however many connect and stay silent
// or trickle a header, and reconnect when closed, from however many
// addresses (any local user can bind all of 127.0.0.0/8), they only push
// each other out. A scraper or health check that sends its request at
// once waits for microseconds, the newest of its group, and in the
// smaller group while the flood is of the other kind (silent while its
// request is on the way, then sending headers until the server has read
// them): it gets answered.
//
// What can hold a slot is a connection being answered. At most
// maxPerAddr connections per client address may be busy (sending a
// request or being answered): one whose address already has maxPerAddr
// busy ones is closed when it starts sending a request. Busy connections
// end within the admin server's header and request timeouts.
type cappedListener struct {
	net.Listener
	max, maxPerAddr int
	count           func(reason string)

	mu     sync.Mutex
	conns  map[net.Conn]*connInfo // keyed by the *trackedConn Accept returned
	busyBy map[netip.Addr]int     // busy connections per client address
	seq    uint64                 // orders connections by when they went silent
}

// connInfo is what the listener knows of one open connection.
type connInfo struct {
	addr  netip.Addr
	state http.ConnState
	since uint64 // seq when it last went new or idle
	busy  bool   // the server has read from it since it was new or idle
}

// waiting reports whether the server has not yet read a whole request
// header from the connection since it was new or idle.
func (ci *connInfo) waiting() bool {
	return ci.state == http.StateNew || ci.state == http.StateIdle
}

// trackedConn reports the server's first read of a request to the
// listener, which may refuse it.
type trackedConn struct {
	net.Conn
	l *cappedListener
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.l.spoke(c) {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	return n, err
}

func newCappedListener(ln net.Listener, max, maxPerAddr int, count func(reason string)) *cappedListener {
	return &cappedListener{Listener: ln, max: max, maxPerAddr: min(max, maxPerAddr), count: count,
		conns: map[net.Conn]*connInfo{}, busyBy: map[netip.Addr]int{}}
}

// remoteAddr is the client address of c, unmapped; the zero Addr when c is
// not TCP (all such connections share one per-address budget).
func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// Accept returns the next connection that fits under the cap.
func (l *cappedListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &trackedConn{Conn: nc, l: l}
		l.mu.Lock()
		if len(l.conns) >= l.max && !l.evictWaitingLocked() {
			l.mu.Unlock()
			l.count(reasonConnCap)
			nc.Close()
			continue
		}
		l.seq++
		l.conns[c] = &connInfo{addr: remoteAddr(nc), state: http.StateNew, since: l.seq}
		l.mu.Unlock()
		return c, nil
	}
}

// spoke records that the server read from c; false when c's address has
// its cap of busy connections already (c is then to be closed).
func (l *cappedListener) spoke(c *trackedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ci, ok := l.conns[c]
	if !ok || ci.busy {
		return true
	}
	if l.busyBy[ci.addr] >= l.maxPerAddr {
		l.removeLocked(c, ci)
		l.count(reasonAddrCap)
		return false
	}
	l.setBusyLocked(ci, true)
	return true
}

// evictWaitingLocked closes a waiting connection to make room: the one
// waiting longest of the larger group, silent or sending headers (silent
// on a tie), else of the other; false if none is waiting. A silent one
// whose request has arrived unread is passed over.
func (l *cappedListener) evictWaitingLocked() bool {
	type candidate struct {
		c  net.Conn
		ci *connInfo
	}
	var silent, headers []candidate
	for c, ci := range l.conns {
		switch {
		case !ci.waiting():
		case ci.busy:
			headers = append(headers, candidate{c, ci})
		case !hasUnread(c.(*trackedConn).Conn): // else its request has arrived
			silent = append(silent, candidate{c, ci})
		}
	}
	from, reason := silent, reasonEvicted
	if len(headers) > len(silent) {
		from, reason = headers, reasonSlowHdr
	}
	if len(from) == 0 {
		return false // both empty
	}
	oldest := slices.MinFunc(from, func(a, b candidate) int { return cmp.Compare(a.ci.since, b.ci.since) })
	l.removeLocked(oldest.c, oldest.ci)
	l.count(reason)
	oldest.c.Close()
	return true
}

func (l *cappedListener) removeLocked(c net.Conn, ci *connInfo) {
	delete(l.conns, c)
	l.setBusyLocked(ci, false)
}

func (l *cappedListener) setBusyLocked(ci *connInfo, busy bool) {
	if ci.busy == busy {
		return
	}
	ci.busy = busy
	if busy {
		l.busyBy[ci.addr]++
		return
	}
	if l.busyBy[ci.addr]--; l.busyBy[ci.addr] <= 0 {
		delete(l.busyBy, ci.addr)
	}
}

// track is the http.Server's ConnState hook.
func (l *cappedListener) track(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ci, ok := l.conns[c]
	if !ok {
		return // evicted or refused
	}
	switch st {
	case http.StateClosed, http.StateHijacked:
		l.removeLocked(c, ci)
	case http.StateNew, http.StateIdle:
		if ci.state != st {
			l.seq++
			ci.since = l.seq
			l.setBusyLocked(ci, false)
		}
		ci.state = st
	default:
		ci.state = st
	}
}

// open returns the number of connections counted against the cap.
func (l *cappedListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
