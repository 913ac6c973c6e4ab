#!/usr/bin/env bash
# What can be checked of the sidecar image and its manifests without a container engine
# (none runs on the project's machines, so the image build itself is not exercised):
#   - the Containerfile's runtime stage installs exactly the packages that hold the
#     libraries the release binary links (found with ldd), plus ca-certificates;
#   - its shape: a Swift build stage, debian:bookworm-slim at run time, a non-root user,
#     a HEALTHCHECK through `hookgate health`;
#   - contrib/kubernetes/sidecar.yaml validates against the Kubernetes schemas
#     (kubernetes-validate, strict) and has the parts the example promises.
#   bash contrib/container/check-container.sh
# Prints one line per check and "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"

source contrib/bench/ensure-packages.sh
source contrib/package-checks.sh
check_prefix=check-container
ensure_packages check-container.sh binutils libcurl4-openssl-dev libsystemd-dev libsqlite3-dev pkg-config python3
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
    python3 -m pip install --quiet kubernetes-validate 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages kubernetes-validate
fi

containerfile=contrib/container/Containerfile
manifest=contrib/kubernetes/sidecar.yaml
swift build -c release --product hookgate --static-swift-stdlib >/dev/null
binary=$(swift build -c release --product hookgate --static-swift-stdlib --show-bin-path)/hookgate

# libc6 is in every Debian image.
expected=$(needed_packages "$binary" | grep -vx libc6 | tr '\n' ' ')
runtime=$(awk '/^FROM /{stage++} stage==2' "$containerfile")
installed=$(grep -o 'apt-get install [^&]*' <<< "$runtime" | tr -d '\\' | tr ' ' '\n' | grep -v -e '^-' -e '^apt-get$' -e '^install$' -e '^$' \
    | grep -vx ca-certificates | sort -u | tr '\n' ' ')
echo "check-container: the binary's libraries come from: $expected"
echo "check-container: the runtime stage installs: $installed ca-certificates"
check "the runtime stage installs exactly those packages" test "$expected" = "$installed"
check "the runtime stage installs ca-certificates" grep -q 'apt-get install .*ca-certificates' <<< "$runtime"
check "two stages, building with the Swift toolchain image" \
    bash -c "grep -c '^FROM ' '$containerfile' | grep -qx 2 && grep -q '^FROM swift:.* AS build' '$containerfile'"
check "the runtime stage is debian:bookworm-slim" grep -q '^FROM debian:bookworm-slim$' "$containerfile"
check "it runs as a non-root user" bash -c "grep '^USER ' '$containerfile' | tail -n 1 | grep -qv -e '^USER root' -e '^USER 0\\b'"
check "its HEALTHCHECK runs hookgate health" grep -q 'CMD hookgate health' "$containerfile"
check "the socket is in a volume" grep -q 'VOLUME \["/run/hookgate"' "$containerfile"

check "sidecar.yaml validates against the Kubernetes schemas" \
    bash -c "python3 -m kubernetes_validate --strict '$manifest' 2>&1 | tee /dev/stderr | grep -q 'passed for resource deployment' && ! python3 -m kubernetes_validate --strict '$manifest' 2>&1 | grep -q -e ERROR -e 'did not validate'"
check "the containers share an emptyDir for the socket" \
    bash -c "grep -q 'emptyDir:' '$manifest' && [ \$(grep -c 'mountPath: /run/hookgate\$' '$manifest') -eq 2 ]"
check "hookgate's readiness probe is /readyz on its --metrics-listen port" \
    bash -c "grep -A 3 'readinessProbe:' '$manifest' | grep -q 'path: /readyz' && grep -q -- '--metrics-listen' '$manifest'"
check "the data is on a PersistentVolumeClaim" grep -q 'claimName: hookgate-data' "$manifest"
check "hookgate has resource requests" bash -c "grep -A 40 'name: hookgate\$' '$manifest' | grep -q 'requests:'"

check_summary
