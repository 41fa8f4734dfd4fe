# shellcheck shell=bash
# Sourced by the tests in tests/docs: what a command's --help says it
# takes, read the way a person reads it, so documentation and completion
# can be checked against the binary.
#
#   help_commands BIN           the command table, from the global help
#   help_subcommands BIN CMD    its subcommands
#   help_options BIN CMD        its own long options (not the global ones)
#   help_global_options BIN     the global options, short and long
#   help_formats BIN CMD        the values of --format it names
#
# Usage lines are those of the "usage:" block and, before "examples:", any
# other line that starts with "spilttea-ops CMD". Subcommands are a
# lowercase word right after "spilttea-ops CMD" in a usage line, and, when the usage says "<subcommand>", the first word of each
# indented line that lists one ("  start [--title TEXT]  open an incident").
# Options are those of the usage lines, of lines that start with an option
# ("  -q, --quiet   ..."), and of the subcommand lines.

help_commands() {
	"$1" --help | awk '/^commands:/ {on=1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on=0}'
}

help_global_options() {
	"$1" --help | sed -n '/^global options/,/^$/p' |
		awk 'match($0, /^ +-[a-zA-Z-][a-z-]*(, --[a-z][a-z0-9-]*)?/) {print substr($0, RSTART, RLENGTH)}' |
		grep -oE -- '--?[a-zA-Z][a-z-]*' | sort -u
}

# The help of one command, on stdout.
_help_text() { "$1" "$2" --help 2>/dev/null; }

# Prints "sub" lines (subcommands) and "opt" lines (options).
_help_scan() {
	_help_text "$1" "$2" | awk -v c="$2" '
		/^usage:/ {u = 1}
		u && /^$/ {u = 0}
		u && /<subcommand>/ {subs = 1}
		/^examples:/ {ex = 1}
		# a usage form further down ("  spilttea-ops deploy --checklist ...")
		!ex && /^  spilttea-ops / && $2 == c {uu = 1}
		u || uu {
			uu = 0
			for (i = 1; i < NF; i++)
				if ($i == "spilttea-ops" && $(i + 1) == c && $(i + 2) ~ /^[a-z][a-z-]*$/)
					print "sub " $(i + 2)
			line = $0
			while (match(line, /--[a-z][a-z0-9-]*/)) {
				print "opt " substr(line, RSTART, RLENGTH)
				line = substr(line, RSTART + RLENGTH)
			}
			next
		}
		ex {next}
		match($0, /^ +(-[a-zA-Z], )?--[a-z][a-z0-9-]*/) {
			s = substr($0, RSTART, RLENGTH)
			sub(/^ +(-[a-zA-Z], )?/, "", s)
			print "opt " s
			next
		}
		subs && /^  [a-z][a-z-]+( |$)/ && $1 != "spilttea-ops" {
			print "sub " $1
			line = $0
			# options of the subcommand: up to the two spaces before its description
			sub(/   +[^-\[].*$/, "", line)
			while (match(line, /--[a-z][a-z0-9-]*/)) {
				print "opt " substr(line, RSTART, RLENGTH)
				line = substr(line, RSTART + RLENGTH)
			}
		}'
}

help_subcommands() {
	[[ $2 == help ]] && return 0
	_help_scan "$1" "$2" | sed -n 's/^sub //p' | sort -u
}

help_options() {
	local global
	global=$(help_global_options "$1")
	_help_scan "$1" "$2" | sed -n 's/^opt //p' | sort -u | grep -vxF -f <(printf '%s\n' "$global") || true
}

help_formats() {
	_help_text "$1" "$2" | grep -oE -- '--format [a-z|]+' | cut -d' ' -f2 | tr '|' '\n' | sort -u
}
