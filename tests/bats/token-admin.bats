#!/usr/bin/env bats
# Day two with hpcs LUKS2 tokens (issue 25, item 3), against the Key Protect
# emulator and real LUKS2 image files (no device-mapper needed): `hpcs-enroll
# --token` and `--remove`, `hpcs-for-luks token make|open`, `luks` listing the
# token, `report` checking it (unwraps bound to the volume's UUID, key
# version, key slots), `rewrap` after a rotation and `rewrap --to-crk`.
#
# Needs root, cryptsetup, jq, lsinitrd (dracut-core) and cpio.

load helpers
bats_require_minimum_version 1.5.0

TOP=$(cd "$(dirname "$BATS_TEST_FILENAME")/../.." && pwd)
ENROLL=$TOP/crypttab-helpers/hpcs-enroll

setup() {
	local c
	for c in cryptsetup jq lsinitrd cpio; do
		command -v "$c" >/dev/null || skip "needs $c (cryptsetup-bin, jq, dracut-core, cpio)"
	done
	[ -x "$HPCS_BIN_DIR/hpcs-for-luks" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	hpcs_setup
	export PATH="$HPCS_BIN_DIR:$PATH"
	# With the hpcs token plugin installed, cryptsetup token import asks it
	# to validate the token, and it asks the helper.
	export HPCS_TOKEN_HELPER=$HPCS_BIN_DIR/hpcs-unlock
	EMU_TOKEN=$(emu_token)
	OLD=$BATS_TEST_TMPDIR/old-pass
	CT=$BATS_TEST_TMPDIR/crypttab
	INITRD=$BATS_TEST_TMPDIR/initrd.img
	IMG=$BATS_TEST_TMPDIR/data.img
	DESC=$HPCS_TAG:data
	printf 'old passphrase' >"$OLD"
	: >"$CT"
	truncate -s 20M "$IMG"
	cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 \
		--pbkdf-force-iterations 1000 --key-file "$OLD" "$IMG"
	UUID=$(cryptsetup luksUUID "$IMG")
}

teardown() {
	hpcs_teardown
}

enroll() {
	"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --no-enable "$@"
}

# enroll_token: IMG enrolled with --token as 'data'; its crypttab line names
# the image file (the by-uuid link of a real disk does not exist for a file).
enroll_token() {
	enroll --token --key-file "$OLD" --name "$DESC" "$IMG" data >/dev/null
	sed -i "s|UUID=$UUID|$IMG|" "$CT"
}

report() {
	hpcs_make_initrd "$INITRD"
	hpcs report --crypttab "$CT" --initramfs "$INITRD" "$@"
}

# opens SLOT [IMAGE]: the key slot opens with what `token open` gives.
opens() {
	hpcs token open --device "${2:-$IMG}" | cryptsetup open --test-passphrase --key-slot "$1" --key-file - "${2:-$IMG}"
}

token_json() { cryptsetup token export --token-id "${1:-0}" "${2:-$IMG}"; }

# Key slots and tokens in use, space-separated.
slots() { cryptsetup luksDump --dump-json-metadata "$IMG" | jq -r '.keyslots | keys | join(" ")'; }
tokens() { cryptsetup luksDump --dump-json-metadata "$IMG" | jq -r '.tokens | keys | join(" ")'; }

# Everything an enrolment can touch, for "nothing changed" checks.
state() {
	cryptsetup luksDump "$IMG" | grep -v '^Epoch:' | md5sum
	ls -A "$HPCS_KEYS/user"
	md5sum <"$CT"
}

@test "enroll --token: a new key slot and an hpcs token bound to it, no key file, the crypttab line; token open opens the slot" {
	run enroll --token --key-file "$OLD" --name "$DESC" "$IMG" data
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"key slot 1, hpcs token 0 named '$DESC'"* ]]
	[[ "$output" != *"dracut"* ]]
	[ "$(slots)" = "0 1" ]
	[ "$(tokens)" = 0 ]
	[ -z "$(ls -A "$HPCS_KEYS/user")" ]
	[ "$(cat "$CT")" = "data UUID=$UUID none luks" ]
	run token_json
	[ "$status" -eq 0 ]
	jq -e --arg crk "$HPCS_CRK" --arg inst "$EMU_INSTANCE" --arg name "$DESC" --arg kms "$EMU_URL" '
		.type == "hpcs" and .keyslots == ["1"] and .version == 1 and .crk == $crk and
		.instance == $inst and .kms == $kms and .bound_to == "luks2-uuid" and .name == $name and
		(.key_version | length > 0) and (.ciphertext | length > 0)' <<<"$output"
	# `luks` lists it, in lines and in JSON.
	run hpcs luks --device "$IMG"
	[ "$status" -eq 0 ]
	grep -qxF "token 0 hpcs 1 $HPCS_CRK $EMU_INSTANCE $DESC" <<<"$output"
	run hpcs luks --device "$IMG" --json
	jq -e --arg crk "$HPCS_CRK" --arg name "$DESC" \
		'.tokens[0] | .type == "hpcs" and .keyslots == [1] and .crk == $crk and .name == $name' <<<"$output"
	# The slot opens with the token's passphrase: 44 characters of base64.
	run opens 1
	[ "$status" -eq 0 ]
	[ "$(hpcs token open --device "$IMG" | wc -c)" -eq 44 ]
	[ "$(hpcs token open --device "$IMG" --token-id 0 | wc -c)" -eq 44 ]
	# Not onto a terminal; no such token.
	run script -qec "$HPCS_BIN_DIR/hpcs-for-luks --config '$HPCS_CONF' token open --device '$IMG'" /dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"which is a terminal"* ]]
	run hpcs token open --device "$IMG" --token-id 3
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$IMG' has no hpcs token 3"* ]]
	# Enrolling it again as the same name is refused.
	run enroll --token --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"already has an hpcs token (0) named '$DESC'"* ]]
}

@test "token make: the passphrase on stdin as it is (no newline), the checked token JSON on stdout; usage errors" {
	run --separate-stderr hpcs token make --luks-uuid "$UUID" --keyslot 3 --name x <<<"with a newline"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"no newline or NUL"* ]]
	run --separate-stderr bash -c 'printf %s "a passphrase" | "$@"' _ \
		"$HPCS_BIN_DIR/hpcs-for-luks" --config "$HPCS_CONF" token make --luks-uuid "${UUID^^}" --keyslot 3
	[ "$status" -eq 0 ]
	jq -e '.keyslots == ["3"] and ((has("name") | not) or .name == "")' <<<"$output"
	run hpcs token make --keyslot 3 </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"token make: --luks-uuid UUID is required"* ]]
	run hpcs token make --luks-uuid "$UUID" --keyslot 32 </dev/null
	[ "$status" -eq 2 ]
	run hpcs token make --luks-uuid not-a-uuid --keyslot 1 </dev/null
	[ "$status" -eq 2 ]
	run hpcs token
	[ "$status" -eq 2 ]
	[[ "$output" == *"token: give make|open"* ]]
}

@test "report: the token unwraps with the newest key version and opens its slot; after a rotation it warns, and rewrap moves it" {
	enroll_token
	run report
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"hpcs token 0 of '$IMG' (crypttab 'data') opens key slot 1 (root key '$HPCS_CRK'"* ]]
	# A volume with only a token is not "nothing unlocked".
	[[ "$output" != *"nothing is unlocked at boot"* ]]
	run report --json
	[ "$status" -eq 0 ]
	jq -e --arg img "$IMG" --arg crk "$HPCS_CRK" '.status == "ok" and (.tokens | length == 1) and
		(.tokens[0] | .device == $img and .name == "data" and .token_id == 0 and .keyslots == [1]
			and .crk == $crk and .unwraps and .current and .opens)' <<<"$output"
	local before
	before=$(token_json)

	hpcs_rotate
	run report
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"WARN    token"*"hpcs token 0 of '$IMG' (crypttab 'data') is wrapped with an older key version"* ]]
	[[ "$output" == *"remedy: hpcs-for-luks rewrap"* ]]
	run report --json
	[ "$(jq -r '.tokens[0].current' <<<"$output")" = false ]

	run hpcs rewrap --crypttab "$CT"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Rewrapped hpcs token 0 of '$IMG': key version "*" -> "* ]]
	[[ "$output" == *"1 of 1 hpcs tokens rewrapped, 0 already current, 0 failed"* ]]
	[ "$(token_json | jq -r .ciphertext)" != "$(jq -r .ciphertext <<<"$before")" ]
	[ "$(token_json | jq -r .key_version)" != "$(jq -r .key_version <<<"$before")" ]
	run opens 1
	[ "$status" -eq 0 ]
	run report
	[ "$status" -eq 0 ]
	# Again: nothing to do.
	run hpcs rewrap --crypttab "$CT"
	[ "$status" -eq 0 ]
	[[ "$output" == *"hpcs token 0 of '$IMG' is already wrapped with the newest key version"* ]]
}

@test "rewrap: a token whose replacement fails is left as it was (exit 1, named)" {
	enroll_token
	hpcs_rotate
	local before
	before=$(token_json)
	fake_tool cryptsetup 'for a; do [ "$a" != --token-replace ] || { echo "no space" >&2; exit 1; }; done
exec "$REAL" "$@"'
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" "$HPCS_BIN_DIR/hpcs-for-luks" --config "$HPCS_CONF" rewrap --crypttab "$CT"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Failed to replace hpcs token 0 of '$IMG' (the old one is as it was)"* ]]
	[ "$(token_json)" = "$before" ]
	run opens 1
	[ "$status" -eq 0 ]
}

@test "rewrap --to-crk moves the token (with --device too); the old root key can be deleted; the slot still opens" {
	enroll_token
	local old=$HPCS_CRK new
	new=$(hpcs create --crk --name "new-$HPCS_TAG" --gen)
	# Not in the crypttab: given with --device.
	: >"$CT"
	run hpcs rewrap --to-crk "$new" --crypttab "$CT" --device "$IMG"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Moved hpcs token 0 of '$IMG' to root key '$new'"* ]]
	grep -qx "default_crk_uuid = $new" "$HPCS_CONF"
	[ "$(token_json | jq -r .crk)" = "$new" ]
	run hpcs delete --uuid "$old"
	[ "$status" -eq 0 ]
	run opens 1
	[ "$status" -eq 0 ]
	run hpcs report --crypttab "$CT" --device "$IMG" --json
	jq -e '.tokens[0] | .unwraps and .current and .opens' <<<"$output"
}

@test "a header copied to a volume with another UUID does not unwrap there (AAD), and report says so" {
	enroll_token
	local copy=$BATS_TEST_TMPDIR/copy.img other
	cp "$IMG" "$copy"
	other=$(cat /proc/sys/kernel/random/uuid)
	cryptsetup luksUUID --batch-mode --uuid "$other" "$copy"
	# The same token, the same ciphertext...
	[ "$(token_json 0 "$copy")" = "$(token_json)" ]
	run hpcs token open --device "$copy"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"hpcs token 0 of '$copy' (LUKS UUID $other"* ]]
	run hpcs report --crypttab "$CT" --device "$copy"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"FAIL    token"*"hpcs token 0 of '$copy' does not unwrap with the volume's LUKS UUID $other as AAD"* ]]
	run hpcs report --crypttab "$CT" --device "$copy" --json
	jq -e --arg copy "$copy" '(.tokens[] | select(.device == $copy) | .unwraps == false)
		and (.tokens[] | select(.name == "data") | .unwraps)' <<<"$output"
	# ...and the original still opens.
	run opens 1
	[ "$status" -eq 0 ]
}

@test "--remove takes the hpcs token, its key slot and the crypttab line away" {
	run enroll --token --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 0 ]
	run enroll --remove --name "$DESC" "$IMG" data
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"removed hpcs token 0 and key slot 1"* ]]
	[[ "$output" != *"dracut"* ]]
	[ "$(slots)" = 0 ]
	[ -z "$(tokens)" ]
	[ ! -s "$CT" ]
	run enroll --remove --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"nothing to remove"* ]]
}

# token_enrolment_undone: enroll --token with the tools of
# $BATS_TEST_TMPDIR/bin first in PATH fails (exit 1), says so, and leaves
# no slot, token or crypttab line behind.
token_enrolment_undone() {
	local before
	before=$(state)
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --no-enable --token --key-file "$OLD" --name "$DESC" "$IMG" data
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"was not enrolled; nothing was changed"* ]]
	[ -z "$(tokens)" ]
	[ "$(slots)" = 0 ]
	[ "$(state)" = "$before" ]
}

@test "enroll --token rolls back a failing step: the token import, the check of the slot" {
	fake_tool cryptsetup '[ "$1 $2" != "token import" ] || { echo "import refused" >&2; exit 1; }
exec "$REAL" "$@"'
	token_enrolment_undone
	[[ "$output" == *"adding the hpcs token to '$IMG' failed"* ]]
	# The slot does not open with what the token gives (played by a
	# cryptsetup that refuses the passphrase on its stdin).
	fake_tool cryptsetup '[ "$1 $2 $5 $6" != "open --test-passphrase --key-file -" ] || { cat >/dev/null; exit 2; }
exec "$REAL" "$@"'
	token_enrolment_undone
	[[ "$output" == *"key slot 1 of '$IMG' does not open with what hpcs token 0 gives"* ]]
	# The wrapping does not unwrap to the passphrase (token make checks it):
	# refused before the header is touched.
	rm -rf "$BATS_TEST_TMPDIR/bin"
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"wrong_plaintext","count":1}]}' >/dev/null
	token_enrolment_undone
	[[ "$output" == *"wrapping the passphrase for '$IMG' failed"* ]]
}

@test "enroll --token: an interrupt just after the token import removes that token (found by hpcs-for-luks luks) and the slot" {
	fake_tool cryptsetup '"$REAL" "$@"; rc=$?
[ "$1 $2" != "token import" ] || kill -TERM "$PPID"
exit $rc'
	token_enrolment_undone
}
