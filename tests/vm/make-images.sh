#!/bin/bash
# Build the guest disks: a LUKS2 root (busybox, PBKDF2 with few iterations,
# a luks2-keyring token), a plain dm-crypt volume for the logon-key case, and
# a second LUKS2 volume with a passphrase and a token of its own (no
# filesystem: the initramfs opens it with rd.luks.uuid=, nothing mounts it).
# No device-mapper needed on the host.
# Usage: make-images.sh PASSPHRASE_FILE USER_KEY_DESC LOGON_KEY_FILE DATA_KEY_FILE DATA_KEY_DESC
#   prints the image directory: root.img, root.uuid, logon.img, data.img, data.uuid
set -eu -o pipefail
. "$(dirname "$0")/lib.sh"

[[ $# -eq 5 ]] || {
	echo "usage: $0 PASSPHRASE_FILE USER_KEY_DESC LOGON_KEY_FILE DATA_KEY_FILE DATA_KEY_DESC" >&2
	exit 2
}
pass=$1 desc=$2 logon_key=$3 data_key=$4 data_desc=$5
busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
	vm_die "$busybox is not static (install busybox-static)"
fi

key=$(vm_hash "$0" "$VM_HERE/rootfs-init" "$busybox" "$pass" "$desc" "$logon_key" "$data_key" "$data_desc")
dir=$VM_CACHE/images/$key
vm_cached "$dir" && exit 0
mkdir -p "$VM_CACHE/images"
tmp=$(mktemp -d "$VM_CACHE/images/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The root: busybox, an init that prints markers and powers off, and what
# systemd's switch-root insists on (os-release, empty /dev /proc /sys /run).
r=$tmp/rootfs
mkdir -p "$r"/{bin,sbin,etc,dev,proc,sys,run,tmp}
cp "$busybox" "$r/bin/busybox"
for a in sh cat dd echo head mount poweroff sleep tr cut ls sync grep sed; do
	ln -s busybox "$r/bin/$a"
done
install -m 0755 "$VM_HERE/rootfs-init" "$r/sbin/init"
printf 'ID=hpcs-vm\nNAME="hpcs-for-luks VM test root"\n' >"$r/etc/os-release"

# ext4 of 48 MiB in a 64 MiB file; reencrypt puts the LUKS2 header in the
# 16 MiB it frees at the end (the data then starts at 16 MiB).
truncate -s 64M "$tmp/root.img"
mkfs.ext4 -q -F -L hpcsroot -d "$r" "$tmp/root.img" 48M
cryptsetup reencrypt -q --encrypt --type luks2 --reduce-device-size 16M \
	--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --batch-mode \
	--key-file "$pass" "$tmp/root.img"
cryptsetup token add --key-description "$desc" "$tmp/root.img"
cryptsetup luksUUID "$tmp/root.img" >"$tmp/root.uuid"

# The logon-key volume: 1 MiB of dm-crypt "aes-cbc-plain64" with a 32-byte
# key (sector 0 holds a known text, encrypted here: AES-256-CBC, IV 0 for
# sector 0; `openssl enc` has no XTS).
# The guest opens it with the table ":32:logon:DESC" and prints sector 0.
truncate -s 1M "$tmp/logon.img"
[[ $(stat -c %s "$logon_key") -eq 32 ]] || vm_die "logon key must be 32 bytes"
{
	printf 'HPCS-LOGON-PLAINTEXT sector0 of the logon-key volume.'
	head -c 512 /dev/zero
} |
	head -c 512 |
	openssl enc -aes-256-cbc -nopad -K "$(od -An -tx1 -v "$logon_key" | tr -d ' \n')" \
		-iv 00000000000000000000000000000000 |
	dd of="$tmp/logon.img" conv=notrunc status=none

# The second LUKS2 volume: 32 MiB, half of it the LUKS2 header (the default
# 16 MiB of metadata and key slots).
truncate -s 32M "$tmp/data.img"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--batch-mode --key-file "$data_key" "$tmp/data.img"
cryptsetup token add --key-description "$data_desc" "$tmp/data.img"
cryptsetup luksUUID "$tmp/data.img" >"$tmp/data.uuid"

touch "$tmp/ready"
rm -rf "$dir"
mv "$tmp" "$dir"
rm -rf "$dir/rootfs"
trap - EXIT
echo "$dir"
