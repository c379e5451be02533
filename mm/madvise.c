/*
 * madvise.c - advice on a range: MADV_DONTNEED (and DONTNEED_LOCKED) drops its pages (the next
 * touch faults in the zero page or a fresh page); MADV_FREE cleans them for lazy freeing;
 * MADV_COLD ages them to the inactive list; MADV_PAGEOUT reclaims the pages only this process
 * maps (swap-out through vmscan.c's reclaim_pages) when a swap device exists, else deactivates;
 * MADV_REMOVE punches a hole in shared memory; MADV_POPULATE_READ/WRITE fault the range in
 * through GUP; MADV_DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK, DONTDUMP/DODUMP, the access-pattern
 * and huge-page hints only set their VMA flags (which splits VMAs as in Linux).  Holes in the
 * range: the mapped parts are advised, then -ENOMEM.  process_madvise applies advice to the
 * ranges of an iovec, in the caller's or another process.
 */
#include "swap.h"

_Static_assert(COWVM_MADV_NORMAL == MADV_NORMAL && COWVM_MADV_RANDOM == MADV_RANDOM &&
	       COWVM_MADV_SEQUENTIAL == MADV_SEQUENTIAL && COWVM_MADV_WILLNEED == MADV_WILLNEED &&
	       COWVM_MADV_DONTNEED == MADV_DONTNEED && COWVM_MADV_FREE == MADV_FREE &&
	       COWVM_MADV_DONTFORK == MADV_DONTFORK && COWVM_MADV_DOFORK == MADV_DOFORK &&
	       COWVM_MADV_HUGEPAGE == MADV_HUGEPAGE && COWVM_MADV_NOHUGEPAGE == MADV_NOHUGEPAGE &&
	       COWVM_MADV_WIPEONFORK == MADV_WIPEONFORK && COWVM_MADV_KEEPONFORK == MADV_KEEPONFORK,
	       "include/cowvm.h's COWVM_MADV_* are Linux's");


#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef UIO_MAXIOV
#define UIO_MAXIOV 1024
#endif

static bool madvise_behavior_valid(int behavior)
{
	switch (behavior) {
	case MADV_NORMAL: case MADV_RANDOM: case MADV_SEQUENTIAL: case MADV_WILLNEED:
	case MADV_DONTNEED: case MADV_FREE: case MADV_DONTFORK: case MADV_DOFORK:
	case MADV_WIPEONFORK: case MADV_KEEPONFORK: case MADV_HUGEPAGE: case MADV_NOHUGEPAGE:
	case MADV_REMOVE: case MADV_DONTDUMP: case MADV_DODUMP: case MADV_COLD: case MADV_PAGEOUT:
	case MADV_POPULATE_READ: case MADV_POPULATE_WRITE: case MADV_DONTNEED_LOCKED:
		return true;
	}
	return false;
}

/* Advice that works on pages, under the read lock (madvise_need_mmap_write is false). */
static bool madvise_read_lock(int behavior)
{
	switch (behavior) {
	case MADV_DONTNEED: case MADV_DONTNEED_LOCKED: case MADV_WILLNEED: case MADV_FREE:
	case MADV_COLD: case MADV_PAGEOUT: case MADV_REMOVE:
		return true;
	}
	return false;
}

/* The flags the advice gives a VMA, or -EINVAL; behaviours that change no flag return flags. */
static long madvise_new_flags(struct vm_area_struct *vma, int behavior)
{
	unsigned long f = vma->vm_flags;
	switch (behavior) {
	case MADV_NORMAL: return (long)(f & ~(VM_SEQ_READ | VM_RAND_READ));
	case MADV_RANDOM: return (long)((f & ~VM_SEQ_READ) | VM_RAND_READ);
	case MADV_SEQUENTIAL: return (long)((f & ~VM_RAND_READ) | VM_SEQ_READ);
	case MADV_DONTFORK: return (long)(f | VM_DONTCOPY);
	case MADV_DOFORK: return (long)(f & ~VM_DONTCOPY);
	case MADV_WIPEONFORK:
		if (vma->vm_file || (f & VM_SHARED))
			return -EINVAL;
		return (long)(f | VM_WIPEONFORK);
	case MADV_KEEPONFORK: return (long)(f & ~VM_WIPEONFORK);
	case MADV_HUGEPAGE: return (long)((f & ~VM_NOHUGEPAGE) | VM_HUGEPAGE);
	case MADV_NOHUGEPAGE: return (long)((f & ~VM_HUGEPAGE) | VM_NOHUGEPAGE);
	case MADV_DONTDUMP: return (long)(f | VM_DONTDUMP);
	case MADV_DODUMP: return (long)(f & ~VM_DONTDUMP);
	}
	return (long)f;
}

struct madvise_free_arg {
	struct vm_area_struct *vma;
	bool need_flush;
};

/*
 * madvise_free_pte_range: every anonymous page of the range gets a clean, old PTE and goes to
 * the inactive (lazy-free) list, so reclaim may drop it instead of writing it out; a page only
 * this process maps loses its own dirty flag too.  A later write sets the PTE's dirty bit again
 * without a fault.  PTL held.
 */
static int madvise_free_pte_range(pte_t *ptep, uint64_t addr, void *varg)
{
	struct madvise_free_arg *a = varg;
	pte_t old = ptep_get(ptep), new;
	if (is_swap_pte(old)) { /* the swapped contents are dropped at once */
		struct mm_struct *mm = a->vma->vm_mm;
		ptep_get_and_clear(ptep);
		mark_table_changed(mm->vm, ptep);
		add_mm_counter(mm, MM_SWAPENTS, -1);
		free_swap_and_cache(mm->vm, pte_to_swp_entry(old));
		return 0;
	}
	if (!pte_present(old))
		return 0;
	struct page *page = vm_normal_page(a->vma, addr, old);
	if (!page || !PageAnon(page))
		return 0;
	if (page_mapcount(page) == 1)
		ClearPageFlag(page, PG_dirty);
	do { /* the MMU may set accessed/dirty meanwhile */
		new = pte_mkold(pte_mkclean(old));
	} while (new != old && !__atomic_compare_exchange_n(ptep, &old, new, false, __ATOMIC_ACQ_REL,
							   __ATOMIC_ACQUIRE));
	if (new != old)
		a->need_flush = true;
	lru_deactivate(a->vma->vm_mm->vm, page);
	return 0;
}

/* MADV_COLD / MADV_PAGEOUT (madvise_cold_or_pageout_pte_range): old PTEs, inactive pages. */
static int madvise_cold_pte_range(pte_t *ptep, uint64_t addr, void *varg)
{
	struct madvise_free_arg *a = varg;
	pte_t old = ptep_get(ptep);
	if (!pte_present(old))
		return 0;
	struct page *page = vm_normal_page(a->vma, addr, old);
	if (!page)
		return 0;
	if (ptep_test_and_clear_young(ptep))
		a->need_flush = true;
	ClearPageFlag(page, PG_referenced);
	lru_deactivate(a->vma->vm_mm->vm, page);
	return 0;
}

/*
 * madvise_pageout - MADV_PAGEOUT with a swap device (madvise_cold_or_pageout_pte_range with
 * pageout = true, then reclaim_pages): each present anon page of the range that only this
 * process maps (folio_maybe_mapped_shared: mapcount > 1 is skipped) gets an old PTE, loses
 * PG_referenced and is reclaimed; the zero page and shmem pages are left (shared memory is not
 * swapped in cowvm).  Pages are gathered 32 at a time under the PTL, reclaimed without it.
 */
struct pageout_arg {
	struct vm_area_struct *vma;
	struct reclaim_list list;
	uint64_t next;
	bool need_flush;
};

static int madvise_pageout_pte_range(pte_t *ptep, uint64_t addr, void *varg)
{
	struct pageout_arg *a = varg;
	pte_t old = ptep_get(ptep);
	a->next = addr + PAGE_SIZE;
	if (!pte_present(old))
		return 0;
	struct page *page = vm_normal_page(a->vma, addr, old);
	if (!page || !PageAnon(page) || page_mapcount(page) > 1)
		return 0;
	if (ptep_test_and_clear_young(ptep))
		a->need_flush = true;
	ClearPageFlag(page, PG_referenced);
	if (PageFlag(page, PG_unevictable))
		return 0;
	get_page(page);
	a->list.pages[a->list.nr++] = page;
	return a->list.nr == (int)(sizeof(a->list.pages) / sizeof(a->list.pages[0]));
}

static void madvise_pageout(struct mm_struct *mm, struct vm_area_struct *vma, uint64_t start, uint64_t end)
{
	struct pageout_arg a = { .vma = vma };
	for (uint64_t addr = start; addr < end;) {
		if (!walk_page_range(mm, addr, end, madvise_pageout_pte_range, &a))
			a.next = end;
		if (a.need_flush) {
			flush_tlb_mm_range(mm, addr, a.next);
			a.need_flush = false;
		}
		if (a.list.nr)
			reclaim_pages(mm->vm, &a.list);
		addr = a.next;
	}
}

/* can_madv_lru_vma: the LRU advice (DONTNEED, FREE, COLD, PAGEOUT) is for unlocked memory. */
static bool can_madv_lru_vma(struct vm_area_struct *vma)
{
	return !(vma->vm_flags & VM_LOCKED);
}

/*
 * madvise_remove - MADV_REMOVE: free the backing of a shared mapping's range.  Private memory
 * has none (-EINVAL), nor may a locked VMA lose its pages (-EINVAL); the mapping must be one
 * that may be written (VM_SHARED and VM_MAYWRITE, else -EACCES).
 */
static int madvise_remove(struct mm_struct *mm, struct vm_area_struct *vma, uint64_t start, uint64_t end)
{
	if (vma->vm_flags & VM_LOCKED)
		return -EINVAL;
	if (!vma->vm_file)
		return -EINVAL;
	if ((vma->vm_flags & (VM_SHARED | VM_MAYWRITE)) != (VM_SHARED | VM_MAYWRITE))
		return -EACCES;
	uint64_t pgoff = linear_page_index(vma, start);
	shmem_punch_hole(mm->vm, vma->vm_file, pgoff, pgoff + ((end - start) >> PAGE_SHIFT));
	return 0;
}

/* One VMA's part [start, end).  Returns 0 or -errno. */
static int madvise_vma_behavior(struct mm_struct *mm, struct vm_area_struct *vma,
				uint64_t start, uint64_t end, int behavior)
{
	if (behavior == MADV_REMOVE)
		return madvise_remove(mm, vma, start, end);
	if ((behavior == MADV_DONTNEED || behavior == MADV_FREE || behavior == MADV_COLD ||
	     behavior == MADV_PAGEOUT) && !can_madv_lru_vma(vma))
		return -EINVAL;
	if (behavior == MADV_PAGEOUT && mm->vm->swap && !vma->vm_file) {
		madvise_pageout(mm, vma, start, end);
		return 0;
	}
	if (behavior == MADV_COLD || behavior == MADV_PAGEOUT) {
		/* PAGEOUT without a swap device cannot reclaim anonymous pages: it deactivates. */
		struct madvise_free_arg a = { .vma = vma };
		walk_page_range(mm, start, end, madvise_cold_pte_range, &a);
		if (a.need_flush)
			flush_tlb_mm_range(mm, start, end);
		return 0;
	}
	if (behavior == MADV_DONTNEED || behavior == MADV_DONTNEED_LOCKED) {
		struct mmu_gather tlb;
		tlb_gather_mmu(&tlb, mm);
		unmap_page_range(&tlb, vma, start, end);
		tlb_finish_mmu(&tlb);
		return 0;
	}
	if (behavior == MADV_WILLNEED)
		return 0;
	if (behavior == MADV_FREE) {
		/* Lazy free: the pages are cleaned now and go only when reclaim finds them still
		 * clean; cowvm does not reclaim yet, so they keep their contents, as in Linux
		 * without memory pressure. */
		if (vma->vm_flags & VM_SHARED)
			return -EINVAL;
		struct madvise_free_arg a = { .vma = vma };
		walk_page_range(mm, start, end, madvise_free_pte_range, &a);
		if (a.need_flush)
			flush_tlb_mm_range(mm, start, end);
		return 0;
	}
	long newflags = madvise_new_flags(vma, behavior);
	if (newflags < 0)
		return (int)newflags;
	if ((unsigned long)newflags == vma->vm_flags)
		return 0;
	vma = vma_modify_flags(mm, vma, start, end, (unsigned long)newflags);
	if (!vma)
		return -ENOMEM;
	vma_merge_neighbours(mm, vma);
	return 0;
}

/* is_valid_madvise: known advice, aligned start, a length that does not wrap. */
static bool is_valid_madvise(uint64_t start, uint64_t len_in, int behavior)
{
	if (!madvise_behavior_valid(behavior) || !PAGE_ALIGNED(start))
		return false;
	uint64_t len = PAGE_ALIGN(len_in);
	if (len_in && !len)
		return false;
	return start + len >= start;
}

/*
 * madvise_do_behavior - advice on [start, start + len_in) of task's mm (already validated).
 * POPULATE goes straight to GUP (errors as madvise_populate maps them); everything else walks
 * the VMAs.  Takes and drops the mm's mmap_lock.
 */
static int madvise_do_behavior(struct task_struct *task, uint64_t start, uint64_t len_in, int behavior)
{
	struct mm_struct *mm = task->mm;
	uint64_t end = start + PAGE_ALIGN(len_in);
	if (end == start)
		return 0;
	TRACE_SCOPE(task->vm, task, "do_madvise", TF_HEX("start", start), TF_NUM("pages", (end - start) >> PAGE_SHIFT),
		    TF_NUM("advice", behavior));
	if (behavior == MADV_POPULATE_READ || behavior == MADV_POPULATE_WRITE) {
		down_read(&mm->mmap_lock);
		int ret = faultin_page_range(task, start, end, behavior == MADV_POPULATE_WRITE);
		up_read(&mm->mmap_lock);
		return ret;
	}
	/* Dropping pages needs only the read lock (as in Linux, so it can race with faults and
	 * GUP); changing VMA flags needs the write lock. */
	bool read_lock = madvise_read_lock(behavior);
	if (read_lock)
		down_read(&mm->mmap_lock);
	else
		down_write(&mm->mmap_lock);
	int unmapped_error = 0, error = 0;
	for (uint64_t addr = start; addr < end;) {
		struct vm_area_struct *vma = find_vma(mm, addr);
		if (!vma || vma->vm_start >= end) {
			unmapped_error = -ENOMEM;
			break;
		}
		if (vma->vm_start > addr) {
			unmapped_error = -ENOMEM;
			addr = vma->vm_start;
		}
		uint64_t tmp = vma->vm_end < end ? vma->vm_end : end;
		trace_call(task->vm, "madvise_vma_behavior", TF_HEX("vma", vma->vm_start), TF_HEX("start", addr),
			   TF_HEX("end", tmp));
		error = madvise_vma_behavior(mm, vma, addr, tmp, behavior);
		if (error)
			break;
		addr = tmp;
	}
	if (read_lock)
		up_read(&mm->mmap_lock);
	else
		up_write(&mm->mmap_lock);
	return error ? error : unmapped_error;
}

int cowvm_madvise(cowvm_task_t *t, uint64_t start, uint64_t len_in, int behavior)
{
	if (!t)
		return -EINVAL;
	current = t;
	if (!is_valid_madvise(start, len_in, behavior))
		return -EINVAL;
	return madvise_do_behavior(t, start, len_in, behavior);
}

/* process_madvise_remote_valid: the advice one process may give another (non-destructive). */
static bool process_madvise_remote_valid(int behavior)
{
	return behavior == MADV_COLD || behavior == MADV_PAGEOUT || behavior == MADV_WILLNEED;
}

/*
 * cowvm_process_madvise - process_madvise(2) in Linux 6.x's order: flags, the iovec count,
 * the target (pidfd), ptrace access (mm_access: the target's capabilities must be the caller's
 * too, or CAP_SYS_PTRACE), the remote advice set, CAP_SYS_NICE for a remote target, then
 * vector_madvise: each range in turn until one fails.  Returns the bytes (iov_len summed) of
 * the ranges done, or the first range's -errno.  MADV_COLLAPSE is refused: cowvm has no THP.
 */
int64_t cowvm_process_madvise(cowvm_task_t *caller, cowvm_task_t *target, const struct iovec *vec,
			      size_t vlen, int advice, unsigned flags)
{
	if (!caller)
		return -EINVAL;
	if (flags != 0)
		return -EINVAL;
	if (vlen > UIO_MAXIOV || (vlen && !vec))
		return -EINVAL;
	if (!target)
		return -EBADF;
	current = caller;
	struct mm_struct *mm = target->mm;
	bool remote = mm != caller->mm;
	if (remote) {
		down_read(&caller->mm->mmap_lock);
		uint64_t ccaps = caller->mm->caps;
		up_read(&caller->mm->mmap_lock);
		down_read(&mm->mmap_lock);
		uint64_t tcaps = mm->caps;
		up_read(&mm->mmap_lock);
		if ((tcaps & ~ccaps) && !(ccaps & COWVM_CAP_SYS_PTRACE))
			return -EACCES;
		if (!process_madvise_remote_valid(advice))
			return -EINVAL;
		if (!(ccaps & COWVM_CAP_SYS_NICE))
			return -EPERM;
	}
	uint64_t total = 0;
	int64_t ret = 0;
	for (size_t i = 0; i < vlen; i++) {
		uint64_t start = (uint64_t)(uintptr_t)vec[i].iov_base;
		uint64_t len = vec[i].iov_len;
		if (!is_valid_madvise(start, len, advice)) {
			ret = -EINVAL;
			break;
		}
		/* faults of a remote populate would be the caller's; only our own can populate */
		ret = madvise_do_behavior(remote ? target : caller, start, len, advice);
		if (ret < 0)
			break;
		total += len;
	}
	return total ? (int64_t)total : ret;
}
