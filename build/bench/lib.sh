# Sourced by the DNS benchmarks (bench-dns.sh, bench-dns-other.sh) once they are in the module
# root, with bench_name set: the Debian tools, the shared knobs (BENCH_SECONDS, BENCH_ROUNDS,
# BENCH_CLIENTS, BENCH_OUT), CPU pinning, a work directory removed on exit, and the process
# bookkeeping that lets INT/TERM stop every server and load generator.
source build/tools.sh
ensure_debian_tools
command -v taskset >/dev/null || { echo "$bench_name: taskset (util-linux) is required" >&2; exit 1; }
secs=${BENCH_SECONDS:-4}
rounds=${BENCH_ROUNDS:-5}
clients=${BENCH_CLIENTS:-4}
out=${BENCH_OUT-build/bench/BENCHMARKS-DNS.md}
server_cpu=0 load_cpu=1
if (($(nproc) < 2)); then
	echo "$bench_name: fewer than 2 CPUs: server and load share CPU 0" >&2
	load_cpu=0
fi
work=$(mktemp -d "/tmp/kmsdns-$bench_name.XXXXXX")
pids=() # servers, stopped on exit
cur=    # the running load generator
cleanup() {
	trap - EXIT INT TERM
	[[ -z $cur ]] || kill -TERM "$cur" 2>/dev/null || true
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "$bench_name: $*"; }
# bg CMD...: run a load generator in the background and wait for it. bash runs the INT/TERM
# trap only after a foreground child exits, and takes a child that exits normally on SIGINT
# (dnsperf prints its statistics) as having handled it; wait returns at once instead.
bg() {
	"$@" &
	cur=$!
	local rc=0
	wait "$cur" || rc=$?
	cur=
	return "$rc"
}
# ticks PID: CPU time (user + system, clock ticks) the process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# dnsperf_run PORT FILE: one dnsperf run of $work/queries.txt against PORT from the load CPU,
# its output in FILE; sets perf_cpuq to the server's ($server_pid) CPU µs per completed query.
# Other tenants of a shared machine steal wall time from the pinned server, which moves q/s by
# tens of percent, but hardly its CPU time per query.
dnsperf_run() {
	local port=$1 f=$2 t0 t1
	t0=$(ticks "$server_pid")
	bg taskset -c "$load_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$secs" \
		-c "$clients" -T 1 -q 100 >"$f" 2>&1 || true
	t1=$(ticks "$server_pid")
	perf_cpuq=$(awk -v t=$((t1 - t0)) -v hz="$hz" '/Queries completed/ { if ($3 > 0) printf "%.2f", t * 1e6 / hz / $3 }' "$f")
}
