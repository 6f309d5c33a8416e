package ledger

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// arena hands out the keys and values of one store transaction from a few
// large blocks instead of one allocation each: bbolt keeps every slice
// passed to Put until the transaction commits, so they must stay put, but
// they all die together when it ends. Only the applier's goroutine uses
// an arena, and only for the length of one transaction.
type arena struct{ block []byte }

// arenaBlock is the size of one block; a client record is under 600 bytes.
const arenaBlock = 64 << 10

// take returns a zero-length slice with capacity n that no other slice the
// arena handed out overlaps.
func (a *arena) take(n int) []byte {
	if cap(a.block)-len(a.block) < n {
		a.block = make([]byte, 0, max(arenaBlock, n))
	}
	s := a.block[len(a.block) : len(a.block) : len(a.block)+n]
	a.block = a.block[:len(a.block)+n]
	return s
}

// clientKey is clientKey in the arena.
func (a *arena) clientKey(cmid, app guid.GUID) []byte {
	k := a.take(32)
	k = append(k, cmid[:]...)
	return append(k, app[:]...)
}

// tsKey is tsKey in the arena.
func (a *arena) tsKey(t time.Time, cmid, app guid.GUID) []byte {
	k := binary.BigEndian.AppendUint64(a.take(40), sortableNanos(t))
	k = append(k, cmid[:]...)
	return append(k, app[:]...)
}

// sealedClient is seal(key, encodeClient(c)) in the arena, encoded in place.
func (a *arena) sealedClient(key []byte, c *Client) []byte {
	ws, src := cleanText(c.Workstation), cleanText(c.Source)
	w := &writer{b: a.take(clientFixedLen + len(ws) + len(src) + sealLen)}
	appendClient(w, c, ws, src)
	v := w.bytes()
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, v)
	return binary.BigEndian.AppendUint32(v, crc)
}
