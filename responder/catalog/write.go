package catalog

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// wrapWidth is the column at which edition lists in the listing wrap.
const wrapWidth = 100

// Write prints a human-readable listing of every host key group and the
// products it activates (counted IDs with their editions), followed by the
// counted IDs no group activates. It is what `kms-responder catalog` shows.
func (c *Catalog) Write(w io.Writer) error {
	return c.WriteGroups(w, c.groups, true)
}

// WriteGroups prints groups (e.g. from Matching) as Write does; all adds
// the counted IDs no group activates and the host builds.
func (c *Catalog) WriteGroups(w io.Writer, groups []*HostKeyGroup, all bool) error {
	bw := bufio.NewWriter(w)
	if all {
		fmt.Fprintf(bw, "KMS host key groups (%d). Configure the ones this host holds with --group NAME:\n", len(groups))
		fmt.Fprintf(bw, "one Windows group and optionally one or more Office groups.\n")
	} else {
		fmt.Fprintf(bw, "KMS host key groups that match (%d of %d):\n", len(groups), len(c.groups))
	}
	for _, g := range groups {
		c.writeGroup(bw, g)
	}
	if !all {
		return bw.Flush()
	}
	var refused []*CountedID
	for _, k := range c.counted {
		if len(c.GroupsCovering(k.AppID, k.ID)) == 0 {
			refused = append(refused, k)
		}
	}
	if len(refused) > 0 {
		fmt.Fprintf(bw, "\nCounted IDs no host key group activates (a host refuses them with 0xC004F042):\n")
		for _, k := range refused {
			why := "no group"
			switch {
			case k.Retail:
				why = "retail, lab host keys only"
			case k.Preview:
				why = "preview, lab host keys only"
			case k.AzureOnly:
				why = "Azure-only host keys"
			}
			fmt.Fprintf(bw, "  %-20s %s  %s (%s)\n", k.Key, k.ID, k.Name, why)
		}
	}
	fmt.Fprintf(bw, "\nHost builds for ePIDs:\n")
	for _, b := range c.builds {
		fmt.Fprintf(bw, "  %6d  platform %5d  %s  %s\n", b.Build, b.PlatformID, b.ReleaseDate, b.Name)
	}
	return bw.Flush()
}

func (c *Catalog) writeGroup(w io.Writer, g *HostKeyGroup) {
	appName := g.AppID.String()
	if a, ok := c.appByID[g.AppID]; ok {
		appName = a.Name + " " + appName
	}
	if g.Overlay {
		fmt.Fprintf(w, "\n%s: %s  [from the catalog overlay]\n", g.Name, g.Description)
	} else {
		fmt.Fprintf(w, "\n%s: %s\n", g.Name, g.Description)
	}
	fmt.Fprintf(w, "  application  %s\n", appName)
	key := "unknown"
	if !g.CSVLKID.IsNil() {
		key = g.CSVLKID.String()
	}
	fmt.Fprintf(w, "  host key     %s, ePID group %d, key IDs %d-%d, host build %d or later\n",
		key, g.EPIDGroupID, g.KeyIDMin, g.KeyIDMax, g.MinBuild)
	derived := ""
	if g.Derived {
		derived = " (set partly derived from the hierarchy rule)"
	}
	fmt.Fprintf(w, "  activates    %d counted IDs%s:\n", len(g.Activates), derived)
	for _, id := range g.Activates {
		k, ok := c.countedByID[id]
		if !ok {
			fmt.Fprintf(w, "    %s\n", id)
			continue
		}
		overlay := ""
		if k.Overlay {
			overlay = " [overlay]"
		}
		fmt.Fprintf(w, "    %-18s %s  %s (%s, threshold %d)%s\n", k.Key, k.ID, k.Name, k.Kind, k.Threshold, overlay)
		var names []string
		for _, e := range c.editionsByCID[id] {
			if e.Overlay {
				names = append(names, e.Name+" [overlay]")
			} else {
				names = append(names, e.Name)
			}
		}
		if len(names) > 0 {
			writeWrapped(w, "      editions: ", "                ", strings.Join(names, ", "))
		}
	}
	fmt.Fprintf(w, "  source       %s\n", g.Source)
}

// writeWrapped prints text after first, wrapping at spaces so lines stay
// within wrapWidth; continuation lines start with indent.
func writeWrapped(w io.Writer, first, indent, text string) {
	line := first
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > wrapWidth && strings.TrimSpace(line) != strings.TrimSpace(first) {
			fmt.Fprintln(w, line)
			line = indent + word
			continue
		}
		if strings.HasSuffix(line, " ") {
			line += word
		} else {
			line += " " + word
		}
	}
	fmt.Fprintln(w, line)
}
