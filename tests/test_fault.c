/*
 * test_fault.c - the fault-path decision table.
 *
 *   access / state of the PTE               Linux path                           result
 *   --------------------------------------  -----------------------------------  --------------------
 *   read, PTE none                          do_anonymous_page (read)             zero page, R/O
 *   write, PTE none                         do_anonymous_page (write)            new zeroed page
 *   write, PTE maps the zero page           do_wp_page -> wp_page_copy           new zeroed page
 *   write, COW-shared page (after fork)     do_wp_page -> wp_page_copy           copy for the writer
 *   write, page shared once, other side     do_wp_page -> wp_can_reuse_anon_     same frame, writable
 *     gone                                    folio -> wp_page_reuse
 *   write, shared anonymous (shmem)         do_shared_fault                      no COW, one frame
 *
 * Each case asserts contents, the faults each task took (min_flt), pagemap bits and frame
 * numbers, RSS, and the vmstat events (pgreuse, cow_copies, zero_page_maps, zero_page_cows).
 * The checker runs after every step; the fixture checks for leaked frames after the test.
 */
#include "testutil.h"

TestSuite(fault, .init = tu_setup, .fini = tu_teardown);

/* ---- read of fresh memory ------------------------------------------------------------------- */

/*
 * Three fresh mappings in two processes, each read once:
 *
 *   p1:  [a: 1 page RW]   [b: 1 page R]        p2:  [c: 1 page RW]
 *
 * Every read maps the one zero page: one minor fault, present, not exclusive, not "file",
 * the same frame number everywhere, no RSS, nothing in smaps.
 */
Test(fault, fresh_read_maps_the_shared_zero_page_in_every_region_and_process)
{
	cowvm_task_t *p1 = tu_spawn();
	cowvm_task_t *p2 = tu_spawn();
	struct {
		const char *what;
		cowvm_task_t *t;
		uint64_t addr;
	} cases[] = {
		{ "read of a fresh RW mapping in p1", p1, map_anon(p1, 1, PROT_RW) },
		{ "read of a fresh R mapping in p1", p1, map_anon(p1, 1, PROT_READ) },
		{ "read of a fresh RW mapping in p2", p2, map_anon(p2, 1, PROT_RW) },
	};
	struct cowvm_vmstat v0 = vmstat();
	CHECK();

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = cases[i].what;
		cowvm_task_t *t = cases[i].t;
		uint64_t a = cases[i].addr;
		struct cowvm_task_stats s0 = stats(t);

		EQ_WHY(pm_present(t, a), 0, why);
		EQ_WHY(read_byte(t, a + 123), 0, why);
		CHECK();

		struct cowvm_task_stats s1 = stats(t);
		EQ_WHY(s1.min_flt - s0.min_flt, 1, why);
		EQ_WHY(s1.rss_anon, s0.rss_anon, why);
		EQ_WHY(pm_present(t, a), 1, why);
		EQ_WHY(pm_exclusive(t, a), 0, why);
		EQ_WHY(pm_file(t, a), 0, why);
		EQ_WHY(pfn_of(t, a), zero_pfn(), why);
		EQ_WHY(pte_writable(t, a), 0, why);
		EQ_WHY(smaps(t, a, PG).rss, 0, why);
		EQ_WHY(smaps(t, a, PG).pss, 0, why);
		EQ_WHY(smaps(t, a, PG).anonymous, 0, why);

		/* the whole page reads zeros, and reading again does not fault */
		expect_zeros(t, a, PG);
		EQ_WHY(stats(t).min_flt, s1.min_flt, why);
	}

	EQ(frame(zero_pfn()).state, COWVM_FRAME_ZERO);
	struct cowvm_vmstat v1 = vmstat();
	EQ(v1.zero_page_maps - v0.zero_page_maps, 3);
	EQ(v1.nr_zero_page_mappings - v0.nr_zero_page_mappings, 3);
	EQ(v1.nr_anon_pages, v0.nr_anon_pages);
	EQ(v1.cow_copies, v0.cow_copies);
	EQ(v1.pgfault - v0.pgfault, 3);
	CHECK();
}

/* ---- write of fresh memory ------------------------------------------------------------------ */

Test(fault, fresh_write_maps_a_new_zeroed_exclusive_page_with_one_fault)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 1, PROT_RW);
	struct cowvm_task_stats s0 = stats(t);
	struct cowvm_vmstat v0 = vmstat();

	write_byte(t, a + 100, 0x5A);
	CHECK();
	struct cowvm_task_stats s1 = stats(t);
	struct cowvm_vmstat v1 = vmstat();
	EQ(s1.min_flt - s0.min_flt, 1);
	EQ(s1.rss_anon - s0.rss_anon, 1);
	EQ(v1.nr_anon_pages - v0.nr_anon_pages, 1);
	EQ(v1.zero_page_maps, v0.zero_page_maps);
	EQ(v1.zero_page_cows, v0.zero_page_cows);
	EQ(v1.cow_copies, v0.cow_copies);

	uint64_t pm = pagemap(t, a);
	EQ((pm & COWVM_PM_PRESENT) != 0, 1);
	EQ((pm & COWVM_PM_MMAP_EXCLUSIVE) != 0, 1);
	EQ((pm & COWVM_PM_FILE) != 0, 0);
	uint64_t pfn = pm & COWVM_PM_PFN_MASK;
	NE(pfn, zero_pfn());
	EQ(pte_writable(t, a), 1);
	EQ(TU_PTE_PFN(cowvm_pte(t, a)), pfn);

	struct cowvm_frame_info f = frame(pfn);
	EQ(f.state, COWVM_FRAME_ANON);
	EQ(f.refcount, 1);
	EQ(f.mapcount, 1);
	EQ(f.anon_exclusive, 1);

	/* the new frame was zeroed (new frames are poisoned until then) */
	expect_zeros(t, a, 100);
	EQ(read_byte(t, a + 100), 0x5A);
	expect_zeros(t, a + 101, PG - 101);

	/* a second write and more reads of the same page take no fault */
	write_byte(t, a + 200, 0x6B);
	EQ(read_byte(t, a + 200), 0x6B);
	EQ(stats(t).min_flt, s1.min_flt);
	EQ(pfn_of(t, a), pfn);
	CHECK();
}

Test(fault, write_after_read_replaces_the_zero_page_with_a_new_zeroed_page)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 1, PROT_RW);
	struct cowvm_task_stats s0 = stats(t);
	struct cowvm_vmstat v0 = vmstat();

	EQ(read_byte(t, a), 0);
	CHECK();
	EQ(stats(t).min_flt - s0.min_flt, 1);
	EQ(pfn_of(t, a), zero_pfn());

	write_byte(t, a + 7, 0x77);
	CHECK();
	struct cowvm_task_stats s2 = stats(t);
	struct cowvm_vmstat v2 = vmstat();
	EQ(s2.min_flt - s0.min_flt, 2);
	EQ(s2.rss_anon - s0.rss_anon, 1);
	NE(pfn_of(t, a), zero_pfn());
	EQ(pm_present(t, a), 1);
	EQ(pm_exclusive(t, a), 1);
	EQ(pte_writable(t, a), 1);
	EQ(v2.zero_page_maps - v0.zero_page_maps, 1);
	EQ(v2.zero_page_cows - v0.zero_page_cows, 1);
	EQ(v2.cow_copies, v0.cow_copies); /* replacing the zero page is not a copy */
	EQ(v2.pgreuse, v0.pgreuse);
	EQ(v2.nr_zero_page_mappings, v0.nr_zero_page_mappings);
	EQ(v2.nr_anon_pages - v0.nr_anon_pages, 1);

	struct cowvm_frame_info f = frame(pfn_of(t, a));
	EQ(f.state, COWVM_FRAME_ANON);
	EQ(f.refcount, 1);
	EQ(f.mapcount, 1);
	EQ(f.anon_exclusive, 1);
	expect_zeros(t, a, 7);
	EQ(read_byte(t, a + 7), 0x77);
	expect_zeros(t, a + 8, PG - 8);
	EQ(frame(zero_pfn()).state, COWVM_FRAME_ZERO);
	CHECK();
}

/* ---- fork ----------------------------------------------------------------------------------- */

/*
 * One region of four pages, then fork:
 *
 *   page:      0        1        2           3
 *   parent:  written  written  read (zero)  untouched
 *
 * Written pages are shared read-only (same frame, refcount 2, mapcount 2, exclusive nowhere);
 * the zero-page PTE is copied too (the VMA has an anon_vma), the untouched page is not.
 */
Test(fault, fork_shares_written_pages_read_only_and_neither_side_is_exclusive)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 4, PROT_RW);
	fill_page(p, a, 1);
	fill_page(p, a + PG, 2);
	EQ(read_byte(p, a + 2 * PG), 0);
	struct cowvm_vmstat v0 = vmstat();
	uint64_t pfn0 = pfn_of(p, a), pfn1 = pfn_of(p, a + PG);
	CHECK();

	cowvm_task_t *c = tu_fork(p);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();
	struct cowvm_task_stats cs0 = stats(c);
	EQ(v1.nr_anon_pages, v0.nr_anon_pages); /* fork copies no data page */
	EQ(v1.cow_copies, v0.cow_copies);
	EQ(cs0.rss_anon, 2);
	EQ(stats(p).rss_anon, 2);
	EQ(cs0.nr_vmas, stats(p).nr_vmas);

	for (int i = 0; i < 2; i++) {
		uint64_t x = a + (uint64_t)i * PG;
		uint64_t pfn = i == 0 ? pfn0 : pfn1;
		EQ(pfn_of(p, x), pfn);
		EQ(pfn_of(c, x), pfn);
		EQ(pm_present(c, x), 1);
		EQ(pm_exclusive(p, x), 0);
		EQ(pm_exclusive(c, x), 0);
		EQ(pte_writable(p, x), 0);
		EQ(pte_writable(c, x), 0);
		struct cowvm_frame_info f = frame(pfn);
		EQ(f.refcount, 2);
		EQ(f.mapcount, 2);
		EQ(f.anon_exclusive, 0);
	}
	EQ(pfn_of(c, a + 2 * PG), zero_pfn());
	EQ(v1.nr_zero_page_mappings - v0.nr_zero_page_mappings, 1);
	EQ(pm_present(c, a + 3 * PG), 0);

	/* the child reads the parent's data and the zero page without a fault */
	expect_page(c, a, 1);
	expect_page(c, a + PG, 2);
	expect_zeros(c, a + 2 * PG, PG);
	EQ(stats(c).min_flt, cs0.min_flt);
	/* the untouched page faults in the child */
	EQ(read_byte(c, a + 3 * PG), 0);
	EQ(stats(c).min_flt - cs0.min_flt, 1);
	CHECK();
}


/* A VMA that was only read has no anon_vma, so fork copies none of its page tables and the
 * child's first read of each page faults (kernel/fork.c vma_needs_copy). */
Test(fault, fork_does_not_copy_the_page_tables_of_a_vma_that_was_only_read)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 2, PROT_RW);
	expect_zeros(p, a, 2 * PG);
	EQ(pfn_of(p, a), zero_pfn());
	EQ(vma_at(p, a).anon_vma, 0);

	cowvm_task_t *c = tu_fork(p);
	CHECK();
	struct cowvm_task_stats c0 = stats(c);
	EQ(pm_present(c, a), 0);
	EQ(pm_present(c, a + PG), 0);
	expect_zeros(c, a, 2 * PG);
	EQ(stats(c).min_flt - c0.min_flt, 2);
	EQ(pfn_of(c, a), zero_pfn());
	EQ(pfn_of(c, a + PG), zero_pfn());
	CHECK();
}

/*
 * COW break after fork.  One page filled by the parent, shared by fork, then written by
 * `writer`; afterwards the other side writes too:
 *
 *   after fork:          parent ──┐
 *                                 ├── F (pattern 1)  refcount 2, mapcount 2
 *                        child  ──┘
 *   writer writes:       writer ───── N (copy of F + new byte)      wp_page_copy
 *                        other  ───── F                refcount 1, still write-protected
 *   other writes:        other  ───── F (+ its byte)                wp_page_reuse
 */
static void cow_break_then_reuse(int parent_writes)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	fill_page(p, a, 1);
	cowvm_task_t *c = tu_fork(p);
	cowvm_task_t *w = parent_writes ? p : c;
	cowvm_task_t *o = parent_writes ? c : p;
	uint64_t old = pfn_of(p, a);
	EQ(pfn_of(c, a), old);
	struct cowvm_task_stats w0 = stats(w), o0 = stats(o);
	struct cowvm_vmstat v0 = vmstat();
	CHECK();

	write_byte(w, a, 0xC3);
	CHECK();
	struct cowvm_task_stats w1 = stats(w), o1 = stats(o);
	struct cowvm_vmstat v1 = vmstat();
	EQ(w1.min_flt - w0.min_flt, 1);
	EQ(o1.min_flt, o0.min_flt);
	EQ(v1.cow_copies - v0.cow_copies, 1);
	EQ(v1.pgreuse, v0.pgreuse);
	EQ(v1.zero_page_cows, v0.zero_page_cows);
	EQ((int64_t)(v0.nr_free_pages - v1.nr_free_pages), 1);
	EQ(v1.nr_anon_pages - v0.nr_anon_pages, 1);
	EQ(w1.rss_anon, w0.rss_anon);
	EQ(o1.rss_anon, o0.rss_anon);

	uint64_t new = pfn_of(w, a);
	NE(new, old);
	NE(new, zero_pfn());
	EQ(pfn_of(o, a), old);
	EQ(pm_exclusive(w, a), 1);
	EQ(pte_writable(w, a), 1);
	/* the old frame is mapped once now ("exclusive" in pagemap) but still write-protected */
	EQ(pm_exclusive(o, a), 1);
	EQ(pte_writable(o, a), 0);
	struct cowvm_frame_info fo = frame(old), fn = frame(new);
	EQ(fo.refcount, 1);
	EQ(fo.mapcount, 1);
	EQ(fo.anon_exclusive, 0);
	EQ(fn.state, COWVM_FRAME_ANON);
	EQ(fn.refcount, 1);
	EQ(fn.mapcount, 1);
	EQ(fn.anon_exclusive, 1);

	/* the writer has a full copy plus its byte; the other side still sees the old data */
	EQ(read_byte(w, a), 0xC3);
	expect_page_after(w, a, 1, 1);
	expect_page(o, a, 1);
	EQ(stats(o).min_flt, o0.min_flt);

	/* the other side's write now reuses the old frame (refcount 1): no copy */
	write_byte(o, a, 0x3C);
	CHECK();
	struct cowvm_vmstat v2 = vmstat();
	EQ(stats(o).min_flt - o0.min_flt, 1);
	EQ(pfn_of(o, a), old);
	EQ(v2.pgreuse - v1.pgreuse, 1);
	EQ(v2.cow_copies, v1.cow_copies);
	EQ(v2.nr_free_pages, v1.nr_free_pages);
	EQ(frame(old).anon_exclusive, 1);
	EQ(pte_writable(o, a), 1);
	EQ(read_byte(w, a), 0xC3);
	EQ(read_byte(o, a), 0x3C);
	expect_page_after(o, a, 1, 1);
	expect_page_after(w, a, 1, 1);
	CHECK();
}

Test(fault, write_after_fork_in_the_parent_copies_and_the_child_keeps_the_old_frame_and_data)
{
	cow_break_then_reuse(1);
}

Test(fault, write_after_fork_in_the_child_copies_and_the_parent_keeps_the_old_frame_and_data)
{
	cow_break_then_reuse(0);
}

/* Fork, then one side exits: the survivor's page has refcount 1 but is not PageAnonExclusive
 * (fork cleared it); its write faults once and reuses the frame (wp_can_reuse_anon_folio). */
Test(fault, write_after_the_other_side_exited_reuses_the_frame_without_a_copy)
{
	static const char *const what[] = { "the child exits, the parent writes",
					    "the parent exits, the child writes" };
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	fill_page(p, a, 9);

	for (int i = 0; i < 2; i++) {
		const char *why = what[i];
		cowvm_task_t *c = tu_fork(p);
		cowvm_task_t *survivor = i == 0 ? p : c;
		uint64_t pfn = pfn_of(p, a);
		EQ_WHY(frame(pfn).mapcount, 2, why);
		tu_exit(i == 0 ? c : p);
		CHECK();

		EQ_WHY(pm_exclusive(survivor, a), 1, why); /* mapped once ... */
		EQ_WHY(pte_writable(survivor, a), 0, why); /* ... but still write-protected */
		struct cowvm_frame_info f = frame(pfn);
		EQ_WHY(f.refcount, 1, why);
		EQ_WHY(f.mapcount, 1, why);
		EQ_WHY(f.anon_exclusive, 0, why);

		struct cowvm_task_stats s0 = stats(survivor);
		struct cowvm_vmstat v0 = vmstat();
		write_byte(survivor, a, (uint8_t)(0xA0 + i));
		CHECK();
		struct cowvm_vmstat v1 = vmstat();
		EQ_WHY(stats(survivor).min_flt - s0.min_flt, 1, why);
		EQ_WHY(pfn_of(survivor, a), pfn, why);
		EQ_WHY(v1.pgreuse - v0.pgreuse, 1, why);
		EQ_WHY(v1.cow_copies, v0.cow_copies, why);
		EQ_WHY(v1.nr_free_pages, v0.nr_free_pages, why);
		EQ_WHY(stats(survivor).rss_anon, s0.rss_anon, why);
		EQ_WHY(frame(pfn).anon_exclusive, 1, why);
		EQ_WHY(pte_writable(survivor, a), 1, why);
		EQ_WHY(read_byte(survivor, a), 0xA0 + i, why);
		expect_page_after(survivor, a, 9, 1);
		p = survivor; /* the next round forks from whoever is left */
	}
	CHECK();
}

/* ---- mprotect ------------------------------------------------------------------------------- */

/* selftests/mm/cow.c case 2: mprotect(R) then mprotect(RW) in the parent after fork must not
 * map the COW-shared page writable (it is not PageAnonExclusive). */
Test(fault, mprotect_read_then_write_after_fork_does_not_make_the_shared_page_writable)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	fill_page(p, a, 4);
	cowvm_task_t *c = tu_fork(p);
	uint64_t old = pfn_of(p, a);
	uint8_t x = 0x11;

	EQ(cowvm_mprotect(p, a, PG, PROT_READ), 0);
	CHECK();
	struct cowvm_task_stats s0 = stats(p);
	EQ(cowvm_write(p, a, &x, 1), -EFAULT); /* PROT_READ: SIGSEGV, not a fault */
	EQ(stats(p).min_flt, s0.min_flt);
	EQ(cowvm_mprotect(p, a, PG, PROT_RW), 0);
	CHECK();
	EQ(pte_writable(p, a), 0);
	EQ(pte_writable(c, a), 0);
	EQ(pfn_of(p, a), old);

	struct cowvm_vmstat v0 = vmstat();
	write_byte(p, a, x);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();
	EQ(stats(p).min_flt - s0.min_flt, 1);
	EQ(v1.cow_copies - v0.cow_copies, 1);
	NE(pfn_of(p, a), old);
	EQ(pfn_of(c, a), old);
	expect_page(c, a, 4);
	EQ(read_byte(p, a), x);
	expect_page_after(p, a, 4, 1);
	CHECK();
}

/* An exclusive page (never shared) becomes writable again at mprotect(RW) without a fault:
 * change_pte_range with MM_CP_TRY_CHANGE_WRITABLE and can_change_pte_writable. */
Test(fault, mprotect_read_then_write_on_an_exclusive_page_makes_it_writable_without_a_fault)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	write_byte(p, a, 1);
	uint64_t pfn = pfn_of(p, a);
	struct cowvm_task_stats s0 = stats(p);
	uint8_t x = 2;

	EQ(cowvm_mprotect(p, a, PG, PROT_READ), 0);
	CHECK();
	EQ(pte_writable(p, a), 0);
	/* the writable translation cached by the first write must be gone */
	EQ(cowvm_write(p, a, &x, 1), -EFAULT);
	EQ(read_byte(p, a), 1);

	EQ(cowvm_mprotect(p, a, PG, PROT_RW), 0);
	CHECK();
	EQ(pte_writable(p, a), 1);
	struct cowvm_vmstat v0 = vmstat();
	write_byte(p, a, x);
	CHECK();
	EQ(stats(p).min_flt, s0.min_flt);
	EQ(pfn_of(p, a), pfn);
	EQ(vmstat().pgreuse, v0.pgreuse);
	EQ(vmstat().cow_copies, v0.cow_copies);
	EQ(read_byte(p, a), 2);
	CHECK();
}

/* ---- madvise and fork ----------------------------------------------------------------------- */

/*
 *   parent:  [a: 1 page, MADV_DONTFORK][b: 1 page]      (adjacent or not)
 *   child:                             [b: 1 page]
 */
Test(fault, madv_dontfork_leaves_the_child_without_the_mapping_and_the_parent_untouched)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	uint64_t b = map_anon(p, 1, PROT_RW);
	fill_page(p, a, 1);
	fill_page(p, b, 2);
	EQ(cowvm_madvise(p, a, PG, MADV_DONTFORK), 0);
	CHECK();
	EQ(vma_at(p, a).flags & TU_VM_DONTCOPY, TU_VM_DONTCOPY);
	EQ(vma_at(p, b).flags & TU_VM_DONTCOPY, 0);
	uint64_t pfn = pfn_of(p, a);

	cowvm_task_t *c = tu_fork(p);
	CHECK();
	struct cowvm_task_stats c0 = stats(c);
	EQ(c0.nr_vmas, stats(p).nr_vmas - 1);
	EQ(c0.rss_anon, 1);
	EQ(tu_has_vma_at(c, a), 0);
	EQ(pm_present(c, a), 0);
	uint8_t buf = 0xEE;
	EQ(cowvm_read(c, a, &buf, 1), -EFAULT);
	EQ(buf, 0xEE);
	EQ(stats(c).min_flt, c0.min_flt);
	expect_page(c, b, 2); /* the rest of the mm is inherited as usual */

	/* fork did not touch the parent's PTE: still exclusive and writable */
	EQ(pm_exclusive(p, a), 1);
	EQ(pte_writable(p, a), 1);
	EQ(frame(pfn).refcount, 1);
	EQ(frame(pfn).mapcount, 1);
	struct cowvm_task_stats p0 = stats(p);
	write_byte(p, a, 0x99);
	EQ(stats(p).min_flt, p0.min_flt);
	EQ(pfn_of(p, a), pfn);
	EQ(read_byte(p, a), 0x99);
	expect_page_after(p, a, 1, 1);
	CHECK();
}

Test(fault, madv_wipeonfork_gives_the_child_zeros_and_the_parent_keeps_its_data)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 2, PROT_RW);
	fill_page(p, a, 1);
	fill_page(p, a + PG, 2);
	EQ(cowvm_madvise(p, a, 2 * PG, MADV_WIPEONFORK), 0);
	CHECK();
	EQ(vma_at(p, a).flags & TU_VM_WIPEONFORK, TU_VM_WIPEONFORK);
	uint64_t pfn0 = pfn_of(p, a), pfn1 = pfn_of(p, a + PG);

	cowvm_task_t *c = tu_fork(p);
	CHECK();
	struct cowvm_task_stats c0 = stats(c);
	EQ(c0.nr_vmas, stats(p).nr_vmas); /* the mapping exists ... */
	EQ(tu_has_vma_at(c, a), 1);
	EQ(c0.rss_anon, 0); /* ... but is empty */
	EQ(pm_present(c, a), 0);
	EQ(pm_present(c, a + PG), 0);
	expect_zeros(c, a, 2 * PG);
	EQ(stats(c).min_flt - c0.min_flt, 2);
	EQ(pfn_of(c, a), zero_pfn());

	/* the parent's pages were never shared: still exclusive and writable */
	EQ(frame(pfn0).mapcount, 1);
	EQ(frame(pfn0).refcount, 1);
	EQ(pte_writable(p, a), 1);
	expect_page(p, a, 1);
	expect_page(p, a + PG, 2);
	struct cowvm_task_stats p0 = stats(p);
	write_byte(p, a + PG, 0x42);
	EQ(stats(p).min_flt, p0.min_flt);
	EQ(pfn_of(p, a + PG), pfn1);

	/* the child's own write gets a fresh page; the parent is unaffected */
	write_byte(c, a, 0x24);
	NE(pfn_of(c, a), pfn0);
	NE(pfn_of(c, a), zero_pfn());
	EQ(read_byte(c, a), 0x24);
	expect_zeros(c, a + 1, PG - 1);
	expect_page(p, a, 1);
	CHECK();
}

/* ---- shared anonymous memory ---------------------------------------------------------------- */

/*
 * MAP_SHARED|MAP_ANONYMOUS is shmem: one frame for both processes, no COW ever.  Fork does not
 * copy the page tables of a shared VMA (it has no anon_vma), so the child's first access
 * faults and finds the page in the shmem object.  (One page only: a read fault on shmem may map
 * neighbouring pages too (fault-around), which would blur the fault counts.)
 */
Test(fault, shared_anonymous_mapping_is_shared_across_fork_without_cow)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t s = map_shared_anon(p, 1, PROT_RW);
	struct cowvm_task_stats p0 = stats(p);
	struct cowvm_vmstat v0 = vmstat();

	write_byte(p, s, 'A');
	CHECK();
	struct cowvm_task_stats p1 = stats(p);
	EQ(p1.min_flt - p0.min_flt, 1);
	EQ(p1.rss_shmem - p0.rss_shmem, 1);
	EQ(p1.rss_anon, p0.rss_anon);
	EQ(vmstat().nr_shmem - v0.nr_shmem, 1);
	uint64_t pm = pagemap(p, s);
	EQ((pm & COWVM_PM_PRESENT) != 0, 1);
	EQ((pm & COWVM_PM_FILE) != 0, 1);
	EQ((pm & COWVM_PM_MMAP_EXCLUSIVE) != 0, 1);
	uint64_t pfn = pm & COWVM_PM_PFN_MASK;
	NE(pfn, zero_pfn());
	EQ(frame(pfn).state, COWVM_FRAME_SHMEM);
	EQ(vma_at(p, s).shared, 1);

	cowvm_task_t *c = tu_fork(p);
	CHECK();
	struct cowvm_task_stats c0 = stats(c);
	EQ(pm_present(c, s), 0); /* page tables of shared VMAs are not copied */
	EQ(read_byte(c, s), 'A');
	CHECK();
	EQ(stats(c).min_flt - c0.min_flt, 1);
	EQ(pfn_of(c, s), pfn);
	EQ(stats(c).rss_shmem, 1);
	EQ(stats(c).rss_anon, 0);
	EQ(pm_file(c, s), 1);
	EQ(pm_exclusive(c, s), 0);
	EQ(pm_exclusive(p, s), 0);
	EQ(frame(pfn).mapcount, 2);

	/* writes go both ways, into the one frame */
	write_byte(c, s, 'B');
	CHECK();
	struct cowvm_task_stats p2 = stats(p);
	EQ(read_byte(p, s), 'B');
	write_byte(p, s + 1, 'C'); /* the parent's PTE is writable: no fault */
	EQ(stats(p).min_flt, p2.min_flt);
	EQ(read_byte(c, s + 1), 'C');
	EQ(pfn_of(p, s), pfn);
	EQ(pfn_of(c, s), pfn);
	struct cowvm_vmstat v1 = vmstat();
	EQ(v1.cow_copies, v0.cow_copies);
	EQ(v1.zero_page_cows, v0.zero_page_cows);
	EQ(v1.nr_shmem - v0.nr_shmem, 1);
	EQ(v1.nr_anon_pages, v0.nr_anon_pages);

	/* the frame outlives the parent while the child maps it */
	tu_exit(p);
	CHECK();
	EQ(read_byte(c, s), 'B');
	EQ(read_byte(c, s + 1), 'C');
	EQ(pfn_of(c, s), pfn);
	EQ(frame(pfn).mapcount, 1);
	CHECK();
}

/* ---- three generations ---------------------------------------------------------------------- */

/*
 * P fills pages 0..3, forks C, C forks G: every page is one frame mapped three times.
 * Then the three write pages 0..2, each page in its own order:
 *
 *   page 0:  G, P, C        page 1:  C, G, P        page 2:  P, G, C        page 3: nobody
 *
 * The first two writers of a page copy (the frame is still shared), the last one finds the
 * original frame with refcount 1 and reuses it.
 */
Test(fault, three_generations_each_see_their_own_writes_in_any_order)
{
	cowvm_task_t *t[3];
	t[0] = tu_spawn();
	uint64_t a = map_anon(t[0], 4, PROT_RW);
	for (int i = 0; i < 4; i++)
		fill_page(t[0], a + (uint64_t)i * PG, (uint8_t)(10 + i));
	t[1] = tu_fork(t[0]);
	t[2] = tu_fork(t[1]);
	CHECK();

	uint64_t orig[4];
	for (int i = 0; i < 4; i++) {
		orig[i] = pfn_of(t[0], a + (uint64_t)i * PG);
		EQ(pfn_of(t[1], a + (uint64_t)i * PG), orig[i]);
		EQ(pfn_of(t[2], a + (uint64_t)i * PG), orig[i]);
		EQ(frame(orig[i]).mapcount, 3);
		EQ(frame(orig[i]).refcount, 3);
	}

	enum { P, C, G };
	static const int order[3][3] = { { G, P, C }, { C, G, P }, { P, G, C } };
	struct cowvm_task_stats s0[3];
	for (int k = 0; k < 3; k++)
		s0[k] = stats(t[k]);
	struct cowvm_vmstat v0 = vmstat();

	for (int page = 0; page < 3; page++) {
		for (int step = 0; step < 3; step++) {
			int who = order[page][step];
			uint64_t x = a + (uint64_t)page * PG;
			write_byte(t[who], x, (uint8_t)(0xF0 + who));
			CHECK();
			if (step < 2)
				NE(pfn_of(t[who], x), orig[page]); /* copied */
			else
				EQ(pfn_of(t[who], x), orig[page]); /* reused */
		}
	}

	struct cowvm_vmstat v1 = vmstat();
	EQ(v1.cow_copies - v0.cow_copies, 6);
	EQ(v1.pgreuse - v0.pgreuse, 3);
	for (int k = 0; k < 3; k++) {
		EQ(stats(t[k]).min_flt - s0[k].min_flt, 3);
		EQ(stats(t[k]).rss_anon, 4);
	}

	for (int page = 0; page < 3; page++) {
		uint64_t x = a + (uint64_t)page * PG;
		uint64_t f[3];
		for (int k = 0; k < 3; k++) {
			EQ(read_byte(t[k], x), 0xF0 + k);
			expect_page_after(t[k], x, (uint8_t)(10 + page), 1);
			f[k] = pfn_of(t[k], x);
			EQ(pm_exclusive(t[k], x), 1);
			EQ(frame(f[k]).mapcount, 1);
			EQ(frame(f[k]).refcount, 1);
		}
		NE(f[0], f[1]);
		NE(f[1], f[2]);
		NE(f[0], f[2]);
	}
	for (int k = 0; k < 3; k++) {
		EQ(pfn_of(t[k], a + 3 * PG), orig[3]);
		expect_page(t[k], a + 3 * PG, 13);
	}
	EQ(frame(orig[3]).mapcount, 3);
	CHECK();

	/* the grandchild exits first, then the parent: the child still sees its own data */
	tu_exit(t[2]);
	CHECK();
	tu_exit(t[0]);
	CHECK();
	EQ(frame(orig[3]).mapcount, 1);
	for (int page = 0; page < 3; page++)
		EQ(read_byte(t[1], a + (uint64_t)page * PG), 0xF0 + C);
	expect_page(t[1], a + 3 * PG, 13);
	CHECK();
}

/* ---- MADV_DONTNEED and munmap --------------------------------------------------------------- */

Test(fault, madv_dontneed_frees_the_pages_and_later_reads_see_zeros)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 2, PROT_RW);
	fill_page(p, a, 1);
	fill_page(p, a + PG, 2);
	struct cowvm_task_stats s0 = stats(p);
	struct cowvm_vmstat v0 = vmstat();
	EQ(s0.rss_anon, 2);

	EQ(cowvm_madvise(p, a, 2 * PG, MADV_DONTNEED), 0);
	CHECK();
	struct cowvm_task_stats s1 = stats(p);
	struct cowvm_vmstat v1 = vmstat();
	EQ(s1.rss_anon, 0);
	EQ(s1.nr_vmas, s0.nr_vmas);
	EQ(v1.nr_free_pages - v0.nr_free_pages, 2); /* page tables stay */
	EQ(v0.nr_anon_pages - v1.nr_anon_pages, 2);
	EQ(pm_present(p, a), 0);
	EQ(pm_present(p, a + PG), 0);

	expect_zeros(p, a, 2 * PG);
	EQ(stats(p).min_flt - s1.min_flt, 2);
	EQ(pfn_of(p, a), zero_pfn());
	EQ(pfn_of(p, a + PG), zero_pfn());
	EQ(stats(p).rss_anon, 0);
	CHECK();
}

Test(fault, access_after_munmap_fails_with_efault)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 2, PROT_RW);
	fill_page(p, a, 1);
	uint64_t n0 = stats(p).nr_vmas;
	EQ(cowvm_munmap(p, a, 2 * PG), 0);
	CHECK();
	EQ(stats(p).nr_vmas, n0 - 1);
	EQ(stats(p).rss_anon, 0);
	uint8_t buf = 0xEE;
	EQ(cowvm_read(p, a, &buf, 1), -EFAULT);
	EQ(cowvm_read(p, a + PG, &buf, 1), -EFAULT);
	EQ(cowvm_write(p, a, &buf, 1), -EFAULT);
	EQ(buf, 0xEE);
	EQ(pagemap(p, a), 0);
	CHECK();
}

/*
 *   before:  [a      |a+1p    |a+2p    )   one VMA
 *   after:   [a      )        [a+2p    )   two VMAs, the middle page gone
 */
Test(fault, munmap_of_the_middle_page_splits_the_vma_in_two)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t n0 = stats(p).nr_vmas;
	uint64_t a = map_anon(p, 3, PROT_RW);
	for (int i = 0; i < 3; i++)
		fill_page(p, a + (uint64_t)i * PG, (uint8_t)(20 + i));
	struct cowvm_task_stats s0 = stats(p);
	EQ(s0.nr_vmas, n0 + 1);
	struct cowvm_vmstat v0 = vmstat();

	EQ(cowvm_munmap(p, a + PG, PG), 0);
	CHECK();
	struct cowvm_task_stats s1 = stats(p);
	EQ(s1.nr_vmas, n0 + 2);
	EQ(s0.rss_anon - s1.rss_anon, 1);
	EQ(s0.total_vm - s1.total_vm, 1);
	struct cowvm_vmstat v1 = vmstat();
	/* one data frame freed (and a page table too if the middle page was alone in one) */
	EQ((int64_t)(v1.nr_free_pages - v0.nr_free_pages) -
		   (int64_t)(v0.nr_page_table_pages - v1.nr_page_table_pages), 1);
	EQ(vma_at(p, a).end, a + PG);
	EQ(vma_at(p, a + 2 * PG).start, a + 2 * PG);

	uint8_t buf = 0xEE;
	EQ(cowvm_read(p, a + PG, &buf, 1), -EFAULT);
	expect_page(p, a, 20);
	expect_page(p, a + 2 * PG, 22);
	EQ(stats(p).min_flt, s1.min_flt);
	CHECK();
}

/* selftests/mm/cow.c, non-anonymous subset: two private mappings read the zero page; writing
 * one gives it a new page and the other still reads zeros from the zero page. */
Test(fault, writing_one_of_two_zero_page_mappings_leaves_the_other_reading_zeros)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 1, PROT_RW);
	uint64_t b = map_anon(t, 1, PROT_RW);
	EQ(read_byte(t, a), 0);
	EQ(read_byte(t, b), 0);
	EQ(pfn_of(t, a), zero_pfn());
	EQ(pfn_of(t, b), zero_pfn());

	fill_page(t, a, 3);
	CHECK();
	NE(pfn_of(t, a), zero_pfn());
	EQ(pfn_of(t, b), zero_pfn());
	expect_zeros(t, b, PG);
	expect_page(t, a, 3);
	CHECK();
}

/*
 * MADV_DONTNEED in the parent after fork drops only the parent's mapping: the child keeps the
 * frame (now mapped once) and reuses it on its next write; the parent reads zeros.
 */
Test(fault, madv_dontneed_in_the_parent_after_fork_leaves_the_child_its_page)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	fill_page(p, a, 5);
	cowvm_task_t *c = tu_fork(p);
	uint64_t pfn = pfn_of(p, a);

	EQ(cowvm_madvise(p, a, PG, MADV_DONTNEED), 0);
	CHECK();
	EQ(pm_present(p, a), 0);
	EQ(stats(p).rss_anon, 0);
	EQ(frame(pfn).mapcount, 1);
	EQ(frame(pfn).refcount, 1);
	expect_zeros(p, a, PG);
	expect_page(c, a, 5);

	struct cowvm_vmstat v0 = vmstat();
	write_byte(c, a, 0x66);
	CHECK();
	EQ(pfn_of(c, a), pfn);
	EQ(vmstat().pgreuse - v0.pgreuse, 1);
	EQ(vmstat().cow_copies, v0.cow_copies);
	expect_zeros(p, a, PG);
	CHECK();
}

/* MADV_DONTNEED on a shared anonymous mapping only unmaps: the data lives on in the shmem
 * object and the next access maps the same frame again. */
Test(fault, madv_dontneed_on_shared_anonymous_memory_keeps_the_data)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t s = map_shared_anon(t, 1, PROT_RW);
	fill_page(t, s, 8);
	uint64_t pfn = pfn_of(t, s);
	struct cowvm_vmstat v0 = vmstat();

	EQ(cowvm_madvise(t, s, PG, MADV_DONTNEED), 0);
	CHECK();
	EQ(pm_present(t, s), 0);
	EQ(stats(t).rss_shmem, 0);
	EQ(vmstat().nr_shmem, v0.nr_shmem);         /* still in the object */
	EQ(vmstat().nr_free_pages, v0.nr_free_pages); /* nothing freed */

	struct cowvm_task_stats s0 = stats(t);
	expect_page(t, s, 8);
	EQ(stats(t).min_flt - s0.min_flt, 1);
	EQ(pfn_of(t, s), pfn);
	EQ(stats(t).rss_shmem, 1);
	CHECK();
}
