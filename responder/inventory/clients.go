// Package inventory serves kms-responder's client inventory: GET /clients
// (every client the ledger holds, filtered, streamed in chunks as JSON or
// CSV) and GET /clients/summary, in the statusapi schema.
package inventory

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dnsname"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/host"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/ledger"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// Chunking of GET /clients: each chunk is one short ledger read
// transaction (see ledger.ClientsPage) and one write deadline.
const (
	clientsChunk      = 1000 // rows per chunk
	clientsChunkScan  = 4096 // index entries read per chunk with selective filters
	clientsChunkWrite = 10 * time.Second
	maxClientsExports = 2 // concurrent /clients requests; more get 503
	// idlePace and busyPace are how long a listing or summary rests
	// after each chunk, as a multiple of the chunk's own work: resting in
	// proportion, a scan takes the same share of a core however cheap its
	// rows are. While the host is busy answering clients every share of a
	// core a scan takes is taken from them, so it rests busyPace (a
	// twelfth of a core; a 1M-client CSV export then takes about 25 s);
	// otherwise nobody waits for the CPU, and it rests idlePace (a third
	// of a core; about 7 s).
	idlePace = 2
	busyPace = 11
	// busyRate is the rate of activations acknowledged by the ledger
	// (answered or refused) over the last busyWindow from which the host
	// counts as busy: at 40–120 µs of serve's CPU each (persistent
	// connections or one per request), a twenty-fifth to an eighth of a
	// core. A lower rate, which anyone can send, does not slow scans down.
	// The window slides: a storm is seen as soon as a thousand activations
	// are in the last second (at 25,000 a second, after 40 ms), and a
	// scan goes back to idle a second after it ends; bursts, and group
	// commits acknowledging a whole batch at once, count only by what they
	// add to a second.
	busyRate   = 1000 // per second
	busyWindow = time.Second
)

// pacer chooses a scan's rests. A scan counts as busy until it has
// measured a whole window, so that it never takes a third of a core from
// a host it has not yet seen idle; then by the count over the last window
// (see busy) and the backlog (see backlogged). A pause between chunks
// longer than a quarter of a window (a slow reader, a starved machine)
// leaves no sample near the window's start: the scan then counts as
// unmeasured again until it has one, rather than averaging a storm that
// began in the pause over the whole pause.
type pacer struct {
	stats  func() ledger.Stats
	now    func() time.Time
	window time.Duration
	sleep  func(r *http.Request, work, d time.Duration) bool
	// samples of the acknowledged count, oldest first, taken at rests at
	// least window/samplesPerWindow apart: the first is the latest taken
	// at or before now-window once the scan is that old.
	samples []countSample
}

// countSample is the ledger's acknowledged count at one time.
type countSample struct {
	at    time.Time
	count uint64
}

// samplesPerWindow bounds the samples a pacer keeps (about 20).
const samplesPerWindow = 20

func newPacer(s *Service) *pacer {
	p := &pacer{stats: s.store.Stats, now: time.Now, window: busyWindow, sleep: s.sleep}
	if s.busyWindow > 0 {
		p.window = s.busyWindow
	}
	if s.clock != nil {
		p.now = s.clock
	}
	if p.sleep == nil {
		p.sleep = func(r *http.Request, _, d time.Duration) bool { return rest(r, d) }
	}
	p.start()
	return p
}

// start takes the scan's first sample.
func (p *pacer) start() {
	p.samples = append(p.samples[:0], countSample{p.now(), p.stats().Records})
}

// pace returns the pace for the rest after a chunk.
func (p *pacer) pace() int {
	st, now := p.stats(), p.now()
	if last := p.samples[len(p.samples)-1]; now.Sub(last.at) >= max(p.window/samplesPerWindow, 1) {
		p.samples = append(p.samples, countSample{now, st.Records})
	}
	cutoff, drop := now.Add(-p.window), 0
	for drop+1 < len(p.samples) && !p.samples[drop+1].at.After(cutoff) {
		drop++
	}
	if drop > 0 {
		p.samples = append(p.samples[:0], p.samples[drop:]...)
	}
	oldest := p.samples[0]
	elapsed := now.Sub(oldest.at)
	measured := elapsed >= p.window && elapsed <= p.window+p.window/4
	if backlogged(st) || !measured || busy(st.Records-oldest.count, elapsed) {
		return busyPace
	}
	return idlePace
}

// rest pauses the scan for its chunk's work times the pace; false when
// the request has gone.
func (p *pacer) rest(r *http.Request, work time.Duration) bool {
	return p.sleep(r, work, max(work, 0)*time.Duration(p.pace()))
}

// busy reports whether n activations acknowledged over elapsed are at
// least busyRate.
func busy(n uint64, elapsed time.Duration) bool {
	return n > 0 && float64(n) >= busyRate*elapsed.Seconds()
}

// backlogged reports a ledger whose store lags half its limit behind the
// log: the host is busy even if, with the log writer waiting for the
// applier at the limit, nothing is being acknowledged.
func backlogged(st ledger.Stats) bool {
	return st.PendingLimit > 0 && st.Pending >= st.PendingLimit/2
}

// hresultName is the listing's name of a result: the symbolic name, or the
// hex code for one without a name.
func hresultName(code uint32) string {
	if n := kms.HRESULT(code).Name(); n != "" {
		return n
	}
	return fmt.Sprintf("0x%08X", code)
}

// sourceAddr returns the address part of a stored source ("ip:port").
func sourceAddr(src string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(src); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(src); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// clientState classifies an entry.
func clientState(e *ledger.ClientEntry) string {
	switch {
	case e.Counted:
		return statusapi.StateCounted
	case e.LastResult == uint32(kms.OK):
		return statusapi.StateExpired
	default:
		return statusapi.StateRefused
	}
}

// newClientRow describes e with the catalog's names; conflict looks up the
// host's machine-ID conflicts (nil: none).
func newClientRow(e *ledger.ClientEntry, cat *catalog.Catalog, conflict func(guid.GUID) (host.Conflict, bool)) statusapi.ClientRow {
	r := statusapi.ClientRow{
		CMID: e.CMID.String(), Workstation: printable.Escape(e.Workstation), Source: printable.Escape(e.Source),
		ApplicationID: e.App.String(), CountedID: e.CountedID.String(), SKU: e.SKU.String(),
		FirstRequest: e.FirstSeen.UTC(), LastRequest: e.LastSeen.UTC(), Requests: e.Requests,
		LastResult: hresultName(e.LastResult), LastResultHex: fmt.Sprintf("0x%08X", e.LastResult),
		LicenseState: host.LicenseStateName(e.LicenseStatus), Protocol: int(e.Protocol),
		State: clientState(e),
	}
	if a, ok := sourceAddr(e.Source); ok {
		r.Address = printable.Escape(a.String()) // an IPv6 zone is any text
	}
	if a, ok := cat.Application(e.App); ok {
		r.Application = printable.Escape(a.Name)
	}
	if c, ok := cat.CountedID(e.CountedID); ok {
		r.Product = printable.Escape(c.Name)
	}
	if ed, ok := cat.EditionBySKU(e.SKU); ok {
		r.Edition = printable.Escape(ed.Name)
	}
	if e.Counted {
		r.LastCounted, r.CountedUntil = e.LastCounted.UTC(), e.CountedUntil.UTC()
	}
	if conflict != nil {
		if c, ok := conflict(e.CMID); ok {
			r.CMIDConflict = "addresses"
			if c.Names() {
				r.CMIDConflict = "workstations"
			}
			r.SeenAs, r.SeenFrom = escapeAll(c.Workstations), escapeAll(c.Addresses)
		}
	}
	return r
}

// escapeAll returns a copy of l with each element printable.Escape'd (l
// is the host's, shared with other requests).
func escapeAll(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = printable.Escape(s)
	}
	return out
}

// Filter is the filters of GET /clients and `kms-responder clients`.
type Filter struct {
	product string // counted ID name, edition name (substring) or GUID
	app     string // application name (substring) or GUID
	since   time.Time
	prefix  netip.Prefix
	state   string
}

// Bounds of a since time: the times int64 nanoseconds since 1970 can
// hold (1677-09-21 to 2262-04-11), as the ledger keys records. A since
// outside is clamped: before every possible record lists everyone, after
// the last possible one lists nobody.
var (
	minSince = time.Unix(0, math.MinInt64).UTC()
	maxSince = time.Unix(0, math.MaxInt64).UTC()
)

// parseSince reads --since: a duration back from now ("7d", "36h") or a
// date or time ("2026-11-01", RFC 3339), clamped to minSince-maxSince.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := parseSinceText(s, now)
	switch {
	case err != nil:
		return t, err
	case t.Before(minSince):
		return minSince, nil
	case t.After(maxSince):
		return maxSince, nil
	}
	return t, nil
}

func parseSinceText(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= 36500 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since %q is neither a duration back from now (7d, 36h) nor a date (2006-01-02) or RFC 3339 time", s)
}

// ParseFilter reads the filters from a query string (product, app,
// since, address, state); now anchors a relative since.
func ParseFilter(q map[string][]string, now time.Time) (Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := Filter{product: strings.ToLower(get("product")), app: strings.ToLower(get("app")), state: get("state")}
	var err error
	if f.since, err = parseSince(get("since"), now); err != nil {
		return f, err
	}
	if a := get("address"); a != "" {
		if f.prefix, err = dnsname.ParsePrefix(a); err != nil {
			return f, fmt.Errorf("address: %v", err)
		}
	}
	switch f.state {
	case "", statusapi.StateCounted, statusapi.StateExpired, statusapi.StateRefused:
	default:
		return f, fmt.Errorf("state %q is not counted, expired or refused", f.state)
	}
	if len(f.product) > 256 || len(f.app) > 256 {
		return f, fmt.Errorf("product or app filter longer than 256 bytes")
	}
	return f, nil
}

// matchName reports whether filter (lower case) is a GUID equal to id or a
// substring of one of names.
func matchName(filter string, id guid.GUID, names ...string) bool {
	if g, err := guid.Parse(filter); err == nil {
		return g == id
	}
	for _, n := range names {
		if n != "" && strings.Contains(strings.ToLower(n), filter) {
			return true
		}
	}
	return false
}

// keep returns the ledger-side predicate of f.
func (f Filter) keep(cat *catalog.Catalog) func(*ledger.ClientEntry) bool {
	return func(e *ledger.ClientEntry) bool {
		if f.state != "" && clientState(e) != f.state {
			return false
		}
		if f.prefix.IsValid() {
			a, ok := sourceAddr(e.Source)
			if !ok || !f.prefix.Contains(a) {
				return false
			}
		}
		if f.app != "" {
			name := ""
			if a, ok := cat.Application(e.App); ok {
				name = a.Name
			}
			if !matchName(f.app, e.App, name) {
				return false
			}
		}
		if f.product != "" {
			var names []string
			if c, ok := cat.CountedID(e.CountedID); ok {
				names = append(names, c.Name)
			}
			if ed, ok := cat.EditionBySKU(e.SKU); ok {
				names = append(names, ed.Name)
			}
			if !matchName(f.product, e.CountedID, names...) && !matchName(f.product, e.SKU) {
				return false
			}
		}
		return true
	}
}

// Service serves GET /clients and GET /clients/summary.
type Service struct {
	store    *ledger.Ledger // nil with --ledger=false
	cat      *catalog.Catalog
	host     *host.Host
	renewal  time.Duration // the renewal interval clients are told
	retry    time.Duration // the activation interval (retry after a failure)
	now      func() time.Time
	exports  chan struct{} // semaphore of maxClientsExports
	pageSize int           // rows per ledger chunk (tests shrink it)
	// sleep, when set (tests only), rests instead of rest; work is the
	// chunk's work and d the rest chosen for it.
	sleep func(r *http.Request, work, d time.Duration) bool
	// busyWindow and clock, when set (tests only), replace busyWindow
	// and time.Now for the pace's samples.
	busyWindow time.Duration
	clock      func() time.Time
}

// New returns the inventory of store (nil with --ledger=false: the
// handlers answer 503), named with cat, with h's machine-ID conflicts;
// renewal and retry are the intervals clients are told.
func New(store *ledger.Ledger, cat *catalog.Catalog, h *host.Host, renewal, retry time.Duration) *Service {
	return &Service{store: store, cat: cat, host: h, renewal: renewal, retry: retry, now: time.Now,
		exports: make(chan struct{}, maxClientsExports), pageSize: clientsChunk}
}

// encodeCursor and DecodeCursor make the ledger's resume key opaque
// (after= of GET /clients).
func encodeCursor(k []byte) string { return base64.RawURLEncoding.EncodeToString(k) }

func DecodeCursor(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != ledger.CursorLen {
		return nil, fmt.Errorf("after: %q is not a cursor returned by this endpoint", s)
	}
	return b, nil
}

// begin takes an export slot and checks the request; it writes the error
// response and returns false when the request cannot proceed.
func (s *Service) begin(w http.ResponseWriter, r *http.Request) (Filter, bool) {
	if s.store == nil {
		http.Error(w, "no client inventory: serve runs with --ledger=false", http.StatusServiceUnavailable)
		return Filter{}, false
	}
	f, err := ParseFilter(r.URL.Query(), s.now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return f, false
	}
	select {
	case s.exports <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("%d client listings are already running; try again later", maxClientsExports), http.StatusServiceUnavailable)
		return f, false
	}
	return f, true
}

// List serves GET /clients: rows newest first, as JSON
// ({"clients":[...],"next":"CURSOR"}) or CSV (format=csv; the cursor in
// the Kms-Next-Cursor trailer), streamed one ledger chunk at a time.
// limit=N ends the response after N rows with a cursor for after=.
func (s *Service) List(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := DecodeCursor(q.Get("after"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			http.Error(w, fmt.Sprintf("limit %q is not a positive number", v), http.StatusBadRequest)
			return
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		http.Error(w, fmt.Sprintf("format %q is neither json nor csv", format), http.StatusBadRequest)
		return
	}
	f, ok := s.begin(w, r)
	if !ok {
		return
	}
	defer func() { <-s.exports }()
	rc := http.NewResponseController(w)
	var out clientWriter
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Trailer", "Kms-Next-Cursor")
		out = &csvClientWriter{rowBuffer: rowBuffer{w: w}, h: w.Header(), cat: s.cat, conflict: s.host.Conflict}
	} else {
		w.Header().Set("Content-Type", "application/json")
		out = &jsonClientWriter{rowBuffer: rowBuffer{w: w}, cat: s.cat, conflict: s.host.Conflict}
	}
	_ = rc.SetWriteDeadline(time.Now().Add(clientsChunkWrite))
	if err := out.begin(); err != nil {
		return
	}
	keep := f.keep(s.cat)
	pace := newPacer(s)
	written := 0
	var next []byte
	for {
		began, waitedBefore := time.Now(), out.waited()
		n := s.pageSize
		if limit > 0 {
			n = min(n, limit-written)
		}
		page, err := s.store.ClientsPage(ledger.ClientsQuery{After: after, Since: f.since, Limit: n, Scan: max(n, clientsChunkScan), Keep: keep})
		if err != nil {
			out.fail(err)
			return
		}
		// Each chunk gets its own write deadline: a full export takes
		// longer than the admin server's WriteTimeout, a stalled reader
		// is still cut off after clientsChunkWrite.
		_ = rc.SetWriteDeadline(time.Now().Add(clientsChunkWrite))
		for i := range page.Entries {
			if err := out.row(&page.Entries[i]); err != nil {
				return // the client went away
			}
		}
		written += len(page.Entries)
		if err := out.flush(); err != nil {
			return
		}
		flushed := time.Now()
		if err := rc.Flush(); err != nil {
			return
		}
		flushWait := time.Since(flushed)
		after = page.Next
		if after == nil {
			break
		}
		if limit > 0 && written >= limit {
			next = after
			break
		}
		// The rest is in proportion to the chunk's own work: the time
		// its writes waited for a slow reader is left out, so a slow
		// reader holds its export slot no longer than it takes to read.
		work := time.Since(began) - (out.waited() - waitedBefore) - flushWait
		if !pace.rest(r, work) {
			return
		}
	}
	_ = out.end(next)
}

// clientWriter streams rows in one format.
type clientWriter interface {
	begin() error
	row(*ledger.ClientEntry) error
	flush() error          // writes what row buffered
	waited() time.Duration // time its writes have spent waiting so far
	end(next []byte) error
	fail(error)
}

// rowBuffer gathers the rows of a listing in one reused buffer and writes
// them in listingWriteSize pieces: one large chunk of the response instead
// of many small ones.
type rowBuffer struct {
	w   io.Writer
	buf []byte
	// writing is the time spent in w.Write: waiting for the reader, not
	// serve's work, so a listing's rest leaves it out.
	writing time.Duration
}

// added writes the buffer once it holds listingWriteSize bytes or more.
func (b *rowBuffer) added() error {
	if len(b.buf) >= listingWriteSize {
		return b.flush()
	}
	return nil
}

func (b *rowBuffer) waited() time.Duration { return b.writing }

func (b *rowBuffer) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	start := time.Now()
	_, err := b.w.Write(b.buf)
	b.writing += time.Since(start)
	b.buf = b.buf[:0]
	return err
}

// jsonClientWriter appends each row's object to its rowBuffer
// (appendJSONRow).
type jsonClientWriter struct {
	rowBuffer
	cat      *catalog.Catalog
	conflict func(guid.GUID) (host.Conflict, bool)
	n        int
}

func (j *jsonClientWriter) begin() error {
	_, err := io.WriteString(j.w, "{\"clients\": [\n")
	return err
}

func (j *jsonClientWriter) row(e *ledger.ClientEntry) error {
	if j.n > 0 {
		j.buf = append(j.buf, ',')
	}
	j.n++
	j.buf = appendJSONRow(j.buf, e, j.cat, j.conflict)
	return j.added()
}

func (j *jsonClientWriter) end(next []byte) error {
	if err := j.flush(); err != nil {
		return err
	}
	tail := "],\n\"next\": \"\"}\n"
	if next != nil {
		tail = fmt.Sprintf("],\n\"next\": %q}\n", encodeCursor(next))
	}
	_, err := j.w.Write([]byte(tail))
	return err
}

// fail ends the document with an error member: the status line has gone.
func (j *jsonClientWriter) fail(err error) {
	if j.flush() != nil {
		return
	}
	b, _ := json.Marshal(err.Error())
	fmt.Fprintf(j.w, "],\n\"error\": %s}\n", b)
}

// listingWriteSize is how many bytes of rows a rowBuffer gathers before
// writing them.
const listingWriteSize = 64 << 10

// csvClientWriter appends each row's record to its rowBuffer
// (appendCSVRow).
type csvClientWriter struct {
	rowBuffer
	h        http.Header
	cat      *catalog.Catalog
	conflict func(guid.GUID) (host.Conflict, bool)
}

func (c *csvClientWriter) begin() error {
	cw := csv.NewWriter(c.w)
	cw.Write(statusapi.ClientCSVHeader)
	cw.Flush()
	return cw.Error()
}

func (c *csvClientWriter) row(e *ledger.ClientEntry) error {
	c.buf = appendCSVRow(c.buf, e, c.cat, c.conflict)
	return c.added()
}

func (c *csvClientWriter) end(next []byte) error {
	if err := c.flush(); err != nil {
		return err
	}
	if next != nil {
		c.h.Set("Kms-Next-Cursor", encodeCursor(next))
	}
	return nil
}

// fail adds a last line saying the listing is incomplete.
func (c *csvClientWriter) fail(err error) {
	if c.flush() != nil {
		return
	}
	cw := csv.NewWriter(c.w)
	cw.Write([]string{"error: listing incomplete: " + err.Error()})
	cw.Flush()
}

// rest pauses a listing or summary between chunks for d (see pacer);
// false when the request has gone.
func rest(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}
