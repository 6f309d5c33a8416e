package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/kmsdns/kmsdns/responder/catalog"
)

func runCatalog(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, usageError{err}
	}
	return exitOK, catalog.Default().Write(stdout)
}
