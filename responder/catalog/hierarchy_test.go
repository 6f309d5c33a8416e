package catalog

import (
	"testing"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Counted IDs by their published GUIDs (kms-host-semantics.md §3.2), written
// out here rather than taken from the catalog so the test checks the data.
var cid = map[string]string{
	"vista":           "212a64dc-43b1-4d3d-a30c-2fc69d2095c6",
	"win7":            "7fde5219-fbfa-484a-82c9-34d1ad53e856",
	"win8":            "3c40b358-5948-45af-923b-53d21fcc7e79",
	"win8.1":          "cb8fc780-2c05-495a-9710-85afffc904d7",
	"win10":           "58e2134f-8e11-4d17-9cb2-91069c151148",
	"win10-unknown":   "d27cd636-1962-44e9-8b4f-27b6c23efb85",
	"win10-ltsb2016":  "969fe3c0-a3ec-491a-9f25-423605deb365",
	"win10-ltsc2019":  "11b15659-e603-4cf1-9c1f-f0ec01b81888",
	"win10-ltsc2021":  "3b576817-7b75-4362-9e13-223f2d9e9c97",
	"win11-ltsc2024":  "e85ee727-69c4-4528-99d2-216b0f065e38",
	"win10-china-gov": "7ba0bf23-d0f5-4072-91d9-d55af5a481b6",
	"ws2008-a":        "33e156e4-b76f-4a52-9f91-f641dd95ac48",
	"ws2008-b":        "8fe53387-3087-4447-8985-f75132215ac9",
	"ws2008-c":        "8a21fdf3-cbc5-44eb-83f3-fe284e6680a7",
	"ws2008r2-a":      "0fc6ccaf-ff0e-4fae-9d08-4370785bf7ed",
	"ws2008r2-b":      "ca87f5b6-cd46-40c0-b06d-8ecd57a4373f",
	"ws2008r2-c":      "b2ca2689-a9a8-42d7-938d-cf8e9f201958",
	"ws2012":          "8665cb71-468c-4aa3-a337-cb9bc9d5eaac",
	"ws2012r2":        "8456efd3-0c04-4089-8740-5b7238535a65",
	"ws2016":          "6e9fc069-257d-4bc4-b4a7-750514d32743",
	"ws2019":          "8449b1fb-f0ea-497a-99ab-66ca96e9a0f5",
	"ws2022":          "b74263e4-0f92-46c6-bcf8-c11d5efe2959",
	"ws2025":          "907f1f65-adcd-4a2e-95bc-4bf500bc6e58",
	"office2010":      "e85af946-2e25-47b7-83e1-bebcebeac611",
	"office2013":      "e6a6f1bf-9d40-40c3-aa9f-c77ba21578c0",
	"office2016":      "85b5f61b-320b-4be3-814a-b76b2bfafc82",
	"office2019":      "617d9eb1-ef36-4f82-86e0-a65ae07b96c6",
	"office2021":      "86d50b16-4808-41af-b83b-b338274318b2",
	"office2024":      "a8973cb5-bf03-0a4c-9cef-703099645ab3",
	// Never activated by a production host key.
	"win8-retail":        "bbb97b3b-8ca4-4a28-9717-89fabd42c4ac",
	"win8.1-retail":      "6d646890-3606-461a-86ab-598bb84ace82",
	"win10-retail":       "e1c51358-fe3e-4203-a4a2-3b6b20c9734e",
	"win10-multisession": "cbdcb1ba-e093-4c81-a463-10775291fdf9",
	"win-preview":        "5f94a0bb-d5a0-4081-a685-5819418b2fe0",
	"ws-preview":         "6d5f5270-31ac-433e-b90a-39892923c657",
	"office2013-preview": "aa4c7968-b9da-4680-92b6-acb25e2f866c",
}

var appID = map[string]guid.GUID{
	"windows":    guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f"),
	"office2010": guid.MustParse("59a52881-a989-479d-af46-f275c6370663"),
	"office":     guid.MustParse("0ff1ce15-a989-479d-af46-f275c6370663"),
}

// Shorthands for the sets the seeds' table builds on.
var (
	ws2008All   = []string{"ws2008-a", "ws2008-b", "ws2008-c"}
	ws2008r2All = []string{"ws2008r2-a", "ws2008r2-b", "ws2008r2-c"}
	win10IDs    = []string{"win10", "win10-unknown"} // both in every Windows 10 host key list [MS-artifact]
)

func join(sets ...[]string) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

// hostKeyTable encodes every row of the "KMS host key group → products
// activated" tables of kms-host-semantics.md §2 (Windows and Office), with
// the sets written out in full. Each group must activate exactly the listed
// counted IDs (for its application) and refuse every other ID in the
// catalog, and every ID of another application.
var hostKeyTable = []struct {
	row       string // the row of the seeds' table
	group     string
	app       string
	activates []string
}{
	{"Vista Client VL: Vista Business/Enterprise", "windows-vista", "windows",
		[]string{"vista"}},
	{"WS2008 KMS_A: WS2008 Web, HPC + Vista", "server-2008-kms-a", "windows",
		[]string{"ws2008-a", "vista"}},
	{"WS2008 KMS_B: A + WS2008 Std/Ent + Vista", "server-2008-kms-b", "windows",
		[]string{"ws2008-a", "ws2008-b", "vista"}},
	{"WS2008 KMS_C: B + WS2008 Datacenter, Itanium", "server-2008-kms-c", "windows",
		join(ws2008All, []string{"vista"})},
	{"Win 7 Client VL: Win 7 Pro/Ent, Vista Business/Ent", "windows-7", "windows",
		[]string{"win7", "vista"}},
	{"WS2008 R2 KMS_A: WS2008 R2 Web/HPC, WS2008 A, Win 7, Vista", "server-2008r2-kms-a", "windows",
		[]string{"ws2008r2-a", "ws2008-a", "win7", "vista"}},
	{"WS2008 R2 KMS_B: A + WS2008 R2 Std/Ent + WS2008 B", "server-2008r2-kms-b", "windows",
		[]string{"ws2008r2-a", "ws2008r2-b", "ws2008-a", "ws2008-b", "win7", "vista"}},
	{"WS2008 R2 KMS_C: all WS2008 R2 and WS2008 + Win 7 + Vista", "server-2008r2-kms-c", "windows",
		join(ws2008r2All, ws2008All, []string{"win7", "vista"})},
	{"Win 8: Win 8 Pro/Ent, Win 7, Vista", "windows-8", "windows",
		[]string{"win8", "win7", "vista"}},
	{"WS2012: WS2012, WS2008 R2, WS2008, Win 8, 7, Vista", "windows-server-2012", "windows",
		join([]string{"ws2012"}, ws2008r2All, ws2008All, []string{"win8", "win7", "vista"})},
	{"Win 8.1: Win 8.1, 8, 7, Vista", "windows-8.1", "windows",
		[]string{"win8.1", "win8", "win7", "vista"}},
	{"WS2012 R2: WS2012 R2, 2012, 2008 R2, 2008, Win 8.1, 8, 7, Vista", "windows-server-2012r2", "windows",
		join([]string{"ws2012r2", "ws2012"}, ws2008r2All, ws2008All, []string{"win8.1", "win8", "win7", "vista"})},
	{"WS2012 R2 for Windows 10: above + Win 10 Pro/Ent/Edu, LTSB 2015", "windows-server-2012r2-win10", "windows",
		join([]string{"ws2012r2", "ws2012"}, ws2008r2All, ws2008All, []string{"win8.1", "win8", "win7", "vista"}, win10IDs)},
	{"Windows 10 2015: Win 10 + LTSB 2015, 8.1, 7 (licence list adds Win 8, Vista)", "windows-10-2015", "windows",
		join(win10IDs, []string{"win8.1", "win8", "win7", "vista"})},
	{"Windows 10 2016: + LTSB 2016", "windows-10-2016", "windows",
		join(win10IDs, []string{"win10-ltsb2016", "win8.1", "win8", "win7", "vista"})},
	{"Windows 10 2019: + LTSC 2019", "windows-10-2019", "windows",
		join(win10IDs, []string{"win10-ltsb2016", "win10-ltsc2019", "win8.1", "win8", "win7", "vista"})},
	{"WS2016: WS2016, 2012 R2, 2012, 2008 R2, 2008; Win 10 (LTSB 2015/2016), 8.1, 7", "windows-server-2016", "windows",
		join([]string{"ws2016", "ws2012r2", "ws2012"}, ws2008r2All, ws2008All,
			win10IDs, []string{"win10-ltsb2016", "win8.1", "win8", "win7", "vista"})},
	{"WS2019: + WS2019, Win 10 LTSC/LTSB", "windows-server-2019", "windows",
		join([]string{"ws2019", "ws2016", "ws2012r2", "ws2012"}, ws2008r2All, ws2008All,
			win10IDs, []string{"win10-ltsb2016", "win10-ltsc2019", "win8.1", "win8", "win7", "vista"})},
	{"WS2022: + WS2022, Win 11 (sends the Win 10 ID); LTSC 2021 by hierarchy", "windows-server-2022", "windows",
		join([]string{"ws2022", "ws2019", "ws2016", "ws2012r2", "ws2012"}, ws2008r2All, ws2008All,
			win10IDs, []string{"win10-ltsb2016", "win10-ltsc2019", "win10-ltsc2021", "win8.1", "win8", "win7", "vista"})},
	{"WS2025: + WS2025, Win 11 LTSC 2024 (22 counted IDs, licensing data)", "windows-server-2025", "windows",
		join([]string{"ws2025", "ws2022", "ws2019", "ws2016", "ws2012r2", "ws2012"}, ws2008r2All, ws2008All,
			win10IDs, []string{"win10-ltsb2016", "win10-ltsc2019", "win10-ltsc2021", "win11-ltsc2024", "win8.1", "win8", "win7", "vista"})},
	{"Win 10/11 China Government: own host key", "windows-10-china-gov", "windows",
		[]string{"win10-china-gov"}},
	{"Office 2010: Office/Project/Visio 2010 VL", "office-2010", "office2010", []string{"office2010"}},
	{"Office 2013: Office 2013 VL", "office-2013", "office", []string{"office2013"}},
	{"Office 2016: Office 2016 VL", "office-2016", "office", []string{"office2016"}},
	{"Office 2019: Office 2019 VL", "office-2019", "office", []string{"office2019"}},
	{"Office LTSC 2021: Office LTSC 2021 VL", "office-ltsc-2021", "office", []string{"office2021"}},
	{"Office LTSC 2024: Office LTSC 2024 VL", "office-ltsc-2024", "office", []string{"office2024"}},
}

func TestHostKeyGroupsMatchSeedTable(t *testing.T) {
	c := Default()
	covered := map[string]bool{}
	for _, tc := range hostKeyTable {
		t.Run(tc.group, func(t *testing.T) {
			g, ok := c.Group(tc.group)
			if !ok {
				t.Fatalf("row %q: group %q missing", tc.row, tc.group)
			}
			covered[g.Name] = true
			app := appID[tc.app]
			if g.AppID != app {
				t.Errorf("application = %s, want %s", g.AppID, app)
			}
			want := map[string]bool{}
			for _, k := range tc.activates {
				if want[k] {
					t.Fatalf("test table lists %q twice", k)
				}
				want[k] = true
			}
			for key, text := range cid {
				id := guid.MustParse(text)
				if got := g.Covers(app, id); got != want[key] {
					t.Errorf("row %q: Covers(%s %s) = %v, want %v", tc.row, key, id, got, want[key])
				}
				// Another application's ID never matches, even for a listed counted ID.
				for name, other := range appID {
					if other != app && g.Covers(other, id) {
						t.Errorf("Covers(app %s, %s) = true for a %s group", name, key, tc.app)
					}
				}
			}
			if len(g.Activates) != len(tc.activates) {
				t.Errorf("activates %d counted IDs, want %d", len(g.Activates), len(tc.activates))
			}
		})
	}
	for _, g := range c.Groups() {
		if !covered[g.Name] {
			t.Errorf("group %q is not in the seeds' table test", g.Name)
		}
	}
}

// The example the issue spells out.
func TestServer2008R2GroupBExample(t *testing.T) {
	c := Default()
	g, ok := c.Group("Server-2008R2-KMS-B")
	if !ok {
		t.Fatal("server-2008r2-kms-b missing (lookup must ignore case)")
	}
	win := appID["windows"]
	for _, k := range []string{"ws2008r2-a", "ws2008r2-b", "ws2008-a", "ws2008-b", "vista", "win7"} {
		if !g.Covers(win, guid.MustParse(cid[k])) {
			t.Errorf("KMS_B must activate %s", k)
		}
	}
	for _, k := range []string{"ws2008r2-c", "ws2008-c", "win8", "ws2012"} {
		if g.Covers(win, guid.MustParse(cid[k])) {
			t.Errorf("KMS_B must refuse %s", k)
		}
	}
	// Editions resolve to counted IDs the host decides on.
	for _, e := range []string{"Windows 7 Enterprise", "Windows Vista Business", "Windows Server 2008 R2 Enterprise", "Windows Server 2008 Standard"} {
		ed, ok := c.Edition(e)
		if !ok {
			t.Fatalf("edition %q missing", e)
		}
		if !g.Covers(ed.AppID, ed.CountedID) {
			t.Errorf("KMS_B must activate %s", e)
		}
	}
	ed, ok := c.Edition("ws2008r2-datacenter")
	if !ok {
		t.Fatal("alias ws2008r2-datacenter missing")
	}
	if g.Covers(ed.AppID, ed.CountedID) {
		t.Error("KMS_B must refuse Windows Server 2008 R2 Datacenter (group C)")
	}
}

// Windows 11 has no client host key of its own: its clients send the
// Windows 10 volume ID, which the Windows 10 client keys and Server 2016+
// keys cover (kms-host-semantics.md §2).
func TestWindows11CoveredByWin10AndNewerServerKeys(t *testing.T) {
	c := Default()
	e, ok := c.Edition("win11-pro")
	if !ok {
		t.Fatal("win11-pro alias missing")
	}
	if e.CountedID != guid.MustParse(cid["win10"]) {
		t.Fatalf("Windows 11 Pro sends %s, want the Windows 10 volume ID", e.CountedID)
	}
	var names []string
	for _, g := range c.GroupsCovering(e.AppID, e.CountedID) {
		names = append(names, g.Name)
	}
	want := []string{"windows-server-2012r2-win10", "windows-10-2015", "windows-10-2016", "windows-10-2019",
		"windows-server-2016", "windows-server-2019", "windows-server-2022", "windows-server-2025"}
	if len(names) != len(want) {
		t.Fatalf("groups covering Windows 11 = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("groups covering Windows 11 = %v, want %v", names, want)
		}
	}
}
