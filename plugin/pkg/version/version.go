// Package version reports which kmsdns build a binary comes from, for
// `kms-responder version` and `coredns -version`.
//
// There is one source: git. build/version.sh derives the version (`git
// describe`, with v0.0.0 standing in before the first tag), the commit and
// the commit time, and build/build.sh and build/dist.sh hand them to the
// linker:
//
//	-X github.com/kmsdns/kmsdns/plugin/pkg/version.version=v0.0.0-311-gc95bae0
//	-X github.com/kmsdns/kmsdns/plugin/pkg/version.commit=c95bae0cb720…
//	-X github.com/kmsdns/kmsdns/plugin/pkg/version.date=2026-11-22T13:48:08Z
//
// A binary built without them (plain `go build`) falls back to the VCS
// information the go command stamps (vcs.revision, vcs.time, vcs.modified;
// only in a clone whose .git is a directory), and says "(devel)" otherwise.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X by build/build.sh and build/dist.sh (from build/version.sh).
var (
	version string
	commit  string
	date    string
)

// Info describes a build.
type Info struct {
	// Version is `git describe` output such as v1.2.0 or v1.2.0-4-g1a2b3c4
	// (v0.0.0-N-gHASH before the first tag), with a -dirty suffix when the
	// tree had uncommitted changes; "(devel)" when unknown.
	Version string `json:"version"`
	// Commit is the full git commit hash; empty when unknown.
	Commit string `json:"commit,omitempty"`
	// Date is the commit time (RFC 3339, UTC): builds of one commit are
	// identical, so the build's own time is not recorded.
	Date string `json:"date,omitempty"`
	// Modified reports uncommitted changes in the tree the binary was built from.
	Modified bool `json:"modified"`
	// Go is the Go toolchain version.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns the running binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(version, commit, date, bi)
}

// get is Get with its inputs explicit, for tests.
func get(ver, rev, when string, bi *debug.BuildInfo) Info {
	i := Info{
		Version:  ver,
		Commit:   rev,
		Date:     when,
		Modified: strings.HasSuffix(ver, "-dirty"),
		Go:       runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if i.Version != "" {
		return i
	}
	i.Version = "(devel)"
	if bi == nil {
		return i
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		i.Version = v // stamped by the go command from the VCS (Go ≥ 1.24)
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.time":
			i.Date = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the one-line form both binaries print, e.g.
// "v0.1.0-4-g1a2b3c4 (commit 1a2b3c4d5e6f, 2026-11-22T13:48:08Z, go1.26.8 linux/amd64)".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	b.WriteString(" (")
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		fmt.Fprintf(&b, "commit %s", c)
		if i.Modified && !strings.HasSuffix(i.Version, "-dirty") {
			b.WriteString(" with local changes")
		}
		b.WriteString(", ")
	}
	if i.Date != "" {
		b.WriteString(i.Date)
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "%s %s)", i.Go, i.Platform)
	return b.String()
}
