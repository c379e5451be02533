/*
 * examples/embed/fuzz_parser.c - a snapshot fuzzer on a cowvm guest, for authors to copy.
 *
 * A target (a small record parser with a planted bug) keeps its input buffer, its heap and its
 * stack in one cowvm task; every load and store it makes goes through the task's MMU
 * (cowvm_load64 / cowvm_store64, whose TLB hit runs inline here).  The loop:
 *
 *     snapshot once ──► [ mutate the input, write it into the guest, run the parser,
 *                         note a crash, cowvm_restore ] × N
 *
 * A restore puts back only the pages the iteration changed (the input page, the heap pages it
 * used, the stack page), so an iteration costs the parser's work plus a few page remaps, not a
 * fork of the whole guest.
 *
 * The guest's address space:
 *
 *     INPUT  [ 1 page          ]  u32 length, then the bytes
 *     HEAP   [ 16 pages        ][ guard: PROT_NONE ]   word 0: the bump pointer; blobs from the top
 *     STACK  [ 4 pages         ]  the parser's locals (record count, checksum)
 *
 * The format: "CVMF", a version byte (1; 2 and later read extended records), then records of type (1 byte), length (1 byte),
 * data (length bytes).
 *   type 1  name:  copied into a heap allocation of its length
 *   type 2  int:   8 little-endian bytes added to the checksum
 *   type 7  blob:  copied into a 64-byte buffer at the top of the heap.  The bug: version 2's
 *                  code for it trusts the length byte (checked neither against the input nor
 *                  against the buffer), so a length over 64 runs into the guard page, a SIGSEGV
 *                  in the guest (-EFAULT from the access), which the fuzzer reports.  The seed
 *                  is version 1, so two mutations must meet: the version and the length.
 *
 * It prints executions per second, the restore's share, the dirty pages per iteration and the
 * crash it found, and exits 0 when it found the planted bug with every invariant holding.
 * Usage: fuzz-parser [ITERATIONS]   (default 100000)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <cowvm.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096u
#define INPUT_PAGES 1u
#define HEAP_PAGES 16u
#define STACK_PAGES 4u
#define INPUT_MAX (INPUT_PAGES * PAGE - 8)
#define BLOB_SIZE 64u

struct guest {
	cowvm_t *vm;
	cowvm_task_t *task;
	uint64_t input, heap, guard, stack;
};

/* One byte through the MMU: the aligned word that holds it never crosses a page. */
static int load8(cowvm_task_t *t, uint64_t addr, uint8_t *out)
{
	uint64_t word;
	int err = cowvm_load64(t, addr & ~7ull, &word);
	if (err)
		return err;
	*out = (uint8_t)(word >> (8 * (addr & 7)));
	return 0;
}

static int store8(cowvm_task_t *t, uint64_t addr, uint8_t value)
{
	uint64_t word, shift = 8 * (addr & 7);
	int err = cowvm_load64(t, addr & ~7ull, &word);
	if (err)
		return err;
	word = (word & ~(0xffull << shift)) | ((uint64_t)value << shift);
	return cowvm_store64(t, addr & ~7ull, word);
}

/* Where the target crashed, if it did. */
struct crash {
	int err;                /* -EFAULT: SIGSEGV in the guest */
	uint64_t addr;          /* the access that faulted */
	const char *site;       /* which part of the parser made it */
};

#define TRY(expr, at, where)                                                                    \
	do {                                                                                    \
		int err_ = (expr);                                                              \
		if (err_) {                                                                     \
			c->err = err_;                                                          \
			c->addr = (at);                                                         \
			c->site = (where);                                                      \
			return -1;                                                              \
		}                                                                               \
	} while (0)

/*
 * The target.  Returns the records parsed (>= 0), -2 for input it rejects, or -1 for a crash
 * (described in *c).  All of its state is in guest memory.
 */
static int parse(const struct guest *g, struct crash *c)
{
	cowvm_task_t *t = g->task;
	uint64_t len, magic, bump, sum = 0, count = 0;
	uint64_t locals = g->stack + STACK_PAGES * PAGE - 64; /* the frame at the stack's top */

	TRY(cowvm_load64(t, g->input, &len), g->input, "read length");
	if (len < 4 || len > INPUT_MAX)
		return -2;
	TRY(cowvm_load64(t, g->input + 8, &magic), g->input + 8, "read magic");
	if ((magic & 0xffffffffu) != 0x464d5643u) /* "CVMF" */
		return -2;
	TRY(cowvm_load64(t, g->heap, &bump), g->heap, "read heap pointer");

	uint8_t version;
	TRY(load8(t, g->input + 12, &version), g->input + 12, "read version");
	if (version == 0)
		return -2;
	int extended = version >= 2;    /* version 2 and any later one read extended records */

	uint64_t pos = 5;
	while (pos + 2 <= len) {
		uint8_t type, rlen;
		uint64_t at = g->input + 8 + pos;
		TRY(load8(t, at, &type), at, "read record type");
		TRY(load8(t, at + 1, &rlen), at + 1, "read record length");
		if (!(type == 7 && extended) && pos + 2 + rlen > len)
			return -2;                        /* version 2's blob forgets this check */
		uint64_t data = at + 2;
		if (type == 1) {                          /* name: a heap copy of its length */
			if (bump + rlen > g->heap + (HEAP_PAGES - 1) * PAGE)
				return -2;                /* out of heap below the blob area */
			for (uint64_t i = 0; i < rlen; i++) {
				uint8_t b;
				TRY(load8(t, data + i, &b), data + i, "name: read");
				TRY(store8(t, bump + i, b), bump + i, "name: copy to heap");
			}
			bump += (rlen + 7) & ~7u;
		} else if (type == 2 && rlen == 8) {      /* int: into the checksum */
			uint64_t v = 0;
			for (unsigned i = 0; i < 8; i++) {
				uint8_t b;
				TRY(load8(t, data + i, &b), data + i, "int: read");
				v |= (uint64_t)b << (8 * i);
			}
			sum += v;
		} else if (type == 7) {                   /* blob: the planted bug */
			uint64_t blob = g->guard - BLOB_SIZE;
			uint64_t n = !extended && rlen > BLOB_SIZE ? BLOB_SIZE : rlen;
			for (uint64_t i = 0; i < n; i++) { /* version 2 does not stop at BLOB_SIZE */
				uint8_t b;
				TRY(load8(t, data + i, &b), data + i, "blob: read");
				TRY(store8(t, blob + i, b), blob + i, "blob: copy to heap");
			}
		} else {
			return -2;
		}
		count++;
		TRY(cowvm_store64(t, locals, count), locals, "store locals");
		TRY(cowvm_store64(t, locals + 8, sum), locals + 8, "store locals");
		pos += 2 + (uint64_t)rlen;
	}
	TRY(cowvm_store64(t, g->heap, bump), g->heap, "store heap pointer");
	return (int)count;
}

/* ---- the fuzzer ------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t seed_input(uint8_t *buf)
{
	static const uint8_t seed[] = {
		'C', 'V', 'M', 'F', 1,
		1, 5, 'h', 'e', 'l', 'l', 'o',
		2, 8, 1, 0, 0, 0, 0, 0, 0, 0,
		7, 16, 'b', 'l', 'o', 'b', '-', 'o', 'f', '-', 's', 'i', 'x', 't', 'e', 'e', 'n', '!',
		1, 3, 'e', 'n', 'd',
	};
	memcpy(buf, seed, sizeof seed);
	return sizeof seed;
}

/* One to four random byte mutations: a new byte, a bit flip, or an interesting value. */
static void mutate(uint8_t *buf, size_t len)
{
	static const uint8_t interesting[] = { 0x00, 0x01, 0x7f, 0x80, 0xff, 0x40, 0x41, 0x10 };
	unsigned n = 1 + (unsigned)(rng() % 4);
	while (n--) {
		size_t at = (size_t)(rng() % len);
		switch (rng() % 3) {
		case 0: buf[at] = (uint8_t)rng(); break;
		case 1: buf[at] ^= (uint8_t)(1u << (rng() % 8)); break;
		default: buf[at] = interesting[rng() % sizeof interesting]; break;
		}
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int setup(struct guest *g)
{
	struct cowvm_config cfg = { 16u << 20, 0, 0, NULL, 0 }; /* 16 MiB of frames, no swap */
	const int rw = COWVM_PROT_READ | COWVM_PROT_WRITE;
	const int flags = COWVM_MAP_PRIVATE | COWVM_MAP_ANONYMOUS;

	g->vm = cowvm_create(&cfg);
	if (!g->vm)
		return -1;
	g->task = cowvm_spawn(g->vm);
	if (!g->task)
		return -1;
	int64_t input = cowvm_mmap(g->task, 0, INPUT_PAGES * PAGE, rw, flags);
	/* heap and guard in one mapping, the guard made PROT_NONE, so they stay adjacent */
	int64_t heap = cowvm_mmap(g->task, 0, (HEAP_PAGES + 1) * PAGE, rw, flags);
	int64_t stack = cowvm_mmap(g->task, 0, STACK_PAGES * PAGE, rw, flags);
	if (input < 0 || heap < 0 || stack < 0)
		return -1;
	g->input = (uint64_t)input;
	g->heap = (uint64_t)heap;
	g->guard = g->heap + HEAP_PAGES * PAGE;
	g->stack = (uint64_t)stack;
	if (cowvm_mprotect(g->task, g->guard, PAGE, COWVM_PROT_NONE))
		return -1;
	/* the target's start-up: its heap pointer just past word 0, a touched stack frame */
	if (cowvm_store64(g->task, g->heap, g->heap + 8) ||
	    cowvm_store64(g->task, g->stack + STACK_PAGES * PAGE - 64, 0))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	if (iterations <= 0) {
		fprintf(stderr, "usage: %s [ITERATIONS]\n", argv[0]);
		return 2;
	}
	struct guest g;
	if (setup(&g)) {
		fprintf(stderr, "fuzz-parser: cannot set up the guest\n");
		return 1;
	}
	cowvm_snapshot_t *snap = cowvm_snapshot(g.task);
	if (!snap) {
		perror("fuzz-parser: cowvm_snapshot");
		return 1;
	}

	uint8_t seed[256], input[256], first_crash[256];
	size_t seed_len = seed_input(seed), first_len = 0;
	long crashes = 0, rejected = 0, first_at = -1;
	struct crash first = { 0, 0, NULL };
	uint64_t dirty_total = 0, dirty_max = 0;
	double restore_time = 0, start = now();

	for (long i = 0; i < iterations; i++) {
		memcpy(input, seed, seed_len);
		if (i > 0)                 /* iteration 0 runs the seed itself */
			mutate(input, seed_len);
		uint64_t len = seed_len;
		if (cowvm_store64(g.task, g.input, len) ||
		    cowvm_write(g.task, g.input + 8, input, seed_len)) {
			fprintf(stderr, "fuzz-parser: cannot write the input\n");
			return 1;
		}
		struct crash c = { 0, 0, NULL };
		int r = parse(&g, &c);
		if (r == -1) {
			if (crashes++ == 0) {
				first = c;
				first_at = i;
				first_len = seed_len;
				memcpy(first_crash, input, seed_len);
			}
		} else if (r == -2) {
			rejected++;
		}
		if ((i & 1023) == 0) {   /* sample what a restore has to put back */
			int64_t d = cowvm_dirty_pages(g.task, snap, NULL, 0);
			if (d < 0) {
				fprintf(stderr, "fuzz-parser: cowvm_dirty_pages: %" PRId64 "\n", d);
				return 1;
			}
			dirty_total += (uint64_t)d;
			if ((uint64_t)d > dirty_max)
				dirty_max = (uint64_t)d;
		}
		double t0 = now();
		int err = cowvm_restore(g.task, snap);
		restore_time += now() - t0;
		if (err) {
			fprintf(stderr, "fuzz-parser: cowvm_restore: %d\n", err);
			return 1;
		}
	}
	double elapsed = now() - start;

	/* After the last restore the guest is the snapshot again: nothing dirty, the heap fresh. */
	uint64_t bump = 0;
	int64_t dirty_after = cowvm_dirty_pages(g.task, snap, NULL, 0);
	int fresh = cowvm_load64(g.task, g.heap, &bump) == 0 && bump == g.heap + 8 && dirty_after == 0;
	char why[256];
	int broken = cowvm_check(g.vm, why, sizeof why);

	printf("fuzz-parser: %ld executions in %.3f s: %.0f exec/s (restore %.0f%% of the time, "
	       "%.2f us each)\n", iterations, elapsed, (double)iterations / elapsed,
	       100.0 * restore_time / elapsed, 1e6 * restore_time / (double)iterations);
	printf("fuzz-parser: dirty pages before a restore: %.1f on average, %" PRIu64 " at most "
	       "(of %u mapped)\n", (double)dirty_total / (double)((iterations + 1023) / 1024),
	       dirty_max, INPUT_PAGES + HEAP_PAGES + STACK_PAGES);
	printf("fuzz-parser: %ld inputs rejected, %ld crashed\n", rejected, crashes);
	if (crashes) {
		printf("fuzz-parser: first crash at execution %ld: %s at 0x%" PRIx64 " (%s, the guard "
		       "page is 0x%" PRIx64 ")\n  input:", first_at, first.site, first.addr,
		       first.err == -EFAULT ? "SIGSEGV" : "error", g.guard);
		for (size_t i = 0; i < first_len; i++)
			printf(" %02x", first_crash[i]);
		printf("\n");
	}
	printf("fuzz-parser: after the last restore the guest is the snapshot: %s; invariants: %s\n",
	       fresh ? "yes" : "no", broken ? why : "ok");

	int found = crashes > 0 && first.site && strncmp(first.site, "blob", 4) == 0 &&
		    first.addr >= g.guard && first.addr < g.guard + PAGE;
	cowvm_snapshot_free(snap);
	cowvm_destroy(g.vm);
	return found && fresh && !broken ? 0 : 1;
}
