/*
 * task_mmu.c - what /proc/<pid>/{pagemap,smaps,maps,status} and /proc/vmstat show, with
 * Linux's rules (fs/proc/task_mmu.c): the zero page is present in pagemap but counts nowhere
 * else; a page with refcount 1 is private with full Pss; otherwise mapcount >= 2 makes it
 * shared with Pss divided by the mapcount.
 */
#include <stdarg.h>
#include <stdio.h>

#include "swap.h"

/* Run fn on each VMA of t's process; the mm's mmap_lock is held for reading meanwhile. */
static struct vm_area_struct *vma_at(struct mm_struct *mm, uint64_t addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);
	return vma && vma->vm_start <= addr ? vma : NULL;
}

static uint64_t pte_to_pagemap_entry(struct mm_struct *mm, struct vm_area_struct *vma,
				     uint64_t addr, pte_t pte)
{
	uint64_t flags = 0;
	if (vma->vm_flags & VM_SOFTDIRTY)
		flags |= COWVM_PM_SOFT_DIRTY;
	if (is_swap_pte(pte)) { /* PM_SWAP; the frame field is type | offset << MAX_SWAPFILES_SHIFT */
		swp_entry_t entry = pte_to_swp_entry(pte);
		flags |= COWVM_PM_SWAP |
			 ((swp_type(entry) | (swp_offset(entry) << MAX_SWAPFILES_SHIFT)) & COWVM_PM_PFN_MASK);
		if (pte_swp_soft_dirty(pte))
			flags |= COWVM_PM_SOFT_DIRTY;
		if (mm->vm->flags & COWVM_CONFIG_NO_SOFT_DIRTY)
			flags &= ~COWVM_PM_SOFT_DIRTY;
		return flags;
	}
	if (!pte_present(pte))
		return flags;
	flags |= COWVM_PM_PRESENT | (pte_pfn(pte) & COWVM_PM_PFN_MASK);
	if (pte_soft_dirty(pte))
		flags |= COWVM_PM_SOFT_DIRTY;
	struct page *page = vm_normal_page(vma, addr, pte);
	if (page) {
		if (!PageAnon(page))
			flags |= COWVM_PM_FILE;
		if (page_mapcount(page) == 1)
			flags |= COWVM_PM_MMAP_EXCLUSIVE;
	}
	if (mm->vm->flags & COWVM_CONFIG_NO_SOFT_DIRTY)
		flags &= ~COWVM_PM_SOFT_DIRTY;
	return flags;
}

uint64_t cowvm_pagemap(cowvm_task_t *t, uint64_t addr)
{
	if (!t)
		return 0;
	struct mm_struct *mm = t->mm;
	uint64_t word = 0;
	down_read(&mm->mmap_lock);
	struct vm_area_struct *vma = vma_at(mm, addr);
	if (vma) {
		pte_t *ptep = pte_offset_map(mm, addr & PAGE_MASK);
		word = pte_to_pagemap_entry(mm, vma, addr, ptep ? ptep_get(ptep) : 0);
	}
	up_read(&mm->mmap_lock);
	return word;
}

/*
 * cowvm_pagemap_range - what reading n words of /proc/pid/pagemap at addr gives: one pass with
 * mmap_lock held for reading, one table walk per 2 MiB rather than per page.
 */
int cowvm_pagemap_range(cowvm_task_t *t, uint64_t addr, size_t n, uint64_t *words)
{
	if (!t || (n && !words))
		return -EINVAL;
	addr &= PAGE_MASK;
	if (n > (TASK_SIZE_MAX >> PAGE_SHIFT) || addr > TASK_SIZE_MAX - ((uint64_t)n << PAGE_SHIFT))
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	down_read(&mm->mmap_lock);
	size_t i = 0;
	while (i < n) {
		uint64_t a = addr + ((uint64_t)i << PAGE_SHIFT);
		struct vm_area_struct *vma = find_vma(mm, a);
		uint64_t stop = vma ? (vma->vm_start > a ? vma->vm_start : vma->vm_end) : UINT64_MAX;
		size_t upto = (stop - addr) >> PAGE_SHIFT; /* pages before the next VMA edge */
		if (upto > n || stop == UINT64_MAX)
			upto = n;
		if (!vma || vma->vm_start > a) { /* a hole: zeros up to the next VMA */
			memset(&words[i], 0, (upto - i) * sizeof(*words));
			i = upto;
			continue;
		}
		while (i < upto) { /* one PTE table at a time */
			a = addr + ((uint64_t)i << PAGE_SHIFT);
			pte_t *ptep = pte_offset_map(mm, a);
			size_t in_table = PTRS_PER_TABLE - pte_index(a), k;
			if (in_table > upto - i)
				in_table = upto - i;
			for (k = 0; k < in_table; k++)
				words[i + k] = pte_to_pagemap_entry(mm, vma, a + (k << PAGE_SHIFT),
								    ptep ? ptep_get(&ptep[k]) : 0);
			i += k;
		}
	}
	up_read(&mm->mmap_lock);
	return 0;
}

uint64_t cowvm_pte(cowvm_task_t *t, uint64_t addr)
{
	if (!t)
		return 0;
	down_read(&t->mm->mmap_lock);
	pte_t *ptep = pte_offset_map(t->mm, addr & PAGE_MASK);
	pte_t pte = ptep ? ptep_get(ptep) : 0;
	up_read(&t->mm->mmap_lock);
	return pte;
}

/*
 * The smaps counters of one or more VMAs.  Pss sums are kept shifted by PSS_SHIFT (12) as
 * Linux keeps them, so that shares of a page add up exactly before the final shift.
 */
#define PSS_SHIFT 12
struct mem_size_stats {
	uint64_t resident, shared_clean, shared_dirty, private_clean, private_dirty;
	uint64_t referenced, anonymous, lazyfree, swap;
	uint64_t swap_pss; /* << PSS_SHIFT */
	uint64_t pss, pss_dirty, pss_anon, pss_file, pss_shmem, pss_locked; /* << PSS_SHIFT */
};

/* smaps_account + smaps_page_accumulate for one present PTE of vma. */
static void smaps_pte_entry(struct mem_size_stats *mss, struct vm_area_struct *vma, struct page *page,
			    pte_t pte)
{
	const uint64_t size = PAGE_SIZE;
	bool dirty = pte_dirty(pte) || PageDirty(page);
	if (PageAnon(page)) {
		mss->anonymous += size;
		if (!dirty && !PageSwapCache(page))
			mss->lazyfree += size; /* clean anonymous memory: MADV_FREE made it so (a clean
						* swap-cache page is a copy of its slot, not lazy-free) */
	}
	mss->resident += size;
	if (pte_young(pte) || PageFlag(page, PG_referenced))
		mss->referenced += size;
	int mapcount = page_mapcount(page);
	bool private = page_ref_count(page) == 1 || mapcount < 2;
	uint64_t pss = private ? size << PSS_SHIFT : (size << PSS_SHIFT) / (uint64_t)mapcount;
	mss->pss += pss;
	if (PageAnon(page))
		mss->pss_anon += pss;
	else
		mss->pss_shmem += pss;
	if (vma->vm_flags & VM_LOCKED)
		mss->pss_locked += pss;
	if (dirty) {
		mss->pss_dirty += pss;
		if (private)
			mss->private_dirty += size;
		else
			mss->shared_dirty += size;
	} else {
		if (private)
			mss->private_clean += size;
		else
			mss->shared_clean += size;
	}
}

struct smaps_arg {
	struct vm_area_struct *vma;
	struct mem_size_stats *mss;
};

/* A swap PTE: Swap, and SwapPss shared among the swap PTEs that name the slot (swp_swapcount). */
static void smaps_swap_entry(struct mem_size_stats *mss, struct cowvm *vm, pte_t pte)
{
	int count = __swap_count(vm, pte_to_swp_entry(pte));
	mss->swap += PAGE_SIZE;
	mss->swap_pss += count >= 2 ? (PAGE_SIZE << PSS_SHIFT) / (uint64_t)count : PAGE_SIZE << PSS_SHIFT;
}

static int smaps_pte_range(pte_t *ptep, uint64_t addr, void *varg)
{
	struct smaps_arg *a = varg;
	pte_t pte = ptep_get(ptep);
	if (is_swap_pte(pte)) {
		smaps_swap_entry(a->mss, a->vma->vm_mm->vm, pte);
		return 0;
	}
	struct page *page = pte_present(pte) ? vm_normal_page(a->vma, addr, pte) : NULL;
	if (page)
		smaps_pte_entry(a->mss, a->vma, page, pte);
	return 0;
}

/* smap_gather: add vma's pages to mss.  mmap_lock held for reading. */
static void smap_gather(struct vm_area_struct *vma, struct mem_size_stats *mss)
{
	struct smaps_arg a = { vma, mss };
	walk_page_range(vma->vm_mm, vma->vm_start, vma->vm_end, smaps_pte_range, &a);
}

int cowvm_smaps(cowvm_task_t *t, uint64_t addr, uint64_t len, struct cowvm_smaps *out)
{
	if (!t || !out)
		return -EINVAL;
	bool rollup = addr == 0 && len == 0;
	if (!rollup && (len == 0 || addr + len < addr))
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	memset(out, 0, sizeof(*out));
	struct mem_size_stats mss = { 0 };
	down_read(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		if (!rollup && (vma->vm_end <= addr || vma->vm_start >= addr + len))
			continue;
		out->size += vma->vm_end - vma->vm_start;
		smap_gather(vma, &mss);
	}
	up_read(&mm->mmap_lock);
	out->rss = mss.resident;
	out->pss = mss.pss >> PSS_SHIFT;
	out->shared_clean = mss.shared_clean;
	out->shared_dirty = mss.shared_dirty;
	out->private_clean = mss.private_clean;
	out->private_dirty = mss.private_dirty;
	out->referenced = mss.referenced;
	out->anonymous = mss.anonymous;
	out->swap = mss.swap;
	out->swap_pss = mss.swap_pss >> PSS_SHIFT;
	out->locked = mss.pss_locked >> PSS_SHIFT;
	out->pss_dirty = mss.pss_dirty >> PSS_SHIFT;
	out->pss_anon = mss.pss_anon >> PSS_SHIFT;
	out->pss_file = mss.pss_file >> PSS_SHIFT;
	out->pss_shmem = mss.pss_shmem >> PSS_SHIFT;
	return 0;
}

/* ---- /proc text -------------------------------------------------------------------------- */

/* A bounded text buffer that counts what it could not hold (snprintf's contract). */
struct sbuf {
	char *buf;
	size_t size, len;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = sb->len < sb->size ? sb->size - sb->len : 0;
	int n = vsnprintf(room ? sb->buf + sb->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb->len += (size_t)n;
}

static void sb_pad(struct sbuf *sb, size_t line_start, size_t width)
{
	while (sb->len - line_start < width)
		sb_printf(sb, " ");
}

static int64_t sb_finish(struct sbuf *sb)
{
	if (sb->size)
		sb->buf[sb->len < sb->size ? sb->len : sb->size - 1] = 0;
	return (int64_t)sb->len;
}

/* SEQ_PUT_DEC: a 16-column name, an 8-column number of kB */
static void put_kb(struct sbuf *sb, const char *name, uint64_t bytes)
{
	sb_printf(sb, "%-16s%8llu kB\n", name, (unsigned long long)(bytes >> 10));
}

/* The VmFlags mnemonics of fs/proc/task_mmu.c, by bit. */
static const char *const vmflag_names[64] = {
	[0] = "rd", [1] = "wr", [2] = "ex", [3] = "sh", [4] = "mr", [5] = "mw", [6] = "me",
	[7] = "ms", [8] = "gd", [10] = "pf", [13] = "lo", [14] = "io", [15] = "sr", [16] = "rr",
	[17] = "dc", [18] = "de", [19] = "lf", [20] = "ac", [21] = "nr", [22] = "ht", [23] = "sf",
	[25] = "wf", [26] = "dd", [27] = "sd", [28] = "mm", [29] = "hg", [30] = "nh", [31] = "mg",
};

/* The flags as /proc shows them: without VM_SOFTDIRTY in a kernel built without soft-dirty. */
static unsigned long shown_vm_flags(struct cowvm *vm, unsigned long flags)
{
	return (vm->flags & COWVM_CONFIG_NO_SOFT_DIRTY) ? flags & ~VM_SOFTDIRTY : flags;
}

static bool vma_is_initial_heap(const struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;
	return !vma->vm_file && vma->vm_start <= mm->brk && vma->vm_end >= mm->start_brk &&
	       mm->brk > mm->start_brk;
}

/* show_map_vma: the maps line of a VMA (show_vma_header_prefix, padded name). */
static void show_map_vma(struct sbuf *sb, struct vm_area_struct *vma)
{
	unsigned long f = vma->vm_flags;
	size_t start = sb->len;
	uint64_t pgoff = vma->vm_file ? vma->vm_pgoff << PAGE_SHIFT : 0;
	unsigned dev_minor = vma->vm_file ? 1 : 0;
	unsigned long long ino = vma->vm_file ? (unsigned long long)vma->vm_file->id : 0;
	sb_printf(sb, "%08llx-%08llx %c%c%c%c %08llx %02x:%02x %llu ",
		  (unsigned long long)vma->vm_start, (unsigned long long)vma->vm_end,
		  (f & VM_READ) ? 'r' : '-', (f & VM_WRITE) ? 'w' : '-', (f & VM_EXEC) ? 'x' : '-',
		  (f & VM_MAYSHARE) ? 's' : 'p', (unsigned long long)pgoff, 0u, dev_minor, ino);
	const char *name = vma->vm_file ? "/dev/zero (deleted)" : vma_is_initial_heap(vma) ? "[heap]" : NULL;
	if (name) {
		sb_pad(sb, start, 25 + sizeof(void *) * 6 - 1);
		sb_printf(sb, " %s", name);
	}
	sb_printf(sb, "\n");
}

static void show_smap_fields(struct sbuf *sb, const struct mem_size_stats *mss, bool rollup)
{
	put_kb(sb, "Rss:", mss->resident);
	put_kb(sb, "Pss:", mss->pss >> PSS_SHIFT);
	put_kb(sb, "Pss_Dirty:", mss->pss_dirty >> PSS_SHIFT);
	if (rollup) {
		put_kb(sb, "Pss_Anon:", mss->pss_anon >> PSS_SHIFT);
		put_kb(sb, "Pss_File:", mss->pss_file >> PSS_SHIFT);
		put_kb(sb, "Pss_Shmem:", mss->pss_shmem >> PSS_SHIFT);
	}
	put_kb(sb, "Shared_Clean:", mss->shared_clean);
	put_kb(sb, "Shared_Dirty:", mss->shared_dirty);
	put_kb(sb, "Private_Clean:", mss->private_clean);
	put_kb(sb, "Private_Dirty:", mss->private_dirty);
	put_kb(sb, "Referenced:", mss->referenced);
	put_kb(sb, "Anonymous:", mss->anonymous);
	put_kb(sb, "KSM:", 0);
	put_kb(sb, "LazyFree:", mss->lazyfree);
	put_kb(sb, "AnonHugePages:", 0);
	put_kb(sb, "ShmemPmdMapped:", 0);
	put_kb(sb, "FilePmdMapped:", 0);
	put_kb(sb, "Shared_Hugetlb:", 0);
	put_kb(sb, "Private_Hugetlb:", 0);
	put_kb(sb, "Swap:", mss->swap);
	put_kb(sb, "SwapPss:", mss->swap_pss >> PSS_SHIFT);
	put_kb(sb, "Locked:", mss->pss_locked >> PSS_SHIFT);
}

int64_t cowvm_proc_maps(cowvm_task_t *t, char *buf, size_t size)
{
	if (!t || (size && !buf))
		return -EINVAL;
	struct sbuf sb = { buf, size, 0 };
	struct mm_struct *mm = t->mm;
	down_read(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas; i++)
		show_map_vma(&sb, mm->vmas[i]);
	up_read(&mm->mmap_lock);
	return sb_finish(&sb);
}

int64_t cowvm_proc_smaps(cowvm_task_t *t, char *buf, size_t size)
{
	if (!t || (size && !buf))
		return -EINVAL;
	struct sbuf sb = { buf, size, 0 };
	struct mm_struct *mm = t->mm;
	down_read(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		struct mem_size_stats mss = { 0 };
		smap_gather(vma, &mss);
		show_map_vma(&sb, vma);
		put_kb(&sb, "Size:", vma->vm_end - vma->vm_start);
		put_kb(&sb, "KernelPageSize:", PAGE_SIZE);
		put_kb(&sb, "MMUPageSize:", PAGE_SIZE);
		show_smap_fields(&sb, &mss, false);
		sb_printf(&sb, "%-16s%8d\n", "THPeligible:", thp_vma_allowable(vma, vma->vm_flags, false) ? 1 : 0);
		sb_printf(&sb, "%-16s%8d\n", "ProtectionKey:", 0);
		sb_printf(&sb, "VmFlags: ");
		unsigned long f = shown_vm_flags(mm->vm, vma->vm_flags);
		for (int bit = 0; bit < 64; bit++)
			if ((f & (1ul << bit)) && vmflag_names[bit])
				sb_printf(&sb, "%s ", vmflag_names[bit]);
		sb_printf(&sb, "\n");
	}
	up_read(&mm->mmap_lock);
	return sb_finish(&sb);
}

int64_t cowvm_proc_smaps_rollup(cowvm_task_t *t, char *buf, size_t size)
{
	if (!t || (size && !buf))
		return -EINVAL;
	struct sbuf sb = { buf, size, 0 };
	struct mm_struct *mm = t->mm;
	struct mem_size_stats mss = { 0 };
	down_read(&mm->mmap_lock);
	uint64_t first = mm->nr_vmas ? mm->vmas[0]->vm_start : 0;
	uint64_t last = mm->nr_vmas ? mm->vmas[mm->nr_vmas - 1]->vm_end : 0;
	for (size_t i = 0; i < mm->nr_vmas; i++)
		smap_gather(mm->vmas[i], &mss);
	up_read(&mm->mmap_lock);
	size_t start = sb.len;
	sb_printf(&sb, "%08llx-%08llx ---p %08llx %02x:%02x %llu ", (unsigned long long)first,
		  (unsigned long long)last, 0ull, 0u, 0u, 0ull);
	sb_pad(&sb, start, 25 + sizeof(void *) * 6 - 1);
	sb_printf(&sb, " [rollup]\n");
	show_smap_fields(&sb, &mss, true);
	return sb_finish(&sb);
}

/*
 * task_mem: the memory lines of /proc/PID/status.  data/stack/exec pages are counted from the
 * VMAs (Linux keeps them as counters with the same rules: data = private writable not stack,
 * stack = VM_GROWSDOWN, exec = executable not writable not stack); cowvm maps no program text,
 * so VmExe is 0 and VmLib is all executable memory.  VmPTE counts the PTE, PMD and PUD tables
 * (mm_pgtables_bytes: the PGD is not counted).  VmPin is pinned_vm, which pin_user_pages does
 * not charge.
 */
int64_t cowvm_proc_status(cowvm_task_t *t, char *buf, size_t size)
{
	if (!t || (size && !buf))
		return -EINVAL;
	struct sbuf sb = { buf, size, 0 };
	struct mm_struct *mm = t->mm;
	down_read(&mm->mmap_lock);
	uint64_t data = 0, stack = 0, exec = 0;
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		unsigned long f = mm->vmas[i]->vm_flags;
		uint64_t pages = (mm->vmas[i]->vm_end - mm->vmas[i]->vm_start) >> PAGE_SHIFT;
		if ((f & (VM_WRITE | VM_SHARED | VM_STACK)) == VM_WRITE)
			data += pages;
		if ((f & VM_STACK) == VM_STACK)
			stack += pages;
		if ((f & (VM_EXEC | VM_WRITE | VM_STACK)) == VM_EXEC)
			exec += pages;
	}
	uint64_t anon = (uint64_t)get_mm_counter(mm, MM_ANONPAGES);
	uint64_t file = (uint64_t)get_mm_counter(mm, MM_FILEPAGES);
	uint64_t shmem = (uint64_t)get_mm_counter(mm, MM_SHMEMPAGES);
	uint64_t rss = anon + file + shmem;
	uint64_t hiwater_vm = mm->hiwater_vm > mm->total_vm ? mm->hiwater_vm : mm->total_vm;
	uint64_t hiwater_rss = mm->hiwater_rss > rss ? mm->hiwater_rss : rss;
	uint64_t ptes = (uint64_t)atomic_load(&mm->pgtables_pages);
	ptes = ptes ? ptes - 1 : 0;
	const struct { const char *name; uint64_t pages; } lines[] = {
		{ "VmPeak:", hiwater_vm }, { "VmSize:", mm->total_vm }, { "VmLck:", mm->locked_vm },
		{ "VmPin:", 0 }, { "VmHWM:", hiwater_rss }, { "VmRSS:", rss }, { "RssAnon:", anon },
		{ "RssFile:", file }, { "RssShmem:", shmem }, { "VmData:", data }, { "VmStk:", stack },
		{ "VmExe:", 0 }, { "VmLib:", exec }, { "VmPTE:", ptes },
		{ "VmSwap:", (uint64_t)get_mm_counter(mm, MM_SWAPENTS) }, { "HugetlbPages:", 0 },
	};
	up_read(&mm->mmap_lock);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		sb_printf(&sb, "%s\t%8llu kB\n", lines[i].name,
			  (unsigned long long)(lines[i].pages << (PAGE_SHIFT - 10)));
	return sb_finish(&sb);
}

int cowvm_for_each_vma(cowvm_task_t *t, cowvm_vma_fn fn, void *arg)
{
	if (!t || !fn)
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	int ret = 0;
	down_read(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas && !ret; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		struct cowvm_vma_info info = {
			.start = vma->vm_start,
			.end = vma->vm_end,
			.pgoff = vma->vm_pgoff,
			.prot = ((vma->vm_flags & VM_READ) ? PROT_READ : 0) |
				((vma->vm_flags & VM_WRITE) ? PROT_WRITE : 0) |
				((vma->vm_flags & VM_EXEC) ? PROT_EXEC : 0),
			.shared = !!(vma->vm_flags & VM_SHARED),
			.flags = shown_vm_flags(mm->vm, vma->vm_flags),
			.anon_vma = vma->anon_vma ? vma->anon_vma->id : 0,
		};
		ret = fn(arg, &info);
	}
	up_read(&mm->mmap_lock);
	return ret < 0 ? ret : 0;
}

int cowvm_task_stats(cowvm_task_t *t, struct cowvm_task_stats *out)
{
	if (!t || !out)
		return -EINVAL;
	struct mm_struct *mm = t->mm;
	memset(out, 0, sizeof(*out));
	out->min_flt = atomic_load(&t->min_flt);
	out->maj_flt = atomic_load(&t->maj_flt);
	out->tlb_misses = atomic_load(&t->tlb_misses);
	out->rss_anon = (uint64_t)get_mm_counter(mm, MM_ANONPAGES);
	out->rss_swap = (uint64_t)get_mm_counter(mm, MM_SWAPENTS);
	out->rss_shmem = (uint64_t)get_mm_counter(mm, MM_SHMEMPAGES);
	out->nr_ptes = (uint64_t)atomic_load(&mm->pgtables_pages);
	down_read(&mm->mmap_lock);
	out->total_vm = mm->total_vm;
	out->nr_vmas = mm->nr_vmas;
	out->locked_vm = mm->locked_vm;
	up_read(&mm->mmap_lock);
	return 0;
}

int cowvm_vmstat(cowvm_t *vm, struct cowvm_vmstat *out)
{
	if (!vm || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
#define EV(x) global_vm_event(vm, x)
#define NS(x) (uint64_t)global_node_page_state(vm, x)
	out->nr_free_pages = nr_free_pages(vm);
	out->nr_anon_pages = NS(NR_ANON_MAPPED);
	out->nr_shmem = NS(NR_SHMEM);
	out->nr_page_table_pages = NS(NR_PAGETABLE);
	out->nr_active_anon = NS(NR_ACTIVE_ANON);
	out->nr_inactive_anon = NS(NR_INACTIVE_ANON);
	out->nr_zero_page_mappings = NS(NR_ZERO_MAPPED);
	out->nr_total_pages = vm->nr_frames;
	out->pgfault = EV(PGFAULT);
	out->pgmajfault = EV(PGMAJFAULT);
	out->pgreuse = EV(PGREUSE);
	out->pgalloc = EV(PGALLOC);
	out->pgfree = EV(PGFREE);
	out->cow_copies = EV(COW_COPY);
	out->zero_page_maps = EV(ZERO_PAGE_MAP);
	out->zero_page_cows = EV(ZERO_PAGE_COW);
	out->tlb_flushes = EV(TLB_FLUSH);
	out->nr_pinned = NS(NR_FOLL_PIN);
	out->gup_fast_fallbacks = EV(GUP_FAST_FALLBACK);
	out->nr_unevictable = NS(NR_UNEVICTABLE);
	out->nr_mlock = NS(NR_MLOCK);
	out->unevictable_pgs_mlocked = EV(UNEVICTABLE_PGMLOCKED);
	out->unevictable_pgs_munlocked = EV(UNEVICTABLE_PGMUNLOCKED);
	out->nr_swapcached = NS(NR_SWAPCACHE);
	out->pswpin = EV(PSWPIN);
	out->pswpout = EV(PSWPOUT);
	out->pgscan_kswapd = EV(PGSCAN_KSWAPD);
	out->pgscan_direct = EV(PGSCAN_DIRECT);
	out->pgsteal_kswapd = EV(PGSTEAL_KSWAPD);
	out->pgsteal_direct = EV(PGSTEAL_DIRECT);
	out->pgactivate = EV(PGACTIVATE);
	out->pgdeactivate = EV(PGDEACTIVATE);
#undef EV
#undef NS
	return 0;
}

int cowvm_frame_info(cowvm_t *vm, uint64_t pfn, struct cowvm_frame_info *out)
{
	if (!vm || !out || !pfn_valid(vm, pfn))
		return -EINVAL;
	struct page *page = pfn_to_page(vm, pfn);
	memset(out, 0, sizeof(*out));
	out->pfn = pfn;
	uint32_t f = atomic_load(&page->flags);
	if (f & (1u << PG_zero))
		out->state = COWVM_FRAME_ZERO;
	else if (f & (1u << PG_reserved))
		out->state = COWVM_FRAME_RESERVED;
	else if (f & ((1u << PG_buddy) | (1u << PG_pcp)) || page_ref_count(page) == 0)
		out->state = COWVM_FRAME_FREE;
	else if (f & (1u << PG_pgtable))
		out->state = COWVM_FRAME_PGTABLE;
	else if (f & (1u << PG_shmem))
		out->state = COWVM_FRAME_SHMEM;
	else if (page_mapcount(page) == 0 && (f & (1u << PG_swapcache)) &&
		 page_ref_count(page) == 1)
		out->state = COWVM_FRAME_SWAPCACHE;
	else if (page_mapcount(page) == 0)
		out->state = COWVM_FRAME_PINNED;
	else
		out->state = COWVM_FRAME_ANON;
	out->refcount = page_ref_count(page);
	out->mapcount = page_mapcount(page);
	out->anon_exclusive = !!(f & (1u << PG_anon_exclusive));
	out->lru = (f & (1u << PG_lru)) ? ((f & (1u << PG_unevictable)) ? 3 : (f & (1u << PG_active)) ? 2 : 1) : 0;
	out->index = page->index;
	out->mlocked = !!(f & (1u << PG_mlocked));
	out->mlock_count = out->mlocked ? (int)page->mlock_count : 0;
	out->swapcache = !!(f & (1u << PG_swapcache));
	out->swap_offset = out->swapcache ? swp_offset(page_swap_entry(page)) : 0;
	return 0;
}

struct rmap_api_arg {
	cowvm_rmap_fn fn;
	void *arg;
	int count;
};

/* page_vma_mapped: does the PTE at addr really map this page? */
static int rmap_api_one(struct page *page, struct vm_area_struct *vma, uint64_t addr, void *varg)
{
	struct rmap_api_arg *a = varg;
	struct mm_struct *mm = vma->vm_mm;
	spin_lock(&mm->page_table_lock);
	pte_t *ptep = pte_offset_map(mm, addr);
	pte_t pte = ptep ? ptep_get(ptep) : 0;
	spin_unlock(&mm->page_table_lock);
	if (!pte_present(pte) || pte_pfn(pte) != page_to_pfn(mm->vm, page))
		return 0;
	a->count++;
	/* a SNAP image is no process: it is reported as the negative pid of its child */
	return a->fn ? a->fn(a->arg, mm->is_snapshot ? -mm->tgid : mm->tgid, addr) : 0;
}

int cowvm_rmap_walk(cowvm_t *vm, uint64_t pfn, cowvm_rmap_fn fn, void *arg)
{
	if (!vm || !pfn_valid(vm, pfn))
		return -EINVAL;
	struct rmap_api_arg a = { fn, arg, 0 };
	rmap_walk(vm, pfn_to_page(vm, pfn), rmap_api_one, &a);
	return a.count;
}

/*
 * clear_refs_write: 1-3 clear the young bits (and PG_referenced) of all, anonymous or
 * file/shmem pages; 4 starts soft-dirty tracking: VM_SOFTDIRTY off, every present PTE
 * write-protected and unmarked, so the next write faults (and reuses) and marks it again;
 * 5 resets the peak RSS (VmHWM) to the current RSS.  TLBs are flushed afterwards.
 */
struct clear_refs_arg {
	struct vm_area_struct *vma;
	bool soft_dirty;
};

static int clear_refs_pte_range(pte_t *ptep, uint64_t addr, void *varg)
{
	struct clear_refs_arg *a = varg;
	pte_t old = ptep_get(ptep), new;
	if (is_swap_pte(old)) { /* clear_soft_dirty: pte_swp_clear_soft_dirty */
		if (a->soft_dirty && pte_swp_soft_dirty(old))
			set_pte(ptep, pte_swp_clear_soft_dirty(old));
		return 0;
	}
	if (!pte_present(old))
		return 0;
	do { /* the MMU may set accessed/dirty meanwhile */
		new = a->soft_dirty ? pte_wrprotect(old) & ~_PAGE_SOFT_DIRTY : pte_mkold(old);
	} while (new != old && !__atomic_compare_exchange_n(ptep, &old, new, false, __ATOMIC_ACQ_REL,
							   __ATOMIC_ACQUIRE));
	struct page *page = vm_normal_page(a->vma, addr, new);
	if (!a->soft_dirty && page)
		ClearPageFlag(page, PG_referenced);
	return 0;
}

int cowvm_clear_refs(cowvm_task_t *t, int what)
{
	enum { CLEAR_REFS_ALL = 1, CLEAR_REFS_ANON, CLEAR_REFS_MAPPED, CLEAR_REFS_SOFT_DIRTY,
	       CLEAR_REFS_MM_HIWATER_RSS };
	if (!t || what < CLEAR_REFS_ALL || what > CLEAR_REFS_MM_HIWATER_RSS)
		return -EINVAL;
	current = t;
	struct mm_struct *mm = t->mm;
	if (what == CLEAR_REFS_MM_HIWATER_RSS) { /* reset_mm_hiwater_rss */
		down_write(&mm->mmap_lock);
		mm->hiwater_rss = (uint64_t)(get_mm_counter(mm, MM_ANONPAGES) + get_mm_counter(mm, MM_FILEPAGES) +
					     get_mm_counter(mm, MM_SHMEMPAGES));
		up_write(&mm->mmap_lock);
		return 0;
	}
	if (what == CLEAR_REFS_SOFT_DIRTY && (mm->vm->flags & COWVM_CONFIG_NO_SOFT_DIRTY))
		return 0; /* clear_soft_dirty is empty without CONFIG_MEM_SOFT_DIRTY */
	bool soft_dirty = what == CLEAR_REFS_SOFT_DIRTY;
	if (soft_dirty)
		down_write(&mm->mmap_lock);
	else
		down_read(&mm->mmap_lock);
	for (size_t i = 0; i < mm->nr_vmas; i++) {
		struct vm_area_struct *vma = mm->vmas[i];
		if (soft_dirty && (vma->vm_flags & VM_SOFTDIRTY)) {
			vma->vm_flags &= ~VM_SOFTDIRTY;
			vma->vm_page_prot = vm_get_page_prot(vma->vm_flags);
		}
		if ((what == CLEAR_REFS_ANON && vma->vm_file) || (what == CLEAR_REFS_MAPPED && !vma->vm_file))
			continue;
		struct clear_refs_arg a = { vma, soft_dirty };
		walk_page_range(mm, vma->vm_start, vma->vm_end, clear_refs_pte_range, &a);
	}
	flush_tlb_mm(mm);
	if (soft_dirty)
		up_write(&mm->mmap_lock);
	else
		up_read(&mm->mmap_lock);
	return 0;
}
