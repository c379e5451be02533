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
 * SNAP keeps a reference image of the child: a hidden mm whose VMAs are COW twins of the
 * child's (copy_vma_cow), so it costs page tables, not data.  From then on every child write
 * to a page that existed at the SNAP copies it (the image holds a reference), so "changed"
 * means "maps another frame than the image", and the fault path marks each PTE table whose
 * frames changed (mark_table_changed); the SNAP clears those marks.
 *
 * MERGE walks the child's range table by table, skipping unmarked tables whole (Determinator
 * skips unchanged page directories the same way), and per changed page:
 *
 *     child == image               -> skip
 *     parent == image (frame)      -> take the child's page: share it COW when the parent's VMA
 *                                     is in the page's anon_vma tree at the same index, else copy
 *     both changed                 -> per byte: child == image: keep parent; parent == image:
 *                                     take child; parent == child: same change; else conflict
 *
 * Both mms' mmap_locks are held for writing (the lower pid first).  Bad arguments change
 * nothing; running out of memory in the middle of a COPY leaves the destination partly
 * copied (as a failed fork leaves its child), never an inconsistent state.
 */
#include "swap.h"

static struct vm_area_struct *vma_at(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);
	return vma && vma->vm_start <= addr ? vma : NULL;
}

static bool range_ok(uint64_t addr, uint64_t len)
{
	return len <= TASK_SIZE_MAX && addr <= TASK_SIZE_MAX - len;
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
 * The source's holes as they were when the COPY began.  Within one mm, filling a destination
 * page may map a page that is also a source page (its other bytes): that page must still count
 * as a hole for the source.
 */
struct source_holes {
	uint64_t first;      /* first source page */
	uint64_t npages;
	uint64_t *bits;      /* bit set: a hole */
};

static int source_holes_init(struct source_holes *h, struct mm_struct *mm, uint64_t src, uint64_t len)
{
	h->first = src & PAGE_MASK;
	h->npages = ((src + len - 1) & PAGE_MASK) / PAGE_SIZE - h->first / PAGE_SIZE + 1;
	h->bits = calloc((h->npages + 63) / 64, sizeof(uint64_t));
	if (!h->bits)
		return -ENOMEM;
	for (uint64_t i = 0; i < h->npages; i++)
		if (!vma_at(mm, h->first + i * PAGE_SIZE))
			h->bits[i / 64] |= 1ull << (i % 64);
	return 0;
}

static bool source_hole(const struct source_holes *h, uint64_t addr)
{
	uint64_t i = (addr & PAGE_MASK) / PAGE_SIZE - h->first / PAGE_SIZE;
	return h->bits[i / 64] & (1ull << (i % 64));
}

/*
 * copy_bytes - copy n bytes from st@src to dt@dst through the frames, in pieces that stay
 * within one page on both sides.  st NULL means "zeros" (ZERO's slivers); holes says which
 * source pages were holes when the operation began.  Returns 0 or -ENOMEM / -EFAULT.
 */
static int copy_bytes_from(struct task_struct *st, uint64_t src, struct task_struct *dt,
			   uint64_t dst, uint64_t n, const struct source_holes *holes,
			   const uint8_t *kbuf);

/* Does [addr, addr + n) of mm touch shared memory (which another range may alias)? */
static bool range_has_shared(struct mm_struct *mm, uint64_t addr, uint64_t n)
{
	for (struct vm_area_struct *vma = find_vma(mm, addr); vma && vma->vm_start < addr + n;
	     vma = find_vma(mm, vma->vm_end))
		if (vma->vm_file)
			return true;
	return false;
}

/* The source's bytes of [src, src + n) into a new buffer (holes left zero); 0 or -ENOMEM. */
static int read_source_bytes(struct task_struct *st, uint64_t src, uint64_t n,
			     const struct source_holes *holes, uint8_t **out)
{
	struct cowvm *vm = st->vm;
	uint8_t *kbuf = calloc(n ? n : 1, 1);
	if (!kbuf)
		return -ENOMEM;
	for (uint64_t off = 0; off < n;) {
		uint64_t a = src + off, chunk = PAGE_SIZE - (a & (PAGE_SIZE - 1));
		if (chunk > n - off)
			chunk = n - off;
		if (!source_hole(holes, a)) {
			struct page *spage = get_user_page_vma_remote(st, a, false);
			if (!spage) {
				free(kbuf);
				return -ENOMEM;
			}
			memcpy(kbuf + off, page_address(vm, spage) + (a & (PAGE_SIZE - 1)), chunk);
			put_user_page_ref(vm, spage);
		}
		off += chunk;
	}
	*out = kbuf;
	return 0;
}

static int copy_bytes(struct task_struct *st, uint64_t src, struct task_struct *dt, uint64_t dst,
		      uint64_t n, const struct source_holes *holes)
{
	if (!st || !range_has_shared(st->mm, src, n))
		return copy_bytes_from(st, src, dt, dst, n, holes, NULL);
	/*
	 * Shared memory: the destination may be another view of the same object, so take the
	 * source's bytes as the call found them (a bounce buffer) before writing any.
	 */
	uint8_t *kbuf;
	int err = read_source_bytes(st, src, n, holes, &kbuf);
	if (err)
		return err;
	err = copy_bytes_from(st, src, dt, dst, n, holes, kbuf);
	free(kbuf);
	return err;
}

/* The copy itself: source bytes from st's frames, or from kbuf when given. */
static int copy_bytes_from(struct task_struct *st, uint64_t src, struct task_struct *dt,
			   uint64_t dst, uint64_t n, const struct source_holes *holes,
			   const uint8_t *kbuf)
{
	struct cowvm *vm = dt->vm;
	const uint64_t src0 = src;
	while (n > 0) {
		uint64_t chunk = n;
		if (st && PAGE_SIZE - (src & (PAGE_SIZE - 1)) < chunk)
			chunk = PAGE_SIZE - (src & (PAGE_SIZE - 1));
		if (PAGE_SIZE - (dst & (PAGE_SIZE - 1)) < chunk)
			chunk = PAGE_SIZE - (dst & (PAGE_SIZE - 1));
		if (st && source_hole(holes, src))
			goto next; /* a hole in the source stays a hole */
		struct vm_area_struct *svma = st ? vma_at(st->mm, src) : NULL;
		if (!vma_at(dt->mm, dst)) {
			int err = mmap_region(dt->mm, dst & PAGE_MASK, PAGE_SIZE, private_flags_like(svma));
			if (err)
				return err;
			if (!st)
				goto next; /* a fresh page reads as zeros already */
		}
		struct page *spage = NULL;
		if (st && !kbuf && !(spage = get_user_page_vma_remote(st, src, false)))
			return -ENOMEM; /* mapped, but its page could not be had */
		struct page *dpage = get_user_page_vma_remote(dt, dst, true);
		if (!dpage) {
			if (spage)
				put_user_page_ref(vm, spage);
			return -ENOMEM;
		}
		uint8_t *to = page_address(vm, dpage) + (dst & (PAGE_SIZE - 1));
		if (kbuf)
			memcpy(to, kbuf + (src - src0), chunk);
		else if (spage)
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
	if (count)
		memcpy(src, &smm->vmas[first], count * sizeof(*src));

	for (size_t i = 0; i < count && !err; i++) {
		/* fork's advice is not dput's: a DONTCOPY or WIPEONFORK VMA is copied whole */
		err = copy_vma_cow(dmm, src[i], delta, false);
		if (!err) {
			struct vm_area_struct *t = find_vma(dmm, src[i]->vm_start + delta);
			t->vm_flags &= ~(VM_DONTCOPY | VM_WIPEONFORK);
		}
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
	struct source_holes holes;
	int err = source_holes_init(&holes, st->mm, src, len);
	if (err)
		return err;
	if (!cow) {
		if (st->vm->tracer)
			trace_region(dt, dst, ((dst - src) & (PAGE_SIZE - 1)) ? "COPY unaligned" : "COPY bytes",
				     "copy_bytes");
		err = copy_bytes(st, src, dt, dst, len, &holes);
		free(holes.bits);
		return err;
	}
	/* With shared memory the tail's source may be another view of the head's destination
	 * page: take the tail's bytes before the head is written. */
	uint8_t *tailbuf = NULL;
	if (end_page < end && range_has_shared(st->mm, src, len))
		err = read_source_bytes(st, end_page, end - end_page, &holes, &tailbuf);
	if (!err && src < start_page) {
		if (st->vm->tracer)
			trace_region(dt, dst, "COPY head", "copy_bytes");
		err = copy_bytes(st, src, dt, dst, start_page - src, &holes);
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
		err = tailbuf ? copy_bytes_from(st, end_page, dt, dst + (end_page - src), end - end_page,
						&holes, tailbuf)
			      : copy_bytes(st, end_page, dt, dst + (end_page - src), end - end_page, &holes);
	}
	free(tailbuf);
	free(holes.bits);
	return err;
}

/* ZERO dt@[addr, addr + len).  dt's mmap_lock held for writing. */
static int do_zero(struct task_struct *dt, uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;
	uint64_t start_page = PAGE_ALIGN(addr), end_page = end & PAGE_MASK;
	if (start_page >= end_page) { /* within one or two partial pages */
		if (dt->vm->tracer)
			trace_region(dt, addr, "ZERO bytes", "copy_bytes");
		return copy_bytes(NULL, 0, dt, addr, len, NULL);
	}
	int err = 0;
	if (addr < start_page) {
		if (dt->vm->tracer)
			trace_region(dt, addr, "ZERO head", "copy_bytes");
		err = copy_bytes(NULL, 0, dt, addr, start_page - addr, NULL);
	}
	if (!err) {
		if (dt->vm->tracer)
			trace_region(dt, start_page, "ZERO middle", "do_munmap > mmap_region");
		err = do_munmap(dt->mm, start_page, end_page - start_page);
		if (!err)
			err = mmap_region(dt->mm, start_page, end_page - start_page, private_flags_like(NULL));
	}
	if (!err && end_page < end) {
		if (dt->vm->tracer)
			trace_region(dt, end_page, "ZERO tail", "copy_bytes");
		err = copy_bytes(NULL, 0, dt, end_page, end - end_page, NULL);
	}
	return err;
}

/* ---- SNAP ------------------------------------------------------------------------------- */

/* Clear the "changed" marks of every PTE table of mm (walking the upper levels). */
static void clear_table_marks(struct cowvm *vm, uint64_t table_pfn, int level)
{
	pte_t *table = table_of(vm, table_pfn);
	if (level == 1) {
		ClearPageFlag(pfn_to_page(vm, table_pfn), PG_dirty);
		return;
	}
	for (int i = 0; i < PTRS_PER_TABLE; i++) {
		pte_t e = ptep_get(&table[i]);
		if (e)
			clear_table_marks(vm, pte_pfn(e), level - 1);
	}
}

/* Tear down an image: no thread uses it, nothing else points at it. */
void destroy_snapshot(struct mm_struct *snap)
{
	struct cowvm *vm = snap->vm;
	pthread_mutex_lock(&vm->task_lock);
	list_del(&snap->mmlist);
	pthread_mutex_unlock(&vm->task_lock);
	exit_mmap(snap);
	mm_free(snap);
}

/*
 * take_snapshot - the child's image: a new hidden mm with a COW twin of each private VMA.
 * Replaces an older image.  Returns 0 or -ENOMEM with the old image kept.
 */
static int take_snapshot(struct task_struct *parent, struct task_struct *child)
{
	struct cowvm *vm = child->vm;
	struct mm_struct *mm = child->mm;
	struct mm_struct *snap = mm_alloc(vm);
	if (!snap)
		return -ENOMEM;
	current = parent;
	snap->tgid = mm->tgid;
	snap->is_snapshot = true;
	pthread_mutex_lock(&vm->task_lock);
	list_add_tail(&snap->mmlist, &vm->mms);
	pthread_mutex_unlock(&vm->task_lock);

	down_write(&mm->mmap_lock);
	down_write(&snap->mmap_lock);
	/* The image holds frames, never swap entries: MERGE compares frames (swapped pages come
	 * back first; reclaim leaves pages an image maps alone). */
	int err = swapin_range(mm, 0, TASK_SIZE_MAX);
	for (size_t i = 0; i < mm->nr_vmas && !err; i++)
		if (!mm->vmas[i]->vm_file) /* shared memory needs no image: both sides see it */
			err = copy_vma_cow(snap, mm->vmas[i], 0, false);
	up_write(&snap->mmap_lock);
	flush_tlb_mm(mm);
	if (err) {
		up_write(&mm->mmap_lock);
		destroy_snapshot(snap);
		return err;
	}
	/* A pinned page was copied for the image, not shared: the child may change it without a
	 * fault, so keep every table marked and let MERGE compare bytes. */
	if (!(atomic_load(&mm->flags) & MMF_HAS_PINNED))
		clear_table_marks(vm, mm->pgd, 4);
	struct mm_struct *old = mm->snapshot;
	mm->snapshot = snap;
	up_write(&mm->mmap_lock);
	if (old)
		destroy_snapshot(old);
	return 0;
}

/* ---- MERGE ------------------------------------------------------------------------------- */

/* The frame a PTE maps for merging: 0 for none (a hole reads as zeros, as the zero page). */
static uint64_t merge_pfn(struct cowvm *vm, pte_t pte)
{
	if (!pte_present(pte) || pte_pfn(pte) == page_to_pfn(vm, vm->zero_page))
		return 0;
	return pte_pfn(pte);
}

static pte_t pte_at(struct mm_struct *mm, uint64_t addr)
{
	pte_t *ptep = pte_offset_map(mm, addr);
	return ptep ? ptep_get(ptep) : 0;
}

static const uint8_t *frame_bytes(struct cowvm *vm, uint64_t pfn)
{
	return pfn ? pfn_to_virt(vm, pfn) : pfn_to_virt(vm, page_to_pfn(vm, vm->zero_page));
}

/*
 * Share the child's page cpfn (at child address x) into the parent at y, copy-on-write, when
 * rmap allows it: the parent's VMA is private, in the page's anon_vma tree, and computes the
 * page's index at y.  The page becomes non-exclusive and names the tree's root.  Both
 * mmap_locks held.  Returns true when shared.
 */
static bool share_child_page(struct task_struct *parent, uint64_t y, struct task_struct *child,
			     uint64_t x, uint64_t cpfn)
{
	struct cowvm *vm = parent->vm;
	struct mm_struct *pmm = parent->mm, *cmm = child->mm;
	struct page *page = pfn_to_page(vm, cpfn);
	struct vm_area_struct *pvma = vma_at(pmm, y);
	struct anon_vma *av = page->mapping;
	/* a page that may be pinned is never shared (as fork copies it) */
	if (!PageAnon(page) || page_ref_count(page) >= 1024 || !pvma || pvma->vm_file ||
	    !pvma->anon_vma || !av ||
	    pvma->anon_vma->root != av->root || linear_page_index(pvma, y) != page->index)
		return false;
	pte_t *pptep = pte_alloc_map(pmm, y);
	pte_t *cptep = pte_offset_map(cmm, x);
	if (!pptep || !cptep)
		return false;
	struct mmu_gather tlb;
	tlb_gather_mmu(&tlb, pmm);
	spin_lock(&pmm->page_table_lock);
	if (cmm != pmm)
		spin_lock(&cmm->page_table_lock);
	/* the child's side: read-only and shared from now on */
	ptep_set_wrprotect(cptep);
	ClearPageAnonExclusive(page);
	page->mapping = av->root;
	/* the parent's side: drop what it mapped, map the child's page read-only */
	pte_t old = ptep_get_and_clear(pptep);
	if (pte_present(old)) {
		struct page *oldpage = vm_normal_page(pvma, y, old);
		if (oldpage) {
			page_remove_rmap(vm, oldpage, pvma);
			tlb_remove_page(&tlb, oldpage, y);
			add_mm_counter(pmm, MM_ANONPAGES, -1);
		} else {
			mod_node_page_state(vm, NR_ZERO_MAPPED, -1);
			tlb_flush_range(&tlb, y, y + PAGE_SIZE);
		}
	}
	get_page(page);
	page_dup_rmap(page, pvma);
	add_mm_counter(pmm, MM_ANONPAGES, 1);
	set_pte(pptep, pte_mkyoung(pfn_pte(cpfn, pvma->vm_page_prot)));
	mark_table_changed_from(vm, pptep, old);
	if (cmm != pmm)
		spin_unlock(&cmm->page_table_lock);
	spin_unlock(&pmm->page_table_lock);
	flush_tlb_mm_range(cmm, x, x + PAGE_SIZE);
	tlb_finish_mmu(&tlb);
	return true;
}

/*
 * Merge one changed page: child bytes c, image bytes r, into the parent's page at y (held for
 * writing through FOLL_FORCE, which breaks COW).  Counts conflicts.  Returns 0 or -ENOMEM.
 */
static int merge_bytes(struct task_struct *parent, uint64_t y, const uint8_t *c, const uint8_t *r,
		       bool take_all, struct cowvm_merge_report *rep)
{
	struct cowvm *vm = parent->vm;
	struct page *ppage = get_user_page_vma_remote(parent, y, true);
	if (!ppage)
		return -ENOMEM;
	uint8_t *p = page_address(vm, ppage);
	if (take_all) {
		memcpy(p, c, PAGE_SIZE);
	} else {
		for (size_t i = 0; i < PAGE_SIZE; i++) {
			if (c[i] == r[i] || p[i] == c[i])
				continue;
			if (p[i] == r[i]) {
				p[i] = c[i];
				continue;
			}
			if (!rep->conflicts++)
				rep->first_conflict = y + i;
		}
	}
	SetPageDirty(ppage);
	put_user_page_ref(vm, ppage);
	return 0;
}

/* Does the parent have, at every page of [y, y + len), memory the merge may write? */
static bool merge_dest_ok(struct mm_struct *pmm, uint64_t y, uint64_t len)
{
	for (uint64_t a = y; a < y + len;) {
		struct vm_area_struct *vma = vma_at(pmm, a);
		if (!vma || (vma->vm_flags & VM_SHARED && !(vma->vm_flags & VM_WRITE)))
			return false;
		a = vma->vm_end;
	}
	return true;
}

static int do_merge(struct task_struct *parent, uint64_t pa, struct task_struct *child, uint64_t ca,
		    uint64_t len)
{
	struct cowvm *vm = parent->vm;
	struct mm_struct *pmm = parent->mm, *cmm = child->mm;
	if (!PAGE_ALIGNED(pa) || !PAGE_ALIGNED(ca) || !PAGE_ALIGNED(len) || !range_ok(pa, len) ||
	    !range_ok(ca, len) || pmm == cmm)
		return -EINVAL;
	if (len == 0)
		return 0;
	current = parent;
	lock_two(pmm, cmm);
	struct mm_struct *snap = cmm->snapshot;
	struct cowvm_merge_report rep = { 0 };
	int err = 0;
	if (!snap) {
		err = -ENOENT;
		goto out;
	}
	if (!merge_dest_ok(pmm, pa, len)) {
		err = -EFAULT;
		goto out;
	}
	/* MERGE reads frames on both sides: what reclaim swapped out comes back first */
	if ((err = swapin_range(cmm, ca, ca + len)) || (err = swapin_range(pmm, pa, pa + len)))
		goto out;
	down_read(&snap->mmap_lock);
	for (uint64_t x = ca; x < ca + len && !err;) {
		uint64_t table_end = (x + PMD_SIZE) & ~(PMD_SIZE - 1);
		if (table_end > ca + len)
			table_end = ca + len;
		pte_t *ctab = pte_offset_map(cmm, x), *rtab = pte_offset_map(snap, x);
		bool unchanged = ctab ? !PageDirty(pfn_to_page(vm, ((uint8_t *)ctab - vm->phys) >> PAGE_SHIFT))
				      : !rtab;
		if (unchanged) { /* nothing in this table changed its frame since the SNAP */
			rep.tables_skipped++;
			x = table_end;
			continue;
		}
		for (; x < table_end && !err; x += PAGE_SIZE) {
			struct vm_area_struct *cvma = vma_at(cmm, x);
			if (cvma && cvma->vm_file)
				continue; /* shared memory: one copy for both */
			uint64_t cpfn = merge_pfn(vm, pte_at(cmm, x)), rpfn = merge_pfn(vm, pte_at(snap, x));
			if (cpfn == rpfn) {
				rep.pages_skipped++;
				continue;
			}
			uint64_t y = pa + (x - ca);
			/* Frames tell "unchanged" only for private parent memory: a shared page keeps
			 * its bytes in the object even without a PTE, so it is merged by its bytes. */
			struct vm_area_struct *pvma = vma_at(pmm, y);
			bool by_frame = pvma && !pvma->vm_file;
			uint64_t ppfn = merge_pfn(vm, pte_at(pmm, y));
			if (by_frame && ppfn == cpfn) { /* the parent has the child's page already */
				rep.pages_skipped++;
				continue;
			}
			if (by_frame && ppfn == rpfn) {
				if (cpfn && share_child_page(parent, y, child, x, cpfn)) {
					rep.pages_shared++;
					continue;
				}
				err = merge_bytes(parent, y, frame_bytes(vm, cpfn), NULL, true, &rep);
				rep.pages_copied++;
				continue;
			}
			err = merge_bytes(parent, y, frame_bytes(vm, cpfn), frame_bytes(vm, rpfn), false, &rep);
			rep.pages_merged++;
		}
	}
	up_read(&snap->mmap_lock);
	if (!err && rep.conflicts)
		err = -EBADE;
out:
	pmm->merge = rep;
	unlock_two(pmm, cmm);
	return err;
}

int cowvm_merge_report(cowvm_task_t *parent, struct cowvm_merge_report *out)
{
	if (!parent || !out)
		return -EINVAL;
	down_read(&parent->mm->mmap_lock);
	*out = parent->mm->merge;
	up_read(&parent->mm->mmap_lock);
	return 0;
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
	static const char *const ops[] = { [COWVM_COPY] = "COPY", [COWVM_ZERO] = "ZERO",
					   [COWVM_SNAP] = "SNAP", [COWVM_MERGE] = "MERGE" };
	TRACE_SCOPE(parent->vm, parent, get ? "dget" : "dput", TF_TEXT("op", ops[op]),
		    TF_NUM("child", child->pid), TF_HEX("parent address", parent_addr),
		    TF_HEX("child address", child_addr), TF_NUM("bytes", len));
	if (op == COWVM_SNAP)
		return take_snapshot(parent, child);
	if (op == COWVM_MERGE)
		return do_merge(parent, parent_addr, child, child_addr, len);
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
