#!/bin/bash
# A stock Debian 12 root for the real-system VM test (tests/vm/system.bats),
# made with mmdebstrap from Debian's packages and cached as a tarball keyed by
# this script (the package list is in it).
#
# Stock means: Debian's defaults are kept. dracut replaces initramfs-tools and
# builds generic (not host-only) images; remote-cryptsetup.target is not
# enabled; the kernel's postinst has made its initramfs with dracut.
# Added for a server that boots by itself: dbus (systemd-logind needs it),
# procps (dracut's network modules copy pgrep) and isc-dhcp-client (dracut's
# network-legacy module needs dhclient), zstd (make-system.sh has dracut use
# it, see there); the shared
# libraries of the hpcs-for-luks package, so that `apt install ./*.deb`
# needs no download. The package lists are kept (apt works offline in it).
# network-manager and what it depends on are downloaded, not installed, into
# /root/debs/network-manager: installed there, its nm-initrd-generator would
# make dracut choose NetworkManager for the first initramfs (40network picks
# network-manager before systemd-networkd); make-system.sh installs it
# offline after that initramfs is made.
#
# Usage: make-debian-root.sh      prints the path of the tarball (root.tar)
set -eu -o pipefail
. "$(dirname "$0")/lib.sh"

suite=bookworm
pkgs=(systemd systemd-sysv udev dbus linux-image-amd64 dracut dracut-network
	cryptsetup keyutils iproute2 procps e2fsprogs ca-certificates isc-dhcp-client zstd
	libcurl4 libcjson1 libkeyutils1 libmbedcrypto7 libtspi1 libsystemd0)
mirrors=("deb http://deb.debian.org/debian $suite main"
	"deb http://deb.debian.org/debian $suite-updates main"
	"deb http://deb.debian.org/debian-security $suite-security main")

key=$(vm_hash "$0")
dir=$VM_CACHE/debian-root/$key
vm_cached "$dir" root.tar && exit 0
command -v mmdebstrap >/dev/null || vm_die "mmdebstrap missing (tests/vm/setup-host.sh installs it)"
mkdir -p "$VM_CACHE/debian-root"
exec 9>"$VM_CACHE/debian-root/.lock"
flock 9
vm_cached "$dir" root.tar && exit 0 # made by another run while we waited
vm_prune "$VM_CACHE/debian-root"
tmp=$(mktemp -d "$VM_CACHE/debian-root/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

vm_log "mmdebstrap: $suite with ${pkgs[*]}"
start=$SECONDS
IFS=,
# 3>&- ... 9>&-: mmdebstrap has dpkg run `cat >&FD` by /bin/sh (dash), which
# takes only one-digit fds, FD being a pipe it opens. Under bats (fds 3, 4,
# 5 open) and our lock (9) that pipe got fd 10 and apt failed ("Bad fd
# number"); with 3-9 closed for it, it stays below 10.
# shellcheck disable=SC2016  # the hook's $1 is mmdebstrap's (the root)
mmdebstrap --mode=root --variant=minbase --include="${pkgs[*]}" \
	--skip=cleanup/apt/lists \
	--aptopt='Acquire::Languages "none"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--customize-hook='echo hpcs-guest >"$1/etc/hostname"' \
	--customize-hook='mkdir -p "$1/root/debs/network-manager/partial" &&
		chroot "$1" apt-get install -q -y --download-only --no-install-recommends \
			-o Dir::Cache::Archives=/root/debs/network-manager/ network-manager &&
		rm -rf "$1/root/debs/network-manager/partial" "$1/root/debs/network-manager/lock"' \
	--logfile="$tmp/mmdebstrap.log" \
	"$suite" "$tmp/root.tar" "${mirrors[@]}" >&2 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- ||
	{
		tail -n 40 "$tmp/mmdebstrap.log" >&2
		vm_die "mmdebstrap failed"
	}
unset IFS
vm_log "mmdebstrap: done in $((SECONDS - start)) s, $(stat -c %s "$tmp/root.tar") bytes"
touch "$tmp/ready"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/root.tar"
