/*
 * madvise.c - advice on a range: MADV_DONTNEED drops its pages (the next touch faults in the
 * zero page or a fresh page); MADV_DONTFORK/DOFORK and WIPEONFORK/KEEPONFORK set what fork
 * does with the VMA; the access-pattern and huge-page hints only set their VMA flags (which
 * splits VMAs as in Linux).  Holes in the range: the mapped parts are advised, then -ENOMEM.
 */
#include "mm.h"

_Static_assert(COWVM_MADV_NORMAL == MADV_NORMAL && COWVM_MADV_RANDOM == MADV_RANDOM &&
	       COWVM_MADV_SEQUENTIAL == MADV_SEQUENTIAL && COWVM_MADV_WILLNEED == MADV_WILLNEED &&
	       COWVM_MADV_DONTNEED == MADV_DONTNEED && COWVM_MADV_FREE == MADV_FREE &&
	       COWVM_MADV_DONTFORK == MADV_DONTFORK && COWVM_MADV_DOFORK == MADV_DOFORK &&
	       COWVM_MADV_HUGEPAGE == MADV_HUGEPAGE && COWVM_MADV_NOHUGEPAGE == MADV_NOHUGEPAGE &&
	       COWVM_MADV_WIPEONFORK == MADV_WIPEONFORK && COWVM_MADV_KEEPONFORK == MADV_KEEPONFORK,
	       "include/cowvm.h's COWVM_MADV_* are Linux's");

#define VM_SEQ_READ  0x00008000ul
#define VM_RAND_READ 0x00010000ul

static bool madvise_behavior_valid(int behavior)
{
	switch (behavior) {
	case MADV_NORMAL: case MADV_RANDOM: case MADV_SEQUENTIAL: case MADV_WILLNEED:
	case MADV_DONTNEED: case MADV_FREE: case MADV_DONTFORK: case MADV_DOFORK:
	case MADV_WIPEONFORK: case MADV_KEEPONFORK: case MADV_HUGEPAGE: case MADV_NOHUGEPAGE:
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

/* One VMA's part [start, end).  Returns 0 or -errno. */
static int madvise_vma_behavior(struct mm_struct *mm, struct vm_area_struct *vma,
				uint64_t start, uint64_t end, int behavior)
{
	if (behavior == MADV_DONTNEED) {
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

int cowvm_madvise(cowvm_task_t *t, uint64_t start, uint64_t len_in, int behavior)
{
	if (!t)
		return -EINVAL;
	current = t;
	struct mm_struct *mm = t->mm;
	if (!madvise_behavior_valid(behavior) || !PAGE_ALIGNED(start))
		return -EINVAL;
	uint64_t len = PAGE_ALIGN(len_in);
	if (len_in && !len)
		return -EINVAL;
	uint64_t end = start + len;
	if (end < start)
		return -EINVAL;
	if (end == start)
		return 0;

	/* Dropping pages needs only the read lock (as in Linux, so it can race with faults and
	 * GUP); changing VMA flags needs the write lock. */
	bool read_lock = behavior == MADV_DONTNEED || behavior == MADV_WILLNEED || behavior == MADV_FREE;
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
