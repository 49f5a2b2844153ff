#!/bin/bash
# Unpack Debian's current linux-image-amd64 kernel into the cache, without
# installing it on the host (no /boot change, no host initrd build).
# Usage: prepare-kernel.sh      prints the kernel directory: vmlinuz, kver, lib/modules/KVER
set -eu
. "$(dirname "$0")/lib.sh"

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
[[ $pkg ]] || vm_die "cannot resolve linux-image-amd64 (run apt-get update?)"
kver=${pkg#linux-image-}
dir=$VM_CACHE/kernel/$kver
vm_cached "$dir" && exit 0

mkdir -p "$VM_CACHE/kernel"
tmp=$(mktemp -d "$VM_CACHE/kernel/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
vm_log "unpacking $pkg"
(cd "$tmp" && apt-get download -q "$pkg" >&2 2>/dev/null) ||
	(cd "$tmp" && apt-get download "$pkg" >&2) ||
	vm_die "apt-get download $pkg failed"
dpkg-deb -x "$tmp"/"${pkg}"_*.deb "$tmp/root"
mkdir -p "$tmp/out/lib"
mv "$tmp/root/boot/vmlinuz-$kver" "$tmp/out/vmlinuz"
mv "$tmp/root/lib/modules" "$tmp/out/lib/modules"
depmod -b "$tmp/out" "$kver"
echo "$kver" >"$tmp/out/kver"
touch "$tmp/out/ready"
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "$dir"
