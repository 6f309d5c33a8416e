package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Offsets of the fields of an encoded client record (see encodeClient)
// that timedRecordOK reads.
const (
	clientOffCMID      = 1
	clientOffApp       = clientOffCMID + 16
	clientOffFirstSeen = 1 + 4*16
	clientOffLastSeen  = clientOffFirstSeen + 8
	clientOffStrings   = clientFixedLen - 2 // the workstation's length byte
)

// checkTimedRecord judges a schema-3 audit record v (its seal removed)
// stored under key k: nil when DecodeClient accepts v and the record is
// k's (recordMatchesKey), else the error saying why. Open's walk over a
// million records runs it, so a good record is judged by timedRecordOK
// without decoding it into a Client (no strings built to be dropped); only
// a bad one is decoded again, for the precise error.
func checkTimedRecord(k, v []byte) error {
	if timedRecordOK(k, v) {
		return nil
	}
	if len(k) != 40 {
		return fmt.Errorf("key has %d bytes, want 40", len(k))
	}
	c, err := DecodeClient(v)
	if err != nil {
		return err
	}
	if !recordMatchesKey(&c, k) {
		return fmt.Errorf("the record (client %s, application %s, last seen %s) does not match its key", c.CMID, c.App, c.LastSeen.UTC().Format(time.RFC3339Nano))
	}
	// timedRecordOK and DecodeClient disagree: FuzzTimedRecordOK exists so
	// that this cannot happen; refuse rather than believe either.
	return errors.New("the record fails the record check but decodes")
}

// timedRecordOK reports whether DecodeClient accepts v and the record is
// the one key k names (recordMatchesKey: its last request, CMID and
// application), reading v in place. It applies DecodeClient's rules
// (version, length, UTF-8 strings of at most MaxTextLen bytes, no trailing
// bytes, first seen not after last seen); FuzzTimedRecordOK holds the two
// to the same verdict.
func timedRecordOK(k, v []byte) bool {
	if len(k) != 40 || len(v) < clientFixedLen || v[0] != clientVersion {
		return false
	}
	ws := int(v[clientOffStrings])
	srcAt := clientOffStrings + 1 + ws // the source's length byte
	if ws > MaxTextLen || srcAt >= len(v) {
		return false
	}
	src := int(v[srcAt])
	if src > MaxTextLen || srcAt+1+src != len(v) ||
		!utf8.Valid(v[clientOffStrings+1:srcAt]) || !utf8.Valid(v[srcAt+1:]) {
		return false
	}
	e := binary.BigEndian
	first, last := int64(e.Uint64(v[clientOffFirstSeen:])), int64(e.Uint64(v[clientOffLastSeen:]))
	if nanosBefore(last, first) {
		return false
	}
	return e.Uint64(k) == uint64(last)^(1<<63) &&
		bytes.Equal(k[8:40], v[clientOffCMID:clientOffApp+16])
}

// nanosBefore reports whether the stored time a is before the stored time
// b, as timeFromNanos reads them: 0 is the zero time, before every other.
func nanosBefore(a, b int64) bool {
	switch {
	case a == 0:
		return b != 0
	case b == 0:
		return false
	}
	return a < b
}
