// Package kmsclient activates a product against a KMS host the way a Windows
// client does: it builds the request, sends it over a DCE/RPC association and
// verifies the response at least as strictly as the strictest public client.
package kmsclient

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/kms"
)

// Defaults a Windows client puts in a first activation request.
const (
	// LicenseStatusOOBGrace is "out-of-box grace", what a fresh volume
	// client reports.
	LicenseStatusOOBGrace = 2
	// DefaultBindingExpiration is the minutes left in the grace period.
	DefaultBindingExpiration = 43200
)

// Product names what to activate: the three IDs a client sends.
type Product struct {
	Name      string
	AppID     guid.GUID
	KMSID     guid.GUID
	SKUID     guid.GUID
	Threshold uint32 // N_Policy: the count this client needs
	Protocol  int    // the product's default protocol version
}

// NewRequest fills a request as a Windows client would for p, with the given
// client machine ID, workstation name and clock reading.
func NewRequest(p Product, protocol int, cmid guid.GUID, workstation string, now time.Time) *kms.Request {
	return &kms.Request{
		MajorVersion:        uint16(protocol),
		MinorVersion:        0,
		VMInfo:              0,
		LicenseStatus:       LicenseStatusOOBGrace,
		BindingExpiration:   DefaultBindingExpiration,
		ApplicationID:       p.AppID,
		SKUID:               p.SKUID,
		KMSCountedID:        p.KMSID,
		ClientMachineID:     cmid,
		RequiredClientCount: p.Threshold,
		ClientTime:          kms.TimeToFileTime(now),
		WorkstationName:     workstation,
	}
}

// RandomCMID returns a fresh client machine ID (a version-4 GUID).
func RandomCMID() guid.GUID {
	var c [16]byte
	if _, err := io.ReadFull(rand.Reader, c[:]); err != nil {
		panic("kmsclient: no randomness: " + err.Error())
	}
	c[6] = c[6]&0x0f | 0x40
	c[8] = c[8]&0x3f | 0x80
	return guid.FromCanonical(c)
}

// Outcome is what one activation attempt produced.
type Outcome struct {
	// Response is the verified response; nil when the host returned an
	// error HRESULT.
	Response *kms.Response
	// Status is the HRESULT the host returned (0 on success).
	Status kms.HRESULT
	// Verdict is what the Windows client concludes: 0 (activated),
	// ErrNotEnoughCount when the count is below the request's N_Policy, or
	// the host's error.
	Verdict kms.HRESULT
	// Latency is the time from sending the request to a verified answer.
	Latency time.Duration
}

// Activated reports whether a Windows client would now be activated.
func (o *Outcome) Activated() bool { return o.Verdict == kms.OK }

// Activate sends req over c and verifies the answer. A host error HRESULT is
// reported in the Outcome and also returned as the error (a kms.HRESULT), so
// callers can fail over on kms.ErrKMSIDMismatch. Transport and verification
// failures return a descriptive error and no Outcome.
func Activate(ctx context.Context, c *dcerpc.Client, req *kms.Request, rnd io.Reader) (*Outcome, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	wire, pending, err := kms.BuildRequest(req, rnd)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	start := time.Now()
	payload, status, err := c.Call(ctx, wire)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Status: kms.HRESULT(status)}
	if status != 0 {
		out.Verdict = out.Status
		out.Latency = time.Since(start)
		return out, out.Status
	}
	resp, err := pending.ParseResponse(payload)
	if err != nil {
		return nil, fmt.Errorf("verifying response: %w", err)
	}
	out.Latency = time.Since(start)
	// The ePID is the host's text: escaped here, before any tool prints,
	// stores or parses it (a genuine ePID is printable and unchanged).
	resp.EPID = printable.Escape(resp.EPID)
	out.Response = resp
	if resp.CurrentCount < req.RequiredClientCount {
		out.Verdict = kms.ErrNotEnoughCount
	}
	return out, nil
}

// IsHostRefusal reports whether err is an HRESULT the host returned, as
// opposed to a transport or verification failure.
func IsHostRefusal(err error) (kms.HRESULT, bool) {
	var h kms.HRESULT
	if errors.As(err, &h) {
		return h, true
	}
	return 0, false
}
