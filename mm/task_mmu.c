/*
 * task_mmu.c - what /proc/<pid>/{pagemap,smaps,maps,status} and /proc/vmstat show, with
 * Linux's rules (fs/proc/task_mmu.c): the zero page is present in pagemap but counts nowhere
 * else; a page with refcount 1 is private with full Pss; otherwise mapcount >= 2 makes it
 * shared with Pss divided by the mapcount.
 */
#include "mm.h"

/* Run fn on each VMA of t's process; the mm's mmap_lock is held for reading meanwhile. */
static struct vm_area_struct *vma_at(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);
	return vma && vma->vm_start <= addr ? vma : NULL;
}

static uint64_t pte_to_pagemap_entry(struct mm_struct *mm, struct vm_area_struct *vma,
				     uint64_t addr, pte_t pte)
{
	uint64_t flags = 0;
	if (vma->vm_flags & VM_SOFTDIRTY)
		flags |= COWVM_PM_SOFT_DIRTY;
	if (!pte_present(pte))
		return flags;
	flags |= COWVM_PM_PRESENT | (pte_pfn(pte) & COWVM_PM_PFN_MASK);
	if (pte_soft_dirty(pte))
		flags |= COWVM_PM_SOFT_DIRTY;
	struct page *page = vm_normal_page(vma, addr, pte);
	if (page) {
		if (!PageAnon(page))
			flags |= COWVM_PM_FILE;
		if (page_mapcount(page) == 1)
			flags |= COWVM_PM_MMAP_EXCLUSIVE;
	}
	(void)mm;
	return flags;
}

uint64_t cowvm_pagemap(cowvm_task_t *t, uint64_t addr)
{
	if (!t)
		return 0;
	struct mm_struct *mm = t->mm;
	uint64_t word = 0;
	down_read(&mm->mmap_lock);
	struct vm_area_struct *vma = vma_at(mm, addr);
	if (vma) {
		pte_t *ptep = pte_offset_map(mm, addr & PAGE_MASK);
		word = pte_to_pagemap_entry(mm, vma, addr, ptep ? ptep_get(ptep) : 0);
	}
	up_read(&mm->mmap_lock);
	return word;
}

uint64_t cowvm_pte(cowvm_task_t *t, uint64_t addr)
{
	if (!t)
		return 0;
	down_read(&t->mm->mmap_lock);
	pte_t *ptep = pte_offset_map(t->mm, addr & PAGE_MASK);
	pte_t pte = ptep ? ptep_get(ptep) : 0;
	up_read(&t->mm->mmap_lock);
	return pte;
}

/* smaps_account for one present PTE. */
static void smaps_pte_entry(struct cowvm_smaps *mss, uint64_t *pss_shifted, struct page *page, pte_t pte)
{
	const uint64_t size = PAGE_SIZE;
	bool dirty = pte_dirty(pte) || PageDirty(page);
	if (PageAnon(page))
		mss->anonymous += size;
	mss->rss += size;
	if (pte_young(pte) || PageFlag(page, PG_referenced))
		mss->referenced += size;
	int mapcount = page_mapcount(page);
	bool private = page_ref_count(page) == 1 || mapcount < 2;
	if (private) {
		*pss_shifted += size << 12;
		if (dirty)
			mss->private_dirty += size;
		else
			mss->private_clean += size;
	} else {
		*pss_shifted += (size << 12) / (uint64_t)mapcount;
		if (dirty)
			mss->shared_dirty += size;
		else
			mss->shared_clean += size;
	}
}

struct smaps_arg {
	struct vm_area_struct *vma;
	struct cowvm_smaps *mss;
	uint64_t *pss_shifted;
};

static int smaps_pte_range(pte_t *ptep, uint64_t addr, void *varg)
{
	struct smaps_arg *a = varg;
	pte_t pte = ptep_get(ptep);
	struct page *page = pte_present(pte) ? vm_normal_page(a->vma, addr, pte) : NULL;
	if (page)
		smaps_pte_entry(a->mss, a->pss_shifted, page, pte);
	return 0;
}

int cowvm_smaps(cowvm_task_t *t, uint64_t addr, uint64_t len, struct cowvm_smaps *out)
{
	if (!t || !out)
		return -EINVAL;
	bool rollup = addr == 0 && len == 0;
	if (!rollup && (len == 0 || addr + len < addr))
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	memset(out, 0, sizeof(*out));
	uint64_t pss_shifted = 0;
	down_read(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		if (!rollup && (vma->vm_end <= addr || vma->vm_start >= addr + len))
			continue;
		out->size += vma->vm_end - vma->vm_start;
		struct smaps_arg a = { vma, out, &pss_shifted };
		walk_page_range(mm, vma->vm_start, vma->vm_end, smaps_pte_range, &a);
	}
	up_read(&mm->mmap_lock);
	out->pss = pss_shifted >> 12;
	return 0;
}

int cowvm_for_each_vma(cowvm_task_t *t, cowvm_vma_fn fn, void *arg)
{
	if (!t || !fn)
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	int ret = 0;
	down_read(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas && !ret; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		struct cowvm_vma_info info = {
			.start = vma->vm_start,
			.end = vma->vm_end,
			.pgoff = vma->vm_pgoff,
			.prot = ((vma->vm_flags & VM_READ) ? PROT_READ : 0) |
				((vma->vm_flags & VM_WRITE) ? PROT_WRITE : 0) |
				((vma->vm_flags & VM_EXEC) ? PROT_EXEC : 0),
			.shared = !!(vma->vm_flags & VM_SHARED),
			.flags = vma->vm_flags,
			.anon_vma = vma->anon_vma ? vma->anon_vma->id : 0,
		};
		ret = fn(arg, &info);
	}
	up_read(&mm->mmap_lock);
	return ret < 0 ? ret : 0;
}

int cowvm_task_stats(cowvm_task_t *t, struct cowvm_task_stats *out)
{
	if (!t || !out)
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	memset(out, 0, sizeof(*out));
	out->min_flt = atomic_load(&t->min_flt);
	out->maj_flt = atomic_load(&t->maj_flt);
	out->tlb_misses = atomic_load(&t->tlb_misses);
	out->rss_anon = (uint64_t)get_mm_counter(mm, MM_ANONPAGES);
	out->rss_swap = (uint64_t)get_mm_counter(mm, MM_SWAPENTS);
	out->rss_shmem = (uint64_t)get_mm_counter(mm, MM_SHMEMPAGES);
	out->nr_ptes = (uint64_t)atomic_load(&mm->pgtables_pages);
	down_read(&mm->mmap_lock);
	out->total_vm = mm->total_vm;
	out->nr_vmas = mm->nr_vmas;
	up_read(&mm->mmap_lock);
	return 0;
}

int cowvm_vmstat(cowvm_t *vm, struct cowvm_vmstat *out)
{
	if (!vm || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
#define EV(x) global_vm_event(vm, x)
#define NS(x) (uint64_t)global_node_page_state(vm, x)
	out->nr_free_pages = nr_free_pages(vm);
	out->nr_anon_pages = NS(NR_ANON_MAPPED);
	out->nr_shmem = NS(NR_SHMEM);
	out->nr_page_table_pages = NS(NR_PAGETABLE);
	out->nr_active_anon = NS(NR_ACTIVE_ANON);
	out->nr_inactive_anon = NS(NR_INACTIVE_ANON);
	out->nr_zero_page_mappings = NS(NR_ZERO_MAPPED);
	out->nr_total_pages = vm->nr_frames;
	out->pgfault = EV(PGFAULT);
	out->pgmajfault = EV(PGMAJFAULT);
	out->pgreuse = EV(PGREUSE);
	out->pgalloc = EV(PGALLOC);
	out->pgfree = EV(PGFREE);
	out->cow_copies = EV(COW_COPY);
	out->zero_page_maps = EV(ZERO_PAGE_MAP);
	out->zero_page_cows = EV(ZERO_PAGE_COW);
	out->tlb_flushes = EV(TLB_FLUSH);
	out->nr_pinned = NS(NR_FOLL_PIN);
	out->gup_fast_fallbacks = EV(GUP_FAST_FALLBACK);
#undef EV
#undef NS
	return 0;
}

int cowvm_frame_info(cowvm_t *vm, uint64_t pfn, struct cowvm_frame_info *out)
{
	if (!vm || !out || !pfn_valid(vm, pfn))
		return -EINVAL;
	struct page *page = pfn_to_page(vm, pfn);
	memset(out, 0, sizeof(*out));
	out->pfn = pfn;
	uint32_t f = atomic_load(&page->flags);
	if (f & (1u << PG_zero))
		out->state = COWVM_FRAME_ZERO;
	else if (f & (1u << PG_reserved))
		out->state = COWVM_FRAME_RESERVED;
	else if (f & ((1u << PG_buddy) | (1u << PG_pcp)) || page_ref_count(page) == 0)
		out->state = COWVM_FRAME_FREE;
	else if (f & (1u << PG_pgtable))
		out->state = COWVM_FRAME_PGTABLE;
	else if (f & (1u << PG_shmem))
		out->state = COWVM_FRAME_SHMEM;
	else if (page_mapcount(page) == 0)
		out->state = COWVM_FRAME_PINNED;
	else
		out->state = COWVM_FRAME_ANON;
	out->refcount = page_ref_count(page);
	out->mapcount = page_mapcount(page);
	out->anon_exclusive = !!(f & (1u << PG_anon_exclusive));
	out->lru = (f & (1u << PG_lru)) ? ((f & (1u << PG_active)) ? 2 : 1) : 0;
	out->index = page->index;
	return 0;
}

struct rmap_api_arg {
	cowvm_rmap_fn fn;
	void *arg;
	int count;
};

/* page_vma_mapped: does the PTE at addr really map this page? */
static int rmap_api_one(struct page *page, struct vm_area_struct *vma, uint64_t addr, void *varg)
{
	struct rmap_api_arg *a = varg;
	struct mm_struct *mm = vma->vm_mm;
	spin_lock(&mm->page_table_lock);
	pte_t *ptep = pte_offset_map(mm, addr);
	pte_t pte = ptep ? ptep_get(ptep) : 0;
	spin_unlock(&mm->page_table_lock);
	if (!pte_present(pte) || pte_pfn(pte) != page_to_pfn(mm->vm, page))
		return 0;
	a->count++;
	/* a SNAP image is no process: it is reported as the negative pid of its child */
	return a->fn ? a->fn(a->arg, mm->is_snapshot ? -mm->tgid : mm->tgid, addr) : 0;
}

int cowvm_rmap_walk(cowvm_t *vm, uint64_t pfn, cowvm_rmap_fn fn, void *arg)
{
	if (!vm || !pfn_valid(vm, pfn))
		return -EINVAL;
	struct rmap_api_arg a = { fn, arg, 0 };
	rmap_walk(vm, pfn_to_page(vm, pfn), rmap_api_one, &a);
	return a.count;
}

/*
 * clear_refs_write: 1-3 clear the young bits (and PG_referenced) of all, anonymous or
 * file/shmem pages; 4 starts soft-dirty tracking: VM_SOFTDIRTY off, every present PTE
 * write-protected and unmarked, so the next write faults (and reuses) and marks it again;
 * 5 resets the peak RSS (cowvm keeps none).  TLBs are flushed afterwards.
 */
struct clear_refs_arg {
	struct vm_area_struct *vma;
	bool soft_dirty;
};

static int clear_refs_pte_range(pte_t *ptep, uint64_t addr, void *varg)
{
	struct clear_refs_arg *a = varg;
	pte_t old = ptep_get(ptep), new;
	if (!pte_present(old))
		return 0;
	do { /* the MMU may set accessed/dirty meanwhile */
		new = a->soft_dirty ? pte_wrprotect(old) & ~_PAGE_SOFT_DIRTY : pte_mkold(old);
	} while (new != old && !__atomic_compare_exchange_n(ptep, &old, new, false, __ATOMIC_ACQ_REL,
							   __ATOMIC_ACQUIRE));
	struct page *page = vm_normal_page(a->vma, addr, new);
	if (!a->soft_dirty && page)
		ClearPageFlag(page, PG_referenced);
	return 0;
}

int cowvm_clear_refs(cowvm_task_t *t, int what)
{
	enum { CLEAR_REFS_ALL = 1, CLEAR_REFS_ANON, CLEAR_REFS_MAPPED, CLEAR_REFS_SOFT_DIRTY,
	       CLEAR_REFS_MM_HIWATER_RSS };
	if (!t || what < CLEAR_REFS_ALL || what > CLEAR_REFS_MM_HIWATER_RSS)
		return -EINVAL;
	if (what == CLEAR_REFS_MM_HIWATER_RSS)
		return 0;
	current = t;
	struct mm_struct *mm = t->mm;
	bool soft_dirty = what == CLEAR_REFS_SOFT_DIRTY;
	if (soft_dirty)
		down_write(&mm->mmap_lock);
	else
		down_read(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		if (soft_dirty && (vma->vm_flags & VM_SOFTDIRTY)) {
			vma->vm_flags &= ~VM_SOFTDIRTY;
			vma->vm_page_prot = vm_get_page_prot(vma->vm_flags);
		}
		if ((what == CLEAR_REFS_ANON && vma->vm_file) || (what == CLEAR_REFS_MAPPED && !vma->vm_file))
			continue;
		struct clear_refs_arg a = { vma, soft_dirty };
		walk_page_range(mm, vma->vm_start, vma->vm_end, clear_refs_pte_range, &a);
	}
	flush_tlb_mm(mm);
	if (soft_dirty)
		up_write(&mm->mmap_lock);
	else
		up_read(&mm->mmap_lock);
	return 0;
}
