#!/bin/bash
# dracut module "hpcs": unwrap hpcs-for-luks keys in the initramfs, before
# systemd-cryptsetup and dm-crypt tables look for them in the kernel keyring.
#
# Sourced by dracut (see dracut.modules(7)): no `set -e`, no `exit`.
#
# Host-side knobs (dracut.conf.d or the environment):
#   hpcs_config=FILE      config to package (default /etc/hpcs-for-luks.ini)
#   hpcs_unlock=FILE      the static unlocker (default: hpcs-unlock in PATH)
#   hpcs_cli=FILE         the admin CLI, which reads the config for us
#                         (default: hpcs-for-luks in PATH)
#   hpcs_token_plugin=FILE  the libcryptsetup token plugin for `hpcs` tokens
#                         (default: libcryptsetup-token-hpcs.so in cryptsetup's
#                         external token directory, where the package puts it)
#   hpcs_crypttab=FILE    the crypttab whose volumes may have an `hpcs` token
#                         (default /etc/crypttab)
#
# The TPM part (api_key = TPM) is the module "hpcs-tpm" (98hpcs-tpm), which
# depends() names then: the sealed API key, the TPM drivers, tcsd (and its
# knob hpcs_tcsd_conf=). What may go in (the API key in plaintext only with
# [HFL] initramfs_plain_api_key = yes; nothing secret with [KP] auth = vpc)
# is _hpcs_plan's; install() does it.
#
# In the initramfs everything sits at fixed places, whatever the host uses:
#   /etc/hpcs-for-luks.ini                (key_dir, ca_file, tpm_blob rewritten)
#   /var/lib/hpcs-for-luks/{logon,user}/  wrapped keys
#   /var/lib/hpcs-for-luks/api-key-blob.txt  the sealed API key (hpcs-tpm)
#   /etc/hpcs-for-luks/ca.pem             the CA bundle from ca_file or the system's
#   TOKENDIR/libcryptsetup-token-hpcs.so  the token plugin, TOKENDIR the host
#                                         libcryptsetup's (the image has that one)

# dracut sets initdir, moddir, dracutsysrootdir, systemdsystemunitdir,
# hostonly_cmdline, dracutbasedir and SYSTEMCTL before sourcing us.
# shellcheck disable=SC2154

# Paths inside the initramfs.
hpcs_i_config=/etc/hpcs-for-luks.ini
hpcs_i_key_dir=/var/lib/hpcs-for-luks
hpcs_i_ca=/etc/hpcs-for-luks/ca.pem
# where hpcs-tpm puts the sealed API key
hpcs_i_blob=/var/lib/hpcs-for-luks/api-key-blob.txt

_hpcs_cli_bin() {
	if [[ $hpcs_cli ]]; then
		[[ -x $hpcs_cli ]] && printf '%s\n' "$hpcs_cli"
		return
	fi
	find_binary hpcs-for-luks
}

# _hpcs_get NAME: a setting of the config, as hpcs-for-luks reads it
# (`config --get`: the one parser, also for `[kp]` or `KEY_DIR`).
_hpcs_get() {
	local cli
	cli=$(_hpcs_cli_bin) && [[ $cli ]] || return 1
	"$cli" --config "$(_hpcs_config)" config --get "$1"
}

_hpcs_config() {
	printf '%s\n' "${hpcs_config:-/etc/hpcs-for-luks.ini}"
}

_hpcs_unlock_bin() {
	if [[ $hpcs_unlock ]]; then
		[[ -x $hpcs_unlock ]] && printf '%s\n' "$hpcs_unlock"
		return
	fi
	find_binary hpcs-unlock
}

_hpcs_key_dir() {
	_hpcs_get key_dir
}

_hpcs_uses_tpm() {
	[[ "$(_hpcs_get api_key_source)" == tpm ]]
}

# The wrapped key files, each followed by a NUL (a name may hold any
# character but '/', even a newline), as `hpcs-for-luks key-files` lists them:
# read as hpcs-unlock reads them (owned by root, not writable by group or
# others, no symbolic link, a wrapped key inside). It fails, naming the file,
# on one that hpcs-unlock would refuse: the image must not carry a trusted
# root-owned copy of it.
_hpcs_key_files() {
	local cli
	cli=$(_hpcs_cli_bin) && [[ $cli ]] || return 1
	"$cli" --config "$(_hpcs_config)" key-files
}

# The external token directory of the host's libcryptsetup (which dracut's
# crypt module puts into the image), as `cryptsetup --help` names it.
_hpcs_token_dir() {
	cryptsetup --help 2>/dev/null |
		sed -n 's|^LUKS2 external token plugin path: \(/.*\)\.$|\1|p'
}

# The token plugin to install, or nothing (not installed on this host).
_hpcs_token_plugin() {
	local d
	if [[ $hpcs_token_plugin ]]; then
		printf '%s\n' "$hpcs_token_plugin"
		return
	fi
	d=$(_hpcs_token_dir) && [[ $d ]] || return 0
	[[ -e $dracutsysrootdir$d/libcryptsetup-token-hpcs.so ]] &&
		printf '%s\n' "$d/libcryptsetup-token-hpcs.so"
}

# The devices of the crypttab's volumes and those under the root file
# system (its dm-crypt's, through LVM too), one a line.
_hpcs_volume_devices() {
	local tab=${hpcs_crypttab:-$dracutsysrootdir/etc/crypttab} name dev rest src s
	if [[ -r $tab ]]; then
		while read -r name dev rest; do
			[[ $name && $name != \#* && $dev ]] || continue
			case $dev in
				UUID=* | PARTUUID=* | LABEL=* | PARTLABEL=*)
					s=${dev%%=*}
					dev=/dev/disk/by-${s,,}/${dev#*=}
					;;
			esac
			printf '%s\n' "$dev"
		done <"$tab"
	fi
	src=$(findmnt -nvo SOURCE / 2>/dev/null) && [[ $src == /dev/* ]] || return 0
	src=$(readlink -f "$src") || return 0
	_hpcs_slaves "${src##*/}"
}

# _hpcs_slaves DEV: the devices below the kernel block device DEV.
_hpcs_slaves() {
	local s
	for s in /sys/class/block/"$1"/slaves/*; do
		[[ -e $s ]] || continue
		printf '/dev/%s\n' "${s##*/}"
		_hpcs_slaves "${s##*/}"
	done
}

# The volumes (devices) with an `hpcs` token, as `hpcs-for-luks luks` lists
# their tokens; one a line.
_hpcs_token_volumes() {
	local cli dev
	cli=$(_hpcs_cli_bin) && [[ $cli ]] || return 0
	while read -r dev; do
		"$cli" luks --device "$dev" 2>/dev/null | grep -q '^token [0-9]* hpcs ' &&
			printf '%s\n' "$dev"
	done < <(_hpcs_volume_devices | sort -u)
}

# called by dracut
check() {
	local conf
	conf=$(_hpcs_config)
	require_binaries "$(_hpcs_unlock_bin)" "$(_hpcs_cli_bin)" || return 1
	# Included by itself whenever this system is set up for it (a config and
	# at least one wrapped key, or a volume with an `hpcs` token), in
	# host-only and in generic images alike: Debian's dracut makes generic
	# ones, and `dracut --regenerate-all` must not drop the module there.
	# Otherwise only on request (--add hpcs). A refused key file includes it
	# too: install() then fails, naming it.
	[[ -r $conf ]] || return 255
	_hpcs_key_files >/dev/null 2>&1 || return 0
	[[ -n "$(_hpcs_key_files 2>/dev/null | tr -d '\0')" ]] && return 0
	[[ -n "$(_hpcs_token_volumes)" ]] && return 0
	return 255
}

# _hpcs_have_module NAME: whether this dracut has the module NAME.
_hpcs_have_module() {
	local d
	for d in "${dracutbasedir:-/usr/lib/dracut}"/modules.d/[0-9][0-9]"$1"; do
		[[ -d $d ]] && return 0
	done
	return 1
}

# called by dracut: systemd-cryptsetup where dracut has it as a module of its
# own (dracut-ng, whose crypt no longer pulls it in; dracut 059's crypt
# installs it itself); hpcs-tpm for api_key = TPM.
depends() {
	local deps="network crypt systemd"
	if _hpcs_have_module systemd-cryptsetup; then
		deps+=" systemd-cryptsetup"
	fi
	if _hpcs_uses_tpm 2>/dev/null; then
		deps+=" hpcs-tpm"
	fi
	echo "$deps"
	return 0
}

# called by dracut
cmdline() {
	echo " rd.neednet=1"
}

# _hpcs_list_keys: the wrapped key files into hpcs_key_list; 1 (said why)
# when hpcs-for-luks refuses one or the key directory.
_hpcs_list_keys() {
	local list err
	list=$(mktemp "${DRACUT_TMPDIR:-/tmp}/hpcs-key-files.XXXXXX") || return 1
	if ! err=$(_hpcs_key_files 2>&1 >"$list"); then
		rm -f "$list"
		derror "hpcs: ${err:-hpcs-for-luks key-files failed}"
		derror "hpcs: hpcs-unlock would refuse it too; nothing of it goes into the initramfs"
		return 1
	fi
	mapfile -d '' hpcs_key_list <"$list"
	rm -f "$list"
}

# _hpcs_plan: whether hpcs-unlock goes in, and how the API key does
# (hpcs_print_args for `config --print`); hpcs_kd the host's key_dir,
# hpcs_key_list its wrapped key files and hpcs_token_list the volumes with
# an `hpcs` token.
# 0 it goes in; 255 it does not, said why (not an error: no config, neither
# keys nor tokens, no API key that may go in); 1 an error, said why.
_hpcs_plan() {
	local conf api_source
	conf=$(_hpcs_config)
	if [[ ! -r $conf ]]; then
		dwarn "hpcs: no config '$conf'; hpcs-unlock not installed"
		return 255
	fi
	if ! hpcs_kd=$(_hpcs_key_dir); then
		derror "hpcs: hpcs-for-luks cannot read '$conf' (see above); hpcs-unlock not installed"
		return 1
	fi
	_hpcs_list_keys || return 1
	mapfile -t hpcs_token_list < <(_hpcs_token_volumes)
	if ((${#hpcs_key_list[@]} == 0 && ${#hpcs_token_list[@]} == 0)); then
		dwarn "hpcs: no wrapped keys under '$hpcs_kd' and no volume with an hpcs token;" \
			"hpcs-unlock not installed"
		return 255
	fi
	api_source=$(_hpcs_get api_key_source) || api_source=
	if [[ $api_source == none || -z $api_source ]]; then
		derror "hpcs: '$conf' has no [KP] api_key; hpcs-unlock not installed"
		return 255
	elif [[ $api_source == tpm ]]; then
		hpcs_print_args=(--tpm-blob "$hpcs_i_blob")
	elif [[ $api_source == vpc ]]; then
		# auth = vpc: the instance's identity from the metadata service
		# (169.254.169.254, routed by the DHCP lease); no secret goes in.
		# The blob path only so that no host path lands in the image.
		hpcs_print_args=(--tpm-blob "$hpcs_i_blob")
	elif [[ "$(_hpcs_get initramfs_plain_api_key)" != yes ]]; then
		dwarn "hpcs: '$conf' holds a plaintext api_key; anyone who can read the initramfs"
		dwarn "hpcs: in /boot would get it. Seal it to the TPM (api_key = TPM) or set"
		dwarn "hpcs: [HFL] initramfs_plain_api_key = yes. hpcs-unlock not installed."
		return 255
	else
		hpcs_print_args=(--with-api-key)
	fi
	return 0
}

# _hpcs_inst_config: the config as hpcs-for-luks reads it, pointed at the
# initramfs layout (0600).
_hpcs_inst_config() {
	mkdir -p "$initdir${hpcs_i_config%/*}"
	if ! (umask 077 && "$(_hpcs_cli_bin)" --config "$(_hpcs_config)" config --print \
		--key-dir "$hpcs_i_key_dir" --ca-file "$hpcs_i_ca" "${hpcs_print_args[@]}" \
		>"$initdir$hpcs_i_config"); then
		derror "hpcs: cannot write the initramfs's copy of '$(_hpcs_config)'"
		return 1
	fi
}

# _hpcs_inst_ca: ca_file, else the system's CA bundle.
_hpcs_inst_ca() {
	local ca f
	ca=$(_hpcs_get ca_file) || ca=
	if [[ -z $ca ]]; then
		for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
			[[ -r $dracutsysrootdir$f ]] && ca=$f && break
		done
	fi
	mkdir -p "$initdir${hpcs_i_ca%/*}"
	if [[ -z $ca ]] || ! inst_simple "$ca" "$hpcs_i_ca"; then
		derror "hpcs: no CA bundle to install (ca_file '${ca}')"
		return 1
	fi
}

# _hpcs_inst_keys: every wrapped key (0600), each compared after the copy,
# and its linger marker if it has one (hpcs-unlock gives that key no timeout).
_hpcs_inst_keys() {
	local f rel
	for f in "${hpcs_key_list[@]}"; do
		rel=${f#"$hpcs_kd"/}
		if ! inst_simple "$f" "$hpcs_i_key_dir/$rel" || ! cmp -s "$f" "$initdir$hpcs_i_key_dir/$rel" ||
			! chmod 0600 "$initdir$hpcs_i_key_dir/$rel"; then
			derror "hpcs: cannot install '$f' into the initramfs"
			return 1
		fi
		[[ -e $hpcs_kd/linger/$rel ]] || continue
		if ! mkdir -p "$initdir$hpcs_i_key_dir/linger/${rel%%/*}" ||
			! : >"$initdir$hpcs_i_key_dir/linger/$rel"; then
			derror "hpcs: cannot install the linger marker of '$f' into the initramfs"
			return 1
		fi
	done
	# Empty with only tokens: hpcs-unlock lists it all the same.
	mkdir -p "$initdir$hpcs_i_key_dir" && chmod 0700 "$initdir$hpcs_i_key_dir"
}

# _hpcs_inst_token_plugin: the token plugin where the image's libcryptsetup
# looks for it, when the host has it; a volume with an `hpcs` token and no
# plugin is an error. Its only libraries (libc, libcryptsetup) are there
# already: it runs hpcs-unlock --token-open for the Key Protect part.
_hpcs_inst_token_plugin() {
	local plugin dir where=
	plugin=$(_hpcs_token_plugin)
	dir=$(_hpcs_token_dir)
	if [[ -z $plugin || -z $dir ]]; then
		((${#hpcs_token_list[@]} == 0)) && return 0
		[[ -z $dir ]] || where=" in '$dir'"
		derror "hpcs: '${hpcs_token_list[0]}' has an hpcs token, but there is no" \
			"libcryptsetup-token-hpcs.so$where to open it at boot"
		return 1
	fi
	if ! inst_library "$plugin" "$dir/libcryptsetup-token-hpcs.so"; then
		derror "hpcs: cannot install the token plugin '$plugin' into the initramfs"
		return 1
	fi
}

# _hpcs_inst_console: no shell at the console in an initramfs that holds our
# secrets. A failed boot reboots instead of opening dracut's emergency shell
# (rd.shell=0 rd.emergency=reboot in /etc/cmdline.d: the kernel command line
# is read after it, so rd.shell or rd.break there still asks for a shell);
# the emergency and rescue units lock the TPM before anything of theirs runs.
_hpcs_inst_console() {
	local u
	mkdir -p "$initdir/etc/cmdline.d"
	inst_simple "$moddir/hpcs-noshell.conf" /etc/cmdline.d/98hpcs-noshell.conf || return 1
	for u in emergency.service dracut-emergency.service rescue.service; do
		inst_simple "$moddir/hpcs-lock-tpm.conf" "$systemdsystemunitdir/$u.d/hpcs-lock-tpm.conf" ||
			return 1
	done
}

# called by dracut
install() {
	local hpcs_kd hpcs_print_args=() hpcs_key_list=() hpcs_token_list=()
	_hpcs_plan
	case $? in
		0) ;;
		255) return 0 ;;
		*) return 1 ;;
	esac
	inst_simple "$(_hpcs_unlock_bin)" /usr/sbin/hpcs-unlock || return 1
	_hpcs_inst_config || return 1
	_hpcs_inst_ca || return 1
	_hpcs_inst_keys || return 1
	_hpcs_inst_token_plugin || return 1
	_hpcs_inst_console || return 1
	inst_simple "$moddir/hpcs-unlock.service" "$systemdsystemunitdir/hpcs-unlock.service"
	inst_simple "$moddir/hpcs-lock-tpm.service" "$systemdsystemunitdir/hpcs-lock-tpm.service"
	$SYSTEMCTL -q --root "$initdir" enable hpcs-unlock.service hpcs-lock-tpm.service
	if [[ $hostonly_cmdline == "yes" ]]; then
		mkdir -p "$initdir/etc/cmdline.d"
		cmdline >"$initdir/etc/cmdline.d/99hpcs.conf"
	fi
	return 0
}
