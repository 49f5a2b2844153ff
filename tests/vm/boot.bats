#!/usr/bin/env bats
# The product test: a real Debian kernel boots a real dracut initramfs built
# with dracut/99hpcs, and the LUKS2 root opens with nobody typing anything.
#
# The guest reaches the Key Protect emulator on the host at 10.0.2.2 (qemu
# user networking) as https://kms.test:PORT and https://iam.test:PORT, pinned
# with rd.hpcs.resolve= (mbedTLS cannot verify a certificate for an IP).
# The static hpcs-unlock is built from this tree (HPCS_STATIC=ON) into
# $HPCS_STATIC_BUILD_DIR (default build-static/), unless $HPCS_UNLOCK names a
# prebuilt one; the admin CLI from the same build wraps and seals the keys.
# Kernel, images, fixture and initramfs images are cached under
# ${HPCS_VM_CACHE:-~/.cache/hpcs-for-luks/vm}, keyed by their inputs.
#
# Needs root (cryptsetup on image files, swtpm, tcsd, apt-get for missing
# packages: tests/vm/setup-host.sh). KVM is used only if a probe boot shows
# that it works; otherwise TCG (about 40 s a boot). Skips only when qemu
# cannot run at all.

load ../bats/helpers
load lib.sh

VM=$BATS_TEST_DIRNAME
REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

# Emits a line into the bats output (TAP comment), whatever the test's result.
note() { echo "# $*" >&3; }

setup_file() {
	VM_SKIP=$(vm_preflight "$BATS_FILE_TMPDIR" "cryptsetup on images, swtpm, tcsd, apt-get") || return 1
	export VM_SKIP
	[ -z "$VM_SKIP" ] || return 0

	local build=${HPCS_STATIC_BUILD_DIR:-$REPO/build-static}
	if [ -z "${HPCS_UNLOCK:-}" ]; then
		vm_build_static "$build" "$BATS_FILE_TMPDIR/cmake.log" hpcs-unlock hpcs-for-luks || return 1
		HPCS_UNLOCK=$build/hpcs-unlock
	fi
	export HPCS_UNLOCK HFL=${HPCS_CLI:-$build/hpcs-for-luks}
	file -L "$HPCS_UNLOCK" | grep -q 'statically linked' || {
		echo "$HPCS_UNLOCK is not statically linked" >&2
		return 1
	}

	KDIR=$("$VM/prepare-kernel.sh")
	FIX=$("$VM/make-fixture.sh" "$HFL")
	IMG=$("$VM/make-images.sh" "$FIX/secret/passphrase" hpcs-vm:root "$FIX/secret/logon.key")
	export KDIR FIX IMG
	UUID=$(cat "$IMG/root.uuid")
	ACCEL=$("$VM/probe-accel.sh" "$KDIR/vmlinuz")
	export UUID ACCEL

	# One initramfs for every case with a plain API key, one with api_key =
	# TPM, and one without the module to measure what it adds.
	INITRD_PLAIN=$(hpcs_config=$FIX/plain.ini hpcs_unlock=$HPCS_UNLOCK \
		"$VM/make-initramfs.sh" "$KDIR" plain)
	INITRD_TPM=$(hpcs_config=$FIX/tpm.ini hpcs_unlock=$HPCS_UNLOCK \
		hpcs_tcsd_conf=$FIX/tcsd.conf "$VM/make-initramfs.sh" "$KDIR" tpm)
	INITRD_NONE=$("$VM/make-initramfs.sh" "$KDIR" none --without-hpcs)
	export INITRD_PLAIN INITRD_TPM INITRD_NONE

	local none plain tpm
	none=$(stat -c %s "$INITRD_NONE")
	plain=$(stat -c %s "$INITRD_PLAIN")
	tpm=$(stat -c %s "$INITRD_TPM")
	note "accelerator: $ACCEL; kernel $(cat "$KDIR/kver")"
	note "initramfs (zstd): without hpcs $none B; with hpcs $plain B (+$((plain - none)) B);" \
		"with hpcs and TPM $tpm B (+$((tpm - none)) B)"
	note "hpcs files in the initramfs (uncompressed): $(_module_bytes "$INITRD_PLAIN") B plain," \
		"$(_module_bytes "$INITRD_TPM") B with TPM (tcsd and its libraries not counted)"
}

# Bytes of the files that the hpcs module installs itself.
_module_bytes() {
	lsinitrd "$1" 2>/dev/null | awk '
		$NF ~ /hpcs|tcsd\.conf|var\/lib\/tpm/ && $NF !~ /vmtest/ && $1 ~ /^-/ { s += $5 }
		END { print s + 0 }'
}

setup() {
	[ -z "$VM_SKIP" ] || skip "$VM_SKIP"
	# The fixture's emulator state: its CA, API key and CRK.
	# shellcheck source=/dev/null
	. "$FIX/env"
	export EMU_API_KEY EMU_INSTANCE
	emulator_start --state-dir "$FIX/emu"
	LOG=$BATS_TEST_TMPDIR/serial.log
	VM_LOGS=${HPCS_VM_CACHE:-$HOME/.cache/hpcs-for-luks/vm}/logs
}

teardown() {
	emulator_stop
	# Kept after the run (the last run's logs) for a look at what happened.
	if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
		mkdir -p "$VM_LOGS"
		cp "$LOG" "$VM_LOGS/${BATS_TEST_DESCRIPTION%% *}.serial.log"
	fi
}

# The kernel command line of every boot; extra arguments are appended.
cmdline() {
	echo "console=ttyS0 rd.luks.uuid=$UUID root=/dev/mapper/luks-$UUID" \
		"rd.neednet=1 ip=dhcp" \
		"rd.hpcs.endpoint=https://kms.test:$EMU_PORT rd.hpcs.iam=https://iam.test:$EMU_PORT" \
		"rd.hpcs.resolve=kms.test:10.0.2.2 rd.hpcs.resolve=iam.test:10.0.2.2" \
		"systemd.log_target=kmsg systemd.log_level=info printk.devkmsg=on" \
		"rd.shell=0 rd.emergency=poweroff panic=-1" "$@"
}

# boot INITRD UNTIL_REGEX TIMEOUT [--tpm DIR] -- CMDLINE_EXTRA...
# Boots with the root and the logon-key disks; the serial log goes to $LOG.
boot() {
	local initrd=$1 until=$2 timeout=$3
	shift 3
	local -a opts=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	[ "${1:-}" = -- ] && shift
	BOOT_START=$SECONDS
	# shellcheck disable=SC2046  # the command line is meant to split into words
	run "$VM/boot.sh" --accel "$ACCEL" --kernel "$KDIR/vmlinuz" --initrd "$initrd" \
		--disk "$IMG/root.img" --disk "$IMG/logon.img" "${opts[@]}" \
		--log "$LOG" --until "$until" --timeout "$timeout" -- $(cmdline "$@")
	BOOT_SECONDS=$((SECONDS - BOOT_START))
	note "$BATS_TEST_DESCRIPTION: boot took ${BOOT_SECONDS} s (wall);" \
		"$("$VM/parse-log.sh" "$LOG")"
}

# The serial log's lines about us, shown when a test fails.
show_log() {
	echo "--- serial log (filtered; the full one is kept in $VM_LOGS) ---"
	grep -aE 'hpcs|HPCS|tcsd|cryptsetup|passphrase|network-online|Kernel panic|emergency' "$LOG" | tail -n 60
}

assert_log() {
	grep -aqE -- "$1" "$LOG" || {
		echo "serial log lacks /$1/"
		show_log
		return 1
	}
}

refute_log() {
	! grep -aqE -- "$1" "$LOG" || {
		echo "serial log has /$1/:"
		grep -aE -- "$1" "$LOG"
		return 1
	}
}

@test "(a) the LUKS2 root opens by itself through the keyring token" {
	boot "$INITRD_PLAIN" 'HPCS-LOGON-DATA|Please enter passphrase|Power down' 300 -- hpcs_vmtest.logon
	[ "$status" -eq 0 ] || {
		show_log
		false
	}
	assert_log 'systemd\[1\]: Finished hpcs-unlock\.service'
	assert_log 'hpcs-unlock\[[0-9]+\]: loaded 2 of 2 keys'
	assert_log 'systemd\[1\]: Finished systemd-cryptsetup@luks'
	assert_log 'HPCS-ROOT-OK'
	refute_log 'Please enter passphrase'
	refute_log 'hpcs-unlock\[[0-9]+\]: .*(not loaded|failed)'
	# The emulator did the work: one token, two unwraps.
	[ "$(emu_stat by_op.unwrap)" -ge 2 ] || {
		echo "emulator saw $(emu_stat by_op.unwrap) unwraps"
		false
	}
	cp "$LOG" "$BATS_FILE_TMPDIR/plain.serial.log"
}

@test "(b) the logon-key volume opens with dmsetup and a :32:logon: table" {
	# Same boot as (a): hpcs-vmtest-logon.service ran `dmsetup create` with the
	# key from the keyring and the root printed the volume's first sector.
	if [ -f "$BATS_FILE_TMPDIR/plain.serial.log" ]; then
		cp "$BATS_FILE_TMPDIR/plain.serial.log" "$LOG"
	else
		boot "$INITRD_PLAIN" 'HPCS-LOGON-DATA|Please enter passphrase|Power down' 300 -- hpcs_vmtest.logon
		[ "$status" -eq 0 ] || {
			show_log
			false
		}
	fi
	assert_log 'systemd\[1\]: Finished hpcs-vmtest-logon\.service'
	assert_log 'HPCS-LOGON-DATA: HPCS-LOGON-PLAINTEXT sector0 of the logon-key volume'
}

@test "(c) api_key = TPM: tcsd in the initramfs unseals the API key from a TPM 1.2" {
	# The image holds the sealed blob, never the API key itself.
	lsinitrd -f etc/hpcs-for-luks.ini "$INITRD_TPM" | grep -qx 'api_key = TPM'
	lsinitrd -f var/lib/hpcs-for-luks/api-key-blob.txt "$INITRD_TPM" | grep -q .
	if zstd -dc "$INITRD_TPM" | grep -aqF "$EMU_API_KEY"; then
		echo "the API key is in the TPM initramfs"
		false
	fi
	boot "$INITRD_TPM" 'HPCS-ROOT-OK|Please enter passphrase|Power down' 300 --tpm "$FIX/tpm/state" --
	[ "$status" -eq 0 ] || {
		show_log
		false
	}
	assert_log 'tpm_tis .*1\.2 TPM'
	assert_log 'systemd\[1\]: Started hpcs-tcsd\.service'
	assert_log 'systemd\[1\]: Finished hpcs-unlock\.service'
	assert_log 'hpcs-unlock\[[0-9]+\]: loaded 2 of 2 keys'
	assert_log 'systemd\[1\]: hpcs-tcsd\.service: Deactivated successfully'
	assert_log 'HPCS-ROOT-OK'
	refute_log 'Please enter passphrase'
}

@test "(d) KMS down: the passphrase prompt comes within rd.hpcs.timeout, no hang" {
	local timeout=20 slack=40
	emulator_stop
	boot "$INITRD_PLAIN" 'Please enter passphrase|HPCS-ROOT-OK|Power down' 300 -- rd.hpcs.timeout=$timeout
	[ "$status" -eq 0 ] || {
		show_log
		false
	}
	assert_log 'Please enter passphrase for disk'
	assert_log 'systemd\[1\]: Failed to start hpcs-unlock\.service'
	assert_log 'hpcs-unlock\.service: Main process exited, code=exited, status=3/'
	refute_log 'HPCS-ROOT-OK'
	# The unlocker gave up within its deadline (+ slack for TCG).
	local t
	t=$("$VM/parse-log.sh" "$LOG" | sed -n 's/.*unlock_run=\([0-9.]*\).*/\1/p')
	[ -n "$t" ] || {
		show_log
		false
	}
	awk -v t="$t" -v max=$((timeout + slack)) 'BEGIN { exit !(t <= max) }' ||
		{
			echo "hpcs-unlock ran ${t} s, more than $timeout + $slack"
			false
		}
}

@test "(e) rd.hpcs=0 skips the unit: no KMS request, the prompt comes" {
	boot "$INITRD_PLAIN" 'Please enter passphrase|HPCS-ROOT-OK|Power down' 300 -- rd.hpcs=0
	[ "$status" -eq 0 ] || {
		show_log
		false
	}
	assert_log 'Please enter passphrase for disk'
	assert_log 'hpcs-unlock\.service.*(skipped|unmet condition).*rd\.hpcs=0'
	refute_log 'systemd\[1\]: Starting hpcs-unlock\.service'
	refute_log 'HPCS-ROOT-OK'
	[ "$(emu_stat requests)" -eq 0 ] || {
		echo "emulator saw $(emu_stat requests) requests"
		false
	}
}
