#!/usr/bin/env bats
# How hpcs-unlock uses its connections: kept alive, the KMS handshake made
# while the IAM token is on its way, and a fleet sharing one rate-limited
# service. Against the emulator, real keyring.

load helpers
load unlock_helpers
bats_require_minimum_version 1.5.0

setup() {
	unlock_setup
}

teardown() {
	hpcs_teardown
}

@test "connections are reused: one at a time, every request goes over one connection" {
	make_keys 4
	emu_ctl POST reset-stats >/dev/null
	run unlock --max-parallel 1
	[ "$status" -eq 0 ]
	keys_landed 4
	[ "$(emu_stat requests)" -eq 6 ] # the token and five unwraps
	[ "$(emu_stat connections)" -eq 1 ]
}

@test "a fleet: 30 unlockers at once against 20 requests/s all load their keys before the deadline" {
	make_keys 3
	local s f n=30
	local -a pids=()
	for ((s = 1; s <= n; s++)); do
		mkdir -p "$BATS_TEST_TMPDIR/srv$s/user" "$BATS_TEST_TMPDIR/srv$s/logon"
		for f in "$HPCS_KEYS"/user/*; do
			cp "$f" "$BATS_TEST_TMPDIR/srv$s/user/${f##*/}-s$s"
		done
		HPCS_CONF=$BATS_TEST_TMPDIR/srv$s.ini hpcs_write_conf "HFL.key_dir=$BATS_TEST_TMPDIR/srv$s"
	done
	emu_ctl POST rate-limit '{"rate": 20, "burst": 20}' >/dev/null
	for ((s = 1; s <= n; s++)); do
		"$UNLOCK" --config "$BATS_TEST_TMPDIR/srv$s.ini" --cmdline "$CMDLINE" --deadline 90 \
			2>"$BATS_TEST_TMPDIR/srv$s.err" 3>&- &
		pids+=($!)
	done
	local failed=0
	for s in "${!pids[@]}"; do
		wait "${pids[$s]}" || failed=$((failed + 1))
	done
	[ "$failed" -eq 0 ] || {
		cat "$BATS_TEST_TMPDIR"/srv*.err >&2
		false
	}
	# Every server's keys are in the keyring, byte for byte.
	local i want got
	for ((s = 1; s <= n; s++)); do
		for i in 1 2 3; do
			want=$(od -An -tx1 -v <"$BATS_TEST_TMPDIR/plain-$i" | tr -d ' \n')
			got=$(key_bytes "$HPCS_TAG-u$i-s$s")
			[ "$got" = "$want" ] || {
				echo "server $s: key $i missing or wrong" >&2
				false
			}
		done
	done
	# The limit really bit: the emulator refused some requests.
	[ "$(emu_stat rate_limit.refused)" -gt 0 ]
	[ "$(emu_stat rate_limit.served)" -ge $((n + n * 3)) ]
}

# two_hosts [SETTING...]: IAM and the KMS as two host names, as in the cloud
# (the emulator's certificate names both; the kernel command line pins them).
two_hosts() {
	hpcs_write_conf "KP.endpoint_url=https://kms.test:$EMU_PORT" \
		"KP.iam_endpoint_url=https://iam.test:$EMU_PORT" "$@"
	echo "rd.hpcs.resolve=kms.test:127.0.0.1 rd.hpcs.resolve=iam.test:127.0.0.1" >"$CMDLINE"
}

@test "the KMS handshake is made while the token is on its way; every unwrap resumes its TLS session (static build)" {
	static_bin
	make_keys 4 # and a logon key: 5 unwraps, at once
	two_hosts
	# The token takes 300 ms: long enough for the handshake made meanwhile.
	emu_ctl POST faults '{"latency_ms":300}' >/dev/null
	emu_ctl POST reset-stats >/dev/null
	run "$STATIC" --config "$HPCS_CONF" --cmdline "$CMDLINE"
	echo "$output"
	[ "$status" -eq 0 ]
	keys_landed 4
	local stats
	stats=$(emu_ctl GET stats)
	echo "$stats"
	# IAM, the KMS ahead of the token, 5 KMS connections, and this stats request.
	[ "$(jq .tls_handshakes <<<"$stats")" -eq 8 ]
	[ "$(jq .idle_connections <<<"$stats")" -eq 1 ] # the one ahead carried no request
	[ "$(jq .requests <<<"$stats")" -eq 6 ]
	# All 5 skipped the full handshake: mbedTLS 2.28 speaks TLS 1.2, whose
	# sessions curl resumes by session ID.
	[ "$(jq .tls_resumed <<<"$stats")" -eq 5 ]

	# --no-preconnect (for benchmarks) leaves it out: one handshake fewer.
	hpcs_keyring_clean "$HPCS_TAG" >/dev/null
	emu_ctl POST reset-stats >/dev/null
	run "$STATIC" --config "$HPCS_CONF" --cmdline "$CMDLINE" --no-preconnect
	[ "$status" -eq 0 ]
	keys_landed 4
	stats=$(emu_ctl GET stats)
	[ "$(jq .tls_handshakes <<<"$stats")" -eq 7 ]
	[ "$(jq .idle_connections <<<"$stats")" -eq 0 ]
}

@test "one host for IAM and the KMS: no connection is made ahead of the token" {
	make_keys 1
	emu_ctl POST reset-stats >/dev/null
	run unlock
	[ "$status" -eq 0 ]
	keys_landed 1
	local stats
	stats=$(emu_ctl GET stats)
	echo "$stats"
	[ "$(jq .idle_connections <<<"$stats")" -eq 0 ]
	[ "$(jq .requests <<<"$stats")" -eq 3 ]
}

@test "static build: the CA bundle is read once for all the connections, and still decides whom to trust" {
	static_bin
	command -v strace >/dev/null || {
		echo "strace is missing (tests/install-deps.sh installs it)" >&2
		false
	}
	make_keys 4
	# As in the initramfs: the system's bundle, with the server's CA in it.
	cat /etc/ssl/certs/ca-certificates.crt "$EMU_CA" >"$BATS_TEST_TMPDIR/bundle.pem"
	two_hosts "KP.ca_file=$BATS_TEST_TMPDIR/bundle.pem"
	emu_ctl POST faults '{"latency_ms":300}' >/dev/null
	emu_ctl POST reset-stats >/dev/null
	run strace -f -qq -e trace=open,openat -o "$BATS_TEST_TMPDIR/trace" \
		"$STATIC" --config "$HPCS_CONF" --cmdline "$CMDLINE"
	echo "$output"
	[ "$status" -eq 0 ]
	keys_landed 4
	# 7 connections (IAM, the one ahead of the token, 5 unwraps), one read.
	[ "$(emu_stat tls_handshakes)" -eq 8 ]
	grep -F "$BATS_TEST_TMPDIR/bundle.pem" "$BATS_TEST_TMPDIR/trace"
	[ "$(grep -cF "$BATS_TEST_TMPDIR/bundle.pem" "$BATS_TEST_TMPDIR/trace")" -eq 1 ]

	# The system's bundle alone does not hold the server's CA: refused.
	hpcs_keyring_clean "$HPCS_TAG" >/dev/null
	two_hosts KP.ca_file=/etc/ssl/certs/ca-certificates.crt
	echo "rd.hpcs.resolve=kms.test:127.0.0.1 rd.hpcs.resolve=iam.test:127.0.0.1 rd.hpcs.timeout=5" >"$CMDLINE"
	emu_ctl POST reset-stats >/dev/null
	run "$STATIC" --config "$HPCS_CONF" --cmdline "$CMDLINE"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"cannot reach iam.test:$EMU_PORT: Cert verify failed: BADCERT_NOT_TRUSTED"* ]]
	[ "$(emu_stat requests)" -eq 0 ]
	run ! key_id user "$HPCS_TAG-u1"

	# A file mbedTLS cannot parse is left to curl, which names it.
	printf 'not a certificate\n' >"$BATS_TEST_TMPDIR/bad.pem"
	two_hosts "KP.ca_file=$BATS_TEST_TMPDIR/bad.pem"
	run "$STATIC" --config "$HPCS_CONF" --cmdline "$CMDLINE"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"Error reading ca cert file $BATS_TEST_TMPDIR/bad.pem"* ]]
	run ! key_id user "$HPCS_TAG-u1"
}

@test "a ca_file that others could change is refused, by the unlocker and the CLI, before any connection" {
	make_keys 1
	local ca=$BATS_TEST_TMPDIR/ca.pem
	cp "$EMU_CA" "$ca"
	hpcs_write_conf "KP.ca_file=$ca"
	emu_ctl POST reset-stats >/dev/null
	chmod 0666 "$ca"
	run unlock
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"$HPCS_CONF: [KP] ca_file"*"'$ca' is writable by group or others (mode 0666)"* ]]
	[[ "$output" == *"chmod go-w '$ca'"* ]]
	run "$HPCS_BIN_DIR/hpcs-for-luks" --config "$HPCS_CONF" list
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"'$ca' is writable by group or others (mode 0666)"* ]]
	chmod 0644 "$ca"
	chown nobody "$ca"
	run unlock
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"'$ca' is owned by uid $(id -u nobody), not root"*"chown root:root '$ca'"* ]]
	[ "$(emu_stat requests)" -eq 0 ]
	run ! key_id user "$HPCS_TAG-u1"
	# Root's again: it is used.
	chown root "$ca"
	run unlock
	[ "$status" -eq 0 ]
	keys_landed 1
}

@test "SSLKEYLOGFILE in the environment gets no TLS secrets, from the CLI or the unlocker" {
	# libcurl over OpenSSL writes every session's keys to the file this
	# variable names: with them a capture of the wire shows the API key.
	make_keys 1
	local log=$BATS_TEST_TMPDIR/keylog
	SSLKEYLOGFILE=$log run unlock
	[ "$status" -eq 0 ]
	keys_landed 1
	SSLKEYLOGFILE=$log run "$HPCS_BIN_DIR/hpcs-for-luks" --config "$HPCS_CONF" list
	[ "$status" -eq 0 ]
	[ ! -e "$log" ]
}
