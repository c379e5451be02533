/*
 * mm.h - what the mm subsystems share: page accessors (refcount, mapcount, flags change only
 * here, and assert), frame <-> address conversions, counters, struct vm_fault, and the
 * functions each subsystem offers the others.  The file that defines a function is named in
 * the comment above its group, as Linux's file names.
 */
#ifndef COWVM_MM_H
#define COWVM_MM_H

#include <errno.h>
#include <string.h>

#include "mm_types.h"

/* ---- frames ----------------------------------------------------------------------------- */

static inline uint64_t page_to_pfn(const struct cowvm *vm, const struct page *page)
{
	return (uint64_t)(page - vm->mem_map);
}

static inline struct page *pfn_to_page(struct cowvm *vm, uint64_t pfn)
{
	return &vm->mem_map[pfn];
}

static inline bool pfn_valid(const struct cowvm *vm, uint64_t pfn)
{
	return pfn < vm->nr_frames;
}

static inline uint8_t *pfn_to_virt(const struct cowvm *vm, uint64_t pfn)
{
	return vm->phys + (pfn << PAGE_SHIFT);
}

static inline uint8_t *page_address(struct cowvm *vm, const struct page *page)
{
	return pfn_to_virt(vm, page_to_pfn(vm, page));
}

/* ---- page flags ---------------------------------------------------------------------------- */

static inline bool PageFlag(const struct page *page, enum pageflags bit)
{
	return atomic_load_explicit(&((struct page *)page)->flags, memory_order_acquire) & (1u << bit);
}
static inline void SetPageFlag(struct page *page, enum pageflags bit)
{
	atomic_fetch_or_explicit(&page->flags, 1u << bit, memory_order_acq_rel);
}
static inline void ClearPageFlag(struct page *page, enum pageflags bit)
{
	atomic_fetch_and_explicit(&page->flags, ~(1u << bit), memory_order_acq_rel);
}

/* For a page no other thread can reach yet (new and unmapped, or free under its list lock):
 * a plain read-modify-write, no lock prefix, as Linux's __SetPage* and atomic_set. */
static inline void __SetPageFlag(struct page *page, enum pageflags bit)
{
	atomic_store_explicit(&page->flags, atomic_load_explicit(&page->flags, memory_order_relaxed) | (1u << bit), memory_order_relaxed);
}
static inline void __ClearPageFlag(struct page *page, enum pageflags bit)
{
	atomic_store_explicit(&page->flags, atomic_load_explicit(&page->flags, memory_order_relaxed) & ~(1u << bit), memory_order_relaxed);
}

#define PageAnon(p) PageFlag(p, PG_anon)
#define PageAnonExclusive(p) PageFlag(p, PG_anon_exclusive)
#define SetPageAnonExclusive(p) SetPageFlag(p, PG_anon_exclusive)
#define ClearPageAnonExclusive(p) ClearPageFlag(p, PG_anon_exclusive)
#define PageShmem(p) PageFlag(p, PG_shmem)
#define PageLRU(p) PageFlag(p, PG_lru)
#define PageZero(p) PageFlag(p, PG_zero)
#define PageDirty(p) PageFlag(p, PG_dirty)
#define SetPageDirty(p) SetPageFlag(p, PG_dirty)

static inline bool trylock_page(struct page *page)
{
	return !(atomic_fetch_or_explicit(&page->flags, 1u << PG_locked, memory_order_acquire) &
		 (1u << PG_locked));
}
static inline void unlock_page(struct page *page)
{
	atomic_fetch_and_explicit(&page->flags, ~(1u << PG_locked), memory_order_release);
}

/* ---- references and mappings ------------------------------------------------------------------
 * Rule (reference/linux-cow.md §2): every mapcount is paired with one reference; the reference
 * goes up before the mapcount on map and down after it on unmap.
 */

static inline int page_ref_count(const struct page *page)
{
	return atomic_load_explicit(&((struct page *)page)->_refcount, memory_order_acquire);
}

static inline int page_mapcount(const struct page *page)
{
	return atomic_load_explicit(&((struct page *)page)->_mapcount, memory_order_acquire);
}

static inline void get_page(struct page *page)
{
	int old = atomic_fetch_add_explicit(&page->_refcount, 1, memory_order_relaxed);
	if (unlikely(old <= 0))
		bug("get_page on a page with refcount %d", old);
}

/* folio_try_get: a reference unless the page is being freed (found on a list, not through a
 * mapping). */
static inline bool get_page_unless_zero(struct page *page)
{
	int old = atomic_load_explicit(&page->_refcount, memory_order_relaxed);
	do {
		if (old <= 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&page->_refcount, &old, old + 1,
							memory_order_acq_rel, memory_order_relaxed));
	return true;
}

/*
 * The caller holds the new mapping's reference already, so refcount > 0.  (Comparing the old
 * mapcount with a fresh refcount would race with unmaps in other processes, which drop a
 * mapcount and then a reference between the two reads; the checker compares them exactly.)
 */
static inline void page_mapcount_inc(struct page *page)
{
	int old = atomic_fetch_add_explicit(&page->_mapcount, 1, memory_order_relaxed);
	if (unlikely(old < 0 || page_ref_count(page) <= 0))
		bug("mapcount %d on a page with refcount %d", old + 1, page_ref_count(page));
}

/* Returns the mapcount left. */
static inline int page_mapcount_dec(struct page *page)
{
	int old = atomic_fetch_sub_explicit(&page->_mapcount, 1, memory_order_acq_rel);
	if (unlikely(old <= 0))
		bug("mapcount underflow (%d)", old);
	return old - 1;
}

void put_page(struct cowvm *vm, struct page *page); /* page_alloc.c: frees on the last ref */

/* ---- counters -------------------------------------------------------------------------------- */

extern __thread int stat_slot __attribute__((tls_model("initial-exec")));
int stat_slot_claim(void); /* vmstat.c: this thread's slot, NR_STAT_SLOTS when none is free */

static inline int this_stat_slot(void)
{
	return likely(stat_slot >= 0) ? stat_slot : stat_slot_claim();
}

static inline void count_vm_events(struct cowvm *vm, enum vm_event_item item, uint64_t n)
{
	int slot = this_stat_slot();
	_Atomic uint64_t *c = &vm->stats[slot].events[item];
	if (likely(slot < NR_STAT_SLOTS))
		atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline void count_vm_event(struct cowvm *vm, enum vm_event_item item)
{
	count_vm_events(vm, item, 1);
}

static inline void mod_node_page_state(struct cowvm *vm, enum node_stat_item item, long delta)
{
	int slot = this_stat_slot();
	_Atomic long *c = &vm->stats[slot].node[item];
	if (likely(slot < NR_STAT_SLOTS))
		atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + delta,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(c, delta, memory_order_relaxed);
}

uint64_t global_vm_event(struct cowvm *vm, enum vm_event_item item);
long global_node_page_state(struct cowvm *vm, enum node_stat_item item);

static inline void add_mm_counter(struct mm_struct *mm, enum mm_counter member, long value)
{
	atomic_fetch_add_explicit(&mm->rss_stat[member], value, memory_order_relaxed);
}

static inline long get_mm_counter(struct mm_struct *mm, enum mm_counter member)
{
	return atomic_load_explicit(&mm->rss_stat[member], memory_order_relaxed);
}

/* ---- VMAs ------------------------------------------------------------------------------------ */

static inline uint64_t linear_page_index(const struct vm_area_struct *vma, uint64_t addr)
{
	return ((addr - vma->vm_start) >> PAGE_SHIFT) + vma->vm_pgoff;
}

static inline bool vma_is_anonymous_private(const struct vm_area_struct *vma)
{
	return vma->vm_file == NULL;
}

static inline bool is_cow_mapping(unsigned long flags)
{
	return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
}

/* ---- the fault path (memory.c) ------------------------------------------------------------- */

#define FAULT_FLAG_WRITE   0x0001u
#define FAULT_FLAG_USER    0x0040u
#define FAULT_FLAG_REMOTE  0x0080u
#define FAULT_FLAG_UNSHARE 0x0400u
#define FAULT_FLAG_UNUSE   0x10000u /* cowvm's: swapoff / swapin_range bring a page back (unuse_pte) */

#define VM_FAULT_OOM     0x0001u
#define VM_FAULT_SIGBUS  0x0002u
#define VM_FAULT_MAJOR   0x0004u
#define VM_FAULT_SIGSEGV 0x0040u
#define VM_FAULT_NOPAGE  0x0100u
#define VM_FAULT_RETRY   0x0400u
#define VM_FAULT_ERROR (VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV)

/* The fault being handled, with the trail of functions it went through for the tracer. */
struct vm_fault {
	struct vm_area_struct *vma;
	struct task_struct *task;
	uint64_t address;               /* page aligned */
	uint64_t real_address;
	unsigned flags;                 /* FAULT_FLAG_* */
	uint64_t pgoff;
	pte_t *pte;                     /* the PTE slot, once the table exists */
	pte_t orig_pte;
	const char *path[COWVM_TRACE_MAX_PATH];
	int npath;
	uint64_t old_pfn, new_pfn;
};

static inline void trace_step(struct vm_fault *vmf, const char *fn)
{
	if (vmf->npath < COWVM_TRACE_MAX_PATH)
		vmf->path[vmf->npath++] = fn;
}

unsigned handle_mm_fault(struct vm_area_struct *vma, uint64_t address, unsigned flags,
			 struct task_struct *task);
/* What the CPU's trap handler does (arch/x86/fault.c): VMA lookup, access_error, handle_mm_fault.
 * Returns 0 when resolved, else the VM_FAULT_* / VM_FAULT_SIGSEGV reason. */
unsigned do_user_addr_fault(struct task_struct *task, uint64_t address, bool write, bool user);

/* ---- page tables (memory.c) ------------------------------------------------------------------- */

/*
 * A PTE of this table changed its frame (mapped, replaced, zapped): dput's MERGE looks only at
 * tables marked since the SNAP, so its cost follows what changed, not the size of the range.
 */
#define SNAP_OLD_UNKNOWN (~0ull) /* not a PTE: the old value was not given */
void snapshot_record(struct mm_struct *mm, uint64_t addr, pte_t old); /* snapshot.c */
/* Do two PTEs hold the same page (none, the same frame, the same swap slot, or a swap slot
 * whose swap-cache page is the other's frame)?  snapshot.c; takes the swap lock. */
bool snapshot_same_pte(struct cowvm *vm, pte_t a, pte_t b);
/*
 * It is also where cowvm_snapshot's dirty log learns of a change: a PTE table's page names its
 * mm (mapping) and the address it starts at (index), so the PTE's address is known here.  old
 * is what the PTE held before (restore maps it back without looking at the snapshot's tables);
 * mark_table_changed, without it, makes restore look it up.  Caller holds that mm's
 * page_table_lock and its mmap_lock (read or write).
 */
static inline void mark_table_changed_from(struct cowvm *vm, const pte_t *ptep, pte_t old)
{
	uint64_t off = (uint64_t)((const uint8_t *)ptep - vm->phys);
	struct page *table = &vm->mem_map[off >> PAGE_SHIFT];
	if (!(atomic_load_explicit(&table->flags, memory_order_relaxed) & (1u << PG_dirty)))
		atomic_fetch_or_explicit(&table->flags, 1u << PG_dirty, memory_order_relaxed);
	struct mm_struct *mm = table->mapping;
	if (unlikely(mm && mm->snap_base))
		snapshot_record(mm, table->index + (((off & (PAGE_SIZE - 1)) / sizeof(pte_t)) << PAGE_SHIFT),
				old);
	else if (unlikely(mm && mm->image_of))
		atomic_store_explicit(&mm->image_of->image_changed, true, memory_order_relaxed);
}

static inline void mark_table_changed(struct cowvm *vm, const pte_t *ptep)
{
	mark_table_changed_from(vm, ptep, SNAP_OLD_UNKNOWN);
}

/* The table a frame holds; a pointer beyond memory is a corrupted page table. */
static inline pte_t *table_of(struct cowvm *vm, uint64_t pfn)
{
	if (unlikely(!pfn_valid(vm, pfn)))
		bug("page-table entry points at frame %llu beyond memory", (unsigned long long)pfn);
	return (pte_t *)pfn_to_virt(vm, pfn);
}
pte_t *pte_offset_map(struct mm_struct *mm, uint64_t addr); /* NULL when no PTE table */
pte_t *pte_alloc_map(struct mm_struct *mm, uint64_t addr);  /* NULL on OOM */
int copy_page_range(struct vm_area_struct *dst_vma, struct vm_area_struct *src_vma);
struct mmu_gather;
void unmap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma, uint64_t start, uint64_t end);
void free_pgtables(struct mmu_gather *tlb, struct mm_struct *mm, uint64_t start, uint64_t end,
		   uint64_t floor, uint64_t ceiling);
void free_pgd(struct mm_struct *mm);
struct page *vm_normal_page(struct vm_area_struct *vma, uint64_t addr, pte_t pte);

/* pagewalk.c: fn on each PTE slot of [start, end) whose table exists; PTL held; non-0 stops. */
typedef int (*pte_entry_fn)(pte_t *pte, uint64_t addr, void *arg);
int walk_page_range(struct mm_struct *mm, uint64_t start, uint64_t end, pte_entry_fn fn, void *arg);

/* mmu_gather: pages and tables unmapped under the lock, freed after the TLB flush. */
#define GATHER_BATCH 256
struct mmu_gather {
	struct mm_struct *mm;
	uint64_t start, end;            /* range whose translations must be flushed */
	bool need_flush;
	int nr;
	struct page *pages[GATHER_BATCH];
};
void tlb_gather_mmu(struct mmu_gather *tlb, struct mm_struct *mm);
void tlb_remove_page(struct mmu_gather *tlb, struct page *page, uint64_t addr);
void tlb_flush_range(struct mmu_gather *tlb, uint64_t start, uint64_t end);
void tlb_finish_mmu(struct mmu_gather *tlb);

/* ---- the software MMU (arch/x86/tlb.c) --------------------------------------------------------- */

extern __thread struct task_struct *current __attribute__((tls_model("initial-exec")));
void flush_tlb_mm_range(struct mm_struct *mm, uint64_t start, uint64_t end);
static inline void flush_tlb_mm(struct mm_struct *mm) { flush_tlb_mm_range(mm, 0, TASK_SIZE_MAX); }
void tlb_init_shootdown(void);
void mmu_init(struct task_struct *t); /* a new task's TLB layout and inline-hit permission */
void mmu_section_enter(struct task_struct *t);
void mmu_section_exit(struct task_struct *t);
/* An access by the task (user) or by the kernel on its behalf (uaccess): 0, or the fault reason. */
unsigned mmu_access(struct task_struct *task, uint64_t addr, void *buf, size_t len, bool write,
		    bool user, uint64_t *fault_addr);

/* ---- page allocator (page_alloc.c) -------------------------------------------------------------- */

int page_alloc_init(struct cowvm *vm, uint64_t phys_bytes, unsigned flags, unsigned nr_cpus);
void page_alloc_exit(struct cowvm *vm);
struct page *alloc_pages(struct cowvm *vm, unsigned order);
static inline struct page *alloc_page(struct cowvm *vm) { return alloc_pages(vm, 0); }
struct page *alloc_zeroed_user_page(struct cowvm *vm);
void free_pages(struct cowvm *vm, struct page *page, unsigned order);
uint64_t nr_free_pages(struct cowvm *vm);

/* ---- memory cgroups (memcontrol.c) ------------------------------------------------------------ */

#define MEMCG_DATA_SHMEM      0x1ul /* page->memcg_data: charged as a shmem page */
#define MEMCG_DATA_FLAGS_MASK 0x7ul
#define MEMCG_CHARGE_SHMEM  0x1u /* mem_cgroup_charge: a shared-memory page */
#define MEMCG_CHARGE_NOWAIT 0x2u /* the caller holds a spinlock: no reclaim, no OOM kill */

int mem_cgroup_init(struct cowvm *vm);
void mem_cgroup_exit_vm(struct cowvm *vm);
void mem_cgroup_mm_init(struct mm_struct *mm);
void mem_cgroup_fork(struct mm_struct *child, struct mm_struct *parent);
void mem_cgroup_mm_free(struct mm_struct *mm);
int mem_cgroup_charge(struct page *page, struct mm_struct *mm, unsigned flags); /* 0 or -ENOMEM */
void __mem_cgroup_uncharge(struct page *page);
static inline void mem_cgroup_uncharge(struct page *page)
{
	if (page->memcg_data)
		__mem_cgroup_uncharge(page);
}
void count_memcg_event_mm(struct mm_struct *mm, enum vm_event_item item);
/* The reclaim hook: vmscan's shrink path over one group's pages (returns pages freed). */
uint64_t try_to_free_mem_cgroup_pages(struct mem_cgroup *memcg, uint64_t nr_pages, bool may_swap);
int mem_cgroup_check(struct cowvm *vm, bool (*is_user_page)(void *arg, uint64_t pfn), void *arg,
		     char *why, size_t whylen);

/* check_stable_address_space: the OOM reaper took this mm's memory; its faults are SIGBUS. */
static inline bool mm_oom_reaped(struct mm_struct *mm)
{
	return unlikely(atomic_load_explicit(&mm->flags, memory_order_relaxed) & MMF_OOM_SKIP);
}

/* ---- LRU (swap.c) ------------------------------------------------------------------------------- */

void lru_cache_add_active(struct cowvm *vm, struct page *page);
void lru_cache_add_inactive(struct cowvm *vm, struct page *page);
void lru_activate(struct cowvm *vm, struct page *page);
void lru_rotate_reclaimable(struct cowvm *vm, struct page *page); /* to the inactive tail */
void lru_cache_del(struct cowvm *vm, struct page *page);
void lru_deactivate(struct cowvm *vm, struct page *page);

/* ---- mlock and the unevictable list (mlock.c) ------------------------------------------------- */

/* mlock_page / munlock_page: one more / one fewer PTE of a VM_LOCKED VMA maps the page (the
 * PTE's PTL held).  The first moves it to the unevictable list, the last back to the inactive. */
void mlock_page(struct cowvm *vm, struct page *page);
void munlock_page(struct cowvm *vm, struct page *page);
/* The same for a mapping that is being made or removed in vma (rmap's hook). */
static inline void mlock_vma_page(struct cowvm *vm, struct page *page, struct vm_area_struct *vma)
{
	if (unlikely(vma->vm_flags & VM_LOCKED))
		mlock_page(vm, page);
}
static inline void munlock_vma_page(struct cowvm *vm, struct page *page, struct vm_area_struct *vma)
{
	if (unlikely(vma->vm_flags & VM_LOCKED))
		munlock_page(vm, page);
}
/* The present pages of [start, end) of vma join (lock) or leave the unevictable list. */
void mlock_vma_pages_range(struct vm_area_struct *vma, uint64_t start, uint64_t end, bool lock);
bool can_do_mlock(struct mm_struct *mm);
bool mlock_future_ok(struct mm_struct *mm, unsigned long vm_flags, uint64_t bytes);
static inline bool capable(struct mm_struct *mm, uint64_t cap) { return (mm->caps & cap) != 0; }
/* __mm_populate: fault in [start, start + len) of every VMA as mlock and MAP_POPULATE do (not
 * VM_LOCKONFAULT VMAs, not PROT_NONE ones: -EFAULT); takes mmap_lock for reading.
 * With ignore_errors, a failing VMA is skipped.  Returns 0 or -errno. */
int __mm_populate(struct task_struct *task, uint64_t start, uint64_t len, bool ignore_errors);
int populate_vma_page_range(struct task_struct *task, struct vm_area_struct *vma, uint64_t start,
			    uint64_t end); /* gup.c: one VMA, mmap_lock held */

/* ---- reverse mapping (rmap.c) ----------------------------------------------------------------- */

int anon_vma_prepare(struct vm_area_struct *vma);
int anon_vma_clone(struct vm_area_struct *dst, struct vm_area_struct *src);
int anon_vma_fork(struct vm_area_struct *vma, struct vm_area_struct *pvma);
void unlink_anon_vmas(struct vm_area_struct *vma);
void page_add_new_anon_rmap(struct page *page, struct vm_area_struct *vma, uint64_t address,
			    bool exclusive);
void page_dup_rmap(struct page *page, struct vm_area_struct *vma);
/* A page from the swap cache gets a mapping (folio_add_anon_rmap_pte, or folio_add_new_anon_rmap
 * for a page just read, which is not anonymous yet).  PTL held; the caller's reference becomes
 * the mapping's. */
void folio_add_anon_rmap_pte(struct page *page, struct vm_area_struct *vma, uint64_t address,
			     bool exclusive);
void page_add_file_rmap(struct page *page, struct vm_area_struct *vma);
void page_remove_rmap(struct cowvm *vm, struct page *page, struct vm_area_struct *vma);
void page_move_anon_rmap(struct page *page, struct vm_area_struct *vma);
/* Calls fn for each VMA that may map the page and the address there; stops when fn returns non-0. */
typedef int (*rmap_one_fn)(struct page *page, struct vm_area_struct *vma, uint64_t addr, void *arg);
int rmap_walk(struct cowvm *vm, struct page *page, rmap_one_fn fn, void *arg);
void put_anon_vma(struct anon_vma *anon_vma);

/* ---- get_user_pages (gup.c) ------------------------------------------------------------------ */

struct page *get_user_page_vma_remote(struct task_struct *task, uint64_t addr, bool write);
void put_user_page_ref(struct cowvm *vm, struct page *page);

/* ---- shared anonymous memory (shmem.c) --------------------------------------------------------- */

struct shmem_inode *shmem_create(struct cowvm *vm, uint64_t size_pages);
void shmem_get(struct shmem_inode *inode);
void shmem_put(struct cowvm *vm, struct shmem_inode *inode);
unsigned shmem_fault(struct vm_fault *vmf, struct page **pagep);
struct page *shmem_find_get_page(struct shmem_inode *inode, uint64_t pgoff);
void shmem_link_vma(struct vm_area_struct *vma);
void shmem_unlink_vma(struct vm_area_struct *vma);
void shmem_punch_hole(struct cowvm *vm, struct shmem_inode *inode, uint64_t start, uint64_t end);

/* ---- VMAs (mmap.c) ----------------------------------------------------------------------------- */

struct vm_area_struct *find_vma(struct mm_struct *mm, uint64_t addr); /* first with vm_end > addr */
size_t vma_index(struct mm_struct *mm, uint64_t addr);            /* index of first with vm_end > addr */
struct vm_area_struct *vm_area_alloc(struct mm_struct *mm);
struct vm_area_struct *vm_area_dup(struct vm_area_struct *orig);
void vm_area_free(struct vm_area_struct *vma);
int vma_insert(struct mm_struct *mm, struct vm_area_struct *vma);
void vma_remove(struct mm_struct *mm, struct vm_area_struct *vma);
pgprot_t vm_get_page_prot(unsigned long vm_flags);
int split_vma(struct mm_struct *mm, struct vm_area_struct *vma, uint64_t addr, bool new_below);
struct vm_area_struct *vma_merge_neighbours(struct mm_struct *mm, struct vm_area_struct *vma);
struct vm_area_struct *vma_modify_flags(struct mm_struct *mm, struct vm_area_struct *vma,
					uint64_t start, uint64_t end, unsigned long newflags);
int do_munmap(struct mm_struct *mm, uint64_t start, uint64_t len);
int mmap_region(struct mm_struct *mm, uint64_t addr, uint64_t len, unsigned long vm_flags);
int copy_vma_cow(struct mm_struct *dst, struct vm_area_struct *src, uint64_t delta, bool wipe);
void destroy_snapshot(struct mm_struct *snap); /* dput.c */
/* snapshot.c: free every snapshot of an mm whose last thread left (before exit_mmap). */
void exit_snapshots(struct mm_struct *mm);
/* snapshot.c: would cowvm_restore keep the task VMA v for the saved r (same range, flags,
 * offset, object and anon_vma)? */
bool snapshot_vma_matches(const struct vm_area_struct *v, const struct snapshot_vma *r);
void exit_mmap(struct mm_struct *mm);
int populate_range(struct task_struct *task, uint64_t start, uint64_t end);
/* faultin_page_range (gup.c): fault in [start, end) as MADV_POPULATE_READ/WRITE do; mmap_lock
 * held for reading.  Returns 0 or -ENOMEM (hole, OOM), -EINVAL (VMA refuses the access),
 * -EFAULT (SIGBUS/SIGSEGV). */
int faultin_page_range(struct task_struct *task, uint64_t start, uint64_t end, bool write);
#define STACK_GUARD_GAP (256ull << PAGE_SHIFT) /* stack_guard_gap: 256 pages */
uint64_t mmap_min_addr(struct mm_struct *mm);
int expand_downwards(struct vm_area_struct *vma, uint64_t address);
void vm_stat_account(struct mm_struct *mm, unsigned long flags, long npages);
int64_t get_unmapped_area(struct mm_struct *mm, uint64_t hint, uint64_t len, bool fixed);
struct vm_area_struct *vma_merge_new_range(struct mm_struct *mm, struct vm_area_struct *vma);
void update_hiwater_rss(struct mm_struct *mm);
void update_hiwater_vm(struct mm_struct *mm);
struct mm_struct *mm_alloc(struct cowvm *vm);
void mm_free(struct mm_struct *mm);

/* ---- transparent huge pages (huge_memory.c) ------------------------------------------------ */

bool thp_config_valid(unsigned flags); /* the COWVM_CONFIG_THP_* bits name known values */
/* May vma (with vm_flags) hold a PMD-sized anonymous folio?  in_pf: for a fault, which checks
 * its own 2 MiB range; otherwise the VMA must hold an aligned 2 MiB. */
bool thp_vma_allowable(const struct vm_area_struct *vma, unsigned long vm_flags, bool in_pf);

/* ---- tracing ---------------------------------------------------------------------------------- */

/*
 * The step stream (cowvm_set_trace).  Every macro below tests vm->trace first, so with no
 * trace function a step costs one predictable branch and its facts are never computed.
 *   TRACE_SCOPE(vm, task, "fn", facts...)   ENTER now, LEAVE when the C scope ends (any return)
 *   trace_call(vm, "fn", facts...)          a step with nothing inside it: ENTER + LEAVE
 *   trace_note(vm, "what", "why", facts...) what a step found; trace_decide: the rule chosen
 * task may be NULL: the event then carries the pid of the innermost scope that named one.
 * facts: TF_NUM("key", n), TF_HEX, TF_BOOL, TF_TEXT("key", "word"), TF_FRAME("key", pfn)
 * (NO_FRAME for none; the zero page is named "zero"), at most COWVM_TRACE_MAX_FACTS.
 */
#define NO_FRAME UINT64_MAX
#define TF_NUM(k, v)   { .key = (k), .type = COWVM_FACT_NUMBER, .value = (uint64_t)(v) }
#define TF_HEX(k, v)   { .key = (k), .type = COWVM_FACT_HEX, .value = (uint64_t)(v) }
#define TF_BOOL(k, v)  { .key = (k), .type = COWVM_FACT_BOOL, .value = (v) ? 1 : 0 }
#define TF_TEXT(k, s)  { .key = (k), .type = COWVM_FACT_TEXT, .text = (s) }
#define TF_FRAME(k, v) { .key = (k), .type = COWVM_FACT_FRAME, .value = (uint64_t)(v) }
#define TRACE_FACTS(...) ((const struct cowvm_trace_fact[]){ __VA_ARGS__ }), \
	(int)(sizeof((const struct cowvm_trace_fact[]){ __VA_ARGS__ }) / sizeof(struct cowvm_trace_fact))

struct trace_scope {
	struct cowvm *vm;               /* NULL: not tracing when the scope began */
	const char *name;
	int pid, tid;                   /* the enclosing scope's task, restored at LEAVE */
};
void trace_enter_(struct cowvm *vm, struct task_struct *task, struct trace_scope *scope,
		  const char *name, const struct cowvm_trace_fact *facts, int nfacts);
void trace_leave_(struct trace_scope *scope);
void trace_call_(struct cowvm *vm, const char *name, const struct cowvm_trace_fact *facts, int nfacts);
void trace_note_(struct cowvm *vm, const char *what, const char *why, int decision,
		 const struct cowvm_trace_fact *facts, int nfacts);
static inline void trace_scope_end(struct trace_scope *scope)
{
	if (unlikely(scope->vm != NULL))
		trace_leave_(scope);
}
#define TRACE_CAT_(a, b) a##b
#define TRACE_CAT(a, b) TRACE_CAT_(a, b)
#define TRACE_SCOPE(vm_, task_, name_, ...) \
	struct trace_scope __attribute__((cleanup(trace_scope_end))) TRACE_CAT(trace_scope_, __LINE__) = { 0 }; \
	if (unlikely((vm_)->trace != NULL)) \
		trace_enter_((vm_), (task_), &TRACE_CAT(trace_scope_, __LINE__), (name_), TRACE_FACTS(__VA_ARGS__))
#define trace_call(vm_, name_, ...) do { \
	if (unlikely((vm_)->trace != NULL)) \
		trace_call_((vm_), (name_), TRACE_FACTS(__VA_ARGS__)); \
} while (0)
#define trace_note(vm_, what_, why_, ...) do { \
	if (unlikely((vm_)->trace != NULL)) \
		trace_note_((vm_), (what_), (why_), 0, TRACE_FACTS(__VA_ARGS__)); \
} while (0)
#define trace_decide(vm_, what_, why_, ...) do { \
	if (unlikely((vm_)->trace != NULL)) \
		trace_note_((vm_), (what_), (why_), 1, TRACE_FACTS(__VA_ARGS__)); \
} while (0)
static inline bool tracing(struct cowvm *vm)
{
	return unlikely(vm->trace != NULL);
}

void trace_fault(struct vm_fault *vmf, unsigned result, bool user);
/* An event that is not a fault (dput's phases): path names what ran over [addr, +len). */
void trace_event(struct task_struct *task, uint64_t addr, const char *const *path, int npath,
		 const char *outcome);

#endif
