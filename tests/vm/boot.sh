#!/bin/bash
# Boot the test VM under qemu and wait for a line in its serial log.
# Usage: boot.sh [options] -- KERNEL_CMDLINE...
#   --kernel FILE --initrd FILE --disk FILE (repeatable, virtio, snapshot)
#   --disk-rw FILE    a virtio disk whose writes are kept (repeatable; disks
#                     appear in the order given, vda first); raw, or qcow2
#                     when the name ends in .qcow2
#   --tpm STATE_DIR   attach a TPM 1.2 (swtpm on a copy of STATE_DIR, tpm-tis)
#   --tpm2 STATE_DIR  attach a TPM 2.0 (swtpm --tpm2 on a copy, tpm-crb)
#   --smp N --mem MB  CPUs (default 1) and memory (default 768)
#   --guestfwd SPEC   qemu user networking guestfwd= (repeatable), e.g.
#                     tcp:10.0.2.100:443-cmd:socat STDIO TCP:127.0.0.1:PORT;
#                     the address must lie in the guest's network (--net):
#                     qemu 7.2 refuses one outside it ("Conflicting/invalid
#                     host:port in guest forwarding rule"), and one port may
#                     be forwarded once only (a chardev named for the port)
#   --net CIDR        the guest's network (qemu user net=, default
#                     10.0.2.0/24); the host is at .2 and DHCP hands out .15
#                     with .2 as the router, e.g. 169.254.169.0/24 for a
#                     guestfwd of the VPC metadata address 169.254.169.254
#   --answer REGEX FILE  once a serial line matches REGEX, type FILE's first
#                     line and Enter on the serial console
#   --script FILE     type on the serial console as FILE says, one step a line:
#                       wait N REGEX   until REGEX has matched N times in all
#                       sleep SEC      let SEC seconds pass
#                       send TEXT      type TEXT and Enter
#   --log FILE        serial log (required)
#   --until REGEX     stop the VM once a serial line matches (extended regex)
#   --timeout SEC     give up after this long (default 240)
#   --accel ACCEL     kvm or tcg (default: probe-accel.sh's answer)
#   --rtc DATE        start the guest's real-time clock at DATE (qemu -rtc base=)
# Exit status: 0 the regex matched (or the VM powered off when no --until),
# 1 timeout or the VM ended without a match, 2 misuse.
set -eu
. "$(dirname "$0")/lib.sh"

kernel='' initrd='' log='' until='' timeout=240 accel='' tpm='' tpm_kind='' smp=1 mem=768 rtc=''
answer_re='' answer_file='' script='' net=''
disks=() fwds=()
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
			disks+=("file=$2,if=virtio,format=raw,snapshot=on")
			shift 2
			;;
		--disk-rw)
			fmt=raw
			[[ $2 == *.qcow2 ]] && fmt=qcow2
			disks+=("file=$2,if=virtio,format=$fmt")
			shift 2
			;;
		--smp)
			smp=$2
			shift 2
			;;
		--mem)
			mem=$2
			shift 2
			;;
		--guestfwd)
			fwds+=("$2")
			shift 2
			;;
		--net)
			net=$2
			shift 2
			;;
		--answer)
			answer_re=$2 answer_file=$3
			shift 3
			;;
		--script)
			script=$2
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
qpid='' tpid='' cpid=''
# shellcheck disable=SC2317  # called through the trap
cleanup() {
	[[ $qpid ]] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	[[ $cpid ]] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
	[[ $tpid ]] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

nic=user,model=virtio-net-pci${net:+,net=$net}
for f in "${fwds[@]}"; do nic+=",guestfwd=$f"; done
# shellcheck disable=SC2054  # the commas are qemu's, inside single arguments
args=(-nodefaults -no-user-config -machine pc -accel "$accel" -m "$mem" -smp "$smp"
	-display none -monitor none -no-reboot
	-kernel "$kernel" -nic "$nic" -append "$*")
if [[ $answer_re || $script ]]; then
	# A serial line that can be typed into: a pair of FIFOs (qemu opens both
	# read-write, so neither side blocks), the output copied into the log.
	mkfifo "$work/ser.in" "$work/ser.out"
	cat "$work/ser.out" >"$log" 3>&- &
	cpid=$!
	args+=(-serial "pipe:$work/ser")
else
	args+=(-serial "file:$log")
fi
[[ $initrd ]] && args+=(-initrd "$initrd")
[[ $rtc ]] && args+=(-rtc "base=$rtc")
for d in "${disks[@]}"; do
	args+=(-drive "$d")
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

# --script: its steps, and the one being worked on.
steps=() step=0 step_due=0
if [[ $script ]]; then mapfile -t steps <"$script"; fi
# Types one line on the serial console; never blocks on a VM that is gone.
type_line() {
	# shellcheck disable=SC2016  # expanded by the inner bash, from its arguments
	timeout 5 bash -c 'printf "%s\r" "$1" >"$2"' _ "$1" "$work/ser.in" || true
}
run_script() {
	local cmd arg n re
	while [[ $step -lt ${#steps[@]} ]]; do
		cmd=${steps[step]%% *} arg=${steps[step]#* }
		case $cmd in
			wait)
				n=${arg%% *} re=${arg#* }
				[[ $(grep -aoE -- "$re" "$log" | wc -l) -ge $n ]] || return 0
				;;
			sleep)
				[[ $step_due -gt 0 ]] || step_due=$((SECONDS + arg))
				[[ $SECONDS -ge $step_due ]] || return 0
				step_due=0
				;;
			send) type_line "$arg" ;;
			*) vm_die "boot.sh: --script: unknown step '${steps[step]}'" ;;
		esac
		step=$((step + 1))
	done
}

[[ $cpid ]] || : >"$log"
qemu-system-x86_64 "${args[@]}" 3>&- &
qpid=$!
end=$((SECONDS + timeout))
rc=1
while :; do
	if [[ $answer_re ]] && grep -aqE -- "$answer_re" "$log"; then
		# Typed as a person would: the line, then Enter.
		{
			head -n 1 "$answer_file" | tr -d '\n'
			printf '\r'
		} >"$work/ser.in"
		answer_re=''
	fi
	[[ $script ]] && run_script
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
