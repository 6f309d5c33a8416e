#!/usr/bin/env bash
# Sourced by test.sh and bench.sh: make sure the Debian tools the tests and
# benchmarks drive for real are present (`ensure_debian_tools prometheus` also
# wants prometheus and promtool). Missing ones are installed when we
# can (root + apt-get); otherwise we stop and name the package — never a
# silent skip.
ensure_debian_tools() {
	local need=()
	command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
	if ! command -v nsupdate >/dev/null 2>&1 && [[ " ${need[*]-} " != *" bind9-dnsutils "* ]]; then
		need+=(bind9-dnsutils)
	fi
	command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
	# With the argument "prometheus": Debian's prometheus package, which holds
	# prometheus and promtool (test/monitoring; the benchmarks do not need it).
	if [[ " $* " == *" prometheus "* ]] &&
		{ ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; }; then
		need+=(prometheus)
	fi
	# named (bind9): a DNS server that takes RFC 2136 updates, for the audit's
	# deletion tests (CoreDNS's file plugin takes none).
	command -v named >/dev/null 2>&1 || [[ -x /usr/sbin/named ]] || need+=(bind9)
	# A real Active Directory for test/ad (test/samba): Samba's AD DC (samba,
	# samba-ad-dc with winbind, samba-tool in samba-common-bin, the schema files
	# of samba-ad-provision), kinit (krb5-user) and ip (iproute2) to set up the
	# DC's loopback address inside its network namespace.
	command -v samba >/dev/null 2>&1 || [[ -x /usr/sbin/samba ]] || need+=(samba)
	command -v samba-tool >/dev/null 2>&1 || need+=(samba-common-bin)
	dpkg -s samba-ad-dc >/dev/null 2>&1 || need+=(samba-ad-dc winbind)
	[[ -d /usr/share/samba/setup/ad-schema ]] || need+=(samba-ad-provision)
	command -v kinit >/dev/null 2>&1 || need+=(krb5-user)
	command -v ip >/dev/null 2>&1 || [[ -x /usr/sbin/ip ]] || need+=(iproute2)
	# dnsmasq (dnsmasq-base): a forwarding cache in front of CoreDNS (--cache-rr=SRV), for
	# the tests where a cache is the attacker's tool (test/passthrough_test.go); named is the
	# other one (a forward-only resolver).
	command -v dnsmasq >/dev/null 2>&1 || [[ -x /usr/sbin/dnsmasq ]] || need+=(dnsmasq-base)
	# dnssec-keygen and dnssec-signzone (bind9-utils; bind9 depends on it): a signed zone for
	# the test of what a validating resolver sees of a scrubbed answer.
	command -v dnssec-signzone >/dev/null 2>&1 || need+=(bind9-utils)
	((${#need[@]})) || return 0
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "tools: installing ${need[*]} with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "tools: missing Debian package(s): ${need[*]} — install them (apt-get install ${need[*]}) and re-run" >&2
		exit 1
	fi
}
