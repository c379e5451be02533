/*
 * mmap.c - address spaces: the VMA set of an mm, mmap/munmap/brk, split_vma and merging,
 * populate, and the teardown of an mm at exit.
 *
 * The VMA set is a sorted array of pointers: lookup is a binary search (O(log n)), insertion
 * and removal a memmove of pointers.  Linux's maple tree is a B-tree for the same job; at the
 * VMA counts real processes have (tens to thousands) the array is as fast and far simpler.
 *
 * Invariants: VMAs are sorted, page aligned, non-empty and do not overlap; two neighbours that
 * could merge (vma_merge rules) have been merged; total_vm is the sum of their pages.
 * Everything here runs with mmap_lock held for writing unless it says otherwise.
 */
#include "mm.h"

#define MMAP_MIN_ADDR 0x10000ull                  /* vm.mmap_min_addr as the kernel applies it */
#define MMAP_BASE (TASK_SIZE_MAX - (128ull << 20)) /* top-down base without randomisation */
#define TASK_UNMAPPED_BASE PAGE_ALIGN(TASK_SIZE_MAX / 3)
#define START_BRK 0x555555559000ull               /* heap of a small program without ASLR */
#define USER_TOP (1ull << 47)

/* include/cowvm.h spells Linux's mmap constants for programs built without _DEFAULT_SOURCE. */
_Static_assert(COWVM_PROT_READ == PROT_READ && COWVM_PROT_WRITE == PROT_WRITE &&
	       COWVM_PROT_EXEC == PROT_EXEC && COWVM_PROT_NONE == PROT_NONE, "COWVM_PROT_*");
_Static_assert(COWVM_MAP_SHARED == MAP_SHARED && COWVM_MAP_PRIVATE == MAP_PRIVATE &&
	       COWVM_MAP_FIXED == MAP_FIXED && COWVM_MAP_ANONYMOUS == MAP_ANONYMOUS &&
	       COWVM_MAP_NORESERVE == MAP_NORESERVE && COWVM_MAP_POPULATE == MAP_POPULATE &&
	       COWVM_MAP_NONBLOCK == MAP_NONBLOCK && COWVM_MAP_FIXED_NOREPLACE == MAP_FIXED_NOREPLACE,
	       "COWVM_MAP_*");

/* ---- the VMA array -------------------------------------------------------------------------- */

size_t vma_index(struct mm_struct *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->nr_vmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (mm->vmas[mid]->vm_end > addr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

struct vm_area_struct *find_vma(struct mm_struct *mm, uint64_t addr)
{
	size_t i = vma_index(mm, addr);
	return i < mm->nr_vmas ? mm->vmas[i] : NULL;
}

/* Make room for n more VMAs, so that a following insert cannot fail. */
static int vma_reserve(struct mm_struct *mm, size_t n)
{
	if (mm->nr_vmas + n <= mm->vmas_cap)
		return 0;
	size_t cap = mm->vmas_cap ? mm->vmas_cap * 2 : 16;
	while (cap < mm->nr_vmas + n)
		cap *= 2;
	struct vm_area_struct **v = realloc(mm->vmas, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	mm->vmas = v;
	mm->vmas_cap = cap;
	return 0;
}

int vma_insert(struct mm_struct *mm, struct vm_area_struct *vma)
{
	if (vma_reserve(mm, 1))
		return -ENOMEM;
	size_t i = vma_index(mm, vma->vm_start);
	memmove(&mm->vmas[i + 1], &mm->vmas[i], (mm->nr_vmas - i) * sizeof(*mm->vmas));
	mm->vmas[i] = vma;
	mm->nr_vmas++;
	return 0;
}

void vma_remove(struct mm_struct *mm, struct vm_area_struct *vma)
{
	size_t i = vma_index(mm, vma->vm_start);
	if (unlikely(i >= mm->nr_vmas || mm->vmas[i] != vma))
		bug("VMA %#llx-%#llx is not in its mm", (unsigned long long)vma->vm_start,
		    (unsigned long long)vma->vm_end);
	memmove(&mm->vmas[i], &mm->vmas[i + 1], (mm->nr_vmas - i - 1) * sizeof(*mm->vmas));
	mm->nr_vmas--;
}

struct vm_area_struct *vm_area_alloc(struct mm_struct *mm)
{
	struct vm_area_struct *vma = calloc(1, sizeof(*vma));
	if (!vma)
		return NULL;
	vma->vm_mm = mm;
	INIT_LIST_HEAD(&vma->anon_vma_chain);
	INIT_LIST_HEAD(&vma->shared);
	return vma;
}

/* A copy of orig's fields, without its chains or its place in lists. */
struct vm_area_struct *vm_area_dup(struct vm_area_struct *orig)
{
	struct vm_area_struct *vma = vm_area_alloc(orig->vm_mm);
	if (!vma)
		return NULL;
	vma->vm_start = orig->vm_start;
	vma->vm_end = orig->vm_end;
	vma->vm_flags = orig->vm_flags;
	vma->vm_page_prot = orig->vm_page_prot;
	vma->vm_pgoff = orig->vm_pgoff;
	vma->anon_vma = orig->anon_vma;
	vma->vm_file = orig->vm_file;
	return vma;
}

void vm_area_free(struct vm_area_struct *vma)
{
	free(vma);
}

/* Take a VMA out of rmap and the shmem object, and free it (remove_vma). */
static void remove_vma(struct vm_area_struct *vma)
{
	unlink_anon_vmas(vma);
	if (vma->vm_file) {
		shmem_unlink_vma(vma);
		shmem_put(vma->vm_mm->vm, vma->vm_file);
	}
	vm_area_free(vma);
}

/*
 * x86's protection_map, and vma_set_page_prot: while soft-dirty tracking is on (VM_SOFTDIRTY
 * cleared by clear_refs) a shared mapping is mapped read-only too, so writes fault and mark.
 */
pgprot_t vm_get_page_prot(unsigned long vm_flags)
{
	pgprot_t prot;
	if (!(vm_flags & VM_ACCESS_FLAGS))
		return PAGE_NONE;
	if ((vm_flags & VM_SHARED) && (vm_flags & VM_WRITE) && (vm_flags & VM_SOFTDIRTY))
		prot = PAGE_SHARED;
	else
		prot = PAGE_READONLY; /* PAGE_COPY for private mappings: the first write faults */
	if (vm_flags & VM_EXEC)
		prot &= ~_PAGE_NX;
	return prot;
}

static unsigned long calc_vm_prot_bits(int prot)
{
	return ((prot & PROT_READ) ? VM_READ : 0) | ((prot & PROT_WRITE) ? VM_WRITE : 0) |
	       ((prot & PROT_EXEC) ? VM_EXEC : 0);
}

/* ---- split and merge ------------------------------------------------------------------------ */

/*
 * split_vma - cut vma at addr into two VMAs.  With new_below the new VMA takes [vm_start, addr)
 * else [addr, vm_end).  The upper part's pgoff moves with its start, so every page keeps its
 * index.  Returns 0 or -ENOMEM with nothing changed.
 */
int split_vma(struct mm_struct *mm, struct vm_area_struct *vma, uint64_t addr, bool new_below)
{
	if (vma_reserve(mm, 1))
		return -ENOMEM;
	struct vm_area_struct *new = vm_area_dup(vma);
	if (!new)
		return -ENOMEM;
	if (new_below) {
		new->vm_end = addr;
	} else {
		new->vm_start = addr;
		new->vm_pgoff += (addr - vma->vm_start) >> PAGE_SHIFT;
	}
	if (anon_vma_clone(new, vma)) {
		vm_area_free(new);
		return -ENOMEM;
	}
	if (new->vm_file) {
		shmem_get(new->vm_file);
		shmem_link_vma(new);
	}
	if (new_below) {
		vma->vm_pgoff += (addr - vma->vm_start) >> PAGE_SHIFT;
		vma->vm_start = addr;
	} else {
		vma->vm_end = addr;
	}
	vma_insert(mm, new); /* cannot fail: reserved */
	return 0;
}

/*
 * May src (a new or just-changed VMA) and its neighbour other share one anon_vma after a
 * merge?  Both without, or the same one; or one without, provided the one that has an
 * anon_vma was not spread by fork (a single chain) - Linux's is_mergeable_anon_vma.  (A new
 * mapping next to a VMA inherited through fork stays a VMA of its own, as on the host.)
 */
static bool is_mergeable_anon_vma(struct vm_area_struct *src, struct vm_area_struct *other)
{
	if (!src->anon_vma && !other->anon_vma)
		return true;
	if (src->anon_vma && other->anon_vma)
		return src->anon_vma == other->anon_vma;
	struct vm_area_struct *has = src->anon_vma ? src : other;
	return has->anon_vma_chain.next == has->anon_vma_chain.prev;
}

/* lo and hi are adjacent: may they become one VMA? */
static bool can_merge(struct vm_area_struct *lo, struct vm_area_struct *hi, struct vm_area_struct *src)
{
	if (lo->vm_end != hi->vm_start)
		return false;
	if ((lo->vm_flags ^ hi->vm_flags) & ~VM_SOFTDIRTY)
		return false;
	if (lo->vm_file != hi->vm_file)
		return false;
	if (lo->vm_pgoff + ((lo->vm_end - lo->vm_start) >> PAGE_SHIFT) != hi->vm_pgoff)
		return false;
	return is_mergeable_anon_vma(src, src == lo ? hi : lo);
}

/* Fold hi into lo (lo grows, hi goes).  Returns lo, or NULL on -ENOMEM with nothing changed. */
static struct vm_area_struct *merge_pair(struct mm_struct *mm, struct vm_area_struct *lo,
					 struct vm_area_struct *hi)
{
	if (!lo->anon_vma && hi->anon_vma) { /* dup_anon_vma: lo takes over hi's chains */
		lo->anon_vma = hi->anon_vma;
		if (anon_vma_clone(lo, hi)) {
			lo->anon_vma = NULL;
			return NULL;
		}
	}
	vma_remove(mm, hi); /* before lo grows over it: the array is searched by address */
	lo->vm_end = hi->vm_end;
	lo->vm_flags |= hi->vm_flags & VM_SOFTDIRTY;
	lo->vm_page_prot = vm_get_page_prot(lo->vm_flags);
	remove_vma(hi);
	return lo;
}

/*
 * vma_merge_neighbours - merge a new or changed VMA with the neighbours it may merge with.
 * Returns the VMA that now covers its range.  A failed merge (no memory) just leaves two VMAs.
 */
struct vm_area_struct *vma_merge_neighbours(struct mm_struct *mm, struct vm_area_struct *vma)
{
	size_t i = vma_index(mm, vma->vm_start);
	if (i + 1 < mm->nr_vmas && can_merge(vma, mm->vmas[i + 1], vma)) {
		struct vm_area_struct *m = merge_pair(mm, vma, mm->vmas[i + 1]);
		if (m)
			vma = m;
	}
	if (i > 0 && can_merge(mm->vmas[i - 1], vma, vma)) {
		struct vm_area_struct *m = merge_pair(mm, mm->vmas[i - 1], vma);
		if (m)
			vma = m;
	}
	return vma;
}

/*
 * vma_modify_flags - give [start, end) of vma the flags newflags: split off the parts outside
 * the range, set the flags and protection, merge with neighbours.  Returns the VMA now covering
 * the range, or NULL on -ENOMEM (splits already done stay: they change nothing visible).
 * Page-table changes are the caller's (mprotect's change_protection).
 */
struct vm_area_struct *vma_modify_flags(struct mm_struct *mm, struct vm_area_struct *vma,
					uint64_t start, uint64_t end, unsigned long newflags)
{
	if (vma->vm_start < start && split_vma(mm, vma, start, true))
		return NULL;
	if (vma->vm_end > end && split_vma(mm, vma, end, false))
		return NULL;
	vma->vm_flags = newflags;
	vma->vm_page_prot = vm_get_page_prot(newflags);
	return vma;
}

/*
 * copy_vma_cow - give dst a twin of src at src's range + delta, sharing src's pages
 * copy-on-write (fork, dput's COPY middle, dput's SNAP).  The twin keeps src's vm_pgoff, so
 * each page keeps its index, and gets an anon_vma forked from src's, so rmap finds it.  With
 * wipe the twin starts empty (VM_WIPEONFORK).  Both mmap_locks held for writing; the caller
 * flushes src's TLB.  The twin is never VM_LOCKED (fork does not pass mlock on).  Returns 0 or
 * -ENOMEM (a twin already inserted stays, partly copied).
 */
int copy_vma_cow(struct mm_struct *dst, struct vm_area_struct *src, uint64_t delta, bool wipe)
{
	struct vm_area_struct *tmp = vm_area_dup(src);
	if (!tmp)
		return -ENOMEM;
	tmp->vm_mm = dst;
	tmp->vm_start += delta;
	tmp->vm_end += delta;
	tmp->vm_flags &= ~VM_LOCKED_MASK; /* dup_mmap: a child does not inherit mlock */
	if (wipe) {
		tmp->anon_vma = NULL; /* faults in fresh, as a new mapping would */
	} else if (anon_vma_fork(tmp, src)) {
		vm_area_free(tmp);
		return -ENOMEM;
	}
	if (vma_insert(dst, tmp)) {
		unlink_anon_vmas(tmp);
		vm_area_free(tmp);
		return -ENOMEM;
	}
	if (tmp->vm_file) {
		shmem_get(tmp->vm_file);
		shmem_link_vma(tmp);
	}
	dst->total_vm += (tmp->vm_end - tmp->vm_start) >> PAGE_SHIFT;
	if (wipe)
		return 0;
	/* gup_fast must not pin a page while we decide to share it (write_protect_seq) */
	struct mm_struct *smm = src->vm_mm;
	atomic_fetch_add_explicit(&smm->write_protect_seq, 1, memory_order_seq_cst);
	int err = copy_page_range(tmp, src);
	atomic_fetch_add_explicit(&smm->write_protect_seq, 1, memory_order_seq_cst);
	return err;
}

/* ---- mmap --------------------------------------------------------------------------------- */

static bool range_is_free(struct mm_struct *mm, uint64_t addr, uint64_t len)
{
	struct vm_area_struct *vma = find_vma(mm, addr);
	return !vma || vma->vm_start >= addr + len;
}

/* vm_start_gap: where a VMA's claim starts, the stack guard gap below a growsdown one included. */
static uint64_t vm_start_gap(const struct vm_area_struct *vma)
{
	uint64_t start = vma->vm_start;
	if (vma->vm_flags & VM_GROWSDOWN)
		start = start > STACK_GUARD_GAP ? start - STACK_GUARD_GAP : 0;
	return start;
}

uint64_t mmap_min_addr(struct mm_struct *mm)
{
	return capable(mm, COWVM_CAP_SYS_RAWIO) ? 0 : MMAP_MIN_ADDR; /* cap_mmap_addr */
}

/*
 * get_unmapped_area - a hint that fits is taken (not within a stack's guard gap); else the
 * highest free gap below mmap_base that fits len, else bottom-up from TASK_UNMAPPED_BASE.
 * With fixed, the address is checked only (range, alignment, vm.mmap_min_addr: -ENOMEM,
 * -EINVAL, -EPERM).  Returns the address or -errno.
 */
int64_t get_unmapped_area(struct mm_struct *mm, uint64_t hint, uint64_t len, bool fixed)
{
	if (len > TASK_SIZE_MAX)
		return -ENOMEM;
	if (fixed) {
		if (hint > TASK_SIZE_MAX - len)
			return -ENOMEM;
		if (!PAGE_ALIGNED(hint))
			return -EINVAL;
		if (hint < mmap_min_addr(mm))
			return -EPERM; /* security_mmap_addr */
		return (int64_t)hint;
	}
	if (hint) { /* already rounded by round_hint_to_min */
		size_t i = vma_index(mm, hint);
		struct vm_area_struct *next = i < mm->nr_vmas ? mm->vmas[i] : NULL;
		struct vm_area_struct *prev = i > 0 ? mm->vmas[i - 1] : NULL;
		if (hint <= TASK_SIZE_MAX - len && (!next || hint + len <= vm_start_gap(next)) &&
		    (!prev || hint >= prev->vm_end))
			return (int64_t)hint;
	}
	uint64_t top = mm->mmap_base;
	for (size_t i = vma_index(mm, top); ; i--) {
		/* gap between vmas[i-1] (or MMAP_MIN_ADDR) and min(top, vmas[i]'s claim) */
		uint64_t gap_end = top;
		if (i < mm->nr_vmas && vm_start_gap(mm->vmas[i]) < top)
			gap_end = vm_start_gap(mm->vmas[i]);
		uint64_t gap_start = i > 0 ? mm->vmas[i - 1]->vm_end : MMAP_MIN_ADDR;
		if (gap_end >= gap_start + len && gap_end - len >= MMAP_MIN_ADDR)
			return (int64_t)(gap_end - len);
		if (i == 0)
			break;
		if (mm->vmas[i - 1]->vm_start < top)
			top = mm->vmas[i - 1]->vm_start;
	}
	uint64_t addr = TASK_UNMAPPED_BASE;
	for (size_t i = vma_index(mm, addr); addr + len <= TASK_SIZE_MAX; i++) {
		if (i >= mm->nr_vmas || vm_start_gap(mm->vmas[i]) >= addr + len)
			return (int64_t)addr;
		addr = mm->vmas[i]->vm_end;
	}
	return -ENOMEM;
}

/*
 * mmap_region - create the VMA for [addr, addr + len) (already free) and merge it.
 * Returns 0 or -ENOMEM with nothing changed.
 */
int mmap_region(struct mm_struct *mm, uint64_t addr, uint64_t len, unsigned long vm_flags)
{
	struct vm_area_struct *vma = vm_area_alloc(mm);
	if (!vma)
		return -ENOMEM;
	vma->vm_start = addr;
	vma->vm_end = addr + len;
	vma->vm_flags = vm_flags;
	vma->vm_page_prot = vm_get_page_prot(vm_flags);
	if (vm_flags & VM_SHARED) {
		vma->vm_file = shmem_create(mm->vm, len >> PAGE_SHIFT);
		if (!vma->vm_file)
			goto free_vma;
		vma->vm_pgoff = 0;
	} else {
		vma->vm_pgoff = addr >> PAGE_SHIFT;
	}
	if (vma_insert(mm, vma))
		goto free_file;
	if (vma->vm_file)
		shmem_link_vma(vma);
	mm->total_vm += len >> PAGE_SHIFT;
	if (vm_flags & VM_LOCKED)
		mm->locked_vm += len >> PAGE_SHIFT;
	vma_merge_neighbours(mm, vma);
	return 0;
free_file:
	if (vma->vm_file)
		shmem_put(mm->vm, vma->vm_file);
free_vma:
	vm_area_free(vma);
	return -ENOMEM;
}

/*
 * cowvm_mmap - mmap(2) for anonymous memory, with Linux's checks in Linux's order.
 * Returns the address or -errno; nothing changes on failure (MAP_FIXED unmaps the old range
 * only once the new mapping is sure to be made, except for running out of memory).
 */
int64_t cowvm_mmap(cowvm_task_t *t, uint64_t addr, uint64_t len, int prot, int flags)
{
	if (!t)
		return -EINVAL;
	current = t;
	struct mm_struct *mm = t->mm;

	/* ksys_mmap_pgoff: the file first (cowvm has none: fd -1 is a bad descriptor) */
	if (!(flags & MAP_ANONYMOUS))
		return -EBADF;
	if (flags & MAP_HUGETLB)
		return -EINVAL; /* no huge pages in cowvm */
	/* do_mmap */
	if (!len)
		return -EINVAL;
	bool noreplace = flags & MAP_FIXED_NOREPLACE;
	if (noreplace)
		flags |= MAP_FIXED;
	if (!(flags & MAP_FIXED) && addr) { /* round_hint_to_min */
		addr &= PAGE_MASK;
		if (addr < MMAP_MIN_ADDR)
			addr = MMAP_MIN_ADDR;
	}
	len = PAGE_ALIGN(len);
	if (!len || len > TASK_SIZE_MAX)
		return -ENOMEM;
	int type = flags & MAP_TYPE;
	bool type_ok = type == MAP_SHARED || type == MAP_PRIVATE; /* SHARED_VALIDATE: not for anon */
	unsigned long vm_flags = calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC |
				 VM_SOFTDIRTY;
	if (flags & MAP_GROWSDOWN)
		vm_flags |= VM_GROWSDOWN; /* calc_vm_flag_bits */
	if (flags & MAP_LOCKED)
		vm_flags |= VM_LOCKED;
	if (type == MAP_SHARED)
		vm_flags |= VM_SHARED | VM_MAYSHARE;
	else if ((vm_flags & VM_WRITE) && !(flags & MAP_NORESERVE)) /* accountable_mapping */
		vm_flags |= VM_ACCOUNT;
	if (flags & MAP_NORESERVE)
		vm_flags |= VM_NORESERVE;

	down_write(&mm->mmap_lock);
	vm_flags |= mm->def_flags; /* mlockall(MCL_FUTURE) */
	int64_t ret;
	/* __get_unmapped_area: a fixed address is checked for range, alignment and the security
	 * minimum; MAP_FIXED_NOREPLACE's overlap, mlock's limits and the type come after. */
	ret = get_unmapped_area(mm, addr, len, flags & MAP_FIXED);
	if (ret < 0)
		goto out;
	addr = (uint64_t)ret;
	if (noreplace && !range_is_free(mm, addr, len)) {
		ret = -EEXIST;
		goto out;
	}
	if ((flags & MAP_LOCKED) && !can_do_mlock(mm)) {
		ret = -EPERM;
		goto out;
	}
	if (!mlock_future_ok(mm, vm_flags, len)) {
		ret = -EAGAIN;
		goto out;
	}
	if (!type_ok || (type == MAP_SHARED && (vm_flags & VM_GROWSDOWN))) {
		ret = -EINVAL;
		goto out;
	}
	if (flags & MAP_FIXED) {
		ret = do_munmap(mm, addr, len);
		if (ret)
			goto out;
	}
	ret = mmap_region(mm, addr, len, vm_flags);
	if (!ret)
		ret = (int64_t)addr;
out:
	up_write(&mm->mmap_lock);
	/* do_mmap's populate: MAP_POPULATE (without MAP_NONBLOCK), or a locked mapping */
	if (ret >= 0 && ((vm_flags & VM_LOCKED) || (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE))
		populate_range(t, addr, addr + len); /* errors ignored, as mm_populate's */
	return ret;
}

/* ---- munmap ---------------------------------------------------------------------------------- */

/*
 * do_munmap - unmap [start, start + len): split the VMAs at the edges, zap their pages, free
 * the page tables that only served the hole, and remove the VMAs.  Returns 0 or -ENOMEM (a
 * failed split) with nothing unmapped.
 */
int do_munmap(struct mm_struct *mm, uint64_t start, uint64_t len)
{
	uint64_t end = start + len;
	TRACE_SCOPE(mm->vm, NULL, "do_munmap", TF_HEX("start", start), TF_HEX("end", end));
	size_t i = vma_index(mm, start);
	if (i >= mm->nr_vmas || mm->vmas[i]->vm_start >= end)
		return 0;
	struct vm_area_struct *vma = mm->vmas[i];
	if (vma->vm_start < start) {
		if (split_vma(mm, vma, start, true))
			return -ENOMEM;
		i++;
	}
	size_t last = vma_index(mm, end - 1);
	if (last < mm->nr_vmas && mm->vmas[last]->vm_start < end && mm->vmas[last]->vm_end > end) {
		if (split_vma(mm, mm->vmas[last], end, true))
			return -ENOMEM;
		last++;
	}
	/* vmas[i .. j) are exactly the VMAs inside [start, end). */
	size_t j = i;
	while (j < mm->nr_vmas && mm->vmas[j]->vm_end <= end)
		j++;
	uint64_t floor = i > 0 ? mm->vmas[i - 1]->vm_end : 0;
	uint64_t ceiling = j < mm->nr_vmas ? mm->vmas[j]->vm_start : USER_TOP;

	struct mmu_gather tlb;
	update_hiwater_rss(mm);
	update_hiwater_vm(mm);
	for (size_t k = i; k < j; k++) /* out of i_mmap before the tables go (shmem_punch_hole) */
		if (mm->vmas[k]->vm_file)
			shmem_unlink_vma(mm->vmas[k]);
	tlb_gather_mmu(&tlb, mm);
	for (size_t k = i; k < j; k++)
		unmap_page_range(&tlb, mm->vmas[k], mm->vmas[k]->vm_start, mm->vmas[k]->vm_end);
	free_pgtables(&tlb, mm, start, end, floor, ceiling);
	tlb_finish_mmu(&tlb);
	while (j > i) {
		struct vm_area_struct *v = mm->vmas[--j];
		mm->total_vm -= (v->vm_end - v->vm_start) >> PAGE_SHIFT;
		if (v->vm_flags & VM_LOCKED)
			mm->locked_vm -= (v->vm_end - v->vm_start) >> PAGE_SHIFT;
		vma_remove(mm, v);
		remove_vma(v);
	}
	return 0;
}

int cowvm_munmap(cowvm_task_t *t, uint64_t addr, uint64_t len)
{
	if (!t)
		return -EINVAL;
	current = t;
	if (!PAGE_ALIGNED(addr) || !len)
		return -EINVAL;
	len = PAGE_ALIGN(len);
	if (!len || len > TASK_SIZE_MAX || addr > TASK_SIZE_MAX - len)
		return -EINVAL;
	TRACE_SCOPE(t->vm, t, "munmap", TF_HEX("address", addr), TF_NUM("pages", len >> PAGE_SHIFT));
	down_write(&t->mm->mmap_lock);
	int ret = do_munmap(t->mm, addr, len);
	up_write(&t->mm->mmap_lock);
	return ret;
}

/* ---- brk --------------------------------------------------------------------------------------- */

/* Grow the heap by [addr, addr + len): extend the brk VMA or make one (do_brk_flags). */
static int do_brk_flags(struct mm_struct *mm, uint64_t addr, uint64_t len)
{
	unsigned long flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC |
			      VM_ACCOUNT | VM_SOFTDIRTY | mm->def_flags;
	if (!mlock_future_ok(mm, flags, len))
		return -EAGAIN;
	size_t i = vma_index(mm, addr);
	struct vm_area_struct *prev = i > 0 ? mm->vmas[i - 1] : NULL;
	if (prev && prev->vm_end == addr && !prev->vm_file &&
	    ((prev->vm_flags ^ flags) & ~VM_SOFTDIRTY) == 0 &&
	    (!prev->anon_vma || prev->anon_vma_chain.next == prev->anon_vma_chain.prev)) {
		prev->vm_end = addr + len;
		mm->total_vm += len >> PAGE_SHIFT;
		if (flags & VM_LOCKED)
			mm->locked_vm += len >> PAGE_SHIFT;
		return 0;
	}
	return mmap_region(mm, addr, len, flags);
}

int64_t cowvm_brk(cowvm_task_t *t, uint64_t brk)
{
	if (!t)
		return -EINVAL;
	current = t;
	struct mm_struct *mm = t->mm;
	bool populate = false;
	down_write(&mm->mmap_lock);
	uint64_t newbrk = PAGE_ALIGN(brk), oldbrk = PAGE_ALIGN(mm->brk);
	if (brk < mm->start_brk || brk > TASK_SIZE_MAX)
		goto out;
	if (oldbrk == newbrk) {
		mm->brk = brk;
		goto out;
	}
	if (brk <= mm->brk) { /* shrink: only a heap that is there (no VMA: keep the break) */
		struct vm_area_struct *brkvma = find_vma(mm, newbrk);
		if (!brkvma || brkvma->vm_start >= oldbrk)
			goto out;
		if (do_munmap(mm, newbrk, oldbrk - newbrk) == 0)
			mm->brk = brk;
		goto out;
	}
	struct vm_area_struct *next = find_vma(mm, oldbrk);
	if (next && newbrk + PAGE_SIZE > next->vm_start)
		goto out;
	if (do_brk_flags(mm, oldbrk, newbrk - oldbrk) == 0) {
		mm->brk = brk;
		populate = mm->def_flags & VM_LOCKED; /* a locked heap is populated, as brk does */
	}
out:;
	int64_t ret = (int64_t)mm->brk;
	up_write(&mm->mmap_lock);
	if (populate)
		populate_range(t, oldbrk, newbrk);
	return ret;
}

/* ---- populate and teardown ---------------------------------------------------------------------- */

/* populate_range - MAP_POPULATE's mm_populate over [start, end): errors ignored. */
int populate_range(struct task_struct *task, uint64_t start, uint64_t end)
{
	return __mm_populate(task, start, end - start, true);
}

/* The high-water marks, taken before memory goes (Linux's update_hiwater_*). */
void update_hiwater_rss(struct mm_struct *mm)
{
	uint64_t rss = (uint64_t)(get_mm_counter(mm, MM_ANONPAGES) + get_mm_counter(mm, MM_FILEPAGES) +
				  get_mm_counter(mm, MM_SHMEMPAGES));
	if (rss > mm->hiwater_rss)
		mm->hiwater_rss = rss;
}

void update_hiwater_vm(struct mm_struct *mm)
{
	if (mm->total_vm > mm->hiwater_vm)
		mm->hiwater_vm = mm->total_vm;
}

/* ---- stacks -------------------------------------------------------------------------------- */

/*
 * expand_downwards - grow a VM_GROWSDOWN VMA down to cover address (expand_stack_locked), as
 * the fault handler does for an access below a stack:
 *
 *      prev->vm_end        address            vm_start            vm_end
 *   ...----|      >= 256 pages      |<- grow ->|======= stack =======|
 *
 * The gap to the VMA below must stay at least stack_guard_gap (256 pages), unless that VMA is
 * a stack itself or PROT_NONE; the new size may not exceed RLIMIT_STACK, nor a locked stack's
 * growth RLIMIT_MEMLOCK.  vm_pgoff moves down with vm_start, so every page keeps its index.
 * mmap_lock held for writing.  Returns 0, -EFAULT (not a stack), -EPERM (below
 * vm.mmap_min_addr) or -ENOMEM.
 */
int expand_downwards(struct vm_area_struct *vma, uint64_t address)
{
	struct mm_struct *mm = vma->vm_mm;
	if (!(vma->vm_flags & VM_GROWSDOWN))
		return -EFAULT;
	address &= PAGE_MASK;
	if (address < mmap_min_addr(mm))
		return -EPERM;
	if (address >= vma->vm_start)
		return 0;
	size_t i = vma_index(mm, vma->vm_start);
	struct vm_area_struct *prev = i > 0 ? mm->vmas[i - 1] : NULL;
	if (prev && !(prev->vm_flags & VM_GROWSDOWN) && (prev->vm_flags & VM_ACCESS_FLAGS) &&
	    (address < prev->vm_end || address - prev->vm_end < STACK_GUARD_GAP))
		return -ENOMEM;
	if (prev && address < prev->vm_end)
		return -ENOMEM;
	if (anon_vma_prepare(vma))
		return -ENOMEM;
	uint64_t size = vma->vm_end - address;
	uint64_t grow = (vma->vm_start - address) >> PAGE_SHIFT;
	if (grow > vma->vm_pgoff)
		return -ENOMEM;
	/* acct_stack_growth */
	if (size > mm->rlim_stack[0])
		return -ENOMEM;
	if (!mlock_future_ok(mm, vma->vm_flags, grow << PAGE_SHIFT))
		return -ENOMEM;
	if (vma->vm_flags & VM_LOCKED)
		mm->locked_vm += grow;
	mm->total_vm += grow;
	vma->vm_start = address; /* the array stays sorted: the gap below was free */
	vma->vm_pgoff -= grow;
	return 0;
}

/* exit_mmap - the last user is gone: unmap everything, free every table and VMA. */
void exit_mmap(struct mm_struct *mm)
{
	struct mmu_gather tlb;
	TRACE_SCOPE(mm->vm, NULL, "exit_mmap", TF_NUM("vmas", mm->nr_vmas),
		    TF_NUM("rss", get_mm_counter(mm, MM_ANONPAGES) + get_mm_counter(mm, MM_SHMEMPAGES)));
	down_write(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas; i++)
		if (mm->vmas[i]->vm_file)
			shmem_unlink_vma(mm->vmas[i]);
	tlb_gather_mmu(&tlb, mm);
	for (size_t i = 0; i < mm->nr_vmas; i++)
		unmap_page_range(&tlb, mm->vmas[i], mm->vmas[i]->vm_start, mm->vmas[i]->vm_end);
	free_pgtables(&tlb, mm, 0, USER_TOP, 0, USER_TOP);
	tlb_finish_mmu(&tlb);
	while (mm->nr_vmas > 0) {
		struct vm_area_struct *v = mm->vmas[mm->nr_vmas - 1];
		mm->nr_vmas--;
		remove_vma(v);
	}
	mm->total_vm = 0;
	mm->locked_vm = mm->locked_vm_stale = 0;
	up_write(&mm->mmap_lock);
}

struct mm_struct *mm_alloc(struct cowvm *vm)
{
	struct mm_struct *mm = calloc(1, sizeof(*mm));
	if (!mm)
		return NULL;
	mm->vm = vm;
	init_rwsem(&mm->mmap_lock);
	spin_lock_init(&mm->page_table_lock);
	INIT_LIST_HEAD(&mm->threads);
	INIT_LIST_HEAD(&mm->mmlist);
	INIT_LIST_HEAD(&mm->snapshots);
	mm->mmap_base = MMAP_BASE;
	mm->start_brk = mm->brk = START_BRK;
	mm->rlim_memlock[0] = mm->rlim_memlock[1] = 8ull << 20; /* MLOCK_LIMIT */
	mm->rlim_stack[0] = 8ull << 20;                         /* _STK_LIM */
	mm->rlim_stack[1] = RLIM_INFINITY;
	struct page *pgd = alloc_zeroed_user_page(vm);
	if (!pgd) {
		destroy_rwsem(&mm->mmap_lock);
		free(mm);
		return NULL;
	}
	SetPageFlag(pgd, PG_pgtable);
	pgd->private = 4;
	atomic_store(&mm->pgtables_pages, 1);
	mod_node_page_state(vm, NR_PAGETABLE, 1);
	mm->pgd = page_to_pfn(vm, pgd);
	mem_cgroup_mm_init(mm);
	return mm;
}

/* Free an mm that exit_mmap emptied. */
void mm_free(struct mm_struct *mm)
{
	free_pgd(mm);
	if (atomic_load(&mm->pgtables_pages) != 0)
		bug("mm freed with %ld page-table pages left", (long)atomic_load(&mm->pgtables_pages));
	for (int i = 0; i < NR_MM_COUNTERS; i++)
		if (get_mm_counter(mm, i) != 0)
			bug("mm freed with RSS counter %d = %ld", i, get_mm_counter(mm, i));
	mem_cgroup_mm_free(mm);
	free(mm->vmas);
	free(mm->snap_log.ent);
	free(mm->snap_log.slots);
	destroy_rwsem(&mm->mmap_lock);
	free(mm);
}
