#!/usr/bin/env bash
# backup and restore against the sandbox's real PostgreSQL (issue 3):
# round trip with per-table checksums, schema-only and data-only, corrupt /
# truncated / wrong-checksum / manifest-less backups refused with the live
# database unchanged, kill -9 mid-stream, two concurrent backups (exit 4),
# postgres stopped, a full disk, retention, a restore whose SQL fails
# midway, cron output and metrics, and the password kept out of everything.
# Restores the sandbox state it changes (data, containers, databases).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need ST_PG_HOST ST_PG_PORT ST_PG_USER ST_PG_DATABASE ST_PG_PASSWORD_FILE ST_BACKEND_URL
tmp=$(mktemp -d /tmp/spilttea-test-backup.XXXXXX)
big=spilttea_test_backup_big
db=$ST_PG_DATABASE
PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE")
PGOPTIONS='-c client_min_messages=warning'
export PGPASSWORD PGOPTIONS
bg=()
mounted=""

q() { # DB SQL: one value per line
  "$pgbin/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$ST_PG_HOST" -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$1" -c "$2"
}

backend_ready() {
  local i
  for i in $(seq 1 120); do
    curl -fsS -o /dev/null "$ST_BACKEND_URL/health" 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}

pg_ready() {
  local i
  for i in $(seq 1 120); do
    q postgres 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

cleanup() {
  local p
  set +e
  for p in "${bg[@]}"; do
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  [[ -n $mounted ]] && umount "$mounted"
  docker start spilttea-postgres >/dev/null 2>&1
  pg_ready
  docker start spilttea-backend >/dev/null 2>&1
  q postgres "DROP DATABASE IF EXISTS $big WITH (FORCE)" >/dev/null 2>&1
  for d in $(q postgres "SELECT datname FROM pg_database WHERE datname ~ '^${db}_(pre_restore_|restore_|testrestore_|test_loaded_|test_newserver)'" 2>/dev/null); do
    q postgres "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null 2>&1
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# Progress lines only: this test reports failures (lib.sh's fail), not TAP.
ok() { echo "ok: $*"; }

cfg=$tmp/config.yaml
bdir=$tmp/backups
cat >"$cfg" <<EOF
state_dir: $tmp/state
services:
  postgres: { container: spilttea-postgres }
  backend: { container: spilttea-backend, health_url: "$ST_BACKEND_URL/health" }
postgres: { host: $ST_PG_HOST, port: $ST_PG_PORT, user: $ST_PG_USER, database: $db, password_file: $ST_PG_PASSWORD_FILE }
redis: { host: 127.0.0.1 }
backup: { dir: $bdir, keep_days: 7, keep_min: 3 }
EOF

has() { grep -qF -- "$2" "$1" || { fail "$3: '$2' not in output"; sed 's/^/  | /' "$1" >&2; }; }

# Per-table row count and checksum of the whole content, in a stable order.
sums() {
  local t
  for t in User Post Report _prisma_migrations; do
    echo "$t $(q "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM public.\"$t\" x")"
  done
}
dbs() { q postgres "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database"; }
newest() { ls -t "$bdir" | grep -E "^backup_[0-9_]+(_schema|_data)?\\.sql(\\.gz|\\.zst)?\$" | head -1; }

pg_ready || { fail "postgres of the sandbox does not answer"; exit 1; }
started=$(date -u +%Y-%m-%dT%H:%M:%S)
sums0=$(sums "$db")
dbs0=$(dbs)

# --- a full backup, published with its manifest ---------------------------
if st 0 "backup" backup; then
  f=$(newest)
  has "$out" "verified" "backup"
  [[ -f $bdir/$f.json ]] || fail "manifest of $f missing"
  [[ $(stat -c %a "$bdir/$f") == 600 && $(stat -c %a "$bdir/$f.json") == 600 ]] || fail "backup files not 0600"
  [[ $(stat -c %a "$bdir") == 700 ]] || fail "backup dir not 0700"
  sha=$(sha256sum "$bdir/$f" | cut -d' ' -f1)
  grep -q "\"sha256\": \"$sha\"" "$bdir/$f.json" || fail "manifest sha256 differs from the file's"
  gunzip -t "$bdir/$f" || fail "gunzip -t $f"
  gunzip -c "$bdir/$f" | grep -q '^-- PostgreSQL database dump complete$' || fail "no trailer in $f"
  users=$(q "$db" 'SELECT count(*) FROM "User"')
  grep -q "\"User\": $users" "$bdir/$f.json" || fail "manifest row count of User is not $users"
  grep -q '"counts_in_dump_snapshot": true' "$bdir/$f.json" || fail "counts not from the dump's snapshot"
  grep -q "\"step\":\"dump\",\"action\":\"backup.create\",\"phase\":\"act\",\"result\":\"ok\"" \
    "$tmp/state/journal.jsonl" || fail "backup not journaled"
  ok "full backup $f"
fi
good=$f

# --- round trip: change data, restore, contents equal the originals ------
q "$db" "UPDATE \"Post\" SET title = title || ' (edited)' WHERE id % 7 = 0;
         DELETE FROM \"Report\" WHERE id % 3 = 0;
         INSERT INTO \"User\"(email, password) VALUES ('roundtrip@example.com', 'x')" >/dev/null
sums1=$(sums "$db")
[[ $sums1 != "$sums0" ]] || fail "the data change did not change the checksums"
if st 0 "restore round trip" restore "$good" --yes; then
  [[ $(sums "$db") == "$sums0" ]] || fail "restored tables differ from the originals"
  old=$(q postgres "SELECT datname FROM pg_database WHERE datname LIKE '${db}\\_pre\\_restore\\_%'")
  [[ -n $old && $(sums "$old") == "$sums1" ]] || fail "the replaced database was not kept as ${db}_pre_restore_*"
  [[ $(docker inspect -f '{{.State.Running}}' spilttea-backend) == true ]] || fail "backend not running after restore"
  has "$out" "restored into '$db'" "restore round trip"
  ok "round trip: contents equal after restore, old copy kept as $old"
fi
if st 0 "restore cleanup" restore cleanup --yes; then
  [[ $(dbs) == "$dbs0" ]] || fail "restore cleanup left databases: $(dbs)"
  ok "restore cleanup"
fi
# The restore took a safety backup first.
ls "$bdir" | grep -qv "^$good" || fail "no safety backup next to $good"

# A restore onto a database that does not exist yet (a new server): no
# safety backup, nothing to move aside.
newdb=${db}_test_newserver
q postgres "DROP DATABASE IF EXISTS $newdb" >/dev/null
before=$(ls "$bdir" | wc -l)
# A backup of $db restored as another database: only when said so.
if st 3 "restore of another database's backup" restore "$good" --database "$newdb" --yes; then
  has "$err" "is a backup of database '$db', not of '$newdb'" "restore of another database's backup"
  has "$err" "--from-database $db" "restore of another database's backup (hint)"
  [[ $(dbs) == "$dbs0" ]] || fail "refused restore changed the databases: $(dbs)"
  ok "a backup of another database is refused without --from-database"
fi
if st 0 "restore onto a new database" restore "$good" --database "$newdb" --from-database "$db" --yes; then
  [[ $(sums "$newdb") == "$sums0" ]] || fail "restore onto a new database: contents differ"
  [[ $(ls "$bdir" | wc -l) -eq $before ]] || fail "restore onto a new database took a safety backup"
  grep -q '"step":"safety-backup".*"result":"skipped"' "$tmp/state/journal.jsonl" ||
    fail "safety backup not journaled as skipped"
  ok "restore onto a new database"
fi
q postgres "DROP DATABASE IF EXISTS $newdb" >/dev/null
[[ $(dbs) == "$dbs0" ]] || fail "databases after the new-server restore: $(dbs)"

# --- dry-run changes nothing ------------------------------------------------
before=$(ls "$bdir" | sort)
if st 0 "restore --dry-run" --dry-run restore "$good"; then
  [[ $(ls "$bdir" | sort) == "$before" && $(dbs) == "$dbs0" ]] || fail "dry-run changed something"
  has "$out" "backup.db_swap" "restore --dry-run"
  ok "restore --dry-run"
fi
# Without --yes and without a terminal: refused before anything changes; the
# prompt it could not ask (in the hint) says when the backup was taken and how
# long ago, that is what the restore throws away (review 2 item 20).
if st 3 "restore without --yes" restore "$good"; then
  has "$err" "no terminal to ask" "restore without --yes"
  grep -qE "\(taken 20[0-9-]+T[0-9:.]+Z, [0-9][0-9a-z.]* ago\) over database '$db'\? What was written to it since is lost" "$err" ||
    fail "restore's prompt does not say how old the backup is: $(cat "$err")"
  [[ $(dbs) == "$dbs0" ]] || fail "refused restore changed the databases: $(dbs)"
  ok "restore's prompt says how old the backup is"
fi

# --- refused: flipped byte, truncated, wrong checksum, missing manifest -----
cp "$bdir/$good" "$tmp/good.bak"
cp "$bdir/$good.json" "$tmp/good.json"
refuse() { # NAME EXPECTED-TEXT
  if st 3 "$1" restore "$good" --yes; then
    has "$err" "$2" "$1"
    [[ $(sums "$db") == "$sums0" ]] || fail "$1: live database changed"
    [[ $(dbs) == "$dbs0" ]] || fail "$1: databases changed: $(dbs)"
    ok "refused: $1"
  fi
  cp "$tmp/good.bak" "$bdir/$good"
  cp "$tmp/good.json" "$bdir/$good.json"
}
size=$(stat -c %s "$bdir/$good")
printf '\x55' | dd of="$bdir/$good" bs=1 seek=$((size / 2)) conv=notrunc status=none
refuse "byte flipped" "is corrupt"
truncate -s $((size - 100)) "$bdir/$good"
refuse "truncated" "truncated"
sed -i "s/\"sha256\": \"$sha\"/\"sha256\": \"$(printf '%064d' 0)\"/" "$bdir/$good.json"
refuse "wrong checksum" "checksum mismatch"
rm "$bdir/$good.json"
refuse "missing manifest" "is missing"
printf '\x55' | dd of="$bdir/$good" bs=1 seek=$((size / 2)) conv=notrunc status=none
if st 1 "verify of a flipped byte" backup verify "$good"; then
  grep -q '"verified": false' "$bdir/$good.json" || fail "failed verify not recorded in the manifest"
  st 0 "list" backup list && has "$out" "NO (failed verify)" "list after failed verify"
  ok "verify marks a rotten backup"
fi
cp "$tmp/good.bak" "$bdir/$good"
cp "$tmp/good.json" "$bdir/$good.json"
st 0 "verify --all" backup verify --all && ok "verify --all"

# --- schema-only and data-only ------------------------------------------------
if st 0 "schema backup" backup --kind schema --compress zstd; then
  schema=$(newest)
  [[ $schema == *_schema.sql.zst ]] || fail "schema backup name: $schema"
  zstd -dc "$bdir/$schema" | grep -q 'COPY ' && fail "schema-only backup holds data"
  st 0 "test-restore schema" backup test-restore "$schema" && has "$out" "ok" "test-restore schema"
fi
if st 0 "data backup" backup --kind data --compress none; then
  data=$(newest)
  [[ $data == *_data.sql ]] || fail "data backup name: $data"
  grep -q 'CREATE TABLE' "$bdir/$data" && fail "data-only backup holds DDL"
  # Schema then data into a new database: the same contents as live.
  t=${db}_test_loaded_$(date +%s)
  q postgres "CREATE DATABASE $t TEMPLATE template0" >/dev/null
  zstd -dc "$bdir/$schema" | "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$ST_PG_HOST" -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$t" >/dev/null
  "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$ST_PG_HOST" -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$t" -f "$bdir/$data" >/dev/null
  [[ $(sums "$t") == "$sums0" ]] || fail "schema + data backups do not give the original contents"
  q postgres "DROP DATABASE $t" >/dev/null
  st 2 "test-restore data" backup test-restore "$data" && has "$err" "data-only" "test-restore data"
  ok "schema-only and data-only backups"
fi
st 0 "test-restore full" backup test-restore "$good" && has "$out" "as in the manifest" "test-restore full"

# --- a restore whose SQL fails midway leaves the live database untouched ---
if st 0 "plain backup" backup --compress none; then
  plain=$(newest)
  bad=backup_20200102_030405.sql
  sed '0,/^COPY public."User"/s//SELECT no_such_function();\n&/' "$bdir/$plain" >"$bdir/$bad"
  grep -q no_such_function "$bdir/$bad" || fail "could not craft the failing dump"
  bsz=$(stat -c %s "$bdir/$bad")
  bsha=$(sha256sum "$bdir/$bad" | cut -d' ' -f1)
  sed -e "s/\"name\": \"$plain\"/\"name\": \"$bad\"/" -e "s/\"sha256\": \"[0-9a-f]*\"/\"sha256\": \"$bsha\"/" \
      -e "s/\"bytes_raw\": [0-9]*/\"bytes_raw\": $bsz/" -e "s/\"bytes_compressed\": [0-9]*/\"bytes_compressed\": $bsz/" \
      "$bdir/$plain.json" >"$bdir/$bad.json"
  if st 1 "restore failing midway" restore "$bad" --yes; then
    has "$err" "no_such_function" "restore failing midway"
    has "$out" "undo create-database" "restore failing midway"
    [[ $(sums "$db") == "$sums0" ]] || fail "failing restore changed the live database"
    [[ $(dbs) == "$dbs0" ]] || fail "failing restore left databases: $(dbs)"
    [[ $(docker inspect -f '{{.State.Running}}' spilttea-backend) == true ]] || fail "backend stopped"
    ok "restore failing midway: live database untouched, copy dropped"
  fi
  rm -f "$bdir/$bad" "$bdir/$bad.json"
fi

# --- a big database for the tests that need a dump in flight ---------------
q postgres "DROP DATABASE IF EXISTS $big WITH (FORCE)" >/dev/null
q postgres "CREATE DATABASE $big" >/dev/null
q "$big" "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS t FROM generate_series(1, 250000) g" >/dev/null

# kill -9 mid-stream: no finished-looking file; the next backup sweeps it.
before=$(ls "$bdir" | sort)
setsid "$bin" -c "$cfg" backup --database "$big" --compress gzip --level 9 </dev/null >/dev/null 2>&1 &
pid=$!
bg+=("$pid")
for _ in $(seq 1 200); do
  p=$(ls -a "$bdir" | grep '\.partial$' | head -1 || true)
  [[ -n $p && $(stat -c %s "$bdir/$p" 2>/dev/null || echo 0) -gt 65536 ]] && break
  sleep 0.05
done
if [[ -z $p ]]; then
  fail "no partial file appeared during the backup"
else
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  after=$(ls "$bdir" | sort)
  [[ $after == "$before" ]] || fail "kill -9 left a finished-looking file: $(comm -13 <(echo "$before") <(echo "$after"))"
  if st 0 "backup after kill -9" backup --database "$big" --compress zstd; then
    has "$out" "removed 1 leftover" "backup after kill -9"
    ls -a "$bdir" | grep -q '\.partial$' && fail "partial file not swept"
    ok "kill -9 mid-stream: nothing published, next backup sweeps the partial"
  fi
fi

# A backup of another database never restores over the live one, and
# does not count for it in retention.
if st 0 "backup of another database" backup --database "$big" --kind schema; then
  other=$(newest)
  dbs1=$(dbs)
  if st 3 "restore of $big's backup over $db" restore "$other" --yes; then
    has "$err" "is a backup of database '$big', not of '$db'" "restore of $big's backup over $db"
    [[ $(sums "$db") == "$sums0" && $(dbs) == "$dbs1" ]] || fail "refused restore changed the databases"
    ok "another database's backup is refused for the live one"
  fi
fi

# Two concurrent backups: the second exits 4 naming the first.
setsid "$bin" -c "$cfg" backup --database "$big" --compress gzip --level 9 </dev/null >"$tmp/first.out" 2>&1 &
pid=$!
bg+=("$pid")
for _ in $(seq 1 200); do
  ls -a "$bdir" | grep -q '\.partial$' && break
  sleep 0.05
done
if st 4 "concurrent backup" backup --database "$big"; then
  has "$err" "locked by pid $pid" "concurrent backup"
  ok "second concurrent backup exits 4"
fi
# verify rewrites manifests: not while a backup sweeps and publishes.
if st 4 "verify during a backup" backup verify "$good"; then
  has "$err" "locked by pid $pid" "verify during a backup"
  ok "verify waits for no backup: exits 4 while one runs"
fi
wait "$pid" || fail "first of two concurrent backups failed: $(cat "$tmp/first.out")"

# Disk full: a small tmpfs as backup dir.
full=$tmp/full
mkdir -p "$full"
mount -t tmpfs -o size=2m tmpfs "$full"
mounted=$full
if st 0 "small backup on tmpfs" backup --dir "$full" --kind schema; then
  small=$(ls "$full" | grep -v json)
  if st 1 "disk full" backup --dir "$full" --database "$big" --compress none; then
    has "$err" "No space left on device" "disk full"
    [[ $(wc -l <"$err") -eq 1 ]] || fail "disk full: more than one line of output"
    [[ $(ls -a "$full" | grep -cv '^\.\.\?$') -eq 2 ]] || fail "disk full left files: $(ls -a "$full")"
    st 0 "older backup intact" backup --dir "$full" verify "$small" && ok "disk full: clear error, partial removed, older backup intact"
  fi
fi
umount "$full"
mounted=""

# --- retention -------------------------------------------------------------
rdir=$tmp/retention
mkdir -p "$rdir"
if st 0 "backup for retention" backup --dir "$rdir"; then
  today=$(ls "$rdir" | grep -v json)
  for ts in 20200101_020000 20200102_020000 20200103_020000 20200104_020000 20200105_020000 20200106_020000; do
    cp "$rdir/$today" "$rdir/backup_$ts.sql.gz"
    sed "s/\"name\": \"$today\"/\"name\": \"backup_$ts.sql.gz\"/" "$rdir/$today.json" >"$rdir/backup_$ts.sql.gz.json"
  done
  sed -i 's/"verified": true/"verified": false/' "$rdir/backup_20200106_020000.sql.gz.json"
  cp "$rdir/$today" "$rdir/backup_20191231_020000.sql.gz"  # no manifest
  cp "$rdir/$today" "$rdir/backup_20200101.sql.gz"         # the runbook's cron name
  echo notes >"$rdir/notes.txt"
  before=$(ls "$rdir" | sort)
  if st 0 "prune --dry-run" --dry-run backup --dir "$rdir" prune; then
    [[ $(ls "$rdir" | sort) == "$before" ]] || fail "prune --dry-run deleted files"
    has "$out" "4 backup(s) would be deleted" "prune --dry-run"
  fi
  if st 0 "prune" backup --dir "$rdir" prune; then
    want=$(printf '%s\n' "$today" "$today.json" backup_20200104_020000.sql.gz backup_20200104_020000.sql.gz.json \
      backup_20200105_020000.sql.gz backup_20200105_020000.sql.gz.json backup_20191231_020000.sql.gz \
      backup_20200101.sql.gz notes.txt | sort)
    [[ $(ls "$rdir" | sort) == "$want" ]] || fail "prune kept: $(ls "$rdir" | tr '\n' ' ')"
    ok "retention keeps the newest 3 verified, foreign files and manifest-less backups"
  fi
fi

# --- cron: quiet, metrics, webhook on failure -------------------------------
metrics=$tmp/backup.prom
if st 0 "quiet backup" backup --quiet --metrics-file "$metrics"; then
  [[ ! -s $out && ! -s $err ]] || fail "--quiet printed something on success"
  grep -q '^spilttea_backup_last_run_success{kind="full"} 1$' "$metrics" || fail "metrics: no success"
  grep -q '^spilttea_backup_last_success_size_bytes{kind="full"} [1-9]' "$metrics" || fail "metrics: no size"
  ok "quiet backup with metrics"
fi
# A webhook that records what it gets (busybox httpd and a CGI, on loopback).
mkdir -p "$tmp/www/cgi-bin"
printf '#!/bin/sh\nhead -c "$CONTENT_LENGTH" >"%s"\nprintf "Content-Type: text/plain\\r\\n\\r\\nok\\n"\n' \
  "$tmp/hook.req" >"$tmp/www/cgi-bin/hook"
chmod 755 "$tmp/www/cgi-bin/hook"
for _ in 1 2 3 4 5 6 7 8; do # a free port: httpd exits at once when the bind fails
  hook_port=$((20000 + RANDOM % 20000))
  busybox httpd -f -p "127.0.0.1:$hook_port" -h "$tmp/www" 2>/dev/null &
  hook_pid=$!
  sleep 0.2
  kill -0 "$hook_pid" 2>/dev/null && break
done
bg+=("$hook_pid")
cat >>"$cfg" <<EOF
notify: { webhook_url: "http://127.0.0.1:$hook_port/cgi-bin/hook" }
EOF
# The backend goes first: with postgres gone its health check would log
# errors, and `health` counts those for a while afterwards.
docker stop -t 5 spilttea-backend >/dev/null
docker stop -t 5 spilttea-postgres >/dev/null
t0=$(date +%s%N)
if st 1 "postgres stopped" backup --quiet --metrics-file "$metrics"; then
  ms=$((($(date +%s%N) - t0) / 1000000))
  [[ $ms -lt 5000 ]] || fail "postgres stopped: took ${ms}ms"
  has "$err" "cannot connect to postgres" "postgres stopped"
  [[ $(wc -l <"$err") -eq 1 && ! -s $out ]] || fail "--quiet failure is not one line"
  grep -q '^spilttea_backup_last_run_success{kind="full"} 0$' "$metrics" || fail "metrics: failure not recorded"
  grep -q '^spilttea_backup_last_success_timestamp_seconds{kind="full"} [1-9]' "$metrics" || fail "metrics: last success lost"
  ok "postgres stopped: one clear line in ${ms}ms, metrics say so"
fi
docker start spilttea-postgres >/dev/null
pg_ready || fail "postgres did not come back"
docker start spilttea-backend >/dev/null
backend_ready || fail "backend did not come back"

grep -q '"event":"backup_failed"' "$tmp/hook.req" || fail "webhook did not get the failure: $(cat "$tmp/hook.req")"

# --- via: local (this host's pg_dump and psql, password in their environment)
sed -e 's/^backup: { dir: \(.*\), keep_days: 7, keep_min: 3 }$/backup: { dir: \1, keep_days: 7, keep_min: 3, via: local }/' \
  -e '/^notify:/d' "$cfg" >"$tmp/local.yaml"
grep -q 'via: local' "$tmp/local.yaml" || fail "could not write the via: local configuration"
n=$((n + 1))
out=$tmp/out.$n
err=$tmp/err.$n
if setsid -w "$bin" -c "$tmp/local.yaml" backup --compress zstd </dev/null >"$out" 2>"$err"; then
  f=$(newest)
  grep -q '"via": "local"' "$bdir/$f.json" || fail "via local: manifest says otherwise"
  n=$((n + 1))
  out=$tmp/out.$n
  err=$tmp/err.$n
  setsid -w "$bin" -c "$tmp/local.yaml" backup test-restore "$f" </dev/null >"$out" 2>"$err" ||
    fail "via local: test-restore failed: $(cat "$err")"
  ok "via local: backup and test-restore"
else
  fail "via local: backup failed: $(cat "$err")"
fi

# --- schedule, and the password nowhere --------------------------------------
st 0 "schedule" backup schedule --print && has "$out" "OnCalendar=*-*-* 02:00:00" "schedule"
if grep -rqF -- "$PGPASSWORD" "$tmp"/out.* "$tmp"/err.* "$tmp/state" "$bdir" 2>/dev/null; then
  fail "the postgres password appears in output, journal or backups"
fi

[[ $(sums "$db") == "$sums0" ]] || fail "the sandbox database is not as it was"
# Restores and stops must not have made the backend log errors (health
# reads them afterwards).
if docker logs --since "$started" spilttea-backend 2>&1 | grep -q ' error: '; then
  fail "the backend logged errors during the test: $(docker logs --since "$started" spilttea-backend 2>&1 | grep ' error: ' | head -3)"
fi
finish "all backup tests passed"
