#!/usr/bin/env bash
# Builds the .deb and checks it as a user would receive it: its contents and Depends:
# with dpkg-deb, lintian without errors, and the packaged binary run after extracting.
#   bash contrib/debian/check-deb.sh
# Prints one line per check and "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

source contrib/bench/ensure-packages.sh
source contrib/package-checks.sh
check_prefix=check-deb
ensure_packages check-deb.sh lintian dpkg-dev systemd binutils

work=$(mktemp -d /tmp/hookgate-deb-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
deb=$(bash contrib/debian/build-deb.sh --out "$work" | tail -n 1)
version=$(hookgate_version)
architecture=$(dpkg --print-architecture)

check "the package is hookgate $version for $architecture" test \
    "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) $(dpkg-deb -f "$deb" Architecture)" = \
    "hookgate $version $architecture"
check "the file is named for its fields" test "$(basename "$deb")" = "hookgate_${version}_${architecture}.deb"
dpkg-deb -c "$deb" > "$work/contents"
for path in ./usr/bin/hookgate ./usr/lib/systemd/system/hookgate.service ./usr/lib/systemd/system/hookgate.socket \
    ./usr/share/doc/hookgate/PROTOCOL.md ./usr/share/doc/hookgate/README.md ./usr/share/doc/hookgate/copyright \
    ./usr/share/doc/hookgate/changelog.gz ./usr/share/doc/hookgate/schemas/emit_event.request.json; do
    check "holds $path" grep -q " $path\$" "$work/contents"
done
check "everything owned by root" bash -c "! awk '{print \$2}' '$work/contents' | grep -v '^root/root\$'"

depends=$(dpkg-deb -f "$deb" Depends)
echo "check-deb: Depends: $depends"
for library in libc6 libcurl4 libsqlite3-0 libsystemd0; do
    check "Depends names $library" grep -q "\\b$library\\b" <<< "$depends"
done

dpkg-deb -x "$deb" "$work/root"
binary=$work/root/usr/bin/hookgate
check "the packaged binary says its version" test "$("$binary" --version)" = "$version"
check "the packaged binary needs no Swift toolchain" bash -c "! ldd '$binary' | grep -q -e /opt/swift -e 'not found'"
check "every library it links directly is in Depends" bash -c "
    source contrib/package-checks.sh
    packages=\$(needed_packages '$binary') || exit 1
    for package in \$packages; do grep -q \"\\b\$package\\b\" <<< '$depends' || exit 1; done"
for unit in hookgate.service hookgate.socket; do
    file=$work/root/usr/lib/systemd/system/$unit
    check "$unit has a Documentation= file" grep -q '^Documentation=file://' "$file"
    for doc in $(sed -n 's|^Documentation=file://||p' "$file"); do
        check "$unit's Documentation= file $doc is in the package" test -f "$work/root$doc"
    done
done
check "hookgate.service runs /usr/bin/hookgate" grep -q '^ExecStart=/usr/bin/hookgate serve$' \
    "$work/root/usr/lib/systemd/system/hookgate.service"
check "no unit points at /usr/local" bash -c "! grep -rq /usr/local '$work/root/usr/lib/systemd/system'"
# verify wants ExecStart='s binary to exist: point the units at the extracted one.
mkdir -p "$work/units"
for unit in hookgate.service hookgate.socket; do
    sed "s|/usr/bin/hookgate|$binary|" "$work/root/usr/lib/systemd/system/$unit" > "$work/units/$unit"
done
check "systemd-analyze verify accepts the units" \
    systemd-analyze verify "$work/units/hookgate.socket" "$work/units/hookgate.service"

# lintian exits 0 with no error (warnings are printed), 1 with errors, 2 if it cannot run.
lintian_status=0
lintian --fail-on error --tag-display-limit 0 "$deb" > "$work/lintian" 2>&1 || lintian_status=$?
sed 's/^/check-deb: lintian: /' "$work/lintian"
check "lintian ran and reports no errors" test "$lintian_status" -eq 0

check_summary
