#!/usr/bin/env bash
# spilttea-ops-runbook(5) documents exactly the registered actions: every
# action of 'runbook actions --format json' has an ".It Ic NAME" entry in
# ACTION REFERENCE that says read-only or destructive as the registry does
# and lists each of its arguments as ".It Cm ARG"; every entry there is a
# registered action. The step keys the loader accepts are documented, and
# the page's example runbook passes 'runbook check'. No sandbox needed.
set -uo pipefail
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ST_BINARY:?ST_BINARY must name the spilttea-ops binary}
page=$src/man/spilttea-ops-runbook.5
tmp=$(mktemp -d /tmp/st-runbook-page.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$bin" runbook actions --format json >"$tmp/actions.json" || { echo "FAIL: runbook actions" >&2; exit 1; }
python3 - "$tmp/actions.json" "$page" <<'PY'
import json, re, sys
actions = json.load(open(sys.argv[1]))
src = open(sys.argv[2]).read()
bad = 0
def fail(msg):
    global bad
    print("FAIL: spilttea-ops-runbook(5): " + msg)
    bad += 1

if len(actions) < 20:
    fail("only %d actions registered?" % len(actions))
m = re.search(r"^\.Sh ACTION REFERENCE$(.*?)^\.Sh ", src, re.S | re.M)
if not m:
    fail("no ACTION REFERENCE section")
    sys.exit(1)
ref = m.group(1)
# The entries: ".It Ic NAME" and the text up to the next one.
parts = re.split(r"^\.It Ic (\S+)\s*$", ref, flags=re.M)
entries = {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}
names = [a["name"] for a in actions]
for a in actions:
    body = entries.get(a["name"])
    if body is None:
        fail("action '%s' has no '.It Ic %s' entry" % (a["name"], a["name"]))
        continue
    if a["destructive"] != ("destructive" in body.split("\n", 2)[0] + body.split("\n", 2)[1]):
        fail("'%s' is %sdestructive, its entry does not say so" % (a["name"], "" if a["destructive"] else "not "))
    if a["read_only"] != body.lstrip().startswith(".Pq read-only"):
        fail("'%s' is %sread-only, its entry does not say so" % (a["name"], "" if a["read_only"] else "not "))
    for arg in a["args"]:
        if not re.search(r"^\.It Cm %s( |$)" % re.escape(arg["name"]), body, re.M):
            fail("argument '%s' of '%s' is not documented" % (arg["name"], a["name"]))
    documented = re.findall(r"^\.It Cm (\S+)", body, re.M)
    for d in documented:
        if d not in [x["name"] for x in a["args"]]:
            fail("'%s' documents an argument '%s' it does not have" % (a["name"], d))
    if "Result:" not in body:
        fail("'%s' does not say what its result holds" % a["name"])
for e in entries:
    if e not in names:
        fail("documents action '%s', which is not registered" % e)
sys.exit(1 if bad else 0)
PY
rc=$?

# Every key the loader's tables know (lib/runbook.c: *_keys[]) is documented.
keys=$(awk '/^static const char \*const [a-z_]*_keys\[\] = \{/ {on=1} on {print} on && /};/ {on=0}' \
	"$src/lib/runbook.c" | grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
(($(wc -w <<<"$keys") >= 20)) || { echo "FAIL: found only these runbook keys in lib/runbook.c: $keys" >&2; rc=1; }
for k in $keys; do
	grep -qE "(^\.It Ic|^\.Ic|[ ]Ic) $k( |$)" "$page" ||
		{ echo "FAIL: spilttea-ops-runbook(5): runbook key '$k' (lib/runbook.c) is not documented" >&2; rc=1; }
done

# The example passes runbook check.
awk '/^\.Sh EXAMPLES/ {e=1} e && /^\.Bd -literal/ {on=1; next} on && /^\.Ed/ {exit} on' "$page" >"$tmp/kill-idle-connections.yaml"
grep -q '^name: ' "$tmp/kill-idle-connections.yaml" || { echo "FAIL: no example runbook in EXAMPLES" >&2; rc=1; }
"$bin" runbook check "$tmp/kill-idle-connections.yaml" >/dev/null || { echo "FAIL: the example runbook does not pass runbook check" >&2; rc=1; }
exit $rc
