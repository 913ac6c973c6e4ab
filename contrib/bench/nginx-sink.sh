#!/usr/bin/env bash
# A loopback keep-alive HTTP sink for the delivery benchmark: nginx answering every
# request (POSTs with a body included) with 204, one worker, no access log but for
# requests under /timed/ (DIR/timed.log: "<unix seconds.ms> <webhook-id>" a line, for
# the latency run). Everything it writes (config, pid, logs, temp paths) stays in DIR;
# no root needed.
#   bash contrib/bench/nginx-sink.sh start DIR PORT   # returns once PORT answers
#   bash contrib/bench/nginx-sink.sh stop DIR
# Needs nginx (Debian: apt-get install nginx).
set -euo pipefail

usage() {
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
}

write_config() {
    local dir=$1 port=$2 user=""
    # As root, workers would otherwise drop to "nobody" and could not write to DIR.
    if [[ $(id -u) == 0 ]]; then user="user root;"; fi
    cat >"$dir/nginx.conf" <<EOF
$user
worker_processes 1;
worker_rlimit_nofile 8192;
daemon on;
pid $dir/nginx.pid;
lock_file $dir/nginx.lock;
error_log $dir/error.log warn;
events {
    worker_connections 4096;
    multi_accept on;
}
http {
    access_log off;
    log_format timed '\$msec \$http_webhook_id';
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    # A body up to this size is read into memory and dropped, never written to disk.
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
            # "return" discards the request body before answering, so the connection
            # stays usable for the next request.
            return 204;
        }
        # Receipts for the latency run: "<unix seconds, ms resolution> <webhook-id>".
        location /timed/ {
            access_log $dir/timed.log timed;
            return 204;
        }
    }
}
EOF
}

start() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -s $dir/nginx.pid ]] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; then
        echo "nginx-sink: already running in $dir (pid $(cat "$dir/nginx.pid"))" >&2
        exit 1
    fi
    write_config "$dir" "$port"
    # -e: the error log before the config is read (the build's default may be unwritable).
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
    local i
    for i in $(seq 100); do
        if curl -s -o /dev/null --noproxy '*' --max-time 1 "http://127.0.0.1:$port/"; then return 0; fi
        sleep 0.05
    done
    echo "nginx-sink: port $port does not answer after 5 s; see $dir/error.log" >&2
    stop "$dir"
    exit 1
}

stop() {
    local dir=$1 pid i
    [[ -s $dir/nginx.pid ]] || return 0
    pid=$(cat "$dir/nginx.pid")
    kill -QUIT "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/nginx.pid"; return 0; }
        sleep 0.05
    done
    kill -TERM "$pid" 2>/dev/null || true
}

case ${1:-} in
start) [[ $# == 3 ]] || usage; start "$2" "$3" ;;
stop) [[ $# == 2 ]] || usage; stop "$2" ;;
*) usage ;;
esac
