# SPDX-License-Identifier: MIT
"""spillway: Spillway topics from Python, over libspillway (cffi: the compiled
API-mode module when it is built, else ABI mode through libspillway.so).

A topic is a ring in shared memory that spillwayd spills to segment files;
positions are byte offsets in the topic's log (see the project's README and
docs/cli.md). Typical batch reading::

    import spillway
    with spillway.Reader("orders", start="earliest") as r:
        for rec in r:                      # disk first, then live
            print(rec.position, rec.datetime, rec.data)

Producing::

    with spillway.Topic.open("orders") as t, spillway.Producer(t) as p:
        pos = p.send(b"hello")
        p.wait_ack(pos, level="spilled", timeout=1.0)

The compiled API-mode module is used when it is installed beside this package
or built in the source tree it sits in (build/python/spillway); else ABI mode
dlopens libspillway.so: $SPILLWAY_LIB (which also selects ABI mode), then
../build/libspillway.so.0 in a build tree, then where `make install` put it,
then the system's loader. SPILLWAY_PY_MODE=abi|api forces a mode.
Errors are SpillwayError (an OSError with errno and the C message), or one of
its subclasses: Lapped (ESTALE), CorruptData (EBADMSG, with .file and
.position), NotFound (ENOENT), InvalidArgument (EINVAL, also a ValueError);
timeouts raise TimeoutError.
"""

import datetime as _dt
import time as _time
from builtins import max as _builtins_max
import errno as _errno
import os as _os
import sys as _sys

import stat as _stat
import struct as _struct
import threading as _threading
import weakref as _weakref
from itertools import chain as _ch

from cffi import FFI as _FFI

from ._cdef import CDEF

__all__ = [
    "Topic", "Producer", "Reader", "Record", "SpillwayError", "Lapped", "CorruptData",
    "InvalidArgument", "GroupBusy",
    "NotFound", "NotKept", "shm_dir", "data_dir",
]


SPW_OPEN_RDONLY = 0x1
SPW_TOPIC_NO_SPILL = 0x1
SPW_READER_SKIP_CORRUPT = 0x1
SPW_READER_NO_LIVE = 0x2
SPW_READER_NO_VERIFY = 0x4
SPW_READER_NO_READAHEAD = 0x8

def _abi():
    """ABI mode: dlopen the shared library."""
    ffi = _FFI()
    ffi.cdef(CDEF)
    here = _os.path.dirname(_os.path.abspath(__file__))
    try:  # written by `make install`: where it put the library
        from ._libdir import LIBDIR as installed
    except ImportError:
        installed = None
    tries = [_os.environ.get("SPILLWAY_LIB"),
             _os.path.join(here, "..", "..", "build", "libspillway.so.0"),
             installed and _os.path.join(installed, "libspillway.so.0"),
             "libspillway.so.0", "libspillway.so"]
    errs = []
    for name in tries:
        if not name:
            continue
        try:
            return ffi, ffi.dlopen(name)
        except OSError as e:
            errs.append(str(e))
    raise ImportError("spillway: cannot load libspillway.so (set SPILLWAY_LIB): "
                      + "; ".join(errs))


def _ext(name):
    """A compiled module of this package (python/build_api.py builds both):
    installed next to this file, or built in the source tree this package
    sits in (build/python/spillway), for this Python's ABI only."""
    import importlib
    try:
        return importlib.import_module("." + name, __name__)
    except ImportError:
        pass
    import importlib.machinery
    import importlib.util
    here = _os.path.dirname(_os.path.abspath(__file__))
    top = _os.path.join(here, "..", "..")
    if not _os.path.exists(_os.path.join(top, "ring", "spillway.h")):
        raise ImportError("spillway: no compiled %s installed" % name)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = _os.path.join(top, "build", "python", "spillway", name + suffix)
        if not _os.path.exists(path):
            continue
        full = "spillway." + name
        loader = importlib.machinery.ExtensionFileLoader(full, path)
        spec = importlib.util.spec_from_file_location(full, path, loader=loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        return mod
    raise ImportError("spillway: no compiled %s for this Python (make builds it)" % name)


def _api():
    """API mode: the compiled cffi module (libspillway linked in) and
    _records (python/spillway/_records.c: a batch of records in one call)."""
    mod = _ext("_spillway_api")
    return mod.ffi, mod.lib, _ext("_records")


def _load():
    """The faster API-mode module when it is there (docs/python.md has the
    figures), else ABI mode. SPILLWAY_PY_MODE=abi or =api forces one;
    without it, SPILLWAY_LIB (a library to dlopen) means ABI mode."""
    mode = _os.environ.get("SPILLWAY_PY_MODE", "")
    if mode not in ("", "abi", "api"):
        raise ImportError("spillway: SPILLWAY_PY_MODE is abi or api, not %r" % mode)
    if not mode and _os.environ.get("SPILLWAY_LIB"):
        mode = "abi"
    if mode != "abi":
        try:
            return _api() + ("api",)
        except ImportError:
            if mode == "api":
                raise
    return _abi() + (None, "abi")


ffi, lib, _records, MODE = _load()
_chain = _ch.from_iterable
_REC = _struct.Struct("=qQQII")  # struct spw_record, as the layout test checks
assert _REC.size == ffi.sizeof("struct spw_record")


class SpillwayError(OSError):
    """A call into libspillway failed: .errno and the C message (strerror)."""


class Lapped(SpillwayError):
    """-ESTALE: the ring lapped a live reader and the bytes are not on disk."""


class NotKept(SpillwayError):
    """-ERANGE: the position asked for (or reached) is no longer kept: deleted by
    retention, lapped in a no-spill topic, or the topic deleted meanwhile."""


class NotFound(SpillwayError):
    """-ENOENT: no such topic (no ring and no data dir), or a missing segment."""


class InvalidArgument(SpillwayError, ValueError):
    """-EINVAL: a bad name, start, position or size (also a ValueError)."""


class GroupBusy(SpillwayError):
    """-EBUSY: the consumer group is another reader's: a group has one reader at a
    time, which holds it until it is closed or its process ends. (-ENOLCK: a commit
    found the group's lock file removed or replaced: another reader may hold it.)"""


class CorruptData(SpillwayError):
    """-EBADMSG: a segment failed its CRC or holds a bad header (.file, .position)."""

    def __init__(self, err, msg, file=None, position=None):
        super().__init__(err, msg)
        self.file = file
        self.position = position


def _raise(rc, what, reader=None, group=False):
    err = -int(rc)
    msg = "%s: %s" % (what, _os.strerror(err))
    if err == _errno.ECHILD:
        raise SpillwayError(err, "%s: this handle was opened before a fork(): the child cannot "
                            "use it (open a new one in the child)" % what)
    if err == _errno.ETIMEDOUT:
        raise TimeoutError(err, msg)
    if err == _errno.ESTALE:
        raise Lapped(err, msg)
    if err == _errno.ENOENT:
        raise NotFound(err, msg)
    if err == _errno.EIDRM:  # a producer's call on a deleted topic
        raise NotFound(err, "%s: the topic was deleted (its ring unlinked or replaced): "
                       "nothing will come" % what)
    if err == _errno.EINVAL:
        raise InvalidArgument(err, msg)
    if err == _errno.ERANGE:
        raise NotKept(err, "%s: no longer kept (deleted by retention, lapped in a no-spill "
                      "topic, or the topic deleted; start='earliest' reads what is kept)" % what)
    if err == _errno.ENOLCK and group:
        raise GroupBusy(err, "%s: the group's lock file was removed or replaced while this "
                        "reader held it, so another reader may hold the group now: not "
                        "committed" % what)
    if err == _errno.EBUSY and group:
        raise GroupBusy(err, "%s: the group is being read by another reader (a group has "
                        "one reader at a time, until that reader is closed or its process "
                        "ends)" % what)
    if err == _errno.EBADMSG:
        file, pos = None, None
        if reader is not None:
            buf = ffi.new("char[4096]")
            p = ffi.new("int64_t *")
            if lib.spw_reader_error(reader, buf, 4096, p) == 0:
                file, pos = ffi.string(buf).decode(errors="replace"), int(p[0])
                msg = "%s (%s at position %d)" % (msg, file, pos)
        raise CorruptData(err, msg, file, pos)
    raise SpillwayError(err, msg)


def _cstr(s):
    return ffi.NULL if s is None else _os.fsencode(s)


def _ns(timeout):
    """Seconds (float) or None (forever) -> ns for the C API."""
    return -1 if timeout is None else max(0, int(timeout * 1e9))


def shm_dir(d=None):
    """The shm dir in use: d, else $SPILLWAY_SHM_DIR, else /dev/shm/spillway."""
    return _os.fsdecode(ffi.string(lib.spw_shm_dir(_cstr(d))))


_shm_dir_of = shm_dir  # (Topic.create's parameter has the same name)


def data_dir(d=None):
    """The data dir in use: d, else $SPILLWAY_DATA_DIR, else the CLI's default."""
    return _os.fsdecode(ffi.string(lib.spw_data_dir(_cstr(d))))


_SLICE_S = 0.1  # a wait in C lasts at most this long between looks from Python
_SLICE_NS = int(_SLICE_S * 1e9)
_free_lock = _threading.Lock()


def _first_ns(timeout):
    """The first slice of a wait of timeout seconds (None: for ever), in ns."""
    return _SLICE_NS if timeout is None or timeout > _SLICE_S else _ns(timeout)


class _Handle:
    """A C handle closed by close(), by `with`, or when collected.

    cffi calls C without the GIL, so another thread may close a handle while a
    call of it runs, or waits, in C. Such a call is bracketed: it sets _busy,
    then looks at _closing (_enter); close() sets _closing, then looks at _busy,
    and frees the handle only when no call is in; a call that finds _closing set
    on its way out (_leave) frees it instead. Each side stores its own flag
    before it loads the other's, and the GIL makes those stores and loads
    sequentially consistent, so at least one side frees (a free-threaded
    Python would need a lock here); _free() runs once, under _free_lock. One
    thread at a time calls a Producer or a Reader (close() from any).

    Waits run in slices of _SLICE_S (_wait_on): between two, a close from
    another thread raises ValueError in the waiting call, and a signal's
    handler runs (Ctrl-C raises KeyboardInterrupt; the library's futex waits
    go on after EINTR, so one long wait in C would not have returned for it).
    """

    _busy = False
    _closing = False

    def _enter(self):
        self._busy = True
        if self._closing or self._handle() is None:
            self._busy = False
            if self._closing:  # a close that saw us busy left the free to us
                self._free()
            self._refuse()

    def _leave(self):
        self._busy = False
        if self._closing:
            self._free()

    def _call(self, fn, *args):
        """One short C call fn(handle, *args), bracketed."""
        self._enter()
        try:
            return fn(self._handle(), *args)
        finally:
            self._leave()

    def _wait_on(self, call, rc, timeout, empty):
        """The rest of a wait of timeout seconds (None: for ever) whose first
        slice (_first_ns) returned rc: call(ns) again while it returns `empty`
        and time is left. Runs between _enter and _leave."""
        if rc != empty or (timeout is not None and timeout <= _SLICE_S):
            return rc
        end = None if timeout is None else _time.monotonic() + timeout - _SLICE_S
        while True:
            if self._closing:
                raise ValueError("%s was closed while it waited" % self._what())
            left = _SLICE_S if end is None else min(_SLICE_S, end - _time.monotonic())
            if left <= 0:
                return rc
            rc = call(int(left * 1e9))
            if rc != empty:
                return rc

    def _refuse(self):
        raise ValueError("%s is closed" % self._what())

    def close(self):
        """Free the C handle, now or, while a call of it runs in another
        thread, when that call returns (a waiting one raises ValueError
        within a slice). Using the handle afterwards raises ValueError."""
        self._closing = True
        if not self._busy:
            try:
                self._free()
            except BaseException:  # a Reader's BufferError: it stays open
                self._closing = False
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class Topic(_Handle):
    """A topic's ring, mapped. Topic.create() makes one, Topic.open() maps one."""

    def __init__(self, handle, name, shm):
        self._t = handle
        self.name = name
        self.shm_dir = shm
        # Producers write into this mapping: it is unmapped only after the last
        # one is closed. close() closes those it can still reach; the collector
        # (a cycle, interpreter exit) finalizes in any order and clears weak
        # references first, so a producer it finalizes later unmaps it then.
        # _users counts those producers and the calls running on the handle
        # (a Topic may serve several threads at once), under _lock.
        self._producers = _weakref.WeakSet()
        self._users = 0
        self._lock = _threading.Lock()

    @classmethod
    def create(cls, name, ring_size=0, segment_size=0, max_record=0, mode=0o600,
               max_producers=0, no_spill=False, shm_dir=None, data_dir=None):
        """Create topic `name` (sizes in bytes; 0 = the library's default) and open it.
        Raises FileExistsError if it exists, ring or disk log: a new ring over a kept
        disk log would start at position 0 again and reuse the log's positions (it is
        refused: `spillway topic create NAME` asks spillwayd to make the ring again at
        the log's end, as spillwayd does at its start; or delete the topic first)."""
        segs = _disk_segments(name, data_dir)
        if segs and not _os.path.lexists(_os.path.join(_shm_dir_of(shm_dir),
                                                       name + ".ring")):
            raise FileExistsError(_errno.EEXIST, "topic %r has a disk log in %s (%d segments) "
                                  "but no ring: `spillway topic create %s` asks spillwayd to "
                                  "make the ring again at the log's end (it does at its start); "
                                  "or delete the topic (ring and data dir) first"
                                  % (name, _os.path.dirname(segs[0]), len(segs), name))
        cfg = ffi.new("struct spw_topic_config *")
        cfg.ring_bytes, cfg.segment_bytes, cfg.max_record = ring_size, segment_size, max_record
        cfg.mode, cfg.max_producers = mode, max_producers
        cfg.flags = SPW_TOPIC_NO_SPILL if no_spill else 0
        rc = lib.spw_topic_create(_cstr(shm_dir), name.encode(), cfg)
        if rc == -_errno.EEXIST:
            raise FileExistsError(_errno.EEXIST, "topic %r exists" % name)
        if rc == -_errno.EINVAL:
            raise InvalidArgument(_errno.EINVAL, "creating topic %r: %s" % (
                name, "name: 1-128 of [A-Za-z0-9._-], not starting with '.'"
                if lib.spw_topic_name_check(name.encode()) else
                "ring_size a power of two >= 64 KiB, segment_size a multiple of it, "
                "max_record <= ring_size / 4, max_producers <= 4096 (0: the defaults), mode "
                "permission bits only; given %d, %d, %d, %d, 0o%o"
                % (ring_size, segment_size, max_record, max_producers, mode)))
        if rc:
            _raise(rc, "creating topic %r" % name)
        return cls.open(name, shm_dir=shm_dir)

    @classmethod
    def open(cls, name, readonly=False, shm_dir=None):
        """Map topic `name`'s ring (readonly: for readers only)."""
        out = ffi.new("struct spw_topic **")
        rc = lib.spw_topic_open(_cstr(shm_dir), name.encode(), SPW_OPEN_RDONLY if readonly else 0,
                                out)
        if rc:
            _raise(rc, "opening topic %r" % name)
        return cls(out[0], name, shm_dir)

    @staticmethod
    def delete(name, shm_dir=None):
        """Unlink the topic's ring (its disk log stays)."""
        rc = lib.spw_topic_delete(_cstr(shm_dir), name.encode())
        if rc:
            _raise(rc, "deleting topic %r" % name)

    def info(self):
        """The ring's counters as a dict (tail, reclaimed, spilled, durable, ...)."""
        i = ffi.new("struct spw_topic_info *")
        t = self._use()
        try:
            rc = lib.spw_topic_info(t, i)
        finally:
            self._unuse()
        if rc:
            _raise(rc, "topic %r info" % self.name)
        return {f: getattr(i, f) for f, _ in ffi.typeof("struct spw_topic_info").fields
                if not f.startswith("reserved")}

    def _use(self):
        """The handle, for a call or a producer, until _unuse()."""
        with self._lock:
            if self._t is None or self._closing:
                raise ValueError("topic %r is closed" % self.name)
            self._users += 1
            return self._t

    def _unuse(self):
        with self._lock:
            self._users -= 1
            t = self._t if self._closing and not self._users else None
            if t is not None:
                self._t = None
        if t is not None:
            lib.spw_topic_close(t)

    def close(self):
        """Unmap the ring. Producers opened on this topic are closed first (using
        one afterwards raises ValueError; one waiting in send raises it): they
        write into this mapping, which goes once the last of them is freed."""
        if getattr(self, "_t", None) is None:
            return
        for p in list(getattr(self, "_producers", ())):
            p.close()
        with self._lock:
            self._closing = True
            t = self._t if not self._users else None
            if t is not None:
                self._t = None
        if t is not None:
            lib.spw_topic_close(t)


def _disk_segments(name, d=None):
    """The segment files of topic `name` in data dir d (spill/FORMAT.md: twenty
    digits and .seg), or []."""
    if lib.spw_topic_name_check(name.encode()):
        return []  # spw_topic_create says what is wrong with the name
    top = _os.path.join(data_dir(d), name)
    try:
        names = _os.listdir(top)
    except OSError:
        return []
    return sorted(_os.path.join(top, n) for n in names
                  if len(n) == 24 and n.endswith(".seg") and n[:20].isdigit())


_ACK = {"committed": 0, "spilled": 1, "durable": 2}


class Producer(_Handle):
    """A producer handle on an open Topic (one thread at a time)."""

    def __init__(self, topic):
        self._topic = topic  # keeps the mapping alive
        out = ffi.new("struct spw_producer **")
        t = topic._use()  # given back by _free, or here on failure
        rc = lib.spw_producer_open(t, out)
        if rc:
            topic._unuse()
            _raise(rc, "opening a producer on %r" % topic.name)
        self._p = out[0]
        topic._producers.add(self)

    def _handle(self):
        return getattr(self, "_p", None)

    def _what(self):
        return "producer of topic %r" % self._topic.name

    def _refuse(self):
        raise ValueError("producer of topic %r is closed (or its Topic was)"
                         % self._topic.name)

    def _free(self):
        with _free_lock:
            p = getattr(self, "_p", None)
            self._p = None
        if p is not None:
            lib.spw_producer_close(p)
            self._topic._unuse()

    def send(self, data, timeout=None, timestamp=None):
        """Append one record (bytes-like); returns its position. Waits while the ring
        is full (timeout in seconds, None: for ever; TimeoutError after it).
        timestamp: the record's time instead of the library's clock (ns since the
        epoch, or a datetime; 0: none), through spw_producer_send_wait_at."""
        b = ffi.from_buffer(data)
        n = len(b)
        ts = None if timestamp is None else _record_time(timestamp)
        self._enter()  # (_Handle's bracket, inline: this is the hot path)
        try:
            p = self._p
            if ts is None:
                pos = lib.spw_producer_send_wait(p, b, n, _first_ns(timeout))
                if pos == -_errno.ETIMEDOUT:
                    pos = self._wait_on(lambda ns: lib.spw_producer_send_wait(p, b, n, ns),
                                        pos, timeout, -_errno.ETIMEDOUT)
            else:
                pos = lib.spw_producer_send_wait_at(p, b, n, _first_ns(timeout), ts)
                if pos == -_errno.ETIMEDOUT:
                    pos = self._wait_on(
                        lambda ns: lib.spw_producer_send_wait_at(p, b, n, ns, ts),
                        pos, timeout, -_errno.ETIMEDOUT)
        finally:
            self._busy = False
            if self._closing:
                self._free()
        if pos < 0:
            _raise(pos, "sending to %r" % self._topic.name)
        return pos

    _BATCH = 256

    def send_many(self, records, timeout=None, timestamps=None):
        """Append the records of an iterable (bytes-like each), in batches of up to 256
        with spw_producer_send_batch_wait_at: one C call, one claim and one timestamp
        per batch. Returns the last position (None for no records). Waits while the
        ring is full, up to timeout seconds per wait (TimeoutError). A record longer
        than the topic's max_record raises before anything of its batch is sent (the
        batches before it are). timestamps: an iterable of the records' own times, one
        per record (ns since the epoch or datetimes; 0: none), instead of the library's
        clock; ValueError when it is shorter than records (at the first record without
        one: the batches before it are sent) or longer (before the last batch is
        sent)."""
        if self._handle() is None or self._closing:
            self._refuse()
        pos = None
        chunk, times = [], [] if timestamps is not None else None
        tsi = iter(timestamps) if timestamps is not None else None
        for r in records:
            # A full batch goes once another record follows: the last one
            # waits for the check that no timestamps are left over.
            if len(chunk) == self._BATCH:
                pos = self._send_batch(chunk, timeout, times)
                chunk = []
                times = [] if times is not None else None
            chunk.append(ffi.from_buffer(r))
            if tsi is not None:
                times.append(self._next_time(tsi))
        if tsi is not None and next(tsi, _END) is not _END:
            raise ValueError("more timestamps than records")
        if chunk:
            pos = self._send_batch(chunk, timeout, times)
        return pos

    @staticmethod
    def _next_time(tsi):
        t = next(tsi, _END)
        if t is _END:
            raise ValueError("fewer timestamps than records")
        return _record_time(t)

    def _send_batch(self, bufs, timeout, times=None):
        n = len(bufs)
        m = ffi.new("struct spw_msg[]", n)
        last = ffi.new("int64_t[]", n)
        ts = ffi.new("uint64_t[]", times) if times is not None else ffi.NULL
        for i, b in enumerate(bufs):
            m[i].data = b
            m[i].len = len(b)
        sent = 0
        self._enter()
        try:
            p = self._p

            def call(ns):
                # bufs keeps every buffer alive for the call.
                return lib.spw_producer_send_batch_wait_at(p, m + sent, n - sent, ns,
                                                           ts + sent if ts else ffi.NULL,
                                                           last + sent)
            while sent < n:
                r = self._wait_on(call, call(_first_ns(timeout)), timeout, -_errno.ETIMEDOUT)
                if r < 0:
                    _raise(r, "sending to %r" % self._topic.name)
                sent += r
        finally:
            self._leave()
        return last[n - 1]

    def wait_ack(self, position, level="spilled", timeout=None):
        """Wait until the record at `position` is 'committed', 'spilled' (written to a
        segment by spillwayd) or 'durable' (fdatasync'd). TimeoutError after timeout."""
        if level not in _ACK:
            raise ValueError("level: 'committed', 'spilled' or 'durable', not %r" % (level,))
        lv = _ACK[level]
        self._enter()
        try:
            p = self._p
            rc = self._wait_on(lambda ns: lib.spw_producer_wait_ack(p, position, lv, ns),
                               lib.spw_producer_wait_ack(p, position, lv, _first_ns(timeout)),
                               timeout, -_errno.ETIMEDOUT)
        finally:
            self._leave()
        if rc:
            _raise(rc, "waiting for %s of position %d" % (level, position))



def _datetime_of(ns):
    return _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.timezone.utc)


class Record:
    """One record: .position (int), .timestamp (ns since the epoch, int), .data (bytes,
    or a read-only memoryview with zero_copy=True) and .datetime (UTC)."""

    __slots__ = ("position", "timestamp", "data")

    def __init__(self, position, timestamp, data):
        self.position = position
        self.timestamp = timestamp
        self.data = data

    @property
    def datetime(self):
        return _datetime_of(self.timestamp)

    def __repr__(self):
        return "Record(position=%d, timestamp=%d, len=%d)" % (self.position, self.timestamp,
                                                              len(self.data))


if _records is not None:  # API mode: the same Record in C (python/spillway/_records.c)
    _records.set_datetime(_datetime_of)
    Record = _records.Record  # noqa: F811


_END = object()  # the end of an iterator (next's default)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _time_ns(t):
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        # Exact to the microsecond (a float of seconds since 1970 is not).
        return (t - _EPOCH) // _dt.timedelta(microseconds=1) * 1000
    return int(t)


def _record_time(t):
    """A record's timestamp as the C calls take it (uint64 ns): ValueError outside."""
    ns = _time_ns(t)
    if ns < 0:
        raise ValueError("a negative timestamp")
    if ns >= 1 << 64:
        raise ValueError("a timestamp past 2**64 - 1 ns")
    return ns


def _start_hint(start):
    """Why spw_reader_open said EINVAL, in words, for the start it was given."""
    if isinstance(start, str) and start.startswith("group:"):
        return ("group name %r: 1-%d of [A-Za-z0-9._-], not starting with '.'"
                % (start[6:], 128))  # SPW_NAME_MAX, ring/spillway.h
    if isinstance(start, int):
        return ("start position %d is negative, not a multiple of 8, past the topic's "
                "tail, or inside a record (`spillway dump` lists where records start)"
                % start)
    return "invalid start %r (Invalid argument)" % (start,)


def _group_check(topic, group, d):
    """A group file that is there but cannot be read is named (CorruptData with
    its path), not taken for a damaged index or a bad start by the reader."""
    if lib.spw_topic_name_check(topic.encode()) or lib.spw_topic_name_check(group.encode()):
        return  # spw_reader_open says what is wrong with the name
    buf = ffi.new("char[]", 4096 + 512)
    if lib.spw_group_lock_path(buf, len(buf), _cstr(d), topic.encode(), group.encode()):
        return  # spw_reader_open says what is wrong
    lock = _os.fsdecode(ffi.string(buf))
    try:
        st = _os.lstat(lock)
    except OSError:
        st = None
    if st is not None and not _stat.S_ISREG(st.st_mode):
        raise SpillwayError(_errno.EINVAL, "group %r of topic %r: its lock file %s is not a "
                            "regular file: remove it" % (group, topic, lock))
    pos = ffi.new("int64_t *")
    rc = lib.spw_group_read(_cstr(d), topic.encode(), group.encode(), pos)
    if rc in (0, -_errno.ENOENT):
        return
    path = _os.path.join(data_dir(d), topic, "groups", group)
    if rc == -_errno.EBADMSG:
        raise CorruptData(-rc, "group %r of topic %r: %s is damaged, or not a group file; "
                          "remove it, or read from start='earliest' (or a position) and commit "
                          "a new one" % (group, topic, path), path, None)
    _raise(rc, "group %r of topic %r: %s" % (group, topic, path))


def _reader_args(start, stop, batch):
    """ValueError for what the C reader would misread: a bool for a position,
    one outside 0 .. 2**63-1, a time before 1970, a stop of 0 or less (0 is
    the C call's 'no bound'), a batch under 1."""
    def pos(v, what, least):
        if isinstance(v, bool) or not isinstance(v, int) or not least <= v < 2**63:
            raise ValueError("%s: a position %d .. 2**63-1, not %r" % (what, least, v))

    def when(v, what, least):
        ns = _time_ns(v)
        if not least <= ns < 2**63:
            raise ValueError("%s: a time after 1970-01-01, not %r" % (what, v))

    if isinstance(start, _dt.datetime):
        when(start, "start", 0)
    elif not isinstance(start, str):
        pos(start, "start", 0)
    if isinstance(stop, _dt.datetime):
        when(stop, "stop", 1)
    elif stop is not None:
        pos(stop, "stop", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError("batch: records per read, 1 or more, not %r" % (batch,))


class Reader(_Handle):
    """Everything retention kept of a topic, disk then live, in order.

    start: 'earliest' (default), 'latest', a position (int), a datetime, or
    'group:NAME' (that consumer group's committed position). stop: a position
    (int) or a datetime, exclusive; None reads on (live; live=False: the disk
    only). Iterating yields Records
    and ends when caught up unless follow=True (then it waits). batches(max) yields
    lists of Records. zero_copy=True makes .data a read-only memoryview into the
    reader's own buffer, valid only until the next batch: it is released then, and
    using it afterwards raises ValueError instead of reading reused memory.
    readahead=False keeps segment reading on the calling thread (by default a
    helper thread reads every other chunk when two CPUs are allowed).
    """

    def __init__(self, topic, start="earliest", stop=None, follow=False, zero_copy=False,
                 skip_corrupt=False, live=True, shm_dir=None, data_dir=None, batch=1024,
                 readahead=True):
        self.topic = topic
        self._follow = follow
        self._zero_copy = zero_copy
        self._views = []
        self._span = None
        _reader_args(start, stop, batch)  # (after what __del__ looks at)
        self._batch = batch
        self._keep = []
        self.pacing = {}
        o = ffi.new("struct spw_reader_opts *")
        self._keep.append(o)
        o.shm_dir = self._k(_cstr(shm_dir))
        o.data_dir = self._k(_cstr(data_dir))
        self._shm, self._data = shm_dir, data_dir
        if start == "earliest":
            o.start = lib.SPW_START_EARLIEST
        elif start == "latest":
            o.start = lib.SPW_START_LATEST
        elif isinstance(start, str) and start.startswith("group:"):
            o.start = lib.SPW_START_GROUP
            o.group = self._k(start[6:].encode())
            _group_check(topic, start[6:], data_dir)
        elif isinstance(start, _dt.datetime):
            o.start, o.time_ns = lib.SPW_START_TIME, _time_ns(start)
        elif isinstance(start, int):
            o.start, o.position = lib.SPW_START_POSITION, start
        else:
            raise ValueError("start: 'earliest', 'latest', a position, a datetime or "
                             "'group:NAME', not %r" % (start,))
        if isinstance(stop, _dt.datetime):
            o.stop_time_ns = _time_ns(stop)
        elif stop is not None:
            o.stop_position = stop
        o.flags = (SPW_READER_SKIP_CORRUPT if skip_corrupt else 0) | \
            (0 if live else SPW_READER_NO_LIVE) | \
            (0 if readahead else SPW_READER_NO_READAHEAD)
        out = ffi.new("struct spw_reader **")
        rc = lib.spw_reader_open(topic.encode(), o, out)
        if rc == -_errno.EINVAL:
            why = ("topic name %r: 1-128 of [A-Za-z0-9._-], not starting with '.'" % topic
                   if lib.spw_topic_name_check(topic.encode()) else _start_hint(start))
            raise InvalidArgument(_errno.EINVAL, "opening a reader on %r: %s"
                                  % (topic, why))
        if rc:
            _raise(rc, "opening a reader on %r" % topic, group=o.start == lib.SPW_START_GROUP)
        self._r = out[0]
        self._recs = ffi.new("struct spw_record[]", batch)
        self._addr = int(ffi.cast("uintptr_t", self._recs))

    def _k(self, b):
        if b == ffi.NULL:
            return b
        c = ffi.new("char[]", b)
        self._keep.append(c)
        return c

    def _release(self):
        """Release the last batch's views, or raise BufferError while something
        made from them could still read the reader's buffer (which the next
        read reuses and close frees): then nothing is read and nothing freed."""
        if _records is not None:
            _records.release(self._views)
            return
        for v in self._views:
            v.release()
        self._views = []
        # A view made from a record's view (a slice, memoryview(), cast()) or
        # its .obj keeps the batch's buffer object alive past our release.
        if self._span is not None:
            if _sys.getrefcount(self._span) > 2:  # ours and the argument's
                raise BufferError(
                    "spillway: a view made from a record's .data (a slice, memoryview(), "
                    "cast(), .obj) is still alive; copy what you keep (bytes(...)) and "
                    "drop it before the next read or close")
            self._span = None

    def _handle(self):
        return getattr(self, "_r", None)

    def _what(self):
        return "reader of topic %r" % self.topic

    def _free(self):
        self._release()  # BufferError: nothing freed (see _release)
        with _free_lock:
            r = getattr(self, "_r", None)
            self._r = None
        if r is not None:
            lib.spw_reader_close(r)

    def read(self, max=None, timeout=0.0):
        """One batch: a list of Records (empty when caught up within timeout seconds;
        None: wait for at least one)."""
        if max is not None and (isinstance(max, bool) or not isinstance(max, int) or max < 0):
            raise ValueError("max: records, 0 or more, not %r" % (max,))
        if max == 0:
            return []
        self._enter()
        try:
            return self._read(min(max or self._batch, self._batch), timeout)
        finally:
            self._leave()

    def _read(self, want, timeout):
        self._release()
        r, recs = self._r, self._recs
        n = lib.spw_reader_read(r, recs, want, _first_ns(timeout))
        if n == 0 and not lib.spw_reader_done(r):
            n = self._wait_on(lambda ns: lib.spw_reader_read(r, recs, want, ns), n, timeout, 0)
        if n < 0:
            _raise(n, "reading topic %r" % self.topic, r)
        if self._closing:  # its buffers go as this call leaves: hand out nothing
            raise ValueError("%s was closed while it read" % self._what())
        if n == 0:
            return []
        if _records is not None:  # API mode: the batch in one C call
            return _records.decode(self._addr, n, self._views if self._zero_copy else None)
        # ABI mode: all the batch's descriptors decoded at once (struct spw_record: int64
        # position, uint64 timestamp, pointer, uint32 len, uint32 flags), and
        # its payloads, which lie between the lowest and highest data pointer
        # (one verified disk chunk, or the live copies), taken in one piece.
        # Payloads come in address order (a disk chunk, or the live copies one
        # after another): the first starts the span, the last ends it.
        desc = list(_REC.iter_unpack(ffi.buffer(self._recs, n * _REC.size)))
        lo = desc[0][2]
        span = ffi.buffer(ffi.cast("char *", lo), desc[-1][2] + desc[-1][3] - lo)
        if self._zero_copy:
            self._span = span
            base = memoryview(span).toreadonly()
            views = [base[p - lo:p - lo + ln] for _, _, p, ln, _ in desc]
            self._views = views
            self._views.append(base)
            return [Record(d[0], d[1], v) for d, v in zip(desc, views)]
        whole = span[:]
        return [Record(pos, ts, whole[p - lo:p - lo + ln]) for pos, ts, p, ln, _ in desc]

    _GONE_S = 0.2  # a follower that found nothing looks this often for a deleted topic

    def batches(self, max=None, timeout=None):
        """Yield lists of Records until caught up (or, with follow=True, for ever; a
        topic deleted meanwhile raises NotFound, as `spillway consume --follow` exits
        1: nothing more will come)."""
        if max == 0:
            raise ValueError("max: records per batch, 1 or more (None: the reader's batch)")
        wait = 0.0
        if self._follow:
            wait = self._GONE_S if timeout is None else min(timeout, self._GONE_S)
        looked = _time.monotonic()
        while True:
            b = self.read(max, wait)
            if b:
                yield b
            elif not self._follow or self._call(lib.spw_reader_done):
                return
            elif _time.monotonic() - looked >= self._GONE_S:
                looked = _time.monotonic()
                if self._call(lib.spw_reader_deleted) == 1:  # a passing stat error: look again
                    raise NotFound(_errno.ENOENT, "topic %r was deleted while following it "
                                   "(at position %d)" % (self.topic, self.position))

    @property
    def deleted(self):
        """True when the topic was deleted under this reader: its ring unlinked or
        replaced since the reader mapped it (or, for a topic only on disk, its data
        dir removed). Nothing more will come; two stat() calls."""
        r = self._call(lib.spw_reader_deleted)
        if r < 0:
            _raise(r, "checking topic %r" % self.topic)
        return r == 1

    def __iter__(self):
        return _chain(self.batches())  # a loop step per record, no generator frame

    def paced(self, speed=1.0, max_gap=1.0):
        """Yield Records at the pace of their timestamps, scaled by speed (2.0: twice
        as fast); a silence longer than max_gap seconds (record time) is shortened
        to it. Deadlines are absolute, so lateness does not accumulate; afterwards
        self.pacing holds the lateness percentiles in seconds (p50, p99, max)."""
        if speed <= 0:
            raise ValueError("speed must be > 0")
        late = []
        base_rec = base_wall = prev = None
        cut = 0
        gap_ns = int(max_gap * 1e9)
        mono, sleep = _time.monotonic_ns, _time.sleep
        for rec in self:
            ts = rec.timestamp
            if base_rec is None:
                base_rec, base_wall, prev = ts, mono(), ts
            else:
                if ts > prev and ts - prev > gap_ns:
                    cut += ts - prev - gap_ns
                prev = _builtins_max(prev, ts)
            target = base_wall + _builtins_max(0, ts - base_rec - cut) / speed
            now = mono()
            if target > now:
                sleep((target - now) / 1e9)
                now = mono()
            late.append(_builtins_max(0, now - target) / 1e9)
            yield rec
        late.sort()
        self.pacing = {} if not late else {
            "records": len(late), "p50": late[len(late) // 2],
            "p99": late[min(len(late) - 1, int(len(late) * 0.99))], "max": late[-1]}

    @property
    def position(self):
        """The next position this reader will read."""
        return self._call(lib.spw_reader_position)

    @property
    def lag(self):
        """Bytes between this reader and the topic's tail (0 without a ring)."""
        try:
            with Topic.open(self.topic, readonly=True, shm_dir=self._shm) as t:
                return max(0, t.info()["tail"] - self.position)
        except NotFound:
            return 0

    @property
    def skipped(self):
        """Bytes passed over as corrupt (skip_corrupt=True)."""
        return self._call(lib.spw_reader_skipped)

    def join(self, group):
        """Become consumer group `group`'s one reader (GroupBusy while another
        reader is): start='group:NAME' and commit() do it too. This reader keeps
        the group until it is closed or the process ends."""
        rc = self._call(lib.spw_reader_join, group.encode())
        if rc:
            _raise(rc, "joining group %r of %r" % (group, self.topic), group=True)

    def commit(self, group):
        """Record this reader's position as consumer group `group`'s (a file in the
        topic's data dir, which spillwayd makes: NotFound before it ever ran).
        Joins the group first (GroupBusy while another reader holds it)."""
        rc = self._call(lib.spw_reader_commit, group.encode())
        if rc:
            _raise(rc, "committing group %r of %r" % (group, self.topic), group=True)
