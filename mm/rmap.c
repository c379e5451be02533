/*
 * rmap.c - reverse mapping: from a page to every (mm, address) that maps it.
 *
 * An anonymous page names an anon_vma (page->mapping) and its offset (page->index).  Every VMA
 * that can map the page is chained to that anon_vma by an anon_vma_chain, and computes the same
 * index for the address where it maps it:
 *
 *     address = vma->vm_start + (page->index - vma->vm_pgoff) * PAGE_SIZE
 *
 * fork gives the child VMA chains to all of the parent's anon_vmas plus a new anon_vma of its
 * own (for the pages it will copy later); the new one's root is the tree's root, whose lock
 * guards the whole tree:
 *
 *     parent VMA --avc--> AV_p (root)              pages copied before fork: mapping = AV_p
 *     child  VMA --avc--> AV_p, --avc--> AV_c      pages the child copies: mapping = AV_c
 *
 * Invariants: a mapped page's anon_vma is chained to every VMA mapping it; an anon_vma lives
 * while a chain or a child anon_vma refers to it; a page's mapcount equals its PTEs.
 * Shared anonymous (shmem) pages name their shmem_inode instead, whose i_mmap lists the VMAs.
 */
#include "mm.h"

static void anon_vma_lock_write(struct anon_vma *av) { down_write(&av->root->rwsem); }
static void anon_vma_unlock_write(struct anon_vma *av) { up_write(&av->root->rwsem); }
static void anon_vma_lock_read(struct anon_vma *av) { down_read(&av->root->rwsem); }
static void anon_vma_unlock_read(struct anon_vma *av) { up_read(&av->root->rwsem); }

static struct anon_vma *anon_vma_alloc(struct cowvm *vm)
{
	struct anon_vma *av = calloc(1, sizeof(*av));
	if (!av)
		return NULL;
	av->root = av;
	av->parent = av;
	init_rwsem(&av->rwsem);
	atomic_store(&av->refcount, 1);
	INIT_LIST_HEAD(&av->head);
	av->id = atomic_fetch_add(&vm->next_id, 1) + 1;
	return av;
}

/* Drop a reference; the last one frees it and drops the reference it held on its root. */
void put_anon_vma(struct anon_vma *av)
{
	if (atomic_fetch_sub(&av->refcount, 1) != 1)
		return;
	struct anon_vma *root = av->root;
	if (unlikely(!list_empty(&av->head)))
		bug("anon_vma %llu freed with chains left", (unsigned long long)av->id);
	destroy_rwsem(&av->rwsem);
	free(av);
	if (root != av)
		put_anon_vma(root);
}

static struct anon_vma_chain *anon_vma_chain_alloc(void)
{
	return calloc(1, sizeof(struct anon_vma_chain));
}

/* Caller holds the anon_vma's root lock for writing. */
static void anon_vma_chain_link(struct vm_area_struct *vma, struct anon_vma_chain *avc,
				struct anon_vma *anon_vma)
{
	avc->vma = vma;
	avc->anon_vma = anon_vma;
	list_add(&avc->same_vma, &vma->anon_vma_chain);
	list_add_tail(&avc->same_anon_vma, &anon_vma->head);
}

/*
 * A neighbour whose anon_vma this VMA may share (find_mergeable_anon_vma): adjacent, with
 * flags that differ only in access and soft-dirty bits, contiguous page offsets, and an
 * anon_vma that no fork has spread (a single chain).  Sharing lets the two VMAs merge later.
 */
static struct anon_vma *find_mergeable_anon_vma(struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;
	size_t i = vma_index(mm, vma->vm_start);
	const unsigned long ignore = VM_ACCESS_FLAGS | VM_SOFTDIRTY;
	struct vm_area_struct *cand[2] = {
		i + 1 < mm->nr_vmas ? mm->vmas[i + 1] : NULL,
		i > 0 ? mm->vmas[i - 1] : NULL,
	};
	for (int k = 0; k < 2; k++) {
		struct vm_area_struct *n = cand[k];
		if (!n || !n->anon_vma || n->vm_file)
			continue;
		bool adjacent = k == 0 ? n->vm_start == vma->vm_end : n->vm_end == vma->vm_start;
		struct vm_area_struct *lo = k == 0 ? vma : n, *hi = k == 0 ? n : vma;
		bool pgoff_ok = lo->vm_pgoff + ((lo->vm_end - lo->vm_start) >> PAGE_SHIFT) == hi->vm_pgoff;
		bool single = n->anon_vma_chain.next == n->anon_vma_chain.prev;
		if (adjacent && pgoff_ok && single && ((n->vm_flags ^ vma->vm_flags) & ~ignore) == 0)
			return n->anon_vma;
	}
	return NULL;
}

/*
 * anon_vma_prepare - make sure the VMA has an anon_vma before its first anonymous page is
 * mapped.  Called with mmap_lock held for reading (a fault); two threads may race, so the
 * pointer is set under page_table_lock.  Returns 0 or -ENOMEM with nothing changed.
 */
int anon_vma_prepare(struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;
	TRACE_SCOPE(mm->vm, NULL, "anon_vma_prepare");
	if (likely(__atomic_load_n(&vma->anon_vma, __ATOMIC_ACQUIRE))) {
		trace_note(mm->vm, "found", "the VMA has its anon_vma already",
			   TF_NUM("anon_vma", vma->anon_vma->id));
		return 0;
	}

	struct anon_vma_chain *avc = anon_vma_chain_alloc();
	if (!avc)
		return -ENOMEM;
	struct anon_vma *anon_vma = find_mergeable_anon_vma(vma), *allocated = NULL;
	if (tracing(mm->vm) && anon_vma)
		trace_note(mm->vm, "shared", "a neighbouring VMA's anon_vma can serve (find_mergeable_anon_vma)",
			   TF_NUM("anon_vma", anon_vma->id));
	if (!anon_vma) {
		anon_vma = allocated = anon_vma_alloc(mm->vm);
		if (!anon_vma) {
			free(avc);
			return -ENOMEM;
		}
		trace_note(mm->vm, "new", "the VMA's first anonymous page: a new anon_vma, its own root",
			   TF_NUM("anon_vma", anon_vma->id));
	}
	anon_vma_lock_write(anon_vma);
	spin_lock(&mm->page_table_lock);
	if (likely(!vma->anon_vma)) {
		anon_vma_chain_link(vma, avc, anon_vma);
		anon_vma->num_active_vmas++;
		if (allocated)
			anon_vma->num_children++; /* a new root is its own parent, as in Linux */
		else
			atomic_fetch_add(&anon_vma->refcount, 1); /* one reference per chain */
		__atomic_store_n(&vma->anon_vma, anon_vma, __ATOMIC_RELEASE);
		allocated = NULL;
		avc = NULL;
	}
	spin_unlock(&mm->page_table_lock);
	anon_vma_unlock_write(anon_vma);
	if (allocated)
		put_anon_vma(allocated);
	free(avc);
	return 0;
}

/*
 * anon_vma_clone - chain dst to every anon_vma src is chained to (split_vma, fork).  In fork
 * (dst->anon_vma NULL) an ancestor anon_vma with no VMA of its own and at most one child is
 * taken over instead of allocating a new one, which bounds the chain length over many forks.
 * Caller holds mmap_lock for writing.  Returns 0, or -ENOMEM with dst's chains undone.
 */
int anon_vma_clone(struct vm_area_struct *dst, struct vm_area_struct *src)
{
	struct anon_vma_chain *pavc;
	struct anon_vma *root = NULL;

	for (pavc = list_entry(src->anon_vma_chain.prev, struct anon_vma_chain, same_vma);
	     &pavc->same_vma != &src->anon_vma_chain;
	     pavc = list_entry(pavc->same_vma.prev, struct anon_vma_chain, same_vma)) {
		struct anon_vma_chain *avc = anon_vma_chain_alloc();
		if (!avc)
			goto enomem_failure;
		struct anon_vma *anon_vma = pavc->anon_vma;
		if (!root) {
			root = anon_vma->root;
			down_write(&root->rwsem);
		}
		anon_vma_chain_link(dst, avc, anon_vma);
		atomic_fetch_add(&anon_vma->refcount, 1);
		if (!dst->anon_vma && src->anon_vma && anon_vma->num_children < 2 &&
		    anon_vma->num_active_vmas == 0)
			dst->anon_vma = anon_vma;
	}
	if (dst->anon_vma)
		dst->anon_vma->num_active_vmas++;
	if (root)
		up_write(&root->rwsem);
	return 0;

enomem_failure:
	if (root)
		up_write(&root->rwsem);
	dst->anon_vma = NULL;
	unlink_anon_vmas(dst);
	return -ENOMEM;
}

/*
 * anon_vma_fork - give a child VMA the parent's chains and an anon_vma of its own.
 * Caller holds both mms' mmap_lock for writing.  Returns 0 or -ENOMEM with nothing left.
 */
int anon_vma_fork(struct vm_area_struct *vma, struct vm_area_struct *pvma)
{
	if (!pvma->anon_vma)
		return 0;
	struct cowvm *vm = vma->vm_mm->vm;
	TRACE_SCOPE(vm, NULL, "anon_vma_fork", TF_HEX("vma", pvma->vm_start), TF_NUM("parent anon_vma", pvma->anon_vma->id));
	vma->anon_vma = NULL;
	INIT_LIST_HEAD(&vma->anon_vma_chain);
	int err = anon_vma_clone(vma, pvma);
	if (err)
		return err;
	if (vma->anon_vma) { /* took over an idle ancestor */
		trace_note(vm, "reused", "an ancestor anon_vma with no VMA left serves the child (anon_vma_clone)",
			   TF_NUM("anon_vma", vma->anon_vma->id));
		return 0;
	}

	struct anon_vma *anon_vma = anon_vma_alloc(vma->vm_mm->vm);
	struct anon_vma_chain *avc = anon_vma_chain_alloc();
	if (!anon_vma || !avc) {
		free(avc);
		if (anon_vma)
			put_anon_vma(anon_vma);
		unlink_anon_vmas(vma);
		return -ENOMEM;
	}
	anon_vma->root = pvma->anon_vma->root;
	anon_vma->parent = pvma->anon_vma;
	atomic_fetch_add(&anon_vma->root->refcount, 1); /* held until this one is freed */
	vma->anon_vma = anon_vma;
	anon_vma_lock_write(anon_vma);
	anon_vma_chain_link(vma, avc, anon_vma);
	anon_vma->parent->num_children++;
	anon_vma->num_active_vmas++;
	anon_vma_unlock_write(anon_vma);
	trace_note(vm, "new", "the child VMA gets an anon_vma of its own, chained to the parent's",
		   TF_NUM("anon_vma", anon_vma->id), TF_NUM("root", anon_vma->root->id));
	return 0;
}

/*
 * unlink_anon_vmas - take a VMA off every anon_vma it is chained to; anon_vmas left with no
 * chain are freed.  Caller holds mmap_lock for writing (or is tearing down the mm).
 */
void unlink_anon_vmas(struct vm_area_struct *vma)
{
	struct anon_vma_chain *avc, *next;
	struct anon_vma *root = NULL;

	list_for_each_entry_safe(avc, next, &vma->anon_vma_chain, same_vma) {
		struct anon_vma *anon_vma = avc->anon_vma;
		if (!root) {
			root = anon_vma->root;
			down_write(&root->rwsem);
		}
		list_del(&avc->same_anon_vma);
		if (list_empty(&anon_vma->head)) {
			/* Left on our list, to be freed outside the lock below. */
			anon_vma->parent->num_children--;
			continue;
		}
		list_del(&avc->same_vma);
		put_anon_vma(anon_vma);
		free(avc);
	}
	if (vma->anon_vma) {
		vma->anon_vma->num_active_vmas--;
		vma->anon_vma = NULL;
	}
	if (root)
		up_write(&root->rwsem);
	/* Only empty anon_vmas remain on the list: drop the reference the chain held. */
	list_for_each_entry_safe(avc, next, &vma->anon_vma_chain, same_vma) {
		list_del(&avc->same_vma);
		put_anon_vma(avc->anon_vma);
		free(avc);
	}
}

/* ---- page state ----------------------------------------------------------------------------- */

/*
 * page_add_new_anon_rmap - a new anonymous page gets its first mapping.  Caller holds the
 * page-table lock and has not yet set the PTE; the page's one reference becomes the mapping's.
 */
void page_add_new_anon_rmap(struct page *page, struct vm_area_struct *vma, uint64_t address,
			    bool exclusive)
{
	struct anon_vma *anon_vma = vma->anon_vma;
	if (unlikely(!anon_vma || page_mapcount(page) != 0))
		bug("new anon page without anon_vma or already mapped");
	trace_call(vma->vm_mm->vm, "page_add_new_anon_rmap",
		   TF_FRAME("frame", page_to_pfn(vma->vm_mm->vm, page)), TF_HEX("address", address),
		   TF_NUM("anon_vma", anon_vma->id), TF_BOOL("anon-exclusive", exclusive));
	page->mapping = exclusive ? anon_vma : anon_vma->root;
	page->index = linear_page_index(vma, address);
	__SetPageFlag(page, PG_anon);
	if (exclusive)
		__SetPageFlag(page, PG_anon_exclusive);
	atomic_store_explicit(&page->_mapcount, 1, memory_order_relaxed);
	mod_node_page_state(vma->vm_mm->vm, NR_ANON_MAPPED, 1);
	mlock_vma_page(vma->vm_mm->vm, page, vma); /* mlock_new_folio, before the LRU add */
}

/* fork (and dput): one more PTE maps the page in vma.  Caller holds a new reference for it and
 * the PTL; a VM_LOCKED vma mlocks it. */
void page_dup_rmap(struct page *page, struct vm_area_struct *vma)
{
	page_mapcount_inc(page);
	mlock_vma_page(vma->vm_mm->vm, page, vma);
}

/*
 * folio_add_anon_rmap_pte - see mm.h.  A page read from swap is not anonymous until now: it gets
 * the VMA's anon_vma (its root unless exclusive) and index, as a new page does.  A page that was
 * anonymous keeps the anon_vma it names: every VMA with a swap PTE for it is chained to that one
 * (the page was mapped there, or in the fork parent it was copied from).  Flags are set
 * atomically: the page is visible in the swap cache and on the LRU.
 */
void folio_add_anon_rmap_pte(struct page *page, struct vm_area_struct *vma, uint64_t address,
			     bool exclusive)
{
	struct anon_vma *anon_vma = vma->anon_vma;
	if (!PageAnon(page)) {
		if (unlikely(!anon_vma || page_mapcount(page) != 0))
			bug("swapped-in page without anon_vma or already mapped");
		page->mapping = exclusive ? anon_vma : anon_vma->root;
		page->index = linear_page_index(vma, address);
		SetPageFlag(page, PG_anon);
	}
	if (exclusive)
		SetPageAnonExclusive(page);
	int old = atomic_fetch_add_explicit(&page->_mapcount, 1, memory_order_relaxed);
	if (old == 0)
		mod_node_page_state(vma->vm_mm->vm, NR_ANON_MAPPED, 1);
	mlock_vma_page(vma->vm_mm->vm, page, vma);
}

/* A shmem page gets one more mapping in vma (PTL held). */
void page_add_file_rmap(struct page *page, struct vm_area_struct *vma)
{
	page_mapcount_inc(page);
	mlock_vma_page(vma->vm_mm->vm, page, vma);
}

/*
 * page_remove_rmap - one PTE no longer maps the page.  Caller holds the page-table lock and has
 * cleared the PTE; it still holds that mapping's reference and drops it afterwards.
 */
void page_remove_rmap(struct cowvm *vm, struct page *page, struct vm_area_struct *vma)
{
	munlock_vma_page(vm, page, vma); /* munlock_vma_folio: one fewer locked mapping */
	int left = page_mapcount_dec(page);
	if (left == 0 && PageAnon(page))
		mod_node_page_state(vm, NR_ANON_MAPPED, -1);
}

/* Reuse at a write fault: the page becomes the VMA's own (folio_move_anon_rmap). */
void page_move_anon_rmap(struct page *page, struct vm_area_struct *vma)
{
	page->mapping = vma->anon_vma;
}

/* ---- rmap_walk ----------------------------------------------------------------------------- */

static bool vma_address(struct page *page, struct vm_area_struct *vma, uint64_t *addr)
{
	uint64_t pages = (vma->vm_end - vma->vm_start) >> PAGE_SHIFT;
	if (page->index < vma->vm_pgoff || page->index >= vma->vm_pgoff + pages)
		return false;
	*addr = vma->vm_start + ((page->index - vma->vm_pgoff) << PAGE_SHIFT);
	return true;
}

/*
 * rmap_walk - call fn for every VMA that may map the page, with the address it would map it
 * at.  fn checks the PTE itself (page_vma_mapped).  Takes the anon_vma root lock (or the shmem
 * i_mmap lock) for reading.  Returns what the last fn call returned.
 */
int rmap_walk(struct cowvm *vm, struct page *page, rmap_one_fn fn, void *arg)
{
	int ret = 0;
	uint64_t addr;
	(void)vm;

	if (PageAnon(page)) {
		struct anon_vma *anon_vma = page->mapping;
		if (!anon_vma || page_mapcount(page) == 0)
			return 0;
		anon_vma_lock_read(anon_vma);
		struct anon_vma_chain *avc;
		list_for_each_entry(avc, &anon_vma->head, same_anon_vma) {
			if (vma_address(page, avc->vma, &addr) && (ret = fn(page, avc->vma, addr, arg)))
				break;
		}
		anon_vma_unlock_read(anon_vma);
	} else if (PageShmem(page)) {
		struct shmem_inode *inode = page->mapping;
		down_read(&inode->i_mmap_rwsem);
		struct vm_area_struct *vma;
		list_for_each_entry(vma, &inode->i_mmap, shared) {
			if (vma_address(page, vma, &addr) && (ret = fn(page, vma, addr, arg)))
				break;
		}
		up_read(&inode->i_mmap_rwsem);
	}
	return ret;
}
