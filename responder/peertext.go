package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
)

// What status and clients print is the admin endpoint's text, and
// whatever answers at the address (any local user can bind it while serve
// is stopped, or --admin names a proxy) chooses it. Nothing of it reaches
// the terminal as received: tables print escaped fields (statusapi's
// Escape methods), errors escape the status line and body, and the JSON
// and CSV that --json and --format pass on are parsed and re-encoded
// (copyJSON, copyCSV), so a document that does not parse is refused and
// every character that is not printable inside a string or field is
// written as an escape.

// maxPeerToken bounds one JSON token or CSV record read from the endpoint
// (a real one is under 2 KiB).
const maxPeerToken = 1 << 20

// copyJSON re-encodes the one JSON document r holds to w, indented by two
// spaces: strings (keys included) with every character that is not
// printable escaped (\u001b, \u202e, \ud83d\ude00 for one beyond the
// BMP), numbers as written. It fails on anything that is not exactly one
// JSON document.
func copyJSON(w io.Writer, r io.Reader) error {
	br := &rowBound{r: r, max: maxPeerToken}
	dec := json.NewDecoder(br)
	dec.UseNumber()
	type level struct {
		object bool
		n      int // values (or keys) written at this level
	}
	var stack []level
	done := false
	for {
		br.n = 0
		t, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if done {
			return errors.New("data after the JSON document")
		}
		var top *level
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := t.(json.Delim); ok && (d == '}' || d == ']') {
			n := top.n
			stack = stack[:len(stack)-1]
			if n > 0 {
				fmt.Fprintf(w, "\n%s", strings.Repeat("  ", len(stack)))
			}
			fmt.Fprintf(w, "%c", d)
			done = len(stack) == 0
			continue
		}
		// Separators: a key or an array element starts a new line; an
		// object's value follows its key.
		isValue := top != nil && top.object && top.n%2 == 1
		if top != nil {
			switch {
			case isValue:
				io.WriteString(w, ": ")
			case top.n > 0:
				fmt.Fprintf(w, ",\n%s", strings.Repeat("  ", len(stack)))
			default:
				fmt.Fprintf(w, "\n%s", strings.Repeat("  ", len(stack)))
			}
			top.n++
		}
		switch v := t.(type) {
		case json.Delim:
			fmt.Fprintf(w, "%c", v)
			stack = append(stack, level{object: v == '{'})
		case string:
			io.WriteString(w, quoteJSON(v))
		case json.Number:
			io.WriteString(w, v.String())
		case bool:
			io.WriteString(w, strconv.FormatBool(v))
		case nil:
			io.WriteString(w, "null")
		}
		if top == nil {
			done = len(stack) == 0
		}
	}
	if !done {
		return io.ErrUnexpectedEOF
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// quoteJSON quotes s as a JSON string whose every character is printable:
// json's own escapes first, then \u escapes for what it leaves raw (C1
// controls, format characters such as U+202E).
func quoteJSON(s string) string {
	q, _ := json.Marshal(s) // a string always marshals
	if printable.Valid(string(q)) {
		return string(q)
	}
	var b strings.Builder
	for _, r := range string(q) {
		if printable.Is(r) {
			b.WriteRune(r)
			continue
		}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			continue
		}
		if r == utf8.RuneError {
			r = 0xfffd
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// copyJSONBytes is copyJSON of a document already read.
func copyJSONBytes(w io.Writer, b []byte) error {
	return copyJSON(w, bytes.NewReader(b))
}

// copyCSV re-encodes the CSV r holds to w, every field neutralized for a
// spreadsheet as the server neutralizes its own cells (csvNeutral: each
// ';'-separated part printable.CSVCell'd, so whatever answered on --admin
// cannot put a formula, a control or a bidi override into the file). It
// fails on anything that is not CSV with the same number of fields in
// every record, with encoding/csv's errors.
//
// It writes what encoding/csv's Reader and Writer would, with csvNeutral
// on each field between them. Lines are passed through as they are while
// that is provably what they would write (plainCSVLine: printable ASCII,
// no quote, no field that encoding/csv quotes or csvNeutral changes, the
// record's number of fields): the usual line of a listing. From the first
// other line on, encoding/csv reads the rest of the stream, bounded as
// copyJSON is: a record fails once more than maxPeerToken bytes were read
// for it.
func copyCSV(w io.Writer, r io.Reader) error {
	in := bufio.NewReaderSize(r, 64<<10)
	fields := 0 // fields per record: the first record's
	line := 0   // lines passed through
	for {
		b, err := in.ReadSlice('\n')
		switch {
		case err == io.EOF && len(b) == 0:
			return nil
		case err != nil && err != io.EOF && err != bufio.ErrBufferFull:
			return err
		}
		if n := plainCSVLine(b); n > 0 && (fields == 0 || n == fields) {
			fields = n
			if _, werr := w.Write(b); werr != nil {
				return werr
			}
			if b[len(b)-1] != '\n' {
				if _, werr := io.WriteString(w, "\n"); werr != nil {
					return werr
				}
			}
			line++
			continue
		}
		rest := io.MultiReader(bytes.NewReader(bytes.Clone(b)), in)
		return copyCSVRecords(w, rest, fields, line)
	}
}

// plainCSVLine returns the number of fields of line (one line, its line
// break included or not) when copyCSV writes it as it is, else 0: printable
// ASCII without a quote, and no field that encoding/csv's Writer quotes (a
// leading space, or \. alone) or csvNeutral changes (';'-separated part
// starting with = + - @).
func plainCSVLine(line []byte) int {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if len(line) == 0 {
		return 0
	}
	n, start := 1, 0
	for i := 0; i <= len(line); i++ {
		if i == len(line) || line[i] == ',' {
			if i-start == 2 && line[start] == '\\' && line[start+1] == '.' {
				return 0
			}
			if i < len(line) {
				n++
				start = i + 1
			}
			continue
		}
		c := line[i]
		if c < 0x20 || c >= 0x7f || c == '"' || (c == ' ' && i == start) {
			return 0
		}
		if (i == start || line[i-1] == ';') && (c == '=' || c == '+' || c == '-' || c == '@') {
			return 0
		}
	}
	return n
}

// copyCSVRecords copies the records r holds, the stream after line lines,
// with encoding/csv: each field neutralized (csvNeutral). Each record must
// have fields fields (0: the first record's number).
func copyCSVRecords(w io.Writer, r io.Reader, fields, line int) error {
	br := &rowBound{r: r, max: maxPeerToken}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = fields
	cr.ReuseRecord = true
	cw := csv.NewWriter(w)
	for {
		br.n = 0
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				pe.StartLine += line
				pe.Line += line
			}
			return err
		}
		for i := range rec {
			rec[i] = csvNeutral(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvNeutral is the rule the server's CSV cells follow, applied to a field
// from the endpoint: printable.CSVCell of each ';'-separated part, joined
// by ';' (printable.CSVList), so a list cell keeps its separators and no
// part starts a formula in a spreadsheet that splits on ';'. A cell the
// server wrote is unchanged.
func csvNeutral(f string) string {
	if strings.IndexByte(f, ';') < 0 {
		return printable.CSVCell(f)
	}
	return printable.CSVList(strings.Split(f, ";"))
}
