/*
 * test_thp.c - the transparent-huge-page policy (issue 18, slice 1a): the COWVM_CONFIG_THP_*
 * settings read back as this host's sysfs files do, bad values refused, and smaps THPeligible
 * following thp_vma_allowable_order's policy (enabled always / madvise / never, VM_HUGEPAGE,
 * VM_NOHUGEPAGE, a VMA that holds no aligned 2 MiB, shared memory).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <criterion/criterion.h>

#include "cowvm.h"

static cowvm_t *make(unsigned flags)
{
	struct cowvm_config cfg = { .phys_bytes = 16u << 20, .flags = flags, .nr_cpus = 1 };
	cowvm_t *vm = cowvm_create(&cfg);
	cr_assert(vm, "cowvm_create(flags %#x): %s", flags, strerror(errno));
	return vm;
}

static void setting_is(cowvm_t *vm, const char *name, const char *want)
{
	char buf[128];
	int n = cowvm_thp_setting(vm, name, buf, sizeof buf);
	cr_assert_eq(n, (int)strlen(want), "%s: %d (%s)", name, n, n > 0 ? buf : "");
	cr_assert_str_eq(buf, want);
}

Test(thp, defaults_are_this_hosts_sysfs)
{
	cowvm_t *vm = make(0);
	setting_is(vm, "enabled", "always [madvise] never\n");
	setting_is(vm, "defrag", "always defer defer+madvise [madvise] never\n");
	setting_is(vm, "use_zero_page", "1\n");
	char small[8];
	cr_assert_eq(cowvm_thp_setting(vm, "enabled", small, sizeof small), -ERANGE);
	cr_assert_eq(cowvm_thp_setting(vm, "khugepaged", small, sizeof small), -EINVAL);
	cr_assert_eq(cowvm_thp_setting(vm, NULL, small, sizeof small), -EINVAL);
	cr_assert_eq(cowvm_thp_setting(NULL, "enabled", small, sizeof small), -EINVAL);
	cowvm_destroy(vm);
}

Test(thp, every_setting_reads_back)
{
	cowvm_t *vm = make(COWVM_CONFIG_THP_ALWAYS | COWVM_CONFIG_THP_DEFRAG_DEFER_MADVISE |
			   COWVM_CONFIG_THP_NO_ZERO_PAGE);
	setting_is(vm, "enabled", "[always] madvise never\n");
	setting_is(vm, "defrag", "always defer [defer+madvise] madvise never\n");
	setting_is(vm, "use_zero_page", "0\n");
	cowvm_destroy(vm);
	vm = make(COWVM_CONFIG_THP_NEVER | COWVM_CONFIG_THP_DEFRAG_NEVER);
	setting_is(vm, "enabled", "always madvise [never]\n");
	setting_is(vm, "defrag", "always defer defer+madvise madvise [never]\n");
	cowvm_destroy(vm);
	vm = make(COWVM_CONFIG_THP_DEFRAG_ALWAYS);
	setting_is(vm, "defrag", "[always] defer defer+madvise madvise never\n");
	cowvm_destroy(vm);
	vm = make(COWVM_CONFIG_THP_DEFRAG_DEFER);
	setting_is(vm, "defrag", "always [defer] defer+madvise madvise never\n");
	cowvm_destroy(vm);
}

Test(thp, unknown_values_are_einval)
{
	unsigned bad[] = { COWVM_CONFIG_THP_ALWAYS | COWVM_CONFIG_THP_NEVER, 0x50000u, 0x70000u };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cowvm_config cfg = { .phys_bytes = 16u << 20, .flags = bad[i] };
		errno = 0;
		cr_assert_null(cowvm_create(&cfg), "flags %#x accepted", bad[i]);
		cr_assert_eq(errno, EINVAL);
	}
}

/* THPeligible of the VMA whose smaps header starts at addr (as hex, no 0x). */
static int eligible(cowvm_task_t *t, uint64_t addr)
{
	static char buf[1 << 16];
	int64_t n = cowvm_proc_smaps(t, buf, sizeof buf);
	cr_assert(n > 0 && n < (int64_t)sizeof buf);
	buf[n] = '\0';
	char head[32];
	snprintf(head, sizeof head, "%08llx-", (unsigned long long)addr);
	char *p = strstr(buf, head);
	cr_assert(p, "no VMA at %#llx in\n%s", (unsigned long long)addr, buf);
	p = strstr(p, "THPeligible:");
	cr_assert(p);
	return atoi(p + strlen("THPeligible:"));
}

#define BASE 0x40000000ull
#define MiB (1ull << 20)

static cowvm_task_t *with_vmas(cowvm_t *vm)
{
	cowvm_task_t *t = cowvm_spawn(vm);
	cr_assert(t);
	/* 4 MiB aligned; 2 MiB + 8 KiB not holding an aligned 2 MiB; 4 MiB shared */
	cr_assert_eq(cowvm_mmap(t, BASE, 4 * MiB, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED), (int64_t)BASE);
	cr_assert_eq(cowvm_mmap(t, BASE + 16 * MiB + 4096, 2 * MiB + 8192, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED), (int64_t)(BASE + 16 * MiB + 4096));
	cr_assert_eq(cowvm_mmap(t, BASE + 32 * MiB, 4 * MiB, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED), (int64_t)(BASE + 32 * MiB));
	return t;
}

Test(thp, thpeligible_follows_enabled_madvise)
{
	cowvm_t *vm = make(0);
	cowvm_task_t *t = with_vmas(vm);
	cr_assert_eq(eligible(t, BASE), 0, "madvise: no advice, not eligible");
	cr_assert_eq(cowvm_madvise(t, BASE, 4 * MiB, COWVM_MADV_HUGEPAGE), 0);
	cr_assert_eq(eligible(t, BASE), 1);
	cr_assert_eq(cowvm_madvise(t, BASE + 16 * MiB + 4096, 2 * MiB + 8192, COWVM_MADV_HUGEPAGE), 0);
	cr_assert_eq(eligible(t, BASE + 16 * MiB + 4096), 0, "holds no aligned 2 MiB");
	cr_assert_eq(cowvm_madvise(t, BASE + 32 * MiB, 4 * MiB, COWVM_MADV_HUGEPAGE), 0);
	cr_assert_eq(eligible(t, BASE + 32 * MiB), 0, "shared memory is shmem's policy (never)");
	cr_assert_eq(cowvm_madvise(t, BASE, 4 * MiB, COWVM_MADV_NOHUGEPAGE), 0);
	cr_assert_eq(eligible(t, BASE), 0);
	cowvm_exit(t);
	cowvm_destroy(vm);
}

Test(thp, thpeligible_follows_enabled_always_and_never)
{
	cowvm_t *vm = make(COWVM_CONFIG_THP_ALWAYS);
	cowvm_task_t *t = with_vmas(vm);
	cr_assert_eq(eligible(t, BASE), 1, "always: eligible without advice");
	cr_assert_eq(eligible(t, BASE + 16 * MiB + 4096), 0);
	cr_assert_eq(cowvm_madvise(t, BASE, 4 * MiB, COWVM_MADV_NOHUGEPAGE), 0);
	cr_assert_eq(eligible(t, BASE), 0, "always: VM_NOHUGEPAGE still opts out");
	cowvm_exit(t);
	cowvm_destroy(vm);

	vm = make(COWVM_CONFIG_THP_NEVER);
	t = with_vmas(vm);
	cr_assert_eq(cowvm_madvise(t, BASE, 4 * MiB, COWVM_MADV_HUGEPAGE), 0);
	cr_assert_eq(eligible(t, BASE), 0, "never: not even with MADV_HUGEPAGE");
	cowvm_exit(t);
	cowvm_destroy(vm);
}
