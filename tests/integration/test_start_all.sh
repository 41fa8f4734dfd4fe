#!/usr/bin/env bash
# The built-in runbook start-all (the way back after 'incident contain', the
# runbook's 'docker-compose up -d') against the sandbox: with every service
# stopped it starts postgres and redis, the backend only once they are
# healthy, the frontend only once the backend is; all end healthy; a second
# run restarts nothing; --dry-run starts nothing. Restores what it stops.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need SPILTTEA_OPS_CONFIG
tmp=$(mktemp -d /tmp/spilttea-test-startall.XXXXXX)
containers=(spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend)

running() { docker inspect --format '{{.State.Running}}' "$1"; }
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
	docker start "${containers[@]}" >/dev/null 2>&1 || true
	local c
	for c in "${containers[@]}"; do wait_healthy "$c"; done
	rm -rf "$tmp"
}
trap cleanup EXIT

for c in "${containers[@]}"; do wait_healthy "$c"; done
docker stop -t 5 spilttea-frontend spilttea-backend spilttea-redis spilttea-postgres >/dev/null

run_st 0 "dry run" --dry-run run start-all
grep -q "docker.start service=frontend" "$tmp/out" || fail "dry run: no plan for the frontend"
for c in "${containers[@]}"; do
	[[ $(running "$c") == false ]] || fail "dry run started $c"
done

run_st 0 "start-all" run start-all
grep -q "runbook start-all done: 8 ok" "$tmp/out" || { fail "start-all: not 8 steps ok"; sed 's/^/  | /' "$tmp/out" >&2; }
for c in "${containers[@]}"; do
	[[ $(health_of "$c") == healthy ]] || fail "start-all: $c is $(health_of "$c")"
done
# Order: each wait finished before the next service was started (the
# steps print as they end).
order=$(grep -oE '\[[0-9]/8\] [a-z-]+' "$tmp/out" | awk '{print $2}' | tr '\n' ' ')
[[ $order == "start-postgres start-redis wait-postgres wait-redis start-backend wait-backend start-frontend wait-frontend " ]] ||
	fail "start-all: steps in the order '$order'"
[[ $(started_at spilttea-frontend) > $(started_at spilttea-backend) ]] || fail "start-all: frontend started before the backend"

# Again: everything runs already, nothing is restarted.
before=$(started_at spilttea-backend)
run_st 0 "start-all again" run start-all
[[ $(started_at spilttea-backend) == "$before" ]] || fail "start-all restarted a running backend"

exit $((failures > 0))
