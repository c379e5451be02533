/*
 * vmscan.c - page reclaim, as Linux's mm/vmscan.c (the classic two-list LRU; MGLRU is not
 * modelled):
 *
 *   try_to_free_pages / cowvm_reclaim          reclaim_pages (MADV_PAGEOUT)
 *     shrink_active_list: active -> inactive        |
 *     shrink_inactive_list: take from the tail      |
 *       shrink_folio_list  <------------------------+
 *         folio_check_references (folio_referenced: test and clear the PTEs' accessed bits)
 *         add_to_swap          a slot, the swap cache (dirty)
 *         try_to_unmap         every PTE -> swap PTE (exclusive marker), TLB flushed, RSS
 *         pageout              swap_writepage; the page stays in the swap cache, clean, at the
 *                              tail of the inactive list (Linux's asynchronous write does so)
 *         __remove_mapping     a clean, unmapped swap-cache page that nobody else holds: freed
 *
 * Pages are never taken off their list while reclaim works on them (Linux isolates them): a
 * page is held by a reference and its page lock instead, so the LRU invariants of the checker
 * hold at every moment.  Never reclaimed: mlocked pages (not on these lists), pages that may be
 * pinned (folio_maybe_dma_pinned), shmem pages (swapping shared memory is not modelled), pages
 * a dput SNAP image maps (cowvm's own; its MERGE compares frames).
 *
 * Locks: page lock (trylock) -> anon_vma root lock (read, rmap_walk) -> the mapping mm's
 * mmap_lock (read, trylock: a VMA's bounds and tables stay put) -> PTL -> si->lock.
 */
#include <sched.h>
#include "swap.h"

#define SWAP_CLUSTER_MAX 32
#define GUP_PIN_COUNTING_BIAS 1024

/* folio_maybe_dma_pinned */
static bool page_maybe_dma_pinned(const struct page *page)
{
	return page_ref_count(page) >= GUP_PIN_COUNTING_BIAS;
}

/* The PTE at addr of vma if it maps page (page_vma_mapped_walk), with mmap_lock (trylock) and
 * the PTL taken; NULL otherwise.  *locked_mm says which mmap_lock to release. */
static pte_t *page_vma_mapped(struct page *page, struct vm_area_struct *vma, uint64_t addr,
			      bool *mm_locked)
{
	struct mm_struct *mm = vma->vm_mm;
	*mm_locked = false;
	if (!down_read_trylock(&mm->mmap_lock))
		return NULL;
	*mm_locked = true;
	pte_t *ptep = pte_offset_map(mm, addr);
	if (!ptep)
		return NULL;
	spin_lock(&mm->page_table_lock);
	pte_t pte = ptep_get(ptep);
	if (!pte_present(pte) || pte_pfn(pte) != page_to_pfn(mm->vm, page)) {
		spin_unlock(&mm->page_table_lock);
		return NULL;
	}
	return ptep;
}

/* ---- folio_referenced ------------------------------------------------------------------------ */

struct referenced_arg {
	int referenced;
	bool busy;              /* an mm could not be looked at: count the page as referenced */
};

static int folio_referenced_one(struct page *page, struct vm_area_struct *vma, uint64_t addr, void *varg)
{
	struct referenced_arg *ra = varg;
	struct mm_struct *mm = vma->vm_mm;
	bool mm_locked;
	pte_t *ptep = page_vma_mapped(page, vma, addr, &mm_locked);
	if (ptep) {
		/* ptep_clear_flush_young: the MMU sets the bit on a TLB fill, so clearing it must
		 * flush the entry or later accesses would not set it again */
		if (ptep_test_and_clear_young(ptep)) {
			ra->referenced++;
			flush_tlb_mm_range(mm, addr, addr + PAGE_SIZE);
		}
		spin_unlock(&mm->page_table_lock);
	} else if (!mm_locked) {
		ra->busy = true;
	}
	if (mm_locked)
		up_read(&mm->mmap_lock);
	return 0;
}

/* folio_referenced: how many PTEs mapping the page were young (their bits are cleared now). */
static int folio_referenced(struct cowvm *vm, struct page *page)
{
	struct referenced_arg ra = { 0 };
	rmap_walk(vm, page, folio_referenced_one, &ra);
	return ra.referenced + ra.busy;
}

/* ---- try_to_unmap ---------------------------------------------------------------------------- */

/*
 * try_to_unmap_one - replace the PTE at addr by the page's swap entry: the exclusive marker
 * only if the page was PageAnonExclusive (which it stops being: folio_try_share_anon_rmap_pte,
 * refused for a page that may be pinned), soft-dirty carried over, the TLB flushed, the dirty
 * bit moved to the page, MM_ANONPAGES -> MM_SWAPENTS, the mapping's reference dropped.
 * Returns non-0 to stop the walk (the page must stay).
 */
static int try_to_unmap_one(struct page *page, struct vm_area_struct *vma, uint64_t addr, void *varg)
{
	int *failed = varg;
	struct mm_struct *mm = vma->vm_mm;
	struct cowvm *vm = mm->vm;
	if (mm->is_snapshot || (vma->vm_flags & VM_LOCKED))
		return *failed = 1;
	bool mm_locked;
	pte_t *ptep = page_vma_mapped(page, vma, addr, &mm_locked);
	if (!ptep) {
		if (mm_locked)
			up_read(&mm->mmap_lock);
		else
			*failed = 1; /* could not look: the page may be mapped there */
		return *failed;
	}
	bool anon_exclusive = PageAnonExclusive(page);
	if (anon_exclusive && page_maybe_dma_pinned(page)) {
		spin_unlock(&mm->page_table_lock);
		up_read(&mm->mmap_lock);
		return *failed = 1;
	}
	swp_entry_t entry = page_swap_entry(page);
	if (swap_duplicate(vm, entry)) {
		spin_unlock(&mm->page_table_lock);
		up_read(&mm->mmap_lock);
		return *failed = 1;
	}
	update_hiwater_rss(mm);
	pte_t pteval = ptep_get_and_clear(ptep);
	flush_tlb_mm_range(mm, addr, addr + PAGE_SIZE);
	if (pte_dirty(pteval))
		SetPageDirty(page);
	pte_t swp_pte = swp_entry_to_pte(entry);
	if (anon_exclusive) {
		ClearPageAnonExclusive(page);
		swp_pte = pte_swp_mkexclusive(swp_pte);
	}
	if (pte_soft_dirty(pteval))
		swp_pte = pte_swp_mksoft_dirty(swp_pte);
	set_pte(ptep, swp_pte);
	mark_table_changed(vm, ptep);
	add_mm_counter(mm, MM_ANONPAGES, -1);
	add_mm_counter(mm, MM_SWAPENTS, 1);
	page_remove_rmap(vm, page, vma);
	spin_unlock(&mm->page_table_lock);
	up_read(&mm->mmap_lock);
	put_page(vm, page); /* the PTE's; the reclaimer holds another */
	return 0;
}

/* try_to_unmap: every mapping of the page becomes a swap PTE.  True when none is left. */
static bool try_to_unmap(struct cowvm *vm, struct page *page)
{
	int failed = 0;
	rmap_walk(vm, page, try_to_unmap_one, &failed);
	return page_mapcount(page) == 0;
}

/* ---- shrink_folio_list ----------------------------------------------------------------------- */

/*
 * __remove_mapping - free a clean, unmapped swap-cache page if only the cache and the reclaimer
 * hold it (folio_ref_freeze(2): references are taken from the cache only under si->lock, so the
 * count cannot grow behind the check).  Page locked.
 */
static bool __remove_mapping(struct cowvm *vm, struct page *page)
{
	struct swap_info_struct *si = vm->swap;
	swp_entry_t entry = page_swap_entry(page);
	spin_lock(&si->lock);
	if (page_ref_count(page) != 2 || page_mapcount(page) != 0 || PageDirty(page)) {
		spin_unlock(&si->lock);
		return false;
	}
	__delete_from_swap_cache_locked(si, page);
	spin_unlock(&si->lock);
	mod_node_page_state(vm, NR_SWAPCACHE, -1);
	put_swap_folio(vm, entry);
	put_page(vm, page); /* the cache's; the caller's goes last and frees it */
	return true;
}

enum folio_references { FOLIOREF_RECLAIM, FOLIOREF_KEEP, FOLIOREF_ACTIVATE };

/* folio_check_references for anonymous pages: every mapped page starts with a young PTE from
 * its fault, so one young PTE only marks it referenced; a second look (or two PTEs) activates. */
static enum folio_references folio_check_references(struct cowvm *vm, struct page *page)
{
	int referenced_ptes = folio_referenced(vm, page);
	bool referenced_page = PageFlag(page, PG_referenced);
	ClearPageFlag(page, PG_referenced);
	if (referenced_ptes) {
		SetPageFlag(page, PG_referenced);
		if (referenced_page || referenced_ptes > 1)
			return FOLIOREF_ACTIVATE;
		return FOLIOREF_KEEP;
	}
	return FOLIOREF_RECLAIM;
}

/*
 * shrink_folio_list - try to free each page of the list, on which the caller holds a reference
 * (dropped here).  Returns the pages freed.  No locks held on entry.
 */
static uint64_t shrink_folio_list(struct cowvm *vm, struct page **pages, int nr, bool ignore_references)
{
	uint64_t freed = 0;
	for (int i = 0; i < nr; i++) {
		struct page *page = pages[i];
		bool activate = false, rotate = false;
		if (!trylock_page(page))
			goto keep;
		if (PageFlag(page, PG_mlocked) || PageFlag(page, PG_unevictable) || PageShmem(page) ||
		    (!PageAnon(page) && !PageSwapCache(page)) || page_maybe_dma_pinned(page))
			goto keep_locked;
		if (!ignore_references && page_mapcount(page) > 0) {
			enum folio_references ref = folio_check_references(vm, page);
			if (ref == FOLIOREF_ACTIVATE) {
				activate = true;
				goto keep_locked;
			}
			if (ref == FOLIOREF_KEEP)
				goto keep_locked;
		}
		if (!PageSwapCache(page)) {
			if (!vm->swap || !add_to_swap(vm, page)) {
				activate = vm->swap != NULL; /* activate_locked: the device is full */
				goto keep_locked;
			}
		}
		if (page_mapcount(page) > 0 && !try_to_unmap(vm, page)) {
			activate = true;
			goto keep_locked;
		}
		if (PageDirty(page)) { /* pageout */
			ClearPageFlag(page, PG_dirty);
			if (swap_writepage(vm, page)) {
				SetPageDirty(page); /* the write failed: the page keeps the data */
				activate = true;
				goto keep_locked;
			}
			rotate = true; /* written: freed by the next pass, when still clean */
			goto keep_locked;
		}
		if (!__remove_mapping(vm, page))
			goto keep_locked;
		unlock_page(page);
		put_page(vm, page); /* the last reference: frees the frame */
		freed++;
		continue;
keep_locked:
		unlock_page(page);
keep:
		if (activate)
			lru_activate(vm, page);
		else if (rotate)
			lru_rotate_reclaimable(vm, page);
		put_page(vm, page);
	}
	return freed;
}

/* reclaim_pages (MADV_PAGEOUT): the pages go back inactive unless freed. */
uint64_t reclaim_pages(struct cowvm *vm, struct reclaim_list *list)
{
	for (int i = 0; i < list->nr; i++)
		lru_deactivate(vm, list->pages[i]);
	uint64_t freed = shrink_folio_list(vm, list->pages, list->nr, true);
	list->nr = 0;
	return freed;
}

/* ---- shrinking the lists --------------------------------------------------------------------- */

/*
 * Take up to nr pages from the tail of list (rotating each to the head, so the next call sees
 * others), with a reference each; shmem pages are passed over.  With memcg (reclaim within a
 * group) only pages charged to its subtree are taken and rotated: the others keep their place,
 * as they would on their own groups' lists in Linux.  Returns how many.
 */
static int isolate_lru_pages(struct cowvm *vm, struct list_head *list, struct page **out, int nr,
			     long list_size, struct mem_cgroup *memcg)
{
	int n = 0;
	spin_lock(&vm->lru_lock);
	struct list_head *pos = list->prev;
	for (long seen = 0; seen < list_size && n < nr && pos != list; seen++) {
		struct page *page = list_entry(pos, struct page, lru);
		pos = pos->prev;
		if (memcg && !mem_cgroup_page_in_subtree(page, memcg))
			continue;
		list_del(&page->lru);
		list_add(&page->lru, list);
		if (PageShmem(page) || !get_page_unless_zero(page))
			continue;
		out[n++] = page;
	}
	spin_unlock(&vm->lru_lock);
	return n;
}

/* The anon LRU sizes: the machine's, or (memcg) of the pages charged to memcg's subtree. */
static void lru_sizes(struct cowvm *vm, struct mem_cgroup *memcg, long *active, long *inactive)
{
	if (!memcg) {
		*active = global_node_page_state(vm, NR_ACTIVE_ANON);
		*inactive = global_node_page_state(vm, NR_INACTIVE_ANON);
		return;
	}
	struct page *page;
	*active = *inactive = 0;
	spin_lock(&vm->lru_lock);
	list_for_each_entry(page, &vm->lru_active_anon, lru)
		*active += mem_cgroup_page_in_subtree(page, memcg);
	list_for_each_entry(page, &vm->lru_inactive_anon, lru)
		*inactive += mem_cgroup_page_in_subtree(page, memcg);
	spin_unlock(&vm->lru_lock);
}

/* shrink_active_list: the oldest active pages lose their accessed bits and go inactive (anon
 * pages are deactivated whether referenced or not, as Linux does). */
static int shrink_active_list(struct cowvm *vm, int nr, struct mem_cgroup *memcg)
{
	struct page *pages[SWAP_CLUSTER_MAX];
	int n = isolate_lru_pages(vm, &vm->lru_active_anon, pages, nr,
				  global_node_page_state(vm, NR_ACTIVE_ANON), memcg);
	for (int i = 0; i < n; i++) {
		if (page_mapcount(pages[i]) > 0 && trylock_page(pages[i])) {
			folio_referenced(vm, pages[i]); /* page lock: its anon_vma stays put */
			unlock_page(pages[i]);
		}
		lru_deactivate(vm, pages[i]);
		count_vm_event(vm, PGDEACTIVATE);
		put_page(vm, pages[i]);
	}
	return n;
}

static uint64_t shrink_inactive_list(struct cowvm *vm, int nr, bool kswapd, int *scanned,
				     struct mem_cgroup *memcg)
{
	struct page *pages[SWAP_CLUSTER_MAX];
	int n = isolate_lru_pages(vm, &vm->lru_inactive_anon, pages, nr,
				  global_node_page_state(vm, NR_INACTIVE_ANON), memcg);
	*scanned = n;
	count_vm_events(vm, kswapd ? PGSCAN_KSWAPD : PGSCAN_DIRECT, (uint64_t)n);
	uint64_t freed = shrink_folio_list(vm, pages, n, false);
	count_vm_events(vm, kswapd ? PGSTEAL_KSWAPD : PGSTEAL_DIRECT, freed);
	count_memcg_reclaim(memcg, (uint64_t)n, freed);
	return freed;
}

/* inactive_is_low: below 1 GiB of LRU pages the lists are kept the same size (inactive_ratio 1). */
static bool inactive_is_low(struct cowvm *vm, struct mem_cgroup *memcg)
{
	long active, inactive;
	lru_sizes(vm, memcg, &active, &inactive);
	return inactive < active;
}

/*
 * do_try_to_free_pages (try_to_free_pages / balance_pgdat, or with memcg the group's limit
 * reclaim, shrink_node_memcgs over its subtree): shrink until nr pages are free or every LRU
 * page of the scope has been looked at a few times.  Without a swap device anonymous pages
 * cannot be reclaimed (Linux's can_reclaim_anon_pages), so nothing is scanned.
 */
static uint64_t do_try_to_free_pages(struct cowvm *vm, uint64_t nr, bool kswapd, struct mem_cgroup *memcg)
{
	if (!vm->swap)
		return 0;
	uint64_t freed = 0;
	long active, inactive;
	lru_sizes(vm, memcg, &active, &inactive);
	long budget = 4 * (active + inactive) + 2 * SWAP_CLUSTER_MAX;
	while (freed < nr && budget > 0) {
		int moved = 0, scanned = 0;
		if (inactive_is_low(vm, memcg))
			moved = shrink_active_list(vm, SWAP_CLUSTER_MAX, memcg);
		freed += shrink_inactive_list(vm, SWAP_CLUSTER_MAX, kswapd, &scanned, memcg);
		if (!moved && !scanned)
			break;
		budget -= moved + scanned;
	}
	return freed;
}

uint64_t try_to_free_pages(struct cowvm *vm, uint64_t nr, bool kswapd)
{
	return do_try_to_free_pages(vm, nr, kswapd, NULL);
}

uint64_t shrink_memcg(struct cowvm *vm, struct mem_cgroup *memcg, uint64_t nr)
{
	return do_try_to_free_pages(vm, nr, false, memcg);
}

int64_t cowvm_reclaim(cowvm_t *vm, uint64_t nr)
{
	if (!vm)
		return -EINVAL;
	return (int64_t)try_to_free_pages(vm, nr, false);
}

/* ---- watermarks, kswapd and direct reclaim ---------------------------------------------------- */

#define KSWAPD_BATCH 64

static int kswapd_lock_running(struct cowvm *vm)
{
	return vm->kswapd ? pthread_mutex_lock(&vm->kswapd->running) : 0;
}

static void kswapd_unlock_running(struct cowvm *vm)
{
	if (vm->kswapd)
		pthread_mutex_unlock(&vm->kswapd->running);
}

/* The checker's exclusion: kswapd finishes its batch and waits (see mm/check.c). */
void kswapd_pause(struct cowvm *vm)
{
	kswapd_lock_running(vm);
}

void kswapd_resume(struct cowvm *vm)
{
	kswapd_unlock_running(vm);
}

void wakeup_kswapd(struct cowvm *vm)
{
	struct kswapd *k = vm->kswapd;
	if (!k || nr_free_pages(vm) >= k->wmark_low)
		return;
	pthread_mutex_lock(&k->lock);
	if (!k->wakeup) {
		k->wakeup = true;
		pthread_cond_signal(&k->wait);
	}
	pthread_mutex_unlock(&k->lock);
}

/*
 * kswapd - sleep until an allocation finds free frames below the low watermark, then reclaim
 * in batches until they are above the high one (balance_pgdat), or until a pass frees nothing
 * (then wait for the next wakeup, as kswapd_try_to_sleep after a failed balance).
 */
static void *kswapd(void *arg)
{
	struct cowvm *vm = arg;
	struct kswapd *k = vm->kswapd;
	for (;;) {
		pthread_mutex_lock(&k->lock);
		while (!k->stop && !k->wakeup)
			pthread_cond_wait(&k->wait, &k->lock);
		bool stop = k->stop;
		k->wakeup = false;
		pthread_mutex_unlock(&k->lock);
		if (stop)
			return NULL;
		for (;;) {
			uint64_t free = nr_free_pages(vm);
			if (free >= k->wmark_high)
				break;
			pthread_mutex_lock(&k->running);
			uint64_t freed = try_to_free_pages(vm, KSWAPD_BATCH, true);
			pthread_mutex_unlock(&k->running);
			pthread_mutex_lock(&k->lock);
			stop = k->stop;
			pthread_mutex_unlock(&k->lock);
			if (stop || !freed)
				break;
		}
	}
}

int kswapd_run(struct cowvm *vm)
{
	struct kswapd *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->wmark_min = vm->nr_frames / 128 < 16 ? 16 : vm->nr_frames / 128;
	k->wmark_low = k->wmark_min + k->wmark_min / 4;
	k->wmark_high = k->wmark_min + k->wmark_min / 2;
	pthread_mutex_init(&k->lock, NULL);
	pthread_mutex_init(&k->running, NULL);
	pthread_cond_init(&k->wait, NULL);
	vm->kswapd = k;
	if (pthread_create(&k->thread, NULL, kswapd, vm)) {
		vm->kswapd = NULL;
		pthread_cond_destroy(&k->wait);
		pthread_mutex_destroy(&k->running);
		pthread_mutex_destroy(&k->lock);
		free(k);
		return -EAGAIN;
	}
	return 0;
}

void kswapd_stop(struct cowvm *vm)
{
	struct kswapd *k = vm->kswapd;
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->wait);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	vm->kswapd = NULL;
	pthread_cond_destroy(&k->wait);
	pthread_mutex_destroy(&k->running);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

struct page *alloc_page_may_reclaim(struct cowvm *vm, bool zeroed)
{
	/*
	 * __alloc_pages_slowpath, reduced: direct reclaim and a new try, at most
	 * MAX_RECLAIM_RETRIES times; give up (the caller's VM_FAULT_OOM) once reclaim has made no
	 * progress a few times in a row, as should_reclaim_retry does.  A pass that frees
	 * nothing may only mean that kswapd holds the pages it is writing out meanwhile: let it
	 * run before the next try.
	 */
	enum { MAX_RECLAIM_RETRIES = 16, MAX_NO_PROGRESS = 4 };
	int no_progress = 0;
	for (int attempt = 0;; attempt++) {
		struct page *page = zeroed ? alloc_zeroed_user_page(vm) : alloc_page(vm);
		if (page || !vm->swap || attempt == MAX_RECLAIM_RETRIES) {
			wakeup_kswapd(vm);
			return page;
		}
		/* __alloc_pages_direct_reclaim; a second pass frees what the first wrote out */
		if (try_to_free_pages(vm, SWAP_CLUSTER_MAX, false)) {
			no_progress = 0;
		} else {
			if (++no_progress == MAX_NO_PROGRESS)
				return NULL;
			sched_yield();
		}
	}
}
