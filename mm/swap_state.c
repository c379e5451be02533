/*
 * swap_state.c - the swap cache, as Linux's mm/swap_state.c: pages that hold a swap slot's data
 * in memory, looked up by swap entry.  A page in the cache has PG_swapcache, page->private =
 * its entry, and one reference held by the cache (Linux: one per page of the folio); its slot
 * has SWAP_HAS_CACHE.  Pages enter the cache when reclaim gives them a slot (add_to_swap) or a
 * fault reads a slot (swapin_locked), and leave it when the slot is no longer needed
 * (folio_free_swap, free_swap_and_cache), when reclaim frees a clean copy (vmscan.c's
 * __remove_mapping), or when a read fails.  Adding or deleting a page requires its page lock.
 */
#include <sched.h>

#include "swap.h"

/* folio_lock: wait for the page lock.  Never called with a spinlock held. */
void lock_page(struct page *page)
{
	while (!trylock_page(page))
		sched_yield();
}

/* The slot must have SWAP_HAS_CACHE already (get_swap_page or swapcache_prepare). */
int add_to_swap_cache(struct cowvm *vm, struct page *page, swp_entry_t entry)
{
	struct swap_info_struct *si = vm->swap;
	uint64_t off = swp_offset(entry);
	spin_lock(&si->lock);
	if (unlikely(si->swap_cache[off] || !(si->swap_map[off] & SWAP_HAS_CACHE) || PageSwapCache(page)))
		bug("add_to_swap_cache: slot %llu taken or page cached already", (unsigned long long)off);
	get_page(page);
	page->private = entry.val;
	SetPageFlag(page, PG_swapcache);
	si->swap_cache[off] = page;
	spin_unlock(&si->lock);
	mod_node_page_state(vm, NR_SWAPCACHE, 1);
	return 0;
}

/* Take the page out of the cache array, keeping the slot's SWAP_HAS_CACHE and the cache's
 * reference for the caller to drop.  si->lock held. */
void __delete_from_swap_cache_locked(struct swap_info_struct *si, struct page *page)
{
	uint64_t off = swp_offset(page_swap_entry(page));
	if (unlikely(si->swap_cache[off] != page))
		bug("swap cache slot %llu does not hold this page", (unsigned long long)off);
	si->swap_cache[off] = NULL;
	ClearPageFlag(page, PG_swapcache);
	page->private = 0;
}

void __delete_from_swap_cache(struct cowvm *vm, struct page *page)
{
	spin_lock(&vm->swap->lock);
	__delete_from_swap_cache_locked(vm->swap, page);
	spin_unlock(&vm->swap->lock);
	mod_node_page_state(vm, NR_SWAPCACHE, -1);
}

/* delete_from_swap_cache: out of the cache, the slot's hold and the cache's reference dropped.
 * Page locked; the caller holds a reference of its own. */
void delete_from_swap_cache(struct cowvm *vm, struct page *page)
{
	swp_entry_t entry = page_swap_entry(page);
	__delete_from_swap_cache(vm, page);
	put_swap_folio(vm, entry);
	put_page(vm, page);
}

struct page *swap_cache_get_folio(struct cowvm *vm, swp_entry_t entry)
{
	struct swap_info_struct *si = vm->swap;
	spin_lock(&si->lock);
	struct page *page = si->swap_cache[swp_offset(entry)];
	if (page)
		get_page(page);
	spin_unlock(&si->lock);
	return page;
}

/*
 * add_to_swap - give an anon page a slot and put it in the swap cache, dirty (it must be
 * written before it can be freed).  The slot is charged to the page's memory cgroup
 * (folio_alloc_swap -> mem_cgroup_try_charge_swap).  Page locked.  False when the device is
 * full or a group is at its memory.swap.max.
 */
bool add_to_swap(struct cowvm *vm, struct page *page)
{
	swp_entry_t entry = get_swap_page(vm);
	if (mem_cgroup_try_charge_swap(vm, page, entry)) { /* a full device counts a swap fail */
		if (!entry.val)
			return false;
		put_swap_folio(vm, entry);
		return false;
	}
	add_to_swap_cache(vm, page, entry);
	SetPageDirty(page);
	return true;
}

/*
 * swapin_locked (swap_cache_get_folio, else __read_swap_cache_async + swap_read_folio): see
 * mm/swap.h.  A page read from the device joins the inactive list; it is not anonymous until
 * do_swap_page maps it (Linux's swapin folio is only swap-backed until then).  The new page is
 * charged to mm's memory cgroup before it joins the cache.
 */
struct page *swapin_locked(struct cowvm *vm, struct mm_struct *mm, swp_entry_t entry, bool *major,
			   int *err)
{
	for (;;) {
		struct page *page = swap_cache_get_folio(vm, entry);
		if (page) {
			lock_page(page);
			if (PageSwapCache(page) && page->private == entry.val) {
				*major = false;
				return page;
			}
			unlock_page(page); /* it left the cache while we waited */
			put_page(vm, page);
			continue;
		}
		struct page *new = alloc_page_may_reclaim(vm, false);
		if (!new) {
			*err = -ENOMEM;
			return NULL;
		}
		/* mem_cgroup_swapin_charge_folio: to the faulting process's group (Linux charges the
		 * group recorded at swap-out while it lives; docs/fidelity.md) */
		if (mem_cgroup_charge(new, mm, 0)) {
			put_page(vm, new);
			*err = -ENOMEM;
			return NULL;
		}
		int r = swapcache_prepare(vm, entry);
		if (r == -EEXIST) { /* another swap-in of the slot is adding its page */
			put_page(vm, new);
			sched_yield();
			continue;
		}
		if (r == -ENOENT) {
			put_page(vm, new);
			*err = -ENOENT;
			return NULL;
		}
		if (!trylock_page(new))
			bug("a new page is locked");
		add_to_swap_cache(vm, new, entry);
		r = swap_read_folio(vm, new, entry);
		if (r) { /* the data stays in the slot; the page goes */
			__delete_from_swap_cache(vm, new);
			put_swap_folio(vm, entry);
			unlock_page(new);
			put_page(vm, new); /* the cache's */
			put_page(vm, new); /* ours */
			*err = r;
			return NULL;
		}
		lru_cache_add_inactive(vm, new);
		*major = true;
		return new;
	}
}
