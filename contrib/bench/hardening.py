#!/usr/bin/env python3
"""Figures for the reliability section of the README, from a release build:

  python3 contrib/bench/hardening.py [--binary .build/release/hookgate] [--pending 1000000]

1. worst-case request lines: 1 MiB lines of the most expensive shapes we know, each timed
   from its last byte sent to its answer, while a second connection pings;
2. emit latency while a webhook with --pending pending deliveries is deleted: one emit at
   a time on another connection, until every delivery is cancelled;
3. the daemon's RSS while a client pipelines 20,000 `list_requests limit:1000` and never
   reads.
Only loopback is used; everything started is stopped at the end.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EVENT = {"event_type": "SMS_STATUS", "status": {"id": "m-1", "type": "SMS", "sender": "61400000009",
                                                 "recipient": "61411111111", "status": "DELIVERED"}}


class Daemon:
    def __init__(self, binary, directory, extra=()):
        self.socket_path = os.path.join(directory, "hookgate.sock")
        self.log = open(os.path.join(directory, "daemon.log"), "wb")
        self.process = subprocess.Popen(
            [binary, "serve", "--socket", self.socket_path, "--data-dir", os.path.join(directory, "data"), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                Client(self.socket_path).request({"cmd": "ping"})
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the daemon did not start")

    def rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_ns(self):
        """CPU time used by all the daemon's threads (schedstat: exact, and unaffected by
        waiting for a core on a busy machine)."""
        total = 0
        task_dir = f"/proc/{self.process.pid}/task"
        for task in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{task}/schedstat") as stat:
                    total += int(stat.read().split()[0])
            except OSError:
                pass
        return total

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data)

    def read(self):
        return json.loads(self.file.readline())

    def request(self, obj):
        self.send((json.dumps(obj) + "\n").encode())
        return self.read()


def worst_case_lines(binary, workdir):
    directory = tempfile.mkdtemp(dir=workdir)
    daemon = Daemon(binary, directory, ["--max-event-bytes", "1MiB", "--max-line-bytes", "2MiB"])
    mib = 1 << 20
    shapes = {}
    def members(n):
        return ",".join(f'"k{i}":{i}' for i in range(n))
    # The largest lines that parse (up to 50,000 values each), then 1 MiB lines of more.
    shapes["top level, 49,000 keys"] = '{"cmd":"ping","pad":0,' + members(49_000) + "}"
    shapes["event body, 49,000 keys (stored)"] = (
        '{"cmd":"emit_event","event":{"event_type":"LINK_HIT","link_hit":{"url":"u","hits":1,'
        '"source_message":{"id":"m","type":"SMS","sender":"a","recipient":"b"},' + members(49_000) + "}}}")
    shapes["24,000 nested [[[]]]"] = '{"cmd":"ping","pad":[' + ",".join(["[[]]"] * 24_000) + "]}"
    shapes["16,000 small objects"] = '{"cmd":"ping","pad":[' + ",".join(['{"a":1,"b":2}'] * 16_000) + "]}"
    shapes["one string of \\u escapes"] = '{"cmd":"ping","pad":"' + "\\u00e9" * (mib // 6) + '"}'
    shapes["70,000 keys (over the value limit)"] = '{"cmd":"ping","pad":0,' + members(70_000) + "}"
    shapes["500,000 numbers (over the limit)"] = '{"cmd":"ping","pad":[' + ",".join(["1"] * 500_000) + "]}"
    shapes["64-deep nesting x 8,000 (over)"] = '{"cmd":"ping","pad":[' + ",".join(["[" * 60 + "]" * 60] * 8000) + "]}"
    shapes["emit_event over --max-event-bytes"] = ('{"cmd":"emit_event","id":1,"event":{"pad":"'
                                                   + "x" * (mib + 1000) + '"}}')
    hostile = Client(daemon.socket_path)
    bystander = Client(daemon.socket_path)
    results = []
    for name, line in shapes.items():
        data = (line + "\n").encode()
        pings = []
        stop = threading.Event()

        def ping():
            while not stop.is_set():
                started = time.perf_counter()
                bystander.request({"cmd": "ping"})
                pings.append(time.perf_counter() - started)
                time.sleep(0.001)

        hostile.sock.sendall(data[:-1])
        time.sleep(0.2)
        cpu_before = daemon.cpu_ns()
        pinger = threading.Thread(target=ping)
        pinger.start()
        started = time.perf_counter()
        hostile.sock.sendall(data[-1:])
        answer = hostile.read()
        elapsed = time.perf_counter() - started
        cpu = (daemon.cpu_ns() - cpu_before) / 1e6
        stop.set()
        pinger.join()
        code = "ok" if answer.get("ok") else answer["error"]["code"]
        results.append((name, len(data), elapsed * 1000, cpu, max(pings) * 1000 if pings else 0.0, code))
    daemon.stop()
    print("\n1. Worst-case request lines (release build): wall time from the last byte to the answer, the")
    print("   daemon's CPU time meanwhile (all threads, pings included), the slowest ping on another connection")
    print(f"   {'shape':38} {'bytes':>9} {'answered in':>12} {'CPU':>9} {'slowest ping':>13}  answer")
    for name, size, ms, cpu_ms, ping_ms, code in results:
        print(f"   {name:38} {size:>9,} {ms:>9.1f} ms {cpu_ms:>6.1f} ms {ping_ms:>10.1f} ms  {code}")


def delete_latency(binary, workdir, pending):
    directory = tempfile.mkdtemp(dir=workdir)
    # Deliveries go to a refused loopback port at 1 a second: nearly all stay pending.
    daemon = Daemon(binary, directory, ["--allow-http", "--allow-destination", "127.0.0.0/8"])
    client = Client(daemon.socket_path)
    hook = client.request({"cmd": "create_webhook", "name": "Backlog", "url": "http://127.0.0.1:9/hook",
                           "filter": {"event_type": ["SMS_STATUS"]}, "rate_limit": 1})["webhook"]["id"]
    line = (json.dumps({"cmd": "emit_event", "event": EVENT}) + "\n").encode()
    started = time.monotonic()
    sent = 0
    batch = 2000
    while sent < pending:
        n = min(batch, pending - sent)
        client.send(line * n)
        for _ in range(n):
            client.read()
        sent += n
    fill = time.monotonic() - started
    other = Client(daemon.socket_path)
    latencies = []
    started = time.monotonic()
    answer = client.request({"cmd": "delete_webhook", "webhook_id": hook})
    delete_ms = (time.monotonic() - started) * 1000
    assert answer.get("ok"), answer
    while True:
        t0 = time.perf_counter()
        other.request({"cmd": "emit_event", "event": EVENT})
        latencies.append((time.perf_counter() - t0) * 1000)
        if len(latencies) % 200 == 0:
            stats = other.request({"cmd": "stats"})["deliveries"]
            if stats["pending"] == 0:
                break
    cancel_s = time.monotonic() - started
    daemon.stop()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"\n2. Deleting a webhook with {pending:,} pending deliveries (stored in {fill:.1f} s)")
    print(f"   delete_webhook answered in {delete_ms:.1f} ms; every delivery cancelled and logged after {cancel_s:.1f} s")
    print(f"   {len(latencies):,} emits meanwhile, one at a time: p50 {latencies[len(latencies) // 2]:.2f} ms, "
          f"p99 {p99:.2f} ms, worst {latencies[-1]:.2f} ms (the five worst: {', '.join(f'{v:.0f}' for v in latencies[-5:])})")


def non_reading_client(binary, workdir):
    directory = tempfile.mkdtemp(dir=workdir)
    daemon = Daemon(binary, directory, ["--allow-http", "--allow-destination", "127.0.0.0/8"])
    client = Client(daemon.socket_path)
    client.request({"cmd": "create_webhook", "name": "Log filler", "url": "http://127.0.0.1:9/hook",
                    "filter": {"event_type": ["SMS_STATUS"]}, "rate_limit": 10000})
    line = (json.dumps({"cmd": "emit_event", "event": EVENT}) + "\n").encode()
    client.send(line * 1000)
    for _ in range(1000):
        client.read()
    while len(client.request({"cmd": "list_requests", "limit": 1000})["requests"]) < 1000:
        time.sleep(0.2)
    answer_bytes = len(json.dumps(client.request({"cmd": "list_requests", "limit": 1000})))
    before = daemon.rss_mib()
    hostile = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hostile.connect(daemon.socket_path)
    hostile.setblocking(False)
    requests = b'{"cmd":"list_requests","limit":1000}\n' * 20_000
    offset, idle_since, peak = 0, time.monotonic(), before
    while offset < len(requests) and time.monotonic() - idle_since < 5:
        try:
            offset += hostile.send(requests[offset:offset + 65536])
            idle_since = time.monotonic()
        except BlockingIOError:
            time.sleep(0.05)
        peak = max(peak, daemon.rss_mib())
    for _ in range(20):
        peak = max(peak, daemon.rss_mib())
        time.sleep(0.1)
    pong = client.request({"cmd": "ping"})
    daemon.stop()
    print("\n3. A client that pipelines 20,000 list_requests limit:1000 and never reads")
    print(f"   each answer {answer_bytes / 1024:.0f} KiB; the socket took {offset:,} of {len(requests):,} request bytes "
          f"before the daemon stopped reading")
    print(f"   RSS {before:.0f} MiB before, {peak:.0f} MiB at most while it held them; other clients served: "
          f"{pong.get('ok')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=".build/release/hookgate")
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["lines", "delete", "rss"])
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="hookgate-hardening.")
    try:
        if args.only in (None, "lines"):
            worst_case_lines(args.binary, workdir)
        if args.only in (None, "delete"):
            delete_latency(args.binary, workdir, args.pending)
        if args.only in (None, "rss"):
            non_reading_client(args.binary, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
