#!/usr/bin/env bash
# cmake --install into a DESTDIR puts every file where it belongs (binary,
# man pages, bash and zsh completion, runbooks, example configuration and
# examples), the installed binary runs and the installed pages render; then
# cpack builds the .deb and dpkg-deb shows the same tree under /usr with
# dependencies on the runtime libraries. No sandbox needed.
set -uo pipefail
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ST_BINARY:?ST_BINARY must name the spilttea-ops binary}
build=${ST_BUILD_DIR:-$(dirname "$bin")}
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

tmp=$(mktemp -d /tmp/st-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# What must be there, relative to the prefix.
expected() {
	local f
	echo bin/spilttea-ops
	for f in "$src"/man/*.1; do echo "share/man/man1/${f##*/}"; done
	for f in "$src"/man/*.5; do echo "share/man/man5/${f##*/}"; done
	echo share/bash-completion/completions/spilttea-ops
	echo share/zsh/vendor-completions/_spilttea-ops
	for f in "$src"/runbooks/*.yaml; do echo "share/spilttea-ops/runbooks/${f##*/}"; done
	echo share/doc/spilttea-ops/config.example.yaml
	echo share/doc/spilttea-ops/README.md
	(cd "$src" && find examples -type f) | sed 's|^|share/doc/spilttea-ops/|'
}
expected | sort >"$tmp/expected"
(($(wc -l <"$tmp/expected") >= 20)) || err "expected only $(wc -l <"$tmp/expected") files"

# 1. cmake --install into a DESTDIR.
if ! out=$(DESTDIR="$tmp/root" cmake --install "$build" --prefix /usr 2>&1); then
	err "cmake --install failed: $out"
fi
(cd "$tmp/root/usr" && find . -type f -o -type l | sed 's|^\./||' | sort) >"$tmp/installed"
missing=$(comm -23 "$tmp/expected" "$tmp/installed")
extra=$(comm -13 "$tmp/expected" "$tmp/installed")
[[ -z $missing ]] || err "not installed:"$'\n'"$missing"
[[ -z $extra ]] || err "installed but not expected:"$'\n'"$extra"
[[ -x $tmp/root/usr/bin/spilttea-ops ]] || err "bin/spilttea-ops is not executable"
v=$("$tmp/root/usr/bin/spilttea-ops" --version) || err "the installed binary does not run"
[[ $v == "$("$bin" --version)" ]] || err "installed --version '$v' is not the build's"
for page in spilttea-ops.1 spilttea-ops.yaml.5; do
	sec=${page##*.}
	MANWIDTH=80 man -l "$tmp/root/usr/share/man/man$sec/$page" 2>/dev/null | grep -q '^NAME' ||
		err "installed $page does not render"
done
# The installed pages are found by name with that MANPATH.
MANPATH=$tmp/root/usr/share/man man -w spilttea-ops-backup >/dev/null 2>&1 ||
	err "man -w spilttea-ops-backup does not find the installed page"
cmp -s "$src/completion/spilttea-ops.bash" "$tmp/root/usr/share/bash-completion/completions/spilttea-ops" ||
	err "the installed bash completion is not completion/spilttea-ops.bash"
# The installed runbooks load.
"$bin" runbook check "$tmp"/root/usr/share/spilttea-ops/runbooks/*.yaml >/dev/null ||
	err "the installed runbooks do not pass 'runbook check'"

# zsh looks in /usr/share/zsh/vendor-completions for a /usr install (Debian's
# $fpath) and in PREFIX/share/zsh/site-functions for any other prefix.
if ! out=$(DESTDIR="$tmp/local" cmake --install "$build" --prefix /usr/local 2>&1); then
	err "cmake --install --prefix /usr/local failed: $out"
fi
[[ -f $tmp/local/usr/local/share/zsh/site-functions/_spilttea-ops ]] ||
	err "--prefix /usr/local: no share/zsh/site-functions/_spilttea-ops"
[[ ! -e $tmp/local/usr/local/share/zsh/vendor-completions ]] ||
	err "--prefix /usr/local: zsh completion in vendor-completions, which zsh does not read there"
if command -v zsh >/dev/null; then
	fp=$(zsh -f -c 'print -l $fpath')
	grep -qx /usr/share/zsh/vendor-completions <<<"$fp" || err "zsh's \$fpath lacks /usr/share/zsh/vendor-completions"
	grep -qx /usr/local/share/zsh/site-functions <<<"$fp" || err "zsh's \$fpath lacks /usr/local/share/zsh/site-functions"
fi

# 2. The .deb.
if ! out=$(cd "$build" && cpack -G DEB -B "$tmp/pkg" 2>&1); then
	err "cpack -G DEB failed: $out"
fi
deb=$(find "$tmp/pkg" -maxdepth 1 -name 'spilttea-ops_*.deb' | head -1)
if [[ -z $deb ]]; then
	err "cpack made no spilttea-ops_*.deb"
else
	dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./usr/||' | sort >"$tmp/in-deb"
	missing=$(comm -23 "$tmp/expected" "$tmp/in-deb")
	[[ -z $missing ]] || err "not in the .deb:"$'\n'"$missing"
	grep -qx 'bin/spilttea-ops' "$tmp/in-deb" || err ".deb: no /usr/bin/spilttea-ops"
	depends=$(dpkg-deb -f "$deb" Depends)
	for lib in libpq5 libhiredis0.14 libcurl4 libjansson4 libyaml-0-2 libzstd1 zlib1g libc6; do
		grep -q "\b$lib\b" <<<"$depends" || err ".deb Depends lacks $lib: $depends"
	done
	grep -qE '\blibssl3\b' <<<"$depends" || err ".deb Depends lacks libssl3: $depends"
	[[ $(dpkg-deb -f "$deb" Package) == spilttea-ops ]] || err ".deb Package is not spilttea-ops"
	[[ $(dpkg-deb -f "$deb" Version) == "$(sed -E 's/^spilttea-ops ([^ ]+).*/\1/' <<<"$v")" ]] ||
		err ".deb Version $(dpkg-deb -f "$deb" Version) is not the binary's"
fi

exit $fail
