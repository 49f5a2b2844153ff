#!/bin/bash
# Build the Debian package (dpkg-buildpackage -us -uc -b, then lintian) and
# the binary RPM (rpmbuild, from `git archive`-style sources) from a copy of
# this tree's files, cached by their contents.
# Usage: make-packages.sh       prints the directory holding
#   *.deb, *.rpm, lintian.txt, deb.log, rpm.log, seconds (build times)
set -eu -o pipefail
. "$(dirname "$0")/lib.sh"

version=$(sed -n 's/^project(hpcs-for-luks VERSION \([0-9.]*\).*/\1/p' "$VM_REPO/CMakeLists.txt")
[[ $version ]] || vm_die "no version in CMakeLists.txt"
# The tree's files (tracked, and new ones not ignored), as git sees them.
mapfile -d '' files < <(git -C "$VM_REPO" ls-files -z -co --exclude-standard)
tree_hash=$(cd "$VM_REPO" && for f in "${files[@]}"; do
	[[ -f $f ]] && printf '%s %s\n' "$(stat -c %a "$f")" "$(sha256sum "$f")"
done | sha256sum | cut -c1-16)
key=$(vm_hash "$0" "$tree_hash")
dir=$VM_CACHE/packages/$key
vm_cached "$dir" && exit 0
mkdir -p "$VM_CACHE/packages"
tmp=$(mktemp -d "$VM_CACHE/packages/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

src=$tmp/src/hpcs-for-luks-$version
mkdir -p "$src"
(cd "$VM_REPO" && for f in "${files[@]}"; do [[ -f $f ]] && printf '%s\0' "$f"; done) |
	tar -C "$VM_REPO" --null -T - -cf - | tar -C "$src" -xf -
out=$tmp/out
mkdir -p "$out"

vm_log "dpkg-buildpackage: hpcs-for-luks $version"
start=$SECONDS
(cd "$src" && dpkg-buildpackage -us -uc -b -j2) >"$out/deb.log" 2>&1 || {
	tail -n 40 "$out/deb.log" >&2
	vm_die "dpkg-buildpackage failed (log above)"
}
deb_s=$((SECONDS - start))
vm_log "dpkg-buildpackage: done in $deb_s s"

start=$SECONDS
# lintian exits 2 on errors; the caller judges its output.
lintian --display-info "$tmp/src"/hpcs-for-luks_*.changes >"$out/lintian.txt" 2>&1 || true
lint_s=$((SECONDS - start))
mv "$tmp/src"/hpcs-for-luks_*.deb "$out/"

vm_log "rpmbuild: hpcs-for-luks $version"
start=$SECONDS
rm -rf "$src/.git" "$src/obj-"* "$src/debian/hpcs-for-luks" "$src/debian/.debhelper"
top=$tmp/rpm
mkdir -p "$top/SOURCES"
tar -C "$tmp/src" -czf "$top/SOURCES/hpcs-for-luks-$version.tar.gz" "hpcs-for-luks-$version"
# --nodeps: Debian's rpm database is empty, the BuildRequires are met by
# Debian packages (tests/install-deps.sh).
rpmbuild -bb --nodeps --define "_topdir $top" \
	--define "hpcs_static_deps_dir ${HPCS_DEPS_CACHE:-$HOME/.cache/hpcs-for-luks/static-deps}" \
	"$src/rpm/hpcs-for-luks.spec" >"$out/rpm.log" 2>&1 || {
	tail -n 40 "$out/rpm.log" >&2
	vm_die "rpmbuild failed (log above)"
}
rpm_s=$((SECONDS - start))
find "$top/RPMS" -name 'hpcs-for-luks-*.rpm' ! -name '*debug*' -exec mv {} "$out/" \;
vm_log "rpmbuild: done in $rpm_s s"
printf 'deb=%s lintian=%s rpm=%s\n' "$deb_s" "$lint_s" "$rpm_s" >"$out/seconds"

touch "$out/ready"
vm_prune "$VM_CACHE/packages"
mv "$out" "$dir"
echo "$dir"
