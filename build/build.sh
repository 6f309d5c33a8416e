#!/usr/bin/env bash
# Builds bin/kms-responder and bin/coredns (the custom CoreDNS with vlmcs),
# stamped with the version from git (build/version.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source build/version.sh
kmsdns_version
mkdir -p bin
echo "build: bin/kms-responder ${KMSDNS_VERSION:-(devel)}"
go build -trimpath -ldflags="$KMSDNS_LDFLAGS" -o bin/kms-responder ./responder
echo "build: bin/coredns (custom CoreDNS with the vlmcs plugin)"
go build -trimpath -ldflags="$KMSDNS_LDFLAGS" -o bin/coredns ./build/coredns
ls -l bin/kms-responder bin/coredns | awk '{printf "build: %-20s %6.1f MiB\n", $9, $5/1048576}'
