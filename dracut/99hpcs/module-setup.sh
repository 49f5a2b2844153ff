#!/bin/bash
# dracut module "hpcs": unwrap hpcs-for-luks keys in the initramfs, before
# systemd-cryptsetup and dm-crypt tables look for them in the kernel keyring.
#
# Sourced by dracut (see dracut.modules(7)): no `set -e`, no `exit`.
#
# Host-side knobs (dracut.conf.d or the environment):
#   hpcs_config=FILE      config to package (default /etc/hpcs-for-luks.ini)
#   hpcs_unlock=FILE      the static unlocker (default: hpcs-unlock in PATH)
#   hpcs_tcsd_conf=FILE   tcsd config for a TPM 1.2 blob (default /etc/tcsd.conf)
#
# The TPM part (api_key = TPM) is in hpcs-tpm.sh beside this file.
#
# In the initramfs everything sits at fixed places, whatever the host uses:
#   /etc/hpcs-for-luks.ini                (key_dir, ca_file, tpm_blob rewritten)
#   /var/lib/hpcs-for-luks/{logon,user}/  wrapped keys
#   /var/lib/hpcs-for-luks/api-key-blob.txt
#   /etc/hpcs-for-luks/ca.pem             the CA bundle from ca_file or the system's

# dracut sets initdir, moddir, dracutsysrootdir, systemdsystemunitdir,
# udevrulesdir, hostonly, hostonly_cmdline and SYSTEMCTL before sourcing us.
# shellcheck disable=SC2154

# Paths inside the initramfs.
hpcs_i_config=/etc/hpcs-for-luks.ini
hpcs_i_key_dir=/var/lib/hpcs-for-luks
hpcs_i_ca=/etc/hpcs-for-luks/ca.pem
hpcs_i_blob=/var/lib/hpcs-for-luks/api-key-blob.txt

# shellcheck source=hpcs-tpm.sh
. "${moddir:-$(dirname "${BASH_SOURCE[0]}")}/hpcs-tpm.sh"

# _hpcs_ini_get FILE SECTION KEY: print the value, as Python's configparser
# reads it ('=' or ':' separates, keys are case-insensitive, '#'/';' comment).
_hpcs_ini_get() {
	[[ -r $1 ]] || return 1
	awk -v want_sec="$2" -v want_key="$3" '
        /^[ \t]*[#;]/ { next }
        /^[ \t]*\[/ {
            sec = $0
            sub(/^[ \t]*\[/, "", sec); sub(/\].*$/, "", sec)
            next
        }
        sec == want_sec {
            if (match($0, /^[ \t]*[^=: \t]+[ \t]*[=:]/) == 0) next
            key = substr($0, 1, RLENGTH - 1)
            gsub(/[ \t]/, "", key)
            if (tolower(key) != tolower(want_key)) next
            val = substr($0, RLENGTH + 1)
            sub(/^[ \t]+/, "", val); sub(/[ \t]+[#;].*$/, "", val)
            sub(/[ \t\r]+$/, "", val)
            found = val; have = 1
        }
        END { if (have) print found; exit(have ? 0 : 1) }
    ' "$1"
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
	local d
	d=$(_hpcs_ini_get "$(_hpcs_config)" HFL key_dir) || d=
	printf '%s\n' "${d:-/var/lib/hpcs-for-luks}"
}

_hpcs_uses_tpm() {
	local k
	k=$(_hpcs_ini_get "$(_hpcs_config)" KP api_key) || return 1
	[[ ${k^^} == TPM ]]
}

_hpcs_is_yes() {
	case "${1,,}" in
		yes | true | on | 1) return 0 ;;
	esac
	return 1
}

# The wrapped key files: regular files directly under logon/ and user/.
_hpcs_key_files() {
	local kd f
	kd=$(_hpcs_key_dir)
	for f in "$kd"/logon/* "$kd"/user/*; do
		[[ -f $f ]] && printf '%s\n' "$f"
	done
}

# called by dracut
check() {
	local conf
	conf=$(_hpcs_config)
	require_binaries "$(_hpcs_unlock_bin)" || return 1
	# Included by itself whenever this system is set up for it (a config and
	# at least one wrapped key), in host-only and in generic images alike:
	# Debian's dracut makes generic ones, and `dracut --regenerate-all` must
	# not drop the module there. Otherwise only on request (--add hpcs).
	if [[ -r $conf ]] && [[ -n "$(_hpcs_key_files)" ]]; then
		return 0
	fi
	return 255
}

# called by dracut
depends() {
	echo network crypt systemd
	return 0
}

# called by dracut
installkernel() {
	if _hpcs_uses_tpm; then
		_hpcs_tpm_installkernel
	fi
	return 0
}

# called by dracut
cmdline() {
	echo " rd.neednet=1"
}

# Copy the config, pointing key_dir, ca_file and tpm_blob at the initramfs
# layout; every other line is kept as it is.
_hpcs_write_config() {
	local src=$1 dst=$2 blob=$3
	awk -v kd="$hpcs_i_key_dir" -v ca="$hpcs_i_ca" -v blob="$blob" '
        function close_section() {
            if (sec == "KP" && !seen_ca) print "ca_file = " ca
            if (sec == "HFL") {
                if (!seen_kd) print "key_dir = " kd
                if (blob != "" && !seen_blob) print "tpm_blob = " blob
            }
        }
        function is_key(k) {
            if (match($0, /^[ \t]*[^=: \t]+[ \t]*[=:]/) == 0) return 0
            s = substr($0, 1, RLENGTH - 1); gsub(/[ \t]/, "", s)
            return tolower(s) == k
        }
        /^[ \t]*\[/ {
            close_section()
            sec = $0; sub(/^[ \t]*\[/, "", sec); sub(/\].*$/, "", sec)
            if (sec == "HFL") had_hfl = 1
            print; next
        }
        sec == "KP" && is_key("ca_file") { print "ca_file = " ca; seen_ca = 1; next }
        sec == "HFL" && is_key("key_dir") { print "key_dir = " kd; seen_kd = 1; next }
        sec == "HFL" && is_key("tpm_blob") {
            if (blob != "") print "tpm_blob = " blob
            seen_blob = 1; next
        }
        { print }
        END {
            close_section()
            if (!had_hfl) { print ""; print "[HFL]"; sec = "HFL"; close_section() }
        }
    ' "$src" >"$dst"
}

# called by dracut
install() {
	local conf bin kd api_key plain ca f rel blob=

	conf=$(_hpcs_config)
	if [[ ! -r $conf ]]; then
		dwarn "hpcs: no config '$conf'; hpcs-unlock not installed"
		return 0
	fi
	kd=$(_hpcs_key_dir)
	if [[ -z "$(_hpcs_key_files)" ]]; then
		dwarn "hpcs: no wrapped keys under '$kd'; hpcs-unlock not installed"
		return 0
	fi

	api_key=$(_hpcs_ini_get "$conf" KP api_key) || api_key=
	if [[ -z $api_key ]]; then
		derror "hpcs: '$conf' has no [KP] api_key; hpcs-unlock not installed"
		return 0
	elif [[ ${api_key^^} == TPM ]]; then
		blob=$hpcs_i_blob
	else
		plain=$(_hpcs_ini_get "$conf" HFL initramfs_plain_api_key) || plain=
		if ! _hpcs_is_yes "$plain"; then
			dwarn "hpcs: '$conf' holds a plaintext api_key; anyone who can read the initramfs"
			dwarn "hpcs: in /boot would get it. Seal it to the TPM (api_key = TPM) or set"
			dwarn "hpcs: [HFL] initramfs_plain_api_key = yes. hpcs-unlock not installed."
			return 0
		fi
	fi

	bin=$(_hpcs_unlock_bin)
	inst_simple "$bin" /usr/sbin/hpcs-unlock || return 1

	mkdir -p "$initdir${hpcs_i_config%/*}" "$initdir${hpcs_i_ca%/*}"
	(umask 077 && _hpcs_write_config "$conf" "$initdir$hpcs_i_config" "$blob")

	ca=$(_hpcs_ini_get "$conf" KP ca_file) || ca=
	if [[ -z $ca ]]; then
		for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
			[[ -r $dracutsysrootdir$f ]] && ca=$f && break
		done
	fi
	if [[ -z $ca ]] || ! inst_simple "$ca" "$hpcs_i_ca"; then
		derror "hpcs: no CA bundle to install (ca_file '${ca}')"
		return 1
	fi

	while read -r f; do
		rel=${f#"$kd"/}
		inst_simple "$f" "$hpcs_i_key_dir/$rel"
		chmod 0600 "$initdir$hpcs_i_key_dir/$rel"
	done < <(_hpcs_key_files)
	chmod 0700 "$initdir$hpcs_i_key_dir"

	if [[ $blob ]]; then
		_hpcs_tpm_install "$conf" "$kd" || return 1
	fi

	inst_simple "$moddir/hpcs-unlock.service" "$systemdsystemunitdir/hpcs-unlock.service"
	$SYSTEMCTL -q --root "$initdir" enable hpcs-unlock.service

	if [[ $hostonly_cmdline == "yes" ]]; then
		mkdir -p "$initdir/etc/cmdline.d"
		cmdline >"$initdir/etc/cmdline.d/99hpcs.conf"
	fi
	return 0
}
