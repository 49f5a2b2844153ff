# shellcheck shell=bash
# hpcs-enroll --remove, sourced by hpcs-enroll: undo an enrolment. It takes
# away the luks2-keyring token for DESC (else the hpcs token named DESC that
# `hpcs-enroll --token` made), the key slots it opens that no other
# token needs (never the last key slot of the volume), the wrapped key, the
# linger marker, the crypttab line (unless another of our tokens still opens
# the volume) and a nofail volume's drop-in.
#   rm_plan   works out what that is and refuses what must not be done,
#             before anything changes;
#   rm_apply  does it, with the rollback discipline of an enrolment: what can
#             be put back goes first (set aside until the end, the key file
#             under the key directory's lock), the key slots, which cannot,
#             last; then the drop-in, an ordering only, with no rollback; a
#             second interrupt does not stop a rollback.
#
# The globals of hpcs-enroll read here (its options, opt_parse, and its
# checks of DEVICE, the config and the crypttab); hpcs-enroll sets them.
declare -g prog device name desc crypttab key_dir key_dir_lock unit_dir luks_uuid hfl

# The state of a removal, globals shared by the steps and the rollback:
#   rm_slots           the volume's key slots, space-separated
#   rm_tok_type, rm_tok_desc, rm_tok_slots
#                      by token number: its type, key description (an hpcs
#                      token's name) and key slots (space-separated), from
#                      `hpcs-for-luks luks`
#   rm_ct_line         the volume's crypttab line ("" if none)
#   rm_others          yes if the volume has other tokens of ours
#   rm_token           our token's number ("" if none)
#   rm_kill            the key slots to remove
#   rm_wrapped         the wrapped key; rm_linger its linger marker
#   rm_*_saved         what was set aside, put back by rm_rollback
#   rm_token_json      the removed token, saved for rm_rollback
#   rm_tmp             a private temporary directory
#   rm_done            yes once nothing is to be rolled back
#   rm_dropin          the nofail drop-in; rm_dropin_removed yes if removed

# rm_read_header: rm_slots and rm_tok_*, DEVICE's key slots and tokens as
# `hpcs-for-luks luks` prints them ("keyslot ID ...", "token ID TYPE SLOTS
# [DESC]", one a line).
rm_read_header() {
	local header what id type slots d
	header=$("$hfl" luks --device "$device") || die "cannot read the LUKS2 header of '$device' (see above)"
	while read -r what id type slots d; do
		case $what in
			keyslot) rm_slots+="$id " ;;
			token)
				rm_tok_type[id]=$type
				rm_tok_desc[id]=$d
				# an hpcs token's line ends "CRK INSTANCE NAME"
				[ "$type" != hpcs ] || rm_tok_desc[id]=${d##* }
				rm_tok_slots[id]=
				[ "$slots" = - ] || rm_tok_slots[id]=${slots//,/ }
				;;
		esac
	done <<<"$header"
}

# rm_rollback: put back what rm_apply took away, in reverse order.
rm_rollback() {
	local ok=yes
	if [ -n "$rm_token_json" ] && ! cryptsetup token import --token-id "$rm_token" \
		--json-file "$rm_token_json" "$device"; then
		warn "could not restore token $rm_token of '$device' (saved in '$rm_token_json')"
		ok=no
	fi
	if [ -n "$rm_linger_saved" ] || [ -n "$rm_wrapped_saved" ]; then
		lock 8 "$key_dir_lock" "another writer of the key directory" ||
			warn "restoring the key files without the key directory's lock"
	fi
	if [ -n "$rm_linger_saved" ] && ! mv -T "$rm_linger_saved" "$rm_linger"; then
		warn "could not restore '$rm_linger'"
		ok=no
	fi
	if [ -n "$rm_wrapped_saved" ] && ! mv -T "$rm_wrapped_saved" "$rm_wrapped"; then
		warn "could not restore '$rm_wrapped' (it is in '$rm_wrapped_saved')"
		ok=no
	fi
	unlock 8
	if [ -n "$rm_crypttab_saved" ] && ! mv -T "$rm_crypttab_saved" "$crypttab"; then
		warn "could not restore '$crypttab' (it is in '$rm_crypttab_saved')"
		ok=no
	fi
	if [ "$ok" = yes ]; then
		printf '%s: %s was not unenrolled; nothing was changed\n' "$prog" "'$device'" >&2
	else
		printf '%s: %s was not unenrolled; undo the changes named above by hand\n' "$prog" "'$device'" >&2
	fi
}

rm_cleanup() {
	local rc=$?
	trap '' INT TERM HUP # the rollback runs to its end
	trap - EXIT
	if [ "$rm_done" != yes ]; then
		rm_rollback
		[ "$rc" -ne 0 ] || rc=1
	fi
	[ -z "$rm_tmp" ] || rm -rf "$rm_tmp"
	exit "$rc"
}

# rm_crypttab_line: the crypttab line of this volume ("" if none).
rm_crypttab_line() {
	local line f_name f_src
	[ -e "$crypttab" ] || return 0
	while IFS= read -r line || [ -n "$line" ]; do
		read -r f_name f_src _ <<<"$line" || true
		case ${f_name:-#} in \#*) continue ;; esac
		if same_volume "${f_src:-}"; then
			printf '%s\n' "$line"
			return 0
		fi
	done <"$crypttab"
}

# --- rm_plan: what would be removed, checked --------------------------------

# rm_find_names: rm_ct_line; NAME (the crypttab line's, else the default),
# DESC (default luks:NAME) and DESC's files.
rm_find_names() {
	local rm_name=""
	rm_ct_line=$(rm_crypttab_line)
	[ -z "$rm_ct_line" ] || rm_name=$(read -r n _ <<<"$rm_ct_line" && echo "$n")
	if [ -n "$name" ] && [ -n "$rm_name" ] && [ "$name" != "$rm_name" ]; then
		die "'$crypttab' has '$device' as '$rm_name', not '$name'"
	fi
	[ -n "$name" ] || name=${rm_name:-luks-$luks_uuid}
	[ -n "$desc" ] || desc=luks:$name
	valid_name "$desc" || misuse "invalid key description '$desc'"
	rm_wrapped=$key_dir/user/$desc
	rm_linger=$key_dir/linger/user/$desc
}

# rm_find_token: rm_token, the first luks2-keyring token for DESC, else the
# first hpcs token named DESC; and rm_others.
rm_find_token() {
	local t type
	for type in luks2-keyring hpcs; do
		for t in "${!rm_tok_type[@]}"; do
			[ "${rm_tok_type[t]}" = "$type" ] || continue
			if [ "${rm_tok_desc[t]}" = "$desc" ] && [ -z "$rm_token" ]; then
				rm_token=$t
			elif [ "$t" != "$rm_token" ]; then
				rm_others=yes
			fi
		done
	done
}

# rm_find_slots: rm_kill, the key slots of rm_token that no other token
# needs; refused if they are all the volume has left.
rm_find_slots() {
	local slot t s keep slots_left=0
	for slot in ${rm_tok_slots[rm_token]}; do
		keep=no
		for t in "${!rm_tok_slots[@]}"; do
			[ "$t" != "$rm_token" ] || continue
			for s in ${rm_tok_slots[t]}; do [ "$s" != "$slot" ] || keep=yes; done
		done
		if [ "$keep" = yes ]; then
			warn "key slot $slot is also used by another token; it stays"
		else
			rm_kill+=("$slot")
		fi
	done
	for s in $rm_slots; do
		[[ " ${rm_kill[*]} " == *" $s "* ]] || slots_left=$((slots_left + 1))
	done
	[ "$slots_left" -gt 0 ] ||
		die "key slot ${rm_kill[*]} is the last key slot of '$device': removing it would lose the data (add a passphrase first: cryptsetup luksAddKey '$device')"
}

rm_plan() {
	rm_find_names
	rm_read_header
	rm_find_token
	if [ -n "$rm_token" ]; then
		rm_find_slots
	fi
	if [ -z "$rm_token" ] && [ ! -e "$rm_wrapped" ] && [ ! -e "$rm_linger" ]; then
		die "'$device' has no luks2-keyring token for '$desc', no hpcs token named '$desc', and there is no '$rm_wrapped': nothing to remove"
	fi
}

# --- rm_apply: the removal, rolled back on failure --------------------------

# 1. The crypttab line, unless another of our tokens still needs it.
rm_drop_crypttab_line() {
	local ct_dir ct_new n=0 drop line
	ct_dir=$(dirname "$crypttab")
	ct_new=$(mktemp "$ct_dir/.crypttab.hpcs-enroll.XXXXXX") || die "cannot write in '$ct_dir'"
	rm_crypttab_saved=$(mktemp "$ct_dir/.crypttab.hpcs-saved.XXXXXX") || {
		rm -f "$ct_new"
		die "cannot write in '$ct_dir'"
	}
	cp -p "$crypttab" "$rm_crypttab_saved" || die "cannot save '$crypttab'"
	drop=$(grep -nxF -- "$rm_ct_line" "$crypttab" | head -n 1 | cut -d: -f1)
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		[ "$n" = "$drop" ] || printf '%s\n' "$line"
	done <"$crypttab" >"$ct_new"
	if chmod --reference="$crypttab" "$ct_new" && sync "$ct_new" && mv -T "$ct_new" "$crypttab"; then
		:
	else
		rm -f "$ct_new"
		die "cannot update '$crypttab'"
	fi
}

# 2. The wrapped key and the linger marker, set aside until the end, under
#    the key directory's lock.
rm_set_aside() {
	lock 8 "$key_dir_lock" "another writer of the key directory" || exit 1
	rm_set_aside_files
	unlock 8
}
rm_set_aside_files() {
	if [ -e "$rm_wrapped" ]; then
		rm_wrapped_saved=$key_dir/user/.$desc.removed
		mv -T "$rm_wrapped" "$rm_wrapped_saved" || {
			rm_wrapped_saved=""
			die "cannot remove '$rm_wrapped'"
		}
	fi
	if [ -e "$rm_linger" ]; then
		rm_linger_saved=$key_dir/linger/user/.$desc.removed
		mv -T "$rm_linger" "$rm_linger_saved" || {
			rm_linger_saved=""
			die "cannot remove '$rm_linger'"
		}
	fi
}

# 3. The token, saved for a rollback.
rm_remove_token() {
	cryptsetup token export --token-id "$rm_token" "$device" >"$rm_tmp/token.json" ||
		die "cannot save token $rm_token of '$device'"
	cryptsetup token remove --token-id "$rm_token" "$device" ||
		die "cannot remove token $rm_token of '$device'"
	rm_token_json=$rm_tmp/token.json
}

# 4. The key slots: the one step that cannot be undone, so the last.
rm_kill_slots() {
	local slot
	for slot in "${rm_kill[@]}"; do
		cryptsetup luksKillSlot --batch-mode "$device" "$slot" </dev/null ||
			die "cannot remove key slot $slot of '$device'"
	done
}

# 5. A nofail volume's drop-in for the wipe: only an ordering, so it goes
#    after the rest, with no rollback.
rm_remove_dropin() {
	rm_dropin=$unit_dir/hpcs-for-luks-wipe.service.d/hpcs-enroll-$name.conf
	if [ -e "$rm_dropin" ]; then
		if rm -f "$rm_dropin"; then
			rm_dropin_removed=yes
			rmdir "${rm_dropin%/*}" 2>/dev/null || true
		else
			warn "could not remove '$rm_dropin'"
		fi
	fi
}

rm_report() {
	echo "Unenrolled '$device' (LUKS UUID $luks_uuid) from '$desc':"
	if [ -n "$rm_token" ]; then
		echo "  removed ${rm_tok_type[rm_token]} token $rm_token${rm_kill[*]:+ and key slot ${rm_kill[*]}}"
	fi
	[ -z "$rm_wrapped_saved" ] || echo "  removed the wrapped key $rm_wrapped"
	[ -z "$rm_linger_saved" ] || echo "  removed the linger marker $rm_linger"
	[ "$rm_dropin_removed" = no ] || echo "  removed $rm_dropin"
	if [ -n "$rm_crypttab_saved" ]; then
		echo "  $crypttab: removed the line for '$name'"
	elif [ -n "$rm_ct_line" ]; then
		echo "  $crypttab: kept the line for '$name' (another token of ours still opens it)"
	fi
	[ -z "$rm_wrapped_saved" ] || echo "Rebuild the initramfs so that it no longer carries the key (dracut --force)."
}

rm_apply() {
	rm_tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpcs-unenroll.XXXXXX") || die "cannot create a temporary directory"
	trap rm_cleanup EXIT
	trap "trap '' INT TERM HUP; exit 1" INT TERM HUP
	if [ -n "$rm_ct_line" ] && [ "$rm_others" = no ]; then
		rm_drop_crypttab_line
	fi
	rm_set_aside
	if [ -n "$rm_token" ]; then
		rm_remove_token
	fi
	rm_kill_slots
	rm_done=yes
	rm_remove_dropin
	[ -z "$rm_wrapped_saved" ] || rm -f "$rm_wrapped_saved"
	[ -z "$rm_linger_saved" ] || rm -f "$rm_linger_saved"
	[ -z "$rm_crypttab_saved" ] || rm -f "$rm_crypttab_saved"
	rm_report
}

# rm_main: --remove, after hpcs-enroll's checks of DEVICE, the config and the
# crypttab.
rm_main() {
	rm_slots="" rm_tok_type=() rm_tok_desc=() rm_tok_slots=()
	rm_ct_line="" rm_others=no rm_token="" rm_kill=() rm_wrapped="" rm_linger=""
	rm_wrapped_saved="" rm_linger_saved="" rm_crypttab_saved="" rm_token_json=""
	rm_tmp="" rm_done=no rm_dropin="" rm_dropin_removed=no
	rm_plan
	rm_apply
}
