#!/usr/bin/env bash
# The project's test command (README: `make test`). Needs Go and the Debian
# tools the end-to-end tests drive for real: dig and nsupdate (bind9-dnsutils),
# dnsperf, prometheus + promtool, and named (bind9) for the audit deletion tests
# (see build/tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

source build/tools.sh
ensure_debian_tools prometheus

echo "test: nothing built or oversized is tracked"
build/check-tree.sh

echo "test: gofmt, go vet and staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
	echo "test: gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
# build/dist (the release packager) is its own module: vet and test it too.
(cd build/dist && go vet ./... && go test -count=1 ./...)

# staticcheck, pinned, fetched through the Go module proxy like the
# project's own dependencies (nothing to install system-wide).
echo "test: staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
(cd build/dist && go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...)

echo "test: building binaries"
build/build.sh

echo "test: go test (unit, integration and end-to-end; real binaries on loopback)"
export KMSDNS_BIN="$PWD/bin"
go test -count=1 -timeout 15m ./... 2>&1 | tee /tmp/kmsdns-test.$$.log
rc=${PIPESTATUS[0]}
passed=$(grep -c '^ok ' /tmp/kmsdns-test.$$.log || true)
failed=$(grep -c '^FAIL' /tmp/kmsdns-test.$$.log || true)
rm -f /tmp/kmsdns-test.$$.log
[[ $rc -eq 0 ]] || { echo "test: go test failed"; exit "$rc"; }

# Packages and images (issue 16): amd64 only and the second build sharing
# the Go build cache, to fit CI's time; `make dist-test` does both arches
# and an empty cache. It installs the .deb with dpkg, so it needs root (CI
# is root); elsewhere it is skipped, and says so.
if [[ $(id -u) -eq 0 ]]; then
	echo "test: release artifacts (build/dist-test.sh, amd64)"
	DIST_ARCH=amd64 DIST_TEST_FRESH=0 build/dist-test.sh
else
	echo "test: SKIPPED build/dist-test.sh: it installs a .deb and needs root (run: sudo make dist-test)"
fi

echo "test: short fuzz pass over every fuzz target"
FUZZTIME=${FUZZTIME:-3s} build/fuzz.sh
echo "test: $passed passed, $failed failed"
