#!/usr/bin/env bash
# examples/: the systemd units and the crontab's backup line are what
# 'backup schedule --print' prints for an installed binary; every
# spilttea-ops command line in the examples, in the README's code blocks and
# in the man pages' examples names a command of the binary and only options
# it documents, and 'run NAME k=v' / 'runbook show NAME' name a runbook and
# its parameters; the YAML files parse. No sandbox needed.
set -uo pipefail
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ST_BINARY:?ST_BINARY must name the spilttea-ops binary}
ex=$src/examples
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

tmp=$(mktemp -d /tmp/st-examples.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset SPILTTEA_OPS_CONFIG DOCKER_HOST

# 1. The units and the cron line, against the binary's own schedule.
cat >"$tmp/config.yaml" <<'EOF'
state_dir: ./state
services:
  postgres: { container: pg }
postgres: { host: localhost, user: u, database: d }
redis: { host: localhost }
EOF
metrics=/var/lib/prometheus/node-exporter/spilttea-backup.prom
self=$(readlink -f "$bin")
sched=$("$bin" --config "$tmp/config.yaml" backup schedule --print --metrics-file "$metrics") ||
	err "backup schedule --print failed"
sched=${sched//"$self"/\/usr\/bin\/spilttea-ops}
sched=${sched//"$tmp/config.yaml"/\/etc\/spilttea-ops\/config.yaml}
section() { # the lines after "# /etc/systemd/system/NAME" up to the next "# " line
	awk -v h="# /etc/systemd/system/$1" '$0 == h {on=1; next} on && /^# / {exit} on' <<<"$sched" |
		sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}
uncommented() { grep -v '^#' "$1"; }
for unit in spilttea-ops-backup.service spilttea-ops-backup.timer; do
	want=$(section "$unit")
	[[ -n $want ]] || { err "schedule --print has no $unit"; continue; }
	[[ $(uncommented "$ex/systemd/$unit") == "$want" ]] ||
		err "examples/systemd/$unit differs from 'backup schedule --print':"$'\n'"$(diff <(uncommented "$ex/systemd/$unit") <(echo "$want"))"
done
cronline=$(grep -E '^[0-9*]' <<<"$sched" | head -1)
grep -qxF -- "$cronline" "$ex/crontab" || err "examples/crontab lacks the line 'backup schedule --print' gives: $cronline"

# 2. Every spilttea-ops command line: a known command, documented options.
# Outside comments, "/usr/bin/spilttea-ops" and a CI step starting with
# "spilttea-ops" must be commands; in comments, only words after
# "spilttea-ops" that name a command are taken as one.
"$bin" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{on=0}' >"$tmp/commands"
while read -r c; do
	"$bin" "$c" --help >"$tmp/help.$c"
done <"$tmp/commands"
"$bin" --help | sed -n '/^global options/,/^$/p' >"$tmp/help.global"
"$bin" runbook list --format names >"$tmp/runbooks"
while read -r r; do
	"$bin" runbook show "$r" | sed -n '/^params:$/,/^[a-z]/p' |
		sed -nE 's/^  ([a-z_][a-z0-9_]*) = .*/\1/p' >"$tmp/params.$r"
done <"$tmp/runbooks"
python3 - "$ex" "$tmp" "$src/README.md" "$src/man" <<'PY' || fail=1
import os, re, sys
ex, tmp, readme, mandir = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runbooks = open(os.path.join(tmp, "runbooks")).read().split()
commands = open(os.path.join(tmp, "commands")).read().split()
glob = set(re.findall(r"--[a-z][a-z0-9-]*", open(os.path.join(tmp, "help.global")).read()))
bad, checked = 0, 0

def lines_of(path):
    """(number, line, comment) of the lines to read: every line of an
    example; the fenced code of the README (a '#' there starts a comment)."""
    if path.startswith(mandir):
        literal = False
        for n, line in enumerate(open(path), 1):
            if line.startswith(".Bd -literal"):
                literal = True
            elif line.startswith(".Ed"):
                literal = False
            elif line.startswith(".Dl "):
                yield n, line[4:], False
            elif literal and not line.startswith("."):
                yield n, line, False
        return
    if path != readme:
        for n, line in enumerate(open(path), 1):
            yield n, line, re.match(r"\s*(#|//)", line) is not None
        return
    fenced = False
    for n, line in enumerate(open(path), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            yield n, re.sub(r"\s#\s.*$", "", line), False

def check(path, shown):
    global bad, checked
    for n, line, comment in lines_of(path):
        text = re.sub(r'["\[\],]', " ", line)
        for seg in re.split(r"&&|\|\||;|\|", text):
            if comment:
                m = re.search(r"(?:^|[\s/])spilttea-ops\s+(.*)", seg)
            else:
                m = re.search(r"(?:/bin/|^\s*(?:-\s+)?(?:run:\s+)?(?:sudo\s+)?)spilttea-ops\s+(.*)", seg)
            if not m:
                continue
            words = re.split(r"\s+", re.split(r"[<>]", m.group(1))[0].strip())
            cmd, skip = None, False
            for w in words:
                if skip:
                    skip = False
                elif w in ("-c", "--config", "--format"):
                    skip = True
                elif not w.startswith("-"):
                    cmd = w
                    break
            where = "%s:%d" % (shown(path), n)
            if cmd not in commands:
                if not comment and cmd != "\\":
                    print("FAIL: %s: '%s' is no spilttea-ops command" % (where, cmd))
                    bad += 1
                continue
            checked += 1
            rest = words[words.index(cmd) + 1:]
            rb = None
            if cmd == "run" and rest:
                rb, args = rest[0], rest[1:]
            elif cmd == "runbook" and len(rest) > 1 and rest[0] == "show":
                rb, args = rest[1], rest[2:]
            if rb and not rb.startswith("-") and not rb.isupper() and not comment:
                if rb not in runbooks:
                    print("FAIL: %s: no runbook '%s'" % (where, rb))
                    bad += 1
                else:
                    params = open(os.path.join(tmp, "params." + rb)).read().split()
                    for a in args:
                        k = a.split("=")[0]
                        if "=" in a and not k.isupper() and k not in params:
                            print("FAIL: %s: runbook '%s' has no parameter '%s'" % (where, rb, k))
                            bad += 1
            help = open(os.path.join(tmp, "help." + cmd)).read()
            for w in words:
                o = w.split("=")[0]
                if o.startswith("--") and o not in glob and not re.search(re.escape(o) + r"\b", help):
                    print("FAIL: %s: '%s --help' does not know %s" % (where, cmd, o))
                    bad += 1

for root, _, files in os.walk(ex):
    for name in files:
        check(os.path.join(root, name), lambda p: "examples/" + os.path.relpath(p, ex))
n_examples = checked
check(readme, lambda p: "README.md")
n_readme = checked - n_examples
for name in sorted(os.listdir(mandir)):
    check(os.path.join(mandir, name), lambda p: "man/" + os.path.basename(p))
n_man = checked - n_examples - n_readme
if n_examples < 10 or n_readme < 40 or n_man < 60:
    print("FAIL: only %d command lines in examples/, %d in README.md, %d in man/" % (n_examples, n_readme, n_man))
    bad += 1
sys.exit(1 if bad else 0)
PY

# 3. YAML parses.
for f in "$ex"/ci/*.yml; do
	[[ -e $f ]] || continue
	python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$f" || err "${f#"$src"/} is not valid YAML"
done

exit $fail
