# cowvm - one plain GNU Makefile.
#   make                 library (build/libcowvm.a, build/libcowvm.so) and the cowvm program
#   make test            build and run the Criterion suite
#   make asan-test       the suite under AddressSanitizer + UBSan (in build/asan)
#   make tsan-test       the thread and Dirty COW tests under ThreadSanitizer (in build/tsan)
#   make demo            run examples/fork-cow.cows with a fault trace
#   make examples        run every example scenario (their expectations must hold) and
#                        examples/embed (a snapshot fuzzer over a cowvm guest)
#   make compare         replay tests/scenarios/ on the host kernel and compare (as root)
#   make bench           benchmarks against the host kernel, the cost curve, build/bench.{json,md}
#   make bench-quick     the same, smaller (a few seconds; CI keeps build/bench.json)
#   make bench-restore   snapshot/restore loops against a host fork server (build/bench-restore.*)
#   make fuzz-smoke      seeded random operation sequences against the reference model
#   make fuzz-libfuzzer  the libFuzzer target (clang), in build/fuzz
#   make install         header, libcowvm.so.0 + libcowvm.a, cowvm, its man page, cowvm.pc
#                        (PREFIX=/usr/local, DESTDIR= for staging); make uninstall
BUILD    ?= build
CC       ?= cc
OPT      ?= -O2
SAN      ?=
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -fPIC -D_GNU_SOURCE -Iinclude
ifneq ($(SAN),)
CFLAGS   += -fsanitize=$(SAN) -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SAN)
endif
LDLIBS   += -lpthread
OBJCOPY  ?= objcopy

# Only cowvm_ names leave the libraries: the library's objects are built with hidden
# visibility (include/cowvm.h turns its own declarations back to default), the shared library
# exports through a version script, and the static archive is one relocatable object whose
# hidden symbols are made local, so a program may define current, put_page or list_add itself.
VERSION  := 0.1.0
SONAME   := libcowvm.so.0
LIB_CFLAGS := -DCOWVM_BUILDING_LIBRARY -fvisibility=hidden

PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR   ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

LIB_SRC  := $(wildcard mm/*.c) $(wildcard arch/x86/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_SRC := $(wildcard tools/*.c tools/*/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB_HEADERS := $(wildcard include/*.h mm/*.h arch/x86/*.h lib/*.h)
HEADERS  := $(LIB_HEADERS) $(wildcard tools/*.h tools/*/*.h)

all: $(BUILD)/libcowvm.a $(BUILD)/libcowvm.so $(BUILD)/cowvm

$(BUILD)/obj/%.o: %.c $(LIB_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/obj/libcowvm.o: $(LIB_OBJ)
	$(LD) -r -o $@.tmp $^
	$(OBJCOPY) --localize-hidden $@.tmp $@
	@rm -f $@.tmp

$(BUILD)/libcowvm.a: $(BUILD)/obj/libcowvm.o
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libcowvm.so.$(VERSION): $(LIB_OBJ) libcowvm.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--version-script=libcowvm.map \
		-o $@ $(LIB_OBJ) $(LDLIBS)

$(BUILD)/libcowvm.so.0: $(BUILD)/libcowvm.so.$(VERSION)
	ln -sf $(notdir $<) $@

$(BUILD)/libcowvm.so: $(BUILD)/libcowvm.so.0
	ln -sf $(notdir $<) $@

$(BUILD)/cowvm.pc: cowvm.pc.in FORCE
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(VERSION)|' $< > $@

install: all $(BUILD)/cowvm.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/cowvm.h $(DESTDIR)$(INCLUDEDIR)/cowvm.h
	install -m 644 $(BUILD)/libcowvm.a $(DESTDIR)$(LIBDIR)/libcowvm.a
	install -m 755 $(BUILD)/libcowvm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libcowvm.so.$(VERSION)
	ln -sf libcowvm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libcowvm.so
	install -m 755 $(BUILD)/cowvm $(DESTDIR)$(BINDIR)/cowvm
	install -m 644 docs/cowvm.1 $(DESTDIR)$(MANDIR)/man1/cowvm.1
	install -m 644 $(BUILD)/cowvm.pc $(DESTDIR)$(PKGCONFIGDIR)/cowvm.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/cowvm.h $(DESTDIR)$(LIBDIR)/libcowvm.a \
		$(DESTDIR)$(LIBDIR)/libcowvm.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/libcowvm.so $(DESTDIR)$(BINDIR)/cowvm \
		$(DESTDIR)$(MANDIR)/man1/cowvm.1 $(DESTDIR)$(PKGCONFIGDIR)/cowvm.pc

# The explorer's page (cowvm run --html) is tools/render/explorer.html, made into a C header.
EXPLORER_PAGE := $(BUILD)/gen/render/html_page.h
$(EXPLORER_PAGE): tools/render/explorer.html tools/render/page_to_c.awk
	@mkdir -p $(dir $@)
	awk -f tools/render/page_to_c.awk $< > $@.tmp && mv $@.tmp $@

$(BUILD)/cowvm: $(TOOL_SRC) $(BUILD)/libcowvm.a $(HEADERS) $(EXPLORER_PAGE)
	$(CC) $(CFLAGS) -Itools -I$(BUILD)/gen $(LDFLAGS) -o $@ $(TOOL_SRC) $(BUILD)/libcowvm.a $(LDLIBS)

# Criterion suites; the suites that race host threads use cmocka, because Criterion cannot
# start under TSan; the scenario suite also links the tool's sources (all but main in
# tools/cowvm.c).
TOOL_LIB_SRC := $(filter-out tools/cowvm.c,$(TOOL_SRC))
CMOCKA_TESTS := $(BUILD)/tests/test_threads $(BUILD)/tests/test_dirtycow
$(CMOCKA_TESTS): $(BUILD)/tests/%: tests/%.c tests/testutil.c tests/testutil.h $(BUILD)/libcowvm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTU_CMOCKA -Itests $(LDFLAGS) -o $@ $< tests/testutil.c $(BUILD)/libcowvm.a -lcmocka $(LDLIBS)

TOOL_TESTS := $(BUILD)/tests/test_scenario $(BUILD)/tests/test_compare $(BUILD)/tests/test_trace \
              $(BUILD)/tests/test_explorer
$(TOOL_TESTS): $(BUILD)/tests/%: tests/%.c $(TOOL_LIB_SRC) tests/testutil.c tests/testutil.h $(BUILD)/libcowvm.a $(HEADERS) $(EXPLORER_PAGE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTEST_BUILD_DIR='"$(BUILD)"' -Itests -Itools -I$(BUILD)/gen $(LDFLAGS) -o $@ $< $(TOOL_LIB_SRC) tests/testutil.c $(BUILD)/libcowvm.a -lcriterion $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.c tests/testutil.h $(BUILD)/libcowvm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< tests/testutil.c $(BUILD)/libcowvm.a -lcriterion $(LDLIBS)

tests: $(TESTS)

# Each suite runs on its own; the summary line is Criterion's.
# Then the packaging checks (tests/packaging/run.sh): only cowvm_ symbols leave the libraries,
# a program that defines current, put_page ... links against both, and the README's program
# builds from a staged `make install` with pkg-config, as C11 and as C++17.
test: $(TESTS) all
	@fail=0; for t in $(TESTS); do echo "== $$t"; $$t --jobs 2 || fail=1; done; \
	echo "== tests/packaging/run.sh"; \
	BUILD=$(BUILD) CC="$(CC)" CXX="$(CXX)" SAN="$(SAN)" MAKE="$(MAKE)" \
		sh tests/packaging/run.sh || fail=1; exit $$fail

asan-test:
	$(MAKE) BUILD=build/asan SAN=address,undefined OPT=-O1 test

tsan-test:
	$(MAKE) BUILD=build/tsan SAN=thread OPT=-O1 build/tsan/tests/test_threads build/tsan/tests/test_dirtycow
	TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/test_threads --jobs 1
	TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/test_dirtycow

BENCH_SRC := $(wildcard bench/*.c)
$(BUILD)/cowvm-bench: $(BENCH_SRC) $(wildcard bench/*.h) $(BUILD)/libcowvm.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(BENCH_SRC) $(BUILD)/libcowvm.a $(LDLIBS) -lm

bench: $(BUILD)/cowvm-bench
	$(BUILD)/cowvm-bench

bench-quick: $(BUILD)/cowvm-bench
	$(BUILD)/cowvm-bench --quick

# The snapshot fuzzer's loop alone (issue 14): restore at K = 1, 16, 256 dirty pages of a
# 1 GiB guest, against a host fork server of the same size and memcpy of the pages.
bench-restore: $(BUILD)/cowvm-bench
	$(BUILD)/cowvm-bench --case restore_k1,restore_k16,restore_k256 --size none \
		--json $(BUILD)/bench-restore.json --markdown $(BUILD)/bench-restore.md

# fuzz/: every .c but the two entry points is shared by both.
FUZZ_COMMON := $(filter-out fuzz/smoke_main.c fuzz/libfuzzer_main.c,$(wildcard fuzz/*.c))
$(BUILD)/fuzz-smoke: fuzz/smoke_main.c $(FUZZ_COMMON) $(wildcard fuzz/*.h) $(BUILD)/libcowvm.a
	$(CC) $(CFLAGS) -Ifuzz $(LDFLAGS) -o $@ fuzz/smoke_main.c $(FUZZ_COMMON) $(BUILD)/libcowvm.a $(LDLIBS)

fuzz-smoke:
	$(MAKE) BUILD=build/asan SAN=address,undefined OPT=-O1 build/asan/fuzz-smoke
	build/asan/fuzz-smoke

fuzz-libfuzzer:
	$(MAKE) BUILD=build/fuzz CC=clang SAN=fuzzer-no-link,address,undefined OPT=-O1 build/fuzz/libcowvm.a
	clang -std=gnu11 -O1 -g -D_GNU_SOURCE -Iinclude -Ifuzz -fsanitize=fuzzer,address,undefined \
		-o build/fuzz/fuzz-cowvm fuzz/libfuzzer_main.c $(FUZZ_COMMON) build/fuzz/libcowvm.a -lpthread

demo: $(BUILD)/cowvm
	$(BUILD)/cowvm run --trace examples/fork-cow.cows

# ... and the embedding example: a snapshot fuzzer over a parser in a cowvm guest, built as a
# user would build it (C11, -pedantic, only include/cowvm.h); it fails unless it finds the bug.
examples: $(BUILD)/cowvm $(BUILD)/examples/fuzz-parser
	$(BUILD)/cowvm run examples/*.cows
	$(BUILD)/examples/fuzz-parser 100000

$(BUILD)/examples/fuzz-parser: examples/embed/fuzz_parser.c include/cowvm.h $(BUILD)/libcowvm.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -pedantic $(filter-out -std=gnu11 -D_GNU_SOURCE,$(CFLAGS)) $(LDFLAGS) -o $@ $< $(BUILD)/libcowvm.a $(LDLIBS)

# Every corpus scenario on cowvm and on the host kernel, step by step (frames need root).
compare: $(BUILD)/cowvm
	$(BUILD)/cowvm compare --require-frames tests/scenarios/*.cows

clean:
	rm -rf build

.PHONY: all examples compare tests test asan-test tsan-test demo bench bench-quick bench-restore fuzz-smoke fuzz-libfuzzer clean install uninstall FORCE
