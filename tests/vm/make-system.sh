#!/bin/bash
# The guest system of tests/vm/system.bats, set up the way a user sets up a
# server, in a chroot of the stock Debian root (make-debian-root.sh):
#   1. the package installed with `apt-get install ./hpcs-for-luks_*.deb`;
#   2. /etc/hpcs-for-luks.ini written (endpoints https://kms.test and
#      https://iam.test: names, as mbedTLS cannot verify an IP; /etc/hosts maps
#      them to 10.0.2.100, which qemu forwards to the emulator), the
#      emulator's CA added to the system store (update-ca-certificates);
#   3. the root volume enrolled with `hpcs-enroll` (name luks-<UUID>, what
#      rd.luks.uuid= gives it), then `dracut --regenerate-all --force`;
#   4. after that, data2 set up by hand as IBM's README does it (wrap a key,
#      luksAddKey, token add, `data2 UUID=... none _netdev,timeout=1` in
#      crypttab, `defaults,_netdev` in fstab, the README's `systemctl enable`
#      line) with a linger marker; remote-cryptsetup.target stays disabled;
#   5. systemd-networkd for the real root, the test driver unit
#      (system-guest/); after the initramfs of step 3, network-manager
#      installed (offline, from the debs the root holds) and left disabled,
#      for the guest to switch to it later (hpcs-systest, stage kmsdown);
#   6. the root filesystem packed (ext4) and encrypted offline (LUKS2): the
#      header that hpcs-enroll changed in step 3 is the one on the disk.
# data1, data3 and data4 are LUKS2 volumes enrolled later, inside the guest
# (data4 with an hpcs token, no key file).
# Cached by all its inputs; the KMS state comes from make-fixture.sh.
#
# Usage: make-system.sh ROOT_TAR PACKAGES_DIR FIXTURE_DIR
#   prints the directory: boot.img root.img data{1,2,3,4}.img (raw disks, in
#   this order vda..vde), vmlinuz, initrd.img (the initramfs dracut made),
#   root.uuid, data{1,2,3,4}.uuid, pass (the root's typed passphrase),
#   kver, times (prep timings), prep.log, remote-cryptsetup.enabled and
#   nm.enabled (systemctl is-enabled)
set -eu -o pipefail
. "$(dirname "$0")/lib.sh"

[[ $# -eq 3 ]] || {
	echo "usage: $0 ROOT_TAR PACKAGES_DIR FIXTURE_DIR" >&2
	exit 2
}
root_tar=$1 pkgs=$2 fix=$3
guest_files=$VM_HERE/system-guest
deb=$(echo "$pkgs"/hpcs-for-luks_*.deb)
[[ -f $deb ]] || vm_die "no .deb in '$pkgs'"

# The fixture by what the image takes from it (its CA, config, API key and
# wrapped keys), not by its path: a fixture made again at the same path has
# a new CA, and an image keyed by the path would still trust the old one.
key=$(vm_hash "$0" "$root_tar" "$deb" "$fix/emu/ca.pem" "$fix/plain.ini" "$fix/env" \
	"$(vm_hash_dir "$fix/keys")" "$(vm_hash_dir "$guest_files")")
dir=$VM_CACHE/system/$key
vm_cached "$dir" && exit 0
mkdir -p "$VM_CACHE/system"
exec 9>"$VM_CACHE/system/.lock"
flock 9
vm_cached "$dir" && exit 0
vm_prune "$VM_CACHE/system"
tmp=$(mktemp -d "$VM_CACHE/system/.tmp.XXXXXX")
r=$tmp/root
mounts=()
# shellcheck disable=SC2317  # called through the trap
cleanup() {
	local i
	emulator_stop
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}"
	done
	# Nothing of the host is mounted below $r any more; stay on this
	# filesystem all the same.
	rm -rf --one-file-system "$tmp"
}
# shellcheck source=../bats/helpers.bash
. "$VM_REPO/tests/bats/helpers.bash"
trap cleanup EXIT
log=$tmp/prep.log
: >"$log"
step() { vm_log "system: $*"; }
in_root() { chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"; }

# shellcheck source=/dev/null
. "$fix/env"
export EMU_API_KEY EMU_INSTANCE

step "unpacking the Debian root"
mkdir -p "$r"
tar -C "$r" --numeric-owner -xpf "$root_tar"
kver=$(ls "$r/lib/modules")
[[ $(wc -w <<<"$kver") -eq 1 ]] || vm_die "expected one kernel in the root, got: $kver"
mount -t proc proc "$r/proc" && mounts+=("$r/proc")
mount -t sysfs -o ro sysfs "$r/sys" && mounts+=("$r/sys")
mount -t tmpfs -o mode=0755 tmpfs "$r/run" && mounts+=("$r/run")
# A private /dev (not the host's): what apt, cryptsetup and dracut open.
mount -t tmpfs -o mode=0755 tmpfs "$r/dev" && mounts+=("$r/dev")
mknod -m 666 "$r/dev/null" c 1 3
mknod -m 666 "$r/dev/zero" c 1 5
mknod -m 666 "$r/dev/full" c 1 7
mknod -m 666 "$r/dev/random" c 1 8
mknod -m 666 "$r/dev/urandom" c 1 9
mknod -m 666 "$r/dev/tty" c 5 0
mkdir -p "$r/dev/shm" "$r/dev/pts"
ln -s /proc/self/fd "$r/dev/fd"
mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm" && mounts+=("$r/dev/shm")

step "apt-get install ./$(basename "$deb")"
cp "$deb" "$r/tmp/"
in_root apt-get install -y --no-install-recommends "/tmp/$(basename "$deb")" >"$tmp/apt.log" 2>&1 || {
	cat "$tmp/apt.log" >&2
	vm_die "installing the package failed"
}
rm "$r/tmp/$(basename "$deb")"
cat "$tmp/apt.log" >>"$log"

step "configuration"
# The fixture's initramfs config (https://kms.test, https://iam.test, its API
# key and root key), with the system's CA store and key directory.
umask 077
sed -e '/^ca_file *=/d' -e 's|^key_dir *=.*|key_dir = /var/lib/hpcs-for-luks|' "$fix/plain.ini" \
	>"$r/etc/hpcs-for-luks.ini"
umask 022
grep -qx 'endpoint_url = https://kms.test' "$r/etc/hpcs-for-luks.ini" ||
	vm_die "unexpected fixture config '$fix/plain.ini'"
install -m 0644 "$fix/emu/ca.pem" "$r/usr/local/share/ca-certificates/kp-emulator.crt"
in_root update-ca-certificates >>"$log" 2>&1
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\thpcs-guest\n10.0.2.100\tkms.test iam.test\n' >"$r/etc/hosts"
# The KMS during the preparation: the emulator on a loopback address of its
# own, port 443, so that the guest's config works unchanged in the chroot.
prep_addr=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
emulator_start --state-dir "$fix/emu" --bind "$prep_addr" --port 443
sed -i "s/^10\.0\.2\.100\t/$prep_addr\t/" "$r/etc/hosts"

# dracut's compressor, as a user may choose it (dracut.conf(5) compress=).
# Debian's default, `gzip -9`, is most of dracut's time: on the host 57 s of
# CPU of a 95 s run for this 180 MB image (zstd -3: 0.7 s); in the guest
# under TCG the whole `dracut --regenerate-all` took 436 and 551 s with it.
# Nothing else changes: the image stays generic, the modules are dracut's
# own choice.
echo 'compress="zstd -3 -q -T0"' >"$r/etc/dracut.conf.d/10-compress.conf"

# The real root's network: systemd-networkd, DHCPv4 on the virtio NIC. IPv4
# only: after dracut's network-legacy has configured a static ip= (it flushes
# the interface's addresses, the IPv6 link-local one too), networkd would
# wait for IPv6 link-local forever, and systemd-networkd-wait-online fail.
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
	>"$r/etc/systemd/network/20-wired.network"
in_root systemctl enable systemd-networkd.service >>"$log" 2>&1

# The test driver and what it needs.
install -m 0755 "$guest_files/hpcs-systest" "$r/usr/local/sbin/hpcs-systest"
install -m 0644 "$guest_files/hpcs-systest.service" "$r/etc/systemd/system/hpcs-systest.service"
in_root systemctl enable hpcs-systest.service >>"$log" 2>&1
mkdir -m 0700 "$r/root/systest" "$r/run/prep"
# The typed passphrases: one for the root, another for the data volumes (a
# passphrase typed at boot is cached and tried on the next volumes).
head -c 24 /dev/urandom | base64 | tr -d '\n/+=' >"$tmp/pass"
head -c 24 /dev/urandom | base64 | tr -d '\n/+=' >"$tmp/pass-data"
cp "$tmp/pass" "$r/run/prep/pass"
cp "$tmp/pass-data" "$r/run/prep/pass-data"
cp "$tmp/pass-data" "$r/root/systest/pass"

# encrypt IMG PASSPHRASE_FILE [VOLUME_KEY_FILE]: LUKS2 in place (the header
# goes into the first half of the 16 MiB the filesystem leaves free), the
# passphrase in key slot 0.
encrypt() {
	local vk=()
	[[ $# -lt 3 ]] || vk=(--volume-key-file "$3" --key-size 512)
	cryptsetup reencrypt -q --encrypt --type luks2 --reduce-device-size 16M \
		--sector-size 4096 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --batch-mode \
		--key-file "$2" "${vk[@]}" "$1"
}
# mkfs IMG SIZE DIR: ext4 of SIZE with DIR's files, 16 MiB left for LUKS2.
mkfs() {
	truncate -s "$2" "$1"
	mkfs.ext4 -q -F -b 4096 -d "$3" "$1" "$(($(stat -c %s "$1") / 1024 / 1024 - 16))M"
}

step "the root volume: LUKS2 header, enrolled with hpcs-enroll"
root_size=2G
# The header first, on a small image (the data segment's size is "whole
# device"); the filesystem is packed and encrypted with the same volume key
# at the end, and gets this header.
truncate -s 32M "$r/run/prep/root.luks"
encrypt "$r/run/prep/root.luks" "$tmp/pass"
root_uuid=$(cryptsetup luksUUID "$r/run/prep/root.luks")
in_root hpcs-enroll --key-file /run/prep/pass /run/prep/root.luks >"$tmp/enroll-root.log" 2>&1 || {
	cat "$tmp/enroll-root.log" >&2
	vm_die "hpcs-enroll of the root failed"
}
cat "$tmp/enroll-root.log" >>"$log"
grep -qx "luks-$root_uuid UUID=$root_uuid none luks" "$r/etc/crypttab" ||
	vm_die "hpcs-enroll wrote no crypttab line for the root: $(cat "$r/etc/crypttab")"
[[ -f $r/var/lib/hpcs-for-luks/user/luks:luks-$root_uuid ]] || vm_die "no wrapped root key"

step "the boot partition and fstab"
mkdir -p "$r/mnt/data2"
cat >"$r/etc/fstab" <<EOF
/dev/mapper/luks-$root_uuid / ext4 defaults 0 1
LABEL=hpcsboot /boot ext4 defaults 0 2
EOF

step "dracut --regenerate-all --force (in the chroot)"
start=$SECONDS
in_root dracut --regenerate-all --force >"$tmp/dracut.log" 2>&1 || {
	tail -n 30 "$tmp/dracut.log" >&2
	vm_die "dracut failed"
}
dracut_s=$((SECONDS - start))
cat "$tmp/dracut.log" >>"$log"
[[ -f $r/boot/initrd.img-$kver ]] || vm_die "dracut made no /boot/initrd.img-$kver"

# NetworkManager, as a server that has it installed but uses systemd-networkd:
# disabled (its postinst enabled it), so the network of the next boots is
# networkd's; dracut's network module is chosen in /etc/dracut.conf.d from
# boot 1 on. Installed only now: dracut's own choice for the initramfs above
# would have been network-manager.
step "network-manager: installed, disabled"
{
	in_root sh -c 'apt-get install -y --no-install-recommends /root/debs/network-manager/*.deb'
	in_root systemctl disable NetworkManager.service
} >"$tmp/nm.log" 2>&1 || {
	cat "$tmp/nm.log" >&2
	vm_die "installing network-manager failed"
}
cat "$tmp/nm.log" >>"$log"
rm -rf "$r/root/debs"
in_root systemctl is-enabled NetworkManager.service >"$tmp/nm.enabled" 2>&1 || true

step "data2, set up by hand after the initramfs was made"
mkdir -p "$tmp/d2"
echo "HPCS-DATA2-MARKER" >"$tmp/d2/marker"
mkfs "$r/run/prep/data2.img" 64M "$tmp/d2"
encrypt "$r/run/prep/data2.img" "$tmp/pass-data"
data2_uuid=$(cryptsetup luksUUID "$r/run/prep/data2.img")
head -c 32 /dev/urandom | base64 -w0 >"$r/run/prep/data2.key"
echo "data2 UUID=$data2_uuid none _netdev,timeout=1" >>"$r/etc/crypttab"
echo "/dev/mapper/data2 /mnt/data2 ext4 defaults,_netdev 0 2" >>"$r/etc/fstab"
{
	in_root sh -c 'umask 077 && hpcs-for-luks wrap </run/prep/data2.key >/var/lib/hpcs-for-luks/user/luks:data2'
	in_root cryptsetup luksAddKey --batch-mode --key-file /run/prep/pass-data /run/prep/data2.img /run/prep/data2.key
	in_root cryptsetup token add --key-description luks:data2 /run/prep/data2.img
	in_root systemctl enable hpcs-for-luks.service hpcs-for-luks-wipe.service
} >>"$log" 2>&1
touch "$r/var/lib/hpcs-for-luks/linger/user/luks:data2"
emulator_stop
sed -i "s/^$prep_addr\t/10.0.2.100\t/" "$r/etc/hosts"
# Debian's default, kept: the target that hpcs-enroll --netdev would enable.
in_root systemctl is-enabled remote-cryptsetup.target >"$tmp/remote-cryptsetup.enabled" 2>&1 || true

step "data1, data3 and data4: LUKS2, enrolled later in the guest"
for n in 1 3 4; do
	mkdir -p "$tmp/d$n"
	echo "HPCS-DATA$n-MARKER" >"$tmp/d$n/marker"
	mkfs "$tmp/data$n.img" 64M "$tmp/d$n"
	encrypt "$tmp/data$n.img" "$tmp/pass-data"
done
printf 'DATA1_UUID=%s\nDATA3_UUID=%s\nDATA4_UUID=%s\n' "$(cryptsetup luksUUID "$tmp/data1.img")" \
	"$(cryptsetup luksUUID "$tmp/data3.img")" "$(cryptsetup luksUUID "$tmp/data4.img")" >"$r/root/systest/env"

step "packing /boot and the root"
out=$tmp/out
mkdir -p "$out"
mv "$r/run/prep/data2.img" "$out/data2.img"
mv "$r/run/prep/root.luks" "$tmp/root.luks"
mv "$tmp/data1.img" "$tmp/data3.img" "$tmp/data4.img" "$out/"
for n in 1 2 3 4; do cryptsetup luksUUID "$out/data$n.img" >"$out/data$n.uuid"; done
cp "$r/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$r/boot/initrd.img-$kver" "$out/initrd.img"
truncate -s 256M "$out/boot.img"
mkfs.ext4 -q -F -L hpcsboot -d "$r/boot" "$out/boot.img"
for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}"; done
mounts=()
find "$r/boot" -mindepth 1 -delete
find "$r/run" "$r/tmp" -mindepth 1 -delete
start=$SECONDS
mkfs "$out/root.img" "$root_size" "$r"
# The same volume key as the header that hpcs-enroll changed, then that
# header (everything before the data offset) over the new one.
cryptsetup luksDump -q --dump-volume-key --volume-key-file "$tmp/vk" --key-file "$tmp/pass" \
	"$tmp/root.luks" >/dev/null
encrypt "$out/root.img" "$tmp/pass" "$tmp/vk"
shred -u "$tmp/vk"
off=$(cryptsetup luksDump "$tmp/root.luks" | sed -n 's/^[[:space:]]*offset: \([0-9]*\) \[bytes\].*/\1/p' | head -n 1)
[[ $off ]] || vm_die "no data offset in the root header"
dd if="$tmp/root.luks" of="$out/root.img" bs=1M count=$((off / 1048576)) conv=notrunc status=none
[[ $(cryptsetup luksUUID "$out/root.img") == "$root_uuid" ]] || vm_die "root header not in place"
cryptsetup open --test-passphrase --key-file "$tmp/pass" "$out/root.img" || vm_die "root header broken"
cryptsetup luksDump "$out/root.img" | grep -q "luks2-keyring" || vm_die "root token missing"
pack_s=$((SECONDS - start))
echo "$root_uuid" >"$out/root.uuid"
echo "$kver" >"$out/kver"
cp "$tmp/pass" "$out/pass"
printf 'chroot_dracut=%s pack=%s\n' "$dracut_s" "$pack_s" >"$out/times"
cp "$log" "$out/prep.log"
cp "$tmp/remote-cryptsetup.enabled" "$tmp/nm.enabled" "$out/"
touch "$out/ready"
mv "$out" "$dir"
echo "$dir"
