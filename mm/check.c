/*
 * check.c - the whole-state checker: walks every frame, page table, VMA, anon_vma and LRU list
 * and verifies the invariants of DESIGN.md.  Returns 0, or -EUCLEAN with the first broken
 * invariant described in `why`.  Precondition: no task runs on another host thread.
 *
 * What it proves, frame by frame: each frame is in exactly one state (free, reserved, zero
 * page, page table, anon page, shmem page); for every mapped page, mapcount = the PTEs that
 * map it and refcount = mapcount + the cache's reference; the page's mapping and index agree
 * with every VMA that maps it; a writable private PTE maps an exclusive page; the zero page is
 * never writable; RSS counters, page-table counts and vmstat agree with what the walk found;
 * no frame is lost; no TLB entry grants more than its PTE.  mlock: a page is PG_mlocked, with
 * mlock_count = n, exactly when n > 0 PTEs of VM_LOCKED VMAs map it, and exactly the mlocked
 * pages are on the unevictable list; each mm's locked_vm is its locked VMAs' pages (plus what
 * MREMAP_DONTUNMAP left counted); VM_LOCKONFAULT comes with VM_LOCKED.
 * Snapshots (mm/snapshot.c): a snapshot's hold on a frame is a mapping by its image mm, so
 * "refcount = mapcount + cache + pins" counts snapshot holds among the mapcounts; no frame an
 * image maps is exclusive; each live snapshot's records and image twins agree; the dirty log
 * covers every page that differs from the base image in a VMA restore would keep.
 * Memory cgroups (mem_cgroup_check): every user page is charged to exactly one group, no other
 * frame is, and the groups' counters are the sums of their pages.
 * Swap: every swap PTE names a used slot of the device, in a private VMA; each slot's count is
 * the swap PTEs naming it, SWAP_HAS_CACHE is set exactly for the slots with a swap-cache page,
 * which has PG_swapcache, private = the entry, and one reference from the cache; a swap PTE with
 * the exclusive marker is the slot's only user (no other swap PTE, its cache page unmapped);
 * MM_SWAPENTS equals the mm's swap PTEs; cluster and in-use counts add up; a clean, unmapped,
 * unpinned swap-cache page holds the bytes of its slot.
 */
#include <stdarg.h>
#include <unistd.h>

#include "swap.h"

void for_each_free_frame(struct cowvm *vm, void (*fn)(void *arg, uint64_t pfn, int where), void *arg);
void for_each_pinned_page(struct cowvm *vm, void (*fn)(void *arg, struct page *page, int refs), void *arg);

enum frame_state { F_UNSEEN, F_FREE, F_RESERVED, F_ZERO, F_PGTABLE, F_ANON, F_SHMEM, F_PINNED };

struct checker {
	struct cowvm *vm;
	uint8_t *state;          /* enum frame_state per frame */
	uint32_t *ptes;          /* PTEs found mapping each frame */
	uint32_t *cache_refs;    /* shmem cache references found */
	uint32_t *pin_refs;      /* references held by pins and GUP references */
	uint32_t *locked_ptes;   /* PTEs of VM_LOCKED VMAs found mapping each frame */
	uint32_t *swap_ptes;     /* swap PTEs found naming each slot (swap device only) */
	uint8_t *swap_excl;      /* of them, with the exclusive marker */
	uint64_t nfree, nzero_ptes, npgtables, anon_mapped, shmem_cached, mlocked;
	char *why;
	size_t whylen;
	bool failed;
};

static int fail(struct checker *c, const char *fmt, ...)
{
	if (c->failed)
		return -EUCLEAN;
	c->failed = true;
	if (c->why && c->whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->why, c->whylen, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

static void mark_free(void *arg, uint64_t pfn, int where)
{
	struct checker *c = arg;
	if (where < 0)
		fail(c, "buddy block at frame %llu has a wrong order", (unsigned long long)pfn);
	else if (c->state[pfn] != F_UNSEEN)
		fail(c, "free frame %llu is on two free lists", (unsigned long long)pfn);
	else if (page_ref_count(&c->vm->mem_map[pfn]) != 0)
		fail(c, "free frame %llu has refcount %d", (unsigned long long)pfn,
		     page_ref_count(&c->vm->mem_map[pfn]));
	c->state[pfn] = F_FREE;
	c->nfree++;
}

static void mark_pinned(void *arg, struct page *page, int refs)
{
	struct checker *c = arg;
	uint64_t pfn = page_to_pfn(c->vm, page);
	c->pin_refs[pfn] += (uint32_t)refs;
}

static bool avc_reaches(struct vm_area_struct *vma, struct anon_vma *av)
{
	struct anon_vma_chain *avc;
	list_for_each_entry(avc, &vma->anon_vma_chain, same_vma)
		if (avc->anon_vma == av)
			return true;
	return false;
}

/* One present PTE of mm at addr. */
static void check_pte(struct checker *c, struct mm_struct *mm, uint64_t addr, pte_t pte,
		      long *rss_anon, long *rss_shmem)
{
	struct cowvm *vm = c->vm;
	uint64_t pfn = pte_pfn(pte);
	if (!pfn_valid(vm, pfn)) {
		fail(c, "pid %d: PTE at %#llx maps frame %llu beyond memory", mm->tgid,
		     (unsigned long long)addr, (unsigned long long)pfn);
		return;
	}
	struct vm_area_struct *vma = find_vma(mm, addr);
	if (!vma || vma->vm_start > addr) {
		fail(c, "pid %d: PTE at %#llx outside every VMA", mm->tgid, (unsigned long long)addr);
		return;
	}
	if (pte_special(pte)) {
		if (pfn != page_to_pfn(vm, vm->zero_page))
			fail(c, "pid %d: special PTE at %#llx is not the zero page", mm->tgid,
			     (unsigned long long)addr);
		else if (pte_write(pte))
			fail(c, "pid %d: the zero page is mapped writable at %#llx", mm->tgid,
			     (unsigned long long)addr);
		c->nzero_ptes++;
		return;
	}
	struct page *page = pfn_to_page(vm, pfn);
	c->ptes[pfn]++;
	if (vma->vm_flags & VM_LOCKED)
		c->locked_ptes[pfn]++;
	if (PageAnon(page)) {
		(*rss_anon)++;
		if (vma->vm_file)
			fail(c, "pid %d: anon page %llu in a shared mapping at %#llx", mm->tgid,
			     (unsigned long long)pfn, (unsigned long long)addr);
		else if (page->index != linear_page_index(vma, addr))
			fail(c, "pid %d: frame %llu at %#llx has index %llu, VMA computes %llu", mm->tgid,
			     (unsigned long long)pfn, (unsigned long long)addr,
			     (unsigned long long)page->index, (unsigned long long)linear_page_index(vma, addr));
		else if (!page->mapping || !avc_reaches(vma, page->mapping))
			fail(c, "pid %d: frame %llu's anon_vma is not chained to the VMA mapping it at %#llx",
			     mm->tgid, (unsigned long long)pfn, (unsigned long long)addr);
		if (c->state[pfn] == F_UNSEEN)
			c->state[pfn] = F_ANON;
		if (mm->image_of && PageAnonExclusive(page))
			fail(c, "snapshot image of pid %d maps exclusive frame %llu at %#llx: the task "
			     "could reuse it and write into the snapshot", mm->tgid,
			     (unsigned long long)pfn, (unsigned long long)addr);
		if (pte_write(pte) && (!PageAnonExclusive(page) || page_mapcount(page) != 1))
			fail(c, "pid %d: writable PTE at %#llx maps frame %llu that is not exclusive "
			     "(mapcount %d, exclusive %d)", mm->tgid, (unsigned long long)addr,
			     (unsigned long long)pfn, page_mapcount(page), PageAnonExclusive(page));
	} else if (PageShmem(page)) {
		(*rss_shmem)++;
		if (vma->vm_file != page->mapping || page->index != linear_page_index(vma, addr))
			fail(c, "pid %d: shmem frame %llu mapped at %#llx by a VMA of another object or offset",
			     mm->tgid, (unsigned long long)pfn, (unsigned long long)addr);
	} else {
		fail(c, "pid %d: PTE at %#llx maps frame %llu which is neither anon nor shmem (flags %#x)",
		     mm->tgid, (unsigned long long)addr, (unsigned long long)pfn,
		     (unsigned)atomic_load(&page->flags));
	}
}

static bool span_has_vma(struct mm_struct *mm, uint64_t start, uint64_t end)
{
	struct vm_area_struct *vma = find_vma(mm, start);
	return vma && vma->vm_start < end;
}

/* One swap PTE of mm at addr. */
static void check_swap_pte(struct checker *c, struct mm_struct *mm, uint64_t addr, pte_t pte,
			   long *rss_swap)
{
	struct swap_info_struct *si = c->vm->swap;
	swp_entry_t entry = pte_to_swp_entry(pte);
	struct vm_area_struct *vma = find_vma(mm, addr);
	(*rss_swap)++;
	if (!si || swp_type(entry) != 0 || swp_offset(entry) == 0 || swp_offset(entry) >= si->max) {
		fail(c, "pid %d: swap PTE %#llx at %#llx names no slot of the device", mm->tgid,
		     (unsigned long long)pte, (unsigned long long)addr);
		return;
	}
	if (!vma || vma->vm_start > addr || vma->vm_file) {
		fail(c, "pid %d: swap PTE at %#llx outside every private VMA", mm->tgid,
		     (unsigned long long)addr);
		return;
	}
	if ((pte & ~_PAGE_SWP_FLAGS) != swp_entry_to_pte(entry)) {
		fail(c, "pid %d: swap PTE %#llx at %#llx has stray bits", mm->tgid,
		     (unsigned long long)pte, (unsigned long long)addr);
		return;
	}
	uint64_t off = swp_offset(entry);
	c->swap_ptes[off]++;
	if (pte_swp_exclusive(pte))
		c->swap_excl[off] = 1;
}

/* Walk one table of level `level` (4 = PGD ... 1 = PTE table) covering base. */
static void check_table(struct checker *c, struct mm_struct *mm, uint64_t pfn, int level,
			uint64_t base, long *rss_anon, long *rss_shmem, long *rss_swap)
{
	static const int shift[5] = { 0, PAGE_SHIFT, PMD_SHIFT, PUD_SHIFT, PGDIR_SHIFT };
	struct cowvm *vm = c->vm;
	if (!pfn_valid(vm, pfn) || c->state[pfn] != F_UNSEEN) {
		fail(c, "pid %d: page table frame %llu is invalid or used twice", mm->tgid,
		     (unsigned long long)pfn);
		return;
	}
	struct page *tp = pfn_to_page(vm, pfn);
	if (!PageFlag(tp, PG_pgtable) || tp->private != (uint64_t)level) {
		fail(c, "pid %d: frame %llu used as a level-%d table lacks PG_pgtable or its level",
		     mm->tgid, (unsigned long long)pfn, level);
		return;
	}
	c->state[pfn] = F_PGTABLE;
	c->npgtables++;
	uint64_t span = 1ull << shift[level + (level < 4)];
	if (level < 4 && !span_has_vma(mm, base, base + span))
		fail(c, "pid %d: a level-%d table for %#llx is kept with no VMA over its span",
		     mm->tgid, level, (unsigned long long)base);
	pte_t *table = table_of(vm, pfn);
	uint64_t child = 1ull << shift[level];
	for (int i = 0; i < PTRS_PER_TABLE && !c->failed; i++) {
		pte_t e = ptep_get(&table[i]);
		uint64_t addr = base + (uint64_t)i * child;
		if (!e)
			continue;
		if (level == 1) {
			if (is_swap_pte(e))
				check_swap_pte(c, mm, addr, e, rss_swap);
			else
				check_pte(c, mm, addr, e, rss_anon, rss_shmem);
		} else {
			if ((e & _PAGE_TABLE) != _PAGE_TABLE)
				fail(c, "pid %d: level-%d entry %#llx is not a table pointer", mm->tgid,
				     level, (unsigned long long)e);
			else
				check_table(c, mm, pte_pfn(e), level - 1, addr, rss_anon, rss_shmem, rss_swap);
		}
	}
}

static void check_vmas(struct checker *c, struct mm_struct *mm)
{
	uint64_t total = 0;
	for (size_t i = 0; i < mm->nr_vmas && !c->failed; i++) {
		struct vm_area_struct *v = mm->vmas[i];
		if (v->vm_mm != mm || v->vm_start >= v->vm_end || !PAGE_ALIGNED(v->vm_start) ||
		    !PAGE_ALIGNED(v->vm_end) || v->vm_end > TASK_SIZE_MAX)
			fail(c, "pid %d: VMA %#llx-%#llx is malformed", mm->tgid,
			     (unsigned long long)v->vm_start, (unsigned long long)v->vm_end);
		if (i > 0 && mm->vmas[i - 1]->vm_end > v->vm_start)
			fail(c, "pid %d: VMAs overlap at %#llx", mm->tgid, (unsigned long long)v->vm_start);
		if (v->anon_vma && !avc_reaches(v, v->anon_vma))
			fail(c, "pid %d: VMA %#llx has no chain to its own anon_vma", mm->tgid,
			     (unsigned long long)v->vm_start);
		struct anon_vma_chain *avc;
		list_for_each_entry(avc, &v->anon_vma_chain, same_vma) {
			if (avc->vma != v || (v->anon_vma && avc->anon_vma->root != v->anon_vma->root))
				fail(c, "pid %d: VMA %#llx has a chain into another anon_vma tree", mm->tgid,
				     (unsigned long long)v->vm_start);
		}
		if ((v->vm_flags & VM_SHARED) != (v->vm_file ? VM_SHARED : 0))
			fail(c, "pid %d: VMA %#llx shared flag and object disagree", mm->tgid,
			     (unsigned long long)v->vm_start);
		if (v->vm_page_prot != vm_get_page_prot(v->vm_flags))
			fail(c, "pid %d: VMA %#llx protection does not match its flags", mm->tgid,
			     (unsigned long long)v->vm_start);
		total += (v->vm_end - v->vm_start) >> PAGE_SHIFT;
	}
	if (!c->failed && total != mm->total_vm)
		fail(c, "pid %d: total_vm %llu, VMAs sum to %llu", mm->tgid,
		     (unsigned long long)mm->total_vm, (unsigned long long)total);
	uint64_t locked = 0;
	for (size_t i = 0; i < mm->nr_vmas && !c->failed; i++) {
		struct vm_area_struct *v = mm->vmas[i];
		if ((v->vm_flags & VM_LOCKONFAULT) && !(v->vm_flags & VM_LOCKED))
			fail(c, "pid %d: VMA %#llx is VM_LOCKONFAULT without VM_LOCKED", mm->tgid,
			     (unsigned long long)v->vm_start);
		if ((v->vm_flags & VM_GROWSDOWN) && v->vm_file)
			fail(c, "pid %d: shared VMA %#llx grows down", mm->tgid, (unsigned long long)v->vm_start);
		if (v->vm_flags & VM_LOCKED)
			locked += (v->vm_end - v->vm_start) >> PAGE_SHIFT;
	}
	if (!c->failed && mm->locked_vm != locked + mm->locked_vm_stale)
		fail(c, "pid %d: locked_vm (VmLck) %llu pages, locked VMAs hold %llu (+%llu left by "
		     "MREMAP_DONTUNMAP)", mm->tgid, (unsigned long long)mm->locked_vm,
		     (unsigned long long)locked, (unsigned long long)mm->locked_vm_stale);
	if (!c->failed && (mm->def_flags & ~VM_LOCKED_MASK))
		fail(c, "pid %d: def_flags %#lx beyond VM_LOCKED|VM_LOCKONFAULT", mm->tgid, mm->def_flags);
}

/* The frames of one shmem object: each in its cache once, at its own offset. */
static void check_shmem_object(struct checker *c, struct shmem_inode *inode)
{
	for (uint64_t idx = 0; idx < inode->size_pages; idx++) {
		struct page *page = inode->pages[idx];
		if (!page)
			continue;
		uint64_t pfn = page_to_pfn(c->vm, page);
		if (c->state[pfn] == F_SHMEM)
			continue; /* object seen through another VMA or snapshot record */
		if (c->state[pfn] != F_UNSEEN || !PageShmem(page) || page->mapping != inode ||
		    page->index != idx) {
			fail(c, "shmem object %llu: frame %llu at offset %llu is inconsistent",
			     (unsigned long long)inode->id, (unsigned long long)pfn,
			     (unsigned long long)idx);
			return;
		}
		c->state[pfn] = F_SHMEM;
		c->cache_refs[pfn] = 1;
		c->shmem_cached++;
	}
}

/*
 * The objects mm's shared VMAs map, and those its snapshots' records hold: a record keeps its
 * object (and the object its pages) after the mapping is gone, until restore maps it again or
 * the snapshot is freed.
 */
static void check_shmem_objects(struct checker *c, struct mm_struct *mm)
{
	for (size_t i = 0; i < mm->nr_vmas && !c->failed; i++)
		if (mm->vmas[i]->vm_file)
			check_shmem_object(c, mm->vmas[i]->vm_file);
	struct cowvm_snapshot *snap;
	list_for_each_entry(snap, &mm->snapshots, node)
		for (size_t k = 0; snap->image && k < snap->nr_vmas && !c->failed; k++)
			if (snap->vmas[k].vm_file)
				check_shmem_object(c, snap->vmas[k].vm_file);
}

static void check_tlbs(struct checker *c, struct mm_struct *mm)
{
	struct task_struct *t;
	list_for_each_entry(t, &mm->threads, thread_node) {
		if ((__atomic_load_n(&t->mmu.tlb_flush_gen, __ATOMIC_ACQUIRE) & ~1ull) != t->mmu.tlb_seen_gen)
			continue; /* a flush is pending: the TLB empties before its next access */
		for (int i = 0; i < TLB_ENTRIES; i++) {
			uint64_t tag = t->mmu.tlb[i].tag;
			if (!(tag & TLB_VALID))
				continue;
			uint64_t addr = tag & PAGE_MASK;
			pte_t *ptep = pte_offset_map(mm, addr);
			pte_t pte = ptep ? ptep_get(ptep) : 0;
			bool ok = (pte & _PAGE_PRESENT) && pfn_to_virt(c->vm, pte_pfn(pte)) == t->mmu.tlb[i].host &&
				  (!(tag & TLB_WRITE) || pte_write(pte));
			if (!ok) {
				fail(c, "task %d: TLB entry for %#llx grants more than its PTE %#llx", t->tid,
				     (unsigned long long)addr, (unsigned long long)pte);
				return;
			}
		}
	}
}

/* ---- snapshots (mm/snapshot.c) ------------------------------------------------------------ */

static int cmp_addr(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static pte_t pte_or_none(struct mm_struct *mm, uint64_t addr)
{
	pte_t *p = pte_offset_map(mm, addr);
	return p ? ptep_get(p) : 0;
}

/*
 * The dirty log's promise: a page of a task VMA that restore would keep, and that is not in the
 * log, maps what the base image maps.  (A missed mark_table_changed shows here.)
 */
static void check_dirty_log(struct checker *c, struct mm_struct *mm, struct cowvm_snapshot *snap)
{
	struct mm_struct *img = snap->image;
	size_t nr = mm->snap_log.nr;
	uint64_t *log = malloc((nr ? nr : 1) * sizeof(*log));
	if (!log) {
		fail(c, "no memory for the checker's copy of the dirty log");
		return;
	}
	down_read(&img->mmap_lock);
	/* Each entry once; its old PTE, when known, is the image's frame where the image maps. */
	for (size_t i = 0; i < nr && !c->failed; i++) {
		const struct snapshot_log_entry *e = &mm->snap_log.ent[i];
		log[i] = e->addr;
		struct vm_area_struct *iv = find_vma(img, e->addr);
		if (e->old == SNAP_OLD_UNKNOWN || !iv || iv->vm_start > e->addr ||
		    atomic_load(&snap->image_changed))
			continue;
		pte_t r = pte_or_none(img, e->addr);
		bool same = snapshot_same_pte(mm->vm, e->old, r);
		if (!same)
			fail(c, "pid %d: the dirty log says page %#llx held frame %llu, its snapshot holds %llu",
			     mm->tgid, (unsigned long long)e->addr,
			     (unsigned long long)(pte_none(e->old) ? 0 : pte_pfn(e->old)),
			     (unsigned long long)(pte_none(r) ? 0 : pte_pfn(r)));
	}
	qsort(log, nr, sizeof(*log), cmp_addr);
	for (size_t i = 1; i < nr && !c->failed; i++)
		if (log[i] == log[i - 1])
			fail(c, "pid %d: page %#llx is in the dirty log twice", mm->tgid,
			     (unsigned long long)log[i]);
	for (size_t i = 0, k = 0; i < mm->nr_vmas && !c->failed; i++) {
		struct vm_area_struct *v = mm->vmas[i];
		while (k < snap->nr_vmas && snap->vmas[k].vm_start < v->vm_start)
			k++;
		if (v->vm_file || k == snap->nr_vmas || !snapshot_vma_matches(v, &snap->vmas[k]))
			continue;
		for (uint64_t a = v->vm_start; a < v->vm_end && !c->failed;) {
			uint64_t next = (a + PMD_SIZE) & ~(PMD_SIZE - 1);
			if (next > v->vm_end)
				next = v->vm_end;
			if (!pte_offset_map(mm, a) && !pte_offset_map(img, a)) {
				a = next;
				continue;
			}
			for (; a < next; a += PAGE_SIZE) {
				pte_t t = pte_or_none(mm, a), r = pte_or_none(img, a);
				bool same = snapshot_same_pte(mm->vm, t, r);
				if (same || bsearch(&a, log, nr, sizeof(*log), cmp_addr))
					continue;
				fail(c, "pid %d: page %#llx maps frame %llu, its snapshot frame %llu, and is not in "
				     "the dirty log", mm->tgid, (unsigned long long)a,
				     (unsigned long long)(pte_none(t) ? 0 : pte_pfn(t)),
				     (unsigned long long)(pte_none(r) ? 0 : pte_pfn(r)));
				break;
			}
		}
	}
	up_read(&img->mmap_lock);
	free(log);
}

/* Each snapshot of mm: its records, its image's twins, the base, the dirty log.  mmap_lock held. */
static void check_snapshots(struct checker *c, struct mm_struct *mm)
{
	struct cowvm_snapshot *snap;
	bool base_live = mm->snap_base == NULL;
	list_for_each_entry(snap, &mm->snapshots, node) {
		if (snap->mm != mm) {
			fail(c, "pid %d: a snapshot on its list belongs to another mm", mm->tgid);
			return;
		}
		struct mm_struct *img = snap->image;
		if (!img)
			continue;
		if (snap == mm->snap_base)
			base_live = true;
		if (!img->is_snapshot || img->image_of != snap || !list_empty(&img->threads)) {
			fail(c, "pid %d: a snapshot's image is not a hidden mm of that snapshot", mm->tgid);
			return;
		}
		size_t j = 0;
		for (size_t k = 0; k < snap->nr_vmas && !c->failed; k++) {
			const struct snapshot_vma *r = &snap->vmas[k];
			if (r->vm_start >= r->vm_end || (k && snap->vmas[k - 1].vm_end > r->vm_start))
				fail(c, "pid %d: snapshot records %zu are malformed or overlap", mm->tgid, k);
			else if (r->vm_file ? r->image != NULL
					    : (j >= img->nr_vmas || img->vmas[j] != r->image ||
					       r->image->vm_start != r->vm_start || r->image->vm_end != r->vm_end ||
					       r->image->vm_pgoff != r->vm_pgoff || !r->anon_vma ||
					       !avc_reaches(r->image, r->anon_vma)))
				fail(c, "pid %d: snapshot record %#llx-%#llx and its image twin disagree",
				     mm->tgid, (unsigned long long)r->vm_start, (unsigned long long)r->vm_end);
			else if (!r->vm_file)
				j++;
		}
		if (!c->failed && j != img->nr_vmas)
			fail(c, "pid %d: snapshot image has %zu VMAs for %zu private records", mm->tgid,
			     img->nr_vmas, j);
		if (c->failed)
			return;
	}
	if (!base_live)
		fail(c, "pid %d: the dirty log's base is not a live snapshot of it", mm->tgid);
	else if (mm->snap_base && !mm->snap_log.overflow)
		check_dirty_log(c, mm, mm->snap_base);
}

/* The swap device: slot counts against the swap PTEs found, the swap cache, the clusters. */
static void check_swap(struct checker *c)
{
	struct cowvm *vm = c->vm;
	struct swap_info_struct *si = vm->swap;
	uint64_t inuse = 0, cached = 0, nclean = 0;
	uint64_t *clean = malloc(si->max * sizeof(*clean)); /* slots whose bytes to compare */
	uint32_t *cluster = calloc(si->nr_clusters, sizeof(*cluster));
	if (!clean || !cluster) {
		free(clean);
		free(cluster);
		fail(c, "no memory for the swap check");
		return;
	}
	spin_lock(&si->lock);
	for (uint64_t off = 0; off < si->max && !c->failed; off++) {
		unsigned char map = si->swap_map[off];
		struct page *page = si->swap_cache[off];
		if (off == 0) {
			if (map != SWAP_MAP_BAD || page)
				fail(c, "swap slot 0 is not the header");
			cluster[0]++;
			continue;
		}
		if (map)
			cluster[off / SWAPFILE_CLUSTER]++, inuse++;
		if ((uint32_t)(map & ~SWAP_HAS_CACHE) != c->swap_ptes[off])
			fail(c, "swap slot %llu counts %d swap PTEs, %u found", (unsigned long long)off,
			     map & ~SWAP_HAS_CACHE, c->swap_ptes[off]);
		else if (!!(map & SWAP_HAS_CACHE) != (page != NULL))
			fail(c, "swap slot %llu: SWAP_HAS_CACHE %d but cache page %p", (unsigned long long)off,
			     !!(map & SWAP_HAS_CACHE), (void *)page);
		else if (c->swap_excl[off] && (c->swap_ptes[off] != 1 || (page && page_mapcount(page))))
			fail(c, "swap slot %llu: an exclusive swap PTE, but %u swap PTEs and a cache page "
			     "mapped %d times", (unsigned long long)off, c->swap_ptes[off],
			     page ? page_mapcount(page) : 0);
		if (!page || c->failed)
			continue;
		uint64_t pfn = page_to_pfn(vm, page);
		cached++;
		if (!PageSwapCache(page) || page->private != swp_entry(0, off).val || PageShmem(page) ||
		    (c->state[pfn] != F_UNSEEN && c->state[pfn] != F_ANON)) {
			fail(c, "swap-cache page %llu of slot %llu is inconsistent (flags %#x, private %#llx)",
			     (unsigned long long)pfn, (unsigned long long)off, (unsigned)atomic_load(&page->flags),
			     (unsigned long long)page->private);
			break;
		}
		if (PageAnonExclusive(page) && c->ptes[pfn] == 0)
			fail(c, "swap-cache page %llu is exclusive but unmapped", (unsigned long long)pfn);
		c->state[pfn] = F_ANON;
		c->cache_refs[pfn]++;
		if (!PageDirty(page) && c->ptes[pfn] == 0 && c->pin_refs[pfn] == 0)
			clean[nclean++] = off;
	}
	for (uint64_t cl = 0; cl < si->nr_clusters && !c->failed; cl++) {
		uint64_t end = (cl + 1) * SWAPFILE_CLUSTER;
		uint32_t beyond = (uint32_t)(end > si->max ? end - si->max : 0);
		if (si->cluster_info[cl].count != cluster[cl] + beyond)
			fail(c, "swap cluster %llu counts %u used slots, %u found", (unsigned long long)cl,
			     si->cluster_info[cl].count, cluster[cl] + beyond);
	}
	if (!c->failed && inuse != si->inuse_pages)
		fail(c, "swap: %llu slots counted in use, %llu found", (unsigned long long)si->inuse_pages,
		     (unsigned long long)inuse);
	spin_unlock(&si->lock);
	if (!c->failed && (uint64_t)global_node_page_state(vm, NR_SWAPCACHE) != cached)
		fail(c, "nr_swapcached %ld, %llu pages in the swap cache", global_node_page_state(vm, NR_SWAPCACHE),
		     (unsigned long long)cached);
	uint8_t buf[PAGE_SIZE];
	for (uint64_t i = 0; i < nclean && !c->failed; i++) {
		uint64_t off = clean[i];
		struct page *page = si->swap_cache[off];
		if (pread(si->fd, buf, PAGE_SIZE, (off_t)(off << PAGE_SHIFT)) != (ssize_t)PAGE_SIZE ||
		    memcmp(buf, page_address(vm, page), PAGE_SIZE))
			fail(c, "swap-cache page %llu is clean but differs from slot %llu",
			     (unsigned long long)page_to_pfn(vm, page), (unsigned long long)off);
	}
	free(clean);
	free(cluster);
}

static void check_frames(struct checker *c)
{
	struct cowvm *vm = c->vm;
	uint64_t lru_pages = 0;
	for (uint64_t pfn = 0; pfn < vm->nr_frames && !c->failed; pfn++) {
		struct page *page = pfn_to_page(vm, pfn);
		switch (c->state[pfn]) {
		case F_FREE: case F_RESERVED: case F_ZERO: case F_PGTABLE:
			if (c->ptes[pfn])
				fail(c, "frame %llu is mapped by a PTE but is not a user page",
				     (unsigned long long)pfn);
			break;
		case F_ANON: case F_SHMEM: case F_PINNED: {
			int expect = (int)(c->ptes[pfn] + c->cache_refs[pfn] + c->pin_refs[pfn]);
			if (page_mapcount(page) != (int)c->ptes[pfn])
				fail(c, "frame %llu: mapcount %d but %u PTEs map it", (unsigned long long)pfn,
				     page_mapcount(page), c->ptes[pfn]);
			else if (page_ref_count(page) != expect)
				fail(c, "frame %llu: refcount %d, expected %d (mapcount %u + cache %u + pins %u)",
				     (unsigned long long)pfn, page_ref_count(page), expect, c->ptes[pfn],
				     c->cache_refs[pfn], c->pin_refs[pfn]);
			else if (!PageLRU(page))
				fail(c, "frame %llu is a user page off the LRU", (unsigned long long)pfn);
			else if (c->state[pfn] == F_ANON && c->pin_refs[pfn] >= 1024 &&
				 (page_mapcount(page) != 1 || !PageAnonExclusive(page)))
				fail(c, "pinned frame %llu is mapped shared (mapcount %d, exclusive %d): "
				     "the pin and the process could part ways", (unsigned long long)pfn,
				     page_mapcount(page), PageAnonExclusive(page));
			if (!c->failed) {
				bool mlocked = PageFlag(page, PG_mlocked);
				if (mlocked != (c->locked_ptes[pfn] > 0) ||
				    (mlocked && page->mlock_count != c->locked_ptes[pfn]))
					fail(c, "frame %llu: mlocked %d with mlock_count %u, but %u PTEs of "
					     "locked VMAs map it", (unsigned long long)pfn, mlocked,
					     mlocked ? page->mlock_count : 0, c->locked_ptes[pfn]);
				else if (PageFlag(page, PG_unevictable) != mlocked)
					fail(c, "frame %llu: mlocked %d but unevictable %d", (unsigned long long)pfn,
					     mlocked, PageFlag(page, PG_unevictable));
				else if (PageFlag(page, PG_unevictable) && PageFlag(page, PG_active))
					fail(c, "frame %llu is unevictable and active", (unsigned long long)pfn);
				else if (mlocked)
					c->mlocked++;
			}
			if (PageSwapCache(page) && (!vm->swap || c->cache_refs[pfn] != 1))
				fail(c, "frame %llu has PG_swapcache but is not in the swap cache",
				     (unsigned long long)pfn);
			if (c->state[pfn] == F_ANON && page_mapcount(page) > 0)
				c->anon_mapped++;
			lru_pages++;
			break;
		}
		case F_UNSEEN:
			if (c->pin_refs[pfn] && page_mapcount(page) == 0) {
				/* pinned but unmapped (an anon page, or a shared one whose object
				 * is gone): only its holders keep it */
				if (page_ref_count(page) != (int)c->pin_refs[pfn])
					fail(c, "pinned frame %llu: refcount %d, pins hold %u",
					     (unsigned long long)pfn, page_ref_count(page), c->pin_refs[pfn]);
				else if (!PageLRU(page))
					fail(c, "pinned frame %llu is off the LRU", (unsigned long long)pfn);
				else if (PageFlag(page, PG_mlocked) || PageFlag(page, PG_unevictable))
					fail(c, "pinned unmapped frame %llu is still mlocked", (unsigned long long)pfn);
				lru_pages++;
				break;
			}
			fail(c, "frame %llu is lost: not free, and nothing maps or caches it "
			     "(refcount %d, mapcount %d, flags %#x)", (unsigned long long)pfn,
			     page_ref_count(page), page_mapcount(page), (unsigned)atomic_load(&page->flags));
			break;
		}
	}
	if (c->failed)
		return;
	uint64_t on_lists = 0;
	struct page *page;
	spin_lock(&vm->lru_lock);
	list_for_each_entry(page, &vm->lru_active_anon, lru) {
		on_lists++;
		if (!PageLRU(page) || !PageFlag(page, PG_active))
			fail(c, "frame %llu on the active list lacks PG_lru/PG_active",
			     (unsigned long long)page_to_pfn(vm, page));
	}
	list_for_each_entry(page, &vm->lru_inactive_anon, lru) {
		on_lists++;
		if (!PageLRU(page) || PageFlag(page, PG_active) || PageFlag(page, PG_unevictable))
			fail(c, "frame %llu on the inactive list has the flags of another list",
			     (unsigned long long)page_to_pfn(vm, page));
	}
	uint64_t unevictable = 0;
	list_for_each_entry(page, &vm->lru_unevictable, lru) {
		on_lists++;
		unevictable++;
		if (!PageLRU(page) || !PageFlag(page, PG_unevictable) || !PageFlag(page, PG_mlocked))
			fail(c, "frame %llu on the unevictable list is not an mlocked page",
			     (unsigned long long)page_to_pfn(vm, page));
	}
	spin_unlock(&vm->lru_lock);
	if (!c->failed && unevictable != c->mlocked)
		fail(c, "unevictable list holds %llu pages, %llu are mlocked", (unsigned long long)unevictable,
		     (unsigned long long)c->mlocked);
	if (!c->failed && (global_node_page_state(vm, NR_UNEVICTABLE) != (long)unevictable ||
			   global_node_page_state(vm, NR_MLOCK) != (long)c->mlocked))
		fail(c, "nr_unevictable %ld and nr_mlock %ld, lists show %llu and %llu",
		     global_node_page_state(vm, NR_UNEVICTABLE), global_node_page_state(vm, NR_MLOCK),
		     (unsigned long long)unevictable, (unsigned long long)c->mlocked);
	if (!c->failed && on_lists != lru_pages)
		fail(c, "LRU lists hold %llu pages, %llu user pages exist", (unsigned long long)on_lists,
		     (unsigned long long)lru_pages);
}

/* A frame that holds user memory: anon or shmem, mapped, cached or only pinned. */
static bool is_user_frame(void *arg, uint64_t pfn)
{
	struct checker *c = arg;
	switch (c->state[pfn]) {
	case F_ANON: case F_SHMEM: case F_PINNED:
		return true;
	case F_UNSEEN:
		return c->pin_refs[pfn] != 0;
	default:
		return false;
	}
}

int cowvm_check(cowvm_t *vm, char *why, size_t whylen)
{
	if (!vm)
		return -EINVAL;
	struct checker c = { .vm = vm, .why = why, .whylen = whylen };
	if (why && whylen)
		why[0] = 0;
	c.state = calloc(vm->nr_frames, 1);
	c.ptes = calloc(vm->nr_frames, sizeof(uint32_t));
	c.cache_refs = calloc(vm->nr_frames, sizeof(uint32_t));
	c.pin_refs = calloc(vm->nr_frames, sizeof(uint32_t));
	c.locked_ptes = calloc(vm->nr_frames, sizeof(uint32_t));
	uint64_t slots = vm->swap ? vm->swap->max : 1;
	c.swap_ptes = calloc(slots, sizeof(uint32_t));
	c.swap_excl = calloc(slots, 1);
	if (!c.state || !c.ptes || !c.cache_refs || !c.pin_refs || !c.locked_ptes || !c.swap_ptes ||
	    !c.swap_excl) {
		free(c.swap_ptes);
		free(c.swap_excl);
		free(c.locked_ptes);
		free(c.state);
		free(c.ptes);
		free(c.cache_refs);
		free(c.pin_refs);
		return -ENOMEM;
	}
	kswapd_pause(vm); /* the precondition: nothing else changes the machine meanwhile */
	for_each_pinned_page(vm, mark_pinned, &c);
	c.state[0] = F_RESERVED;
	c.state[page_to_pfn(vm, vm->zero_page)] = F_ZERO;
	for_each_free_frame(vm, mark_free, &c);
	if (!c.failed && c.nfree != nr_free_pages(vm))
		fail(&c, "nr_free_pages %llu, free lists hold %llu", (unsigned long long)nr_free_pages(vm),
		     (unsigned long long)c.nfree);

	/* The mm list is read under task_lock, the mms are checked under their mmap_lock
	 * afterwards: mmap_lock comes first in the lock order (docs/locking.md). */
	size_t nmms = 0, cap = 16;
	struct mm_struct **mms = malloc(cap * sizeof(*mms)), *mm;
	pthread_mutex_lock(&vm->task_lock);
	list_for_each_entry(mm, &vm->mms, mmlist) {
		if (nmms == cap) {
			struct mm_struct **bigger = mms ? realloc(mms, 2 * cap * sizeof(*mms)) : NULL;
			if (!bigger)
				break;
			mms = bigger;
			cap *= 2;
		}
		if (mms)
			mms[nmms++] = mm;
	}
	pthread_mutex_unlock(&vm->task_lock);
	if (!mms)
		fail(&c, "no memory for the checker's mm list");
	for (size_t m = 0; m < nmms && !c.failed; m++) {
		mm = mms[m];
		down_read(&mm->mmap_lock);
		long rss_anon = 0, rss_shmem = 0, rss_swap = 0;
		uint64_t tables_before = c.npgtables;
		check_vmas(&c, mm);
		if (!c.failed)
			check_table(&c, mm, mm->pgd, 4, 0, &rss_anon, &rss_shmem, &rss_swap);
		if (!c.failed && rss_swap != get_mm_counter(mm, MM_SWAPENTS))
			fail(&c, "pid %d: MM_SWAPENTS %ld, %ld swap PTEs found", mm->tgid,
			     get_mm_counter(mm, MM_SWAPENTS), rss_swap);
		if (!c.failed && (rss_anon != get_mm_counter(mm, MM_ANONPAGES) ||
				  rss_shmem != get_mm_counter(mm, MM_SHMEMPAGES)))
			fail(&c, "pid %d: RSS anon %ld shmem %ld, PTEs show %ld and %ld", mm->tgid,
			     get_mm_counter(mm, MM_ANONPAGES), get_mm_counter(mm, MM_SHMEMPAGES), rss_anon,
			     rss_shmem);
		if (!c.failed && c.npgtables - tables_before != (uint64_t)atomic_load(&mm->pgtables_pages))
			fail(&c, "pid %d: %ld page-table pages counted, %llu found", mm->tgid,
			     (long)atomic_load(&mm->pgtables_pages),
			     (unsigned long long)(c.npgtables - tables_before));
		if (!c.failed)
			check_shmem_objects(&c, mm);
		if (!c.failed)
			check_tlbs(&c, mm);
		if (!c.failed)
			check_snapshots(&c, mm);
		up_read(&mm->mmap_lock);
	}
	free(mms);

	if (!c.failed && vm->swap)
		check_swap(&c);
	if (!c.failed)
		check_frames(&c);
	if (!c.failed && mem_cgroup_check(vm, is_user_frame, &c, why, whylen))
		c.failed = true;
	if (!c.failed) {
		long anon = global_node_page_state(vm, NR_ANON_MAPPED);
		long shmem = global_node_page_state(vm, NR_SHMEM);
		long tables = global_node_page_state(vm, NR_PAGETABLE);
		long zero = global_node_page_state(vm, NR_ZERO_MAPPED);
		if ((uint64_t)anon != c.anon_mapped)
			fail(&c, "nr_anon_pages %ld, found %llu mapped anon pages", anon,
			     (unsigned long long)c.anon_mapped);
		else if ((uint64_t)shmem != c.shmem_cached)
			fail(&c, "nr_shmem %ld, found %llu", shmem, (unsigned long long)c.shmem_cached);
		else if ((uint64_t)tables != c.npgtables)
			fail(&c, "nr_page_table_pages %ld, found %llu", tables, (unsigned long long)c.npgtables);
		else if ((uint64_t)zero != c.nzero_ptes)
			fail(&c, "zero-page mappings counted %ld, found %llu", zero,
			     (unsigned long long)c.nzero_ptes);
	}
	free(c.state);
	free(c.ptes);
	free(c.cache_refs);
	free(c.pin_refs);
	free(c.locked_ptes);
	free(c.swap_ptes);
	free(c.swap_excl);
	kswapd_resume(vm);
	return c.failed ? -EUCLEAN : 0;
}
