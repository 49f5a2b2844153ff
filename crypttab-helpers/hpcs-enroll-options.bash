# shellcheck shell=bash
# The command line of hpcs-enroll, sourced by it: the usage text, the options
# into hpcs-enroll's globals (opt_parse) and their checks (opt_check).
# Uses hpcs-enroll's misuse and valid_name.
#
# The options are hpcs-enroll's globals, set by opt_set, opt_parse and
# opt_check, read by hpcs-enroll and its other parts: hence the SC2034
# ("unused" in this file alone) of those three functions.

usage() {
	cat <<'EOF'
Usage: hpcs-enroll [OPTIONS] DEVICE [NAME]
       hpcs-enroll --token [OPTIONS] DEVICE [NAME]
       hpcs-enroll --remove [--config FILE] [--name DESC] [--crypttab FILE]
                            [--unit-dir DIR] DEVICE [NAME]

Enrols the LUKS2 volume DEVICE for unattended unlock: a new random passphrase,
wrapped by the root key into <key_dir>/user/DESC, in a new key slot found by a
luks2-keyring token, and a crypttab line NAME (default: luks-<UUID>).
With --token, the wrapped passphrase goes into an `hpcs` token in the LUKS2
header instead (bound to the volume's LUKS UUID; no key file, no keyring).

Options:
  --config FILE     hpcs-for-luks configuration (default /etc/hpcs-for-luks.ini)
  --uuid CRK        root key to wrap with (default: default_crk_uuid)
  --name DESC       kernel key description and file name (default: luks:NAME)
  --key-file FILE   an existing passphrase of DEVICE ('-': all of stdin);
                    without it cryptsetup asks on the terminal
  --netdev          open the volume after the network is up (_netdev)
  --options OPTS    more crypttab options, comma-separated (e.g. nofail)
  --crypttab FILE   the crypttab to update (default /etc/crypttab)
  --no-enable       do not enable the systemd units
  --unit-dir DIR    where the drop-in for a nofail volume goes
                    (default /etc/systemd/system)
  --token           store the wrapped passphrase in an hpcs token of DEVICE
                    (opened by the cryptsetup token plugin), not in a file
  --remove          undo an enrolment: token (luks2-keyring or hpcs), key
                    slot (never the last one), wrapped key, crypttab line and
                    linger marker
  -h, --help        this help
EOF
}

# opt_set OPTION VALUE: an option that takes a value.
# shellcheck disable=SC2034
opt_set() {
	case $1 in
		--config)
			config=$2
			config_given=yes
			;;
		--uuid) crk=$2 ;;
		--name) desc=$2 ;;
		--key-file) key_file=$2 ;;
		--options) extra_opts=$2 ;;
		--crypttab) crypttab=$2 ;;
		--unit-dir) unit_dir=$2 ;;
	esac
}

# opt_parse ARGS...: the options and their defaults; the operands into args.
# shellcheck disable=SC2034
opt_parse() {
	config=/etc/hpcs-for-luks.ini
	config_given=no
	crk=""
	desc=""
	key_file=""
	netdev=no
	extra_opts=""
	crypttab=/etc/crypttab
	enable=yes
	unit_dir=/etc/systemd/system
	remove=no
	use_token=no
	args=()
	while [ $# -gt 0 ]; do
		case $1 in
			--config | --uuid | --name | --key-file | --options | --crypttab | --unit-dir)
				[ $# -ge 2 ] || misuse "$1 needs a value"
				opt_set "$1" "$2"
				shift 2
				;;
			--config=* | --uuid=* | --name=* | --key-file=* | --options=* | --crypttab=* | --unit-dir=*)
				opt_set "${1%%=*}" "${1#*=}"
				shift
				;;
			--netdev)
				netdev=yes
				shift
				;;
			--no-enable)
				enable=no
				shift
				;;
			--remove)
				remove=yes
				shift
				;;
			--token)
				use_token=yes
				shift
				;;
			-h | --help)
				usage
				exit 0
				;;
			--)
				shift
				args+=("$@")
				break
				;;
			-?*) misuse "unknown option '$1'" ;;
			*)
				args+=("$1")
				shift
				;;
		esac
	done
}

# opt_check: DEVICE and NAME from the operands; names, options and the root
# key UUID checked (they become file names, unit names and crypttab fields).
# shellcheck disable=SC2034
opt_check() {
	[ ${#args[@]} -ge 1 ] || misuse "missing DEVICE"
	[ ${#args[@]} -le 2 ] || misuse "too many arguments"
	device=${args[0]}
	name=${args[1]:-}
	[ -z "$name" ] || valid_name "$name" ||
		misuse "invalid volume name '$name' (letters, digits and ._@+:- only)"
	[ -z "$desc" ] || valid_name "$desc" ||
		misuse "invalid key description '$desc' (letters, digits and ._@+:- only)"
	[[ $extra_opts =~ ^[A-Za-z0-9._@+:=/,-]*$ ]] ||
		misuse "invalid crypttab options '$extra_opts'"
	[[ $crk =~ ^[A-Za-z0-9-]*$ ]] || misuse "invalid root key UUID '$crk'"
	[ "$use_token" = no ] || [ "$remove" = no ] ||
		misuse "--token is for enrolling; --remove finds the token by itself"
}
