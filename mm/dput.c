/*
 * dput.c - Determinator's Put and Get between a parent and a child address space: COPY a byte
 * range, ZERO a range.  (reference/determinator.md; seed 002 is the Linux port's design note.)
 *
 * COPY [addr, end) from the source to dst in the destination.  Copy-on-write works on whole
 * pages, and rmap needs every VMA that maps a page to compute the same page->index for it, so
 * the range is cut into five regions:
 *
 *   lowest       addr    start_page                     end_page     end     highest
 *     |   keep    | memcpy |  COW, page aligned, as fork   |  memcpy    | keep  |
 *     '---- head page ----'                                '---- tail page -----'
 *
 *   lowest = round_down(addr)      start_page = round_up(addr)
 *   end_page = round_down(end)     highest = round_up(end)
 *
 *  - [lowest, addr) and [end, highest) never change in the destination.
 *  - The head and tail slivers are copied byte by byte through the kernel's view of the frames
 *    (a destination page without a VMA gets a private one with the source VMA's protection;
 *    a source page without a VMA is skipped: holes stay holes).
 *  - The middle is shared copy-on-write: the destination's middle is unmapped, the source's
 *    VMAs are split at start_page and end_page, and each source VMA inside gets a destination
 *    twin that covers exactly its pages at the same distance, with the same vm_pgoff and an
 *    anon_vma forked from the source's (anon_vma_fork).  copy_page_range then write-protects
 *    and shares the PTEs, as fork does.  Source holes stay holes in the destination.
 *  - This needs (dst - addr) to be a multiple of the page size; otherwise no page can be shared
 *    and every byte is copied.
 *
 * ZERO [addr, end): the slivers are cleared byte by byte; the middle is replaced by fresh
 * demand-zero private memory (read-write).
 *
 * Both mms' mmap_locks are held for writing (the lower pid first).  Bad arguments change
 * nothing; running out of memory in the middle of a COPY leaves the destination partly
 * copied (as a failed fork leaves its child), never an inconsistent state.
 */
#include "mm.h"

static struct vm_area_struct *vma_at(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);
	return vma && vma->vm_start <= addr ? vma : NULL;
}

static void lock_two(struct mm_struct *a, struct mm_struct *b)
{
	if (a == b) {
		down_write(&a->mmap_lock);
		return;
	}
	if (a->tgid > b->tgid) {
		struct mm_struct *t = a;
		a = b;
		b = t;
	}
	down_write(&a->mmap_lock);
	down_write(&b->mmap_lock);
}

static void unlock_two(struct mm_struct *a, struct mm_struct *b)
{
	up_write(&a->mmap_lock);
	if (a != b)
		up_write(&b->mmap_lock);
}

/* The flags of a private anonymous page made to receive copied bytes. */
static unsigned long private_flags_like(const struct vm_area_struct *vma)
{
	unsigned long f = vma ? vma->vm_flags & VM_ACCESS_FLAGS : VM_READ | VM_WRITE;
	f |= VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_SOFTDIRTY;
	if (f & VM_WRITE)
		f |= VM_ACCOUNT;
	return f;
}

/* May the kernel write bytes at addr of mm (a shared mapping it may not write, no)? */
static bool dest_writable(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = vma_at(mm, addr);
	return !vma || !(vma->vm_flags & VM_SHARED) || (vma->vm_flags & VM_WRITE);
}

/*
 * copy_bytes - copy n bytes from st@src to dt@dst through the frames, in pieces that stay
 * within one page on both sides.  src NULL task means "zeros" (ZERO's slivers).
 * Returns 0 or -ENOMEM / -EFAULT.
 */
static int copy_bytes(struct task_struct *st, uint64_t src, struct task_struct *dt, uint64_t dst,
		      uint64_t n)
{
	struct cowvm *vm = dt->vm;
	while (n > 0) {
		uint64_t chunk = n;
		if (st && PAGE_SIZE - (src & (PAGE_SIZE - 1)) < chunk)
			chunk = PAGE_SIZE - (src & (PAGE_SIZE - 1));
		if (PAGE_SIZE - (dst & (PAGE_SIZE - 1)) < chunk)
			chunk = PAGE_SIZE - (dst & (PAGE_SIZE - 1));
		struct vm_area_struct *svma = st ? vma_at(st->mm, src) : NULL;
		if (st && !svma)
			goto next; /* a hole in the source stays a hole */
		if (!vma_at(dt->mm, dst)) {
			int err = mmap_region(dt->mm, dst & PAGE_MASK, PAGE_SIZE, private_flags_like(svma));
			if (err)
				return err;
			if (!st)
				goto next; /* a fresh page reads as zeros already */
		}
		struct page *spage = NULL;
		if (st && !(spage = get_user_page_vma_remote(st, src, false)))
			goto next; /* cannot be read: as a hole */
		struct page *dpage = get_user_page_vma_remote(dt, dst, true);
		if (!dpage) {
			if (spage)
				put_user_page_ref(vm, spage);
			return -ENOMEM;
		}
		uint8_t *to = page_address(vm, dpage) + (dst & (PAGE_SIZE - 1));
		if (spage)
			memcpy(to, page_address(vm, spage) + (src & (PAGE_SIZE - 1)), chunk);
		else
			memset(to, 0, chunk);
		SetPageDirty(dpage);
		put_user_page_ref(vm, dpage);
		if (spage)
			put_user_page_ref(vm, spage);
next:
		src += chunk;
		dst += chunk;
		n -= chunk;
	}
	return 0;
}

/* Split the VMA that straddles addr, if one does. */
static int split_at(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = vma_at(mm, addr);
	if (!vma || vma->vm_start == addr)
		return 0;
	return split_vma(mm, vma, addr, true);
}

/*
 * share_pages - the COW middle: [ss, se) of st's mm appears at ds in dt's mm, sharing every
 * page copy-on-write.  Both mmap_locks held for writing.  Returns 0 or -ENOMEM.
 */
static int share_pages(struct task_struct *st, uint64_t ss, uint64_t se, struct task_struct *dt,
		       uint64_t ds)
{
	struct mm_struct *smm = st->mm, *dmm = dt->mm;
	uint64_t delta = ds - ss;
	int err = do_munmap(dmm, ds, se - ss);
	if (!err)
		err = split_at(smm, ss);
	if (!err)
		err = split_at(smm, se);
	if (err)
		return err;
	/* The source VMAs inside [ss, se), before any destination VMA joins the array. */
	size_t first = vma_index(smm, ss), count = 0;
	while (first + count < smm->nr_vmas && smm->vmas[first + count]->vm_end <= se)
		count++;
	struct vm_area_struct **src = malloc((count ? count : 1) * sizeof(*src));
	if (!src)
		return -ENOMEM;
	memcpy(src, &smm->vmas[first], count * sizeof(*src));

	for (size_t i = 0; i < count && !err; i++) {
		struct vm_area_struct *v = src[i];
		struct vm_area_struct *t = vm_area_dup(v);
		if (!t) {
			err = -ENOMEM;
			break;
		}
		t->vm_mm = dmm;
		t->vm_start += delta;
		t->vm_end += delta;
		t->vm_flags &= ~(VM_DONTCOPY | VM_WIPEONFORK); /* advice for fork, not for dput */
		if (anon_vma_fork(t, v)) {
			vm_area_free(t);
			err = -ENOMEM;
			break;
		}
		if (vma_insert(dmm, t)) {
			unlink_anon_vmas(t);
			vm_area_free(t);
			err = -ENOMEM;
			break;
		}
		if (t->vm_file) {
			shmem_get(t->vm_file);
			shmem_link_vma(t);
		}
		dmm->total_vm += (t->vm_end - t->vm_start) >> PAGE_SHIFT;
		err = copy_page_range(t, v);
	}
	free(src);
	flush_tlb_mm_range(smm, ss, se);
	return err;
}

static int trace_region(struct task_struct *t, uint64_t addr, const char *what, const char *how)
{
	const char *path[] = { "dput", what, how };
	trace_event(t, addr, path, 3, "ok");
	return 0;
}

/* COPY from st@src to dt@dst, len bytes.  Both mmap_locks held. */
static int do_copy(struct task_struct *st, uint64_t src, struct task_struct *dt, uint64_t dst,
		   uint64_t len)
{
	uint64_t end = src + len;
	uint64_t start_page = PAGE_ALIGN(src), end_page = end & PAGE_MASK;
	bool cow = ((dst - src) & (PAGE_SIZE - 1)) == 0 && start_page < end_page;
	if (!cow) {
		if (st->vm->tracer)
			trace_region(dt, dst, "COPY unaligned", "copy_bytes");
		return copy_bytes(st, src, dt, dst, len);
	}
	int err = 0;
	if (src < start_page) {
		if (st->vm->tracer)
			trace_region(dt, dst, "COPY head", "copy_bytes");
		err = copy_bytes(st, src, dt, dst, start_page - src);
	}
	if (!err) {
		if (st->vm->tracer)
			trace_region(dt, dst + (start_page - src), "COPY middle",
				     "split_vma > anon_vma_fork > copy_page_range");
		err = share_pages(st, start_page, end_page, dt, dst + (start_page - src));
	}
	if (!err && end_page < end) {
		if (st->vm->tracer)
			trace_region(dt, dst + (end_page - src), "COPY tail", "copy_bytes");
		err = copy_bytes(st, end_page, dt, dst + (end_page - src), end - end_page);
	}
	return err;
}

/* ZERO dt@[addr, addr + len).  dt's mmap_lock held for writing. */
static int do_zero(struct task_struct *dt, uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;
	uint64_t start_page = PAGE_ALIGN(addr), end_page = end & PAGE_MASK;
	if (start_page >= end_page) /* within one or two partial pages */
		return copy_bytes(NULL, 0, dt, addr, len);
	int err = 0;
	if (addr < start_page)
		err = copy_bytes(NULL, 0, dt, addr, start_page - addr);
	if (!err) {
		if (dt->vm->tracer)
			trace_region(dt, start_page, "ZERO middle", "do_munmap > mmap_region");
		err = do_munmap(dt->mm, start_page, end_page - start_page);
		if (!err)
			err = mmap_region(dt->mm, start_page, end_page - start_page, private_flags_like(NULL));
	}
	if (!err && end_page < end)
		err = copy_bytes(NULL, 0, dt, end_page, end - end_page);
	return err;
}

static bool range_ok(uint64_t addr, uint64_t len)
{
	return len <= TASK_SIZE_MAX && addr <= TASK_SIZE_MAX - len;
}

/*
 * The checks every operation makes before touching anything: tasks, op, ranges inside user
 * space, no overlap within one mm, and destination bytes the kernel may write.
 */
static int dput_validate(struct task_struct *st, uint64_t src, struct task_struct *dt,
			 uint64_t dst, uint64_t len, int op)
{
	if (!range_ok(dst, len) || (st && !range_ok(src, len)))
		return -EINVAL;
	if (st && st->mm == dt->mm && src < dst + len && dst < src + len)
		return -EINVAL;
	/* Bytes copied one by one must land in memory the kernel may write. */
	uint64_t first = dst & PAGE_MASK, last = (dst + len - 1) & PAGE_MASK;
	bool all_bytes = op == COWVM_COPY && ((dst - src) & (PAGE_SIZE - 1));
	for (uint64_t p = first; p <= last; p += PAGE_SIZE) {
		bool partial = p < dst || p + PAGE_SIZE > dst + len;
		if ((partial || all_bytes) && !dest_writable(dt->mm, p))
			return -EACCES;
		if (!partial && !all_bytes && p + PAGE_SIZE <= last)
			p = last - PAGE_SIZE; /* the middle is replaced whole: jump to the tail page */
	}
	return 0;
}

/* dput and dget share everything but the direction. */
static int dput_common(struct task_struct *parent, struct task_struct *child, int op,
		       uint64_t parent_addr, uint64_t child_addr, uint64_t len, bool get)
{
	if (!parent || !child || parent->vm != child->vm)
		return -EINVAL;
	if (get ? (op != COWVM_COPY && op != COWVM_ZERO && op != COWVM_MERGE)
		: (op != COWVM_COPY && op != COWVM_ZERO && op != COWVM_SNAP))
		return -EINVAL;
	if (op == COWVM_SNAP || op == COWVM_MERGE)
		return -EOPNOTSUPP; /* the snapshot and merge arrive in a later slice */
	if (len == 0)
		return 0;
	struct task_struct *st = get ? child : parent, *dt = get ? parent : child;
	uint64_t src = get ? child_addr : parent_addr, dst = get ? parent_addr : child_addr;
	current = parent;
	lock_two(st->mm, dt->mm);
	int err = dput_validate(op == COWVM_COPY ? st : NULL, src, dt, dst, len, op);
	if (!err)
		err = op == COWVM_COPY ? do_copy(st, src, dt, dst, len) : do_zero(dt, dst, len);
	unlock_two(st->mm, dt->mm);
	return err;
}

int cowvm_dput(cowvm_task_t *parent, cowvm_task_t *child, int op, uint64_t parent_addr,
	       uint64_t child_addr, uint64_t len)
{
	return dput_common(parent, child, op, parent_addr, child_addr, len, false);
}

int cowvm_dget(cowvm_task_t *parent, cowvm_task_t *child, int op, uint64_t parent_addr,
	       uint64_t child_addr, uint64_t len)
{
	return dput_common(parent, child, op, parent_addr, child_addr, len, true);
}
