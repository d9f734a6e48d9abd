#!/bin/bash
# cli_group.sh - a topic shared with a unix group, end to end, with real users
# (tests run as root: the users and the group are made here and removed at the
# end). A member of the group who does not own the topic produces, consumes
# live, replays from disk after spilling and segment rolls, and commits a
# group position; a user outside the group gets a clear permission error.
# spill/segment.c seg_share gives every file spillwayd makes the topic dir's
# group (0640); tools/cmd_topic.c makes the dir 0750 and topic.conf 0640.
source "$(dirname "$0")/cli_lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null || ! command -v runuser >/dev/null; then
	echo "ok: $(basename "$0") skipped (needs root, useradd and runuser)"
	exit 0
fi
G=spwtg$$
M=spwtm$$
O=spwto$$
users_cleanup() {
	userdel "$M" 2>/dev/null
	userdel "$O" 2>/dev/null
	groupdel "$G" 2>/dev/null
	cli_cleanup
}
trap users_cleanup EXIT
groupadd "$G" || fail "groupadd"
useradd -M -N -s /bin/sh -G "$G" "$M" || fail "useradd member"
useradd -M -N -s /bin/sh "$O" || fail "useradd outsider"
# The binaries and the dirs where the others can reach them; the shm and data
# dirs open to the group (the admin's part, docs/daemon.md).
mkdir -p "$TMP/bin" "$SPILLWAY_SHM_DIR" "$SPILLWAY_DATA_DIR"
cp "$CLI" "$TMP/bin/spillway"
chmod 0755 "$TMP/bin" "$TMP/bin/spillway"
chmod 0711 "$TMP" "$SHMROOT"
chgrp "$G" "$SPILLWAY_SHM_DIR" "$SPILLWAY_DATA_DIR"
chmod 0750 "$SPILLWAY_SHM_DIR" "$SPILLWAY_DATA_DIR"
as() { # as USER CMD...: run as USER with the test's dirs
	local u=$1
	shift
	runuser -u "$u" -- env SPILLWAY_SHM_DIR="$SPILLWAY_SHM_DIR" \
		SPILLWAY_DATA_DIR="$SPILLWAY_DATA_DIR" "$@"
}
MCLI=$TMP/bin/spillway

check "topic create --group G --mode 0660: ring, dir and topic.conf belong to G"
expect_rc 0 "$CLI" topic create shared --group "$G" --mode 0660 --ring-size 64K \
	--segment-size 128K --flush-ms 20
[ "$(stat -c %G:%a "$SPILLWAY_SHM_DIR/shared.ring")" = "$G:660" ] || fail "ring: $(stat -c %G:%a "$SPILLWAY_SHM_DIR/shared.ring")"
[ "$(stat -c %G:%a "$SPILLWAY_DATA_DIR/shared")" = "$G:750" ] || fail "dir: $(stat -c %G:%a "$SPILLWAY_DATA_DIR/shared")"
[ "$(stat -c %G:%a "$SPILLWAY_DATA_DIR/shared/topic.conf")" = "$G:640" ] || fail "topic.conf"
start_daemon
wait_attached shared

check "a member produces, and reads it back live"
seq 1 20000 | as "$M" "$MCLI" produce shared --ack durable >"$TMP/out" 2>"$TMP/err" ||
	fail "member produce: $(cat "$TMP/err")"
as "$M" "$MCLI" consume shared --count 20000 >"$TMP/out" 2>"$TMP/err" ||
	fail "member consume: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/out")" -eq 20000 ] || fail "member read $(wc -l <"$TMP/out") records"

check "segments and indexes (after rolls) belong to G, 0640"
n=0
for f in "$SPILLWAY_DATA_DIR"/shared/*.seg "$SPILLWAY_DATA_DIR"/shared/*.idx; do
	[ "$(stat -c %G:%a "$f")" = "$G:640" ] || fail "$f: $(stat -c %G:%a "$f")"
	n=$((n + 1))
done
[ "$n" -ge 4 ] || fail "only $n segment files: no roll"

check "a member replays from disk and commits a group position"
as "$M" "$MCLI" replay shared --from earliest >"$TMP/out" 2>"$TMP/err" ||
	fail "member replay: $(cat "$TMP/err")"
[ "$(head -1 "$TMP/out")" = 1 ] && [ "$(tail -1 "$TMP/out")" = 20000 ] || fail "replay content"
as "$M" "$MCLI" consume shared --group readers --count 1000 >"$TMP/out" 2>"$TMP/err" ||
	fail "member group commit: $(cat "$TMP/err")"
[ "$(stat -c %G:%a "$SPILLWAY_DATA_DIR/shared/groups")" = "$G:2770" ] || fail "groups dir: $(stat -c %G:%a "$SPILLWAY_DATA_DIR/shared/groups")"
[ "$(stat -c %U:%G "$SPILLWAY_DATA_DIR/shared/groups/readers")" = "$M:$G" ] || fail "group file"
# Its one reader's lock file: the member's, and the group's to lock too.
[ "$(stat -c %U:%G:%a "$SPILLWAY_DATA_DIR/shared/groups/.readers.reader")" = "$M:$G:660" ] ||
	fail "group lock file: $(stat -c %U:%G:%a "$SPILLWAY_DATA_DIR/shared/groups/.readers.reader")"
as "$M" "$MCLI" consume shared --group readers --count 1 >"$TMP/out" 2>"$TMP/err" ||
	fail "member group resume: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = 1001 ] || fail "group resumed at $(cat "$TMP/out")"

check "a user outside G: a clear permission error, nothing read"
if as "$O" "$MCLI" consume shared --count 1 >"$TMP/out" 2>"$TMP/err"; then
	fail "the outsider read the topic"
fi
grep -qi "permission denied" "$TMP/err" || fail "outsider message: $(cat "$TMP/err")"
[ ! -s "$TMP/out" ] || fail "the outsider got records"
stop_daemon
done_ok
