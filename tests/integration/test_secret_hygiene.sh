#!/usr/bin/env bash
# Secret hygiene (issue 7): every command of cmd/main.c's table, with its
# common options, --dry-run and --format json where they exist, runs with
# known secret values around it:
#   - the Postgres and Redis passwords, given through password_env variables
#   - JWT_SECRET, SMTP_PASSWORD, AWS_SECRET_ACCESS_KEY of the backend .env
#     (the values the running backend container was created with, so they
#     are in its Config.Env as Docker reports it)
#   - a canary only this test knows, added to a copy of the backend .env
# and then stdout, stderr, the journal, dry-run output, reports, incident
# evidence (archives unpacked), backup manifests and metrics, and Prometheus
# files are searched for each value: 0 occurrences. Positive controls prove
# the search finds a planted value. The modes of what the commands created
# are checked: files 0600, directories 0700 (the health --output textfile is
# 0644 by design, for node_exporter, and holds no secret).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need ST_SANDBOX_DIR SPILTTEA_OPS_CONFIG ST_PG_PASSWORD_FILE ST_REDIS_PASSWORD_FILE
sb=$ST_SANDBOX_DIR

tmp=$(mktemp -d /tmp/spilttea-test-hygiene.XXXXXX)
out=$tmp/out     # what the commands print
scan=$tmp/scan   # unpacked archives and compressed files
state=$tmp/state
backups=$tmp/backups
cfg=$tmp/config.yaml
n=0
mkdir -p "$out" "$scan"

cleanup() {
  set +e
  for c in spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend spilttea-proxy; do
    [[ $(docker inspect -f '{{.State.Running}}' "$c" 2>/dev/null) == true ]] || docker start "$c" >/dev/null 2>&1
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

env_value() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

pg_pw=$(cat "$ST_PG_PASSWORD_FILE")
redis_pw=$(cat "$ST_REDIS_PASSWORD_FILE")
jwt=$(env_value "$sb/backend.env" JWT_SECRET)
smtp=$(env_value "$sb/backend.env" SMTP_PASSWORD)
aws=$(env_value "$sb/backend.env" AWS_SECRET_ACCESS_KEY)
canary=hygiene-canary-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
secrets=("$pg_pw" "$redis_pw" "$jwt" "$smtp" "$aws" "$canary")
names=(postgres-password redis-password JWT_SECRET SMTP_PASSWORD AWS_SECRET_ACCESS_KEY canary)
for i in "${!secrets[@]}"; do
  [[ ${#secrets[$i]} -ge 12 ]] || { echo "FAIL: secret ${names[$i]} is missing or short" >&2; exit 1; }
done

# The backend .env the configuration names: the sandbox's, plus the canary.
cp "$sb/backend.env" "$tmp/backend.env"
printf 'HYGIENE_CANARY=%s\n' "$canary" >>"$tmp/backend.env"
chmod 600 "$tmp/backend.env"

# The sandbox configuration with our own state and backup directories, the
# passwords from the environment, and the .env copy.
config_copy "$cfg" "$state" \
  "s|\"$sb/backend.env\"|\"$tmp/backend.env\"|g" \
  "s|^backup: .*|backup: { dir: \"$backups\", keep_days: 7, keep_min: 3, via: exec, compress: gzip }|" \
  "s|password_file: \"$sb/secrets/postgres.password\"|password_env: ST_HYGIENE_PG_PASSWORD|" \
  "s|password_file: \"$sb/secrets/redis.password\"|password_env: ST_HYGIENE_REDIS_PASSWORD|"
grep -q "password_env: ST_HYGIENE_PG_PASSWORD" "$cfg" || fail "config: postgres password_env not set"
grep -q "password_env: ST_HYGIENE_REDIS_PASSWORD" "$cfg" || fail "config: redis password_env not set"
grep -q "$tmp/backend.env" "$cfg" || fail "config: backend env_file not replaced"
export ST_HYGIENE_PG_PASSWORD=$pg_pw ST_HYGIENE_REDIS_PASSWORD=$redis_pw
# Also as the variables other tools read: a command must not echo its env.
export PGPASSWORD=$pg_pw REDISCLI_AUTH=$redis_pw HYGIENE_CANARY=$canary
unset SPILTTEA_OPS_CONFIG

# run WANT-LIST NAME ARGS...: WANT-LIST is the exit codes allowed ("0" or
# "0,1"); the command must not crash (>= 128) in any case.
run() {
  local want=$1 name=$2 got
  shift 2
  n=$((n + 1))
  set +e
  timeout -k 5 300 "$bin" -c "$cfg" "$@" </dev/null >"$out/$n.out" 2>"$out/$n.err"
  got=$?
  set -e
  printf '%s\n' "$name: $*" >"$out/$n.cmd"
  if [[ ,$want, != *,$got,* ]]; then
    fail "$name ($*): exit $got, expected $want"
    head -20 "$out/$n.out" | sed 's/^/  out: /' >&2
    head -20 "$out/$n.err" | sed 's/^/  err: /' >&2
  fi
}

# ---- every command ------------------------------------------------------
run 0 "help" help
for c in help config runbook run deploy rollback health incident backup restore migrate logs db cache diagnose; do
  run 0 "help $c" help "$c"
  run 0 "$c --help" "$c" --help
done
run 0 "version" --version

run 0 "config check" config check
run 0 "config show" config show
run 0 "config show json" config show --format json
run 0 "config show -v" -v config show

run 0 "runbook list" runbook list
run 0 "runbook list json" runbook list --format json
run 0 "runbook actions" runbook actions --format json
for rb in restart-backend clear-cache kill-idle-connections restore selftest diagnose-db-pool; do
  run 0 "runbook show $rb" runbook show "$rb"
  run 0 "runbook check $rb" runbook check "$rb"
done

run 0 "run selftest" run selftest
run 0 "run restart-backend -n" --dry-run run restart-backend
run 0 "run kill-idle -n" -n run kill-idle-connections
run 0 "run clear-cache -n" -n run clear-cache pattern='spilttea-test-hygiene:*'

run 0 "deploy --list" deploy --list
run 0 "deploy --list json" deploy --list --format json
run 0,1 "deploy -n" --dry-run deploy backend --no-build
run 0,1 "deploy -n all" -n deploy all --no-build
run 0,1,3 "deploy --checklist -n" -n deploy --checklist
run 0 "rollback --list" rollback --list
run 0 "rollback --list json" rollback --list --format json
run 0,1,2,3 "rollback -n" -n rollback backend

run 0,1,2 "health" health
run 0,1,2 "health -v" -v health
run 0,1,2 "health json" health --format json
run 0,1,2 "health nagios" -v health --format nagios
run 0,1,2 "health prometheus" health --format prometheus --output "$out/health.prom"

run 0 "backup" backup --metrics-file "$out/backup.prom"
run 0 "backup list" backup list
run 0 "backup list json" backup list --format json
run 0 "backup verify --all" backup verify --all
run 0 "backup prune -n" -n backup prune
run 0 "backup schedule" backup schedule --print --metrics-file "$out/backup.prom"
latest=$(ls "$backups" | grep -E '^backup_[0-9_]+\.sql\.gz$' | tail -n 1 || true)
[[ -n $latest ]] || fail "backup: no backup file in $backups"
if [[ -n $latest ]]; then
  run 0 "backup verify" -v backup verify "$latest"
  run 0 "backup test-restore" backup test-restore "$latest"
  run 0 "restore -n" -n restore "$latest"
fi
run 0 "restore cleanup -n" -n restore cleanup

run 0,1 "migrate status" migrate status
run 0,1 "migrate status json" migrate status --format json
run 0 "migrate plan" migrate plan
run 0,1,3 "migrate up -n" -n migrate up

run 0 "logs" logs --tail 50
run 0 "logs summary" logs --since 1h --summary
run 0 "logs errors" logs backend --errors --tail 20

run 0 "db size" db size
run 0 "db size json" db size --format json
run 0 "db connections" db connections --format json
run 0 "db slow-queries" db slow-queries --format json
run 0 "db kill-idle -n" -n db kill-idle
run 0 "db vacuum -n" -n db vacuum --analyze
run 0 "db analyze -n" -n db analyze
run 0 "cache info" cache info
run 0 "cache info json" cache info --format json
run 0 "cache clear -n" -n cache clear 'spilttea-test-hygiene:*'

run 0 "diagnose --list" diagnose --list
run 0,1 "diagnose" diagnose
run 0,1 "diagnose json" diagnose --format json
run 0,1,3 "diagnose --fix -n" -n diagnose --fix

run 0 "incident start" incident start --title "hygiene test"
run 0 "incident status" incident status --format json
run 0 "incident snapshot" incident snapshot --archive
run 0 "incident investigate" incident investigate --format json
run 0 "incident top-ips" incident top-ips --format json
run 0 "incident block-ip" incident block-ip 203.0.113.9 --format json
run 0,3 "incident lock-users -n" -n incident lock-users 2147483000
run 0 "incident flush-sessions -n" -n incident flush-sessions --pattern 'spilttea-test-hygiene:*'
run 0 "incident rotate-jwt -n" -n incident rotate-jwt
run 0 "incident rotate-secret -n" -n incident rotate-secret SMTP_PASSWORD --generate --no-restart
run 0 "incident status text" -v incident status
run 0 "incident report" incident report --output "$out/report.md"
run 0 "incident close" incident close

# ---- search -------------------------------------------------------------
# Unpacked copies of everything compressed, so the search sees its bytes.
unpack_into() { # DIR
  local f rel
  while IFS= read -r -d '' f; do
    rel=${f#/}
    mkdir -p "$1/$(dirname "$rel")"
    case $f in
      *.tar.gz | *.tgz) mkdir -p "$1/$rel.d" && tar -xzf "$f" -C "$1/$rel.d" ;;
      *.gz) gzip -dc "$f" >"$1/$rel.raw" ;;
      *.zst) zstd -qdc "$f" >"$1/$rel.raw" ;;
    esac
  done < <(find "$state" "$backups" "$out" -type f \( -name '*.gz' -o -name '*.tgz' -o -name '*.zst' \) -print0)
}
unpack_into "$scan"

# occurrences VALUE: how many files under the searched trees hold it.
searched=("$out" "$state" "$backups" "$scan")
occurrences() { grep -rlaF -- "$1" "${searched[@]}" 2>/dev/null | wc -l; }

# Positive controls: the search finds each value where it is known to be,
# and finds a planted copy in every searched tree.
for i in "${!secrets[@]}"; do
  grep -qaF -- "${secrets[$i]}" "$tmp/backend.env" || fail "control: ${names[$i]} not found in the .env copy"
done
grep -qaF -- "$pg_pw" "$ST_PG_PASSWORD_FILE" || fail "control: postgres password not in its file"
for d in "${searched[@]}"; do
  printf 'planted %s\n' "$canary" >"$d/planted-control"
  [[ $(occurrences "$canary") == 1 ]] || fail "control: the search misses a file in $d"
  rm -f "$d/planted-control"
done
[[ $(find "$out" -name '*.out' | wc -l) -eq $n ]] || fail "control: $n commands, not as many outputs"
[[ -s $state/journal.jsonl ]] || fail "control: no journal at $state/journal.jsonl"
[[ -n $(find "$state" -path '*incidents*' -type f -name 'SHA256SUMS' | head -n 1) ]] ||
  fail "control: no incident evidence under $state"
[[ -n $(find "$scan" -type f | head -n 1) ]] || fail "control: nothing unpacked (archive, backups)"
grep -qa 'spilttea' "$out/health.prom" || fail "control: no Prometheus file"

for i in "${!secrets[@]}"; do
  if [[ $(occurrences "${secrets[$i]}") != 0 ]]; then
    fail "${names[$i]} appears in:"
    grep -rlaF -- "${secrets[$i]}" "${searched[@]}" | while read -r f; do
      c=${f%.*}.cmd
      echo "  $f${c:+ ($(cat "$c" 2>/dev/null))}" >&2
    done
  fi
done

# ---- modes --------------------------------------------------------------
bad_modes() {
  find "$state" "$backups" \( -type f ! -perm 0600 -printf '%m %p (file, not 600)\n' \) -o \
    \( -type d ! -perm 0700 -printf '%m %p (directory, not 700)\n' \)
}
# Control: a planted 0644 file is found.
install -m 644 /dev/null "$state/mode-control"
bad_modes | grep -q "mode-control" || fail "control: the mode check misses a 0644 file"
rm -f "$state/mode-control"
[[ -n $(find "$state" -type f -name 'journal.jsonl') && -n $(find "$backups" -name '*.json') ]] ||
  fail "control: no journal or manifest to check the modes of"
while IFS= read -r f; do
  fail "mode: $f"
done < <(bad_modes)
[[ $(stat -c %a "$out/health.prom") == 644 ]] || fail "mode: health --output is $(stat -c %a "$out/health.prom"), documented 0644"

echo "$n commands run, ${#secrets[@]} secret values searched in $(find "${searched[@]}" -type f | wc -l) files"
finish "secret hygiene: ok"
