#!/usr/bin/env bats
# api_key = TPM: the Key Protect API key sealed to a TPM 1.2.
#
# A software TPM (swtpm, TPM 1.2 mode, loopback TCP) with trousers' tcsd in
# front of it comes from tests/tpm/tpm-env, once for the file; the Key
# Protect emulator from helpers.bash, once per test. Blobs are made both by
# tpm-tools' tpm_sealdata (the seed's README steps) and by our seal-api-key.
#
# Needs root, swtpm, swtpm_setup, tcsd, tpm_sealdata, tpm_unsealdata, cc with
# libtspi-dev (to extend a PCR); skips with the reason when one is missing.
# Binaries from $HPCS_BIN_DIR (default: build/ of this tree).

load helpers

TPM_ENV=$BATS_TEST_DIRNAME/../tpm/tpm-env

_tpm_missing() {
	local c
	[ "$(id -u)" = 0 ] || {
		echo "needs root (tcsd)"
		return
	}
	for c in swtpm swtpm_setup tcsd tpm_takeownership tpm_sealdata tpm_unsealdata cc ss; do
		command -v "$c" >/dev/null || {
			echo "needs $c (swtpm, swtpm-tools, trousers, tpm-tools, gcc, iproute2)"
			return
		}
	done
	[ -e /usr/include/trousers/tss.h ] || echo "needs libtspi-dev (to extend PCRs)"
}

setup_file() {
	: "${HPCS_BIN_DIR:=$BATS_TEST_DIRNAME/../../build}"
	export HPCS_BIN_DIR
	TPM_SKIP=$(_tpm_missing)
	if [ -z "$TPM_SKIP" ] &&
		"$HPCS_BIN_DIR/hpcs-for-luks" --config /dev/null seal-api-key </dev/null 2>&1 |
		grep -q 'no TPM support'; then
		TPM_SKIP="hpcs-for-luks was built without TPM support (HPCS_TPM=OFF)"
	fi
	export TPM_SKIP
	[ -z "$TPM_SKIP" ] || return 0
	local env
	env=$("$TPM_ENV" start) || return 1
	eval "$env" # exports TSS_TCSD_HOSTNAME, TSS_TCSD_PORT, HPCS_TPM_DIR
}

teardown_file() {
	if [ -n "${HPCS_TPM_DIR:-}" ]; then "$TPM_ENV" stop "$HPCS_TPM_DIR"; fi
}

setup() {
	[ -z "$TPM_SKIP" ] || skip "$TPM_SKIP"
	[ -x "$HPCS_BIN_DIR/hpcs-for-luks" ] || {
		echo "no hpcs-for-luks in HPCS_BIN_DIR=$HPCS_BIN_DIR" >&2
		return 1
	}
	HFL=$HPCS_BIN_DIR/hpcs-for-luks
	"$TPM_ENV" start-tcsd "$HPCS_TPM_DIR" # a failed test may have left it down
	UNOWNED_TPM_DIR=""
	hpcs_setup # the emulator, a root key, $HPCS_CONF, $HPCS_KEYS, $HPCS_TAG
	KEY_DIR=$HPCS_KEYS
	BLOB=$KEY_DIR/api-key-blob.txt
	CONF=$HPCS_CONF
	KEYRING_DESC=$HPCS_TAG-tpm
	write_config
}

teardown() {
	if [ -n "${UNOWNED_TPM_DIR:-}" ]; then
		cat "$UNOWNED_TPM_DIR/tcsd.log" # shown if the test failed
		"$TPM_ENV" stop "$UNOWNED_TPM_DIR"
	fi
	hpcs_teardown
}

# write_config [SECTION.KEY=VALUE]...: the tests' config with api_key = TPM.
write_config() {
	hpcs_write_conf KP.api_key=TPM "$@"
}

# The seed's README steps: the key from `echo` (so with a newline), sealed by
# tpm-tools to PCRs 4 and 5. The key goes in on stdin.
seal_with_tpm_tools() {
	local out=${2:-$BLOB}
	echo "$1" | tpm_sealdata -z -p 4 -p 5 -o "$out"
	[ -s "$out" ]
}

# run_hfl ARGS...: runs hpcs-for-luks with our config under `run`; its
# output is echoed so that a failing test shows it.
run_hfl() {
	run "$HFL" --config "$CONF" "$@"
	printf '%s\n' "$output"
}

# Fails if the API key appears in $output.
refute_api_key_in_output() {
	if [[ "$output" == *"$EMU_API_KEY"* ]]; then
		echo "the API key appears in the output" >&2
		return 1
	fi
}

@test "list authenticates with the API key unsealed from a tpm_sealdata blob" {
	local id
	id=$(emu_create_key tpm-bats-root true)
	seal_with_tpm_tools "$EMU_API_KEY"

	run_hfl list
	[ "$status" -eq 0 ]
	[[ "$output" == *"$id"*tpm-bats-root* ]]
	refute_api_key_in_output
}

@test "a blob holding a wrong API key is refused by the KMS (the check is real)" {
	seal_with_tpm_tools "not-the-right-api-key-000"
	run_hfl list
	[ "$status" -eq 1 ]
	# IAM's answer to an unknown API key, not any failure to get a token.
	[[ "$output" == *"cannot get an IAM token from $EMU_URL: HTTP 400 BXNIM0415E"* ]]
	[[ "$output" != *not-the-right-api-key-000* ]]
}

@test "[HFL] tpm_blob names another blob file" {
	local other=$BATS_TEST_TMPDIR/elsewhere.blob
	seal_with_tpm_tools "$EMU_API_KEY" "$other"
	write_config "HFL.tpm_blob=$other"
	[ ! -e "$BLOB" ]
	run_hfl list
	[ "$status" -eq 0 ]
	refute_api_key_in_output
}

@test "seal-api-key writes a 0600 blob that tpm_unsealdata reads and list uses" {
	run_hfl seal-api-key --tpm1 <<<"$EMU_API_KEY"
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	[ -f "$BLOB" ]
	[ "$(stat -c %a "$BLOB")" = 600 ]
	head -n 1 "$BLOB" | grep -qx -- '-----BEGIN TSS-----'
	run grep -qF -- "$EMU_API_KEY" "$BLOB"
	[ "$status" -eq 1 ]

	# tpm-tools reads our blob: same format, same secrets, PCRs 4 and 5.
	local unsealed
	unsealed=$(tpm_unsealdata -z -i "$BLOB" -o /dev/stdout)
	[ "$unsealed" = "$EMU_API_KEY" ]

	run_hfl list
	[ "$status" -eq 0 ]
	refute_api_key_in_output
}

@test "seal-api-key --pcr and --output: only the chosen PCRs bind the blob" {
	local out=$BATS_TEST_TMPDIR/pcr7.blob
	run_hfl seal-api-key --tpm1 --pcr 7 --output "$out" <<<"$EMU_API_KEY"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$out")" = 600 ]
	[ ! -e "$BLOB" ]
	# PCR 4 is not in this blob: extending it changes nothing.
	"$TPM_ENV" extend "$HPCS_TPM_DIR" 4 >/dev/null
	write_config "HFL.tpm_blob=$out"
	run_hfl list
	[ "$status" -eq 0 ]
	# PCR 7 is: extending it breaks the blob.
	"$TPM_ENV" extend "$HPCS_TPM_DIR" 7 >/dev/null
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *TPM_E_WRONGPCRVAL* ]]
}

@test "seal-api-key refuses an empty key and a PCR out of range" {
	run_hfl seal-api-key --tpm1 </dev/null
	[ "$status" -ne 0 ]
	[[ "$output" == *empty* ]]
	[ ! -e "$BLOB" ]
	run_hfl seal-api-key --tpm1 --pcr 24 <<<"$EMU_API_KEY"
	[ "$status" -eq 2 ]
	[[ "$output" == *"seal-api-key: --pcr takes a number from 0 to 23"* ]]
	[ ! -e "$BLOB" ]
	refute_api_key_in_output
}

@test "after a sealed PCR is extended, list fails with the PCR message; resealing fixes it" {
	seal_with_tpm_tools "$EMU_API_KEY"
	run_hfl list
	[ "$status" -eq 0 ]

	"$TPM_ENV" extend "$HPCS_TPM_DIR" 5 >/dev/null # as a changed boot loader would

	emu_ctl POST reset-stats >/dev/null
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *TPM_E_WRONGPCRVAL* ]]
	[[ "$output" == *"changed since sealing"* ]]
	[[ "$output" == *"hpcs-for-luks seal-api-key"* ]]
	[[ "$output" == *"$BLOB"* ]]
	refute_api_key_in_output
	# No fallback: nothing reached the KMS.
	[ "$(emu_stat by_op.iam)" = 0 ]
	[ "$(emu_stat by_op.list)" = 0 ]

	# The remedy the message gives.
	run_hfl seal-api-key --tpm1 <<<"$EMU_API_KEY"
	[ "$status" -eq 0 ]
	run_hfl list
	[ "$status" -eq 0 ]
}

@test "tcsd down: list and seal-api-key say which tcsd and that it must run" {
	seal_with_tpm_tools "$EMU_API_KEY"
	"$TPM_ENV" stop-tcsd "$HPCS_TPM_DIR"

	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot reach tcsd at $TSS_TCSD_HOSTNAME:$TSS_TCSD_PORT"* ]]
	[[ "$output" == *"must be running"* ]]
	refute_api_key_in_output

	run_hfl seal-api-key --tpm1 --output "$BATS_TEST_TMPDIR/new.blob" <<<"$EMU_API_KEY"
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot reach tcsd"* ]]
	[ ! -e "$BATS_TEST_TMPDIR/new.blob" ]
	refute_api_key_in_output

	"$TPM_ENV" start-tcsd "$HPCS_TPM_DIR"
	run_hfl list
	[ "$status" -eq 0 ]
}

@test "a missing or corrupt blob gives a clear error naming the file and the bad part" {
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"$BLOB"* ]]

	seal_with_tpm_tools "$EMU_API_KEY"
	local good
	good=$(cat "$BLOB")

	head -n 5 <<<"$good" >"$BLOB" # cut inside the TSS KEY section
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"TSS KEY section"* ]]

	printf '%s\n' "${good/Symmetric Key: AES-256-CBC/Symmetric Key: DES}" >"$BLOB"
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"ENC KEY section"* ]]

	# Drop the encrypted data.
	sed '/^-----ENC DAT-----$/,/^-----END TSS-----$/{/^-----/!d}' <<<"$good" >"$BLOB"
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"ENC DAT section"* ]]

	printf 'just-an-api-key\n' >"$BLOB"
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"BEGIN TSS"* ]]
	[[ "$output" != *just-an-api-key* ]]
}

@test "TPM not owned: the error says to take ownership" {
	seal_with_tpm_tools "$EMU_API_KEY" # on the owned TPM
	local env
	env=$("$TPM_ENV" start --unowned) || return 1
	UNOWNED_TPM_DIR=$(sed -n 's/^export HPCS_TPM_DIR=//p' <<<"$env")
	local port
	port=$(sed -n 's/^export TSS_TCSD_PORT=//p' <<<"$env")
	[ -n "$port" ]
	TSS_TCSD_PORT=$port run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"not owned"* ]]
	[[ "$output" == *"tpm_takeownership -y -z"* ]]
	refute_api_key_in_output
}

@test "hpcs-unlock unwraps into the keyring with the API key from the TPM" {
	command -v keyctl >/dev/null || skip "needs keyctl (keyutils)"
	[ -x "$HPCS_BIN_DIR/hpcs-unlock" ] || {
		echo "no hpcs-unlock in HPCS_BIN_DIR=$HPCS_BIN_DIR" >&2
		return 1
	}
	local secret
	seal_with_tpm_tools "$EMU_API_KEY"
	secret=passphrase-$RANDOM-$RANDOM
	run bash -c 'printf %s "$1" | "$2" --config "$3" wrap' _ "$secret" "$HFL" "$CONF"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$KEY_DIR/user/$KEYRING_DESC"

	printf 'quiet\n' >"$BATS_TEST_TMPDIR/cmdline"
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30
	echo "hpcs-unlock: $output" # shown if a check below fails
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	[[ "$output" != *"$secret"* ]]
	local id
	id=$(keyctl search @u user "$KEYRING_DESC")
	[ "$(keyctl pipe "$id")" = "$secret" ]
}

@test "hpcs-unlock waits for a tcsd that starts late, within its deadline (item 10.7)" {
	command -v keyctl >/dev/null || skip "needs keyctl (keyutils)"
	seal_with_tpm_tools "$EMU_API_KEY"
	echo x | "$HFL" --config "$CONF" wrap >"$KEY_DIR/user/$KEYRING_DESC"
	"$TPM_ENV" stop-tcsd "$HPCS_TPM_DIR"
	printf 'quiet\n' >"$BATS_TEST_TMPDIR/cmdline"
	"$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30 >"$BATS_TEST_TMPDIR/out" 2>&1 3>&- &
	local pid=$! rc=0
	sleep 3
	"$TPM_ENV" start-tcsd "$HPCS_TPM_DIR"
	wait "$pid" || rc=$?
	cat "$BATS_TEST_TMPDIR/out"
	[ "$rc" -eq 0 ]
	[ "$(keyctl pipe "$(keyctl search @u user "$KEYRING_DESC")")" = x ]
	# Without tcsd until the deadline: it gives up then, naming tcsd.
	"$TPM_ENV" stop-tcsd "$HPCS_TPM_DIR"
	local start=$SECONDS
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 4
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"cannot reach tcsd at $TSS_TCSD_HOSTNAME:$TSS_TCSD_PORT"* ]]
	[ $((SECONDS - start)) -ge 3 ]
	[ $((SECONDS - start)) -le 8 ]
}

@test "the API key is in no output, even with --debug" {
	seal_with_tpm_tools "$EMU_API_KEY"
	run "$HFL" --debug --config "$CONF" list
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	run "$HFL" --debug --config "$CONF" seal-api-key --tpm1 --output "$BATS_TEST_TMPDIR/d.blob" <<<"$EMU_API_KEY"
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	"$TPM_ENV" extend "$HPCS_TPM_DIR" 4 >/dev/null
	run "$HFL" --debug --config "$CONF" list
	[ "$status" -ne 0 ]
	refute_api_key_in_output
	# Nor in what tcsd logged.
	run grep -qF -- "$EMU_API_KEY" "$HPCS_TPM_DIR/tcsd.log"
	[ "$status" -eq 1 ]
}

@test "the static hpcs-unlock (libtspi over the mbedTLS shim, no OpenSSL) unseals the API key" {
	local static=${HPCS_STATIC_BIN:-$BATS_TEST_DIRNAME/../../build-static/hpcs-unlock}
	[ -x "$static" ] || skip "no static hpcs-unlock at $static (set HPCS_STATIC_BIN)"
	command -v keyctl >/dev/null || skip "needs keyctl (keyutils)"
	run file -L "$static"
	[[ "$output" == *"statically linked"* ]]
	# OpenSSL's libcrypto is not linked in (it would bring openssl.cnf handling
	# and its version string).
	run grep -caE 'openssl\.cnf|OpenSSL [0-9]' "$static"
	[ "$output" = 0 ]

	local secret id
	seal_with_tpm_tools "$EMU_API_KEY"
	secret=passphrase-$RANDOM-$RANDOM
	run bash -c 'printf %s "$1" | "$2" --config "$3" wrap' _ "$secret" "$HFL" "$CONF"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$KEY_DIR/user/$KEYRING_DESC"
	printf 'quiet\n' >"$BATS_TEST_TMPDIR/cmdline"

	# As in the initramfs: nothing in the environment but where tcsd is.
	run env -i HPCS_TPM_LOCK_RECORD="$HPCS_TPM_LOCK_RECORD" TSS_TCSD_HOSTNAME="$TSS_TCSD_HOSTNAME" TSS_TCSD_PORT="$TSS_TCSD_PORT" \
		"$static" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30
	echo "static hpcs-unlock: $output" # shown if a check below fails
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	[[ "$output" != *"$secret"* ]]
	id=$(keyctl search @u user "$KEYRING_DESC")
	[ "$(keyctl pipe "$id")" = "$secret" ]
	keyctl unlink "$id" @u >/dev/null

	# The unseal is the TPM's: with a sealed PCR changed it refuses.
	"$TPM_ENV" extend "$HPCS_TPM_DIR" 5 >/dev/null
	run env -i HPCS_TPM_LOCK_RECORD="$HPCS_TPM_LOCK_RECORD" TSS_TCSD_HOSTNAME="$TSS_TCSD_HOSTNAME" TSS_TCSD_PORT="$TSS_TCSD_PORT" \
		"$static" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30
	echo "static hpcs-unlock: $output"
	[ "$status" -ne 0 ]
	[[ "$output" == *TPM_E_WRONGPCRVAL* ]]
	refute_api_key_in_output
	run keyctl search @u user "$KEYRING_DESC"
	[ "$status" -ne 0 ]
}

@test "report: the TPM 1.2 blob unseals now; after a sealed PCR is extended it is a failure (exit 1)" {
	command -v lsinitrd >/dev/null || skip "needs lsinitrd (dracut-core)"
	seal_with_tpm_tools "$EMU_API_KEY"
	# (tpm_sealdata leaves it 0644, which report would name)
	chmod 600 "$BLOB"
	: >"$BATS_TEST_TMPDIR/crypttab"
	hpcs_make_initrd "$BATS_TEST_TMPDIR/initrd.img" "$CONF" "$KEY_DIR" "$BLOB"
	local report=(report --crypttab "$BATS_TEST_TMPDIR/crypttab"
		--initramfs "$BATS_TEST_TMPDIR/initrd.img")
	run_hfl "${report[@]}"
	[ "$status" -eq 0 ]
	[[ "$output" == *"the API key unseals from the TPM 1.2 with the PCR values of now"* ]]

	"$TPM_ENV" extend "$HPCS_TPM_DIR" 5 >/dev/null # as a changed boot loader would
	run_hfl "${report[@]}" --json
	[ "$status" -eq 1 ]
	refute_api_key_in_output
	[ "$(jq -r .tpm.kind <<<"$output")" = "TPM 1.2" ]
	[ "$(jq -r .tpm.unseals <<<"$output")" = false ]
	[[ "$(jq -r '.findings[] | select(.check == "tpm") | .message' <<<"$output")" == *"changed since sealing"* ]]
}
