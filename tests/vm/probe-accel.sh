#!/bin/bash
# Print "kvm" if a KVM guest really boots here, else "tcg". /dev/kvm can be
# present and still hang guests (nested paravirtual KVM): boot the kernel
# with no root and look for its panic within a few seconds. Cached per host
# kernel, qemu and test kernel.
# Usage: probe-accel.sh KERNEL
set -eu
. "$(dirname "$0")/lib.sh"

kernel=$1
if [[ ${HPCS_VM_ACCEL:-} ]]; then
	echo "$HPCS_VM_ACCEL"
	exit 0
fi
if [[ ! -w /dev/kvm ]]; then
	echo tcg
	exit 0
fi
key=$(vm_hash "$(uname -r)" "$(qemu-system-x86_64 --version | head -n 1)" "$kernel")
cache=$VM_CACHE/accel-$key
if [[ -f $cache ]]; then
	cat "$cache"
	exit 0
fi

log=$(mktemp)
accel=tcg
if "$VM_HERE/boot.sh" --accel kvm --kernel "$kernel" --log "$log" --timeout 20 \
	--until 'Kernel panic|VFS: Unable to mount root' -- console=ttyS0 panic=-1 >/dev/null 2>&1; then
	accel=kvm
fi
rm -f "$log"
mkdir -p "$VM_CACHE"
echo "$accel" >"$cache"
echo "$accel"
