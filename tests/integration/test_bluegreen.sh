#!/usr/bin/env bash
# Integration test of blue/green deploys through the sandbox's proxy, under
# a light steady load (bench/loadgen.c, 20 requests/s): a good deploy moves
# the backend to the other port with 0 failed requests and leaves one
# container under the service's name; a broken image (its /health answers
# 503) fails the gate, exits 1, and the old container keeps serving with 0
# failed requests; a new container that dies after the switch is caught by
# the watch, the proxy goes back and the old container serves again; a
# last good deploy brings the backend back to the port it started on; a
# deploy killed between its switch and cutover is finished by the next one;
# past the cutover's commit point (a name taken, a later step failing) the
# new container keeps serving.
# Restores spilttea-sandbox/backend:latest and removes the images it built.
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

need SPILTTEA_OPS_CONFIG ST_SANDBOX_DIR ST_PROXY_URL
B=$ST_BINARY
image=spilttea-sandbox/backend
upstream=$ST_SANDBOX_DIR/proxy/upstream.conf
tmp=$(mktemp -d "${TMPDIR:-/tmp}/spilttea-test-bluegreen.XXXXXX")
good_latest=$(docker image inspect -f '{{.Id}}' "$image:latest") || bail "no $image:latest"
lg=
p0=
cleanup() {
	[[ -n $lg ]] && kill "$lg" 2>/dev/null
	docker tag "$good_latest" "$image:latest" >/dev/null 2>&1
	# Other tests expect the backend where the sandbox put it.
	if [[ -n $p0 && $(port_now) != "$p0" ]]; then
		"$B" --yes deploy backend --strategy blue-green >/dev/null 2>&1 ||
			echo "# could not move the backend back to port $p0" >&2
	fi
	docker image rm spilttea-test-bluegreen-broken:1 >/dev/null 2>&1
	docker rm -f spilttea-test-bluegreen-old >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

cc -O2 -o "$tmp/loadgen" "$src/bench/loadgen.c" -lcurl -lpthread -lm || bail "cannot build bench/loadgen.c"
port_now() { sed -n 's/^ *server [^:]*:\([0-9]*\);.*/\1/p' "$upstream"; }
backend_port() { docker exec spilttea-backend printenv PORT 2>/dev/null; }
load_start() { rm -f "$tmp/stop"; "$tmp/loadgen" "$ST_PROXY_URL/version" 20 "$1" 100000 "$tmp/stop" >"$tmp/load.json" & lg=$!; sleep 0.5; }
load_stop() { touch "$tmp/stop"; wait "$lg"; lg=; }
load_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/load.json" "$1"; }
leftovers() { docker ps -a --format '{{.Names}}' | grep -E '^spilttea-backend-(blue|green)$' || true; }

# An earlier test may have restarted a service: deploys need them healthy.
wait_healthy() {
	local deadline=$((SECONDS + 90)) c all
	while :; do
		all=1
		for c in spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend spilttea-proxy; do
			[[ $(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>/dev/null) == running/healthy ]] || all=0
		done
		((all)) && return 0
		((SECONDS < deadline)) || return 1
		sleep 0.25
	done
}
wait_healthy || bail "the sandbox is not healthy (scripts/sandbox status)"
start_port=$(port_now)
[[ -n $start_port && $start_port == "$(backend_port)" ]] ||
	bail "the proxy ($start_port) does not route to the backend ($(backend_port))"
p0=$start_port

# 1. A good deploy under load.
load_start 150
"$B" --yes deploy backend --strategy blue-green >"$tmp/d1" 2>&1
rc=$?
load_stop
p1=$(port_now)
check "good deploy exits 0" test "$rc" = 0
((rc == 0)) || { sed 's/^/# /' "$tmp/d1" | tail -n 5; bail "the first deploy failed: nothing more to test"; }
check "the proxy moved to the other port ($p0 -> $p1)" test -n "$p1" -a "$p1" != "$p0"
check "spilttea-backend listens there" test "$(backend_port)" = "$p1"
check "no blue/green container left beside it" test -z "$(leftovers)"
# The sandbox's health_url and VITE_API_URL go through the proxy, the one
# address that stays valid: after the move they still point at the backend.
check "health --check backend.health exits 0 on the other port" "$B" health --check backend.health
"$B" diagnose frontend-network --format json >"$tmp/diag.json" 2>&1
check "diagnose frontend-network: backend-health and api-url ok on the other port" python3 -c '
import json, sys
f = {x["check"]: x["status"] for i in json.load(open(sys.argv[1]))["issues"] for x in i["findings"]}
assert f["backend-health"] == "ok" and f["api-url"] == "ok", f' "$tmp/diag.json"
check "0 failed requests during the deploy ($(load_field sent) sent)" test "$(load_field failed)" = 0
check "the load saw the new upstream answer" python3 -c '
import json, sys
assert "127.0.0.1:" + sys.argv[2] in json.load(open(sys.argv[1]))["upstreams"]' "$tmp/load.json" "$p1"
check "the deploy reported its cutover time" grep -q "proxy switched to spilttea-backend-.* after the deploy began" "$tmp/d1"
check "the steps were journaled (start, gate, logs, switch, watch, cutover)" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
run = [r for r in recs if r["type"] == "start" and r.get("runbook") == "deploy"][-1]["run"]
steps = [r["step"] for r in recs if r["type"] == "step" and r["run"] == run and r["phase"] == "act"]
want = ["backend-%s" % s for s in ("start", "gate", "logs", "switch", "watch", "cutover")]
assert all(w in steps for w in want), steps' "$ST_SANDBOX_DIR/state/journal.jsonl"
check "a graceful nginx reload, no restart of the proxy" test \
	"$(docker inspect -f '{{.RestartCount}} {{.State.Running}}' spilttea-proxy)" = "0 true"

# 2. A broken image: its /health answers 503.
mkdir "$tmp/broken"
printf 'FROM spilttea-sandbox/standin:1\nENV STANDIN_HEALTH_STATUS=503 STANDIN_VERSION=broken\n' >"$tmp/broken/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q --network host -t spilttea-test-bluegreen-broken:1 "$tmp/broken" >/dev/null 2>&1 ||
	bail "cannot build the broken image"
docker tag spilttea-test-bluegreen-broken:1 "$image:latest"
before_id=$(docker inspect -f '{{.Id}}' spilttea-backend)
load_start 100
"$B" --yes deploy backend --strategy blue-green --no-build >"$tmp/d2" 2>&1
rc=$?
load_stop
docker tag "$good_latest" "$image:latest"
check "broken image: exit 1" test "$rc" = 1
check "broken image: the error names the failing probe (503)" grep -q "health.* answered 503" "$tmp/d2"
check "broken image: the proxy did not move" test "$(port_now)" = "$p1"
check "broken image: the old container still serves" test "$(docker inspect -f '{{.Id}} {{.State.Running}}' spilttea-backend)" = "$before_id true"
check "broken image: the new container is gone" test -z "$(leftovers)"
check "broken image: 0 failed requests ($(load_field sent) sent)" test "$(load_field failed)" = 0

# 3. A new container that dies after taking traffic: the watch catches it.
load_start 50
jl=$(($(wc -l <"$ST_SANDBOX_DIR/state/journal.jsonl") + 1))
"$B" --yes deploy backend --strategy blue-green >"$tmp/d3" 2>&1 &
dp=$!
killed=0
for _ in $(seq 1 600); do
	# Switched (the journal has the switch step done): the new colour
	# takes traffic; kill it.
	if tail -n +"$jl" "$ST_SANDBOX_DIR/state/journal.jsonl" |
		grep -q '"step":"backend-switch","action":"deploy.op","phase":"act","result":"ok"'; then
		for n in $(leftovers); do docker kill "$n" >/dev/null 2>&1 && killed=1; done
		break
	fi
	kill -0 "$dp" 2>/dev/null || break
	sleep 0.05
done
wait "$dp"
rc=$?
load_stop
check "dies after the switch: it was killed while watched" test "$killed" = 1
check "dies after the switch: exit 1" test "$rc" = 1
check "dies after the switch: the watch failed" grep -q "step 'backend-watch' failed" "$tmp/d3"
check "dies after the switch: the proxy is back on the old port" test "$(port_now)" = "$p1"
check "dies after the switch: the old container serves" test "$(docker inspect -f '{{.Id}} {{.State.Running}}' spilttea-backend)" = "$before_id true"
check "dies after the switch: the proxy answers 200 again" bash -c \
	'test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$1/health")" = 200' _ "$ST_PROXY_URL"
check "dies after the switch: no blue/green container left" test -z "$(leftovers)"

# 4. Back where it started, under load.
load_start 150
"$B" --yes deploy backend --strategy blue-green >"$tmp/d4" 2>&1
rc=$?
load_stop
check "second good deploy exits 0" test "$rc" = 0
check "ports alternate: back on $p0" test "$(port_now)" = "$p0" -a "$(backend_port)" = "$p0"
check "0 failed requests during the second deploy" test "$(load_field failed)" = 0

# 5. A deploy that dies (SIGKILL: a lost machine, an OOM kill) between its
# switch and its cutover leaves the proxy on NAME-COLOUR and the name on the
# old container, which takes no traffic. The next deploy finishes that
# cutover first and then deploys as usual (review 2 item 2).
switched_in() { # JOURNAL_LINE: the switch of the run started after it is done
	tail -n +"$1" "$ST_SANDBOX_DIR/state/journal.jsonl" |
		grep -q '"step":"backend-switch","action":"deploy.op","phase":"act","result":"ok"'
}
jl=$(($(wc -l <"$ST_SANDBOX_DIR/state/journal.jsonl") + 1))
"$B" --yes deploy backend --strategy blue-green >"$tmp/d5" 2>&1 &
dp=$!
killed=0
for _ in $(seq 1 600); do
	if switched_in "$jl"; then
		kill -KILL "$dp" && killed=1
		break
	fi
	kill -0 "$dp" 2>/dev/null || break
	sleep 0.05
done
wait "$dp" 2>/dev/null
check "killed after the switch: it was killed between switch and cutover" test "$killed" = 1
check "killed after the switch: the proxy routes to the new colour ($(port_now))" test "$(port_now)" = "$p1"
check "killed after the switch: the new colour is left beside the old name" test -n "$(leftovers)"
load_start 150
"$B" --yes deploy backend --strategy blue-green >"$tmp/d6" 2>&1
rc=$?
load_stop
check "deploy after the killed one exits 0" test "$rc" = 0
check "it said it finished the interrupted cutover" grep -q "finishing that cutover first" "$tmp/d6"
check "the backend alternated once more: on $p0, where the proxy routes" \
	test "$(port_now)" = "$p0" -a "$(backend_port)" = "$p0"
check "no blue/green container left" test -z "$(leftovers)"
check "one backend container" test "$(docker ps -a --format '{{.Names}}' | grep -c '^spilttea-backend')" = 1
check "0 failed requests while it recovered and deployed ($(load_field sent) sent)" test "$(load_field failed)" = 0

# 6. Past the cutover's commit point (the old container is being stopped)
# the new container is the only one that serves: nothing may take it away
# (review 2 item 1).
# deploy_with_meddling NAME WHAT: a deploy under load; once its switch is
# journaled (the watch runs 3 s), WHAT runs; the deploy's exit in $rc.
deploy_with_meddling() {
	local out=$1 what=$2
	jl=$(($(wc -l <"$ST_SANDBOX_DIR/state/journal.jsonl") + 1))
	load_start 100
	"$B" --yes deploy backend --strategy blue-green >"$out" 2>&1 &
	dp=$!
	meddled=0
	for _ in $(seq 1 600); do
		if switched_in "$jl"; then
			$what && meddled=1
			break
		fi
		kill -0 "$dp" 2>/dev/null || break
		sleep 0.05
	done
	wait "$dp"
	rc=$?
	load_stop
}
live_port=$(port_now)
# 6a. The name is taken when cutover renames: the old container goes under
# another name and a stand-in takes 'spilttea-backend'.
take_name() {
	docker rename spilttea-backend spilttea-test-bluegreen-old &&
		docker create --name spilttea-backend --network host spilttea-sandbox/standin:1 >/dev/null
}
deploy_with_meddling "$tmp/d7" take_name
new_port=$(port_now)
check "name taken at cutover: it was taken during the watch" test "$meddled" = 1
check "name taken at cutover: the deploy still succeeds (exit $rc)" test "$rc" = 0
check "name taken at cutover: a notice says how to finish" grep -q "cannot take the name 'spilttea-backend'" "$tmp/d7"
check "name taken at cutover: the proxy stayed on the new port ($live_port -> $new_port)" \
	test -n "$new_port" -a "$new_port" != "$live_port"
check "name taken at cutover: the new container serves through the proxy" bash -c \
	'test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$1/health")" = 200' _ "$ST_PROXY_URL"
check "name taken at cutover: it runs as $(leftovers)" test "$(docker inspect -f '{{.State.Running}}' "$(leftovers)" 2>&1)" = true
check "name taken at cutover: the old container is gone" bash -c '! docker inspect spilttea-test-bluegreen-old >/dev/null 2>&1'
check "name taken at cutover: 0 failed requests ($(load_field sent) sent)" test "$(load_field failed)" = 0
docker rm -f spilttea-backend spilttea-test-bluegreen-old >/dev/null 2>&1
# The next deploy finishes the rename, then deploys.
"$B" --yes deploy backend --strategy blue-green >"$tmp/d8" 2>&1
check "after the taken name: the next deploy exits 0" test $? = 0
check "after the taken name: one backend container, no colour left" \
	test "$(docker ps -a --format '{{.Names}}' | grep -c '^spilttea-backend')/$(leftovers)" = 1/

# 6b. A step after the cutover fails (the release history became
# unreadable): its undo must not route back to the removed old container
# nor remove the new one.
hist=$ST_SANDBOX_DIR/state/releases/backend.json
cp -p "$hist" "$tmp/history"
break_history() { printf 'not json\n' >"$hist"; }
live_port=$(port_now)
deploy_with_meddling "$tmp/d9" break_history
cp -p "$tmp/history" "$hist"
new_port=$(port_now)
check "commit fails after cutover: it was broken during the watch" test "$meddled" = 1
check "commit fails after cutover: exit 1" test "$rc" = 1
check "commit fails after cutover: the undo refuses to switch back" grep -q "nothing to switch back to" "$tmp/d9"
check "commit fails after cutover: the proxy stays on the new port ($live_port -> $new_port)" \
	test -n "$new_port" -a "$new_port" != "$live_port"
check "commit fails after cutover: spilttea-backend runs there" test "$(backend_port)" = "$new_port"
check "commit fails after cutover: it serves through the proxy" bash -c \
	'test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$1/health")" = 200' _ "$ST_PROXY_URL"
check "commit fails after cutover: 0 failed requests ($(load_field sent) sent)" test "$(load_field failed)" = 0

printf '1..%d\n' "$checks"
if ((failures)); then
	for f in "$tmp"/d[1-4]; do [[ -f $f ]] && sed 's/^/# /' "$f" | tail -n 5; done
	printf '# %d of %d checks failed\n' "$failures" "$checks"
	exit 1
fi
