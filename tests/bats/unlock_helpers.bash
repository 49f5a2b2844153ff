# shellcheck shell=bash
# Helpers of the hpcs-unlock suites (unlock.bats, connections.bats), loaded
# after helpers.bash.

# unlock_setup [EMULATOR_ARGS...]: the emulator, a config and an empty key directory
# (hpcs_setup); a kernel command line without rd.hpcs options in $CMDLINE;
# the unlocker under test in $UNLOCK.
unlock_setup() {
	command -v keyctl >/dev/null || skip "keyctl (keyutils) is not installed"
	[ -x "$HPCS_BIN_DIR/hpcs-unlock" ] || skip "no hpcs-unlock in $HPCS_BIN_DIR: build first"
	hpcs_setup "$@"
	CMDLINE="$BATS_TEST_TMPDIR/cmdline"
	echo "BOOT_IMAGE=/vmlinuz root=/dev/mapper/root ro quiet" >"$CMDLINE"
	UNLOCK="$HPCS_BIN_DIR/hpcs-unlock"
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
