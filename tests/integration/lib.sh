# shellcheck shell=bash
# Shared by the integration tests (tests/integration/test_*.sh; sourced, not
# a test itself): the binary under test, the sandbox contract, results, and
# the helpers most tests used to carry a copy of. fault_lib.sh builds on it.
#
# Results come in two styles; a test uses one of them, and both count
# failures in $failures:
#   "FAIL: ..." lines on stderr: fail, run_st, contains, jq_is, then
#               `finish MESSAGE` at the end
#   TAP:        ok, not_ok, check (and bail), then `tap_finish`
#
# Tests fail, never skip, when the sandbox contract is missing (HACKING.md).
# The helpers write into $tmp, the scratch directory each test makes (and
# removes) itself; st runs the binary with the test's config file, $cfg.
# shellcheck disable=SC2154 # $tmp, $cfg: see above

bin=${ST_BINARY:?run through ctest, which sets ST_BINARY}
# shellcheck disable=SC2034 # for the tests
src=${ST_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
pgbin=/usr/lib/postgresql/15/bin
failures=0
checks=0

# need VAR...: the sandbox contract (.sandbox/env) sets each one, or the
# test stops here, failed.
need() {
	local v
	for v in "$@"; do
		[[ -n ${!v:-} ]] && continue
		printf 'Bail out! %s is not set: run scripts/sandbox up, then set -a; . .sandbox/env; set +a (scripts/test does both)\n' "$v"
		exit 1
	done
}

# ---- "FAIL:" style ------------------------------------------------------------------------------

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# How many lines of the binary's stdout a failed run_st shows (empty: all).
show_lines=

# run_st WANT NAME ARGS...: the binary with ARGS (no terminal, stdin
# /dev/null), its output in $tmp/out and $tmp/err; a failure, with that
# output, when it does not exit WANT.
run_st() {
	local want=$1 name=$2 got
	shift 2
	set +e
	setsid -w "$bin" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	got=$?
	set -e
	if [[ $got -ne $want ]]; then
		fail "$name: exit $got, expected $want"
		sed 's/^/  out: /' "$tmp/out" | head -n "${show_lines:--0}" >&2
		sed 's/^/  err: /' "$tmp/err" >&2
	fi
}

# st WANT NAME [ARGS...]: the binary with config $cfg and ARGS (no terminal,
# stdin /dev/null), each run's output in files of its own, $out and $err
# ($tmp/out.N, $tmp/err.N); 0 when it exited WANT, else a failure (fail,
# whichever style the test uses) with that output, and 1. With st_timeout
# set (seconds), timeout(1) ends a run that outlives it (exit 124; SIGKILL
# 5 s after the TERM), so a hang fails the test instead of hanging ctest.
# Its output lines are shown behind st_prefix.
st_timeout=
st_prefix='  '
n=0
st() {
	local want=$1 name=$2 got bound=()
	shift 2
	n=$((n + 1))
	out=$tmp/out.$n
	err=$tmp/err.$n
	[[ -z $st_timeout ]] || bound=(timeout -k 5 "$st_timeout")
	set +e
	"${bound[@]}" setsid -w "$bin" -c "$cfg" "$@" </dev/null >"$out" 2>"$err"
	got=$?
	set -e
	if [[ $got -ne $want ]]; then
		fail "$name: exit $got, expected $want"
		sed "s/^/${st_prefix}out: /" "$out" >&2
		sed "s/^/${st_prefix}err: /" "$err" >&2
		return 1
	fi
	return 0
}

# contains FILE TEXT NAME: a failure when FILE (which may be missing)
# lacks the fixed string TEXT.
contains() {
	grep -qF -- "$2" "$1" 2>/dev/null ||
		{ fail "$3: '$2' not in $(basename "$1")"; sed 's/^/  | /' "$1" 2>/dev/null | head -n "${show_lines:--0}" >&2 || true; }
}
# lacks FILE TEXT NAME: a failure when FILE holds TEXT.
lacks() { if grep -qF -- "$2" "$1"; then fail "$3: '$2' found in $(basename "$1")"; fi; }

# jq_is FILTER WANT NAME: jq -r FILTER of $tmp/out prints WANT.
jq_is() {
	local got
	got=$(jq -r "$1" "$tmp/out" 2>/dev/null || echo "(not JSON)")
	[[ $got == "$2" ]] || { fail "$3: $1 is '$got', expected '$2'"; head -c 2000 "$tmp/out" | sed 's/^/  | /' >&2; }
}

# finish MESSAGE: exit 1 with the count when anything failed, else MESSAGE.
finish() {
	if ((failures)); then
		echo "$failures failure(s)" >&2
		exit 1
	fi
	echo "$1"
}

# ---- TAP style ----------------------------------------------------------------------------------

ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
# not_ok DESCRIPTION [DETAIL]
not_ok() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	printf 'not ok %d - %s\n' "$checks" "$1"
	[[ -z ${2:-} ]] || printf '#   %s\n' "$2"
}
# check DESCRIPTION COMMAND...: ok when the command succeeds, else not ok
# with the last lines it printed.
check() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what" "$(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"; fi
}
bail() { printf 'Bail out! %s\n' "$1"; exit 1; }
# The plan line, and exit 1 when a check failed.
tap_finish() {
	printf '1..%d\n' "$checks"
	if ((failures)); then
		printf '# %d of %d checks failed\n' "$failures" "$checks"
		exit 1
	fi
}

# ---- the sandbox's services ---------------------------------------------------------------------

# psql_q SQL: one value per line, from the sandbox's database as its user.
psql_q() {
	PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE") "$pgbin/psql" -X -At -h 127.0.0.1 -p "$ST_PG_PORT" \
		-U "$ST_PG_USER" -d "$ST_PG_DATABASE" -c "$1"
}
redis_cli() { docker exec spilttea-redis redis-cli "$@"; }

started_at() { docker inspect --format '{{.State.StartedAt}}' "$1"; }
health_of() { docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1"; }
# wait_healthy CONTAINER: healthy within 60 s, else a failure.
wait_healthy() {
	local i
	for ((i = 0; i < 120; i++)); do
		[[ $(health_of "$1") == healthy ]] && return 0
		sleep 0.5
	done
	fail "$1 did not become healthy"
}

# config_copy FILE STATE_DIR [SED_EXPR...]: $SPILTTEA_OPS_CONFIG with its
# state_dir replaced (and any further sed expressions applied) into FILE,
# mode 0600, so a test's locks and journal stay in its scratch directory.
config_copy() {
	local file=$1 state=$2 e args=()
	shift 2
	for e in "$@"; do args+=(-e "$e"); done
	sed -e "s|^state_dir:.*|state_dir: \"$state\"|" "${args[@]}" "$SPILTTEA_OPS_CONFIG" >"$file"
	chmod 600 "$file"
}
