#!/usr/bin/env bash
# Fuzzes hookgate's input handling with libFuzzer for a bounded time:
#   bash contrib/fuzz/run.sh [SECONDS]      (default 60)
# The target (Sources/hookgate-fuzz) feeds every input through the line decoder, the JSON
# parser, the text parsers that read client input, and command dispatch against a real
# SQLite store, checking that each line gets one well-formed answer. It is built with
# AddressSanitizer into .build-fuzz; the committed seed corpus (contrib/fuzz/corpus) is
# copied to a scratch directory, so the inputs the fuzzer adds do not touch the tree.
# A crash leaves its input in contrib/fuzz/findings/ (replay it with an ordinary build:
# .build/debug/hookgate-fuzz FILE) and makes this script fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
export PATH="/opt/swift/usr/bin:$PATH"

swift build --scratch-path .build-fuzz --product hookgate-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING 2>&1 | grep -v "^\[" || true
binary=".build-fuzz/debug/hookgate-fuzz"
[ -x "$binary" ] || { echo "fuzz: the build failed" >&2; exit 1; }

work="$(mktemp -d /tmp/hookgate-fuzz-run.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp -r contrib/fuzz/corpus "$work/corpus"
mkdir -p contrib/fuzz/findings
echo "fuzz: running for ${seconds}s on $(ls contrib/fuzz/corpus | wc -l) seed inputs" >&2
if "$binary" "$work/corpus" -max_total_time="$seconds" -max_len=4096 -timeout=20 -rss_limit_mb=4096 \
    -artifact_prefix=contrib/fuzz/findings/ -print_final_stats=1 >"$work/fuzz.log" 2>&1; then
    grep -E "^stat::|Done [0-9]+ runs" "$work/fuzz.log" >&2 || true
    echo "fuzz: clean after ${seconds}s" >&2
else
    tail -60 "$work/fuzz.log" >&2
    echo "fuzz: FAILED; the input is in contrib/fuzz/findings/" >&2
    exit 1
fi
