#!/bin/bash
# dracut module "hpcs-tpm": the TPM part of the module "hpcs" (99hpcs), which
# depends on it when its config says api_key = TPM, as clevis's pins are
# modules of their own. It puts in the sealed API key and what unsealing it
# needs at boot:
#   TPM 2.0 blob (tpm2-tss, in hpcs-unlock itself): the TPM drivers tpm_tis
#     and tpm_crb, nothing else; no daemon, hpcs-unlock opens /dev/tpmrm0.
#   TPM 1.2 blob (tpm_sealdata format): trousers' tcsd with its config,
#     state, user and the files it needs, started before hpcs-unlock by
#     hpcs-tcsd.service and the drop-in hpcs-unlock-tcsd.conf.
# Which kind a blob is, hpcs-for-luks says (`tpm-blob-kind`: the TPM code
# that unseals it at boot decides), as it reads the config (`config --get`).
#
# Sourced by dracut (see dracut.modules(7)): no `set -e`, no `exit`.
# Host-side knobs, as for "hpcs" (dracut.conf.d or the environment):
#   hpcs_config=FILE      the config (default /etc/hpcs-for-luks.ini)
#   hpcs_cli=FILE         the admin CLI (default: hpcs-for-luks in PATH)
#   hpcs_tcsd_conf=FILE   tcsd's config for a TPM 1.2 blob (default /etc/tcsd.conf)

# dracut sets initdir, moddir, dracutsysrootdir, systemdsystemunitdir,
# udevrulesdir and hostonly before sourcing us.
# shellcheck disable=SC2154

# Inside the initramfs; 99hpcs points the config's tpm_blob here.
hpcs_i_blob=/var/lib/hpcs-for-luks/api-key-blob.txt
hpcs_i_tpm_dir=/var/lib/tpm

_hpcs_tpm_cli() {
	if [[ $hpcs_cli ]]; then
		[[ -x $hpcs_cli ]] && printf '%s\n' "$hpcs_cli"
		return
	fi
	find_binary hpcs-for-luks
}

# _hpcs_tpm_ask ARGS...: hpcs-for-luks with the config, e.g.
# `config --get tpm_blob` (the sealed API key on the host) or `tpm-blob-kind`
# ("tpm1", "tpm2" or "unknown"; it fails on a blob it cannot read).
_hpcs_tpm_ask() {
	local cli
	cli=$(_hpcs_tpm_cli) && [[ $cli ]] || return 1
	"$cli" --config "${hpcs_config:-/etc/hpcs-for-luks.ini}" "$@"
}

# called by dracut
check() {
	require_binaries "$(_hpcs_tpm_cli)" || return 1
	# Only as the dependency of "hpcs" (api_key = TPM) or on request.
	return 255
}

# called by dracut
depends() {
	return 0
}

# called by dracut: a TPM 2.0 sits behind tpm_tis (TIS/FIFO, also what
# qemu's tpm-tis emulates) or tpm_crb (firmware TPMs, qemu's tpm-crb); for a
# TPM 1.2 (or a blob not there yet) every TPM driver.
installkernel() {
	if [[ "$(_hpcs_tpm_ask tpm-blob-kind 2>/dev/null)" == tpm2 ]]; then
		hostonly='' instmods tpm_tis tpm_crb
	else
		hostonly='' instmods '=drivers/char/tpm'
	fi
	return 0
}

# _hpcs_tpm_tcsd_conf: tcsd's config for the image, with system_ps_file
# pointed into it; the host's system_ps_file on stdout.
_hpcs_tpm_tcsd_conf() {
	local tcsd_conf=${hpcs_tcsd_conf:-/etc/tcsd.conf} ps=''
	if [[ -r $tcsd_conf ]]; then
		ps=$(sed -n 's/^[[:space:]]*system_ps_file[[:space:]]*=[[:space:]]*//p' "$tcsd_conf" | tail -n 1)
		grep -v '^[[:space:]]*system_ps_file[[:space:]]*=' "$tcsd_conf" >"$initdir/etc/tcsd.conf"
	else
		: >"$initdir/etc/tcsd.conf"
	fi
	echo "system_ps_file = $hpcs_i_tpm_dir/system.data" >>"$initdir/etc/tcsd.conf"
	printf '%s\n' "${ps:-/var/lib/tpm/system.data}"
}

# _hpcs_tpm_install_tcsd: tcsd for a TPM 1.2 blob.
_hpcs_tpm_install_tcsd() {
	local ps f
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
	ps=$(_hpcs_tpm_tcsd_conf)
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
	local u
	for u in hpcs-lock-tpm.service emergency.service dracut-emergency.service rescue.service; do
		inst_simple "$moddir/hpcs-lock-tcsd.conf" "$systemdsystemunitdir/$u.d/tcsd.conf"
	done
}

# called by dracut: the sealed API key as $hpcs_i_blob (0600), and what its
# kind of TPM needs.
install() {
	local blob kind
	blob=$(_hpcs_tpm_ask config --get tpm_blob) || blob=
	if [[ ! -f $blob ]]; then
		derror "hpcs: api_key = TPM but the sealed API key '$blob' is missing"
		return 1
	fi
	# hpcs-for-luks refuses a blob that hpcs-unlock would not unseal (owned by
	# another user, writable by group or others): never a trusted copy of it.
	if ! kind=$(_hpcs_tpm_ask tpm-blob-kind 2>&1); then
		derror "hpcs: $kind"
		derror "hpcs: the sealed API key '$blob' does not go into the initramfs"
		return 1
	fi
	if [[ $kind != tpm1 && $kind != tpm2 ]]; then
		derror "hpcs: '$blob' is not a sealed API key; seal it with 'hpcs-for-luks seal-api-key'"
		return 1
	fi
	inst_simple "$blob" "$hpcs_i_blob" || return 1
	chmod 0600 "$initdir$hpcs_i_blob"
	if [[ $kind == tpm1 ]]; then
		_hpcs_tpm_install_tcsd || return 1
	fi
	return 0
}
