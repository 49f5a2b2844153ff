#!/bin/bash
# Builds the static archives that the statically linked hpcs-unlock needs and
# Debian 12 does not ship, into PREFIX/{include,lib}:
#   libcurl.a  curl 7.88.1 (Debian source): mbedTLS, c-ares, nghttp2, HTTP(S) only
#   libcjson.a cJSON (Debian source)
#   libtspi.a  trousers (upstream .orig tarball via apt; Debian's patch tarball 404s)
#   libtspi-openssl-shim.a  cmake/tspi-openssl-shim.c: the few OpenSSL functions
#              libtspi needs (SHA-1, HMAC-SHA1, MGF1), over mbedTLS, so that
#              OpenSSL's libcrypto.a is not linked (see the file's header)
#   libtss2-{esys,sys,mu,rc,tcti-device,tcti-swtpm,tcti-mssim}.a  tpm2-tss
#              (Debian source, see below): ESAPI with its mbedTLS crypto back
#              end, the TCTIs linked directly (no tctildr dlopen), no logging
# mbedTLS, c-ares, nghttp2 and keyutils come as Debian's own .a files;
# cmake/StaticDeps.cmake links them from /usr/lib.
#
# Usage: build-static-deps.sh PREFIX
#
# Cached: PREFIX/.stamp holds a key made of the hashes of this script and the
# shim, the versions of the -dev packages built against and the compiler; when
# it matches, the script exits at once. Otherwise it builds in a temporary
# directory, stages into PREFIX.tmp.PID and renames that to PREFIX, so an
# interrupted build never leaves a prefix that looks finished. The build log
# is PREFIX.log.
#
# Needs root only when something is missing: it then enables deb-src in
# /etc/apt/sources.list.d/debian.sources and installs build dependencies.
#
# Environment: CC (default cc).
set -eu

usage() {
	echo "usage: $0 PREFIX" >&2
	exit 2
}
[ $# -eq 1 ] || usage
[ -n "$1" ] || usage

prefix=$1
case $prefix in
	/*) ;;
	*) prefix=$PWD/$prefix ;;
esac
prefix=${prefix%/}

script=$(readlink -f "$0")
shim_src=$(dirname "$script")/tspi-openssl-shim.c
cc=${CC:-cc}
jobs=2 # the build machines have 2 cores, shared

# Libraries the sources are compiled against, whose .a files the final link uses;
# libssl-dev for its headers only (trousers' configure and sources, the shim).
dev_pkgs=(libmbedtls-dev libkeyutils-dev libc-ares-dev libnghttp2-dev libssl-dev)
# Tools the build needs (dpkg-dev unpacks source packages; autoconf-archive and
# libltdl-dev hold m4 macros that tpm2-tss's bootstrap needs).
tool_pkgs=(autoconf automake libtool make pkgconf dpkg-dev autoconf-archive libltdl-dev)

cache_key() {
	sha256sum <"$script" | cut -d' ' -f1
	sha256sum <"$shim_src" | cut -d' ' -f1
	dpkg-query -W -f '${Package} ${Version}\n' "${dev_pkgs[@]}" 2>/dev/null ||
		echo "missing -dev packages"
	"$cc" --version 2>/dev/null | head -n 1
	uname -m
}
key=$(cache_key | sha256sum | cut -d' ' -f1)
stamp=$prefix/.stamp

is_done() {
	[ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$key" ]
}
# Fast path: no lock, no apt, no compiler run beyond --version.
if is_done; then
	exit 0
fi

mkdir -p "$(dirname "$prefix")"
exec 9>"$prefix.lock"
if ! flock -n 9; then
	echo "hpcs static deps: waiting for another build of $prefix" >&2
	flock 9
fi
if is_done; then # another process finished it while we waited
	exit 0
fi

log=$prefix.log
: >"$log"
stage=$prefix.tmp.$$
work=
current_step=

finish() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "hpcs static deps: FAILED at step: ${current_step:-setup} (exit $rc)" >&2
		echo "---- last 40 lines of $log ----" >&2
		tail -n 40 "$log" >&2 || true
		echo "---- end of log ----" >&2
	fi
	if [ -n "$work" ]; then rm -rf "$work"; fi
	rm -rf "$stage"
	if [ "$rc" -ne 0 ]; then exit 1; fi
}
trap finish EXIT
trap 'exit 1' INT TERM HUP # so that finish runs and removes the partial stage

step() {
	current_step=$1
	printf 'hpcs static deps: %s\n' "$1"
	printf '\n==== %s (%s)\n' "$1" "$(date -u +%T)" >>"$log"
}

# Runs a command with its output going to the log.
run() {
	printf '+ %s\n' "$*" >>"$log"
	"$@" >>"$log" 2>&1
}

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "hpcs static deps: $1; run this script once as root, or do it yourself:" >&2
		echo "  $2" >&2
		exit 1
	fi
}

is_installed() {
	dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

step "checking apt sources (deb-src)"
sources=/etc/apt/sources.list.d/debian.sources
have_deb_src() {
	grep -Eqs '^Types:.*[[:space:]]deb-src([[:space:]]|$)' "$sources" /etc/apt/sources.list.d/*.sources ||
		grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}
if ! have_deb_src; then
	need_root "apt has no deb-src entry" \
		"sed -i 's/^Types: deb\$/Types: deb deb-src/' $sources && apt-get update"
	[ -f "$sources" ] || {
		echo "hpcs static deps: $sources not found; add a deb-src entry by hand" >&2
		exit 1
	}
	run sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
	have_deb_src || {
		echo "hpcs static deps: could not add deb-src to $sources" >&2
		exit 1
	}
	run apt-get -o DPkg::Lock::Timeout=600 update
elif ! compgen -G '/var/lib/apt/lists/*_Sources*' >/dev/null; then
	need_root "apt has deb-src entries but no source package lists" "apt-get update"
	run apt-get -o DPkg::Lock::Timeout=600 update
fi

step "checking build dependencies"
missing=()
for p in "${dev_pkgs[@]}" "${tool_pkgs[@]}"; do
	is_installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	need_root "missing packages: ${missing[*]}" \
		"apt-get install -y --no-install-recommends ${missing[*]}"
	run env DEBIAN_FRONTEND=noninteractive \
		apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
fi
# The cache key read the -dev versions before they were installed; read again.
key=$(cache_key | sha256sum | cut -d' ' -f1)

rm -rf "$prefix".tmp.* "$prefix".old.* # leftovers of interrupted runs
work=$(mktemp -d "${TMPDIR:-/tmp}/hpcs-static-deps.XXXXXX")
mkdir -p "$stage/include" "$stage/lib"

# Compiled into every archive: hardened, position independent (works for
# -static and -static-pie), sections split so the final link can --gc-sections.
# -Os: nothing built here is on a hot path (a few HTTPS requests and TPM
# commands; the TLS crypto is Debian's -O2 mbedTLS), and the static
# hpcs-unlock with TPM support must stay under 2.5 MB: -Os saves ~80 KB.
export CC=$cc
cflags=(-Os -g0 -fPIE -fstack-protector-strong -D_FORTIFY_SOURCE=2
	-ffunction-sections -fdata-sections)
export CFLAGS="${cflags[*]}"
# libtspi and the shim also without unwind tables (~25 KB of .eh_frame): pure
# C that never calls back into C++ (hpcs sets no TSS callbacks), so no C++
# exception ever unwinds through their frames. Not for curl: its write and
# header callbacks are C++.
tspi_cflags=("${cflags[@]}" -fno-asynchronous-unwind-tables -fno-unwind-tables)

# Prints "PACKAGE VERSION" of the source package unpacked (or fetched) in $work.
dsc_version() {
	local f
	for f in "$work/$1"_*.dsc; do
		f=${f##*/}
		f=${f%.dsc}
		echo "$1 ${f#*_}"
		return
	done
	echo "$1 unknown"
}

### cJSON ####################################################################
step "fetching cjson source (apt-get source)"
(cd "$work" && run apt-get source --only-source cjson)
cjson_src=$(find "$work" -maxdepth 1 -type d -name 'cjson-*' | head -n 1)
[ -n "$cjson_src" ] || {
	echo "cjson source tree not found" >>"$log"
	exit 1
}

step "building libcjson.a"
run "$cc" "${cflags[@]}" -std=c89 -c "$cjson_src/cJSON.c" -o "$work/cJSON.o"
run ar rcs "$stage/lib/libcjson.a" "$work/cJSON.o"
mkdir -p "$stage/include/cjson"
cp "$cjson_src/cJSON.h" "$stage/include/cjson/"

### curl #####################################################################
step "fetching curl source (apt-get source)"
(cd "$work" && run apt-get source --only-source curl)
curl_src=$work/curl-7.88.1
[ -d "$curl_src" ] || {
	echo "expected curl 7.88.1 (the configure line is written for it); got:" >>"$log"
	ls "$work" >>"$log"
	exit 1
}

step "configuring curl (mbedTLS, c-ares, nghttp2; HTTP only)"
(cd "$curl_src" && run ./configure --prefix=/usr \
	--disable-shared --enable-static --with-pic \
	--with-mbedtls --without-openssl --without-gnutls --without-wolfssl \
	--enable-ares --with-nghttp2 \
	--with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --without-ca-path \
	--disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
	--disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
	--disable-gopher --disable-mqtt --disable-ftp --disable-file --disable-manual \
	--disable-ntlm --disable-alt-svc --disable-cookies --disable-netrc \
	--without-libpsl --without-libidn2 --without-brotli --without-zstd \
	--without-librtmp --without-libssh2 --without-libssh --without-zlib \
	--without-gssapi)
# configure silently drops a feature whose library it cannot use; insist.
grep -q '^#define USE_ARES 1' "$curl_src/lib/curl_config.h" || {
	echo "curl configure did not enable c-ares" >>"$log"
	exit 1
}
grep -q '^#define USE_NGHTTP2 1' "$curl_src/lib/curl_config.h" || {
	echo "curl configure did not enable nghttp2" >>"$log"
	exit 1
}
grep -q '^#define USE_MBEDTLS 1' "$curl_src/lib/curl_config.h" || {
	echo "curl configure did not enable mbedTLS" >>"$log"
	exit 1
}

# curl's mbedTLS backend shares one entropy context between connections only
# when it is built with POSIX threads, which configure enables only for the
# threaded resolver (we use c-ares). Without it every connection sets up an
# entropy context of its own, and Debian's mbedTLS polls HAVEGE for it: about
# 0.3 ms of CPU per connection here, paid one connection after another when
# all unwraps start at once. Only the mbedTLS backend and curl_threads.c read
# these two macros once USE_ARES has chosen the resolver.
cat >>"$curl_src/lib/curl_config.h" <<'DEFS'
/* hpcs static deps: one mbedTLS entropy context per process (vtls/mbedtls.c) */
#define HAVE_PTHREAD_H 1
#define USE_THREADS_POSIX 1
DEFS

step "building libcurl.a"
run make -C "$curl_src/lib" -j"$jobs"
nm "$curl_src/lib/.libs/libcurl.a" 2>/dev/null | grep -q ' T Curl_mbedtlsthreadlock_thread_setup$' || {
	echo "libcurl.a was built without the mbedTLS thread lock (USE_THREADS_POSIX)" >>"$log"
	exit 1
}
cp "$curl_src/lib/.libs/libcurl.a" "$stage/lib/"
mkdir -p "$stage/include/curl"
cp "$curl_src"/include/curl/*.h "$stage/include/curl/"

### trousers (libtspi) #######################################################
step "fetching trousers upstream tarball (apt-get source --download-only)"
# The Debian patch tarball is missing from the mirror, so apt-get fails after
# fetching the rest; take the .orig tarball and check it against the hash apt
# published for it.
(cd "$work" && apt-get source --print-uris --only-source trousers >"$work/trousers.uris" 2>>"$log")
cat "$work/trousers.uris" >>"$log"
orig_line=$(grep -E "^'[^']*' trousers_[^ ]*\.orig\.tar\.[a-z0-9]+ " "$work/trousers.uris" | head -n 1)
[ -n "$orig_line" ] || {
	echo "apt-get source --print-uris lists no trousers .orig tarball" >>"$log"
	exit 1
}
orig_file=$(echo "$orig_line" | cut -d' ' -f2)
orig_hash=$(echo "$orig_line" | cut -d' ' -f4)
(cd "$work" && run apt-get source --download-only --only-source trousers) ||
	echo "(apt-get failed; expected for the missing Debian tarball)" >>"$log"
[ -f "$work/$orig_file" ] || {
	echo "$orig_file was not downloaded" >>"$log"
	exit 1
}
case $orig_hash in
	SHA256:*)
		echo "${orig_hash#SHA256:}  $work/$orig_file" | run sha256sum -c -
		;;
	*)
		echo "no SHA256 published for $orig_file: $orig_hash" >>"$log"
		exit 1
		;;
esac
mkdir "$work/trousers"
run tar -xf "$work/$orig_file" -C "$work/trousers"
tss_src=$(dirname "$(find "$work/trousers" -maxdepth 2 -name bootstrap.sh | head -n 1)")
[ -f "$tss_src/bootstrap.sh" ] || {
	echo "trousers tarball has no bootstrap.sh" >>"$log"
	exit 1
}
trousers_version=${orig_file#trousers_}
trousers_version=${trousers_version%.orig.tar.*}

step "configuring trousers"
(cd "$tss_src" && run sh bootstrap.sh)
(cd "$tss_src" && CFLAGS="${tspi_cflags[*]}" run ./configure --prefix=/usr \
	--sysconfdir=/etc --localstatedir=/var \
	--enable-static --disable-shared --with-pic --with-gui=none)

step "building libtspi.a"
# libtspi and its helper library libtrousers only; tcsd is not needed.
run make -C "$tss_src/src/trspi" -j"$jobs"
run make -C "$tss_src/src/tspi" -j"$jobs"
cp "$tss_src/src/tspi/.libs/libtspi.a" "$stage/lib/"
mkdir -p "$stage/include/tss" "$stage/include/trousers"
cp "$tss_src"/src/include/tss/*.h "$stage/include/tss/"
cp "$tss_src"/src/include/trousers/*.h "$stage/include/trousers/"

step "building libtspi-openssl-shim.a"
# Against OpenSSL's headers (prototype check) and mbedTLS 2.28's; the final
# link must use --gc-sections, see the shim's header comment.
run "$cc" "${tspi_cflags[@]}" -std=c99 -Wall -Wextra -c "$shim_src" \
	-o "$work/tspi-openssl-shim.o"
run ar rcs "$stage/lib/libtspi-openssl-shim.a" "$work/tspi-openssl-shim.o"

### tpm2-tss (ESAPI) #########################################################
# Bookworm's tpm2-tss 3.2.1 source cannot be had: both of its tarballs 404 on
# the Debian mirror (its .dsc downloads). Trixie's tpm2-tss 4.1.3 source
# package downloads whole, so it is fetched through a private apt source list
# (its own lists directory; the system's sources are not touched). The ESAPI
# calls hpcs uses are the same in 3.2 and 4.1: the shared build links
# Debian 12's libtss2 3.2.1, the static one this 4.1.3.
step "fetching tpm2-tss source (apt-get source, trixie)"
tss2_apt=$work/tss2-apt
mkdir -p "$tss2_apt/parts" "$tss2_apt/lists/partial" "$tss2_apt/cache/archives/partial"
cat >"$tss2_apt/parts/trixie-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
tss2_apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$tss2_apt/parts"
	-o "Dir::State::Lists=$tss2_apt/lists" -o "Dir::Cache=$tss2_apt/cache"
	-o APT::Sandbox::User=root)
run apt-get "${tss2_apt_opts[@]}" update
(cd "$work" && run apt-get "${tss2_apt_opts[@]}" source --only-source tpm2-tss)
tss2_src=$(find "$work" -maxdepth 1 -type d -name 'tpm2-tss-*' | head -n 1)
case ${tss2_src##*/} in
	tpm2-tss-4.1.*) ;;
	*)
		echo "expected tpm2-tss 4.1.x (the configure line is written for it); got '$tss2_src'" >>"$log"
		exit 1
		;;
esac

step "configuring tpm2-tss (ESAPI, mbedTLS, device/swtpm/mssim TCTIs, no dlopen)"
(cd "$tss2_src" && run ./bootstrap)
# --with-maxloglevel=none: the library never writes to stderr (hpcs reports
# TSS errors itself) and is smaller. --enable-nodl: tctildr (which
# Esys_Initialize references) links the TCTIs instead of dlopen()ing them.
(cd "$tss2_src" && CFLAGS="${tspi_cflags[*]}" run ./configure --prefix=/usr \
	--disable-shared --enable-static --with-pic \
	--with-crypto=mbed --enable-nodl --with-maxloglevel=none \
	--disable-fapi --disable-policy --disable-defaultflags --disable-doxygen-doc \
	--disable-tcti-pcap --disable-tcti-libtpms --disable-tcti-cmd \
	--disable-tcti-spi-helper --disable-tcti-spi-ltt2go --disable-tcti-spidev \
	--disable-tcti-spi-ftdi --disable-tcti-i2c-helper --disable-tcti-i2c-ftdi)

step "building libtss2-*.a"
tss2_libs=(tss2-mu/libtss2-mu tss2-sys/libtss2-sys tss2-esys/libtss2-esys tss2-rc/libtss2-rc
	tss2-tcti/libtss2-tcti-device tss2-tcti/libtss2-tcti-swtpm tss2-tcti/libtss2-tcti-mssim)
tss2_targets=()
for l in "${tss2_libs[@]}"; do tss2_targets+=("src/$l.la"); done
run make -C "$tss2_src" -j"$jobs" "${tss2_targets[@]}"
for l in "${tss2_libs[@]}"; do
	cp "$tss2_src/src/${l%/*}/.libs/${l#*/}.a" "$stage/lib/"
done
# Every TCTI defines Tss2_Tcti_Info, the entry point tctildr looks up after a
# dlopen(); linked statically side by side they collide. Nothing here calls
# it (tctildr without dlopen calls the Tss2_Tcti_*_Init functions), so make
# it local to each archive.
for t in device swtpm mssim; do
	run objcopy --localize-symbol=Tss2_Tcti_Info "$stage/lib/libtss2-tcti-$t.a"
done
mkdir -p "$stage/include/tss2"
cp "$tss2_src"/include/tss2/*.h "$stage/include/tss2/"

### install ##################################################################
step "installing into $prefix"
{
	echo "$key"
	echo "# written by $script on $(date -u +%FT%TZ)"
	echo "# key inputs:"
	cache_key | sed 's/^/#   /'
	echo "# sources:"
	echo "#   $(dsc_version cjson)"
	echo "#   $(dsc_version curl)"
	echo "#   trousers $trousers_version (upstream .orig tarball)"
	echo "#   $(dsc_version tpm2-tss) (trixie)"
} >"$stage/.stamp"
if [ -e "$prefix" ]; then
	mv -T "$prefix" "$prefix.old.$$"
fi
mv -T "$stage" "$prefix"
rm -rf "$prefix.old.$$"
current_step=
printf 'hpcs static deps: done, %s\n' "$prefix"
