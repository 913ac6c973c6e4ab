#!/usr/bin/env python3
"""Crash soak test for hookgate: emit events for N minutes while killing the daemon
with SIGKILL at random moments, and check after every restart that nothing
acknowledged was lost, that the delivery counts add up and that the database is sound;
at the end check that every acknowledged delivery reached the receiver.

    python3 contrib/soak/soak.py [--minutes 10] [--binary PATH] [options]

(contrib/soak/soak.sh is a wrapper). Python 3 standard library only; needs openssl
(for contrib/sink/make-test-ca.sh). Everything it starts (the HTTPS sink, the daemon)
is stopped on exit, Ctrl-C included. See contrib/soak/README.md.
"""

import argparse
import bisect
import collections
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SINK = os.path.join(REPO, "contrib", "sink", "sink.py")
MAKE_CA = os.path.join(REPO, "contrib", "sink", "make-test-ca.sh")
STATES = ("pending", "in_flight", "delivered", "failed", "cancelled")
DB_NAME = "hookgate.sqlite3"


def log(message):
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


# -- child processes ------------------------------------------------------------------

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent(sig):
    """preexec_fn: the child gets `sig` when the thread that started it (always the main
    thread here) ends: a safety net for a soak itself killed with SIGKILL. Ctrl-C,
    SIGTERM and errors are handled in `finally`."""
    sig = int(sig)

    def set_pdeathsig():
        if _prctl is not None:
            _prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG

    return set_pdeathsig


def stop_process(proc, sig=signal.SIGTERM, grace=5.0):
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


# -- the control socket ----------------------------------------------------------------


class Client:
    """One connection to the daemon: JSON lines out, JSON lines back in order."""

    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        except BaseException:
            self.sock.close()
            raise
        self.reader = self.sock.makefile("rb")

    def close(self):
        for thing in (self.reader, self.sock):
            try:
                thing.close()
            except OSError:
                pass

    def send(self, requests):
        data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in requests)
        self.sock.sendall(data)

    def read(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("connection closed by the daemon")
        return json.loads(line)

    def call(self, request):
        self.send([request])
        return self.read()

    def pipeline(self, requests, chunk=200):
        """Sends `requests` in chunks, returns every answer in order."""
        answers = []
        for i in range(0, len(requests), chunk):
            part = requests[i:i + chunk]
            self.send(part)
            answers.extend(self.read() for _ in part)
        return answers


def stats(client):
    answer = client.call({"cmd": "stats"})
    if not answer.get("ok"):
        raise RuntimeError(f"stats failed: {answer}")
    return answer


def stats_total(answer):
    return sum(answer["deliveries"][s] for s in STATES)


def event_for(key):
    """The event emitted under `key`: the same every time, so a re-emit of a key whose
    first emit was never answered stores the same event if the first one was lost."""
    return {
        "event_type": "SMS_STATUS",
        "status": {
            "id": key,
            "type": "SMS",
            "sender": "61400000009",
            "recipient": "61411111111",
            "status": "DELIVERED",
            "message_ref": key,
        },
    }


def emit_request(key, request_id=None):
    request = {"cmd": "emit_event", "idempotency_key": key, "event": event_for(key)}
    if request_id is not None:
        request["id"] = request_id
    return request


# -- shared state -------------------------------------------------------------------


class Ledger:
    """What the daemon acknowledged, and what it was asked but never answered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}  # key -> (event_id, deliveries)
        self.uncertain = set()  # keys sent whose answer never came
        self.deliveries = 0  # sum of acknowledged `deliveries`
        self.errors = collections.Counter()  # error answers to emits, by code
        self.error_examples = []

    def sent(self, keys):
        with self.lock:
            self.uncertain.update(keys)

    def ack(self, key, event_id, deliveries):
        with self.lock:
            previous = self.acked.get(key)
            self.uncertain.discard(key)
            if previous is None:
                self.acked[key] = (event_id, deliveries)
                self.deliveries += deliveries
            return previous

    def refused(self, key, answer):
        """An error answer: nothing was stored, the key is not acknowledged."""
        with self.lock:
            self.uncertain.discard(key)
            code = answer.get("error", {}).get("code", "?")
            self.errors[code] += 1
            if len(self.error_examples) < 5:
                self.error_examples.append(answer)


class Gate:
    """Lets emitters run, or holds them and waits until none is mid-batch."""

    def __init__(self):
        self.cond = threading.Condition()
        self.paused = True
        self.busy = 0
        self.stopped = False

    def enter(self):
        with self.cond:
            while self.paused and not self.stopped:
                self.cond.wait()
            if self.stopped:
                return False
            self.busy += 1
            return True

    def leave(self):
        with self.cond:
            self.busy -= 1
            self.cond.notify_all()

    def pause(self):
        with self.cond:
            self.paused = True
            while self.busy > 0:
                self.cond.wait()

    def resume(self):
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    def stop(self):
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


class Emitter(threading.Thread):
    def __init__(self, number, socket_path, ledger, gate, rate, batch, run_id, generation):
        super().__init__(name=f"emitter-{number}", daemon=True)
        self.generation = generation  # which daemon start is current
        self.client_generation = None
        self.number = number
        self.socket_path = socket_path
        self.ledger = ledger
        self.gate = gate
        self.interval = batch / rate  # seconds per batch for this connection
        self.batch = batch
        self.run_id = run_id
        self.sequence = 0
        self.client = None
        self.batches = 0
        self.cut_off = 0  # batches cut short by a dead connection
        self.failure = None

    def drop(self):
        if self.client is not None:
            self.client.close()
            self.client = None

    def run(self):
        next_at = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if next_at > now:
                    time.sleep(next_at - now)
                if not self.gate.enter():
                    break
                try:
                    sent = self.one_batch()
                finally:
                    self.gate.leave()
                now = time.monotonic()
                if sent:
                    next_at = max(next_at + self.interval, now - 1.0)
                else:
                    next_at = now + 0.05  # daemon not there: retry soon
        except Exception as error:  # a bug in the soak itself: report it
            self.failure = f"{type(error).__name__}: {error}"
            log(f"emitter {self.number} stopped: {self.failure}")
        finally:
            self.drop()

    def one_batch(self):
        if self.client is not None and self.client_generation != self.generation():
            self.drop()  # a connection to a daemon killed while this thread was idle
        if self.client is None:
            try:
                self.client_generation = self.generation()
                self.client = Client(self.socket_path)
            except OSError:
                return False
        keys = []
        for _ in range(self.batch):
            self.sequence += 1
            keys.append(f"soak-{self.run_id}-c{self.number}-{self.sequence}")
        requests = [emit_request(k, i) for i, k in enumerate(keys)]
        self.ledger.sent(keys)
        answered = 0
        try:
            self.client.send(requests)
            for i, key in enumerate(keys):
                answer = self.client.read()
                if answer.get("id") != i:
                    raise RuntimeError(f"answer out of order: expected id {i}, got {answer}")
                answered += 1
                if answer.get("ok"):
                    self.ledger.ack(key, answer["event_id"], answer["deliveries"])
                else:
                    self.ledger.refused(key, answer)
        except (OSError, ConnectionError, ValueError):
            # Killed mid-flight: the keys not answered stay uncertain.
            self.cut_off += 1
            self.drop()
            return answered > 0
        self.batches += 1
        return True


# -- the soak -----------------------------------------------------------------------


class Check:
    def __init__(self, name):
        self.name = name
        self.failures = []
        self.runs = 0
        self.notes = []

    def ok(self):
        self.runs += 1

    def fail(self, message):
        self.runs += 1
        if len(self.failures) < 20:
            self.failures.append(message)
        log(f"FAIL [{self.name}] {message}")

    def note(self, message):
        if len(self.notes) < 20:
            self.notes.append(message)
        log(f"note [{self.name}] {message}")

    @property
    def passed(self):
        return not self.failures


class Soak:
    def __init__(self, args):
        self.args = args
        self.dir = None
        self.sink = None
        self.daemon = None
        self.daemon_log = None
        self.starts = 0
        self.kills = 0
        self.recoveries = []  # daemon start -> first answer, seconds
        self.outages = []  # SIGKILL -> serving again (offline checks included), seconds
        self.ledger = Ledger()
        self.gate = Gate()
        self.emitters = []
        self.webhooks = []
        self.uncertain_resolved = 0  # unanswered emits re-sent after a restart
        self.uncertain_were_stored = 0  # ... of which the daemon had stored before the kill
        self.posts = None  # counted from the sink's log at the end
        self.duplicates = 0
        self.unexplained_duplicates = 0  # copies with no kill between them
        self.kill_times = []  # wall clock of each SIGKILL
        self.ready_times = []  # wall clock when the restarted daemon answered
        self.resume_delays = []  # restart answered -> the sink's next POST, seconds
        self.max_copies = 0
        self.unknown_posts = 0
        self.final_stats = None
        self.request_log = None  # (outcome, error_class, count) from the daemon's request log
        self.drain_seconds = None
        self.emit_seconds = 0.0
        self.emit_started = None
        self.crashed = None
        self.checks = {
            "restart": Check("restart: the daemon comes back after every SIGKILL"),
            "durable": Check("1 acknowledged events survive (re-emit answers the same event_id, creates nothing)"),
            "counts": Check("2 stats: pending+in_flight+delivered+failed+cancelled = deliveries acknowledged"),
            "integrity": Check("3 database: PRAGMA integrity_check ok, stored counters match the rows"),
            "drain": Check("4 drain: pending 0 and in_flight 0 at the end, all delivered"),
            "sink": Check("5 sink: every acknowledged delivery POSTed at least once"),
        }

    # -- setup ------------------------------------------------------------------

    @property
    def socket_path(self):
        return os.path.join(self.dir, "hookgate.sock")

    @property
    def data_dir(self):
        return os.path.join(self.dir, "data")

    @property
    def db_path(self):
        return os.path.join(self.data_dir, DB_NAME)

    def setup(self):
        parent = self.args.workdir or None
        self.dir = tempfile.mkdtemp(prefix="hookgate-soak-", dir=parent)
        log(f"working directory {self.dir}")
        ca_dir = os.path.join(self.dir, "ca")
        result = subprocess.run(["bash", MAKE_CA, ca_dir], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"make-test-ca.sh failed:\n{result.stdout}{result.stderr}")
        self.ca_dir = ca_dir
        self.start_sink()
        self.daemon_log = open(os.path.join(self.dir, "daemon.log"), "ab")
        self.start_daemon()
        self.wait_ready()
        self.create_webhooks()

    def start_sink(self):
        self.sink_log = os.path.join(self.dir, "sink.jsonl")
        sink_err = open(os.path.join(self.dir, "sink.err"), "ab")
        self.sink = subprocess.Popen(
            [sys.executable, SINK, "--host", "127.0.0.1", "--port", "0",
             "--cert", os.path.join(self.ca_dir, "server.pem"),
             "--key", os.path.join(self.ca_dir, "server.key"), "--log", self.sink_log],
            stdout=subprocess.PIPE, stderr=sink_err, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent(signal.SIGTERM))
        sink_err.close()
        line = self.sink.stdout.readline().decode().strip()
        match = re.fullmatch(r"LISTENING (\d+)", line)
        if not match:
            raise RuntimeError(f"sink did not start (said {line!r}); see {self.dir}/sink.err")
        self.sink.stdout.close()
        self.sink_port = int(match.group(1))
        log(f"sink listening on https://127.0.0.1:{self.sink_port} (pid {self.sink.pid})")

    def start_daemon(self):
        self.starts += 1
        self.daemon_log.write(f"=== soak: start {self.starts} at {time.strftime('%H:%M:%S')} ===\n".encode())
        self.daemon_log.flush()
        command = [self.args.binary, "serve", "--socket", self.socket_path, "--data-dir", self.data_dir,
                   "--allow-destination", "127.0.0.0/8", "--ca-file", os.path.join(self.ca_dir, "ca.pem"),
                   "--retry-schedule", self.args.retry_schedule]
        # Only the HOOKGATE_ variables the soak means: none from the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKGATE_")}
        self.daemon = subprocess.Popen(command, stdout=self.daemon_log, stderr=self.daemon_log,
                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                       preexec_fn=_die_with_parent(signal.SIGKILL))
        self.daemon_started_at = time.monotonic()

    def wait_ready(self, timeout=60.0):
        """Pings until the daemon answers; returns the seconds since it was started."""
        deadline = self.daemon_started_at + timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with status {self.daemon.returncode} while starting; "
                                   f"see {self.dir}/daemon.log:\n{self.daemon_log_tail()}")
            try:
                client = Client(self.socket_path, timeout=5.0)
                try:
                    if client.call({"cmd": "ping"}).get("ok"):
                        return time.monotonic() - self.daemon_started_at
                finally:
                    client.close()
            except (OSError, ConnectionError, ValueError) as error:
                last_error = error
            time.sleep(0.02)
        raise RuntimeError(f"the daemon did not answer within {timeout:.0f} s ({last_error}); "
                           f"see {self.dir}/daemon.log:\n{self.daemon_log_tail()}")

    def daemon_log_tail(self, lines=15):
        try:
            with open(os.path.join(self.dir, "daemon.log"), "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def create_webhooks(self):
        client = Client(self.socket_path)
        try:
            for n in range(self.args.webhooks):
                answer = client.call({
                    "cmd": "create_webhook", "name": f"soak {n + 1}",
                    "url": f"https://127.0.0.1:{self.sink_port}/status/204?hook={n + 1}",
                    "filter": {"event_type": ["SMS_STATUS"]}, "rate_limit": self.args.rate_limit})
                if not answer.get("ok"):
                    raise RuntimeError(f"create_webhook failed: {answer}")
                self.webhooks.append(answer["webhook"]["id"])
        finally:
            client.close()
        log(f"{len(self.webhooks)} webhooks, rate_limit {self.args.rate_limit} each")

    # -- checks -------------------------------------------------------------------

    def offline_db_check(self):
        """Between SIGKILL and restart: the database exactly as the crash left it."""
        check = self.checks["integrity"]
        try:
            db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
            try:
                result = [r[0] for r in db.execute("PRAGMA integrity_check")]
                if result != ["ok"]:
                    check.fail(f"after kill {self.kills}: integrity_check says {result[:10]}")
                else:
                    check.ok()
                db.execute("BEGIN")  # one snapshot for the comparisons below
                rows = dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
                stored = dict(db.execute(
                    "SELECT state, SUM(count) FROM delivery_counts GROUP BY state").fetchall())
                events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                counter = db.execute("SELECT value FROM counters WHERE name = 'events_accepted'").fetchone()[0]
                event_ids = {r[0] for r in db.execute("SELECT id FROM events")}
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as error:
            check.fail(f"after kill {self.kills}: cannot read the database: {error}")
            return
        rows = {k: v for k, v in rows.items() if v}
        stored = {k: v for k, v in stored.items() if v}
        if rows != stored:
            check.fail(f"after kill {self.kills}: delivery_counts {stored} != deliveries rows by state {rows}")
        if events != counter:
            check.fail(f"after kill {self.kills}: counters.events_accepted {counter} != {events} rows in events")
        # Every acknowledged event must be in the crash image (check 1, on the raw file).
        with self.ledger.lock:
            acked = list(self.ledger.acked.values())
            uncertain = len(self.ledger.uncertain)
            acked_deliveries = self.ledger.deliveries
        missing = [e for e, _ in acked if e not in event_ids]
        durable = self.checks["durable"]
        if missing:
            durable.fail(f"after kill {self.kills}: {len(missing)} of {len(acked)} acknowledged events are not "
                         f"in the database file, e.g. {missing[:3]}")
        else:
            durable.ok()
        total_rows = sum(rows.values())
        extra = total_rows - acked_deliveries
        if extra < 0 or extra > uncertain * max(1, len(self.webhooks)):
            self.checks["counts"].fail(
                f"after kill {self.kills}: {total_rows} delivery rows on disk, {acked_deliveries} acknowledged, "
                f"{uncertain} emits unanswered")
        log(f"  offline: integrity ok={result == ['ok']}, {events} events, delivery rows {rows}, "
            f"{uncertain} emits unanswered at the kill")

    def online_integrity(self, when):
        check = self.checks["integrity"]
        started = time.monotonic()
        try:
            db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
            try:
                result = [r[0] for r in db.execute("PRAGMA integrity_check")]
            finally:
                db.close()
        except sqlite3.Error as error:
            check.fail(f"{when}: cannot run integrity_check while the daemon runs: {error}")
            return
        if result != ["ok"]:
            check.fail(f"{when}: integrity_check (daemon running) says {result[:10]}")
        else:
            check.ok()
        log(f"  integrity_check with the daemon running: {result[0] if len(result) == 1 else result[:3]} "
            f"({time.monotonic() - started:.1f} s)")

    def resolve_uncertain(self, client):
        """Re-sends every emit whose answer never came, under its key: either the daemon
        stored it before the kill (same event_id back, nothing new), or it did not (stored
        now). Either way it is acknowledged afterwards, and the stored events are exactly
        the acknowledged ones."""
        with self.ledger.lock:
            keys = sorted(self.ledger.uncertain)
        if not keys:
            return
        before = stats(client)["events_accepted"]
        answers = client.pipeline([emit_request(k, i) for i, k in enumerate(keys)])
        for key, answer in zip(keys, answers):
            if answer.get("ok"):
                self.ledger.ack(key, answer["event_id"], answer["deliveries"])
            else:
                self.ledger.refused(key, answer)
        created = stats(client)["events_accepted"] - before
        self.uncertain_resolved += len(keys)
        self.uncertain_were_stored += len(keys) - created
        log(f"  {len(keys)} unanswered emits re-sent: {len(keys) - created} had been stored before the kill, "
            f"{created} had not")

    def check_durable(self, client, when, sample):
        check = self.checks["durable"]
        with self.ledger.lock:
            items = list(self.ledger.acked.items())
        if sample is not None and len(items) > sample:
            items = random.sample(items, sample)
        if not items:
            return
        before = stats(client)
        answers = client.pipeline([emit_request(k, i) for i, (k, _) in enumerate(items)])
        after = stats(client)
        bad = []
        for (key, (event_id, deliveries)), answer in zip(items, answers):
            if not answer.get("ok") or answer.get("event_id") != event_id or answer.get("deliveries") != deliveries:
                bad.append(f"{key}: acknowledged {event_id}/{deliveries}, re-emit answered {answer}")
        if bad:
            check.fail(f"{when}: {len(bad)} of {len(items)} re-emits differ, e.g. {bad[:3]}")
        elif after["events_accepted"] != before["events_accepted"] or stats_total(after) != stats_total(before):
            check.fail(f"{when}: re-emitting {len(items)} known keys changed events_accepted "
                       f"{before['events_accepted']} -> {after['events_accepted']}, deliveries "
                       f"{stats_total(before)} -> {stats_total(after)}")
        else:
            check.ok()
        log(f"  re-emitted {len(items)} acknowledged keys: {'all the same' if not bad else f'{len(bad)} differ'}")

    def check_counts(self, client, when):
        check = self.checks["counts"]
        with self.ledger.lock:
            expected = self.ledger.deliveries
            events = len(self.ledger.acked)
        readings = []
        for attempt in range(6):
            answer = stats(client)
            readings.append(answer)
            if stats_total(answer) == expected and answer["events_accepted"] == events:
                break
            time.sleep(0.2)
        last = readings[-1]
        if stats_total(last) != expected or last["events_accepted"] != events:
            check.fail(f"{when}: stats {last['deliveries']} sum to {stats_total(last)}, events_accepted "
                       f"{last['events_accepted']}; acknowledged {expected} deliveries of {events} events")
        else:
            check.ok()
            if len(readings) > 1:
                first = readings[0]
                check.note(f"{when}: first stats reading was off ({first['deliveries']} sum "
                           f"{stats_total(first)}, events_accepted {first['events_accepted']}), then right")
        d = last["deliveries"]
        log(f"  stats: {events} events, deliveries pending {d['pending']} in_flight {d['in_flight']} "
            f"delivered {d['delivered']} failed {d['failed']} cancelled {d['cancelled']} "
            f"(sum {stats_total(last)}, acknowledged {expected})")

    def checks_while_paused(self, when, sample):
        client = Client(self.socket_path, timeout=60.0)
        try:
            self.resolve_uncertain(client)
            self.check_durable(client, when, sample)
            self.check_counts(client, when)
        finally:
            client.close()
        self.online_integrity(when)

    # -- kill and restart -------------------------------------------------------

    def kill_and_restart(self):
        self.kills += 1
        killed_at = time.monotonic()
        with self.ledger.lock:
            acked_now = len(self.ledger.acked)
        os.kill(self.daemon.pid, signal.SIGKILL)
        self.kill_times.append(time.time())
        self.daemon.wait()
        self.gate.pause()  # the emitters notice the dead connection and stop
        log(f"kill {self.kills}: SIGKILL with {acked_now} events acknowledged so far")
        self.offline_db_check()
        self.start_daemon()
        try:
            recovery = self.wait_ready()
        except RuntimeError as error:
            self.checks["restart"].fail(f"after kill {self.kills}: {error}")
            raise
        self.checks["restart"].ok()
        self.ready_times.append(time.time())
        self.recoveries.append(recovery)
        self.outages.append(time.monotonic() - killed_at)
        log(f"  restarted: answering {recovery:.2f} s after start, {self.outages[-1]:.2f} s after the kill")
        self.checks_while_paused(f"after kill {self.kills}", self.args.sample)
        self.gate.resume()

    # -- the end ----------------------------------------------------------------

    def drain(self):
        check = self.checks["drain"]
        client = Client(self.socket_path)
        started = time.monotonic()
        try:
            while True:
                answer = stats(client)
                d = answer["deliveries"]
                if d["pending"] == 0 and d["in_flight"] == 0:
                    self.drain_seconds = time.monotonic() - started
                    break
                if time.monotonic() - started > self.args.drain_timeout:
                    check.fail(f"after {self.args.drain_timeout:.0f} s still pending {d['pending']}, "
                               f"in_flight {d['in_flight']}")
                    break
                time.sleep(1.0)
            self.final_stats = stats(client)
        finally:
            client.close()
        d = self.final_stats["deliveries"]
        with self.ledger.lock:
            expected = self.ledger.deliveries
        if self.drain_seconds is not None:
            log(f"drained in {self.drain_seconds:.1f} s: {d}")
            if d["delivered"] != expected or d["failed"] or d["cancelled"]:
                check.fail(f"after the drain {d}: expected all {expected} delivered (the sink answers 204)")
            else:
                check.ok()

    def check_sink(self):
        check = self.checks["sink"]
        copies = collections.Counter()
        # webhook-id -> (when the sink logged it, the attempt's webhook-timestamp) of its
        # first POST, and of every POST when there are several.
        first_at = {}
        repeats = collections.defaultdict(list)
        ready = sorted(self.ready_times)
        next_post_after = [None] * len(ready)
        bad_lines = 0
        self.posts = 0
        with open(self.sink_log, "rb") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    bad_lines += 1
                    continue
                self.posts += 1
                headers = record.get("headers", {})
                message_id = headers.get("webhook-id")
                at = record.get("at", 0.0)
                try:
                    stamp = int(headers.get("webhook-timestamp", ""))
                except ValueError:
                    stamp = int(at)
                copies[message_id] += 1
                if message_id in first_at:
                    if message_id not in repeats:
                        repeats[message_id].append(first_at[message_id])
                    repeats[message_id].append((at, stamp))
                else:
                    first_at[message_id] = (at, stamp)
                i = bisect.bisect_right(ready, at) - 1  # the last restart before this POST
                if i >= 0 and (next_post_after[i] is None or at < next_post_after[i]):
                    next_post_after[i] = at
        for i in range(len(ready) - 2, -1, -1):  # no POST before the next restart: take the later one
            if next_post_after[i] is None:
                next_post_after[i] = next_post_after[i + 1]
        self.resume_delays = [n - t for n, t in zip(next_post_after, ready) if n is not None]
        # A copy is explained by a kill between it and the copy before it (the attempt was
        # on the wire, or its outcome not yet stored, when the daemon died). The earlier
        # copy was made at its webhook-timestamp (whole seconds, by the daemon's clock): a
        # busy sink may log a request sent before a kill only after it.
        unexplained = []
        for message_id, times in repeats.items():
            times.sort()
            for (_, made), (later, _) in zip(times, times[1:]):
                if not any(made <= k <= later for k in self.kill_times):
                    self.unexplained_duplicates += 1
                    if len(unexplained) < 3:
                        unexplained.append(f"{message_id} made at {made}, again at {later:.3f}")
        if unexplained:
            check.note(f"{self.unexplained_duplicates} duplicate POSTs had no kill between them and the "
                       f"copy before, e.g. {unexplained}")
        expected = set()
        with self.ledger.lock:
            acked = list(self.ledger.acked.values())
        odd_counts = 0
        for event_id, deliveries in acked:
            if deliveries != len(self.webhooks):
                odd_counts += 1
            for webhook_id in self.webhooks:
                expected.add(f"msg_{event_id}_{webhook_id}")
        missing = [m for m in expected if copies.get(m, 0) == 0]
        self.unknown_posts = sum(n for m, n in copies.items() if m not in expected)
        self.duplicates = sum(n - 1 for m, n in copies.items() if m in expected and n > 1)
        self.max_copies = max(copies.values(), default=0)
        if bad_lines:
            check.note(f"{bad_lines} sink log lines were not JSON")
        if odd_counts:
            check.fail(f"{odd_counts} acknowledged events matched other than {len(self.webhooks)} webhooks")
        if missing:
            check.fail(f"{len(missing)} of {len(expected)} acknowledged deliveries never reached the sink, "
                       f"e.g. {missing[:3]}")
        else:
            check.ok()
        if self.unknown_posts:
            check.note(f"{self.unknown_posts} POSTs carried a webhook-id of no acknowledged event")
        log(f"sink: {self.posts} POSTs for {len(expected)} acknowledged deliveries, {len(missing)} missing, "
            f"{self.duplicates} duplicates (most copies of one: {self.max_copies})")

    def finish(self):
        self.gate.pause()
        self.gate.stop()
        self.emit_seconds = time.monotonic() - self.emit_started
        with self.ledger.lock:
            if self.ledger.errors:
                self.checks["durable"].note(
                    f"the daemon refused {sum(self.ledger.errors.values())} valid emits "
                    f"({dict(self.ledger.errors)}), e.g. {self.ledger.error_examples[:2]}")
        log("emitting stopped; final checks on every acknowledged event")
        self.checks_while_paused("at the end", None)
        self.drain()
        # Graceful stop, then the database file once more with nothing running.
        stop_process(self.daemon, signal.SIGTERM, grace=30.0)
        if self.daemon.returncode not in (0, None):
            self.checks["restart"].note(f"SIGTERM at the end: exit status {self.daemon.returncode}")
        check = self.checks["integrity"]
        try:
            db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
            try:
                result = [r[0] for r in db.execute("PRAGMA integrity_check")]
            finally:
                db.close()
            if result != ["ok"]:
                check.fail(f"after the final stop: integrity_check says {result[:10]}")
            else:
                check.ok()
            db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
            try:
                self.request_log = db.execute(
                    "SELECT outcome, COALESCE(error_class, ''), COUNT(*) FROM requests GROUP BY 1, 2 "
                    "ORDER BY 3 DESC").fetchall()
            finally:
                db.close()
        except sqlite3.Error as error:
            check.fail(f"after the final stop: cannot read the database: {error}")
        self.check_sink()

    # -- main loop --------------------------------------------------------------

    def run(self):
        args = self.args
        self.setup()
        run_id = f"{int(time.time())}-{os.getpid()}"
        per_connection = args.rate / args.connections
        for n in range(args.connections):
            emitter = Emitter(n + 1, self.socket_path, self.ledger, self.gate, per_connection, args.batch, run_id,
                              lambda: self.starts)
            emitter.start()
            self.emitters.append(emitter)
        self.emit_started = time.monotonic()
        end = self.emit_started + args.minutes * 60.0
        self.gate.resume()
        log(f"emitting ~{args.rate:g} events/s over {args.connections} connections in batches of {args.batch} "
            f"for {args.minutes:g} min; SIGKILL every {args.kill_min:g}-{args.kill_max:g} s")
        next_report = time.monotonic() + 30.0
        while True:
            next_kill = time.monotonic() + random.uniform(args.kill_min, args.kill_max)
            if args.no_kill or next_kill >= end:
                next_kill = None
            stop_at = next_kill if next_kill is not None else end
            while time.monotonic() < stop_at:
                time.sleep(min(0.2, max(0.0, stop_at - time.monotonic())))
                if self.daemon.poll() is not None:
                    raise RuntimeError(f"the daemon exited by itself with status {self.daemon.returncode}; "
                                       f"see {self.dir}/daemon.log:\n{self.daemon_log_tail()}")
                for emitter in self.emitters:
                    if emitter.failure:
                        raise RuntimeError(f"emitter {emitter.number} failed: {emitter.failure}")
                if time.monotonic() >= next_report:
                    next_report += 30.0
                    with self.ledger.lock:
                        log(f"{len(self.ledger.acked)} events acknowledged, {self.kills} kills")
            if next_kill is None:
                break
            self.kill_and_restart()
        self.finish()

    def cleanup(self):
        self.gate.stop()
        stop_process(self.daemon, signal.SIGTERM, grace=10.0)
        stop_process(self.sink, signal.SIGTERM, grace=5.0)
        if self.daemon_log is not None:
            self.daemon_log.close()

    def daemon_log_findings(self):
        """Log lines above info, by message (timestamps dropped), with counts."""
        found = collections.Counter()
        path = os.path.join(self.dir, "daemon.log") if self.dir else None
        if not path or not os.path.exists(path):
            return found
        with open(path, "rb") as f:
            for raw in f:
                line = raw.decode(errors="replace").rstrip("\n")
                match = re.match(r"^\S+ (trace|debug|info|notice|warning|error|critical) (.*)$", line)
                if match and match.group(1) in ("info", "debug", "trace"):
                    continue
                if line.startswith("=== soak:"):
                    continue
                text = match.group(1) + " " + match.group(2) if match else line
                found[re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<uuid>", text)] += 1
        return found

    def summary(self, interrupted=None):
        args = self.args
        with self.ledger.lock:
            events = len(self.ledger.acked)
            deliveries = self.ledger.deliveries
            errors = dict(self.ledger.errors)
            examples = list(self.ledger.error_examples)
        lines = ["", "=" * 78, "hookgate soak summary", "=" * 78]
        lines.append(f"binary                 {args.binary}")
        lines.append(f"minutes run            {self.emit_seconds / 60.0:.2f} (asked {args.minutes:g})")
        lines.append(f"kills (SIGKILL)        {self.kills}")
        lines.append(f"events acknowledged    {events}")
        lines.append(f"deliveries ackn.       {deliveries} ({len(self.webhooks)} webhooks)")
        lines.append(f"unanswered emits       {self.uncertain_resolved} re-sent after restarts "
                     f"({self.uncertain_were_stored} had been stored before the kill)")
        if errors:
            lines.append(f"emit errors            {errors} e.g. {examples[:2]}")
        if self.posts is None:
            lines.append("POSTs received         (not counted: the soak did not reach the end)")
        else:
            lines.append(f"POSTs received         {self.posts}")
            lines.append(f"duplicates             {self.duplicates} (at-least-once; most copies of one delivery: "
                         f"{self.max_copies}; with no kill between the copies: {self.unexplained_duplicates}; "
                         f"POSTs of unknown events: {self.unknown_posts})")
        if self.recoveries:
            lines.append(f"recovery after a kill  max {max(self.recoveries):.2f} s, mean "
                         f"{sum(self.recoveries) / len(self.recoveries):.2f} s (start to first answer); "
                         f"max {max(self.outages):.2f} s kill to serving (with the offline DB check)")
        if self.resume_delays:
            lines.append(f"deliveries resumed     max {max(self.resume_delays):.2f} s after the restarted daemon "
                         f"answered (the sink's next POST)")
        if self.drain_seconds is not None:
            lines.append(f"drain at the end       {self.drain_seconds:.1f} s")
        if self.final_stats:
            lines.append(f"final stats            events_accepted {self.final_stats['events_accepted']}, "
                         f"deliveries {self.final_stats['deliveries']}")
        if self.request_log:
            parts = [f"{n} {outcome}{' (' + error + ')' if error else ''}" for outcome, error, n in self.request_log]
            lines.append(f"daemon's request log   {', '.join(parts)}")
        findings = self.daemon_log_findings()
        if findings:
            lines.append(f"daemon log             {sum(findings.values())} lines above info level:")
            for text, n in findings.most_common(10):
                lines.append(f"  {n:6d} x {text[:200]}")
        lines.append("-" * 78)
        failed = bool(interrupted or self.crashed)
        for check in self.checks.values():
            if check.failures:
                status = "FAIL"
                failed = True
            elif check.runs == 0:
                status = "----"  # never ran (interrupted or no kill)
                if check.name.startswith(("4", "5")) or interrupted:
                    failed = True
            else:
                status = "PASS"
            lines.append(f"{status}  {check.name} ({check.runs} checks)")
            for message in check.failures[:5]:
                lines.append(f"        {message[:300]}")
            for message in check.notes[:5]:
                lines.append(f"        note: {message[:300]}")
        if interrupted:
            lines.append(f"INTERRUPTED ({interrupted})")
        if self.crashed:
            lines.append(f"ERROR: the soak stopped early: {self.crashed[:1000]}")
        lines.append(f"RESULT: {'FAIL' if failed else 'PASS'}")
        lines.append(f"files: {self.dir}{' (kept)' if (failed or args.keep) else ' (removed)'}")
        print("\n".join(lines), flush=True)
        return failed


def default_binary():
    for flavour in ("release", "debug"):
        path = os.path.join(REPO, ".build", flavour, "hookgate")
        if os.path.exists(path):
            return path
    return os.path.join(REPO, ".build", "debug", "hookgate")


def main():
    parser = argparse.ArgumentParser(description="hookgate crash soak: emit, SIGKILL, restart, check.")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to emit and kill (default 10)")
    parser.add_argument("--binary", default=None,
                        help="hookgate binary (default .build/release/hookgate if it exists, else .build/debug/hookgate)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="events per second, all connections together (default 100)")
    parser.add_argument("--connections", type=int, default=2, help="emitting connections (default 2)")
    parser.add_argument("--batch", type=int, default=10, help="emits pipelined per batch (default 10)")
    parser.add_argument("--webhooks", type=int, default=3, help="webhooks, all matching every event (default 3)")
    parser.add_argument("--rate-limit", type=int, default=500, help="each webhook's rate_limit (default 500)")
    parser.add_argument("--kill-min", type=float, default=5.0, help="shortest time between kills, s (default 5)")
    parser.add_argument("--kill-max", type=float, default=30.0, help="longest time between kills, s (default 30)")
    parser.add_argument("--no-kill", action="store_true", help="never kill (a baseline run)")
    parser.add_argument("--sample", type=int, default=300,
                        help="acknowledged keys re-emitted after each restart (default 300; all at the end)")
    parser.add_argument("--retry-schedule", default="1s,1s,2s,5s,10s,30s,60s",
                        help="the daemon's --retry-schedule (default 1s,1s,2s,5s,10s,30s,60s)")
    parser.add_argument("--drain-timeout", type=float, default=300.0,
                        help="seconds to wait at the end for pending and in_flight to reach 0 (default 300)")
    parser.add_argument("--workdir", default=None, help="parent of the temporary directory (default $TMPDIR or /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory even when all passes")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the kill times and samples")
    args = parser.parse_args()
    if args.binary is None:
        args.binary = default_binary()
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        parser.error(f"no executable hookgate at {args.binary} (build it, or pass --binary PATH)")
    if args.minutes <= 0 or args.rate <= 0 or args.connections < 1 or args.batch < 1 or args.webhooks < 1:
        parser.error("--minutes, --rate, --connections, --batch and --webhooks must be positive")
    if not 0 < args.kill_min <= args.kill_max:
        parser.error("need 0 < --kill-min <= --kill-max")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)

    # SIGINT explicitly too: a shell starting the soak in the background sets it to
    # ignored, and Python then installs no KeyboardInterrupt handler.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    soak = Soak(args)
    interrupted = None
    crashed = None
    log(f"seed {seed}, binary {args.binary}")
    try:
        soak.run()
    except (KeyboardInterrupt, Interrupted) as error:
        interrupted = str(error) or "SIGINT"
        log(f"interrupted ({interrupted}): stopping everything")
    except Exception as error:
        crashed = f"{type(error).__name__}: {error}"
        log(f"stopped: {crashed}")
        soak.crashed = crashed
    finally:
        # Ignore further Ctrl-C while cleaning up, so nothing is left running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        soak.cleanup()
    if soak.emit_started is not None and not soak.emit_seconds:
        soak.emit_seconds = time.monotonic() - soak.emit_started
    failed = soak.summary(interrupted)
    if soak.dir and not failed and not args.keep:
        shutil.rmtree(soak.dir, ignore_errors=True)
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
