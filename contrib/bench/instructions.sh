#!/usr/bin/env bash
# Instructions per emitted event (1 and 10 matches) and per delivery, counted by callgrind
# on a release build: figures that repeat on a noisy machine (see instructions.py).
#   bash contrib/bench/instructions.sh [--binary PATH] [--events N] [--only emit1|emit10|deliver]
# As root it installs valgrind, nginx, gcc and python3 when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/opt/swift/usr/bin:$PATH"

source contrib/bench/ensure-packages.sh
ensure_packages instructions.sh valgrind nginx gcc python3 binutils

binary=""
if [ "${1:-}" = "--binary" ]; then
    binary=$2
    shift 2
else
    swift build -c release --product hookgate >/dev/null
    binary=.build/release/hookgate
fi

work=$(mktemp -d /tmp/hookgate-instructions.XXXXXX)
trap 'bash contrib/bench/nginx-sink.sh stop "$work" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# valgrind 3.19 cannot read the DWARF 5 Swift's toolchain writes: a copy without debug
# information keeps its symbols (function names in callgrind's output).
objcopy --strip-debug "$binary" "$work/hookgate"
gcc -O2 -shared -fPIC -o "$work/sigsuspend-copy.so" contrib/bench/sigsuspend-copy.c
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bash contrib/bench/nginx-sink.sh start "$work" "$port"
python3 contrib/bench/instructions.py --binary "$work/hookgate" --sink-port "$port" \
    --preload "$work/sigsuspend-copy.so" "$@"
