#!/usr/bin/env bash
# `spilttea-ops diagnose` against the sandbox: the healthy sandbox has no
# problem; each Common Issue is found when the sandbox is broken that way
# (postgres stopped, the backend stopped, variables dropped from the env
# file of a crashing spilttea-test-backend container, logs reporting Prisma,
# S3 and email errors, wrong VITE_API_URL / FRONTEND_URL, an idle session,
# connections above the threshold, Redis filled to 92% of maxmemory, stale
# posts with stale statistics); --fix is refused without a terminal (exit
# 3, nothing changed) and with --yes repairs the fixable ones (starting
# postgres and the backend, terminating the idle session, clearing the
# cache keys, analyzing "Post", restarting a backend whose logs report S3
# errors), checked again. Secrets never show. Restores what it changes.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need SPILTTEA_OPS_CONFIG ST_SANDBOX_DIR ST_PG_PASSWORD_FILE ST_PG_PORT ST_PG_USER ST_PG_DATABASE \
  ST_BACKEND_URL
tmp=$(mktemp -d /tmp/spilttea-test-diagnose.XXXXXX)
test_container=spilttea-test-backend
idle_pid=
posts_shifted=0

state_of() { docker inspect --format '{{.State.Status}}' "$1"; }
cleanup() {
  exec 7>&- 2>/dev/null || true
  if [[ -n $idle_pid ]]; then kill "$idle_pid" 2>/dev/null || true; fi
  docker rm -f "$test_container" >/dev/null 2>&1 || true
  docker start spilttea-postgres spilttea-backend >/dev/null 2>&1 || true
  wait_healthy spilttea-postgres
  wait_healthy spilttea-backend
  "$bin" cache clear 'cache:fill:*' --yes >/dev/null 2>&1 || true
  if ((posts_shifted)); then
    psql_q "UPDATE \"Post\" SET \"createdAt\" = \"createdAt\" + interval '400 days'" >/dev/null || true
  fi
  psql_q 'ALTER TABLE "Post" RESET (autovacuum_enabled)' >/dev/null 2>&1 || true
  psql_q 'ANALYZE "Post"' >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

show_lines=60  # of a failing command's output (lib.sh run_st, contains)
# The status of check CHECK of issue ISSUE in the JSON output (before fixes).
finding() { printf '.issues[] | select(.id == "%s") | .findings[] | select(.check == "%s") | %s' "$1" "$2" "$3"; }
after_finding() { printf '.after.issues[] | select(.id == "%s") | .findings[] | select(.check == "%s") | %s' "$1" "$2" "$3"; }

# A configuration pointing the backend at the test container and its own
# env file (and, when given, the frontend at another env file).
write_config() { # OUT BACKEND_CONTAINER BACKEND_ENV [FRONTEND_ENV] [HEALTH_URL]
  local out=$1 container=$2 benv=$3 fenv=${4:-$ST_SANDBOX_DIR/frontend.env} health=${5:-}
  sed -e "s|container: spilttea-backend,|container: $container,|" \
      -e "s|\"$ST_SANDBOX_DIR/backend.env\"|\"$benv\"|" \
      -e "s|\"$ST_SANDBOX_DIR/frontend.env\"|\"$fenv\"|" \
      "$SPILTTEA_OPS_CONFIG" >"$out"
  if [[ -n $health ]]; then
    sed -i "s|health_url: \"[^\"]*\"|health_url: \"$health\"|" "$out"
  fi
  grep -q "container: $container," "$out" || fail "write_config: backend container not replaced"
}

wait_healthy spilttea-postgres
wait_healthy spilttea-backend
jwt=$(sed -n 's/^JWT_SECRET=//p' "$ST_SANDBOX_DIR/backend.env")
aws_secret=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$ST_SANDBOX_DIR/backend.env")
smtp_pw=$(sed -n 's/^SMTP_PASSWORD=//p' "$ST_SANDBOX_DIR/backend.env")
[[ -n $jwt && -n $aws_secret && -n $smtp_pw ]] || fail "backend.env lacks the secrets this test looks for"
no_secrets() { # NAME: none of the sandbox's secrets in the last output
  if grep -qF -e "$jwt" -e "$aws_secret" -e "$smtp_pw" "$tmp/out" "$tmp/err"; then
    fail "$1: a secret value appears in the output"
  fi
}

# --- the healthy sandbox: no problem ------------------------------------
run_st 0 "healthy" diagnose --format json
jq_is '.issues | length' 7 "healthy: every issue"
jq_is '[.issues[].findings[] | select(.status == "problem")] | length' 0 "healthy: no problem"
jq_is '[.issues[] | select(.error)] | length' 0 "healthy: every runbook ran"
jq_is '[.issues[].run_id | select(. == "")] | length' 0 "healthy: every run journaled"
jq_is '.fixes | map(select(.result != "pending")) | length' 0 "healthy: no fix ran"
no_secrets "healthy"
run_st 0 "healthy, text" diagnose
contains "$tmp/out" "ISSUE" "healthy, text"
contains "$tmp/out" "diagnosis: " "healthy, text"
run_st 2 "unknown issue" diagnose nope
contains "$tmp/err" "unknown issue 'nope'" "unknown issue"
run_st 2 "unknown parameter" diagnose email idle_older_than=1s
contains "$tmp/err" "no diagnose runbook of the issues chosen takes 'idle_older_than=1s'" "unknown parameter"
run_st 0 "list" diagnose --list
contains "$tmp/out" "diagnose-redis-oom" "list"
run_st 0 "dry run" --dry-run diagnose trending
contains "$tmp/out" "finding: ok when rows.0.in_window > 0" "dry run"

# --- backend crashes on startup: postgres stopped ------------------------
docker stop -t 5 spilttea-postgres >/dev/null
run_st 1 "postgres stopped" diagnose backend-crash --format json
jq_is "$(finding backend-crash postgres-health .status)" problem "postgres stopped: postgres-health"
jq_is "$(finding backend-crash postgres-health .fix_runbook)" start-after-db "postgres stopped: fix"
jq_is "$(finding backend-crash postgres-health .evidence.status)" exited "postgres stopped: evidence"
jq_is "$(finding backend-crash postgres-accepts .status)" problem "postgres stopped: postgres-accepts"
jq_is '.fixes[0].runbook' start-after-db "postgres stopped: the safe fix"
# --fix without a terminal and without --yes: refused, nothing started.
run_st 3 "postgres stopped, --fix without --yes" diagnose backend-crash --fix
contains "$tmp/out" "refused start-after-db" "postgres stopped, --fix without --yes"
[[ $(state_of spilttea-postgres) == exited ]] || fail "a refused fix started postgres"
run_st 0 "postgres stopped, --fix --yes" diagnose backend-crash --fix --yes --format json
jq_is '.fixes[0].result' "done" "postgres stopped, --fix: the fix ran"
jq_is "$(after_finding backend-crash postgres-health .status)" ok "postgres stopped, --fix: checked again"
jq_is '.after.status == "problem"' false "postgres stopped, --fix: no problem left"
[[ $(health_of spilttea-postgres) == healthy ]] || fail "--fix left postgres unhealthy"
wait_healthy spilttea-backend

# --- the backend not running (frontend network error) --------------------
docker stop -t 5 spilttea-backend >/dev/null
run_st 1 "backend stopped" diagnose frontend-network --format json
jq_is "$(finding frontend-network backend-health .status)" problem "backend stopped: backend-health"
# health_url goes through the proxy (it stays valid across blue/green
# deploys): with the backend stopped, the proxy answers 502.
jq_is "$(finding frontend-network backend-health .evidence.status)" 502 "backend stopped: the proxy answers 502"
run_st 0 "backend stopped, --fix --yes" diagnose frontend-network --fix --yes --format json
jq_is '.fixes[0].runbook + " " + .fixes[0].result' "start-after-db done" "backend stopped, --fix"
jq_is "$(after_finding frontend-network backend-health .status)" ok "backend stopped, --fix: checked again"
curl -fsS "$ST_BACKEND_URL/health" >/dev/null || fail "backend /health after the fix"

# --- a crashing backend without its variables, logging its troubles -------
# backend.env without JWT_SECRET, AWS_S3_BUCKET and SMTP_PASSWORD; a
# container that logs a missing Prisma client, an S3 and an email error,
# then exits 3 (no restart policy: it stays exited).
grep -v -e '^JWT_SECRET=' -e '^AWS_S3_BUCKET=' -e '^SMTP_PASSWORD=' "$ST_SANDBOX_DIR/backend.env" >"$tmp/broken.env"
docker rm -f "$test_container" >/dev/null 2>&1 || true
docker run -d --name "$test_container" --network host --init --env-file "$tmp/broken.env" \
  -e STANDIN_ROLE=backend --entrypoint /bin/sh spilttea-sandbox/backend:latest -c '
    echo "Error: @prisma/client did not initialize yet. Please run \"prisma generate\" and try to import it again." >&2
    echo "[UploadService] S3 upload failed: InvalidAccessKeyId: The AWS Access Key Id you provided does not exist" >&2
    echo "[MailService] nodemailer error: Invalid login: 535-5.7.8 Username and Password not accepted" >&2
    exit 3' >/dev/null
for ((i = 0; i < 300; i++)); do [[ $(state_of "$test_container") == exited ]] && break; sleep 0.1; done
write_config "$tmp/crash.yaml" "$test_container" "$tmp/broken.env"
run_st 1 "crashing backend" -c "$tmp/crash.yaml" diagnose backend-crash s3-upload email --format json
jq_is "$(finding backend-crash backend-container .status)" problem "crash: backend-container"
jq_is "$(finding backend-crash backend-container .evidence.exit_code)" 3 "crash: exit code"
jq_is "$(finding backend-crash backend-env .status)" problem "crash: backend-env"
jq_is "$(finding backend-crash backend-env '.evidence.missing | join(",")')" JWT_SECRET "crash: missing in the container"
jq_is "$(finding backend-crash backend-env-file .status)" problem "crash: backend-env-file"
jq_is "$(finding backend-crash backend-env-file '.evidence.missing | join(",")')" JWT_SECRET "crash: missing in the file"
jq_is "$(finding backend-crash prisma-client .status)" problem "crash: prisma-client"
jq_is "$(finding backend-crash postgres-health .status)" ok "crash: postgres is fine"
jq_is "$(finding s3-upload aws-env '.evidence.missing | join(",")')" AWS_S3_BUCKET "s3: missing variable"
jq_is "$(finding s3-upload aws-env '.evidence.matched | join(",")')" \
  "AWS_ACCESS_KEY_ID,AWS_REGION,AWS_SECRET_ACCESS_KEY" "s3: the AWS variables by name"
jq_is "$(finding s3-upload s3-logs .status)" problem "s3: log errors"
jq_is "$(finding s3-upload s3-logs .fix_runbook)" restart-backend "s3: the runbook's fix"
jq_is "$(finding email smtp-env '.evidence.missing | join(",")')" SMTP_PASSWORD "email: missing variable"
jq_is "$(finding email email-logs .status)" problem "email: log errors"
jq_is '[.issues[].status] | join(",")' "problem,problem,problem" "crash: every issue a problem"
no_secrets "crashing backend"
run_st 1 "crashing backend, text" -c "$tmp/crash.yaml" diagnose backend-crash
contains "$tmp/out" "lacks 1 required variable(s): JWT_SECRET" "crash, text"
contains "$tmp/out" "did not initialize yet" "crash, text: the log line as evidence"
no_secrets "crashing backend, text"
docker rm -f "$test_container" >/dev/null

# --- S3 errors: the runbook's fix restarts a (healthy) test backend ------
backend_port=${ST_BACKEND_URL##*:}
test_port=$((backend_port + 100))
sed "s|^PORT=.*|PORT=$test_port|" "$ST_SANDBOX_DIR/backend.env" >"$tmp/s3.env"
docker run -d --name "$test_container" --network host --init --env-file "$tmp/s3.env" \
  -e STANDIN_ROLE=backend spilttea-sandbox/backend:latest >/dev/null
wait_healthy "$test_container"
curl -s -o /dev/null -A "S3 upload failed: AccessDenied" "http://127.0.0.1:$test_port/upload"
write_config "$tmp/s3.yaml" "$test_container" "$tmp/s3.env" "" "http://127.0.0.1:$test_port/health"
run_st 1 "s3 errors" -c "$tmp/s3.yaml" diagnose s3-upload --format json
jq_is "$(finding s3-upload s3-logs .status)" problem "s3 errors: s3-logs"
jq_is "$(finding s3-upload aws-env .status)" ok "s3 errors: the variables are there"
started=$(docker inspect --format '{{.State.StartedAt}}' "$test_container")
run_st 0 "s3 errors, --fix --yes" -c "$tmp/s3.yaml" diagnose s3-upload --fix --yes --format json
jq_is '.fixes[0].runbook + " " + .fixes[0].result' "restart-backend done" "s3 errors, --fix"
jq_is "$(after_finding s3-upload s3-logs .status)" ok "s3 errors, --fix: no new errors"
[[ $(docker inspect --format '{{.State.StartedAt}}' "$test_container") != "$started" ]] ||
  fail "s3 errors, --fix: the backend was not restarted"
[[ $(health_of "$test_container") == healthy ]] || fail "s3 errors, --fix: the backend is not healthy"
[[ $(health_of spilttea-backend) == healthy ]] || fail "s3 errors, --fix: the sandbox backend was touched"
no_secrets "s3 errors"
docker rm -f "$test_container" >/dev/null

# --- frontend network error: wrong API URL and CORS origin --------------
printf 'VITE_API_URL=http://localhost:%s\n' "$backend_port" >"$tmp/frontend.env"
sed 's|^FRONTEND_URL=.*|FRONTEND_URL=http://127.0.0.1:1|' "$ST_SANDBOX_DIR/backend.env" >"$tmp/cors.env"
write_config "$tmp/cors.yaml" spilttea-backend "$tmp/cors.env" "$tmp/frontend.env"
run_st 1 "wrong URLs" -c "$tmp/cors.yaml" diagnose frontend-network --format json
jq_is "$(finding frontend-network api-url .status)" problem "wrong URLs: api-url (localhost is not 127.0.0.1)"
jq_is "$(finding frontend-network api-url '.evidence["origins.VITE_API_URL"].expected')" \
  "$ST_PROXY_URL" "wrong URLs: the backend is reached through its proxy"
jq_is "$(finding frontend-network cors-env-file .status)" problem "wrong URLs: cors-env-file"
jq_is "$(finding frontend-network cors-container .status)" ok "wrong URLs: the running backend is right"
jq_is "$(finding frontend-network backend-health .status)" ok "wrong URLs: backend healthy"
no_secrets "wrong URLs"

# --- VITE_API_URL with a blue/green proxy: the proxy's URL is right; a
# backend port counts only while the proxy routes to it -----------------
run_any() { setsid -w "$bin" "$@" </dev/null >"$tmp/out" 2>"$tmp/err" || true; }
run_any diagnose frontend-network --format json
jq_is "$(finding frontend-network api-url .status)" ok "sandbox VITE_API_URL (the proxy) is right"
active_port=$(sed -n 's/.*server 127\.0\.0\.1:\([0-9]*\);.*/\1/p' "$ST_SANDBOX_DIR/proxy/upstream.conf")
green_port=$(sed -n 's/^  green_port: //p' "$SPILTTEA_OPS_CONFIG")
blue_port=$(sed -n 's/^  blue_port: //p' "$SPILTTEA_OPS_CONFIG")
[[ $active_port == "$blue_port" ]] && idle_port=$green_port || idle_port=$blue_port
[[ -n $active_port && -n $idle_port ]] || fail "proxy: active ($active_port) / idle ($idle_port) port unknown"
# An older configuration: health_url at a backend port, not the proxy.
for port in "$active_port" "$idle_port"; do
  printf 'VITE_API_URL=http://127.0.0.1:%s\n' "$port" >"$tmp/vite-$port.env"
  write_config "$tmp/vite-$port.yaml" spilttea-backend "$ST_SANDBOX_DIR/backend.env" "$tmp/vite-$port.env" \
    "http://127.0.0.1:$port/health"
done
run_any -c "$tmp/vite-$active_port.yaml" diagnose frontend-network --format json
jq_is "$(finding frontend-network api-url .status)" ok "VITE_API_URL at the port the proxy routes to"
run_any -c "$tmp/vite-$idle_port.yaml" diagnose frontend-network --format json
jq_is "$(finding frontend-network api-url .status)" problem "VITE_API_URL at the port the proxy left"
jq_is "$(finding frontend-network api-url '.evidence["origins.VITE_API_URL"].inactive_port')" true \
  "VITE_API_URL at the port the proxy left: said so"

# --- connection pool: an idle session, and connections above the threshold
mkfifo "$tmp/fifo"
PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE") PGAPPNAME=spilttea-test-idle \
  "$pgbin/psql" -X -q -h 127.0.0.1 -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$ST_PG_DATABASE" \
  <"$tmp/fifo" >/dev/null 2>&1 &
idle_pid=$!
exec 7>"$tmp/fifo"
echo "SELECT 1;" >&7
# Until the session is idle for longer than the 2s asked below (bounded:
# 30 s), not a fixed nap: on a loaded machine psql may not even have
# connected by the end of one.
idle_long() {
  [[ -n $(psql_q "SELECT pid FROM pg_stat_activity WHERE application_name = 'spilttea-test-idle'
                    AND state = 'idle' AND now() - state_change > interval '2.5 s'") ]]
}
for ((i = 0; i < 300; i++)); do idle_long && break; sleep 0.1; done
idle_backend=$(psql_q "SELECT pid FROM pg_stat_activity WHERE application_name = 'spilttea-test-idle'")
[[ -n $idle_backend ]] || fail "no idle test session"
run_st 0 "idle session (a warning)" diagnose db-pool idle_older_than=2s --format json
jq_is "$(finding db-pool idle-connections .status)" warn "idle: idle-connections"
jq_is "$(finding db-pool idle-connections '.evidence.idle_older_pids | index('"${idle_backend:-0}"') != null')" true "idle: its pid"
jq_is "$(finding db-pool connections .status)" ok "idle: connections below the threshold"
jq_is '.fixes[0].runbook + " " + .fixes[0].params.older_than' "kill-idle-connections 2s" "idle: the fix"
run_st 0 "idle session, --fix --yes" diagnose db-pool idle_older_than=2s --fix --yes --format json
jq_is '.fixes[0].result' "done" "idle, --fix"
jq_is "$(after_finding db-pool idle-connections .status)" ok "idle, --fix: checked again"
for ((i = 0; i < 100; i++)); do
  [[ -z $(psql_q "SELECT pid FROM pg_stat_activity WHERE application_name = 'spilttea-test-idle'") ]] && break
  sleep 0.1
done
[[ -z $(psql_q "SELECT pid FROM pg_stat_activity WHERE application_name = 'spilttea-test-idle'") ]] ||
  fail "idle, --fix: the idle session is still there"
exec 7>&-
kill "$idle_pid" 2>/dev/null || true
idle_pid=
sed 's|db_connections_percent:   { warn: 80, crit: 90 }|db_connections_percent:   { warn: 0.1, crit: 0.5 }|' \
  "$SPILTTEA_OPS_CONFIG" >"$tmp/pool.yaml"
grep -q 'crit: 0.5' "$tmp/pool.yaml" || fail "pool: threshold not replaced"
run_st 1 "connections above the threshold" -c "$tmp/pool.yaml" diagnose db-pool --format json
jq_is "$(finding db-pool connections .status)" problem "pool: connections"
jq_is "$(finding db-pool connections '.fix_runbook + " " + (.fix_params.restart_backend | tostring)')" \
  "kill-idle-connections true" "pool: the runbook's fix restarts the backend"

# --- Redis out of memory ------------------------------------------------
redis_cli EVAL "for i=1,tonumber(ARGV[1]) do redis.call('SET', 'cache:fill:'..i, string.rep('x', tonumber(ARGV[2]))) end return 1" \
  0 58 1000000 >/dev/null
redis_cli SET spilttea-test-keep 1 >/dev/null
run_st 1 "redis full" diagnose redis-oom --format json
jq_is "$(finding redis-oom memory .status)" problem "redis full: memory"
jq_is "$(finding redis-oom memory '.evidence.memory_percent > 90')" true "redis full: above 90%"
jq_is "$(finding redis-oom cache-keys .evidence.count)" 58 "redis full: the cache keys"
run_st 3 "redis full, --fix without --yes" diagnose redis-oom --fix
[[ $(redis_cli EXISTS cache:fill:1) == 1 ]] || fail "a refused fix deleted keys"
run_st 0 "redis full, --fix --yes" diagnose redis-oom --fix --yes --format json
jq_is '.fixes[0].runbook + " " + .fixes[0].result' "clear-cache done" "redis full, --fix"
jq_is "$(after_finding redis-oom memory .status)" ok "redis full, --fix: checked again"
[[ $(redis_cli EXISTS cache:fill:1) == 0 ]] || fail "redis full, --fix: cache keys left"
[[ $(redis_cli GET spilttea-test-keep) == 1 ]] || fail "redis full, --fix: deleted a key that is not cache"
redis_cli DEL spilttea-test-keep >/dev/null

# --- trending posts stale -----------------------------------------------
psql_q 'ALTER TABLE "Post" SET (autovacuum_enabled = false)' >/dev/null
psql_q 'ANALYZE "Post"' >/dev/null
posts_shifted=1
psql_q "UPDATE \"Post\" SET \"createdAt\" = \"createdAt\" - interval '400 days'" >/dev/null
run_st 1 "stale posts" diagnose trending --format json
jq_is "$(finding trending posts .status)" problem "stale: no posts in the window"
jq_is "$(finding trending posts '.evidence["rows.0.in_window"]')" 0 "stale: in_window"
jq_is "$(finding trending analyze .status)" warn "stale: statistics"
jq_is "$(finding trending analyze .fix_runbook)" analyze-post "stale: the fix"
run_st 1 "stale posts, --fix --yes (posts stay old)" diagnose trending --fix --yes --format json
jq_is '.fixes[0].runbook + " " + .fixes[0].result' "analyze-post done" "stale, --fix"
jq_is "$(after_finding trending analyze .status)" ok "stale, --fix: statistics fresh"
jq_is "$(after_finding trending posts .status)" problem "stale, --fix: no fix makes posts"
psql_q "UPDATE \"Post\" SET \"createdAt\" = \"createdAt\" + interval '400 days'" >/dev/null
posts_shifted=0

if ((failures)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "diagnose: all passed"
