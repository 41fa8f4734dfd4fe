#!/usr/bin/env bash
# Timeouts (issue 7): no command hangs on a peer that never answers. A
# black hole accepts connections and never sends a byte, on a Unix socket
# (given as DOCKER_HOST) and on a TCP port (given as postgres, redis and
# every health URL). With short configured deadlines each command must
# give up within its budget, with an error that names the service and the
# usual exit status (1 failed, 2 for health: Nagios CRITICAL). A second
# round keeps the real Docker daemon and only black-holes postgres and
# redis. A third round puts a Docker daemon that stalls at DOCKER_HOST: it
# answers the plain calls, but its streams (logs, exec output, build
# progress) send their headers and a first piece of body, then nothing:
# each command must fail within its idle timeout, naming what stalled.
# Every command runs under timeout(1): a hang is a failure with its own
# message, never a stuck ctest.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need ST_SANDBOX_DIR SPILTTEA_OPS_CONFIG
sb=$ST_SANDBOX_DIR
real_docker_host=${DOCKER_HOST:-}

tmp=$(mktemp -d /tmp/spilttea-test-timeouts.XXXXXX)
cfg=$tmp/config.yaml
state=$tmp/state
hole_pid=
stall_pid=

cleanup() {
  set +e
  [[ -n $hole_pid ]] && kill "$hole_pid" 2>/dev/null && wait "$hole_pid" 2>/dev/null
  [[ -n $stall_pid ]] && kill "$stall_pid" 2>/dev/null && wait "$stall_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# The black hole: accepts on both sockets, keeps every connection open and
# never reads or writes.
python3 - "$tmp/docker.sock" "$tmp/port" <<'EOF' &
import os, select, socket, sys
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind(sys.argv[1])
u.listen(128)
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", 0))
t.listen(128)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(t.getsockname()[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
held = []
while True:
    r, _, _ = select.select([u, t], [], [])
    for s in r:
        c, _ = s.accept()
        held.append(c)
EOF
hole_pid=$!
for ((i = 0; i < 100; i++)); do
  [[ -s $tmp/port ]] && break
  sleep 0.1
done
[[ -s $tmp/port ]] || { echo "FAIL: the black hole did not start" >&2; exit 1; }
port=$(cat "$tmp/port")
hole=127.0.0.1:$port

# Deadlines of this test: docker 2s per call, postgres 2s to connect and
# 3s per statement, redis 1s, health 2s per check.
sed -e "s|^state_dir:.*|state_dir: \"$state\"|" \
    -e "s|^  host: \"unix://.*|  host: \"unix://$tmp/docker.sock\"\n  timeout: 2s|" \
    -e "s|^backup: .*|backup: { dir: \"$tmp/backups\", keep_days: 7, keep_min: 3, via: exec, compress: gzip }|" \
    -e "s|^health: .*|health: { timeout: 2s, log_window: 5m }|" \
    "$SPILTTEA_OPS_CONFIG" >"$cfg.real"
grep -q "^  timeout: 2s" "$cfg.real" || fail "config: docker.timeout not set"
# Postgres, Redis and every URL at the black hole.
sed -e "s|^postgres: { host: 127.0.0.1, port: [0-9]*,|postgres: { host: 127.0.0.1, port: $port, connect_timeout: 2s, statement_timeout: 3s,|" \
    -e "s|^redis: *{ host: 127.0.0.1, port: [0-9]*,|redis: { host: 127.0.0.1, port: $port, timeout: 1s,|" \
    -e "s|http://127.0.0.1:[0-9]*|http://$hole|g" \
    "$cfg.real" >"$cfg"
chmod 600 "$cfg" "$cfg.real"
grep -q "port: $port, connect_timeout" "$cfg" || fail "config: postgres not at the black hole"
grep -q "port: $port, timeout: 1s" "$cfg" || fail "config: redis not at the black hole"
grep -q "health_url: \"http://$hole/health\"" "$cfg" || fail "config: health_url not at the black hole"
unset SPILTTEA_OPS_CONFIG

# gives_up BUDGET EXITS PATTERN NAME ARGS...: the command ends within BUDGET
# seconds with one of EXITS ("1" or "1,2") and PATTERN (extended regex,
# case-insensitive) on stderr or stdout.
results=()
gives_up() {
  local budget=$1 want=$2 pattern=$3 name=$4 got t0 t1 el before=$failures
  shift 4
  t0=$(date +%s.%N)
  set +e
  timeout -k 5 $((budget + 30)) "$bin" -c "$cfg" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  got=$?
  set -e
  t1=$(date +%s.%N)
  el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  results+=("$(printf '%-34s %5ss (budget %ss) exit %s' "$name" "$el" "$budget" "$got")")
  if [[ $got == 124 || $got == 137 ]]; then
    fail "$name ($*): still running after $((budget + 30))s: hangs"
  else
    awk -v e="$el" -v b="$budget" 'BEGIN { exit !(e > b) }' && fail "$name ($*): took ${el}s, budget ${budget}s"
    [[ ,$want, == *,$got,* ]] || fail "$name ($*): exit $got, expected $want"
    grep -qiE -- "$pattern" "$tmp/err" "$tmp/out" || fail "$name ($*): no '$pattern' in the output"
  fi
  if ((failures > before)); then
    sed 's/^/  out: /' "$tmp/out" | head -20 >&2
    sed 's/^/  err: /' "$tmp/err" | head -20 >&2
  fi
  return 0
}

to='time(d)? ?out|timeout|deadline|not answer|no answer|unreachable|did not finish within'

# ---- round 1: Docker, Postgres, Redis and HTTP all black holes ----------
export DOCKER_HOST=unix://$tmp/docker.sock
gives_up 8 2 "$to" "health" health
gives_up 8 2 "$to" "health json" health --format json
gives_up 8 1 "$to" "backup" backup
gives_up 8 1 "$to" "deploy -n" -n deploy backend --no-build
gives_up 12 1 "$to" "deploy" -y deploy backend --no-build
gives_up 12 1,3 "$to" "rollback" -y rollback backend
gives_up 12 1 "$to" "incident snapshot" -y incident snapshot
gives_up 12 1 "$to" "incident investigate" incident investigate
gives_up 8 1 "$to" "incident top-ips" incident top-ips
gives_up 8 1 "$to" "incident flush-sessions" -y incident flush-sessions --pattern 'spilttea-test-timeouts:*'
gives_up 8 1 "$to" "db size" db size
gives_up 8 1 "$to" "db connections" db connections
gives_up 8 1 "$to" "db kill-idle" -y db kill-idle
gives_up 8 1 "$to" "cache info" cache info
gives_up 8 1 "$to" "cache clear" -y cache clear 'spilttea-test-timeouts:*'
gives_up 8 1 "$to" "logs" logs --tail 10
gives_up 8 1 "$to" "logs backend" logs backend --since 1m
gives_up 12 1 "$to" "migrate status" migrate status
gives_up 12 1,3 "$to" "run restart-backend" -y run restart-backend
gives_up 12 1 "$to" "restore cleanup" -y restore cleanup
# diagnose fails fast: the first check of a service waits out its
# timeout (docker 2s, postgres 2s, redis 1s; plus two 5s HTTP probes),
# every later one is "not checked: <service> unreachable" at once. Waiting
# per check took 26s here; the bound is the sum of one timeout per service
# and probe (~15s) with room for a loaded machine.
gives_up 24 1 "$to" "diagnose" diagnose
for svc in docker postgres redis; do
  grep -q "not checked: .*$svc unreachable: " "$tmp/out" ||
    fail "diagnose: no check reported as '$svc unreachable'"
done
gives_up 24 1 "$to" "diagnose json" diagnose --format json
python3 - "$tmp/out" <<'EOF' || fail "diagnose json: unreachable checks are not skipped with their reason"
import json, sys
d = json.load(open(sys.argv[1]))
reasons = [s["reason"] for i in d["issues"] for s in i["skipped"]]
assert any(r.startswith("postgres unreachable: cannot connect to postgres") for r in reasons), reasons
# An issue whose checks were all skipped so is not "ok".
assert all(i["status"] != "ok" for i in d["issues"]), [(i["id"], i["status"]) for i in d["issues"]]
EOF
# The overall deadline: checks not started within --timeout are not
# checked; the one running ends within its own timeout (at most the 5s of
# an HTTP probe here).
gives_up 14 1 "$to" "diagnose --timeout 3s" diagnose --timeout 3s
grep -q "not checked: not started: the run's deadline (3s) passed" "$tmp/out" ||
  fail "diagnose --timeout 3s: no check reported as not started"
# Probing the web endpoints ahead takes at most half of --timeout: the
# first check (the backend container, through Docker) still runs.
grep -q "backend-container .*cannot check: .*docker did not finish" "$tmp/out" ||
  fail "diagnose --timeout 3s: probing ahead used up the deadline, no check ran"

# ---- round 2: the real Docker daemon; Postgres, Redis, URLs black holes --
sed -i "s|^  host: \"unix://.*|  host: \"$real_docker_host\"|" "$cfg"
if [[ -n $real_docker_host ]]; then export DOCKER_HOST=$real_docker_host; else unset DOCKER_HOST; fi
gives_up 8 2 "$to" "health (docker up)" health
gives_up 8 1 "$to" "db size (docker up)" db size
gives_up 8 1 "$to" "cache info (docker up)" cache info
gives_up 12 1 "$to" "migrate status (docker up)" migrate status
gives_up 12 1 "$to" "incident investigate (docker up)" incident investigate

# ---- round 3: a Docker daemon whose streams stall; Postgres, Redis real --
python3 - "$tmp/stall.sock" <<'EOF' &
import json, socket, sys, threading
FRAME = b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n"
def answer(c, status, body, ctype=b"application/json"):
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    c.sendall(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (status, ctype, len(b)) + b)
def stall(c, ctype, first):
    # Headers and the start of a body, then silence until the client leaves.
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\n\r\n" + first)
    c.settimeout(300)
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass
def serve(c):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, rest = buf.partition(b"\r\n\r\n")
            method, target = head.split(b"\r\n")[0].decode().split(" ")[:2]
            p = target.split("?")[0]
            clen = 0
            for h in head.decode().lower().split("\r\n"):
                if h.startswith("content-length:"):
                    clen = int(h.split(":")[1])
            while len(rest) < clen:
                rest += c.recv(65536)
            buf = rest[clen:]
            if p.endswith("/_ping"):
                answer(c, 200, b"OK", b"text/plain")
            elif p.endswith("/version"):
                answer(c, 200, {"ApiVersion": "1.41", "MinAPIVersion": "1.12", "Version": "20.10.24"})
            elif p.startswith("/v1.41/containers/") and p.endswith("/json") and method == "GET":
                answer(c, 200, {"Id": "0" * 64, "Name": "/" + p[18:-5], "RestartCount": 0,
                                "Image": "sha256:" + "1" * 64, "Mounts": [],
                                "Config": {"Tty": False, "Image": "x", "Labels": {}, "Env": []},
                                "HostConfig": {"NetworkMode": "host"},
                                "State": {"Status": "running", "Running": True, "Restarting": False,
                                          "ExitCode": 0, "Health": {"Status": "healthy"},
                                          "StartedAt": "2026-11-28T05:00:00Z"}})
            elif p.endswith("/exec") and method == "POST":
                answer(c, 201, {"Id": "e1"})
            elif p.endswith("/logs") or p.endswith("/exec/e1/start"):
                return stall(c, b"application/vnd.docker.raw-stream", FRAME)
            elif p.endswith("/build"):
                return stall(c, b"application/json", b'{"stream":"Step 1/2 : FROM scratch\\n"}\r\n')
            else:
                answer(c, 404, {"message": "no such thing in this fake"})
    finally:
        c.close()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(64)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
EOF
stall_pid=$!
for ((i = 0; i < 100; i++)); do
  [[ -S $tmp/stall.sock ]] && break
  sleep 0.1
done
[[ -S $tmp/stall.sock ]] || fail "the stalling daemon did not start"
# Log reads stall after docker.timeout (2s); exec and build streams after
# docker.stream_idle_timeout (3s here; 10m by default).
sed -e "s|^  host: \"unix://.*|  host: \"unix://$tmp/stall.sock\"\n  stream_idle_timeout: 3s|" \
    "$cfg.real" >"$cfg"
grep -q "^  stream_idle_timeout: 3s" "$cfg" || fail "config: docker.stream_idle_timeout not set"
export DOCKER_HOST=unix://$tmp/stall.sock
stalled='stalled: no data from docker for [0-9.]+s'
gives_up 10 1 "$stalled" "logs (stalled stream)" logs backend --tail 10
grep -q "raise docker.timeout" "$tmp/err" || fail "logs (stalled stream): the hint does not name docker.timeout"
gives_up 12 1 "cannot run 'pg_dump'.*$stalled" "backup (stalled exec)" backup
grep -q "raise docker.stream_idle_timeout" "$tmp/err" ||
  fail "backup (stalled exec): the hint does not name docker.stream_idle_timeout"
gives_up 12 1 "cannot build image.*$stalled" "deploy (stalled build)" -y deploy backend
if [[ -n $real_docker_host ]]; then export DOCKER_HOST=$real_docker_host; else unset DOCKER_HOST; fi

printf '%s\n' "${results[@]}"
if ((failures)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "timeouts: ok"
