/*
 * driver.c - one fuzzing run: a cowvm machine and the model side by side (see driver.h).
 *
 * The run owns the machine, the task slots, the pins and the model of every process;
 * fuzz_exec plays an operation on both and checks (gen.c makes operations, print.c writes
 * them out).  Only include/cowvm.h is used - what cowvm does inside is found out through its
 * public calls, as a program would.
 *
 * The comparison of a page's contents does not disturb the machine more than a program
 * reading its own memory would: it asks pagemap first, and a private page that is not present
 * must be zero in the model (there is no swap yet) without being read.  Only an explicit
 * compare operation and the final comparison read shared pages that are not present (which
 * may fault a shmem page in).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

#define PG 4096ull
#define FILL 0xa5            /* what a buffer holds before a read; a failed read leaves it */
#define LOW_MEMORY 64        /* free frames under which -ENOMEM is the machine's real OOM */
#define VM_DONTCOPY_BIT 0x00020000ul
#define VM_WIPEONFORK_BIT 0x02000000ul

static const char *const kind_names[FOP_NKINDS] = {
	"spawn", "fork", "thread", "exit", "mmap", "munmap", "mprotect", "madvise", "brk",
	"read", "write", "load64", "store64", "copy_from_user", "copy_to_user", "get_user",
	"put_user", "compare", "pin", "unpin", "pin_io", "remote", "dput", "dget",
	"snapshot", "restore",
};

const char *fuzz_kind_name(int kind)
{
	return kind >= 0 && kind < FOP_NKINDS ? kind_names[kind] : "?";
}

uint64_t fuzz_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The bytes a write puts: 1 seed in 16 writes zeros (so that zero-page confusions show). */
void fuzz_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	if ((seed & 15) == 0) {
		memset(buf, 0, len);
		return;
	}
	uint64_t x = seed, w = 0;
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			w = fuzz_splitmix(&x);
		buf[i] = (uint8_t)(w >> (8 * (i & 7)));
	}
}

void fuzz_config_default(struct fuzz_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->phys_bytes = 16ull << 20;
	cfg->nr_cpus = 1;
	cfg->check_every = 1;
	cfg->compare_every = 32;
	cfg->inject_one_in = 16;
	cfg->avoid = FUZZ_KNOWN;
}

/* ---- the run ------------------------------------------------------------------------------- */

struct fuzz_run *fuzz_run_new(const struct fuzz_config *cfg)
{
	struct fuzz_run *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cfg = *cfg;
	if (!r->cfg.phys_bytes)
		r->cfg.phys_bytes = 16ull << 20;
	if (!r->cfg.nr_cpus)
		r->cfg.nr_cpus = 1;
	if (!r->cfg.max_pages) {
		/* frames / 32 per process (8 processes use half the machine at most); a 16 MiB
		 * machine or larger affords frames / 16, and with it accesses over 64 pages */
		uint64_t frames = r->cfg.phys_bytes / PG;
		r->cfg.max_pages = (unsigned)(frames >= 4096 ? frames / 16 : frames / 32);
		if (r->cfg.max_pages < 8)
			r->cfg.max_pages = 8;
	}
	struct cowvm_config c = { .phys_bytes = r->cfg.phys_bytes, .nr_cpus = r->cfg.nr_cpus };
	r->vm = cowvm_create(&c);
	r->buf = malloc(FUZZ_MAX_ACCESS);
	r->buf2 = malloc(FUZZ_MAX_ACCESS);
	r->page = malloc(PG);
	if (!r->vm || !r->buf || !r->buf2 || !r->page) {
		fprintf(stderr, "fuzz: cannot make a machine of %llu bytes: %s\n",
			(unsigned long long)r->cfg.phys_bytes, strerror(errno));
		fuzz_run_free(r);
		return NULL;
	}
	struct cowvm_vmstat vs;
	cowvm_vmstat(r->vm, &vs);
	r->free_after_create = vs.nr_free_pages;
	return r;
}

void fuzz_run_free(struct fuzz_run *r)
{
	if (!r)
		return;
	for (int i = 0; i < FUZZ_PINS; i++)
		if (r->pins[i].pin)
			cowvm_unpin(r->pins[i].pin);
	for (int i = 0; i < FUZZ_SLOTS; i++)
		if (r->mm[i])
			model_mm_put(r->mm[i]);
	for (int i = 0; i < FUZZ_SNAPS; i++) /* the handles go with their processes */
		model_image_free(r->snaps[i].image);
	if (r->vm)
		cowvm_destroy(r->vm);
	if (!r->log_fixed)
		free(r->log);
	free(r->buf);
	free(r->buf2);
	free(r->page);
	free(r);
}

static int diverge(struct fuzz_run *r, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int diverge(struct fuzz_run *r, const char *cls, const char *fmt, ...)
{
	if (r->failed)
		return -1;
	r->failed = 1;
	r->fail_index = r->st.ops ? r->st.ops - 1 : 0;
	snprintf(r->fail_class, sizeof(r->fail_class), "%s", cls);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return -1;
}

static void log_op(struct fuzz_run *r, const struct fuzz_op *op)
{
	if (r->nlog == r->logcap) {
		if (r->log_fixed)
			return;
		size_t cap = r->logcap ? r->logcap * 2 : 1024;
		struct fuzz_op *l = realloc(r->log, cap * sizeof(*l));
		if (!l)
			return;
		r->log = l;
		r->logcap = cap;
	}
	r->log[r->nlog++] = *op;
}

static int low_memory(struct fuzz_run *r)
{
	struct cowvm_vmstat vs;
	cowvm_vmstat(r->vm, &vs);
	return vs.nr_free_pages < LOW_MEMORY;
}

/*
 * An operation did not get the result the model predicted, in a way an allocation failure
 * explains.  Is an allocation failure possible here?  Injected for this operation, armed by
 * the sweep and not met yet (then it is met now), or the machine really short of frames.
 */
static int absorb(struct fuzz_run *r, const struct fuzz_op *op)
{
	r->absorbed_at = r->st.ops - 1;
	if (op->inject && r->inject_consumed) {
		r->st.injected++;
		return 1;
	}
	/* (armed but not met: no excuse - unless the probe itself found no memory, below) */
	if (r->sweep_armed) {
		r->sweep_armed = 0; /* one failure only: everything after it must be exact */
		r->st.injected++;
		return 1;
	}
	if (low_memory(r)) {
		r->st.natural_oom++;
		return 1;
	}
	return 0;
}

static void arm(struct fuzz_run *r, const struct fuzz_op *op)
{
	if (op->inject)
		cowvm_fail_alloc(r->vm, COWVM_FAIL_NEXT, 0);
}

/* Was the armed failure met?  A spawn allocates at once: it fails only while still armed. */
static void disarm(struct fuzz_run *r, const struct fuzz_op *op)
{
	if (!op->inject)
		return;
	int e = errno;
	cowvm_task_t *probe = cowvm_spawn(r->vm);
	r->inject_consumed = probe != NULL;
	if (probe)
		cowvm_exit(probe);
	cowvm_fail_alloc(r->vm, COWVM_FAIL_OFF, 0);
	errno = e;
}

static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

static int all_bytes(const uint8_t *a, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != v)
			return 0;
	return 1;
}

/* end of [addr, addr + len), saturating */
static uint64_t range_end(uint64_t addr, uint64_t len)
{
	return addr + len < addr ? UINT64_MAX : addr + len;
}

static int is_zero_pfn(struct fuzz_run *r, uint64_t pfn)
{
	if (r->zero_pfn)
		return pfn == r->zero_pfn;
	struct cowvm_frame_info fi;
	if (cowvm_frame_info(r->vm, pfn, &fi) == 0 && fi.state == COWVM_FRAME_ZERO) {
		r->zero_pfn = pfn;
		return 1;
	}
	return 0;
}

/* ---- comparisons ------------------------------------------------------------------------------ */

/*
 * The model pages of slot s's process in [start, end) against cowvm's memory.  active: also
 * read shared pages that are not present.  *present counts present pages other than the zero
 * page (for RSS), if not NULL.
 */
static int compare_pages(struct fuzz_run *r, int s, uint64_t start, uint64_t end, int active,
			 uint64_t *present)
{
	cowvm_task_t *t = r->task[s];
	const struct model_mm *mm = r->mm[s];
	for (size_t i = model_index(mm, start); i < mm->n && mm->pages[i].addr < end; i++) {
		const struct model_page *p = &mm->pages[i];
		const uint8_t *want = model_page_bytes(p);
		uint64_t pm = cowvm_pagemap(t, p->addr);
		int mapped = !!(pm & (COWVM_PM_PRESENT | COWVM_PM_SWAP));
		if ((pm & COWVM_PM_PRESENT) && present && !is_zero_pfn(r, pm & COWVM_PM_PFN_MASK))
			(*present)++;
		if (!mapped && !p->obj) {
			size_t d = 0;
			while (d < PG && !want[d])
				d++;
			if (d < PG)
				return diverge(r, "lost-contents",
					       "slot %d: private page %#llx is not present (pagemap %#llx) but "
					       "the model holds data there (byte +%#zx = %02x)",
					       s, (unsigned long long)p->addr, (unsigned long long)pm, d, want[d]);
			continue;
		}
		if (!model_readable(p->prot) || (!mapped && !active))
			continue;
		memset(r->page, FILL, PG);
		int ret = cowvm_read(t, p->addr, r->page, PG);
		if (ret == -ENOMEM && !mapped && low_memory(r)) {
			r->st.natural_oom++; /* a shmem page to fault in, and really no memory */
			continue;
		}
		if (ret)
			return diverge(r, "compare-read",
				       "slot %d: reading mapped page %#llx (prot %d, %s) failed: %d", s,
				       (unsigned long long)p->addr, p->prot, p->obj ? "shared" : "private", ret);
		r->st.pages_compared++;
		size_t d = first_diff(r->page, want, PG);
		if (d < PG)
			return diverge(r, "contents",
				       "slot %d: page %#llx (%s, prot %d, pagemap %#llx) differs at +%#zx: "
				       "cowvm %02x, model %02x", s, (unsigned long long)p->addr,
				       p->obj ? "shared" : "private", p->prot, (unsigned long long)pm, d,
				       r->page[d], want[d]);
	}
	return 0;
}

struct vma_list {
	struct cowvm_vma_info *v;
	size_t n, cap;
};

static int collect_vma(void *arg, const struct cowvm_vma_info *vma)
{
	struct vma_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct cowvm_vma_info *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *vma;
	return 0;
}

/* cowvm's VMAs of slot s's process against the model's pages, both ways. */
static int compare_vmas(struct fuzz_run *r, int s)
{
	const struct model_mm *mm = r->mm[s];
	struct vma_list l = { 0 };
	int ret = cowvm_for_each_vma(r->task[s], collect_vma, &l);
	if (ret) {
		free(l.v);
		return diverge(r, "vma-walk", "cowvm_for_each_vma failed: %d", ret);
	}
	uint64_t prev_end = 0, pages = 0;
	size_t j = 0; /* model page expected next */
	for (size_t k = 0; k < l.n && !r->failed; k++) {
		const struct cowvm_vma_info *v = &l.v[k];
		if (v->start >= v->end || ((v->start | v->end) & (PG - 1)) || v->start < prev_end) {
			diverge(r, "vma-shape", "slot %d: VMA %#llx-%#llx is empty, unaligned or overlaps "
				"the one before (ending %#llx)", s, (unsigned long long)v->start,
				(unsigned long long)v->end, (unsigned long long)prev_end);
			break;
		}
		prev_end = v->end;
		if (j < mm->n && mm->pages[j].addr < v->start) {
			diverge(r, "vma-missing", "slot %d: model page %#llx is in no VMA (next VMA "
				"%#llx-%#llx)", s, (unsigned long long)mm->pages[j].addr,
				(unsigned long long)v->start, (unsigned long long)v->end);
			break;
		}
		for (uint64_t a = v->start; a < v->end; a += PG, j++, pages++) {
			const struct model_page *p = j < mm->n ? &mm->pages[j] : NULL;
			if (!p || p->addr != a) {
				diverge(r, "vma-extra", "slot %d: VMA %#llx-%#llx maps %#llx, which the model "
					"has unmapped", s, (unsigned long long)v->start,
					(unsigned long long)v->end, (unsigned long long)a);
				break;
			}
			const char *what = NULL;
			if ((v->prot & 7) != p->prot)
				what = "protection";
			else if (!!v->shared != !!p->obj)
				what = "shared";
			else if (!!(v->flags & VM_DONTCOPY_BIT) != !!p->dontfork)
				what = "DONTFORK";
			else if (!!(v->flags & VM_WIPEONFORK_BIT) != !!p->wipeonfork)
				what = "WIPEONFORK";
			if (what) {
				diverge(r, "vma-flags", "slot %d: page %#llx: VMA %#llx-%#llx has prot %d "
					"shared %d flags %#lx; model prot %d shared %d dontfork %d "
					"wipeonfork %d (%s differs)", s, (unsigned long long)a,
					(unsigned long long)v->start, (unsigned long long)v->end, v->prot,
					v->shared, v->flags, p->prot, !!p->obj, p->dontfork, p->wipeonfork, what);
				break;
			}
		}
	}
	if (!r->failed && j < mm->n)
		diverge(r, "vma-missing", "slot %d: model page %#llx is in no VMA",
			s, (unsigned long long)mm->pages[j].addr);
	free(l.v);
	(void)pages;
	return r->failed ? -1 : 0;
}

/* Counters of slot s's process: total_vm, RSS bound, VMA count bounds. */
static int check_stats(struct fuzz_run *r, int s)
{
	const struct model_mm *mm = r->mm[s];
	struct cowvm_task_stats ts;
	int ret = cowvm_task_stats(r->task[s], &ts);
	if (ret)
		return diverge(r, "stats", "cowvm_task_stats failed: %d", ret);
	if (ts.total_vm != mm->n)
		return diverge(r, "total_vm", "slot %d: total_vm %llu pages, model maps %zu", s,
			       (unsigned long long)ts.total_vm, mm->n);
	if (ts.rss_anon + ts.rss_shmem > ts.total_vm)
		return diverge(r, "rss", "slot %d: rss_anon %llu + rss_shmem %llu > total_vm %llu", s,
			       (unsigned long long)ts.rss_anon, (unsigned long long)ts.rss_shmem,
			       (unsigned long long)ts.total_vm);
	size_t runs = model_nr_runs(mm);
	if (ts.nr_vmas < runs || ts.nr_vmas > mm->n)
		return diverge(r, "nr_vmas", "slot %d: %llu VMAs for %zu pages in %zu runs", s,
			       (unsigned long long)ts.nr_vmas, mm->n, runs);
	return 0;
}

/* Everything about slot s's process: VMAs, contents, RSS = present pages. */
static int compare_full(struct fuzz_run *r, int s, int active)
{
	if (compare_vmas(r, s) || compare_pages(r, s, 0, UINT64_MAX, active, NULL))
		return -1;
	uint64_t present = 0;
	if (compare_pages(r, s, 0, UINT64_MAX, 0, &present))
		return -1;
	struct cowvm_task_stats ts;
	cowvm_task_stats(r->task[s], &ts);
	if (ts.rss_anon + ts.rss_shmem != present)
		return diverge(r, "rss", "slot %d: rss_anon %llu + rss_shmem %llu, but pagemap shows %llu "
			       "present pages other than the zero page", s, (unsigned long long)ts.rss_anon,
			       (unsigned long long)ts.rss_shmem, (unsigned long long)present);
	r->st.compares++;
	return 0;
}

/* Is slot s the first slot of its process?  (Threads share the model mm.) */
static int first_of_mm(const struct fuzz_run *r, int s)
{
	if (!r->task[s])
		return 0;
	for (int i = 0; i < s; i++)
		if (r->task[i] && r->mm[i] == r->mm[s])
			return 0;
	return 1;
}

static int compare_all(struct fuzz_run *r, int active)
{
	for (int s = 0; s < FUZZ_SLOTS; s++)
		if (first_of_mm(r, s) && compare_full(r, s, active))
			return -1;
	return 0;
}

/* ---- playing one operation ------------------------------------------------------------------- */

struct touched {
	int slot;             /* -1: none */
	uint64_t start, end;  /* pages to compare */
	int vmas, full, child; /* compare the VMAs; everything; also slot child in full */
	int other;            /* slot + 1 of a second process (dput's source, MERGE's child): its
			       * VMAs and the pages in [start2, end2); 0 none */
	uint64_t start2, end2;
};

static int after_op(struct fuzz_run *r, const struct touched *tc)
{
	if (r->cfg.check_every && r->st.ops % r->cfg.check_every == 0) {
		char why[512];
		r->st.checks++;
		if (cowvm_check(r->vm, why, sizeof(why)))
			return diverge(r, "cowvm_check", "cowvm_check: %s", why);
	}
	for (int s = 0; s < FUZZ_SLOTS; s++)
		if (first_of_mm(r, s) && check_stats(r, s))
			return -1;
	if (tc->slot >= 0 && r->task[tc->slot]) {
		if (tc->full) {
			if (compare_full(r, tc->slot, 0))
				return -1;
		} else {
			if (tc->vmas && compare_vmas(r, tc->slot))
				return -1;
			if (tc->end > tc->start &&
			    compare_pages(r, tc->slot, tc->start & ~(PG - 1), tc->end, 0, NULL))
				return -1;
		}
	}
	if (tc->child >= 0 && r->task[tc->child] && compare_full(r, tc->child, 0))
		return -1;
	if (tc->other > 0 && r->task[tc->other - 1]) {
		int o = tc->other - 1;
		if (compare_vmas(r, o) ||
		    (tc->end2 > tc->start2 && compare_pages(r, o, tc->start2 & ~(PG - 1), tc->end2, 0, NULL)))
			return -1;
	}
	if (r->cfg.compare_every && r->st.ops % r->cfg.compare_every == 0 && compare_all(r, 0))
		return -1;
	return 0;
}

uint64_t fuzz_clamp_len(uint64_t len)
{
	return len > FUZZ_MAX_ACCESS ? FUZZ_MAX_ACCESS : len;
}

static int op_access(struct fuzz_run *r, const struct fuzz_op *op, struct touched *tc)
{
	cowvm_task_t *t = r->task[op->task];
	struct model_mm *mm = r->mm[op->task];
	uint64_t addr = op->addr, len = fuzz_clamp_len(op->len);
	int ret, want;

	switch (op->kind) {
	case FOP_READ:
		memset(r->buf, FILL, len);
		want = model_read(mm, addr, r->buf2, len);
		arm(r, op);
		ret = cowvm_read(t, addr, r->buf, len);
		disarm(r, op);
		if (ret == 0 && want == 0) {
			r->st.long_accesses += len > 64 * PG;
			size_t d = first_diff(r->buf, r->buf2, len);
			if (d < len)
				return diverge(r, "contents", "read %#llx+%llu: byte %#llx is %02x, model %02x",
					       (unsigned long long)addr, (unsigned long long)len,
					       (unsigned long long)(addr + d), r->buf[d], r->buf2[d]);
		} else if (ret == want || (ret == -ENOMEM && absorb(r, op))) {
			if (!all_bytes(r->buf, len, FILL))
				return diverge(r, "moved-bytes", "read %#llx+%llu failed (%d) but wrote into "
					       "the buffer", (unsigned long long)addr, (unsigned long long)len, ret);
		} else {
			return diverge(r, "errno", "read %#llx+%llu returned %d, model %d",
				       (unsigned long long)addr, (unsigned long long)len, ret, want);
		}
		return 0;

	case FOP_WRITE:
		fuzz_fill(r->buf, len, op->seed);
		want = model_write(mm, addr, r->buf, len, 0);
		arm(r, op);
		ret = cowvm_write(t, addr, r->buf, len);
		disarm(r, op);
		if (ret == want) {
			if (!ret) {
				model_poke(mm, addr, r->buf, len);
				r->st.long_accesses += len > 64 * PG;
			}
		} else if (!(ret == -ENOMEM && absorb(r, op))) {
			return diverge(r, "errno", "write %#llx+%llu returned %d, model %d",
				       (unsigned long long)addr, (unsigned long long)len, ret, want);
		}
		*tc = (struct touched){ op->task, addr, range_end(addr, len), 0, 0, -1, 0, 0, 0 };
		return 0;

	case FOP_LOAD64: case FOP_GET_USER: {
		uint64_t v = 0xa5a5a5a5a5a5a5a5ull, m = 0;
		want = model_read(mm, addr, &m, 8);
		arm(r, op);
		ret = op->kind == FOP_LOAD64 ? cowvm_load64(t, addr, &v) : cowvm_get_user(t, addr, &v);
		disarm(r, op);
		const char *name = fuzz_kind_name(op->kind);
		if (ret == 0 && want == 0) {
			if (v != m)
				return diverge(r, "contents", "%s %#llx = %#llx, model %#llx", name,
					       (unsigned long long)addr, (unsigned long long)v,
					       (unsigned long long)m);
			return 0;
		}
		/* an allocation failure: -ENOMEM from the task's own access, -EFAULT from uaccess */
		int allowed = op->kind == FOP_LOAD64 ? ret == -ENOMEM : ret == -EFAULT;
		if (ret != want && !(ret != 0 && allowed && absorb(r, op)))
			return diverge(r, "errno", "%s %#llx returned %d, model %d", name,
				       (unsigned long long)addr, ret, want);
		uint64_t after_fail = op->kind == FOP_LOAD64 ? 0xa5a5a5a5a5a5a5a5ull : 0;
		if (v != after_fail)
			return diverge(r, "moved-bytes", "%s %#llx failed (%d) and left %#llx in the value "
				       "(want %#llx)", name, (unsigned long long)addr, ret,
				       (unsigned long long)v, (unsigned long long)after_fail);
		return 0;
	}

	case FOP_STORE64: case FOP_PUT_USER: {
		uint64_t v;
		fuzz_fill((uint8_t *)&v, 8, op->seed);
		want = model_write(mm, addr, &v, 8, 0);
		arm(r, op);
		ret = op->kind == FOP_STORE64 ? cowvm_store64(t, addr, v) : cowvm_put_user(t, addr, v);
		disarm(r, op);
		int allowed = op->kind == FOP_STORE64 ? ret == -ENOMEM : ret == -EFAULT;
		if (ret == want) {
			if (!ret)
				model_poke(mm, addr, &v, 8);
		} else if (!(ret != 0 && allowed && absorb(r, op))) {
			return diverge(r, "errno", "%s %#llx returned %d, model %d", fuzz_kind_name(op->kind),
				       (unsigned long long)addr, ret, want);
		}
		*tc = (struct touched){ op->task, addr, range_end(addr, 8), 0, 0, -1, 0, 0, 0 };
		return 0;
	}

	case FOP_COPY_FROM: case FOP_COPY_TO: {
		int to = op->kind == FOP_COPY_TO;
		/* Bytes not copied: the kernel's access_ok refuses a range that reaches past
		 * TASK_SIZE_MAX (nc_ok), or - Linux versions differ at that edge - the copy runs
		 * into the guard page and stops there (nc_pf).  Both are accepted. */
		uint64_t nc_ok = model_copy_nc(mm, addr, len, to, 1);
		uint64_t nc_pf = model_copy_nc(mm, addr, len, to, 0);
		size_t nc;
		if (to) {
			fuzz_fill(r->buf, len, op->seed);
			arm(r, op);
			nc = cowvm_copy_to_user(t, addr, r->buf, len);
			disarm(r, op);
		} else {
			memset(r->buf, FILL, len);
			arm(r, op);
			nc = cowvm_copy_from_user(t, r->buf, addr, len);
			disarm(r, op);
		}
		int ok = nc == nc_ok || nc == nc_pf;
		/* an allocation failure stops the copy at an earlier page edge */
		if (!ok && nc <= len && nc > nc_pf && (nc == len || ((addr + (len - nc)) & (PG - 1)) == 0) &&
		    absorb(r, op))
			ok = 1;
		if (!ok)
			return diverge(r, "copy-count", "%s %#llx+%llu left %zu bytes, model %llu (%llu by "
				       "access_ok)", fuzz_kind_name(op->kind), (unsigned long long)addr,
				       (unsigned long long)len, nc, (unsigned long long)nc_pf,
				       (unsigned long long)nc_ok);
		uint64_t done = len - nc;
		r->st.long_accesses += done > 64 * PG;
		if (to) {
			model_poke(mm, addr, r->buf, done);
			*tc = (struct touched){ op->task, addr, range_end(addr, len), 0, 0, -1, 0, 0, 0 };
			return 0;
		}
		model_peek(mm, addr, r->buf2, done);
		size_t d = first_diff(r->buf, r->buf2, done);
		if (d < done)
			return diverge(r, "contents", "copy_from_user %#llx+%llu: byte %#llx is %02x, model %02x",
				       (unsigned long long)addr, (unsigned long long)len,
				       (unsigned long long)(addr + d), r->buf[d], r->buf2[d]);
		if (!all_bytes(r->buf + done, nc, 0))
			return diverge(r, "copy-tail", "copy_from_user %#llx+%llu left %zu bytes but did not "
				       "zero all of them", (unsigned long long)addr, (unsigned long long)len, nc);
		return 0;
	}
	}
	return 0;
}

/* Pages of mm in [start, end) were unmapped, zapped or mapped over: pins on them no longer
 * see what the process sees. */
static void pins_forget(struct fuzz_run *r, const struct model_mm *mm, uint64_t start, uint64_t end)
{
	for (int i = 0; i < FUZZ_PINS; i++) {
		struct fuzz_pin *p = &r->pins[i];
		if (p->pin && p->mm == mm && p->addr < end && start < p->addr + p->npages * PG)
			p->coherent = 0;
	}
}

/* A task slot of the process mm, or -1. */
static int slot_of(const struct fuzz_run *r, const struct model_mm *mm)
{
	for (int s = 0; s < FUZZ_SLOTS; s++)
		if (r->task[s] && r->mm[s] == mm)
			return s;
	return -1;
}

/* The write made through a pin right after it is taken: where and how long, from the seed. */
void fuzz_pin_first_write(const struct fuzz_op *op, uint64_t *off, uint64_t *len)
{
	uint64_t size = op->len * PG;
	*off = op->seed % size;
	*len = 1 + (op->seed >> 20) % (size - *off < 256 ? size - *off : 256);
}

static int op_pin(struct fuzz_run *r, const struct fuzz_op *op, struct touched *tc)
{
	struct fuzz_pin *fp = &r->pins[op->slot];
	switch (op->kind) {
	case FOP_PIN: {
		cowvm_task_t *t = r->task[op->task];
		struct model_mm *mm = r->mm[op->task];
		unsigned flags = (unsigned)op->arg;
		int write = !!(flags & COWVM_FOLL_WRITE);
		int want = model_gup_check(mm, op->addr, op->len, write);
		arm(r, op);
		errno = 0;
		cowvm_pin_t *pin = cowvm_pin_user_pages(t, op->addr, op->len, flags);
		int e = errno;
		disarm(r, op);
		/* past TASK_SIZE_MAX: Linux's GUP finds no VMA (EFAULT); cowvm's API calls the
		 * range invalid (EINVAL).  GUP is not a system call: either is accepted. */
		int beyond = op->len > MODEL_TASK_SIZE_MAX / PG || op->addr > MODEL_TASK_SIZE_MAX - op->len * PG;
		if (!pin) {
			if ((want == -EFAULT && (e == EFAULT || (beyond && e == EINVAL))) ||
			    ((e == ENOMEM || e == EFAULT) && absorb(r, op)))
				return 0;
			return diverge(r, "errno", "pin_user_pages(%#llx, %llu pages, %#x) failed with errno "
				       "%d, model %d", (unsigned long long)op->addr, (unsigned long long)op->len,
				       flags, e, want);
		}
		*fp = (struct fuzz_pin){ pin, mm, op->addr, op->len, flags,
					 !(flags & COWVM_FOLL_GET) && (flags & (COWVM_FOLL_WRITE | COWVM_FOLL_LONGTERM)) };
		/* The lockless walk looks at PTEs only, not at VMAs: on x86 a PROT_WRITE- or
		 * PROT_EXEC-only page has a readable PTE, so a FOLL_FAST read pin of it may succeed
		 * where the slow path's check_vma_flags refuses - in Linux as in cowvm. */
		int fast_ok = (flags & COWVM_FOLL_FAST) && !write;
		for (uint64_t i = 0; fast_ok && i < op->len; i++) {
			const struct model_page *p = model_find(mm, op->addr + i * PG);
			fast_ok = p && model_readable(p->prot);
		}
		if (want && !fast_ok)
			return diverge(r, "errno", "pin_user_pages(%#llx, %llu pages, %#x) succeeded, model %d",
				       (unsigned long long)op->addr, (unsigned long long)op->len, flags, want);
		uint64_t size = op->len * PG;
		int ret = cowvm_pin_read(pin, 0, r->buf, size);
		if (ret)
			return diverge(r, "errno", "pin_read of a new pin returned %d", ret);
		model_peek(mm, op->addr, r->buf2, size);
		size_t d = first_diff(r->buf, r->buf2, size);
		if (d < size)
			return diverge(r, "contents", "pin of %#llx (%#x): byte %#llx is %02x, the process's %02x",
				       (unsigned long long)op->addr, flags, (unsigned long long)(op->addr + d),
				       r->buf[d], r->buf2[d]);
		if (write) { /* at this instant the pinned page is the process's: it must see this */
			uint64_t off, len;
			fuzz_pin_first_write(op, &off, &len);
			fuzz_fill(r->buf, len, op->seed);
			ret = cowvm_pin_write(pin, off, r->buf, len);
			if (ret)
				return diverge(r, "errno", "pin_write to a new write pin returned %d", ret);
			model_poke(mm, op->addr + off, r->buf, len);
		}
		*tc = (struct touched){ op->task, op->addr, op->addr + size, 0, 0, -1, 0, 0, 0 };
		return 0;
	}
	case FOP_UNPIN:
		cowvm_unpin(fp->pin);
		memset(fp, 0, sizeof(*fp));
		return 0;
	case FOP_PIN_IO: {
		uint64_t size = fp->npages * PG, off = op->addr, len = fuzz_clamp_len(op->len);
		int write = op->flags & 1, want = 0;
		if (off > size || len > size - off)
			want = -EINVAL;
		else if (write && !(fp->flags & COWVM_FOLL_WRITE))
			want = -EPERM;
		int check = fp->coherent && fp->mm;
		if (want == 0 && write && !check) {
			r->st.skipped++; /* would write behind the model's back */
			return 0;
		}
		int ret;
		if (write) {
			fuzz_fill(r->buf, len, op->seed);
			ret = cowvm_pin_write(fp->pin, off, r->buf, len);
		} else {
			ret = cowvm_pin_read(fp->pin, off, r->buf, len);
		}
		if (ret != want)
			return diverge(r, "errno", "pin_%s(+%#llx, %llu) on a %llu-page pin (%#x) returned %d, "
				       "expected %d", write ? "write" : "read", (unsigned long long)off,
				       (unsigned long long)len, (unsigned long long)fp->npages, fp->flags, ret, want);
		if (ret || !check)
			return 0;
		if (write) {
			model_poke(fp->mm, fp->addr + off, r->buf, len);
			*tc = (struct touched){ slot_of(r, fp->mm), fp->addr + off, fp->addr + off + len, 0, 0, -1, 0, 0, 0 };
			return 0;
		}
		model_peek(fp->mm, fp->addr + off, r->buf2, len);
		size_t d = first_diff(r->buf, r->buf2, len);
		if (d < len)
			return diverge(r, "contents", "coherent pin (%#x) of %#llx: byte %#llx is %02x, the "
				       "process's %02x", fp->flags, (unsigned long long)fp->addr,
				       (unsigned long long)(fp->addr + off + d), r->buf[d], r->buf2[d]);
		return 0;
	}
	case FOP_REMOTE: {
		cowvm_task_t *t = r->task[op->task];
		struct model_mm *mm = r->mm[op->task];
		uint64_t addr = op->addr, len = fuzz_clamp_len(op->len);
		int write = op->flags & 1;
		uint64_t can = model_remote_len(mm, addr, len, write);
		int64_t want = len == 0 ? 0 : can ? (int64_t)can : -EIO;
		if (write)
			fuzz_fill(r->buf, len, op->seed);
		else
			memset(r->buf, FILL, len);
		arm(r, op);
		int64_t got = cowvm_access_remote(t, addr, r->buf, len, write);
		disarm(r, op);
		/* an allocation failure stops it at an earlier page edge */
		int ok = got == want ||
			 ((got == -EIO || (got > 0 && (uint64_t)got < can && ((addr + (uint64_t)got) & (PG - 1)) == 0)) &&
			  want > 0 && absorb(r, op));
		if (!ok)
			return diverge(r, "remote", "access_remote(%#llx, %llu, %s) returned %lld, model %lld",
				       (unsigned long long)addr, (unsigned long long)len,
				       write ? "write" : "read", (long long)got, (long long)want);
		uint64_t done = got > 0 ? (uint64_t)got : 0;
		if (write) {
			model_poke(mm, addr, r->buf, done);
			*tc = (struct touched){ op->task, addr, range_end(addr, len), 0, 0, -1, 0, 0, 0 };
			return 0;
		}
		model_peek(mm, addr, r->buf2, done);
		size_t d = first_diff(r->buf, r->buf2, done);
		if (d < done)
			return diverge(r, "contents", "access_remote read %#llx+%llu: byte %#llx is %02x, model %02x",
				       (unsigned long long)addr, (unsigned long long)len,
				       (unsigned long long)(addr + d), r->buf[d], r->buf2[d]);
		if (!all_bytes(r->buf + done, len - done, FILL))
			return diverge(r, "moved-bytes", "access_remote read %#llx+%llu moved %llu bytes but wrote "
				       "beyond them", (unsigned long long)addr, (unsigned long long)len,
				       (unsigned long long)done);
		return 0;
	}
	}
	return 0;
}

/* The known-bug tolerance FUZZ_AVOID_MPROTECT_MERGE: take the protection of the model's
 * pages in [start, end) from cowvm's VMAs (a page cowvm does not map is left to the checks). */
static int resync_prot(struct fuzz_run *r, int s, uint64_t start, uint64_t end)
{
	struct vma_list l = { 0 };
	if (cowvm_for_each_vma(r->task[s], collect_vma, &l)) {
		free(l.v);
		return diverge(r, "vma-walk", "cowvm_for_each_vma failed");
	}
	struct model_mm *mm = r->mm[s];
	for (size_t i = model_index(mm, start), k = 0; i < mm->n && mm->pages[i].addr < end; i++) {
		while (k < l.n && l.v[k].end <= mm->pages[i].addr)
			k++;
		if (k < l.n && l.v[k].start <= mm->pages[i].addr)
			mm->pages[i].prot = (uint8_t)(l.v[k].prot & 7);
	}
	free(l.v);
	return 0;
}

static int op_memory_call(struct fuzz_run *r, const struct fuzz_op *op, struct touched *tc)
{
	cowvm_task_t *t = r->task[op->task];
	struct model_mm *mm = r->mm[op->task];
	uint64_t addr = op->addr, len = op->len;
	int ret, want;

	*tc = (struct touched){ op->task, addr, range_end(addr, MODEL_PAGE_ALIGN(len) ? MODEL_PAGE_ALIGN(len) : len),
				1, 0, -1, 0, 0, 0 };
	switch (op->kind) {
	case FOP_MMAP: {
		uint64_t where = 0;
		want = model_mmap_check(mm, addr, len, op->arg, op->flags, &where);
		arm(r, op);
		int64_t got = cowvm_mmap(t, addr, len, op->arg, op->flags);
		disarm(r, op);
		if (want < 0 || got < 0) {
			if (got == want)
				return 0;
			if (want == 0 && got == -ENOMEM && absorb(r, op))
				return 0;
			return diverge(r, "errno", "mmap(%#llx, %#llx, prot %#x, flags %#x) returned %lld, "
				       "model %d", (unsigned long long)addr, (unsigned long long)len,
				       op->arg, op->flags, (long long)got, want);
		}
		if (where != MODEL_ANYWHERE && (uint64_t)got != where)
			return diverge(r, "mmap-addr", "mmap(%#llx, %#llx, prot %#x, flags %#x) mapped at "
				       "%#llx, model %#llx", (unsigned long long)addr, (unsigned long long)len,
				       op->arg, op->flags, (long long)got, (unsigned long long)where);
		if (where == MODEL_ANYWHERE && !model_mmap_fits(mm, (uint64_t)got, len))
			return diverge(r, "mmap-addr", "mmap(%#llx, %#llx, prot %#x, flags %#x) chose %#llx, "
				       "which is not a free range of user space", (unsigned long long)addr,
				       (unsigned long long)len, op->arg, op->flags, (long long)got);
		model_mmap_apply(mm, (uint64_t)got, len, op->arg, op->flags);
		pins_forget(r, mm, (uint64_t)got, (uint64_t)got + MODEL_PAGE_ALIGN(len));
		tc->start = (uint64_t)got;
		tc->end = (uint64_t)got + MODEL_PAGE_ALIGN(len);
		return 0;
	}
	case FOP_MUNMAP:
		want = model_munmap(mm, addr, len, 0);
		arm(r, op);
		ret = cowvm_munmap(t, addr, len);
		disarm(r, op);
		if (ret == want) {
			model_munmap(mm, addr, len, 1);
			if (!ret)
				pins_forget(r, mm, addr, range_end(addr, MODEL_PAGE_ALIGN(len)));
		} else if (!(want == 0 && ret == -ENOMEM && absorb(r, op)))
			return diverge(r, "errno", "munmap(%#llx, %#llx) returned %d, model %d",
				       (unsigned long long)addr, (unsigned long long)len, ret, want);
		return 0;
	case FOP_MPROTECT:
		want = model_mprotect(mm, addr, len, op->arg, 0);
		ret = cowvm_mprotect(t, addr, len, op->arg);
		if (ret == -ENOMEM && (want == 0 || want == -ENOMEM) &&
		    (r->cfg.avoid & FUZZ_AVOID_MPROTECT_MERGE))
			return resync_prot(r, op->task, addr, range_end(addr, MODEL_PAGE_ALIGN(len)));
		if (ret != want)
			return diverge(r, "errno", "mprotect(%#llx, %#llx, %#x) returned %d, model %d",
				       (unsigned long long)addr, (unsigned long long)len, op->arg, ret, want);
		model_mprotect(mm, addr, len, op->arg, 1);
		return 0;
	case FOP_MADVISE:
		want = model_madvise(mm, addr, len, op->arg, 0);
		if (op->arg == MADV_POPULATE_READ || op->arg == MADV_POPULATE_WRITE) {
			/* faults that allocate: an allocation failure stops it with -ENOMEM */
			arm(r, op);
			ret = cowvm_madvise(t, addr, len, op->arg);
			disarm(r, op);
			if (ret != want && !(ret == -ENOMEM && absorb(r, op)))
				return diverge(r, "errno", "madvise(%#llx, %#llx, populate %d) returned %d, model %d",
					       (unsigned long long)addr, (unsigned long long)len, op->arg, ret, want);
			return 0;
		}
		ret = cowvm_madvise(t, addr, len, op->arg);
		if (ret != want)
			return diverge(r, "errno", "madvise(%#llx, %#llx, %d) returned %d, model %d",
				       (unsigned long long)addr, (unsigned long long)len, op->arg, ret, want);
		model_madvise(mm, addr, len, op->arg, 1);
		if (op->arg == MADV_DONTNEED)
			pins_forget(r, mm, addr, range_end(addr, MODEL_PAGE_ALIGN(len)));
		return 0;
	case FOP_BRK: {
		uint64_t old = mm->brk, expect = model_brk(mm, addr, 0);
		arm(r, op);
		int64_t got = cowvm_brk(t, addr);
		disarm(r, op);
		if ((uint64_t)got == expect) {
			model_brk(mm, addr, 1);
			if (expect < old)
				pins_forget(r, mm, MODEL_PAGE_ALIGN(expect), MODEL_PAGE_ALIGN(old));
		}
		else if (!((uint64_t)got == old && absorb(r, op)))
			return diverge(r, "brk", "brk(%#llx) returned %#llx, model %#llx (break was %#llx)",
				       (unsigned long long)addr, (long long)got, (unsigned long long)expect,
				       (unsigned long long)old);
		uint64_t lo = old < mm->brk ? old : mm->brk, hi = old < mm->brk ? mm->brk : old;
		tc->start = lo & ~(PG - 1);
		tc->end = MODEL_PAGE_ALIGN(hi) + PG;
		return 0;
	}
	}
	return 0;
}

/* ---- dput / dget --------------------------------------------------------------------------------
 *
 * COPY and ZERO: the return value against model_dcopy / model_dzero, then the destination's
 * pages and VMAs and the source's (contents unchanged, VMAs as before) through after_op.  A
 * page a COPY mapped in the destination to receive head or tail bytes must be private and
 * have the protection of a source page that gave it bytes (the model cannot say which VMA's
 * protection cowvm takes when two feed one page; it takes cowvm's among those).
 *
 * SNAP: 0 and the model records the child's bytes.  MERGE: the return value (0, or -EBADE
 * with conflicts), cowvm_merge_report (conflicts and the first one exactly; the page counters
 * bounded by what the model knows must have been examined), the parent's range and the
 * child's (unchanged).  -ENOENT and -EFAULT reset the report to zeros; -EINVAL and a zero
 * length leave it.
 *
 * -ENOMEM met by an allocation failure (injected, or the machine short of frames): COPY and
 * ZERO may leave the destination partly done, MERGE partly merged.  The model then takes the
 * destination from cowvm (dput_resync, merge_follow), after checking what the contract still
 * promises: bytes outside the range unchanged; every byte inside either its old or its new
 * value (or zero in the middle: a twin VMA whose page-table copy did not finish); a page
 * unmapped only in the replaced middle; a MERGE changes whole pages.
 */

static const struct cowvm_vma_info *vma_find(const struct vma_list *l, uint64_t a)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->v[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n && l->v[lo].start <= a ? &l->v[lo] : NULL;
}

/* The bytes of slot s's mapped page a, disturbing as little as a comparison does. */
static int read_page(struct fuzz_run *r, int s, uint64_t a, int shared, uint8_t *out)
{
	uint64_t pm = cowvm_pagemap(r->task[s], a);
	if (!shared && !(pm & (COWVM_PM_PRESENT | COWVM_PM_SWAP))) {
		memset(out, 0, PG);
		return 0;
	}
	int64_t got = cowvm_access_remote(r->task[s], a, out, PG, 0);
	if (got != (int64_t)PG)
		return diverge(r, "resync-read", "slot %d: reading mapped page %#llx (%s) to follow a "
			       "dput cut short returned %lld", s, (unsigned long long)a,
			       shared ? "shared" : "private", (long long)got);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * A COPY (saved != NULL: the source as it was) or ZERO into slot ds at [dst, dst + len)
 * returned -ENOMEM: take the destination's pages from cowvm, checking what must still hold.
 */
static int dput_resync(struct fuzz_run *r, int ss, int ds, const struct model_src *saved,
		       uint64_t src, uint64_t dst, uint64_t len)
{
	struct model_mm *dmm = r->mm[ds];
	uint64_t end = dst + len, lo = dst & ~(PG - 1), hi = MODEL_PAGE_ALIGN(end), delta = dst - src;
	uint64_t mlo = 0, mhi = 0; /* the middle the call replaces whole */
	if (!saved) {
		mlo = MODEL_PAGE_ALIGN(dst), mhi = end & ~(PG - 1);
	} else if ((delta & (PG - 1)) == 0 && MODEL_PAGE_ALIGN(src) < ((src + len) & ~(PG - 1))) {
		mlo = MODEL_PAGE_ALIGN(src) + delta;
		mhi = ((src + len) & ~(PG - 1)) + delta;
	}
	struct vma_list l = { 0 };
	if (cowvm_for_each_vma(r->task[ds], collect_vma, &l)) {
		free(l.v);
		return diverge(r, "vma-walk", "cowvm_for_each_vma failed");
	}
	/* the pages to look at: the model's and cowvm's in [lo, hi) */
	size_t n = 0, cap = 64;
	uint64_t *addrs = malloc(cap * sizeof(*addrs));
	for (size_t i = model_index(dmm, lo); i < dmm->n && dmm->pages[i].addr < hi; i++) {
		if (n == cap)
			addrs = realloc(addrs, (cap *= 2) * sizeof(*addrs));
		addrs[n++] = dmm->pages[i].addr;
	}
	for (size_t k = 0; k < l.n; k++)
		for (uint64_t a = l.v[k].start < lo ? lo : l.v[k].start; a < l.v[k].end && a < hi; a += PG) {
			if (n == cap)
				addrs = realloc(addrs, (cap *= 2) * sizeof(*addrs));
			addrs[n++] = a;
		}
	qsort(addrs, n, sizeof(*addrs), cmp_u64);
	uint8_t *pre = r->buf, *got = r->buf2;
	int ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		uint64_t a = addrs[i];
		if (i && addrs[i - 1] == a)
			continue;
		const struct model_page *old = model_find(dmm, a);
		const struct cowvm_vma_info *v = vma_find(&l, a);
		int middle = a >= mlo && a < mhi;
		if (!v) {
			if (!old)
				continue;
			if (!middle) {
				ret = diverge(r, "dput-enomem", "%s cut short by -ENOMEM unmapped page %#llx of slot "
					      "%d, outside the middle it replaces", saved ? "COPY" : "ZERO",
					      (unsigned long long)a, ds);
				break;
			}
			model_unmap_page(dmm, a);
			continue;
		}
		if (old)
			memcpy(pre, model_page_bytes(old), PG);
		else
			memset(pre, 0, PG);
		if ((ret = read_page(r, ds, a, v->shared, got)))
			break;
		uint64_t b0 = a < dst ? dst - a : 0, b1 = a + PG > end ? end - a : PG;
		/* a byte inside may hold its new value: the source's (if its page was mapped) or 0 */
		for (uint64_t b = 0; b < PG; b++) {
			int inside = b >= b0 && b < b1;
			int ok = got[b] == pre[b];
			if (!ok && inside) {
				/* a twin whose page-table copy did not finish reads zeros where its
				 * PTEs are missing: "partly copied", accepted in the middle */
				if (!saved || (middle && got[b] == 0)) {
					ok = got[b] == 0;
				} else {
					const struct model_page *sp = model_src_page(saved, a + b - delta);
					ok = sp && got[b] == model_src_bytes(saved, sp)[(a + b - delta) & (PG - 1)];
				}
			}
			if (!ok) {
				ret = diverge(r, "dput-enomem", "%s into slot %d cut short by -ENOMEM: byte %#llx "
					      "(%s the range) is %02x, neither its old value %02x nor the new one",
					      saved ? "COPY" : "ZERO", ds, (unsigned long long)(a + b),
					      inside ? "inside" : "outside", got[b], pre[b]);
				break;
			}
		}
		if (ret)
			break;
		int dontfork = !!(v->flags & VM_DONTCOPY_BIT), wipe = !!(v->flags & VM_WIPEONFORK_BIT);
		if (!v->shared) {
			model_set_private(dmm, a, v->prot, dontfork, wipe, got);
			continue;
		}
		/* a shared page: the old one's object, or the source's (a twin in the middle) */
		const struct model_page *sp = saved && middle ? model_src_page(saved, a - delta) : NULL;
		struct model_object *obj = NULL;
		uint64_t index = 0;
		int old_ok = old && old->obj, twin_ok = sp && sp->obj;
		if (old_ok && twin_ok) { /* which frame: the source's page is the same frame */
			uint8_t x;
			cowvm_access_remote(r->task[ss], a - delta, &x, 1, 0);
			uint64_t ps = cowvm_pagemap(r->task[ss], a - delta), pd = cowvm_pagemap(r->task[ds], a);
			old_ok = !((ps & COWVM_PM_PRESENT) && (pd & COWVM_PM_PRESENT) &&
				   (ps & COWVM_PM_PFN_MASK) == (pd & COWVM_PM_PFN_MASK));
			twin_ok = !old_ok;
		}
		if (old_ok)
			obj = old->obj, index = old->index;
		else if (twin_ok)
			obj = sp->obj, index = sp->index;
		else {
			ret = diverge(r, "dput-enomem", "%s into slot %d cut short by -ENOMEM left a shared "
				      "page at %#llx where neither the destination nor the source had one",
				      saved ? "COPY" : "ZERO", ds, (unsigned long long)a);
			break;
		}
		model_object_write(obj, index, got);
		model_set_shared(dmm, a, v->prot, dontfork, obj, index);
	}
	free(addrs);
	free(l.v);
	return ret;
}

struct merge_follow {
	struct fuzz_run *r;
	int ps;
};

/* A MERGE cut short: each page it would change holds either its old or its merged bytes. */
static int merge_follow(void *arg, uint64_t y, const uint8_t *pre, const uint8_t *post)
{
	struct merge_follow *f = arg;
	struct fuzz_run *r = f->r;
	if (r->failed)
		return 0;
	const struct model_page *p = model_find(r->mm[f->ps], y);
	if (read_page(r, f->ps, y, p && p->obj, r->buf2))
		return 0;
	if (!memcmp(r->buf2, post, PG))
		return 1;
	if (!memcmp(r->buf2, pre, PG))
		return 0;
	size_t d = first_diff(r->buf2, post, PG);
	diverge(r, "merge-enomem", "MERGE cut short by -ENOMEM: parent page %#llx is neither as before "
		"nor merged (byte +%#zx: %02x, merged %02x, before %02x)", (unsigned long long)y, d,
		r->buf2[d], post[d], pre[d]);
	return 0;
}

static int op_merge(struct fuzz_run *r, const struct fuzz_op *op, struct touched *tc)
{
	int ps = op->task, cs = op->slot;
	cowvm_task_t *pt = r->task[ps], *ct = r->task[cs];
	struct model_mm *pmm = r->mm[ps], *cmm = r->mm[cs];
	uint64_t pa = op->addr, ca = op->seed, len = op->len;
	int alt;
	struct model_merge_res mr;
	int want = model_dmerge(pmm, pa, cmm, ca, len, 0, &alt, NULL, NULL, NULL);
	struct cowvm_merge_report before, rep;
	cowvm_merge_report(pt, &before);
	arm(r, op);
	int ret = cowvm_dget(pt, ct, COWVM_MERGE, pa, ca, len);
	disarm(r, op);
	cowvm_merge_report(pt, &rep);
	*tc = (struct touched){ ps, pa, range_end(pa, len), 0, 0, -1, cs + 1, ca, range_end(ca, len) };
	if (want == 0 && len) {
		pins_forget(r, pmm, pa, pa + len);
		if (ret == -ENOMEM && absorb(r, op)) {
			struct merge_follow f = { r, ps };
			model_dmerge(pmm, pa, cmm, ca, len, 1, NULL, &mr, merge_follow, &f);
			r->st.dput_resyncs++;
			return r->failed ? -1 : 0;
		}
		if (ret != 0 && ret != -EBADE)
			return diverge(r, "errno", "dget MERGE(%#llx <- %#llx, %#llx) returned %d, model 0 or "
				       "-EBADE", (unsigned long long)pa, (unsigned long long)ca,
				       (unsigned long long)len, ret);
		model_dmerge(pmm, pa, cmm, ca, len, 1, NULL, &mr, NULL, NULL);
		int expect = mr.conflicts ? -EBADE : 0;
		r->st.merges++;
		r->st.merge_conflicts += mr.conflicts != 0;
		r->st.merge_pages += mr.pages_changed;
		uint64_t npages = len / PG, tables = ((ca + len - 1) >> 21) - (ca >> 21) + 1;
		const char *what = NULL;
		if (ret != expect)
			what = "return value";
		else if (rep.conflicts != mr.conflicts || rep.first_conflict != mr.first_conflict)
			what = "conflicts or first_conflict";
		else if (rep.pages_merged < mr.pages_conflict)
			what = "pages_merged below the pages with a conflict";
		else if (rep.pages_shared + rep.pages_copied + rep.pages_merged < mr.pages_changed)
			what = "fewer pages taken or merged than changed on both sides of the snapshot";
		else if (rep.pages_skipped + rep.pages_shared + rep.pages_copied + rep.pages_merged > npages)
			what = "more pages counted than the range has";
		else if (rep.tables_skipped > tables)
			what = "more tables skipped than the range touches";
		if (what)
			return diverge(r, "merge", "dget MERGE(%#llx <- %#llx, %#llx) returned %d (model %d), "
				       "report: conflicts %llu first %#llx skipped %llu tables %llu shared %llu "
				       "copied %llu merged %llu; model: conflicts %llu first %#llx, %llu pages "
				       "changed on both sides, %llu with conflicts (%s)",
				       (unsigned long long)pa, (unsigned long long)ca, (unsigned long long)len,
				       ret, expect, (unsigned long long)rep.conflicts,
				       (unsigned long long)rep.first_conflict, (unsigned long long)rep.pages_skipped,
				       (unsigned long long)rep.tables_skipped, (unsigned long long)rep.pages_shared,
				       (unsigned long long)rep.pages_copied, (unsigned long long)rep.pages_merged,
				       (unsigned long long)mr.conflicts, (unsigned long long)mr.first_conflict,
				       (unsigned long long)mr.pages_changed, (unsigned long long)mr.pages_conflict,
				       what);
		return 0;
	}
	if (ret != want && !(alt && ret == alt))
		return diverge(r, "errno", "dget MERGE(%#llx <- %#llx, %#llx) returned %d, model %d%s",
			       (unsigned long long)pa, (unsigned long long)ca, (unsigned long long)len, ret,
			       want, alt ? " (or -EFAULT)" : "");
	struct cowvm_merge_report zero = { 0 };
	const struct cowvm_merge_report *expect = ret == -ENOENT || ret == -EFAULT ? &zero : &before;
	if (memcmp(&rep, expect, sizeof(rep)))
		return diverge(r, "merge", "dget MERGE(%#llx <- %#llx, %#llx) returned %d but the report "
			       "(conflicts %llu, merged %llu) is not %s", (unsigned long long)pa,
			       (unsigned long long)ca, (unsigned long long)len, ret,
			       (unsigned long long)rep.conflicts, (unsigned long long)rep.pages_merged,
			       expect == &zero ? "reset to zeros" : "the one before");
	return 0;
}

static int op_dput(struct fuzz_run *r, const struct fuzz_op *op, struct touched *tc)
{
	int get = op->kind == FOP_DGET, ps = op->task, cs = op->slot, code = op->arg;
	cowvm_task_t *pt = r->task[ps], *ct = r->task[cs];
	uint64_t pa = op->addr, ca = op->seed, len = op->len;
	const char *name = get ? "dget" : "dput";
	int (*call)(cowvm_task_t *, cowvm_task_t *, int, uint64_t, uint64_t, uint64_t) =
		get ? cowvm_dget : cowvm_dput;
	int ret;
	if (code != COWVM_COPY && code != COWVM_ZERO && code != (get ? COWVM_MERGE : COWVM_SNAP)) {
		ret = call(pt, ct, code, pa, ca, len);
		if (ret != -EINVAL)
			return diverge(r, "errno", "%s with op %d returned %d, expected -EINVAL", name, code, ret);
		*tc = (struct touched){ ps, 0, 0, 1, 0, -1, cs + 1, 0, 0 };
		return 0;
	}
	if (code == COWVM_SNAP) {
		arm(r, op);
		ret = cowvm_dput(pt, ct, COWVM_SNAP, pa, ca, len);
		disarm(r, op);
		if (ret == 0) {
			model_snap_take(r->mm[cs]);
			r->st.snaps++;
		} else if (!(ret == -ENOMEM && absorb(r, op))) {
			return diverge(r, "errno", "dput SNAP returned %d", ret);
		}
		*tc = (struct touched){ cs, 0, 0, 1, 0, -1, 0, 0, 0 };
		return 0;
	}
	if (code == COWVM_MERGE)
		return op_merge(r, op, tc);

	int zero = code == COWVM_ZERO;
	int ss = get ? cs : ps, ds = get ? ps : cs;
	struct model_mm *smm = r->mm[ss], *dmm = r->mm[ds];
	uint64_t src = get ? ca : pa, dst = get ? pa : ca;
	int want = zero ? model_dzero(dmm, dst, len, 0) : model_dcopy(smm, src, dmm, dst, len, 0, NULL, NULL);
	struct model_src *saved = !zero && want == 0 && len ? model_src_save(smm, src, len) : NULL;
	arm(r, op);
	ret = call(pt, ct, code, pa, ca, len);
	disarm(r, op);
	uint64_t lo = dst & ~(PG - 1), hi = range_end(dst, len);
	hi = hi > UINT64_MAX - PG ? UINT64_MAX : MODEL_PAGE_ALIGN(hi);
	*tc = (struct touched){ ds, lo, hi, 1, 0, -1, zero ? 0 : ss + 1, src, range_end(src, len) };
	const char *opname = zero ? "ZERO" : "COPY";
	if (ret == want) {
		if (ret || !len) {
			model_src_free(saved);
			return 0;
		}
		struct model_newpages np = { 0 };
		if (zero)
			model_dzero(dmm, dst, len, 1);
		else
			model_dcopy(smm, src, dmm, dst, len, 1, saved, &np);
		model_src_free(saved);
		pins_forget(r, dmm, lo, hi);
		r->st.dput_ok++;
		r->st.dput_cow += !zero && ((dst - src) & (PG - 1)) == 0 &&
				  MODEL_PAGE_ALIGN(src) < ((src + len) & ~(PG - 1));
		/* pages mapped for head/tail bytes: private, with a contributing source page's
		 * protection (which one, the model leaves to cowvm) */
		if (np.n) {
			struct vma_list l = { 0 };
			int err = cowvm_for_each_vma(r->task[ds], collect_vma, &l);
			for (size_t i = 0; i < np.n && !err && !r->failed; i++) {
				const struct cowvm_vma_info *v = vma_find(&l, np.p[i].addr);
				if (!v || v->shared || !(np.p[i].prots & (1u << (v->prot & 7))))
					diverge(r, "dput-newpage", "%s %s: destination page %#llx (slot %d) that "
						"received bytes into a hole is %s; the source pages that fed it "
						"have protections mask %#x", name, opname,
						(unsigned long long)np.p[i].addr, ds,
						!v ? "not mapped" : v->shared ? "shared" : "of another protection",
						np.p[i].prots);
				else
					model_mprotect(dmm, np.p[i].addr, PG, v->prot & 7, 1);
			}
			free(l.v);
			free(np.p);
			if (err)
				return diverge(r, "vma-walk", "cowvm_for_each_vma failed");
		}
		return r->failed ? -1 : 0;
	}
	if (want == 0 && ret == -ENOMEM && absorb(r, op)) {
		int err = dput_resync(r, ss, ds, saved, src, dst, len);
		model_src_free(saved);
		pins_forget(r, dmm, lo, hi);
		r->st.dput_resyncs++;
		return err;
	}
	model_src_free(saved);
	return diverge(r, "errno", "%s %s(parent %#llx, child %#llx, len %#llx) returned %d, model %d",
		       name, opname, (unsigned long long)pa, (unsigned long long)ca,
		       (unsigned long long)len, ret, want);
}

/* The process mm is gone: the library has freed its snapshots with it. */
static void snaps_forget(struct fuzz_run *r, const struct model_mm *mm)
{
	for (int i = 0; i < FUZZ_SNAPS; i++)
		if (r->snaps[i].snap && r->snaps[i].mm == mm) {
			model_image_free(r->snaps[i].image);
			memset(&r->snaps[i], 0, sizeof(r->snaps[i]));
		}
}

/* Does the run hold a pin (or GET reference) on a page of mm? */
static int mm_pinned(const struct fuzz_run *r, const struct model_mm *mm)
{
	for (int i = 0; i < FUZZ_PINS; i++)
		if (r->pins[i].pin && r->pins[i].mm == mm)
			return 1;
	return 0;
}

/*
 * snapshot: cowvm_snapshot of the task's process into slot op->slot (an older snapshot there,
 * if its process lives, is freed first), and the model's image of the process.  A pinned
 * private page refuses it (-EBUSY): accepted only while the run holds a pin on the process.
 * restore: cowvm_restore to it.  Another process's snapshot is -EINVAL; otherwise the process
 * must equal the image afterwards, page by page and VMA by VMA (checked in full), and pins on
 * it no longer see what it sees.  -ENOMEM (an injected or real shortage) leaves it partly
 * restored; a second restore must finish the job (the contract in mm/snapshot.c).
 */
static int op_snapshot(struct fuzz_run *r, const struct fuzz_op *op, struct touched *tc)
{
	cowvm_task_t *t = r->task[op->task];
	struct model_mm *mm = r->mm[op->task];
	struct fuzz_snap *fs = &r->snaps[op->slot];
	if (op->kind == FOP_SNAPSHOT) {
		if (fs->snap) {
			int ret = cowvm_snapshot_free(fs->snap);
			if (ret)
				return diverge(r, "errno", "cowvm_snapshot_free returned %d", ret);
			model_image_free(fs->image);
			memset(fs, 0, sizeof(*fs));
		}
		arm(r, op);
		errno = 0;
		cowvm_snapshot_t *snap = cowvm_snapshot(t);
		int e = errno;
		disarm(r, op);
		if (!snap) {
			if (e == EBUSY && mm_pinned(r, mm)) {
				r->st.snapshot_busy++;
				return 0;
			}
			if (e == ENOMEM && absorb(r, op))
				return 0;
			return diverge(r, "snapshot", "cowvm_snapshot failed, errno %d%s", e,
				       mm_pinned(r, mm) ? "" : " (no pin held on the process)");
		}
		*fs = (struct fuzz_snap){ snap, mm, model_image_take(mm) };
		r->st.snapshots++;
		*tc = (struct touched){ op->task, 0, 0, 0, 1, -1, 0, 0, 0 }; /* nothing may change */
		return 0;
	}
	int want = fs->mm == mm ? 0 : -EINVAL;
	arm(r, op);
	int ret = cowvm_restore(t, fs->snap);
	disarm(r, op);
	if (ret == -ENOMEM && !want && absorb(r, op))
		ret = cowvm_restore(t, fs->snap); /* the failure met; this one finishes */
	if (ret == -EBUSY && !want && mm_pinned(r, mm))
		return 0;
	if (ret != want)
		return diverge(r, "restore", "cowvm_restore returned %d, the model says %d", ret, want);
	if (want)
		return 0;
	model_image_restore(mm, fs->image);
	pins_forget(r, mm, 0, UINT64_MAX);
	r->st.restores++;
	*tc = (struct touched){ op->task, 0, 0, 0, 1, -1, 0, 0, 0 };
	return 0;
}

static int op_task(struct fuzz_run *r, const struct fuzz_op *op, struct touched *tc)
{
	cowvm_task_t *t = r->task[op->task], *n;
	int e;
	switch (op->kind) {
	case FOP_SPAWN:
		arm(r, op);
		errno = 0;
		n = cowvm_spawn(r->vm);
		e = errno;
		disarm(r, op);
		if (!n) {
			if (e == ENOMEM && absorb(r, op))
				return 0;
			return diverge(r, "spawn", "cowvm_spawn failed, errno %d", e);
		}
		r->task[op->slot] = n;
		r->mm[op->slot] = model_mm_new((uint64_t)cowvm_brk(n, 0));
		*tc = (struct touched){ op->slot, 0, 0, 1, 0, -1, 0, 0, 0 };
		return 0;
	case FOP_FORK: case FOP_THREAD:
		arm(r, op);
		errno = 0;
		n = op->kind == FOP_FORK ? cowvm_fork(t) : cowvm_clone_thread(t);
		e = errno;
		disarm(r, op);
		if (!n) {
			if (e == ENOMEM && absorb(r, op))
				return 0;
			return diverge(r, "errno", "%s failed, errno %d", fuzz_kind_name(op->kind), e);
		}
		r->task[op->slot] = n;
		if (op->kind == FOP_FORK) {
			r->mm[op->slot] = model_mm_fork(r->mm[op->task]);
			*tc = (struct touched){ op->task, 0, 0, 0, 1, op->slot, 0, 0, 0 };
		} else {
			r->mm[op->slot] = r->mm[op->task];
			r->mm[op->slot]->users++;
		}
		return 0;
	case FOP_EXIT: {
		int ret = cowvm_exit(t);
		if (ret)
			return diverge(r, "errno", "cowvm_exit returned %d", ret);
		if (r->mm[op->task]->users == 1) { /* the process is gone; its pins stay held */
			for (int i = 0; i < FUZZ_PINS; i++)
				if (r->pins[i].mm == r->mm[op->task])
					r->pins[i].mm = NULL, r->pins[i].coherent = 0;
			snaps_forget(r, r->mm[op->task]); /* the library freed its snapshots */
		}
		model_mm_put(r->mm[op->task]);
		r->task[op->task] = NULL;
		r->mm[op->task] = NULL;
		return 0;
	}
	}
	return 0;
}

int fuzz_exec(struct fuzz_run *r, const struct fuzz_op *op)
{
	if (r->failed)
		return -1;
	r->st.ops++;
	log_op(r, op);
	int k = op->kind;
	int new_task = k == FOP_SPAWN || k == FOP_FORK || k == FOP_THREAD;
	int no_task = k == FOP_SPAWN || k == FOP_UNPIN || k == FOP_PIN_IO;
	int pin_op = k == FOP_PIN || k == FOP_UNPIN || k == FOP_PIN_IO;
	int two_tasks = k == FOP_DPUT || k == FOP_DGET;
	int snap_op = k == FOP_SNAPSHOT || k == FOP_RESTORE;
	if (k >= FOP_NKINDS || (!no_task && (op->task >= FUZZ_SLOTS || !r->task[op->task])) ||
	    (two_tasks && (op->slot >= FUZZ_SLOTS || !r->task[op->slot])) ||
	    (new_task && (op->slot >= FUZZ_SLOTS || r->task[op->slot])) ||
	    (pin_op && (op->slot >= FUZZ_PINS ||
			(k == FOP_PIN ? r->pins[op->slot].pin != NULL : r->pins[op->slot].pin == NULL))) ||
	    (snap_op && (op->slot >= FUZZ_SNAPS || (k == FOP_RESTORE && !r->snaps[op->slot].snap)))) {
		r->st.skipped++; /* a replayed list whose task is gone */
		return 0;
	}
	r->st.by_kind[k]++;
	struct touched tc = { -1, 0, 0, 0, 0, -1, 0, 0, 0 };
	int ret;
	switch (k) {
	case FOP_SPAWN: case FOP_FORK: case FOP_THREAD: case FOP_EXIT:
		ret = op_task(r, op, &tc);
		break;
	case FOP_MMAP: case FOP_MUNMAP: case FOP_MPROTECT: case FOP_MADVISE: case FOP_BRK:
		ret = op_memory_call(r, op, &tc);
		break;
	case FOP_COMPARE:
		ret = compare_all(r, 1);
		break;
	case FOP_PIN: case FOP_UNPIN: case FOP_PIN_IO: case FOP_REMOTE:
		ret = op_pin(r, op, &tc);
		break;
	case FOP_DPUT: case FOP_DGET:
		ret = op_dput(r, op, &tc);
		break;
	case FOP_SNAPSHOT: case FOP_RESTORE:
		ret = op_snapshot(r, op, &tc);
		break;
	default:
		ret = op_access(r, op, &tc);
		break;
	}
	if (ret)
		return -1;
	return after_op(r, &tc);
}

int fuzz_finish(struct fuzz_run *r)
{
	if (r->failed)
		return -1;
	r->st.ops++; /* the finish is reported as one step past the last operation */
	cowvm_fail_alloc(r->vm, COWVM_FAIL_OFF, 0);
	if (compare_all(r, 1))
		return -1;
	for (int s = 0; s < FUZZ_SLOTS; s++) {
		if (!r->task[s])
			continue;
		int ret = cowvm_exit(r->task[s]);
		model_mm_put(r->mm[s]);
		r->task[s] = NULL;
		r->mm[s] = NULL;
		if (ret)
			return diverge(r, "errno", "cowvm_exit returned %d", ret);
	}
	for (int i = 0; i < FUZZ_SNAPS; i++) { /* freed with their processes */
		model_image_free(r->snaps[i].image);
		memset(&r->snaps[i], 0, sizeof(r->snaps[i]));
	}
	char why[512];
	if (cowvm_check(r->vm, why, sizeof(why)))
		return diverge(r, "cowvm_check", "cowvm_check after every task exited: %s", why);
	for (int i = 0; i < FUZZ_PINS; i++) { /* pins outlive their processes; now let go */
		if (r->pins[i].pin)
			cowvm_unpin(r->pins[i].pin);
		memset(&r->pins[i], 0, sizeof(r->pins[i]));
	}
	if (cowvm_check(r->vm, why, sizeof(why)))
		return diverge(r, "cowvm_check", "cowvm_check after every pin was dropped: %s", why);
	struct cowvm_vmstat vs;
	cowvm_vmstat(r->vm, &vs);
	if (vs.nr_free_pages != r->free_after_create)
		return diverge(r, "leak", "%lld frames not returned after every task exited (free %llu, "
			       "after create %llu)", (long long)(r->free_after_create - vs.nr_free_pages),
			       (unsigned long long)vs.nr_free_pages,
			       (unsigned long long)r->free_after_create);
	if (vs.nr_anon_pages || vs.nr_shmem || vs.nr_page_table_pages || vs.nr_zero_page_mappings)
		return diverge(r, "leak", "after every task exited: nr_anon_pages %llu nr_shmem %llu "
			       "nr_page_table_pages %llu nr_zero_page_mappings %llu",
			       (unsigned long long)vs.nr_anon_pages, (unsigned long long)vs.nr_shmem,
			       (unsigned long long)vs.nr_page_table_pages,
			       (unsigned long long)vs.nr_zero_page_mappings);
	return 0;
}

int fuzz_replay(const struct fuzz_config *cfg, const struct fuzz_op *ops, size_t n, int quiet,
		char *fail_class, size_t classlen, size_t *fail_index)
{
	struct fuzz_run *r = fuzz_run_new(cfg);
	if (!r)
		return -1;
	for (size_t i = 0; i < n && !r->failed; i++)
		fuzz_exec(r, &ops[i]);
	if (!r->failed)
		fuzz_finish(r);
	int ret = r->failed ? -1 : 0;
	if (r->failed) {
		if (!quiet)
			fprintf(stderr, "op %zu: [%s] %s\n", r->fail_index, r->fail_class, r->why);
		if (fail_class)
			snprintf(fail_class, classlen, "%s", r->fail_class);
		if (fail_index)
			*fail_index = r->fail_index;
	}
	fuzz_run_free(r);
	return ret;
}
