#!/bin/bash
# Benchmark of hpcs-unlock against the Key Protect emulator, run on demand
# (not a test): every key unwrapped at once versus one request at a time
# (--max-parallel 1, the serial baseline of IBM's Python tool), and with
# [KP] auth = vpc (the token from the VPC metadata service, no API key) beside
# auth = api-key, at several key counts and per-request latencies, interleaved
# in the same run. Prints one table; see bench/README.md for what the columns
# mean.
#
# Needs root (keys go into root's user keyring @u), keyctl, curl, jq,
# /usr/bin/time (GNU time), file, strip and what the emulator needs (python3,
# python3-cryptography); for auth = vpc also unshare and ip. Everything stays
# on loopback: with auth = vpc the run moves into a network namespace of its
# own, where 169.254.169.254 (the only plain-http address hpcs-unlock sends
# to) is an address of its loopback and the emulator's metadata service
# listens there on port 80.
#
# Environment (all optional):
#   HPCS_UNLOCK      the unlocker to measure (default build-static/hpcs-unlock
#                    when it exists, else build/hpcs-unlock)
#   BENCH_BASELINE   another hpcs-unlock (an older build, say), run as one
#                    more mode, "baseline", beside the others: a change's
#                    effect measured in the same run
#   BENCH_CA         "emulator" (default): the emulator's CA alone is trusted;
#                    "system": the system's CA bundle with the emulator's CA
#                    in it, as the initramfs has it
#   HPCS_CLI         the admin CLI, used to create and wrap the keys
#                    (default build/hpcs-for-luks)
#   BENCH_REPS       repetitions of each measurement; the median is shown (5)
#   BENCH_KEYS       key counts (default "1 16 64")
#   BENCH_LATENCIES  emulator latency per request in ms (default "0 50")
#   BENCH_DEADLINE   --deadline of every hpcs-unlock run in seconds (30)
#   BENCH_VPC        1 (default): the auth = vpc modes too; 0: without them
#   EMU_BIN          the emulator (default tests/emulator/kp-emulator)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)

die() {
	echo "bench: $*" >&2
	exit 1
}
usage() {
	echo "bench: $*" >&2
	echo "usage: bench/run.sh   (settings through the environment; see bench/README.md)" >&2
	exit 2
}

[ $# -eq 0 ] || usage "takes no arguments"

if [ -z "${HPCS_UNLOCK:-}" ]; then
	HPCS_UNLOCK=$top/build/hpcs-unlock
	if [ -x "$top/build-static/hpcs-unlock" ]; then HPCS_UNLOCK=$top/build-static/hpcs-unlock; fi
fi
: "${HPCS_CLI:=$top/build/hpcs-for-luks}"
: "${BENCH_REPS:=5}"
: "${BENCH_KEYS:=1 16 64}"
: "${BENCH_LATENCIES:=0 50}"
: "${BENCH_DEADLINE:=30}"
: "${BENCH_CA:=emulator}"
: "${BENCH_VPC:=1}"

is_count() {
	case $1 in
		'' | *[!0-9]* | 0*) return 1 ;;
	esac
	[ "$1" -le "$2" ]
}
is_count "$BENCH_REPS" 99 || usage "BENCH_REPS must be 1..99, not '$BENCH_REPS'"
is_count "$BENCH_DEADLINE" 600 || usage "BENCH_DEADLINE must be 1..600, not '$BENCH_DEADLINE'"
case $BENCH_CA in
	emulator | system) ;;
	*) usage "BENCH_CA must be emulator or system, not '$BENCH_CA'" ;;
esac
case $BENCH_VPC in
	0 | 1) ;;
	*) usage "BENCH_VPC must be 0 or 1, not '$BENCH_VPC'" ;;
esac
[ -n "$BENCH_KEYS" ] || usage "BENCH_KEYS is empty"
[ -n "$BENCH_LATENCIES" ] || usage "BENCH_LATENCIES is empty"
max_keys=0
for n in $BENCH_KEYS; do
	is_count "$n" 1000 || usage "BENCH_KEYS: '$n' is not a key count 1..1000"
	if [ "$n" -gt "$max_keys" ]; then max_keys=$n; fi
done
for l in $BENCH_LATENCIES; do
	case $l in
		0) ;;
		*) is_count "$l" 5000 || usage "BENCH_LATENCIES: '$l' is not 0..5000 ms" ;;
	esac
done

[ "$(id -u)" -eq 0 ] || die "run as root: hpcs-unlock puts the keys in root's user keyring"
[ -x "$HPCS_UNLOCK" ] || die "no hpcs-unlock at '$HPCS_UNLOCK' (build it, or set HPCS_UNLOCK)"
[ -x "$HPCS_CLI" ] || die "no hpcs-for-luks at '$HPCS_CLI' (build it, or set HPCS_CLI)"
[ -x /usr/bin/time ] || die "GNU time is missing (apt-get install time)"
for tool in keyctl curl jq file strip; do
	command -v "$tool" >/dev/null || die "'$tool' is missing"
done
if [ -z "${EPOCHREALTIME:-}" ]; then
	die "needs bash >= 5 (EPOCHREALTIME)"
fi

# auth = vpc: the whole run in a network namespace of its own (the emulator's
# KMS on its 127.0.0.1, its metadata service on 169.254.169.254:80), so that
# nothing on the host's network answers for that address. The settings above
# go along in the environment.
if [ "$BENCH_VPC" = 1 ]; then
	for tool in unshare ip; do
		command -v "$tool" >/dev/null || die "'$tool' is missing (or BENCH_VPC=0)"
	done
	if [ -z "${BENCH_NETNS:-}" ]; then
		export HPCS_UNLOCK HPCS_CLI BENCH_REPS BENCH_KEYS BENCH_LATENCIES BENCH_DEADLINE BENCH_CA BENCH_VPC
		BENCH_NETNS=1 exec unshare --net -- "$top/bench/run.sh"
	fi
	if ! ip link set lo up || ! ip addr add 169.254.169.254/32 dev lo; then
		die "could not put 169.254.169.254 on the loopback of the bench's network namespace"
	fi
fi

# The helpers of the bats suites: emulator_start, emulator_stop, emu_ctl,
# hpcs_write_conf, hpcs_keyring_clean. They read BATS_TEST_TMPDIR only with a
# fallback.
# shellcheck source=SCRIPTDIR/../tests/bats/helpers.bash
. "$top/tests/bats/helpers.bash"

work=$(mktemp -d "${TMPDIR:-/tmp}/hpcs-bench.XXXXXX")
# Every key this run adds to @u has a description starting with this.
tag=hpcsbench$$k

# Revokes and unlinks this run's keys in @u; prints how many there were.
clean_keys() {
	hpcs_keyring_clean "$tag"
}

cleanup() {
	clean_keys >/dev/null || true
	emulator_stop || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- The binary --------------------------------------------------------------

# Measure a copy, so that a rebuild during the run cannot mix two binaries.
cp "$HPCS_UNLOCK" "$work/hpcs-unlock" || die "could not copy '$HPCS_UNLOCK'"
echo "binary:   $HPCS_UNLOCK (copied at $(date '+%F %T'))"
HPCS_UNLOCK=$work/hpcs-unlock
if [ -n "${BENCH_BASELINE:-}" ]; then
	cp "$BENCH_BASELINE" "$work/baseline" || die "could not copy '$BENCH_BASELINE'"
	echo "baseline: $BENCH_BASELINE (copied at $(date '+%F %T'))"
fi

size=$(stat -c %s "$HPCS_UNLOCK")
if strip -o "$work/stripped" "$HPCS_UNLOCK" 2>/dev/null; then
	stripped=$(stat -c %s "$work/stripped")
	stripped="$stripped bytes stripped ($((stripped / 1024)) KiB)"
	rm -f "$work/stripped"
else
	stripped="not strippable (a wrapper script?)"
fi
desc=$(file -b "$HPCS_UNLOCK")
case $desc in
	*"statically linked"* | *"static-pie linked"*) linkage=static ;;
	*) linkage="dynamic (not static)" ;;
esac
echo "size:     $size bytes, $stripped"
echo "linkage:  $linkage"

# The modes of each row: all at once; all at once without the KMS handshake
# made while the token is on its way (what the overlap is worth); one at a time.
modes=(parallel no-precon serial)
if ! "$HPCS_UNLOCK" --help 2>&1 | grep -q -- --no-preconnect; then
	echo "bench: this hpcs-unlock has no --no-preconnect; leaving out the no-precon mode" >&2
	modes=(parallel serial)
fi
if [ -n "${BENCH_BASELINE:-}" ]; then modes=(baseline "${modes[@]}"); fi
# auth = vpc, all at once as at boot: two metadata calls instead of the IAM
# one. vpc: the IAM-token call waits the latency (the metadata service gets
# that token from IAM), the identity-token one does not (it is answered on
# the host of the instance); vpc-slow: both wait it.
if [ "$BENCH_VPC" = 1 ]; then modes+=(vpc vpc-slow); fi
profile=Profile-bench-0000

# --- Emulator, root key, wrapped keys ---------------------------------------

mkdir -p "$work/emu"
md_args=()
if [ "$BENCH_VPC" = 1 ]; then
	md_args=(--metadata-bind 169.254.169.254 --metadata-port 80 --trusted-profile "$profile")
fi
emulator_start --state-dir "$work/emu" "${md_args[@]}" || die "the emulator did not start"

# write_conf FILE KEY_DIR [CRK [SETTING...]]: the tests' hpcs_write_conf, for
# one file.
write_conf() {
	HPCS_CONF=$1 HPCS_KEYS=$2 HPCS_CRK=${3:-} hpcs_write_conf "${@:4}"
}

(umask 077 && write_conf "$work/setup.ini" "$work/keys-setup")
crk=$("$HPCS_CLI" --config "$work/setup.ini" create --crk --name bench --gen 2>"$work/stderr") ||
	{
		cat "$work/stderr" >&2
		die "could not create the root key"
	}
[ -n "$crk" ] || die "creating the root key printed no id"

# One wrapped key per index, made once; the key directory for N keys holds
# copies of the first N under distinct descriptions.
(umask 077 && write_conf "$work/setup.ini" "$work/keys-setup" "$crk")
mkdir -p "$work/wrapped"
for ((i = 1; i <= max_keys; i++)); do
	head -c 32 /dev/urandom |
		"$HPCS_CLI" --config "$work/setup.ini" wrap >"$work/wrapped/$i" ||
		die "wrapping key $i failed"
done
ca=$EMU_CA
if [ "$BENCH_CA" = system ]; then
	ca=$work/bundle.pem
	cat /etc/ssl/certs/ca-certificates.crt "$EMU_CA" >"$ca" || die "could not make the CA bundle"
fi
echo "trusted:  $(grep -c 'BEGIN CERTIFICATE' "$ca") CA certificate(s) ($BENCH_CA)"
for n in $BENCH_KEYS; do
	mkdir -p "$work/keys$n/user" "$work/keys$n/logon"
	for ((i = 1; i <= n; i++)); do
		cp "$work/wrapped/$i" "$work/keys$n/user/$tag$i"
	done
	# IAM and the KMS are different hosts, as in the cloud: no connection
	# made for the token can carry an unwrap. Both names are pinned to the
	# emulator (its certificate has both) on the kernel command line.
	(umask 077 && write_conf "$work/keys$n.ini" "$work/keys$n" "$crk" \
		"KP.endpoint_url=https://kms.test:$EMU_PORT" "KP.iam_endpoint_url=https://iam.test:$EMU_PORT" \
		"KP.ca_file=$ca")
	# The same with auth = vpc and no api_key line at all.
	(umask 077 && write_conf "$work/keys$n-vpc.ini" "$work/keys$n" "$crk" \
		"KP.endpoint_url=https://kms.test:$EMU_PORT" "KP.iam_endpoint_url=https://iam.test:$EMU_PORT" \
		"KP.ca_file=$ca" -KP.api_key KP.auth=vpc "KP.trusted_profile_id=$profile")
done
echo "rd.hpcs.resolve=kms.test:127.0.0.1 rd.hpcs.resolve=iam.test:127.0.0.1" >"$work/cmdline"
clean_keys >/dev/null

# --- Measurements ------------------------------------------------------------

# faults LATENCY MODE: the emulator's fault set for a run: every API request
# waits LATENCY ms; in the vpc modes some metadata calls too (see modes).
faults() {
	local lat=$1 mode=$2 ops=()
	case $mode in
		vpc) ops=(md_iam_token) ;;
		vpc-slow) ops=(md_token md_iam_token) ;;
	esac
	[ "$lat" -gt 0 ] || ops=()
	jq -cn --argjson lat "$lat" --args '{latency_ms: $lat,
		rules: [$ARGS.positional[] | {op: ., action: "delay", delay_ms: $lat}]}' "${ops[@]}"
}

# run_one N LATENCY MODE: one hpcs-unlock run; appends "wall_us rss_kb
# requests connections max_concurrent tls_handshakes tls_resumed
# metadata_requests" to $work/res.N.LATENCY.MODE (tls_resumed and
# metadata_requests are "-" when the emulator does not count them).
run_one() {
	local n=$1 lat=$2 mode=$3 t0 t1 rc=0 stats loaded
	local -a args=(--config "$work/keys$n.ini" --cmdline "$work/cmdline" --deadline "$BENCH_DEADLINE")
	case $mode in
		serial) args+=(--max-parallel 1) ;;
		no-precon) args+=(--no-preconnect) ;;
		vpc*) args[1]=$work/keys$n-vpc.ini ;;
	esac
	emu_ctl POST faults "$(faults "$lat" "$mode")" >/dev/null || die "could not set the latency"
	emu_ctl POST reset-stats >/dev/null || die "could not reset the emulator's stats"
	t0=$EPOCHREALTIME
	local bin=$HPCS_UNLOCK
	if [ "$mode" = baseline ]; then bin=$work/baseline; fi
	/usr/bin/time -f %M -o "$work/rss" "$bin" "${args[@]}" 2>"$work/stderr" || rc=$?
	t1=$EPOCHREALTIME
	stats=$(emu_ctl GET stats) || die "could not read the emulator's stats"
	loaded=$(clean_keys)
	if [ "$rc" -ne 0 ] || [ "$loaded" -ne "$n" ]; then
		cat "$work/stderr" >&2
		die "hpcs-unlock ($n keys, $lat ms, $mode) exited $rc and loaded $loaded of $n keys"
	fi
	# auth = vpc: the token came from the metadata service, none from IAM.
	if [[ $mode == vpc* ]] && ! jq -e '.iam_requests == 0 and .by_op.md_iam_token >= 1' <<<"$stats" >/dev/null; then
		die "hpcs-unlock ($n keys, $lat ms, $mode) did not take its token from the metadata service: $stats"
	fi
	# The GET stats connection itself is one TLS handshake: not ours.
	printf '%s %s %s\n' "$((${t1//[!0-9]/} - ${t0//[!0-9]/}))" "$(tail -n 1 "$work/rss")" \
		"$(jq -r '"\(.requests) \(.connections) \(.max_concurrent) \(.tls_handshakes - 1) \(.tls_resumed // "-") \(.metadata_requests // "-")"' <<<"$stats")" \
		>>"$work/res.$n.$lat.$mode"
}

total=0
for lat in $BENCH_LATENCIES; do
	for ((r = 1; r <= BENCH_REPS; r++)); do
		if [ -t 2 ]; then
			printf '\rmeasuring: %s ms latency, repetition %d of %d ' "$lat" "$r" "$BENCH_REPS" >&2
		fi
		for n in $BENCH_KEYS; do
			# Rotate which mode goes first, so none always follows another.
			for ((m = 0; m < ${#modes[@]}; m++)); do
				run_one "$n" "$lat" "${modes[(m + r) % ${#modes[@]}]}"
			done
			total=$((total + ${#modes[@]}))
		done
	done
done
if [ -t 2 ]; then printf '\r%60s\r' '' >&2; fi

# --- Table -------------------------------------------------------------------

# column K of FILE: the median (mean of the two middle values when even), or
# "lo-hi" when asked for a range and the values differ.
median() {
	cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
range() {
	cut -d' ' -f"$2" "$1" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 }
		END { if (lo == hi) print lo; else print lo "-" hi }'
}

echo "runs:     $total hpcs-unlock runs, $BENCH_REPS per row, interleaved; median wall time and RSS"
echo
printf '%5s %8s %-9s %9s %8s %6s %8s %6s %7s %6s %7s %8s\n' \
	keys latency mode "wall ms" requests conns "max conc" TLS-hs resumed md-req "RSS KB" speed-up
for lat in $BENCH_LATENCIES; do
	for n in $BENCH_KEYS; do
		ser_us=$(median "$work/res.$n.$lat.serial" 1)
		for mode in "${modes[@]}"; do
			f=$work/res.$n.$lat.$mode
			us=$(median "$f" 1)
			speedup=""
			if [ "$mode" != serial ]; then
				speedup=$(awk -v s="$ser_us" -v p="$us" 'BEGIN { printf "%.1fx", s / p }')
			fi
			printf '%5s %6s ms %-9s %9s %8s %6s %8s %6s %7s %6s %7s %8s\n' "$n" "$lat" "$mode" \
				"$(awk -v u="$us" 'BEGIN { printf "%.1f", u / 1000 }')" \
				"$(range "$f" 3)" "$(range "$f" 4)" "$(range "$f" 5)" "$(range "$f" 6)" "$(range "$f" 7)" \
				"$(range "$f" 8)" "$(median "$f" 2)" "$speedup"
		done
	done
done
if [ "$BENCH_VPC" = 1 ]; then
	echo
	echo "auth = vpc beside auth = api-key (parallel), median wall ms:"
	for lat in $BENCH_LATENCIES; do
		for n in $BENCH_KEYS; do
			awk -v n="$n" -v l="$lat" -v a="$(median "$work/res.$n.$lat.parallel" 1)" \
				-v v="$(median "$work/res.$n.$lat.vpc" 1)" -v w="$(median "$work/res.$n.$lat.vpc-slow" 1)" \
				'BEGIN { printf "%5d keys %4d ms: api-key %7.1f  vpc %7.1f (%+.1f)  vpc-slow %7.1f (%+.1f)\n",
					n, l, a / 1000, v / 1000, (v - a) / 1000, w / 1000, (w - a) / 1000 }'
		done
	done
fi
