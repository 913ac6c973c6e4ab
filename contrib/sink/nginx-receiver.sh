#!/usr/bin/env bash
# A real HTTPS webhook receiver for tests: Debian's nginx on 127.0.0.1 with the given
# certificate, answering every request with 204 at once (a POST's body is discarded, and
# may still be on its way when the answer goes out), and otherwise left at nginx's
# defaults, keepalive_requests (1000) included: a connection is closed after its 1000th
# request, over HTTP/2 with a GOAWAY while more requests are on their way. Each request
# is logged to DIR/requests.log, a line each:
#   <unix seconds.ms> <webhook-id> <status> <protocol> <connection number> <requests on it>
# Everything it writes (config, pid, logs, temp paths) stays in DIR; it runs as root or not.
#   bash contrib/sink/nginx-receiver.sh start DIR CERT KEY [http2|http1]
#       picks a free port, starts nginx with `listen ... ssl http2` (the default) or
#       `listen ... ssl`, returns once it answers, and prints the port
#   bash contrib/sink/nginx-receiver.sh stop DIR
# Needs nginx (Debian: apt-get install nginx) and curl.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR CERT KEY [http2|http1] | stop DIR" >&2
    exit 2
}

write_config() {
    local dir=$1 port=$2 cert=$3 key=$4 protocol=$5 user="" listen
    # As root, workers would otherwise drop to "nobody" and could not write to DIR.
    if [[ $(id -u) == 0 ]]; then user="user root;"; fi
    case $protocol in
    http2) listen="listen 127.0.0.1:$port ssl http2 backlog=4096;" ;;
    http1) listen="listen 127.0.0.1:$port ssl backlog=4096;" ;;
    *) usage ;;
    esac
    cat >"$dir/nginx.conf" <<EOF
$user
worker_processes 1;
daemon on;
pid $dir/nginx.pid;
lock_file $dir/nginx.lock;
error_log $dir/error.log warn;
events {
    worker_connections 1024;
}
http {
    log_format receipts '\$msec \$http_webhook_id \$status \$server_protocol \$connection \$connection_requests';
    access_log $dir/requests.log receipts;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        $listen
        ssl_certificate $cert;
        ssl_certificate_key $key;
        # The start-up probe's, not a receipt.
        location = /ready {
            access_log off;
            return 204;
        }
        location / {
            # "return" discards the request body before answering, so the connection
            # stays usable for the next request.
            return 204;
        }
    }
}
EOF
}

start() {
    local dir=$1 cert=$2 key=$3 protocol=${4:-http2} port attempt i
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    cert=$(cd "$(dirname "$cert")" && pwd)/$(basename "$cert")
    key=$(cd "$(dirname "$key")" && pwd)/$(basename "$key")
    if [[ -s $dir/nginx.pid ]] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; then
        echo "nginx-receiver: already running in $dir (pid $(cat "$dir/nginx.pid"))" >&2
        exit 1
    fi
    # A random port; another one when it is taken.
    for attempt in $(seq 20); do
        port=$((20000 + RANDOM % 40000))
        write_config "$dir" "$port" "$cert" "$key" "$protocol"
        : >"$dir/error.log"
        # -e: the error log before the config is read (the build's default may be unwritable).
        if nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>>"$dir/error.log"; then
            for i in $(seq 100); do
                if curl -s -k -o /dev/null --noproxy '*' --max-time 1 "https://127.0.0.1:$port/ready"; then
                    echo "$port"
                    return 0
                fi
                sleep 0.05
            done
            echo "nginx-receiver: port $port does not answer after 5 s; see $dir/error.log" >&2
            stop "$dir"
            exit 1
        fi
        grep -q "Address already in use" "$dir/error.log" || break
    done
    echo "nginx-receiver: nginx did not start:" >&2
    cat "$dir/error.log" >&2
    exit 1
}

stop() {
    local dir=$1 pid i
    [[ -s $dir/nginx.pid ]] || return 0
    pid=$(cat "$dir/nginx.pid")
    kill -QUIT "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || {
            rm -f "$dir/nginx.pid"
            return 0
        }
        sleep 0.05
    done
    kill -TERM "$pid" 2>/dev/null || true
}

case ${1:-} in
start) [[ $# == 4 || $# == 5 ]] || usage; start "$2" "$3" "$4" "${5:-http2}" ;;
stop) [[ $# == 2 ]] || usage; stop "$2" ;;
*) usage ;;
esac
