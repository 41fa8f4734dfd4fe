#!/usr/bin/env bash
# End to end: `spilttea-ops run` and `runbook` with the generic actions only
# (files, sleep, assert), so no service is needed. Checks every exit status
# (0 done, 1 step failed, 2 usage/runbook error, 3 aborted, 4 locked), lock
# contention between two concurrent runs, undo, dry-run writing nothing, the
# journal, and secrets kept out of output and journal.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
fx=$src/tests/fixtures/runbooks
tmp=$(mktemp -d /tmp/spilttea-test-run.XXXXXX)
bg=()
cleanup() {
  local p
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

state=$tmp/state
cfg=$tmp/config.yaml
cat >"$cfg" <<EOF
state_dir: $state
services:
  backend: { container: spilttea-test-none }
postgres: { host: 127.0.0.1, user: nobody, database: spilttea }
redis: { host: 127.0.0.1 }
EOF

# --- exit 0: a run that works, journaled, lock released ------------------
mkdir -p "$tmp/work"
run_st 0 "full run" -c "$cfg" run "$fx/full.yaml" "dir=$tmp/work" --yes
contains "$tmp/out" "✓ [1/3] write" "full run"
contains "$tmp/out" "runbook full done: 3 ok" "full run"
[[ "$(cat "$tmp/work/greeting.txt")" == "hello from spilttea" ]] || fail "full run: greeting content"
[[ "$(stat -c %a "$tmp/work/final.txt")" == 640 ]] || fail "full run: final.txt mode"
[[ "$(stat -c %a "$state/journal.jsonl")" == 600 ]] || fail "journal mode"
[[ ! -e "$state/locks/full-test.lock" ]] || fail "full run: lock file left behind"
contains "$state/journal.jsonl" '"type":"start"' "journal"
contains "$state/journal.jsonl" '"runbook":"full"' "journal"
contains "$state/journal.jsonl" '"phase":"verify","result":"ok"' "journal"
contains "$state/journal.jsonl" '"type":"end"' "journal"

run_st 0 "built-in selftest" -c "$cfg" run selftest
[[ -f "$state/selftest.probe" ]] || fail "selftest: no probe file"

run_st 0 "quiet run" -c "$cfg" --quiet run selftest
[[ ! -s "$tmp/out" && ! -s "$tmp/err" ]] || fail "quiet run printed something"

# --- exit 1: a step fails, the done step is undone -----------------------
run_st 1 "failing step" -c "$cfg" run "$fx/failing.yaml" "dir=$tmp/work"
contains "$tmp/err" "error: step 'boom' failed: the second step fails on purpose" "failing step"
contains "$tmp/out" "↶ undo mark" "failing step"
[[ "$(cat "$tmp/work/marker")" == "undone" ]] || fail "failing step: undo did not run"
contains "$state/journal.jsonl" '"phase":"undo","result":"undone"' "failing step journal"

# --- exit 2: usage, configuration and runbook errors ---------------------
run_st 2 "unknown runbook" -c "$cfg" run no-such-runbook
contains "$tmp/err" "error: unknown runbook 'no-such-runbook'" "unknown runbook"
run_st 2 "missing param" -c "$cfg" run "$fx/failing.yaml"
contains "$tmp/err" "runbook 'failing' needs parameter 'dir'" "missing param"
run_st 2 "unknown param" -c "$cfg" run "$fx/failing.yaml" "dir=$tmp" colour=red
run_st 2 "invalid runbook" -c "$cfg" run "$fx/unknown-action.yaml"
contains "$tmp/err" "unknown-action.yaml:4:13: unknown action 'docker.explode'" "invalid runbook"
run_st 2 "no config" -c "$tmp/absent.yaml" run selftest
run_st 2 "runbook check" runbook check "$fx/full.yaml" "$fx/unknown-action.yaml"
contains "$tmp/out" "full.yaml: OK (runbook full, 3 steps)" "runbook check"
contains "$tmp/err" "unknown-action.yaml:4:13:" "runbook check"
run_st 0 "runbook check ok" runbook check "$fx/full.yaml" selftest
run_st 2 "run without args" -c "$cfg" run

# --- exit 3: precondition, confirmation -----------------------------------
run_st 3 "precondition" -c "$cfg" run "$fx/precondition.yaml" "path=$tmp/absent"
contains "$tmp/err" "precondition of step 'guarded' not met: exists: expected true, got false" "precondition"
[[ ! -e "$tmp/absent.out" ]] || fail "precondition: the step acted"
run_st 3 "no terminal, no --yes" -c "$cfg" run "$fx/typed-confirm.yaml" "dir=$tmp/work"
contains "$tmp/err" "hint: re-run with --yes to confirm: This replaces $tmp/work/data" "no terminal"
[[ ! -e "$tmp/work/data" ]] || fail "no terminal: the step acted"
run_st 0 "typed confirmation with --yes" -c "$cfg" -y run "$fx/typed-confirm.yaml" "dir=$tmp/work"
[[ -e "$tmp/work/data" ]] || fail "--yes: the step did not act"

# On a terminal (a pty from script(1)) the typed word is asked and compared.
on_tty() { # ANSWER WANT NAME ARGS...
  local answer=$1 want=$2 name=$3 got
  shift 3
  set +e
  printf '%s\n' "$answer" | setsid -w script -qec "$(printf '%q ' "$bin" "$@")" /dev/null \
    >"$tmp/out" 2>&1
  got=$?
  set -e
  [[ $got -eq $want ]] || { fail "$name: exit $got, expected $want"; sed 's/^/  | /' "$tmp/out" >&2; }
}
rm -f "$tmp/work/data"
on_tty spilttea 0 "typed on a terminal" -c "$cfg" run "$fx/typed-confirm.yaml" "dir=$tmp/work"
contains "$tmp/out" "Type 'spilttea' to confirm:" "typed on a terminal"
[[ -e "$tmp/work/data" ]] || fail "typed on a terminal: the step did not act"
rm -f "$tmp/work/data"
on_tty Spilttea 3 "mistyped on a terminal" -c "$cfg" run "$fx/typed-confirm.yaml" "dir=$tmp/work"
contains "$tmp/out" "refused: typed 'Spilttea', not 'spilttea'" "mistyped on a terminal"
[[ ! -e "$tmp/work/data" ]] || fail "mistyped on a terminal: the step acted"

# --- dry-run: a plan, nothing on disk, secrets redacted --------------------
rm -rf "$state"
run_st 0 "dry run" -c "$cfg" --dry-run run "$fx/secret.yaml" "dir=$tmp/work" api_token=tok-s3cr3t
contains "$tmp/out" "run: file.write path=$tmp/work/token content=*** mode=0600" "dry run"
contains "$tmp/out" "api_token = ***" "dry run"
lacks "$tmp/out" "tok-s3cr3t" "dry run"
[[ ! -e "$state" ]] || fail "dry run created $state"
[[ ! -e "$tmp/work/token" ]] || fail "dry run wrote the file"
run_st 0 "dry run of a lock holder" -c "$cfg" -n run "$fx/sleepy.yaml" seconds=30
[[ ! -e "$state" ]] || fail "dry run took a lock"

# --- secrets stay out of the journal (params and command line) -------------
run_st 0 "secret run" -c "$cfg" run "$fx/secret.yaml" "dir=$tmp/work" api_token=tok-s3cr3t
lacks "$state/journal.jsonl" "tok-s3cr3t" "journal secrets"
contains "$state/journal.jsonl" 'api_token=***' "journal command line"
[[ "$(cat "$tmp/work/token")" == "tok-s3cr3t" ]] || fail "secret run: the action got the redacted value"

# --- exit 4: two runs of a locked runbook ----------------------------------
"$bin" -c "$cfg" run "$fx/sleepy.yaml" seconds=3 </dev/null >"$tmp/first.out" 2>&1 &
first=$!
bg+=("$first")
for _ in $(seq 50); do
  [[ -s "$state/locks/sleepy.lock" ]] && break
  sleep 0.1
done
run_st 4 "lock contention" -c "$cfg" run "$fx/sleepy.yaml" seconds=0
contains "$tmp/err" "error: sleepy is locked by pid $first (" "lock contention"
contains "$tmp/err" "hint: wait for it to finish, or check it with 'ps -p $first'" "lock contention"
if wait "$first"; then :; else fail "first run of sleepy failed"; cat "$tmp/first.out" >&2; fi
bg=()
run_st 0 "after the lock is released" -c "$cfg" run "$fx/sleepy.yaml" seconds=0

# --- a stale lock file is taken over and reported ---------------------------
printf 'pid=4194305\nstarted=1700000000\ncommand=spilttea-ops run sleepy\n' >"$state/locks/sleepy.lock"
run_st 0 "stale lock" -c "$cfg" run "$fx/sleepy.yaml" seconds=0
contains "$tmp/err" "note: stale lock from pid 4194305 (not running), taking it over" "stale lock"

# --- interrupted: exit 3, journaled, lock released --------------------------
"$bin" -c "$cfg" run "$fx/sleepy.yaml" seconds=30 </dev/null >"$tmp/int.out" 2>"$tmp/int.err" &
victim=$!
bg+=("$victim")
for _ in $(seq 50); do
  [[ -s "$state/locks/sleepy.lock" ]] && break
  sleep 0.1
done
start=$SECONDS
kill -TERM "$victim"
set +e
wait "$victim"
got=$?
set -e
bg=()
[[ $got -eq 3 ]] || { fail "interrupt: exit $got, expected 3"; cat "$tmp/int.err" >&2; }
(( SECONDS - start < 5 )) || fail "interrupt: took $((SECONDS - start))s"
contains "$tmp/int.err" "interrupted" "interrupt"
[[ ! -e "$state/locks/sleepy.lock" ]] || fail "interrupt: lock file left behind"
contains "$state/journal.jsonl" '"result":"aborted"' "interrupt journal"

# --- runbook list / show / actions ------------------------------------------
mkdir -p "$tmp/rbdir"
cp "$fx/sleepy.yaml" "$tmp/rbdir/"
printf 'name: selftest\ndescription: local override\nsteps: [{name: a, action: sleep, args: {seconds: 0}}]\n' \
  >"$tmp/rbdir/selftest.yaml"
printf 'runbooks_dir: %s\n' "$tmp/rbdir" >>"$cfg"
run_st 0 "runbook list" -c "$cfg" runbook list
contains "$tmp/out" "local override (overrides the built-in)" "runbook list"
contains "$tmp/out" "Hold the 'sleepy' lock" "runbook list"
run_st 0 "runbook list json" -c "$cfg" --format json runbook list
contains "$tmp/out" '"name": "sleepy"' "runbook list json"
run_st 0 "run from runbooks_dir" -c "$cfg" run sleepy seconds=0
run_st 0 "runbook show" runbook show selftest
contains "$tmp/out" "verify: file.exists path=\${config.state_dir}/selftest.probe" "runbook show"
run_st 0 "runbook actions" runbook actions
contains "$tmp/out" "file.write" "runbook actions"
run_st 2 "runbook bad subcommand" runbook frobnicate
run_st 0 "run --help" run --help
contains "$tmp/out" "usage: spilttea-ops run NAME|FILE" "run --help"

finish "all run/runbook checks passed"
