package catalog

import (
	"os"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

func TestOverlayAddsAGroup(t *testing.T) {
	c, err := LoadOverlay("testdata/overlay-office-ltsc-2027.tsv")
	if err != nil {
		t.Fatal(err)
	}
	g, ok := c.Group("office-ltsc-2027")
	if !ok || !g.Overlay {
		t.Fatalf("group from the overlay: %v, overlay %v", ok, ok && g.Overlay)
	}
	e, ok := c.Edition("Office LTSC Professional Plus 2027")
	if !ok || !e.Overlay || !g.Covers(e.AppID, e.CountedID) {
		t.Fatalf("edition from the overlay: %v; covered by its group: %v", ok, ok && g.Covers(e.AppID, e.CountedID))
	}
	if old, _ := c.Group("office-ltsc-2024"); old == nil || old.Overlay {
		t.Error("an embedded group is missing or marked as from the overlay")
	}
	if len(c.Groups()) != len(Default().Groups())+1 {
		t.Errorf("%d groups, want the embedded ones plus 1", len(c.Groups()))
	}
}

func TestOverlayReplacesARow(t *testing.T) {
	overlay := "[counted.tsv replace]\n" + strings.Join(countedCols, "\t") + "\n" +
		"office2024\ta8973cb5-bf03-0a4c-9cef-703099645ab3\tOffice LTSC 2024 (renamed)\toffice\toffice\t5\t6\t-\tcorrected name\n"
	c, err := ParseOverlay(EmbeddedFiles(), "fix.tsv", []byte(overlay))
	if err != nil {
		t.Fatal(err)
	}
	k, ok := c.CountedID(guid.MustParse("a8973cb5-bf03-0a4c-9cef-703099645ab3"))
	if !ok || k.Name != "Office LTSC 2024 (renamed)" || !k.Overlay {
		t.Fatalf("replaced counted ID: %+v", k)
	}
}

func TestOverlayErrors(t *testing.T) {
	example, err := os.ReadFile("testdata/overlay-office-ltsc-2027.tsv")
	if err != nil {
		t.Fatal(err)
	}
	cols := strings.Join(countedCols, "\t") + "\n"
	for _, tc := range []struct {
		name, overlay, want string
	}{
		{"conflicting key", "[counted.tsv]\n" + cols + "office2024\t00000000-2027-4000-8000-0000000000aa\tX\toffice\toffice\t5\t6\t-\ts\n",
			`ov.tsv:3: "office2024" is already in the catalog (counted.tsv:`},
		{"conflicting GUID", "# c\n[counted.tsv]\n" + cols + "office2099\ta8973cb5-bf03-0a4c-9cef-703099645ab3\tX\toffice\toffice\t5\t6\t-\ts\n",
			"ov.tsv:4: column id: GUID a8973cb5-bf03-0a4c-9cef-703099645ab3 already defined at counted.tsv:"},
		{"replace of nothing", "[groups.tsv replace]\n" + strings.Join(groupsCols, "\t") + "\n" + strings.Repeat("x\t", len(groupsCols)-1) + "x\n",
			`ov.tsv:3: [groups.tsv replace]: the catalog has no row "x" to replace`},
		{"bad row", "[counted.tsv]\n" + cols + "office2099\tnot-a-guid\tX\toffice\toffice\t5\t6\t-\ts\n", "ov.tsv:3: column id"},
		{"short row", "\n\n[editions.tsv]\n" + strings.Join(editionsCols, "\t") + "\nonly\tthree\tfields\n", "ov.tsv:5: 3 fields, want 7"},
		{"wrong header", "[groups.tsv]\nname\tapp\n", "ov.tsv:2: header is"},
		{"no header", "[groups.tsv]\n", "ov.tsv:1: section [groups.tsv]: no header line"},
		{"unknown table", "[skus.tsv]\n", `ov.tsv:1: unknown table "skus.tsv"`},
		{"row before a section", "office2099\tx\n", "ov.tsv:1: row before any [TABLE] section"},
		{"empty", "# nothing\n", "ov.tsv: no [TABLE] section"},
		{"unknown group in activates", strings.Replace(string(example), "\toffice2027\tOffice LTSC 2027 host key", "\toffice2099\tOffice LTSC 2027 host key", 1),
			"ov.tsv:11: column activates"},
	} {
		_, err := ParseOverlay(EmbeddedFiles(), "ov.tsv", []byte(tc.overlay))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseOverlay(f *testing.F) {
	example, err := os.ReadFile("testdata/overlay-office-ltsc-2027.tsv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("[counted.tsv replace]\n" + strings.Join(countedCols, "\t") + "\n"))
	f.Add([]byte("[x"))
	files := EmbeddedFiles()
	f.Fuzz(func(t *testing.T, overlay []byte) {
		c, err := ParseOverlay(files, "ov.tsv", overlay)
		if err == nil && len(c.Groups()) == 0 {
			t.Fatal("a catalog without groups")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "ov.tsv") && !strings.Contains(err.Error(), ".tsv") {
			t.Fatalf("error does not say where: %v", err)
		}
	})
}
