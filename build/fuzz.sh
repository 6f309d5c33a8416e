#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 30s).
# CI runs it with FUZZTIME=3s; `make fuzz` uses the default.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
	for t in $targets; do
		echo "fuzz: $pkg $t for $fuzztime"
		if ! go test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/kmsdns-fuzz.$$.log 2>&1; then
			cat /tmp/kmsdns-fuzz.$$.log
			echo "fuzz: FAILED $pkg $t (the failing input is under $dir/testdata/fuzz/$t/)"
			status=1
		fi
	done
done
rm -f /tmp/kmsdns-fuzz.$$.log
exit $status
