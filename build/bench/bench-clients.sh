#!/usr/bin/env bash
# A ledger of many clients (issues 14 and 23): fills a loopback
# `kms-responder serve` (ledger on) with BENCH_CLIENTS distinct clients, then
# measures in the same run:
#   - serve's CPU per new client during the fill, and its RSS after it;
#   - renewals (1000 clients renewing again and again) on that ledger
#     against a second serve on an empty ledger, in interleaved pairs:
#     activations/s and serve CPU per renewal;
#   - the activation rate with full inventory exports running back to back
#     (`kms-responder clients --format csv`) against without, in
#     interleaved pairs, and serve's RSS meanwhile;
#   - the data directory's size per client with serve stopped, and the time
#     a restart on it takes until `status` answers, with its RSS then.
# Every process it starts is stopped.
#
#   build/bench/bench-clients.sh
#   BENCH_CLIENTS=100000 BENCH_REQUESTS=30000 build/bench/bench-clients.sh
#
# BENCH_CLIENTS   clients in the ledger before measuring (default 1000000)
# BENCH_REQUESTS  activations per measured bench (default 50000)
# BENCH_PAIRS     interleaved pairs of each comparison (default 3)
# BENCH_BIN       the kms-responder binary (default bin/kms-responder)
set -euo pipefail
cd "$(dirname "$0")/../.."
clients=${BENCH_CLIENTS:-1000000}
n=${BENCH_REQUESTS:-50000}
bin=${BENCH_BIN:-bin/kms-responder}
[[ -x $bin ]] || go build -trimpath -o "$bin" ./responder

work=$(mktemp -d /tmp/kmsdns-bench-clients.XXXXXX)
serve_pid="" empty_pid="" sampler_pid="" export_pid=""
cleanup() {
	trap - EXIT INT TERM
	for p in $export_pid $sampler_pid; do kill "$p" 2>/dev/null || true; done
	[[ -f $work/export.pid ]] && kill "$(cat "$work/export.pid")" 2>/dev/null || true
	for p in $serve_pid $empty_pid; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
# INT and TERM end the script (cleaning up on the way out) rather than
# running cleanup and carrying on.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_serve KMS ADMIN DATA LOG: starts serve in the background (its pid in
# $started, its output appended to LOG) and waits, up to 30 s, until its
# admin endpoint answers.
start_serve() {
	$bin serve --group windows-server-2025 --listen "$1" --metrics "$2" --data "$3" --log-level warn >>"$4" 2>&1 &
	started=$!
	for _ in $(seq 600); do
		$bin status --admin "$2" --json >/dev/null 2>&1 && break
		sleep 0.05
	done
}

ports=($(go run ./build/freeport -n 2))
kms=127.0.0.1:${ports[0]}
admin=127.0.0.1:${ports[1]}
start_serve "$kms" "$admin" "$work/data" "$work/serve.log"
serve_pid=$started
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$serve_pid/status"; }
# cpu: serve's user+system CPU so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$serve_pid/stat"; }
# rss: VmRSS, and of it the anonymous memory and the mapped file's pages
# (which the kernel can drop under pressure).
rss() { echo "RSS $(($(kib VmRSS) / 1024)) MiB (anonymous $(($(kib RssAnon) / 1024)), file $(($(kib RssFile) / 1024))), peak $(($(kib VmHWM) / 1024)) MiB"; }

# rate [ADDR]: one bench of n activations by 1000 clients (renewals after
# the first 1000) against ADDR (default: the filled serve): prints
# activations/s.
rate() {
	$bin bench --server "${1:-$kms}" --connections 64 --requests "$n" --clients 1000 2>/dev/null | awk '/^throughput:/ {print $2}'
}

# renew PID ADDR: one rate bench against the serve PID listening on ADDR;
# prints activations/s and that serve's CPU per activation in µs, applier
# included (read 2.5 s after the bench).
renew() {
	local c0 r
	c0=$(awk '{print $14 + $15}' "/proc/$1/stat")
	r=$(rate "$2")
	sleep 2.5
	awk -v r="$r" -v a="$c0" -v b="$(awk '{print $14 + $15}' "/proc/$1/stat")" -v hz="$(getconf CLK_TCK)" -v n="$n" \
		'BEGIN {printf "%s %.1f", r, (b - a) / hz * 1e6 / n}'
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

echo "bench-clients: filling the ledger with $clients clients" >&2
c0=$(cpu)
t0=$(date +%s.%N)
$bin bench --server "$kms" --connections 64 --requests "$clients" --clients "$clients" >/dev/null 2>&1
echo "bench-clients: filled in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')s; $(rss)" >&2
sleep 3 # let the applier settle
echo "bench-clients: serve CPU during the fill (until the store holds it): $(awk -v a="$c0" -v b="$(cpu)" -v hz="$(getconf CLK_TCK)" -v n="$clients" 'BEGIN {printf "%.1f", (b - a) / hz * 1e6 / n}') µs per new client" >&2

# export: one full CSV export; prints rows and seconds.
export_once() {
	local s e rows
	s=$(date +%s.%N)
	rows=$($bin clients --admin "$admin" --format csv | wc -l)
	e=$(date +%s.%N)
	echo "$((rows - 1)) $(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.1f", b - a}')"
}

# Renewals: BENCH_PAIRS interleaved pairs against a second serve on an
# empty ledger (started now, idle while the other side runs), so slow
# spells from other load on the machine hit both sides.
eports=($(go run ./build/freeport -n 2))
ekms=127.0.0.1:${eports[0]}
eadmin=127.0.0.1:${eports[1]}
start_serve "$ekms" "$eadmin" "$work/empty" "$work/empty.log"
empty_pid=$started
rate "$ekms" >/dev/null # its 1000 clients, so that both sides renew
rate >/dev/null
renew_ratios=() cpu_ratios=()
for i in $(seq "${BENCH_PAIRS:-3}"); do
	read -r er ec <<<"$(renew "$empty_pid" "$ekms")"
	read -r fr fc <<<"$(renew "$serve_pid" "$kms")"
	renew_ratios+=("$(awk -v a="$fr" -v b="$er" 'BEGIN {printf "%.2f", a / b}')")
	cpu_ratios+=("$(awk -v a="$ec" -v b="$fc" 'BEGIN {printf "%.2f", a / b}')")
	echo "renewal pair $i: empty ledger $er act/s at $ec µs CPU each; $clients clients $fr act/s at $fc µs; ratios ${renew_ratios[-1]} (act/s), ${cpu_ratios[-1]} (empty CPU / full CPU)"
done
kill -TERM "$empty_pid"
wait "$empty_pid" || true
empty_pid=""
rss_before=$(kib VmRSS)
# RSS sampled every 100 ms from here on.
(while :; do
	kib VmRSS
	sleep 0.1
done >"$work/rss") &
sampler_pid=$!
first=$(export_once) # one export alone: its duration and row count

# BENCH_PAIRS interleaved pairs (no export, then exports back to back), so
# slow spells from other load on the machine hit both sides.
pairs=${BENCH_PAIRS:-3}
ratios=()
for i in $(seq "$pairs"); do
	off=$(rate)
	(while :; do
		$bin clients --admin "$admin" --format csv >/dev/null 2>&1 &
		echo $! >"$work/export.pid"
		wait $!
	done) &
	export_pid=$!
	sleep 1
	on=$(rate)
	kill "$export_pid" 2>/dev/null || true
	wait "$export_pid" 2>/dev/null || true
	kill "$(cat "$work/export.pid")" 2>/dev/null || true
	export_pid=""
	r=$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.2f", a / b}')
	ratios+=("$r")
	echo "pair $i: no export $off act/s, during an export $on act/s, ratio $r"
done
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

read -r rows secs <<<"$first"
peak=$(sort -n "$work/rss" | tail -1)
echo
echo "clients in the ledger:        $rows (one full export alone: ${secs}s)"
echo "median ratio (activations/s during an export / without, $n activations each, 64 connections): $(median "${ratios[@]}")"
echo "renewals with $rows clients / on an empty ledger (interleaved pairs, medians): $(median "${renew_ratios[@]}") in act/s, $(median "${cpu_ratios[@]}") in serve CPU per renewal (above 1: cheaper at $clients)"
echo "serve RSS before the exports: $((rss_before / 1024)) MiB; peak during them: $((peak / 1024)) MiB (sampled every 100 ms; includes the ledger file's mmap)"

# Disk per client after a clean stop (the log is applied and removed), then
# the time a restart takes until status answers, and its RSS then.
kill -TERM "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
serve_pid=""
bytes=$(find "$work/data" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
echo "data directory after a clean stop: $bytes bytes, $(awk -v b="$bytes" -v c="$rows" 'BEGIN {printf "%.0f", b / c}') B per client ($(du -sh "$work/data" | cut -f1) allocated)"
t0=$(date +%s.%N)
start_serve "$kms" "$admin" "$work/data" "$work/serve.log"
serve_pid=$started
echo "restart on $rows clients: status answered after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')s; $(rss)"
