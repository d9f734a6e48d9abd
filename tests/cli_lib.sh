# shellcheck shell=bash
# cli_lib.sh - helpers sourced by tests/cli_*.sh (the spillway CLI's end-to-end
# tests). Run directly (make check-tests runs every tests/*.sh) it does nothing.
#
# Each test script: `set -u`, sources this file, then calls `check "what"`
# before each check and `fail "why"` on the first failure (exit 1). The
# sandbox (temp dirs, a daemon) is always cleaned up by the EXIT trap.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	echo "cli_lib.sh: helpers for tests/cli_*.sh, nothing to run"
	exit 0
fi
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLI=${SPW_CLI:-$HERE/../build/spillway}
DAEMON=${SPW_DAEMON:-$HERE/../build/spillwayd}
[ -x "$CLI" ] || { echo "FAIL: no spillway binary at $CLI (set SPW_CLI)" >&2; exit 1; }
[ -x "$DAEMON" ] || { echo "FAIL: no spillwayd binary at $DAEMON (set SPW_DAEMON)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/spw-cli.XXXXXX) || exit 1
SHMROOT=$(mktemp -d /dev/shm/spw-cli.XXXXXX) || exit 1
export SPILLWAY_SHM_DIR=$SHMROOT/shm SPILLWAY_DATA_DIR=$TMP/data
unset SPILLWAY_FAULT_FILE
DPID=
BGPIDS=()
T0=$(date +%s.%N)

cli_cleanup() {
	local p
	for p in "${BGPIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null
		kill -CONT "$DPID" 2>/dev/null # a test that stopped it failed
		wait "$DPID" 2>/dev/null
	fi
	rm -rf "$TMP" "$SHMROOT"
}
trap cli_cleanup EXIT
trap 'echo "FAIL: interrupted" >&2; exit 1' INT TERM

check() { echo "check: $*"; }

fail() {
	echo "FAIL: $*" >&2
	if [ -s "$TMP/err" ]; then
		echo "--- stderr of the last command:" >&2
		head -c 2000 "$TMP/err" >&2
	fi
	if [ -s "$TMP/daemon.log" ]; then
		echo "--- daemon log:" >&2
		tail -n 20 "$TMP/daemon.log" >&2
	fi
	exit 1
}

# run CMD...: stdout to $TMP/out, stderr to $TMP/err, exit status in RC.
run() {
	"$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
}

# expect_rc N CMD...: run it, fail unless it exits with N.
expect_rc() {
	local want=$1
	shift
	run "$@"
	[ "$RC" -eq "$want" ] || fail "expected exit $want, got $RC from: $*"
}

# expect_err TEXT: the last command's stderr holds TEXT (fixed string).
expect_err() {
	grep -qF -- "$1" "$TMP/err" || fail "stderr lacks \"$1\""
}

expect_out() {
	grep -qF -- "$1" "$TMP/out" || fail "stdout lacks \"$1\""
}

start_daemon() { # [LOG_LEVEL] (info)
	: >"$TMP/daemon.log"
	"$DAEMON" --foreground --shm-dir "$SPILLWAY_SHM_DIR" --data-dir "$SPILLWAY_DATA_DIR" \
		--log-level "${1:-info}" >>"$TMP/daemon.log" 2>&1 &
	DPID=$!
}

# wait_attached TOPIC: until the daemon logged it attached the topic (5 s).
wait_attached() {
	local _
	for _ in $(seq 1 250); do
		grep -q "topic $1: attached" "$TMP/daemon.log" 2>/dev/null && return 0
		kill -0 "$DPID" 2>/dev/null || fail "spillwayd exited"
		sleep 0.02
	done
	fail "spillwayd did not attach topic $1 within 5 s"
}

stop_daemon() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID"
	wait "$DPID"
	local rc=$?
	DPID=
	[ "$rc" -eq 0 ] || fail "spillwayd exited with $rc on SIGTERM"
}

# wait_gone PID SECONDS: until the process exited; fail after SECONDS.
wait_gone() {
	local _
	for _ in $(seq 1 $(($2 * 50))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.02
	done
	fail "process $1 still running after $2 s"
}

done_ok() {
	echo "ok: $(basename "$0") ($(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $T0 }") s)"
}
