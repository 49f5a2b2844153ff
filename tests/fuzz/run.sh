#!/bin/bash
# Builds the libFuzzer targets (clang, ASan and UBSan; CMake option HPCS_FUZZ)
# and runs each for a bounded time; fails if any target finds a crash: a
# sanitizer report, a violated property (FUZZ_CHECK), a leak, an input that
# runs longer than 10 s, or one that needs more than 2 GB.
#
#   tests/fuzz/run.sh [--quick | --seconds N] [--build-dir DIR] [--no-build] [TARGET...]
#
# 60 s per target by default (what CI runs); --quick: 10 s. TARGET is a name
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

failed=()
row='%-12s %7s %10s %7s %11s %7s %6s  %s\n'
# shellcheck disable=SC2059  # the one format of the table, in a variable
printf "\n$row" target seconds execs execs/s cov ft corpus result
for t in "${targets[@]}"; do
	bin="$build_dir/${t}_fuzz"
	seeds="$top/tests/fuzz/corpus/$t"
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "fuzz: no target '$t' ($bin) or no seeds ($seeds)" >&2
		failed+=("$t")
		continue
	fi
	work="$build_dir/fuzz-corpus/$t"
	mkdir -p "$work"
	dict=()
	if [ -f "$top/tests/fuzz/$t.dict" ]; then dict=(-dict="$top/tests/fuzz/$t.dict"); fi
	log="$logs/$t.log"
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
	if [ "$rc" -ne 0 ]; then
		result="CRASH (exit $rc)"
		failed+=("$t")
	fi
	# shellcheck disable=SC2059  # as above
	printf "$row" "$t" "$seconds" "${execs:-?}" "${rate:-?}" \
		"${cov:-?}/${edges:-?}" "${ft:-?}" "${corp:-?}" "$result"
	if [ "$rc" -ne 0 ]; then
		echo "--- $t: the end of libFuzzer's output" >&2
		tail -n 60 "$log" >&2
		echo "--- reproduce: $bin $(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)" >&2
	fi
done
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]} (inputs in $artifacts)" >&2
	exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets, $seconds s each"
