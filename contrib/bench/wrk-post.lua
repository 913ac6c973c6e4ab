-- wrk script for the delivery benchmark: POSTs the body in $WRK_BODY_FILE with the
-- headers hookgate (and curl-loop) send, dummy values of the real lengths; Accept is
-- libcurl's default, which wrk does not send on its own.
--   WRK_BODY_FILE=body.json wrk -t 2 -c 64 -d 10s -s wrk-post.lua http://127.0.0.1:PORT/hook
-- No request() or response() function: wrk then builds the request once and runs no
-- Lua per request. done() prints one line of figures:
--   wrk-post: R req/s, requests N, errors E, p50 A ms, p99 B ms
local path = os.getenv("WRK_BODY_FILE") or error("WRK_BODY_FILE is not set")
local file = io.open(path, "rb") or error("cannot open " .. path)
wrk.body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "hookgate/0.1.0"
wrk.headers["Accept"] = "*/*"
wrk.headers["webhook-id"] = "msg_3f2c8a9e-6b1d-4e7a-9c3f-2a8b7d6e5f41_9b7e4c2a-1d3f-4a6b-8e5c-7f2d1a9b3c60"
wrk.headers["webhook-timestamp"] = "1745366718"
wrk.headers["webhook-signature"] = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="

function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.status + e.timeout
   io.write(string.format("wrk-post: %.0f req/s, requests %d, errors %d, p50 %.2f ms, p99 %.2f ms\n",
      summary.requests / (summary.duration / 1e6), summary.requests, errors,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
