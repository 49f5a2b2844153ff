#!/usr/bin/env bats
# [KP] auth = vpc: the token from the VPC instance metadata service (the
# emulator's, at 169.254.169.254:80 in this file's network namespace: run it
# through ./run), no API key anywhere. The CLI and hpcs-unlock (shared and
# static), the errors that name what to do, the refusals, report's findings
# and the opt-in nftables rule that limits the service to root.

load ../helpers
load ../unlock_helpers

setup() {
	[ "${HPCS_IN_NETNS:-}" = 1 ] || skip "run through tests/bats/netns/run (a network namespace)"
	unlock_setup --metadata-bind 169.254.169.254 --metadata-port 80 \
		--trusted-profile Profile-boot \
		--trusted-profile Profile-unlinked,unlinked \
		--trusted-profile Profile-norole,norole \
		--trusted-profile Profile-default,default
	[ "$EMU_MD_URL" = http://169.254.169.254:80 ]
	vpc_conf Profile-boot
}

teardown() {
	hpcs_teardown
}

# vpc_conf PROFILE [MORE...]: the config with auth = vpc and no api_key line at
# all; PROFILE "" for the instance's default profile.
vpc_conf() {
	local -a more=(KP.auth=vpc -KP.api_key -KP.iam_endpoint_url)
	[ -n "$1" ] && more+=("KP.trusted_profile_id=$1")
	shift
	hpcs_write_conf "${more[@]}" "$@"
	if grep -q '^api_key' "$HPCS_CONF"; then return 1; fi
}

@test "vpc: the CLI wraps and unwraps with the profile's token: no API-key IAM request, tokens from the metadata service" {
	emu_ctl POST reset-stats '{}' >/dev/null
	head -c 32 /dev/urandom >"$BATS_TEST_TMPDIR/plain"
	run hpcs wrap <"$BATS_TEST_TMPDIR/plain"
	[ "$status" -eq 0 ] || {
		echo "$output"
		false
	}
	echo "$output" >"$BATS_TEST_TMPDIR/ct"
	hpcs unwrap <"$BATS_TEST_TMPDIR/ct" | cmp - "$BATS_TEST_TMPDIR/plain"
	run emu_ctl GET stats
	echo "$output" | jq -c '{iam_requests, metadata_requests, by_op: {md_token: .by_op.md_token, md_iam_token: .by_op.md_iam_token, wrap: .by_op.wrap, unwrap: .by_op.unwrap}}'
	[ "$(jq .iam_requests <<<"$output")" -eq 0 ]
	[ "$(jq .by_op.md_token <<<"$output")" -ge 1 ]
	[ "$(jq .by_op.md_iam_token <<<"$output")" -ge 1 ]
	[ "$(jq .by_op.wrap <<<"$output")" -ge 1 ]
	[ "$(jq .by_op.unwrap <<<"$output")" -ge 1 ]
}

@test "vpc: hpcs-unlock loads every key (shared and static build), one token for all" {
	make_keys 4
	for bin in "$HPCS_BIN_DIR/hpcs-unlock" static; do
		if [ "$bin" = static ]; then
			static_bin
			bin=$STATIC
			hpcs_keyring_clean "$HPCS_TAG" >/dev/null
		fi
		emu_ctl POST reset-stats '{}' >/dev/null
		run "$bin" --config "$HPCS_CONF" --cmdline "$CMDLINE" --deadline 30
		[ "$status" -eq 0 ] || {
			echo "$bin: $output"
			false
		}
		keys_landed 4
		[ "$(emu_stat iam_requests)" -eq 0 ]
		[ "$(emu_stat by_op.md_token)" -eq 1 ]
		[ "$(emu_stat by_op.md_iam_token)" -eq 1 ]
		[ "$(emu_stat by_op.unwrap)" -eq 5 ]
	done
}

@test "vpc: the instance's default trusted profile when none is named; without one, the error says so" {
	vpc_conf ""
	run hpcs list
	[ "$status" -eq 0 ] || {
		echo "$output"
		false
	}
	emu_ctl POST default-profile '{"id": null}' >/dev/null
	run hpcs list
	[ "$status" -ne 0 ]
	echo "$output"
	[[ $output == *"cannot get an IAM token for the instance's default trusted profile from the metadata service at http://169.254.169.254"* ]]
	[[ $output == *"does this instance have a default trusted profile?"* ]]
}

@test "vpc: a profile not linked to the instance is named, with the link to make" {
	vpc_conf Profile-unlinked
	run hpcs list
	[ "$status" -ne 0 ]
	echo "$output"
	[[ $output == *"the trusted profile 'Profile-unlinked'"* ]]
	[[ $output == *"profile_not_linked"* ]]
	[[ $output == *"Compute resources"* ]]
	[ "$(emu_stat by_op.list)" -eq 0 ]
}

@test "vpc: a profile without a Key Protect role: one new token, then the role to grant is named" {
	vpc_conf Profile-norole
	emu_ctl POST reset-stats '{}' >/dev/null
	run hpcs list
	[ "$status" -ne 0 ]
	echo "$output"
	[[ $output == *"grant it a Key Protect service role on instance $EMU_INSTANCE"* ]]
	[ "$(emu_stat by_op.md_iam_token)" -eq 2 ]
}

@test "vpc: the metadata service off: hpcs-unlock keeps trying, gives up within its deadline and says to enable it" {
	make_keys 1
	emu_ctl POST metadata '{"enabled": false}' >/dev/null
	local t0
	t0=$(now_ms)
	run unlock --deadline 4
	local took=$(($(now_ms) - t0))
	echo "$output"
	echo "took ${took} ms"
	[ "$status" -ne 0 ]
	[ "$took" -lt 30000 ]
	[[ $output == *"cannot get an instance identity token from the metadata service at http://169.254.169.254"* ]]
	[[ $output == *"is the metadata service enabled on this instance?"* ]]
	emu_ctl POST metadata '{"enabled": true}' >/dev/null
	run unlock --deadline 30
	[ "$status" -eq 0 ]
	keys_landed 1
}

@test "vpc: refusals: another metadata endpoint, a profile named twice, an unknown auth" {
	local url
	for url in "http://127.0.0.1:$EMU_MD_PORT" "$EMU_URL" http://169.254.169.254:8080 \
		https://169.254.169.254 http://169.254.169.254/instance_identity; do
		vpc_conf Profile-boot "KP.metadata_endpoint_url=$url"
		run hpcs list
		[ "$status" -ne 0 ]
		[[ $output == *"[KP] metadata_endpoint_url: '$url' is not allowed"* || $output == *"[KP] metadata_endpoint_url: '$url'"* ]] || {
			echo "$url: $output"
			false
		}
	done
	vpc_conf Profile-boot KP.trusted_profile_crn=crn:v1:x
	run hpcs list
	[ "$status" -ne 0 ]
	[[ $output == *"trusted_profile_id and trusted_profile_crn name the same thing"* ]]
	hpcs_write_conf KP.auth=vcp
	run hpcs list
	[ "$status" -ne 0 ]
	[[ $output == *"[KP] auth must be api-key or vpc"* ]]
	[ "$(emu_stat metadata_requests)" -eq 0 ]
}

@test "vpc: no token shows in the output, not even with --debug" {
	make_keys 1
	run unlock --deadline 30 --debug
	[ "$status" -eq 0 ]
	local tok
	for tok in $(emu_ctl GET tokens | jq -r '.tokens[]'); do
		[[ $output != *"$tok"* ]] || {
			echo "a token in the output"
			false
		}
	done
}

@test "vpc: report: the auth finding, and a warning until only root reaches the metadata service (the shipped nftables rule)" {
	command -v nft >/dev/null || skip "nft (nftables) is not installed"
	run hpcs report --json --crypttab /dev/null --initramfs /dev/null
	echo "$output" | jq -c '.findings[] | select(.check == "auth" or .check == "metadata-access" or .check == "config") | [.status, .check, .message]'
	jq -e '.api_key == "vpc"' <<<"$output"
	jq -e '[.findings[] | select(.check == "auth" and .status == "ok")] | length == 1' <<<"$output"
	jq -e '[.findings[] | select(.check == "metadata-access" and .status == "warn")] | length == 1' <<<"$output"
	nft -f "$BATS_TEST_DIRNAME/../../../systemd/hpcs-metadata-root-only.nft"
	run hpcs report --json --crypttab /dev/null --initramfs /dev/null
	nft delete table inet hpcs_metadata
	echo "$output" | jq -c '.findings[] | select(.check == "metadata-access") | [.status, .message]'
	jq -e '[.findings[] | select(.check == "metadata-access" and .status == "ok")] | length == 1' <<<"$output"
	jq -e '[.findings[] | select(.check == "auth" and .status == "ok")] | length == 1' <<<"$output"
}

@test "vpc: an api_key left in the file is not read, and report says to remove it" {
	hpcs_write_conf KP.auth=vpc KP.trusted_profile_id=Profile-boot KP.api_key=not-the-key-anymore
	emu_ctl POST reset-stats '{}' >/dev/null
	run hpcs list
	[ "$status" -eq 0 ]
	[ "$(emu_stat iam_requests)" -eq 0 ]
	run hpcs report --json --crypttab /dev/null --initramfs /dev/null
	jq -e '[.findings[] | select(.check == "config" and .status == "warn" and (.message | contains("still holds an api_key")))] | length == 1' <<<"$output"
}
