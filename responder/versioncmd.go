package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/kmsdns/kmsdns/plugin/pkg/version"
)

// runVersion prints the kmsdns version, commit and commit date of this
// binary (`kms-responder version`, also `kms-responder --version`).
func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("version", stderr)
	asJSON := fs.Bool("json", false, "print the version fields as JSON")
	if help, err := parseFlags(fs, args); help || err != nil {
		return exitOK, err
	}
	v := version.Get()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(v)
	}
	_, err := fmt.Fprintf(stdout, "kms-responder %s\n", v)
	return exitOK, err
}
