/*
 * test_perf.c - what the performance work promises besides speed: how physical memory is backed
 * on the host, and that the faster paths keep every byte, count and invariant of the slow ones.
 */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

TestSuite(perf, .init = tu_setup, .fini = tu_teardown);

/* Does the host honour MADV_HUGEPAGE (THP "always" or "madvise")? */
static bool host_has_thp(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return false;
	bool ok = fgets(buf, sizeof(buf), f) && !strstr(buf, "[never]");
	fclose(f);
	return ok;
}

/*
 * A machine's physical memory is on host transparent huge pages where the host allows them, and
 * on 4 KiB pages when COWVM_CONFIG_HOST_4K asks; with PREFAULT the huge pages are there at once
 * (MADV_POPULATE_WRITE after the advice, not MAP_POPULATE before it).
 */
Test(perf, physical_memory_is_on_host_huge_pages_unless_4k_pages_are_asked_for)
{
	static const struct { unsigned flags; const char *what; } cases[] = {
		{ COWVM_CONFIG_PREFAULT, "default backing, prefaulted" },
		{ COWVM_CONFIG_PREFAULT | COWVM_CONFIG_HOST_4K, "4 KiB host pages, prefaulted" },
		{ COWVM_CONFIG_HOST_4K, "4 KiB host pages, lazily backed" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cowvm_config cfg = { .phys_bytes = 32ull << 20, .flags = cases[i].flags };
		cowvm_t *vm = cowvm_create(&cfg);
		cr_assert(vm, "%s: create", cases[i].what);
		struct cowvm_machine_info mi;
		cr_assert_eq(cowvm_machine_info(vm, &mi), 0, "%s", cases[i].what);
		bool want_huge = !(cases[i].flags & COWVM_CONFIG_HOST_4K) && host_has_thp();
		cr_assert_eq(mi.host_backing, want_huge ? COWVM_BACKING_THP : COWVM_BACKING_4K,
			     "%s: backing %d", cases[i].what, mi.host_backing);
		if (cases[i].flags & COWVM_CONFIG_PREFAULT)
			cr_assert_eq(mi.host_rss_bytes, mi.phys_bytes, "%s: resident %llu of %llu",
				     cases[i].what, (unsigned long long)mi.host_rss_bytes,
				     (unsigned long long)mi.phys_bytes);
		else
			cr_assert_lt(mi.host_rss_bytes, mi.phys_bytes, "%s: lazily backed", cases[i].what);
		if (!want_huge)
			cr_assert_eq(mi.host_huge_bytes, 0, "%s: no huge pages", cases[i].what);
		/* Memory on either backing behaves the same: write, fork, COW, read back. */
		cowvm_task_t *p = cowvm_spawn(vm);
		cr_assert(p);
		int64_t a = cowvm_mmap(p, 0, 64 * PG, PROT_RW, MAP_PRIV_ANON);
		cr_assert_geq(a, 0);
		for (uint64_t k = 0; k < 64; k++)
			cr_assert_eq(cowvm_store64(p, (uint64_t)a + k * PG, k + 1), 0);
		cowvm_task_t *c = cowvm_fork(p);
		cr_assert(c);
		for (uint64_t k = 0; k < 64; k++)
			cr_assert_eq(cowvm_store64(c, (uint64_t)a + k * PG, 1000 + k), 0);
		for (uint64_t k = 0; k < 64; k++) {
			uint64_t vp, vc;
			cr_assert_eq(cowvm_load64(p, (uint64_t)a + k * PG, &vp), 0);
			cr_assert_eq(cowvm_load64(c, (uint64_t)a + k * PG, &vc), 0);
			cr_assert_eq(vp, k + 1, "%s: parent page %llu", cases[i].what, (unsigned long long)k);
			cr_assert_eq(vc, 1000 + k, "%s: child page %llu", cases[i].what, (unsigned long long)k);
		}
		char why[256];
		cr_assert_eq(cowvm_check(vm, why, sizeof(why)), 0, "%s: %s", cases[i].what, why);
		cowvm_destroy(vm);
	}
}

/* A machine of less than one host huge page stays on 4 KiB pages. */
Test(perf, a_machine_smaller_than_a_host_huge_page_is_on_4k_pages)
{
	struct cowvm_config cfg = { .phys_bytes = 1ull << 20 };
	cowvm_t *vm = cowvm_create(&cfg);
	cr_assert(vm);
	struct cowvm_machine_info mi;
	cr_assert_eq(cowvm_machine_info(vm, &mi), 0);
	cr_assert_eq(mi.host_backing, COWVM_BACKING_4K);
	cowvm_destroy(vm);
}

/* ---- the inline TLB hit (include/cowvm.h) -------------------------------------------------- */

/* A task begins with the documented layout, at its version; a hit is counted as no TLB miss. */
Test(perf, a_task_begins_with_the_versioned_tlb_layout_and_hits_are_not_misses)
{
	cowvm_task_t *t = tu_spawn();
	const struct cowvm_mmu *m = (const struct cowvm_mmu *)(const void *)t;
	cr_assert_eq(m->layout_version, COWVM_TLB_LAYOUT_VERSION);
	int64_t a = cowvm_mmap(t, 0, PG, PROT_RW, MAP_PRIV_ANON);
	cr_assert_geq(a, 0);
	cr_assert_eq(cowvm_store64(t, (uint64_t)a, 42), 0);
	struct cowvm_task_stats s0;
	cr_assert_eq(cowvm_task_stats(t, &s0), 0);
	uint64_t v = 0, sum = 0;
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(cowvm_store64(t, (uint64_t)a + 8 * (uint64_t)(i % 512), (uint64_t)i), 0);
		cr_assert_eq(cowvm_load64(t, (uint64_t)a + 8 * (uint64_t)(i % 512), &v), 0);
		sum += v;
	}
	struct cowvm_task_stats s1;
	cr_assert_eq(cowvm_task_stats(t, &s1), 0);
	cr_assert_eq(s1.tlb_misses, s0.tlb_misses, "hits counted as misses");
	cr_assert_eq(sum, 999ull * 1000 / 2);
}

/*
 *   [a, a+p) mapped, [a+p, a+2p) not:  an 8-byte access at a+p-4 crosses into the hole
 * The entry for a's page must not satisfy it: the access faults and moves no byte.
 */
Test(perf, an_access_that_crosses_into_an_unmapped_page_faults_and_moves_nothing)
{
	cowvm_task_t *t = tu_spawn();
	int64_t a = cowvm_mmap(t, 0, 2 * PG, PROT_RW, MAP_PRIV_ANON);
	cr_assert_geq(a, 0);
	cr_assert_eq(cowvm_munmap(t, (uint64_t)a + PG, PG), 0);
	cr_assert_eq(cowvm_store64(t, (uint64_t)a + PG - 8, 0x1111111111111111ull), 0); /* a hit now */
	cr_assert_eq(cowvm_store64(t, (uint64_t)a + PG - 4, 0x2222222222222222ull), -EFAULT);
	uint64_t v = 0;
	cr_assert_eq(cowvm_load64(t, (uint64_t)a + PG - 4, &v), -EFAULT);
	cr_assert_eq(cowvm_load64(t, (uint64_t)a + PG - 8, &v), 0);
	cr_assert_eq(v, 0x1111111111111111ull, "a failed store changed bytes");
	/* mapped again, the same crossing access works and lands in both pages */
	cr_assert_eq(cowvm_mmap(t, (uint64_t)a + PG, PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED),
		     (int64_t)((uint64_t)a + PG));
	cr_assert_eq(cowvm_store64(t, (uint64_t)a + PG - 4, 0x0807060504030201ull), 0);
	unsigned char b[8];
	cr_assert_eq(cowvm_read(t, (uint64_t)a + PG - 4, b, 8), 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(b[i], i + 1);
}

/*
 * A writable entry cached by hits must stop granting writes once the PTE is write-protected:
 * mprotect flushes the TLB (the generation moves), so the inline path declines, the slow
 * path empties the TLB and the store faults.  Fork does the same to the parent's entries:
 * its next store is a COW fault, and the child keeps the old bytes.
 */
Test(perf, an_inline_hit_never_outlives_a_flush)
{
	cowvm_task_t *t = tu_spawn();
	int64_t a = cowvm_mmap(t, 0, PG, PROT_RW, MAP_PRIV_ANON);
	cr_assert_geq(a, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(cowvm_store64(t, (uint64_t)a, 7), 0);
	cr_assert_eq(cowvm_mprotect(t, (uint64_t)a, PG, PROT_READ), 0);
	cr_assert_eq(cowvm_store64(t, (uint64_t)a, 8), -EFAULT);
	uint64_t v = 0;
	cr_assert_eq(cowvm_load64(t, (uint64_t)a, &v), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(cowvm_mprotect(t, (uint64_t)a, PG, PROT_RW), 0);
	cr_assert_eq(cowvm_store64(t, (uint64_t)a, 9), 0);
	struct cowvm_vmstat s0 = vmstat();
	cowvm_task_t *c = tu_fork(t);
	cr_assert_eq(cowvm_store64(t, (uint64_t)a, 10), 0);
	struct cowvm_vmstat s1 = vmstat();
	cr_assert_eq(s1.cow_copies + s1.pgreuse - s0.cow_copies - s0.pgreuse, 1,
		     "the store after fork did not fault");
	cr_assert_eq(cowvm_load64(c, (uint64_t)a, &v), 0);
	cr_assert_eq(v, 9, "the child saw the parent's write");
	cr_assert_eq(cowvm_load64(t, (uint64_t)a, &v), 0);
	cr_assert_eq(v, 10);
}
