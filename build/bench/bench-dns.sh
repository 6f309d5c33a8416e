#!/usr/bin/env bash
# DNS half of `make bench` (issue 4 "Benchmark", issue 5 "Benchmark harness"), loopback only,
# everything measured in the same run:
#
#  1. Throughput and latency of _vlmcs._tcp SRV answers from three servers, all one bench build
#     of CoreDNS (build/bench/coredns) pinned to core 0, load pinned to core 1:
#       vlmcs     a publish zone whose member is a real kms-responder, probed (default probe)
#       file      CoreDNS's file plugin serving the same SRV record and A glue
#       constant  build/bench/constant: the same answer packed once at startup (the bound)
#     Runs are interleaved vlmcs file constant, vlmcs file constant, ... (BENCH_ROUNDS rounds)
#     and compared by median. Queries/s from dnsperf; p50/p99/p99.9 from build/bench/dnsload.
#  2. Failover over BENCH_TRIALS trials each: a responder registered by TSIG-signed UPDATE
#     (bin/coredns, vlmcs with its default probe settings, a second static member kept
#     healthy) gets kill -9 or SIGTERM; the time from the signal until an answer no longer
#     lists it (polled every 20 ms by build/bench/dnsload).
#  3. One table of ratios with date and machine, printed and written to BENCHMARKS-DNS.md.
#
#   build/bench/bench-dns.sh                                   # about 3 minutes
#   BENCH_SECONDS=5 BENCH_ROUNDS=3 BENCH_TRIALS=20 build/bench/bench-dns.sh
#   BENCH_PROFILE=1 build/bench/bench-dns.sh                   # also a CPU profile of each server
#
# Knobs: BENCH_SECONDS (per dnsperf and per dnsload run, default 4), BENCH_ROUNDS (5),
# BENCH_TRIALS (20), BENCH_CLIENTS (dnsperf -c and dnsload -c, 4), BENCH_OUT (the markdown
# file, default build/bench/BENCHMARKS-DNS.md; "" skips it), BENCH_PROFILE (1: pprof 10 s per server
# after the rounds, top entries printed, profiles kept in BENCH_PROFILE_DIR or /tmp).
set -euo pipefail
cd "$(dirname "$0")/../.."
bench_name=bench-dns
source build/bench/lib.sh
trials=${BENCH_TRIALS:-20}
[[ -x bin/coredns && -x bin/kms-responder ]] || build/build.sh >/dev/null

say "building the bench CoreDNS (vlmcs + file + constant + pprof) and dnsload into $work"
go build -o "$work/coredns" ./build/bench/coredns
go build -o "$work/dnsload" ./build/bench/dnsload

ports=($(go run ./build/freeport -n 6))
p_vlmcs=${ports[0]} p_file=${ports[1]} p_const=${ports[2]} p_fail=${ports[3]} p_kms=${ports[4]} p_pprof=${ports[5]}
name=_vlmcs._tcp.example.test

# await PORT TARGET: poll until the server on PORT lists TARGET (a probed, served member).
await() { "$work/dnsload" await -server "127.0.0.1:$1" -name "$name" -target "$2" -max 15s >/dev/null; }

# ---------------------------------------------------------------- 1. throughput and latency
# The member all three servers publish: a real responder on 127.0.0.2 (on the load CPU; it
# only answers the prober's binds).
taskset -c "$load_cpu" bin/kms-responder serve --group windows-server-2025 --listen "127.0.0.2:$p_kms" \
	--data "$work/kms1" --ledger=false --metrics "" --log-level warn >"$work/kms1.log" 2>&1 &
pids+=($!)

cat >"$work/db.example.test" <<ZONE
\$ORIGIN example.test.
@		3600	IN	SOA	ns1 hostmaster 1 7200 3600 1209600 30
@		3600	IN	NS	ns1
ns1		3600	IN	A	127.0.0.1
_vlmcs._tcp	30	IN	SRV	0 0 $p_kms kms1
kms1		30	IN	A	127.0.0.2
ZONE
# One bench CoreDNS, three server blocks on three ports: idle blocks cost nothing, and each
# measurement runs against the same process, binary and CPU. pprof has no query handler.
cat >"$work/Corefile.bench" <<CF
example.test:$p_vlmcs {
	bind 127.0.0.1
	pprof 127.0.0.1:$p_pprof
	vlmcs {
		approve kms1.example.test 127.0.0.2/32
		static kms1.example.test $p_kms 0 0 127.0.0.2
		ttl 30
	}
}
example.test:$p_file {
	bind 127.0.0.1
	file $work/db.example.test
}
example.test:$p_const {
	bind 127.0.0.1
	constant $name 30 {
		srv 0 0 $p_kms kms1.example.test 127.0.0.2
	}
}
CF
taskset -c "$server_cpu" "$work/coredns" -conf "$work/Corefile.bench" >"$work/coredns.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
for s in vlmcs file const; do
	p=p_$s
	await "${!p}" kms1.example.test || { say "$s: no answer listing kms1"; cat "$work/coredns.log" "$work/kms1.log" >&2; exit 1; }
done
# The three answers must carry the same SRV record and kms1 glue (file adds the zone's NS in
# the authority section and ns1's A in the additional section, as a file zone does).
for s in vlmcs file const; do
	p=p_$s
	dig +norec +noall +answer +additional -p "${!p}" @127.0.0.1 "$name" SRV |
		awk '$4 == "SRV" || $1 == "kms1.example.test." {$2=""; print}' | sort >"$work/answer.$s"
done
if ! cmp -s "$work/answer.vlmcs" "$work/answer.file" || ! cmp -s "$work/answer.vlmcs" "$work/answer.const"; then
	say "the three servers' answers differ:"; head "$work"/answer.* >&2; exit 1
fi
say "all three answer: $(tr '\n' ' ' <"$work/answer.vlmcs")"
echo "$name SRV" >"$work/queries.txt"

declare -A qps p50 p99 p999 lost cpuq
# measure NAME PORT ROUND: one dnsperf run and one dnsload run. Besides q/s, the server's CPU
# time per answered dnsperf query (dnsperf_run in lib.sh).
measure() {
	local s=$1 port=$2 r=$3 f="$work/$1.$3"
	dnsperf_run "$port" "$f.perf"
	cpuq[$s.$r]=$perf_cpuq
	bg taskset -c "$load_cpu" "$work/dnsload" load -server "127.0.0.1:$port" -name "$name" \
		-c "$clients" -d "${secs}s" >"$f.load" 2>&1 || true
	qps[$s.$r]=$(awk '/Queries per second/ {printf "%.0f", $4}' "$f.perf")
	lost[$s.$r]=$(awk '/Queries lost/ {print $3}' "$f.perf")
	local kv; kv=$(grep '^dnsload:' "$f.load" || true)
	p50[$s.$r]=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$kv")
	p99[$s.$r]=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$kv")
	p999[$s.$r]=$(sed -n 's/.* p999_us=\([0-9]*\).*/\1/p' <<<"$kv")
	say "round $r $s: dnsperf ${qps[$s.$r]:-?} q/s (lost ${lost[$s.$r]:-?}, server ${cpuq[$s.$r]:-?} CPU µs/query); dnsload ${kv#dnsload: }"
	[[ -n ${qps[$s.$r]} && -n ${p99[$s.$r]} ]] || { say "$s round $r failed:"; cat "$f.perf" "$f.load" >&2; exit 1; }
}
say "throughput: $rounds rounds x (vlmcs file constant), ${secs}s dnsperf -c $clients -T 1 -q 100 + ${secs}s dnsload -c $clients each; server CPU $server_cpu, load CPU $load_cpu"
for r in $(seq "$rounds"); do
	measure vlmcs "$p_vlmcs" "$r"
	measure file "$p_file" "$r"
	measure const "$p_const" "$r"
done
# A run after the rounds confirms the member stayed served (probed healthy) throughout.
await "$p_vlmcs" kms1.example.test || { say "vlmcs no longer lists kms1"; exit 1; }

# median ARRAY-NAME SERVER: the median over the rounds.
median() {
	local -n a=$1
	local s=$2 r
	for r in $(seq "$rounds"); do echo "${a[$s.$r]}"; done | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.1f\n", (v[NR/2]+v[NR/2+1])/2}'
}
declare -A M
for s in vlmcs file const; do
	for m in qps cpuq p50 p99 p999; do M[$m.$s]=$(median $m $s); done
done

if [[ ${BENCH_PROFILE:-0} == 1 ]]; then
	pdir=${BENCH_PROFILE_DIR:-/tmp}
	for s in vlmcs file const; do
		p=p_$s
		say "profiling $s (10 s of dnsperf load) -> $pdir/kmsdns-bench-$s.pprof"
		taskset -c "$load_cpu" dnsperf -s 127.0.0.1 -p "${!p}" -d "$work/queries.txt" -l 11 -c "$clients" -T 1 -q 100 >/dev/null 2>&1 &
		local_perf=$!
		curl -s -o "$pdir/kmsdns-bench-$s.pprof" "http://127.0.0.1:$p_pprof/debug/pprof/profile?seconds=10"
		wait "$local_perf" || true
		go tool pprof -top -nodecount=25 "$work/coredns" "$pdir/kmsdns-bench-$s.pprof" 2>/dev/null | sed -n '1,32p'
	done
fi
kill -TERM "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
pids=()

# ---------------------------------------------------------------- 2. failover
# bin/coredns (the product build) with the plugin's default probe settings; kms1 is a static
# member that stays healthy (so the pool is never all-down, where last_known would keep the
# victim), kms2 registers itself with a TSIG-signed UPDATE and is the victim.
secret=$(head -c 32 /dev/urandom | base64)
cat >"$work/Corefile.failover" <<CF
example.test:$p_fail {
	bind 127.0.0.1
	vlmcs {
		approve kms1.example.test kms2.example.test 127.0.0.2/32 127.0.0.3/32
		static kms1.example.test $p_kms 0 0 127.0.0.2
		key kmsdns-bench. $secret
		grant kmsdns-bench. kms2.example.test
		ports $p_kms
	}
}
CF
bin/kms-responder serve --group windows-server-2025 --listen "127.0.0.2:$p_kms" \
	--data "$work/kms1" --ledger=false --metrics "" --log-level warn >"$work/kms1.log" 2>&1 &
pids+=($!)
bin/coredns -conf "$work/Corefile.failover" -quiet >"$work/coredns-failover.log" 2>&1 &
pids+=($!)
export KMS_RESPONDER_TSIG_KEY="hmac-sha256:kmsdns-bench.:$secret"
await "$p_fail" kms1.example.test || { say "failover server: no kms1"; cat "$work/coredns-failover.log" >&2; exit 1; }

declare -A fo
# trial SIGNAL N: start the victim, wait until it is served, signal it, time its removal.
trial() {
	local sig=$1 n=$2
	bin/kms-responder serve --group windows-server-2025 --listen "127.0.0.3:$p_kms" \
		--data "$work/kms2" --ledger=false --metrics "" --log-level warn --drain 200ms \
		--dns-server "127.0.0.1:$p_fail" --zone example.test --target kms2 --port "$p_kms" --lease 1m \
		>>"$work/kms2.log" 2>&1 &
	local v=$!
	pids+=("$v")
	if ! await "$p_fail" kms2.example.test; then
		say "trial $sig $n: kms2 never served"; tail "$work/kms2.log" "$work/coredns-failover.log" >&2; exit 1
	fi
	local line
	line=$("$work/dnsload" failover -server "127.0.0.1:$p_fail" -name "$name" -target kms2.example.test \
		-pid "$v" -signal "$sig" -poll 20ms -max 15s)
	wait "$v" 2>/dev/null || true
	local keep=() p
	for p in "${pids[@]}"; do [[ $p == "$v" ]] || keep+=("$p"); done
	pids=("${keep[@]}")
	fo[$sig.$n]=$(sed -n 's/.* after \([0-9.]*\) ms/\1/p' <<<"$line")
}
say "failover: $trials trials each of kill -9 and SIGTERM (default probe: 500ms 500ms 2 1)"
for sig in KILL TERM; do
	for n in $(seq "$trials"); do trial "$sig" "$n"; done
	vals=$(for n in $(seq "$trials"); do echo "${fo[$sig.$n]}"; done | sort -g)
	M[fo_med.$sig]=$(awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.1f\n", (v[NR/2]+v[NR/2+1])/2}' <<<"$vals")
	M[fo_max.$sig]=$(tail -1 <<<"$vals")
	say "failover $sig: ms $(tr '\n' ' ' <<<"$vals")"
done

# ---------------------------------------------------------------- 3. the table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { if [[ $1 == yes ]]; then echo "met"; else echo "NOT met"; fi; }
q_ok=$(awk -v a="${M[qps.vlmcs]}" -v b="${M[qps.const]}" 'BEGIN { print (a >= 0.95 * b) ? "yes" : "no" }')
c_ok=$(awk -v a="${M[cpuq.vlmcs]}" -v b="${M[cpuq.const]}" 'BEGIN { print (0.95 * a <= b) ? "yes" : "no" }')
l_ok=$(awk -v a="${M[p99.vlmcs]}" -v b="${M[p99.file]}" 'BEGIN { print (a <= b) ? "yes" : "no" }')
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
table=$(
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs ($cpu), loopback; command: \`${BENCH_CMD:-make bench}\`"
	echo "(BENCH_SECONDS=$secs BENCH_ROUNDS=$rounds BENCH_TRIALS=$trials BENCH_CLIENTS=$clients). Server on CPU $server_cpu, load on CPU $load_cpu;"
	echo "runs interleaved vlmcs file constant x $rounds, medians. q/s: dnsperf -c $clients -T 1 -q 100; latency: dnsload -c $clients (closed loop)."
	echo
	echo "| _vlmcs._tcp SRV answer from | queries/s | server CPU µs/query | p50 µs | p99 µs | p99.9 µs | q/s vs constant | CPU/query vs constant | p99 vs file |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for s in vlmcs file const; do
		case $s in
		vlmcs) label="vlmcs publish zone (probed responder)" ;;
		file) label="CoreDNS file (same SRV + glue)" ;;
		const) label="constant plugin (prepacked)" ;;
		esac
		echo "| $label | ${M[qps.$s]} | ${M[cpuq.$s]} | ${M[p50.$s]} | ${M[p99.$s]} | ${M[p999.$s]} | $(ratio "${M[qps.$s]}" "${M[qps.const]}") | $(ratio "${M[cpuq.$s]}" "${M[cpuq.const]}") | $(ratio "${M[p99.$s]}" "${M[p99.file]}") |"
	done
	echo
	echo "Goal vlmcs >= 0.95x constant q/s: $(verdict "$q_ok") ($(ratio "${M[qps.vlmcs]}" "${M[qps.const]}")x). Goal vlmcs p99 <= file p99: $(verdict "$l_ok") (${M[p99.vlmcs]} vs ${M[p99.file]} µs)."
	echo "Same goal on server CPU per query (robust to other tenants stealing the server's CPU): $(verdict "$c_ok") (${M[cpuq.vlmcs]} vs ${M[cpuq.const]} µs, need <= const / 0.95)."
	echo
	echo "| failover of a registered responder ($trials trials, default probe 500ms 500ms 2 1) | median ms | max ms |"
	echo "| --- | ---: | ---: |"
	echo "| kill -9 (probe detects; bound 2 x 500 + 500 = 1500 ms) | ${M[fo_med.KILL]} | ${M[fo_max.KILL]} |"
	echo "| SIGTERM (withdraws by UPDATE) | ${M[fo_med.TERM]} | ${M[fo_max.TERM]} |"
	echo
	echo "Failover is timed from the signal (sent by dnsload) to the first answer without the member; answers"
	echo "are polled every 20 ms, the first right after the signal, so figures under ~20 ms are resolution-bound."
)
echo
echo "$table"
if [[ -n $out ]]; then
	{
		echo "# DNS benchmarks"
		echo
		echo "Written by \`build/bench/bench-dns.sh\` (run by \`make bench\`); re-run to refresh. Figures vary by"
		echo "±10% between runs on a shared machine (more when other tenants load the server's CPU: then"
		echo "compare server CPU µs/query); compare within one run only. CPU profiles of each server under"
		echo "load: \`BENCH_PROFILE=1 build/bench/bench-dns.sh\` (pprof top printed, profiles kept in /tmp)."
		echo
		echo "$table"
	} >"$out"
	say "wrote $out"
fi
