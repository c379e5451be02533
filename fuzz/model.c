/*
 * model.c - the reference model (see model.h): mapped pages in a sorted array, shared objects
 * counted by the pages that map them, and Linux's argument checks in Linux's order.
 *
 * Invariants: pages[] is sorted by addr, page aligned, below MODEL_TASK_SIZE_MAX, without
 * duplicates; a shared object's refs equals the number of pages (in all processes) naming it;
 * a private page's data belongs to that page alone.
 *
 * Where the kernel's rule comes from (Linux 6.x, checked against the host kernel where a
 * process can see it):
 *   mmap      ksys_mmap_pgoff (EBADF without MAP_ANONYMOUS) -> do_mmap (len 0 EINVAL,
 *             round_hint_to_min rounds the hint *down*, PAGE_ALIGN(len) == 0 ENOMEM) ->
 *             __get_unmapped_area (len > TASK_SIZE ENOMEM; MAP_FIXED: addr > TASK_SIZE - len
 *             ENOMEM, unaligned EINVAL, below mmap_min_addr EPERM) -> MAP_FIXED_NOREPLACE
 *             EEXIST -> MAP_TYPE neither SHARED nor PRIVATE EINVAL.
 *   munmap    unaligned, start > TASK_SIZE, len > TASK_SIZE - start, or len 0: EINVAL.
 *   mprotect  unaligned EINVAL; len 0 returns 0 *before* prot is validated; end wraps ENOMEM;
 *             bad prot EINVAL; then VMA by VMA from start up to the first hole, -ENOMEM if
 *             there is one (the part before it keeps the new protection).
 *   madvise   bad advice, unaligned, len rounding to 0, end wrapping: EINVAL; len 0 returns 0;
 *             then every mapped part is advised and a hole anywhere gives -ENOMEM at the end;
 *             an advice a VMA refuses (WIPEONFORK on a shared one) stops with -EINVAL there.
 *   brk       below start_brk: no change; shrinking needs some mapping in [newbrk, oldbrk)
 *             (else no change: Linux 6.x "mapping intersects with an existing non-brk vma");
 *             growing needs [oldbrk, newbrk + one page) free.  Returns the break after.
 *   accesses  x86: a write needs PROT_WRITE, a read any of READ/WRITE/EXEC (no protection
 *             keys, so PROT_EXEC alone is readable).
 *   GUP       check_vma_flags: without FOLL_FORCE a write needs VM_WRITE and a read VM_READ;
 *             with it (access_remote_vm) a read needs VM_MAYREAD and a write VM_WRITE or a
 *             COW mapping (private with VM_MAYWRITE) - anonymous VMAs have all the MAY bits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "model.h"

#ifndef PROT_SEM
#define PROT_SEM 0x8
#endif
#define MODEL_MAP_TYPE 0x0f

static const uint8_t zero_page[MODEL_PAGE];

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		fprintf(stderr, "model: out of host memory\n");
		abort();
	}
	return p;
}

static void *xmemdup(const void *src, size_t n)
{
	void *p = xcalloc(1, n);
	memcpy(p, src, n);
	return p;
}

/* ---- the page array ------------------------------------------------------------------------ */

static size_t lower_bound(const struct model_mm *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mm->pages[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct model_page *find_mut(const struct model_mm *mm, uint64_t addr)
{
	size_t i = lower_bound(mm, addr);
	return i < mm->n && mm->pages[i].addr == addr ? &mm->pages[i] : NULL;
}

const struct model_page *model_find(const struct model_mm *mm, uint64_t addr)
{
	return find_mut(mm, addr & ~(MODEL_PAGE - 1));
}

static int range_free(const struct model_mm *mm, uint64_t addr, uint64_t len)
{
	size_t i = lower_bound(mm, addr);
	return i == mm->n || mm->pages[i].addr - addr >= len;
}

size_t model_index(const struct model_mm *mm, uint64_t addr)
{
	return lower_bound(mm, addr);
}

int model_range_free(const struct model_mm *mm, uint64_t addr, uint64_t len)
{
	return range_free(mm, addr, len);
}

static void page_release(struct model_page *p)
{
	struct model_object *obj = p->obj;
	if (obj) {
		if (--obj->refs == 0) {
			for (uint64_t i = 0; i < obj->npages; i++)
				free(obj->data[i]);
			free(obj->data);
			free(obj);
		}
	} else {
		free(p->data);
	}
}

/* Forget the pages in [start, end). */
static void remove_range(struct model_mm *mm, uint64_t start, uint64_t end)
{
	size_t i = lower_bound(mm, start), j = i;
	while (j < mm->n && mm->pages[j].addr < end)
		page_release(&mm->pages[j++]);
	if (j > i)
		memmove(&mm->pages[i], &mm->pages[j], (mm->n - j) * sizeof(*mm->pages));
	mm->n -= j - i;
}

/* Open a gap of count entries where pages at start go (the range must be free). */
static struct model_page *insert_gap(struct model_mm *mm, uint64_t start, size_t count)
{
	if (mm->n + count > mm->cap) {
		size_t cap = mm->cap ? mm->cap : 64;
		while (cap < mm->n + count)
			cap *= 2;
		struct model_page *p = realloc(mm->pages, cap * sizeof(*p));
		if (!p) {
			fprintf(stderr, "model: out of host memory\n");
			abort();
		}
		mm->pages = p;
		mm->cap = cap;
	}
	size_t i = lower_bound(mm, start);
	if (!count)
		return NULL; /* callers never ask for none */
	memmove(&mm->pages[i + count], &mm->pages[i], (mm->n - i) * sizeof(*mm->pages));
	mm->n += count;
	memset(&mm->pages[i], 0, count * sizeof(*mm->pages));
	return &mm->pages[i];
}

const uint8_t *model_page_bytes(const struct model_page *p)
{
	const uint8_t *d = p->obj ? p->obj->data[p->index] : p->data;
	return d ? d : zero_page;
}

static uint8_t *page_bytes_for_write(struct model_page *p)
{
	uint8_t **slot = p->obj ? &p->obj->data[p->index] : &p->data;
	if (!*slot)
		*slot = xcalloc(1, MODEL_PAGE);
	return *slot;
}

size_t model_nr_runs(const struct model_mm *mm)
{
	size_t runs = 0;
	for (size_t i = 0; i < mm->n; i++)
		if (i == 0 || mm->pages[i].addr != mm->pages[i - 1].addr + MODEL_PAGE)
			runs++;
	return runs;
}

int model_readable(int prot)
{
	return (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) != 0;
}

int model_writable(int prot)
{
	return (prot & PROT_WRITE) != 0;
}

/* ---- processes ----------------------------------------------------------------------------- */

struct model_mm *model_mm_new(uint64_t start_brk)
{
	struct model_mm *mm = xcalloc(1, sizeof(*mm));
	mm->users = 1;
	mm->start_brk = mm->brk = start_brk;
	return mm;
}

/* fork: DONTFORK pages stay behind, WIPEONFORK pages arrive zeroed (still WIPEONFORK), shared
 * pages name the same object, private pages are copied. */
struct model_mm *model_mm_fork(const struct model_mm *parent)
{
	struct model_mm *mm = model_mm_new(parent->start_brk);
	mm->brk = parent->brk;
	mm->cap = parent->n ? parent->n : 1;
	mm->pages = xcalloc(mm->cap, sizeof(*mm->pages));
	for (size_t i = 0; i < parent->n; i++) {
		const struct model_page *src = &parent->pages[i];
		if (src->dontfork)
			continue;
		struct model_page *dst = &mm->pages[mm->n++];
		*dst = *src;
		if (src->obj)
			src->obj->refs++;
		else if (src->wipeonfork || !src->data)
			dst->data = NULL;
		else
			dst->data = xmemdup(src->data, MODEL_PAGE);
	}
	return mm;
}

void model_mm_put(struct model_mm *mm)
{
	if (--mm->users)
		return;
	for (size_t i = 0; i < mm->n; i++)
		page_release(&mm->pages[i]);
	free(mm->pages);
	free(mm);
}

/* ---- mmap / munmap / mprotect / madvise / brk ------------------------------------------------ */

int model_mmap_check(const struct model_mm *mm, uint64_t addr, uint64_t len, int prot, int flags,
		     uint64_t *where)
{
	(void)prot; /* mmap does not validate prot: unknown bits are ignored */
	if (!(flags & MAP_ANONYMOUS))
		return -EBADF; /* fd -1 */
	if (!len)
		return -EINVAL;
	if (flags & MAP_FIXED_NOREPLACE)
		flags |= MAP_FIXED;
	uint64_t hint = 0;
	if (!(flags & MAP_FIXED)) { /* round_hint_to_min */
		hint = addr & ~(MODEL_PAGE - 1);
		if (hint && hint < MODEL_MMAP_MIN_ADDR)
			hint = MODEL_MMAP_MIN_ADDR;
	}
	uint64_t alen = MODEL_PAGE_ALIGN(len);
	if (!alen || alen > MODEL_TASK_SIZE_MAX)
		return -ENOMEM;
	if (flags & MAP_FIXED) {
		if (addr > MODEL_TASK_SIZE_MAX - alen)
			return -ENOMEM;
		if (addr & (MODEL_PAGE - 1))
			return -EINVAL;
		if (addr < MODEL_MMAP_MIN_ADDR)
			return -EPERM;
		if ((flags & MAP_FIXED_NOREPLACE) && !range_free(mm, addr, alen))
			return -EEXIST;
		*where = addr;
	} else if (hint && hint <= MODEL_TASK_SIZE_MAX - alen && range_free(mm, hint, alen)) {
		*where = hint;
	} else {
		*where = MODEL_ANYWHERE;
	}
	int type = flags & MODEL_MAP_TYPE;
	if (type != MAP_SHARED && type != MAP_PRIVATE)
		return -EINVAL;
	return 0;
}

int model_mmap_fits(const struct model_mm *mm, uint64_t addr, uint64_t len)
{
	uint64_t alen = MODEL_PAGE_ALIGN(len);
	return !(addr & (MODEL_PAGE - 1)) && addr >= MODEL_MMAP_MIN_ADDR &&
	       alen <= MODEL_TASK_SIZE_MAX && addr <= MODEL_TASK_SIZE_MAX - alen &&
	       range_free(mm, addr, alen);
}

void model_mmap_apply(struct model_mm *mm, uint64_t addr, uint64_t len, int prot, int flags)
{
	uint64_t npages = MODEL_PAGE_ALIGN(len) / MODEL_PAGE;
	struct model_object *obj = NULL;
	remove_range(mm, addr, addr + npages * MODEL_PAGE);
	if ((flags & MODEL_MAP_TYPE) == MAP_SHARED) {
		obj = xcalloc(1, sizeof(*obj));
		obj->npages = npages;
		obj->refs = (unsigned)npages;
		obj->data = xcalloc(npages, sizeof(*obj->data));
	}
	struct model_page *p = insert_gap(mm, addr, npages);
	for (uint64_t i = 0; i < npages; i++) {
		p[i].addr = addr + i * MODEL_PAGE;
		p[i].prot = (uint8_t)(prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
		p[i].obj = obj;
		p[i].index = i;
	}
}

int model_munmap(struct model_mm *mm, uint64_t addr, uint64_t len, int apply)
{
	if ((addr & (MODEL_PAGE - 1)) || addr > MODEL_TASK_SIZE_MAX || len > MODEL_TASK_SIZE_MAX - addr)
		return -EINVAL;
	if (!len)
		return -EINVAL;
	if (apply)
		remove_range(mm, addr, addr + MODEL_PAGE_ALIGN(len));
	return 0;
}

int model_mprotect(struct model_mm *mm, uint64_t addr, uint64_t len, int prot, int apply)
{
	if (addr & (MODEL_PAGE - 1))
		return -EINVAL;
	if (!len)
		return 0;
	uint64_t end = addr + MODEL_PAGE_ALIGN(len);
	if (end <= addr)
		return -ENOMEM;
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM))
		return -EINVAL;
	uint64_t next = addr;
	for (size_t i = lower_bound(mm, addr); i < mm->n && mm->pages[i].addr == next && next < end; i++) {
		if (apply)
			mm->pages[i].prot = (uint8_t)(prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
		next += MODEL_PAGE;
	}
	return next >= end ? 0 : -ENOMEM;
}

static int advice_known(int advice)
{
	switch (advice) {
	case MADV_NORMAL: case MADV_RANDOM: case MADV_SEQUENTIAL: case MADV_WILLNEED:
	case MADV_DONTNEED: case MADV_DONTFORK: case MADV_DOFORK: case MADV_WIPEONFORK:
	case MADV_KEEPONFORK:
		return 1;
	}
	return 0; /* the driver asks only about these and about values Linux rejects */
}

int model_madvise(struct model_mm *mm, uint64_t addr, uint64_t len, int advice, int apply)
{
	if (!advice_known(advice) || (addr & (MODEL_PAGE - 1)))
		return -EINVAL;
	uint64_t alen = MODEL_PAGE_ALIGN(len);
	if (len && !alen)
		return -EINVAL;
	uint64_t end = addr + alen;
	if (end < addr)
		return -EINVAL;
	if (end == addr)
		return 0;
	int unmapped_error = 0;
	uint64_t next = addr;
	for (size_t i = lower_bound(mm, addr); i < mm->n && mm->pages[i].addr < end; i++) {
		struct model_page *p = &mm->pages[i];
		if (p->addr != next)
			unmapped_error = -ENOMEM;
		next = p->addr + MODEL_PAGE;
		switch (advice) {
		case MADV_DONTNEED:
			if (apply && !p->obj) { /* private: zero-fill on the next touch */
				free(p->data);
				p->data = NULL;
			}
			break;
		case MADV_DONTFORK: case MADV_DOFORK:
			if (apply)
				p->dontfork = advice == MADV_DONTFORK;
			break;
		case MADV_WIPEONFORK:
			if (p->obj)
				return -EINVAL; /* the VMAs before this one stay advised */
			if (apply)
				p->wipeonfork = 1;
			break;
		case MADV_KEEPONFORK:
			if (apply)
				p->wipeonfork = 0;
			break;
		}
	}
	if (next < end)
		unmapped_error = -ENOMEM;
	return unmapped_error;
}

uint64_t model_brk(struct model_mm *mm, uint64_t brk, int apply)
{
	uint64_t cur = mm->brk;
	if (brk < mm->start_brk || brk > MODEL_TASK_SIZE_MAX)
		return cur;
	uint64_t newbrk = MODEL_PAGE_ALIGN(brk), oldbrk = MODEL_PAGE_ALIGN(cur);
	if (newbrk == oldbrk) {
		if (apply)
			mm->brk = brk;
		return brk;
	}
	if (brk <= cur) {
		if (range_free(mm, newbrk, oldbrk - newbrk))
			return cur; /* nothing of the heap left there to give back */
		if (apply) {
			remove_range(mm, newbrk, oldbrk);
			mm->brk = brk;
		}
		return brk;
	}
	if (newbrk > MODEL_TASK_SIZE_MAX || !range_free(mm, oldbrk, newbrk + MODEL_PAGE - oldbrk))
		return cur;
	if (apply) {
		uint64_t npages = (newbrk - oldbrk) / MODEL_PAGE;
		struct model_page *p = insert_gap(mm, oldbrk, npages);
		for (uint64_t i = 0; i < npages; i++) {
			p[i].addr = oldbrk + i * MODEL_PAGE;
			p[i].prot = PROT_READ | PROT_WRITE;
		}
		mm->brk = brk;
	}
	return brk;
}

/* ---- accesses ------------------------------------------------------------------------------- */

int model_first_fault(const struct model_mm *mm, uint64_t addr, uint64_t len, int write, uint64_t *at)
{
	if (!len)
		return 0;
	uint64_t last = addr + len - 1 < addr ? UINT64_MAX : addr + len - 1;
	for (uint64_t page = addr & ~(MODEL_PAGE - 1);; page += MODEL_PAGE) {
		*at = page < addr ? addr : page;
		if (page >= MODEL_USER_TOP)
			return 1;
		const struct model_page *p = find_mut(mm, page);
		if (!p || !(write ? model_writable(p->prot) : model_readable(p->prot)))
			return 1;
		if (last - page < MODEL_PAGE)
			return 0;
	}
}

void model_peek(const struct model_mm *mm, uint64_t addr, void *buf, uint64_t len)
{
	uint8_t *b = buf;
	while (len) {
		uint64_t off = addr & (MODEL_PAGE - 1), n = MODEL_PAGE - off < len ? MODEL_PAGE - off : len;
		const struct model_page *p = find_mut(mm, addr - off);
		if (!p) {
			fprintf(stderr, "model_peek: %#llx is not mapped\n", (unsigned long long)addr);
			abort();
		}
		memcpy(b, model_page_bytes(p) + off, n);
		addr += n;
		b += n;
		len -= n;
	}
}

void model_poke(struct model_mm *mm, uint64_t addr, const void *buf, uint64_t len)
{
	const uint8_t *b = buf;
	while (len) {
		uint64_t off = addr & (MODEL_PAGE - 1), n = MODEL_PAGE - off < len ? MODEL_PAGE - off : len;
		struct model_page *p = find_mut(mm, addr - off);
		if (!p) {
			fprintf(stderr, "model_poke: %#llx is not mapped\n", (unsigned long long)addr);
			abort();
		}
		memcpy(page_bytes_for_write(p) + off, b, n);
		addr += n;
		b += n;
		len -= n;
	}
}

int model_read(const struct model_mm *mm, uint64_t addr, void *buf, uint64_t len)
{
	uint64_t at;
	if (model_first_fault(mm, addr, len, 0, &at))
		return -EFAULT;
	model_peek(mm, addr, buf, len);
	return 0;
}

int model_write(struct model_mm *mm, uint64_t addr, const void *buf, uint64_t len, int apply)
{
	uint64_t at;
	if (model_first_fault(mm, addr, len, 1, &at))
		return -EFAULT;
	if (apply)
		model_poke(mm, addr, buf, len);
	return 0;
}

uint64_t model_copy_nc(const struct model_mm *mm, uint64_t addr, uint64_t n, int write, int access_ok)
{
	if (!n)
		return 0;
	if (access_ok && (n > MODEL_TASK_SIZE_MAX || addr > MODEL_TASK_SIZE_MAX - n))
		return n;
	uint64_t at;
	return model_first_fault(mm, addr, n, write, &at) ? n - (at - addr) : 0;
}

uint64_t model_remote_len(const struct model_mm *mm, uint64_t addr, uint64_t len, int write)
{
	uint64_t done = 0;
	while (done < len) {
		uint64_t a = addr + done;
		if (a < addr || a >= MODEL_TASK_SIZE_MAX)
			break;
		const struct model_page *p = find_mut(mm, a & ~(MODEL_PAGE - 1));
		if (!p || (write && p->obj && !model_writable(p->prot)))
			break;
		uint64_t off = a & (MODEL_PAGE - 1);
		done += MODEL_PAGE - off < len - done ? MODEL_PAGE - off : len - done;
	}
	return done;
}

int model_gup_check(const struct model_mm *mm, uint64_t addr, uint64_t npages, int write)
{
	for (uint64_t i = 0; i < npages; i++) {
		const struct model_page *p = find_mut(mm, addr + i * MODEL_PAGE);
		if (!p || !(p->prot & (write ? PROT_WRITE : PROT_READ)))
			return -EFAULT;
	}
	return 0;
}
