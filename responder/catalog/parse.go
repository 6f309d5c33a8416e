package catalog

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Column layouts of the data tables.
var (
	appsCols     = []string{"key", "id", "name", "cache_size", "source"}
	countedCols  = []string{"key", "id", "name", "app", "kind", "threshold", "protocol", "flags", "source"}
	buildsCols   = []string{"build", "platform_id", "release_date", "name", "source"}
	groupsCols   = []string{"name", "app", "csvlk", "epid_group", "keyid_min", "keyid_max", "min_build", "derived", "includes", "activates", "description", "source"}
	editionsCols = []string{"name", "aliases", "sku", "counted", "gvlk", "protocol", "source"}
)

var (
	keyRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)
	gvlkRE = regexp.MustCompile(`^[BCDFGHJKMNPQRTVWXY2346789]{5}(-[BCDFGHJKMNPQRTVWXY2346789]{5}){4}$`)
)

// Parse builds a catalog from data tables keyed by file name (FileApps,
// FileCounted, FileBuilds, FileGroups, FileEditions). It checks every row
// and every cross-reference and reports the first problem as a *ParseError
// naming file and line.
func Parse(files map[string][]byte) (*Catalog, error) {
	tables, err := readTables(files)
	if err != nil {
		return nil, err
	}
	return parseTables(tables)
}

// readTables reads every table Parse needs from files.
func readTables(files map[string][]byte) (map[string]*table, error) {
	for name := range files {
		if columnsOf(name) == nil {
			return nil, &ParseError{File: name, Msg: "unexpected table"}
		}
	}
	tables := make(map[string]*table, len(tableFiles))
	for _, name := range tableFiles {
		data, ok := files[name]
		if !ok {
			return nil, &ParseError{File: name, Msg: "missing table"}
		}
		t, err := readTable(name, data, columnsOf(name))
		if err != nil {
			return nil, err
		}
		tables[name] = t
	}
	return tables, nil
}

// columnsOf returns the column layout of a table file, or nil.
func columnsOf(name string) []string {
	switch name {
	case FileApps:
		return appsCols
	case FileCounted:
		return countedCols
	case FileBuilds:
		return buildsCols
	case FileGroups:
		return groupsCols
	case FileEditions:
		return editionsCols
	}
	return nil
}

// parseTables builds the catalog from read tables, in dependency order.
func parseTables(tables map[string]*table) (*Catalog, error) {
	p := &parser{
		c: &Catalog{
			appByID:       map[guid.GUID]*Application{},
			countedByID:   map[guid.GUID]*CountedID{},
			groupByName:   map[string]*HostKeyGroup{},
			groupByCSVLK:  map[guid.GUID]*HostKeyGroup{},
			editionBySKU:  map[guid.GUID]*Edition{},
			editionByName: map[string]*Edition{},
			editionsByCID: map[guid.GUID][]*Edition{},
		},
		guids:      map[guid.GUID]string{},
		appByKey:   map[string]*Application{},
		countByKey: map[string]*CountedID{},
		countIndex: map[guid.GUID]int{},
	}
	steps := []struct {
		file  string
		fn    func(*table, row) error
		empty string // error when the table has no rows; "" if allowed
	}{
		{FileApps, p.app, "no applications"},
		{FileCounted, p.countedID, ""},
		{FileBuilds, p.build, "no host builds"},
		{FileGroups, p.group, "no host key groups"},
		{FileEditions, p.edition, ""},
	}
	for _, s := range steps {
		t := tables[s.file]
		if len(t.rows) == 0 && s.empty != "" {
			return nil, &ParseError{File: s.file, Msg: s.empty}
		}
		for _, r := range t.rows {
			if err := s.fn(t, r); err != nil {
				return nil, err
			}
		}
	}
	return p.c, nil
}

type parser struct {
	c          *Catalog
	guids      map[guid.GUID]string // every GUID defined so far → "file:line"
	appByKey   map[string]*Application
	countByKey map[string]*CountedID
	countIndex map[guid.GUID]int // counted ID → row order, for listing order
}

// defineGUID parses s as a GUID that must not have been defined before in
// any table.
func (p *parser) defineGUID(r row, col, s string) (guid.GUID, error) {
	id, err := guid.Parse(s)
	if err != nil {
		return id, r.errorf("column %s: %v", col, err)
	}
	if id.IsNil() {
		return id, r.errorf("column %s: nil GUID", col)
	}
	if where, dup := p.guids[id]; dup {
		return id, r.errorf("column %s: GUID %s already defined at %s", col, id, where)
	}
	p.guids[id] = fmt.Sprintf("%s:%d", r.file, r.line)
	return id, nil
}

func parseInt(r row, col, s string, lo, hi int64) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || (len(s) > 1 && s[0] == '0') || s[0] == '+' {
		return 0, r.errorf("column %s: %q is not a decimal integer", col, s)
	}
	if v < lo || v > hi {
		return 0, r.errorf("column %s: %d is outside %d..%d", col, v, lo, hi)
	}
	return v, nil
}

func parseKey(r row, col, s string) (string, error) {
	if !keyRE.MatchString(s) {
		return "", r.errorf("column %s: %q is not a lower-case name of letters, digits, '.' and '-'", col, s)
	}
	return s, nil
}

// list splits a comma-separated column; "-" is the empty list.
func list(s string) []string {
	if s == "-" {
		return nil
	}
	return strings.Split(s, ",")
}

func (p *parser) app(t *table, r row) error {
	key, err := parseKey(r, "key", t.get(r, "key"))
	if err != nil {
		return err
	}
	if _, dup := p.appByKey[key]; dup {
		return r.errorf("application key %q defined twice", key)
	}
	id, err := p.defineGUID(r, "id", t.get(r, "id"))
	if err != nil {
		return err
	}
	size, err := parseInt(r, "cache_size", t.get(r, "cache_size"), 1, 1000)
	if err != nil {
		return err
	}
	a := &Application{ID: id, Key: key, Name: t.get(r, "name"), CacheSize: int(size), Source: t.get(r, "source"), Overlay: r.file != t.file}
	p.appByKey[key] = a
	p.c.appByID[id] = a
	p.c.apps = append(p.c.apps, a)
	return nil
}

func (p *parser) countedID(t *table, r row) error {
	key, err := parseKey(r, "key", t.get(r, "key"))
	if err != nil {
		return err
	}
	if _, dup := p.countByKey[key]; dup {
		return r.errorf("counted ID key %q defined twice", key)
	}
	id, err := p.defineGUID(r, "id", t.get(r, "id"))
	if err != nil {
		return err
	}
	app, ok := p.appByKey[t.get(r, "app")]
	if !ok {
		return r.errorf("column app: unknown application %q", t.get(r, "app"))
	}
	kind := Kind(t.get(r, "kind"))
	switch kind {
	case KindClient, KindServer, KindOffice:
	default:
		return r.errorf("column kind: %q is not client, server or office", kind)
	}
	threshold, err := parseInt(r, "threshold", t.get(r, "threshold"), 1, 1000)
	if err != nil {
		return err
	}
	if 2*int(threshold) > app.CacheSize {
		return r.errorf("threshold %d needs a cache of %d but application %s keeps %d", threshold, 2*threshold, app.Key, app.CacheSize)
	}
	proto, err := parseInt(r, "protocol", t.get(r, "protocol"), 4, 6)
	if err != nil {
		return err
	}
	c := &CountedID{ID: id, Key: key, Name: t.get(r, "name"), AppID: app.ID, Kind: kind,
		Threshold: int(threshold), Protocol: int(proto), Source: t.get(r, "source"), Overlay: r.file != t.file}
	switch f := t.get(r, "flags"); f {
	case "-":
	case "retail":
		c.Retail = true
	case "preview":
		c.Preview = true
	case "azure":
		c.AzureOnly = true
	default:
		return r.errorf("column flags: %q is not -, retail, preview or azure", f)
	}
	p.countByKey[key] = c
	p.countIndex[id] = len(p.c.counted)
	p.c.countedByID[id] = c
	p.c.counted = append(p.c.counted, c)
	return nil
}

func (p *parser) build(t *table, r row) error {
	b, err := parseInt(r, "build", t.get(r, "build"), 1, 999999)
	if err != nil {
		return err
	}
	if n := len(p.c.builds); n > 0 && int(b) <= p.c.builds[n-1].Build {
		return r.errorf("build %d is not newer than the row before (%d); list builds oldest first", b, p.c.builds[n-1].Build)
	}
	plat, err := parseInt(r, "platform_id", t.get(r, "platform_id"), 1, 99999)
	if err != nil {
		return err
	}
	date := t.get(r, "release_date")
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return r.errorf("column release_date: %q is not a YYYY-MM-DD date", date)
	}
	p.c.builds = append(p.c.builds, HostBuild{Build: int(b), PlatformID: int(plat), ReleaseDate: date,
		Name: t.get(r, "name"), Source: t.get(r, "source"), Overlay: r.file != t.file})
	return nil
}

func (p *parser) group(t *table, r row) error {
	name, err := parseKey(r, "name", t.get(r, "name"))
	if err != nil {
		return err
	}
	if _, dup := p.c.groupByName[name]; dup {
		return r.errorf("host key group %q defined twice", name)
	}
	app, ok := p.appByKey[t.get(r, "app")]
	if !ok {
		return r.errorf("column app: unknown application %q", t.get(r, "app"))
	}
	g := &HostKeyGroup{Name: name, AppID: app.ID, Description: t.get(r, "description"), Source: t.get(r, "source"), Overlay: r.file != t.file}
	if s := t.get(r, "csvlk"); s != "-" {
		if g.CSVLKID, err = p.defineGUID(r, "csvlk", s); err != nil {
			return err
		}
	}
	epid, err := parseInt(r, "epid_group", t.get(r, "epid_group"), 0, 99999)
	if err != nil {
		return err
	}
	g.EPIDGroupID = int(epid)
	if g.KeyIDMin, err = parseInt(r, "keyid_min", t.get(r, "keyid_min"), 0, 999999999); err != nil {
		return err
	}
	if g.KeyIDMax, err = parseInt(r, "keyid_max", t.get(r, "keyid_max"), 0, 999999999); err != nil {
		return err
	}
	if g.KeyIDMin > g.KeyIDMax {
		return r.errorf("key-ID range %d..%d is empty", g.KeyIDMin, g.KeyIDMax)
	}
	mb, err := parseInt(r, "min_build", t.get(r, "min_build"), 1, 999999)
	if err != nil {
		return err
	}
	g.MinBuild = int(mb)
	known := false
	for _, b := range p.c.builds {
		known = known || b.Build == g.MinBuild
	}
	if !known {
		return r.errorf("column min_build: %d is not a build listed in %s", g.MinBuild, FileBuilds)
	}
	switch d := t.get(r, "derived"); d {
	case "true":
		g.Derived = true
	case "false":
	default:
		return r.errorf("column derived: %q is not true or false", d)
	}
	seen := map[guid.GUID]bool{}
	add := func(id guid.GUID) {
		if !seen[id] {
			seen[id] = true
			g.Activates = append(g.Activates, id)
		}
	}
	for _, inc := range list(t.get(r, "includes")) {
		sub, ok := p.c.groupByName[inc]
		if !ok {
			return r.errorf("column includes: %q is not a group defined above", inc)
		}
		if sub.AppID != g.AppID {
			return r.errorf("column includes: group %q belongs to another application", inc)
		}
		for _, ex := range g.Includes {
			if ex == inc {
				return r.errorf("column includes: %q listed twice", inc)
			}
		}
		g.Includes = append(g.Includes, inc)
		for _, id := range sub.Activates {
			add(id)
		}
	}
	own := map[string]bool{}
	for _, key := range list(t.get(r, "activates")) {
		cid, ok := p.countByKey[key]
		if !ok {
			return r.errorf("column activates: unknown counted ID %q", key)
		}
		if own[key] {
			return r.errorf("column activates: %q listed twice", key)
		}
		own[key] = true
		if cid.AppID != g.AppID {
			return r.errorf("column activates: counted ID %q belongs to another application", key)
		}
		if cid.Refusable() {
			return r.errorf("column activates: counted ID %q is retail, preview or Azure-only; no production host key activates it", key)
		}
		if seen[cid.ID] {
			return r.errorf("column activates: counted ID %q is already activated through an included group", key)
		}
		add(cid.ID)
	}
	if len(g.Activates) == 0 {
		return r.errorf("group activates nothing")
	}
	sort.SliceStable(g.Activates, func(i, j int) bool {
		return p.countIndex[g.Activates[i]] < p.countIndex[g.Activates[j]]
	})
	p.c.groupByName[name] = g
	if !g.CSVLKID.IsNil() {
		p.c.groupByCSVLK[g.CSVLKID] = g
	}
	p.c.groups = append(p.c.groups, g)
	return nil
}

func (p *parser) edition(t *table, r row) error {
	e := &Edition{Name: t.get(r, "name"), Source: t.get(r, "source"), Overlay: r.file != t.file}
	names := []string{strings.ToLower(e.Name)}
	for _, a := range list(t.get(r, "aliases")) {
		if _, err := parseKey(r, "aliases", a); err != nil {
			return err
		}
		e.Aliases = append(e.Aliases, a)
		names = append(names, a)
	}
	for _, n := range names {
		if other, dup := p.c.editionByName[n]; dup {
			return r.errorf("edition name or alias %q already used by %q", n, other.Name)
		}
	}
	var err error
	if e.SKUID, err = p.defineGUID(r, "sku", t.get(r, "sku")); err != nil {
		return err
	}
	cid, ok := p.countByKey[t.get(r, "counted")]
	if !ok {
		return r.errorf("column counted: unknown counted ID %q", t.get(r, "counted"))
	}
	e.CountedID, e.AppID = cid.ID, cid.AppID
	e.GVLK = t.get(r, "gvlk")
	if !gvlkRE.MatchString(e.GVLK) {
		return r.errorf("column gvlk: %q is not five groups of five product-key characters", e.GVLK)
	}
	proto, err := parseInt(r, "protocol", t.get(r, "protocol"), 4, 6)
	if err != nil {
		return err
	}
	if int(proto) != cid.Protocol {
		return r.errorf("protocol %d differs from %d of counted ID %q", proto, cid.Protocol, cid.Key)
	}
	e.Protocol = int(proto)
	for _, n := range names {
		p.c.editionByName[n] = e
	}
	p.c.editionBySKU[e.SKUID] = e
	p.c.editionsByCID[e.CountedID] = append(p.c.editionsByCID[e.CountedID], e)
	p.c.editions = append(p.c.editions, e)
	return nil
}
