/*
 * swap.h - what the swap subsystems share (Linux's mm/swap.h and include/linux/swap.h): the
 * swap device (swap_info_struct, one per machine), swap entries, the slot use counts
 * (swap_map) and the swap cache, and the reclaim entry points of mm/vmscan.c.
 *
 * Invariants (mm/check.c proves them):
 *  - swap_map[offset] = (number of swap PTEs naming the slot) | SWAP_HAS_CACHE when a page is in
 *    the swap cache for it; a slot is free exactly when swap_map[offset] == 0; slot 0 is the
 *    header (SWAP_MAP_BAD), never handed out;
 *  - swap_cache[offset] is the page holding the slot's data in memory, or NULL; it has
 *    PG_swapcache, page->private = the entry, and the cache holds one reference on it;
 *    SWAP_HAS_CACHE is set exactly when swap_cache[offset] is not NULL (or a swap-in that set
 *    it is adding its page: swapcache_prepare, under the page lock of a page not yet visible);
 *  - cluster_info[c].count = used slots of cluster c; a cluster with count 0 is on free_clusters.
 */
#ifndef COWVM_SWAP_H
#define COWVM_SWAP_H

#include "mm.h"

/* A swap entry, as Linux's arch-independent swp_entry_t: type in the top bits, offset below. */
typedef struct { uint64_t val; } swp_entry_t;
#define SWP_TYPE_SHIFT 58
static inline swp_entry_t swp_entry(unsigned type, uint64_t offset)
{
	return (swp_entry_t){ ((uint64_t)type << SWP_TYPE_SHIFT) | offset };
}
static inline unsigned swp_type(swp_entry_t e) { return (unsigned)(e.val >> SWP_TYPE_SHIFT); }
static inline uint64_t swp_offset(swp_entry_t e) { return e.val & ((1ull << SWP_TYPE_SHIFT) - 1); }
static inline swp_entry_t pte_to_swp_entry(pte_t pte)
{
	return swp_entry(__swp_type(pte), __swp_offset(pte));
}
static inline pte_t swp_entry_to_pte(swp_entry_t e) { return __swp_entry_to_pte(swp_type(e), swp_offset(e)); }

#define PageSwapCache(p) PageFlag(p, PG_swapcache)
static inline swp_entry_t page_swap_entry(const struct page *page) { return (swp_entry_t){ page->private }; }

/* swap_map values, Linux's (include/linux/swap.h) */
#define SWAP_HAS_CACHE  0x40 /* a page is in the swap cache for this slot */
#define SWAP_MAP_MAX    0x3e /* the most swap PTEs one slot counts (see swap_duplicate) */
#define SWAP_MAP_BAD    0x3f /* the header slot */
#define SWAPFILE_CLUSTER 256 /* slots per cluster (x86-64, without THP swap) */

struct swap_cluster_info {
	uint32_t count;                 /* used slots; si->lock */
	struct list_head list;          /* in free_clusters or nonfull_clusters; si->lock */
	bool on_list;
};

/* Injected I/O failures (cowvm_fail_swap_io). */
struct swap_io_fault {
	_Atomic int what;               /* COWVM_SWAP_FAIL_*, 0 = off */
	_Atomic uint64_t n;             /* I/Os left before the failing one (1 = the next) */
};

struct swap_info_struct {
	int fd;
	char *path;
	bool created;                   /* cowvm_create made the file: cowvm_destroy unlinks it */
	uint64_t max;                   /* slots, the header slot 0 included */
	spinlock_t lock;                /* swap_map, clusters, inuse_pages, swap_cache[] */
	unsigned char *swap_map;        /* per slot: count | SWAP_HAS_CACHE; lock */
	struct page **swap_cache;       /* per slot: the swap-cache page or NULL; lock */
	struct mem_cgroup **swap_cgroup; /* per slot: the group its swap charge is on (swap_cgroup.c's
					 * map), NULL for a free slot or an uncharged one; lock */
	struct swap_cluster_info *cluster_info; /* lock */
	uint64_t nr_clusters;
	struct list_head free_clusters, nonfull_clusters; /* lock */
	uint64_t cluster_next;          /* the cluster allocation fills now (Linux: per CPU); lock */
	bool have_cluster;              /* lock */
	uint64_t inuse_pages;           /* slots with a non-zero swap_map, the header excluded; lock */
	struct swap_io_fault fault;
};

/* ---- swapfile.c ------------------------------------------------------------------------------ */
int swap_init(struct cowvm *vm, const char *path, uint64_t bytes);
void swap_exit(struct cowvm *vm);
/* folio_alloc_swap: a free slot with SWAP_HAS_CACHE set for the page about to be added to the
 * swap cache; entry.val 0 when the device is full. */
swp_entry_t get_swap_page(struct cowvm *vm);
int swap_duplicate(struct cowvm *vm, swp_entry_t entry);   /* 0, or -ENOMEM at SWAP_MAP_MAX */
void swap_free(struct cowvm *vm, swp_entry_t entry);       /* one swap PTE fewer */
void put_swap_folio(struct cowvm *vm, swp_entry_t entry);  /* the cache lets go of the slot */
int swapcache_prepare(struct cowvm *vm, swp_entry_t entry); /* 0, -EEXIST (cached), -ENOENT (free) */
int __swap_count(struct cowvm *vm, swp_entry_t entry);     /* swap PTEs naming the slot */
void free_swap_and_cache(struct cowvm *vm, swp_entry_t entry);
bool folio_free_swap(struct cowvm *vm, struct page *page); /* page locked */
void free_swap_cache(struct cowvm *vm, struct page *page); /* after unmapping: drop it from the cache */
bool vm_swap_full(struct cowvm *vm);
int swap_writepage(struct cowvm *vm, struct page *page);   /* 0 or -EIO / -ENOSPC */
int swap_read_folio(struct cowvm *vm, struct page *page, swp_entry_t entry); /* 0 or -EIO */

/* ---- swap_state.c ---------------------------------------------------------------------------- */
int add_to_swap_cache(struct cowvm *vm, struct page *page, swp_entry_t entry);
void __delete_from_swap_cache(struct cowvm *vm, struct page *page);
void __delete_from_swap_cache_locked(struct swap_info_struct *si, struct page *page); /* si->lock */
void delete_from_swap_cache(struct cowvm *vm, struct page *page);
struct page *swap_cache_get_folio(struct cowvm *vm, swp_entry_t entry); /* + a reference, or NULL */
bool add_to_swap(struct cowvm *vm, struct page *page);
/* swapin (read_swap_cache_async): the slot's page, locked, with a reference: from the cache
 * (*major false) or read from the device into a new swap-cache page (*major true).  NULL with
 * *err: -ENOMEM (no frame), -EIO (the read failed), -ENOENT (the slot was freed meanwhile). */
struct page *swapin_locked(struct cowvm *vm, struct mm_struct *mm, swp_entry_t entry, bool *major,
			   int *err);
void lock_page(struct page *page);

/* ---- vmscan.c -------------------------------------------------------------------------------- */
/* reclaim_pages: shrink_folio_list over pages the caller holds a reference on (MADV_PAGEOUT);
 * the references are dropped.  Returns the pages freed. */
struct reclaim_list {
	int nr;
	struct page *pages[32];
};
uint64_t reclaim_pages(struct cowvm *vm, struct reclaim_list *list);
/* try_to_free_pages / shrink_node: free about nr pages from the LRU lists.  Returns pages freed. */
uint64_t try_to_free_pages(struct cowvm *vm, uint64_t nr, bool kswapd);

/*
 * Watermarks on the machine's free frames (zone->_watermark): min = nr_frames / 128 (at least
 * 16), low = min + min/4, high = min + min/2, as __setup_per_zone_wmarks spaces them.  Below low
 * an allocation wakes kswapd, which reclaims until high; a fault whose allocation fails
 * reclaims directly before it gives up with VM_FAULT_OOM.
 */
struct kswapd {
	pthread_t thread;
	pthread_mutex_t lock;           /* the fields below */
	pthread_cond_t wait;            /* kswapd_wait */
	bool stop, wakeup;
	pthread_mutex_t running;        /* held while kswapd reclaims; cowvm_check takes it */
	uint64_t wmark_min, wmark_low, wmark_high;
};
int kswapd_run(struct cowvm *vm);
void kswapd_stop(struct cowvm *vm);
void wakeup_kswapd(struct cowvm *vm);
void kswapd_pause(struct cowvm *vm);  /* cowvm_check: no reclaim by kswapd meanwhile */
void kswapd_resume(struct cowvm *vm);
/* alloc_page / alloc_zeroed_user_page for the fault path (GFP_HIGHUSER: may reclaim): wakes
 * kswapd below the low watermark; when no frame is left, direct reclaim and one retry.  Caller
 * holds no spinlock, no page lock and no anon_vma lock. */
struct page *alloc_page_may_reclaim(struct cowvm *vm, bool zeroed);

/* ---- memcontrol.c: swap charges and reclaim within a group ------------------------------------ */
int mem_cgroup_try_charge_swap(struct cowvm *vm, struct page *page, swp_entry_t entry); /* 0/-ENOMEM */
void mem_cgroup_uncharge_swap(struct swap_info_struct *si, uint64_t off); /* si->lock held */
long mem_cgroup_get_nr_swap_pages(struct mem_cgroup *memcg);
bool mem_cgroup_page_in_subtree(const struct page *page, const struct mem_cgroup *memcg);
void count_memcg_reclaim(struct mem_cgroup *memcg, uint64_t scanned, uint64_t stolen);
/* vmscan.c: shrink the LRU lists, looking only at pages charged to memcg's subtree, until nr
 * pages are freed or they have all been looked at a few times.  Returns the pages freed. */
uint64_t shrink_memcg(struct cowvm *vm, struct mem_cgroup *memcg, uint64_t nr);

/* ---- memory.c -------------------------------------------------------------------------------- */
/* swapin_range: fault every swap PTE of [start, end) of mm back in (dput before SNAP/MERGE);
 * mmap_lock held.  0 or -ENOMEM / -EIO. */
int swapin_range(struct mm_struct *mm, uint64_t start, uint64_t end);

#endif
