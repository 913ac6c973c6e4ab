# Sourced by the benchmark scripts: ensure_packages NAME PACKAGE... installs the Debian
# packages that are missing when run as root, and otherwise says which and exits.
ensure_packages() {
    local name=$1
    shift
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "$name: missing Debian packages; run as root: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}
