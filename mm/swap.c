/*
 * swap.c - the LRU lists of anonymous pages (Linux keeps them in mm/swap.c and vmscan.c).
 * New anonymous pages join the active list, as lru_cache_add_active in the seed's figure;
 * reclaim (a later subsystem) ages them to the inactive list.
 *
 * Invariant: a page has PG_lru exactly when it is on one list; PG_unevictable says it is on the
 * unevictable list (mm/mlock.c moves mlocked pages there), else PG_active says which.
 * Linux first gathers new pages in a per-CPU batch that holds an extra reference until it
 * drains; cowvm adds them at once, so a page's refcount never carries a batch reference and
 * the COW reuse decision is deterministic (reference/host-kernel-notes.md "Things that bite").
 */
#include "mm.h"

void lru_cache_add_active(struct cowvm *vm, struct page *page)
{
	trace_call(vm, "lru_cache_add_active", TF_FRAME("frame", page_to_pfn(vm, page)),
		   TF_TEXT("list", PageFlag(page, PG_mlocked) ? "unevictable" : "active anon"));
	spin_lock(&vm->lru_lock);
	if (unlikely(PageLRU(page)))
		bug("frame %llu is on an LRU list already", (unsigned long long)page_to_pfn(vm, page));
	SetPageFlag(page, PG_lru);
	if (PageFlag(page, PG_mlocked)) { /* mapped into a VM_LOCKED VMA first (mlock_new_folio) */
		SetPageFlag(page, PG_unevictable);
		list_add(&page->lru, &vm->lru_unevictable);
		mod_node_page_state(vm, NR_UNEVICTABLE, 1);
	} else {
		SetPageFlag(page, PG_active);
		list_add(&page->lru, &vm->lru_active_anon);
		mod_node_page_state(vm, NR_ACTIVE_ANON, 1);
	}
	spin_unlock(&vm->lru_lock);
}

/* A page read back from swap joins the inactive list (lru_cache_add without PG_active), or the
 * unevictable one if it is mlocked already. */
void lru_cache_add_inactive(struct cowvm *vm, struct page *page)
{
	spin_lock(&vm->lru_lock);
	if (unlikely(PageLRU(page)))
		bug("frame %llu is on an LRU list already", (unsigned long long)page_to_pfn(vm, page));
	SetPageFlag(page, PG_lru);
	if (PageFlag(page, PG_mlocked)) {
		SetPageFlag(page, PG_unevictable);
		list_add(&page->lru, &vm->lru_unevictable);
		mod_node_page_state(vm, NR_UNEVICTABLE, 1);
	} else {
		list_add(&page->lru, &vm->lru_inactive_anon);
		mod_node_page_state(vm, NR_INACTIVE_ANON, 1);
	}
	spin_unlock(&vm->lru_lock);
}

/* folio_activate: an inactive page that proved in use goes to the active list. */
void lru_activate(struct cowvm *vm, struct page *page)
{
	spin_lock(&vm->lru_lock);
	if (PageLRU(page) && !PageFlag(page, PG_active) && !PageFlag(page, PG_unevictable)) {
		list_del(&page->lru);
		SetPageFlag(page, PG_active);
		list_add(&page->lru, &vm->lru_active_anon);
		mod_node_page_state(vm, NR_INACTIVE_ANON, -1);
		mod_node_page_state(vm, NR_ACTIVE_ANON, 1);
		count_vm_event(vm, PGACTIVATE);
	}
	spin_unlock(&vm->lru_lock);
}

/*
 * folio_rotate_reclaimable: a page just written to swap goes to the tail of the inactive list,
 * where reclaim looks first, so that the next pass frees it (Linux does this when the write
 * completes; cowvm's pwrite completes at once).
 */
void lru_rotate_reclaimable(struct cowvm *vm, struct page *page)
{
	spin_lock(&vm->lru_lock);
	if (PageLRU(page) && !PageFlag(page, PG_unevictable)) {
		list_del(&page->lru);
		if (PageFlag(page, PG_active)) {
			ClearPageFlag(page, PG_active);
			mod_node_page_state(vm, NR_ACTIVE_ANON, -1);
			mod_node_page_state(vm, NR_INACTIVE_ANON, 1);
		}
		list_add_tail(&page->lru, &vm->lru_inactive_anon);
	}
	spin_unlock(&vm->lru_lock);
}

void lru_cache_del(struct cowvm *vm, struct page *page)
{
	spin_lock(&vm->lru_lock);
	if (PageLRU(page)) {
		list_del(&page->lru);
		mod_node_page_state(vm, PageFlag(page, PG_unevictable) ? NR_UNEVICTABLE :
				    PageFlag(page, PG_active) ? NR_ACTIVE_ANON : NR_INACTIVE_ANON, -1);
		ClearPageFlag(page, PG_lru);
		ClearPageFlag(page, PG_active);
		ClearPageFlag(page, PG_unevictable);
	}
	spin_unlock(&vm->lru_lock);
}

/* folio_mark_lazyfree / deactivate: the page goes to the inactive list (reclaim takes it first). */
void lru_deactivate(struct cowvm *vm, struct page *page)
{
	spin_lock(&vm->lru_lock);
	if (PageLRU(page) && PageFlag(page, PG_active)) {
		list_del(&page->lru);
		ClearPageFlag(page, PG_active);
		list_add(&page->lru, &vm->lru_inactive_anon);
		mod_node_page_state(vm, NR_ACTIVE_ANON, -1);
		mod_node_page_state(vm, NR_INACTIVE_ANON, 1);
	}
	spin_unlock(&vm->lru_lock);
}
