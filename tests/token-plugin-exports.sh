#!/bin/bash
# The token plugin exports exactly libcryptsetup's token ABI under
# CRYPTSETUP_TOKEN_1.0, and needs no library but libc and libcryptsetup (it is
# loaded into every libcryptsetup consumer). Run by CTest.
# Usage: tests/token-plugin-exports.sh PATH/libcryptsetup-token-hpcs.so
set -eu
so=${1:?usage: $0 PLUGIN.so}

want='A CRYPTSETUP_TOKEN_1.0
T cryptsetup_token_buffer_free@@CRYPTSETUP_TOKEN_1.0
T cryptsetup_token_dump@@CRYPTSETUP_TOKEN_1.0
T cryptsetup_token_open@@CRYPTSETUP_TOKEN_1.0
T cryptsetup_token_validate@@CRYPTSETUP_TOKEN_1.0
T cryptsetup_token_version@@CRYPTSETUP_TOKEN_1.0'
got=$(nm -D --defined-only "$so" | awk '{print $2, $3}' | sort)
if [ "$got" != "$want" ]; then
	echo "token-plugin-exports: $so exports:" >&2
	echo "$got" >&2
	echo "token-plugin-exports: expected exactly:" >&2
	echo "$want" >&2
	exit 1
fi

needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort)
if [ "$needed" != "$(printf 'libc.so.6\nlibcryptsetup.so.12')" ]; then
	echo "token-plugin-exports: $so needs more than libc and libcryptsetup:" >&2
	echo "$needed" >&2
	exit 1
fi
echo "token-plugin-exports: $so: the 5 symbols of CRYPTSETUP_TOKEN_1.0; needs ${needed//$'\n'/ }"
