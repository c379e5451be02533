/*
 * test_cow_selftests.c - the kernel's own COW tests (Linux tools/testing/selftests/mm/cow.c),
 * base-page anonymous cases and the zero-page cases, re-expressed on cowvm.
 *
 * Each test is named after the kernel's function and carries the kernel's description; each
 * asserts the kernel's pass condition (marked "pass condition" below), then what cowvm lets us
 * see that the kernel's test cannot: which frame each side maps, refcounts, exclusivity, the
 * faults taken, copies and reuses.  The checker runs after every step; the fixture checks for
 * leaked frames after each test.
 *
 * How the kernel's tools map onto cowvm:
 *
 *   kernel                                   cowvm
 *   ---------------------------------------  -------------------------------------------------
 *   mmap + memset(mem, 0, pagesize)          map_anon + fill_page (a pattern, so that "old"
 *     (run_with_base_page populates)           and "new" differ at every byte)
 *   fork(), the child waiting on a pipe      tu_fork; the test plays both sides in order
 *   memset(mem, 0xff, size)                  fill_page(.., SEED_NEW)
 *   vmsplice(pipe) = R/O GUP, FOLL_GET       cowvm_pin_user_pages(.., COWVM_FOLL_GET)
 *   read(pipe)                               cowvm_pin_read
 *   io_uring fixed buffer (R/W long-term     cowvm_pin_user_pages(.., WRITE | LONGTERM)
 *     pin), IORING_OP_WRITE_FIXED              and cowvm_pin_read
 *   gup_test PIN_LONGTERM_TEST_START         cowvm_pin_user_pages(.., LONGTERM [| FAST])
 *     (R/O long-term pin, GUP or GUP-fast)
 *   clear_softdirty()                        cowvm_clear_refs(t, 4)
 *
 * The page for every anon case:
 *
 *   mem: [ 1 page, RW, private, anonymous ]   filled with SEED_OLD before the case starts
 *
 * Not here:
 *  - (The kernel runs every anon case a second time with the page swapped out first,
 *    run_with_swap: those are the cow_anon_swapped twins at the end of this file.)
 *  - THP, PTE-mapped THP and hugetlb variants: cowvm has base pages only.
 *  - test_iouring_* need io_uring in the kernel; here the R/W long-term pin is taken directly.
 */
#include "testutil.h"

#define SEED_OLD 0x11
#define SEED_NEW 0x77

TestSuite(cow_anon, .init = tu_setup, .fini = tu_teardown, .timeout = 30);
TestSuite(cow_zeropage, .init = tu_setup, .fini = tu_teardown, .timeout = 30);

/* ---- helpers ------------------------------------------------------------------------------ */

/* run_with_base_page: one private anonymous page, populated by a write. */
static uint64_t base_page(cowvm_task_t *t)
{
	uint64_t mem = map_anon(t, 1, PROT_RW);
	fill_page(t, mem, SEED_OLD);
	EQ(pm_exclusive(t, mem), 1);
	EQ(frame(pfn_of(t, mem)).anon_exclusive, 1);
	CHECK();
	return mem;
}

#define read_page(t, addr, buf) EQ(cowvm_read((t), (addr), (buf), PG), 0)
#define pin_page_contents(pin, buf) EQ(cowvm_pin_read((pin), 0, (buf), PG), 0)

static cowvm_pin_t *pin_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, unsigned flags)
{
	cowvm_pin_t *p = cowvm_pin_user_pages(t, addr, 1, flags);
	TU_ASSERT(p != NULL, "%s:%d: cowvm_pin_user_pages(%#" PRIx64 ", flags %#x) failed: %s", file,
		  line, addr, flags, strerror(errno));
	return p;
}
#define pin(t, addr, flags) pin_at(__FILE__, __LINE__, (t), (addr), (flags))

/* The pass condition of the tests that read back through a pin: !memcmp(mem, tmp, size). */
#define EXPECT_PIN_SEES_MEM(p, t, mem)                                                         \
	do {                                                                                   \
		uint8_t via_pin_[COWVM_PAGE_SIZE], via_mem_[COWVM_PAGE_SIZE];                  \
		pin_page_contents((p), via_pin_);                                              \
		read_page((t), (mem), via_mem_);                                               \
		TU_ASSERT(memcmp(via_mem_, via_pin_, PG) == 0,                                 \
			  "the pin does not see the page as the process does (first bytes "    \
			  "%#x %#x vs %#x %#x)", via_pin_[0], via_pin_[1], via_mem_[0],        \
			  via_mem_[1]);                                                        \
	} while (0)

/* ---- Basic COW after fork() -------------------------------------------------------------- */

/*
 * do_test_cow_in_parent: the child snapshots the page, the parent writes it; the child must
 * still read its snapshot.
 *
 *   after fork:     P mem --ro--> X (refcount 2, mapcount 2, not exclusive) <--ro-- C mem
 *   P writes:       P mem --rw--> Y (copy)          X <--ro-- C mem
 */
static void do_test_cow_in_parent(bool do_mprotect)
{
	cowvm_task_t *parent = tu_spawn();
	uint64_t mem = base_page(parent);
	uint64_t x = pfn_of(parent, mem);

	cowvm_task_t *child = tu_fork(parent);
	CHECK();
	EQ(pfn_of(child, mem), x);
	EQ(frame(x).refcount, 2);
	EQ(frame(x).mapcount, 2);
	EQ(frame(x).anon_exclusive, 0);
	EQ(pte_writable(parent, mem), 0);
	EQ(pte_writable(child, mem), 0);

	/* child_memcmp_fn: back up the content */
	uint8_t old[COWVM_PAGE_SIZE], now[COWVM_PAGE_SIZE];
	read_page(child, mem, old);

	if (do_mprotect) {
		/* mprotect() optimizations might try avoiding write faults by mapping pages writable */
		EQ(cowvm_mprotect(parent, mem, PG, PROT_READ), 0);
		CHECK();
		EQ(cowvm_mprotect(parent, mem, PG, PROT_RW), 0);
		CHECK();
		EQ(pte_writable(parent, mem), 0); /* a shared page is never mapped writable */
	}

	struct cowvm_vmstat v0 = vmstat();
	struct cowvm_task_stats p0 = stats(parent);
	fill_page(parent, mem, SEED_NEW);
	CHECK();

	/* pass condition: the child's memcmp(old, mem) == 0 */
	read_page(child, mem, now);
	EQ(memcmp(old, now, PG), 0);

	/* the parent copied; the child keeps the original */
	EQ(stats(parent).min_flt - p0.min_flt, 1);
	EQ(vmstat().cow_copies - v0.cow_copies, 1);
	EQ(pfn_of(child, mem), x);
	NE(pfn_of(parent, mem), x);
	EQ(frame(x).refcount, 1);
	EQ(frame(x).mapcount, 1);
	expect_page(parent, mem, SEED_NEW);
	expect_page(child, mem, SEED_OLD);
	CHECK();
}

Test(cow_anon, test_cow_in_parent, .description = "Basic COW after fork()")
{
	do_test_cow_in_parent(false);
}

Test(cow_anon, test_cow_in_parent_mprotect,
     .description = "Basic COW after fork() with mprotect() optimization")
{
	do_test_cow_in_parent(true);
}

/* ---- vmsplice() + unmap in child (CVE-2020-29374) ----------------------------------------- */

/*
 * do_test_vmsplice_in_child: the child takes a R/O GUP reference (vmsplice into a pipe) and
 * unmaps the page; the parent writes.  The pipe must still show the old data.  With mapcount
 * deciding reuse (before 09854ba94c6a) the parent, now the page's only mapper, reused it and
 * the child read the parent's new data through the pipe.
 *
 *   fork:            P --ro--> X <--ro-- C           X: refcount 2, mapcount 2
 *   C vmsplices:     P --ro--> X <--ro-- C  pipe-->X X: refcount 3
 *   C unmaps:        P --ro--> X            pipe-->X X: refcount 2, mapcount 1
 *   P writes:        P --rw--> Y (copy: refcount 2 != 1)   pipe-->X (old data)
 */
static void do_test_vmsplice_in_child(bool do_mprotect)
{
	cowvm_task_t *parent = tu_spawn();
	uint64_t mem = base_page(parent);
	uint64_t x = pfn_of(parent, mem);
	cowvm_task_t *child = tu_fork(parent);
	CHECK();

	/* child_vmsplice_memcmp_fn */
	uint8_t old[COWVM_PAGE_SIZE], new[COWVM_PAGE_SIZE];
	read_page(child, mem, old);
	cowvm_pin_t *pipe = pin(child, mem, COWVM_FOLL_GET); /* trigger a read-only pin */
	CHECK();
	EQ(cowvm_pin_pfn(pipe, 0), x);
	EQ(frame(x).refcount, 3);
	EQ(vmstat().nr_pinned, 0); /* a reference, not a pin */
	EQ(cowvm_munmap(child, mem, PG), 0); /* unmap it from our page tables */
	CHECK();
	EQ(frame(x).refcount, 2);
	EQ(frame(x).mapcount, 1);
	EQ(frame(x).anon_exclusive, 0);

	if (do_mprotect) {
		EQ(cowvm_mprotect(parent, mem, PG, PROT_READ), 0);
		CHECK();
		EQ(cowvm_mprotect(parent, mem, PG, PROT_RW), 0);
		CHECK();
		EQ(pte_writable(parent, mem), 0); /* not exclusive: stays read-only */
	}

	struct cowvm_vmstat v0 = vmstat();
	fill_page(parent, mem, SEED_NEW); /* modify the page */
	CHECK();

	/* pass condition: what the pipe holds is what the child saw before unmapping */
	pin_page_contents(pipe, new);
	EQ(memcmp(old, new, PG), 0);

	EQ(vmstat().cow_copies - v0.cow_copies, 1);
	EQ(vmstat().pgreuse, v0.pgreuse);
	NE(pfn_of(parent, mem), x);
	EQ(frame(x).state, COWVM_FRAME_PINNED); /* held only by the pipe now */
	EQ(frame(x).refcount, 1);
	EQ(frame(x).mapcount, 0);
	cowvm_unpin(pipe);
	CHECK();
	EQ(frame(x).state, COWVM_FRAME_FREE);
	expect_page(parent, mem, SEED_NEW);
}

Test(cow_anon, test_vmsplice_in_child, .description = "vmsplice() + unmap in child")
{
	do_test_vmsplice_in_child(false);
}

Test(cow_anon, test_vmsplice_in_child_mprotect,
     .description = "vmsplice() + unmap in child with mprotect() optimization")
{
	do_test_vmsplice_in_child(true);
}

/* ---- vmsplice() in the parent, before or after fork() ------------------------------------- */

/*
 * do_test_vmsplice_in_parent: the parent takes a R/O GUP reference (before or after fork),
 * unmaps the page after fork; the child writes.  The parent's pipe must still show the old
 * data.  A plain reference (FOLL_GET) does not mark the mm as having pinned pages, so fork
 * shares the page as usual.
 *
 *   before_fork:  P vmsplices   P --rw--> X  pipe-->X          X: refcount 2, exclusive
 *                 fork          P --ro--> X <--ro-- C          X: refcount 3, not exclusive
 *   after fork:   fork, then P vmsplices: the same state
 *   P unmaps:                   pipe-->X <--ro-- C             X: refcount 2, mapcount 1
 *   C writes:                   pipe-->X (old)   C --rw--> Y (copy)
 */
static void do_test_vmsplice_in_parent(bool before_fork)
{
	cowvm_task_t *parent = tu_spawn();
	uint64_t mem = base_page(parent);
	uint64_t x = pfn_of(parent, mem);
	uint8_t old[COWVM_PAGE_SIZE], new[COWVM_PAGE_SIZE];
	read_page(parent, mem, old);
	cowvm_pin_t *pipe = NULL;

	if (before_fork) {
		pipe = pin(parent, mem, COWVM_FOLL_GET);
		CHECK();
		EQ(frame(x).refcount, 2);
		EQ(frame(x).anon_exclusive, 1);
	}
	cowvm_task_t *child = tu_fork(parent);
	CHECK();
	EQ(pfn_of(child, mem), x); /* shared, not copied: FOLL_GET is no pin */
	EQ(frame(x).anon_exclusive, 0);
	if (!before_fork) {
		pipe = pin(parent, mem, COWVM_FOLL_GET);
		CHECK();
	}
	EQ(cowvm_pin_pfn(pipe, 0), x);
	EQ(frame(x).refcount, 3);
	EQ(frame(x).mapcount, 2);

	EQ(cowvm_munmap(parent, mem, PG), 0);
	CHECK();
	EQ(frame(x).refcount, 2);
	EQ(frame(x).mapcount, 1);

	struct cowvm_vmstat v0 = vmstat();
	fill_page(child, mem, SEED_NEW); /* modify page content in the child */
	CHECK();

	/* pass condition: the pipe shows the content from before the child's write */
	pin_page_contents(pipe, new);
	EQ(memcmp(old, new, PG), 0);

	EQ(vmstat().cow_copies - v0.cow_copies, 1);
	NE(pfn_of(child, mem), x);
	EQ(frame(x).state, COWVM_FRAME_PINNED);
	cowvm_unpin(pipe);
	CHECK();
	EQ(frame(x).state, COWVM_FRAME_FREE);
	expect_page(child, mem, SEED_NEW);
}

Test(cow_anon, test_vmsplice_before_fork,
     .description = "vmsplice() before fork(), unmap in parent after fork()")
{
	do_test_vmsplice_in_parent(true);
}

Test(cow_anon, test_vmsplice_after_fork, .description = "vmsplice() + unmap in parent after fork()")
{
	do_test_vmsplice_in_parent(false);
}

/* ---- R/W long-term pins (io_uring fixed buffers) ----------------------------------------- */

/*
 * test_iouring_ro: take a R/W long-term pin, then map the page read-only with soft-dirty
 * tracking on, so that mprotect(RW) leaves the PTE read-only and the next write faults.  The
 * page is exclusive, so the write fault reuses it despite the pin, and the pin sees the write.
 *
 *   pin:                    P --rw--> X <== pin       X: refcount 1 + 1024, exclusive
 *   mprotect R, clear_refs 4, mprotect RW:
 *                           P --ro--> X <== pin       (soft-dirty clear: stays read-only)
 *   P writes:               P --rw--> X <== pin       do_wp_page > wp_page_reuse
 */
Test(cow_anon, test_iouring_ro, .description = "R/O-mapping a page registered as iouring fixed buffer")
{
	cowvm_task_t *p = tu_spawn();
	uint64_t mem = base_page(p);
	uint64_t x = pfn_of(p, mem);
	struct cowvm_vmstat v0 = vmstat();
	cowvm_pin_t *fixed = pin(p, mem, COWVM_FOLL_WRITE | COWVM_FOLL_LONGTERM);
	CHECK();
	EQ(cowvm_pin_pfn(fixed, 0), x);
	EQ(frame(x).refcount, 1 + 1024);
	EQ(vmstat().nr_pinned - v0.nr_pinned, 1);

	EQ(cowvm_mprotect(p, mem, PG, PROT_READ), 0);
	CHECK();
	EQ(cowvm_clear_refs(p, 4), 0);
	CHECK();
	EQ(cowvm_mprotect(p, mem, PG, PROT_RW), 0);
	CHECK();
	EQ(pte_writable(p, mem), 0);
	EQ(pagemap(p, mem) & COWVM_PM_SOFT_DIRTY, 0);

	struct cowvm_task_stats s0 = stats(p);
	struct cowvm_vmstat v1 = vmstat();
	fill_page(p, mem, SEED_NEW);
	CHECK();

	/* pass condition: the pin sees the page as the process does */
	EXPECT_PIN_SEES_MEM(fixed, p, mem);

	/* an exclusive page is reused on a write fault even when pinned */
	EQ(stats(p).min_flt - s0.min_flt, 1);
	EQ(vmstat().pgreuse - v1.pgreuse, 1);
	EQ(vmstat().cow_copies, v1.cow_copies);
	EQ(pfn_of(p, mem), x);
	EQ(pte_writable(p, mem), 1);
	NE(pagemap(p, mem) & COWVM_PM_SOFT_DIRTY, 0); /* the write marked it again */
	cowvm_unpin(fixed);
	CHECK();
	EQ(frame(x).refcount, 1);
	EQ(vmstat().nr_pinned, v0.nr_pinned);
}

/*
 * test_iouring_fork: take a R/W long-term pin, then fork.  The pinned page must not be shared
 * with the child: fork copies it for the child at once (copy_present_page) and the parent keeps
 * its page writable and exclusive, so its write needs no fault and the pin sees it.
 *
 *   pin:      P --rw--> X <== pin
 *   fork:     P --rw--> X <== pin        C --rw--> Y (copied at fork time)
 *   P writes: no fault; X holds the new data; Y the old
 */
Test(cow_anon, test_iouring_fork, .description = "fork() with an iouring fixed buffer")
{
	cowvm_task_t *parent = tu_spawn();
	uint64_t mem = base_page(parent);
	uint64_t x = pfn_of(parent, mem);
	cowvm_pin_t *fixed = pin(parent, mem, COWVM_FOLL_WRITE | COWVM_FOLL_LONGTERM);
	CHECK();

	struct cowvm_vmstat v0 = vmstat();
	cowvm_task_t *child = tu_fork(parent); /* keep the child alive until we are done */
	CHECK();
	uint64_t y = pfn_of(child, mem);
	NE(y, x);
	EQ(pfn_of(parent, mem), x);
	EQ(pte_writable(parent, mem), 1);
	EQ(pte_writable(child, mem), 1);
	EQ(frame(x).anon_exclusive, 1);
	EQ(frame(x).mapcount, 1);
	EQ(frame(x).refcount, 1 + 1024);
	EQ(frame(y).anon_exclusive, 1);
	EQ(frame(y).refcount, 1);
	EQ(vmstat().nr_anon_pages - v0.nr_anon_pages, 1);
	EQ(stats(child).rss_anon, 1);

	struct cowvm_task_stats p0 = stats(parent);
	fill_page(parent, mem, SEED_NEW);
	CHECK();

	/* pass condition: the pin sees the page as the process does */
	EXPECT_PIN_SEES_MEM(fixed, parent, mem);

	EQ(stats(parent).min_flt, p0.min_flt); /* writable all along: no fault */
	expect_page(child, mem, SEED_OLD);
	cowvm_unpin(fixed);
	CHECK();
	tu_exit(child);
	CHECK();
}

/* ---- R/O long-term pins (gup_test PIN_LONGTERM_TEST_START) -------------------------------- */

enum ro_pin_test {
	RO_PIN_TEST,                   /* the zero-page cases: pin what is mapped */
	RO_PIN_TEST_SHARED,            /* the page is shared with a live child */
	RO_PIN_TEST_PREVIOUSLY_SHARED, /* it was, but the child exited */
	RO_PIN_TEST_RO_EXCLUSIVE,      /* exclusive, mapped read-only (soft-dirty) */
};

/*
 * do_test_ro_pin: prepare the page as `test` says, take a R/O long-term pin (GUP or GUP-fast),
 * write the page through the page tables; the pin must see the write.  Returns the faults the
 * pin took, for the callers' own assertions.  `child` is set for RO_PIN_TEST_SHARED.
 *
 *   SHARED:             P --ro--> X <--ro-- C     the pin unshares: wp_page_copy
 *                       P --ro--> Y <== pin       (Y exclusive, mapped read-only)
 *   PREVIOUSLY_SHARED:  P --ro--> X (refcount 1, not exclusive)
 *                       the pin unshares: do_wp_page marks X exclusive, no copy
 *   RO_EXCLUSIVE:       P --ro--> X (exclusive)   pinned as it is: no fault
 *   then, every case:   P writes: do_wp_page > wp_page_reuse, the pin sees it
 */
struct ro_pin_result {
	uint64_t before_pfn, pinned_pfn; /* the frame P mapped before the pin, and the pinned one */
	uint64_t pin_faults, write_faults, pin_copies, pin_fallbacks, write_copies;
};

static struct ro_pin_result do_test_ro_pin(cowvm_task_t *p, uint64_t mem, enum ro_pin_test test,
					   bool fast)
{
	struct ro_pin_result res = { 0 };
	cowvm_task_t *child = NULL;

	switch (test) {
	case RO_PIN_TEST:
		break;
	case RO_PIN_TEST_SHARED:
	case RO_PIN_TEST_PREVIOUSLY_SHARED:
		/* share the page with a child: it is not pinned, so fork just shares it */
		child = tu_fork(p);
		CHECK();
		EQ(pfn_of(child, mem), pfn_of(p, mem));
		if (test == RO_PIN_TEST_PREVIOUSLY_SHARED) {
			/* mapped read-only in our page tables, but no longer shared */
			tu_exit(child);
			child = NULL;
			CHECK();
			EQ(frame(pfn_of(p, mem)).refcount, 1);
			EQ(frame(pfn_of(p, mem)).anon_exclusive, 0);
		}
		break;
	case RO_PIN_TEST_RO_EXCLUSIVE:
		/* soft-dirty tracking keeps mprotect(RW) from mapping it writable again */
		EQ(cowvm_mprotect(p, mem, PG, PROT_READ), 0);
		CHECK();
		EQ(cowvm_clear_refs(p, 4), 0);
		CHECK();
		EQ(cowvm_mprotect(p, mem, PG, PROT_RW), 0);
		CHECK();
		EQ(frame(pfn_of(p, mem)).anon_exclusive, 1);
		break;
	}
	EQ(pte_writable(p, mem), 0);
	res.before_pfn = pfn_of(p, mem);

	/* take a R/O pin: this should trigger unsharing */
	struct cowvm_task_stats s0 = stats(p);
	struct cowvm_vmstat v0 = vmstat();
	cowvm_pin_t *ro = pin(p, mem, COWVM_FOLL_LONGTERM | (fast ? COWVM_FOLL_FAST : 0));
	CHECK();
	struct cowvm_task_stats s1 = stats(p);
	struct cowvm_vmstat v1 = vmstat();
	res.pinned_pfn = cowvm_pin_pfn(ro, 0);
	res.pin_faults = s1.min_flt - s0.min_flt;
	res.pin_copies = (v1.cow_copies - v0.cow_copies) + (v1.zero_page_cows - v0.zero_page_cows);
	res.pin_fallbacks = v1.gup_fast_fallbacks - v0.gup_fast_fallbacks;
	/* after the pin, the process maps the pinned frame, read-only and exclusive */
	EQ(pfn_of(p, mem), res.pinned_pfn);
	EQ(pte_writable(p, mem), 0);
	EQ(frame(res.pinned_pfn).anon_exclusive, 1);
	EQ(frame(res.pinned_pfn).refcount, 1 + 1024);
	EQ(v1.nr_pinned - v0.nr_pinned, 1);

	fill_page(p, mem, SEED_NEW); /* modify the page */
	CHECK();
	struct cowvm_vmstat v2 = vmstat();
	res.write_faults = stats(p).min_flt - s1.min_flt;
	res.write_copies = v2.cow_copies - v1.cow_copies;
	EQ(v2.pgreuse - v1.pgreuse, 1);
	EQ(pfn_of(p, mem), res.pinned_pfn);

	/* pass condition: "Longterm R/O pin is reliable" */
	EXPECT_PIN_SEES_MEM(ro, p, mem);

	cowvm_unpin(ro);
	CHECK();
	if (child) {
		/* the child kept the page as it was at fork */
		if (test == RO_PIN_TEST_SHARED)
			expect_page(child, mem, SEED_OLD);
		tu_exit(child);
		CHECK();
	}
	return res;
}

/* The unshare of a page shared with a live child copies it. */
static void expect_unshare_by_copy(struct ro_pin_result r)
{
	NE(r.pinned_pfn, r.before_pfn);
	EQ(r.pin_faults, 1); /* the UNSHARE fault counts as the task's */
	EQ(r.pin_copies, 1);
	EQ(r.write_faults, 1);
	EQ(r.write_copies, 0);
}

Test(cow_anon, test_ro_pin_on_shared, .description = "R/O GUP pin on R/O-mapped shared page")
{
	cowvm_task_t *p = tu_spawn();
	struct ro_pin_result r = do_test_ro_pin(p, base_page(p), RO_PIN_TEST_SHARED, false);
	expect_unshare_by_copy(r);
	EQ(r.pin_fallbacks, 0);
}

Test(cow_anon, test_ro_fast_pin_on_shared, .description = "R/O GUP-fast pin on R/O-mapped shared page")
{
	cowvm_task_t *p = tu_spawn();
	struct ro_pin_result r = do_test_ro_pin(p, base_page(p), RO_PIN_TEST_SHARED, true);
	expect_unshare_by_copy(r);
	EQ(r.pin_fallbacks, 1); /* GUP-fast cannot unshare: the slow path did */
}

/* The unshare of a page no one else holds only marks it exclusive. */
static void expect_unshare_in_place(struct ro_pin_result r)
{
	EQ(r.pinned_pfn, r.before_pfn);
	EQ(r.pin_faults, 1);
	EQ(r.pin_copies, 0);
	EQ(r.write_faults, 1);
	EQ(r.write_copies, 0);
}

Test(cow_anon, test_ro_pin_on_ro_previously_shared,
     .description = "R/O GUP pin on R/O-mapped previously-shared page")
{
	cowvm_task_t *p = tu_spawn();
	struct ro_pin_result r = do_test_ro_pin(p, base_page(p), RO_PIN_TEST_PREVIOUSLY_SHARED, false);
	expect_unshare_in_place(r);
	EQ(r.pin_fallbacks, 0);
}

Test(cow_anon, test_ro_fast_pin_on_ro_previously_shared,
     .description = "R/O GUP-fast pin on R/O-mapped previously-shared page")
{
	cowvm_task_t *p = tu_spawn();
	struct ro_pin_result r = do_test_ro_pin(p, base_page(p), RO_PIN_TEST_PREVIOUSLY_SHARED, true);
	expect_unshare_in_place(r);
	EQ(r.pin_fallbacks, 1);
}

/* An exclusive page is pinned as it is: no fault, no copy. */
static void expect_pinned_directly(struct ro_pin_result r)
{
	EQ(r.pinned_pfn, r.before_pfn);
	EQ(r.pin_faults, 0);
	EQ(r.pin_copies, 0);
	EQ(r.pin_fallbacks, 0); /* GUP-fast takes it too */
	EQ(r.write_faults, 1);
	EQ(r.write_copies, 0);
}

Test(cow_anon, test_ro_pin_on_ro_exclusive, .description = "R/O GUP pin on R/O-mapped exclusive page")
{
	cowvm_task_t *p = tu_spawn();
	expect_pinned_directly(do_test_ro_pin(p, base_page(p), RO_PIN_TEST_RO_EXCLUSIVE, false));
}

Test(cow_anon, test_ro_fast_pin_on_ro_exclusive,
     .description = "R/O GUP-fast pin on R/O-mapped exclusive page")
{
	cowvm_task_t *p = tu_spawn();
	expect_pinned_directly(do_test_ro_pin(p, base_page(p), RO_PIN_TEST_RO_EXCLUSIVE, true));
}

/* ---- the zero page (run_with_zeropage) ---------------------------------------------------- */

/*
 * run_with_zeropage: two private anonymous mappings, both read, so both map the shared zero
 * page.
 *
 *   mem:  [ 1 page, RW ] --ro--> zero page <--ro-- [ 1 page, R ] :smem
 */
struct zeropage {
	cowvm_task_t *t;
	uint64_t mem, smem;
};

static struct zeropage run_with_zeropage(void)
{
	struct zeropage z;
	z.t = tu_spawn();
	z.mem = map_anon(z.t, 1, PROT_RW);
	z.smem = map_anon(z.t, 1, PROT_READ);
	EQ(read_byte(z.t, z.mem), 0); /* read from the pages to populate the zero page */
	EQ(read_byte(z.t, z.smem), 0);
	CHECK();
	EQ(pfn_of(z.t, z.mem), zero_pfn());
	EQ(pfn_of(z.t, z.smem), zero_pfn());
	return z;
}

/* test_cow: write one mapping; the other must still read what it read before (zeros). */
Test(cow_zeropage, test_cow, .description = "Basic COW")
{
	struct zeropage z = run_with_zeropage();
	uint8_t old[COWVM_PAGE_SIZE], now[COWVM_PAGE_SIZE];
	read_page(z.t, z.smem, old);
	struct cowvm_vmstat v0 = vmstat();

	fill_page(z.t, z.mem, SEED_NEW);
	CHECK();

	/* pass condition: "Other mapping not modified" */
	read_page(z.t, z.smem, now);
	EQ(memcmp(old, now, PG), 0);

	EQ(pfn_of(z.t, z.smem), zero_pfn());
	NE(pfn_of(z.t, z.mem), zero_pfn());
	EQ(vmstat().zero_page_cows - v0.zero_page_cows, 1);
	expect_zeros(z.t, z.smem, PG);
}

/*
 * test_ro_pin / test_ro_fast_pin: a R/O long-term pin of the zero page must unshare it into a
 * real (zeroed) page first, or the pin would keep seeing zeros after the process writes.
 *
 *   before:  mem --ro--> zero page
 *   pin:     mem --ro--> X (new zeroed page, exclusive) <== pin    do_wp_page > wp_page_copy
 *   write:   mem --rw--> X                                          do_wp_page > wp_page_reuse
 */
static void do_test_ro_pin_on_zeropage(bool fast)
{
	struct zeropage z = run_with_zeropage();
	struct ro_pin_result r = do_test_ro_pin(z.t, z.mem, RO_PIN_TEST, fast);
	EQ(r.before_pfn, zero_pfn());
	NE(r.pinned_pfn, zero_pfn());
	EQ(r.pin_faults, 1);
	EQ(r.pin_copies, 1); /* a zero-page COW: a zeroed page, no copy */
	EQ(r.pin_fallbacks, fast ? 1 : 0);
	EQ(r.write_faults, 1);
	EQ(pfn_of(z.t, z.smem), zero_pfn()); /* the other mapping is untouched */
	expect_zeros(z.t, z.smem, PG);
}

Test(cow_zeropage, test_ro_pin, .description = "R/O longterm GUP pin")
{
	do_test_ro_pin_on_zeropage(false);
}

Test(cow_zeropage, test_ro_fast_pin, .description = "R/O longterm GUP-fast pin")
{
	do_test_ro_pin_on_zeropage(true);
}

/* ---- the swapped-out twins (run_with_swap) ------------------------------------------------ */

/*
 * The kernel runs every base-page anon case a second time with the page swapped out first:
 * run_with_swap populates the page, MADV_PAGEOUTs it and skips the test when pagemap does not
 * show it swapped ("MADV_PAGEOUT did not work, is swap enabled?").  The body then starts from a
 * swap PTE (with the exclusive marker): fork copies the swap PTE (swap_duplicate), the first
 * access of each side swaps the page in from the swap cache.  Each twin asserts the kernel's
 * pass condition, then the swap facts cowvm can see.  The machine has a 4 MiB swap file.
 */
static void setup_swap(void)
{
	tu_setup_swap(16ull << 20, 4ull << 20);
}

TestSuite(cow_anon_swapped, .init = setup_swap, .fini = tu_teardown, .timeout = 30);

static uint64_t swapped_base_page(cowvm_task_t *t)
{
	uint64_t mem = map_anon(t, 1, PROT_RW);
	fill_page(t, mem, SEED_OLD);
	EQ(cowvm_madvise(t, mem, PG, MADV_PAGEOUT), 0);
	CHECK();
	if (!(pagemap(t, mem) & COWVM_PM_SWAP))
		cr_skip_test("MADV_PAGEOUT did not work, is swap enabled?");
	EQ(pm_present(t, mem), 0);
	EQ(stats(t).rss_swap, 1);
	return mem;
}

#define is_swapped(t, addr) ((pagemap((t), (addr)) & COWVM_PM_SWAP) != 0)

/*
 * After the pipe lets go, the page it held is in the swap cache with no PTE naming its slot
 * any more (the write that copied it did not drop the cache: the pipe's reference was there).
 * Linux leaves it so until reclaim frees it (__remove_mapping); so does cowvm.
 */
static void expect_orphan_reclaimed(uint64_t x)
{
	struct cowvm_swap_info si;
	EQ(cowvm_swap_info(tu_vm, &si), 0);
	EQ(si.swap_cache_pages, 1);
	EQ(si.used_slots, 1);
	NE(frame(x).state, COWVM_FRAME_FREE);
	EQ(frame(x).mapcount, 0);
	EQ(cowvm_reclaim(tu_vm, 64) >= 1, 1);
	CHECK();
	EQ(cowvm_swap_info(tu_vm, &si), 0);
	EQ(si.swap_cache_pages, 0);
	EQ(frame(x).state, COWVM_FRAME_FREE);
}

static void do_test_cow_in_parent_swapped(bool do_mprotect)
{
	cowvm_task_t *parent = tu_spawn();
	uint64_t mem = swapped_base_page(parent);
	cowvm_task_t *child = tu_fork(parent);
	CHECK();
	EQ(is_swapped(child, mem), 1); /* copy_nonpresent_pte: the swap PTE, the slot shared */
	EQ(is_swapped(parent, mem), 1);

	uint8_t old[COWVM_PAGE_SIZE], now[COWVM_PAGE_SIZE];
	read_page(child, mem, old); /* swapped in from the swap cache: a minor fault */
	EQ(stats(child).maj_flt, 0);
	EQ(pte_writable(child, mem), 0); /* not exclusive: the parent still holds the slot */
	if (do_mprotect) {
		EQ(cowvm_mprotect(parent, mem, PG, PROT_READ), 0);
		CHECK();
		EQ(cowvm_mprotect(parent, mem, PG, PROT_RW), 0);
		CHECK();
	}
	fill_page(parent, mem, SEED_NEW);
	CHECK();

	/* pass condition: the child's memcmp(old, mem) == 0 */
	read_page(child, mem, now);
	EQ(memcmp(old, now, PG), 0);
	NE(pfn_of(parent, mem), pfn_of(child, mem));
	expect_page(parent, mem, SEED_NEW);
	expect_page(child, mem, SEED_OLD);
}

Test(cow_anon_swapped, test_cow_in_parent, .description = "Basic COW after fork() (swapped out)")
{
	do_test_cow_in_parent_swapped(false);
}

Test(cow_anon_swapped, test_cow_in_parent_mprotect,
     .description = "Basic COW after fork() with mprotect() optimization (swapped out)")
{
	do_test_cow_in_parent_swapped(true);
}

static void do_test_vmsplice_in_child_swapped(bool do_mprotect)
{
	cowvm_task_t *parent = tu_spawn();
	uint64_t mem = swapped_base_page(parent);
	cowvm_task_t *child = tu_fork(parent);
	CHECK();
	uint8_t old[COWVM_PAGE_SIZE], new[COWVM_PAGE_SIZE];
	read_page(child, mem, old);
	cowvm_pin_t *pipe = pin(child, mem, COWVM_FOLL_GET);
	CHECK();
	uint64_t x = cowvm_pin_pfn(pipe, 0);
	EQ(pfn_of(child, mem), x);
	EQ(cowvm_munmap(child, mem, PG), 0);
	CHECK();
	EQ(is_swapped(parent, mem), 1); /* the parent's PTE is still the swap PTE */
	if (do_mprotect) {
		EQ(cowvm_mprotect(parent, mem, PG, PROT_READ), 0);
		CHECK();
		EQ(cowvm_mprotect(parent, mem, PG, PROT_RW), 0);
		CHECK();
	}
	struct cowvm_vmstat v0 = vmstat();
	fill_page(parent, mem, SEED_NEW); /* swaps in the page the pipe holds: must copy */
	CHECK();

	/* pass condition: what the pipe holds is what the child saw before unmapping */
	pin_page_contents(pipe, new);
	EQ(memcmp(old, new, PG), 0);
	EQ(vmstat().cow_copies - v0.cow_copies, 1);
	NE(pfn_of(parent, mem), x);
	cowvm_unpin(pipe);
	CHECK();
	expect_orphan_reclaimed(x);
	expect_page(parent, mem, SEED_NEW);
}

Test(cow_anon_swapped, test_vmsplice_in_child, .description = "vmsplice() + unmap in child (swapped out)")
{
	do_test_vmsplice_in_child_swapped(false);
}

Test(cow_anon_swapped, test_vmsplice_in_child_mprotect,
     .description = "vmsplice() + unmap in child with mprotect() optimization (swapped out)")
{
	do_test_vmsplice_in_child_swapped(true);
}

static void do_test_vmsplice_in_parent_swapped(bool before_fork)
{
	cowvm_task_t *parent = tu_spawn();
	uint64_t mem = swapped_base_page(parent);
	uint8_t old[COWVM_PAGE_SIZE], new[COWVM_PAGE_SIZE];
	read_page(parent, mem, old); /* the exclusive marker: mapped writable, exclusive */
	EQ(pte_writable(parent, mem), 1);
	EQ(stats(parent).maj_flt, 0);
	cowvm_pin_t *pipe = NULL;
	if (before_fork) {
		pipe = pin(parent, mem, COWVM_FOLL_GET);
		CHECK();
	}
	cowvm_task_t *child = tu_fork(parent);
	CHECK();
	if (!before_fork) {
		pipe = pin(parent, mem, COWVM_FOLL_GET);
		CHECK();
	}
	uint64_t x = cowvm_pin_pfn(pipe, 0);
	EQ(pfn_of(child, mem), x);
	EQ(cowvm_munmap(parent, mem, PG), 0);
	CHECK();
	struct cowvm_vmstat v0 = vmstat();
	fill_page(child, mem, SEED_NEW);
	CHECK();

	/* pass condition: the pipe shows the content from before the child's write */
	pin_page_contents(pipe, new);
	EQ(memcmp(old, new, PG), 0);
	EQ(vmstat().cow_copies - v0.cow_copies, 1); /* the pipe's and the swap cache's references */
	NE(pfn_of(child, mem), x);
	cowvm_unpin(pipe);
	CHECK();
	expect_orphan_reclaimed(x);
	expect_page(child, mem, SEED_NEW);
}

Test(cow_anon_swapped, test_vmsplice_before_fork,
     .description = "vmsplice() before fork(), unmap in parent after fork() (swapped out)")
{
	do_test_vmsplice_in_parent_swapped(true);
}

Test(cow_anon_swapped, test_vmsplice_after_fork,
     .description = "vmsplice() + unmap in parent after fork() (swapped out)")
{
	do_test_vmsplice_in_parent_swapped(false);
}

Test(cow_anon_swapped, test_iouring_ro,
     .description = "R/O-mapping a page registered as iouring fixed buffer (swapped out)")
{
	cowvm_task_t *p = tu_spawn();
	uint64_t mem = swapped_base_page(p);
	cowvm_pin_t *fixed = pin(p, mem, COWVM_FOLL_WRITE | COWVM_FOLL_LONGTERM); /* swaps it in */
	CHECK();
	uint64_t x = cowvm_pin_pfn(fixed, 0);
	EQ(pfn_of(p, mem), x);
	EQ(frame(x).anon_exclusive, 1);
	EQ(frame(x).refcount, 1 + 1024); /* the write fault dropped the swap cache */
	EQ(cowvm_mprotect(p, mem, PG, PROT_READ), 0);
	CHECK();
	EQ(cowvm_clear_refs(p, 4), 0);
	CHECK();
	EQ(cowvm_mprotect(p, mem, PG, PROT_RW), 0);
	CHECK();
	EQ(pte_writable(p, mem), 0);
	struct cowvm_vmstat v1 = vmstat();
	fill_page(p, mem, SEED_NEW);
	CHECK();

	/* pass condition: the pin sees the page as the process does */
	EXPECT_PIN_SEES_MEM(fixed, p, mem);
	EQ(vmstat().pgreuse - v1.pgreuse, 1);
	EQ(pfn_of(p, mem), x);
	cowvm_unpin(fixed);
	CHECK();
}

Test(cow_anon_swapped, test_iouring_fork, .description = "fork() with an iouring fixed buffer (swapped out)")
{
	cowvm_task_t *parent = tu_spawn();
	uint64_t mem = swapped_base_page(parent);
	cowvm_pin_t *fixed = pin(parent, mem, COWVM_FOLL_WRITE | COWVM_FOLL_LONGTERM);
	CHECK();
	uint64_t x = cowvm_pin_pfn(fixed, 0);
	cowvm_task_t *child = tu_fork(parent);
	CHECK();
	NE(pfn_of(child, mem), x); /* copied at fork: the page may be pinned */
	EQ(pfn_of(parent, mem), x);
	struct cowvm_task_stats p0 = stats(parent);
	fill_page(parent, mem, SEED_NEW);
	CHECK();

	/* pass condition: the pin sees the page as the process does */
	EXPECT_PIN_SEES_MEM(fixed, parent, mem);
	EQ(stats(parent).min_flt, p0.min_flt);
	expect_page(child, mem, SEED_OLD);
	cowvm_unpin(fixed);
	CHECK();
	tu_exit(child);
	CHECK();
}

/*
 * The R/O long-term pin cases, swapped out: GUP faults the swap PTE in first (a read fault:
 * do_swap_page), then unshares what may be shared.  Pass condition: the pin sees the write
 * made through the page tables afterwards.
 */
static void do_test_ro_pin_swapped(enum ro_pin_test test, bool fast)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t mem = swapped_base_page(p);
	cowvm_task_t *child = NULL;
	if (test == RO_PIN_TEST_SHARED || test == RO_PIN_TEST_PREVIOUSLY_SHARED) {
		child = tu_fork(p);
		CHECK();
		EQ(is_swapped(child, mem), 1);
		if (test == RO_PIN_TEST_PREVIOUSLY_SHARED) {
			tu_exit(child);
			child = NULL;
			CHECK();
		}
	} else if (test == RO_PIN_TEST_RO_EXCLUSIVE) {
		EQ(cowvm_mprotect(p, mem, PG, PROT_READ), 0);
		CHECK();
		EQ(cowvm_clear_refs(p, 4), 0);
		CHECK();
		EQ(cowvm_mprotect(p, mem, PG, PROT_RW), 0);
		CHECK();
	}
	EQ(is_swapped(p, mem), 1);
	cowvm_pin_t *ro = pin(p, mem, COWVM_FOLL_LONGTERM | (fast ? COWVM_FOLL_FAST : 0));
	CHECK();
	uint64_t x = cowvm_pin_pfn(ro, 0);
	EQ(pfn_of(p, mem), x);
	EQ(pte_writable(p, mem), 0);
	EQ(frame(x).anon_exclusive, 1);
	if (child)
		EQ(is_swapped(child, mem), 1); /* the child's PTE still names the slot */
	struct cowvm_vmstat v1 = vmstat();
	fill_page(p, mem, SEED_NEW);
	CHECK();
	EQ(vmstat().pgreuse - v1.pgreuse, 1);
	EQ(pfn_of(p, mem), x);

	/* pass condition: "Longterm R/O pin is reliable" */
	EXPECT_PIN_SEES_MEM(ro, p, mem);
	cowvm_unpin(ro);
	CHECK();
	if (child) {
		expect_page(child, mem, SEED_OLD);
		tu_exit(child);
		CHECK();
	}
}

Test(cow_anon_swapped, test_ro_pin_on_shared,
     .description = "R/O GUP pin on R/O-mapped shared page (swapped out)")
{
	do_test_ro_pin_swapped(RO_PIN_TEST_SHARED, false);
}

Test(cow_anon_swapped, test_ro_fast_pin_on_shared,
     .description = "R/O GUP-fast pin on R/O-mapped shared page (swapped out)")
{
	do_test_ro_pin_swapped(RO_PIN_TEST_SHARED, true);
}

Test(cow_anon_swapped, test_ro_pin_on_ro_previously_shared,
     .description = "R/O GUP pin on R/O-mapped previously-shared page (swapped out)")
{
	do_test_ro_pin_swapped(RO_PIN_TEST_PREVIOUSLY_SHARED, false);
}

Test(cow_anon_swapped, test_ro_fast_pin_on_ro_previously_shared,
     .description = "R/O GUP-fast pin on R/O-mapped previously-shared page (swapped out)")
{
	do_test_ro_pin_swapped(RO_PIN_TEST_PREVIOUSLY_SHARED, true);
}

Test(cow_anon_swapped, test_ro_pin_on_ro_exclusive,
     .description = "R/O GUP pin on R/O-mapped exclusive page (swapped out)")
{
	do_test_ro_pin_swapped(RO_PIN_TEST_RO_EXCLUSIVE, false);
}

Test(cow_anon_swapped, test_ro_fast_pin_on_ro_exclusive,
     .description = "R/O GUP-fast pin on R/O-mapped exclusive page (swapped out)")
{
	do_test_ro_pin_swapped(RO_PIN_TEST_RO_EXCLUSIVE, true);
}
