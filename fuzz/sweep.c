/*
 * sweep.c - the fault-injection sweep: every scenario of a fixed set is played with the k-th
 * frame allocation failing (COWVM_FAIL_NTH, k), for k = 1, 2, ... until a run completes
 * without meeting the failure.  Each run must
 *   - give the operation that met the failure a clean outcome (-ENOMEM or -EFAULT with nothing
 *     changed, NULL + ENOMEM from fork/spawn, a copy cut short at a page edge) and every other
 *     operation exactly the model's result;
 *   - keep cowvm_check clean after every operation;
 *   - return every frame once all tasks have exited (fuzz_finish).
 *
 * Whether the k-th allocation was reached is read from the pgalloc counter (successful
 * allocations): at least k means yes; k - 1 is ambiguous (k - 1 made and the k-th failed, or
 * only k - 1 made), so a spawn - whose first act is one allocation - is tried: it fails only
 * if the injection is still armed.  A run that met the failure must show it in exactly one
 * operation, unless the scenario uses MAP_POPULATE, whose errors mmap ignores.
 *
 * Addresses: A is a 2 MiB-aligned empty place; the heap scenario learns start_brk first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "ops.h"

#define MAX_SCENARIO_OPS 64 /* BUILD copies into an array this long */

struct scenario {
	const char *name;
	int populate; /* uses MAP_POPULATE: a failure there is ignored by design */
	size_t (*build)(struct fuzz_op *ops, uint64_t start_brk);
};

/* Three generations of forks, each writing, then exits in the middle of the tree. */
static size_t fork_tree(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(8), RW, PRIV), WRITE(0, A, P(8), 11),
		MMAP(0, A + P(16), P(4), RW, SHRD), WRITE(0, A + P(16), P(2) + 100, 12),
		FORK(0, 1), WRITE(1, A + P(1) + 10, 100, 13), READ(1, A, P(3)),
		FORK(1, 2), WRITE(2, A + P(2) - 50, 5000, 14), WRITE(2, A + P(16) + 5, 50, 15),
		FORK(0, 3), WRITE(3, A, P(8), 16),
		FORK(2, 4), WRITE(4, A + P(4), P(2), 17), WRITE(0, A + P(7), 300, 18),
		READ(0, A, P(4)), READ(1, A, P(4)), READ(2, A + P(2), P(2)), READ(4, A, P(6)),
		READ(3, A + P(16), P(4)),
		EXIT(2), WRITE(4, A + P(5), 64, 19), READ(4, A + P(16), P(4)), EXIT(1),
		WRITE(0, A + P(1), 8, 20), READ(0, A, P(6)), READ(4, A, P(6))));
}

/* Parent and child both break COW on the same pages, then reuse after the parent is gone. */
static size_t cow_both_sides(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(4), RW, PRIV), WRITE(0, A, P(4), 21), FORK(0, 1),
		WRITE(0, A, 64, 22), WRITE(1, A + 8, 64, 23), WRITE(1, A + P(1), P(1), 24),
		WRITE(0, A + P(2) - 4, 8, 25), WRITE(1, A + P(2) + 100, 8, 26),
		READ(0, A, P(4)), READ(1, A, P(4)), PUTU(1, A + P(3), 27), GETU(0, A + P(3)),
		STORE(0, A + P(3) - 3, 28), LOAD(1, A + P(3) - 3),
		EXIT(0), WRITE(1, A + P(3), 100, 29), READ(1, A, P(4)),
		FORK(1, 2), MPROTECT(1, A, P(4), PROT_READ), MPROTECT(1, A, P(4), RW),
		WRITE(1, A, 10, 30), WRITE(2, A, 10, 31), READ(2, A, P(4)), READ(1, A, P(4))));
}

/* munmap in the middle of a region, in the parent and the child, and refill the hole. */
static size_t munmap_middle(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(16), RW, PRIV), WRITE(0, A, P(6), 31),
		WRITE(0, A + P(6), P(6), 32), WRITE(0, A + P(12), P(4), 33), FORK(0, 1),
		MUNMAP(1, A + P(6), P(4)), MUNMAP(0, A + P(2), P(2)),
		WRITE(1, A + P(5) + 4000, 200, 34), WRITE(1, A + P(5), 100, 35),
		WRITE(0, A + P(6), 100, 36), MMAP(1, A + P(7), P(2), RW, PRIV),
		WRITE(1, A + P(7), P(2), 37), READ(1, A, P(6)), READ(0, A + P(4), P(5)),
		MUNMAP(0, A, P(16)), READ(1, A + P(10), P(6))));
}

/* A shared mapping next to a private one, across forks, DONTNEED, partial munmap, DONTFORK. */
static size_t shared_across_fork(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(4), RW, SHRD), MMAP(0, A + P(4), P(4), RW, PRIV),
		WRITE(0, A, P(6), 41), FORK(0, 1),
		WRITE(1, A + P(1), 100, 42), READ(0, A + P(1), 200), WRITE(1, A + P(5), 100, 43),
		READ(0, A + P(5), 200), MADVISE(0, A, P(8), MADV_DONTNEED), READ(0, A, P(6)),
		READ(1, A, P(6)), FORK(1, 2), MUNMAP(1, A + P(2), P(1)), WRITE(2, A + P(2), 100, 44),
		READ(0, A + P(2), P(1)), MADVISE(0, A + P(4), P(4), MADV_DONTFORK), FORK(0, 3),
		READ(3, A, P(4)), WRITE(3, A, P(4), 45), READ(2, A, P(4)),
		MPROTECT(2, A, P(2), PROT_READ), WRITE(0, A, 8, 46), READ(2, A, 16)));
}

/* copy_to_user into COW pages, into a never-touched page, and running into a hole or a
 * read-only page; copy_from_user with a faulting tail. */
static size_t copy_to_user_cow(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(4), RW, PRIV), WRITE(0, A, P(3), 51), FORK(0, 1),
		CTU(1, A + P(1) - 100, 300, 52), CFU(0, A + P(1) - 100, 300),
		CFU(1, A + P(1) - 100, 300), CTU(1, A + P(3) + 10, 100, 53),
		CTU(0, A + P(3) - 10, P(1) + 100, 54), MPROTECT(1, A + P(2), P(1), PROT_READ),
		CTU(1, A + P(1) + 10, P(2), 55), CFU(1, A + P(4) - 8, 64),
		PUTU(1, A + P(1) + 4, 56), GETU(0, A + P(1) + 4), READ(0, A, P(4)), READ(1, A, P(4))));
}

/* The zero page, WIPEONFORK, the heap, and a fork made from a thread. */
static size_t zero_brk_wipe(struct fuzz_op *ops, uint64_t b)
{
	BUILD(L(SPAWN(0), MMAP(0, A, P(4), RW, PRIV), READ(0, A, P(4)), WRITE(0, A + P(1), 10, 61),
		MADVISE(0, A + P(2), P(2), MADV_WIPEONFORK), WRITE(0, A + P(2), P(2), 62),
		BRK(0, b + P(3)), WRITE(0, b + 100, P(2), 63), THREAD(0, 1), FORK(1, 2),
		READ(2, A, P(4)), READ(2, b, P(3)), WRITE(2, b + P(1), 50, 64), EXIT(1),
		BRK(0, b + P(1)), READ(0, b, P(1)), BRK(2, b), WRITE(0, A + P(3), 8, 65),
		READ(0, A, P(4))));
}

/* MAP_POPULATE on private and shared memory, then COW after fork. */
static size_t populate(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(8), RW, PRIV | MAP_POPULATE),
		MMAP(0, A + P(8), P(4), RW, SHRD | MAP_POPULATE), FORK(0, 1),
		WRITE(1, A, P(6), 71), READ(0, A, P(6)), READ(1, A + P(6), P(6))));
}

/* Pins held across fork (the child gets copies of pinned pages), COW after fork, exit with
 * pins held, reads and writes through the pins. */
static size_t pins_across_fork(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(6), RW, PRIV), WRITE(0, A, P(4), 81),
		PIN(0, A, 2, COWVM_FOLL_PIN | COWVM_FOLL_WRITE, 0),
		PIN(0, A + P(2), 1, COWVM_FOLL_PIN | COWVM_FOLL_LONGTERM, 1),
		PIN(0, A + P(3), 2, COWVM_FOLL_GET | COWVM_FOLL_FAST, 2),
		PIN(0, A + P(5), 1, COWVM_FOLL_PIN | COWVM_FOLL_LONGTERM | COWVM_FOLL_FAST, 3),
		FORK(0, 1), WRITE(0, A + 100, P(2), 82), WRITE(1, A + 200, P(3), 83),
		PINREAD(0, 0, P(2)), PINWRITE(0, 50, 300, 84), READ(0, A, P(6)), READ(1, A, P(6)),
		PINREAD(1, 0, P(1)), FORK(1, 2), WRITE(2, A + P(2), 64, 85), EXIT(0),
		PINREAD(0, 0, 64), UNPIN(0), READ(1, A, P(6)), READ(2, A, P(6)), UNPIN(2)));
}

/* ptrace-style forced writes: into a read-only COW page after fork, into PROT_NONE, through
 * a hole; forced reads of PROT_NONE and write-only pages. */
static size_t remote_into_cow(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(4), RW, PRIV), WRITE(0, A, P(4), 91),
		MPROTECT(0, A, P(2), PROT_READ), MPROTECT(0, A + P(2), P(1), PROT_NONE),
		MPROTECT(0, A + P(3), P(1), PROT_WRITE), FORK(0, 1),
		RWRITE(1, A + 10, P(1), 92), RWRITE(0, A + P(2) - 8, 16, 93), RREAD(1, A, P(4)),
		RREAD(0, A + P(2), P(2) + 100), RWRITE(1, A + P(3) + 8, P(1), 94),
		READ(0, A, P(2)), READ(1, A, P(2)), MPROTECT(1, A, P(4), RW), READ(1, A, P(4)),
		MPROTECT(0, A, P(4), RW), READ(0, A, P(4))));
}

/* Determinator's cycle: COPY into a child (a shared middle with head and tail bytes over the
 * child's own pages, and a shared mapping's twin), SNAP, both sides write, MERGE with
 * conflicts, then COPY back at an unaligned delta into the parent's holes, ZERO in the child. */
static size_t dput_cycle(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(8), RW, PRIV), WRITE(0, A, P(8), 101),
		MMAP(0, A + P(8), P(2), RW, SHRD), WRITE(0, A + P(8), 100, 102),
		SPAWN(1), MMAP(1, A, P(4), RW, PRIV), WRITE(1, A + P(1), 200, 103),
		DPUT(0, 1, COWVM_COPY, A + 0x100, A + 0x100, P(6)),
		DPUT(0, 1, COWVM_COPY, A + P(8), A + P(12), P(2)),
		DPUT(0, 1, COWVM_SNAP, 0, 0, 0),
		WRITE(1, A + P(2) + 10, 300, 104), WRITE(1, A + P(5) - 20, 40, 105),
		WRITE(0, A + P(2) + 200, 300, 106), WRITE(1, A + P(12) + 8, 16, 107),
		DGET(0, 1, COWVM_MERGE, A, A, P(8)),
		DGET(0, 1, COWVM_COPY, A + P(16) + 3, A + 5, P(3)),
		DPUT(0, 1, COWVM_ZERO, 0, A + P(1) + 7, P(3)),
		DPUT(0, 1, COWVM_SNAP, 0, 0, 0), WRITE(1, A + 64, 64, 108),
		DGET(0, 1, COWVM_MERGE, A + P(16), A, P(2)),
		READ(0, A, P(8)), READ(1, A, P(8)), READ(0, A + P(16), P(4)), READ(1, A + P(12), P(2))));
}

/* COPY between two threads of one process (a source hole in the shared middle, an unaligned
 * COPY into a hole), ZERO over a read-only shared page (-EACCES) and over private pages, then
 * a fork and a COPY from it over the parent's memory. */
static size_t dput_one_mm(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(6), RW, PRIV), WRITE(0, A, P(6), 111),
		MUNMAP(0, A + P(2), P(1)), THREAD(0, 1),
		DPUT(0, 1, COWVM_COPY, A + 0x80, A + P(8) + 0x80, P(5)),
		DGET(1, 0, COWVM_COPY, A + P(20) + 1, A + 0x10, P(2)),
		MMAP(0, A + P(30), P(2), PROT_READ, SHRD),
		DPUT(0, 1, COWVM_ZERO, 0, A + P(29) + 100, P(2)),
		DPUT(0, 1, COWVM_ZERO, 0, A + P(3) + 5, P(2)),
		FORK(0, 2), WRITE(2, A + P(8), P(2), 112),
		DPUT(2, 0, COWVM_COPY, A + P(8), A + P(8) - 0x40, P(3)),
		READ(0, A, P(16)), READ(2, A + P(8), P(6)), READ(0, A + P(20), P(3))));
}

/* The paths of the bugs the dput operations found: a COPY from an untouched source page in a
 * page table of its own (its fault allocates), a COPY between two views of one shared object,
 * a MERGE into a parent's shared page without a PTE, and a COPY from a process with no
 * mapping. */
static size_t dput_shared(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(3), RW, SHRD), WRITE(0, A, P(3), 121),
		MMAP(0, A + 0x200000, P(2), RW, PRIV), FORK(0, 1), MMAP(1, A + P(4), P(2), RW, PRIV),
		WRITE(1, A + P(4), P(2), 122),
		DPUT(0, 1, COWVM_COPY, A + 0x200000 + 8, A + P(4) + 8, 100),
		DGET(0, 1, COWVM_COPY, A + 0x800, A, 0x1800),
		MADVISE(0, A, P(3), MADV_DONTNEED), SPAWN(2), MMAP(2, A, P(3), RW, PRIV),
		DPUT(0, 2, COWVM_SNAP, 0, 0, 0), WRITE(2, A + 100, P(2), 123),
		DGET(0, 2, COWVM_MERGE, A, A, P(3)), SPAWN(3), DPUT(3, 2, COWVM_COPY, A, A, P(2)),
		READ(0, A, P(3)), READ(1, A, P(6)), READ(2, A, P(3))));
}

static const struct scenario scenarios[] = {
	{ "fork tree of 3 levels with writes", 0, fork_tree },
	{ "COW breaks on both sides", 0, cow_both_sides },
	{ "munmap in the middle of a region", 0, munmap_middle },
	{ "shared mapping across fork", 0, shared_across_fork },
	{ "copy_to_user into COW pages", 0, copy_to_user_cow },
	{ "zero page, brk, WIPEONFORK, fork from a thread", 0, zero_brk_wipe },
	{ "MAP_POPULATE then COW", 1, populate },
	{ "pins across fork and exit", 0, pins_across_fork },
	{ "forced remote writes into COW pages", 0, remote_into_cow },
	{ "dput COPY, SNAP, MERGE with conflicts, ZERO", 0, dput_cycle },
	{ "dput between threads of one process, holes", 0, dput_one_mm },
	{ "dput over shared memory and untouched sources", 0, dput_shared },
};
#define NSCENARIOS ((int)(sizeof(scenarios) / sizeof(scenarios[0])))

int fuzz_sweep_count(void)
{
	return NSCENARIOS;
}

const char *fuzz_sweep_name(int i)
{
	return i >= 0 && i < NSCENARIOS ? scenarios[i].name : "?";
}

static uint64_t pgalloc(cowvm_t *vm)
{
	struct cowvm_vmstat vs;
	cowvm_vmstat(vm, &vs);
	return vs.pgalloc;
}

static void report(const struct scenario *sc, unsigned k, const struct fuzz_run *r,
		   const struct fuzz_op *ops, size_t n)
{
	fprintf(stderr, "sweep: \"%s\" with allocation %u failing: op %zu: [%s] %s\n", sc->name, k,
		r->fail_index, r->fail_class, r->why);
	fprintf(stderr, "sweep: operations (allocation %u fails; COWVM_FAIL_NTH armed before op 0):\n", k);
	fuzz_print_ops(stderr, ops, n);
}

int fuzz_sweep_one(const struct fuzz_config *cfg0, int i, unsigned *runs, int verbose)
{
	const struct scenario *sc = &scenarios[i];
	struct fuzz_config cfg = *cfg0;
	struct fuzz_op ops[MAX_SCENARIO_OPS];
	cfg.check_every = 1;
	cfg.inject_one_in = 0;
	*runs = 0;

	/* start_brk, for the heap scenario */
	struct fuzz_run *probe = fuzz_run_new(&cfg);
	if (!probe)
		return -1;
	cowvm_task_t *t = cowvm_spawn(probe->vm);
	uint64_t start_brk = t ? (uint64_t)cowvm_brk(t, 0) : 0;
	fuzz_run_free(probe);
	size_t n = sc->build(ops, start_brk);

	char cls[32];
	size_t at;
	if (fuzz_replay(&cfg, ops, n, 0, cls, sizeof(cls), &at)) {
		fprintf(stderr, "sweep: \"%s\" fails without any injection (op %zu, %s)\n", sc->name, at, cls);
		fuzz_print_ops(stderr, ops, n);
		return -1;
	}
	for (unsigned k = 1; k < 100000; k++) {
		struct fuzz_run *r = fuzz_run_new(&cfg);
		if (!r)
			return -1;
		uint64_t before = pgalloc(r->vm);
		cowvm_fail_alloc(r->vm, COWVM_FAIL_NTH, k);
		r->sweep_armed = 1;
		for (size_t j = 0; j < n && !r->failed; j++)
			fuzz_exec(r, &ops[j]);
		int hit = 0;
		if (!r->failed) {
			uint64_t made = pgalloc(r->vm) - before;
			if (made >= k) {
				hit = 1;
			} else if (made + 1 == k) {
				cowvm_task_t *p = cowvm_spawn(r->vm);
				hit = p != NULL;
				if (p)
					cowvm_exit(p);
			}
			cowvm_fail_alloc(r->vm, COWVM_FAIL_OFF, 0);
			uint64_t absorbed = r->st.injected;
			r->sweep_armed = 0;
			if (hit && !absorbed && !sc->populate)
				r->failed = 1, r->fail_index = n,
				snprintf(r->fail_class, sizeof(r->fail_class), "silent"),
				snprintf(r->why, sizeof(r->why), "allocation %u failed but every operation "
					 "got the result of a machine with enough memory", k);
			else if (!hit && absorbed)
				r->failed = 1, r->fail_index = n,
				snprintf(r->fail_class, sizeof(r->fail_class), "phantom"),
				snprintf(r->why, sizeof(r->why), "an operation failed as if out of memory "
					 "but no allocation failed");
			if (!r->failed)
				fuzz_finish(r);
		}
		if (r->failed) {
			report(sc, k, r, ops, n);
			fuzz_run_free(r);
			return -1;
		}
		if (verbose && hit && r->st.injected)
			fprintf(stderr, "sweep: \"%s\" k=%u: op %zu (%s) met the failure cleanly\n",
				sc->name, k, r->absorbed_at, fuzz_kind_name(ops[r->absorbed_at].kind));
		else if (verbose)
			fprintf(stderr, "sweep: \"%s\" k=%u: %s\n", sc->name, k,
				hit ? "failure ignored (MAP_POPULATE)" : "completed");
		fuzz_run_free(r);
		*runs = k;
		if (!hit)
			return 0;
	}
	fprintf(stderr, "sweep: \"%s\" still meets the failure after 100000 runs\n", sc->name);
	return -1;
}
