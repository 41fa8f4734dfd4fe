#!/usr/bin/env bash
# Integration test of `spilttea-ops health` against the sandbox (HACKING.md):
# every check green; json, nagios and prometheus outputs parsed; --output
# written atomically 0644; --check subsets; each check turns red when its
# service is stopped or its threshold is set below the current value; a
# service that accepts but never answers is cut at the timeout. Containers
# are restored (started, healthy) before the test ends, even on failure.
#
# Fails (never skips) when the sandbox contract is missing.
set -uo pipefail

# Also runs by hand, outside ctest: the tree's build and sandbox.
root=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export ST_BINARY=${ST_BINARY:-$root/build/spilttea-ops}
if [[ -z ${SPILTTEA_OPS_CONFIG:-} && -f $root/.sandbox/env ]]; then
	set -a
	. "$root/.sandbox/env"
	set +a
fi
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
[[ -n ${SPILTTEA_OPS_CONFIG:-} && -f ${SPILTTEA_OPS_CONFIG} ]] || {
	echo "FAIL: SPILTTEA_OPS_CONFIG is not set or missing: run scripts/sandbox up (scripts/test does)"
	exit 1
}
[[ -x $bin ]] || { echo "FAIL: no binary $bin"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is needed to parse the outputs"; exit 1; }

sock=/var/run/docker.sock
[[ ${DOCKER_HOST:-} == unix://* ]] && sock=${DOCKER_HOST#unix://}
api() { curl -s -m 30 --unix-socket "$sock" -X "$1" "http://localhost/v1.41$2" "${@:3}"; }

tmp=$(mktemp -d)
tests=0
sandbox_containers=(spilttea-postgres spilttea-redis spilttea-backend spilttea-frontend)
logger=spilttea-test-health-logger
logger_image=spilttea-test-health-busybox
listener_pid=

# TAP of its own: fail is "not ok" here, and check shows the command's output.
pass() { tests=$((tests + 1)); echo "ok $tests - $*"; }
fail() { tests=$((tests + 1)); failures=$((failures + 1)); echo "not ok $tests - $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

state_of() {
	api GET "/containers/$1/json" | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)["State"]
except Exception:
    print("missing"); sys.exit()
print(s["Status"], (s.get("Health") or {}).get("Status", "none"))'
}

wait_healthy() {
	local name deadline=$((SECONDS + 90)) st
	for name in "$@"; do
		while :; do
			st=$(state_of "$name")
			[[ $st == "running healthy" || $st == "running none" ]] && break
			if ((SECONDS > deadline)); then
				echo "# $name not healthy: $st"
				return 1
			fi
			sleep 0.3
		done
	done
}

restore() {
	local name
	[[ -n $listener_pid ]] && kill "$listener_pid" 2>/dev/null
	# postgres before the backend: the backend's /health needs it
	for name in "${sandbox_containers[@]}"; do
		api POST "/containers/$name/start" >/dev/null
		wait_healthy "$name" || true
	done
	api DELETE "/containers/$logger?force=1" >/dev/null
	api DELETE "/images/$logger_image?force=1" >/dev/null
}
cleanup() {
	restore
	rm -rf "$tmp"
}
trap cleanup EXIT

stop() { api POST "/containers/$1/stop?t=5" >/dev/null; }

# A config copy with one line of YAML replaced or appended.
config_with() {
	local out=$tmp/config-$RANDOM.yaml
	python3 - "$SPILTTEA_OPS_CONFIG" "$out" "$@" <<'EOF'
import re, sys
src, out, edits = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(src).read()
for e in edits:
    key, _, line = e.partition("=")
    pat = re.compile(r"^\s*" + re.escape(key) + r":.*$", re.M)
    if pat.search(text):
        text = pat.sub(lambda m: line, text, count=1)
    else:
        text += line + "\n"
open(out, "w").write(text)
EOF
	echo "$out"
}

# health ARGS...: runs health, sets $out, $rc and $took (seconds)
run() {
	local t0=$EPOCHREALTIME
	out=$("$bin" "$@" 2>"$tmp/stderr")
	rc=$?
	took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
}

# status of check NAME in JSON on stdin
json_status() { python3 -c 'import json,sys; d=json.load(sys.stdin); print({c["name"]: c["status"] for c in d["checks"]}.get(sys.argv[1], "absent"))' "$1"; }

cat >"$tmp/nagios_parse.py" <<'EOF'
import re, sys
text = sys.stdin.read()
lines = text.split("\n")
first = lines[0]
m = re.match(r"^HEALTH (OK|WARNING|CRITICAL|UNKNOWN) - ([^|]*)(?: \| (.*))?$", first)
if not m:
    sys.exit("bad status line: " + first)
status, perf = m.group(1), m.group(3) or ""
items = re.findall(r"""('(?:[^']|'')+'|[^'=\s]+)=([-0-9.]+)(s|ms|us|%|B|KB|MB|TB|c)?((?:;[-0-9.]*){0,4})(?=\s|$)""", perf)
rest = re.sub(r"""('(?:[^']|'')+'|[^'=\s]+)=([-0-9.]+)(s|ms|us|%|B|KB|MB|TB|c)?((?:;[-0-9.]*){0,4})(?=\s|$)""", "", perf).strip()
if rest:
    sys.exit("unparsed perfdata: " + rest)
labels = [l.strip("'").replace("''", "'") for l, *_ in items]
want = sys.argv[1]
if status != want:
    sys.exit(f"status {status}, expected {want}")
for need in sys.argv[2:]:
    if need not in labels:
        sys.exit("no perfdata " + need)
print(f"{status} {len(items)} perfdata items")
EOF
json_summary() { python3 -c 'import json,sys; d=json.load(sys.stdin); print([c["status"] + " " + c["summary"] for c in d["checks"] if c["name"] == sys.argv[1]])' "$1"; }
nagios_parse() { python3 "$tmp/nagios_parse.py" "$@"; }

cat >"$tmp/prom_parse.py" <<'EOF'
import re, sys
fams, typed, samples = [], {}, {}
cur = None
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
for line in sys.stdin.read().splitlines():
    if line.startswith("# HELP "):
        name = line.split()[2]
        if name in fams:
            sys.exit("family twice: " + name)
        fams.append(name); cur = name
    elif line.startswith("# TYPE "):
        _, _, name, t = line.split()
        assert name == cur and t in ("gauge", "counter"), line
        typed[name] = t
    else:
        m = re.match(r"^(" + name_re + r")(\{(.*)\})? (\S+)$", line)
        if not m:
            sys.exit("bad sample: " + line)
        assert m.group(1) == cur, "sample outside its family: " + line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples[(m.group(1), labels.get("check", ""))] = float(m.group(4))
want = float(sys.argv[1])
if samples[("spilttea_health_status", "")] != want:
    sys.exit("spilttea_health_status %s, expected %s" % (samples[("spilttea_health_status", "")], want))
for need in sys.argv[2:]:
    if not any(n == need for n, _ in samples):
        sys.exit("no family " + need)
print(len(fams), "families", len(samples), "samples")
EOF
prom_parse() { python3 "$tmp/prom_parse.py" "$@"; }

echo "# config: $SPILTTEA_OPS_CONFIG"
wait_healthy "${sandbox_containers[@]}" || fail "sandbox healthy at start"

# ---- all green ------------------------------------------------------------
# The error rate reads the backend log of the last health.log_window (5m):
# an outage made by an earlier test (a stopped database makes the backend's
# /health log errors) would still count. The green runs look at the last
# 5 seconds, after some healthy traffic; this test itself never makes the
# sandbox backend log errors (see the postgres stop below).
green=$(config_with "health=health: { log_window: 5s }")
for i in 1 2 3; do curl -s -o /dev/null "$ST_BACKEND_URL/health"; done
run -c "$green" health
check "health exits 0 on the healthy sandbox (took ${took}s)" test "$rc" = 0
[[ $rc == 0 ]] || echo "$out" | sed 's/^/# /'
for id in backend.health backend.error_rate frontend.reachable container.spilttea-postgres \
	container.spilttea-redis container.spilttea-backend container.spilttea-frontend \
	container_cpu.spilttea-backend container_memory.spilttea-redis postgres.reachable \
	postgres.connections postgres.longest_query postgres.longest_transaction postgres.size \
	redis.reachable redis.memory redis.clients redis.evictions disk.docker_root \
	disk.backup_dir docker.df; do
	grep -q "^OK  *$id " <<<"$out" || { fail "text table: $id OK"; continue; }
done
pass "text table lists every check id OK"

run -c "$green" health --format json
check "json: exit 0" test "$rc" = 0
[[ $rc == 0 ]] || python3 -c '
import json, sys
for c in json.loads(sys.stdin.read())["checks"]:
    if c["status"] != "OK":
        print("#", c["name"], c["status"], c["summary"])' <<<"$out"
check "json: parses with status OK, exit_code 0, stable keys" python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["status"] == "OK" and d["exit_code"] == 0, d["status"]
assert set(d) >= {"status", "exit_code", "checks", "generated_at", "tool_version", "duration_ms"}
for c in d["checks"]:
    assert set(c) >= {"name", "status", "summary", "duration_ms", "metrics", "details"}, c
    assert c["status"] == "OK", c
    for m in c["metrics"].values():
        assert set(m) == {"value", "unit", "warn", "crit", "min", "max"}, m
names = [c["name"] for c in d["checks"]]
assert len(names) == len(set(names)) >= 21, names
' <<<"$out"
check "json: redis.memory reports maxmemory 64mb" python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
c = [c for c in d["checks"] if c["name"] == "redis.memory"][0]
assert c["metrics"]["redis.maxmemory"]["value"] == 67108864, c
' <<<"$out"

run -c "$green" health --format nagios
check "nagios: exit 0" test "$rc" = 0
check "nagios: one line, parsed" nagios_parse OK backend.latency postgres.connections redis.used_memory \
	<<<"$out"
check "nagios: exactly one line without -v" test "$(printf '%s\n' "$out" | wc -l)" = 1
run -c "$green" health --format nagios -v
check "nagios -v: long output lines follow" test "$(printf '%s\n' "$out" | grep -c '^\[OK\] ')" -ge 21

run -c "$green" health --format prometheus
check "prometheus: exit 0" test "$rc" = 0
check "prometheus: parsed" prom_parse 0 spilttea_health_check_status spilttea_container_cpu_usage_ratio \
	spilttea_redis_memory_used_bytes spilttea_disk_used_ratio <<<"$out"

prom=$tmp/textfile/spilttea.prom
mkdir -p "$tmp/textfile"
run -c "$green" health --format prometheus --output "$prom"
check "--output: exit 0, nothing on stdout" test "$rc" = 0 -a -z "$out"
check "--output: file is 0644" test "$(stat -c %a "$prom" 2>/dev/null)" = 644
check "--output: file parses" prom_parse 0 spilttea_health_check_status <"$prom"
check "--output: no temporary file left" test "$(ls -A "$tmp/textfile" | wc -l)" = 1

run health --check redis --format json
check "--check redis: only redis.* (exit $rc)" python3 -c '
import json, sys
names = [c["name"] for c in json.loads(sys.stdin.read())["checks"]]
assert names and all(n.startswith("redis.") for n in names), names' <<<"$out"
run health --check postgres.size --check container.spilttea-redis --format json
check "--check exact ids" python3 -c '
import json, sys
names = sorted(c["name"] for c in json.loads(sys.stdin.read())["checks"])
assert names == ["container.spilttea-redis", "postgres.size"], names' <<<"$out"
# -v / json details: a long query of another session shows in the top list
# psql_detached SQL: runs SQL as the application role inside the postgres
# container, in the background (an exec through the Engine API)
psql_detached() {
	local sql=$1 id
	id=$(api POST /containers/spilttea-postgres/exec -H 'Content-Type: application/json' -d "$(python3 -c '
import json, sys
print(json.dumps({"Cmd": ["sh", "-c", "PGPASSWORD=$(cat /run/secrets/postgres.password) psql -X -w -q -h 127.0.0.1 -U spilttea -d spilttea -c \"$0\"", sys.argv[1]],
                  "AttachStdout": False, "AttachStderr": False}))' "$sql")" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["Id"])')
	api POST "/exec/$id/start" -H 'Content-Type: application/json' -d '{"Detach": true}' >/dev/null
}
psql_detached "SELECT pg_sleep(15) /* spilttea-test-health */"
cat >"$tmp/details.py" <<'EOF'
import json, sys
d = {c["name"]: c for c in json.loads(sys.stdin.read())["checks"]}
q = d["postgres.longest_query"]
# other sessions may run longer queries on a shared sandbox: ours must be listed
mine = [x for x in q["details"]["active queries"] if "spilttea-test-health" in x["query"]]
assert mine and mine[0]["duration_s"] >= 0.5, q["details"]
assert q["metrics"]["postgres.longest_query"]["value"] >= mine[0]["duration_s"] - 0.001, q
t = d["postgres.longest_transaction"]["details"]["open transactions"]
assert any("spilttea-test-health" in x["query"] for x in t), t
EOF
# psql starts in the container within a few seconds, even on a loaded machine
for i in $(seq 20); do
	sleep 0.5
	run health --check postgres.longest_query --check postgres.longest_transaction --format json
	python3 "$tmp/details.py" <<<"$out" 2>/dev/null && break
done
check "details: the sleeping query is listed under longest query and transaction" \
	python3 "$tmp/details.py" <<<"$out"
run -c "$green" health --check postgres.longest_query -v
check "-v text shows the query under its check" grep -q "^ *- pid=.*spilttea-test-health" <<<"$out"
# end it: a session left running would hold up the postgres stop below
psql_detached "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%spilttea-test-health */' AND pid <> pg_backend_pid()"

# --watch repeats until interrupted
timeout 2.8 "$bin" health --check redis.memory --format nagios --watch 1 >"$tmp/watch.out" 2>&1
check "--watch 1 runs again every second" test "$(grep -c '^HEALTH ' "$tmp/watch.out")" -ge 2

run health --check nosuchcheck
check "--check unknown: exit 3 (UNKNOWN)" test "$rc" = 3
run health --format yaml
check "bad --format: exit 3 (UNKNOWN)" test "$rc" = 3
run -c "$tmp/does-not-exist.yaml" health --format nagios
check "missing config: exit 3, UNKNOWN status line" test "$rc" = 3 -a "${out:0:15}" = "HEALTH UNKNOWN "

# ---- thresholds below the current value turn each check red ---------------
th() { # threshold-key check-id [check-id...]
	local key=$1  # leaves $cfg set for the caller
	shift
	cfg=$(config_with "$key=  $key: { warn: 0.000001, crit: 0.000002 }")
	run -c "$cfg" health --format json
	local id ok=1
	for id in "$@"; do
		[[ $(json_status "$id" <<<"$out") == CRITICAL ]] || { ok=0; echo "# $id: $(json_summary "$id" <<<"$out")"; }
	done
	check "threshold $key below the value: $* CRITICAL, exit 2 (got $rc)" test "$ok$rc" = 12
}
th db_connections_percent postgres.connections
run -q -c "$cfg" health --check postgres.connections
check "-q: one line on failure" test "$rc" = 2 -a "$(printf '%s\n' "$out" | wc -l)" = 1 -a \
	"${out:0:39}" = "HEALTH CRITICAL - postgres.connections:"
run -q health --check redis.memory
check "-q: nothing when OK" test "$rc" = 0 -a -z "$out"
th redis_memory_percent redis.memory
th disk_percent disk.docker_root disk.backup_dir
th container_memory_percent container_memory.spilttea-postgres container_memory.spilttea-redis
th api_response_seconds backend.health frontend.reachable

# CPU and the log error rate on a container of our own that is busy and
# logs errors (so the sandbox backend's log stays clean for later runs).
printf 'FROM scratch\nCOPY busybox /bin/busybox\n' >"$tmp/Dockerfile"
cp "$(command -v busybox)" "$tmp/busybox"
tar -C "$tmp" -cf "$tmp/ctx.tar" Dockerfile busybox
api POST "/build?t=$logger_image&networkmode=host&rm=1" -H 'Content-Type: application/x-tar' \
	--data-binary @"$tmp/ctx.tar" >"$tmp/build.log"
api DELETE "/containers/$logger?force=1" >/dev/null
api POST "/containers/create?name=$logger" -H 'Content-Type: application/json' -d '{
  "Image": "'"$logger_image"'", "Entrypoint": ["/bin/busybox"],
  "Cmd": ["sh", "-c", "while :; do echo request ok; echo request failed with Error 500 >&2; i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; done"],
  "HostConfig": {"NetworkMode": "host", "Init": true}}' >/dev/null
api POST "/containers/$logger/start" >/dev/null
sleep 1
cfg=$(config_with "backend=  backend:  { container: $logger, health_url: \"$ST_BACKEND_URL/health\" }" \
	"container_cpu_percent=  container_cpu_percent: { warn: 0.000001, crit: 0.000002 }" \
	"error_rate_percent=  error_rate_percent: { warn: 1, crit: 2 }")
run -c "$cfg" health --check "container_cpu.$logger" --check backend.error_rate --check "container.$logger" --format json
check "busy container over its CPU threshold: CRITICAL" test "$(json_status "container_cpu.$logger" <<<"$out")" = CRITICAL
check "log with 50% error lines: backend.error_rate CRITICAL" test "$(json_status backend.error_rate <<<"$out")" = CRITICAL
check "our container itself: OK" test "$(json_status "container.$logger" <<<"$out")" = OK
api DELETE "/containers/$logger?force=1" >/dev/null

# ---- an unreachable or stuck service is CRITICAL quickly --------------------
timeout=$(python3 -c '
import re, sys
m = re.search(r"^health:.*?timeout:\s*([0-9.]+)", open(sys.argv[1]).read(), re.M | re.S)
print(m.group(1) if m else 5)' "$SPILTTEA_OPS_CONFIG")

# The bounds below are the timeout and 1 s on top of what the same run
# takes while every service answers, measured just before: a stopped or
# stuck service may cost one timeout, not one per check, and on a loaded
# machine under ASan the run alone takes seconds.
run health --format nagios
base=$took
stop spilttea-redis
run health --format nagios
check "redis stopped: exit 2 within timeout+1s (${took}s <= ${timeout}+1+${base})" \
	awk -v t="$took" -v l="$timeout" -v b="$base" -v rc="$rc" 'BEGIN { exit !(rc == 2 && t <= l + 1 + b) }'
check "redis stopped: the status line names redis" grep -q "^HEALTH CRITICAL - .*redis\.memory: " <<<"$out"
run health --format json
for id in redis.reachable redis.memory redis.clients redis.evictions container.spilttea-redis; do
	check "redis stopped: $id CRITICAL" test "$(json_status "$id" <<<"$out")" = CRITICAL
done
check "redis stopped: postgres.connections still OK" test "$(json_status postgres.connections <<<"$out")" = OK
api POST /containers/spilttea-redis/start >/dev/null
wait_healthy spilttea-redis

# postgres: the backend is stopped first so its /health probes never fail
# on the database (that would put error lines in its log for the window)
run health --format json
base=$took
stop spilttea-backend
stop spilttea-postgres
run health --format json
check "postgres stopped: exit 2 within timeout+1s (${took}s <= ${timeout}+1+${base})" \
	awk -v t="$took" -v l="$timeout" -v b="$base" -v rc="$rc" 'BEGIN { exit !(rc == 2 && t <= l + 1 + b) }'
for id in postgres.reachable postgres.connections postgres.longest_query postgres.size container.spilttea-postgres; do
	check "postgres stopped: $id CRITICAL" test "$(json_status "$id" <<<"$out")" = CRITICAL
done
check "backend stopped: backend.health CRITICAL" test "$(json_status backend.health <<<"$out")" = CRITICAL
check "backend stopped: container.spilttea-backend CRITICAL" \
	test "$(json_status container.spilttea-backend <<<"$out")" = CRITICAL
check "redis back: redis.memory OK" test "$(json_status redis.memory <<<"$out")" = OK
api POST /containers/spilttea-postgres/start >/dev/null
wait_healthy spilttea-postgres
api POST /containers/spilttea-backend/start >/dev/null
wait_healthy spilttea-backend

# A port that accepts connections and never answers: cut at health.timeout.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)' "$port" &
listener_pid=$!
# Until it listens (bounded: 30 s), not a fixed nap: a run against a port
# nobody listens on yet is refused at once and tests the wrong thing.
for ((i = 0; i < 300; i++)); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done
cfg=$(config_with "health=health: { timeout: 1 }")
cfg2=$(python3 - "$cfg" "$port" <<'EOF'
import re, sys
path, port = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r"^redis:.*$", "redis: { host: 127.0.0.1, port: %s, password_file: %s }" % (port,
       re.search(r"password_file:\s*(\"[^\"]*\"|\S+)", re.search(r"^redis:.*$", text, re.M).group(0)).group(1)), text, count=1, flags=re.M)
text = re.sub(r'health_url: "http://127.0.0.1:\d+/health"', 'health_url: "http://127.0.0.1:%s/health"' % port, text)
out = path + ".stuck.yaml"
open(out, "w").write(text)
print(out)
EOF
)
run -c "$cfg" health --format json
base=$took
run -c "$cfg2" health --format json
check "a service that never answers: exit 2 within 1s+1s (${took}s <= 2+${base})" \
	awk -v t="$took" -v b="$base" -v rc="$rc" 'BEGIN { exit !(rc == 2 && t <= 2 + b) }'
check "stuck redis: redis.memory CRITICAL" test "$(json_status redis.memory <<<"$out")" = CRITICAL
check "stuck backend: backend.health CRITICAL" test "$(json_status backend.health <<<"$out")" = CRITICAL
check "stuck services do not spoil the others: postgres.connections OK" \
	test "$(json_status postgres.connections <<<"$out")" = OK
# The stuck check's thread is given up on inside a TLS handshake: the
# process ends with the Nagios status, never a crash in OpenSSL's exit
# cleanup (review 2 item 12).
sed 's#health_url: "http://127.0.0.1:#health_url: "https://127.0.0.1:#' "$cfg2" >"$cfg2.tls.yaml"
crashed=0
for i in 1 2 3 4 5; do
	run -c "$cfg2.tls.yaml" health --check backend.health
	[[ $rc == 2 ]] || crashed=$rc
done
check "a check stuck in TLS: exit 2 every time (got ${crashed})" test "$crashed" = 0
kill "$listener_pid" 2>/dev/null
listener_pid=

restore
# the sandbox is back: all green again
for i in 1 2 3; do curl -s -o /dev/null "$ST_BACKEND_URL/health"; done
run -c "$green" health
check "after restore: exit 0" test "$rc" = 0
[[ $rc == 0 ]] || echo "$out" | sed 's/^/# /'

echo "# $tests tests, $failures failed"
exit $((failures > 0))
