/*
 * test_xv6_cowtest.c - xv6's user/cowtest.c (the copy-on-write lab's test) re-expressed on
 * cowvm: simple, three, file and forkfork.
 *
 *   xv6                                      cowvm
 *   ---------------------------------------  -------------------------------------------------
 *   sbrk(n), eagerly backed by pages         brk, then one store per page (cowvm's brk is
 *                                              lazy; the stores make the pages exist, as xv6's
 *                                              sbrk does)
 *   PHYSTOP - KERNBASE (all of memory)       a 4 MiB machine: nr_total_pages frames
 *   *(int*)q = getpid()                      cowvm_store64 of the process's pid at each page
 *   read(fd, buf) into a COW page            cowvm_copy_to_user (copyout must take the COW
 *                                              fault as a user write would)
 *   concurrent processes, wait()             host threads driving tasks; the test joins them
 *
 * xv6's point is that without COW these tests cannot run at all (fork of more than half of
 * memory fails) and that a COW with wrong reference counts leaks or corrupts pages.  Here that
 * becomes: the forks succeed on a machine too small for eager copies, every process reads
 * exactly what it wrote, and after each round every frame is free again.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define SMALL_MACHINE (4ull << 20) /* 1024 frames */

static void small_machine(void)
{
	tu_setup_phys(SMALL_MACHINE);
}

TestSuite(xv6_cowtest, .init = small_machine, .fini = tu_teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t total_frames(void)
{
	return vmstat().nr_total_pages;
}

/* sbrk(n): grow the heap by n pages and store into each, as xv6's eager sbrk backs them. */
static uint64_t sbrk_touch(cowvm_task_t *t, uint64_t npages, uint64_t value)
{
	uint64_t old = (uint64_t)cowvm_brk(t, 0);
	EQ(cowvm_brk(t, old + npages * PG), (int64_t)(old + npages * PG));
	for (uint64_t i = 0; i < npages; i++)
		EQ(cowvm_store64(t, old + i * PG, value), 0);
	return old;
}

/* sbrk(-n) */
static void sbrk_shrink(cowvm_task_t *t, uint64_t npages)
{
	uint64_t now = (uint64_t)cowvm_brk(t, 0);
	EQ(cowvm_brk(t, now - npages * PG), (int64_t)(now - npages * PG));
}

/* Store v at the start of each page of [p, p + npages); stop at the first failure. */
static int store_pages(cowvm_task_t *t, uint64_t p, uint64_t npages, uint64_t v)
{
	for (uint64_t i = 0; i < npages; i++) {
		int rc = cowvm_store64(t, p + i * PG, v);
		if (rc)
			return rc;
	}
	return 0;
}

/* How many pages of [p, p + npages) do not start with v (-1 if a load failed). */
static long pages_not_holding(cowvm_task_t *t, uint64_t p, uint64_t npages, uint64_t v)
{
	long wrong = 0;
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t got = 0;
		if (cowvm_load64(t, p + i * PG, &got))
			return -1;
		wrong += got != v;
	}
	return wrong;
}

/* ---- simple ------------------------------------------------------------------------------- */

/*
 * simpletest: allocate two thirds of physical memory, store in every page, fork; the child
 * exits, the parent shrinks its heap.  Without COW the fork would need another two thirds.
 * xv6 runs it twice, to check that the first run freed its memory.
 *
 *   heap:  [ sz = 2/3 of all frames, every page stored to ]
 *   fork:  child maps the same frames read-only (no frame allocated but page tables)
 */
static void simpletest(void)
{
	uint64_t sz = total_frames() / 3 * 2;
	struct cowvm_vmstat v0 = vmstat();
	TU_ASSERT(sz > v0.nr_free_pages / 2, "the heap (%" PRIu64 " pages) must be more than half of "
		  "free memory (%" PRIu64 " pages), or the test proves nothing", sz, v0.nr_free_pages);
	cowvm_task_t *p = tu_spawn();
	uint64_t heap = sbrk_touch(p, sz, (uint64_t)cowvm_task_pid(p));
	CHECK();
	EQ(stats(p).rss_anon, sz);

	struct cowvm_vmstat v1 = vmstat();
	cowvm_task_t *c = tu_fork(p);
	CHECK();
	struct cowvm_vmstat v2 = vmstat();
	/* fork took page tables only, never a data page */
	EQ(v2.nr_anon_pages, v1.nr_anon_pages);
	EQ(v1.nr_free_pages - v2.nr_free_pages, v2.nr_page_table_pages - v1.nr_page_table_pages);
	EQ(stats(c).rss_anon, sz);
	EQ(pfn_of(c, heap), pfn_of(p, heap));
	TU_ASSERT(v2.nr_free_pages < sz, "free memory (%" PRIu64 " pages) would not hold a copy",
		  v2.nr_free_pages);

	tu_exit(c); /* the child exits at once */
	CHECK();
	sbrk_shrink(p, sz);
	CHECK();
	EQ(stats(p).rss_anon, 0);
	tu_exit(p);
	CHECK();
	EQ(vmstat().nr_free_pages, v0.nr_free_pages);
}

Test(xv6_cowtest, simple, .description = "simple: fork with two thirds of memory touched, twice")
{
	simpletest();
	/* check that the first simpletest() freed the physical memory */
	simpletest();
}

/* ---- three -------------------------------------------------------------------------------- */

/*
 * threetest: three processes all write COW memory; together they need more than half of
 * memory, so copied pages must be freed for the next run.
 *
 *   P's heap: [ sz = 1/4 of memory, stored to ]
 *   C2 (P's grandchild) stores its pid in the first 4/5 and checks them
 *   C1 (P's child)      stores 9999 in the first half
 *   P                   stores its pid everywhere, then checks after both exited
 *
 *   page range        [0, sz/2)          [sz/2, 4sz/5)       [4sz/5, sz)
 *   C2 writes         copy (of 3)        copy (of 3)         -
 *   C1 writes         copy (of 2)        -                   -
 *   P writes          reuse (alone)      copy (C1 shares)    copy (C1, C2 share)
 *
 * Here the processes take turns in that order, so every copy and reuse is known exactly;
 * three_concurrent below runs them on host threads at once, as xv6 does.
 */
static void threetest(void)
{
	uint64_t sz = total_frames() / 4, half = sz / 2, four_fifths = sz / 5 * 4;
	struct cowvm_vmstat v0 = vmstat();
	cowvm_task_t *p = tu_spawn();
	uint64_t pid = (uint64_t)cowvm_task_pid(p);
	uint64_t heap = sbrk_touch(p, sz, 0);
	cowvm_task_t *c1 = tu_fork(p);
	cowvm_task_t *c2 = tu_fork(c1);
	uint64_t pid2 = (uint64_t)cowvm_task_pid(c2);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();

	EQ(store_pages(c2, heap, four_fifths, pid2), 0);
	EQ(pages_not_holding(c2, heap, four_fifths, pid2), 0);
	CHECK();
	EQ(store_pages(c1, heap, half, 9999), 0);
	CHECK();
	EQ(store_pages(p, heap, sz, pid), 0);
	CHECK();

	struct cowvm_vmstat v2 = vmstat();
	EQ(v2.cow_copies - v1.cow_copies, four_fifths + half + (sz - half));
	EQ(v2.pgreuse - v1.pgreuse, half);
	/* the originals (still C1's or C2's where P copied) and every copy */
	EQ(v2.nr_anon_pages - v0.nr_anon_pages, sz + four_fifths + half + (sz - half));
	TU_ASSERT((v2.nr_anon_pages - v0.nr_anon_pages) * 2 > total_frames(),
		  "the three processes hold %" PRIu64 " of %" PRIu64 " frames: not more than half",
		  v2.nr_anon_pages - v0.nr_anon_pages, total_frames());
	EQ(pages_not_holding(c1, heap, half, 9999), 0);
	EQ(pages_not_holding(c1, heap + half * PG, sz - half, 0), 0);

	tu_exit(c2);
	tu_exit(c1);
	CHECK();
	EQ(pages_not_holding(p, heap, sz, pid), 0);
	sbrk_shrink(p, sz);
	tu_exit(p);
	CHECK();
	EQ(vmstat().nr_free_pages, v0.nr_free_pages);
}

Test(xv6_cowtest, three, .description = "three: a three-process chain writes and checks, three times")
{
	threetest();
	threetest();
	threetest();
}

/* ---- host threads for the concurrent tests ------------------------------------------------- */

/* Workers never assert (Criterion's asserts end the test from its own thread): they count
 * errors and keep the first message; the test asserts after joining them. */
struct outcome {
	int errors;
	char first[200];
};

static void failed_at(struct outcome *o, const char *fmt, long long a, long long b)
{
	if (o->errors++ == 0)
		snprintf(o->first, sizeof o->first, fmt, a, b);
}

/* Starts n threads and joins every one that started; returns pthread_create's first error. */
static int run_threads(void *(*fn)(void *), void **args, int n)
{
	pthread_t th[4];
	int started, err = 0;
	for (started = 0; started < n && started < 4; started++)
		if ((err = pthread_create(&th[started], NULL, fn, args[started])) != 0)
			break;
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return err;
}

/* ---- three, concurrently -------------------------------------------------------------------- */

/*
 * The same three processes as threetest, each on its own host thread, as xv6 runs them: C1
 * forks C2 while P is storing into the pages they share, then C1 and C2 store while P does.
 * Whatever the interleaving, each process must read back exactly its own stores, each store to
 * a page must take exactly one COW fault that copies or reuses, and every frame must come back.
 */
struct three_proc {
	cowvm_task_t *t;
	uint64_t heap, npages, value;
	cowvm_task_t *forked;      /* C1 forks C2 first and leaves it here */
	atomic_int *c2_made;       /* then says so: 1, or -1 if the fork failed */
	struct outcome out;
};

static void *three_worker(void *arg)
{
	struct three_proc *w = arg;
	if (w->c2_made) {
		/* The fixture's registry is safe to touch here: the main thread only waits on
		 * c2_made until this store, which orders the two. */
		w->forked = tu_try_fork(w->t);
		if (!w->forked)
			failed_at(&w->out, "fork of C2 failed (errno %lld)%lld", errno, 0);
		atomic_store(w->c2_made, w->forked ? 1 : -1);
	}
	int rc = store_pages(w->t, w->heap, w->npages, w->value);
	if (rc)
		failed_at(&w->out, "store returned %lld%lld", rc, 0);
	long wrong = pages_not_holding(w->t, w->heap, w->npages, w->value);
	if (wrong)
		failed_at(&w->out, "%lld pages do not hold %lld", wrong, (long long)w->value);
	return NULL;
}

Test(xv6_cowtest, three_concurrent,
     .description = "three: the three processes write at once on host threads, three times")
{
	uint64_t sz = total_frames() / 4, half = sz / 2, four_fifths = sz / 5 * 4;
	struct cowvm_vmstat v0 = vmstat();
	for (uint64_t round = 0; round < 3; round++) {
		cowvm_task_t *p = tu_spawn();
		uint64_t heap = sbrk_touch(p, sz, 0);
		cowvm_task_t *c1 = tu_fork(p);
		CHECK();
		struct cowvm_vmstat v1 = vmstat();
		atomic_int c2_made = 0;
		struct three_proc wp = { .t = p, .heap = heap, .npages = sz, .value = 1000 + round };
		struct three_proc w1 = { .t = c1, .heap = heap, .npages = half, .value = 9999,
					 .c2_made = &c2_made };
		struct three_proc w2 = { .heap = heap, .npages = four_fifths, .value = 2000 + round };

		/* P and C1 start together; C2's thread starts as soon as C1 has made C2 */
		pthread_t th[3];
		int started = 0, err = pthread_create(&th[started], NULL, three_worker, &wp);
		if (!err) {
			started++;
			err = pthread_create(&th[started], NULL, three_worker, &w1);
		}
		if (!err) {
			started++;
			while (atomic_load(&c2_made) == 0)
				sched_yield();
			w2.t = w1.forked;
			if (w2.t && !(err = pthread_create(&th[started], NULL, three_worker, &w2)))
				started++;
		}
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		TU_ASSERT(err == 0, "pthread_create: %s", strerror(err));
		TU_ASSERT(w1.forked != NULL, "C1: %s", w1.out.first);
		TU_ASSERT(wp.out.errors == 0, "P: %d errors, first: %s", wp.out.errors, wp.out.first);
		TU_ASSERT(w1.out.errors == 0, "C1: %d errors, first: %s", w1.out.errors, w1.out.first);
		TU_ASSERT(w2.out.errors == 0, "C2: %d errors, first: %s", w2.out.errors, w2.out.first);
		CHECK();
		cowvm_task_t *c2 = w1.forked;

		/* one COW fault, copy or reuse, per page each process stored to */
		struct cowvm_vmstat v2 = vmstat();
		EQ(v2.cow_copies + v2.pgreuse - v1.cow_copies - v1.pgreuse, sz + half + four_fifths);
		EQ(pages_not_holding(p, heap, sz, 1000 + round), 0);
		EQ(pages_not_holding(c1, heap, half, 9999), 0);
		EQ(pages_not_holding(c2, heap, four_fifths, 2000 + round), 0);
		tu_exit(c1);
		CHECK();
		tu_exit(p);
		CHECK();
		/* C2 outlives both: its pages are its own now */
		EQ(pages_not_holding(c2, heap, four_fifths, 2000 + round), 0);
		tu_exit(c2);
		CHECK();
		EQ(vmstat().nr_free_pages, v0.nr_free_pages);
	}
}

/* ---- file ------------------------------------------------------------------------------------ */

/*
 * filetest: does copyout simulate COW faults?  The parent puts 99 in buf; four children each
 * read(2) an int from a pipe into buf: a kernel copy into a COW-shared page, which must break
 * COW for that child only.
 *
 *   buf:   [ 1 page ] P wrote 99
 *   fork x4: P, C0..C3 all map frame X read-only
 *   Ci: copy_to_user(buf, i) -> kernel-write fault -> Ci gets its own copy holding i
 *   P:  still reads 99 from X
 */
Test(xv6_cowtest, file, .description = "file: a kernel copy into a COW-shared buffer breaks COW for the writer only")
{
	cowvm_task_t *p = tu_spawn();
	uint64_t buf = map_anon(p, 1, PROT_RW);
	write_byte(p, buf, 99);
	uint64_t x = pfn_of(p, buf);
	cowvm_task_t *child[4];
	for (int i = 0; i < 4; i++)
		child[i] = tu_fork(p);
	CHECK();
	EQ(frame(x).mapcount, 5);

	struct cowvm_vmstat v0 = vmstat();
	for (int i = 0; i < 4; i++) {
		struct cowvm_task_stats s0 = stats(child[i]);
		uint32_t value = (uint32_t)i;
		EQ(cowvm_copy_to_user(child[i], buf, &value, sizeof value), 0);
		CHECK();
		EQ(stats(child[i]).min_flt - s0.min_flt, 1); /* the kernel's fault is the child's */
		NE(pfn_of(child[i], buf), x);
		EQ(pte_writable(child[i], buf), 1);
		EQ(frame(x).mapcount, 5 - (i + 1));
	}
	/* each child's copy: a COW copy, X stays with the parent */
	EQ(vmstat().cow_copies - v0.cow_copies, 4);
	for (int i = 0; i < 4; i++) {
		uint32_t j = 0xEEEEEEEE;
		EQ(cowvm_read(child[i], buf, &j, sizeof j), 0);
		EQ(j, i);
		tu_exit(child[i]);
		CHECK();
	}
	/* "error: child overwrote parent" */
	EQ(read_byte(p, buf), 99);
	EQ(pfn_of(p, buf), x);
	EQ(frame(x).refcount, 1);
	/* and the parent's own kernel copy then reuses X, the only user left */
	uint32_t mine = 0x5151;
	EQ(cowvm_copy_to_user(p, buf + 4, &mine, sizeof mine), 0);
	EQ(vmstat().pgreuse - v0.pgreuse, 1);
	EQ(pfn_of(p, buf), x);
	EQ(read_byte(p, buf), 99);
	CHECK();
}

/* ---- forkfork ---------------------------------------------------------------------------------- */

/*
 * forkforktest: try to expose races in page reference counting.  xv6's parent fills 256 pages
 * with 27 and forks 100 children at once; each child forks 3 grandchildren that exit at once,
 * then checks its data.
 *
 * Here two host threads each drive a fork tree for 500 rounds (xv6: 100 children), at once:
 *
 *   host thread k:  child = fork(root k)
 *                   3 x grandchild = fork(child); grandchild stores to one page, checks, exits
 *                   child checks the 27s, stores to its own page, checks, exits
 *
 * Every store to a shared page is a COW copy; every exit drops references.  No process may
 * ever read anything but its own data or the 27s, and when both trees are done every frame
 * but the roots' must be free again.
 *
 *   forkfork:           each tree has its own root process with its own 256 pages: the trees
 *                       meet only in the machine (allocator, per-CPU lists, pids, anon_vmas)
 *   forkfork_one_root:  both trees fork from two threads of one root, so their processes share
 *                       the same 256 frames and take and drop references to them at once, as
 *                       xv6's children do
 */
#define FORKFORK_PAGES 256
#define FORKFORK_ROUNDS 500

struct tree_driver {
	cowvm_task_t *t;   /* the root task (or root thread) this host thread forks from */
	uint64_t p;        /* the root's 256 pages */
	int k;
	struct outcome out;
};

/* A process checks: page i starts with v_i and the 27s are intact at bytes 8..17 (xv6 checks
 * p[0..9]; bytes 0..7 hold the stores here). */
static int check_tree_page(cowvm_task_t *t, uint64_t page, uint64_t want)
{
	uint8_t b[18];
	uint64_t got;
	if (cowvm_read(t, page, b, sizeof b))
		return -1;
	memcpy(&got, b, 8);
	if (got != want)
		return 1;
	for (int j = 8; j < 18; j++)
		if (b[j] != 27)
			return 2;
	return 0;
}

/* Tasks made here are not registered with the fixture (its registry is the main thread's):
 * each one exits before the round ends. */
static void *forkfork_driver(void *arg)
{
	struct tree_driver *d = arg;
	const uint64_t filled = 0x1b1b1b1b1b1b1b1bull;
	for (int round = 0; round < FORKFORK_ROUNDS; round++) {
		cowvm_task_t *child = cowvm_fork(d->t);
		if (!child) {
			failed_at(&d->out, "round %lld: fork failed (errno %lld)", round, errno);
			return NULL;
		}
		for (int j = 0; j < 3; j++) {
			cowvm_task_t *g = cowvm_fork(child);
			if (!g) {
				failed_at(&d->out, "round %lld: fork of a grandchild failed (errno %lld)",
					  round, errno);
				break;
			}
			uint64_t page = d->p + (uint64_t)((round * 7 + j * 31 + d->k * 101) % FORKFORK_PAGES) * PG;
			uint64_t mark = ((uint64_t)d->k << 32) | ((uint64_t)round << 8) | (uint64_t)j;
			if (cowvm_store64(g, page, mark) || check_tree_page(g, page, mark))
				failed_at(&d->out, "round %lld: grandchild %lld lost its store", round, j);
			if (cowvm_exit(g))
				failed_at(&d->out, "round %lld: exit of grandchild %lld failed", round, j);
		}
		for (int i = 0; i < FORKFORK_PAGES; i += 17)
			if (check_tree_page(child, d->p + (uint64_t)i * PG, filled))
				failed_at(&d->out, "round %lld: the child's page %lld is not all 27s", round, i);
		uint64_t mine = d->p + (uint64_t)((round + d->k * 128) % FORKFORK_PAGES) * PG;
		if (cowvm_store64(child, mine, (uint64_t)round) || check_tree_page(child, mine, (uint64_t)round))
			failed_at(&d->out, "round %lld: the child lost its store (page %lld)", round,
				  (long long)((mine - d->p) / PG));
		if (cowvm_exit(child))
			failed_at(&d->out, "round %lld: exit of the child failed%lld", round, 0);
	}
	return NULL;
}

/* root: the 256 pages of 27s (mapped at p in root's process). */
static uint64_t fill_27s(cowvm_task_t *root)
{
	uint64_t p = map_anon(root, FORKFORK_PAGES, PROT_RW);
	uint8_t page[COWVM_PAGE_SIZE];
	memset(page, 27, sizeof page);
	for (int i = 0; i < FORKFORK_PAGES; i++)
		EQ(cowvm_write(root, p + (uint64_t)i * PG, page, PG), 0);
	return p;
}

/* Run the two drivers, then check that the roots' pages are theirs alone again, all 27s. */
static void run_fork_trees(struct tree_driver d[2])
{
	CHECK();
	struct cowvm_vmstat v0 = vmstat();
	void *args[2] = { &d[0], &d[1] };
	int err = run_threads(forkfork_driver, args, 2);
	TU_ASSERT(err == 0, "pthread_create: %s", strerror(err));
	TU_ASSERT(d[0].out.errors == 0, "tree 1: %d errors, first: %s", d[0].out.errors, d[0].out.first);
	TU_ASSERT(d[1].out.errors == 0, "tree 2: %d errors, first: %s", d[1].out.errors, d[1].out.first);
	CHECK();

	struct cowvm_vmstat v1 = vmstat();
	EQ(v1.nr_free_pages, v0.nr_free_pages);
	EQ(v1.nr_anon_pages, v0.nr_anon_pages);
	EQ(v1.nr_page_table_pages, v0.nr_page_table_pages);
	TU_ASSERT(v1.cow_copies - v0.cow_copies >= 2 * FORKFORK_ROUNDS * 4,
		  "%" PRIu64 " COW copies for %d stores to shared pages",
		  v1.cow_copies - v0.cow_copies, 2 * FORKFORK_ROUNDS * 4);
	uint8_t want[COWVM_PAGE_SIZE], got[COWVM_PAGE_SIZE];
	memset(want, 27, sizeof want);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < FORKFORK_PAGES; i++) {
			uint64_t a = d[k].p + (uint64_t)i * PG;
			EQ(frame(pfn_of(d[k].t, a)).mapcount, 1);
			EQ(frame(pfn_of(d[k].t, a)).refcount, 1);
			EQ(cowvm_read(d[k].t, a, got, PG), 0);
			EQ(memcmp(got, want, PG), 0);
		}
	}
	CHECK();
}

Test(xv6_cowtest, forkfork, .description = "forkfork: two fork trees at once, 500 rounds each; no corruption, no leak")
{
	cowvm_task_t *r1 = tu_spawn(), *r2 = tu_spawn();
	struct tree_driver d[2] = { { .t = r1, .p = fill_27s(r1), .k = 0 },
				    { .t = r2, .p = fill_27s(r2), .k = 1 } };
	run_fork_trees(d);
}

/* (This one found a racy check in the library: page_mapcount_inc compared the old mapcount
 * with a refcount read after other processes' unmaps had dropped it; fixed in 7cbf5ff.) */
Test(xv6_cowtest, forkfork_one_root,
     .description = "forkfork: two fork trees from two threads of one root share its pages")
{
	cowvm_task_t *r = tu_spawn();
	cowvm_task_t *t2 = tu_clone_thread(r);
	uint64_t p = fill_27s(r);
	struct tree_driver d[2] = { { .t = r, .p = p, .k = 0 }, { .t = t2, .p = p, .k = 1 } };
	run_fork_trees(d);
}
