// Command kms-responder is a KMS host for Windows and Office volume
// activation that registers itself with the kmsdns CoreDNS plugin.
//
// Subcommands:
//
//	serve     run the KMS responder (TCP 1688) and register it in DNS
//	activate  activate one product against one host, as a Windows client would
//	discover  find hosts through _VLMCS._TCP SRV records and activate against the first that serves
//	status    show what a running responder serves (like slmgr /dlv on a KMS host)
//	clients   list the clients a running responder has seen: product, address, count standing
//	bench     load-generate activations and report throughput and latency
//	catalog   list every host key group and the products it activates
//	completion print a bash or zsh completion script
//	ledger    check the durable ledger (ledger check --data DIR), acknowledge a quarantine
//	audit     find every KMS host DNS publishes, classify it and say how to fix it
//	doctor    walk one client's discovery and activation and name the failing step
//	version   print the kmsdns version, commit and date (also --version)
//	check-files check files against serve's owner and mode rules
//
// kmsdns grants no licence: run it only for products your organization is
// licensed for under volume licensing.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exit codes shared by activate, discover and doctor (audit adds exitFound).
const (
	exitOK       = 0
	exitError    = 1
	exitLowCount = 2
	exitUsage    = 64
)

// usageError marks a command-line or configuration mistake; main exits 64 for it.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error)
}

func commands() []command {
	return []command{
		{"serve", "run the KMS responder and register it in DNS", runServe},
		{"activate", "activate one product against one KMS host", runActivate},
		{"discover", "find KMS hosts by DNS SRV and activate against the first that serves", runDiscover},
		{"status", "show the state of a running responder", runStatus},
		{"clients", "list the clients a running responder has seen (inventory)", runClients},
		{"bench", "load-generate activations against a host", runBench},
		{"catalog", "list host key groups and the products each activates", runCatalog},
		{"completion", "print a bash or zsh completion script", runCompletion},
		{"ledger", "check the ledger in a data directory (read-only; exit 1 when damaged), or acknowledge a quarantine", runLedger},
		{"audit", "find every KMS host DNS publishes, classify it (rogue, stale, healthy) and say how to fix it", runAudit},
		{"doctor", "walk one client's discovery and activation and name the step that fails", runDoctor},
		{"version", "print the kmsdns version, commit and date (also --version)", runVersion},
		{"check-files", "check files against serve's owner and mode rules (the unit's credential sources)", runCheckFiles},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		code, err := c.run(ctx, args[1:], stdout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "kms-responder %s: %v\n", c.name, err)
			var ue usageError
			if errors.As(err, &ue) {
				return exitUsage
			}
			if code == exitOK {
				code = exitError
			}
		}
		return code
	}
	fmt.Fprintf(stderr, "kms-responder: unknown command %q\n", args[0])
	printUsage(stderr)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: kms-responder <command> [flags]   (kms-responder <command> -h for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "kmsdns grants no licence: run it only for products your organization is licensed for under volume licensing.")
}
