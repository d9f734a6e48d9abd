#!/usr/bin/env bash
# cli_inspect.sh - stat (text, --json, --prometheus, --watch), verify (clean,
# then a corrupted segment byte), dump (positions, types, padding).
set -u
. "$(dirname "$0")/cli_lib.sh"

start_daemon
expect_rc 0 "$CLI" topic create s --ring-size 64K --segment-size 128K --flush-ms 20
wait_attached s
seq 1 20000 >"$TMP/lines"
expect_rc 0 "$CLI" produce s --ack durable "$TMP/lines"
expect_rc 0 "$CLI" consume s --group readers --count 100
expect_rc 0 "$CLI" topic create other --ring-size 64K
wait_attached other

check "stat NAME --json: one valid object with the required keys"
expect_rc 0 "$CLI" stat s --json
python3 - "$TMP/out" <<'EOF' || fail "stat --json: $(head -c 300 "$TMP/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert isinstance(o, dict)
for k in ("topic", "tail", "spilled", "durable", "limit", "daemon", "groups", "rates", "segments"):
    assert k in o, k
assert o["topic"] == "s" and o["tail"] > 0 and o["durable"] == o["tail"] == o["spilled"]
assert o["daemon"]["alive"] is True and o["daemon"]["pid"] > 0
assert o["segments"]["count"] >= 2
g = {x["group"]: x for x in o["groups"]}
assert g["readers"]["position"] > 0 and g["readers"]["lag_bytes"] == o["tail"] - g["readers"]["position"]
assert o["oldest_timestamp_ns"] <= o["newest_timestamp_ns"]
EOF

check "stat --json without NAME: a JSON list of every topic"
expect_rc 0 "$CLI" stat --json
python3 -c 'import json,sys; l = json.load(sys.stdin); assert isinstance(l, list) and sorted(o["topic"] for o in l) == ["other", "s"], l' <"$TMP/out" ||
	fail "stat --json list: $(head -c 300 "$TMP/out")"

check "stat --prometheus: HELP / TYPE lines and labelled samples"
expect_rc 0 "$CLI" stat --prometheus
for m in produced_bytes_total spilled_bytes_total durable_bytes_total ring_fill_ratio daemon_up \
	disk_segments group_lag_bytes; do
	grep -q "^# HELP spillway_$m " "$TMP/out" || fail "no HELP for spillway_$m"
	grep -q "^# TYPE spillway_$m \(counter\|gauge\)$" "$TMP/out" || fail "no TYPE for spillway_$m"
done
grep -q '^spillway_produced_bytes_total{topic="s"} [0-9][0-9]*$' "$TMP/out" || fail "no tail sample for s"
grep -q '^spillway_produced_bytes_total{topic="other"} 0$' "$TMP/out" || fail "no tail sample for other"
grep -q '^spillway_daemon_up{topic="s"} 1$' "$TMP/out" || fail "daemon_up"
grep -q '^spillway_group_lag_bytes{topic="s",group="readers"} [0-9]*$' "$TMP/out" || fail "group lag"
bad=$(grep -v '^#' "$TMP/out" | grep -cv '^spillway_[a-z_]*{[a-z]*="[^"]*"\(,[a-z]*="[^"]*"\)*} [0-9.e+-]*$')
[ "$bad" -eq 0 ] || fail "$bad malformed sample lines"
promtool check metrics <"$TMP/out" >"$TMP/lint" 2>&1 || { cat "$TMP/lint" >&2; fail "promtool"; }

check "stat text and --watch: rates between ticks, stops on SIGINT"
expect_rc 0 "$CLI" stat s
expect_out "tail "
expect_out "daemon alive"
expect_out "group readers"
run timeout -s INT 1.5 "$CLI" stat s --watch 0.3
[ "$(grep -c '^topic s' "$TMP/out")" -ge 2 ] || fail "--watch printed $(grep -c '^topic s' "$TMP/out") ticks"

check "verify: a clean log exits 0 with a summary"
expect_rc 0 "$CLI" verify s
expect_out "verified topic s:"
expect_out "20000 records checked"
expect_out "clean"

check "dump: positions, types and the padding at the end of a ring lap"
expect_rc 0 "$CLI" dump s --count 3
grep -q '^ *0  DATA  *1 ' "$TMP/out" || fail "dump lacks position 0: $(head -5 "$TMP/out")"
grep -q '^ *24  DATA  *1  .*"2"' "$TMP/out" || fail "dump lacks position 24"
expect_rc 0 "$CLI" dump s --from 65500 --count 3
expect_out "PADDING"
expect_rc 0 "$CLI" dump s --from "@$(date +%s)" --count 1

check "verify after corrupting one segment byte: exit 1, the bad range printed"
seg=$SPILLWAY_DATA_DIR/s/00000000000000131072.seg
[ -f "$seg" ] || fail "no second segment $seg"
stop_daemon
printf 'Z' | dd of="$seg" bs=1 seek=70000 conv=notrunc status=none
expect_rc 1 "$CLI" verify s
grep -q "^BAD $seg: positions [0-9]*\.\.[0-9]* ([0-9]* bytes): data CRC mismatch" "$TMP/out" ||
	fail "no bad range: $(cat "$TMP/out")"
expect_out "1 BAD ranges"
lo=$(sed -n 's/^BAD .*: positions \([0-9]*\)\.\..*/\1/p' "$TMP/out")
hi=$(sed -n 's/^BAD .*: positions [0-9]*\.\.\([0-9]*\) .*/\1/p' "$TMP/out")
[ "$lo" -le $((131072 + 70000)) ] && [ "$hi" -gt $((131072 + 70000)) ] || fail "range $lo..$hi misses the byte"
expect_rc 0 "$CLI" verify s --to 131072
expect_out "clean"

check "consume stops at the corruption (exit 1, names the file) instead of returning bad bytes"
expect_rc 1 "$CLI" consume s
expect_err "$seg is corrupt at position $lo"
grep -q Z "$TMP/out" && fail "consume printed the corrupted byte"

check "consume and replay --skip-corrupt: every record outside the bad range, exit 0"
for cmd in "consume s" "replay s --from earliest"; do
	expect_rc 0 "$CLI" $cmd --skip-corrupt
	expect_err "skipped $((hi - lo)) bytes"
	python3 - "$TMP/out" $((hi - lo)) <<'PY' || fail "$cmd --skip-corrupt: $(tail -c 300 "$TMP/err")"
import sys
got = [int(x) for x in open(sys.argv[1])]
bad = int(sys.argv[2])
jumps = [(a, b) for a, b in zip(got, got[1:]) if b != a + 1]
assert got[0] == 1 and got[-1] == 20000, (got[0], got[-1], len(got))
assert len(jumps) == 1, jumps  # one hole: the bad range, nothing else lost
missing = jumps[0][1] - jumps[0][0] - 1
assert 0 < missing <= bad // 24, (missing, bad)  # a record here spans >= 24 bytes
PY
done

check "--from inside the damaged range: said so, with the range and where to start instead"
for at in "$lo" $((lo + 8)); do
	expect_rc 1 "$CLI" consume s --from "$at"
	expect_err "position $at of topic \"s\" lies in a damaged range (positions $lo..$hi: "
	expect_err "start at $hi, or read on past it with --skip-corrupt"
done

check "verify: a log cut below its durable checkpoint is never clean (last segment gone, index cut)"
ck=$(od -An -t u8 -j 8 -N 8 "$SPILLWAY_DATA_DIR/s/durable" | tr -d ' ')
last=$(ls "$SPILLWAY_DATA_DIR/s/"*.seg | tail -1)
base=$(basename "$last" .seg); base=$((10#$base))
[ "$ck" -gt "$base" ] || fail "checkpoint $ck not past the last segment's base $base"
mkdir -p "$TMP/held"
mv "$last" "${last%.seg}.idx" "$TMP/held/"
expect_rc 1 "$CLI" verify s --from "$base"
grep -q "^BAD $SPILLWAY_DATA_DIR/s/durable: positions $base\.\.$ck .*acknowledged durable up to $ck" "$TMP/out" ||
	fail "no loss reported: $(cat "$TMP/out")"
mv "$TMP/held/"* "$SPILLWAY_DATA_DIR/s/"
cp "${last%.seg}.idx" "$TMP/held/idx"
truncate -s $((64 + 32)) "${last%.seg}.idx"
expect_rc 1 "$CLI" verify s --from "$base"
expect_out "acknowledged durable up to $ck"
cp "$TMP/held/idx" "${last%.seg}.idx"
printf 'X' | dd of="$SPILLWAY_DATA_DIR/s/durable" bs=1 seek=3 conv=notrunc status=none
expect_rc 1 "$CLI" verify s --from "$base"
expect_out "the durable checkpoint is damaged"
: >"$SPILLWAY_DATA_DIR/s/durable" # as attach creates it, before the first sync round
expect_rc 0 "$CLI" verify s --from "$base"
expect_out "clean"

check "a segment in the middle cut short: verify counts all it lost, readers keep the rest"
# verify named the first cut entry only; consume --skip-corrupt stopped at the
# segment's first byte, dropping its intact entries too.
cp "$SPILLWAY_DATA_DIR/s/durable" "$TMP/held/durable"
: >"$SPILLWAY_DATA_DIR/s/durable"
mid=$(ls "$SPILLWAY_DATA_DIR/s/"*.seg | sed -n 2p)
mbase=$(basename "$mid" .seg); mbase=$((10#$mbase))
cp "$mid" "$TMP/held/mid"
truncate -s 100000 "$mid"
expect_rc 1 "$CLI" verify s
grep -q "^BAD $mid: positions [0-9]*\.\.$((mbase + 131072)) .*the index covers up to $((mbase + 131072)) but the file ends at $((mbase + 100000))" \
	"$TMP/out" || fail "verify: $(grep BAD "$TMP/out")"
lost=$(sed -n "s/^BAD $(echo "$mid" | sed 's/[\/&]/\\&/g'): positions \([0-9]*\)\.\.\([0-9]*\).*/\2 - \1/p" "$TMP/out")
expect_rc 0 "$CLI" consume s --skip-corrupt
expect_err "skipped $((lost)) bytes"
n_skip=$(wc -l <"$TMP/out")
expect_rc 1 "$CLI" consume s
# Records span 24 bytes: past the segment's first byte, into its intact entries.
[ "$(wc -l <"$TMP/out")" -gt $((mbase / 24 + 1000)) ] || fail "consume stopped at $(wc -l <"$TMP/out") records"
[ "$n_skip" -gt "$(wc -l <"$TMP/out")" ] || fail "--skip-corrupt read $n_skip records"
cp "$TMP/held/mid" "$mid"
cp "$TMP/held/durable" "$SPILLWAY_DATA_DIR/s/durable"
run "$CLI" verify s # (the byte corrupted above is still bad)
grep -q "file ends at" "$TMP/out" && fail "restored, still cut: $(grep BAD "$TMP/out")"

check "verify counts a loss seen two ways once (a torn index entry, and the gap after it)"
cp "${mid%.seg}.idx" "$TMP/held/midx"
printf 'Z' | dd of="${mid%.seg}.idx" bs=1 seek=100 conv=notrunc status=none
run "$CLI" verify s
[ "$RC" -eq 1 ] || fail "verify exited $RC"
grep -q "index entry 1 of .* is torn" "$TMP/out" || fail "verify: $(grep BAD "$TMP/out")"
sum=$(($(sed -n 's/^BAD .*(\([0-9]*\) bytes).*/\1/p' "$TMP/out" | paste -sd+)))
total=$(sed -n 's/.*BAD ranges (\([0-9]*\) bytes).*/\1/p' "$TMP/out")
[ -n "$total" ] && [ "$total" -lt "$sum" ] || fail "counted $total bytes of ranges summing $sum: $(cat "$TMP/out")"
cp "$TMP/held/midx" "${mid%.seg}.idx"

done_ok
