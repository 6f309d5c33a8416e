package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
)

// TestCopyJSON: what --json passes on is the endpoint's document parsed
// and re-encoded: the same JSON value, every character printable, and
// anything that is not exactly one JSON document refused.
func TestCopyJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string // want: the re-encoding, "" for an error
	}{
		{"object", `{"a": 1, "b": [true, null, "x"], "c": {}}`, "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null,\n    \"x\"\n  ],\n  \"c\": {}\n}\n"},
		{"numbers as written", `[1.50, -0, 1e400]`, "[\n  1.50,\n  -0,\n  1e400\n]\n"},
		{"escapes in strings", `{"w": "\u001b]0;x\u0007\u009b31m\u202e", "k\u009b": 0}`,
			"{\n  \"w\": \"\\u001b]0;x\\u0007\\u009b31m\\u202e\",\n  \"k\\u009b\": 0\n}\n"},
		{"raw C1 and bidi", "[\"a\u009bb\u202ec\U000e0041\"]", "[\n  \"a\\u009bb\\u202ec\\udb40\\udc41\"\n]\n"},
		{"invalid UTF-8", "[\"a\xffb\"]", "[\n  \"a\\ufffdb\"\n]\n"},
		{"scalar", `"x"`, "\"x\"\n"},
		{"raw ESC in a string", "[\"\x1b[2J\"]", ""},
		{"not JSON", "ledger is \x1b]0;PWNED\x07", ""},
		{"two documents", `{} {}`, ""},
		{"truncated", `{"a": [1,`, ""},
		{"empty", ``, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := copyJSON(&out, strings.NewReader(tc.in))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("accepted, wrote %q", out.String())
				}
				return
			}
			if err != nil || out.String() != tc.want {
				t.Fatalf("got %q, %v; want %q", out.String(), err, tc.want)
			}
			var a, b any
			if json.Unmarshal([]byte(tc.in), &a) == nil && (json.Unmarshal(out.Bytes(), &b) != nil || !jsonEqual(a, b)) {
				t.Errorf("re-encoding changed the value: %v vs %v", a, b)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestCopyCSV: --format csv passes the endpoint's CSV on re-encoded, each
// field escaped; what does not parse as CSV is refused.
func TestCopyCSV(t *testing.T) {
	var out bytes.Buffer
	in := "cmid,workstation\nx,\"a\x1b]0;P\x07\u009b\"\ny,\"q,\"\"r\"\"\"\n"
	if err := copyCSV(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if want := "cmid,workstation\nx,a\\x1b]0;P\\x07\\u009b\ny,\"q,\"\"r\"\"\"\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	for _, bad := range []string{"a,b\nc\n", "a,\"b\n", "a,b\"c\n"} {
		if err := copyCSV(&bytes.Buffer{}, strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzCopyPeerDocument: whatever the endpoint sends, copyJSON and copyCSV
// never panic, and what they write is printable apart from line breaks.
func FuzzCopyPeerDocument(f *testing.F) {
	for _, s := range []string{`{"clients": [{"workstation": "\u009b"}], "next": "x"}`, "a,b\n1,\"\x1b\"\n", `[1,`, "\"\xff\"", `{}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, copyDoc := range []func(*bytes.Buffer) error{
			func(w *bytes.Buffer) error { return copyJSON(w, bytes.NewReader(b)) },
			func(w *bytes.Buffer) error { return copyCSV(w, bytes.NewReader(b)) },
		} {
			var out bytes.Buffer
			if copyDoc(&out) != nil {
				continue
			}
			for _, line := range strings.Split(out.String(), "\n") {
				if !printable.Valid(line) {
					t.Fatalf("non-printable output line %q from %q", line, b)
				}
			}
		}
	})
}

// oracleCopyCSV is the reference of copyCSV: every record read by
// encoding/csv, each field neutralized as the server's cells are (each
// ';'-separated part printable.CSVCell'd), written by encoding/csv.
func oracleCopyCSV(w io.Writer, r io.Reader) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cw := csv.NewWriter(w)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		for i := range rec {
			parts := strings.Split(rec[i], ";")
			for j := range parts {
				parts[j] = printable.CSVCell(parts[j])
			}
			rec[i] = strings.Join(parts, ";")
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// copyCSVSeeds are listings with every kind of record copyCSV meets.
var copyCSVSeeds = []string{
	"cmid,workstation\nx,\"a\x1b]0;P\x07\u009b\"\ny,\"q,\"\"r\"\"\"\n",
	"a,b\n1,2\n3,4", "a,b\n\n1,2\r\n\r\n3,4\n", "a,b\n \"x\",2\n", "a,b\n x,2\n", "a,b\n\\.,2\n", "a,b\nc\n", "a,\"b\n",
	"a,b\"c\n", "a,b\n\"multi\nline\",2\n1,2\n", "a,b\n\"x\"y,2\n", "a,b\n'=1,@2\n", "a,b\nd\u00e9j\u00e0,\u202e\n", "a\n\n\n",
	"a,b\n1,2,3\n", ",\n,\n", "a,b\n\"\",\"\"\n", "a,b\r\n1,2\r\n", "a,b\n1,\r2\n", "a,b\n1,2\r", "\"a\nb\"\n\"c\n",
	"a,b\nx;y,z\n", "a,b\nx;=y,z\n", "a,b\nx,;@y\n", "a,b\n=1,2\n", "=a,b\n1,2\n", "a,b\n1,2\n1,2,3\n", "a,b\n1,\"2;-3\"\n",
	"a,b\n'=x,\"\\x3b\"\n", "a,b\nx\"y,z\n1,2\n",
}

// TestCopyCSVOracle: copyCSV writes byte for byte what the reference
// writes and fails where it fails, with the same error.
func TestCopyCSVOracle(t *testing.T) {
	for _, in := range copyCSVSeeds {
		checkCopyCSV(t, []byte(in))
	}
}

func checkCopyCSV(t *testing.T, in []byte) {
	t.Helper()
	var got, want bytes.Buffer
	gerr := copyCSV(&got, bytes.NewReader(in))
	werr := oracleCopyCSV(&want, bytes.NewReader(in))
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("%q: error %v, want %v", in, gerr, werr)
	}
	if gerr == nil && !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("%q:\n got %q\nwant %q", in, got.Bytes(), want.Bytes())
	}
}

// FuzzCopyCSV: copyCSV is the reference (oracleCopyCSV) on any input.
func FuzzCopyCSV(f *testing.F) {
	for _, s := range copyCSVSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkCopyCSV(t, b) })
}
