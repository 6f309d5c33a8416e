// Package host decides KMS activation requests the way a correctly
// configured Microsoft KMS host does: it activates only the products its
// host key groups cover, refuses skewed clocks and oversized minimum counts,
// counts distinct client machines per application over 30 days (capped at
// twice the highest threshold seen), and answers with its ePID, hardware ID
// and intervals.
//
// Every decision is written to the ledger before it is answered; when the
// ledger cannot write, Activate returns an error and the caller must close
// the connection without answering, so the client tries another host.
package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/catalog"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// Host is a KMS host's activation policy and client count. It is safe for
// concurrent use.
type Host struct {
	cfg   *settings
	cat   *catalog.Catalog
	store *ledger.Ledger
	log   *slog.Logger

	epids     map[string]string // by group name
	groupEPID []string          // by index in cfg.groups, as decide reports it
	hwid      [8]byte

	// countOrder serializes counting an activation and queueing it for the
	// ledger, so that the log holds count operations in the order memory
	// performed them. It is separate from mu because queueing can block
	// (a full log queue behind a slow disk) and status, metrics and
	// refusals must not wait for that.
	countOrder sync.Mutex

	mu    sync.Mutex
	apps  map[guid.GUID]*ledger.CountSet
	stats counters

	conflicts *conflictTracker // machine IDs seen from several names or addresses
}

// New builds a host from cfg. store holds the count and identity across
// restarts; nil runs without persistence (counts start at zero on every
// start and the ePIDs change), which is meant for tests and benchmarks.
// logger receives one line per request; nil discards them.
func New(cfg Config, cat *catalog.Catalog, store *ledger.Ledger, logger *slog.Logger) (*Host, error) {
	if cat == nil {
		return nil, fmt.Errorf("host: no catalog")
	}
	s, err := resolve(cfg, cat)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Host{
		cfg:   s,
		cat:   cat,
		store: store,
		log:   logger,
		epids: map[string]string{},
		apps:  map[guid.GUID]*ledger.CountSet{},
		stats: newCounters(len(s.groups)),

		conflicts: newConflictTracker(),
	}
	if err := h.loadIdentity(); err != nil {
		return nil, err
	}
	if err := h.loadCounts(); err != nil {
		return nil, err
	}
	return h, nil
}

// loadIdentity takes each configured group's ePID from the configuration,
// else from the ledger, else generates it; likewise the HwID. Generated
// values are stored before New returns.
func (h *Host) loadIdentity() error {
	id := ledger.Identity{EPIDs: map[string]string{}}
	if h.store != nil {
		var err error
		if id, err = h.store.Identity(); err != nil {
			return fmt.Errorf("host: read identity from the ledger: %w", err)
		}
	}
	dirty := false
	now := h.cfg.clock()
	for _, g := range h.cfg.groups {
		if e, ok := h.cfg.epidOverride[g.Name]; ok {
			h.epids[g.Name] = e.String()
			continue
		}
		if stored, ok := id.EPIDs[g.Name]; ok {
			if _, err := kms.ParseEPID(stored); err == nil {
				h.epids[g.Name] = stored
				continue
			}
			h.log.Warn("host: stored ePID is malformed; generating a new one", "group", g.Name, "epid", stored)
		}
		e, err := generateEPID(epidMaterial{
			platform: h.cfg.platform, group: g.EPIDGroupID,
			keyIDMin: g.KeyIDMin, keyIDMax: g.KeyIDMax,
			lcid: h.cfg.lcid, build: h.cfg.build,
		}, now)
		if err != nil {
			return fmt.Errorf("host: generate ePID for %s: %w", g.Name, err)
		}
		h.epids[g.Name] = e.String()
		id.EPIDs[g.Name] = e.String()
		dirty = true
	}
	for _, g := range h.cfg.groups {
		h.groupEPID = append(h.groupEPID, h.epids[g.Name])
	}
	switch {
	case h.cfg.hasHwID:
		h.hwid = h.cfg.hwid
	case id.HasHwID:
		h.hwid = id.HwID
	default:
		if err := randomHwID(&h.hwid); err != nil {
			return err
		}
		id.HwID, id.HasHwID = h.hwid, true
		dirty = true
	}
	if dirty && h.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.store.SetIdentity(ctx, id); err != nil {
			return fmt.Errorf("host: store identity in the ledger: %w", err)
		}
	}
	return nil
}

// loadCounts rebuilds the in-memory count of every application.
func (h *Host) loadCounts() error {
	if h.store == nil {
		return nil
	}
	counts, err := h.store.Counts()
	if err != nil {
		return fmt.Errorf("host: read counts from the ledger: %w", err)
	}
	cutoff := h.cfg.clock().Add(-CountWindow)
	for _, c := range counts {
		ac := ledger.NewCountSet()
		ac.RaiseCap(c.Cap)
		ac.Load(c.Clients, cutoff)
		h.apps[c.App] = ac
	}
	return nil
}

// Input is what the host needs from a decoded KMS request.
type Input struct {
	// App is the application ID, CountedID the KMS counted ID, SKU the
	// edition's activation ID (logged, never decisive) and CMID the client
	// machine ID.
	App, CountedID, SKU, CMID guid.GUID
	// PreviousCMID is the client's former CMID, usually zero.
	PreviousCMID guid.GUID
	// NPolicy is the minimum count the client needs.
	NPolicy uint32
	// ClientTime is the client's clock.
	ClientTime time.Time
	// Workstation is the client's name.
	Workstation string
	// LicenseStatus is the client's licence state (see LicenseStateName)
	// and BindingExpiration the minutes left in it.
	LicenseStatus, BindingExpiration uint32
	// VM reports whether the client says it is a virtual machine.
	VM bool
	// ProtocolMajor and ProtocolMinor are the request's KMS protocol
	// version.
	ProtocolMajor, ProtocolMinor uint16
	// Peer is the client's network address.
	Peer netip.AddrPort
}

// Result is the host's answer.
type Result struct {
	// HRESULT is 0 to answer with a response, else the error to return:
	// ErrInvalidData, ErrInvalidTimestamp or ErrKMSIDMismatch.
	HRESULT kms.HRESULT
	// EPID and HwID identify the host to the client.
	EPID string
	HwID [8]byte
	// CurrentCount is the application's count including the requester.
	CurrentCount int
	// ActivationInterval and RenewalInterval are in minutes.
	ActivationInterval, RenewalInterval int
	// Group is the host key group that served the request ("" if refused).
	Group string
	// Application is the catalog's name of the request's application
	// ("" when the catalog does not know it); set also when Activate
	// returns an error.
	Application string
	// NewClient reports that the requester entered the count.
	NewClient bool
	// Reason says why, for logs.
	Reason string
}

// Activate decides one request. It returns an error, and no result to
// send, when the decision could not be made durable (ledger failure) or ctx
// ended: the caller must then close the connection without answering. When
// the ledger failed to write it, the client's count is taken back out of
// memory, so that every count answered is the count the ledger holds (and
// a restart rebuilds); when ctx ended first, that happens once the
// ledger's answer arrives, and only if it is a failure.
func (h *Host) Activate(ctx context.Context, in Input) (Result, error) {
	start := time.Now()
	// The workstation name is the client's choice: it is escaped here, once,
	// for the ledger, the conflict tracker, logs and every listing, and cut
	// to what a ledger record holds (escapes make it longer).
	in.Workstation = printable.Truncate(printable.Escape(in.Workstation), ledger.MaxTextLen)
	now := start
	if !h.cfg.wallClock {
		now = h.cfg.clock()
	}
	res := Result{
		ActivationInterval: h.cfg.activation,
		RenewalInterval:    h.cfg.renewal,
	}
	if a, ok := h.cat.Application(in.App); ok {
		res.Application = a.Name
	}
	var cid *catalog.CountedID
	var gi int
	res.HRESULT, res.Reason, cid, gi = h.decide(in, now)
	rec := ledger.Activation{
		Time: now, CMID: in.CMID, App: in.App, CountedID: in.CountedID, SKU: in.SKU,
		Workstation: in.Workstation, Result: uint32(res.HRESULT),
		LicenseStatus: in.LicenseStatus, Protocol: uint8(min(in.ProtocolMajor, 255)),
	}
	if h.store != nil {
		rec.Source = in.Peer.String()
	}
	var pending ledger.Pending
	var enqueueErr error
	var undo ledger.AddUndo
	if res.HRESULT == kms.OK {
		res.Group = h.cfg.groups[gi].Name
		res.EPID = h.groupEPID[gi]
		res.HwID = h.hwid
		h.countOrder.Lock()
		h.mu.Lock()
		ac := h.apps[in.App]
		if ac == nil {
			ac = ledger.NewCountSet()
			h.apps[in.App] = ac
		}
		ac.RaiseCap(2 * cid.Threshold)
		ac.Expire(now.Add(-CountWindow))
		res.NewClient, undo = ac.AddWithUndo(in.CMID, now)
		res.CurrentCount = ac.Len()
		rec.Counted, rec.Cap = true, ac.Cap()
		h.mu.Unlock()
		if h.store != nil {
			// Enqueued before the next activation is counted, so the
			// ledger replays the count operations in the order memory
			// performed them and a restart rebuilds this very count
			// (see ledger.CountSet).
			pending, enqueueErr = h.store.Enqueue(ctx, rec)
			if enqueueErr != nil {
				h.revert(in.App, undo)
			}
		}
		h.countOrder.Unlock()
	} else if h.store != nil {
		// A refusal changes no count; its order in the log is free.
		pending, enqueueErr = h.store.Enqueue(ctx, rec)
	}
	if h.store != nil {
		err := enqueueErr
		if err == nil {
			err = pending.Wait(ctx)
			if err != nil && res.HRESULT == kms.OK {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					// The write may still succeed: decide when the
					// ledger answers (it answers every queued write).
					// Only the application is captured: capturing in
					// would move every request's Input to the heap.
					app := in.App
					go func() {
						if pending.Wait(context.Background()) != nil {
							h.countOrder.Lock()
							h.revert(app, undo)
							h.countOrder.Unlock()
						}
					}()
				} else {
					h.countOrder.Lock()
					h.revert(in.App, undo)
					h.countOrder.Unlock()
				}
			}
		}
		if err != nil {
			h.mu.Lock()
			h.stats.ledgerFailures++
			h.mu.Unlock()
			h.log.LogAttrs(ctx, slog.LevelError, "kms request not answered: ledger write failed",
				slog.String("cmid", in.CMID.String()), slog.String("peer", in.Peer.String()), slog.Any("err", err))
			return Result{Application: res.Application}, fmt.Errorf("host: not answering %s: %w", in.Peer, err)
		}
	}
	if res.HRESULT == kms.OK {
		if h.store != nil {
			// The count the durable log holds at this activation, not
			// the memory count: that one still includes clients counted
			// before it whose write failed until they are reverted.
			res.CurrentCount = pending.Count()
		}
		res.Reason = countedReason(res.Group, res.NewClient, res.CurrentCount, rec.Cap, in.NPolicy)
	}
	h.mu.Lock()
	h.stats.record(&in, &res, gi, now)
	h.mu.Unlock()
	h.conflicts.observe(in.CMID, in.Workstation, in.Peer.Addr())
	h.logRequest(ctx, &in, &res, cid, start)
	return res, nil
}

// countedReason says why an activation was answered: activated when count
// reaches the client's threshold need (the host answers; whether the client
// activates is the client's decision, by the count against the threshold it
// sent), else counted below it. It is built with appends into a stack
// buffer rather than fmt, as every answered request has one: only the
// resulting string is allocated.
func countedReason(group string, newClient bool, count, capacity int, need uint32) string {
	who := "known client"
	if newClient {
		who = "new client"
	}
	var buf [128]byte
	b := buf[:0]
	if count >= int(need) {
		// activated by GROUP; WHO, count N of cap C (needs M)
		b = append(b, "activated by "...)
		b = append(b, group...)
		b = append(b, "; "...)
		b = append(b, who...)
		b = append(b, ", count "...)
		b = strconv.AppendInt(b, int64(count), 10)
		b = append(b, " of cap "...)
		b = strconv.AppendInt(b, int64(capacity), 10)
		b = append(b, " (needs "...)
		b = strconv.AppendUint(b, uint64(need), 10)
		b = append(b, ')')
	} else {
		// counted, below threshold: count N of M needed, by GROUP; WHO, cap C
		b = append(b, "counted, below threshold: count "...)
		b = strconv.AppendInt(b, int64(count), 10)
		b = append(b, " of "...)
		b = strconv.AppendUint(b, uint64(need), 10)
		b = append(b, " needed, by "...)
		b = append(b, group...)
		b = append(b, "; "...)
		b = append(b, who...)
		b = append(b, ", cap "...)
		b = strconv.AppendInt(b, int64(capacity), 10)
	}
	return string(b)
}

// revert takes an activation whose write failed back out of its
// application's count. The caller holds countOrder.
func (h *Host) revert(app guid.GUID, u ledger.AddUndo) {
	h.mu.Lock()
	if ac := h.apps[app]; ac != nil {
		ac.Revert(u)
	}
	h.mu.Unlock()
}

// decide applies the policy: N_Policy, clock skew, then whether a
// configured group covers (application, counted ID). The SKU never decides.
// It returns the index in h.cfg.groups of the group that activates, or -1.
func (h *Host) decide(in Input, now time.Time) (kms.HRESULT, string, *catalog.CountedID, int) {
	if in.NPolicy > MaxNPolicy {
		return kms.ErrInvalidData, fmt.Sprintf("minimum count (N_Policy) %d exceeds %d", in.NPolicy, MaxNPolicy), nil, -1
	}
	if skew := in.ClientTime.Sub(now).Abs(); skew > h.cfg.skew || in.ClientTime.IsZero() {
		return kms.ErrInvalidTimestamp, fmt.Sprintf("client clock %s is %s from host clock %s (limit %s)",
			in.ClientTime.UTC().Format(time.RFC3339), skew.Round(time.Second), now.UTC().Format(time.RFC3339), h.cfg.skew), nil, -1
	}
	cid, ok := h.cat.CountedID(in.CountedID)
	if !ok {
		return kms.ErrKMSIDMismatch, fmt.Sprintf("unknown counted ID %s", in.CountedID), nil, -1
	}
	if cid.Refusable() {
		kind := "retail"
		switch {
		case cid.Preview:
			kind = "preview/lab"
		case cid.AzureOnly:
			kind = "Azure-only"
		}
		return kms.ErrKMSIDMismatch, fmt.Sprintf("counted ID %s (%s) is %s: no production host key activates it", cid.Name, cid.ID, kind), cid, -1
	}
	for i, g := range h.cfg.groups {
		if g.Covers(in.App, in.CountedID) {
			return kms.OK, "", cid, i
		}
	}
	if in.App != cid.AppID {
		return kms.ErrKMSIDMismatch, fmt.Sprintf("counted ID %s (%s) belongs to application %s, not %s", cid.Name, cid.ID, cid.AppID, in.App), cid, -1
	}
	return kms.ErrKMSIDMismatch, fmt.Sprintf("%s (%s) is not activated by the configured host key group(s) %s", cid.Name, cid.ID, h.groupNames()), cid, -1
}

func (h *Host) groupNames() string {
	s := ""
	for i, g := range h.cfg.groups {
		if i > 0 {
			s += ", "
		}
		s += g.Name
	}
	return s
}

// logRequest writes the request's log line: the fields of a KMS host's
// event 12290 plus the decision and the time since start. Nothing is
// formatted, and the clock is not read, when the line's level is off.
func (h *Host) logRequest(ctx context.Context, in *Input, res *Result, cid *catalog.CountedID, start time.Time) {
	level := slog.LevelInfo
	msg := "kms request answered"
	if res.HRESULT != kms.OK {
		level = slog.LevelWarn
		msg = "kms request refused"
	}
	if !h.log.Enabled(ctx, level) {
		return
	}
	product := ""
	if cid != nil {
		product = cid.Name
	}
	edition := ""
	if e, ok := h.cat.EditionBySKU(in.SKU); ok {
		edition = e.Name
	}
	h.log.LogAttrs(ctx, level, msg,
		slog.String("result", fmt.Sprintf("0x%08X", uint32(res.HRESULT))),
		slog.String("reason", res.Reason),
		slog.String("cmid", in.CMID.String()),
		slog.String("workstation", in.Workstation),
		slog.String("peer", in.Peer.String()),
		slog.String("app", in.App.String()),
		slog.String("counted_id", in.CountedID.String()),
		slog.String("product", product),
		slog.String("sku", in.SKU.String()),
		slog.String("edition", edition),
		slog.Uint64("min_count", uint64(in.NPolicy)),
		slog.Int("count", res.CurrentCount),
		slog.Time("client_time", in.ClientTime),
		slog.String("license_state", LicenseStateName(in.LicenseStatus)),
		slog.Uint64("license_minutes_left", uint64(in.BindingExpiration)),
		slog.Bool("vm", in.VM),
		slog.String("protocol", fmt.Sprintf("%d.%d", in.ProtocolMajor, in.ProtocolMinor)),
		slog.String("group", res.Group),
		slog.Duration("took", time.Since(start)),
	)
}

// randomHwID fills b from the system's random source.
func randomHwID(b *[8]byte) error {
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("host: generate HwID: %w", err)
	}
	return nil
}

// hwidString formats a hardware ID as 16 upper-case hex digits.
func hwidString(b [8]byte) string {
	return fmt.Sprintf("%X", b[:])
}
