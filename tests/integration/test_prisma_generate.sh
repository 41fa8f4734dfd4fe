#!/usr/bin/env bash
# The built-in runbook prisma-generate against the sandbox: a generator that
# fails (the stand-in has no npm) fails the run with its output and leaves
# the backend alone; one that works runs inside the backend container, then
# the backend is restarted and healthy. Restores the backend.
set -euo pipefail

bin=${ST_BINARY:?run through ctest, which sets ST_BINARY}
: "${SPILTTEA_OPS_CONFIG:?integration tests need the sandbox: scripts/sandbox up; set -a; . .sandbox/env; set +a}"
tmp=$(mktemp -d /tmp/spilttea-test-prismagen.XXXXXX)
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
marker=/tmp/spilttea-test-prisma-generated

started_at() { docker inspect --format '{{.State.StartedAt}}' "$1"; }
health_of() { docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1"; }
wait_healthy() { # CONTAINER: up to 60 s
	local i
	for ((i = 0; i < 120; i++)); do
		[[ $(health_of "$1") == healthy ]] && return 0
		sleep 0.5
	done
	fail "$1 did not become healthy"
}
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
	docker exec spilttea-backend rm -f "$marker" >/dev/null 2>&1 || true
	docker start spilttea-backend >/dev/null 2>&1 || true
	wait_healthy spilttea-backend
	rm -rf "$tmp"
}
trap cleanup EXIT

run_st() { # WANT NAME ARGS... (no terminal)
	local want=$1 name=$2 got
	shift 2
	set +e
	setsid -w "$bin" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	got=$?
	set -e
	if [[ $got -ne $want ]]; then
		fail "$name: exit $got, expected $want"
		sed 's/^/  out: /' "$tmp/out" >&2
		sed 's/^/  err: /' "$tmp/err" >&2
	fi
}

wait_healthy spilttea-backend
before=$(started_at spilttea-backend)

# The default generator: the stand-in has no npm.
run_st 1 "npm missing" run prisma-generate --yes
grep -q "exited with 127" "$tmp/err" || { fail "npm missing: no exit code in the error"; sed 's/^/  | /' "$tmp/err" >&2; }
grep -q "npm" "$tmp/err" || fail "npm missing: the generator's output is not in the error"
[[ $(started_at spilttea-backend) == "$before" ]] || fail "npm missing: the backend was restarted anyway"

# A generator that works: it runs in the container, then the restart.
run_st 0 "generate" run prisma-generate "command=touch $marker" --yes
grep -q "runbook prisma-generate done: 3 ok" "$tmp/out" || { fail "generate: not 3 steps ok"; sed 's/^/  | /' "$tmp/out" >&2; }
docker exec spilttea-backend test -f "$marker" || fail "generate: the command did not run in the backend container"
[[ $(started_at spilttea-backend) != "$before" ]] || fail "generate: the backend was not restarted"
[[ $(health_of spilttea-backend) == healthy ]] || fail "generate: the backend is $(health_of spilttea-backend)"

exit $((failures > 0))
