/*
 * mm_types.h - the structures of the machine: struct page (one per frame), the VMA, the mm,
 * the anon_vma and its chains, the shared-anonymous object, the task and the machine itself.
 *
 * Each field says what guards it.  Lock order (docs/locking.md):
 *   mmap_lock (mm with the lower pid first when two are needed) -> cgroup_mutex
 *     -> anon_vma root lock -> shmem i_mmap lock
 *       -> page_table_lock -> page lock (PG_locked, trylock only)
 *         -> lru_lock -> zone lock -> per-CPU list lock
 * Refcounts, mapcounts and page flags are atomics and change only through the accessors in
 * mm/mm.h, which assert.
 */
#ifndef COWVM_MM_TYPES_H
#define COWVM_MM_TYPES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "../arch/x86/pgtable.h"
#include "../include/cowvm.h"
#include "../lib/list.h"
#include "../lib/lock.h"

/* ---- struct page ---------------------------------------------------------------------------- */

enum pageflags {
	PG_locked,         /* page lock, trylock_page */
	PG_reserved,       /* frame 0: never handed out */
	PG_buddy,          /* head of a free block in the buddy allocator; order in page->order */
	PG_pcp,            /* free, on a per-CPU list */
	PG_pgtable,        /* a page-table page; entries in use in page->order */
	PG_zero,           /* the zero page */
	PG_anon,           /* anonymous page: mapping is a struct anon_vma */
	PG_anon_exclusive, /* PageAnonExclusive: exactly one mm may map it, and may write it */
	PG_shmem,          /* shared anonymous page: mapping is a struct shmem_inode */
	PG_lru,            /* on an LRU list */
	PG_active,         /* on the active list */
	PG_dirty,          /* data page: dirty; page-table page: a PTE changed since the last SNAP */
	PG_referenced,
	PG_mlocked,        /* mapped by a VM_LOCKED VMA: mlock_count says by how many PTEs (lru_lock) */
	PG_unevictable,    /* on the unevictable list (lru_lock); in cowvm exactly the mlocked pages */
	PG_swapcache,      /* anon page in the swap cache: private is its swap entry (swap lock) */
};

struct page {
	_Atomic uint32_t flags;     /* 1 << PG_*; atomic bit operations */
	_Atomic int32_t _refcount;  /* references: one per mapping, plus cache, pins, temporaries */
	_Atomic int32_t _mapcount;  /* PTEs that map this page (Linux stores this minus one) */
	union {
		uint32_t order;         /* PG_buddy: block order (zone lock); PG_pgtable: entries used (ptl) */
		uint32_t mlock_count;   /* PG_mlocked user page: PTEs of VM_LOCKED VMAs mapping it (lru_lock) */
	};
	void *mapping;              /* anon: struct anon_vma; shmem: struct shmem_inode (page lock or new) */
	uint64_t index;             /* linear page index in the mapping (set before first map) */
	struct list_head lru;       /* free lists (zone/pcp lock) or LRU lists (lru_lock) */
	uint64_t private;           /* page-table pages: level (1 = PTE table ... 4 = PGD);
	                             * PG_swapcache pages: the swap entry (swp_entry_t.val) */
	uintptr_t memcg_data;       /* anon/shmem page: its struct mem_cgroup | MEMCG_DATA_*; set at
	                             * charge (page not yet visible), cleared at uncharge (last ref) */
};

_Static_assert(sizeof(struct page) <= 64, "struct page must stay within 64 bytes");

/* ---- address spaces ---------------------------------------------------------------------- */

/* vm_flags, Linux's values */
#define VM_NONE        0x00000000ul
#define VM_READ        0x00000001ul
#define VM_WRITE       0x00000002ul
#define VM_EXEC        0x00000004ul
#define VM_SHARED      0x00000008ul
#define VM_MAYREAD     0x00000010ul
#define VM_MAYWRITE    0x00000020ul
#define VM_MAYEXEC     0x00000040ul
#define VM_MAYSHARE    0x00000080ul
#define VM_GROWSDOWN   0x00000100ul
#define VM_LOCKED      0x00002000ul
#define VM_SEQ_READ    0x00008000ul
#define VM_RAND_READ   0x00010000ul
#define VM_DONTCOPY    0x00020000ul
#define VM_DONTEXPAND  0x00040000ul
#define VM_LOCKONFAULT 0x00080000ul
#define VM_ACCOUNT     0x00100000ul
#define VM_NORESERVE   0x00200000ul
#define VM_WIPEONFORK  0x02000000ul
#define VM_DONTDUMP    0x04000000ul
#define VM_SOFTDIRTY   0x08000000ul
#define VM_HUGEPAGE    0x20000000ul
#define VM_NOHUGEPAGE  0x40000000ul
#define VM_ACCESS_FLAGS (VM_READ | VM_WRITE | VM_EXEC)
#define VM_LOCKED_MASK  (VM_LOCKED | VM_LOCKONFAULT)
#define VM_STACK        VM_GROWSDOWN /* x86: stacks grow down */

struct anon_vma;
struct shmem_inode;
struct cowvm_snapshot;

struct vm_area_struct {
	uint64_t vm_start, vm_end;      /* [start, end), page aligned; mmap_lock */
	struct mm_struct *vm_mm;
	unsigned long vm_flags;         /* mmap_lock (write to change) */
	pgprot_t vm_page_prot;          /* PTE protection for new mappings; mmap_lock */
	uint64_t vm_pgoff;              /* page offset of vm_start: addr >> 12 at mmap for private anon */
	struct anon_vma *anon_vma;      /* own anon_vma; set once under page_table_lock + anon_vma lock */
	struct list_head anon_vma_chain; /* this VMA's anon_vma_chains; mmap_lock + anon_vma lock */
	struct shmem_inode *vm_file;    /* shared anonymous object, or NULL */
	struct list_head shared;        /* in vm_file->i_mmap; i_mmap lock */
};

enum mm_counter { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES, NR_MM_COUNTERS };

#define MMF_HAS_PINNED 0x1ul
#define MMF_OOM_VICTIM 0x2ul /* chosen by the OOM killer: SIGKILL pending (tsk_is_oom_victim) */
#define MMF_OOM_SKIP   0x4ul /* its memory was reaped: no more a candidate (MMF_OOM_SKIP) */

struct mem_cgroup;

struct mm_struct {
	struct cowvm *vm;
	uint64_t pgd;                   /* frame number of the PGD table; fixed for the mm's life */
	struct rw_semaphore mmap_lock;  /* read: faults; write: the VMA array and vm_flags */
	spinlock_t page_table_lock;     /* every PTE change and page-table allocation */
	struct vm_area_struct **vmas;   /* sorted by vm_start, no overlap; mmap_lock */
	size_t nr_vmas, vmas_cap;       /* mmap_lock */
	_Atomic long rss_stat[NR_MM_COUNTERS];
	_Atomic long pgtables_pages;    /* page-table pages, all levels, PGD included */
	uint64_t total_vm;              /* mapped pages; mmap_lock */
	uint64_t mmap_base;             /* top of the top-down mmap area */
	uint64_t start_brk, brk;        /* heap; mmap_lock */
	_Atomic unsigned long flags;    /* MMF_* */
	_Atomic unsigned write_protect_seq; /* odd while fork-style copying write-protects PTEs */
	int tgid;                       /* pid of the process */
	struct list_head threads;       /* its tasks, by task->thread_node; vm->task_lock */
	int nr_threads;                 /* vm->task_lock */
	struct list_head mmlist;        /* in vm->mms; vm->task_lock */
	struct mm_struct *snapshot;     /* dput SNAP: a COW image of this mm; mmap_lock */
	bool is_snapshot;               /* this mm is such an image (no threads) */
	/* cowvm_snapshot / cowvm_restore (mm/snapshot.c) */
	struct list_head snapshots;     /* struct cowvm_snapshot, by node (live and freed); mmap_lock */
	struct cowvm_snapshot *snap_base; /* the snapshot snap_log is relative to, or NULL; mmap_lock
					   * (write to change; every PTE writer holds it at least for read) */
	struct snapshot_log {           /* PTEs that changed their frame since snap_base was taken or
					 * restored, each once, with the PTE it had before its first
					 * change (the snapshot's); page_table_lock */
		struct snapshot_log_entry {
			uint64_t addr;
			pte_t old;      /* SNAP_OLD_UNKNOWN: the caller did not say */
			uint32_t slot;  /* its place in slots[] */
		} *ent;
		size_t nr, cap;
		uint32_t *slots;        /* open addressing by address: entry index + 1, 0 = free */
		uint32_t nslots;        /* a power of two, at least twice nr */
		bool overflow;          /* too many to list: the next restore compares every PTE */
	} snap_log;
	struct cowvm_snapshot *image_of; /* this mm is that snapshot's image (no threads) */
	struct cowvm_merge_report merge; /* the last MERGE into this mm; mmap_lock */
	/* mlock (mm/mlock.c) */
	uint64_t locked_vm;             /* pages of VM_LOCKED VMAs (VmLck), plus locked_vm_stale; mmap_lock */
	uint64_t locked_vm_stale;       /* what MREMAP_DONTUNMAP left counted, as Linux leaves it; mmap_lock */
	unsigned long def_flags;        /* VM_LOCKED[ONFAULT] for new VMAs after mlockall(MCL_FUTURE); mmap_lock */
	/* high-water marks for VmPeak and VmHWM (hiwater_vm, hiwater_rss); mmap_lock */
	uint64_t hiwater_vm, hiwater_rss;
	/* The process's credentials and limits (task->cred and signal->rlim in Linux; one per process
	 * here, inherited at fork).  mmap_lock (write to change). */
	uint64_t caps;                  /* effective capabilities, 1 << CAP_* */
	uint64_t rlim_memlock[2];       /* RLIMIT_MEMLOCK soft, hard (bytes) */
	uint64_t rlim_stack[2];         /* RLIMIT_STACK soft, hard (bytes) */
	/* The memory cgroup the process is in (mm->owner's memcg in Linux): what its new pages are
	 * charged to.  Changes under mmap_lock (write) and cgroup_mutex; read under either. */
	struct mem_cgroup *memcg;
};

/* ---- snapshots (mm/snapshot.c) ------------------------------------------------------------ */

/* One VMA of the task as it was when the snapshot was taken. */
struct snapshot_vma {
	uint64_t vm_start, vm_end;
	unsigned long vm_flags;
	uint64_t vm_pgoff;
	struct shmem_inode *vm_file;    /* shared memory: the object, with a reference; else NULL */
	struct anon_vma *anon_vma;      /* private: the task VMA's anon_vma then (kept alive by the
					 * image's chains); NULL if it had none */
	struct vm_area_struct *image;   /* private: the image's twin over the same range; else NULL */
};

/*
 * A snapshot of one process's address space.  The handle lives as long as its process: freeing
 * a snapshot drops its image and records but keeps this struct (image == NULL) so that a freed
 * handle is recognised (-ENOENT); the process's exit frees all of them.  All fields: the owner's
 * mmap_lock.
 */
struct cowvm_snapshot {
	struct mm_struct *mm;           /* the owner */
	struct mm_struct *image;        /* hidden mm holding the frames copy-on-write; NULL = freed */
	struct snapshot_vma *vmas;      /* every VMA of the owner, sorted */
	size_t nr_vmas;
	uint64_t start_brk, brk;
	struct list_head node;          /* in mm->snapshots */
	/* An image PTE changed since the owner's dirty log began (swapoff brought a swap PTE in,
	 * a rebuild write-protected one): the log's old PTEs may be stale, restore reads the
	 * image instead.  Set without a lock by mark_table_changed on the image's tables. */
	_Atomic bool image_changed;
};

/* ---- reverse mapping ------------------------------------------------------------------------ */

/*
 * anon_vma: a group of VMAs whose pages may be shared (a VMA, its fork children, theirs ...).
 * A page's mapping names one; rmap_walk visits every VMA chained to it.  All anon_vmas of one
 * fork tree share the root's lock.
 */
struct anon_vma {
	struct anon_vma *root;          /* the ancestor of the tree; its rwsem is the tree's lock */
	struct anon_vma *parent;        /* for the reuse heuristics of anon_vma_clone */
	struct rw_semaphore rwsem;      /* meaningful in the root only */
	_Atomic int refcount;           /* pages and chains that name it, plus the child anon_vmas */
	unsigned num_children;          /* anon_vmas whose parent this is (a root counts itself); root lock */
	unsigned num_active_vmas;       /* VMAs whose vma->anon_vma this is; root lock */
	struct list_head head;          /* anon_vma_chains, by same_anon_vma; root lock */
	uint64_t id;                    /* for pictures and traces */
};

/* One link between a VMA and an anon_vma it may find pages of. */
struct anon_vma_chain {
	struct vm_area_struct *vma;
	struct anon_vma *anon_vma;
	struct list_head same_vma;      /* in vma->anon_vma_chain; mmap_lock (+ root lock to change) */
	struct list_head same_anon_vma; /* in anon_vma->head; root lock */
};

/*
 * Shared anonymous memory is shmem in Linux: a page-cache object indexed by page offset.  This
 * one keeps just that: its pages, who maps it (i_mmap), and a count of the VMAs using it.
 */
struct shmem_inode {
	spinlock_t lock;                /* pages[] and nrpages */
	struct page **pages;            /* by pgoff; NULL = not yet allocated */
	uint64_t size_pages;
	uint64_t nrpages;
	struct rw_semaphore i_mmap_rwsem; /* i_mmap */
	struct list_head i_mmap;        /* VMAs mapping it, by vma->shared */
	_Atomic int refcount;           /* VMAs using it */
	uint64_t id;
};

/* ---- tasks and the software MMU ------------------------------------------------------------ */

#define TLB_ENTRIES COWVM_TLB_ENTRIES
#define TLB_VALID COWVM_TLB_VALID
#define TLB_WRITE COWVM_TLB_WRITE

/* A translation is a struct cowvm_tlb_entry (include/cowvm.h): page address | TLB_VALID |
 * TLB_WRITE, and where that frame lives. */

struct task_struct {
	/*
	 * First, so that include/cowvm.h's inline TLB hit can find it: the TLB, written only by
	 * the host thread running the task.  Other threads flush it by raising
	 * mmu.tlb_flush_gen; the owner empties its TLB at the start of its next access, and the
	 * flusher waits for an access in flight (mmu.in_flight 1) to finish: a TLB shootdown.
	 * in_flight and tlb_flush_gen are accessed with __atomic builtins only; tlb_seen_gen and
	 * tlb[] by the owner only (the checker reads them with the task stopped).
	 */
	struct cowvm_mmu mmu;
	struct cowvm *vm;
	struct mm_struct *mm;
	int pid, tid;
	struct list_head thread_node;   /* in mm->threads; vm->task_lock */
	struct list_head task_node;     /* in vm->tasks; vm->task_lock */
	_Atomic uint64_t min_flt, maj_flt, tlb_misses;
};
_Static_assert(offsetof(struct task_struct, mmu) == 0, "the inline TLB path finds mmu at a task's start");

/* A set of frames held by get_user_pages / pin_user_pages. */
struct cowvm_pin {
	struct cowvm *vm;
	unsigned flags;                 /* COWVM_FOLL_* it was taken with */
	size_t npages;
	struct list_head node;          /* in vm->pins; pin_lock */
	struct page *pages[];           /* the zero page is held without a reference */
};

/* ---- the machine -------------------------------------------------------------------------- */

#define MAX_ORDER 10
#define MAX_CPUS 64
#define PCP_BATCH 32
#define PCP_HIGH 128

struct free_area {
	struct list_head free_list;
	uint64_t nr_free;
};

struct per_cpu_pages {
	spinlock_t lock;
	struct list_head list;          /* order-0 free frames */
	int count;
	char pad[64 - sizeof(spinlock_t) - sizeof(struct list_head) - sizeof(int)];
};

enum vm_event_item {
	PGFAULT, PGMAJFAULT, PGREUSE, PGALLOC, PGFREE, COW_COPY, ZERO_PAGE_MAP, ZERO_PAGE_COW,
	TLB_FLUSH, GUP_FAST_FALLBACK, UNEVICTABLE_PGMLOCKED, UNEVICTABLE_PGMUNLOCKED,
	PSWPIN, PSWPOUT, PGSCAN_KSWAPD, PGSCAN_DIRECT, PGSTEAL_KSWAPD, PGSTEAL_DIRECT,
	PGACTIVATE, PGDEACTIVATE, NR_VM_EVENTS
};

enum node_stat_item {
	NR_ANON_MAPPED, NR_SHMEM, NR_PAGETABLE, NR_ACTIVE_ANON, NR_INACTIVE_ANON, NR_ZERO_MAPPED,
	NR_FOLL_PIN, NR_UNEVICTABLE, NR_MLOCK, NR_SWAPCACHE,
	NR_VM_NODE_STAT_ITEMS
};

/*
 * Statistics slots.  A host thread owns one slot while it lives and adds to it with plain
 * (unlocked) read-modify-writes; the last slot is shared by threads beyond NR_STAT_SLOTS and
 * is updated atomically.  Readers sum every slot.
 */
#define NR_STAT_SLOTS 64
struct vm_stat_slot {
	_Atomic uint64_t events[NR_VM_EVENTS];
	_Atomic long node[NR_VM_NODE_STAT_ITEMS];
} __attribute__((aligned(64)));

struct fail_injection {
	_Atomic int mode;
	_Atomic uint64_t n;             /* FAIL_AFTER/NTH: allocations left before the failure */
};

struct cowvm {
	/* physical memory */
	uint8_t *phys;                  /* nr_frames * 4 KiB, one host mapping */
	uint64_t nr_frames;
	struct page *mem_map;
	struct page *zero_page;
	unsigned flags;                 /* COWVM_CONFIG_* */
	int host_backing;               /* COWVM_BACKING_* of phys */
	/* the zone: buddy allocator */
	spinlock_t zone_lock;
	struct free_area free_area[MAX_ORDER + 1]; /* zone_lock */
	_Atomic uint64_t nr_free;       /* buddy + per-CPU lists */
	unsigned nr_cpus;
	struct per_cpu_pages pcp[MAX_CPUS];
	struct fail_injection fail;
	/* LRU */
	spinlock_t lru_lock;
	struct list_head lru_inactive_anon, lru_active_anon; /* lru_lock */
	struct list_head lru_unevictable; /* mlocked pages, which reclaim never takes; lru_lock */
	/* counters: one slot per host thread (vm_event_states is per CPU in Linux), summed on read */
	struct vm_stat_slot stats[NR_STAT_SLOTS + 1];
	/* tasks */
	pthread_mutex_t task_lock;
	struct list_head tasks;         /* task_lock */
	struct list_head mms;           /* task_lock */
	int next_pid;                   /* task_lock */
	_Atomic uint64_t next_id;       /* anon_vma and shmem ids */
	/* pins and references held through cowvm_pin_user_pages */
	pthread_mutex_t pin_lock;
	struct list_head pins;          /* pin_lock */
	/* memory cgroups (memcontrol.c) */
	pthread_mutex_t cgroup_mutex;   /* the group tree, mm->memcg moves, the OOM killer (oom_lock) */
	struct mem_cgroup *root_mem_cgroup;
	struct list_head memcgs;        /* every group, online or offline; cgroup_mutex */
	/* the swap device (mm/swapfile.c), NULL when none is configured or after swapoff */
	struct swap_info_struct *swap;
	struct kswapd *kswapd;          /* the background reclaimer (vmscan.c), with the swap device */
	/* tracing */
	cowvm_tracer_fn tracer;         /* one event per fault (set before tasks run) */
	void *tracer_arg;
	cowvm_trace_fn trace;           /* the step stream (trace.c); set before tasks run */
	void *trace_arg;
};

#endif
