package discover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/kmsdns/kmsdns/responder/kms"
)

// ErrNoAddress is an Attempt's error for a target with no address.
var ErrNoAddress = errors.New("target has no address (no glue and none resolved)")

// ErrAttemptCap is a TryError's Stopped cause when Limits.MaxAttempts
// addresses were tried without success.
var ErrAttemptCap = errors.New("attempt cap reached")

// Limits bound one fail-over loop. The time budget is the ctx's deadline.
type Limits struct {
	// MaxAttempts caps the addresses tried; 0 means no cap.
	MaxAttempts int
}

// Attempt records one try of one host address, in the order made.
type Attempt struct {
	Target Target
	// Addr is the address tried; zero when the target had none.
	Addr netip.AddrPort
	// Err is why the host was skipped; nil for the attempt that served.
	Err error
}

// String says which host was tried and what happened.
func (a Attempt) String() string {
	where := fmt.Sprintf("%s:%d", strings.TrimSuffix(a.Target.Name, "."), a.Target.Port)
	if a.Addr.IsValid() {
		where += " (" + a.Addr.String() + ")"
	}
	if a.Err == nil {
		return where + ": served"
	}
	return where + ": " + a.Err.Error()
}

// TryError is Try's failure: no host served. Code is
// kms.ErrNoKMSContacted (0xC004F074) when no host could be reached, or
// kms.ErrKMSIDMismatch (0xC004F042) when every host that answered cannot
// serve the product. errors.As(err, &h) with h a kms.HRESULT yields Code.
type TryError struct {
	Code     kms.HRESULT
	Attempts []Attempt
	// Stopped is why the loop ended before trying every address: the
	// ctx's cause (cancelled, or its deadline, the time budget) or
	// ErrAttemptCap; nil when every address was tried.
	Stopped error
}

// Error gives the code and every host's reason.
func (e *TryError) Error() string {
	var b strings.Builder
	if e.Code == kms.ErrNoKMSContacted {
		fmt.Fprintf(&b, "no KMS host could be contacted: %v", e.Code)
	} else {
		fmt.Fprintf(&b, "no KMS host could serve the product: %v", e.Code)
	}
	if len(e.Attempts) == 0 {
		b.WriteString(" (no hosts)")
	}
	for i, a := range e.Attempts {
		sep := "; "
		if i == 0 {
			sep = " ("
		}
		b.WriteString(sep + a.String())
	}
	if len(e.Attempts) > 0 {
		b.WriteString(")")
	}
	if e.Stopped != nil {
		fmt.Fprintf(&b, "; stopped before trying every host: %v", e.Stopped)
	}
	return b.String()
}

// Unwrap returns the HRESULT and, when the loop stopped early, why.
func (e *TryError) Unwrap() []error {
	if e.Stopped != nil {
		return []error{e.Code, e.Stopped}
	}
	return []error{e.Code}
}

// Try calls attempt for each address of each target, in the given order
// (see Order), until one serves, and returns its result and the log of
// every attempt (the last one is the success). It moves on when attempt
// fails without an HRESULT (cannot connect, RPC failure, a reply that does
// not verify) and, skipping the host's other addresses, when the host
// answers 0xC004F042 (its key cannot serve this product). Any other
// HRESULT is the host's verdict for this client and ends the loop with
// that error. When no host serves, the error is a *TryError; its Stopped
// says why when the loop ended early: ctx ended (its deadline is the
// whole loop's time budget) or lim.MaxAttempts addresses were tried.
func Try[R any](ctx context.Context, targets []Target, lim Limits, attempt func(ctx context.Context, t Target, addr netip.AddrPort) (R, error)) (R, []Attempt, error) {
	var (
		zero     R
		log      []Attempt
		mismatch bool
		tried    int
	)
	fail := func(stopped error) (R, []Attempt, error) {
		code := kms.ErrNoKMSContacted
		if mismatch {
			code = kms.ErrKMSIDMismatch
		}
		return zero, log, &TryError{Code: code, Attempts: log, Stopped: stopped}
	}
	for _, t := range targets {
		if len(t.Addrs) == 0 {
			log = append(log, Attempt{Target: t, Err: ErrNoAddress})
			continue
		}
		for _, a := range t.Addrs {
			if ctx.Err() != nil {
				return fail(context.Cause(ctx))
			}
			if lim.MaxAttempts > 0 && tried == lim.MaxAttempts {
				return fail(fmt.Errorf("%w: %d addresses tried", ErrAttemptCap, tried))
			}
			tried++
			addr := netip.AddrPortFrom(a, t.Port)
			res, err := attempt(ctx, t, addr)
			log = append(log, Attempt{Target: t, Addr: addr, Err: err})
			if err == nil {
				return res, log, nil
			}
			if ctx.Err() != nil {
				return fail(context.Cause(ctx))
			}
			var h kms.HRESULT
			if errors.As(err, &h) {
				if h != kms.ErrKMSIDMismatch {
					return zero, log, err
				}
				mismatch = true
				break // the host answered: its other addresses say the same
			}
		}
	}
	return fail(nil)
}
