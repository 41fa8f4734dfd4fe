#!/usr/bin/env bash
# --help of spilttea-ops and of every command in its table (and of the
# subcommands that have their own help): exit 0, on stdout, fits an
# 80-column terminal, at most 60 lines, and ends with an "examples:" section
# whose lines run spilttea-ops. --version names the version and the commit.
set -uo pipefail
bin=${ST_BINARY:?ST_BINARY must name the spilttea-ops binary}
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }
unset SPILTTEA_OPS_CONFIG
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=SCRIPTDIR/help_parse.sh
. "$src/tests/docs/help_parse.sh"

check_help() { # label, then the command line
	local label=$1 out rc n last
	shift
	out=$("$@" 2>/dev/null)
	rc=$?
	((rc == 0)) || { err "$label: exit $rc"; return; }
	[[ -n $out ]] || { err "$label: nothing on stdout"; return; }
	while IFS= read -r l; do
		# columns, not bytes: the help may hold UTF-8
		n=$(printf '%s' "$l" | wc -m)
		((n <= 80)) || err "$label: line of $n columns: $l"
	done <<<"$out"
	n=$(wc -l <<<"$out")
	((n <= 60)) || err "$label: $n lines (at most 60 fit a screen)"
	grep -q '^examples:$' <<<"$out" || { err "$label: no 'examples:' section"; return; }
	# examples come last: every line after the heading is an example
	while IFS= read -r l; do
		[[ $l == '  spilttea-ops '* || $l == '  '*' | spilttea-ops '* ]] ||
			err "$label: after 'examples:' a line that is no example: '$l'"
	done < <(sed -n '/^examples:$/,$p' <<<"$out" | tail -n +2)
	last=$(sed -n '/^examples:$/,$p' <<<"$out" | wc -l)
	((last >= 2)) || err "$label: 'examples:' has no example"
}

check_help "spilttea-ops --help" "$bin" --help
check_help "spilttea-ops help" "$bin" help
mapfile -t commands < <("$bin" --help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{on=0}')
((${#commands[@]} >= 8)) || err "only ${#commands[@]} commands in --help"
# The global help lists exactly the commands of cmd/main.c's table, so every
# registered command is checked below (and by test_man, test_completion_*).
table=$(sed -n '/^static const struct command commands\[\] = {/,/^};/p' "$src/cmd/main.c" |
	sed -nE 's/^[[:space:]]*\{ *"([a-z-]+)", *cmd_.*/\1/p' | sort)
(($(wc -l <<<"$table") >= 8)) || err "read only $(wc -l <<<"$table") commands from cmd/main.c's table"
[[ $table == "$(printf '%s\n' "${commands[@]}" | sort)" ]] ||
	err "--help's commands differ from cmd/main.c's table:"$'\n'"$(diff <(echo "$table") <(printf '%s\n' "${commands[@]}" | sort))"
for c in "${commands[@]}"; do
	check_help "spilttea-ops $c --help" "$bin" "$c" --help
	check_help "spilttea-ops help $c" "$bin" help "$c"
	# same text either way
	[[ $("$bin" "$c" --help) == "$("$bin" help "$c")" ]] || err "'$c --help' and 'help $c' differ"
	# 'backup list --help' and the like: the command's help (or its own)
	for s in $(help_subcommands "$bin" "$c"); do
		check_help "spilttea-ops $c $s --help" "$bin" "$c" "$s" --help
	done
done

# Usage errors go to stderr with a hint naming the help, exit 2.
out=$("$bin" no-such-command 2>&1 >/dev/null)
rc=$?
((rc == 2)) || err "unknown command: exit $rc"
grep -q "^error: unknown command 'no-such-command'$" <<<"$out" || err "unknown command: '$out'"
grep -q "^hint: " <<<"$out" || err "unknown command: no hint"

v=$("$bin" --version)
[[ $v =~ ^spilttea-ops\ [0-9]+\.[0-9]+\.[0-9]+\ \(git\ [0-9A-Za-z._-]+\)$ ]] || err "--version: '$v'"
exit $fail
