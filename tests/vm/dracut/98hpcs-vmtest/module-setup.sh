#!/bin/bash
# Test-only dracut module for the VM boot test (never installed): opens the
# second disk as a plain dm-crypt volume whose key is the logon key that
# hpcs-unlock put in root's user keyring, with the table ":32:logon:DESC".

# dracut sets initdir, moddir, systemdsystemunitdir and SYSTEMCTL.
# shellcheck disable=SC2154

check() {
	return 255
}

depends() {
	echo dm
	return 0
}

install() {
	inst_multiple dmsetup
	inst_simple "$moddir/hpcs-vmtest-logon.service" \
		"$systemdsystemunitdir/hpcs-vmtest-logon.service"
	$SYSTEMCTL -q --root "$initdir" enable hpcs-vmtest-logon.service
	return 0
}
