#!/usr/bin/env bash
# Fault injection against the sandbox's own Docker daemon (issue 7):
#   - dockerd frozen (SIGSTOP) during a blue/green deploy of the backend,
#     while the new colour's health gate runs: the proxy keeps routing to the
#     old container, which keeps serving; exit 1 with an error naming Docker;
#     the journal records the failed step and its undo
#   - dockerd frozen during a recreate deploy of the frontend, resumed (SIGCONT)
#     while the deploy is still undoing: the old container is back and serves
#   - SIGINT and SIGTERM during deploys (blue/green, recreate): exit 3, rolled
#     back, the old container serving, lock released, the abort journaled
#   - a deploy killed -9: its stale lock is taken over by the next run
#   - SIGTERM during migrate up, while the migration command runs: it runs to
#     its end, the run stops before restarting the backend, exit 3, aborted
#     in the journal, lock released
# Only the dockerd this sandbox started is ever stopped (its pid file), and
# it is always continued. Images are spilttea-test-faults-*; the containers
# are left on the images and ports they had.
set -euo pipefail
# shellcheck source=tests/integration/fault_lib.sh
. "$(dirname "$0")/fault_lib.sh"
: "${SPILTTEA_OPS_CONFIG:?}" "${ST_FRONTEND_URL:?}" "${ST_PROXY_URL:?}"

dpid=$(cat "$ST_SANDBOX_DIR/dockerd.pid" 2>/dev/null || true)
if [[ -z $dpid || $(cat "/proc/$dpid/comm" 2>/dev/null) != dockerd ]]; then
	fail "this sandbox did not start its own dockerd ($ST_SANDBOX_DIR/dockerd.pid): refusing to stop a shared daemon"
	exit 1
fi
# Whatever happens, the daemon runs again.
on_exit 'kill -CONT "$dpid" 2>/dev/null'
docker_frozen=0
freeze() { kill -STOP "$dpid"; docker_frozen=1; }
thaw() { kill -CONT "$dpid"; docker_frozen=0; }

state=$tmp/state
journal=$state/journal.jsonl
upstream=$ST_SANDBOX_DIR/proxy/upstream.conf
port_now() { sed -n 's/^ *server [^:]*:\([0-9]*\);.*/\1/p' "$upstream"; }
image_of() { docker inspect --format '{{.Image}}' "$1"; }
id_of() { docker inspect --format '{{.Id}}' "$1"; }
serves() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1") == 200 ]]; }
leftovers() { docker ps -a --format '{{.Names}}' | grep -E '^spilttea-(backend|frontend)-(blue|green|new|old)' || true; }
state_of() { docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1"; }
healthy() { [[ $(state_of "$1") == running/healthy ]]; }
wait_healthy() {
	local c
	for c in spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend spilttea-proxy; do
		until_true 90 healthy "$c" ||
			{ echo "# $c: $(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>&1)" >&2; return 1; }
	done
}
wait_healthy || { fail "the sandbox is not healthy (scripts/sandbox status)"; exit 1; }

p0=$(port_now)
orig_backend=$(image_of spilttea-backend)
orig_frontend=$(image_of spilttea-frontend)
orig_ids="$(id_of spilttea-backend) $(id_of spilttea-frontend)"
# Containers a failed deploy left beside the service, never an original one
# (a recreate whose undo failed leaves the original as NAME-old-RELEASE).
remove_leftovers() {
	local c id
	for c in $(leftovers); do
		id=$(id_of "$c") || continue
		[[ " $orig_ids " == *" $id "* ]] && continue
		docker rm -f "$c" >/dev/null 2>&1
	done
}
# Puts the original container of SERVICE back under its name.
repair() { # SERVICE ORIGINAL_ID
	[[ $(id_of "spilttea-$1") == "$2" ]] && return 0
	docker inspect "$2" >/dev/null 2>&1 || return 0 # replaced for good: rollback's business
	echo "# putting the original spilttea-$1 back" >&2
	docker rm -f "spilttea-$1" >/dev/null 2>&1
	docker rename "$2" "spilttea-$1" && docker start "spilttea-$1" >/dev/null
}
[[ -n $p0 ]] || { fail "no upstream port in $upstream"; exit 1; }

# A slow-starting release (5 s before it listens): the gate runs long
# enough to inject a fault into it.
ctx=$tmp/slow
mkdir -p "$ctx"
printf 'FROM spilttea-sandbox/standin:1\nENV STANDIN_VERSION=faults STANDIN_START_DELAY=5\n' >"$ctx/Dockerfile"
cfg=$tmp/config.yaml
# The sandbox's configuration, with our own state, a short Docker timeout,
# and backend/frontend built from the slow context.
python3 - "$SPILTTEA_OPS_CONFIG" "$cfg" "$state" "$ctx" <<'EOF'
import re, sys
src, dst, state, ctx = sys.argv[1:]
out = []
for line in open(src):
    if line.startswith("state_dir:"):
        line = 'state_dir: "%s"\n' % state
    elif line.startswith("  host:") and out and out[-1].startswith("docker:"):
        line = line + "  timeout: 3s\n"
    elif line.startswith("  backend:"):
        line = re.sub(r"image: [^,]*,", 'image: spilttea-test-faults-backend, build: "%s",' % ctx, line)
    elif line.startswith("  frontend:"):
        line = re.sub(r"image: [^,]*,", 'image: spilttea-test-faults-frontend, build: "%s",' % ctx, line)
    elif line.startswith("compose_file:") or line.startswith("compose_env_file:"):
        continue
    out.append(line)
out.append("deploy: { health_timeout: 8s, health_interval: 500ms, log_scan: 1s, keep_releases: 3 }\n")
open(dst, "w").write("".join(out))
EOF
chmod 600 "$cfg"
grep -q 'timeout: 3s' "$cfg" && grep -q spilttea-test-faults-backend "$cfg" || { fail "could not write $cfg"; exit 1; }

on_exit 'restore_stack'
restore_stack() {
	local svc
	kill -CONT "$dpid" 2>/dev/null
	repair backend "${orig_ids% *}"
	repair frontend "${orig_ids#* }"
	for svc in backend frontend; do
		if [[ $(image_of "spilttea-$svc") != "$(eval echo \$orig_$svc)" ]]; then
			echo "# spilttea-$svc is not on its original image: rolling back" >&2
			fail "spilttea-$svc left on another image"
			timeout 120 "$bin" -c "$cfg" -q --yes rollback "$svc" </dev/null >/dev/null 2>&1 || true
		fi
	done
	remove_leftovers
	if [[ $(port_now) != "$p0" ]]; then
		fail "the proxy was left on port $(port_now), not $p0"
	fi
	docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^spilttea-test-faults-' | xargs -r docker rmi -f >/dev/null 2>&1
}
jpos() { { wc -l <"$journal"; } 2>/dev/null || echo 0; }
# Since journal line FROM, the act of STEP ended with RESULT.
step_done() { tail -n +"$(($1 + 1))" "$journal" 2>/dev/null | grep -q "\"step\":\"$2\",\"action\":\"[a-z._]*\",\"phase\":\"act\",\"result\":\"$3\""; }
end_since() { tail -n +"$(($1 + 1))" "$journal" | grep '"type":"end"' | tail -1; }

# --- dockerd frozen during a blue/green deploy's health gate ---------------------
# Frozen from the moment the new colour started until its gate gave up
# (deploy.health_timeout 8s), then continued while the deploy undoes.
before=$(id_of spilttea-backend)
j0=$(jpos)
bg_start freeze-bg --yes deploy backend --strategy blue-green
if until_true 60 step_done "$j0" backend-start ok; then
	freeze
	served=0
	for _ in 1 2 3 4 5 6; do serves "$ST_PROXY_URL/health" && served=$((served + 1)); sleep 0.5; done
	[[ $served == 6 ]] && ok "dockerd frozen: the proxy kept serving the old backend (6/6 probes)" ||
		fail "dockerd frozen: the proxy answered $served of 6 probes"
	until_true 40 step_done "$j0" backend-gate failed && ok "dockerd frozen: the gate failed, journaled" ||
		fail "dockerd frozen: no failed gate in the journal"
	sleep 4 # the undo's first attempt meets the frozen daemon (docker.timeout 3s)
	thaw
	bg_wait "$bgpid" 60
	[[ $bgrc == 1 ]] && ok "dockerd frozen mid blue/green deploy: exit 1" ||
		{ fail "dockerd frozen mid blue/green deploy: exit $bgrc, expected 1"; sed 's/^/#  /' "$tmp/freeze-bg.err" >&2; }
	grep '^error' "$tmp/freeze-bg.err" | grep -qi 'docker did not finish within' &&
		ok "dockerd frozen: the error names Docker and its timeout: $(grep -m1 '^error' "$tmp/freeze-bg.err" | cut -c1-200)" ||
		{ fail "dockerd frozen: unclear error"; sed 's/^/#  /' "$tmp/freeze-bg.err" >&2; }
	grep -q "trying again" "$tmp/freeze-bg.err" && ok "dockerd frozen: the undo waited for the daemon" ||
		{ fail "dockerd frozen: the undo did not wait for the daemon"; sed 's/^/#  /' "$tmp/freeze-bg.err" >&2; }
	serves "$ST_PROXY_URL/health" && [[ $(port_now) == "$p0" ]] && ok "dockerd frozen: the proxy still routes to port $p0" ||
		fail "dockerd frozen: the proxy moved or stopped answering"
	end_since "$j0" | grep -q '"result":"failed"' && ok "dockerd frozen: the run ends failed in the journal" ||
		fail "dockerd frozen: journal end: $(end_since "$j0")"
	tail -n +"$((j0 + 1))" "$journal" | grep -q '"step":"backend-start","action":"deploy.undo","phase":"undo","result":"undone"' &&
		ok "dockerd frozen: the undo of the start is journaled as done" ||
		{ fail "dockerd frozen: the start was not undone"; tail -n +"$((j0 + 1))" "$journal" | grep '"phase":"undo"' | sed 's/^/#  /' >&2; sed 's/^/#  /' "$tmp/freeze-bg.err" >&2; }
	[[ $(id_of spilttea-backend) == "$before" && $(docker inspect -f '{{.State.Running}}' spilttea-backend) == true ]] &&
		ok "dockerd frozen: spilttea-backend is still the old container, running" || fail "dockerd frozen: the old backend changed"
	[[ -z $(leftovers) ]] && ok "dockerd frozen: the new colour was removed once the daemon answered" ||
		fail "dockerd frozen: left $(leftovers)"
	[[ -z $(find "$state/locks" -name '*.lock' 2>/dev/null) ]] && ok "dockerd frozen: lock released" || fail "dockerd frozen: lock file left"
else
	fail "dockerd frozen (blue/green): the new colour never started"
	bg_wait "$bgpid" 60
fi
((docker_frozen)) && thaw
remove_leftovers

# --- dockerd frozen during a recreate deploy, continued while it undoes ----------
wait_healthy || fail "the sandbox did not become healthy again"
before=$(id_of spilttea-frontend)
j0=$(jpos)
bg_start freeze-rc --yes deploy frontend --strategy recreate
if until_true 60 step_done "$j0" frontend-replace ok; then
	freeze
	until_true 40 step_done "$j0" frontend-gate failed || fail "dockerd frozen mid recreate: the gate never failed"
	sleep 2
	thaw
	bg_wait "$bgpid" 90
	[[ $bgrc == 1 ]] && ok "dockerd frozen mid recreate deploy: exit 1" ||
		{ fail "dockerd frozen mid recreate deploy: exit $bgrc, expected 1"; sed 's/^/#  /' "$tmp/freeze-rc.err" >&2; }
	[[ $(id_of spilttea-frontend) == "$before" && $(docker inspect -f '{{.State.Running}}' spilttea-frontend) == true ]] &&
		ok "dockerd frozen mid recreate: the old frontend container is back" ||
		{ fail "dockerd frozen mid recreate: spilttea-frontend is not the old container running"; sed 's/^/#  /' "$tmp/freeze-rc.err" >&2; repair frontend "$before"; }
	until_true 30 serves "$ST_FRONTEND_URL/" && ok "dockerd frozen mid recreate: the frontend serves again" ||
		fail "dockerd frozen mid recreate: the frontend does not answer"
	end_since "$j0" | grep -q '"result":"failed"' && ok "dockerd frozen mid recreate: journaled as failed" ||
		fail "dockerd frozen mid recreate: journal end: $(end_since "$j0")"
else
	fail "dockerd frozen (recreate): the replace never happened"
	bg_wait "$bgpid" 60
fi
((docker_frozen)) && thaw
remove_leftovers

# --- SIGINT / SIGTERM during deploys ------------------------------------------------
for c in "INT backend blue-green" "TERM frontend recreate"; do
	read -r sig svc strategy <<<"$c"
	wait_healthy || fail "the sandbox did not become healthy again"
	before=$(id_of "spilttea-$svc")
	j0=$(jpos)
	op=$([[ $strategy == blue-green ]] && echo start || echo replace)
	bg_start "sig-deploy-$sig" --yes deploy "$svc" --strategy "$strategy"
	if until_true 60 step_done "$j0" "$svc-$op" ok; then
		kill -"$sig" "$bgpid"
		bg_wait "$bgpid" 60
		[[ $bgrc == 3 ]] && ok "SIG$sig during a $strategy deploy: exit 3" ||
			{ fail "SIG$sig during a $strategy deploy: exit $bgrc, expected 3"; sed 's/^/#  /' "$tmp/sig-deploy-$sig.err" >&2; }
		[[ $(id_of "spilttea-$svc") == "$before" ]] && until_true 30 serves "$([[ $svc == backend ]] && echo "$ST_PROXY_URL/health" || echo "$ST_FRONTEND_URL/")" &&
			ok "SIG$sig during a $strategy deploy: the old container serves" ||
			{ fail "SIG$sig during a $strategy deploy: the old container is not back"; repair "$svc" "$before"; }
		[[ -z $(leftovers) ]] && ok "SIG$sig during a $strategy deploy: no new container left" || fail "SIG$sig: left $(leftovers)"
		[[ -z $(find "$state/locks" -name '*.lock' 2>/dev/null) ]] && ok "SIG$sig during a $strategy deploy: lock released" ||
			fail "SIG$sig during a $strategy deploy: lock file left"
		end_since "$j0" | grep -q '"result":"aborted"' && ok "SIG$sig during a $strategy deploy: journaled as aborted" ||
			fail "SIG$sig during a $strategy deploy: journal end: $(end_since "$j0")"
	else
		fail "SIG$sig during a $strategy deploy: the $op step never ended"
		bg_wait "$bgpid" 60
	fi
done
[[ $(port_now) == "$p0" ]] || fail "the proxy moved to $(port_now)"

# --- a deploy killed -9: the next run takes its lock over ---------------------------
wait_healthy || fail "the sandbox did not become healthy again"
j0=$(jpos)
bg_start stale-deploy --yes deploy backend --strategy blue-green
stale=$bgpid
if until_true 60 step_done "$j0" backend-start ok; then
	kill -9 "$stale"
	bg_wait "$stale" 10
	[[ -n $(find "$state/locks" -name 'svc:backend.lock') ]] || fail "kill -9: no svc:backend lock file left to take over"
	# A rollback to a release that does not exist: it takes the lock, then stops.
	set +e
	timeout -k 5 60 "$bin" -c "$cfg" --yes rollback backend --to no-such-release </dev/null >"$tmp/rb.out" 2>"$tmp/rb.err"
	rc=$?
	set -e
	out=$tmp/rb.out err=$tmp/rb.err
	[[ $rc != 4 && $rc != 124 ]] && ok "deploy killed -9: the next run was not refused (exit $rc)" ||
		fail "deploy killed -9: the next run exited $rc"
	grep -qF "stale lock from pid $stale" "$out" "$err" && ok "deploy killed -9: the next run took the stale lock over" ||
		{ fail "deploy killed -9: no takeover reported"; sed 's/^/#  /' "$out" "$err" >&2; }
	serves "$ST_PROXY_URL/health" && [[ $(port_now) == "$p0" ]] && ok "deploy killed -9: the old backend still serves" ||
		fail "deploy killed -9: the old backend does not serve"
else
	fail "stale deploy lock: the new colour never started"
	bg_wait "$bgpid" 60
fi
remove_leftovers

# --- SIGTERM during migrate up, while the migration command runs -------------------
mig=20991231000000_spilttea_test_faults
migs=$ST_SANDBOX_DIR/migrations
mcfg=$tmp/migrate.yaml
sed -e "s|^backup: .*|backup: { dir: \"$tmp/mbackups\", keep_days: 7, keep_min: 3, via: exec, compress: zstd }|" "$cfg" >"$mcfg"
chmod 600 "$mcfg"
q_live() { q "$ST_PG_DATABASE" "$1"; }
on_exit 'rm -rf "${migs:?}/$mig"; q_live "DROP TABLE IF EXISTS spilttea_test_faults_m; DELETE FROM _prisma_migrations WHERE migration_name = '"'"'$mig'"'"'" >/dev/null 2>&1'
mkdir -p "$migs/$mig"
printf 'SELECT pg_sleep(4);\nCREATE TABLE spilttea_test_faults_m (id int);\n' >"$migs/$mig/migration.sql"
started=$(docker inspect -f '{{.State.StartedAt}}' spilttea-backend)
j0=$(jpos)
cfg_saved=$cfg
cfg=$mcfg
bg_start sig-migrate migrate up
if until_true 60 step_done "$j0" backup ok; then
	sleep 1 # the command is in its pg_sleep
	kill -TERM "$bgpid"
	bg_wait "$bgpid" 60
	[[ $bgrc == 3 ]] && ok "SIGTERM during migrate up: exit 3" ||
		{ fail "SIGTERM during migrate up: exit $bgrc, expected 3"; sed 's/^/#  /' "$tmp/sig-migrate.err" >&2; }
	# Main's contract (lib/migrate.h): once the command started, it, the
	# status check and the restart run to their end; the health wait is
	# cut short, and that is where it says it stopped.
	grep -q "interrupted while waiting for 'spilttea-backend' to become healthy" "$tmp/sig-migrate.err" &&
		ok "SIGTERM during migrate up: says where it stopped" ||
		{ fail "SIGTERM during migrate up: unclear error"; sed 's/^/#  /' "$tmp/sig-migrate.err" >&2; }
	[[ $(q_live "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$mig' AND finished_at IS NOT NULL") == 1 ]] &&
		ok "SIGTERM during migrate up: the migration command ran to its end" || fail "SIGTERM during migrate up: the migration is not finished"
	[[ $(docker inspect -f '{{.State.StartedAt}}' spilttea-backend) != "$started" ]] &&
		ok "SIGTERM during migrate up: the backend was restarted onto the new schema" ||
		fail "SIGTERM during migrate up: the migration was applied but the backend not restarted"
	end_since "$j0" | grep -q '"result":"aborted"' && ok "SIGTERM during migrate up: journaled as aborted" ||
		fail "SIGTERM during migrate up: journal end: $(end_since "$j0")"
	[[ -z $(find "$state/locks" -name '*.lock' 2>/dev/null) ]] && ok "SIGTERM during migrate up: lock released" ||
		fail "SIGTERM during migrate up: lock file left"
else
	fail "SIGTERM during migrate up: the backup step never ended"
	bg_wait "$bgpid" 60
fi
cfg=$cfg_saved
