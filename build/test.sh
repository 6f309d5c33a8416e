#!/usr/bin/env bash
# The project's test command (README: `make test`). Needs Go and the Debian
# tools the end-to-end tests drive for real: dig and nsupdate (bind9-dnsutils),
# dnsperf, prometheus + promtool, and named (bind9) for the audit deletion tests
# (see build/tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

source build/tools.sh
ensure_debian_tools prometheus

echo "test: gofmt, go vet and staticcheck"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
	echo "test: gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...

# staticcheck, pinned, fetched through the Go module proxy like the
# project's own dependencies (nothing to install system-wide).
echo "test: staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

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

echo "test: short fuzz pass over every fuzz target"
FUZZTIME=${FUZZTIME:-3s} build/fuzz.sh
echo "test: $passed passed, $failed failed"
