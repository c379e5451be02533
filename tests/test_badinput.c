/*
 * test_badinput.c - every public call given bad input returns Linux's errno and changes nothing.
 *
 * Each case is one Test (its name is the sentence) run against this layout in one process t:
 *
 *   A+0p    A+1p    A+2p    A+3p    A+4p                    A+7p    A+8p
 *   [ rw 1 | rw 2  ][ ro 3 ][ none ]  ....... hole .......   [ sh 4 ]  hole ...
 *    private RW,     private, PROT_NONE                        MAP_SHARED RW,
 *    both written    written,                                  written
 *                    then R
 *
 * (n = the pattern seed the page was filled with; A = TU_BASE, 2 MiB aligned; nothing else is
 * mapped within 2 MiB of A.)
 *
 * After the call: the result is the expected errno (or value), the checker is clean, and the
 * process's VMAs, RSS, total_vm, fault count, the machine's free frames and every page's
 * contents are what they were.  A call that fails must not have faulted anything in either:
 * Linux counts no minor fault for an access that fails the VMA checks.
 *
 * The errnos are Linux's (mm/mmap.c do_mmap and __get_unmapped_area, mm/mprotect.c,
 * mm/madvise.c, do_vmi_munmap), checked on the host kernel.
 */
#include "testutil.h"

#include <stdlib.h>

TestSuite(badinput, .init = tu_setup, .fini = tu_teardown);

#define A TU_BASE
#define RW0 (A)
#define RW1 (A + PG)
#define RO (A + 2 * PG)
#define NONE (A + 3 * PG)
#define HOLE (A + 4 * PG) /* 3 pages of hole */
#define SH (A + 7 * PG)
#define AFTER (A + 8 * PG) /* hole up to A + 2 MiB at least */

#define NON_CANONICAL_LOW 0x0000800000000000ull /* bit 47 set, bits 48..63 clear */
#define NON_CANONICAL_HIGH 0x8000000000000000ull
#define KERNEL_ADDRESS 0xffff800000000000ull /* canonical, but not a user address */

struct layout {
	cowvm_task_t *t;
	uint64_t brk0;
	int nr_vmas;
	struct cowvm_vma_info vmas[16];
};
static struct layout L;

static cowvm_task_t *build_layout(void)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, RW0, 2, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, RO, 1, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, NONE, 1, PROT_NONE, MAP_PRIV_ANON);
	map_fixed(t, SH, 1, PROT_RW, MAP_SHARED_ANON);
	fill_page(t, RW0, 1);
	fill_page(t, RW1, 2);
	fill_page(t, RO, 3);
	fill_page(t, SH, 4);
	cr_assert_eq(cowvm_mprotect(t, RO, PG, PROT_READ), 0);
	CHECK();
	L.t = t;
	L.brk0 = (uint64_t)cowvm_brk(t, 0);
	L.nr_vmas = tu_list_vmas(t, L.vmas, 16);
	cr_assert(L.nr_vmas >= 4 && L.nr_vmas <= 16, "layout has %d VMAs", L.nr_vmas);
	return t;
}

static void expect_layout_intact(const char *why)
{
	cowvm_task_t *t = L.t;
	struct cowvm_vma_info now[16];
	int n = tu_list_vmas(t, now, 16);
	EQ_WHY(n, L.nr_vmas, why);
	for (int i = 0; i < n; i++) {
		EQ_WHY(now[i].start, L.vmas[i].start, why);
		EQ_WHY(now[i].end, L.vmas[i].end, why);
		EQ_WHY(now[i].prot, L.vmas[i].prot, why);
		EQ_WHY(now[i].flags, L.vmas[i].flags, why);
		EQ_WHY(now[i].pgoff, L.vmas[i].pgoff, why);
	}
	expect_page(t, RW0, 1);
	expect_page(t, RW1, 2);
	expect_page(t, RO, 3);
	expect_page(t, SH, 4);
	EQ_WHY(cowvm_brk(t, 0), (int64_t)L.brk0, why);
}

/* The case runner.  `want` and `expr` are evaluated after the layout is built, with t, buf
 * (64 bytes of 0xEE) and v64 in scope. */
#define BAD(name, want, expr)                                                                  \
	Test(badinput, name)                                                                   \
	{                                                                                      \
		cowvm_task_t *t = build_layout();                                              \
		uint8_t buf[64];                                                               \
		uint64_t v64 = 0;                                                              \
		memset(buf, 0xEE, sizeof buf);                                                 \
		struct tu_state before_ = state_of(t);                                         \
		int64_t want_ = (int64_t)(want);                                               \
		int64_t got_ = (int64_t)(expr);                                                \
		(void)v64;                                                                     \
		finish_case(#name, #expr, got_, want_, before_, buf, sizeof buf);             \
	}

static void finish_case(const char *name, const char *expr, int64_t got, int64_t want,
			struct tu_state before, const uint8_t *buf, size_t len)
{
	cr_assert(got == want, "%s: %s returned %" PRId64 ", expected %" PRId64, name, expr, got,
		  want);
	CHECK();
	expect_state(L.t, before, name);
	for (size_t i = 0; i < len; i++)
		cr_assert(buf[i] == 0xEE, "%s: byte %zu of the caller's buffer was changed to %#x",
			  name, i, buf[i]);
	expect_layout_intact(name);
	CHECK();
}

/* ---- mmap ----------------------------------------------------------------------------------- */

BAD(mmap_of_length_zero_is_einval, -EINVAL, cowvm_mmap(t, 0, 0, PROT_RW, MAP_PRIV_ANON))
BAD(mmap_with_neither_map_private_nor_map_shared_is_einval, -EINVAL,
    cowvm_mmap(t, 0, PG, PROT_RW, MAP_ANONYMOUS))
BAD(mmap_with_both_map_private_and_map_shared_is_einval, -EINVAL,
    cowvm_mmap(t, 0, PG, PROT_RW, MAP_ANONYMOUS | MAP_PRIVATE | MAP_SHARED))
BAD(mmap_private_without_map_anonymous_is_ebadf, -EBADF, cowvm_mmap(t, 0, PG, PROT_RW, MAP_PRIVATE))
BAD(mmap_shared_without_map_anonymous_is_ebadf, -EBADF, cowvm_mmap(t, 0, PG, PROT_RW, MAP_SHARED))
BAD(mmap_fixed_at_an_unaligned_address_is_einval, -EINVAL,
    cowvm_mmap(t, AFTER + 1, PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED))
BAD(mmap_fixed_at_an_unaligned_address_over_a_mapping_is_einval_and_keeps_it, -EINVAL,
    cowvm_mmap(t, RW0 + 8, PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED))
BAD(mmap_of_2_to_the_48_bytes_is_enomem, -ENOMEM,
    cowvm_mmap(t, 0, 1ull << 48, PROT_RW, MAP_PRIV_ANON))
BAD(mmap_of_minus_4096_bytes_is_enomem, -ENOMEM,
    cowvm_mmap(t, 0, (uint64_t)-4096, PROT_RW, MAP_PRIV_ANON))
BAD(mmap_of_minus_1_bytes_whose_page_rounding_wraps_to_zero_is_enomem, -ENOMEM,
    cowvm_mmap(t, 0, (uint64_t)-1, PROT_RW, MAP_PRIV_ANON))
BAD(mmap_fixed_ending_above_the_task_size_is_enomem, -ENOMEM,
    cowvm_mmap(t, COWVM_TASK_SIZE_MAX - PG, 2 * PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED))
BAD(mmap_fixed_at_the_task_size_is_enomem, -ENOMEM,
    cowvm_mmap(t, COWVM_TASK_SIZE_MAX, PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED))
BAD(mmap_fixed_noreplace_over_an_existing_mapping_is_eexist, -EEXIST,
    cowvm_mmap(t, RW0, PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED_NOREPLACE))
BAD(mmap_fixed_noreplace_over_a_mapping_and_the_hole_after_it_is_eexist, -EEXIST,
    cowvm_mmap(t, SH, 2 * PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED_NOREPLACE))
BAD(mmap_fixed_noreplace_over_a_hole_and_the_shared_mapping_after_it_is_eexist, -EEXIST,
    cowvm_mmap(t, SH - PG, 2 * PG, PROT_RW, MAP_SHARED_ANON | MAP_FIXED_NOREPLACE))

/* ---- mprotect ------------------------------------------------------------------------------- */

BAD(mprotect_with_an_unknown_prot_bit_is_einval, -EINVAL,
    cowvm_mprotect(t, RW0, PG, PROT_READ | 0x100))
BAD(mprotect_at_an_unaligned_address_is_einval, -EINVAL, cowvm_mprotect(t, RW0 + 1, PG, PROT_READ))
BAD(mprotect_of_length_zero_does_nothing_and_succeeds, 0, cowvm_mprotect(t, RW0, 0, PROT_READ))
BAD(mprotect_of_a_hole_is_enomem, -ENOMEM, cowvm_mprotect(t, HOLE, 3 * PG, PROT_READ))
BAD(mprotect_of_length_minus_4096_is_enomem, -ENOMEM,
    cowvm_mprotect(t, RW0, (uint64_t)-4096, PROT_READ))
BAD(mprotect_at_the_task_size_is_enomem, -ENOMEM,
    cowvm_mprotect(t, COWVM_TASK_SIZE_MAX, PG, PROT_READ))

/* ---- munmap --------------------------------------------------------------------------------- */

BAD(munmap_of_length_zero_is_einval, -EINVAL, cowvm_munmap(t, RW0, 0))
BAD(munmap_at_an_unaligned_address_is_einval, -EINVAL, cowvm_munmap(t, RW0 + 1, PG))
BAD(munmap_at_the_task_size_is_einval, -EINVAL, cowvm_munmap(t, COWVM_TASK_SIZE_MAX, PG))
BAD(munmap_of_a_range_ending_beyond_the_task_size_is_einval, -EINVAL,
    cowvm_munmap(t, COWVM_TASK_SIZE_MAX - PG, 2 * PG))
BAD(munmap_of_length_minus_4096_is_einval, -EINVAL, cowvm_munmap(t, RW0, (uint64_t)-4096))
BAD(munmap_of_a_hole_succeeds_and_changes_nothing, 0, cowvm_munmap(t, HOLE, 3 * PG))

/* ---- madvise -------------------------------------------------------------------------------- */

BAD(madvise_with_unknown_advice_999_is_einval, -EINVAL, cowvm_madvise(t, RW0, PG, 999))
BAD(madvise_at_an_unaligned_address_is_einval, -EINVAL,
    cowvm_madvise(t, RW0 + 1, PG, MADV_DONTNEED))
BAD(madvise_of_length_zero_does_nothing_and_succeeds, 0, cowvm_madvise(t, RW0, 0, MADV_DONTNEED))
BAD(madvise_of_a_hole_is_enomem, -ENOMEM, cowvm_madvise(t, HOLE, 3 * PG, MADV_DONTNEED))
BAD(madvise_of_length_minus_4096_is_einval, -EINVAL,
    cowvm_madvise(t, RW0, (uint64_t)-4096, MADV_DONTNEED))
BAD(madv_wipeonfork_on_a_shared_mapping_is_einval, -EINVAL,
    cowvm_madvise(t, SH, PG, MADV_WIPEONFORK))

/* ---- user accesses -------------------------------------------------------------------------- */

BAD(read_of_unmapped_memory_is_efault, -EFAULT, cowvm_read(t, HOLE, buf, 8))
BAD(write_of_unmapped_memory_is_efault, -EFAULT, cowvm_write(t, HOLE + PG, buf, 8))
BAD(read_of_address_zero_is_efault, -EFAULT, cowvm_read(t, 0, buf, 8))
BAD(read_at_the_task_size_is_efault, -EFAULT, cowvm_read(t, COWVM_TASK_SIZE_MAX, buf, 8))
BAD(write_at_the_task_size_is_efault, -EFAULT, cowvm_write(t, COWVM_TASK_SIZE_MAX, buf, 8))
BAD(read_of_a_kernel_address_is_efault, -EFAULT, cowvm_read(t, KERNEL_ADDRESS, buf, 8))
BAD(read_of_a_non_canonical_address_is_efault, -EFAULT, cowvm_read(t, NON_CANONICAL_LOW, buf, 8))
BAD(write_of_a_non_canonical_address_is_efault, -EFAULT,
    cowvm_write(t, NON_CANONICAL_HIGH, buf, 8))
BAD(read_wrapping_around_the_end_of_the_address_space_is_efault, -EFAULT,
    cowvm_read(t, (uint64_t)-8, buf, 16))
BAD(write_to_a_read_only_mapping_is_efault_and_leaves_its_contents, -EFAULT,
    cowvm_write(t, RO + 10, buf, 8))
BAD(read_of_a_prot_none_mapping_is_efault, -EFAULT, cowvm_read(t, NONE, buf, 8))
BAD(write_to_a_prot_none_mapping_is_efault, -EFAULT, cowvm_write(t, NONE, buf, 8))
BAD(write_spanning_a_written_page_and_a_read_only_page_is_efault_and_writes_no_byte, -EFAULT,
    cowvm_write(t, RO - 8, buf, 16))
BAD(write_spanning_a_shared_page_and_a_hole_is_efault_and_writes_no_byte, -EFAULT,
    cowvm_write(t, AFTER - 8, buf, 16))
BAD(read_spanning_a_read_only_page_and_a_prot_none_page_is_efault_and_fills_no_byte, -EFAULT,
    cowvm_read(t, NONE - 8, buf, 16))
BAD(read_spanning_a_shared_page_and_a_hole_is_efault_and_fills_no_byte, -EFAULT,
    cowvm_read(t, AFTER - 8, buf, 16))
BAD(load64_of_unmapped_memory_is_efault, -EFAULT, cowvm_load64(t, HOLE, &v64))
BAD(load64_straddling_a_page_and_a_hole_is_efault, -EFAULT, cowvm_load64(t, AFTER - 4, &v64))
BAD(store64_to_a_read_only_mapping_is_efault, -EFAULT, cowvm_store64(t, RO, 0x1122334455667788ull))
BAD(store64_straddling_a_writable_and_a_read_only_page_is_efault_and_stores_no_byte, -EFAULT,
    cowvm_store64(t, RO - 4, 0x1122334455667788ull))
BAD(store64_at_a_kernel_address_is_efault, -EFAULT, cowvm_store64(t, KERNEL_ADDRESS, 1))

/* ---- brk ------------------------------------------------------------------------------------ */

BAD(brk_below_the_start_returns_the_current_break_unchanged, cowvm_brk(t, 0),
    cowvm_brk(t, cowvm_brk(t, 0) - PG))
BAD(brk_to_one_returns_the_current_break_unchanged, cowvm_brk(t, 0), cowvm_brk(t, 1))
BAD(brk_beyond_the_task_size_returns_the_current_break_unchanged, cowvm_brk(t, 0),
    cowvm_brk(t, COWVM_TASK_SIZE_MAX + PG))

/* ---- NULL arguments (int results) ----------------------------------------------------------- */

static int count_vma_fn(void *arg, const struct cowvm_vma_info *vma)
{
	(void)vma;
	(*(int *)arg)++;
	return 0;
}

static int count_rmap_fn(void *arg, int pid, uint64_t addr)
{
	(void)pid;
	(void)addr;
	(*(int *)arg)++;
	return 0;
}

static struct cowvm_task_stats g_ts;
static struct cowvm_vmstat g_vs;
static struct cowvm_smaps g_sm;
static struct cowvm_frame_info g_fi;
static int g_count;

BAD(exit_of_a_null_task_is_einval, -EINVAL, cowvm_exit(NULL))
BAD(task_pid_of_a_null_task_is_einval, -EINVAL, cowvm_task_pid(NULL))
BAD(task_tid_of_a_null_task_is_einval, -EINVAL, cowvm_task_tid(NULL))
BAD(mmap_with_a_null_task_is_einval, -EINVAL, cowvm_mmap(NULL, 0, PG, PROT_RW, MAP_PRIV_ANON))
BAD(munmap_with_a_null_task_is_einval, -EINVAL, cowvm_munmap(NULL, RW0, PG))
BAD(mprotect_with_a_null_task_is_einval, -EINVAL, cowvm_mprotect(NULL, RW0, PG, PROT_READ))
BAD(madvise_with_a_null_task_is_einval, -EINVAL, cowvm_madvise(NULL, RW0, PG, MADV_DONTNEED))
BAD(brk_with_a_null_task_is_einval, -EINVAL, cowvm_brk(NULL, 0))
BAD(read_with_a_null_task_is_einval, -EINVAL, cowvm_read(NULL, RW0, buf, 8))
BAD(write_with_a_null_task_is_einval, -EINVAL, cowvm_write(NULL, RW0, buf, 8))
BAD(load64_with_a_null_task_is_einval, -EINVAL, cowvm_load64(NULL, RW0, &v64))
BAD(store64_with_a_null_task_is_einval, -EINVAL, cowvm_store64(NULL, RW0, 1))
BAD(get_user_with_a_null_task_is_einval, -EINVAL, cowvm_get_user(NULL, RW0, &v64))
BAD(put_user_with_a_null_task_is_einval, -EINVAL, cowvm_put_user(NULL, RW0, 1))
BAD(task_stats_of_a_null_task_is_einval, -EINVAL, cowvm_task_stats(NULL, &g_ts))
BAD(task_stats_into_null_is_einval, -EINVAL, cowvm_task_stats(t, NULL))
BAD(vmstat_of_a_null_machine_is_einval, -EINVAL, cowvm_vmstat(NULL, &g_vs))
BAD(vmstat_into_null_is_einval, -EINVAL, cowvm_vmstat(tu_vm, NULL))
BAD(smaps_of_a_null_task_is_einval, -EINVAL, cowvm_smaps(NULL, 0, 0, &g_sm))
BAD(smaps_into_null_is_einval, -EINVAL, cowvm_smaps(t, 0, 0, NULL))
BAD(for_each_vma_of_a_null_task_is_einval, -EINVAL, cowvm_for_each_vma(NULL, count_vma_fn, &g_count))
BAD(for_each_vma_with_a_null_function_is_einval, -EINVAL, cowvm_for_each_vma(t, NULL, NULL))
BAD(check_of_a_null_machine_is_einval, -EINVAL, cowvm_check(NULL, NULL, 0))
BAD(frame_info_of_a_null_machine_is_einval, -EINVAL, cowvm_frame_info(NULL, 0, &g_fi))
BAD(frame_info_into_null_is_einval, -EINVAL, cowvm_frame_info(tu_vm, 0, NULL))
BAD(frame_info_of_a_frame_number_past_the_end_is_einval, -EINVAL,
    cowvm_frame_info(tu_vm, vmstat().nr_total_pages, &g_fi))
BAD(frame_info_of_a_huge_frame_number_is_einval, -EINVAL,
    cowvm_frame_info(tu_vm, UINT64_MAX, &g_fi))
BAD(rmap_walk_of_a_null_machine_is_einval, -EINVAL,
    cowvm_rmap_walk(NULL, 0, count_rmap_fn, &g_count))
BAD(rmap_walk_of_a_frame_number_past_the_end_is_einval, -EINVAL,
    cowvm_rmap_walk(tu_vm, vmstat().nr_total_pages, count_rmap_fn, &g_count))

/* ---- fault injection settings --------------------------------------------------------------- */

BAD(fail_alloc_with_an_unknown_mode_is_einval, -EINVAL, cowvm_fail_alloc(tu_vm, 99, 1))
BAD(fail_alloc_with_a_negative_mode_is_einval, -EINVAL, cowvm_fail_alloc(tu_vm, -1, 1))
BAD(fail_alloc_of_a_null_machine_is_einval, -EINVAL, cowvm_fail_alloc(NULL, COWVM_FAIL_NEXT, 0))

/* ---- calls that return a pointer: NULL and errno ---------------------------------------------- */

static void expect_null_errno(void *p, int want_errno, int got_errno, const char *why)
{
	cr_assert(p == NULL, "%s: returned %p, expected NULL", why, p);
	cr_assert(got_errno == want_errno, "%s: errno %d (%s), expected %d (%s)", why, got_errno,
		  strerror(got_errno), want_errno, strerror(want_errno));
}

Test(badinput, spawn_fork_and_clone_thread_of_null_return_null_with_einval)
{
	cowvm_task_t *t = build_layout();
	struct tu_state before = state_of(t);
	void *p;

	errno = 0;
	p = cowvm_spawn(NULL);
	expect_null_errno(p, EINVAL, errno, "cowvm_spawn(NULL)");
	errno = 0;
	p = cowvm_fork(NULL);
	expect_null_errno(p, EINVAL, errno, "cowvm_fork(NULL)");
	errno = 0;
	p = cowvm_clone_thread(NULL);
	expect_null_errno(p, EINVAL, errno, "cowvm_clone_thread(NULL)");
	CHECK();
	expect_state(t, before, "NULL task pointers");
	expect_layout_intact("NULL task pointers");
}

Test(badinput, create_with_a_bad_configuration_returns_null_with_einval)
{
	static const struct {
		const char *what;
		struct cowvm_config cfg;
	} cases[] = {
		{ "phys_bytes not a multiple of 4096", { .phys_bytes = (1u << 20) + 100 } },
		{ "phys_bytes one byte short of a page multiple", { .phys_bytes = (1u << 20) - 1 } },
		{ "phys_bytes below 64 KiB", { .phys_bytes = 32u << 10 } },
		{ "phys_bytes above 1 TiB", { .phys_bytes = (1ull << 40) + (1ull << 20) } },
		{ "nr_cpus above 64", { .phys_bytes = 1u << 20, .nr_cpus = 65 } },
	};
	struct cowvm_vmstat v0 = vmstat();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		errno = 0;
		cowvm_t *m = cowvm_create(&cases[i].cfg);
		int e = errno;
		if (m != NULL)
			cowvm_destroy(m);
		expect_null_errno(m, EINVAL, e, cases[i].what);
	}
	EQ(vmstat().nr_free_pages, v0.nr_free_pages);
	CHECK();
}

/* ---- edges that are not errors ------------------------------------------------------------- */

/* do_mmap ignores prot bits it does not know (only mprotect validates them). */
Test(badinput, mmap_ignores_unknown_prot_bits)
{
	cowvm_task_t *t = build_layout();
	struct tu_state before = state_of(t);
	int64_t a = cowvm_mmap(t, 0, PG, PROT_RW | 0x100, MAP_PRIV_ANON);
	cr_assert(a > 0, "mmap with prot bit 0x100 returned %" PRId64, a);
	CHECK();
	EQ(vma_at(t, (uint64_t)a).prot, PROT_RW);
	write_byte(t, (uint64_t)a, 9);
	EQ(read_byte(t, (uint64_t)a), 9);
	EQ(cowvm_munmap(t, (uint64_t)a, PG), 0);
	CHECK();
	/* (page tables made for the new mapping may or may not be freed by munmap) */
	struct cowvm_task_stats s = stats(t);
	EQ(s.nr_vmas, before.nr_vmas);
	EQ(s.total_vm, before.total_vm);
	EQ(s.rss_anon, before.rss_anon);
	expect_layout_intact("mmap with an unknown prot bit");
}

/*
 * The last page below the task size can be mapped and used; nothing above it can:
 *
 *   TASK_SIZE_MAX - 1p              TASK_SIZE_MAX = 2^47 - 4096
 *   [ last user page               )[ guard page: never mapped ...
 */
Test(badinput, the_last_page_below_the_task_size_is_usable_and_the_task_size_is_not)
{
	cowvm_task_t *t = tu_spawn();
	const uint64_t last = COWVM_TASK_SIZE_MAX - PG;
	map_fixed(t, last, 1, PROT_RW, MAP_PRIV_ANON);
	CHECK();
	write_byte(t, COWVM_TASK_SIZE_MAX - 1, 0x7F);
	EQ(read_byte(t, COWVM_TASK_SIZE_MAX - 1), 0x7F);
	uint8_t buf[16];
	memset(buf, 0xEE, sizeof buf);
	EQ(cowvm_write(t, COWVM_TASK_SIZE_MAX - 8, buf, 16), -EFAULT);
	EQ(read_byte(t, COWVM_TASK_SIZE_MAX - 8), 0);
	EQ(read_byte(t, COWVM_TASK_SIZE_MAX - 1), 0x7F);
	EQ(cowvm_read(t, COWVM_TASK_SIZE_MAX - 8, buf, 16), -EFAULT);
	for (int i = 0; i < 16; i++)
		EQ(buf[i], 0xEE);
	EQ(cowvm_read(t, COWVM_TASK_SIZE_MAX - 8, buf, 8), 0);
	EQ(buf[7], 0x7F);
	CHECK();
}

/* Linux's brk refuses to grow into another mapping and returns the old break. */
Test(badinput, brk_that_would_run_into_a_mapping_returns_the_current_break_unchanged)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t b0 = (uint64_t)cowvm_brk(t, 0);
	int64_t m = cowvm_mmap(t, b0 + 4 * PG, PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED_NOREPLACE);
	cr_assert(m == (int64_t)(b0 + 4 * PG), "mmap just above the break returned %" PRId64, m);
	fill_page(t, b0 + 4 * PG, 6);
	struct tu_state before = state_of(t);

	EQ(cowvm_brk(t, b0 + 8 * PG), b0);
	CHECK();
	expect_state(t, before, "brk into a mapping");
	expect_page(t, b0 + 4 * PG, 6);
	uint8_t x;
	EQ(cowvm_read(t, b0, &x, 1), -EFAULT);
	CHECK();
}

/*
 * A long access is still all or nothing:
 *
 *   A                                        A+70p     A+71p
 *   [ 70 written pages, pattern 1            )[ R page )[ hole
 *
 * A write of [A, A+71p) stops at the read-only page, a read of [A+1p, A+72p) at the hole:
 * neither moves a byte, however far the failing page is from the start.
 */
Test(badinput, a_long_access_that_fails_on_its_last_page_moves_no_byte)
{
	const uint64_t n = 70;
	static uint8_t buf[72 * COWVM_PAGE_SIZE];
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, n + 1, PROT_RW, MAP_PRIV_ANON);
	for (uint64_t i = 0; i <= n; i++)
		fill_page(t, A + i * PG, 1);
	EQ(cowvm_mprotect(t, A + n * PG, PG, PROT_READ), 0);
	struct tu_state before = state_of(t);

	memset(buf, 0x5A, sizeof buf);
	EQ(cowvm_write(t, A, buf, (n + 1) * PG), -EFAULT);
	CHECK();
	memset(buf, 0xEE, sizeof buf);
	EQ(cowvm_read(t, A + PG, buf, (n + 1) * PG), -EFAULT);
	for (size_t i = 0; i < sizeof buf; i++)
		cr_assert(buf[i] == 0xEE, "byte %zu of the read buffer was filled", i);
	CHECK();
	expect_state(t, before, "a long failing access");
	for (uint64_t i = 0; i <= n; i++)
		expect_page(t, A + i * PG, 1);

	/* the same write without its last page succeeds */
	memset(buf, 0x5A, sizeof buf);
	EQ(cowvm_write(t, A, buf, n * PG), 0);
	EQ(read_byte(t, A), 0x5A);
	EQ(read_byte(t, A + n * PG - 1), 0x5A);
	expect_page(t, A + n * PG, 1);
	CHECK();
}
