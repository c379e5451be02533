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
	model_snap_free(mm->snap);
	free(mm->pages);
	free(mm);
}

/* ---- snapshots ------------------------------------------------------------------------------ */

/* Every page of src, as it is, into a new array of dst (which has none). */
static void copy_all_pages(struct model_mm *dst, const struct model_mm *src)
{
	dst->start_brk = src->start_brk;
	dst->brk = src->brk;
	dst->cap = src->n ? src->n : 1;
	dst->n = 0;
	dst->pages = xcalloc(dst->cap, sizeof(*dst->pages));
	for (size_t i = 0; i < src->n; i++) {
		const struct model_page *p = &src->pages[i];
		struct model_page *q = &dst->pages[dst->n++];
		*q = *p;
		if (p->obj)
			p->obj->refs++;
		else if (p->data)
			q->data = xmemdup(p->data, MODEL_PAGE);
	}
}

struct model_mm *model_image_take(const struct model_mm *mm)
{
	struct model_mm *image = xcalloc(1, sizeof(*image));
	copy_all_pages(image, mm);
	return image;
}

void model_image_restore(struct model_mm *mm, const struct model_mm *image)
{
	for (size_t i = 0; i < mm->n; i++)
		page_release(&mm->pages[i]);
	free(mm->pages);
	copy_all_pages(mm, image);
}

void model_image_free(struct model_mm *image)
{
	if (!image)
		return;
	for (size_t i = 0; i < image->n; i++)
		page_release(&image->pages[i]);
	free(image->pages);
	free(image);
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
	case MADV_KEEPONFORK: case MADV_POPULATE_READ: case MADV_POPULATE_WRITE:
		return 1;
	}
	return 0; /* the driver asks only about these and about values Linux rejects */
}

/* MADV_POPULATE_READ / _WRITE: no byte changes; page by page, a hole is -ENOMEM and a page
 * whose protection refuses the access -EINVAL (madvise_populate), the pages before it done. */
static int model_populate(struct model_mm *mm, uint64_t addr, uint64_t end, int write)
{
	uint64_t next = addr;
	for (size_t i = lower_bound(mm, addr); next < end; i++, next += MODEL_PAGE) {
		if (i >= mm->n || mm->pages[i].addr != next)
			return -ENOMEM;
		if (!(mm->pages[i].prot & (write ? PROT_WRITE : PROT_READ)))
			return -EINVAL;
	}
	return 0;
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
	if (advice == MADV_POPULATE_READ || advice == MADV_POPULATE_WRITE)
		return model_populate(mm, addr, end, advice == MADV_POPULATE_WRITE);
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

/* ---- dput / dget ------------------------------------------------------------------------------
 *
 * From the contract in include/cowvm.h (and docs/dput.md for what it leaves to prose): the
 * model has no VMAs, no frames and no copy-on-write - a COPY copies bytes, a MERGE compares
 * bytes.  cowvm decides MERGE per page by frames (same frame = unchanged); with no swap and no
 * write behind the model's back, equal frames mean equal bytes, and the byte rule gives the
 * same result on every path the frame rule takes (a page the child did not change keeps the
 * parent's bytes; a page only the child changed becomes the child's; the parent already
 * holding the child's page changes nothing), so the model applies the byte rule everywhere.
 */

static int dput_range_ok(uint64_t addr, uint64_t len)
{
	return len <= MODEL_TASK_SIZE_MAX && addr <= MODEL_TASK_SIZE_MAX - len;
}

struct model_src {
	size_t n;
	struct model_page *pages; /* copies: own data, a reference on obj */
	uint8_t **bytes;          /* per page, its bytes when saved (a shared page's too: the
				   * COPY may write the object it reads); NULL = zeros */
};

struct model_src *model_src_save(const struct model_mm *mm, uint64_t src, uint64_t len)
{
	struct model_src *s = xcalloc(1, sizeof(*s));
	if (!len)
		return s;
	uint64_t lo = src & ~(MODEL_PAGE - 1), hi = src + len; /* pages that start below hi */
	size_t i = lower_bound(mm, lo), j = i;
	while (j < mm->n && mm->pages[j].addr < hi)
		j++;
	s->n = j - i;
	s->pages = xcalloc(s->n, sizeof(*s->pages));
	s->bytes = xcalloc(s->n, sizeof(*s->bytes));
	for (size_t k = 0; k < s->n; k++) {
		struct model_page *p = &s->pages[k];
		*p = mm->pages[i + k];
		if (p->obj)
			p->obj->refs++;
		else if (p->data)
			p->data = xmemdup(p->data, MODEL_PAGE);
		const uint8_t *b = model_page_bytes(p);
		if (b != zero_page)
			s->bytes[k] = xmemdup(b, MODEL_PAGE);
	}
	return s;
}

const uint8_t *model_src_bytes(const struct model_src *s, const struct model_page *p)
{
	const uint8_t *b = s->bytes[p - s->pages];
	return b ? b : zero_page;
}

static size_t src_lower_bound(const struct model_src *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->pages[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct model_page *model_src_page(const struct model_src *s, uint64_t addr)
{
	addr &= ~(MODEL_PAGE - 1);
	size_t i = src_lower_bound(s, addr);
	return i < s->n && s->pages[i].addr == addr ? &s->pages[i] : NULL;
}

void model_src_free(struct model_src *s)
{
	if (!s)
		return;
	for (size_t k = 0; k < s->n; k++) {
		page_release(&s->pages[k]);
		free(s->bytes[k]);
	}
	free(s->pages);
	free(s->bytes);
	free(s);
}

static struct model_page *new_private_page(struct model_mm *mm, uint64_t addr, int prot)
{
	struct model_page *p = insert_gap(mm, addr, 1);
	p->addr = addr;
	p->prot = (uint8_t)(prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
	return p;
}

static void note_new_page(struct model_newpages *np, uint64_t addr, int prot, int create)
{
	if (!np)
		return;
	for (size_t i = np->n; i-- > 0;)
		if (np->p[i].addr == addr) {
			np->p[i].prots |= (uint8_t)(1u << (prot & 7));
			return;
		}
	if (!create)
		return;
	if (np->n == np->cap) {
		np->cap = np->cap ? np->cap * 2 : 16;
		np->p = realloc(np->p, np->cap * sizeof(*np->p));
		if (!np->p) {
			fprintf(stderr, "model: out of host memory\n");
			abort();
		}
	}
	np->p[np->n++] = (struct model_newpage){ addr, (uint8_t)(1u << (prot & 7)) };
}

/* The bytes of [s0, s0 + n) that lie in pages the source had mapped, one by one to d0 + .. */
static void copy_region(const struct model_src *saved, uint64_t s0, uint64_t d0, uint64_t n,
			struct model_mm *dmm, struct model_newpages *np)
{
	uint64_t s_end = s0 + n;
	for (size_t k = src_lower_bound(saved, s0 & ~(MODEL_PAGE - 1));
	     k < saved->n && saved->pages[k].addr < s_end; k++) {
		const struct model_page *sp = &saved->pages[k];
		const uint8_t *bytes = model_src_bytes(saved, sp);
		uint64_t a = sp->addr < s0 ? s0 : sp->addr;
		uint64_t b = sp->addr + MODEL_PAGE < s_end ? sp->addr + MODEL_PAGE : s_end;
		while (a < b) {
			uint64_t d = d0 + (a - s0), off = d & (MODEL_PAGE - 1);
			uint64_t chunk = b - a < MODEL_PAGE - off ? b - a : MODEL_PAGE - off;
			struct model_page *dp = find_mut(dmm, d - off);
			if (!dp) {
				dp = new_private_page(dmm, d - off, sp->prot);
				note_new_page(np, d - off, sp->prot, 1);
			} else {
				note_new_page(np, d - off, sp->prot, 0);
			}
			memcpy(page_bytes_for_write(dp) + off, bytes + (a & (MODEL_PAGE - 1)), chunk);
			a += chunk;
		}
	}
}

/* Destination pages in [dst, dst + len) that get bytes one by one (all: every page; else only
 * the partial ones) must not be shared read-only. */
static int dest_eacces(const struct model_mm *dmm, uint64_t dst, uint64_t len, int all)
{
	uint64_t lo = dst & ~(MODEL_PAGE - 1), end = dst + len;
	for (size_t i = lower_bound(dmm, lo); i < dmm->n && dmm->pages[i].addr < end; i++) {
		const struct model_page *p = &dmm->pages[i];
		int partial = p->addr < dst || p->addr + MODEL_PAGE > end;
		if ((partial || all) && p->obj && !model_writable(p->prot))
			return -EACCES;
	}
	return 0;
}

int model_dcopy(const struct model_mm *smm, uint64_t src, struct model_mm *dmm, uint64_t dst,
		uint64_t len, int apply, const struct model_src *saved, struct model_newpages *np)
{
	if (!len)
		return 0;
	if (!dput_range_ok(dst, len) || !dput_range_ok(src, len))
		return -EINVAL;
	if (smm == dmm && src < dst + len && dst < src + len)
		return -EINVAL;
	uint64_t end = src + len, start_page = MODEL_PAGE_ALIGN(src), end_page = end & ~(MODEL_PAGE - 1);
	int page_delta = ((dst - src) & (MODEL_PAGE - 1)) == 0;
	int cow = page_delta && start_page < end_page;
	int err = dest_eacces(dmm, dst, len, !page_delta);
	if (err || !apply)
		return err;
	if (!cow) {
		copy_region(saved, src, dst, len, dmm, np);
		return 0;
	}
	uint64_t delta = dst - src;
	if (src < start_page)
		copy_region(saved, src, dst, start_page - src, dmm, np);
	remove_range(dmm, start_page + delta, end_page + delta);
	for (size_t k = src_lower_bound(saved, start_page); k < saved->n && saved->pages[k].addr < end_page; k++) {
		const struct model_page *sp = &saved->pages[k];
		struct model_page *dp = insert_gap(dmm, sp->addr + delta, 1);
		dp->addr = sp->addr + delta;
		dp->prot = sp->prot;
		if (sp->obj) {
			dp->obj = sp->obj;
			dp->index = sp->index;
			sp->obj->refs++;
		} else if (sp->data) {
			dp->data = xmemdup(sp->data, MODEL_PAGE);
		}
	}
	if (end_page < end)
		copy_region(saved, end_page, end_page + delta, end - end_page, dmm, np);
	return 0;
}

static void zero_region(struct model_mm *dmm, uint64_t a, uint64_t b)
{
	while (a < b) {
		uint64_t off = a & (MODEL_PAGE - 1), n = b - a < MODEL_PAGE - off ? b - a : MODEL_PAGE - off;
		struct model_page *dp = find_mut(dmm, a - off);
		if (!dp)
			new_private_page(dmm, a - off, PROT_READ | PROT_WRITE); /* reads as zeros */
		else if (model_page_bytes(dp) != zero_page)
			memset(page_bytes_for_write(dp) + off, 0, n);
		a += n;
	}
}

int model_dzero(struct model_mm *dmm, uint64_t dst, uint64_t len, int apply)
{
	if (!len)
		return 0;
	if (!dput_range_ok(dst, len))
		return -EINVAL;
	int err = dest_eacces(dmm, dst, len, 0);
	if (err || !apply)
		return err;
	uint64_t end = dst + len, start_page = MODEL_PAGE_ALIGN(dst), end_page = end & ~(MODEL_PAGE - 1);
	if (start_page >= end_page) {
		zero_region(dmm, dst, end);
		return 0;
	}
	zero_region(dmm, dst, start_page);
	remove_range(dmm, start_page, end_page);
	uint64_t npages = (end_page - start_page) / MODEL_PAGE;
	struct model_page *p = insert_gap(dmm, start_page, npages);
	for (uint64_t i = 0; i < npages; i++) {
		p[i].addr = start_page + i * MODEL_PAGE;
		p[i].prot = PROT_READ | PROT_WRITE;
	}
	zero_region(dmm, end_page, end);
	return 0;
}

void model_snap_free(struct model_snap *snap)
{
	if (!snap)
		return;
	for (size_t i = 0; i < snap->n; i++)
		free(snap->data[i]);
	free(snap->addr);
	free(snap->data);
	free(snap);
}

void model_snap_take(struct model_mm *mm)
{
	struct model_snap *snap = xcalloc(1, sizeof(*snap));
	snap->addr = xcalloc(mm->n, sizeof(*snap->addr));
	snap->data = xcalloc(mm->n, sizeof(*snap->data));
	for (size_t i = 0; i < mm->n; i++) {
		const struct model_page *p = &mm->pages[i];
		if (p->obj)
			continue; /* shared memory is not imaged */
		snap->addr[snap->n] = p->addr;
		snap->data[snap->n++] = p->data ? xmemdup(p->data, MODEL_PAGE) : NULL;
	}
	model_snap_free(mm->snap);
	mm->snap = snap;
}

const uint8_t *model_snap_bytes(const struct model_snap *snap, uint64_t addr)
{
	size_t lo = 0, hi = snap ? snap->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (snap->addr[mid] < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < (snap ? snap->n : 0) && snap->addr[lo] == addr && snap->data[lo] ? snap->data[lo] : zero_page;
}

int model_dmerge(struct model_mm *pmm, uint64_t pa, const struct model_mm *cmm, uint64_t ca,
		 uint64_t len, int apply, int *alt, struct model_merge_res *res,
		 model_merge_hook hook, void *arg)
{
	if (alt)
		*alt = 0;
	if (res)
		memset(res, 0, sizeof(*res));
	if (((pa | ca | len) & (MODEL_PAGE - 1)) || !dput_range_ok(pa, len) || !dput_range_ok(ca, len) ||
	    pmm == cmm)
		return -EINVAL;
	if (!len)
		return 0;
	int enoent = !cmm->snap, efault = 0;
	for (uint64_t a = pa; a < pa + len; a += MODEL_PAGE) {
		const struct model_page *p = find_mut(pmm, a);
		if (!p || (p->obj && !model_writable(p->prot))) {
			efault = 1;
			break;
		}
	}
	if (enoent && efault && alt)
		*alt = -EFAULT;
	if (enoent)
		return -ENOENT;
	if (efault)
		return -EFAULT;
	if (!apply)
		return 0;
	static uint8_t post[MODEL_PAGE];
	for (uint64_t off = 0; off < len; off += MODEL_PAGE) {
		uint64_t x = ca + off, y = pa + off;
		const struct model_page *cp = find_mut(cmm, x);
		if (cp && cp->obj)
			continue; /* shared memory: the same on both sides */
		const uint8_t *c = cp ? model_page_bytes(cp) : zero_page;
		const uint8_t *rr = model_snap_bytes(cmm->snap, x);
		if (!memcmp(c, rr, MODEL_PAGE))
			continue; /* unchanged in the child */
		struct model_page *pp = find_mut(pmm, y);
		const uint8_t *p = model_page_bytes(pp);
		uint64_t conflicts = 0;
		for (size_t b = 0; b < MODEL_PAGE; b++) {
			if (c[b] == rr[b] || p[b] == c[b]) {
				post[b] = p[b];
			} else if (p[b] == rr[b]) {
				post[b] = c[b];
			} else {
				post[b] = p[b];
				if (res && !res->conflicts && !conflicts)
					res->first_conflict = y + b;
				conflicts++;
			}
		}
		if (res) {
			res->conflicts += conflicts;
			res->pages_conflict += conflicts != 0;
			res->pages_changed += memcmp(p, c, MODEL_PAGE) != 0;
		}
		if (memcmp(post, p, MODEL_PAGE) && (!hook || hook(arg, y, p, post)))
			memcpy(page_bytes_for_write(pp), post, MODEL_PAGE);
	}
	return 0;
}

void model_set_private(struct model_mm *mm, uint64_t addr, int prot, int dontfork, int wipeonfork,
		       const uint8_t *bytes)
{
	remove_range(mm, addr, addr + MODEL_PAGE);
	struct model_page *p = new_private_page(mm, addr, prot);
	p->dontfork = (uint8_t)!!dontfork;
	p->wipeonfork = (uint8_t)!!wipeonfork;
	if (bytes && memcmp(bytes, zero_page, MODEL_PAGE))
		p->data = xmemdup(bytes, MODEL_PAGE);
}

void model_set_shared(struct model_mm *mm, uint64_t addr, int prot, int dontfork,
		      struct model_object *obj, uint64_t index)
{
	obj->refs++; /* first: the page replaced may hold the object's last reference */
	remove_range(mm, addr, addr + MODEL_PAGE);
	struct model_page *p = insert_gap(mm, addr, 1);
	p->addr = addr;
	p->prot = (uint8_t)(prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
	p->dontfork = (uint8_t)!!dontfork;
	p->obj = obj;
	p->index = index;
}

void model_unmap_page(struct model_mm *mm, uint64_t addr)
{
	remove_range(mm, addr, addr + MODEL_PAGE);
}

void model_object_write(struct model_object *obj, uint64_t index, const uint8_t *bytes)
{
	if (!obj->data[index] && !memcmp(bytes, zero_page, MODEL_PAGE))
		return;
	if (!obj->data[index])
		obj->data[index] = xcalloc(1, MODEL_PAGE);
	memcpy(obj->data[index], bytes, MODEL_PAGE);
}
