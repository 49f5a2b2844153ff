#!/usr/bin/env bats
# The admin CLI against the Key Protect emulator and the real kernel keyring.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	command -v keyctl >/dev/null || skip "keyctl (keyutils) is not installed"
	[ -x "$HPCS_BIN_DIR/hpcs-for-luks" ] || skip "no hpcs-for-luks in $HPCS_BIN_DIR: build first"
	hpcs_setup
}

teardown() {
	hpcs_teardown
}

# --- usage -------------------------------------------------------------------

@test "usage errors exit 2 with a one-line hint, --help and --version exit 0" {
	run hpcs frobnicate
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "hpcs-for-luks: unknown command 'frobnicate'" ]
	[ "${#lines[@]}" -eq 2 ]
	run hpcs create --crk
	[ "$status" -eq 2 ]
	[[ "$output" == *"--name NAME"* ]]
	run hpcs create --crk --std --name x1
	[ "$status" -eq 2 ]
	run hpcs get
	[ "$status" -eq 2 ]
	run "$HPCS_BIN_DIR/hpcs-for-luks" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"process [--uuid CRK]"* ]]
	run "$HPCS_BIN_DIR/hpcs-for-luks" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^hpcs-for-luks\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

# complete WORDS...: what the completion offers for the last of
# `hpcs-for-luks WORDS...`, one a line.
complete_words() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	bash -c '. /usr/share/bash-completion/bash_completion && . "$1" && shift &&
		COMP_WORDS=("$@") && COMP_CWORD=$(($# - 1)) && COMP_LINE="$*" && COMP_POINT=${#COMP_LINE} &&
		_hpcs_for_luks && printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$BATS_TEST_DIRNAME/../../completion/hpcs-for-luks" hpcs-for-luks "$@"
}

@test "the completion offers the verbs of --help, and each verb the options its synopsis names" {
	[ -r /usr/share/bash-completion/bash_completion ] || skip "needs bash-completion"
	run "$HPCS_BIN_DIR/hpcs-for-luks" --help
	[ "$status" -eq 0 ]
	# "  VERB SYNOPSIS", between "Commands:" and the blank line.
	help=$output
	verbs=$(sed -n '/^Commands:$/,/^$/s/^  //p' <<<"$help")
	[ "$(wc -l <<<"$verbs")" -ge 12 ]
	run complete_words ""
	[ "$status" -eq 0 ]
	[ "$(grep -v '^-' <<<"$output" | sort)" = "$(cut -d' ' -f1 <<<"$verbs" | sort -u)" ]
	[ "$(grep '^-' <<<"$output" | sort)" = "$(sed -n '/^Options:$/,$p' <<<"$help" | grep -o -e '--[a-z-]*' | sort)" ]
	# A two-word verb ("token make"): its first word offers the second ones.
	run complete_words token ""
	[ "$(sort <<<"$output")" = "$(sed -n 's/^token \([a-z]*\) .*/\1/p' <<<"$verbs" | sort)" ]
	while read -r verb synopsis; do
		words=("$verb")
		[[ $synopsis == -* || $synopsis == "("* || $synopsis == "" || $synopsis == "["* ]] ||
			{ words+=("${synopsis%% *}") && synopsis=${synopsis#* }; }
		run complete_words "${words[@]}" --
		[ "$status" -eq 0 ]
		want=$(grep -o -e '--[a-z0-9-]*' <<<"$synopsis" | sort -u || true)
		echo "$verb: the completion offers '$output', --help names '$want'"
		[ "$(sort <<<"$output")" = "$want" ]
	done <<<"$verbs"
}

# --- create, list, get, delete -----------------------------------------------

@test "create --crk --gen prints the new key's UUID alone; list and get show it" {
	run --separate-stderr hpcs create --crk --name "crk-$HPCS_TAG" --gen
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
	id=$output
	run hpcs list
	[ "$status" -eq 0 ]
	printf '%s\n' "${lines[@]}" | grep -qxF "$id	crk-$HPCS_TAG"
	run hpcs get --uuid "$id"
	[ "$status" -eq 0 ]
	[ "$(jq -r .name <<<"$output")" = "crk-$HPCS_TAG" ]
	[ "$(jq -r .extractable <<<"$output")" = false ]
}

@test "create --std takes binary key material from stdin; get never prints it" {
	head -c 32 /dev/urandom >"$BATS_TEST_TMPDIR/material"
	id=$(hpcs create --std --name "std-$HPCS_TAG" <"$BATS_TEST_TMPDIR/material")
	run hpcs get --uuid "$id"
	[ "$status" -eq 0 ]
	[ "$(jq -r .extractable <<<"$output")" = true ]
	[ "$(jq -r 'has("payload")' <<<"$output")" = false ]
	# The service holds the very bytes we sent.
	emu_api GET "/api/v2/keys/$id"
	[ "$(jq -r '.resources[0].payload' <<<"$EMU_BODY" | base64 -d | od -An -tx1 -v)" = \
		"$(od -An -tx1 -v <"$BATS_TEST_TMPDIR/material")" ]
	# A standard key cannot wrap.
	run bash -c "echo x | '$HPCS_BIN_DIR/hpcs-for-luks' --config '$HPCS_CONF' wrap --uuid $id"
	[ "$status" -eq 1 ]
	[[ "$output" == *"HTTP 400 KEY_ROOT_REQ_ERR"* ]]
}

@test "create --crk imports root key material from stdin; wrap works with it" {
	head -c 32 /dev/urandom >"$BATS_TEST_TMPDIR/material"
	id=$(hpcs create --crk --name "imp-$HPCS_TAG" <"$BATS_TEST_TMPDIR/material")
	emu_api GET "/api/v2/keys/$id"
	emu_expect 200
	# Imported: the service took our bytes instead of making its own.
	[ "$(jq -r '.resources[0].imported' <<<"$EMU_BODY")" = true ]
	[ "$(jq -r '.resources[0].extractable' <<<"$EMU_BODY")" = false ]
	[ "$(echo imported | hpcs wrap --uuid "$id" | hpcs unwrap --uuid "$id")" = imported ]
	# Material the service refuses (20 bytes) is an error naming the key.
	run bash -c "head -c 20 /dev/zero | '$HPCS_BIN_DIR/hpcs-for-luks' --config '$HPCS_CONF' create --crk --name 'bad-$HPCS_TAG'"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Failed to create key 'bad-$HPCS_TAG': HTTP 400 BAD_BODY_ERR"* ]]
}

@test "create --std --gen: the service makes the material; nothing is read from stdin" {
	# stdin holds bytes that must not become the key.
	printf 'not-the-key-material-0123456789ab' >"$BATS_TEST_TMPDIR/stdin"
	run --separate-stderr hpcs create --std --name "gen-$HPCS_TAG" --gen <"$BATS_TEST_TMPDIR/stdin"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
	emu_api GET "/api/v2/keys/$output"
	emu_expect 200
	[ "$(jq -r '.resources[0].extractable' <<<"$EMU_BODY")" = true ]
	[ "$(jq -r '.resources[0].imported' <<<"$EMU_BODY")" = false ]
	payload=$(jq -r '.resources[0].payload' <<<"$EMU_BODY")
	[ "$(base64 -d <<<"$payload" | wc -c)" -eq 32 ]
	[ "$payload" != "$(base64 -w0 <"$BATS_TEST_TMPDIR/stdin")" ]
}

@test "list returns every key across pages (more than 200)" {
	# 205 keys in one curl run over one connection, then list through the CLI.
	EMU_TOKEN=$(emu_token)
	cfg="$BATS_TEST_TMPDIR/curl.cfg"
	for i in $(seq 1 205); do
		[ "$i" -eq 1 ] || echo next
		printf 'url = "%s/api/v2/keys"\nrequest = "POST"\ndata = "{\\"metadata\\":{\\"collectionType\\":\\"application/vnd.ibm.kms.key+json\\",\\"collectionTotal\\":1},\\"resources\\":[{\\"type\\":\\"application/vnd.ibm.kms.key+json\\",\\"name\\":\\"bulk-%03d\\",\\"extractable\\":false}]}"\nheader = "Authorization: Bearer %s"\nheader = "Bluemix-Instance: %s"\nheader = "Content-Type: application/json"\noutput = "/dev/null"\ncacert = "%s"\nfail\n' \
			"$EMU_URL" "$i" "$EMU_TOKEN" "$EMU_INSTANCE" "$EMU_CA"
	done >"$cfg"
	curl -sS -K "$cfg"
	emu_ctl POST reset-stats >/dev/null
	run hpcs list
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 206 ]
	printf '%s\n' "${lines[@]}" | grep -q $'\tbulk-205$'
	printf '%s\n' "${lines[@]}" | grep -q $'\tbulk-001$'
	[ "$(emu_stat by_op.list)" -eq 2 ]
	# Both pages and the token over one kept-alive connection.
	[ "$(emu_stat iam_requests)" -eq 1 ]
	[ "$(emu_stat connections)" -eq 1 ]
}

@test "delete removes the key; a deleted key answers 410" {
	id=$(hpcs create --crk --name "del-$HPCS_TAG" --gen)
	run hpcs delete --uuid "$id"
	[ "$status" -eq 0 ]
	run hpcs get --uuid "$id"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Failed to get key '$id': HTTP 410"* ]]
	[[ "$output" == *"correlation id "* ]]
}

# --- wrap and unwrap ---------------------------------------------------------

@test "wrap keeps every byte (all 256 values, NUL and newlines) and unwrap returns them" {
	printf "$(printf '\\%03o' $(seq 0 255))" >"$BATS_TEST_TMPDIR/plain"
	printf '\n\n\r\n' >>"$BATS_TEST_TMPDIR/plain"
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/plain")" -eq 260 ]
	emu_ctl POST reset-stats >/dev/null
	hpcs wrap <"$BATS_TEST_TMPDIR/plain" >"$BATS_TEST_TMPDIR/wrapped"
	# The token, the wrap and its verifying unwrap: one connection.
	[ "$(emu_stat requests)" -eq 3 ]
	[ "$(emu_stat by_op.unwrap)" -eq 1 ]
	[ "$(emu_stat connections)" -eq 1 ]
	# The ciphertext and exactly one newline.
	[ "$(wc -l <"$BATS_TEST_TMPDIR/wrapped")" -eq 1 ]
	[ "$(tail -c1 "$BATS_TEST_TMPDIR/wrapped" | od -An -tx1)" = " 0a" ]
	hpcs unwrap <"$BATS_TEST_TMPDIR/wrapped" >"$BATS_TEST_TMPDIR/back"
	cmp "$BATS_TEST_TMPDIR/plain" "$BATS_TEST_TMPDIR/back"
}

@test "wrap checks that the ciphertext unwraps to its input: a mismatch prints nothing" {
	printf 'verify-me' >"$BATS_TEST_TMPDIR/plain"
	# The verifying unwrap answers with other bytes than were wrapped.
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"wrong_plaintext","count":1}]}' >/dev/null
	run --separate-stderr hpcs wrap <"$BATS_TEST_TMPDIR/plain"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == *"The wrapped key does not unwrap to the input (root key '$HPCS_CRK'); nothing was printed"* ]]
	[ "$(emu_stat by_op.wrap)" -eq 1 ]
	[ "$(emu_stat by_op.unwrap)" -eq 1 ]
	# The fault is used up: the same wrap now succeeds.
	run --separate-stderr hpcs wrap <"$BATS_TEST_TMPDIR/plain"
	[ "$status" -eq 0 ]
	[ -n "$output" ]
}

@test "wrap --gen wraps 32 random bytes; two runs differ" {
	hpcs wrap --gen >"$BATS_TEST_TMPDIR/a"
	hpcs wrap --gen >"$BATS_TEST_TMPDIR/b"
	hpcs unwrap <"$BATS_TEST_TMPDIR/a" >"$BATS_TEST_TMPDIR/a.plain"
	hpcs unwrap <"$BATS_TEST_TMPDIR/b" >"$BATS_TEST_TMPDIR/b.plain"
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/a.plain")" -eq 32 ]
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/b.plain")" -eq 32 ]
	run ! cmp -s "$BATS_TEST_TMPDIR/a.plain" "$BATS_TEST_TMPDIR/b.plain"
}

@test "wrap with empty stdin is an error, not a generated key" {
	run hpcs wrap </dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"No plaintext on standard input"* ]]
	[ "$(emu_stat by_op.wrap)" -eq 0 ]
}

@test "--uuid falls back to default_crk_uuid; neither is a clear error" {
	ct=$(echo hello | hpcs wrap)
	[ "$(echo "$ct" | hpcs unwrap --uuid "$HPCS_CRK")" = hello ]
	HPCS_CRK="" hpcs_write_conf
	run bash -c "echo hi | '$HPCS_BIN_DIR/hpcs-for-luks' --config '$HPCS_CONF' wrap"
	[ "$status" -eq 1 ]
	[[ "$output" == *"No root key given: pass --uuid UUID or set default_crk_uuid in [KP] of '$HPCS_CONF'"* ]]
}

@test "unwrap of corrupt ciphertext names the 422 reason; an unknown root key gives 404" {
	run bash -c "echo 'bm90IGEgY2lwaGVydGV4dA==' | '$HPCS_BIN_DIR/hpcs-for-luks' --config '$HPCS_CONF' unwrap"
	[ "$status" -eq 1 ]
	[[ "$output" == *"HTTP 422 UNPROCESSABLE_CIPHERTEXT_ERR"* ]]
	ct=$(echo hello | hpcs wrap)
	run bash -c "echo '$ct' | '$HPCS_BIN_DIR/hpcs-for-luks' --config '$HPCS_CONF' unwrap --uuid 01234567-89ab-cdef-0123-456789abcdef"
	[ "$status" -eq 1 ]
	[[ "$output" == *"root key '01234567-89ab-cdef-0123-456789abcdef'"*"HTTP 404"* ]]
}

# --- process and wipe --------------------------------------------------------

@test "process puts user keys byte for byte and logon keys into @u" {
	printf 'pass\0phrase\n' >"$BATS_TEST_TMPDIR/pass"
	hpcs wrap <"$BATS_TEST_TMPDIR/pass" >"$HPCS_KEYS/user/$HPCS_TAG-pass"
	head -c 64 /dev/urandom >"$BATS_TEST_TMPDIR/dm"
	hpcs wrap <"$BATS_TEST_TMPDIR/dm" >"$HPCS_KEYS/logon/$HPCS_TAG:dm"
	# Not keys: a dot-file, a temporary file, an editor backup, a directory.
	cp "$HPCS_KEYS/user/$HPCS_TAG-pass" "$HPCS_KEYS/user/.$HPCS_TAG-hidden"
	cp "$HPCS_KEYS/user/$HPCS_TAG-pass" "$HPCS_KEYS/user/$HPCS_TAG-x.tmp"
	cp "$HPCS_KEYS/user/$HPCS_TAG-pass" "$HPCS_KEYS/user/$HPCS_TAG-y~"
	mkdir "$HPCS_KEYS/user/$HPCS_TAG-dir"
	emu_ctl POST reset-stats >/dev/null
	run hpcs process
	[ "$status" -eq 0 ]
	[ "$(key_bytes "$HPCS_TAG-pass")" = "$(od -An -tx1 -v <"$BATS_TEST_TMPDIR/pass" | tr -d ' \n')" ]
	key_id logon "$HPCS_TAG:dm"
	# Logon keys cannot be read back from user space, by design.
	run keyctl pipe "$(key_id logon "$HPCS_TAG:dm")"
	[ "$status" -ne 0 ]
	run ! key_id user "$HPCS_TAG-x.tmp"
	run ! key_id user "$HPCS_TAG-y~"
	run ! key_id user ".$HPCS_TAG-hidden"
	[ "$(emu_stat by_op.unwrap)" -eq 2 ]
	[ "$(emu_stat iam_requests)" -eq 1 ]
}

@test "process --uuid unwraps with that root key instead of default_crk_uuid" {
	other=$(hpcs create --crk --name "other-$HPCS_TAG" --gen)
	printf 'other root' | hpcs wrap --uuid "$other" >"$HPCS_KEYS/user/$HPCS_TAG-o"
	# With the default root key the ciphertext does not open.
	run hpcs process
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot unwrap '$HPCS_KEYS/user/$HPCS_TAG-o': HTTP 422"* ]]
	run ! key_id user "$HPCS_TAG-o"
	run hpcs process --uuid "$other"
	[ "$status" -eq 0 ]
	[ "$(key_bytes "$HPCS_TAG-o")" = "$(printf 'other root' | od -An -tx1 -v | tr -d ' \n')" ]
}

@test "process replaces an older key of the same type and description" {
	keyctl padd user "$HPCS_TAG-pass" @u <<<"old value" >/dev/null
	printf 'new value' | hpcs wrap >"$HPCS_KEYS/user/$HPCS_TAG-pass"
	hpcs process
	[ "$(key_bytes "$HPCS_TAG-pass")" = "$(printf 'new value' | od -An -tx1 -v | tr -d ' \n')" ]
	[ "$(keyctl rlist @u | tr ' ' '\n' | while read -r k; do
		keyctl rdescribe "$k"
		echo
	done | grep -c ";$HPCS_TAG-pass$")" -eq 1 ]
}

@test "one corrupt key file among good ones: the good ones land, the bad one is named" {
	for i in 1 2 3; do
		printf 'secret %s' "$i" | hpcs wrap >"$HPCS_KEYS/user/$HPCS_TAG-k$i"
	done
	echo "Z2FyYmFnZQ==" >"$HPCS_KEYS/user/$HPCS_TAG-k2"
	run hpcs process
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot unwrap '$HPCS_KEYS/user/$HPCS_TAG-k2': HTTP 422 UNPROCESSABLE_CIPHERTEXT_ERR"* ]]
	[[ "$output" == *"1 of 3 keys failed"* ]]
	[ "$(key_bytes "$HPCS_TAG-k1")" = "$(printf 'secret 1' | od -An -tx1 -v | tr -d ' \n')" ]
	[ "$(key_bytes "$HPCS_TAG-k3")" = "$(printf 'secret 3' | od -An -tx1 -v | tr -d ' \n')" ]
	run ! key_id user "$HPCS_TAG-k2"
}

@test "a logon key file without a 'prefix:' name is refused with the reason" {
	echo x | hpcs wrap >"$HPCS_KEYS/logon/$HPCS_TAG-noprefix"
	run hpcs process
	[ "$status" -eq 1 ]
	[[ "$output" == *"$HPCS_KEYS/logon/$HPCS_TAG-noprefix': a logon key description needs a 'prefix:'"* ]]
}

@test "wipe revokes the keys except lingering ones, with no network and no API key" {
	echo one | hpcs wrap >"$HPCS_KEYS/user/$HPCS_TAG-gone"
	echo two | hpcs wrap >"$HPCS_KEYS/user/$HPCS_TAG-stay"
	echo three | hpcs wrap >"$HPCS_KEYS/logon/$HPCS_TAG:gone"
	hpcs process
	user_gone=$(key_id user "$HPCS_TAG-gone")
	logon_gone=$(key_id logon "$HPCS_TAG:gone")
	# A second link to both keys (from a session that possesses @u, as
	# linking needs), so that the kernel keeps them once wipe has unlinked
	# them from @u: then we can tell revoked from merely unlinked.
	hold=$(keyctl newring "$HPCS_TAG-hold" @u)
	keyctl session - sh -c 'keyctl link @u @s && keyctl link "$1" "$3" && keyctl link "$2" "$3"' \
		_ "$user_gone" "$logon_gone" "$hold" >/dev/null
	mkdir -p "$HPCS_KEYS/linger/user"
	touch "$HPCS_KEYS/linger/user/$HPCS_TAG-stay"
	emulator_stop
	hpcs_write_conf -KP
	run hpcs wipe
	[ "$status" -eq 0 ]
	[[ "$output" == *"Revoked 2 keys, kept 1 lingering"* ]]
	run ! key_id user "$HPCS_TAG-gone"
	run ! key_id logon "$HPCS_TAG:gone"
	# Revoked, not only unlinked: a holder of the old serial cannot use it.
	for id in "$user_gone" "$logon_gone"; do
		run keyctl rdescribe "$id"
		[ "$status" -ne 0 ]
		[[ "$output" == *"Key has been revoked"* ]]
	done
	[ "$(key_bytes "$HPCS_TAG-stay")" = "$(echo two | od -An -tx1 -v | tr -d ' \n')" ]
}

# --- files written by IBM's tool ---------------------------------------------

@test "a wrapped-key file as IBM's tool writes it (ciphertext + newline) is processed" {
	# IBM's hpcs-for-luks 2.7 writes the KMS ciphertext string and one newline.
	# Make one with the KMS API directly, not through our CLI.
	EMU_TOKEN=$(emu_token)
	emu_api POST "/api/v2/keys/$HPCS_CRK/actions/wrap" "{\"plaintext\":\"$(printf 'ibm-written' | base64)\"}"
	emu_expect 200
	jq -r .ciphertext <<<"$EMU_BODY" >"$HPCS_KEYS/user/$HPCS_TAG-ibm"
	hpcs process
	[ "$(key_bytes "$HPCS_TAG-ibm")" = "$(printf 'ibm-written' | od -An -tx1 -v | tr -d ' \n')" ]
}

# --- configuration -----------------------------------------------------------

@test "missing config values are all reported at once, naming the file" {
	printf '[KP]\nregion =\napi_key =\n' >"$HPCS_CONF"
	run hpcs list
	[ "$status" -eq 1 ]
	[[ "$output" == *"$HPCS_CONF: missing or empty: [KP] region or endpoint_url, [KP] service_instance_id, [KP] api_key"* ]]
	run "$HPCS_BIN_DIR/hpcs-for-luks" --config "$BATS_TEST_TMPDIR/nope.ini" list
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot open '$BATS_TEST_TMPDIR/nope.ini'"* ]]
}

@test "a config readable by others that holds the API key draws a warning" {
	chmod 644 "$HPCS_CONF"
	run hpcs list
	[ "$status" -eq 0 ]
	[[ "$output" == *"holds the API key and is readable by group or others"* ]]
	chmod 600 "$HPCS_CONF"
	run hpcs list
	[[ "$output" != *"readable by group or others"* ]]
}

@test "a config writable by group or others, or owned by another user, is refused" {
	chmod 664 "$HPCS_CONF"
	run hpcs list
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$HPCS_CONF' is writable by group or others (mode 0664)"* ]]
	[[ "$output" == *"chmod go-w '$HPCS_CONF'"* ]]
	chmod 600 "$HPCS_CONF"
	chown nobody "$HPCS_CONF"
	run hpcs list
	[ "$status" -eq 1 ]
	[[ "$output" == *"chown root:root '$HPCS_CONF'"* ]]
	chown root "$HPCS_CONF"
	run hpcs list
	[ "$status" -eq 0 ]
}

@test "comments after values and odd case in keys are understood" {
	sed -i 's/^api_key = \(.*\)$/API_KEY = \1   # the key/; s/^service_instance_id/Service_Instance_ID/' "$HPCS_CONF"
	run hpcs list
	[ "$status" -eq 0 ]
}

@test "config --get prints resolved values, whatever the case of sections and keys (item 10.8)" {
	hpcs_write_conf -KP.endpoint_url
	sed -i 's/^\[KP\]/[kp]/; s/^\[HFL\]/[hfl]/; s/^key_dir/KEY_DIR/' "$HPCS_CONF"
	run --separate-stderr hpcs config --get key_dir --get endpoint_url --get api_key_source --get tpm_blob
	echo "$output$stderr"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$HPCS_KEYS" ]
	[ "${lines[1]}" = "https://us-south.kms.cloud.ibm.com" ] # from the region
	[ "${lines[2]}" = literal ]
	[ "${lines[3]}" = "$HPCS_KEYS/api-key-blob.txt" ]
	[ "${#lines[@]}" -eq 4 ]
	# The API key itself is not a value it prints; an unknown name is a usage error.
	run hpcs config --get api_key
	[ "$status" -eq 2 ]
	[[ "$output" == *"api_key is a secret"* ]]
	refute_secrets "$output" "$EMU_API_KEY"
	run hpcs config --get no_such_thing
	[ "$status" -eq 2 ]
	hpcs_write_conf KP.api_key=TPM
	run hpcs config --get api_key_source
	[ "$output" = tpm ]
}

@test "config --print writes the config back for another place, the API key only when asked" {
	run --separate-stderr hpcs config --print --key-dir /var/lib/hpcs-for-luks \
		--ca-file /etc/hpcs-for-luks/ca.pem --tpm-blob /var/lib/hpcs-for-luks/api-key-blob.txt
	[ "$status" -eq 0 ]
	refute_secrets "$output" "$EMU_API_KEY"
	grep -qx 'key_dir = /var/lib/hpcs-for-luks' <<<"$output"
	grep -qx 'ca_file = /etc/hpcs-for-luks/ca.pem' <<<"$output"
	grep -qx 'tpm_blob = /var/lib/hpcs-for-luks/api-key-blob.txt' <<<"$output"
	run ! grep -q '^api_key' <<<"$output"
	# With the key, the copy works as the original does (here: ca_file kept).
	hpcs config --print --with-api-key --key-dir "$HPCS_KEYS" >"$BATS_TEST_TMPDIR/copy.ini"
	chmod 600 "$BATS_TEST_TMPDIR/copy.ini"
	grep -qx "api_key = $EMU_API_KEY" "$BATS_TEST_TMPDIR/copy.ini"
	run "$HPCS_BIN_DIR/hpcs-for-luks" --config "$BATS_TEST_TMPDIR/copy.ini" list
	[ "$status" -eq 0 ]
	run "$HPCS_BIN_DIR/hpcs-for-luks" --config "$BATS_TEST_TMPDIR/copy.ini" config --get default_crk_uuid
	[ "$output" = "$HPCS_CRK" ]
}

# --- errors from the service -------------------------------------------------

@test "a wrong API key is reported with IAM's reason, and never printed" {
	hpcs_write_conf KP.api_key=wrong-key-ABCDEF123
	run hpcs list
	[ "$status" -eq 1 ]
	[[ "$output" == *"HTTP 400 BXNIM0415E"* ]]
	[[ "$output" != *"wrong-key-ABCDEF123"* ]]
}

@test "--debug never prints the API key, a token or the plaintext" {
	marker=HPCS-DEBUG-PLAINTEXT-$RANDOM$RANDOM
	printf '%s' "$marker" >"$BATS_TEST_TMPDIR/plain"
	all=""
	run --separate-stderr hpcs --debug wrap <"$BATS_TEST_TMPDIR/plain"
	[ "$status" -eq 0 ]
	all+=$output$stderr
	printf '%s\n' "$output" >"$HPCS_KEYS/user/$HPCS_TAG-s"
	# --debug shows each request with its outcome and correlation id.
	[[ "$stderr" == *"POST $EMU_URL/identity/token -> HTTP 200, attempt 1"* ]]
	[[ "$stderr" == *"POST $EMU_URL/api/v2/keys/$HPCS_CRK/actions/unwrap -> HTTP 200 (correlation id "*", attempt 1"* ]]
	run --separate-stderr hpcs --debug process
	[ "$status" -eq 0 ]
	all+=$output$stderr
	# unwrap prints the plaintext on stdout by design; nowhere else.
	run --separate-stderr hpcs --debug unwrap <"$HPCS_KEYS/user/$HPCS_TAG-s"
	[ "$status" -eq 0 ]
	[ "$output" = "$marker" ]
	all+=$stderr
	# A token that expires mid-run: the 401 and the new token, in debug too.
	emu_ctl POST faults '{"rules":[{"op":"list","action":"expire_tokens","count":1}]}' >/dev/null
	run --separate-stderr hpcs --debug list
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"-> HTTP 401"* ]]
	all+=$output$stderr
	mapfile -t tokens < <(emu_tokens)
	[ "${#tokens[@]}" -ge 5 ] # setup, wrap, process, unwrap, list twice
	refute_secrets "$all" "$EMU_API_KEY" "$marker" "$(base64 -w0 <"$BATS_TEST_TMPDIR/plain")" "${tokens[@]}"
}

@test "Retry-After is waited for: two 429s with Retry-After: 2 take at least 4 s" {
	printf 'storm' >"$BATS_TEST_TMPDIR/plain"
	emu_ctl POST faults '{"rules":[{"op":"wrap","action":"status","status":429,"retry_after":2,"count":2}]}' >/dev/null
	start=$(date +%s%N)
	run --separate-stderr hpcs wrap <"$BATS_TEST_TMPDIR/plain"
	took_ms=$((($(date +%s%N) - start) / 1000000))
	echo "took $took_ms ms"
	[ "$status" -eq 0 ]
	# A lower bound only: the client cannot be that fast unless it ignores
	# Retry-After (its own backoff starts at a quarter of a second).
	[ "$took_ms" -ge 4000 ]
	[ "$(emu_stat by_op.wrap)" -eq 3 ]
	[ "$(hpcs unwrap <<<"$output")" = storm ]
}

@test "500 and 503 are retried; 501 is not" {
	emu_ctl POST faults '{"rules":[{"op":"list","action":"status","status":503,"count":2},{"op":"list","action":"status","status":500,"count":1}]}' >/dev/null
	run hpcs list
	[ "$status" -eq 0 ]
	[ "$(emu_stat by_op.list)" -eq 4 ]
	emu_ctl POST reset-stats >/dev/null
	emu_ctl POST faults '{"rules":[{"op":"list","action":"status","status":501,"count":-1}]}' >/dev/null
	run hpcs list
	[ "$status" -eq 1 ]
	[[ "$output" == *"HTTP 501"* ]]
	[ "$(emu_stat by_op.list)" -eq 1 ]
}

@test "dropped connections and a garbage body" {
	emu_ctl POST faults '{"rules":[{"op":"list","action":"drop","count":2}]}' >/dev/null
	run hpcs list
	[ "$status" -eq 0 ]
	emu_ctl POST faults '{"rules":[{"op":"list","action":"garbage","count":1}]}' >/dev/null
	run hpcs list
	[ "$status" -eq 1 ]
	[[ "$output" == *"list: unusable answer (HTTP 200, "*" bytes of text/html; charset=utf-8): not JSON"* ]]
}

@test "an unusable 2xx answer is described by length and type, never by its body (item 10.2)" {
	marker=HPCS-ANSWER-PLAINTEXT-$RANDOM$RANDOM
	b64=$(printf '%s' "$marker" | base64 -w0)
	# wrap: a server that sends the request back (the plaintext) with a 200.
	emu_ctl POST faults '{"rules":[{"op":"wrap","action":"echo","count":1}]}' >/dev/null
	run hpcs wrap < <(printf '%s' "$marker")
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"wrap: unusable answer (HTTP 200, $((${#b64} + 16)) bytes of application/vnd.ibm.kms.key_action_wrap+json): no ciphertext"* ]]
	all=$output
	# unwrap: the plaintext is there, under another name.
	ct=$(printf '%s' "$marker" | hpcs wrap)
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"misnamed","count":1}]}' >/dev/null
	run hpcs unwrap <<<"$ct"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"unwrap: unusable answer (HTTP 200, "*" bytes of application/json): no plaintext"* ]]
	all+=$output
	# IAM: the token is there, under another name.
	emu_ctl POST faults '{"rules":[{"op":"iam","action":"misnamed","count":1}]}' >/dev/null
	run hpcs list
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot get an IAM token from $EMU_URL: unusable answer (HTTP 200, "*" bytes of application/json): no access_token"* ]]
	all+=$output
	# create: the answer holds no id.
	emu_ctl POST faults '{"rules":[{"op":"create","action":"misnamed","count":1}]}' >/dev/null
	run hpcs create --std --name "std-$HPCS_TAG" < <(printf '%s' "$marker")
	[ "$status" -eq 1 ]
	[[ "$output" == *"create: unusable answer (HTTP 2"*" bytes of application/json): no resources[0].id"* ]]
	all+=$output
	mapfile -t tokens < <(emu_tokens)
	refute_secrets "$all" "$marker" "$b64" "$EMU_API_KEY" "${tokens[@]}"
}

@test "a token that expires between IAM and the request is replaced once, not forever" {
	emu_ctl POST reset-stats >/dev/null
	emu_ctl POST faults '{"rules":[{"op":"list","action":"expire_tokens","count":1}]}' >/dev/null
	run hpcs list
	[ "$status" -eq 0 ]
	[ "$(emu_stat iam_requests)" -eq 2 ]
	[ "$(emu_stat by_op.list)" -eq 2 ]
	# Every request meets an expired token: one new token, then the 401 is the answer.
	emu_ctl POST reset-stats >/dev/null
	emu_ctl POST faults '{"rules":[{"op":"list","action":"expire_tokens","count":-1}]}' >/dev/null
	run hpcs list
	[ "$status" -eq 1 ]
	[[ "$output" == *"Failed to list keys: HTTP 401"* ]]
	[ "$(emu_stat iam_requests)" -eq 2 ]
	[ "$(emu_stat by_op.list)" -eq 2 ]
}

@test "server down: a clear error within the deadline" {
	emulator_stop
	start=$(date +%s)
	run hpcs --timeout 5 list
	took=$(($(date +%s) - start))
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot reach localhost:$EMU_PORT"* ]]
	[ "$took" -le 8 ]
}

@test "TLS is verified: a CA that did not sign the server is refused" {
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=other -days 1 \
		-keyout "$BATS_TEST_TMPDIR/o.key" -out "$BATS_TEST_TMPDIR/o.pem" 2>/dev/null
	hpcs_write_conf KP.ca_file="$BATS_TEST_TMPDIR/o.pem"
	emu_ctl POST reset-stats >/dev/null
	run hpcs list
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot reach localhost:$EMU_PORT"* ]]
	[[ "$output" == *"certificate"* ]]
	[ "$(emu_stat requests)" -eq 0 ]
}

@test "http:// is refused for the KMS and the IAM endpoint, before any request" {
	emu_ctl POST reset-stats >/dev/null
	for key in endpoint_url iam_endpoint_url; do
		hpcs_write_conf "KP.$key=http://localhost:$EMU_PORT"
		run hpcs list
		[ "$status" -eq 1 ]
		[[ "$output" == *"$HPCS_CONF: 'http://localhost:$EMU_PORT' is not an https:// URL"* ]]
	done
	[ "$(emu_stat requests)" -eq 0 ]
}
