/*
 * memcontrol.c - memory cgroups, the cgroup v2 memory controller of Linux's mm/memcontrol.c:
 * the tree of groups under the root, which group each process is in, charging every anonymous
 * and shmem page to a group when it is allocated and uncharging it when it is freed, the
 * limits (memory.max, memory.high, memory.swap.max), the events and statistics, and the group's
 * OOM killer (mm/oom_kill.c's select_bad_process / oom_badness / oom_kill_process, with the
 * OOM reaper's unmapping done at once).
 *
 * Invariants kept here (the checker verifies them, mem_cgroup_check):
 *  - every allocated anon/shmem page has page->memcg_data naming exactly one group, and no
 *    other frame has one; the zero page is never charged;
 *  - a group's local counters (nr_anon, nr_shmem) are the pages whose memcg_data names it;
 *  - usage (memory.current, in pages) of a group is the sum of the local pages of the group and
 *    all its descendants, online or removed; so a parent's usage >= the sum of its children's;
 *  - a removed group (rmdir) lingers, offline, until its last charged page is freed (Linux's
 *    "zombie" memcg), counted in its parent meanwhile;
 *  - each process's mm->memcg is an online group; nr_procs counts the mms that name it.
 *
 * Locking: cgroup_mutex (vm->cgroup_mutex) guards the tree, nr_procs, mm->memcg changes (with
 * the mm's mmap_lock held for writing) and serialises OOM kills (Linux's oom_lock).  It comes
 * after mmap_lock and before task_lock; other processes' mmap_locks are only try-locked under
 * it.  Charging and uncharging take no lock: the counters are atomics, a page counter charge
 * is an add that is undone when it overshoots (page_counter_try_charge).
 *
 * Charging is exact, page by page: Linux charges in batches of 64 pages through a per-CPU
 * stock, so its memory.current runs ahead by up to 64 pages per CPU (docs/fidelity.md).
 */
#include <ctype.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>

#include "swap.h"

#define MAX_RECLAIM_RETRIES 16
#define PAGE_COUNTER_MAX (UINT64_MAX / PAGE_SIZE) /* "max", in pages */

/* memory.events */
/* memory.events, then memory.swap.events (Linux's enum memcg_memory_event order) */
enum memcg_memory_event {
	MEMCG_LOW, MEMCG_HIGH, MEMCG_MAX, MEMCG_OOM, MEMCG_OOM_KILL, MEMCG_OOM_GROUP_KILL,
	MEMCG_SWAP_HIGH, MEMCG_SWAP_MAX, MEMCG_SWAP_FAIL,
	MEMCG_NR_MEMORY_EVENTS
};
#define MEMCG_NR_MEMORY_FILE_EVENTS (MEMCG_OOM_GROUP_KILL + 1) /* the ones memory.events shows */

static const char *const memcg_event_names[MEMCG_NR_MEMORY_EVENTS] = {
	"low", "high", "max", "oom", "oom_kill", "oom_group_kill", "high", "max", "fail",
};

struct mem_cgroup {
	struct cowvm *vm;
	struct mem_cgroup *parent;      /* NULL for the root; fixed */
	char name[256];                 /* fixed */
	struct list_head children;      /* online children, by sibling; cgroup_mutex */
	struct list_head sibling;       /* in parent->children while online; cgroup_mutex */
	struct list_head all;           /* in vm->memcgs; cgroup_mutex */
	bool online;                    /* false after rmdir; cgroup_mutex */
	unsigned nr_child_structs;      /* groups, online or not, whose parent this is; cgroup_mutex */
	uint64_t nr_procs;              /* mms whose memcg this is; cgroup_mutex */
	/* the memory page_counter: pages, hierarchical */
	_Atomic uint64_t usage;
	_Atomic uint64_t watermark;     /* highest usage (v1 memory.max_usage_in_bytes) */
	_Atomic uint64_t failcnt;       /* failed charges at this level (v1 memory.failcnt) */
	_Atomic uint64_t max, high;     /* pages */
	/* the swap page_counter: slots, hierarchical (charged at add_to_swap, uncharged when the
	 * slot is freed, as v2) */
	_Atomic uint64_t swap_usage, swap_max;
	_Atomic int oom_group;
	_Atomic uint64_t events[MEMCG_NR_MEMORY_EVENTS];       /* this group and below */
	_Atomic uint64_t events_local[MEMCG_NR_MEMORY_EVENTS]; /* this group's own */
	/* local statistics: pages charged to this group itself, and its processes' faults */
	_Atomic long nr_anon, nr_shmem;
	_Atomic long nr_swap;           /* swap slots whose swap_cgroup names this group */
	_Atomic uint64_t pgfault, pgmajfault;
	_Atomic uint64_t pgscan, pgsteal; /* reclaim of this group's own pages (direct / limit) */
	/* the checker's tallies (checker only) */
	long check_anon, check_shmem, check_swap;
};

/* cgroup_disable=memory (COWVM_CONFIG_NO_MEMCG) */
static inline bool mem_cgroup_disabled(const struct cowvm *vm)
{
	return vm->flags & COWVM_CONFIG_NO_MEMCG;
}

static inline struct mem_cgroup *page_memcg(const struct page *page)
{
	return (struct mem_cgroup *)(page->memcg_data & ~(uintptr_t)MEMCG_DATA_FLAGS_MASK);
}

static bool mem_cgroup_is_root(const struct mem_cgroup *memcg)
{
	return memcg->parent == NULL;
}

static bool mem_cgroup_is_descendant(const struct mem_cgroup *memcg, const struct mem_cgroup *root)
{
	for (; memcg; memcg = memcg->parent)
		if (memcg == root)
			return true;
	return false;
}

static struct mem_cgroup *memcg_alloc(struct cowvm *vm, struct mem_cgroup *parent, const char *name)
{
	struct mem_cgroup *memcg = calloc(1, sizeof(*memcg));
	if (!memcg)
		return NULL;
	memcg->vm = vm;
	memcg->parent = parent;
	snprintf(memcg->name, sizeof(memcg->name), "%s", name);
	INIT_LIST_HEAD(&memcg->children);
	INIT_LIST_HEAD(&memcg->sibling);
	memcg->online = true;
	atomic_store(&memcg->max, PAGE_COUNTER_MAX);
	atomic_store(&memcg->high, PAGE_COUNTER_MAX);
	atomic_store(&memcg->swap_max, PAGE_COUNTER_MAX);
	list_add_tail(&memcg->all, &vm->memcgs);
	if (parent) {
		list_add_tail(&memcg->sibling, &parent->children);
		parent->nr_child_structs++;
	}
	return memcg;
}

/* Free the removed groups that no page and no group names any more.  cgroup_mutex held. */
static void memcg_sweep_offline(struct cowvm *vm)
{
	bool freed;
	do {
		freed = false;
		struct mem_cgroup *memcg, *next;
		list_for_each_entry_safe(memcg, next, &vm->memcgs, all) {
			if (memcg->online || memcg->nr_child_structs ||
			    atomic_load_explicit(&memcg->nr_anon, memory_order_acquire) ||
			    atomic_load_explicit(&memcg->nr_shmem, memory_order_acquire) ||
			    atomic_load_explicit(&memcg->nr_swap, memory_order_acquire))
				continue;
			list_del(&memcg->all);
			memcg->parent->nr_child_structs--;
			free(memcg);
			freed = true;
		}
	} while (freed);
}

int mem_cgroup_init(struct cowvm *vm)
{
	pthread_mutex_init(&vm->cgroup_mutex, NULL);
	INIT_LIST_HEAD(&vm->memcgs);
	vm->root_mem_cgroup = memcg_alloc(vm, NULL, "");
	return vm->root_mem_cgroup ? 0 : -ENOMEM;
}

/* After every task exited and every page was freed. */
void mem_cgroup_exit_vm(struct cowvm *vm)
{
	struct mem_cgroup *memcg, *next;
	list_for_each_entry_safe(memcg, next, &vm->memcgs, all)
		free(memcg);
	pthread_mutex_destroy(&vm->cgroup_mutex);
}

/* ---- processes ------------------------------------------------------------------------------- */

/* A new mm starts in the root group (cowvm_spawn; fork moves it with mem_cgroup_fork). */
void mem_cgroup_mm_init(struct mm_struct *mm)
{
	struct cowvm *vm = mm->vm;
	pthread_mutex_lock(&vm->cgroup_mutex);
	mm->memcg = vm->root_mem_cgroup;
	mm->memcg->nr_procs++;
	pthread_mutex_unlock(&vm->cgroup_mutex);
}

/* fork: the child joins its parent's group (cgroup_post_fork).  The child is not visible yet. */
void mem_cgroup_fork(struct mm_struct *child, struct mm_struct *parent)
{
	struct cowvm *vm = child->vm;
	pthread_mutex_lock(&vm->cgroup_mutex);
	child->memcg->nr_procs--;
	child->memcg = parent->memcg;
	child->memcg->nr_procs++;
	pthread_mutex_unlock(&vm->cgroup_mutex);
}

/* The mm is being freed: it leaves its group.  Its pages were uncharged as they were freed. */
void mem_cgroup_mm_free(struct mm_struct *mm)
{
	struct cowvm *vm = mm->vm;
	pthread_mutex_lock(&vm->cgroup_mutex);
	mm->memcg->nr_procs--;
	mm->memcg = NULL;
	pthread_mutex_unlock(&vm->cgroup_mutex);
}

/* ---- events and statistics -------------------------------------------------------------------- */

static void memcg_memory_event(struct mem_cgroup *memcg, enum memcg_memory_event event)
{
	atomic_fetch_add_explicit(&memcg->events_local[event], 1, memory_order_relaxed);
	do {
		atomic_fetch_add_explicit(&memcg->events[event], 1, memory_order_relaxed);
	} while ((memcg = memcg->parent) && !mem_cgroup_is_root(memcg));
}

/* count_memcg_event_mm: a fault of the mm's process (PGFAULT, PGMAJFAULT) in its group. */
void count_memcg_event_mm(struct mm_struct *mm, enum vm_event_item item)
{
	struct mem_cgroup *memcg = mm->memcg;
	if (unlikely(!memcg || mem_cgroup_disabled(mm->vm)))
		return;
	atomic_fetch_add_explicit(item == PGMAJFAULT ? &memcg->pgmajfault : &memcg->pgfault, 1,
				  memory_order_relaxed);
}

/* ---- the page counter ------------------------------------------------------------------------- */

/*
 * page_counter_try_charge - add nr_pages to memcg and every ancestor; when one would go above
 * its max, undo what was added and return that group in *fail.  Lock-free: a racing charge may
 * see a level briefly above its max and fail too, as Linux's does.
 */
static bool page_counter_try_charge(struct mem_cgroup *memcg, uint64_t nr_pages,
				    struct mem_cgroup **fail)
{
	struct mem_cgroup *c;
	for (c = memcg; c; c = c->parent) {
		uint64_t new = atomic_fetch_add_explicit(&c->usage, nr_pages, memory_order_relaxed) + nr_pages;
		if (unlikely(new > atomic_load_explicit(&c->max, memory_order_relaxed))) {
			atomic_fetch_sub_explicit(&c->usage, nr_pages, memory_order_relaxed);
			atomic_fetch_add_explicit(&c->failcnt, 1, memory_order_relaxed);
			*fail = c;
			for (struct mem_cgroup *u = memcg; u != c; u = u->parent)
				atomic_fetch_sub_explicit(&u->usage, nr_pages, memory_order_relaxed);
			return false;
		}
		if (unlikely(new > atomic_load_explicit(&c->watermark, memory_order_relaxed)))
			atomic_store_explicit(&c->watermark, new, memory_order_relaxed);
	}
	return true;
}

static void page_counter_uncharge(struct mem_cgroup *memcg, uint64_t nr_pages)
{
	for (struct mem_cgroup *c = memcg; c; c = c->parent)
		atomic_fetch_sub_explicit(&c->usage, nr_pages, memory_order_relaxed);
}

/* mem_cgroup_margin: pages that can still be charged to memcg before it reaches memory.max. */
static uint64_t mem_cgroup_margin(struct mem_cgroup *memcg)
{
	uint64_t usage = atomic_load(&memcg->usage), max = atomic_load(&memcg->max);
	return usage < max ? max - usage : 0;
}

/* ---- reclaim within a group ------------------------------------------------------------------ */

/*
 * mem_cgroup_page_in_subtree - is the page charged to memcg or one of its descendants?  The
 * LRU scan's filter (vmscan.c filters the machine's LRU lists by page_memcg instead of keeping
 * a list per group: docs/memcg.md).  Caller holds lru_lock with the page on an LRU list, so
 * its charge and its group stay (put_page takes it off the list before it uncharges).
 */
bool mem_cgroup_page_in_subtree(const struct page *page, const struct mem_cgroup *memcg)
{
	return page->memcg_data && mem_cgroup_is_descendant(page_memcg(page), memcg);
}

/*
 * mem_cgroup_get_nr_swap_pages - how many more swap slots memcg may take: the least room
 * below memory.swap.max from memcg up to the root, and no more than the device has free.
 * 0 without a swap device.
 */
long mem_cgroup_get_nr_swap_pages(struct mem_cgroup *memcg)
{
	struct cowvm *vm = memcg->vm;
	struct swap_info_struct *si = vm->swap;
	if (!si)
		return 0;
	spin_lock(&si->lock);
	long nr = (long)(si->max - 1 - si->inuse_pages);
	spin_unlock(&si->lock);
	if (mem_cgroup_disabled(vm))
		return nr;
	for (struct mem_cgroup *m = memcg; m && !mem_cgroup_is_root(m); m = m->parent) {
		uint64_t usage = atomic_load(&m->swap_usage), max = atomic_load(&m->swap_max);
		long room = usage < max ? (long)(max - usage > LONG_MAX ? LONG_MAX : max - usage) : 0;
		if (room < nr)
			nr = room;
	}
	return nr;
}

/*
 * try_to_free_mem_cgroup_pages - reclaim at least nr_pages (SWAP_CLUSTER_MAX at least, as
 * Linux) of memcg's and its descendants' pages through vmscan's shrink path; returns the pages
 * freed.  Anonymous pages can only go to swap: without may_swap, without a device, or with no
 * room left below memory.swap.max, nothing is scanned (can_reclaim_anon_pages), and the OOM
 * path runs.  Called with no spinlock and no page lock held; takes mmap_locks by trylock only.
 */
uint64_t try_to_free_mem_cgroup_pages(struct mem_cgroup *memcg, uint64_t nr_pages, bool may_swap)
{
	struct cowvm *vm = memcg->vm;
	if (!may_swap || !vm->swap || mem_cgroup_get_nr_swap_pages(memcg) <= 0)
		return 0;
	if (nr_pages < 32)
		nr_pages = 32;
	return shrink_memcg(vm, memcg, nr_pages);
}

/* vmscan counts the pages it scanned and freed of memcg's own (memory.stat pgscan / pgsteal). */
void count_memcg_reclaim(struct mem_cgroup *memcg, uint64_t scanned, uint64_t stolen)
{
	if (!memcg)
		return;
	atomic_fetch_add_explicit(&memcg->pgscan, scanned, memory_order_relaxed);
	atomic_fetch_add_explicit(&memcg->pgsteal, stolen, memory_order_relaxed);
}

/* ---- swap charges (v2: a separate swap counter; a slot is charged from add_to_swap until it
 * is freed, to the group of the page that was written to it) ------------------------------ */

/*
 * mem_cgroup_try_charge_swap - the page got the slot entry (folio_alloc_swap): charge one
 * slot to the page's group and every ancestor, and record the group in swap_cgroup.  When a
 * level is at memory.swap.max, count max and fail events in the page's group and refuse
 * (-ENOMEM): the caller gives the slot back and keeps the page in memory.  entry 0 (the
 * device is full) counts a fail event and returns -ENOMEM.  Page locked.
 */
int mem_cgroup_try_charge_swap(struct cowvm *vm, struct page *page, swp_entry_t entry)
{
	struct swap_info_struct *si = vm->swap;
	struct mem_cgroup *memcg = page->memcg_data ? page_memcg(page) : NULL;
	if (!memcg || mem_cgroup_disabled(vm))
		return entry.val ? 0 : -ENOMEM;
	if (!entry.val) {
		memcg_memory_event(memcg, MEMCG_SWAP_FAIL);
		return -ENOMEM;
	}
	for (struct mem_cgroup *c = memcg; c; c = c->parent) {
		uint64_t new = atomic_fetch_add_explicit(&c->swap_usage, 1, memory_order_relaxed) + 1;
		if (!mem_cgroup_is_root(c) && new > atomic_load_explicit(&c->swap_max, memory_order_relaxed)) {
			for (struct mem_cgroup *u = memcg; ; u = u->parent) {
				atomic_fetch_sub_explicit(&u->swap_usage, 1, memory_order_relaxed);
				if (u == c)
					break;
			}
			memcg_memory_event(memcg, MEMCG_SWAP_MAX);
			memcg_memory_event(memcg, MEMCG_SWAP_FAIL);
			return -ENOMEM;
		}
	}
	atomic_fetch_add_explicit(&memcg->nr_swap, 1, memory_order_relaxed);
	spin_lock(&si->lock);
	si->swap_cgroup[swp_offset(entry)] = memcg;
	spin_unlock(&si->lock);
	return 0;
}

/*
 * mem_cgroup_uncharge_swap - the slot at off was freed (its map went to 0): give its charge
 * back to the group recorded for it.  si->lock held.  The local counter drops last: a removed
 * group may be freed as soon as nothing is charged to it.
 */
void mem_cgroup_uncharge_swap(struct swap_info_struct *si, uint64_t off)
{
	struct mem_cgroup *memcg = si->swap_cgroup[off];
	if (!memcg)
		return;
	si->swap_cgroup[off] = NULL;
	for (struct mem_cgroup *c = memcg; c; c = c->parent)
		atomic_fetch_sub_explicit(&c->swap_usage, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&memcg->nr_swap, 1, memory_order_release);
}

/* ---- the OOM killer within a group ------------------------------------------------------------- */

/* A process the killer found: its mm, whether this call holds its mmap_lock. */
struct oom_victim {
	struct mm_struct *mm;
	bool locked;    /* we took its mmap_lock for reading (by trylock) and must drop it */
	bool held;      /* the caller already holds it (the faulting process) */
};

/*
 * oom_badness - how much memory killing the process frees, in pages: RSS + swap entries +
 * page-table pages (mm_pgtables_bytes counts the tables below the PGD).  LONG_MIN for a process
 * that may not be chosen (already killed and reaped: MMF_OOM_SKIP).  oom_score_adj is 0 in
 * cowvm, so nothing is added.
 */
static long oom_badness(struct mm_struct *mm)
{
	if (atomic_load(&mm->flags) & MMF_OOM_SKIP)
		return LONG_MIN;
	long points = get_mm_counter(mm, MM_FILEPAGES) + get_mm_counter(mm, MM_ANONPAGES) +
		      get_mm_counter(mm, MM_SHMEMPAGES) + get_mm_counter(mm, MM_SWAPENTS);
	points += atomic_load(&mm->pgtables_pages) - 1;
	return points;
}

/*
 * The OOM reaper's work, done at once: unmap every mapping of the victim so its pages go back
 * (pages other processes map, or pins hold, stay theirs and stay charged), and mark the mm
 * reaped.  Linux's reaper skips shared mappings (the process dies anyway); cowvm unmaps them
 * too, so that no later access of the victim's tasks can hit a TLB entry: each one faults and
 * gets the SIGBUS of a reaped address space.  Caller holds the mm's mmap_lock (either mode).
 */
static void oom_reap_task_mm(struct mm_struct *mm)
{
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		struct mmu_gather tlb;
		tlb_gather_mmu(&tlb, mm);
		unmap_page_range(&tlb, vma, vma->vm_start, vma->vm_end);
		tlb_finish_mmu(&tlb);
	}
}

/*
 * Try to take a victim's mmap_lock for reading; the caller holds task_lock, so the mm cannot
 * be freed meanwhile (exit takes the mmap_lock for writing before it leaves the mm list).
 */
static void oom_victim_lock(struct oom_victim *v, struct mm_struct *mm, struct mm_struct *held_mm)
{
	v->mm = mm;
	v->held = mm == held_mm;
	v->locked = false;
	if (!v->held)
		for (int tries = 0; tries < 10 && !v->locked; tries++) {
			v->locked = down_read_trylock(&mm->mmap_lock);
			if (!v->locked)
				sched_yield();
		}
}

/* __oom_kill_process: SIGKILL the victim's process, count the kill, reap its memory. */
static void __oom_kill_process(struct oom_victim *v)
{
	struct mm_struct *mm = v->mm;
	atomic_fetch_or(&mm->flags, MMF_OOM_VICTIM);
	memcg_memory_event(mm->memcg, MEMCG_OOM_KILL);
	if (v->held || v->locked)
		oom_reap_task_mm(mm);
	/* Reaped, or (its mmap_lock busy) given up on as the reaper does after its retries: its
	 * memory then goes when it exits. */
	atomic_fetch_or(&mm->flags, MMF_OOM_SKIP);
	if (v->locked)
		up_read(&mm->mmap_lock);
}

/* mem_cgroup_get_oom_group: the highest group between the victim's and the OOM domain that has
 * memory.oom.group set, or NULL. */
static struct mem_cgroup *mem_cgroup_get_oom_group(struct mem_cgroup *victim, struct mem_cgroup *domain)
{
	struct mem_cgroup *oom_group = NULL;
	if (mem_cgroup_is_root(victim) || !mem_cgroup_is_descendant(victim, domain))
		return NULL;
	for (struct mem_cgroup *m = victim; m; m = m->parent) {
		if (atomic_load(&m->oom_group))
			oom_group = m;
		if (m == domain)
			break;
	}
	return oom_group;
}

/*
 * mem_cgroup_out_of_memory - the OOM killer for memcg: choose the process of memcg's subtree
 * with the highest badness (select_bad_process; on a tie the one met last, as Linux's scan),
 * kill it, and with memory.oom.group every process of that group's subtree.  held_mm is the
 * process whose fault is charging (its mmap_lock is held by the caller), or NULL.  Returns true
 * when memory may have been freed (something was killed, or the charge would now fit).
 * Caller holds cgroup_mutex.
 */
static bool mem_cgroup_out_of_memory(struct mem_cgroup *memcg, struct mm_struct *held_mm)
{
	struct cowvm *vm = memcg->vm;
	if (mem_cgroup_margin(memcg) >= 1)
		return true;
	if (held_mm && (atomic_load(&held_mm->flags) & MMF_OOM_VICTIM))
		return true; /* task_is_dying: it is on its way out and frees its memory */

	struct mm_struct *mm, *chosen = NULL;
	long chosen_points = LONG_MIN;
	pthread_mutex_lock(&vm->task_lock);
	list_for_each_entry(mm, &vm->mms, mmlist) {
		if (!mem_cgroup_is_descendant(mm->memcg, memcg))
			continue;
		long points = oom_badness(mm);
		if (points == LONG_MIN || points < chosen_points)
			continue;
		chosen = mm;
		chosen_points = points;
	}
	if (!chosen) {
		pthread_mutex_unlock(&vm->task_lock);
		return false;
	}
	struct mem_cgroup *oom_group = mem_cgroup_get_oom_group(chosen->memcg, memcg);
	size_t nr = 0, cap = 1;
	struct oom_victim one, *victims = &one;
	if (oom_group) {
		cap = 0;
		list_for_each_entry(mm, &vm->mms, mmlist)
			cap++;
		victims = calloc(cap, sizeof(*victims));
		if (!victims) { /* kill the chosen one only */
			victims = &one;
			cap = 1;
			oom_group = NULL;
		}
	}
	oom_victim_lock(&victims[nr++], chosen, held_mm);
	if (oom_group)
		list_for_each_entry(mm, &vm->mms, mmlist)
			if (mm != chosen && mem_cgroup_is_descendant(mm->memcg, oom_group) &&
			    !(atomic_load(&mm->flags) & MMF_OOM_VICTIM) && nr < cap)
				oom_victim_lock(&victims[nr++], mm, held_mm);
	pthread_mutex_unlock(&vm->task_lock);

	if (oom_group)
		memcg_memory_event(oom_group, MEMCG_OOM_GROUP_KILL);
	for (size_t i = 0; i < nr; i++)
		__oom_kill_process(&victims[i]);
	if (victims != &one)
		free(victims);
	return true;
}

/* mem_cgroup_oom: count the oom event and run the killer under oom_lock. */
static bool mem_cgroup_oom(struct mem_cgroup *memcg, struct mm_struct *held_mm)
{
	memcg_memory_event(memcg, MEMCG_OOM);
	pthread_mutex_lock(&memcg->vm->cgroup_mutex);
	bool ret = mem_cgroup_out_of_memory(memcg, held_mm);
	pthread_mutex_unlock(&memcg->vm->cgroup_mutex);
	return ret;
}

/* ---- charging --------------------------------------------------------------------------------- */

/*
 * try_charge_memcg - charge nr_pages to memcg, as Linux's: when a level is at memory.max,
 * count a max event, reclaim within that group, and retry (once more after "draining", then
 * up to MAX_RECLAIM_RETRIES times without progress); then the group's OOM killer, and retry
 * again while it makes progress.  A dying process (the killer chose it) gets -ENOMEM rather
 * than looping.  After a charge, each group above memory.high counts a high event and is
 * reclaimed (mem_cgroup_handle_over_high, done here instead of on return to user space).
 */
static int try_charge_memcg(struct mem_cgroup *memcg, struct mm_struct *mm, uint64_t nr_pages,
			    unsigned flags)
{
	int nr_retries = MAX_RECLAIM_RETRIES;
	bool drained = false, passed_oom = false;
	struct mem_cgroup *over;

	for (;;) {
		if (likely(page_counter_try_charge(memcg, nr_pages, &over)))
			break;
		if (flags & MEMCG_CHARGE_NOWAIT) /* cannot block: no reclaim, no OOM */
			return -ENOMEM;
		memcg_memory_event(over, MEMCG_MAX);
		uint64_t reclaimed = try_to_free_mem_cgroup_pages(over, nr_pages, true);
		if (mem_cgroup_margin(over) >= nr_pages)
			continue;
		if (!drained) { /* drain_all_stock: cowvm keeps no per-CPU stock */
			drained = true;
			continue;
		}
		if (reclaimed)
			continue;
		if (nr_retries-- > 0)
			continue;
		if (passed_oom && mm && (atomic_load(&mm->flags) & MMF_OOM_VICTIM))
			return -ENOMEM; /* task_is_dying */
		if (!mem_cgroup_oom(over, mm))
			return -ENOMEM;
		/* The killer chose the charging process itself.  Linux would retry, the charge
		 * would fit in what the reaper freed, and the task would die on its way back to
		 * user space; here the charge fails at once so that nothing is mapped into the
		 * reaped address space and the access reports the OOM. */
		if (mm && (atomic_load(&mm->flags) & MMF_OOM_VICTIM))
			return -ENOMEM;
		passed_oom = true;
		nr_retries = MAX_RECLAIM_RETRIES;
	}

	if (unlikely(!(flags & MEMCG_CHARGE_NOWAIT))) {
		/* reclaim_high, for each group from memcg up to (not including) the root */
		for (struct mem_cgroup *m = memcg; m && !mem_cgroup_is_root(m); m = m->parent) {
			if (atomic_load_explicit(&m->usage, memory_order_relaxed) <=
			    atomic_load_explicit(&m->high, memory_order_relaxed))
				continue;
			memcg_memory_event(m, MEMCG_HIGH);
			try_to_free_mem_cgroup_pages(m, nr_pages, true);
		}
	}
	return 0;
}

/*
 * mem_cgroup_charge - charge a new page (refcount 1, not yet visible to anyone) to the group
 * of mm's process, before it is mapped or added to a cache.  flags: MEMCG_CHARGE_SHMEM for a
 * shared-memory page, MEMCG_CHARGE_NOWAIT when the caller holds a spinlock (no reclaim, no
 * OOM kill).  The caller holds mm's mmap_lock (unless NOWAIT); the OOM killer may kill mm's own
 * process or others of its group.  Returns 0, or -ENOMEM with nothing charged; the caller
 * then frees the page (put_page: it is not charged, so nothing is uncharged).
 */
int mem_cgroup_charge(struct page *page, struct mm_struct *mm, unsigned flags)
{
	struct mem_cgroup *memcg = mm->memcg;
	if (unlikely(mem_cgroup_disabled(mm->vm)))
		return 0;
	if (unlikely(page->memcg_data))
		bug("charging frame %llu twice", (unsigned long long)page_to_pfn(mm->vm, page));
	int err = try_charge_memcg(memcg, mm, 1, flags);
	if (err)
		return err;
	/* commit_charge */
	page->memcg_data = (uintptr_t)memcg | ((flags & MEMCG_CHARGE_SHMEM) ? MEMCG_DATA_SHMEM : 0);
	atomic_fetch_add_explicit((flags & MEMCG_CHARGE_SHMEM) ? &memcg->nr_shmem : &memcg->nr_anon, 1,
				  memory_order_relaxed);
	return 0;
}

/*
 * __mem_cgroup_uncharge - the page's last reference is gone (put_page calls this when
 * memcg_data is set): give its charge back to its group, which may have been moved from or
 * removed since.  The group's local counter drops last: a removed group may be freed (by a
 * sweep under cgroup_mutex) as soon as it reads zero.
 */
void __mem_cgroup_uncharge(struct page *page)
{
	uintptr_t data = page->memcg_data;
	struct mem_cgroup *memcg = page_memcg(page);
	page->memcg_data = 0;
	page_counter_uncharge(memcg, 1);
	atomic_fetch_sub_explicit((data & MEMCG_DATA_SHMEM) ? &memcg->nr_shmem : &memcg->nr_anon, 1,
				  memory_order_release);
}

/* ---- the public interface: the tree ----------------------------------------------------------- */

cowvm_cgroup_t *cowvm_cgroup_root(cowvm_t *vm)
{
	return vm ? vm->root_mem_cgroup : NULL;
}

static bool valid_cgroup_name(const char *name)
{
	size_t len = strnlen(name, 256);
	if (len == 0 || len > 255 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return !strchr(name, '/') && !strchr(name, '\n');
}

static struct mem_cgroup *find_child(struct mem_cgroup *parent, const char *name, size_t len)
{
	struct mem_cgroup *child;
	list_for_each_entry(child, &parent->children, sibling)
		if (strlen(child->name) == len && !memcmp(child->name, name, len))
			return child;
	return NULL;
}

cowvm_cgroup_t *cowvm_cgroup_create(cowvm_cgroup_t *parent, const char *name)
{
	if (!parent || !name || !valid_cgroup_name(name)) {
		errno = EINVAL;
		return NULL;
	}
	struct cowvm *vm = parent->vm;
	struct mem_cgroup *memcg = NULL;
	int err = 0;
	pthread_mutex_lock(&vm->cgroup_mutex);
	memcg_sweep_offline(vm);
	if (!parent->online)
		err = ENOENT;
	else if (find_child(parent, name, strlen(name)))
		err = EEXIST;
	else if (!(memcg = memcg_alloc(vm, parent, name)))
		err = ENOMEM;
	pthread_mutex_unlock(&vm->cgroup_mutex);
	if (err)
		errno = err;
	return memcg;
}

int cowvm_cgroup_destroy(cowvm_cgroup_t *memcg)
{
	if (!memcg || mem_cgroup_is_root(memcg))
		return -EINVAL;
	struct cowvm *vm = memcg->vm;
	int err = 0;
	pthread_mutex_lock(&vm->cgroup_mutex);
	if (!memcg->online)
		err = -ENOENT;
	else if (memcg->nr_procs || !list_empty(&memcg->children))
		err = -EBUSY;
	if (!err) {
		memcg->online = false;
		list_del(&memcg->sibling);
		INIT_LIST_HEAD(&memcg->sibling);
		memcg_sweep_offline(vm);
	}
	pthread_mutex_unlock(&vm->cgroup_mutex);
	return err;
}

cowvm_cgroup_t *cowvm_cgroup_lookup(cowvm_t *vm, const char *path)
{
	if (!vm || !path) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&vm->cgroup_mutex);
	struct mem_cgroup *memcg = vm->root_mem_cgroup;
	const char *p = path;
	while (memcg && *p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, "/");
		memcg = find_child(memcg, p, len);
		p += len;
	}
	pthread_mutex_unlock(&vm->cgroup_mutex);
	if (!memcg)
		errno = ENOENT;
	return memcg;
}

cowvm_cgroup_t *cowvm_task_cgroup(cowvm_task_t *t)
{
	if (!t) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&t->vm->cgroup_mutex);
	struct mem_cgroup *memcg = t->mm->memcg;
	pthread_mutex_unlock(&t->vm->cgroup_mutex);
	return memcg;
}

/*
 * cowvm_cgroup_attach - move t's whole process into memcg (writing its pid to cgroup.procs).
 * The pages it has stay charged where they are (cgroup v2 does not move charges); its new
 * pages are charged to memcg, even above memcg's limits (the limit applies to the next charge).
 * Takes the mm's mmap_lock for writing, so no fault of the process charges meanwhile.
 */
int cowvm_cgroup_attach(cowvm_cgroup_t *memcg, cowvm_task_t *t)
{
	if (!memcg || !t || t->vm != memcg->vm)
		return -EINVAL;
	struct cowvm *vm = memcg->vm;
	struct mm_struct *mm = t->mm;
	int err = 0;
	down_write(&mm->mmap_lock);
	pthread_mutex_lock(&vm->cgroup_mutex);
	if (!memcg->online) {
		err = -ENOENT;
	} else if (mm->memcg != memcg) {
		mm->memcg->nr_procs--;
		mm->memcg = memcg;
		memcg->nr_procs++;
	}
	pthread_mutex_unlock(&vm->cgroup_mutex);
	up_write(&mm->mmap_lock);
	return err;
}

int cowvm_task_oom_killed(const cowvm_task_t *t)
{
	if (!t)
		return -EINVAL;
	return (atomic_load(&t->mm->flags) & MMF_OOM_VICTIM) ? 1 : 0;
}

/* The path below the root.  cgroup_mutex or a stable tree. */
static int64_t memcg_path(struct mem_cgroup *memcg, char *buf, size_t size)
{
	char tmp[4096];
	size_t len = 0;
	tmp[0] = 0;
	for (struct mem_cgroup *m = memcg; m && !mem_cgroup_is_root(m); m = m->parent) {
		size_t n = strlen(m->name);
		if (len + n + 1 >= sizeof(tmp))
			break;
		memmove(tmp + n + 1, tmp, len + 1);
		tmp[0] = '/';
		memcpy(tmp + 1, m->name, n);
		len += n + 1;
	}
	if (!len)
		return snprintf(buf, size, "/");
	return snprintf(buf, size, "%s", tmp);
}

int64_t cowvm_cgroup_path(cowvm_cgroup_t *memcg, char *buf, size_t size)
{
	if (!memcg || (!buf && size))
		return -EINVAL;
	return memcg_path(memcg, buf, size);
}

/* ---- the public interface: limits --------------------------------------------------------------- */

static uint64_t bytes_to_pages(uint64_t bytes)
{
	return bytes == COWVM_CGROUP_UNLIMITED ? PAGE_COUNTER_MAX : bytes / PAGE_SIZE;
}

static uint64_t pages_to_bytes(uint64_t pages)
{
	return pages >= PAGE_COUNTER_MAX ? COWVM_CGROUP_UNLIMITED : pages * PAGE_SIZE;
}

/*
 * memory_max_write: set the limit, then while the group is above it reclaim (giving up after
 * MAX_RECLAIM_RETRIES rounds without progress) and then OOM-kill until it fits or nothing is
 * left to kill.  memory_high_write: set it and reclaim, never kill.  No lock held on entry.
 */
static void memory_max_write(struct mem_cgroup *memcg, uint64_t max)
{
	int nr_reclaims = MAX_RECLAIM_RETRIES;
	bool drained = false;
	atomic_store(&memcg->max, max);
	for (;;) {
		uint64_t usage = atomic_load(&memcg->usage);
		if (usage <= max)
			break;
		if (!drained) {
			drained = true;
			continue;
		}
		if (nr_reclaims) {
			if (!try_to_free_mem_cgroup_pages(memcg, usage - max, true))
				nr_reclaims--;
			continue;
		}
		if (!mem_cgroup_oom(memcg, NULL))
			break;
	}
}

static void memory_high_write(struct mem_cgroup *memcg, uint64_t high)
{
	int nr_retries = MAX_RECLAIM_RETRIES;
	atomic_store(&memcg->high, high);
	for (;;) {
		uint64_t usage = atomic_load(&memcg->usage);
		if (usage <= high)
			break;
		if (!try_to_free_mem_cgroup_pages(memcg, usage - high, true) && !nr_retries--)
			break;
	}
}

int cowvm_cgroup_set(cowvm_cgroup_t *memcg, int file, uint64_t value)
{
	if (!memcg || mem_cgroup_is_root(memcg))
		return -EINVAL;
	switch (file) {
	case COWVM_CGROUP_MEMORY_MAX:
		memory_max_write(memcg, bytes_to_pages(value));
		return 0;
	case COWVM_CGROUP_MEMORY_HIGH:
		memory_high_write(memcg, bytes_to_pages(value));
		return 0;
	case COWVM_CGROUP_MEMORY_SWAP_MAX:
		atomic_store(&memcg->swap_max, bytes_to_pages(value));
		return 0;
	case COWVM_CGROUP_MEMORY_OOM_GROUP:
		if (value > 1)
			return -EINVAL;
		atomic_store(&memcg->oom_group, (int)value);
		return 0;
	}
	return -EINVAL;
}

int cowvm_cgroup_get(cowvm_cgroup_t *memcg, int file, uint64_t *value)
{
	if (!memcg || !value || mem_cgroup_is_root(memcg))
		return -EINVAL;
	switch (file) {
	case COWVM_CGROUP_MEMORY_MAX:
		*value = pages_to_bytes(atomic_load(&memcg->max));
		return 0;
	case COWVM_CGROUP_MEMORY_HIGH:
		*value = pages_to_bytes(atomic_load(&memcg->high));
		return 0;
	case COWVM_CGROUP_MEMORY_SWAP_MAX:
		*value = pages_to_bytes(atomic_load(&memcg->swap_max));
		return 0;
	case COWVM_CGROUP_MEMORY_OOM_GROUP:
		*value = (uint64_t)atomic_load(&memcg->oom_group);
		return 0;
	}
	return -EINVAL;
}

/* ---- the public interface: what a group's files show --------------------------------------------- */

static void fill_events(struct cowvm_cgroup_events *out, _Atomic uint64_t *ev)
{
	out->low = atomic_load(&ev[MEMCG_LOW]);
	out->high = atomic_load(&ev[MEMCG_HIGH]);
	out->max = atomic_load(&ev[MEMCG_MAX]);
	out->oom = atomic_load(&ev[MEMCG_OOM]);
	out->oom_kill = atomic_load(&ev[MEMCG_OOM_KILL]);
	out->oom_group_kill = atomic_load(&ev[MEMCG_OOM_GROUP_KILL]);
}

int cowvm_cgroup_info(cowvm_cgroup_t *memcg, struct cowvm_cgroup_info *out)
{
	if (!memcg || !out)
		return -EINVAL;
	struct cowvm *vm = memcg->vm;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&vm->cgroup_mutex);
	out->current = atomic_load(&memcg->usage) * PAGE_SIZE;
	out->swap_current = atomic_load(&memcg->swap_usage) * PAGE_SIZE;
	out->max = pages_to_bytes(atomic_load(&memcg->max));
	out->high = pages_to_bytes(atomic_load(&memcg->high));
	out->swap_max = pages_to_bytes(atomic_load(&memcg->swap_max));
	out->oom_group = atomic_load(&memcg->oom_group);
	out->nr_procs = memcg->nr_procs;
	fill_events(&out->events, memcg->events);
	fill_events(&out->events_local, memcg->events_local);
	out->local_pages = (uint64_t)(atomic_load(&memcg->nr_anon) + atomic_load(&memcg->nr_shmem));
	/* memory.stat is hierarchical: this group and every descendant, removed ones included */
	struct mem_cgroup *m;
	list_for_each_entry(m, &vm->memcgs, all) {
		if (!mem_cgroup_is_descendant(m, memcg))
			continue;
		if (m != memcg && m->online)
			out->nr_descendants++;
		out->anon += (uint64_t)atomic_load(&m->nr_anon) * PAGE_SIZE;
		out->shmem += (uint64_t)atomic_load(&m->nr_shmem) * PAGE_SIZE;
		out->pgfault += atomic_load(&m->pgfault);
		out->pgmajfault += atomic_load(&m->pgmajfault);
		out->pgscan += atomic_load(&m->pgscan);
		out->pgsteal += atomic_load(&m->pgsteal);
	}
	out->swap = out->swap_current;
	out->swap_events.high = atomic_load(&memcg->events[MEMCG_SWAP_HIGH]);
	out->swap_events.max = atomic_load(&memcg->events[MEMCG_SWAP_MAX]);
	out->swap_events.fail = atomic_load(&memcg->events[MEMCG_SWAP_FAIL]);
	pthread_mutex_unlock(&vm->cgroup_mutex);
	return 0;
}

struct textbuf {
	char *buf;
	size_t size, len;
};

static void __attribute__((format(printf, 2, 3))) put(struct textbuf *tb, const char *fmt, ...)
{
	va_list ap;
	size_t room = tb->len < tb->size ? tb->size - tb->len : 0;
	va_start(ap, fmt);
	int n = vsnprintf(room ? tb->buf + tb->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		tb->len += (size_t)n;
}

static void put_limit(struct textbuf *tb, uint64_t pages)
{
	if (pages >= PAGE_COUNTER_MAX)
		put(tb, "max\n");
	else
		put(tb, "%llu\n", (unsigned long long)(pages * PAGE_SIZE));
}

/* The LRU pages of memcg's subtree, for memory.stat's active_anon / inactive_anon / unevictable. */
static void memcg_lru_pages(struct mem_cgroup *memcg, uint64_t *active, uint64_t *inactive,
			    uint64_t *unevictable)
{
	struct cowvm *vm = memcg->vm;
	struct list_head *lists[3] = { &vm->lru_active_anon, &vm->lru_inactive_anon, &vm->lru_unevictable };
	uint64_t *counts[3] = { active, inactive, unevictable };
	spin_lock(&vm->lru_lock);
	for (int l = 0; l < 3; l++) {
		struct page *page;
		*counts[l] = 0;
		list_for_each_entry(page, lists[l], lru)
			if (page->memcg_data && mem_cgroup_is_descendant(page_memcg(page), memcg))
				(*counts[l])++;
	}
	spin_unlock(&vm->lru_lock);
}

static void render_stat(struct textbuf *tb, struct mem_cgroup *memcg, const struct cowvm_cgroup_info *in)
{
	uint64_t active, inactive, unevictable;
	memcg_lru_pages(memcg, &active, &inactive, &unevictable);
	/* the kernel's memory_stats[] order; what cowvm has no notion of reads 0 */
	put(tb, "anon %llu\n", (unsigned long long)in->anon);
	put(tb, "file 0\nkernel 0\nkernel_stack 0\npagetables 0\nsec_pagetables 0\npercpu 0\n"
		"sock 0\nvmalloc 0\n");
	put(tb, "shmem %llu\n", (unsigned long long)in->shmem);
	put(tb, "zswap 0\nzswapped 0\nfile_mapped 0\nfile_dirty 0\nfile_writeback 0\n"
		"swapcached 0\nanon_thp 0\nfile_thp 0\nshmem_thp 0\n");
	put(tb, "inactive_anon %llu\nactive_anon %llu\n", (unsigned long long)(inactive * PAGE_SIZE),
	    (unsigned long long)(active * PAGE_SIZE));
	put(tb, "inactive_file 0\nactive_file 0\n");
	put(tb, "unevictable %llu\n", (unsigned long long)(unevictable * PAGE_SIZE));
	put(tb, "slab_reclaimable 0\nslab_unreclaimable 0\nslab 0\n"
		"workingset_refault_anon 0\nworkingset_refault_file 0\nworkingset_activate_anon 0\n"
		"workingset_activate_file 0\nworkingset_restore_anon 0\nworkingset_restore_file 0\n"
		"workingset_nodereclaim 0\n");
	/* cowvm's reclaim of a group's pages is its limit (direct) reclaim */
	put(tb, "pgscan %llu\npgsteal %llu\npgscan_kswapd 0\npgscan_direct %llu\npgsteal_kswapd 0\n"
		"pgsteal_direct %llu\n", (unsigned long long)in->pgscan, (unsigned long long)in->pgsteal,
	    (unsigned long long)in->pgscan, (unsigned long long)in->pgsteal);
	put(tb, "pgfault %llu\npgmajfault %llu\n", (unsigned long long)in->pgfault,
	    (unsigned long long)in->pgmajfault);
}

static void render_events(struct textbuf *tb, const struct cowvm_cgroup_events *ev)
{
	const uint64_t v[MEMCG_NR_MEMORY_FILE_EVENTS] = { ev->low, ev->high, ev->max, ev->oom, ev->oom_kill,
						     ev->oom_group_kill };
	for (int i = 0; i < MEMCG_NR_MEMORY_FILE_EVENTS; i++)
		put(tb, "%s %llu\n", memcg_event_names[i], (unsigned long long)v[i]);
}

int64_t cowvm_cgroup_read(cowvm_cgroup_t *memcg, const char *file, char *buf, size_t size)
{
	if (!memcg || !file || (!buf && size))
		return -EINVAL;
	struct textbuf tb = { buf, size, 0 };
	if (size)
		buf[0] = 0;
	struct cowvm_cgroup_info in;
	cowvm_cgroup_info(memcg, &in);
	bool root = mem_cgroup_is_root(memcg);
	if (!strcmp(file, "memory.stat")) {
		render_stat(&tb, memcg, &in);
	} else if (!strcmp(file, "cgroup.procs")) {
		struct cowvm *vm = memcg->vm;
		struct mm_struct *mm;
		pthread_mutex_lock(&vm->cgroup_mutex);
		pthread_mutex_lock(&vm->task_lock);
		list_for_each_entry(mm, &vm->mms, mmlist)
			if (mm->memcg == memcg)
				put(&tb, "%d\n", mm->tgid);
		pthread_mutex_unlock(&vm->task_lock);
		pthread_mutex_unlock(&vm->cgroup_mutex);
	} else if (root) { /* the rest are CFTYPE_NOT_ON_ROOT */
		return -ENOENT;
	} else if (!strcmp(file, "memory.current")) {
		put(&tb, "%llu\n", (unsigned long long)in.current);
	} else if (!strcmp(file, "memory.swap.current")) {
		put(&tb, "%llu\n", (unsigned long long)in.swap_current);
	} else if (!strcmp(file, "memory.max")) {
		put_limit(&tb, atomic_load(&memcg->max));
	} else if (!strcmp(file, "memory.high")) {
		put_limit(&tb, atomic_load(&memcg->high));
	} else if (!strcmp(file, "memory.swap.max")) {
		put_limit(&tb, atomic_load(&memcg->swap_max));
	} else if (!strcmp(file, "memory.swap.events")) {
		put(&tb, "high %llu\nmax %llu\nfail %llu\n", (unsigned long long)in.swap_events.high,
		    (unsigned long long)in.swap_events.max, (unsigned long long)in.swap_events.fail);
	} else if (!strcmp(file, "memory.oom.group")) {
		put(&tb, "%d\n", in.oom_group);
	} else if (!strcmp(file, "memory.events")) {
		render_events(&tb, &in.events);
	} else if (!strcmp(file, "memory.events.local")) {
		render_events(&tb, &in.events_local);
	} else {
		return -ENOENT;
	}
	return (int64_t)tb.len;
}

/* page_counter_memparse: "max", or a number with an optional K/M/G/T/P/E suffix (memparse),
 * surrounding whitespace allowed; the result in bytes. */
static int page_counter_memparse(const char *text, uint64_t *bytes)
{
	while (isspace((unsigned char)*text))
		text++;
	size_t len = strlen(text);
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	if (len == 3 && !memcmp(text, "max", 3)) {
		*bytes = COWVM_CGROUP_UNLIMITED;
		return 0;
	}
	if (!len || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 0);
	if (errno)
		return -EINVAL;
	int shift = 0;
	switch (*end) {
	case 'E': case 'e': shift += 10; /* fall through */
	case 'P': case 'p': shift += 10; /* fall through */
	case 'T': case 't': shift += 10; /* fall through */
	case 'G': case 'g': shift += 10; /* fall through */
	case 'M': case 'm': shift += 10; /* fall through */
	case 'K': case 'k': shift += 10; end++; break;
	default: break;
	}
	if (end != text + len)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		v = UINT64_MAX; /* the kernel caps at PAGE_COUNTER_MAX */
	else
		v <<= shift;
	*bytes = v;
	return 0;
}

int cowvm_cgroup_write(cowvm_cgroup_t *memcg, const char *file, const char *text)
{
	if (!memcg || !file || !text)
		return -EINVAL;
	if (mem_cgroup_is_root(memcg))
		return -ENOENT;
	uint64_t v;
	int which;
	if (!strcmp(file, "memory.max"))
		which = COWVM_CGROUP_MEMORY_MAX;
	else if (!strcmp(file, "memory.high"))
		which = COWVM_CGROUP_MEMORY_HIGH;
	else if (!strcmp(file, "memory.swap.max"))
		which = COWVM_CGROUP_MEMORY_SWAP_MAX;
	else if (!strcmp(file, "memory.oom.group"))
		which = COWVM_CGROUP_MEMORY_OOM_GROUP;
	else
		return -ENOENT;
	if (which == COWVM_CGROUP_MEMORY_OOM_GROUP) {
		char *end;
		errno = 0;
		long b = strtol(text, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (errno || end == text || *end || (b != 0 && b != 1))
			return -EINVAL;
		v = (uint64_t)b;
	} else {
		int err = page_counter_memparse(text, &v);
		if (err)
			return err;
	}
	return cowvm_cgroup_set(memcg, which, v);
}

/* ---- the checker --------------------------------------------------------------------------------- */

/*
 * mem_cgroup_check - every user page (is_user_page) is charged to exactly one known group and
 * no other frame is; each group's local counters equal its pages; usage equals the local pages
 * of its subtree; parents >= the sum of their children; processes are in online groups.
 * Quiescent machine; takes cgroup_mutex and task_lock.  0, or -EUCLEAN with why filled.
 */
int mem_cgroup_check(struct cowvm *vm, bool (*is_user_page)(void *arg, uint64_t pfn), void *arg,
		     char *why, size_t whylen)
{
	int err = 0;
#define CHECK_FAIL(...) do { snprintf(why, whylen, __VA_ARGS__); err = -EUCLEAN; goto out; } while (0)
	pthread_mutex_lock(&vm->cgroup_mutex);
	struct mem_cgroup *m, *c;
	list_for_each_entry(m, &vm->memcgs, all)
		m->check_anon = m->check_shmem = m->check_swap = 0;
	struct swap_info_struct *si = vm->swap;
	for (uint64_t off = 1; si && off < si->max; off++) {
		struct mem_cgroup *owner = si->swap_cgroup[off];
		if (!owner) {
			if (si->swap_map[off] && si->swap_map[off] != SWAP_MAP_BAD && !mem_cgroup_disabled(vm))
				CHECK_FAIL("used swap slot %llu is charged to no memory cgroup",
					   (unsigned long long)off);
			continue;
		}
		if (!si->swap_map[off])
			CHECK_FAIL("free swap slot %llu is charged to a memory cgroup", (unsigned long long)off);
		bool known = false;
		list_for_each_entry(m, &vm->memcgs, all)
			if (m == owner) {
				known = true;
				break;
			}
		if (!known)
			CHECK_FAIL("swap slot %llu is charged to an unknown memory cgroup", (unsigned long long)off);
		owner->check_swap++;
	}
	for (uint64_t pfn = 0; pfn < vm->nr_frames; pfn++) {
		struct page *page = pfn_to_page(vm, pfn);
		bool user = is_user_page(arg, pfn) && !mem_cgroup_disabled(vm);
		if (!user) {
			if (page->memcg_data)
				CHECK_FAIL("frame %llu is not a user page but is charged to a memory cgroup",
					   (unsigned long long)pfn);
			continue;
		}
		if (!page->memcg_data)
			CHECK_FAIL("user frame %llu is charged to no memory cgroup", (unsigned long long)pfn);
		struct mem_cgroup *owner = page_memcg(page);
		bool known = false;
		list_for_each_entry(m, &vm->memcgs, all)
			if (m == owner) {
				known = true;
				break;
			}
		if (!known)
			CHECK_FAIL("frame %llu is charged to an unknown memory cgroup", (unsigned long long)pfn);
		if (page->memcg_data & MEMCG_DATA_SHMEM)
			owner->check_shmem++;
		else
			owner->check_anon++;
	}
	list_for_each_entry(m, &vm->memcgs, all) {
		char path[256];
		memcg_path(m, path, sizeof(path));
		if (atomic_load(&m->nr_anon) != m->check_anon || atomic_load(&m->nr_shmem) != m->check_shmem)
			CHECK_FAIL("memcg %s: counts %ld anon %ld shmem pages, %ld and %ld are charged to it",
				   path, (long)atomic_load(&m->nr_anon), (long)atomic_load(&m->nr_shmem),
				   m->check_anon, m->check_shmem);
		if (atomic_load(&m->nr_swap) != m->check_swap)
			CHECK_FAIL("memcg %s: counts %ld swap slots, %ld are charged to it", path,
				   (long)atomic_load(&m->nr_swap), m->check_swap);
		uint64_t subtree = 0, children = 0, swap_subtree = 0;
		unsigned structs = 0;
		list_for_each_entry(c, &vm->memcgs, all) {
			if (mem_cgroup_is_descendant(c, m)) {
				subtree += (uint64_t)(c->check_anon + c->check_shmem);
				swap_subtree += (uint64_t)c->check_swap;
			}
			if (c->parent == m) {
				children += atomic_load(&c->usage);
				structs++;
			}
		}
		if (atomic_load(&m->usage) != subtree)
			CHECK_FAIL("memcg %s: memory.current %llu pages, its subtree holds %llu", path,
				   (unsigned long long)atomic_load(&m->usage), (unsigned long long)subtree);
		if (atomic_load(&m->swap_usage) != swap_subtree)
			CHECK_FAIL("memcg %s: memory.swap.current %llu slots, its subtree holds %llu", path,
				   (unsigned long long)atomic_load(&m->swap_usage),
				   (unsigned long long)swap_subtree);
		if (atomic_load(&m->usage) < children)
			CHECK_FAIL("memcg %s: usage %llu below its children's %llu", path,
				   (unsigned long long)atomic_load(&m->usage), (unsigned long long)children);
		if (structs != m->nr_child_structs)
			CHECK_FAIL("memcg %s: %u child groups counted, %u found", path, m->nr_child_structs,
				   structs);
		if (!m->online && (!list_empty(&m->children) || m->nr_procs))
			CHECK_FAIL("removed memcg %s still has processes or online children", path);
		list_for_each_entry(c, &m->children, sibling)
			if (c->parent != m || !c->online)
				CHECK_FAIL("memcg %s: a child on its list is not its online child", path);
	}
	pthread_mutex_lock(&vm->task_lock);
	struct mm_struct *mm;
	list_for_each_entry(mm, &vm->mms, mmlist) {
		if (!mm->memcg || !mm->memcg->online) {
			pthread_mutex_unlock(&vm->task_lock);
			CHECK_FAIL("pid %d is in no online memory cgroup", mm->tgid);
		}
	}
	list_for_each_entry(m, &vm->memcgs, all) {
		if (mem_cgroup_is_root(m))
			continue; /* the root also holds dput's snapshot images, which are no processes */
		uint64_t procs = 0;
		list_for_each_entry(mm, &vm->mms, mmlist)
			procs += mm->memcg == m;
		if (procs != m->nr_procs) {
			pthread_mutex_unlock(&vm->task_lock);
			char path[256];
			memcg_path(m, path, sizeof(path));
			CHECK_FAIL("memcg %s: %llu processes counted, %llu found", path,
				   (unsigned long long)m->nr_procs, (unsigned long long)procs);
		}
	}
	pthread_mutex_unlock(&vm->task_lock);
out:
	pthread_mutex_unlock(&vm->cgroup_mutex);
#undef CHECK_FAIL
	return err;
}
