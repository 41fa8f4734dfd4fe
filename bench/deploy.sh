#!/usr/bin/env bash
# Benchmark of blue/green deploys through the sandbox's proxy (issue 4,
# "Zero-downtime target"). Not a timed test: it prints figures, and exits 1
# when an expectation fails.
#
#   bench/deploy.sh [--rate N] [--min N]
#
# While bench/loadgen.c sends a steady load (default 100 requests/s from 4
# threads, half keep-alive, half a new connection per request) to the
# proxy's /version on loopback (an API answer; /health would also open a
# TCP connection to PostgreSQL per request, measuring postgres' fork rate
# rather than the deploy), and at least --min (default 2000) requests per
# run, it runs:
#   1. spilttea-ops deploy backend --strategy blue-green      (a new build)
#   2. spilttea-ops deploy backend --strategy blue-green      (again: ports alternate)
#   3. the same with a broken image (its /health answers 503), --no-build
# Expected: 0 failed requests in all three; 1 and 2 exit 0 and move the
# proxy to the other port; 3 exits 1 and the old container still serves.
# Cutover: from the command's start to the first answer the load generator
# got from the new upstream (X-Upstream), and the command's own figure.
# Needs the sandbox (scripts/sandbox up) and a build (scripts/build release).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rate=100
min=2000
while (($#)); do
	case $1 in
	--rate) rate=$2; shift 2 ;;
	--min) min=$2; shift 2 ;;
	*) echo "usage: bench/deploy.sh [--rate N] [--min N]" >&2; exit 2 ;;
	esac
done

env_file=${ST_SANDBOX_ENV:-$root/.sandbox/env}
if [[ -z ${ST_PROXY_URL:-} ]]; then
	[[ -f $env_file ]] || { echo "error: no sandbox ($env_file): run scripts/sandbox up" >&2; exit 2; }
	set -a
	# shellcheck disable=SC1090
	. "$env_file"
	set +a
fi
[[ -n ${ST_PROXY_URL:-} ]] || { echo "error: the sandbox has no proxy (ST_PROXY_URL): scripts/sandbox up" >&2; exit 2; }
bin=${ST_BINARY:-$root/build/spilttea-ops}
[[ -x $bin ]] || { echo "error: $bin missing: run scripts/build release" >&2; exit 2; }
image=spilttea-sandbox/backend
tmp=$(mktemp -d /tmp/spilttea-bench-deploy.XXXXXX)
good_latest=$(docker image inspect -f '{{.Id}}' "$image:latest")
finish() {
	[[ -n ${lg:-} ]] && kill "$lg" 2>/dev/null
	# :latest back on the good image; the broken one goes.
	docker tag "$good_latest" "$image:latest" >/dev/null 2>&1 || true
	docker image rm spilttea-test-bench-broken:1 >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap finish EXIT

cc -O2 -Wall -Wextra -o "$tmp/loadgen" "$root/bench/loadgen.c" -lcurl -lpthread -lm
proxy_port() { sed -n 's/^ *server [^:]*:\([0-9]*\);.*/\1/p' "$ST_SANDBOX_DIR/proxy/upstream.conf"; }

# run NAME ARGS...: one deploy under load; leaves $tmp/NAME.{json,out,rc,t0,t1}.
run() {
	local name=$1 rc=0
	shift
	rm -f "$tmp/stop"
	"$tmp/loadgen" "$ST_PROXY_URL/version" "$rate" "$min" $((min * 10)) "$tmp/stop" >"$tmp/$name.json" &
	lg=$!
	sleep 1   # the load flows before the deploy starts
	date +%s.%N >"$tmp/$name.t0"
	"$bin" --yes deploy backend --strategy blue-green "$@" >"$tmp/$name.out" 2>&1 || rc=$?
	date +%s.%N >"$tmp/$name.t1"
	echo "$rc" >"$tmp/$name.rc"
	sleep 1   # and keeps flowing after it
	touch "$tmp/stop"
	wait "$lg"
	lg=
}

# A broken image: the stand-in whose /health answers 503.
mkdir "$tmp/broken"
printf 'FROM spilttea-sandbox/standin:1\nENV STANDIN_HEALTH_STATUS=503 STANDIN_VERSION=broken\n' >"$tmp/broken/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q --network host -t spilttea-test-bench-broken:1 "$tmp/broken" >/dev/null

ok=1
port0=$(proxy_port)
echo "proxy $ST_PROXY_URL -> port $port0; load: $rate requests/s, at least $min per run"
run deploy1
port1=$(proxy_port)
run deploy2
port2=$(proxy_port)
docker tag spilttea-test-bench-broken:1 "$image:latest"
run broken --no-build
port3=$(proxy_port)
docker tag "$good_latest" "$image:latest"
serving=$(docker inspect -f '{{.State.Running}} {{range .Config.Env}}{{println .}}{{end}}' spilttea-backend |
	sed -n '1s/ .*//p; s/^PORT=//p' | tr '\n' ' ')

printf '\n%-8s %9s %7s %7s %7s %7s %5s %10s %10s %9s\n' run requests failed "rate/s" "p50 ms" "p99 ms" exit \
	"cutover" "(its own)" total
for name in deploy1 deploy2 broken; do
	python3 - "$tmp/$name.json" "$(cat "$tmp/$name.t0")" "$(cat "$tmp/$name.t1")" "$(cat "$tmp/$name.rc")" \
		"$name" "$tmp/$name.out" <<'EOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
t0, t1, rc, name = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
out = open(sys.argv[6]).read()
new = [u for u, v in d["upstreams"].items() if v["first"] > t0]
cut = "%.2f s" % (min(d["upstreams"][u]["first"] for u in new) - t0) if new else "-"
own = re.search(r"proxy switched to \S+ \(port \d+\) (\S+) after the deploy began", out)
print("%-8s %9d %7d %7.1f %7.2f %7.2f %5d %10s %10s %7.1f s" % (name, d["sent"], d["failed"], d["rate"],
      d["p50_ms"], d["p99_ms"], rc, cut, own.group(1) if own else "-", t1 - t0))
for e in d["errors"]:
    print("    failed request: " + e)
EOF
done
echo
echo "proxy port: $port0 -> $port1 -> $port2 -> $port3 (after the broken deploy); spilttea-backend: running=${serving% *}, PORT ${serving#* }"

fail() { echo "FAIL: $*"; ok=0; }
for name in deploy1 deploy2 broken; do
	failed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["failed"])' "$tmp/$name.json")
	sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$tmp/$name.json")
	((failed == 0)) || fail "$name: $failed failed requests"
	((sent >= min)) || fail "$name: only $sent requests"
done
[[ $(cat "$tmp/deploy1.rc") == 0 && $(cat "$tmp/deploy2.rc") == 0 ]] || fail "a good deploy did not exit 0"
[[ $(cat "$tmp/broken.rc") == 1 ]] || fail "the broken deploy exited $(cat "$tmp/broken.rc"), not 1"
[[ $port1 != "$port0" && $port2 == "$port0" ]] || fail "the ports did not alternate ($port0 $port1 $port2)"
[[ $port3 == "$port2" ]] || fail "the broken deploy moved the proxy ($port2 -> $port3)"
[[ $serving == "true $port3 " ]] || fail "the old container is not serving on $port3 ($serving)"
grep -q "503" "$tmp/broken.out" || fail "the broken deploy's error does not show the failing probe"
echo "broken deploy said: $(grep -m1 '^error:' "$tmp/broken.out" || true)"
((ok)) && echo "all expectations met"
((ok))
