package catalog

import (
	"testing"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// BenchmarkCovers measures the per-request decision on the largest group,
// for the last counted ID in its set and for a refused one.
func BenchmarkCovers(b *testing.B) {
	c := Default()
	g, _ := c.Group("windows-server-2025")
	app := g.AppID
	last := g.Activates[len(g.Activates)-1]
	refused := guid.MustParse(cid["win10-retail"])
	b.ReportAllocs()
	for b.Loop() {
		if !g.Covers(app, last) || g.Covers(app, refused) {
			b.Fatal("wrong decision")
		}
	}
}

// BenchmarkParseEmbedded measures start-up parsing of the embedded tables.
func BenchmarkParseEmbedded(b *testing.B) {
	files := EmbeddedFiles()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(files); err != nil {
			b.Fatal(err)
		}
	}
}
