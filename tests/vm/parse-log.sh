#!/bin/bash
# Timings from a VM serial log, from the kernel timestamps of systemd's
# messages (the test boots with systemd.log_target=kmsg).
# Usage: parse-log.sh LOG
#   prints one line: key=value pairs in seconds of guest uptime:
#     unlock_start   systemd starts hpcs-unlock.service
#     unlock_ready   it is ready (Type=notify: "Started"; a oneshot has none)
#     unlock_end     it ended: "Finished" or "Failed to start" (a oneshot),
#                    "Deactivated successfully" or "Failed with result"
#     prompt         the first "Please enter passphrase": the console prints
#                    it without a timestamp, so the last timestamp before it
#                    (systemd starting its console agent, in practice)
#   and the spans online_to_unlocked (network-online.target -> root's
#   systemd-cryptsetup finished), unlock_run (unlock_start -> unlock_end),
#   start_to_prompt (unlock_start -> prompt) and start_to_root (unlock_start
#   -> the test root's HPCS-ROOT-OK).
#   Boots that reach the real root's multi-user.target add multi_user and
#   online_to_multi_user.
# Usage: parse-log.sh LOG REGEX
#   prints the kernel timestamp of the first line matching REGEX, if any (of
#   the last line before it with one, if it has none)
set -eu

[[ $# -eq 1 || $# -eq 2 ]] || {
	echo "usage: $0 LOG [REGEX]" >&2
	exit 2
}
log=$1

# ts REGEX: the kernel timestamp of the first line matching REGEX, or if it
# has none (the console's password prompt), of the last line before it that
# has one.
ts() {
	local n
	n=$(grep -anE -- "$1" "$log" | head -n 1 | cut -d: -f1)
	[[ $n ]] || return 0
	head -n "$n" "$log" | sed -n 's/^\[ *\([0-9][0-9]*\.[0-9]*\)\].*/\1/p' | tail -n 1
}

if [[ $# -eq 2 ]]; then
	ts "$2"
	exit 0
fi
online=$(ts 'systemd\[1\]: Reached target network-online\.target')
u_start=$(ts 'systemd\[1\]: Starting hpcs-unlock\.service')
u_ready=$(ts 'systemd\[1\]: Started hpcs-unlock\.service')
u_end=$(ts 'systemd\[1\]: ((Finished|Failed to start) hpcs-unlock\.service|hpcs-unlock\.service: (Deactivated successfully|Failed with result))')
prompt=$(ts 'Please enter passphrase')
unlocked=$(ts 'systemd\[1\]: Finished systemd-cryptsetup@luks')
root=$(ts 'HPCS-ROOT-OK')

sub() { [[ $1 && $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }' || printf -- '-'; }
printf 'network_online=%s unlock_start=%s unlock_ready=%s unlock_end=%s prompt=%s root_unlocked=%s root_marker=%s' \
	"${online:--}" "${u_start:--}" "${u_ready:--}" "${u_end:--}" "${prompt:--}" "${unlocked:--}" "${root:--}"
printf ' online_to_unlocked=%s unlock_run=%s start_to_prompt=%s start_to_root=%s' \
	"$(sub "$online" "$unlocked")" "$(sub "$u_start" "$u_end")" "$(sub "$u_start" "$prompt")" \
	"$(sub "$u_start" "$root")"
multi=$(ts 'systemd\[1\]: Reached target multi-user\.target')
[[ -z $multi ]] || printf ' multi_user=%s online_to_multi_user=%s' "$multi" "$(sub "$online" "$multi")"
echo
