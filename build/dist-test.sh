#!/usr/bin/env bash
# make dist-test: builds the release artifacts twice and checks what users
# depend on (issue 16). Runs as root (CI does): it installs the .deb with
# dpkg on this machine and purges it again, and runs the images' entrypoints
# with unshare + chroot. Nothing is left installed or running.
#
#   DIST_ARCH          arches to build (default "amd64 arm64"; make test: amd64)
#   DIST_TEST_FRESH    1 (default): the second build is a whole build from a
#                      fresh clone of HEAD at another path (this tree if it
#                      has uncommitted changes) with an empty Go build cache;
#                      0 (make test, for time): build A's binaries packaged
#                      again, which checks the packaging alone
#
# 1. Reproducible: build A from this tree, then build B; identical SHA256SUMS.
# 2. .deb (this machine's arch): install an older build, modify conffiles,
#    upgrade to this build: modified conffiles kept; files, owners, modes,
#    conffiles; nothing enabled; `kms-responder version` and
#    `coredns-kmsdns -version` print this build's version; systemd-analyze
#    verify (if present); the ledger written into the state directory
#    survives `dpkg -r` and is gone after `dpkg -P`.
# 3. .rpm: same files and modes as the .deb, config files %config(noreplace),
#    scriptlets enable nothing and restart only on upgrade.
# 4. Images: unpacked with the Go library from the OCI layout and the docker
#    manifest (they must agree); entrypoints run from the unpacked root in a
#    private mount namespace (read-only root, tmpfs volume) as the image's
#    non-root user: the responder image registers with the CoreDNS image,
#    which answers the _vlmcs query with it, and answers an activation found
#    through that answer.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$SECONDS

fail() { echo "dist-test: FAIL: $*" >&2; exit 1; }
say() { echo "dist-test: $*"; }

[[ $(id -u) -eq 0 ]] || fail "run as root: it installs the .deb with dpkg and runs the images with unshare/chroot"
for t in dpkg dpkg-deb unshare chroot mount; do
	command -v "$t" >/dev/null || fail "missing $t"
done
need=()
command -v rpm >/dev/null || need+=(rpm)
command -v dig >/dev/null || need+=(bind9-dnsutils)
if ((${#need[@]})); then
	say "installing ${need[*]} with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export DIST_ARCH=${DIST_ARCH:-amd64 arm64}
fresh=${DIST_TEST_FRESH:-1}
host_arch=$(dpkg --print-architecture)
[[ " $DIST_ARCH " == *" $host_arch "* ]] || fail "DIST_ARCH=\"$DIST_ARCH\" lacks this machine's $host_arch"
for p in kms-responder coredns-kmsdns; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
		fail "$p is already installed here; this test installs and purges it: remove it first"
	fi
done
for d in /etc/kms-responder /etc/coredns-kmsdns /var/lib/kms-responder /var/lib/private/kms-responder; do
	[[ ! -e $d ]] || fail "$d exists: this test would delete it on purge"
done

tmp=$(mktemp -d /tmp/kmsdns-dist-test.XXXXXX)
pids=()
installed=0
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if ((installed)); then dpkg -P kms-responder coredns-kmsdns >/dev/null 2>&1 || true; fi
	rm -f /etc/systemd/system/multi-user.target.wants/kms-responder.service
	rm -rf "$tmp"
}
trap cleanup EXIT

source build/version.sh
kmsdns_version

# --- 1. two builds --------------------------------------------------------
say "build A: this tree"
t0=$SECONDS
DIST_OUT=$tmp/a build/dist.sh >"$tmp/a.log" 2>&1 || { cat "$tmp/a.log"; fail "build A"; }
say "build A took $((SECONDS - t0)) s"
t0=$SECONDS
if [[ $fresh == 1 ]]; then
	if git diff-index --quiet HEAD -- && [[ $KMSDNS_VERSION != *-dirty ]]; then
		git clone -q --no-local "$repo" "$tmp/clone"
		bsrc=$tmp/clone
		say "build B: a fresh clone of $(git rev-parse --short HEAD) at $bsrc, empty Go build cache"
	else
		bsrc=$repo
		say "build B: this tree again (it has uncommitted changes, so no clone has them), empty Go build cache"
	fi
	(cd "$bsrc" && GOCACHE="$tmp/gocache" DIST_OUT="$tmp/b" build/dist.sh >"$tmp/b.log" 2>&1) || { cat "$tmp/b.log"; fail "build B"; }
else
	say "build B: build A's binaries packaged again into another directory (DIST_TEST_FRESH=0)"
	(cd build/dist && go run . build -repo "$repo" -bin "$tmp/a/.bin" -out "$tmp/b" -arch "${DIST_ARCH// /,}" >"$tmp/b.log" 2>&1) || { cat "$tmp/b.log"; fail "build B"; }
fi
say "build B took $((SECONDS - t0)) s"
if ! diff "$tmp/a/SHA256SUMS" "$tmp/b/SHA256SUMS"; then
	fail "two builds of one commit differ (above)"
fi
n=$(wc -l <"$tmp/a/SHA256SUMS")
say "PASS reproducible: $n artifacts, identical SHA-256 in both builds"
sed 's/^/dist-test:   /' "$tmp/a/SHA256SUMS"
(cd "$tmp/a" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the files"
(cd "$tmp/a" && ls -l -- *.deb *.rpm *.oci.tar) | awk '{printf "dist-test:   %8.1f MiB  %s\n", $5/1048576, $9}'

a=$tmp/a
pv=$(dpkg-deb -f "$a"/kms-responder_*_"$host_arch".deb Version)
[[ -n $pv ]] || fail "no kms-responder .deb for $host_arch"

# --- 2. the .deb ------------------------------------------------------------
say "previous build for the upgrade: same binaries packaged as $pv~prev"
(cd build/dist && go run . build -repo "$repo" -bin "$a/.bin" -out "$tmp/prev" -arch "$host_arch" -pkg-version "$pv~prev" >/dev/null)
installed=1
dpkg -i "$tmp"/prev/kms-responder_*.deb "$tmp"/prev/coredns-kmsdns_*.deb >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i of the previous build"; }
[[ $(dpkg-query -W -f='${Version}' kms-responder) == "$pv~prev" ]] || fail "previous build not installed"
echo "# site change: kept across upgrades" >>/etc/kms-responder/config.yaml
echo "# site change: kept across upgrades" >>/etc/coredns-kmsdns/env
cp /etc/kms-responder/config.yaml "$tmp/config.yaml.mine"
cp /etc/coredns-kmsdns/env "$tmp/env.mine"
cp /etc/kms-responder/admin.token "$tmp/admin.token.prev"
cp /etc/coredns-kmsdns/vlmcs.keys "$tmp/vlmcs.keys.prev"
dpkg -i "$a"/kms-responder_*_"$host_arch".deb "$a"/coredns-kmsdns_*_"$host_arch".deb >"$tmp/dpkg.log" 2>&1 </dev/null || { cat "$tmp/dpkg.log"; fail "dpkg -i upgrade"; }
for p in kms-responder coredns-kmsdns; do
	[[ $(dpkg-query -W -f='${Version}' $p) == "$pv" ]] || fail "$p not upgraded to $pv"
done
cmp -s /etc/kms-responder/config.yaml "$tmp/config.yaml.mine" || fail "upgrade changed the modified /etc/kms-responder/config.yaml"
cmp -s /etc/coredns-kmsdns/env "$tmp/env.mine" || fail "upgrade changed the modified /etc/coredns-kmsdns/env"
cmp -s /etc/coredns-kmsdns/Corefile build/examples/Corefile.resolver || fail "/etc/coredns-kmsdns/Corefile is not build/examples/Corefile.resolver"
cmp -s /etc/kms-responder/admin.token "$tmp/admin.token.prev" || fail "the upgrade replaced /etc/kms-responder/admin.token"
cmp -s /etc/coredns-kmsdns/vlmcs.keys "$tmp/vlmcs.keys.prev" || fail "the upgrade replaced /etc/coredns-kmsdns/vlmcs.keys"
say "PASS upgrade $pv~prev -> $pv keeps modified conffiles"

expect_stat() { # MODE OWNER PATH
	local got
	got=$(stat -c '%a %U:%G' "$3") || fail "$3 missing"
	[[ $got == "$1 $2" ]] || fail "$3 is $got, want $1 $2"
}
expect_stat 755 root:root /usr/bin/kms-responder
expect_stat 755 root:root /usr/bin/coredns-kmsdns
expect_stat 644 root:root /usr/lib/systemd/system/kms-responder.service
expect_stat 644 root:root /usr/lib/systemd/system/coredns-kmsdns.service
expect_stat 700 root:root /etc/kms-responder
expect_stat 600 root:root /etc/kms-responder/config.yaml
expect_stat 600 root:root /etc/kms-responder/tsig.key
expect_stat 600 root:root /etc/kms-responder/admin.token
expect_stat 600 root:root /etc/coredns-kmsdns/vlmcs.keys
[[ ! -s /etc/kms-responder/tsig.key ]] || fail "the package's /etc/kms-responder/tsig.key is not empty"
grep -qE '^[0-9a-f]{64}$' /etc/kms-responder/admin.token || fail "/etc/kms-responder/admin.token is not a random hex token"
grep -q 'secret "' /etc/coredns-kmsdns/vlmcs.keys || fail "/etc/coredns-kmsdns/vlmcs.keys holds no key"
expect_stat 644 root:root /etc/coredns-kmsdns/Corefile
expect_stat 600 root:root /etc/coredns-kmsdns/env
[[ $(dpkg-query -W -f='${Conffiles}' kms-responder | awk '{print $1}' | xargs) == "/etc/kms-responder/config.yaml" ]] ||
	fail "kms-responder conffiles: $(dpkg-query -W -f='${Conffiles}' kms-responder)"
[[ $(dpkg-query -W -f='${Conffiles}' coredns-kmsdns | awk '{print $1}' | sort | xargs) == "/etc/coredns-kmsdns/Corefile /etc/coredns-kmsdns/env" ]] ||
	fail "coredns-kmsdns conffiles: $(dpkg-query -W -f='${Conffiles}' coredns-kmsdns)"
grep -q '^ExecStart=/usr/bin/kms-responder serve' /usr/lib/systemd/system/kms-responder.service || fail "kms-responder.service does not run /usr/bin/kms-responder"
grep -q '^ExecStart=/usr/bin/coredns-kmsdns ' /usr/lib/systemd/system/coredns-kmsdns.service || fail "coredns-kmsdns.service does not run /usr/bin/coredns-kmsdns"
if compgen -G '/etc/systemd/system/*.wants/kms-responder.service' >/dev/null || compgen -G '/etc/systemd/system/*.wants/coredns-kmsdns.service' >/dev/null; then
	fail "installing enabled a service"
fi
say "PASS files, owners, modes and conffiles as declared; secrets created once, 0600; nothing enabled"

# Every file the documentation and the shipped configuration point to under
# /usr/share/doc is in the package that names it.
for p in kms-responder coredns-kmsdns; do
	files=$(dpkg -L "$p")
	for f in $(dpkg -L "$p" | grep -E '^/(etc|usr/lib/systemd)/|\.md$|/examples/' | while read -r x; do [[ -f $x ]] && echo "$x"; done); do
		for ref in $(grep -oE "/usr/share/doc/$p/[A-Za-z0-9_./-]*[A-Za-z0-9_]" "$f" | sort -u); do
			grep -qxF "$ref" <<<"$files" || fail "$f names $ref, which $p does not ship"
		done
	done
	for ref in README.md plugin/README.md responder/README.md; do
		grep -qxF "/usr/share/doc/$p/$ref" <<<"$files" || fail "$p lacks /usr/share/doc/$p/$ref"
	done
done
for ref in $(grep -ohE '\]\((plugin|responder)/README\.md|\]\(build/examples/Corefile\.[a-z-]+' README.md | sed 's/^](//' | sort -u); do
	case $ref in
	build/examples/*) d=/usr/share/doc/coredns-kmsdns/examples/${ref#build/examples/} ;;
	*) d=/usr/share/doc/kms-responder/$ref ;;
	esac
	[[ -f $d ]] || fail "README.md links $ref; the package does not ship it as $d"
done
say "PASS the manuals and examples the README, units and configuration point to are installed under /usr/share/doc"

out=$(kms-responder version)
[[ $out == "kms-responder $KMSDNS_VERSION (commit ${KMSDNS_COMMIT:0:12}, $KMSDNS_DATE, "* ]] || fail "kms-responder version printed: $out"
[[ $(kms-responder --version) == "$out" ]] || fail "kms-responder --version differs from version"
cout=$(coredns-kmsdns -version)
[[ $cout == *"(kmsdns $KMSDNS_VERSION, commit ${KMSDNS_COMMIT:0:12}, $KMSDNS_DATE)"* ]] || fail "coredns-kmsdns -version printed: $cout"
[[ $cout == *", ${KMSDNS_COMMIT:0:12}" ]] || fail "coredns-kmsdns -version does not end with the commit: $cout"
say "PASS installed binaries print $KMSDNS_VERSION"
say "  $out"
say "  ${cout%%$'\n'*}"

# The example config parses and stops at the one thing it leaves unset.
set +e
msg=$(kms-responder serve --config /etc/kms-responder/config.yaml 2>&1)
rc=$?
set -e
[[ $rc -eq 64 && $msg == *"no host key group configured"* ]] || fail "serve with the shipped config: exit $rc: $msg"
say "PASS the shipped config.yaml parses and asks for a host key group"

if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify /usr/lib/systemd/system/kms-responder.service /usr/lib/systemd/system/coredns-kmsdns.service >"$tmp/verify.log" 2>&1 ||
		{ cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
	if grep -E 'kms-responder|coredns-kmsdns' "$tmp/verify.log"; then fail "systemd-analyze verify warns about the units (above)"; fi
	say "PASS systemd-analyze verify accepts both units"
	for u in kms-responder coredns-kmsdns; do
		score=$(systemd-analyze security --offline=true /usr/lib/systemd/system/$u.service 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
		[[ -n $score ]] || fail "systemd-analyze security gave no score for $u.service"
		awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "systemd-analyze security: $u.service exposure $score, want at most 2.0"
		say "PASS systemd-analyze security: $u.service exposure $score (at most 2.0)"
	done
else
	say "systemd-analyze not installed: unit verification skipped"
fi

# Day one as README.md says, each binary started exactly as its unit's
# ExecStart (ExecStartPre=+ lines as root first), as an unused uid (setpriv),
# with the unit's LoadCredential= files laid out in a CREDENTIALS_DIRECTORY
# as systemd lays them out (a directory and files of that uid, 0500/0400),
# the EnvironmentFile= read, %t a runtime directory of that uid: the
# responder registers, CoreDNS answers _vlmcs with it, `kms-responder status`
# on the host works without flags, and `systemctl reload` (the unit's
# ExecReload= lines) applies an edited /etc/kms-responder/config.yaml.
svc_uid=61234
while getent passwd "$svc_uid" >/dev/null || getent group "$svc_uid" >/dev/null; do svc_uid=$((svc_uid + 1)); done
kms_port=1688
go run ./build/freeport -check "127.0.0.2:$kms_port" >/dev/null || fail "127.0.0.2:$kms_port is taken: the day-one test needs it"
read -r dns_port metrics_port admin_port < <(go run ./build/freeport -n 3 | xargs)
# README: the package generated vlmcs.keys; copy it to the KMS host.
install -m 0600 /etc/coredns-kmsdns/vlmcs.keys /etc/kms-responder/tsig.key
cat >/etc/coredns-kmsdns/env <<EOT
KMSDNS_DNS_ADDR=127.0.0.1
KMSDNS_DNS_PORT=$dns_port
KMSDNS_AD_DNS=127.0.0.1:9
KMSDNS_KMS_NETWORK=127.0.0.0/8
KMSDNS_METRICS_ADDR=127.0.0.1:$metrics_port
EOT
cat >/etc/kms-responder/config.yaml <<EOT
groups: [windows-server-2025]
listen: ["127.0.0.2:$kms_port"]
metrics: 127.0.0.1:$admin_port
admin_token_file: \${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/admin.token
log_format: json
register:
  servers: ["127.0.0.1:$dns_port"]
  zone: corp.example
  target: kms1.corp.example
  lease: 1m
  tsig_key_file: \${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/tsig.key
EOT
chmod 0600 /etc/kms-responder/config.yaml
chmod 0711 "$tmp" # the service uid reaches its credentials and runtime directory below it
run_root=$tmp/run
mkdir -p "$run_root"
# StateDirectory=: systemd's /var/lib/private indirection is left out (the
# service reaches it through its own mount namespace).
mkdir -m 0700 /var/lib/kms-responder
chown "$svc_uid:$svc_uid" /var/lib/kms-responder
unit_lines() { sed -n "s/^$2=//p" "/usr/lib/systemd/system/$1.service"; } # UNIT KEY
specifiers() { # LINE CREDS PID: the unit's specifiers and escapes, as systemd resolves them
	local s=${1//%t/$run_root}
	s=${s//%d/$2}
	s=${s//\$MAINPID/$3}
	s=${s//%%/%}
	echo "${s//\$\$/\$}"
}
start_unit() { # UNIT LOG: sets $unit_pid
	local u=$1 log=$2 creds=$tmp/credentials-$1 line id src envs=() rd
	mkdir -m 0700 "$creds"
	while IFS=: read -r id src; do
		[[ -n $id ]] || continue
		install -m 0400 -o "$svc_uid" -g "$svc_uid" "$src" "$creds/$id" || fail "$u: LoadCredential=$id:$src: no such file to load"
	done < <(unit_lines "$u" LoadCredential)
	chown "$svc_uid:$svc_uid" "$creds"
	chmod 0500 "$creds"
	while read -r rd; do
		[[ -n $rd ]] || continue
		mkdir -m 0700 "$run_root/$rd"
		chown "$svc_uid:$svc_uid" "$run_root/$rd"
	done < <(unit_lines "$u" RuntimeDirectory)
	local state=()
	while read -r rd; do
		[[ -n $rd ]] || continue
		mkdir -p -m 0700 "$tmp/state-$u/$rd"
		chown "$svc_uid:$svc_uid" "$tmp/state-$u/$rd"
		state=(STATE_DIRECTORY="$tmp/state-$u/$rd")
	done < <(unit_lines "$u" StateDirectory)
	while read -r line; do
		[[ $line == +* ]] || fail "$u: ExecStartPre=$line does not run as root (+): the test does not emulate it"
		eval "$(specifiers "${line#+}" "$creds" "")" || fail "$u: ExecStartPre=$line failed"
	done < <(unit_lines "$u" ExecStartPre)
	if [[ -n $(unit_lines "$u" EnvironmentFile) ]]; then
		mapfile -t envs < <(grep -E '^[A-Z_]+=' "$(unit_lines "$u" EnvironmentFile)")
	fi
	line=$(specifiers "$(unit_lines "$u" ExecStart)" "$creds" "")
	# shellcheck disable=SC2086 # the unit's command line, split as systemd splits it here
	env -i PATH=/usr/bin:/bin CREDENTIALS_DIRECTORY="$creds" "${state[@]}" "${envs[@]}" \
		setpriv --reuid="$svc_uid" --regid="$svc_uid" --clear-groups --no-new-privs -- $line >"$log" 2>&1 &
	unit_pid=$!
	pids+=("$unit_pid")
}
# A key file named where the service user cannot read it: the error says where
# the unit expects it and how it reaches the service.
sed 's|{$CREDENTIALS_DIRECTORY}/vlmcs.keys|/etc/coredns-kmsdns/vlmcs.keys|' /etc/coredns-kmsdns/Corefile >"$tmp/Corefile.direct"
chmod 0644 "$tmp/Corefile.direct"
set +e
install -d -m 0700 -o "$svc_uid" -g "$svc_uid" "$tmp/direct-state"
msg=$(set -a && . /etc/coredns-kmsdns/env && set +a && STATE_DIRECTORY="$tmp/direct-state" timeout 20 setpriv --reuid="$svc_uid" --regid="$svc_uid" --clear-groups -- /usr/bin/coredns-kmsdns -conf "$tmp/Corefile.direct" 2>&1)
rc=$?
set -e
[[ $rc -ne 0 && $msg == *"permission denied"*"LoadCredential="*'keyfile {$CREDENTIALS_DIRECTORY}/vlmcs.keys'* ]] || fail "coredns-kmsdns with an unreadable keyfile: exit $rc: $msg"
say "PASS an unreadable keyfile names the unit's way: ${msg##*permission denied}"
install -m 0600 -o "$svc_uid" -g "$svc_uid" /dev/null "$tmp/direct.yaml"
sed 's|${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/|/etc/kms-responder/|' /etc/kms-responder/config.yaml >"$tmp/direct.yaml"
set +e
install -d -m 0700 -o "$svc_uid" -g "$svc_uid" "$tmp/direct-data"
msg=$(timeout 20 setpriv --reuid="$svc_uid" --regid="$svc_uid" --clear-groups -- /usr/bin/kms-responder serve --config "$tmp/direct.yaml" --data "$tmp/direct-data" 2>&1)
rc=$?
set -e
[[ $rc -ne 0 && $msg == *"permission denied"*"LoadCredential="*'${CREDENTIALS_DIRECTORY:-/etc/kms-responder}/'* ]] || fail "kms-responder with unreadable secret files: exit $rc: $msg"
say "PASS an unreadable secret file names the unit's way: ${msg##*permission denied}"

# Loose source files are refused before anything is copied for the service.
for u in kms-responder:/etc/kms-responder/tsig.key coredns-kmsdns:/etc/coredns-kmsdns/vlmcs.keys; do
	f=${u#*:} u=${u%%:*}
	chmod 0640 "$f"
	set +e
	msg=$(eval "$(specifiers "$(unit_lines "$u" ExecStartPre | head -1 | sed 's/^+//')" "" "")" 2>&1)
	rc=$?
	set -e
	chmod 0600 "$f"
	[[ $rc -ne 0 && $msg == *"$f (mode 640)"* ]] || fail "$u.service started with $f mode 0640: exit $rc: $msg"
	say "PASS $u.service refuses to start with $f mode 0640: $msg"
done
start_unit coredns-kmsdns "$tmp/coredns-unit.log"
dns_unit_pid=$unit_pid
start_unit kms-responder "$tmp/responder-unit.log"
kms_unit_pid=$unit_pid
answer=""
for i in $(seq 100); do
	answer=$(dig +short +time=1 +tries=1 -p "$dns_port" @127.0.0.1 _vlmcs._tcp.corp.example SRV 2>/dev/null || true)
	[[ $answer == *"$kms_port kms1.corp.example."* ]] && break
	sleep 0.2
done
[[ $answer == *"$kms_port kms1.corp.example."* ]] || { cat "$tmp/coredns-unit.log" "$tmp/responder-unit.log"; fail "the units never answered _vlmcs with the registered responder: [$answer]"; }
[[ $(stat -c %u "/proc/$kms_unit_pid") == "$svc_uid" && $(stat -c %u "/proc/$dns_unit_pid") == "$svc_uid" ]] || fail "the units' processes do not run as uid $svc_uid"
say "PASS as the units run them (uid $svc_uid, credentials, ExecStartPre): CoreDNS answers _vlmcs._tcp.corp.example SRV: $answer"
set +e
st=$(kms-responder status 2>&1)
rc=$?
set -e
[[ $rc -eq 0 && $st == *"KMS host HwId"* && $st == *registered* ]] || { cat "$tmp/responder-unit.log"; fail "kms-responder status on the host: exit $rc: $st"; }
say "PASS kms-responder status on the host finds serve from /etc/kms-responder/config.yaml (admin address and token)"
sed -i 's/^log_format: json$/log_format: json\nlog_level: debug/' /etc/kms-responder/config.yaml
while read -r line; do
	if [[ $line == +* ]]; then
		eval "$(specifiers "${line#+}" "$tmp/credentials-kms-responder" "$kms_unit_pid")" || fail "ExecReload=$line failed"
	else
		# shellcheck disable=SC2046
		setpriv --reuid="$svc_uid" --regid="$svc_uid" --clear-groups -- $(specifiers "$line" "" "$kms_unit_pid") || fail "ExecReload=$line failed"
	fi
done < <(unit_lines kms-responder ExecReload)
for i in $(seq 50); do
	grep -q 'SIGHUP: configuration reloaded.*log_level=debug' "$tmp/responder-unit.log" && break
	sleep 0.1
done
grep -q 'SIGHUP: configuration reloaded.*log_level=debug' "$tmp/responder-unit.log" || { cat "$tmp/responder-unit.log"; fail "the unit's ExecReload did not apply the edited config.yaml"; }
say "PASS the unit's ExecReload applies an edited /etc/kms-responder/config.yaml (log_level=debug)"
kill -TERM "$kms_unit_pid" "$dns_unit_pid"
wait "$kms_unit_pid" || { cat "$tmp/responder-unit.log"; fail "the responder did not exit 0 on SIGTERM"; }
wait "$dns_unit_pid" || true
pids=()
rm -rf /var/lib/kms-responder

# A ledger in the state directory, laid out as systemd's StateDirectory= with
# DynamicUser= makes it, written by the installed binary.
mkdir -p /var/lib/private
chmod 0700 /var/lib/private
mkdir -m 0700 /var/lib/private/kms-responder
ln -s private/kms-responder /var/lib/kms-responder
port=$(go run ./build/freeport)
kms-responder serve --group windows-server-2025 --listen "127.0.0.1:$port" --metrics "" --data /var/lib/kms-responder --drain 0s >"$tmp/serve.log" 2>&1 &
spid=$!
pids+=("$spid")
for i in $(seq 100); do
	set +e
	kms-responder activate --server "127.0.0.1:$port" --product "Windows Server 2019 Standard" >"$tmp/activate.log" 2>&1
	rc=$?
	set -e
	[[ $rc -eq 0 || $rc -eq 2 ]] && break
	sleep 0.2
done
[[ $rc -eq 0 || $rc -eq 2 ]] || { cat "$tmp/activate.log" "$tmp/serve.log"; fail "the installed kms-responder never answered an activation"; }
kill -TERM "$spid"
wait "$spid" || { cat "$tmp/serve.log"; fail "serve did not exit 0 on SIGTERM"; }
ledger=$(find /var/lib/private/kms-responder -type f | head -1)
[[ -n $ledger ]] || { cat "$tmp/serve.log"; fail "no ledger written in /var/lib/kms-responder"; }
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -s /usr/lib/systemd/system/kms-responder.service /etc/systemd/system/multi-user.target.wants/kms-responder.service # as `systemctl enable` would

dpkg -r kms-responder coredns-kmsdns >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -r"; }
[[ ! -e /usr/bin/kms-responder && ! -e /usr/bin/coredns-kmsdns ]] || fail "dpkg -r left the binaries"
[[ -f $ledger && -L /var/lib/kms-responder ]] || fail "dpkg -r removed the ledger"
[[ -f /etc/kms-responder/config.yaml && -f /etc/coredns-kmsdns/env ]] || fail "dpkg -r removed configuration"
say "PASS dpkg -r removes the programs, keeps the configuration and the ledger ($ledger)"
dpkg -P kms-responder coredns-kmsdns >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -P"; }
installed=0
for d in /var/lib/kms-responder /var/lib/private/kms-responder /etc/kms-responder /etc/coredns-kmsdns /etc/systemd/system/multi-user.target.wants/kms-responder.service; do
	[[ ! -e $d && ! -L $d ]] || fail "dpkg -P left $d"
done
say "PASS dpkg -P removes the ledger, the configuration and the enablement link"

# --- 3. the .rpm -------------------------------------------------------------
filelist_deb() { dpkg-deb -c "$1" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $1, $6}' | sort; }
filelist_rpm() { rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$1" 2>/dev/null | awk '$1 !~ /^d/' | sort; }
for arch in $DIST_ARCH; do
	rarch=$arch
	[[ $arch == amd64 ]] && rarch=x86_64
	[[ $arch == arm64 ]] && rarch=aarch64
	for p in kms-responder coredns-kmsdns; do
		deb=$(ls "$a"/${p}_*_"$arch".deb)
		rpmf=$(ls "$a"/$p-*."$rarch".rpm)
		diff <(filelist_deb "$deb") <(filelist_rpm "$rpmf") || fail "$rpmf and $deb hold different files or modes (above)"
		rpm -qpl "$rpmf" >/dev/null 2>&1 || fail "rpm -qpl $rpmf"
		for d in $(dpkg-deb -c "$deb" | awk '$1 ~ /^d/ && $6 ~ /^\.\/etc\/./ {sub(/^\./, "", $6); sub(/\/$/, "", $6); print $1 ":" $6}'); do
			rpm -qp --qf '[%{FILEMODES:perms}:%{FILENAMES}\n]' "$rpmf" 2>/dev/null | grep -qxF "$d" || fail "$rpmf lacks the directory ${d#*:} as ${d%%:*} (the .deb's)"
		done
		[[ $(rpm -qp --qf '%{VERSION}' "$rpmf" 2>/dev/null) == "$(dpkg-deb -f "$deb" Version)" ]] || fail "$rpmf version differs from the .deb's"
		cfg=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmf" 2>/dev/null | awk 'NF == 2 && $1 ~ /c/ {print $1, $2}' | sort | xargs)
		debcfg=$(dpkg-deb -I "$deb" conffiles | sort | sed 's/^/cn /' | xargs)
		[[ $cfg == "$debcfg" ]] || fail "$rpmf config files: [$cfg], want [$debcfg] (config, noreplace)"
		scripts=$(rpm -qp --scripts "$rpmf" 2>/dev/null)
		code=$(grep -v '^[[:space:]]*#' <<<"$scripts")
		if grep -qE 'systemctl[^|;]* (enable|start|restart|preset)' <<<"$code"; then fail "$rpmf scriptlets enable, start or restart unconditionally:\n$scripts"; fi
		grep -q 'if \[ "$1" -ge 1 \]; then' <<<"$code" && grep -q "try-restart $p.service" <<<"$code" || fail "$rpmf: no restart-if-running on upgrade"
		grep -q "disable --now $p.service" <<<"$code" || fail "$rpmf: erase does not stop the service"
		code=$(for s in postinst prerm postrm; do dpkg-deb -I "$deb" $s; done | grep -v '^[[:space:]]*#')
		if grep -qE 'systemctl[^|;]* (enable|start|restart|preset)' <<<"$code"; then fail "$deb maintainer scripts enable, start or restart unconditionally"; fi
		grep -q "try-restart $p.service" <<<"$code" || fail "$deb: no restart-if-running on upgrade"
	done
done
say "PASS .rpm: same files and modes as the .deb (and /etc directories), config files noreplace, scriptlets enable nothing and try-restart on upgrade"

# --- 4. the images -------------------------------------------------------------
declare -A info_user info_args info_env
(cd build/dist && go build -o "$tmp/dist" .)
unpack_image() { # NAME ARCH: unpacked into $tmp/root-NAME, run config in $tmp/NAME.info (host arch)
	local name=$1 arch=$2 img root info
	img=$(ls "$a"/"$1"_*_linux_"$arch".oci.tar)
	root=$tmp/root-$name info=$tmp/$name.info
	if [[ $arch != "$host_arch" ]]; then root=$tmp/root-$name-$arch info=$tmp/$name-$arch.info; fi
	"$tmp/dist" unpack -image "$img" -root "$root" >"$info" || fail "unpack $img"
	if command -v skopeo >/dev/null; then # a second reader, when installed
		skopeo inspect "oci-archive:$img" >/dev/null || fail "skopeo cannot read $img as oci-archive"
		skopeo inspect "docker-archive:$img" >/dev/null || fail "skopeo cannot read $img as docker-archive"
	fi
	name=${info##*/} name=${name%.info}
	grep -qx "user=65532:65532" "$info" || fail "$name image user: $(grep ^user= "$info")"
	grep -qx "platform=linux/$arch" "$info" || fail "$name image platform: $(grep ^platform= "$info")"
	grep -qx "label=org.opencontainers.image.version=$KMSDNS_VERSION" "$info" || fail "$name image lacks the version label"
	grep -qx "label=org.opencontainers.image.revision=$KMSDNS_COMMIT" "$info" || fail "$name image lacks the revision label"
	grep -qx "label=org.opencontainers.image.source=https://github.com/kmsdns/kmsdns" "$info" || fail "$name image lacks the source label"
	grep -q "^label=io.kmsdns.healthcheck=." "$info" || fail "$name image does not document its health check"
	grep -q '^port=' "$info" || fail "$name image exposes no port"
	[[ $(find "$root" -type f | wc -l) -le 6 ]] || fail "$name image holds more than its binary and configuration: $(find "$root" -type f)"
	grep -qx "static=true" "$info" || fail "$name in the image is not a static binary"
}
for arch in $DIST_ARCH; do
	unpack_image kms-responder "$arch"
	unpack_image coredns-kmsdns "$arch"
done
grep -qx 'health=CMD /usr/bin/kms-responder status --admin 127.0.0.1:9688' "$tmp/kms-responder.info" || fail "kms-responder image health check"
[[ $(stat -c '%u:%g %a' "$tmp/root-kms-responder/var/lib/kms-responder") == "65532:65532 700" ]] || fail "kms-responder image volume not owned by its user"
say "PASS images ($DIST_ARCH): OCI layout and docker manifest agree$(command -v skopeo >/dev/null && echo ", skopeo reads both"); static binary, user 65532, labels, ports, health check"

# run_image NAME LOG [VAR=VALUE]... -- [ARGS...]: the image's entrypoint (with
# ARGS as the command, else the image's Cmd) and environment, from its
# unpacked root, read-only, volumes on tmpfs, in a private mount namespace,
# as the image's user. Sets $run_pid.
run_image() {
	local name=$1 log=$2 root=$tmp/root-$1
	shift 2
	local envs=() args=() cmd=() user vol
	while (($#)) && [[ $1 != -- ]]; do envs+=("$1"); shift; done
	shift || true
	cmd=("$@")
	user=$(sed -n 's/^user=//p' "$tmp/$name.info")
	mapfile -t args < <(sed -n 's/^arg=//p' "$tmp/$name.info")
	if ((${#cmd[@]})); then args=("${args[0]}" "${cmd[@]}"); fi
	mapfile -t ienv < <(sed -n 's/^env=//p' "$tmp/$name.info")
	local mounts="mount --bind '$root' '$root' && mount -o remount,bind,ro '$root'"
	while read -r vol; do
		mounts+=" && mount -t tmpfs -o mode=0700,uid=${user%%:*},gid=${user##*:} tmpfs '$root$vol'"
	done < <(sed -n 's/^volume=//p' "$tmp/$name.info")
	unshare -m --propagation private -- sh -c "$mounts"' && exec "$@"' sh \
		env -i "${ienv[@]}" "${envs[@]}" "$(command -v chroot)" --userspec="$user" "$root" "${args[@]}" >"$log" 2>&1 &
	run_pid=$!
	pids+=("$run_pid")
}

secret=$(head -c 32 /dev/urandom | base64)
read -r dns_port metrics_port health_port ready_port ad_port < <(go run ./build/freeport -n 5 | xargs)
# corefile.example approves the KMS port only (vlmcs `ports` defaults to 1688), as a site would.
kms_port=1688
go run ./build/freeport -check "127.0.0.2:$kms_port" >/dev/null ||
	fail "127.0.0.2:$kms_port is taken (a running make run?): the image test needs it"
run_image coredns-kmsdns "$tmp/coredns.log" KMSDNS_DNS_ADDR=127.0.0.1 KMSDNS_DNS_PORT="$dns_port" \
	KMSDNS_AD_DNS="127.0.0.1:$ad_port" KMSDNS_TSIG_SECRET="$secret" KMSDNS_METRICS_ADDR="127.0.0.1:$metrics_port" \
	KMSDNS_HEALTH_ADDR="127.0.0.1:$health_port" KMSDNS_READY_ADDR="127.0.0.1:$ready_port" --
dns_pid=$run_pid
run_image kms-responder "$tmp/responder.log" KMS_RESPONDER_TSIG_KEY="hmac-sha256:kmsdns-key.:$secret" -- \
	serve --group windows-server-2025 --listen "127.0.0.2:$kms_port" --dns-server "127.0.0.1:$dns_port" \
	--zone example.test --target kms1.example.test --port "$kms_port" --lease 1m --drain 0s
kms_pid=$run_pid
for pid in $dns_pid $kms_pid; do
	for i in $(seq 50); do
		[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */root-*/usr/bin/* ]] && break
		sleep 0.1
	done
	ids=$(awk '/^Uid:|^Gid:/ {printf "%s %s ", $1, $2} /^Groups:/ {printf "Groups:%s", $2}' "/proc/$pid/status" 2>/dev/null) ||
		{ cat "$tmp/coredns.log" "$tmp/responder.log"; fail "an image's entrypoint exited (logs above)"; }
	[[ $ids == "Uid: 65532 Gid: 65532 Groups:"* && $ids != *"Groups:0"* ]] || fail "image process $pid runs as [$ids], want 65532"
done
answer=""
for i in $(seq 150); do
	answer=$(dig +short +time=1 +tries=1 -p "$dns_port" @127.0.0.1 _vlmcs._tcp.example.test SRV 2>/dev/null || true)
	[[ $answer == *"$kms_port kms1.example.test."* ]] && break
	sleep 0.2
done
[[ $answer == *"$kms_port kms1.example.test."* ]] || { cat "$tmp/coredns.log" "$tmp/responder.log"; fail "the CoreDNS image never answered _vlmcs with the responder image: [$answer]"; }
say "PASS the CoreDNS image answers _vlmcs._tcp.example.test SRV: $answer"
set +e
disc=$("$a/.bin/linux_$host_arch/kms-responder" discover --dns "127.0.0.1:$dns_port" --domain example.test --product "Windows Server 2019 Standard" 2>&1)
rc=$?
set -e
[[ ($rc -eq 0 || $rc -eq 2) && $disc == *kms1.example.test* ]] || { cat "$tmp/responder.log"; fail "discover through the images: exit $rc: $disc"; }
say "PASS the responder image answers an activation found through the CoreDNS image (discover exit $rc)"
kill -TERM "$kms_pid" "$dns_pid"
wait "$kms_pid" || { cat "$tmp/responder.log"; fail "responder image did not exit 0 on SIGTERM"; }
wait "$dns_pid" || true
pids=()
say "all passed in $((SECONDS - start)) s"
