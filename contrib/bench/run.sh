#!/usr/bin/env bash
# Builds hookgate and its benchmark in release mode and runs it; prints figures only.
#   bash contrib/bench/run.sh [--events N] [--only emit|match]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product hookgate
swift build -c release --product hookgate-bench
exec .build/release/hookgate-bench --binary .build/release/hookgate "$@"
