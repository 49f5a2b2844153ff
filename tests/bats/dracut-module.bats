#!/usr/bin/env bats
# The dracut modules' logic (dracut/99hpcs/module-setup.sh, "hpcs", and
# dracut/98hpcs-tpm/module-setup.sh, "hpcs-tpm") without building an
# initramfs: a module is sourced as dracut sources it, with dracut's helpers
# replaced by small stand-ins that copy into a scratch $initdir. The VM boot
# test (tests/vm) covers the modules inside a real dracut run.

load helpers

setup() {
	MOD="$BATS_TEST_DIRNAME/../../dracut/99hpcs"
	MODTPM="$BATS_TEST_DIRNAME/../../dracut/98hpcs-tpm"
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
	hpcs_cli="$HPCS_BIN_DIR/hpcs-for-luks"
	export initdir hpcs_config hpcs_unlock hpcs_cli
}

# write_ini API_KEY [SECTION.KEY=VALUE]...: a host config with no emulator
# behind it (region only, no endpoint URLs).
write_ini() {
	local key=$1
	shift
	HPCS_CONF=$hpcs_config HPCS_KEYS=$host/keys EMU_CA=$host/ca.pem EMU_INSTANCE=i \
		EMU_API_KEY=$key HPCS_CRK=c hpcs_write_conf -KP.endpoint_url -KP.iam_endpoint_url "$@"
}

# run_module FUNCTION: source the module "hpcs" (or the one in $RUN_MODDIR)
# with dracut stand-ins, run FUNCTION.
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
		inst_simple() {
			[[ $1 != *"${FAIL_INST:-/nothing/}"* ]] || return 1
			mkdir -p "$initdir$(dirname "${2:-$1}")" && cp "$1" "$initdir${2:-$1}"
		}
		inst_library() { inst_simple "$@"; }
		inst_multiple() { :; }
		inst_rules() { :; }
		instmods() { echo "INSTMODS: $*"; }
		systemctl_stub() { echo "SYSTEMCTL: $*"; }
		# shellcheck source=/dev/null
		. "$moddir/module-setup.sh"
		"$@"
	' _ "${RUN_MODDIR:-$MOD}" "$@"
}

# run_tpm_module FUNCTION: the same for the module "hpcs-tpm".
run_tpm_module() {
	RUN_MODDIR=$MODTPM run_module "$@"
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

@test "depends() asks for network, crypt and systemd; hpcs-tpm only with api_key = TPM" {
	run_module depends
	[ "$status" -eq 0 ]
	[ "$output" = "network crypt systemd" ]
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	run_module depends
	[ "$status" -eq 0 ]
	[ "$output" = "network crypt systemd" ]
	write_ini TPM
	run_module depends
	[ "$status" -eq 0 ]
	[ "$output" = "network crypt systemd hpcs-tpm" ]
}

@test "depends() names systemd-cryptsetup where dracut has that module (dracut-ng)" {
	local base=$BATS_TEST_TMPDIR/dracut
	mkdir -p "$base/modules.d/90crypt"
	dracutbasedir=$base run_module depends
	[ "$output" = "network crypt systemd" ]
	mkdir "$base/modules.d/01systemd-cryptsetup"
	dracutbasedir=$base run_module depends
	[ "$status" -eq 0 ]
	[ "$output" = "network crypt systemd systemd-cryptsetup" ]
	write_ini TPM
	dracutbasedir=$base run_module depends
	[ "$output" = "network crypt systemd systemd-cryptsetup hpcs-tpm" ]
}

@test "hpcs-tpm: check() is 255 (only as a dependency), 1 without the CLI; depends() on nothing" {
	write_ini TPM
	run_tpm_module check
	[ "$status" -eq 255 ]
	hpcs_cli="$host/nope" run_tpm_module check
	[ "$status" -eq 1 ]
	run_tpm_module depends
	[ "$status" -eq 0 ]
	[ -z "$output" ]
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
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
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
	sed -i -e "s|/var/lib/hpcs-for-luks|$initdir/var/lib/hpcs-for-luks|" \
		-e "s|/etc/hpcs-for-luks/ca.pem|$initdir/etc/hpcs-for-luks/ca.pem|" "$conf"
	echo "rd.hpcs.timeout=1" >"$BATS_TEST_TMPDIR/cmdline"
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$conf" --cmdline "$BATS_TEST_TMPDIR/cmdline"
	echo "$output"
	# Accepted: the unlocker went for the KMS (unreachable from here) and
	# said so; neither a configuration error (2) nor a crash.
	[ "$status" -eq 3 ]
	[[ "$output" == *"not loaded: cannot unwrap"*"cannot reach iam.cloud.ibm.com:443"* ]]
}

@test "api_key = TPM without the sealed blob: hpcs-tpm's install() fails with a clear error" {
	write_ini TPM
	run_tpm_module install
	[ "$status" -ne 0 ]
	[[ "$output" == *"api_key = TPM but the sealed API key '$host/keys/api-key-blob.txt' is missing"* ]]
}

@test "the TPM drivers are hpcs-tpm's: every one while the blob is not there yet; none from hpcs" {
	write_ini TPM
	run_tpm_module installkernel
	[ "$status" -eq 0 ]
	[ "$output" = "INSTMODS: =drivers/char/tpm" ]
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

# ---- The TPM part, the module "hpcs-tpm" (dracut/98hpcs-tpm) ----

@test "a TPM 2.0 blob: the blob (0600) and the tpm_tis and tpm_crb drivers, nothing of trousers" {
	write_ini TPM
	printf -- '-----BEGIN HPCS TPM2 SEALED DATA-----\nversion: 1\n' >"$host/keys/api-key-blob.txt"
	run_tpm_module installkernel
	[ "$status" -eq 0 ]
	[ "$output" = "INSTMODS: tpm_tis tpm_crb" ]
	run_tpm_module install
	echo "$output"
	[ "$status" -eq 0 ]
	run_module install
	echo "$output"
	[ "$status" -eq 0 ]
	cmp "$host/keys/api-key-blob.txt" "$initdir/var/lib/hpcs-for-luks/api-key-blob.txt"
	[ "$(stat -c %a "$initdir/var/lib/hpcs-for-luks/api-key-blob.txt")" = 600 ]
	grep -qx 'api_key = TPM' "$initdir/etc/hpcs-for-luks.ini"
	# The config points where hpcs-tpm put the blob.
	grep -qx 'tpm_blob = /var/lib/hpcs-for-luks/api-key-blob.txt' "$initdir/etc/hpcs-for-luks.ini"
	# No daemon and nothing it would need.
	[ ! -e "$initdir/etc/tcsd.conf" ]
	[ ! -e "$initdir/etc/passwd" ]
	[ ! -e "$initdir/var/lib/tpm" ]
	[ -z "$(find "$initdir" -name '*tcsd*')" ]
	[ ! -e "$initdir/usr/lib/systemd/system/hpcs-unlock.service.d" ]
}

@test "a TPM 1.2 blob: tcsd, its config (root:tss 0640), and the shipped unit, drop-in and udev rule" {
	getent group tss >/dev/null || skip "needs the tss user and group (package trousers)"
	command -v tcsd >/dev/null || skip "needs tcsd (package trousers)"
	write_ini TPM
	printf -- '-----BEGIN TSS-----\n-----TSS KEY-----\n' >"$host/keys/api-key-blob.txt"
	printf 'port = 30003\nsystem_ps_file = %s\n' "$host/system.data" >"$host/tcsd.conf"
	printf 'ps\n' >"$host/system.data"
	run_tpm_module installkernel
	[ "$output" = "INSTMODS: =drivers/char/tpm" ]
	# Where the system has no 60-tpm-udev.rules, ours goes in.
	hpcs_tcsd_conf=$host/tcsd.conf run_tpm_module eval 'udevrulesdir=/nonexistent/rules.d; install'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(stat -c '%U:%G %a' "$initdir/etc/tcsd.conf")" = "root:tss 640" ]
	grep -qx 'port = 30003' "$initdir/etc/tcsd.conf"
	grep -qx 'system_ps_file = /var/lib/tpm/system.data' "$initdir/etc/tcsd.conf"
	cmp "$host/system.data" "$initdir/var/lib/tpm/system.data"
	grep -q '^tss:' "$initdir/etc/passwd"
	local units=$initdir/usr/lib/systemd/system
	cmp "$MODTPM/hpcs-tcsd.service" "$units/hpcs-tcsd.service"
	cmp "$MODTPM/hpcs-unlock-tcsd.conf" "$units/hpcs-unlock.service.d/tcsd.conf"
	# The TPM lock goes through tcsd too: each unit that locks starts it first.
	local u
	for u in hpcs-lock-tpm emergency dracut-emergency rescue; do
		cmp "$MODTPM/hpcs-lock-tcsd.conf" "$units/$u.service.d/tcsd.conf"
	done
	cmp "$MODTPM/60-hpcs-tpm.rules" "$initdir/nonexistent/rules.d/60-hpcs-tpm.rules"
}

@test "no shell at the console: a failed boot reboots unless the command line asks; the TPM is locked before the real root and before any emergency shell" {
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	run_module install
	echo "$output"
	[ "$status" -eq 0 ]
	# In /etc/cmdline.d, which dracut reads before /proc/cmdline: rd.shell or
	# rd.break on the kernel command line still win.
	[ "$(cat "$initdir/etc/cmdline.d/98hpcs-noshell.conf")" = "rd.shell=0 rd.emergency=reboot" ]
	local units=$initdir/usr/lib/systemd/system u
	for u in emergency dracut-emergency rescue; do
		grep -qx 'ExecStartPre=-/usr/sbin/hpcs-unlock --lock-tpm' "$units/$u.service.d/hpcs-lock-tpm.conf"
	done
	grep -qx 'ExecStart=/usr/sbin/hpcs-unlock --lock-tpm' "$units/hpcs-lock-tpm.service"
	grep -qx 'Before=initrd.target' "$units/hpcs-lock-tpm.service"
	[[ "$output" == *"enable hpcs-unlock.service hpcs-lock-tpm.service"* ]]
}

@test "a tpm_blob that is no sealed API key is refused" {
	write_ini TPM
	printf 'plaintext-api-key\n' >"$host/keys/api-key-blob.txt"
	run_tpm_module install
	[ "$status" -ne 0 ]
	[[ "$output" == *"is not a sealed API key"* ]]
	[[ "$output" != *plaintext-api-key* ]]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/api-key-blob.txt" ]
}

# --- The config read by hpcs-for-luks itself; every key file, whatever its
# name, checked in (issue 10, item 8)

@test "[kp] and [hfl] in lower case: the module reads them as hpcs-for-luks does" {
	[ -x "$hpcs_cli" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	sed -i 's/^\[KP\]/[kp]/; s/^\[HFL\]/[hfl]/; s/^api_key/API_KEY/' "$hpcs_config"
	run_module install
	echo "$output"
	[ "$status" -eq 0 ]
	[ -x "$initdir/usr/sbin/hpcs-unlock" ]
	conf="$initdir/etc/hpcs-for-luks.ini"
	grep -qx 'api_key = plaintext-key-0123' "$conf"
	grep -qx 'key_dir = /var/lib/hpcs-for-luks' "$conf"
	[ "$(grep -c '^key_dir' "$conf")" -eq 1 ]
	# And the other way round: TPM in any case is not a plaintext key for
	# the module when hpcs-for-luks does not read it as TPM.
	write_ini tpm
	run_module install
	[[ "$output" == *"plaintext api_key"* ]]
}

@test "key files with spaces or a newline in their names all go in, and each is checked" {
	[ -x "$hpcs_cli" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	printf 'w1\n' >"$host/keys/user/luks:my root"
	printf 'w2\n' >"$host/keys/user/luks:a"$'\n'"b"
	run_module install
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(cat "$initdir/var/lib/hpcs-for-luks/user/luks:my root")" = w1 ]
	[ "$(cat "$initdir/var/lib/hpcs-for-luks/user/luks:a"$'\n'"b")" = w2 ]
	[ "$(cat "$initdir/var/lib/hpcs-for-luks/user/luks:root")" = wrapped-user ]
	# A file that does not make it into the image fails the module.
	rm -rf "$initdir"
	FAIL_INST="luks:my root" run_module install
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ERROR: hpcs: cannot install '$host/keys/user/luks:my root'"* ]]
}

# --- What the binaries refuse, the module does not pack as a trusted
# root-owned copy (issue 22, low finding)

@test "a key file hpcs-unlock would refuse fails the module, naming the file and the fix" {
	[ -x "$hpcs_cli" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	local f=$host/keys/user/luks:root
	# Writable by others.
	chmod 0666 "$f"
	run_module install
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ERROR: hpcs: "*"'$f' is writable by group or others (mode 0666)"*"chmod go-w '$f'"* ]]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/user/luks:root" ]
	[ ! -e "$initdir/usr/sbin/hpcs-unlock" ]
	# Owned by another user.
	chmod 0600 "$f"
	chown 65534 "$f"
	run_module install
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ERROR: hpcs: "*"'$f' is owned by uid 65534, not root"* ]]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/user/luks:root" ]
	# A symbolic link (to a file that would pass).
	rm "$f"
	printf 'wrapped-user\n' >"$host/elsewhere"
	ln -s "$host/elsewhere" "$f"
	run_module install
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ERROR: hpcs: "*"$f"* ]]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/user/luks:root" ]
	# A key directory writable by others.
	rm "$f"
	chmod 0777 "$host/keys/logon"
	run_module install
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ERROR: hpcs: "*"'$host/keys/logon' is writable by group or others"* ]]
	# check() still includes the module, so that the build fails rather than
	# leave it out silently.
	run_module check
	[ "$status" -eq 0 ]
}

@test "a sealed API key hpcs-unlock would refuse fails hpcs-tpm's install(), naming it" {
	[ -x "$hpcs_cli" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	write_ini TPM
	local b=$host/keys/api-key-blob.txt
	printf -- '-----BEGIN HPCS TPM2 SEALED DATA-----\nversion: 1\n' >"$b"
	chmod 0666 "$b"
	run_tpm_module install
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ERROR: hpcs: "*"'$b' is writable by group or others (mode 0666)"* ]]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/api-key-blob.txt" ]
	chmod 0600 "$b"
	chown 65534 "$b"
	run_tpm_module install
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ERROR: hpcs: "*"'$b' is owned by uid 65534, not root"* ]]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/api-key-blob.txt" ]
}

@test "a key's linger marker goes into the initramfs with it (its key then gets no timeout)" {
	[ -x "$hpcs_cli" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	mkdir -p "$host/keys/linger/user" "$host/keys/linger/logon"
	: >"$host/keys/linger/user/luks:root"
	: >"$host/keys/linger/logon/not-a-key-here"
	run_module install
	echo "$output"
	[ "$status" -eq 0 ]
	[ -f "$initdir/var/lib/hpcs-for-luks/linger/user/luks:root" ]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/linger/logon/dm:data" ]
	[ ! -e "$initdir/var/lib/hpcs-for-luks/linger/logon/not-a-key-here" ]
}

# --- Volumes with only an `hpcs` token (issue 25, item 4): no key file, the
# token plugin at cryptsetup's token path

# token_volume IMG [TYPE]: a LUKS2 image file with a token of TYPE (default
# hpcs; the JSON of a real one, nothing unwraps it here) for key slot 0.
token_volume() {
	local type=${2:-hpcs}
	truncate -s 20M "$1"
	head -c 32 /dev/urandom | base64 >"$BATS_TEST_TMPDIR/pass"
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$BATS_TEST_TMPDIR/pass" "$1"
	printf '{"type":"%s","keyslots":["0"],"version":1,"kms":"https://kms.test",%s}\n' "$type" \
		'"instance":"i","crk":"c","key_version":"","bound_to":"luks2-uuid","ciphertext":"eyJ4IjoxfQ=="' |
		cryptsetup token import --json-file - --key-slot 0 "$1"
}

# The token directory of this host's libcryptsetup (the image's one too).
token_dir() {
	cryptsetup --help | sed -n 's|^LUKS2 external token plugin path: \(/.*\)\.$|\1|p'
}

@test "check(): 0 with no key file when a crypttab volume has an hpcs token; 255 when its token is another kind" {
	[ -x "$hpcs_cli" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	rm "$host"/keys/user/* "$host"/keys/logon/*
	token_volume "$host/data.img"
	token_volume "$host/other.img" other
	hpcs_crypttab=$host/crypttab
	export hpcs_crypttab
	printf '# name device key options\nother %s none\n' "$host/other.img" >"$hpcs_crypttab"
	run_module check
	[ "$status" -eq 255 ]
	printf 'data %s none _netdev\n' "$host/data.img" >>"$hpcs_crypttab"
	run_module check
	[ "$status" -eq 0 ]
	hostonly=yes run_module check
	[ "$status" -eq 0 ]
	# UUID= is looked for under /dev/disk/by-uuid (none here: not included).
	printf 'data UUID=%s none\n' "$(cryptsetup luksUUID "$host/data.img")" >"$hpcs_crypttab"
	run_module check
	[ "$status" -eq 255 ]
}

@test "only hpcs tokens: hpcs-unlock, config, CA, unit and the token plugin at cryptsetup's path; no key file" {
	[ -x "$hpcs_cli" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	local dir
	dir=$(token_dir)
	[ -n "$dir" ] || skip "this cryptsetup has no external token plugins"
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	rm "$host"/keys/user/* "$host"/keys/logon/*
	token_volume "$host/root.img"
	hpcs_crypttab=$host/crypttab
	printf 'root %s none\n' "$host/root.img" >"$hpcs_crypttab"
	printf 'ELF plugin\n' >"$host/libcryptsetup-token-hpcs.so"
	hpcs_token_plugin=$host/libcryptsetup-token-hpcs.so
	export hpcs_crypttab hpcs_token_plugin
	run_module install
	echo "$output"
	[ "$status" -eq 0 ]
	cmp "$hpcs_token_plugin" "$initdir$dir/libcryptsetup-token-hpcs.so"
	[ -x "$initdir/usr/sbin/hpcs-unlock" ]
	[ -f "$initdir/usr/lib/systemd/system/hpcs-unlock.service" ]
	[[ "$output" == *"SYSTEMCTL: -q --root $initdir enable hpcs-unlock.service"* ]]
	grep -qx 'api_key = plaintext-key-0123' "$initdir/etc/hpcs-for-luks.ini"
	cmp "$host/ca.pem" "$initdir/etc/hpcs-for-luks/ca.pem"
	# The key directory is there, empty.
	[ "$(stat -c %a "$initdir/var/lib/hpcs-for-luks")" = 700 ]
	[ -z "$(find "$initdir/var/lib/hpcs-for-luks" -mindepth 1)" ]
	# A plaintext API key still needs initramfs_plain_api_key = yes.
	rm -rf "$initdir"
	write_ini plaintext-key-0123
	run_module install
	[[ "$output" == *"plaintext api_key"* ]]
	[ -z "$(find "$initdir" -type f)" ]
}

@test "a volume with an hpcs token and no token plugin: install() fails, naming the volume" {
	[ -x "$hpcs_cli" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	write_ini plaintext-key-0123 HFL.initramfs_plain_api_key=yes
	token_volume "$host/root.img"
	hpcs_crypttab=$host/crypttab
	printf 'root %s none\n' "$host/root.img" >"$hpcs_crypttab"
	export hpcs_crypttab
	# Not at cryptsetup's path here (dracutsysrootdir points elsewhere).
	run_module eval "dracutsysrootdir=$host/sysroot; install"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"ERROR: hpcs: '$host/root.img' has an hpcs token, but there is no libcryptsetup-token-hpcs.so in '"*"' to open it at boot"* ]]
	[ ! -e "$initdir/usr/lib/systemd/system/hpcs-unlock.service" ]
	# With key files and no token, the plugin goes in only where the host has it.
	rm "$hpcs_crypttab"
	rm -rf "$initdir"
	run_module eval "dracutsysrootdir=$host/sysroot; install"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -f "$initdir/var/lib/hpcs-for-luks/user/luks:root" ]
	[ -z "$(find "$initdir" -name 'libcryptsetup-token-*')" ]
}
