#!/usr/bin/env bats
# The private dracut tree of the VM tests (vm_dracut_tree, tests/vm/lib.sh;
# made by tests/vm/make-initramfs.sh) holds this tree's modules whatever is
# installed, and writes nothing into the system's dracut folder. Here the
# "system" is a fake /usr/lib/dracut that the test owns, with an installed
# copy of our module in it (issue 28). No dracut run, no root.

setup() {
	top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd -P)
	# shellcheck source=../vm/lib.sh
	. "$top/tests/vm/lib.sh"
	tmp=$(cd "$BATS_TEST_TMPDIR" && pwd -P)
	sys=$tmp/sys
	mkdir -p "$sys/modules.d/90crypt" "$sys/modules.d/99hpcs" "$sys/modules.d/98hpcs-tpm" \
		"$sys/modules.d/95hpcs-old"
	printf '# dracut itself\n' >"$sys/dracut-functions.sh"
	printf '# a module of dracut\n' >"$sys/modules.d/90crypt/module-setup.sh"
	printf '# the installed copy\n' >"$sys/modules.d/99hpcs/module-setup.sh"
	printf '# the installed copy\n' >"$sys/modules.d/98hpcs-tpm/module-setup.sh"
	printf '# an older installed module of ours\n' >"$sys/modules.d/95hpcs-old/module-setup.sh"
	before=$(listing "$sys")
	ours_before=$(listing "$top/dracut" && listing "$top/tests/vm/dracut")
}

# listing DIR: every name under DIR with its type and link target.
listing() {
	find "$1" -printf '%P %y %l\n' | LC_ALL=C sort
}

# assert_ours BASE: BASE/modules.d holds each module folder of this tree
# (dracut/, tests/vm/dracut/) as a link to it, and only the system's 90crypt
# beside them; the system folder and this tree's module folders are as they
# were.
assert_ours() {
	local base=$1 m want=90crypt
	for m in "$top"/dracut/*/ "$top"/tests/vm/dracut/*/; do
		m=${m%/}
		want+=" ${m##*/}"
		[ "$(readlink -f "$base/modules.d/${m##*/}")" = "$m" ] || {
			echo "modules.d/${m##*/} -> $(readlink -f "$base/modules.d/${m##*/}"), not $m"
			return 1
		}
	done
	[ "$(readlink -f "$base/modules.d/90crypt")" = "$sys/modules.d/90crypt" ]
	[ "$(readlink -f "$base/dracut-functions.sh")" = "$sys/dracut-functions.sh" ]
	[ "$(ls "$base/modules.d" | LC_ALL=C sort | xargs)" = "$(xargs -n 1 <<<"$want" | LC_ALL=C sort | xargs)" ] || {
		echo "modules.d holds: $(ls "$base/modules.d" | xargs); want: $want"
		return 1
	}
	[ "$(listing "$sys")" = "$before" ] || {
		echo "the system folder changed:"
		diff <(echo "$before") <(listing "$sys")
		return 1
	}
	[ "$(listing "$top/dracut" && listing "$top/tests/vm/dracut")" = "$ours_before" ] || {
		echo "this tree's module folders changed:"
		diff <(echo "$ours_before") <(listing "$top/dracut" && listing "$top/tests/vm/dracut")
		return 1
	}
}

@test "the private tree has this tree's modules over an installed 99hpcs, and writes nothing there" {
	mkdir "$tmp/base"
	run vm_dracut_tree "$sys" "$tmp/base"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(readlink -f "$tmp/base/modules.d/99hpcs")" = "$top/dracut/99hpcs" ]
	[ ! -e "$sys/modules.d/99hpcs/99hpcs" ]
	assert_ours "$tmp/base"
}

@test "the private tree can be made twice, in the same folder and in a new one" {
	mkdir "$tmp/base" "$tmp/base2"
	run vm_dracut_tree "$sys" "$tmp/base"
	[ "$status" -eq 0 ]
	run vm_dracut_tree "$sys" "$tmp/base"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_ours "$tmp/base"
	run vm_dracut_tree "$sys" "$tmp/base2"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_ours "$tmp/base2"
	[ "$(listing "$tmp/base")" = "$(listing "$tmp/base2")" ]
}

@test "a system module with the name of one of ours is left out, whatever its number" {
	local ours=$tmp/ours
	mkdir -p "$ours/95extra" "$sys/modules.d/90extra" "$tmp/base"
	printf '# ours\n' >"$ours/95extra/module-setup.sh"
	printf '# the system one\n' >"$sys/modules.d/90extra/module-setup.sh"
	before=$(listing "$sys")
	run vm_dracut_tree "$sys" "$tmp/base" "$ours"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(readlink -f "$tmp/base/modules.d/95extra")" = "$ours/95extra" ]
	[ ! -e "$tmp/base/modules.d/90extra" ]
	[ "$(ls "$tmp/base/modules.d" | xargs)" = "90crypt 95extra" ]
	[ "$(listing "$sys")" = "$before" ]
}

@test "two of our modules with one name are refused, naming both" {
	local a=$tmp/a b=$tmp/b
	mkdir -p "$a/50dup" "$b/60dup" "$tmp/base"
	run vm_dracut_tree "$sys" "$tmp/base" "$a" "$b"
	[ "$status" -eq 1 ]
	[ "$output" = "error: two dracut modules named 'dup': $a/50dup and $b/60dup" ]
}
