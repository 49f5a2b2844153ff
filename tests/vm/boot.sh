#!/bin/bash
# Boot the test VM under qemu and wait for a line in its serial log.
# Usage: boot.sh [options] -- KERNEL_CMDLINE...
#   --kernel FILE --initrd FILE --disk FILE (repeatable, virtio, snapshot)
#   --tpm STATE_DIR   attach a TPM 1.2 (swtpm on a copy of STATE_DIR, tpm-tis)
#   --tpm2 STATE_DIR  attach a TPM 2.0 (swtpm --tpm2 on a copy, tpm-crb)
#   --log FILE        serial log (required)
#   --until REGEX     stop the VM once a serial line matches (extended regex)
#   --timeout SEC     give up after this long (default 240)
#   --accel ACCEL     kvm or tcg (default: probe-accel.sh's answer)
#   --rtc DATE        start the guest's real-time clock at DATE (qemu -rtc base=)
# Exit status: 0 the regex matched (or the VM powered off when no --until),
# 1 timeout or the VM ended without a match, 2 misuse.
set -eu
. "$(dirname "$0")/lib.sh"

kernel='' initrd='' log='' until='' timeout=240 accel='' tpm='' tpm_kind='' rtc=''
disks=()
while [[ $# -gt 0 ]]; do
	case $1 in
		--kernel)
			kernel=$2
			shift 2
			;;
		--initrd)
			initrd=$2
			shift 2
			;;
		--disk)
			disks+=("$2")
			shift 2
			;;
		--tpm | --tpm2)
			tpm=$2 tpm_kind=$1
			shift 2
			;;
		--log)
			log=$2
			shift 2
			;;
		--until)
			until=$2
			shift 2
			;;
		--timeout)
			timeout=$2
			shift 2
			;;
		--accel)
			accel=$2
			shift 2
			;;
		--rtc)
			rtc=$2
			shift 2
			;;
		--)
			shift
			break
			;;
		*)
			echo "boot.sh: unknown option '$1'" >&2
			exit 2
			;;
	esac
done
[[ $kernel && $log ]] || {
	echo "boot.sh: --kernel and --log are required" >&2
	exit 2
}
[[ $accel ]] || accel=$("$VM_HERE/probe-accel.sh" "$kernel")

work=$(mktemp -d "${TMPDIR:-/tmp}/hpcs-vm-boot.XXXXXX")
qpid='' tpid=''
# shellcheck disable=SC2317  # called through the trap
cleanup() {
	[[ $qpid ]] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	[[ $tpid ]] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2054  # the commas are qemu's, inside single arguments
args=(-nodefaults -no-user-config -machine pc -accel "$accel" -m 768 -smp 1
	-display none -monitor none -no-reboot -serial "file:$log"
	-kernel "$kernel" -nic user,model=virtio-net-pci -append "$*")
[[ $initrd ]] && args+=(-initrd "$initrd")
[[ $rtc ]] && args+=(-rtc "base=$rtc")
for d in "${disks[@]}"; do
	args+=(-drive "file=$d,if=virtio,format=raw,snapshot=on")
done
if [[ $tpm ]]; then
	# A fresh copy of the TPM each boot: PCRs reset, the state the host saw.
	cp -a "$tpm" "$work/tpm"
	swtpm_args=() tpm_device=tpm-tis
	if [[ $tpm_kind == --tpm2 ]]; then
		swtpm_args=(--tpm2) tpm_device=tpm-crb
	fi
	swtpm socket "${swtpm_args[@]}" --tpmstate "dir=$work/tpm" \
		--ctrl "type=unixio,path=$work/tpm.sock" --log "file=$work/swtpm.log" 3>&- &
	tpid=$!
	for _ in $(seq 1 50); do
		[[ -S $work/tpm.sock ]] && break
		sleep 0.1
	done
	[[ -S $work/tpm.sock ]] || {
		cat "$work/swtpm.log" >&2
		vm_die "swtpm did not start"
	}
	# shellcheck disable=SC2054  # as above
	args+=(-chardev "socket,id=chrtpm,path=$work/tpm.sock"
		-tpmdev emulator,id=tpm0,chardev=chrtpm -device "$tpm_device,tpmdev=tpm0")
fi

: >"$log"
qemu-system-x86_64 "${args[@]}" 3>&- &
qpid=$!
end=$((SECONDS + timeout))
rc=1
while :; do
	if [[ $until ]] && grep -aqE -- "$until" "$log"; then
		rc=0
		break
	fi
	if ! kill -0 "$qpid" 2>/dev/null; then
		wait "$qpid" 2>/dev/null || true
		qpid=
		[[ $until ]] && grep -aqE -- "$until" "$log" && rc=0
		[[ $until ]] || rc=0
		break
	fi
	if [[ $SECONDS -ge $end ]]; then
		echo "boot.sh: no match for '$until' within ${timeout}s" >&2
		break
	fi
	sleep 0.5
done
exit $rc
