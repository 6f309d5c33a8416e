package catalog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Minimal valid tables the error cases below mutate.
const (
	tApps     = "key\tid\tname\tcache_size\tsource\nwindows\t55c92734-d682-4d71-983e-d6ec3f16059f\tWindows\t50\ttest\n"
	tCounted  = "key\tid\tname\tapp\tkind\tthreshold\tprotocol\tflags\tsource\nws2019\t8449b1fb-f0ea-497a-99ab-66ca96e9a0f5\tWindows Server 2019\twindows\tserver\t5\t6\t-\ttest\nwin10-retail\te1c51358-fe3e-4203-a4a2-3b6b20c9734e\tWindows 10 (Retail)\twindows\tclient\t25\t6\tretail\ttest\n"
	tBuilds   = "build\tplatform_id\trelease_date\tname\tsource\n17763\t3612\t2018-10-02\tServer 2019\ttest\n"
	tGroups   = "name\tapp\tcsvlk\tepid_group\tkeyid_min\tkeyid_max\tmin_build\tderived\tincludes\tactivates\tdescription\tsource\nwindows-server-2019\twindows\t2e7a9ad1-a849-4b56-babe-17d5a29fe4b4\t206\t551000000\t570999999\t17763\tfalse\t-\tws2019\tWS2019 host key\ttest\n"
	tEditions = "name\taliases\tsku\tcounted\tgvlk\tprotocol\tsource\nWindows Server 2019 Standard\tws2019-standard\tde32eafd-aaee-4662-9444-c1befb41bde2\tws2019\tN69G4-B89J2-4G8F4-WWYCC-J464C\t6\tgvlk: test\n"
)

func minimal() map[string][]byte {
	return map[string][]byte{
		FileApps: []byte(tApps), FileCounted: []byte(tCounted), FileBuilds: []byte(tBuilds),
		FileGroups: []byte(tGroups), FileEditions: []byte(tEditions),
	}
}

func TestParseMinimal(t *testing.T) {
	c, err := Parse(minimal())
	if err != nil {
		t.Fatal(err)
	}
	g, ok := c.Group("windows-server-2019")
	if !ok || len(g.Activates) != 1 {
		t.Fatalf("group = %+v", g)
	}
	e, ok := c.Edition("ws2019-standard")
	if !ok || !g.Covers(e.AppID, e.CountedID) {
		t.Fatalf("edition %+v not covered by %+v", e, g)
	}
	// Comments, blank lines and CRLF line ends are accepted.
	files := minimal()
	files[FileApps] = []byte("# comment\r\n\r\n" + strings.ReplaceAll(tApps, "\n", "\r\n"))
	if _, err := Parse(files); err != nil {
		t.Errorf("CRLF and comments: %v", err)
	}
}

// Each case edits one table of the minimal catalog; the error must name the
// file, the line and the reason.
func TestParseErrors(t *testing.T) {
	groupRow := func(fields ...string) string {
		return strings.SplitN(tGroups, "\n", 2)[0] + "\n" + strings.Join(fields, "\t") + "\n"
	}
	g := []string{"windows-server-2019", "windows", "2e7a9ad1-a849-4b56-babe-17d5a29fe4b4", "206", "551000000", "570999999", "17763", "false", "-", "ws2019", "d", "s"}
	with := func(i int, v string) []string {
		out := append([]string(nil), g...)
		out[i] = v
		return out
	}
	cases := []struct {
		name, file, data, want string
	}{
		{"missing table", FileBuilds, "\x00delete", "builds.tsv: missing table"},
		{"empty table", FileApps, "", "apps.tsv: no header line"},
		{"no applications", FileApps, "key\tid\tname\tcache_size\tsource\n", "apps.tsv: no applications"},
		{"wrong header", FileApps, "key\tid\tname\tsource\n", "apps.tsv:1: header is"},
		{"short row", FileApps, tApps + "x\ty\n", "apps.tsv:3: 2 fields, want 5"},
		{"long row", FileApps, tApps + "a\tb\tc\td\te\tf\n", "apps.tsv:3: 6 fields, want 5"},
		{"empty field", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46-f275c6370663\t\t10\tx\n", "apps.tsv:3: column name is empty"},
		{"padded field", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46-f275c6370663\tOffice \t10\tx\n", "apps.tsv:3: column name has leading or trailing spaces"},
		{"control char", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46-f275c6370663\tOf\x01fice\t10\tx\n", "apps.tsv:3: control character 0x01"},
		{"bad utf8", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46-f275c6370663\tOf\xfffice\t10\tx\n", "apps.tsv:3: line is not valid UTF-8"},
		{"oversized", FileApps, tApps + "#" + strings.Repeat("x", maxTableBytes), "apps.tsv: "},
		{"long field", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46-f275c6370663\t" + strings.Repeat("x", maxFieldBytes+1) + "\t10\tx\n", "apps.tsv:3: column name is 2049 bytes"},
		{"bad guid", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46\tOffice\t10\tx\n", "apps.tsv:3: column id: guid:"},
		{"nil guid", FileApps, tApps + "office\t00000000-0000-0000-0000-000000000000\tOffice\t10\tx\n", "apps.tsv:3: column id: nil GUID"},
		{"duplicate app guid", FileApps, tApps + "office\t55C92734-D682-4D71-983E-D6EC3F16059F\tOffice\t10\tx\n", "apps.tsv:3: column id: GUID 55c92734-d682-4d71-983e-d6ec3f16059f already defined at apps.tsv:2"},
		{"duplicate app key", FileApps, tApps + "windows\t0ff1ce15-a989-479d-af46-f275c6370663\tOffice\t10\tx\n", "apps.tsv:3: application key \"windows\" defined twice"},
		{"bad key", FileApps, tApps + "Office\t0ff1ce15-a989-479d-af46-f275c6370663\tOffice\t10\tx\n", "apps.tsv:3: column key: \"Office\" is not"},
		{"cache not a number", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46-f275c6370663\tOffice\tten\tx\n", "apps.tsv:3: column cache_size: \"ten\" is not a decimal integer"},
		{"cache leading zero", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46-f275c6370663\tOffice\t010\tx\n", "is not a decimal integer"},
		{"cache out of range", FileApps, tApps + "office\t0ff1ce15-a989-479d-af46-f275c6370663\tOffice\t0\tx\n", "apps.tsv:3: column cache_size: 0 is outside 1..1000"},
		{"guid reused across tables", FileCounted, tCounted + "x\t55c92734-d682-4d71-983e-d6ec3f16059f\tX\twindows\tclient\t25\t6\t-\tt\n", "counted.tsv:4: column id: GUID 55c92734-d682-4d71-983e-d6ec3f16059f already defined at apps.tsv:2"},
		{"unknown app", FileCounted, tCounted + "x\t0ff1ce15-a989-479d-af46-f275c6370663\tX\toffice\toffice\t5\t6\t-\tt\n", "counted.tsv:4: column app: unknown application \"office\""},
		{"bad kind", FileCounted, tCounted + "x\t0ff1ce15-a989-479d-af46-f275c6370663\tX\twindows\tdesktop\t5\t6\t-\tt\n", "counted.tsv:4: column kind: \"desktop\""},
		{"bad protocol", FileCounted, tCounted + "x\t0ff1ce15-a989-479d-af46-f275c6370663\tX\twindows\tserver\t5\t7\t-\tt\n", "counted.tsv:4: column protocol: 7 is outside 4..6"},
		{"threshold beyond cache", FileCounted, tCounted + "x\t0ff1ce15-a989-479d-af46-f275c6370663\tX\twindows\tserver\t26\t6\t-\tt\n", "counted.tsv:4: threshold 26 needs a cache of 52"},
		{"bad flags", FileCounted, tCounted + "x\t0ff1ce15-a989-479d-af46-f275c6370663\tX\twindows\tserver\t5\t6\tlab\tt\n", "counted.tsv:4: column flags: \"lab\""},
		{"builds out of order", FileBuilds, tBuilds + "9600\t6401\t2013-10-17\t8.1\tt\n", "builds.tsv:3: build 9600 is not newer than the row before (17763)"},
		{"bad date", FileBuilds, tBuilds + "26100\t3612\t2024-02-30\t11\tt\n", "builds.tsv:3: column release_date: \"2024-02-30\""},
		{"no builds", FileBuilds, "build\tplatform_id\trelease_date\tname\tsource\n", "builds.tsv: no host builds"},
		{"no groups", FileGroups, strings.SplitN(tGroups, "\n", 2)[0] + "\n", "groups.tsv: no host key groups"},
		{"unknown counted", FileGroups, groupRow(with(9, "ws2016")...), "groups.tsv:2: column activates: unknown counted ID \"ws2016\""},
		{"retail in group", FileGroups, groupRow(with(9, "ws2019,win10-retail")...), "groups.tsv:2: column activates: counted ID \"win10-retail\" is retail"},
		{"counted twice", FileGroups, groupRow(with(9, "ws2019,ws2019")...), "groups.tsv:2: column activates: \"ws2019\" listed twice"},
		{"empty set", FileGroups, groupRow(with(9, "-")...), "groups.tsv:2: group activates nothing"},
		{"include undefined", FileGroups, groupRow(with(8, "windows-server-2016")...), "groups.tsv:2: column includes: \"windows-server-2016\" is not a group defined above"},
		{"include self", FileGroups, groupRow(with(8, "windows-server-2019")...), "is not a group defined above"},
		{"reversed key range", FileGroups, groupRow(with(5, "1")...), "groups.tsv:2: key-ID range 551000000..1 is empty"},
		{"key id too long", FileGroups, groupRow(with(5, "1000000000")...), "groups.tsv:2: column keyid_max: 1000000000 is outside"},
		{"unknown min build", FileGroups, groupRow(with(6, "9600")...), "groups.tsv:2: column min_build: 9600 is not a build listed in builds.tsv"},
		{"bad derived", FileGroups, groupRow(with(7, "yes")...), "groups.tsv:2: column derived: \"yes\""},
		{"bad group name", FileGroups, groupRow(with(0, "Windows Server 2019")...), "groups.tsv:2: column name:"},
		{"csvlk reuses sku", FileGroups, groupRow(with(2, "8449b1fb-f0ea-497a-99ab-66ca96e9a0f5")...), "groups.tsv:2: column csvlk: GUID 8449b1fb-f0ea-497a-99ab-66ca96e9a0f5 already defined at counted.tsv:2"},
		{"duplicate group", FileGroups, tGroups + strings.Join(with(2, "-"), "\t") + "\n", "groups.tsv:3: host key group \"windows-server-2019\" defined twice"},
		{"bad gvlk", FileEditions, strings.Replace(tEditions, "N69G4", "N69G0", 1), "editions.tsv:2: column gvlk: \"N69G0-"},
		{"unknown edition counted", FileEditions, strings.Replace(tEditions, "\tws2019\tN69", "\tws2016\tN69", 1), "editions.tsv:2: column counted: unknown counted ID \"ws2016\""},
		{"edition protocol mismatch", FileEditions, strings.Replace(tEditions, "\t6\tgvlk", "\t5\tgvlk", 1), "editions.tsv:2: protocol 5 differs from 6"},
		{"duplicate alias", FileEditions, tEditions + "Windows Server 2019 Datacenter\tws2019-standard\t34e1ae55-27f8-4950-8877-7a03be5fb181\tws2019\tWMDGN-G9PQG-XVVXX-R3X43-63DFG\t6\tx\n", "editions.tsv:3: edition name or alias \"ws2019-standard\" already used"},
		{"duplicate sku", FileEditions, tEditions + "Other\tother\tDE32EAFD-aaee-4662-9444-c1befb41bde2\tws2019\tWMDGN-G9PQG-XVVXX-R3X43-63DFG\t6\tx\n", "editions.tsv:3: column sku: GUID de32eafd-aaee-4662-9444-c1befb41bde2 already defined at editions.tsv:2"},
		{"unexpected table", "extra.tsv", "x", "extra.tsv: unexpected table"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := minimal()
			if tc.data == "\x00delete" {
				delete(files, tc.file)
			} else {
				files[tc.file] = []byte(tc.data)
			}
			c, err := Parse(files)
			if err == nil {
				t.Fatalf("Parse succeeded (%d groups), want error containing %q", len(c.Groups()), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File == "" {
				t.Fatalf("error %v is not a *ParseError with a file", err)
			}
		})
	}
}

// Unchanged embedded data re-parses identically, and any single-byte
// truncation of a table either parses or fails with a ParseError (never a
// panic).
func TestParseTruncatedEmbeddedTables(t *testing.T) {
	for name, data := range EmbeddedFiles() {
		step := len(data)/200 + 1
		for n := 0; n < len(data); n += step {
			files := EmbeddedFiles()
			files[name] = bytes.Clone(data[:n])
			if _, err := Parse(files); err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("%s cut at %d: %v is not a *ParseError", name, n, err)
				}
			}
		}
	}
}
