/*
 * test_mremap.c - mremap(2): shrink, grow in place, MREMAP_MAYMOVE, MREMAP_FIXED and
 * MREMAP_DONTUNMAP, with the outcomes, fault counts, sharing and VMA merging recorded from the
 * host kernel (Linux 6.18) with throwaway programs (docs/fidelity.md, "mremap").
 *
 * Layouts at A = TU_BASE; "p" is a page.
 */
#include "testutil.h"

TestSuite(mremap, .init = tu_setup, .fini = tu_teardown);

#define A TU_BASE
#define B (TU_BASE + 0x100000)

static uint64_t faults(cowvm_task_t *t)
{
	struct cowvm_task_stats s = stats(t);
	return s.min_flt + s.maj_flt;
}

struct rmap_seen {
	int n;
	int pid[4];
	uint64_t addr[4];
};

static int rmap_collect(void *arg, int pid, uint64_t addr)
{
	struct rmap_seen *s = arg;
	if (s->n < 4) {
		s->pid[s->n] = pid;
		s->addr[s->n] = addr;
	}
	s->n++;
	return 0;
}

/* [A 4p written) -> shrink to 2p -> grow back to 6p in place: same address, no fault, the
 * grown part demand-zero (host: 0 faults for the mremaps, 1 for the touch). */
Test(mremap, shrink_and_grow_in_place_keep_the_address_and_fault_nothing)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 4; i++)
		fill_page(t, A + i * PG, (uint8_t)i);
	uint64_t f0 = faults(t);
	EQ(cowvm_mremap(t, A, 4 * PG, 2 * PG, 0, 0), A);
	EQ(vma_at(t, A).end, A + 2 * PG);
	EQ(stats(t).rss_anon, 2);
	CHECK();
	EQ(cowvm_mremap(t, A, 2 * PG, 6 * PG, 0, 0), A);
	EQ(vma_at(t, A).end, A + 6 * PG);
	EQ(faults(t), f0);
	expect_page(t, A + PG, 1);
	EQ(pm_present(t, A + 2 * PG), 0);
	expect_zeros(t, A + 5 * PG, PG);
	EQ(faults(t), f0 + 1);
	CHECK();
}

/* A grow blocked by the next VMA is -ENOMEM without MAYMOVE; with it the pages move: the
 * same frames at the new address, no fault to read them, the old range unmapped. */
Test(mremap, a_blocked_grow_moves_with_maymove_taking_the_frames_along)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, A + 2 * PG, 1, PROT_READ, MAP_PRIV_ANON);
	fill_page(t, A, 7);
	fill_page(t, A + PG, 8);
	uint64_t pfn0 = pfn_of(t, A), pfn1 = pfn_of(t, A + PG);
	EQ(cowvm_mremap(t, A, 2 * PG, 4 * PG, 0, 0), -ENOMEM);
	CHECK();
	int64_t n = cowvm_mremap(t, A, 2 * PG, 4 * PG, MREMAP_MAYMOVE, 0);
	TU_ASSERT(n > 0 && (uint64_t)n != A, "moved to %#llx", (unsigned long long)n);
	uint64_t f0 = faults(t);
	EQ(pfn_of(t, (uint64_t)n), pfn0);
	EQ(pfn_of(t, (uint64_t)n + PG), pfn1);
	expect_page(t, (uint64_t)n, 7);
	expect_page(t, (uint64_t)n + PG, 8);
	EQ(faults(t), f0);
	EQ(tu_has_vma_at(t, A), 0);
	EQ(vma_at(t, (uint64_t)n).end, (uint64_t)n + 4 * PG);
	/* the page keeps its rmap index: the moved VMA keeps vm_pgoff */
	EQ(frame(pfn0).index, A >> 12);
	EQ(vma_at(t, (uint64_t)n).pgoff, A >> 12);
	struct rmap_seen seen = { 0 };
	EQ(cowvm_rmap_walk(tu_vm, pfn0, rmap_collect, &seen), 1);
	EQ(seen.addr[0], (uint64_t)n);
	CHECK();
}

/*
 * parent [A 4p written] -> fork -> parent mremap FIXED to B: the child still shares every frame
 * with the parent's new address (host: same pfn in both); rmap finds both mappings at their
 * addresses; afterwards a parent write to a still-shared page copies it, and a write to a page
 * the child has already copied away reuses it.
 */
Test(mremap, moving_cow_shared_pages_keeps_them_shared_with_the_other_process)
{
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, 4, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 4; i++)
		fill_page(p, A + i * PG, (uint8_t)(10 + i));
	cowvm_task_t *c = tu_fork(p);
	uint64_t pfn[4];
	for (int i = 0; i < 4; i++)
		pfn[i] = pfn_of(p, A + i * PG);
	EQ(cowvm_mremap(p, A, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, B), B);
	CHECK();
	for (int i = 0; i < 4; i++) {
		EQ(pfn_of(p, B + i * PG), pfn[i]);
		EQ(pfn_of(c, A + i * PG), pfn[i]);
		EQ(frame(pfn[i]).mapcount, 2);
	}
	struct rmap_seen seen = { 0 };
	EQ(cowvm_rmap_walk(tu_vm, pfn[1], rmap_collect, &seen), 2);
	int pi = seen.pid[0] == cowvm_task_pid(p) ? 0 : 1;
	EQ(seen.pid[pi], cowvm_task_pid(p));
	EQ(seen.addr[pi], B + PG);
	EQ(seen.addr[1 - pi], A + PG);
	write_byte(c, A, 1);            /* the child copies page 0 away */
	uint64_t f0 = faults(p);
	write_byte(p, B + PG, 2);       /* still shared: the parent copies */
	write_byte(p, B, 3);            /* no longer shared: reuse */
	EQ(faults(p), f0 + 2);
	NE(pfn_of(p, B + PG), pfn[1]);
	EQ(pfn_of(p, B), pfn[0]);
	EQ(pfn_of(c, A + PG), pfn[1]);
	expect_page_after(c, A + PG, 11, 0);
	CHECK();
}

/* DONTUNMAP: the pages move, the old VMA stays (flags unchanged, one VMA even when only part
 * of it moved), empty: a read maps the zero page, a write a new page (host). */
Test(mremap, dontunmap_leaves_the_old_range_mapped_and_empty)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 4; i++)
		fill_page(t, A + i * PG, (uint8_t)(20 + i));
	uint64_t pfn2 = pfn_of(t, A + 2 * PG);
	EQ(cowvm_mremap(t, A + PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP | MREMAP_FIXED, B), B);
	CHECK();
	EQ(vma_at(t, A).start, A);
	EQ(vma_at(t, A).end, A + 4 * PG);
	EQ(pfn_of(t, B + PG), pfn2);
	EQ(pm_present(t, A + PG), 0);
	EQ(pm_present(t, A + 2 * PG), 0);
	expect_page(t, A, 20);
	expect_page(t, A + 3 * PG, 23);
	expect_page(t, B, 21);
	uint64_t f0 = faults(t);
	expect_zeros(t, A + PG, PG);
	EQ(pfn_of(t, A + PG), zero_pfn());
	write_byte(t, A + 2 * PG, 5);
	EQ(faults(t), f0 + 2);
	CHECK();
}

/* A VMA moved back next to a neighbour it can merge with (same anon_vma or none, contiguous
 * vm_pgoff) merges, as on the host; growing in place merges with the VMA that follows. */
Test(mremap, moved_and_grown_vmas_merge_as_linux_merges_them)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 4; i++)
		fill_page(t, A + i * PG, (uint8_t)i);
	uint64_t n0 = stats(t).nr_vmas;
	EQ(cowvm_mremap(t, A + 2 * PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, B), B);
	EQ(stats(t).nr_vmas, n0 + 1);
	EQ(cowvm_mremap(t, B, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, A + 2 * PG), A + 2 * PG);
	EQ(stats(t).nr_vmas, n0);
	EQ(vma_at(t, A).end, A + 4 * PG);
	expect_page(t, A + 3 * PG, 3);
	CHECK();

	uint64_t C = TU_BASE + 0x200000;
	map_fixed(t, C, 2, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, C + 4 * PG, 2, PROT_RW, MAP_PRIV_ANON);
	uint64_t n1 = stats(t).nr_vmas;
	EQ(cowvm_mremap(t, C, 2 * PG, 4 * PG, 0, 0), C);
	EQ(stats(t).nr_vmas, n1 - 1);
	EQ(vma_at(t, C).end, C + 6 * PG);
	CHECK();
}

/* Shared anonymous memory: growing in place does not grow the object (a touch beyond it is
 * SIGBUS: -EFAULT); old_len 0 duplicates the mapping onto the same pages. */
Test(mremap, shared_memory_grows_its_vma_not_its_object_and_old_len_0_duplicates_it)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_SHARED_ANON);
	write_byte(t, A, 0x11);
	EQ(cowvm_mremap(t, A, 2 * PG, 4 * PG, 0, 0), A);
	uint8_t b;
	EQ(cowvm_read(t, A + 3 * PG, &b, 1), -EFAULT);
	EQ(cowvm_mremap(t, A, 0, 2 * PG, 0, 0), -ENOMEM);
	int64_t d = cowvm_mremap(t, A, 0, 2 * PG, MREMAP_MAYMOVE, 0);
	TU_ASSERT(d > 0, "dup %lld", (long long)d);
	EQ(read_byte(t, (uint64_t)d), 0x11);
	write_byte(t, (uint64_t)d, 0x22);
	EQ(read_byte(t, A), 0x22);
	EQ(pfn_of(t, A), pfn_of(t, (uint64_t)d));
	CHECK();
}

/* The errno table, as the host gave it (unprivileged). */
Test(mremap, bad_calls_fail_with_linux_errnos_and_change_nothing)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	fill_page(t, A, 1);
	map_fixed(t, A + 4 * PG, 1, PROT_READ, MAP_PRIV_ANON);
	struct tu_state before = state_of(t);
	static const struct {
		uint64_t addr, old_len, new_len;
		int flags;
		uint64_t new_addr;
		int err;
		const char *why;
	} cases[] = {
		{ A + 1, PG, 2 * PG, 0, 0, -EINVAL, "unaligned old address" },
		{ A, PG, 0, 0, 0, -EINVAL, "new length 0" },
		{ A, 0, PG, MREMAP_MAYMOVE, 0, -EINVAL, "old length 0 of a private mapping" },
		{ A, PG, 2 * PG, 8, 0, -EINVAL, "unknown flag" },
		{ A, PG, 2 * PG, MREMAP_FIXED, B, -EINVAL, "FIXED without MAYMOVE" },
		{ A, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, A + PG, -EINVAL, "target overlaps" },
		{ A, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, B + 1, -EINVAL, "unaligned target" },
		{ A, 2 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0, -EINVAL, "DONTUNMAP resizes" },
		{ A, 2 * PG, 2 * PG, MREMAP_DONTUNMAP, 0, -EINVAL, "DONTUNMAP without MAYMOVE" },
		{ B + 0x800000, PG, 2 * PG, MREMAP_MAYMOVE, 0, -EFAULT, "nothing mapped at addr" },
		{ A, 5 * PG, 6 * PG, MREMAP_MAYMOVE, 0, -EFAULT, "old range spans two VMAs" },
		{ A, PG, 1ull << 47, MREMAP_MAYMOVE, 0, -EINVAL, "new length beyond user space" },
		{ A, 1ull << 47, PG, 0, 0, -EFAULT, "old length beyond user space" },
		{ A, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, A, -EINVAL, "onto itself" },
		{ A, PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, (1ull << 47) - PG, -EINVAL, "target beyond" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		EQ_WHY(cowvm_mremap(t, cases[i].addr, cases[i].old_len, cases[i].new_len, cases[i].flags,
				    cases[i].new_addr), cases[i].err, cases[i].why);
		expect_state(t, before, cases[i].why);
	}
	expect_page(t, A, 1);
	CHECK();
}

/* Growing a locked mapping populates the new part (host: 3 faults for 2 -> 5 pages). */
Test(mremap, growing_a_locked_mapping_populates_the_new_pages)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	EQ(cowvm_mlock(t, A, 2 * PG), 0);
	uint64_t f0 = faults(t);
	EQ(cowvm_mremap(t, A, 2 * PG, 5 * PG, 0, 0), A);
	EQ(faults(t), f0 + 3);
	EQ(stats(t).locked_vm, 5);
	for (int i = 0; i < 5; i++)
		EQ(frame(pfn_of(t, A + i * PG)).lru, 3);
	/* DONTUNMAP of a locked mapping: the old VMA is not locked any more, yet VmLck keeps
	 * counting it (host: 20 kB -> 40 kB) */
	EQ(cowvm_mremap(t, A, 5 * PG, 5 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP | MREMAP_FIXED, B), B);
	EQ(stats(t).locked_vm, 10);
	EQ(vma_at(t, A).flags & 0x2000, 0);
	NE(vma_at(t, B).flags & 0x2000, 0);
	CHECK();
	EQ(cowvm_mremap(t, B, 5 * PG, 3 * PG, 0, 0), B);
	EQ(stats(t).locked_vm, 8);
	CHECK();
}

/* Out of frames for the new page tables in the middle of a move: the entries already moved go
 * back, the new VMA goes, -ENOMEM, and everything is as before (move_vma's error path). */
Test(mremap, a_move_that_runs_out_of_page_tables_puts_everything_back)
{
	cowvm_task_t *t = tu_spawn();
	/* 2 MiB-crossing source, so the move needs more than one new PTE table */
	uint64_t src = A + 0x200000 - 2 * PG;
	map_fixed(t, src, 4, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 4; i++)
		fill_page(t, src + i * PG, (uint8_t)(40 + i));
	uint64_t pfn3 = pfn_of(t, src + 3 * PG);
	struct tu_state before = state_of(t);
	uint64_t far = 0x600000000000ull; /* a new PGD entry: PUD, PMD and PTE tables needed */
	int failed = 0;
	for (uint64_t nth = 1; nth <= 6; nth++) {
		EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_NTH, nth), 0);
		int64_t r = cowvm_mremap(t, src, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, far);
		EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_OFF, 0), 0);
		CHECK();
		if (r == (int64_t)far) { /* the n-th allocation was not needed: undo the move */
			EQ(cowvm_mremap(t, far, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, src), src);
			continue;
		}
		EQ_WHY(r, -ENOMEM, "a failed page-table allocation");
		failed++;
		EQ(tu_has_vma_at(t, far), 0);
		EQ(pfn_of(t, src + 3 * PG), pfn3);
		expect_state(t, before, "after a move cut short by -ENOMEM");
		for (int i = 0; i < 4; i++)
			expect_page(t, src + i * PG, (uint8_t)(40 + i));
	}
	TU_ASSERT(failed >= 3, "only %d of the moves met the failure", failed);
	CHECK();
}
