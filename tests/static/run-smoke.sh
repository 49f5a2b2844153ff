#!/bin/bash
# Proves that the static dependency build works: builds tests/static/smoke.c
# with -static against cmake/StaticDeps.cmake's targets, checks that the result
# is statically linked, and runs it with an empty environment against a local
# TLS server (openssl s_server) whose certificate is issued by a throwaway CA.
#
# usage: run-smoke.sh [BUILD_DIR]   (default: a temporary directory)
# Environment: HPCS_DEPS_CACHE as for StaticDeps.cmake.
# Needs: cmake, a C compiler, openssl, file; the first run builds the static
# dependencies (about 1.5 minutes, root if build dependencies are missing).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
[ $# -le 1 ] || {
	echo "usage: $0 [BUILD_DIR]" >&2
	exit 2
}
for tool in cmake openssl file strip; do
	command -v "$tool" >/dev/null || {
		echo "run-smoke.sh: $tool is required" >&2
		exit 1
	}
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hpcs-static-smoke.XXXXXX")
build=${1:-$tmp/build}
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "run-smoke.sh: FAIL: $*" >&2
	exit 1
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

### build ####################################################################
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
t0=$(now)
cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
	>"$tmp/configure.log" 2>&1 || {
	cat "$tmp/configure.log" >&2
	fail "configure failed"
}
echo "configure (includes the static dependency build): $(elapsed "$t0") s"
t0=$(now)
cmake --build "$build" >"$tmp/build.log" 2>&1 || {
	cat "$tmp/build.log" >&2
	fail "build failed"
}
echo "build of the smoke program: $(elapsed "$t0") s"
echo "linker warnings (functions that need glibc's NSS/dlopen at run time):"
grep -o "warning: Using '[a-z_]*'.*" "$tmp/build.log" | sed 's/^/  /' || echo "  none"

bin=$build/smoke
file "$bin" | tee "$tmp/file.txt"
grep -q 'statically linked' "$tmp/file.txt" || fail "smoke is not statically linked"
strip -o "$tmp/smoke.stripped" "$bin"
echo "size: $(stat -c %s "$bin") bytes, stripped $(stat -c %s "$tmp/smoke.stripped") bytes"

### a TLS server with a throwaway CA ##########################################
# A second name for 127.0.0.1 from /etc/hosts checks that c-ares reads that file:
# libcurl 7.88 answers "localhost" itself without asking the resolver.
alt_name=$(awk '$1 == "127.0.0.1" { for (i = 2; i <= NF; i++) { if ($i ~ /^#/) break; if ($i != "localhost" && $i !~ /\.localhost$/) print $i } }' /etc/hosts | head -n 1)
san=DNS:localhost
if [ -n "$alt_name" ]; then san=$san,DNS:$alt_name; fi

cd "$tmp"
ossl() { openssl "$@" >>"$tmp/openssl.log" 2>&1 || {
	cat "$tmp/openssl.log" >&2
	fail "openssl $1 failed"
}; }
ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -days 1 -subj "/CN=hpcs static smoke CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout server.key -out server.csr -subj /CN=localhost
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >server.ext
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
	-extfile server.ext -out server.pem

port=
for _ in 1 2 3 4 5; do
	try=$((20000 + RANDOM % 20000))
	openssl s_server -www -accept "127.0.0.1:$try" -cert server.pem -key server.key \
		>server.log 2>&1 </dev/null &
	server_pid=$!
	for _ in $(seq 50); do
		if grep -q ACCEPT server.log; then break; fi
		if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	if kill -0 "$server_pid" 2>/dev/null && grep -q ACCEPT server.log; then
		port=$try
		break
	fi
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
done
[ -n "$port" ] || {
	cat server.log >&2
	fail "openssl s_server did not start"
}

### run ######################################################################
urls=("https://localhost:$port/")
if [ -n "$alt_name" ]; then
	urls+=("https://$alt_name:$port/")
else
	echo "SKIP: /etc/hosts has no name for 127.0.0.1 besides localhost;" \
		"the c-ares /etc/hosts lookup is not exercised"
fi
status=0
env -i LD_LIBRARY_PATH= "$bin" "$tmp/ca.pem" "${urls[@]}" | tee run.log || status=$?
[ "$status" -eq 0 ] || fail "smoke program exited with $status"

# c-ares must have taken its DNS servers from /etc/resolv.conf.
expected=$(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf 2>/dev/null | head -n 3)
if [ -z "$expected" ]; then
	echo "SKIP: /etc/resolv.conf names no nameserver; c-ares' reading of it is not checked"
else
	got=$(sed -n 's/^dns-servers: //p' run.log)
	for ns in $expected; do
		case " $got " in
			*" $ns "*) ;;
			*) fail "c-ares DNS servers '$got' lack $ns from /etc/resolv.conf" ;;
		esac
	done
	echo "ok: c-ares uses the DNS servers of /etc/resolv.conf ($got)"
fi
echo "run-smoke.sh: PASSED"
