# SPDX-License-Identifier: MIT
"""py_api.py - the Python package (python/spillway) end to end, a pytest
module run by tests/py_api.sh with Debian's python3 (python3-pytest) and
PYTHONPATH=python:

  - its cffi declarations match the C header (sizes and offsets, compiled here);
  - topics: create, open, info, delete; FileExistsError, NotFound;
  - Producer.send / send_many / wait_ack, TimeoutError without a daemon;
  - Reader from earliest, latest, a position, a datetime, a group; stop bounds;
    batches(); zero_copy views that raise once their batch is gone; paced();
  - with a real spillwayd: a log three rings long read back disk then live, every
    record once and in order; lag; a flipped byte in a segment raises CorruptData
    naming the file and position, and skip_corrupt=True passes over it.
"""

import datetime
import errno
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import spillway

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = 0


def check(cond, what):
    global CHECKS
    CHECKS += 1
    assert cond, what


def raises(exc, fn, what):
    try:
        fn()
    except exc as e:
        check(True, what)
        return e
    check(False, what + " (no %s raised)" % exc.__name__)


def test_layout_matches_the_header(tmp_path):
    """Every struct the package declares has the C header's size and offsets."""
    fields = {
        "struct spw_topic_config": ["ring_bytes", "max_record", "max_producers", "start_position"],
        "struct spw_topic_info": ["tail", "reclaimed", "durable", "daemon_heartbeat_ns",
                                  "stall_position", "durable_error", "disk_bad_ranges"],
        "struct spw_record": ["position", "timestamp_ns", "data", "len", "flags"],
        "struct spw_reader_opts": ["start", "position", "time_ns", "group", "stop_position",
                                   "max_records", "flags"],
    }
    tmp = str(tmp_path)
    src = os.path.join(tmp, "layout.c")
    with open(src, "w") as f:
        f.write('#include <stdio.h>\n#include <stddef.h>\n#include "spillway.h"\nint main(void){\n')
        for s, fs in fields.items():
            f.write('printf("%%zu\\n", sizeof(%s));\n' % s)
            for m in fs:
                f.write('printf("%%zu\\n", offsetof(%s, %s));\n' % (s, m))
        f.write("return 0;}\n")
    exe = os.path.join(tmp, "layout")
    subprocess.run(["cc", "-I", os.path.join(ROOT, "ring"), src, "-o", exe], check=True)
    want = [int(x) for x in subprocess.run([exe], check=True, capture_output=True,
                                           text=True).stdout.split()]
    got = []
    ffi = spillway.ffi
    for s, fs in fields.items():
        got.append(ffi.sizeof(s))
        got += [ffi.offsetof(s, m) for m in fs]
    check(got == want, "cffi layout %s == C layout %s" % (got, want))


def test_topics_and_producers():
    spillway.Topic.create("py_a", ring_size=1 << 16).close()
    raises(FileExistsError, lambda: spillway.Topic.create("py_a"), "create twice")
    raises(spillway.NotFound, lambda: spillway.Topic.open("py_none"), "open a missing topic")
    with spillway.Topic.open("py_a") as t, spillway.Producer(t) as p:
        first = p.send(b"one")
        last = p.send_many([b"two", bytearray(b"three"), memoryview(b"four")])
        check(first == 0 and last > first, "positions grow")
        at = p.send(b"five", timestamp=1_700_000_000_123_456_789)
        at2 = p.send(b"six", timestamp=datetime.datetime(2030, 1, 2, tzinfo=datetime.timezone.utc))
        at3 = p.send(b"seven", timestamp=0)
        raises(ValueError, lambda: p.send(b"x", timestamp=-1), "a negative timestamp")
        with spillway.Reader("py_a", start=at) as r:
            got = [(x.position, x.timestamp, x.data) for x in r]
        check(got[:3] == [(at, 1_700_000_000_123_456_789, b"five"),
                          (at2, 1_893_542_400_000_000_000, b"six"), (at3, 0, b"seven")],
              "the caller's timestamps, as given")
        last = at3
        p.wait_ack(last, level="committed", timeout=1.0)
        t0 = time.monotonic()
        raises(TimeoutError, lambda: p.wait_ack(last, level="spilled", timeout=0.2),
               "spilled without a daemon times out")
        check(time.monotonic() - t0 >= 0.15, "the timeout was waited")
        info = t.info()
        check(info["ring_bytes"] == 1 << 16 and info["tail"] > last, "info")
        # A full ring with nobody reclaiming: TimeoutError, not a hang.
        raises(TimeoutError, lambda: [p.send(b"x" * 4000, timeout=0.2) for _ in range(100)],
               "a full ring times out")
    spillway.Topic.delete("py_a")
    raises(spillway.NotFound, lambda: spillway.Topic.open("py_a"), "deleted")


def test_send_many_in_batches():
    # 600 records: batches of 256, 256 and 88 (spw_producer_send_batch_wait).
    with spillway.Topic.create("py_sm", ring_size=1 << 20, max_record=1024) as t, \
            spillway.Producer(t) as p:
        check(p.send_many([]) is None, "no records: None")
        data = [b"m %d " % i * (i % 7) for i in range(600)]
        last = p.send_many(iter(data))
        with spillway.Reader("py_sm") as r:
            recs = list(r)
        check([x.data for x in recs] == data, "every record, in order, byte for byte")
        check(recs[-1].position == last, "the last position is returned")
        check(recs[0].timestamp == recs[255].timestamp != recs[256].timestamp,
              "one timestamp per batch of 256")
        # A record over max_record: its batch sends nothing, those before it went.
        tail = t.info()["tail"]
        raises(spillway.SpillwayError, lambda: p.send_many([b"a"] * 300 + [b"x" * 2000]),
               "too long")
        check(t.info()["tail"] == tail + 256 * 24, "the first full batch went, not the second")


def test_send_many_with_timestamps():
    # Each record its own time (spw_producer_send_batch_wait_at), over two batches.
    with spillway.Topic.create("py_smt", ring_size=1 << 20, max_record=1024) as t, \
            spillway.Producer(t) as p:
        data = [b"t %d" % i for i in range(300)]
        times = [1_700_000_000_000_000_000 + i * 1000 for i in range(300)]
        times[5] = 0
        times[7] = datetime.datetime(2030, 1, 2, tzinfo=datetime.timezone.utc)
        last = p.send_many(data, timestamps=iter(times))
        with spillway.Reader("py_smt") as r:
            recs = list(r)
        check([x.data for x in recs] == data, "every record, in order")
        check(recs[-1].position == last, "the last position is returned")
        want = [spillway._time_ns(x) for x in times]
        check([x.timestamp for x in recs] == want, "each record carries its own time")
        check(recs[7].timestamp == 1893542400 * 10**9, "a datetime in ns")
        tail = t.info()["tail"]
        raises(ValueError, lambda: p.send_many([b"a", b"b"], timestamps=[1]), "fewer")
        raises(ValueError, lambda: p.send_many([b"a"], timestamps=[1, 2]), "more")
        raises(ValueError, lambda: p.send_many([b"a"], timestamps=[-1]), "negative")
        raises(ValueError, lambda: p.send_many([b"a"], timestamps=[1 << 64]), "past uint64")
        raises(ValueError, lambda: p.send(b"a", timestamp=1 << 64), "past uint64 (send)")
        check(t.info()["tail"] == tail, "a short batch with bad times sends nothing")
        # 256 records and 257 times: found before the (only, full) batch goes.
        raises(ValueError, lambda: p.send_many([b"x"] * 256, timestamps=range(1, 258)),
               "more timestamps than 256 records")
        check(t.info()["tail"] == tail, "nothing of the last batch is sent")
        # 512 and 513: the first batch goes, the last does not.
        raises(ValueError, lambda: p.send_many([b"x"] * 512, timestamps=range(1, 514)),
               "more timestamps than 512 records")
        check(t.info()["tail"] == tail + 256 * 24, "only the first full batch went")
        # A datetime to the microsecond, exactly (no float rounding).
        at = p.send(b"d", timestamp=datetime.datetime(2026, 12, 4, 12, 0, 0, 123457,
                                                      tzinfo=datetime.timezone.utc))
        with spillway.Reader("py_smt", start=at) as r:
            rec = next(iter(r))
        check(rec.timestamp == 1796385600123457000, "a datetime's microseconds exactly")


def test_readers():
    with spillway.Topic.create("py_r", ring_size=1 << 20) as t, spillway.Producer(t) as p:
        pos = [p.send(b"rec %d" % i) for i in range(100)]
        mid = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(0.01)
        pos += [p.send(b"rec %d" % i) for i in range(100, 120)]
        with spillway.Reader("py_r") as r:
            recs = list(r)
        check([x.position for x in recs] == pos, "earliest: every record in order")
        check(recs[5].data == b"rec 5" and isinstance(recs[5].data, bytes), "bytes by default")
        check(abs(recs[0].datetime.timestamp() - time.time()) < 60, "timestamp")
        with spillway.Reader("py_r", start=pos[50], stop=pos[60]) as r:
            got = [x.data for x in r]
        check(got == [b"rec %d" % i for i in range(50, 60)], "a position and a stop")
        with spillway.Reader("py_r", start=mid) as r:
            got = [x.data for x in r]
        check(got[0] == b"rec 100" and len(got) == 20, "a datetime start: %r" % got[:2])
        with spillway.Reader("py_r", start="latest") as r:
            check(r.read() == [], "latest: nothing yet")
            p.send(b"new")
            check([x.data for x in r.read(timeout=1.0)] == [b"new"], "latest: what comes")
            check(r.lag == 0, "caught up: no lag")
        # Group files live in the topic's data dir, which spillwayd makes (there is
        # none here): make it.
        os.makedirs(os.path.join(os.environ["SPILLWAY_DATA_DIR"], "py_r"), mode=0o700)
        with spillway.Reader("py_r", batch=7) as r:
            sizes = [len(b) for b in r.batches()]
            check(sum(sizes) == 121 and max(sizes) == 7, "batches of at most 7")
            r.commit("g1")
        with spillway.Reader("py_r", start="group:g1") as r:
            check(r.read() == [], "a group resumes where it committed")
        with spillway.Reader("py_r", zero_copy=True, batch=10) as r:
            b1 = r.read()
            v = b1[3].data
            check(isinstance(v, memoryview) and v.readonly and bytes(v) == b"rec 3",
                  "zero copy: a read-only view")
            r.read()
            raises(ValueError, lambda: bytes(v), "a view of an old batch raises")
            # A buffer still exported from a view at the next batch: BufferError,
            # and nothing read is lost (the next read after its release goes on).
            b3 = r.read()
            held = spillway.ffi.from_buffer(b3[0].data)
            raises(BufferError, r.read, "an exported view held over a batch")
            spillway.ffi.release(held)
            b4 = r.read()
            check(bytes(b4[0].data) == b"rec 30" and bytes(b4[1].data) == b"rec 31",
                  "then the next batch, none lost, none half released")
            # A view made from a record's view (which Python cannot revoke):
            # the next read and close raise BufferError instead of letting it
            # read reused or freed memory; once it is dropped both go on.
            kept = b4[1].data[2:]
            raises(BufferError, r.read, "a slice of a view held over a batch")
            raises(BufferError, r.close, "a slice of a view held at close")
            check(bytes(kept) == b"c 31", "the slice still reads its own record")
            del kept
            check(bytes(r.read()[0].data) == b"rec 40", "then the next batch, none lost")
            kept = memoryview(r.read()[0].data)
            raises(BufferError, r.close, "memoryview() of a view held at close")
            del kept
        check(r._r is None, "closed once the view was dropped")
        # Views and bytes give the same records (an empty one too), batch after
        # batch; the last batch's views are released by the final, empty read
        # of the iteration (or at close).
        last = p.send(b"")
        with spillway.Reader("py_r") as r:
            want = [(x.position, x.timestamp, x.data) for x in r]
        with spillway.Reader("py_r", zero_copy=True, batch=16) as r:
            got, held = [], None
            for b in r.batches():
                got += [(x.position, x.timestamp, bytes(x.data)) for x in b]
                held = b[-1].data
        check(len(want) == 122 and got == want, "zero copy: the records bytes mode reads")
        check(want[-1][0] == last and want[-1][2] == b"", "an empty record")
        raises(ValueError, lambda: bytes(held), "a view of a closed reader raises")
        rec = spillway.Record(8, 1_500_000_000_000_000_000, b"ab")
        check((rec.position, rec.timestamp, rec.data) == (8, 1_500_000_000_000_000_000, b"ab")
              and rec.datetime.year == 2017 and "len=2" in repr(rec), "a Record by hand")
        again = pickle.loads(pickle.dumps(rec))
        check((again.position, again.timestamp, again.data) == (8, rec.timestamp, b"ab"),
              "a Record pickles")
        if spillway.MODE == "api":  # the C Record holds bytes-like data only
            raises(TypeError, lambda: spillway.Record(0, 0, [1]), "a Record of a list")
            raises(OverflowError, lambda: spillway.Record(0, -1, b""), "a negative timestamp")
        raises(spillway.SpillwayError, lambda: spillway.Reader("py_r", start=pos[1] + 8),
               "a position inside a record")
        e = raises(spillway.NotFound, lambda: spillway.Reader("py_nope"), "a missing topic")
        check(e.errno == errno.ENOENT, "errno")
        raises(ValueError, lambda: spillway.Reader("py_r", start="soon"), "a bad start")
        e = raises(spillway.SpillwayError, lambda: spillway.Topic.create("../x"),
                   "a bad topic name")
        check(e.errno == errno.EINVAL, "EINVAL for a bad name")
    spillway.Topic.delete("py_r")


def test_paced():
    """Reader.paced: in order, never early (a lower bound), max_gap shortens."""
    with spillway.Topic.create("py_p", ring_size=1 << 16) as t, spillway.Producer(t) as p:
        for burst in range(3):
            for i in range(5):
                p.send(b"%d" % (burst * 5 + i))
            time.sleep(0.3)
        time.sleep(2.0)
        p.send(b"15")
    with spillway.Reader("py_p") as r:
        t0 = time.monotonic()
        got = [int(x.data) for x in r.paced(speed=2.0, max_gap=10)]
        took = time.monotonic() - t0
    check(got == list(range(16)), "paced: every record, in order")
    check(took >= 1.2, "paced 2x: never early (%.2f s for ~2.6 s of record time)" % took)
    check(r.pacing["records"] == 16 and r.pacing["p99"] >= 0, "pacing stats")
    with spillway.Reader("py_p") as r:
        t0 = time.monotonic()
        got = [int(x.data) for x in r.paced(speed=1.0, max_gap=0.05)]
        took = time.monotonic() - t0
    check(got == list(range(16)), "paced with max_gap: in order")
    check(0.14 <= took < 1.5, "max_gap shortens the silences (%.2f s)" % took)
    raises(ValueError, lambda: next(spillway.Reader("py_p").paced(0)), "speed 0")
    spillway.Topic.delete("py_p")


def test_with_a_daemon(tmp_path):
    tmp = str(tmp_path)
    env_shm, env_data = os.environ["SPILLWAY_SHM_DIR"], os.environ["SPILLWAY_DATA_DIR"]
    cli = os.environ.get("SPW_CLI", os.path.join(ROOT, "build", "spillway"))
    daemon = os.environ.get("SPW_DAEMON", os.path.join(ROOT, "build", "spillwayd"))
    subprocess.run([cli, "topic", "create", "py_d", "--ring-size", "64K",
                    "--segment-size", "256K", "--flush-ms", "20"], check=True,
                   capture_output=True)
    log = open(os.path.join(tmp, "daemon.log"), "w")
    d = subprocess.Popen([daemon, "--foreground", "--data-dir", env_data, "--shm-dir", env_shm],
                         stdout=log, stderr=log)
    try:
        with spillway.Topic.open("py_d") as t, spillway.Producer(t) as p:
            pos = [p.send(b"%06d" % i + b"x" * (i % 300), timeout=10) for i in range(3000)]
            p.wait_ack(pos[-1], level="durable", timeout=10)
        with spillway.Reader("py_d") as r:
            got = [(x.position, x.data[:6]) for x in r]
        check([g[0] for g in got] == pos, "disk then live: every record once, in order")
        check(all(g[1] == b"%06d" % i for i, g in enumerate(got)), "the bytes")
        with spillway.Reader("py_d", readahead=False) as r:
            check([(x.position, x.data[:6]) for x in r] == got,
                  "readahead=False: the same records")
        # A lapped live reader: live first, then the ring laps it several times;
        # it goes on from the segments, every record once, in order.
        with spillway.Reader("py_d", start=pos[-1]) as r:
            first = r.read(timeout=1.0)
            check(len(first) == 1 and r.position > pos[-1], "live at the end")
            with spillway.Topic.open("py_d") as t, spillway.Producer(t) as p:
                more = [p.send(b"%06d" % i, timeout=10) for i in range(3000, 9000)]
                p.wait_ack(more[-1], level="spilled", timeout=10)
            got2 = [x.position for x in r]
        check(got2 == more, "lapped: every record once, in order (%d of %d)" %
              (len(got2), len(more)))
        # Produced by the C CLI, read in Python.
        subprocess.run([cli, "produce", "py_d"], input=b"from C\n", check=True)
        with spillway.Reader("py_d", start=more[-1]) as r:
            check([x.data for x in r][1:] == [b"from C"], "a record the CLI produced")
        # The docs' example (python/examples/per_minute.py) runs and counts them.
        ex = subprocess.run([sys.executable, os.path.join(ROOT, "python", "examples",
                                                          "per_minute.py"), "py_d", "5"],
                            check=True, capture_output=True, text=True,
                            env=dict(os.environ,
                                     PYTHONPATH=os.path.join(ROOT, "python")))
        check("records/s" in ex.stdout, "the per-minute example: %r" % ex.stdout[:80])
        # A flipped byte in the first segment: CorruptData names file and position.
        seg = sorted(f for f in os.listdir(os.path.join(env_data, "py_d")) if f.endswith(".seg"))[0]
        path = os.path.join(env_data, "py_d", seg)
        with open(path, "r+b") as f:
            f.seek(5000)
            c = f.read(1)
            f.seek(5000)
            f.write(bytes([c[0] ^ 0x40]))
        with spillway.Reader("py_d") as r:
            e = raises(spillway.CorruptData, lambda: list(r), "a flipped byte")
            check(e.file and e.file.endswith(seg) and e.position is not None and
                  e.position <= 5000, "the file and position: %s %s" % (e.file, e.position))
        with spillway.Reader("py_d", skip_corrupt=True) as r:
            n = len(list(r))
            check(0 < n < 9001 and r.skipped > 0, "skip_corrupt passes over it (%d)" % n)
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=30)
        log.close()


def test_create_over_a_disk_log_is_refused():
    """Topic.create over a topic whose ring is gone but whose disk log is kept started
    a new ring at position 0, and the daemon later spilled it over the log's
    positions (a review, 2026-12-04): refused, as `spillway topic create` does."""
    d = os.path.join(os.environ["SPILLWAY_DATA_DIR"], "py_dl")
    os.makedirs(d, mode=0o700)
    with open(os.path.join(d, "%020d.seg" % 0), "wb") as f:
        f.write(b"\0" * 8)
    e = raises(FileExistsError, lambda: spillway.Topic.create("py_dl", ring_size=1 << 16),
               "create over a disk log")
    check("has a disk log in %s (1 segments)" % d in str(e), str(e))
    raises(spillway.NotFound, lambda: spillway.Topic.open("py_dl"), "no ring was made")
    shutil.rmtree(d)
    spillway.Topic.create("py_dl", ring_size=1 << 16).close()
    spillway.Topic.delete("py_dl")


def test_garbage_in_the_live_ring_names_the_ring_and_position():
    """CorruptData from the live ring carried no file and position 0 (the reader's
    live path never recorded them; a review, 2026-12-04)."""
    import mmap
    with spillway.Topic.create("py_g", ring_size=1 << 16, max_producers=64) as t, \
            spillway.Producer(t) as p:
        check(p.send(b"a") == 0 and p.send(b"b") == 24, "two records of 24 bytes")
    ring = os.path.join(os.environ["SPILLWAY_SHM_DIR"], "py_g.ring")
    with open(ring, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        data = 4096 + 64 * 128  # ring/ring_layout.h: the header page, the slots
        m[data + 24:data + 32] = b"\xff" * 8
    with spillway.Reader("py_g") as r:
        got = []
        e = raises(spillway.CorruptData, lambda: got.extend(x.data for x in r),
                   "garbage in the live ring")
    check(e.file == ring and e.position == 24, "file %r position %r" % (e.file, e.position))
    check("py_g.ring at position 24" in str(e), str(e))
    spillway.Topic.delete("py_g")


def test_handles_closed_under_use():
    """A Producer whose Topic was closed, by `with` or by the collector at exit,
    raises ValueError instead of writing into an unmapped ring (it segfaulted);
    calls on closed handles and a bad ack level say so in words."""
    script = (
        "import spillway\n"
        "with spillway.Topic.create('py_c', ring_size=1 << 16) as t:\n"
        "    p = spillway.Producer(t)\n"
        "    p.send(b'inside')\n"
        "try:\n"
        "    p.send(b'after')\n"
        "except ValueError as e:\n"
        "    print('refused:', e)\n"
        "t2 = spillway.Topic.open('py_c')\n"
        "p2 = spillway.Producer(t2)\n"
        "def uses():\n"
        "    return t2, p2\n"  # both global at exit: the collector picks the order
        "print('end')\n")
    ex = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    out = ex.stdout.decode()
    check(ex.returncode == 0, "rc %d: %s %s" % (ex.returncode, out, ex.stderr.decode()[-300:]))
    check("refused: producer of topic 'py_c' is closed" in out and out.endswith("end\n"), out)
    with spillway.Topic.open("py_c") as t:
        p = spillway.Producer(t)
        raises(ValueError, lambda: p.wait_ack(0, level="bogus"), "a bad ack level")
        p.close()
        raises(ValueError, lambda: p.send(b"x"), "send on a closed producer")
        raises(ValueError, lambda: p.send_many([b"x"]), "send_many on a closed producer")
    r = spillway.Reader("py_c")
    r.close()
    for what, fn in (("commit", lambda: r.commit("g")), ("position", lambda: r.position),
                     ("skipped", lambda: r.skipped), ("read", lambda: r.read())):
        raises(ValueError, fn, what + " on a closed reader")
    e = raises(spillway.InvalidArgument, lambda: spillway.Reader("py_c", start=4),
               "a start inside a record")
    check(isinstance(e, ValueError) and isinstance(e, spillway.SpillwayError)
          and e.errno == errno.EINVAL and "inside a record" in str(e), str(e))
    e = raises(ValueError, lambda: spillway.Reader("py_c", start="group:../x"), "a bad group")
    check("group name '../x'" in str(e), str(e))
    spillway.Topic.delete("py_c")


def test_a_follower_of_a_deleted_topic_stops():
    """Reader(follow=True) raises NotFound once its topic is deleted (it waited for
    ever), as `spillway consume --follow` exits 1; .deleted says so."""
    with spillway.Topic.create("py_f", ring_size=1 << 16) as t, spillway.Producer(t) as p:
        p.send(b"x")
    script = (
        "import spillway, threading\n"
        "r = spillway.Reader('py_f', follow=True)\n"
        "print('deleted before:', r.deleted)\n"
        "got = []\n"
        "threading.Timer(0.5, lambda: spillway.Topic.delete('py_f')).start()\n"
        "try:\n"
        "    for rec in r:\n"
        "        got.append(bytes(rec.data))\n"
        "except spillway.NotFound as e:\n"
        "    print('stopped:', got, e, r.deleted)\n")
    ex = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    out = ex.stdout.decode()
    check(ex.returncode == 0, "rc %d: %s %s" % (ex.returncode, out, ex.stderr.decode()[-300:]))
    check("deleted before: False" in out, out)
    check("stopped: [b'x'] [Errno 2] topic 'py_f' was deleted while following it" in out
          and out.rstrip().endswith("True"), out)


def run_py(script, timeout=60):
    ex = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=timeout)
    return ex.returncode, ex.stdout.decode(), ex.stderr.decode()


FILL = (
    "import os, signal, threading, time, spillway\n"
    "t = spillway.Topic.create(NAME, ring_size=1 << 16)\n"
    "p = spillway.Producer(t)\n"
    "try:\n"  # no daemon: nothing reclaims, the ring stays full
    "    while True:\n"
    "        p.send(b'x' * 4000, timeout=0)\n"
    "except TimeoutError:\n"
    "    pass\n")


def test_close_from_another_thread_during_a_wait():
    """Topic.close() or Producer.close() from another thread while a send waits in C
    for room (cffi releases the GIL) unmapped the ring and freed the handle under
    that call; now the waiting call raises ValueError and the last one out frees."""
    for closer in ("t.close()", "p.close()"):
        script = FILL.replace("NAME", "'py_t'") + (
            "res = []\n"
            "def blocked():\n"
            "    try:\n"
            "        p.send(b'y' * 4000)\n"  # waits for ever: no timeout
            "        res.append('sent')\n"
            "    except ValueError as e:\n"
            "        res.append('refused: %s' % e)\n"
            "th = threading.Thread(target=blocked)\n"
            "th.start()\n"
            "time.sleep(0.3)\n"
            "t0 = time.monotonic()\n"
            "CLOSER\n"
            "th.join(5)\n"
            "print('alive' if th.is_alive() else res, round(time.monotonic() - t0, 1))\n"
            "print('after:', p._p is None, t._t is None)\n").replace("CLOSER", closer)
        rc, out, err = run_py(script)
        spillway.Topic.delete("py_t")
        check(rc == 0, "%s: rc %d: %s %s" % (closer, rc, out, err[-300:]))
        check("refused: producer of topic 'py_t' was closed while it waited" in out, out)
        want = "after: True True\n" if closer == "t.close()" else "after: True False\n"
        check(out.endswith(want), "%s: freed once the call left: %s" % (closer, out))


def test_close_a_reader_from_another_thread_during_a_read():
    """Reader.close() from another thread while read(timeout=None) waits in C: the
    read raises ValueError and the reader is freed after it (not under it)."""
    script = (
        "import threading, time, spillway\n"
        "t = spillway.Topic.create('py_rt', ring_size=1 << 16)\n"
        "r = spillway.Reader('py_rt', zero_copy=True)\n"
        "res = []\n"
        "def blocked():\n"
        "    try:\n"
        "        res.append(r.read(timeout=None))\n"
        "    except ValueError as e:\n"
        "        res.append('refused: %s' % e)\n"
        "th = threading.Thread(target=blocked)\n"
        "th.start()\n"
        "time.sleep(0.3)\n"
        "r.close()\n"
        "th.join(5)\n"
        "print('alive' if th.is_alive() else res, 'freed:', r._r is None)\n")
    rc, out, err = run_py(script)
    spillway.Topic.delete("py_rt")
    check(rc == 0, "rc %d: %s %s" % (rc, out, err[-300:]))
    check("refused: reader of topic 'py_rt' was closed while it waited" in out
          and out.endswith("freed: True\n"), out)


def test_a_wait_on_a_deleted_topic_raises_notfound():
    """A send waiting for room, or a wait_ack, on a topic deleted meanwhile raised
    nothing and waited for ever: nobody will make room or spill it."""
    for call in ("p.send(b'y' * 4000)", "p.wait_ack(0, level='spilled')"):
        script = FILL.replace("NAME", "'py_gone'") + (
            "threading.Timer(0.3, lambda: spillway.Topic.delete('py_gone')).start()\n"
            "try:\n"
            "    CALL\n"
            "except spillway.NotFound as e:\n"
            "    print('raised:', e.errno, e)\n").replace("CALL", call)
        try:
            rc, out, err = run_py(script, timeout=20)
        except subprocess.TimeoutExpired:
            rc, out, err = -1, "hung", ""
        check(rc == 0 and ("raised: %d" % errno.EIDRM) in out
              and "the topic was deleted" in out, "%s: rc %d: %s %s" % (call, rc, out, err[-300:]))


def test_a_send_with_room_on_a_deleted_topic_raises_notfound():
    """Topic.delete marks the ring: a send that finds room raises NotFound (EIDRM)
    at once, where it used to go into the unlinked ring, read and spilled by nobody."""
    with spillway.Topic.create("py_del", ring_size=1 << 16) as t, spillway.Producer(t) as p:
        p.send(b"before")
        spillway.Topic.delete("py_del")
        e = raises(spillway.NotFound, lambda: p.send(b"after"), "send after the delete")
        check(e.errno == errno.EIDRM and "the topic was deleted" in str(e), str(e))


def test_ctrl_c_ends_a_wait():
    """SIGINT (Ctrl-C) during a send, wait_ack or read that waits for ever raises
    KeyboardInterrupt within a fraction of a second (the library's futex waits
    retry on EINTR, so the call never came back to let Python run the handler)."""
    for call in ("p.send(b'y' * 4000)", "p.wait_ack(0, level='spilled')",
                 "spillway.Reader(NAME, follow=True, start='latest').read(timeout=None)"):
        script = FILL + (
            "threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
            "t0 = time.monotonic()\n"
            "try:\n"
            "    CALL\n"
            "    print('returned')\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted after', round(time.monotonic() - t0, 1))\n")
        script = script.replace("CALL", call).replace("NAME", "'py_k'")
        try:
            rc, out, err = run_py(script, timeout=20)
        except subprocess.TimeoutExpired:
            rc, out, err = -1, "hung", ""
        spillway.Topic.delete("py_k")
        check(rc == 0 and "interrupted after" in out, "%s: rc %d: %s %s"
              % (call, rc, out, err[-300:]))
        check(float(out.split()[-1]) < 2.0, "%s: %s" % (call, out))


@pytest.fixture(scope="module", autouse=True)
def sandbox():
    """Every test of this module in its own shm and data dirs, removed after."""
    tmp = tempfile.mkdtemp(prefix="spw-py.")
    shm = tempfile.mkdtemp(prefix="spw-py.", dir="/dev/shm")
    old = {k: os.environ.get(k) for k in ("SPILLWAY_SHM_DIR", "SPILLWAY_DATA_DIR")}
    os.environ["SPILLWAY_SHM_DIR"] = os.path.join(shm, "shm")
    os.environ["SPILLWAY_DATA_DIR"] = os.path.join(tmp, "data")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(shm, ignore_errors=True)


def test_bad_reader_and_create_arguments_are_valueerrors():
    """What the C calls would misread is refused in words: a stop of 0 (the C
    call's 'no bound': everything was read), -1 (nothing, silently), a bool for a
    position (True read as 1), times before 1970 (OverflowError), a batch of 0
    (failed at the first read), read(0) (a full batch); and create's EINVAL says
    which sizes are wrong (it said only 'Invalid argument')."""
    with spillway.Topic.create("py_args", ring_size=1 << 16) as t, spillway.Producer(t) as p:
        for i in range(5):
            p.send(b"a%d" % i)
        old = datetime.datetime(1900, 1, 1, tzinfo=datetime.timezone.utc)
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        for kw in ({"stop": 0}, {"stop": -1}, {"stop": epoch}, {"start": True},
                   {"start": 2**63}, {"start": -8}, {"start": old}, {"batch": 0},
                   {"stop": 1.5}):
            with pytest.raises(ValueError):
                spillway.Reader("py_args", **kw)
            check(True, kw)
        with spillway.Reader("py_args") as r:
            check(r.read(0) == [], "read(0)")
            check(len(r.read(2)) == 2, "read(2)")
            with pytest.raises(ValueError):
                next(r.batches(0))
    spillway.Topic.delete("py_args")
    with pytest.raises(spillway.InvalidArgument) as e:
        spillway.Topic.create("py_args2", ring_size=100 * 1024)
    check("ring_size a power of two >= 64 KiB" in str(e.value) and "102400" in str(e.value),
          str(e.value))


def test_a_damaged_group_file_is_named(tmp_path):
    """A group file that cannot be read raised CorruptData with no file (or, for a
    FIFO, blamed the group's name)."""
    d = str(tmp_path / "data")
    with spillway.Topic.create("py_g", ring_size=1 << 16) as t, spillway.Producer(t) as p:
        p.send(b"x")
    gdir = os.path.join(d, "py_g", "groups")
    os.makedirs(gdir)
    with open(os.path.join(gdir, "bad"), "wb") as f:
        f.write(b"\0" * 32)
    with pytest.raises(spillway.CorruptData) as e:
        spillway.Reader("py_g", start="group:bad", data_dir=d)
    check(e.value.file == os.path.join(gdir, "bad") and "damaged" in str(e.value), str(e.value))
    os.mkfifo(os.path.join(gdir, "fifo"))
    with pytest.raises(spillway.SpillwayError) as e:
        spillway.Reader("py_g", start="group:fifo", data_dir=d)
    check("groups/fifo" in str(e.value) and "1-128 of" not in str(e.value), str(e.value))
    spillway.Topic.delete("py_g")


def test_a_group_has_one_reader(tmp_path):
    """Two readers of one group each read everything, and the last commit won:
    now the second one gets GroupBusy until the first is closed."""
    d = str(tmp_path / "data")
    with spillway.Topic.create("py_one", ring_size=1 << 16) as t, spillway.Producer(t) as p:
        for i in range(10):
            p.send(b"r%d" % i)
    os.makedirs(os.path.join(d, "py_one"), mode=0o700)
    with spillway.Reader("py_one", start="group:g", data_dir=d) as r1:
        with pytest.raises(spillway.GroupBusy) as e:
            spillway.Reader("py_one", start="group:g", data_dir=d)
        check("another reader" in str(e.value) and e.value.errno == errno.EBUSY, str(e.value))
        with spillway.Reader("py_one", data_dir=d) as r2:
            raises(spillway.GroupBusy, lambda: r2.commit("g"), "a commit to another's group")
            raises(spillway.GroupBusy, lambda: r2.join("g"), "a join of another's group")
            r2.join("h")
        check([x.data for x in r1.read()] == [b"r%d" % i for i in range(10)], "r1 reads all")
        r1.commit("g")
    with spillway.Reader("py_one", start="group:g", data_dir=d) as r3:
        check(r3.read() == [], "the group resumes where its reader committed")
    # The longest names: the lock file's temp name still fits (it failed with
    # ENAMETOOLONG when the data dir was given as a path).
    long_t, long_g = "t" * 120, "g" * 128
    with spillway.Topic.create(long_t, ring_size=1 << 16) as t, spillway.Producer(t) as p:
        p.send(b"x")
    os.makedirs(os.path.join(d, long_t), mode=0o700)
    with spillway.Reader(long_t, start="group:" + long_g, data_dir=d) as r6:
        check([x.data for x in r6.read()] == [b"x"], "long names: read")
        r6.commit(long_g)
    spillway.Topic.delete(long_t)
    # A FIFO planted as the lock file is named, not blamed on the start or the name.
    os.mkfifo(os.path.join(d, "py_one", "groups", ".ff.reader"))
    e = raises(spillway.SpillwayError, lambda: spillway.Reader("py_one", start="group:ff",
                                                              data_dir=d), "a FIFO lock file")
    check(".ff.reader is not a regular file" in str(e), str(e))
    # No topic data dir (spillwayd never ran): a reader still opens at the group,
    # without holding it (nor does a second); a commit says why it cannot.
    d2 = str(tmp_path / "none")
    with spillway.Reader("py_one", start="group:g", data_dir=d2) as r4, \
            spillway.Reader("py_one", start="group:g", data_dir=d2) as r5:
        check(len(r4.read()) == 10 and len(r5.read()) == 10, "both read from the start")
        e = raises(spillway.NotFound, lambda: r4.commit("g"), "a commit without a data dir")
        check(not isinstance(e, spillway.GroupBusy), str(e))
    spillway.Topic.delete("py_one")
