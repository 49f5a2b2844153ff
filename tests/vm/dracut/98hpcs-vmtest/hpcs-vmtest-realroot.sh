#!/bin/sh
# VM test only (hpcs-vmtest-realroot.service): /run/hpcs-vmtest holds the
# unlocker, the config with its paths moved there, the CA, the keys and the
# blob; the real root finds them after the switch.
set -e
d=/run/hpcs-vmtest
mkdir -p "$d"
chmod 0700 "$d"
cp /usr/sbin/hpcs-unlock "$d/hpcs-unlock"
cp -a /var/lib/hpcs-for-luks "$d/keys"
cp /etc/hpcs-for-luks/ca.pem "$d/ca.pem"
sed -e "s|^key_dir = .*|key_dir = $d/keys|" -e "s|^ca_file = .*|ca_file = $d/ca.pem|" \
	-e "s|^tpm_blob = .*|tpm_blob = $d/keys/api-key-blob.txt|" \
	/etc/hpcs-for-luks.ini >"$d/hpcs-for-luks.ini"
chmod 0600 "$d/hpcs-for-luks.ini"
echo "HPCS-VMTEST realroot ready"
