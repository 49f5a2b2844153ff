#!/usr/bin/env bats
# hpcs-unlock --token-open / --token-validate / --token-dump: the helper the
# hpcs LUKS2 token's libcryptsetup plugin runs (issue 25). Against the
# emulator; the token is wrapped through its API with the volume's AAD, as
# WrapHpcsToken wraps it.

load helpers
load unlock_helpers
bats_require_minimum_version 1.5.0

UUID=0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a10

setup() {
	unlock_setup
	PASS=$(head -c 32 /dev/urandom | base64 -w0)
	TOKEN=$(hpcs_wrapped_token "$UUID" "$PASS" 1 luks:root)
}

teardown() {
	hpcs_teardown
}

token_open() { # UUID [ARGS...]: the token on stdin, the passphrase in $BATS_TEST_TMPDIR/pass
	local uuid=$1
	shift
	"$UNLOCK" --config "$HPCS_CONF" --cmdline "$CMDLINE" --token-open --luks-uuid "$uuid" "$@" \
		<<<"$TOKEN" >"$BATS_TEST_TMPDIR/pass"
}

@test "--token-open: the passphrase on stdout, raw, nothing on stderr; the UUID in any case" {
	run --separate-stderr token_open "$UUID"
	[ "$status" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/pass")" = "$PASS" ]
	[ "$(wc -c <"$BATS_TEST_TMPDIR/pass")" -eq 44 ] # no newline
	[ -z "$stderr" ]
	run --separate-stderr token_open "${UUID^^}"
	[ "$status" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/pass")" = "$PASS" ]
	# No key went into a keyring.
	run keyctl search @u user "luks:root"
	[ "$status" -ne 0 ]
}

@test "--token-open: another volume's UUID is refused (77), naming the UUID, the root key and the URL" {
	other=0b5c7c2a-6a1e-4f55-9d0e-3c1f8b2e9a11
	run --separate-stderr token_open "$other"
	echo "$stderr"
	[ "$status" -eq 77 ]
	[ ! -s "$BATS_TEST_TMPDIR/pass" ]
	[ "$(wc -l <<<"$stderr")" -eq 1 ]
	[[ "$stderr" == *"$other"* ]]
	[[ "$stderr" == *"'$HPCS_CRK'"* ]]
	[[ "$stderr" == *"$EMU_URL"* ]]
	[[ "$stderr" == *"UNPROCESSABLE_CIPHERTEXT_ERR"* ]]
	[[ "$stderr" != *"$PASS"* ]]
}

@test "--token-open: a token of another instance is refused (77) before any KMS call" {
	TOKEN=$(jq -c '.instance = "other-instance"' <<<"$TOKEN")
	emu_ctl POST reset-stats >/dev/null
	run --separate-stderr token_open "$UUID"
	[ "$status" -eq 77 ]
	[[ "$stderr" == *"'other-instance'"*"'$EMU_INSTANCE'"* ]]
	[ "$(emu_stat by_op.unwrap)" -eq 0 ]
}

@test "--token-open: the KMS down is 75 within token_timeout (rd.hpcs.token_timeout=)" {
	emulator_stop
	start=$(now_ms)
	run --separate-stderr token_open "$UUID"
	took=$(($(now_ms) - start))
	echo "$stderr ($took ms)"
	[ "$status" -eq 75 ]
	[ "$took" -lt 15000 ] # the default 5 s, with slack for a loaded machine
	[[ "$stderr" == *"$UUID"* ]]
	echo "quiet rd.hpcs.token_timeout=1" >"$CMDLINE"
	start=$(now_ms)
	run --separate-stderr token_open "$UUID"
	took=$(($(now_ms) - start))
	[ "$status" -eq 75 ]
	[ "$took" -lt 4500 ] # below the default 5 s: the option took effect
	hpcs_write_conf HFL.token_timeout=2
	echo quiet >"$CMDLINE"
	start=$(now_ms)
	run --separate-stderr token_open "$UUID"
	took=$(($(now_ms) - start))
	[ "$status" -eq 75 ]
	[ "$took" -ge 1500 ]
	[ "$took" -lt 4500 ]
}

@test "--token-open: bad JSON is 65; stdout a terminal, or no --luks-uuid, is refused" {
	TOKEN='{"type":"hpcs"'
	run --separate-stderr token_open "$UUID"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"not a JSON object"* ]]
	TOKEN='{"type":"hpcs","keyslots":["1"]}'
	run --separate-stderr token_open "$UUID"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"member 'version' is missing"* ]]
	run --separate-stderr "$UNLOCK" --config "$HPCS_CONF" --token-open <<<"$TOKEN"
	[ "$status" -eq 2 ]
	run --separate-stderr token_open not-a-uuid
	[ "$status" -eq 65 ]
	if command -v script >/dev/null; then
		printf '%s\n' "$TOKEN" >"$BATS_TEST_TMPDIR/token"
		run script -qec "$UNLOCK --config $HPCS_CONF --token-open --luks-uuid $UUID <$BATS_TEST_TMPDIR/token" /dev/null
		[ "$status" -eq 64 ]
		[[ "$output" == *"stdout, which is a terminal"* ]]
	fi
}

@test "--token-validate and --token-dump" {
	run --separate-stderr "$UNLOCK" --token-validate <<<"$TOKEN"
	[ "$status" -eq 0 ]
	run --separate-stderr "$UNLOCK" --token-validate <<<"$(jq -c '.nmae = 1' <<<"$TOKEN")"
	[ "$status" -eq 65 ]
	[ "$stderr" = "<3>hpcs token: unknown member 'nmae'" ]
	run --separate-stderr "$UNLOCK" --token-dump <<<"$TOKEN"
	[ "$status" -eq 0 ]
	ct=$(jq -r .ciphertext <<<"$TOKEN")
	[ "${lines[0]}" = $'\tversion: 1' ]
	[ "${lines[1]}" = $'\tname: luks:root' ]
	[ "${lines[2]}" = $'\tkms: '"$EMU_URL" ]
	[ "${lines[3]}" = $'\tinstance: '"$EMU_INSTANCE" ]
	[ "${lines[4]}" = $'\tcrk: '"$HPCS_CRK" ]
	[ "${lines[6]}" = $'\tbound_to: luks2-uuid' ]
	[ "${lines[7]}" = $'\tciphertext: '"${ct:0:16}... (${#ct} chars)" ]
	[ "${#lines[@]}" -eq 8 ]
	run --separate-stderr "$UNLOCK" --token-dump <<<"[]"
	[ "$status" -eq 65 ]
}
