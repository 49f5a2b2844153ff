#!/usr/bin/env bats
# hpcs-unlock races the passphrase prompt (issue 24): it tells the service
# manager it is ready (READY=1) once every key is in or its grace period is
# over, then answers systemd-cryptsetup's passphrase requests for our volumes
# as a password agent. Against the emulator, the real keyring, real LUKS2
# headers (image files) and sd-double.py in the place of systemd.

load helpers
load unlock_helpers
bats_require_minimum_version 1.5.0

setup() {
	command -v cryptsetup >/dev/null || {
		echo "cryptsetup is not installed (tests/install-deps.sh installs it)" >&2
		return 1
	}
	unlock_setup
	ASK=$BATS_TEST_TMPDIR/ask-password
	mkdir -p "$ASK"
	NOTIFY_LOG=$BATS_TEST_TMPDIR/notify.log
	SD=$BATS_TEST_DIRNAME/sd-double.py
	"$SD" notify "$BATS_TEST_TMPDIR/notify.sock" "$NOTIFY_LOG" >/dev/null 2>&1 3>&- &
	NOTIFY_PID=$!
	for _ in $(seq 100); do
		[ -S "$BATS_TEST_TMPDIR/notify.sock" ] && break
		sleep 0.05
	done
}

teardown() {
	local pid
	# Not a bare `wait`: that would wait for the emulator too.
	for pid in ${AGENT_PID:-} ${NOTIFY_PID:-}; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	hpcs_teardown
}

# volume NAME [DESC]: a LUKS2 image $BATS_TEST_TMPDIR/NAME.img whose one key
# slot opens with a base64 passphrase, as hpcs-enroll makes them; with DESC,
# that passphrase is wrapped into user key DESC and the header gets a
# luks2-keyring token for it.
volume() {
	local img=$BATS_TEST_TMPDIR/$1.img pass=$BATS_TEST_TMPDIR/$1.pass
	head -c 32 /dev/urandom | base64 -w0 >"$pass"
	truncate -s 20M "$img"
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file "$pass" "$img"
	if [ -n "${2:-}" ]; then
		hpcs wrap <"$pass" >"$HPCS_KEYS/user/$2"
		cryptsetup token add --key-description "$2" "$img"
	fi
}

# start_unlock ARGS...: hpcs-unlock in the background as systemd runs it
# (NOTIFY_SOCKET), its requests in $ASK; stderr to $BATS_TEST_TMPDIR/err.
start_unlock() {
	START_MS=$(now_ms)
	NOTIFY_SOCKET=$BATS_TEST_TMPDIR/notify.sock "$UNLOCK" --config "$HPCS_CONF" \
		--cmdline "$CMDLINE" --ask-password-dir "$ASK" "$@" \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	AGENT_PID=$!
}

# finish_unlock: waits for it (60 s at most); its exit status in $status.
finish_unlock() {
	local i
	for ((i = 0; i < 600; i++)); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	status=0
	wait "$AGENT_PID" || status=$?
	AGENT_PID=""
	END_MS=$(now_ms)
	echo "--- hpcs-unlock stderr (exit $status) ---"
	cat "$BATS_TEST_TMPDIR/err"
	echo "--- notifications ---"
	cat "$NOTIFY_LOG"
}

# ready_ms: when READY=1 came (ms since the epoch).
ready_ms() {
	awk '/READY=1/ { print $1; exit }' "$NOTIFY_LOG"
}

@test "a slow KMS: READY=1 at the grace period, then our volume's request is answered with a passphrase that opens it" {
	volume root "$HPCS_TAG-root"
	volume stranger
	emu_ctl POST faults '{"latency_ms":3000}' >/dev/null
	# A plymouth that records what it is asked to show.
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	printf '#!/bin/sh\necho "$*" >>%q\n' "$BATS_TEST_TMPDIR/plymouth.log" >"$BATS_TEST_TMPDIR/bin/plymouth"
	chmod +x "$BATS_TEST_TMPDIR/bin/plymouth"
	PATH=$BATS_TEST_TMPDIR/bin:$PATH start_unlock --grace 1
	# Both volumes ask, as systemd-cryptsetup does once READY=1 lets it run.
	"$SD" ask "$ASK" root "cryptsetup:$BATS_TEST_TMPDIR/root.img" 30 "$BATS_TEST_TMPDIR/root.answer" \
		>"$BATS_TEST_TMPDIR/root.when" 3>&- &
	ROOT_ASK=$!
	"$SD" ask "$ASK" stranger "cryptsetup:$BATS_TEST_TMPDIR/stranger.img" 20 \
		"$BATS_TEST_TMPDIR/stranger.answer" >"$BATS_TEST_TMPDIR/stranger.when" 3>&- &
	STRANGER_ASK=$!
	wait "$ROOT_ASK" "$STRANGER_ASK"
	finish_unlock
	[ "$status" -eq 0 ]
	local answered ready
	answered=$(cat "$BATS_TEST_TMPDIR/root.when")
	ready=$(ready_ms)
	echo "ready after $((ready - START_MS)) ms, answered after $((answered - START_MS)) ms"
	# The prompt was let go before the key came, and the key answered it.
	[ "$ready" -lt "$answered" ]
	[ "$(cat "$BATS_TEST_TMPDIR/root.answer")" = "+$(cat "$BATS_TEST_TMPDIR/root.pass")" ]
	cut -c2- "$BATS_TEST_TMPDIR/root.answer" |
		cryptsetup open --test-passphrase --key-file - "$BATS_TEST_TMPDIR/root.img"
	# A device whose header does not name a key of ours got nothing.
	[ "$(cat "$BATS_TEST_TMPDIR/stranger.when")" = none ]
	[ ! -s "$BATS_TEST_TMPDIR/stranger.answer" ]
	grep -q "Key Protect: 1 key not loaded yet; trying behind the passphrase prompt for up to" "$BATS_TEST_TMPDIR/err"
	grep -q "answered the passphrase request for '$BATS_TEST_TMPDIR/root.img' with key 'user/$HPCS_TAG-root'" "$BATS_TEST_TMPDIR/err"
	run -1 grep -q "stranger.img' with key" "$BATS_TEST_TMPDIR/err"
	# The status line, for systemctl status and on plymouth's splash.
	grep -q 'STATUS=Key Protect: unlocking 1 volume, [0-9]* s left; you may type the passphrase' "$NOTIFY_LOG"
	cat "$BATS_TEST_TMPDIR/plymouth.log"
	grep -qx -- '--ping' "$BATS_TEST_TMPDIR/plymouth.log"
	grep -qx -- "display-message --text=Key Protect: unlocked $BATS_TEST_TMPDIR/root.img" "$BATS_TEST_TMPDIR/plymouth.log"
	grep -qx -- 'display-message --text=Key Protect: every key unwrapped' "$BATS_TEST_TMPDIR/plymouth.log"
	# The key is in the keyring as well, for a volume that tries it later.
	key_id user "$HPCS_TAG-root" >/dev/null
	# shellcheck disable=SC2046  # one argument per token
	refute_secrets "$(cat "$BATS_TEST_TMPDIR/err" "$BATS_TEST_TMPDIR/out" "$NOTIFY_LOG")" \
		"$EMU_API_KEY" "$(cat "$BATS_TEST_TMPDIR/root.pass")" $(emu_tokens)
}

@test "a healthy KMS: READY=1 once every key is in, within the grace period; nothing is answered and nobody waits" {
	volume root "$HPCS_TAG-root"
	start_unlock --grace 30
	finish_unlock
	[ "$status" -eq 0 ]
	[ -n "$(ready_ms)" ]
	key_id user "$HPCS_TAG-root" >/dev/null
	run -1 grep -q 'trying behind the passphrase prompt' "$BATS_TEST_TMPDIR/err"
	# Well before the 30 s of grace: the run did not wait for it.
	echo "ran $((END_MS - START_MS)) ms"
	[ $((END_MS - START_MS)) -lt 25000 ]
}

@test "the KMS never answers: READY=1 at the grace period, one line when it gives up, exit 3 within the deadline" {
	volume root "$HPCS_TAG-root"
	emulator_stop
	start_unlock --grace 1 --deadline 4
	finish_unlock
	[ "$status" -eq 3 ]
	[ -n "$(ready_ms)" ]
	grep -q "Key Protect: 1 key not loaded yet; trying behind the passphrase prompt for up to [0-9]* s" "$BATS_TEST_TMPDIR/err"
	grep -q "Key Protect: gave up after [0-9]* s; 1 key not loaded (the passphrase prompt stays)" "$BATS_TEST_TMPDIR/err"
	# The deadline, plus generous slack for a loaded machine.
	[ $((END_MS - START_MS)) -lt 20000 ]
}

@test "SIGTERM behind the prompt (the boot goes on): the run ends at once, READY=1 said, exit 0" {
	volume root "$HPCS_TAG-root"
	emulator_stop
	start_unlock --grace 0 --deadline 100
	for _ in $(seq 100); do
		grep -q 'trying behind the passphrase prompt' "$BATS_TEST_TMPDIR/err" && break
		sleep 0.1
	done
	local t0
	t0=$(now_ms)
	kill -TERM "$AGENT_PID"
	finish_unlock
	[ "$status" -eq 0 ]
	[ -n "$(ready_ms)" ]
	grep -q 'stopped by the service manager (the boot goes on) with 1 key not loaded' "$BATS_TEST_TMPDIR/err"
	echo "ended $((END_MS - t0)) ms after SIGTERM"
	[ $((END_MS - t0)) -lt 10000 ]
}

@test "--revoke-late-keys: a key unwrapped after the prompt was let go is revoked when the run ends" {
	volume root "$HPCS_TAG-root"
	volume early "$HPCS_TAG-early"
	emu_ctl POST faults '{"latency_ms":3000}' >/dev/null
	mkdir -p "$HPCS_KEYS/linger/user"
	: >"$HPCS_KEYS/linger/user/$HPCS_TAG-early"
	start_unlock --grace 1 --revoke-late-keys
	finish_unlock
	[ "$status" -eq 0 ]
	grep -q "revoked 'user/$HPCS_TAG-root', unwrapped after the prompt was let go" "$BATS_TEST_TMPDIR/err"
	run -1 key_id user "$HPCS_TAG-root"
	# A lingering key stays, as the wipe service leaves it.
	key_id user "$HPCS_TAG-early" >/dev/null
}

@test "rd.hpcs.grace= beats --grace, and a value out of range is refused with a warning" {
	volume root "$HPCS_TAG-root"
	emu_ctl POST faults '{"latency_ms":3000}' >/dev/null
	echo "BOOT_IMAGE=/vmlinuz rd.hpcs.grace=0" >"$CMDLINE"
	start_unlock --grace 30
	finish_unlock
	[ "$status" -eq 0 ]
	# READY=1 before the key came, not 30 s later.
	grep -q 'trying behind the passphrase prompt' "$BATS_TEST_TMPDIR/err"
	echo "BOOT_IMAGE=/vmlinuz rd.hpcs.grace=61" >"$CMDLINE"
	run unlock --grace 61
	[ "$status" -eq 2 ]
	[[ "$output" == *"--grace needs a number of seconds from 0 to 60"* ]]
	run unlock --ask-password-dir "$ASK" --deadline 30
	[[ "$output" == *"ignoring 'rd.hpcs.grace=61': not a number of seconds from 0 to 60"* ]]
}

@test "--skip-loaded (the real root): a key in the keyring already is not counted as missing" {
	volume root "$HPCS_TAG-root"
	volume loaded "$HPCS_TAG-loaded"
	keyctl padd user "$HPCS_TAG-loaded" @u <"$BATS_TEST_TMPDIR/loaded.pass" >/dev/null
	emu_ctl POST faults '{"latency_ms":3000}' >/dev/null
	start_unlock --grace 1 --skip-loaded
	finish_unlock
	[ "$status" -eq 0 ]
	grep -q "Key Protect: 1 key not loaded yet; trying behind" "$BATS_TEST_TMPDIR/err"
	run -1 grep -q 'gave up' "$BATS_TEST_TMPDIR/err"
	grep -q 'loaded 1 of 1 keys in [0-9]* ms (1 already in the keyring)' "$BATS_TEST_TMPDIR/err"
}

# token_volume NAME: a volume as `volume NAME` makes it, and an hpcs token
# (issue 25) in its header for that passphrase, bound to its LUKS UUID.
token_volume() {
	local img=$BATS_TEST_TMPDIR/$1.img
	volume "$1"
	hpcs token make --luks-uuid "$(cryptsetup luksUUID "$img")" --keyslot 0 --name "$1" \
		<"$BATS_TEST_TMPDIR/$1.pass" >"$BATS_TEST_TMPDIR/$1.token"
	cryptsetup token import --token-id 0 --json-file "$BATS_TEST_TMPDIR/$1.token" "$img"
}

@test "a volume with only an hpcs token: its request is answered from the token; the token copied into another header is not" {
	token_volume tok
	# The token of tok copied into copy's header (another UUID, its own slot 0).
	volume copy
	cryptsetup token import --token-id 0 --key-slot 0 --json-file "$BATS_TEST_TMPDIR/tok.token" \
		"$BATS_TEST_TMPDIR/copy.img"
	printf 'tok %s none luks\ncopy %s none luks\n' "$BATS_TEST_TMPDIR/tok.img" \
		"$BATS_TEST_TMPDIR/copy.img" >"$BATS_TEST_TMPDIR/crypttab"
	# No key files: the KMS is opened for the tokens alone.
	start_unlock --grace 0 --deadline 30 --crypttab "$BATS_TEST_TMPDIR/crypttab"
	"$SD" ask "$ASK" tok "cryptsetup:$BATS_TEST_TMPDIR/tok.img" 20 "$BATS_TEST_TMPDIR/tok.answer" \
		>"$BATS_TEST_TMPDIR/tok.when" 3>&- &
	TOK_ASK=$!
	"$SD" ask "$ASK" copy "cryptsetup:$BATS_TEST_TMPDIR/copy.img" 8 "$BATS_TEST_TMPDIR/copy.answer" \
		>"$BATS_TEST_TMPDIR/copy.when" 3>&- &
	COPY_ASK=$!
	wait "$TOK_ASK" "$COPY_ASK"
	# Image files are never "open" (no dm-crypt holder): the agent would stay
	# until its deadline; the service manager stops it.
	kill -TERM "$AGENT_PID"
	finish_unlock
	[ "$status" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/tok.answer")" = "+$(cat "$BATS_TEST_TMPDIR/tok.pass")" ]
	# (A key file is taken whole: no newline.)
	printf '%s' "$(cut -c2- "$BATS_TEST_TMPDIR/tok.answer")" |
		cryptsetup open --test-passphrase --key-file - "$BATS_TEST_TMPDIR/tok.img"
	[ "$(cat "$BATS_TEST_TMPDIR/copy.when")" = none ]
	grep -q "Key Protect: 2 volumes with an hpcs token not open yet; answering their passphrase requests" "$BATS_TEST_TMPDIR/err"
	grep -q "answered the passphrase request for '$BATS_TEST_TMPDIR/tok.img' with its hpcs token of $(cryptsetup luksUUID "$BATS_TEST_TMPDIR/tok.img")" "$BATS_TEST_TMPDIR/err"
	grep -q "cannot unwrap the hpcs token of '$BATS_TEST_TMPDIR/copy.img'" "$BATS_TEST_TMPDIR/err"
	run -1 grep -q "copy.img' with" "$BATS_TEST_TMPDIR/err"
	# Nothing went into a keyring.
	run -1 keyctl search @u user tok
	refute_secrets "$(cat "$BATS_TEST_TMPDIR/err" "$BATS_TEST_TMPDIR/out" "$NOTIFY_LOG")" \
		"$EMU_API_KEY" "$(cat "$BATS_TEST_TMPDIR/tok.pass")"
}

@test "no key files and no hpcs token on the boot's volumes: READY=1 and exit 0 at once, the KMS never asked" {
	volume plain
	printf 'plain %s none luks\n' "$BATS_TEST_TMPDIR/plain.img" >"$BATS_TEST_TMPDIR/crypttab"
	emu_ctl POST reset-stats >/dev/null
	start_unlock --grace 30 --deadline 60 --crypttab "$BATS_TEST_TMPDIR/crypttab"
	finish_unlock
	[ "$status" -eq 0 ]
	# Neither the grace period nor the deadline was waited for.
	[ $((END_MS - START_MS)) -lt 20000 ]
	grep -q READY=1 "$NOTIFY_LOG"
	[ "$(emu_stat requests)" -eq 0 ]
	[ "$(emu_stat iam_requests)" -eq 0 ]
}
