/*
 * test_mm.c - VMA behaviour: merging and splitting, mprotect, brk, mmap placement, MAP_FIXED,
 * MAP_POPULATE, the VMA iterator, pgoff, and smaps accounting.
 *
 * Fixed layouts are drawn at TU_BASE (1 GiB, 2 MiB aligned); "p" is a page (4 KiB).
 */
#include "testutil.h"

TestSuite(mm, .init = tu_setup, .fini = tu_teardown);

#define A TU_BASE

/* Frames freed between two vmstat snapshots, not counting page-table pages (munmap frees a
 * page table only when its whole range is gone, which depends on where the range lies). */
static int64_t data_frames_freed(struct cowvm_vmstat before, struct cowvm_vmstat after)
{
	return (int64_t)(after.nr_free_pages - before.nr_free_pages) -
	       (int64_t)(before.nr_page_table_pages - after.nr_page_table_pages);
}

/* ---- merge and split ------------------------------------------------------------------------ */

/*
 *   map [A, A+2p), then [A+2p, A+4p)     -> one VMA [A, A+4p)
 *   map [A-1p, A)                        -> one VMA [A-1p, A+4p)
 *   map [A+4p, A+5p) PROT_READ           -> a second VMA (different flags)
 *
 * Linux merges a new anonymous mapping with a neighbour whether or not the neighbour already
 * has an anon_vma (is_mergeable_anon_vma accepts a NULL side).
 */
Test(mm, adjacent_anonymous_mappings_with_the_same_protection_merge_into_one_vma)
{
	static const char *const what[] = {
		"neither mapping touched",
		"the first mapping written before the second is mapped",
	};
	for (int i = 0; i < 2; i++) {
		const char *why = what[i];
		cowvm_task_t *t = tu_spawn();
		uint64_t n0 = stats(t).nr_vmas, tvm0 = stats(t).total_vm;

		map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
		if (i == 1)
			fill_page(t, A, 1);
		map_fixed(t, A + 2 * PG, 2, PROT_RW, MAP_PRIV_ANON);
		CHECK();
		EQ_WHY(stats(t).nr_vmas, n0 + 1, why);
		EQ_WHY(vma_at(t, A).start, A, why);
		EQ_WHY(vma_at(t, A).end, A + 4 * PG, why);

		map_fixed(t, A - PG, 1, PROT_RW, MAP_PRIV_ANON);
		CHECK();
		EQ_WHY(stats(t).nr_vmas, n0 + 1, why);
		EQ_WHY(vma_at(t, A).start, A - PG, why);
		EQ_WHY(vma_at(t, A).end, A + 4 * PG, why);
		EQ_WHY(stats(t).total_vm - tvm0, 5, why);

		map_fixed(t, A + 4 * PG, 1, PROT_READ, MAP_PRIV_ANON);
		CHECK();
		EQ_WHY(stats(t).nr_vmas, n0 + 2, why);

		if (i == 1)
			expect_page(t, A, 1);
		/* the merged VMA works as one: write its last page */
		write_byte(t, A + 4 * PG - 1, 0x44);
		EQ_WHY(read_byte(t, A + 4 * PG - 1), 0x44, why);
		CHECK();
		tu_exit(t);
		CHECK();
	}
}

/*
 *   [A    RW    |A+1p  RW    |A+2p  RW    )   one VMA, three written pages
 *   [A    RW    )[A+1p  R    )[A+2p  RW   )   mprotect(A+1p, 1p, R): three VMAs
 *   [A    RW    |A+1p  RW    |A+2p  RW    )   mprotect(A+1p, 1p, RW): one VMA again
 */
Test(mm, mprotect_of_the_middle_page_splits_into_three_and_mprotect_back_merges_into_one)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t n0 = stats(t).nr_vmas;
	map_fixed(t, A, 3, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 3; i++)
		fill_page(t, A + (uint64_t)i * PG, (uint8_t)(30 + i));

	EQ(cowvm_mprotect(t, A + PG, PG, PROT_READ), 0);
	CHECK();
	EQ(stats(t).nr_vmas, n0 + 3);
	struct cowvm_vma_info v0 = vma_at(t, A), v1 = vma_at(t, A + PG), v2 = vma_at(t, A + 2 * PG);
	EQ(v0.start, A);
	EQ(v0.end, A + PG);
	EQ(v0.prot, PROT_RW);
	EQ(v1.start, A + PG);
	EQ(v1.end, A + 2 * PG);
	EQ(v1.prot, PROT_READ);
	EQ(v1.flags & TU_VM_WRITE, 0);
	EQ(v2.start, A + 2 * PG);
	EQ(v2.end, A + 3 * PG);
	EQ(v2.prot, PROT_RW);
	/* split pieces keep the index invariant: pgoff advances with the start */
	EQ(v1.pgoff, v0.pgoff + 1);
	EQ(v2.pgoff, v0.pgoff + 2);

	uint8_t x = 0x55;
	EQ(cowvm_write(t, A + PG, &x, 1), -EFAULT);
	expect_page(t, A + PG, 31);
	write_byte(t, A, x);
	write_byte(t, A + 2 * PG, x);

	EQ(cowvm_mprotect(t, A + PG, PG, PROT_RW), 0);
	CHECK();
	EQ(stats(t).nr_vmas, n0 + 1);
	EQ(vma_at(t, A + PG).start, A);
	EQ(vma_at(t, A + PG).end, A + 3 * PG);
	write_byte(t, A + PG, x);
	for (int i = 0; i < 3; i++) {
		EQ(read_byte(t, A + (uint64_t)i * PG), x);
		expect_page_after(t, A + (uint64_t)i * PG, (uint8_t)(30 + i), 1);
	}
	CHECK();
}

Test(mm, mprotect_prot_none_hides_the_data_and_mprotect_back_shows_it_again)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 1, PROT_RW);
	fill_page(t, a, 5);
	uint64_t pfn = pfn_of(t, a);
	uint8_t buf = 0xEE;

	EQ(cowvm_mprotect(t, a, PG, PROT_NONE), 0);
	CHECK();
	EQ(cowvm_read(t, a, &buf, 1), -EFAULT);
	EQ(cowvm_write(t, a, &buf, 1), -EFAULT);
	EQ(buf, 0xEE);
	EQ(stats(t).rss_anon, 1); /* the page is still there */

	EQ(cowvm_mprotect(t, a, PG, PROT_READ), 0);
	CHECK();
	expect_page(t, a, 5);
	EQ(pfn_of(t, a), pfn);
	CHECK();
}

/*
 *   [A  RW  )[hole )          mprotect(A, 2p, R)
 *   [A  R   )[hole )          -> -ENOMEM, and the mapped prefix was changed (as Linux)
 */
Test(mm, mprotect_over_a_mapping_then_a_hole_changes_the_mapped_prefix_and_returns_enomem)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 1, PROT_RW, MAP_PRIV_ANON);
	write_byte(t, A, 1);

	EQ(cowvm_mprotect(t, A, 2 * PG, PROT_READ), -ENOMEM);
	CHECK();
	EQ(vma_at(t, A).prot, PROT_READ);
	uint8_t x = 2;
	EQ(cowvm_write(t, A, &x, 1), -EFAULT);
	EQ(read_byte(t, A), 1);
	EQ(tu_has_vma_at(t, A + PG), 0);
	CHECK();
}

/*
 *   [A  RW  )[hole  )[A+2p  R  )        munmap(A, 3p): both gone, the hole is no error
 */
Test(mm, munmap_of_a_range_covering_two_vmas_and_a_hole_removes_both)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t n0 = stats(t).nr_vmas;
	map_fixed(t, A, 1, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, A + 2 * PG, 1, PROT_READ, MAP_PRIV_ANON);
	fill_page(t, A, 1);
	expect_zeros(t, A + 2 * PG, PG);
	EQ(stats(t).nr_vmas, n0 + 2);

	EQ(cowvm_munmap(t, A, 3 * PG), 0);
	CHECK();
	EQ(stats(t).nr_vmas, n0);
	EQ(stats(t).rss_anon, 0);
	EQ(stats(t).total_vm, 0);
	uint8_t buf;
	EQ(cowvm_read(t, A, &buf, 1), -EFAULT);
	EQ(cowvm_read(t, A + 2 * PG, &buf, 1), -EFAULT);
	CHECK();
}

/* ---- brk ------------------------------------------------------------------------------------ */

/*
 *   b0 = brk(0)                      the initial break (start of the heap)
 *   brk(b0 + 3p)  [b0 ......... b0+3p)        grow: memory usable
 *   brk(b0 + 1p)  [b0 .. b0+1p)               shrink: the tail is unmapped and freed
 *   brk(b0 + 2p)  [b0 .. b0+1p | zeros )      grow again: the old tail data is gone
 *   brk(b0 + 100)                             an unaligned break maps the whole page
 */
Test(mm, brk_grows_and_shrinks_and_the_heap_behaves_like_anonymous_memory)
{
	cowvm_task_t *t = tu_spawn();
	int64_t b0s = cowvm_brk(t, 0);
	cr_assert(b0s > 0, "brk(0) returned %" PRId64, b0s);
	uint64_t b0 = (uint64_t)b0s;
	EQ(b0 % PG, 0);
	struct cowvm_task_stats s0 = stats(t);
	struct cowvm_vmstat v0 = vmstat();

	EQ(cowvm_brk(t, b0 + 3 * PG), b0 + 3 * PG);
	CHECK();
	EQ(cowvm_brk(t, 0), b0 + 3 * PG);
	EQ(stats(t).nr_vmas, s0.nr_vmas + 1);
	EQ(stats(t).total_vm - s0.total_vm, 3);
	for (int i = 0; i < 3; i++)
		fill_page(t, b0 + (uint64_t)i * PG, (uint8_t)(40 + i));
	CHECK();
	EQ(stats(t).rss_anon - s0.rss_anon, 3);
	EQ(stats(t).min_flt - s0.min_flt, 3);
	struct cowvm_vmstat v1 = vmstat();

	EQ(cowvm_brk(t, b0 + PG), b0 + PG);
	CHECK();
	EQ(stats(t).rss_anon - s0.rss_anon, 1);
	EQ(data_frames_freed(v1, vmstat()), 2);
	uint8_t buf = 0xEE;
	EQ(cowvm_read(t, b0 + PG, &buf, 1), -EFAULT);
	expect_page(t, b0, 40);

	EQ(cowvm_brk(t, b0 + 2 * PG), b0 + 2 * PG);
	CHECK();
	expect_zeros(t, b0 + PG, PG);
	expect_page(t, b0, 40);

	EQ(cowvm_brk(t, b0 + 100), b0 + 100);
	CHECK();
	EQ(cowvm_brk(t, 0), b0 + 100);
	write_byte(t, b0 + PG - 1, 7); /* the break's page is mapped whole */
	EQ(cowvm_read(t, b0 + PG, &buf, 1), -EFAULT);

	EQ(cowvm_brk(t, b0), b0);
	CHECK();
	EQ(stats(t).nr_vmas, s0.nr_vmas);
	EQ(stats(t).rss_anon, s0.rss_anon);
	EQ(stats(t).total_vm, s0.total_vm);
	EQ(cowvm_read(t, b0, &buf, 1), -EFAULT);
	EQ(vmstat().nr_anon_pages, v0.nr_anon_pages);
	CHECK();
}

/* ---- mmap placement ------------------------------------------------------------------------- */

Test(mm, mmap_hint_is_honoured_when_the_range_is_free)
{
	cowvm_task_t *t = tu_spawn();
	const uint64_t hint = 0x300000000ull;
	EQ(cowvm_mmap(t, hint, 2 * PG, PROT_RW, MAP_PRIV_ANON), hint);
	CHECK();
	fill_page(t, hint, 1);
	EQ(vma_at(t, hint).start, hint);
	EQ(vma_at(t, hint).end, hint + 2 * PG);

	/* the same hint again is taken: the kernel picks another place and keeps the old one */
	int64_t b = cowvm_mmap(t, hint, PG, PROT_RW, MAP_PRIV_ANON);
	CHECK();
	cr_assert(b > 0, "mmap with a taken hint returned %" PRId64, b);
	cr_assert((uint64_t)b + PG <= hint || (uint64_t)b >= hint + 2 * PG,
		  "mmap with a taken hint returned %#" PRIx64 ", inside the existing mapping",
		  (uint64_t)b);
	expect_page(t, hint, 1);
	write_byte(t, (uint64_t)b, 2);
	expect_page(t, hint, 1);
	CHECK();
}

Test(mm, mmap_without_a_hint_returns_distinct_ranges_below_the_task_size)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 4, PROT_RW);
	uint64_t b = map_anon(t, 4, PROT_RW);
	cr_assert(a + 4 * PG <= COWVM_TASK_SIZE_MAX && b + 4 * PG <= COWVM_TASK_SIZE_MAX);
	cr_assert(a + 4 * PG <= b || b + 4 * PG <= a, "overlapping mappings %#" PRIx64 " and %#" PRIx64,
		  a, b);
	fill_page(t, a, 1);
	fill_page(t, b, 2);
	expect_page(t, a, 1);
	expect_page(t, b, 2);
	CHECK();
}

/*
 *   [A  data1 |A+1p data2 )      then MAP_FIXED [A, A+1p) again:
 *   [A  zeros |A+1p data2 )      the old page is unmapped and freed
 */
Test(mm, map_fixed_replaces_an_existing_mapping_and_its_old_contents_are_gone)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	fill_page(t, A, 1);
	fill_page(t, A + PG, 2);
	struct cowvm_task_stats s0 = stats(t);
	struct cowvm_vmstat v0 = vmstat();

	map_fixed(t, A, 1, PROT_RW, MAP_PRIV_ANON);
	CHECK();
	EQ(vmstat().nr_free_pages - v0.nr_free_pages, 1);
	EQ(s0.rss_anon - stats(t).rss_anon, 1);
	EQ(stats(t).total_vm, s0.total_vm);
	EQ(pm_present(t, A), 0);
	expect_zeros(t, A, PG);
	expect_page(t, A + PG, 2);

	/* and with another protection: a read-only zero page replaces data 2 */
	map_fixed(t, A + PG, 1, PROT_READ, MAP_PRIV_ANON);
	CHECK();
	expect_zeros(t, A + PG, PG);
	uint8_t x = 1;
	EQ(cowvm_write(t, A + PG, &x, 1), -EFAULT);
	EQ(stats(t).rss_anon, s0.rss_anon - 2);
	CHECK();
}

/* ---- MAP_POPULATE --------------------------------------------------------------------------- */

/* A private writable mapping is populated by write faults through GUP (FOLL_WRITE): every page
 * is a real zeroed page, and each counts as a minor fault of the task. */
Test(mm, map_populate_on_a_private_writable_mapping_faults_in_every_page)
{
	const uint64_t n = 8;
	cowvm_task_t *t = tu_spawn();
	struct cowvm_task_stats s0 = stats(t);
	int64_t a = cowvm_mmap(t, 0, n * PG, PROT_RW, MAP_PRIV_ANON | MAP_POPULATE);
	cr_assert(a > 0, "mmap MAP_POPULATE returned %" PRId64, a);
	CHECK();
	struct cowvm_task_stats s1 = stats(t);
	EQ(s1.rss_anon - s0.rss_anon, n);
	EQ(s1.min_flt - s0.min_flt, n);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = (uint64_t)a + i * PG;
		EQ(pm_present(t, x), 1);
		EQ(pm_exclusive(t, x), 1);
		NE(pfn_of(t, x), zero_pfn());
		EQ(pte_writable(t, x), 1);
	}
	expect_zeros(t, (uint64_t)a, n * PG);
	for (uint64_t i = 0; i < n; i++)
		write_byte(t, (uint64_t)a + i * PG + i, (uint8_t)i);
	EQ(stats(t).min_flt, s1.min_flt);
	CHECK();
}

/* A private read-only mapping is populated by read faults: the zero page everywhere. */
Test(mm, map_populate_on_a_private_read_only_mapping_maps_the_zero_page)
{
	const uint64_t n = 4;
	cowvm_task_t *t = tu_spawn();
	struct cowvm_task_stats s0 = stats(t);
	int64_t a = cowvm_mmap(t, 0, n * PG, PROT_READ, MAP_PRIV_ANON | MAP_POPULATE);
	cr_assert(a > 0, "mmap MAP_POPULATE returned %" PRId64, a);
	CHECK();
	struct cowvm_task_stats s1 = stats(t);
	EQ(s1.rss_anon, s0.rss_anon);
	EQ(s1.min_flt - s0.min_flt, n);
	for (uint64_t i = 0; i < n; i++)
		EQ(pfn_of(t, (uint64_t)a + i * PG), zero_pfn());
	expect_zeros(t, (uint64_t)a, n * PG);
	EQ(stats(t).min_flt, s1.min_flt);
	CHECK();
}

/* ---- the VMA iterator and pgoff --------------------------------------------------------------- */

struct stop_after_one {
	int calls;
};

static int stop_after_one_fn(void *arg, const struct cowvm_vma_info *vma)
{
	(void)vma;
	((struct stop_after_one *)arg)->calls++;
	return 1;
}

/*
 *   [A  R, private )....[A+5p  RW, shared )....[A+10p  RW, private, written  A+12p)
 * mapped in the order: third, first, second.
 */
Test(mm, for_each_vma_lists_the_ranges_in_address_order_with_their_protection)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A + 10 * PG, 2, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, A, 1, PROT_READ, MAP_PRIV_ANON);
	map_fixed(t, A + 5 * PG, 1, PROT_RW, MAP_SHARED_ANON);
	write_byte(t, A + 10 * PG, 1);
	CHECK();

	struct cowvm_vma_info v[16];
	int n = tu_list_vmas(t, v, 16);
	cr_assert(n >= 3 && n <= 16, "%d VMAs", n);
	EQ(n, (int)stats(t).nr_vmas);
	for (int i = 1; i < n; i++)
		cr_assert(v[i - 1].end <= v[i].start, "VMA %d [%#" PRIx64 ", %#" PRIx64
			  ") is not below VMA %d [%#" PRIx64 ", %#" PRIx64 ")", i - 1, v[i - 1].start,
			  v[i - 1].end, i, v[i].start, v[i].end);

	int k = 0;
	while (k < n && v[k].start != A)
		k++;
	cr_assert(k + 2 < n, "the three mappings are not listed together");
	struct {
		uint64_t start, end;
		int prot, shared;
	} want[3] = {
		{ A, A + PG, PROT_READ, 0 },
		{ A + 5 * PG, A + 6 * PG, PROT_RW, 1 },
		{ A + 10 * PG, A + 12 * PG, PROT_RW, 0 },
	};
	for (int i = 0; i < 3; i++) {
		struct cowvm_vma_info *x = &v[k + i];
		EQ(x->start, want[i].start);
		EQ(x->end, want[i].end);
		EQ(x->prot, want[i].prot);
		EQ(x->shared, want[i].shared);
		EQ(x->flags & TU_VM_READ, TU_VM_READ);
		EQ((x->flags & TU_VM_WRITE) != 0, (want[i].prot & PROT_WRITE) != 0);
		EQ((x->flags & TU_VM_SHARED) != 0, want[i].shared);
	}
	EQ(v[k].anon_vma, 0);         /* never faulted */
	NE(v[k + 2].anon_vma, 0);     /* written: anon_vma_prepare ran */

	struct stop_after_one s = { 0 };
	cowvm_for_each_vma(t, stop_after_one_fn, &s);
	EQ(s.calls, 1);
	CHECK();
}

/* do_mmap: a private anonymous mapping gets vm_pgoff = addr >> PAGE_SHIFT, a shared one 0;
 * splitting gives the tail vm_pgoff + offset. */
Test(mm, anonymous_vma_pgoff_is_its_page_number_if_private_and_zero_if_shared)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 3, PROT_RW);
	uint64_t s = map_shared_anon(t, 2, PROT_RW);
	EQ(vma_at(t, a).pgoff, a / PG);
	EQ(vma_at(t, s).pgoff, 0);

	EQ(cowvm_munmap(t, a, PG), 0);
	CHECK();
	EQ(vma_at(t, a + PG).start, a + PG);
	EQ(vma_at(t, a + PG).pgoff, a / PG + 1);
	EQ(cowvm_munmap(t, s, PG), 0);
	CHECK();
	EQ(vma_at(t, s + PG).pgoff, 1);
	CHECK();
}

/* ---- smaps ---------------------------------------------------------------------------------- */

static void expect_smaps(cowvm_task_t *t, uint64_t addr, uint64_t len, struct cowvm_smaps want,
			 const char *why)
{
	struct cowvm_smaps s = smaps(t, addr, len);
	EQ_WHY(s.size, want.size, why);
	EQ_WHY(s.rss, want.rss, why);
	EQ_WHY(s.pss, want.pss, why);
	EQ_WHY(s.shared_clean, want.shared_clean, why);
	EQ_WHY(s.shared_dirty, want.shared_dirty, why);
	EQ_WHY(s.private_clean, want.private_clean, why);
	EQ_WHY(s.private_dirty, want.private_dirty, why);
	EQ_WHY(s.anonymous, want.anonymous, why);
	EQ_WHY(s.swap, 0, why);
}

/*
 * One written page, then fork:   parent ─┐
 *                                         ├─ F   Shared_Dirty 4096, Pss 2048 in each
 *                                 child  ─┘
 * then the parent writes:        parent ── N    Private_Dirty 4096, Pss 4096
 *                                 child  ── F    Private_Dirty 4096, Pss 4096 (refcount 1)
 */
Test(mm, smaps_counts_a_page_shared_by_fork_as_shared_dirty_with_half_the_pss)
{
	const uint64_t P = PG;
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	fill_page(p, a, 1);
	struct cowvm_smaps priv = { .size = P, .rss = P, .pss = P, .private_dirty = P, .anonymous = P };
	struct cowvm_smaps shared = { .size = P, .rss = P, .pss = P / 2, .shared_dirty = P,
				      .anonymous = P };
	expect_smaps(p, a, P, priv, "the parent before fork");

	cowvm_task_t *c = tu_fork(p);
	CHECK();
	expect_smaps(p, a, P, shared, "the parent after fork");
	expect_smaps(c, a, P, shared, "the child after fork");

	write_byte(p, a, 2);
	CHECK();
	expect_smaps(p, a, P, priv, "the parent after its COW copy");
	expect_smaps(c, a, P, priv, "the child after the parent's COW copy");
	CHECK();
}

Test(mm, smaps_does_not_count_the_zero_page)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 2, PROT_RW);
	expect_zeros(t, a, 2 * PG);
	struct cowvm_smaps none = { .size = 2 * PG };
	expect_smaps(t, a, 2 * PG, none, "two pages mapping the zero page");
	EQ(stats(t).rss_anon, 0);

	write_byte(t, a + PG, 1);
	struct cowvm_smaps one = { .size = 2 * PG, .rss = PG, .pss = PG, .private_dirty = PG,
				   .anonymous = PG };
	expect_smaps(t, a, 2 * PG, one, "one zero page and one written page");
	CHECK();
}

/*
 *   [A  3 pages, 1 written )....[A+8p  2 pages, both written )
 * smaps(A+1p, 1p) counts the whole first VMA; smaps(0, 0) is the rollup of both.
 */
Test(mm, smaps_counts_whole_vmas_and_the_rollup_sums_all_of_them)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 3, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, A + 8 * PG, 2, PROT_RW, MAP_PRIV_ANON);
	fill_page(t, A, 1);
	fill_page(t, A + 8 * PG, 2);
	fill_page(t, A + 9 * PG, 3);

	struct cowvm_smaps first = { .size = 3 * PG, .rss = PG, .pss = PG, .private_dirty = PG,
				     .anonymous = PG };
	expect_smaps(t, A + PG, PG, first, "a range inside the first VMA");
	struct cowvm_smaps both = { .size = 5 * PG, .rss = 3 * PG, .pss = 3 * PG,
				    .private_dirty = 3 * PG, .anonymous = 3 * PG };
	expect_smaps(t, A, 10 * PG, both, "a range over both VMAs");

	struct cowvm_smaps roll = smaps(t, 0, 0);
	EQ(roll.rss, 3 * PG);
	EQ(roll.pss, 3 * PG);
	EQ(roll.private_dirty, 3 * PG);
	EQ(roll.size, stats(t).total_vm * PG);
	CHECK();
}
