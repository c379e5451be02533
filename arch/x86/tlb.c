/*
 * tlb.c - the software MMU: every load and store a task makes goes through its TLB; a miss
 * walks the 4-level table and sets accessed/dirty as the hardware would; a translation that
 * the PTE does not allow is a page fault, handed to the trap handler (fault.c).
 *
 * TLB shootdown.  A task's TLB is written only by the host thread running the task.  Any other
 * thread that downgrades or removes a PTE of that mm raises the task's tlb_flush_gen and then
 * waits until an access the task has in flight (in_flight 1) is over, exactly as a CPU sending
 * a flush IPI waits for the other CPUs' acknowledgements:
 *
 *     accessing thread                     flushing thread
 *     in_flight = 1                        change the PTE
 *     read tlb_flush_gen; if it moved,     tlb_flush_gen++
 *        empty the TLB                     full barrier (membarrier, or seq_cst)
 *     translate, copy                      if in_flight is 1: wait until it is 0
 *     in_flight = 0                        free the frame / table
 *
 * Either the accessor sees the new generation and empties its TLB first, or the flusher sees
 * the access in flight and waits for it (a 1 it sees may already be a later access, which
 * read the new generation: waiting for that one too is harmless); so after
 * flush_tlb_mm_range returns no access can use the old translation.  With membarrier(2) the accessor's side needs no fence at all: the
 * flusher forces one on every running thread, which keeps a TLB hit at a few nanoseconds.
 */
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../mm/mm.h"

__thread struct task_struct *current __attribute__((tls_model("initial-exec")));

#if defined(__SANITIZE_THREAD__)
#define COWVM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COWVM_TSAN 1
#endif
#endif

static bool use_membarrier;
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register(void)
{
#ifndef COWVM_TSAN /* ThreadSanitizer cannot see membarrier's ordering: use fences there */
	use_membarrier =
		syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

void tlb_init_shootdown(void)
{
	pthread_once(&membarrier_once, membarrier_register);
}

static void local_flush_tlb_all(struct task_struct *t)
{
	for (int i = 0; i < TLB_ENTRIES; i++)
		t->mmu.tlb[i].tag = 0;
}

static void local_flush_tlb_range(struct task_struct *t, uint64_t start, uint64_t end)
{
	if ((end - start) >> PAGE_SHIFT >= TLB_ENTRIES) {
		local_flush_tlb_all(t);
		return;
	}
	for (uint64_t addr = start & PAGE_MASK; addr < end; addr += PAGE_SIZE) {
		struct cowvm_tlb_entry *e = &t->mmu.tlb[(addr >> PAGE_SHIFT) & (TLB_ENTRIES - 1)];
		if ((e->tag & PAGE_MASK) == addr)
			e->tag = 0;
	}
}

/* in_flight is 1 from mmu_enter to mmu_exit (the value returned is for mmu_exit).  The
 * inline TLB hit of include/cowvm.h does the same, and leaves anything else to this path. */
static inline uint64_t mmu_enter(struct task_struct *t)
{
	if (likely(use_membarrier)) {
		__atomic_store_n(&t->mmu.in_flight, 1, __ATOMIC_RELAXED);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		__atomic_exchange_n(&t->mmu.in_flight, 1, __ATOMIC_SEQ_CST);
	}
	uint64_t gen = __atomic_load_n(&t->mmu.tlb_flush_gen,
				       use_membarrier ? __ATOMIC_RELAXED : __ATOMIC_SEQ_CST);
	if (unlikely((gen & ~1ull) != t->mmu.tlb_seen_gen)) { /* the low bit: fence mode */
		local_flush_tlb_all(t);
		t->mmu.tlb_seen_gen = gen & ~1ull;
	}
	return 1;
}

static inline void mmu_exit(struct task_struct *t, uint64_t seq)
{
	(void)seq;
	__atomic_store_n(&t->mmu.in_flight, 0, __ATOMIC_RELEASE);
}

/*
 * A new task's MMU: empty TLB and the layout's version.  Flushers raise tlb_flush_gen by 2;
 * its low bit says the accesses need fences (no membarrier), which keeps it unequal to
 * tlb_seen_gen forever, so the inline hit of include/cowvm.h always declines.
 */
void mmu_init(struct task_struct *t)
{
	tlb_init_shootdown();
	t->mmu.layout_version = COWVM_TLB_LAYOUT_VERSION;
	t->mmu.tlb_flush_gen = use_membarrier ? 0 : 1;
	t->mmu.tlb_seen_gen = 0;
}

/* For walks that must not race with the freeing of tables (gup_fast): an access section. */
void mmu_section_enter(struct task_struct *t)
{
	(void)mmu_enter(t);
}

void mmu_section_exit(struct task_struct *t)
{
	mmu_exit(t, 1);
}

/*
 * flush_tlb_mm_range - no task of mm may translate [start, end) with what it cached before.
 * Caller holds mm's mmap_lock (which keeps the thread list still) and is not inside an access.
 */
void flush_tlb_mm_range(struct mm_struct *mm, uint64_t start, uint64_t end)
{
	struct task_struct *t, *remote[64];
	int nremote = 0;
	bool overflow = false;

	count_vm_event(mm->vm, TLB_FLUSH);
	list_for_each_entry(t, &mm->threads, thread_node) {
		if (t == current) {
			local_flush_tlb_range(t, start, end);
			continue;
		}
		__atomic_fetch_add(&t->mmu.tlb_flush_gen, 2, __ATOMIC_SEQ_CST);
		if (nremote < 64)
			remote[nremote++] = t;
		else
			overflow = true;
	}
	if (!nremote)
		return;
	if (use_membarrier)
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	else
		atomic_thread_fence(memory_order_seq_cst);
	if (overflow) { /* more remote tasks than the array holds: wait on each in turn */
		list_for_each_entry(t, &mm->threads, thread_node) {
			if (t == current)
				continue;
			uint64_t s = __atomic_load_n(&t->mmu.in_flight, __ATOMIC_SEQ_CST);
			while ((s & 1) && __atomic_load_n(&t->mmu.in_flight, __ATOMIC_ACQUIRE) == s)
				sched_yield();
		}
		return;
	}
	for (int i = 0; i < nremote; i++) {
		uint64_t s = __atomic_load_n(&remote[i]->mmu.in_flight, __ATOMIC_SEQ_CST);
		while ((s & 1) && __atomic_load_n(&remote[i]->mmu.in_flight, __ATOMIC_ACQUIRE) == s)
			sched_yield();
	}
}

/* ---- translation ----------------------------------------------------------------------------- */

/*
 * The page walk of a TLB miss.  Every level must be present and user-accessible (and writable
 * for a write).  Accessed, and dirty on a write, are set with a compare-and-swap that fails if
 * the kernel changed the entry meanwhile, as the hardware's locked update does.  Returns the
 * host address of the frame, or NULL: a page fault.
 */
static uint8_t *walk_and_fill(struct task_struct *t, uint64_t page_addr, bool write)
{
	struct cowvm *vm = t->vm;
	static const int shifts[3] = { PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT };
	const uint64_t need = _PAGE_PRESENT | _PAGE_USER | (write ? _PAGE_RW : 0);

	/* Only the task's own thread counts its misses: a plain add, no lock prefix. */
	atomic_store_explicit(&t->tlb_misses,
			      atomic_load_explicit(&t->tlb_misses, memory_order_relaxed) + 1,
			      memory_order_relaxed);
retry:;
	pte_t *table = table_of(vm, t->mm->pgd);
	for (int i = 0; i < 3; i++) {
		pte_t e = ptep_get(&table[(page_addr >> shifts[i]) & 511]);
		if ((e & need) != need)
			return NULL;
		table = table_of(vm, pte_pfn(e));
	}
	pte_t *ptep = &table[pte_index(page_addr)];
	pte_t pte = ptep_get(ptep);
	if ((pte & need) != need)
		return NULL;
	uint64_t bits = _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
	if ((pte & bits) != bits) {
		pte_t newpte = pte | bits;
		if (!__atomic_compare_exchange_n(ptep, &pte, newpte, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			goto retry;
		pte = newpte;
	}
	uint64_t pfn = pte_pfn(pte);
	if (unlikely(!pfn_valid(vm, pfn)))
		bug("PTE %#llx maps frame beyond memory", (unsigned long long)pte);
	uint8_t *host = pfn_to_virt(vm, pfn);
	struct cowvm_tlb_entry *e = &t->mmu.tlb[(page_addr >> PAGE_SHIFT) & (TLB_ENTRIES - 1)];
	e->host = host;
	e->tag = page_addr | TLB_VALID |
		 ((pte & (_PAGE_RW | _PAGE_DIRTY)) == (_PAGE_RW | _PAGE_DIRTY) ? TLB_WRITE : 0);
	return host;
}

static inline uint8_t *translate(struct task_struct *t, uint64_t page_addr, bool write)
{
	const struct cowvm_tlb_entry *e = &t->mmu.tlb[(page_addr >> PAGE_SHIFT) & (TLB_ENTRIES - 1)];
	uint64_t want = page_addr | TLB_VALID | (write ? TLB_WRITE : 0);
	if (likely(e->tag == want || (!write && e->tag == (want | TLB_WRITE))))
		return e->host;
	return walk_and_fill(t, page_addr, write);
}

#define ACCESS_CHUNK 64 /* pages translated together before any byte moves */

static void copy_chunk(uint8_t **host, uint64_t addr, void *buf, size_t len, bool write)
{
	uint8_t *b = buf;
	for (int i = 0; len > 0; i++) {
		size_t off = addr & (PAGE_SIZE - 1);
		size_t n = PAGE_SIZE - off < len ? PAGE_SIZE - off : len;
		if (write)
			memcpy(host[i] + off, b, n);
		else
			memcpy(b, host[i] + off, n);
		addr += n;
		b += n;
		len -= n;
	}
}

/*
 * Translate every page of [addr, addr + len) (at most ACCESS_CHUNK pages), faulting pages in
 * as needed, and then copy (nothing when buf is NULL: a probe).  Returns 0 or the unresolved
 * fault's reason with *fault_addr set.
 */
static unsigned access_chunk(struct task_struct *t, uint64_t addr, void *buf, size_t len,
			     bool write, bool user, uint64_t *fault_addr)
{
	uint8_t *host[ACCESS_CHUNK];
	uint64_t first = addr & PAGE_MASK, last = (addr + len - 1) & PAGE_MASK;
	uint64_t prev_fault = UINT64_MAX;
	unsigned retries = 0;

	for (;;) {
		uint64_t page = first;
		int i = 0;
		uint64_t seq = mmu_enter(t);
		for (; page <= last; page += PAGE_SIZE, i++) {
			host[i] = translate(t, page, write);
			if (!host[i])
				break;
		}
		if (page > last) {
			if (buf) /* NULL: a probe that only faults the pages in */
				copy_chunk(host, addr, buf, len, write);
			mmu_exit(t, seq);
			return 0;
		}
		mmu_exit(t, seq);
		unsigned ret = do_user_addr_fault(t, page < addr ? addr : page, write, user);
		if (ret) {
			*fault_addr = page < addr ? addr : page;
			return ret;
		}
		if (page == prev_fault && ++retries > 100000)
			bug("fault at %#llx resolved but the access still faults",
			    (unsigned long long)page);
		prev_fault = page;
	}
}

/*
 * mmu_access - an access by task t (user = its own load/store; else the kernel's uaccess on
 * its behalf).  Up to ACCESS_CHUNK pages move only when all are translated; a longer access is
 * first faulted in page by page, then copied, so a failing access moves no byte unless another
 * thread unmaps memory during it.  Returns 0 or the fault reason, *fault_addr the first byte
 * that could not be accessed.  Caller holds no locks.
 */
unsigned mmu_access(struct task_struct *t, uint64_t addr, void *buf, size_t len, bool write,
		    bool user, uint64_t *fault_addr)
{
	if (len == 0)
		return 0;
	if (addr + len < addr || addr + len > (1ull << 47)) { /* non-canonical: #GP, SIGSEGV */
		*fault_addr = addr + len < addr || addr >= (1ull << 47) ? addr : (1ull << 47);
		return VM_FAULT_SIGSEGV;
	}
	uint64_t npages = (((addr + len - 1) & PAGE_MASK) - (addr & PAGE_MASK)) / PAGE_SIZE + 1;
	if (npages > ACCESS_CHUNK) {
		/* Probe: fault every page in, moving nothing. */
		for (uint64_t page = addr & PAGE_MASK; page < addr + len; page += PAGE_SIZE) {
			uint64_t a = page < addr ? addr : page;
			unsigned ret = access_chunk(t, a, NULL, 1, write, user, fault_addr);
			if (ret)
				return ret;
		}
	}
	uint8_t *b = buf;
	while (len > 0) {
		uint64_t chunk_end = (addr & PAGE_MASK) + (uint64_t)ACCESS_CHUNK * PAGE_SIZE;
		size_t n = chunk_end - addr < len ? chunk_end - addr : len;
		unsigned ret = access_chunk(t, addr, b, n, write, user, fault_addr);
		if (ret)
			return ret;
		addr += n;
		b += n;
		len -= n;
	}
	return 0;
}

/* ---- the public load/store helpers: a TLB hit is a handful of instructions -------------------- */

static int access_errno(unsigned ret)
{
	return (ret & VM_FAULT_OOM) ? -ENOMEM : -EFAULT;
}

int cowvm_read(cowvm_task_t *t, uint64_t addr, void *buf, size_t len)
{
	uint64_t fault_addr;
	if (!t || (!buf && len))
		return -EINVAL;
	current = t;
	unsigned ret = mmu_access(t, addr, buf, len, false, true, &fault_addr);
	return ret ? access_errno(ret) : 0;
}

int cowvm_write(cowvm_task_t *t, uint64_t addr, const void *buf, size_t len)
{
	uint64_t fault_addr;
	if (!t || (!buf && len))
		return -EINVAL;
	current = t;
	unsigned ret = mmu_access(t, addr, (void *)buf, len, true, true, &fault_addr);
	return ret ? access_errno(ret) : 0;
}


/*
 * An 8-byte access inside one page that missed the TLB: walk, fault, walk again, without the
 * general access machinery (a fault costs ~150 instructions less).
 */
static __attribute__((noinline)) int access8_slow(struct task_struct *t, uint64_t addr, void *val, bool write)
{
	current = t;
	for (unsigned tries = 0;; tries++) {
		uint64_t seq = mmu_enter(t);
		uint8_t *host = walk_and_fill(t, addr & PAGE_MASK, write);
		if (host) {
			host += addr & (PAGE_SIZE - 1);
			if (write)
				memcpy(host, val, 8);
			else
				memcpy(val, host, 8);
			mmu_exit(t, seq);
			return 0;
		}
		mmu_exit(t, seq);
		unsigned ret = do_user_addr_fault(t, addr, write, true);
		if (ret)
			return access_errno(ret);
		if (tries > 100000)
			bug("fault at %#llx resolved but the access still faults", (unsigned long long)addr);
	}
}

/*
 * cowvm_access64_slow - what include/cowvm.h's inline cowvm_load64 / cowvm_store64 do not do
 * themselves: the whole access, TLB lookup included (so a hit that the inline path declined,
 * e.g. while a flush is pending, is still a hit here).  Only canonical user pages ever get a
 * TLB entry, so a non-canonical address simply misses and the slow path refuses it.
 */
#define TLB_IDX(addr) (((addr) >> PAGE_SHIFT) & (TLB_ENTRIES - 1))

int cowvm_access64_slow(cowvm_task_t *t, uint64_t addr, uint64_t *val, int write)
{
	if (!t || !val)
		return -EINVAL;
	if (likely((addr & (PAGE_SIZE - 1)) <= PAGE_SIZE - 8)) {
		uint64_t seq = mmu_enter(t);
		const struct cowvm_tlb_entry *e = &t->mmu.tlb[TLB_IDX(addr)];
		uint64_t want = (addr & PAGE_MASK) | TLB_VALID | TLB_WRITE;
		if (write ? e->tag == want : (e->tag | TLB_WRITE) == want) {
			if (write)
				memcpy(e->host + (addr & (PAGE_SIZE - 1)), val, 8);
			else
				memcpy(val, e->host + (addr & (PAGE_SIZE - 1)), 8);
			mmu_exit(t, seq);
			return 0;
		}
		mmu_exit(t, seq);
		if (addr < (1ull << 47))
			return access8_slow(t, addr, val, write);
	}
	return write ? cowvm_write(t, addr, val, 8) : cowvm_read(t, addr, val, 8);
}
