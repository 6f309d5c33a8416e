#!/usr/bin/env bash
# The one place a kmsdns version comes from: git. Sourced by build.sh and
# dist.sh (plugin/pkg/version documents what the binaries do with it).
#
#   KMSDNS_VERSION  `git describe` (v1.2.0, v1.2.0-4-g1a2b3c4d5e6f; before the
#                   first v* tag: v0.0.0-<commits>-g<hash>), "-dirty" when the
#                   tree has uncommitted changes
#   KMSDNS_COMMIT   full commit hash
#   KMSDNS_DATE     commit time, RFC 3339 UTC
#   SOURCE_DATE_EPOCH  commit time, Unix seconds (reproducible-builds.org):
#                   every timestamp in the artifacts
#   KMSDNS_LDFLAGS  the -X flags that put the first three into the binaries
#
# Outside a git checkout all stay empty (the binaries then say "(devel)").
kmsdns_version() {
	KMSDNS_VERSION="" KMSDNS_COMMIT="" KMSDNS_DATE="" KMSDNS_LDFLAGS=""
	if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
		return 0
	fi
	git update-index -q --refresh >/dev/null 2>&1 || true
	KMSDNS_COMMIT=$(git rev-parse HEAD)
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct HEAD)
	KMSDNS_DATE=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD)
	if ! KMSDNS_VERSION=$(git describe --tags --match 'v[0-9]*' --abbrev=12 --dirty 2>/dev/null); then
		KMSDNS_VERSION="v0.0.0-$(git rev-list --count HEAD)-g$(git rev-parse --short=12 HEAD)"
		git diff-index --quiet HEAD -- || KMSDNS_VERSION+="-dirty"
	fi
	local p=github.com/kmsdns/kmsdns/plugin/pkg/version
	KMSDNS_LDFLAGS="-X $p.version=$KMSDNS_VERSION -X $p.commit=$KMSDNS_COMMIT -X $p.date=$KMSDNS_DATE"
	export KMSDNS_VERSION KMSDNS_COMMIT KMSDNS_DATE SOURCE_DATE_EPOCH KMSDNS_LDFLAGS
}
