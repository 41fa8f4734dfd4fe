#!/usr/bin/env bash
# End to end: `spilttea-ops incident ...` against the sandbox, as one scripted
# incident (start, snapshot, investigate, lock-users, flush-sessions,
# rotate-jwt, rotate-secret, top-ips, block-ip, report, close) and a second
# one for contain. Checks what each command must guarantee:
#   snapshot    every artefact, 0700/0600, SHA256SUMS verifies, archive verifies
#   investigate finds a seeded brute-force user the runbook's own query misses
#   lock-users  an injection attempt is refused and changes nothing; good ids
#               lock exactly those users
#   flush       only keys matching the pattern go; FLUSHALL needs the typed word
#   rotate-jwt  only the JWT_SECRET line changes, the mode stays, the backend
#               comes back healthy with the new value; the secret is in no
#               output, journal or evidence
#   top-ips     counts a seeded log exactly; X-Forwarded-For only when trusted
#   block-ip    prints the rule; --apply fails clearly without root / iptables
#               (never run with both: no firewall rule is added here)
#   contain     evidence first, then every container stopped, none removed
#   report      lists every command of the incident in order, checklist ticked
# Everything the test changes in the sandbox it puts back (users deleted,
# keys removed, containers started).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
setsid=$(command -v setsid)
setpriv=$(command -v setpriv)
need ST_SANDBOX_DIR SPILTTEA_OPS_CONFIG
sb=$ST_SANDBOX_DIR

tmp=$(mktemp -d /tmp/spilttea-test-incident.XXXXXX)
chmod 755 "$tmp"
state=$tmp/state
cfg=$tmp/config.yaml
tag=spilttea-test-$$
seeded=spilttea-test-accesslog-$$

# psql's own arguments, in the container (not lib.sh's psql_q SQL).
psql_q() { docker exec -i spilttea-postgres psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
redis_q() { docker exec spilttea-redis redis-cli --no-auth-warning "$@"; }

cleanup() {
  set +e
  docker rm -f "$seeded" >/dev/null 2>&1
  for c in spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend; do
    [[ $(docker inspect -f '{{.State.Running}}' "$c" 2>/dev/null) == true ]] || docker start "$c" >/dev/null 2>&1
  done
  psql_q -c "DELETE FROM \"User\" WHERE email LIKE '$tag-%'" >/dev/null 2>&1
  redis_q --scan --pattern "$tag*" | while read -r k; do redis_q unlink "$k" >/dev/null; done
  [[ -f $sb/backend.env ]] && chmod 600 "$sb/backend.env"
  rm -rf "$tmp"
}
trap cleanup EXIT

# The sandbox configuration with a state_dir of our own, and the session
# pattern of this test's keys.
sed "s|^state_dir:.*|state_dir: \"$state\"|" "$SPILTTEA_OPS_CONFIG" >"$cfg"
cat >>"$cfg" <<EOF
incident:
  session_pattern: "$tag-sess:*"
EOF

# lib.sh's run_st with this test's configuration, every output kept in
# $tmp/all-output (searched for secrets at the end).
run_st() {
  local want=$1 name=$2 got
  shift 2
  set +e
  setsid -w "$bin" -c "$cfg" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  got=$?
  set -e
  cat "$tmp/out" "$tmp/err" >>"$tmp/all-output"
  if [[ $got -ne $want ]]; then
    fail "$name: exit $got, expected $want"
    sed 's/^/  out: /' "$tmp/out" >&2
    sed 's/^/  err: /' "$tmp/err" >&2
  fi
}

wait_healthy() { # every sandbox container healthy again, within 60 s
  local c deadline=$((SECONDS + 60))
  for c in spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend; do
    until [[ $(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>/dev/null) == healthy ]]; do
      ((SECONDS < deadline)) || { fail "$c not healthy again"; return 1; }
      sleep 0.3
    done
  done
}

table_sum() { psql_q -c "SELECT md5(string_agg(id || ':' || password || ':' || \"isActive\", ',' ORDER BY id)) FROM \"User\""; }

# ---- start --------------------------------------------------------------------
run_st 0 "start" incident start --title "integration test $tag"
id=$(sed -n 's/^opened incident \([^:]*\):.*/\1/p' "$tmp/out")
[[ -n $id && -d $state/incidents/$id ]] || fail "start: no incident folder ($id)"
[[ $(stat -c %a "$state/incidents/$id") == 700 ]] || fail "start: incident folder mode"
run_st 3 "start twice" incident start
contains "$tmp/err" "is still open" "start twice"

# ---- snapshot -------------------------------------------------------------------
run_st 0 "snapshot" incident snapshot --archive
ev=$(sed -n 's/^evidence: //p' "$tmp/out")
if [[ ! -d $ev ]]; then
  fail "snapshot: no evidence folder"
else
  for f in docker/version.json docker/info.json docker/system-df.json containers/list.json \
    images/list.json volumes/list.json redis/info.txt journal.jsonl collection.json SHA256SUMS; do
    [[ -f $ev/$f ]] || fail "snapshot: $f missing"
  done
  for c in spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend; do
    [[ -s $ev/logs/$c.log ]] || fail "snapshot: logs of $c missing or empty"
    [[ -s $ev/containers/$c.json ]] || fail "snapshot: inspect of $c missing"
  done
  grep -qE '^20[0-9-]+T[0-9:.]+Z (stdout|stderr) ' "$ev/logs/spilttea-backend.log" || fail "snapshot: log lines without timestamp and stream"
  grep -q ' stderr ' "$ev/logs/spilttea-postgres.log" || fail "snapshot: postgres stderr missing"
  [[ -s $ev/volumes/spilttea-sandbox-pgdata.json ]] || fail "snapshot: volume inspect missing"
  n_images=$(ls "$ev/images" | grep -vc '^list.json$' || true)
  [[ $n_images -ge 3 ]] || fail "snapshot: $n_images image inspects, expected every image"
  grep -q '^redis_version:' "$ev/redis/info.txt" || fail "snapshot: redis INFO"
  dump=$(ls "$ev"/database/backup_*.sql.gz 2>/dev/null | head -1)
  if [[ -z $dump ]]; then
    fail "snapshot: no database dump"
  else
    gzip -t "$dump" || fail "snapshot: database dump does not decompress"
    zcat "$dump" >"$tmp/dump.sql"
    grep -q 'CREATE TABLE public."User"' "$tmp/dump.sql" || fail "snapshot: dump lacks \"User\""
    grep -q '"kind": *"full"' "$dump.json" || fail "snapshot: dump manifest is not of a full dump"
    grep -q '"verified": *true' "$dump.json" || fail "snapshot: dump not verified"
  fi
  grep -q '"collector": "[^"]*@' "$ev/collection.json" || fail "snapshot: collector"
  grep -q '"collected": "20[0-9-]*T[0-9:.]*Z"' "$ev/collection.json" || fail "snapshot: UTC time"
  grep -q '"tool": "spilttea-ops ' "$ev/collection.json" || fail "snapshot: tool version"
  grep -q '"failed": 0' "$ev/collection.json" || fail "snapshot: artefacts failed: $(grep -A1 '"error"' "$ev/collection.json")"
  (cd "$ev" && sha256sum --strict --quiet -c SHA256SUMS) || fail "snapshot: SHA256SUMS does not verify"
  listed=$(wc -l <"$ev/SHA256SUMS")
  present=$(cd "$ev" && find . -type f ! -name SHA256SUMS | wc -l)
  [[ $listed -eq $present ]] || fail "snapshot: SHA256SUMS lists $listed of $present files"
  bad=$(find "$ev" -type d ! -perm 700 -o -type f ! -perm 600 | head -3)
  [[ -z $bad ]] || fail "snapshot: modes: $bad"
  (cd "$(dirname "$ev")" && sha256sum --quiet -c "$(basename "$ev").tar.gz.sha256") || fail "snapshot: archive checksum"
  tar tzf "$ev.tar.gz" >"$tmp/tar.list" || fail "snapshot: archive does not read"
  grep -qx "$(basename "$ev")/SHA256SUMS" "$tmp/tar.list" || fail "snapshot: archive content"
  [[ $(stat -c %a "$ev.tar.gz") == 600 ]] || fail "snapshot: archive mode"
fi

# With postgres down (it happens in incidents) the rest is still collected,
# the manifest still verifies, and the command says what is missing.
docker stop spilttea-postgres >/dev/null
run_st 1 "snapshot without postgres" incident snapshot
docker start spilttea-postgres >/dev/null
contains "$tmp/out" "not collected: database dump (pg_dump, full)" "snapshot without postgres"
contains "$tmp/err" "could not be collected" "snapshot without postgres"
ev_down=$(sed -n 's/^evidence: //p' "$tmp/out")
[[ -s $ev_down/logs/spilttea-postgres.log ]] || fail "snapshot without postgres: logs missing"
[[ -d $ev_down ]] && { (cd "$ev_down" && sha256sum --strict --quiet -c SHA256SUMS) || fail "snapshot without postgres: SHA256SUMS"; }
grep -q '"failed": 1' "$ev_down/collection.json" || fail "snapshot without postgres: failure not recorded"
wait_healthy || true

# ---- investigate ------------------------------------------------------------------
# A user hammered within the hour: 9 failures. The runbook's own query groups by
# email, so each group has one row and "HAVING COUNT(*) > 5" never holds.
psql_q -c "INSERT INTO \"User\" (email, password, \"failedLoginCount\", \"lastFailedLogin\")
           VALUES ('$tag-brute@test.invalid', 'x', 9, (now() AT TIME ZONE 'UTC') - interval '5 minutes'),
                  ('$tag-old@test.invalid', 'x', 40, (now() AT TIME ZONE 'UTC') - interval '3 hours'),
                  ('$tag-few@test.invalid', 'x', 5, (now() AT TIME ZONE 'UTC') - interval '1 minute')"
brute_id=$(psql_q -c "SELECT id FROM \"User\" WHERE email = '$tag-brute@test.invalid'")
run_st 0 "investigate" --format json incident investigate --since 1h --limit 100
python3 - "$tmp/out" "$brute_id" "$tag" <<'EOF' || fail "investigate: seeded brute force not found as expected"
import json, sys
out = json.load(open(sys.argv[1]))
bid, tag = int(sys.argv[2]), sys.argv[3]
rows = out["brute_force"]["rows"]
ids = [r["id"] for r in rows]
assert bid in ids, ids
row = next(r for r in rows if r["id"] == bid)
assert row["failedLoginCount"] == 9 and row["email"] == f"{tag}-brute@test.invalid", row
# Old failures and exactly 5 (not more than 5) do not count.
assert not any(r["email"].startswith(tag + "-old") or r["email"].startswith(tag + "-few") for r in rows), rows
assert out["brute_force"]["count"] == len(rows) and out["brute_force"]["threshold"] == 5
for sec in ("recent_accounts", "recent_posts", "reports"):
    assert "count" in out[sec] and "rows" in out[sec], sec
assert any(r["email"].startswith(tag) for r in out["recent_accounts"]["rows"])
EOF
runbook_rows=$(psql_q -c "SELECT email, COUNT(*) as failed_attempts FROM \"User\"
  WHERE \"lastFailedLogin\" > NOW() - INTERVAL '1 hour' GROUP BY email HAVING COUNT(*) > 5;")
[[ -z $runbook_rows ]] || fail "the runbook's own brute-force query found '$runbook_rows' (it cannot)"
run_st 0 "investigate text" incident investigate --threshold 8
contains "$tmp/out" "$tag-brute@test.invalid" "investigate text"
contains "$tmp/out" "Brute force: more than 8 failed logins" "investigate text"

# ---- lock-users ---------------------------------------------------------------------
psql_q -c "INSERT INTO \"User\" (email, password) VALUES ('$tag-a@test.invalid', 'hash-a'),
           ('$tag-b@test.invalid', 'hash-b'), ('$tag-c@test.invalid', 'hash-c')"
ua=$(psql_q -c "SELECT id FROM \"User\" WHERE email = '$tag-a@test.invalid'")
ub=$(psql_q -c "SELECT id FROM \"User\" WHERE email = '$tag-b@test.invalid'")
uc=$(psql_q -c "SELECT id FROM \"User\" WHERE email = '$tag-c@test.invalid'")
before=$(table_sum)
jlines=$(wc -l <"$state/journal.jsonl")
run_st 2 "lock-users injection" incident lock-users "$ua); UPDATE \"User\" SET password='x'; --" --yes
contains "$tmp/err" "is not a user id" "lock-users injection"
run_st 2 "lock-users OR" incident lock-users "$ua OR 1=1" --yes
run_st 2 "lock-users quote" incident lock-users "$ua'" "$ub" --yes
run_st 1 "lock-users non-integer" incident lock-users "$ua" "abc" --yes
contains "$tmp/err" "'abc' is not an integer id" "lock-users non-integer"
run_st 3 "lock-users unconfirmed" incident lock-users "$ua" "$ub"
contains "$tmp/err" "needs confirmation" "lock-users unconfirmed"
run_st 0 "lock-users dry-run" --dry-run incident lock-users "$ua" "$ub"
contains "$tmp/out" "incident.lock_users" "lock-users dry-run"
[[ $(table_sum) == "$before" ]] || fail "lock-users: a refused or unconfirmed run changed \"User\""
run_st 0 "lock-users" incident lock-users "$ua" "$ub" 2147483000 --yes
contains "$tmp/out" "locked 2 users: $ua $ub" "lock-users"
contains "$tmp/out" "not found: 2147483000" "lock-users"
[[ $(psql_q -c "SELECT count(*) FROM \"User\" WHERE id IN ($ua, $ub) AND password = 'LOCKED' AND NOT \"isActive\"") == 2 ]] ||
  fail "lock-users: the two users are not locked"
[[ $(psql_q -c "SELECT password || \"isActive\" FROM \"User\" WHERE id = $uc") == hash-ctrue ]] || fail "lock-users: user c changed"
after_others=$(psql_q -c "SELECT md5(string_agg(id || ':' || password || ':' || \"isActive\", ',' ORDER BY id)) FROM \"User\" WHERE id NOT IN ($ua, $ub)")
psql_q -c "UPDATE \"User\" SET password = 'hash', \"isActive\" = true WHERE id IN ($ua, $ub)" >/dev/null
[[ $(psql_q -c "SELECT count(*) FROM \"User\" WHERE password = 'LOCKED'") == 0 ]] || fail "lock-users: other users locked"
[[ -n $after_others ]] || fail "lock-users: checksum"

# ---- flush-sessions --------------------------------------------------------------------
for i in 1 2 3 4 5; do redis_q set "$tag-sess:$i" v >/dev/null; done
for k in "$tag-cache:1" "$tag-cache:2" "$tag-sessX" "$tag-sess"; do redis_q set "$k" v >/dev/null; done
run_st 3 "flush unconfirmed" incident flush-sessions
run_st 0 "flush-sessions" incident flush-sessions --yes
contains "$tmp/out" "deleted 5 keys matching '$tag-sess:*'" "flush-sessions"
left=$(redis_q --scan --pattern "$tag*" | sort | tr '\n' ' ')
[[ $left == "$tag-cache:1 $tag-cache:2 $tag-sess $tag-sessX " ]] || fail "flush-sessions: left '$left'"
run_st 2 "flush everything by pattern" incident flush-sessions --pattern '*' --yes
# FLUSHALL wants the word typed on a terminal; a wrong word deletes nothing.
printf 'flushall\n' | script -qec "'$bin' -c '$cfg' incident flush-sessions --all" /dev/null >"$tmp/tty" 2>&1 &&
  fail "flushall: a wrong word was accepted"
[[ $(redis_q --scan --pattern "$tag*" | wc -l) -eq 4 ]] || fail "flushall: a refused confirmation deleted keys"
grep -q "Type 'FLUSHALL' to confirm" "$tmp/tty" || fail "flushall: no typed confirmation asked: $(cat "$tmp/tty")"
printf 'FLUSHALL\n' | script -qec "'$bin' -c '$cfg' incident flush-sessions --all" /dev/null >"$tmp/tty" 2>&1 ||
  fail "flushall: the right word was refused: $(cat "$tmp/tty")"
grep -q "FLUSHALL: [0-9]* keys deleted" "$tmp/tty" || fail "flushall: no count"
[[ $(redis_q dbsize) == 0 ]] || fail "flushall: keys left"

# ---- rotate-jwt ----------------------------------------------------------------------------
benv=$sb/backend.env
chmod 640 "$benv"
cp "$benv" "$tmp/backend.env.before"
old_secret=$(sed -n 's/^JWT_SECRET=//p' "$benv")
old_cid=$(docker inspect -f '{{.Id}}' spilttea-backend)
# What a recreate must keep (the body deploy recreates containers with); the
# image by id: its tag may have moved since (Config.Image then becomes the id).
shape() { docker inspect -f '{{.Image}} {{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}} {{json .Config.Labels}} {{json .Config.Cmd}} {{json .Config.Healthcheck}} {{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}' spilttea-backend; }
old_shape=$(shape)
env_hash() { docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' spilttea-backend |
  sed -n "s/^$1=//p" | tr -d '\n' | sha256sum | cut -c1-64; }
# A backend that does not become ready in time (1 s: its healthcheck needs
# 2): the old container comes back and the env file is put back too.
cp "$cfg" "$tmp/cfg.saved"
printf '  restart_timeout: 1s\n' >>"$cfg"
run_st 1 "rotate-jwt not ready" incident rotate-jwt --yes
cp "$tmp/cfg.saved" "$cfg"
contains "$tmp/err" "the old container runs again" "rotate-jwt not ready"
cmp -s "$benv" "$tmp/backend.env.before" || fail "rotate-jwt not ready: the env file was not put back"
[[ $(stat -c %a "$benv") == 640 ]] || fail "rotate-jwt not ready: mode"
[[ $(docker inspect -f '{{.Id}}' spilttea-backend) == "$old_cid" ]] || fail "rotate-jwt not ready: not the old container"
[[ $(env_hash JWT_SECRET) == $(printf '%s' "$old_secret" | sha256sum | cut -c1-64) ]] ||
  fail "rotate-jwt not ready: the backend lost its old secret"
[[ -z $(docker ps -aq --filter name=spilttea-backend-old-) ]] || fail "rotate-jwt not ready: a container left over"
wait_healthy || true
run_st 0 "rotate-jwt" incident rotate-jwt --yes
new_secret=$(sed -n 's/^JWT_SECRET=//p' "$benv")
[[ $new_secret =~ ^[0-9a-f]{128}$ ]] || fail "rotate-jwt: new secret is not 128 hex digits"
[[ $new_secret != "$old_secret" ]] || fail "rotate-jwt: secret unchanged"
diff <(grep -v '^JWT_SECRET=' "$tmp/backend.env.before") <(grep -v '^JWT_SECRET=' "$benv") >/dev/null ||
  fail "rotate-jwt: other lines changed"
[[ $(grep -n '^JWT_SECRET=' "$benv" | cut -d: -f1) == $(grep -n '^JWT_SECRET=' "$tmp/backend.env.before" | cut -d: -f1) ]] ||
  fail "rotate-jwt: the line moved"
[[ $(stat -c %a "$benv") == 640 ]] || fail "rotate-jwt: mode not kept ($(stat -c %a "$benv"))"
new_cid=$(docker inspect -f '{{.Id}}' spilttea-backend)
[[ $new_cid != "$old_cid" ]] || fail "rotate-jwt: backend not recreated"
[[ $(shape) == "$old_shape" ]] || fail "rotate-jwt: the recreated backend differs: $(shape) (was $old_shape)"
[[ $(docker inspect -f '{{.State.Health.Status}}' spilttea-backend) == healthy ]] || fail "rotate-jwt: backend not healthy"
curl -sf "$ST_BACKEND_URL/health" >/dev/null || fail "rotate-jwt: /health does not answer"
# The running backend has the new value: compare hashes, never the value.
[[ $(env_hash JWT_SECRET) == $(printf '%s' "$new_secret" | sha256sum | cut -c1-64) ]] ||
  fail "rotate-jwt: the backend's JWT_SECRET is not the new one"
[[ -z $(docker ps -aq --filter name=spilttea-backend-old-) ]] || fail "rotate-jwt: old container left"
ls "$state/incidents/$id"/replaced-spilttea-backend-*.log >/dev/null 2>&1 || fail "rotate-jwt: old container's logs not kept"
contains "$tmp/out" "recreated backend (spilttea-backend)" "rotate-jwt"
# rotate-secret from the environment, without restarting.
SMTP_NEW="smtp-$tag-Secret" run_st 0 "rotate-secret" incident rotate-secret SMTP_PASSWORD --from-env SMTP_NEW --no-restart --yes
SMTP_NEW="smtp-$tag-Secret"
[[ $(sed -n 's/^SMTP_PASSWORD=//p' "$benv") == "$SMTP_NEW" ]] || fail "rotate-secret: value not written"
contains "$tmp/out" "must restart: backend (spilttea-backend)" "rotate-secret"
[[ $(docker inspect -f '{{.Id}}' spilttea-backend) == "$new_cid" ]] || fail "rotate-secret --no-restart restarted"
run_st 2 "rotate-secret unset var" incident rotate-secret SMTP_PASSWORD --from-env NOT_SET_$$ --yes
run_st 2 "rotate-secret bad name" incident rotate-secret 'A;B' --generate --yes
run_st 3 "rotate-secret unknown" incident rotate-secret NO_SUCH_VARIABLE_$$ --generate --yes
contains "$tmp/err" "no env file assigns" "rotate-secret unknown"

# ---- top-ips ---------------------------------------------------------------------------------
# A container whose log is a known mix: 30 + 12 + 5 requests from three
# clients, 3 through the local proxy with X-Forwarded-For, 4 lines that are
# no requests (on stderr too).
docker run -d --name "$seeded" --network host --entrypoint /bin/sh spilttea-sandbox/standin:1 -c '
req() { echo "$1 - - [27/Nov/2026:22:41:31 +0000] \"$2 /api/posts HTTP/1.1\" 200 512 \"-\" \"bot/1.0\" \"$3\" rt=0.001"; }
i=0; while [ $i -lt 30 ]; do req 203.0.113.7 GET -; i=$((i+1)); done
i=0; while [ $i -lt 12 ]; do req 198.51.100.23 POST -; i=$((i+1)); done
i=0; while [ $i -lt 5 ]; do req 2001:db8::5 GET -; i=$((i+1)); done
i=0; while [ $i -lt 3 ]; do req 127.0.0.1 GET "192.0.2.44, 127.0.0.1"; i=$((i+1)); done
echo "2026-11-27T22:41:31Z error: database check failed" >&2
echo "listening on 127.0.0.1:1"; echo "203.0.113.7 garbage"; echo "" >&2
exec sleep 600' >/dev/null
for ((i = 0; i < 150; i++)); do # bounded (30 s): a hang would only show as ctest's timeout
  [[ $(docker logs "$seeded" 2>&1 | grep -c 'rt=0.001') -eq 50 ]] && break
  sleep 0.2
done
sed "s|^services:|services:\n  seeded: { container: $seeded }|" "$cfg" >"$tmp/seeded.yaml"
cp "$cfg" "$tmp/cfg.saved"
cp "$tmp/seeded.yaml" "$cfg"
run_st 0 "top-ips" --format json incident top-ips --service seeded --since 1h --limit 3
python3 - "$tmp/out" <<'EOF' || fail "top-ips: counts"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["requests"] == 50 and o["distinct"] == 4 and o["lines"] == 54, o
# IPv6 clients count per /64 (one host has 2^64 addresses).
assert [(t["ip"], t["requests"]) for t in o["top"]] == [("203.0.113.7", 30), ("198.51.100.23", 12), ("2001:db8::/64", 5)], o["top"]
assert not o["approximate"] and all(t["overcount_max"] == 0 for t in o["top"]), o
EOF
run_st 0 "top-ips text" incident top-ips --service seeded
contains "$tmp/out" "50 requests from 4 addresses" "top-ips text"
grep -qE '^ +30 +60\.00 +203\.0\.113\.7$' "$tmp/out" || fail "top-ips text: row of 203.0.113.7"
# Behind a trusted proxy, X-Forwarded-For names the client.
printf '  trusted_proxies: [127.0.0.1]\n' >>"$cfg"
run_st 0 "top-ips trusted" --format json incident top-ips --service seeded --limit 10
python3 - "$tmp/out" <<'EOF' || fail "top-ips trusted: X-Forwarded-For"
import json, sys
o = json.load(open(sys.argv[1]))
got = {t["ip"]: t["requests"] for t in o["top"]}
assert got.get("192.0.2.44") == 3 and "127.0.0.1" not in got, got
EOF
cp "$tmp/cfg.saved" "$cfg"
docker rm -f "$seeded" >/dev/null

# ---- block-ip --------------------------------------------------------------------------------
run_st 0 "block-ip" incident block-ip 203.0.113.7
contains "$tmp/out" "iptables -I INPUT -s 203.0.113.7 -j DROP" "block-ip"
run_st 0 "block-ip v6" incident block-ip 2001:DB8::7
contains "$tmp/out" "ip6tables -I INPUT -s 2001:db8::7 -j DROP" "block-ip v6"
run_st 2 "block-ip bad" incident block-ip "203.0.113.7; iptables -F"
run_st 2 "block-ip loopback" incident block-ip 127.0.0.1 --apply --yes
# --apply as root but without iptables in PATH: refused before anything runs.
mkdir -p "$tmp/empty-path"
set +e
PATH=$tmp/empty-path "$setsid" -w "$bin" -c "$cfg" incident block-ip 203.0.113.7 --apply --yes </dev/null >"$tmp/out" 2>"$tmp/err"
got=$?
set -e
[[ $got -eq 1 ]] || fail "block-ip without iptables: exit $got"
contains "$tmp/err" "iptables is not installed (not found in PATH)" "block-ip without iptables"
# --apply as an unprivileged user (its own state_dir, the config readable).
nobody_state=$tmp/nobody-state
mkdir -p "$nobody_state"
chown nobody "$nobody_state"
sed "s|^state_dir:.*|state_dir: \"$nobody_state\"|" "$cfg" >"$tmp/nobody.yaml"
chmod 644 "$tmp/nobody.yaml"
set +e
PATH=$tmp/empty-path "$setpriv" --reuid=nobody --regid=nogroup --clear-groups \
  "$bin" -c "$tmp/nobody.yaml" incident block-ip 203.0.113.7 --apply --yes </dev/null >"$tmp/out" 2>"$tmp/err"
got=$?
set -e
[[ $got -eq 1 ]] || fail "block-ip as nobody: exit $got ($(cat "$tmp/err"))"
contains "$tmp/err" "adding a firewall rule needs root" "block-ip as nobody"

# ---- report ------------------------------------------------------------------------------------
# Every command that ran is in the timeline; usage errors never ran (and are
# not journaled, like any command refused before it starts).
run_st 0 "report" incident report --output "$tmp/report.md"
[[ $(stat -c %a "$tmp/report.md") == 600 ]] || fail "report: mode"
report=$tmp/report.md
prev=0
for cmd in "incident start --title" "incident snapshot --archive" "incident investigate --since 1h" \
  "incident lock-users $ua abc --yes" "incident lock-users $ua $ub 2147483000 --yes" \
  "incident flush-sessions --yes" "incident flush-sessions --all" "incident rotate-jwt --yes" \
  "incident rotate-secret SMTP_PASSWORD" "incident top-ips --service seeded --since 1h" \
  "incident block-ip 203.0.113.7" "incident report --output"; do
  line=$({ grep -nF -- "$cmd" "$report" || true; } | { grep '### ' || true; } | head -1 | cut -d: -f1)
  if [[ -z $line ]]; then
    fail "report: '$cmd' not in the timeline"
  elif ((line <= prev)); then
    fail "report: '$cmd' out of order"
  else
    prev=$line
  fi
done
contains "$report" "- [x] Evidence preserved before anything was stopped or changed" "report"
contains "$report" "- [x] Suspicious users locked" "report"
contains "$report" "- [x] Sessions cleared" "report"
contains "$report" "- [x] Secret rotated (JWT_SECRET)" "report"
contains "$report" "- [ ] Services stopped" "report"
contains "$report" "- [ ] Abusive addresses blocked at the firewall" "report"
contains "$report" "- [x] Document resolution steps" "report"
contains "$report" "2 user(s) locked (password 'LOCKED', inactive): ids $ua, $ub" "report"
contains "$report" "sha256sum -c SHA256SUMS" "report"
contains "$report" "$(head -1 "$ev/SHA256SUMS" | cut -c1-64)" "report evidence"

# ---- close -----------------------------------------------------------------------------------
run_st 0 "close" incident close
run_st 3 "close again" incident close
run_st 0 "status closed" incident status
contains "$tmp/out" "no incident is open (the last one: $id)" "status closed"
run_st 0 "report after close" incident report --incident "$id"
contains "$tmp/out" "- Closed: " "report after close"

# ---- contain (a second incident, no evidence yet) -------------------------------------------
curl -s -H 'X-Forwarded-For: 198.51.100.99' "$ST_BACKEND_URL/just-before-contain" >/dev/null || true
run_st 3 "contain unconfirmed" incident contain
[[ $(docker inspect -f '{{.State.Running}}' spilttea-backend) == true ]] || fail "contain: stopped without confirmation"
id2=$(cat "$state/incidents/current")
[[ $id2 != "$id" ]] || fail "contain: did not open a new incident"
run_st 0 "contain" incident contain --yes
for c in spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend; do
  [[ $(docker inspect -f '{{.State.Status}}' "$c" 2>/dev/null) == exited ]] || fail "contain: $c not stopped (or removed)"
done
ev2=$(ls -d "$state/incidents/$id2"/evidence-*Z 2>/dev/null | head -1)
[[ -n $ev2 ]] || fail "contain: no evidence collected first"
[[ -n $ev2 ]] && { grep -q 'just-before-contain' "$ev2/logs/spilttea-backend.log" || fail "contain: evidence lacks the last requests"; }
[[ -n $ev2 ]] && { (cd "$ev2" && sha256sum --strict --quiet -c SHA256SUMS) || fail "contain: evidence does not verify"; }
# The journal: the snapshot step before every stop.
python3 - "$state/journal.jsonl" "$id2" <<'EOF' || fail "contain: snapshot not journaled before the stops"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = {r["run"] for r in recs if r.get("type") == "start" and r.get("incident") == sys.argv[2] and r.get("runbook") == "incident-contain"}
steps = [r["step"] for r in recs if r.get("type") == "step" and r["run"] in runs and r["phase"] == "act" and r["result"] == "ok"]
assert steps[0] == "snapshot" and steps[1:3] == ["stop-frontend", "stop-backend"] and len(steps) == 5, steps
EOF
docker start spilttea-postgres spilttea-redis >/dev/null
docker start spilttea-backend spilttea-frontend >/dev/null
wait_healthy || true
# A second contain finds the evidence and skips the snapshot.
run_st 0 "contain again" incident contain --yes
contains "$tmp/out" "snapshot  skipped" "contain again"
[[ $(ls -d "$state/incidents/$id2"/evidence-*Z | wc -l) -eq 1 ]] || fail "contain again: a second snapshot"
docker start spilttea-postgres spilttea-redis >/dev/null
docker start spilttea-backend spilttea-frontend >/dev/null
wait_healthy || true
run_st 0 "close 2" incident close

# ---- secrets: nowhere in output, journal or evidence ---------------------------------------------
for s in "$new_secret" "$old_secret" "$SMTP_NEW"; do
  grep -rqF -- "$s" "$tmp/all-output" && fail "a secret appears in the command output"
  grep -qF -- "$s" "$state/journal.jsonl" && fail "a secret appears in the journal"
  grep -rqF -- "$s" "$state/incidents" && fail "a secret appears in the incident folders"
done
true

if ((failures)); then
  echo "test_incident: $failures failure(s)" >&2
  exit 1
fi
echo "test_incident: ok"
