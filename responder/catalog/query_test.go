package catalog

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestMatching(t *testing.T) {
	c := Default()
	names := func(gs []*HostKeyGroup) string {
		var n []string
		for _, g := range gs {
			n = append(n, g.Name)
		}
		return strings.Join(n, " ")
	}
	for _, tc := range []struct {
		filter, want string
	}{
		{"office-ltsc-2024", "office-ltsc-2024"},
		{"Office LTSC Professional Plus 2024", "office-ltsc-2024"},
		{"a8973cb5-bf03-0a4c-9cef-703099645ab3", "office-ltsc-2024"},      // counted ID
		{"84E331F6-4279-48C4-AB10-B75139181351", "windows-server-2025"},   // CSVLK, any case
		{"{84e331f6-4279-48c4-ab10-b75139181351}", "windows-server-2025"}, // braces
		{"zzzz-no-such-thing", ""},
	} {
		if got := names(c.Matching(tc.filter)); got != tc.want {
			t.Errorf("Matching(%q) = %q, want %q", tc.filter, got, tc.want)
		}
	}
	if got := len(c.Matching("")); got != len(c.Groups()) {
		t.Errorf("empty filter: %d groups, want all %d", got, len(c.Groups()))
	}
	// An edition's GVLK finds every group that activates the edition.
	e, ok := c.Edition("Windows Server 2025 Standard")
	if !ok {
		t.Fatal("no Windows Server 2025 Standard edition")
	}
	if got := names(c.Matching(e.GVLK)); !strings.Contains(got, "windows-server-2025") {
		t.Errorf("Matching(its GVLK) = %q, want windows-server-2025 among them", got)
	}
}

// TestDocumentJSON: the JSON listing parses back with every group, and each
// group's activates list matches the catalog.
func TestDocumentJSON(t *testing.T) {
	c := Default()
	b, err := json.Marshal(c.Document(c.Groups(), true))
	if err != nil {
		t.Fatal(err)
	}
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Groups) != len(c.Groups()) || len(d.HostBuilds) != len(c.HostBuilds()) || len(d.Unactivated) == 0 {
		t.Fatalf("%d groups, %d builds, %d unactivated", len(d.Groups), len(d.HostBuilds), len(d.Unactivated))
	}
	for i, g := range c.Groups() {
		if d.Groups[i].Name != g.Name || len(d.Groups[i].Activates) != len(g.Activates) {
			t.Errorf("group %s: JSON has %s with %d counted IDs, want %d", g.Name, d.Groups[i].Name, len(d.Groups[i].Activates), len(g.Activates))
		}
	}
}

// TestProvenanceCitesPublicSources: every source cell names
// public material, never a file of the project's private notes.
func TestProvenanceCitesPublicSources(t *testing.T) {
	c := Default()
	private := regexp.MustCompile(`(?i)\.(md|txt|tsv)\b|dump-|semantics|\.\./|shared/`)
	check := func(what, src string) {
		if src == "" || private.MatchString(src) {
			t.Errorf("%s: source %q cites a file instead of public material", what, src)
		}
	}
	for _, a := range c.Applications() {
		check("application "+a.Name, a.Source)
	}
	for _, k := range c.CountedIDs() {
		check("counted ID "+k.Key, k.Source)
	}
	for _, g := range c.Groups() {
		check("group "+g.Name, g.Source)
	}
	for _, e := range c.Editions() {
		check("edition "+e.Name, e.Source)
	}
	for _, b := range c.HostBuilds() {
		check("build "+b.Name, b.Source)
	}
}
