package vlmcs

import (
	"context"

	"github.com/miekg/dns"
)

// serveHost answers a question for name n (A, AAAA or ANY; any type for a name the
// configuration owns), a member's target whose addresses
// the pool holds. A name the configuration owns (a `static` target, an `approve NAME=ADDRESS`
// name) is answered from the pool. A name registered by UPDATE is answered from the pool only
// when the next plugin does not have it: vlmcs never answers, with aa set, for a name another
// plugin answers (a key granted `*.zone` registering `fileserver.zone` must not replace the
// directory's record for every client).
func (v *Vlmcs) serveHost(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, a *answer, n string) (int, error) {
	if v.cfg.isStatic(n) || v.cfg.approve.Bound(n) != nil {
		return v.answerHost(w, r, a)
	}
	hw := &hostFallback{ResponseWriter: w}
	rc, err := v.passOn(ctx, hw, r)
	if hw.wrote {
		return rc, err
	}
	return v.answerHost(w, r, a)
}

// hostFallback passes the next plugin's answer on when it says the name exists (NOERROR, with
// records or without: NODATA), and holds back any other (NXDOMAIN, SERVFAIL, REFUSED), for
// serveHost to answer from the pool instead.
type hostFallback struct {
	dns.ResponseWriter
	wrote bool
}

// WriteMsg implements dns.ResponseWriter.
func (h *hostFallback) WriteMsg(m *dns.Msg) error {
	if m.Rcode != dns.RcodeSuccess || h.wrote {
		return nil
	}
	h.wrote = true
	return h.ResponseWriter.WriteMsg(m)
}

// Write implements dns.ResponseWriter for plugins that write packed messages.
func (h *hostFallback) Write(b []byte) (int, error) {
	if len(b) < 4 || b[3]&0x0f != dns.RcodeSuccess || h.wrote {
		return len(b), nil
	}
	h.wrote = true
	return h.ResponseWriter.Write(b)
}
