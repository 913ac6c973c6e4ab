#!/usr/bin/env python3
"""Checks the Standard Webhooks signatures of every request in a sink log.

    python3 contrib/sink/verify_signatures.py FILE whsec_... [whsec_...]

FILE is a log written by contrib/sink/sink.py (one JSON object per line). A request
passes when standardwebhooks.Webhook(secret).verify(body, headers) succeeds for EVERY
secret given: with the old and the new secret during a rotation, both must verify.
The library also checks the timestamp (within 5 minutes of now) and that the body is
JSON. Prints one line per failure, then `verify_signatures: N passed, M failed` as the
last line; exits 0 only if nothing failed and there was at least one request (1
otherwise, 2 on bad usage or an unreadable log).

Needs the `standardwebhooks` package (pip install standardwebhooks) in the Python that
runs this.
"""

import base64
import json
import sys

try:
    import standardwebhooks
except ImportError:
    print("verify_signatures: the standardwebhooks package is missing "
          f"(pip install standardwebhooks) for {sys.executable}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) < 3:
        print("usage: verify_signatures.py FILE whsec_... [whsec_...]", file=sys.stderr)
        return 2
    path, secrets = argv[1], argv[2:]
    try:
        hooks = [(secret, standardwebhooks.Webhook(secret)) for secret in secrets]
    except Exception as error:
        print(f"verify_signatures: bad secret: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as error:
        print(f"verify_signatures: {error}", file=sys.stderr)
        return 2

    passed = failed = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            body = entry["body"]
            headers = entry["headers"]
        except (ValueError, KeyError, TypeError) as error:
            print(f"line {number}: not a sink log entry: {error}")
            failed += 1
            continue
        if "body_base64" in entry:
            body = base64.b64decode(entry["body_base64"])  # not UTF-8: let verify say so
        label = f"line {number}: {entry.get('method')} {entry.get('path')} (webhook-id {headers.get('webhook-id')})"
        problems = []
        for index, (secret, hook) in enumerate(hooks, 1):
            try:
                hook.verify(body, headers)
            except Exception as error:
                problems.append(f"secret #{index}: {type(error).__name__}: {error}")
        if problems:
            failed += 1
            print(f"{label}: " + "; ".join(problems))
        else:
            passed += 1

    print(f"verify_signatures: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
