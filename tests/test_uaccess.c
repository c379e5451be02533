/*
 * test_uaccess.c - kernel-side copies: copy_from_user, copy_to_user, get_user, put_user.
 *
 * Linux's contract (arch/x86 uaccess + exception-table fixups):
 *   - copy_from_user returns the number of bytes NOT copied and zero-fills that tail of the
 *     destination; copy_to_user returns the bytes not copied and zero-fills nothing;
 *   - a range failing access_ok (wraps, or ends above TASK_SIZE_MAX) copies nothing: returns n;
 *   - get_user / put_user return -EFAULT, and get_user sets the value to 0;
 *   - faults taken inside these copies count as the task's minor faults, and a write breaks COW
 *     exactly as a user store would.
 * Destination buffers are pre-filled with 0xAA so that zero-filling (or not) shows.
 */
#include "testutil.h"

TestSuite(uaccess, .init = tu_setup, .fini = tu_teardown);

#define A TU_BASE
#define KERNEL_ADDRESS 0xffff800000000000ull
#define NON_CANONICAL 0x0000800000000000ull

/* ---- success ------------------------------------------------------------------------------- */

Test(uaccess, copies_within_mapped_memory_succeed_in_both_directions)
{
	static uint8_t src[2 * COWVM_PAGE_SIZE], dst[2 * COWVM_PAGE_SIZE + 16];
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 2, PROT_RW);
	struct cowvm_task_stats s0 = stats(t);
	pattern_fill(src, sizeof src, 7);

	EQ(cowvm_copy_to_user(t, a, src, sizeof src), 0);
	CHECK();
	/* two write faults through the exception-table-protected copy, counted as the task's */
	EQ(stats(t).min_flt - s0.min_flt, 2);
	EQ(stats(t).rss_anon - s0.rss_anon, 2);
	EQ(pm_exclusive(t, a), 1);
	EQ(pm_exclusive(t, a + PG), 1);
	expect_page(t, a, 7);

	memset(dst, 0xAA, sizeof dst);
	EQ(cowvm_copy_from_user(t, dst, a, sizeof src), 0);
	cr_assert(memcmp(dst, src, sizeof src) == 0, "copy_from_user returned other bytes");
	for (size_t i = sizeof src; i < sizeof dst; i++)
		EQ(dst[i], 0xAA);

	/* an unaligned range across the page boundary */
	memset(dst, 0xAA, sizeof dst);
	EQ(cowvm_copy_from_user(t, dst, a + 100, 5000), 0);
	cr_assert(memcmp(dst, src + 100, 5000) == 0, "unaligned copy_from_user differs");
	EQ(dst[5000], 0xAA);
	EQ(stats(t).min_flt - s0.min_flt, 2);
	CHECK();
}

Test(uaccess, get_user_and_put_user_round_trip_also_across_a_page_boundary)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 2, PROT_RW);
	const uint64_t v = 0x1122334455667788ull;
	uint64_t got = 0;

	EQ(cowvm_put_user(t, a + 8, v), 0);
	EQ(cowvm_get_user(t, a + 8, &got), 0);
	EQ(got, v);
	EQ(read_byte(t, a + 8), 0x88); /* little-endian, as x86 */
	EQ(read_byte(t, a + 15), 0x11);

	EQ(cowvm_put_user(t, a + PG - 4, ~v), 0);
	got = 0;
	EQ(cowvm_get_user(t, a + PG - 4, &got), 0);
	EQ(got, ~v);
	uint64_t via_load = 0;
	EQ(cowvm_load64(t, a + PG - 4, &via_load), 0);
	EQ(via_load, ~v);
	CHECK();
}

/* ---- partial copies ------------------------------------------------------------------------- */

/*
 *   A                     A+1p
 *   [ page (written or untouched) )[ hole ...
 *              <--- before --->|<------ n - before ------>
 *                         src = A+1p-before
 * copy_from_user copies `before` bytes and returns n - before; dst[before..n) is zeroed and
 * dst[n..] is left alone.
 */
Test(uaccess, copy_from_user_of_a_partly_unmapped_source_returns_the_bytes_not_copied_and_zeroes_the_tail)
{
	static const struct {
		const char *what;
		uint64_t before, n;
		int touched;
	} cases[] = {
		{ "100 mapped bytes then 200 unmapped", 100, 300, 1 },
		{ "one mapped byte then a page of hole", 1, 4097, 1 },
		{ "a whole page then one unmapped byte", 4096, 4097, 1 },
		{ "nothing mapped: starts in the hole", 0, 64, 1 },
		{ "100 bytes of an untouched page then 200 unmapped", 100, 300, 0 },
	};
	static uint8_t dst[3 * COWVM_PAGE_SIZE];
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 1, PROT_RW, MAP_PRIV_ANON);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = cases[i].what;
		uint64_t before = cases[i].before, n = cases[i].n;
		uint64_t src = A + PG - before;
		if (cases[i].touched)
			fill_page(t, A, 3);
		else
			EQ_WHY(cowvm_madvise(t, A, PG, MADV_DONTNEED), 0, why);
		struct cowvm_task_stats s0 = stats(t);

		memset(dst, 0xAA, sizeof dst);
		EQ_WHY(cowvm_copy_from_user(t, dst, src, n), n - before, why);
		CHECK();
		for (uint64_t k = 0; k < before; k++) {
			uint8_t want = cases[i].touched ? pattern_byte(3, PG - before + k) : 0;
			cr_assert(dst[k] == want, "%s: dst[%" PRIu64 "] is %#x, expected %#x", why, k,
				  dst[k], want);
		}
		for (uint64_t k = before; k < n; k++)
			cr_assert(dst[k] == 0, "%s: dst[%" PRIu64 "] is %#x, the tail must be zeroed",
				  why, k, dst[k]);
		for (uint64_t k = n; k < sizeof dst; k++)
			cr_assert(dst[k] == 0xAA, "%s: dst[%" PRIu64 "] past n was written", why, k);
		/* an untouched source page is read through the zero page: one fault */
		EQ_WHY(stats(t).min_flt - s0.min_flt, cases[i].touched || before == 0 ? 0 : 1, why);
	}
	CHECK();
}

Test(uaccess, copy_from_user_of_a_prot_none_page_copies_nothing_and_zeroes_everything)
{
	uint8_t dst[64];
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 1, PROT_RW);
	fill_page(t, a, 1);
	EQ(cowvm_mprotect(t, a, PG, PROT_NONE), 0);
	memset(dst, 0xAA, sizeof dst);
	EQ(cowvm_copy_from_user(t, dst, a, sizeof dst), sizeof dst);
	for (size_t i = 0; i < sizeof dst; i++)
		EQ(dst[i], 0);
	CHECK();
}

/*
 *   A                     A+1p                  A+2p
 *   [ RW, pattern 1       )[ R, pattern 2        )
 *              <-- 100 -->|<------ 200 ------>
 * copy_to_user writes the 100 bytes and returns 200; the read-only page is unchanged.
 */
Test(uaccess, copy_to_user_into_a_read_only_page_returns_the_bytes_not_copied_and_zeroes_nothing)
{
	uint8_t src[300];
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	fill_page(t, A, 1);
	fill_page(t, A + PG, 2);
	EQ(cowvm_mprotect(t, A + PG, PG, PROT_READ), 0);
	pattern_fill(src, sizeof src, 9);
	struct cowvm_task_stats s0 = stats(t);

	EQ(cowvm_copy_to_user(t, A + PG - 100, src, sizeof src), 200);
	CHECK();
	uint8_t got[100];
	EQ(cowvm_read(t, A + PG - 100, got, sizeof got), 0);
	cr_assert(memcmp(got, src, sizeof got) == 0, "the writable prefix was not copied");
	expect_page(t, A + PG, 2);
	for (size_t i = 0; i < PG - 100; i++)
		cr_assert(read_byte(t, A + i) == pattern_byte(1, i), "byte %zu before the copy changed",
			  i);

	/* entirely read-only, or entirely unmapped: nothing copied */
	EQ(cowvm_copy_to_user(t, A + PG, src, sizeof src), sizeof src);
	EQ(cowvm_copy_to_user(t, A + 2 * PG, src, sizeof src), sizeof src);
	expect_page(t, A + PG, 2);
	EQ(stats(t).min_flt, s0.min_flt);
	for (size_t i = 0; i < sizeof src; i++)
		EQ(src[i], pattern_byte(9, i));
	CHECK();
}

/* ---- access_ok ------------------------------------------------------------------------------ */

/*
 *   TASK_SIZE_MAX - 1p              TASK_SIZE_MAX
 *   [ last user page, pattern 5    )|  (nothing can be mapped here)
 *                          <- 8 ->|<- 8 ->
 * A range ending at TASK_SIZE_MAX is fine; one byte further fails access_ok and copies nothing,
 * even though its first bytes are mapped.
 */
Test(uaccess, access_ok_failure_copies_nothing_and_returns_n)
{
	uint8_t dst[32], src[32];
	const uint64_t last = COWVM_TASK_SIZE_MAX - PG;
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, last, 1, PROT_RW, MAP_PRIV_ANON);
	fill_page(t, last, 5);
	memset(src, 0x5C, sizeof src);
	struct cowvm_task_stats s0 = stats(t);

	memset(dst, 0xAA, sizeof dst);
	EQ(cowvm_copy_from_user(t, dst, COWVM_TASK_SIZE_MAX - 8, 8), 0);
	for (int i = 0; i < 8; i++)
		EQ(dst[i], pattern_byte(5, PG - 8 + (size_t)i));

	static const struct {
		const char *what;
		uint64_t addr, n;
	} bad[] = {
		{ "ends one byte above TASK_SIZE_MAX", COWVM_TASK_SIZE_MAX - 8, 9 },
		{ "ends a page above TASK_SIZE_MAX", COWVM_TASK_SIZE_MAX - 8, 16 },
		{ "starts at TASK_SIZE_MAX", COWVM_TASK_SIZE_MAX, 8 },
		{ "wraps around the end of the address space", (uint64_t)-8, 16 },
		{ "a kernel address", KERNEL_ADDRESS, 16 },
		{ "a non-canonical address", NON_CANONICAL, 16 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *why = bad[i].what;
		memset(dst, 0xAA, sizeof dst);
		EQ_WHY(cowvm_copy_from_user(t, dst, bad[i].addr, bad[i].n), bad[i].n, why);
		for (uint64_t k = 0; k < bad[i].n; k++)
			cr_assert(dst[k] == 0, "%s: dst[%" PRIu64 "] is %#x, must be zeroed", why, k,
				  dst[k]);
		for (uint64_t k = bad[i].n; k < sizeof dst; k++)
			EQ_WHY(dst[k], 0xAA, why);
		EQ_WHY(cowvm_copy_to_user(t, bad[i].addr, src, bad[i].n), bad[i].n, why);
		CHECK();
	}
	expect_page(t, last, 5);

	/* get_user / put_user of the last 8 bytes work; 8 bytes crossing TASK_SIZE_MAX do not */
	uint64_t v = 0;
	EQ(cowvm_get_user(t, COWVM_TASK_SIZE_MAX - 8, &v), 0);
	EQ(v & 0xff, pattern_byte(5, PG - 8));
	EQ(cowvm_put_user(t, COWVM_TASK_SIZE_MAX - 8, 0x0807060504030201ull), 0);
	EQ(read_byte(t, COWVM_TASK_SIZE_MAX - 1), 0x08);
	v = 0xdeadbeef;
	EQ(cowvm_get_user(t, COWVM_TASK_SIZE_MAX - 4, &v), -EFAULT);
	EQ(v, 0);
	EQ(cowvm_put_user(t, COWVM_TASK_SIZE_MAX - 4, ~0ull), -EFAULT);
	EQ(read_byte(t, COWVM_TASK_SIZE_MAX - 4), 0x05);
	EQ(stats(t).min_flt, s0.min_flt);
	CHECK();
}

/* ---- get_user / put_user failures ------------------------------------------------------------ */

/*
 *   A          A+1p        A+2p        A+3p
 *   [ RW, 1    )[ R, 2      )[ NONE     )[ hole ...
 */
Test(uaccess, get_user_of_a_bad_address_returns_efault_and_sets_the_value_to_zero)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 1, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, A + PG, 1, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, A + 2 * PG, 1, PROT_NONE, MAP_PRIV_ANON);
	fill_page(t, A, 1);
	fill_page(t, A + PG, 2);
	EQ(cowvm_mprotect(t, A + PG, PG, PROT_READ), 0);
	struct cowvm_task_stats s0 = stats(t);

	static const struct {
		const char *what;
		uint64_t addr;
	} cases[] = {
		{ "an unmapped address", A + 3 * PG },
		{ "a PROT_NONE page", A + 2 * PG },
		{ "8 bytes straddling a read-only page and a PROT_NONE page", A + 2 * PG - 4 },
		{ "8 bytes straddling a PROT_NONE page and a hole", A + 3 * PG - 4 },
		{ "TASK_SIZE_MAX", COWVM_TASK_SIZE_MAX },
		{ "a kernel address", KERNEL_ADDRESS },
		{ "a non-canonical address", NON_CANONICAL },
		{ "address 0", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = cases[i].what;
		uint64_t v = 0xdeadbeefcafef00dull;
		EQ_WHY(cowvm_get_user(t, cases[i].addr, &v), -EFAULT, why);
		EQ_WHY(v, 0, why);
		EQ_WHY(cowvm_put_user(t, cases[i].addr, 0x4141414141414141ull), -EFAULT, why);
		CHECK();
	}

	/* put_user into a read-only page, or straddling writable and read-only: nothing stored */
	EQ(cowvm_put_user(t, A + PG, 0x4242424242424242ull), -EFAULT);
	EQ(cowvm_put_user(t, A + PG - 4, 0x4343434343434343ull), -EFAULT);
	expect_page(t, A, 1);
	expect_page(t, A + PG, 2);
	EQ(stats(t).min_flt, s0.min_flt);
	CHECK();
}

/* ---- faults inside kernel copies ------------------------------------------------------------- */

Test(uaccess, copy_from_user_of_untouched_memory_maps_the_zero_page_and_counts_the_faults)
{
	static uint8_t dst[2 * COWVM_PAGE_SIZE];
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 3, PROT_RW);
	struct cowvm_task_stats s0 = stats(t);
	struct cowvm_vmstat v0 = vmstat();

	memset(dst, 0xAA, sizeof dst);
	EQ(cowvm_copy_from_user(t, dst, a, sizeof dst), 0);
	CHECK();
	for (size_t i = 0; i < sizeof dst; i++)
		cr_assert(dst[i] == 0, "dst[%zu] is %#x", i, dst[i]);
	EQ(stats(t).min_flt - s0.min_flt, 2);
	EQ(stats(t).rss_anon, s0.rss_anon);
	EQ(pfn_of(t, a), zero_pfn());
	EQ(pfn_of(t, a + PG), zero_pfn());
	EQ(vmstat().zero_page_maps - v0.zero_page_maps, 2);

	uint64_t v = 0xdeadbeef;
	EQ(cowvm_get_user(t, a + 2 * PG + 8, &v), 0);
	EQ(v, 0);
	EQ(stats(t).min_flt - s0.min_flt, 3);
	EQ(pfn_of(t, a + 2 * PG), zero_pfn());
	CHECK();
}

Test(uaccess, put_user_into_untouched_memory_allocates_a_page_with_one_fault)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 1, PROT_RW);
	struct cowvm_task_stats s0 = stats(t);
	EQ(cowvm_put_user(t, a + 16, 0x0102030405060708ull), 0);
	CHECK();
	EQ(stats(t).min_flt - s0.min_flt, 1);
	EQ(stats(t).rss_anon - s0.rss_anon, 1);
	NE(pfn_of(t, a), zero_pfn());
	EQ(pm_exclusive(t, a), 1);
	EQ(read_byte(t, a + 16), 0x08);
	expect_zeros(t, a, 16);
	CHECK();
}

/* xv6 cowtest "file": the kernel writing into a COW-shared page (read() into a buffer) must
 * break COW for the writer only. */
Test(uaccess, copy_to_user_into_a_cow_shared_page_breaks_cow_only_for_the_writer)
{
	uint8_t src[100];
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 2, PROT_RW);
	fill_page(p, a, 1);
	fill_page(p, a + PG, 2);
	cowvm_task_t *c = tu_fork(p);
	uint64_t old0 = pfn_of(p, a), old1 = pfn_of(p, a + PG);
	struct cowvm_task_stats p0 = stats(p), c0 = stats(c);
	struct cowvm_vmstat v0 = vmstat();
	memset(src, 0x5A, sizeof src);

	EQ(cowvm_copy_to_user(p, a + 10, src, sizeof src), 0);
	CHECK();
	EQ(stats(p).min_flt - p0.min_flt, 1);
	EQ(stats(c).min_flt, c0.min_flt);
	EQ(vmstat().cow_copies - v0.cow_copies, 1);
	NE(pfn_of(p, a), old0);
	EQ(pfn_of(c, a), old0);
	expect_page(c, a, 1);
	uint8_t got[100];
	EQ(cowvm_read(p, a + 10, got, sizeof got), 0);
	cr_assert(memcmp(got, src, sizeof got) == 0, "the parent does not see its copy_to_user");
	expect_page_after(p, a, 1, 110);

	/* the child's kernel write into the other page: its own COW break */
	EQ(cowvm_put_user(c, a + PG, 0x6666666666666666ull), 0);
	CHECK();
	EQ(stats(c).min_flt - c0.min_flt, 1);
	EQ(vmstat().cow_copies - v0.cow_copies, 2);
	NE(pfn_of(c, a + PG), old1);
	EQ(pfn_of(p, a + PG), old1);
	expect_page(p, a + PG, 2);
	EQ(read_byte(c, a + PG), 0x66);
	expect_page_after(c, a + PG, 2, 8);
	CHECK();
}

Test(uaccess, copy_from_user_of_a_cow_shared_page_does_not_break_cow)
{
	uint8_t dst[COWVM_PAGE_SIZE];
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	fill_page(p, a, 4);
	cowvm_task_t *c = tu_fork(p);
	uint64_t pfn = pfn_of(p, a);
	struct cowvm_task_stats c0 = stats(c);
	struct cowvm_vmstat v0 = vmstat();

	EQ(cowvm_copy_from_user(c, dst, a, sizeof dst), 0);
	for (size_t i = 0; i < sizeof dst; i++)
		EQ(dst[i], pattern_byte(4, i));
	EQ(stats(c).min_flt, c0.min_flt);
	EQ(pfn_of(c, a), pfn);
	EQ(pfn_of(p, a), pfn);
	EQ(vmstat().cow_copies, v0.cow_copies);
	EQ(frame(pfn).mapcount, 2);
	CHECK();
}

/* ---- tracing: faults from uaccess are marked as kernel accesses ---------------------------- */

struct trace_log {
	int n;
	int user[8], write[8];
	uint64_t addr[8];
};

static void trace_fn(void *arg, const struct cowvm_fault_event *ev)
{
	struct trace_log *log = arg;
	if (log->n < 8) {
		log->user[log->n] = ev->user;
		log->write[log->n] = ev->write;
		log->addr[log->n] = ev->addr;
	}
	log->n++;
}

Test(uaccess, faults_taken_by_kernel_copies_are_traced_as_kernel_accesses)
{
	static struct trace_log log;
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 2, PROT_RW);
	uint64_t v = 0;

	memset(&log, 0, sizeof log);
	cowvm_set_tracer(tu_vm, trace_fn, &log);
	EQ(cowvm_put_user(t, a + 8, 1), 0);
	EQ(cowvm_get_user(t, a + PG, &v), 0);
	write_byte(t, a + PG + 1, 2); /* a user store: the zero page is replaced */
	cowvm_set_tracer(tu_vm, NULL, NULL);
	write_byte(t, a + 1, 3); /* not traced any more (and takes no fault anyway) */

	EQ(log.n, 3);
	EQ(log.user[0], 0);
	EQ(log.write[0], 1);
	cr_assert(log.addr[0] >= a && log.addr[0] < a + PG, "put_user fault at %#" PRIx64,
		  log.addr[0]);
	EQ(log.user[1], 0);
	EQ(log.write[1], 0);
	cr_assert(log.addr[1] >= a + PG && log.addr[1] < a + 2 * PG, "get_user fault at %#" PRIx64,
		  log.addr[1]);
	EQ(log.user[2], 1);
	EQ(log.write[2], 1);
	CHECK();
}

/*
 * Long partial copies (more pages than one software-MMU batch) still copy exactly the prefix
 * that is accessible and report exactly the rest:
 *
 *   A                                        A+70p     A+71p
 *   [ 70 RW pages, pattern 2                 )[ R page )[ hole
 */
Test(uaccess, long_partial_copies_copy_the_accessible_prefix_and_report_exactly_the_rest)
{
	const uint64_t n = 70;
	static uint8_t src[71 * COWVM_PAGE_SIZE], dst[72 * COWVM_PAGE_SIZE];
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, n + 1, PROT_RW, MAP_PRIV_ANON);
	for (uint64_t i = 0; i <= n; i++)
		fill_page(t, A + i * PG, 2);
	EQ(cowvm_mprotect(t, A + n * PG, PG, PROT_READ), 0);

	/* from user: 71 readable pages, then one page of hole */
	memset(dst, 0xAA, sizeof dst);
	EQ(cowvm_copy_from_user(t, dst, A, (n + 2) * PG), PG);
	for (uint64_t i = 0; i <= n; i++)
		for (uint64_t k = 0; k < PG; k += 509)
			cr_assert(dst[i * PG + k] == pattern_byte(2, k), "dst page %" PRIu64
				  " byte %" PRIu64 " is %#x", i, k, dst[i * PG + k]);
	for (uint64_t k = (n + 1) * PG; k < (n + 2) * PG; k++)
		cr_assert(dst[k] == 0, "dst[%" PRIu64 "] is %#x, the tail must be zeroed", k, dst[k]);

	/* to user: 70 writable pages, then the read-only one */
	memset(src, 0x3C, sizeof src);
	EQ(cowvm_copy_to_user(t, A, src, (n + 1) * PG), PG);
	EQ(read_byte(t, A), 0x3C);
	EQ(read_byte(t, A + n * PG - 1), 0x3C);
	expect_page(t, A + n * PG, 2);
	CHECK();
}
