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
	return b.String()
}

// Unwrap returns the HRESULT.
func (e *TryError) Unwrap() error { return e.Code }

// Try calls attempt for each address of each target, in the given order
// (see Order), until one serves, and returns its result and the log of
// every attempt (the last one is the success). It moves on when attempt
// fails without an HRESULT (cannot connect, RPC failure, a reply that does
// not verify) and, skipping the host's other addresses, when the host
// answers 0xC004F042 (its key cannot serve this product). Any other
// HRESULT is the host's verdict for this client and ends the loop with
// that error, as does ctx ending. When no host serves, the error is a
// *TryError.
func Try[R any](ctx context.Context, targets []Target, attempt func(ctx context.Context, t Target, addr netip.AddrPort) (R, error)) (R, []Attempt, error) {
	var (
		zero     R
		log      []Attempt
		mismatch bool
	)
	for _, t := range targets {
		if len(t.Addrs) == 0 {
			log = append(log, Attempt{Target: t, Err: ErrNoAddress})
			continue
		}
		for _, a := range t.Addrs {
			if err := ctx.Err(); err != nil {
				return zero, log, err
			}
			addr := netip.AddrPortFrom(a, t.Port)
			res, err := attempt(ctx, t, addr)
			log = append(log, Attempt{Target: t, Addr: addr, Err: err})
			if err == nil {
				return res, log, nil
			}
			if ctx.Err() != nil {
				return zero, log, err
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
	code := kms.ErrNoKMSContacted
	if mismatch {
		code = kms.ErrKMSIDMismatch
	}
	return zero, log, &TryError{Code: code, Attempts: log}
}
