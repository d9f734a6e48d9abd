# SPDX-License-Identifier: MIT
"""build_api.py - compiles the package's two API-mode modules: spillway._spillway_api,
the out-of-line cffi module (python/spillway/_cdef.py's declarations, checked
by the C compiler against ring/spillway.h), with libspillway.a linked in so the
module needs no library path at run time; and spillway._records
(python/spillway/_records.c), which turns a batch of records into Python
objects in one call. `make` runs it when python3 has cffi and Python.h
(python3-cffi, python3-dev: make deps):

  python3 python/build_api.py OUTDIR RING_DIR LIBSPILLWAY_A [LIBS...]

writes OUTDIR/spillway/_spillway_api.<abi>.so and _records.<abi>.so. The
package prefers them to ABI mode (dlopen of libspillway.so) because calls and
records cost less (docs/python.md).
"""
import os
import shlex
import subprocess
import sys
import sysconfig

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "spillway"))
from _cdef import CDEF  # noqa: E402  (the one copy, without loading the package)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out, ring, liba = (os.path.abspath(a) for a in sys.argv[1:4])
    libs = [a[2:] if a.startswith("-l") else a for a in sys.argv[4:]]
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source("spillway._spillway_api", '#include "spillway.h"', include_dirs=[ring],
                   extra_objects=[liba], libraries=libs or ["isal", "pthread"],
                   extra_compile_args=["-O2"])
    os.makedirs(out, exist_ok=True)
    print(ffi.compile(tmpdir=out, verbose=False))
    # _records.c uses only Python.h and the header: one compiler call, the
    # flags Python was built with for position-independent shared objects.
    so = os.path.join(out, "spillway", "_records" + sysconfig.get_config_var("EXT_SUFFIX"))
    cc = shlex.split(os.environ.get("CC") or "cc")
    subprocess.run(cc + ["-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                         "-fno-strict-aliasing", "-I" + sysconfig.get_paths()["include"],
                         "-I" + ring, os.path.join(HERE, "spillway", "_records.c"),
                         "-o", so], check=True)
    print(so)


if __name__ == "__main__":
    main()
