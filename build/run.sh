#!/usr/bin/env bash
# `make run`: the kmsdns demo on loopback, needing only Go.
#
# Starts, on loopback only:
#   - a CoreDNS standing in for Active Directory DNS (127.0.0.1:1054), whose
#     corp.test zone still carries rogue _vlmcs._tcp records (a dead one, and
#     pc42, a workstation on 127.0.0.4 that was given a Windows 10 KMS host key);
#   - the custom CoreDNS with corefile.example (127.0.0.1:1053);
#   - two kms-responders, kms1 on 127.0.0.2:1688 (Windows Server 2025 + Office
#     LTSC 2024 host keys) and kms2 on 127.0.0.3:1688 (Windows Server 2019),
#     which register themselves with a TSIG secret generated here.
# Prints what runs and commands to try, runs one discovery + activation, an
# audit of the AD zone next to what vlmcs answers for it, and
# keeps running until Ctrl-C; then stops everything it started and removes its
# state directory.
set -euo pipefail
cd "$(dirname "$0")/.."

# Ctrl-C reaches every process of the terminal's foreground group, make
# included, and make reports "Error 130" for a recipe stopped that way
# whatever it exits with. So when run from a terminal, the demo runs as a job
# of its own that holds the terminal: Ctrl-C reaches only it, it stops
# everything and exits 0, and make sees success. Under timeout(1) or another
# process-group signal (not the terminal's foreground group) the demo runs
# directly and its traps clean up the same way.
if [[ -z ${KMSDNS_RUN_JOB:-} && -t 0 ]] &&
	[[ $(ps -o pgid= $$ | tr -d ' ') == $(ps -o tpgid= $$ | tr -d ' ') ]]; then
	set -m
	KMSDNS_RUN_JOB=1 "$0" "$@" &
	fg %1 >/dev/null
	exit $?
fi

say() { printf 'run: %s\n' "$*"; }

say "building bin/coredns and bin/kms-responder"
build/build.sh | sed 's/^/run: /'

dns=127.0.0.1:1053
ad=127.0.0.1:1054
metrics=127.0.0.1:19153
health=127.0.0.1:18080
ready=127.0.0.1:18181
kms1=127.0.0.2
kms2=127.0.0.3
pc42=127.0.0.4

# CoreDNS binds with SO_REUSEPORT: a stale instance on these ports would
# share them and answer silently, so insist that they are free.
say "checking that the demo's ports are free"
if ! go run ./build/freeport -check "$dns" -check "$ad" -check "$metrics" -check "$health" -check "$ready" \
	-check "$kms1:1688" -check "$kms2:1688" -check "$kms1:9688" -check "$kms2:9688" -check "$pc42:1688" -check "$pc42:9688"; then
	echo "run: stop whatever holds those ports (a previous make run? see: ss -lntup) and try again" >&2
	exit 1
fi

state=$(mktemp -d /tmp/kmsdns-run.XXXXXX)
pids=()
stop() {
	# Ignore further signals while cleaning up (a second Ctrl-C, or timeout's signal to the
	# group arriving twice, must not cut the clean-up short).
	trap '' INT TERM HUP
	trap - EXIT
	echo
	say "stopping ${#pids[@]} processes"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$state"
	say "removed $state; done"
	exit "${1:-0}"
}
trap 'stop 0' INT TERM HUP
trap 'stop $?' EXIT

say "state directory: $state (logs, ledgers, zone file; removed on exit)"

secret=$(head -c 32 /dev/urandom | base64)
export KMSDNS_DNS_ADDR=127.0.0.1 KMSDNS_DNS_PORT=${dns##*:} KMSDNS_AD_DNS=$ad KMSDNS_TSIG_SECRET=$secret \
	KMSDNS_METRICS_ADDR=$metrics KMSDNS_HEALTH_ADDR=$health KMSDNS_READY_ADDR=$ready

cat >"$state/db.corp.test" <<ZONE
\$ORIGIN corp.test.
@		3600	IN	SOA	dc1 hostmaster 1 7200 3600 1209600 30
@		3600	IN	NS	dc1
dc1		3600	IN	A	127.0.0.1
; A machine that was given a KMS host key by mistake published itself, and is gone:
_vlmcs._tcp	600	IN	SRV	0 0 1688 rogue-pc
rogue-pc	600	IN	A	127.0.0.9
; A workstation with a Windows 10 KMS host key, still answering:
_vlmcs._tcp	600	IN	SRV	0 0 1688 pc42
pc42		600	IN	A	$pc42
; ...next to the approved host.
_vlmcs._tcp	600	IN	SRV	0 0 1688 kms1.example.test.
ZONE
cat >"$state/Corefile.ad" <<CF
corp.test:${ad##*:} {
	bind ${ad%:*}
	file $state/db.corp.test
	transfer {
		to *
	}
}
# A conditional forwarder to kmsdns, as an AD DNS would have for example.test.
example.test:${ad##*:} {
	bind ${ad%:*}
	forward . $dns
}
CF

say "starting the AD DNS stand-in on $ad (zone corp.test, with rogue _vlmcs records)"
bin/coredns -conf "$state/Corefile.ad" >"$state/ad-dns.log" 2>&1 &
pids+=($!)
say "starting CoreDNS with vlmcs on $dns (corefile.example; metrics $metrics, ready $ready)"
bin/coredns -conf corefile.example >"$state/coredns.log" 2>&1 &
pids+=($!)

# The responders read the key from the environment: never a flag (ps shows flags).
export KMS_RESPONDER_TSIG_KEY="hmac-sha256:kmsdns-key.:$secret"
start_responder() { # NAME ADDRESS GROUP...
	local name=$1 addr=$2
	shift 2
	local groups=()
	for g in "$@"; do groups+=(--group "$g"); done
	say "starting kms-responder $name on $addr:1688 (${*}) registering as $name.example.test"
	bin/kms-responder serve "${groups[@]}" --listen "$addr:1688" --data "$state/$name" \
		--metrics "$addr:9688" --dns-server "$dns" --zone example.test --target "$name" \
		--lease 1m >"$state/$name.log" 2>&1 &
	pids+=($!)
}
start_responder kms1 "$kms1" windows-server-2025 office-ltsc-2024
start_responder kms2 "$kms2" windows-server-2019
say "starting pc42 on $pc42:1688: a workstation holding a Windows 10 (2019) KMS host key, not registered with kmsdns"
bin/kms-responder serve --group windows-10-2019 --host-build 17763 --listen "$pc42:1688" --data "$state/pc42" \
	--metrics "$pc42:9688" >"$state/pc42.log" 2>&1 &
pids+=($!)

say "waiting for both responders to be registered and probed up"
# discover lists the SRV targets it got; a fixed client machine ID keeps these
# checks to one counted client.
for i in $(seq 100); do
	out=$(bin/kms-responder discover --dns "$dns" --domain example.test --product "Windows Server 2022 Standard" \
		--cmid 00000000-0000-4000-8000-00000000d3e0 --json 2>/dev/null || true)
	if grep -q 'kms1.example.test.:1688' <<<"$out" && grep -q 'kms2.example.test.:1688' <<<"$out"; then
		say "both registered after $((i / 5)).$((i % 5 * 2))s"
		break
	fi
	sleep 0.2
done

cat <<EOF

run: kmsdns is running on loopback:
run:   CoreDNS + vlmcs      $dns        publish zone example.test, scrub zone corp.test
run:   AD DNS stand-in      $ad        corp.test (holds rogue _vlmcs records)
run:   pc42 (rogue)         $pc42:1688   windows-10-2019: a misconfigured workstation
run:   kms-responder kms1   $kms1:1688   windows-server-2025, office-ltsc-2024   status: $kms1:9688
run:   kms-responder kms2   $kms2:1688   windows-server-2019                      status: $kms2:9688
run:   logs                 $state/*.log

run: try:
  dig -p ${dns##*:} @${dns%:*} _vlmcs._tcp.example.test SRV      # both approved responders, with glue
  dig -p ${dns##*:} @${dns%:*} _vlmcs._tcp.corp.test SRV         # AD's answer, rogue-pc scrubbed out
  dig -p ${ad##*:} @${ad%:*} _vlmcs._tcp.corp.test SRV         # (AD itself, on port ${ad##*:}, still lists rogue-pc)
  bin/kms-responder discover --dns $dns --domain example.test --product "Office LTSC Professional Plus 2024"
  bin/kms-responder status --admin $kms1:9688
  bin/kms-responder audit --dns $ad --corefile corefile.example --axfr    # every record AD holds, classified
  bin/kms-responder doctor --dns $dns --domain corp.test --product "Windows 11 Pro"

run: one discovery + activation now, as a client in the AD domain corp.test would (rogue-pc is
run: scrubbed out of the answer). A new host starts at count 0, so the client is answered but
run: stays below its threshold (exit code 2), exactly as with a new Microsoft KMS host:
EOF
bin/kms-responder discover --dns "$dns" --domain corp.test --product "Office LTSC Professional Plus 2024" || true
echo
say "audit of the AD stand-in's corp.test, with the approve rules of corefile.example (exit 3: rogue records found):"
bin/kms-responder audit --dns "$ad" --corefile corefile.example --axfr || true
echo
say "...and the scrubbed answer clients get through vlmcs for the same name ($dns):"
bin/kms-responder audit --dns "$dns" --corefile corefile.example --identify none || true
echo
say "running until Ctrl-C"
while true; do
	for p in "${pids[@]}"; do
		if ! kill -0 "$p" 2>/dev/null; then
			say "a process exited unexpectedly; its log is below"
			tail -n 20 "$state"/*.log
			exit 1
		fi
	done
	sleep 1
done
