#!/usr/bin/env bash
# Integration test of `spilttea-ops migrate` against the sandbox: status is
# clean on a fresh sandbox; a pending migration is listed and planned;
# `migrate up` takes a verified backup BEFORE applying it (the backup lacks
# the new column), applies it and leaves the backend healthy; a failing
# migration exits 1 with the exact restore command, leaves a verified,
# restorable backup and is listed as failed; a later up refuses (exit 3);
# rollback db restores the pre-migration backup; resolve marks it rolled back;
# a SIGHUP during up's backup stops it cleanly (exit 3, nothing applied).
# Uses the fixtures in tests/fixtures/migrations and puts the database, the
# migrations folder and the backups directory back as they were.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

need SPILTTEA_OPS_CONFIG ST_SANDBOX_DIR ST_PG_PASSWORD_FILE ST_PG_HOST ST_PG_PORT
B=$ST_BINARY
migs=$ST_SANDBOX_DIR/migrations
backups=$ST_SANDBOX_DIR/backups
good=20260201100000_add_post_pinned
bad=20260201110000_add_report_reviewer
out=$(mktemp -d "${TMPDIR:-/tmp}/spilttea-test-migrate.XXXXXX")
pg() {
	PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE") /usr/lib/postgresql/15/bin/psql -X -q -At -v ON_ERROR_STOP=1 \
		-h "$ST_PG_HOST" -p "$ST_PG_PORT" -U spilttea -d spilttea -c "$1"
}
backups_now() { find "$backups" -maxdepth 1 -name 'backup_*.sql*' ! -name '*.json' -printf '%f\n' | sort; }

cleanup() {
	rm -rf "${migs:?}/$good" "${migs:?}/$bad"
	pg "ALTER TABLE \"Post\" DROP COLUMN IF EXISTS pinned; ALTER TABLE \"Report\" DROP COLUMN IF EXISTS \"reviewerId\";
	    DELETE FROM _prisma_migrations WHERE migration_name IN ('$good', '$bad')" >/dev/null 2>&1
	"$B" --yes restore cleanup >/dev/null 2>&1
	# Only the backups this test made go.
	comm -13 "$out/backups.before" <(backups_now) 2>/dev/null | while read -r f; do
		rm -f "$backups/$f" "$backups/$f.json"
	done
	rm -rf "$out"
}
trap cleanup EXIT
backups_now >"$out/backups.before"

# A fresh sandbox: every folder applied.
check "status clean on the sandbox (exit 0)" bash -c '"$1" migrate status | grep -q "up to date"' _ "$B"

# One pending migration.
cp -r "$src/tests/fixtures/migrations/$good" "$migs/"
"$B" migrate status >"$out/st" 2>&1
check "status exits 1 with a pending migration" test $? = 1
check "status lists it as pending" grep -qE "^  pending +$good" "$out/st"
check "status --format json parses and counts it" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["clean"] is False and d["counts"]["pending"] == 1, d["counts"]
assert [m["state"] for m in d["migrations"] if m["name"] == sys.argv[2]] == ["pending"]
' <("$B" migrate status --format json) "$good"
check "plan prints its SQL" bash -c '"$1" migrate plan | grep -q "ADD COLUMN \"pinned\""' _ "$B"
"$B" --dry-run migrate up >"$out/dry" 2>&1
check "dry-run up names the step list and changes nothing" bash -c '
	grep -q "take a verified backup" "$1" && grep -q "$2" "$1" &&
	"$3" migrate status | grep -qE "^  pending +$2" && diff -q "$4" <(find "$5" -maxdepth 1 -name "backup_*.sql*" ! -name "*.json" -printf "%f\n" | sort)' \
	_ "$out/dry" "$good" "$B" "$out/backups.before" "$backups"

# A lost session (SIGHUP) during the backup: nothing applied, the journal
# run ends "aborted", no lock is left, last.json is not left "running".
last_json=$ST_SANDBOX_DIR/state/migrate/last.json
last_before=$(cat "$last_json" 2>/dev/null || true)
"$B" migrate up >"$out/hup" 2>&1 &
pid=$!
for ((i = 0; i < 200; i++)); do
	grep -q -- '-> backup' "$out/hup" && break
	sleep 0.05
done
kill -HUP "$pid"
wait "$pid"
rc=$?
check "SIGHUP during up: exit 3 (interrupted), not killed" test "$rc" = 3
check "SIGHUP during up: the migration is still pending" bash -c \
	'"$1" migrate status | grep -qE "^  pending +$2"' _ "$B" "$good"
check "SIGHUP during up: no lock file left" bash -c \
	'! ls "$1"/state/locks/*.lock 2>/dev/null | grep -E "/(db:spilttea|svc:backend)\.lock$"' _ "$ST_SANDBOX_DIR"
check "SIGHUP during up: the journal run ended 'aborted'" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
run = [r for r in recs if r["type"] == "start" and r.get("pid") == int(sys.argv[2])][-1]["run"]
end = [r for r in recs if r["type"] == "end" and r["run"] == run]
assert end and end[0]["result"] == "aborted", end
' "$ST_SANDBOX_DIR/state/journal.jsonl" "$pid"
check "SIGHUP during up: last.json untouched" test "$(cat "$last_json" 2>/dev/null || true)" = "$last_before"

# migrate up: a verified backup first, then the migration.
"$B" migrate up >"$out/up" 2>&1
rc=$?
check "up exits 0" test "$rc" = 0
new=$(comm -13 "$out/backups.before" <(backups_now) | tail -n 1)
check "up took a backup ($new)" test -n "$new"
check "the backup verifies" "$B" backup verify "$new"
check "the backup was taken before the migration (no 'pinned' column in it)" bash -c \
	'! zcat -f "$1" | grep -q "pinned"' _ "$backups/$new"
check "the column exists now" test "$(pg "SELECT count(*) FROM information_schema.columns WHERE table_name = 'Post' AND column_name = 'pinned'" 2>&1)" = 1
check "status clean after up" bash -c '"$1" migrate status | grep -q "up to date"' _ "$B"
check "up streamed the command's output" grep -q "Applying migration \`$good\`" "$out/up"
check "the journal has the steps in order" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
run = [r for r in recs if r["type"] == "start" and r.get("runbook") == "migrate-up"][-1]["run"]
steps = [r["step"] for r in recs if r["type"] == "step" and r["run"] == run]
assert steps == ["status", "backup", "migrate", "verify", "restart", "health"], steps
end = [r for r in recs if r["type"] == "end" and r["run"] == run][0]
assert end["result"] == "ok", end
' "$ST_SANDBOX_DIR/state/journal.jsonl"
check "backend healthy after up" bash -c \
	'test "$(docker inspect -f "{{.State.Health.Status}}" spilttea-backend)" = healthy'

# A migration that fails.
cp -r "$src/tests/fixtures/migrations/$bad" "$migs/"
before_bad=$(backups_now)
"$B" migrate up >"$out/bad" 2>&1
rc=$?
check "failing migration: up exits 1" test "$rc" = 1
bad_backup=$(comm -13 <(printf '%s\n' "$before_bad") <(backups_now) | tail -n 1)
check "failing migration: a backup was taken first ($bad_backup)" test -n "$bad_backup"
check "failing migration: the exact restore command is printed" \
	grep -qx "  spilttea-ops restore $bad_backup" "$out/bad"
check "failing migration: the error quotes the database error" grep -q 'relation "Moderator" does not exist' "$out/bad"
check "failing migration: the hint names resolve --rolled-back" grep -q "migrate resolve --rolled-back $bad" "$out/bad"
check "failing migration: its backup verifies" "$B" backup verify "$bad_backup"
check "failing migration: its backup test-restores" "$B" backup test-restore "$bad_backup"
"$B" migrate status >"$out/st2" 2>&1
check "status exits 1 and lists it as failed" bash -c '[[ $1 == 1 ]] && grep -qE "^  failed +$2" "$3"' _ $? "$bad" "$out/st2"
check "status --format json counts one failed" python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["counts"]["failed"] == 1 and d["clean"] is False, d["counts"]
' < <("$B" migrate status --format json)
"$B" migrate up >"$out/again" 2>&1
check "up refuses while a failed migration is recorded (exit 3)" test $? = 3
"$B" migrate up --no-backup >"$out/nb" 2>&1
check "--no-backup without --reason is a usage error (exit 2)" test $? = 2

# rollback db restores the pre-migration backup (restore's swap).
if "$B" help rollback >/dev/null 2>&1; then
	# Never under a running migration: while the database's lock (the one
	# migrate up holds) is taken, rollback db refuses (exit 4) and restores
	# nothing (review 2 item 20).
	mkdir -p "$ST_SANDBOX_DIR/state/locks"
	# Until the holder has the lock (it says so in a file), not a fixed
	# nap: a rollback that ran before would restore for real.
	rm -f "$out/held"
	flock -n -F "$ST_SANDBOX_DIR/state/locks/db:$ST_PG_DATABASE.lock" \
		sh -c ': >"$1"; exec sleep 30' _ "$out/held" &
	holder=$!
	for ((i = 0; i < 300; i++)); do
		[[ -e $out/held ]] && break
		sleep 0.1
	done
	check "the test's holder took the database lock" test -e "$out/held"
	"$B" --yes rollback db >"$out/rb-locked" 2>&1
	rc=$?
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	check "rollback db while the database lock is held exits 4" test "$rc" = 4
	check "rollback db while locked says a migration runs" grep -q "cannot roll the database back while a migration runs" "$out/rb-locked"
	check "rollback db while locked restored nothing" bash -c '! grep -q "restored into" "$1"' _ "$out/rb-locked"
	# The prompt says how old the backup is: without a terminal, the
	# refusal's hint shows it.
	"$B" rollback db </dev/null >"$out/rb-prompt" 2>&1
	rc=$?
	check "rollback db without --yes and without a terminal exits 3" test "$rc" = 3
	check "rollback db's prompt says when the backup was taken and how long ago" \
		grep -qE "\(taken 20[0-9-]+T[0-9:.]+Z, [0-9][0-9a-z.]* ago\) over database 'spilttea'\? What was written to it since is lost" "$out/rb-prompt"
	"$B" --yes rollback db >"$out/rb" 2>&1
	rc=$?
	check "rollback db exits 0" test "$rc" = 0
	check "rollback db restored the pre-migration backup" grep -q "$bad_backup" "$out/rb"
	check "after rollback db: the failed row is gone, the migration pending again" bash -c \
		'"$1" migrate status | grep -qE "^  pending +$2"' _ "$B" "$bad"
	check "after rollback db: the good migration is still applied" bash -c \
		'"$1" migrate status | grep -qE "^  applied +$2"' _ "$B" "$good"
else
	check "resolve --rolled-back marks it" "$B" migrate resolve --rolled-back "$bad"
	check "after resolve: pending again, one attempt rolled back" bash -c \
		'"$1" migrate status | grep -E "^  pending +$2" | grep -q "1 attempt rolled back"' _ "$B" "$bad"
fi
"$B" migrate resolve --rolled-back "$bad" >"$out/res" 2>&1
check "resolve --rolled-back of a migration that is not failed is refused (exit 3)" test $? = 3

tap_finish
