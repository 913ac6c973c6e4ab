#!/usr/bin/env bash
# Talking to hookgate with socat: one JSON object per line in, one per line out.
#
#   bash contrib/socat/examples.sh       runs every example below, in order, against a
#                                         running daemon, and prints each answer
#
# Or paste the lines one by one (the SOCK= line first). Needs socat, and python3 to
# pick the new webhook's id out of an answer.
#
# Which socket:
#   - a daemon you started yourself (hookgate serve) listens on
#     $XDG_RUNTIME_DIR/hookgate.sock unless given --socket; that is the default here;
#   - the systemd units (contrib/systemd) listen on /run/hookgate/hookgate.sock:
#       sudo HOOKGATE_SOCKET=/run/hookgate/hookgate.sock bash contrib/socat/examples.sh
#
# How socat behaves here: `echo REQUEST | socat -t5 - UNIX-CONNECT:SOCK` sends the line,
# half-closes its side at the end of input, and prints answers until hookgate has
# answered everything and closes (-t5: give up after 5 s if it does not).
# For an interactive session: socat READLINE UNIX-CONNECT:"$SOCK"   (Ctrl-D to quit).
#
# Nothing here deletes anything but the webhook it creates.

set -euo pipefail

if [ -z "${HOOKGATE_SOCKET:-}" ] && [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    echo "examples.sh: set HOOKGATE_SOCKET to hookgate's socket (XDG_RUNTIME_DIR is not set either)" >&2
    exit 1
fi
SOCK="${HOOKGATE_SOCKET:-$XDG_RUNTIME_DIR/hookgate.sock}"

if ! command -v socat >/dev/null; then
    echo "examples.sh: socat is not installed (apt-get install socat)" >&2
    exit 1
fi
if [ ! -S "$SOCK" ]; then
    echo "examples.sh: no hookgate socket at '$SOCK'; start hookgate, or set HOOKGATE_SOCKET" >&2
    exit 1
fi

step() { printf '\n### %s\n' "$*"; }

# ---------------------------------------------------------------------------------
step "ping: is the daemon there, and which version is it?"
echo '{"cmd":"ping","id":1}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "create_webhook: SMS status and inbound events from one sender, at most 10 deliveries/s"
# The answer holds the webhook, its id and its signing secret (whsec_...): the receiver
# verifies each delivery's webhook-signature header with it (Standard Webhooks).
# The url must be https (plain http only if the daemon runs with --allow-http).
CREATED=$(echo '{"cmd":"create_webhook","id":"create-1","name":"SMS status example","url":"https://example.com/hooks/sms","filter":{"event_type":["SMS_STATUS","SMS_INBOUND"],"sender":["61400000000"]},"rate_limit":10}' | socat -t5 - UNIX-CONNECT:"$SOCK")
echo "$CREATED"

# Keep the new webhook's id for the commands below.
WEBHOOK_ID=$(printf '%s' "$CREATED" | python3 -c 'import json, sys
answer = json.load(sys.stdin)
if not answer.get("ok"):
    sys.exit("create_webhook failed: " + answer["error"]["message"])
print(answer["webhook"]["id"])')
echo "webhook id: $WEBHOOK_ID"
# (without python3: WEBHOOK_ID=$(printf '%s' "$CREATED" | sed -n 's/.*"webhook":{"id":"\([0-9a-f-]*\)".*/\1/p'))

# ---------------------------------------------------------------------------------
step "list_webhooks: the first page, oldest first (no secrets); next_cursor when there is more"
echo '{"cmd":"list_webhooks","id":2,"limit":10}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "get_webhook with include_secret: one webhook, with its secret"
echo '{"cmd":"get_webhook","id":3,"webhook_id":"'"$WEBHOOK_ID"'","include_secret":true}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "update_webhook: a full replace (fields left out, like rate_limit here, go back to their defaults)"
echo '{"cmd":"update_webhook","id":4,"webhook_id":"'"$WEBHOOK_ID"'","name":"SMS status example v2","url":"https://example.com/hooks/sms-v2","filter":{"event_type":["SMS_STATUS"],"status":["DELIVERED","FAILED"]}}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "disable_webhook, then enable_webhook (a disabled webhook gets no new events)"
echo '{"cmd":"disable_webhook","id":5,"webhook_id":"'"$WEBHOOK_ID"'"}' | socat -t5 - UNIX-CONNECT:"$SOCK"
echo '{"cmd":"enable_webhook","id":6,"webhook_id":"'"$WEBHOOK_ID"'"}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "rotate_secret: a new secret; the old one keeps signing beside it for 24 hours"
echo '{"cmd":"rotate_secret","id":7,"webhook_id":"'"$WEBHOOK_ID"'"}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "several requests on one connection: the answers come back in request order"
printf '%s\n' '{"cmd":"ping","id":"a"}' '{"cmd":"get_webhook","id":"b","webhook_id":"'"$WEBHOOK_ID"'"}' '{"cmd":"ping","id":"c"}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "an error: the answer names the field at fault (here rate_limit)"
echo '{"cmd":"create_webhook","id":8,"name":"Too fast","url":"https://example.com/hooks/x","filter":{"event_type":["SMS_STATUS"]},"rate_limit":20000}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "tail_requests for 3 seconds, and emit_event meanwhile: the stream shows the attempt as it is logged (example.com may be unreachable from here: then it is a retrying item)"
echo '{"cmd":"tail_requests","id":12,"webhook_id":"'"$WEBHOOK_ID"'"}' | socat -t3 - UNIX-CONNECT:"$SOCK" &
sleep 0.5
echo '{"cmd":"emit_event","id":11,"event":{"event_type":"SMS_STATUS","status":{"id":"m-1","type":"SMS","sender":"61400000000","recipient":"61411111111","status":"DELIVERED"}}}' | socat -t5 - UNIX-CONNECT:"$SOCK"
wait

# ---------------------------------------------------------------------------------
step "list_requests: the attempts so far, newest first"
echo '{"cmd":"list_requests","id":13,"webhook_id":"'"$WEBHOOK_ID"'","limit":5}' | socat -t5 - UNIX-CONNECT:"$SOCK"

# ---------------------------------------------------------------------------------
step "delete_webhook, then get_webhook answers not_found"
echo '{"cmd":"delete_webhook","id":9,"webhook_id":"'"$WEBHOOK_ID"'"}' | socat -t5 - UNIX-CONNECT:"$SOCK"
echo '{"cmd":"get_webhook","id":10,"webhook_id":"'"$WEBHOOK_ID"'"}' | socat -t5 - UNIX-CONNECT:"$SOCK"
