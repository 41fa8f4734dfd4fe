# bash completion for spilttea-ops(1)                      -*- shell-script -*-
#
# Installed as share/bash-completion/completions/spilttea-ops (loaded on
# demand by bash-completion), or source it from ~/.bashrc. Needs nothing
# from bash-completion itself.
#
# Commands, subcommands and options are listed here (tests/docs/
# test_completion_bash.sh fails when they drift from the binary's --help);
# runbook names, backup files, service names and runbook parameters come
# from the binary at completion time, with the -c/--config given on the
# command line:
#   spilttea-ops runbook list --format names
#   spilttea-ops backup list --format names
#   spilttea-ops config show                 (the services: section)
#   spilttea-ops runbook show NAME           (its params:)

_spilttea_ops_commands='help config runbook run deploy rollback health logs db cache diagnose incident backup
	restore migrate'

_spilttea_ops_global_opts='-c --config -n --dry-run -y --yes -q --quiet -v --verbose
	--format --no-color --version -h --help'

# Subcommands of a command (words that may come first after it).
_spilttea_ops_subcommands() {
	case $1 in
	config) echo 'check show' ;;
	runbook) echo 'list show check actions' ;;
	backup) echo 'list verify prune test-restore schedule' ;;
	restore) echo 'cleanup' ;;
	migrate) echo 'status plan up resolve' ;;
	db) echo 'size connections slow-queries kill-idle vacuum analyze' ;;
	cache) echo 'info clear' ;;
	incident) echo 'start status snapshot contain investigate lock-users flush-sessions
		rotate-jwt rotate-secret top-ips block-ip report close' ;;
	help) echo "$_spilttea_ops_commands" ;;
	esac
}

# A command's own options (beyond the global ones); $2 is its subcommand.
_spilttea_ops_options() {
	case $1 in
	run) echo '--incident' ;;
	deploy) echo '--no-build --ref --strategy --list --checklist --attest --backup' ;;
	rollback)
		if [[ $2 == db ]]; then echo '--to-backup'; else echo '--to --list'; fi ;;
	migrate)
		case $2 in
		up) echo '--no-backup --reason' ;;
		resolve) echo '--rolled-back --applied' ;;
		esac ;;
	health) echo '--check --output --watch' ;;
	backup) echo '--kind --dir --compress --level --database --metrics-file --all --print --at' ;;
	restore) echo '--database --from-database --keep-old' ;;
	logs) echo '--since --tail -f --follow --summary --errors --warnings --db --auth --cors --s3
		--email --view' ;;
	diagnose) echo '--since --fix --list --timeout' ;;
	db)
		case $2 in
		size) echo '--schema' ;;
		slow-queries) echo '--min --limit' ;;
		kill-idle) echo '--older-than --restart-backend' ;;
		vacuum) echo '--full --analyze --table --schema' ;;
		analyze) echo '--table --schema' ;;
		esac ;;
	incident)
		echo '--incident'
		case $2 in
		start) echo '--title --id' ;;
		snapshot) echo '--archive' ;;
		investigate) echo '--since --threshold --recent --limit' ;;
		flush-sessions) echo '--pattern --all' ;;
		rotate-jwt) echo '--no-restart' ;;
		rotate-secret) echo '--generate --from-env --no-restart' ;;
		top-ips) echo '--since --limit --service' ;;
		block-ip) echo '--apply' ;;
		report) echo '--output' ;;
		esac ;;
	esac
}

# Values of --format per command.
_spilttea_ops_formats() {
	case $1 in
	config) echo 'yaml json' ;;
	runbook) echo 'text json names' ;;
	health) echo 'text json nagios prometheus' ;;
	backup) echo 'text json names' ;;
	deploy) echo 'text json junit' ;;
	rollback | incident | migrate | logs | db | cache | diagnose) echo 'text json' ;;
	*) echo 'text json' ;;
	esac
}

# Runs the binary for completion data: no colour, no prompts, no errors.
_spilttea_ops_query() {
	"$_spilttea_ops_bin" "${_spilttea_ops_cfg[@]}" --no-color "$@" 2>/dev/null </dev/null
}

_spilttea_ops_services() {
	_spilttea_ops_query config show | awk '
		/^services:/ {s = 1; next}
		s && /^[^ ]/ {s = 0}
		s && /^  [A-Za-z0-9_-]+:/ {sub(/:.*/, ""); sub(/^ +/, ""); print}'
}

# The services' container names (health check ids are container.NAME).
_spilttea_ops_containers() {
	_spilttea_ops_query config show | awk '
		/^services:/ {s = 1; next}
		s && /^[^ ]/ {s = 0}
		s && /^    container:/ {print $2}'
}

# Incident ids: the folders in STATE_DIR/incidents.
_spilttea_ops_incidents() {
	local dir f
	dir=$(_spilttea_ops_query config show | awk '/^state_dir:/ {print $2; exit}')
	[[ -n $dir && -d $dir/incidents ]] || return 0
	for f in "$dir"/incidents/*/; do
		[[ -d $f ]] && f=${f%/} && echo "${f##*/}"
	done
}

_spilttea_ops_runbooks() { _spilttea_ops_query runbook list --format names; }
_spilttea_ops_backups() { _spilttea_ops_query backup list --format names; }

# NAME= for each parameter of a runbook.
_spilttea_ops_params() {
	_spilttea_ops_query runbook show "$1" | awk '
		/^params:/ {p = 1; next}
		p && /^[^ ]/ {p = 0}
		p && /^  [A-Za-z0-9_-]+/ {print $1 "="}'
}

# The issues diagnose knows: its runbooks are diagnose-ISSUE.
_spilttea_ops_issues() {
	_spilttea_ops_runbooks | sed -n 's/^diagnose-//p'
}

# Check ids and groups for health --check.
_spilttea_ops_checks() {
	local s
	echo 'backend frontend postgres redis disk docker container container_cpu container_memory'
	echo 'backend.health backend.error_rate frontend.reachable docker.df'
	echo 'postgres.reachable postgres.connections postgres.longest_query'
	echo 'postgres.longest_transaction postgres.size redis.reachable redis.memory'
	echo 'redis.clients redis.evictions disk.docker_root disk.backup_dir'
	for s in $(_spilttea_ops_containers); do
		echo "container.$s container_cpu.$s container_memory.$s"
	done
}

_spilttea_ops_add() { # words...: COMPREPLY += those matching $cur
	local IFS=$' \t\n'
	# shellcheck disable=SC2207 # compgen output is words
	COMPREPLY+=($(compgen -W "$*" -- "$cur"))
}

_spilttea_ops_files() { # [ext...]: files with one of these extensions, and directories
	local f e IFS=$'\n'
	compopt -o filenames 2>/dev/null
	for f in $(compgen -f -- "$cur"); do
		if (($# == 0)) || [[ -d $f ]]; then
			COMPREPLY+=("$f")
			continue
		fi
		for e in "$@"; do
			[[ $f == *."$e" ]] && COMPREPLY+=("$f") && break
		done
	done
}

# Files only once the word looks like a path: names come first.
_spilttea_ops_paths() {
	[[ $cur == */* || $cur == .* || $cur == '~'* ]] && _spilttea_ops_files "$@"
}

_spilttea_ops_dirs() {
	local IFS=$'\n'
	compopt -o filenames 2>/dev/null
	# shellcheck disable=SC2207
	COMPREPLY+=($(compgen -d -- "$cur"))
}

_spilttea_ops() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd='' sub='' i w nargs=0
	local -a args=()
	local _spilttea_ops_bin=${COMP_WORDS[0]}
	local -a _spilttea_ops_cfg=()
	COMPREPLY=()

	# The command, its arguments so far, and a -c/--config to pass on.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-c | --config)
			((i + 1 < COMP_CWORD)) && _spilttea_ops_cfg=(--config "${COMP_WORDS[i + 1]}")
			((i++))
			continue ;;
		--config=*) _spilttea_ops_cfg=(--config "${w#--config=}"); continue ;;
		# options that take a value: skip it too
		--format | --incident | --ref | --strategy | --to | --check | --output | --watch | \
			--kind | --dir | --compress | --level | --database | --metrics-file | --at | \
			--title | --id | --since | --threshold | --recent | --limit | --pattern | \
			--service | --from-env | --to-backup | --attest | --reason | --rolled-back | \
			--applied | --tail | --min | --older-than | --table | --schema | --timeout) ((i++)); continue ;;
		--) continue ;;
		-*) continue ;;
		esac
		if [[ -z $cmd ]]; then
			cmd=$w
		else
			args+=("$w")
		fi
	done
	nargs=${#args[@]}
	((nargs > 0)) && sub=${args[0]}

	# Values of options.
	case $prev in
	-c | --config) _spilttea_ops_files yaml yml; return 0 ;;
	--format) _spilttea_ops_add "$(_spilttea_ops_formats "$cmd")"; return 0 ;;
	--kind) _spilttea_ops_add 'full schema data'; return 0 ;;
	--compress) _spilttea_ops_add 'gzip zstd none'; return 0 ;;
	--strategy) _spilttea_ops_add 'recreate blue-green'; return 0 ;;
	--check) _spilttea_ops_add "$(_spilttea_ops_checks)"; return 0 ;;
	--dir) _spilttea_ops_dirs; return 0 ;;
	--output | --metrics-file) _spilttea_ops_files; return 0 ;;
	--to-backup) _spilttea_ops_add "$(_spilttea_ops_backups)"; _spilttea_ops_paths gz zst sql; return 0 ;;
	--attest) _spilttea_ops_add 'tests code-review security-review'; return 0 ;;
	--incident) _spilttea_ops_add "$(_spilttea_ops_incidents)"; return 0 ;;
	--service) _spilttea_ops_add "$(_spilttea_ops_services)"; return 0 ;;
	--from-env) _spilttea_ops_add "$(compgen -e)"; return 0 ;;
	--level | --watch | --at | --ref | --to | --database | --title | --id | --since | \
		--threshold | --recent | --limit | --pattern | --reason | --rolled-back | --applied) return 0 ;;
	esac

	if [[ $cur == -* ]]; then
		_spilttea_ops_add "$_spilttea_ops_global_opts $(_spilttea_ops_options "$cmd" "$sub")"
		return 0
	fi

	if [[ -z $cmd ]]; then
		_spilttea_ops_add "$_spilttea_ops_commands"
		return 0
	fi

	case $cmd in
	help)
		((nargs == 0)) && _spilttea_ops_add "$_spilttea_ops_commands" ;;
	config)
		((nargs == 0)) && _spilttea_ops_add "$(_spilttea_ops_subcommands config)" ;;
	runbook)
		if ((nargs == 0)); then
			_spilttea_ops_add "$(_spilttea_ops_subcommands runbook)"
		elif [[ $sub == show && nargs -eq 1 ]] || [[ $sub == check ]]; then
			_spilttea_ops_add "$(_spilttea_ops_runbooks)"
			_spilttea_ops_paths yaml yml
		fi ;;
	run)
		if ((nargs == 0)); then
			_spilttea_ops_add "$(_spilttea_ops_runbooks)"
			_spilttea_ops_paths yaml yml
		else
			compopt -o nospace 2>/dev/null
			_spilttea_ops_add "$(_spilttea_ops_params "$sub")"
		fi ;;
	deploy)
		_spilttea_ops_add "all $(_spilttea_ops_services)" ;;
	rollback)
		((nargs == 0)) && _spilttea_ops_add db
		[[ $sub != db ]] && _spilttea_ops_add "all $(_spilttea_ops_services)" ;;
	migrate | db | cache)
		((nargs == 0)) && _spilttea_ops_add "$(_spilttea_ops_subcommands "$cmd")" ;;
	logs)
		_spilttea_ops_add "$(_spilttea_ops_services)" ;;
	diagnose)
		_spilttea_ops_add "$(_spilttea_ops_issues) since= idle_older_than="
		# no space after a parameter's '=' (only when all that is left is one)
		if ((${#COMPREPLY[@]})) && ! printf '%s\n' "${COMPREPLY[@]}" | grep -qv '=$'; then
			compopt -o nospace 2>/dev/null
		fi ;;
	backup)
		if ((nargs == 0)); then
			_spilttea_ops_add "$(_spilttea_ops_subcommands backup)"
		elif [[ $nargs -eq 1 && ($sub == verify || $sub == test-restore) ]]; then
			_spilttea_ops_add "$(_spilttea_ops_backups)"
		fi ;;
	incident)
		((nargs == 0)) && _spilttea_ops_add "$(_spilttea_ops_subcommands incident)" ;;
	restore)
		if ((nargs == 0)); then
			_spilttea_ops_add "cleanup $(_spilttea_ops_backups)"
			_spilttea_ops_paths gz zst sql
		fi ;;
	esac
	return 0
}

complete -F _spilttea_ops spilttea-ops
