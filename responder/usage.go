package main

import (
	"flag"
	"fmt"
	"io"
)

// commandHelp is what `kms-responder COMMAND -h` prints before the flags: the
// usage line, what the command does and examples a person can paste.
type commandHelp struct {
	usage, about string
	examples     []string
}

// helps holds every subcommand's help, keyed by its FlagSet name.
var helps = map[string]commandHelp{
	"serve": {"kms-responder serve --group NAME [--listen ADDR:PORT]... [--data DIR] [--config FILE] [flags]",
		"Runs the KMS host (TCP 1688) and keeps it registered in DNS. Every flag is also a key of the --config YAML file.",
		[]string{
			"kms-responder serve --group windows-server-2025 --group office-ltsc-2024",
			"kms-responder serve --config /etc/kms-responder/config.yaml",
			"kms-responder serve --group windows-server-2025 --dns-server 10.1.0.53:53 --zone corp.example --target kms1 --tsig-key-file /etc/kms-responder/tsig.key",
		}},
	"activate": {"kms-responder activate --server HOST[:PORT] (--product NAME | --app GUID --kms-id GUID [--sku GUID]) [flags]",
		"Activates one product against one KMS host as a Windows client does, with this machine's client ID (counted once however often it runs).\nExit 0 activated, 2 counted below the threshold, 1 error, 64 usage.",
		[]string{
			`kms-responder activate --server kms1.corp.example --product "Windows 11 Enterprise"`,
			`kms-responder activate --server 127.0.0.1:1688 --product "Office LTSC Professional Plus 2024" --json`,
		}},
	"discover": {"kms-responder discover --dns HOST:PORT --domain DOMAIN (--product NAME | --lookup-only) [flags]",
		"Finds KMS hosts as a Windows client does (_VLMCS._TCP SRV, priority and weight, fail-over) and activates against the first that serves.\nExit codes as activate; NXDOMAIN, NODATA and no host reachable are reported as 0x8007232B, 0x8007251D and 0xC004F074.",
		[]string{
			`kms-responder discover --dns 10.1.0.53 --domain corp.example --product "Windows 11 Enterprise"`,
			`kms-responder discover --dns 127.0.0.1:1053 --domain example.test --lookup-only`,
		}},
	"status": {"kms-responder status [--admin ADDR|URL] [--json]",
		"Shows what a running serve serves, as slmgr /dlv does on a Windows KMS host: groups, ePIDs, counts, requests, DNS registration.",
		[]string{"kms-responder status", "kms-responder status --admin 127.0.0.2:9688 --json"}},
	"bench": {"kms-responder bench --server HOST:PORT [--connections N] [--requests M] [--clients N] [flags]",
		"Load-generates activations and reports throughput and latency. Every distinct client adds to the host's count for 30 days:\nit refuses a target off loopback unless given --allow-remote.",
		[]string{"kms-responder bench --server 127.0.0.1:1688 --connections 64 --requests 100000 --clients 1000"}},
	"audit": {"kms-responder audit --dns HOST:PORT --domain DOMAIN... [--approve RULE... | --corefile FILE] [flags]",
		"Finds every KMS host a DNS publishes, asks each what it is over the KMS protocol, classifies it (rogue, stale, healthy)\nand says how to fix it. Exit 0 clean, 3 rogue or stale records found, 1 error.",
		[]string{
			"kms-responder audit --dns 10.1.0.10 --domain corp.example --corefile /etc/coredns-kmsdns/Corefile",
			"kms-responder audit --dns 10.1.0.10 --domain corp.example --approve kms1.corp.example --axfr --nsupdate-out delete.txt",
		}},
	"doctor": {"kms-responder doctor [--dns HOST:PORT --domain DOMAIN...] --product NAME [flags]",
		"Walks the steps a Windows client takes to activate and stops at the first that fails, naming the cause and the fix\n(the answer to 0xC004F074). Without --dns/--domain it reads /etc/resolv.conf.",
		[]string{`kms-responder doctor --dns 10.1.0.53 --domain corp.example --product "Windows 11 Pro"`}},
	"clients": {"kms-responder clients [--admin ADDR|URL] [filters] [--format table|json|csv] [--wide]",
		"Lists the clients a running serve has seen (one row per machine and application), with a summary first.",
		[]string{"kms-responder clients --since 7d", "kms-responder clients --state counted --format csv > clients.csv"}},
	"version": {"kms-responder version [--json]   (also: kms-responder --version)",
		"Prints the kmsdns version, commit and commit date of this binary.",
		[]string{"kms-responder version", "kms-responder version --json"}},
	"check-files": {"kms-responder check-files [--secret FILE]... [--policy FILE]...",
		"Checks files against the owner and mode rules serve applies, as the user running it: secrets accessible by no one else,\npolicy files writable by no one else, in directories no one else can change. Exit 0 all pass, 1 otherwise.\nThe systemd unit runs it as root on the sources of its LoadCredential= copies.",
		[]string{"kms-responder check-files --policy /etc/kms-responder/config.yaml --secret /etc/kms-responder/tsig.key"}},
	"ledger check": {"kms-responder ledger check [--data DIR] [--json]",
		"Verifies a ledger's log and store, read-only. Exit 0 intact, 1 damaged (the message says what and what to do).",
		[]string{"kms-responder ledger check --data /var/lib/kms-responder"}},
}

// newFlagSet returns the FlagSet of a subcommand whose -h prints its help:
// usage line, description, examples, then the flags.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printHelp(stderr, fs) }
	return fs
}

// printHelp prints fs's help.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	h, ok := helps[fs.Name()]
	if !ok {
		fmt.Fprintf(w, "usage: kms-responder %s [flags]\n", fs.Name())
	} else {
		fmt.Fprintf(w, "usage: %s\n\n%s\n", h.usage, h.about)
		if len(h.examples) > 0 {
			fmt.Fprintln(w, "\nExamples:")
			for _, e := range h.examples {
				fmt.Fprintf(w, "  %s\n", e)
			}
		}
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.PrintDefaults()
}
