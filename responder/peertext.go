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

// copyCSV re-encodes the CSV r holds to w, every field escaped
// (printable.Escape). It fails on anything that is not CSV with the same
// number of fields in every record.
//
// It writes what encoding/csv's Reader and Writer would, with Escape on
// each field between them, but passes a line through as it is when that
// changes nothing (printable ASCII, no quote, no field that encoding/csv
// quotes, the record's number of fields): the usual line of a listing.
// Other records are parsed and written by encoding/csv one at a time.
func copyCSV(w io.Writer, r io.Reader) error {
	in := bufio.NewReaderSize(r, 64<<10)
	cw := csv.NewWriter(w)
	fields := 0 // fields per record: the first record's
	line := 0   // lines read before the current record
	var acc []byte
	for {
		rec, more, err := readCSVRecord(in, acc[:0])
		acc = more
		if err != nil && err != io.EOF {
			return err
		}
		if len(rec) > 0 {
			if fields > 0 && plainCSVLine(rec, fields) {
				if _, werr := w.Write(rec); werr != nil {
					return werr
				}
				if rec[len(rec)-1] != '\n' {
					if _, werr := io.WriteString(w, "\n"); werr != nil {
						return werr
					}
				}
			} else if perr := copyCSVRecord(cw, rec, &fields, line); perr != nil {
				return perr
			}
			line += bytes.Count(rec, []byte{'\n'})
		}
		if err == io.EOF {
			return nil
		}
	}
}

// readCSVRecord reads lines from in until the quotes in them are balanced
// (a line break outside a quoted field ends a CSV record) or the input
// ends (io.EOF). The record is in in's buffer when it is one line, else in
// acc, which it returns for reuse. A record is at most maxPeerToken bytes.
func readCSVRecord(in *bufio.Reader, acc []byte) (rec, accOut []byte, err error) {
	quotes := 0
	for {
		b, err := in.ReadSlice('\n')
		quotes += bytes.Count(b, []byte{'"'})
		if err == nil && len(acc) == 0 && quotes%2 == 0 {
			return b, acc, nil
		}
		if len(acc)+len(b) > maxPeerToken {
			return nil, acc, fmt.Errorf("a row of the listing is larger than %d bytes: is --admin a kms-responder?", maxPeerToken)
		}
		acc = append(acc, b...)
		switch {
		case err == bufio.ErrBufferFull:
		case err != nil:
			return acc, acc, err
		case quotes%2 == 0:
			return acc, acc, nil
		}
	}
}

// plainCSVLine reports whether line (one record, its line break included
// or not) is what copyCSV writes for it: printable ASCII without a quote,
// fields fields, none that encoding/csv's Writer quotes (a leading space,
// or \. alone).
func plainCSVLine(line []byte, fields int) bool {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if len(line) == 0 {
		return false
	}
	n, start := 1, 0
	for i := 0; i <= len(line); i++ {
		if i == len(line) || line[i] == ',' {
			if i-start == 2 && line[start] == '\\' && line[start+1] == '.' {
				return false
			}
			if i < len(line) {
				n++
				start = i + 1
			}
			continue
		}
		c := line[i]
		if c < 0x20 || c >= 0x7f || c == '"' || (c == ' ' && i == start) {
			return false
		}
	}
	return n == fields
}

// copyCSVRecord parses rec (the record after line lines) with encoding/csv
// and writes it with every field escaped; *fields is the number of fields
// each record must have (0: set it from this one).
func copyCSVRecord(cw *csv.Writer, rec []byte, fields *int, line int) error {
	cr := csv.NewReader(bytes.NewReader(rec))
	cr.FieldsPerRecord = *fields
	for {
		f, err := cr.Read()
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
		*fields = cr.FieldsPerRecord
		for i := range f {
			f[i] = printable.Escape(f[i])
		}
		if err := cw.Write(f); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
