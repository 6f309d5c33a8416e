package catalog

import (
	"errors"
	"io"
	"testing"
)

// FuzzParse feeds arbitrary tables to Parse. It must never panic; errors
// must be *ParseError; a catalog it accepts must be self-consistent.
func FuzzParse(f *testing.F) {
	emb := EmbeddedFiles()
	f.Add(emb[FileApps], emb[FileCounted], emb[FileBuilds], emb[FileGroups], emb[FileEditions])
	m := minimal()
	f.Add(m[FileApps], m[FileCounted], m[FileBuilds], m[FileGroups], m[FileEditions])
	f.Fuzz(func(t *testing.T, apps, counted, builds, groups, editions []byte) {
		c, err := Parse(map[string][]byte{
			FileApps: apps, FileCounted: counted, FileBuilds: builds, FileGroups: groups, FileEditions: editions,
		})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		for _, g := range c.Groups() {
			if len(g.Activates) == 0 {
				t.Fatalf("group %s activates nothing", g.Name)
			}
			for _, id := range g.Activates {
				if _, ok := c.CountedID(id); !ok || !g.Covers(g.AppID, id) {
					t.Fatalf("group %s: counted ID %s unknown or not covered", g.Name, id)
				}
			}
			if got, ok := c.Group(g.Name); !ok || got != g {
				t.Fatalf("Group(%q) does not find the group", g.Name)
			}
		}
		for _, e := range c.Editions() {
			if got, ok := c.EditionBySKU(e.SKUID); !ok || got != e {
				t.Fatalf("EditionBySKU(%s) does not find %q", e.SKUID, e.Name)
			}
		}
		if err := c.Write(io.Discard); err != nil {
			t.Fatalf("Write: %v", err)
		}
	})
}
