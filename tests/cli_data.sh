#!/usr/bin/env bash
# cli_data.sh - produce / consume / replay with a running spillwayd: a round
# trip in every format, empty and binary input, records over max-record,
# --from POSITION and @TIME, groups that continue, --count, --ack, replay.
set -u
. "$(dirname "$0")/cli_lib.sh"

start_daemon
expect_rc 0 "$CLI" topic create t --ring-size 256K --segment-size 1M --max-record 4K --flush-ms 50
wait_attached t

check "empty input: 0 records, exit 0 (lines, raw, lenpfx)"
for f in lines raw lenpfx; do
	expect_rc 0 "$CLI" produce t --format $f </dev/null
done
expect_rc 0 "$CLI" consume t
[ ! -s "$TMP/out" ] || fail "records appeared from empty input"

check "lines round trip, --ack durable"
seq 1 3000 >"$TMP/lines"
expect_rc 0 "$CLI" produce t --ack durable "$TMP/lines"
expect_rc 0 "$CLI" consume t
cmp -s "$TMP/out" "$TMP/lines" || fail "lines differ after the round trip"

check "the round trip crossed segments: consume reads them back from disk"
n=$(ls "$SPILLWAY_DATA_DIR/t"/*.seg 2>/dev/null | wc -l)
[ "$n" -ge 1 ] || fail "no segment files"
expect_rc 0 "$CLI" consume t --count 2
[ "$(cat "$TMP/out")" = "$(printf '1\n2')" ] || fail "--count 2 gave: $(cat "$TMP/out")"

check "binary input in lines mode: split on \\n, every other byte kept (hex)"
expect_rc 0 "$CLI" topic create bin --ring-size 64K
printf 'a\000b\377\r\n\001\002\n\nlast' >"$TMP/bin"
expect_rc 0 "$CLI" produce bin "$TMP/bin"
expect_rc 0 "$CLI" consume bin --format hex
[ "$(cat "$TMP/out")" = "$(printf '610062ff0d\n0102\n\n6c617374')" ] || fail "hex: $(cat "$TMP/out")"

check "raw round trip: the whole input is one record"
head -c 3000 /dev/urandom >"$TMP/raw"
expect_rc 0 "$CLI" topic create raw --ring-size 64K
expect_rc 0 "$CLI" produce raw --format raw "$TMP/raw"
expect_rc 0 "$CLI" consume raw --format raw
cmp -s "$TMP/out" "$TMP/raw" || fail "raw differs"

check "lenpfx round trip (empty, binary and text records)"
python3 - "$TMP/lp" <<'EOF' || fail "python3 failed"
import os, struct, sys
recs = [b"", b"hello", bytes(range(256)), os.urandom(1000), b"x" * 4096]
with open(sys.argv[1], "wb") as f:
    for r in recs:
        f.write(struct.pack("<I", len(r)) + r)
EOF
expect_rc 0 "$CLI" topic create lp --ring-size 64K --max-record 16K
expect_rc 0 "$CLI" produce lp --format lenpfx <"$TMP/lp"
expect_rc 0 "$CLI" consume lp --format lenpfx
cmp -s "$TMP/out" "$TMP/lp" || fail "lenpfx differs"

check "json: one object a line, text as UTF-8, binary as base64"
expect_rc 0 "$CLI" consume lp --format json
python3 - "$TMP/out" "$TMP/lp" <<'EOF' || fail "json check failed"
import base64, json, struct, sys
out = [json.loads(l) for l in open(sys.argv[1])]
raw = open(sys.argv[2], "rb").read()
recs, i = [], 0
while i < len(raw):
    n = struct.unpack_from("<I", raw, i)[0]; recs.append(raw[i + 4:i + 4 + n]); i += 4 + n
assert len(out) == len(recs), (len(out), len(recs))
for o, r in zip(out, recs):
    for k in ("position", "timestamp_ns", "timestamp", "length", "data", "encoding"):
        assert k in o, k
    d = o["data"].encode() if o["encoding"] == "utf-8" else base64.b64decode(o["data"])
    assert d == r and o["length"] == len(r)
assert out[1]["encoding"] == "utf-8" and out[1]["data"] == "hello"
assert out[2]["encoding"] == "base64"
assert out[0]["timestamp"].endswith("Z")
EOF

check "truncated lenpfx input: exit 1, the offset named"
printf '\005\000\000\000ab' >"$TMP/trunc"
expect_rc 1 "$CLI" produce lp --format lenpfx <"$TMP/trunc"
expect_err "truncated record"

check "a line over max-record: exit 1, clear message, the lines before kept"
expect_rc 0 "$CLI" topic create small --ring-size 64K --max-record 1K
{ printf 'one\ntwo\n'; head -c 5000 /dev/zero | tr '\0' x; printf '\nthree\n'; } >"$TMP/long"
expect_rc 1 "$CLI" produce small "$TMP/long"
expect_err "over the max record of topic \"small\" (1024 bytes)"
expect_err "the 2 records before it were kept"
expect_rc 0 "$CLI" consume small
[ "$(cat "$TMP/out")" = "$(printf 'one\ntwo')" ] || fail "kept: $(cat "$TMP/out")"
head -c 2000 /dev/zero >"$TMP/bigraw"
expect_rc 1 "$CLI" produce small --format raw "$TMP/bigraw"
expect_err "is more than 1024 bytes, over the max record" # it read only that much
# With --ack, the records before it are acknowledged before it says they were
# kept (it exited at once, leaving them unspilled): without a daemon it waits.
stop_daemon
run timeout 2 "$CLI" produce small --ack durable "$TMP/long"
[ "$RC" -eq 124 ] || fail "produce --ack durable of a bad input did not wait (exit $RC)"
expect_err "waits for its durable acknowledgement"
start_daemon
wait_attached small
expect_rc 1 "$CLI" produce small --ack durable "$TMP/long"
expect_err "the 2 records before it were kept"
expect_rc 0 "$CLI" stat small --json
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["durable"] != d["tail"])' \
	"$TMP/out" || fail "not durable: $(cat "$TMP/out")"

check "--from POSITION (from json) and a position beyond the tail"
expect_rc 0 "$CLI" consume t --format json --count 3
pos=$(sed -n 3p "$TMP/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')
expect_rc 0 "$CLI" consume t --from "$pos" --count 1
[ "$(cat "$TMP/out")" = 3 ] || fail "--from $pos gave $(cat "$TMP/out")"
expect_rc 1 "$CLI" consume t --from 999999999992
expect_err "position 999999999992 is past the end of topic \"t\" (its tail is "
expect_rc 1 "$CLI" consume t --from 9223372036854775800
expect_err "position 9223372036854775800 is past the end of topic \"t\""
expect_rc 1 "$CLI" consume t --from $((pos + 8))
expect_err "no record of topic \"t\" starts at position $((pos + 8))"

check "--from @TIME: Unix seconds and ISO-8601"
expect_rc 0 "$CLI" topic create tm --ring-size 64K
printf 'old1\nold2\n' | "$CLI" produce tm || fail "produce"
sleep 0.3
ts=$(date +%s.%N)
iso=$(date -u -d "@$ts" +%Y-%m-%dT%H:%M:%S.%NZ)
sleep 0.3
printf 'new1\nnew2\n' | "$CLI" produce tm --ack spilled || fail "produce"
expect_rc 0 "$CLI" consume tm --from "@$ts"
[ "$(cat "$TMP/out")" = "$(printf 'new1\nnew2')" ] || fail "@seconds gave: $(cat "$TMP/out")"
expect_rc 0 "$CLI" consume tm --from "@$iso"
[ "$(cat "$TMP/out")" = "$(printf 'new1\nnew2')" ] || fail "@iso gave: $(cat "$TMP/out")"
expect_rc 0 "$CLI" consume tm --from @-1h
[ "$(wc -l <"$TMP/out")" -eq 4 ] || fail "@-1h gave $(wc -l <"$TMP/out") lines"

check "groups: consume --group twice continues where the first stopped"
expect_rc 0 "$CLI" consume t --group g1 --count 5
[ "$(cat "$TMP/out")" = "$(seq 1 5)" ] || fail "first group run: $(head -3 "$TMP/out")"
expect_rc 0 "$CLI" consume t --group g1 --count 5
[ "$(cat "$TMP/out")" = "$(seq 6 10)" ] || fail "second group run: $(head -3 "$TMP/out")"
expect_rc 0 "$CLI" consume t --group g1
[ "$(wc -l <"$TMP/out")" -eq 2990 ] || fail "the rest: $(wc -l <"$TMP/out") lines"
expect_rc 0 "$CLI" consume t --group g1
[ ! -s "$TMP/out" ] || fail "a caught-up group read more"
expect_rc 0 "$CLI" consume t --group g2 --from latest
expect_rc 0 "$CLI" topic describe t
expect_out "group g1"
expect_out "group g2"

check "groups: a follower killed -9 reads again at most its last second, not all it had read"
# It committed only at exit: killed, it read everything since it started again.
expect_rc 0 "$CLI" consume t --group gk --count 100
"$CLI" consume t --follow --group gk >"$TMP/kout" 2>&1 &
f=$!
for _ in $(seq 1 250); do [ "$(wc -l <"$TMP/kout")" -ge 2900 ] && break; sleep 0.02; done
sleep 1.5 # a commit
kill -KILL "$f"
wait "$f" 2>/dev/null
expect_rc 0 "$CLI" consume t --group gk
[ ! -s "$TMP/out" ] || fail "after kill -9 the group read $(wc -l <"$TMP/out") records again"

check "groups: one reader at a time: a second consume --group is refused while the first reads"
# Two readers of one group each read everything, and the last commit won, even
# backwards: a group is now one reader's until it exits (spill/group.c).
"$CLI" consume t --follow --group g1b >"$TMP/bout" 2>&1 &
f=$!
for _ in $(seq 1 250); do [ "$(wc -l <"$TMP/bout")" -ge 3000 ] && break; sleep 0.02; done
[ "$(wc -l <"$TMP/bout")" -eq 3000 ] || fail "the follower read $(wc -l <"$TMP/bout") lines"
expect_rc 1 "$CLI" consume t --group g1b --count 1
expect_err "group \"g1b\" of topic \"t\" is being read by another reader (pid $f): a group has one reader at a time"
[ ! -s "$TMP/out" ] || fail "the second reader printed records"
expect_rc 1 "$CLI" consume t --group g1b --from earliest --count 1
[ ! -s "$TMP/out" ] || fail "the second reader (--from) printed records"
# Held, with or without a position committed yet (the follower commits about once a
# second): stat lists it, and who reads it.
expect_rc 0 "$CLI" stat t
grep "group g1b:" "$TMP/out" | grep -q ", being read (pid $f)" || fail "stat: $(grep "group g1b" "$TMP/out")"
expect_rc 0 "$CLI" stat t --json
expect_out "{\"group\":\"g1b\",\"reading\":true,\"reader_pid\":$f,"
sleep 1.5 # the follower's commit (about once a second)
kill -STOP "$f" # a stopped reader keeps its group (P1), and is called stopped
for _ in $(seq 1 100); do grep -q '^State:.*stopped' "/proc/$f/status" && break; sleep 0.02; done
expect_rc 1 "$CLI" consume t --group g1b --count 1
expect_err "is being read by another reader (pid $f, STOPPED: SIGSTOP or a debugger; it holds the group until it runs and exits)"
expect_rc 0 "$CLI" stat t
grep "group g1b:" "$TMP/out" | grep -q ", being read (pid $f, STOPPED: its reader holds the group, reading nothing)" ||
	fail "stat: $(grep "group g1b" "$TMP/out")"
kill -KILL "$f"
wait "$f" 2>/dev/null
expect_rc 0 "$CLI" consume t --group g1b --count 1 # the kernel let it go
[ ! -s "$TMP/out" ] || fail "after the follower, the group read $(cat "$TMP/out")"
expect_rc 0 "$CLI" stat t --json
expect_out '{"group":"g1b","reading":false'

check "groups: a follower whose group lock file is removed stops within 0.2 s (exit 1)"
# Removing the file let a second reader in while the first went on reading, and
# took the group back later behind its back.
expect_rc 0 "$CLI" topic create tl
seq 1 10 >"$TMP/l10"
expect_rc 0 "$CLI" produce tl --ack spilled "$TMP/l10"
"$CLI" consume tl --follow --group gl >"$TMP/lout" 2>"$TMP/lerr" &
f=$!
for _ in $(seq 1 250); do [ "$(wc -l <"$TMP/lout")" -ge 10 ] && break; sleep 0.02; done
rm "$SPILLWAY_DATA_DIR/tl/groups/.gl.reader"
# Idle, it notices without a record to commit (it used to print the next batch
# beside the group's new reader first).
for _ in $(seq 1 250); do kill -0 "$f" 2>/dev/null || break; sleep 0.02; done
kill -KILL "$f" 2>/dev/null
rc=0
wait "$f" || rc=$?
[ "$rc" -eq 1 ] || fail "the follower exited $rc: $(cat "$TMP/lerr")"
grep -q "was removed or replaced while this reader held the group, so another reader may hold it now: not committed; stopping" "$TMP/lerr" ||
	fail "the follower said: $(cat "$TMP/lerr")"
[ "$(wc -l <"$TMP/lout")" -eq 10 ] || fail "the follower printed $(wc -l <"$TMP/lout") lines"
# A FIFO planted as a lock file is named, not blamed on the start position.
mkfifo "$SPILLWAY_DATA_DIR/tl/groups/.gf2.reader"
expect_rc 1 "$CLI" consume tl --group gf2 --count 1
expect_err "groups/.gf2.reader: not a regular file (remove it)"

check "groups: a damaged group file is named, not blamed on an index"
expect_rc 0 "$CLI" consume t --group gd --count 3
printf 'Z' | dd of="$SPILLWAY_DATA_DIR/t/groups/gd" bs=1 seek=8 conv=notrunc status=none
expect_rc 1 "$CLI" consume t --group gd --count 3
expect_err "group \"gd\" of topic \"t\": $SPILLWAY_DATA_DIR/t/groups/gd cannot be read (Bad message: damaged"
expect_rc 0 "$CLI" consume t --group gd --from earliest --count 3
expect_rc 0 "$CLI" consume t --group gd --count 3
[ "$(cat "$TMP/out")" = "$(seq 4 6)" ] || fail "after a new commit: $(head -3 "$TMP/out")"

check "groups: a groups/ dir that is a link or a file: stat and describe say they cannot list it"
# They showed no group at all, exit 0, while every group call failed (ELOOP).
mv "$SPILLWAY_DATA_DIR/t/groups" "$SPILLWAY_DATA_DIR/t/groups.real"
ln -s groups.real "$SPILLWAY_DATA_DIR/t/groups"
expect_rc 0 "$CLI" stat t
expect_out "groups: cannot list the topic's groups/ dir (Too many levels of symbolic links): none shown"
expect_rc 0 "$CLI" stat t --json
expect_out '"groups_error":"Too many levels of symbolic links","groups":[]'
expect_rc 0 "$CLI" topic describe t
expect_out "groups      cannot list $SPILLWAY_DATA_DIR/t/groups (Too many levels of symbolic links)"
rm "$SPILLWAY_DATA_DIR/t/groups"
: >"$SPILLWAY_DATA_DIR/t/groups"
expect_rc 0 "$CLI" stat t
expect_out "groups: cannot list the topic's groups/ dir (Not a directory): none shown"
rm "$SPILLWAY_DATA_DIR/t/groups"
mv "$SPILLWAY_DATA_DIR/t/groups.real" "$SPILLWAY_DATA_DIR/t/groups"
expect_rc 0 "$CLI" stat t
expect_out "group gd: position"

check "groups: output that fails (disk full, a closed stdout or pipe) commits nothing, says why"
# The group was committed past records that were never written, and a follower
# writing to a full disk exited 0 without a word; the errors read "Unknown error -28".
RC=0
"$CLI" consume t --group gf --count 3 >/dev/full 2>"$TMP/err" || RC=$?
[ "$RC" -eq 1 ] || fail "consume to /dev/full exited $RC"
expect_err 'writing records of topic "t": No space left on device; the group was not committed'
"$CLI" consume t --follow --group gf >/dev/full 2>"$TMP/ferr" &
f=$!
sleep 0.5
kill -TERM "$f"
rc=0
wait "$f" || rc=$?
[ "$rc" -eq 1 ] || fail "a follower to /dev/full exited $rc on SIGTERM"
grep -q "No space left on device; the group was not committed" "$TMP/ferr" ||
	fail "the follower said: $(cat "$TMP/ferr")"
RC=0
"$CLI" consume t --group gf --count 3 >&- 2>"$TMP/err" || RC=$?
[ "$RC" -eq 1 ] || fail "consume to a closed stdout exited $RC"
expect_err "Bad file descriptor; the group was not committed"
(trap '' PIPE; sleep 0.3; "$CLI" consume t --group gf --count 3 2>"$TMP/perr"; echo $? >"$TMP/prc") | true
[ "$(cat "$TMP/prc")" = 1 ] || fail "consume into a closed pipe (SIGPIPE ignored) exited $(cat "$TMP/prc")"
[ ! -s "$TMP/perr" ] || fail "a closed pipe was reported: $(cat "$TMP/perr")"
expect_rc 0 "$CLI" consume t --group gf --count 3
[ "$(cat "$TMP/out")" = "$(seq 1 3)" ] || fail "the group moved: $(head -3 "$TMP/out")"
RC=0
"$CLI" replay t --from earliest -o /dev/full 2>"$TMP/err" || RC=$?
[ "$RC" -eq 1 ] || fail "replay -o /dev/full exited $RC"
expect_err 'writing records of topic "t" to /dev/full: No space left on device'

check "replay --to 0 and --to @0 read nothing (0 was the reader's 'no bound': everything)"
expect_rc 0 "$CLI" replay t --from earliest --to 0
[ ! -s "$TMP/out" ] || fail "--to 0 read $(wc -l <"$TMP/out") records"
expect_rc 0 "$CLI" replay t --from earliest --to @0
[ ! -s "$TMP/out" ] || fail "--to @0 read $(wc -l <"$TMP/out") records"

check "replay: a bounded range to a file, no progress bar off a terminal"
expect_rc 0 "$CLI" consume t --format json --count 101
to=$(sed -n 101p "$TMP/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')
expect_rc 0 "$CLI" replay t --from earliest --to "$to" -o "$TMP/replayed"
[ ! -s "$TMP/err" ] || fail "replay wrote to stderr off a terminal"
[ "$(cat "$TMP/replayed")" = "$(seq 1 100)" ] || fail "replay range"
expect_rc 0 "$CLI" replay t --from "$pos" --to "$to" --rate 20000/s --format hex
[ "$(wc -l <"$TMP/out")" -eq 98 ] || fail "replay from $pos: $(wc -l <"$TMP/out") lines"
expect_rc 0 "$CLI" replay tm --from "@$ts" --to "@$(($(date +%s) + 2))" # whole seconds: round up
[ "$(cat "$TMP/out")" = "$(printf 'new1\nnew2')" ] || fail "replay by time: $(cat "$TMP/out")"

check "--ack on a --no-spill topic: exit 1, says why"
expect_rc 0 "$CLI" topic create ipc --ring-size 64K --no-spill
echo x >"$TMP/x"
expect_rc 1 "$CLI" produce ipc --ack durable "$TMP/x"
expect_err "no-spill"

check "a follower lapped in a no-spill topic is told how many bytes it lost"
# The follower's stdout pipe is not read for 1.5 s, so it stalls while 2.7 MB go
# through the 64 KiB ring, which the daemon reclaims without writing anything.
( "$CLI" consume ipc --follow --format raw 2>"$TMP/lap.err" | (sleep 1.5; cat >/dev/null) ) &
LP=$!
sleep 0.3
head -c 2000000 /dev/zero | base64 -w 76 | "$CLI" produce ipc || fail "produce ipc"
wait_gone "$LP" 20
grep -q "bytes lost" "$TMP/lap.err" || fail "the lapped follower said: $(cat "$TMP/lap.err")"
echo "  follower: $(cat "$TMP/lap.err")"

stop_daemon

check "groups: no room for a new group's lock file: the group is named, not the reading"
# On a data dir out of inodes, consume --group (no --from) said only 'reading
# topic "u": No space left on device'.
SMALL="$TMP/small"
mkdir -p "$SMALL"
mount -t tmpfs -o size=4m,nr_inodes=64 tmpfs "$SMALL" || fail "mount -t tmpfs on $SMALL (tests run as root)"
(
	export SPILLWAY_DATA_DIR="$SMALL/data"
	expect_rc 0 "$CLI" topic create u --ring-size 64K --max-record 1K
	echo one | "$CLI" produce u || fail "produce u"
	mkdir -p "$SMALL/fill"
	for i in $(seq 1 64); do { : >"$SMALL/fill/$i"; } 2>/dev/null || break; done
	expect_rc 1 "$CLI" consume u --group b --count 1
	expect_err "cannot take group \"b\" of topic \"u\": its lock file"
	expect_err "No space left on device"
	rm -rf "$SMALL/fill"
	expect_rc 0 "$CLI" consume u --group b --count 1
	[ "$(cat "$TMP/out")" = one ] || fail "after room came back: $(cat "$TMP/out")"
	"$CLI" topic delete u >/dev/null 2>&1
)
rc=$?
umount "$SMALL"
[ "$rc" -eq 0 ] || exit "$rc"
done_ok
