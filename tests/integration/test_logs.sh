#!/usr/bin/env bash
# `spilttea-ops logs` against the sandbox: a spilttea-test-logs container
# writes one seeded line per category on stdout and stderr; the summary
# counts each category exactly, the filters select exactly those lines
# (both streams, timestamps), --tail and --since limit them, several
# services merge by time, JSON Lines parse. On the stand-in backend a
# /status/500 request is found as an error on both streams, and --follow
# streams a new one as it happens.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need SPILTTEA_OPS_CONFIG ST_BACKEND_URL
tmp=$(mktemp -d /tmp/spilttea-test-logs.XXXXXX)
test_container=spilttea-test-logs
follow_pid=
cleanup() {
  if [[ -n $follow_pid ]]; then kill "$follow_pid" 2>/dev/null || true; fi
  docker rm -f "$test_container" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

show_lines=40  # of a failing command's output (lib.sh run_st, contains)
lines() { wc -l <"$tmp/out" | tr -d ' '; }
jq_is() {
  local got
  got=$(jq -rs "$1" "$tmp/out" 2>/dev/null || echo "(not JSON)")
  [[ $got == "$2" ]] || { fail "$3: $1 is '$got', expected '$2'"; head -c 2000 "$tmp/out" | sed 's/^/  | /' >&2; }
}

# --- seeded lines, one per category --------------------------------------
docker rm -f "$test_container" >/dev/null 2>&1 || true
docker run -d --name "$test_container" --network host --init --entrypoint /bin/sh \
  spilttea-sandbox/backend:latest -c '
    echo "GET /health 200 ok"
    echo "error: boom"
    echo "WARN: slow query"
    echo "prisma:query SELECT 1"
    echo "Unauthorized: jwt expired"
    echo "CORS blocked origin http://evil.example" >&2
    echo "uploading avatar to s3 bucket" >&2
    echo "nodemailer: message queued" >&2
    echo "POST /posts/1/view" >&2
    echo "a review of posts3 and decorsets" >&2
    sleep 0.3 # the two streams are read apart: the last lines come last
    echo "127.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"GET /x HTTP/1.1\" 503 5 \"-\" \"-\" \"-\" rt=0.1"
    echo "127.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"POST /auth HTTP/1.1\" 401 5 \"-\" \"-\" \"-\" rt=0.1"
    exec sleep 600' >/dev/null
for ((i = 0; i < 50; i++)); do
  [[ $(docker logs "$test_container" 2>&1 | wc -l) -ge 12 ]] && break
  sleep 0.1
done
sed "s|container: spilttea-backend,|container: $test_container,|" "$SPILTTEA_OPS_CONFIG" >"$tmp/cfg.yaml"
cfg=(-c "$tmp/cfg.yaml")

run_st 0 "summary" "${cfg[@]}" logs backend --summary --format json
jq_is '.[0].services.backend | [.lines, .error, .warn, .db, .auth, .cors, .s3, .email, .view] | map(tostring) | join(" ")' \
  "12 2 1 1 2 1 1 1 1" "summary: a count per category"
jq_is ".[0].services.backend.container" "$test_container" "summary: the container"
run_st 0 "summary, text" "${cfg[@]}" logs backend --summary
contains "$tmp/out" "SERVICE  LINES  error  warn  db  auth  cors  s3  email  view" "summary, text"
contains "$tmp/out" "backend  12     2      1     1   2     1     1   1      1" "summary, text"

run_st 0 "--errors" "${cfg[@]}" logs backend --errors
[[ $(lines) == 2 ]] || fail "--errors: $(lines) lines, expected 2"
contains "$tmp/out" "error: boom" "--errors"
contains "$tmp/out" '"GET /x HTTP/1.1" 503' "--errors"
run_st 0 "--auth --cors" "${cfg[@]}" logs backend --auth --cors --format json
jq_is 'length' 3 "--auth --cors: three lines"
jq_is '[.[] | select(.categories | index("auth") or index("cors"))] | length' 3 "--auth --cors: only those"
jq_is '[.[] | select(.text | test("CORS")) | .stream] | join(",")' stderr "--auth --cors: stderr kept"
jq_is '[.[] | select(.text | test("jwt")) | .stream] | join(",")' stdout "--auth --cors: stdout kept"
jq_is '[.[] | .time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")] | all' true "--auth --cors: timestamps"
for f in --warnings --db --s3 --email --view; do
  run_st 0 "$f" "${cfg[@]}" logs backend "$f"
  [[ $(lines) == 1 ]] || fail "$f: $(lines) lines, expected 1"
done
run_st 0 "no false friends" "${cfg[@]}" logs backend --s3 --view --cors
lacks "$tmp/out" "posts3" "no false friends"
run_st 0 "--tail" "${cfg[@]}" logs backend --tail 2
[[ $(lines) == 2 ]] || fail "--tail 2: $(lines) lines"
contains "$tmp/out" '"POST /auth HTTP/1.1" 401' "--tail 2: the last ones"
sleep 1.2
run_st 0 "--since" "${cfg[@]}" logs backend --since 1s
[[ $(lines) == 0 ]] || fail "--since 1s: $(lines) lines, expected none"
run_st 0 "--since a time" "${cfg[@]}" logs backend --since 2000-01-01T00:00:00Z --format json
jq_is 'length' 12 "--since a time"

# --- several services merged by time ------------------------------------
run_st 0 "merged" "${cfg[@]}" logs backend postgres redis --tail 20 --format json
jq_is '[.[].service] | unique | join(",")' "backend,postgres,redis" "merged: every service"
jq_is '[.[].time] == ([.[].time] | sort)' true "merged: in time order"

# --- the stand-in backend: a 500 on both streams ------------------------
curl -s -o /dev/null "$ST_BACKEND_URL/status/500"
# Until both lines are in the daemon's log (bounded: 10s), not a fixed nap.
for ((i = 0; i < 50; i++)); do
  [[ $(docker logs --since 1m spilttea-backend 2>&1 | grep -c '/status/500') -ge 2 ]] && break
  sleep 0.2
done
run_st 0 "stand-in 500" logs backend --errors --since 1m --format json
jq_is '[.[] | select(.text | test("/status/500")) | .stream] | unique | join(",")' "stderr,stdout" \
  "stand-in 500: the error line and the access line"

# --- follow ------------------------------------------------------------
"$bin" logs backend -f --tail 0 --errors --format json >"$tmp/follow" 2>"$tmp/follow.err" &
follow_pid=$!
# With --tail 0 only lines logged after the follower attached show, and
# when it attached cannot be seen from here: ask again every half second
# until one arrives (bounded: 20s) rather than guess a start-up time.
for ((i = 0; i < 40; i++)); do
  curl -s -o /dev/null "$ST_BACKEND_URL/status/502"
  for ((j = 0; j < 5; j++)); do
    grep -q '/status/502' "$tmp/follow" && break 2
    sleep 0.1
  done
done
kill -TERM "$follow_pid" 2>/dev/null || true
wait "$follow_pid" 2>/dev/null || true
follow_pid=
grep -q '/status/502' "$tmp/follow" || { fail "--follow: the new line did not arrive"; cat "$tmp/follow.err" >&2; }
if grep -q '/status/500' "$tmp/follow"; then fail "--follow --tail 0 showed an old line"; fi
jq -e . "$tmp/follow" >/dev/null 2>&1 || fail "--follow: not JSON Lines"

# --- usage --------------------------------------------------------------
run_st 2 "summary and follow" logs --summary --follow
run_st 2 "unknown service" logs nope
contains "$tmp/err" "service 'nope' is not configured" "unknown service"
run_st 2 "bad --since" logs --since yesterday
run_st 2 "bad format" logs --format yaml

if ((failures)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "logs: all passed"
