package ledger

import (
	"fmt"
	"sort"
)

// Identity is what a KMS host shows its clients about itself: one ePID per
// host key group and the host's 8-byte hardware ID. It is generated once and
// kept, so clients see the same host across restarts.
type Identity struct {
	// EPIDs maps host key group names to their ePIDs.
	EPIDs map[string]string
	// HwID is the host's hardware ID; HasHwID reports whether it is set.
	HwID    [8]byte
	HasHwID bool
}

// identityVersion is the format version of encoded identities.
const identityVersion = 1

// maxIdentityEntries bounds the number of ePIDs an identity holds.
const maxIdentityEntries = 255

// encodeIdentity returns the binary form of id (format version 1):
//
//	version u8 | flags u8 (bit 0: HwID set) | HwID [8] | n u8 |
//	n × (group name: u8 length + UTF-8, ePID: u8 length + UTF-8)
//
// Entries are sorted by group name so equal identities encode equally.
func encodeIdentity(id *Identity) ([]byte, error) {
	if len(id.EPIDs) > maxIdentityEntries {
		return nil, fmt.Errorf("ledger: identity holds %d ePIDs, limit %d", len(id.EPIDs), maxIdentityEntries)
	}
	names := make([]string, 0, len(id.EPIDs))
	for name, epid := range id.EPIDs {
		if len(name) > MaxTextLen || len(epid) > MaxTextLen {
			return nil, fmt.Errorf("ledger: identity entry %q is longer than %d bytes", name, MaxTextLen)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	w := newWriter(11 + 64*len(names))
	w.u8(identityVersion)
	var flags uint8
	if id.HasHwID {
		flags |= 1
	}
	w.u8(flags)
	w.b = append(w.b, id.HwID[:]...)
	w.u8(uint8(len(names)))
	for _, name := range names {
		w.str(cleanText(name))
		w.str(cleanText(id.EPIDs[name]))
	}
	return w.bytes(), nil
}

// DecodeIdentity parses an encoded identity. It rejects unknown versions
// and flags, truncation, invalid strings, duplicate group names and trailing
// bytes.
func DecodeIdentity(b []byte) (Identity, error) {
	id := Identity{EPIDs: map[string]string{}}
	r := newReader("identity", b)
	r.version(identityVersion)
	flagOff := r.off
	flags := r.u8("flags")
	if r.err == nil && flags&^1 != 0 {
		r.off = flagOff
		r.fail("flags", "unknown flag bits %#02x", flags&^1)
	}
	id.HasHwID = flags&1 != 0
	if p := r.take(8, "HwID"); p != nil {
		copy(id.HwID[:], p)
	}
	n := int(r.u8("entry count"))
	for i := 0; i < n && r.err == nil; i++ {
		nameOff := r.off
		name := r.str(fmt.Sprintf("entry %d group", i), MaxTextLen)
		epid := r.str(fmt.Sprintf("entry %d ePID", i), MaxTextLen)
		if r.err != nil {
			break
		}
		if cleanText(name) != name || cleanText(epid) != epid {
			// The encoder writes cleaned text only: two raw names that clean to one
			// would not survive a rewrite.
			r.off = nameOff
			r.fail(fmt.Sprintf("entry %d", i), "group or ePID holds control characters the encoder never writes")
			break
		}
		if _, dup := id.EPIDs[name]; dup {
			r.off = nameOff
			r.fail(fmt.Sprintf("entry %d group", i), "duplicate group %q", name)
			break
		}
		id.EPIDs[name] = epid
	}
	if err := r.end(); err != nil {
		return Identity{}, err
	}
	return id, nil
}
