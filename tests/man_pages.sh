#!/usr/bin/env bash
# man_pages.sh - the man pages (docs/man/*.scd, built by make with scdoc):
# each renders with man -l without a warning, and every flag that a
# command's --help lists is in its page (spillway(1) for every subcommand,
# spillwayd(8) for the daemon), so the pages cannot drift from the code.
set -u
. "$(dirname "$0")/cli_lib.sh"

MAN=$(dirname "$CLI")/man
command -v man >/dev/null || fail "no man (make deps installs man-db)"
[ -d "$MAN" ] || fail "no $MAN: the pages were not built (make deps installs scdoc)"

check "every page renders without a warning"
for p in spillway.1 spillwayd.8 spillway.7 libspillway.3; do
	[ -s "$MAN/$p" ] || fail "$MAN/$p missing"
	w=$(LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -E UTF-8 -l "$MAN/$p" 2>&1 >"$TMP/$p.txt")
	[ -z "$w" ] || fail "$p: $w"
	grep -q "SEE ALSO" "$TMP/$p.txt" || fail "$p did not render"
done

check "every flag of every subcommand's --help is in spillway(1)"
flags() { "$@" --help 2>&1 | grep -oE '(^|[ ,[])--[a-z][a-z-]*' | tr -d ' ,[' | sort -u; }
missing=""
for c in "topic create" "topic list" "topic describe" "topic delete" produce consume replay \
	stat verify dump demo bench "bridge kafka"; do
	# shellcheck disable=SC2086 # the command words are meant to split
	for f in $(flags "$CLI" $c); do
		grep -qe "$f" "$TMP/spillway.1.txt" || missing="$missing $c:$f"
	done
done
[ -z "$missing" ] || fail "flags not in spillway(1):$missing"

check "every spillwayd flag is in spillwayd(8)"
missing=""
for f in $(flags "$DAEMON"); do
	grep -qe "$f" "$TMP/spillwayd.8.txt" || missing="$missing $f"
done
[ -z "$missing" ] || fail "flags not in spillwayd(8):$missing"

check "every subcommand of spillway --help has a section"
for c in topic produce consume replay stat verify dump bench bridge demo; do
	grep -qE "^ +$c( |$)" "$TMP/spillway.1.txt" || fail "no section for $c"
done

done_ok
