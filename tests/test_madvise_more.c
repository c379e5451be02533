/*
 * test_madvise_more.c - MADV_POPULATE_READ/WRITE, MADV_REMOVE, process_madvise, MAP_GROWSDOWN
 * stacks (guard gap, RLIMIT_STACK, PROT_GROWSDOWN) and the /proc text renderers, with the
 * outcomes and fault counts recorded on the host kernel (docs/fidelity.md).
 */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

TestSuite(madvise_more, .init = tu_setup, .fini = tu_teardown);

#define A TU_BASE

static uint64_t faults(cowvm_task_t *t)
{
	struct cowvm_task_stats s = stats(t);
	return s.min_flt + s.maj_flt;
}

/* POPULATE_READ of untouched private memory maps the zero page (one fault a page, as the host
 * counts GUP faults); again: none; POPULATE_WRITE then breaks each zero page (4 faults), and
 * fresh memory takes one write fault a page. */
Test(madvise_more, populate_read_maps_the_zero_page_and_populate_write_real_pages)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	uint64_t f0 = faults(t);
	EQ(cowvm_madvise(t, A, 4 * PG, MADV_POPULATE_READ), 0);
	EQ(faults(t), f0 + 4);
	for (int i = 0; i < 4; i++)
		EQ(pfn_of(t, A + i * PG), zero_pfn());
	EQ(stats(t).rss_anon, 0);
	EQ(cowvm_madvise(t, A, 4 * PG, MADV_POPULATE_READ), 0);
	EQ(faults(t), f0 + 4);
	EQ(cowvm_madvise(t, A, 4 * PG, MADV_POPULATE_WRITE), 0);
	EQ(faults(t), f0 + 8);
	EQ(pm_exclusive(t, A), 1);
	EQ(pte_writable(t, A + 3 * PG), 1);
	EQ(cowvm_madvise(t, A, 4 * PG, MADV_POPULATE_WRITE), 0);
	EQ(faults(t), f0 + 8);
	CHECK();
}

/* The errno table: PROT_NONE, a write to read-only, a read of write- or exec-only memory are
 * -EINVAL; a hole is -ENOMEM after the pages before it; unaligned start -EINVAL; length 0 ok. */
Test(madvise_more, populate_fails_as_linux_does_after_the_pages_before_the_failure)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_NONE, MAP_PRIV_ANON);
	EQ(cowvm_madvise(t, A, 2 * PG, MADV_POPULATE_READ), -EINVAL);
	EQ(cowvm_madvise(t, A, 2 * PG, MADV_POPULATE_WRITE), -EINVAL);
	uint64_t R = A + 0x10000;
	map_fixed(t, R, 2, PROT_READ, MAP_PRIV_ANON);
	EQ(cowvm_madvise(t, R, 2 * PG, MADV_POPULATE_WRITE), -EINVAL);
	EQ(pm_present(t, R), 0);
	EQ(cowvm_madvise(t, R, 2 * PG, MADV_POPULATE_READ), 0);
	uint64_t W = A + 0x20000;
	map_fixed(t, W, 2, PROT_WRITE, MAP_PRIV_ANON);
	EQ(cowvm_madvise(t, W, 2 * PG, MADV_POPULATE_READ), -EINVAL);
	EQ(cowvm_madvise(t, W, 2 * PG, MADV_POPULATE_WRITE), 0);
	uint64_t X = A + 0x30000;
	map_fixed(t, X, 2, PROT_EXEC, MAP_PRIV_ANON);
	EQ(cowvm_madvise(t, X, 2 * PG, MADV_POPULATE_READ), -EINVAL);
	uint64_t H = A + 0x40000;
	map_fixed(t, H, 1, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, H + 2 * PG, 1, PROT_RW, MAP_PRIV_ANON);
	uint64_t f0 = faults(t);
	EQ(cowvm_madvise(t, H, 3 * PG, MADV_POPULATE_WRITE), -ENOMEM);
	EQ(faults(t), f0 + 1);
	EQ(pm_present(t, H), 1);
	EQ(pm_present(t, H + 2 * PG), 0);
	uint64_t M = A + 0x50000;
	map_fixed(t, M, 1, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t, M + PG, 1, PROT_NONE, MAP_PRIV_ANON);
	map_fixed(t, M + 2 * PG, 1, PROT_RW, MAP_PRIV_ANON);
	EQ(cowvm_madvise(t, M, 3 * PG, MADV_POPULATE_WRITE), -EINVAL);
	EQ(pm_present(t, M), 1);
	EQ(pm_present(t, M + 2 * PG), 0);
	EQ(cowvm_madvise(t, H + 1, PG, MADV_POPULATE_READ), -EINVAL);
	EQ(cowvm_madvise(t, H, 0, MADV_POPULATE_READ), 0);
	EQ(cowvm_madvise(t, H, (uint64_t)-4096, MADV_POPULATE_READ), -EINVAL);
	/* shared memory beyond its object is SIGBUS: -EFAULT */
	uint64_t S = A + 0x60000;
	map_fixed(t, S, 1, PROT_RW, MAP_SHARED_ANON);
	EQ(cowvm_mremap(t, S, PG, 2 * PG, 0, 0), S);
	EQ(cowvm_madvise(t, S, 2 * PG, MADV_POPULATE_READ), -EFAULT);
	CHECK();
}

/* Shared memory: POPULATE_READ allocates and maps (writable, clean: Private_Clean), then
 * POPULATE_WRITE takes no fault but dirties the pages (Private_Dirty), as on the host. After
 * fork, the child's POPULATE_WRITE copies each page (4 faults), its POPULATE_READ takes none. */
Test(madvise_more, populate_on_shared_memory_and_after_fork_counts_as_the_host)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_SHARED_ANON);
	uint64_t f0 = faults(t);
	EQ(cowvm_madvise(t, A, 4 * PG, MADV_POPULATE_READ), 0);
	EQ(faults(t), f0 + 4);
	EQ(smaps(t, A, PG).private_clean, 4 * PG);
	EQ(cowvm_madvise(t, A, 4 * PG, MADV_POPULATE_WRITE), 0);
	EQ(faults(t), f0 + 4);
	EQ(smaps(t, A, PG).private_dirty, 4 * PG);
	uint64_t P = A + 0x100000;
	map_fixed(t, P, 4, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 4; i++)
		fill_page(t, P + i * PG, (uint8_t)i);
	cowvm_task_t *c = tu_fork(t);
	f0 = faults(c);
	EQ(cowvm_madvise(c, P, 4 * PG, MADV_POPULATE_READ), 0);
	EQ(faults(c), f0);
	EQ(cowvm_madvise(c, P, 4 * PG, MADV_POPULATE_WRITE), 0);
	EQ(faults(c), f0 + 4);
	NE(pfn_of(c, P), pfn_of(t, P));
	expect_page(c, P + 3 * PG, 3);
	CHECK();
}

/* MADV_REMOVE frees shared pages in every process that maps them; the next read finds zeros
 * (a new page); private memory: -EINVAL; a locked VMA: -EINVAL; a hole: -ENOMEM. */
Test(madvise_more, madv_remove_punches_a_hole_in_shared_memory_for_every_process)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_SHARED_ANON);
	for (int i = 0; i < 4; i++)
		fill_page(t, A + i * PG, (uint8_t)(i + 1));
	cowvm_task_t *c = tu_fork(t);
	expect_page(c, A + PG, 2); /* the child maps page 1 too */
	uint64_t shmem0 = vmstat().nr_shmem;
	EQ(cowvm_madvise(t, A + PG, 2 * PG, MADV_REMOVE), 0);
	EQ(vmstat().nr_shmem, shmem0 - 2);
	EQ(pm_present(t, A + PG), 0);
	EQ(pm_present(c, A + PG), 0);
	EQ(stats(t).rss_shmem, 2);
	expect_zeros(c, A + PG, PG);
	expect_page(t, A, 1);
	expect_page(t, A + 3 * PG, 4);
	CHECK();
	uint64_t P = A + 0x100000;
	map_fixed(t, P, 1, PROT_RW, MAP_PRIV_ANON);
	EQ(cowvm_madvise(t, P, PG, MADV_REMOVE), -EINVAL);
	uint64_t RO = A + 0x200000;
	map_fixed(t, RO, 2, PROT_READ, MAP_SHARED_ANON);
	EQ(cowvm_madvise(t, RO, PG, MADV_REMOVE), 0);
	EQ(cowvm_mlock(t, A, PG), 0);
	EQ(cowvm_madvise(t, A, PG, MADV_REMOVE), -EINVAL);
	uint64_t HS = A + 0x300000;
	map_fixed(t, HS, 1, PROT_RW, MAP_SHARED_ANON);
	EQ(cowvm_madvise(t, HS, 2 * PG, MADV_REMOVE), -ENOMEM);
	CHECK();
}

/* process_madvise on itself: any advice; the result is the iov_len sum of the ranges done
 * (4196 for 4096 + 100), or the first range's error; on another process only WILLNEED, COLD
 * and PAGEOUT, with CAP_SYS_NICE (-EPERM), and not into a more privileged one (-EACCES). */
Test(madvise_more, process_madvise_returns_bytes_advised_and_checks_the_remote_rules)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 4; i++)
		fill_page(t, A + i * PG, 1);
	struct iovec iov[3] = {
		{ (void *)(uintptr_t)A, PG }, { (void *)(uintptr_t)(A + 2 * PG), 100 },
		{ (void *)(uintptr_t)(A + 0x800000), PG },
	};
	EQ(cowvm_process_madvise(t, t, iov, 2, MADV_DONTNEED, 0), 4196);
	EQ(pm_present(t, A), 0);
	EQ(pm_present(t, A + PG), 1);
	EQ(pm_present(t, A + 2 * PG), 0);
	EQ(cowvm_process_madvise(t, t, iov, 3, MADV_COLD, 0), 4196);
	EQ(cowvm_process_madvise(t, t, iov + 2, 1, MADV_COLD, 0), -ENOMEM);
	EQ(cowvm_process_madvise(t, t, iov, 2, MADV_COLD, 1), -EINVAL);
	EQ(cowvm_process_madvise(t, t, iov, 2, 99, 0), -EINVAL);
	EQ(cowvm_process_madvise(t, NULL, iov, 2, MADV_COLD, 0), -EBADF);
	EQ(cowvm_process_madvise(t, t, iov, 0, MADV_COLD, 0), 0);
	EQ(cowvm_process_madvise(t, t, iov, 2000, MADV_COLD, 0), -EINVAL);
	uint64_t f0 = faults(t);
	EQ(cowvm_process_madvise(t, t, iov, 2, MADV_POPULATE_WRITE, 0), 4196);
	EQ(faults(t), f0 + 2);
	struct iovec bad[2] = { { (void *)(uintptr_t)(A + 1), PG }, { (void *)(uintptr_t)A, PG } };
	EQ(cowvm_process_madvise(t, t, bad, 2, MADV_COLD, 0), -EINVAL);
	struct iovec late[2] = { { (void *)(uintptr_t)A, PG }, { (void *)(uintptr_t)(A + 1), PG } };
	EQ(cowvm_process_madvise(t, t, late, 2, MADV_COLD, 0), 4096);

	cowvm_task_t *other = tu_spawn();
	for (int adv = 0; adv <= 25; adv++) {
		bool allowed = adv == MADV_WILLNEED || adv == MADV_COLD || adv == MADV_PAGEOUT;
		EQ_WHY(cowvm_process_madvise(other, t, iov, 1, adv, 0), allowed ? -EPERM : -EINVAL,
		       "remote advice without CAP_SYS_NICE: allowed ones -EPERM, others -EINVAL");
	}
	EQ(cowvm_process_madvise(other, t, iov, 1, MADV_DONTNEED, 0), -EINVAL);
	EQ(cowvm_process_madvise(other, t, iov, 1, MADV_COLD, 0), -EPERM);
	EQ(cowvm_set_caps(other, COWVM_CAP_SYS_NICE), 0);
	EQ(cowvm_process_madvise(other, t, iov, 1, MADV_COLD, 0), PG);
	EQ(frame(pfn_of(t, A)).lru, 1);
	EQ(cowvm_process_madvise(other, t, iov, 1, MADV_PAGEOUT, 0), PG);
	EQ(cowvm_process_madvise(other, t, iov, 1, MADV_WILLNEED, 0), PG);
	EQ(cowvm_process_madvise(other, t, iov, 1, MADV_POPULATE_READ, 0), -EINVAL);
	EQ(cowvm_set_caps(t, COWVM_CAP_IPC_LOCK), 0);
	EQ(cowvm_process_madvise(other, t, iov, 1, MADV_COLD, 0), -EACCES);
	CHECK();
}

/*
 * MAP_GROWSDOWN: an access below the stack grows it to the page (one fault, any distance),
 * vm_pgoff moving with vm_start; the gap to an accessible VMA below must stay >= 256 pages
 * (exactly 256 is fine), a PROT_NONE neighbour needs none; RLIMIT_STACK bounds the size;
 * MAP_SHARED|MAP_GROWSDOWN is -EINVAL.
 *
 *   lo [1p)            ... >= 1 MiB ...            [stack 1p) at G
 */
Test(madvise_more, growsdown_stacks_expand_on_faults_within_the_guard_gap_and_rlimit)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t G = A + 0x400000;
	EQ(cowvm_mmap(t, G, PG, PROT_RW, MAP_PRIV_ANON | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE), G);
	NE(vma_at(t, G).flags & 0x100, 0);
	uint64_t f0 = faults(t);
	write_byte(t, G - 1, 1);
	EQ(faults(t), f0 + 1);
	EQ(vma_at(t, G).start, G - PG);
	write_byte(t, G - 100 * PG, 2);
	EQ(vma_at(t, G).start, G - 100 * PG);
	EQ(vma_at(t, G).pgoff, (G - 100 * PG) >> 12);
	EQ(read_byte(t, G - 100 * PG), 2);
	CHECK();
	/* an accessible VMA 256 pages below the new bottom: allowed; one page further: SIGSEGV */
	uint64_t lo_end = G - 100 * PG - 0x100000 - 10 * PG;
	map_fixed(t, lo_end - PG, 1, PROT_RW, MAP_PRIV_ANON);
	write_byte(t, lo_end + 0x100000, 3); /* gap exactly 256 pages */
	EQ(vma_at(t, G).start, lo_end + 0x100000);
	uint8_t b = 0;
	EQ(cowvm_write(t, lo_end + 0x100000 - PG, &b, 1), -EFAULT);
	CHECK();
	/* a PROT_NONE VMA below needs no gap */
	uint64_t G2 = A + 0x800000;
	EQ(cowvm_mmap(t, G2, PG, PROT_RW, MAP_PRIV_ANON | MAP_GROWSDOWN | MAP_FIXED), G2);
	map_fixed(t, G2 - 0x100000, 1, PROT_NONE, MAP_PRIV_ANON);
	write_byte(t, G2 - 0x100000 + 2 * PG, 4);
	/* mmap does not place a mapping in a stack's guard gap when given a hint there */
	int64_t h = cowvm_mmap(t, G - 100 * PG - 0x80000, PG, PROT_READ, MAP_PRIV_ANON);
	NE(h, (int64_t)(G - 100 * PG - 0x80000));
	/* RLIMIT_STACK 16 pages */
	uint64_t G3 = A + 0x1000000;
	EQ(cowvm_mmap(t, G3, PG, PROT_RW, MAP_PRIV_ANON | MAP_GROWSDOWN | MAP_FIXED), G3);
	struct rlimit rl = { 16 * PG, RLIM_INFINITY };
	EQ(cowvm_setrlimit(t, RLIMIT_STACK, &rl), 0);
	write_byte(t, G3 - 15 * PG, 5);
	EQ(cowvm_write(t, G3 - 16 * PG, &b, 1), -EFAULT);
	EQ(cowvm_mmap(t, 0, PG, PROT_RW, MAP_SHARED_ANON | MAP_GROWSDOWN), -EINVAL);
	CHECK();
}

/* PROT_GROWSDOWN applies from the bottom of the stack the range starts in; it needs a stack
 * (-EINVAL); both growth bits, or PROT_GROWSUP on x86: -EINVAL. */
Test(madvise_more, prot_growsdown_reaches_down_to_the_bottom_of_the_stack)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t G = A + 0x400000;
	EQ(cowvm_mmap(t, G, 2 * PG, PROT_RW, MAP_PRIV_ANON | MAP_GROWSDOWN | MAP_FIXED), G);
	write_byte(t, G - 100 * PG, 1);
	uint64_t bottom = G - 100 * PG;
	EQ(cowvm_mprotect(t, G - 50 * PG, 10 * PG, PROT_READ | PROT_GROWSDOWN), 0);
	EQ(vma_at(t, bottom).start, bottom);
	EQ(vma_at(t, bottom).end, G - 40 * PG);
	EQ(vma_at(t, bottom).prot, PROT_READ);
	EQ(vma_at(t, G).prot, PROT_RW);
	EQ(cowvm_mprotect(t, G, PG, PROT_RW | PROT_GROWSDOWN | PROT_GROWSUP), -EINVAL);
	EQ(cowvm_mprotect(t, G, PG, PROT_RW | PROT_GROWSUP), -EINVAL);
	uint64_t P = A + 0x800000;
	map_fixed(t, P, 2, PROT_RW, MAP_PRIV_ANON);
	EQ(cowvm_mprotect(t, P, PG, PROT_READ | PROT_GROWSDOWN), -EINVAL);
	CHECK();
}

static char *render(int64_t (*fn)(cowvm_task_t *, char *, size_t), cowvm_task_t *t)
{
	int64_t n = fn(t, NULL, 0);
	TU_ASSERT(n > 0, "renderer length %lld", (long long)n);
	char *buf = malloc((size_t)n + 1);
	EQ(fn(t, buf, (size_t)n + 1), n);
	EQ(strlen(buf), n);
	return buf;
}

/* The text is the host's, byte for byte where the host's was recorded: an anonymous header
 * line with its trailing space, a shared one padded to column 73, 16+8-column fields, the
 * VmFlags letters in bit order ("sd" only with soft-dirty), the rollup header, status lines. */
Test(madvise_more, proc_text_has_the_host_kernels_format)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, 0x10000000, 4, PROT_RW, MAP_PRIV_ANON);
	fill_page(t, 0x10000000, 1);
	EQ(cowvm_mlock(t, 0x10000000, PG), 0);
	map_fixed(t, 0x10800000, 4, PROT_RW, MAP_SHARED_ANON);
	char *s = render(cowvm_proc_smaps, t);
	TU_ASSERT(strstr(s, "10000000-10001000 rw-p 00000000 00:00 0 \nSize:                  4 kB\n"
			    "KernelPageSize:        4 kB\nMMUPageSize:           4 kB\nRss:                   4 kB\n") != NULL,
		  "private header and fields: %s", s);
	TU_ASSERT(strstr(s, "Locked:                4 kB\nTHPeligible:           0\n"
			    "ProtectionKey:         0\nVmFlags: rd wr mr mw me lo ac sd \n") != NULL, "%s", s);
	char want[160];
	snprintf(want, sizeof want, "10800000-10804000 rw-s 00000000 00:01 %llu",
		 (unsigned long long)vma_at(t, 0x10800000).anon_vma);
	char *line = strstr(s, "10800000-10804000 rw-s");
	TU_ASSERT(line != NULL, "%s", s);
	char *name = strstr(line, "/dev/zero (deleted)\n");
	TU_ASSERT(name && name - line == 73, "shared name at column %ld", name ? (long)(name - line) : -1L);
	TU_ASSERT(strstr(s, "VmFlags: rd wr sh mr mw me ms sd \n") != NULL, "%s", s);
	free(s);
	s = render(cowvm_proc_smaps_rollup, t);
	line = strstr(s, "10000000-10804000 ---p 00000000 00:00 0 ");
	TU_ASSERT(line == s, "%s", s);
	TU_ASSERT(strstr(s, "[rollup]\nRss:                   4 kB\nPss:                   4 kB\n"
			    "Pss_Dirty:             4 kB\nPss_Anon:              4 kB\n") != NULL, "%s", s);
	TU_ASSERT(strstr(s, "[rollup]") - s == 73, "rollup name column");
	free(s);
	s = render(cowvm_proc_status, t);
	TU_ASSERT(strstr(s, "VmPeak:\t      32 kB\nVmSize:\t      32 kB\nVmLck:\t       4 kB\nVmPin:\t       0 kB\n") == s,
		  "%s", s);
	TU_ASSERT(strstr(s, "RssAnon:\t       4 kB\n") && strstr(s, "VmData:\t      16 kB\n") &&
		  strstr(s, "HugetlbPages:\t       0 kB\n"), "%s", s);
	free(s);
	/* VmPeak and VmHWM keep the high-water marks after an munmap */
	EQ(cowvm_munmap(t, 0x10800000, 4 * PG), 0);
	s = render(cowvm_proc_status, t);
	TU_ASSERT(strstr(s, "VmPeak:\t      32 kB\nVmSize:\t      16 kB\n") == s, "%s", s);
	TU_ASSERT(strstr(s, "VmHWM:\t       4 kB\nVmRSS:\t       4 kB\n") != NULL, "%s", s);
	free(s);
	char small[8];
	int64_t n = cowvm_proc_maps(t, small, sizeof small);
	TU_ASSERT(n > 8 && strlen(small) == 7, "truncated maps");
	CHECK();
}

/* COWVM_CONFIG_NO_SOFT_DIRTY, as the host kernel is built: no "sd", no pagemap bit 55, and
 * clear_refs 4 accepted without effect (the next write takes no fault). */
Test(madvise_more, without_soft_dirty_vmflags_pagemap_and_clear_refs_follow_the_configuration)
{
	cowvm_t *vm = cowvm_create(&(struct cowvm_config){ .phys_bytes = 4 << 20,
							   .flags = COWVM_CONFIG_NO_SOFT_DIRTY });
	TU_ASSERT(vm != NULL, "create");
	cowvm_task_t *t = cowvm_spawn(vm);
	EQ(cowvm_mmap(t, A, PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED), A);
	uint8_t b = 1;
	EQ(cowvm_write(t, A, &b, 1), 0);
	EQ(cowvm_pagemap(t, A) & COWVM_PM_SOFT_DIRTY, 0);
	char buf[4096];
	cowvm_proc_smaps(t, buf, sizeof buf);
	TU_ASSERT(strstr(buf, "VmFlags: rd wr mr mw me ac \n") != NULL, "%s", buf);
	EQ(cowvm_clear_refs(t, 4), 0);
	struct cowvm_task_stats s0;
	cowvm_task_stats(t, &s0);
	EQ(cowvm_write(t, A, &b, 1), 0);
	struct cowvm_task_stats s1;
	cowvm_task_stats(t, &s1);
	EQ(s1.min_flt, s0.min_flt);
	char why[256];
	EQ(cowvm_check(vm, why, sizeof why), 0);
	cowvm_destroy(vm);
}
