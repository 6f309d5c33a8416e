package ledger

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// DecodeError says which stored value is malformed, in which field, at which
// byte offset, and why.
type DecodeError struct {
	Value  string // "client record", "count entry", ...
	Field  string // the field being read when decoding stopped
	Offset int    // byte offset of that field within the value
	Reason string
}

// Error formats the problem as "ledger: <value>: <field> at offset N: <reason>".
func (e *DecodeError) Error() string {
	return fmt.Sprintf("ledger: %s: %s at offset %d: %s", e.Value, e.Field, e.Offset, e.Reason)
}

// reader decodes a value front to back. The first failure is kept in err and
// turns every later read into a no-op returning a zero value, so a decoder
// reads all fields and checks err once.
type reader struct {
	value string
	b     []byte
	off   int
	err   error
}

func newReader(value string, b []byte) *reader { return &reader{value: value, b: b} }

func (r *reader) fail(field, format string, args ...any) {
	if r.err == nil {
		r.err = &DecodeError{Value: r.value, Field: field, Offset: r.off, Reason: fmt.Sprintf(format, args...)}
	}
}

func (r *reader) take(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if left := len(r.b) - r.off; left < n {
		r.fail(field, "truncated: need %d bytes, have %d", n, left)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8(field string) uint8 {
	p := r.take(1, field)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *reader) u32(field string) uint32 {
	p := r.take(4, field)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

func (r *reader) guid(field string) guid.GUID {
	var g guid.GUID
	if p := r.take(16, field); p != nil {
		copy(g[:], p)
	}
	return g
}

// time reads a timestamp stored as signed nanoseconds since the Unix epoch;
// 0 stands for the zero time.
func (r *reader) time(field string) time.Time {
	p := r.take(8, field)
	if p == nil {
		return time.Time{}
	}
	return timeFromNanos(int64(binary.BigEndian.Uint64(p)))
}

// version reads the leading format version and checks it is one this code
// knows.
func (r *reader) version(want uint8) {
	if v := r.u8("version"); r.err == nil && v != want {
		r.off--
		r.fail("version", "unsupported format version %d (this build reads version %d)", v, want)
	}
}

// str reads a string with a one-byte length prefix; it must be valid UTF-8
// and at most max bytes long.
func (r *reader) str(field string, max int) string {
	start := r.off
	if r.err != nil {
		return ""
	}
	if r.off == len(r.b) {
		// The length byte's field name is built only for the error.
		r.take(1, field+" length")
		return ""
	}
	n := int(r.b[r.off])
	r.off++
	if n > max {
		r.off = start
		r.fail(field, "length %d exceeds the limit of %d bytes", n, max)
		return ""
	}
	p := r.take(n, field)
	if p == nil {
		return ""
	}
	if !utf8.Valid(p) {
		r.off = start + 1
		r.fail(field, "not valid UTF-8")
		return ""
	}
	return string(p)
}

// end reports the first error, or an error when bytes are left over.
func (r *reader) end() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("end", "%d unexpected trailing bytes", len(r.b)-r.off)
	}
	return r.err
}

// writer appends fields to a byte slice.
type writer struct{ b []byte }

func (w *writer) u8(v uint8)         { w.b = append(w.b, v) }
func (w *writer) u32(v uint32)       { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) guid(g guid.GUID)   { w.b = append(w.b, g[:]...) }
func (w *writer) time(t time.Time)   { w.b = binary.BigEndian.AppendUint64(w.b, uint64(timeToNanos(t))) }
func (w *writer) str(s string)       { w.u8(uint8(len(s))); w.b = append(w.b, s...) }
func (w *writer) bytes() []byte      { return w.b }
func newWriter(capacity int) *writer { return &writer{b: make([]byte, 0, capacity)} }

// Representable time range: int64 nanoseconds around the Unix epoch.
var (
	minTime = time.Unix(0, math.MinInt64+1).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// timeOK reports whether t can be stored (the zero time can).
func timeOK(t time.Time) bool {
	return t.IsZero() || (!t.Before(minTime) && !t.After(maxTime))
}

func timeToNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	n := t.UnixNano()
	if n == 0 {
		// The epoch itself is stored one nanosecond later so that 0
		// keeps meaning "unset".
		return 1
	}
	return n
}

func timeFromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// sortableNanos maps a timestamp to an unsigned value whose big-endian bytes
// sort in time order (negative times included).
func sortableNanos(t time.Time) uint64 {
	return uint64(timeToNanos(t)) ^ (1 << 63)
}
