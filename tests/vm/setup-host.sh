#!/bin/bash
# Install what the VM boot test needs on a Debian 12 host (idempotent).
# Usage: setup-host.sh        (root; apt-get is run only for missing packages)
set -eu

pkgs=(dracut-core dracut-network qemu-system-x86 busybox-static cryptsetup-bin
	dmsetup e2fsprogs cpio zstd swtpm swtpm-tools trousers tpm-tools openssl
	keyutils systemd
	# the real-system test (system.bats): the guest root, its disks, the KMS
	# forwarding, and the package builds
	mmdebstrap qemu-utils socat debhelper scdoc bash-completion lintian rpm)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
	echo "setup-host.sh: missing packages (${missing[*]}) and not root" >&2
	exit 1
fi
echo "setup-host.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
