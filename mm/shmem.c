/*
 * shmem.c - shared anonymous memory (MAP_SHARED | MAP_ANONYMOUS).  Linux backs it with a
 * shmem file: a page cache indexed by page offset, so every process that maps it (after fork
 * too) finds the same page and no copy-on-write ever happens.  This keeps just that.
 *
 * Invariants: a cached page has PG_shmem, mapping = the inode, index = its offset, one
 * reference held by the cache plus one per PTE; nrpages counts the cached pages.  The inode
 * lives while a VMA uses it.
 */
#include "mm.h"

struct shmem_inode *shmem_create(struct cowvm *vm, uint64_t size_pages)
{
	struct shmem_inode *inode = calloc(1, sizeof(*inode));
	if (!inode)
		return NULL;
	inode->pages = calloc(size_pages, sizeof(struct page *));
	if (!inode->pages) {
		free(inode);
		return NULL;
	}
	spin_lock_init(&inode->lock);
	inode->size_pages = size_pages;
	init_rwsem(&inode->i_mmap_rwsem);
	INIT_LIST_HEAD(&inode->i_mmap);
	atomic_store(&inode->refcount, 1);
	inode->id = atomic_fetch_add(&vm->next_id, 1) + 1;
	return inode;
}

void shmem_get(struct shmem_inode *inode)
{
	atomic_fetch_add(&inode->refcount, 1);
}

/* Drop a VMA's reference; the last one frees the cached pages (no PTE maps them by then). */
void shmem_put(struct cowvm *vm, struct shmem_inode *inode)
{
	if (atomic_fetch_sub(&inode->refcount, 1) != 1)
		return;
	for (uint64_t i = 0; i < inode->size_pages; i++) {
		struct page *page = inode->pages[i];
		if (!page)
			continue;
		ClearPageFlag(page, PG_shmem);
		mod_node_page_state(vm, NR_SHMEM, -1);
		put_page(vm, page);
	}
	free(inode->pages);
	destroy_rwsem(&inode->i_mmap_rwsem);
	free(inode);
}

void shmem_link_vma(struct vm_area_struct *vma)
{
	down_write(&vma->vm_file->i_mmap_rwsem);
	list_add_tail(&vma->shared, &vma->vm_file->i_mmap);
	up_write(&vma->vm_file->i_mmap_rwsem);
}

/* Idempotent: munmap unlinks a VMA before it frees its page tables, remove_vma again later. */
void shmem_unlink_vma(struct vm_area_struct *vma)
{
	down_write(&vma->vm_file->i_mmap_rwsem);
	if (!list_empty(&vma->shared)) {
		list_del(&vma->shared);
		INIT_LIST_HEAD(&vma->shared);
	}
	up_write(&vma->vm_file->i_mmap_rwsem);
}

/*
 * shmem_punch_hole - MADV_REMOVE's fallocate(PUNCH_HOLE) over the object's offsets
 * [start, end): unmap them from every VMA that maps the object, in every process
 * (unmap_mapping_range), then drop the pages from the cache, so the next touch finds a new
 * zeroed page.  Caller holds its own mmap_lock for reading; this takes task_lock (which keeps
 * every mm's thread list still for the TLB flushes), then i_mmap_rwsem for reading, then each
 * mm's PTL.  A VMA still linked in i_mmap has its page tables: munmap and exit unlink it first.
 */
void shmem_punch_hole(struct cowvm *vm, struct shmem_inode *inode, uint64_t start, uint64_t end)
{
	if (end > inode->size_pages)
		end = inode->size_pages;
	if (start >= end)
		return;
	pthread_mutex_lock(&vm->task_lock);
	down_read(&inode->i_mmap_rwsem);
	struct vm_area_struct *vma;
	list_for_each_entry(vma, &inode->i_mmap, shared) {
		uint64_t vs = vma->vm_pgoff, ve = vs + ((vma->vm_end - vma->vm_start) >> PAGE_SHIFT);
		uint64_t s = start > vs ? start : vs, e = end < ve ? end : ve;
		if (s >= e)
			continue;
		struct mmu_gather tlb;
		tlb_gather_mmu(&tlb, vma->vm_mm);
		unmap_page_range(&tlb, vma, vma->vm_start + ((s - vs) << PAGE_SHIFT),
				 vma->vm_start + ((e - vs) << PAGE_SHIFT));
		tlb_finish_mmu(&tlb);
	}
	up_read(&inode->i_mmap_rwsem);
	pthread_mutex_unlock(&vm->task_lock);
	for (uint64_t idx = start; idx < end; idx++) {
		spin_lock(&inode->lock);
		struct page *page = inode->pages[idx];
		if (page) {
			inode->pages[idx] = NULL;
			inode->nrpages--;
		}
		spin_unlock(&inode->lock);
		if (!page)
			continue;
		ClearPageFlag(page, PG_shmem);
		mod_node_page_state(vm, NR_SHMEM, -1);
		put_page(vm, page); /* the cache's reference; a pin may still hold the page */
	}
}

/* The cached page at pgoff with a new reference, or NULL (filemap_map_pages' lookup). */
struct page *shmem_find_get_page(struct shmem_inode *inode, uint64_t pgoff)
{
	if (pgoff >= inode->size_pages)
		return NULL;
	spin_lock(&inode->lock);
	struct page *page = inode->pages[pgoff];
	if (page)
		get_page(page);
	spin_unlock(&inode->lock);
	return page;
}

/*
 * shmem_fault - find the page at the fault's offset, allocating a zeroed one on first use
 * (shmem_get_folio).  Returns 0 with a new reference in *pagep for the caller's mapping, or
 * VM_FAULT_OOM / VM_FAULT_SIGBUS (beyond the object).  Caller holds mmap_lock for reading.
 */
unsigned shmem_fault(struct vm_fault *vmf, struct page **pagep)
{
	struct shmem_inode *inode = vmf->vma->vm_file;
	struct cowvm *vm = vmf->vma->vm_mm->vm;

	trace_step(vmf, "shmem_fault");
	if (vmf->pgoff >= inode->size_pages)
		return VM_FAULT_SIGBUS;
	spin_lock(&inode->lock);
	struct page *page = inode->pages[vmf->pgoff];
	if (page) {
		get_page(page);
		spin_unlock(&inode->lock);
		*pagep = page;
		return 0;
	}
	spin_unlock(&inode->lock);

	struct page *new = alloc_zeroed_user_page(vm);
	if (!new)
		return VM_FAULT_OOM;
	if (mem_cgroup_charge(new, vmf->vma->vm_mm, MEMCG_CHARGE_SHMEM)) {
		put_page(vm, new);
		return VM_FAULT_OOM;
	}
	spin_lock(&inode->lock);
	page = inode->pages[vmf->pgoff];
	if (page) { /* another thread added it meanwhile */
		get_page(page);
		spin_unlock(&inode->lock);
		put_page(vm, new);
		*pagep = page;
		return 0;
	}
	new->mapping = inode;
	new->index = vmf->pgoff;
	SetPageFlag(new, PG_shmem); /* clean: a write fault or a dirty PTE makes it dirty */
	inode->pages[vmf->pgoff] = new;
	inode->nrpages++;
	get_page(new); /* the cache keeps the first reference, the caller gets this one */
	spin_unlock(&inode->lock);
	mod_node_page_state(vm, NR_SHMEM, 1);
	lru_cache_add_active(vm, new);
	*pagep = new;
	return 0;
}
