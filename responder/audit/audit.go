// Package audit finds every KMS host a DNS publishes under _vlmcs._tcp,
// asks each one what it is over the real protocol, classifies it against
// the vlmcs plugin's approval rules and says how to clean up: the
// automated form of Microsoft's manual procedure for removing accidental
// KMS hosts. It also holds Doctor, which walks one client's discovery
// and activation step by step and names the first step that fails.
//
// Audit is read-only: it queries the one DNS server it is given (and
// transfers zones from it with AXFR when asked), and connects only to the
// addresses and ports the SRV records name. Deleting records is a separate,
// explicit step (Delete) that the command line guards with a prompt.
package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kmsdns/kmsdns/responder/catalog"
)

// Class is what an audit concluded about one (record, target, address).
type Class string

// The classes, in the order a person acts on them.
const (
	// ClassRogue: not approved, and a KMS host answers there.
	ClassRogue Class = "rogue"
	// ClassRogueDead: not approved, and nothing answers (a stale rogue record).
	ClassRogueDead Class = "rogue-dead"
	// ClassStale: approved, but nothing answers (the host is gone or down).
	ClassStale Class = "stale"
	// ClassNotKMS: something accepts the TCP connection but does not bind
	// as a KMS host (a bind NACK, another protocol, a closed connection).
	ClassNotKMS Class = "not-kms"
	// ClassUnresolvable: the target has no address.
	ClassUnresolvable Class = "unresolvable"
	// ClassNotProbed: audit did not connect: a port outside the ports rule,
	// or an address no client can reach the host by (loopback, link-local,
	// multicast); the vlmcs plugin serves neither.
	ClassNotProbed Class = "not-probed"
	// ClassHealthy: approved, and a KMS host answers.
	ClassHealthy Class = "healthy"
)

// Classes lists every class in the order reports group them.
var Classes = []Class{ClassRogue, ClassRogueDead, ClassStale, ClassNotKMS, ClassUnresolvable, ClassNotProbed, ClassHealthy}

// Bad reports whether a record of this class should be deleted (or hidden
// by a scrub zone): everything but ClassHealthy.
func (c Class) Bad() bool { return c != ClassHealthy }

// rank orders classes for reports.
func (c Class) rank() int {
	if i := slices.Index(Classes, c); i >= 0 {
		return i
	}
	return len(Classes)
}

// Identify says which hosts get KMS requests (beyond the RPC bind).
type Identify string

// Identify modes.
const (
	// IdentifyUnapproved sends KMS requests to unapproved hosts only, so an
	// audit adds no client to the counts of approved hosts (default).
	IdentifyUnapproved Identify = "unapproved"
	// IdentifyAll sends KMS requests to every host that binds.
	IdentifyAll Identify = "all"
	// IdentifyNone only binds.
	IdentifyNone Identify = "none"
)

// ParseIdentify parses an --identify value.
func ParseIdentify(s string) (Identify, error) {
	switch Identify(s) {
	case IdentifyUnapproved, IdentifyAll, IdentifyNone:
		return Identify(s), nil
	}
	return "", fmt.Errorf("identify %q: want unapproved, all or none", s)
}

// Limits and defaults.
const (
	// DefaultParallel bounds concurrent probes.
	DefaultParallel = 64
	// DefaultTimeout bounds connecting to and talking with one address.
	DefaultTimeout = 3 * time.Second
	// maxRecords bounds the SRV records one audit handles.
	maxRecords = 100000
)

// Config is what to audit and how.
type Config struct {
	// Server is the DNS server ("host:port") asked for every record.
	Server string
	// Domains are searched for _VLMCS._TCP.<domain>; with AXFR each is also
	// transferred and searched for _vlmcs._tcp at every name.
	Domains []string
	AXFR    bool
	// TSIG signs zone transfers when set.
	TSIG *TSIGKey
	// Approver holds the approval rules; nil approves nothing.
	Approver Approver
	// Approvers, when set, hold the rules per domain (a Corefile's vlmcs
	// blocks); a record uses the entry of its domain or the closest
	// enclosing one, else Approver.
	Approvers map[string]Approver
	Identify  Identify
	// Parallel bounds concurrent probes (DefaultParallel when 0).
	Parallel int
	// Timeout bounds each probe and DNS exchange (DefaultTimeout when 0).
	Timeout time.Duration
	// Rules is the approve rules' text, for the scrub block reports print.
	Rules []string
	// Ports is the ports rule: audit connects only to these ports (the
	// zero value allows DefaultPort only).
	Ports Ports
	// ProbeLocal lets audit connect to loopback and link-local addresses
	// (a test bed on one machine); without it they are reported only.
	ProbeLocal bool
	// Catalog decodes ePIDs (catalog.Default() when nil).
	Catalog *catalog.Catalog
	// Progress, when set, is called after each probe with the number done
	// and the total.
	Progress func(done, total int)
}

// approverFor returns the rules that judge records of domain.
func (cfg *Config) approverFor(domain string) Approver {
	d := canonical(domain)
	for {
		if a, ok := cfg.Approvers[d]; ok {
			return a
		}
		i := strings.Index(d, ".")
		if i < 0 || i == len(d)-1 {
			break
		}
		d = d[i+1:]
	}
	if a, ok := cfg.Approvers["."]; ok {
		return a
	}
	return cfg.Approver
}

// Report is the result of one audit. Its JSON form is the --json schema.
type Report struct {
	// Schema names the JSON layout; it changes only with a new name.
	Schema    string    `json:"schema"`
	Started   time.Time `json:"started"`
	Duration  float64   `json:"duration_seconds"`
	DNSServer string    `json:"dns_server"`
	Domains   []string  `json:"domains"`
	AXFR      bool      `json:"axfr"`
	Identify  Identify  `json:"identify"`
	// Summary counts findings per class (every class present, 0 included).
	Summary map[Class]int `json:"summary"`
	// Findings are sorted by class (rogue first), then domain and record.
	Findings []Finding `json:"findings"`
	// Problems are lookups that failed (a domain with no answer, a
	// refused transfer); the audit still reports what it found.
	Problems []string `json:"problems"`

	rules []string
}

// SchemaV1 is the current Report.Schema.
const SchemaV1 = "kmsdns-audit/v1"

// Record is one SRV record that names a KMS host.
type Record struct {
	// Domain is the domain a client searches (the owner minus _vlmcs._tcp,
	// or the --domain whose alias led to the record).
	Domain string `json:"domain"`
	// Name is the name asked for (or found in a transfer).
	Name string `json:"name"`
	// Aliases is the CNAME/DNAME chain from Name to Owner, empty without one.
	Aliases []string `json:"aliases"`
	// Owner is the owner name of the SRV record itself.
	Owner string `json:"owner"`
	// Zone is the zone holding Owner: where a deletion goes.
	Zone string `json:"zone"`
	// Alias is the alias record at Name (or its DNAME) that leads to
	// Owner; nil without one. A fix deletes this alias, never a record at
	// the end of the chain.
	Alias    *Alias `json:"alias"`
	Source   string `json:"source"` // "query" or "axfr"
	Target   string `json:"target"`
	Port     uint16 `json:"port"`
	Priority uint16 `json:"priority"`
	Weight   uint16 `json:"weight"`
	TTL      uint32 `json:"ttl"`
}

// Alias is a CNAME or DNAME record that an audited name passes.
type Alias struct {
	// Type is "CNAME" or "DNAME".
	Type   string `json:"type"`
	Owner  string `json:"owner"`
	Target string `json:"target"`
	// Zone is the zone holding Owner ("" when unknown).
	Zone string `json:"zone"`
}

// key identifies the record's RR for deduplication.
func (r Record) key() string {
	k := fmt.Sprintf("%s %d %d %d %s", strings.ToLower(r.Owner), r.Priority, r.Weight, r.Port, strings.ToLower(r.Target))
	if r.Alias != nil {
		k += " via " + aliasKey(r.Alias)
	}
	return k
}

// RData is the SRV record's data in presentation form.
func (r Record) RData() string {
	return fmt.Sprintf("%d %d %d %s", r.Priority, r.Weight, r.Port, r.Target)
}

// Finding is what the audit found at one (record, target, address).
type Finding struct {
	Record
	// Address is the address probed; empty when the target has none.
	Address  string `json:"address"`
	Approved bool   `json:"approved"`
	Class    Class  `json:"class"`
	// Reason says in words why the finding has its class.
	Reason string `json:"reason"`
	// Probe is what the connection and bind showed.
	Probe Probe `json:"probe"`
	// Apps holds the KMS answers per application (empty when not identified).
	Apps []AppAnswer `json:"apps"`
	// Workstation is set when the host holds a client KMS host key (a
	// Windows client key group): the classic accidental KMS host.
	Workstation bool `json:"workstation"`
	// Fix says what to do about the host, when anything.
	Fix *Advice `json:"fix"`
}

// Run audits cfg's domains and returns the report; it fails only when
// nothing could be looked up at all (for example a malformed server or no
// domain).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Domains) == 0 {
		return nil, errors.New("audit: no domain to audit")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Catalog == nil {
		cfg.Catalog = catalog.Default()
	}
	if cfg.Identify == "" {
		cfg.Identify = IdentifyUnapproved
	}
	server, err := ServerAddr(cfg.Server)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{Schema: SchemaV1, Started: start.UTC(), DNSServer: server, AXFR: cfg.AXFR, Identify: cfg.Identify,
		Summary: map[Class]int{}, Findings: []Finding{}, Problems: []string{}, rules: cfg.Rules}
	for _, d := range cfg.Domains {
		rep.Domains = append(rep.Domains, canonical(d))
	}
	r := &resolver{server: server, timeout: cfg.Timeout, tsig: cfg.TSIG}
	found, problems := find(ctx, r, rep.Domains, cfg.AXFR)
	rep.Problems = append(rep.Problems, problems...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Findings = probeAll(ctx, cfg, r, found)
	for _, c := range Classes {
		rep.Summary[c] = 0
	}
	for _, f := range rep.Findings {
		rep.Summary[f.Class]++
	}
	sortFindings(rep.Findings)
	rep.Duration = time.Since(start).Seconds()
	return rep, ctx.Err()
}

// sortFindings orders findings by class, domain, owner, target, address.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Class != b.Class {
			return a.Class.rank() < b.Class.rank()
		}
		for _, p := range [][2]string{{a.Domain, b.Domain}, {a.Owner, b.Owner}, {a.Target, b.Target}, {a.Address, b.Address}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return a.Port < b.Port
	})
}

// Bad returns the findings whose records should go, one per SRV record
// (a record is bad when none of its target's addresses is healthy).
func (rep *Report) Bad() []Record {
	good := map[string]bool{}
	for _, f := range rep.Findings {
		if !f.Class.Bad() {
			good[f.key()] = true
		}
	}
	var out []Record
	seen := map[string]bool{}
	for _, f := range rep.Findings {
		k := f.key()
		if good[k] || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f.Record)
	}
	return out
}

// Clean reports whether the audit found nothing to fix.
func (rep *Report) Clean() bool { return len(rep.Bad()) == 0 }

// progress counts finished probes for Config.Progress.
type progress struct {
	mu    sync.Mutex
	done  int
	total int
	fn    func(done, total int)
}

func (p *progress) tick() {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	p.done++
	d := p.done
	p.mu.Unlock()
	p.fn(d, p.total)
}
