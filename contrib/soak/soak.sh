#!/usr/bin/env bash
# Crash soak for hookgate: emits events for N minutes while killing the daemon with
# SIGKILL at random moments, and checks that nothing acknowledged is lost. See README.md.
#
#   bash contrib/soak/soak.sh [--minutes 10] [--binary PATH] [--help for the rest]
#
# Runs from any directory; the default binary is the repository's
# .build/release/hookgate if it exists, else .build/debug/hookgate.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in python3 openssl; do
    if ! command -v "$tool" >/dev/null; then
        echo "soak.sh: $tool is needed (apt-get install $tool)" >&2
        exit 2
    fi
done
exec python3 "$here/soak.py" "$@"
