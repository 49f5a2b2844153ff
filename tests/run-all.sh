#!/bin/bash
# The whole test suite on a fresh Debian 12 machine, as root:
#   installs what it needs, builds (shared and static), runs the GoogleTest
#   units through CTest, the bats suites, and the VM boot test.
# Environment: HPCS_SKIP_VM=1 leaves out the VM boot test (it is part of the
# suite; use this only for quick local runs). JOBS=N for the build (default 2).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=${JOBS:-2}

step() { printf '\n=== %s\n' "$*"; }

step "Installing dependencies (Debian packages)"
tests/install-deps.sh build test
if [ "${HPCS_SKIP_VM:-0}" != 1 ]; then
	tests/vm/setup-host.sh
fi

step "Building (shared libraries, with tests)"
cmake -S . -B build -DBUILD_TESTING=ON -DHPCS_WERROR=ON >build.log 2>&1 || {
	cat build.log
	exit 1
}
cmake --build build -j "$jobs"

step "Building the static hpcs-unlock (static deps from Debian source, cached)"
cmake -S . -B build-static -DHPCS_STATIC=ON -DBUILD_TESTING=OFF -DHPCS_WERROR=ON
cmake --build build-static -j "$jobs" --target hpcs-unlock
file build-static/hpcs-unlock

step "Unit tests (GoogleTest via CTest), with a TPM 1.2 on swtpm for the TPM cases"
eval "$(tests/tpm/tpm-env start)"
rc=0
# Not in parallel: the TPM cases share one swtpm and extend its PCRs.
(cd build && ctest --output-on-failure) || rc=$?
tests/tpm/tpm-env stop "$HPCS_TPM_DIR"
unset TSS_TCSD_HOSTNAME TSS_TCSD_PORT HPCS_TPM_DIR
[ "$rc" -eq 0 ]

step "Static checks (clang-format, shfmt, shellcheck)"
tests/lint.sh

step "bats suites"
export HPCS_BIN_DIR="$top/build" HPCS_STATIC_BIN="$top/build-static/hpcs-unlock"
bats tests/bats

if [ "${HPCS_SKIP_VM:-0}" != 1 ]; then
	step "VM boot test"
	HPCS_STATIC_BUILD_DIR="$top/build-static" bats tests/vm/boot.bats

	step "Real-system test (packages, a Debian root with the .deb, three boots)"
	HPCS_STATIC_BUILD_DIR="$top/build-static" HPCS_BUILD_DIR="$top/build" bats tests/vm/system.bats
fi
