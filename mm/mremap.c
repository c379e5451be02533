/*
 * mremap.c - mremap(2) as Linux 6.x's mm/mremap.c: shrink, grow in place, or move a mapping
 * (MREMAP_MAYMOVE, MREMAP_FIXED), optionally leaving the old range mapped and empty
 * (MREMAP_DONTUNMAP).
 *
 *   do_mremap: check_mremap_params, vma_lookup
 *     -> mremap_at:  same size: nothing | shrink: do_munmap of the tail | grow: in place when
 *                    the VMA ends at the range and the space after it is free
 *                    (vma_expandable), else move_vma when MAYMOVE
 *     -> mremap_to:  FIXED / DONTUNMAP: unmap the target, shrink first, then move_vma
 *   move_vma: copy_vma (a VMA at the new place with the old vm_pgoff and the old anon_vma
 *             chains), move_page_tables (each PTE moves under the PTL, the old range's TLB is
 *             flushed before the PTL is dropped), then unmap the old range, or with DONTUNMAP
 *             clear its VM_LOCKED and leave it empty.
 *
 * Moving PTEs moves mappings, not pages: refcounts, mapcounts and PageAnonExclusive stay, so a
 * page shared copy-on-write with another process stays shared, and rmap finds it at the new
 * address because the new VMA keeps the page offset (linear_page_index is unchanged) and is
 * chained to the same anon_vmas.  The anon_vma root lock (and a shared object's i_mmap lock) is
 * held while PTEs move, so an rmap walk sees each page at its old place or its new one.
 * Everything runs with mmap_lock held for writing; a locked mapping that grew is populated
 * afterwards under the read lock.
 */
#include "mm.h"

/* ---- moving page-table entries ---------------------------------------------------------------- */

static uint64_t next_boundary(uint64_t addr, uint64_t end)
{
	uint64_t next = (addr + PMD_SIZE) & ~(PMD_SIZE - 1);
	return (next > end || next == 0) ? end : next;
}

static void take_rmap_locks(struct vm_area_struct *vma)
{
	if (vma->vm_file)
		down_write(&vma->vm_file->i_mmap_rwsem);
	if (vma->anon_vma)
		down_write(&vma->anon_vma->root->rwsem);
}

static void drop_rmap_locks(struct vm_area_struct *vma)
{
	if (vma->anon_vma)
		up_write(&vma->anon_vma->root->rwsem);
	if (vma->vm_file)
		up_write(&vma->vm_file->i_mmap_rwsem);
}

/*
 * move_ptes - move the entries of [old_addr, old_addr + len) of vma, which lie in one PTE table
 * on each side, to new_addr in new_vma.  Caller holds the rmap locks; takes the PTL.  A moved
 * entry is marked soft-dirty (move_soft_dirty_pte) so a tracker notices the move.
 */
static void move_ptes(struct vm_area_struct *vma, struct vm_area_struct *new_vma, pte_t *old_pte,
		      pte_t *new_pte, uint64_t old_addr, uint64_t len)
{
	struct mm_struct *mm = vma->vm_mm;
	struct cowvm *vm = mm->vm;
	bool flush = false, soft_dirty = !(vm->flags & COWVM_CONFIG_NO_SOFT_DIRTY);
	bool lock_changes = (vma->vm_flags ^ new_vma->vm_flags) & VM_LOCKED;
	spin_lock(&mm->page_table_lock);
	for (uint64_t off = 0; off < len; off += PAGE_SIZE, old_pte++, new_pte++) {
		pte_t pte = ptep_get(old_pte);
		if (pte_none(pte))
			continue;
		if (unlikely(!pte_none(ptep_get(new_pte))))
			bug("mremap onto a present PTE (from %#llx)", (unsigned long long)(old_addr + off));
		pte = ptep_get_and_clear(old_pte);
		mark_table_changed_from(vm, old_pte, pte);
		if (pte_present(pte))
			flush = true;
		if (soft_dirty && pte_present(pte))
			pte = pte_mksoft_dirty(pte);
		else if (soft_dirty && is_swap_pte(pte))
			pte = pte_swp_mksoft_dirty(pte);
		if (lock_changes && pte_present(pte)) {
			struct page *page = vm_normal_page(vma, old_addr + off, pte);
			if (page) {
				munlock_vma_page(vm, page, vma);
				mlock_vma_page(vm, page, new_vma);
			}
		}
		set_pte(new_pte, pte);
		mark_table_changed_from(vm, new_pte, 0);
	}
	/* flush before the PTL goes: the frames must not be reachable through stale entries
	 * once someone else can change them */
	if (flush)
		flush_tlb_mm_range(mm, old_addr, old_addr + len);
	spin_unlock(&mm->page_table_lock);
}

/*
 * move_page_tables - move the entries of [old_addr, old_addr + len) of vma to new_addr in
 * new_vma.  New tables are allocated before the PTL is taken.  Returns the bytes moved: less
 * than len only when a table could not be allocated (the caller moves them back).
 */
static uint64_t move_page_tables(struct vm_area_struct *vma, uint64_t old_addr,
				 struct vm_area_struct *new_vma, uint64_t new_addr, uint64_t len)
{
	struct mm_struct *mm = vma->vm_mm;
	uint64_t done = 0;
	take_rmap_locks(vma);
	while (done < len) {
		uint64_t o = old_addr + done, n = new_addr + done;
		uint64_t step = next_boundary(o, old_addr + len) - o;
		uint64_t nstep = next_boundary(n, new_addr + len) - n;
		if (nstep < step)
			step = nstep;
		pte_t *old_pte = pte_offset_map(mm, o);
		if (old_pte) {
			pte_t *new_pte = pte_alloc_map(mm, n);
			if (!new_pte)
				break;
			move_ptes(vma, new_vma, old_pte, new_pte, o, step);
		}
		done += step;
	}
	drop_rmap_locks(vma);
	return done;
}

/* ---- the operation ------------------------------------------------------------------------ */

struct remap {
	struct mm_struct *mm;
	uint64_t addr, old_len, new_len, new_addr, delta;
	int flags;
	struct vm_area_struct *vma;
	bool mlocked;         /* the VMA is VM_LOCKED: populate what it grew by */
};

static struct vm_area_struct *vma_lookup(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);
	return vma && vma->vm_start <= addr ? vma : NULL;
}

/* remap_is_valid: may [addr, +old_len) of the VMA be moved or resized to new_len? */
static int remap_is_valid(struct remap *r)
{
	struct vm_area_struct *vma = r->vma;
	if (!r->old_len && !(vma->vm_flags & (VM_SHARED | VM_MAYSHARE)))
		return -EINVAL; /* "duplicating" a private mapping makes no sense */
	if ((r->flags & MREMAP_DONTUNMAP) && (vma->vm_flags & VM_DONTEXPAND))
		return -EINVAL;
	if (r->old_len > vma->vm_end - r->addr)
		return -EFAULT; /* no remapping across VMA boundaries */
	if (r->new_len == r->old_len)
		return 0;
	uint64_t pgoff = linear_page_index(vma, r->addr);
	if (pgoff + (r->new_len >> PAGE_SHIFT) < pgoff)
		return -EINVAL;
	if (vma->vm_flags & VM_DONTEXPAND)
		return -EFAULT;
	if (!mlock_future_ok(r->mm, vma->vm_flags, r->delta))
		return -EAGAIN;
	return 0;
}

/* vma_expandable: is [vm_end, vm_end + delta) free and within user space? */
static bool vma_expandable(struct vm_area_struct *vma, uint64_t delta)
{
	uint64_t end = vma->vm_end + delta;
	if (end < vma->vm_end)
		return false;
	struct vm_area_struct *next = find_vma(vma->vm_mm, vma->vm_end);
	if (next && next->vm_start < end)
		return false;
	return get_unmapped_area(vma->vm_mm, vma->vm_start, end - vma->vm_start, true) >= 0;
}

/*
 * copy_vma - the VMA at the new place: vma's flags, object and anon_vma chains, at new_addr
 * for new_len with the page offset the old range had.  Returns it (inserted, not yet merged)
 * or NULL on -ENOMEM.
 */
static struct vm_area_struct *copy_vma(struct remap *r)
{
	struct vm_area_struct *vma = r->vma;
	struct vm_area_struct *new = vm_area_dup(vma);
	if (!new)
		return NULL;
	new->vm_start = r->new_addr;
	new->vm_end = r->new_addr + r->new_len;
	new->vm_pgoff = linear_page_index(vma, r->addr);
	if (anon_vma_clone(new, vma)) {
		vm_area_free(new);
		return NULL;
	}
	if (vma_insert(r->mm, new)) {
		unlink_anon_vmas(new);
		vm_area_free(new);
		return NULL;
	}
	if (new->vm_file) {
		shmem_get(new->vm_file);
		shmem_link_vma(new);
	}
	return new;
}

/*
 * move_vma - copy_vma, move the page tables, account, then unmap the old range (or with
 * DONTUNMAP leave it, unlocked and empty).  On -ENOMEM while moving, the entries go back and
 * the new VMA is unmapped instead.  Returns the new address or -errno.
 *
 *   before:   [addr, +old_len) in vma              ..... free: [new_addr, +new_len)
 *   after:    (hole, or the empty old range)       [new_addr ===== new VMA ====)
 */
static int64_t move_vma(struct remap *r)
{
	struct mm_struct *mm = r->mm;
	struct vm_area_struct *vma = r->vma;
	struct vm_area_struct *new = copy_vma(r);
	if (!new)
		return -ENOMEM;
	uint64_t moved = move_page_tables(vma, r->addr, new, r->new_addr, r->old_len);
	uint64_t hiwater_vm = mm->hiwater_vm;
	mm->total_vm += r->new_len >> PAGE_SHIFT;
	if (new->vm_flags & VM_LOCKED) {
		mm->locked_vm += r->new_len >> PAGE_SHIFT;
		r->mlocked = true;
	}
	if (moved < r->old_len) { /* out of page tables: back where they were, drop the new VMA */
		move_page_tables(new, r->new_addr, vma, r->addr, moved);
		do_munmap(mm, r->new_addr, r->new_len);
		mm->hiwater_vm = hiwater_vm;
		r->mlocked = false;
		return -ENOMEM;
	}
	if (r->flags & MREMAP_DONTUNMAP) {
		/* dontunmap_complete: the old VMA is not locked any more (its pages are gone), but
		 * Linux leaves locked_vm as it was: VmLck keeps counting it. */
		if (vma->vm_flags & VM_LOCKED) {
			mm->locked_vm_stale += (vma->vm_end - vma->vm_start) >> PAGE_SHIFT;
			mlock_vma_pages_range(vma, vma->vm_start, vma->vm_end, false);
		}
		vma->vm_flags &= ~VM_LOCKED_MASK;
		if (r->addr == vma->vm_start && r->addr + r->old_len == vma->vm_end)
			unlink_anon_vmas(vma); /* nothing of it is mapped any more */
	} else if (r->old_len) { /* old_len 0 duplicated a shared mapping: nothing to unmap */
		do_munmap(mm, r->addr, r->old_len);
	}
	mm->hiwater_vm = hiwater_vm;
	vma_merge_neighbours(mm, vma_lookup(mm, r->new_addr));
	return (int64_t)r->new_addr;
}

/* The target of a move: MREMAP_FIXED's address, DONTUNMAP's hint, or anywhere. */
static int set_new_addr(struct remap *r)
{
	bool implies = r->flags & (MREMAP_FIXED | MREMAP_DONTUNMAP);
	int64_t res = get_unmapped_area(r->mm, implies ? r->new_addr : 0, r->new_len,
					r->flags & MREMAP_FIXED);
	if (res < 0)
		return (int)res;
	r->new_addr = (uint64_t)res;
	return 0;
}

static int64_t mremap_to(struct remap *r)
{
	struct mm_struct *mm = r->mm;
	if (r->new_len > TASK_SIZE_MAX || r->new_addr > TASK_SIZE_MAX - r->new_len)
		return -EINVAL;
	if (r->addr + r->old_len > r->new_addr && r->new_addr + r->new_len > r->addr)
		return -EINVAL; /* the target overlaps the source */
	int err;
	if (r->flags & MREMAP_FIXED) {
		err = do_munmap(mm, r->new_addr, r->new_len);
		if (err)
			return err;
		r->vma = vma_lookup(mm, r->addr);
		if (!r->vma)
			return -EFAULT;
	}
	if (r->old_len > r->new_len) { /* shrink first, then move what is left */
		err = do_munmap(mm, r->addr + r->new_len, r->delta);
		if (err)
			return err;
		r->vma = vma_lookup(mm, r->addr);
		if (!r->vma)
			return -EFAULT;
		r->old_len = r->new_len;
		r->delta = 0;
	}
	err = remap_is_valid(r);
	if (err)
		return err;
	err = set_new_addr(r);
	if (err)
		return err;
	return move_vma(r);
}

static int64_t mremap_at(struct remap *r)
{
	struct mm_struct *mm = r->mm;
	if (r->old_len == r->new_len)
		return (int64_t)r->addr;
	if (r->old_len > r->new_len) {
		int err = do_munmap(mm, r->addr + r->new_len, r->delta);
		return err ? err : (int64_t)r->addr;
	}
	int err = remap_is_valid(r);
	if (err)
		return err;
	struct vm_area_struct *vma = r->vma;
	if (vma->vm_end - r->addr == r->old_len && vma_expandable(vma, r->delta)) {
		/* expand_vma_in_place (vma_merge_extend): grow, and merge with what follows */
		vma->vm_end += r->delta;
		mm->total_vm += r->delta >> PAGE_SHIFT;
		if (vma->vm_flags & VM_LOCKED) {
			mm->locked_vm += r->delta >> PAGE_SHIFT;
			r->mlocked = true;
		}
		vma_merge_neighbours(mm, vma);
		r->new_addr = r->addr;
		return (int64_t)r->addr;
	}
	if (!(r->flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	err = set_new_addr(r);
	if (err)
		return err;
	return move_vma(r);
}

/*
 * cowvm_mremap - do_mremap: the parameter checks in Linux's order (flags, alignment, a new
 * length, then for FIXED/DONTUNMAP the new address's alignment, MAYMOVE, equal lengths), the
 * lengths page aligned, the VMA at addr (-EFAULT without one), then at or to.  A locked
 * mapping that grew is populated.  Returns the address or -errno; on failure nothing changed,
 * except the target of MREMAP_FIXED, which is unmapped first (as in Linux).
 */
int64_t cowvm_mremap(cowvm_task_t *t, uint64_t addr, uint64_t old_len, uint64_t new_len,
		     int flags, uint64_t new_addr)
{
	if (!t)
		return -EINVAL;
	current = t;
	if (flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP))
		return -EINVAL;
	if (!PAGE_ALIGNED(addr))
		return -EINVAL;
	if (!PAGE_ALIGN(new_len))
		return -EINVAL;
	bool implies = flags & (MREMAP_FIXED | MREMAP_DONTUNMAP);
	if (implies) {
		if (!PAGE_ALIGNED(new_addr))
			return -EINVAL;
		if (!(flags & MREMAP_MAYMOVE))
			return -EINVAL;
		if ((flags & MREMAP_DONTUNMAP) && old_len != new_len)
			return -EINVAL;
	}
	old_len = PAGE_ALIGN(old_len);
	new_len = PAGE_ALIGN(new_len);
	if (new_len > TASK_SIZE_MAX)
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	struct remap r = {
		.mm = mm, .addr = addr, .old_len = old_len, .new_len = new_len, .new_addr = new_addr,
		.flags = flags, .delta = old_len > new_len ? old_len - new_len : new_len - old_len,
	};
	down_write(&mm->mmap_lock);
	int64_t res;
	r.vma = vma_lookup(mm, addr);
	if (!r.vma || old_len > TASK_SIZE_MAX - addr) {
		res = -EFAULT;
		goto out;
	}
	res = implies ? mremap_to(&r) : mremap_at(&r);
out:
	up_write(&mm->mmap_lock);
	if (res >= 0 && r.mlocked && r.new_len > r.old_len)
		populate_range(t, r.new_addr + r.old_len, r.new_addr + r.new_len);
	return res;
}
