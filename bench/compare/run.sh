#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - `make bench-compare`: Spillway against pipe, Unix socket, POSIX mq,
# ZeroMQ ipc:// and a plain file writer, in one run, same sizes, same pinning.
#
#   bash bench/compare/run.sh [extra options for the compare program]
#   bash bench/compare/run.sh --build-only   build $BUILD/bench/compare, run nothing
#
# Needs build/libspillway.a, build/libspill.a and build/spillwayd (make lib
# bins). Installs libzmq3-dev and gnuplot-nox with apt-get when missing (not
# with --build-only: then the zmq rows are left out when libzmq is missing).
# The program is bench/compare/*.c plus what it shares with `spillway bench`:
# tools/bench_topo.c, bench_hist.c, bench_proc.c, bench_parse.c and
# bench_daemon.c.
# Writes bench/results/compare.tsv, compare.md, compare-throughput.png,
# compare-latency.png (plus compare_latency.tsv, compare_env.txt, compare.log;
# with AERON also compare-vs-aeron.png).
#
# A peer that stalls, crashes or outlives its deadline is a row marked failed
# (status column of compare.tsv, and compare.md) and the run goes on; the run
# fails (exit 1) only when a Spillway case failed.
#
# Environment: BUILD (build), OUT (bench/results), COMPARE_DURATION (1 s per
# throughput run), COMPARE_RTT_DURATION (0.5 s per round-trip run),
# COMPARE_REPS (3; 5 with AERON), COMPARE_SIZES (64,1K,16K), COMPARE_CPUS (e.g.
# 2,3; default: hwloc picks two cores), COMPARE_DATA_DIR (/var/tmp: must be a
# disk), COMPARE_TIMEOUT (20: seconds a process may run past its run's end
# before it is killed), COMPARE_BACKOFF (50000: ns the spillway-backoff
# receiver waits after a peek that found nothing), COMPARE_BATCH (32: messages
# per spw_producer_send_batch call of the spillway-batch sender), AERON (a directory with Aeron's C binaries: adds the
# aeron-ipc rows and the ratios against them; docs/aeron.md),
# COMPARE_RING (1M: the ring of the Spillway rows without spill, and every
# other system's buffer where it has one; docs/aeron.md "Buffer sizes"),
# COMPARE_FAULT (<system>:<sender|receiver>:<stall|crash>: SIGSTOP or SIGSEGV
# that process once its run started, to check that the row fails alone).
# The defaults take about 3-4 minutes on 2 cores. Run it on a quiet machine:
# anything else running moves the numbers.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
OUT=${OUT:-bench/results}
BIN=$BUILD/bench/compare
say() { printf 'bench-compare: %s\n' "$*" >&2; }
build_only=false
if [ "${1:-}" = --build-only ]; then
	build_only=true
	shift
fi

# --- dependencies -------------------------------------------------------------------
missing=()
for p in libzmq3-dev gnuplot-nox; do
	$build_only && break
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
		{ "${SUDO[@]}" apt-get update -q >/dev/null &&
		  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; } ||
		say "could not install ${missing[*]}: going on without (zmq rows n/a, or no plots)"
fi

for f in "$BUILD/libspillway.a" "$BUILD/libspill.a" "$BUILD/spillwayd"; do
	[ -e "$f" ] || { say "$f is missing: run 'make lib bins' first"; exit 1; }
done

# --- build ----------------------------------------------------------------------------
CC=${CC:-cc}
WARN="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Wcast-align -Wwrite-strings"
ZMQ_CFLAGS="" ZMQ_LIBS=""
if pkg-config --exists libzmq 2>/dev/null; then
	ZMQ_CFLAGS="-DHAVE_ZMQ $(pkg-config --cflags libzmq)"
	ZMQ_LIBS=$(pkg-config --libs libzmq)
elif [ -e /usr/include/zmq.h ]; then
	ZMQ_CFLAGS="-DHAVE_ZMQ" ZMQ_LIBS="-lzmq"
else
	say "libzmq not found: the zmq rows will be n/a"
fi
HWLOC_LIBS=$(pkg-config --libs hwloc 2>/dev/null || echo -lhwloc)
URING_LIBS=$(pkg-config --libs liburing 2>/dev/null || echo -luring)
mkdir -p "$(dirname "$BIN")" "$OUT"
say "building $BIN"
# shellcheck disable=SC2086 # the flag lists are meant to split
$CC -std=gnu11 -O2 -g $WARN -Iring $ZMQ_CFLAGS \
	bench/compare/*.c \
	tools/bench_topo.c tools/bench_hist.c tools/bench_proc.c tools/bench_parse.c \
	tools/bench_daemon.c \
	"$BUILD/libspill.a" "$BUILD/libspillway.a" \
	$ZMQ_LIBS -lrt $HWLOC_LIBS $URING_LIBS -lisal -lm -pthread -o "$BIN"
if $build_only; then
	say "built $BIN"
	exit 0
fi

# --- run ------------------------------------------------------------------------------
reps=${COMPARE_REPS:-3}
if [ -n "${AERON:-}" ]; then
	AERON=$(cd "$AERON" && pwd) || { say "AERON=$AERON: no such directory"; exit 1; }
	# Aeron and Spillway alternate round by round: at least 5 rounds unless
	# COMPARE_REPS says otherwise.
	reps=${COMPARE_REPS:-5}
fi
args=(--out "$OUT"
      --duration "${COMPARE_DURATION:-1}"
      --rtt-duration "${COMPARE_RTT_DURATION:-0.5}"
      --reps "$reps"
      --sizes "${COMPARE_SIZES:-64,1K,16K}"
      --data-dir "${COMPARE_DATA_DIR:-/var/tmp}")
[ -n "${COMPARE_CPUS:-}" ] && args+=(--cpus "$COMPARE_CPUS")
[ -n "${COMPARE_TIMEOUT:-}" ] && args+=(--timeout "$COMPARE_TIMEOUT")
[ -n "${COMPARE_BACKOFF:-}" ] && args+=(--backoff "$COMPARE_BACKOFF")
[ -n "${COMPARE_BATCH:-}" ] && args+=(--batch "$COMPARE_BATCH")
[ -n "${COMPARE_RING:-}" ] && args+=(--ring-size "$COMPARE_RING")
[ -n "${AERON:-}" ] && args+=(--aeron "$AERON")
args+=("$@")
export SPW_DAEMON=${SPW_DAEMON:-$ROOT/$BUILD/spillwayd}

# POSIX queues: the default limits (10 messages, 8 KiB each) cannot hold a
# 16 KiB message. As root, run in a private IPC namespace whose limits we may
# raise without touching the host's.
runner=()
if [ "$(id -u)" = 0 ] && unshare --ipc true 2>/dev/null; then
	runner=(unshare --ipc sh -c 'echo 4096 > /proc/sys/fs/mqueue/msg_max &&
		echo 1048576 > /proc/sys/fs/mqueue/msgsize_max; exec "$@"' sh)
	say "POSIX mq: private IPC namespace, msg_max 4096, msgsize_max 1 MiB"
else
	say "POSIX mq: the system's limits (msg_max $(cat /proc/sys/fs/mqueue/msg_max)," \
	    "msgsize_max $(cat /proc/sys/fs/mqueue/msgsize_max)): larger messages will be n/a"
fi

say "running ($reps runs of each case; progress below)"
started=$(date +%s)
set +e
"${runner[@]}" "$BIN" "${args[@]}" 2>&1 | tee "$OUT/compare.log"
status=${PIPESTATUS[0]}
set -e
say "measured in $(( $(date +%s) - started )) s (exit status $status)"
[ -s "$OUT/compare.tsv" ] || { say "no results written"; exit 1; }

# --- markdown -------------------------------------------------------------------------
model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
threads=$(nproc --all 2>/dev/null || echo "?")
cores=$(lscpu -p=CORE,SOCKET 2>/dev/null | grep -v '^#' | sort -u | wc -l)
awk -F'\t' -f bench/compare/report.awk \
	-v date="$(date -u '+%Y-%m-%d %H:%M UTC')" -v model="${model:-unknown CPU}" \
	-v cores="${cores:-?}" -v threads="$threads" -v kernel="$(uname -r)" \
	-v cmd="make bench-compare${AERON:+ AERON=$AERON}" \
	"$OUT/compare_env.txt" "$OUT/compare.tsv" > "$OUT/compare.md"

# --- plots ----------------------------------------------------------------------------
if command -v gnuplot >/dev/null; then
	gnuplot -e "dir='$OUT'" bench/compare/plot.gp ||
		{ say "gnuplot failed"; status=1; }
else
	say "gnuplot missing: no plots"
fi

vs=""
[ -n "${AERON:-}" ] && [ -e "$OUT/compare-vs-aeron.png" ] && vs=" $OUT/compare-vs-aeron.png"
say "wrote $OUT/compare.tsv $OUT/compare.md $OUT/compare-throughput.png $OUT/compare-latency.png$vs"
[ "$status" = 0 ] || say "a Spillway case failed (see $OUT/compare.md): exit status $status"
exit "$status"
