#!/usr/bin/env bats
# tests/lint-layers.sh: the layering rules of src/ hold on the tree, and each
# kind of break is caught (on a copy of src/ with one line added).

setup() {
	top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	copy=$BATS_TEST_TMPDIR/src
	cp -r "$top/src" "$copy"
}

@test "the tree keeps the layering rules" {
	run "$top/tests/lint-layers.sh" "$top/src"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "base/ including kp/ is named with its file and line" {
	printf '#include "kp/http.h"\n' >>"$copy/base/strutil.cc"
	run "$top/tests/lint-layers.sh" "$copy"
	[ "$status" -eq 1 ]
	[[ $output == *"src/base/strutil.cc:"*": base/ may not include kp/ (\"kp/http.h\")"* ]]
}

@test "kp/ and tpm/ may not include each other" {
	printf '#include "tpm/tpm.h"\n' >>"$copy/kp/http.cc"
	run "$top/tests/lint-layers.sh" "$copy"
	[ "$status" -eq 1 ]
	[[ $output == *"src/kp/http.cc:"*"kp/ may not include tpm/"* ]]
}

@test "core/ including admin/ and admin/ including cmd/ are refused" {
	printf '#include "admin/luks.h"\n' >>"$copy/core/unlock.cc"
	printf '#include "cmd/command.h"\n' >>"$copy/admin/report.cc"
	run "$top/tests/lint-layers.sh" "$copy"
	[ "$status" -eq 1 ]
	[[ $output == *"src/core/unlock.cc:"*"core/ may not include admin/"* ]]
	[[ $output == *"src/admin/report.cc:"*"admin/ may not include cmd/"* ]]
}

@test "production code may not include the test doubles; a test may" {
	printf '#include "testing/test_doubles.h"\n' >>"$copy/core/kms.cc"
	printf '#include "testing/test_doubles.h"\n' >>"$copy/core/config_test.cc"
	run "$top/tests/lint-layers.sh" "$copy"
	[ "$status" -eq 1 ]
	[[ $output == *"src/core/kms.cc:"*"core/ may not include testing/"* ]]
	[[ $output != *"config_test.cc"* ]]
}

@test "an include without a folder, and a new folder, are named" {
	printf '#include "secret.h"\n' >>"$copy/kp/retry.cc"
	mkdir "$copy/newfolder"
	run "$top/tests/lint-layers.sh" "$copy"
	[ "$status" -eq 1 ]
	[[ $output == *"src/kp/retry.cc:"*"names no folder"* ]]
	[[ $output == *"src/newfolder: a folder of src/ that the layering rules do not know"* ]]
}

@test "below cmd/ nothing logs above debug or ends the process" {
	printf 'void F() { LogWarning("x"); }\n' >>"$copy/core/keystore.cc"
	printf 'void G() { std::exit(3); }\n' >>"$copy/admin/luks.cc"
	printf 'void H() { LogWarning("x"); exit(1); }\n' >>"$copy/cmd/cli.cc"
	run "$top/tests/lint-layers.sh" "$copy"
	[ "$status" -eq 1 ]
	[[ $output == *"src/core/keystore.cc:"*"only cmd/ logs above debug"* ]]
	[[ $output == *"src/admin/luks.cc:"*"only cmd/ ends the process"* ]]
	[[ $output != *"cmd/cli.cc"* ]]
}

@test "HPCS_HAVE_TPM is refused at a call site, allowed in tpm/ and in tests" {
	printf '#ifdef HPCS_HAVE_TPM\n#endif\n' >>"$copy/core/kms.cc"
	printf '#ifdef HPCS_HAVE_TPM\n#endif\n' >>"$copy/cmd/cli_verbs.cc"
	printf '#ifdef HPCS_HAVE_TPM\n#endif\n' >>"$copy/tpm/tpm.cc"
	printf '#ifdef HPCS_HAVE_TPM\n#endif\n' >>"$copy/admin/report_test.cc"
	run "$top/tests/lint-layers.sh" "$copy"
	[ "$status" -eq 1 ]
	[[ $output == *"src/core/kms.cc:"*"HPCS_HAVE_TPM outside tpm/ and the tests"* ]]
	[[ $output == *"src/cmd/cli_verbs.cc:"*"HPCS_HAVE_TPM outside tpm/ and the tests"* ]]
	[[ $output != *"tpm/tpm.cc"* ]]
	[[ $output != *"report_test.cc"* ]]
}
