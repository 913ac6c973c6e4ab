#!/usr/bin/env python3
"""A webhook receiver for tests: HTTPS (or plain HTTP) on loopback, HTTP/1.1 with
keep-alive, one JSON line per request in a log file, behaviour chosen by the URL path.

    python3 contrib/sink/sink.py --port 0 --cert DIR/server.pem --key DIR/server.key \\
        --log FILE [--plain] [--host 127.0.0.1]

(make DIR with contrib/sink/make-test-ca.sh). Once it accepts connections it prints
exactly one line, `LISTENING <port>`, to stdout and flushes; stdout carries nothing
else. Problems (a failed TLS handshake, a client gone away) go to stderr, one line each.
SIGTERM or SIGINT: exit 0.

Log: FILE gets one JSON object per line, appended and flushed as soon as a request has
been read, before it is answered:
    {"at": unix seconds (float), "method": "POST", "path": "/status/500?x=1",
     "version": "HTTP/1.1", "headers": {lower-case name: value},
     "body": the body as a UTF-8 string, "connection": n}
`connection` numbers the connections this sink accepted (1, 2, ...): two requests with
the same number came over one kept-alive connection. Repeated headers are joined with
", ". A body that is not valid UTF-8 is logged with U+FFFD replacements, and its exact
bytes go into an extra "body_base64" field.

Behaviour by path (the query string is ignored for this):
    /status/<code>                  answers <code>
    /sequence/<key>/<c1>,<c2>,...   the n-th request to <key> gets cn; the last repeats;
                                    an item <code>:<value> also sends Retry-After: <value>,
                                    URL-decoded (/sequence/k/503:2,200)
    /retry-after/<code>/<value>     answers <code> with Retry-After: <value>, URL-decoded
                                    (/retry-after/503/Wed%2C%2021%20Oct%202015%2007%3A28%3A00%20GMT)
    /hang/<seconds>                 reads the request, sleeps, then answers 200
    /reset                          reads the request, then closes with SO_LINGER 0: RST
    /redirect/<code>                answers <code> with Location: /status/200
    /body/<n>                       answers 200 with n bytes of "x"
    anything else                   answers 200 with body "ok"
A malformed parameter (/status/abc) answers 400 (the request is logged all the same).
Responses always carry Content-Length (except 1xx, 204 and 304, which have no body).
"""

import argparse
import base64
import http.server
import itertools
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse


class LogFile:
    """Appends one JSON line per record and flushes it; safe across threads."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record):
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()


class Sink(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close() must not join handler threads (see main)
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler, log, ssl_context):
        self.log = log
        self.ssl_context = ssl_context
        self._connections = itertools.count(1)
        self._sequences = {}
        self._lock = threading.Lock()
        super().__init__(address, handler)

    def next_connection(self):
        with self._lock:
            return next(self._connections)

    def next_in_sequence(self, key):
        """0 for the first request to `key`, 1 for the second, ..."""
        with self._lock:
            n = self._sequences.get(key, 0)
            self._sequences[key] = n + 1
            return n

    def handle_error(self, request, client_address):
        # One line instead of a traceback: TLS refusals and clients that hang up are
        # expected in tests.
        error = sys.exc_info()[1]
        print(f"sink: connection from {client_address[0]}:{client_address[1]}: "
              f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)


class BadParameter(Exception):
    pass


class ConnectionDropped(Exception):
    """Raised after /reset has closed the socket: ends this connection's loop."""


def status_code(text):
    try:
        code = int(text)
    except ValueError:
        raise BadParameter(f"not a status code: {text!r}")
    if not 100 <= code <= 999:
        raise BadParameter(f"not a status code: {text!r}")
    return code


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "hookgate-sink"

    # -- connection ------------------------------------------------------------

    def setup(self):
        if self.server.ssl_context is not None:
            # The handshake runs here, on this connection's thread, not in accept().
            self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
        self.connection_number = self.server.next_connection()
        super().setup()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        try:
            self.request.close()
        except OSError:
            pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, ssl.SSLError) as error:
            # The client went away (e.g. it timed out during /hang): not our failure.
            self.log_error("%s: %s", type(error).__name__, error)
            self.close_connection = True
        except ConnectionDropped:
            self.close_connection = True

    def log_message(self, format, *args):
        pass  # no access log: the JSON log is the record

    def log_error(self, format, *args):
        print(f"sink: {self.client_address[0]}:{self.client_address[1]}: {format % args}",
              file=sys.stderr, flush=True)

    # -- requests --------------------------------------------------------------

    def do_request(self):
        body = self.read_body()
        if body is None:
            return
        self.record(body)
        try:
            self.dispatch()
        except BadParameter as error:
            self.answer(400, str(error).encode() + b"\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_request

    def read_body(self):
        """The request body (Content-Length or chunked), or None after answering 400."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    self.send_error(400, "bad chunk size")
                    return None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.read_exactly(size))
                self.rfile.readline(65537)  # CRLF after the chunk
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            length = int(length)
            if length < 0:
                raise ValueError
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        return self.read_exactly(length)

    def read_exactly(self, n):
        data = self.rfile.read(n)
        if len(data) != n:
            raise ConnectionError(f"body cut short: {len(data)} of {n} bytes")
        return data

    def record(self, body):
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        entry = {
            "at": time.time(),
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": headers,
            "body": body.decode("utf-8", errors="replace"),
            "connection": self.connection_number,
        }
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            entry["body_base64"] = base64.b64encode(body).decode("ascii")
        self.server.log.write(entry)

    def dispatch(self):
        route = urllib.parse.urlsplit(self.path).path
        parts = route.strip("/").split("/")
        name, args = parts[0], parts[1:]

        if name == "status" and len(args) == 1:
            code = status_code(args[0])
            self.answer(code, f"status {code}\n".encode())
        elif name == "sequence" and len(args) == 2:
            items = [c for c in args[1].split(",") if c != ""]
            if not items:
                raise BadParameter("empty sequence")
            codes = [status_code(c.split(":", 1)[0]) for c in items]
            n = self.server.next_in_sequence(args[0])
            i = min(n, len(items) - 1)
            headers = []
            if ":" in items[i]:
                headers.append(("Retry-After", urllib.parse.unquote(items[i].split(":", 1)[1])))
            self.answer(codes[i], f"status {codes[i]}\n".encode(), headers)
        elif name == "retry-after" and len(args) >= 2:
            code = status_code(args[0])
            value = urllib.parse.unquote("/".join(args[1:]))
            self.answer(code, f"status {code}\n".encode(), [("Retry-After", value)])
        elif name == "hang" and len(args) == 1:
            try:
                seconds = float(args[0])
            except ValueError:
                raise BadParameter(f"not a number of seconds: {args[0]!r}")
            time.sleep(max(0.0, seconds))
            self.answer(200, b"ok")
        elif name == "reset" and not args:
            self.reset()
        elif name == "redirect" and len(args) == 1:
            code = status_code(args[0])
            self.answer(code, b"redirect\n", [("Location", "/status/200")])
        elif name == "body" and len(args) == 1:
            try:
                size = int(args[0])
                if size < 0:
                    raise ValueError
            except ValueError:
                raise BadParameter(f"not a size: {args[0]!r}")
            self.answer(200, None, size=size)
        else:
            self.answer(200, b"ok")

    def answer(self, code, body, headers=(), size=None):
        """Sends a complete response. `size` instead of `body`: that many bytes of 'x'."""
        if size is None:
            size = len(body)
        no_body = code < 200 or code in (204, 304)
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        if not no_body:
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if no_body or self.command == "HEAD":
            return
        if body is not None:
            self.wfile.write(body)
        else:
            block = b"x" * 65536
            left = size
            while left > 0:
                self.wfile.write(block[:min(left, len(block))])
                left -= len(block)
        self.wfile.flush()

    def reset(self):
        """Drops the connection with a TCP RST (SO_LINGER on, timeout 0), no TLS close_notify."""
        self.close_connection = True
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The socket closes only when the buffered file objects over it are closed too.
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except OSError:
                pass
        self.request.close()
        raise ConnectionDropped


def main():
    parser = argparse.ArgumentParser(description="HTTPS webhook receiver for tests")
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; ::1 works too)")
    parser.add_argument("--cert", help="server certificate (PEM)")
    parser.add_argument("--key", help="its private key (PEM)")
    parser.add_argument("--log", required=True, help="append one JSON line per request here")
    parser.add_argument("--plain", action="store_true", help="plain HTTP instead of HTTPS")
    args = parser.parse_args()

    context = None
    if not args.plain:
        if not (args.cert and args.key):
            parser.error("--cert and --key are required unless --plain")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_alpn_protocols(["http/1.1"])  # no HTTP/2 here: clients fall back
        try:
            context.load_cert_chain(args.cert, args.key)
        except (OSError, ssl.SSLError) as error:
            print(f"sink: cannot load {args.cert} / {args.key}: {error}", file=sys.stderr)
            return 1

    if ":" in args.host:
        Sink.address_family = socket.AF_INET6
    try:
        server = Sink((args.host, args.port), Handler, LogFile(args.log), context)
    except OSError as error:
        print(f"sink: cannot listen on {args.host} port {args.port} or open {args.log}: {error}",
              file=sys.stderr)
        return 1

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    # Bound and listening since the constructor: connections queue until served.
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    # Every log line is already flushed: leave at once rather than wait for handler
    # threads still blocked on idle keep-alive connections.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
