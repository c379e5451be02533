/*
 * test_swap.c - the swap device, the swap cache, MADV_PAGEOUT, do_swap_page, fork and zap of
 * swap PTEs, reclaim, I/O errors and swapoff.  Every test runs on a small machine with a swap
 * file that cowvm creates; the fixture requires, after every task exited, no frame, no swap slot
 * and no swap-cache page left, the checker clean (it compares each clean cached page with its
 * slot's bytes), and the file unlinked.
 *
 *   A = TU_BASE                                    the tests' mapping, npages pages
 *   |p0|p1|p2|...|      filled with pattern seeds 10 + i
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "testutil.h"

#define PM_SWAP COWVM_PM_SWAP
#define SWP_EXCLUSIVE_BIT 0x8ull /* _PAGE_SWP_EXCLUSIVE = _PAGE_PWT */

static void setup(void)
{
	tu_setup_swap(4ull << 20, 4ull << 20);
}

TestSuite(swap, .init = setup, .fini = tu_teardown);

static struct cowvm_swap_info swapinfo(void)
{
	struct cowvm_swap_info si;
	EQ(cowvm_swap_info(tu_vm, &si), 0);
	return si;
}

static uint64_t map_filled(cowvm_task_t *t, uint64_t npages)
{
	uint64_t a = map_fixed(t, TU_BASE, npages, PROT_RW, MAP_PRIV_ANON);
	for (uint64_t i = 0; i < npages; i++)
		fill_page(t, a + i * PG, (uint8_t)(10 + i));
	return a;
}

static void expect_filled(cowvm_task_t *t, uint64_t a, uint64_t npages)
{
	for (uint64_t i = 0; i < npages; i++)
		expect_page(t, a + i * PG, (uint8_t)(10 + i));
}

static int swapped(cowvm_task_t *t, uint64_t addr)
{
	return (pagemap(t, addr) & PM_SWAP) != 0;
}

static void pageout(cowvm_task_t *t, uint64_t a, uint64_t npages)
{
	EQ(cowvm_madvise(t, a, npages * PG, MADV_PAGEOUT), 0);
	CHECK();
}

Test(swap, pageout_then_read_comes_from_the_swap_cache_as_minor_faults)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 8);
	struct cowvm_vmstat v0 = vmstat();
	pageout(t, a, 8);
	struct cowvm_vmstat v1 = vmstat();
	EQ(v1.pswpout - v0.pswpout, 8);
	for (int i = 0; i < 8; i++) {
		EQ_WHY(swapped(t, a + i * PG), 1, "pagemap bit 62 after PAGEOUT");
		EQ_WHY(pm_present(t, a + i * PG), 0, "not present after PAGEOUT");
		EQ_WHY(cowvm_pte(t, a + i * PG) & SWP_EXCLUSIVE_BIT, SWP_EXCLUSIVE_BIT,
		       "an exclusive page leaves an exclusive swap PTE");
	}
	EQ(stats(t).rss_anon, 0);
	EQ(stats(t).rss_swap, 8);
	EQ(smaps(t, a, 8 * PG).swap, 8 * PG);
	EQ(smaps(t, a, 8 * PG).swap_pss, 8 * PG);
	EQ(swapinfo().used_slots, 8);
	EQ(swapinfo().swap_cache_pages, 8); /* written, still cached (as the host's async write) */
	uint64_t min0 = stats(t).min_flt, maj0 = stats(t).maj_flt;
	expect_filled(t, a, 8);
	CHECK();
	EQ(stats(t).maj_flt - maj0, 0);
	EQ(stats(t).min_flt - min0, 8);
	EQ(vmstat().pswpin - v1.pswpin, 0);
	EQ(stats(t).rss_anon, 8);
	EQ(stats(t).rss_swap, 0);
	/* exclusive and VMA writable: mapped writable at once (Linux 6.x), the write does not fault */
	min0 = stats(t).min_flt;
	write_byte(t, a, 0x77);
	EQ(stats(t).min_flt - min0, 0);
	EQ(read_byte(t, a), 0x77);
	CHECK();
}

Test(swap, read_after_the_cache_was_reclaimed_is_a_major_fault_from_the_file)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 8);
	pageout(t, a, 8);
	EQ(cowvm_reclaim(tu_vm, 64), 8);
	CHECK();
	EQ(swapinfo().swap_cache_pages, 0);
	EQ(swapinfo().used_slots, 8);
	struct cowvm_vmstat v0 = vmstat();
	uint64_t maj0 = stats(t).maj_flt, min0 = stats(t).min_flt;
	expect_filled(t, a, 8);
	CHECK();
	EQ(stats(t).maj_flt - maj0, 8);
	EQ(stats(t).min_flt - min0, 0);
	EQ(vmstat().pswpin - v0.pswpin, 8);
	EQ(vmstat().pgmajfault - v0.pgmajfault, 8);
	/* read in exclusive and written back: the slot stays with the cached clean copy */
	EQ(swapinfo().swap_cache_pages, 8);
	/* a write frees the swap copy (should_try_to_free_swap is for write faults; here the PTE
	 * is writable already, so the page just gets dirty and the cache stays until reclaim) */
	write_byte(t, a, 1);
	EQ(cowvm_reclaim(tu_vm, 64) >= 0, 1);
	CHECK();
}

Test(swap, write_fault_on_a_swap_pte_frees_the_swap_copy)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 4);
	pageout(t, a, 4);
	EQ(cowvm_reclaim(tu_vm, 64), 4);
	for (int i = 0; i < 4; i++)
		write_byte(t, a + i * PG, 0xee);
	CHECK();
	EQ(swapinfo().used_slots, 0);
	EQ(swapinfo().swap_cache_pages, 0);
	for (int i = 0; i < 4; i++) {
		EQ(read_byte(t, a + i * PG), 0xee);
		expect_page_after(t, a + i * PG, (uint8_t)(10 + i), 1);
		EQ(pte_writable(t, a + i * PG), 1);
	}
}

Test(swap, fork_shares_swap_entries_and_clears_the_exclusive_marker)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_filled(p, 4);
	pageout(p, a, 4);
	cowvm_task_t *c = tu_fork(p);
	CHECK();
	for (int i = 0; i < 4; i++) {
		EQ(swapped(p, a + i * PG), 1);
		EQ(swapped(c, a + i * PG), 1);
		EQ(cowvm_pte(p, a + i * PG) & SWP_EXCLUSIVE_BIT, 0);
		EQ(cowvm_pte(c, a + i * PG) & SWP_EXCLUSIVE_BIT, 0);
		EQ(cowvm_pte(p, a + i * PG), cowvm_pte(c, a + i * PG));
	}
	EQ(swapinfo().used_slots, 4);
	EQ(stats(c).rss_swap, 4);
	EQ(smaps(p, a, 4 * PG).swap, 4 * PG);
	EQ(smaps(p, a, 4 * PG).swap_pss, 2 * PG); /* each slot named by two swap PTEs */
	/* child writes page 0: a copy of its own; parent still reads the original */
	write_byte(c, a, 0x55);
	CHECK();
	EQ(read_byte(c, a), 0x55);
	expect_page(p, a, 10);
	/* parent writes page 1 first, child reads page 1 afterwards: the original */
	write_byte(p, a + PG, 0x66);
	CHECK();
	expect_page(c, a + PG, 11);
	EQ(read_byte(p, a + PG), 0x66);
	expect_page_after(p, a + PG, 11, 1);
	/* both read page 2 from the cache: one frame, shared read-only */
	expect_page(p, a + 2 * PG, 12);
	expect_page(c, a + 2 * PG, 12);
	EQ(pfn_of(p, a + 2 * PG), pfn_of(c, a + 2 * PG));
	EQ(pte_writable(p, a + 2 * PG), 0);
	CHECK();
	tu_exit(c);
	CHECK();
	expect_page(p, a + 3 * PG, 13);
	CHECK();
}

Test(swap, reuse_after_the_other_side_exited_frees_the_swap_cache)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_filled(p, 1);
	pageout(p, a, 1);
	cowvm_task_t *c = tu_fork(p);
	tu_exit(c);
	CHECK();
	/* the swap PTE is not exclusive any more: a read maps the cached page read-only */
	expect_page(p, a, 10);
	EQ(pte_writable(p, a), 0);
	EQ(swapinfo().swap_cache_pages, 1);
	/* the write: refcount = mapping + cache, no swap PTE left -> folio_free_swap, reuse */
	struct cowvm_vmstat v0 = vmstat();
	uint64_t pfn = pfn_of(p, a);
	write_byte(p, a, 0x42);
	CHECK();
	EQ(vmstat().pgreuse - v0.pgreuse, 1);
	EQ(vmstat().cow_copies - v0.cow_copies, 0);
	EQ(pfn_of(p, a), pfn);
	EQ(swapinfo().used_slots, 0);
	EQ(swapinfo().swap_cache_pages, 0);
}

Test(swap, child_write_on_a_shared_swap_pte_copies)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_filled(p, 1);
	pageout(p, a, 1);
	EQ(cowvm_reclaim(tu_vm, 8), 1);
	cowvm_task_t *c = tu_fork(p);
	struct cowvm_vmstat v0 = vmstat();
	uint64_t maj0 = stats(c).maj_flt;
	write_byte(c, a, 0x99);
	CHECK();
	EQ(stats(c).maj_flt - maj0, 1);
	EQ(vmstat().cow_copies - v0.cow_copies, 1);
	EQ(swapped(p, a), 1);
	expect_page(p, a, 10);
	EQ(read_byte(c, a), 0x99);
	expect_page_after(c, a, 10, 1);
	CHECK();
}

Test(swap, pageout_skips_pages_another_process_maps)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_filled(p, 2);
	cowvm_task_t *c = tu_fork(p);
	pageout(p, a, 2);
	EQ(swapped(p, a), 0);
	EQ(swapinfo().used_slots, 0);
	tu_exit(c);
	pageout(p, a, 2);
	EQ(swapped(p, a), 1);
	EQ(swapped(p, a + PG), 1);
	expect_filled(p, a, 2);
	CHECK();
}

Test(swap, exit_with_pages_in_swap_frees_every_slot)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_filled(p, 16);
	pageout(p, a, 16);
	cowvm_task_t *c = tu_fork(p);
	EQ(cowvm_reclaim(tu_vm, 8) > 0, 1);
	EQ(swapinfo().used_slots, 16);
	tu_exit(p);
	CHECK();
	EQ(swapinfo().used_slots, 16);
	tu_exit(c);
	CHECK();
	EQ(swapinfo().used_slots, 0);
	EQ(swapinfo().swap_cache_pages, 0);
}

Test(swap, dontneed_of_swapped_pages_frees_the_slots_and_reads_zeros)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 4);
	pageout(t, a, 4);
	EQ(cowvm_reclaim(tu_vm, 2) >= 2, 1); /* reclaim works in batches of 32 */
	EQ(cowvm_madvise(t, a, 4 * PG, MADV_DONTNEED), 0);
	CHECK();
	EQ(stats(t).rss_swap, 0);
	EQ(swapinfo().used_slots, 0);
	EQ(swapinfo().swap_cache_pages, 0);
	expect_zeros(t, a, 4 * PG);
	CHECK();
}

Test(swap, madv_free_drops_swapped_contents)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 2);
	pageout(t, a, 2);
	EQ(cowvm_madvise(t, a, 2 * PG, MADV_FREE), 0);
	CHECK();
	EQ(stats(t).rss_swap, 0);
	EQ(swapinfo().used_slots, 0);
	expect_zeros(t, a, 2 * PG);
}

Test(swap, a_pinned_page_is_never_swapped)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 2);
	cowvm_pin_t *pin = cowvm_pin_user_pages(t, a, 1, COWVM_FOLL_PIN | COWVM_FOLL_LONGTERM);
	TU_ASSERT(pin != NULL, "pin failed");
	pageout(t, a, 2);
	EQ(swapped(t, a), 0);
	EQ(swapped(t, a + PG), 1);
	EQ(cowvm_reclaim(tu_vm, 100) >= 0, 1);
	EQ(swapped(t, a), 0);
	CHECK();
	cowvm_unpin(pin);
	pageout(t, a, 1);
	EQ(swapped(t, a), 1);
	expect_filled(t, a, 2);
	CHECK();
}

Test(swap, a_referenced_page_with_a_get_reference_stays_in_the_cache_coherent)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 1);
	cowvm_pin_t *ref = cowvm_pin_user_pages(t, a, 1, COWVM_FOLL_GET);
	TU_ASSERT(ref != NULL, "FOLL_GET failed");
	uint64_t pfn = cowvm_pin_pfn(ref, 0);
	pageout(t, a, 1);
	EQ(swapped(t, a), 1); /* unmapped, but the reference keeps the frame in the swap cache */
	EQ(cowvm_reclaim(tu_vm, 100), 0);
	CHECK();
	expect_page(t, a, 10);
	EQ(pfn_of(t, a), pfn);
	cowvm_unpin(ref);
	CHECK();
}

Test(swap, the_zero_page_is_never_swapped)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 4, PROT_RW);
	expect_zeros(t, a, 4 * PG);
	pageout(t, a, 4);
	for (int i = 0; i < 4; i++) {
		EQ(swapped(t, a + i * PG), 0);
		EQ(pfn_of(t, a + i * PG), zero_pfn());
	}
	EQ(swapinfo().used_slots, 0);
	EQ(vmstat().pswpout, 0);
}

Test(swap, mlocked_pages_are_never_swapped)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 2);
	EQ(cowvm_mlock(t, a, PG), 0);
	EQ(cowvm_madvise(t, a + PG, PG, MADV_PAGEOUT), 0);
	EQ(cowvm_reclaim(tu_vm, 100) >= 0, 1);
	EQ(swapped(t, a), 0);
	EQ(swapped(t, a + PG), 1);
	CHECK();
}

Test(swap, a_failed_write_keeps_the_page_in_the_swap_cache)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 2);
	EQ(cowvm_fail_swap_io(tu_vm, COWVM_SWAP_FAIL_ENOSPC, 1), 0);
	struct cowvm_vmstat v0 = vmstat();
	pageout(t, a, 1);
	EQ(vmstat().pswpout - v0.pswpout, 0);
	EQ(swapped(t, a), 1); /* unmapped all the same: the data lives in the swap cache */
	EQ(swapinfo().swap_cache_pages, 1);
	CHECK();
	EQ(cowvm_fail_swap_io(tu_vm, COWVM_SWAP_FAIL_SHORT_WRITE, 1), 0);
	pageout(t, a + PG, 1);
	EQ(vmstat().pswpout - v0.pswpout, 0);
	CHECK();
	uint64_t maj0 = stats(t).maj_flt;
	expect_filled(t, a, 2);
	EQ(stats(t).maj_flt - maj0, 0);
	CHECK();
}

Test(swap, a_failed_write_is_retried_by_reclaim)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 1);
	EQ(cowvm_fail_swap_io(tu_vm, COWVM_SWAP_FAIL_ENOSPC, 1), 0);
	pageout(t, a, 1);
	/* the next passes write it and then free it */
	int64_t freed = 0;
	for (int i = 0; i < 4 && !freed; i++)
		freed = cowvm_reclaim(tu_vm, 1);
	EQ(freed, 1);
	CHECK();
	EQ(swapinfo().swap_cache_pages, 0);
	expect_page(t, a, 10);
}

Test(swap, a_failed_read_is_a_sigbus_and_keeps_the_data)
{
	static const int kinds[] = { COWVM_SWAP_FAIL_SHORT_READ, COWVM_SWAP_FAIL_EIO_READ };
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 2);
	for (int k = 0; k < 2; k++) {
		/* the second time the pages are clean copies of their slots: PAGEOUT frees them */
		pageout(t, a, 2);
		cowvm_reclaim(tu_vm, 16);
		EQ(swapinfo().swap_cache_pages, 0);
		EQ(cowvm_fail_swap_io(tu_vm, kinds[k], 1), 0);
		uint8_t b;
		EQ_WHY(cowvm_read(t, a, &b, 1), -EFAULT, "the access that needed the failed read");
		CHECK();
		EQ(swapped(t, a), 1);
		EQ(swapinfo().swap_cache_pages, 0);
		expect_filled(t, a, 2); /* the retry reads it */
		CHECK();
	}
}

Test(swap, a_full_device_leaves_the_rest_in_memory)
{
	cowvm_t *vm = tu_vm; /* replace the fixture's machine by one with a 4-slot device */
	(void)vm;
	tu_teardown();
	tu_setup_swap(4ull << 20, 5 * PG);
	cowvm_task_t *t = tu_spawn();
	EQ(swapinfo().total_slots, 4);
	uint64_t a = map_filled(t, 8);
	pageout(t, a, 8);
	EQ(swapinfo().used_slots, 4);
	EQ(stats(t).rss_swap, 4);
	EQ(stats(t).rss_anon, 4);
	expect_filled(t, a, 8);
	CHECK();
}

Test(swap, a_slot_counts_at_most_swap_map_max_swap_ptes)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_filled(p, 1);
	pageout(p, a, 1);
	int forks = 0;
	cowvm_task_t *c;
	while ((c = tu_try_fork(p)) != NULL)
		forks++;
	EQ(errno, ENOMEM);
	EQ(forks, 0x3e - 1); /* SWAP_MAP_MAX swap PTEs: the parent's and 61 children's */
	CHECK();
	EQ(swapped(p, a), 1);
	expect_page(p, a, 10);
	CHECK();
}

Test(swap, swapoff_brings_every_page_back)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_filled(p, 8);
	pageout(p, a, 8);
	cowvm_task_t *c = tu_fork(p);
	EQ(cowvm_reclaim(tu_vm, 4) >= 4, 1);
	write_byte(c, a + 7 * PG, 0x31);
	uint64_t pmin = stats(p).min_flt, pmaj = stats(p).maj_flt;
	EQ(cowvm_swapoff(tu_vm), 0);
	CHECK();
	EQ(swapinfo().enabled, 0);
	EQ(stats(p).min_flt, pmin);
	EQ(stats(p).maj_flt, pmaj);
	EQ(stats(p).rss_swap, 0);
	EQ(stats(p).rss_anon, 8);
	for (int i = 0; i < 8; i++) {
		EQ(pm_present(p, a + i * PG), 1);
		EQ(pm_present(c, a + i * PG), 1);
	}
	EQ(stats(p).min_flt, pmin); /* pagemap faults nothing in */
	expect_filled(p, a, 8);
	expect_filled(c, a, 7);
	EQ(read_byte(c, a + 7 * PG), 0x31);
	/* without a device, PAGEOUT deactivates only */
	pageout(p, a, 8);
	EQ(swapped(p, a), 0);
	EQ(cowvm_swapoff(tu_vm), -EINVAL);
	CHECK();
}

Test(swap, mremap_moves_swap_ptes)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 4);
	pageout(t, a, 4);
	int64_t b = cowvm_mremap(t, a, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, TU_BASE + (64ull << 20));
	EQ(b, TU_BASE + (64ull << 20));
	CHECK();
	EQ(swapped(t, (uint64_t)b), 1);
	expect_filled(t, (uint64_t)b, 4);
	CHECK();
}

Test(swap, status_and_smaps_text_show_swap)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_filled(t, 3);
	pageout(t, a, 3);
	char buf[8192];
	TU_ASSERT(cowvm_proc_status(t, buf, sizeof buf) > 0, "status");
	TU_ASSERT(strstr(buf, "VmSwap:\t      12 kB") != NULL, "VmSwap line: %s", buf);
	TU_ASSERT(cowvm_proc_smaps(t, buf, sizeof buf) > 0, "smaps");
	TU_ASSERT(strstr(buf, "Swap:                 12 kB") != NULL, "Swap line: %s", buf);
	TU_ASSERT(strstr(buf, "SwapPss:              12 kB") != NULL, "SwapPss line: %s", buf);
	/* pagemap: bit 62 and the type/offset field (type 0, offset << 5) */
	uint64_t pm = pagemap(t, a);
	EQ(pm & COWVM_PM_PRESENT, 0);
	NE(pm & COWVM_PM_PFN_MASK, 0);
	EQ(pm & 0x1f, 0);
}

Test(swap, the_swap_file_is_unlinked_only_when_cowvm_created_it)
{
	char dir[] = "/tmp/cowvm-test-own-XXXXXX";
	TU_ASSERT(mkdtemp(dir) != NULL, "mkdtemp");
	char path[128];
	snprintf(path, sizeof path, "%s/existing", dir);
	int fd = open(path, O_CREAT | O_RDWR, 0600);
	TU_ASSERT(fd >= 0, "open");
	close(fd);
	struct cowvm_config cfg = { .phys_bytes = 1 << 20, .swap_path = path, .swap_bytes = 16 * PG };
	cowvm_t *vm = cowvm_create(&cfg);
	TU_ASSERT(vm != NULL, "create over an existing file: %s", strerror(errno));
	cowvm_destroy(vm);
	EQ(access(path, F_OK), 0);
	unlink(path);
	/* bad configurations */
	cfg.swap_bytes = 3 * PG + 1;
	EQ(cowvm_create(&cfg) == NULL, 1);
	EQ(errno, EINVAL);
	cfg.swap_bytes = 16 * PG;
	cfg.swap_path = dir; /* a directory */
	EQ(cowvm_create(&cfg) == NULL, 1);
	EQ(errno == EISDIR || errno == EINVAL, 1);
	EQ(access(path, F_OK), -1);
	rmdir(dir);
}

/* ---- under pressure: direct reclaim and kswapd ---------------------------------------------- */

static void setup_small(void)
{
	tu_setup_swap(1ull << 20, 16ull << 20); /* 256 frames, 4095 slots */
}

TestSuite(pressure, .init = setup_small, .fini = tu_teardown);

static uint64_t checksum_seed(uint64_t page, uint64_t gen)
{
	return (page * 2654435761u + gen * 40503u) & 0xff;
}

Test(pressure, a_process_touching_four_times_memory_reads_everything_back)
{
	cowvm_task_t *t = tu_spawn();
	const uint64_t npages = 1024; /* 4 MiB on a 1 MiB machine */
	uint64_t a = cowvm_mmap(t, 0, npages * PG, PROT_RW, MAP_PRIV_ANON);
	TU_ASSERT((int64_t)a > 0, "mmap");
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t v = i * 0x9e3779b97f4a7c15ull;
		EQ_WHY(cowvm_store64(t, a + i * PG, v), 0, "first touch under pressure");
		EQ(cowvm_store64(t, a + i * PG + PG - 8, ~v), 0);
	}
	CHECK();
	struct cowvm_vmstat v = vmstat();
	TU_ASSERT(v.pswpout >= npages / 2, "pswpout %" PRIu64, v.pswpout);
	TU_ASSERT(stats(t).rss_swap > 0, "nothing in swap");
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t x, y;
		EQ(cowvm_load64(t, a + i * PG, &x), 0);
		EQ(cowvm_load64(t, a + i * PG + PG - 8, &y), 0);
		EQ_WHY(x, i * 0x9e3779b97f4a7c15ull, "contents after swap-in");
		EQ(y, ~(i * 0x9e3779b97f4a7c15ull));
	}
	CHECK();
	TU_ASSERT(stats(t).maj_flt > 0, "no major fault");
	TU_ASSERT(vmstat().pgsteal_direct + vmstat().pgsteal_kswapd > 0, "no reclaim counted");
}

/*
 * A fork tree over checksummed pages on a machine with a quarter of the memory the tree
 * touches: 4 processes x 192 pages (768 pages) over 256 frames.  Every process writes random
 * pages with a value that depends on (process, page, generation) and remembers it; reads check
 * it.  Reclaim and swap-in run all along; the checker runs every few thousand steps.
 */
Test(pressure, fork_tree_with_random_writes_keeps_every_checksum)
{
	enum { NPROC = 4, NPAGES = 192 };
	static uint64_t want[NPROC][NPAGES];
	cowvm_task_t *task[NPROC];
	task[0] = tu_spawn();
	uint64_t a = map_fixed(task[0], TU_BASE, NPAGES, PROT_RW, MAP_PRIV_ANON);
	for (uint64_t i = 0; i < NPAGES; i++) {
		want[0][i] = checksum_seed(i, 0) | 0x100;
		EQ(cowvm_store64(task[0], a + i * PG, want[0][i]), 0);
	}
	for (int p = 1; p < NPROC; p++) {
		task[p] = tu_fork(task[p / 2]);
		memcpy(want[p], want[p / 2], sizeof want[p]);
	}
	CHECK();
	uint64_t rng = 12345;
	const int steps = 60000;
	for (int s = 1; s <= steps; s++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		int p = (int)((rng >> 33) % NPROC);
		uint64_t i = (rng >> 40) % NPAGES;
		uint64_t x;
		if ((rng >> 20) & 1) {
			want[p][i] = ((uint64_t)s << 16) | ((uint64_t)p << 8) | checksum_seed(i, (uint64_t)s);
			EQ(cowvm_store64(task[p], a + i * PG, want[p][i]), 0);
		} else {
			EQ(cowvm_load64(task[p], a + i * PG, &x), 0);
			EQ_WHY(x, want[p][i], "a page's value after reclaim and swap-in");
		}
		if (s % 7 == 0) /* now and then some advice too */
			EQ(cowvm_madvise(task[p], a + ((rng >> 50) % (NPAGES - 4)) * PG, 4 * PG, MADV_PAGEOUT), 0);
		if (s % 15000 == 0)
			CHECK();
	}
	for (int p = 0; p < NPROC; p++)
		for (uint64_t i = 0; i < NPAGES; i++) {
			uint64_t x;
			EQ(cowvm_load64(task[p], a + i * PG, &x), 0);
			EQ(x, want[p][i]);
		}
	CHECK();
	struct cowvm_vmstat v = vmstat();
	TU_ASSERT(v.pswpin > 1000 && v.pswpout > 1000, "the tree hardly swapped: in %" PRIu64 ", out %" PRIu64,
		  v.pswpin, v.pswpout);
}

Test(pressure, kswapd_starts_and_stops_with_the_machine)
{
	/* a machine with swap has a kswapd that reclaims in the background once free frames fall
	 * below the low watermark; cowvm_destroy stops it.  Ten machines in a row, each under
	 * pressure for a moment. */
	for (int round = 0; round < 10; round++) {
		cowvm_task_t *t = tu_spawn();
		uint64_t a = cowvm_mmap(t, 0, 300 * PG, PROT_RW, MAP_PRIV_ANON);
		for (int i = 0; i < 300; i++)
			EQ(cowvm_store64(t, a + (uint64_t)i * PG, (uint64_t)i), 0);
		for (int i = 0; i < 300; i++) {
			uint64_t x;
			EQ(cowvm_load64(t, a + (uint64_t)i * PG, &x), 0);
			EQ(x, (uint64_t)i);
		}
		CHECK();
		tu_teardown();
		setup_small();
	}
}
