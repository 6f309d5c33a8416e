package audit

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// maxCorefile bounds the Corefile read.
const maxCorefile = 1 << 20

// Block is one vlmcs block of a Corefile: its zones, scrub zones and the
// arguments of its approve lines.
type Block struct {
	// Where is "file:line" of the vlmcs directive.
	Where   string
	Zones   []string
	Scrub   []string
	Approve []string
	// Ports are the arguments of its ports line (none: the default, 1688).
	Ports []string
}

// ReadCorefile reads the vlmcs blocks of a Corefile, its {$VAR} and
// {%VAR%} placeholders replaced from env (see Substitute).
func ReadCorefile(path string, env map[string]string) ([]Block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCorefile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxCorefile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxCorefile)
	}
	return ParseCorefile(path, Substitute(data, env))
}

// envPlaceholder matches CoreDNS's environment placeholders.
var envPlaceholder = regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)\}|\{%([A-Za-z_][A-Za-z0-9_]*)%\}`)

// Substitute replaces {$VAR} and {%VAR%} in a Corefile's text as CoreDNS
// does at start, taking each value from env first (the service's
// environment file) and else from this process's environment.
func Substitute(data []byte, env map[string]string) []byte {
	return envPlaceholder.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := envPlaceholder.FindSubmatch(m)
		name := string(sub[1])
		if name == "" {
			name = string(sub[2])
		}
		if v, ok := env[name]; ok {
			return []byte(v)
		}
		return []byte(os.Getenv(name))
	})
}

// maxEnvFile bounds the environment file read.
const maxEnvFile = 1 << 20

// ReadEnvFile reads a systemd EnvironmentFile= (KEY=VALUE lines, # and ;
// comments, optional export, values optionally in single or double
// quotes). Errors carry file:line.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxEnvFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxEnvFile)
	}
	return ParseEnvFile(path, data)
}

// ParseEnvFile parses an environment file's text (ReadEnvFile).
func ParseEnvFile(name string, data []byte) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !validEnvName(k) {
			return nil, fmt.Errorf("%s:%d: want NAME=VALUE", name, i+1)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		} else if j := strings.Index(v, " #"); j >= 0 {
			v = strings.TrimSpace(v[:j])
		}
		env[k] = v
	}
	return env, nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ParseCorefile finds the vlmcs blocks in a Corefile's text with CoreDNS's
// own lexer and returns their zones (the directive's arguments, else the
// server block's keys), scrub zones and approve arguments. Errors carry
// file:line.
func ParseCorefile(name string, data []byte) ([]Block, error) {
	sbs, err := caddyfile.Parse(name, bytes.NewReader(data), nil)
	if err != nil {
		return nil, err
	}
	var out []Block
	for _, sb := range sbs {
		toks, ok := sb.Tokens["vlmcs"]
		if !ok {
			continue
		}
		d := caddyfile.NewDispenserTokens(name, toks)
		for d.Next() {
			b := Block{Where: fmt.Sprintf("%s:%d", d.File(), d.Line())}
			for _, z := range d.RemainingArgs() {
				b.Zones = append(b.Zones, canonical(z))
			}
			if len(b.Zones) == 0 {
				for _, k := range sb.Keys {
					b.Zones = append(b.Zones, canonical(zoneOfKey(k)))
				}
			}
			for d.NextBlock() {
				switch d.Val() {
				case "approve":
					args := d.RemainingArgs()
					if len(args) == 0 {
						return nil, d.Errf("approve needs at least one NAME, ADDRESS or CIDR")
					}
					b.Approve = append(b.Approve, args...)
				case "ports":
					b.Ports = append(b.Ports, d.RemainingArgs()...)
				case "scrub":
					for _, z := range d.RemainingArgs() {
						b.Scrub = append(b.Scrub, canonical(z))
					}
				default:
					d.RemainingArgs()
				}
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no vlmcs block", name)
	}
	return out, nil
}

// zoneOfKey strips a server block key's scheme and port ("dns://corp.test:53").
func zoneOfKey(k string) string {
	if _, rest, ok := strings.Cut(k, "://"); ok {
		k = rest
	}
	if i := strings.LastIndex(k, ":"); i >= 0 && !strings.Contains(k[:i], ":") {
		k = k[:i]
	}
	return k
}

// BlockFor returns the block whose zones hold domain (the longest match).
func BlockFor(blocks []Block, domain string) (Block, bool) {
	var (
		best  Block
		bestN = -1
		d     = canonical(domain)
	)
	for _, b := range blocks {
		for _, z := range b.Zones {
			if (d == z || strings.HasSuffix(d, "."+z) || z == ".") && len(z) > bestN {
				best, bestN = b, len(z)
			}
		}
	}
	return best, bestN >= 0
}
