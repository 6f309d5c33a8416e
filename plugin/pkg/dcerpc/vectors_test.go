package dcerpc

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// capturedPDU is one PDU of a transcript in testdata/vectors.
type capturedPDU struct {
	conn       int
	fromClient bool
	b          []byte
}

// loadCapture reads a transcript: "# conn N C->S|S->C LEN bytes" lines, each
// followed by the PDU in hex.
func loadCapture(t testing.TB, name string) []capturedPDU {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []capturedPDU
	var cur *capturedPDU
	var want int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			var p capturedPDU
			var dir string
			if _, err := fmt.Sscanf(line, "# conn %d %s %d bytes", &p.conn, &dir, &want); err != nil {
				t.Fatalf("%s: bad line %q: %v", name, line, err)
			}
			p.fromClient = dir == "C->S"
			out = append(out, p)
			cur = &out[len(out)-1]
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || cur == nil {
			t.Fatalf("%s: bad hex line: %v", name, err)
		}
		if len(b) != want {
			t.Fatalf("%s: PDU of %d bytes, header says %d", name, len(b), want)
		}
		cur.b = b
		cur = nil
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no PDUs", name)
	}
	return out
}

// connPDUs returns the PDUs of one connection in order.
func connPDUs(all []capturedPDU, conn int) []capturedPDU {
	var out []capturedPDU
	for _, p := range all {
		if p.conn == conn {
			out = append(out, p)
		}
	}
	return out
}
