#!/usr/bin/env bash
# make dist: release artifacts in dist/ (DIST_OUT) for linux/amd64 and
# linux/arm64 (DIST_ARCH="amd64 arm64"):
#   kms-responder and coredns-kmsdns as .deb, .rpm and OCI image archive,
#   SHA256SUMS over all of them.
# Static binaries (CGO_ENABLED=0), version from git (build/version.sh), then
# build/dist (its own Go module: nfpm and go-containerregistry) packages them.
# Reproducible: same commit → same bytes (-trimpath, no VCS stamping, every
# timestamp is the commit time, SOURCE_DATE_EPOCH); build/dist-test.sh checks.
set -euo pipefail
cd "$(dirname "$0")/.."
source build/version.sh
kmsdns_version
if [[ -z $KMSDNS_VERSION ]]; then
	echo "dist: not a git checkout: the version comes from git (build/version.sh)" >&2
	exit 1
fi
out=${DIST_OUT:-dist}
arches=${DIST_ARCH:-amd64 arm64}
start=$SECONDS
echo "dist: $KMSDNS_VERSION ($KMSDNS_COMMIT, $KMSDNS_DATE) for linux/{${arches// /,}} into ${out%/}/"
rm -rf "$out"
mkdir -p "$out/.bin"
out=$(cd "$out" && pwd)
for arch in $arches; do
	for b in "kms-responder ./responder" "coredns-kmsdns ./build/coredns"; do
		set -- $b
		echo "dist: go build $1 linux/$arch"
		# -buildvcs=false: the version is in the -X flags; the go command's
		# own stamps exist in a clone but not in a worktree, and would make
		# two checkouts of one commit build different bytes.
		CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOAMD64=v1 GOARM64=v8.0 \
			go build -trimpath -buildvcs=false -ldflags="-s -w $KMSDNS_LDFLAGS" \
			-o "$out/.bin/linux_$arch/$1" "$2"
	done
done
echo "dist: packaging (build/dist: nfpm, go-containerregistry)"
go -C build/dist run . build -repo "$PWD" -bin "$out/.bin" -out "$out" -arch "${arches// /,}" ${DIST_PKG_VERSION:+-pkg-version "$DIST_PKG_VERSION"}
echo "dist: done in $((SECONDS - start)) s; checksums in $out/SHA256SUMS"
