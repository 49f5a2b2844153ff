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
	proxy_stop
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

# The static hpcs-unlock: $HPCS_STATIC_BIN, else build-static/ of this tree.
static_bin() {
	STATIC=${HPCS_STATIC_BIN:-$BATS_TEST_DIRNAME/../../build-static/hpcs-unlock}
	[ -x "$STATIC" ] || skip "no static hpcs-unlock at $STATIC (build it, or set HPCS_STATIC_BIN)"
	file -L "$STATIC" | grep -q "statically linked"
}

# now_ms: milliseconds since the epoch.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

@test "all keys land byte for byte, with one IAM token, all unwraps in flight at once" {
	make_keys 16
	emu_ctl POST reset-stats >/dev/null
	# Each request is held for a second: long enough that all 17 overlap
	# even on a busy machine, if the client sends them at once.
	emu_ctl POST faults '{"latency_ms":1000}' >/dev/null
	run --separate-stderr unlock
	[ "$status" -eq 0 ]
	keys_landed 16
	[ "$(emu_stat iam_requests)" -eq 1 ]
	[ "$(emu_stat by_op.unwrap)" -eq 17 ]
	[ "$(emu_stat max_concurrent)" -eq 17 ]
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
	run ! key_id user "$HPCS_TAG-u1"
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

@test "rd.hpcs.keys loads a subset; a missing one is named" {
	make_keys 3
	emu_ctl POST reset-stats >/dev/null
	echo "rd.hpcs.keys=$HPCS_TAG-u2,$HPCS_TAG-nosuch" >"$CMDLINE"
	run unlock
	[ "$status" -eq 1 ]
	[[ "$output" == *"key '$HPCS_TAG-nosuch' was asked for but there is no such file"* ]]
	[[ "$output" == *"loaded 1 of 2 keys"* ]]
	key_id user "$HPCS_TAG-u2"
	run ! key_id user "$HPCS_TAG-u1"
	run ! key_id user "$HPCS_TAG-u3"
	run ! key_id logon "$HPCS_TAG:dm"
	[ "$(emu_stat by_op.unwrap)" -eq 1 ]
}

@test "--keys loads a subset, and beats rd.hpcs.keys" {
	make_keys 3
	emu_ctl POST reset-stats >/dev/null
	run unlock --keys "$HPCS_TAG-u3,$HPCS_TAG:dm"
	[ "$status" -eq 0 ]
	[[ "$output" == *"loaded 2 of 2 keys"* ]]
	key_id user "$HPCS_TAG-u3"
	key_id logon "$HPCS_TAG:dm"
	run ! key_id user "$HPCS_TAG-u1"
	run ! key_id user "$HPCS_TAG-u2"
	[ "$(emu_stat by_op.unwrap)" -eq 2 ]
	# With both, the option given to the unit wins.
	echo "rd.hpcs.keys=$HPCS_TAG-u2" >"$CMDLINE"
	run unlock --keys "$HPCS_TAG-u1"
	[ "$status" -eq 0 ]
	key_id user "$HPCS_TAG-u1"
	run ! key_id user "$HPCS_TAG-u2"
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

@test "--debug, rd.hpcs.debug and rd.debug show progress, never the API key, a token or a key" {
	marker=HPCS-DEBUG-PLAINTEXT-$RANDOM$RANDOM
	printf '%s' "$marker" | hpcs wrap >"$HPCS_KEYS/user/$HPCS_TAG-m"
	all=""
	for how in --debug rd.hpcs.debug rd.debug; do
		hpcs_keyring_clean "$HPCS_TAG" >/dev/null
		echo quiet >"$CMDLINE"
		args=()
		if [ "$how" = --debug ]; then args=(--debug); else echo "quiet $how" >"$CMDLINE"; fi
		# A token that expires mid-run: the 401 and the new token are logged too.
		emu_ctl POST faults '{"rules":[{"op":"unwrap","action":"expire_tokens","count":1}]}' >/dev/null
		run --separate-stderr unlock "${args[@]}"
		echo "$how: $output$stderr"
		[ "$status" -eq 0 ]
		[[ "$stderr" == *"<7>added user key '$HPCS_TAG-m'"* ]]
		[[ "$stderr" == *"actions/unwrap -> HTTP 401"* ]]
		all+=$output$stderr
	done
	[ "$(key_bytes "$HPCS_TAG-m")" = "$(printf '%s' "$marker" | od -An -tx1 -v | tr -d ' \n')" ]
	mapfile -t tokens < <(emu_tokens)
	[ "${#tokens[@]}" -ge 7 ] # setup, wrap, and two in each run
	refute_secrets "$all" "$EMU_API_KEY" "$marker" "$(printf '%s' "$marker" | base64 -w0)" "${tokens[@]}"
}

@test "configuration errors exit 2 and name the file" {
	printf '[KP]\nregion=us-south\n' >"$HPCS_CONF"
	run unlock
	[ "$status" -eq 2 ]
	[[ "$output" == *"$HPCS_CONF"* ]]
	run "$UNLOCK" --deadline soon
	[ "$status" -eq 2 ]
}

@test "the static hpcs-unlock runs with an empty environment and opens no shared object" {
	static_bin
	command -v strace >/dev/null || {
		echo "strace is missing (tests/install-deps.sh installs it)" >&2
		return 1
	}
	make_keys 3
	run env -i "$(command -v strace)" -f -qq -e trace=open,openat -o "$BATS_TEST_TMPDIR/trace" \
		"$STATIC" --config "$HPCS_CONF" --cmdline "$CMDLINE"
	echo "$output"
	rc=$status
	# The trace works (it shows the config being read), and no library is
	# opened: no ld.so.cache, no libc, no NSS module.
	grep -qF "\"$HPCS_CONF\"" "$BATS_TEST_TMPDIR/trace"
	run grep -E '\.so([.][0-9]+)*"|ld\.so\.cache' "$BATS_TEST_TMPDIR/trace"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$rc" -eq 0 ]
	keys_landed 3
}

# wrong_host_refused BINARY: the KMS and IAM names pinned with rd.hpcs.resolve
# to our emulator; a name in its certificate works, one that is not is refused.
wrong_host_refused() {
	make_keys 1
	echo "rd.hpcs.endpoint=https://kms.test:$EMU_PORT rd.hpcs.iam=https://kms.test:$EMU_PORT rd.hpcs.resolve=kms.test:127.0.0.1" >"$CMDLINE"
	run "$1" --config "$HPCS_CONF" --cmdline "$CMDLINE"
	echo "$output"
	[ "$status" -eq 0 ]
	keys_landed 1
	hpcs_keyring_clean "$HPCS_TAG" >/dev/null
	# wrong.test reaches the same server, whose certificate does not name it.
	echo "rd.hpcs.endpoint=https://wrong.test:$EMU_PORT rd.hpcs.iam=https://wrong.test:$EMU_PORT rd.hpcs.resolve=wrong.test:127.0.0.1 rd.hpcs.timeout=10" >"$CMDLINE"
	emu_ctl POST reset-stats >/dev/null
	run "$1" --config "$HPCS_CONF" --cmdline "$CMDLINE"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ "$output" == *"cannot reach wrong.test:$EMU_PORT"* ]]
	[ "$(emu_stat requests)" -eq 0 ]
	run ! key_id user "$HPCS_TAG-u1"
}

@test "a certificate for another host name is refused (shared build)" {
	wrong_host_refused "$UNLOCK"
}

@test "a certificate for another host name is refused (static build, mbedTLS)" {
	static_bin
	wrong_host_refused "$STATIC"
}

@test "a token that expires during the run is fetched again and every key lands" {
	make_keys 8
	# Tokens live 2 s; nine unwraps one at a time, 400 ms each, take longer.
	emulator_stop
	emulator_start --state-dir "$EMU_DIR" --token-ttl 2
	hpcs_write_conf
	emu_ctl POST faults '{"latency_ms":400}' >/dev/null
	run unlock --max-parallel 1
	echo "$output"
	[ "$status" -eq 0 ]
	keys_landed 8
	[ "$(emu_stat iam_requests)" -ge 2 ]
	[ "$(emu_stat by_op.unwrap)" -ge 9 ]
}

@test "Retry-After is waited for; a deadline shorter than the waits ends at once with exit 3" {
	printf 'one' | hpcs wrap >"$HPCS_KEYS/user/$HPCS_TAG-one"
	fault='{"rules":[{"op":"unwrap","action":"status","status":429,"retry_after":2,"count":2}]}'
	emu_ctl POST faults "$fault" >/dev/null
	emu_ctl POST reset-stats >/dev/null
	start=$(now_ms)
	run unlock --deadline 30
	took=$(($(now_ms) - start))
	echo "took $took ms: $output"
	[ "$status" -eq 0 ]
	# A lower bound only: two waits of 2 s, unless Retry-After is ignored.
	[ "$took" -ge 4000 ]
	[ "$(emu_stat by_op.unwrap)" -eq 3 ]
	[ "$(key_bytes "$HPCS_TAG-one")" = "$(printf one | od -An -tx1 -v | tr -d ' \n')" ]
	# With 3 s, the second Retry-After would end past the deadline: no wait.
	hpcs_keyring_clean "$HPCS_TAG" >/dev/null
	emu_ctl POST faults "$fault" >/dev/null
	emu_ctl POST reset-stats >/dev/null
	start=$(now_ms)
	run unlock --deadline 3
	took=$(($(now_ms) - start))
	echo "took $took ms: $output"
	[ "$status" -eq 3 ]
	[ "$took" -lt 3000 ]
	[[ "$output" == *"HTTP 429"*"deadline"* ]]
	# Retry-After 2 plus up to 2 s of spread: the first wait may already end
	# past the deadline (one request), else the second does (two).
	run emu_stat by_op.unwrap
	[[ "$output" == [12] ]]
	run ! key_id user "$HPCS_TAG-one"
}

@test "rd.hpcs.proxy sends every connection through the CONNECT proxy" {
	make_keys 2
	proxy_start
	echo "rd.hpcs.proxy=$PROXY_URL" >"$CMDLINE"
	emu_ctl POST reset-stats >/dev/null
	run unlock
	echo "$output"
	[ "$status" -eq 0 ]
	keys_landed 2
	proxy_stop
	cat "$PROXY_LOG"
	# As many tunnels as the emulator saw connections: none went around.
	n=$(grep -c "^CONNECT localhost:$EMU_PORT 200$" "$PROXY_LOG")
	[ "$n" -ge 1 ]
	[ "$n" -eq "$(emu_stat connections)" ]
	[ "$(grep -vc "^CONNECT localhost:$EMU_PORT 200$" "$PROXY_LOG")" -eq 0 ]
}

@test "http:// is refused for every endpoint, in the config and on the kernel command line" {
	make_keys 1
	emu_ctl POST reset-stats >/dev/null
	for key in endpoint_url iam_endpoint_url; do
		hpcs_write_conf "KP.$key=http://localhost:$EMU_PORT"
		run unlock
		[ "$status" -eq 2 ]
		[[ "$output" == *"'http://localhost:$EMU_PORT' is not an https:// URL"* ]]
	done
	hpcs_write_conf
	for opt in rd.hpcs.endpoint rd.hpcs.iam; do
		echo "$opt=http://localhost:$EMU_PORT" >"$CMDLINE"
		run unlock
		[ "$status" -eq 2 ]
		[[ "$output" == *"'http://localhost:$EMU_PORT' is not an https:// URL"* ]]
	done
	[ "$(emu_stat requests)" -eq 0 ]
	run ! key_id user "$HPCS_TAG-u1"
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
