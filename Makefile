# cowvm - one plain GNU Makefile.
#   make                 library (build/libcowvm.a, build/libcowvm.so) and the cowvm program
#   make test            build and run the Criterion suite
#   make asan-test       the suite under AddressSanitizer + UBSan (in build/asan)
#   make tsan-test       the thread and Dirty COW tests under ThreadSanitizer (in build/tsan)
#   make demo            run examples/fork-cow.cows with a fault trace
#   make examples        run every example scenario (their expectations must hold)
#   make compare         replay tests/scenarios/ on the host kernel and compare (as root)
#   make bench           benchmarks against the host kernel, the cost curve, build/bench.{json,md}
#   make bench-quick     the same, smaller (a few seconds; CI keeps build/bench.json)
#   make fuzz-smoke      seeded random operation sequences against the reference model
#   make fuzz-libfuzzer  the libFuzzer target (clang), in build/fuzz
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

LIB_SRC  := $(wildcard mm/*.c) $(wildcard arch/x86/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_SRC := $(wildcard tools/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HEADERS  := $(wildcard include/*.h mm/*.h arch/x86/*.h lib/*.h tools/*.h)

all: $(BUILD)/libcowvm.a $(BUILD)/libcowvm.so $(BUILD)/cowvm

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcowvm.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcowvm.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/cowvm: $(TOOL_SRC) $(BUILD)/libcowvm.a $(HEADERS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(TOOL_SRC) $(BUILD)/libcowvm.a $(LDLIBS)

# Criterion suites; the suites that race host threads use cmocka, because Criterion cannot
# start under TSan; the scenario suite also links the tool's sources (all but main in
# tools/cowvm.c).
TOOL_LIB_SRC := $(filter-out tools/cowvm.c,$(TOOL_SRC))
CMOCKA_TESTS := $(BUILD)/tests/test_threads $(BUILD)/tests/test_dirtycow
$(CMOCKA_TESTS): $(BUILD)/tests/%: tests/%.c tests/testutil.c tests/testutil.h $(BUILD)/libcowvm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTU_CMOCKA -Itests $(LDFLAGS) -o $@ $< tests/testutil.c $(BUILD)/libcowvm.a -lcmocka $(LDLIBS)

TOOL_TESTS := $(BUILD)/tests/test_scenario $(BUILD)/tests/test_compare
$(TOOL_TESTS): $(BUILD)/tests/%: tests/%.c $(TOOL_LIB_SRC) tests/testutil.c tests/testutil.h $(BUILD)/libcowvm.a $(HEADERS) $(wildcard tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Itools $(LDFLAGS) -o $@ $< $(TOOL_LIB_SRC) tests/testutil.c $(BUILD)/libcowvm.a -lcriterion $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.c tests/testutil.h $(BUILD)/libcowvm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< tests/testutil.c $(BUILD)/libcowvm.a -lcriterion $(LDLIBS)

tests: $(TESTS)

# Each suite runs on its own; the summary line is Criterion's.
test: $(TESTS)
	@fail=0; for t in $(TESTS); do echo "== $$t"; $$t --jobs 2 || fail=1; done; exit $$fail

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

examples: $(BUILD)/cowvm
	$(BUILD)/cowvm run examples/*.cows

# Every corpus scenario on cowvm and on the host kernel, step by step (frames need root).
compare: $(BUILD)/cowvm
	$(BUILD)/cowvm compare --require-frames tests/scenarios/*.cows

clean:
	rm -rf build

.PHONY: all examples compare tests test asan-test tsan-test demo bench bench-quick fuzz-smoke fuzz-libfuzzer clean
