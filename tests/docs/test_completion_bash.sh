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
# shellcheck source=SCRIPTDIR/help_parse.sh
. "$src/tests/docs/help_parse.sh"
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

# --- from the binary's help (tests/docs/help_parse.sh) --------------------
mapfile -t commands < <(help_commands "$bin")
((${#commands[@]} >= 8)) || err "only ${#commands[@]} commands in --help"

got=$(line '')
for c in "${commands[@]}"; do
	grep -qxF "$c" <<<"$got" || err "'spilttea-ops <TAB>' does not offer command '$c'"
done
[[ $(line co) == config ]] || err "'spilttea-ops co<TAB>' is not 'config': $(line co)"

global=$(help_global_options "$bin")
[[ $(wc -w <<<"$global") -ge 12 ]] || err "global options: only '$global'"
# shellcheck disable=SC2086 # a list of words
expect '-' $global
# shellcheck disable=SC2086
expect 'health -' $global

for c in "${commands[@]}"; do
	subs=$(help_subcommands "$bin" "$c")
	opts=$(help_options "$bin" "$c")
	# shellcheck disable=SC2086
	[[ -n $subs ]] && expect "$c " $subs
	if [[ -n $subs ]]; then
		# options may be offered only after the subcommand: any one of them will do
		for o in $opts; do
			ok=0
			for s in '' $subs; do
				grep -qxF -- "$o" <<<"$(line "$c $s --")" && { ok=1; break; }
			done
			((ok)) || err "'spilttea-ops $c [SUBCOMMAND] --<TAB>' never offers '$o'"
		done
	else
		# shellcheck disable=SC2086
		[[ -n $opts ]] && expect "$c --" $opts
	fi
	for f in $(help_formats "$bin" "$c"); do
		expect "$c --format " "$f"
	done
done

expect 'help ' config backup restore
# values of options are not taken for arguments
expect 'run --incident INC-1 ' selftest
expect 'incident --incident INC-1 ' start report
expect 'incident rotate-secret --' --generate --from-env
refuse 'incident start --' --apply
expect 'rollback db --' --to-backup
expect 'diagnose ' db-pool redis-oom backend-crash since=
expect 'db vacuum --' --full --table
refuse 'db size --' --full
expect 'cache ' info clear
refuse 'rollback db ' all
expect 'deploy --checklist --attest ' tests code-review security-review
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
mkdir -p state/incidents/INC-20260101-020000
echo INC-20260101-020000 >state/incidents/current
expect '-c cfg.yaml incident report --incident ' INC-20260101-020000
refuse '-c cfg.yaml incident report --incident ' current
expect '-c cfg.yaml deploy ' all postgres web-1
expect '--config=cfg.yaml rollback ' all web-1
expect '-c cfg.yaml logs ' postgres web-1
refuse '-c cfg.yaml deploy ' backend frontend
expect '-c cfg.yaml health --check ' container.w container_cpu.pg
expect '-c cfg.yaml restore ' cleanup backup_20260101_020000.sql.gz backup_20260102_020000_schema.sql.zst
refuse '-c cfg.yaml restore ' notes.txt readme.txt
expect '-c cfg.yaml backup verify ' backup_20260101_020000.sql.gz
expect '-c cfg.yaml rollback db --to-backup ' backup_20260101_020000.sql.gz
expect '-c cfg.yaml backup test-restore backup_2026010' backup_20260101_020000.sql.gz backup_20260102_020000_schema.sql.zst
# The -c value itself: YAML files and directories, not other files.
expect '-c ' cfg.yaml bk sub
refuse '-c ' readme.txt
expect 'run sub/' sub/other.yaml
# No configuration: nothing to offer, and no error on the terminal.
out=$(SPILTTEA_OPS_CONFIG=/nonexistent line 'deploy ' 2>&1)
[[ $out == all ]] || err "'deploy <TAB>' without a configuration: '$out'"

exit $fail
