package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kmsdns/kmsdns/plugin/pkg/fileperm"
	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
	"github.com/kmsdns/kmsdns/responder/ledger"
)

// ledgerOpenError adds to a failure to open the ledger what the operator
// can do about it.
func ledgerOpenError(err error, dir string) error {
	var d *ledger.DamageError
	if errors.As(err, &d) && filepath.Base(d.Path) == ledger.FileName {
		return fmt.Errorf("%w\nThe ledger's store is damaged; nothing was changed. Run `kms-responder ledger check --data %s` for the full picture, "+
			"then restore ledger.db from a copy (a damaged store cannot be quarantined: it holds the host identity; responder/README.md, Recovery)", err, dir)
	}
	if errors.As(err, &d) {
		return fmt.Errorf("%w\nThe ledger is damaged; nothing was changed. Run `kms-responder ledger check --data %s` for the full picture, "+
			"then restore the data directory from a copy, or start with --ledger-quarantine to set damaged log segments aside "+
			"and run unhealthy (responder/README.md, Recovery)", err, dir)
	}
	return err
}

// openLedgerDir opens the data directory for `ledger check` and `ledger
// acknowledge` under serve's rules (fileperm.OpenDir: owner, mode, the
// directories above it and the links on the way), refusing with serve's
// message, and creating nothing: a directory another user could swap is
// neither called intact nor written. The commands work through the
// returned descriptor only.
func openLedgerDir(dir string) (*os.Root, error) {
	return fileperm.OpenExistingDir("data directory", dir)
}

// runLedger is `kms-responder ledger SUBCOMMAND`.
func runLedger(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	if len(args) > 0 && args[0] == "acknowledge" {
		return runLedgerAcknowledge(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: kms-responder ledger check [--data DIR] [--json]\n       kms-responder ledger acknowledge [--data DIR]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return exitOK, nil
		}
		return exitUsage, usagef("ledger: want the subcommand check or acknowledge")
	}
	fs := newFlagSet("ledger check", stderr)
	data := fs.String("data", defaultServeConfig().Data, "data `directory` of the ledger to check")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, usageError{err}
	}
	if fs.NArg() > 0 {
		return exitUsage, usagef("ledger check: unexpected argument %q", fs.Arg(0))
	}
	root, err := openLedgerDir(*data)
	if err != nil {
		return exitError, err
	}
	defer root.Close()
	rep, err := ledger.CheckRoot(*data, root)
	if err != nil {
		return exitError, err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return exitError, err
		}
	} else {
		for _, f := range rep.Files {
			fmt.Fprintf(stdout, "%-8s %s: %s\n", f.State, inert(f.Path), inert(f.Detail))
		}
		if rep.OK {
			fmt.Fprintf(stdout, "ledger %s is intact: %d clients, %d refusal records, applied through sequence %d\n", *data, rep.Clients, rep.Refusals, rep.Applied)
		} else {
			fmt.Fprintf(stdout, "ledger %s is DAMAGED: serve refuses to start on it; see responder/README.md, Recovery\n", *data)
		}
	}
	if !rep.OK {
		return exitError, nil
	}
	return exitOK, nil
}

// runLedgerAcknowledge is `kms-responder ledger acknowledge`: the
// operator accepts the loss a quarantine recorded, and serve runs healthy
// again. It prints what is acknowledged.
func runLedgerAcknowledge(args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("ledger acknowledge", stderr)
	data := fs.String("data", defaultServeConfig().Data, "data `directory` of the ledger")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, usageError{err}
	}
	if fs.NArg() > 0 {
		return exitUsage, usagef("ledger acknowledge: unexpected argument %q", fs.Arg(0))
	}
	root, err := openLedgerDir(*data)
	if err != nil {
		return exitError, err
	}
	defer root.Close()
	was, err := ledger.AcknowledgeRoot(*data, root, 0)
	if err != nil {
		return exitError, err
	}
	if was == "" {
		fmt.Fprintf(stdout, "ledger %s: no recorded damage to acknowledge\n", *data)
		return exitOK, nil
	}
	fmt.Fprintf(stdout, "acknowledged; serve runs healthy again on ledger %s. The loss was:\n%s\nThe *.corrupt files stay until you remove them.\n", *data, inert(was))
	return exitOK, nil
}

// inert replaces what a terminal would act on (the shared printable rule),
// line by line, in text read from the data directory: ledger.db is a file,
// and its bytes reach the operator's terminal.
func inert(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable.Replace(l, '?')
	}
	return strings.Join(lines, "\n")
}
