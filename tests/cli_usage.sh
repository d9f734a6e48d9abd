#!/usr/bin/env bash
# cli_usage.sh - the command line itself: --help everywhere (exit 0), wrong
# flags, missing values, bad sizes / durations / positions / times / formats,
# unsafe topic names: all exit 2 with one line naming the problem.
set -u
. "$(dirname "$0")/cli_lib.sh"

check "no arguments: usage on stderr, exit 2"
expect_rc 2 "$CLI"
expect_err "usage: spillway"

check "unknown command: exit 2, names it"
expect_rc 2 "$CLI" frobnicate
expect_err '"frobnicate"'

check "--help and help TOPIC exit 0 with a usage on stdout"
for c in "" topic produce consume replay stat verify dump demo; do
	expect_rc 0 "$CLI" $c --help
	expect_out "usage: spillway"
done
for c in create list describe delete; do
	expect_rc 0 "$CLI" topic $c --help
	expect_out "usage: spillway topic"
done
expect_rc 0 "$CLI" help produce
expect_out "--format lines"
expect_rc 0 "$CLI" help topic create
expect_out "--ring-size"
expect_rc 0 "$CLI" help positions
expect_out "@2026-11-24T22:00:00Z"

check "wrong flags: exit 2 for every subcommand, the flag named"
for c in "topic create t" "topic list" "topic describe t" "topic delete t" "produce t" \
	"consume t" "replay t --from earliest" "stat" "verify t" "dump t" "demo"; do
	expect_rc 2 "$CLI" $c --bogus-flag
	expect_err "unknown option --bogus-flag"
done
expect_rc 2 "$CLI" --bogus topic list
expect_rc 2 "$CLI" topic frob t
expect_err '"frob"'
expect_rc 2 "$CLI" topic

check "missing values and arguments: exit 2"
expect_rc 2 "$CLI" consume t --from
expect_err "needs a value"
expect_rc 2 "$CLI" topic create
expect_err "missing the topic NAME"
expect_rc 2 "$CLI" produce
expect_rc 2 "$CLI" consume a b
expect_err 'unexpected argument "b"'
expect_rc 2 "$CLI" replay t
expect_err "--from is required"

check "bad sizes: exit 2 with the value and the expected form"
for s in 12Q abc -5 64MX 1.5M ""; do
	expect_rc 2 "$CLI" topic create t --ring-size "$s"
	expect_err "--ring-size"
done
expect_rc 2 "$CLI" topic create t --ring-size 100K
expect_err "power of two"
expect_rc 2 "$CLI" topic create t --ring-size 32K
expect_rc 2 "$CLI" topic create t --ring-size 2M --segment-size 3M
expect_err "multiple of the ring size"
expect_rc 2 "$CLI" topic create t --ring-size 1M --max-record 512K
expect_err "quarter of the ring"
expect_rc 2 "$CLI" topic create t --max-record 0
expect_rc 2 "$CLI" topic create t --retention-bytes 1X
expect_rc 2 "$CLI" topic create t --flush-bytes 0
expect_rc 2 "$CLI" topic create t --mode 0999
expect_rc 2 "$CLI" topic create t --mode rw
expect_rc 2 "$CLI" topic create t --group no-such-group-spw
expect_err "no such group"
expect_rc 2 "$CLI" demo --bytes 12Q

check "bad durations: exit 2"
for d in 5x 1w abc -1s 1.5.2s ms; do
	expect_rc 2 "$CLI" topic create t --retention "$d"
	expect_err "--retention"
done
expect_rc 2 "$CLI" topic create t --flush-ms soon
expect_rc 2 "$CLI" topic create t --unblock-ms 1y
expect_rc 2 "$CLI" stat --watch 0
expect_rc 2 "$CLI" stat --watch never

check "bad positions and times: exit 2"
for f in yesterday 13 -8 @ @abc @2026-13-01T00:00:00Z @2026-11-24T25:00:00Z @1.2.3 @-5x; do
	expect_rc 2 "$CLI" consume t --from "$f"
	expect_err "--from"
done
expect_rc 2 "$CLI" replay t --from earliest --to latest
expect_rc 2 "$CLI" replay t --from latest
expect_rc 2 "$CLI" replay t --from 96 --to 24 # an empty range is a mistake
expect_err "--to 24 is not after --from 96"
expect_rc 2 "$CLI" replay t --from 96 --to 96
expect_rc 2 "$CLI" replay t --from @2026-11-24T12:00:00Z --to @2026-11-24T11:00:00Z
expect_err "--to's time is not after --from's"
expect_rc 2 "$CLI" replay t --from earliest --rate fast
expect_err "--rate"

check "bad counts, formats, levels, exclusive flags: exit 2"
expect_rc 2 "$CLI" consume t --count -1
expect_rc 2 "$CLI" consume t --count many
expect_rc 2 "$CLI" consume t --format xml
expect_err "lines|raw|lenpfx|json|hex"
expect_rc 2 "$CLI" produce t --format json
expect_err "lines|raw|lenpfx"
expect_rc 2 "$CLI" produce t --ack maybe
expect_err "none|spilled|durable"
expect_rc 2 "$CLI" stat --json --prometheus
expect_rc 2 "$CLI" demo --producers 0
expect_rc 2 "$CLI" demo --producers 99

check "unsafe names: exit 2, a clear message, nothing created"
for n in ../x a/b .hidden "" "x y" "$(printf 'a%.0s' $(seq 1 129))"; do
	for c in "topic create" "topic describe" "topic delete" produce consume verify dump stat; do
		expect_rc 2 "$CLI" $c "$n"
		expect_err "invalid topic name"
	done
done
expect_rc 2 "$CLI" consume t --group ../g
expect_err "invalid group name"
[ ! -e "$SPILLWAY_SHM_DIR" ] || [ -z "$(ls -A "$SPILLWAY_SHM_DIR")" ] || fail "usage errors created files"
[ ! -e "$TMP/x" ] || fail "../x escaped the data dir"

done_ok
