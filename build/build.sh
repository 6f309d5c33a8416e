#!/usr/bin/env bash
# Builds bin/kms-responder and bin/coredns (the custom CoreDNS with vlmcs).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
echo "build: bin/kms-responder"
go build -trimpath -o bin/kms-responder ./responder
echo "build: bin/coredns (custom CoreDNS with the vlmcs plugin)"
go build -trimpath -o bin/coredns ./build/coredns
ls -l bin/kms-responder bin/coredns | awk '{printf "build: %-20s %6.1f MiB\n", $9, $5/1048576}'
