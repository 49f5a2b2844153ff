#!/bin/bash
# The main job on a fresh Debian 12 machine, with our Key Protect emulator
# standing in for IBM Cloud: build, create a root key, wrap a LUKS passphrase
# and a dm-crypt key, `process` them into the kernel keyring, show them there,
# then `wipe` them. Run as root (it installs packages and uses root's keyring).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }

say "Installing build and run dependencies (Debian packages)"
tests/install-deps.sh build test

say "Building"
cmake -S . -B build >/dev/null
cmake --build build -j "${JOBS:-2}" --target hpcs-for-luks >/dev/null
cli=$top/build/hpcs-for-luks

work=$(mktemp -d /tmp/hpcs-demo.XXXXXX)
emu_pid=""
cleanup() {
	[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

say "Starting the Key Protect emulator (HTTPS on 127.0.0.1, its own test CA)"
api_key="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
tests/emulator/kp-emulator --state-dir "$work/emu" --port-file "$work/port" \
	--api-key "$api_key" --instance-id demo-instance >"$work/emu.log" 2>&1 &
emu_pid=$!
for _ in $(seq 1 100); do
	[ -s "$work/port" ] && break
	sleep 0.1
done
[ -s "$work/port" ] || {
	cat "$work/emu.log"
	exit 1
}
port=$(cat "$work/port")

conf=$work/hpcs-for-luks.ini
keys=$work/keys
mkdir -p "$keys/user" "$keys/logon"
write_conf() {
	umask 077
	cat >"$conf" <<CONF
[KP]
region = us-south
endpoint_url = https://localhost:$port
iam_endpoint_url = https://localhost:$port
service_instance_id = demo-instance
api_key = $api_key
default_crk_uuid = ${1:-}
ca_file = $work/emu/ca.pem

[HFL]
key_dir = $keys
CONF
}
write_conf
echo "config: $conf (mode $(stat -c %a "$conf"))"

say "hpcs-for-luks create --crk --name demo-root --gen"
crk=$("$cli" --config "$conf" create --crk --name demo-root --gen)
echo "$crk"
write_conf "$crk"

say "hpcs-for-luks list"
"$cli" --config "$conf" list

say "Wrapping a LUKS passphrase (user key) and a 64-byte dm-crypt key (logon key)"
printf 'correct horse battery staple' | "$cli" --config "$conf" wrap >"$keys/user/demo-luks-pass"
head -c 64 /dev/urandom | "$cli" --config "$conf" wrap >"$keys/logon/demo:dm-key"
ls -l "$keys/user" "$keys/logon"
echo "wrapped: $(cut -c1-60 "$keys/user/demo-luks-pass")..."

say "hpcs-for-luks process"
"$cli" --config "$conf" process

say "In root's user keyring (@u)"
for spec in "user demo-luks-pass" "logon demo:dm-key"; do
	# shellcheck disable=SC2086 # two words on purpose: type and description
	id=$(keyctl search @u $spec)
	echo "$(keyctl rdescribe "$id")  (serial $id)"
done
echo "user key payload: '$(keyctl pipe "$(keyctl search @u user demo-luks-pass)")'"
echo "logon key payload: not readable from user space (that is what logon keys are for)"

say "hpcs-for-luks wipe"
"$cli" --config "$conf" wipe
if keyctl search @u user demo-luks-pass >/dev/null 2>&1; then
	echo "demo: the key is still there after wipe" >&2
	exit 1
fi
echo "the keys are gone from @u"
