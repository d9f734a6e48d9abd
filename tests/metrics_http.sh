#!/usr/bin/env bash
# metrics_http.sh - spillwayd --metrics-listen serves the Prometheus text
# format at /metrics (daemon/metrics.c, spill/metrics.c): scraped with a real
# HTTP client (Python's urllib) while records are produced, the counters
# move, promtool accepts every scrape, group lag shows, a disk that refuses
# writes shows as errors and blocked producers; the textfile mode writes the
# same; bad addresses are refused; the default address is loopback.
set -u
. "$(dirname "$0")/cli_lib.sh"

command -v promtool >/dev/null || fail "promtool missing (make deps installs Debian's prometheus)"

# scrape PATH [METHOD]: the body to $TMP/out, the HTTP status in RC.
scrape() {
	python3 - "http://$ADDR$1" "${2:-GET}" >"$TMP/out" 2>"$TMP/err" <<'EOF'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], method=sys.argv[2],
                             data=b"x" if sys.argv[2] == "POST" else None)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        sys.stdout.buffer.write(r.read())
        sys.stderr.write(r.headers.get("Content-Type", "") + "\n")
        code = r.status
except urllib.error.HTTPError as e:
    code = e.code
sys.stderr.write("status %d\n" % code)
EOF
	RC=$(sed -n 's/^status //p' "$TMP/err")
}

# metric NAME LABELS: the value of one sample of the last scrape ("" none).
metric() {
	awk -v k="$1{$2}" '$1 == k { print $2 }' "$TMP/out"
}

# start_metrics_daemon EXTRA...: spillwayd serving on a free loopback port.
start_metrics_daemon() {
	local _ port
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 30000))
		: >"$TMP/daemon.log"
		"$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" --data-dir "$SPILLWAY_DATA_DIR" \
			--metrics-listen "$port" "$@" >>"$TMP/daemon.log" 2>&1 &
		DPID=$!
		for _ in $(seq 1 100); do
			grep -q "metrics at" "$TMP/daemon.log" && { ADDR=127.0.0.1:$port; return 0; }
			kill -0 "$DPID" 2>/dev/null || break
			sleep 0.02
		done
		wait "$DPID" 2>/dev/null
		DPID=
	done
	fail "spillwayd did not serve metrics on any of 5 ports"
}

check "a bare port listens on loopback only"
start_metrics_daemon --metrics-textfile "$TMP/spillway.prom" --metrics-interval 0.2
hexport=$(printf '%04X' "${ADDR##*:}")
grep -q " 0100007F:$hexport 00000000:0000 0A " /proc/net/tcp ||
	fail "not listening on 127.0.0.1:${ADDR##*:}: $(grep ":$hexport " /proc/net/tcp)"

check "/metrics while producing: counters move, promtool passes"
expect_rc 0 "$CLI" topic create m --ring-size 256K
wait_attached m
seq 1 5000 | "$CLI" produce m >/dev/null || fail "produce"
for _ in $(seq 1 50); do # until the flush policy made it all durable
	scrape /metrics
	[ "$(metric spillway_durable_records_total 'topic="m"')" = 5000 ] && break
	sleep 0.1
done
[ "$RC" = 200 ] || fail "GET /metrics: status $RC"
grep -q 'text/plain; version=0.0.4' "$TMP/err" || fail "content type: $(head -1 "$TMP/err")"
promtool check metrics <"$TMP/out" >"$TMP/lint" 2>&1 || { cat "$TMP/lint" >&2; fail "promtool"; }
cp "$TMP/out" "$TMP/first"
grep -q '^spillway_build_info{version="[0-9.]*"} 1$' "$TMP/out" || fail "build_info"
rec1=$(metric spillway_produced_records_total 'topic="m"')
bytes1=$(metric spillway_produced_bytes_total 'topic="m"')
[ "$rec1" = 5000 ] || fail "produced records $rec1, want 5000"
[ "$(metric spillway_spilled_records_total 'topic="m"')" = 5000 ] || fail "spilled records"
[ "$(metric spillway_durable_bytes_total 'topic="m"')" = "$bytes1" ] || fail "durable bytes"
[ "$(metric spillway_daemon_up 'topic="m"')" = 1 ] || fail "daemon_up"
[ "$(metric spillway_ring_size_bytes 'topic="m"')" = 262144 ] || fail "ring size"
[ "$(metric spillway_disk_segments 'topic="m"')" -ge 1 ] || fail "segments"
[ "$(metric spillway_daemon_io_uring_entries '')" -gt 0 ] 2>/dev/null ||
	grep -q '^spillway_daemon_io_uring_entries [1-9]' "$TMP/out" || fail "io_uring entries"
# A producer in the background while scraping twice: each scrape is valid
# and the counters only go up.
seq 1 200000 | "$CLI" produce m >/dev/null &
BGPIDS+=($!)
scrape /metrics
promtool check metrics <"$TMP/out" >"$TMP/lint" 2>&1 || { cat "$TMP/lint" >&2; fail "promtool (2)"; }
wait "${BGPIDS[-1]}" || fail "background produce"
sleep 0.3
scrape /metrics
rec2=$(metric spillway_produced_records_total 'topic="m"')
[ "$rec2" = 205000 ] || fail "produced records after more: $rec2, want 205000"
[ "$(metric spillway_produced_bytes_total 'topic="m"')" -gt "$bytes1" ] || fail "bytes did not move"

check "every family served is in docs/metrics.md"
for f in $(sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' "$TMP/out"); do
	grep -q "\`$f[{\`]" "$HERE/../docs/metrics.md" || fail "$f is not in docs/metrics.md"
done

check "group lag in bytes and seconds"
expect_rc 0 "$CLI" consume m --group slow --count 1000
sleep 1.1
scrape /metrics
lag=$(metric spillway_group_lag_bytes 'topic="m",group="slow"')
[ -n "$lag" ] && [ "$lag" -gt 0 ] || fail "group lag bytes: '$lag'"
lags=$(metric spillway_group_lag_seconds 'topic="m",group="slow"')
awk -v s="$lags" 'BEGIN { exit !(s + 0 >= 1.0) }' || fail "group lag seconds: '$lags'"

check "the textfile holds the same families and passes promtool"
sleep 0.5
[ -s "$TMP/spillway.prom" ] || fail "no textfile"
promtool check metrics <"$TMP/spillway.prom" >"$TMP/lint" 2>&1 ||
	{ cat "$TMP/lint" >&2; fail "promtool (textfile)"; }
grep -q '^spillway_produced_records_total{topic="m"} ' "$TMP/spillway.prom" || fail "textfile samples"
[ ! -e "$TMP/.spillway.prom.tmp" ] || fail "temporary left behind"

check "other paths and methods"
scrape /nope
[ "$RC" = 404 ] || fail "GET /nope: $RC"
scrape /metrics POST
[ "$RC" = 405 ] || fail "POST /metrics: $RC"

check "a disk that refuses writes: errors counted, producers blocked and for how long"
expect_rc 0 "$CLI" topic create full --ring-size 64K --max-record 1K
wait_attached full
stop_daemon
: >"$TMP/daemon.log"
SPILLWAY_FAULT_FILE=$TMP/fault "$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" \
	--data-dir "$SPILLWAY_DATA_DIR" --metrics-listen "$ADDR" >>"$TMP/daemon.log" 2>&1 &
DPID=$!
wait_attached full
seq 1 1000 | "$CLI" produce full --ack spilled >/dev/null || fail "produce before the fault"
echo ENOSPC >"$TMP/fault"
seq 1 30000 | "$CLI" produce full >/dev/null 2>"$TMP/perr" &
PP=$!
BGPIDS+=("$PP")
# Each failed write rewinds the daemon's walk and every retry walks the same
# records again: scraped as fast as it answers for 3 s, the produced-records
# counter must still never go down (a Prometheus counter that does reads as
# a reset).
python3 - "http://$ADDR/metrics" 3 <<'EOF' || fail "spillway_produced_records_total went down"
import sys, time, urllib.request
url, secs = sys.argv[1], float(sys.argv[2])
prev, n, end = 0, 0, time.time() + secs
while time.time() < end:
    for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
        if line.startswith('spillway_produced_records_total{topic="full"} '):
            cur = int(line.split()[1])
            if cur < prev:
                print("FAIL: %d -> %d after %d scrapes" % (prev, cur, n), file=sys.stderr)
                sys.exit(1)
            prev = cur
    n += 1
print("check: %d scrapes, produced_records_total only grew (last %d)" % (n, prev))
EOF
for _ in $(seq 1 100); do
	scrape /metrics
	[ "$(metric spillway_producers_blocked_seconds 'topic="full"')" != 0 ] &&
		[ -n "$(metric spillway_producers_blocked_seconds 'topic="full"')" ] && break
	sleep 0.1
done
promtool check metrics <"$TMP/out" >"$TMP/lint" 2>&1 || { cat "$TMP/lint" >&2; fail "promtool (3)"; }
[ "$(metric spillway_spill_failing 'topic="full"')" = 1 ] || fail "spill_failing"
[ "$(metric spillway_disk_write_errors_total 'topic="full"')" -ge 1 ] || fail "write errors"
[ "$(metric spillway_producers_blocked 'topic="full"')" -ge 1 ] || fail "producers blocked"
awk -v s="$(metric spillway_producers_blocked_seconds 'topic="full"')" \
	'BEGIN { exit !(s + 0 > 0) }' || fail "blocked seconds"
rm -f "$TMP/fault"
wait "$PP" || fail "produce failed after the disk came back"
sleep 0.3
scrape /metrics
[ "$(metric spillway_spill_failing 'topic="full"')" = 0 ] || fail "still failing"
[ "$(metric spillway_producers_blocked_seconds 'topic="full"')" = 0 ] || fail "still blocked"
awk -v s="$(metric spillway_producers_blocked_seconds_total 'topic="full"')" \
	'BEGIN { exit !(s + 0 > 0) }' || fail "blocked seconds total"
stop_daemon

check "hostile links at the textfile's names: never written through"
mkdir -p "$TMP/tf"
echo precious >"$TMP/victim"
ln -s "$TMP/victim" "$TMP/tf/.x.prom.tmp"
ln -s "$TMP/victim" "$TMP/tf/x.prom"
: >"$TMP/daemon.log"
"$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" --data-dir "$SPILLWAY_DATA_DIR" \
	--metrics-textfile "$TMP/tf/x.prom" --metrics-interval 0.2 >>"$TMP/daemon.log" 2>&1 &
DPID=$!
wait_attached full
stop_daemon
[ "$(cat "$TMP/victim")" = precious ] || fail "a link's target was written"
[ ! -L "$TMP/tf/x.prom" ] && grep -q '^spillway_build_info' "$TMP/tf/x.prom" ||
	fail "the textfile did not replace the link with a file of its own"

check "the textfile spillwayd leaves at exit says it is down"
: >"$TMP/daemon.log"
"$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" --data-dir "$SPILLWAY_DATA_DIR" \
	--metrics-textfile "$TMP/last.prom" >>"$TMP/daemon.log" 2>&1 &
DPID=$!
wait_attached full
stop_daemon
grep -q '^spillway_daemon_up{topic="full"} 0$' "$TMP/last.prom" || fail "daemon_up after exit"
promtool check metrics <"$TMP/last.prom" >"$TMP/lint" 2>&1 || { cat "$TMP/lint" >&2; fail "promtool (last)"; }

check "bad addresses are refused before starting"
for bad in "notaport" "127.0.0.1:0" "127.0.0.1:70000" "300.1.1.1:9464" ":9464"; do
	expect_rc 2 "$DAEMON" --foreground --metrics-listen "$bad"
	expect_err "--metrics-listen"
done
check "a textfile directory that cannot be opened is an error at start"
expect_rc 1 "$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" --data-dir "$SPILLWAY_DATA_DIR" \
	--metrics-textfile "$TMP/no/such/dir/x.prom"
expect_err "cannot open the directory"
check "an address in use is an error at start, not a silent daemon without metrics"
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' \
	>"$TMP/port" &
BGPIDS+=($!)
for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
expect_rc 1 "$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" --data-dir "$SPILLWAY_DATA_DIR" \
	--metrics-listen "$(cat "$TMP/port")"
expect_err "cannot serve metrics"
check "... also without --foreground: the command fails, no daemon is left"
expect_rc 1 "$DAEMON" --shm-dir "$SPILLWAY_SHM_DIR" --data-dir "$SPILLWAY_DATA_DIR" \
	--metrics-listen "$(cat "$TMP/port")"
expect_err "cannot serve metrics"
pgrep -f "spillwayd --shm-dir $SPILLWAY_SHM_DIR" >/dev/null && fail "a daemon was left running"

done_ok
