#!/bin/bash
# Test-only dracut module for the VM boot test (never installed): opens the
# second disk as a plain dm-crypt volume whose key is the logon key that
# hpcs-unlock put in root's user keyring, with the table ":32:logon:DESC";
# prints the TPM's PCRs (hpcs_vmtest.pcrs) and the network's addresses and
# routes (hpcs_vmtest.net) when asked.

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
	# The guest's PCR values, for the TPM 2.0 case (hpcs_vmtest.pcrs).
	inst_multiple cat sleep
	inst_simple "$moddir/hpcs-vmtest-pcrs.sh" /usr/bin/hpcs-vmtest-pcrs
	inst_simple "$moddir/hpcs-vmtest-pcrs.service" \
		"$systemdsystemunitdir/hpcs-vmtest-pcrs.service"
	$SYSTEMCTL -q --root "$initdir" enable hpcs-vmtest-pcrs.service
	# The addresses and routes from DHCP (hpcs_vmtest.net).
	inst_multiple ip
	inst_simple "$moddir/hpcs-vmtest-net.sh" /usr/bin/hpcs-vmtest-net
	inst_simple "$moddir/hpcs-vmtest-net.service" \
		"$systemdsystemunitdir/hpcs-vmtest-net.service"
	$SYSTEMCTL -q --root "$initdir" enable hpcs-vmtest-net.service
	# The real root's run of hpcs-unlock after the TPM lock (hpcs_vmtest.realroot).
	inst_multiple cp mkdir sed chmod
	inst_simple "$moddir/hpcs-vmtest-realroot.sh" /usr/bin/hpcs-vmtest-realroot
	inst_simple "$moddir/hpcs-vmtest-realroot.service" \
		"$systemdsystemunitdir/hpcs-vmtest-realroot.service"
	$SYSTEMCTL -q --root "$initdir" enable hpcs-vmtest-realroot.service
	return 0
}
