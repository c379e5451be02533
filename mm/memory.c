/*
 * memory.c - page tables and the page-fault path, as Linux's mm/memory.c:
 *   handle_mm_fault -> __handle_mm_fault -> handle_pte_fault
 *       -> do_anonymous_page        (no PTE, private: zero page on read, zeroed page on write)
 *       -> do_fault                 (no PTE, shared: the shmem page)
 *       -> do_wp_page               (write to a read-only PTE)
 *            -> wp_page_reuse       (the page is exclusively ours: make it writable)
 *            -> wp_page_copy        (otherwise: copy it, or replace the zero page)
 * and fork's copy_page_range, munmap's unmap_page_range / free_pgtables.
 *
 * Invariants kept here: a writable PTE in a private mapping maps a PageAnonExclusive page
 * with mapcount 1; the zero page is mapped only read-only and special, outside rmap, RSS and
 * refcounts; every PTE that maps a page holds one reference and one mapcount of it; RSS counts
 * equal the present PTEs by type.  Every PTE change happens under mm->page_table_lock.
 */
#include "swap.h"

/* ---- page tables ---------------------------------------------------------------------------- */

/* A zeroed page-table page for the given level (1 = PTE table .. 4 = PGD). */
static struct page *pte_alloc_one(struct mm_struct *mm, int level, uint64_t addr)
{
	struct page *page = alloc_zeroed_user_page(mm->vm);
	if (!page)
		return NULL;
	SetPageFlag(page, PG_pgtable);
	SetPageDirty(page); /* a new table is news to any snapshot */
	page->private = (uint64_t)level;
	if (level == 1) { /* for mark_table_changed: whose table, and where it starts */
		page->mapping = mm;
		page->index = addr & ~(PMD_SIZE - 1);
	}
	atomic_fetch_add(&mm->pgtables_pages, 1);
	mod_node_page_state(mm->vm, NR_PAGETABLE, 1);
	return page;
}

static void pte_free(struct mm_struct *mm, struct page *page)
{
	ClearPageFlag(page, PG_pgtable);
	atomic_fetch_sub(&mm->pgtables_pages, 1);
	mod_node_page_state(mm->vm, NR_PAGETABLE, -1);
	put_page(mm->vm, page);
}

/*
 * The table an upper-level entry points at, allocating it if missing (pud_alloc, pmd_alloc,
 * __pte_alloc).  The new table is installed under page_table_lock; a racing thread's table
 * wins and ours is freed.  Returns NULL on OOM with nothing changed.
 */
static pte_t *table_alloc(struct mm_struct *mm, pte_t *entry, int child_level, uint64_t addr)
{
	pte_t e = ptep_get(entry);
	if (likely(e))
		return table_of(mm->vm, pte_pfn(e));
	struct page *new = pte_alloc_one(mm, child_level, addr);
	if (!new)
		return NULL;
	spin_lock(&mm->page_table_lock);
	e = ptep_get(entry);
	if (!e) {
		e = pfn_pte(page_to_pfn(mm->vm, new), _PAGE_TABLE);
		set_pte(entry, e);
		new = NULL;
	}
	spin_unlock(&mm->page_table_lock);
	if (new)
		pte_free(mm, new);
	return table_of(mm->vm, pte_pfn(e));
}

pte_t *pte_alloc_map(struct mm_struct *mm, uint64_t addr)
{
	pte_t *pgd = table_of(mm->vm, mm->pgd);
	pte_t *pud = table_alloc(mm, &pgd[pgd_index(addr)], 3, addr);
	if (!pud)
		return NULL;
	pte_t *pmd = table_alloc(mm, &pud[pud_index(addr)], 2, addr);
	if (!pmd)
		return NULL;
	pte_t *pte = table_alloc(mm, &pmd[pmd_index(addr)], 1, addr);
	if (!pte)
		return NULL;
	return &pte[pte_index(addr)];
}

/* The PTE slot for addr, or NULL when a table on the way is missing. */
pte_t *pte_offset_map(struct mm_struct *mm, uint64_t addr)
{
	pte_t *table = table_of(mm->vm, mm->pgd);
	static const int shifts[3] = { PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT };
	for (int i = 0; i < 3; i++) {
		pte_t e = ptep_get(&table[(addr >> shifts[i]) & 511]);
		if (!e)
			return NULL;
		table = table_of(mm->vm, pte_pfn(e));
	}
	return &table[pte_index(addr)];
}

/* The struct page a PTE maps, or NULL for the zero page (special: nothing to account). */
struct page *vm_normal_page(struct vm_area_struct *vma, uint64_t addr, pte_t pte)
{
	(void)addr;
	if (pte_special(pte))
		return NULL;
	return pfn_to_page(vma->vm_mm->vm, pte_pfn(pte));
}

static uint64_t zero_pfn(struct cowvm *vm)
{
	return page_to_pfn(vm, vm->zero_page);
}

/* ---- the fault path ---------------------------------------------------------------------- */

#define GUP_PIN_COUNTING_BIAS 1024

/* Clear a PTE and flush it from every TLB of the mm (ptep_clear_flush).  Caller holds the PTL. */
static pte_t ptep_clear_flush(struct vm_area_struct *vma, uint64_t addr, pte_t *ptep)
{
	TRACE_SCOPE(vma->vm_mm->vm, NULL, "ptep_clear_flush", TF_HEX("address", addr));
	pte_t old = ptep_get_and_clear(ptep);
	trace_call(vma->vm_mm->vm, "flush_tlb_page", TF_HEX("address", addr));
	flush_tlb_mm_range(vma->vm_mm, addr, addr + PAGE_SIZE);
	return old;
}

/* A PTE's bits as the trace shows them: "writable dirty young", "read-only", "none" ... */
static const char *pte_words(pte_t pte)
{
	static const char *const words[] = {
		"read-only", "read-only dirty", "read-only young", "read-only dirty young",
		"writable", "writable dirty", "writable young", "writable dirty young",
	};
	if (pte_none(pte))
		return "none";
	if (!pte_present(pte))
		return "not present";
	if (pte_special(pte))
		return pte_young(pte) ? "read-only young special" : "read-only special";
	return words[(pte_write(pte) ? 4 : 0) | (pte_young(pte) ? 2 : 0) | (pte_dirty(pte) ? 1 : 0)];
}

static pte_t maybe_mkwrite(pte_t pte, struct vm_area_struct *vma)
{
	return (vma->vm_flags & VM_WRITE) ? pte_mkwrite(pte) : pte;
}

/*
 * do_anonymous_page - first touch of private anonymous memory.  A read maps the shared zero
 * page read-only; a write maps a new zeroed page, writable and exclusive.
 * Called with mmap_lock held for reading, no PTL.
 */
static unsigned do_anonymous_page(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mm_struct *mm = vma->vm_mm;
	struct cowvm *vm = mm->vm;

	trace_step(vmf, "do_anonymous_page");
	TRACE_SCOPE(vm, NULL, "do_anonymous_page");
	if (!(vmf->flags & FAULT_FLAG_WRITE)) {
		trace_decide(vm, "zero page", "a read of untouched private memory maps the shared zero "
			     "page read-only: no frame is allocated until a write");
		pte_t entry = pte_mkspecial(pfn_pte(zero_pfn(vm), vma->vm_page_prot));
		spin_lock(&mm->page_table_lock);
		if (!pte_none(ptep_get(vmf->pte))) {
			spin_unlock(&mm->page_table_lock);
			trace_note(vm, "raced", "another thread mapped the page first: nothing to do");
			return 0;
		}
		trace_call(vm, "set_pte_at", TF_FRAME("frame", zero_pfn(vm)), TF_TEXT("pte", pte_words(entry)));
		set_pte(vmf->pte, entry);
		mark_table_changed_from(vm, vmf->pte, 0);
		mod_node_page_state(vm, NR_ZERO_MAPPED, 1);
		spin_unlock(&mm->page_table_lock);
		count_vm_event(vm, ZERO_PAGE_MAP);
		vmf->new_pfn = zero_pfn(vm);
		return 0;
	}

	trace_decide(vm, "new page", "a write to untouched private memory gets a zeroed page of its "
		     "own, writable and anon-exclusive");
	if (anon_vma_prepare(vma))
		return VM_FAULT_OOM;
	struct page *page = alloc_page_may_reclaim(vm, true);
	if (!page) {
		trace_note(vm, "OOM", "no free frame");
		return VM_FAULT_OOM;
	}
	trace_call(vm, "alloc_zeroed_user_page", TF_FRAME("frame", page_to_pfn(vm, page)));
	if (mem_cgroup_charge(page, mm, 0)) {
		trace_note(vm, "OOM", "mem_cgroup_charge failed");
		put_page(vm, page);
		return VM_FAULT_OOM;
	}
	trace_call(vm, "mem_cgroup_charge", TF_NUM("pages", 1));
	pte_t entry = pte_mkyoung(pfn_pte(page_to_pfn(vm, page), vma->vm_page_prot));
	if (vma->vm_flags & VM_WRITE)
		entry = pte_mkwrite(pte_mkdirty(entry));

	spin_lock(&mm->page_table_lock);
	if (!pte_none(ptep_get(vmf->pte))) { /* another thread mapped it first */
		spin_unlock(&mm->page_table_lock);
		trace_note(vm, "raced", "another thread mapped the page first: ours is freed");
		put_page(vm, page);
		return 0;
	}
	add_mm_counter(mm, MM_ANONPAGES, 1);
	page_add_new_anon_rmap(page, vma, vmf->address, true);
	lru_cache_add_active(vm, page);
	trace_call(vm, "set_pte_at", TF_FRAME("frame", page_to_pfn(vm, page)), TF_TEXT("pte", pte_words(entry)));
	set_pte(vmf->pte, entry);
	mark_table_changed_from(vm, vmf->pte, 0);
	spin_unlock(&mm->page_table_lock);
	vmf->new_pfn = page_to_pfn(vm, page);
	return 0;
}

#define FAULT_AROUND_PAGES 16 /* /sys/kernel/mm/... fault_around_bytes = 64 KiB */

/*
 * do_fault_around - on a read fault in a shared mapping, map the pages around the address that
 * are already in the object's cache (filemap_map_pages), up to 16 within the VMA and the PTE
 * table, into PTEs that are empty: young, clean, with the VMA's protection.  Only one fault is
 * counted.  Returns true when the faulting page itself got mapped.
 */
static bool do_fault_around(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mm_struct *mm = vma->vm_mm;
	uint64_t pte_off = pte_index(vmf->address);
	uint64_t vma_off = vmf->pgoff - vma->vm_pgoff;
	uint64_t vma_pages = (vma->vm_end - vma->vm_start) >> PAGE_SHIFT;
	uint64_t from = pte_off & ~(uint64_t)(FAULT_AROUND_PAGES - 1);
	if (pte_off - (pte_off < vma_off ? pte_off : vma_off) > from)
		from = pte_off - (pte_off < vma_off ? pte_off : vma_off);
	uint64_t to = from + FAULT_AROUND_PAGES;
	if (to > PTRS_PER_TABLE)
		to = PTRS_PER_TABLE;
	if (to > pte_off + vma_pages - vma_off)
		to = pte_off + vma_pages - vma_off;
	bool mapped_ours = false;
	pte_t *first = vmf->pte - pte_off;

	trace_step(vmf, "do_fault_around");
	TRACE_SCOPE(mm->vm, NULL, "do_fault_around", TF_NUM("from", from), TF_NUM("to", to));
	for (uint64_t i = from; i < to; i++) {
		uint64_t pgoff = vmf->pgoff + i - pte_off;
		struct page *page = shmem_find_get_page(vma->vm_file, pgoff);
		if (!page)
			continue;
		spin_lock(&mm->page_table_lock);
		if (!pte_none(ptep_get(&first[i]))) {
			spin_unlock(&mm->page_table_lock);
			put_page(mm->vm, page);
			continue;
		}
		add_mm_counter(mm, MM_SHMEMPAGES, 1);
		page_add_file_rmap(page, vma);
		set_pte(&first[i], pte_mkyoung(pfn_pte(page_to_pfn(mm->vm, page), vma->vm_page_prot)));
		mark_table_changed_from(mm->vm, &first[i], 0);
		spin_unlock(&mm->page_table_lock);
		if (i == pte_off) {
			mapped_ours = true;
			vmf->new_pfn = page_to_pfn(mm->vm, page);
		}
	}
	return mapped_ours;
}

/*
 * do_fault - a page of a shared anonymous mapping: find or create it in the shmem object and
 * map it (do_read_fault / do_shared_fault + finish_fault).  A read maps it with the VMA's
 * protection (writable if the VMA is), clean; a write maps it dirty.
 */
static unsigned do_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mm_struct *mm = vma->vm_mm;
	struct page *page;
	bool write = vmf->flags & FAULT_FLAG_WRITE;

	trace_step(vmf, write ? "do_shared_fault" : "do_read_fault");
	TRACE_SCOPE(mm->vm, NULL, write ? "do_shared_fault" : "do_read_fault");
	trace_decide(mm->vm, "shared memory", "a shared mapping's page lives in its shmem object: "
		     "every process that maps it maps the same frame, with no COW");
	if (!write && do_fault_around(vmf))
		return 0;
	unsigned ret = shmem_fault(vmf, &page);
	if (ret)
		return ret;
	pte_t entry = pte_mkyoung(pfn_pte(page_to_pfn(mm->vm, page), vma->vm_page_prot));
	if (write)
		entry = maybe_mkwrite(pte_mkdirty(entry), vma);
	trace_step(vmf, "finish_fault");
	TRACE_SCOPE(mm->vm, NULL, "finish_fault", TF_FRAME("frame", page_to_pfn(mm->vm, page)));
	spin_lock(&mm->page_table_lock);
	if (!pte_none(ptep_get(vmf->pte))) {
		spin_unlock(&mm->page_table_lock);
		put_page(mm->vm, page);
		return 0;
	}
	add_mm_counter(mm, MM_SHMEMPAGES, 1);
	page_add_file_rmap(page, vma);
	if (write)
		SetPageDirty(page); /* fault_dirty_shared_page */
	trace_call(mm->vm, "set_pte_at", TF_FRAME("frame", page_to_pfn(mm->vm, page)), TF_TEXT("pte", pte_words(entry)));
	set_pte(vmf->pte, entry);
	mark_table_changed_from(mm->vm, vmf->pte, 0);
	spin_unlock(&mm->page_table_lock);
	vmf->new_pfn = page_to_pfn(mm->vm, page);
	return 0;
}

/*
 * wp_page_reuse - the faulting process is the page's only user: make the PTE writable (and
 * young and dirty) in place.  No copy, no TLB flush (a permission upgrade), rmap and counts
 * unchanged.  Called with the PTL held; releases it.
 */
static unsigned wp_page_reuse(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mm_struct *mm = vma->vm_mm;

	trace_step(vmf, "wp_page_reuse");
	TRACE_SCOPE(mm->vm, NULL, "wp_page_reuse", TF_FRAME("frame", pte_pfn(vmf->orig_pte)));
	pte_t entry = maybe_mkwrite(pte_mkdirty(pte_mkyoung(vmf->orig_pte)), vma);
	trace_call(mm->vm, "ptep_set_access_flags", TF_TEXT("pte", pte_words(entry)),
		   TF_TEXT("tlb", "no flush: a permission upgrade"));
	set_pte(vmf->pte, entry);
	spin_unlock(&mm->page_table_lock);
	count_vm_event(mm->vm, PGREUSE);
	vmf->new_pfn = vmf->old_pfn;
	return 0;
}

/*
 * wp_can_reuse_anon_folio - may a shared-looking anon page be reused?  Only when nothing else
 * holds a reference (commit 09854ba94c6a: reuse is decided by refcount, not mapcount).  The
 * swap cache's reference does not count against reuse: with at most that one besides ours, the
 * page is locked and taken out of the cache if no swap PTE names its slot any more
 * (folio_free_swap), and reused if the count is 1 then.  On yes, the page becomes this VMA's own
 * (page_move_anon_rmap).  Called with the PTL held.
 */
static bool wp_can_reuse_anon_folio(struct cowvm *vm, struct page *page, struct vm_area_struct *vma)
{
	/* early, lock-free checks: little hope of reuse */
	if (page_ref_count(page) > 3)
		return false;
	if (page_ref_count(page) > 1 + PageSwapCache(page))
		return false;
	if (!trylock_page(page))
		return false;
	if (PageSwapCache(page))
		folio_free_swap(vm, page);
	if (page_ref_count(page) != 1) {
		unlock_page(page);
		return false;
	}
	page_move_anon_rmap(page, vma);
	unlock_page(page);
	return true;
}

/*
 * wp_page_copy - break COW: give the process its own copy of the page (or a zeroed page in
 * place of the zero page) and switch the PTE to it.  The order matters (seed 000, figure 4-20):
 *   anon_vma_prepare, alloc, cow_user_page, re-check the PTE under the PTL,
 *   clear + flush the old PTE, page_add_new_anon_rmap(new), LRU add, set the PTE,
 *   and only then page_remove_rmap(old) and drop the old page's two references
 *   (the PTE's and the one do_wp_page took).
 * Called without the PTL, holding a reference on the old page (if not the zero page).
 */
static unsigned wp_page_copy(struct vm_fault *vmf, struct page *old_page)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mm_struct *mm = vma->vm_mm;
	struct cowvm *vm = mm->vm;
	struct page *new_page;
	bool unshare = vmf->flags & FAULT_FLAG_UNSHARE;

	trace_step(vmf, "wp_page_copy");
	TRACE_SCOPE(vm, NULL, "wp_page_copy", TF_FRAME("old", old_page ? page_to_pfn(vm, old_page) : zero_pfn(vm)));
	if (anon_vma_prepare(vma))
		goto oom;
	if (!old_page) {
		new_page = alloc_page_may_reclaim(vm, true);
		if (!new_page)
			goto oom;
		trace_call(vm, "alloc_zeroed_user_page", TF_FRAME("frame", page_to_pfn(vm, new_page)));
	} else {
		new_page = alloc_page_may_reclaim(vm, false);
		if (!new_page)
			goto oom;
		trace_call(vm, "alloc_page_vma", TF_FRAME("frame", page_to_pfn(vm, new_page)));
		trace_call(vm, "cow_user_page", TF_FRAME("from", page_to_pfn(vm, old_page)),
			   TF_FRAME("to", page_to_pfn(vm, new_page)), TF_NUM("bytes", PAGE_SIZE));
		memcpy(page_address(vm, new_page), page_address(vm, old_page), PAGE_SIZE);
	}
	if (mem_cgroup_charge(new_page, mm, 0)) {
		put_page(vm, new_page);
		goto oom;
	}
	trace_call(vm, "mem_cgroup_charge", TF_NUM("pages", 1));

	spin_lock(&mm->page_table_lock);
	if (ptep_get(vmf->pte) != vmf->orig_pte) { /* someone else changed it: our copy is moot */
		spin_unlock(&mm->page_table_lock);
		trace_note(vm, "raced", "the PTE changed while copying: the copy is dropped and the "
			   "access retried");
		put_page(vm, new_page);
		if (old_page)
			put_page(vm, old_page);
		return 0;
	}
	if (old_page && !PageAnon(old_page)) {
		add_mm_counter(mm, MM_SHMEMPAGES, -1);
		add_mm_counter(mm, MM_ANONPAGES, 1);
	} else if (!old_page) {
		add_mm_counter(mm, MM_ANONPAGES, 1);
	}
	pte_t entry = pte_mkyoung(pfn_pte(page_to_pfn(vm, new_page), vma->vm_page_prot));
	if (unshare) {
		if (pte_soft_dirty(vmf->orig_pte))
			entry = pte_mksoft_dirty(entry);
	} else {
		entry = maybe_mkwrite(pte_mkdirty(entry), vma);
	}
	ptep_clear_flush(vma, vmf->address, vmf->pte);
	page_add_new_anon_rmap(new_page, vma, vmf->address, true);
	lru_cache_add_active(vm, new_page);
	trace_call(vm, "set_pte_at", TF_FRAME("frame", page_to_pfn(vm, new_page)), TF_TEXT("pte", pte_words(entry)));
	set_pte(vmf->pte, entry);
	mark_table_changed_from(vm, vmf->pte, vmf->orig_pte);
	if (old_page) {
		page_remove_rmap(vm, old_page, vma);
		trace_call(vm, "page_remove_rmap", TF_FRAME("frame", page_to_pfn(vm, old_page)),
			   TF_NUM("mapcount", page_mapcount(old_page)),
			   TF_NUM("refcount", page_ref_count(old_page) - 2));
	} else {
		trace_note(vm, "zero page", "the zero page is outside rmap and refcounts: nothing to remove");
		mod_node_page_state(vm, NR_ZERO_MAPPED, -1);
	}
	spin_unlock(&mm->page_table_lock);

	count_vm_event(vm, old_page ? COW_COPY : ZERO_PAGE_COW);
	vmf->new_pfn = page_to_pfn(vm, new_page);
	if (old_page) {
		put_page(vm, old_page); /* the old PTE's reference */
		put_page(vm, old_page); /* do_wp_page's */
	}
	return 0;
oom:
	trace_note(vm, "OOM", "no free frame or anon_vma");
	if (old_page)
		put_page(vm, old_page);
	return VM_FAULT_OOM;
}

/*
 * do_wp_page - a write (or an unshare request) hit a read-only PTE of a present page.
 * Reuse the page if it is exclusively ours, else copy it.  Called with the PTL held;
 * releases it.
 */
static unsigned do_wp_page(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mm_struct *mm = vma->vm_mm;
	bool unshare = vmf->flags & FAULT_FLAG_UNSHARE;

	trace_step(vmf, "do_wp_page");
	TRACE_SCOPE(mm->vm, NULL, "do_wp_page", TF_TEXT("pte", pte_words(vmf->orig_pte)));
	struct page *page = vm_normal_page(vma, vmf->address, vmf->orig_pte);
	vmf->old_pfn = pte_pfn(vmf->orig_pte);
	/* What the decision looks at, before wp_can_reuse_anon_folio may change it. */
	int mapcount = page ? page_mapcount(page) : 0, refcount = page ? page_ref_count(page) : 0;
	bool exclusive = page && PageAnon(page) && PageAnonExclusive(page);
	if (tracing(mm->vm))
		trace_call(mm->vm, "vm_normal_page", TF_FRAME("frame", vmf->old_pfn),
			   TF_TEXT("page", !page ? "zero (special: no struct page to account)" :
				   PageAnon(page) ? "anon" : "shmem"));

	if (vma->vm_flags & VM_SHARED) { /* wp_page_shared: no COW in a shared mapping */
		if (unshare) {
			spin_unlock(&mm->page_table_lock);
			trace_decide(mm->vm, "nothing to unshare", "a shared mapping's page is the object's own");
			return 0;
		}
		trace_decide(mm->vm, "reuse", "a shared mapping has no COW: the PTE is made writable "
			     "in place (wp_page_shared)", TF_NUM("mapcount", mapcount));
		if (page)
			SetPageDirty(page); /* fault_dirty_shared_page */
		return wp_page_reuse(vmf);
	}
	if (page && PageAnon(page) &&
	    (PageAnonExclusive(page) || wp_can_reuse_anon_folio(mm->vm, page, vma))) {
		if (tracing(mm->vm)) {
			const char *why = exclusive ?
				"the page is anon-exclusive: no other process can map it, so it is written in place" :
				"not anon-exclusive, but refcount 1: no other PTE, pin or reference is left "
				"(wp_can_reuse_anon_folio), so it becomes this VMA's own";
			if (unshare)
				trace_decide(mm->vm, "already exclusive", "an unshare of an anon-exclusive page: "
					     "nothing to do, the PTE stays read-only", TF_BOOL("anon-exclusive", exclusive),
					     TF_NUM("mapcount", mapcount), TF_NUM("refcount", refcount),
					     TF_BOOL("swap-cache", PageSwapCache(page)));
			else
				trace_decide(mm->vm, "reuse", why, TF_BOOL("anon-exclusive", exclusive),
					     TF_NUM("mapcount", mapcount), TF_NUM("refcount", refcount),
					     TF_BOOL("swap-cache", PageSwapCache(page)));
		}
		if (!PageAnonExclusive(page))
			SetPageAnonExclusive(page);
		if (unshare) {
			spin_unlock(&mm->page_table_lock);
			vmf->new_pfn = vmf->old_pfn;
			return 0;
		}
		return wp_page_reuse(vmf);
	}
	if (tracing(mm->vm)) {
		if (!page)
			trace_decide(mm->vm, unshare ? "unshare" : "copy", "the zero page is never written: "
				     "wp_page_copy maps a zeroed page of the process's own in its place");
		else if (!PageAnon(page))
			trace_decide(mm->vm, unshare ? "unshare" : "copy", "a shared-memory page seen through a "
				     "private mapping: the process gets a private copy", TF_NUM("mapcount", mapcount));
		else
			trace_decide(mm->vm, unshare ? "unshare" : "copy", unshare ?
				     "a read-only pin (FOLL_PIN without write) of a page that may be shared: "
				     "the process gets its own copy, so the pin sees its later writes" :
				     refcount >= GUP_PIN_COUNTING_BIAS ?
				     "not anon-exclusive and pinned (refcount above the pin bias): copy it" :
				     "not anon-exclusive and refcount above 1: another PTE or reference shares it, copy it",
				     TF_BOOL("anon-exclusive", exclusive), TF_NUM("mapcount", mapcount),
				     TF_NUM("refcount", refcount), TF_BOOL("swap-cache", false));
	}
	if (page)
		get_page(page);
	spin_unlock(&mm->page_table_lock);
	return wp_page_copy(vmf, page);
}

/* ---- swap-in: do_swap_page ---------------------------------------------------------------- */

/*
 * should_try_to_free_swap - after mapping a swap-cache page, drop its swap cache now?  When
 * swap is more than half full, when the page is (to be) mlocked, or on a write fault when the
 * refcount says we are likely the only user (ours + the cache's): then the cache's reference
 * would only stand in the way of reusing the page.
 */
static bool should_try_to_free_swap(struct cowvm *vm, struct page *page, struct vm_area_struct *vma,
				    unsigned fault_flags)
{
	if (!PageSwapCache(page))
		return false;
	if (vm_swap_full(vm) || (vma->vm_flags & VM_LOCKED) || PageFlag(page, PG_mlocked))
		return true;
	return (fault_flags & FAULT_FLAG_WRITE) && page_ref_count(page) == 2;
}

/* pte_needs_soft_dirty_wp: while soft-dirty tracking is on (VM_SOFTDIRTY clear), a page whose
 * soft-dirty bit is clear is mapped read-only, so the next write marks it. */
static bool pte_needs_soft_dirty_wp(struct vm_area_struct *vma, pte_t pte)
{
	return !(vma->vm_mm->vm->flags & COWVM_CONFIG_NO_SOFT_DIRTY) &&
	       !(vma->vm_flags & VM_SOFTDIRTY) && !pte_soft_dirty(pte);
}

/*
 * do_swap_page - an access hit a swap PTE.  The page comes from the swap cache (a minor fault)
 * or is read from the device into it (a major fault: VM_FAULT_MAJOR, pgmajfault, pswpin).
 * Under the PTL, with the PTE unchanged: the PTE's slot count goes (swap_free), the swap cache
 * too when should_try_to_free_swap says so, and the page is mapped:
 *   - exclusive (the PTE's marker, or refcount 1: nobody else can hold it) -> PageAnonExclusive,
 *     and writable if the VMA is (even on a read fault, Linux 6.x; not while soft-dirty needs
 *     the write to fault); a write fault is then done;
 *   - otherwise read-only, and a write fault continues in do_wp_page (reuse or copy).
 * FAULT_FLAG_UNUSE (swapoff, swapin_range): no fault counted, mapped old and read-only as
 * unuse_pte does.  A failed read is VM_FAULT_SIGBUS (the slot keeps the data); no frame is
 * VM_FAULT_OOM.  Called with mmap_lock held for reading, no PTL.
 */
static unsigned do_swap_page(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mm_struct *mm = vma->vm_mm;
	struct cowvm *vm = mm->vm;
	swp_entry_t entry = pte_to_swp_entry(vmf->orig_pte);
	bool unuse = vmf->flags & FAULT_FLAG_UNUSE;
	unsigned ret = 0;

	trace_step(vmf, "do_swap_page");
	if (unlikely(!vm->swap || swp_type(entry) != 0 || swp_offset(entry) == 0 ||
		     swp_offset(entry) >= vm->swap->max))
		return VM_FAULT_SIGBUS; /* print_bad_pte: a swap entry of no device */
	if (anon_vma_prepare(vma))
		return VM_FAULT_OOM;
	bool major;
	int err;
	struct page *page = swapin_locked(vm, mm, entry, &major, &err);
	if (!page) {
		if (err == -ENOENT) /* the slot was freed: the PTE changed, let the access retry */
			return 0;
		return err == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	}
	if (major) {
		trace_step(vmf, "swap_read_folio");
		ret = VM_FAULT_MAJOR;
		if (!unuse) {
			count_vm_event(vm, PGMAJFAULT);
			count_memcg_event_mm(mm, PGMAJFAULT);
		}
	} else {
		trace_step(vmf, "swap_cache_get_folio");
	}

	spin_lock(&mm->page_table_lock);
	if (unlikely(ptep_get(vmf->pte) != vmf->orig_pte)) { /* out_nomap */
		spin_unlock(&mm->page_table_lock);
		unlock_page(page);
		put_page(vm, page);
		return ret;
	}
	bool exclusive = pte_swp_exclusive(vmf->orig_pte);
	swap_free(vm, entry);
	if (should_try_to_free_swap(vm, page, vma, vmf->flags))
		folio_free_swap(vm, page);
	add_mm_counter(mm, MM_ANONPAGES, 1);
	add_mm_counter(mm, MM_SWAPENTS, -1);
	pte_t pte = pfn_pte(page_to_pfn(vm, page), vma->vm_page_prot);
	if (pte_swp_soft_dirty(vmf->orig_pte))
		pte = pte_mksoft_dirty(pte);
	if (exclusive || page_ref_count(page) == 1) {
		if ((vma->vm_flags & VM_WRITE) && !unuse && !pte_needs_soft_dirty_wp(vma, pte)) {
			pte = pte_mkwrite(pte);
			if (vmf->flags & FAULT_FLAG_WRITE) {
				pte = pte_mkdirty(pte);
				vmf->flags &= ~FAULT_FLAG_WRITE;
			}
		}
		exclusive = true;
	}
	if (unuse)
		pte = pte_mkold(pte);
	/* the swap-in's reference becomes the mapping's */
	folio_add_anon_rmap_pte(page, vma, vmf->address, exclusive);
	set_pte(vmf->pte, pte);
	mark_table_changed(vm, vmf->pte);
	unlock_page(page);
	vmf->orig_pte = pte;
	vmf->old_pfn = 0;
	vmf->new_pfn = page_to_pfn(vm, page);
	if (vmf->flags & FAULT_FLAG_WRITE)
		return ret | do_wp_page(vmf); /* releases the PTL */
	spin_unlock(&mm->page_table_lock);
	return ret;
}

struct swapin_walk {
	uint64_t *addrs;
	size_t n, cap;
	bool nomem;
};

static int collect_swap_pte(pte_t *pte, uint64_t addr, void *arg)
{
	struct swapin_walk *w = arg;
	if (!is_swap_pte(ptep_get(pte)))
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		uint64_t *bigger = realloc(w->addrs, cap * sizeof(*bigger));
		if (!bigger) {
			w->nomem = true;
			return 1;
		}
		w->addrs = bigger;
		w->cap = cap;
	}
	w->addrs[w->n++] = addr;
	return 0;
}

int swapin_range(struct mm_struct *mm, uint64_t start, uint64_t end)
{
	struct swapin_walk w = { 0 };
	int err = 0;
	walk_page_range(mm, start, end, collect_swap_pte, &w);
	if (w.nomem)
		err = -ENOMEM;
	for (size_t i = 0; i < w.n && !err; i++) {
		uint64_t addr = w.addrs[i];
		struct vm_area_struct *vma = find_vma(mm, addr);
		pte_t *ptep = pte_offset_map(mm, addr);
		if (!vma || vma->vm_start > addr || !ptep)
			continue;
		for (int tries = 0; tries < 8; tries++) {
			pte_t entry = ptep_get(ptep);
			if (!is_swap_pte(entry))
				break;
			struct vm_fault vmf = {
				.vma = vma, .address = addr, .real_address = addr, .flags = FAULT_FLAG_UNUSE,
				.pgoff = linear_page_index(vma, addr), .pte = ptep, .orig_pte = entry,
			};
			unsigned ret = do_swap_page(&vmf);
			if (ret & VM_FAULT_OOM)
				err = -ENOMEM;
			else if (ret & VM_FAULT_ERROR)
				err = -EIO;
			if (err)
				break;
		}
	}
	free(w.addrs);
	return err;
}

static unsigned handle_pte_fault(struct vm_fault *vmf)
{
	struct mm_struct *mm = vmf->vma->vm_mm;

	trace_step(vmf, "handle_pte_fault");
	TRACE_SCOPE(mm->vm, NULL, "handle_pte_fault");
	pte_t entry = ptep_get(vmf->pte);
	if (tracing(mm->vm))
		trace_note(mm->vm, pte_none(entry) ? "pte none" : is_swap_pte(entry) ? "swap pte" : "pte present",
			   pte_none(entry) ? "no entry yet: the first touch of this page" :
			   is_swap_pte(entry) ? "the page is in swap: do_swap_page brings it back" :
			   !(vmf->flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) || pte_write(entry) ?
			   "the entry allows the access: only the accessed (and dirty) bits are set" :
			   "a write to a read-only entry: do_wp_page",
			   TF_HEX("pte", entry), TF_TEXT("bits", pte_words(entry)),
			   TF_FRAME("frame", pte_none(entry) || is_swap_pte(entry) ? NO_FRAME : pte_pfn(entry)));
	if (pte_none(entry)) {
		if (vma_is_anonymous_private(vmf->vma))
			return do_anonymous_page(vmf);
		return do_fault(vmf);
	}
	if (is_swap_pte(entry)) {
		vmf->orig_pte = entry;
		return do_swap_page(vmf);
	}

	spin_lock(&mm->page_table_lock);
	if (unlikely(ptep_get(vmf->pte) != entry)) { /* changed under us: let the access retry */
		spin_unlock(&mm->page_table_lock);
		return 0;
	}
	vmf->orig_pte = entry;
	if (vmf->flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) {
		if (!pte_write(entry))
			return do_wp_page(vmf);
		if (vmf->flags & FAULT_FLAG_WRITE)
			entry = pte_mkdirty(entry);
	}
	entry = pte_mkyoung(entry);
	if (entry != vmf->orig_pte)
		set_pte(vmf->pte, entry);
	spin_unlock(&mm->page_table_lock);
	vmf->old_pfn = vmf->new_pfn = pte_pfn(entry);
	return 0;
}

static unsigned __handle_mm_fault(struct vm_fault *vmf)
{
	trace_step(vmf, "__handle_mm_fault");
	TRACE_SCOPE(vmf->vma->vm_mm->vm, NULL, "__handle_mm_fault");
	vmf->pte = pte_alloc_map(vmf->vma->vm_mm, vmf->address);
	if (!vmf->pte)
		return VM_FAULT_OOM;
	return handle_pte_fault(vmf);
}

/*
 * mm_account_fault: every completed fault is a pgfault; a successful one is the faulting
 * task's.  A fault taken on behalf of another process (FAULT_FLAG_REMOTE: ptrace,
 * /proc/pid/mem) counts in Linux for the process doing the access (current), never for the
 * target; in cowvm that accessor is outside the machine, so no task counts it.
 */
static void mm_account_fault(struct task_struct *task, unsigned flags, unsigned ret)
{
	if (ret & VM_FAULT_RETRY)
		return;
	count_vm_event(task->vm, PGFAULT);
	count_memcg_event_mm(task->mm, PGFAULT);
	if (ret & VM_FAULT_ERROR)
		return;
	if (flags & FAULT_FLAG_REMOTE)
		return;
	/* Only the thread running the task counts its faults: a plain add, no lock prefix. */
	_Atomic uint64_t *c = (ret & VM_FAULT_MAJOR) ? &task->maj_flt : &task->min_flt;
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

/*
 * handle_mm_fault - resolve a fault at address in vma for task, as the kernel's trap handler
 * or GUP asks.  flags: FAULT_FLAG_*.  Called with the mm's mmap_lock held for reading.
 * Returns 0 or VM_FAULT_* (OOM, SIGBUS, SIGSEGV); on failure nothing is changed except page
 * tables that were allocated on the way, as in Linux.
 */
unsigned handle_mm_fault(struct vm_area_struct *vma, uint64_t address, unsigned flags,
			 struct task_struct *task)
{
	struct vm_fault vmf = {
		.vma = vma,
		.task = task,
		.address = address & PAGE_MASK,
		.real_address = address,
		.flags = flags,
		.pgoff = linear_page_index(vma, address & PAGE_MASK),
	};
	unsigned ret;

	trace_step(&vmf, "handle_mm_fault");
	TRACE_SCOPE(vma->vm_mm->vm, task, "handle_mm_fault", TF_HEX("address", address),
		    TF_TEXT("access", (flags & FAULT_FLAG_UNSHARE) ? "unshare" : (flags & FAULT_FLAG_WRITE) ? "write" : "read"),
		    TF_BOOL("user", flags & FAULT_FLAG_USER), TF_BOOL("remote", flags & FAULT_FLAG_REMOTE),
		    TF_HEX("vma", vma->vm_start));
	/* sanitize_fault_flags */
	if (flags & FAULT_FLAG_UNSHARE) {
		if (unlikely(flags & FAULT_FLAG_WRITE))
			bug("UNSHARE together with WRITE");
		if (!is_cow_mapping(vma->vm_flags))
			vmf.flags &= ~FAULT_FLAG_UNSHARE;
	}
	if (mm_oom_reaped(vma->vm_mm)) {
		ret = VM_FAULT_SIGBUS; /* check_stable_address_space */
	} else if ((flags & FAULT_FLAG_WRITE) && !(vma->vm_flags & VM_MAYWRITE)) {
		trace_decide(vma->vm_mm->vm, "SIGSEGV", "a write to a VMA that may never be writable");
		ret = VM_FAULT_SIGSEGV;
	} else if ((flags & FAULT_FLAG_WRITE) && !(vma->vm_flags & VM_WRITE) &&
		   !is_cow_mapping(vma->vm_flags)) {
		trace_decide(vma->vm_mm->vm, "SIGSEGV", "a forced write is legal only in a COW mapping");
		ret = VM_FAULT_SIGSEGV; /* a forced write is legal only in a COW mapping */
	} else {
		ret = __handle_mm_fault(&vmf);
	}
	mm_account_fault(task, flags, ret);
	if (vma->vm_mm->vm->tracer) {
		vmf.flags |= flags & FAULT_FLAG_WRITE; /* do_swap_page clears it when its mapping did the write */
		trace_fault(&vmf, ret, flags & FAULT_FLAG_USER);
	}
	return ret;
}

/* ---- fork: copy_page_range ----------------------------------------------------------------- */

/*
 * A page that may be pinned for DMA cannot be shared COW (the pin would silently stop seeing
 * the process's writes): give the child its own copy now (copy_present_page).
 * Caller holds both PTLs; returns 0 or -ENOMEM.
 */
static int copy_present_page(struct vm_area_struct *dst_vma, pte_t *dst_pte, uint64_t addr,
			     struct page *page, struct mm_struct *src_mm)
{
	struct cowvm *vm = dst_vma->vm_mm->vm;
	TRACE_SCOPE(vm, NULL, "copy_present_page", TF_FRAME("frame", page_to_pfn(vm, page)), TF_HEX("address", addr),
		    TF_NUM("refcount", page_ref_count(page)));
	trace_decide(vm, "copy at fork", "the page is anon-exclusive and may be pinned (refcount at or above "
		     "the pin bias in an mm that has pinned): sharing it would hide the child's and parent's "
		     "later writes from the pin, so the child gets its own copy now");
	struct page *new_page = alloc_page(vm);
	if (!new_page)
		return -ENOMEM;
	trace_call(vm, "alloc_page_vma", TF_FRAME("frame", page_to_pfn(vm, new_page)));
	/* page_copy_prealloc charges the source mm; here under both PTLs, so without waiting */
	if (mem_cgroup_charge(new_page, src_mm, MEMCG_CHARGE_NOWAIT)) {
		put_page(vm, new_page);
		return -ENOMEM;
	}
	memcpy(page_address(vm, new_page), page_address(vm, page), PAGE_SIZE);
	page_add_new_anon_rmap(new_page, dst_vma, addr, true);
	lru_cache_add_active(vm, new_page);
	add_mm_counter(dst_vma->vm_mm, MM_ANONPAGES, 1);
	pte_t entry = maybe_mkwrite(pte_mkdirty(pfn_pte(page_to_pfn(vm, new_page),
							dst_vma->vm_page_prot)), dst_vma);
	set_pte(dst_pte, entry);
	mark_table_changed_from(vm, dst_pte, 0);
	return 0;
}

/*
 * Copy the PTEs of [addr, end) of src_vma, which lie in one PTE table on each side
 * (copy_pte_range); dst_addr is where addr lands in dst_vma.  Caller holds both PTLs.
 */
/* What copy_page_range did, for the trace. */
struct copy_counts {
	uint64_t ptes, write_protected, made_shared, pinned_copied, zero, shmem;
};

static int copy_pte_range(struct vm_area_struct *dst_vma, struct vm_area_struct *src_vma,
			  pte_t *dst_pte, pte_t *src_pte, uint64_t addr, uint64_t end, uint64_t dst_addr,
			  struct copy_counts *n)
{
	struct mm_struct *src_mm = src_vma->vm_mm, *dst_mm = dst_vma->vm_mm;
	struct cowvm *vm = src_mm->vm;
	bool cow = is_cow_mapping(src_vma->vm_flags);

	for (; addr < end; addr += PAGE_SIZE, dst_addr += PAGE_SIZE, src_pte++, dst_pte++) {
		pte_t pte = ptep_get(src_pte);
		if (pte_none(pte))
			continue;
		if (unlikely(!pte_none(ptep_get(dst_pte))))
			bug("copy_pte_range over a present destination PTE");
		if (is_swap_pte(pte)) { /* copy_nonpresent_pte */
			if (swap_duplicate(vm, pte_to_swp_entry(pte)))
				return -ENOMEM; /* SWAP_MAP_MAX: no count continuation in cowvm */
			if (pte_swp_exclusive(pte)) { /* the entry is shared from now on */
				pte = pte_swp_clear_exclusive(pte);
				set_pte(src_pte, pte);
				mark_table_changed(vm, src_pte);
			}
			add_mm_counter(dst_mm, MM_SWAPENTS, 1);
			set_pte(dst_pte, pte);
			mark_table_changed(vm, dst_pte);
			continue;
		}
		struct page *page = vm_normal_page(src_vma, addr, pte);
		if (page && PageAnon(page)) {
			if (PageAnonExclusive(page) &&
			    (atomic_load(&src_mm->flags) & MMF_HAS_PINNED) &&
			    page_ref_count(page) >= GUP_PIN_COUNTING_BIAS) {
				if (copy_present_page(dst_vma, dst_pte, dst_addr, page, src_mm))
					return -ENOMEM;
				n->pinned_copied++;
				continue;
			}
			get_page(page);
			n->made_shared += PageAnonExclusive(page);
			ClearPageAnonExclusive(page);
			page_dup_rmap(page, dst_vma);
			add_mm_counter(dst_mm, MM_ANONPAGES, 1);
		} else if (page) {
			get_page(page);
			page_dup_rmap(page, dst_vma);
			add_mm_counter(dst_mm, MM_SHMEMPAGES, 1);
			n->shmem++;
		} else {
			mod_node_page_state(vm, NR_ZERO_MAPPED, 1);
			n->zero++;
		}
		n->ptes++;
		if (cow && pte_write(pte)) { /* write-protect both sides */
			n->write_protected++;
			ptep_set_wrprotect(src_pte);
			pte = pte_wrprotect(ptep_get(src_pte));
		}
		if (src_vma->vm_flags & VM_SHARED)
			pte = pte_mkclean(pte);
		set_pte(dst_pte, pte_mkold(pte));
		mark_table_changed_from(vm, dst_pte, 0);
	}
	return 0;
}

static uint64_t next_table_boundary(uint64_t addr, uint64_t end)
{
	uint64_t next = (addr + PMD_SIZE) & ~(PMD_SIZE - 1);
	return (next > end || next == 0) ? end : next;
}

/*
 * copy_page_range - share the source VMA's pages with the destination VMA copy-on-write, as
 * fork does: fork copies a VMA to the same addresses in the child; dput's COPY to the same
 * page offsets at other addresses (the destination VMA has the source's size and vm_pgoff,
 * so every page keeps its index for rmap).  Only VMAs with an anon_vma are copied
 * (vma_needs_copy): others fault in lazily.  Caller holds both mmap_locks for writing and
 * flushes the source's TLB afterwards.  Returns 0 or -ENOMEM (the partial copy is the
 * caller's to tear down).
 */
int copy_page_range(struct vm_area_struct *dst_vma, struct vm_area_struct *src_vma)
{
	struct mm_struct *src_mm = src_vma->vm_mm, *dst_mm = dst_vma->vm_mm;
	uint64_t delta = dst_vma->vm_start - src_vma->vm_start; /* modulo 2^64 */
	struct copy_counts n = { 0 };
	struct cowvm *vm = src_mm->vm;

	if (!src_vma->anon_vma) {
		trace_note(vm, "skipped", "no anon_vma: the VMA has no anonymous pages, the child faults them in "
			   "(vma_needs_copy)", TF_HEX("vma", src_vma->vm_start));
		return 0;
	}
	TRACE_SCOPE(vm, NULL, "copy_page_range", TF_HEX("vma", src_vma->vm_start), TF_HEX("end", src_vma->vm_end),
		    TF_BOOL("cow", is_cow_mapping(src_vma->vm_flags)));
	for (uint64_t addr = src_vma->vm_start; addr < src_vma->vm_end;) {
		/* One step stays inside one PTE table on both sides. */
		uint64_t next = next_table_boundary(addr, src_vma->vm_end);
		uint64_t dst_next = next_table_boundary(addr + delta, src_vma->vm_end + delta) - delta;
		if (dst_next < next)
			next = dst_next;
		pte_t *src_pte = pte_offset_map(src_mm, addr);
		if (!src_pte) {
			addr = next;
			continue;
		}
		pte_t *dst_pte = pte_alloc_map(dst_mm, addr + delta);
		if (!dst_pte)
			return -ENOMEM;
		bool same = src_mm == dst_mm;
		spin_lock(&dst_mm->page_table_lock);
		if (!same)
			spin_lock(&src_mm->page_table_lock);
		int err = copy_pte_range(dst_vma, src_vma, dst_pte, src_pte, addr, next, addr + delta, &n);
		if (!same)
			spin_unlock(&src_mm->page_table_lock);
		spin_unlock(&dst_mm->page_table_lock);
		if (err) {
			trace_note(vm, "OOM", "no frame for a page table or a pinned page's copy");
			return err;
		}
		addr = next;
	}
	trace_note(vm, "copied", "PTEs are copied, not pages: both sides map the same frames, a private "
		   "mapping's write-protected so that the first write on either side is a COW fault",
		   TF_NUM("ptes shared", n.ptes), TF_NUM("write-protected", n.write_protected),
		   TF_NUM("made non-exclusive", n.made_shared), TF_NUM("pinned pages copied", n.pinned_copied),
		   TF_NUM("zero page", n.zero), TF_NUM("shmem", n.shmem));
	return 0;
}

/* ---- unmapping: zap and free tables ---------------------------------------------------------- */

void tlb_gather_mmu(struct mmu_gather *tlb, struct mm_struct *mm)
{
	tlb->mm = mm;
	tlb->start = UINT64_MAX;
	tlb->end = 0;
	tlb->need_flush = false;
	tlb->nr = 0;
}

void tlb_flush_range(struct mmu_gather *tlb, uint64_t start, uint64_t end)
{
	if (start < tlb->start)
		tlb->start = start;
	if (end > tlb->end)
		tlb->end = end;
	tlb->need_flush = true;
}

/* Flush the TLBs, then free what was gathered: nothing may still translate to it. */
static void tlb_flush_mmu(struct mmu_gather *tlb)
{
	if (tlb->need_flush) {
		flush_tlb_mm_range(tlb->mm, tlb->start, tlb->end);
		tlb->need_flush = false;
		tlb->start = UINT64_MAX;
		tlb->end = 0;
	}
	for (int i = 0; i < tlb->nr; i++) {
		struct page *page = tlb->pages[i];
		if (PageFlag(page, PG_pgtable)) {
			pte_free(tlb->mm, page);
		} else {
			free_swap_cache(tlb->mm->vm, page); /* free_pages_and_swap_cache */
			put_page(tlb->mm->vm, page);
		}
	}
	tlb->nr = 0;
}

void tlb_remove_page(struct mmu_gather *tlb, struct page *page, uint64_t addr)
{
	tlb_flush_range(tlb, addr, addr + PAGE_SIZE);
	tlb->pages[tlb->nr++] = page;
	if (tlb->nr == GATHER_BATCH)
		tlb_flush_mmu(tlb);
}

void tlb_finish_mmu(struct mmu_gather *tlb)
{
	struct cowvm *vm = tlb->mm->vm;
	uint64_t free_before = tracing(vm) ? nr_free_pages(vm) : 0;
	bool flush = tlb->need_flush;
	tlb_flush_mmu(tlb);
	trace_call(vm, "tlb_finish_mmu", TF_BOOL("tlb flushed", flush),
		   TF_NUM("frames freed", tracing(vm) ? nr_free_pages(vm) - free_before : 0));
}

struct zap_details {
	struct mmu_gather *tlb;
	struct vm_area_struct *vma;
	long rss_anon, rss_shmem, rss_swap;
	uint64_t ptes, zero, last_mapping; /* for the trace */
};

/* Clear one PTE (zap_pte_range's body).  Caller (walk_page_range) holds the PTL. */
static int zap_pte(pte_t *pte, uint64_t addr, void *arg)
{
	struct zap_details *z = arg;
	struct mm_struct *mm = z->vma->vm_mm;
	if (pte_none(ptep_get(pte)))
		return 0;
	pte_t ptent = ptep_get_and_clear(pte);
	mark_table_changed_from(mm->vm, pte, ptent);
	if (is_swap_pte(ptent)) { /* zap_nonpresent_ptes */
		z->rss_swap--;
		free_swap_and_cache(mm->vm, pte_to_swp_entry(ptent));
		return 0;
	}
	tlb_flush_range(z->tlb, addr, addr + PAGE_SIZE);
	z->ptes++;
	struct page *page = vm_normal_page(z->vma, addr, ptent);
	if (!page) {
		mod_node_page_state(mm->vm, NR_ZERO_MAPPED, -1);
		z->zero++;
		return 0;
	}
	if (PageAnon(page)) {
		z->rss_anon--;
	} else {
		z->rss_shmem--;
		if (pte_dirty(ptent))
			SetPageDirty(page);
	}
	page_remove_rmap(mm->vm, page, z->vma);
	z->last_mapping += page_mapcount(page) == 0;
	/* The gather may flush and free while we hold the PTL: lower in the lock order. */
	tlb_remove_page(z->tlb, page, addr);
	return 0;
}

/*
 * unmap_page_range - remove every mapping of [start, end) within vma; the pages are freed by
 * the gather after the TLB flush.  Caller holds mmap_lock (write, or read for MADV_DONTNEED).
 */
void unmap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma, uint64_t start, uint64_t end)
{
	struct zap_details z = { .tlb = tlb, .vma = vma };
	struct cowvm *vm = vma->vm_mm->vm;
	TRACE_SCOPE(vm, NULL, "unmap_page_range", TF_HEX("start", start), TF_HEX("end", end));
	walk_page_range(vma->vm_mm, start, end, zap_pte, &z);
	trace_call(vm, "zap_pte_range", TF_NUM("ptes cleared", z.ptes), TF_NUM("anon", -z.rss_anon),
		   TF_NUM("shmem", -z.rss_shmem), TF_NUM("zero page", z.zero),
		   TF_NUM("last mapping gone", z.last_mapping));
	add_mm_counter(vma->vm_mm, MM_ANONPAGES, z.rss_anon);
	add_mm_counter(vma->vm_mm, MM_SHMEMPAGES, z.rss_shmem);
	add_mm_counter(vma->vm_mm, MM_SWAPENTS, z.rss_swap);
}

static bool table_empty(const pte_t *table)
{
	for (int i = 0; i < PTRS_PER_TABLE; i++)
		if (table[i])
			return false;
	return true;
}

/*
 * Free the tables below one entry of level `level` (4 = PGD entry .. 2 = PMD entry) whose whole
 * span lies within [floor, ceiling) and that hold nothing; returns true if the entry was
 * cleared.  Caller holds mmap_lock for writing and the PTL.
 */
static bool free_table_below(struct mmu_gather *tlb, pte_t *entry, int level, uint64_t base,
			     uint64_t addr, uint64_t end, uint64_t floor, uint64_t ceiling)
{
	static const int shift[5] = { 0, PAGE_SHIFT, PMD_SHIFT, PUD_SHIFT, PGDIR_SHIFT };
	struct mm_struct *mm = tlb->mm;
	pte_t e = ptep_get(entry);
	if (!e)
		return true;
	pte_t *table = table_of(mm->vm, pte_pfn(e));
	uint64_t span = 1ull << shift[level];
	if (level > 2) { /* visit the child entries that intersect [addr, end) */
		uint64_t child_span = 1ull << shift[level - 1];
		for (int i = 0; i < PTRS_PER_TABLE; i++) {
			uint64_t cbase = base + (uint64_t)i * child_span;
			if (cbase + child_span <= addr || cbase >= end)
				continue;
			free_table_below(tlb, &table[i], level - 1, cbase, addr, end, floor, ceiling);
		}
	}
	if (base < floor || base + span > ceiling || !table_empty(table))
		return false;
	ptep_get_and_clear(entry);
	tlb_flush_range(tlb, base, base + span);
	tlb->pages[tlb->nr++] = pfn_to_page(mm->vm, pte_pfn(e));
	if (tlb->nr == GATHER_BATCH)
		tlb_flush_mmu(tlb);
	return true;
}

/*
 * free_pgtables - after [start, end) was unmapped, free the page-table pages that only served
 * the hole [floor, ceiling) it lies in (the gap between the neighbouring VMAs).
 */
void free_pgtables(struct mmu_gather *tlb, struct mm_struct *mm, uint64_t start, uint64_t end,
		   uint64_t floor, uint64_t ceiling)
{
	pte_t *pgd = table_of(mm->vm, mm->pgd);
	spin_lock(&mm->page_table_lock);
	for (uint64_t addr = start & ~(PGDIR_SIZE - 1); addr < end; addr += PGDIR_SIZE)
		free_table_below(tlb, &pgd[pgd_index(addr)], 4, addr, start, end, floor, ceiling);
	spin_unlock(&mm->page_table_lock);
}

void free_pgd(struct mm_struct *mm)
{
	struct page *pgd = pfn_to_page(mm->vm, mm->pgd);
	if (!table_empty(table_of(mm->vm, mm->pgd)))
		bug("freeing a PGD that still points at tables");
	pte_free(mm, pgd);
}
