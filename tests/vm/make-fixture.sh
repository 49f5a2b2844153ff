#!/bin/bash
# The secrets and KMS state shared by all VM boots, made once and cached so
# that the initramfs built from them can be cached too:
#   emu/            kp-emulator state (CA, API key, the CRK); restart it there
#   secret/         the root passphrase (printable), the 32-byte logon key, and
#                   data.key: the passphrase (printable) of a second LUKS2
#                   volume that the initramfs opens (make-images.sh data.img)
#   keys/           key_dir: user/hpcs-vm:root, user/hpcs-vm:data and
#                   logon/hpcs-vm:logon, wrapped
#   tpm/            swtpm TPM 1.2 state (owned), tcsd's system.data, and
#                   api-key-blob.txt: the API key sealed to PCR 15 (which
#                   neither SeaBIOS nor the kernel extends: zero in the guest)
#   tpm2/           swtpm TPM 2.0 state, and api-key-blob.txt: the API key
#                   sealed to the default PCRs 7 and 8 at the host swtpm's
#                   values (zero); the guest's firmware extends 7 (SeaBIOS)
#                   and not 8 (no GRUB): unsealing it in the guest must fail,
#                   naming PCR 7 only. boot.bats seals again against the
#                   guest's own values.
#   crk, env        the CRK id; EMU_API_KEY, EMU_INSTANCE and EMU_PROFILE (a
#                   trusted profile linked to the instance, with a Key
#                   Protect role: auth = vpc gets its IAM token)
#   plain.ini, tpm.ini, tpm2.ini, vpc.ini, tcsd.conf   what the initramfs
#                   images are built from (the KMS endpoints come from
#                   rd.hpcs.endpoint/iam/resolve); vpc.ini has auth = vpc and
#                   no api_key line at all
# Usage: make-fixture.sh HFL_CLI      (the admin CLI, to wrap and seal)
#   prints the fixture directory
set -eu -o pipefail
. "$(dirname "$0")/lib.sh"
umask 077

[[ $# -eq 1 && -x $1 ]] || {
	echo "usage: $0 HFL_CLI" >&2
	exit 2
}
hfl=$1
emu_bin=$VM_REPO/tests/emulator/kp-emulator
tpm_env=$VM_REPO/tests/tpm/tpm-env

key=$(vm_hash "$0" "$emu_bin" "$tpm_env")
dir=$VM_CACHE/fixture/$key
vm_cached "$dir" && exit 0
mkdir -p "$VM_CACHE/fixture"
vm_prune "$VM_CACHE/fixture"
tmp=$(mktemp -d "$VM_CACHE/fixture/.tmp.XXXXXX")
tpmd='' tpm2d=''
cleanup() {
	emulator_stop
	if [[ $tpm2d ]]; then "$tpm_env" stop "$tpm2d" || true; fi
	if [[ $tpmd ]]; then "$tpm_env" stop "$tpmd" || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=../bats/helpers.bash
. "$VM_REPO/tests/bats/helpers.bash"
EMU_API_KEY=vm-api-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export EMU_API_KEY
EMU_PROFILE=Profile-6f1c2a4e-hpcs-vm
# The profile is kept in the emulator's state, for every later start.
emulator_start --state-dir "$tmp/emu" --trusted-profile "$EMU_PROFILE"
# emu_create_key reuses the token in EMU_TOKEN instead of asking IAM each time.
export EMU_TOKEN
EMU_TOKEN=$(emu_token "$EMU_API_KEY")
crk=$(emu_create_key hpcs-vm-root-key false)
echo "$crk" >"$tmp/crk"
printf 'EMU_API_KEY=%s\nEMU_INSTANCE=%s\nEMU_PROFILE=%s\n' "$EMU_API_KEY" "$EMU_INSTANCE" \
	"$EMU_PROFILE" >"$tmp/env"

mkdir -p "$tmp/secret" "$tmp/keys/user" "$tmp/keys/logon" # 0700: umask
head -c 30 /dev/urandom | base64 | tr -d '\n/+=' >"$tmp/secret/passphrase"
head -c 32 /dev/urandom >"$tmp/secret/logon.key"
head -c 30 /dev/urandom | base64 | tr -d '\n/+=' >"$tmp/secret/data.key"

conf=$tmp/host.ini
cat >"$conf" <<EOC
[KP]
region = us-south
endpoint_url = $EMU_URL
iam_endpoint_url = $EMU_URL
service_instance_id = $EMU_INSTANCE
api_key = $EMU_API_KEY
default_crk_uuid = $crk
ca_file = $EMU_CA

[HFL]
key_dir = $tmp/keys
EOC
chmod 0600 "$conf"
"$hfl" --config "$conf" wrap --uuid "$crk" <"$tmp/secret/passphrase" >"$tmp/keys/user/hpcs-vm:root"
"$hfl" --config "$conf" wrap --uuid "$crk" <"$tmp/secret/logon.key" >"$tmp/keys/logon/hpcs-vm:logon"
"$hfl" --config "$conf" wrap --uuid "$crk" <"$tmp/secret/data.key" >"$tmp/keys/user/hpcs-vm:data"
# What the initramfs will do, checked on the host first.
"$hfl" --config "$conf" unwrap --uuid "$crk" <"$tmp/keys/user/hpcs-vm:root" |
	cmp - "$tmp/secret/passphrase" || vm_die "wrap/unwrap round trip failed"

# The TPM: owned, the API key sealed to PCR 15.
tpmd=$(mktemp -d /tmp/hpcs-vm-tpm.XXXXXX)
rmdir "$tpmd"
tpm_vars=$("$tpm_env" start "$tpmd") || vm_die "the TPM 1.2 environment did not start"
eval "$tpm_vars"
mkdir -p "$tmp/tpm"
printf '%s' "$EMU_API_KEY" |
	"$hfl" --config "$conf" seal-api-key --tpm1 --pcr 15 --output "$tmp/tpm/api-key-blob.txt"
"$tpm_env" stop --keep "$tpmd"
cp -a "$tpmd/swtpm" "$tmp/tpm/state"
cp "$tpmd/tcsd/system.data" "$tmp/tpm/system.data" 2>/dev/null || true
unset TSS_TCSD_HOSTNAME TSS_TCSD_PORT

# The TPM 2.0, sealed at the host's PCR values (see above). The swtpm state
# keeps the owner seed, so the guest derives the same primary key.
tpm2d=$(mktemp -d /tmp/hpcs-vm-tpm2.XXXXXX)
tpm_vars=$("$tpm_env" start --tpm2 "$tpm2d") || vm_die "the TPM 2.0 environment did not start"
eval "$tpm_vars"
mkdir -p "$tmp/tpm2"
printf '%s' "$EMU_API_KEY" |
	"$hfl" --config "$conf" seal-api-key --tpm2 --output "$tmp/tpm2/api-key-blob.txt"
"$tpm_env" stop --keep "$tpm2d"
cp -a "$tpm2d/swtpm" "$tmp/tpm2/state"
rm -rf "$tpm2d"
tpm2d=''
unset HPCS_TPM2_TCTI TPM2TOOLS_TCTI HPCS_TPM2_DIR

# The configs for the initramfs, with the paths the fixture will have.
rm -f "$conf"
cat >"$tmp/plain.ini" <<EOC
[KP]
region = us-south
endpoint_url = https://kms.test
iam_endpoint_url = https://iam.test
service_instance_id = $EMU_INSTANCE
api_key = $EMU_API_KEY
default_crk_uuid = $crk
ca_file = $dir/emu/ca.pem

[HFL]
key_dir = $dir/keys
initramfs_plain_api_key = yes
EOC
sed -e 's/^api_key = .*/api_key = TPM/' -e '/^initramfs_plain_api_key/d' "$tmp/plain.ini" >"$tmp/tpm.ini"
echo "tpm_blob = $dir/tpm/api-key-blob.txt" >>"$tmp/tpm.ini"
sed '$d' "$tmp/tpm.ini" >"$tmp/tpm2.ini"
echo "tpm_blob = $dir/tpm2/api-key-blob.txt" >>"$tmp/tpm2.ini"
# auth = vpc: the token from the metadata service (169.254.169.254, the
# default), for the trusted profile; nothing secret in the file.
sed -e 's/^api_key = .*/auth = vpc\ntrusted_profile_id = '"$EMU_PROFILE"'/' \
	-e '/^initramfs_plain_api_key/d' "$tmp/plain.ini" >"$tmp/vpc.ini"
printf 'port = 30003\nsystem_ps_file = %s/tpm/system.data\n' "$dir" >"$tmp/tcsd.conf"

emulator_stop
touch "$tmp/ready"
mv "$tmp" "$dir"
trap - EXIT
rm -rf "$tpmd"
echo "$dir"
