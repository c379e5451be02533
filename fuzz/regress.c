/*
 * regress.c - every divergence or crash the fuzzer found, minimised and named after what
 * broke, with the Linux rule it pins in prose.  Each is an operation list played on a fresh
 * machine against the model (fuzz_replay), so it checks the same things a fuzzing run does:
 * return values, contents, cowvm_check after each step, no frame left after exit.
 *
 * An entry whose bug is still open names its FUZZ_AVOID_* bit (the same bit keeps the random
 * generator from making that input, see FUZZ_KNOWN); it fails until the library is fixed.
 * Once fixed, set its bit to 0 here and take it out of FUZZ_KNOWN.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"
#include "ops.h"

#define MAX_REGRESS_OPS 32
#define ANON_PRIV (MAP_PRIVATE | MAP_ANONYMOUS)

struct regression {
	const char *name;
	const char *rule;
	unsigned known; /* FUZZ_AVOID_* while open */
	size_t (*build)(struct fuzz_op *ops, uint64_t start_brk);
};

/* mmap(0x10000123, 4096) with 0x10000000 free must map at 0x10000000; cowvm gives 0x10001000. */
static size_t unaligned_hint(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, 0x10000123, P(1), PROT_READ, ANON_PRIV)));
}

/* mprotect(addr, 0, bad prot) is 0 and mprotect(addr, -4096, bad prot) -ENOMEM; cowvm -EINVAL. */
static size_t mprotect_order(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MPROTECT(0, 0x10000000, 0, 0x10), MPROTECT(0, 0x10000000, -P(1), 0x10)));
}

/* grow the heap by 5 pages, unmap them, brk(start + 1 page): Linux keeps the break. */
static size_t brk_hole(struct fuzz_op *ops, uint64_t b)
{
	BUILD(L(SPAWN(0), BRK(0, b + P(5)), MUNMAP(0, b, P(5)), BRK(0, b + P(1))));
}

/* 8 pages RW, page 3 EXEC, page 5 NONE, then pages 2..5 RW: 0 and page 5 writable (cowvm:
 * page 3's fixup merges [0, 5) into one VMA, the walk takes that for a hole at page 4, returns
 * -ENOMEM and leaves page 5 PROT_NONE). */
static size_t mprotect_merge(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(8), RW, PRIV), MPROTECT(0, A + P(3), P(1), PROT_EXEC),
		MPROTECT(0, A + P(5), P(1), PROT_NONE), MPROTECT(0, A + P(2), P(4), RW),
		WRITE(0, A + P(5), 16, 1), READ(0, A, P(8))));
}

/* Each mmap has two things wrong; Linux reports the one it checks first. */
static size_t mmap_order(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0),
		/* beyond the top and unaligned: -ENOMEM (range before alignment) */
		MMAP(0, 0x7ffffffff123ull, P(1), PROT_READ, PRIV),
		/* len 0 and no MAP_ANONYMOUS: -EBADF (the fd is looked at first) */
		MMAP(0, 0, 0, PROT_READ, MAP_PRIVATE),
		/* beyond the top and MAP_SHARED_VALIDATE: -ENOMEM (type is checked last) */
		MMAP(0, 0x7fffffffe000ull, P(2), PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | MAP_FIXED),
		/* over a mapping with MAP_FIXED_NOREPLACE and MAP_SHARED_VALIDATE: -EEXIST */
		MMAP(0, A, P(1), PROT_READ, PRIV),
		MMAP(0, A, P(1), PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)));
}

/* A shared page pinned (or referenced with FOLL_GET) outlives its mapping: the checker must
 * count it as held by the pin, not lost. */
static size_t pin_shared(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(2), RW, SHRD), WRITE(0, A, 100, 1),
		PIN(0, A, 1, COWVM_FOLL_PIN | COWVM_FOLL_WRITE, 0), PIN(0, A + P(1), 1, COWVM_FOLL_GET, 1),
		MUNMAP(0, A, P(2)), PINREAD(0, 0, 64), UNPIN(0), UNPIN(1)));
}

/* Two fresh processes; dput COPY of two whole pages at the same address: the parent has no
 * mapping, so the COPY has nothing to share and must return 0 with the child unchanged (cowvm's
 * share_pages copied zero VMA pointers from the parent's VMA array, which was still NULL:
 * memcpy(dst, NULL, 0), undefined behaviour that UBSan reported in share_pages). */
static size_t dput_empty_source(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), SPAWN(1), DPUT(0, 1, COWVM_COPY, A, A, P(2))));
}

/* The parent's MAP_SHARED page holds bytes but no PTE (MADV_DONTNEED keeps shmem contents); the
 * child's private page, imaged untouched (zeros), gets 8 bytes.  MERGE must keep the parent's
 * bytes and report the 8 child bytes as conflicts (-EBADE); cowvm saw "no frame" on both the
 * parent and the image, took the child's whole page (zeros and 8 bytes) and returned 0. */
static size_t merge_shmem_not_present(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(1), RW, SHRD), WRITE(0, A, P(1), 1), MADVISE(0, A, P(1), MADV_DONTNEED),
		SPAWN(1), MMAP(1, A, P(1), RW, PRIV), DPUT(0, 1, COWVM_SNAP, 0, 0, 0), WRITE(1, A + 100, 8, 2),
		DGET(0, 1, COWVM_MERGE, A, A, P(1)), READ(0, A, P(1))));
}

/* Parent and child (a fork) map one MAP_SHARED object at A.  dget COPY of the child's
 * [A, A + 0x1800) to the parent's A + 0x800: the source and destination bytes are the same
 * shmem memory.  The destination must get the source's bytes as they were; cowvm copied from
 * the live memory in ascending chunks, and the second chunk re-read what the first wrote. */
static size_t dput_shmem_overlap(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(3), RW, SHRD), WRITE(0, A, P(3), 5), FORK(0, 1),
		DGET(0, 1, COWVM_COPY, A + 0x800, A, 0x1800), READ(0, A, P(3))));
}

/* The parent's page at A is mapped but never touched (no page table); the child's page holds
 * bytes.  dput COPY of 100 bytes with the next frame allocation failing: the source page
 * cannot be faulted in.  Expected -ENOMEM (or the zeros copied); cowvm took the page for a
 * hole, copied nothing and returned 0. */
static size_t dput_oom_hole(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), SPAWN(1), MMAP(0, A, P(1), RW, PRIV), MMAP(1, A + P(16), P(1), RW, PRIV),
		WRITE(1, A + P(16), 100, 1),
		{ .kind = FOP_DPUT, .task = 0, .slot = 1, .inject = 1, .arg = COWVM_COPY, .addr = A,
		  .seed = A + P(16), .len = 100 },
		READ(1, A + P(16), 100)));
}

/* The same with a page-multiple delta: the source [A + 0x10, A + P(2) + 0x800) has a head page
 * (private), a middle page and a tail page (the shared one at A + P(2)); the child's
 * destination [A + P(2) + 0x10, ...) starts in its view of that shared page.  The child's tail
 * page (A + P(4)) must get the shared page's bytes 0..0x800 as they were; cowvm writes the
 * head (zeros from the private page, into the shared page at +0x10..) before it reads the
 * tail, so the tail gets zeros from +0x10 on. */
static size_t dput_shmem_overlap_cow(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), MMAP(0, A, P(2), RW, PRIV), MMAP(0, A + P(2), P(1), RW, SHRD),
		WRITE(0, A + P(2), P(1), 7), FORK(0, 1),
		DPUT(0, 1, COWVM_COPY, A + 0x10, A + P(2) + 0x10, P(2) + 0x7f0), READ(1, A + P(4), 0x800)));
}

/* A populated shared mapping, a snapshot of its process, then its mapping replaced (here by
 * a dget COPY over it from a process with no mappings, which leaves holes).  The snapshot's
 * record still holds the object, and the object its page: the checker took the page for lost
 * because it looked for shmem objects through VMAs only. */
#define SNAPSHOT(t, s) { .kind = FOP_SNAPSHOT, .task = (t), .slot = (s) }
#define RESTORE(t, s) { .kind = FOP_RESTORE, .task = (t), .slot = (s) }
static size_t snapshot_shmem_record(struct fuzz_op *ops, uint64_t b)
{
	(void)b;
	BUILD(L(SPAWN(0), SPAWN(1), MMAP(1, A, P(1), PROT_READ, SHRD | MAP_POPULATE), SNAPSHOT(1, 0),
		DGET(1, 0, COWVM_COPY, A - 0x123, 0x7ffff7ff8000 - 0x123, P(4)), RESTORE(1, 0), READ(1, A, 16)));
}

static const struct regression regressions[] = {
	{ "mmap rounds an unaligned hint down", "do_mmap: round_hint_to_min() masks the hint "
	  "with PAGE_MASK before get_unmapped_area tries it", 0, unaligned_hint },
	{ "mprotect checks len before prot", "do_mprotect_pkey: len 0 returns 0 and a wrapping end "
	  "-ENOMEM before arch_validate_prot", 0, mprotect_order },
	{ "brk does not shrink over a hole", "brk: a shrink with no VMA in [newbrk, oldbrk) leaves "
	  "the break where it was (\"mapping intersects with an existing non-brk vma\")",
	  0, brk_hole },
	{ "mprotect covers VMAs it merged on the way", "mprotect walks on from the end of the VMA it "
	  "just fixed up (vma_iter_end), so a merge with the next VMA is not a hole",
	  0, mprotect_merge },
	{ "mmap reports errors in Linux's order", "EBADF (fd) before EINVAL (len 0); ENOMEM (range) "
	  "before EINVAL (alignment); EEXIST and ENOMEM before EINVAL (MAP_TYPE)",
	  0, mmap_order },
	{ "a pinned shmem page outliving its mapping is not lost", "DESIGN.md: every frame is in "
	  "exactly one state, pinned-but-unmapped among them; the pin's references account for it",
	  0, pin_shared },
	{ "dput COPY from a process without mappings", "include/cowvm.h: holes stay holes - a COPY "
	  "whose source is all hole leaves holes, returns 0, and (C11 7.24.1p2) passes no null "
	  "pointer to memcpy, even for zero bytes", 0, dput_empty_source },
	{ "MERGE reads a parent's shared page by its bytes", "include/cowvm.h: MERGE merges bytes; a "
	  "MAP_SHARED page without a PTE still holds its shmem contents (MADV_DONTNEED, or a fork, "
	  "leaves the PTE empty), so it is not the image's zeros", 0, merge_shmem_not_present },
	{ "COPY between views of one shared object", "include/cowvm.h: COPY copies the source range "
	  "(its bytes as the call found them); the overlap rule names one mm, but two processes "
	  "mapping one MAP_SHARED object overlap in memory too", 0, dput_shmem_overlap },
	{ "COPY's head and tail between views of one shared object", "include/cowvm.h: COPY copies "
	  "the source range; with a page-multiple delta the head is written before the tail is read, "
	  "and both may be one shared page", 0, dput_shmem_overlap_cow },
	{ "COPY out of memory is -ENOMEM, not a hole", "include/cowvm.h: holes are unmapped source "
	  "pages; running out of frames returns -ENOMEM", 0, dput_oom_hole },
	{ "a snapshot's shared record keeps its object's pages", "mm/snapshot.c: a shared mapping is "
	  "saved as a record holding its object, so the object's cache pages live on after the "
	  "mapping is gone, until restore maps them again or the snapshot is freed", 0,
	  snapshot_shmem_record },
};
#define NREGRESS ((int)(sizeof(regressions) / sizeof(regressions[0])))

int fuzz_regress_count(void)
{
	return NREGRESS;
}

const char *fuzz_regress_name(int i)
{
	return i >= 0 && i < NREGRESS ? regressions[i].name : "?";
}

unsigned fuzz_regress_known(int i)
{
	return i >= 0 && i < NREGRESS ? regressions[i].known : 0;
}

int fuzz_regress_one(int i, int quiet, char *why, size_t whylen)
{
	const struct regression *rg = &regressions[i];
	struct fuzz_config cfg;
	fuzz_config_default(&cfg);
	cfg.phys_bytes = 4ull << 20;
	cfg.avoid = 0; /* strict: no tolerance of known bugs */
	struct fuzz_op ops[MAX_REGRESS_OPS];

	struct fuzz_run *probe = fuzz_run_new(&cfg); /* start_brk, for the heap cases */
	if (!probe)
		return -1;
	cowvm_task_t *t = cowvm_spawn(probe->vm);
	uint64_t start_brk = t ? (uint64_t)cowvm_brk(t, 0) : 0;
	fuzz_run_free(probe);
	size_t n = rg->build(ops, start_brk);

	struct fuzz_run *r = fuzz_run_new(&cfg);
	if (!r)
		return -1;
	for (size_t j = 0; j < n && !r->failed; j++)
		fuzz_exec(r, &ops[j]);
	if (!r->failed)
		fuzz_finish(r);
	int ret = r->failed ? -1 : 0;
	if (ret) {
		snprintf(why, whylen, "op %zu: [%s] %s", r->fail_index, r->fail_class, r->why);
		if (!quiet) {
			fprintf(stderr, "regress: \"%s\" (%s)\n  %s\n  operations:\n", rg->name, rg->rule, why);
			fuzz_print_ops(stderr, ops, n);
		}
	}
	fuzz_run_free(r);
	return ret;
}
