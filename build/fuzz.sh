#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 30s).
# CI runs it with FUZZTIME=3s; `make fuzz` uses the default.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
retrytime=$fuzztime
if [[ $fuzztime =~ ^([0-9]+)s$ ]]; then retrytime="$((BASH_REMATCH[1] * 4))s"; fi
status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
	for t in $targets; do
		echo "fuzz: $pkg $t for $fuzztime"
		ok=0
		go test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/kmsdns-fuzz.$$.log 2>&1 && ok=1
		# On a busy machine the engine can spend the whole time replaying the seed corpus and
		# stop with "context deadline exceeded" without having found anything (no failing
		# input): that is a time-out, not a finding, so try once more with four times as long.
		if [[ $ok -eq 0 ]] && grep -q 'context deadline exceeded' /tmp/kmsdns-fuzz.$$.log &&
			! grep -q 'Failing input' /tmp/kmsdns-fuzz.$$.log; then
			echo "fuzz: $t timed out replaying its corpus; again for $retrytime"
			go test -run='^$' -fuzz="^${t}\$" -fuzztime="$retrytime" "$pkg" >/tmp/kmsdns-fuzz.$$.log 2>&1 && ok=1
		fi
		if [[ $ok -eq 0 ]]; then
			cat /tmp/kmsdns-fuzz.$$.log
			echo "fuzz: FAILED $pkg $t (the failing input is under $dir/testdata/fuzz/$t/)"
			status=1
		fi
	done
done
rm -f /tmp/kmsdns-fuzz.$$.log
exit $status
