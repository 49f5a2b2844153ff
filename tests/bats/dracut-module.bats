#!/usr/bin/env bats
# The dracut module's logic (dracut/99hpcs/module-setup.sh) without building
# an initramfs: the module is sourced as dracut sources it, with dracut's
# helpers replaced by small stand-ins that copy into a scratch $initdir. The
# VM boot test (tests/vm) covers the module inside a real dracut run.

load helpers

setup() {
	MOD="$BATS_TEST_DIRNAME/../../dracut/99hpcs"
	initdir="$BATS_TEST_TMPDIR/initramfs"
	host="$BATS_TEST_TMPDIR/host"
	mkdir -p "$initdir" "$host/keys/user" "$host/keys/logon"
	printf 'wrapped-user\n' >"$host/keys/user/luks:root"
	printf 'wrapped-logon\n' >"$host/keys/logon/dm:data"
	printf 'not a key\n' >"$host/keys/user/.hidden"
	printf -- '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n' >"$host/ca.pem"
	printf '#!/bin/sh\n' >"$host/hpcs-unlock"
	chmod +x "$host/hpcs-unlock"
	hpcs_config="$host/hpcs-for-luks.ini"
	hpcs_unlock="$host/hpcs-unlock"
	export initdir hpcs_config hpcs_unlock
}

# write_ini API_KEY [EXTRA HFL LINES...]
write_ini() {
	local key=$1
	shift
	{
		printf '[KP]\nregion = us-south\nservice_instance_id = i\napi_key = %s\n' "$key"
		printf 'ca_file = %s\ndefault_crk_uuid = c\n[HFL]\nkey_dir = %s\n' "$host/ca.pem" "$host/keys"
		printf '%s\n' "$@"
	} >"$hpcs_config"
	chmod 600 "$hpcs_config"
}

# run_module FUNCTION: source the module with dracut stand-ins, run FUNCTION.
run_module() {
	run bash -c '
		moddir=$1; shift
		dracutsysrootdir=; hostonly=${hostonly:-}; hostonly_cmdline=${hostonly_cmdline:-}
		systemdsystemunitdir=/usr/lib/systemd/system; udevrulesdir=/usr/lib/udev/rules.d
		SYSTEMCTL=systemctl_stub
		dwarn() { echo "WARN: $*"; }
		derror() { echo "ERROR: $*"; }
		dinfo() { :; }
		find_binary() { command -v "$1"; }
		require_binaries() { local b; for b; do [ -x "$b" ] || command -v "$b" >/dev/null || return 1; done; }
		inst_simple() { mkdir -p "$initdir$(dirname "${2:-$1}")" && cp "$1" "$initdir${2:-$1}"; }
		inst_multiple() { :; }
		inst_rules() { :; }
		instmods() { echo "INSTMODS: $*"; }
		systemctl_stub() { echo "SYSTEMCTL: $*"; }
		# shellcheck source=/dev/null
		. "$moddir/module-setup.sh"
		"$@"
	' _ "$MOD" "$@"
}

@test "check(): 0 with a config and a key, generic or hostonly; else 255; 1 without the binary" {
	write_ini TPM
	run_module check
	[ "$status" -eq 0 ]
	hostonly=yes run_module check
	[ "$status" -eq 0 ]
	rm "$host"/keys/user/* "$host"/keys/logon/*
	run_module check
	[ "$status" -eq 255 ]
	hostonly=yes run_module check
	[ "$status" -eq 255 ]
	hpcs_config="$host/none.ini" run_module check
	[ "$status" -eq 255 ]
	hpcs_unlock="$host/nope" run_module check
	[ "$status" -eq 1 ]
}

@test "depends() asks for network, crypt and systemd" {
	run_module depends
	[ "$status" -eq 0 ]
	[ "$output" = "network crypt systemd" ]
}

@test "a plaintext api_key is not copied into the initramfs, and dracut says why" {
	write_ini plaintext-key-0123
	run_module install
	[ "$status" -eq 0 ]
	[[ "$output" == *"plaintext api_key"* ]]
	[[ "$output" == *"/boot"* ]]
	[ -z "$(find "$initdir" -type f)" ]
}

@test "with initramfs_plain_api_key = yes: binary, unit, keys, CA, rewritten config" {
	write_ini plaintext-key-0123 "initramfs_plain_api_key = yes"
	run_module install
	echo "$output"
	[ "$status" -eq 0 ]
	[ -x "$initdir/usr/sbin/hpcs-unlock" ]
	[ -f "$initdir/usr/lib/systemd/system/hpcs-unlock.service" ]
	[[ "$output" == *"SYSTEMCTL: -q --root $initdir enable hpcs-unlock.service"* ]]
	[ "$(cat "$initdir/var/lib/hpcs-for-luks/user/luks:root")" = wrapped-user ]
	[ "$(cat "$initdir/var/lib/hpcs-for-luks/logon/dm:data")" = wrapped-logon ]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/user/.hidden" ]
	[ "$(stat -c %a "$initdir/var/lib/hpcs-for-luks/user/luks:root")" = 600 ]
	cmp "$host/ca.pem" "$initdir/etc/hpcs-for-luks/ca.pem"
	conf="$initdir/etc/hpcs-for-luks.ini"
	[ "$(stat -c %a "$conf")" = 600 ]
	grep -qx 'key_dir = /var/lib/hpcs-for-luks' "$conf"
	grep -qx 'ca_file = /etc/hpcs-for-luks/ca.pem' "$conf"
	grep -qx 'api_key = plaintext-key-0123' "$conf"
	# The rewritten config is one the unlocker accepts.
	[ -x "$HPCS_BIN_DIR/hpcs-for-luks" ] || skip "build first for the config check"
	sed -i "s|/var/lib/hpcs-for-luks|$initdir/var/lib/hpcs-for-luks|" "$conf"
	echo "rd.hpcs.timeout=1" >"$BATS_TEST_TMPDIR/cmdline"
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$conf" --cmdline "$BATS_TEST_TMPDIR/cmdline"
	[ "$status" -ne 2 ] # not a configuration error (the KMS is unreachable here)
}

@test "api_key = TPM without the sealed blob: install() fails with a clear error" {
	write_ini TPM
	run_module install
	[ "$status" -ne 0 ]
	[[ "$output" == *"api_key = TPM but the sealed API key '$host/keys/api-key-blob.txt' is missing"* ]]
}

@test "installkernel() adds the TPM drivers only with api_key = TPM" {
	write_ini TPM
	run_module installkernel
	[[ "$output" == *"INSTMODS: =drivers/char/tpm"* ]]
	write_ini plaintext-key-0123
	run_module installkernel
	[[ "$output" != *"INSTMODS"* ]]
}

@test "no wrapped keys: the module installs nothing and says so" {
	write_ini TPM
	rm "$host"/keys/user/* "$host"/keys/logon/*
	run_module install
	[ "$status" -eq 0 ]
	[[ "$output" == *"no wrapped keys"* ]]
	[ -z "$(find "$initdir" -type f)" ]
}
