#!/usr/bin/env bash
# `make bench`: builds, starts the servers on loopback, and prints the tables
# of ratios measured in the same run. Not part of CI (it takes minutes).
#   build/bench/bench-dns.sh        dnsperf: vlmcs pool vs CoreDNS's file plugin
#   build/bench/bench-dns-other.sh  dnsperf: other queries of vlmcs's zones vs an errors-plugin block
#   build/bench/bench-responder.sh  kms-responder bench: activations/s and latency
set -euo pipefail
cd "$(dirname "$0")/../.."
build/build.sh
echo
echo "== DNS: _vlmcs._tcp SRV answers =="
build/bench/bench-dns.sh
echo
echo "== DNS: the other queries of vlmcs's zones =="
build/bench/bench-dns-other.sh
if [[ -x build/bench/bench-responder.sh ]]; then
	echo
	echo "== KMS activations =="
	build/bench/bench-responder.sh
fi
