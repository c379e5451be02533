/*
 * gup.c - taking hold of user pages from the kernel side: get_user_pages (a reference, as
 * vmsplice takes), pin_user_pages (a pin, as DMA and RDMA take), the lockless fast walk, and
 * access_remote_vm (ptrace, /proc/pid/mem) with FOLL_FORCE.
 *
 * What keeps COW correct with other holders (reference/linux-cow.md §6, §7):
 *  - FOLL_WRITE follows only a writable PTE, or, with FOLL_FORCE in a private mapping the
 *    process may not write, an exclusive anonymous page (can_follow_write_pte).  Anything else
 *    faults with WRITE first, which breaks COW: a forced write never reaches a shared page
 *    (Dirty COW, CVE-2016-5195).
 *  - A read-only FOLL_PIN of a page that is not exclusive faults with UNSHARE first
 *    (gup_must_unshare), so the process's later writes reuse the pinned page instead of copying
 *    away from it (CVE-2020-29374 and the PageAnonExclusive work).
 *  - A pin adds GUP_PIN_COUNTING_BIAS to the refcount and marks the mm MMF_HAS_PINNED; fork
 *    then copies such pages for the child instead of sharing them (copy_page_range).
 *
 * Every pin is on vm->pins so the checker can account for the references it holds.
 */
#include "mm.h"

#define GUP_PIN_COUNTING_BIAS 1024
#define FOLL_FORCE  0x00008u /* internal: access_remote_vm */
#define FOLL_REMOTE 0x02000u /* internal: the caller is not the task */
#define FOLL_TOUCH  0x00004u /* internal: mark the page accessed, dirty for a write (populate) */

/* check_vma_flags: may this VMA be accessed the way foll asks?  0 or -EFAULT. */
static int check_vma_flags(struct vm_area_struct *vma, unsigned foll)
{
	unsigned long vm_flags = vma->vm_flags;
	if (foll & COWVM_FOLL_WRITE) {
		if (!(vm_flags & VM_WRITE)) {
			if (!(foll & FOLL_FORCE) || !is_cow_mapping(vm_flags))
				return -EFAULT;
		}
	} else if (!(vm_flags & VM_READ)) {
		if (!(foll & FOLL_FORCE) || !(vm_flags & VM_MAYREAD))
			return -EFAULT;
	}
	return 0;
}

/* can_follow_write_pte: may a FOLL_WRITE user write through this read-only-or-writable PTE? */
static bool can_follow_write_pte(pte_t pte, struct page *page, struct vm_area_struct *vma,
				 unsigned foll)
{
	if (pte_write(pte))
		return true;
	if (!(foll & FOLL_FORCE))
		return false;
	if (vma->vm_flags & (VM_MAYSHARE | VM_SHARED))
		return false;
	if (!(vma->vm_flags & VM_MAYWRITE) || (vma->vm_flags & VM_WRITE))
		return false;
	/* A forced write lands only in a page that is exclusively this process's. */
	if (!page || !PageAnon(page) || !PageAnonExclusive(page))
		return false;
	/* While soft-dirty tracks writes, the PTE must carry the mark. */
	return (vma->vm_flags & VM_SOFTDIRTY) || pte_soft_dirty(pte);
}

/*
 * gup_must_unshare: must a read-only pin unshare the page before taking it?  page NULL means
 * the zero page.  vma NULL means the lockless walk, which cannot look at the VMA.
 */
static bool gup_must_unshare(struct vm_area_struct *vma, unsigned foll, struct page *page)
{
	if (!(foll & COWVM_FOLL_PIN) || (foll & COWVM_FOLL_WRITE))
		return false;
	if (!page || !PageAnon(page)) {
		/* Only a long-term R/O pin must see later writes through a private mapping. */
		if (!(foll & COWVM_FOLL_LONGTERM))
			return false;
		if (!vma)
			return true;
		return is_cow_mapping(vma->vm_flags);
	}
	return !PageAnonExclusive(page);
}

/* try_grab_page: the reference the holder keeps (none for the zero page). */
static void try_grab_page(struct cowvm *vm, struct page *page, unsigned foll)
{
	if (PageZero(page))
		return;
	if (foll & COWVM_FOLL_PIN) {
		atomic_fetch_add_explicit(&page->_refcount, GUP_PIN_COUNTING_BIAS, memory_order_relaxed);
		mod_node_page_state(vm, NR_FOLL_PIN, 1);
	} else {
		get_page(page);
	}
}

static void gup_put_page(struct cowvm *vm, struct page *page, unsigned foll)
{
	if (PageZero(page))
		return;
	if (foll & COWVM_FOLL_PIN) {
		mod_node_page_state(vm, NR_FOLL_PIN, -1);
		int old = atomic_fetch_sub_explicit(&page->_refcount, GUP_PIN_COUNTING_BIAS - 1,
						    memory_order_acq_rel);
		if (unlikely(old < GUP_PIN_COUNTING_BIAS))
			bug("unpin of frame %llu with refcount %d", (unsigned long long)page_to_pfn(vm, page), old);
	}
	put_page(vm, page); /* the last unit: frees the page if nothing else holds it */
}

enum follow_result { FOLLOW_OK, FOLLOW_FAULT, FOLLOW_UNSHARE };

/*
 * follow_page_pte: take hold of the page behind addr if its PTE allows the access.  Called
 * with mmap_lock held for reading; takes the PTL.
 */
static enum follow_result follow_page_pte(struct vm_area_struct *vma, uint64_t addr, unsigned foll,
					  struct page **pagep)
{
	struct mm_struct *mm = vma->vm_mm;
	struct cowvm *vm = mm->vm;
	pte_t *ptep = pte_offset_map(mm, addr);
	if (!ptep)
		return FOLLOW_FAULT;
	spin_lock(&mm->page_table_lock);
	pte_t pte = ptep_get(ptep);
	enum follow_result res = FOLLOW_FAULT;
	if (!pte_present(pte))
		goto out;
	struct page *page = vm_normal_page(vma, addr, pte);
	if ((foll & COWVM_FOLL_WRITE) && !can_follow_write_pte(pte, page, vma, foll))
		goto out;
	if (gup_must_unshare(vma, foll, page)) {
		res = FOLLOW_UNSHARE;
		goto out;
	}
	if (!page)
		page = vm->zero_page;
	if ((foll & FOLL_TOUCH) && !PageZero(page)) {
		if ((foll & COWVM_FOLL_WRITE) && !pte_dirty(pte))
			SetPageDirty(page); /* folio_mark_dirty: the populated page will be written */
		SetPageFlag(page, PG_referenced); /* folio_mark_accessed */
	}
	if (pagep) {
		try_grab_page(vm, page, foll);
		*pagep = page;
	}
	res = FOLLOW_OK;
out:
	spin_unlock(&mm->page_table_lock);
	return res;
}

/*
 * __get_user_pages - the slow path: follow each page, faulting (WRITE or UNSHARE) until the
 * PTE allows the hold.  Called with mmap_lock held for reading.  Returns the pages held (from
 * the first), or -EFAULT / -ENOMEM when not even the first could be.  Faults count as task's.
 * pages NULL: fault in only, hold nothing (populate).
 */
static long __get_user_pages(struct task_struct *task, uint64_t start, size_t nr, unsigned foll,
			     struct page **pages)
{
	struct mm_struct *mm = task->mm;
	size_t i;
	for (i = 0; i < nr; i++) {
		uint64_t addr = start + i * PAGE_SIZE;
		struct vm_area_struct *vma = find_vma(mm, addr);
		int err = (!vma || vma->vm_start > addr) ? -EFAULT : check_vma_flags(vma, foll);
		if (err)
			return i ? (long)i : err;
		for (;;) {
			enum follow_result r = follow_page_pte(vma, addr, foll, pages ? &pages[i] : NULL);
			if (tracing(task->vm))
				trace_call(task->vm, "follow_page_pte", TF_HEX("address", addr),
					   TF_TEXT("result", r == FOLLOW_OK ? "held" : r == FOLLOW_UNSHARE ?
						   "must unshare: a read-only pin of a page that may be shared (faultin_page with FAULT_FLAG_UNSHARE)" :
						   "the PTE does not allow it: fault it in (faultin_page)"));
			if (r == FOLLOW_OK)
				break;
			/* faultin_page */
			unsigned fault_flags = r == FOLLOW_UNSHARE ? FAULT_FLAG_UNSHARE :
					       (foll & COWVM_FOLL_WRITE) ? FAULT_FLAG_WRITE : 0;
			if (foll & FOLL_REMOTE)
				fault_flags |= FAULT_FLAG_REMOTE;
			unsigned ret = handle_mm_fault(vma, addr, fault_flags, task);
			if (ret & VM_FAULT_ERROR) {
				err = (ret & VM_FAULT_OOM) ? -ENOMEM : -EFAULT;
				return i ? (long)i : err;
			}
		}
	}
	return (long)nr;
}

/*
 * faultin_page_range - MADV_POPULATE_READ / _WRITE (madvise_populate): fault in [start, end)
 * through GUP without holding the pages, as reads or writes, without FOLL_FORCE.  A present PTE
 * that allows the access is left alone (no fault); a write populate of a clean writable page
 * marks it dirty (FOLL_TOUCH).  Stops at the first error, the pages before it populated:
 * -ENOMEM for a hole or no memory, -EINVAL for a VMA that does not allow the access (PROT_NONE,
 * a write to read-only memory, a read of write- or exec-only memory), -EFAULT for SIGBUS /
 * SIGSEGV.  mmap_lock held for reading.
 */
int faultin_page_range(struct task_struct *task, uint64_t start, uint64_t end, bool write)
{
	struct mm_struct *mm = task->mm;
	unsigned foll = FOLL_TOUCH | (write ? COWVM_FOLL_WRITE : 0);
	for (uint64_t addr = start; addr < end;) {
		struct vm_area_struct *vma = find_vma(mm, addr);
		if (!vma || vma->vm_start > addr)
			return -ENOMEM;
		if (check_vma_flags(vma, foll))
			return -EINVAL;
		uint64_t vend = vma->vm_end < end ? vma->vm_end : end;
		size_t nr = (vend - addr) >> PAGE_SHIFT;
		long got = __get_user_pages(task, addr, nr, foll, NULL);
		if (got < 0)
			return (int)got;
		addr += (uint64_t)got << PAGE_SHIFT;
		if ((size_t)got < nr) { /* the page after the last one got failed: its error */
			got = __get_user_pages(task, addr, 1, foll, NULL);
			return got < 0 ? (int)got : -EFAULT;
		}
	}
	return 0;
}

/*
 * populate_vma_page_range - fault in [start, end) of one VMA for mlock or MAP_POPULATE: write
 * faults for private writable memory (to break COW now), read faults with FOLL_FORCE otherwise
 * (shared memory is not dirtied for nothing; the zero page stays).  VM_LOCKONFAULT VMAs are
 * left as they are; PROT_NONE ones are -EFAULT.  mmap_lock held (read or write).  Returns 0 or
 * -errno.
 */
int populate_vma_page_range(struct task_struct *task, struct vm_area_struct *vma,
			    uint64_t start, uint64_t end)
{
	if (vma->vm_flags & VM_LOCKONFAULT)
		return 0;
	if (!(vma->vm_flags & VM_ACCESS_FLAGS))
		return -EFAULT;
	unsigned foll = FOLL_TOUCH;
	if ((vma->vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE)
		foll |= COWVM_FOLL_WRITE;
	else
		foll |= FOLL_FORCE;
	size_t nr = (end - start) >> PAGE_SHIFT;
	long got = __get_user_pages(task, start, nr, foll, NULL);
	if (got < 0)
		return (int)got;
	if ((size_t)got < nr) {
		got = __get_user_pages(task, start + ((uint64_t)got << PAGE_SHIFT), 1, foll, NULL);
		return got < 0 ? (int)got : -EFAULT;
	}
	return 0;
}

/*
 * __mm_populate - populate every VMA that meets [start, start + len) (holes are skipped).
 * Takes mmap_lock for reading.  With ignore_errors (mm_populate) a failing VMA is skipped;
 * otherwise the first error is returned.
 */
int __mm_populate(struct task_struct *task, uint64_t start, uint64_t len, bool ignore_errors)
{
	struct mm_struct *mm = task->mm;
	uint64_t end = start + len;
	int ret = 0;
	down_read(&mm->mmap_lock);
	for (uint64_t nstart = start; nstart < end;) {
		struct vm_area_struct *vma = find_vma(mm, nstart);
		if (!vma || vma->vm_start >= end)
			break;
		if (nstart < vma->vm_start)
			nstart = vma->vm_start;
		uint64_t nend = vma->vm_end < end ? vma->vm_end : end;
		ret = populate_vma_page_range(task, vma, nstart, nend);
		if (ret < 0) {
			if (!ignore_errors)
				break;
			ret = 0;
		}
		nstart = nend;
	}
	up_read(&mm->mmap_lock);
	return ret;
}

/*
 * gup_fast: the lockless walk of get_user_pages_fast.  No mmap_lock: the walk runs inside an
 * access section of the task, so TLB shootdowns (and the freeing of tables behind them) wait
 * for it, as interrupts-off does in Linux.  Takes what it can from the start and leaves the
 * rest (a missing or read-only PTE, the zero page, a page to unshare) to the slow path.
 */
static size_t gup_fast(struct task_struct *task, uint64_t start, size_t nr, unsigned foll,
		       struct page **pages)
{
	struct mm_struct *mm = task->mm;
	struct cowvm *vm = mm->vm;
	const int bias = (foll & COWVM_FOLL_PIN) ? GUP_PIN_COUNTING_BIAS : 1;
	/*
	 * A fork copying PTEs (write_protect_seq odd) decides "share or copy" from the refcount;
	 * a pin must be complete before it looks, or the pin must give up (Linux's seqcount).
	 */
	unsigned seq = atomic_load_explicit(&mm->write_protect_seq, memory_order_seq_cst);
	if ((foll & COWVM_FOLL_PIN) && (seq & 1)) {
		count_vm_events(vm, GUP_FAST_FALLBACK, nr);
		return 0;
	}
	size_t i;
	mmu_section_enter(task);
	for (i = 0; i < nr; i++) {
		uint64_t addr = start + i * PAGE_SIZE;
		pte_t *ptep = pte_offset_map(mm, addr);
		pte_t pte = ptep ? ptep_get(ptep) : 0;
		if (!(pte & _PAGE_PRESENT) || pte_special(pte) ||
		    ((foll & COWVM_FOLL_WRITE) && !pte_write(pte)))
			break;
		struct page *page = pfn_to_page(vm, pte_pfn(pte));
		/* Take the whole reference (the full pin bias) first, then make sure the PTE did not
		 * change under us and the page need not be unshared. */
		int ref = page_ref_count(page);
		if (ref <= 0 || !atomic_compare_exchange_strong(&page->_refcount, &ref, ref + bias))
			break;
		if (ptep_get(ptep) != pte || (!pte_write(pte) && gup_must_unshare(NULL, foll, page))) {
			atomic_fetch_sub(&page->_refcount, bias - 1);
			put_page(vm, page);
			break;
		}
		if (foll & COWVM_FOLL_PIN)
			mod_node_page_state(vm, NR_FOLL_PIN, 1);
		pages[i] = page;
	}
	mmu_section_exit(task);
	if ((foll & COWVM_FOLL_PIN) &&
	    atomic_load_explicit(&mm->write_protect_seq, memory_order_seq_cst) != seq) {
		/* a fork ran meanwhile: it may have shared a page before our pin showed */
		for (size_t k = 0; k < i; k++)
			gup_put_page(vm, pages[k], foll);
		i = 0;
	}
	if (i < nr)
		count_vm_events(vm, GUP_FAST_FALLBACK, nr - i);
	return i;
}

cowvm_pin_t *cowvm_pin_user_pages(cowvm_task_t *t, uint64_t addr, size_t npages, unsigned flags)
{
	const unsigned known = COWVM_FOLL_WRITE | COWVM_FOLL_GET | COWVM_FOLL_LONGTERM |
			       COWVM_FOLL_PIN | COWVM_FOLL_FAST;
	if (!t || !npages || !PAGE_ALIGNED(addr) || (flags & ~known) ||
	    ((flags & COWVM_FOLL_GET) && (flags & COWVM_FOLL_PIN)) ||
	    npages > TASK_SIZE_MAX / PAGE_SIZE || addr > TASK_SIZE_MAX - npages * PAGE_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	if (!(flags & COWVM_FOLL_GET))
		flags |= COWVM_FOLL_PIN;
	current = t;
	struct mm_struct *mm = t->mm;
	struct cowvm *vm = t->vm;
	TRACE_SCOPE(vm, t, (flags & COWVM_FOLL_PIN) ? "pin_user_pages" : "get_user_pages",
		    TF_HEX("address", addr), TF_NUM("pages", npages), TF_BOOL("write", flags & COWVM_FOLL_WRITE),
		    TF_BOOL("longterm", flags & COWVM_FOLL_LONGTERM), TF_BOOL("fast", flags & COWVM_FOLL_FAST));
	struct cowvm_pin *pin = calloc(1, sizeof(*pin) + npages * sizeof(struct page *));
	if (!pin) {
		errno = ENOMEM;
		return NULL;
	}
	pin->vm = vm;
	pin->flags = flags;
	pin->npages = npages;
	if (flags & COWVM_FOLL_PIN)
		atomic_fetch_or(&mm->flags, MMF_HAS_PINNED); /* for the rest of the mm's life */

	size_t got = (flags & COWVM_FOLL_FAST) ? gup_fast(t, addr, npages, flags, pin->pages) : 0;
	if (flags & COWVM_FOLL_FAST)
		trace_call(vm, "gup_fast", TF_NUM("pages held", got), TF_NUM("left to the slow path", npages - got));
	if (got < npages) {
		down_read(&mm->mmap_lock);
		long r = __get_user_pages(t, addr + got * PAGE_SIZE, npages - got, flags, pin->pages + got);
		up_read(&mm->mmap_lock);
		if (r < (long)(npages - got)) { /* all or nothing: give back what was taken */
			size_t held = got + (r > 0 ? (size_t)r : 0);
			for (size_t i = 0; i < held; i++)
				gup_put_page(vm, pin->pages[i], flags);
			free(pin);
			errno = r < 0 ? (int)-r : EFAULT;
			return NULL;
		}
	}
	pthread_mutex_lock(&vm->pin_lock);
	list_add_tail(&pin->node, &vm->pins);
	pthread_mutex_unlock(&vm->pin_lock);
	if (tracing(vm))
		trace_note(vm, "held", (flags & COWVM_FOLL_PIN) ? "each frame's refcount rose by the pin bias "
			   "(GUP_PIN_COUNTING_BIAS, 1024): a pinned page is never reused for COW nor shared at fork"
			   : "each frame's refcount rose by 1 (FOLL_GET)", TF_NUM("pages", npages),
			   TF_FRAME("first frame", page_to_pfn(vm, pin->pages[0])),
			   TF_NUM("its refcount", page_ref_count(pin->pages[0])));
	return pin;
}

void cowvm_unpin(cowvm_pin_t *pin)
{
	if (!pin)
		return;
	struct cowvm *vm = pin->vm;
	TRACE_SCOPE(vm, NULL, (pin->flags & COWVM_FOLL_PIN) ? "unpin_user_pages" : "put_page",
		    TF_NUM("pages", pin->npages), TF_FRAME("first frame", page_to_pfn(vm, pin->pages[0])));
	uint64_t free_before = tracing(vm) ? nr_free_pages(vm) : 0;
	pthread_mutex_lock(&vm->pin_lock);
	list_del(&pin->node);
	pthread_mutex_unlock(&vm->pin_lock);
	for (size_t i = 0; i < pin->npages; i++)
		gup_put_page(vm, pin->pages[i], pin->flags);
	if (tracing(vm))
		trace_note(vm, "released", "the holds are dropped; a frame no PTE maps any more is freed",
			   TF_FRAME("first frame", page_to_pfn(vm, pin->pages[0])),
			   TF_NUM("its refcount", page_ref_count(pin->pages[0])),
			   TF_NUM("frames freed", nr_free_pages(vm) - free_before));
	free(pin);
}

/* Copy between buf and the held frames, as a device would. */
static int pin_copy(cowvm_pin_t *pin, size_t offset, void *buf, size_t len, bool write)
{
	if (!pin || (!buf && len) || offset > pin->npages * PAGE_SIZE ||
	    len > pin->npages * PAGE_SIZE - offset)
		return -EINVAL;
	if (write && !(pin->flags & COWVM_FOLL_WRITE))
		return -EPERM;
	uint8_t *b = buf;
	while (len > 0) {
		size_t idx = offset / PAGE_SIZE, off = offset % PAGE_SIZE;
		size_t n = PAGE_SIZE - off < len ? PAGE_SIZE - off : len;
		uint8_t *frame = page_address(pin->vm, pin->pages[idx]) + off;
		if (write) {
			memcpy(frame, b, n);
			SetPageDirty(pin->pages[idx]);
		} else {
			memcpy(b, frame, n);
		}
		offset += n;
		b += n;
		len -= n;
	}
	return 0;
}

int cowvm_pin_read(cowvm_pin_t *p, size_t offset, void *buf, size_t len)
{
	return pin_copy(p, offset, buf, len, false);
}

int cowvm_pin_write(cowvm_pin_t *p, size_t offset, const void *buf, size_t len)
{
	return pin_copy(p, offset, (void *)buf, len, true);
}

uint64_t cowvm_pin_pfn(const cowvm_pin_t *p, size_t index)
{
	if (!p || index >= p->npages)
		return 0;
	return page_to_pfn(p->vm, p->pages[index]);
}

/*
 * access_remote_vm: one page at a time, take a reference with FOLL_FORCE (breaking COW for a
 * write), copy through the kernel's view of the frame, drop the reference.  Takes mmap_lock
 * for reading.
 */
int64_t cowvm_access_remote(cowvm_task_t *t, uint64_t addr, void *buf, size_t len, int write)
{
	if (!t || (!buf && len))
		return -EINVAL;
	if (!len)
		return 0;
	struct mm_struct *mm = t->mm;
	struct cowvm *vm = t->vm;
	unsigned foll = COWVM_FOLL_GET | FOLL_FORCE | FOLL_REMOTE | (write ? COWVM_FOLL_WRITE : 0);
	uint8_t *b = buf;
	size_t done = 0;
	down_read(&mm->mmap_lock);
	while (done < len) {
		uint64_t a = addr + done;
		if (a < addr || a >= TASK_SIZE_MAX)
			break;
		struct page *page;
		if (__get_user_pages(t, a & PAGE_MASK, 1, foll, &page) != 1)
			break;
		size_t off = a & (PAGE_SIZE - 1);
		size_t n = PAGE_SIZE - off < len - done ? PAGE_SIZE - off : len - done;
		if (write) {
			memcpy(page_address(vm, page) + off, b + done, n);
			SetPageDirty(page);
		} else {
			memcpy(b + done, page_address(vm, page) + off, n);
		}
		gup_put_page(vm, page, foll);
		done += n;
	}
	up_read(&mm->mmap_lock);
	return done ? (int64_t)done : -EIO;
}

/* For the checker: call fn with each held page and the references its holder keeps. */
void for_each_pinned_page(struct cowvm *vm, void (*fn)(void *arg, struct page *page, int refs), void *arg)
{
	struct cowvm_pin *pin;
	pthread_mutex_lock(&vm->pin_lock);
	list_for_each_entry(pin, &vm->pins, node) {
		for (size_t i = 0; i < pin->npages; i++) {
			if (PageZero(pin->pages[i]))
				continue;
			fn(arg, pin->pages[i], (pin->flags & COWVM_FOLL_PIN) ? GUP_PIN_COUNTING_BIAS : 1);
		}
	}
	pthread_mutex_unlock(&vm->pin_lock);
}

/*
 * get_user_page_vma_remote: hold one page of task's address space as access_remote_vm does
 * (FOLL_FORCE, FOLL_GET, and FOLL_WRITE for a write, which breaks COW first).  Caller holds
 * the mm's mmap_lock.  Returns the page with a reference (the zero page without one), or NULL.
 */
struct page *get_user_page_vma_remote(struct task_struct *task, uint64_t addr, bool write)
{
	struct page *page;
	unsigned foll = COWVM_FOLL_GET | FOLL_FORCE | FOLL_REMOTE | (write ? COWVM_FOLL_WRITE : 0);
	return __get_user_pages(task, addr & PAGE_MASK, 1, foll, &page) == 1 ? page : NULL;
}

void put_user_page_ref(struct cowvm *vm, struct page *page)
{
	gup_put_page(vm, page, COWVM_FOLL_GET);
}
