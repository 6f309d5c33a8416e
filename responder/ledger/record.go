package ledger

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// MaxTextLen is the longest workstation name or source address, in bytes of
// UTF-8, that a record holds. A KMS request carries at most 64 UTF-16 code
// units of workstation name, which is at most 192 bytes of UTF-8.
const MaxTextLen = 255

// Activation is one request as the host decided it: what Record writes.
type Activation struct {
	// Time is the host's clock when the request was decided.
	Time time.Time
	// CMID is the client machine ID; App the application ID; CountedID the
	// KMS counted ID; SKU the edition's activation ID.
	CMID, App, CountedID, SKU guid.GUID
	// Workstation is the client's name as it sent it.
	Workstation string
	// Source is the client's network address ("192.0.2.7:50123").
	Source string
	// Result is the HRESULT the host answered (0 for success).
	Result uint32
	// LicenseStatus is the client's licence state as it reported it.
	LicenseStatus uint32
	// Protocol is the KMS protocol major version of the request.
	Protocol uint8
	// Counted is set when the client entered its application's count
	// (a successful activation or renewal).
	Counted bool
	// Cap is the application's client cap after this request; 0 leaves
	// the stored cap unchanged. Stored caps never shrink.
	Cap int
}

// validate checks what the encoder cannot represent.
func (a *Activation) validate() error {
	switch {
	case a.Time.IsZero() || !timeOK(a.Time):
		return fmt.Errorf("ledger: activation time %v is zero or outside the storable range", a.Time)
	case len(a.Workstation) > MaxTextLen:
		return fmt.Errorf("ledger: workstation name is %d bytes, limit %d", len(a.Workstation), MaxTextLen)
	case len(a.Source) > MaxTextLen:
		return fmt.Errorf("ledger: source address is %d bytes, limit %d", len(a.Source), MaxTextLen)
	case a.Cap < 0 || a.Cap > MaxCap:
		return fmt.Errorf("ledger: cap %d outside 0..%d", a.Cap, MaxCap)
	}
	return nil
}

// Client is the audit record the ledger keeps per (CMID, application): the
// latest request's details plus first/last seen and a request count.
type Client struct {
	CMID, App, CountedID, SKU guid.GUID
	Workstation               string
	Source                    string
	FirstSeen, LastSeen       time.Time
	Requests                  uint32
	LastResult                uint32
	LicenseStatus             uint32
	Protocol                  uint8
}

// clientVersion is the format version of encoded Client values.
const clientVersion = 1

// clientFixedLen is the size of an encoded Client without its two strings.
const clientFixedLen = 1 + 4*16 + 2*8 + 3*4 + 1 + 2

// merge folds activation a into c (the stored record, or the zero Client for
// a new one). The newest request's details win; FirstSeen and LastSeen are
// the earliest and latest times seen, whatever order batches applied them in.
func (c *Client) merge(a *Activation) {
	isNew := c.Requests == 0 && c.FirstSeen.IsZero()
	if isNew || !a.Time.Before(c.LastSeen) {
		c.CMID, c.App, c.CountedID, c.SKU = a.CMID, a.App, a.CountedID, a.SKU
		c.Workstation = cleanText(a.Workstation)
		c.Source = cleanText(a.Source)
		c.LastResult, c.LicenseStatus, c.Protocol = a.Result, a.LicenseStatus, a.Protocol
		c.LastSeen = a.Time
	}
	if isNew || a.Time.Before(c.FirstSeen) {
		c.FirstSeen = a.Time
	}
	if c.Requests < ^uint32(0) {
		c.Requests++
	}
}

// cleanText makes s storable: valid UTF-8 without control characters (C0,
// DEL, C1 and the Unicode line and paragraph separators, each replaced by
// U+FFFD, so a stored name can never start a new line or steer a terminal
// wherever it is shown), of at most MaxTextLen bytes, cut at a character
// boundary.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, isControl) >= 0 {
		s = strings.Map(func(r rune) rune {
			if isControl(r) {
				return utf8.RuneError
			}
			return r
		}, s)
	}
	for len(s) > MaxTextLen {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// isControl reports whether r is a control character or a line or
// paragraph separator.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0) || r == '\u2028' || r == '\u2029'
}

// encodeClient returns the binary form of c (format version 1):
//
//	version u8 | CMID | App | CountedID | SKU (16 bytes each, wire order) |
//	FirstSeen | LastSeen (int64 ns since the epoch, big-endian) |
//	Requests | LastResult | LicenseStatus (uint32 BE) | Protocol u8 |
//	Workstation (u8 length + UTF-8) | Source (u8 length + UTF-8)
func encodeClient(c *Client) []byte {
	ws, src := cleanText(c.Workstation), cleanText(c.Source)
	w := newWriter(clientFixedLen + len(ws) + len(src))
	appendClient(w, c, ws, src)
	return w.bytes()
}

// appendClient writes the encoding of c, with its strings already cleaned
// to ws and src, to w.
func appendClient(w *writer, c *Client, ws, src string) {
	w.u8(clientVersion)
	w.guid(c.CMID)
	w.guid(c.App)
	w.guid(c.CountedID)
	w.guid(c.SKU)
	w.time(c.FirstSeen)
	w.time(c.LastSeen)
	w.u32(c.Requests)
	w.u32(c.LastResult)
	w.u32(c.LicenseStatus)
	w.u8(c.Protocol)
	w.str(ws)
	w.str(src)
}

// DecodeClient parses an encoded client record. It rejects unknown
// versions, truncation, oversized or non-UTF-8 strings, trailing bytes and
// a first-seen time after the last-seen time.
func DecodeClient(b []byte) (Client, error) {
	var c Client
	r := newReader("client record", b)
	r.version(clientVersion)
	c.CMID = r.guid("CMID")
	c.App = r.guid("application ID")
	c.CountedID = r.guid("counted ID")
	c.SKU = r.guid("SKU ID")
	c.FirstSeen = r.time("first seen")
	lastOff := r.off
	c.LastSeen = r.time("last seen")
	c.Requests = r.u32("request count")
	c.LastResult = r.u32("last result")
	c.LicenseStatus = r.u32("licence status")
	c.Protocol = r.u8("protocol")
	c.Workstation = r.str("workstation", MaxTextLen)
	c.Source = r.str("source", MaxTextLen)
	if err := r.end(); err != nil {
		return Client{}, err
	}
	if c.LastSeen.Before(c.FirstSeen) {
		return Client{}, &DecodeError{Value: "client record", Field: "last seen", Offset: lastOff,
			Reason: fmt.Sprintf("%s is before first seen %s", c.LastSeen.Format(time.RFC3339Nano), c.FirstSeen.Format(time.RFC3339Nano))}
	}
	return c, nil
}

// countVersion is the format version of count entries and caps.
const countVersion = 1

// encodeSeen returns a count entry: version u8 | lastSeen int64 BE.
func encodeSeen(t time.Time) []byte {
	w := newWriter(9)
	w.u8(countVersion)
	w.time(t)
	return w.bytes()
}

// decodeSeen parses a count entry.
func decodeSeen(b []byte) (time.Time, error) {
	r := newReader("count entry", b)
	r.version(countVersion)
	t := r.time("last seen")
	if err := r.end(); err != nil {
		return time.Time{}, err
	}
	if t.IsZero() {
		return time.Time{}, &DecodeError{Value: "count entry", Field: "last seen", Offset: 1, Reason: "zero time"}
	}
	return t, nil
}

// MaxCap is the largest client cap the ledger stores: twice the largest
// N_Policy a KMS request may carry (1000).
const MaxCap = 2000

// encodeCap returns a cap value: version u8 | cap uint32 BE.
func encodeCap(n int) []byte {
	w := newWriter(5)
	w.u8(countVersion)
	w.u32(uint32(n))
	return w.bytes()
}

// decodeCap parses a cap value.
func decodeCap(b []byte) (int, error) {
	r := newReader("cap", b)
	r.version(countVersion)
	n := r.u32("cap")
	if err := r.end(); err != nil {
		return 0, err
	}
	if n > MaxCap {
		return 0, &DecodeError{Value: "cap", Field: "cap", Offset: 1, Reason: fmt.Sprintf("%d exceeds %d", n, MaxCap)}
	}
	return int(n), nil
}

// clientKey is the audit bucket key: CMID ‖ App.
func clientKey(cmid, app guid.GUID) []byte {
	k := make([]byte, 32)
	copy(k, cmid[:])
	copy(k[16:], app[:])
	return k
}

// tsKey is the retention index key: sortable lastSeen ‖ CMID ‖ App.
func tsKey(t time.Time, cmid, app guid.GUID) []byte {
	w := newWriter(40)
	n := sortableNanos(t)
	for i := 7; i >= 0; i-- {
		w.u8(uint8(n >> (8 * i)))
	}
	w.guid(cmid)
	w.guid(app)
	return w.bytes()
}

// activationVersion is the format version of activations in the log.
const activationVersion = 1

// activationFixedLen is the size of an encoded Activation without its two
// strings.
const activationFixedLen = 1 + 8 + 4*16 + 4 + 4 + 1 + 1 + 2 + 2

// Activation flags. flagBatchEnd belongs to the log, not the activation:
// it marks the last frame of a batch written with one sync (see wal.go).
const (
	flagCounted  = 1
	flagBatchEnd = 2
)

// encodeActivation returns the log form of a validated activation (format
// version 1):
//
//	version u8 | Time (int64 ns BE) | CMID | App | CountedID | SKU |
//	Result | LicenseStatus (uint32 BE) | Protocol u8 | flags u8 (bit 0:
//	counted) | Cap (uint16 BE) | Workstation (u8 length + UTF-8) |
//	Source (u8 length + UTF-8)
func encodeActivation(dst []byte, a *Activation) []byte {
	return encodeLogActivation(dst, a, false)
}

// encodeLogActivation is encodeActivation with the log's batch-end flag
// (bit 1 of flags) set when batchEnd is.
func encodeLogActivation(dst []byte, a *Activation, batchEnd bool) []byte {
	ws, src := cleanText(a.Workstation), cleanText(a.Source)
	w := &writer{b: dst}
	w.u8(activationVersion)
	w.time(a.Time)
	w.guid(a.CMID)
	w.guid(a.App)
	w.guid(a.CountedID)
	w.guid(a.SKU)
	w.u32(a.Result)
	w.u32(a.LicenseStatus)
	w.u8(a.Protocol)
	var flags uint8
	if a.Counted {
		flags |= flagCounted
	}
	if batchEnd {
		flags |= flagBatchEnd
	}
	w.u8(flags)
	w.b = append(w.b, uint8(a.Cap>>8), uint8(a.Cap))
	w.str(ws)
	w.str(src)
	return w.bytes()
}

// DecodeActivation parses an activation as the log stores it. It rejects
// unknown versions and flags, truncation, a zero time, a cap above MaxCap,
// invalid strings and trailing bytes.
func DecodeActivation(b []byte) (Activation, error) {
	a, _, err := decodeActivation(b, flagCounted)
	return a, err
}

// decodeLogActivation parses a log frame's payload: an activation whose
// flags may also carry the batch-end mark.
func decodeLogActivation(b []byte) (Activation, bool, error) {
	a, flags, err := decodeActivation(b, flagCounted|flagBatchEnd)
	return a, flags&flagBatchEnd != 0, err
}

// decodeActivation parses an activation accepting the flag bits in known.
func decodeActivation(b []byte, known uint8) (Activation, uint8, error) {
	var a Activation
	r := newReader("activation", b)
	r.version(activationVersion)
	timeOff := r.off
	a.Time = r.time("time")
	if r.err == nil && a.Time.IsZero() {
		r.off = timeOff
		r.fail("time", "zero time")
	}
	a.CMID = r.guid("CMID")
	a.App = r.guid("application ID")
	a.CountedID = r.guid("counted ID")
	a.SKU = r.guid("SKU ID")
	a.Result = r.u32("result")
	a.LicenseStatus = r.u32("licence status")
	a.Protocol = r.u8("protocol")
	flagOff := r.off
	flags := r.u8("flags")
	if r.err == nil && flags&^known != 0 {
		r.off = flagOff
		r.fail("flags", "unknown flag bits %#02x", flags&^known)
	}
	a.Counted = flags&flagCounted != 0
	capOff := r.off
	if p := r.take(2, "cap"); p != nil {
		a.Cap = int(p[0])<<8 | int(p[1])
		if a.Cap > MaxCap {
			r.off = capOff
			r.fail("cap", "%d exceeds %d", a.Cap, MaxCap)
		}
	}
	a.Workstation = r.str("workstation", MaxTextLen)
	a.Source = r.str("source", MaxTextLen)
	if err := r.end(); err != nil {
		return Activation{}, 0, err
	}
	return a, flags, nil
}
