#!/usr/bin/env bash
# cli_daemon.sh - the CLI when spillwayd is missing or the topic goes away:
# a producer blocked on a full ring says so once (with the hint) and keeps
# what it sent; a follower whose topic is deleted exits with a message.
set -u
. "$(dirname "$0")/cli_lib.sh"

check "no daemon: produce blocks on a full ring, says so ONCE with the hint"
expect_rc 0 "$CLI" topic create tiny --ring-size 64K --max-record 1K
seq 1 20000 >"$TMP/many"
run timeout 2 "$CLI" produce tiny "$TMP/many"
[ "$RC" -eq 124 ] || fail "produce did not block (exit $RC)"
[ "$(grep -c 'no spillwayd is running' "$TMP/err")" -eq 1 ] || fail "the message is not there exactly once"
expect_err 'topic "tiny" is full'
expect_err "Start it: spillwayd --shm-dir $SPILLWAY_SHM_DIR --data-dir $SPILLWAY_DATA_DIR"
sent=$(sed -n 's/.*interrupted: \([0-9]*\) records.*/\1/p' "$TMP/err")
[ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" -lt 20000 ] || fail "records sent before blocking: '$sent'"

check "the records sent before the block are kept; a daemon drains them"
expect_rc 0 "$CLI" consume tiny
[ "$(wc -l <"$TMP/out")" -eq "$sent" ] || fail "ring holds $(wc -l <"$TMP/out"), sent $sent"
start_daemon
wait_attached tiny
expect_rc 0 "$CLI" produce tiny --ack durable "$TMP/many"
[ ! -s "$TMP/err" ] || fail "a warning with a daemon running"
expect_rc 0 "$CLI" consume tiny
[ "$(wc -l <"$TMP/out")" -eq $((sent + 20000)) ] || fail "after the daemon: $(wc -l <"$TMP/out") records"

check "--ack durable without a daemon: waits, says so once"
stop_daemon
echo late >"$TMP/one"
run timeout 1.5 "$CLI" produce tiny --ack durable "$TMP/one"
[ "$RC" -eq 124 ] || fail "ack wait did not block (exit $RC)"
[ "$(grep -c 'no spillwayd is running' "$TMP/err")" -eq 1 ] || fail "ack: the message is not there once"
expect_err "durable acknowledgement"

check "a topic deleted under a produce waiting for room: exit 1 with the reason (it waited for ever)"
expect_rc 0 "$CLI" topic create del --ring-size 64K --max-record 1K
"$CLI" produce del "$TMP/many" 2>"$TMP/del.err" &
ppid=$!
BGPIDS+=("$ppid")
for _ in $(seq 1 250); do grep -q "no spillwayd is running" "$TMP/del.err" && break; sleep 0.02; done
grep -q "no spillwayd is running" "$TMP/del.err" || fail "produce did not block: $(cat "$TMP/del.err")"
expect_rc 0 "$CLI" topic delete del
wait_gone "$ppid" 5
rc=0
wait "$ppid" || rc=$?
[ "$rc" -eq 1 ] || fail "produce exit $rc"
grep -q 'topic "del" was deleted (its ring unlinked or replaced) before record [0-9]* of' "$TMP/del.err" ||
	fail "produce said: $(cat "$TMP/del.err")"

check "stat and describe say no daemon runs"
expect_rc 0 "$CLI" stat tiny
expect_out "daemon NOT running"
expect_rc 0 "$CLI" topic describe tiny
expect_out "daemon      none"

check "a topic deleted while a consumer follows it: the follower exits 1, no hang"
start_daemon
expect_rc 0 "$CLI" topic create f --ring-size 64K
wait_attached f
seq 1 10 >"$TMP/ten"
expect_rc 0 "$CLI" produce f --ack spilled "$TMP/ten"
: >"$TMP/fout"
"$CLI" consume f --follow >>"$TMP/fout" 2>"$TMP/ferr" &
fpid=$!
BGPIDS+=("$fpid")
for _ in $(seq 1 250); do [ "$(wc -l <"$TMP/fout")" -ge 10 ] && break; sleep 0.02; done
[ "$(wc -l <"$TMP/fout")" -eq 10 ] || fail "the follower did not print the 10 records"
seq 11 12 | "$CLI" produce f || fail "produce while following"
for _ in $(seq 1 250); do [ "$(wc -l <"$TMP/fout")" -ge 12 ] && break; sleep 0.02; done
[ "$(wc -l <"$TMP/fout")" -eq 12 ] || fail "the follower missed live records"
expect_rc 0 "$CLI" topic delete f
wait_gone "$fpid" 5
wait "$fpid"
frc=$?
[ "$frc" -eq 1 ] || fail "the follower exited $frc"
grep -qF 'topic "f" was deleted, or its ring removed or replaced, while following it' "$TMP/ferr" || fail "follower: $(cat "$TMP/ferr")"

check "a durable ack awaited while the topic is deleted with --keep-log: it comes (the daemon's last sync)"
# The deleted mark made the wait end at once ('it will not come') while the
# daemon, still attached, then synced the record, which the kept log holds: a
# caller would have sent it twice (a review, 2026-12-05).
expect_rc 0 "$CLI" topic create dk --ring-size 64K --flush-ms 8000
wait_attached dk
echo hello | "$CLI" produce dk --ack durable 2>"$TMP/dk.err" &
dpid=$!
BGPIDS+=("$dpid")
sleep 0.5
expect_rc 0 "$CLI" topic delete dk --keep-log
wait_gone "$dpid" 15
rc=0
wait "$dpid" || rc=$?
[ "$rc" -eq 0 ] || fail "produce --ack durable exited $rc: $(cat "$TMP/dk.err")"
wait_attached dk # the ring made again at the log's end
expect_rc 0 "$CLI" consume dk --from earliest --count 1
[ "$(cat "$TMP/out")" = hello ] || fail "the kept log holds: $(cat "$TMP/out")"
expect_rc 0 "$CLI" topic delete dk

check "a follower stopped with SIGTERM exits 0 and commits its group"
expect_rc 0 "$CLI" topic create g --ring-size 64K
wait_attached g
expect_rc 0 "$CLI" produce g --ack spilled "$TMP/ten"
: >"$TMP/gout"
"$CLI" consume g --follow --group grp >>"$TMP/gout" 2>"$TMP/gerr" &
gpid=$!
BGPIDS+=("$gpid")
for _ in $(seq 1 250); do [ "$(wc -l <"$TMP/gout")" -ge 10 ] && break; sleep 0.02; done
kill -TERM "$gpid"
wait_gone "$gpid" 5
wait "$gpid"
grc=$?
[ "$grc" -eq 0 ] || fail "SIGTERM'd follower exited $grc: $(cat "$TMP/gerr")"
echo 11 | "$CLI" produce g || fail "produce"
expect_rc 0 "$CLI" consume g --group grp
[ "$(cat "$TMP/out")" = 11 ] || fail "the group did not continue after the follower: $(cat "$TMP/out")"

check "a ring recreated at start gets its group-shared topic dir's group back (daemon/topics.c)"
expect_rc 0 "$CLI" produce g --ack durable "$TMP/ten"
stop_daemon
gid=$(getent group nogroup | cut -d: -f3)
[ -n "$gid" ] || fail "no group nogroup on this machine"
chgrp nogroup "$SPILLWAY_DATA_DIR/g"
chmod 0770 "$SPILLWAY_DATA_DIR/g"
rm -f "$SPILLWAY_SHM_DIR/g.ring" # as after a reboot: /dev/shm is empty
start_daemon
for _ in $(seq 1 250); do grep -q "topic g: ring made again" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "topic g: ring made again" "$TMP/daemon.log" || fail "no ring recreated: $(cat "$TMP/daemon.log")"
[ "$(stat -c %g "$SPILLWAY_SHM_DIR/g.ring")" = "$gid" ] ||
	fail "the ring's group is $(stat -c %g "$SPILLWAY_SHM_DIR/g.ring"), not $gid"
grep -q "cannot give" "$TMP/daemon.log" && fail "$(grep 'cannot give' "$TMP/daemon.log")"

check "a hostile tail of 0 in the ring header: the scan error is logged once, not every loop"
wait_attached g
expect_rc 0 "$CLI" produce g --ack spilled "$TMP/ten"
python3 - "$SPILLWAY_SHM_DIR/g.ring" <<'PY'
import mmap, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 4096)
    m[128:136] = bytes(8)  # ring_layout.h: tail, alone on the header's second line
    m.close()
PY
echo more | "$CLI" produce g >/dev/null 2>&1 &
BGPIDS+=("$!")
sleep 1.5
n=$(grep -c "topic g: scan at" "$TMP/daemon.log")
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || fail "the scan error was logged $n times in 1.5 s"
kill -0 "$DPID" 2>/dev/null || fail "spillwayd exited"

check "a hostile tail past the limit: spillwayd cuts nothing and says so once; stat and produce name it"
# spillwayd walked past the limit into the unreclaimed lap, cut its records as
# CORRUPT, and stopped reclaiming for good; producers waited, told the disk was
# slow (a review, 2026-12-05).
expect_rc 0 "$CLI" topic create tp --ring-size 64K
wait_attached tp
seq 1 100 | "$CLI" produce tp --ack spilled || fail "produce tp"
python3 - "$SPILLWAY_SHM_DIR/tp.ring" <<'PY'
import mmap, struct, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 4096)
    limit = struct.unpack_from("<Q", m, 384)[0]  # ring_layout.h: limit, the 4th line
    struct.pack_into("<Q", m, 128, limit + 5 * 65536)  # tail
    m.close()
PY
cp "$SPILLWAY_SHM_DIR/tp.ring" "$TMP/tp.before"
run timeout 2 "$CLI" produce tp "$TMP/ten"
[ "$RC" -eq 124 ] || fail "produce into the garbage header exited $RC"
expect_err "the ring's header is garbage: its tail"
expect_rc 0 "$CLI" stat tp
expect_out "GARBAGE HEADER: tail"
sleep 0.5
[ "$(grep -c "topic tp: the ring's header is garbage: its tail [0-9]* is past its limit" "$TMP/daemon.log")" -eq 1 ] ||
	fail "spillwayd said: $(grep 'topic tp' "$TMP/daemon.log" | tail -3)"
cmp -s <(tail -c 65536 "$SPILLWAY_SHM_DIR/tp.ring") <(tail -c 65536 "$TMP/tp.before") ||
	fail "the ring's records were changed"
expect_rc 1 "$CLI" verify tp
expect_out "the ring's header breaks its invariant"
expect_rc 0 "$CLI" topic delete tp

check "a hostile reclaim bound 2^36 past the disk log: attach refuses it at once, other topics go on"
stop_daemon
python3 - "$SPILLWAY_SHM_DIR/g.ring" <<'PY'
import mmap, struct, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 4096)
    spilled = struct.unpack_from("<Q", m, 512)[0]  # ring_layout.h: spilled, 5th line
    far = spilled + (1 << 36)
    struct.pack_into("<Q", m, 128, far)  # tail
    struct.pack_into("<Q", m, 256, far)  # reclaimed
    struct.pack_into("<Q", m, 384, far + 65536)  # limit: as a finished reclaim leaves it
    m.close()
PY
start_daemon debug
wait_attached tiny
for _ in $(seq 1 250); do grep -q "topic g: the ring says .* was reclaimed" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "topic g: the ring says [0-9]* was reclaimed, 68719476736 bytes past the disk log" "$TMP/daemon.log" ||
	fail "no refusal: $(grep 'topic g' "$TMP/daemon.log" | tail -3)"
grep -q "topic g: attached" "$TMP/daemon.log" && fail "attached over the hostile bound"
# The next tries say the same words on the same files: not logged again.
refusals() { grep -c "topic g: the ring says" "$TMP/daemon.log"; }
recoveries() { grep -c "topic g: recovering the disk log" "$TMP/daemon.log"; }
sleep 2.2
[ "$(refusals)" -eq 1 ] && [ "$(recoveries)" -eq 1 ] ||
	fail "after 2 s: recovery ran $(recoveries) times (1), the refusal said $(refusals) times (1)"
sleep 1.5 # more rescans: nothing changed, so neither recovery nor a message
[ "$(refusals)" -eq 1 ] && [ "$(recoveries)" -eq 1 ] ||
	fail "a settled refusal: recovery ran $(recoveries) times (1), said $(refusals) times (1)"
echo ok | "$CLI" produce tiny --ack spilled || fail "another topic does not spill"

check "a refused attach is tried again when the topic dir's files change, and when the ring is replaced"
again() { # N WHAT: recovery reaches N and the refusal, said again, N too; both stay
	for _ in $(seq 1 150); do [ "$(recoveries)" -ge "$1" ] && break; sleep 0.02; done
	sleep 1.2
	[ "$(recoveries)" -eq "$1" ] && [ "$(refusals)" -eq "$1" ] ||
		fail "$2: recovery ran $(recoveries) times (not $1), said $(refusals) times (not $1)"
}
touch "$SPILLWAY_DATA_DIR/g/restored" # as an operator restoring a segment would
again 2 "a file added to the topic dir"
rm -f "$SPILLWAY_DATA_DIR/g/restored"
again 3 "a file removed"
cp "$SPILLWAY_SHM_DIR/g.ring" "$TMP/g.ring.copy"
mv "$TMP/g.ring.copy" "$SPILLWAY_SHM_DIR/g.ring" # the same bytes, another inode
again 4 "a replaced ring"
[ -d "$SPILLWAY_DATA_DIR/g/groups" ] || fail "no groups/ (the follower above commits one)"
echo 8 >"$SPILLWAY_DATA_DIR/g/groups/late" # a group committing: not the log changing
again 4 "a group file written in groups/"
grep -q "topic g: attached" "$TMP/daemon.log" && fail "attached over the hostile bound"
kill -0 "$DPID" 2>/dev/null || fail "spillwayd exited"

check "a hostile limit below the reclaim bound: refused, the ring untouched (it was zeroed whole)"
# ring_reclaim_repair took it for a reclaim a killed daemon left half done and
# zeroed from limit - ring to reclaimed: the whole ring, records not yet
# spilled included, which spilling then aborted as a dead producer's claim.
expect_rc 0 "$CLI" topic create lowlim --ring-size 64K
wait_attached lowlim
seq 1 20000 | "$CLI" produce lowlim --ack spilled || fail "produce lowlim" # laps: reclaimed > 0
stop_daemon
seq 1 50 | "$CLI" produce lowlim || fail "produce lowlim, no daemon" # in the ring only
python3 - "$SPILLWAY_SHM_DIR/lowlim.ring" <<'PY'
import mmap, struct, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 4096)
    struct.pack_into("<Q", m, 384, 0)  # limit (ring_layout.h: the 4th line)
    m.close()
PY
cp "$SPILLWAY_SHM_DIR/lowlim.ring" "$TMP/lowlim.before"
start_daemon debug
wait_attached tiny
for _ in $(seq 1 250); do grep -q "topic lowlim: the ring's header is corrupt" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "topic lowlim: the ring's header is corrupt: its limit 0 is not between its reclaim bound [0-9]* and that plus the ring ([0-9]*); nothing in the ring was changed; not attached" "$TMP/daemon.log" ||
	fail "no refusal: $(grep 'topic lowlim' "$TMP/daemon.log" | tail -3)"
cmp -s "$SPILLWAY_SHM_DIR/lowlim.ring" "$TMP/lowlim.before" || fail "the ring was changed"
grep -q "topic lowlim: attached" "$TMP/daemon.log" && fail "attached over the hostile limit"
expect_rc 0 "$CLI" topic delete lowlim

check "durable data gone from the last segment: refused, and settled (recovery rebuilds nothing twice)"
expect_rc 0 "$CLI" topic create lost --ring-size 64K --segment-size 1M
wait_attached lost
seq 1 20000 | "$CLI" produce lost --ack durable || fail "produce"
stop_daemon
truncate -s 200000 "$SPILLWAY_DATA_DIR/lost/00000000000000000000.seg" # below the checkpoint
start_daemon debug
wait_attached tiny
lost_recoveries() { grep -c "topic lost: recovering the disk log" "$TMP/daemon.log"; }
lost_said() { grep -c "topic lost: .* is durable (checkpoint): refusing to cut" "$TMP/daemon.log"; }
for _ in $(seq 1 150); do [ "$(lost_said)" -ge 1 ] && break; sleep 0.02; done
[ "$(lost_said)" -ge 1 ] || fail "no refusal: $(grep 'topic lost' "$TMP/daemon.log" | tail -2)"
sleep 2.5 # the first recovery rewrote the damaged index: one more run, then settled
n=$(lost_recoveries)
[ "$n" -le 2 ] && [ "$(lost_said)" -le 2 ] ||
	fail "recovery ran $n times in 2.5 s, the refusal said $(lost_said) times (at most 2)"
sleep 1.5
[ "$(lost_recoveries)" -eq "$n" ] || fail "a settled refusal recovered again: $(lost_recoveries) runs"

check "a ring moved aside and replaced by a symlink to it: detached, the link not followed"
expect_rc 0 "$CLI" topic create lnk --ring-size 64K
wait_attached lnk
# In one rename, so that no rescan sees the name missing: a second link
# "aside" (no .ring: no topic of its own), and over the ring's name a symlink
# to it, which stat() follows to the very inode the daemon attached.
ln "$SPILLWAY_SHM_DIR/lnk.ring" "$SPILLWAY_SHM_DIR/aside"
ln -s aside "$SPILLWAY_SHM_DIR/lnk.tmp"
mv -T "$SPILLWAY_SHM_DIR/lnk.tmp" "$SPILLWAY_SHM_DIR/lnk.ring"
for _ in $(seq 1 150); do grep -q "topic lnk: detaching" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "topic lnk: detaching (ring deleted or replaced)" "$TMP/daemon.log" ||
	fail "still attached through a symlink: $(grep 'topic lnk' "$TMP/daemon.log" | tail -2)"
sleep 1.2
[ "$(grep -c "topic lnk: attached" "$TMP/daemon.log")" -eq 1 ] || fail "attached through the symlink"
rm -f "$SPILLWAY_SHM_DIR/lnk.ring" "$SPILLWAY_SHM_DIR/aside"

check "a ring truncated under spillwayd: that topic is detached, the daemon lives, other topics spill"
expect_rc 0 "$CLI" topic create cut --ring-size 64K
wait_attached cut
expect_rc 0 "$CLI" produce cut --ack spilled "$TMP/ten"
"$CLI" consume cut --follow >"$TMP/follow.out" 2>"$TMP/follow.err" &
FOLLOWER=$!
BGPIDS+=("$FOLLOWER")
for _ in $(seq 1 250); do [ -s "$TMP/follow.out" ] && break; sleep 0.02; done
[ -s "$TMP/follow.out" ] || fail "the follower read nothing"
truncate -s 0 "$SPILLWAY_SHM_DIR/cut.ring" # its header page too: the heartbeat touches it
for _ in $(seq 1 250); do grep -q "topic cut: the ring file was truncated" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "topic cut: the ring file was truncated" "$TMP/daemon.log" ||
	fail "not detected: $(grep 'topic cut' "$TMP/daemon.log" | tail -3)"
kill -0 "$DPID" 2>/dev/null || fail "spillwayd died"
echo ok | "$CLI" produce tiny --ack spilled || fail "another topic does not spill"
rc=0
wait "$FOLLOWER" || rc=$?
[ "$rc" -eq 135 ] || fail "the follower of the truncated ring exited $rc, not by SIGBUS (135)"
grep -q "^spillway: SIGBUS at 0x[0-9a-f]*: a file this command maps was cut short under it" \
	"$TMP/follow.err" || fail "the follower did not say why it stopped: $(cat "$TMP/follow.err")"
"$CLI" consume tiny --follow >/dev/null 2>"$TMP/follow.err" &
FOLLOWER=$!
BGPIDS+=("$FOLLOWER")
sleep 0.3
kill -BUS "$FOLLOWER"
rc=0
wait "$FOLLOWER" || rc=$?
[ "$rc" -eq 135 ] || fail "a follower sent SIGBUS exited $rc, not by the signal (135): it went on"
grep -q "SIGBUS" "$TMP/follow.err" && fail "a sent SIGBUS was taken for a truncated ring"

check "a durable checkpoint of another owner: recovery refuses, cuts nothing, verify says BAD"
# It was taken for "no checkpoint": recovery then cut acknowledged-durable bytes
# of a torn last segment, filled the hole as aborted and verify said clean.
expect_rc 0 "$CLI" topic create ck --ring-size 64K --segment-size 256K
wait_attached ck
seq 1 10000 | "$CLI" produce ck --ack durable || fail "produce --ack durable"
stop_daemon
chown nobody "$SPILLWAY_DATA_DIR/ck/durable"
seg=$(ls "$SPILLWAY_DATA_DIR"/ck/*.seg | tail -1)
truncate -s 100000 "$seg"
before=$(cd "$SPILLWAY_DATA_DIR/ck" && ls -l --time-style=+%s.%N -- *.seg *.idx | md5sum)
start_daemon
for _ in $(seq 1 250); do grep -q "durable checkpoint cannot be trusted" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "ck/durable: Operation not permitted: the durable checkpoint cannot be trusted" "$TMP/daemon.log" ||
	fail "not refused: $(grep 'topic ck' "$TMP/daemon.log" | tail -3)"
[ "$(cd "$SPILLWAY_DATA_DIR/ck" && ls -l --time-style=+%s.%N -- *.seg *.idx | md5sum)" = "$before" ] ||
	fail "recovery changed the segments or indexes: $(grep 'topic ck' "$TMP/daemon.log" | tail -3)"
grep -q "topic ck: attached" "$TMP/daemon.log" && fail "attached over an untrusted checkpoint"
# A refused topic is no topic without a daemon: no "Start it" (the CLI said so),
# and the CLI says why, as the daemon published it (the reason was only in its log).
expect_rc 0 "$CLI" stat ck
expect_out "daemon NOT attached: spillwayd (pid $DPID) serves this data dir but refused the topic: "
expect_out "ck/durable: Operation not permitted: the durable checkpoint cannot be trusted"
expect_rc 0 "$CLI" stat ck --json
grep -q '"refused":"[^"]*the durable checkpoint cannot be trusted' "$TMP/out" ||
	fail "stat --json: $(cat "$TMP/out")"
expect_rc 0 "$CLI" topic list
grep -q "^ck .*pid $DPID refused\$" "$TMP/out" || fail "list: $(grep '^ck' "$TMP/out")"
run timeout 2 "$CLI" produce ck --ack spilled "$TMP/ten"
expect_err "waits for its spilled acknowledgement: spillwayd (pid $DPID) serves this data dir but refused the topic: "
grep -q "Start it" "$TMP/err" && fail "told to start a daemon that runs"
# The records it sent moved the ring's tail: the attach was tried again, and the
# same refusal was logged at every rescan while producers wrote.
[ "$(grep -c "durable checkpoint cannot be trusted" "$TMP/daemon.log")" -eq 1 ] ||
	fail "the refusal was logged again: $(grep -c "cannot be trusted" "$TMP/daemon.log") times"
# Another user's file there says nothing (not the daemon's).
cp "$SPILLWAY_DATA_DIR/.spillwayd.refused" "$TMP/refused.keep"
printf 'ck\tforged reason\n' >"$SPILLWAY_DATA_DIR/.spillwayd.refused"
chown nobody "$SPILLWAY_DATA_DIR/.spillwayd.refused"
expect_rc 0 "$CLI" stat ck
expect_out "serves this data dir but has not attached the topic; the reason it published cannot be read here"
grep -q "forged" "$TMP/out" && fail "a foreign file's reason was shown"
cp "$TMP/refused.keep" "$SPILLWAY_DATA_DIR/.spillwayd.refused"
chown root "$SPILLWAY_DATA_DIR/.spillwayd.refused"
run "$CLI" verify ck
[ "$RC" -ne 0 ] || fail "verify called the log clean: $(cat "$TMP/out")"
# (Where the bad range starts depends on where the writer cut its index entries.)
grep -q "^BAD .*ck/0*\.seg: positions [0-9]*\.\.[0-9]* .*the file ends at 100000" "$TMP/out" ||
	fail "verify: $(tail -3 "$TMP/out")"
# Mended, the reason changes with the next refusal (the segment stays short of
# the checkpoint), and goes once the topic attaches (checkpoint removed).
chown root "$SPILLWAY_DATA_DIR/ck/durable"
for _ in $(seq 1 250); do
	"$CLI" stat ck >"$TMP/out" 2>&1
	grep -q "refused the topic: .*durable" "$TMP/out" && ! grep -q "cannot be trusted" "$TMP/out" &&
		break
	sleep 0.02
done
grep -q "refused the topic: " "$TMP/out" && ! grep -q "cannot be trusted" "$TMP/out" ||
	fail "the reason did not follow the next refusal: $(grep daemon "$TMP/out")"
rm "$SPILLWAY_DATA_DIR/ck/durable"
wait_attached ck
expect_rc 0 "$CLI" stat ck
expect_out "daemon alive, pid $DPID"
grep -q "^ck	" "$SPILLWAY_DATA_DIR/.spillwayd.refused" && fail "the reason stayed after the attach"
stop_daemon
start_daemon
wait_attached ck # past its start-up scan, which makes rings for topic dirs without one

check "a hard link planted as the last segment: not cut (the other name's file untouched); a cp -al backup is fine"
# Recovery cut it as a torn tail (the other file lost its bytes): a name in the
# data dir with another name elsewhere is not the daemon's own file.
expect_rc 0 "$CLI" topic create hl --ring-size 64K --segment-size 256K
wait_attached hl
seq 1 1000 | "$CLI" produce hl --ack durable || fail "produce --ack durable"
stop_daemon
head -c 1900 /dev/zero >"$TMP/victim" # reads as a segment nothing was written in yet
last=$(basename "$(ls "$SPILLWAY_DATA_DIR"/hl/*.seg | tail -1)" .seg)
planted=$(printf '%020d' $((10#$last + 262144)))
ln "$TMP/victim" "$SPILLWAY_DATA_DIR/hl/$planted.seg"
start_daemon
for _ in $(seq 1 250); do grep -q "topic hl: .*a hard link" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "topic hl: .*$planted.seg: holds bytes past the verified log .* has another name (a hard link" "$TMP/daemon.log" ||
	fail "not refused: $(grep 'topic hl' "$TMP/daemon.log" | tail -3)"
[ "$(stat -c %s "$TMP/victim")" -eq 1900 ] || fail "the linked file was cut"
[ "$(stat -c %h "$TMP/victim")" -eq 2 ] || fail "the planted link was removed or replaced"
rm "$SPILLWAY_DATA_DIR/hl/$planted.seg"
wait_attached hl
# A backup made with hard links (cp -al, rsnapshot) is no reason to refuse.
cp -al "$SPILLWAY_DATA_DIR/hl" "$TMP/hl.bak"
stop_daemon
start_daemon
wait_attached hl

check "an index cut short under acknowledged-spilled records: recovery rebuilds it, nothing is lost"
# The records were whole in the segment; recovery cut them as a torn tail and
# filled the ring's reclaimed range as aborted (found by a review).
expect_rc 0 "$CLI" topic create ix --ring-size 64K --segment-size 1M --flush-ms 1h
wait_attached ix
seq 1 10000 | awk '{ printf "%060d\n", $1 }' >"$TMP/ix.in" # 80-byte records: 25 index entries
"$CLI" produce ix --ack spilled "$TMP/ix.in" || fail "produce --ack spilled"
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
DPID=
truncate -s 352 "$SPILLWAY_DATA_DIR/ix/00000000000000000000.idx" # 9 of them left
expect_rc 0 "$CLI" verify ix # the records are in the file, not indexed: a note, not BAD
expect_out "left the ring but are not indexed yet"
cp -p "$SPILLWAY_DATA_DIR/ix/00000000000000000000.seg" "$TMP/ix.seg"
truncate -s 300000 "$SPILLWAY_DATA_DIR/ix/00000000000000000000.seg"
run "$CLI" verify ix # verify called this clean too: reclaimed records gone from the file
[ "$RC" -eq 1 ] || fail "verify exit $RC over lost records"
grep -q "^BAD .*ix.ring: positions [0-9]*\.\.[0-9]* were reclaimed from the ring (spilled) but are not on disk" \
	"$TMP/out" || fail "verify: $(cat "$TMP/out")"
cp -p "$TMP/ix.seg" "$SPILLWAY_DATA_DIR/ix/00000000000000000000.seg"
start_daemon
wait_attached ix
grep -q "topic ix: .*aborted gap" "$TMP/daemon.log" && fail "acknowledged records filled as a gap"
grep -q "topic ix: .*rebuilt it" "$TMP/daemon.log" || fail "the index was not rebuilt"
ls -A "$SPILLWAY_DATA_DIR/ix" | grep -q "tmp" && fail "a temp file left: $(ls -A "$SPILLWAY_DATA_DIR/ix")"
expect_rc 0 "$CLI" consume ix
cmp -s "$TMP/out" "$TMP/ix.in" ||
	fail "consume read $(wc -l <"$TMP/out") records after recovery, not the 10000 sent"
expect_rc 0 "$CLI" verify ix
expect_out "clean"
# What the daemon would refuse is no clean log either (verify said clean to both).
seg=$SPILLWAY_DATA_DIR/ix/00000000000000000000.seg
chown nobody "$seg"
run "$CLI" verify ix
[ "$RC" -eq 1 ] && grep -q "^BAD $seg: .*owned by uid [0-9]*, not by the topic dir's owner" "$TMP/out" ||
	fail "verify of a foreign segment: $(tail -2 "$TMP/out")"
chown root "$seg"
cp -p "$SPILLWAY_DATA_DIR/ix/topic.conf" "$TMP/ix.conf"
sed -i 's/^segment_bytes = .*/segment_bytes = 2097152/' "$SPILLWAY_DATA_DIR/ix/topic.conf"
run "$CLI" verify ix
[ "$RC" -eq 1 ] && grep -q "index header says ring 65536 / segment 1048576 bytes, the topic's settings (topic.conf) 65536 / 2097152" "$TMP/out" ||
	fail "verify against other settings: $(tail -2 "$TMP/out")"
cp -p "$TMP/ix.conf" "$SPILLWAY_DATA_DIR/ix/topic.conf"
expect_rc 0 "$CLI" verify ix

check "a daemon stopped with SIGSTOP: stat, describe, list and produce say it holds the topic but does not beat"
expect_rc 0 "$CLI" topic create quiet --ring-size 64K --max-record 1K
wait_attached quiet
kill -STOP "$DPID"
sleep 2.5
expect_rc 0 "$CLI" stat quiet
expect_out "daemon pid $DPID holds the topic but last beat"
expect_out "stopped or hung"
expect_rc 0 "$CLI" topic describe quiet
expect_out "daemon      spillwayd pid $DPID holds it, SILENT: last beat"
expect_rc 0 "$CLI" topic list
grep -q "^quiet .*pid $DPID silent\$" "$TMP/out" || fail "list: $(grep '^quiet' "$TMP/out")"
run timeout 3 "$CLI" produce quiet "$TMP/many"
[ "$RC" -eq 124 ] || fail "produce into a full ring did not wait (exit $RC)"
expect_err "spillwayd (pid $DPID) holds the topic but last beat"
grep -q "Start it" "$TMP/err" && fail "told to start a daemon that is only stopped"
kill -CONT "$DPID"
for _ in $(seq 1 250); do "$CLI" stat quiet 2>/dev/null | grep -q "daemon alive" && break; sleep 0.02; done
expect_rc 0 "$CLI" stat quiet
expect_out "daemon alive, pid $DPID"

stop_daemon

check "a daemon stopped cleanly but not reaped yet (a zombie): no daemon, at once"
# Its parent does not wait for it: kill(pid, 0) succeeds on a zombie and its
# last heartbeat is fresh, so only the ring's lock (released at exit) can tell.
/usr/bin/python3 -c '
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:5], stdout=open(sys.argv[5], "w"), stderr=subprocess.STDOUT)
open(sys.argv[5] + ".pid", "w").write(str(p.pid))
time.sleep(60)
' "$DAEMON" --foreground --shm-dir="$SPILLWAY_SHM_DIR" --data-dir="$SPILLWAY_DATA_DIR" \
	"$TMP/zombie.log" &
BGPIDS+=("$!")
for _ in $(seq 1 250); do grep -q "topic quiet: attached" "$TMP/zombie.log" 2>/dev/null && break; sleep 0.02; done
grep -q "topic quiet: attached" "$TMP/zombie.log" || fail "the unreaped daemon did not attach"
zpid=$(cat "$TMP/zombie.log.pid")
sleep 0.3 # a heartbeat or two
kill -TERM "$zpid"
for _ in $(seq 1 250); do [ "$(awk '{print $3}' "/proc/$zpid/stat" 2>/dev/null)" = Z ] && break; sleep 0.02; done
[ "$(awk '{print $3}' "/proc/$zpid/stat")" = Z ] || fail "spillwayd $zpid is not a zombie"
expect_rc 0 "$CLI" stat quiet
expect_out "daemon NOT running"
expect_out "no spillwayd holds the topic"
expect_rc 0 "$CLI" topic list
grep -q "^quiet .* none\$" "$TMP/out" || fail "list: $(grep '^quiet' "$TMP/out")"
[ "$(awk '{print $3}' "/proc/$zpid/stat")" = Z ] || fail "spillwayd $zpid was reaped during the check"

check "a damaged ring: the CLI's advice keeps the disk log (topic delete --keep-log); spillwayd remakes the ring"
# The advice was "spillway topic delete", which removed the log with the ring.
expect_rc 0 "$CLI" topic create hd --ring-size 64K --segment-size 256K
start_daemon
wait_attached hd
seq 1 5000 >"$TMP/hd.in"
expect_rc 0 "$CLI" produce hd --ack durable "$TMP/hd.in"
printf GARBAGEGARBAGE | dd of="$SPILLWAY_SHM_DIR/hd.ring" conv=notrunc status=none
echo x >"$TMP/one"
expect_rc 1 "$CLI" produce hd "$TMP/one"
expect_err "remove it, keeping the disk log: spillway topic delete hd --keep-log"
# Not "no ring (disk only)", "clean", or the disk log read alone as all there is.
expect_rc 0 "$CLI" stat hd
expect_out "RING UNREADABLE: $SPILLWAY_SHM_DIR/hd.ring: Bad message"
expect_rc 0 "$CLI" topic list
grep -q "^hd  *(bad) " "$TMP/out" || fail "list: $(grep '^hd' "$TMP/out")"
expect_rc 1 "$CLI" verify hd
expect_out "BAD $SPILLWAY_SHM_DIR/hd.ring: cannot be opened: Bad message"
expect_rc 1 "$CLI" consume hd
expect_err "the ring $SPILLWAY_SHM_DIR/hd.ring has a damaged header"
expect_rc 0 "$CLI" topic delete hd --keep-log
expect_out "deleted the ring of topic hd; its disk log in $SPILLWAY_DATA_DIR/hd is kept"
expect_out "spillwayd (pid $DPID) made the ring again: the log continues at "
expect_rc 0 "$CLI" consume hd
cmp -s "$TMP/out" "$TMP/hd.in" || fail "the log after --keep-log: $(wc -l <"$TMP/out") records"
stop_daemon
expect_rc 0 "$CLI" topic delete hd --keep-log
expect_out "start spillwayd: it makes the ring again at the log's end"
# Disk only, no daemon: stat says how the ring comes back, a follower says why it waits.
expect_rc 0 "$CLI" stat hd
expect_out "daemon NOT running: start spillwayd to make the ring again at the log's end"
"$CLI" consume hd --follow >"$TMP/hdf.out" 2>"$TMP/hdf.err" &
f=$!
for _ in $(seq 1 100); do grep -q "has no ring" "$TMP/hdf.err" && break; sleep 0.02; done
kill "$f"
wait "$f" 2>/dev/null
grep -q "topic \"hd\" has no ring (.*): following its disk log only" \
	"$TMP/hdf.err" || fail "the follower said: $(cat "$TMP/hdf.err")"
cmp -s "$TMP/hdf.out" "$TMP/hd.in" || fail "the follower read $(wc -l <"$TMP/hdf.out") records"
expect_rc 1 "$CLI" topic delete hd --keep-log
expect_err "has no ring to delete"
# The daemon makes it at start (and forgets the request); a ring a program
# removes later is not brought back by a SIGHUP (a config reload) behind its
# back; `topic create` over the kept log asks for it.
start_daemon
wait_attached hd
[ ! -e "$SPILLWAY_DATA_DIR/hd/.remake" ] || fail "the request stayed"
rm "$SPILLWAY_SHM_DIR/hd.ring"
for _ in $(seq 1 250); do grep -q "topic hd: detaching" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "topic hd: detaching" "$TMP/daemon.log" || fail "the removed ring was not detached"
kill -HUP "$DPID"
for _ in $(seq 1 250); do grep -q "SIGHUP: rereading" "$TMP/daemon.log" && break; sleep 0.02; done
grep -q "SIGHUP: rereading" "$TMP/daemon.log" || fail "the SIGHUP was not handled"
sleep 0.3
[ ! -e "$SPILLWAY_SHM_DIR/hd.ring" ] || fail "a SIGHUP made a ring nobody asked for"
expect_rc 0 "$CLI" stat hd
expect_out "daemon pid $DPID serves the data dir; \`spillway topic create hd\` asks it"
# Options would change the log's settings: refused, not ignored.
expect_rc 2 "$CLI" topic create hd --ring-size 1M --no-spill
expect_err "--ring-size cannot change them; run topic create hd without options"
expect_rc 0 "$CLI" topic create hd
expect_out "topic hd has a disk log in $SPILLWAY_DATA_DIR/hd (1 segments) but no ring: asking spillwayd"
expect_out "spillwayd (pid $DPID) made the ring again: the log continues at "
# A request left while the ring exists is dropped at the next SIGHUP, not kept to
# bring back a ring a program deletes later.
touch "$SPILLWAY_DATA_DIR/hd/.remake"
kill -HUP "$DPID"
for _ in $(seq 1 250); do [ -e "$SPILLWAY_DATA_DIR/hd/.remake" ] || break; sleep 0.02; done
[ ! -e "$SPILLWAY_DATA_DIR/hd/.remake" ] || fail "a request for an existing ring stayed"
# A topic.conf it cannot read: the ring is not made, the reason is said and the
# request kept.
cp "$SPILLWAY_DATA_DIR/hd/topic.conf" "$TMP/hd.conf"
echo "garbage line" >>"$SPILLWAY_DATA_DIR/hd/topic.conf"
rm "$SPILLWAY_SHM_DIR/hd.ring"
for _ in $(seq 1 250); do [ "$(grep -c "topic hd: detaching" "$TMP/daemon.log")" -ge 2 ] && break; sleep 0.02; done
expect_rc 1 "$CLI" topic create hd
expect_err "did not make the ring again: not recreating the ring: $SPILLWAY_DATA_DIR/hd/topic.conf: a line or value it cannot read"
[ -e "$SPILLWAY_DATA_DIR/hd/.remake" ] || fail "the request went with the failure"
cp "$TMP/hd.conf" "$SPILLWAY_DATA_DIR/hd/topic.conf"
expect_rc 0 "$CLI" topic create hd
expect_out "made the ring again"
stop_daemon
# No daemon: topic create made no ring, so it says so and exits 1.
rm "$SPILLWAY_SHM_DIR/hd.ring"
expect_rc 1 "$CLI" topic create hd
expect_out "start spillwayd: it makes the ring again at the log's end"
start_daemon
wait_attached hd
stop_daemon
[ -d "$SPILLWAY_DATA_DIR/hd" ] || fail "the data dir went"
expect_rc 0 "$CLI" topic delete hd
[ ! -e "$SPILLWAY_DATA_DIR/hd" ] || fail "topic delete kept the data dir"

check "a refusal that changes for another is said again, and its published reason follows"
# One "said" flag per ring file hid the second refusal, and stat kept the first
# reason ("owned by uid 65534 ... remove it") after it no longer held.
expect_rc 0 "$CLI" topic create sr --ring-size 64K --segment-size 256K
chown nobody "$SPILLWAY_SHM_DIR/sr.ring"
start_daemon
for _ in $(seq 1 250); do grep -q "sr.ring is owned by uid 65534" "$TMP/daemon.log" && break; sleep 0.02; done
expect_rc 0 "$CLI" stat sr
expect_out "refused the topic: $SPILLWAY_SHM_DIR/sr.ring is owned by uid 65534"
mv "$SPILLWAY_DATA_DIR/sr" "$TMP/sr.real" # (before the chown: then no rescan can attach it)
ln -s "$TMP/sr.real" "$SPILLWAY_DATA_DIR/sr"
chown root "$SPILLWAY_SHM_DIR/sr.ring"
for _ in $(seq 1 250); do
	"$CLI" stat sr >"$TMP/out" 2>&1
	grep -q "refused the topic: not attaching: " "$TMP/out" && break
	sleep 0.02
done
grep -q "refused the topic: not attaching: .*sr" "$TMP/out" || fail "the reason stayed: $(grep daemon "$TMP/out")"
grep -q "owned by uid 65534" "$TMP/out" && fail "the old reason is still shown"
[ "$(grep -c "topic sr: " "$TMP/daemon.log")" -eq 2 ] ||
	fail "not said once each: $(grep "topic sr: " "$TMP/daemon.log")"
rm "$SPILLWAY_DATA_DIR/sr"
mv "$TMP/sr.real" "$SPILLWAY_DATA_DIR/sr"
wait_attached sr
stop_daemon
expect_rc 0 "$CLI" topic delete sr

check "another user's lock on the lock or pid file neither keeps spillwayd from starting nor passes for one"
# The lock file was 0644: anyone who could read it took a shared flock and
# spillwayd would not start ("another spillwayd (pid <a dead one>)").
chmod 0711 "$TMP"
chmod 0755 "$SPILLWAY_DATA_DIR"
start_daemon
wait_attached tiny
stop_daemon
[ "$(stat -c %a "$SPILLWAY_DATA_DIR/.spillwayd.lock")" = 600 ] || fail "the lock file is not 0600"
[ "$(stat -c %a "$SPILLWAY_DATA_DIR/.spillwayd.pid")" = 644 ] || fail "the pid file is not 0644"
runuser -u nobody -- flock -s -n "$SPILLWAY_DATA_DIR/.spillwayd.lock" true 2>/dev/null &&
	fail "another user could lock the lock file"
# hold_lock SH|EX FILE: nobody holds a POSIX lock on FILE's byte 0 for 8 s (HOLDER).
hold_lock() {
	runuser -u nobody -- /usr/bin/python3 -c '
import fcntl, sys, time
f = open(sys.argv[2], "r" if sys.argv[1] == "SH" else "r+")
fcntl.lockf(f, getattr(fcntl, "LOCK_" + sys.argv[1]) | fcntl.LOCK_NB, 1, 0)
print("held", flush=True)
time.sleep(8)' "$1" "$2" >"$TMP/holder.out" 2>&1 &
	HOLDER=$!
	BGPIDS+=("$HOLDER")
	for _ in $(seq 1 250); do grep -q held "$TMP/holder.out" && break; sleep 0.02; done
	grep -q held "$TMP/holder.out" || fail "the holder: $(cat "$TMP/holder.out")"
}
hold_lock SH "$SPILLWAY_DATA_DIR/.spillwayd.pid"
expect_rc 0 "$CLI" stat tiny
expect_out "daemon NOT running"
start_daemon
wait_attached tiny
expect_rc 0 "$CLI" stat tiny
expect_out "daemon alive, pid $DPID"
kill "$HOLDER"
stop_daemon
# A pid file planted by another user (a group-writable data dir), locked and
# naming a root process: not taken for a daemon, and that process not signalled.
sleep 30 &
victim=$!
BGPIDS+=("$victim")
rm -f "$SPILLWAY_DATA_DIR/.spillwayd.pid"
printf '%s\n' "$victim" >"$SPILLWAY_DATA_DIR/.spillwayd.pid"
chown nobody "$SPILLWAY_DATA_DIR/.spillwayd.pid"
hold_lock EX "$SPILLWAY_DATA_DIR/.spillwayd.pid"
expect_rc 0 "$CLI" topic create pf --ring-size 64K --segment-size 256K
expect_rc 0 "$CLI" topic delete pf --keep-log
grep -q "spillwayd (pid $victim)" "$TMP/out" && fail "a planted pid file was taken: $(cat "$TMP/out")"
kill -0 "$victim" 2>/dev/null || fail "the process a planted pid file names was signalled"
expect_rc 0 "$CLI" topic delete pf
kill "$HOLDER" "$victim"
rm -f "$SPILLWAY_DATA_DIR/.spillwayd.pid"
# A user who cannot read the data dir is not told that no daemon runs.
chmod 0700 "$SPILLWAY_DATA_DIR"
expect_rc 0 "$CLI" topic create u1 --ring-size 64K --segment-size 256K
chown nobody "$SPILLWAY_SHM_DIR/u1.ring"
chmod 0711 "$SHMROOT"
chmod 0755 "$SPILLWAY_SHM_DIR"
start_daemon
wait_attached tiny
mkdir -p "$TMP/bin" # (the build tree may not be reachable by nobody: /root, a 0700 home)
cp "$CLI" "$TMP/bin/spillway"
chmod 0755 "$TMP/bin" "$TMP/bin/spillway"
runuser -u nobody -- env SPILLWAY_SHM_DIR="$SPILLWAY_SHM_DIR" SPILLWAY_DATA_DIR="$SPILLWAY_DATA_DIR" \
	"$TMP/bin/spillway" stat u1 >"$TMP/out" 2>&1
grep -q "whether one serves $SPILLWAY_DATA_DIR cannot be told ($SPILLWAY_DATA_DIR/.spillwayd.pid: Permission denied)" \
	"$TMP/out" || fail "stat as another user: $(cat "$TMP/out")"
stop_daemon
chmod 0700 "$SPILLWAY_SHM_DIR"
chown root "$SPILLWAY_SHM_DIR/u1.ring"
expect_rc 0 "$CLI" topic delete u1

check "max_record lowered in topic.conf: the records written before stay readable, verify clean"
# Readers held disk records to the recreated ring's max_record: the log's
# first record became "corrupt" to consume and verify.
expect_rc 0 "$CLI" topic create mr --ring-size 256K --segment-size 1M --max-record 64K
start_daemon
wait_attached mr
{ head -c 20000 /dev/zero | tr '\0' x; echo; } >"$TMP/big"
expect_rc 0 "$CLI" produce mr --ack durable "$TMP/big"
stop_daemon
sed -i 's/^max_record = .*/max_record = 1024/' "$SPILLWAY_DATA_DIR/mr/topic.conf"
rm "$SPILLWAY_SHM_DIR/mr.ring"
start_daemon
wait_attached mr
expect_rc 0 "$CLI" stat mr --json
grep -q '"max_record":1024,' "$TMP/out" ||
	fail "the ring was not recreated with the lower max_record: $(cat "$TMP/out")"
run "$CLI" consume mr
[ "$RC" -eq 0 ] && cmp -s "$TMP/out" "$TMP/big" ||
	fail "consume after lowering max_record: exit $RC, $(wc -c <"$TMP/out") bytes, $(head -c 300 "$TMP/err")"
expect_rc 0 "$CLI" verify mr
expect_rc 0 "$CLI" stat mr
grep -q "oldest record -," "$TMP/out" && fail "stat lost the oldest record: $(grep disk "$TMP/out")"
stop_daemon

check "spillwayd raises its soft open-files limit to the hard one; a hard limit too low is said"
# About 5 descriptors a topic: only liburing raised the soft limit, to its fixed
# file table's size (1064 here), so about 200 of the 256 topics could attach and
# the rest failed with EMFILE, retried for ever.
for i in $(seq 1 16); do
	expect_rc 0 "$CLI" topic create "fd$i" --ring-size 64K --segment-size 256K
done
: >"$TMP/daemon.log"
bash -c 'ulimit -Sn 40 && exec "$@"' _ "$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" \
	--data-dir "$SPILLWAY_DATA_DIR" >>"$TMP/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 16); do wait_attached "fd$i"; done
soft=$(awk '/^Max open files/ {print $4}' "/proc/$DPID/limits")
hard=$(awk '/^Max open files/ {print $5}' "/proc/$DPID/limits")
[ "$soft" = "$hard" ] || fail "soft limit $soft, hard $hard"
grep -q "open files limited" "$TMP/daemon.log" && fail "warned with the hard limit at $hard"
stop_daemon
# A hard limit too low for MAX_TOPICS topics is said at start.
: >"$TMP/daemon.log"
bash -c 'ulimit -n 200 && exec "$@"' _ "$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" \
	--data-dir "$SPILLWAY_DATA_DIR" >>"$TMP/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 16); do wait_attached "fd$i"; done
grep -q "open files limited to 200 (RLIMIT_NOFILE, hard limit 200): about 22 topics can be attached, not 256" \
	"$TMP/daemon.log" || fail "no warning: $(head -3 "$TMP/daemon.log")"
stop_daemon

check "a daemon on the same data dir but another shm dir: the CLI says so, not 'not attached yet' for ever"
mkdir -p "$TMP/d2" "$SHMROOT/a" "$SHMROOT/b"
chmod 0700 "$TMP/d2" "$SHMROOT/a" "$SHMROOT/b"
: >"$TMP/daemon.log"
"$DAEMON" --foreground --shm-dir "$SHMROOT/b" --data-dir "$TMP/d2" >>"$TMP/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 1 250); do grep -q "started" "$TMP/daemon.log" && break; sleep 0.02; done
SPILLWAY_SHM_DIR="$SHMROOT/a" SPILLWAY_DATA_DIR="$TMP/d2" "$CLI" topic create x --ring-size 64K >/dev/null ||
	fail "topic create x"
SPILLWAY_SHM_DIR="$SHMROOT/a" SPILLWAY_DATA_DIR="$TMP/d2" "$CLI" stat x >"$TMP/out" 2>&1
grep -q "spillwayd (pid $DPID) serves this data dir but it spills the rings of $SHMROOT/b, not of $SHMROOT/a" \
	"$TMP/out" || fail "stat: $(grep daemon "$TMP/out")"
SPILLWAY_SHM_DIR="$SHMROOT/a" SPILLWAY_DATA_DIR="$TMP/d2" "$CLI" topic list >"$TMP/out" 2>&1
grep -q "^x .*pid $DPID other shm dir\$" "$TMP/out" || fail "list: $(cat "$TMP/out")"
stop_daemon
done_ok
