#!/bin/bash
# Timings from a VM serial log, from the kernel timestamps of systemd's
# messages (the test boots with systemd.log_target=kmsg).
# Usage: parse-log.sh LOG
#   prints one line: key=value pairs in seconds of guest uptime, and
#   online_to_unlocked (network-online.target -> root's systemd-cryptsetup
#   finished) and unlock_run (hpcs-unlock.service start -> end)
#   Boots that reach the real root's multi-user.target add multi_user and
#   online_to_multi_user.
# Usage: parse-log.sh LOG REGEX
#   prints the kernel timestamp of the first line matching REGEX, if any
set -eu

[[ $# -eq 1 || $# -eq 2 ]] || {
	echo "usage: $0 LOG [REGEX]" >&2
	exit 2
}
log=$1

# ts REGEX: the kernel timestamp of the first line matching REGEX.
ts() {
	grep -aE -- "$1" "$log" | sed -n 's/^\[ *\([0-9][0-9]*\.[0-9]*\)\].*/\1/p' | head -n 1
}

if [[ $# -eq 2 ]]; then
	ts "$2"
	exit 0
fi
online=$(ts 'systemd\[1\]: Reached target network-online\.target')
u_start=$(ts 'systemd\[1\]: Starting hpcs-unlock\.service')
u_end=$(ts 'systemd\[1\]: (Finished|Failed to start) hpcs-unlock\.service')
unlocked=$(ts 'systemd\[1\]: Finished systemd-cryptsetup@luks')
root=$(ts 'HPCS-ROOT-OK')

sub() { [[ $1 && $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }' || printf -- '-'; }
printf 'network_online=%s unlock_start=%s unlock_end=%s root_unlocked=%s root_marker=%s online_to_unlocked=%s unlock_run=%s' \
	"${online:--}" "${u_start:--}" "${u_end:--}" "${unlocked:--}" "${root:--}" \
	"$(sub "$online" "$unlocked")" "$(sub "$u_start" "$u_end")"
multi=$(ts 'systemd\[1\]: Reached target multi-user\.target')
[[ -z $multi ]] || printf ' multi_user=%s online_to_multi_user=%s' "$multi" "$(sub "$online" "$multi")"
echo
