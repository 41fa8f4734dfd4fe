#!/usr/bin/env bash
# The built-in service runbooks (restart-backend, start-after-db,
# kill-idle-connections, analyze-post) through `spilttea-ops run` against
# the sandbox: each does what it says, confirmation is required where the
# step interrupts service, and --dry-run of each changes nothing in Docker
# (StartedAt of every container), PostgreSQL (sessions, last analyze) or
# Redis, and writes no journal. Restores what it stops.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need SPILTTEA_OPS_CONFIG ST_PG_PASSWORD_FILE ST_PG_PORT ST_PG_USER ST_PG_DATABASE
psql_bin=$pgbin/psql
tmp=$(mktemp -d /tmp/spilttea-test-svcrb.XXXXXX)
idle_pid=

cleanup() {
  exec 7>&- # end of input: psql exits
  [[ -n $idle_pid ]] && kill "$idle_pid" 2>/dev/null || true
  # Whatever a failed assertion left stopped comes back.
  docker start spilttea-postgres spilttea-backend >/dev/null 2>&1 || true
  wait_healthy spilttea-postgres
  wait_healthy spilttea-backend
  rm -rf "$tmp"
}
trap cleanup EXIT

# An idle session that kill-idle-connections may terminate: psql reads its
# commands from a FIFO we keep open, so it sits idle after one query.
hold_idle() {
  mkfifo "$tmp/fifo"
  PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE") PGAPPNAME=spilttea-test-idle \
    "$psql_bin" -X -q -h 127.0.0.1 -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$ST_PG_DATABASE" \
    <"$tmp/fifo" >/dev/null 2>&1 &
  idle_pid=$!
  exec 7>"$tmp/fifo"
  echo "SELECT 1;" >&7
  local i
  for ((i = 0; i < 50; i++)); do
    [[ $(idle_count) -ge 1 ]] && return 0
    sleep 0.1
  done
  fail "no idle test session appeared"
}
idle_count() { psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'spilttea-test-idle'"; }
last_analyze() { psql_q "SELECT coalesce(last_analyze::text, '') FROM pg_stat_user_tables WHERE relname = 'Post'"; }
redis_keys() { docker exec spilttea-redis redis-cli DBSIZE; }
journal_lines() { cat "$(dirname "$SPILTTEA_OPS_CONFIG")/state/journal.jsonl" 2>/dev/null | wc -l; }

snapshot() { # everything a dry run must leave alone
  local c
  for c in spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend; do
    echo "$c $(started_at "$c")"
  done
  echo "idle $(idle_count)"
  echo "analyze $(last_analyze)"
  echo "redis $(redis_keys)"
  echo "journal $(journal_lines)"
}

wait_healthy spilttea-postgres
wait_healthy spilttea-backend

# --- dry runs change nothing -------------------------------------------
hold_idle
sleep 1.2
snapshot >"$tmp/before"
run_st 0 "dry restart-backend" --dry-run run restart-backend
contains "$tmp/out" "docker.restart service=backend" "dry restart-backend"
run_st 0 "dry start-after-db" --dry-run run start-after-db
contains "$tmp/out" "docker.wait_ready service=postgres" "dry start-after-db"
run_st 0 "dry kill-idle-connections" --dry-run run kill-idle-connections older_than=1s restart_backend=true
contains "$tmp/out" "pg.terminate_idle older_than=1s" "dry kill-idle-connections"
run_st 0 "dry analyze-post" --dry-run run analyze-post
contains "$tmp/out" "pg.analyze table=Post" "dry analyze-post"
snapshot >"$tmp/after"
diff -u "$tmp/before" "$tmp/after" >&2 || fail "a dry run changed the sandbox"

# --- kill-idle-connections ---------------------------------------------
run_st 3 "kill-idle without --yes" run kill-idle-connections older_than=1s
contains "$tmp/err" "needs confirmation" "kill-idle without --yes"
[[ $(idle_count) -ge 1 ]] || fail "kill-idle without --yes terminated the session"
run_st 0 "kill-idle" run kill-idle-connections older_than=1s --yes
contains "$tmp/out" "runbook kill-idle-connections done: 1 ok, 2 skipped" "kill-idle"
for ((i = 0; i < 20; i++)); do [[ $(idle_count) -eq 0 ]] && break; sleep 0.1; done
[[ $(idle_count) -eq 0 ]] || fail "kill-idle left the idle session"
# Nothing idle that long: the step is skipped by its check.
run_st 0 "kill-idle, nothing to do" run kill-idle-connections --yes
contains "$tmp/out" "terminate  skipped (check: idle_older: expected > 0, got 0)" "kill-idle, nothing to do"

# --- analyze-post --------------------------------------------------------
before=$(last_analyze)
sleep 1
run_st 0 "analyze-post" run analyze-post
[[ $(last_analyze) != "$before" && -n $(last_analyze) ]] || fail "analyze-post: last_analyze of Post unchanged"

# --- restart-backend -----------------------------------------------------
before=$(started_at spilttea-backend)
run_st 3 "restart-backend without --yes" run restart-backend
contains "$tmp/err" "re-run with --yes" "restart-backend without --yes"
[[ $(started_at spilttea-backend) == "$before" ]] || fail "restart-backend restarted without confirmation"
run_st 0 "restart-backend" run restart-backend --yes
contains "$tmp/out" "runbook restart-backend done: 2 ok" "restart-backend"
[[ $(started_at spilttea-backend) != "$before" ]] || fail "restart-backend did not restart the backend"
[[ $(health_of spilttea-backend) == healthy ]] || fail "restart-backend finished before the backend was healthy"
curl -fsS "$ST_BACKEND_URL/health" >/dev/null || fail "backend /health after restart-backend"

# --- start-after-db ------------------------------------------------------
docker stop -t 5 spilttea-backend spilttea-postgres >/dev/null
run_st 0 "start-after-db" run start-after-db
contains "$tmp/out" "runbook start-after-db done: 4 ok" "start-after-db"
[[ $(health_of spilttea-postgres) == healthy ]] || fail "start-after-db: postgres not healthy"
[[ $(health_of spilttea-backend) == healthy ]] || fail "start-after-db: backend not healthy"
# Postgres was healthy before the backend started.
pg_ready=$(started_at spilttea-postgres)
be_start=$(started_at spilttea-backend)
[[ $pg_ready < $be_start ]] || fail "start-after-db started the backend before postgres"
# Repeating it changes nothing.
before=$(started_at spilttea-backend)
run_st 0 "start-after-db again" run start-after-db
[[ $(started_at spilttea-backend) == "$before" ]] || fail "start-after-db restarted a running backend"

# A missing container aborts at the check.
cfg2=$tmp/config.yaml
sed 's/backend:  { container: spilttea-backend,/backend:  { container: spilttea-test-missing,/' \
  "$SPILTTEA_OPS_CONFIG" >"$cfg2"
run_st 3 "start-after-db, no backend container" -c "$cfg2" run start-after-db
contains "$tmp/err" "exists" "start-after-db, no backend container"

finish "service runbooks: all passed"
