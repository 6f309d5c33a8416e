package catalog

import (
	"strings"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Matching returns the host key groups, in table order, that a filter
// finds: a group matches when the filter (case-insensitive) is part of its
// name or description, or names something the group activates: a counted
// ID (short name, name), an edition (name, alias, GVLK), or any of their
// GUIDs (the group's CSVLK, application, counted ID or SKU ID, in full). An
// empty filter matches every group.
func (c *Catalog) Matching(filter string) []*HostKeyGroup {
	f := strings.ToLower(strings.TrimSpace(filter))
	if f == "" {
		return c.Groups()
	}
	id, idErr := guid.Parse(f)
	isID := idErr == nil
	var out []*HostKeyGroup
	for _, g := range c.groups {
		if c.groupMatches(g, f, id, isID) {
			out = append(out, g)
		}
	}
	return out
}

func (c *Catalog) groupMatches(g *HostKeyGroup, f string, id guid.GUID, isID bool) bool {
	if isID {
		if g.CSVLKID == id || g.AppID == id {
			return true
		}
		for _, k := range g.Activates {
			if k == id {
				return true
			}
			for _, e := range c.editionsByCID[k] {
				if e.SKUID == id {
					return true
				}
			}
		}
		return false
	}
	if contains(g.Name, f) || contains(g.Description, f) {
		return true
	}
	for _, k := range g.Activates {
		if cid, ok := c.countedByID[k]; ok && (contains(cid.Key, f) || contains(cid.Name, f)) {
			return true
		}
		for _, e := range c.editionsByCID[k] {
			if contains(e.Name, f) || strings.EqualFold(e.GVLK, f) {
				return true
			}
			for _, a := range e.Aliases {
				if contains(a, f) {
					return true
				}
			}
		}
	}
	return false
}

// contains reports whether s contains the lower-case f, ignoring case.
func contains(s, f string) bool { return strings.Contains(strings.ToLower(s), f) }
