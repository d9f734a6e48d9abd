#!/usr/bin/env bash
# lib_exports.sh - libspillway.so exports the application API and nothing
# else (ring/libspillway.map): every exported function is declared in
# ring/spillway.h, the daemon's verbs (spwd_*, ring/spillway_daemon.h) and the
# internal ring_/seg_/spill_ helpers are not exported, and every function
# spillway.h declares is.
set -u
. "$(dirname "$0")/cli_lib.sh"

SO=$(dirname "$CLI")/libspillway.so
[ -e "$SO" ] || fail "no $SO (make lib)"
nm -D --defined-only "$SO" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort >"$TMP/exported"
grep -oE '\bspw_[a-z_]+\(' "$HERE/../ring/spillway.h" | tr -d '(' | sort -u >"$TMP/declared"

check "the library exports functions"
[ -s "$TMP/exported" ] || fail "nm found no exported function in $SO"

check "every exported function is public API (declared in spillway.h)"
extra=$(comm -23 "$TMP/exported" "$TMP/declared")
[ -z "$extra" ] || fail "exported but not in spillway.h: $extra"

check "no daemon verb and no internal helper is exported"
if grep -E '^(spwd_|ring_|seg_|spill_)' "$TMP/exported"; then
	fail "internal symbols exported (above)"
fi

check "every function spillway.h declares is exported"
missing=$(comm -13 "$TMP/exported" "$TMP/declared")
[ -z "$missing" ] || fail "declared in spillway.h but not exported: $missing"

done_ok
