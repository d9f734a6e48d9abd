#!/usr/bin/env bash
# cli_demo.sh - `spillway demo` (what `make demo` runs), shortened: it must
# report exactly-once for both consumers, exit 0, and leave no process and
# no temp dir behind; and clean up the same way when spillwayd is unusable.
set -u
. "$(dirname "$0")/cli_lib.sh"

check "demo (2 producers, 2 s or 96 MiB, 4 MiB segments): exit 0, exactly once"
expect_rc 0 env SPW_DAEMON="$DAEMON" "$CLI" demo --producers 2 --seconds 2 --bytes 96M \
	--ring-size 1M --segment-size 4M
grep -q "exactly once  live consumer: yes.*, lagging consumer: yes" "$TMP/out" || fail "not exactly once"
expect_out "spillway demo: OK"
grep -q "lagging .* from disk across [1-9][0-9]* segments" "$TMP/out" || fail "the lagging consumer did not read from disk"
grep -q "latency .* p50 .* p99 .* p99.9 " "$TMP/out" || fail "no latency percentiles"
grep -q "replay .* all in range, sequences contiguous" "$TMP/out" || fail "replay check"

check "demo left no process and no temp dir behind"
shm=$(sed -n 's/^  rings in \(.*\), segments in .*/\1/p' "$TMP/out")
data=$(sed -n 's/^  rings in .*, segments in \(.*\)\/data$/\1/p' "$TMP/out")
[ -n "$shm" ] && [ -n "$data" ] || fail "the demo did not print its dirs"
[ ! -e "$shm" ] && [ ! -e "$data" ] || fail "temp dirs left: $shm $data"
pgrep -f -- "--shm-dir $shm" >/dev/null && fail "a spillwayd on $shm is still running"

check "demo with an unusable spillwayd: exit 1, cleans up"
expect_rc 1 env SPW_DAEMON=/bin/false "$CLI" demo --seconds 1
expect_out "spillway demo: FAILED"
expect_err "did not attach"
expect_rc 1 env SPW_DAEMON=/nonexistent/spillwayd "$CLI" demo
expect_err "cannot find spillwayd"

done_ok
