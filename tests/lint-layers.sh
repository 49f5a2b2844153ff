#!/bin/bash
# The layering rules of src/ (DESIGN.md, "Code structure"), checked on the
# tree; run by tests/lint.sh. Usage: tests/lint-layers.sh [SRC_DIR]
#
#   base/           includes nothing of ours but base/
#   kp/, tpm/       add base/ (and not each other)
#   core/           adds kp/ and tpm/
#   admin/          adds core/
#   cmd/            may include anything
#   plugin/         the token plugin (C, loaded into libcryptsetup's users):
#                   includes nothing of ours
#   testing/        the shared test doubles: anything below admin/
#   *_test.cc and *_testing.h may also include testing/ (plugin/'s test: plugin/)
#
# A build without TPM support is answered by the TPM code (tpm/tpm_none.cc):
# HPCS_HAVE_TPM appears only in tpm/ and in tests, never at a call site.
#
# And below cmd/, nothing logs above debug and nothing ends the process: those
# are the command layer's decisions. A line that breaks a rule is printed as
# FILE:LINE: what it does, and the script exits 1. The logger itself
# (base/log.*) is exempt, and so is a line that says why it must be:
# `// layers: <reason>`.
set -eu
src=${1:-$(cd "$(dirname "$0")/.." && pwd)/src}

declare -A allowed=(
	[base]="base"
	[kp]="base kp"
	[tpm]="base tpm"
	[core]="base kp tpm core"
	[admin]="base kp tpm core admin"
	[cmd]="base kp tpm core admin cmd"
	[testing]="base kp tpm core testing"
	[plugin]=""
)

rc=0
complain() {
	printf '%s\n' "$*" >&2
	rc=1
}

shopt -s nullglob
for path in "$src"/*; do
	[[ -d $path ]] || continue
	folder=${path##*/}
	if [[ -z ${allowed[$folder]+set} ]]; then
		complain "$path: a folder of src/ that the layering rules do not know; add it to $0 and DESIGN.md"
		continue
	fi
	for file in "$path"/*.cc "$path"/*.c "$path"/*.h; do
		rel=${file#"$src"/}
		ok=" ${allowed[$folder]} "
		case $file in
			*_test.cc | *_testing.h) ok+="testing " ;;
			*/plugin/*_test.c) ok+="plugin " ;; # the plugin's test includes its source
		esac
		while IFS=: read -r line inc; do
			inc=${inc#*\"}
			inc=${inc%%\"*}
			if [[ $inc != */* ]]; then
				complain "src/$rel:$line: #include \"$inc\" names no folder; write \"FOLDER/$inc\""
				continue
			fi
			target=${inc%%/*}
			if [[ $ok != *" $target "* ]]; then
				complain "src/$rel:$line: $folder/ may not include $target/ (\"$inc\"); it may include: ${ok# }"
			fi
		done < <(grep -n '^#include "' "$file" || true)
		if [[ $folder != tpm && $file != *_test.cc && $file != *_testing.h ]]; then
			while IFS=: read -r line _; do
				complain "src/$rel:$line: HPCS_HAVE_TPM outside tpm/ and the tests; ask CheckTpmSupport (tpm/tpm.h) instead"
			done < <(grep -n 'HPCS_HAVE_TPM' "$file" || true)
		fi
		[[ $folder == cmd || $folder == testing ]] && continue
		[[ $file == *_test.cc || $file == *_test.c || $rel == base/log.* ]] && continue
		while IFS=: read -r line text; do
			complain "src/$rel:$line: only cmd/ logs above debug: ${text#"${text%%[![:space:]]*}"}"
		done < <(grep -nE '\bLog(Error|Warning|Info)\(|LogLevel::k(Error|Warning|Info)\b' "$file" | grep -v '// layers: ' || true)
		while IFS=: read -r line text; do
			complain "src/$rel:$line: only cmd/ ends the process: ${text#"${text%%[![:space:]]*}"}"
		done < <(grep -nE '(^|[^_[:alnum:]])(std::)?(exit|abort|quick_exit)\(' "$file" | grep -v '// layers: ' || true)
	done
done
if [[ $rc -ne 0 ]]; then
	echo "lint-layers: the include and logging rules of src/ are broken (above); see DESIGN.md" >&2
fi
exit "$rc"
