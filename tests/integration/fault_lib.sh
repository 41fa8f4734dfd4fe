# shellcheck shell=bash
# Shared by tests/integration/test_fault_*.sh (sourced, not a test itself),
# on top of lib.sh (the binary, the sandbox contract, TAP results): bounded
# runs of the binary, waits with deadlines, the sandbox's PostgreSQL, and a
# cleanup list that runs on EXIT whatever happened.
#
# Every wait here has a deadline, every run of the binary a timeout(1), so a
# fault that hangs the tool fails the test instead of hanging ctest.

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need ST_SANDBOX_DIR ST_PG_HOST ST_PG_PORT ST_PG_USER ST_PG_DATABASE ST_PG_PASSWORD_FILE \
	ST_REDIS_PORT ST_REDIS_PASSWORD_FILE ST_BACKEND_URL DOCKER_HOST
PGPASSWORD=$(cat "$ST_PG_PASSWORD_FILE")
PGOPTIONS='-c client_min_messages=warning'
export PGPASSWORD PGOPTIONS

fault_t0=$(date +%s%N)
# TAP (lib.sh's ok), with each "not ok" on stderr.
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $*" >&2; }
# expect DESCRIPTION COMMAND...: ok when the command succeeds.
expect() {
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}

# Cleanup actions, run in reverse order on EXIT (even after a failure).
cleanups=()
on_exit() { cleanups+=("$1"); }
fault_exit() {
	local rc=$? i
	set +e
	for ((i = ${#cleanups[@]} - 1; i >= 0; i--)); do
		eval "${cleanups[$i]}"
	done
	echo "# $(basename "$0"): $checks checks, $failures failed, $((($(date +%s%N) - fault_t0) / 1000000)) ms"
	((failures)) && exit 1
	exit "$rc"
}
trap fault_exit EXIT

tmp=$(mktemp -d /tmp/spilttea-test-fault.XXXXXX)
on_exit 'rm -rf "$tmp"'

# lib.sh's st, each run of the binary bounded to 120 s; its output lines as
# TAP comments.
st_timeout=120
st_prefix='#  '

# bg_start NAME ARGS...: the binary in the background (own session, so a
# signal reaches only it); pid in $bgpid, output in $tmp/NAME.out/.err.
bgpids=()
bg_start() {
	local name=$1
	shift
	setsid "$bin" -c "$cfg" "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
	bgpid=$!
	bgpids+=("$bgpid")
}
on_exit 'for p in "${bgpids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done'

# bg_wait PID SECONDS: its exit status in $bgrc; 124 (and killed) when it
# did not end in time.
bg_wait() {
	local pid=$1 deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		bgrc=124
		return 0
	fi
	set +e
	wait "$pid"
	bgrc=$?
	set -e
}

# until_true SECONDS COMMAND...: polls every 0.05 s; 1 on timeout.
until_true() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000))
	shift
	until "$@" >/dev/null 2>&1; do
		(($(date +%s%N) < deadline)) || return 1
		sleep 0.05
	done
}

has() { # FILE TEXT NAME
	if grep -qF -- "$2" "$1"; then return 0; fi
	fail "$3: '$2' not in the output"
	sed 's/^/#  | /' "$1" >&2
	return 1
}

q() { # DB SQL: one value per line
	"$pgbin/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$ST_PG_HOST" -p "$ST_PG_PORT" -U "$ST_PG_USER" -d "$1" -c "$2"
}
pg_ready() { until_true "${1:-60}" q postgres 'SELECT 1'; }
dbs() { q postgres "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database"; }
# Row count and checksum of every table of a database, in a stable order.
sums() {
	local t
	for t in $(q "$1" "SELECT quote_ident(table_name) FROM information_schema.tables
	                    WHERE table_schema = 'public' ORDER BY 1"); do
		echo "$t $(q "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM public.$t x")"
	done
}
# Kills -9 the server process of the session(s) matching the SQL condition
# on pg_stat_activity: PostgreSQL treats it as a crash (every session ends,
# recovery runs), while the postmaster keeps listening. Prints the pids.
pg_kill_backend() {
	local pids p
	pids=$(q postgres "SELECT pid FROM pg_stat_activity WHERE $1") || return 1
	[[ -n $pids ]] || return 1
	for p in $pids; do
		docker exec spilttea-postgres kill -9 "$p" || return 1
	done
	echo "$pids"
}

# journal_has FILE REGEX: a line of the journal matches.
journal_has() { grep -qE -- "$2" "$1"; }

# The newest run's end record of RUNBOOK in journal FILE (one JSON line).
journal_end() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
runs = {}
last = None
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("type") == "start" and r.get("runbook") == sys.argv[2]:
        last = r["run"]
    if r.get("type") == "end":
        runs[r["run"]] = r
if last and last in runs:
    print(json.dumps(runs[last]))
EOF
}

# A finished-looking backup in DIR: a backup_* file that is not .partial.
published() { find "$1" -maxdepth 2 -name 'backup_*' ! -name '*.partial' ! -name '.*' -printf '%P\n' 2>/dev/null | sort; }
partials() { find "$1" -maxdepth 3 -name '*.partial' -printf '%P\n' 2>/dev/null | sort; }

# A tmpfs of SIZE at DIR, unmounted on exit.
small_disk() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$1"
	on_exit "umount '$1' 2>/dev/null"
}
