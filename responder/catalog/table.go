package catalog

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on a data table; the embedded tables are far below them.
const (
	maxTableBytes = 1 << 20
	maxTableRows  = 4096
	maxFieldBytes = 2048
)

// ParseError reports a problem in a data table, with the file and line.
type ParseError struct {
	File string
	Line int // 0 when the problem concerns the whole file
	Msg  string
}

// Error formats the problem as file:line: reason.
func (e *ParseError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// table is one parsed tab-separated file: a header naming the columns, then
// rows with exactly that many fields. Blank lines and lines starting with '#'
// are skipped. Fields are taken verbatim (no quoting, no trimming).
type table struct {
	file string
	cols []string
	rows []row
}

type row struct {
	file   string
	line   int
	fields []string
}

func (r row) errorf(format string, args ...any) error {
	return &ParseError{File: r.file, Line: r.line, Msg: fmt.Sprintf(format, args...)}
}

// readTable splits data into rows and checks the header is exactly cols.
func readTable(file string, data []byte, cols []string) (*table, error) {
	fail := func(line int, format string, args ...any) error {
		return &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(data) > maxTableBytes {
		return nil, fail(0, "%d bytes exceeds the limit of %d", len(data), maxTableBytes)
	}
	t := &table{file: file, cols: cols}
	header := false
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if !utf8.Valid(line) {
			return nil, fail(n, "line is not valid UTF-8")
		}
		if i := bytes.IndexFunc(line, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }); i >= 0 {
			return nil, fail(n, "control character 0x%02x at column %d", line[i], i+1)
		}
		fields := strings.Split(string(line), "\t")
		if !header {
			if strings.Join(fields, "\t") != strings.Join(cols, "\t") {
				return nil, fail(n, "header is %q, want %q", strings.Join(fields, " "), strings.Join(cols, " "))
			}
			header = true
			continue
		}
		if len(fields) != len(cols) {
			return nil, fail(n, "%d fields, want %d (%s)", len(fields), len(cols), strings.Join(cols, " "))
		}
		for i, f := range fields {
			if f == "" {
				return nil, fail(n, "column %s is empty (use - for none)", cols[i])
			}
			if len(f) > maxFieldBytes {
				return nil, fail(n, "column %s is %d bytes, limit %d", cols[i], len(f), maxFieldBytes)
			}
			if f != strings.TrimSpace(f) {
				return nil, fail(n, "column %s has leading or trailing spaces", cols[i])
			}
		}
		if len(t.rows) == maxTableRows {
			return nil, fail(n, "more than %d rows", maxTableRows)
		}
		t.rows = append(t.rows, row{file: file, line: n, fields: fields})
	}
	if !header {
		return nil, fail(0, "no header line (want %q)", strings.Join(cols, " "))
	}
	return t, nil
}

// get returns the field of r in column col; col must be one of t.cols.
func (t *table) get(r row, col string) string {
	for i, c := range t.cols {
		if c == col {
			return r.fields[i]
		}
	}
	panic("catalog: unknown column " + col) // programming error, not data
}
