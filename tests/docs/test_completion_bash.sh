#!/usr/bin/env bash
# bash completion (completion/spilttea-ops.bash): sourced into this shell,
# `complete -p` names its function, and COMPREPLY is checked for command
# lines: every command, subcommand, option and --format value the binary's
# --help lists is offered (so the script cannot drift from the binary), and
# runbook names, runbook parameters, service names and backup files come
# from the binary with the -c given on the line. No sandbox needed.
set -uo pipefail
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ST_BINARY:?ST_BINARY must name the spilttea-ops binary}
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

tmp=$(mktemp -d /tmp/st-completion.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset SPILTTEA_OPS_CONFIG DOCKER_HOST
cd "$tmp" || exit 1

# shellcheck source=/dev/null
. "$src/completion/spilttea-ops.bash" || { echo "FAIL: sourcing the script" >&2; exit 1; }
spec=$(complete -p spilttea-ops 2>&1)
[[ $spec == 'complete -F _spilttea_ops spilttea-ops' ]] || err "complete -p spilttea-ops: '$spec'"

# comp WORD... : the completions of a line whose last word is the one being
# completed ('' for a new word), one a line, sorted.
comp() {
	COMP_WORDS=("$bin" "$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="${COMP_WORDS[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_spilttea_ops
	printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort -u
}

# line "LINE": the completions of LINE; a LINE ending in a space (or empty)
# completes a new, empty word.
line() {
	local -a w=()
	read -ra w <<<"$1"
	[[ -z $1 || $1 == *' ' ]] && w+=('')
	comp "${w[@]}"
}

# expect "LINE" WANTED... : each wanted word is among the completions.
expect() {
	local l=$1 got w
	shift
	got=$(line "$l")
	for w in "$@"; do
		grep -qxF -- "$w" <<<"$got" ||
			err "'spilttea-ops $l<TAB>' does not offer '$w' (got: $(tr '\n' ' ' <<<"$got"))"
	done
}

# refuse "LINE" UNWANTED... : none of these is offered.
refuse() {
	local l=$1 got w
	shift
	got=$(line "$l")
	for w in "$@"; do
		grep -qxF -- "$w" <<<"$got" && err "'spilttea-ops $l<TAB>' offers '$w'"
	done
}

# --- from the binary's help ---------------------------------------------
mapfile -t commands < <("$bin" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{on=0}')
((${#commands[@]} >= 8)) || err "only ${#commands[@]} commands in --help"

got=$(line '')
for c in "${commands[@]}"; do
	grep -qxF "$c" <<<"$got" || err "'spilttea-ops <TAB>' does not offer command '$c'"
done
[[ $(line co) == config ]] || err "'spilttea-ops co<TAB>' is not 'config': $(line co)"

# Global options: the leading "-x, --name" of each line of that block.
global=$("$bin" --help | sed -n '/^global options/,/^$/p' |
	awk 'match($0, /^ +-[a-zA-Z-][a-z-]*(, --[a-z][a-z-]*)?/) {print substr($0, RSTART, RLENGTH)}' |
	grep -oE -- '--?[a-zA-Z][a-z-]*' | sort -u)
[[ $(wc -w <<<"$global") -ge 12 ]] || err "global options: only '$global'"
# shellcheck disable=SC2086 # a list of words
expect '-' $global
# shellcheck disable=SC2086
expect 'health -' $global

for c in "${commands[@]}"; do
	help=$("$bin" "$c" --help) || { err "$c --help failed"; continue; }
	# Subcommands: a lowercase word right after "spilttea-ops CMD" in a usage line.
	subs=$(awk -v c="$c" '/^usage:/ {u=1} u && /^$/ {u=0}
		u { for (i = 1; i < NF; i++) if ($i == "spilttea-ops" && $(i+1) == c && $(i+2) ~ /^[a-z][a-z-]*$/) print $(i+2) }' <<<"$help" | sort -u)
	[[ $c == help ]] && subs=""
	# shellcheck disable=SC2086
	[[ -n $subs ]] && expect "$c " $subs
	opts=$(awk '/^usage:/ {u=1} u && /^$/ {u=0}
		u {print; next}
		match($0, /^ +(-[a-zA-Z], )?--[a-z][a-z-]*/) {print substr($0, RSTART, RLENGTH)}' <<<"$help" |
		grep -oE -- '--[a-z][a-z-]*' | sort -u)
	# shellcheck disable=SC2086
	[[ -n $opts ]] && expect "$c --" $opts
	# --format values: "--format a|b|c" anywhere in the help.
	for f in $(grep -oE -- '--format [a-z|]+' <<<"$help" | cut -d' ' -f2 | tr '|' '\n' | sort -u); do
		expect "$c --format " "$f"
	done
done

expect 'help ' config backup restore
expect 'backup --kind ' full schema data
expect 'backup --compress ' gzip zstd none
expect 'deploy --strategy ' recreate blue-green
expect 'health --check po' postgres postgres.connections
refuse 'config check ' check show

# --- from the binary, at completion time ---------------------------------
mapfile -t runbooks < <("$bin" runbook list --format names)
((${#runbooks[@]} >= 5)) || err "runbook list --format names gave ${#runbooks[@]} names"
expect 'run ' "${runbooks[@]}"
expect 'runbook show ' "${runbooks[@]}"
expect 'run kill-idle-connections ' older_than= restart_backend= wait=
[[ $(line 'run kill-idle-connections o') == older_than= ]] || err "'run kill-idle-connections o<TAB>' is not older_than="

# A configuration of our own: services, and a backup directory with two
# backups and a file that is not one.
mkdir -p bk sub
: >bk/backup_20260101_020000.sql.gz
: >bk/backup_20260102_020000_schema.sql.zst
: >bk/notes.txt
: >sub/other.yaml
: >readme.txt
cat >cfg.yaml <<'EOF'
state_dir: ./state
services:
  postgres: { container: pg }
  web-1: { container: w }
postgres: { host: localhost, user: u, database: d }
redis: { host: localhost }
backup: { dir: ./bk }
EOF
expect '-c cfg.yaml deploy ' all postgres web-1
expect '--config=cfg.yaml rollback ' all web-1
refuse '-c cfg.yaml deploy ' backend frontend
expect '-c cfg.yaml health --check ' container.w container_cpu.pg
expect '-c cfg.yaml restore ' cleanup backup_20260101_020000.sql.gz backup_20260102_020000_schema.sql.zst
refuse '-c cfg.yaml restore ' notes.txt readme.txt
expect '-c cfg.yaml backup verify ' backup_20260101_020000.sql.gz
expect '-c cfg.yaml backup test-restore backup_2026010' backup_20260101_020000.sql.gz backup_20260102_020000_schema.sql.zst
# The -c value itself: YAML files and directories, not other files.
expect '-c ' cfg.yaml bk sub
refuse '-c ' readme.txt
expect 'run sub/' sub/other.yaml
# No configuration: nothing to offer, and no error on the terminal.
out=$(SPILTTEA_OPS_CONFIG=/nonexistent line 'deploy ' 2>&1)
[[ $out == all ]] || err "'deploy <TAB>' without a configuration: '$out'"

exit $fail
