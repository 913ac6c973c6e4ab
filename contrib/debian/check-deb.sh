#!/usr/bin/env bash
# Builds the .deb and checks it as a user would receive it: its contents and Depends:
# with dpkg-deb, lintian without errors, and the packaged binary run after extracting.
#   bash contrib/debian/check-deb.sh
# Prints one line per check and "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

source contrib/bench/ensure-packages.sh
ensure_packages check-deb.sh lintian dpkg-dev

work=$(mktemp -d /tmp/hookgate-deb-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
deb=$(bash contrib/debian/build-deb.sh --out "$work" | tail -n 1)
version=$(sed -n 's/.*public static let current = "\(.*\)".*/\1/p' Sources/HookgateCore/HookgateVersion.swift)

passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        echo "check-deb: ok: $what"
        passed=$((passed + 1))
    else
        echo "check-deb: FAILED: $what"
        failed=$((failed + 1))
    fi
}

check "named hookgate_${version}_$(dpkg --print-architecture).deb" \
    test "$(basename "$deb")" = "hookgate_${version}_$(dpkg --print-architecture).deb"
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
# The libraries the binary itself names (NEEDED), not their own dependencies.
check "every library it links directly is in Depends" bash -c "
    for needed in \$(objdump -p '$binary' | awk '/NEEDED/ {print \$2}'); do
        path=\$(ldd '$binary' | awk -v name=\"\$needed\" '\$1 == name && \$3 ~ /^\\// {print \$3} \$1 ~ /^\\// && index(\$1, name) {print \$1}' | head -n 1)
        [ -n \"\$path\" ] || exit 1
        package=\$(dpkg -S \"\$(readlink -f \"\$path\")\" 2>/dev/null || dpkg -S \"\$path\" 2>/dev/null) || exit 1
        package=\$(head -n 1 <<< \"\$package\" | cut -d: -f1)
        grep -q \"\\b\$package\\b\" <<< '$depends' || { echo \"\$needed (\$package) not in Depends\" >&2; exit 1; }
    done"
for unit in hookgate.service hookgate.socket; do
    file=$work/root/usr/lib/systemd/system/$unit
    for doc in $(sed -n 's|^Documentation=file://||p' "$file"); do
        check "$unit's Documentation= file $doc is in the package" test -f "$work/root$doc"
    done
done
check "hookgate.service runs /usr/bin/hookgate" grep -q '^ExecStart=/usr/bin/hookgate serve$' \
    "$work/root/usr/lib/systemd/system/hookgate.service"
check "no unit points at /usr/local" bash -c "! grep -rq /usr/local '$work/root/usr/lib/systemd/system'"
if command -v systemd-analyze >/dev/null; then
    # verify wants ExecStart='s binary to exist: point the units at the extracted one.
    mkdir -p "$work/units"
    for unit in hookgate.service hookgate.socket; do
        sed "s|/usr/bin/hookgate|$binary|" "$work/root/usr/lib/systemd/system/$unit" > "$work/units/$unit"
    done
    check "systemd-analyze verify accepts the units" \
        systemd-analyze verify "$work/units/hookgate.socket" "$work/units/hookgate.service"
fi

lintian --tag-display-limit 0 "$deb" > "$work/lintian" 2>&1 || true
sed 's/^/check-deb: lintian: /' "$work/lintian"
check "lintian reports no errors" bash -c "! grep -q '^E:' '$work/lintian'"

echo "check-deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
