#!/usr/bin/env bash
# deploy and rollback against the sandbox's real Docker daemon:
#   - v1 -> v2 -> rollback: the container runs v1's image id again; name,
#     env (env file values), labels, restart policy, init, host network kept
#     (the running container as its own definition: no compose file)
#   - a broken image (health answers 500): automatic rollback, exit 1, the
#     old version serving, the message names URL, status and body; one that
#     exits at start: the same
#   - a health URL with user:password and a query token: neither shown in
#     messages or the journal
#   - --no-build with an existing tag (and without one: exit 3)
#   - --ref builds an older commit of a git-tracked context, working tree
#     untouched; .dockerignore honoured by the build
#   - a lost session (SIGHUP) mid-deploy: rolled back, exit 3, journal run
#     ended, no lock left
#   - two deploys at once: the second exits 4
#   - --dry-run changes nothing; the first deploy records the image before it
#   - the compose path (sandbox/docker-compose.yml): deploy all in depends_on
#     order, an unknown compose key rejected at file:line:column, a
#     dependency that is not running stops the deploy (exit 3)
# Images are spilttea-test-* (removed at the end); the backend and frontend
# containers are put back on their original images before the test ends.
# Prints the figures: time of a deploy, time to detect a broken one.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need ST_SANDBOX_DIR ST_BACKEND_URL ST_FRONTEND_URL DOCKER_HOST ST_PG_PORT ST_REDIS_PORT \
  ST_PG_PASSWORD_FILE ST_REDIS_PASSWORD_FILE

tmp=$(mktemp -d /tmp/spilttea-test-deploy.XXXXXX)
state=$tmp/state
note() { echo "# $*"; }

image_of() { docker inspect --format '{{.Image}}' "$1"; }
image_id() { docker image inspect --format '{{.Id}}' "$1"; }
version() { curl -s --max-time 3 "$ST_BACKEND_URL/version" || true; }
env_of() { docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1"; }

orig_backend=$(image_of spilttea-backend)
orig_frontend=$(image_of spilttea-frontend)
orig_backend_id=$(docker inspect --format '{{.Id}}' spilttea-backend)

# ---- configurations -------------------------------------------------------

# mkcfg FILE BACKEND_CONTEXT [EXTRA_YAML]: a configuration on this sandbox
# whose backend is built from BACKEND_CONTEXT into spilttea-test-backend.
mkcfg() {
	cat >"$1" <<EOF
state_dir: $state
docker: { host: "$DOCKER_HOST" }
services:
  postgres: { container: spilttea-postgres }
  redis:    { container: spilttea-redis }
  backend:  { container: spilttea-backend, image: spilttea-test-backend, build: "$2", health_url: "$ST_BACKEND_URL/health" }
  frontend: { container: spilttea-frontend, image: spilttea-test-frontend, url: "$ST_FRONTEND_URL" }
postgres: { host: 127.0.0.1, port: $ST_PG_PORT, user: spilttea, database: spilttea, password_file: "$ST_PG_PASSWORD_FILE" }
redis:    { host: 127.0.0.1, port: $ST_REDIS_PORT, password_file: "$ST_REDIS_PASSWORD_FILE" }
deploy:   { health_timeout: 30s, health_interval: 500ms, log_scan: 2s, keep_releases: 3 }
${3:-}
EOF
}

# context DIR VERSION [EXTRA DOCKERFILE LINES]
context() {
	mkdir -p "$1"
	printf 'FROM spilttea-sandbox/standin:1\nENV STANDIN_VERSION=%s\n%s' "$2" "${3:-}" >"$1/Dockerfile"
}

restore() {
	# Back to the images the sandbox had, through rollback to the releases
	# the first deploys recorded (the very first one of each history).
	local svc first cfg=$tmp/restore.yaml
	mkcfg "$cfg" "$tmp/v1"
	for svc in backend frontend; do
		[[ -f $state/releases/$svc.json ]] || continue
		first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["releases"][0]["id"])' \
			"$state/releases/$svc.json")
		if [[ $(image_of "spilttea-$svc") != "$(eval echo \$orig_$svc)" ]]; then
			"$bin" -c "$cfg" -q rollback "$svc" --to "$first" --yes </dev/null >/dev/null 2>&1 ||
				fail "restore: rollback $svc --to $first failed"
		fi
	done
}

cleanup() {
	local rc=$?
	set +e
	restore
	[[ $(image_of spilttea-backend) == "$orig_backend" ]] || fail "backend not back on its original image"
	[[ $(image_of spilttea-frontend) == "$orig_frontend" ]] || fail "frontend not back on its original image"
	docker ps -a --format '{{.Names}}' | grep -E '^spilttea-(backend|frontend)-(new|old)-' |
		xargs -r docker rm -f >/dev/null
	docker images --format '{{.Repository}}:{{.Tag}}' |
		grep -E '^spilttea-test-(backend|frontend|none):' | xargs -r docker rmi >/dev/null 2>&1
	rm -rf "$tmp"
	if ((failures)); then
		echo "$failures failure(s)" >&2
		exit 1
	fi
	exit $rc
}
trap cleanup EXIT

release_field() { # SERVICE INDEX FIELD (index from the end: -1 newest)
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["releases"][int(sys.argv[2])]; print(r.get(sys.argv[3]))' \
		"$state/releases/$1.json" "$2" "$3"
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# wait_healthy CONTAINER...: until each one's healthcheck says healthy (a
# sandbox just brought up, or a test before this one that restarted a
# container, can leave postgres "starting"; a deploy then fails its
# dependency check). Bounded: 120s for all, then the test fails loudly.
wait_healthy() {
	local c st deadline=$((SECONDS + 120))
	for c in "$@"; do
		while st=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c" 2>/dev/null) &&
			[[ $st != healthy && $st != running ]] && ((SECONDS < deadline)); do
			sleep 0.5
		done
		[[ $st == healthy || $st == running ]] || { echo "FAIL: $c is '${st:-missing}', not healthy, after 120s" >&2; exit 1; }
	done
}
wait_healthy spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend

# v1 carries a .dockerignore'd file; its build fails if the file got in.
context "$tmp/v1" v1 $'COPY . /ctx/\nRUN test -e /ctx/kept.txt && test ! -e /ctx/secret.txt && test ! -e /ctx/logs/a.log\n'
echo kept >"$tmp/v1/kept.txt"
echo secret >"$tmp/v1/secret.txt"
mkdir -p "$tmp/v1/logs" && echo x >"$tmp/v1/logs/a.log"
printf '# not for the image\nsecret.txt\nlogs\n' >"$tmp/v1/.dockerignore"
context "$tmp/v2" v2
context "$tmp/broken" broken 'ENV STANDIN_HEALTH_STATUS=500'$'\n'
context "$tmp/exits" exits 'ENV STANDIN_EXIT_AT_START=3'$'\n'
context "$tmp/slow" slow 'ENV STANDIN_START_DELAY=4'$'\n'
for c in v1 v2 broken exits slow; do mkcfg "$tmp/$c.yaml" "$tmp/$c"; done

# ---- dry run: nothing changes ------------------------------------------------
run_st 0 "dry run" -c "$tmp/v1.yaml" deploy backend --dry-run
contains "$tmp/out" "backend-image: build spilttea-test-backend:" "dry run"
contains "$tmp/out" "backend-gate" "dry run"
contains "$tmp/out" "lock: svc:backend" "dry run"
[[ ! -e $state ]] || fail "dry run wrote $state"
[[ $(docker inspect --format '{{.Id}}' spilttea-backend) == "$orig_backend_id" ]] || fail "dry run replaced the container"
docker image inspect spilttea-test-backend:latest >/dev/null 2>&1 && fail "dry run built an image"

# ---- v1 -> v2 -> rollback ------------------------------------------------------
run_st 0 "deploy v1" -c "$tmp/v1.yaml" deploy backend --yes
[[ $(version) == '{"version":"v1"}' ]] || fail "v1 not serving: $(version)"
v1_id=$(image_id spilttea-test-backend:latest)
[[ $(image_of spilttea-backend) == "$v1_id" ]] || fail "container does not run v1's image"
# The container is its own definition: what it had is kept.
env_of spilttea-backend >"$tmp/env"
contains "$tmp/env" "STANDIN_ROLE=backend" "v1 env"
contains "$tmp/env" "DATABASE_PORT=$ST_PG_PORT" "v1 env file values"
contains "$tmp/env" "STANDIN_VERSION=v1" "v1 image env"
[[ $(docker inspect --format '{{.HostConfig.NetworkMode}} {{.HostConfig.Init}} {{.HostConfig.RestartPolicy.Name}} {{index .Config.Labels "com.spilttea.sandbox.dir"}}' spilttea-backend) == "host true unless-stopped $ST_SANDBOX_DIR" ]] ||
	fail "v1 container lost network, init, restart policy or labels"
# The first deploy recorded what ran before it.
[[ $(release_field backend 0 source) == initial ]] || fail "no initial release recorded"
[[ $(release_field backend 0 image_id) == "$orig_backend" ]] || fail "initial release is not the original image"
[[ $(release_field backend -1 status) == ok ]] || fail "v1 release not ok"

t0=$(now)
run_st 0 "deploy v2" -c "$tmp/v2.yaml" deploy backend --yes
t_deploy=$(secs "$t0" "$(now)")
[[ $(version) == '{"version":"v2"}' ]] || fail "v2 not serving: $(version)"
v2_id=$(image_id spilttea-test-backend:latest)
contains "$tmp/out" "deployed backend: release" "deploy v2"
# Inherited from the old image, not kept: the new image's STANDIN_VERSION.
env_of spilttea-backend | grep -qx 'STANDIN_VERSION=v2' || fail "v2 container kept v1's image env"

run_st 0 "rollback" -c "$tmp/v2.yaml" rollback backend --yes
[[ $(image_of spilttea-backend) == "$v1_id" ]] || fail "rollback: container does not run v1's image id"
[[ $(version) == '{"version":"v1"}' ]] || fail "rollback: v1 not serving: $(version)"
[[ $(image_id spilttea-test-backend:latest) == "$v1_id" ]] || fail "rollback: latest is not v1"
[[ $(release_field backend -1 source) == rollback ]] || fail "rollback not recorded"
[[ $(release_field backend -2 status) == rolled-back ]] || fail "v2 not marked rolled-back"
run_st 0 "rollback --list" -c "$tmp/v2.yaml" rollback --list backend
contains "$tmp/out" "<- live" "rollback --list"
contains "$tmp/out" "initial" "rollback --list"
run_st 0 "deploy --list json" -c "$tmp/v2.yaml" --format json deploy --list backend
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [r for r in d["backend"] if r["live"]][0]["source"]=="rollback"' \
	"$tmp/out" || fail "deploy --list json"

# ---- broken images: automatic rollback -------------------------------------------
t0=$(now)
run_st 1 "broken image" -c "$tmp/broken.yaml" deploy backend --yes
t_broken=$(secs "$t0" "$(now)")
contains "$tmp/err" "$ST_BACKEND_URL/health answered 500" "broken image"
contains "$tmp/err" "forced by STANDIN_HEALTH_STATUS" "broken image body"
contains "$tmp/err" "failed and was undone" "broken image"
detect=$(sed -n 's/.*times in a row (after \([^)]*\)).*/\1/p' "$tmp/err" | head -1)
[[ $(version) == '{"version":"v1"}' ]] || fail "broken: v1 not serving after the rollback: $(version)"
[[ $(image_of spilttea-backend) == "$v1_id" ]] || fail "broken: container not back on v1"
[[ $(image_id spilttea-test-backend:latest) == "$v1_id" ]] || fail "broken: latest not back on v1"
[[ $(release_field backend -1 status) == failed ]] || fail "broken release not marked failed"
docker ps -a --format '{{.Names}}' | grep -q -- '-old-\|-new-' && fail "broken: a temporary container was left"

# The health URL as messages, results and the journal show it: without
# user:password and query, where credentials and tokens travel.
secret_url="${ST_BACKEND_URL/:\/\//://probe:pw-s3cret@}/health?token=tok-s3cret"
sed "s|health_url: \"$ST_BACKEND_URL/health\"|health_url: \"$secret_url\"|" "$tmp/broken.yaml" >"$tmp/secret.yaml"
grep -qF "$secret_url" "$tmp/secret.yaml" || fail "secret health URL: the configuration was not rewritten"
run_st 1 "broken image, health URL with credentials" -c "$tmp/secret.yaml" deploy backend --yes
contains "$tmp/err" "$ST_BACKEND_URL/health answered 500" "health URL with credentials"
if grep -l 's3cret' "$tmp/out" "$tmp/err" "$state/journal.jsonl"; then
	fail "the health URL's password or token was shown: $(grep -ho '[^ ]*s3cret[^ ]*' "$tmp/out" "$tmp/err" "$state/journal.jsonl" | sort -u | tr '\n' ' ')"
fi

run_st 1 "image that exits" -c "$tmp/exits.yaml" deploy backend --yes
# Seen while it restarts: "last exit code 3"; seen once it runs again
# (Docker then reports 0): only its last log line has the code.
grep -qE "exit code 3|exiting at start with code 3" "$tmp/err" || fail "image that exits: no exit code 3 in err"
grep -q "last exit code 0" "$tmp/err" && fail "image that exits: reported exit code 0"
[[ $(version) == '{"version":"v1"}' ]] || fail "exits: v1 not serving: $(version)"

# A new container that cannot even start (its image's USER does not exist):
# the half-done replacement puts the old container back by itself.
context "$tmp/nostart" nostart $'USER nosuchuser\n'
mkcfg "$tmp/nostart.yaml" "$tmp/nostart"
run_st 1 "container that cannot start" -c "$tmp/nostart.yaml" deploy backend --yes
contains "$tmp/err" "nosuchuser" "container that cannot start"
contains "$tmp/err" "the old container was put back" "container that cannot start"
[[ $(version) == '{"version":"v1"}' ]] || fail "cannot start: v1 not serving: $(version)"
[[ $(docker inspect --format '{{.State.Running}} {{.Image}}' spilttea-backend) == "true $v1_id" ]] ||
	fail "cannot start: old container not running under its name"
docker ps -a --format '{{.Names}}' | grep -q -- '-old-\|-new-' && fail "cannot start: a temporary container was left"

# A build that fails changes nothing.
context "$tmp/badbuild" badbuild $'RUN false\n'
mkcfg "$tmp/badbuild.yaml" "$tmp/badbuild"
cid=$(docker inspect --format '{{.Id}}' spilttea-backend)
run_st 1 "failing build" -c "$tmp/badbuild.yaml" deploy backend --yes
contains "$tmp/err" "cannot build 'spilttea-test-backend:" "failing build"
contains "$tmp/err" "returned a non-zero code" "failing build"
[[ $(docker inspect --format '{{.Id}}' spilttea-backend) == "$cid" ]] || fail "failing build replaced the container"
[[ $(image_id spilttea-test-backend:latest) == "$v1_id" ]] || fail "failing build moved latest"

# ---- a lost session (SIGHUP) during the health gate ----------------------------------
# The run stops, rolls back and ends like a Ctrl-C: exit 3, the journal run
# closed, no lock left, the previous container serving again.
cid=$(docker inspect --format '{{.Id}}' spilttea-backend)
setsid "$bin" -c "$tmp/slow.yaml" deploy backend --yes </dev/null >"$tmp/hup.out" 2>"$tmp/hup.err" &
pid=$!
for ((i = 0; i < 600; i++)); do
	grep -q 'backend-replace' "$tmp/hup.out" && break
	sleep 0.1
done
kill -HUP "$pid"
set +e
wait "$pid"
rc=$?
set -e
[[ $rc == 3 ]] || { fail "SIGHUP during the gate: exit $rc, expected 3"; sed 's/^/  | /' "$tmp/hup.out" "$tmp/hup.err" >&2; }
[[ ! -e $state/locks/svc:backend.lock ]] || fail "SIGHUP during the gate: the lock file was left"
python3 - "$state/journal.jsonl" "$pid" <<'PY' || fail "SIGHUP during the gate: the journal run has no end, or not 'aborted'"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
run = [r for r in recs if r["type"] == "start" and r.get("pid") == int(sys.argv[2])][-1]["run"]
end = [r for r in recs if r["type"] == "end" and r["run"] == run]
assert end and end[0]["result"] == "aborted", end
PY
# Undo runs without the interrupt (review 2 item 8): the previous container
# is back and its health gate passed, not "interrupted".
python3 - "$state/journal.jsonl" "$pid" <<'PY' || fail "SIGHUP during the gate: undoing the replacement failed"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
run = [r for r in recs if r["type"] == "start" and r.get("pid") == int(sys.argv[2])][-1]["run"]
undo = [r for r in recs if r["type"] == "step" and r["run"] == run and r["phase"] == "undo"]
assert undo and all(r["result"] == "undone" for r in undo), undo
assert "backend-replace" in [r["step"] for r in undo], undo
PY
grep -q 'undo of step' "$tmp/hup.err" && fail "SIGHUP during the gate: $(grep 'undo of step' "$tmp/hup.err")"
[[ $(version) == '{"version":"v1"}' ]] || fail "SIGHUP during the gate: v1 not serving: $(version)"
[[ $(docker inspect --format '{{.State.Running}} {{.Image}}' spilttea-backend) == "true $v1_id" ]] ||
	fail "SIGHUP during the gate: old container not running under its name"
[[ $(image_id spilttea-test-backend:latest) == "$v1_id" ]] || fail "SIGHUP during the gate: latest not back on v1"

# ---- --no-build ----------------------------------------------------------------------
docker tag "$v2_id" spilttea-test-backend:latest
run_st 0 "--no-build" -c "$tmp/v1.yaml" deploy backend --no-build --yes
[[ $(image_of spilttea-backend) == "$v2_id" ]] || fail "--no-build did not deploy the tagged image"
[[ $(release_field backend -1 source) == no-build ]] || fail "--no-build not recorded"
mkcfg "$tmp/none.yaml" "$tmp/v1"
sed -i 's/image: spilttea-test-backend,/image: spilttea-test-none,/' "$tmp/none.yaml"
run_st 3 "--no-build without an image" -c "$tmp/none.yaml" deploy backend --no-build --yes
contains "$tmp/err" "no image 'spilttea-test-none:latest'" "--no-build without an image"

# ---- --ref: an older commit, the working tree untouched ----------------------------------
repo=$tmp/repo
mkdir -p "$repo/app"
git -C "$repo" init -q
git -C "$repo" config user.email test@spilttea.test
git -C "$repo" config user.name test
context "$repo/app" ref-1
git -C "$repo" add -A && git -C "$repo" commit -qm one
old_commit=$(git -C "$repo" rev-parse HEAD)
context "$repo/app" ref-2
git -C "$repo" commit -qam two
context "$repo/app" ref-dirty
before=$(git -C "$repo" status --porcelain; cat "$repo/app/Dockerfile"; git -C "$repo" rev-parse HEAD)
mkcfg "$tmp/ref.yaml" "$repo/app"
run_st 0 "--ref" -c "$tmp/ref.yaml" deploy backend --ref HEAD~1 --yes
[[ $(version) == '{"version":"ref-1"}' ]] || fail "--ref HEAD~1 did not build the older commit: $(version)"
[[ $(release_field backend -1 git_commit) == "$old_commit" ]] || fail "--ref: commit not recorded"
after=$(git -C "$repo" status --porcelain; cat "$repo/app/Dockerfile"; git -C "$repo" rev-parse HEAD)
[[ $before == "$after" ]] || fail "--ref touched the working tree"
run_st 0 "working tree" -c "$tmp/ref.yaml" deploy backend --yes
[[ $(version) == '{"version":"ref-dirty"}' ]] || fail "working tree build: $(version)"
[[ $(release_field backend -1 git_dirty) == True ]] || fail "dirty working tree not recorded"
run_st 3 "--ref unknown" -c "$tmp/ref.yaml" deploy backend --ref no-such-ref --yes
contains "$tmp/err" "names no commit" "--ref unknown"

# ---- two deploys at once ----------------------------------------------------------------------
setsid -w "$bin" -c "$tmp/slow.yaml" deploy backend --yes </dev/null >"$tmp/bg.out" 2>&1 &
bg=$!
for ((i = 0; i < 50; i++)); do
	[[ -e $state/locks/svc:backend.lock ]] && break
	sleep 0.1
done
run_st 4 "second deploy" -c "$tmp/v2.yaml" deploy backend --yes
contains "$tmp/err" "svc:backend is locked by pid $bg" "second deploy"
run_st 4 "rollback meanwhile" -c "$tmp/v2.yaml" rollback backend --yes
# The lock is the backend's, not the deploy command's (review 2 item 4): a
# restart of the same container waits for the deploy to end.
run_st 4 "restart-backend meanwhile" -c "$tmp/v2.yaml" run restart-backend --yes
contains "$tmp/err" "svc:backend is locked by pid $bg" "restart-backend meanwhile"
wait "$bg" || { fail "the first deploy failed"; cat "$tmp/bg.out" >&2; }
[[ $(version) == '{"version":"slow"}' ]] || fail "the first deploy did not finish: $(version)"

# ---- retention, history file, journal --------------------------------------------------------------
# keep_releases 3: pruned releases lost their tag, the others kept it; the
# running image and the rollback target are there.
python3 - "$state/releases/backend.json" >"$tmp/tags" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["releases"]:
    print(r["id"], "pruned" if r.get("pruned") else "kept", r["status"], r["image_id"])
PY
pruned=0
while read -r id what status _; do
	if [[ $what == pruned ]]; then
		pruned=$((pruned + 1))
		docker image inspect "spilttea-test-backend:$id" >/dev/null 2>&1 && fail "retention: $id pruned but tagged"
	elif [[ $status == ok ]]; then
		docker image inspect "spilttea-test-backend:$id" >/dev/null 2>&1 || fail "retention: $id kept but untagged"
	fi
done <"$tmp/tags"
((pruned > 0)) || fail "retention pruned nothing after $(wc -l <"$tmp/tags") releases with keep_releases 3"
docker image inspect "$(image_of spilttea-backend)" >/dev/null || fail "retention removed the running image"
run_st 0 "rollback target" -c "$tmp/v1.yaml" --format json rollback --list backend
target=$(python3 -c 'import json,sys; print([r for r in json.load(open(sys.argv[1]))["backend"] if r["rollback_target"]][0]["image_id"])' "$tmp/out")
docker image inspect "$target" >/dev/null || fail "retention removed the rollback target $target"
[[ $(stat -c %a "$state/releases/backend.json") == 600 ]] || fail "history file is not 0600"
contains "$state/journal.jsonl" '"runbook":"deploy"' "journal"
contains "$state/journal.jsonl" '"runbook":"rollback"' "journal"
contains "$state/journal.jsonl" '"step":"backend-gate","action":"deploy.op","phase":"act","result":"failed"' "journal"
contains "$state/journal.jsonl" '"step":"backend-replace","action":"deploy.undo","phase":"undo","result":"undone"' "journal"
grep -q 'DATABASE_URL\|JWT_SECRET' "$state/journal.jsonl" && fail "journal holds environment values"

# ---- the compose path -----------------------------------------------------------------------------
compose_extra="compose_file: \"$src/sandbox/docker-compose.yml\"
compose_env_file: \"$ST_SANDBOX_DIR/compose.env\""
mkcfg "$tmp/compose.yaml" "$src/sandbox/backend" "$compose_extra"
wait_healthy spilttea-postgres spilttea-redis
# build: comes from the compose file for the frontend, from services: for the backend
run_st 0 "deploy all --dry-run (compose)" -c "$tmp/compose.yaml" deploy all --dry-run
grep -n '^deploy ' "$tmp/out" | cut -d' ' -f2 | tr '\n' ' ' >"$tmp/order"
[[ $(cat "$tmp/order") == "backend frontend " ]] || fail "deploy all order: $(cat "$tmp/order")"
t0=$(now)
run_st 0 "deploy all (compose)" -c "$tmp/compose.yaml" deploy all --yes
t_all=$(secs "$t0" "$(now)")
[[ $(version) == '{"version":"sandbox"}' ]] || fail "compose backend not serving: $(version)"
curl -sf --max-time 3 "$ST_FRONTEND_URL/" >/dev/null || fail "compose frontend not serving"
env_of spilttea-backend >"$tmp/env"
contains "$tmp/env" "STANDIN_ROLE=backend" "compose env"
contains "$tmp/env" "DATABASE_PORT=$ST_PG_PORT" "compose env_file"
env_of spilttea-frontend >"$tmp/env"
contains "$tmp/env" "PORT=${ST_FRONTEND_URL##*:}" "compose frontend PORT"
[[ $(docker inspect --format '{{.HostConfig.NetworkMode}} {{.HostConfig.Init}} {{index .Config.Labels "com.spilttea.sandbox.dir"}}' spilttea-backend) == "host true $ST_SANDBOX_DIR" ]] ||
	fail "compose backend: network, init or labels"
[[ $(grep -c '^deployed ' "$tmp/out") == 2 ]] || fail "deploy all did not deploy two services"
# a dependency that is not running: aborted before anything changed
cat >"$tmp/dep-compose.yml" <<EOF
services:
  ghost: { image: spilttea-test-none, container_name: spilttea-test-ghost, network_mode: host }
  backend:
    build: $src/sandbox/backend
    network_mode: host
    depends_on: { ghost: { condition: service_healthy } }
EOF
mkcfg "$tmp/dep.yaml" "$src/sandbox/backend" "compose_file: \"$tmp/dep-compose.yml\""
run_st 3 "dependency not running" -c "$tmp/dep.yaml" deploy backend --yes
contains "$tmp/err" "'backend' needs 'ghost' but container 'spilttea-test-ghost' does not exist" "dependency"
# a key the subset does not reproduce
cat >"$tmp/bad-compose.yml" <<EOF
services:
  backend:
    build: $src/sandbox/backend
    network_mode: host
    privileged: true
EOF
mkcfg "$tmp/bad.yaml" "$src/sandbox/backend" "compose_file: \"$tmp/bad-compose.yml\""
run_st 2 "unknown compose key" -c "$tmp/bad.yaml" deploy backend --yes
contains "$tmp/err" "$tmp/bad-compose.yml:5:5: service 'backend': key 'privileged' is not supported" "unknown compose key"

# ---- usage ----------------------------------------------------------------------------------------
run_st 2 "unknown service" -c "$tmp/v1.yaml" deploy nginx --yes
contains "$tmp/err" "unknown service 'nginx'" "unknown service"
run_st 2 "unknown strategy" -c "$tmp/v1.yaml" deploy backend --strategy canary --yes
run_st 2 "unknown release" -c "$tmp/v1.yaml" rollback backend --to 19990101_000000 --yes
run_st 0 "rollback --help" rollback --help
contains "$tmp/out" "Decision Matrix" "rollback --help"
contains "$tmp/out" "Frontend bug" "rollback --help"
run_st 3 "no terminal, no --yes" -c "$tmp/v1.yaml" deploy backend
contains "$tmp/err" "re-run with --yes" "no terminal"

echo "figures: deploy v2 (build, replace, health gate, 2s log scan) ${t_deploy}s; broken image detected after ${detect:-?} (whole command with rollback ${t_broken}s); deploy all (compose, 2 services) ${t_all}s"
