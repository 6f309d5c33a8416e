package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/kmsdns/kmsdns/responder/catalog"
)

func runCatalog(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print the catalog as JSON")
	overlay := fs.String("catalog-file", "", "apply this catalog overlay `file` (rows from it are marked)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kms-responder catalog [--json] [FILTER]")
		fmt.Fprintln(stderr, "\nLists the KMS host key groups (CSVLKs) and the products each activates, with their GVLKs.")
		fmt.Fprintln(stderr, "FILTER keeps the groups whose name or description contains it, or that activate a product")
		fmt.Fprintln(stderr, "it names (edition, counted ID, GVLK, or any GUID: CSVLK, application, counted ID, SKU).")
		fmt.Fprintln(stderr, "\nExamples:")
		fmt.Fprintln(stderr, "  kms-responder catalog                          every group")
		fmt.Fprintln(stderr, "  kms-responder catalog \"Office LTSC 2024\"        groups that activate it")
		fmt.Fprintln(stderr, "  kms-responder catalog windows-server-2025 --json")
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	var filter string
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK, nil
		}
		return exitUsage, usageError{err}
	}
	switch rest := fs.Args(); len(rest) {
	case 0:
	case 1:
		filter = rest[0]
	default:
		// Allow the flag after the filter: catalog "Office" --json.
		if len(rest) == 2 && rest[1] == "--json" || len(rest) == 2 && rest[1] == "-json" {
			filter, *jsonOut = rest[0], true
		} else {
			return exitUsage, usagef("one FILTER at most (quote it if it has spaces), got %q", rest)
		}
	}
	cat, err := loadCatalog(*overlay)
	if err != nil {
		return exitUsage, usageError{err}
	}
	groups := cat.Matching(filter)
	all := filter == ""
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(cat.Document(groups, all))
	}
	if len(groups) == 0 {
		fmt.Fprintf(stderr, "kms-responder catalog: no host key group matches %q (try a shorter filter, or none to list all)\n", filter)
		return exitError, nil
	}
	return exitOK, cat.WriteGroups(stdout, groups, all)
}

// loadCatalog returns the embedded catalog, with the overlay file applied
// when path is set.
func loadCatalog(path string) (*catalog.Catalog, error) {
	if path == "" {
		return catalog.Default(), nil
	}
	return catalog.LoadOverlay(path)
}
