#!/bin/bash
# A LUKS2 root with ONLY an `hpcs` token (issue 25): a copy of the VM test's
# root image (make-images.sh) with a new LUKS UUID, a new key slot with a
# random passphrase (32 bytes, base64, as hpcs-enroll --token makes it), the
# passphrase wrapped by `hpcs-for-luks token make` against the emulator with
# the fixture's CRK and imported as the volume's token; the fixture's
# passphrase slot and the luks2-keyring token removed. The same for a copy of
# the second LUKS2 volume (data.img, the fixture's data.key). Made on the
# host, no device-mapper. Also what the initramfs is built from: token.ini
# (the fixture's plain.ini with an empty key_dir) and a crypttab naming the
# root image.
# Usage: make-token-image.sh HFL_CLI FIXTURE_DIR ROOT_IMG DATA_IMG
#   prints the directory: root.img, root.uuid, root.json, data.img, data.uuid,
#   data.json, token.ini, crypttab, keys/
set -eu -o pipefail
. "$(dirname "$0")/lib.sh"
umask 077

[[ $# -eq 4 && -x $1 && -d $2 && -f $3 && -f $4 ]] || {
	echo "usage: $0 HFL_CLI FIXTURE_DIR ROOT_IMG DATA_IMG" >&2
	exit 2
}
hfl=$1 fix=$2 src=$3 data_src=$4

key=$(vm_hash "$0" "$hfl" "$fix" "$src" "$data_src")
dir=$VM_CACHE/token/$key
vm_cached "$dir" && exit 0
mkdir -p "$VM_CACHE/token"
vm_prune "$VM_CACHE/token"
tmp=$(mktemp -d "$VM_CACHE/token/.tmp.XXXXXX")
cleanup() {
	emulator_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=../bats/helpers.bash
. "$VM_REPO/tests/bats/helpers.bash"
# shellcheck source=/dev/null
. "$fix/env"
export EMU_API_KEY EMU_INSTANCE
emulator_start --state-dir "$fix/emu"
# The fixture's config, pointed at the emulator on the host.
conf=$tmp/host.ini
sed -e "s|^endpoint_url = .*|endpoint_url = $EMU_URL|" -e "s|^iam_endpoint_url = .*|iam_endpoint_url = $EMU_URL|" \
	-e "s|^ca_file = .*|ca_file = $EMU_CA|" "$fix/plain.ini" >"$conf"

# token_only NAME SRC_IMG KEY_FILE: $tmp/NAME.img, a copy of SRC_IMG (key
# slot 0 opened by KEY_FILE, token 0 a keyring one) with a new UUID
# ($tmp/NAME.uuid) and only an hpcs token ($tmp/NAME.json) for its key slot 1.
token_only() {
	local name=$1 img=$tmp/$1.img uuid
	cp "$2" "$img"
	cat /proc/sys/kernel/random/uuid >"$tmp/$name.uuid"
	uuid=$(cat "$tmp/$name.uuid")
	cryptsetup luksUUID -q --uuid "$uuid" "$img"
	head -c 32 /dev/urandom | base64 | tr -d '\n' >"$tmp/pass"
	cryptsetup luksAddKey -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --new-key-slot 1 \
		--key-file "$3" "$img" "$tmp/pass"
	cryptsetup luksKillSlot -q --key-file "$tmp/pass" "$img" 0
	cryptsetup token remove --token-id 0 "$img"
	"$hfl" --config "$conf" token make --luks-uuid "$uuid" --keyslot 1 --name "vm-$name" \
		<"$tmp/pass" >"$tmp/$name.json"
	rm -f "$tmp/pass"
	cryptsetup token import --json-file "$tmp/$name.json" --token-id 0 "$img"
	# What the plugin will do at boot, checked on the host first: the
	# token's passphrase opens the volume.
	"$hfl" --config "$conf" token open --device "$img" |
		cryptsetup open --test-passphrase --key-file - "$img" ||
		vm_die "the token does not open $img"
	# One key slot, one token: the hpcs one.
	"$hfl" luks --device "$img" >"$tmp/luks.txt"
	if [[ $(grep -c '' "$tmp/luks.txt") -ne 2 || $(head -n 1 "$tmp/luks.txt") != "keyslot 1 "* ]] ||
		! grep -q '^token 0 hpcs 1\( \|$\)' "$tmp/luks.txt"; then
		vm_die "$img: not one key slot and one hpcs token: $(tr '\n' '|' <"$tmp/luks.txt")"
	fi
	rm -f "$tmp/luks.txt"
}
token_only root "$src" "$fix/secret/passphrase"
token_only data "$data_src" "$fix/secret/data.key"
rm -f "$conf"
uuid=$(cat "$tmp/root.uuid")

mkdir "$tmp/keys"
sed "s|^key_dir = .*|key_dir = $dir/keys|" "$fix/plain.ini" >"$tmp/token.ini"
printf 'luks-%s %s none\n' "$uuid" "$dir/root.img" >"$tmp/crypttab"

touch "$tmp/ready"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
emulator_stop
echo "$dir"
