package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	stamped := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/kmsdns/kmsdns", Version: "v0.0.0-20261122134808-c95bae0cb720+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "c95bae0cb7201be5015424093b3a64a12a687d97"},
			{Key: "vcs.time", Value: "2026-11-22T13:48:08Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name           string
		ver, rev, date string
		bi             *debug.BuildInfo
		want           Info
		wantString     string
	}{
		{
			name: "ldflags win over VCS stamps",
			ver:  "v1.2.0-4-g1a2b3c4", rev: "1a2b3c4d5e6f7a8b9c0d", date: "2026-12-01T10:00:00Z", bi: stamped,
			want:       Info{Version: "v1.2.0-4-g1a2b3c4", Commit: "1a2b3c4d5e6f7a8b9c0d", Date: "2026-12-01T10:00:00Z"},
			wantString: "v1.2.0-4-g1a2b3c4 (commit 1a2b3c4d5e6f, 2026-12-01T10:00:00Z, ",
		},
		{
			name: "dirty ldflags version is modified",
			ver:  "v1.2.0-dirty", rev: "1a2b3c4d", date: "2026-12-01T10:00:00Z",
			want:       Info{Version: "v1.2.0-dirty", Commit: "1a2b3c4d", Date: "2026-12-01T10:00:00Z", Modified: true},
			wantString: "v1.2.0-dirty (commit 1a2b3c4d, 2026-12-01T10:00:00Z, ",
		},
		{
			name:       "VCS stamps without ldflags",
			bi:         stamped,
			want:       Info{Version: "v0.0.0-20261122134808-c95bae0cb720+dirty", Commit: "c95bae0cb7201be5015424093b3a64a12a687d97", Date: "2026-11-22T13:48:08Z", Modified: true},
			wantString: "v0.0.0-20261122134808-c95bae0cb720+dirty (commit c95bae0cb720 with local changes, 2026-11-22T13:48:08Z, ",
		},
		{
			name:       "nothing known",
			bi:         &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			want:       Info{Version: "(devel)"},
			wantString: "(devel) (go",
		},
		{name: "no build info", want: Info{Version: "(devel)"}, wantString: "(devel) (go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := get(tc.ver, tc.rev, tc.date, tc.bi)
			if got.Go == "" || got.Platform == "" {
				t.Errorf("Go/Platform unset: %+v", got)
			}
			got.Go, got.Platform = "", ""
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if s := get(tc.ver, tc.rev, tc.date, tc.bi).String(); !strings.HasPrefix(s, tc.wantString) {
				t.Errorf("String() = %q, want prefix %q", s, tc.wantString)
			}
		})
	}
}
