#!/usr/bin/env bash
# cli_blocked.sh - a producer blocked on a full ring is told why, once per
# reason, and told again when it clears (tools/cmd_produce.c,
# cli_block_reason): here spillwayd cannot write (the fault seam makes every
# segment write fail with ENOSPC, as a full disk would), which the daemon
# publishes (spill_error: spw_topic_info, stat); then the disk "frees up".
set -u
. "$(dirname "$0")/cli_lib.sh"

check "disk full: the producer says spillwayd cannot write, then that records go in again"
expect_rc 0 "$CLI" topic create full --ring-size 64K --max-record 1K
echo ENOSPC >"$TMP/fault"
: >"$TMP/daemon.log"
SPILLWAY_FAULT_FILE=$TMP/fault "$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" \
	--data-dir "$SPILLWAY_DATA_DIR" >>"$TMP/daemon.log" 2>&1 &
DPID=$!
wait_attached full
seq 1 30000 >"$TMP/many"
"$CLI" produce full "$TMP/many" 2>"$TMP/perr" &
PP=$!
BGPIDS+=("$PP")
for _ in $(seq 1 100); do
	grep -q "cannot write its segments" "$TMP/perr" && break
	sleep 0.1
done
grep -q 'topic "full" is full: spillwayd cannot write its segments: No space left on device' \
	"$TMP/perr" || { cat "$TMP/perr" >&2; fail "no reason given"; }
run "$CLI" stat full
expect_out "SPILL ERROR: spillwayd cannot write the segments: No space left on device"
rm -f "$TMP/fault" # the disk has room again
wait "$PP" || fail "produce failed after the disk came back"
grep -q 'topic "full" takes records again' "$TMP/perr" || fail "not told it cleared"
[ "$(grep -c 'cannot write its segments' "$TMP/perr")" -eq 1 ] || fail "said more than once"
run "$CLI" stat full --json
expect_out '"spill_error":null'
expect_rc 0 "$CLI" consume full
[ "$(wc -l <"$TMP/out")" -eq 30000 ] || fail "records: $(wc -l <"$TMP/out")"

done_ok
