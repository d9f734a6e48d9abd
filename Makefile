# Spillway - top-level GNU Makefile (the only build system).
#
#   make            build the library, daemon, tools (never installs packages:
#                   on a fresh machine run `make deps` first, or `make test` /
#                   `make demo`, which call it)
#   make test       deps + -Werror build + every test + ASan/UBSan + TSan variants
#   make bench      deps + google-benchmark harness, run pinned
#   make asan/tsan  sanitizer builds of the tests, each in its own build dir, and run them
#   make install    PREFIX=/usr/local DESTDIR= : libs, header, spillway.pc
#   make deps       install the Debian packages the build needs, when missing
#
# CC, CFLAGS, LDFLAGS, PREFIX, DESTDIR are the user's (make's own defaults:
# CC=cc, CXX=g++); the flags the build needs are added with override.

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
CFLAGS ?= -O2 -g
CXXFLAGS ?= -O2 -g
BUILD ?= build
WERROR ?=

SONAME_MAJOR := 0
VERSION := 0.1.0

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla -Wcast-align -Wwrite-strings
override CFLAGS += -std=gnu11 $(WARN) $(WERROR) -fPIC -Iring -MMD -MP -pthread
override CXXFLAGS += -std=c++17 -Wall -Wextra -Wshadow $(WERROR) -Iring -MMD -MP -pthread

ifeq ($(V),1)
Q :=
else
Q := @
endif

DEB_PKGS := liburing-dev libhwloc-dev libcmocka-dev libbenchmark-dev libisal-dev librdkafka-dev \
	g++ pkg-config python3 python3-cffi python3-pytest scdoc man-db procps \
	libmicrohttpd-dev prometheus debhelper lintian fakeroot dpkg-dev python3-dev

# spill/writer*.c: the daemon's io_uring writer (private static library,
# needs liburing).
SPILL_SRC := $(wildcard spill/writer*.c)

# libspillway: the ring plus the rest of spill/ (the disk format, readers,
# groups; no liburing needed).
LIB_SRC := $(wildcard ring/*.c) $(filter-out $(SPILL_SRC),$(wildcard spill/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_A := $(BUILD)/libspillway.a
LIB_SO := $(BUILD)/libspillway.so.$(VERSION)

SPILL_OBJ := $(SPILL_SRC:%.c=$(BUILD)/%.o)
SPILL_A := $(BUILD)/libspill.a
URING_LIBS = $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)
HWLOC_LIBS = $(shell pkg-config --libs hwloc 2>/dev/null || echo -lhwloc)
# ISA-L: CRC32C for libspillway (spill/crc32c.c says why).
ISAL_LIBS = -lisal
# librdkafka: `spillway bridge kafka` (tools/cmd_bridge.c) and its test.
RDKAFKA_LIBS = $(shell pkg-config --libs rdkafka 2>/dev/null || echo -lrdkafka)
# libmicrohttpd: spillwayd --metrics-listen (daemon/metrics.c); prometheus
# (DEB_PKGS) brings promtool, which tests/metrics_http.sh checks it with.
MHD_LIBS = $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)

DAEMON_SRC := $(wildcard daemon/*.c)
DAEMON_BIN := $(BUILD)/spillwayd

# tools/: the spillway CLI, one file per subcommand (tools/cmd_*.c; `spillway
# bench` is tools/cmd_bench.c with tools/bench_*.c, which bench/compare/run.sh
# links too).
TOOLS_SRC := $(wildcard tools/*.c)
TOOLS_BIN := $(BUILD)/spillway

# Tests: every tests/*.c is one cmocka program. tests/mt_*.c are the threaded
# ones that also run under TSan; tests/support*.c are shared helper code.
TEST_SRC := $(filter-out tests/support%,$(wildcard tests/*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TSAN_SRC := $(wildcard tests/mt_*.c)
TEST_SUPPORT := $(wildcard tests/support*.c)
# Built through a pattern rule, so make would delete them as intermediates
# after every run and rebuild them the next time: keep them.
.SECONDARY: $(TEST_SUPPORT:%.c=$(BUILD)/%.o)

# Man pages: docs/man/NAME.SECTION.scd -> $(BUILD)/man/NAME.SECTION (scdoc).
MAN_SRC := $(wildcard docs/man/*.scd)
MAN_OUT := $(MAN_SRC:docs/man/%.scd=$(BUILD)/man/%)
SCDOC := $(shell command -v scdoc 2>/dev/null)

# The Python package's compiled API-mode modules (python/build_api.py): the
# cffi one with libspillway.a linked in, and _records.c; built when Debian's python3 has cffi and Python.h
# (python3-cffi, python3-dev: make deps), else the package uses ABI mode.
PYTHON ?= /usr/bin/python3
PY_API_OK := $(shell $(PYTHON) -c "import cffi, sysconfig, os; \
	assert os.path.exists(sysconfig.get_paths()['include'] + '/Python.h')" 2>/dev/null && echo yes)
PY_API_STAMP := $(BUILD)/python/spillway/.built

BENCH_SRC := $(wildcard bench/*.cc)
BENCH_BIN := $(BUILD)/bench/spillway_bench
RTT_PROBE_BIN := $(BUILD)/bench/rtt_probe

.PHONY: all lib man py test check-tests asan tsan bench bench-compare install uninstall clean deps demo

all: lib bins man py

lib: $(LIB_A) $(BUILD)/libspillway.so

bins: $(DAEMON_BIN) $(if $(TOOLS_SRC),$(TOOLS_BIN))

# Built when scdoc is there (make deps installs it); else said once.
man: $(if $(SCDOC),$(MAN_OUT))
	$(if $(SCDOC),,@echo "man pages: scdoc not found (make deps installs it): not built")

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	@[ -n "$(Q)" ] && echo "  SCDOC   $<" || true
	$(Q)scdoc < $< > $@.tmp && mv $@.tmp $@

py: $(if $(PY_API_OK),$(PY_API_STAMP))
	$(if $(PY_API_OK),,@echo "python: $(PYTHON) lacks cffi or Python.h (make deps): the package uses ABI mode")

$(PY_API_STAMP): python/build_api.py python/spillway/_cdef.py python/spillway/_records.c \
		ring/spillway.h $(LIB_A)
	@mkdir -p $(dir $@)
	@[ -n "$(Q)" ] && echo "  CFFI    spillway._spillway_api spillway._records" || true
	$(Q)rm -f $(BUILD)/python/spillway/_spillway_api*.so $(BUILD)/python/spillway/_records*.so
	$(Q)CC="$(CC)" $(PYTHON) python/build_api.py $(BUILD)/python ring $(LIB_A) $(ISAL_LIBS) -lpthread >/dev/null
	$(Q)touch $@

# --- dependencies -----------------------------------------------------------
deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
		{ $$SUDO apt-get update -q >/dev/null && \
		  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; } || \
		{ echo "deps: could not install:$$missing" >&2; exit 1; }; \
	fi

# --- library ------------------------------------------------------------------
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@[ -n "$(Q)" ] && echo "  CC      $<" || true
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@[ -n "$(Q)" ] && echo "  AR      $@" || true
	$(Q)rm -f $@ && ar rcs $@ $^

$(SPILL_A): $(SPILL_OBJ)
	@[ -n "$(Q)" ] && echo "  AR      $@" || true
	$(Q)rm -f $@ && ar rcs $@ $^

$(DAEMON_BIN): $(DAEMON_SRC:%.c=$(BUILD)/%.o) $(SPILL_A) $(LIB_A)
	@[ -n "$(Q)" ] && echo "  LD      $@" || true
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(URING_LIBS) $(ISAL_LIBS) $(MHD_LIBS) $(LDFLAGS)

$(TOOLS_BIN): $(TOOLS_SRC:%.c=$(BUILD)/%.o) $(LIB_A)
	@[ -n "$(Q)" ] && echo "  LD      $@" || true
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(HWLOC_LIBS) $(ISAL_LIBS) $(RDKAFKA_LIBS) -lm $(LDFLAGS)

$(LIB_SO): $(LIB_OBJ) ring/libspillway.map
	@[ -n "$(Q)" ] && echo "  LD      $@" || true
	$(Q)$(CC) -shared -Wl,-soname,libspillway.so.$(SONAME_MAJOR) \
		-Wl,--version-script=ring/libspillway.map -o $@ $(LIB_OBJ) $(ISAL_LIBS) -pthread $(LDFLAGS)

$(BUILD)/libspillway.so: $(LIB_SO)
	$(Q)ln -sf libspillway.so.$(VERSION) $(BUILD)/libspillway.so.$(SONAME_MAJOR)
	$(Q)ln -sf libspillway.so.$(VERSION) $@

# --- tests --------------------------------------------------------------------
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

$(BUILD)/tests/%: tests/%.c $(LIB_A) $(SPILL_A) $(TEST_SUPPORT:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	@[ -n "$(Q)" ] && echo "  CC      $<" || true
	$(Q)$(CC) $(CFLAGS) -Itests $< $(TEST_SUPPORT:%.c=$(BUILD)/%.o) $(SPILL_A) $(LIB_A) -o $@ $(CMOCKA_LIBS) $(URING_LIBS) $(ISAL_LIBS) $(RDKAFKA_LIBS) -lm $(LDFLAGS)

# Tests that run the daemon or the CLI find them through SPW_DAEMON / SPW_CLI;
# tests/*.sh are the CLI's end-to-end tests (run in the normal build only);
# tests/bench_smoke.sh runs the benchmark binary briefly (SPW_BENCH).
TEST_SH := $(wildcard tests/*.sh)

check-tests: $(TEST_BIN) $(DAEMON_BIN) $(if $(TOOLS_SRC),$(TOOLS_BIN)) $(BUILD)/libspillway.so man \
	$(if $(TEST_ENV),,py $(BENCH_BIN) $(RTT_PROBE_BIN))
	@export SPW_DAEMON=$(CURDIR)/$(DAEMON_BIN) SPW_CLI=$(CURDIR)/$(TOOLS_BIN) \
		SPW_BENCH=$(CURDIR)/$(BENCH_BIN) SPW_RTT_PROBE=$(CURDIR)/$(RTT_PROBE_BIN); set -e; \
	for t in $(TEST_BIN); do \
		echo "== $$t"; $(TEST_ENV) $$t; \
	done; \
	if [ -z "$(TEST_ENV)" ]; then for t in $(TEST_SH); do \
		echo "== $$t"; bash $$t; \
	done; fi

# The tier-one run, then the sanitizer variants. Each variant builds in its
# own directory so objects never mix.
test: deps
	$(Q)$(MAKE) --no-print-directory WERROR=-Werror check-tests
	$(Q)$(MAKE) --no-print-directory asan
	$(Q)$(MAKE) --no-print-directory tsan
	@echo "make test: all passed"

asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan WERROR=-Werror \
		CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" \
		TEST_ENV="SPW_TEST_SCALE=asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" \
		check-tests

# TSan: only the threaded tests (fork-based tests are covered by ASan).
# -Wno-tsan: GCC warns that atomic_thread_fence is not instrumented; the
# fences are documented where they stand (ring/produce.c finish(), ring/
# consume.c) and what TSan cannot see is suppressed in tests/tsan.supp.
tsan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build-tsan WERROR=-Werror \
		CFLAGS="-O1 -g -fsanitize=thread -Wno-tsan" LDFLAGS="-fsanitize=thread" \
		TEST_SRC="$(TSAN_SRC)" \
		TEST_ENV="SPW_TEST_SCALE=tsan TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp" \
		check-tests

# --- benchmarks -----------------------------------------------------------------
BENCH_LIBS = $(shell pkg-config --libs benchmark hwloc 2>/dev/null || echo -lbenchmark -lhwloc) -lpthread

$(BENCH_BIN): $(BENCH_SRC) $(LIB_A)
	@mkdir -p $(dir $@)
	@[ -n "$(Q)" ] && echo "  CXX     $@" || true
	$(Q)$(CXX) $(CXXFLAGS) $(BENCH_SRC) $(LIB_A) -o $@ $(BENCH_LIBS) $(ISAL_LIBS) $(LDFLAGS)

# The 64 B round trip of a bare ring against Spillway's, timed three ways
# (bench/rtt_probe.c; run it alone: build/bench/rtt_probe --rounds 4).
$(RTT_PROBE_BIN): bench/rtt_probe.c tools/bench_topo.c $(LIB_A)
	@mkdir -p $(dir $@)
	@[ -n "$(Q)" ] && echo "  CC      $@" || true
	$(Q)$(CC) $(CFLAGS) $(WERROR) -Iring bench/rtt_probe.c tools/bench_topo.c $(LIB_A) -o $@ \
		$(shell pkg-config --libs hwloc 2>/dev/null || echo -lhwloc) -lpthread $(LDFLAGS)

bench: deps $(BENCH_BIN) $(RTT_PROBE_BIN) bins
	SPW_DAEMON=$(CURDIR)/$(DAEMON_BIN) $(BENCH_BIN) $(BENCH_ARGS)

# Spillway against pipe, unix socket, POSIX mq, ZeroMQ and a file writer, in one
# run: bench/results/compare.{tsv,md,png} (bench/compare/run.sh installs
# libzmq3-dev and gnuplot-nox when missing).
bench-compare: deps lib bins
	SPW_DAEMON=$(CURDIR)/$(DAEMON_BIN) AERON='$(AERON)' bash bench/compare/run.sh

# --- install ------------------------------------------------------------------
UNITDIR ?= $(PREFIX)/lib/systemd/system
# The Python package (python/spillway) goes where Debian's python3 finds it.
# (Debian's python3 reads /usr/lib/python3/dist-packages and
# /usr/local/lib/python3.X/dist-packages; another PREFIX needs PYTHONPATH.)
PYDIR ?= $(shell $(PYTHON) -c "import sys; p = '$(PREFIX)'; print(p + '/lib/python3/dist-packages' if p == '/usr' else '%s/lib/python3.%d/dist-packages' % (p, sys.version_info[1]))" 2>/dev/null)

MANDIR ?= $(PREFIX)/share/man

install: lib bins man py
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR)
	$(if $(SCDOC),for m in $(MAN_OUT); do s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s && \
		install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done)
	install -m 755 $(DAEMON_BIN) $(DESTDIR)$(BINDIR)/
	$(if $(TOOLS_SRC),install -m 755 $(TOOLS_BIN) $(DESTDIR)$(BINDIR)/)
	sed -e 's|@BINDIR@|$(BINDIR)|' daemon/spillwayd.service > $(DESTDIR)$(UNITDIR)/spillwayd.service
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libspillway.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libspillway.so.$(SONAME_MAJOR)
	ln -sf libspillway.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libspillway.so
	install -m 644 ring/spillway.h $(DESTDIR)$(INCDIR)/
	$(if $(PYDIR),install -d $(DESTDIR)$(PYDIR)/spillway && \
		install -m 644 python/spillway/__init__.py python/spillway/_cdef.py $(DESTDIR)$(PYDIR)/spillway/ && \
		{ [ ! -e $(PY_API_STAMP) ] || install -m 644 $(BUILD)/python/spillway/_spillway_api*.so \
			$(BUILD)/python/spillway/_records*.so $(DESTDIR)$(PYDIR)/spillway/; } && \
		echo 'LIBDIR = "$(LIBDIR)"' > $(DESTDIR)$(PYDIR)/spillway/_libdir.py)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' spillway.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/spillway.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libspillway.a $(DESTDIR)$(LIBDIR)/libspillway.so* \
		$(DESTDIR)$(INCDIR)/spillway.h $(DESTDIR)$(LIBDIR)/pkgconfig/spillway.pc \
		$(DESTDIR)$(BINDIR)/spillwayd $(DESTDIR)$(BINDIR)/spillway $(DESTDIR)$(UNITDIR)/spillwayd.service
	$(if $(PYDIR),rm -rf $(DESTDIR)$(PYDIR)/spillway)
	for m in $(MAN_SRC:docs/man/%.scd=%); do s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$$m; done

# --- Debian package -------------------------------------------------------------
# libspillway0, libspillway-dev and spillway (debian/, docs/packaging.md), built
# by dpkg-buildpackage in a copy of the tree in $(DEB_DIR)/src: the files git
# tracks or would track, committed or not (ignored ones such as build/ left
# out). dpkg-buildpackage writes to the parent dir, so the .debs and .changes
# land in $(DEB_DIR). The caller's make variables (make test's WERROR=-Werror
# in MAKEFLAGS) do not reach the package build: debian/rules sets its own.
# Needs debhelper, dpkg-dev and the Build-Depends (make deps installs them).
DEB_DIR ?= build/deb

.PHONY: deb
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files --cached --others --exclude-standard | \
		while IFS= read -r f; do [ ! -e "$$f" ] || printf '%s\n' "$$f"; done | \
		tar -cf - --no-recursion -T - | tar -xf - -C $(DEB_DIR)/src; \
	else \
		tar -cf - --exclude=./.git --exclude=./build --exclude=./build-asan --exclude=./build-tsan . | \
		tar -xf - -C $(DEB_DIR)/src; \
	fi
	cd $(DEB_DIR)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b -jauto
	@echo "deb: packages in $(DEB_DIR):" && ls $(DEB_DIR)/*.deb

# The main job: daemon on temp dirs, producers, a live and a lagging
# consumer, a replay, a summary; cleans up after itself (tools/cmd_demo.c).
demo: deps lib bins
	$(TOOLS_BIN) demo

clean:
	rm -rf build build-asan build-tsan

-include $(LIB_OBJ:.o=.d) $(SPILL_OBJ:.o=.d) $(DAEMON_SRC:%.c=$(BUILD)/%.d) $(TOOLS_SRC:%.c=$(BUILD)/%.d) $(wildcard $(BUILD)/tests/*.d)
