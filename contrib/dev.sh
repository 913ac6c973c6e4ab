#!/usr/bin/env bash
# Sets up, builds, runs and tests hookgate on a Debian 12 machine with the Swift toolchain.
#   bash contrib/dev.sh run    build and run the daemon on ./run/hookgate.sock with ./data
#   bash contrib/dev.sh test   build and run the whole test suite
# As root it installs the Debian packages it needs; otherwise it prints the apt-get line.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build and run: the libraries hookgate links, the CA bundle. Tests: systemd-socket-activate,
# socat, openssl (a test CA made at test time), python3 (the HTTPS sink).
PACKAGES=(libcurl4-openssl-dev libsystemd-dev libsqlite3-dev pkg-config systemd socat openssl python3 ca-certificates nginx prometheus)

install_packages() {
    local missing=()
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -eq 0 ]; then
            echo "dev.sh: installing ${missing[*]}" >&2
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        else
            echo "dev.sh: missing Debian packages; run as root:" >&2
            echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
            exit 1
        fi
    fi
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="/opt/swift/usr/bin:$PATH"
        else
            echo "dev.sh: the Swift toolchain (6.1 or newer) is not on PATH" >&2
            exit 1
        fi
    fi
}

# proto-spec/check.py validates the protocol against its JSON Schemas with jsonschema;
# contrib/sink/verify_signatures.py checks signatures with standardwebhooks (an
# implementation independent of hookgate's).
install_python_modules() {
    if ! python3 -c 'import jsonschema, referencing, standardwebhooks' 2>/dev/null; then
        echo "dev.sh: installing the jsonschema and standardwebhooks Python packages" >&2
        python3 -m pip install --quiet 'jsonschema>=4.18' standardwebhooks 2>/dev/null \
            || python3 -m pip install --quiet --break-system-packages 'jsonschema>=4.18' standardwebhooks
    fi
}

case "${1:-}" in
run)
    install_packages
    swift build
    mkdir -p run data
    echo "dev.sh: hookgate on run/hookgate.sock, data in data/ (Ctrl-C stops it)" >&2
    echo "dev.sh: try: echo '{\"cmd\":\"ping\"}' | socat - UNIX-CONNECT:run/hookgate.sock" >&2
    exec .build/debug/hookgate serve --socket run/hookgate.sock --data-dir data "${@:2}"
    ;;
test)
    install_packages
    install_python_modules
    swift build --build-tests
    python3 proto-spec/check.py .build/debug/hookgate
    swift test --skip-build
    ;;
*)
    echo "usage: bash contrib/dev.sh run|test" >&2
    exit 2
    ;;
esac
