#!/usr/bin/env bats
# hpcs-unlock, the boot unlocker: deadlines, faults, the kernel command line,
# concurrency, and the static binary. Against the emulator, real keyring.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	command -v keyctl >/dev/null || skip "keyctl (keyutils) is not installed"
	[ -x "$HPCS_BIN_DIR/hpcs-unlock" ] || skip "no hpcs-unlock in $HPCS_BIN_DIR: build first"
	hpcs_setup
	CMDLINE="$BATS_TEST_TMPDIR/cmdline"
	echo "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root ro quiet" >"$CMDLINE"
	UNLOCK="$HPCS_BIN_DIR/hpcs-unlock"
}

teardown() {
	hpcs_teardown
}

unlock() {
	"$UNLOCK" --config "$HPCS_CONF" --cmdline "$CMDLINE" "$@"
}

# make_keys N: N user keys "$HPCS_TAG-uI" with 32 random bytes each (kept in
# $BATS_TEST_TMPDIR/plain-I) and one logon key "$HPCS_TAG:dm".
make_keys() {
	local i
	for i in $(seq 1 "$1"); do
		head -c 32 /dev/urandom >"$BATS_TEST_TMPDIR/plain-$i"
		hpcs wrap <"$BATS_TEST_TMPDIR/plain-$i" >"$HPCS_KEYS/user/$HPCS_TAG-u$i"
	done
	hpcs wrap --gen >"$HPCS_KEYS/logon/$HPCS_TAG:dm"
}

# keys_landed N: every user key byte for byte, and the logon key.
keys_landed() {
	local i
	for i in $(seq 1 "$1"); do
		[ "$(key_bytes "$HPCS_TAG-u$i")" = "$(od -An -tx1 -v <"$BATS_TEST_TMPDIR/plain-$i" | tr -d ' \n')" ] || {
			echo "user key $HPCS_TAG-u$i missing or wrong" >&2
			return 1
		}
	done
	key_id logon "$HPCS_TAG:dm" >/dev/null
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

@test "all keys land byte for byte, with one IAM token, all unwraps in flight at once" {
	make_keys 16
	emu_ctl POST reset-stats >/dev/null
	emu_ctl POST faults '{"latency_ms":100}' >/dev/null
	run --separate-stderr unlock
	[ "$status" -eq 0 ]
	keys_landed 16
	[ "$(emu_stat iam_requests)" -eq 1 ]
	[ "$(emu_stat by_op.unwrap)" -eq 17 ]
	[ "$(emu_stat max_concurrent)" -gt 1 ]
	# journal priority prefixes on stderr
	[[ "$stderr" == *"<6>loaded 17 of 17 keys in "* ]]
}

@test "the server starts 5 s late: still unlocks within the deadline" {
	make_keys 2
	emulator_stop
	# The same port and state: the emulator comes back there 5 s later.
	"$UNLOCK" --config "$HPCS_CONF" --cmdline "$CMDLINE" --deadline 30 \
		>"$BATS_TEST_TMPDIR/out" 2>&1 3>&- &
	pid=$!
	sleep 5
	emulator_start --state-dir "$EMU_DIR" --port "$EMU_PORT"
	rc=0
	wait "$pid" || rc=$?
	cat "$BATS_TEST_TMPDIR/out"
	[ "$rc" -eq 0 ]
	keys_landed 2
}

@test "the server never comes: exit 3 within the deadline + 2 s, one line per key" {
	make_keys 2
	emulator_stop
	start=$(date +%s%N)
	run unlock --deadline 5
	took_ms=$((($(date +%s%N) - start) / 1000000))
	echo "$output"
	[ "$status" -eq 3 ]
	[ "$took_ms" -le 7000 ]
	[ "$(grep -c "^<3>.* key '$HPCS_TAG.*' not loaded: .*cannot reach localhost:$EMU_PORT" <<<"$output")" -eq 3 ]
}

@test "a 429 and 503 storm is retried until the keys are unlocked" {
	make_keys 4
	emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"status","status":429,"retry_after":1,"count":6},{"op":"unwrap","action":"status","status":503,"count":4},{"op":"iam","action":"status","status":503,"count":2}]}' >/dev/null
	run unlock --deadline 60
	[ "$status" -eq 0 ]
	keys_landed 4
}

@test "one corrupt key among 16: the other 15 land and the exit code says so" {
	make_keys 15
	echo "Y29ycnVwdA==" >"$HPCS_KEYS/user/$HPCS_TAG-bad"
	run unlock
	[ "$status" -eq 1 ]
	keys_landed 15
	[[ "$output" == *"<3>user key '$HPCS_TAG-bad' not loaded: cannot unwrap '$HPCS_KEYS/user/$HPCS_TAG-bad': HTTP 422 UNPROCESSABLE_CIPHERTEXT_ERR"* ]]
	[[ "$output" == *"loaded 16 of 17 keys"* ]]
}

@test "rd.hpcs=0 does nothing and succeeds" {
	make_keys 1
	emu_ctl POST reset-stats >/dev/null
	echo "quiet rd.hpcs=0" >"$CMDLINE"
	run unlock
	[ "$status" -eq 0 ]
	[[ "$output" == *"rd.hpcs=0"* ]]
	! key_id user "$HPCS_TAG-u1"
	[ "$(emu_stat requests)" -eq 0 ]
}

@test "kernel command-line options beat the config; unknown ones are warned about" {
	make_keys 1
	# The config points at a dead port and names no root key.
	dead=$(free_port)
	sed -i "s|^endpoint_url = .*|endpoint_url = https://kms.test:$dead|; s|^iam_endpoint_url = .*|iam_endpoint_url = https://iam.test:$dead|; s|^default_crk_uuid = .*|default_crk_uuid =|" "$HPCS_CONF"
	echo "rd.hpcs.endpoint=https://kms.test:$EMU_PORT rd.hpcs.iam=https://iam.test:$EMU_PORT/ rd.hpcs.resolve=kms.test:127.0.0.1 rd.hpcs.resolve=iam.test:127.0.0.1 rd.hpcs.crk=$HPCS_CRK rd.hpcs.frobnicate=1 rd.hpcs.timeout=20" >"$CMDLINE"
	run unlock
	echo "$output"
	[ "$status" -eq 0 ]
	keys_landed 1
	[[ "$output" == *"<4>kernel command line: ignoring unknown option 'rd.hpcs.frobnicate'"* ]]
}

@test "rd.hpcs.keys and --keys load a subset; a missing one is named" {
	make_keys 3
	echo "rd.hpcs.keys=$HPCS_TAG-u2,$HPCS_TAG-nosuch" >"$CMDLINE"
	run unlock
	[ "$status" -eq 1 ]
	key_id user "$HPCS_TAG-u2"
	! key_id user "$HPCS_TAG-u1"
	[[ "$output" == *"key '$HPCS_TAG-nosuch' was asked for but there is no such file"* ]]
	run unlock --keys "$HPCS_TAG-u3"
	[ "$status" -eq 0 ]
	key_id user "$HPCS_TAG-u3"
}

@test "--skip-loaded leaves keys already in the keyring alone" {
	make_keys 2
	unlock --keys "$HPCS_TAG-u1"
	emu_ctl POST reset-stats >/dev/null
	run unlock --skip-loaded
	[ "$status" -eq 0 ]
	[ "$(emu_stat by_op.unwrap)" -eq 2 ] # u2 and the logon key, not u1
	[[ "$output" == *"(1 already in the keyring)"* ]]
	keys_landed 2
}

@test "rd.hpcs.debug shows progress but never the API key or a token" {
	make_keys 2
	echo "rd.hpcs.debug" >"$CMDLINE"
	run unlock
	[ "$status" -eq 0 ]
	[[ "$output" == *"<7>added user key '$HPCS_TAG-u1'"* ]]
	[[ "$output" != *"$EMU_API_KEY"* ]]
	[[ "$output" != *"Bearer"* ]]
}

@test "configuration errors exit 2 and name the file" {
	printf '[KP]\nregion=us-south\n' >"$HPCS_CONF"
	run unlock
	[ "$status" -eq 2 ]
	[[ "$output" == *"$HPCS_CONF"* ]]
	run "$UNLOCK" --deadline soon
	[ "$status" -eq 2 ]
}

@test "the static hpcs-unlock runs with no shared library at all (env -i)" {
	[ -n "${HPCS_STATIC_BIN:-}" ] && [ -x "$HPCS_STATIC_BIN" ] ||
		skip "HPCS_STATIC_BIN is not set to a built static hpcs-unlock"
	file "$HPCS_STATIC_BIN" | grep -q "statically linked"
	make_keys 3
	run env -i LD_LIBRARY_PATH= "$HPCS_STATIC_BIN" --config "$HPCS_CONF" --cmdline "$CMDLINE"
	echo "$output"
	[ "$status" -eq 0 ]
	keys_landed 3
	# Name resolution without NSS: kms.test comes from a resolve pin here;
	# localhost and /etc/hosts names are covered by the cases above.
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
		sed "s|^key_dir = .*|key_dir = $BATS_TEST_TMPDIR/srv$s|" "$HPCS_CONF" >"$BATS_TEST_TMPDIR/srv$s.ini"
		chmod 600 "$BATS_TEST_TMPDIR/srv$s.ini"
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
