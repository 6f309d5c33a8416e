// Package publish registers a KMS responder with DNS servers by RFC 2136
// UPDATE, signed with TSIG (RFC 8945) and carrying an EDNS0 Update Lease
// (RFC 9664), as the vlmcs CoreDNS plugin expects: the target's A/AAAA
// records and an SRV record at _vlmcs._tcp.<zone>. A Publisher refreshes
// the registration at about half the granted lease, retries with capped,
// jittered exponential backoff while a server fails, withdraws on graceful
// stop, and can withdraw and come back while the responder cannot serve.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrWithdrawn is returned by Run after Withdraw.
var ErrWithdrawn = errors.New("publish: registration was withdrawn")

// errWithdrawing is the cause Withdraw gives to the running loops.
var errWithdrawing = errors.New("publish: withdrawing")

// withdrawAttempts is how often Withdraw tries each server before giving
// up on it (the lease removes the records anyway).
const withdrawAttempts = 2

// Publisher keeps one responder registered with every configured server.
// Its methods are safe for concurrent use.
type Publisher struct {
	s       *settings
	servers []*server

	mu        sync.Mutex
	suspended bool
	reason    string
	gen       uint64 // counts Suspend/Resume transitions
	withdrawn bool
	running   bool
	cancelRun context.CancelCauseFunc
	runDone   chan struct{}
}

// server is the per-server part of a Publisher.
type server struct {
	addr string
	wake chan struct{} // capacity 1: a Suspend/Resume/Withdraw happened

	// Guarded by Publisher.mu.
	st           ServerState
	registered   bool
	withdrawnGen uint64 // gen+1 of the suspension whose withdraw succeeded
	misses       int    // re-registrations in a row after which the record was still missing
	budget       updateBudget
	held         bool          // the budget is holding UPDATEs back (logged once per episode)
	clamped      time.Duration // the last granted lease raised to the floor (logged once per value)
}

// State is a snapshot of the registration for status pages and metrics.
type State struct {
	// Suspended is true between Suspend and Resume; Reason is Suspend's.
	Suspended bool
	Reason    string
	// Withdrawn is true once Withdraw has been called.
	Withdrawn bool
	// Servers holds one entry per configured server, in configured order.
	Servers []ServerState
}

// ServerState is the registration state at one DNS server.
type ServerState struct {
	Server string
	// Registered is true while the last registration at this server was
	// accepted and its granted lease has not run out.
	Registered bool
	// Withdrawn is true when the records were deleted at this server
	// (Withdraw, or Suspend) and not registered since.
	Withdrawn bool
	// GrantedLease is the lease the server granted last (the requested
	// lease when it did not say).
	GrantedLease time.Duration
	// LeaseExpires is when the last accepted registration runs out.
	LeaseExpires time.Time
	// LastSuccess is the time of the last accepted registration.
	LastSuccess time.Time
	// LastAttempt is the time of the last exchange with this server.
	LastAttempt time.Time
	// LastError and LastErrorTime describe the last failure, if any.
	LastError     string
	LastErrorTime time.Time
	// Failures counts consecutive failed attempts (0 when the last worked).
	Failures int
	// NextAttempt is when the next refresh or retry is due; zero when none
	// is scheduled.
	NextAttempt time.Time
	// Repairs counts registrations sent because a check found the server no
	// longer listing this host (Config.CheckInterval).
	Repairs uint64
	// Refusals counts the server's refusals by RcodeError.Label.
	Refusals map[string]uint64
}

// New checks cfg and returns a Publisher; nothing is sent until Run.
func New(cfg Config) (*Publisher, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	p := &Publisher{s: s}
	for _, addr := range s.servers {
		p.servers = append(p.servers, &server{
			addr:   addr,
			wake:   make(chan struct{}, 1),
			st:     ServerState{Server: addr},
			budget: newUpdateBudget(s.floor()),
		})
	}
	return p, nil
}

// Run registers with every server and keeps the registrations fresh until
// ctx ends (returning ctx's error) or Withdraw is called (returning nil).
// Servers are handled independently: one that is down does not delay the
// others. Only one Run may be active at a time.
func (p *Publisher) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.withdrawn {
		p.mu.Unlock()
		return ErrWithdrawn
	}
	if p.running {
		p.mu.Unlock()
		return errors.New("publish: Run is already running")
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	p.running, p.cancelRun, p.runDone = true, cancel, done
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, sv := range p.servers {
		wg.Go(func() { p.loop(runCtx, sv) })
	}
	wg.Wait()
	cancel(nil)

	p.mu.Lock()
	p.running, p.cancelRun, p.runDone = false, nil, nil
	withdrawn := p.withdrawn
	p.mu.Unlock()
	close(done)
	if withdrawn {
		return nil
	}
	return ctx.Err()
}

// Suspend withdraws the registration at every server (retrying until it
// succeeds) and stops refreshing until Resume, for a responder that must
// not be sent clients, such as one that cannot record activations. reason
// is logged and reported in State. It takes effect in a running Run.
func (p *Publisher) Suspend(reason string) {
	p.mu.Lock()
	was := p.suspended
	p.suspended, p.reason = true, reason
	if !was {
		p.gen++
	}
	p.mu.Unlock()
	if !was {
		p.s.log.Warn("suspending DNS registration", "reason", reason, "zone", p.s.zone, "target", p.s.target)
		p.wakeAll()
	}
}

// Resume ends a suspension: registrations are sent again at once.
func (p *Publisher) Resume() {
	p.mu.Lock()
	was := p.suspended
	p.suspended, p.reason = false, ""
	if was {
		p.gen++
	}
	p.mu.Unlock()
	if was {
		p.s.log.Info("resuming DNS registration", "zone", p.s.zone, "target", p.s.target)
		p.wakeAll()
	}
}

// Withdraw stops refreshing for good, waits for exchanges in flight to
// end, then deletes the SRV record and the target's addresses at every
// server in parallel. It returns the servers' failures joined; a server
// that could not be reached drops the records when the lease runs out.
func (p *Publisher) Withdraw(ctx context.Context) error {
	p.mu.Lock()
	p.withdrawn = true
	cancel, done, gen := p.cancelRun, p.runDone, p.gen
	p.mu.Unlock()
	if cancel != nil {
		cancel(errWithdrawing)
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("publish: withdraw: waiting for registrations in flight: %w", ctx.Err())
		}
	}
	errs := make([]error, len(p.servers))
	var wg sync.WaitGroup
	for i, sv := range p.servers {
		wg.Go(func() {
			for n := 1; ; n++ {
				start := p.s.clock.Now()
				_, err := p.s.exchange(ctx, sv.addr, p.s.withdrawMsg)
				p.recordWithdraw(sv, start, err, 0, gen)
				var rc *RcodeError
				if err == nil || n >= withdrawAttempts || errors.As(err, &rc) || ctx.Err() != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// State returns a snapshot of the registration state.
func (p *Publisher) State() State {
	now := p.s.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := State{Suspended: p.suspended, Reason: p.reason, Withdrawn: p.withdrawn}
	for _, sv := range p.servers {
		ss := sv.st
		ss.Refusals = maps.Clone(sv.st.Refusals)
		ss.Registered = sv.registered && now.Before(ss.LeaseExpires)
		st.Servers = append(st.Servers, ss)
	}
	return st
}

func (p *Publisher) wakeAll() {
	for _, sv := range p.servers {
		select {
		case sv.wake <- struct{}{}:
		default:
		}
	}
}

// loop drives one server: act, then wait for the delay the action chose
// (a negative delay waits for a wake-up only).
func (p *Publisher) loop(ctx context.Context, sv *server) {
	var wait time.Duration
	for {
		if wait != 0 {
			var (
				t  Timer
				tc <-chan time.Time
			)
			if wait > 0 {
				t = p.s.clock.NewTimer(wait)
				tc = t.C()
			}
			select {
			case <-ctx.Done():
			case <-sv.wake:
			case <-tc:
			}
			if t != nil {
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			return
		}
		wait = p.step(ctx, sv)
		if wait > 0 && p.s.checkEvery > 0 && p.registeredAt(sv) {
			p.watch(ctx, sv, wait)
			wait = 0
		}
	}
}

// registeredAt reports whether sv holds a fresh registration that checks should watch.
func (p *Publisher) registeredAt(sv *server) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.suspended && sv.registered && sv.st.Failures == 0
}

// step does what the Publisher's mode asks of one server and returns the
// delay until the next step.
func (p *Publisher) step(ctx context.Context, sv *server) time.Duration {
	p.mu.Lock()
	suspended, gen := p.suspended, p.gen
	done := sv.withdrawnGen == gen+1
	failures := sv.st.Failures
	if suspended && done {
		sv.st.NextAttempt = time.Time{}
	}
	p.mu.Unlock()

	if suspended && done {
		return -1
	}
	if wait := p.takeUpdate(sv); wait > 0 {
		return wait
	}
	if suspended {
		start := p.s.clock.Now()
		_, err := p.s.exchange(ctx, sv.addr, p.s.withdrawMsg)
		if ctx.Err() != nil {
			return 0
		}
		if err != nil {
			d := backoff(failures+1, p.s.minBackoff, p.s.maxBackoff, rand.Float64())
			p.recordWithdraw(sv, start, err, d, gen)
			return d
		}
		p.recordWithdraw(sv, start, nil, 0, gen)
		return -1
	}

	start := p.s.clock.Now()
	rep, err := p.s.exchange(ctx, sv.addr, p.s.registerMsg)
	if ctx.Err() != nil {
		return 0
	}
	if err != nil {
		d := backoff(failures+1, p.s.minBackoff, p.s.maxBackoff, rand.Float64())
		p.recordFailure(sv, "register", start, err, d)
		return d
	}
	granted := time.Duration(rep.granted) * time.Second
	if rep.granted == 0 {
		granted = time.Duration(p.s.lease) * time.Second
	}
	d := refreshDelay(p.s.scheduleLease(granted), rand.Float64())
	p.recordRegistered(sv, start, rep, granted, d)
	return d
}

// takeUpdate draws one UPDATE to sv from its budget, or returns how long
// to wait for one (and records that wait as the next attempt).
func (p *Publisher) takeUpdate(sv *server) time.Duration {
	now := p.s.clock.Now()
	p.mu.Lock()
	wait := sv.budget.take(now)
	first := wait > 0 && !sv.held
	sv.held = wait > 0
	if wait > 0 {
		sv.st.NextAttempt = now.Add(wait)
	}
	p.mu.Unlock()
	if first {
		p.s.log.Warn("holding back DNS UPDATEs to this server: its answers asked for more than the budget allows",
			"server", sv.addr, "zone", p.s.zone, "target", p.s.target,
			"budget", fmt.Sprintf("%d at once, then one every %v", updateBurst, sv.budget.refill), "next_in", wait.Round(time.Millisecond).String())
	}
	return wait
}

func (p *Publisher) recordRegistered(sv *server, start time.Time, rep reply, granted, next time.Duration) {
	now := p.s.clock.Now()
	p.mu.Lock()
	first := !sv.registered || sv.st.Failures > 0 || !now.Before(sv.st.LeaseExpires)
	sv.registered = true
	sv.st.Withdrawn = false
	sv.st.GrantedLease = granted
	sv.st.LeaseExpires = start.Add(granted)
	sv.st.LastSuccess = now
	sv.st.LastAttempt = start
	sv.st.Failures = 0
	sv.st.NextAttempt = now.Add(next)
	floor := p.s.floor()
	clampLog := granted < floor && sv.clamped != granted
	if granted < floor {
		sv.clamped = granted
	} else {
		sv.clamped = 0
	}
	p.mu.Unlock()

	if clampLog {
		p.s.log.Warn("DNS server granted a lease below the floor: refreshing as if it granted the floor, so the records lapse there between refreshes; raise the server's minimum lease",
			"server", sv.addr, "zone", p.s.zone, "target", p.s.target, "granted_lease", granted.String(), "floor", floor.String())
	}
	level := slog.LevelDebug
	msg := "refreshed DNS registration"
	if first {
		level, msg = slog.LevelInfo, "registered in DNS"
	}
	attrs := []any{"server", sv.addr, "zone", p.s.zone, "target", p.s.target,
		"lease", granted.String(), "next_refresh", next.Round(time.Millisecond).String(), "transport", rep.net}
	if rep.granted == 0 {
		attrs = append(attrs, "note", "server sent no lease; assuming the requested one")
	} else if rep.granted != p.s.lease {
		attrs = append(attrs, "requested_lease", (time.Duration(p.s.lease) * time.Second).String())
	}
	p.s.log.Log(context.Background(), level, msg, attrs...)
}

func (p *Publisher) recordFailure(sv *server, op string, start time.Time, err error, next time.Duration) {
	now := p.s.clock.Now()
	p.mu.Lock()
	sv.st.LastAttempt = start
	sv.st.LastError = err.Error()
	sv.st.LastErrorTime = now
	sv.st.Failures++
	n := sv.st.Failures
	var rc *RcodeError
	if errors.As(err, &rc) {
		if sv.st.Refusals == nil {
			sv.st.Refusals = map[string]uint64{}
		}
		sv.st.Refusals[rc.Label()]++
		if op == "register" {
			// The server said no: whatever it still holds from the last
			// accepted registration, this host is not registered there
			// until a registration is accepted again.
			sv.registered = false
		}
	}
	if next > 0 {
		sv.st.NextAttempt = now.Add(next)
	} else {
		sv.st.NextAttempt = time.Time{}
	}
	p.mu.Unlock()

	level := slog.LevelWarn
	if rc != nil {
		// A refusal is a configuration problem, not a passing outage.
		level = slog.LevelError
	}
	attrs := []any{"server", sv.addr, "zone", p.s.zone, "target", p.s.target,
		"err", err, "failures", n}
	if next > 0 {
		attrs = append(attrs, "retry_in", next.Round(time.Millisecond).String())
	}
	p.s.log.Log(context.Background(), level, "DNS "+op+" failed", attrs...)
}

// recordWithdraw notes a withdraw's outcome; gen is the Suspend/Resume
// generation it was made in.
func (p *Publisher) recordWithdraw(sv *server, start time.Time, err error, next time.Duration, gen uint64) {
	if err != nil {
		p.recordFailure(sv, "withdraw", start, err, next)
		return
	}
	p.mu.Lock()
	sv.registered = false
	sv.withdrawnGen = gen + 1
	sv.st.Withdrawn = true
	sv.st.LeaseExpires = time.Time{}
	sv.st.LastAttempt = start
	sv.st.Failures = 0
	sv.st.NextAttempt = time.Time{}
	p.mu.Unlock()
	p.s.log.Info("withdrew DNS registration", "server", sv.addr, "zone", p.s.zone, "target", p.s.target)
}
