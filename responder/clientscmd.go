package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/inventory"
	"github.com/kmsdns/kmsdns/responder/statusapi"
)

// runClients is `kms-responder clients`: the client inventory of a running
// serve, from its admin endpoint (never from the ledger file: serve holds
// it, and a second reader would pin its pages).
func runClients(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("clients", stderr)
	var af adminClientFlags
	af.bind(fs)
	product := fs.String("product", "", "only this product: counted ID or edition name (part of it) or GUID")
	app := fs.String("app", "", "only this application: name (part of it) or GUID")
	since := fs.String("since", "", "only clients whose last request is this recent: a duration (7d, 36h) or a date (2006-01-02)")
	address := fs.String("address", "", "only clients from this network: CIDR or address")
	state := fs.String("state", "", "only clients in this state: counted, expired or refused")
	format := fs.String("format", "table", "output: table (summary first), json or csv (every field)")
	wide := fs.Bool("wide", false, "table: every column, names not cut")
	summaryOnly := fs.Bool("summary", false, "only the summary (with --format json: as JSON)")
	limit := fs.Int("limit", 0, "at most this many rows; the cursor for the next page goes to stderr (0: all)")
	after := fs.String("after", "", "continue after this `cursor` (from --limit)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, usageError{err}
	}
	if fs.NArg() > 0 {
		return exitUsage, usagef("unexpected argument %q", fs.Arg(0))
	}
	switch *format {
	case "table", "json", "csv":
	default:
		return exitUsage, usagef("--format %q is not table, json or csv", *format)
	}
	if *limit < 0 {
		return exitUsage, usagef("--limit %d is negative", *limit)
	}
	if *summaryOnly && *format == "csv" {
		return exitUsage, usagef("--summary prints a table or JSON, not CSV")
	}
	q := url.Values{}
	for k, v := range map[string]string{"product": *product, "app": *app, "since": *since, "address": *address, "state": *state} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if _, err := inventory.ParseFilter(q, time.Now()); err != nil {
		return exitUsage, usagef("%v", err)
	}
	if _, err := inventory.DecodeCursor(*after); err != nil {
		return exitUsage, usagef("--%v", err)
	}
	ac, err := af.client()
	if err != nil {
		return exitUsage, err
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()

	if *format == "table" || *summaryOnly {
		sum, raw, err := fetchSummary(ctx, ac, q)
		if err != nil {
			return exitError, err
		}
		if *summaryOnly && *format == "json" {
			if err := copyJSONBytes(out, raw); err != nil {
				return exitError, fmt.Errorf("/clients/summary: %w", err)
			}
			return exitOK, nil
		}
		sum.Escape()
		printSummary(out, &sum)
		if *summaryOnly {
			return exitOK, nil
		}
		fmt.Fprintln(out)
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *after != "" {
		q.Set("after", *after)
	}
	if *format == "csv" {
		q.Set("format", "csv")
	}
	resp, err := ac.Get(ctx, "/clients", q)
	if err != nil {
		return exitError, err
	}
	defer resp.Body.Close()
	var next string
	switch *format {
	case "json", "csv":
		// The server's own document, parsed and re-encoded as it
		// streams: refused where it does not parse, every string or
		// field printable (see peertext.go).
		copyDoc := copyJSON
		if *format == "csv" {
			copyDoc = copyCSV
		}
		if err := copyDoc(out, resp.Body); err != nil {
			return exitError, fmt.Errorf("reading the listing: %w", err)
		}
		next = resp.Trailer.Get("Kms-Next-Cursor")
		if *format == "json" && *limit > 0 {
			next = "" // in the document's "next"
		}
		if _, err := inventory.DecodeCursor(next); err != nil {
			out.Flush()
			return exitError, fmt.Errorf("the endpoint sent a next-page cursor that is not one: %q", printable.Escape(next))
		}
	default:
		next, err = printClientTable(out, resp.Body, *wide)
		if err != nil {
			return exitError, err
		}
	}
	if next != "" {
		out.Flush()
		fmt.Fprintf(stderr, "more clients: continue with --after %s\n", next)
	}
	return exitOK, nil
}

// fetchSummary asks for GET /clients/summary.
func fetchSummary(ctx context.Context, ac *statusapi.Client, q url.Values) (statusapi.ClientSummary, []byte, error) {
	var s statusapi.ClientSummary
	resp, err := ac.Get(ctx, "/clients/summary", q)
	if err != nil {
		return s, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return s, nil, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, nil, fmt.Errorf("/clients/summary: %w", err)
	}
	return s, raw, nil
}

// print writes the summary lines a person wants first.
func printSummary(w io.Writer, s *statusapi.ClientSummary) {
	fmt.Fprintf(w, "Clients:            %d (counted %d, expired %d, refused %d) as of %s\n",
		s.Clients, s.Counted, s.Expired, s.Refused, s.AsOf.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Renewing on time:   %d (activated, last request within %s)\n", s.RenewingOnTime, s.OnTimeWindow)
	fmt.Fprintf(w, "Stopped coming:     %d", s.StoppedComing)
	if s.StoppedCounted > 0 {
		fmt.Fprintf(w, "; %d still counted, leaving the count from %s to %s\n", s.StoppedCounted,
			s.FirstLeaving.Local().Format("2006-01-02"), s.LastLeaving.Local().Format("2006-01-02"))
		fmt.Fprintf(w, "Leaving in 7 days:  %d", s.Leaving7d)
	}
	fmt.Fprintln(w)
	if s.Conflicts > 0 {
		fmt.Fprintf(w, "Shared machine IDs: %d (marked !): one CMID from several workstations or addresses;\n", s.Conflicts)
		fmt.Fprintln(w, "                    an image that was not generalized (sysprep) keeps the count at 1")
	}
	tally := func(label string, list []statusapi.SummaryCount, total int) {
		fmt.Fprintln(w, label)
		if len(list) == 0 {
			fmt.Fprintln(w, "  none")
		}
		for _, c := range list {
			fmt.Fprintf(w, "  %-40s %8d", cut(c.Name, 40), c.Clients)
			if c.Counted > 0 {
				fmt.Fprintf(w, " (%d counted)", c.Counted)
			}
			fmt.Fprintln(w)
		}
		if total > len(list) {
			fmt.Fprintf(w, "  and %d more\n", total-len(list))
		}
	}
	tally("By product:", s.Products, len(s.Products))
	tally("By network:", s.Networks, s.NetworksTotal)
	if s.OtherClients > 0 {
		fmt.Fprintf(w, "(%d clients in products or networks beyond the tally's bounds are in the totals only)\n", s.OtherClients)
	}
}

// Column widths of the narrow table: 16+15+15+20+8+10 plus 2-space gaps
// is 94 columns.
const (
	colWorkstation = 15
	colAddress     = 15
	colProduct     = 20
)

// cut shortens s to n characters, marking the cut with "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func shortTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func shortDate(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02")
}

// printClientTable streams GET /clients's JSON into a table, 1000 rows at
// a time (the wide table's columns align within each block). It returns
// the next-page cursor.
func printClientTable(w io.Writer, body io.Reader, wide bool) (string, error) {
	br := &rowBound{r: body, max: maxListingRow}
	dec := json.NewDecoder(br)
	expect := func(want json.Delim) error {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("reading the listing: %w", err)
		}
		if d, ok := t.(json.Delim); !ok || d != want {
			return fmt.Errorf("reading the listing: unexpected %v", t)
		}
		return nil
	}
	if err := expect('{'); err != nil {
		return "", err
	}
	if t, err := dec.Token(); err != nil || t != "clients" {
		return "", fmt.Errorf("reading the listing: no clients member")
	}
	if err := expect('['); err != nil {
		return "", err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := func() {
		if wide {
			fmt.Fprintln(tw, "LAST REQUEST\tWORKSTATION\tADDRESS\tPRODUCT\tEDITION\tSTATE\tCOUNTED UNTIL\tFIRST REQUEST\tREQUESTS\tLAST RESULT\tCMID\tSEEN AS")
		} else {
			fmt.Fprintf(tw, "%-16s  %-*s  %-*s  %-*s  %-8s  %s\n", "LAST REQUEST", colWorkstation, "WORKSTATION",
				colAddress, "ADDRESS", colProduct, "PRODUCT", "STATE", "UNTIL")
		}
	}
	header()
	n, conflicts := 0, 0
	for dec.More() {
		var r statusapi.ClientRow
		if err := dec.Decode(&r); err != nil {
			return "", fmt.Errorf("reading the listing: %w", err)
		}
		br.n = 0
		n++
		r.Escape()
		state := r.State
		if r.CMIDConflict != "" {
			state += "!"
			conflicts++
		}
		product := r.Product
		if product == "" {
			product = r.CountedID
		}
		if wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", shortTime(r.LastRequest), r.Workstation, r.Address,
				product, r.Edition, state, shortDate(r.CountedUntil), shortTime(r.FirstRequest), r.Requests, r.LastResult,
				r.CMID, seenAs(&r))
		} else {
			fmt.Fprintf(tw, "%-16s  %-*s  %-*s  %-*s  %-8s  %s\n", shortTime(r.LastRequest),
				colWorkstation, cut(r.Workstation, colWorkstation), colAddress, cut(r.Address, colAddress),
				colProduct, cut(product, colProduct), state, shortDate(r.CountedUntil))
		}
		if n%1000 == 0 {
			if err := tw.Flush(); err != nil {
				return "", err
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return "", err
	}
	if err := expect(']'); err != nil {
		return "", err
	}
	next := ""
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("reading the listing: %w", err)
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			return "", fmt.Errorf("reading the listing: %w", err)
		}
		switch t {
		case "next":
			if _, err := inventory.DecodeCursor(v); err != nil {
				return "", fmt.Errorf("the endpoint sent a next-page cursor that is not one: %q", printable.Escape(v))
			}
			next = v
		case "error":
			return "", fmt.Errorf("the listing is incomplete: %s", printable.Escape(v))
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "(no clients match)")
	}
	if conflicts > 0 {
		fmt.Fprintln(w, "! machine ID also seen from another workstation or address (--wide shows them)")
	}
	return next, nil
}

// seenAs lists a conflicting machine ID's names and addresses.
func seenAs(r *statusapi.ClientRow) string {
	if r.CMIDConflict == "" {
		return ""
	}
	return strings.Join(r.SeenAs, ", ") + " from " + strings.Join(r.SeenFrom, ", ")
}

// maxListingRow bounds what the command reads for one row of a listing
// (a real row is under 2 KiB): whatever answers at --admin cannot make it
// buffer without end.
const maxListingRow = 1 << 20

// rowBound fails a read once more than max bytes were read since n was
// last reset (after each row).
type rowBound struct {
	r      io.Reader
	n, max int
}

func (b *rowBound) Read(p []byte) (int, error) {
	if b.n > b.max {
		return 0, fmt.Errorf("a row of the listing is larger than %d bytes: is --admin a kms-responder?", b.max)
	}
	n, err := b.r.Read(p)
	b.n += n
	return n, err
}
