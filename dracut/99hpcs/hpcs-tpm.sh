#!/bin/bash
# The TPM part of the dracut module "hpcs", sourced by module-setup.sh: with
# api_key = TPM, the sealed API key and what unsealing it needs at boot.
#   TPM 2.0 blob (tpm2-tss, in hpcs-unlock itself): the TPM drivers tpm_tis
#     and tpm_crb, nothing else; no daemon, hpcs-unlock opens /dev/tpmrm0.
#   TPM 1.2 blob (tpm_sealdata format): trousers' tcsd with its config,
#     state, user and the files it needs, started before hpcs-unlock by
#     hpcs-tcsd.service and the drop-in hpcs-unlock-tcsd.conf.
#
# Sourced (no `set -e`, no `exit`). Uses module-setup.sh's helpers and paths
# (_hpcs_get, hpcs_i_blob) and dracut's.
# Host-side knob: hpcs_tcsd_conf=FILE, tcsd's config (default /etc/tcsd.conf).

# dracut sets initdir, moddir, dracutsysrootdir, systemdsystemunitdir and
# udevrulesdir before sourcing us.
# shellcheck disable=SC2154

hpcs_i_tpm_dir=/var/lib/tpm

# The sealed API key on the host ([HFL] tpm_blob, default in key_dir).
_hpcs_tpm_blob() {
	_hpcs_get tpm_blob
}

# _hpcs_tpm_kind BLOB: "tpm2", "tpm1" or nothing, from the blob's first line
# (as hpcs-unlock tells them apart).
_hpcs_tpm_kind() {
	local first
	[[ -r $1 ]] || return 0
	IFS= read -r first <"$1" || true
	first=${first%$'\r'}
	case $first in
		'-----BEGIN HPCS TPM2 SEALED DATA-----') echo tpm2 ;;
		'-----BEGIN TSS-----') echo tpm1 ;;
	esac
}

# The kernel modules: a TPM 2.0 sits behind tpm_tis (TIS/FIFO, also what
# qemu's tpm-tis emulates) or tpm_crb (firmware TPMs, qemu's tpm-crb); for a
# TPM 1.2 (or a blob not there yet) every TPM driver.
_hpcs_tpm_installkernel() {
	local kind
	kind=$(_hpcs_tpm_kind "$(_hpcs_tpm_blob)")
	if [[ $kind == tpm2 ]]; then
		hostonly='' instmods tpm_tis tpm_crb
	else
		hostonly='' instmods '=drivers/char/tpm'
	fi
}

# tcsd for a TPM 1.2 blob.
_hpcs_tpm_install_tcsd() {
	local tcsd_conf ps f
	tcsd_conf=${hpcs_tcsd_conf:-/etc/tcsd.conf}
	if ! require_binaries tcsd; then
		derror "hpcs: a TPM 1.2 blob needs tcsd (package trousers)"
		return 1
	fi
	if ! grep -q '^tss:' "$dracutsysrootdir"/etc/passwd ||
		! grep -q '^tss:' "$dracutsysrootdir"/etc/group; then
		derror "hpcs: a TPM 1.2 blob needs the tss user and group (package trousers)"
		return 1
	fi
	inst_multiple tcsd

	# tcsd refuses a config that is not root:tss 0640.
	mkdir -p "$initdir/etc" "$initdir$hpcs_i_tpm_dir"
	if [[ -r $tcsd_conf ]]; then
		ps=$(sed -n 's/^[[:space:]]*system_ps_file[[:space:]]*=[[:space:]]*//p' "$tcsd_conf" | tail -n 1)
		grep -v '^[[:space:]]*system_ps_file[[:space:]]*=' "$tcsd_conf" >"$initdir/etc/tcsd.conf"
	else
		: >"$initdir/etc/tcsd.conf"
	fi
	ps=${ps:-/var/lib/tpm/system.data}
	echo "system_ps_file = $hpcs_i_tpm_dir/system.data" >>"$initdir/etc/tcsd.conf"
	[[ -f $ps ]] && cp -a "$ps" "$initdir$hpcs_i_tpm_dir/system.data"

	# The tss user (tcsd drops to it; the udev rule gives it /dev/tpm0).
	for f in passwd group; do
		touch "$initdir/etc/$f"
		grep -q '^tss:' "$initdir/etc/$f" ||
			grep '^tss:' "$dracutsysrootdir/etc/$f" >>"$initdir/etc/$f"
	done
	chown root:tss "$initdir/etc/tcsd.conf"
	chmod 0640 "$initdir/etc/tcsd.conf"
	chown -R tss:tss "$initdir$hpcs_i_tpm_dir"
	chmod 0700 "$initdir$hpcs_i_tpm_dir"

	# tcsd resolves "localhost" and users through NSS: without these two it
	# crashes after its first client.
	[[ -e $initdir/etc/hosts ]] ||
		printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$initdir/etc/hosts"
	if [[ ! -e $initdir/etc/nsswitch.conf ]]; then
		printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$initdir/etc/nsswitch.conf"
	elif ! grep -q '^hosts:' "$initdir/etc/nsswitch.conf"; then
		echo 'hosts: files dns' >>"$initdir/etc/nsswitch.conf"
	fi

	if [[ -e $dracutsysrootdir$udevrulesdir/60-tpm-udev.rules ]]; then
		inst_rules 60-tpm-udev.rules
	else
		inst_simple "$moddir/60-hpcs-tpm.rules" "$udevrulesdir/60-hpcs-tpm.rules"
	fi
	inst_simple "$moddir/hpcs-tcsd.service" "$systemdsystemunitdir/hpcs-tcsd.service"
	inst_simple "$moddir/hpcs-unlock-tcsd.conf" \
		"$systemdsystemunitdir/hpcs-unlock.service.d/tcsd.conf"
}

# _hpcs_tpm_install: the sealed API key as $hpcs_i_blob (0600), and what its
# kind of TPM needs.
_hpcs_tpm_install() {
	local blob kind
	blob=$(_hpcs_tpm_blob)
	if [[ ! -f $blob ]]; then
		derror "hpcs: api_key = TPM but the sealed API key '$blob' is missing"
		return 1
	fi
	kind=$(_hpcs_tpm_kind "$blob")
	if [[ -z $kind ]]; then
		derror "hpcs: '$blob' is not a sealed API key; seal it with 'hpcs-for-luks seal-api-key'"
		return 1
	fi
	inst_simple "$blob" "$hpcs_i_blob"
	chmod 0600 "$initdir$hpcs_i_blob"
	if [[ $kind == tpm1 ]]; then
		_hpcs_tpm_install_tcsd || return 1
	fi
	return 0
}
