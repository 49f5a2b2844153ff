# shellcheck shell=bash
# hpcs-enroll without --remove, sourced by hpcs-enroll: enrol a volume.
#   add_plan      works out the names, the key slot and token to use, the
#                 crypttab line and the drop-in, and refuses what must not be
#                 done, before anything changes;
#   add_apply     does it (the eight steps below; with --token, the steps
#                 of add_apply_token after them);
#   add_rollback  undoes what add_apply did so far, on any failure or
#                 interrupt: also a key slot or token added just before an
#                 interrupt, and units enabled before a failure; a second
#                 interrupt does not stop it.
#
# The steps of add_apply:
# 1. a random passphrase (256 bits, base64) in a private directory on tmpfs;
#    it never appears in argv, the environment or the output;
# 2. wrapped with `hpcs-for-luks wrap` (which checks that it unwraps);
# 3. added to a new key slot of DEVICE (cheap PBKDF2: the secret has full
#    entropy, as systemd-cryptenroll does for its token secrets); the existing
#    passphrase comes from --key-file, or cryptsetup asks for it on the
#    terminal (or reads one line from stdin);
# 4. a `luks2-keyring` token for the kernel "user" key DESC, bound to that
#    key slot;
# 5. the wrapped key linked into <key_dir>/user/DESC (mode 0600; a link
#    never replaces a file that appeared meanwhile), under the key
#    directory's lock;
# 6. `NAME UUID=<uuid> none luks[,_netdev][,OPTS]` appended to the crypttab,
#    unless the volume already has a line there;
# 7. for a `nofail` volume (which the crypttab generator leaves out of
#    cryptsetup.target's ordering), a drop-in that orders
#    hpcs-for-luks-wipe.service after that volume's systemd-cryptsetup@ unit,
#    so that its key is not revoked before it is opened;
# 8. hpcs-for-luks.service and hpcs-for-luks-wipe.service enabled (and
#    remote-cryptsetup.target with --netdev), unless --no-enable or there is
#    no systemctl.
#
# With --token (add_apply_token), no key file and no keyring token:
# 1. the passphrase as above;
# 2. `hpcs-for-luks token make` wraps it with the volume's LUKS UUID as AAD
#    and checks the wrapping: the token JSON, in the private directory;
# 3. the key slot as above;
# 4. `cryptsetup token import` puts the token in the header, bound to that
#    key slot;
# 5. the slot checked through the token: `hpcs-for-luks token open` (which
#    unwraps it) piped into `cryptsetup open --test-passphrase`;
# 6. the crypttab line as above (key file `none`: systemd-cryptsetup tries
#    the token through its plugin);
# 7. remote-cryptsetup.target enabled with --netdev (nothing else: no key
#    goes into a keyring, so neither the unlock nor the wipe service is
#    needed).

# The globals of hpcs-enroll read here (its options, opt_parse, and its
# checks of DEVICE, the config and the crypttab); hpcs-enroll sets them.
declare -g prog device name desc crk key_file netdev extra_opts crypttab enable unit_dir use_token
declare -g hfl hfl_args key_dir key_dir_lock luks_uuid

# The state of an enrolment, globals shared by the steps and the rollback:
#   existing_line     the volume's crypttab line ("" if none), kept as it is
#   nofail            yes for a nofail volume; dropin its drop-in ("" if none)
#   wrapped           the wrapped key's file; slot, token the numbers to use
#   do_enable         yes if the units are to be enabled
#   tmp, pass         the private directory on tmpfs, the passphrase in it
#   wrapped_tmp       the wrapped key before it is linked ("" once in place)
#   placing_wrapped   yes from just before the link; wrapped_moved yes once
#                     it is in place
#   adding_*/added_*  a key slot or token about to be added / added
#   dropin_written    yes once the drop-in may exist
#   enabling, units, was_enabled  the units being enabled, those that were
#   crypttab_written  what was written to the crypttab ("" if nothing);
#   crypttab_saved    its content before ("" if there was none)
#   new_line, unit    the new crypttab line; the nofail volume's unit
#   done_ok           yes once nothing is to be rolled back
#   rollback_ok       no once something could not be undone

# --- add_plan: what would be done, checked ----------------------------------

# add_read_crypttab: existing_line, NAME from it, and nofail; refuses a line
# that has the volume under another name, or NAME for another volume.
add_read_crypttab() {
	local lineno=0 line f_name f_src f_key f_opts
	[ -e "$crypttab" ] || return 0
	[ -r "$crypttab" ] || die "cannot read '$crypttab'"
	while IFS= read -r line || [ -n "$line" ]; do
		lineno=$((lineno + 1))
		read -r f_name f_src f_key f_opts _ <<<"$line" || true
		case ${f_name:-#} in \#*) continue ;; esac
		if same_volume "${f_src:-}"; then
			if [ -n "$name" ] && [ "$f_name" != "$name" ]; then
				die "'$crypttab' line $lineno already has '$device' as '$f_name', not '$name'"
			fi
			name=$f_name
			existing_line=$line
			case ${f_key:-none} in
				none | -) ;;
				*) warn "'$crypttab' line $lineno names a key file ('$f_key'): systemd-cryptsetup tries LUKS2 tokens only when that field is 'none' or '-'" ;;
			esac
			case ",${f_opts:-}," in *,nofail,*) nofail=yes ;; esac
			case ",${f_opts:-}," in
				*,_netdev,*) [ "$netdev" = yes ] || warn "'$crypttab' line $lineno has _netdev; left as it is" ;;
				*) [ "$netdev" = no ] || warn "'$crypttab' line $lineno lacks _netdev; left as it is" ;;
			esac
		elif [ -n "$name" ] && [ "${f_name:-}" = "$name" ]; then
			die "'$crypttab' line $lineno already uses the name '$name' for '${f_src:-}'"
		fi
	done <"$crypttab"
}

# add_luks_header: DEVICE's key slots and tokens, as `hpcs-for-luks luks`
# prints them (one a line: "keyslot ID ...", "token ID TYPE SLOTS [DESC]").
add_luks_header() {
	"$hfl" luks --device "$device" || die "cannot read the LUKS2 header of '$device' (see above)"
}

# add_find_slots: slot and token, the first free ones; refused if DEVICE has
# a luks2-keyring token for DESC, or an hpcs token named DESC, already
# (`hpcs-for-luks luks` ends an hpcs token's line with "CRK INSTANCE NAME").
add_find_slots() {
	local header what id type _slots d slots_used=" " tokens_used=" " i
	header=$(add_luks_header) || exit 1
	while read -r what id type _slots d; do
		case $what in
			keyslot) slots_used+="$id " ;;
			token)
				tokens_used+="$id "
				if [ "$type" = luks2-keyring ] && [ "$d" = "$desc" ]; then
					die "'$device' already has a luks2-keyring token ($id) for '$desc'"
				fi
				if [ "$type" = hpcs ] && [ "${d##* }" = "$desc" ]; then
					die "'$device' already has an hpcs token ($id) named '$desc'"
				fi
				;;
		esac
	done <<<"$header"
	slot="" token=""
	for ((i = 31; i >= 0; i--)); do
		[[ $slots_used == *" $i "* ]] || slot=$i
		[[ $tokens_used == *" $i "* ]] || token=$i
	done
	[ -n "$slot" ] || die "'$device' has no free key slot"
	[ -n "$token" ] || die "'$device' has no free token slot"
}

add_plan() {
	existing_line="" nofail=no
	case ",$extra_opts," in *,nofail,*) nofail=yes ;; esac
	add_read_crypttab
	[ -n "$name" ] || name=luks-$luks_uuid
	[ -n "$desc" ] || desc=luks:$name
	valid_name "$desc" || misuse "invalid key description '$desc'"

	dropin=""
	# (the drop-in keeps a key in the keyring until a nofail volume opened;
	# a token puts none there)
	if [ "$nofail" = yes ] && [ "$use_token" = no ]; then
		command -v systemd-escape >/dev/null || die "systemd-escape not found (a nofail volume needs it)"
		dropin=$unit_dir/hpcs-for-luks-wipe.service.d/hpcs-enroll-$name.conf
		[ ! -e "$dropin" ] || die "'$dropin' exists already: '$name' looks enrolled"
	fi

	wrapped=$key_dir/user/$desc
	[ "$use_token" = no ] || wrapped=""
	if [ -n "$wrapped" ] && { [ -e "$wrapped" ] || [ -L "$wrapped" ]; }; then
		die "'$wrapped' exists already: '$device' looks enrolled as '$desc' (remove the file, its key slot and token to enrol again)"
	fi

	add_find_slots

	do_enable=$enable
	if [ "$enable" = yes ] && ! command -v systemctl >/dev/null; then
		warn "no systemctl: enable hpcs-for-luks.service and hpcs-for-luks-wipe.service yourself"
		do_enable=no
	fi
}

# --- add_rollback -----------------------------------------------------------

add_undo_failed() {
	warn "$*"
	rollback_ok=no
}

# add_token_is_ours: whether token $token of DEVICE is a luks2-keyring token
# for DESC, or with --token an hpcs token named DESC (one added just before
# an interrupt, before the script noted it).
add_token_is_ours() {
	local header what id type _slots d
	header=$("$hfl" luks --device "$device" 2>/dev/null) || return 1
	while read -r what id type _slots d; do
		[ "$what $id $type" != "token $token luks2-keyring" ] || [ "$d" != "$desc" ] || return 0
		[ "$what $id $type" != "token $token hpcs" ] || [ "${d##* }" != "$desc" ] || return 0
	done <<<"$header"
	return 1
}

add_rollback() {
	local restore u
	if [ -n "$crypttab_written" ] && cmp -s "$crypttab_written" "$crypttab"; then
		if [ -z "$crypttab_saved" ]; then
			rm -f "$crypttab" || add_undo_failed "could not remove '$crypttab'"
		elif restore=$(mktemp "$(dirname "$crypttab")/.crypttab.hpcs-enroll.XXXXXX") &&
			cat "$crypttab_saved" >"$restore" && chmod --reference="$crypttab" "$restore" &&
			mv -T "$restore" "$crypttab"; then
			:
		else
			[ -z "${restore:-}" ] || rm -f "$restore"
			add_undo_failed "could not restore '$crypttab' (the line for '$name' is still there)"
		fi
	fi
	if [ "$enabling" = yes ]; then
		for u in "${units[@]}"; do
			[[ " ${was_enabled[*]} " != *" $u "* ]] || continue
			systemctl disable --quiet "$u" || add_undo_failed "could not disable '$u'"
		done
	fi
	if [ "$dropin_written" = yes ]; then
		rm -f "$dropin" || add_undo_failed "could not remove '$dropin'"
		rmdir "${dropin%/*}" 2>/dev/null || true
	fi
	# Ours also when the link was made just before an interrupt: the same file.
	if [ "$wrapped_moved" = yes ] ||
		{ [ "$placing_wrapped" = yes ] && [ -n "$wrapped_tmp" ] && [ "$wrapped" -ef "$wrapped_tmp" ]; }; then
		lock 8 "$key_dir_lock" "another writer of the key directory" ||
			warn "removing '$wrapped' without the key directory's lock"
		rm -f "$wrapped" || add_undo_failed "could not remove '$wrapped'"
		unlock 8
	fi
	[ -z "$wrapped_tmp" ] || rm -f "$wrapped_tmp" || add_undo_failed "could not remove '$wrapped_tmp'"
	# A token or key slot may have been added just before an interrupt, before
	# the script could note it: the token is found by its key description,
	# the slot by the new passphrase, which can only open ours.
	if [ "$adding_token" = yes ] && [ "$added_token" = no ] && add_token_is_ours; then
		added_token=yes
	fi
	if [ "$added_token" = yes ]; then
		cryptsetup token remove --token-id "$token" "$device" ||
			add_undo_failed "could not remove token $token of '$device'"
	fi
	# luksRemoveKey removes the slot our passphrase opens, and needs no other;
	# luksKillSlot --batch-mode with nothing on stdin does not ask for one.
	if [ "$added_slot" = no ] && [ "$adding_slot" = yes ]; then
		cryptsetup luksRemoveKey --batch-mode "$device" "$pass" </dev/null 2>/dev/null || true
	elif [ "$added_slot" = yes ] && ! cryptsetup luksRemoveKey --batch-mode "$device" "$pass" </dev/null &&
		! cryptsetup luksKillSlot --batch-mode "$device" "$slot" </dev/null 2>/dev/null; then
		add_undo_failed "could not remove key slot $slot of '$device'"
	fi
}

add_cleanup() {
	local rc=$?
	# The rollback runs to its end: further interrupts are ignored (also by
	# the commands it runs).
	trap '' INT TERM HUP
	trap - EXIT
	if [ "$done_ok" != yes ]; then
		add_rollback
		[ "$rc" -ne 0 ] || rc=1
		if [ "$rollback_ok" = yes ]; then
			printf '%s: %s was not enrolled; nothing was changed\n' "$prog" "'$device'" >&2
		else
			printf '%s: %s was not enrolled; undo the changes named above by hand\n' "$prog" "'$device'" >&2
		fi
	fi
	if [ -n "$tmp" ]; then
		[ ! -e "$pass" ] || shred -u "$pass" 2>/dev/null || rm -f "$pass"
		rm -rf "$tmp"
	fi
	exit "$rc"
}

# --- add_apply: the enrolment, rolled back on failure -----------------------

# add_private_dir: tmp, a private directory on tmpfs, and pass in it.
add_private_dir() {
	local base
	tmp=""
	for base in /dev/shm /run; do
		if [ ! -d "$base" ] || [ ! -w "$base" ]; then continue; fi
		tmp=$(mktemp -d "$base/hpcs-enroll.XXXXXX" 2>/dev/null) && break
	done
	[ -n "$tmp" ] || die "no private directory on tmpfs (/dev/shm or /run)"
	chmod 700 "$tmp"
	pass=$tmp/pass
}

# 1. The passphrase: 32 random bytes, base64 (printable, for a manual
#    `hpcs-for-luks unwrap | cryptsetup open --key-file -` in an emergency).
add_passphrase() {
	head -c 32 /dev/urandom | base64 -w0 >"$pass" || die "cannot make a passphrase in '$tmp'"
	[ "$(wc -c <"$pass")" -eq 44 ] || die "cannot make a passphrase in '$tmp'"
}

# 2. Wrapped into a temporary file beside the final one.
add_wrap() {
	local crk_args=()
	[ -d "$key_dir/user" ] || mkdir -m 700 "$key_dir/user" || die "cannot create '$key_dir/user'"
	wrapped_tmp=$(mktemp "$key_dir/user/.$desc.XXXXXX") || die "cannot create a file in '$key_dir/user'"
	[ -z "$crk" ] || crk_args+=(--uuid "$crk")
	"$hfl" "${hfl_args[@]}" wrap "${crk_args[@]}" <"$pass" >"$wrapped_tmp" ||
		die "wrapping the passphrase for '$desc' failed (see above)"
	[ -s "$wrapped_tmp" ] || die "wrapping the passphrase for '$desc' gave nothing"
}

# 3. The key slot.
add_keyslot() {
	local existing=()
	[ -z "$key_file" ] || existing+=(--key-file "$key_file")
	adding_slot=yes
	cryptsetup luksAddKey --batch-mode --new-key-slot "$slot" \
		--pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		"${existing[@]}" "$device" "$pass" ||
		die "adding key slot $slot to '$device' failed (wrong existing passphrase?)"
	added_slot=yes
	cryptsetup open --test-passphrase --key-slot "$slot" --key-file "$pass" "$device" ||
		die "the new key slot $slot of '$device' does not open with the new passphrase"
}

# 4. The token.
add_token() {
	adding_token=yes
	cryptsetup token add --token-id "$token" --key-slot "$slot" --key-description "$desc" "$device" ||
		die "adding the luks2-keyring token for '$desc' to '$device' failed"
	added_token=yes
}

# 5. The wrapped key in place: a hard link, which fails if the name exists
#    (link(2)), so nothing that appeared since the plan is overwritten;
#    under the key directory's lock, so that no other writer is between a
#    check and a write of its own.
add_place_wrapped() {
	chmod 600 "$wrapped_tmp"
	sync "$wrapped_tmp" || die "cannot write '$wrapped_tmp'"
	lock 8 "$key_dir_lock" "another writer of the key directory" || exit 1
	placing_wrapped=yes
	if ! ln -T "$wrapped_tmp" "$wrapped" 2>/dev/null; then
		unlock 8
		if [ -e "$wrapped" ] || [ -L "$wrapped" ]; then
			die "'$wrapped' appeared meanwhile; not overwritten"
		fi
		die "cannot put the wrapped key in place as '$wrapped'"
	fi
	wrapped_moved=yes
	unlock 8
	rm -f "$wrapped_tmp"
	wrapped_tmp=""
}

# 6. The crypttab line.
add_crypttab_line() {
	local opts=luks ct_dir ct_tmp
	[ "$netdev" = no ] || opts=$opts,_netdev
	[ -z "$extra_opts" ] || opts=$opts,$extra_opts
	new_line="$name UUID=$luks_uuid none $opts"
	[ -z "$existing_line" ] || return 0
	ct_dir=$(dirname "$crypttab")
	[ -d "$ct_dir" ] || die "no directory '$ct_dir' for '$crypttab'"
	ct_tmp=$(mktemp "$ct_dir/.crypttab.hpcs-enroll.XXXXXX") || die "cannot write in '$ct_dir'"
	crypttab_written=$tmp/crypttab.new
	if [ -e "$crypttab" ]; then
		crypttab_saved=$tmp/crypttab.old
		cat "$crypttab" >"$crypttab_saved"
		cat "$crypttab" >"$crypttab_written"
		# A last line without its newline gets one first.
		[ ! -s "$crypttab" ] || [ "$(tail -c 1 "$crypttab" | od -An -c | tr -d ' ')" = '\n' ] ||
			echo >>"$crypttab_written"
	fi
	printf '%s\n' "$new_line" >>"$crypttab_written"
	if cat "$crypttab_written" >"$ct_tmp" && chmod 644 "$ct_tmp" &&
		{ [ ! -e "$crypttab" ] || chmod --reference="$crypttab" "$ct_tmp"; } &&
		sync "$ct_tmp" && mv -T "$ct_tmp" "$crypttab"; then
		:
	else
		rm -f "$ct_tmp"
		crypttab_written=""
		die "cannot update '$crypttab'"
	fi
}

# 7. A nofail volume: the wipe waits for it (the generator orders nofail
#    volumes after nothing that the wipe waits for).
add_dropin() {
	[ -n "$dropin" ] || return 0
	unit=systemd-cryptsetup@$(systemd-escape -- "$name").service
	mkdir -p "${dropin%/*}" || die "cannot create '${dropin%/*}'"
	dropin_written=yes
	printf '[Unit]\nAfter=%s\n' "$unit" >"$dropin" || die "cannot write '$dropin'"
	chmod 644 "$dropin"
	[ "$do_enable" = no ] || systemctl daemon-reload || die "systemctl daemon-reload failed"
}

# 8. The units; a failure half way disables what was not enabled before.
add_enable() {
	local u
	[ "$do_enable" = yes ] || return 0
	units=(hpcs-for-luks.service hpcs-for-luks-wipe.service)
	[ "$use_token" = no ] || units=()
	[ "$netdev" = no ] || units+=(remote-cryptsetup.target)
	[ ${#units[@]} -gt 0 ] || return 0
	for u in "${units[@]}"; do
		if systemctl is-enabled --quiet "$u" 2>/dev/null; then was_enabled+=("$u"); fi
	done
	enabling=yes
	systemctl enable "${units[@]}" ||
		die "enabling ${units[*]} failed (use --no-enable to enrol without them)"
}

add_report() {
	echo "Enrolled '$device' (LUKS UUID $luks_uuid):"
	if [ "$use_token" = yes ]; then
		echo "  key slot $slot, hpcs token $token named '$desc' (the wrapped passphrase is in the header)"
	else
		echo "  key slot $slot, luks2-keyring token $token for the user key '$desc'"
		echo "  wrapped key: $wrapped"
	fi
	if [ -n "$existing_line" ]; then
		echo "  $crypttab: kept the existing line for '$name'"
	else
		echo "  $crypttab: $new_line"
	fi
	[ -z "$dropin" ] || echo "  $dropin: the wipe waits for $unit (nofail)"
	if [ "$netdev" = no ] && [ "$use_token" = no ]; then
		echo "Without _netdev the volume opens before the network is up: the key must come from the"
		echo "initramfs, so rebuild it to carry the new wrapped key: dracut --regenerate-all --force"
	fi
}

add_apply() {
	tmp="" pass="" wrapped_tmp="" placing_wrapped=no wrapped_moved=no adding_slot=no added_slot=no
	adding_token=no added_token=no dropin_written=no enabling=no units=() was_enabled=()
	crypttab_written="" crypttab_saved="" new_line="" unit="" done_ok=no rollback_ok=yes
	add_private_dir
	trap add_cleanup EXIT
	# (ignored from the first on: a second one would end the rollback)
	trap "trap '' INT TERM HUP; exit 1" INT TERM HUP
	add_passphrase
	if [ "$use_token" = yes ]; then
		add_apply_token
	else
		add_wrap
		add_keyslot
		add_token
		add_place_wrapped
		add_crypttab_line
		add_dropin
	fi
	add_enable
	done_ok=yes
	add_report
}

# --- add_apply_token: --token -----------------------------------------------

# 2. The token JSON, wrapped with the AAD and checked by hpcs-for-luks.
add_make_token() {
	local crk_args=()
	[ -z "$crk" ] || crk_args+=(--uuid "$crk")
	"$hfl" "${hfl_args[@]}" token make --luks-uuid "$luks_uuid" --keyslot "$slot" \
		"${crk_args[@]}" --name "$desc" <"$pass" >"$tmp/token.json" ||
		die "wrapping the passphrase for '$device' failed (see above)"
	[ -s "$tmp/token.json" ] || die "wrapping the passphrase for '$device' gave nothing"
}

# 4. The token in the header, bound to the key slot.
add_import_token() {
	adding_token=yes
	cryptsetup token import --json-file - --token-id "$token" --key-slot "$slot" "$device" \
		<"$tmp/token.json" || die "adding the hpcs token to '$device' failed"
	added_token=yes
}

# 5. The key slot opens with what the token gives.
add_check_token() {
	set -o pipefail
	"$hfl" "${hfl_args[@]}" token open --device "$device" --token-id "$token" |
		cryptsetup open --test-passphrase --key-slot "$slot" --key-file - "$device" ||
		die "key slot $slot of '$device' does not open with what hpcs token $token gives"
	set +o pipefail
}

add_apply_token() {
	add_make_token
	add_keyslot
	add_import_token
	add_check_token
	add_crypttab_line
}

# add_main: an enrolment, after hpcs-enroll's checks of DEVICE, the config
# and the crypttab.
add_main() {
	add_plan
	add_apply
}
