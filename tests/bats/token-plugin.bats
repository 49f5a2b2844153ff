#!/usr/bin/env bats
# The libcryptsetup token plugin libcryptsetup-token-hpcs.so (issue 25),
# installed into cryptsetup's token directory as the package installs it, and
# used by the real cryptsetup on LUKS2 image files (no device-mapper needed
# for --test-passphrase). The helper it runs (named by HPCS_TOKEN_HELPER) is
# first a fake that plays hpcs-unlock's side of the protocol, then the real
# hpcs-unlock --token-open against the emulator.
# Needs root (the token directory is the system's).

load helpers
load unlock_helpers
bats_require_minimum_version 1.5.0

setup_file() {
	PLUGIN=$HPCS_BIN_DIR/libcryptsetup-token-hpcs.so
	[ -f "$PLUGIN" ] || {
		echo "no token plugin at $PLUGIN: build first (libcryptsetup-dev)" >&2
		return 1
	}
	command -v cryptsetup >/dev/null || {
		echo "cryptsetup is not installed (tests/install-deps.sh installs it)" >&2
		return 1
	}
	TOKEN_DIR=$(cryptsetup --help | sed -n 's/^LUKS2 external token plugin path: \(.*\)\.$/\1/p')
	[ -n "$TOKEN_DIR" ] || {
		echo "cryptsetup --help names no external token plugin path" >&2
		return 1
	}
	INSTALLED=$TOKEN_DIR/libcryptsetup-token-hpcs.so
	# A plugin that is there already (the package's) is put back afterwards.
	if [ -e "$INSTALLED" ]; then cp -a "$INSTALLED" "$BATS_FILE_TMPDIR/plugin.saved"; fi
	install -m 0644 "$PLUGIN" "$INSTALLED"
	export TOKEN_DIR INSTALLED
}

teardown_file() {
	if [ -e "$BATS_FILE_TMPDIR/plugin.saved" ]; then
		cp -a "$BATS_FILE_TMPDIR/plugin.saved" "$INSTALLED"
	else
		rm -f "$INSTALLED"
	fi
}

setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root: the plugin goes into $TOKEN_DIR"
	FAKE_DIR=$BATS_TEST_TMPDIR/fake
	mkdir -p "$FAKE_DIR"
	fake_helper
	IMG=$BATS_TEST_TMPDIR/vol.img
	PASS=$BATS_TEST_TMPDIR/vol.pass
	head -c 32 /dev/urandom | base64 -w0 >"$PASS"
	truncate -s 20M "$IMG"
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$PASS" "$IMG"
	UUID=$(cryptsetup luksUUID "$IMG")
	TOKEN='{"type":"hpcs","keyslots":["0"],"version":1,"crk":"the-crk","ciphertext":"c2VjcmV0"}'
	echo "$TOKEN" >"$BATS_TEST_TMPDIR/token.json"
	# Imported with the plugin out of the way: the fake must not see it.
	cryptsetup token import --disable-external-tokens --json-file "$BATS_TEST_TMPDIR/token.json" "$IMG"
	cp "$PASS" "$FAKE_DIR/pass"
	export FAKE_DIR HPCS_TOKEN_HELPER=$FAKE_DIR/hpcs-unlock
}

teardown() {
	hpcs_teardown
}

# The fake hpcs-unlock: records its arguments and stdin; --token-open prints
# $FAKE_DIR/pass and exits $FAKE_DIR/exit (0 when absent); --token-validate
# refuses a token without "crk"; --token-dump prints two lines.
fake_helper() {
	cat >"$FAKE_DIR/hpcs-unlock" <<'EOF'
#!/bin/sh
echo "$*" >>"$FAKE_DIR/args"
json=$(cat)
printf '%s\n' "$json" >"$FAKE_DIR/stdin"
case $1 in
--token-open)
	code=$(cat "$FAKE_DIR/exit" 2>/dev/null || echo 0)
	if [ "$code" = hang ]; then exec sleep 600; fi
	if [ "$code" != 0 ]; then
		echo "<3>fake: exit $code for $3" >&2
		exit "$code"
	fi
	cat "$FAKE_DIR/pass"
	;;
--token-validate)
	case $json in *'"crk"'*) ;; *)
		echo '<3>hpcs token: "crk" is missing' >&2
		exit 65
		;;
	esac
	;;
--token-dump)
	printf '\tcrk:        the-crk\n\tciphertext: c2VjcmV0 (8 chars)\n'
	;;
esac
EOF
	chmod 0755 "$FAKE_DIR/hpcs-unlock"
}

token_open() {
	run timeout 120 cryptsetup open --test-passphrase --token-only -v "$IMG"
	echo "$output"
}

@test "cryptsetup loads the plugin from its token directory (the ABI version and ours)" {
	[ -f "$INSTALLED" ]
	run cryptsetup --debug luksDump "$IMG"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "Trying to load $INSTALLED"
	echo "$output" | grep -q 'Loading symbol cryptsetup_token_open@CRYPTSETUP_TOKEN_1.0'
	echo "$output" | grep -qF 'Token handler hpcs-hpcs-for-luks 0.1.0 loaded successfully.'
}

@test "cryptsetup open --token-only: the passphrase from the helper opens the volume; the helper got the token and the UUID" {
	token_open
	[ "$status" -eq 0 ]
	[[ $output == *"Key slot 0 unlocked."* ]]
	grep -qx -- "--token-open --luks-uuid $UUID" "$FAKE_DIR/args"
	[ "$(jq -c . "$FAKE_DIR/stdin")" = "$(jq -c . <<<"$TOKEN")" ]
	# validate ran first (libcryptsetup checks the token before each open).
	[ "$(head -n1 "$FAKE_DIR/args")" = --token-validate ]
}

@test "a wrong passphrase from the helper does not open the volume" {
	echo -n 'not-the-passphrase-at-all' >"$FAKE_DIR/pass"
	token_open
	[ "$status" -ne 0 ]
	[[ $output != *"unlocked"* ]]
}

@test "helper exit 75 (not now): the open fails at once, saying not now and passing on the helper's line" {
	echo 75 >"$FAKE_DIR/exit"
	local t=$SECONDS
	token_open
	[ "$status" -ne 0 ]
	[ $((SECONDS - t)) -lt 5 ]
	[[ $output == *"hpcs token 0: not now"* ]]
	[[ $output == *"hpcs-unlock: fake: exit 75 for $UUID"* ]]
}

@test "helper exit 77 (refused) and 65 (bad token): the open fails, saying which" {
	echo 77 >"$FAKE_DIR/exit"
	token_open
	[ "$status" -ne 0 ]
	[[ $output == *"hpcs token 0: refused for volume $UUID"* ]]
	echo 65 >"$FAKE_DIR/exit"
	token_open
	[ "$status" -ne 0 ]
	[[ $output == *"hpcs token 0: not a valid hpcs token"* ]]
}

@test "cryptsetup luksDump shows the token through the plugin's dump" {
	run cryptsetup luksDump "$IMG"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx '  0: hpcs'
	echo "$output" | grep -qxF "$(printf '\tcrk:        the-crk')"
	echo "$output" | grep -qxF "$(printf '\tciphertext: c2VjcmV0 (8 chars)')"
	grep -qx -- --token-dump "$FAKE_DIR/args"
}

@test "cryptsetup token import: a token that validate refuses is not stored" {
	echo '{"type":"hpcs","keyslots":["0"],"ciphertext":"x"}' >"$BATS_TEST_TMPDIR/bad.json"
	run cryptsetup token import --token-id 5 --json-file "$BATS_TEST_TMPDIR/bad.json" "$IMG"
	[ "$status" -ne 0 ]
	[[ $output == *'"crk" is missing'* ]]
	run cryptsetup token export --token-id 5 "$IMG"
	[ "$status" -ne 0 ]
	# The good one is taken.
	run cryptsetup token import --token-id 6 --json-file "$BATS_TEST_TMPDIR/token.json" "$IMG"
	[ "$status" -eq 0 ]
}

@test "the helper missing: a clear message naming its path, and no open" {
	export HPCS_TOKEN_HELPER=$BATS_TEST_TMPDIR/no-such/hpcs-unlock
	token_open
	[ "$status" -ne 0 ]
	[[ $output == *"cannot run $HPCS_TOKEN_HELPER: No such file or directory"* ]]
}

# ---- The real helper: hpcs-unlock --token-open against the emulator --------

# real_helper: the emulator and a config (unlock_setup), the real hpcs-unlock
# as the helper (a wrapper gives it the test's config and kernel command
# line: the plugin runs it with the protocol's arguments only), and the
# volume's token replaced by one wrapped with the volume's AAD, imported
# through the plugin (its validate is the real one now).
real_helper() {
	unlock_setup
	cat >"$FAKE_DIR/real-helper" <<EOF
#!/bin/sh
exec "$UNLOCK" --config "$HPCS_CONF" --cmdline "$CMDLINE" "\$@"
EOF
	chmod 0755 "$FAKE_DIR/real-helper"
	export HPCS_TOKEN_HELPER=$FAKE_DIR/real-helper
	hpcs_wrapped_token "$UUID" "$(cat "$PASS")" >"$BATS_TEST_TMPDIR/token.json"
	cryptsetup token remove --token-id 0 "$IMG"
	cryptsetup token import --token-id 0 --json-file "$BATS_TEST_TMPDIR/token.json" "$IMG"
}

@test "real helper: cryptsetup open --test-passphrase --token-only opens the volume; luksDump shows the token" {
	real_helper
	token_open
	[ "$status" -eq 0 ]
	[[ $output == *"Key slot 0 unlocked."* ]]
	[ "$(emu_stat by_op.unwrap)" -ge 1 ]
	run cryptsetup luksDump "$IMG"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx '  0: hpcs'
	echo "$output" | grep -qxF "$(printf '\tcrk: %s' "$HPCS_CRK")"
	echo "$output" | grep -qxF "$(printf '\tbound_to: luks2-uuid')"
	echo "$output" | grep -qxF "$(printf '\tinstance: %s' "$EMU_INSTANCE")"
	# What an operator sees: the Tokens part of the dump.
	echo "$output" | sed -n '/^Tokens:/,/^Digests:/p' | sed 's/^/# /' >&3
}

@test "real helper: the KMS down fails within the helper's bound, saying not now" {
	real_helper
	emulator_stop
	echo "quiet rd.hpcs.token_timeout=2" >"$CMDLINE"
	local t=$SECONDS
	token_open
	[ "$status" -ne 0 ]
	[ $((SECONDS - t)) -lt 12 ] # the 2 s bound, with slack for a loaded machine
	[[ $output == *"hpcs token 0: not now"* ]]
	[[ $output == *"$UUID"* ]]
}

@test "real helper: the header copied to a volume with another UUID does not open it (AAD)" {
	real_helper
	local img2=$BATS_TEST_TMPDIR/copy.img uuid2
	truncate -s 20M "$img2"
	cryptsetup luksHeaderBackup "$IMG" --header-backup-file "$BATS_TEST_TMPDIR/hdr"
	cryptsetup luksHeaderRestore -q "$img2" --header-backup-file "$BATS_TEST_TMPDIR/hdr"
	uuid2=$(cat /proc/sys/kernel/random/uuid)
	cryptsetup luksUUID -q --uuid "$uuid2" "$img2"
	# The key slot is the same: the passphrase itself would open the copy.
	cryptsetup open --test-passphrase --key-file "$PASS" "$img2"
	run timeout 120 cryptsetup open --test-passphrase --token-only -v "$img2"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"hpcs token 0: refused for volume $uuid2"* ]]
	[[ $output == *"UNPROCESSABLE_CIPHERTEXT_ERR"* ]]
	[[ $output != *"unlocked"* ]]
}

@test "real helper: a token whose passphrase opens no key slot does not open the volume" {
	real_helper
	hpcs_wrapped_token "$UUID" "$(head -c 32 /dev/urandom | base64 -w0)" >"$BATS_TEST_TMPDIR/wrong.json"
	cryptsetup token remove --token-id 0 "$IMG"
	cryptsetup token import --token-id 0 --json-file "$BATS_TEST_TMPDIR/wrong.json" "$IMG"
	token_open
	[ "$status" -ne 0 ]
	[[ $output != *"unlocked"* ]]
	[ "$(emu_stat by_op.unwrap)" -ge 1 ]
}

@test "real helper: token import of a token the helper's validate refuses is not stored" {
	real_helper
	jq -c '.nmae = 1' "$BATS_TEST_TMPDIR/token.json" >"$BATS_TEST_TMPDIR/bad.json"
	run cryptsetup token import --token-id 3 --json-file "$BATS_TEST_TMPDIR/bad.json" "$IMG"
	[ "$status" -ne 0 ]
	[[ $output == *"hpcs token: unknown member 'nmae'"* ]]
	run cryptsetup token export --token-id 3 "$IMG"
	[ "$status" -ne 0 ]
}
