package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/tsigkey"
	"github.com/kmsdns/kmsdns/responder/audit"
)

// exitFound is audit's exit code when rogue or stale records were found.
const exitFound = 3

// auditFlags are audit's command-line settings.
type auditFlags struct {
	dns, corefile, identify        string
	envFile                        string
	domains, approve, ports        stringList
	axfr, jsonOut, fix, yes        bool
	probeLoopback                  bool
	parallel                       int
	timeout                        time.Duration
	prometheus, nsupdate, psScript string
	tsigKeyFile                    string
	gss                            gssFlags
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("audit", stderr)
	var f auditFlags
	f.domains.dst, f.approve.dst, f.ports.dst = new([]string), new([]string), new([]string)
	fs.StringVar(&f.dns, "dns", "", "DNS server `HOST:PORT` to ask (an AD domain controller; also the target of --fix)")
	fs.Var(f.domains, "domain", "`DOMAIN` whose _VLMCS._TCP records to audit, repeatable (default with --corefile: its scrub zones)")
	fs.BoolVar(&f.axfr, "axfr", false, "also transfer each domain's zone (AXFR) and audit _vlmcs._tcp at every name in it")
	fs.Var(f.approve, "approve", "approved hosts, in the vlmcs plugin's `approve` syntax (NAME, *.SUFFIX, ADDRESS, CIDR, NAME=ADDRESS), repeatable (none: every host is unapproved, an inventory)")
	fs.StringVar(&f.corefile, "corefile", "", "read the approve rules from the vlmcs block(s) of this Corefile `file`")
	fs.StringVar(&f.envFile, "env-file", defaultEnvFile, "with --corefile: the service's environment `file`, whose values fill the Corefile's {$VAR}s (as the unit's EnvironmentFile=)")
	fs.Var(f.ports, "ports", "ports audit may connect to, in the vlmcs plugin's `ports` syntax (PORT or LOW-HIGH), repeatable (default: the Corefile's ports line, else 1688); records at other ports are reported, not probed")
	fs.BoolVar(&f.probeLoopback, "probe-loopback", false, "also connect to loopback and link-local addresses (a test bed on one machine); by default they are reported, not probed")
	fs.StringVar(&f.identify, "identify", string(audit.IdentifyUnapproved), "which hosts get KMS requests beyond the bind: unapproved, all or none (approved hosts' counts are left alone by default)")
	fs.IntVar(&f.parallel, "parallel", audit.DefaultParallel, "probes run at once")
	fs.DurationVar(&f.timeout, "timeout", audit.DefaultTimeout, "deadline per host and per DNS exchange")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&f.prometheus, "prometheus", "", "also write the result to `FILE` in node_exporter's textfile-collector format")
	fs.StringVar(&f.nsupdate, "nsupdate-out", "", "write an nsupdate script deleting exactly the bad records to `FILE`")
	fs.StringVar(&f.psScript, "powershell-out", "", "write Remove-DnsServerResourceRecord lines deleting them to `FILE` (Windows DNS)")
	fs.BoolVar(&f.fix, "fix", false, "delete the bad records by RFC 2136 UPDATE at --dns (after showing them and asking), then audit again")
	fs.BoolVar(&f.yes, "yes", false, "with --fix: do not ask")
	fs.StringVar(&f.tsigKeyFile, "tsig-key-file", "", "TSIG key `file` for --fix and --axfr (BIND key clause or ALG:NAME:SECRET); unsigned without it")
	f.gss.register(fs)
	if help, err := parseFlags(fs, args); help {
		return exitOK, nil
	} else if err != nil {
		return exitUsage, err
	}
	cfg, err := f.config()
	if err != nil {
		return exitUsage, err
	}
	if f.fix && !f.yes && !isTerminal(os.Stdin) {
		return exitUsage, usagef("--fix asks before deleting, and stdin is not a terminal: give --yes to delete without asking (nothing was deleted)")
	}
	cfg.Progress = progressLine(stderr)
	if cfg.Approver == nil && cfg.Approvers == nil {
		fmt.Fprintln(stderr, "audit: no --approve or --corefile: every host counts as unapproved (an inventory)")
	}

	rep, err := audit.Run(ctx, cfg)
	if err != nil {
		return exitError, err
	}
	if err := f.writeOutputs(rep, stdout); err != nil {
		return exitError, err
	}
	if f.fix && !rep.Clean() {
		rep, err = f.runFix(ctx, cfg, rep, stdout, stderr)
		if err != nil {
			return exitError, err
		}
	}
	switch {
	case !rep.Clean():
		return exitFound, nil
	case len(rep.Problems) > 0:
		return exitError, nil
	}
	return exitOK, nil
}

// config turns the flags into an audit configuration.
func (f *auditFlags) config() (audit.Config, error) {
	cfg := audit.Config{Server: f.dns, AXFR: f.axfr, Parallel: f.parallel, Timeout: f.timeout, ProbeLocal: f.probeLoopback}
	var portArgs []string
	if f.dns == "" {
		return cfg, usagef("--dns HOST:PORT is required: the DNS server clients ask (e.g. a domain controller)")
	}
	if _, err := audit.ServerAddr(f.dns); err != nil {
		return cfg, usagef("--dns: %v", err)
	}
	if f.parallel < 1 || f.parallel > 4096 {
		return cfg, usagef("--parallel %d: want 1..4096", f.parallel)
	}
	if f.timeout <= 0 {
		return cfg, usagef("--timeout must be positive")
	}
	id, err := audit.ParseIdentify(f.identify)
	if err != nil {
		return cfg, usagef("--%v", err)
	}
	cfg.Identify = id
	cfg.Domains = *f.domains.dst
	switch {
	case len(*f.approve.dst) > 0 && f.corefile != "":
		return cfg, usagef("give --approve or --corefile, not both")
	case len(*f.approve.dst) > 0:
		rules, err := audit.ParseRules(*f.approve.dst)
		if err != nil {
			return cfg, usagef("--approve: %v", err)
		}
		cfg.Approver, cfg.Rules = rules, *f.approve.dst
	case f.corefile != "":
		env, err := f.readEnv()
		if err != nil {
			return cfg, err
		}
		blocks, err := audit.ReadCorefile(f.corefile, env)
		if err != nil {
			return cfg, usagef("--corefile: %v", err)
		}
		cfg.Approvers = map[string]audit.Approver{}
		for _, b := range blocks {
			rules, err := audit.ParseRules(b.Approve)
			if err != nil {
				return cfg, usagef("--corefile: vlmcs block at %s: %v", b.Where, err)
			}
			for _, z := range b.Zones {
				cfg.Approvers[z] = rules
			}
			cfg.Rules = append(cfg.Rules, b.Approve...)
			portArgs = append(portArgs, b.Ports...)
			if len(*f.domains.dst) == 0 {
				cfg.Domains = append(cfg.Domains, b.Scrub...)
			}
		}
		for _, d := range cfg.Domains {
			if _, ok := audit.BlockFor(blocks, d); !ok {
				return cfg, usagef("--corefile: no vlmcs block of %s covers %s (its approve rules would judge it)", f.corefile, d)
			}
		}
	case f.fix || f.nsupdate != "" || f.psScript != "":
		return cfg, usagef("deleting records needs to know which hosts are approved: --approve RULE... or --corefile FILE (the vlmcs block's approve rules)")
	}
	if len(cfg.Domains) == 0 {
		return cfg, usagef("--domain DOMAIN is required (the Corefile names no scrub zone)")
	}
	if err := f.gss.check(f.tsigKeyFile); err != nil {
		return cfg, err
	}
	if len(*f.ports.dst) > 0 {
		portArgs = *f.ports.dst
	}
	ports, err := audit.ParsePorts(portArgs)
	if err != nil {
		return cfg, usagef("--ports: %v", err)
	}
	cfg.Ports = ports
	if f.tsigKeyFile != "" {
		keys, err := tsigkey.ReadFile(f.tsigKeyFile)
		if err == nil && len(keys) != 1 {
			err = fmt.Errorf("%s holds %d keys; give a file with the one key the server takes", f.tsigKeyFile, len(keys))
		}
		if err != nil {
			return cfg, usagef("--tsig-key-file: %v", err)
		}
		cfg.TSIG = &keys[0]
	}
	return cfg, nil
}

// defaultEnvFile is the packaged coredns-kmsdns service's environment
// file (its unit's EnvironmentFile=).
const defaultEnvFile = "/etc/coredns-kmsdns/env"

// readEnv reads --env-file; the default file may be missing (audit is not
// run on the DNS host), a file given by name may not.
func (f *auditFlags) readEnv() (map[string]string, error) {
	env, err := audit.ReadEnvFile(f.envFile)
	switch {
	case err == nil:
		return env, nil
	case errors.Is(err, fs.ErrNotExist) && f.envFile == defaultEnvFile:
		return nil, nil
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("--env-file: %w (the package installs it mode 0600: run audit as root, or give --env-file a readable copy)", err)
	}
	return nil, fmt.Errorf("--env-file: %w", err)
}

// writeOutputs prints the report and writes the requested files.
func (f *auditFlags) writeOutputs(rep *audit.Report, stdout io.Writer) error {
	if f.jsonOut {
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		rep.WriteTable(stdout)
	}
	files := []struct {
		path  string
		write func(io.Writer)
	}{{f.prometheus, rep.WritePrometheus}, {f.nsupdate, f.gss.nsupdateWriter(rep)}, {f.psScript, rep.WritePowerShell}}
	for _, o := range files {
		if o.path == "" {
			continue
		}
		if err := audit.WriteFileAtomic(o.path, o.write); err != nil {
			return fmt.Errorf("writing %s: %w", o.path, err)
		}
	}
	return nil
}

// runFix shows what it will delete, asks, deletes by RFC 2136 and audits again.
func (f *auditFlags) runFix(ctx context.Context, cfg audit.Config, rep *audit.Report, stdout, stderr io.Writer) (*audit.Report, error) {
	removals, skipped := rep.Removals()
	server, _ := audit.ServerAddr(f.dns)
	how := signedBy(cfg.TSIG)
	if f.gss.on {
		how = "signed by GSS-TSIG with " + f.gss.settings().Credentials.String()
	}
	for _, s := range skipped {
		fmt.Fprintf(stderr, "not deleted: %s\n", s)
	}
	if len(removals) == 0 {
		return rep, nil
	}
	fmt.Fprintf(stderr, "\n--fix will delete %d record(s) at %s by RFC 2136 UPDATE (%s):\n", len(removals), server, how)
	for _, r := range removals {
		fmt.Fprintf(stderr, "  %s %s %s   (zone %s)\n", r.Owner, r.Type, r.RData(), r.Zone)
	}
	if !f.yes {
		fmt.Fprint(stderr, "Delete them? [y/N] ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(stderr, "nothing deleted")
			return rep, nil
		}
	}
	failed := false
	deletions := audit.Delete
	if f.gss.on {
		deletions = func(ctx context.Context, server string, _ *audit.TSIGKey, removals []audit.Removal, timeout time.Duration) []audit.Deletion {
			return audit.DeleteGSS(ctx, server, f.gss.settings(), removals, timeout)
		}
	}
	for _, d := range deletions(ctx, server, cfg.TSIG, removals, f.timeout) {
		if d.Err != nil {
			failed = true
			fmt.Fprintf(stderr, "zone %s: %v\n", d.Zone, d.Err)
			continue
		}
		fmt.Fprintf(stderr, "zone %s: deleted %d record(s)\n", d.Zone, len(d.Removals))
	}
	fmt.Fprintln(stderr, "auditing again:")
	again, err := audit.Run(ctx, cfg)
	if err != nil {
		return rep, err
	}
	if err := f.writeOutputs(again, stdout); err != nil {
		return again, err
	}
	if failed {
		return again, fmt.Errorf("some deletions failed (see above); --powershell-out writes commands for a Windows DNS server")
	}
	return again, nil
}

func signedBy(k *audit.TSIGKey) string {
	if k == nil {
		return "unsigned"
	}
	return "signed with TSIG key " + k.String()
}

// progressLine returns a progress callback drawing one line on stderr when
// it is a terminal (nil otherwise), at most ten times a second.
func progressLine(w io.Writer) func(done, total int) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return nil
	}
	var (
		mu   sync.Mutex
		last time.Time
	)
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if done < total && time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		fmt.Fprintf(f, "\raudit: probed %d/%d addresses", done, total)
		if done == total {
			fmt.Fprint(f, "\r\033[K")
		}
	}
}
