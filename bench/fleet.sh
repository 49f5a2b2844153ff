#!/bin/bash
# A fleet rebooting at once, run on demand (not a test): N hpcs-unlock
# processes, each a server with its own key directory of FLEET_KEYS keys,
# started within the same second against one Key Protect emulator that
# rate-limits like the real service (a token bucket per instance and one for
# IAM, 429 with Retry-After beyond it). Prints, per fleet size and mode, how
# many servers unlocked within the deadline, when the last one finished
# against the ideal (requests / rate), what the emulator served and refused,
# and the peak rate it saw. See bench/README.md.
#
# Needs root (keys go into root's user keyring @u), keyctl, curl, jq and what
# the emulator needs. Everything stays on loopback.
#
# Environment (all optional):
#   HPCS_UNLOCK      the unlocker (default build-static/hpcs-unlock, else build/)
#   HPCS_CLI         the admin CLI that makes the keys (default build/hpcs-for-luks)
#   FLEET_SIZES      fleet sizes (default "50 100 200")
#   FLEET_KEYS       keys per server (8)
#   FLEET_RATE       emulator limit, requests per second per bucket (100)
#   FLEET_BURST      bucket size (default: FLEET_RATE)
#   FLEET_DEADLINE   --deadline of every hpcs-unlock, seconds (120)
#   FLEET_LATENCY    emulator latency per request in ms, a WAN's round trip (50)
#   FLEET_MODES      any of: parallel serial nojitter (default: all three;
#                    nojitter needs an hpcs-unlock that has --no-jitter)
#   EMU_BIN          the emulator (default tests/emulator/kp-emulator)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)

die() {
	echo "fleet: $*" >&2
	exit 1
}
usage() {
	echo "fleet: $*" >&2
	echo "usage: bench/fleet.sh   (settings through the environment; see bench/README.md)" >&2
	exit 2
}
[ $# -eq 0 ] || usage "takes no arguments"

if [ -z "${HPCS_UNLOCK:-}" ]; then
	HPCS_UNLOCK=$top/build/hpcs-unlock
	if [ -x "$top/build-static/hpcs-unlock" ]; then HPCS_UNLOCK=$top/build-static/hpcs-unlock; fi
fi
: "${HPCS_CLI:=$top/build/hpcs-for-luks}"
: "${FLEET_SIZES:=50 100 200}"
: "${FLEET_KEYS:=8}"
: "${FLEET_RATE:=100}"
: "${FLEET_BURST:=$FLEET_RATE}"
: "${FLEET_DEADLINE:=120}"
: "${FLEET_LATENCY:=50}"
: "${FLEET_MODES:=parallel serial nojitter}"

is_count() {
	case $1 in
		'' | *[!0-9]* | 0*) return 1 ;;
	esac
	[ "$1" -le "$2" ]
}
max_n=0
for n in $FLEET_SIZES; do
	is_count "$n" 1000 || usage "FLEET_SIZES: '$n' is not 1..1000"
	if [ "$n" -gt "$max_n" ]; then max_n=$n; fi
done
[ "$max_n" -gt 0 ] || usage "FLEET_SIZES is empty"
is_count "$FLEET_KEYS" 64 || usage "FLEET_KEYS must be 1..64"
is_count "$FLEET_RATE" 100000 || usage "FLEET_RATE must be 1..100000"
is_count "$FLEET_BURST" 100000 || usage "FLEET_BURST must be 1..100000"
is_count "$FLEET_DEADLINE" 3600 || usage "FLEET_DEADLINE must be 1..3600"
[ "$FLEET_LATENCY" = 0 ] || is_count "$FLEET_LATENCY" 5000 || usage "FLEET_LATENCY must be 0..5000"
for m in $FLEET_MODES; do
	case $m in
		parallel | serial | nojitter) ;;
		*) usage "FLEET_MODES: unknown mode '$m' (parallel serial nojitter)" ;;
	esac
done

[ "$(id -u)" -eq 0 ] || die "run as root: hpcs-unlock puts the keys in root's user keyring"
[ -x "$HPCS_UNLOCK" ] || die "no hpcs-unlock at '$HPCS_UNLOCK' (build it, or set HPCS_UNLOCK)"
[ -x "$HPCS_CLI" ] || die "no hpcs-for-luks at '$HPCS_CLI' (build it, or set HPCS_CLI)"
for tool in keyctl curl jq; do
	command -v "$tool" >/dev/null || die "'$tool' is missing"
done
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
if [[ " $FLEET_MODES " == *" nojitter "* ]] && ! "$HPCS_UNLOCK" --help 2>&1 | grep -q -- --no-jitter; then
	echo "fleet: '$HPCS_UNLOCK' has no --no-jitter; leaving out the nojitter mode" >&2
	FLEET_MODES=${FLEET_MODES//nojitter/}
fi

# Every server's connections are open at the emulator at once.
ulimit -n 65536 2>/dev/null || ulimit -n 8192 || die "cannot raise the file limit"

# shellcheck source=SCRIPTDIR/../tests/bats/helpers.bash
. "$top/tests/bats/helpers.bash"

work=$(mktemp -d "${TMPDIR:-/tmp}/hpcs-fleet.XXXXXX")
tag=hpcsfleet$$s # every key this run adds to @u starts with this

# Revokes and unlinks this run's keys in @u; prints how many there were.
clean_keys() {
	hpcs_keyring_clean "$tag"
}

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	clean_keys >/dev/null || true
	emulator_stop || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

cp "$HPCS_UNLOCK" "$work/hpcs-unlock" || die "could not copy '$HPCS_UNLOCK'"
echo "binary:   $HPCS_UNLOCK (copied at $(date '+%F %T'))"
echo "machine:  $(nproc) cores; emulator limit $FLEET_RATE requests/s, burst $FLEET_BURST, per bucket;" \
	"$FLEET_LATENCY ms per request"
HPCS_UNLOCK=$work/hpcs-unlock

# --- Emulator, root key, wrapped keys ---------------------------------------

mkdir -p "$work/emu"
emulator_start --state-dir "$work/emu" || die "the emulator did not start"

write_conf() { # FILE KEY_DIR [CRK]
	HPCS_CONF=$1 HPCS_KEYS=$2 HPCS_CRK=${3:-} hpcs_write_conf
}
(umask 077 && write_conf "$work/setup.ini" "$work/keys-setup")
crk=$("$HPCS_CLI" --config "$work/setup.ini" create --crk --name fleet --gen 2>"$work/stderr") ||
	{
		cat "$work/stderr" >&2
		die "could not create the root key"
	}
(umask 077 && write_conf "$work/setup.ini" "$work/keys-setup" "$crk")
mkdir -p "$work/wrapped"
for ((i = 1; i <= FLEET_KEYS; i++)); do
	head -c 32 /dev/urandom | "$HPCS_CLI" --config "$work/setup.ini" wrap >"$work/wrapped/$i" ||
		die "wrapping key $i failed"
done
# One key directory and config per server; the same ciphertexts under
# descriptions of their own.
for ((s = 1; s <= max_n; s++)); do
	mkdir -p "$work/srv$s/keys/user" "$work/srv$s/keys/logon"
	for ((i = 1; i <= FLEET_KEYS; i++)); do
		cp "$work/wrapped/$i" "$work/srv$s/keys/user/${tag}${s}k$i"
	done
	(umask 077 && write_conf "$work/srv$s/hpcs.ini" "$work/srv$s/keys" "$crk")
done
: >"$work/cmdline"
clean_keys >/dev/null

# --- One fleet boot -----------------------------------------------------------

# boot N MODE: N servers at once; prints "unlocked last_s served refused peak
# iam_requests" for the table.
boot() {
	local n=$1 mode=$2 s t0 ok=0 last=0 rc end stats loaded
	local -a extra=()
	case $mode in
		serial) extra=(--max-parallel 1) ;;
		nojitter) extra=(--no-jitter) ;;
	esac
	emu_ctl POST reset-stats >/dev/null || die "could not reset the emulator's stats"
	emu_ctl POST faults "{\"latency_ms\":$FLEET_LATENCY}" >/dev/null || die "could not set the latency"
	emu_ctl POST rate-limit "{\"rate\":$FLEET_RATE,\"burst\":$FLEET_BURST}" >/dev/null ||
		die "could not set the emulator's rate limit"
	pids=()
	t0=$EPOCHREALTIME
	for ((s = 1; s <= n; s++)); do
		(
			rc=0
			"$HPCS_UNLOCK" --config "$work/srv$s/hpcs.ini" --cmdline "$work/cmdline" \
				--deadline "$FLEET_DEADLINE" "${extra[@]}" >/dev/null 2>"$work/srv$s/stderr" || rc=$?
			echo "$rc $EPOCHREALTIME" >"$work/srv$s/result"
		) 3>&- &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	pids=()
	stats=$(emu_ctl GET stats) || die "could not read the emulator's stats"
	loaded=$(clean_keys)
	for ((s = 1; s <= n; s++)); do
		read -r rc end <"$work/srv$s/result" || die "server $s left no result"
		if [ "$rc" -eq 0 ]; then ok=$((ok + 1)); fi
		last=$(awk -v a="$last" -v b="$end" -v t="$t0" 'BEGIN { d = b - t; print (d > a ? d : a) }')
	done
	[ "$loaded" -le $((n * FLEET_KEYS)) ] || die "more keys in @u than the fleet has"
	if [ "$ok" -lt "$n" ]; then
		echo "fleet: $((n - ok)) of $n servers did not unlock ($mode); first stderr:" >&2
		for ((s = 1; s <= n; s++)); do
			read -r rc _ <"$work/srv$s/result"
			if [ "$rc" -ne 0 ]; then
				tail -n 5 "$work/srv$s/stderr" >&2
				break
			fi
		done
	fi
	printf '%s %s %s %s %s\n' "$ok" "$loaded" "$last" \
		"$(jq -r '"\(.rate_limit.served) \(.rate_limit.refused) \(.rate_limit.peak_per_second)"' <<<"$stats")" \
		"$(jq -r .iam_requests <<<"$stats")"
}

printf '\n%5s %-9s %9s %7s %8s %8s %8s %8s %7s %6s\n' \
	servers mode unlocked keys "last s" "ideal s" served refused "peak/s" "IAM"
for n in $FLEET_SIZES; do
	# Ideal: every request served at the limit. IAM and the key endpoints have
	# buckets of their own, so the larger of the two bounds it.
	ideal=$(awk -v n="$n" -v k="$FLEET_KEYS" -v r="$FLEET_RATE" -v b="$FLEET_BURST" \
		'BEGIN { kms = (n * k - b) / r; iam = (n - b) / r; i = kms > iam ? kms : iam;
		         printf "%.1f", (i > 0 ? i : 0) }')
	for mode in $FLEET_MODES; do
		if [ -t 2 ]; then printf '\rbooting %s servers (%s) ' "$n" "$mode" >&2; fi
		read -r ok loaded last served refused peak iam < <(boot "$n" "$mode")
		if [ -t 2 ]; then printf '\r%40s\r' '' >&2; fi
		printf '%5s %-9s %5s/%-3s %7s %8.1f %8s %8s %8s %7s %6s\n' "$n" "$mode" "$ok" "$n" \
			"$loaded" "$last" "$ideal" "$served" "$refused" "$peak" "$iam"
	done
done
