/*
 * cowvm.h - the public interface of libcowvm.
 *
 * cowvm is Linux's anonymous-memory machinery (demand paging, the zero page, fork by
 * copy-on-write, COW faults with reuse, reverse mapping, LRU, user copies with exception-table
 * fixups) rebuilt in user space.  A cowvm_t is one machine: physical frames, the zero page and
 * the tasks that run on it.  A cowvm_task_t is one thread of one process; processes are made by
 * cowvm_spawn and cowvm_fork, threads by cowvm_clone_thread.
 *
 * Conventions, as in Linux system calls:
 *  - calls that return int or int64_t return a negative errno on failure (-EINVAL, -ENOMEM ...);
 *  - calls that return a pointer return NULL and set errno;
 *  - a failed call leaves the machine as it was, except where Linux itself applies a call to a
 *    prefix of a range before it finds a hole (mprotect, madvise: -ENOMEM after the mapped part).
 * PROT_*, MAP_* and MADV_* take Linux's values: the host's <sys/mman.h> constants can be used,
 * or the COWVM_PROT_*, COWVM_MAP_* and COWVM_MADV_* below, which need no feature macro (a strict
 * -std=c11 program sees no MAP_ANONYMOUS without _DEFAULT_SOURCE).
 *
 * Threads: a task may be used by any host thread, but by one at a time (it is a CPU running that
 * thread).  Different tasks may run on different host threads at once.
 *
 * The header is C11 and C++ (extern "C"); only names that start with cowvm_ / COWVM_ are
 * defined, and only cowvm_ symbols leave the libraries (libcowvm.so.0, libcowvm.a).
 */
#ifndef COWVM_H
#define COWVM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>

/* The library's own objects are built with hidden visibility; what this header declares is
 * its interface.  (Programs that include it never see the pragma.) */
#if defined(COWVM_BUILDING_LIBRARY) && defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define COWVM_PAGE_SIZE 4096u
#define COWVM_TASK_SIZE_MAX ((1ull << 47) - 4096) /* highest user address + 1, as x86-64 */

/* Linux's values for mmap, mprotect and madvise (x86-64, asm-generic/mman-common.h). */
#define COWVM_PROT_NONE  0x0
#define COWVM_PROT_READ  0x1
#define COWVM_PROT_WRITE 0x2
#define COWVM_PROT_EXEC  0x4
#define COWVM_MAP_SHARED          0x01
#define COWVM_MAP_PRIVATE         0x02
#define COWVM_MAP_FIXED           0x10
#define COWVM_MAP_ANONYMOUS       0x20
#define COWVM_MAP_NORESERVE       0x4000
#define COWVM_MAP_POPULATE        0x8000
#define COWVM_MAP_NONBLOCK        0x10000
#define COWVM_MAP_FIXED_NOREPLACE 0x100000
#define COWVM_MADV_NORMAL     0
#define COWVM_MADV_RANDOM     1
#define COWVM_MADV_SEQUENTIAL 2
#define COWVM_MADV_WILLNEED   3
#define COWVM_MADV_DONTNEED   4
#define COWVM_MADV_FREE       8
#define COWVM_MADV_DONTFORK   10
#define COWVM_MADV_DOFORK     11
#define COWVM_MADV_HUGEPAGE   14
#define COWVM_MADV_NOHUGEPAGE 15
#define COWVM_MADV_WIPEONFORK 18
#define COWVM_MADV_KEEPONFORK 19

typedef struct cowvm cowvm_t;
typedef struct task_struct cowvm_task_t;

/* ---- machine ---------------------------------------------------------------------------- */

/* cowvm_config.flags */
#define COWVM_CONFIG_NO_POISON 0x1u /* do not poison freed frames / fill new ones (benchmarks) */
#define COWVM_CONFIG_PREFAULT  0x2u /* back all physical memory with host pages at create */
/* A kernel built without CONFIG_MEM_SOFT_DIRTY (as this project's host kernel is): no VM_SOFTDIRTY
 * ("sd" in VmFlags), pagemap bit 55 always clear, clear_refs 4 accepted and without effect. */
#define COWVM_CONFIG_NO_SOFT_DIRTY 0x4u
/* Back physical memory with 4 KiB host pages; by default it is on host transparent huge pages
 * where the host allows MADV_HUGEPAGE (cowvm_machine_info says which it got). */
#define COWVM_CONFIG_HOST_4K   0x100u

/* Boot with cgroup_disable=memory: nothing is charged, no limit applies (groups can still be
 * made and processes moved; their counters stay 0).  For measuring what charging costs. */
#define COWVM_CONFIG_NO_MEMCG 0x8u

/*
 * Transparent huge pages, as /sys/kernel/mm/transparent_hugepage/ (kept in flags so that the
 * config struct keeps its size; 0 gives this project's host: enabled madvise, defrag madvise,
 * use_zero_page 1).  cowvm_thp_setting reads them back in sysfs form.  What they decide today:
 * THPeligible in smaps (the policy of thp_vma_allowable_order); cowvm does not yet map huge
 * pages (docs/fidelity.md).  An unknown value (enabled ALWAYS|NEVER, defrag above NEVER) is
 * -EINVAL from cowvm_create.
 */
#define COWVM_CONFIG_THP_ENABLED_MASK  0x3000u
#define COWVM_CONFIG_THP_MADVISE       0x0000u /* enabled: [madvise] (default) */
#define COWVM_CONFIG_THP_ALWAYS        0x1000u /* enabled: [always] */
#define COWVM_CONFIG_THP_NEVER         0x2000u /* enabled: [never] */
#define COWVM_CONFIG_THP_NO_ZERO_PAGE  0x4000u /* use_zero_page 0 */
#define COWVM_CONFIG_THP_DEFRAG_MASK   0x70000u
#define COWVM_CONFIG_THP_DEFRAG_MADVISE 0x00000u /* defrag: [madvise] (default) */
#define COWVM_CONFIG_THP_DEFRAG_ALWAYS  0x10000u
#define COWVM_CONFIG_THP_DEFRAG_DEFER   0x20000u
#define COWVM_CONFIG_THP_DEFRAG_DEFER_MADVISE 0x30000u /* defer+madvise */
#define COWVM_CONFIG_THP_DEFRAG_NEVER   0x40000u
#define COWVM_CONFIG_THP_FLAGS (COWVM_CONFIG_THP_ENABLED_MASK | COWVM_CONFIG_THP_NO_ZERO_PAGE | \
				COWVM_CONFIG_THP_DEFRAG_MASK)

struct cowvm_config {
	uint64_t phys_bytes; /* physical memory; a multiple of 4 KiB, 64 KiB .. 1 TiB; 0 = 64 MiB */
	unsigned flags;      /* COWVM_CONFIG_* */
	unsigned nr_cpus;    /* per-CPU free lists; 0 = number of host CPUs, at most 64 */
	/*
	 * The swap device: a regular host file, or NULL for none (anonymous memory then stays in
	 * memory, as today).  cowvm_create opens it (creating it, mode 0600, when it does not exist)
	 * and sets its length to swap_bytes (a multiple of 4 KiB, 8 KiB .. 64 GiB; 0 = 64 MiB); slot 0
	 * holds a mkswap-style header, the other slots hold pages.  Written with pwrite, read with
	 * pread, never fsync'ed.  cowvm_destroy (and cowvm_swapoff) close it, and unlink it only
	 * when cowvm_create created it; a file that existed is left in place (its contents are
	 * cowvm's swapped pages).  A path that cannot be opened or is not a regular file: NULL and
	 * that errno (EINVAL for a bad size or a non-regular file).
	 */
	const char *swap_path;
	uint64_t swap_bytes;
};

cowvm_t *cowvm_create(const struct cowvm_config *cfg); /* NULL + errno */
void cowvm_destroy(cowvm_t *vm);                       /* exits every task left */

/* What the machine costs its host, and how its physical memory is backed there. */
#define COWVM_BACKING_4K      0 /* 4 KiB host pages */
#define COWVM_BACKING_THP     1 /* transparent huge pages asked for (MADV_HUGEPAGE) */
#define COWVM_BACKING_HUGETLB 2 /* hugetlbfs pages (MAP_HUGETLB), reserved at create */
struct cowvm_machine_info {
	uint64_t phys_bytes, nr_frames;
	uint64_t struct_page_bytes;   /* sizeof(struct page) */
	uint64_t mem_map_bytes;       /* host memory reserved for the frame array */
	int host_backing;             /* COWVM_BACKING_* of the physical memory */
	uint64_t host_huge_bytes;     /* of it, backed by host huge pages now (/proc/self/smaps) */
	uint64_t host_rss_bytes;      /* of it, resident in the host now */
};
int cowvm_machine_info(cowvm_t *vm, struct cowvm_machine_info *out); /* 0 or -EINVAL */
/*
 * cowvm_thp_setting: a THP policy file as /sys/kernel/mm/transparent_hugepage/NAME reads, for
 * NAME "enabled" ("always [madvise] never"), "defrag" ("always defer defer+madvise [madvise]
 * never") or "use_zero_page" ("1"), with a newline, into buf (NUL-terminated).  Returns its
 * length, -EINVAL for an unknown name or NULL argument, -ERANGE when len is too small.
 */
int cowvm_thp_setting(cowvm_t *vm, const char *name, char *buf, size_t len);

/* ---- tasks ------------------------------------------------------------------------------ */

cowvm_task_t *cowvm_spawn(cowvm_t *vm);           /* new process, empty mm; NULL + errno */
cowvm_task_t *cowvm_fork(cowvm_task_t *parent);   /* NULL + errno (ENOMEM) */
cowvm_task_t *cowvm_clone_thread(cowvm_task_t *t); /* new thread sharing t's mm */
int cowvm_exit(cowvm_task_t *t); /* ends the task and frees it; last thread tears down the mm */
int cowvm_task_pid(const cowvm_task_t *t);  /* thread-group id (process) */
int cowvm_task_tid(const cowvm_task_t *t);  /* this thread's id */

/* ---- memory calls (Linux semantics and errno) --------------------------------------------- */

/* mmap: MAP_PRIVATE/MAP_SHARED anonymous memory; MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE,
 * MAP_NORESERVE; MAP_LOCKED (-EPERM with RLIMIT_MEMLOCK 0, -EAGAIN beyond it; populated);
 * MAP_GROWSDOWN (private only: a stack that grows on a fault below it, keeping a 256-page guard
 * gap to the mapping under it, within RLIMIT_STACK; mprotect's PROT_GROWSDOWN reaches down to
 * its bottom).  After mlockall(MCL_FUTURE) every new mapping is locked. */
int64_t cowvm_mmap(cowvm_task_t *t, uint64_t addr, uint64_t len, int prot, int flags); /* addr or -errno */
int cowvm_munmap(cowvm_task_t *t, uint64_t addr, uint64_t len);
int cowvm_mprotect(cowvm_task_t *t, uint64_t addr, uint64_t len, int prot);
/* madvise: NORMAL, RANDOM, SEQUENTIAL, WILLNEED, DONTNEED, DONTNEED_LOCKED (24), FREE, COLD,
 * PAGEOUT (swaps the pages out when a swap device exists and only this process maps them; else deactivates), REMOVE (shared memory: frees the pages for every process),
 * DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK, DONTDUMP/DODUMP, HUGEPAGE/NOHUGEPAGE (flags only),
 * POPULATE_READ/POPULATE_WRITE (fault in through GUP: -EINVAL where the VMA refuses the access,
 * -ENOMEM at a hole or out of memory, -EFAULT on SIGBUS, the pages before the failure done).
 * DONTNEED, FREE, COLD, PAGEOUT and REMOVE on locked memory: -EINVAL. */
int cowvm_madvise(cowvm_task_t *t, uint64_t addr, uint64_t len, int advice);
int64_t cowvm_brk(cowvm_task_t *t, uint64_t addr); /* the new break, or the old one on failure */

/*
 * mremap(2): shrink, grow in place, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP (values of
 * <linux/mman.h>: 1, 2, 4).  Returns the (new) address or -errno.  A move takes the page-table
 * entries along (no fault, no copy: pages shared copy-on-write with another process stay shared,
 * and keep their rmap index because the moved VMA keeps vm_pgoff); the old range's TLB entries
 * are flushed.  Growing a VM_LOCKED mapping populates the new part.  old_len 0 duplicates a
 * shared mapping (MAYMOVE needed); on a private one it is -EINVAL.
 */
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
int64_t cowvm_mremap(cowvm_task_t *t, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
		     int flags, uint64_t new_addr);

/*
 * mlock(2) family, as mm/mlock.c: the range's VMAs get VM_LOCKED (VM_LOCKONFAULT with
 * MLOCK_ONFAULT / MCL_ONFAULT) and, unless on-fault, are populated (write faults for private
 * writable memory, read faults otherwise: the zero page stays).  Locked pages are on the
 * unevictable list (reclaim never takes them).  Limits: RLIMIT_MEMLOCK 0 without
 * COWVM_CAP_IPC_LOCK -> -EPERM; beyond it -> -ENOMEM (mlock) / -EAGAIN (mmap MAP_LOCKED,
 * mlockall(MCL_FUTURE) mappings).  A hole in the range: -ENOMEM after the part before it.
 * fork: the child's VMAs are not locked and it does not inherit MCL_FUTURE.
 */
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1u
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
int cowvm_mlock(cowvm_task_t *t, uint64_t addr, uint64_t len);
int cowvm_mlock2(cowvm_task_t *t, uint64_t addr, uint64_t len, unsigned flags);
int cowvm_munlock(cowvm_task_t *t, uint64_t addr, uint64_t len);
int cowvm_mlockall(cowvm_task_t *t, int flags);  /* MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT */
int cowvm_munlockall(cowvm_task_t *t);

/*
 * process_madvise(2): caller advises target's memory over the ranges of vec (as a pidfd of
 * target would).  On another process only MADV_WILLNEED, MADV_COLD and MADV_PAGEOUT are allowed
 * (-EINVAL otherwise), and the caller needs COWVM_CAP_SYS_NICE (-EPERM), and may not reach a
 * process with capabilities it lacks itself (ptrace's rule: -EACCES).  On itself any advice.
 * Returns the bytes of the ranges advised before the first failure, or that failure's -errno
 * when none was; flags must be 0; vlen at most 1024 (UIO_MAXIOV).  target NULL: -EBADF.
 */
int64_t cowvm_process_madvise(cowvm_task_t *caller, cowvm_task_t *target, const struct iovec *vec,
			      size_t vlen, int advice, unsigned flags);

/* ---- credentials and limits of a process (inherited at fork) ------------------------------- */
/* Capabilities by Linux's numbers; a new process (cowvm_spawn) has none, as an unprivileged one. */
#define COWVM_CAP_IPC_LOCK     (1ull << 14) /* mlock beyond RLIMIT_MEMLOCK */
#define COWVM_CAP_SYS_RAWIO    (1ull << 17) /* MAP_FIXED below vm.mmap_min_addr */
#define COWVM_CAP_SYS_PTRACE   (1ull << 19) /* reach any process (process_madvise) */
#define COWVM_CAP_SYS_NICE     (1ull << 23) /* process_madvise on another process */
#define COWVM_CAP_SYS_RESOURCE (1ull << 24) /* raise a hard rlimit */
int cowvm_set_caps(cowvm_task_t *t, uint64_t caps); /* 0 or -EINVAL (unknown bits) */
uint64_t cowvm_get_caps(cowvm_task_t *t);
/* RLIMIT_MEMLOCK (default 8 MiB, Linux's MLOCK_LIMIT) and RLIMIT_STACK (8 MiB soft, unlimited
 * hard).  setrlimit: -EINVAL (other resource, cur > max), -EPERM (raising max without
 * COWVM_CAP_SYS_RESOURCE). */
int cowvm_setrlimit(cowvm_task_t *t, int resource, const struct rlimit *rlim);
int cowvm_getrlimit(cowvm_task_t *t, int resource, struct rlimit *rlim);

/* ---- user accesses through the software MMU ------------------------------------------------
 * These are the task's own loads and stores.  A fault that handle_mm_fault cannot resolve is the
 * task's SIGSEGV (or SIGBUS): the call returns -EFAULT.  When memory runs out (VM_FAULT_OOM,
 * where Linux would call the OOM killer) it returns -ENOMEM.  Either way no byte of the access
 * is transferred: every page is translated before any byte moves, as one instruction's access
 * would be (for a process whose other threads do not unmap the memory meanwhile).
 */
int cowvm_read(cowvm_task_t *t, uint64_t addr, void *buf, size_t len);        /* 0, -EFAULT, -ENOMEM */
int cowvm_write(cowvm_task_t *t, uint64_t addr, const void *buf, size_t len); /* 0, -EFAULT, -ENOMEM */

/*
 * cowvm_load64 / cowvm_store64: one 8-byte load or store (aligned or not), 0, -EFAULT or
 * -ENOMEM as cowvm_read / cowvm_write.  A TLB hit runs inline in the caller, over the layout
 * below; everything else (a miss, a fault, a pending TLB shootdown, an access that crosses a
 * page, a NULL argument, a shootdown that needs fences) calls cowvm_access64_slow.
 *
 * The TLB layout, version COWVM_TLB_LAYOUT_VERSION (a change to it bumps the version and the
 * SONAME).  A task begins with a struct cowvm_mmu, written only by the host thread running
 * the task, except tlb_flush_gen (raised by any thread that flushes the task's TLB):
 *   tlb[]          direct mapped by virtual page number modulo COWVM_TLB_ENTRIES;
 *                  tag = page address | COWVM_TLB_VALID | COWVM_TLB_WRITE (writable and dirty),
 *                  host = where the frame's bytes are;
 *   in_flight      1 while an access is in flight, else 0: a flusher that sees 1 waits for 0
 *                  before it frees what the old translation pointed at (a flag rather than a
 *                  counter, so that back-to-back hits carry no dependency through memory);
 *   tlb_flush_gen  raised (by 2) by a flusher; while it differs from tlb_seen_gen the TLB is
 *                  stale and only the slow path (which empties it) may translate.  Its low
 *                  bit is set, so it never equals tlb_seen_gen, when the shootdown needs a
 *                  fence in every access (no membarrier(2), e.g. under ThreadSanitizer): then
 *                  every access takes the slow path.
 * Callers must treat the structure as read-only.
 */
#define COWVM_TLB_LAYOUT_VERSION 1
#define COWVM_TLB_ENTRIES 256
#define COWVM_TLB_VALID 0x1ull
#define COWVM_TLB_WRITE 0x2ull
struct cowvm_tlb_entry {
	uint64_t tag;
	unsigned char *host;
};
struct cowvm_mmu {
	struct cowvm_tlb_entry tlb[COWVM_TLB_ENTRIES];
	uint64_t in_flight;
	uint64_t tlb_flush_gen;
	uint64_t tlb_seen_gen;
	uint32_t layout_version;        /* COWVM_TLB_LAYOUT_VERSION */
	uint32_t reserved;
};
/* The whole access, out of line: *val is read (write == 0) or written (write != 0). */
int cowvm_access64_slow(cowvm_task_t *t, uint64_t addr, uint64_t *val, int write);

#if defined(__GNUC__) || defined(__clang__)
/* Enter an access (in_flight 1) and find the entry that would translate addr, or NULL when
 * the TLB may be stale; the compiler may not move the TLB reads above the store. */
static inline const struct cowvm_tlb_entry *cowvm_mmu_enter_(struct cowvm_mmu *m, uint64_t addr)
{
	__atomic_store_n(&m->in_flight, 1, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__builtin_expect(__atomic_load_n(&m->tlb_flush_gen, __ATOMIC_RELAXED) != m->tlb_seen_gen, 0))
		return 0;
	return &m->tlb[(addr >> 12) & (COWVM_TLB_ENTRIES - 1)];
}

/*
 * The tag a hit needs: the page of the access's last byte, valid and writable.  The entry is
 * chosen by the page of its first byte, and an entry only ever holds a page congruent to its
 * index, so an access that crosses into the next page can never match: it goes to the slow
 * path without a test of its own.
 */
static inline uint64_t cowvm_tlb_want_(uint64_t addr)
{
	return ((addr + 7) & ~4095ull) | COWVM_TLB_VALID | COWVM_TLB_WRITE;
}

static inline int cowvm_load64(cowvm_task_t *t, uint64_t addr, uint64_t *val)
{
	struct cowvm_mmu *m = (struct cowvm_mmu *)(void *)t;
	if (__builtin_expect(t && val, 1)) {
		const struct cowvm_tlb_entry *e = cowvm_mmu_enter_(m, addr);
		/* a load hits read-only and writable entries alike */
		if (__builtin_expect(e && (e->tag | COWVM_TLB_WRITE) == cowvm_tlb_want_(addr), 1)) {
			__builtin_memcpy(val, e->host + (addr & 4095), 8);
			__atomic_store_n(&m->in_flight, 0, __ATOMIC_RELEASE);
			return 0;
		}
		__atomic_store_n(&m->in_flight, 0, __ATOMIC_RELEASE);
	}
	return cowvm_access64_slow(t, addr, val, 0);
}

static inline int cowvm_store64(cowvm_task_t *t, uint64_t addr, uint64_t val)
{
	struct cowvm_mmu *m = (struct cowvm_mmu *)(void *)t;
	if (__builtin_expect(t != 0, 1)) {
		const struct cowvm_tlb_entry *e = cowvm_mmu_enter_(m, addr);
		if (__builtin_expect(e && e->tag == cowvm_tlb_want_(addr), 1)) {
			__builtin_memcpy(e->host + (addr & 4095), &val, 8);
			__atomic_store_n(&m->in_flight, 0, __ATOMIC_RELEASE);
			return 0;
		}
		__atomic_store_n(&m->in_flight, 0, __ATOMIC_RELEASE);
	}
	return cowvm_access64_slow(t, addr, &val, 1);
}
#else
static inline int cowvm_load64(cowvm_task_t *t, uint64_t addr, uint64_t *val)
{
	return cowvm_access64_slow(t, addr, val, 0);
}
static inline int cowvm_store64(cowvm_task_t *t, uint64_t addr, uint64_t val)
{
	return cowvm_access64_slow(t, addr, &val, 1);
}
#endif

/* ---- kernel-side copies (uaccess with exception-table fixups) ------------------------------ */

size_t cowvm_copy_from_user(cowvm_task_t *t, void *dst, uint64_t src, size_t n); /* bytes not copied; tail zeroed */
size_t cowvm_copy_to_user(cowvm_task_t *t, uint64_t dst, const void *src, size_t n); /* bytes not copied */
int cowvm_get_user(cowvm_task_t *t, uint64_t addr, uint64_t *val); /* 0, or -EFAULT and *val = 0 */
int cowvm_put_user(cowvm_task_t *t, uint64_t addr, uint64_t val);  /* 0 or -EFAULT */

/* ---- page references and pins (get_user_pages / pin_user_pages) -----------------------------
 * A pin holds the frames behind [addr, addr + npages pages) of t's address space, as a driver
 * doing DMA or a pipe after vmsplice does; cowvm_pin_read/_write reach the held frames directly,
 * without the page tables.  Linux 6.x rules: FOLL_WRITE breaks COW first; a read-only FOLL_PIN
 * of a page that is not exclusive unshares it first (FAULT_FLAG_UNSHARE), so the pin stays
 * coherent with the process's later writes; a long-term read-only pin of the zero page unshares
 * it into a real page; FOLL_GET (the default only when given) takes a plain reference, as
 * vmsplice does, and is not coherent.
 */
typedef struct cowvm_pin cowvm_pin_t;
#define COWVM_FOLL_WRITE    0x00001u /* the holder will write the pages */
#define COWVM_FOLL_GET      0x00002u /* a plain reference (refcount + 1) instead of a pin */
#define COWVM_FOLL_LONGTERM 0x00100u /* held for long (RDMA, vfio): pins the zero page too */
#define COWVM_FOLL_PIN      0x08000u /* a pin (refcount + 1024); the default without GET */
#define COWVM_FOLL_FAST     0x10000u /* try the lockless walk first (get_user_pages_fast) */

cowvm_pin_t *cowvm_pin_user_pages(cowvm_task_t *t, uint64_t addr, size_t npages, unsigned flags); /* NULL + errno */
int cowvm_pin_read(cowvm_pin_t *p, size_t offset, void *buf, size_t len);        /* 0 or -EINVAL */
int cowvm_pin_write(cowvm_pin_t *p, size_t offset, const void *buf, size_t len); /* 0, -EINVAL, -EPERM without FOLL_WRITE */
uint64_t cowvm_pin_pfn(const cowvm_pin_t *p, size_t index);  /* frame held at page index (0 if out of range) */
void cowvm_unpin(cowvm_pin_t *p);

/* Access t's memory as ptrace or /proc/pid/mem does (FOLL_FORCE): a write may go through a
 * read-only private mapping, and lands only in an exclusive anonymous copy of t's.  Returns the
 * bytes moved, or -EIO when none could be, -EINVAL on bad arguments.  The faults it causes are
 * vmstat pgfaults but no task's min_flt: Linux counts them for the process doing the access
 * (the debugger, outside cowvm), never for t. */
int64_t cowvm_access_remote(cowvm_task_t *t, uint64_t addr, void *buf, size_t len, int write);

/* /proc/pid/clear_refs: 1 all referenced bits, 2 anonymous, 3 file/shmem, 4 soft-dirty
 * (write-protects the PTEs so the next write sets pagemap bit 55 again), 5 peak RSS. */
int cowvm_clear_refs(cowvm_task_t *t, int what);

/* ---- Determinator's Put and Get between a parent and a child ---------------------------------
 * COWVM_COPY: dput copies the parent's [parent_addr, +len) to the child at child_addr; dget the
 *   child's [child_addr, +len) to the parent at parent_addr.  Any alignment.  Bytes outside the
 *   range never change in the destination.  When the two addresses differ by a multiple of the
 *   page size the page-aligned middle is shared copy-on-write as fork shares it (the destination
 *   VMAs cover exactly that range, with the source's page offset and anon_vma ancestry, so rmap
 *   finds every mapping), and only the partial head and tail pages are copied; otherwise every
 *   byte is copied.  Holes stay holes: a page-aligned hole in the source leaves a hole in the
 *   destination, and bytes of an unmapped source page are not copied.  A destination page with
 *   no VMA that receives bytes gets a private one with the source VMA's protection.
 * COWVM_ZERO: the destination range reads as zeros afterwards (partial pages cleared; the
 *   aligned middle replaced by fresh private read-write demand-zero memory).
 * COWVM_SNAP (dput only): record a reference image of the child's whole address space, copy-
 *   on-write (page tables are copied, data is not); the addresses and length are ignored.
 * COWVM_MERGE (dget only): three-way merge of the child's changes since its SNAP, over the
 *   child's [child_addr, +len), into the parent at parent_addr (page aligned, both).  Per page:
 *   unchanged in the child -> skipped (whole unchanged page tables are skipped at once);
 *   changed only in the child -> the parent takes the child's page, shared copy-on-write when
 *   both VMAs belong to one anon_vma tree at the same page index, else copied;
 *   changed on both sides -> merged byte by byte: a byte the child changed is taken unless the
 *   parent changed it differently, which is a conflict.  A conflicting byte keeps the parent's
 *   value; every other byte is merged.  With conflicts the call returns -EBADE after merging
 *   everything it could; cowvm_merge_report says how many and where the first one was.
 *   Parts of the parent range that are unmapped, or shared and not writable, fail with
 *   -EFAULT, changing nothing (private read-only memory is written, as ptrace would); a child without a snapshot fails with -ENOENT.  Private mappings only: shared
 *   memory is the same on both sides and is skipped.
 * Returns 0 or -EINVAL (bad task/op, range beyond user space, overlap within one mm), -EACCES
 * (bytes to copy into a shared mapping that may not be written), -ENOMEM, or as above.
 */
#define COWVM_COPY  1
#define COWVM_ZERO  2
#define COWVM_SNAP  3
#define COWVM_MERGE 4
int cowvm_dput(cowvm_task_t *parent, cowvm_task_t *child, int op, uint64_t parent_addr,
	       uint64_t child_addr, uint64_t len);
int cowvm_dget(cowvm_task_t *parent, cowvm_task_t *child, int op, uint64_t parent_addr,
	       uint64_t child_addr, uint64_t len);

struct cowvm_merge_report {
	uint64_t conflicts;       /* bytes changed differently on both sides */
	uint64_t first_conflict;  /* parent address of the first, 0 if none */
	uint64_t pages_skipped;   /* unchanged in the child (counted per page of examined tables) */
	uint64_t tables_skipped;  /* PTE tables (2 MiB) skipped whole: unchanged since the SNAP */
	uint64_t pages_shared;    /* taken from the child copy-on-write */
	uint64_t pages_copied;    /* taken from the child by copying */
	uint64_t pages_merged;    /* changed on both sides, merged byte by byte */
};
int cowvm_merge_report(cowvm_task_t *parent, struct cowvm_merge_report *out); /* the last MERGE into parent */

/* ---- snapshots of a process's address space (mm/snapshot.c) ----------------------------------
 * cowvm_snapshot records the whole address space of t's process: its VMAs, its break and its
 * private memory, which the snapshot holds copy-on-write the way a fork child would (taking it
 * costs what a fork costs; afterwards each page's first write faults and copies).  Shared
 * mappings come back as mappings, their contents are not rolled back (other processes see
 * them).  Pinned pages are refused: -EBUSY while any private page of the process is pinned.
 * cowvm_restore brings the process back to that state, in time proportional to what changed
 * since the last snapshot or restore of the same snapshot (restoring another one compares the
 * whole address space once).  Any number per process; any thread of the process may restore.
 * A handle lives as long as its process: after cowvm_snapshot_free it only answers -ENOENT;
 * the process's exit (or cowvm_destroy) frees every one of its snapshots, after which the
 * handles must not be used.  A handle of another process: -EINVAL. */
typedef struct cowvm_snapshot cowvm_snapshot_t;
cowvm_snapshot_t *cowvm_snapshot(cowvm_task_t *t); /* NULL + errno: EINVAL, ENOMEM, EBUSY */
int cowvm_restore(cowvm_task_t *t, cowvm_snapshot_t *snap); /* 0, -EINVAL, -ENOENT, -ENOMEM */
int cowvm_snapshot_free(cowvm_snapshot_t *snap);            /* 0, -EINVAL (NULL), -ENOENT (freed) */
/* The private pages whose frame differs from the snapshot's (written, mapped or unmapped since;
 * a read of a hole, which maps the zero page, is not a change), ascending: the first max go to
 * addrs.  Returns how many there are in all, or -EINVAL / -ENOENT / -ENOMEM. */
int64_t cowvm_dirty_pages(cowvm_task_t *t, cowvm_snapshot_t *snap, uint64_t *addrs, size_t max);

/* ---- memory cgroups (cgroup v2 memory controller, mm/memcontrol.c) -------------------------
 * Groups form a tree under the root group; every process is in exactly one (a new process in
 * the root, a forked child in its parent's group).  Every anonymous and shared-anonymous page
 * is charged, when it is allocated, to the group of the process whose fault allocated it (the
 * zero page never), and stays charged there until it is freed: moving a process
 * (cowvm_cgroup_attach, as writing cgroup.procs) leaves its existing pages where they are, as v2.
 * A group's memory.current counts its pages and its descendants'.
 *
 * Limits are in bytes (rounded down to pages); COWVM_CGROUP_UNLIMITED is "max".  A charge that
 * would take a group above memory.max reclaims within the group, then runs the group's OOM
 * killer: the process with the highest badness (RSS + swap entries + page-table pages) among
 * the group's and its descendants' processes is killed (with memory.oom.group set, every
 * process of the group), and the charge is retried; only when nothing can be killed does the
 * fault fail (the access returns -ENOMEM).  Above memory.high a charge succeeds but reclaims
 * and counts a `high` event.  Writing memory.max below memory.current reclaims and OOM-kills
 * until the group fits, as the kernel does.
 *
 * A killed process (cowvm_task_oom_killed) has SIGKILL pending: its memory is freed at once
 * (the OOM reaper: every mapping's pages are unmapped; pages it shared with other processes
 * stay theirs), and each later access or fault of its tasks fails with -EFAULT (the SIGBUS a
 * reaped address space gives) while the access that triggered its own kill fails with -ENOMEM.
 * It still has to be ended with cowvm_exit, as a zombie is reaped.
 */
typedef struct mem_cgroup cowvm_cgroup_t;
#define COWVM_CGROUP_UNLIMITED UINT64_MAX

cowvm_cgroup_t *cowvm_cgroup_root(cowvm_t *vm);
/* mkdir: name is one path component (no '/', not "." or "..", no newline, 1..255 bytes).
 * NULL + errno: EINVAL, EEXIST (a sibling has that name), ENOENT (parent removed), ENOMEM. */
cowvm_cgroup_t *cowvm_cgroup_create(cowvm_cgroup_t *parent, const char *name);
/* rmdir: 0, -EBUSY (it has processes or child groups), -EINVAL (the root or NULL).  Pages still
 * charged to it stay charged to the removed group (counted in its parent) until they are freed. */
int cowvm_cgroup_destroy(cowvm_cgroup_t *cg);
/* "a/b" below the root ("" or "/" is the root); NULL + errno ENOENT / EINVAL. */
cowvm_cgroup_t *cowvm_cgroup_lookup(cowvm_t *vm, const char *path);
cowvm_cgroup_t *cowvm_task_cgroup(cowvm_task_t *t);   /* the group of t's process */
int cowvm_cgroup_attach(cowvm_cgroup_t *cg, cowvm_task_t *t); /* 0, -EINVAL, -ENOENT (removed) */
int cowvm_task_oom_killed(const cowvm_task_t *t);     /* 1 when the OOM killer killed its process */
/* The group's path below the root ("/" for the root), as /proc/PID/cgroup shows it after "0::". */
int64_t cowvm_cgroup_path(cowvm_cgroup_t *cg, char *buf, size_t size);

/* Settable files */
#define COWVM_CGROUP_MEMORY_MAX      1 /* memory.max, bytes */
#define COWVM_CGROUP_MEMORY_HIGH     2 /* memory.high, bytes */
#define COWVM_CGROUP_MEMORY_SWAP_MAX 3 /* memory.swap.max, bytes */
#define COWVM_CGROUP_MEMORY_OOM_GROUP 4 /* memory.oom.group, 0 or 1 */
/* 0, -EINVAL (bad file or value, or the root group, which has no such files), -ENOENT (removed).
 * Lowering memory.max below memory.current reclaims and may OOM-kill processes of the group. */
int cowvm_cgroup_set(cowvm_cgroup_t *cg, int file, uint64_t value);
int cowvm_cgroup_get(cowvm_cgroup_t *cg, int file, uint64_t *value);

/* memory.events: counted in the group and every ancestor below the root (events_local: the
 * group's own) */
struct cowvm_cgroup_events {
	uint64_t low, high, max, oom, oom_kill, oom_group_kill;
};
struct cowvm_cgroup_info {
	uint64_t current;        /* memory.current, bytes (this group and its descendants) */
	uint64_t swap_current;   /* memory.swap.current, bytes */
	uint64_t max, high, swap_max; /* bytes, COWVM_CGROUP_UNLIMITED for "max" */
	int oom_group;
	uint64_t nr_procs;       /* processes in this group itself (cgroup.procs lines) */
	uint64_t nr_descendants; /* live groups below it */
	struct cowvm_cgroup_events events, events_local;
	/* memory.stat, hierarchical as in v2: sizes in bytes, events in counts */
	uint64_t anon, shmem, swap, anon_thp;
	uint64_t pgfault, pgmajfault;
	uint64_t local_pages;    /* pages charged to this group itself, not its descendants */
	/* memory.swap.events (this group and below): max = a swap-out refused at a
	 * memory.swap.max, fail = a swap-out that found no slot or was refused */
	struct { uint64_t high, max, fail; } swap_events;
	uint64_t pgscan, pgsteal; /* memory.stat: pages reclaim looked at / freed (hierarchical) */
};
int cowvm_cgroup_info(cowvm_cgroup_t *cg, struct cowvm_cgroup_info *out); /* 0 or -EINVAL */

/* The text of one of the group's files, in the kernel's format: "memory.current",
 * "memory.max", "memory.high", "memory.swap.current", "memory.swap.max", "memory.swap.events",
 * "memory.oom.group",
 * "memory.events", "memory.events.local", "memory.stat", "cgroup.procs".  As snprintf: the
 * full length, or -EINVAL / -ENOENT (no such file; the root has no memory.max ...). */
int64_t cowvm_cgroup_read(cowvm_cgroup_t *cg, const char *file, char *buf, size_t size);
/* Write a settable file as the kernel parses it: "max", or bytes with an optional K, M, G, T
 * suffix (memparse); memory.oom.group takes 0 or 1.  0 or -EINVAL / -ENOENT. */
int cowvm_cgroup_write(cowvm_cgroup_t *cg, const char *file, const char *text);

/* ---- counters and introspection ------------------------------------------------------------ */

/* pagemap word bits, as fs/proc/task_mmu.c */
#define COWVM_PM_PFN_MASK       ((1ull << 55) - 1)
#define COWVM_PM_SOFT_DIRTY     (1ull << 55)
#define COWVM_PM_MMAP_EXCLUSIVE (1ull << 56)
#define COWVM_PM_UFFD_WP        (1ull << 57)
#define COWVM_PM_FILE           (1ull << 61)
#define COWVM_PM_SWAP           (1ull << 62)
#define COWVM_PM_PRESENT        (1ull << 63)

uint64_t cowvm_pagemap(cowvm_task_t *t, uint64_t addr); /* Linux pagemap word (frame numbers shown) */
/* The pagemap words of the n pages from addr (rounded down to a page), as n cowvm_pagemap calls
 * would give them but in one pass: 0, or -EINVAL (NULL, or a range beyond user space). */
int cowvm_pagemap_range(cowvm_task_t *t, uint64_t addr, size_t n, uint64_t *words);

struct cowvm_task_stats {
	uint64_t min_flt, maj_flt;  /* this thread's faults, as getrusage(RUSAGE_THREAD) */
	uint64_t rss_anon;          /* process RSS in pages, by type (MM_ANONPAGES ...) */
	uint64_t rss_swap;          /* MM_SWAPENTS */
	uint64_t rss_shmem;         /* MM_SHMEMPAGES (shared anonymous memory) */
	uint64_t nr_ptes;           /* page-table pages of the process (all levels) */
	uint64_t total_vm;          /* mapped pages */
	uint64_t nr_vmas;
	uint64_t tlb_misses;        /* this thread's software-TLB misses (page walks) */
	uint64_t locked_vm;         /* VmLck, in pages */
};
int cowvm_task_stats(cowvm_task_t *t, struct cowvm_task_stats *out);

struct cowvm_vmstat {
	/* state, in pages */
	uint64_t nr_free_pages;     /* frames in the buddy allocator and on per-CPU lists */
	uint64_t nr_anon_pages;     /* anon pages mapped at least once (NR_ANON_MAPPED) */
	uint64_t nr_shmem;          /* shared anonymous (shmem) pages */
	uint64_t nr_page_table_pages;
	uint64_t nr_active_anon, nr_inactive_anon;
	uint64_t nr_zero_page_mappings; /* PTEs that map the zero page right now */
	uint64_t nr_total_pages;    /* frames the machine has, the reserved and zero page included */
	/* events since create */
	uint64_t pgfault, pgmajfault, pgreuse;
	uint64_t pgalloc, pgfree;
	uint64_t cow_copies;        /* cowvm's own: wp_page_copy of a real page */
	uint64_t zero_page_maps;    /* cowvm's own: read faults that mapped the zero page */
	uint64_t zero_page_cows;    /* cowvm's own: writes that replaced the zero page */
	uint64_t tlb_flushes;       /* flush_tlb_* calls that invalidated entries of some task */
	uint64_t nr_pinned;         /* pages held by pins (FOLL_PIN) right now */
	uint64_t gup_fast_fallbacks; /* pages the lockless walk left to the slow path */
	uint64_t nr_unevictable;    /* pages on the unevictable list */
	uint64_t nr_mlock;          /* mlocked pages (Mlocked in /proc/meminfo) */
	uint64_t unevictable_pgs_mlocked, unevictable_pgs_munlocked; /* events */
	/* swap and reclaim (Linux's /proc/vmstat names) */
	uint64_t nr_swapcached;     /* pages in the swap cache */
	uint64_t pswpin, pswpout;   /* pages read from / written to the swap device */
	uint64_t pgscan_kswapd, pgscan_direct;   /* LRU pages reclaim looked at */
	uint64_t pgsteal_kswapd, pgsteal_direct; /* of them, pages it freed */
	uint64_t pgactivate, pgdeactivate;
};
int cowvm_vmstat(cowvm_t *vm, struct cowvm_vmstat *out);

/* smaps-style totals, in bytes, over the VMAs that intersect [addr, addr + len) — counted over
 * the whole of each VMA as /proc/pid/smaps does; addr = len = 0 gives smaps_rollup. */
struct cowvm_smaps {
	uint64_t size, rss, pss;
	uint64_t shared_clean, shared_dirty, private_clean, private_dirty;
	uint64_t referenced, anonymous, swap, swap_pss;
	uint64_t locked;            /* Pss of VM_LOCKED VMAs */
	uint64_t pss_dirty, pss_anon, pss_file, pss_shmem;
};
int cowvm_smaps(cowvm_task_t *t, uint64_t addr, uint64_t len, struct cowvm_smaps *out);

/* The whole-state checker: 0 when every invariant of DESIGN.md holds, else -EUCLEAN and a
 * sentence in why.  Takes every lock it needs; call it with no task running on another thread. */
int cowvm_check(cowvm_t *vm, char *why, size_t whylen);

/* ---- views for tools (read-only) ------------------------------------------------------------ */

struct cowvm_vma_info {
	uint64_t start, end, pgoff;
	int prot;           /* PROT_* */
	int shared;         /* MAP_SHARED mapping */
	unsigned long flags; /* VM_* bits as Linux (VM_READ 0x1, VM_WRITE 0x2, ... VM_DONTCOPY 0x20000) */
	uint64_t anon_vma;  /* an id of the VMA's anon_vma (0 = none yet), for pictures */
};
typedef int (*cowvm_vma_fn)(void *arg, const struct cowvm_vma_info *vma);
int cowvm_for_each_vma(cowvm_task_t *t, cowvm_vma_fn fn, void *arg); /* fn returns non-0 to stop */

uint64_t cowvm_pte(cowvm_task_t *t, uint64_t addr); /* raw x86-64 PTE (0 if no table) */

struct cowvm_frame_info {
	uint64_t pfn;
	int state;          /* COWVM_FRAME_* */
	int refcount, mapcount;
	int anon_exclusive; /* PageAnonExclusive */
	int lru;            /* 0 none, 1 inactive anon, 2 active anon, 3 unevictable */
	uint64_t index;     /* page->index */
	int mlocked;        /* PG_mlocked (KPF_MLOCKED) */
	int mlock_count;    /* PTEs of VM_LOCKED VMAs that map it */
	int swapcache;      /* PG_swapcache (KPF_SWAPCACHE) */
	uint64_t swap_offset; /* its slot when in the swap cache */
};
#define COWVM_FRAME_FREE     0
#define COWVM_FRAME_RESERVED 1
#define COWVM_FRAME_ZERO     2
#define COWVM_FRAME_PGTABLE  3
#define COWVM_FRAME_ANON     4
#define COWVM_FRAME_SHMEM    5
#define COWVM_FRAME_PINNED   6 /* anon page no PTE maps any more, held by a pin or reference */
#define COWVM_FRAME_SWAPCACHE 7 /* page no PTE maps, kept by the swap cache */
int cowvm_frame_info(cowvm_t *vm, uint64_t pfn, struct cowvm_frame_info *out);

/* rmap_walk: every (task's process, address) that maps the frame.  fn gets the pid of a task of
 * the mapping mm and the user address; returns non-0 to stop.  Returns the number of mappings.
 * A dput SNAP image of a child maps its frames too (they count in mapcount): it is reported
 * with the child's pid negated. */
typedef int (*cowvm_rmap_fn)(void *arg, int pid, uint64_t addr);
int cowvm_rmap_walk(cowvm_t *vm, uint64_t pfn, cowvm_rmap_fn fn, void *arg);

/* ---- /proc text, in the host kernel's exact format ----------------------------------------
 * Each writes the text of the file into buf (at most size bytes, NUL-terminated when size > 0)
 * and returns its full length, as snprintf does, or -EINVAL.
 *  - status: the memory lines of /proc/PID/status, VmPeak: .. HugetlbPages:
 *  - smaps: every VMA's header and fields, ending with VmFlags (no "sd" without soft-dirty);
 *    a shared anonymous mapping is named "/dev/zero (deleted)", the heap "[heap]"
 *  - smaps_rollup: the [rollup] header and the summed fields
 *  - maps: the VMA lines of /proc/PID/maps
 */
int64_t cowvm_proc_status(cowvm_task_t *t, char *buf, size_t size);
int64_t cowvm_proc_smaps(cowvm_task_t *t, char *buf, size_t size);
int64_t cowvm_proc_smaps_rollup(cowvm_task_t *t, char *buf, size_t size);
int64_t cowvm_proc_maps(cowvm_task_t *t, char *buf, size_t size);

/* ---- tracing: one event per completed fault (and the step stream below) ---------------------- */

#define COWVM_TRACE_MAX_PATH 10
struct cowvm_fault_event {
	int pid, tid;
	uint64_t addr;
	int write;          /* 1 write (or unshare), 0 read */
	int user;           /* 1 the task's access, 0 a kernel copy (uaccess) */
	const char *path[COWVM_TRACE_MAX_PATH]; /* Linux function names, outermost first */
	int npath;
	uint64_t old_pfn, new_pfn; /* frames before and after (0 = none) */
	const char *outcome;       /* "ok", "SIGSEGV", "OOM", "fixup" ... */
};
typedef void (*cowvm_tracer_fn)(void *arg, const struct cowvm_fault_event *ev);
void cowvm_set_tracer(cowvm_t *vm, cowvm_tracer_fn fn, void *arg); /* fn NULL to stop */

/* ---- tracing: the kernel's steps, as a stream of events ------------------------------------
 * With a trace function set, every step cowvm takes in the kernel's name is reported as it
 * happens: ENTER and LEAVE of a Linux function (nesting is the call tree: depth 0 outermost,
 * counted per host thread), and NOTE events that say what a step found or decided and why
 * (name: "copy", "reuse", "found" ...; reason: a sentence; decision 1 when it is the rule
 * that chose the outcome of a fault: reuse, copy, zero page, unshare ...).  Each event has up
 * to COWVM_TRACE_MAX_FACTS key=value facts (a PTE's bits, mapcount, refcount, counts).
 * Faults, fork (copy_page_range), exit and munmap (zap_pte_range), mprotect, madvise,
 * dput/dget and pin/unpin report their steps.  The strings are static; the event lives for
 * the call only.  Called with the library's locks held: fn must not call back into cowvm.
 * Costs one predictable branch per step when no trace function is set.
 */
#define COWVM_TRACE_ENTER 1
#define COWVM_TRACE_LEAVE 2
#define COWVM_TRACE_NOTE  3
#define COWVM_FACT_NUMBER 1 /* value, decimal */
#define COWVM_FACT_HEX    2 /* value, an address or a raw entry */
#define COWVM_FACT_BOOL   3 /* value 0 or 1 */
#define COWVM_FACT_FRAME  4 /* value a pfn; text "zero" for the zero page, "-" for none */
#define COWVM_FACT_TEXT   5 /* text */
#define COWVM_TRACE_MAX_FACTS 8
struct cowvm_trace_fact {
	const char *key;
	int type;                  /* COWVM_FACT_* */
	uint64_t value;
	const char *text;          /* TEXT, and FRAME's words; else NULL */
};
struct cowvm_trace_event {
	int kind;                  /* COWVM_TRACE_* */
	int pid, tid;              /* the task the step runs for (0: none known) */
	int depth;                 /* ENTER/LEAVE: the call's depth; NOTE: its caller's + 1 */
	const char *name;          /* the Linux function, or what a NOTE found or decided */
	const char *reason;        /* NOTE: why; else NULL */
	int decision;              /* NOTE: 1 for the rule that chose a fault's outcome */
	int nfacts;
	struct cowvm_trace_fact facts[COWVM_TRACE_MAX_FACTS];
};
typedef void (*cowvm_trace_fn)(void *arg, const struct cowvm_trace_event *ev);
void cowvm_set_trace(cowvm_t *vm, cowvm_trace_fn fn, void *arg); /* fn NULL to stop */

/* ---- fault injection in the frame allocator ---------------------------------------------------- */

#define COWVM_FAIL_OFF   0
#define COWVM_FAIL_NEXT  1 /* fail the next allocation (then off) */
#define COWVM_FAIL_AFTER 2 /* let n allocations succeed, then fail every one */
#define COWVM_FAIL_NTH   3 /* fail only the n-th allocation from now (1 = next) */
#define COWVM_FAIL_CAP   4 /* fail while n or more frames are in use */
int cowvm_fail_alloc(cowvm_t *vm, int mode, uint64_t n);

/* ---- swap (mm/swapfile.c, mm/vmscan.c) -------------------------------------------------------
 * With a swap device (cowvm_config.swap_path), MADV_PAGEOUT and reclaim write anonymous pages to
 * it and replace their PTEs by swap entries; the next access reads them back (a major fault) or
 * finds them still in the swap cache (a minor fault).  See docs/fidelity.md for what is modelled.
 */
struct cowvm_swap_info {
	int enabled;              /* a device is configured and not swapped off */
	uint64_t total_slots;     /* page slots, the header slot excluded (SwapTotal / 4 KiB) */
	uint64_t used_slots;      /* slots with a swap PTE or a swap-cache page (SwapTotal - SwapFree) */
	uint64_t swap_cache_pages; /* pages in the swap cache (SwapCached) */
};
int cowvm_swap_info(cowvm_t *vm, struct cowvm_swap_info *out); /* 0 or -EINVAL */
/* swapoff(2): every swapped page is read back and mapped again (read-only and old, as Linux's
 * unuse_pte), the swap cache is emptied and the device closed (unlinked if cowvm created it).
 * 0; -EINVAL without a device; -ENOMEM when memory ran out (the device stays on, the pages
 * brought in so far stay in); -EIO when a slot could not be read (the device stays on).  Call it
 * with no task running on another host thread. */
int cowvm_swapoff(cowvm_t *vm);
/* Proactive reclaim (cgroup memory.reclaim): age and shrink the LRU lists until nr pages are
 * freed or nothing more can be.  Returns the pages freed, or -EINVAL. */
int64_t cowvm_reclaim(cowvm_t *vm, uint64_t nr);
/* Fault injection on the swap device: the n-th swap write (or read) from now (1 = the next) fails
 * the way `what` says, then injection is off.  A failed write leaves the page in the swap cache,
 * dirty, with its contents (Linux re-dirties it); a failed read makes the access that needed the
 * page fail as a SIGBUS would (-EFAULT from cowvm_read/write), with the slot and its data kept,
 * so a later access may succeed. */
#define COWVM_SWAP_FAIL_OFF         0
#define COWVM_SWAP_FAIL_SHORT_WRITE 1 /* pwrite writes half the page */
#define COWVM_SWAP_FAIL_ENOSPC      2 /* pwrite fails with ENOSPC */
#define COWVM_SWAP_FAIL_SHORT_READ  3 /* pread reads half the page */
#define COWVM_SWAP_FAIL_EIO_READ    4 /* pread fails with EIO */
int cowvm_fail_swap_io(cowvm_t *vm, int what, uint64_t n); /* 0, -EINVAL (no device, bad what) */

#ifdef __cplusplus
}
#endif

#if defined(COWVM_BUILDING_LIBRARY) && defined(__GNUC__)
#pragma GCC visibility pop
#endif
#endif /* COWVM_H */
