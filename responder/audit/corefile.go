package audit

import (
	"bytes"
	"fmt"
	"io"
	"os"
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
}

// ReadCorefile reads the vlmcs blocks of a Corefile.
func ReadCorefile(path string) ([]Block, error) {
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
	return ParseCorefile(path, data)
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
