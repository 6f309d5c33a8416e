package main

import (
	"context"
	"fmt"
	"io"

	"github.com/kmsdns/kmsdns/plugin/pkg/fileperm"
)

// runCheckFiles checks files against the rules serve applies (secret or
// policy; plugin/pkg/fileperm), as whoever runs it: the shipped unit runs
// it as root before the start (ExecStartPre=+) on the sources of its
// LoadCredential= copies, which serve itself only sees as systemd's
// private copies. Exit 0 when every file passes, 1 otherwise (each problem
// on its own line, with what to run).
func runCheckFiles(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("check-files", stderr)
	var secrets, policies []string
	fs.Var(stringList{&secrets}, "secret", "`file` holding a secret (TSIG key, admin token, a config with tsig_key): owned by root or this user, no access for group or others; repeatable")
	fs.Var(stringList{&policies}, "policy", "`file` deciding policy (config, catalog overlay): owned by root or this user, writable by no one else; repeatable")
	if help, err := parseFlags(fs, args); help || err != nil {
		return exitOK, err
	}
	if len(secrets)+len(policies) == 0 {
		return exitUsage, usagef("give the files to check: --secret FILE or --policy FILE")
	}
	err := fileperm.CheckSources(fileperm.Secret, secrets...)
	if perr := fileperm.CheckSources(fileperm.Policy, policies...); perr != nil {
		if err == nil {
			err = perr
		} else {
			err = fmt.Errorf("%w\n%w", err, perr)
		}
	}
	if err != nil {
		return exitError, err
	}
	for _, p := range secrets {
		fmt.Fprintf(stdout, "ok %s (secret)\n", p)
	}
	for _, p := range policies {
		fmt.Fprintf(stdout, "ok %s (policy)\n", p)
	}
	return exitOK, nil
}
