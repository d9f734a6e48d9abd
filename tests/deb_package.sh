#!/usr/bin/env bash
# deb_package.sh - the Debian packages (debian/, docs/packaging.md):
#  1. `make deb` builds libspillway0, libspillway-dev and spillway from a copy
#     of the tree (into this test's temp dir, not build/deb);
#  2. lintian finds no error in them (its warnings are printed);
#  3. each .deb unpacked with dpkg -x into one scratch root holds what it
#     should: the library and its SONAME link, the header, spillway.pc with
#     /usr paths, the static library (a program links against each), the
#     binaries (they run --help), the systemd unit, gzipped man pages; the
#     symbols file lists spw_* symbols only, every one the library exports;
#  4. dpkg -i of the three, then dpkg --purge, leaves nothing behind (the
#     state dir /var/lib/spillway included); systemd-analyze verifies the
#     unit, and where systemd runs, systemctl starts and stops it. Skipped,
#     with the reason, unless we are root, none of the three packages is
#     installed and /var/lib/spillway does not exist: the test never removes
#     someone's install or data. SPW_DEB_NO_INSTALL=1 skips it too.
# SPW_SKIP_DEB=1 skips the whole test (it takes about a minute).
set -euo pipefail

if [ "${SPW_SKIP_DEB:-}" = 1 ]; then
	echo "skip: deb_package.sh (SPW_SKIP_DEB=1)"
	exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PKGS="libspillway0 libspillway-dev spillway"
INSTALLED=""
MADE_STATE=""
TMP=$(mktemp -d /tmp/spw-deb.XXXXXX)

cleanup() {
	# Only packages this test installed (step 4 checked none was before).
	if [ -n "$INSTALLED" ]; then
		# shellcheck disable=SC2086 # a list of package names
		dpkg --purge $INSTALLED >/dev/null 2>&1 || true
	fi
	# Made by this test (step 4 checked it was not there before).
	[ -z "$MADE_STATE" ] || rm -rf /var/lib/spillway
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted" >&2; exit 1' INT TERM

check() { echo "check: $*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

for t in dpkg-buildpackage dh lintian dpkg-deb readelf nm pkg-config cc; do
	command -v "$t" >/dev/null || fail "no $t (make deps installs debhelper, dpkg-dev, lintian)"
done
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
VERSION=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -SVersion)
UPSTREAM=${VERSION%-*}

# --- 1. build ---------------------------------------------------------------------
check "make deb builds the three packages"
start=$(date +%s)
OUT=$TMP/deb
# The package build takes none of the caller's make variables (make test's).
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$ROOT" deb \
	DEB_DIR="$OUT" >"$TMP/build.log" 2>&1; then
	tail -n 40 "$TMP/build.log" >&2
	fail "make deb failed (whole log above: last 40 lines)"
fi
echo "  built in $(($(date +%s) - start)) s"
for p in $PKGS; do
	deb=$OUT/${p}_${VERSION}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
	[ -f "$deb" ] || fail "no $deb after make deb"
	eval "DEB_${p//-/_}=\$deb"
done
CHANGES=$(ls "$OUT"/spillway_"${VERSION}"_*.changes) || fail "no .changes in $OUT"
if grep -q 'dpkg-gensymbols: warning' "$TMP/build.log"; then
	grep -A40 'dpkg-gensymbols: warning' "$TMP/build.log" | grep -E '^[-+] |warning' >&2 || true
	fail "the library's exports differ from debian/libspillway0.symbols (diff above): add a new spw_ symbol there as \" spw_NAME@SPILLWAY_0 <upstream version that added it>\"; a removed one needs a new SONAME"
fi

# --- 2. lintian -------------------------------------------------------------------
check "lintian reports no error"
rc=0
# Exit 2: a tag at --fail-on's level (error); 1: lintian itself failed.
lintian --fail-on error --no-tag-display-limit "$CHANGES" >"$TMP/lintian.txt" 2>&1 || rc=$?
grep -E '^(W|I): ' "$TMP/lintian.txt" | sed 's/^/  lintian: /' || true
[ "$rc" != 1 ] || { cat "$TMP/lintian.txt" >&2; fail "lintian itself failed (exit 1)"; }
if grep -E '^E: ' "$TMP/lintian.txt" >&2 || [ "$rc" != 0 ]; then
	fail "lintian errors (above)"
fi

# --- 3. the files, unpacked into a scratch root -------------------------------------
R=$TMP/root
LIB=$R/usr/lib/$MA
for p in $PKGS; do
	v=DEB_${p//-/_}
	dpkg -x "${!v}" "$R"
done

check "libspillway0: the library, its SONAME link, spw_* exports only"
so=$LIB/libspillway.so.$UPSTREAM
[ -f "$so" ] && [ ! -L "$so" ] || fail "no $so"
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libspillway.so.0 ] || fail "SONAME is '$soname', not libspillway.so.0"
[ "$(readlink "$LIB/libspillway.so.0")" = "libspillway.so.$UPSTREAM" ] ||
	fail "libspillway.so.0 does not link to libspillway.so.$UPSTREAM"
for p in $PKGS; do
	v=DEB_${p//-/_}
	dpkg-deb -c "${!v}" >"$TMP/$p.list"
done
grep 'libspillway\.so$' "$TMP/libspillway0.list" &&
	fail "libspillway0 holds the unversioned libspillway.so (above; it belongs in -dev)"
nm -D --defined-only "$so" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort >"$TMP/exported"
[ -s "$TMP/exported" ] || fail "the library exports nothing"
grep -v '^spw_' "$TMP/exported" && fail "exports other than spw_* (above)"

check "libspillway0: its symbols file lists spw_* symbols only, each one exported"
dpkg-deb -e "$DEB_libspillway0" "$TMP/ctl"
[ -f "$TMP/ctl/symbols" ] || fail "libspillway0 has no symbols file"
cp "$TMP/ctl/symbols" "$TMP/symbols"
head -n 1 "$TMP/symbols" | grep -qx 'libspillway.so.0 libspillway0 #MINVER#' ||
	fail "symbols file header: $(head -n 1 "$TMP/symbols")"
sed -n 's/^ \([^ @]*\)@SPILLWAY_0 .*/\1/p' "$TMP/symbols" | grep -vx SPILLWAY_0 | sort >"$TMP/listed"
grep -E '^ ' "$TMP/symbols" | grep -vE '^ (spw_[a-z0-9_]+|SPILLWAY_0)@SPILLWAY_0 ' &&
	fail "symbols file lists more than spw_* symbols (above)"
cmp -s "$TMP/listed" "$TMP/exported" ||
	fail "symbols file and exports differ: $(diff "$TMP/listed" "$TMP/exported" | grep '^[<>]' | tr '\n' ' ')"

check "libspillway-dev: header, spillway.pc with Debian's paths, static library, .so link"
[ -f "$R/usr/include/spillway.h" ] || fail "no /usr/include/spillway.h"
[ -f "$LIB/libspillway.a" ] || fail "no $LIB/libspillway.a"
[ "$(readlink "$LIB/libspillway.so")" = "libspillway.so.$UPSTREAM" ] ||
	fail "libspillway.so does not link to libspillway.so.$UPSTREAM"
pc=$LIB/pkgconfig/spillway.pc
[ -f "$pc" ] || fail "no $pc"
pcv() { PKG_CONFIG_LIBDIR=$LIB/pkgconfig pkg-config "$@" spillway; }
[ "$(pcv --variable=prefix)" = /usr ] || fail "spillway.pc prefix $(pcv --variable=prefix)"
[ "$(pcv --variable=libdir)" = "/usr/lib/$MA" ] || fail "spillway.pc libdir $(pcv --variable=libdir)"
[ "$(pcv --variable=includedir)" = /usr/include ] || fail "spillway.pc includedir $(pcv --variable=includedir)"
[ "$(pcv --modversion)" = "$UPSTREAM" ] || fail "spillway.pc version $(pcv --modversion)"

check "a program builds against the scratch root's header and links the .so and the .a"
cat >"$TMP/app.c" <<'EOF'
#include <spillway.h>
#include <stdio.h>
int main(void)
{
	/* 0 for a good name, a negative errno for a bad one. */
	if (spw_topic_name_check("orders") != 0 || spw_topic_name_check("../x") >= 0)
		return 1;
	printf("shm %s\n", spw_shm_dir(NULL));
	return 0;
}
EOF
cc -I"$R/usr/include" "$TMP/app.c" -L"$LIB" -lspillway -o "$TMP/app-so" 2>"$TMP/cc.err" ||
	{ cat "$TMP/cc.err" >&2; fail "cc against the .so failed"; }
LD_LIBRARY_PATH=$LIB "$TMP/app-so" >/dev/null || fail "the program linked to the .so failed"
ldd_line=$(LD_LIBRARY_PATH=$LIB ldd "$TMP/app-so" | grep libspillway) || true
case "$ldd_line" in *"$LIB/libspillway.so.0"*) ;; *) fail "app-so loaded '$ldd_line', not $LIB's" ;; esac
# The .pc's static flags (Libs.private) with the scratch root's .a for -lspillway.
static=$(pcv --static --libs)
static=${static/-lspillway/$LIB/libspillway.a}
# shellcheck disable=SC2086 # pkg-config's flags are meant to split
cc -I"$R/usr/include" "$TMP/app.c" $static -o "$TMP/app-a" 2>"$TMP/cc.err" ||
	{ cat "$TMP/cc.err" >&2; fail "cc against the .a failed"; }
"$TMP/app-a" >/dev/null || fail "the program linked to the .a failed"

check "spillway: the binaries run --help from the scratch root"
for b in spillway spillwayd; do
	[ -x "$R/usr/bin/$b" ] || fail "no /usr/bin/$b"
	LD_LIBRARY_PATH=$LIB "$R/usr/bin/$b" --help >"$TMP/help" 2>&1 ||
		{ cat "$TMP/help" >&2; fail "$b --help failed"; }
	grep -q "^usage: $b" "$TMP/help" || fail "$b --help printed no usage line"
done

check "spillway: the systemd unit in /lib/systemd/system, ExecStart on /usr/bin"
unit=$R/lib/systemd/system/spillwayd.service
[ -f "$unit" ] || fail "no /lib/systemd/system/spillwayd.service"
grep -qx 'ExecStart=/usr/bin/spillwayd .*' "$unit" || fail "ExecStart is not /usr/bin/spillwayd: $(grep ExecStart= "$unit")"
grep -nE '@[A-Z]+@|/usr/local' "$unit" && fail "unit has an unfilled @VAR@ or a /usr/local path (above)"
[ -f "$R/usr/share/doc/spillway/daemon.md" ] || fail "the unit's Documentation= file is not shipped"

check "the man pages are there, gzipped"
for m in man1/spillway.1 man7/spillway.7 man8/spillwayd.8 man3/libspillway.3; do
	f=$R/usr/share/man/$m.gz
	[ -f "$f" ] || fail "no /usr/share/man/$m.gz"
	zcat "$f" | grep '^\.TH' >/dev/null || fail "$m.gz is not a man page"
done
grep 'man3/libspillway.3.gz' "$TMP/libspillway-dev.list" >/dev/null ||
	fail "libspillway(3) is not in libspillway-dev"

# --- 4. install and purge -----------------------------------------------------------
skip=""
if [ "${SPW_DEB_NO_INSTALL:-}" = 1 ]; then
	skip="SPW_DEB_NO_INSTALL=1"
elif [ "$(id -u)" != 0 ]; then
	skip="not root"
elif [ -e /var/lib/spillway ]; then
	skip="/var/lib/spillway exists (purge would delete someone's data)"
else
	for p in $PKGS; do
		s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || s=not-installed
		[ "$s" = not-installed ] || skip="$skip$p is $s; "
	done
fi
if [ -n "$skip" ]; then
	echo "skip: dpkg -i / dpkg --purge: $skip"
	echo "ok: deb_package.sh (install and purge skipped)"
	exit 0
fi

# Every path named *spillway* where a package could put or leave one.
TRACKED="/etc /lib/systemd /usr/bin /usr/sbin /usr/include /usr/lib /usr/share /var/lib"
# shellcheck disable=SC2086 # a list of directories
trace() { find $TRACKED -xdev -name '*spillway*' 2>/dev/null | sort -u; }
trace >"$TMP/before"
WANTS=/etc/systemd/system/multi-user.target.wants/spillwayd.service
wanted_before=no
[ -e "$WANTS" ] || [ -L "$WANTS" ] && wanted_before=yes

check "dpkg -i installs the three packages"
INSTALLED="spillway libspillway-dev libspillway0"
dpkg -i "$DEB_libspillway0" "$DEB_libspillway_dev" "$DEB_spillway" >"$TMP/dpkg.log" 2>&1 ||
	{ cat "$TMP/dpkg.log" >&2; fail "dpkg -i failed"; }
for p in $PKGS; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p")" = installed ] || fail "$p is not installed"
done
/usr/bin/spillway --help >/dev/null || fail "/usr/bin/spillway --help failed"
# (merged /usr: the cache may name it /lib/$MA/..., the same file)
ldconfig -p | grep -E "libspillway\.so\.0 .*=> (/usr)?/lib/$MA/libspillway\.so\.0\$" >/dev/null ||
	fail "ldconfig's cache lacks /usr/lib/$MA/libspillway.so.0"
if [ "$wanted_before" = no ] && { [ -e "$WANTS" ] || [ -L "$WANTS" ]; }; then
	fail "the unit got enabled on install (it is installed disabled: docs/packaging.md)"
fi
if command -v systemd-analyze >/dev/null; then
	check "systemd-analyze verify accepts the installed unit"
	systemd-analyze verify /lib/systemd/system/spillwayd.service >"$TMP/verify" 2>&1 ||
		{ cat "$TMP/verify" >&2; fail "systemd-analyze verify spillwayd.service failed"; }
fi
# Where systemd runs (not in this project's CI VM) and no other Spillway uses
# the default shm dir: start the unit, see it active, stop it.
if [ -d /run/systemd/system ] && [ ! -e /dev/shm/spillway ]; then
	check "systemctl starts and stops spillwayd"
	systemctl start spillwayd.service || fail "systemctl start spillwayd failed"
	for _ in $(seq 50); do
		systemctl is-active --quiet spillwayd.service && break
		sleep 0.1
	done
	active=$(systemctl is-active spillwayd.service) || true
	systemctl stop spillwayd.service || true
	rm -rf /dev/shm/spillway
	[ "$active" = active ] || { journalctl -u spillwayd -n 20 --no-pager >&2 || true; fail "spillwayd is $active under systemd"; }
else
	echo "  systemd is not running here (or /dev/shm/spillway is in use): the unit was not started"
fi
# shellcheck disable=SC2086 # a list of package names
dpkg -L $PKGS | sort -u >"$TMP/files"

check "dpkg --purge leaves nothing behind, the state dir included"
# What the unit's StateDirectory= and the daemon would have made.
MADE_STATE=1
mkdir -p /var/lib/spillway/orders
echo x >/var/lib/spillway/orders/00000000000000000000.seg
dpkg --purge spillway libspillway-dev libspillway0 >"$TMP/dpkg.log" 2>&1 ||
	{ cat "$TMP/dpkg.log" >&2; fail "dpkg --purge failed"; }
INSTALLED=""
for p in $PKGS; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || s=not-installed
	[ "$s" = not-installed ] || fail "$p is still $s after purge"
done
[ ! -e /var/lib/spillway ] || fail "/var/lib/spillway is still there after purge"
while IFS= read -r f; do
	# Directories (or /lib, a link to one) are shared, such as /usr/bin; the
	# packages' own (/usr/share/doc/spillway) are in the *spillway* trace below.
	[ -d "$f" ] && continue
	[ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is still there after purge"
done <"$TMP/files"
trace >"$TMP/after"
cmp -s "$TMP/before" "$TMP/after" ||
	fail "paths named *spillway* differ after purge: $(diff "$TMP/before" "$TMP/after" | grep '^[<>]' | tr '\n' ' ')"

echo "ok: deb_package.sh"
