package ledger

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Every value the store holds (except the schema byte, which a release
// of any schema must read to refuse what it does not know) ends in a
// CRC-32C over its key and the value before it. bbolt checks only its meta
// pages, so without it one flipped byte in a count entry or a record is
// believed; with it, Open and Check find it (verifyStore) and refuse the
// store, and every read checks it again.
const sealLen = 4

// seal returns v followed by the CRC-32C of key and v.
func seal(key, v []byte) []byte {
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, v)
	return binary.BigEndian.AppendUint32(append(make([]byte, 0, len(v)+sealLen), v...), crc)
}

// unseal checks the CRC-32C at the end of a stored value and returns the
// value before it; what names the value in the error.
func unseal(what string, key, sv []byte) ([]byte, error) {
	if len(sv) < sealLen {
		return nil, &DecodeError{Value: what, Field: "checksum", Offset: 0, Reason: fmt.Sprintf("truncated: %d bytes, a checksum needs %d", len(sv), sealLen)}
	}
	v := sv[:len(sv)-sealLen]
	want := binary.BigEndian.Uint32(sv[len(v):])
	if got := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, v); got != want {
		return nil, &DecodeError{Value: what, Field: "checksum", Offset: len(v), Reason: fmt.Sprintf("CRC-32C %08x over key %x and value, stored %08x: the value or its key changed on disk", got, key, want)}
	}
	return v, nil
}

// putSealed stores v under key, sealed.
func putSealed(b *bolt.Bucket, key, v []byte) error { return b.Put(key, seal(key, v)) }

// getSealed returns the value under key (nil when there is none), checked.
func getSealed(b *bolt.Bucket, what string, key []byte) ([]byte, error) {
	sv := b.Get(key)
	if sv == nil {
		return nil, nil
	}
	return unseal(what, key, sv)
}

// getCounter reads a meta counter (0 when absent).
func getCounter(meta *bolt.Bucket, key []byte) (uint64, error) {
	v, err := getSealed(meta, fmt.Sprintf("meta %q", key), key)
	switch {
	case err != nil:
		return 0, err
	case v == nil:
		return 0, nil
	case len(v) != 8:
		return 0, &DecodeError{Value: fmt.Sprintf("meta %q", key), Field: "value", Reason: fmt.Sprintf("%d bytes, want 8", len(v))}
	}
	return binary.BigEndian.Uint64(v), nil
}

// putCounterValue stores a meta counter.
func putCounterValue(meta *bolt.Bucket, key []byte, n uint64) error {
	return putSealed(meta, key, binary.BigEndian.AppendUint64(nil, n))
}

// countSealKey is what a count entry's checksum covers besides its value:
// the application (its bucket's name) and the CMID (its key), so that an
// entry that moved to another application's bucket fails it too.
func countSealKey(app guid.GUID, cmid []byte) []byte {
	return append(append(make([]byte, 0, 32), app[:]...), cmid...)
}

// decodeCountEntry checks and decodes one entry of app's count bucket.
func decodeCountEntry(app guid.GUID, k, sv []byte) (time.Time, error) {
	if len(k) != 16 {
		return time.Time{}, &DecodeError{Value: "count entry of " + app.String(), Field: "key", Reason: fmt.Sprintf("%d bytes, want 16", len(k))}
	}
	v, err := unseal("count entry of "+app.String(), countSealKey(app, k), sv)
	if err != nil {
		return time.Time{}, err
	}
	return decodeSeen(v)
}

// decodeRecord checks and decodes one audit or refusal record.
func decodeRecord(what string, k, sv []byte) (Client, error) {
	v, err := unseal(what, k, sv)
	if err != nil {
		return Client{}, err
	}
	return DecodeClient(v)
}

// getCounterV1 reads a meta counter of a schema-1 store (no seal).
func getCounterV1(meta *bolt.Bucket, key []byte) (uint64, error) {
	v := meta.Get(key)
	switch {
	case v == nil:
		return 0, nil
	case len(v) != 8:
		return 0, &DecodeError{Value: fmt.Sprintf("meta %q", key), Field: "value", Reason: fmt.Sprintf("%d bytes, want 8", len(v))}
	}
	return binary.BigEndian.Uint64(v), nil
}
