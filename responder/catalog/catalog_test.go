package catalog

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

func TestEmbeddedDataParses(t *testing.T) {
	c, err := Parse(EmbeddedFiles())
	if err != nil {
		t.Fatalf("embedded data: %v", err)
	}
	if len(c.Applications()) != 3 || len(c.Groups()) == 0 || len(c.Editions()) == 0 || len(c.HostBuilds()) == 0 {
		t.Fatalf("embedded data is incomplete: %d apps, %d groups, %d editions, %d builds",
			len(c.Applications()), len(c.Groups()), len(c.Editions()), len(c.HostBuilds()))
	}
	if first, again := Default(), Default(); first != again {
		t.Error("Default parses more than once")
	}
}

func TestApplications(t *testing.T) {
	c := Default()
	want := []struct {
		key   string
		cache int
	}{{"windows", 50}, {"office2010", 10}, {"office", 10}}
	for _, w := range want {
		a, ok := c.Application(appID[w.key])
		if !ok {
			t.Errorf("application %s (%s) missing", w.key, appID[w.key])
			continue
		}
		if a.Key != w.key || a.CacheSize != w.cache || a.Source == "" {
			t.Errorf("application %s = %+v, want key %s, cache %d, a source", appID[w.key], a, w.key, w.cache)
		}
	}
}

func TestCountedIDs(t *testing.T) {
	c := Default()
	for key, text := range cid {
		k, ok := c.CountedID(guid.MustParse(text))
		if !ok {
			t.Errorf("counted ID %s (%s) missing", key, text)
			continue
		}
		if k.Key != key {
			t.Errorf("counted ID %s has key %q, want %q", text, k.Key, key)
		}
	}
	wantThreshold := map[Kind]int{KindClient: 25, KindServer: 5, KindOffice: 5}
	for _, k := range c.CountedIDs() {
		if k.Threshold != wantThreshold[k.Kind] {
			t.Errorf("%s (%s): threshold %d, want %d", k.Key, k.Kind, k.Threshold, wantThreshold[k.Kind])
		}
		isOffice := k.AppID != appID["windows"]
		if isOffice != (k.Kind == KindOffice) {
			t.Errorf("%s: kind %s under application %s", k.Key, k.Kind, k.AppID)
		}
		if k.Protocol < 4 || k.Protocol > 6 {
			t.Errorf("%s: protocol %d", k.Key, k.Protocol)
		}
		if k.Source == "" {
			t.Errorf("%s: no source", k.Key)
		}
		if _, ok := c.Application(k.AppID); !ok {
			t.Errorf("%s: unknown application %s", k.Key, k.AppID)
		}
	}
	// Conflicts resolved in favour of Microsoft's licensing data, and said so.
	for _, key := range []string{"ws2025", "office2024"} {
		k, _ := c.CountedID(guid.MustParse(cid[key]))
		if k == nil || !strings.Contains(k.Source, "Microsoft licensing data") {
			t.Errorf("%s: source must name Microsoft licensing data, got %+v", key, k)
		}
	}
	for _, fabricated := range []string{"4b83307d-7788-50ff-8d1f-1861915bdb9d", "1b4db7eb-4057-5ddf-91e0-36dec72071f5"} {
		if _, ok := c.CountedID(guid.MustParse(fabricated)); ok {
			t.Errorf("py-kms' synthetic counted ID %s must not be in the catalog", fabricated)
		}
	}
}

// Every counted ID a group references exists and belongs to the group's
// application; every volume ID is activated by some group, and no retail,
// preview or Azure-only ID by any.
func TestGroupsReferenceKnownCountedIDs(t *testing.T) {
	c := Default()
	activated := map[guid.GUID]bool{}
	for _, g := range c.Groups() {
		if g.Source == "" || g.Description == "" {
			t.Errorf("%s: missing source or description", g.Name)
		}
		if g.Name != strings.ToLower(g.Name) || strings.ContainsAny(g.Name, " _") {
			t.Errorf("%s: group names are lower-case kebab-case", g.Name)
		}
		for _, id := range g.Activates {
			k, ok := c.CountedID(id)
			if !ok {
				t.Errorf("%s activates unknown counted ID %s", g.Name, id)
				continue
			}
			if k.AppID != g.AppID {
				t.Errorf("%s activates %s of another application", g.Name, k.Key)
			}
			if k.Refusable() {
				t.Errorf("%s activates %s, which is retail/preview/Azure-only", g.Name, k.Key)
			}
			if !g.Covers(g.AppID, id) {
				t.Errorf("%s: Covers disagrees with Activates for %s", g.Name, k.Key)
			}
			activated[id] = true
		}
		for _, inc := range g.Includes {
			sub, ok := c.Group(inc)
			if !ok {
				t.Errorf("%s includes unknown group %s", g.Name, inc)
				continue
			}
			for _, id := range sub.Activates {
				if !g.Covers(g.AppID, id) {
					t.Errorf("%s includes %s but does not activate its %s", g.Name, inc, id)
				}
			}
		}
	}
	for _, k := range c.CountedIDs() {
		if activated[k.ID] == k.Refusable() {
			t.Errorf("%s: activated by some group = %v, retail/preview/Azure-only = %v", k.Key, activated[k.ID], k.Refusable())
		}
	}
}

// Within a generation line, a newer Windows Server key activates everything
// an older one does (the hierarchy rule).
func TestServerKeysAreNested(t *testing.T) {
	c := Default()
	order := []string{"server-2008-kms-a", "server-2008-kms-b", "server-2008-kms-c", "server-2008r2-kms-c",
		"windows-server-2012", "windows-server-2012r2", "windows-server-2012r2-win10", "windows-server-2016",
		"windows-server-2019", "windows-server-2022", "windows-server-2025"}
	for i := 1; i < len(order); i++ {
		older, _ := c.Group(order[i-1])
		newer, _ := c.Group(order[i])
		if older == nil || newer == nil {
			t.Fatalf("missing %s or %s", order[i-1], order[i])
		}
		for _, id := range older.Activates {
			if !newer.Covers(newer.AppID, id) {
				t.Errorf("%s does not activate %s, which the older %s does", newer.Name, id, older.Name)
			}
		}
		if len(newer.Activates) <= len(older.Activates) {
			t.Errorf("%s activates no more than %s", newer.Name, older.Name)
		}
	}
}

func TestEditions(t *testing.T) {
	c := Default()
	activated := map[guid.GUID]bool{}
	for _, g := range c.Groups() {
		for _, id := range g.Activates {
			activated[id] = true
		}
	}
	gvlk := regexp.MustCompile(`^[BCDFGHJKMNPQRTVWXY2346789]{5}(-[BCDFGHJKMNPQRTVWXY2346789]{5}){4}$`)
	seenKey := map[string]string{}
	for _, e := range c.Editions() {
		k, ok := c.CountedID(e.CountedID)
		if !ok {
			t.Errorf("%s: unknown counted ID %s", e.Name, e.CountedID)
			continue
		}
		if !k.Refusable() && !activated[e.CountedID] {
			t.Errorf("%s: counted ID %s is activated by no group", e.Name, k.Key)
		}
		if e.AppID != k.AppID || e.Protocol != k.Protocol {
			t.Errorf("%s: app %s protocol %d, counted ID says %s %d", e.Name, e.AppID, e.Protocol, k.AppID, k.Protocol)
		}
		if !gvlk.MatchString(e.GVLK) {
			t.Errorf("%s: GVLK %q is malformed", e.Name, e.GVLK)
		}
		if other, dup := seenKey[e.GVLK]; dup {
			t.Errorf("%s and %s share GVLK %s", e.Name, other, e.GVLK)
		}
		seenKey[e.GVLK] = e.Name
		if !strings.Contains(e.Source, "gvlk:") {
			t.Errorf("%s: source does not say where the GVLK came from", e.Name)
		}
		for _, lookup := range append([]string{e.Name, strings.ToUpper(e.Name), e.SKUID.String(), strings.ToUpper(e.SKUID.String())}, e.Aliases...) {
			got, ok := c.Edition(lookup)
			if !ok || got != e {
				t.Errorf("Edition(%q) = %v, %v; want %s", lookup, got, ok, e.Name)
			}
		}
		if got, ok := c.EditionBySKU(e.SKUID); !ok || got != e {
			t.Errorf("EditionBySKU(%s) = %v, want %s", e.SKUID, got, e.Name)
		}
	}
	// Keys Microsoft publishes, spot-checked against kms-host-semantics.md §3.4.
	for _, w := range []struct{ edition, sku, gvlk, counted string }{
		{"ws2025-standard", "7dc26449-db21-4e09-ba37-28f2958506a6", "TVRH6-WHNXV-R9WG3-9XRFY-MY832", "ws2025"},
		{"ws2025-datacenter", "c052f164-cdf6-409a-a0cb-853ba0f0f55a", "D764K-2NDRG-47T6Q-P8T8W-YP6DF", "ws2025"},
		{"Windows Server 2025 Datacenter Azure Edition", "c2e946d1-cfa2-4523-8c87-30bc696ee584", "XGN3F-F394H-FD2MY-PP6FD-8MCRC", "ws2025"},
		{"ws2022-datacenter", "ef6cfc9f-8c5d-44ac-9aad-de6a2ea0ae03", "WX4NM-KYWYW-QJJR4-XV3QB-6VM33", "ws2022"},
		{"ws2019-standard", "de32eafd-aaee-4662-9444-c1befb41bde2", "N69G4-B89J2-4G8F4-WWYCC-J464C", "ws2019"},
		{"ws2016-datacenter", "21c56779-b449-4d20-adfc-eece0e1ad74b", "CB7KF-BWN84-R7R2Y-793K2-8XDDG", "ws2016"},
		{"ws2012r2-standard", "b3ca044e-a358-4d68-9883-aaa2941aca99", "D2N9P-3P6X9-2R39C-7RTCD-MDVJX", "ws2012r2"},
		{"win10-enterprise", "73111121-5638-40f6-bc11-f1d7b0d64300", "NPPR9-FWDCX-D2C8J-H872K-2YT43", "win10"},
		{"win11-education", "e0c42288-980c-4788-a014-c080d2e1926e", "NW6C2-QMPVW-D7KKK-3GKT6-VCFB2", "win10"},
		{"win10-ltsc-2019", "32d2fab3-e4a8-42c2-923b-4bf4fd13e6ee", "M7XTQ-FN8P6-TTKYV-9D4CC-J462D", "win10-ltsc2019"},
		{"win10-enterprise-2016-ltsb", "2d5a5a60-3040-48bf-beb0-fcd770c20ce0", "DCPHK-NFMTC-H88MJ-PFHPY-QJ4BJ", "win10-ltsb2016"},
		{"win8.1-pro", "c06b6981-d7fd-4a35-b7b4-054742b7af67", "GCRJD-8NW9H-F2CDX-CCM8D-9D6T9", "win8.1"},
		{"win7-pro", "b92e9980-b9d5-4821-9c94-140f632f6312", "FJ82H-XT6CR-J8D7P-XQJJ2-GPDD4", "win7"},
		{"office2024-proplus", "8d368fc1-9470-4be2-8d66-90e836cbb051", "XJ2XN-FW8RK-P4HMP-DKDBV-GCVGB", "office2024"},
		{"office2021-proplus", "fbdb3e18-a8ef-4fb3-9183-dffd60bd0984", "FXYTK-NJJ8C-GB6DW-3DYQT-6F7TH", "office2021"},
		{"office2019-proplus", "85dd8b5f-eaa4-4af3-a628-cce9e77c9a03", "NMMKJ-6RK4F-KMJVX-8D9MJ-6MWKP", "office2019"},
		{"office2016-proplus", "d450596f-894d-49e0-966a-fd39ed4c4c64", "XQNVK-8JYDB-WJ9W3-YJ8YR-WFG99", "office2016"},
		{"office2013-proplus", "b322da9c-a2e2-4058-9e4e-f59a6970bd69", "YC7DK-G2NP3-2QQC3-J6H88-GVGXT", "office2013"},
		{"office2010-proplus", "6f327760-8c5c-417c-9b61-836a98287e0c", "VYBBJ-TRJPB-QFQRF-QFT4D-H3GVB", "office2010"},
	} {
		e, ok := c.Edition(w.edition)
		if !ok {
			t.Errorf("edition %q missing", w.edition)
			continue
		}
		if e.SKUID.String() != w.sku || e.GVLK != w.gvlk || e.CountedID != guid.MustParse(cid[w.counted]) {
			t.Errorf("%s = SKU %s GVLK %s counted %s; want %s %s %s", w.edition, e.SKUID, e.GVLK, e.CountedID, w.sku, w.gvlk, w.counted)
		}
	}
	for _, missing := range []string{"", "no such edition", "00000000-0000-0000-0000-000000000001"} {
		if e, ok := c.Edition(missing); ok {
			t.Errorf("Edition(%q) = %s, want not found", missing, e.Name)
		}
	}
}

// No GUID is defined twice anywhere in the catalog.
func TestNoDuplicateGUIDs(t *testing.T) {
	c := Default()
	seen := map[guid.GUID]string{}
	add := func(id guid.GUID, what string) {
		if other, dup := seen[id]; dup {
			t.Errorf("%s reuses %s of %s", what, id, other)
		}
		seen[id] = what
	}
	for _, a := range c.Applications() {
		add(a.ID, "application "+a.Name)
	}
	for _, k := range c.CountedIDs() {
		add(k.ID, "counted ID "+k.Key)
	}
	for _, g := range c.Groups() {
		if !g.CSVLKID.IsNil() {
			add(g.CSVLKID, "host key "+g.Name)
		}
	}
	for _, e := range c.Editions() {
		add(e.SKUID, "edition "+e.Name)
	}
}

// ePID material: ranges inside the 9-digit key-ID space, hosted on a listed
// build, and no two groups sharing an ePID group ID overlap (catches copied
// ranges like py-kms' Office 2024 one).
func TestEPIDMaterial(t *testing.T) {
	c := Default()
	groups := c.Groups()
	builds := map[int]bool{}
	for _, b := range c.HostBuilds() {
		builds[b.Build] = true
	}
	for i, g := range groups {
		if g.KeyIDMin < 0 || g.KeyIDMax > 999999999 || g.KeyIDMin > g.KeyIDMax {
			t.Errorf("%s: key-ID range %d..%d", g.Name, g.KeyIDMin, g.KeyIDMax)
		}
		if g.EPIDGroupID < 0 || g.EPIDGroupID > 99999 {
			t.Errorf("%s: ePID group %d", g.Name, g.EPIDGroupID)
		}
		if !builds[g.MinBuild] {
			t.Errorf("%s: min build %d is not a listed host build", g.Name, g.MinBuild)
		}
		for _, h := range groups[i+1:] {
			if g.EPIDGroupID == h.EPIDGroupID && g.KeyIDMin <= h.KeyIDMax && h.KeyIDMin <= g.KeyIDMax {
				t.Errorf("%s and %s overlap in ePID group %d: %d..%d and %d..%d",
					g.Name, h.Name, g.EPIDGroupID, g.KeyIDMin, g.KeyIDMax, h.KeyIDMin, h.KeyIDMax)
			}
		}
	}
	// Cross-checked values (kmsdata-dump-2019 and -2025).
	for _, w := range []struct {
		group    string
		epid     int
		min, max int64
	}{
		{"windows-server-2019", 206, 551000000, 570999999},
		{"windows-server-2025", 4919, 20000, 20019999},
		{"windows-10-china-gov", 3858, 15000000, 999999999},
		{"office-2010", 96, 199000000, 217999999},
		{"office-2013", 206, 234000000, 255999999},
		{"office-2016", 206, 437000000, 458999999},
		{"office-2019", 206, 666000000, 685999999},
		{"office-ltsc-2021", 206, 571000000, 590999999},
		{"office-ltsc-2024", 206, 591000000, 610999999},
	} {
		g, ok := c.Group(w.group)
		if !ok {
			t.Errorf("group %s missing", w.group)
			continue
		}
		if g.EPIDGroupID != w.epid || g.KeyIDMin != w.min || g.KeyIDMax != w.max {
			t.Errorf("%s: ePID group %d keys %d..%d, want %d %d..%d", w.group, g.EPIDGroupID, g.KeyIDMin, g.KeyIDMax, w.epid, w.min, w.max)
		}
	}
}

func TestPlatformID(t *testing.T) {
	c := Default()
	for _, tc := range []struct{ build, want int }{
		{26100, 3612}, {20348, 3612}, {17763, 3612}, {14393, 3612}, {19045, 3612}, {30000, 3612},
		{9600, 6401}, {9601, 6401}, {9200, 5426}, {7601, 55041}, {6002, 55041},
		{6001, 0}, {0, 0}, {-1, 0},
	} {
		if got := c.PlatformID(tc.build); got != tc.want {
			t.Errorf("PlatformID(%d) = %d, want %d", tc.build, got, tc.want)
		}
	}
	b := c.HostBuilds()
	for i := 1; i < len(b); i++ {
		if b[i].Build <= b[i-1].Build {
			t.Errorf("host builds not oldest first: %d after %d", b[i].Build, b[i-1].Build)
		}
	}
}

func TestGroupLookup(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		in, want string
	}{
		{"windows-server-2025", "windows-server-2025"},
		{"WINDOWS-SERVER-2025", "windows-server-2025"},
		{" office-ltsc-2024 ", "office-ltsc-2024"},
		{"84e331f6-4279-48c4-ab10-b75139181351", "windows-server-2025"},
		{"{F3D89BBF-C0EC-47CE-A8FA-E5A5F97E447F}", "office-ltsc-2024"},
		{"server-2008r2-kms-b", "server-2008r2-kms-b"},
		{"windows-server-2026", ""},
		{"", ""},
		{"00000000-0000-0000-0000-000000000000", ""},
	} {
		g, ok := c.Group(tc.in)
		switch {
		case tc.want == "" && ok:
			t.Errorf("Group(%q) = %s, want none", tc.in, g.Name)
		case tc.want != "" && (!ok || g.Name != tc.want):
			t.Errorf("Group(%q) = %v, %v; want %s", tc.in, g, ok, tc.want)
		}
	}
	names := c.GroupNames()
	if len(names) != len(c.Groups()) {
		t.Fatalf("GroupNames has %d names for %d groups", len(names), len(c.Groups()))
	}
}

// The listing names every group, and under it every counted ID it
// activates; refused IDs are listed apart.
func TestWrite(t *testing.T) {
	c := Default()
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	sections := strings.Split(out, "\n\n")
	for _, g := range c.Groups() {
		var sec string
		for _, s := range sections {
			if strings.HasPrefix(s, g.Name+": ") {
				sec = s
			}
		}
		if sec == "" {
			t.Errorf("listing has no section for %s", g.Name)
			continue
		}
		for _, id := range g.Activates {
			if !strings.Contains(sec, id.String()) {
				t.Errorf("section %s does not list %s", g.Name, id)
			}
		}
		if n := strings.Count(sec, "threshold"); n != len(g.Activates) {
			t.Errorf("section %s lists %d counted IDs, group activates %d", g.Name, n, len(g.Activates))
		}
	}
	for _, k := range c.CountedIDs() {
		if k.Refusable() && !strings.Contains(sections[len(sections)-2], k.ID.String()) {
			t.Errorf("refused counted ID %s not in the refusals section", k.Key)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "      editions:") || strings.HasPrefix(line, "                ") {
			if len(line) > wrapWidth {
				t.Errorf("edition line longer than %d: %q", wrapWidth, line)
			}
		}
	}
	if err := c.Write(failWriter{}); err == nil {
		t.Error("Write to a failing writer returned no error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFail }

var errFail = &ParseError{File: "test", Msg: "write failed"}

// TestEditionWindows10or11Names: the shared "Windows 10/11 X" editions are
// found by the name of either release, and only those.
func TestEditionWindows10or11Names(t *testing.T) {
	c := Default()
	for _, tc := range []struct{ lookup, want string }{
		{"Windows 11 Enterprise", "Windows 10/11 Enterprise"},
		{"windows 10 pro", "Windows 10/11 Pro"},
		{"Windows 11 Pro Education N", "Windows 10/11 Pro Education N"},
		{"Windows 10 Enterprise LTSC 2019", "Windows 10 Enterprise LTSC 2019"},
		{"Windows 12 Enterprise", ""},
		{"Windows 11 Nonexistent", ""},
	} {
		e, ok := c.Edition(tc.lookup)
		switch {
		case tc.want == "" && ok:
			t.Errorf("Edition(%q) = %s, want none", tc.lookup, e.Name)
		case tc.want != "" && (!ok || e.Name != tc.want):
			t.Errorf("Edition(%q) = %v, %v; want %s", tc.lookup, e, ok, tc.want)
		}
	}
}
