#!/usr/bin/env bash
# Bad input on the command line (issue 7): backup names that walk out of the
# backup directory or are symlinks, ids carrying SQL or shell wherever a
# command takes one, odd numbers and durations, configuration files that
# are huge, binary or writable by others, runbooks with unknown actions.
# Each input must end with the documented exit status and a message, never
# a crash, a hang, or a change: the live database keeps its tables, the
# symlinked file's target survives, no incident directory is created from a
# bad id. The table printed at the end (input -> exit, first error line) is
# the record for the issue's closing note.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need ST_SANDBOX_DIR SPILTTEA_OPS_CONFIG

tmp=$(mktemp -d /tmp/spilttea-test-badinput.XXXXXX)
cfg=$tmp/config.yaml
state=$tmp/state
backups=$tmp/backups
record=()
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

config_copy "$cfg" "$state" \
  "s|^backup: .*|backup: { dir: \"$backups\", keep_days: 7, keep_min: 3, via: exec, compress: gzip }|"
unset SPILTTEA_OPS_CONFIG

# psql's own arguments, in the container (not lib.sh's psql_q SQL).
psql_q() { docker exec -i spilttea-postgres psql -X -q -At -v ON_ERROR_STOP=1 -U spilttea -d spilttea "$@"; }

# try WANT PATTERN ARGS...: exit WANT (a list: "2" or "1,2") and PATTERN
# (fixed string) on stderr. A crash (>= 128, a sanitizer report) always fails.
try() {
  local want=$1 pattern=$2 got first
  shift 2
  set +e
  timeout -k 5 120 "$bin" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  got=$?
  set -e
  first=$(grep -m1 '^error' "$tmp/err" || head -n 1 "$tmp/err" || true)
  record+=("$(printf '%q ' "$@" | sed "s|$tmp|\$TMP|g; s|-c \$TMP/config.yaml ||") -> $got: ${first:0:140}")
  if ((got >= 124)) || grep -q 'AddressSanitizer\|runtime error:\|LeakSanitizer' "$tmp/err"; then
    fail "$*: exit $got (crash or hang)"
  elif [[ ,$want, != *,$got,* ]]; then
    fail "$*: exit $got, expected $want"
  elif [[ -n $pattern ]] && ! grep -qF -- "$pattern" "$tmp/err" "$tmp/out"; then
    fail "$*: '$pattern' not in the output"
  else
    return 0
  fi
  sed 's/^/  out: /' "$tmp/out" | head -10 >&2
  sed 's/^/  err: /' "$tmp/err" | head -10 >&2
}
st() { try "$1" "$2" -c "$cfg" "${@:3}"; }

# ---- backup names ------------------------------------------------------
st 0 "" backup
name=$(ls "$backups" | grep -E '^backup_[0-9]{8}_[0-9]{6}\.sql\.gz$' | head -n 1 || true)
[[ -n $name ]] || { fail "no backup taken"; name=backup_20260101_000000.sql.gz; }

st 2 "'passwd' is not a spilttea-ops backup name" restore ../../etc/passwd
st 2 "'passwd' is not a spilttea-ops backup name" -y restore ../../etc/passwd
st 2 "'passwd' is not a spilttea-ops backup name" -n restore /etc/passwd
st 2 "'x' is not a spilttea-ops backup name" backup verify ../x
st 2 "'shadow' is not a spilttea-ops backup name" backup verify /etc/shadow
st 2 "'shadow' is not a spilttea-ops backup name" backup test-restore ../../../../etc/shadow
st 2 "is not a spilttea-ops backup name" backup verify "$name.json"
st 2 "is not a spilttea-ops backup name" backup verify "${name%.gz}.bz2"
st 2 "is not a spilttea-ops backup name" backup verify 'backup_20260101_000000.sql.gz;id'
st 2 "is not a spilttea-ops backup name" backup verify $'backup_20260101_000000.sql.gz\n'
st 2 "is not a spilttea-ops backup name" backup verify ''
st 2 "unknown option '-rf'" restore -- -rf
st 2 "is not a spilttea-ops backup name" restore ./-rf
st 1,2 "backup_20991231_235959.sql.gz" backup verify backup_20991231_235959.sql.gz
st 0 "" backup verify "$name"

# Our name elsewhere (a path: its manifest beside it) is verified there by
# design: "FILE a backup name in backup.dir, or a path (manifest beside it)".
mkdir -p "$tmp/elsewhere"
cp -p "$backups/$name" "$backups/$name.json" "$tmp/elsewhere/"
st 0 "" backup verify "$tmp/elsewhere/$name"
( cd "$tmp" && try 0 "" -c "$cfg" backup verify "elsewhere/$name" )
st 0 "" -n restore "$tmp/elsewhere/$name"
# ... but a tampered copy is not.
printf 'x' >>"$tmp/elsewhere/$name"
st 1 "manifest says" backup verify "$tmp/elsewhere/$name"
st 3 "manifest says" -y restore "$tmp/elsewhere/$name"

# Symlinks are refused, not followed: a link named like a backup may point
# anywhere (another database's dump, a file of the operator's), and
# retention and restore must only ever act on files this tool wrote.
link=backup_20200101_000000.sql.gz
ln -s "$backups/$name" "$backups/$link"
sed "s/$name/$link/" "$backups/$name.json" >"$tmp/$link.json"
ln -s "$tmp/$link.json" "$backups/$link.json"
st 2 "is not a regular file" backup verify "$link"
st 2 "is not a regular file" backup verify "$backups/$link"
st 2 "is not a regular file" -n restore "$link"
st 2 "is not a regular file" backup test-restore "$link"
ln -s /etc/passwd "$backups/backup_20200102_000000.sql.gz"
st 2 "is not a regular file" -y restore backup_20200102_000000.sql.gz
st 0 "" backup list
st 0 "" backup list --format json
jq -e --arg n "$link" '[.. | objects | select(.name? == $n)] | length <= 1' "$tmp/out" >/dev/null ||
  fail "backup list: symlink listed oddly"
st 0,1 "" -n backup prune
st 0,1 "" backup prune
[[ -f $backups/$name && -f $backups/$name.json && -f /etc/passwd ]] || fail "prune: a symlink's target went"
# A manifest that is a symlink (to a file that is not JSON) is not read.
rm -f "$backups/$link" "$backups/$link.json"
cp "$backups/$name" "$backups/$link"
ln -s /etc/passwd "$backups/$link.json"
st 1 "is a symbolic link" backup verify "$link"
grep -q 'root:' "$tmp/err" && fail "backup verify: quoted /etc/passwd"
rm -f "$backups/$link" "$backups/$link.json" "$backups/backup_20200102_000000.sql.gz"

# ---- ids ---------------------------------------------------------------
for bad in '../../etc' '..' '$(id)' '`id`' "x'; DROP TABLE \"User\"; --" 'a b' $'a\nb' $'\e[2J' '-rf' current \
  "$(printf 'A%.0s' {1..60})"; do
  st 2 "is not an incident id" incident status --incident "$bad"
  st 2 "is not an incident id" incident start --id "$bad"
  st 2 "is not an incident id" -n run selftest --incident "$bad"
done
[[ ! -e $state/incidents/etc && ! -e $tmp/etc ]] || fail "an incident id made a directory outside"
st 0 "" -n run selftest --incident INC-20261128-020000
for bad in '1 OR 1=1' "1; DROP TABLE \"User\"" "1' OR '1'='1" '$(reboot)' abc -1 0x10 1e3 \
  99999999999999999999 ' 1' ''; do
  st 1,2 "" -y incident lock-users "$bad"
done
psql_q -c 'SELECT count(*) FROM "User"' >/dev/null || fail "the User table is gone"
for bad in '../../etc/passwd' '; rm -rf /' '$(id)' 20261127_223416x ''; do
  st 1,2 "" -n rollback backend --to "$bad"
done
for bad in "x'; DROP TABLE \"User\"; --" '../../../etc/passwd' '$(id)' ''; do
  st 1,2 "" -y migrate resolve --applied "$bad"
  st 1,2 "" -y migrate resolve --rolled-back "$bad"
done
psql_q -c 'SELECT count(*) FROM "User"' >/dev/null || fail "the User table is gone after migrate resolve"
for bad in '1.2.3.4; rm -rf /' '$(id)' 999.1.1.1 '1.2.3.4/99' '::ffff:999.1.1.1' '' 'localhost'; do
  st 2 "" incident block-ip "$bad"
done
st 2 "" -n incident rotate-secret 'A;B' --generate
st 2 "" -n incident rotate-secret 'JWT_SECRET' --from-env 'X;Y'
st 2 "" -n incident rotate-secret '$(id)' --generate
st 1,2 "" -y db vacuum --table 'Post"; DROP TABLE "User'
st 1,2 "" -y db analyze --schema 'public; DROP TABLE "User"'
psql_q -c 'SELECT count(*) FROM "User"' >/dev/null || fail "the User table is gone after vacuum"

# ---- numbers, durations and options -------------------------------------
for bad in abc -1 0 1e3 10001 99999999999999999999 ''; do
  st 2 "" db slow-queries --limit "$bad"
done
for bad in abc -5m 1h1 5x ''; do
  st 2 "" db kill-idle --older-than "$bad"
done
st 0 "more than 100000000000000000000d" db kill-idle --older-than 99999999999999999999d
for bad in abc -1 99999999999999999999 ''; do
  st 2 "" logs --tail "$bad"
done
for bad in garbage 2026-13-45T99:99:99Z -1h ''; do
  st 2 "" logs --since "$bad"
done
for bad in abc 0 20 -3 ''; do
  st 2 "" backup --level "$bad"
done
st 2 "" backup --kind 'full;id'
st 2 "" backup --compress lz4
st 3 "" health --check 'backend.health;id'
st 3 "" health --watch abc
st 3 "" health --format 'xml'
st 2 "" diagnose 'db-pool;id'
st 2 "" -n run selftest 'nokey=$(id)'
st 2 "" -n run selftest $'=x'
st 2 "" cache clear ''

# ---- configuration files ------------------------------------------------
cp "$cfg" "$tmp/gw.yaml"
chmod 664 "$tmp/gw.yaml"
try 2 "hint: chmod go-w $tmp/gw.yaml" -c "$tmp/gw.yaml" config check
try 3 "is writable by its group (mode 0664)" -c "$tmp/gw.yaml" health
chmod 646 "$tmp/gw.yaml"
try 2 "is writable by everyone (mode 0646)" -c "$tmp/gw.yaml" backup list
chmod 644 "$tmp/gw.yaml"
try 0 "" -c "$tmp/gw.yaml" config check
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' '#' >"$tmp/huge.yaml"
try 2 "is too large" -c "$tmp/huge.yaml" config check
{ cat "$cfg"; printf 'runbooks_dir: "%s"\n' "$(head -c $((3 * 1024 * 1024)) /dev/zero | tr '\0' 'a')"; } >"$tmp/bigval.yaml"
try 2 "runbooks_dir is longer than a path can be" -c "$tmp/bigval.yaml" config check
{ cat "$cfg"; printf 'runbooks_dir: "a\\0b"\n'; } >"$tmp/nul.yaml"
try 2 "scalar contains a NUL byte" -c "$tmp/nul.yaml" config check
{ cat "$cfg"; printf 'runbooks_dir: a\0b\n'; } >"$tmp/rawnul.yaml"
try 2 "" -c "$tmp/rawnul.yaml" config check
{ cat "$cfg"; printf 'runbooks_dir: caf\xff\xfe\n'; } >"$tmp/utf8.yaml"
try 2 "" -c "$tmp/utf8.yaml" config check
head -c 65536 /dev/urandom >"$tmp/random.yaml"
try 2 "" -c "$tmp/random.yaml" config check
mkfifo "$tmp/fifo.yaml"
try 2 "is not a regular file" -c "$tmp/fifo.yaml" config check
try 2 "does not exist" -c "$tmp/none.yaml" config check

# ---- runbooks with unknown actions ---------------------------------------
cat >"$tmp/rb-undo.yaml" <<'EOF'
name: rb-undo
steps:
  - name: one
    action: file.exists
    args: { path: /tmp }
    undo:
      action: shell.exec
      args: { cmd: "rm -rf /" }
EOF
cat >"$tmp/rb-check.yaml" <<'EOF'
name: rb-check
steps:
  - name: one
    action: file.exists
    args: { path: /tmp }
    check:
      action: "docker.exec; id"
      args: {}
EOF
printf 'name: rb-bin\nsteps:\n  - name: one\n    action: "file.\\0exists"\n' >"$tmp/rb-bin.yaml"
try 2 "rb-undo.yaml:7:15: unknown action 'shell.exec'" runbook check "$tmp/rb-undo.yaml"
try 2 "rb-check.yaml:7:15: unknown action" runbook check "$tmp/rb-check.yaml"
try 2 "rb-bin.yaml:4:13:" runbook check "$tmp/rb-bin.yaml"
st 2 "rb-undo.yaml:7:15: unknown action 'shell.exec'" -n run "$tmp/rb-undo.yaml"
st 2 "" run ../../../../etc/passwd
st 2 "" runbook show '$(id)'

printf '%s\n' "${record[@]}"
echo "${#record[@]} inputs tried"
finish "bad input: ok"
