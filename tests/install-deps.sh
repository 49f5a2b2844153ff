#!/bin/bash
# Installs what building and testing hpcs-for-luks needs on Debian 12, from
# Debian's packages only. Idempotent: packages already there are skipped.
#   tests/install-deps.sh [build|test]...   (default: build test)
# The VM boot test installs its own: tests/vm/setup-host.sh.
set -eu

build_pkgs=(cmake g++ make pkg-config libcurl4-openssl-dev libcjson-dev libkeyutils-dev
	libsystemd-dev libmbedtls-dev libtspi-dev libtss2-dev libgtest-dev libc-ares-dev
	libnghttp2-dev libssl-dev libcryptsetup-dev file scdoc clang libclang-rt-14-dev)
test_pkgs=(bats jq keyutils curl openssl python3 python3-cryptography trousers tpm-tools
	tpm2-tools swtpm swtpm-tools cryptsetup-bin shellcheck shfmt clang-format systemd iproute2
	util-linux strace dracut-core cpio bash-completion nftables)

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root (it uses apt-get)" >&2
	exit 1
fi

want=()
for set in "${@:-build test}"; do
	for s in $set; do
		case "$s" in
			build) want+=("${build_pkgs[@]}") ;;
			test) want+=("${test_pkgs[@]}") ;;
			*)
				echo "install-deps: unknown set '$s' (build, test)" >&2
				exit 2
				;;
		esac
	done
done

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# One update per machine and hour is enough.
stamp=/var/lib/apt/periodic/hpcs-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +60)" ]; then
	apt-get update -q
	mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
