#!/usr/bin/env bash
# py_api.sh - runs tests/py_api.py (the Python package, python/spillway) with
# Debian's python3 (python3-cffi is a Debian package: `make deps`) against this
# build's libspillway.so, spillway and spillwayd.
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
CLI=${SPW_CLI:-$HERE/../build/spillway}
export SPW_CLI=$CLI SPW_DAEMON=${SPW_DAEMON:-$(dirname "$CLI")/spillwayd}
export SPILLWAY_LIB=$(dirname "$CLI")/libspillway.so.0
export PYTHONPATH=$HERE/../python${PYTHONPATH:+:$PYTHONPATH}
"$PY" -c 'import cffi, pytest' 2>/dev/null ||
	{ echo "FAIL: $PY lacks cffi or pytest (make deps installs python3-cffi python3-pytest)" >&2; exit 1; }
cd "$HERE"
# Both ways the package reaches the library (python/spillway/__init__.py
# _load): the compiled API-mode module, which make builds when python3 has
# cffi and Python.h, and ABI mode (dlopen).
if ls "$(dirname "$CLI")"/python/spillway/_spillway_api*.so >/dev/null 2>&1; then
	mode=$(env -u SPILLWAY_LIB "$PY" -c 'import spillway; print(spillway.MODE)')
	[ "$mode" = api ] || { echo "FAIL: the API-mode module is built but the package chose $mode" >&2; exit 1; }
	echo "== API mode"
	SPILLWAY_PY_MODE=api timeout 300 "$PY" -m pytest -q -p no:cacheprovider py_api.py
fi
echo "== ABI mode"
SPILLWAY_PY_MODE=abi timeout 300 "$PY" -m pytest -q -p no:cacheprovider py_api.py
echo "ok: py_api.sh"
