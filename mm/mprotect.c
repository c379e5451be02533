/*
 * mprotect.c - change the protection of a range: split the VMAs at its edges, give them the
 * new flags, rewrite their PTEs (change_protection) and merge what can merge.
 *
 * The PTE rule that matters for COW: raising a private mapping to writable makes a PTE
 * writable only when its page is exclusively ours (PageAnonExclusive).  A page still shared
 * with a fork child stays read-only, so the next write faults and copies (reference §7).
 */
#include "mm.h"

#ifndef PROT_SEM
#define PROT_SEM 0x8 /* <asm/mman.h>: accepted and ignored on x86 */
#endif

/* can_change_pte_writable: only an exclusive anon page, and not while soft-dirty tracks writes. */
static bool can_change_pte_writable(struct vm_area_struct *vma, uint64_t addr, pte_t pte)
{
	if (!(vma->vm_flags & VM_SOFTDIRTY) && !pte_soft_dirty(pte))
		return false;
	struct page *page = vm_normal_page(vma, addr, pte);
	return page && PageAnon(page) && PageAnonExclusive(page);
}

struct change_prot_arg {
	struct vm_area_struct *vma;
	bool try_writable;
	bool need_flush;
	uint64_t changed, made_writable; /* for the trace */
};

static int change_pte_entry(pte_t *ptep, uint64_t addr, void *varg)
{
	struct change_prot_arg *a = varg;
	pte_t old = ptep_get(ptep), new;
	if (!pte_present(old))
		return 0;
	/* The MMU may set accessed/dirty meanwhile: retry until the swap is clean. */
	do {
		new = pte_modify(old, a->vma->vm_page_prot);
		if (a->try_writable && !pte_write(new) && can_change_pte_writable(a->vma, addr, new))
			new = pte_mkwrite(new);
	} while (new != old && !__atomic_compare_exchange_n(ptep, &old, new, false, __ATOMIC_ACQ_REL,
							   __ATOMIC_ACQUIRE));
	a->changed += new != old;
	a->made_writable += !pte_write(old) && pte_write(new);
	if ((pte_write(old) && !pte_write(new)) || ((old & _PAGE_PRESENT) && !(new & _PAGE_PRESENT)) ||
	    (!(old & _PAGE_NX) && (new & _PAGE_NX)))
		a->need_flush = true;
	return 0;
}

/*
 * change_protection - give the present PTEs of [start, end) the VMA's new protection; flush the
 * TLBs if any PTE lost a right.  Caller holds mmap_lock for writing.
 */
static void change_protection(struct vm_area_struct *vma, uint64_t start, uint64_t end)
{
	struct change_prot_arg a = {
		.vma = vma,
		.try_writable = !(vma->vm_flags & VM_SHARED) && (vma->vm_flags & VM_WRITE),
	};
	walk_page_range(vma->vm_mm, start, end, change_pte_entry, &a);
	trace_call(vma->vm_mm->vm, "change_protection", TF_HEX("start", start), TF_HEX("end", end),
		   TF_NUM("ptes changed", a.changed), TF_NUM("made writable", a.made_writable),
		   TF_BOOL("tlb flushed", a.need_flush));
	if (a.need_flush)
		flush_tlb_mm_range(vma->vm_mm, start, end);
}

int cowvm_mprotect(cowvm_task_t *t, uint64_t start, uint64_t len, int prot)
{
	if (!t)
		return -EINVAL;
	current = t;
	struct mm_struct *mm = t->mm;
	/* do_mprotect_pkey's order: both growth bits, alignment, empty, wrap, the other bits */
	int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
	prot &= ~grows;
	if (grows == (PROT_GROWSDOWN | PROT_GROWSUP))
		return -EINVAL;
	if (!PAGE_ALIGNED(start))
		return -EINVAL;
	if (!len)
		return 0;
	len = PAGE_ALIGN(len);
	uint64_t end = start + len;
	if (end <= start)
		return -ENOMEM;
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM))
		return -EINVAL;
	unsigned long rights = ((prot & PROT_READ) ? VM_READ : 0) | ((prot & PROT_WRITE) ? VM_WRITE : 0) |
			       ((prot & PROT_EXEC) ? VM_EXEC : 0);
	TRACE_SCOPE(t->vm, t, "do_mprotect_pkey", TF_HEX("start", start), TF_NUM("pages", len >> PAGE_SHIFT),
		    TF_BOOL("read", prot & PROT_READ), TF_BOOL("write", prot & PROT_WRITE),
		    TF_BOOL("exec", prot & PROT_EXEC));

	down_write(&mm->mmap_lock);
	int error = -ENOMEM;
	struct vm_area_struct *vma = find_vma(mm, start);
	if (!vma)
		goto out;
	if (grows & PROT_GROWSDOWN) {
		/* the change reaches down to the bottom of the stack the range starts in */
		if (vma->vm_start >= end)
			goto out;
		start = vma->vm_start;
		error = -EINVAL;
		if (!(vma->vm_flags & VM_GROWSDOWN))
			goto out;
		error = -ENOMEM;
	} else {
		if (vma->vm_start > start)
			goto out;
		if (grows & PROT_GROWSUP) { /* x86 has no upward-growing stacks */
			error = -EINVAL;
			goto out;
		}
	}
	for (uint64_t nstart = start;;) {
		unsigned long newflags = (vma->vm_flags & ~VM_ACCESS_FLAGS) | rights;
		if ((newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS) { /* a right without its MAY bit */
			error = -EACCES;
			goto out;
		}
		/* mprotect_fixup's accounting: private memory that turns writable is charged
		 * (VM_ACCOUNT) unless it was or is NORESERVE; writable memory that turns read-only
		 * gives the charge back only while it has no anon_vma (nothing was ever written) */
		if (newflags & VM_WRITE) {
			if (!(vma->vm_flags & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE)))
				newflags |= VM_ACCOUNT;
		} else if ((vma->vm_flags & VM_ACCOUNT) && !(vma->vm_flags & VM_SHARED) && !vma->anon_vma) {
			newflags &= ~VM_ACCOUNT;
		}
		uint64_t tmp = vma->vm_end < end ? vma->vm_end : end;
		if (newflags != vma->vm_flags) { /* mprotect_fixup of [nstart, tmp) */
			unsigned long oldflags = vma->vm_flags;
			vma = vma_modify_flags(mm, vma, nstart, tmp, newflags);
			if (!vma)
				goto out;
			change_protection(vma, nstart, tmp);
			/* a locked private mapping made writable breaks COW now, as mlock would
			 * have: its pages stay in memory without a fault later */
			if ((oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED &&
			    (newflags & VM_WRITE))
				populate_vma_page_range(t, vma, nstart, tmp);
			vma_merge_neighbours(mm, vma);
		}
		nstart = tmp;
		if (nstart >= end)
			break;
		/* The next VMA; a merge may have grown the one just fixed up over nstart. */
		vma = find_vma(mm, nstart);
		if (!vma || vma->vm_start > nstart) /* a hole: -ENOMEM after the part before it */
			goto out;
	}
	error = 0;
out:
	up_write(&mm->mmap_lock);
	return error;
}
