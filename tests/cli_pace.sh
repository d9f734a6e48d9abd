#!/usr/bin/env bash
# cli_pace.sh - replay and consume --speed (tools/pace.c): records go out at
# the pace of their timestamps, in order, never early (a lower bound on the
# wall time, which cannot flake on a loaded machine); --max-gap shortens a
# long silence; the lateness is reported; bad speeds are usage errors.
set -u
. "$(dirname "$0")/cli_lib.sh"

"$CLI" topic create paced >/dev/null || fail "topic create"
# Three bursts of 10 records, 0.4 s apart, then a 3 s silence and one more.
for b in 1 2 3; do
	seq $(( b * 10 - 9 )) $(( b * 10 )) | "$CLI" produce paced || fail "produce"
	sleep 0.4
done
sleep 3
echo 31 | "$CLI" produce paced || fail "produce"

# timed CMD...: run it; every record out, in order; its wall time in $ms.
timed() {
	local t0 t1
	t0=$(date +%s%N)
	run "$@"
	t1=$(date +%s%N)
	[ "$RC" = 0 ] || fail "exit $RC"
	[ "$(cat "$TMP/out")" = "$(seq 1 31)" ] || fail "records out of order or missing"
	ms=$(( (t1 - t0) / 1000000 ))
}

check "--speed 1x: in order, never early, lateness reported"
timed "$CLI" replay paced --from earliest --speed 1x --max-gap 10s
[ "$ms" -ge 3700 ] || fail "1x took $ms ms: records went out early (the data spans >= 3.8 s)"
expect_err "paced at 1x: 31 records, lateness p50"

check "--max-gap 200ms shortens the 3 s silence (still never early)"
timed "$CLI" replay paced --from earliest --speed 1x --max-gap 200ms
[ "$ms" -ge 550 ] || fail "took $ms ms: went out early (three gaps shortened to 0.2 s each)"
[ "$ms" -lt 3000 ] || fail "took $ms ms: the 3 s gap was not shortened"

check "--speed 4x: a quarter of the time, never less"
timed "$CLI" consume paced --speed 4x --max-gap 10s
[ "$ms" -ge 900 ] || fail "4x took $ms ms: early"
expect_err "paced at 4x"

check "bad speeds and combinations: usage errors"
expect_rc 2 "$CLI" replay paced --from earliest --speed fast
expect_err "--speed: bad speed"
expect_rc 2 "$CLI" replay paced --from earliest --speed 0x
expect_rc 2 "$CLI" replay paced --from earliest --speed 2x --rate 10/s
expect_err "exclude each other"
expect_rc 2 "$CLI" consume paced --max-gap soon

done_ok
