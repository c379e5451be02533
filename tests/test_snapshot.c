/*
 * test_snapshot.c - cowvm_snapshot / cowvm_restore / cowvm_snapshot_free, cowvm_dirty_pages and
 * cowvm_pagemap_range: contents and layout come back, repeatedly and to any of several
 * snapshots; COW, fork, RSS and faults behave afterwards as Linux's would; nothing leaks; bad
 * handles get their errno.  The checker runs after every step (it also proves the dirty log
 * covers every change).
 *
 * Layout (p = 4 KiB page, A = TU_BASE):
 *
 *     A                 A+8p        A+16p              A+32p
 *     |  heap-like, rw  |   buf rw  |  (hole)          |
 */
#include <pthread.h>

#include "testutil.h"

TestSuite(snapshot, .init = tu_setup, .fini = tu_teardown);

#define A TU_BASE

static cowvm_snapshot_t *snap_ok(cowvm_task_t *t)
{
	cowvm_snapshot_t *s = cowvm_snapshot(t);
	cr_assert(s != NULL, "cowvm_snapshot failed: %s", strerror(errno));
	CHECK();
	return s;
}

static void restore_ok(cowvm_task_t *t, cowvm_snapshot_t *s)
{
	EQ(cowvm_restore(t, s), 0);
	CHECK();
}

/* n pages from addr, each with its own seed base + i */
static void fill_pages(cowvm_task_t *t, uint64_t addr, int n, uint8_t base)
{
	for (int i = 0; i < n; i++)
		fill_page(t, addr + (uint64_t)i * PG, (uint8_t)(base + i));
}

static void expect_pages(cowvm_task_t *t, uint64_t addr, int n, uint8_t base)
{
	for (int i = 0; i < n; i++)
		expect_page(t, addr + (uint64_t)i * PG, (uint8_t)(base + i));
}

static int same_vmas(cowvm_task_t *t, const struct cowvm_vma_info *want, int n)
{
	struct cowvm_vma_info got[64];
	int m = tu_list_vmas(t, got, 64);
	if (m != n)
		return 0;
	for (int i = 0; i < n; i++)
		if (got[i].start != want[i].start || got[i].end != want[i].end ||
		    got[i].flags != want[i].flags)
			return 0;
	return 1;
}

/* ---- contents ----------------------------------------------------------------------------- */

Test(snapshot, restore_brings_back_written_pages_and_unmaps_pages_mapped_since)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 16, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 8, 10);
	uint64_t pfn0 = pfn_of(t, A);
	struct tu_state before = state_of(t);
	cowvm_snapshot_t *s = snap_ok(t);

	/* the task's pages are now shared with the snapshot, write-protected, as after fork */
	EQ(pte_writable(t, A), 0);
	EQ(pm_exclusive(t, A), 0);
	EQ(pfn_of(t, A), pfn0);

	fill_pages(t, A, 8, 100);   /* overwrite: 8 COW faults */
	fill_pages(t, A + 8 * PG, 4, 200); /* new pages */
	CHECK();
	EQ(stats(t).rss_anon, 12);
	restore_ok(t, s);
	expect_pages(t, A, 8, 10);
	for (int i = 8; i < 16; i++)
		EQ(pm_present(t, A + i * PG), 0);
	EQ(pfn_of(t, A), pfn0);           /* the snapshot's frame, not a copy */
	EQ(stats(t).rss_anon, 8);
	EQ(state_of(t).nr_vmas, before.nr_vmas);
	expect_zeros(t, A + 8 * PG, 4 * PG);

	/* after restore the page is COW again: a write faults once and copies */
	uint64_t flt = stats(t).min_flt;
	write_byte(t, A, 0x5a);
	EQ(stats(t).min_flt, flt + 1);
	NE(pfn_of(t, A), pfn0);
	EQ(pm_exclusive(t, A), 1);
	restore_ok(t, s);
	expect_page(t, A, 10);
	EQ(cowvm_snapshot_free(s), 0);
	CHECK();
	/* no snapshot: the page is exclusive again once written (reuse, no copy) */
	expect_pages(t, A, 8, 10);
}

Test(snapshot, restore_repeatedly_keeps_frames_and_counters_stable)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 40, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 32, 1);
	cowvm_snapshot_t *s = snap_ok(t);
	uint64_t free0 = vmstat().nr_free_pages;
	for (int it = 0; it < 200; it++) {
		for (int k = 0; k < 5; k++)
			write_byte(t, A + (uint64_t)((it * 7 + k * 13) % 40) * PG, (uint8_t)it);
		EQ(cowvm_restore(t, s), 0);
		if (it % 50 == 0)
			CHECK();
	}
	CHECK();
	expect_pages(t, A, 32, 1);
	expect_zeros(t, A + 32 * PG, 8 * PG); /* pages mapped since are gone */
	EQ(vmstat().nr_free_pages, free0);
	EQ(stats(t).rss_anon, 32);
}

Test(snapshot, several_snapshots_restore_to_any_in_any_order)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 8, 10);
	cowvm_snapshot_t *s1 = snap_ok(t);
	fill_pages(t, A, 4, 20);
	cowvm_snapshot_t *s2 = snap_ok(t);
	fill_pages(t, A + 2 * PG, 6, 30);
	map_fixed(t, A + 8 * PG, 2, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A + 8 * PG, 2, 40);
	cowvm_snapshot_t *s3 = snap_ok(t);

	const cowvm_snapshot_t *order[] = { s1, s3, s2, s2, s1, s1, s3 };
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		fill_pages(t, A, 3, 99); /* something to undo each time */
		restore_ok(t, (cowvm_snapshot_t *)order[i]);
		if (order[i] == s1) {
			expect_pages(t, A, 8, 10);
			EQ(tu_has_vma_at(t, A + 8 * PG), 0);
		} else if (order[i] == s2) {
			expect_pages(t, A, 4, 20);
			expect_pages(t, A + 4 * PG, 4, 14);
			EQ(tu_has_vma_at(t, A + 8 * PG), 0);
		} else {
			expect_pages(t, A, 2, 20);
			expect_pages(t, A + 2 * PG, 6, 30);
			expect_pages(t, A + 8 * PG, 2, 40);
		}
	}
	EQ(cowvm_snapshot_free(s2), 0);
	CHECK();
	restore_ok(t, s1);
	expect_pages(t, A, 8, 10);
	EQ(cowvm_snapshot_free(s1), 0);
	EQ(cowvm_snapshot_free(s3), 0);
	CHECK();
}

/* ---- VMAs ---------------------------------------------------------------------------------- */

Test(snapshot, mmap_munmap_mprotect_mremap_and_brk_after_the_snapshot_are_undone)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 16, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, A + 32 * PG, 4, PROT_READ, MAP_PRIV_ANON);
	fill_pages(t, A, 16, 1);
	uint64_t brk0 = (uint64_t)cowvm_brk(t, 0);
	EQ(cowvm_brk(t, brk0 + 4 * PG), brk0 + 4 * PG);
	write_byte(t, brk0, 7);
	struct cowvm_vma_info want[64];
	int nw = tu_list_vmas(t, want, 64);
	cowvm_snapshot_t *s = snap_ok(t);

	static const char *const what[] = { "mprotect a page in the middle", "munmap a page",
					    "mmap a new mapping", "mremap a range away",
					    "brk grows and shrinks", "everything at once" };
	for (int c = 0; c < 6; c++) {
		const char *why = what[c];
		if (c == 0 || c == 5)
			EQ_WHY(cowvm_mprotect(t, A + 4 * PG, PG, PROT_READ), 0, why);
		if (c == 1 || c == 5)
			EQ_WHY(cowvm_munmap(t, A + 9 * PG, PG), 0, why);
		if (c == 2 || c == 5)
			map_fixed(t, A + 20 * PG, 3, PROT_RW, MAP_PRIV_ANON);
		if (c == 3 || c == 5)
			EQ_WHY(cowvm_mremap(t, A + 12 * PG, 2 * PG, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
					    A + 40 * PG), (int64_t)(A + 40 * PG), why);
		if (c == 4 || c == 5) {
			EQ_WHY(cowvm_brk(t, brk0 + 16 * PG), brk0 + 16 * PG, why);
			write_byte(t, brk0 + 10 * PG, 1);
			EQ_WHY(cowvm_brk(t, brk0 + PG), brk0 + PG, why);
		}
		CHECK();
		EQ_WHY(cowvm_restore(t, s), 0, why);
		CHECK();
		cr_assert(same_vmas(t, want, nw), "%s: the VMAs differ from the snapshot's", why);
		expect_pages(t, A, 16, 1);
		EQ_WHY(cowvm_brk(t, 0), brk0 + 4 * PG, why);
		EQ_WHY(read_byte(t, brk0), 7, why);
		EQ_WHY(pte_writable(t, A + 4 * PG), 0, why);
		write_byte(t, A + 4 * PG, 3); /* writable again, as in the snapshot */
		restore_ok(t, s);
	}
}

Test(snapshot, ten_thousand_iterations_of_vma_changes_do_not_fragment_the_address_space)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 64, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 64, 3);
	uint64_t nvmas = stats(t).nr_vmas;
	cowvm_snapshot_t *s = snap_ok(t);
	uint64_t free0 = vmstat().nr_free_pages;
	for (int it = 0; it < 10000; it++) {
		uint64_t p = (uint64_t)(it * 37 % 62) + 1;
		cowvm_mprotect(t, A + p * PG, PG, PROT_READ);
		cowvm_munmap(t, A + ((p + 5) % 64) * PG, PG);
		write_byte(t, A + ((p + 11) % 64) * PG, (uint8_t)it);
		EQ(cowvm_restore(t, s), 0);
		if (it % 2500 == 0)
			CHECK();
	}
	CHECK();
	EQ(stats(t).nr_vmas, nvmas);
	expect_pages(t, A, 64, 3);
	EQ(vmstat().nr_free_pages, free0);
}

Test(snapshot, a_shared_mapping_comes_back_as_a_mapping_with_its_current_contents)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t sh = map_shared_anon(t, 2, PROT_RW);
	fill_page(t, sh, 5);
	cowvm_snapshot_t *s = snap_ok(t);
	fill_page(t, sh, 6);
	EQ(cowvm_munmap(t, sh, 2 * PG), 0);
	restore_ok(t, s);
	EQ(tu_has_vma_at(t, sh), 1);
	EQ(vma_at(t, sh).flags & TU_VM_SHARED, TU_VM_SHARED);
	expect_page(t, sh, 6); /* shared memory is not rolled back */
}

/* ---- semantics after restore --------------------------------------------------------------- */

Test(snapshot, fork_after_restore_shares_the_snapshot_pages_copy_on_write)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 4, 1);
	cowvm_snapshot_t *s = snap_ok(t);
	fill_pages(t, A, 4, 50);
	restore_ok(t, s);
	cowvm_task_t *c = tu_fork(t);
	CHECK();
	EQ(pfn_of(c, A), pfn_of(t, A));
	fill_page(c, A, 77);
	CHECK();
	expect_page(t, A, 1);
	expect_page(c, A, 77);
	fill_page(t, A + PG, 88);
	expect_page(c, A + PG, 2);
	restore_ok(t, s);
	expect_page(t, A + PG, 2);
	expect_page(c, A, 77);
	/* the child's restore handle is not its parent's */
	EQ(cowvm_restore(c, s), -EINVAL);
	tu_exit(c);
	CHECK();
	expect_pages(t, A, 4, 1);
}

Test(snapshot, a_forked_child_takes_and_restores_its_own_snapshot)
{
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, 4, PROT_RW, MAP_PRIV_ANON);
	fill_pages(p, A, 4, 1);
	cowvm_snapshot_t *ps = snap_ok(p);
	cowvm_task_t *c = tu_fork(p);
	fill_page(c, A, 9);
	cowvm_snapshot_t *cs = snap_ok(c);
	fill_pages(c, A, 4, 60);
	fill_page(p, A + PG, 61);
	restore_ok(c, cs);
	expect_page(c, A, 9);
	expect_pages(c, A + PG, 3, 2);
	expect_page(p, A + PG, 61);
	restore_ok(p, ps);
	expect_pages(p, A, 4, 1);
	expect_page(c, A, 9);
	/* the child exits with its snapshot still held: freed with it */
	tu_exit(c);
	CHECK();
	restore_ok(p, ps);
	expect_pages(p, A, 4, 1);
}

struct thread_arg {
	cowvm_task_t *t;
	cowvm_snapshot_t *s;
	int ret;
};

static void *restore_thread(void *arg)
{
	struct thread_arg *a = arg;
	a->ret = cowvm_restore(a->t, a->s);
	return NULL;
}

Test(snapshot, another_thread_of_the_process_may_restore)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 2, 1);
	cowvm_snapshot_t *s = snap_ok(t);
	cowvm_task_t *th = tu_clone_thread(t);
	fill_pages(t, A, 2, 40);
	struct thread_arg a = { th, s, -1 };
	pthread_t pt;
	EQ(pthread_create(&pt, NULL, restore_thread, &a), 0);
	pthread_join(pt, NULL);
	EQ(a.ret, 0);
	CHECK();
	expect_pages(t, A, 2, 1);
}

/* ---- lifetime and errors ------------------------------------------------------------------- */

Test(snapshot, freeing_a_snapshot_gives_its_frames_back)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 8, 1);
	uint64_t free0 = vmstat().nr_free_pages;
	cowvm_snapshot_t *s = snap_ok(t);
	fill_pages(t, A, 8, 2);
	/* 8 copies + the image's page tables */
	cr_assert(vmstat().nr_free_pages < free0 - 8);
	EQ(cowvm_snapshot_free(s), 0);
	CHECK();
	EQ(vmstat().nr_free_pages, free0);
	expect_pages(t, A, 8, 2);
}

Test(snapshot, bad_handles_get_their_errno_and_change_nothing)
{
	cowvm_task_t *t = tu_spawn(), *u = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 2, 1);
	errno = 0;
	cr_assert(cowvm_snapshot(NULL) == NULL);
	EQ(errno, EINVAL);
	cowvm_snapshot_t *s = snap_ok(t);
	uint64_t addr;
	EQ(cowvm_restore(NULL, s), -EINVAL);
	EQ(cowvm_restore(t, NULL), -EINVAL);
	EQ(cowvm_restore(u, s), -EINVAL);
	EQ(cowvm_dirty_pages(u, s, &addr, 1), -EINVAL);
	EQ(cowvm_dirty_pages(t, s, NULL, 1), -EINVAL);
	EQ(cowvm_snapshot_free(NULL), -EINVAL);
	fill_page(t, A, 3);
	EQ(cowvm_snapshot_free(s), 0);
	struct tu_state st = state_of(t);
	EQ(cowvm_restore(t, s), -ENOENT);
	EQ(cowvm_dirty_pages(t, s, &addr, 1), -ENOENT);
	EQ(cowvm_snapshot_free(s), -ENOENT);
	CHECK();
	expect_state(t, st, "restore with a freed handle");
	expect_page(t, A, 3);
	EQ(cowvm_pagemap_range(NULL, A, 1, &addr), -EINVAL);
	EQ(cowvm_pagemap_range(t, A, 1, NULL), -EINVAL);
	EQ(cowvm_pagemap_range(t, COWVM_TASK_SIZE_MAX - PG, 2, (uint64_t[2]){ 0 }), -EINVAL);
}

Test(snapshot, a_process_with_pinned_pages_is_refused_with_ebusy)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 2, 1);
	cowvm_pin_t *pin = cowvm_pin_user_pages(t, A, 1, COWVM_FOLL_PIN | COWVM_FOLL_WRITE);
	cr_assert(pin != NULL);
	struct tu_state st = state_of(t);
	errno = 0;
	cr_assert(cowvm_snapshot(t) == NULL);
	EQ(errno, EBUSY);
	CHECK();
	expect_state(t, st, "a refused snapshot");
	cowvm_unpin(pin);
	cowvm_snapshot_t *s = snap_ok(t);
	/* a pin taken after the snapshot breaks COW first; restore drops the pinned copy from
	 * the process (the pin keeps its page), as MADV_DONTNEED would */
	pin = cowvm_pin_user_pages(t, A, 1, COWVM_FOLL_PIN | COWVM_FOLL_WRITE);
	cr_assert(pin != NULL);
	cowvm_pin_write(pin, 0, "x", 1);
	restore_ok(t, s);
	expect_page(t, A, 1);
	cowvm_unpin(pin);
	CHECK();
}

Test(snapshot, destroying_the_machine_frees_snapshots_of_live_tasks)
{
	/* tu_teardown exits every task with its snapshots held and checks for leaks */
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 4, 1);
	snap_ok(t);
	fill_pages(t, A, 2, 9);
	cowvm_snapshot_t *s2 = snap_ok(t);
	cowvm_snapshot_free(s2);
	snap_ok(t);
}

Test(snapshot, restore_under_allocation_failure_leaves_a_consistent_task_finished_later)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 8, 1);
	cowvm_snapshot_t *s = snap_ok(t);
	for (uint64_t n = 0; n < 12; n++) {
		EQ(cowvm_munmap(t, A + 2 * PG, 4 * PG), 0);
		map_fixed(t, A + 40 * PG, 1, PROT_RW, MAP_PRIV_ANON);
		write_byte(t, A + 40 * PG, 1);
		fill_page(t, A, 50);
		cowvm_fail_alloc(tu_vm, COWVM_FAIL_NTH, n + 1);
		int r = cowvm_restore(t, s);
		cowvm_fail_alloc(tu_vm, COWVM_FAIL_OFF, 0);
		cr_assert(r == 0 || r == -ENOMEM, "restore returned %d", r);
		CHECK();
		restore_ok(t, s);
		expect_pages(t, A, 8, 1);
		EQ(tu_has_vma_at(t, A + 40 * PG), 0);
	}
}

/* ---- what changed --------------------------------------------------------------------------- */

Test(snapshot, dirty_pages_lists_written_mapped_and_unmapped_pages_in_order)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 16, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 8, 1);
	cowvm_snapshot_t *s = snap_ok(t);
	uint64_t got[32];
	EQ(cowvm_dirty_pages(t, s, got, 32), 0);
	write_byte(t, A + 5 * PG, 1);
	write_byte(t, A + 2 * PG, 1);
	write_byte(t, A + 2 * PG + 9, 1); /* the same page again: no new fault, listed once */
	write_byte(t, A + 12 * PG, 1);    /* a page mapped since */
	(void)read_byte(t, A + 13 * PG);  /* a read maps the zero page: not a change */
	EQ(cowvm_madvise(t, A + 7 * PG, PG, MADV_DONTNEED), 0); /* dropped */
	uint64_t want[] = { A + 2 * PG, A + 5 * PG, A + 7 * PG, A + 12 * PG };
	EQ(cowvm_dirty_pages(t, s, got, 32), 4);
	for (int i = 0; i < 4; i++)
		EQ(got[i], want[i]);
	EQ(cowvm_dirty_pages(t, s, got, 2), 4); /* the count, the first two filled */
	EQ(cowvm_dirty_pages(t, s, NULL, 0), 4);
	/* a second snapshot becomes the base; the first answers by comparing everything */
	cowvm_snapshot_t *s2 = snap_ok(t);
	EQ(cowvm_dirty_pages(t, s2, got, 32), 0);
	memset(got, 0, sizeof(got));
	EQ(cowvm_dirty_pages(t, s, got, 32), 4);
	for (int i = 0; i < 4; i++)
		EQ(got[i], want[i]);
	restore_ok(t, s);
	EQ(cowvm_dirty_pages(t, s, got, 32), 0);
	EQ(cowvm_dirty_pages(t, s2, got, 32), 4);
}

Test(snapshot, pagemap_range_equals_one_pagemap_call_per_page)
{
	cowvm_task_t *t = tu_spawn();
	/* [A-4p, A) hole, [A, A+600p) rw across a table boundary, [A+600p, A+602p) shared */
	map_fixed(t, A, 600, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, A + 600 * PG, 2, PROT_RW, MAP_SHARED_ANON);
	for (int i = 0; i < 602; i += 3)
		write_byte(t, A + (uint64_t)i * PG, 1);
	(void)read_byte(t, A + PG);
	cowvm_task_t *c = tu_fork(t);
	write_byte(c, A + 3 * PG, 2);
	static uint64_t words[610];
	EQ(cowvm_pagemap_range(t, A - 4 * PG + 123, 610, words), 0);
	for (int i = 0; i < 610; i++)
		EQ_WHY(words[i], pagemap(t, A - 4 * PG + (uint64_t)i * PG), "page i");
	EQ(cowvm_pagemap_range(t, A, 0, NULL), 0);
}

/* ---- with swap and memory cgroups ------------------------------------------------------------
 * The snapshot's image maps its frames as a fork child would, so its swap PTEs count in the
 * slots' swap_map; reclaim never unmaps an image PTE (try_to_unmap_one refuses snapshot mms),
 * but it may turn the task's PTE of a page both map into a swap PTE, and swapoff brings the
 * image's swap PTEs back in.  The fixture requires no frame, slot or swap-cache page left. */

static void setup_swap(void)
{
	tu_setup_swap(4ull << 20, 4ull << 20);
}

TestSuite(snapshot_swap, .init = setup_swap, .fini = tu_teardown);

static void pageout_ok(cowvm_task_t *t, uint64_t a, uint64_t npages)
{
	EQ(cowvm_madvise(t, a, npages * PG, MADV_PAGEOUT), 0);
	CHECK();
}

static int swapped(cowvm_task_t *t, uint64_t addr)
{
	return (pagemap(t, addr) & COWVM_PM_SWAP) != 0;
}

Test(snapshot_swap, pages_swapped_out_at_snapshot_time_come_back)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 8, 10);
	pageout_ok(t, A, 8);
	for (int i = 0; i < 8; i++)
		EQ_WHY(swapped(t, A + i * PG), 1, "swapped before the snapshot");
	cowvm_snapshot_t *s = snap_ok(t);
	EQ(stats(t).rss_swap, 8);
	for (int round = 0; round < 3; round++) {
		fill_pages(t, A, 3, 50); /* swap-in, then COW: the image holds the swap entries */
		expect_pages(t, A + 3 * PG, 2, 13); /* read in from the swap cache */
		CHECK();
		int64_t nd = cowvm_dirty_pages(t, s, NULL, 0);
		TU_ASSERT(nd >= 3, "dirty pages %lld", (long long)nd);
		restore_ok(t, s);
		expect_pages(t, A, 8, 10);
		CHECK();
		EQ(cowvm_dirty_pages(t, s, NULL, 0), 0);
	}
	pageout_ok(t, A, 8);
	restore_ok(t, s);
	expect_pages(t, A, 8, 10);
	EQ(cowvm_snapshot_free(s), 0);
	CHECK();
	expect_pages(t, A, 8, 10);
}

Test(snapshot_swap, pages_swapped_out_after_the_snapshot_are_put_back)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 8, 10);
	cowvm_snapshot_t *s = snap_ok(t);
	fill_pages(t, A, 4, 60);   /* the task's own copies now */
	pageout_ok(t, A, 8);       /* those 4 go to swap; the 4 the image shares stay */
	for (int i = 0; i < 4; i++)
		EQ_WHY(swapped(t, A + i * PG), 1, "an exclusive copy is swapped");
	EQ(stats(t).rss_swap, 4);
	restore_ok(t, s);
	EQ(stats(t).rss_swap, 0);
	expect_pages(t, A, 8, 10);
	struct cowvm_swap_info si;
	EQ(cowvm_swap_info(tu_vm, &si), 0);
	EQ_WHY(si.used_slots, 0, "the swapped copies' slots are freed by restore");
	fill_pages(t, A + 4 * PG, 4, 70);
	restore_ok(t, s);
	expect_pages(t, A, 8, 10);
}

Test(snapshot_swap, swapoff_brings_the_snapshots_swap_entries_in)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 8, 10);
	pageout_ok(t, A, 8);
	cowvm_snapshot_t *s = snap_ok(t);
	fill_pages(t, A, 2, 80);
	EQ(cowvm_swapoff(tu_vm), 0);
	CHECK();
	expect_pages(t, A, 2, 80);
	restore_ok(t, s);
	expect_pages(t, A, 8, 10);
	fill_pages(t, A + 6 * PG, 2, 90);
	restore_ok(t, s);
	expect_pages(t, A, 8, 10);
}

/* A small machine: reclaim under pressure turns the task's PTEs of pages the snapshot shares
 * into swap PTEs (the image keeps its mapping, so the page stays in the swap cache). */
static void setup_small_swap(void)
{
	tu_setup_swap(1ull << 20, 16ull << 20); /* 256 frames */
}

TestSuite(snapshot_pressure, .init = setup_small_swap, .fini = tu_teardown);

Test(snapshot_pressure, restore_under_reclaim_keeps_every_page)
{
	cowvm_task_t *t = tu_spawn();
	const uint64_t n = 96;
	uint64_t a = map_fixed(t, A, n, PROT_RW, MAP_PRIV_ANON);
	for (uint64_t i = 0; i < n; i++)
		EQ(cowvm_store64(t, a + i * PG, i * 77 + 1), 0);
	cowvm_snapshot_t *s = snap_ok(t);
	uint64_t b = cowvm_mmap(t, 0, 512 * PG, PROT_RW, MAP_PRIV_ANON); /* twice the machine */
	TU_ASSERT((int64_t)b > 0, "mmap");
	for (int round = 0; round < 4; round++) {
		for (uint64_t i = 0; i < n; i += 3)
			EQ(cowvm_store64(t, a + i * PG, 0xdead0000 + i), 0);
		for (uint64_t i = 0; i < 512; i++)
			EQ(cowvm_store64(t, b + i * PG, i), 0);
		CHECK();
		restore_ok(t, s);
		for (uint64_t i = 0; i < n; i++) {
			uint64_t x;
			EQ(cowvm_load64(t, a + i * PG, &x), 0);
			EQ_WHY(x, i * 77 + 1, "the snapshot's value after restore under pressure");
		}
		EQ_WHY(tu_has_vma_at(t, b), 0, "the mapping made since is gone");
		b = cowvm_mmap(t, 0, 512 * PG, PROT_RW, MAP_PRIV_ANON);
		TU_ASSERT((int64_t)b > 0, "mmap");
		CHECK();
	}
	TU_ASSERT(vmstat().pswpout > 0, "no swap-out happened: the test did not test");
	EQ(cowvm_snapshot_free(s), 0);
	CHECK();
}

/* Memory cgroups: the image's frames stay charged where they were allocated (as a fork child's
 * shared pages); a restore charges nothing new, and the copies it drops are uncharged. */
TestSuite(snapshot_memcg, .init = tu_setup, .fini = tu_teardown);

static uint64_t cg_current(cowvm_cgroup_t *cg)
{
	struct cowvm_cgroup_info ci;
	EQ(cowvm_cgroup_info(cg, &ci), 0);
	return ci.current;
}

Test(snapshot_memcg, restore_uncharges_the_copies_and_charges_nothing)
{
	cowvm_task_t *t = tu_spawn();
	cowvm_cgroup_t *cg = cowvm_cgroup_create(cowvm_cgroup_root(tu_vm), "fuzz");
	TU_ASSERT(cg != NULL, "cgroup");
	EQ(cowvm_cgroup_attach(cg, t), 0);
	map_fixed(t, A, 16, PROT_RW, MAP_PRIV_ANON);
	fill_pages(t, A, 16, 10);
	EQ(cg_current(cg), 16 * PG);
	cowvm_snapshot_t *s = snap_ok(t);
	EQ_WHY(cg_current(cg), 16 * PG, "a snapshot shares, it does not charge");
	for (int round = 0; round < 3; round++) {
		fill_pages(t, A, 5, 40);
		EQ_WHY(cg_current(cg), 21 * PG, "each COW copy is charged");
		restore_ok(t, s);
		EQ_WHY(cg_current(cg), 16 * PG, "restore frees and uncharges the copies");
		expect_pages(t, A, 16, 10);
	}
	/* a limit the copies hit: the faults reclaim or fail, restore still works */
	EQ(cowvm_cgroup_set(cg, COWVM_CGROUP_MEMORY_MAX, 18 * PG), 0);
	EQ(cowvm_restore(t, s), 0);
	CHECK();
	EQ(cowvm_snapshot_free(s), 0);
	EQ_WHY(cg_current(cg), 16 * PG, "freeing the snapshot leaves the task's pages charged");
	tu_exit(t);
	EQ(cg_current(cg), 0);
	EQ(cowvm_cgroup_destroy(cg), 0);
}
