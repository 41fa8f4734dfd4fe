#!/usr/bin/env bash
# `spilttea-ops db` and `cache` against the sandbox: sizes are there (the
# runbook's query fixed for "Post"), connections by state and application,
# a running pg_sleep is a slow query, kill-idle terminates only the session
# idle for longer than --older-than and only when confirmed, vacuum and
# analyze run (VACUUM FULL refused without --yes: the table is not
# rewritten), a table name cannot smuggle SQL in; cache info reads INFO and
# cache clear deletes only the matching keys, only when confirmed, -n
# counting only. Restores what it changes.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need SPILTTEA_OPS_CONFIG ST_PG_PASSWORD_FILE ST_PG_PORT ST_PG_USER ST_PG_DATABASE
psql_bin=$pgbin/psql
tmp=$(mktemp -d /tmp/spilttea-test-dbcache.XXXXXX)
pids=()
show_lines=40

cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  exec 7>&- 8>&- 2>/dev/null || true
  redis_cli DEL cache:t:1 cache:t:2 cache:t:3 spilttea-test:keep >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# A session of application APP that runs one statement and sits idle on
# file descriptor FD (psql reads its commands from a FIFO we keep open).
hold_session() { # APP FD
  mkfifo "$tmp/fifo-$1"
  PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE") PGAPPNAME=$1 \
    "$psql_bin" -X -q -h 127.0.0.1 -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$ST_PG_DATABASE" \
    <"$tmp/fifo-$1" >/dev/null 2>&1 &
  pids+=($!)
  eval "exec $2>\"\$tmp/fifo-\$1\""
  echo "SELECT 1;" >&"$2"
  local i
  for ((i = 0; i < 50; i++)); do
    [[ $(sessions "$1") == 1 ]] && return 0
    sleep 0.1
  done
  fail "session $1 did not appear"
}
sessions() { psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'"; }
stat_of() { psql_q "SELECT coalesce($1::text, '') FROM pg_stat_user_tables WHERE relname = 'Post'"; }
filenode() { psql_q "SELECT relfilenode FROM pg_class WHERE oid = '\"Post\"'::regclass"; }

# --- db size ------------------------------------------------------------
run_st 0 "db size" db size --format json
jq_is '.database' "$ST_PG_DATABASE" "db size: database"
jq_is '.database_bytes > 1000000' true "db size: database size"
jq_is '.tables[] | select(.table == "Post") | .total_bytes > 0 and .index_bytes > 0' true "db size: Post"
jq_is '[.tables[].table] | index("User") != null' true "db size: User"
jq_is '[.tables[].total_bytes] == ([.tables[].total_bytes] | sort | reverse)' true "db size: largest first"
run_st 0 "db size, text" db size
contains "$tmp/out" "database $ST_PG_DATABASE: " "db size, text"
contains "$tmp/out" "public  Post" "db size, text"
run_st 0 "db size, no such schema" db size --schema nope
contains "$tmp/out" "(no tables in schema nope)" "db size, no such schema"

# --- db connections -----------------------------------------------------
hold_session spilttea-test-conn 7
run_st 0 "db connections" db connections --format json
jq_is '.in_use >= 2' true "db connections: in use"
jq_is '.by_application["spilttea-test-conn"]' 1 "db connections: by application"
jq_is '.by_state.idle >= 1' true "db connections: by state"
run_st 0 "db connections, text" db connections
contains "$tmp/out" "BY APPLICATION" "db connections, text"

# --- db slow-queries ----------------------------------------------------
PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE") PGAPPNAME=spilttea-test-slow \
  "$psql_bin" -X -q -h 127.0.0.1 -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$ST_PG_DATABASE" \
  -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
pids+=($!)
# Until it has run for over a second (bounded: 30 s), not a fixed nap: on a
# loaded machine psql alone may take longer than a nap to start it. It
# runs until cancelled below, so it is still running for every check.
slow_running() {
  [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'spilttea-test-slow'
                 AND state = 'active' AND now() - query_start > interval '1.2 s'") == 1 ]]
}
for ((i = 0; i < 300; i++)); do slow_running && break; sleep 0.1; done
slow_running || fail "slow queries: the test query did not run for a second"
run_st 0 "slow queries" db slow-queries --min 1s --format json
jq_is '[.[] | select(.application == "spilttea-test-slow")][0].query' "SELECT pg_sleep(60)" "slow queries: pg_sleep"
jq_is '[.[] | select(.application == "spilttea-test-slow")][0].duration_s >= 1' true "slow queries: duration"
run_st 0 "slow queries above 30s" db slow-queries --min 30s --format json
jq_is 'length' 0 "slow queries above 30s"
run_st 0 "slow queries, text" db slow-queries --min 1s
contains "$tmp/out" "pg_sleep" "slow queries, text"
psql_q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'spilttea-test-slow'" >/dev/null
for ((i = 0; i < 50; i++)); do [[ $(sessions spilttea-test-slow) == 0 ]] && break; sleep 0.1; done

# --- db kill-idle: only the old one, only when confirmed -----------------
# spilttea-test-conn has been idle since above; a fresh one joins once the
# old one is idle for longer than --older-than (4s), and runs a statement
# before each run below, so it stays younger than that however slow a run
# is on a loaded machine (over a second each under ASan), not a fixed
# nap's rest.
idle_for() { # APP SECONDS: the session of APP idle for more than SECONDS
  [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'
                 AND state = 'idle' AND now() - state_change > interval '$2 s'") == 1 ]]
}
for ((i = 0; i < 300; i++)); do idle_for spilttea-test-conn 4.5 && break; sleep 0.1; done
idle_for spilttea-test-conn 4.5 || fail "kill-idle: spilttea-test-conn is not idle for 4.5 s"
hold_session spilttea-test-fresh 8
run_st 3 "kill-idle without --yes" db kill-idle --older-than 4s
contains "$tmp/out" "spilttea-test-conn" "kill-idle without --yes: lists the candidate"
[[ $(sessions spilttea-test-conn) == 1 ]] || fail "kill-idle without --yes terminated a session"
echo "SELECT 1;" >&8
run_st 0 "kill-idle dry run" --dry-run db kill-idle --older-than 4s
contains "$tmp/out" "pg.terminate_idle older_than=4s" "kill-idle dry run: the plan"
[[ $(sessions spilttea-test-conn) == 1 ]] || fail "kill-idle --dry-run terminated a session"
echo "SELECT 1;" >&8
run_st 0 "kill-idle" db kill-idle --older-than 4s --yes --format json
jq_is '.terminated' 1 "kill-idle: terminated"
jq_is '[.candidates[].application] | join(",")' spilttea-test-conn "kill-idle: the old one only"
for ((i = 0; i < 100; i++)); do [[ $(sessions spilttea-test-conn) == 0 ]] && break; sleep 0.1; done
[[ $(sessions spilttea-test-conn) == 0 ]] || fail "kill-idle left the old session"
[[ $(sessions spilttea-test-fresh) == 1 ]] || fail "kill-idle terminated the fresh session"
run_st 0 "kill-idle, nothing to do" db kill-idle --older-than 1h
contains "$tmp/out" "0 connections idle for more than 1h" "kill-idle, nothing to do"

# --- db vacuum / analyze ------------------------------------------------
before_vacuum=$(stat_of last_vacuum)
before_analyze=$(stat_of last_analyze)
sleep 1
run_st 0 "vacuum --analyze" db vacuum --analyze --table Post
contains "$tmp/out" "VACUUM Post: " "vacuum --analyze"
[[ $(stat_of last_vacuum) != "$before_vacuum" ]] || fail "vacuum: last_vacuum of Post unchanged"
[[ $(stat_of last_analyze) != "$before_analyze" ]] || fail "vacuum --analyze: last_analyze of Post unchanged"
run_st 0 "vacuum (every table)" db vacuum --format json
jq_is '.table + " " + (.full | tostring)' "* false" "vacuum (every table)"
node=$(filenode)
run_st 3 "vacuum --full without --yes" db vacuum --full --table Post
contains "$tmp/err" "locks" "vacuum --full without --yes: the warning"
contains "$tmp/err" "re-run with --yes" "vacuum --full without --yes"
[[ $(filenode) == "$node" ]] || fail "vacuum --full without --yes rewrote Post"
run_st 0 "vacuum --full --yes" db vacuum --full --table Post --yes --format json
jq_is '.full' true "vacuum --full --yes"
jq_is '.bytes_before > 0 and .bytes_after > 0' true "vacuum --full --yes: sizes"
[[ $(filenode) != "$node" ]] || fail "vacuum --full did not rewrite Post"
before_analyze=$(stat_of last_analyze)
sleep 1
run_st 0 "analyze" db analyze --table Post
[[ $(stat_of last_analyze) != "$before_analyze" ]] || fail "analyze: last_analyze of Post unchanged"
run_st 0 "analyze (every table)" db analyze
run_st 1 "vacuum of a missing table" db vacuum --table NoSuchTable
contains "$tmp/err" "table 'NoSuchTable' does not exist" "vacuum of a missing table"
run_st 1 "analyze with SQL in the name" db analyze --table 'Post"; DROP TABLE "Report'
[[ $(psql_q "SELECT count(*) FROM \"Report\"") -gt 0 ]] || fail "a table name ran SQL"
run_st 2 "db usage" db vacuum --min 5s
run_st 2 "db --schema without --table" db analyze --schema public
journal=$(dirname "$SPILTTEA_OPS_CONFIG")/state/journal.jsonl
grep -q '"runbook":"db-vacuum"' "$journal" || fail "db vacuum is not journaled"

# --- cache info / clear -------------------------------------------------
run_st 0 "cache info" cache info --format json
jq_is '.maxmemory' 67108864 "cache info: maxmemory"
jq_is '.used_memory > 0 and (.connected_clients >= 1)' true "cache info: memory and clients"
jq_is 'has("hit_rate_percent") and has("evicted_keys")' true "cache info: hit rate, evictions"
run_st 0 "cache info, text" cache info
contains "$tmp/out" "hit rate" "cache info, text"
redis_cli SET cache:t:1 a >/dev/null
redis_cli SET cache:t:2 b >/dev/null
redis_cli SET cache:t:3 c >/dev/null
redis_cli SET spilttea-test:keep d >/dev/null
run_st 3 "cache clear without --yes" cache clear 'cache:t:*'
contains "$tmp/out" "3 keys match 'cache:t:*'" "cache clear without --yes: the count first"
[[ $(redis_cli EXISTS cache:t:1 cache:t:2 cache:t:3) == 3 ]] || fail "cache clear without --yes deleted keys"
run_st 0 "cache clear dry run" --dry-run cache clear 'cache:t:*' --format json
jq_is '.matched' 3 "cache clear dry run"
[[ $(redis_cli EXISTS cache:t:1 cache:t:2 cache:t:3) == 3 ]] || fail "cache clear --dry-run deleted keys"
run_st 0 "cache clear" cache clear 'cache:t:*' --yes --format json
jq_is '[.matched, .deleted] | map(tostring) | join(" ")' "3 3" "cache clear"
[[ $(redis_cli EXISTS cache:t:1 cache:t:2 cache:t:3) == 0 ]] || fail "cache clear left keys"
[[ $(redis_cli GET spilttea-test:keep) == d ]] || fail "cache clear deleted a key not matching"
run_st 0 "cache clear, nothing" cache clear 'cache:t:*'
contains "$tmp/out" "nothing to delete" "cache clear, nothing"
run_st 2 "cache clear without pattern" cache clear
grep -q '"runbook":"clear-cache"' "$journal" || fail "cache clear is not journaled"

finish "db and cache: all passed"
