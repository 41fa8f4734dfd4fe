#!/usr/bin/env zsh
# usage: zsh_complete.zsh COMPLETION_DIR BINARY_DIR 'LINE'...
# Prints, for each LINE, the candidates zsh's completion system offers when
# TAB is pressed at its end: a line "== LINE", then one candidate a line.
# An interactive zsh runs in a pseudo-terminal (zsh/zpty) with compinit
# loaded from COMPLETION_DIR and a compadd that prints what it is given
# (after the completion system matched it against the word), the technique
# of zsh-capture-completion.
emulate -L zsh
zmodload zsh/zpty || exit 1
compdir=$1 bindir=$2
shift 2

for line in "$@"; do
	print -r -- "== $line"
	zpty z zsh -f -i || exit 1
	zpty -w z "PATH=${(q)bindir}:\$PATH; fpath=(${(q)compdir} \$fpath)"
	zpty -w z 'autoload -U compinit; compinit -u -D'
	zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' insert-tab false"
	zpty -w z 'bindkey "^I" complete-word'
	zpty -w z 'st-mark() { print -rn -- $'"'"'\x01'"'"' >/dev/tty }; compprefuncs=(st-mark); comppostfuncs=(st-mark exit)'
	zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi; local -a __hits; local __h; builtin compadd -A __hits "$@"; (( $#__hits )) || return 1; for __h in $__hits; do print -r -- "<hit>$__h" >/dev/tty; done; builtin compadd "$@"; }'
	zpty -w -n z "$line"$'\t'
	out= chunk=
	integer marks=0 tries=0
	while (( marks < 2 && tries < 200 )); do
		if zpty -r -t z chunk; then
			out+=$chunk
			marks=${#${out//[^$'\x01']/}}
		else
			sleep 0.05
			(( tries++ ))
		fi
	done
	zpty -d z
	(( marks == 2 )) || { print -r -- "!! timed out"; continue; }
	out=${${out#*$'\x01'}%$'\x01'*}
	print -r -- ${(F)${(M)${(f)out//$'\r'/}:#<hit>*}#<hit>}
done
