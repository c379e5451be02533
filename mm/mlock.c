/*
 * mlock.c - mlock, mlock2, munlock, mlockall, munlockall, and the unevictable list, as Linux's
 * mm/mlock.c.
 *
 *   mlock(start, len)
 *     do_mlock: can_do_mlock (RLIMIT_MEMLOCK or CAP_IPC_LOCK), the limit (minus what is locked
 *     already in the range: count_mm_mlocked_page_nr)
 *       -> apply_vma_lock_flags -> mlock_fixup per VMA: split, VM_LOCKED[ONFAULT], locked_vm,
 *          mlock_vma_pages_range (present pages to the unevictable list), merge
 *       -> __mm_populate (gup.c): fault the rest in, unless VM_LOCKONFAULT
 *
 * Invariants (the checker's):
 *  - a page's mlock_count is the number of PTEs of VM_LOCKED VMAs that map it; PG_mlocked is set
 *    exactly when that count is not 0, and exactly those pages are on the unevictable list
 *    (PG_unevictable, with PG_lru).  Linux keeps the count loosely (a page may stay mlocked a
 *    little longer than its last locked mapping, until reclaim finds it); cowvm keeps it exact,
 *    which changes nothing a process can see but lets the checker prove it.
 *  - mm->locked_vm is the number of pages of VM_LOCKED VMAs, plus mm->locked_vm_stale: the pages
 *    MREMAP_DONTUNMAP of a locked mapping leaves counted, as Linux leaves them (VmLck shows them).
 *  - VM_LOCKONFAULT is never set without VM_LOCKED; def_flags holds only those two bits.
 * The rmap functions call the hooks (mlock_vma_page / munlock_vma_page in mm.h) whenever a PTE
 * of a VM_LOCKED VMA starts or stops mapping a page; the LRU moves happen under vm->lru_lock.
 */
#include "mm.h"

/* ---- the unevictable list ---------------------------------------------------------------- */

/*
 * mlock_page - one more locked mapping (mlock_folio / mlock_new_folio).  The first takes the
 * page off the active or inactive list onto the unevictable one (a page not yet on any list
 * goes there when lru_cache_add_active adds it).  Caller holds the PTL of the mapping.
 */
void mlock_page(struct cowvm *vm, struct page *page)
{
	spin_lock(&vm->lru_lock);
	if (PageFlag(page, PG_mlocked)) {
		page->mlock_count++;
		spin_unlock(&vm->lru_lock);
		return;
	}
	SetPageFlag(page, PG_mlocked);
	page->mlock_count = 1;
	mod_node_page_state(vm, NR_MLOCK, 1);
	count_vm_event(vm, UNEVICTABLE_PGMLOCKED);
	if (PageLRU(page)) { /* __mlock_folio: cull it to the unevictable list */
		list_del(&page->lru);
		mod_node_page_state(vm, PageFlag(page, PG_active) ? NR_ACTIVE_ANON : NR_INACTIVE_ANON, -1);
		ClearPageFlag(page, PG_active);
		SetPageFlag(page, PG_unevictable);
		list_add(&page->lru, &vm->lru_unevictable);
		mod_node_page_state(vm, NR_UNEVICTABLE, 1);
	}
	spin_unlock(&vm->lru_lock);
}

/*
 * munlock_page - one fewer locked mapping (munlock_folio).  The last one clears PG_mlocked and
 * puts the page back on the inactive list, evictable again.  Caller holds the PTL.
 */
void munlock_page(struct cowvm *vm, struct page *page)
{
	spin_lock(&vm->lru_lock);
	if (unlikely(!PageFlag(page, PG_mlocked) || page->mlock_count == 0))
		bug("munlock of frame %llu that is not mlocked", (unsigned long long)page_to_pfn(vm, page));
	if (--page->mlock_count) {
		spin_unlock(&vm->lru_lock);
		return;
	}
	ClearPageFlag(page, PG_mlocked);
	mod_node_page_state(vm, NR_MLOCK, -1);
	count_vm_event(vm, UNEVICTABLE_PGMUNLOCKED);
	if (PageLRU(page) && PageFlag(page, PG_unevictable)) {
		list_del(&page->lru);
		ClearPageFlag(page, PG_unevictable);
		mod_node_page_state(vm, NR_UNEVICTABLE, -1);
		list_add(&page->lru, &vm->lru_inactive_anon);
		mod_node_page_state(vm, NR_INACTIVE_ANON, 1);
	}
	spin_unlock(&vm->lru_lock);
}

struct mlock_walk {
	struct vm_area_struct *vma;
	bool lock;
};

static int mlock_pte_range(pte_t *ptep, uint64_t addr, void *varg)
{
	struct mlock_walk *w = varg;
	pte_t pte = ptep_get(ptep);
	if (!pte_present(pte))
		return 0;
	struct page *page = vm_normal_page(w->vma, addr, pte);
	if (!page) /* the zero page is never mlocked */
		return 0;
	if (w->lock)
		mlock_page(w->vma->vm_mm->vm, page);
	else
		munlock_page(w->vma->vm_mm->vm, page);
	return 0;
}

/*
 * mlock_vma_pages_range - the VMA's flags just gained (lock) or lost VM_LOCKED: move the pages
 * its present PTEs in [start, end) map.  mmap_lock held for writing.
 */
void mlock_vma_pages_range(struct vm_area_struct *vma, uint64_t start, uint64_t end, bool lock)
{
	struct mlock_walk w = { vma, lock };
	walk_page_range(vma->vm_mm, start, end, mlock_pte_range, &w);
}

/* ---- limits ------------------------------------------------------------------------------ */

bool can_do_mlock(struct mm_struct *mm)
{
	return mm->rlim_memlock[0] != 0 || capable(mm, COWVM_CAP_IPC_LOCK);
}

/* mlock_future_ok: may bytes more of VM_LOCKED memory be mapped? */
bool mlock_future_ok(struct mm_struct *mm, unsigned long vm_flags, uint64_t bytes)
{
	if (!(vm_flags & VM_LOCKED) || capable(mm, COWVM_CAP_IPC_LOCK))
		return true;
	uint64_t locked = (bytes >> PAGE_SHIFT) + mm->locked_vm;
	return locked <= mm->rlim_memlock[0] >> PAGE_SHIFT;
}

/* Pages of [start, start + len) already in VM_LOCKED VMAs. */
static uint64_t count_mm_mlocked_page_nr(struct mm_struct *mm, uint64_t start, uint64_t len)
{
	uint64_t end = start + len, count = 0;
	for (size_t i = vma_index(mm, start); i < mm->nr_vmas && mm->vmas[i]->vm_start < end; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		if (!(vma->vm_flags & VM_LOCKED))
			continue;
		uint64_t s = vma->vm_start > start ? vma->vm_start : start;
		uint64_t e = vma->vm_end < end ? vma->vm_end : end;
		count += (e - s) >> PAGE_SHIFT;
	}
	return count;
}

/* ---- VMA flags ---------------------------------------------------------------------------- */

/*
 * mlock_fixup - give [start, end) of vma the lock bits of newflags: split, set the flags,
 * count locked_vm, move the present pages to or from the unevictable list, merge.  A change
 * between VM_LOCKONFAULT and VM_LOCKED only changes the flags.  Returns the VMA now covering the
 * range, or NULL on -ENOMEM (nothing changed but splits).  mmap_lock held for writing.
 */
static struct vm_area_struct *mlock_fixup(struct mm_struct *mm, struct vm_area_struct *vma,
					  uint64_t start, uint64_t end, unsigned long newflags)
{
	unsigned long oldflags = vma->vm_flags;
	if (newflags == oldflags)
		return vma;
	vma = vma_modify_flags(mm, vma, start, end, newflags);
	if (!vma)
		return NULL;
	uint64_t nr_pages = (end - start) >> PAGE_SHIFT;
	if (!(newflags & VM_LOCKED))
		mm->locked_vm -= nr_pages;
	else if (!(oldflags & VM_LOCKED))
		mm->locked_vm += nr_pages;
	if ((newflags ^ oldflags) & VM_LOCKED) /* lock state changed: move the pages */
		mlock_vma_pages_range(vma, start, end, newflags & VM_LOCKED);
	return vma_merge_neighbours(mm, vma);
}

/*
 * apply_vma_lock_flags - flags (VM_LOCKED[ONFAULT] or 0) for every VMA of [start, start + len).
 * start and len are page aligned.  A hole at start: -ENOMEM, nothing done; a hole later:
 * -ENOMEM after the VMAs before it.  mmap_lock held for writing.
 */
static int apply_vma_lock_flags(struct mm_struct *mm, uint64_t start, uint64_t len, unsigned long flags)
{
	uint64_t end = start + len;
	if (end < start)
		return -EINVAL;
	if (end == start)
		return 0;
	for (uint64_t nstart = start; nstart < end;) {
		struct vm_area_struct *vma = find_vma(mm, nstart);
		if (!vma || vma->vm_start > nstart)
			return -ENOMEM;
		unsigned long newflags = (vma->vm_flags & ~VM_LOCKED_MASK) | flags;
		uint64_t tmp = vma->vm_end < end ? vma->vm_end : end;
		if (!mlock_fixup(mm, vma, nstart, tmp, newflags))
			return -ENOMEM;
		nstart = tmp; /* a merge may have grown the VMA over nstart: find_vma finds it again */
	}
	return 0;
}

/* __mlock_posix_error_return: populate's -EFAULT is mlock's -ENOMEM, its -ENOMEM is -EAGAIN. */
static int mlock_posix_error(int err)
{
	if (err == -EFAULT)
		return -ENOMEM;
	if (err == -ENOMEM)
		return -EAGAIN;
	return err;
}

static int do_mlock(struct task_struct *t, uint64_t start, uint64_t len, unsigned long flags)
{
	struct mm_struct *mm = t->mm;
	current = t;
	down_read(&mm->mmap_lock);
	bool may = can_do_mlock(mm);
	up_read(&mm->mmap_lock);
	if (!may)
		return -EPERM;
	/* as Linux: the rounding wraps like the kernel's unsigned long, and a range that wraps is
	 * apply_vma_lock_flags's EINVAL, after the RLIMIT_MEMLOCK check (ENOMEM comes first) */
	len = (len + (start & ~PAGE_MASK) + PAGE_SIZE - 1) & PAGE_MASK;
	start &= PAGE_MASK;

	down_write(&mm->mmap_lock);
	uint64_t limit = mm->rlim_memlock[0] >> PAGE_SHIFT;
	uint64_t locked = (len >> PAGE_SHIFT) + mm->locked_vm;
	bool cap = capable(mm, COWVM_CAP_IPC_LOCK);
	if (locked > limit && !cap) /* what is locked already in the range does not count twice */
		locked -= count_mm_mlocked_page_nr(mm, start, len);
	int error = -ENOMEM;
	if (locked <= limit || cap)
		error = apply_vma_lock_flags(mm, start, len, flags);
	up_write(&mm->mmap_lock);
	if (error)
		return error;
	error = __mm_populate(t, start, len, false);
	return error ? mlock_posix_error(error) : 0;
}

int cowvm_mlock(cowvm_task_t *t, uint64_t start, uint64_t len)
{
	if (!t)
		return -EINVAL;
	return do_mlock(t, start, len, VM_LOCKED);
}

int cowvm_mlock2(cowvm_task_t *t, uint64_t start, uint64_t len, unsigned flags)
{
	if (!t || (flags & ~MLOCK_ONFAULT))
		return -EINVAL;
	return do_mlock(t, start, len, VM_LOCKED | ((flags & MLOCK_ONFAULT) ? VM_LOCKONFAULT : 0));
}

int cowvm_munlock(cowvm_task_t *t, uint64_t start, uint64_t len)
{
	if (!t)
		return -EINVAL;
	current = t;
	len = (len + (start & ~PAGE_MASK) + PAGE_SIZE - 1) & PAGE_MASK; /* wraps as Linux's does */
	start &= PAGE_MASK;
	down_write(&t->mm->mmap_lock);
	int ret = apply_vma_lock_flags(t->mm, start, len, 0);
	up_write(&t->mm->mmap_lock);
	return ret;
}

/*
 * apply_mlockall_flags: MCL_FUTURE sets the mm's def_flags (new mappings are locked, and
 * populated unless MCL_ONFAULT); MCL_CURRENT locks every VMA; 0 unlocks everything.  A VMA that
 * cannot be fixed up (no memory to split) is skipped, as Linux ignores the error.
 */
static void apply_mlockall_flags(struct mm_struct *mm, int flags)
{
	unsigned long to_add = 0;
	mm->def_flags &= ~VM_LOCKED_MASK;
	if (flags & MCL_FUTURE) {
		mm->def_flags |= VM_LOCKED;
		if (flags & MCL_ONFAULT)
			mm->def_flags |= VM_LOCKONFAULT;
		if (!(flags & MCL_CURRENT))
			return;
	}
	if (flags & MCL_CURRENT) {
		to_add |= VM_LOCKED;
		if (flags & MCL_ONFAULT)
			to_add |= VM_LOCKONFAULT;
	}
	for (uint64_t addr = 0;;) {
		struct vm_area_struct *vma = find_vma(mm, addr);
		if (!vma)
			break;
		uint64_t end = vma->vm_end;
		mlock_fixup(mm, vma, vma->vm_start, vma->vm_end, (vma->vm_flags & ~VM_LOCKED_MASK) | to_add);
		addr = end;
	}
}

int cowvm_mlockall(cowvm_task_t *t, int flags)
{
	if (!t)
		return -EINVAL;
	if (!flags || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) || flags == MCL_ONFAULT)
		return -EINVAL;
	current = t;
	struct mm_struct *mm = t->mm;
	down_write(&mm->mmap_lock);
	int ret = -EPERM;
	if (!can_do_mlock(mm))
		goto out;
	ret = -ENOMEM;
	if (!(flags & MCL_CURRENT) || mm->total_vm <= mm->rlim_memlock[0] >> PAGE_SHIFT ||
	    capable(mm, COWVM_CAP_IPC_LOCK)) {
		apply_mlockall_flags(mm, flags);
		ret = 0;
	}
out:
	up_write(&mm->mmap_lock);
	if (!ret && (flags & MCL_CURRENT))
		__mm_populate(t, 0, TASK_SIZE_MAX, true);
	return ret;
}

int cowvm_munlockall(cowvm_task_t *t)
{
	if (!t)
		return -EINVAL;
	current = t;
	down_write(&t->mm->mmap_lock);
	apply_mlockall_flags(t->mm, 0);
	up_write(&t->mm->mmap_lock);
	return 0;
}

/* ---- credentials and limits ------------------------------------------------------------------ */

#define KNOWN_CAPS (COWVM_CAP_IPC_LOCK | COWVM_CAP_SYS_RAWIO | COWVM_CAP_SYS_PTRACE | \
		    COWVM_CAP_SYS_NICE | COWVM_CAP_SYS_RESOURCE)

int cowvm_set_caps(cowvm_task_t *t, uint64_t caps)
{
	if (!t || (caps & ~KNOWN_CAPS))
		return -EINVAL;
	down_write(&t->mm->mmap_lock);
	t->mm->caps = caps;
	up_write(&t->mm->mmap_lock);
	return 0;
}

uint64_t cowvm_get_caps(cowvm_task_t *t)
{
	if (!t)
		return 0;
	down_read(&t->mm->mmap_lock);
	uint64_t caps = t->mm->caps;
	up_read(&t->mm->mmap_lock);
	return caps;
}

static uint64_t *rlimit_of(struct mm_struct *mm, int resource)
{
	if (resource == RLIMIT_MEMLOCK)
		return mm->rlim_memlock;
	if (resource == RLIMIT_STACK)
		return mm->rlim_stack;
	return NULL;
}

int cowvm_setrlimit(cowvm_task_t *t, int resource, const struct rlimit *rlim)
{
	if (!t || !rlim)
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	uint64_t *r = rlimit_of(mm, resource);
	if (!r || rlim->rlim_cur > rlim->rlim_max)
		return -EINVAL;
	down_write(&mm->mmap_lock);
	int ret = 0;
	if (rlim->rlim_max > r[1] && !capable(mm, COWVM_CAP_SYS_RESOURCE)) {
		ret = -EPERM;
	} else {
		r[0] = rlim->rlim_cur;
		r[1] = rlim->rlim_max;
	}
	up_write(&mm->mmap_lock);
	return ret;
}

int cowvm_getrlimit(cowvm_task_t *t, int resource, struct rlimit *rlim)
{
	if (!t || !rlim)
		return -EINVAL;
	uint64_t *r = rlimit_of(t->mm, resource);
	if (!r)
		return -EINVAL;
	down_read(&t->mm->mmap_lock);
	rlim->rlim_cur = r[0];
	rlim->rlim_max = r[1];
	up_read(&t->mm->mmap_lock);
	return 0;
}
