package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/coredns/caddy"
)

// Caddy replaces an unset {$VAR} in a Corefile with nothing, and the
// leftover text fails far from its cause ("expecting data after last
// colon", "secret is not base64", "invalid address: \"\""). The envcheck
// loader runs before CoreDNS's own loaders and stops startup with the
// file, line and the variable to set instead.
func init() {
	caddy.RegisterCaddyfileLoader("envcheck", caddy.LoaderFunc(checkCorefileEnv))
}

// checkCorefileEnv reads the Corefile CoreDNS is about to load (-conf, else
// ./Corefile) and fails when it references an unset or empty environment
// variable. It never loads the file itself (it returns nil input), so the
// stock loaders still do.
func checkCorefileEnv(serverType string) (caddy.Input, error) {
	path := "Corefile"
	if f := flag.Lookup("conf"); f != nil && f.Value.String() != "" {
		path = f.Value.String()
	}
	if path == "stdin" {
		return nil, nil
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, nil // CoreDNS's loader reports it
	}
	defer file.Close()
	return nil, unsetEnvReferences(path, file, os.LookupEnv)
}

// unsetEnvReferences returns an error naming every {$VAR} and {%VAR%} in the
// text of file (comments excluded) whose variable lookup reports unset or
// empty, with its line.
func unsetEnvReferences(path string, file *os.File, lookup func(string) (string, bool)) error {
	var problems []string
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := stripComment(sc.Text())
		seen := map[string]bool{}
		for _, ref := range envReferences(text) {
			if seen[ref.text] {
				continue
			}
			seen[ref.text] = true
			if v, ok := lookup(ref.name); !ok || v == "" {
				problems = append(problems, fmt.Sprintf("%s:%d: %s is not set: set %s in CoreDNS's environment (for systemd, its EnvironmentFile)",
					path, line, ref.text, ref.name))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// envRef is one environment reference in a line: its text and variable.
type envRef struct{ text, name string }

// envReferences finds the {$NAME} and {%NAME%} references caddy expands.
func envReferences(line string) []envRef {
	var refs []envRef
	for _, form := range [][2]string{{"{$", "}"}, {"{%", "%}"}} {
		rest := line
		for {
			i := strings.Index(rest, form[0])
			if i < 0 {
				break
			}
			j := strings.Index(rest[i+len(form[0]):], form[1])
			if j <= 0 {
				break
			}
			name := rest[i+len(form[0]) : i+len(form[0])+j]
			refs = append(refs, envRef{text: form[0] + name + form[1], name: name})
			rest = rest[i+len(form[0])+j+len(form[1]):]
		}
	}
	return refs
}

// stripComment drops a Corefile comment: from a # that starts a token to the
// end of the line.
func stripComment(line string) string {
	for i, c := range line {
		if c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}
