#!/usr/bin/env bash
# Builds hookgate and its benchmark in release mode and runs it; prints figures only.
#   bash contrib/bench/run.sh [--only emit|match|deliver] [--events N] [--webhooks 1,1000]
#                             [--sync full,normal] [--connections C] [--deliveries N]
#                             [--no-instructions]
# The delivery part POSTs to a loopback nginx sink this script starts (nginx-sink.sh) and
# measures, beside wrk and curl-loop.c (compiled here) against that sink: hookgate's
# delivery path alone (a stored backlog of N deliveries), emit and delivery together,
# ingest with 10 matches and with 1 match per event while the engine delivers, the rate
# one webhook is held to and the latency; then a summary table against the targets.
# Last, instructions.sh counts instructions per event and per delivery under callgrind
# (a few minutes; --no-instructions leaves it out). As root the script installs nginx,
# wrk, gcc, libcurl's headers and valgrind when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"

# --no-instructions is run.sh's own; everything else goes to hookgate-bench.
instructions=1
bench_arguments=()
for argument in "$@"; do
    if [ "$argument" = "--no-instructions" ]; then
        instructions=0
    else
        bench_arguments+=("$argument")
    fi
done

packages=(nginx wrk gcc libcurl4-openssl-dev python3)
# instructions.sh's own, checked here so a missing one shows before the run, not after.
if [ "$instructions" -eq 1 ]; then packages+=(valgrind binutils); fi
source contrib/bench/ensure-packages.sh
ensure_packages run.sh "${packages[@]}"

swift build -c release --product hookgate
swift build -c release --product hookgate-bench

work=$(mktemp -d /tmp/hookgate-bench.XXXXXX)
trap 'bash contrib/bench/nginx-sink.sh stop "$work" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bash contrib/bench/nginx-sink.sh start "$work" "$port"
gcc -std=c11 -O2 -Wall -Wextra -o "$work/curl-loop" contrib/bench/curl-loop.c -lcurl

.build/release/hookgate-bench --binary .build/release/hookgate \
    --sink-port "$port" --timed-log "$work/timed.log" --curl-loop "$work/curl-loop" \
    --wrk-script contrib/bench/wrk-post.lua "${bench_arguments[@]}"

if [ "$instructions" -eq 1 ]; then
    # instructions.sh starts a sink of its own: this one would only share the cores.
    bash contrib/bench/nginx-sink.sh stop "$work"
    echo
    bash contrib/bench/instructions.sh --binary .build/release/hookgate
fi
