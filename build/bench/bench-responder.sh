#!/usr/bin/env bash
# KMS half of `make bench`: `kms-responder bench` (which verifies every
# response) against `kms-responder serve` on loopback, each case on a fresh
# serve with its own temporary data directory. Baselines are measured in the
# same run: the responder without its durable ledger (--ledger=false, the
# fixed-decision equivalent; benchmarks only, counts are lost at restart).
# Prints one table; every process it starts is stopped.
#
#   build/bench/bench-responder.sh
#   BENCH_REQUESTS=20000 BENCH_CLIENTS="100000 1000000" build/bench/bench-responder.sh
#
# BENCH_REQUESTS         requests per throughput case (default 50000)
# BENCH_SERIAL_REQUESTS  requests on one connection with the ledger (default 5000)
# BENCH_CLIENTS          distinct-client counts for the memory/disk rows (default 100000)
# BENCH_ROUNDS           runs per case; the median by act/s is shown (default 1)
# BENCH_AB=N             only N interleaved ledger off/on pairs at 64 connections
# BENCH_AB_ARGS          extra bench flags for those pairs, e.g.
#                        --new-connection-per-request (as Windows clients connect)
# BENCH_AB_BASE=vlmcsd   pair the ledger with vlmcsd (BENCH_VLMCSD) instead of
#                        with --ledger=false: the ratio to vlmcsd measured in
#                        interleaved pairs, which single runs minutes apart on
#                        a shared machine are not
# BENCH_BIN              the kms-responder binary (default bin/kms-responder)
# BENCH_VLMCSD           path of a vlmcsd binary: adds vlmcsd rows (V6, 64
#                        connections, persistent and per request) measured with
#                        the same client in the same run; without it those
#                        rows are skipped. Build vlmcsd with THREADS=1 (one
#                        process): a forking build's children are not counted
#                        in its CPU column.
#
# Every row shows the server's CPU time per activation, so the server's cost
# is seen without the client's: the utime+stime the server process used
# from the moment the client started (/proc/PID/stat) to its exit, which
# includes the ledger's work at shutdown (applying what the log holds that
# the store lacks yet), divided by the requests.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${BENCH_REQUESTS:-50000}
serial=${BENCH_SERIAL_REQUESTS:-5000}
clients=${BENCH_CLIENTS:-100000}
rounds=${BENCH_ROUNDS:-1}
bin=${BENCH_BIN:-bin/kms-responder}
[[ -x $bin ]] || go build -trimpath -o "$bin" ./responder

work=$(mktemp -d /tmp/kmsdns-bench-kms.XXXXXX)
serve_pid="" wrap_pid=""
stop_serve() {
	[[ -n $serve_pid ]] || return 0
	local rc=0
	kill -TERM "$serve_pid" 2>/dev/null || true
	wait "$wrap_pid" || rc=$?
	serve_pid="" wrap_pid=""
	# vlmcsd's exit status on SIGTERM is its own business.
	[[ -n $admin ]] || rc=0
	if ((rc != 0)); then
		echo "bench-responder: serve exited $rc on SIGTERM; log:" >&2
		tail -20 "$work/serve.log" >&2
		return 1
	fi
}
cleanup() {
	trap - EXIT INT TERM
	stop_serve || true
	rm -rf "$work"
}
# INT and TERM end the script (cleaning up on the way out) rather than
# running cleanup and carrying on with the next case.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn CMD...: runs the server CMD in the background, its output in
# serve.log, under a subshell that waits for it and then writes the CPU
# time it used over its whole life (bash's `times` for its one child) to
# life.cpu. Sets serve_pid (the server) and wrap_pid (the subshell).
spawn() {
	rm -f "$work/life.cpu" "$work/serve.pid"
	(
		"$@" >"$work/serve.log" 2>&1 &
		echo $! >"$work/serve.pid"
		rc=0
		wait $! || rc=$?
		# Not in a pipeline: that would run times in another subshell.
		times >"$work/life.cpu"
		exit $rc
		# Not on the caller's stdout: once runs inside $(...) and <(...),
		# whose reader would otherwise wait for this subshell too.
	) >/dev/null &
	wrap_pid=$!
	while [[ ! -s $work/serve.pid ]]; do sleep 0.01; done
	serve_pid=$(<"$work/serve.pid")
}

# start_vlmcsd: $BENCH_VLMCSD in the foreground on a fresh loopback port;
# sets kms (admin is empty: vlmcsd has no metrics).
start_vlmcsd() {
	local ports
	ports=($(go run ./build/freeport -n 1))
	kms=127.0.0.1:${ports[0]} admin=""
	spawn "$BENCH_VLMCSD" -D -L "$kms" -l /dev/null
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/${kms%:*}/${kms##*:}") 2>/dev/null; then
			return 0
		fi
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench-responder: vlmcsd did not start:" >&2
	cat "$work/serve.log" >&2
	exit 1
}

# start_serve DIR LEDGER: serve on fresh loopback ports (or vlmcsd when
# LEDGER is "vlmcsd"); sets kms and admin.
start_serve() {
	local dir=$1 ledger=$2 ports
	if [[ $ledger == vlmcsd ]]; then
		start_vlmcsd
		return
	fi
	for _ in 1 2 3; do
		ports=($(go run ./build/freeport -n 2))
		kms=127.0.0.1:${ports[0]}
		admin=127.0.0.1:${ports[1]}
		spawn $bin serve --group windows-server-2025 --group office-ltsc-2024 --listen "$kms" --metrics "$admin" \
			--data "$work/$dir" --ledger="$ledger" --log-level warn
		for _ in $(seq 100); do
			if $bin status --admin "$admin" --json >/dev/null 2>&1; then
				return 0
			fi
			kill -0 "$serve_pid" 2>/dev/null || break
			sleep 0.1
		done
		# Alive but not answering is as failed as dead.
		kill -TERM "$serve_pid" 2>/dev/null || true
		wait "$wrap_pid" 2>/dev/null || true
		serve_pid="" wrap_pid=""
		grep -q "address already in use" "$work/serve.log" || break
	done
	echo "bench-responder: serve did not start:" >&2
	cat "$work/serve.log" >&2
	exit 1
}

# heap_kib: the Go heap in use of serve, from its /metrics (no curl needed).
heap_kib() {
	[[ -n $admin ]] || {
		echo 0
		return
	}
	local host=${admin%:*} port=${admin##*:}
	exec 3<>"/dev/tcp/$host/$port"
	printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$admin" >&3
	awk '/^go_memstats_heap_inuse_bytes / {printf "%d", $2 / 1024}' <&3
	exec 3<&-
}

kib() { awk -v k="$1" '/^'"$1"':/ {print $2}' "/proc/$serve_pid/status"; }

# cpu_ticks PID: utime+stime of a process (all its threads, live and
# exited), in clock ticks.
cpu_ticks() {
	# Field 2 (comm) may hold spaces: count fields after its ")".
	sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
clk_tck=$(getconf CLK_TCK)

# life_ticks: the CPU the last server used over its life (see spawn), in
# clock ticks.
life_ticks() {
	awk -v t="$clk_tck" 'NR == 2 {
		s = 0
		for (i = 1; i <= 2; i++) {
			split($i, p, "m")
			s += p[1] * 60 + p[2]
		}
		printf "%.0f", s * t
	}' "$work/life.cpu"
}

# us_per_act TICKS0 TICKS1 REQUESTS: server CPU µs per activation.
us_per_act() {
	awk -v a="$1" -v b="$2" -v n="$3" -v t="$clk_tck" 'BEGIN {printf "%.1f", (b - a) / t * 1e6 / n}'
}

# requests_of BENCH-ARGS...: the value of --requests.
requests_of() {
	while (($#)); do
		if [[ $1 == --requests ]]; then
			echo "$2"
			return
		fi
		shift
	done
}

declare -A rate
rows=()
# once NAME LEDGER BENCH-ARGS...: one bench on a fresh serve; prints
# "act/s p50 p99 p99.9 idleKiB peakKiB dataKiB heapKiB cpuµs/act".
once() {
	local name=$1 ledger=$2
	shift 2
	# once runs in a subshell ($(...) or <(...)), which has no EXIT trap of
	# its own: the server it starts there is stopped on its every way out.
	if ((BASH_SUBSHELL > 0)); then
		trap 'stop_serve >/dev/null 2>&1 || true' EXIT
	fi
	rm -rf "${work:?}/$name"
	start_serve "$name" "$ledger"
	local idle out peak heap size=0 c0 c1 cpu
	idle=$(kib VmRSS)
	c0=$(cpu_ticks "$serve_pid")
	out=$($bin bench --server "$kms" "$@" 2>&1) || {
		echo "bench-responder: $name failed:" >&2
		echo "$out" >&2
		exit 1
	}
	peak=$(kib VmHWM)
	heap=$(heap_kib)
	stop_serve
	cpu=$(us_per_act "$c0" "$(life_ticks)" "$(requests_of "$@")")
	[[ -d $work/$name ]] && size=$(du -k "$work/$name" | awk '{print $1}')
	awk -v idle="$idle" -v peak="$peak" -v size="$size" -v heap="$heap" -v cpu="$cpu" '
		function us(d) {
			if (d ~ /ns$/) return sprintf("%.1f", d / 1000)
			if (d ~ /µs$/) return sprintf("%.0f", d + 0)
			if (d ~ /ms$/) return sprintf("%.0f", d * 1000)
			return sprintf("%.0f", d * 1000000)
		}
		/^throughput:/ {t = $2}
		/^latency:/ {l = us($3) " " us($5) " " us($7)}
		END {print t, l, idle, peak, size, heap, cpu}' <<<"$out"
}

declare -A cpu_us
# run NAME LEDGER BASELINE BENCH-ARGS...: BENCH_ROUNDS benches of one case;
# the row is the run with the median act/s.
run() {
	local name=$1 ledger=$2 base=$3
	shift 3
	echo "bench-responder: $name: bench $* (x$rounds)" >&2
	local results=() r
	for _ in $(seq "$rounds"); do
		results+=("$(once "$name" "$ledger" "$@")")
	done
	r=$(printf '%s\n' "${results[@]}" | sort -n -k1,1 | sed -n "$(((rounds + 1) / 2))p")
	local tput p50 p99 p999 idle peak size heap cpu ratio=- dsize=-
	read -r tput p50 p99 p999 idle peak size heap cpu <<<"$r"
	cpu_us[$name]=$cpu
	rate[$name]=$tput
	[[ $base != - ]] && ratio=$(awk -v a="$tput" -v b="${rate[$base]}" 'BEGIN {printf "%.2f", a/b}')
	[[ $ledger == true ]] && dsize=$(awk -v k="$size" 'BEGIN {printf "%.1f MiB", k/1024}')
	rows+=("$(printf '%-24s %-6s %8s %7s %8s %8s %8s %-22s %5s %6.1f %6.1f %6.1f %10s' \
		"$name" "$ledger" "$tput" "$cpu" "$p50" "$p99" "$p999" "$base" "$ratio" \
		"$(awk -v k="$idle" 'BEGIN {print k/1024}')" "$(awk -v k="$peak" 'BEGIN {print k/1024}')" \
		"$(awk -v k="$heap" 'BEGIN {print k/1024}')" "$dsize")")
}

# BENCH_AB=N: only the 64-connection ledger on/off comparison, as N
# interleaved pairs (off, on, off, on, ...), so slow spells from other load
# hit both sides; prints each pair's ratio and the median. With
# BENCH_AB_BASE=vlmcsd the other side of each pair is vlmcsd.
if [[ -n ${BENCH_AB:-} ]]; then
	base=${BENCH_AB_BASE:-false} what="ledger off" diff="ledger adds" mdiff="the ledger adds"
	if [[ $base == vlmcsd ]]; then
		[[ -n ${BENCH_VLMCSD:-} ]] || {
			echo "bench-responder: BENCH_AB_BASE=vlmcsd needs BENCH_VLMCSD, the path of a vlmcsd binary built with THREADS=1" >&2
			exit 2
		}
		what=vlmcsd diff="ledger on minus vlmcsd" mdiff="ledger on minus vlmcsd"
	elif [[ $base != false ]]; then
		echo "bench-responder: BENCH_AB_BASE is vlmcsd or unset (ledger off), not \"$base\"" >&2
		exit 2
	fi
	ratios=() addeds=()
	for i in $(seq "$BENCH_AB"); do
		# shellcheck disable=SC2086 # BENCH_AB_ARGS is a list of flags
		read -r off _ _ _ _ _ _ _ offcpu < <(once ab-base "$base" --protocol 6 --connections 64 --requests "$n" ${BENCH_AB_ARGS:-})
		# shellcheck disable=SC2086
		read -r on _ _ _ _ _ _ _ oncpu < <(once ab-on true --protocol 6 --connections 64 --requests "$n" ${BENCH_AB_ARGS:-})
		r=$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.2f", a/b}')
		added=$(awk -v a="$oncpu" -v b="$offcpu" 'BEGIN {printf "%.1f", a-b}')
		ratios+=("$r")
		addeds+=("$added")
		printf 'pair %d: %s %s act/s %s µs CPU/act, ledger on %s act/s %s µs CPU/act, ratio %s, %s %s µs\n' \
			"$i" "$what" "$off" "$offcpu" "$on" "$oncpu" "$r" "$diff" "$added"
	done
	mid=$(((BENCH_AB + 1) / 2))
	printf 'median ratio (ledger on / %s, 64 connections%s, %d requests each): %s; median server CPU %s: %s µs/activation\n' \
		"$what" "${BENCH_AB_ARGS:+ $BENCH_AB_ARGS}" "$n" \
		"$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "${mid}p")" "$mdiff" \
		"$(printf '%s\n' "${addeds[@]}" | sort -n | sed -n "${mid}p")"
	exit 0
fi

cores=$(nproc)
echo "bench-responder: $(git describe --always --dirty 2>/dev/null || echo unknown), $cores cores, client and server on the same machine" >&2

run v6-1conn-noledger false - --protocol 6 --connections 1 --requests "$n"
run v5-1conn-noledger false v6-1conn-noledger --protocol 5 --connections 1 --requests "$n"
run v4-1conn-noledger false v6-1conn-noledger --protocol 4 --connections 1 --requests "$n"
run v6-1conn-ledger true v6-1conn-noledger --protocol 6 --connections 1 --requests "$serial"
run v6-percall-noledger false v6-1conn-noledger --protocol 6 --connections 1 --requests "$((n / 5))" --new-connection-per-request
run v6-64conn-noledger false - --protocol 6 --connections 64 --requests "$n"
run v6-64conn-ledger true v6-64conn-noledger --protocol 6 --connections 64 --requests "$n"
run v6-64percall-noledger false v6-64conn-noledger --protocol 6 --connections 64 --requests "$n" --new-connection-per-request
run v6-64percall-ledger true v6-64percall-noledger --protocol 6 --connections 64 --requests "$n" --new-connection-per-request
if [[ -n ${BENCH_VLMCSD:-} ]]; then
	run v6-64conn-vlmcsd vlmcsd v6-64conn-ledger --protocol 6 --connections 64 --requests "$n"
	run v6-64percall-vlmcsd vlmcsd v6-64percall-ledger --protocol 6 --connections 64 --requests "$n" --new-connection-per-request
fi
for c in $clients; do
	run "v6-64conn-${c}clients" true v6-64conn-noledger --protocol 6 --connections 64 --requests "$c"
done

echo
printf '%-24s %-6s %8s %7s %8s %8s %8s %-22s %5s %6s %6s %6s %10s\n' \
	case ledger "act/s" "CPU µs" "p50 µs" "p99 µs" "p99.9µs" baseline ratio "RSS0MB" "peakMB" "heapMB" "data dir"
printf '%s\n' "${rows[@]}"
echo
# added NAME BASE: server CPU µs per activation of NAME minus BASE.
added() { awk -v a="${cpu_us[$1]}" -v b="${cpu_us[$2]}" 'BEGIN {printf "%+.1f", a - b}'; }
echo "server CPU the ledger adds per activation: 1 connection $(added v6-1conn-ledger v6-1conn-noledger) µs," \
	"64 persistent $(added v6-64conn-ledger v6-64conn-noledger) µs, 64 per request $(added v6-64percall-ledger v6-64percall-noledger) µs"
if [[ -z ${BENCH_VLMCSD:-} ]]; then
	echo "vlmcsd rows skipped: set BENCH_VLMCSD to a vlmcsd binary (built with THREADS=1) to compare with it in this run"
else
	ratio_of() { awk -v a="${rate[$1]}" -v b="${rate[$2]}" 'BEGIN {printf "%.2f", a / b}'; }
	echo "kms-responder with its ledger / vlmcsd, same client, this run: 64 persistent $(ratio_of v6-64conn-ledger v6-64conn-vlmcsd)x," \
		"64 per request $(ratio_of v6-64percall-ledger v6-64percall-vlmcsd)x (vlmcsd rows' own ratio column is the inverse)"
fi
echo
echo "act/s: verified activations per second (every request a new client unless noted); CPU µs: the server's"
echo "utime+stime per activation from the client's start to the server's exit (the ledger's last apply included),"
echo "without the client's own CPU;"
echo "ratio: act/s over the baseline row measured in this run (median of $rounds); RSS0/peak: serve's RSS at start and its peak"
echo "(the peak includes the ledger file's mmap); heap: Go heap in use at the end (go_memstats_heap_inuse_bytes);"
echo "data dir: size of --data after serve stopped (ledger on only); p50/p99/p99.9: client-side latency in µs."
