#!/usr/bin/env bash
# Builds hookgate_VERSION_amd64.deb from a release build.
#   bash contrib/debian/build-deb.sh [--out DIR]    (default DIR: .build/debian)
# The binary links the Swift runtime statically (--static-swift-stdlib), so the package
# depends only on Debian's libraries; dpkg-shlibdeps works those out from the binary.
# As root it installs what it needs (dpkg-dev, fakeroot, binutils) when missing.
set -euo pipefail
# --out is relative to where the script was started.
out=
if [ "${1:-}" = "--out" ]; then out=$(realpath -m "$2"); fi
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"
[ -n "$out" ] || out=$PWD/.build/debian
# Debian's usual variables name the maintainer; set them to the team's real address.
maintainer="${DEBFULLNAME:-hookgate maintainers} <${DEBEMAIL:-maintainers@hookgate.example.org}>"

source contrib/bench/ensure-packages.sh
ensure_packages build-deb.sh dpkg-dev fakeroot binutils libcurl4-openssl-dev libsystemd-dev libsqlite3-dev pkg-config

source contrib/package-checks.sh
version=$(hookgate_version)
[ -n "$version" ] || { echo "build-deb.sh: no version in HookgateVersion.swift" >&2; exit 1; }
architecture=$(dpkg --print-architecture)

swift build -c release --product hookgate --static-swift-stdlib
binary=$(swift build -c release --product hookgate --static-swift-stdlib --show-bin-path)/hookgate

work=$(mktemp -d /tmp/hookgate-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/hookgate_${version}_${architecture}
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/usr/share/doc/hookgate"

install -m 0755 "$binary" "$root/usr/bin/hookgate"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/hookgate"

# The units as in contrib/systemd, with the binary where the package puts it.
for unit in hookgate.service hookgate.socket; do
    sed 's|/usr/local/bin/hookgate|/usr/bin/hookgate|g; s|install -m 0644 hookgate.socket hookgate.service /etc/systemd/system/|installed by the hookgate package in /usr/lib/systemd/system|' \
        "contrib/systemd/$unit" > "$root/usr/lib/systemd/system/$unit"
    chmod 0644 "$root/usr/lib/systemd/system/$unit"
done

# The protocol docs the units' Documentation= lines point at, uncompressed.
doc=$root/usr/share/doc/hookgate
install -m 0644 proto-spec/PROTOCOL.md README.md docs/ARCHITECTURE.md "$doc/"
install -d "$doc/schemas"
install -m 0644 proto-spec/schemas/*.json "$doc/schemas/"
built=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
cat > "$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hookgate

Files: *
Copyright: $(date -u -d @"$built" +%Y) the hookgate authors
License: all-rights-reserved
 The hookgate repository states no license yet; until it does, its authors
 reserve all rights. Set the license here once the project has chosen one.
COPYRIGHT
# A native package (no Debian revision): its changelog is changelog.gz.
printf 'hookgate (%s) unstable; urgency=medium\n\n  * Built from the hookgate repository.\n\n -- %s  %s\n' \
    "$version" "$maintainer" "$(date -R -d @"$built")" | gzip -9n > "$doc/changelog.gz"

# Depends: from the libraries the binary really links (dpkg-shlibdeps reads a
# debian/control, so it runs in a scratch source tree).
mkdir -p "$work/src/debian"
printf 'Source: hookgate\n\nPackage: hookgate\nArchitecture: any\n' > "$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/hookgate" | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: hookgate
Version: $version
Architecture: $architecture
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: net
Priority: optional
Description: webhook gateway beside the services that use it
 hookgate takes events from local services over a Unix socket (newline-delimited
 JSON), matches them against registered webhooks' filters, stores them durably
 in SQLite and POSTs each, signed the Standard Webhooks way, to the webhook's
 URL within its rate limit, retrying until the receiver answers 2xx. systemd
 starts it on the first connection to its socket. The same binary is its
 command-line client.
CONTROL

mkdir -p "$out"
fakeroot dpkg-deb --build --root-owner-group "$root" "$out/hookgate_${version}_${architecture}.deb" >/dev/null
echo "$out/hookgate_${version}_${architecture}.deb"
