#!/usr/bin/env bats
# crypttab-helpers/hpcs-enroll on LUKS2 image files, against the Key Protect
# emulator. No device-mapper is needed: key slots and tokens work on a plain
# file, and `cryptsetup open --test-passphrase` checks a key without opening.

load helpers
bats_require_minimum_version 1.5.0

ENROLL=$(cd "$(dirname "$BATS_TEST_FILENAME")/../.." && pwd)/crypttab-helpers/hpcs-enroll

setup() {
	command -v cryptsetup >/dev/null || skip "cryptsetup (cryptsetup-bin) is not installed"
	command -v keyctl >/dev/null || skip "keyctl (keyutils) is not installed"
	[ -x "$HPCS_BIN_DIR/hpcs-for-luks" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	hpcs_setup
	export PATH="$HPCS_BIN_DIR:$PATH"
	IMG=$BATS_TEST_TMPDIR/disk.img
	OLD=$BATS_TEST_TMPDIR/old-pass
	CT=$BATS_TEST_TMPDIR/crypttab
	printf 'old passphrase' >"$OLD"
	truncate -s 20M "$IMG"
	cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 \
		--pbkdf-force-iterations 1000 --key-file "$OLD" "$IMG"
	UUID=$(cryptsetup luksUUID "$IMG")
	DESC=$HPCS_TAG:data
}

teardown() {
	lock_release
	hpcs_teardown
}

enroll() {
	"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --no-enable "$@"
}

# Key slot and token numbers in use, space-separated.
slots() { cryptsetup luksDump "$IMG" | awk '/^[^ \t]/ { s = ($1 == "Keyslots:") } s && /^  [0-9]+: / { printf "%s ", $1 }'; }
tokens() { cryptsetup luksDump "$IMG" | awk '/^[^ \t]/ { s = ($1 == "Tokens:") } s && /^  [0-9]+: / { printf "%s ", $1 }'; }

# Everything an enrolment can touch, for "nothing changed" checks.
state() {
	# (the metadata's Epoch counts every change, also those undone)
	cryptsetup luksDump "$IMG" | grep -v '^Epoch:' | md5sum
	ls -A "$HPCS_KEYS/user"
	if [ -e "$CT" ]; then md5sum <"$CT"; else echo "no crypttab"; fi
}

# --- usage -------------------------------------------------------------------

@test "usage errors exit 2; --help exits 0" {
	run "$ENROLL"
	[ "$status" -eq 2 ]
	[[ "$output" == *"missing DEVICE"* ]]
	run "$ENROLL" --frobnicate "$IMG"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '--frobnicate'"* ]]
	run "$ENROLL" "$IMG" data extra
	[ "$status" -eq 2 ]
	run "$ENROLL" --name "a/b" "$IMG"
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid key description 'a/b'"* ]]
	run "$ENROLL" "$IMG" "bad name"
	[ "$status" -eq 2 ]
	run "$ENROLL" --crypttab
	[ "$status" -eq 2 ]
	[[ "$output" == *"--crypttab needs a value"* ]]
	run "$ENROLL" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"Usage: hpcs-enroll"* ]]
}

@test "refuses what is not LUKS2, naming the device" {
	head -c 1M /dev/zero >"$BATS_TEST_TMPDIR/plain.img"
	run enroll "$BATS_TEST_TMPDIR/plain.img" data
	[ "$status" -eq 1 ]
	[ "$output" = "hpcs-enroll: '$BATS_TEST_TMPDIR/plain.img' is not a LUKS2 volume" ]
	truncate -s 20M "$BATS_TEST_TMPDIR/luks1.img"
	cryptsetup luksFormat --type luks1 --batch-mode --pbkdf-force-iterations 1000 \
		--key-file "$OLD" "$BATS_TEST_TMPDIR/luks1.img"
	run enroll "$BATS_TEST_TMPDIR/luks1.img" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$BATS_TEST_TMPDIR/luks1.img' is LUKS1"* ]]
	run enroll "$BATS_TEST_TMPDIR/nothing" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$BATS_TEST_TMPDIR/nothing': no such device"* ]]
	[ ! -e "$CT" ]
}

# --- enrolment ---------------------------------------------------------------

@test "enrols: the wrapped key opens the new slot, the token names it, one crypttab line" {
	run --separate-stderr enroll --key-file "$OLD" --name "$DESC" --netdev "$IMG" data
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	printed=$output$stderr
	[[ "$output" == *"key slot 1, luks2-keyring token 0 for the user key '$DESC'"* ]]
	# The wrapped key: one line, mode 0600, and no temporary file left beside it.
	f=$HPCS_KEYS/user/$DESC
	[ "$(stat -c %a "$f")" = 600 ]
	[ "$(wc -l <"$f")" -eq 1 ]
	[ "$(ls -A "$HPCS_KEYS/user")" = "$DESC" ]
	# It unwraps to a 44-character passphrase that opens key slot 1 (and only the
	# new slot: the old passphrase still opens slot 0).
	hpcs unwrap <"$f" >"$BATS_TEST_TMPDIR/pass"
	[ "$(wc -c <"$BATS_TEST_TMPDIR/pass")" -eq 44 ]
	cryptsetup open --test-passphrase --key-slot 1 --key-file "$BATS_TEST_TMPDIR/pass" "$IMG"
	cryptsetup open --test-passphrase --key-slot 0 --key-file "$OLD" "$IMG"
	run ! cryptsetup open --test-passphrase --key-slot 0 --key-file "$BATS_TEST_TMPDIR/pass" "$IMG"
	# The passphrase is nowhere in what the script printed.
	refute_secrets "$printed" "$(cat "$BATS_TEST_TMPDIR/pass")"
	# Exactly one token: luks2-keyring, bound to slot 1, for DESC.
	[ "$(tokens)" = "0: " ]
	run cryptsetup token export --token-id 0 "$IMG"
	[ "$status" -eq 0 ]
	[ "$(jq -c . <<<"$output")" = "{\"type\":\"luks2-keyring\",\"keyslots\":[\"1\"],\"key_description\":\"$DESC\"}" ]
	# The crypttab line.
	[ "$(cat "$CT")" = "data UUID=$UUID none luks,_netdev" ]
	[ "$(stat -c %a "$CT")" = 644 ]
}

@test "after process, the token opens the volume from the keyring, as systemd-cryptsetup does" {
	enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	hpcs process
	[ -n "$(key_bytes "$DESC")" ]
	# systemd-cryptsetup@ runs with KeyringMode=shared (@u linked into a fresh
	# session keyring) and calls crypt_activate_by_token_pin(CRYPT_ANY_TOKEN),
	# which is what `cryptsetup open --token-only` calls.
	run keyctl session - bash -c "keyctl link @u @s && cryptsetup open --test-passphrase --token-only -v '$IMG'"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Key slot 1 unlocked."* ]]
	# Without the key in reach (a private session, KeyringMode=private) it does not.
	run keyctl session - cryptsetup open --test-passphrase --token-only "$IMG"
	[ "$status" -ne 0 ]
}

@test "without --netdev the line has no _netdev; --options are appended; the name defaults" {
	enroll --key-file "$OLD" --name "$DESC" --options nofail,discard "$IMG"
	[ "$(cat "$CT")" = "luks-$UUID UUID=$UUID none luks,nofail,discard" ]
	# The default description is luks:NAME.
	truncate -s 20M "$BATS_TEST_TMPDIR/two.img"
	cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 \
		--pbkdf-force-iterations 1000 --key-file "$OLD" "$BATS_TEST_TMPDIR/two.img"
	enroll --key-file "$OLD" "$BATS_TEST_TMPDIR/two.img" two
	[ -f "$HPCS_KEYS/user/luks:two" ]
	[ "$(sed -n 2p "$CT")" = "two UUID=$(cryptsetup luksUUID "$BATS_TEST_TMPDIR/two.img") none luks" ]
}

@test "the existing passphrase can come from stdin (one line) instead of --key-file" {
	run enroll --name "$DESC" "$IMG" data <<<"old passphrase"
	[ "$status" -eq 0 ]
	[ "$(slots)" = "0: 1: " ]
}

@test "enrolling twice is refused and changes nothing; the crypttab line stays single" {
	enroll --key-file "$OLD" --name "$DESC" --netdev "$IMG" data
	before=$(state)
	run enroll --key-file "$OLD" --name "$DESC" --netdev "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$HPCS_KEYS/user/$DESC' exists already"* ]]
	[ "$(state)" = "$before" ]
	[ "$(grep -c . "$CT")" -eq 1 ]
	# Under another description: a second slot and token, but still one line.
	run enroll --key-file "$OLD" --name "$DESC-2" --netdev "$IMG" data
	[ "$status" -eq 0 ]
	[[ "$output" == *"kept the existing line for 'data'"* ]]
	[ "$(grep -c . "$CT")" -eq 1 ]
	[ "$(slots)" = "0: 1: 2: " ]
	[ "$(tokens)" = "0: 1: " ]
}

@test "a crypttab line for the volume is kept and its name adopted; others are untouched" {
	printf '# comment\nswap /dev/sdz9 /dev/urandom swap\nmine /dev/disk/by-uuid/%s none luks,_netdev\nlast UUID=1234 none luks' "$UUID" >"$CT"
	cp "$CT" "$BATS_TEST_TMPDIR/ct.orig"
	run enroll --key-file "$OLD" --name "$DESC" --netdev "$IMG"
	[ "$status" -eq 0 ]
	cmp "$CT" "$BATS_TEST_TMPDIR/ct.orig"
	# A line for a new volume goes at the end, after a newline the file lacked.
	truncate -s 20M "$BATS_TEST_TMPDIR/two.img"
	cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 \
		--pbkdf-force-iterations 1000 --key-file "$OLD" "$BATS_TEST_TMPDIR/two.img"
	enroll --key-file "$OLD" --name "$DESC-2" "$BATS_TEST_TMPDIR/two.img" two
	[ "$(head -n 4 "$CT")" = "$(cat "$BATS_TEST_TMPDIR/ct.orig")" ]
	[ "$(sed -n 5p "$CT")" = "two UUID=$(cryptsetup luksUUID "$BATS_TEST_TMPDIR/two.img") none luks" ]
	[ "$(wc -l <"$CT")" -eq 5 ]
}

@test "a crypttab conflict is refused before anything changes" {
	printf 'data UUID=11111111-2222-3333-4444-555555555555 none luks\n' >"$CT"
	before=$(state)
	run enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$CT' line 1 already uses the name 'data' for 'UUID=11111111-2222-3333-4444-555555555555'"* ]]
	[ "$(state)" = "$before" ]
	printf 'other UUID=%s none luks\n' "$UUID" >"$CT"
	before=$(state)
	run enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$CT' line 1 already has '$IMG' as 'other', not 'data'"* ]]
	[ "$(state)" = "$before" ]
}

# --- rollback ----------------------------------------------------------------

@test "a wrong existing passphrase: no wrapped key, no new slot, no token, no crypttab" {
	before=$(state)
	printf 'wrong' >"$BATS_TEST_TMPDIR/wrong"
	run enroll --key-file "$BATS_TEST_TMPDIR/wrong" --name "$DESC" --netdev "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"adding key slot 1 to '$IMG' failed"* ]]
	[[ "$output" == *"'$IMG' was not enrolled; nothing was changed"* ]]
	[ "$(state)" = "$before" ]
	[ "$(slots)" = "0: " ]
	[ -z "$(tokens)" ]
	[ -z "$(ls -A "$HPCS_KEYS/user")" ]
	[ ! -e "$CT" ]
	# The same from stdin.
	run enroll --name "$DESC" "$IMG" data <<<"wrong"
	[ "$status" -eq 1 ]
	[ "$(state)" = "$before" ]
}

@test "a failing wrap (unknown root key) changes nothing" {
	before=$(state)
	run enroll --key-file "$OLD" --uuid 00000000-0000-0000-0000-000000000000 --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"wrapping the passphrase for '$DESC' failed"* ]]
	[ "$(state)" = "$before" ]
}

@test "a failure at the last step (enabling the units) undoes slot, token, key file and crypttab" {
	mkdir "$BATS_TEST_TMPDIR/bin"
	printf '#!/bin/sh\necho "$*" >>"%s"\nexit "${FAKE_SYSTEMCTL_RC:-0}"\n' \
		"$BATS_TEST_TMPDIR/systemctl.log" >"$BATS_TEST_TMPDIR/bin/systemctl"
	chmod +x "$BATS_TEST_TMPDIR/bin/systemctl"
	printf 'swap /dev/sdz9 /dev/urandom swap\n' >"$CT"
	before=$(state)
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" FAKE_SYSTEMCTL_RC=1 \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --key-file "$OLD" --name "$DESC" --netdev "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"enabling hpcs-for-luks.service hpcs-for-luks-wipe.service remote-cryptsetup.target failed"* ]]
	[ "$(state)" = "$before" ]
	[ "$(slots)" = "0: " ]
	[ -z "$(tokens)" ]
	# Enabled for real (fake systemctl succeeding): the units, and
	# remote-cryptsetup.target for a _netdev volume.
	: >"$BATS_TEST_TMPDIR/systemctl.log"
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --key-file "$OLD" --name "$DESC" --netdev "$IMG" data
	[ "$status" -eq 0 ]
	grep -qx "enable hpcs-for-luks.service hpcs-for-luks-wipe.service remote-cryptsetup.target" \
		"$BATS_TEST_TMPDIR/systemctl.log"
	[ "$(sed -n 2p "$CT")" = "data UUID=$UUID none luks,_netdev" ]
}

# --- rollback after an interrupt, and a partly done enable (issue 10, item 9) --

# enrolment_undone: an enrolment with the tools of $BATS_TEST_TMPDIR/bin
# first in PATH fails (exit 1), says so, and leaves no slot, token, key file
# or crypttab line behind.
enrolment_undone() {
	local before
	before=$(state)
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --no-enable --key-file "$OLD" --name "$DESC" "$IMG" data
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"was not enrolled; nothing was changed"* ]]
	[ -z "$(tokens)" ]
	[ "$(slots)" = "0: " ]
	[ "$(state)" = "$before" ]
}

@test "an interrupt just after the key slot was added removes that slot too" {
	# cryptsetup adds the slot; the interrupt arrives before the script can
	# note that it did.
	fake_tool cryptsetup '"$REAL" "$@"; rc=$?
[ "$1" != luksAddKey ] || kill -TERM "$PPID"
exit $rc'
	enrolment_undone
}

@test "an interrupt just after the token was added removes that token (found by hpcs-for-luks luks) too" {
	fake_tool cryptsetup '"$REAL" "$@"; rc=$?
[ "$1" != token ] || [ "$2" != add ] || kill -TERM "$PPID"
exit $rc'
	enrolment_undone
}

@test "a second and third interrupt during the rollback do not stop it: everything is undone" {
	# The first interrupt comes once the token is in; while the rollback
	# removes that token, TERM and INT come again.
	fake_tool cryptsetup '"$REAL" "$@"; rc=$?
[ "$1" != luksAddKey ] || for a; do echo "$a" >"$STATE"; done
[ "$1" != token ] || [ "$2" != add ] || kill -TERM "$PPID"
[ "$1" != token ] || [ "$2" != remove ] || { kill -TERM "$PPID"; kill -INT "$PPID"; sleep 0.5; }
exit $rc'
	enrolment_undone
	# The private directory of the new passphrase went too.
	pass=$(cat "$BATS_TEST_TMPDIR/cryptsetup.state")
	[[ "$pass" == */hpcs-enroll.*/pass ]]
	[ ! -e "${pass%/pass}" ]
}

@test "--remove: a second interrupt during its rollback does not stop it" {
	enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	before=$(state)
	# Interrupted at the key slot; interrupted again while the token goes back.
	fake_tool cryptsetup '[ "$1" != luksKillSlot ] || { kill -TERM "$PPID"; exit 1; }
if [ "$1" = token ] && [ "$2" = import ]; then kill -TERM "$PPID"; sleep 0.5; fi
exec "$REAL" "$@"'
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --remove --name "$DESC" "$IMG" data
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"was not unenrolled; nothing was changed"* ]]
	[ "$(state)" = "$before" ]
	[ -e "$HPCS_KEYS/user/$DESC" ]
	[ "$(cat "$CT")" = "data UUID=$UUID none luks" ]
}

# --- one writer at a time (issue 22) -----------------------------------------

# ms_since START: milliseconds since START (date +%s%N).
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

@test "one hpcs-enroll at a time on a crypttab: a second one waits, and gives up after 10 s naming the first" {
	lock_hold "$BATS_TEST_TMPDIR/.crypttab.lock" hpcs-enroll
	before=$(state)
	run enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[ "$output" = "hpcs-enroll: '$BATS_TEST_TMPDIR/.crypttab.lock' is held by another hpcs-enroll (pid $LOCK_PID, hpcs-enroll); waited 10 s; try again once it is done" ]
	[ "$(state)" = "$before" ]
	# The first one ends while the second waits: the second goes on.
	(sleep 1.5 && kill "$LOCK_PID") 3>&- &
	start=$(date +%s%N)
	run enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 0 ]
	[ "$(ms_since "$start")" -ge 1400 ]
	lock_release
	# --remove takes the same lock.
	lock_hold "$BATS_TEST_TMPDIR/.crypttab.lock" hpcs-enroll
	(sleep 1.5 && kill "$LOCK_PID") 3>&- &
	start=$(date +%s%N)
	run enroll --remove --name "$DESC" "$IMG"
	[ "$status" -eq 0 ]
	[ "$(ms_since "$start")" -ge 1400 ]
	[ ! -s "$CT" ]
}

@test "another writer of the key directory makes the enrolment give up at the key file, and undo the rest" {
	lock_hold "$HPCS_KEYS/.lock" hpcs-for-luks
	before=$(state)
	run enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$HPCS_KEYS/.lock' is held by another writer of the key directory (pid $LOCK_PID, hpcs-for-luks); waited 10 s"* ]]
	[[ "$output" == *"was not enrolled; nothing was changed"* ]]
	[ "$(state)" = "$before" ]
}

@test "a key file that appears the moment the enrolment puts its own in place is never overwritten" {
	# Another writer's file appears just before hpcs-enroll writes the name
	# (after any check it can make): a link fails there, a rename replaces it.
	local t
	for t in mv ln; do
		fake_tool "$t" 'for a; do last=$a; done
[ "$last" != "$PLANT" ] || [ -e "$PLANT" ] || echo theirs >"$PLANT"
exec "$REAL" "$@"'
	done
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" PLANT="$HPCS_KEYS/user/$DESC" \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --no-enable --key-file "$OLD" --name "$DESC" "$IMG" data
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$HPCS_KEYS/user/$DESC' appeared meanwhile; not overwritten"* ]]
	[ "$(cat "$HPCS_KEYS/user/$DESC")" = theirs ]
	[ "$(ls -A "$HPCS_KEYS/user")" = "$DESC" ]
	[ "$(slots)" = "0: " ]
	[ -z "$(tokens)" ]
	[ ! -e "$CT" ]
}

@test "an enable that fails half way is undone: only what was enabled before stays" {
	# systemctl: enables the first unit named, then fails; knows is-enabled
	# and disable. hpcs-for-luks-wipe.service was enabled before.
	fake_tool systemctl 'touch "$STATE"; echo "$*" >>"$STATE.log"
case $1 in
	enable) echo "$2" >>"$STATE"; exit 1 ;;
	is-enabled) for u; do :; done; grep -qx "$u" "$STATE" && exit 0; exit 1 ;;
	disable) shift; for u; do grep -vxF -e "$u" "$STATE" >"$STATE.new"; mv "$STATE.new" "$STATE"; done ;;
esac'
	echo hpcs-for-luks-wipe.service >"$BATS_TEST_TMPDIR/systemctl.state"
	before=$(state)
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --key-file "$OLD" --name "$DESC" "$IMG" data
	echo "$output"
	cat "$BATS_TEST_TMPDIR/systemctl.state.log"
	[ "$status" -eq 1 ]
	[[ "$output" == *"was not enrolled; nothing was changed"* ]]
	[ "$(state)" = "$before" ]
	[ "$(cat "$BATS_TEST_TMPDIR/systemctl.state")" = hpcs-for-luks-wipe.service ]
}

@test "a nofail volume: the wipe waits for its unit, through a drop-in that a rollback removes (item 10.7)" {
	units=$BATS_TEST_TMPDIR/units
	run enroll --unit-dir "$units" --key-file "$OLD" --name "$DESC" --options nofail "$IMG" data
	echo "$output"
	[ "$status" -eq 0 ]
	dropin=$units/hpcs-for-luks-wipe.service.d/hpcs-enroll-data.conf
	[ "$(cat "$dropin")" = "$(printf '[Unit]\nAfter=systemd-cryptsetup@data.service')" ]
	# A name that systemd escapes (on a volume of its own).
	cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$OLD" "$IMG"
	run enroll --unit-dir "$units" --key-file "$OLD" --name "$DESC-2" --options nofail,x-a=b \
		"$IMG" my-data.2
	[ "$status" -eq 0 ]
	grep -qx 'After=systemd-cryptsetup@my\\x2ddata.2.service' \
		"$units/hpcs-for-luks-wipe.service.d/hpcs-enroll-my-data.2.conf"
	# A failure after the drop-in was written takes it away again.
	cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$OLD" "$IMG"
	fake_tool hpcs-for-luks '[ "$3" != wrap ] || exit 1; exec "$REAL" "$@"'
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" "$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" \
		--no-enable --unit-dir "$units" --key-file "$OLD" --name "$DESC-3" --options nofail "$IMG" other
	[ "$status" -eq 1 ]
	[ ! -e "$units/hpcs-for-luks-wipe.service.d/hpcs-enroll-other.conf" ]
}

# --- the LUKS2 header read by hpcs-for-luks (issue 21) ------------------------

@test "both paths read the LUKS2 header through 'hpcs-for-luks luks', never luksDump or token JSON" {
	fake_tool cryptsetup 'echo "$*" >>"$STATE"; exec "$REAL" "$@"'
	fake_tool hpcs-for-luks 'echo "$*" >>"$STATE"; exec "$REAL" "$@"'
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" "$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" \
		--no-enable --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 0 ]
	[[ "$output" == *"key slot 1, luks2-keyring token 0 for the user key '$DESC'"* ]]
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" "$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" \
		--remove --name "$DESC" "$IMG"
	[ "$status" -eq 0 ]
	[ -z "$(tokens)" ]
	[ "$(grep -c "^luks --device $IMG\$" "$BATS_TEST_TMPDIR/hpcs-for-luks.state")" -eq 2 ]
	# cryptsetup dumps the header only for hpcs-for-luks (as JSON), and
	# exports only the token that the removal takes away (to put it back).
	run grep -E '^(luksDump|token export)' "$BATS_TEST_TMPDIR/cryptsetup.state"
	echo "$output"
	[ "$output" = "luksDump --dump-json-metadata -- $IMG
luksDump --dump-json-metadata -- $IMG
token export --token-id 0 $IMG" ]
	# What the CLI cannot read stops an enrolment before anything changes.
	before=$(state)
	fake_tool hpcs-for-luks '[ "$1" != luks ] || exit 1; exec "$REAL" "$@"'
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" "$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" \
		--no-enable --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot read the LUKS2 header of '$IMG'"* ]]
	[ "$(state)" = "$before" ]
}

# --- the passphrase stays out of argv and the environment --------------------

@test "the passphrase is never in any argv or environment of the commands run" {
	# Wrappers log the argv and environment of every cryptsetup and
	# hpcs-for-luks run, then run the real one.
	mkdir "$BATS_TEST_TMPDIR/bin"
	for tool in cryptsetup hpcs-for-luks shred; do
		real=$(command -v "$tool")
		printf '#!/bin/sh\nprintf "%%s\\n" "$0 $*" >>"%s"\nenv >>"%s"\nexec "%s" "$@"\n' \
			"$BATS_TEST_TMPDIR/argv.log" "$BATS_TEST_TMPDIR/env.log" "$real" >"$BATS_TEST_TMPDIR/bin/$tool"
		chmod +x "$BATS_TEST_TMPDIR/bin/$tool"
	done
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --no-enable --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 0 ]
	hpcs unwrap <"$HPCS_KEYS/user/$DESC" >"$BATS_TEST_TMPDIR/pass"
	pass=$(cat "$BATS_TEST_TMPDIR/pass")
	[ "${#pass}" -eq 44 ]
	printed=$output
	grep -q "cryptsetup luksAddKey" "$BATS_TEST_TMPDIR/argv.log"
	grep -q "hpcs-for-luks.* wrap" "$BATS_TEST_TMPDIR/argv.log"
	# (status 1: read and not found; 2 would be a missing log)
	run grep -qF -- "$pass" "$BATS_TEST_TMPDIR/argv.log" "$BATS_TEST_TMPDIR/env.log"
	[ "$status" -eq 1 ]
	refute_secrets "$printed" "$pass"
	# The new passphrase went to cryptsetup as a file in a private tmpfs
	# directory, shredded and removed afterwards.
	file=$(sed -n 's/^.*cryptsetup luksAddKey .* \(\/[^ ]*\/pass\)$/\1/p' "$BATS_TEST_TMPDIR/argv.log")
	[[ "$file" == /dev/shm/hpcs-enroll.*/pass ]]
	grep -qxF "$BATS_TEST_TMPDIR/bin/shred -u $file" "$BATS_TEST_TMPDIR/argv.log"
	[ ! -e "$(dirname "$file")" ]
}

# --- --remove: undoing an enrolment ------------------------------------------

@test "--remove undoes an enrolment: token, key slot, wrapped key, crypttab line, linger marker" {
	printf 'swap /dev/sdz9 /dev/urandom swap\n' >"$CT"
	before=$(state)
	enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	mkdir -p "$HPCS_KEYS/linger/user"
	touch "$HPCS_KEYS/linger/user/$DESC"
	[ "$(slots)" = "0: 1: " ]
	run enroll --remove --name "$DESC" "$IMG"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"removed luks2-keyring token 0 and key slot 1"* ]]
	[[ "$output" == *"$CT: removed the line for 'data'"* ]]
	[[ "$output" == *"dracut --force"* ]]
	[ "$(state)" = "$before" ]
	[ "$(slots)" = "0: " ]
	[ -z "$(tokens)" ]
	[ ! -e "$HPCS_KEYS/linger/user/$DESC" ]
	[ -z "$(ls -A "$HPCS_KEYS/linger/user")" ]
	[ "$(cat "$CT")" = "swap /dev/sdz9 /dev/urandom swap" ]
	cryptsetup open --test-passphrase --key-slot 0 --key-file "$OLD" "$IMG"
	# Nothing left to remove: said so, exit 1.
	run enroll --remove --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"no luks2-keyring token for '$DESC'"*"nothing to remove"* ]]
	# Enrolling again works.
	enroll --key-file "$OLD" --name "$DESC" "$IMG" data
}

@test "--remove takes away the drop-in of a nofail volume" {
	units=$BATS_TEST_TMPDIR/units
	enroll --unit-dir "$units" --key-file "$OLD" --name "$DESC" --options nofail "$IMG" data
	dropin=$units/hpcs-for-luks-wipe.service.d/hpcs-enroll-data.conf
	[ -f "$dropin" ]
	run enroll --remove --unit-dir "$units" --name "$DESC" "$IMG"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"removed $dropin"* ]]
	[ ! -e "$dropin" ]
	[ ! -e "${dropin%/*}" ]
	[ "$(slots)" = "0: " ]
}

@test "--remove finds NAME in the crypttab and defaults DESC to luks:NAME" {
	enroll --key-file "$OLD" "$IMG" "$HPCS_TAG-vol"
	[ -e "$HPCS_KEYS/user/luks:$HPCS_TAG-vol" ]
	run enroll --remove "$IMG"
	[ "$status" -eq 0 ]
	[ ! -e "$HPCS_KEYS/user/luks:$HPCS_TAG-vol" ]
	[ ! -s "$CT" ]
	run enroll --remove "$IMG" other-name
	[ "$status" -eq 1 ]
}

@test "--remove never takes the last key slot; nothing changes" {
	enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	cryptsetup luksKillSlot --batch-mode "$IMG" 0
	before=$(state)
	run enroll --remove --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[[ "$output" == *"key slot 1 is the last key slot of '$IMG': removing it would lose the data"* ]]
	[ "$(state)" = "$before" ]
	[ "$(slots)" = "1: " ]
}

@test "--remove keeps the crypttab line while another of our tokens opens the volume" {
	enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	enroll --key-file "$OLD" --name "$DESC-2" "$IMG" data
	run enroll --remove --name "$DESC" "$IMG" data
	[ "$status" -eq 0 ]
	[[ "$output" == *"kept the line for 'data' (another token of ours still opens it)"* ]]
	[ "$(cat "$CT")" = "data UUID=$UUID none luks" ]
	[ "$(tokens)" = "1: " ]
	[ "$(slots)" = "0: 2: " ]
	[ -e "$HPCS_KEYS/user/$DESC-2" ]
}

@test "--remove: a failure at the last step (the key slot) puts everything back" {
	enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	mkdir -p "$HPCS_KEYS/linger/user" "$BATS_TEST_TMPDIR/bin"
	touch "$HPCS_KEYS/linger/user/$DESC"
	before=$(state)
	token_before=$(cryptsetup token export --token-id 0 "$IMG")
	real=$(command -v cryptsetup)
	printf '#!/bin/sh\n[ "$1" != luksKillSlot ] || exit 1\nexec "%s" "$@"\n' "$real" \
		>"$BATS_TEST_TMPDIR/bin/cryptsetup"
	chmod +x "$BATS_TEST_TMPDIR/bin/cryptsetup"
	run env PATH="$BATS_TEST_TMPDIR/bin:$PATH" \
		"$ENROLL" --config "$HPCS_CONF" --crypttab "$CT" --remove --name "$DESC" "$IMG" data
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot remove key slot 1 of '$IMG'"* ]]
	[[ "$output" == *"was not unenrolled; nothing was changed"* ]]
	[ "$(state)" = "$before" ]
	[ "$(cryptsetup token export --token-id 0 "$IMG")" = "$token_before" ]
	[ -e "$HPCS_KEYS/linger/user/$DESC" ]
	[ -z "$(ls -A "$HPCS_KEYS/user" | grep -v "^$DESC\$")" ]
	# And the volume still opens from the keyring through its token.
	hpcs process
	run keyctl session - bash -c "keyctl link @u @s && cryptsetup open --test-passphrase --token-only '$IMG'"
	[ "$status" -eq 0 ]
}

# --- its parts: beside it in the tree, in their own directory once installed --

@test "a missing part of hpcs-enroll is named, and nothing is done" {
	mkdir "$BATS_TEST_TMPDIR/alone"
	cp "$ENROLL" "$BATS_TEST_TMPDIR/alone/"
	before=$(state)
	run "$BATS_TEST_TMPDIR/alone/hpcs-enroll" --help
	[ "$status" -eq 1 ]
	[ "$output" = "hpcs-enroll: '$BATS_TEST_TMPDIR/alone/hpcs-enroll-options.bash' is missing (a part of hpcs-enroll; reinstall hpcs-for-luks)" ]
	cp "${ENROLL%/*}/hpcs-enroll-options.bash" "$BATS_TEST_TMPDIR/alone/"
	tree=${ENROLL%/*}
	ENROLL=$BATS_TEST_TMPDIR/alone/hpcs-enroll
	run enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[ "$output" = "hpcs-enroll: '$BATS_TEST_TMPDIR/alone/hpcs-enroll-add.bash' is missing (a part of hpcs-enroll; reinstall hpcs-for-luks)" ]
	cp "$tree/hpcs-enroll-add.bash" "$BATS_TEST_TMPDIR/alone/"
	run enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$status" -eq 1 ]
	[ "$output" = "hpcs-enroll: '$BATS_TEST_TMPDIR/alone/hpcs-enroll-remove.bash' is missing (a part of hpcs-enroll; reinstall hpcs-for-luks)" ]
	[ "$(state)" = "$before" ]
}

@test "installed, hpcs-enroll sources its parts from their install directory, never from beside itself" {
	[ -f "$HPCS_BIN_DIR/cmake_install.cmake" ] || skip "no CMake build directory in $HPCS_BIN_DIR"
	p=$BATS_TEST_TMPDIR/prefix
	run cmake --install "$HPCS_BIN_DIR" --prefix "$p"
	[ "$status" -eq 0 ] || {
		echo "$output"
		false
	}
	lib=$p/share/hpcs-for-luks
	[ -f "$lib/hpcs-enroll-options.bash" ]
	[ -f "$lib/hpcs-enroll-add.bash" ]
	[ -f "$lib/hpcs-enroll-remove.bash" ]
	# The one line that differs from the tree's script names the directory.
	run diff "$ENROLL" "$p/sbin/hpcs-enroll"
	[ "$status" -eq 1 ]
	[ "$(grep -c '^[<>]' <<<"$output")" -eq 2 ]
	grep -qx "enroll_lib='$lib'" "$p/sbin/hpcs-enroll"
	# It enrols and removes.
	ENROLL=$p/sbin/hpcs-enroll
	enroll --key-file "$OLD" --name "$DESC" "$IMG" data
	[ "$(tokens)" = "0: " ]
	run enroll --remove --name "$DESC" "$IMG"
	[ "$status" -eq 0 ]
	[ -z "$(tokens)" ]
	# A copy elsewhere, with other parts planted beside it, still reads the installed ones.
	mkdir "$BATS_TEST_TMPDIR/elsewhere"
	cp "$p/sbin/hpcs-enroll" "$BATS_TEST_TMPDIR/elsewhere/"
	for f in hpcs-enroll-options.bash hpcs-enroll-add.bash hpcs-enroll-remove.bash; do
		printf 'echo planted\nexit 7\n' >"$BATS_TEST_TMPDIR/elsewhere/$f"
	done
	run "$BATS_TEST_TMPDIR/elsewhere/hpcs-enroll" --help
	[ "$status" -eq 0 ]
	[[ "$output" == "Usage: hpcs-enroll"* ]]
	# An installed part missing: named by its installed path.
	rm "$lib/hpcs-enroll-remove.bash"
	run "$p/sbin/hpcs-enroll" --help
	[ "$status" -eq 1 ]
	[ "$output" = "hpcs-enroll: '$lib/hpcs-enroll-remove.bash' is missing (a part of hpcs-enroll; reinstall hpcs-for-luks)" ]
}
