/*
 * test_mlock.c - mlock, mlock2(MLOCK_ONFAULT), munlock, mlockall, munlockall, MAP_LOCKED:
 * population, VM_LOCKED and VmLck, RLIMIT_MEMLOCK, the unevictable list, and fork (the child
 * does not inherit the lock), as recorded on the host kernel (docs/fidelity.md, "mlock").
 */
#include "testutil.h"

TestSuite(mlock, .init = tu_setup, .fini = tu_teardown);

#define A TU_BASE
#define VM_LOCKED 0x2000ul
#define VM_LOCKONFAULT 0x80000ul
#define LRU_UNEVICTABLE 3

static uint64_t faults(cowvm_task_t *t)
{
	struct cowvm_task_stats s = stats(t);
	return s.min_flt + s.maj_flt;
}

static void set_memlock(cowvm_task_t *t, uint64_t bytes)
{
	struct rlimit rl = { bytes, bytes };
	EQ(cowvm_setrlimit(t, RLIMIT_MEMLOCK, &rl), 0);
}

/* mlock of 4 fresh RW pages: 4 write faults, exclusive pages, on the unevictable list, VmLck
 * 16 kB, smaps Locked 16 kB; a read-only range populates with the zero page (4 faults, nothing
 * locked in smaps); munlock puts the pages back on the inactive list. */
Test(mlock, mlock_populates_and_moves_the_pages_to_the_unevictable_list)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	uint64_t f0 = faults(t);
	EQ(cowvm_mlock(t, A, 4 * PG), 0);
	EQ(faults(t), f0 + 4);
	EQ(stats(t).locked_vm, 4);
	NE(vma_at(t, A).flags & VM_LOCKED, 0);
	for (int i = 0; i < 4; i++) {
		uint64_t pfn = pfn_of(t, A + i * PG);
		EQ(pm_exclusive(t, A + i * PG), 1);
		EQ(frame(pfn).lru, LRU_UNEVICTABLE);
		EQ(frame(pfn).mlocked, 1);
	}
	EQ(vmstat().nr_mlock, 4);
	EQ(smaps(t, A, PG).locked, 4 * PG);
	CHECK();

	uint64_t R = A + 0x100000;
	map_fixed(t, R, 4, PROT_READ, MAP_PRIV_ANON);
	f0 = faults(t);
	EQ(cowvm_mlock(t, R, 4 * PG), 0);
	EQ(faults(t), f0 + 4);
	EQ(pfn_of(t, R), zero_pfn());
	EQ(stats(t).locked_vm, 8);
	EQ(smaps(t, R, PG).locked, 0);
	CHECK();

	EQ(cowvm_munlock(t, A, 4 * PG), 0);
	EQ(frame(pfn_of(t, A)).lru, 1);
	EQ(frame(pfn_of(t, A)).mlocked, 0);
	EQ(vmstat().nr_mlock, 0);
	EQ(stats(t).locked_vm, 4);
	CHECK();
}

/* MLOCK_ONFAULT: no population; each fault locks what it maps; VmLck counts the whole VMA;
 * mlock2(0) over it populates the rest (host: 3 faults) and drops VM_LOCKONFAULT. */
Test(mlock, onfault_locks_pages_as_they_fault_and_mlock_then_populates_the_rest)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	uint64_t f0 = faults(t);
	EQ(cowvm_mlock2(t, A, 4 * PG, MLOCK_ONFAULT), 0);
	EQ(faults(t), f0);
	EQ(pm_present(t, A), 0);
	EQ(stats(t).locked_vm, 4);
	NE(vma_at(t, A).flags & VM_LOCKONFAULT, 0);
	write_byte(t, A, 1);
	EQ(frame(pfn_of(t, A)).lru, LRU_UNEVICTABLE);
	EQ(cowvm_mlock2(t, A, 4 * PG, 2), -EINVAL);
	f0 = faults(t);
	EQ(cowvm_mlock2(t, A, 4 * PG, 0), 0);
	EQ(faults(t), f0 + 3);
	EQ(vma_at(t, A).flags & VM_LOCKONFAULT, 0);
	CHECK();
}

/* Unaligned mlock locks the pages the range touches (splitting the VMA in three); munlock
 * merges it back; a hole: -ENOMEM after the part before it (which stays locked, unpopulated:
 * apply_vma_lock_flags fails before __mm_populate). */
Test(mlock, ranges_round_to_pages_split_and_merge_and_a_hole_is_enomem)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 4, PROT_RW, MAP_PRIV_ANON);
	uint64_t n0 = stats(t).nr_vmas;
	EQ(cowvm_mlock(t, A + PG + 100, PG), 0); /* touches pages 1 and 2 */
	EQ(stats(t).nr_vmas, n0 + 2);
	EQ(vma_at(t, A + PG).start, A + PG);
	EQ(vma_at(t, A + PG).end, A + 3 * PG);
	EQ(pm_present(t, A), 0);
	EQ(pm_present(t, A + 2 * PG), 1);
	EQ(cowvm_munlock(t, A + PG, 3 * PG), 0);
	EQ(stats(t).nr_vmas, n0);
	EQ(cowvm_mlock(t, A, 8 * PG), -ENOMEM);
	EQ(stats(t).locked_vm, 4);
	EQ(pm_present(t, A), 0);
	EQ(cowvm_munlock(t, A, 8 * PG), -ENOMEM);
	EQ(stats(t).locked_vm, 0);
	EQ(cowvm_mlock(t, A, 0), 0);
	EQ(cowvm_mlock(t, (uint64_t)-4096, 8192), -EINVAL);
	/* PROT_NONE: the VMA is locked (VmLck counts it) but populate fails: -ENOMEM (host) */
	map_fixed(t, A + 0x100000, 2, PROT_NONE, MAP_PRIV_ANON);
	EQ(cowvm_mlock(t, A + 0x100000, 2 * PG), -ENOMEM);
	EQ(stats(t).locked_vm, 2);
	CHECK();
}

/* RLIMIT_MEMLOCK 16 kB, unprivileged: 4 pages fit, a 5th does not (pages locked already in the
 * range are not counted twice); limit 0: -EPERM, even for length 0; CAP_IPC_LOCK lifts both. */
Test(mlock, rlimit_memlock_and_cap_ipc_lock_decide_what_may_be_locked)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	set_memlock(t, 4 * PG);
	EQ(cowvm_mlock(t, A, 4 * PG), 0);
	EQ(cowvm_mlock(t, A, 4 * PG), 0);
	EQ(cowvm_mlock(t, A, 5 * PG), -ENOMEM);
	EQ(cowvm_mlock(t, A + 4 * PG, PG), -ENOMEM);
	EQ(cowvm_mlock2(t, A, 5 * PG, MLOCK_ONFAULT), -ENOMEM);
	EQ(cowvm_mlockall(t, MCL_CURRENT), -ENOMEM);
	EQ(cowvm_munlock(t, A, 8 * PG), 0);
	EQ(cowvm_mlockall(t, MCL_FUTURE), 0);
	EQ(cowvm_mmap(t, 0, 8 * PG, PROT_RW, MAP_PRIV_ANON), -EAGAIN);
	int64_t small = cowvm_mmap(t, 0, 2 * PG, PROT_RW, MAP_PRIV_ANON);
	TU_ASSERT(small > 0, "mmap under MCL_FUTURE: %lld", (long long)small);
	EQ(pm_present(t, (uint64_t)small), 1);
	EQ(cowvm_munlockall(t), 0);
	EQ(cowvm_mmap(t, 0, 8 * PG, PROT_RW, MAP_PRIV_ANON | MAP_LOCKED), -EAGAIN);
	set_memlock(t, 0);
	EQ(cowvm_mlock(t, A, PG), -EPERM);
	EQ(cowvm_mlock(t, A + 100, 0), -EPERM);
	EQ(cowvm_mlockall(t, MCL_CURRENT), -EPERM);
	EQ(cowvm_mmap(t, 0, PG, PROT_RW, MAP_PRIV_ANON | MAP_LOCKED), -EPERM);
	EQ(cowvm_munlock(t, A, PG), 0);
	struct rlimit up = { 4 * PG, 4 * PG };
	EQ(cowvm_setrlimit(t, RLIMIT_MEMLOCK, &up), -EPERM); /* raising the hard limit */
	EQ(cowvm_set_caps(t, COWVM_CAP_IPC_LOCK), 0);
	EQ(cowvm_mlock(t, A, 8 * PG), 0);
	EQ(stats(t).locked_vm, 8);
	CHECK();
}

/* mlockall: bad flags; MCL_FUTURE locks and populates new mappings (read-only ones with the
 * zero page), MCL_FUTURE|MCL_ONFAULT only locks them; munlockall undoes both; MAP_LOCKED
 * populates (host: 3 faults). */
Test(mlock, mlockall_future_locks_new_mappings_and_munlockall_undoes_it)
{
	cowvm_task_t *t = tu_spawn();
	EQ(cowvm_mlockall(t, 0), -EINVAL);
	EQ(cowvm_mlockall(t, MCL_ONFAULT), -EINVAL);
	EQ(cowvm_mlockall(t, 8), -EINVAL);
	EQ(cowvm_mlockall(t, MCL_FUTURE), 0);
	uint64_t f0 = faults(t);
	int64_t u = cowvm_mmap(t, 0, 3 * PG, PROT_RW, MAP_PRIV_ANON);
	EQ(faults(t), f0 + 3);
	NE(vma_at(t, (uint64_t)u).flags & VM_LOCKED, 0);
	int64_t r = cowvm_mmap(t, 0, 3 * PG, PROT_READ, MAP_PRIV_ANON);
	EQ(pfn_of(t, (uint64_t)r), zero_pfn());
	EQ(stats(t).locked_vm, 6);
	CHECK();
	EQ(cowvm_munlockall(t), 0);
	EQ(stats(t).locked_vm, 0);
	EQ(cowvm_mlockall(t, MCL_FUTURE | MCL_ONFAULT), 0);
	f0 = faults(t);
	int64_t w = cowvm_mmap(t, 0, 3 * PG, PROT_RW, MAP_PRIV_ANON);
	EQ(faults(t), f0);
	EQ(vma_at(t, (uint64_t)w).flags & (VM_LOCKED | VM_LOCKONFAULT), VM_LOCKED | VM_LOCKONFAULT);
	EQ(cowvm_munlockall(t), 0);
	f0 = faults(t);
	int64_t l = cowvm_mmap(t, 0, 3 * PG, PROT_RW, MAP_PRIV_ANON | MAP_LOCKED);
	EQ(faults(t), f0 + 3);
	EQ(frame(pfn_of(t, (uint64_t)l)).lru, LRU_UNEVICTABLE);
	EQ(cowvm_mlockall(t, MCL_CURRENT), 0);
	EQ(stats(t).locked_vm, stats(t).total_vm);
	CHECK();
}

/*
 * fork of a locked mapping: the child's VMA is not locked (VmLck 0) but maps the same, still
 * mlocked frames; a child write copies into an evictable page; a parent write to a shared page
 * copies into a new mlocked page, and the old one, now mapped only by the child, is munlocked.
 * The child does not inherit MCL_FUTURE.
 */
Test(mlock, the_child_of_fork_does_not_inherit_the_lock_and_cow_copies_follow_each_side)
{
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, 2, PROT_RW, MAP_PRIV_ANON);
	EQ(cowvm_mlock(p, A, 2 * PG), 0);
	fill_page(p, A, 1);
	fill_page(p, A + PG, 2);
	EQ(cowvm_mlockall(p, MCL_FUTURE), 0);
	cowvm_task_t *c = tu_fork(p);
	EQ(stats(c).locked_vm, 0);
	EQ(vma_at(c, A).flags & VM_LOCKED, 0);
	uint64_t pfn0 = pfn_of(c, A), pfn1 = pfn_of(c, A + PG);
	EQ(frame(pfn0).mlocked, 1);
	EQ(frame(pfn0).mlock_count, 1);
	write_byte(c, A, 9);
	EQ(frame(pfn_of(c, A)).mlocked, 0);
	EQ(frame(pfn_of(c, A)).lru, 2);
	EQ(frame(pfn0).mlocked, 1);
	write_byte(p, A + PG, 9);
	NE(pfn_of(p, A + PG), pfn1);
	EQ(frame(pfn_of(p, A + PG)).lru, LRU_UNEVICTABLE);
	EQ(frame(pfn1).mlocked, 0);
	expect_page(c, A + PG, 2);
	int64_t v = cowvm_mmap(c, 0, 2 * PG, PROT_RW, MAP_PRIV_ANON);
	EQ(pm_present(c, (uint64_t)v), 0);
	CHECK();
}

/* The LRU advice is for unlocked memory (-EINVAL); MADV_DONTNEED_LOCKED drops locked pages. */
Test(mlock, locked_memory_refuses_dontneed_free_cold_pageout_but_takes_dontneed_locked)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	fill_page(t, A, 3);
	EQ(cowvm_mlock(t, A, 2 * PG), 0);
	EQ(cowvm_madvise(t, A, PG, MADV_DONTNEED), -EINVAL);
	EQ(cowvm_madvise(t, A, PG, MADV_FREE), -EINVAL);
	EQ(cowvm_madvise(t, A, PG, MADV_COLD), -EINVAL);
	EQ(cowvm_madvise(t, A, PG, MADV_PAGEOUT), -EINVAL);
	expect_page(t, A, 3);
	EQ(cowvm_madvise(t, A, PG, 24 /* MADV_DONTNEED_LOCKED */), 0);
	EQ(pm_present(t, A), 0);
	EQ(vmstat().nr_mlock, 1);
	CHECK();
}

/* mprotect of a locked read-only mapping to writable populates it with write faults (host: 2
 * faults, the zero pages replaced by locked exclusive pages); an unlocked one is left alone. */
Test(mlock, mprotect_making_locked_memory_writable_breaks_cow_at_once)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_READ, MAP_PRIV_ANON);
	EQ(cowvm_mlock(t, A, 2 * PG), 0);
	EQ(pfn_of(t, A), zero_pfn());
	uint64_t f0 = faults(t);
	EQ(cowvm_mprotect(t, A, 2 * PG, PROT_RW), 0);
	EQ(faults(t), f0 + 2);
	EQ(pm_exclusive(t, A + PG), 1);
	EQ(frame(pfn_of(t, A)).lru, LRU_UNEVICTABLE);
	uint64_t S = A + 0x100000;
	map_fixed(t, S, 2, PROT_READ, MAP_PRIV_ANON);
	f0 = faults(t);
	EQ(cowvm_mprotect(t, S, 2 * PG, PROT_RW), 0);
	EQ(faults(t), f0);
	EQ(pm_present(t, S), 0);
	CHECK();
}

/* A range that wraps: do_mlock checks RLIMIT_MEMLOCK before apply_vma_lock_flags sees the wrap,
 * so mlock is ENOMEM under the limit and EINVAL only with CAP_IPC_LOCK; munlock is EINVAL; a
 * length that rounds up past the top wraps to 0 and locks nothing (found by `cowvm compare`,
 * tests/scenarios/mlock-readonly-zero.cows). */
Test(mlock, a_range_that_wraps_is_the_limit_first_then_einval)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	EQ(cowvm_mlock(t, A, 0xfffffffffffff000ull), -ENOMEM);
	EQ(cowvm_munlock(t, A, 0xfffffffffffff000ull), -EINVAL);
	EQ(cowvm_mlock(t, A, UINT64_MAX), 0); /* PAGE_ALIGN wraps to 0: nothing to do */
	EQ(stats(t).locked_vm, 0);
	EQ(cowvm_set_caps(t, COWVM_CAP_IPC_LOCK), 0);
	EQ(cowvm_mlock(t, A, 0xfffffffffffff000ull), -EINVAL);
	EQ(stats(t).locked_vm, 0);
	CHECK();
}
