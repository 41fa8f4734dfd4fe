#!/usr/bin/env bash
# Integration test of `spilttea-ops deploy --checklist` against the
# sandbox: it passes on the healthy sandbox with every attestation; fails
# on a missing attestation, on a missing env variable (without printing any
# value), on a failed migration, and on pending migrations without a recent
# verified backup (which --backup fixes); its JSON and JUnit outputs parse
# and agree with the exit code. Works on copies of the configuration; the
# failed migration row it inserts and the backup it takes are removed.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

need SPILTTEA_OPS_CONFIG ST_SANDBOX_DIR ST_PG_PASSWORD_FILE ST_PG_HOST ST_PG_PORT
B=$ST_BINARY
all=tests,code-review,security-review
good=20260201100000_add_post_pinned
fake=20260201120000_spilttea_test_failed
out=$(mktemp -d "${TMPDIR:-/tmp}/spilttea-test-checklist.XXXXXX")
unset SPILTTEA_ATTEST
pg() {
	PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE") /usr/lib/postgresql/15/bin/psql -X -q -At -v ON_ERROR_STOP=1 \
		-h "$ST_PG_HOST" -p "$ST_PG_PORT" -U spilttea -d spilttea -c "$1"
}
cleanup() {
	rm -rf "${ST_SANDBOX_DIR:?}/migrations/$good"
	pg "DELETE FROM _prisma_migrations WHERE migration_name = '$fake'" >/dev/null 2>&1
	rm -rf "$out"
}
trap cleanup EXIT

# junit FILE: the XML parses; prints "tests failures skipped" of the suite
# and checks there is one testcase per item with a failure per failed one.
junit_counts() {
	python3 - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
suite = root.find("testsuite")
cases = suite.findall("testcase")
fails = [c for c in cases if c.find("failure") is not None]
skips = [c for c in cases if c.find("skipped") is not None]
assert int(suite.get("tests")) == len(cases) > 0
assert int(suite.get("failures")) == len(fails), (suite.get("failures"), len(fails))
assert int(suite.get("skipped")) == len(skips)
for c in fails:
    assert c.find("failure").get("message"), c.get("name")
print(len(cases), len(fails), len(skips), " ".join(c.get("name") for c in fails))
EOF
}
export -f junit_counts

# Healthy sandbox, everything attested.
"$B" deploy --checklist --attest "$all" >"$out/pass" 2>&1
check "passes on the healthy sandbox with all attestations (exit 0)" test $? = 0
check "every machine item is there" bash -c 'for i in env.backend env.frontend docker database migrations.failed migrations.pending backup disk attest.tests; do grep -qE "^  (ok|skip) +$i " "$1" || { echo "$i"; exit 1; }; done' _ "$out/pass"
"$B" deploy --checklist --attest "$all" --format junit >"$out/pass.xml"
check "junit parses: passing run has no failures" bash -c '[[ $(junit_counts "$1" | cut -d" " -f2) == 0 ]]' _ "$out/pass.xml"
"$B" deploy --checklist --attest "$all" --format json >"$out/pass.json"
check "json parses and says passed" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["passed"] is True and d["counts"]["failed"] == 0, d["counts"]
assert {i["id"] for i in d["items"]} >= {"docker", "database", "disk", "attest.code-review"}
' "$out/pass.json"
check "SPILTTEA_ATTEST works like --attest" env SPILTTEA_ATTEST="$all" "$B" deploy --checklist

# A missing attestation.
"$B" deploy --checklist --attest tests,code-review >"$out/att" 2>&1
check "missing attestation: exit 1" test $? = 1
check "missing attestation: names it" grep -qE "^  FAIL +attest.security-review " "$out/att"
"$B" deploy --checklist --attest tests,code-review --format junit >"$out/att.xml"
check "missing attestation: junit has exactly that failure" bash -c \
	'[[ $(junit_counts "$1" | cut -d" " -f2,4) == "1 attest.security-review" ]]' _ "$out/att.xml"
"$B" deploy --checklist --attest tests,bogus >"$out/unk" 2>&1
check "unknown attestation: usage error (exit 2)" test $? = 2

# A missing env variable, in a copy of the config pointing at a copy of backend.env.
grep -v '^JWT_SECRET=' "$ST_SANDBOX_DIR/backend.env" >"$out/backend.env"
chmod 600 "$out/backend.env"
sed "s|$ST_SANDBOX_DIR/backend.env|$out/backend.env|" "$SPILTTEA_OPS_CONFIG" >"$out/config.yaml"
check "the config copy points at the env copy" grep -q "$out/backend.env" "$out/config.yaml"
"$B" -c "$out/config.yaml" deploy --checklist --attest "$all" >"$out/env" 2>&1
check "missing env var: exit 1" test $? = 1
check "missing env var: names JWT_SECRET" grep -qE "^  FAIL +env.backend .*missing or empty: JWT_SECRET" "$out/env"
check "missing env var: no secret value printed" bash -c '
	for k in DATABASE_URL REDIS_URL SMTP_PASSWORD AWS_SECRET_ACCESS_KEY; do
		v=$(sed -n "s/^$k=//p" "$1"); [[ -n $v ]] && grep -qF -- "$v" "$2" && { echo "$k leaked"; exit 1; }
	done; exit 0' _ "$ST_SANDBOX_DIR/backend.env" "$out/env"

# A failed migration recorded in the database.
pg "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count, logs)
    VALUES (gen_random_uuid()::text, 'x', '$fake', now(), 0, 'ERROR: test')" >/dev/null
"$B" deploy --checklist --attest "$all" --format junit >"$out/failed.xml"
check "failed migration: exit 1" test $? = 1
check "failed migration: junit names migrations.failed" bash -c \
	'junit_counts "$1" | grep -qw "migrations.failed"' _ "$out/failed.xml"
check "failed migration: the message names it" grep -q "$fake" "$out/failed.xml"
pg "DELETE FROM _prisma_migrations WHERE migration_name = '$fake'" >/dev/null

# A pending migration with no recent verified backup (an empty backup dir).
cp -r "$src/tests/fixtures/migrations/$good" "$ST_SANDBOX_DIR/migrations/"
mkdir -p "$out/backups"
chmod 700 "$out/backups"
sed "s|$ST_SANDBOX_DIR/backups|$out/backups|" "$SPILTTEA_OPS_CONFIG" >"$out/config2.yaml"
"$B" -c "$out/config2.yaml" deploy --checklist --attest "$all" >"$out/nob" 2>&1
check "pending migration without a backup: exit 1" test $? = 1
check "pending migration listed" grep -qE "^  ok +migrations.pending .*1 pending: $good" "$out/nob"
check "backup item fails" grep -qE "^  FAIL +backup .*no verified full backup" "$out/nob"
# A verified full backup of another database is no backup of this one.
"$B" -c "$out/config2.yaml" backup --database postgres --quiet
check "a backup of another database was taken" test $? = 0
"$B" -c "$out/config2.yaml" deploy --checklist --attest "$all" >"$out/otherdb" 2>&1
check "another database's backup does not satisfy the checklist: exit 1" test $? = 1
check "backup item still fails" grep -qE "^  FAIL +backup .*no verified full backup" "$out/otherdb"
"$B" -c "$out/config2.yaml" deploy --checklist --attest "$all" --backup >"$out/withb" 2>&1
check "--backup takes one and the checklist passes" test $? = 0
check "--backup: the backup exists and verifies" bash -c \
	'f=$(ls "$2"/backup_*.sql.gz | head -n 1) && "$1" -c "$3" backup verify "$f"' _ "$B" "$out/backups" "$out/config2.yaml"
check "then a recent verified backup satisfies it without --backup" \
	"$B" -c "$out/config2.yaml" deploy --checklist --attest "$all"

tap_finish
