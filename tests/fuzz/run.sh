#!/bin/bash
# Builds the libFuzzer targets (clang, ASan and UBSan; CMake option HPCS_FUZZ)
# and runs each for a bounded time; fails if any target finds a crash: a
# sanitizer report, a violated property (FUZZ_CHECK), a leak, an input that
# runs longer than 10 s, or one that needs more than 2 GB.
#
#   tests/fuzz/run.sh [--quick | --seconds N] [--build-dir DIR] [--no-build] [TARGET...]
#
# 60 s per target by default (what CI runs), the targets side by side, JOBS
# (default: the CPUs) at a time; --quick: 10 s. TARGET is a name
# such as `config` (default: every target that was built). Each target starts
# from its committed seeds in tests/fuzz/corpus/TARGET and from what earlier
# runs in the same build directory found (DIR/fuzz-corpus/TARGET). A crash
# leaves its input in DIR/fuzz-artifacts/ and is reproduced with
#   DIR/TARGET_fuzz DIR/fuzz-artifacts/crash-...
# Once fixed, add that input to tests/fuzz/corpus/TARGET so it stays fixed.
#
# Prints per target: the executions, executions per second, and the coverage
# libFuzzer reached: `cov` (instrumented edges reached, out of the number the
# binary has) and `ft` (features: edges with hit counts, compared values).
set -eu -o pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
seconds=60
build_dir="$top/build-fuzz"
build=yes
targets=()
while [ $# -gt 0 ]; do
	case "$1" in
		--quick) seconds=10 ;;
		--seconds)
			[[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || {
				echo "fuzz: --seconds needs a positive number" >&2
				exit 2
			}
			seconds=$2
			shift
			;;
		--build-dir)
			[ -n "${2:-}" ] || {
				echo "fuzz: --build-dir needs a directory" >&2
				exit 2
			}
			build_dir=$(realpath -m "$2")
			shift
			;;
		--no-build) build=no ;;
		-h | --help)
			sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
			exit 0
			;;
		-*)
			echo "fuzz: unknown option '$1' (try --help)" >&2
			exit 2
			;;
		*) targets+=("$1") ;;
	esac
	shift
done

if [ "$build" = yes ]; then
	echo "fuzz: building the targets in $build_dir (clang, ASan, UBSan)"
	CC=clang CXX=clang++ cmake -S "$top" -B "$build_dir" -DHPCS_FUZZ=ON -DBUILD_TESTING=OFF \
		-DHPCS_WERROR=ON >"$build_dir.configure.log" 2>&1 || {
		cat "$build_dir.configure.log" >&2
		exit 1
	}
	rm -f "$build_dir.configure.log"
	cmake --build "$build_dir" -j "${JOBS:-2}" --target hpcs_fuzz >/dev/null
fi
if [ "${#targets[@]}" -eq 0 ]; then
	for bin in "$build_dir"/*_fuzz; do
		[ -x "$bin" ] && targets+=("$(basename "$bin" _fuzz)")
	done
fi
if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz: no targets in $build_dir (build with -DHPCS_FUZZ=ON, or drop --no-build)" >&2
	exit 1
fi

artifacts="$build_dir/fuzz-artifacts"
mkdir -p "$artifacts"
logs=$(mktemp -d "${TMPDIR:-/tmp}/hpcs-fuzz.XXXXXX")
trap 'rm -rf "$logs"' EXIT
export UBSAN_OPTIONS=print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1

row='%-12s %7s %10s %7s %11s %7s %6s  %s\n'
# run_one T: one target for $seconds s; its table row in $logs/T.row, its
# exit status in $logs/T.rc, libFuzzer's output in $logs/T.log.
run_one() {
	local t=$1 bin seeds work log rc execs rate edges last cov ft corp result
	local dict=()
	bin="$build_dir/${t}_fuzz"
	seeds="$top/tests/fuzz/corpus/$t"
	log="$logs/$t.log"
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "fuzz: no target '$t' ($bin) or no seeds ($seeds)" >"$log"
		echo 1 >"$logs/$t.rc"
		return
	fi
	work="$build_dir/fuzz-corpus/$t"
	mkdir -p "$work"
	if [ -f "$top/tests/fuzz/$t.dict" ]; then dict=(-dict="$top/tests/fuzz/$t.dict"); fi
	rc=0
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$artifacts/$t-" "${dict[@]}" "$work" "$seeds" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	edges=$(sed -n 's/^INFO: Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1) || true
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
	result=ok
	[ "$rc" -eq 0 ] || result="CRASH (exit $rc)"
	# shellcheck disable=SC2059  # the one format of the table, in a variable
	printf "$row" "$t" "$seconds" "${execs:-?}" "${rate:-?}" \
		"${cov:-?}/${edges:-?}" "${ft:-?}" "${corp:-?}" "$result" >"$logs/$t.row"
	echo "$rc" >"$logs/$t.rc"
}

# The targets run side by side, JOBS at a time (default: one per CPU; each
# is one process, and each gets its full $seconds), their rows in order.
jobs=${JOBS:-$(nproc)}
running=0
for t in "${targets[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	run_one "$t" &
	running=$((running + 1))
done
wait || true
failed=()
# shellcheck disable=SC2059  # as above
printf "\n$row" target seconds execs execs/s cov ft corpus result
for t in "${targets[@]}"; do
	[ ! -f "$logs/$t.row" ] || cat "$logs/$t.row"
	rc=$(cat "$logs/$t.rc" 2>/dev/null || echo 1)
	if [ "$rc" -ne 0 ]; then
		failed+=("$t")
		echo "--- $t: the end of libFuzzer's output" >&2
		tail -n 60 "$logs/$t.log" >&2
		echo "--- reproduce: $build_dir/${t}_fuzz $(sed -n 's/.*Test unit written to //p' "$logs/$t.log" | tail -n 1)" >&2
	fi
done
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]} (inputs in $artifacts)" >&2
	exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets, $seconds s each"
