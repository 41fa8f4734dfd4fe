#!/usr/bin/env bash
# The manual pages: every command of the binary's table has its page and an
# entry in spilttea-ops(1); every page is mandoc -T lint clean and renders
# with man -l; cross references point at pages that exist; every option a
# command's --help lists is documented in its page; global options in
# spilttea-ops(1). Runs without a sandbox.
set -euo pipefail
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ST_BINARY:?ST_BINARY must name the spilttea-ops binary}
man=$src/man
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }
# shellcheck source=SCRIPTDIR/help_parse.sh
. "$src/tests/docs/help_parse.sh"

# Commands, from the global help's "commands:" section.
mapfile -t commands < <(help_commands "$bin")
((${#commands[@]} >= 8)) || err "found only ${#commands[@]} commands in 'spilttea-ops --help'"

pages=("$man"/*.[15])
((${#pages[@]} >= 10)) || err "only ${#pages[@]} pages in man/"

# 1. A page per command, listed in spilttea-ops(1).
for c in "${commands[@]}"; do
	[[ $c == help ]] && continue
	[[ -f $man/spilttea-ops-$c.1 ]] || err "command '$c' has no man/spilttea-ops-$c.1"
	grep -q "^\.It Cm $c\b" "$man/spilttea-ops.1" || err "spilttea-ops(1) has no '.It Cm $c' entry"
	grep -q "^\.Xr spilttea-ops-$c 1" "$man/spilttea-ops.1" || err "spilttea-ops(1) SEE ALSO lacks spilttea-ops-$c(1)"
done
for f in "$man"/spilttea-ops-*.1; do
	c=${f##*/spilttea-ops-}; c=${c%.1}
	printf '%s\n' "${commands[@]}" | grep -qx "$c" || err "man/spilttea-ops-$c.1 documents no command of the binary"
done

# 2. mandoc -T lint, style level. Only two kinds of message are allowed:
# references to pages that are not installed on this machine (ours are
# checked in 3. against man/), and mandoc's complaint about a stale system
# database. Everything else fails.
for f in "${pages[@]}"; do
	out=$(mandoc -T lint -W style "$f" 2>&1 |
		grep -v -e 'STYLE: referenced manual not found' -e 'outdated mandoc.db' || true)
	[[ -z $out ]] || err "mandoc -T lint ${f#"$src"/}:"$'\n'"$out"
done

# 3. Cross references to our own pages resolve; each page names itself.
for f in "${pages[@]}"; do
	while read -r _ name sec _; do
		[[ -f $man/$name.$sec ]] || err "${f#"$src"/} refers to $name($sec), which is not in man/"
	done < <(grep -E '^\.Xr spilttea-ops' "$f" || true)
	base=${f##*/}; name=${base%.*}; sec=${base##*.}
	upper=$(tr '[:lower:]' '[:upper:]' <<<"$name")
	grep -q "^\.Dt $upper $sec\$" "$f" || err "$base: .Dt is not '$upper $sec'"
	for s in NAME DESCRIPTION 'SEE ALSO'; do
		grep -q "^\.Sh $s\$" "$f" || err "$base has no $s section"
	done
	if [[ $name != spilttea-ops ]]; then
		grep -q '^\.Xr spilttea-ops 1' "$f" || err "$base: SEE ALSO lacks spilttea-ops(1)"
	fi
	if [[ $sec == 1 ]]; then
		for s in SYNOPSIS 'EXIT STATUS' EXAMPLES; do
			grep -q "^\.Sh $s\$" "$f" || err "$base has no $s section"
		done
	fi
done

# Every environment variable the sources read (but the ones every program
# reads) is in spilttea-ops(1)'s ENVIRONMENT.
envs=$(sed -n '/^\.Sh ENVIRONMENT$/,/^\.Sh /p' "$man/spilttea-ops.1")
for v in $(cat "$src"/cmd/*.[ch] "$src"/lib/*.[ch] | grep -oE '\b(secure_)?getenv\("[A-Z_][A-Z0-9_]*"\)|"SPILTTEA_[A-Z_]+"' |
	grep -oE '[A-Z_][A-Z0-9_]+' | sort -u); do
	case $v in HOME | PATH | TMPDIR | TERM | USER | LOGNAME) continue ;; esac
	grep -q "^\.It Ev $v\b" <<<"$envs" || err "spilttea-ops(1) ENVIRONMENT lacks $v, which the sources read"
done

# 4. man -l renders every page, without warnings from groff.
for f in "${pages[@]}"; do
	if ! out=$(MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings -l "$f" 2>&1 >/dev/null); then
		err "man -l ${f##*/} failed: $out"
	elif [[ -n $out ]]; then
		err "man -l ${f##*/} warns: $out"
	fi
done
rendered=$(MANWIDTH=80 man -l "$man/spilttea-ops.1" 2>/dev/null | col -b)
grep -q '^SYNOPSIS' <<<"$rendered" || err "man -l man/spilttea-ops.1 shows no SYNOPSIS"
grep -q 'spilttea-ops-deploy(1)' <<<"$rendered" || err "man -l man/spilttea-ops.1 shows no command page reference"

# 5. Options. A command's options are the long options its --help lists
# (tests/docs/help_parse.sh); each must be in its page as 'Fl -NAME'. The
# global ones are documented once, in spilttea-ops(1).
for o in $(help_global_options "$bin" | grep -- '^--'); do
	grep -q -- "Fl -${o#--}\b" "$man/spilttea-ops.1" || err "spilttea-ops(1) does not document global option $o"
done
for c in "${commands[@]}"; do
	[[ $c == help || ! -f $man/spilttea-ops-$c.1 ]] && continue
	for o in $(help_options "$bin" "$c"); do
		grep -q -- "Fl -${o#--}\b" "$man/spilttea-ops-$c.1" ||
			err "spilttea-ops-$c(1) does not document $o (listed by '$c --help')"
	done
	for s in $(help_subcommands "$bin" "$c"); do
		grep -qE -- "Cm ($c )?$s\b" "$man/spilttea-ops-$c.1" ||
			err "spilttea-ops-$c(1) does not document subcommand '$s' (listed by '$c --help')"
	done
done

exit $fail
