# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this
# Shared by the VM test scripts (sourced). Paths and small helpers only.

VM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_REPO=$(cd "$VM_HERE/../.." && pwd)
VM_CACHE=${HPCS_VM_CACHE:-${HOME:-/root}/.cache/hpcs-for-luks/vm}

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
