# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this
# Shared by the VM test scripts (sourced). Paths and small helpers only.

VM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_REPO=$(cd "$VM_HERE/../.." && pwd)
VM_CACHE=${HPCS_VM_CACHE:-${HOME:-/root}/.cache/hpcs-for-luks/vm}
# The bats suites' serial logs of their last run, kept for a look afterwards.
VM_LOGS=$VM_CACHE/logs

vm_log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
vm_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# vm_hash FILE|STRING...: one sha256 over the named files' contents and the
# other arguments, used as a cache key.
vm_hash() {
	local a
	for a in "$@"; do
		if [[ -f $a ]]; then sha256sum <"$a"; else printf '%s\n' "$a"; fi
	done | sha256sum | cut -c1-16
}

# vm_hash_dir DIR: a hash over the file names, modes and contents under DIR.
vm_hash_dir() {
	(cd "$1" && find . -type f -printf '%p %m\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) |
		sha256sum | cut -c1-16
}

# The folders of our dracut modules, one module a folder in each: this tree's
# (dracut/99hpcs, ...) and the VM tests' own (98hpcs-vmtest).
VM_DRACUT_DIRS=("$VM_REPO/dracut" "$VM_HERE/dracut")

# vm_dracut_tree SYSTEM_DRACUT_DIR BASE [OUR_DIR...]: a private dracut tree in
# the folder BASE, for dracutbasedir=BASE: links to the entries of
# SYSTEM_DRACUT_DIR (/usr/lib/dracut) and of its modules.d, and to every
# module folder under each OUR_DIR (default: VM_DRACUT_DIRS). It leaves out the
# system's modules named like one of ours (dracut names a module by its folder
# without the two digits: 99hpcs is "hpcs", whatever the number) and any
# *hpcs* one (an installed copy of ours, or an older one), so that dracut
# builds with this tree's modules whatever is installed. Writes only under
# BASE, replacing links of an earlier run (ln -sfn, never into a link's
# target). Fails on two of our modules with one name.
vm_dracut_tree() {
	local sys=$1 base=$2 f m name
	shift 2
	[[ $# -gt 0 ]] || set -- "${VM_DRACUT_DIRS[@]}"
	local -A ours=()
	for f in "$@"; do
		for m in "$f"/[0-9][0-9]*/; do
			[[ -d $m ]] || continue
			m=${m%/} name=${m##*/}
			name=${name#[0-9][0-9]}
			if [[ ${ours[$name]+set} ]]; then
				printf "error: two dracut modules named '%s': %s and %s\n" "$name" "${ours[$name]}" "$m" >&2
				return 1
			fi
			ours[$name]=$m
		done
	done
	mkdir -p "$base/modules.d" || return 1
	for f in "$sys"/*; do
		[[ -e $f || -L $f ]] || continue # an empty folder
		[[ ${f##*/} == modules.d ]] || ln -sfn "$f" "$base/${f##*/}" || return 1
	done
	for f in "$sys"/modules.d/*; do
		[[ -e $f || -L $f ]] || continue
		name=${f##*/}
		name=${name#[0-9][0-9]}
		[[ ${ours[$name]+set} || ${f##*/} == *hpcs* ]] && continue
		ln -sfn "$f" "$base/modules.d/${f##*/}" || return 1
	done
	for m in "${ours[@]}"; do
		ln -sfn "$m" "$base/modules.d/${m##*/}" || return 1
	done
}

# vm_prune DIR: remove the cache entries under DIR not used for a day (other
# checkouts may be using the newer ones at the same time).
vm_prune() {
	find "$1" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -mtime +0 -exec rm -rf {} +
}

# vm_cached DIR [FILE]: if the cache entry DIR is complete (DIR/ready), marks
# it used (for vm_prune), prints DIR (or DIR/FILE) and succeeds; else fails.
# A maker script: `vm_cached "$dir" && exit 0`, then makes it.
vm_cached() {
	[[ -f $1/ready ]] || return 1
	touch "$1"
	echo "$1${2:+/$2}"
}

# vm_preflight WHY_ROOT: the start of a VM bats suite's setup_file. Installs
# what the suite needs (setup-host.sh; fails if that fails) and sets and
# exports VM_SKIP: why the suite cannot run here, or "" (not root: WHY_ROOT
# says what for; or no working qemu). The suite's setup() skips on it.
vm_preflight() {
	VM_SKIP=''
	export VM_SKIP
	if [[ $(id -u) != 0 ]]; then
		VM_SKIP="needs root ($1)"
		return 0
	fi
	"$VM_HERE/setup-host.sh" >&2 || return 1
	local tmp=$BATS_FILE_TMPDIR
	if ! command -v qemu-system-x86_64 >/dev/null ||
		! qemu-system-x86_64 -accel tcg -machine none -display none -nodefaults -S \
			-monitor none -daemonize -pidfile "$tmp/q.pid" 2>"$tmp/q.err"; then
		VM_SKIP="qemu-system-x86_64 cannot run here: $(cat "$tmp/q.err" 2>/dev/null)"
		return 0
	fi
	kill "$(cat "$tmp/q.pid")" 2>/dev/null || true
}

# vm_build_static BUILD_DIR LOG TARGET...: configure this tree with
# HPCS_STATIC=ON into BUILD_DIR and build TARGETs; the log's end on failure.
# The token plugin runs the helper where the dracut module puts it.
vm_build_static() {
	local build=$1 log=$2
	shift 2
	if ! cmake -S "$VM_REPO" -B "$build" -DHPCS_STATIC=ON -DBUILD_TESTING=OFF \
		-DHPCS_TOKEN_HELPER=/usr/sbin/hpcs-unlock >"$log" 2>&1 ||
		! cmake --build "$build" --target "$@" -j2 >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		return 1
	fi
}

# For the VM bats suites (they load ../bats/helpers and this file).

# note TEXT...: a line into the bats output (a TAP comment), whatever the
# test's result.
note() { echo "# $*" >&3; }

# kms_up: the Key Protect emulator on the state of the fixture $FIX
# (make-fixture.sh: its CA, API key, trusted profile and CRK), on a free port
# ($EMU_PORT), and its VPC metadata service on another ($EMU_MD_PORT), both on
# the host's 127.0.0.1.
kms_up() {
	# shellcheck source=/dev/null
	. "$FIX/env"
	export EMU_API_KEY EMU_INSTANCE EMU_PROFILE
	emulator_start --state-dir "$FIX/emu" --metadata-bind 127.0.0.1
}

# On the serial log $LOG; a failure shows the suite's show_log.
# assert_booted: the boot just run (`run .../boot.sh`) reached its --until
# line in time. assert_log REGEX: a line matches. refute_log REGEX: none does.
assert_booted() {
	# shellcheck disable=SC2154  # bats's run sets it
	[ "$status" -eq 0 ] || {
		show_log
		return 1
	}
}

assert_log() {
	grep -aqE -- "$1" "$LOG" || {
		echo "serial log lacks /$1/"
		show_log
		return 1
	}
}

refute_log() {
	if grep -aqE -- "$1" "$LOG"; then
		echo "serial log has /$1/:"
		grep -aE -- "$1" "$LOG"
		return 1
	fi
}

# vm_split_opts ARGS...: VM_OPTS gets the arguments before "--" (options for
# boot.sh), VM_ARGS those after it (the kernel command line's extras).
vm_split_opts() {
	VM_OPTS=()
	while [[ $# -gt 0 && $1 != -- ]]; do
		VM_OPTS+=("$1")
		shift
	done
	[[ ${1:-} != -- ]] || shift
	VM_ARGS=("$@")
}
