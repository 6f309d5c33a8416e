// Package guid holds the 16-byte GUID type used by the KMS protocol, the
// product catalog and the ledger.
//
// A GUID is kept in its wire form: Microsoft's mixed-endian layout, where the
// first three fields are little-endian and the last eight bytes are in order.
// String and Parse convert to and from the canonical text form
// ("55c92734-d682-4d71-983e-d6ec3f16059f").
package guid

import (
	"encoding/hex"
	"fmt"
)

// GUID is a Microsoft GUID in wire (mixed-endian) byte order.
type GUID [16]byte

// Nil is the all-zero GUID.
var Nil GUID

// Parse reads a GUID in canonical text form, with or without surrounding
// braces, in either case.
func Parse(s string) (GUID, error) {
	var g GUID
	if len(s) == 38 && s[0] == '{' && s[37] == '}' {
		s = s[1:37]
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("guid: %q is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	var canon [16]byte
	hexPart := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(canon[:], []byte(hexPart)); err != nil {
		return g, fmt.Errorf("guid: %q has a non-hex digit", s)
	}
	return FromCanonical(canon), nil
}

// MustParse is Parse for constants known to be valid; it panics otherwise.
func MustParse(s string) GUID {
	g, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return g
}

// FromCanonical converts big-endian (RFC 4122 text order) bytes to wire order.
func FromCanonical(c [16]byte) GUID {
	return GUID{
		c[3], c[2], c[1], c[0],
		c[5], c[4],
		c[7], c[6],
		c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15],
	}
}

// Canonical returns the bytes in RFC 4122 text order.
func (g GUID) Canonical() [16]byte {
	// The swap is its own inverse.
	return [16]byte(FromCanonical(g))
}

// String returns the canonical lower-case text form.
func (g GUID) String() string {
	c := g.Canonical()
	var buf [36]byte
	hex.Encode(buf[0:8], c[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], c[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], c[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], c[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], c[10:16])
	return string(buf[:])
}

// IsNil reports whether g is the all-zero GUID.
func (g GUID) IsNil() bool { return g == Nil }

// MarshalText implements encoding.TextMarshaler (used by JSON output).
func (g GUID) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (g *GUID) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*g = v
	return nil
}
