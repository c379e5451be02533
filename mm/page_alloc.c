/*
 * page_alloc.c - physical memory: the frames, their struct pages (mem_map), the buddy
 * allocator with per-CPU lists of single frames, the zero page, poisoning and fault injection.
 *
 * Invariants kept here:
 *  - a free frame is in exactly one place: a buddy block (its head has PG_buddy and the order)
 *    or one per-CPU list (PG_pcp); nr_free counts both;
 *  - frame 0 is reserved and never handed out, so frame number 0 in a pagemap word never names
 *    a real frame; frame 1 is the zero page, which is never freed and never written;
 *  - a frame handed out has refcount 1, no flags, no mapping; a freed frame has refcount 0.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mm.h"

#define PAGE_POISON_FREE  0x6b /* as Linux's POISON_FREE */
#define PAGE_POISON_ALLOC 0x5a /* as Linux's POISON_INUSE: new and not yet zeroed or copied */

static _Atomic unsigned next_cpu;
static __thread int this_cpu __attribute__((tls_model("initial-exec"))) = -1;

/* The host thread is a CPU; each gets a per-CPU list of its own (shared modulo nr_cpus). */
static struct per_cpu_pages *this_cpu_pcp(struct cowvm *vm)
{
	if (unlikely(this_cpu < 0))
		this_cpu = (int)(atomic_fetch_add(&next_cpu, 1) % MAX_CPUS);
	return &vm->pcp[(unsigned)this_cpu % vm->nr_cpus];
}

/* ---- the buddy allocator ------------------------------------------------------------------- */

static uint64_t buddy_pfn(uint64_t pfn, unsigned order)
{
	return pfn ^ (1ull << order);
}

/* Caller holds zone_lock. */
static void add_to_free_list(struct cowvm *vm, struct page *page, unsigned order)
{
	page->order = order;
	__SetPageFlag(page, PG_buddy);
	list_add(&page->lru, &vm->free_area[order].free_list);
	vm->free_area[order].nr_free++;
}

/* Caller holds zone_lock. */
static void del_from_free_list(struct cowvm *vm, struct page *page, unsigned order)
{
	list_del(&page->lru);
	__ClearPageFlag(page, PG_buddy);
	vm->free_area[order].nr_free--;
}

/* Return a block to the buddy lists, merging with its free buddies.  Caller holds zone_lock. */
static void __free_one_page(struct cowvm *vm, uint64_t pfn, unsigned order)
{
	while (order < MAX_ORDER) {
		uint64_t buddy = buddy_pfn(pfn, order);
		if (buddy + (1ull << order) > vm->nr_frames)
			break;
		struct page *bp = pfn_to_page(vm, buddy);
		if (!PageFlag(bp, PG_buddy) || bp->order != order)
			break;
		del_from_free_list(vm, bp, order);
		pfn &= ~(1ull << order);
		order++;
	}
	add_to_free_list(vm, pfn_to_page(vm, pfn), order);
}

/* Take a block of the given order, splitting a larger one.  Caller holds zone_lock. */
static struct page *__rmqueue_smallest(struct cowvm *vm, unsigned order)
{
	for (unsigned current_order = order; current_order <= MAX_ORDER; current_order++) {
		struct free_area *area = &vm->free_area[current_order];
		if (list_empty(&area->free_list))
			continue;
		struct page *page = list_first_entry(&area->free_list, struct page, lru);
		del_from_free_list(vm, page, current_order);
		uint64_t pfn = page_to_pfn(vm, page);
		/* Give back the upper halves, largest first (Linux's expand()). */
		while (current_order > order) {
			current_order--;
			add_to_free_list(vm, pfn_to_page(vm, pfn + (1ull << current_order)), current_order);
		}
		return page;
	}
	return NULL;
}

/* ---- fault injection ------------------------------------------------------------------------ */

static bool should_fail_alloc(struct cowvm *vm)
{
	struct fail_injection *f = &vm->fail;
	int mode = atomic_load_explicit(&f->mode, memory_order_relaxed);
	uint64_t n;

	switch (mode) {
	case COWVM_FAIL_OFF:
		return false;
	case COWVM_FAIL_NEXT:
		return atomic_compare_exchange_strong(&f->mode, &mode, COWVM_FAIL_OFF);
	case COWVM_FAIL_AFTER:
		n = atomic_load(&f->n);
		while (n > 0)
			if (atomic_compare_exchange_weak(&f->n, &n, n - 1))
				return false;
		return true;
	case COWVM_FAIL_NTH:
		n = atomic_load(&f->n);
		while (n > 0) {
			if (atomic_compare_exchange_weak(&f->n, &n, n - 1)) {
				if (n == 1) {
					atomic_store(&f->mode, COWVM_FAIL_OFF);
					return true;
				}
				return false;
			}
		}
		return false;
	case COWVM_FAIL_CAP:
		return vm->nr_frames - atomic_load(&vm->nr_free) >= atomic_load(&f->n);
	}
	return false;
}

int cowvm_fail_alloc(cowvm_t *vm, int mode, uint64_t n)
{
	if (!vm || mode < COWVM_FAIL_OFF || mode > COWVM_FAIL_CAP)
		return -EINVAL;
	if (mode == COWVM_FAIL_NTH && n == 0)
		return -EINVAL;
	atomic_store(&vm->fail.n, n);
	atomic_store(&vm->fail.mode, mode);
	return 0;
}

/* ---- allocation and freeing ------------------------------------------------------------------- */

static void prep_new_page(struct cowvm *vm, struct page *page, unsigned order)
{
	for (uint64_t i = 0; i < (1ull << order); i++) {
		struct page *p = page + i;
		atomic_store_explicit(&p->flags, 0, memory_order_relaxed);
		atomic_store_explicit(&p->_mapcount, 0, memory_order_relaxed);
		p->mapping = NULL;
		p->index = 0;
		p->order = 0;
		p->private = 0;
		p->memcg_data = 0;
		INIT_LIST_HEAD(&p->lru);
	}
	atomic_store_explicit(&page->_refcount, 1, memory_order_release);
	if (!(vm->flags & COWVM_CONFIG_NO_POISON))
		memset(page_address(vm, page), PAGE_POISON_ALLOC, PAGE_SIZE << order);
}

/*
 * alloc_pages - take 2^order contiguous frames.  Returns the first page with refcount 1, or
 * NULL when memory is exhausted or fault injection says so.  Takes the per-CPU list lock or
 * the zone lock; caller may hold any lock above them in the order.
 */
struct page *alloc_pages(struct cowvm *vm, unsigned order)
{
	struct page *page = NULL;

	if (order > MAX_ORDER || should_fail_alloc(vm))
		return NULL;
	if (order == 0) {
		struct per_cpu_pages *pcp = this_cpu_pcp(vm);
		spin_lock(&pcp->lock);
		if (pcp->count == 0) { /* rmqueue_bulk */
			spin_lock(&vm->zone_lock);
			for (int i = 0; i < PCP_BATCH; i++) {
				struct page *p = __rmqueue_smallest(vm, 0);
				if (!p)
					break;
				__SetPageFlag(p, PG_pcp);
				list_add_tail(&p->lru, &pcp->list);
				pcp->count++;
			}
			spin_unlock(&vm->zone_lock);
		}
		if (pcp->count > 0) {
			page = list_first_entry(&pcp->list, struct page, lru);
			list_del(&page->lru);
			__ClearPageFlag(page, PG_pcp);
			pcp->count--;
		}
		spin_unlock(&pcp->lock);
		if (!page) { /* other CPUs may hold the last free frames on their lists */
			for (unsigned cpu = 0; cpu < vm->nr_cpus && !page; cpu++) {
				struct per_cpu_pages *other = &vm->pcp[cpu];
				spin_lock(&other->lock);
				if (other->count > 0) {
					page = list_first_entry(&other->list, struct page, lru);
					list_del(&page->lru);
					__ClearPageFlag(page, PG_pcp);
					other->count--;
				}
				spin_unlock(&other->lock);
			}
		}
	} else {
		spin_lock(&vm->zone_lock);
		page = __rmqueue_smallest(vm, order);
		spin_unlock(&vm->zone_lock);
	}
	if (!page)
		return NULL;
	atomic_fetch_sub(&vm->nr_free, 1ull << order);
	count_vm_event(vm, PGALLOC);
	prep_new_page(vm, page, order);
	return page;
}

/* A zeroed frame for user memory (alloc_zeroed_user_highpage_movable). */
struct page *alloc_zeroed_user_page(struct cowvm *vm)
{
	struct page *page = alloc_page(vm);
	if (page)
		memset(page_address(vm, page), 0, PAGE_SIZE);
	return page;
}

/*
 * free_pages - give back frames whose refcount has dropped to 0.  The frames are poisoned
 * so a use after free reads a pattern nobody wrote.
 */
void free_pages(struct cowvm *vm, struct page *page, unsigned order)
{
	uint64_t pfn = page_to_pfn(vm, page);

	if (unlikely(page_ref_count(page) != 0 || page_mapcount(page) != 0 ||
		     PageFlag(page, PG_reserved) || PageZero(page) || PageLRU(page) || page->memcg_data))
		bug("freeing frame %llu in use (ref %d, map %d, flags %#x)", (unsigned long long)pfn,
		    page_ref_count(page), page_mapcount(page), (unsigned)atomic_load(&page->flags));
	atomic_store_explicit(&page->flags, 0, memory_order_relaxed);
	page->mapping = NULL;
	if (!(vm->flags & COWVM_CONFIG_NO_POISON))
		memset(page_address(vm, page), PAGE_POISON_FREE, PAGE_SIZE << order);
	count_vm_event(vm, PGFREE);

	if (order == 0) {
		struct per_cpu_pages *pcp = this_cpu_pcp(vm);
		spin_lock(&pcp->lock);
		__SetPageFlag(page, PG_pcp);
		list_add(&page->lru, &pcp->list);
		pcp->count++;
		atomic_fetch_add(&vm->nr_free, 1);
		if (pcp->count > PCP_HIGH) { /* free_pcppages_bulk: the coldest go back */
			spin_lock(&vm->zone_lock);
			for (int i = 0; i < PCP_BATCH; i++) {
				struct page *p = list_entry(pcp->list.prev, struct page, lru);
				list_del(&p->lru);
				__ClearPageFlag(p, PG_pcp);
				pcp->count--;
				__free_one_page(vm, page_to_pfn(vm, p), 0);
			}
			spin_unlock(&vm->zone_lock);
		}
		spin_unlock(&pcp->lock);
		return;
	}
	spin_lock(&vm->zone_lock);
	__free_one_page(vm, pfn, order);
	atomic_fetch_add(&vm->nr_free, 1ull << order);
	spin_unlock(&vm->zone_lock);
}

/*
 * put_page - drop a reference; the last one frees the frame (__folio_put): off the LRU,
 * mapping cleared, back to the allocator.  The caller must not touch the page afterwards.
 */
void put_page(struct cowvm *vm, struct page *page)
{
	int old = atomic_fetch_sub_explicit(&page->_refcount, 1, memory_order_acq_rel);
	if (unlikely(old <= 0))
		bug("put_page on frame %llu with refcount %d",
		    (unsigned long long)page_to_pfn(vm, page), old);
	if (old > 1)
		return;
	if (unlikely(page_mapcount(page) != 0))
		bug("last reference to frame %llu dropped while mapped %d times",
		    (unsigned long long)page_to_pfn(vm, page), page_mapcount(page));
	if (PageLRU(page))
		lru_cache_del(vm, page);
	mem_cgroup_uncharge(page);
	free_pages(vm, page, 0);
}

uint64_t nr_free_pages(struct cowvm *vm)
{
	return atomic_load(&vm->nr_free);
}

/* ---- set-up ------------------------------------------------------------------------------- */

#define HOST_HUGE_SIZE (2ull << 20) /* x86-64 PMD-sized host pages */

/* Is the host's THP policy one that honours MADV_HUGEPAGE ("always" or "madvise")? */
static bool host_thp_available(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return false;
	bool ok = fgets(buf, sizeof(buf), f) && !strstr(buf, "[never]");
	fclose(f);
	return ok;
}

/*
 * The host memory behind the frames, one mapping of phys_bytes.
 *
 * Backing.  On 4 KiB host pages every frame the machine touches first is a host page fault
 * (~1.5 us) and every frame access beyond the host TLB's reach a host page walk, so a
 * machine's cost per page grew with its size (issue 15: 2.4 us per page of a touch-fork-COW
 * scenario on 256 MiB, 6.5 us on 4 GiB).  So the mapping is aligned to 2 MiB and advised
 * MADV_HUGEPAGE where the host's THP policy allows it: the host backs 512 frames per fault and
 * one host TLB entry covers them.  COWVM_CONFIG_HOST_4K keeps the 4 KiB pages (to measure
 * the difference).  hugetlbfs (MAP_HUGETLB) would need pages reserved by the administrator;
 * THP needs nothing, so cowvm does not use it.
 *
 * COWVM_CONFIG_PREFAULT backs everything now: MADV_POPULATE_WRITE after the advice (MAP_POPULATE
 * would populate before it, with 4 KiB pages), or a write per host page where that is missing.
 * Returns the mapping, or NULL.
 */
static uint8_t *phys_mem_map(struct cowvm *vm, uint64_t phys_bytes, unsigned flags)
{
	bool huge = !(flags & COWVM_CONFIG_HOST_4K) && phys_bytes >= HOST_HUGE_SIZE &&
		    host_thp_available();
	uint64_t slack = huge ? HOST_HUGE_SIZE : 0;
	uint8_t *raw = mmap(NULL, phys_bytes + slack, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uint8_t *phys = raw;
	if (huge) { /* trim to a 2 MiB-aligned start, so every huge page can be used */
		uint64_t lead = (HOST_HUGE_SIZE - ((uintptr_t)raw & (HOST_HUGE_SIZE - 1))) &
				(HOST_HUGE_SIZE - 1);
		phys = raw + lead;
		if (lead)
			munmap(raw, lead);
		if (slack - lead)
			munmap(phys + phys_bytes, slack - lead);
		if (madvise(phys, phys_bytes, MADV_HUGEPAGE))
			huge = false;
	}
	if (!huge)
		madvise(phys, phys_bytes, MADV_NOHUGEPAGE);
	vm->host_backing = huge ? COWVM_BACKING_THP : COWVM_BACKING_4K;
	if (flags & COWVM_CONFIG_PREFAULT) {
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
		if (madvise(phys, phys_bytes, MADV_POPULATE_WRITE))
			for (uint64_t off = 0; off < phys_bytes; off += PAGE_SIZE)
				((volatile uint8_t *)phys)[off] = 0;
	}
	return phys;
}

static void phys_mem_unmap(struct cowvm *vm)
{
	munmap(vm->phys, vm->nr_frames << PAGE_SHIFT);
}

int page_alloc_init(struct cowvm *vm, uint64_t phys_bytes, unsigned flags, unsigned nr_cpus)
{
	vm->nr_frames = phys_bytes >> PAGE_SHIFT;
	vm->flags = flags;
	vm->nr_cpus = nr_cpus;
	uint8_t *phys = phys_mem_map(vm, phys_bytes, flags);
	if (!phys)
		return -ENOMEM;
	vm->phys = phys;
	vm->mem_map = calloc(vm->nr_frames, sizeof(struct page));
	if (!vm->mem_map) {
		phys_mem_unmap(vm);
		return -ENOMEM;
	}
	spin_lock_init(&vm->zone_lock);
	for (unsigned o = 0; o <= MAX_ORDER; o++)
		INIT_LIST_HEAD(&vm->free_area[o].free_list);
	for (unsigned c = 0; c < MAX_CPUS; c++) {
		spin_lock_init(&vm->pcp[c].lock);
		INIT_LIST_HEAD(&vm->pcp[c].list);
	}
	for (uint64_t pfn = 0; pfn < vm->nr_frames; pfn++)
		INIT_LIST_HEAD(&vm->mem_map[pfn].lru);

	/* Frame 0: reserved.  Frame 1: the zero page (host memory starts zeroed). */
	SetPageFlag(&vm->mem_map[0], PG_reserved);
	atomic_store(&vm->mem_map[0]._refcount, 1);
	vm->zero_page = &vm->mem_map[1];
	SetPageFlag(vm->zero_page, PG_zero);
	SetPageFlag(vm->zero_page, PG_reserved);
	atomic_store(&vm->zero_page->_refcount, 1);

	/* Everything else into the buddy lists, in the largest aligned blocks that fit. */
	uint64_t pfn = 2;
	while (pfn < vm->nr_frames) {
		unsigned order = MAX_ORDER;
		while (order > 0 && ((pfn & ((1ull << order) - 1)) || pfn + (1ull << order) > vm->nr_frames))
			order--;
		add_to_free_list(vm, pfn_to_page(vm, pfn), order);
		pfn += 1ull << order;
	}
	atomic_store(&vm->nr_free, vm->nr_frames - 2);
	return 0;
}

void page_alloc_exit(struct cowvm *vm)
{
	phys_mem_unmap(vm);
	free(vm->mem_map);
}

/*
 * For the checker: call fn for every free frame (each frame of each buddy block, each frame on
 * a per-CPU list).  Takes the zone and per-CPU locks.
 */
void for_each_free_frame(struct cowvm *vm, void (*fn)(void *arg, uint64_t pfn, int where), void *arg)
{
	spin_lock(&vm->zone_lock);
	for (unsigned o = 0; o <= MAX_ORDER; o++) {
		struct page *page;
		list_for_each_entry(page, &vm->free_area[o].free_list, lru) {
			uint64_t head = page_to_pfn(vm, page);
			for (uint64_t i = 0; i < (1ull << o); i++)
				fn(arg, head + i, page->order == o ? 0 : -1);
		}
	}
	spin_unlock(&vm->zone_lock);
	for (unsigned c = 0; c < vm->nr_cpus; c++) {
		struct page *page;
		spin_lock(&vm->pcp[c].lock);
		list_for_each_entry(page, &vm->pcp[c].list, lru)
			fn(arg, page_to_pfn(vm, page), 1);
		spin_unlock(&vm->pcp[c].lock);
	}
}
