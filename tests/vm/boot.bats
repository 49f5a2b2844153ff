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
# that it works; otherwise TCG (about 40 s a boot). Skips only when it is not
# root or qemu cannot run at all, and tests/run-all.sh (CI) fails on a skip:
# the product test must not go missing from a green run.

load ../bats/helpers
load lib.sh

setup_file() {
	vm_preflight "cryptsetup on images, swtpm, tcsd, apt-get" || return 1
	[ -z "$VM_SKIP" ] || return 0

	local build=${HPCS_STATIC_BUILD_DIR:-$VM_REPO/build-static}
	if [ -z "${HPCS_UNLOCK:-}" ]; then
		vm_build_static "$build" "$BATS_FILE_TMPDIR/cmake.log" hpcs-unlock hpcs-for-luks \
			libcryptsetup-token-hpcs || return 1
		HPCS_UNLOCK=$build/hpcs-unlock
	fi
	export HPCS_UNLOCK HFL=${HPCS_CLI:-$build/hpcs-for-luks}
	# The token plugin, made to run /usr/sbin/hpcs-unlock (vm_build_static).
	export HPCS_TOKEN_PLUGIN=${HPCS_TOKEN_PLUGIN:-$build/libcryptsetup-token-hpcs.so}
	file -L "$HPCS_UNLOCK" | grep -q 'statically linked' || {
		echo "$HPCS_UNLOCK is not statically linked" >&2
		return 1
	}

	KDIR=$("$VM_HERE/prepare-kernel.sh")
	FIX=$("$VM_HERE/make-fixture.sh" "$HFL")
	IMG=$("$VM_HERE/make-images.sh" "$FIX/secret/passphrase" hpcs-vm:root "$FIX/secret/logon.key" \
		"$FIX/secret/data.key" hpcs-vm:data)
	export KDIR FIX IMG
	UUID=$(cat "$IMG/root.uuid")
	DATA_UUID=$(cat "$IMG/data.uuid")
	ACCEL=$("$VM_HERE/probe-accel.sh" "$KDIR/vmlinuz")
	export UUID DATA_UUID ACCEL
	# A root and a second volume with only an hpcs token each (made with
	# the emulator, which the script starts on the fixture's state), and the
	# root's crypttab.
	TOK=$("$VM_HERE/make-token-image.sh" "$HFL" "$FIX" "$IMG/root.img" "$IMG/data.img")
	TOKEN_UUID=$(cat "$TOK/root.uuid")
	TOKEN_DATA_UUID=$(cat "$TOK/data.uuid")
	export TOK TOKEN_UUID TOKEN_DATA_UUID

	# One initramfs for every case with a plain API key, one with api_key =
	# TPM, and one without the module to measure what it adds.
	INITRD_PLAIN=$(hpcs_config=$FIX/plain.ini hpcs_unlock=$HPCS_UNLOCK hpcs_cli=$HFL \
		"$VM_HERE/make-initramfs.sh" "$KDIR" plain)
	INITRD_TPM=$(hpcs_config=$FIX/tpm.ini hpcs_unlock=$HPCS_UNLOCK hpcs_cli=$HFL \
		hpcs_tcsd_conf=$FIX/tcsd.conf "$VM_HERE/make-initramfs.sh" "$KDIR" tpm)
	INITRD_TPM2=$(hpcs_config=$FIX/tpm2.ini hpcs_unlock=$HPCS_UNLOCK hpcs_cli=$HFL \
		"$VM_HERE/make-initramfs.sh" "$KDIR" tpm2)
	INITRD_VPC=$(hpcs_config=$FIX/vpc.ini hpcs_unlock=$HPCS_UNLOCK hpcs_cli=$HFL \
		"$VM_HERE/make-initramfs.sh" "$KDIR" vpc)
	# Only tokens: no key file, the plugin (the module finds the token in
	# the crypttab's volume).
	INITRD_TOKEN=$(hpcs_config=$TOK/token.ini hpcs_unlock=$HPCS_UNLOCK hpcs_cli=$HFL \
		hpcs_token_plugin=$HPCS_TOKEN_PLUGIN hpcs_crypttab=$TOK/crypttab \
		"$VM_HERE/make-initramfs.sh" "$KDIR" token)
	INITRD_NONE=$("$VM_HERE/make-initramfs.sh" "$KDIR" none --without-hpcs)
	export INITRD_PLAIN INITRD_TPM INITRD_TPM2 INITRD_VPC INITRD_TOKEN INITRD_NONE

	local none plain tpm tpm2 vpc token
	none=$(stat -c %s "$INITRD_NONE")
	plain=$(stat -c %s "$INITRD_PLAIN")
	tpm=$(stat -c %s "$INITRD_TPM")
	tpm2=$(stat -c %s "$INITRD_TPM2")
	vpc=$(stat -c %s "$INITRD_VPC")
	token=$(stat -c %s "$INITRD_TOKEN")
	note "accelerator: $ACCEL; kernel $(cat "$KDIR/kver")"
	note "initramfs (zstd): without hpcs $none B; with hpcs $plain B (+$((plain - none)) B);" \
		"with hpcs and TPM 1.2 $tpm B (+$((tpm - none)) B);" \
		"with hpcs and TPM 2.0 $tpm2 B (+$((tpm2 - none)) B);" \
		"with hpcs and auth = vpc $vpc B (+$((vpc - none)) B);" \
		"with hpcs, only tokens (the plugin, no key file) $token B (+$((token - none)) B)"
	note "hpcs files in the initramfs (uncompressed): $(_module_bytes "$INITRD_PLAIN") B plain," \
		"$(_module_bytes "$INITRD_TPM") B with TPM 1.2 (tcsd and its libraries not counted)," \
		"$(_module_bytes "$INITRD_TPM2") B with TPM 2.0"
}

# Bytes of the files that the hpcs module installs itself.
_module_bytes() {
	lsinitrd "$1" 2>/dev/null | awk '
		$NF ~ /hpcs|tcsd\.conf|var\/lib\/tpm/ && $NF !~ /vmtest/ && $1 ~ /^-/ { s += $5 }
		END { print s + 0 }'
}

setup() {
	[ -z "$VM_SKIP" ] || skip "$VM_SKIP"
	kms_up
	LOG=$BATS_TEST_TMPDIR/serial.log
}

teardown() {
	# The timer of _kms_back_after, if it has not fired (it has a process
	# group of its own: its sleep goes too).
	if [ -n "${KMS_TIMER:-}" ]; then
		kill -- -"$KMS_TIMER" 2>/dev/null || true
		wait "$KMS_TIMER" 2>/dev/null || true
	fi
	emulator_stop
	# Kept after the run (the last run's logs) for a look at what happened.
	if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
		mkdir -p "$VM_LOGS"
		cp "$LOG" "$VM_LOGS/${BATS_TEST_DESCRIPTION%% *}.serial.log"
	fi
}

# The kernel command line of every boot; extra arguments are appended. The
# host, as the guest sees it, is $VM_HOST (qemu's 10.0.2.2 unless a boot
# gives the guest another network with boot.sh --net).
cmdline() {
	local host=${VM_HOST:-10.0.2.2}
	echo "console=ttyS0 rd.luks.uuid=$UUID root=/dev/mapper/luks-$UUID" \
		"rd.neednet=1 ip=dhcp" \
		"rd.hpcs.endpoint=https://kms.test:$EMU_PORT rd.hpcs.iam=https://iam.test:$EMU_PORT" \
		"rd.hpcs.resolve=kms.test:$host rd.hpcs.resolve=iam.test:$host" \
		"systemd.log_target=kmsg systemd.log_level=info printk.devkmsg=on" \
		"${VM_SHELL_OPTS-rd.shell=0 rd.emergency=poweroff} panic=-1" "$@"
}

# boot INITRD UNTIL_REGEX TIMEOUT [--tpm DIR | --tpm2 DIR | --rtc DATE] -- CMDLINE_EXTRA...
# Boots with the root (ROOT_IMG, default the fixture's; its UUID in $UUID) and
# the logon-key disks; the serial log goes to $LOG.
boot() {
	local initrd=$1 until=$2 timeout=$3
	shift 3
	vm_split_opts "$@"
	BOOT_START=$SECONDS
	# shellcheck disable=SC2046  # the command line is meant to split into words
	run "$VM_HERE/boot.sh" --accel "$ACCEL" --kernel "$KDIR/vmlinuz" --initrd "$initrd" \
		--disk "${ROOT_IMG:-$IMG/root.img}" --disk "$IMG/logon.img" "${VM_OPTS[@]}" \
		--log "$LOG" --until "$until" --timeout "$timeout" -- $(cmdline "${VM_ARGS[@]}")
	BOOT_SECONDS=$((SECONDS - BOOT_START))
	note "$BATS_TEST_DESCRIPTION: boot took ${BOOT_SECONDS} s (wall);" \
		"$("$VM_HERE/parse-log.sh" "$LOG")"
}

# _span NAME: a figure of parse-log.sh on $LOG (start_to_prompt, unlock_run,
# ...), or nothing if the log lacks it.
_span() {
	"$VM_HERE/parse-log.sh" "$LOG" | tr ' ' '\n' | sed -n "s/^$1=\([0-9.]*\)\$/\1/p"
}

# _assert_prompt_within MAX: the first passphrase prompt came at most MAX
# seconds (guest uptime) after systemd started hpcs-unlock.service.
_assert_prompt_within() {
	local t
	t=$(_span start_to_prompt)
	[ -n "$t" ] || {
		echo "no passphrase prompt after hpcs-unlock.service started"
		show_log
		return 1
	}
	note "$BATS_TEST_DESCRIPTION: the prompt ${t} s after hpcs-unlock.service started"
	awk -v t="$t" -v max="$1" 'BEGIN { exit !(t <= max) }' || {
		echo "the prompt came ${t} s after hpcs-unlock.service started, more than $1 s"
		show_log
		return 1
	}
}

# _kms_back_after SECONDS: the emulator's fault set cleared SECONDS from now,
# in the background (KMS_TIMER; teardown ends it if it has not fired); it
# writes the host's uptime then to $BATS_TEST_TMPDIR/kms-back.
_kms_back_after() {
	# shellcheck disable=SC2016  # expanded by the inner bash, from its arguments
	setsid bash -c 'sleep "$1" &&
		curl -sS --max-time 10 --fail --cacert "$2" -X POST -H "Content-Type: application/json" \
			--data-binary "{}" "$3/_emulator/faults" >/dev/null &&
		cut -d" " -f1 /proc/uptime >"$4"' _ "$1" "$EMU_CA" "$EMU_URL" "$BATS_TEST_TMPDIR/kms-back" \
		</dev/null >/dev/null 2>&1 3>&- &
	KMS_TIMER=$!
}

# _note_serial REGEX: the serial log's lines that match (but systemd's
# coloured status lines and our test units'), into the TAP output.
_note_serial() {
	local line
	while IFS= read -r line; do note "serial: $line"; done < <(grep -aE "$1" "$LOG" |
		grep -avE $'\e|Consumed|hpcs-vmtest' | cut -c1-200 | head -n 30)
}

# The serial log's lines about us, shown when a test fails.
show_log() {
	echo "--- serial log (filtered; the full one is kept in $VM_LOGS) ---"
	grep -aE 'hpcs|HPCS|tcsd|cryptsetup|passphrase|network-online|Kernel panic|emergency' "$LOG" | tail -n 60
}

# The boot just run: hpcs-unlock loaded every key (root, data and logon),
# told systemd it was ready, and ended, having nothing left to do;
# systemd-cryptsetup opened the root with them, the root came up, no prompt
# and no password request left behind.
_assert_opened_by_itself() {
	assert_log 'systemd\[1\]: Started hpcs-unlock\.service'
	assert_log 'hpcs-unlock\[[0-9]+\]: loaded 3 of 3 keys'
	assert_log 'systemd\[1\]: hpcs-unlock\.service: Deactivated successfully'
	assert_log 'systemd\[1\]: Finished systemd-cryptsetup@luks'
	assert_log 'HPCS-ROOT-OK'
	assert_log 'HPCS-ASK-LEFT: none'
	refute_log 'Please enter passphrase'
	refute_log 'hpcs-unlock\[[0-9]+\]: .*(not loaded|failed|answered the passphrase request)'
}

@test "(a) the LUKS2 root and a second LUKS2 volume open by themselves through the keyring token, no request left" {
	boot "$INITRD_PLAIN" 'HPCS-LOGON-DATA|Please enter passphrase|Power down' 300 --disk "$IMG/data.img" \
		-- hpcs_vmtest.logon "rd.luks.uuid=$DATA_UUID"
	assert_booted
	_assert_opened_by_itself
	assert_log "HPCS-MAPPED: .*luks-$UUID"
	assert_log "HPCS-MAPPED: .*luks-$DATA_UUID"
	# The emulator did the work: one token, three unwraps.
	[ "$(emu_stat by_op.unwrap)" -ge 3 ] || {
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
		boot "$INITRD_PLAIN" 'HPCS-LOGON-DATA|Please enter passphrase|Power down' 300 --disk "$IMG/data.img" \
			-- hpcs_vmtest.logon "rd.luks.uuid=$DATA_UUID"
		assert_booted
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
	assert_booted
	assert_log 'tpm_tis .*1\.2 TPM'
	assert_log 'systemd\[1\]: Started hpcs-tcsd\.service'
	assert_log 'systemd\[1\]: Started hpcs-unlock\.service'
	# The TPM 1.2 is locked (through tcsd) once the unlock is done.
	assert_log 'hpcs-unlock\[[0-9]+\]: the TPM is locked for the rest of this boot: PCR 15'
	assert_log 'hpcs-unlock\[[0-9]+\]: loaded 3 of 3 keys'
	assert_log 'systemd\[1\]: hpcs-tcsd\.service: Deactivated successfully'
	assert_log 'HPCS-ROOT-OK'
	refute_log 'Please enter passphrase'
}

@test "(d) KMS down, rd.hpcs.timeout=20: the prompt comes before our unit gives up, and it gives up within the deadline" {
	local timeout=20 slack=40
	emulator_stop
	# Until the unit's end line: the prompt comes first now.
	boot "$INITRD_PLAIN" "hpcs-unlock\\.service: Failed with result|HPCS-ROOT-OK|Power down" 300 \
		-- rd.hpcs.timeout=$timeout
	assert_booted
	assert_log 'Please enter passphrase for disk'
	assert_log 'hpcs-unlock\[[0-9]+\]: Key Protect: [0-9]+ keys? not loaded yet; trying behind the passphrase prompt'
	assert_log 'hpcs-unlock\[[0-9]+\]: Key Protect: gave up after [0-9]+ s; [0-9]+ keys? not loaded \(the passphrase prompt stays\)'
	assert_log 'hpcs-unlock\.service: Main process exited, code=exited, status=3/'
	assert_log "systemd\\[1\\]: hpcs-unlock\\.service: Failed with result 'exit-code'"
	# It was ready (the prompt could come) before it gave up.
	assert_log 'systemd\[1\]: Started hpcs-unlock\.service'
	refute_log 'systemd\[1\]: Failed to start hpcs-unlock\.service'
	refute_log 'HPCS-ROOT-OK'
	# The prompt came before the unit ended; the unlocker gave up within its
	# deadline (+ slack for TCG).
	local t p
	t=$(_span unlock_run)
	p=$(_span start_to_prompt)
	[ -n "$t" ] || {
		show_log
		false
	}
	[ -n "$p" ]
	note "$BATS_TEST_DESCRIPTION: prompt ${p} s, unit end ${t} s after its start"
	awk -v t="$t" -v p="$p" 'BEGIN { exit !(p < t) }' || {
		echo "the prompt (${p} s) came after hpcs-unlock ended (${t} s)"
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
	assert_booted
	assert_log 'Please enter passphrase for disk'
	assert_log 'hpcs-unlock\.service.*(skipped|unmet condition).*rd\.hpcs=0'
	refute_log 'systemd\[1\]: Starting hpcs-unlock\.service'
	refute_log 'HPCS-ROOT-OK'
	[ "$(emu_stat requests)" -eq 0 ] || {
		echo "emulator saw $(emu_stat requests) requests"
		false
	}
}

# The API key, wrapped in a TPM 2.0 image: the blob is in, the key is not,
# and nothing of trousers.
_assert_tpm2_image() {
	lsinitrd -f etc/hpcs-for-luks.ini "$1" | grep -qx 'api_key = TPM'
	lsinitrd -f var/lib/hpcs-for-luks/api-key-blob.txt "$1" |
		grep -qx -- '-----BEGIN HPCS TPM2 SEALED DATA-----'
	if lsinitrd "$1" | grep -E 'tcsd|libtspi|var/lib/tpm'; then
		echo "trousers in the TPM 2.0 initramfs (above)"
		return 1
	fi
	if zstd -dc "$1" | grep -aqF "$EMU_API_KEY"; then
		echo "the API key is in the TPM 2.0 initramfs"
		return 1
	fi
}

# The guest's PCR values from a boot with hpcs_vmtest.pcrs: "N=HEX" lines.
_guest_pcrs() {
	sed -n 's/.*HPCS-PCR sha256 \([0-9]*\) \([0-9A-Fa-f]\{64\}\).*/\1=\2/p' "$1" | sort -u -t= -k1,1n
}

@test "(f) TPM 2.0, a PCR differs from the one sealed against: the prompt comes, the error names it" {
	_assert_tpm2_image "$INITRD_TPM2"
	# The fixture's blob is sealed to the default PCRs 7 and 8 at the host
	# swtpm's values (zero); the guest's firmware measures into 7, not 8.
	boot "$INITRD_TPM2" 'Please enter passphrase|HPCS-ROOT-OK|Power down' 300 --tpm2 "$FIX/tpm2/state" \
		-- hpcs_vmtest.pcrs
	assert_booted
	assert_log 'HPCS-PCR sha256 0 [0-9A-Fa-f]{64}'
	assert_log 'hpcs-unlock\[[0-9]+\]: .*the TPM refused to unseal the API key: PCR 7 \(SHA-256\) changed since sealing'
	refute_log 'PCR 8 was'
	assert_log 'hpcs-for-luks seal-api-key --tpm2 --pcr 7 --pcr 8'
	assert_log "systemd\\[1\\]: hpcs-unlock\\.service: Failed with result 'exit-code'"
	assert_log 'Please enter passphrase for disk'
	refute_log 'HPCS-ROOT-OK'
	refute_log 'tcsd'
	note "serial: $(grep -aoE 'hpcs-unlock\[[0-9]+\]: .*changed since sealing' "$LOG" | cut -c1-200)"
	# The guest's own values, for (g).
	_guest_pcrs "$LOG" >"$BATS_FILE_TMPDIR/tpm2.pcrs"
	# Every PCR the error names does differ from the host's zero.
	local named pcr
	named=$(sed -n 's/.*PCRs\{0,1\} \([0-9, ]*\) (SHA-256) changed since sealing.*/\1/p' "$LOG" |
		head -n 1 | tr -d ',')
	[ -n "$named" ]
	for pcr in $named; do
		grep -q "^$pcr=" "$BATS_FILE_TMPDIR/tpm2.pcrs"
		if grep -qx "$pcr=0\{64\}" "$BATS_FILE_TMPDIR/tpm2.pcrs"; then
			echo "PCR $pcr is named but holds zero, as sealed"
			false
		fi
	done
	# Nothing reached the KMS.
	[ "$(emu_stat by_op.unwrap)" -eq 0 ]
}

@test "(g) TPM 2.0: sealed against the guest's own PCR values, the root opens by itself, no daemon" {
	local pcrs=$BATS_FILE_TMPDIR/tpm2.pcrs
	if [ ! -s "$pcrs" ]; then # (f) did not run: a boot of our own to read them
		boot "$INITRD_TPM2" 'Please enter passphrase|HPCS-ROOT-OK|Power down' 300 \
			--tpm2 "$FIX/tpm2/state" -- hpcs_vmtest.pcrs rd.hpcs=0
		_guest_pcrs "$LOG" >"$pcrs"
	fi
	grep -q '^0=' "$pcrs" && grep -q '^4=' "$pcrs" && grep -q '^7=' "$pcrs" && grep -q '^8=' "$pcrs" || {
		echo "no guest PCR values: $(cat "$pcrs")"
		false
	}
	# Seal on the guest's TPM (a swtpm on a copy of its state) against the
	# values the guest's firmware gives PCRs 0, 4 and 7, and 8 (the default
	# PCRs are 7 and 8).
	local d=$BATS_TEST_TMPDIR/tpm2 port args=() pcr
	mkdir -p "$d" && cp -a "$FIX/tpm2/state" "$d/state"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	swtpm socket --tpm2 -d --pid "file=$d/pid" --tpmstate "dir=$d/state" \
		--server "type=tcp,port=$port,bindaddr=127.0.0.1" \
		--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" --flags not-need-init,startup-clear
	for pcr in 0 4 7 8; do args+=(--pcr "$(grep "^$pcr=" "$pcrs")"); done
	# PCR 15 as it is at boot before the lock: nothing measures into it.
	args+=(--pcr "15=$(printf '0%.0s' {1..64})")
	HPCS_TPM2_TCTI="swtpm:host=127.0.0.1,port=$port" run "$HFL" --config "$FIX/tpm2.ini" \
		seal-api-key --tpm2 "${args[@]}" --output "$d/api-key-blob.txt" <<<"$EMU_API_KEY"
	kill "$(cat "$d/pid")"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx 'pcrs: 0 4 7 8 15' "$d/api-key-blob.txt"

	# That blob over the image's one: an uncompressed cpio appended to the
	# image (at a 4-byte boundary) overlays files.
	local img=$BATS_TEST_TMPDIR/tpm2-guest.img
	mkdir -p "$d/overlay/var/lib/hpcs-for-luks"
	install -m 0600 "$d/api-key-blob.txt" "$d/overlay/var/lib/hpcs-for-luks/api-key-blob.txt"
	cp "$INITRD_TPM2" "$img"
	truncate -s "%4" "$img"
	(cd "$d/overlay" && find . | cpio -o -H newc -R 0:0 --quiet) >>"$img"
	_assert_tpm2_image "$img"

	boot "$img" 'Please enter passphrase|Power down' 300 --tpm2 "$FIX/tpm2/state" -- hpcs_vmtest.realroot
	assert_booted
	assert_log 'systemd\[1\]: Started hpcs-unlock\.service'
	assert_log 'hpcs-unlock\[[0-9]+\]: loaded 3 of 3 keys'
	assert_log 'HPCS-ROOT-OK'
	refute_log 'Please enter passphrase'
	refute_log 'tcsd'
	note "serial: $(grep -aE 'tpm_crb|tpm tpm0|hpcs-unlock\[[0-9]+\]: loaded|HPCS-ROOT-OK' "$LOG" | cut -c1-160 | tr '\n' '|')"

	# The TPM lock: once hpcs-unlock was done, PCR 15 holds our measurement
	# over zero, in the initramfs and in the real root alike.
	assert_log 'hpcs-unlock\[[0-9]+\]: the TPM is locked for the rest of this boot: PCR 15'
	assert_log 'systemd\[1\]: Finished hpcs-lock-tpm\.service'
	local locked
	locked=$(python3 -c 'import hashlib; e = hashlib.sha256(b"hpcs-for-luks: unlock done, TPM locked").digest(); print(hashlib.sha256(bytes(32) + e).hexdigest())')
	grep -aiq "HPCS-PCR15 $locked" "$LOG" || {
		echo "PCR 15 in the real root is not the lock's value $locked:"
		grep -a 'HPCS-PCR15' "$LOG"
		false
	}
	# The real root's run takes the IAM token the initramfs handed on (the
	# TPM no longer unseals); a second run, without it, cannot unseal.
	assert_log 'HPCS-TOKEN present'
	assert_log 'HPCS-REALROOT-1: .*using the IAM token handed on by the initramfs'
	assert_log 'HPCS-REALROOT-1 rc=0'
	assert_log 'HPCS-REALROOT-2: .*PCR 15 \(SHA-256\) changed since sealing'
	assert_log 'HPCS-REALROOT-2: .*the TPM was locked for this boot'
	refute_log 'HPCS-REALROOT-2 rc=0'
}

@test "(i) the console: KMS down, three wrong passphrases typed: no shell, the boot reboots, nothing typed afterwards runs" {
	emulator_stop
	local script=$BATS_TEST_TMPDIR/console.script i
	{
		for i in 1 2 3; do
			echo "wait $i Please enter passphrase"
			echo "send wrong-passphrase-$i"
		done
		# Then commands, as someone at the console would try them; the
		# marker is computed, so only a shell that runs them prints it.
		for i in $(seq 1 24); do
			echo "sleep 5"
			# shellcheck disable=SC2016  # for the guest's shell to expand
			echo 'send echo HPCS-SHELL-$((6 * 7))'
		done
	} >"$script"
	# Without the suite's own rd.shell=0 rd.emergency=poweroff: the image's
	# defaults decide, as on a server.
	VM_SHELL_OPTS='' boot "$INITRD_PLAIN" 'HPCS-SHELL-42|HPCS-ROOT-OK|reboot: Restarting system|reboot: Power down' 420 \
		--script "$script" -- rd.hpcs.timeout=10 rd.retry=20
	assert_booted
	assert_log 'Please enter passphrase for disk'
	assert_log 'reboot: Restarting system'
	refute_log 'HPCS-SHELL-42'
	refute_log 'Entering emergency mode'
	refute_log 'HPCS-ROOT-OK'
	note "console: $(grep -aE 'Too many attempts|Boot has failed|Could not boot|emergency|Restarting' "$LOG" | cut -c1-120 | tr '\n' '|')"
}

@test "(h) a clock behind (the RTC at 2001): the root still opens, and a warning names the clock" {
	# systemd moves a clock this far behind to its own build date, which is
	# still before the emulator's certificates were made: without the
	# allowance for a clock behind the build date, every handshake fails with
	# "certificate not yet valid" and the prompt comes.
	boot "$INITRD_PLAIN" 'HPCS-ROOT-OK|Please enter passphrase|Power down' 300 --rtc 2001-01-01 --
	assert_booted
	assert_log 'hpcs-unlock\[[0-9]+\]: .*the clock .* is before this hpcs-unlock was built'
	assert_log 'hpcs-unlock\[[0-9]+\]: loaded 3 of 3 keys'
	assert_log 'HPCS-ROOT-OK'
	refute_log 'Please enter passphrase'
	note "serial: $(grep -aE 'System time|hpcs-unlock\[[0-9]+\]: (the clock|loaded)' "$LOG" | cut -c1-200 | tr '\n' '|')"
}

# The auth = vpc image: the config says so and has no api_key line, there is
# no sealed blob, and no API key the emulator accepts (the fixture's, and any
# other in its state) is anywhere in the unpacked image.
_assert_vpc_image() {
	local conf d=$BATS_TEST_TMPDIR/vpc-unpacked key keys
	conf=$(lsinitrd -f etc/hpcs-for-luks.ini "$1")
	grep -qx 'auth = vpc' <<<"$conf"
	grep -qx "trusted_profile_id = $EMU_PROFILE" <<<"$conf"
	if grep -E '^[[:space:]]*api_key' <<<"$conf"; then
		echo "an api_key line in the auth = vpc initramfs's config (above)"
		return 1
	fi
	if lsinitrd "$1" | grep -E 'api-key-blob|tcsd|var/lib/tpm'; then
		echo "a sealed API key or trousers in the auth = vpc initramfs (above)"
		return 1
	fi
	mkdir -p "$d"
	(cd "$d" && lsinitrd --unpack "$1")
	[ -f "$d/etc/hpcs-for-luks.ini" ]
	[ -x "$d/usr/sbin/hpcs-unlock" ]
	keys=$(jq -r '.api_keys[]' "$FIX/emu/state.json")
	grep -qxF "$EMU_API_KEY" <<<"$keys"
	while IFS= read -r key; do
		if grep -rlaF -- "$key" "$d"; then
			echo "an accepted API key is in the auth = vpc initramfs, in the files above"
			return 1
		fi
	done <<<"$keys"
	note "auth = vpc initramfs: $(find "$d" -type f | wc -l) files, none holds any of the" \
		"$(wc -l <<<"$keys") API key(s) the emulator accepts; its config:" \
		"$(grep -vE '^[[:space:]]*(#|$)' "$d/etc/hpcs-for-luks.ini" | tr '\n' '|')"
}

@test "(j) auth = vpc: the token from the metadata service at 169.254.169.254, no API key in the image, the root opens by itself" {
	_assert_vpc_image "$INITRD_VPC"
	# qemu forwards only addresses inside the guest's network (boot.sh
	# --guestfwd): the guest gets 169.254.169.0/24 (the host at .2), so that
	# 169.254.169.254:80 can be the emulator's metadata port on the host.
	VM_HOST=169.254.169.2 boot "$INITRD_VPC" 'HPCS-ROOT-OK|Please enter passphrase|Power down' 300 \
		--net 169.254.169.0/24 --guestfwd "tcp:169.254.169.254:80-tcp:127.0.0.1:$EMU_MD_PORT" \
		-- hpcs_vmtest.net
	assert_booted
	# The address and the default route from qemu's DHCP; 169.254.169.254
	# is on that network (qemu forwards no address outside it).
	assert_log 'HPCS-NET addr: .* inet 169\.254\.169\.15/24'
	assert_log 'HPCS-NET route: default via 169\.254\.169\.2 '
	_assert_opened_by_itself
	local line
	# The boot log's lines about the unlock (not systemd's coloured status lines).
	while IFS= read -r line; do note "serial: $line"; done < <(grep -aE \
		'HPCS-NET|hpcs-unlock(\[|\.service)|systemd-cryptsetup@|HPCS-ROOT-OK' "$LOG" |
		grep -avE $'\e|Deactivated|Consumed|hpcs-vmtest-realroot' | cut -c1-200 | head -n 24)
	# The tokens came from the metadata service, none from an API key.
	local stats
	stats=$(emu_ctl GET stats)
	note "emulator: $(jq -c '{iam_requests, metadata_requests, metadata_connections, requests,
		md_token: .by_op.md_token, md_iam_token: .by_op.md_iam_token, unwrap: .by_op.unwrap}' <<<"$stats")"
	jq -e '.iam_requests == 0 and .by_op.iam == 0 and .by_op.md_token >= 1 and
		.by_op.md_iam_token >= 1 and .by_op.unwrap >= 2' <<<"$stats" >/dev/null || {
		echo "emulator stats: $stats"
		false
	}
}

@test "(k) KMS down, the default deadline: the prompt within 20 s of our unit's start, the typed passphrase opens the root" {
	emulator_stop
	local script=$BATS_TEST_TMPDIR/console.script
	{
		echo "wait 1 Please enter passphrase"
		echo "send $(head -n 1 "$FIX/secret/passphrase")"
	} >"$script"
	boot "$INITRD_PLAIN" 'HPCS-ROOT-OK|Power down' 300 --script "$script" --
	assert_booted
	assert_log 'Please enter passphrase for disk'
	_assert_prompt_within 20
	assert_log 'hpcs-unlock\[[0-9]+\]: Key Protect: [0-9]+ keys? not loaded yet; trying behind the passphrase prompt'
	assert_log 'systemd\[1\]: Finished systemd-cryptsetup@luks'
	assert_log 'HPCS-ROOT-OK'
	assert_log 'HPCS-ASK-LEFT: none'
	refute_log 'answered the passphrase request'
	# The root came once the passphrase was typed, not at the deadline (120 s).
	local t
	t=$(_span start_to_root)
	note "$BATS_TEST_DESCRIPTION: the root ${t} s after hpcs-unlock.service started"
	awk -v t="$t" 'BEGIN { exit !(t > 0 && t <= 60) }'
}

@test "(l) the KMS back 40 s into the boot: the prompt is shown, nobody types, both LUKS2 volumes are answered" {
	# The emulator is up, but drops every connection (after TLS, before an
	# answer) until the timer clears the fault set.
	emu_ctl POST faults '{"rules":[{"op":"any","action":"drop"}]}' >/dev/null
	local up
	up=$(cut -d' ' -f1 /proc/uptime)
	_kms_back_after 40
	boot "$INITRD_PLAIN" 'HPCS-ROOT-OK|Power down' 300 --disk "$IMG/data.img" -- "rd.luks.uuid=$DATA_UUID"
	assert_booted
	[ -s "$BATS_TEST_TMPDIR/kms-back" ] || {
		echo "the fault set was not cleared"
		false
	}
	assert_log 'Please enter passphrase for disk'
	assert_log 'hpcs-unlock\[[0-9]+\]: Key Protect: [0-9]+ keys? not loaded yet; trying behind the passphrase prompt'
	assert_log 'hpcs-unlock\[[0-9]+\]: loaded 3 of 3 keys'
	assert_log "hpcs-unlock\\[[0-9]+\\]: answered the passphrase request for '/dev/disk/by-uuid/$UUID' with key 'user/hpcs-vm:root'"
	assert_log "hpcs-unlock\\[[0-9]+\\]: answered the passphrase request for '/dev/disk/by-uuid/$DATA_UUID' with key 'user/hpcs-vm:data'"
	[ "$(grep -acE 'hpcs-unlock\[[0-9]+\]: answered the passphrase request' "$LOG")" -eq 2 ]
	assert_log "HPCS-MAPPED: .*luks-$UUID"
	assert_log "HPCS-MAPPED: .*luks-$DATA_UUID"
	assert_log 'HPCS-ROOT-OK'
	assert_log 'HPCS-ASK-LEFT: none'
	refute_log 'gave up'
	# The connections before were dropped, not refused.
	[ "$(emu_stat requests)" -gt "$(emu_stat by_op.unwrap)" ]
	note "$BATS_TEST_DESCRIPTION: the KMS back $(awk -v a="$up" -v b="$(cat "$BATS_TEST_TMPDIR/kms-back")" \
		'BEGIN { printf "%.1f", b - a }') s after the boot began (host); the prompt $(_span start_to_prompt) s," \
		"the root $(_span start_to_root) s after hpcs-unlock.service started"
	_note_serial 'hpcs-unlock(\[|\.service)|systemd-cryptsetup@|Please enter|HPCS-(ROOT-OK|ASK-LEFT|MAPPED)'
}

@test "(m) a root with only an hpcs token: no key file in the image, systemd-cryptsetup opens it through the token plugin, no key of ours in any keyring; a second one whose plugin try is too slow gets its passphrase from hpcs-unlock" {
	# The image: the plugin at cryptsetup's path, hpcs-unlock for it, and
	# no wrapped key.
	local list
	list=$(lsinitrd "$INITRD_TOKEN")
	grep -qE 'lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-hpcs\.so$' <<<"$list"
	grep -qE ' usr/sbin/hpcs-unlock$' <<<"$list"
	if grep -E 'var/lib/hpcs-for-luks/.+' <<<"$list"; then
		echo "a key file in the token-only initramfs (above)"
		false
	fi
	# Each header: one key slot, its hpcs token, nothing else.
	local img
	for img in "$TOK/root.img" "$TOK/data.img"; do
		run "$HFL" luks --device "$img"
		[ "${#lines[@]}" -eq 2 ] || {
			echo "$img: $output"
			false
		}
		[ "${lines[0]}" = "keyslot 1 pbkdf2 0" ]
		[[ "${lines[1]}" == "token 0 hpcs 1"* ]]
	done
	# The second volume's first unwrap (the plugin's, through hpcs-unlock
	# --token-open) takes 30 s, more than the helper's bound, 15 s here
	# (rd.hpcs.token_timeout=; the default 5 s leaves a loaded TCG guest too
	# little room for the root's own try, which must not fall back):
	# it says "not now" (-EAGAIN), systemd-cryptsetup asks for the
	# passphrase, and hpcs-unlock.service, the password agent, unwraps the
	# token again (no delay now) and answers. The root's unwraps are not
	# delayed (another AAD).
	local DATA=$TOKEN_DATA_UUID
	emu_ctl POST faults "{\"rules\":[{\"op\":\"unwrap\",\"aad\":\"luks2-uuid:$DATA\",
		\"action\":\"delay\",\"delay_ms\":30000,\"count\":1}]}" >/dev/null
	local UUID=$TOKEN_UUID
	ROOT_IMG=$TOK/root.img boot "$INITRD_TOKEN" 'HPCS-ROOT-OK|Power down' 300 --disk "$TOK/data.img" \
		-- "rd.luks.uuid=$DATA" rd.hpcs.token_timeout=15
	assert_booted
	assert_log "systemd\\[1\\]: Finished systemd-cryptsetup@luks.*$UUID"
	assert_log "systemd\\[1\\]: Finished systemd-cryptsetup@luks.*$DATA"
	assert_log 'HPCS-ROOT-OK'
	assert_log "HPCS-MAPPED: .*luks-$UUID"
	assert_log "HPCS-MAPPED: .*luks-$DATA"
	assert_log 'HPCS-ASK-LEFT: none'
	# The root: by the plugin, no prompt, not through the agent.
	refute_log "Please enter passphrase for disk luks-$UUID"
	refute_log "answered the passphrase request for '[^']*$UUID'"
	# The second volume: the helper gave up within its bound (its line
	# comes through the plugin), the plugin said "not now", and the agent
	# answered the passphrase request with the token (before the console
	# showed the prompt, or after).
	assert_log "systemd-cryptsetup\\[[0-9]+\\]: hpcs-unlock: hpcs token of LUKS2 volume $DATA: .*deadline"
	assert_log 'systemd-cryptsetup\[[0-9]+\]: hpcs token [0-9]+: not now'
	assert_log "hpcs-unlock\\[[0-9]+\\]: answered the passphrase request for '/dev/disk/by-uuid/$DATA' with its hpcs token of $DATA"
	# No key of ours in any keyring (no user or logon key, no IAM token
	# handed on). The one user key left is systemd-cryptsetup's own cache
	# of the passphrase an agent gave it ("cryptsetup", 2.5 min), from the
	# second volume's answered request: the root's plugin path leaves none.
	assert_log 'HPCS-KEYS: user cryptsetup:,[[:space:]]*$'
	# The unwraps: the root's, the second volume's delayed one and the
	# agent's.
	[ "$(emu_stat by_op.unwrap)" -ge 3 ] || {
		echo "emulator saw $(emu_stat by_op.unwrap) unwraps"
		false
	}
	_note_serial "hpcs|systemd-cryptsetup|Please enter|HPCS-(ROOT-OK|ASK-LEFT|MAPPED|KEYS)"
}
