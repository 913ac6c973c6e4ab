#!/usr/bin/env python3
"""Checks the wire protocol against a real hookgate binary.

    python3 proto-spec/check.py PATH_TO_HOOKGATE_BINARY

1. Every schema in proto-spec/schemas/ must be a valid JSON Schema (draft 2020-12),
   and every "$ref" in it must resolve.
2. Every proto-spec/vectors/*.jsonl file is replayed, in order, over one connection to
   a fresh daemon (its own temporary socket and data directory, standalone, default
   flags), as vectors/README.md describes. Each real response must match the vector's
   expected response, and must validate against <cmd>.response.json; a request whose
   real response is ok:true must validate against <cmd>.request.json. A request without
   a cmd that has schemas is not schema-checked, except that an ok:false answer to it
   must still be a valid common.json#/$defs/errorResponse.
3. After each file the daemon gets SIGTERM and must exit 0.

Ends with the line "check.py: N passed, M failed" (N and M count vector lines) and
exits 1 when anything failed, or when there are no vectors at all.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError, best_match
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource, Unresolvable
    from referencing.jsonschema import DRAFT202012
except ImportError as error:
    sys.exit(
        "check.py: the Python packages 'jsonschema' (4.18 or later) and 'referencing' are required "
        f"({error}); install them with: python3 -m pip install 'jsonschema>=4.18'"
    )

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
VECTORS = HERE / "vectors"

START_TIMEOUT = 15.0  # seconds for the daemon to accept connections
RESPONSE_TIMEOUT = 15.0  # seconds for one response line
EXIT_TIMEOUT = 30.0  # seconds for the daemon to exit after SIGTERM (default grace is 10 s)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]{32}$")
CAPTURE_RE = re.compile(r"^<capture:([A-Za-z_][A-Za-z0-9_]*)>$")
REFERENCE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# How long a vector marked "eventually" is retried until it matches.
EVENTUALLY_SECONDS = 10

def clip(text, limit=2000):
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- schemas


class Schemas:
    """The schema files, a registry resolving the relative "common.json#/..." refs from
    the schemas directory, and a validator per file."""

    def __init__(self, directory):
        self.directory = directory
        self.problems = []  # (file, message)
        self.documents = {}
        for path in sorted(directory.glob("*.json")):
            try:
                self.documents[path.name] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                self.problems.append((path.name, f"not readable JSON: {error}"))
        self.registry = Registry(retrieve=self._retrieve).with_resources(
            (name, Resource.from_contents(document, default_specification=DRAFT202012))
            for name, document in self.documents.items()
        )
        self.validators = {}
        self.broken = {name: message for name, message in self.problems}
        for name, document in self.documents.items():
            try:
                Draft202012Validator.check_schema(document)
            except SchemaError as error:
                self._broken(name, f"not a valid draft 2020-12 schema: {error.message} (at {list(error.absolute_path)})")
                continue
            unresolved = self._unresolved_refs(name, document)
            if unresolved:
                self._broken(name, "unresolvable $ref: " + "; ".join(unresolved))
                continue
            self.validators[name] = Draft202012Validator(document, registry=self.registry)

    def _broken(self, name, message):
        self.problems.append((name, message))
        self.broken[name] = message

    def _retrieve(self, uri):
        """A relative ref such as "common.json" (or any URI ending in a file of this
        directory) is the file of that name in the schemas directory."""
        name = uri.rsplit("/", 1)[-1]
        path = self.directory / name
        if not name or not path.is_file():
            raise NoSuchResource(ref=uri)
        return Resource.from_contents(json.loads(path.read_text(encoding="utf-8")), default_specification=DRAFT202012)

    def _unresolved_refs(self, name, document):
        resolver = self.registry.resolver(base_uri=name)
        problems = []

        def walk(node):
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    try:
                        resolver.lookup(ref)
                    except (Unresolvable, NoSuchResource) as error:
                        problems.append(f"{ref} ({type(error).__name__})")
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(document)
        return problems

    def has_command(self, cmd):
        return isinstance(cmd, str) and (
            f"{cmd}.request.json" in self.documents or f"{cmd}.response.json" in self.documents
            or f"{cmd}.request.json" in self.broken or f"{cmd}.response.json" in self.broken
        )

    def _branch_error(self, name, instance):
        """A response schema is oneOf(success, error); its `ok` says which branch the
        response meant, and that branch's error explains the failure best."""
        if not (name.endswith(".response.json") and isinstance(instance, dict)):
            return None
        if instance.get("ok") is True and "success" in self.documents[name].get("$defs", {}):
            pointer = f"{name}#/$defs/success"
        elif instance.get("ok") is False:
            pointer = "common.json#/$defs/errorResponse"
        else:
            return None
        validator = Draft202012Validator({"$ref": pointer}, registry=self.registry)
        error = best_match(validator.iter_errors(instance))
        return None if error is None else (error, pointer)

    def validate(self, name, instance, pointer=None):
        """None when valid; otherwise a description of the first (best) error."""
        if name in self.broken:
            return f"{name}: schema is broken: {self.broken[name]}"
        if name not in self.validators:
            return f"{name}: no such schema file"
        validator = self.validators[name]
        if pointer is not None:
            schema = {"$ref": f"{name}#{pointer}"}
            validator = Draft202012Validator(schema, registry=self.registry)
            name = f"{name}#{pointer}"
        error = best_match(validator.iter_errors(instance))
        if error is None:
            return None
        branch = self._branch_error(name, instance)
        if branch is not None:
            error, name = branch
        where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(root)"
        return f"{name}: at {where}: {clip(error.message, 600)}"


# --------------------------------------------------------------------------- vectors


class VectorError(Exception):
    """A vector line that cannot be run as written."""


def substitute(value, captures):
    """Replaces "${NAME}" in every string of a request. A string that is exactly
    "${NAME}" becomes the captured value itself (keeping its JSON type); "${NAME}"
    inside a longer string is replaced by the captured string."""
    if isinstance(value, str):
        whole = REFERENCE_RE.fullmatch(value)
        if whole:
            return lookup(captures, whole.group(1))

        def part(match):
            found = lookup(captures, match.group(1))
            return found if isinstance(found, str) else compact(found)

        return REFERENCE_RE.sub(part, value)
    if isinstance(value, list):
        return [substitute(item, captures) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, captures) for key, item in value.items()}
    return value


def lookup(captures, name):
    if name not in captures:
        raise VectorError(f'"${{{name}}}" used before any "<capture:{name}>"')
    return captures[name]


def same_json(a, b):
    """JSON equality: true, 1 and 1.0 are not confused; 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return False


def path_join(path, key):
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


def match(expected, actual, captures, pending, path=""):
    """None when `actual` matches `expected` under the placeholder rules; otherwise the
    first difference. New captures go to `pending`."""
    where = path or "(root)"
    if isinstance(expected, str):
        if expected == "<any>":
            return None
        if expected == "<string>":
            return None if isinstance(actual, str) else f"{where}: expected a string, got {compact(actual)}"
        if expected == "<integer>":
            ok = isinstance(actual, int) and not isinstance(actual, bool)
            return None if ok else f"{where}: expected an integer, got {compact(actual)}"
        for placeholder, pattern, kind in (
            ("<uuid>", UUID_RE, "a lower-case UUID"),
            ("<timestamp>", TIMESTAMP_RE, "an RFC 3339 UTC timestamp with microseconds"),
            ("<secret>", SECRET_RE, "a whsec_ secret"),
        ):
            if expected == placeholder:
                ok = isinstance(actual, str) and pattern.fullmatch(actual)
                return None if ok else f"{where}: expected {kind}, got {compact(actual)}"
        capture = CAPTURE_RE.fullmatch(expected)
        if capture:
            pending[capture.group(1)] = actual
            return None
        known = {**captures, **pending}
        if REFERENCE_RE.search(expected):
            wanted = substitute(expected, known)
            return None if same_json(wanted, actual) else f"{where}: expected {compact(wanted)}, got {compact(actual)}"
        return None if same_json(expected, actual) else f"{where}: expected {compact(expected)}, got {compact(actual)}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {compact(actual)}"
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if extra:
                parts.append("unexpected " + ", ".join(extra))
            return f"{where}: keys differ: " + "; ".join(parts)
        for key in expected:
            problem = match(expected[key], actual[key], captures, pending, path_join(path, key))
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where}: expected an array, got {compact(actual)}"
        if len(expected) != len(actual):
            return f"{where}: expected {len(expected)} items, got {len(actual)}"
        for index, (e, a) in enumerate(zip(expected, actual)):
            problem = match(e, a, captures, pending, path_join(path, index))
            if problem:
                return problem
        return None
    return None if same_json(expected, actual) else f"{where}: expected {compact(expected)}, got {compact(actual)}"


def no_duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def parse_vector(text):
    vector = json.loads(text, object_pairs_hook=no_duplicate_keys)
    if not isinstance(vector, dict):
        raise VectorError("a vector line must be a JSON object")
    unknown = set(vector) - {"name", "request", "request_raw", "request_hex", "response", "eventually"}
    if unknown:
        raise VectorError("unknown keys " + ", ".join(sorted(unknown)))
    if not isinstance(vector.get("name"), str) or not vector["name"]:
        raise VectorError('"name" must be a non-empty string')
    kinds = [k for k in ("request", "request_raw", "request_hex") if k in vector]
    if len(kinds) != 1:
        raise VectorError('exactly one of "request", "request_raw", "request_hex" is required')
    if "request" in vector and not isinstance(vector["request"], dict):
        raise VectorError('"request" must be an object (use "request_raw" for other lines)')
    if "request_raw" in vector and not isinstance(vector["request_raw"], str):
        raise VectorError('"request_raw" must be a string')
    if "request_hex" in vector:
        if not isinstance(vector["request_hex"], str):
            raise VectorError('"request_hex" must be a string of hex digits')
        try:
            bytes.fromhex(vector["request_hex"])
        except ValueError as error:
            raise VectorError(f'"request_hex" is not hex: {error}') from None
    if "response" not in vector:
        raise VectorError('"response" is required')
    if "eventually" in vector and vector["eventually"] is not True:
        raise VectorError('"eventually" must be true when present')
    return vector


def request_line(vector, captures):
    """The bytes to send (without the newline) and the request as an object, when the
    line is one (for its cmd and for request-schema validation)."""
    if "request" in vector:
        request = substitute(vector["request"], captures)
        return compact(request).encode("utf-8"), request
    if "request_raw" in vector:
        raw = substitute(vector["request_raw"], captures).encode("utf-8")
    else:
        raw = bytes.fromhex(vector["request_hex"])
    if b"\n" in raw:
        raise VectorError("a raw request must not contain a newline")
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        parsed = None
    return raw, parsed if isinstance(parsed, dict) else None


# --------------------------------------------------------------------------- daemon


class Daemon:
    def __init__(self, binary):
        self.binary = binary
        self.directory = Path(tempfile.mkdtemp(prefix="hookgate-check-", dir=self._temp_root()))
        self.socket_path = str(self.directory / "s.sock")
        self.data_dir = str(self.directory / "data")
        self.log_path = self.directory / "daemon.log"
        self.process = None
        self.log = None

    @staticmethod
    def _temp_root():
        root = tempfile.gettempdir()
        # A Unix socket path holds at most 107 bytes.
        return root if len(root) < 60 else "/tmp"

    def start(self):
        environment = {
            key: value
            for key, value in os.environ.items()
            # Standalone, default flags: no socket activation, no systemd notification,
            # no HOOKGATE_* flag from the caller's environment.
            if not key.startswith(("HOOKGATE_", "LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_"))
        }
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [self.binary, "--socket", self.socket_path, "--data-dir", self.data_dir],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited with status {self.process.returncode} before accepting connections")
            if os.path.exists(self.socket_path):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(self.socket_path)
                    return
                except OSError:
                    pass
                finally:
                    probe.close()
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not accept connections on {self.socket_path} within {START_TIMEOUT:.0f} s")

    def connect(self):
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(RESPONSE_TIMEOUT)
        connection.connect(self.socket_path)
        return connection

    def stop(self):
        """SIGTERM, then wait; the problem (or None) with how it exited."""
        if self.process is None:
            if self.log:
                self.log.close()
            return None
        problem = None
        if self.process.poll() is not None:
            problem = f"daemon had already exited (status {self.process.returncode}) before SIGTERM"
        else:
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout=EXIT_TIMEOUT)
                if status != 0:
                    problem = f"daemon exited with status {status} after SIGTERM (expected 0)"
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                problem = f"daemon did not exit within {EXIT_TIMEOUT:.0f} s of SIGTERM; killed"
        self.log.close()
        return problem

    def log_tail(self, lines=12):
        """The end of the daemon's output, indented, for a report."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "  (no daemon log)"
        tail = text.splitlines()[-lines:]
        return "\n".join("  | " + line for line in tail) if tail else "  (the daemon wrote nothing)"

    def cleanup(self):
        shutil.rmtree(self.directory, ignore_errors=True)


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.closed = False

    def send(self, line):
        self.sock.sendall(line + b"\n")

    def read_line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                raise ConnectionError("the daemon closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line


# --------------------------------------------------------------------------- replay


class Failure:
    def __init__(self, file, line, name, reason, expected=None, actual=None, schema_errors=()):
        self.file, self.line, self.name, self.reason = file, line, name, reason
        self.expected, self.actual, self.schema_errors = expected, actual, list(schema_errors)

    def report(self):
        out = [f"FAIL {self.file}:{self.line} {self.name!r}: {self.reason}"]
        if self.expected is not None:
            out.append("  expected: " + clip(self.expected))
        if self.actual is not None:
            out.append("  actual:   " + clip(self.actual))
        for error in self.schema_errors:
            out.append("  schema:   " + error)
        return "\n".join(out)


def replay(path, binary, schemas):
    """Runs one vector file; (passed, failures, file_problems)."""
    relative = os.path.relpath(path, HERE.parent)
    entries = []  # (line number, vector or None, parse problem)
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            entries.append((number, parse_vector(text), None))
        except (ValueError, VectorError) as error:
            entries.append((number, None, f"malformed vector: {error}"))
    passed, failures, problems = 0, [], []
    if not entries:
        return 0, [], [f"{relative}: no vectors"]

    daemon = Daemon(binary)
    started = False
    try:
        try:
            daemon.start()
            connection = Connection(daemon.connect())
            started = True
        except (RuntimeError, OSError) as error:
            problems.append(f"{relative}: daemon not usable: {error}\n{daemon.log_tail()}")
            for number, vector, _ in entries:
                name = vector["name"] if vector else "?"
                failures.append(Failure(relative, number, name, "not run: the daemon was not usable"))
            return 0, failures, problems

        captures = {}
        for number, vector, problem in entries:
            name = vector["name"] if vector else "?"
            if problem:
                failures.append(Failure(relative, number, name, problem))
                continue
            if connection.closed:
                failures.append(Failure(relative, number, name, "not run: the connection was closed earlier"))
                continue
            # "eventually": the answer reflects work the daemon does in the background
            # (a deleted webhook's cancellations): the request is repeated until it
            # matches, for a few seconds.
            deadline = time.monotonic() + (EVENTUALLY_SECONDS if vector.get("eventually") else 0)
            while True:
                try:
                    line, request = request_line(vector, captures)
                    expected = vector["response"]
                    connection.send(line)
                    raw = connection.read_line()
                except VectorError as error:
                    failure = Failure(relative, number, name, f"malformed vector: {error}")
                    break
                except (OSError, ConnectionError) as error:
                    connection.closed = True
                    failure = Failure(relative, number, name, f"no response: {error}")
                    break
                try:
                    actual = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
                except (UnicodeDecodeError, ValueError) as error:
                    failure = Failure(relative, number, name, f"response is not a JSON line: {error}",
                                      actual=raw.decode("utf-8", errors="replace"))
                    break

                failure = None
                pending = {}
                try:
                    difference = match(expected, actual, captures, pending)
                except VectorError as error:
                    difference = f"malformed vector: {error}"
                if difference is None or time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
            if failure:
                failures.append(failure)
                continue

            schema_errors = []
            cmd = request.get("cmd") if isinstance(request, dict) else None
            ok = isinstance(actual, dict) and actual.get("ok") is True
            if schemas.has_command(cmd):
                error = schemas.validate(f"{cmd}.response.json", actual)
                if error:
                    schema_errors.append("response: " + error)
                if ok:
                    error = schemas.validate(f"{cmd}.request.json", request)
                    if error:
                        schema_errors.append("request: " + error)
            elif isinstance(actual, dict) and actual.get("ok") is False:
                error = schemas.validate("common.json", actual, pointer="/$defs/errorResponse")
                if error:
                    schema_errors.append("response: " + error)

            # Captured even when the line fails, so that later lines still run.
            captures.update(pending)
            if difference is None and not schema_errors:
                passed += 1
            else:
                failures.append(
                    Failure(relative, number, name, difference or "schema validation failed",
                            expected=compact(substitute_expected(expected, captures)),
                            actual=raw.decode("utf-8", errors="replace"), schema_errors=schema_errors))
        try:
            connection.sock.close()
        except OSError:
            pass
    finally:
        exit_problem = daemon.stop()
        if exit_problem and started:
            problems.append(f"{relative}: {exit_problem}\n{daemon.log_tail()}")
        daemon.cleanup()
    return passed, failures, problems


def substitute_expected(expected, captures):
    """The expected response with known "${NAME}" shown as their values, for reports."""
    try:
        return substitute(expected, captures)
    except VectorError:
        return expected


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    binary = os.path.abspath(argv[1])
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"check.py: {argv[1]} is not an executable file", file=sys.stderr)
        return 2

    schemas = Schemas(SCHEMAS)
    problems = [f"schema {name}: {message}" for name, message in schemas.problems]
    if not schemas.documents:
        problems.append(f"no schemas in {SCHEMAS}")
    for problem in problems:
        print(f"check.py: {problem}")

    files = sorted(VECTORS.glob("*.jsonl"))
    total_passed, all_failures = 0, []
    for path in files:
        passed, failures, file_problems = replay(path, binary, schemas)
        total_passed += passed
        all_failures.extend(failures)
        for failure in failures:
            print(failure.report())
        for problem in file_problems:
            print(f"check.py: {problem}")
        problems.extend(file_problems)
        print(f"check.py: {os.path.relpath(path, HERE.parent)}: {passed} passed, {len(failures)} failed")

    if total_passed + len(all_failures) == 0:
        print(f"check.py: no vectors found in {VECTORS}")
        problems.append("no vectors")
    print(f"check.py: {total_passed} passed, {len(all_failures)} failed")
    return 1 if all_failures or problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
