package dcerpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handler answers the KMS RequestActivation call. request holds the KMS
// request bytes; it aliases the connection's read buffer and is valid only
// until ServeKMS returns. A non-zero status is an HRESULT sent back as the
// call's return value with an empty response (the way KMS hosts report
// errors); response is then ignored. The server copies response before
// ServeKMS is called again on the same connection.
type Handler interface {
	ServeKMS(ctx context.Context, peer netip.AddrPort, request []byte) (response []byte, status uint32)
}

// StatusCloseConnection, returned by a Handler as the status, answers
// nothing and closes the connection. A host uses it when it cannot make its
// decision durable: a Windows client treats the dropped connection as an
// unreachable host and tries the next one, where an error HRESULT would end
// its attempt.
const StatusCloseConnection uint32 = 0xFFFFFFFF

// errHandlerClosed ends a connection whose handler asked for it.
var errHandlerClosed = errors.New("rpc: handler closed the connection without answering")

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, peer netip.AddrPort, request []byte) ([]byte, uint32)

// ServeKMS calls f.
func (f HandlerFunc) ServeKMS(ctx context.Context, peer netip.AddrPort, request []byte) ([]byte, uint32) {
	return f(ctx, peer, request)
}

// Event is a connection or PDU event reported to ServerConfig.Observe.
type Event uint8

// Events.
const (
	// EventConnOpened: a connection was admitted.
	EventConnOpened Event = iota + 1
	// EventConnClosed: an admitted connection ended, for whatever reason.
	EventConnClosed
	// EventConnRefused: a connection was closed before any response, because
	// AllowPeer refused the peer or the cap was reached with none waiting.
	EventConnRefused
	// EventConnEvicted: a waiting connection (idle, or stalled inside a
	// PDU) was closed to make room under MaxConns.
	EventConnEvicted
	// EventPDUError: a malformed, oversized or unexpected PDU ended a connection.
	EventPDUError
	// EventTimeout: a deadline (first PDU, idle or I/O) ended a connection.
	EventTimeout
	// EventFault: a fault PDU was sent.
	EventFault
	// EventRequest: a request was passed to the handler.
	EventRequest
	// EventAddrRefused: a connection was refused because its address held
	// MaxConnsPerAddr connections, none of them waiting.
	EventAddrRefused
	// EventAddrEvicted: the oldest waiting connection of an address at
	// MaxConnsPerAddr was closed to admit a new one from that address.
	EventAddrEvicted
)

// String returns the event's name, suitable as a metric label.
func (e Event) String() string {
	switch e {
	case EventConnOpened:
		return "conn_opened"
	case EventConnClosed:
		return "conn_closed"
	case EventConnRefused:
		return "conn_refused"
	case EventConnEvicted:
		return "conn_evicted"
	case EventPDUError:
		return "pdu_error"
	case EventTimeout:
		return "timeout"
	case EventFault:
		return "fault"
	case EventRequest:
		return "request"
	case EventAddrRefused:
		return "conn_refused_per_address"
	case EventAddrEvicted:
		return "conn_evicted_per_address"
	}
	return "event(" + strconv.Itoa(int(e)) + ")"
}

// DefaultPort is the TCP port KMS clients connect to and KMS hosts listen
// on and publish in their _vlmcs._tcp SRV records.
const DefaultPort = 1688

// Defaults for ServerConfig's zero values.
const (
	DefaultMaxConns        = 1024
	DefaultMaxConnsPerAddr = 128
	DefaultFirstPDUTimeout = 10 * time.Second
	DefaultIdleTimeout     = 30 * time.Second
	DefaultBodyTimeout     = 2 * time.Second
	DefaultIOTimeout       = 10 * time.Second
	DefaultMaxPDUSize      = 1024
)

// minPDUSize keeps MaxPDUSize large enough for a KMS bind (160 bytes) and
// request (at most 300 bytes).
const minPDUSize = 512

// Limits are a server's connection limits: how many connections, and how
// long each may take to send and to be answered.
type Limits struct {
	// MaxConns caps concurrent connections over all listeners. At the cap
	// the oldest waiting connection (idle between PDUs, or stalled inside
	// one) is closed to admit a new one; when none is waiting (every one is
	// being answered) the new one is refused.
	MaxConns int
	// MaxConnsPerAddr caps concurrent connections from one client address,
	// so that one address cannot fill MaxConns. At the cap the address's
	// oldest waiting connection is closed to admit a new one; when none is
	// waiting the new one is refused.
	MaxConnsPerAddr int
	// FirstPDUTimeout bounds the time from accept to a complete first PDU.
	FirstPDUTimeout time.Duration
	// IdleTimeout bounds the wait for the next PDU's header.
	IdleTimeout time.Duration
	// BodyTimeout bounds reading the rest of a PDU once its header arrived
	// (within FirstPDUTimeout for the first PDU).
	BodyTimeout time.Duration
	// IOTimeout bounds writing an answer.
	IOTimeout time.Duration
}

// ServerConfig configures a Server. Zero values select the defaults.
type ServerConfig struct {
	// Limits bound connections; zero values take the defaults.
	Limits
	// MaxPDUSize is the largest frag_length accepted (at least 512, at most
	// 65535); larger PDUs close the connection before anything is allocated
	// for them.
	MaxPDUSize int
	// DisableNDR64 answers like a host without NDR64: NDR32 is accepted in
	// the bind and NDR64 rejected.
	DisableNDR64 bool
	// AllowPeer, when set, is asked about each new connection's remote
	// address; refused connections are closed before anything is read or
	// written.
	AllowPeer func(netip.Addr) bool
	// Logger receives debug records for closed connections and PDU errors;
	// nil discards.
	Logger *slog.Logger
	// Observe, when set, is called synchronously for each Event, e.g. to
	// count them in metrics. It must be fast and must not block.
	Observe func(Event)
}

// Server is a DCE/RPC server for the KMS interface over TCP. One Server may
// serve many listeners.
type Server struct {
	h     Handler
	cfg   ServerConfig
	log   *slog.Logger
	group atomic.Uint32

	draining atomic.Bool
	// hard is cancelled when Shutdown closes connections forcibly (or has
	// finished); handler contexts derive their cancellation from it.
	hard       context.Context
	hardCancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	oldest    *conn // oldest connection; conns are linked in accept order
	newest    *conn
	nconns    int
	perAddr   map[netip.Addr]int // open connections per client address
	epoch     time.Time          // origin of conn.waitSince
	wg        sync.WaitGroup

	// handoff passes a new connection to a connection goroutine waiting
	// for one (see start).
	handoff chan *conn
}

// NewServer returns a server that passes KMS requests to h.
func NewServer(h Handler, cfg ServerConfig) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerAddr <= 0 {
		cfg.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	if cfg.FirstPDUTimeout <= 0 {
		cfg.FirstPDUTimeout = DefaultFirstPDUTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = DefaultIOTimeout
	}
	switch {
	case cfg.MaxPDUSize <= 0:
		cfg.MaxPDUSize = DefaultMaxPDUSize
	case cfg.MaxPDUSize < minPDUSize:
		cfg.MaxPDUSize = minPDUSize
	case cfg.MaxPDUSize > 0xffff:
		cfg.MaxPDUSize = 0xffff
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{h: h, cfg: cfg, log: log, listeners: make(map[net.Listener]struct{}), perAddr: make(map[netip.Addr]int), epoch: time.Now(), handoff: make(chan *conn)}
	s.hard, s.hardCancel = context.WithCancel(context.Background())
	// Like vlmcsd: a random association group, one more per connection.
	s.group.Store(rand.Uint32())
	return s
}

func (s *Server) observe(e Event) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(e)
	}
}

// Serve accepts connections on ln and serves each in its own goroutine
// until ctx is cancelled or Shutdown is called; it closes ln before
// returning. Cancelling ctx stops ln gracefully: it closes the idle
// connections accepted from ln and lets the busy ones finish their current
// request and write its response (Shutdown waits for them). Serve returns
// nil after ctx is cancelled, ErrServerClosed after Shutdown, or the
// listener's error.
//
// Handlers receive a context that carries ctx's values but is not cancelled
// with it, so that a request in flight is not aborted by a graceful stop; it
// is cancelled only when Shutdown gives up and closes connections forcibly.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.closeIdle(func(c *conn) bool { return c.ln == ln })
	})
	defer stop()
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	context.AfterFunc(s.hard, cancel)

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.draining.Load() {
				return ErrServerClosed
			}
			if ctx.Err() != nil {
				return nil
			}
			if !temporary(err) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("rpc: accept failed; retrying", "listener", ln.Addr().String(), "err", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
			continue
		}
		delay = 0
		s.admit(ctx, hctx, ln, nc)
	}
}

// temporary reports accept errors worth retrying: resource exhaustion and
// connections aborted before accept.
func temporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNRESET)
}

// addrPort converts a net.Addr to an unmapped netip.AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// admit applies AllowPeer and the connection caps, then starts serving nc.
func (s *Server) admit(ctx, hctx context.Context, ln net.Listener, nc net.Conn) {
	peer := addrPort(nc.RemoteAddr())
	if s.cfg.AllowPeer != nil && !s.cfg.AllowPeer(peer.Addr()) {
		// Count before closing: whoever sees the close may read the count.
		s.observe(EventConnRefused)
		nc.Close()
		s.log.Debug("rpc: peer refused", "peer", peer.String())
		return
	}
	c := &conn{s: s, nc: nc, ln: ln, ctx: ctx, hctx: hctx, peer: peer}
	c.assoc.group = s.group.Add(1)
	c.assoc.secAddr = strconv.Itoa(int(addrPort(nc.LocalAddr()).Port()))
	c.assoc.noNDR64 = s.cfg.DisableNDR64
	// A new connection waits for its first PDU: evictable from the start,
	// before its goroutine runs.
	c.state.Store(stateIdle)
	c.waitSince.Store(int64(time.Since(s.epoch)))

	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if a := peer.Addr(); s.perAddr[a] >= s.cfg.MaxConnsPerAddr {
		victim := s.evictableLocked(func(c *conn) bool { return c.peer.Addr() == a })
		if victim == nil {
			s.mu.Unlock()
			s.observe(EventAddrRefused)
			nc.Close()
			s.log.Debug("rpc: per-address connection cap reached, none waiting; refused", "peer", peer.String(), "cap", s.cfg.MaxConnsPerAddr)
			return
		}
		s.evictLocked(victim, EventAddrEvicted, peer)
	}
	if s.nconns >= s.cfg.MaxConns {
		victim := s.evictableLocked(nil)
		if victim == nil {
			s.mu.Unlock()
			s.observe(EventConnRefused)
			nc.Close()
			s.log.Debug("rpc: connection cap reached, none waiting; refused", "peer", peer.String(), "cap", s.cfg.MaxConns)
			return
		}
		s.evictLocked(victim, EventConnEvicted, peer)
	}
	s.linkLocked(c)
	s.wg.Add(1)
	s.mu.Unlock()
	s.observe(EventConnOpened)
	s.start(c)
}

// evictableLocked claims (idle or body → closed) and returns the
// waiting connection that matches (any when match is nil) and is the
// likeliest to be stalled, or nil. A waiting connection waits for its peer:
// for the next PDU's header, or for the rest of a PDU whose header arrived;
// no request of it is in progress. Connections that have not yet completed
// a PDU go first, then those that have; within each, the one waiting the
// longest. So a flood that keeps opening connections which never complete
// a PDU evicts its own, not a client that is exchanging PDUs.
func (s *Server) evictableLocked(match func(*conn) bool) *conn {
	for range 8 {
		var best *conn
		var bestSince int64
		for c := s.oldest; c != nil; c = c.next {
			if st := c.state.Load(); st != stateIdle && st != stateBody {
				continue
			}
			if match != nil && !match(c) {
				continue
			}
			served, since := c.served.Load(), c.waitSince.Load()
			if !served {
				// Connections are linked in accept order and one that was
				// never served has waited since its accept: the first
				// found has waited the longest.
				best = c
				break
			}
			if best == nil || since < bestSince {
				best, bestSince = c, since
			}
		}
		if best == nil {
			return nil
		}
		if best.state.CompareAndSwap(stateIdle, stateClosed) || best.state.CompareAndSwap(stateBody, stateClosed) {
			return best
		}
		// It became busy meanwhile: choose again.
	}
	return nil
}

// evictLocked closes a claimed connection to admit peer.
func (s *Server) evictLocked(victim *conn, e Event, peer netip.AddrPort) {
	s.unlinkLocked(victim)
	s.observe(e)
	victim.nc.Close()
	s.log.Debug("rpc: connection cap reached; evicted a waiting connection", "reason", e.String(), "evicted", victim.peer.String(), "peer", peer.String())
}

func (s *Server) linkLocked(c *conn) {
	c.prev = s.newest
	if s.newest != nil {
		s.newest.next = c
	} else {
		s.oldest = c
	}
	s.newest = c
	c.linked = true
	s.nconns++
	s.perAddr[c.peer.Addr()]++
}

func (s *Server) unlinkLocked(c *conn) {
	if !c.linked {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		s.oldest = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		s.newest = c.prev
	}
	c.prev, c.next, c.linked = nil, nil, false
	s.nconns--
	if a := c.peer.Addr(); s.perAddr[a] <= 1 {
		delete(s.perAddr, a)
	} else {
		s.perAddr[a]--
	}
}

// closeIdle closes the idle connections that match (all when match is nil).
func (s *Server) closeIdle(match func(*conn) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := s.oldest; c != nil; c = c.next {
		if (match == nil || match(c)) && c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.nc.Close()
		}
	}
}

// Conns returns the number of open connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconns
}

// Shutdown stops the server gracefully: it closes every listener and every
// idle connection, lets requests in progress finish and their responses be
// written, then closes those connections too. It returns when all
// connections are closed, or with ctx.Err() when ctx ends first, after
// cancelling the handlers' contexts and closing the remaining connections
// forcibly. It also ends the goroutines kept to serve later connections;
// without Shutdown each ends 30 seconds after its last connection.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.closeIdle(nil)

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	defer s.hardCancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.hardCancel()
		s.mu.Lock()
		for c := s.oldest; c != nil; c = c.next {
			c.state.Store(stateClosed)
			c.nc.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// Connection states. An idle connection (waiting for a PDU header) may be
// closed by eviction or shutdown, via idle → closed; one stalled inside a
// PDU (body: waiting for the rest of it) by eviction, via body → closed.
const (
	stateBusy int32 = iota
	stateIdle
	stateBody
	stateClosed
)

// conn is one accepted connection.
type conn struct {
	s     *Server
	nc    net.Conn
	ln    net.Listener
	ctx   context.Context // Serve's: cancelled means stop after this request
	hctx  context.Context // the handler's
	peer  netip.AddrPort
	state atomic.Int32
	// waitSince is when the connection started waiting for its peer (ns
	// since the server's epoch); served is set once a PDU was answered.
	// Eviction reads both.
	waitSince atomic.Int64
	served    atomic.Bool

	// Guarded by s.mu.
	prev, next *conn
	linked     bool

	assoc association
	// rbuf holds MaxPDUSize bytes, reused for every PDU; its first rlen
	// bytes were read and not yet consumed. One read takes whatever the
	// peer sent (a header with its body, usually) up to the buffer's end,
	// so no PDU may exceed what the buffer holds.
	rbuf []byte
	rlen int
	wbuf []byte // reused for every answer
}

// toIdle marks the connection idle before waiting for a header; it returns
// false when the connection must end (closed, shutting down, cancelled).
func (c *conn) toIdle() bool {
	c.waitSince.Store(int64(time.Since(c.s.epoch)))
	if !c.state.CompareAndSwap(stateBusy, stateIdle) {
		return false
	}
	if c.s.draining.Load() || c.ctx.Err() != nil {
		c.state.CompareAndSwap(stateIdle, stateClosed)
		return false
	}
	return true
}

// stillIdle checks a new connection, admitted idle, before its first read;
// false means it must end.
func (c *conn) stillIdle() bool {
	if c.s.draining.Load() || c.ctx.Err() != nil {
		c.state.CompareAndSwap(stateIdle, stateClosed)
		return false
	}
	return c.state.Load() == stateIdle
}

// toBusy marks the connection busy after a header arrived; false means it
// was closed meanwhile.
func (c *conn) toBusy() bool {
	return c.state.CompareAndSwap(stateIdle, stateBusy)
}

// fill reads into rbuf until it holds at least n bytes (n <= len(rbuf)).
// Each read asks for all the room left, so a PDU that arrives whole is
// read by one call. The peer closing before n bytes is io.EOF when
// nothing of the PDU was buffered, io.ErrUnexpectedEOF otherwise.
func (c *conn) fill(n int) error {
	if c.rlen >= n {
		return nil
	}
	had := c.rlen
	m, err := io.ReadAtLeast(c.nc, c.rbuf[c.rlen:], n-c.rlen)
	c.rlen += m
	if errors.Is(err, io.EOF) && had > 0 {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// consume drops the first n buffered bytes (one answered PDU), keeping
// any the peer sent after it.
func (c *conn) consume(n int) {
	c.rlen = copy(c.rbuf, c.rbuf[n:c.rlen])
}

// readBody reads the rest of a PDU of n bytes whose header arrived, by
// deadline, in the body state, where eviction may close the connection. It
// returns errEvicted when that happened.
func (c *conn) readBody(n int, deadline time.Time) error {
	if c.rlen >= n {
		return nil
	}
	c.nc.SetReadDeadline(deadline)
	if !c.state.CompareAndSwap(stateBusy, stateBody) {
		return errEvicted
	}
	err := c.fill(n)
	if !c.state.CompareAndSwap(stateBody, stateBusy) {
		return errEvicted
	}
	return err
}

// errEvicted ends a connection closed by eviction while it read.
var errEvicted = errors.New("rpc: connection evicted")

func (c *conn) serve() {
	s := c.s
	defer func() {
		if r := recover(); r != nil {
			// Like net/http: a panicking handler ends its connection, not
			// the process.
			s.log.Error("rpc: handler panicked; connection closed", "peer", c.peer.String(), "panic", r, "stack", string(debug.Stack()))
		}
		c.nc.Close()
		s.mu.Lock()
		s.unlinkLocked(c)
		s.mu.Unlock()
		s.wg.Done()
		s.observe(EventConnClosed)
	}()
	if c.rbuf == nil {
		c.rbuf = make([]byte, s.cfg.MaxPDUSize)
		c.wbuf = make([]byte, 0, 512)
	}
	first := true
	firstDeadline := time.Now().Add(s.cfg.FirstPDUTimeout)
	for {
		if first {
			if !c.stillIdle() {
				return
			}
		} else if !c.toIdle() {
			return
		}
		var err error
		if c.rlen < HeaderLen {
			deadline := firstDeadline
			if !first {
				deadline = time.Now().Add(s.cfg.IdleTimeout)
			}
			c.nc.SetReadDeadline(deadline)
			err = c.fill(HeaderLen)
		}
		if !c.toBusy() {
			return
		}
		if err != nil {
			c.readFailed(err, "header")
			return
		}
		h, err := ParseHeader(c.rbuf[:HeaderLen])
		if err != nil {
			c.pduError(err)
			return
		}
		if int(h.FragLength) > len(c.rbuf) {
			c.pduError(parseErr("header", 8, "frag_length %d exceeds the limit of %d", h.FragLength, len(c.rbuf)))
			return
		}
		// A header without its body must not hold the connection: the
		// rest has its own short deadline, and the connection is evictable
		// meanwhile.
		if c.rlen < int(h.FragLength) {
			deadline := time.Now().Add(s.cfg.BodyTimeout)
			if first && firstDeadline.Before(deadline) {
				deadline = firstDeadline
			}
			if err := c.readBody(int(h.FragLength), deadline); err != nil {
				if !errors.Is(err, errEvicted) {
					c.readFailed(err, "body")
				}
				return
			}
		}
		out, err := c.dispatch(h, c.rbuf[:h.FragLength])
		if errors.Is(err, errHandlerClosed) {
			s.log.Debug("rpc: closing connection without an answer", "peer", c.peer.String())
			return
		}
		if err != nil {
			c.pduError(err)
			return
		}
		c.wbuf = out[:0]
		c.nc.SetWriteDeadline(time.Now().Add(s.cfg.IOTimeout))
		if _, err := c.nc.Write(out); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.observe(EventTimeout)
			}
			s.log.Debug("rpc: write failed", "peer", c.peer.String(), "err", err)
			return
		}
		c.consume(int(h.FragLength))
		first = false
		c.served.Store(true)
	}
}

func (c *conn) readFailed(err error, what string) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.s.observe(EventTimeout)
		c.s.log.Debug("rpc: deadline reached", "peer", c.peer.String(), "reading", what)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.s.observe(EventPDUError)
		c.s.log.Debug("rpc: connection closed inside a PDU", "peer", c.peer.String(), "reading", what)
	default:
		c.s.log.Debug("rpc: read failed", "peer", c.peer.String(), "err", err)
	}
}

func (c *conn) pduError(err error) {
	c.s.observe(EventPDUError)
	c.s.log.Debug("rpc: closing connection", "peer", c.peer.String(), "err", err)
}

// dispatch answers one complete PDU into c.wbuf. An error closes the
// connection.
func (c *conn) dispatch(h Header, pdu []byte) ([]byte, error) {
	switch h.Type {
	case PTypeBind, ptypeAlterContext:
		if h.Flags&(FlagFirstFrag|FlagLastFrag) != FlagFirstFrag|FlagLastFrag {
			return nil, parseErr(h.Type.String(), 3, "flags 0x%02x: fragmented PDUs are not supported", h.Flags)
		}
		return c.assoc.negotiate(c.wbuf[:0], pdu)
	case PTypeRequest:
		return c.request(pdu)
	}
	return nil, parseErr("header", 2, "unexpected PDU type %v", h.Type)
}

// maxResponse is the largest KMS response payload that still fits one
// fragment with the NDR64 stub overhead.
const maxResponse = 0xffff - HeaderLen - responseBodyLen - 32

func (c *conn) request(pdu []byte) ([]byte, error) {
	h, q, err := parseRequest(pdu)
	if err != nil {
		return nil, err
	}
	out := Header{Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: h.CallID}
	syn := c.assoc.lookup(q.ContextID)
	if syn == noSyntax {
		return c.fault(out, ncaUnknownInterface, "context not accepted", q.ContextID), nil
	}
	if q.Opnum != 0 {
		return c.fault(out, ncaOpRangeError, "opnum not 0", q.Opnum), nil
	}
	payload, err := parseRequestStub(syn, q.Stub)
	if err != nil {
		c.s.log.Debug("rpc: bad request stub", "peer", c.peer.String(), "err", err)
		return c.fault(out, badStubData, "bad stub", q.ContextID), nil
	}
	c.s.observe(EventRequest)
	resp, status := c.s.h.ServeKMS(c.hctx, c.peer, payload)
	if status == StatusCloseConnection {
		return nil, errHandlerClosed
	}
	if status == 0 && len(resp) > maxResponse {
		c.s.log.Error("rpc: handler response too large", "size", len(resp))
		return c.fault(out, ncaProtoError, "response too large", q.ContextID), nil
	}
	return appendKMSResponse(c.wbuf[:0], out, q.ContextID, syn, resp, status), nil
}

func (c *conn) fault(h Header, status uint32, why string, val uint16) []byte {
	c.s.observe(EventFault)
	c.s.log.Debug("rpc: fault", "peer", c.peer.String(), "status", status, "why", why, "value", val)
	// vlmcsd and Windows send p_cont_id 0 in faults.
	return appendFault(c.wbuf[:0], h, 0, status)
}
