# SPDX-License-Identifier: MIT
"""py_replay.py - how fast Python iterates a replay (python/spillway), against
the C reader on the same log (`spillway replay` is not the C figure: it
formats; this uses spw_reader_read through cffi with no per-record Python work
as the floor). Needs a build (make) and spillwayd; run alone, pinned:

  PYTHONPATH=python taskset -c 0 /usr/bin/python3 bench/py_replay.py [RECORDS] [SIZE]

Prints records/s for sending, for iterating as bytes and as zero-copy views,
and for the C batch loop, each the median of 3 passes (the reads over the same
disk log, in the page cache). The package's mode (the compiled API-mode
module, or ABI mode through dlopen) is SPILLWAY_PY_MODE's, else its default;
the first line names it. Compare the two:

  for m in abi api api abi; do SPILLWAY_PY_MODE=$m PYTHONPATH=python \
      taskset -c 0 /usr/bin/python3 bench/py_replay.py; done
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import spillway

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 64


def timed(fn):
    t0 = time.perf_counter()
    n, nbytes = fn()
    return n / (time.perf_counter() - t0), nbytes


def main():
    tmp = tempfile.mkdtemp(prefix="spw-pyb.", dir="/var/tmp")
    shm = tempfile.mkdtemp(prefix="spw-pyb.", dir="/dev/shm")
    os.environ["SPILLWAY_SHM_DIR"], os.environ["SPILLWAY_DATA_DIR"] = shm + "/s", tmp + "/d"
    cli, daemon = ROOT + "/build/spillway", ROOT + "/build/spillwayd"
    subprocess.run([cli, "topic", "create", "pyb", "--ring-size", "64M"], check=True,
                   capture_output=True)
    d = subprocess.Popen([daemon, "--foreground", "--data-dir", tmp + "/d", "--shm-dir",
                          shm + "/s"], stderr=subprocess.DEVNULL)
    try:
        payload = b"x" * SIZE
        print("mode %s" % spillway.MODE)
        with spillway.Topic.open("pyb") as t, spillway.Producer(t) as p:
            t0 = time.perf_counter()
            for _ in range(N):
                last = p.send(payload, timeout=30)
            rate = N / (time.perf_counter() - t0)
            p.wait_ack(last, "spilled", timeout=60)
        print("%-38s %8.2f M records/s  (%d B records, one pass, the daemon spilling)" %
              ("send", rate / 1e6, SIZE))

        def iterate(zero_copy):
            n = b = 0
            with spillway.Reader("pyb", live=False, zero_copy=zero_copy) as r:
                for rec in r:
                    n += 1
                    b += len(rec.data)
            return n, b

        def c_floor():
            n = b = 0
            with spillway.Reader("pyb", live=False) as r:
                while True:
                    k = spillway.lib.spw_reader_read(r._r, r._recs, r._batch, 0)
                    if k <= 0:
                        break
                    n += k
            return n, 0

        for name, fn in (("bytes", lambda: iterate(False)),
                         ("zero-copy views", lambda: iterate(True)),
                         ("C batch loop (no per-record Python)", c_floor)):
            rates = [timed(fn)[0] for _ in range(3)]
            med = statistics.median(rates)
            print("%-38s %8.2f M records/s  %8.1f MB/s (%d B records, %d records)" %
                  (name, med / 1e6, med * SIZE / 1e6, SIZE, N))
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
