#!/usr/bin/env bash
# zsh completion (completion/_spilttea-ops): it parses (zsh -n), compinit
# registers it for spilttea-ops, and real completions in an interactive zsh
# (tests/docs/zsh_complete.zsh, through zsh/zpty) offer every command,
# subcommand, option and --format value the binary's --help lists, plus
# runbook names and parameters, services and backup files from the binary.
# No sandbox needed; needs zsh (scripts/install-deps installs it).
set -uo pipefail
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ST_BINARY:?ST_BINARY must name the spilttea-ops binary}
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

command -v zsh >/dev/null || { echo "FAIL: zsh is not installed (scripts/install-deps)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/st-zcompletion.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset SPILTTEA_OPS_CONFIG DOCKER_HOST
# shellcheck source=SCRIPTDIR/help_parse.sh
. "$src/tests/docs/help_parse.sh"
mkdir -p "$tmp/bin" "$tmp/work/bk"
ln -s "$bin" "$tmp/bin/spilttea-ops"
cd "$tmp/work" || exit 1

zsh -n "$src/completion/_spilttea-ops" || err "zsh -n completion/_spilttea-ops"
reg=$(zsh -f -c 'fpath=("$1" $fpath); autoload -U compinit; compinit -u -D; print -r -- $_comps[spilttea-ops]' \
	zsh "$src/completion")
[[ $reg == _spilttea-ops ]] || err "compinit registers '$reg' for spilttea-ops, not _spilttea-ops"

: >bk/backup_20260101_020000.sql.gz
: >bk/notes.txt
cat >cfg.yaml <<'EOF'
state_dir: ./state
services:
  postgres: { container: pg }
  web-1: { container: w }
postgres: { host: localhost, user: u, database: d }
redis: { host: localhost }
backup: { dir: ./bk }
EOF

# The lines to complete, and what each must offer.
lines=() wants=()
want() { lines+=("spilttea-ops $1"); wants+=("$2"); }

mapfile -t commands < <(help_commands "$bin")
((${#commands[@]} >= 8)) || err "only ${#commands[@]} commands in --help"
want '' "${commands[*]}"
want '-n ' "${commands[*]}"
for c in "${commands[@]}"; do
	[[ $c == help ]] && continue
	subs=$(help_subcommands "$bin" "$c")
	opts=$(help_options "$bin" "$c")
	if [[ -n $subs ]]; then
		want "$c " "${subs//$'\n'/ }"
		# each option after some subcommand: the first subcommand line that
		# offers it is enough (the zsh run is slow, so all lines go at once)
		want "$c --" ""
		for s in $subs; do
			want "$c $s --" ""
		done
	else
		want "$c --" "${opts//$'\n'/ } --config --dry-run --yes --quiet --verbose --format --help"
	fi
	formats=$(help_formats "$bin" "$c")
	[[ -n $formats ]] && want "$c --format " "${formats//$'\n'/ }"
done
want 'run ' 'selftest kill-idle-connections restore'
want 'run kill-idle-connections ' 'older_than restart_backend wait'
want '-c cfg.yaml deploy ' 'all postgres web-1'
want 'rollback --config=cfg.yaml ' 'all postgres web-1'
want '-c cfg.yaml health --check container.' 'container.pg container.w'
want '-c cfg.yaml restore ' 'cleanup backup_20260101_020000.sql.gz'
want 'backup verify -c cfg.yaml ' 'backup_20260101_020000.sql.gz'
want 'backup --kind ' 'full schema data'
want '-c cfg.yaml rollback db --to-backup ' 'backup_20260101_020000.sql.gz'
want 'rollback ' 'db all'
want 'migrate up --' '--no-backup --reason'
want 'diagnose ' 'db-pool redis-oom backend-crash'
want '-c cfg.yaml logs ' 'postgres web-1'

# Two zsh at a time: each line costs an interactive zsh with compinit.
half=$(((${#lines[@]} + 1) / 2))
zsh -f "$src/tests/docs/zsh_complete.zsh" "$src/completion" "$tmp/bin" "${lines[@]:0:half}" >"$tmp/out1" &
zsh -f "$src/tests/docs/zsh_complete.zsh" "$src/completion" "$tmp/bin" "${lines[@]:half}" >"$tmp/out2"
wait
out=$(cat "$tmp/out1" "$tmp/out2")
for i in "${!lines[@]}"; do
	got=$(awk -v l="== ${lines[i]}" '$0 == l {on=1; next} /^== / {on=0} on' <<<"$out")
	grep -q '^!! timed out' <<<"$got" && { err "'${lines[i]}<TAB>' timed out"; continue; }
	for w in ${wants[i]}; do
		grep -qxF -- "$w" <<<"$got" ||
			err "'${lines[i]}<TAB>' does not offer '$w' (got: $(tr '\n' ' ' <<<"$got"))"
	done
done
# Options of commands with subcommands: offered after at least one of them.
for c in "${commands[@]}"; do
	subs=$(help_subcommands "$bin" "$c")
	[[ -z $subs || $c == help ]] && continue
	all=$(awk -v l="== spilttea-ops $c --" '$0 == l {on=1; next} /^== / {on=0} on' <<<"$out")$'\n'
	for s in $subs; do
		all+=$(awk -v l="== spilttea-ops $c $s --" '$0 == l {on=1; next} /^== / {on=0} on' <<<"$out")$'\n'
	done
	for o in $(help_options "$bin" "$c"); do
		grep -qxF -- "$o" <<<"$all" || err "'spilttea-ops $c SUBCOMMAND --<TAB>' never offers '$o'"
	done
done
# A file that is no backup is not offered as one.
got=$(awk '$0 == "== spilttea-ops -c cfg.yaml restore " {on=1; next} /^== / {on=0} on' <<<"$out")
grep -qx notes.txt <<<"$got" && err "'restore <TAB>' offers notes.txt"

exit $fail
