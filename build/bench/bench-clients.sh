#!/usr/bin/env bash
# A ledger of many clients (issues 14 and 23): fills a loopback
# `kms-responder serve` (ledger on) with BENCH_CLIENTS distinct clients, then
# measures, in the same run:
#   - the data directory's size per client, and serve's RSS after the fill;
#   - start-up: serve restarted on that directory, until it answers;
#     serve's RSS then (a restarted host's steady memory);
#   - renewals: the activation rate of 1000 clients renewing again and again
#     on that ledger against the same on an empty ledger (a second serve);
#   - the client-inventory export: the activation rate with full CSV
#     exports running back to back against without, and RSS during them.
# Every process it starts is stopped.
#
#   build/bench/bench-clients.sh
#   BENCH_CLIENTS=100000 BENCH_REQUESTS=30000 build/bench/bench-clients.sh
#
# BENCH_CLIENTS   clients in the ledger before measuring (default 1000000)
# BENCH_REQUESTS  activations per measured bench (default 50000)
# BENCH_PAIRS     interleaved pairs per comparison (default 3)
# BENCH_BIN       the kms-responder binary (default bin/kms-responder)
set -euo pipefail
cd "$(dirname "$0")/../.."
clients=${BENCH_CLIENTS:-1000000}
n=${BENCH_REQUESTS:-50000}
pairs=${BENCH_PAIRS:-3}
bin=${BENCH_BIN:-bin/kms-responder}
[[ -x $bin ]] || go build -trimpath -o "$bin" ./responder

work=$(mktemp -d /tmp/kmsdns-bench-clients.XXXXXX)
serve_pid="" empty_pid="" sampler_pid="" export_pid=""
cleanup() {
	for p in $export_pid $sampler_pid; do kill "$p" 2>/dev/null || true; done
	[[ -f $work/export.pid ]] && kill "$(cat "$work/export.pid")" 2>/dev/null || true
	for p in $serve_pid $empty_pid; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[[ ${BENCH_KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

ports=($(go run ./build/freeport -n 4))
kms=127.0.0.1:${ports[0]}
admin=127.0.0.1:${ports[1]}
empty_kms=127.0.0.1:${ports[2]}
empty_admin=127.0.0.1:${ports[3]}

# start DATA KMS ADMIN: starts serve in the background (its pid in
# $started) and waits until its admin endpoint answers (the seconds that
# took in $took).
start() {
	local s e
	s=$(date +%s.%N)
	$bin serve --group windows-server-2025 --listen "$2" --metrics "$3" --data "$1" --log-level warn >>"$work/serve.log" 2>&1 &
	started=$!
	for _ in $(seq 600); do
		$bin status --admin "$3" --json >/dev/null 2>&1 && break
		kill -0 "$started" 2>/dev/null || {
			echo "bench-clients: serve exited; log:" >&2
			tail -20 "$work/serve.log" >&2
			exit 1
		}
		sleep 0.02
	done
	e=$(date +%s.%N)
	took=$(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.2f", b - a}')
}
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$serve_pid/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

start "$work/data" "$kms" "$admin"
serve_pid=$started
echo "bench-clients: filling the ledger with $clients clients" >&2
t0=$(date +%s.%N)
$bin bench --server "$kms" --connections 64 --requests "$clients" --clients "$clients" >/dev/null 2>&1
echo "bench-clients: filled in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')s" >&2
sleep 3 # let the applier settle
fill_rss=$(kib VmRSS) fill_hwm=$(kib VmHWM)

# Stopped, the directory holds only what a restart reads.
kill -TERM "$serve_pid"
wait "$serve_pid"
serve_pid=""
disk=$(du -sb "$work/data" | awk '{print $1}')
start "$work/data" "$kms" "$admin"
serve_pid=$started startup=$took
sleep 1
start_rss=$(kib VmRSS)

start "$work/empty" "$empty_kms" "$empty_admin"
empty_pid=$started

# rate SERVER: one bench of n activations by 1000 clients (renewals after
# the first 1000): prints activations/s.
rate() {
	$bin bench --server "$1" --connections 64 --requests "$n" --clients 1000 2>/dev/null | awk '/^throughput:/ {print $2}'
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

# Renewals: interleaved pairs, the empty ledger first, so slow spells from
# other load on the machine hit both sides.
renew=()
for i in $(seq "$pairs"); do
	e=$(rate "$empty_kms")
	f=$(rate "$kms")
	r=$(awk -v a="$f" -v b="$e" 'BEGIN {printf "%.2f", a / b}')
	renew+=("$r")
	echo "renewal pair $i: empty ledger $e act/s, $clients clients $f act/s, ratio $r"
done
kill -TERM "$empty_pid"
wait "$empty_pid" || true
empty_pid=""

# export: one full CSV export; prints rows and seconds.
export_once() {
	local s e rows
	s=$(date +%s.%N)
	rows=$($bin clients --admin "$admin" --format csv | wc -l)
	e=$(date +%s.%N)
	echo "$((rows - 1)) $(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.1f", b - a}')"
}

rss_before=$(kib VmRSS)
# RSS sampled every 100 ms from here on.
(while :; do
	kib VmRSS
	sleep 0.1
done >"$work/rss") &
sampler_pid=$!
first=$(export_once) # one export alone: its duration and row count

# Exports: interleaved pairs (no export, then exports back to back).
ratios=()
for i in $(seq "$pairs"); do
	off=$(rate "$kms")
	(while :; do
		$bin clients --admin "$admin" --format csv >/dev/null 2>&1 &
		echo $! >"$work/export.pid"
		wait $!
	done) &
	export_pid=$!
	sleep 1
	on=$(rate "$kms")
	kill "$export_pid" 2>/dev/null || true
	wait "$export_pid" 2>/dev/null || true
	kill "$(cat "$work/export.pid")" 2>/dev/null || true
	export_pid=""
	r=$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.2f", a / b}')
	ratios+=("$r")
	echo "export pair $i: no export $off act/s, during an export $on act/s, ratio $r"
done
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

read -r rows secs <<<"$first"
peak=$(sort -n "$work/rss" | tail -1)
echo
echo "bench-clients: $($bin version 2>/dev/null | head -1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "clients in the ledger:      $rows (one full export alone: ${secs}s)"
echo "data directory:             $(mib $((disk / 1024))) MiB, $(awk -v d="$disk" -v c="$rows" 'BEGIN {printf "%.0f", d / c}') bytes per client (serve stopped)"
echo "serve RSS after the fill:   $(mib "$fill_rss") MiB (peak $(mib "$fill_hwm") MiB)"
echo "start-up on that ledger:    ${startup}s until the admin endpoint answers; RSS then $(mib "$start_rss") MiB"
echo "renewals, $clients clients / empty ledger (1000 clients renewing, 64 connections, $n activations each): median $(median "${renew[@]}")"
echo "activations during an export / without ($n activations each, 64 connections): median $(median "${ratios[@]}")"
echo "serve RSS before the exports: $(mib "$rss_before") MiB; peak during them: $(mib "$peak") MiB (sampled every 100 ms; RSS includes the ledger file's mmapped pages)"
