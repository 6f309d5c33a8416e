package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// classTitle heads each class's group in the table.
var classTitle = map[Class]string{
	ClassRogue:        "ROGUE: unapproved KMS hosts that answer (clients may activate against them)",
	ClassRogueDead:    "ROGUE, DEAD: stale records of unapproved hosts",
	ClassStale:        "STALE: approved hosts that do not answer",
	ClassNotKMS:       "NOT A KMS HOST: something else answers at the record's address and port",
	ClassUnresolvable: "UNRESOLVABLE: the record's target has no address",
	ClassHealthy:      "HEALTHY: approved KMS hosts that answer",
}

// WriteJSON writes the report as indented JSON (the --json schema).
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the report for people: one group per class, rogue
// first, each finding with its reason and fix.
func (rep *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "Audit of _vlmcs._tcp in %s at %s (%d findings in %.1fs)\n", strings.Join(trimDots(rep.Domains), ", "),
		rep.DNSServer, len(rep.Findings), rep.Duration)
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
	for _, c := range Classes {
		var fs []Finding
		for _, f := range rep.Findings {
			if f.Class == c {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d)\n", classTitle[c], len(fs))
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  RECORD\tTARGET\tADDRESS\tAPPROVED")
		for _, f := range fs {
			rec := trimDot(f.Owner)
			if len(f.Aliases) > 0 {
				rec = trimDot(f.Name) + " -> " + rec
			}
			addr := f.Address
			if addr == "" {
				addr = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s:%d\t%s\t%s\n", rec, trimDot(f.Target), f.Port, addr, yesNo(f.Approved))
		}
		tw.Flush()
		for _, f := range fs {
			if c == ClassHealthy && len(f.Apps) == 0 {
				continue
			}
			fmt.Fprintf(w, "  %s:%d (%s): %s\n", trimDot(f.Target), f.Port, orDash(f.Address), f.Reason)
			for _, a := range f.Apps {
				if a.Status == "answered" {
					fmt.Fprintf(w, "      %s ePID %s, HwId %s\n", appName(a.Application), a.EPID, a.HwID)
				}
			}
			if f.Fix != nil && c == ClassRogue {
				fmt.Fprintf(w, "      fix: %s\n", f.Fix.Summary)
				for _, g := range f.Fix.GVLKs {
					fmt.Fprintf(w, "        GVLK %-34s %s\n", g.Edition, g.Key)
				}
				for _, s := range f.Fix.Steps {
					fmt.Fprintf(w, "        - %s\n", s)
				}
			}
		}
	}
	bad := rep.Bad()
	fmt.Fprintf(w, "\nSummary:")
	for _, c := range Classes {
		fmt.Fprintf(w, " %s %d", c, rep.Summary[c])
	}
	fmt.Fprintln(w)
	switch {
	case len(bad) == 0 && len(rep.Problems) == 0:
		fmt.Fprintln(w, "Clean: every record names an approved KMS host that answers.")
		return
	case len(bad) == 0 && len(rep.Findings) == 0:
		fmt.Fprintf(w, "Incomplete: %d lookup(s) failed (the problems above) and no record was found: nothing was audited there.\n", len(rep.Problems))
		return
	case len(bad) == 0:
		fmt.Fprintf(w, "Incomplete: %d lookup(s) failed (the problems above); the records found name approved KMS hosts that answer, but what failed was not audited.\n", len(rep.Problems))
		return
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(w, "Incomplete: %d lookup(s) failed (the problems above); more records may need deleting.\n", len(rep.Problems))
	}
	removals, skipped := rep.Removals()
	fmt.Fprintf(w, "%d record(s) to delete: write the commands with --nsupdate-out FILE or --powershell-out FILE, or apply them with --fix.\n", len(removals))
	for _, s := range skipped {
		fmt.Fprintf(w, "  not deleted: %s\n", s)
	}
	fmt.Fprintln(w, "Until they are gone, the vlmcs plugin hides them from clients:")
	rep.WriteScrubBlock(w, rep.rules)
}

func trimDot(s string) string { return strings.TrimSuffix(s, ".") }

func trimDots(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = trimDot(s)
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteScrubBlock writes the vlmcs block that hides the bad records from
// clients while they are being removed: the audited domains as scrub
// zones, approve rules (the given ones, else the healthy targets), and
// scrub_unhealthy for approved hosts that stopped answering.
func (rep *Report) WriteScrubBlock(w io.Writer, approve []string) {
	zones := map[string]bool{}
	for _, d := range rep.Domains {
		zones[trimDot(d)] = true
	}
	for _, f := range rep.Findings {
		zones[trimDot(f.Domain)] = true
	}
	if len(approve) == 0 {
		seen := map[string]bool{}
		for _, f := range rep.Findings {
			if f.Class == ClassHealthy && !seen[f.Target] {
				seen[f.Target] = true
				approve = append(approve, trimDot(f.Target))
			}
		}
	}
	zs := make([]string, 0, len(zones))
	for z := range zones {
		zs = append(zs, z)
	}
	sort.Strings(zs)
	fmt.Fprintf(w, "    vlmcs %s {\n", strings.Join(zs, " "))
	if len(approve) > 0 {
		fmt.Fprintf(w, "        approve %s\n", strings.Join(approve, " "))
	} else {
		fmt.Fprintln(w, "        approve YOUR-KMS-HOSTS   # no healthy approved host was found")
	}
	fmt.Fprintf(w, "        scrub %s\n", strings.Join(zs, " "))
	fmt.Fprintln(w, "        scrub_unhealthy")
	fmt.Fprintln(w, "    }")
}

// WriteNSUpdate writes an nsupdate script that deletes exactly the
// removals (Removals: one RR each, by its full data, only inside the
// audited domains), one update per zone.
func (rep *Report) WriteNSUpdate(w io.Writer) {
	removals, skipped := rep.Removals()
	fmt.Fprintf(w, "; kmsdns audit %s: delete %d record(s) through which clients reach no healthy approved KMS host.\n",
		rep.Started.Format(time.RFC3339), len(removals))
	fmt.Fprintln(w, "; Run: nsupdate [-k KEYFILE] THIS-FILE   (each delete removes one record, matched by its full data)")
	for _, s := range skipped {
		fmt.Fprintf(w, "; not deleted: %s\n", oneLine(s))
	}
	host, port := splitServer(rep.DNSServer)
	for _, zone := range removalZones(removals) {
		fmt.Fprintf(w, "server %s %s\n", host, port)
		fmt.Fprintf(w, "zone %s\n", zone)
		for _, r := range removals {
			if r.Zone != zone {
				continue
			}
			for _, b := range r.Records {
				fmt.Fprintf(w, "; %s SRV %s\n", b.Owner, b.RData())
			}
			fmt.Fprintf(w, "update delete %s %s %s\n", r.Owner, r.Type, r.RData())
		}
		fmt.Fprintln(w, "send")
	}
}

// oneLine keeps a comment on one line.
func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// WritePowerShell writes Remove-DnsServerResourceRecord lines for a
// Windows DNS server, one per bad record, matched by its full data.
func (rep *Report) WritePowerShell(w io.Writer) {
	removals, skipped := rep.Removals()
	fmt.Fprintf(w, "# kmsdns audit %s: delete %d record(s) through which clients reach no healthy approved KMS host.\n",
		rep.Started.Format(time.RFC3339), len(removals))
	fmt.Fprintln(w, "# Run on (or with -ComputerName against) a DNS server of the zone, as a DNS admin.")
	fmt.Fprintln(w, "# (Active Directory-integrated zones that accept secure updates only take updates signed with")
	fmt.Fprintln(w, "# Kerberos (GSS-TSIG): --fix --gss-tsig deletes there too, as this script does.)")
	fmt.Fprintln(w, "$ErrorActionPreference = 'Stop'")
	for _, s := range skipped {
		fmt.Fprintf(w, "# not deleted: %s\n", oneLine(s))
	}
	for _, m := range removals {
		zone := trimDot(m.Zone)
		name := relativeName(m.Owner, m.Zone)
		switch m.Type {
		case "CNAME":
			fmt.Fprintf(w, "Get-DnsServerResourceRecord -ZoneName '%s' -Name '%s' -RRType CName | Where-Object { $_.RecordData.HostNameAlias -eq '%s' } | Remove-DnsServerResourceRecord -ZoneName '%s' -Force\n",
				psQuote(zone), psQuote(name), psQuote(m.Target), psQuote(zone))
		case "DNAME":
			fmt.Fprintf(w, "Get-DnsServerResourceRecord -ZoneName '%s' -Name '%s' -RRType DName | Where-Object { $_.RecordData.DomainNameAlias -eq '%s' } | Remove-DnsServerResourceRecord -ZoneName '%s' -Force\n",
				psQuote(zone), psQuote(name), psQuote(m.Target), psQuote(zone))
		default:
			r := m.SRV
			fmt.Fprintf(w, "Get-DnsServerResourceRecord -ZoneName '%s' -Name '%s' -RRType Srv | Where-Object { $_.RecordData.DomainName -eq '%s' -and $_.RecordData.Port -eq %d -and $_.RecordData.Priority -eq %d -and $_.RecordData.Weight -eq %d } | Remove-DnsServerResourceRecord -ZoneName '%s' -Force\n",
				psQuote(zone), psQuote(name), psQuote(r.Target), r.Port, r.Priority, r.Weight, psQuote(zone))
		}
	}
}

// psQuote escapes a single-quoted PowerShell string.
func psQuote(s string) string { return strings.ReplaceAll(s, "'", "''") }

// relativeName returns owner relative to zone ("@" at the apex).
func relativeName(owner, zone string) string {
	o, z := strings.ToLower(owner), strings.ToLower(zone)
	if o == z {
		return "@"
	}
	return strings.TrimSuffix(o, "."+z)
}

func splitServer(s string) (string, string) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return s, "53"
	}
	return strings.Trim(s[:i], "[]"), s[i+1:]
}

// WritePrometheus writes the report in node_exporter's textfile-collector
// format: kmsdns_audit_records{class,domain} for every class and domain
// (0 included) and kmsdns_audit_last_run_timestamp_seconds.
func (rep *Report) WritePrometheus(w io.Writer) {
	counts := map[string]map[Class]int{}
	domains := append([]string{}, rep.Domains...)
	for _, f := range rep.Findings {
		d := f.Domain
		if counts[d] == nil {
			counts[d] = map[Class]int{}
		}
		counts[d][f.Class]++
	}
	for d := range counts {
		found := false
		for _, x := range domains {
			found = found || x == d
		}
		if !found {
			domains = append(domains, d)
		}
	}
	sort.Strings(domains)
	fmt.Fprintln(w, "# HELP kmsdns_audit_records _vlmcs._tcp SRV findings (record, target, address) of the last audit, by class.")
	fmt.Fprintln(w, "# TYPE kmsdns_audit_records gauge")
	for _, d := range domains {
		for _, c := range Classes {
			fmt.Fprintf(w, "kmsdns_audit_records{class=\"%s\",domain=\"%s\"} %d\n", labelValue(string(c)), labelValue(trimDot(d)), counts[d][c])
		}
	}
	fmt.Fprintln(w, "# HELP kmsdns_audit_problems Lookups or transfers that failed in the last audit.")
	fmt.Fprintln(w, "# TYPE kmsdns_audit_problems gauge")
	fmt.Fprintf(w, "kmsdns_audit_problems %d\n", len(rep.Problems))
	fmt.Fprintln(w, "# HELP kmsdns_audit_duration_seconds How long the last audit took.")
	fmt.Fprintln(w, "# TYPE kmsdns_audit_duration_seconds gauge")
	fmt.Fprintf(w, "kmsdns_audit_duration_seconds %g\n", rep.Duration)
	fmt.Fprintln(w, "# HELP kmsdns_audit_last_run_timestamp_seconds When the last audit finished (Unix time).")
	fmt.Fprintln(w, "# TYPE kmsdns_audit_last_run_timestamp_seconds gauge")
	fmt.Fprintf(w, "kmsdns_audit_last_run_timestamp_seconds %d\n", rep.Started.Add(time.Duration(rep.Duration*float64(time.Second))).Unix())
}

// labelValue escapes a Prometheus label value (backslash, quote, newline).
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// WriteFileAtomic writes a file through a temporary file in the same
// directory and a rename, so a reader (node_exporter) never sees half of it.
func WriteFileAtomic(path string, write func(io.Writer)) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	write(f)
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
