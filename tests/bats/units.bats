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
		sed -e "s|@HPCS_SBINDIR@|$HPCS_BIN_DIR|g" "$f" >"$UNITS/$(basename "$f" .in)"
	done
}

@test "units pass systemd-analyze verify" {
	[ -x "$HPCS_BIN_DIR/hpcs-unlock" ] || skip "build first"
	# --man=no: the units name our man pages, installed with the package.
	run env SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$UNITS"/*.service
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "hpcs-for-luks.service: after the network, before remote cryptsetup, bounded" {
	u="$UNITS/hpcs-for-luks.service"
	grep -qx 'Wants=network-online.target remote-fs-pre.target' "$u"
	after=" $(sed -n 's/^After=//p' "$u" | tr '\n' ' ') "
	[[ "$after" == *" network-online.target "* ]]
	grep -qx 'Before=remote-cryptsetup.target remote-fs-pre.target' "$u"
	# READY=1 after the grace period at most, not after the deadline (issue 24).
	grep -qx 'Type=notify' "$u"
	grep -qx 'RemainAfterExit=yes' "$u"
	grep -q '^ExecStart=.* --revoke-late-keys' "$u"
	grep -qx 'ConditionKernelCommandLine=!rd.hpcs=0' "$u"
	# In every boot once enabled: Debian does not enable remote-cryptsetup.target.
	grep -qx 'WantedBy=multi-user.target' "$u"
	# The unlocker's own deadline ends before systemd's limit on its run.
	deadline=$(sed -n 's/^ExecStart=.*--deadline \([0-9]*\).*/\1/p' "$u")
	runtime=$(sed -n 's/^RuntimeMaxSec=//p' "$u")
	[ -n "$deadline" ]
	[ -n "$runtime" ]
	[ "$deadline" -lt "$runtime" ]
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

# max_deadline_below_timeout UNIT: ExecStart caps the run (rd.hpcs.timeout
# included, see unlock.bats), plus the 10 s it stays for a request on its
# way, below the unit's RuntimeMaxSec; and its longest grace period (60 s,
# rd.hpcs.grace=) below TimeoutStartSec (issue 24: Type=notify).
max_deadline_below_timeout() {
	local max runtime start
	max=$(sed -n 's/^ExecStart=.*--max-deadline \([0-9]*\).*/\1/p' "$1")
	runtime=$(sed -n 's/^RuntimeMaxSec=//p' "$1")
	start=$(sed -n 's/^TimeoutStartSec=//p' "$1")
	echo "$1: --max-deadline '$max', RuntimeMaxSec '$runtime', TimeoutStartSec '$start'"
	[ -n "$max" ]
	[ -n "$runtime" ]
	[ $((max + 10)) -lt "$runtime" ]
	[ 60 -lt "$start" ]
	grep -qx 'Type=notify' "$1"
}

@test "rd.hpcs.timeout cannot make either unit outlive its RuntimeMaxSec (item 10.7, issue 24)" {
	max_deadline_below_timeout "$UNITS/hpcs-for-luks.service"
	max_deadline_below_timeout "$top/dracut/99hpcs/hpcs-unlock.service"
}

@test "hpcs-for-luks.service starts after tcsd, which a TPM 1.2 blob needs (item 10.7)" {
	after=" $(sed -n 's/^After=//p' "$UNITS/hpcs-for-luks.service" | tr '\n' ' ') "
	[[ "$after" == *" tcsd.service "* ]]
	# Ordering only: tcsd is not pulled in where it is not wanted.
	run grep -E '^(Wants|Requires)=.*tcsd' "$UNITS/hpcs-for-luks.service"
	[ "$status" -eq 1 ]
}

# --- The generator: the wipe waits for every crypttab volume (issue 22)

@test "hpcs-for-luks-generator orders the wipe after every crypttab volume, nofail ones too" {
	local gen=$top/systemd/hpcs-for-luks-generator out=$BATS_TEST_TMPDIR/gen
	[ -x "$gen" ]
	command -v systemd-escape >/dev/null || skip "systemd-escape is not installed"
	cat >"$BATS_TEST_TMPDIR/crypttab" <<-'CRYPTTAB'
		# name device key options
		luks-1234 UUID=1234 none luks,discard
		  data-2 /dev/sdb none nofail,_netdev
		my.vol /dev/sdc - nofail
		name-only
		héllo@x /dev/sdd none nofail
	CRYPTTAB
	mkdir -p "$out/normal" "$out/early" "$out/late"
	run env SYSTEMD_CRYPTTAB="$BATS_TEST_TMPDIR/crypttab" "$gen" "$out/normal" "$out/early" "$out/late"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	local d=$out/normal/hpcs-for-luks-wipe.service.d/50-crypttab.conf
	cat "$d"
	grep -qx '\[Unit\]' "$d"
	# The names as systemd-cryptsetup-generator escapes them for its units.
	grep -qxF 'After=systemd-cryptsetup@luks\x2d1234.service systemd-cryptsetup@data\x2d2.service systemd-cryptsetup@my.vol.service systemd-cryptsetup@h\xc3\xa9llo\x40x.service' "$d"
	# Nothing but the drop-in, in the normal directory only.
	[ "$(cd "$out" && find . ! -type d)" = "./normal/hpcs-for-luks-wipe.service.d/50-crypttab.conf" ]
	# The wipe unit with the drop-in still verifies.
	mkdir -p "$UNITS/hpcs-for-luks-wipe.service.d"
	cp "$d" "$UNITS/hpcs-for-luks-wipe.service.d/"
	run env SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$UNITS/hpcs-for-luks-wipe.service"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "hpcs-for-luks-generator never fails the boot: no crypttab, no volume, no output directory" {
	local gen=$top/systemd/hpcs-for-luks-generator out=$BATS_TEST_TMPDIR/gen
	mkdir -p "$out"
	run env SYSTEMD_CRYPTTAB="$BATS_TEST_TMPDIR/none" "$gen" "$out" "$out" "$out"
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$out")" ]
	printf '# only comments\n\n' >"$BATS_TEST_TMPDIR/crypttab"
	run env SYSTEMD_CRYPTTAB="$BATS_TEST_TMPDIR/crypttab" "$gen" "$out" "$out" "$out"
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$out")" ]
	echo 'v /dev/sdb' >"$BATS_TEST_TMPDIR/crypttab"
	run env SYSTEMD_CRYPTTAB="$BATS_TEST_TMPDIR/crypttab" "$gen" /proc/no/such/dir /x /y
	[ "$status" -eq 0 ]
	run env SYSTEMD_CRYPTTAB="$BATS_TEST_TMPDIR/crypttab" "$gen"
	[ "$status" -eq 0 ]
}

# --- Hardening (issue 22): the scores of `systemd-analyze security`, and the
# directives that give them, stay. The VM real-system test (tests/vm) boots
# with them.

# exposure UNIT MAX: systemd-analyze's exposure of UNIT (0.0 to 10.0) is at
# most MAX (one decimal).
exposure() {
	local max=$((10#${2/./}))
	run systemd-analyze security --offline=yes --threshold="$max" "$1"
	echo "$output" | tail -n 1
	[ "$status" -eq 0 ]
}

# has UNIT LINE...: each LINE is a whole line of UNIT.
has() {
	local u=$1 l
	shift
	for l; do grep -qxF -- "$l" "$u" || {
		echo "$u lacks '$l'"
		return 1
	}; done
}

common_hardening=('UMask=0077' 'AmbientCapabilities=' 'NoNewPrivileges=yes' 'PrivateMounts=yes'
	'ProtectSystem=strict' 'ProtectHome=yes' 'ProtectKernelTunables=yes' 'ProtectKernelModules=yes'
	'ProtectKernelLogs=yes' 'ProtectControlGroups=yes' 'ProtectClock=yes' 'ProtectHostname=yes'
	'ProtectProc=invisible' 'RestrictNamespaces=yes' 'RestrictRealtime=yes' 'RestrictSUIDSGID=yes'
	'LockPersonality=yes' 'MemoryDenyWriteExecute=yes' 'SystemCallArchitectures=native'
	'SystemCallFilter=@system-service' 'SystemCallFilter=~@privileged' 'SystemCallErrorNumber=EPERM')

@test "hpcs-for-luks.service is hardened (exposure 2.1, was 6.8) and still reaches the TPM, the KMS and @u" {
	local u=$UNITS/hpcs-for-luks.service
	exposure "$u" 2.1
	has "$u" "${common_hardening[@]}" 'CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_IPC_LOCK' \
		'DevicePolicy=closed' 'DeviceAllow=/dev/tpmrm0 rw' 'DeviceAllow=/dev/tpm0 rw' \
		'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' 'KeyringMode=private' 'PrivateTmp=yes'
	# Not what would cut it off from the KMS or the TPM.
	run grep -E '^(PrivateNetwork|IPAddressDeny|PrivateDevices|PrivateUsers)=' "$u"
	[ "$status" -eq 1 ]
}

@test "hpcs-for-luks-wipe.service is hardened (exposure 0.8, was 8.4): no capability, network or device" {
	local u=$UNITS/hpcs-for-luks-wipe.service
	exposure "$u" 0.8
	has "$u" "${common_hardening[@]}" 'CapabilityBoundingSet=' 'PrivateNetwork=yes' \
		'IPAddressDeny=any' 'RestrictAddressFamilies=AF_UNIX' 'PrivateDevices=yes' 'DevicePolicy=closed' \
		'ProcSubset=pid' 'KeyringMode=private'
}

@test "the initramfs unit hpcs-unlock.service is hardened (exposure 2.3, was 9.5) and verifies" {
	local u=$top/dracut/99hpcs/hpcs-unlock.service
	exposure "$u" 2.3
	has "$u" "${common_hardening[@]}" 'CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_IPC_LOCK' \
		'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6'
	# The TPM 2.0 may appear after the start, which DeviceAllow= would miss.
	run grep -E '^(DevicePolicy|DeviceAllow|PrivateDevices|PrivateNetwork|PrivateTmp)=' "$u"
	[ "$status" -eq 1 ]
	[ -x "$HPCS_BIN_DIR/hpcs-unlock" ] || skip "build first"
	sed "s|/usr/sbin/hpcs-unlock|$HPCS_BIN_DIR/hpcs-unlock|" "$u" >"$UNITS/hpcs-unlock.service"
	run env SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$UNITS/hpcs-unlock.service"
	echo "$output"
	[ "$status" -eq 0 ]
}
