#!/bin/bash
# Static checks of the tree, run by tests/run-all.sh (and by hand before a
# commit): C/C++ formatting (clang-format, .clang-format), shell formatting
# (shfmt, settings in .editorconfig), shellcheck over every shell script,
# negative checks in .bats files that bats would never check, and the layering
# rules of src/ (tests/lint-layers.sh).
# Exit 1 with the offending files and a diff when something is off.
set -eu
cd "$(dirname "$0")/.."

rc=0
mapfile -t cxx < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h' '*.c')
if ! clang-format --dry-run --Werror "${cxx[@]}"; then
	echo "lint: C/C++ formatting differs from .clang-format; run: clang-format -i FILES" >&2
	rc=1
fi

mapfile -t shells < <(git ls-files --cached --others --exclude-standard '*.sh' '*.bash' '*.bats' 'tests/tpm/tpm-env' 'tests/bats/netns/run' \
	'tests/vm/rootfs-init' 'crypttab-helpers/hpcs-*' 'completion/*' 'debian/built-using' 'debian/*.postinst' \
	'tests/vm/system-guest/hpcs-systest' 'systemd/hpcs-for-luks-generator')
if ! shfmt -d "${shells[@]}"; then
	echo "lint: shell formatting differs from .editorconfig; run: shfmt -w FILES" >&2
	rc=1
fi

# ShellCheck cannot read .bats files; every other script is checked with the
# sources beside it resolved.
mapfile -t checked < <(printf '%s\n' "${shells[@]}" | grep -v '\.bats$')
if ! shellcheck -x -P SCRIPTDIR "${checked[@]}"; then
	echo "lint: shellcheck found problems (above)" >&2
	rc=1
fi

# Checks that bats never makes: under `set -e` a negated command (`! cmd`)
# and every test but the last of an `&&` chain may fail without failing the
# test. Write `run ! cmd` (or check $status), and one test per line.
mapfile -t bats_files < <(printf '%s\n' "${shells[@]}" | grep '\.bats$')
if grep -nE '^[[:space:]]*! ' "${bats_files[@]}"; then
	echo "lint: a bare '! cmd' line in a .bats file is never checked; use 'run ! cmd'" >&2
	rc=1
fi
if grep -nE '^[[:space:]]*\[\[? .*\]\]? && \[' "${bats_files[@]}"; then
	echo "lint: only the last test of an '&&' chain is checked in a .bats file; one per line" >&2
	rc=1
fi
tests/lint-layers.sh || rc=1
exit "$rc"
