/*
 * snapshot.c - snapshots of a process's address space, and restore in time proportional to
 * what changed: cowvm_snapshot, cowvm_restore, cowvm_snapshot_free, cowvm_dirty_pages.
 *
 * What it owns: struct cowvm_snapshot (the saved VMAs and break, and the image), each mm's list
 * of them, the mm's dirty log (snap_log) and its base (snap_base).
 *
 * A snapshot holds its frames the way a fork child does.  Its image is a hidden mm (no thread,
 * is_snapshot, on vm->mms) with a COW twin of every private VMA (copy_vma_cow: anon_vma_fork +
 * copy_page_range), so each frame the process had is mapped once more by the image: one
 * reference and one mapcount per image PTE, the task's PTEs write-protected, the pages no longer
 * exclusive.  The checker's refcount = mapcount + cache + pins therefore already counts
 * snapshot holds (they are mapcounts of image mms); it also checks that no page an image maps
 * is PageAnonExclusive (else the task could reuse it and write into the snapshot).
 * Shared mappings are saved as records (range, flags, object with a reference) and come back
 * as mappings; their contents are not rolled back: other processes see them.
 * Pinned pages: refused (-EBUSY), not copied eagerly as fork does, because a pinned page stays
 * writable in the task and could change without any fault the dirty log would see.
 *
 * Invariants (checked by mm/check.c):
 *  - a live snapshot's image maps only private VMAs, exactly one twin per private record, with
 *    the record's range and vm_pgoff; no frame it maps is exclusive;
 *  - the dirty log: while mm->snap_base is set and the log has not overflowed, every page of a
 *    task VMA that snapshot_vma_matches() a base record, and is not in the log, maps the same
 *    frame as the base image (or neither maps one).  mark_table_changed() feeds the log: every
 *    PTE change of frame (fault, COW copy, zap, mremap, dput) passes through it.
 *
 * How restore works
 * -----------------
 *   saved VMAs (records):   [ heap  rw ][ buf rw ]      [ stack rw ]
 *   task now:               [ heap rw ][r][ buf rw ][new]  [ stack rw ]
 *                                      ^mprotect     ^mmap
 *
 *  1. VMAs.  A task VMA that matches a record exactly (range, flags but soft-dirty, pgoff,
 *     object, and the same anon_vma, or the record had none) is kept.  Every other task VMA
 *     is unmapped whole (here the split heap, [r] and [new]).  Then every record without a
 *     kept VMA is rebuilt: a new VMA with the record's fields, chained as the image's twin is
 *     (anon_vma_clone) and with the record's anon_vma as its own, so it is the same VMA again
 *     for the next restore and for rmap; its PTEs are copied from the image as fork copies
 *     them.  The VMA array then equals the records one for one: no fragmentation, however
 *     many iterations.  Cost: the rebuilt VMAs' size - nothing when only memory changed.
 *  2. Pages.  Restoring the base snapshot: for each address in the log (the PTEs that changed
 *     frame since, each once, with the PTE it had before its first change, which is the
 *     image's), make the task's PTE map what the image's maps:
 *
 *         task PTE          image PTE          action
 *         frame F           frame F            nothing (already the snapshot's)
 *         any / none        frame G            drop what the task maps, map G write-protected
 *                                              (get_page, page_dup_rmap, RSS), COW as after fork
 *         frame F           none               drop F (page_remove_rmap, freed after the flush)
 *         swap S            swap S (or S's     nothing (the same page: equal slot, or the
 *         (or frame P)      cache page P)      slot's swap-cache page)
 *         swap S            other              free_swap_and_cache(S), then as above
 *         any               swap T             swap_duplicate(T) under the image's PTL, then
 *                                              map T's swap PTE (not exclusive), as fork does
 *
 *     Pages freed go through an mmu_gather: the TLB is flushed before any frame is reused.
 *     The image changes after the snapshot only when swapoff brings one of its swap PTEs in
 *     (reclaim never unmaps an image PTE): snap->image_changed then makes restore read the
 *     image instead of trusting the log's old PTEs.
 *     Restoring another snapshot does the same for every page of every private VMA (tables
 *     missing on both sides skipped), once; it becomes the base.
 *  3. The break comes back; the log is emptied; the snapshot is the base.
 * During restore the base is unset, so restore's own PTE changes are not logged.  Restore
 * holds the task's mmap_lock for writing and the image's for reading (image after task, as
 * dput's SNAP).  On -ENOMEM the task is left consistent, partly restored, with no base: a
 * later restore compares everything and finishes the job.
 */
#include <stdlib.h>

#include "mm.h"
#include "swap.h"

#define SNAP_LOG_MAX (1u << 20)        /* entries; beyond, restore compares every PTE */
#define SNAP_PIN_BIAS 1024             /* GUP_PIN_COUNTING_BIAS */

static struct vm_area_struct *vma_at(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);
	return vma && vma->vm_start <= addr ? vma : NULL;
}

/* ---- the dirty log ------------------------------------------------------------------------- */

static uint32_t log_hash(uint64_t addr, uint32_t nslots)
{
	return (uint32_t)(((addr >> PAGE_SHIFT) * 0x9e3779b97f4a7c15ull) >> 32) & (nslots - 1);
}

/* Make room for one more entry (entries and a slot table at least twice as large). */
static bool log_grow(struct snapshot_log *log)
{
	if (log->nr < log->cap)
		return true;
	size_t cap = log->cap ? log->cap * 2 : 256;
	if (cap > SNAP_LOG_MAX)
		return false;
	struct snapshot_log_entry *ent = realloc(log->ent, cap * sizeof(*ent));
	if (!ent)
		return false;
	log->ent = ent;
	uint32_t nslots = (uint32_t)(2 * cap);
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return false;
	for (size_t i = 0; i < log->nr; i++) { /* rehash */
		uint32_t h = log_hash(ent[i].addr, nslots);
		while (slots[h])
			h = (h + 1) & (nslots - 1);
		slots[h] = (uint32_t)i + 1;
		ent[i].slot = h;
	}
	free(log->slots);
	log->slots = slots;
	log->nslots = nslots;
	log->cap = cap;
	return true;
}

/*
 * A PTE of mm at addr changed its frame; old is what it held (or SNAP_OLD_UNKNOWN).  Only the
 * first change of an address since the base counts: its old PTE is the snapshot's (the log's
 * invariant).  page_table_lock held (mark_table_changed).
 */
void snapshot_record(struct mm_struct *mm, uint64_t addr, pte_t old)
{
	struct snapshot_log *log = &mm->snap_log;
	if (log->overflow)
		return;
	if (log->nslots) {
		uint32_t h = log_hash(addr, log->nslots);
		for (; log->slots[h]; h = (h + 1) & (log->nslots - 1))
			if (log->ent[log->slots[h] - 1].addr == addr)
				return; /* logged already */
	}
	if (!log_grow(log)) {
		log->overflow = true;
		return;
	}
	uint32_t h = log_hash(addr, log->nslots);
	while (log->slots[h])
		h = (h + 1) & (log->nslots - 1);
	log->slots[h] = (uint32_t)log->nr + 1;
	log->ent[log->nr++] = (struct snapshot_log_entry){ .addr = addr, .old = old, .slot = h };
}

/* Empty the log: O(entries), the slot table is cleared entry by entry. */
static void log_reset(struct mm_struct *mm)
{
	struct snapshot_log *log = &mm->snap_log;
	spin_lock(&mm->page_table_lock);
	for (size_t i = 0; i < log->nr; i++)
		log->slots[log->ent[i].slot] = 0;
	log->nr = 0;
	log->overflow = false;
	spin_unlock(&mm->page_table_lock);
}

bool snapshot_vma_matches(const struct vm_area_struct *v, const struct snapshot_vma *r)
{
	return v->vm_start == r->vm_start && v->vm_end == r->vm_end &&
	       ((v->vm_flags ^ r->vm_flags) & ~VM_SOFTDIRTY) == 0 && v->vm_pgoff == r->vm_pgoff &&
	       v->vm_file == r->vm_file && (!r->anon_vma || v->anon_vma == r->anon_vma);
}

/* The record that starts exactly at addr, or NULL. */
static struct snapshot_vma *record_at(struct cowvm_snapshot *snap, uint64_t addr)
{
	size_t lo = 0, hi = snap->nr_vmas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (snap->vmas[mid].vm_start < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < snap->nr_vmas && snap->vmas[lo].vm_start == addr ? &snap->vmas[lo] : NULL;
}

/* ---- taking and freeing ------------------------------------------------------------------- */

static int pinned_pte(pte_t *pte, uint64_t addr, void *arg)
{
	(void)addr;
	struct cowvm *vm = arg;
	pte_t e = ptep_get(pte);
	if (!pte_present(e) || pte_special(e))
		return 0;
	struct page *page = pfn_to_page(vm, pte_pfn(e));
	return PageAnon(page) && page_ref_count(page) >= SNAP_PIN_BIAS;
}

/* May a private page of mm be pinned (page_maybe_dma_pinned)?  mmap_lock held. */
static bool mm_has_pinned_pages(struct mm_struct *mm)
{
	if (!(atomic_load(&mm->flags) & MMF_HAS_PINNED))
		return false;
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct vm_area_struct *v = mm->vmas[i];
		if (!v->vm_file && walk_page_range(mm, v->vm_start, v->vm_end, pinned_pte, mm->vm))
			return true;
	}
	return false;
}

/* Drop what a snapshot holds (image, records); the handle stays.  Owner's mmap_lock held. */
static void snapshot_release(struct cowvm_snapshot *snap, size_t nr_records)
{
	struct mm_struct *mm = snap->mm;
	if (mm->snap_base == snap) {
		mm->snap_base = NULL;
		log_reset(mm);
	}
	for (size_t i = 0; i < nr_records; i++)
		if (snap->vmas[i].vm_file)
			shmem_put(mm->vm, snap->vmas[i].vm_file);
	free(snap->vmas);
	snap->vmas = NULL;
	snap->nr_vmas = 0;
	if (snap->image)
		destroy_snapshot(snap->image);
	snap->image = NULL;
}

cowvm_snapshot_t *cowvm_snapshot(cowvm_task_t *t)
{
	if (!t) {
		errno = EINVAL;
		return NULL;
	}
	struct cowvm *vm = t->vm;
	struct mm_struct *mm = t->mm;
	current = t;
	struct cowvm_snapshot *snap = calloc(1, sizeof(*snap));
	if (!snap) {
		errno = ENOMEM;
		return NULL;
	}
	snap->mm = mm;
	INIT_LIST_HEAD(&snap->node);
	int err = 0;
	size_t nrec = 0;
	down_write(&mm->mmap_lock);
	if (mm_has_pinned_pages(mm)) {
		err = -EBUSY;
		goto out_unlock;
	}
	snap->vmas = calloc(mm->nr_vmas ? mm->nr_vmas : 1, sizeof(*snap->vmas));
	struct mm_struct *image = snap->vmas ? mm_alloc(vm) : NULL;
	if (!image) {
		err = -ENOMEM;
		goto out_unlock;
	}
	image->tgid = mm->tgid;
	image->is_snapshot = true;
	image->image_of = snap;
	image->start_brk = mm->start_brk;
	image->brk = mm->brk;
	pthread_mutex_lock(&vm->task_lock);
	list_add_tail(&image->mmlist, &vm->mms);
	pthread_mutex_unlock(&vm->task_lock);
	snap->image = image;

	down_write(&image->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas && !err; i++) {
		struct vm_area_struct *v = mm->vmas[i];
		struct snapshot_vma *r = &snap->vmas[i];
		r->vm_start = v->vm_start;
		r->vm_end = v->vm_end;
		r->vm_flags = v->vm_flags;
		r->vm_pgoff = v->vm_pgoff;
		if (v->vm_file) {
			r->vm_file = v->vm_file;
			shmem_get(v->vm_file);
			nrec = i + 1;
			continue;
		}
		/* An anon_vma now, so that the image copies zero-page PTEs too (copy_page_range
		 * skips a VMA without one) and a restored VMA is recognised by it. */
		if (anon_vma_prepare(v)) {
			err = -ENOMEM;
			break;
		}
		r->anon_vma = v->anon_vma;
		nrec = i + 1;
		size_t before = image->nr_vmas;
		err = copy_vma_cow(image, v, 0, false);
		if (image->nr_vmas > before)
			r->image = image->vmas[image->nr_vmas - 1];
	}
	up_write(&image->mmap_lock);
	flush_tlb_mm(mm);
	if (err)
		goto out_unlock;
	snap->nr_vmas = mm->nr_vmas;
	snap->start_brk = mm->start_brk;
	snap->brk = mm->brk;
	list_add_tail(&snap->node, &mm->snapshots);
	mm->snap_base = snap;
	log_reset(mm);
	atomic_store(&snap->image_changed, false); /* copying into the image set it */
	up_write(&mm->mmap_lock);
	return snap;

out_unlock:
	if (snap->vmas)
		snapshot_release(snap, nrec);
	else if (snap->image)
		destroy_snapshot(snap->image);
	up_write(&mm->mmap_lock);
	free(snap);
	errno = -err;
	return NULL;
}

int cowvm_snapshot_free(cowvm_snapshot_t *snap)
{
	if (!snap)
		return -EINVAL;
	struct mm_struct *mm = snap->mm;
	down_write(&mm->mmap_lock);
	int err = -ENOENT;
	if (snap->image) {
		snapshot_release(snap, snap->nr_vmas);
		err = 0;
	}
	up_write(&mm->mmap_lock);
	return err;
}

/* The process is gone (its last thread exited): free every snapshot and handle. */
void exit_snapshots(struct mm_struct *mm)
{
	down_write(&mm->mmap_lock);
	while (!list_empty(&mm->snapshots)) {
		struct cowvm_snapshot *snap = list_first_entry(&mm->snapshots, struct cowvm_snapshot, node);
		list_del(&snap->node);
		if (snap->image)
			snapshot_release(snap, snap->nr_vmas);
		free(snap);
	}
	mm->snap_base = NULL;
	up_write(&mm->mmap_lock);
}

/* ---- restore ------------------------------------------------------------------------------- */

/*
 * Rebuild the private record r as a task VMA: the record's fields, the image twin's chains, the
 * record's anon_vma as its own, and the image's PTEs.  The range is free.  0 or -ENOMEM (a VMA
 * already inserted stays, partly copied: consistent).
 */
static int rebuild_private(struct mm_struct *mm, const struct snapshot_vma *r)
{
	struct vm_area_struct *v = vm_area_alloc(mm);
	if (!v)
		return -ENOMEM;
	v->vm_start = r->vm_start;
	v->vm_end = r->vm_end;
	v->vm_flags = r->vm_flags;
	v->vm_page_prot = vm_get_page_prot(r->vm_flags);
	v->vm_pgoff = r->vm_pgoff;
	if (r->anon_vma) {
		if (anon_vma_clone(v, r->image)) {
			vm_area_free(v);
			return -ENOMEM;
		}
		struct anon_vma *root = r->anon_vma->root;
		down_write(&root->rwsem);
		if (v->anon_vma)
			v->anon_vma->num_active_vmas--;
		v->anon_vma = r->anon_vma;
		v->anon_vma->num_active_vmas++;
		up_write(&root->rwsem);
	}
	if (vma_insert(mm, v)) {
		unlink_anon_vmas(v);
		vm_area_free(v);
		return -ENOMEM;
	}
	uint64_t pages = (v->vm_end - v->vm_start) >> PAGE_SHIFT;
	mm->total_vm += pages;
	if (v->vm_flags & VM_LOCKED)
		mm->locked_vm += pages;
	return r->anon_vma ? copy_page_range(v, r->image) : 0;
}

/* Rebuild the shared record r: a mapping of its object again (pages fault back in). */
static int rebuild_shared(struct mm_struct *mm, const struct snapshot_vma *r)
{
	struct vm_area_struct *v = vm_area_alloc(mm);
	if (!v)
		return -ENOMEM;
	v->vm_start = r->vm_start;
	v->vm_end = r->vm_end;
	v->vm_flags = r->vm_flags;
	v->vm_page_prot = vm_get_page_prot(r->vm_flags);
	v->vm_pgoff = r->vm_pgoff;
	v->vm_file = r->vm_file;
	if (vma_insert(mm, v)) {
		vm_area_free(v);
		return -ENOMEM;
	}
	shmem_get(v->vm_file);
	shmem_link_vma(v);
	uint64_t pages = (v->vm_end - v->vm_start) >> PAGE_SHIFT;
	mm->total_vm += pages;
	if (v->vm_flags & VM_LOCKED)
		mm->locked_vm += pages;
	return 0;
}

/* Step 1 of the essay: the task's VMAs become the records.  Both mmap_locks held. */
static int restore_vmas(struct mm_struct *mm, struct cowvm_snapshot *snap)
{
	/* Unmap every task VMA that no record keeps, in runs of neighbours. */
	for (size_t i = 0; i < mm->nr_vmas;) {
		struct vm_area_struct *v = mm->vmas[i];
		struct snapshot_vma *r = record_at(snap, v->vm_start);
		if (r && snapshot_vma_matches(v, r)) {
			if (v->vm_flags != r->vm_flags) { /* only VM_SOFTDIRTY differs */
				v->vm_flags = r->vm_flags;
				v->vm_page_prot = vm_get_page_prot(v->vm_flags);
			}
			i++;
			continue;
		}
		uint64_t start = v->vm_start, end = v->vm_end;
		for (size_t j = i + 1; j < mm->nr_vmas; j++) {
			struct vm_area_struct *w = mm->vmas[j];
			struct snapshot_vma *rw = record_at(snap, w->vm_start);
			if (w->vm_start != end || (rw && snapshot_vma_matches(w, rw)))
				break;
			end = w->vm_end;
		}
		int err = do_munmap(mm, start, end - start);
		if (err)
			return err;
	}
	/* Rebuild every record that has no kept VMA: its range is free now. */
	for (size_t k = 0; k < snap->nr_vmas; k++) {
		const struct snapshot_vma *r = &snap->vmas[k];
		struct vm_area_struct *v = vma_at(mm, r->vm_start);
		if (v && snapshot_vma_matches(v, r))
			continue;
		int err = r->vm_file ? rebuild_shared(mm, r) : rebuild_private(mm, r);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Make the task's PTE at addr map what the image's maps (the table in the essay): want, the
 * image's PTE as the dirty log recorded it, or SNAP_OLD_UNKNOWN to read it from the image's
 * tables (the log spares restore those cold cache lines).  The task's mmap_lock held for
 * writing, the image's for reading; takes the task's PTL.  0 or -ENOMEM.
 */
static int restore_page(struct mm_struct *mm, struct mm_struct *image, uint64_t addr,
			pte_t want, struct mmu_gather *tlb)
{
	struct cowvm *vm = mm->vm;
	struct vm_area_struct *vma = vma_at(mm, addr);
	if (!vma || vma->vm_file)
		return 0; /* unmapped since (step 1 took it), or shared memory */
	pte_t *ip = NULL;
	if (want == SNAP_OLD_UNKNOWN || is_swap_pte(want)) { /* look in the image */
		ip = vma_at(image, addr) ? pte_offset_map(image, addr) : NULL;
		want = ip ? ptep_get(ip) : 0;
	}
	pte_t *tp = pte_offset_map(mm, addr);
	pte_t have = tp ? ptep_get(tp) : 0;
	if (snapshot_same_pte(vm, have, want))
		return 0;
	if (!tp && !(tp = pte_alloc_map(mm, addr)))
		return -ENOMEM;
	if (is_swap_pte(want)) {
		/* The image's swap PTE names a slot it counts; swapoff may bring it in meanwhile
		 * (then the image maps a frame, which stays until the snapshot is freed).  Under
		 * the image's PTL, take our own count on the slot, as fork's copy_nonpresent_pte. */
		spin_lock(&image->page_table_lock);
		want = ptep_get(ip);
		int err = is_swap_pte(want) ? swap_duplicate(vm, pte_to_swp_entry(want)) : 0;
		spin_unlock(&image->page_table_lock);
		if (err)
			return err; /* SWAP_MAP_MAX: no count continuation in cowvm */
	}
	spin_lock(&mm->page_table_lock);
	pte_t old = ptep_get_and_clear(tp);
	if (is_swap_pte(old)) {
		add_mm_counter(mm, MM_SWAPENTS, -1);
		free_swap_and_cache(vm, pte_to_swp_entry(old));
	} else if (!pte_none(old)) {
		struct page *page = vm_normal_page(vma, addr, old);
		tlb_flush_range(tlb, addr, addr + PAGE_SIZE);
		if (page) {
			add_mm_counter(mm, PageAnon(page) ? MM_ANONPAGES : MM_SHMEMPAGES, -1);
			page_remove_rmap(vm, page, vma);
			tlb_remove_page(tlb, page, addr);
		} else {
			mod_node_page_state(vm, NR_ZERO_MAPPED, -1);
		}
	}
	if (is_swap_pte(want)) {
		add_mm_counter(mm, MM_SWAPENTS, 1);
		set_pte(tp, pte_swp_clear_exclusive(want));
	} else if (!pte_none(want)) {
		struct page *page = vm_normal_page(vma, addr, want); /* held by the image */
		if (page) {
			get_page(page);
			page_dup_rmap(page, vma);
			add_mm_counter(mm, MM_ANONPAGES, 1);
		} else {
			mod_node_page_state(vm, NR_ZERO_MAPPED, 1);
		}
		set_pte(tp, pte_mkold(pte_wrprotect(pte_modify(want, vma->vm_page_prot))));
	}
	mark_table_changed(vm, tp);
	spin_unlock(&mm->page_table_lock);
	return 0;
}

/* Step 2, base snapshot: the logged addresses only. */
static int restore_logged(struct mm_struct *mm, struct mm_struct *image, struct mmu_gather *tlb)
{
	const struct snapshot_log *log = &mm->snap_log;
	bool stale = atomic_load(&image->image_of->image_changed);
	for (size_t i = 0; i < log->nr; i++) {
		int err = restore_page(mm, image, log->ent[i].addr,
				       stale ? SNAP_OLD_UNKNOWN : log->ent[i].old, tlb);
		if (err)
			return err;
	}
	return 0;
}

/* Step 2, another snapshot: every page of every private VMA (the layout is the records'). */
static int restore_all(struct mm_struct *mm, struct mm_struct *image, struct mmu_gather *tlb)
{
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct vm_area_struct *v = mm->vmas[i];
		if (v->vm_file)
			continue;
		for (uint64_t a = v->vm_start; a < v->vm_end;) {
			uint64_t next = (a + PMD_SIZE) & ~(PMD_SIZE - 1);
			if (next > v->vm_end)
				next = v->vm_end;
			if (!pte_offset_map(mm, a) && !pte_offset_map(image, a)) {
				a = next; /* no table on either side */
				continue;
			}
			for (; a < next; a += PAGE_SIZE) {
				int err = restore_page(mm, image, a, SNAP_OLD_UNKNOWN, tlb);
				if (err)
					return err;
			}
		}
	}
	return 0;
}

int cowvm_restore(cowvm_task_t *t, cowvm_snapshot_t *snap)
{
	if (!t || !snap || snap->mm != t->mm)
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	current = t;
	down_write(&mm->mmap_lock);
	struct mm_struct *image = snap->image;
	if (!image) {
		up_write(&mm->mmap_lock);
		return -ENOENT;
	}
	down_read(&image->mmap_lock);
	bool fast = mm->snap_base == snap && !mm->snap_log.overflow;
	mm->snap_base = NULL; /* restore's own changes are not news */
	update_hiwater_rss(mm);
	update_hiwater_vm(mm);
	int err = restore_vmas(mm, snap);
	struct mmu_gather tlb;
	tlb_gather_mmu(&tlb, mm);
	if (!err)
		err = fast ? restore_logged(mm, image, &tlb) : restore_all(mm, image, &tlb);
	tlb_finish_mmu(&tlb);
	mm->start_brk = snap->start_brk;
	mm->brk = snap->brk;
	log_reset(mm);
	atomic_store(&snap->image_changed, false); /* the log now starts from the image as it is */
	if (!err)
		mm->snap_base = snap;
	up_read(&image->mmap_lock);
	up_write(&mm->mmap_lock);
	return err;
}

/* ---- what changed ----------------------------------------------------------------------------- */

/* The frame a swap PTE's slot has in the swap cache, or 0. */
static uint64_t swap_cache_pfn(struct cowvm *vm, pte_t pte)
{
	struct swap_info_struct *si = vm->swap;
	swp_entry_t e = pte_to_swp_entry(pte);
	if (!si || swp_offset(e) == 0 || swp_offset(e) >= si->max)
		return 0;
	spin_lock(&si->lock);
	struct page *page = si->swap_cache[swp_offset(e)];
	uint64_t pfn = page ? page_to_pfn(vm, page) : 0;
	spin_unlock(&si->lock);
	return pfn;
}

bool snapshot_same_pte(struct cowvm *vm, pte_t a, pte_t b)
{
	if (pte_none(a) || pte_none(b))
		return pte_none(a) && pte_none(b);
	if (pte_present(a) && pte_present(b))
		return pte_pfn(a) == pte_pfn(b);
	if (!pte_present(a) && !pte_present(b))
		return pte_to_swp_entry(a).val == pte_to_swp_entry(b).val;
	pte_t swp = pte_present(a) ? b : a, pres = pte_present(a) ? a : b;
	uint64_t pfn = swap_cache_pfn(vm, swp);
	return pfn && pfn == pte_pfn(pres);
}

/* The page at addr for comparing: 0 for none or the zero page (a read is not a change), the
 * frame, or for a swap PTE its swap-cache frame, else its slot (top bit set). */
static uint64_t frame_at(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = vma_at(mm, addr);
	if (!vma || vma->vm_file)
		return 0;
	pte_t *p = pte_offset_map(mm, addr);
	pte_t e = p ? ptep_get(p) : 0;
	if (is_swap_pte(e)) {
		uint64_t pfn = swap_cache_pfn(mm->vm, e);
		return pfn ? pfn : (1ull << 63) | pte_to_swp_entry(e).val;
	}
	if (!pte_present(e) || pte_special(e))
		return 0;
	return pte_pfn(e);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct dirty_out {
	uint64_t *addrs;
	size_t max;
	int64_t n;
};

static void emit(struct dirty_out *o, uint64_t addr)
{
	if ((size_t)o->n < o->max)
		o->addrs[o->n] = addr;
	o->n++;
}

/* Every page of [start, end) whose frame differs, skipping 2 MiB spans with no tables. */
static void compare_range(struct mm_struct *mm, struct mm_struct *image, uint64_t start,
			  uint64_t end, struct dirty_out *o)
{
	for (uint64_t a = start; a < end;) {
		uint64_t next = (a + PMD_SIZE) & ~(PMD_SIZE - 1);
		if (next > end)
			next = end;
		if (!pte_offset_map(mm, a) && !pte_offset_map(image, a)) {
			a = next;
			continue;
		}
		for (; a < next; a += PAGE_SIZE)
			if (frame_at(mm, a) != frame_at(image, a))
				emit(o, a);
	}
}

int64_t cowvm_dirty_pages(cowvm_task_t *t, cowvm_snapshot_t *snap, uint64_t *addrs, size_t max)
{
	if (!t || !snap || (max && !addrs) || snap->mm != t->mm)
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	down_read(&mm->mmap_lock);
	struct mm_struct *image = snap->image;
	if (!image) {
		up_read(&mm->mmap_lock);
		return -ENOENT;
	}
	down_read(&image->mmap_lock);
	struct dirty_out o = { .addrs = addrs, .max = max };
	uint64_t *copy = NULL;
	size_t nr = 0;
	spin_lock(&mm->page_table_lock);
	bool fast = mm->snap_base == snap && !mm->snap_log.overflow;
	if (fast && mm->snap_log.nr) {
		nr = mm->snap_log.nr;
		copy = malloc(nr * sizeof(*copy));
		for (size_t i = 0; copy && i < nr; i++)
			copy[i] = mm->snap_log.ent[i].addr;
	}
	spin_unlock(&mm->page_table_lock);
	if (fast && nr && !copy) {
		o.n = -ENOMEM;
	} else if (fast) {
		if (nr) /* an empty log has no array (qsort must not see NULL) */
			qsort(copy, nr, sizeof(*copy), cmp_u64);
		for (size_t i = 0; i < nr; i++)
			if (frame_at(mm, copy[i]) != frame_at(image, copy[i]))
				emit(&o, copy[i]);
	} else {
		/* The union of the task's and the image's VMAs, in address order. */
		size_t i = 0, j = 0;
		uint64_t done = 0;
		while (i < mm->nr_vmas || j < image->nr_vmas) {
			struct vm_area_struct *a = i < mm->nr_vmas ? mm->vmas[i] : NULL;
			struct vm_area_struct *b = j < image->nr_vmas ? image->vmas[j] : NULL;
			struct vm_area_struct *v = !b || (a && a->vm_start < b->vm_start) ? a : b;
			if (v == a)
				i++;
			else
				j++;
			uint64_t s = v->vm_start > done ? v->vm_start : done;
			if (s < v->vm_end) {
				compare_range(mm, image, s, v->vm_end, &o);
				done = v->vm_end;
			}
		}
	}
	free(copy);
	up_read(&image->mmap_lock);
	up_read(&mm->mmap_lock);
	return o.n;
}
