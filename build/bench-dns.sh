#!/usr/bin/env bash
# DNS half of `make bench`: dnsperf against the custom CoreDNS answering
# _vlmcs._tcp from the vlmcs pool, with stock CoreDNS's `file` plugin serving
# the same SRV answer (plus glue) as the baseline, measured in the same run on
# loopback. Prints a table of queries/s and the ratio to the baseline.
#
#   build/bench-dns.sh              # 20 s per run
#   BENCH_SECONDS=5 build/bench-dns.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source build/tools.sh
ensure_debian_tools
secs=${BENCH_SECONDS:-20}

[[ -x bin/coredns && -x bin/kms-responder ]] || build/build.sh >/dev/null
work=$(mktemp -d /tmp/kmsdns-bench-dns.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

ports=($(go run ./build/freeport -n 2)); dns_port=${ports[0]}; kms_port=${ports[1]}
echo "bench-dns: work dir $work, DNS port $dns_port, responder 127.0.0.2:$kms_port"

# A real responder, so the vlmcs member is genuinely healthy (probed).
bin/kms-responder serve --group windows-server-2025 --listen "127.0.0.2:$kms_port" \
	--data "$work/kms" --metrics "" --log-level warn >"$work/responder.log" 2>&1 &
pids+=($!)

cat >"$work/db.example.test" <<ZONE
\$ORIGIN example.test.
@	3600	IN	SOA	ns1 hostmaster 1 7200 3600 1209600 30
@	3600	IN	NS	ns1
ns1	3600	IN	A	127.0.0.1
_vlmcs._tcp	30	IN	SRV	0 0 $kms_port kms1
kms1	30	IN	A	127.0.0.2
ZONE
cat >"$work/Corefile.file" <<CF
example.test:$dns_port {
	bind 127.0.0.1
	file $work/db.example.test
}
CF
cat >"$work/Corefile.vlmcs" <<CF
example.test:$dns_port {
	bind 127.0.0.1
	vlmcs {
		approve kms1.example.test 127.0.0.2
		static kms1.example.test $kms_port 0 0 127.0.0.2
		probe 1s 500ms
		ttl 30
	}
}
CF
echo "_vlmcs._tcp.example.test SRV" >"$work/q.txt"

# run NAME COREFILE: start CoreDNS, wait for a healthy answer, dnsperf, stop.
declare -A qps lat
run() {
	local name=$1 corefile=$2
	bin/coredns -conf "$corefile" -quiet >"$work/$name.log" 2>&1 &
	local pid=$!
	for _ in $(seq 50); do
		if dig +short +time=1 +tries=1 -p "$dns_port" @127.0.0.1 _vlmcs._tcp.example.test SRV | grep -q kms1; then break; fi
		sleep 0.2
	done
	echo "bench-dns: $name: dnsperf -l $secs -c 4 -T 1 -q 100"
	dnsperf -s 127.0.0.1 -p "$dns_port" -d "$work/q.txt" -l "$secs" -c 4 -T 1 -q 100 >"$work/$name.perf" 2>&1 || true
	kill "$pid"; wait "$pid" 2>/dev/null || true
	qps[$name]=$(awk '/Queries per second/ {print $4}' "$work/$name.perf")
	lat[$name]=$(awk '/Average Latency/ {print $4}' "$work/$name.perf")
	local lost; lost=$(awk '/Queries lost/ {print $3}' "$work/$name.perf")
	echo "bench-dns: $name: ${qps[$name]} q/s, avg latency ${lat[$name]} s, lost ${lost}"
}
run file "$work/Corefile.file"
run vlmcs "$work/Corefile.vlmcs"

echo
printf '%-44s %12s %14s %8s\n' "server (same run, loopback, 2 cores)" "queries/s" "avg latency" "ratio"
printf '%-44s %12s %14s %8s\n' "CoreDNS file plugin (baseline)" "${qps[file]}" "${lat[file]} s" "1.00"
ratio=$(awk -v a="${qps[vlmcs]}" -v b="${qps[file]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
printf '%-44s %12s %14s %8s\n' "kmsdns vlmcs pool (probed member)" "${qps[vlmcs]}" "${lat[vlmcs]} s" "$ratio"
