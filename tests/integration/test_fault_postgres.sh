#!/usr/bin/env bash
# Fault injection against the sandbox's real PostgreSQL (issue 7), on a
# scratch database big enough (about 45 MB) that a dump or a load takes
# seconds:
#   - the server process streaming pg_dump killed -9 (PostgreSQL's crash
#     recovery ends every session), and the whole postgres container killed,
#     mid-backup: exit 1, nothing that looks like a backup, no manifest, no
#     .partial, the database untouched
#   - the server process loading a restore killed -9 mid-restore and
#     mid-test-restore: exit 1, the live database untouched (per-table row
#     counts and checksums), the scratch database gone, the backup still
#     verified
#   - SIGINT and SIGTERM during backup, restore and test-restore: exit 3,
#     partial files and scratch databases removed, lock released (a second
#     run gets it at once, no lock file left), the abort journaled
#   - a full disk (2 MB tmpfs) under backup --dir and under the state_dir of
#     incident snapshot; SIGTERM during incident snapshot
#   - a stale lock from a run killed -9 (backup, restore) is taken over and
#     said so; a lock held by a live (stopped) process still gives exit 4
# Leaves the sandbox as it found it (database list, containers running).
set -euo pipefail
# shellcheck source=tests/integration/fault_lib.sh
. "$(dirname "$0")/fault_lib.sh"

big=spilttea_test_faults
bdir=$tmp/backups
state=$tmp/state
cfg=$tmp/config.yaml
cat >"$cfg" <<EOF
state_dir: $state
docker: { host: "$DOCKER_HOST", timeout: 20s }
services:
  postgres: { container: spilttea-postgres }
  redis:    { container: spilttea-redis }
  backend:  { container: spilttea-backend, health_url: "$ST_BACKEND_URL/health" }
postgres: { host: $ST_PG_HOST, port: $ST_PG_PORT, user: $ST_PG_USER, database: $big, password_file: "$ST_PG_PASSWORD_FILE" }
redis:    { host: 127.0.0.1, port: $ST_REDIS_PORT, password_file: "$ST_REDIS_PASSWORD_FILE" }
backup:   { dir: $bdir, keep_days: 7, keep_min: 3, compress: zstd }
EOF
journal=$state/journal.jsonl

pg_ready || { fail "postgres of the sandbox does not answer"; exit 1; }
dbs0=$(dbs)
on_exit 'pg_ready 60; docker start spilttea-backend >/dev/null 2>&1
	for d in $(q postgres "SELECT datname FROM pg_database WHERE datname LIKE '"'"'spilttea\_test\_faults%'"'"'"); do
		q postgres "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null
	done
	[[ $(dbs) == "$dbs0" ]] || echo "# databases after cleanup: $(dbs)" >&2'

q postgres "DROP DATABASE IF EXISTS $big WITH (FORCE)" >/dev/null
q postgres "CREATE DATABASE $big" >/dev/null
q "$big" "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS t FROM generate_series(1, 150000) g;
          CREATE TABLE small AS SELECT g AS id FROM generate_series(1, 100) g" >/dev/null
sums0=$(sums "$big")
dbs1=$(dbs)
live_intact() { [[ $(sums "$big") == "$sums0" ]]; }
scratch_dbs() { q postgres "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname ~ '^${big}_(restore|testrestore)_'"; }
no_lock_files() { [[ -z $(find "$state/locks" -name '*.lock' 2>/dev/null) ]]; }
# The lock is free: a quick schema backup (same lock) gets it at once.
lock_free() { # NAME
	local t0=$SECONDS
	if st 0 "$1: a second run takes the lock" backup --kind schema --compress none; then
		((SECONDS - t0 < 20)) && ok "$1: lock released, a second run got it at once" ||
			fail "$1: the second run took $((SECONDS - t0)) s"
	fi
}
# Waits until the dump streaming into DIR has written more than 64 KiB.
dump_streaming() { # DIR
	local p
	p=$(find "$1" -maxdepth 6 -name '*.partial' -size +64k 2>/dev/null | head -1)
	[[ -n $p ]]
}
# A psql session loading into a scratch database of $big for a restore
# (KIND restore) or test-restore (KIND testrestore), with 5 MB in it.
loading() { # KIND
	[[ -n $(q postgres "SELECT 1 FROM pg_stat_activity WHERE datname LIKE '${big}\\_$1\\_%' AND state = 'active'
	                    AND pg_database_size(datname) > 5000000") ]]
}
end_of() { journal_end "$journal" "$1"; }

# --- a good backup to restore from ---------------------------------------------
st 0 "good backup" backup || exit 1
good=$(published "$bdir")
[[ $(wc -l <<<"$good") == 2 ]] || fail "good backup: expected the file and its manifest, got: $good"
good=$(grep -v '\.json$' <<<"$good")
manifest0=$(cat "$bdir/$good.json")

# --- postgres killed mid-backup: the server process serving pg_dump ------------
# The server side of a dump of this size ends in a second, long before the
# client has compressed it: to kill pg_dump's server process surely while
# the dump runs, a session holds a lock that pg_dump waits for. The crash
# ends that session too.
before=$(published "$bdir")
"$pgbin/psql" -X -q -h "$ST_PG_HOST" -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$big" \
	-c "BEGIN; LOCK TABLE small IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT" >/dev/null 2>&1 &
locker=$!
on_exit "kill $locker 2>/dev/null"
dump_waiting() {
	[[ -n $(q postgres "SELECT 1 FROM pg_stat_activity WHERE datname = '$big' AND application_name = 'spilttea-ops'
	                    AND wait_event_type = 'Lock'") ]]
}
until_true 20 q "$big" "SELECT 1 FROM pg_locks WHERE relation = 'small'::regclass AND mode = 'AccessExclusiveLock' AND granted" ||
	fail "could not lock table small"
bg_start kill-dump backup --compress gzip --level 9
if until_true 60 dump_waiting; then
	pg_kill_backend "datname = '$big' AND application_name = 'spilttea-ops' AND wait_event_type = 'Lock'" >/dev/null ||
		fail "no pg_dump session to kill"
	bg_wait "$bgpid" 60
	if [[ $bgrc == 1 ]]; then
		ok "pg killed mid-backup: exit 1"
	else
		fail "pg killed mid-backup: exit $bgrc, expected 1"; sed 's/^/#  /' "$tmp/kill-dump.err" >&2
	fi
	[[ $(grep -c . "$tmp/kill-dump.err") == 1 ]] && grep -q '^error: .*pg_dump' "$tmp/kill-dump.err" &&
		ok "pg killed mid-backup: one line naming pg_dump: $(cat "$tmp/kill-dump.err")" ||
		{ fail "pg killed mid-backup: not one clear line"; sed 's/^/#  /' "$tmp/kill-dump.err" >&2; }
	[[ $(published "$bdir") == "$before" ]] && ok "pg killed mid-backup: nothing published, no manifest" ||
		fail "pg killed mid-backup: published $(comm -13 <(echo "$before") <(published "$bdir"))"
	[[ -z $(partials "$bdir") ]] && ok "pg killed mid-backup: no .partial left" || fail "pg killed mid-backup: left $(partials "$bdir")"
	end_of backup | grep -q '"result": "failed"' && ok "pg killed mid-backup: journaled as failed" ||
		fail "pg killed mid-backup: journal end is $(end_of backup)"
	no_lock_files && ok "pg killed mid-backup: lock released" || fail "pg killed mid-backup: lock file left"
else
	fail "pg killed mid-backup: pg_dump never waited for the lock"
	bg_wait "$bgpid" 60
fi
kill "$locker" 2>/dev/null || true
wait "$locker" 2>/dev/null || true
pg_ready 60 || fail "postgres did not recover from the crash"
live_intact && ok "pg killed mid-backup: database untouched" || fail "pg killed mid-backup: database changed"

# --- the whole postgres container killed mid-backup ----------------------------
# The backend goes first: its health check would log errors while postgres
# is gone, and the health tests count those afterwards.
docker stop -t 5 spilttea-backend >/dev/null
on_exit 'docker start spilttea-backend >/dev/null 2>&1; until_true 60 curl -fsS -o /dev/null "$ST_BACKEND_URL/health"'
before=$(published "$bdir")
bg_start kill-container backup --compress gzip --level 9
if until_true 60 dump_streaming "$bdir"; then
	docker kill spilttea-postgres >/dev/null
	bg_wait "$bgpid" 60
	[[ $bgrc == 1 ]] && ok "postgres container killed mid-backup: exit 1 ($(head -c 200 "$tmp/kill-container.err"))" ||
		{ fail "postgres container killed mid-backup: exit $bgrc"; sed 's/^/#  /' "$tmp/kill-container.err" >&2; }
	[[ $(published "$bdir") == "$before" && -z $(partials "$bdir") ]] &&
		ok "postgres container killed mid-backup: nothing published, no .partial" ||
		fail "postgres container killed mid-backup: left $(comm -13 <(echo "$before") <(published "$bdir")) $(partials "$bdir")"
else
	fail "postgres container killed: the dump never streamed"
fi
docker start spilttea-postgres >/dev/null 2>&1 || true
pg_ready 90 || fail "postgres did not come back after docker kill"
docker start spilttea-backend >/dev/null
until_true 60 curl -fsS -o /dev/null "$ST_BACKEND_URL/health" || fail "the backend did not come back"
live_intact && ok "postgres container killed mid-backup: database untouched" || fail "postgres container killed: database changed"

# --- postgres killed mid-restore: the server process loading the copy ----------
before=$(published "$bdir")
bg_start kill-restore restore "$good" --database "$big" --yes
if until_true 90 loading restore; then
	# psql's session is idle for an instant between two statements of the
	# dump: poll for it active rather than ask once.
	until_true 10 pg_kill_backend "datname LIKE '${big}\\_restore\\_%' AND state = 'active'" || fail "no restore session to kill"
	bg_wait "$bgpid" 90
	[[ $bgrc == 1 ]] && ok "pg killed mid-restore: exit 1" ||
		{ fail "pg killed mid-restore: exit $bgrc, expected 1"; sed 's/^/#  /' "$tmp/kill-restore.err" >&2; }
	grep -q "step 'load' failed" "$tmp/kill-restore.err" && ok "pg killed mid-restore: the error names the load" ||
		{ fail "pg killed mid-restore: no clear error"; sed 's/^/#  /' "$tmp/kill-restore.err" >&2; }
	pg_ready 60 || fail "postgres did not recover"
	live_intact && ok "pg killed mid-restore: live database untouched" || fail "pg killed mid-restore: live database changed"
	left=$(scratch_dbs)
	[[ -z $left ]] && ok "pg killed mid-restore: the scratch database was dropped" ||
		fail "pg killed mid-restore: scratch database left: $left ($(grep -i 'cleanup\|hint' "$tmp/kill-restore.err" | head -2))"
	end_of restore | grep -q '"result": "failed"' && ok "pg killed mid-restore: journaled as failed" ||
		fail "pg killed mid-restore: journal end is $(end_of restore)"
	[[ -z $(partials "$bdir") ]] || fail "pg killed mid-restore: left $(partials "$bdir")"
	[[ $(docker inspect -f '{{.State.Running}}' spilttea-backend) == true ]] || fail "pg killed mid-restore: backend not running"
else
	fail "pg killed mid-restore: the load never started"
	bg_wait "$bgpid" 1
fi
[[ $(dbs) == "$dbs1" ]] || { fail "databases after the restore faults: $(dbs)"; st 0 "restore cleanup" restore cleanup --yes || true; }

# --- postgres killed mid-test-restore ---------------------------------------------
bg_start kill-testrestore backup test-restore "$good"
if until_true 60 loading testrestore; then
	pg_kill_backend "datname LIKE '${big}\\_testrestore\\_%' AND state = 'active'" >/dev/null || fail "no test-restore session to kill"
	bg_wait "$bgpid" 60
	[[ $bgrc == 1 ]] && ok "pg killed mid-test-restore: exit 1 ($(head -c 200 "$tmp/kill-testrestore.err"))" ||
		{ fail "pg killed mid-test-restore: exit $bgrc, expected 1"; sed 's/^/#  /' "$tmp/kill-testrestore.err" >&2; }
	pg_ready 60 || fail "postgres did not recover"
	left=$(scratch_dbs)
	[[ -z $left ]] && ok "pg killed mid-test-restore: the scratch database was dropped" ||
		fail "pg killed mid-test-restore: scratch database left: $left"
	[[ $(cat "$bdir/$good.json") == "$manifest0" ]] && ok "pg killed mid-test-restore: the backup is not marked bad" ||
		fail "pg killed mid-test-restore: the manifest changed: $(grep -E 'verif' "$bdir/$good.json")"
	live_intact && ok "pg killed mid-test-restore: live database untouched" || fail "pg killed mid-test-restore: database changed"
else
	fail "pg killed mid-test-restore: the load never started"
	bg_wait "$bgpid" 1
fi
[[ $(dbs) == "$dbs1" ]] || { fail "databases after the test-restore fault: $(dbs)"; st 0 "restore cleanup" restore cleanup --yes || true; }

# --- SIGINT and SIGTERM during backup, restore and test-restore -------------------
for sig in INT TERM; do
	before=$(published "$bdir")
	bg_start "sig-backup-$sig" backup --compress gzip --level 9
	if until_true 60 dump_streaming "$bdir"; then
		kill -"$sig" "$bgpid"
		bg_wait "$bgpid" 30
		[[ $bgrc == 3 ]] && ok "SIG$sig during backup: exit 3" ||
			{ fail "SIG$sig during backup: exit $bgrc, expected 3"; sed 's/^/#  /' "$tmp/sig-backup-$sig.err" >&2; }
		[[ $(published "$bdir") == "$before" && -z $(partials "$bdir") ]] &&
			ok "SIG$sig during backup: nothing published, partial removed" ||
			fail "SIG$sig during backup: left $(partials "$bdir") $(comm -13 <(echo "$before") <(published "$bdir"))"
		no_lock_files || fail "SIG$sig during backup: lock file left"
		end_of backup | grep -q '"result": "aborted"' && ok "SIG$sig during backup: journaled as aborted" ||
			fail "SIG$sig during backup: journal end is $(end_of backup)"
		lock_free "SIG$sig during backup"
	else
		fail "SIG$sig during backup: the dump never streamed"
	fi

	bg_start "sig-restore-$sig" restore "$good" --database "$big" --yes
	if until_true 90 loading restore; then
		kill -"$sig" "$bgpid"
		bg_wait "$bgpid" 60
		[[ $bgrc == 3 ]] && ok "SIG$sig during restore: exit 3" ||
			{ fail "SIG$sig during restore: exit $bgrc, expected 3"; sed 's/^/#  /' "$tmp/sig-restore-$sig.err" >&2; }
		live_intact && ok "SIG$sig during restore: live database untouched" || fail "SIG$sig during restore: live database changed"
		[[ -z $(scratch_dbs) ]] && ok "SIG$sig during restore: scratch database dropped" ||
			fail "SIG$sig during restore: left $(scratch_dbs)"
		[[ -z $(partials "$bdir") ]] || fail "SIG$sig during restore: left $(partials "$bdir")"
		no_lock_files || fail "SIG$sig during restore: lock file left"
		end_of restore | grep -q '"result": "aborted"' && ok "SIG$sig during restore: journaled as aborted" ||
			fail "SIG$sig during restore: journal end is $(end_of restore)"
		lock_free "SIG$sig during restore"
	else
		fail "SIG$sig during restore: the load never started"
		bg_wait "$bgpid" 1
	fi

	bg_start "sig-testrestore-$sig" backup test-restore "$good"
	if until_true 60 loading testrestore; then
		kill -"$sig" "$bgpid"
		bg_wait "$bgpid" 60
		[[ $bgrc == 3 ]] && ok "SIG$sig during test-restore: exit 3" ||
			{ fail "SIG$sig during test-restore: exit $bgrc, expected 3"; sed 's/^/#  /' "$tmp/sig-testrestore-$sig.err" >&2; }
		[[ -z $(scratch_dbs) ]] && ok "SIG$sig during test-restore: scratch database dropped" ||
			fail "SIG$sig during test-restore: left $(scratch_dbs)"
		[[ $(cat "$bdir/$good.json") == "$manifest0" ]] || fail "SIG$sig during test-restore: the manifest changed"
		end_of backup-test-restore | grep -q '"result": "aborted"' && ok "SIG$sig during test-restore: journaled as aborted" ||
			fail "SIG$sig during test-restore: journal end is $(end_of backup-test-restore)"
	else
		fail "SIG$sig during test-restore: the load never started"
		bg_wait "$bgpid" 1
	fi
done
[[ $(dbs) == "$dbs1" ]] || { fail "databases after the signals: $(dbs)"; st 0 "restore cleanup" restore cleanup --yes || true; }

# --- a full disk under backup --dir -----------------------------------------------
full=$tmp/full
small_disk "$full" 2m
if st 1 "disk full during backup" backup --dir "$full" --compress gzip --level 1; then
	has "$err" "No space left on device" "disk full during backup" && ok "disk full during backup: exit 1, says so"
	[[ -z $(published "$full") && -z $(partials "$full") ]] && ok "disk full during backup: nothing left in the directory" ||
		fail "disk full during backup: left $(ls -A "$full")"
	end_of backup | grep -q '"result": "failed"' && ok "disk full during backup: journaled as failed" ||
		fail "disk full during backup: journal end is $(end_of backup)"
fi

# --- stale locks: a run killed -9 holding it ---------------------------------------
bg_start stale-backup backup --compress gzip --level 9
stale=$bgpid
if until_true 60 dump_streaming "$bdir"; then
	kill -9 "$stale"
	bg_wait "$stale" 10
	[[ -n $(find "$state/locks" -name 'backup.lock') ]] && ok "kill -9: the lock file stays behind" ||
		fail "kill -9: no lock file left to take over"
	if st 0 "backup after a kill -9" backup --kind schema --compress none; then
		has "$err" "stale lock from pid $stale" "stale lock" && ok "stale lock from pid $stale detected and taken over"
		has "$out" "removed 1 leftover" "stale lock: partial swept"
	fi
	[[ -z $(partials "$bdir") ]] || fail "stale lock: partial left: $(partials "$bdir")"
else
	fail "stale lock: the dump never streamed"
fi
# A restore killed -9 mid-load: its scratch database stays; the next run
# under the same lock takes over and restore cleanup drops it.
bg_start stale-restore restore "$good" --database "$big" --yes
stale=$bgpid
if until_true 90 loading restore; then
	kill -9 "$stale"
	bg_wait "$stale" 10
	if st 0 "restore cleanup after a kill -9" restore cleanup --yes; then
		grep -qF "stale lock from pid $stale" "$out" "$err" && ok "restore killed -9: stale lock taken over by restore cleanup" ||
			{ fail "restore killed -9: takeover not reported"; sed 's/^/#  /' "$out" "$err" >&2; }
		[[ -z $(scratch_dbs) ]] && ok "restore killed -9: restore cleanup dropped its scratch database" ||
			fail "restore killed -9: left $(scratch_dbs)"
	fi
	live_intact && ok "restore killed -9: live database untouched" || fail "restore killed -9: live database changed"
else
	fail "stale restore: the load never started"
	bg_wait "$bgpid" 1
fi
# A live holder, even a stopped one, keeps its lock: exit 4.
bg_start live-holder backup --compress gzip --level 9
holder=$bgpid
if until_true 60 dump_streaming "$bdir"; then
	kill -STOP "$holder"
	on_exit "kill -CONT $holder 2>/dev/null"
	if st 4 "a live holder" backup --kind schema --compress none; then
		has "$err" "locked by pid $holder" "live holder" && ok "a lock held by a live (stopped) process: exit 4 naming it"
	fi
	kill -CONT "$holder"
	kill -TERM "$holder"
	bg_wait "$holder" 30
	[[ $bgrc == 3 ]] || fail "the stopped holder, continued and terminated: exit $bgrc"
else
	fail "live holder: the dump never streamed"
fi

# --- incident snapshot: a full disk under its state_dir, and SIGTERM --------------
icfg=$tmp/incident.yaml
istate=$tmp/istate
small_disk "$istate" 2m
sed "s|^state_dir: .*|state_dir: $istate/state|" "$cfg" >"$icfg"
cfg_saved=$cfg
cfg=$icfg
if st 1 "disk full during incident snapshot" --yes incident snapshot; then
	has "$err" "No space left on device" "snapshot disk full" && ok "disk full during snapshot: exit 1, says so"
	[[ -z $(partials "$istate") ]] && ok "disk full during snapshot: no .partial left" ||
		fail "disk full during snapshot: left $(partials "$istate")"
	[[ -z $(published "$istate/state/incidents") ]] && ok "disk full during snapshot: no backup-looking dump left" ||
		fail "disk full during snapshot: left $(published "$istate/state/incidents")"
	ev=$(find "$istate/state/incidents" -maxdepth 2 -name 'evidence-*' | head -1)
	if [[ -n $ev && -f $ev/SHA256SUMS ]]; then
		grep -q '"failed": [1-9]' "$ev/collection.json" && ok "disk full during snapshot: collection.json lists what is missing" ||
			fail "disk full during snapshot: the evidence looks complete"
	fi
	no_lock_files_in() { [[ -z $(find "$1" -name '*.lock' 2>/dev/null) ]]; }
	no_lock_files_in "$istate/state/locks" && ok "disk full during snapshot: locks released" || fail "disk full during snapshot: lock files left"
fi
umount "$istate"
mkdir -p "$tmp/istate2"
sed "s|^state_dir: .*|state_dir: $tmp/istate2/state|" "$cfg_saved" >"$icfg"
bg_start sig-snapshot --yes incident snapshot
if until_true 60 dump_streaming "$tmp/istate2"; then
	kill -TERM "$bgpid"
	bg_wait "$bgpid" 30
	[[ $bgrc == 3 ]] && ok "SIGTERM during incident snapshot: exit 3" ||
		{ fail "SIGTERM during incident snapshot: exit $bgrc, expected 3"; sed 's/^/#  /' "$tmp/sig-snapshot.err" >&2; }
	[[ -z $(partials "$tmp/istate2") && -z $(published "$tmp/istate2/state/incidents") ]] &&
		ok "SIGTERM during incident snapshot: no partial, no dump left" || fail "SIGTERM during snapshot: left $(partials "$tmp/istate2")"
	[[ -z $(find "$tmp/istate2/state/incidents" -name SHA256SUMS) ]] && ok "SIGTERM during incident snapshot: no SHA256SUMS (not evidence)" ||
		fail "SIGTERM during incident snapshot: the folder looks finished"
	[[ -z $(find "$tmp/istate2/state/locks" -name '*.lock' 2>/dev/null) ]] && ok "SIGTERM during incident snapshot: locks released" ||
		fail "SIGTERM during incident snapshot: lock files left"
	grep -q '"result":"aborted"' "$tmp/istate2/state/journal.jsonl" && ok "SIGTERM during incident snapshot: journaled as aborted" ||
		fail "SIGTERM during incident snapshot: abort not journaled"
else
	fail "SIGTERM during incident snapshot: the dump never streamed"
	bg_wait "$bgpid" 1
fi
cfg=$cfg_saved

live_intact || fail "the scratch database changed"
[[ $(dbs) == "$dbs1" ]] || fail "databases at the end: $(dbs)"
