package catalog

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/kmsdns/kmsdns/plugin/pkg/fileperm"
)

// maxOverlayBytes bounds an overlay file, like each embedded table.
const maxOverlayBytes = maxTableBytes

// An overlay adds rows to the catalog's tables, or corrects rows, without a
// new binary: how an operator adds a product Microsoft released after the
// build. It is one text file of sections, each a table name in brackets
// followed by that table's header line and rows, in exactly the embedded
// tables' format (tab-separated, `-` for none, a source column):
//
//	[groups.tsv]                 rows added; a name or GUID the catalog has is refused
//	name	app	csvlk	...
//	office-ltsc-2027	office	...
//
//	[editions.tsv replace]       rows replacing the catalog's row with the same first column
//	name	aliases	sku	...
//
// Lines starting with # and blank lines are ignored. Every row is checked as
// the embedded ones are, and errors name the overlay file and line.

// ParseOverlay builds a catalog from the tables in files (as Parse takes
// them) with the overlay named name applied.
func ParseOverlay(files map[string][]byte, name string, overlay []byte) (*Catalog, error) {
	if len(overlay) > maxOverlayBytes {
		return nil, &ParseError{File: name, Msg: fmt.Sprintf("%d bytes exceeds the limit of %d", len(overlay), maxOverlayBytes)}
	}
	tables, err := readTables(files)
	if err != nil {
		return nil, err
	}
	sections, err := readOverlaySections(name, overlay)
	if err != nil {
		return nil, err
	}
	for _, sec := range sections {
		if err := applySection(tables[sec.table], sec); err != nil {
			return nil, err
		}
	}
	return parseTables(tables)
}

// LoadOverlay returns the embedded catalog with the overlay file at path
// applied. The file must be a policy file by plugin/pkg/fileperm's rules:
// owned by root or the running user, writable by neither group nor
// others, in directories only they can change.
func LoadOverlay(path string) (*Catalog, error) {
	// The overlay decides which products are answered: it gets the rules
	// of a policy file (owner, mode, the directories above it).
	data, err := fileperm.ReadFile("catalog overlay", path, fileperm.Policy, maxOverlayBytes+1)
	if err != nil {
		return nil, err
	}
	return ParseOverlay(embeddedFiles(), path, data)
}

// overlaySection is one [table] or [table replace] section of an overlay.
type overlaySection struct {
	table   string
	replace bool
	line    int // of the [table] line
	rows    *table
}

// readOverlaySections splits an overlay into its sections and reads each
// one's rows with their line numbers in the overlay.
func readOverlaySections(name string, data []byte) ([]overlaySection, error) {
	type span struct {
		sec        overlaySection
		start, end int // byte offsets of the section body
	}
	var spans []span
	line := 0
	for off := 0; off < len(data); {
		line++
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		} else {
			end = len(data) - off
		}
		text := strings.TrimRight(string(data[off:off+end]), "\r")
		if strings.HasPrefix(text, "[") {
			if len(spans) > 0 {
				spans[len(spans)-1].end = off
			}
			head, ok := strings.CutSuffix(text, "]")
			if !ok {
				return nil, &ParseError{File: name, Line: line, Msg: fmt.Sprintf("section line %q does not end with ]", text)}
			}
			fields := strings.Fields(head[1:])
			sec := overlaySection{line: line}
			switch {
			case len(fields) == 1:
				sec.table = fields[0]
			case len(fields) == 2 && fields[1] == "replace":
				sec.table, sec.replace = fields[0], true
			default:
				return nil, &ParseError{File: name, Line: line, Msg: fmt.Sprintf("section %q: want [TABLE] or [TABLE replace]", text)}
			}
			if columnsOf(sec.table) == nil {
				return nil, &ParseError{File: name, Line: line, Msg: fmt.Sprintf("unknown table %q (want one of %s)", sec.table, strings.Join(tableFiles[:], ", "))}
			}
			spans = append(spans, span{sec: sec, start: next, end: len(data)})
		} else if len(spans) == 0 && strings.TrimSpace(text) != "" && !strings.HasPrefix(text, "#") {
			return nil, &ParseError{File: name, Line: line, Msg: "row before any [TABLE] section"}
		}
		off = next
	}
	if len(spans) == 0 {
		return nil, &ParseError{File: name, Msg: "no [TABLE] section"}
	}
	out := make([]overlaySection, 0, len(spans))
	for _, sp := range spans {
		// Keep line numbers: the body is read after as many empty lines
		// as precede it, which readTable skips.
		body := append(bytes.Repeat([]byte{'\n'}, sp.sec.line), data[sp.start:sp.end]...)
		t, err := readTable(name, body, columnsOf(sp.sec.table))
		if err != nil {
			if pe, ok := err.(*ParseError); ok && pe.Line == 0 {
				pe.Line = sp.sec.line
				pe.Msg = "section [" + sp.sec.table + "]: " + pe.Msg
			}
			return nil, err
		}
		sp.sec.rows = t
		out = append(out, sp.sec)
	}
	return out, nil
}

// applySection adds or replaces rows of t by the rows of sec; a row's
// identity is its first column (the key, name or build).
func applySection(t *table, sec overlaySection) error {
	index := map[string]int{}
	for i, r := range t.rows {
		index[r.fields[0]] = i
	}
	for _, r := range sec.rows.rows {
		i, exists := index[r.fields[0]]
		switch {
		case sec.replace && !exists:
			return r.errorf("[%s replace]: the catalog has no row %q to replace (add it in a [%s] section)", sec.table, r.fields[0], sec.table)
		case sec.replace:
			t.rows[i] = r
		case exists:
			old := t.rows[i]
			return r.errorf("%q is already in the catalog (%s:%d); to correct that row, put this one in a [%s replace] section", r.fields[0], old.file, old.line, sec.table)
		default:
			if len(t.rows) == maxTableRows {
				return r.errorf("more than %d rows in %s", maxTableRows, sec.table)
			}
			index[r.fields[0]] = len(t.rows)
			t.rows = append(t.rows, r)
		}
	}
	return nil
}
