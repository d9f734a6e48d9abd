#!/usr/bin/env bash
# cli_topic.sh - topic create / list / describe / delete, unknown topics on
# every subcommand (exit 1, the name and the create hint), and directories
# that cannot be used (a data dir or shm dir that is a file).
set -u
. "$(dirname "$0")/cli_lib.sh"

check "create writes topic.conf with the flags and the ring with the sizes"
expect_rc 0 "$CLI" topic create orders --ring-size 1M --segment-size 4M --max-record 64K \
	--retention 7d --retention-bytes 1G --flush-ms 250 --flush-bytes 8M --mode 0640
expect_out "created topic orders"
conf=$SPILLWAY_DATA_DIR/orders/topic.conf
[ -f "$conf" ] || fail "no $conf"
grep -q "^ring_bytes = 1048576$" "$conf" || fail "ring_bytes not in topic.conf"
grep -q "^segment_bytes = 4194304$" "$conf" || fail "segment_bytes not in topic.conf"
grep -q "^max_record = 65536$" "$conf" || fail "max_record not in topic.conf"
grep -q "^retention = 604800000ms$" "$conf" || fail "retention not in topic.conf"
grep -q "^retention_bytes = 1073741824$" "$conf" || fail "retention_bytes not in topic.conf"
grep -q "^flush_ms = 250$" "$conf" || fail "flush_ms not in topic.conf"
grep -q "^flush_bytes = 8388608$" "$conf" || fail "flush_bytes not in topic.conf"
ring=$SPILLWAY_SHM_DIR/orders.ring
[ "$(stat -c %s "$ring")" -eq $((12288 + 1048576)) ] || fail "ring file size (a 4 KiB header page, 64 producer slots, the ring)"
[ "$(stat -c %a "$ring")" = 640 ] || fail "ring mode is $(stat -c %a "$ring"), not 640"

check "create --group chowns the ring; --no-spill is recorded"
grp=$(id -gn)
expect_rc 0 "$CLI" topic create ipc --ring-size 64K --no-spill --group "$grp" --mode 0660
[ "$(stat -c %G "$SPILLWAY_SHM_DIR/ipc.ring")" = "$grp" ] || fail "ring group"
grep -q "^no_spill = 1$" "$SPILLWAY_DATA_DIR/ipc/topic.conf" || fail "no_spill not recorded"

check "create of an existing topic: exit 1, says so"
expect_rc 1 "$CLI" topic create orders --ring-size 1M --segment-size 4M
expect_err '"orders" already exists'
grep -q "^flush_ms = 250$" "$conf" || fail "a failed create rewrote topic.conf"

check "list shows both topics"
expect_rc 0 "$CLI" topic list
expect_out "NAME"
grep -q "^orders " "$TMP/out" || fail "orders not listed"
grep -q "^ipc " "$TMP/out" || fail "ipc not listed"

check "describe shows settings, positions, files, daemon state"
expect_rc 0 "$CLI" topic describe orders
for s in "topic orders" "orders.ring (1 MiB, mode 0640" "segments    4 MiB each, max record 64 KiB" \
	"tail 0" "retention 604800000 ms" "flush 250 ms or 8 MiB" "daemon      none"; do
	expect_out "$s"
done

check "unknown topics: exit 1 with the name and the create hint, every subcommand"
for c in "topic describe" "topic delete" produce consume "replay --from earliest" verify dump stat; do
	expect_rc 1 "$CLI" $c nosuch </dev/null
	expect_err '"nosuch"'
	expect_err "spillway topic create nosuch"
done

check "delete removes the ring and the data dir; the name is free again"
expect_rc 0 "$CLI" topic delete orders
[ ! -e "$ring" ] || fail "ring still there"
[ ! -e "$SPILLWAY_DATA_DIR/orders" ] || fail "data dir still there"
expect_rc 1 "$CLI" topic describe orders
expect_rc 0 "$CLI" topic create orders --ring-size 64K
expect_rc 0 "$CLI" topic delete orders
expect_rc 1 "$CLI" topic delete orders
expect_err '"orders" not found'

check "a data dir that is a file: exit 1, names the dir"
: >"$TMP/afile"
expect_rc 1 env SPILLWAY_DATA_DIR="$TMP/afile" "$CLI" topic create t1 --ring-size 64K
expect_err "$TMP/afile"
expect_err "Not a directory"
[ ! -e "$SPILLWAY_SHM_DIR/t1.ring" ] || fail "ring created despite the bad data dir"
expect_rc 1 "$CLI" --data-dir "$TMP/afile" topic list
expect_err "data dir"

check "an shm dir that is a file: exit 1, names the dir"
expect_rc 1 "$CLI" --shm-dir "$TMP/afile" topic create t2 --ring-size 64K
expect_err "$TMP/afile"
[ ! -e "$SPILLWAY_DATA_DIR/t2" ] || fail "data dir left behind by a failed create"
expect_rc 1 "$CLI" --shm-dir "$TMP/afile" topic list
expect_err "shm dir"

check "a ring with a garbage header: exit 1, the delete hint"
head -c 8192 /dev/urandom >"$SPILLWAY_SHM_DIR/junk.ring"
expect_rc 1 "$CLI" produce junk </dev/null
expect_err "not a valid Spillway ring"
expect_err "spillway topic delete junk"
expect_rc 0 "$CLI" topic delete junk

check "a damaged topic.conf (no ring): the message names topic.conf, not something else"
expect_rc 0 "$CLI" topic create broken --ring-size 64K
expect_rc 0 "$CLI" topic delete broken
mkdir -p "$SPILLWAY_DATA_DIR/broken"
printf 'ring_bytes = 64K\nsegment_bytes = banana\n' >"$SPILLWAY_DATA_DIR/broken/topic.conf"
expect_rc 1 "$CLI" consume broken
expect_err "broken/topic.conf is damaged"
rm -rf "${SPILLWAY_DATA_DIR:?}/broken"

check "global flags before the command and --flag=value work"
expect_rc 0 "$CLI" --shm-dir="$SPILLWAY_SHM_DIR" --data-dir "$SPILLWAY_DATA_DIR" topic list
expect_out "ipc"

done_ok
