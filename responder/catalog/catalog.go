// Package catalog is the product catalog a KMS host needs: the application
// IDs clients activate under, every KMS counted ID with its threshold, the
// host key groups (CSVLKs) with the exact set of counted IDs each activates
// and its ePID material, the host builds usable in an ePID, and the volume
// editions with their SKU IDs and GVLKs.
//
// The data lives in small tab-separated tables under data/, embedded into
// the binary and parsed once by Default. Every row names its source; see
// data/README.md for where the facts came from and how conflicts between
// public sources were resolved.
//
// A host decides on the (application ID, counted ID) pair a client sends:
// HostKeyGroup.Covers answers that question. SKU IDs are informational only.
package catalog

import (
	"sort"
	"strings"
	"sync"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Kind classifies a counted ID by the client policy it carries.
type Kind string

// Counted ID kinds. Windows client editions need a count of 25, Windows
// Server editions and Office need 5.
const (
	KindClient Kind = "client"
	KindServer Kind = "server"
	KindOffice Kind = "office"
)

// Application is an activation application ID. A KMS host keeps a separate
// client count per application.
type Application struct {
	ID guid.GUID
	// Key is the short name the data tables use ("windows", "office2010", "office").
	Key  string
	Name string
	// CacheSize is the most client machine IDs a host keeps for the
	// application: twice the highest threshold its clients carry.
	CacheSize int
	Source    string
	// Overlay is set for rows that came from an overlay file (--catalog-file).
	Overlay bool
}

// CountedID is a KMS counted ID ("KMS ID"): the product group a client
// names in its request and the host grants or refuses.
type CountedID struct {
	ID guid.GUID
	// Key is the short name the data tables use ("ws2025", "win10", ...).
	Key   string
	Name  string
	AppID guid.GUID
	Kind  Kind
	// Threshold is the count the client needs before it activates.
	Threshold int
	// Protocol is the KMS protocol major version clients of this ID use (4, 5 or 6).
	Protocol int
	// Retail and Preview IDs appear only in Microsoft-internal lab host keys;
	// AzureOnly IDs only in Azure-only host keys. No group in this catalog
	// activates them, so a faithful host refuses them.
	Retail, Preview, AzureOnly bool
	Source                     string
	// Overlay is set for rows that came from an overlay file (--catalog-file).
	Overlay bool
}

// Refusable reports whether no production host key activates the ID
// (retail, preview/lab or Azure-only).
func (c *CountedID) Refusable() bool { return c.Retail || c.Preview || c.AzureOnly }

// HostKeyGroup is a KMS host key (CSVLK) group and what it activates.
type HostKeyGroup struct {
	// Name is the stable kebab-case name used with --group.
	Name        string
	Description string
	AppID       guid.GUID
	// CSVLKID is the host key's activation ID (guid.Nil when unknown).
	CSVLKID guid.GUID
	// Activates is the exact set of counted IDs the group activates (its
	// own and those of the groups it includes), in counted-ID table order.
	Activates []guid.GUID
	// Includes names the groups whose counted IDs this group also activates.
	Includes []string
	// EPIDGroupID and KeyIDMin..KeyIDMax are the group and key-ID range
	// an ePID for this host key carries.
	EPIDGroupID        int
	KeyIDMin, KeyIDMax int64
	// MinBuild is the oldest host build (see Catalog.HostBuilds) that can
	// hold the key; an ePID names a host build at least this new.
	MinBuild int
	Source   string
	// Overlay is set for rows that came from an overlay file (--catalog-file).
	Overlay bool
	// Derived is true when part of Activates comes from the hierarchy rule
	// rather than from a source listing it outright.
	Derived bool
}

// Covers reports whether a host holding the group's key activates clients
// sending the application ID app and the counted ID countedID.
func (g *HostKeyGroup) Covers(app, countedID guid.GUID) bool {
	if app != g.AppID {
		return false
	}
	for _, id := range g.Activates {
		if id == countedID {
			return true
		}
	}
	return false
}

// Edition is a volume-licensed edition: its SKU (activation) ID, the GVLK
// Microsoft publishes for it and the counted ID its clients send.
type Edition struct {
	Name string
	// Aliases are short lower-case names ("ws2025-standard", "win11-pro").
	Aliases   []string
	SKUID     guid.GUID
	CountedID guid.GUID
	AppID     guid.GUID
	GVLK      string
	Protocol  int
	Source    string
	// Overlay is set for rows that came from an overlay file (--catalog-file).
	Overlay bool
}

// HostBuild is a Windows build a KMS host can report in its ePID.
type HostBuild struct {
	Build       int
	PlatformID  int
	ReleaseDate string // YYYY-MM-DD
	Name        string
	Source      string
	// Overlay is set for rows that came from an overlay file (--catalog-file).
	Overlay bool
}

// Catalog is a parsed, validated product catalog. It is immutable and safe
// for concurrent use; callers must not modify the values it returns.
type Catalog struct {
	apps     []*Application
	counted  []*CountedID
	groups   []*HostKeyGroup
	editions []*Edition
	builds   []HostBuild

	appByID       map[guid.GUID]*Application
	countedByID   map[guid.GUID]*CountedID
	groupByName   map[string]*HostKeyGroup
	groupByCSVLK  map[guid.GUID]*HostKeyGroup
	editionBySKU  map[guid.GUID]*Edition
	editionByName map[string]*Edition
	editionsByCID map[guid.GUID][]*Edition
}

var defaultCatalog = sync.OnceValue(func() *Catalog {
	c, err := Parse(embeddedFiles())
	if err != nil {
		// The embedded tables are checked by TestEmbeddedDataParses.
		panic("catalog: embedded data is broken: " + err.Error())
	}
	return c
})

// Default returns the catalog parsed from the embedded data. It is parsed
// once; it panics only if the embedded data is broken, which a test rules out.
func Default() *Catalog { return defaultCatalog() }

// Application returns the application with the given ID.
func (c *Catalog) Application(id guid.GUID) (*Application, bool) {
	a, ok := c.appByID[id]
	return a, ok
}

// Applications returns every application in table order.
func (c *Catalog) Applications() []*Application { return append([]*Application(nil), c.apps...) }

// CountedID returns the counted ID with the given GUID.
func (c *Catalog) CountedID(id guid.GUID) (*CountedID, bool) {
	k, ok := c.countedByID[id]
	return k, ok
}

// CountedIDs returns every counted ID in table order.
func (c *Catalog) CountedIDs() []*CountedID { return append([]*CountedID(nil), c.counted...) }

// Group returns the host key group with the given name (case-insensitive)
// or host key activation ID in text form.
func (c *Catalog) Group(name string) (*HostKeyGroup, bool) {
	if g, ok := c.groupByName[strings.ToLower(strings.TrimSpace(name))]; ok {
		return g, true
	}
	if id, err := guid.Parse(strings.TrimSpace(name)); err == nil {
		g, ok := c.groupByCSVLK[id]
		return g, ok
	}
	return nil, false
}

// Groups returns every host key group in table order (Windows oldest to
// newest, then Office).
func (c *Catalog) Groups() []*HostKeyGroup { return append([]*HostKeyGroup(nil), c.groups...) }

// GroupNames returns the names of every host key group in table order.
func (c *Catalog) GroupNames() []string {
	names := make([]string, len(c.groups))
	for i, g := range c.groups {
		names[i] = g.Name
	}
	return names
}

// GroupsCovering returns the groups that activate (app, countedID), in
// table order.
func (c *Catalog) GroupsCovering(app, countedID guid.GUID) []*HostKeyGroup {
	var out []*HostKeyGroup
	for _, g := range c.groups {
		if g.Covers(app, countedID) {
			out = append(out, g)
		}
	}
	return out
}

// Edition looks an edition up by its exact or case-insensitive name, one of
// its aliases, or its SKU ID in text form. "Windows 10 X" and "Windows 11 X"
// also find the shared edition "Windows 10/11 X".
func (c *Catalog) Edition(nameOrSKU string) (*Edition, bool) {
	s := strings.TrimSpace(nameOrSKU)
	lower := strings.ToLower(s)
	if e, ok := c.editionByName[lower]; ok {
		return e, true
	}
	// Editions shared by Windows 10 and 11 are listed once as "Windows
	// 10/11 ...", but people name the one they run.
	for _, p := range []string{"windows 10 ", "windows 11 "} {
		if rest, ok := strings.CutPrefix(lower, p); ok {
			if e, ok := c.editionByName["windows 10/11 "+rest]; ok {
				return e, true
			}
		}
	}
	if id, err := guid.Parse(s); err == nil {
		return c.EditionBySKU(id)
	}
	return nil, false
}

// EditionBySKU returns the edition with the given SKU ID.
func (c *Catalog) EditionBySKU(id guid.GUID) (*Edition, bool) {
	e, ok := c.editionBySKU[id]
	return e, ok
}

// Editions returns every edition in table order.
func (c *Catalog) Editions() []*Edition { return append([]*Edition(nil), c.editions...) }

// EditionsOf returns the editions whose clients send the counted ID id.
func (c *Catalog) EditionsOf(id guid.GUID) []*Edition {
	return append([]*Edition(nil), c.editionsByCID[id]...)
}

// HostBuilds returns the host builds, oldest first.
func (c *Catalog) HostBuilds() []HostBuild { return append([]HostBuild(nil), c.builds...) }

// PlatformID returns the ePID platform ID for a host build: that of the
// newest listed build not newer than build, or 0 if build predates them all.
func (c *Catalog) PlatformID(build int) int {
	i := sort.Search(len(c.builds), func(i int) bool { return c.builds[i].Build > build })
	if i == 0 {
		return 0
	}
	return c.builds[i-1].PlatformID
}
