#!/usr/bin/env bats
# api_key = TPM with a TPM 2.0: the Key Protect API key sealed through
# tpm2-tss's ESAPI, no daemon.
#
# A software TPM 2.0 (swtpm --tpm2, loopback TCP) comes from
# tests/tpm/tpm-env start --tpm2, once for the file; the Key Protect emulator
# from helpers.bash, once per test. tpm2-tools check our work independently
# (policy digest, PCR extend and reset) on the same swtpm.
#
# Needs root (keyring), swtpm and tpm2-tools; skips with the reason when one
# is missing. Binaries from $HPCS_BIN_DIR (default: build/ of this tree).

load helpers

TPM_ENV=$BATS_TEST_DIRNAME/../tpm/tpm-env

_tpm2_missing() {
	local c
	for c in swtpm tpm2_pcrextend tpm2_pcrreset tpm2_policypcr tpm2_startauthsession ss python3; do
		command -v "$c" >/dev/null || {
			echo "needs $c (swtpm, tpm2-tools, iproute2, python3)"
			return
		}
	done
}

setup_file() {
	: "${HPCS_BIN_DIR:=$BATS_TEST_DIRNAME/../../build}"
	export HPCS_BIN_DIR
	TPM2_SKIP=$(_tpm2_missing)
	if [ -z "$TPM2_SKIP" ] &&
		"$HPCS_BIN_DIR/hpcs-for-luks" --config /dev/null seal-api-key </dev/null 2>&1 |
		grep -q 'no TPM support'; then
		TPM2_SKIP="hpcs-for-luks was built without TPM support (HPCS_TPM=OFF)"
	fi
	export TPM2_SKIP
	[ -z "$TPM2_SKIP" ] || return 0
	local env
	env=$("$TPM_ENV" start --tpm2) || return 1
	eval "$env" # exports HPCS_TPM2_TCTI, TPM2TOOLS_TCTI, HPCS_TPM2_DIR
	# The TCTI as the config states it (tests that use the config, not the
	# environment, unset HPCS_TPM2_TCTI).
	export TCTI=$HPCS_TPM2_TCTI
}

teardown_file() {
	if [ -n "${HPCS_TPM2_DIR:-}" ]; then "$TPM_ENV" stop "$HPCS_TPM2_DIR"; fi
}

setup() {
	[ -z "$TPM2_SKIP" ] || skip "$TPM2_SKIP"
	HFL=$HPCS_BIN_DIR/hpcs-for-luks
	[ -x "$HFL" ] || {
		echo "no hpcs-for-luks in HPCS_BIN_DIR=$HPCS_BIN_DIR" >&2
		return 1
	}
	# A PCR that an earlier test extended.
	tpm2_pcrreset 16 >/dev/null 2>&1
	KEY_DIR=$BATS_TEST_TMPDIR/keys
	mkdir -p "$KEY_DIR/user" "$KEY_DIR/logon"
	BLOB=$KEY_DIR/api-key-blob.txt
	CONF=$BATS_TEST_TMPDIR/hpcs-for-luks.ini
	KEYRING_DESC=""
	CRK=""
	HANG_PID=""
	emulator_start
	write_config
}

teardown() {
	emulator_stop
	if [ -n "${HANG_PID:-}" ]; then kill "$HANG_PID" 2>/dev/null || true; fi
	if [ -n "${KEYRING_DESC:-}" ]; then hpcs_keyring_clean "$KEYRING_DESC" >/dev/null; fi
	return 0
}

# write_config [TCTI]: the suites' config (hpcs_write_conf) with api_key =
# TPM, KEY_DIR, default_crk_uuid = $CRK, and [HFL] tpm2_tcti = TCTI if given.
write_config() {
	local -a set=(KP.api_key=TPM)
	if [ -n "${1:-}" ]; then set+=("HFL.tpm2_tcti=$1"); fi
	HPCS_CONF=$CONF HPCS_KEYS=$KEY_DIR HPCS_CRK=$CRK hpcs_write_conf "${set[@]}"
}

run_hfl() {
	run "$HFL" --config "$CONF" "$@"
	printf '%s\n' "$output"
}

refute_api_key_in_output() {
	if [[ "$output" == *"$EMU_API_KEY"* ]]; then
		echo "the API key appears in the output" >&2
		return 1
	fi
}

# seal [ARGS...]: seal-api-key with the emulator's API key on stdin.
seal() {
	run_hfl seal-api-key "$@" <<<"$EMU_API_KEY"
	[ "$status" -eq 0 ]
	refute_api_key_in_output
}

# The sealed object's policy digest (hex): bytes 12..43 of its TPM2B_PUBLIC
# (size, type, nameAlg, attributes, then the policy's size and 32 bytes).
blob_policy() {
	sed -n 's/^public: //p' "$1" | base64 -d | od -An -tx1 -j 12 -N 32 | tr -d ' \n'
}

# What tpm2-tools computes for the same PCRs at their current values.
tools_policy() {
	local s=$BATS_TEST_TMPDIR/s.ctx p=$BATS_TEST_TMPDIR/p.bin
	tpm2_startauthsession -S "$s" >/dev/null
	tpm2_policypcr -S "$s" -l "sha256:$1" -L "$p" >/dev/null
	tpm2_flushcontext "$s" >/dev/null
	od -An -tx1 "$p" | tr -d ' \n'
}

# A loopback port nothing listens on.
unused_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

extend16() {
	tpm2_pcrextend 16:sha256=00000000000000000000000000000000000000000000000000000000000000b2
}

@test "seal-api-key --tpm2: a 0600 self-describing blob, default PCRs 7, 8 and 15, and list uses it" {
	seal --tpm2
	[[ "$output" == *"Sealed the API key to the TPM 2.0 (PCR 7, 8, 15)"* ]]
	[[ "$output" != *"leave out PCR 15"* ]]
	# 7 and 8 cover GRUB's command line: only the initramfs warning remains.
	[[ "$output" != *"do not cover the kernel command line"* ]]
	[[ "$output" == *"do not cover the initramfs"* ]]
	[ "$(stat -c %a "$BLOB")" = 600 ]
	[ "$(head -n 1 "$BLOB")" = "-----BEGIN HPCS TPM2 SEALED DATA-----" ]
	grep -qx 'pcr-bank: sha256' "$BLOB"
	grep -qx 'pcrs: 7 8 15' "$BLOB"
	grep -qE '^pcr 8: [0-9a-f]{64}$' "$BLOB"
	run grep -qF -- "$EMU_API_KEY" "$BLOB"
	[ "$status" -eq 1 ]

	run_hfl list
	[ "$status" -eq 0 ]
	refute_api_key_in_output
}

@test "the policy digest is the one tpm2_policypcr computes for the same PCRs" {
	extend16 # a PCR value other than zero
	seal --tpm2 --pcr 0 --pcr 7 --pcr 16
	local ours theirs
	ours=$(blob_policy "$BLOB")
	theirs=$(tools_policy 0,7,16)
	echo "ours $ours, tpm2_policypcr $theirs"
	[ "${#ours}" -eq 64 ]
	[ "$ours" = "$theirs" ]
	# And it does depend on the PCRs: another set gives another digest.
	[ "$ours" != "$(tools_policy 0,7)" ]
}

@test "an object sealed to PCR 16 stops unsealing after tpm2_pcrextend 16; the error names it" {
	local id
	id=$(emu_create_key tpm2-bats-root true)
	seal --tpm2 --pcr 7 --pcr 16
	run_hfl list
	[ "$status" -eq 0 ]
	[[ "$output" == *"$id"* ]]

	extend16
	emu_ctl POST reset-stats >/dev/null
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"PCR 16 (SHA-256) changed since sealing"* ]]
	[[ "$output" != *"PCR 7 "* ]]
	[[ "$output" == *"hpcs-for-luks seal-api-key --tpm2 --pcr 7 --pcr 16"* ]]
	[[ "$output" == *"$BLOB"* ]]
	refute_api_key_in_output
	# Nothing reached the KMS.
	[ "$(emu_stat by_op.iam)" = 0 ]

	# The remedy the message gives: reseal in the new state.
	seal --tpm2 --pcr 7 --pcr 16
	run_hfl list
	[ "$status" -eq 0 ]
}

@test "without --tpm1/--tpm2 a configured TCTI means TPM 2.0; --tpm1 with --tpm2 is misuse" {
	seal
	[ "$(head -n 1 "$BLOB")" = "-----BEGIN HPCS TPM2 SEALED DATA-----" ]
	run_hfl seal-api-key --tpm1 --tpm2 <<<"$EMU_API_KEY"
	[ "$status" -eq 2 ]
	[[ "$output" == *"not both"* ]]
}

@test "[HFL] tpm2_tcti names the TPM; HPCS_TPM2_TCTI beats it" {
	write_config "$TCTI"
	HPCS_TPM2_TCTI='' seal --tpm2 --pcr 16
	HPCS_TPM2_TCTI='' run_hfl list
	[ "$status" -eq 0 ]

	local dead
	dead="swtpm:host=127.0.0.1,port=$(unused_port)"
	write_config "$dead"
	run_hfl list # the environment's TCTI wins
	[ "$status" -eq 0 ]
	HPCS_TPM2_TCTI='' run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot reach the TPM 2.0 at '$dead'"* ]]
}

@test "seal-api-key warns when the PCRs leave the command line open" {
	seal --tpm2 --pcr 4 --pcr 5
	[[ "$output" == *"do not cover the kernel command line (with GRUB: PCR 8; with a systemd-stub UKI: PCRs 11 and 12)"* ]]
	[[ "$output" == *rd.break* ]]
	seal --tpm2 --pcr 7 --pcr 11 --pcr 12
	[[ "$output" != *"do not cover"* ]]
	[[ "$output" == *"carries this blob"* ]]
}

@test "a TPM 1.2 blob where the TPM is a TPM 2.0 (and no tcsd): the error says to reseal with --tpm2" {
	cat >"$BLOB" <<-'EOF'
		-----BEGIN TSS-----
		-----TSS KEY-----
		AQEAAAARAAAABAEAAAABAAMAAQAAAAwAAAgAAAAAAgAAAAAAAAAAAAABAL6/ynfB
		sNdEY/UxA9WpU1xU0yIPa+vTxlS3/SLd2cHQOGE9MKvImBMQ2kknCt7OYS5O2rPo
		HbegIaM3LxRqKoVUDowYQ0w5odneod/qKFQClcv61/yNlkNtSW0ZiKigVMUuup+F
		OKzRg3cCBNmVWRvwIsmSNpC43HpIRvr1ydEtKnSlSl50/XgZ6alTbwu/I1CRMmL8
		1Kie7qIknlnwKiX6ttNlZymVhWv2y0I1R3GD76A7sIwVyq4fgxOBbH+gJkr4RZ4z
		ey/qLvKYECKpkI4jcALFqmhDQKtxhOaNI7BB2LHXsOnt9hg2ErwX8bOJnOAtKSk0
		T4PymJdptWGbUtkAAAEAf+ZCLLfORDG1fiCFqz33QF/uoWvqIq50gzSGoIZng19s
		108FrnaeXf19N3grSkZ2QjpUwtgkoss+xK9OAXR83bt6kSNAEH22S4cEGodzsjEX
		D9HDLCEMgPs8tUGgh2rr1+ftqY0H58ZovZxaEeZ45UG6uu8TmXRByEK3sQv5Ypx+
		Bl3OtGSbDcFMIUqHP5nbfIPSVK7li6yCFonqifPoV74Ion8+leIW2x6a+VtbG6cr
		HD3O7DdNU/dausnCQp5j87E0R6cDwZxSlkVZcZtLTuRN+RcVqKQXDNbPcUq9mcX9
		20lovUQZSPDccKaiC/6MZfmNzrm5cr9FfWtabCyP0w==
		-----ENC KEY-----
		Symmetric Key: AES-256-CBC
		AQEAAAAAACwAAjAAz3BA34xL8/Zzz1QFXQe+mKmChdLPcEDfjEvz9nPPVAVdB76Y
		qYKF0gAAAQB+0cg+z8quLiIhu3TQ3nQQUJgvGDyH/UdJ0uY9UWYEVba3Ub2NQZfQ
		RJfS/Cmvqij32LCL7Nsqi+3s88GMsfHBhDyl1Yceb1HEehtAjGzgnXKqVUsg89L+
		p+i+/XOXpdfCGkeClOQzWZYIQX2IWYx9ZpZB0zixjFZAmBoWkd5jeEAu0JFxeAhI
		68yqZPQTusr6UmZup89Ym4rsjML4PaIryixZRcpOb+NeYBya7Bq2NLIk7AxNp8FA
		TPa8iDs1K+51jT/Gispde44vMeEnZ5cLmYmrmaIgcS6n46w+07HWPOL2ozXZwnYR
		42Tr3/0R4Ep18XmxzhFTvMHdnAZk76Pw
		-----ENC DAT-----
		k9D/zR9PPJwIfifImkJGYQ==
		-----END TSS-----
	EOF
	# tcsd is not reachable on this port: nothing listens there.
	TSS_TCSD_HOSTNAME=127.0.0.1 TSS_TCSD_PORT=1 run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"sealed to a TPM 1.2"* ]]
	[[ "$output" == *"is a TPM 2.0"* ]]
	[[ "$output" == *"seal-api-key --tpm2"* ]]
}

@test "a corrupt TPM 2.0 blob names the bad part" {
	seal --tpm2 --pcr 16
	local good
	good=$(cat "$BLOB")

	sed 's/^private: .*/private: AAAA/' <<<"$good" >"$BLOB"
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"private part"* ]]

	sed 's/^pcr 16: 0/pcr 16: 1/' <<<"$good" >"$BLOB"
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"public part's policy is not the PCR policy"* ]]

	head -n 5 <<<"$good" >"$BLOB"
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"truncated"* ]]
	refute_api_key_in_output
}

@test "hpcs-unlock (shared build) unwraps into the keyring with the API key from the TPM 2.0" {
	command -v keyctl >/dev/null || skip "needs keyctl (keyutils)"
	local secret id
	CRK=$(emu_create_key tpm2-bats-unlock-root)
	write_config
	seal --tpm2 --pcr 16
	KEYRING_DESC=hpcs-bats-tpm2-$$-$BATS_TEST_NUMBER
	secret=passphrase-$RANDOM-$RANDOM
	run bash -c 'printf %s "$1" | "$2" --config "$3" wrap' _ "$secret" "$HFL" "$CONF"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$KEY_DIR/user/$KEYRING_DESC"
	printf 'quiet\n' >"$BATS_TEST_TMPDIR/cmdline"
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30
	echo "hpcs-unlock: $output"
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	id=$(keyctl search @u user "$KEYRING_DESC")
	[ "$(keyctl pipe "$id")" = "$secret" ]
}

@test "the static hpcs-unlock (tpm2-tss, no OpenSSL, no dlopen'd TCTI) unseals under env -i" {
	local static=${HPCS_STATIC_BIN:-$BATS_TEST_DIRNAME/../../build-static/hpcs-unlock}
	[ -x "$static" ] || skip "no static hpcs-unlock at $static (set HPCS_STATIC_BIN)"
	command -v keyctl >/dev/null || skip "needs keyctl (keyutils)"
	run file -L "$static"
	[[ "$output" == *"statically linked"* ]]
	run grep -caE 'openssl\.cnf|OpenSSL [0-9]' "$static"
	[ "$output" = 0 ]

	local secret id
	CRK=$(emu_create_key tpm2-bats-static-root)
	# The TCTI from the config: nothing at all in the environment.
	write_config "$TCTI"
	seal --tpm2 --pcr 16
	KEYRING_DESC=hpcs-bats-tpm2-static-$$-$BATS_TEST_NUMBER
	secret=passphrase-$RANDOM-$RANDOM
	run bash -c 'printf %s "$1" | "$2" --config "$3" wrap' _ "$secret" "$HFL" "$CONF"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$KEY_DIR/user/$KEYRING_DESC"
	printf 'quiet\n' >"$BATS_TEST_TMPDIR/cmdline"

	run env -i HPCS_TPM_LOCK_RECORD="$HPCS_TPM_LOCK_RECORD" "$static" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30
	echo "static hpcs-unlock: $output"
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	id=$(keyctl search @u user "$KEYRING_DESC")
	[ "$(keyctl pipe "$id")" = "$secret" ]
	keyctl unlink "$id" @u >/dev/null

	# The unseal is the TPM's: with PCR 16 changed it refuses, naming it.
	extend16
	run env -i HPCS_TPM_LOCK_RECORD="$HPCS_TPM_LOCK_RECORD" "$static" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30
	echo "static hpcs-unlock: $output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"PCR 16 (SHA-256) changed since sealing"* ]]
	refute_api_key_in_output
	run keyctl search @u user "$KEYRING_DESC"
	[ "$status" -ne 0 ]
}

@test "a TPM that never answers: hpcs-unlock gives up at its deadline" {
	# Accepts connections on two ports (command and control) and never answers.
	# It finds the two free ports itself: a port chosen before another process
	# binds it, and the one above it, may be taken meanwhile.
	local port="" i
	python3 - "$BATS_TEST_TMPDIR/hang-port" <<-'EOF' &
		import os, random, socket, sys, time
		while True:
		    base, ls = random.randint(20000, 60000), []
		    try:
		        for p in (base, base + 1):
		            s = socket.socket(); s.bind(("127.0.0.1", p)); s.listen(8); ls.append(s)
		        break
		    except OSError:
		        for s in ls: s.close()
		with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(base))
		os.rename(sys.argv[1] + ".tmp", sys.argv[1])
		time.sleep(120)
	EOF
	HANG_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$BATS_TEST_TMPDIR/hang-port" ] && break
		sleep 0.05
	done
	port=$(<"$BATS_TEST_TMPDIR/hang-port")
	CRK=$(emu_create_key tpm2-bats-hang-root)
	write_config "swtpm:host=127.0.0.1,port=$port"
	seal --tpm2 --pcr 16 # on the real swtpm (the environment's TCTI)
	printf 'x\n' >"$KEY_DIR/user/hpcs-bats-tpm2-hang-$$"
	printf 'quiet\n' >"$BATS_TEST_TMPDIR/cmdline"
	local start=$SECONDS
	HPCS_TPM2_TCTI='' run "$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" \
		--cmdline "$BATS_TEST_TMPDIR/cmdline" --deadline 3
	echo "hpcs-unlock: $output (after $((SECONDS - start)) s)"
	[ "$status" -ne 0 ]
	[[ "$output" == *"TPM 2.0 did not answer before the deadline"* ]]
	[ $((SECONDS - start)) -le 13 ] # 3 s and slack for a loaded machine
}

@test "the API key is in no output and no file but the blob, even with --debug" {
	CRK=$(emu_create_key tpm2-bats-leak-root)
	write_config
	run "$HFL" --debug --config "$CONF" seal-api-key --tpm2 --pcr 16 <<<"$EMU_API_KEY"
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	run "$HFL" --debug --config "$CONF" list
	[ "$status" -eq 0 ]
	refute_api_key_in_output
	extend16
	run "$HFL" --debug --config "$CONF" list
	[ "$status" -ne 0 ]
	refute_api_key_in_output
	# Not in clear in any file of the test or of the TPM's state.
	run grep -rlF -- "$EMU_API_KEY" "$KEY_DIR" "$CONF" "$HPCS_TPM2_DIR"
	[ "$status" -eq 1 ]
}

@test "the API key never crosses the TPM's wire in clear (salted session, parameter encryption)" {
	# A recording proxy in front of swtpm (command and control ports).
	# It binds both of its ports (swtpm's control port is the command port
	# + 1) before it says which it has: no port is chosen twice, no sleep.
	local up port capture=$BATS_TEST_TMPDIR/wire.bin ready=$BATS_TEST_TMPDIR/proxy.port i
	up=${TCTI##*port=}
	python3 - "$ready" "$up" "$capture" <<-'EOF' &
		import os, random, socket, sys, threading
		ready, up, capture = sys.argv[1], int(sys.argv[2]), sys.argv[3]
		lock = threading.Lock()
		def pipe(a, b):
		    try:
		        while True:
		            data = a.recv(65536)
		            if not data:
		                break
		            with lock, open(capture, "ab") as f:
		                f.write(data)
		            b.sendall(data)
		        b.shutdown(socket.SHUT_WR)
		    except OSError:
		        pass
		def listener(p):
		    s = socket.socket()
		    s.bind(("127.0.0.1", p)); s.listen(8)
		    return s
		for _ in range(200):
		    port = random.randrange(20000, 60000, 2)
		    try:
		        socks = [listener(port), listener(port + 1)]
		        break
		    except OSError:
		        continue
		else:
		    sys.exit("no two free ports in a row")
		def serve(s, tp):
		    while True:
		        c, _ = s.accept()
		        u = socket.create_connection(("127.0.0.1", tp))
		        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
		        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
		for s, tp in zip(socks, (up, up + 1)):
		    threading.Thread(target=serve, args=(s, tp), daemon=True).start()
		with open(ready + ".tmp", "w") as f:
		    f.write(str(port))
		os.rename(ready + ".tmp", ready)
		threading.Event().wait(120)
	EOF
	HANG_PID=$!
	for ((i = 0; i < 100; i++)); do
		[[ -s $ready ]] && break
		sleep 0.1
	done
	port=$(cat "$ready")
	write_config "swtpm:host=127.0.0.1,port=$port"
	HPCS_TPM2_TCTI='' seal --tpm2 --pcr 16
	HPCS_TPM2_TCTI='' run_hfl list
	[ "$status" -eq 0 ]
	# The proxy saw the seal and the unseal, and never the key.
	[ "$(stat -c %s "$capture")" -gt 1000 ]
	run grep -caF -- "$EMU_API_KEY" "$capture"
	[ "$output" = 0 ]
}

@test "report: the sealed API key unseals now; after a PCR change it is a failure naming the PCR" {
	command -v lsinitrd >/dev/null || skip "needs lsinitrd (dracut-core)"
	CRK=$(emu_create_key tpm2-bats-report-root)
	write_config
	seal --tpm2 --pcr 7 --pcr 15 --pcr 16
	run bash -c 'head -c 32 /dev/urandom | "$1" --config "$2" wrap' _ "$HFL" "$CONF"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$KEY_DIR/logon/hpcs-bats:tpm2-report"
	chmod 600 "$KEY_DIR/logon/hpcs-bats:tpm2-report"
	: >"$BATS_TEST_TMPDIR/crypttab"
	hpcs_make_initrd "$BATS_TEST_TMPDIR/initrd.img" "$CONF" "$KEY_DIR" "$BLOB"
	local report=("$HFL" --config "$CONF" report --crypttab "$BATS_TEST_TMPDIR/crypttab"
		--initramfs "$BATS_TEST_TMPDIR/initrd.img")
	run "${report[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok      tpm "*"the API key unseals from the TPM 2.0 with the PCR values of now"* ]]
	refute_api_key_in_output

	extend16
	run "${report[@]}" --json
	[ "$status" -eq 1 ]
	refute_api_key_in_output
	[ "$(jq -r .tpm.unseals <<<"$output")" = false ]
	[ "$(jq -r .tpm.kind <<<"$output")" = "TPM 2.0" ]
	[[ "$(jq -r '.findings[] | select(.check == "tpm") | .message' <<<"$output")" == *"PCR 16 (SHA-256) changed since sealing"* ]]
	[[ "$(jq -r '.findings[] | select(.check == "tpm") | .remedy' <<<"$output")" == *"reseal"* ]]
	# Without an API key nothing else is tried against the KMS.
	[ "$(jq -r '.findings[] | select(.check == "kms") | .status' <<<"$output")" = fail ]

	# Resealed in the new state, but the initramfs still has the old blob.
	seal --tpm2 --pcr 7 --pcr 15 --pcr 16
	run "${report[@]}"
	[ "$status" -eq 1 ]
	[[ "$output" == *"its config differs from '$CONF' in the sealed API key ($BLOB)"* ]]
	hpcs_make_initrd "$BATS_TEST_TMPDIR/initrd.img" "$CONF" "$KEY_DIR" "$BLOB"
	run "${report[@]}"
	[ "$status" -eq 0 ]
	[[ "$output" != *"primary key's name"* ]]

	# A blob sealed before the primary key's name was recorded still unseals;
	# the report says what it lacks, and that is no failure.
	grep -q '^primary-name: ' "$BLOB"
	sed -i '/^primary-name: /d' "$BLOB"
	hpcs_make_initrd "$BATS_TEST_TMPDIR/initrd.img" "$CONF" "$KEY_DIR" "$BLOB"
	run "${report[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok      tpm "*"the API key unseals from the TPM 2.0"* ]]
	[[ "$output" == *"info    tpm "*"sealed before the primary key's name was recorded"* ]]
}

@test "the TPM lock: after hpcs-unlock, PCR 15 is extended and the API key no longer unseals; seal-api-key and report know the value before the lock" {
	command -v keyctl >/dev/null || skip "needs keyctl (keyutils)"
	command -v lsinitrd >/dev/null || skip "needs lsinitrd (dracut-core)"
	local secret id zero
	# The file's TPM is shared: earlier cases may have extended PCR 15.
	zero=$(tpm2_pcrread sha256:15 | sed -n 's/.*15: 0x\([0-9A-Fa-f]*\).*/\1/p' | tr 'A-F' 'a-f')
	[ "${#zero}" -eq 64 ]
	CRK=$(emu_create_key tpm2-bats-lock-root)
	write_config
	seal --tpm2 # the default PCRs: 7, 8 and 15
	grep -qx 'pcrs: 7 8 15' "$BLOB"
	KEYRING_DESC=hpcs-bats-tpm2-lock-$$-$BATS_TEST_NUMBER
	secret=passphrase-$RANDOM-$RANDOM
	run bash -c 'printf %s "$1" | "$2" --config "$3" wrap' _ "$secret" "$HFL" "$CONF"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$KEY_DIR/user/$KEYRING_DESC"
	chmod 600 "$KEY_DIR/user/$KEYRING_DESC"
	printf 'quiet\n' >"$BATS_TEST_TMPDIR/cmdline"

	# The run unseals, unwraps, and locks the TPM as it ends.
	[ ! -e "$HPCS_TPM_LOCK_RECORD" ]
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30
	echo "hpcs-unlock: $output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"the TPM is locked for the rest of this boot: PCR 15 is extended"* ]]
	keyctl unlink "$(keyctl search @u user "$KEYRING_DESC")" @u >/dev/null
	run tpm2_pcrread sha256:15
	[[ "${output,,}" != *"0x$zero"* ]]
	grep -qx "before: $zero" "$HPCS_TPM_LOCK_RECORD"
	[ "$(stat -c %a "$HPCS_TPM_LOCK_RECORD")" = 600 ]

	# Nothing later in this boot unseals: another run, the admin CLI.
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" \
		--keys "$KEYRING_DESC" --deadline 30
	echo "second hpcs-unlock: $output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"PCR 15 (SHA-256) changed since sealing"* ]]
	[[ "$output" == *"the TPM was locked for this boot"* ]]
	[[ "$output" != *"is locked for the rest of this boot"* ]] # locked once
	run keyctl search @u user "$KEYRING_DESC"
	[ "$status" -ne 0 ]
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"PCR 15 (SHA-256) changed since sealing"* ]]

	# report: it does not unseal now, but it will at the next boot.
	: >"$BATS_TEST_TMPDIR/crypttab"
	hpcs_make_initrd "$BATS_TEST_TMPDIR/initrd.img" "$CONF" "$KEY_DIR" "$BLOB"
	local report=("$HFL" --config "$CONF" report --crypttab "$BATS_TEST_TMPDIR/crypttab"
		--initramfs "$BATS_TEST_TMPDIR/initrd.img")
	run "${report[@]}" --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .tpm.locked <<<"$output")" = true ]
	[ "$(jq -r .tpm.unseals <<<"$output")" = false ]
	[ "$(jq -r .tpm.unseals_at_boot <<<"$output")" = true ]
	[ "$(jq -r .tpm.lock_pcr_sealed <<<"$output")" = true ]

	# Resealed now, PCR 15 goes in with its value before the lock.
	seal --tpm2
	[[ "$output" == *"PCR 15 is locked for this boot; sealing to its value before the lock"* ]]
	grep -qx "pcr 15: $zero" "$BLOB"

	# A PCR that changed is still a failure, the lock notwithstanding.
	tpm2_pcrextend 7:sha256=00000000000000000000000000000000000000000000000000000000000000c3
	run "${report[@]}" --json
	[ "$status" -eq 1 ]
	[ "$(jq -r .tpm.unseals_at_boot <<<"$output")" = false ]
	[[ "$(jq -r '.findings[] | select(.check == "tpm") | .message' <<<"$output")" == *"PCR 7 differs"* ]]
}

@test "the TPM lock: --lock-tpm only locks; [HFL] tpm_lock = no leaves the TPM as it is; a blob without PCR 15 is named" {
	CRK=$(emu_create_key tpm2-bats-lock2-root)
	HPCS_CONF=$CONF HPCS_KEYS=$KEY_DIR HPCS_CRK=$CRK hpcs_write_conf KP.api_key=TPM HFL.tpm_lock=no
	seal --tpm2 --pcr 7 --pcr 15
	printf 'quiet\n' >"$BATS_TEST_TMPDIR/cmdline"
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" --lock-tpm
	[ "$status" -eq 0 ]
	[ ! -e "$HPCS_TPM_LOCK_RECORD" ]
	run_hfl list
	[ "$status" -eq 0 ]

	write_config
	run "$HPCS_BIN_DIR/hpcs-unlock" --config "$CONF" --cmdline "$BATS_TEST_TMPDIR/cmdline" --lock-tpm
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"the TPM is locked for the rest of this boot"* ]]
	[ -e "$HPCS_TPM_LOCK_RECORD" ]
	run_hfl list
	[ "$status" -ne 0 ]
	[[ "$output" == *"PCR 15 (SHA-256) changed since sealing"* ]]

	# A blob sealed without PCR 15 (as before the lock existed) still unseals:
	# report names what it lacks.
	seal --tpm2 --pcr 7
	[[ "$output" == *"leave out PCR 15"* ]]
	: >"$BATS_TEST_TMPDIR/crypttab"
	run "$HFL" --config "$CONF" report --crypttab "$BATS_TEST_TMPDIR/crypttab" --json
	echo "$output"
	[ "$(jq -r .tpm.unseals <<<"$output")" = true ]
	[ "$(jq -r .tpm.lock_pcr_sealed <<<"$output")" = false ]
	[[ "$(jq -r '.findings[] | select(.check == "tpm" and .status == "warn") | .message' <<<"$output")" == *"leaves out PCR 15"* ]]
}
