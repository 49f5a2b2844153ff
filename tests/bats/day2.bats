#!/usr/bin/env bats
# Day-two operations against the Key Protect emulator and real LUKS2 image
# files: `report` (will the next boot unlock?), `rewrap` after a rotation,
# `rewrap --to-crk` (another root key, another instance), and the newer
# wrapping an unwrap returns after a rotation, stored by `process` and the
# real root's hpcs-unlock. The initramfs images are made the way dracut's
# module lays them out (its own _hpcs_write_config), as a gzip'd cpio that
# lsinitrd reads.
#
# Needs root (keyring), cryptsetup, lsinitrd (dracut-core), cpio, jq.

load helpers
bats_require_minimum_version 1.5.0

TOP=$(cd "$(dirname "$BATS_TEST_FILENAME")/../.." && pwd)
ENROLL=$TOP/crypttab-helpers/hpcs-enroll

setup() {
	local c
	for c in cryptsetup lsinitrd cpio jq keyctl; do
		command -v "$c" >/dev/null || skip "needs $c (cryptsetup-bin, dracut-core, cpio, jq, keyutils)"
	done
	[ -x "$HPCS_BIN_DIR/hpcs-for-luks" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	hpcs_setup
	export PATH="$HPCS_BIN_DIR:$PATH"
	EMU_TOKEN=$(emu_token)
	OLD=$BATS_TEST_TMPDIR/old-pass
	CT=$BATS_TEST_TMPDIR/crypttab
	INITRD=$BATS_TEST_TMPDIR/initrd.img
	printf 'old passphrase' >"$OLD"
	: >"$CT"
}

teardown() {
	if [ -n "${EMU2_PID:-}" ]; then
		kill "$EMU2_PID" 2>/dev/null
		wait "$EMU2_PID" 2>/dev/null
	fi
	lock_release
	hpcs_teardown
}

# volume NAME [enroll options]: a LUKS2 image enrolled as NAME with the user
# key $HPCS_TAG:NAME; its crypttab line names the image file (the by-uuid
# link of a real disk does not exist for a file).
volume() {
	local name=$1 img=$BATS_TEST_TMPDIR/$1.img
	shift
	truncate -s 20M "$img"
	cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 \
		--pbkdf-force-iterations 1000 --key-file "$OLD" "$img"
	"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --no-enable --key-file "$OLD" \
		--name "$HPCS_TAG:$name" "$@" "$img" "$name" >/dev/null
	sed -i "s|UUID=$(cryptsetup luksUUID "$img")|$img|" "$CT"
}

make_initrd() {
	hpcs_make_initrd "$INITRD"
}

report() {
	hpcs report --crypttab "$CT" --initramfs "$INITRD" "$@"
}

# The plaintext of a wrapped key, hashed (never printed).
unwrapped_sum() {
	hpcs unwrap <"$1" | sha256sum
}

@test "report: all good after enrolling and building the initramfs; each volume's slot opens" {
	volume data
	volume logs --netdev
	make_initrd
	run report
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"All good"* ]]
	[[ "$output" == *"opens key slot 1 of '$BATS_TEST_TMPDIR/data.img' (crypttab 'data')"* ]]
	[[ "$output" == *"after the network is up (_netdev)"* ]]
	[[ "$output" == *"carries hpcs-unlock, the same config and the 2 wrapped keys"* ]]
	run report --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .status <<<"$output")" = ok ]
	[ "$(jq -r '[.keys[] | .unwraps and .current and .volumes[0].opens] | all' <<<"$output")" = true ]
	[ "$(jq -r '.keys[] | select(.description | endswith(":logs")) | .volumes[0].netdev' <<<"$output")" = true ]
	# No key, API key or token in what it says, even with --debug.
	local pass
	pass=$(hpcs unwrap <"$HPCS_KEYS/user/$HPCS_TAG:data")
	[ "${#pass}" -eq 44 ]
	run hpcs --debug report --crypttab "$CT" --initramfs "$INITRD"
	[ "$status" -eq 0 ]
	# shellcheck disable=SC2046  # one token per word
	refute_secrets "$output" "$pass" "$(printf %s "$pass" | base64 -w0)" "$EMU_API_KEY" $(emu_tokens)
}

@test "report --json: the documented shape (README), field by field" {
	volume data
	make_initrd
	run report --json
	[ "$status" -eq 0 ]
	# One line, one object.
	[ "$(wc -l <<<"$output")" -eq 1 ]
	# The field list of README.md "report --json", with each field's type.
	jq -e '
		def has_types(spec): . as $o | spec | to_entries | all(.key as $k | .value as $t |
			($o | has($k)) and (($o[$k] | type) as $have | $t | split("|") | index($have) != null));
		has_types({format: "number", status: "string", exit_status: "number", config: "string",
			key_dir: "string", api_key: "string|null", root_key: "object|null", keys: "array",
			initramfs: "array", tpm: "object|null", memory: "object|null", findings: "array"})
		and .format == 1 and (.status | IN("ok", "warn", "fail")) and (.exit_status | IN(0, 1))
		and (.root_key | has_types({id: "string", state: "number", state_name: "string",
			key_version: "string|null", key_version_created: "string|null"}))
		and (.keys | length > 0) and (.keys | all(has_types({type: "string",
			description: "string", path: "string", unwraps: "boolean|null",
			key_version: "string|null", current: "boolean|null", volumes: "array"})))
		and ([.keys[].volumes[]] | length > 0) and ([.keys[].volumes[]] | all(has_types({
			name: "string", device: "string", netdev: "boolean", keyslots: "array",
			opens: "boolean|null"})))
		and (.initramfs | length > 0) and (.initramfs | all(has_types({path: "string",
			kernel: "string|null", roles: "array", module: "boolean|null",
			config_matches: "boolean|null", keys_missing: "array", keys_removed: "array",
			keys_differ: "array"})))
		and (.memory | has_types({ram_kib: "number", argon2_kib: "number", volumes: "array"}))
		and (.memory.volumes | all(has_types({name: "string", device: "string", kib: "number"})))
		and (.findings | length > 0) and (.findings | all(has_types({check: "string",
			subject: "string", status: "string", message: "string", remedy: "string|null"})
			and (.status | IN("ok", "info", "warn", "fail"))
			and (.check | IN("config", "tpm", "kms", "root-key", "key", "volume", "initramfs",
				"memory"))))
	' <<<"$output"
	# Every documented field is in README.md, and no undocumented one is in the output.
	local f
	for f in $(jq -r '[paths | map(if type == "number" then "[]" else . end) | join(".")
		| gsub("\\.\\[\\]"; "[]") | select(endswith("[]") | not)] | unique | .[]' <<<"$output"); do
		grep -qF "\`$f\`" "$TOP/README.md" || {
			echo "field '$f' is not documented in README.md" >&2
			return 1
		}
	done
}

@test "a rotation, then rewrap: files change, every key unwraps to the same bytes, report shows them current" {
	volume data
	volume logs --netdev
	make_initrd
	local data=$HPCS_KEYS/user/$HPCS_TAG:data logs=$HPCS_KEYS/user/$HPCS_TAG:logs
	local before_data before_logs sum_data sum_logs
	before_data=$(cat "$data")
	before_logs=$(cat "$logs")
	sum_data=$(unwrapped_sum "$data")
	sum_logs=$(unwrapped_sum "$logs")
	hpcs_rotate

	# Before rewrap: still unwraps, but with an older version (info, exit 0).
	run report --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.keys[].current] | map(tostring) | join(",")' <<<"$output")" = false,false ]
	[ "$(jq -r '[.keys[].unwraps] | all' <<<"$output")" = true ]

	emu_ctl POST reset-stats >/dev/null
	run hpcs rewrap
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"2 of 2 keys rewrapped with root key '$HPCS_CRK', 0 already current, 0 failed"* ]]
	[[ "$output" == *"dracut --force"* ]]
	# The KMS did it: rewrap (and its check), never an unwrap.
	[ "$(emu_stat by_op.rewrap)" = 4 ]
	[ "$(emu_stat by_op.unwrap)" = 0 ]
	[ "$(cat "$data")" != "$before_data" ]
	[ "$(cat "$logs")" != "$before_logs" ]
	[ "$(stat -c %a "$data")" = 600 ]
	[ "$(unwrapped_sum "$data")" = "$sum_data" ]
	[ "$(unwrapped_sum "$logs")" = "$sum_logs" ]

	run report --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.keys[].current] | all' <<<"$output")" = true ]
	[ "$(jq -r '.keys[0].key_version == .root_key.key_version' <<<"$output")" = true ]
	# The old initramfs carries the older wrappings: they still unwrap (info).
	[ "$(jq -r '.initramfs[0].keys_differ | length' <<<"$output")" = 2 ]
	[[ "$(jq -r '.findings[] | select(.check == "initramfs") | .message' <<<"$output")" == *"older wrapping"*"still unwraps to the same key"* ]]

	# A second rewrap has nothing to do and writes nothing.
	local after
	after=$(cat "$data")
	run hpcs rewrap
	[ "$status" -eq 0 ]
	[[ "$output" == *"0 of 2 keys rewrapped"*"2 already current"* ]]
	[ "$(cat "$data")" = "$after" ]
}

@test "rewrap: a key that fails does not stop the others; exit 1 names it" {
	volume data
	volume logs
	echo "not-a-ciphertext" >"$HPCS_KEYS/user/$HPCS_TAG:logs"
	local before
	before=$(cat "$HPCS_KEYS/user/$HPCS_TAG:data")
	hpcs_rotate
	run hpcs rewrap
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot rewrap '$HPCS_KEYS/user/$HPCS_TAG:logs': HTTP 422 UNPROCESSABLE_CIPHERTEXT_ERR"* ]]
	[[ "$output" == *"1 of 2 keys rewrapped"*"1 failed"* ]]
	[ "$(cat "$HPCS_KEYS/user/$HPCS_TAG:data")" != "$before" ]
	[ "$(cat "$HPCS_KEYS/user/$HPCS_TAG:logs")" = not-a-ciphertext ]
}

@test "report: a disabled root key is a failure, named with its remedy (exit 1)" {
	volume data
	make_initrd
	emu_api POST "/api/v2/keys/$HPCS_CRK/actions/disable"
	emu_expect 204
	run report
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"FAIL    root-key   $HPCS_CRK"*"is suspended (disabled): unwraps will fail"* ]]
	[[ "$output" == *"remedy: enable it"*"/actions/enable"* ]]
	[[ "$output" == *"FAIL    key        user/$HPCS_TAG:data"*"KEY_ACTION_INVALID_STATE_ERR"* ]]
	run report --json
	[ "$(jq -r .status <<<"$output")" = fail ]
	[ "$(jq -r .root_key.state <<<"$output")" = 2 ]
	[ "$(jq -r '.keys[0].unwraps' <<<"$output")" = false ]
	# Enabled again: all good.
	emu_api POST "/api/v2/keys/$HPCS_CRK/actions/enable"
	run report
	[ "$status" -eq 0 ]
}

@test "report: a key enrolled after the last initramfs build is named (exit 1)" {
	volume data
	make_initrd
	volume late
	run report
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"FAIL    initramfs  $INITRD"*"lacks 'user/$HPCS_TAG:late' (added after the image was built): its volume asks for a passphrase at boot"* ]]
	[[ "$output" == *"remedy: dracut --force '$INITRD'"* ]]
	run report --json
	[ "$(jq -r '.initramfs[0].keys_missing | join(",")' <<<"$output")" = "user/$HPCS_TAG:late" ]
	# A _netdev volume is opened from the real root: only worth knowing.
	make_initrd
	volume later --netdev
	run report
	[ "$status" -eq 0 ]
	[[ "$output" == *"info    initramfs"*"lacks 'user/$HPCS_TAG:later'"*"_netdev and opens from the real root"* ]]
	# Removing a key afterwards leaves it in the image: drift the other way.
	make_initrd
	rm "$HPCS_KEYS/user/$HPCS_TAG:later"
	run report --json
	[ "$status" -eq 1 ]
	[ "$(jq -r '.initramfs[0].keys_removed | join(",")' <<<"$output")" = "user/$HPCS_TAG:later" ]
}

@test "report: the initramfs config differs, or the image has no hpcs-unlock (exit 1)" {
	volume data
	make_initrd
	local other
	other=$(hpcs create --crk --name "other-$HPCS_TAG" --gen)
	hpcs_write_conf "KP.default_crk_uuid=$other"
	run report --json
	[ "$status" -eq 1 ]
	[ "$(jq -r '.initramfs[0].config_matches' <<<"$output")" = false ]
	[[ "$(jq -r '.findings[] | select(.check == "initramfs") | .message' <<<"$output")" == *"differs from '$HPCS_CONF' in [KP] default_crk_uuid"* ]]
	hpcs_write_conf
	# An image without our module.
	local d=$BATS_TEST_TMPDIR/bare
	mkdir -p "$d/etc"
	echo hello >"$d/etc/motd"
	(cd "$d" && find . | cpio -o -H newc --quiet) >"$INITRD"
	run report --json
	[ "$status" -eq 1 ]
	[ "$(jq -r '.initramfs[0].module' <<<"$output")" = false ]
	[[ "$(jq -r '.findings[] | select(.check == "initramfs") | .message' <<<"$output")" == *"has no hpcs-unlock"* ]]
}

@test "report: an image with our files that others can read is named, with chmod 600 (issue 22)" {
	volume data
	make_initrd
	[ "$(stat -c %a "$INITRD")" = 600 ]
	run report
	[ "$status" -eq 0 ]
	# dracut --force over an image of initramfs-tools keeps its 0644; this one
	# carries the API key (hpcs_make_initrd writes the config --with-api-key).
	chmod 0644 "$INITRD"
	run report
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"FAIL    initramfs  $INITRD"*"is readable by group or others (mode 0644) and carries the API key itself"* ]]
	[[ "$output" == *"chmod 600 '$INITRD'"* ]]
	chmod 0640 "$INITRD"
	run report --json
	[ "$status" -eq 1 ]
	[ "$(jq -r '.findings[] | select(.check == "initramfs" and .status == "fail") | .message' <<<"$output")" = \
		"is readable by group or others (mode 0640) and carries the API key itself (initramfs_plain_api_key); a host-only image also root's password hash (dracut --force keeps the mode of the image it replaces)" ]
}

@test "report: a crafted image whose member names climb out of our directory writes nothing" {
	volume data
	local d=$BATS_TEST_TMPDIR/crafted tmp=$BATS_TEST_TMPDIR/tmp up
	local t1=$BATS_TEST_TMPDIR/pwned-1 t2=$BATS_TEST_TMPDIR/pwned-2 n1 n2
	mkdir -p "$d/usr/sbin" "$d/etc" "$d/var/lib/hpcs-for-luks" "$tmp"
	printf '#!/bin/sh\nexit 0\n' >"$d/usr/sbin/hpcs-unlock"
	_hpcs_initrd_config "$HPCS_CONF" "$d/etc/hpcs-for-luks.ini" ""
	cp -a "$HPCS_KEYS/logon" "$HPCS_KEYS/user" "$d/var/lib/hpcs-for-luks/"
	# cpio honours "..", and the "var/lib/hpcs-for-luks/*" pattern matches
	# across "/": out of any unpack directory and to an absolute path. The
	# archive is made while the targets exist (cpio reads them by those names).
	up=$(printf '../%.0s' {1..16})
	n1=var/lib/hpcs-for-luks/user/$up${t1#/}
	n2=var/lib/hpcs-for-luks/$up${t2#/}
	echo pwned >"$t1"
	echo pwned >"$t2"
	(cd "$d" && { find . && printf '%s\n' "$n1" "$n2"; } | cpio -o -H newc --quiet) >"$INITRD"
	rm "$t1" "$t2"
	TMPDIR=$tmp run report --json
	echo "$output"
	[ ! -e "$t1" ]
	[ ! -e "$t2" ]
	[ "$status" -eq 1 ]
	local msg
	msg=$(jq -r '.findings[] | select(.check == "initramfs" and .status == "warn") | .message' <<<"$output")
	[[ "$msg" == *"'$n1'"* ]]
	[[ "$msg" == *"'$n2'"* ]]
	[[ "$msg" == *"not read: outside var/lib/hpcs-for-luks/{logon,user}/<name>"* ]]
	# The members it does read are still compared: the config and the key match.
	[ "$(jq -r '.initramfs[0].config_matches' <<<"$output")" = true ]
	[ "$(jq -r '.initramfs[0].keys_missing + .initramfs[0].keys_differ | length' <<<"$output")" = 0 ]
	# The refused members are the problem: the image is not called fine.
	[ "$(jq '[.findings[] | select(.check == "initramfs" and .status == "ok")] | length' <<<"$output")" = 0 ]
	# Nothing unpacked anywhere, and no temporary directory left behind.
	run find "$tmp" -mindepth 1
	[ "$output" = "" ]
	run find "$BATS_TEST_TMPDIR" -name 'pwned-*'
	[ "$output" = "" ]
}

@test "report: a key slot that no longer opens with the key is named with the remedy (exit 1)" {
	volume data
	make_initrd
	local img=$BATS_TEST_TMPDIR/data.img
	# The enrolled slot 1 wiped: the token is left naming no slot.
	cryptsetup luksKillSlot --batch-mode "$img" 1
	run report
	[ "$status" -eq 1 ]
	[[ "$output" == *"FAIL    volume     user/$HPCS_TAG:data"*"(crypttab 'data'): token 0 names no key slot"* ]]
	# Slot 1 holds another passphrase now, and the token names it again.
	printf 'something else' >"$BATS_TEST_TMPDIR/other"
	cryptsetup luksAddKey --batch-mode --new-key-slot 1 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$OLD" "$img" "$BATS_TEST_TMPDIR/other"
	cryptsetup token remove --token-id 0 "$img"
	cryptsetup token add --token-id 0 --key-slot 1 --key-description "$HPCS_TAG:data" "$img"
	run report
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"FAIL    volume     user/$HPCS_TAG:data"*"key slot 1 of '$img' (crypttab 'data') does not open with this key"* ]]
	[[ "$output" == *"remedy: enrol again: hpcs-enroll --remove '$img' data; hpcs-enroll '$img' data"* ]]
	run report --json
	[ "$(jq -r '.keys[0].volumes[0].opens' <<<"$output")" = false ]
}

@test "report: a token for a key that has no wrapped file, and a crypttab device that is missing" {
	volume data
	make_initrd
	echo "gone /nonexistent/disk.img none luks" >>"$CT"
	rm "$HPCS_KEYS/user/$HPCS_TAG:data"
	make_initrd
	run report
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"WARN    volume"*"has a luks2-keyring token for '$HPCS_TAG:data' but there is no wrapped key"* ]]
	[[ "$output" == *"WARN    volume"*"'gone': '/nonexistent/disk.img': No such file or directory"* ]]
}

@test "report: argon2 memory of the volumes opened at boot is summed (token slots only when ours)" {
	volume data
	make_initrd
	# A volume with only an argon2 passphrase slot (64 MiB), and one that is noauto.
	truncate -s 20M "$BATS_TEST_TMPDIR/a.img" "$BATS_TEST_TMPDIR/n.img"
	local img
	for img in a n; do
		cryptsetup luksFormat --type luks2 --batch-mode --pbkdf argon2id --pbkdf-memory 65536 \
			--pbkdf-force-iterations 4 --key-file "$OLD" "$BATS_TEST_TMPDIR/$img.img"
	done
	echo "a $BATS_TEST_TMPDIR/a.img none luks" >>"$CT"
	echo "n $BATS_TEST_TMPDIR/n.img none luks,noauto" >>"$CT"
	run report --json
	[ "$status" -eq 0 ]
	# data: its token's PBKDF2 slot (0); a: 64 MiB; n: not opened at boot.
	[ "$(jq -r '.memory.argon2_kib' <<<"$output")" = 65536 ]
	[ "$(jq -r '[.memory.volumes[] | "\(.name)=\(.kib)"] | join(",")' <<<"$output")" = "data=0,a=65536" ]
	[ "$(jq -r '.memory.ram_kib' <<<"$output")" = "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" ]
}

@test "report: an unreadable config is exit 2; a config without a root key is named" {
	run hpcs --config "$BATS_TEST_TMPDIR/nope.ini" report
	[ "$status" -eq 2 ]
	hpcs_write_conf -KP.default_crk_uuid
	run report
	[ "$status" -eq 1 ]
	[[ "$output" == *"no root key: [KP] default_crk_uuid is empty"* ]]
}

@test "rewrap --to-crk: every key moves, the old root key can be deleted, every volume still opens" {
	volume data
	volume logs --netdev
	local old=$HPCS_CRK new sum_data sum_logs
	sum_data=$(unwrapped_sum "$HPCS_KEYS/user/$HPCS_TAG:data")
	sum_logs=$(unwrapped_sum "$HPCS_KEYS/user/$HPCS_TAG:logs")
	new=$(hpcs create --crk --name "new-$HPCS_TAG" --gen)
	run hpcs rewrap --to-crk "$new"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Moved 2 keys from root key '$old' to '$new'"* ]]
	[[ "$output" == *"dracut --force"* ]]
	grep -qx "default_crk_uuid = $new" "$HPCS_CONF"
	[ "$(stat -c %a "$HPCS_CONF")" = 600 ]
	[ "$(unwrapped_sum "$HPCS_KEYS/user/$HPCS_TAG:data")" = "$sum_data" ]
	[ "$(unwrapped_sum "$HPCS_KEYS/user/$HPCS_TAG:logs")" = "$sum_logs" ]
	# No staging file is left behind.
	[ -z "$(find "$HPCS_KEYS" "$BATS_TEST_TMPDIR" -maxdepth 2 -name '.*.staged')" ]

	run hpcs delete --uuid "$old"
	[ "$status" -eq 0 ]
	run hpcs process
	[ "$status" -eq 0 ]
	local img
	for img in data logs; do
		run keyctl session - bash -c "keyctl link @u @s && cryptsetup open --test-passphrase --token-only '$BATS_TEST_TMPDIR/$img.img'"
		echo "$output"
		[ "$status" -eq 0 ]
	done
	make_initrd
	run report
	[ "$status" -eq 0 ]
}

@test "rewrap --to-crk is all or nothing: one key that cannot move changes no file and not the config" {
	volume data
	volume logs
	echo "not-a-ciphertext" >"$HPCS_KEYS/user/$HPCS_TAG:logs"
	local new state_before
	new=$(hpcs create --crk --name "new-$HPCS_TAG" --gen)
	state_before=$(cat "$HPCS_CONF" "$HPCS_KEYS"/user/* | sha256sum)
	run hpcs rewrap --to-crk "$new"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"1 of 2 keys cannot be moved to root key '$new'; nothing was changed"* ]]
	[ "$(cat "$HPCS_CONF" "$HPCS_KEYS"/user/* | sha256sum)" = "$state_before" ]
	[ -z "$(find "$HPCS_KEYS" "$BATS_TEST_TMPDIR" -maxdepth 2 -name '.*.staged')" ]
	run hpcs rewrap --to-crk "$HPCS_CRK"
	[ "$status" -eq 2 ]
	run hpcs rewrap --to-config "$HPCS_CONF"
	[ "$status" -eq 2 ]
}

@test "rewrap --to-crk after a crash between its renames: the same command again finishes the move" {
	volume data
	volume logs
	local new sum_data sum_logs saved=$BATS_TEST_TMPDIR/saved
	local data=$HPCS_KEYS/user/$HPCS_TAG:data logs=$HPCS_KEYS/user/$HPCS_TAG:logs
	local confdir conf
	confdir=$(cd "$(dirname "$HPCS_CONF")" && pwd)
	conf=$confdir/$(basename "$HPCS_CONF")
	sum_data=$(unwrapped_sum "$data")
	sum_logs=$(unwrapped_sum "$logs")
	mkdir "$saved"
	cp -p "$data" "$logs" "$conf" "$saved/"
	new=$(hpcs create --crk --name "new-$HPCS_TAG" --gen)
	run hpcs rewrap --to-crk "$new"
	[ "$status" -eq 0 ]
	# Back to where a crash after the first rename leaves it: data renamed,
	# logs and the config still staged, the old contents kept, the journal.
	mv "$logs" "$HPCS_KEYS/user/.$HPCS_TAG:logs.staged"
	cp -p "$saved/$HPCS_TAG:logs" "$logs"
	ln "$logs" "$HPCS_KEYS/user/.$HPCS_TAG:logs.old"
	cp -p "$saved/$HPCS_TAG:data" "$HPCS_KEYS/user/.$HPCS_TAG:data.old"
	mv "$conf" "$confdir/.$(basename "$conf").staged"
	cp -p "$saved/$(basename "$conf")" "$conf"
	ln "$conf" "$confdir/.$(basename "$conf").old"
	(
		umask 077
		printf 'hpcs-for-luks rewrap --to-crk journal 1\ncommit\n1 %s\n1 %s\n1 %s\n' \
			"$data" "$logs" "$conf" >"$HPCS_KEYS/.move-journal"
	)
	grep -qx "default_crk_uuid = $HPCS_CRK" "$conf"
	run hpcs rewrap --to-crk "$new"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Finished an interrupted rewrap --to-crk"* ]]
	grep -qx "default_crk_uuid = $new" "$conf"
	[ "$(unwrapped_sum "$data")" = "$sum_data" ]
	[ "$(unwrapped_sum "$logs")" = "$sum_logs" ]
	[ -z "$(find "$HPCS_KEYS" "$confdir" -maxdepth 2 -name '.*.staged' -o -name '.*.old' -o -name .move-journal)" ]
	# Done: the same command once more is the usual refusal.
	run hpcs rewrap --to-crk "$new"
	[ "$status" -eq 2 ]
}

@test "rewrap --to-crk checks the round trip: a new wrapping that unwraps to other bytes changes nothing" {
	volume data
	local new before
	new=$(hpcs create --crk --name "new-$HPCS_TAG" --gen)
	before=$(cat "$HPCS_CONF" "$HPCS_KEYS"/user/* | sha256sum)
	# The unwrap with the old root key is served as it is; the check of the new wrapping is not.
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"pass","count":1},
		{"op":"unwrap","action":"wrong_plaintext"}]}' >/dev/null
	run hpcs rewrap --to-crk "$new"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the new wrapping of '$HPCS_KEYS/user/$HPCS_TAG:data' unwraps to other bytes"* ]]
	[[ "$output" == *"nothing was changed"* ]]
	[ "$(cat "$HPCS_CONF" "$HPCS_KEYS"/user/* | sha256sum)" = "$before" ]
}

@test "rewrap --to-crk --to-config: the keys move to another instance, and the config follows it" {
	volume data
	local sum
	sum=$(unwrapped_sum "$HPCS_KEYS/user/$HPCS_TAG:data")
	# A second emulator: another instance with its own API key and root key.
	local dir2=$BATS_TEST_TMPDIR/emu2
	mkdir -p "$dir2"
	"$EMU_BIN" --state-dir "$dir2" --port-file "$dir2/port" --api-key other-api-key-42 \
		--instance-id 99999999-8888-7777-6666-555555555555 >"$dir2/log" 2>&1 3>&- &
	EMU2_PID=$!
	_wait_port_file "$dir2/port" "$EMU2_PID"
	local conf2=$BATS_TEST_TMPDIR/other.ini url2 crk2
	url2=https://localhost:$(<"$dir2/port")
	HPCS_CONF=$conf2 EMU_URL=$url2 EMU_CA=$dir2/ca.pem EMU_API_KEY=other-api-key-42 \
		EMU_INSTANCE=99999999-8888-7777-6666-555555555555 HPCS_CRK="" hpcs_write_conf
	crk2=$("$HPCS_BIN_DIR/hpcs-for-luks" --config "$conf2" create --crk --name other-root --gen)
	# A config others may read (as one with api_key = TPM may be): the
	# target's literal API key comes into it, so it is written 0600.
	chmod 0644 "$HPCS_CONF"
	run hpcs rewrap --to-crk "$crk2" --to-config "$conf2"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$HPCS_CONF")" = 600 ]
	[[ "$output" == *"'$HPCS_CONF' now holds a literal API key: it was written mode 0600"* ]]
	grep -qx "endpoint_url = $url2" "$HPCS_CONF"
	grep -qx "api_key = other-api-key-42" "$HPCS_CONF"
	grep -qx "default_crk_uuid = $crk2" "$HPCS_CONF"
	grep -qx "key_dir = $HPCS_KEYS" "$HPCS_CONF"
	[ "$(unwrapped_sum "$HPCS_KEYS/user/$HPCS_TAG:data")" = "$sum" ]
	# The first instance is no longer needed.
	emulator_stop
	run hpcs process
	[ "$status" -eq 0 ]
	run keyctl session - bash -c "keyctl link @u @s && cryptsetup open --test-passphrase --token-only '$BATS_TEST_TMPDIR/data.img'"
	[ "$status" -eq 0 ]
}

@test "after a rotation, process stores the newer wrapping; update_wrapped_keys = no keeps the file" {
	volume data
	local f=$HPCS_KEYS/user/$HPCS_TAG:data before sum
	before=$(cat "$f")
	sum=$(unwrapped_sum "$f")
	hpcs_rotate
	hpcs_write_conf HFL.update_wrapped_keys=no
	run hpcs process
	[ "$status" -eq 0 ]
	[ "$(cat "$f")" = "$before" ]
	hpcs_write_conf
	emu_ctl POST reset-stats >/dev/null
	run hpcs process
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"stored the newer wrapping of 'user/$HPCS_TAG:data' (the root key was rotated)"* ]]
	[ "$(cat "$f")" != "$before" ]
	[ "$(stat -c %a "$f")" = 600 ]
	# The unwrap, and the check that the newer wrapping unwraps to the same bytes.
	[ "$(emu_stat by_op.unwrap)" = 2 ]
	[ "$(unwrapped_sum "$f")" = "$sum" ]
	run hpcs report --crypttab "$CT" --json --initramfs /dev/null
	[ "$(jq -r '.keys[0].current' <<<"$output")" = true ]
	# Nothing more to store: the next process only unwraps.
	emu_ctl POST reset-stats >/dev/null
	run hpcs process
	[[ "$output" != *"stored the newer wrapping"* ]]
	[ "$(emu_stat by_op.unwrap)" = 1 ]
}

@test "a newer wrapping that unwraps to other bytes is not stored" {
	volume data
	local f=$HPCS_KEYS/user/$HPCS_TAG:data before
	before=$(cat "$f")
	hpcs_rotate
	# The first unwrap is served as it is; the check of the newer wrapping gets other bytes.
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"pass","count":1},
		{"op":"unwrap","action":"wrong_plaintext"}]}' >/dev/null
	run hpcs process
	echo "$output"
	[[ "$output" == *"kept the older wrapping of 'user/$HPCS_TAG:data'"* ]]
	[ "$(cat "$f")" = "$before" ]
}

@test "the real root's hpcs-unlock stores the newer wrapping too" {
	volume data
	local f=$HPCS_KEYS/user/$HPCS_TAG:data before
	before=$(cat "$f")
	hpcs_rotate
	: >"$BATS_TEST_TMPDIR/cmdline"
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$HPCS_CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"stored the newer wrapping of 'user/$HPCS_TAG:data'"* ]]
	[ "$(cat "$f")" != "$before" ]
}

# --- one writer at a time in the key directory (issue 22) ---------------------

@test "rewrap waits for another writer of the key directory, and gives up after 10 s naming it" {
	volume data
	local f=$HPCS_KEYS/user/$HPCS_TAG:data before start new
	hpcs_rotate
	before=$(cat "$f")
	lock_hold "$HPCS_KEYS/.lock" hpcs-enroll
	run hpcs rewrap
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Failed to lock the key directory '$HPCS_KEYS': '$HPCS_KEYS/.lock' is held by another writer of the key directory (pid $LOCK_PID, hpcs-enroll); waited 10 s; try again once it is done"* ]]
	[ "$(cat "$f")" = "$before" ]
	# The other writer is done while it waits: it goes on.
	(sleep 1.5 && kill "$LOCK_PID") 3>&- &
	start=$(date +%s%N)
	run hpcs rewrap
	[ "$status" -eq 0 ]
	[ $((($(date +%s%N) - start) / 1000000)) -ge 1400 ]
	lock_release
	[ "$(cat "$f")" != "$before" ]
	# --to-crk takes the same lock before it looks at its journal.
	new=$(hpcs create --crk --name "new-$HPCS_TAG" --gen)
	lock_hold "$HPCS_KEYS/.lock"
	(sleep 1.5 && kill "$LOCK_PID") 3>&- &
	start=$(date +%s%N)
	run hpcs rewrap --to-crk "$new"
	[ "$status" -eq 0 ]
	[ $((($(date +%s%N) - start) / 1000000)) -ge 1400 ]
	grep -qx "default_crk_uuid = $new" "$HPCS_CONF"
}

@test "the real root's hpcs-unlock never waits for another writer: it keeps the older wrapping, and says so" {
	volume data
	local f=$HPCS_KEYS/user/$HPCS_TAG:data before start
	before=$(cat "$f")
	hpcs_rotate
	: >"$BATS_TEST_TMPDIR/cmdline"
	lock_hold "$HPCS_KEYS/.lock"
	start=$(date +%s%N)
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$HPCS_CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline"
	echo "$output"
	[ "$status" -eq 0 ]
	[ $((($(date +%s%N) - start) / 1000000)) -lt 5000 ]
	[[ "$output" == *"kept the older wrapping of 'user/$HPCS_TAG:data': '$HPCS_KEYS/.lock' is held by another writer of the key directory (pid $LOCK_PID, test-writer); the newer wrapping is stored by a later run"* ]]
	[ "$(cat "$f")" = "$before" ]
	lock_release
	hpcs_keyring_clean "$HPCS_TAG" >/dev/null
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$HPCS_CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline"
	[[ "$output" == *"stored the newer wrapping of 'user/$HPCS_TAG:data'"* ]]
	[ "$(cat "$f")" != "$before" ]
}
