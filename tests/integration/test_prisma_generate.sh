#!/usr/bin/env bash
# The built-in runbook prisma-generate against the sandbox: a generator that
# fails (the stand-in has no npm) fails the run with its output and leaves
# the backend alone; one that works runs inside the backend container, then
# the backend is restarted and healthy. Restores the backend.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need SPILTTEA_OPS_CONFIG
tmp=$(mktemp -d /tmp/spilttea-test-prismagen.XXXXXX)
marker=/tmp/spilttea-test-prisma-generated

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
	docker exec spilttea-backend rm -f "$marker" >/dev/null 2>&1 || true
	docker start spilttea-backend >/dev/null 2>&1 || true
	wait_healthy spilttea-backend
	rm -rf "$tmp"
}
trap cleanup EXIT

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
