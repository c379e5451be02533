/*
 * swapfile.c - the swap device, as Linux's mm/swapfile.c: one swap_info_struct per machine over
 * a host file, slots handed out in clusters of SWAPFILE_CLUSTER, swap_map use counts with
 * SWAP_HAS_CACHE, swap_duplicate (fork), swap_free (swap-in), free_swap_and_cache (zap),
 * folio_free_swap (COW reuse, swap-in), page I/O with pread/pwrite, and swapoff.
 *
 * Invariants: see mm/swap.h.  si->lock guards swap_map, the clusters and the swap cache array;
 * it is taken under the PTL and the page lock, and nothing is freed or allocated under it.
 *
 * Slot counts stop at SWAP_MAP_MAX (62 swap PTEs for one slot): Linux then chains continuation
 * pages (add_swap_count_continuation); cowvm refuses the 63rd with -ENOMEM, which makes the fork
 * (or dput COPY) that needed it fail cleanly (docs/fidelity.md).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "swap.h"

/* ---- set-up ---------------------------------------------------------------------------------- */

static void cluster_list_add(struct swap_info_struct *si, uint64_t c, struct list_head *head)
{
	struct swap_cluster_info *ci = &si->cluster_info[c];
	if (ci->on_list)
		list_del(&ci->list);
	list_add_tail(&ci->list, head);
	ci->on_list = true;
}

static void cluster_list_del(struct swap_info_struct *si, uint64_t c)
{
	struct swap_cluster_info *ci = &si->cluster_info[c];
	if (ci->on_list) {
		list_del(&ci->list);
		ci->on_list = false;
	}
}

/* mkswap's header in slot 0: version 1, last page, and the "SWAPSPACE2" magic at its end. */
static int write_swap_header(int fd, uint64_t max)
{
	uint8_t *hdr = calloc(1, PAGE_SIZE);
	if (!hdr)
		return -ENOMEM;
	uint32_t version = 1, last_page = (uint32_t)(max - 1);
	memcpy(hdr + 1024, &version, 4);
	memcpy(hdr + 1028, &last_page, 4);
	memcpy(hdr + PAGE_SIZE - 10, "SWAPSPACE2", 10);
	ssize_t n = pwrite(fd, hdr, PAGE_SIZE, 0);
	free(hdr);
	return n == (ssize_t)PAGE_SIZE ? 0 : -EIO;
}

int swap_init(struct cowvm *vm, const char *path, uint64_t bytes)
{
	if (!bytes)
		bytes = 64ull << 20;
	if (!PAGE_ALIGNED(bytes) || bytes < 2 * PAGE_SIZE || bytes > (64ull << 30))
		return -EINVAL;
	struct swap_info_struct *si = calloc(1, sizeof(*si));
	if (!si)
		return -ENOMEM;
	int err = -ENOMEM;
	si->path = strdup(path);
	if (!si->path)
		goto free_si;
	si->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (si->fd >= 0) {
		si->created = true;
	} else if (errno == EEXIST) {
		si->fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (si->fd < 0) {
		err = -errno;
		goto free_path;
	}
	struct stat st;
	if (fstat(si->fd, &st) || !S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto close_fd;
	}
	if (ftruncate(si->fd, (off_t)bytes)) {
		err = -errno;
		goto close_fd;
	}
	si->max = bytes >> PAGE_SHIFT;
	if ((err = write_swap_header(si->fd, si->max)))
		goto close_fd;
	si->nr_clusters = (si->max + SWAPFILE_CLUSTER - 1) / SWAPFILE_CLUSTER;
	si->swap_map = calloc(si->max, 1);
	si->swap_cache = calloc(si->max, sizeof(struct page *));
	si->swap_cgroup = calloc(si->max, sizeof(struct mem_cgroup *));
	si->cluster_info = calloc(si->nr_clusters, sizeof(struct swap_cluster_info));
	err = -ENOMEM;
	if (!si->swap_map || !si->swap_cache || !si->swap_cgroup || !si->cluster_info)
		goto free_maps;
	spin_lock_init(&si->lock);
	INIT_LIST_HEAD(&si->free_clusters);
	INIT_LIST_HEAD(&si->nonfull_clusters);
	si->swap_map[0] = SWAP_MAP_BAD; /* the header */
	for (uint64_t c = 0; c < si->nr_clusters; c++) {
		struct swap_cluster_info *ci = &si->cluster_info[c];
		INIT_LIST_HEAD(&ci->list);
		/* slots past the end of a short last cluster count as used, so it is never "free" */
		uint64_t end = (c + 1) * SWAPFILE_CLUSTER;
		ci->count = (uint32_t)(end > si->max ? end - si->max : 0) + (c == 0);
		cluster_list_add(si, c, ci->count ? &si->nonfull_clusters : &si->free_clusters);
	}
	vm->swap = si;
	return 0;
free_maps:
	free(si->swap_map);
	free(si->swap_cache);
	free(si->swap_cgroup);
	free(si->cluster_info);
close_fd:
	close(si->fd);
	if (si->created)
		unlink(si->path);
free_path:
	free(si->path);
free_si:
	free(si);
	return err;
}

/* Close the device (unlinking a file cowvm created).  No swap PTE may be left; pages still in
 * the swap cache are let go (cowvm_destroy, after every task exited). */
void swap_exit(struct cowvm *vm)
{
	struct swap_info_struct *si = vm->swap;
	if (!si)
		return;
	for (uint64_t off = 1; off < si->max; off++) {
		struct page *page = si->swap_cache[off];
		if (!page)
			continue;
		if (!trylock_page(page))
			bug("swap-cache page of slot %llu locked at swap_exit", (unsigned long long)off);
		get_page(page);
		delete_from_swap_cache(vm, page);
		unlock_page(page);
		put_page(vm, page);
	}
	vm->swap = NULL;
	close(si->fd);
	if (si->created)
		unlink(si->path);
	free(si->path);
	free(si->swap_map);
	free(si->swap_cache);
	free(si->swap_cgroup);
	free(si->cluster_info);
	free(si);
}

/* ---- slots ----------------------------------------------------------------------------------- */

static struct swap_info_struct *swap_info_of(struct cowvm *vm, swp_entry_t entry)
{
	struct swap_info_struct *si = vm->swap;
	if (unlikely(!si || swp_type(entry) != 0 || swp_offset(entry) == 0 || swp_offset(entry) >= si->max))
		bug("bad swap entry %#llx", (unsigned long long)entry.val);
	return si;
}

/* A slot's map became 0: its swap charge goes back, the slot to its cluster.  si->lock held. */
static void swap_range_free(struct swap_info_struct *si, uint64_t offset)
{
	mem_cgroup_uncharge_swap(si, offset);
	uint64_t c = offset / SWAPFILE_CLUSTER;
	struct swap_cluster_info *ci = &si->cluster_info[c];
	bool was_full = ci->count == SWAPFILE_CLUSTER;
	ci->count--;
	si->inuse_pages--;
	if (si->have_cluster && si->cluster_next == c)
		return; /* the cluster being filled stays off the lists */
	if (ci->count == 0)
		cluster_list_add(si, c, &si->free_clusters);
	else if (was_full)
		cluster_list_add(si, c, &si->nonfull_clusters);
}

/*
 * get_swap_page (folio_alloc_swap -> cluster_alloc_swap_entry): the next free slot of the
 * cluster being filled; when it is full, a free cluster, else a partly used one (Linux 6.12's
 * order).  The slot gets SWAP_HAS_CACHE: the caller adds its page to the swap cache.
 */
swp_entry_t get_swap_page(struct cowvm *vm)
{
	struct swap_info_struct *si = vm->swap;
	swp_entry_t entry = { 0 };
	if (!si)
		return entry;
	spin_lock(&si->lock);
	for (int attempt = 0; attempt < 2 && !entry.val; attempt++) {
		if (!si->have_cluster) {
			struct list_head *from = !list_empty(&si->free_clusters) ? &si->free_clusters :
						 !list_empty(&si->nonfull_clusters) ? &si->nonfull_clusters : NULL;
			if (!from)
				break;
			struct swap_cluster_info *ci = list_first_entry(from, struct swap_cluster_info, list);
			si->cluster_next = (uint64_t)(ci - si->cluster_info);
			cluster_list_del(si, si->cluster_next);
			si->have_cluster = true;
		}
		uint64_t c = si->cluster_next;
		uint64_t first = c * SWAPFILE_CLUSTER, end = first + SWAPFILE_CLUSTER;
		if (end > si->max)
			end = si->max;
		for (uint64_t off = first; off < end; off++) {
			if (si->swap_map[off] == 0) {
				si->swap_map[off] = SWAP_HAS_CACHE;
				si->cluster_info[c].count++;
				si->inuse_pages++;
				entry = swp_entry(0, off);
				break;
			}
		}
		if (si->cluster_info[c].count == SWAPFILE_CLUSTER || !entry.val) {
			si->have_cluster = false; /* full: off every list until a slot frees */
			if (si->cluster_info[c].count < SWAPFILE_CLUSTER)
				cluster_list_add(si, c, &si->nonfull_clusters);
		}
	}
	spin_unlock(&si->lock);
	return entry;
}

/* One more swap PTE names the slot (fork's copy_nonpresent_pte, try_to_unmap). */
int swap_duplicate(struct cowvm *vm, swp_entry_t entry)
{
	struct swap_info_struct *si = swap_info_of(vm, entry);
	uint64_t off = swp_offset(entry);
	int ret = 0;
	spin_lock(&si->lock);
	unsigned char map = si->swap_map[off];
	if (unlikely(map == 0 || map == SWAP_MAP_BAD))
		bug("swap_duplicate of free slot %llu", (unsigned long long)off);
	if ((map & ~SWAP_HAS_CACHE) >= SWAP_MAP_MAX)
		ret = -ENOMEM; /* Linux: a count continuation page; cowvm: the limit */
	else
		si->swap_map[off] = map + 1;
	spin_unlock(&si->lock);
	return ret;
}

/* Drop `what` (1: one swap PTE; SWAP_HAS_CACHE: the cache's hold).  si->lock held.  Returns the
 * map left. */
static unsigned char swap_entry_put_locked(struct swap_info_struct *si, uint64_t off, unsigned char what)
{
	unsigned char map = si->swap_map[off];
	if (what == SWAP_HAS_CACHE) {
		if (unlikely(!(map & SWAP_HAS_CACHE)))
			bug("slot %llu has no swap-cache hold to drop", (unsigned long long)off);
		map &= ~SWAP_HAS_CACHE;
	} else {
		if (unlikely((map & ~SWAP_HAS_CACHE) == 0 || map == SWAP_MAP_BAD))
			bug("swap_free of slot %llu with no swap PTE count (map %#x)", (unsigned long long)off, map);
		map--;
	}
	si->swap_map[off] = map;
	if (map == 0)
		swap_range_free(si, off);
	return map;
}

void swap_free(struct cowvm *vm, swp_entry_t entry)
{
	struct swap_info_struct *si = swap_info_of(vm, entry);
	spin_lock(&si->lock);
	swap_entry_put_locked(si, swp_offset(entry), 1);
	spin_unlock(&si->lock);
}

void put_swap_folio(struct cowvm *vm, swp_entry_t entry)
{
	struct swap_info_struct *si = swap_info_of(vm, entry);
	spin_lock(&si->lock);
	swap_entry_put_locked(si, swp_offset(entry), SWAP_HAS_CACHE);
	spin_unlock(&si->lock);
}

/* A swap-in claims the slot for the page it is about to read (swapcache_prepare). */
int swapcache_prepare(struct cowvm *vm, swp_entry_t entry)
{
	struct swap_info_struct *si = swap_info_of(vm, entry);
	uint64_t off = swp_offset(entry);
	int ret = 0;
	spin_lock(&si->lock);
	unsigned char map = si->swap_map[off];
	if ((map & ~SWAP_HAS_CACHE) == 0)
		ret = -ENOENT; /* every swap PTE went meanwhile */
	else if (map & SWAP_HAS_CACHE)
		ret = -EEXIST;
	else
		si->swap_map[off] = map | SWAP_HAS_CACHE;
	spin_unlock(&si->lock);
	return ret;
}

int __swap_count(struct cowvm *vm, swp_entry_t entry)
{
	struct swap_info_struct *si = swap_info_of(vm, entry);
	spin_lock(&si->lock);
	int n = si->swap_map[swp_offset(entry)] & ~SWAP_HAS_CACHE;
	spin_unlock(&si->lock);
	return n;
}

/* vm_swap_full: more than half the slots used (mem_cgroup_swap_full without memcg). */
bool vm_swap_full(struct cowvm *vm)
{
	struct swap_info_struct *si = vm->swap;
	return si && si->inuse_pages * 2 > si->max - 1;
}

/*
 * folio_free_swap - the page leaves the swap cache if no swap PTE names its slot any more: it
 * becomes an ordinary dirty anon page (its only copy is in memory).  Page locked.  Returns true
 * when it was freed from the cache.  The cache's reference is dropped; the caller holds another.
 */
bool folio_free_swap(struct cowvm *vm, struct page *page)
{
	if (!PageSwapCache(page))
		return false;
	if (__swap_count(vm, page_swap_entry(page)) > 0)
		return false;
	delete_from_swap_cache(vm, page);
	SetPageDirty(page);
	return true;
}

/*
 * free_swap_cache - after the page's last mapping went (mmu_gather's free_pages_and_swap_cache):
 * if it is in the swap cache and nothing names the slot, let it go too.  Caller holds a reference.
 */
void free_swap_cache(struct cowvm *vm, struct page *page)
{
	if (!PageSwapCache(page) || page_mapcount(page) != 0 || !trylock_page(page))
		return;
	folio_free_swap(vm, page);
	unlock_page(page);
}

/*
 * free_swap_and_cache - a swap PTE was zapped: drop its count; when only the cache's hold is
 * left and the page is mapped nowhere, take it out of the cache (__try_to_reclaim_swap with
 * TTRS_UNMAPPED | TTRS_FULL; a page locked by someone else stays for reclaim to find).  Called
 * with the PTL held.
 */
void free_swap_and_cache(struct cowvm *vm, swp_entry_t entry)
{
	struct swap_info_struct *si = swap_info_of(vm, entry);
	uint64_t off = swp_offset(entry);
	struct page *page = NULL;
	spin_lock(&si->lock);
	unsigned char left = swap_entry_put_locked(si, off, 1);
	if (left == SWAP_HAS_CACHE && (page = si->swap_cache[off]))
		get_page(page);
	spin_unlock(&si->lock);
	if (!page)
		return;
	if (trylock_page(page)) {
		if (PageSwapCache(page) && page->private == entry.val &&
		    (page_mapcount(page) == 0 || vm_swap_full(vm)))
			folio_free_swap(vm, page);
		unlock_page(page);
	}
	put_page(vm, page);
}

/* ---- page I/O (swap_writepage, swap_read_folio) ---------------------------------------------- */

/* Does the injected fault hit this I/O?  kinds: the fault kinds of this direction. */
static int swap_io_fault(struct swap_info_struct *si, int kind_a, int kind_b)
{
	int what = atomic_load(&si->fault.what);
	if (what != kind_a && what != kind_b)
		return 0;
	if (atomic_fetch_sub(&si->fault.n, 1) != 1)
		return 0;
	atomic_store(&si->fault.what, COWVM_SWAP_FAIL_OFF);
	return what;
}

/*
 * swap_writepage - write the page to its slot.  0, or -ENOSPC / -EIO (a short write is an I/O
 * error, as a bio that did not complete).  Page locked, in the swap cache.
 */
int swap_writepage(struct cowvm *vm, struct page *page)
{
	struct swap_info_struct *si = vm->swap;
	off_t pos = (off_t)(swp_offset(page_swap_entry(page)) << PAGE_SHIFT);
	size_t len = PAGE_SIZE;
	int fault = swap_io_fault(si, COWVM_SWAP_FAIL_SHORT_WRITE, COWVM_SWAP_FAIL_ENOSPC);
	if (fault == COWVM_SWAP_FAIL_ENOSPC)
		return -ENOSPC;
	if (fault == COWVM_SWAP_FAIL_SHORT_WRITE)
		len = PAGE_SIZE / 2;
	ssize_t n = pwrite(si->fd, page_address(vm, page), len, pos);
	if (n < 0)
		return errno == ENOSPC ? -ENOSPC : -EIO;
	if ((size_t)n != PAGE_SIZE)
		return -EIO;
	count_vm_event(vm, PSWPOUT);
	return 0;
}

int swap_read_folio(struct cowvm *vm, struct page *page, swp_entry_t entry)
{
	struct swap_info_struct *si = vm->swap;
	off_t pos = (off_t)(swp_offset(entry) << PAGE_SHIFT);
	size_t len = PAGE_SIZE;
	int fault = swap_io_fault(si, COWVM_SWAP_FAIL_SHORT_READ, COWVM_SWAP_FAIL_EIO_READ);
	if (fault == COWVM_SWAP_FAIL_EIO_READ)
		return -EIO;
	if (fault == COWVM_SWAP_FAIL_SHORT_READ)
		len = PAGE_SIZE / 2;
	ssize_t n = pread(si->fd, page_address(vm, page), len, pos);
	if (n != (ssize_t)PAGE_SIZE)
		return -EIO;
	count_vm_event(vm, PSWPIN);
	return 0;
}

/* ---- the public calls ------------------------------------------------------------------------ */

int cowvm_swap_info(cowvm_t *vm, struct cowvm_swap_info *out)
{
	if (!vm || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	struct swap_info_struct *si = vm->swap;
	if (!si)
		return 0;
	spin_lock(&si->lock);
	out->enabled = 1;
	out->total_slots = si->max - 1;
	out->used_slots = si->inuse_pages;
	spin_unlock(&si->lock);
	out->swap_cache_pages = (uint64_t)global_node_page_state(vm, NR_SWAPCACHE);
	return 0;
}

int cowvm_fail_swap_io(cowvm_t *vm, int what, uint64_t n)
{
	if (!vm || !vm->swap || what < COWVM_SWAP_FAIL_OFF || what > COWVM_SWAP_FAIL_EIO_READ ||
	    (what != COWVM_SWAP_FAIL_OFF && n == 0))
		return -EINVAL;
	atomic_store(&vm->swap->fault.n, n);
	atomic_store(&vm->swap->fault.what, what);
	return 0;
}

static int try_to_unuse(struct cowvm *vm, struct swap_info_struct *si);

/*
 * swapoff (try_to_unuse): bring every swap PTE's page back into every mm (swapin_range maps
 * it as unuse_pte does), then empty the swap cache and close the device.
 */
int cowvm_swapoff(cowvm_t *vm)
{
	if (!vm || !vm->swap)
		return -EINVAL;
	struct swap_info_struct *si = vm->swap;
	int err = 0;
	kswapd_pause(vm);
	err = try_to_unuse(vm, si);
	kswapd_resume(vm);
	if (err)
		return err;
	kswapd_stop(vm); /* nothing left to reclaim anonymous memory to */
	swap_exit(vm);
	return 0;
}

/* try_to_unuse: every swap PTE of every mm back in memory, then the swap cache emptied. */
static int try_to_unuse(struct cowvm *vm, struct swap_info_struct *si)
{
	int err = 0;
	pthread_mutex_lock(&vm->task_lock);
	size_t nmms = 0;
	struct mm_struct *mm;
	list_for_each_entry(mm, &vm->mms, mmlist)
		nmms++;
	struct mm_struct **mms = calloc(nmms ? nmms : 1, sizeof(*mms));
	nmms = 0;
	if (mms)
		list_for_each_entry(mm, &vm->mms, mmlist)
			mms[nmms++] = mm;
	pthread_mutex_unlock(&vm->task_lock);
	if (!mms)
		return -ENOMEM;
	for (size_t i = 0; i < nmms && !err; i++) {
		down_read(&mms[i]->mmap_lock);
		err = swapin_range(mms[i], 0, TASK_SIZE_MAX);
		up_read(&mms[i]->mmap_lock);
	}
	free(mms);
	if (err)
		return err;
	/* Every swap PTE is gone: only swap-cache holds are left. */
	for (uint64_t off = 1; off < si->max; off++) {
		spin_lock(&si->lock);
		struct page *page = si->swap_cache[off];
		if (page)
			get_page(page);
		spin_unlock(&si->lock);
		if (!page)
			continue;
		lock_page(page);
		if (!folio_free_swap(vm, page))
			err = -EBUSY;
		unlock_page(page);
		put_page(vm, page);
	}
	if (!err && si->inuse_pages)
		err = -EBUSY;
	return err;
}
