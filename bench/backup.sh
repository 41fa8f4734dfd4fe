#!/usr/bin/env bash
# Benchmark of `spilttea-ops backup` and its restore path against the
# runbook's commands (issue 3), on a separate database of the sandbox
# postgres so tests stay fast. Not a timed test: it prints figures.
#
#   bench/backup.sh [--runs N] [--prepare-only] [--no-restore]
#
# Dataset (made once, kept): database spilttea_bench with the Spilt Tea
# tables (1M users with bcrypt-like hashes, 2M posts of random sentences,
# 50k reports: bench/backup_dataset.sql) plus `pgbench -i -s 20`.
#
# Measured, medians of N interleaved rounds (default 3), same script, same machine:
#   floor     docker exec spilttea-postgres pg_dump -U spilttea spilttea_bench > /dev/null
#   pipeline  docker exec spilttea-postgres pg_dump ... | gzip > f        (the runbook)
#   backup    spilttea-ops backup (gzip level 1, and zstd level 1), verified
#   restore   createdb + gunzip -c f | docker exec -i spilttea-postgres psql   (the runbook)
#   ours      spilttea-ops backup test-restore f: new database, load with
#             ON_ERROR_STOP and verification on the way, tables and counts
#             compared with the manifest, database dropped
# Peak RSS from /usr/bin/time (package "time"), also for a tiny database, to
# show memory does not grow with the dump; CPU seconds of the command, the
# postgres container and dockerd, which stay meaningful on a loaded machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=3
prepare_only=0
restore=1
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --prepare-only) prepare_only=1; shift ;;
    --no-restore) restore=0; shift ;;
    *) echo "usage: bench/backup.sh [--runs N] [--prepare-only] [--no-restore]" >&2; exit 2 ;;
  esac
done

env_file=${ST_SANDBOX_ENV:-$root/.sandbox/env}
if [[ -z ${ST_PG_HOST:-} ]]; then
  [[ -f $env_file ]] || { echo "error: no sandbox ($env_file): run scripts/sandbox up" >&2; exit 2; }
  set -a
  # shellcheck disable=SC1090
  . "$env_file"
  set +a
fi
bin=${ST_BINARY:-$root/build/spilttea-ops}
[[ -x $bin ]] || { echo "error: $bin missing: run scripts/build release" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time missing: scripts/install-deps installs it" >&2; exit 2; }
pgbin=/usr/lib/postgresql/15/bin
PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE")
PGOPTIONS='-c client_min_messages=warning'
export PGPASSWORD PGOPTIONS
bench=spilttea_bench
tmp=$(mktemp -d /tmp/spilttea-bench-backup.XXXXXX)
finish() {
  # Scratch databases of interrupted runs (postgres restarted under us).
  if [[ -f $tmp/config.yaml ]]; then
    "$bin" -c "$tmp/config.yaml" restore cleanup --yes --quiet || true
  fi
  [[ -n ${target:-} ]] && q -d postgres -c "DROP DATABASE IF EXISTS $target WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap finish EXIT

q() { "$pgbin/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$ST_PG_HOST" -p "$ST_PG_PORT" -U "$ST_PG_USER" "$@"; }
# Retries while the shared sandbox restarts postgres under us.
retry() { local i; for i in $(seq 1 30); do "$@" && return 0; sleep 5; done; return 1; }

# ---- dataset ---------------------------------------------------------------
prepare() {
  local have
  if [[ -z $(q -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$bench'") ]]; then
    q -d postgres -c "CREATE DATABASE $bench"
  fi
  q -d "$bench" -f "$root/bench/backup_dataset.sql" >/dev/null
  fill() { # table function total batch extra-args
    local t=$1 f=$2 total=$3 b=$4 extra=$5 hi
    while :; do
      have=$(q -d "$bench" -c "SELECT coalesce(max(id), 0) FROM \"$t\"")
      ((have >= total)) && return 0
      hi=$((have + b > total ? total : have + b))
      echo "  $t: rows $((have + 1))..$hi" >&2
      q -d "$bench" -c "SELECT $f($((have + 1)), $hi$extra)" >/dev/null
    done
  }
  fill User bench_fill_users 1000000 100000 ""
  fill Post bench_fill_posts 2000000 200000 ", 1000000"
  q -d "$bench" -c "SELECT bench_fill_reports(50000, 1000000, 2000000)" >/dev/null
  q -d "$bench" -c 'CREATE INDEX IF NOT EXISTS "Post_createdAt_idx" ON "Post" ("createdAt")' \
    -c 'CREATE INDEX IF NOT EXISTS "Report_postId_idx" ON "Report" ("postId")' \
    -c 'CREATE UNIQUE INDEX IF NOT EXISTS "User_email_key" ON "User" (email)' >/dev/null
  if [[ -z $(q -d "$bench" -c "SELECT 1 FROM pg_tables WHERE tablename = 'pgbench_accounts'") ]]; then
    "$pgbin/pgbench" -q -i -s 20 -h "$ST_PG_HOST" -p "$ST_PG_PORT" -U "$ST_PG_USER" "$bench" >/dev/null 2>&1
  fi
  q -d "$bench" -c 'VACUUM ANALYZE' >/dev/null
}
echo "== dataset: $bench"
retry prepare
q -d "$bench" -c "SELECT '  ' || pg_size_pretty(pg_database_size('$bench')) || ' on disk; rows: User ' ||
  (SELECT count(*) FROM \"User\") || ', Post ' || (SELECT count(*) FROM \"Post\") || ', pgbench_accounts ' ||
  (SELECT count(*) FROM pgbench_accounts)"
((prepare_only)) && exit 0

cfg=$tmp/config.yaml
cat >"$cfg" <<EOF
state_dir: $tmp/state
services:
  postgres: { container: spilttea-postgres }
postgres: { host: $ST_PG_HOST, port: $ST_PG_PORT, user: $ST_PG_USER, database: $bench, password_file: $ST_PG_PASSWORD_FILE }
redis: { host: 127.0.0.1 }
backup: { dir: $tmp/backups }
EOF

# CPU seconds so far of the postgres container (pg_dump/psql and the server
# backend run there) and of dockerd (it relays every byte of an exec), so a
# figure can be judged apart from other load on the machine.
tck=$(getconf CLK_TCK)
pg_cid=$(docker inspect -f '{{.Id}}' spilttea-postgres)
container_cpu() {
  local f=/sys/fs/cgroup/cpuacct/docker/$pg_cid/cpuacct.usage
  local g=/sys/fs/cgroup/system.slice/docker-$pg_cid.scope/cpu.stat
  if [[ -r $f ]]; then awk '{ printf "%.3f", $1 / 1e9 }' "$f"
  elif [[ -r $g ]]; then awk '$1 == "usage_usec" { printf "%.3f", $2 / 1e6 }' "$g"
  else echo 0; fi
}
dockerd_cpu() {
  local pid
  pid=$(pgrep -o -x dockerd) || { echo 0; return; }
  awk -v t="$tck" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$pid/stat"
}

# measure_once NAME CMD...: runs CMD once; records wall seconds, peak RSS
# (KB) and CPU seconds: the command's own (children included), the postgres
# container's and dockerd's. The commands compared are run in interleaved
# rounds (floor, pipeline, ours, floor, ...) so a change of load on the
# machine during the benchmark weighs on all of them alike.
declare -A wall rss cpu ws rs cs detail
measure_once() {
  local name=$1 c0 d0 c1 d1 w r u sy
  shift
  pg_cid=$(docker inspect -f '{{.Id}}' spilttea-postgres)
  c0=$(container_cpu)
  d0=$(dockerd_cpu)
  retry /usr/bin/time -f '%e %M %U %S' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/stderr" ||
    { echo "error: $name failed: $(cat "$tmp/stderr")" >&2; exit 1; }
  c1=$(container_cpu)
  d1=$(dockerd_cpu)
  read -r w r u sy <"$tmp/time"
  ws[$name]+=" $w"
  rs[$name]+=" $r"
  cs[$name]+=" $(awk -v a="$u" -v b="$sy" -v c0="$c0" -v c1="$c1" -v d0="$d0" -v d1="$d1" \
    'BEGIN { printf "%.2f", a + b + (c1 - c0) + (d1 - d0) }')"
  detail[$name]=$(awk -v a="$u" -v b="$sy" -v c0="$c0" -v c1="$c1" -v d0="$d0" -v d1="$d1" \
    'BEGIN { printf "self %.1f + postgres %.1f + dockerd %.1f", a + b, c1 - c0, d1 - d0 }')
  [[ -n ${after_run:-} ]] && $after_run
  return 0
}
med() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
report() {
  local name=$1
  wall[$name]=$(med "${ws[$name]}")
  cpu[$name]=$(med "${cs[$name]}")
  rss[$name]=$(printf '%s\n' ${rs[$name]} | sort -n | tail -1)
  printf '  %-38s wall %6.2f s (runs:%s)  CPU %6.2f s (%s)  peak RSS %s MB\n' "$name" "${wall[$name]}" \
    "${ws[$name]}" "${cpu[$name]}" "${detail[$name]}" "$((${rss[$name]} / 1024))"
}
# measure NAME CMD...: runs runs times in a row, then reports
measure() {
  local i
  for i in $(seq 1 "$runs"); do measure_once "$@"; done
  report "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
clean_backups() { rm -rf "$tmp/backups"; }

echo "== backup ($runs interleaved rounds; load average $(cut -d' ' -f1-3 /proc/loadavg))"
for round in $(seq 1 "$runs"); do
  after_run=
  measure_once "floor: pg_dump > /dev/null" docker exec spilttea-postgres pg_dump -U "$ST_PG_USER" "$bench"
  measure_once "runbook: pg_dump | gzip > f" bash -c "set -o pipefail; docker exec spilttea-postgres pg_dump -U $ST_PG_USER $bench | gzip > $tmp/runbook.sql.gz"
  after_run=clean_backups
  measure_once "spilttea-ops backup (gzip -1)" "$bin" -c "$cfg" backup --compress gzip --quiet
  measure_once "spilttea-ops backup (zstd -1)" "$bin" -c "$cfg" backup --compress zstd --quiet
done
for name in "floor: pg_dump > /dev/null" "runbook: pg_dump | gzip > f" \
  "spilttea-ops backup (gzip -1)" "spilttea-ops backup (zstd -1)"; do
  report "$name"
done
after_run=
"$bin" -c "$cfg" backup --compress gzip --quiet
file=$(ls "$tmp/backups" | grep '\.sql\.gz$')
raw=$(grep -o '"bytes_raw": [0-9]*' "$tmp/backups/$file.json" | grep -o '[0-9]*$')
echo "  dump: $((raw / 1000000)) MB of SQL; gzip -1 file $(($(stat -c %s "$tmp/backups/$file") / 1000000)) MB," \
  "runbook gzip -6 file $(($(stat -c %s "$tmp/runbook.sql.gz") / 1000000)) MB"
measure "backup verify f (sequential re-read)" "$bin" -c "$cfg" backup verify "$file" --quiet
measure "spilttea-ops backup, tiny database" "$bin" -c "$cfg" backup --database "$ST_PG_DATABASE" --dir "$tmp/tiny" --quiet

for k in wall cpu; do
  declare -n m=$k
  floor=${m["floor: pg_dump > /dev/null"]}
  echo "  $k ratios to the floor: runbook pipeline $(ratio "${m["runbook: pg_dump | gzip > f"]}" "$floor")," \
    "spilttea-ops gzip $(ratio "${m["spilttea-ops backup (gzip -1)"]}" "$floor")," \
    "zstd $(ratio "${m["spilttea-ops backup (zstd -1)"]}" "$floor")  (target <= 1.10)"
  unset -n m
done
echo "  (on an otherwise idle machine wall time follows total CPU once the 2 cores are busy;"
echo "   with other load, the CPU ratios are the stable figure)"

if ((restore)); then
  echo "== restore into an empty database ($runs interleaved rounds)"
  target=${bench}_restore_bench
  drop_target() { q -d postgres -c "DROP DATABASE IF EXISTS $target WITH (FORCE)" >/dev/null; }
  drop_target
  for round in $(seq 1 "$runs"); do
    after_run=drop_target
    measure_once "runbook: gunzip -c f | psql" bash -c "set -o pipefail; $pgbin/psql -X -q -h $ST_PG_HOST -p $ST_PG_PORT -U $ST_PG_USER -d postgres -c 'DROP DATABASE IF EXISTS $target' -c 'CREATE DATABASE $target' &&
      gunzip -c $tmp/backups/$file | docker exec -i spilttea-postgres psql -q -U $ST_PG_USER $target"
    after_run=
    measure_once "spilttea-ops backup test-restore" "$bin" -c "$cfg" backup test-restore "$file" --quiet
  done
  report "runbook: gunzip -c f | psql"
  report "spilttea-ops backup test-restore"
  echo "  test-restore (create, load with ON_ERROR_STOP and verification, compare, drop) vs the" \
    "runbook's: wall $(ratio "${wall["spilttea-ops backup test-restore"]}" "${wall["runbook: gunzip -c f | psql"]}")," \
    "CPU $(ratio "${cpu["spilttea-ops backup test-restore"]}" "${cpu["runbook: gunzip -c f | psql"]}") (target <= 1.0)"
fi
