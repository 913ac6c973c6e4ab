# Sourced by contrib/debian/check-deb.sh and contrib/container/check-container.sh.

# check NAME COMMAND...: runs the command quietly and counts it as passed or failed.
passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        echo "$check_prefix: ok: $what"
        passed=$((passed + 1))
    else
        echo "$check_prefix: FAILED: $what"
        failed=$((failed + 1))
    fi
}

# The summary line, and the exit status.
check_summary() {
    echo "$check_prefix: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# hookgate's version, from the source.
hookgate_version() {
    sed -n 's/.*public static let current = "\(.*\)".*/\1/p' Sources/HookgateCore/HookgateVersion.swift
}

# needed_packages BINARY: the Debian package of each library the binary names (its
# NEEDED entries, not their own dependencies), found through ldd and dpkg -S, one per
# line, sorted. Fails when one cannot be found.
needed_packages() {
    local binary=$1 needed path owner
    for needed in $(objdump -p "$binary" | awk '/NEEDED/ {print $2}'); do
        path=$(ldd "$binary" | awk -v name="$needed" '$1 == name && $3 ~ /^\// {print $3} $1 ~ /^\// && index($1, name) {print $1}' | head -n 1)
        [ -n "$path" ] || { echo "needed_packages: ldd does not resolve $needed" >&2; return 1; }
        owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null) \
            || { echo "needed_packages: no package holds $path" >&2; return 1; }
        echo "${owner%%:*}"
    done | sort -u
}
