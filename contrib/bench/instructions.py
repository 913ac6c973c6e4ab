#!/usr/bin/env python3
"""Instructions per unit of work, counted by callgrind: stable on a noisy, shared machine
where wall-clock figures are not. Run through contrib/bench/instructions.sh, which builds
the binary, starts the loopback sink and the preload this needs.

  python3 contrib/bench/instructions.py --binary BIN --sink-port P --preload SO [--events N]

Each workload runs the real daemon under `valgrind --tool=callgrind` in a data directory
of its own: set up, warm up, then the counters are zeroed (`callgrind_control -z`), the
work is done, and they are dumped (`-d`). The figure is every instruction the daemon's
threads ran in between, divided by the units of work:

- emit, 1 match: events pipelined down one connection, each matching one webhook;
- emit, 10 matches: the same, each event matching ten webhooks;
- deliver: a stored backlog of deliveries to 8 webhooks, POSTed to the loopback nginx
  once their rate limit is lifted, until all are delivered (the delivery path alone:
  scan, sign, send, record).

While events are emitted the webhooks allow 1 delivery a second each, so the engine runs
(as in production) but its sends stay out of the emit figures.

The counts repeat to within a few tenths of a percent for the same binary and input: the
daemon's batching follows the timing under valgrind, which varies a little.
"""

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def event_line(sender):
    event = {
        "event_type": "SMS_STATUS", "timestamp": "2025-04-23T00:05:18Z",
        "status": {"id": "5f2c8a9e-6b1d-4e7a-9c3f-2a8b7d6e5f41", "type": "SMS", "sender": sender,
                   "recipient": "61400000002", "status": "DELIVERED", "status_code": "200",
                   "message_ref": "order-1234567", "campaign_id": "c0b1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e",
                   "delivered_at": "2025-04-23T00:05:17Z"},
    }
    return (json.dumps({"cmd": "emit_event", "event": event}, separators=(",", ":")) + "\n").encode()


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buffer = b""

    def read_line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("the daemon closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def request(self, obj):
        self.sock.sendall((json.dumps(obj) + "\n").encode())
        answer = self.read_line()
        if not answer.get("ok"):
            raise RuntimeError(f"{obj['cmd']} failed: {answer}")
        return answer

    def pipeline(self, lines):
        """Writes every line from a thread while reading the answers here; all must be ok."""
        writer = threading.Thread(target=lambda: self.sock.sendall(b"".join(lines)))
        writer.start()
        deliveries = 0
        for _ in lines:
            answer = self.read_line()
            if not answer.get("ok"):
                raise RuntimeError(f"emit failed: {answer}")
            deliveries += answer["deliveries"]
        writer.join()
        return deliveries


class CallgrindDaemon:
    def __init__(self, binary, preload, directory, extra):
        self.directory = directory
        self.socket_path = os.path.join(directory, "s")
        self.log = open(os.path.join(directory, "daemon.log"), "wb")
        environment = dict(os.environ, LD_PRELOAD=preload)
        self.process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--dump-instr=no",
             "--callgrind-out-file=" + os.path.join(directory, "callgrind.out.%p"),
             binary, "serve", "--socket", self.socket_path, "--data-dir", os.path.join(directory, "data"),
             *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=environment)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the daemon exited; see {self.log.name}")
            try:
                Client(self.socket_path).request({"cmd": "ping"})
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the daemon did not start under valgrind")

    def control(self, flag):
        subprocess.run(["callgrind_control", flag, str(self.process.pid)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def zero(self):
        self.control("-z")

    def dump(self):
        """Dumps the counters and returns the instructions counted since the last zero."""
        before = set(glob.glob(os.path.join(self.directory, "callgrind.out.*.*")))
        self.control("-d")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = set(glob.glob(os.path.join(self.directory, "callgrind.out.*.*"))) - before
            for path in new:
                with open(path) as dump:
                    for line in dump:
                        if line.startswith("totals:"):
                            return int(line.split()[1])
            time.sleep(0.2)
        raise RuntimeError("callgrind wrote no dump")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def create(client, name, url, rate, sender):
    answer = client.request({"cmd": "create_webhook", "name": name, "url": url, "rate_limit": rate,
                             "filter": {"event_type": ["SMS_STATUS"], "sender": [sender]}})
    return answer["webhook"]["id"]


def delivered(client):
    return client.request({"cmd": "stats"})["deliveries"]["delivered"]


def emit_workload(args, work, matches):
    directory = os.path.join(work, f"emit-{matches}")
    os.makedirs(directory)
    daemon = CallgrindDaemon(args.binary, args.preload, directory, daemon_flags())
    try:
        client = Client(daemon.socket_path)
        sender = "61400000001"
        for i in range(matches):
            create(client, f"emit {i}", sink_url(args), 1, sender)
        line = event_line(sender)
        client.pipeline([line] * args.warmup)
        daemon.zero()
        deliveries = client.pipeline([line] * args.events)
        instructions = daemon.dump()
        if deliveries != args.events * matches:
            raise RuntimeError(f"{deliveries} deliveries stored, expected {args.events * matches}")
        return instructions / args.events
    finally:
        daemon.stop()


def deliver_workload(args, work):
    directory = os.path.join(work, "deliver")
    os.makedirs(directory)
    daemon = CallgrindDaemon(args.binary, args.preload, directory, daemon_flags())
    try:
        client = Client(daemon.socket_path)
        webhooks = 8
        senders = [f"6140000001{i}" for i in range(webhooks)]
        ids = [create(client, f"deliver {i}", sink_url(args), 1, sender) for i, sender in enumerate(senders)]
        lines = [event_line(senders[i % webhooks]) for i in range(args.events)]
        client.pipeline(lines)
        start = delivered(client)
        daemon.zero()
        for i, webhook_id in enumerate(ids):
            client.request({"cmd": "update_webhook", "webhook_id": webhook_id, "name": f"deliver {i}", "url": sink_url(args),
                            "rate_limit": 10000, "filter": {"event_type": ["SMS_STATUS"], "sender": [senders[i]]}})
        deadline = time.monotonic() + 1800
        while True:
            done = delivered(client)
            if done >= args.events:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {args.events} delivered")
            time.sleep(0.5)
        instructions = daemon.dump()
        return instructions / (done - start)
    finally:
        daemon.stop()


def daemon_flags():
    return ["--allow-http", "--allow-destination", "127.0.0.0/8", "--log-retention", "1h"]


def sink_url(args):
    return f"http://127.0.0.1:{args.sink_port}/hook"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--sink-port", type=int, required=True)
    parser.add_argument("--preload", required=True, help="contrib/bench/sigsuspend-copy.c, built")
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--only", choices=["emit1", "emit10", "deliver"])
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="hookgate-instructions.")
    try:
        print(f"instructions (callgrind, {args.events} units per workload, {args.binary})")
        if args.only in (None, "emit1"):
            print(f"  emit_event, 1 match:    {emit_workload(args, work, 1):12,.0f} instructions per event", flush=True)
        if args.only in (None, "emit10"):
            print(f"  emit_event, 10 matches: {emit_workload(args, work, 10):12,.0f} instructions per event",
                  flush=True)
        if args.only in (None, "deliver"):
            print(f"  delivery path alone:    {deliver_workload(args, work):12,.0f} instructions per delivery",
                  flush=True)
    finally:
        if os.environ.get("KEEP_WORK"):
            print(f"  (work kept in {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
