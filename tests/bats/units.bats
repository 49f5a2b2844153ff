#!/usr/bin/env bats
# The systemd units: they pass `systemd-analyze verify` and state the
# ordering the boot flow relies on.

load helpers

setup() {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	UNITS="$BATS_TEST_TMPDIR/units"
	mkdir -p "$UNITS"
	top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	# Fill the templates as CMake does, pointing at the built binaries.
	for f in "$top"/systemd/*.service.in; do
		sed -e "s|@CMAKE_INSTALL_FULL_SBINDIR@|$HPCS_BIN_DIR|g" \
			-e "s|@CMAKE_INSTALL_FULL_DOCDIR@|$top|g" \
			"$f" >"$UNITS/$(basename "$f" .in)"
	done
}

@test "units pass systemd-analyze verify" {
	[ -x "$HPCS_BIN_DIR/hpcs-unlock" ] || skip "build first"
	run env SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$UNITS"/*.service
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "hpcs-for-luks.service: after the network, before remote cryptsetup, bounded" {
	u="$UNITS/hpcs-for-luks.service"
	grep -qx 'Wants=network-online.target remote-fs-pre.target' "$u"
	grep -qx 'After=network-online.target' "$u"
	grep -qx 'Before=remote-cryptsetup.target remote-fs-pre.target' "$u"
	grep -qx 'Type=oneshot' "$u"
	grep -qx 'RemainAfterExit=yes' "$u"
	grep -qx 'ConditionKernelCommandLine=!rd.hpcs=0' "$u"
	# The unlocker's own deadline ends before systemd's timeout.
	deadline=$(sed -n 's/^ExecStart=.*--deadline \([0-9]*\).*/\1/p' "$u")
	timeout=$(sed -n 's/^TimeoutStartSec=//p' "$u")
	[ -n "$deadline" ]
	[ -n "$timeout" ]
	[ "$deadline" -lt "$timeout" ]
	# Under ProtectSystem=strict only the key directory is writable: for the
	# newer wrappings after a rotation.
	grep -qx 'ProtectSystem=strict' "$u"
	grep -qx 'ReadWritePaths=-/var/lib/hpcs-for-luks' "$u"
}

@test "hpcs-for-luks-wipe.service runs after the volumes are open, without network" {
	u="$UNITS/hpcs-for-luks-wipe.service"
	# Whole unit names: "cryptsetup.target" must not match inside
	# "remote-cryptsetup.target".
	after=" $(sed -n 's/^After=//p' "$u" | tr '\n' ' ') "
	[[ "$after" == *" cryptsetup.target "* ]]
	[[ "$after" == *" remote-cryptsetup.target "* ]]
	grep -qx 'PrivateNetwork=yes' "$u"
	grep -q '^ExecStart=.*hpcs-for-luks wipe$' "$u"
}
