package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// meta is the version information of one build, as build/version.sh sets it.
type meta struct {
	version string    // git describe: v1.2.0, v1.2.0-4-g1a2b3c4d5e6f, …-dirty
	commit  string    // full hash
	date    time.Time // commit time = SOURCE_DATE_EPOCH
}

func metaFromEnv() (meta, error) {
	m := meta{version: os.Getenv("KMSDNS_VERSION"), commit: os.Getenv("KMSDNS_COMMIT")}
	if m.version == "" || m.commit == "" {
		return m, fmt.Errorf("KMSDNS_VERSION and KMSDNS_COMMIT are unset: run through build/dist.sh (make dist), which sets them from git")
	}
	sde := os.Getenv("SOURCE_DATE_EPOCH")
	sec, err := strconv.ParseInt(sde, 10, 64)
	if err != nil || sec <= 0 {
		return m, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want the commit time in Unix seconds", sde)
	}
	m.date = time.Unix(sec, 0).UTC()
	return m, nil
}

// describeRE parses build/version.sh's `git describe` form.
var describeRE = regexp.MustCompile(`^v(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.]+?))??(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$`)

// packageVersion turns a git describe version into a version that dpkg and
// rpm order like git history: v1.2.0 → 1.2.0; v1.2.0-rc1 → 1.2.0~rc1 (before
// 1.2.0); v1.2.0-4-g1a2b → 1.2.0+git4.g1a2b (after 1.2.0, ordered by commit
// count); a -dirty tree adds .dirty. Only [0-9A-Za-z.+~] are used, which both
// formats accept in a version.
func packageVersion(describe string) (string, error) {
	m := describeRE.FindStringSubmatch(describe)
	if m == nil {
		return "", fmt.Errorf("version %q is not vX.Y.Z[-pre][-N-gHASH][-dirty] (git describe of a v* tag)", describe)
	}
	v := m[1]
	if m[2] != "" {
		v += "~" + m[2]
	}
	if m[3] != "" {
		v += "+git" + m[3] + ".g" + m[4]
	}
	if m[5] != "" {
		if m[3] == "" {
			v += "+dirty"
		} else {
			v += ".dirty"
		}
	}
	return v, nil
}

// imageTag is the version as an OCI tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}).
func imageTag(describe string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, describe)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
