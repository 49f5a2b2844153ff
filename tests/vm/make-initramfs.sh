#!/bin/bash
# Build (or take from the cache) a dracut initramfs for the VM test, with the
# dracut modules from dracut/ of this repo (not the installed ones).
# Usage: make-initramfs.sh KERNEL_DIR NAME [--without-hpcs]
#   Environment for the hpcs module (see dracut/99hpcs/module-setup.sh):
#   hpcs_config, hpcs_unlock, hpcs_cli, hpcs_tcsd_conf, hpcs_token_plugin,
#   hpcs_crypttab.
#   Prints the path of the initramfs image.
set -eu -o pipefail
. "$(dirname "$0")/lib.sh"

[[ $# -ge 2 ]] || {
	echo "usage: $0 KERNEL_DIR NAME [--without-hpcs]" >&2
	exit 2
}
kdir=$1 name=$2 with_hpcs=1
[[ ${3:-} == --without-hpcs ]] && with_hpcs=
kver=$(cat "$kdir/kver")

modules="base systemd systemd-initrd systemd-networkd network crypt dm rootfs-block
         udev-rules dracut-systemd systemd-ask-password hpcs-vmtest"
drivers="virtio_pci virtio_net virtio_blk dm_crypt ext4 af_packet"
[[ $with_hpcs ]] && modules+=" hpcs"

# The cache key: everything the image is made from.
# (lib.sh makes the dracut tree; VM_DRACUT_DIRS hold our modules.)
# dracut 059 prints its version and exits 1: the status is not the answer.
dracut_version=$(dracut --version 2>&1) || true
inputs=("$0" "$VM_HERE/lib.sh" "$kver" "$dracut_version" "$modules" "$drivers")
for d in "${VM_DRACUT_DIRS[@]}"; do
	inputs+=("$(vm_hash_dir "$d")")
done
if [[ $with_hpcs ]]; then
	conf=${hpcs_config:-/etc/hpcs-for-luks.ini}
	inputs+=("$conf" "${hpcs_unlock:-}" "${hpcs_cli:-}" "${hpcs_tcsd_conf:-}"
		"${hpcs_token_plugin:-}" "${hpcs_crypttab:-}")
	# The files the config points at.
	for k in key_dir ca_file tpm_blob; do
		v=$(sed -n "s/^[[:space:]]*${k}[[:space:]]*[=:][[:space:]]*//p" "$conf" | tail -n 1)
		if [[ -d $v ]]; then inputs+=("$(vm_hash_dir "$v")"); elif [[ $v ]]; then inputs+=("$v"); fi
	done
	if [[ ${hpcs_tcsd_conf:-} ]]; then
		ps=$(sed -n 's/^[[:space:]]*system_ps_file[[:space:]]*=[[:space:]]*//p' "$hpcs_tcsd_conf" | tail -n 1)
		[[ $ps ]] && inputs+=("$ps")
	fi
fi
key=$(vm_hash "${inputs[@]}")
out=$VM_CACHE/initramfs/$name-$key.img
if [[ -f $out ]]; then
	echo "$out"
	exit 0
fi
mkdir -p "$VM_CACHE/initramfs"
rm -f "$VM_CACHE/initramfs/$name"-*.img # older builds of this name

# A private dracut tree: the system's, with our modules (this tree's, never an
# installed copy) instead of any of the same name.
base=$(mktemp -d "$VM_CACHE/initramfs/.dracut.XXXXXX")
trap 'rm -rf "$base" "$out.tmp"' EXIT
vm_dracut_tree /usr/lib/dracut "$base"
mkdir "$base/conf.d"

vm_log "dracut: building $name initramfs for $kver"
start=$SECONDS
# shellcheck disable=SC2086  # word splitting of the module/driver lists is meant
dracutbasedir=$base dracut --force --quiet --no-hostonly --no-hostonly-cmdline \
	--conf /dev/null --confdir "$base/conf.d" \
	--kver "$kver" --kmoddir "$kdir/lib/modules/$kver" \
	--modules "$modules" --add-drivers "$drivers" \
	--no-early-microcode --zstd \
	"$out.tmp" >&2
mv "$out.tmp" "$out"
vm_log "dracut: $name done in $((SECONDS - start)) s, $(stat -c %s "$out") bytes"
echo "$out"
