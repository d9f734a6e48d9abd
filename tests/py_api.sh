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
"$PY" -c 'import cffi' 2>/dev/null || { echo "FAIL: $PY has no cffi (make deps installs python3-cffi)" >&2; exit 1; }
exec timeout 300 "$PY" "$HERE/py_api.py"
