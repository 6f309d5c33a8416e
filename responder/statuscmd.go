package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/responder/statusapi"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("status", stderr)
	var af adminClientFlags
	af.bind(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, usageError{err}
	}
	ac, err := af.client()
	if err != nil {
		return exitUsage, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := ac.Get(ctx, "/status", nil)
	if err != nil {
		return exitError, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return exitError, err
	}
	if *asJSON {
		// The endpoint's document, re-encoded: refused unless it is
		// JSON, and every string's text printable (see peertext.go).
		var out bytes.Buffer
		if err := copyJSONBytes(&out, body); err != nil {
			return exitError, fmt.Errorf("%s/status: %w", ac.Host(), err)
		}
		_, err := stdout.Write(out.Bytes())
		return exitOK, err
	}
	var r statusapi.Report
	if err := json.Unmarshal(body, &r); err != nil {
		return exitError, fmt.Errorf("%s/status: %w", ac.Host(), err)
	}
	r.Escape()
	printStatus(stdout, &r)
	return exitOK, nil
}

// wrapList prints items after first, separated by "; ", wrapping at 100
// columns with continuation lines indented like first.
func wrapList(w io.Writer, first string, items []string) {
	indent := strings.Repeat(" ", len(first))
	line := first
	for i, it := range items {
		if i < len(items)-1 {
			it += ";"
		}
		if len(line) > len(indent) && len(line)+1+len(it) > 100 {
			fmt.Fprintln(w, strings.TrimRight(line, " "))
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += it
	}
	fmt.Fprintln(w, line)
}

// printStatus prints r for people, as slmgr /dlv would.
func printStatus(w io.Writer, r *statusapi.Report) {
	fmt.Fprintf(w, "Key Management Service (kms-responder) since %s\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "Listening on:          %s (%d open connections)\n", strings.Join(r.Listeners, ", "), r.OpenConnections)
	fmt.Fprintf(w, "Activation interval:   %d minutes\n", r.ActivationInterval)
	fmt.Fprintf(w, "Renewal interval:      %d minutes\n", r.RenewalInterval)
	fmt.Fprintf(w, "KMS host HwId:         %s\n", r.HwID)
	for _, g := range r.Groups {
		fmt.Fprintf(w, "\nHost key group:        %s\n", g.Name)
		fmt.Fprintf(w, "KMS host ePID:         %s\n", g.EPID)
		wrapList(w, "Activates:             ", g.Activates)
	}
	fmt.Fprintln(w)
	// As slmgr /dlv says it: the count is of distinct client machines seen in the last 30
	// days (each counted once however often it asks), not of requests.
	for _, c := range r.Counts {
		fmt.Fprintf(w, "Current count (%s): %d distinct clients in the last 30 days (cap %d; %s)\n", c.Application, c.Count, c.Cap, c.Thresholds)
	}
	for _, e := range r.Expiring {
		fmt.Fprintf(w, "Clients that will expire from the count in the next 7 days (%s): %d of %d", e.Application, e.Leaving, e.Count)
		if e.First != nil {
			fmt.Fprintf(w, ", the first on %s", e.First.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	var total, failed uint64
	for k, v := range r.Requests {
		total += v
		if !strings.Contains(k, "S_OK") {
			failed += v
		}
	}
	if total == 0 {
		fmt.Fprintln(w, "Requests:              none yet")
	} else {
		fmt.Fprintf(w, "Requests:              %d total, %d answered, %d refused\n", total, total-failed, failed)
		for _, k := range slices.Sorted(maps.Keys(r.Requests)) {
			fmt.Fprintf(w, "  %-46s %d\n", k+":", r.Requests[k])
		}
		fmt.Fprintln(w, "Requests by the licence state clients reported:")
		for _, k := range slices.Sorted(maps.Keys(r.LicenseStates)) {
			fmt.Fprintf(w, "  %-46s %d\n", k+":", r.LicenseStates[k])
		}
	}
	if r.LastRequest != nil {
		fmt.Fprintf(w, "Last request:          %s\n", r.LastRequest.Format(time.RFC3339))
	}
	if r.Ledger.Disabled {
		fmt.Fprintln(w, "Ledger:                disabled (--ledger=false, benchmarks only: counts are lost at restart)")
	} else {
		fmt.Fprintf(w, "Ledger:                %s (healthy: %t) %s\n", r.Ledger.Path, r.Ledger.Healthy, r.Ledger.LastError)
	}
	if len(r.Registration) == 0 {
		fmt.Fprintln(w, "DNS registration:      off")
	}
	for _, g := range r.Registration {
		state := "not registered"
		if g.Registered {
			state = "registered, lease " + g.Lease
		}
		if g.Suspended != "" {
			state = "withdrawn: " + g.Suspended
		}
		fmt.Fprintf(w, "DNS registration:      %s at %s (%s in %s): %s", g.Target, g.Server, "_vlmcs._tcp", g.Zone, state)
		if g.LastError != "" {
			fmt.Fprintf(w, "; last error: %s", g.LastError)
		}
		fmt.Fprintln(w)
	}
}
