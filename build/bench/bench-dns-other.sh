#!/usr/bin/env bash
# The cost of vlmcs on the other queries of its zones (issue 9), loopback only, measured in the
# same run: one bench CoreDNS (build/bench/coredns) pinned to core 0 serves two server blocks
# on two ports with the same file zones, load pinned to core 1:
#   vlmcs     vlmcs (a publish zone with a static member, and a scrub zone) before file
#   errors    CoreDNS's errors plugin in vlmcs's place (the baseline)
# The queries are names that vlmcs passes on to file: A records in the publish zone and in the
# scrub zone, and a name below _tcp (whose answer vlmcs inspects for DNAMEs). Runs are
# interleaved vlmcs errors, vlmcs errors, ... (BENCH_ROUNDS rounds), compared by median
# dnsperf q/s and server CPU time per query. Goal: vlmcs >= 0.97x errors.
#
#   build/bench/bench-dns-other.sh                           # about 1 minute
#   BENCH_SECONDS=3 BENCH_ROUNDS=3 build/bench/bench-dns-other.sh
#
# Knobs: BENCH_SECONDS (per dnsperf run, default 4), BENCH_ROUNDS (5), BENCH_CLIENTS (4),
# BENCH_OUT (markdown file the table is appended to, default build/bench/BENCHMARKS-DNS.md; ""
# skips it).
set -euo pipefail
cd "$(dirname "$0")/../.."
bench_name=bench-dns-other
source build/bench/lib.sh

say "building the bench CoreDNS into $work"
go build -o "$work/coredns" ./build/bench/coredns

ports=($(go run ./build/freeport -n 2))
p_vlmcs=${ports[0]} p_errors=${ports[1]}
for z in example.test corp.test; do
	cat >"$work/db.$z" <<ZONE
\$ORIGIN $z.
@		3600	IN	SOA	ns1 hostmaster 1 7200 3600 1209600 30
@		3600	IN	NS	ns1
ns1		3600	IN	A	127.0.0.1
www		30	IN	A	127.0.0.10
host._tcp	30	IN	A	127.0.0.11
kms1		30	IN	A	127.0.0.2
ZONE
done
files="file $work/db.example.test example.test
	file $work/db.corp.test corp.test"
cat >"$work/Corefile" <<CF
example.test:$p_vlmcs corp.test:$p_vlmcs {
	bind 127.0.0.1
	vlmcs {
		approve kms1.example.test kms1.corp.test 127.0.0.2/32
		static kms1.example.test 1688 0 0 127.0.0.2
		scrub corp.test
		probe off
	}
	$files
}
example.test:$p_errors corp.test:$p_errors {
	bind 127.0.0.1
	errors
	$files
}
CF
taskset -c "$server_cpu" "$work/coredns" -conf "$work/Corefile" >"$work/coredns.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
printf '%s\n' "www.example.test A" "www.corp.test A" "host._tcp.example.test A" "host._tcp.corp.test A" >"$work/queries.txt"
for p in $p_vlmcs $p_errors; do
	for _ in $(seq 100); do
		dig +short +time=1 +tries=1 -p "$p" @127.0.0.1 www.corp.test A 2>/dev/null | grep -q 127.0.0.10 && break
		sleep 0.1
	done
	# Both blocks must give the same answers to the benchmark's queries.
	while read -r n t; do dig +norec +noall +answer -p "$p" @127.0.0.1 "$n" "$t"; done <"$work/queries.txt" >"$work/answer.$p"
done
if ! cmp -s "$work/answer.$p_vlmcs" "$work/answer.$p_errors" || ! [[ -s "$work/answer.$p_vlmcs" ]]; then
	say "the two blocks answer differently:"; cat "$work"/answer.* "$work/coredns.log" >&2; exit 1
fi

declare -A qps cpuq
measure() {
	local s=$1 port=$2 r=$3 f="$work/$1.$3.perf"
	dnsperf_run "$port" "$f"
	qps[$s.$r]=$(awk '/Queries per second/ {printf "%.0f", $4}' "$f")
	cpuq[$s.$r]=$perf_cpuq
	say "round $r $s: ${qps[$s.$r]:-?} q/s, server ${cpuq[$s.$r]:-?} CPU µs/query"
	[[ -n ${qps[$s.$r]} ]] || { say "$s round $r failed:"; cat "$f" >&2; exit 1; }
}
say "$rounds rounds x (vlmcs errors), ${secs}s dnsperf -c $clients -T 1 -q 100 each; server CPU $server_cpu, load CPU $load_cpu"
for r in $(seq "$rounds"); do
	measure vlmcs "$p_vlmcs" "$r"
	measure errors "$p_errors" "$r"
done
median() {
	local -n a=$1
	local s=$2 r
	for r in $(seq "$rounds"); do echo "${a[$s.$r]}"; done | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.1f\n", (v[NR/2]+v[NR/2+1])/2}'
}
declare -A M
for s in vlmcs errors; do
	M[qps.$s]=$(median qps $s)
	M[cpuq.$s]=$(median cpuq $s)
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
q_ratio=$(ratio "${M[qps.vlmcs]}" "${M[qps.errors]}")
c_ratio=$(ratio "${M[cpuq.errors]}" "${M[cpuq.vlmcs]}")
verdict() { awk -v r="$1" 'BEGIN { print (r >= 0.97) ? "met" : "NOT met" }'; }
table=$(
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'); command: \`${BENCH_CMD:-build/bench/bench-dns-other.sh}\` (BENCH_SECONDS=$secs BENCH_ROUNDS=$rounds"
	echo "BENCH_CLIENTS=$clients); server on CPU $server_cpu, load on CPU $load_cpu; runs interleaved vlmcs errors x $rounds, medians."
	echo "Queries: A for www and host._tcp in a publish zone and a scrub zone, answered by file after vlmcs (or errors)."
	echo
	echo "| other queries of vlmcs's zones, block with | queries/s | server CPU µs/query | q/s vs errors | errors CPU/query ÷ this |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	echo "| vlmcs (publish + scrub zone) + file | ${M[qps.vlmcs]} | ${M[cpuq.vlmcs]} | $q_ratio | $c_ratio |"
	echo "| errors + file (baseline) | ${M[qps.errors]} | ${M[cpuq.errors]} | 1.000 | 1.000 |"
	echo
	echo "Goal vlmcs >= 0.97x errors: q/s $(verdict "$q_ratio") (${q_ratio}x); server CPU per query $(verdict "$c_ratio") (${c_ratio}x)."
)
echo
echo "$table"
if [[ -n $out ]]; then
	{
		echo
		echo "## Cost of vlmcs on the other queries of its zones"
		echo
		echo "$table"
	} >>"$out"
	say "appended to $out"
fi
