#!/usr/bin/env bash
# `make soak`: kill -9 the responder repeatedly under full activation load
# and prove that no activation a client saw answered was lost.
#
# Builds kms-responder and test/resilience/soakcheck, starts `serve` on
# loopback with a temporary data directory, runs `soakcheck load` (fresh
# client machine IDs over persistent connections, every answered one
# appended to a file) and, SOAK_KILLS times at random moments, kill -9s the
# responder, checks with `soakcheck verify` that the ledger opens cleanly and
# holds every activation answered so far, and restarts it. Prints requests
# answered, restarts and records lost; exits 1 if any record was lost.
#
#   make soak
#   SOAK_KILLS=5 SOAK_CONNECTIONS=16 build/soak.sh
#
# SOAK_KILLS        kill -9 / restart cycles (default 20)
# SOAK_CONNECTIONS  concurrent client connections (default 8)
# SOAK_MAX_UPTIME   longest run between kills, in tenths of a second (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${SOAK_KILLS:-20}
conns=${SOAK_CONNECTIONS:-8}
maxup=${SOAK_MAX_UPTIME:-30}

work=$(mktemp -d /tmp/kmsdns-soak.XXXXXX)
serve_pid=""
load_pid=""
cleanup() {
	[[ -z $load_pid ]] || kill "$load_pid" 2>/dev/null || true
	[[ -z $serve_pid ]] || kill -9 "$serve_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "soak: building"
go build -trimpath -o "$work/kms-responder" ./responder
go build -trimpath -o "$work/soakcheck" ./test/resilience/soakcheck
ports=($(go run ./build/freeport -n 2))
port=${ports[0]} admin=${ports[1]}

start_serve() {
	"$work/kms-responder" serve --group windows-server-2025 --data "$work/data" \
		--listen "127.0.0.1:$port" --metrics "127.0.0.1:$admin" --log-level error \
		>>"$work/serve.log" 2>&1 &
	serve_pid=$!
	for _ in $(seq 100); do
		if curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "soak: kms-responder did not become healthy:" >&2
	tail -20 "$work/serve.log" >&2
	exit 1
}

start_serve
"$work/soakcheck" load --server "127.0.0.1:$port" --out "$work/answered" --connections "$conns" >"$work/load.out" 2>&1 &
load_pid=$!
restarts=0
for i in $(seq "$kills"); do
	sleep "$(( (RANDOM % maxup) / 10 + 1 )).$(( RANDOM % 10 ))"
	kill -9 "$serve_pid"
	wait "$serve_pid" 2>/dev/null || true
	serve_pid=""
	if ! out=$("$work/soakcheck" verify --data "$work/data" --answered "$work/answered"); then
		echo "soak: after kill $i: $out" >&2
		exit 1
	fi
	echo "soak: kill $i/$kills: $out"
	start_serve
	restarts=$((restarts + 1))
done

kill -TERM "$load_pid"
wait "$load_pid" || true
load_pid=""
kill -TERM "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
serve_pid=""
cat "$work/load.out"
final=$("$work/soakcheck" verify --data "$work/data" --answered "$work/answered") || { echo "soak: $final" >&2; exit 1; }
read -r checked lost < <(sed -E 's/verify: ([0-9]+) answered.* ([0-9]+) lost/\1 \2/' <<<"$final")
echo "soak: requests answered $checked, restarts $restarts (kill -9), records lost $lost"
[[ $lost == 0 ]]
