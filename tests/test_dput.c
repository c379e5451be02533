/*
 * test_dput.c - Determinator's Put and Get: cowvm_dput / cowvm_dget with COPY, ZERO, SNAP and
 * MERGE (include/cowvm.h is the contract; mm/dput.c's opening comment and docs/dput.md explain
 * the five regions of a COPY).
 *
 *   lowest       addr    start_page                     end_page     end     highest
 *     |   keep    | memcpy |  COW, page aligned, as fork   |  memcpy    | keep  |
 *
 * The first tests run random (src, dst, len) triples against a byte-level reference model (two
 * processes' byte arrays over a region, and which pages are mapped), in both directions, with
 * writes on both sides, comparing every byte and running the checker after every step; the
 * frames show the middle was shared (same pfn, no allocation) or, with a delta that is not a
 * multiple of the page size, copied (no frame in common).  One of them adds SNAP and MERGE
 * against a three-way byte model.  The seeds are fixed; DPUT_SEED=n in the environment runs
 * them with another (the failure messages name the seed and the step).  Then one test per
 * property of the contract: slivers, holes, a destination without mappings, rmap, ZERO, SNAP
 * and MERGE, and bad input.
 *
 * Every step is followed by CHECK(); the fixture checks for leaked frames after each test.
 */
#include "testutil.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

TestSuite(dput, .init = tu_setup, .fini = tu_teardown);

/* ---- small helpers ------------------------------------------------------------------------- */

static uint64_t round_down_pg(uint64_t a)
{
	return a & ~(PG - 1);
}

static uint64_t round_up_pg(uint64_t a)
{
	return (a + PG - 1) & ~(PG - 1);
}

/* Write len bytes of pattern `seed` (byte i = pattern_byte(seed, i)) at addr. */
#define fill(t, addr, len, seed) fill_at(__FILE__, __LINE__, (t), (addr), (len), (seed))
static void fill_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint64_t len,
		    uint8_t seed)
{
	uint8_t *buf = malloc(len ? len : 1);
	cr_assert(buf);
	pattern_fill(buf, len, seed);
	int rc = cowvm_write(t, addr, buf, len);
	free(buf);
	cr_assert(rc == 0, "%s:%d: writing %" PRIu64 " bytes at %#" PRIx64 " returned %d", file, line,
		  len, addr, rc);
}

/* The bytes at addr are byte `from`.. of pattern `seed`. */
#define expect_fill(t, addr, len, seed, from)                                                  \
	expect_fill_at(__FILE__, __LINE__, (t), (addr), (len), (seed), (from))
static void expect_fill_at(const char *file, int line, cowvm_task_t *t, uint64_t addr,
			   uint64_t len, uint8_t seed, uint64_t from)
{
	uint8_t *buf = malloc(len ? len : 1);
	cr_assert(buf);
	memset(buf, 0xEE, len);
	int rc = cowvm_read(t, addr, buf, len);
	cr_assert(rc == 0, "%s:%d: reading %" PRIu64 " bytes at %#" PRIx64 " returned %d", file,
		  line, len, addr, rc);
	for (uint64_t i = 0; i < len; i++)
		cr_assert(buf[i] == pattern_byte(seed, from + i),
			  "%s:%d: byte at %#" PRIx64 " is %#x, pattern %u byte %" PRIu64 " is %#x",
			  file, line, addr + i, buf[i], seed, from + i,
			  pattern_byte(seed, from + i));
	free(buf);
}

/* No VMA at addr, and a read there is the task's SIGSEGV. */
#define expect_hole(t, addr) expect_hole_at(__FILE__, __LINE__, (t), (addr))
static void expect_hole_at(const char *file, int line, cowvm_task_t *t, uint64_t addr)
{
	uint8_t b;
	cr_assert(!tu_has_vma_at(t, addr), "%s:%d: a VMA covers %#" PRIx64 ", expected a hole",
		  file, line, addr);
	int rc = cowvm_read(t, addr, &b, 1);
	cr_assert(rc == -EFAULT, "%s:%d: reading the hole at %#" PRIx64 " returned %d", file, line,
		  addr, rc);
}

static struct cowvm_merge_report report_of(cowvm_task_t *parent)
{
	struct cowvm_merge_report r;
	memset(&r, 0xA5, sizeof r);
	EQ(cowvm_merge_report(parent, &r), 0);
	return r;
}

/* Does any present page of t in [addr, addr + npages pages) map frame pfn? */
static bool maps_frame(cowvm_task_t *t, uint64_t addr, uint64_t npages, uint64_t pfn)
{
	for (uint64_t i = 0; i < npages; i++)
		if (pm_present(t, addr + i * PG) && pfn_of(t, addr + i * PG) == pfn)
			return true;
	return false;
}

/* ---- rmap helper (as test_rmap.c) ------------------------------------------------------------ */

#define MAX_HITS 16
struct hits {
	int n;
	int pid[MAX_HITS];
	uint64_t addr[MAX_HITS];
};

static int collect_fn(void *arg, int pid, uint64_t addr)
{
	struct hits *h = arg;
	if (h->n < MAX_HITS) {
		h->pid[h->n] = pid;
		h->addr[h->n] = addr;
	}
	h->n++;
	return 0;
}

/* expect_rmap(pfn, n, task1, addr1, ...): the walk finds exactly these n mappings. */
#define expect_rmap(pfn, n, ...) expect_rmap_at(__FILE__, __LINE__, (pfn), (n), __VA_ARGS__)

static void expect_rmap_at(const char *file, int line, uint64_t pfn, int n, ...)
{
	struct hits h = { 0 };
	int rc = cowvm_rmap_walk(tu_vm, pfn, collect_fn, &h);
	cr_assert(rc == h.n && h.n == n, "%s:%d: rmap_walk(%#" PRIx64 ") found %d (returned %d), expected %d",
		  file, line, pfn, h.n, rc, n);
	va_list ap;
	va_start(ap, n);
	int used[MAX_HITS] = { 0 };
	for (int i = 0; i < n; i++) {
		cowvm_task_t *t = va_arg(ap, cowvm_task_t *);
		uint64_t addr = va_arg(ap, uint64_t);
		int found = 0;
		for (int j = 0; j < h.n && !found; j++)
			if (!used[j] && h.pid[j] == cowvm_task_pid(t) && h.addr[j] == addr)
				used[j] = found = 1;
		cr_assert(found, "%s:%d: rmap_walk(%#" PRIx64 ") did not report pid %d at %#" PRIx64,
			  file, line, pfn, cowvm_task_pid(t), addr);
	}
	va_end(ap);
}

/* The frame's index equals the linear page index of addr in t's VMA. */
#define expect_index(t, addr) expect_index_at(__FILE__, __LINE__, (t), (addr))
static void expect_index_at(const char *file, int line, cowvm_task_t *t, uint64_t addr)
{
	struct cowvm_vma_info v = tu_vma_at(file, line, t, addr);
	struct cowvm_frame_info f = tu_frame_at(file, line, pfn_of(t, addr));
	cr_assert(f.index == (addr - v.start) / PG + v.pgoff,
		  "%s:%d: frame at %#" PRIx64 " has index %#" PRIx64 ", its VMA computes %#" PRIx64,
		  file, line, addr, f.index, (addr - v.start) / PG + v.pgoff);
}

/* ==== the reference model ===================================================================== */

/*
 * A model space: one mm's region [base, base + npages pages), its bytes and which pages have a
 * VMA.  A page with a VMA that was never written reads zeros, so the model keeps zeros there;
 * an unmapped page keeps zeros too (they are never compared: a read there must fail).
 */
#define MPG 48

struct space {
	const char *name;
	cowvm_task_t *t;
	uint64_t base, npages;
	uint8_t bytes[MPG * COWVM_PAGE_SIZE];
	bool mapped[MPG];
};

struct world {
	struct space *par, *chi; /* the same space when parent and child share an mm */
	cowvm_task_t *pt, *ct;   /* the tasks passed to dput/dget */
	uint64_t seed, rng;
	int step;
	char what[160];          /* the current step, for failure messages */
	bool merges;             /* also SNAP, MERGE and MADV_DONTNEED steps */
	bool has_image;          /* the child's snapshot, over the child's region: */
	uint8_t *image;          /*   its bytes (a hole reads as zeros) */
};

/* The seed: the test's own, or DPUT_SEED from the environment to explore others. */
static uint64_t seed_or_env(uint64_t seed)
{
	const char *e = getenv("DPUT_SEED");
	return e && *e ? strtoull(e, NULL, 0) : seed;
}

static uint64_t rnd(struct world *w)
{
	/* splitmix64 */
	uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(struct world *w, uint64_t n)
{
	return n ? rnd(w) % n : 0;
}

static void model_map(struct space *s, uint64_t page)
{
	if (!s->mapped[page]) {
		s->mapped[page] = true;
		memset(&s->bytes[page * PG], 0, PG);
	}
}

static void model_unmap(struct space *s, uint64_t page)
{
	s->mapped[page] = false;
	memset(&s->bytes[page * PG], 0, PG);
}

/*
 * COPY s@[so, so + len) to d@do (offsets in the regions), as the contract says, from the state
 * before the call: a byte of a mapped source page is copied, mapping its destination page
 * (zeros) if needed; a byte of an unmapped source page is not copied.  When the absolute
 * addresses differ by a multiple of the page size and the range has a page-aligned middle, each
 * middle destination page becomes what the source page is: a copy of it, or a hole.
 */
static void model_copy(struct space *s, uint64_t so, struct space *d, uint64_t doff, uint64_t len)
{
	static uint8_t sbytes[MPG * COWVM_PAGE_SIZE];
	static bool smapped[MPG];
	memcpy(sbytes, s->bytes, sizeof sbytes);
	memcpy(smapped, s->mapped, sizeof smapped);

	uint64_t sa = s->base + so, da = d->base + doff;
	uint64_t start_page = round_up_pg(sa), end_page = round_down_pg(sa + len);
	bool cow = (da - sa) % PG == 0 && start_page < end_page;
	for (uint64_t i = 0; i < len; i++) {
		uint64_t a = sa + i;
		if (cow && a >= start_page && a < end_page)
			continue;
		if (!smapped[(so + i) / PG])
			continue;
		model_map(d, (doff + i) / PG);
		d->bytes[doff + i] = sbytes[so + i];
	}
	if (cow) {
		for (uint64_t a = start_page; a < end_page; a += PG) {
			uint64_t sp = (a - s->base) / PG, dp = (a + (da - sa) - d->base) / PG;
			if (smapped[sp]) {
				d->mapped[dp] = true;
				memcpy(&d->bytes[dp * PG], &sbytes[sp * PG], PG);
			} else {
				model_unmap(d, dp);
			}
		}
	}
}

/* ZERO d@[doff, doff + len): every page the range touches is mapped, the range reads zeros. */
static void model_zero(struct space *d, uint64_t doff, uint64_t len)
{
	for (uint64_t p = doff / PG; p <= (doff + len - 1) / PG; p++)
		model_map(d, p);
	memset(&d->bytes[doff], 0, len);
}

/* Every byte of the space matches the model; unmapped pages fail to read. */
static void model_expect(struct world *w, struct space *s)
{
	uint8_t buf[COWVM_PAGE_SIZE];
	for (uint64_t p = 0; p < s->npages; p++) {
		uint64_t a = s->base + p * PG;
		memset(buf, 0xEE, sizeof buf);
		int rc = cowvm_read(s->t, a, buf, PG);
		if (!s->mapped[p]) {
			cr_assert(rc == -EFAULT,
				  "seed %#" PRIx64 " step %d (%s): %s page %" PRIu64 " should be a hole, read returned %d",
				  w->seed, w->step, w->what, s->name, p, rc);
			continue;
		}
		cr_assert(rc == 0, "seed %#" PRIx64 " step %d (%s): reading %s page %" PRIu64 " returned %d",
			  w->seed, w->step, w->what, s->name, p, rc);
		if (memcmp(buf, &s->bytes[p * PG], PG) == 0)
			continue;
		for (uint64_t i = 0; i < PG; i++)
			cr_assert(buf[i] == s->bytes[p * PG + i],
				  "seed %#" PRIx64 " step %d (%s): %s byte %#" PRIx64 " (page %" PRIu64
				  " + %" PRIu64 ") is %#x, the model has %#x",
				  w->seed, w->step, w->what, s->name, a + i, p, i, buf[i],
				  s->bytes[p * PG + i]);
	}
}

static void world_expect(struct world *w)
{
	model_expect(w, w->par);
	if (w->chi != w->par)
		model_expect(w, w->chi);
	char why[512] = "";
	int rc = cowvm_check(tu_vm, why, sizeof why);
	cr_assert(rc == 0, "seed %#" PRIx64 " step %d (%s): cowvm_check: %s", w->seed, w->step,
		  w->what, why);
}

/* Map the whole region, write random bytes into `written` of its pages, then punch holes. */
static void space_init(struct world *w, struct space *s, unsigned written_percent, int holes)
{
	map_fixed(s->t, s->base, s->npages, PROT_RW, MAP_PRIV_ANON);
	for (uint64_t p = 0; p < s->npages; p++) {
		model_map(s, p);
		if (rnd_below(w, 100) < written_percent) {
			for (uint64_t i = 0; i < PG; i++)
				s->bytes[p * PG + i] = (uint8_t)rnd(w);
			EQ(cowvm_write(s->t, s->base + p * PG, &s->bytes[p * PG], PG), 0);
		}
	}
	for (int i = 0; i < holes; i++) {
		uint64_t p = rnd_below(w, s->npages);
		EQ(cowvm_munmap(s->t, s->base + p * PG, PG), 0);
		model_unmap(s, p);
	}
}

/* A random (offset, offset, length) triple in regions of npages pages.  Half the time the two
 * offsets have the same offset in their page (a page-multiple delta: the regions are page
 * aligned), sometimes both page aligned. */
static void random_triple(struct world *w, uint64_t snpages, uint64_t dnpages, uint64_t *so,
			  uint64_t *doff, uint64_t *len)
{
	uint64_t smax = snpages * PG, dmax = dnpages * PG;
	uint64_t cap = smax < dmax ? smax : dmax;
	switch (rnd_below(w, 5)) {
	case 0: *len = 1 + rnd_below(w, PG); break;
	case 1: *len = 1 + rnd_below(w, 3 * PG); break;
	case 2: *len = PG * (1 + rnd_below(w, 6)); break;
	default: *len = 1 + rnd_below(w, cap / 2); break;
	}
	*so = rnd_below(w, smax - *len + 1);
	*doff = rnd_below(w, dmax - *len + 1);
	unsigned kind = (unsigned)rnd_below(w, 8);
	if (kind == 0) { /* page aligned both, whole pages */
		*len = round_up_pg(*len);
		if (*len > cap / 2)
			*len = round_down_pg(cap / 2);
		*so = round_down_pg(rnd_below(w, smax - *len + 1));
		*doff = round_down_pg(rnd_below(w, dmax - *len + 1));
	} else if (kind < 4) { /* same offset in the page */
		uint64_t in = *so % PG;
		if (dmax - *len >= in)
			*doff = round_down_pg(rnd_below(w, dmax - *len - in + 1)) + in;
	}
}

/* Frames of the source region that the destination must not share after a byte copy. */
static int source_frames(struct space *s, uint64_t *out)
{
	int n = 0;
	for (uint64_t p = 0; p < s->npages; p++) {
		uint64_t a = s->base + p * PG;
		if (pm_present(s->t, a) && pfn_of(s->t, a) != zero_pfn())
			out[n++] = pfn_of(s->t, a);
	}
	return n;
}

/*
 * One COPY step: dput (parent -> child) or dget (child -> parent) of len bytes from s@so to
 * d@doff.  Same mm and overlapping: -EINVAL and nothing changes.  Afterwards the frames show
 * what was shared and what was copied:
 *  - page-multiple delta: every middle destination page maps the source page's frame (or is
 *    absent where the source's is), and vmstat pgalloc grew only by the pages that received
 *    bytes and by page tables, not by the middle's pages;
 *  - every destination page that received bytes one by one has a frame of its own, shared with
 *    no page of the source region.
 */
static void step_copy(struct world *w, bool get, uint64_t so, uint64_t doff, uint64_t len)
{
	struct space *s = get ? w->chi : w->par, *d = get ? w->par : w->chi;
	uint64_t sa = s->base + so, da = d->base + doff;
	snprintf(w->what, sizeof w->what, "%s COPY %s@%#" PRIx64 " -> %s@%#" PRIx64 " len %#" PRIx64,
		 get ? "dget" : "dput", s->name, sa, d->name, da, len);
	bool overlap = s == d && sa < da + len && da < sa + len;
	uint64_t start_page = round_up_pg(sa), end_page = round_down_pg(sa + len);
	bool cow = (da - sa) % PG == 0 && start_page < end_page;

	/* which destination pages receive bytes one by one (their source page is mapped) */
	bool received[MPG] = { false };
	for (uint64_t i = 0; i < len; i++) {
		uint64_t a = sa + i;
		if (cow && a >= start_page && a < end_page)
			continue;
		if (s->mapped[(so + i) / PG])
			received[(doff + i) / PG] = true;
	}
	struct cowvm_vmstat v0 = vmstat();
	struct cowvm_task_stats s0 = stats(d->t);
	int rc = get ? cowvm_dget(w->pt, w->ct, COWVM_COPY, da, sa, len)
		     : cowvm_dput(w->pt, w->ct, COWVM_COPY, sa, da, len);
	if (overlap) {
		cr_assert(rc == -EINVAL, "seed %#" PRIx64 " step %d (%s): overlapping ranges in one mm returned %d",
			  w->seed, w->step, w->what, rc);
		EQ_WHY(stats(d->t).nr_vmas, s0.nr_vmas, w->what);
		EQ_WHY(vmstat().nr_free_pages, v0.nr_free_pages, w->what);
		return;
	}
	cr_assert(rc == 0, "seed %#" PRIx64 " step %d (%s): returned %d", w->seed, w->step, w->what, rc);
	model_copy(s, so, d, doff, len);
	struct cowvm_vmstat v1 = vmstat();

	uint64_t nreceived = 0, nshared = 0;
	for (uint64_t p = 0; p < d->npages; p++)
		nreceived += received[p];
	if (cow) {
		for (uint64_t a = start_page; a < end_page; a += PG) {
			uint64_t b = a + (da - sa);
			if (!pm_present(s->t, a) || pfn_of(s->t, a) == zero_pfn()) {
				/* nothing to share; a zero-page PTE is copied only when the VMA
				 * has an anon_vma (vma_needs_copy), else the page faults in later */
				if (pm_present(d->t, b))
					EQ_WHY(pfn_of(d->t, b), zero_pfn(), w->what);
				continue;
			}
			cr_assert(pfn_of(d->t, b) == pfn_of(s->t, a),
				  "seed %#" PRIx64 " step %d (%s): middle page %#" PRIx64 " maps frame %#" PRIx64
				  ", the source's %#" PRIx64 " maps %#" PRIx64,
				  w->seed, w->step, w->what, b, pfn_of(d->t, b), a, pfn_of(s->t, a));
			nshared++;
		}
	}
	/* page tables: at most two PTE tables and their upper levels for a region this small */
	uint64_t grown = v1.pgalloc - v0.pgalloc;
	cr_assert(grown <= nreceived + 6,
		  "seed %#" PRIx64 " step %d (%s): pgalloc grew by %" PRIu64 " for %" PRIu64
		  " pages that received bytes (%" PRIu64 " middle pages shared)",
		  w->seed, w->step, w->what, grown, nreceived, nshared);
	if (nshared > nreceived + 6)
		cr_assert(grown < nshared,
			  "seed %#" PRIx64 " step %d (%s): pgalloc grew by %" PRIu64 " for %" PRIu64
			  " shared middle pages", w->seed, w->step, w->what, grown, nshared);
	if (s == d)
		return; /* in one mm a partial page may be both a source and a destination page */
	uint64_t sframes[MPG];
	int nsf = source_frames(s, sframes);
	for (uint64_t p = 0; p < d->npages; p++) {
		if (!received[p])
			continue;
		uint64_t b = d->base + p * PG;
		EQ_WHY(pm_present(d->t, b), 1, w->what);
		uint64_t pfn = pfn_of(d->t, b);
		NE(pfn, zero_pfn());
		for (int i = 0; i < nsf; i++)
			cr_assert(sframes[i] != pfn,
				  "seed %#" PRIx64 " step %d (%s): destination page %#" PRIx64
				  " received bytes but shares frame %#" PRIx64 " with the source",
				  w->seed, w->step, w->what, b, pfn);
	}
}

static void step_zero(struct world *w, bool get, uint64_t doff, uint64_t len)
{
	struct space *d = get ? w->par : w->chi;
	uint64_t da = d->base + doff;
	snprintf(w->what, sizeof w->what, "%s ZERO %s@%#" PRIx64 " len %#" PRIx64,
		 get ? "dget" : "dput", d->name, da, len);
	/* the other address is ignored by ZERO: pass something unrelated */
	int rc = get ? cowvm_dget(w->pt, w->ct, COWVM_ZERO, da, 0x1234, len)
		     : cowvm_dput(w->pt, w->ct, COWVM_ZERO, 0x1234, da, len);
	cr_assert(rc == 0, "seed %#" PRIx64 " step %d (%s): returned %d", w->seed, w->step, w->what, rc);
	model_zero(d, doff, len);
}

static void step_write(struct world *w, struct space *s, cowvm_task_t *t)
{
	uint64_t len = 1 + rnd_below(w, 2 * PG);
	uint64_t off = rnd_below(w, s->npages * PG - len + 1);
	snprintf(w->what, sizeof w->what, "write %s@%#" PRIx64 " len %#" PRIx64, s->name,
		 s->base + off, len);
	static uint8_t buf[2 * COWVM_PAGE_SIZE];
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rnd(w);
	bool ok = true;
	for (uint64_t p = off / PG; p <= (off + len - 1) / PG; p++)
		ok = ok && s->mapped[p];
	int rc = cowvm_write(t, s->base + off, buf, len);
	cr_assert(rc == (ok ? 0 : -EFAULT), "seed %#" PRIx64 " step %d (%s): returned %d",
		  w->seed, w->step, w->what, rc);
	if (ok)
		memcpy(&s->bytes[off], buf, len);
}

static void step_remap(struct world *w, struct space *s)
{
	uint64_t n = 1 + rnd_below(w, 3);
	uint64_t p = rnd_below(w, s->npages - n + 1);
	uint64_t a = s->base + p * PG;
	if (rnd_below(w, 2)) {
		snprintf(w->what, sizeof w->what, "munmap %s@%#" PRIx64 " %" PRIu64 " pages", s->name, a, n);
		EQ_WHY(cowvm_munmap(s->t, a, n * PG), 0, w->what);
		for (uint64_t i = 0; i < n; i++)
			model_unmap(s, p + i);
	} else {
		snprintf(w->what, sizeof w->what, "mmap %s@%#" PRIx64 " %" PRIu64 " pages", s->name, a, n);
		EQ_WHY(cowvm_mmap(s->t, a, n * PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED), (int64_t)a, w->what);
		for (uint64_t i = 0; i < n; i++) {
			model_unmap(s, p + i);
			model_map(s, p + i);
		}
	}
}


/* SNAP: the model's image is the child's region as it is now (holes read as zeros). */
static void step_snap(struct world *w)
{
	snprintf(w->what, sizeof w->what, "dput SNAP");
	EQ_WHY(cowvm_dput(w->pt, w->ct, COWVM_SNAP, 0, 0, 0), 0, w->what);
	memcpy(w->image, w->chi->bytes, w->chi->npages * PG);
	w->has_image = true;
}

/*
 * MERGE the child's [cp, cp + n) pages into the parent's [pp, pp + n), by the three-way rule
 * on bytes (c child, r image, p parent): c == r keeps p; else p == r or p == c takes c; else a
 * conflict keeps p.  A page-level decision (skip, share, copy) gives the same bytes; the model
 * predicts the return value, the conflicts and the first one, and every byte.
 */
static void step_merge(struct world *w, uint64_t pp, uint64_t cp, uint64_t n)
{
	struct space *P = w->par, *C = w->chi;
	uint64_t pa = P->base + pp * PG, ca = C->base + cp * PG;
	snprintf(w->what, sizeof w->what, "dget MERGE C@%#" PRIx64 " -> P@%#" PRIx64 " %" PRIu64 " pages",
		 ca, pa, n);
	int want = 0;
	uint64_t conflicts = 0, first = 0;
	if (!w->has_image)
		want = -ENOENT;
	for (uint64_t i = 0; i < n && !want; i++)
		if (!P->mapped[pp + i])
			want = -EFAULT;
	static uint8_t merged[MPG * COWVM_PAGE_SIZE];
	if (!want) {
		for (uint64_t k = 0; k < n * PG; k++) {
			uint8_t c = C->bytes[cp * PG + k], r = w->image[cp * PG + k];
			uint8_t v = P->bytes[pp * PG + k];
			if (c != r && v != c) {
				if (v == r) {
					v = c;
				} else if (!conflicts++) {
					first = pa + k;
				}
			}
			merged[k] = v;
		}
		if (conflicts)
			want = -EBADE;
	}
	int rc = cowvm_dget(w->pt, w->ct, COWVM_MERGE, pa, ca, n * PG);
	cr_assert(rc == want, "seed %#" PRIx64 " step %d (%s): returned %d, the model says %d",
		  w->seed, w->step, w->what, rc, want);
	struct cowvm_merge_report r = report_of(w->pt);
	EQ_WHY(r.conflicts, conflicts, w->what);
	EQ_WHY(r.first_conflict, first, w->what);
	if (want == 0 || want == -EBADE)
		memcpy(&P->bytes[pp * PG], merged, n * PG);
}

/* MADV_DONTNEED of a few pages of one side: they read zeros again (the VMA stays). */
static void step_dontneed(struct world *w, struct space *s)
{
	uint64_t n = 1 + rnd_below(w, 3);
	uint64_t p = rnd_below(w, s->npages - n + 1);
	snprintf(w->what, sizeof w->what, "MADV_DONTNEED %s@%#" PRIx64 " %" PRIu64 " pages", s->name,
		 s->base + p * PG, n);
	for (uint64_t i = 0; i < n; i++)
		if (!s->mapped[p + i])
			return; /* holes: madvise's own business, not this test's */
	EQ_WHY(cowvm_madvise(s->t, s->base + p * PG, n * PG, MADV_DONTNEED), 0, w->what);
	memset(&s->bytes[p * PG], 0, n * PG);
}

/* Random steps: COPY both ways (half of them with a page-multiple delta), ZERO both ways,
 * writes on both sides, and a few munmap/mmap to make holes and fill them. */
static void run_world(struct world *w, int steps)
{
	world_expect(w);
	for (w->step = 1; w->step <= steps; w->step++) {
		uint64_t r = rnd_below(w, 100), so, doff, len;
		bool get = rnd_below(w, 2);
		if (w->merges && r >= 50) {
			/* Determinator's round: put the parent's memory, snapshot, let the
			 * child write, merge back; with the parent writing a little too */
			if (r < 55) {
				uint64_t n = 1 + rnd_below(w, w->par->npages);
				uint64_t p = rnd_below(w, w->par->npages - n + 1);
				step_copy(w, false, p * PG, p * PG, n * PG);
				step_snap(w);
			} else if (r < 58) {
				step_snap(w);
			} else if (r < 61) {
				step_dontneed(w, get ? w->chi : w->par);
			} else if (r < 85) {
				step_write(w, w->chi, w->ct);
			} else if (r < 88) {
				step_write(w, w->par, w->pt);
			} else {
				uint64_t n = 1 + rnd_below(w, w->chi->npages / 2);
				if (rnd_below(w, 4) == 0)
					n = w->chi->npages;
				uint64_t cp = rnd_below(w, w->chi->npages - n + 1);
				uint64_t pp = rnd_below(w, 4) ? cp : rnd_below(w, w->par->npages - n + 1);
				step_merge(w, pp, cp, n);
			}
		} else if (r < 60) {
			struct space *s = get ? w->chi : w->par, *d = get ? w->par : w->chi;
			random_triple(w, s->npages, d->npages, &so, &doff, &len);
			step_copy(w, get, so, doff, len);
		} else if (r < 70) {
			struct space *d = get ? w->par : w->chi;
			random_triple(w, d->npages, d->npages, &so, &doff, &len);
			step_zero(w, get, doff, len);
		} else if (r < 94) {
			struct space *s = get ? w->chi : w->par;
			step_write(w, s, get ? w->ct : w->pt);
		} else {
			step_remap(w, get ? w->chi : w->par);
		}
		world_expect(w);
	}
}

static struct space g_par, g_chi;

/*
 * Two processes, each with a 48-page region that crosses a 2 MiB page-table boundary, at
 * different addresses (so a page-multiple delta is rarely 0):
 *
 *   parent P: [PB .. PB + 48p)   2 MiB boundary after page 20;  random bytes, 3 holes
 *   child  C: [CB .. CB + 48p)   2 MiB boundary after page 7;   half written, 2 holes
 */
Test(dput, random_copies_zeros_and_writes_in_both_directions_match_a_byte_level_model)
{
	struct world w = { .seed = 0xD9E7C0DEull };
	w.seed = seed_or_env(w.seed);
	w.rng = w.seed;
	w.par = &g_par;
	w.chi = &g_chi;
	w.pt = g_par.t = tu_spawn();
	w.ct = g_chi.t = tu_spawn();
	g_par.name = "P";
	g_chi.name = "C";
	g_par.base = TU_BASE + (2ull << 20) - 20 * PG;
	g_chi.base = TU_BASE + (8ull << 20) - 7 * PG;
	g_par.npages = g_chi.npages = MPG;
	space_init(&w, &g_par, 100, 3);
	space_init(&w, &g_chi, 50, 2);
	run_world(&w, 2000);
}

/* The same with a second seed and a child that starts with nothing mapped but its region. */
Test(dput, random_copies_into_a_child_with_an_unwritten_region_match_the_model)
{
	struct world w = { .seed = 0x5EED0002ull };
	w.seed = seed_or_env(w.seed);
	w.rng = w.seed;
	w.par = &g_par;
	w.chi = &g_chi;
	w.pt = g_par.t = tu_spawn();
	w.ct = g_chi.t = tu_spawn();
	g_par.name = "P";
	g_chi.name = "C";
	g_par.base = TU_BASE + 3 * PG;
	g_chi.base = TU_BASE + 3 * PG; /* the same addresses: delta 0 is common */
	g_par.npages = g_chi.npages = MPG;
	space_init(&w, &g_par, 80, 4);
	space_init(&w, &g_chi, 0, 0);
	run_world(&w, 1000);
}

/*
 * SNAP and MERGE among the copies and writes: the parent and child regions are at the same
 * addresses, and most merges at the same offsets, so pages travel back and forth shared
 * copy-on-write (dput COPY, MERGE sharing the child's page) and the three decisions all occur.
 * Page-multiple deltas are the common case here; holes and MADV_DONTNEED make "a hole reads as
 * zeros" matter on both sides.
 *
 *   P: [B .. B+48p)    C: [B .. B+48p)    2 MiB boundary after page 12
 */
static uint8_t g_image[MPG * COWVM_PAGE_SIZE];

Test(dput, random_snapshots_and_merges_match_a_three_way_byte_model)
{
	struct world w = { .seed = 0x3E46E000ull, .merges = true, .image = g_image };
	w.seed = seed_or_env(w.seed);
	w.rng = w.seed;
	w.par = &g_par;
	w.chi = &g_chi;
	w.pt = g_par.t = tu_spawn();
	w.ct = g_chi.t = tu_spawn();
	g_par.name = "P";
	g_chi.name = "C";
	g_par.base = g_chi.base = TU_BASE + (2ull << 20) - 12 * PG;
	g_par.npages = g_chi.npages = MPG;
	space_init(&w, &g_par, 70, 2);
	EQ(cowvm_dput(w.pt, w.ct, COWVM_COPY, g_par.base, g_chi.base, MPG * PG), 0);
	model_copy(&g_par, 0, &g_chi, 0, MPG * PG);
	run_world(&w, 1500);
}

/*
 * Parent and child are two threads of one process: one mm, one region.  A COPY whose ranges
 * overlap fails with -EINVAL and changes nothing; the others match the model.
 *
 *   P (and its thread T): [B .. B + 48p)   2 MiB boundary after page 30
 */
Test(dput, random_copies_between_two_threads_of_one_process_match_the_model_and_overlaps_fail)
{
	struct world w = { .seed = 0x7412EAD5ull };
	w.seed = seed_or_env(w.seed);
	w.rng = w.seed;
	w.par = w.chi = &g_par;
	w.pt = g_par.t = tu_spawn();
	w.ct = tu_clone_thread(w.pt);
	g_par.name = "P";
	g_par.base = TU_BASE + (4ull << 20) - 30 * PG;
	g_par.npages = MPG;
	space_init(&w, &g_par, 90, 3);
	run_world(&w, 1000);
}

/* ==== frames: shared or copied ================================================================ */

/*
 *   P: [A .. A+66p) written          C: [B .. B+66p) written (B = A + 16 MiB)
 *   dput COPY P[A+100, A+65p+300) -> C[B+100, B+65p+300)
 *
 *      A     A+100   A+1p                              A+65p   A+65p+300  A+66p
 *      | keep | memcpy |  64 pages shared COW            | memcpy  |  keep   |
 *
 * C's 64 middle frames are P's; C's old middle frames are freed; nothing is allocated
 * (the head and tail pages exist and are exclusive, the page table stays).
 */
Test(dput, copy_with_a_page_multiple_delta_shares_the_middle_frames_and_allocates_none)
{
	const uint64_t A = TU_BASE, B = TU_BASE + (16ull << 20), N = 66;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
	map_fixed(c, B, N, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, N * PG, 1);
	fill(c, B, N * PG, 2);
	CHECK();
	struct cowvm_vmstat v0 = vmstat();
	uint64_t crss0 = stats(c).rss_anon;

	EQ(cowvm_dput(p, c, COWVM_COPY, A + 100, B + 100, 65 * PG + 200), 0);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();
	EQ(v1.pgalloc - v0.pgalloc, 0);
	EQ(v1.nr_free_pages - v0.nr_free_pages, 64);       /* C's old middle frames */
	EQ(v0.nr_anon_pages - v1.nr_anon_pages, 64);
	EQ(v1.cow_copies, v0.cow_copies);
	EQ(stats(c).rss_anon, crss0);
	for (uint64_t i = 1; i < 65; i++) {
		uint64_t pfn = pfn_of(p, A + i * PG);
		EQ(pfn_of(c, B + i * PG), pfn);
		struct cowvm_frame_info f = frame(pfn);
		EQ(f.refcount, 2);
		EQ(f.mapcount, 2);
		EQ(f.anon_exclusive, 0);
		EQ(pte_writable(p, A + i * PG), 0);
		EQ(pte_writable(c, B + i * PG), 0);
	}
	/* the head and tail pages are C's own */
	EQ(maps_frame(p, A, N, pfn_of(c, B)), false);
	EQ(maps_frame(p, A, N, pfn_of(c, B + 65 * PG)), false);
	expect_fill(c, B, 100, 2, 0);
	expect_fill(c, B + 100, 65 * PG + 200, 1, 100);
	expect_fill(c, B + 65 * PG + 300, PG - 300, 2, 65 * PG + 300);
	expect_fill(p, A, N * PG, 1, 0);
	CHECK();
}

/*
 * The same copy into a child with nothing mapped: the only frames allocated are the head and
 * tail pages and the child's page tables.
 */
Test(dput, copy_into_an_empty_child_allocates_only_the_partial_pages_and_page_tables)
{
	const uint64_t A = TU_BASE, B = TU_BASE + (16ull << 20), N = 66;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, N * PG, 1);
	struct cowvm_vmstat v0 = vmstat();

	EQ(cowvm_dput(p, c, COWVM_COPY, A + 100, B + 100, 65 * PG + 200), 0);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();
	uint64_t tables = v1.nr_page_table_pages - v0.nr_page_table_pages;
	cr_assert(tables >= 1 && tables <= 3, "%" PRIu64 " page tables", tables);
	EQ(v1.pgalloc - v0.pgalloc, 2 + tables);
	EQ(v1.nr_anon_pages - v0.nr_anon_pages, 2);
	for (uint64_t i = 1; i < 65; i++)
		EQ(pfn_of(c, B + i * PG), pfn_of(p, A + i * PG));
	EQ(stats(c).rss_anon, 66);
	expect_fill(c, B + 100, 65 * PG + 200, 1, 100);
	expect_zeros(c, B, 100);
	expect_zeros(c, B + 65 * PG + 300, PG - 300);
	CHECK();
}

/*
 *   dput COPY P[A+100, A+64p+100) -> C[B+101, ...): the delta is not a multiple of the page
 *   size, so no page can be shared: C's 65 pages in the range are new frames, none of P's.
 */
Test(dput, copy_with_an_unaligned_delta_copies_every_page_and_shares_no_frame)
{
	const uint64_t A = TU_BASE, B = TU_BASE + (16ull << 20), N = 66;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, N * PG, 1);
	struct cowvm_vmstat v0 = vmstat();

	EQ(cowvm_dput(p, c, COWVM_COPY, A + 100, B + 101, 64 * PG), 0);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();
	uint64_t tables = v1.nr_page_table_pages - v0.nr_page_table_pages;
	EQ(v1.pgalloc - v0.pgalloc, 65 + tables);
	EQ(v1.nr_anon_pages - v0.nr_anon_pages, 65);
	for (uint64_t i = 0; i < 65; i++) {
		uint64_t b = B + i * PG;
		EQ(pm_present(c, b), 1);
		EQ(pm_exclusive(c, b), 1);
		EQ(maps_frame(p, A, N, pfn_of(c, b)), false);
	}
	for (uint64_t i = 0; i < N; i++)
		EQ(pm_exclusive(p, A + i * PG), 1); /* the source was only read */
	expect_fill(c, B + 101, 64 * PG, 1, 100);
	expect_zeros(c, B, 101);
	expect_zeros(c, B + 64 * PG + 101, PG - 101);

	/* dget the other way, unaligned too: P's pages stay P's own */
	fill(c, B, 65 * PG, 3);
	EQ(cowvm_dget(p, c, COWVM_COPY, A + 7, B + 4000, 10 * PG), 0);
	CHECK();
	for (uint64_t i = 0; i < 11; i++)
		EQ(maps_frame(c, B, 65, pfn_of(p, A + i * PG)), false);
	expect_fill(p, A, 7, 1, 0);
	expect_fill(p, A + 7, 10 * PG, 3, 4000);
	expect_fill(p, A + 10 * PG + 7, PG - 7, 1, 10 * PG + 7);
	CHECK();
}

/* ==== bytes outside the range ================================================================ */

/*
 * Eight pages on each side, both filled with a pattern (P seed 1, C seed 2).  For each
 * (source offset, destination offset, length) below, in both directions, in fresh processes:
 * the destination's range holds the source's bytes; its slivers [lowest, addr) and
 * [end, highest), and every other byte of its eight pages, keep the destination's pattern.
 */
static const struct {
	uint64_t so, doff, len;
	const char *what;
} sliver_cases[] = {
	{ 100, 100, 50, "within one page, same offset" },
	{ 100, 3000, 50, "within one page, other offset" },
	{ 4000, 4000, 200, "two partial pages, no middle, page-multiple delta" },
	{ 4000, 5 * 4096 + 10, 200, "two partial source pages into one destination page" },
	{ 100, 2 * 4096 + 100, 3 * 4096 + 7, "head, middle, tail, page-multiple delta" },
	{ 100, 333, 3 * 4096, "head, middle, tail, unaligned delta" },
	{ 0, 4096, 2 * 4096 + 5, "aligned start, unaligned end" },
	{ 5, 5, 2 * 4096 - 5, "unaligned start, aligned end" },
	{ 4096, 0, 3 * 4096, "whole pages" },
	{ 4095, 4095, 1, "the last byte of a page" },
	{ 4095, 8191, 2, "two bytes across a boundary into two bytes across another" },
	{ 1, 2, 7 * 4096 - 3, "almost everything, unaligned delta" },
};

Test(dput, bytes_outside_the_range_never_change_in_the_destination)
{
	const uint64_t A = TU_BASE, B = TU_BASE + 0x300000, N = 8;
	for (size_t k = 0; k < sizeof sliver_cases / sizeof sliver_cases[0]; k++) {
		for (int get = 0; get < 2; get++) {
			char why[200];
			snprintf(why, sizeof why, "%s %s", get ? "dget" : "dput", sliver_cases[k].what);
			cowvm_task_t *p = tu_spawn();
			cowvm_task_t *c = tu_spawn();
			map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
			map_fixed(c, B, N, PROT_RW, MAP_PRIV_ANON);
			fill(p, A, N * PG, 1);
			fill(c, B, N * PG, 2);
			cowvm_task_t *st = get ? c : p, *dt = get ? p : c;
			uint64_t sbase = get ? B : A, dbase = get ? A : B;
			uint8_t sseed = get ? 2 : 1, dseed = get ? 1 : 2;
			uint64_t so = sliver_cases[k].so, doff = sliver_cases[k].doff,
				 len = sliver_cases[k].len;
			uint64_t addr = dbase + doff, end = addr + len;
			uint64_t lowest = round_down_pg(addr), highest = round_up_pg(end);
			int rc = get ? cowvm_dget(p, c, COWVM_COPY, addr, sbase + so, len)
				     : cowvm_dput(p, c, COWVM_COPY, sbase + so, addr, len);
			EQ_WHY(rc, 0, why);
			CHECK();
			/* the slivers, then everything else outside, then the range */
			expect_fill(dt, lowest, addr - lowest, dseed, lowest - dbase);
			expect_fill(dt, end, highest - end, dseed, end - dbase);
			expect_fill(dt, dbase, doff, dseed, 0);
			expect_fill(dt, end, dbase + N * PG - end, dseed, doff + len);
			expect_fill(dt, addr, len, sseed, so);
			expect_fill(st, sbase, N * PG, sseed, 0);
			tu_exit(c);
			tu_exit(p);
			CHECK();
		}
	}
}

/* ==== holes ================================================================================= */

/*
 *   P: [A .. A+6p) with page 3 unmapped:   | 0 | 1 | 2 |hole| 4 | 5 |
 *   C: [B .. B+6p) all written (seed 2)
 *   dput COPY P[A+100, A+6p-100) -> C[B+100, ...)   (page-multiple delta: pages 1..4 are the middle)
 *
 * C's page 3 becomes a hole (its VMA is gone, a read is SIGSEGV); pages 1, 2, 4 are P's.
 * The same with dget from C to P.
 */
Test(dput, a_page_aligned_hole_in_the_source_leaves_a_hole_in_the_destination)
{
	const uint64_t A = TU_BASE, B = TU_BASE + 0x300000, N = 6;
	for (int get = 0; get < 2; get++) {
		cowvm_task_t *p = tu_spawn();
		cowvm_task_t *c = tu_spawn();
		map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
		map_fixed(c, B, N, PROT_RW, MAP_PRIV_ANON);
		fill(p, A, N * PG, 1);
		fill(c, B, N * PG, 2);
		cowvm_task_t *st = get ? c : p, *dt = get ? p : c;
		uint64_t sb = get ? B : A, db = get ? A : B;
		uint8_t sseed = get ? 2 : 1, dseed = get ? 1 : 2;
		EQ(cowvm_munmap(st, sb + 3 * PG, PG), 0);
		CHECK();

		int rc = get ? cowvm_dget(p, c, COWVM_COPY, db + 100, sb + 100, N * PG - 200)
			     : cowvm_dput(p, c, COWVM_COPY, sb + 100, db + 100, N * PG - 200);
		EQ(rc, 0);
		CHECK();
		expect_hole(dt, db + 3 * PG);
		expect_hole(dt, db + 4 * PG - 1);
		expect_fill(dt, db, 100, dseed, 0);
		expect_fill(dt, db + 100, 3 * PG - 100, sseed, 100);
		expect_fill(dt, db + 4 * PG, 2 * PG - 100, sseed, 4 * PG);
		expect_fill(dt, db + N * PG - 100, 100, dseed, N * PG - 100);
		for (uint64_t i = 1; i < 5; i++)
			if (i != 3)
				EQ(pfn_of(dt, db + i * PG), pfn_of(st, sb + i * PG));
		tu_exit(c);
		tu_exit(p);
		CHECK();
	}
}

/*
 *   P: pages 1..4 of [A .. A+6p) mapped; the head page 0 and the tail page 5 are not
 *   C: [B .. B+6p) written (seed 2), except page 0, which has no VMA
 *   dput COPY P[A+100, A+5p+100) -> C[B+100, ...)
 *
 * The bytes of P's unmapped head and tail pages are not copied: C's page 0 stays a hole, and
 * C's [B+5p, B+5p+100) keeps its bytes.  Then with an unaligned delta, P's page 2 unmapped:
 * the destination bytes that page would have supplied keep their old values.
 */
Test(dput, bytes_of_an_unmapped_source_partial_page_are_not_copied)
{
	const uint64_t A = TU_BASE, B = TU_BASE + 0x300000, N = 6;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A + PG, 4, PROT_RW, MAP_PRIV_ANON);
	fill(p, A + PG, 4 * PG, 1);
	map_fixed(c, B, N, PROT_RW, MAP_PRIV_ANON);
	fill(c, B, N * PG, 2);
	EQ(cowvm_munmap(c, B, PG), 0);
	CHECK();

	EQ(cowvm_dput(p, c, COWVM_COPY, A + 100, B + 100, 5 * PG), 0);
	CHECK();
	expect_hole(c, B);
	expect_hole(c, B + PG - 1);
	expect_fill(c, B + PG, 4 * PG, 1, 0);
	expect_fill(c, B + 5 * PG, PG, 2, 5 * PG);
	expect_hole(p, A);
	expect_hole(p, A + 5 * PG);

	/* unaligned: C[B+1p+50 ...) <- P[A+1p ...) for 4 pages, with P's page 2 a hole */
	EQ(cowvm_munmap(p, A + 2 * PG, PG), 0);
	fill(c, B + PG, 5 * PG, 3);
	CHECK();
	EQ(cowvm_dput(p, c, COWVM_COPY, A + PG, B + PG + 50, 4 * PG - 50), 0);
	CHECK();
	expect_fill(c, B + PG, 50, 3, 0);
	expect_fill(c, B + PG + 50, PG, 1, 0);                     /* from P's page 1 */
	expect_fill(c, B + 2 * PG + 50, PG, 3, PG + 50);           /* P's hole: kept */
	expect_fill(c, B + 3 * PG + 50, 2 * PG - 50, 1, 2 * PG);   /* from P's pages 3, 4 */
	expect_fill(c, B + 5 * PG, PG, 3, 4 * PG);
	CHECK();
}

/*
 * Regression: bytes of an unmapped source page are never copied, even when the COPY itself maps
 * that page (for the destination) before it reads it.  In one mm (parent and child threads of
 * one process), a COPY upwards whose source's last page is a hole that is also the destination's
 * first page.  The head bytes map that page for the destination; the tail then finds it
 * mapped and copies its zeros, although the source page was a hole when the call began.
 *
 *   P (and its thread T): | 0 | 1 |hole| 3 | 4 |   all 0xAB but the hole
 *   dput COPY P[A+100, A+2p+100) -> T[A+2p+100, A+4p+100)
 *
 *      source:      A+100 ............ A+2p+100         (pages 0, 1, and 100 bytes of page 2)
 *      destination:                    A+2p+100 ............ A+4p+100
 *                                      (head in page 2 = the source's hole, middle page 3,
 *                                       tail: 100 bytes of page 4 from the hole)
 *
 * [A+4p, A+4p+100) must keep 0xAB.  (The COPY used to read the zeros of the page its head had
 * just mapped; it now takes the source's holes as they were when it began.)
 */
Test(dput, copy_within_one_mm_does_not_copy_from_a_source_hole_the_copy_itself_mapped)
{
	const uint64_t A = TU_BASE;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *t = tu_clone_thread(p);
	uint8_t buf[5 * COWVM_PAGE_SIZE];
	memset(buf, 0xAB, sizeof buf);
	map_fixed(p, A, 5, PROT_RW, MAP_PRIV_ANON);
	EQ(cowvm_write(p, A, buf, sizeof buf), 0);
	EQ(cowvm_munmap(p, A + 2 * PG, PG), 0);
	CHECK();
	EQ(cowvm_dput(p, t, COWVM_COPY, A + 100, A + 2 * PG + 100, 2 * PG), 0);
	CHECK();
	EQ(read_byte(p, A + 2 * PG + 100), 0xAB); /* the head bytes arrived */
	EQ(read_byte(p, A + 4 * PG + 50), 0xAB);  /* the tail's source was a hole */
}

/* ==== a destination without mappings ========================================================== */

struct prot_at {
	uint64_t addr;
	int prot, found, shared;
};

static int prot_fn(void *arg, const struct cowvm_vma_info *v)
{
	struct prot_at *q = arg;
	if (v->start <= q->addr && q->addr < v->end) {
		q->prot = v->prot;
		q->shared = v->shared;
		q->found = 1;
		return 1;
	}
	return 0;
}

static int prot_of(cowvm_task_t *t, uint64_t addr, int *shared)
{
	struct prot_at q = { .addr = addr, .prot = -1 };
	cr_assert(cowvm_for_each_vma(t, prot_fn, &q) >= 0);
	cr_assert(q.found, "no VMA at %#" PRIx64, addr);
	*shared = q.shared;
	return q.prot;
}

/*
 *   P: [A .. A+2p) R | [A+2p .. A+4p) RW | [A+4p .. A+6p) R+X    (written before mprotect)
 *   C: nothing mapped
 *   dput COPY P[A+100, A+6p-100) -> C[D+100, ...)   for D = A and D = A + 1 MiB
 *
 * C gets private VMAs over [D, D+6p), each page with the protection of P's page at the same
 * offset (head and tail pages included, which are made for the copied bytes); the bytes are
 * P's, the slivers read zeros; a write to a read-only page is C's SIGSEGV.
 */
Test(dput, a_destination_with_no_mapping_receives_a_copy_with_the_source_protection)
{
	const uint64_t A = TU_BASE, N = 6;
	const int prot[6] = { PROT_READ, PROT_READ, PROT_RW, PROT_RW, PROT_READ | PROT_EXEC,
			      PROT_READ | PROT_EXEC };
	const uint64_t dests[2] = { A, A + 0x100000 };
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, N * PG, 1);
	EQ(cowvm_mprotect(p, A, 2 * PG, PROT_READ), 0);
	EQ(cowvm_mprotect(p, A + 4 * PG, 2 * PG, PROT_READ | PROT_EXEC), 0);
	EQ(stats(p).nr_vmas, 3);
	CHECK();
	for (int k = 0; k < 2; k++) {
		uint64_t D = dests[k];
		cowvm_task_t *c = tu_spawn();
		EQ(stats(c).nr_vmas, 0);
		EQ(cowvm_dput(p, c, COWVM_COPY, A + 100, D + 100, N * PG - 200), 0);
		CHECK();
		for (uint64_t i = 0; i < N; i++) {
			int shared = -1;
			EQ(prot_of(c, D + i * PG, &shared), prot[i]);
			EQ(shared, 0);
		}
		EQ(stats(c).total_vm, N);
		expect_zeros(c, D, 100);
		expect_fill(c, D + 100, N * PG - 200, 1, 100);
		expect_zeros(c, D + N * PG - 100, 100);
		uint8_t b = 0x55;
		EQ(cowvm_write(c, D + 50, &b, 1), -EFAULT);          /* read-only head page */
		EQ(cowvm_write(c, D + PG, &b, 1), -EFAULT);          /* read-only middle */
		EQ(cowvm_write(c, D + 2 * PG, &b, 1), 0);            /* read-write middle */
		EQ(cowvm_write(c, D + N * PG - 50, &b, 1), -EFAULT); /* R+X tail page */
		expect_hole(c, D - 1);
		expect_hole(c, D + N * PG);
		/* P is unchanged but for the write protection of its shared pages */
		expect_fill(p, A, N * PG, 1, 0);
		tu_exit(c);
		CHECK();
	}
}

/*
 * fork's advice is not dput's: the middle of a COPY takes MADV_DONTFORK and MADV_WIPEONFORK
 * memory whole, and the destination's VMAs do not inherit the advice.
 *
 *   P: [A .. A+4p) written | page 1 DONTFORK | page 2 WIPEONFORK |
 *   dput COPY P[A, A+4p) -> C[A]: all four pages arrive; a fork of C then copies them all
 */
Test(dput, copy_takes_dontfork_and_wipeonfork_memory_whole_without_the_advice)
{
	const uint64_t A = TU_BASE, N = 4;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, N * PG, 1);
	EQ(cowvm_madvise(p, A + PG, PG, MADV_DONTFORK), 0);
	EQ(cowvm_madvise(p, A + 2 * PG, PG, MADV_WIPEONFORK), 0);
	CHECK();
	EQ(cowvm_dput(p, c, COWVM_COPY, A, A, N * PG), 0);
	CHECK();
	expect_fill(c, A, N * PG, 1, 0);
	for (uint64_t i = 0; i < N; i++) {
		EQ(pfn_of(c, A + i * PG), pfn_of(p, A + i * PG));
		EQ(vma_at(c, A + i * PG).flags & (TU_VM_DONTCOPY | TU_VM_WIPEONFORK), 0);
	}
	EQ(vma_at(p, A + PG).flags & TU_VM_DONTCOPY, TU_VM_DONTCOPY);
	EQ(vma_at(p, A + 2 * PG).flags & TU_VM_WIPEONFORK, TU_VM_WIPEONFORK);
	cowvm_task_t *g = tu_fork(c);
	CHECK();
	expect_fill(g, A, N * PG, 1, 0);
}

/* ==== rmap after COPY ========================================================================== */

/*
 *   P: [A .. A+8p) written (seed 1)
 *   dput COPY P[A+10, A+7p+10) -> C[D+10, ...)   (pages 1..6 the shared middle)
 *
 * for D = A (same addresses) and D = A + 3 MiB (another address, another page table).  The
 * walk of a middle frame finds (P, A+ip) and (C, D+ip); the frame's index is the linear page
 * index in both VMAs.  Then COW breaks on both sides:
 *   page 2: C writes (C copies; P keeps the frame, now alone: P's write reuses it)
 *   page 3: P writes (P copies; C keeps the frame, now alone: C's write reuses it)
 * and the other side always keeps its data.
 */
Test(dput, rmap_walk_of_a_shared_middle_page_finds_both_processes_and_cow_breaks_work_on_both_sides)
{
	const uint64_t A = TU_BASE, N = 8;
	const uint64_t dests[2] = { A, A + (3ull << 20) };
	for (int k = 0; k < 2; k++) {
		uint64_t D = dests[k];
		cowvm_task_t *p = tu_spawn();
		cowvm_task_t *c = tu_spawn();
		map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
		fill(p, A, N * PG, 1);
		EQ(cowvm_dput(p, c, COWVM_COPY, A + 10, D + 10, 7 * PG), 0);
		CHECK();
		for (uint64_t i = 1; i < 7; i++) {
			uint64_t pfn = pfn_of(p, A + i * PG);
			EQ(pfn_of(c, D + i * PG), pfn);
			expect_rmap(pfn, 2, p, A + i * PG, c, D + i * PG);
			expect_index(p, A + i * PG);
			expect_index(c, D + i * PG);
		}
		/* the head and tail pages are copies: C's own frames, found only in C */
		expect_rmap(pfn_of(c, D), 1, c, D);
		expect_rmap(pfn_of(c, D + 7 * PG), 1, c, D + 7 * PG);
		expect_rmap(pfn_of(p, A), 1, p, A);

		/* page 2: the child writes first */
		uint64_t x = A + 2 * PG, y = D + 2 * PG, old = pfn_of(p, x);
		struct cowvm_vmstat v0 = vmstat();
		write_byte(c, y + 5, 0xC2);
		CHECK();
		NE(pfn_of(c, y), old);
		EQ(pfn_of(p, x), old);
		EQ(vmstat().cow_copies - v0.cow_copies, 1);
		expect_rmap(old, 1, p, x);
		expect_rmap(pfn_of(c, y), 1, c, y);
		expect_index(c, y);
		expect_fill(p, x, PG, 1, 2 * PG);
		write_byte(p, x + 6, 0xA2);
		CHECK();
		EQ(pfn_of(p, x), old); /* reused: P was the last mapper */
		EQ(vmstat().cow_copies - v0.cow_copies, 1);
		EQ(read_byte(c, y + 6), pattern_byte(1, 2 * PG + 6));
		EQ(read_byte(c, y + 5), 0xC2);
		EQ(read_byte(p, x + 5), pattern_byte(1, 2 * PG + 5));

		/* page 3: the parent writes first */
		x = A + 3 * PG, y = D + 3 * PG, old = pfn_of(c, y);
		write_byte(p, x + 7, 0xA3);
		CHECK();
		NE(pfn_of(p, x), old);
		EQ(pfn_of(c, y), old);
		expect_rmap(old, 1, c, y);
		expect_rmap(pfn_of(p, x), 1, p, x);
		expect_index(p, x);
		expect_fill(c, y, PG, 1, 3 * PG);
		write_byte(c, y + 8, 0xC3);
		CHECK();
		EQ(pfn_of(c, y), old);
		EQ(read_byte(p, x + 8), pattern_byte(1, 3 * PG + 8));
		EQ(read_byte(c, y + 7), pattern_byte(1, 3 * PG + 7));

		/* the untouched middle pages are still shared, the walk still finds both */
		expect_rmap(pfn_of(p, A + 4 * PG), 2, p, A + 4 * PG, c, D + 4 * PG);
		tu_exit(p);
		CHECK();
		/* P gone: C alone maps the frame and can write it in place */
		uint64_t f4 = pfn_of(c, D + 4 * PG);
		expect_rmap(f4, 1, c, D + 4 * PG);
		write_byte(c, D + 4 * PG, 0xC4);
		EQ(pfn_of(c, D + 4 * PG), f4);
		tu_exit(c);
		CHECK();
	}
}

/* ==== ZERO ==================================================================================== */

/*
 * Six pages filled with a pattern; for each (offset, length) below, dput ZERO of the child
 * and dget ZERO of the parent: the range reads zeros, every other byte keeps the pattern,
 * the aligned middle is fresh memory (no page present until touched).
 */
static const struct {
	uint64_t off, len;
	const char *what;
} zero_cases[] = {
	{ 100, 50, "within one page" },
	{ 4000, 200, "two partial pages" },
	{ 100, 4 * 4096, "head, middle, tail" },
	{ 4096, 2 * 4096, "whole pages" },
	{ 0, 6 * 4096, "everything" },
	{ 4095, 1, "one byte" },
	{ 4096 + 1, 4096 * 3 - 2, "all but the first and last byte of three pages" },
};

Test(dput, zero_clears_partial_pages_and_the_middle_and_keeps_the_bytes_outside)
{
	const uint64_t A = TU_BASE, B = TU_BASE + 0x300000, N = 6;
	for (size_t k = 0; k < sizeof zero_cases / sizeof zero_cases[0]; k++) {
		for (int get = 0; get < 2; get++) {
			char why[160];
			snprintf(why, sizeof why, "%s ZERO %s", get ? "dget" : "dput", zero_cases[k].what);
			cowvm_task_t *p = tu_spawn();
			cowvm_task_t *c = tu_spawn();
			map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
			map_fixed(c, B, N, PROT_RW, MAP_PRIV_ANON);
			fill(p, A, N * PG, 1);
			fill(c, B, N * PG, 2);
			cowvm_task_t *dt = get ? p : c, *other = get ? c : p;
			uint64_t db = get ? A : B, ob = get ? B : A;
			uint8_t dseed = get ? 1 : 2, oseed = get ? 2 : 1;
			uint64_t off = zero_cases[k].off, len = zero_cases[k].len;
			int rc = get ? cowvm_dget(p, c, COWVM_ZERO, db + off, 0, len)
				     : cowvm_dput(p, c, COWVM_ZERO, 0, db + off, len);
			EQ_WHY(rc, 0, why);
			CHECK();
			uint64_t start_page = round_up_pg(db + off), end_page = round_down_pg(db + off + len);
			for (uint64_t a = start_page; a < end_page; a += PG)
				EQ_WHY(pm_present(dt, a), 0, why);
			expect_fill(dt, db, off, dseed, 0);
			expect_zeros(dt, db + off, len);
			expect_fill(dt, db + off + len, N * PG - off - len, dseed, off + len);
			expect_fill(other, ob, N * PG, oseed, 0);
			/* the zeroed middle is ordinary private read-write memory */
			if (start_page < end_page) {
				write_byte(dt, start_page, 0x11);
				EQ(read_byte(dt, start_page), 0x11);
			}
			tu_exit(c);
			tu_exit(p);
			CHECK();
		}
	}
}

/*
 *   C: nothing mapped at [B .. B+4p)
 *   dput ZERO C[B+100, B+3p+100)
 * C gets read-write private memory over [B, B+4p) that reads zeros.
 */
Test(dput, zero_of_an_unmapped_destination_maps_zeroed_read_write_memory)
{
	const uint64_t B = TU_BASE;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	EQ(cowvm_dput(p, c, COWVM_ZERO, 0, B + 100, 3 * PG), 0);
	CHECK();
	for (uint64_t i = 0; i < 4; i++) {
		int shared = -1;
		EQ(prot_of(c, B + i * PG, &shared), PROT_RW);
		EQ(shared, 0);
	}
	expect_hole(c, B - 1);
	expect_hole(c, B + 4 * PG);
	expect_zeros(c, B, 4 * PG);
	write_byte(c, B + 2 * PG, 1);
	EQ(stats(p).nr_vmas, 0);
	CHECK();
}

/* ==== SNAP and MERGE ============================================================================ */

/*
 * The common start of the MERGE tests: P writes [A .. A+np) (seed 1), dput COPY of it to C at
 * D (same page offsets: the child's VMAs are twins of P's), then SNAP.
 */
static cowvm_task_t *merge_setup(cowvm_task_t *p, uint64_t A, uint64_t D, uint64_t np)
{
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A, np, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, np * PG, 1);
	EQ(cowvm_dput(p, c, COWVM_COPY, A, D, np * PG), 0);
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	CHECK();
	return c;
}

/*
 * A SNAP costs page tables, not data: no data page is allocated or copied, and C's next write
 * to a page copies it (the image holds the old frame).
 */
Test(dput, snap_copies_page_tables_not_data_and_the_next_child_write_copies)
{
	const uint64_t A = TU_BASE, N = 16;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(c, A, N, PROT_RW, MAP_PRIV_ANON);
	fill(c, A, N * PG, 4);
	uint64_t f0 = pfn_of(c, A);
	EQ(frame(f0).refcount, 1);
	struct cowvm_vmstat v0 = vmstat();
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();
	EQ(v1.pgalloc - v0.pgalloc, v1.nr_page_table_pages - v0.nr_page_table_pages);
	EQ(v1.nr_anon_pages, v0.nr_anon_pages);
	EQ(v1.cow_copies, v0.cow_copies);
	EQ(pfn_of(c, A), f0);
	EQ(frame(f0).refcount, 2);
	EQ(pte_writable(c, A), 0);
	write_byte(c, A, 0x99);
	CHECK();
	NE(pfn_of(c, A), f0);
	EQ(vmstat().cow_copies - v1.cow_copies, 1);
	EQ(frame(f0).refcount, 1); /* the image's */
	EQ(stats(p).nr_vmas, 0);   /* SNAP ignores the addresses and touches only the child */
}

/*
 *   P: [A .. A+8p) (seed 1) --dput COPY--> C: [D .. D+8p) (same page offsets), SNAP, then
 *
 *   page  child                   parent              per page          P afterwards
 *   0     -                       -                   skipped           P's
 *   1     writes byte 10          -                   shared COW        C's frame
 *   2     -                       writes byte 20      skipped           P's, with its write
 *   3     writes byte 30          writes byte 40      merged            both writes
 *   4     writes byte 50 = v      writes byte 50 = v  merged            v, no conflict
 *   5     MADV_DONTNEED           -                   copied (zeros)    zeros
 *   6     writes a byte's own     -                   shared COW        C's frame (same bytes)
 *         value (a COW break)
 *   7     -                       -                   skipped           P's
 *
 * "Changed" means "maps another frame than the image": page 6's write of an unchanged value
 * still broke COW, so it is taken (P did not change it, so nothing is lost); page 5's frame is
 * gone, a hole reads as zeros, so P gets zeros.
 */
Test(dput, merge_follows_the_per_page_decision_table)
{
	const uint64_t A = TU_BASE, D = TU_BASE + 0x600000, N = 8;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = merge_setup(p, A, D, N);
	const uint8_t v = 0x5C;

	write_byte(c, D + PG + 10, 0xC1);
	write_byte(p, A + 2 * PG + 20, 0xA2);
	write_byte(c, D + 3 * PG + 30, 0xC3);
	write_byte(p, A + 3 * PG + 40, 0xA3);
	write_byte(c, D + 4 * PG + 50, v);
	write_byte(p, A + 4 * PG + 50, v);
	EQ(cowvm_madvise(c, D + 5 * PG, PG, MADV_DONTNEED), 0);
	write_byte(c, D + 6 * PG + 60, pattern_byte(1, 6 * PG + 60));
	CHECK();
	uint64_t c1 = pfn_of(c, D + PG), c6 = pfn_of(c, D + 6 * PG);
	uint64_t p0 = pfn_of(p, A), p2 = pfn_of(p, A + 2 * PG), p7 = pfn_of(p, A + 7 * PG);

	EQ(cowvm_dget(p, c, COWVM_MERGE, A, D, N * PG), 0);
	CHECK();
	struct cowvm_merge_report r = report_of(p);
	EQ(r.conflicts, 0);
	EQ(r.first_conflict, 0);
	EQ(r.tables_skipped, 0);
	EQ(r.pages_skipped, 3); /* 0, 2, 7 */
	EQ(r.pages_shared, 2);  /* 1, 6 */
	EQ(r.pages_merged, 2);  /* 3, 4 */
	EQ(r.pages_copied, 1);  /* 5 */

	/* page 0, 7: untouched; page 2: P's own change kept */
	EQ(pfn_of(p, A), p0);
	EQ(pfn_of(p, A + 7 * PG), p7);
	EQ(pfn_of(p, A + 2 * PG), p2);
	expect_fill(p, A, PG, 1, 0);
	expect_fill(p, A + 2 * PG, 20, 1, 2 * PG);
	EQ(read_byte(p, A + 2 * PG + 20), 0xA2);
	expect_fill(p, A + 2 * PG + 21, PG - 21, 1, 2 * PG + 21);
	/* page 1: the child's frame, shared copy-on-write */
	EQ(pfn_of(p, A + PG), c1);
	EQ(pfn_of(c, D + PG), c1);
	EQ(pte_writable(p, A + PG), 0);
	EQ(pte_writable(c, D + PG), 0);
	EQ(read_byte(p, A + PG + 10), 0xC1);
	expect_index(p, A + PG);
	/* page 3: both changes */
	EQ(read_byte(p, A + 3 * PG + 30), 0xC3);
	EQ(read_byte(p, A + 3 * PG + 40), 0xA3);
	expect_fill(p, A + 3 * PG + 41, PG - 41, 1, 3 * PG + 41);
	/* page 4: the same change */
	EQ(read_byte(p, A + 4 * PG + 50), v);
	/* page 5: the child dropped it: zeros */
	expect_zeros(p, A + 5 * PG, PG);
	/* page 6: the child's copy, same bytes */
	EQ(pfn_of(p, A + 6 * PG), c6);
	expect_fill(p, A + 6 * PG, PG, 1, 6 * PG);
	/* the child's memory is not changed by a merge */
	EQ(read_byte(c, D + 3 * PG + 40), pattern_byte(1, 3 * PG + 40));
	EQ(read_byte(c, D + 2 * PG + 20), pattern_byte(1, 2 * PG + 20));

	/* the shared page breaks COW on both sides as after fork */
	write_byte(p, A + PG + 11, 0xA1);
	CHECK();
	NE(pfn_of(p, A + PG), c1);
	EQ(read_byte(c, D + PG + 11), pattern_byte(1, PG + 11));
	EQ(read_byte(p, A + PG + 10), 0xC1);
}

/*
 * Disjoint writes on both sides over many pages merge into the union; the child's changes are
 * all in P afterwards, P's all kept.
 */
Test(dput, merge_takes_disjoint_writes_from_both_sides)
{
	const uint64_t A = TU_BASE, D = TU_BASE, N = 12;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = merge_setup(p, A, D, N);
	for (uint64_t i = 0; i < N; i++) {
		write_byte(c, D + i * PG + 2 * i, (uint8_t)(0xC0 + i));     /* even bytes */
		write_byte(p, A + i * PG + 2 * i + 1, (uint8_t)(0xA0 + i)); /* odd bytes */
	}
	CHECK();
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, D, N * PG), 0);
	CHECK();
	struct cowvm_merge_report r = report_of(p);
	EQ(r.conflicts, 0);
	EQ(r.pages_merged, N);
	for (uint64_t i = 0; i < N; i++) {
		uint64_t a = A + i * PG;
		EQ(read_byte(p, a + 2 * i), 0xC0 + i);
		EQ(read_byte(p, a + 2 * i + 1), 0xA0 + i);
		expect_fill(p, a, 2 * i, 1, i * PG);
		expect_fill(p, a + 2 * i + 2, PG - 2 * i - 2, 1, i * PG + 2 * i + 2);
	}
}

/*
 * The same byte written with the same value on both sides is the same change, not a
 * conflict, even when the rest of the page differs.
 */
Test(dput, merge_of_the_same_byte_written_with_the_same_value_is_no_conflict)
{
	const uint64_t A = TU_BASE, D = TU_BASE + PG * 16, N = 2;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = merge_setup(p, A, D, N);
	uint8_t same[64];
	memset(same, 0x3C, sizeof same);
	EQ(cowvm_write(c, D + 1000, same, sizeof same), 0);
	EQ(cowvm_write(p, A + 1000, same, sizeof same), 0);
	write_byte(c, D + 2000, 0x01);
	write_byte(p, A + 3000, 0x02);
	CHECK();
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, D, N * PG), 0);
	CHECK();
	struct cowvm_merge_report r = report_of(p);
	EQ(r.conflicts, 0);
	EQ(r.first_conflict, 0);
	EQ(r.pages_merged, 1);
	EQ(r.pages_skipped, 1);
	for (int i = 0; i < 64; i++)
		EQ(read_byte(p, A + 1000 + i), 0x3C);
	EQ(read_byte(p, A + 2000), 0x01);
	EQ(read_byte(p, A + 3000), 0x02);
}

/*
 * Bytes changed differently on both sides conflict.  Page 0, bytes 100..104 (r = the
 * original value, all writes differ from r):
 *
 *   byte   child     parent    result            conflict
 *   100    c         -         c                 no
 *   101    -         p         p                 no
 *   102    v         v         v                 no
 *   103    c         p         p (parent's)      yes: the first, at A+103
 *   104    r (same)  p         p                 no (the child did not change it)
 *   page 1, byte 7: c and p    p                 yes
 *   page 1, byte 9: c          c                 no
 *
 * MERGE returns -EBADE after merging everything else; the report is exact.
 */
Test(dput, merge_of_a_byte_changed_differently_on_both_sides_is_a_conflict_reported_exactly)
{
	const uint64_t A = TU_BASE, D = TU_BASE + (2ull << 20), N = 3;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = merge_setup(p, A, D, N);
#define R(off) pattern_byte(1, (off))
	write_byte(c, D + 100, (uint8_t)(R(100) + 1));
	write_byte(p, A + 101, (uint8_t)(R(101) + 2));
	write_byte(c, D + 102, (uint8_t)(R(102) + 3));
	write_byte(p, A + 102, (uint8_t)(R(102) + 3));
	write_byte(c, D + 103, (uint8_t)(R(103) + 4));
	write_byte(p, A + 103, (uint8_t)(R(103) + 5));
	write_byte(c, D + 104, R(104));
	write_byte(p, A + 104, (uint8_t)(R(104) + 6));
	write_byte(c, D + PG + 7, (uint8_t)(R(PG + 7) + 7));
	write_byte(p, A + PG + 7, (uint8_t)(R(PG + 7) + 8));
	write_byte(c, D + PG + 9, (uint8_t)(R(PG + 9) + 9));
	write_byte(c, D + 2 * PG + 1, (uint8_t)(R(2 * PG + 1) + 10)); /* page 2: child only */
	CHECK();

	EQ(cowvm_dget(p, c, COWVM_MERGE, A, D, N * PG), -EBADE);
	CHECK();
	struct cowvm_merge_report r = report_of(p);
	EQ(r.conflicts, 2);
	EQ(r.first_conflict, A + 103);
	EQ(r.pages_merged, 2);
	EQ(r.pages_shared, 1);
	EQ(r.pages_skipped, 0);
	EQ(read_byte(p, A + 100), (uint8_t)(R(100) + 1));
	EQ(read_byte(p, A + 101), (uint8_t)(R(101) + 2));
	EQ(read_byte(p, A + 102), (uint8_t)(R(102) + 3));
	EQ(read_byte(p, A + 103), (uint8_t)(R(103) + 5));
	EQ(read_byte(p, A + 104), (uint8_t)(R(104) + 6));
	EQ(read_byte(p, A + PG + 7), (uint8_t)(R(PG + 7) + 8));
	EQ(read_byte(p, A + PG + 9), (uint8_t)(R(PG + 9) + 9));
	EQ(read_byte(p, A + 2 * PG + 1), (uint8_t)(R(2 * PG + 1) + 10));
	expect_fill(p, A, 100, 1, 0);
	expect_fill(p, A + 105, PG - 105 + 7, 1, 105);
	expect_fill(p, A + PG + 10, PG - 10, 1, PG + 10);
	/* the child keeps its own values */
	EQ(read_byte(c, D + 103), (uint8_t)(R(103) + 4));
	EQ(read_byte(c, D + PG + 7), (uint8_t)(R(PG + 7) + 7));

	/* a later clean merge resets the report */
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, D, N * PG), 0);
	r = report_of(p);
	EQ(r.conflicts, 0);
	EQ(r.first_conflict, 0);
	CHECK();
#undef R
}

/*
 * When P's frame is not the image's, P counts as changed and the page is merged byte by byte
 * against the image; a page P did not change is copied when rmap could not find P's mapping
 * through the child's page (no anon_vma tree in common).
 *
 *   C: [D .. D+2p) its own (seed 3), SNAP, C writes byte 5 of page 1 (0x77)
 *   1. into P: [A .. A+2p), P's own memory with the same bytes     -> merged: byte taken
 *   2. into P: [A+8p .. A+10p), mapped, never written (zeros)     -> merged: P's zero at byte 5
 *      differs from the image and from the child's: a conflict, P keeps 0
 *   3. C maps and writes [D+4p] after the SNAP; into P: [A+12p], never written: neither the
 *      image nor P has a frame there, so P did not change it     -> copied (P's VMA has no
 *      anon_vma)
 */
Test(dput, merge_compares_bytes_when_the_parent_frame_is_not_the_images_and_copies_when_it_cannot_share)
{
	const uint64_t A = TU_BASE, D = TU_BASE;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(c, D, 2, PROT_RW, MAP_PRIV_ANON);
	fill(c, D, 2 * PG, 3);
	map_fixed(p, A, 2, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, 2 * PG, 3);
	map_fixed(p, A + 8 * PG, 2, PROT_RW, MAP_PRIV_ANON);
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	write_byte(c, D + PG + 5, 0x77);
	CHECK();

	EQ(cowvm_dget(p, c, COWVM_MERGE, A, D, 2 * PG), 0);
	CHECK();
	struct cowvm_merge_report r = report_of(p);
	EQ(r.pages_skipped, 1);
	EQ(r.pages_merged, 1);
	EQ(r.pages_shared + r.pages_copied, 0);
	EQ(read_byte(p, A + PG + 5), 0x77);
	NE(pfn_of(p, A + PG), pfn_of(c, D + PG));
	expect_fill(p, A + PG + 6, PG - 6, 3, PG + 6);

	NE(pattern_byte(3, PG + 5), 0);
	EQ(cowvm_dget(p, c, COWVM_MERGE, A + 8 * PG, D, 2 * PG), -EBADE);
	CHECK();
	r = report_of(p);
	EQ(r.pages_merged, 1);
	EQ(r.conflicts, 1);
	EQ(r.first_conflict, A + 9 * PG + 5);
	expect_zeros(p, A + 8 * PG, 2 * PG);

	map_fixed(c, D + 4 * PG, 1, PROT_RW, MAP_PRIV_ANON);
	fill(c, D + 4 * PG, PG, 9);
	map_fixed(p, A + 12 * PG, 1, PROT_RW, MAP_PRIV_ANON);
	CHECK();
	EQ(cowvm_dget(p, c, COWVM_MERGE, A + 12 * PG, D + 4 * PG, PG), 0);
	CHECK();
	r = report_of(p);
	EQ(r.pages_copied, 1);
	EQ(r.pages_shared + r.pages_merged + r.conflicts, 0);
	NE(pfn_of(p, A + 12 * PG), pfn_of(c, D + 4 * PG));
	expect_fill(p, A + 12 * PG, PG, 9, 0);
	expect_fill(c, D + 4 * PG, PG, 9, 0);
}

/*
 * Determinator's shortcut: a 64 MiB range, mapped in both but written only in a few pages,
 * one of which the child changes after the SNAP.  The merge skips every 2 MiB page table but
 * the one with the change, and takes exactly one page.
 *
 *   P: [A .. A+64 MiB)  written: the first page of tables 0, 9, 17 and 31
 *   dput COPY to C at the same addresses; SNAP; C writes page A + 17*2MiB + 5p
 */
static void setup_64m(void)
{
	tu_setup_phys(64ull << 20);
}
TestSuite(dput_large, .init = setup_64m, .fini = tu_teardown);

Test(dput_large, merge_of_a_large_range_with_one_changed_page_skips_every_other_page_table)
{
	const uint64_t A = TU_BASE, T = 2ull << 20, LEN = 64ull << 20;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A, LEN / PG, PROT_RW, MAP_PRIV_ANON);
	const uint64_t written[] = { 0, 9, 17, 31 };
	for (size_t i = 0; i < 4; i++)
		fill(p, A + written[i] * T, PG, (uint8_t)i);
	EQ(cowvm_dput(p, c, COWVM_COPY, A, A, LEN), 0);
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	CHECK();
	uint64_t x = A + 17 * T + 5 * PG;
	write_byte(c, x + 3, 0x42);
	CHECK();

	struct cowvm_vmstat v0 = vmstat();
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, LEN), 0);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();
	struct cowvm_merge_report r = report_of(p);
	EQ(r.tables_skipped, LEN / T - 1);
	EQ(r.pages_skipped, T / PG - 1);
	EQ(r.pages_shared + r.pages_copied + r.pages_merged, 1);
	EQ(r.pages_shared, 1);
	EQ(r.conflicts, 0);
	EQ(v1.pgalloc, v0.pgalloc); /* the parent's table exists: nothing to allocate */
	EQ(pfn_of(p, x), pfn_of(c, x));
	EQ(read_byte(p, x + 3), 0x42);
	for (size_t i = 0; i < 4; i++)
		expect_fill(p, A + written[i] * T, PG, (uint8_t)i, 0);

	/* nothing changed since: a second MERGE skips every table */
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, LEN), 0);
	r = report_of(p);
	EQ(r.tables_skipped, LEN / T);
	EQ(r.pages_skipped + r.pages_shared + r.pages_copied + r.pages_merged, 0);
	CHECK();
}

Test(dput, merge_without_a_snapshot_fails_with_enoent_and_changes_nothing)
{
	const uint64_t A = TU_BASE, N = 2;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, N * PG, 1);
	EQ(cowvm_dput(p, c, COWVM_COPY, A, A, N * PG), 0);
	write_byte(c, A + 5, 0x55);
	CHECK();
	struct tu_state sp = state_of(p), sc = state_of(c);
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, N * PG), -ENOENT);
	CHECK();
	expect_state(p, sp, "MERGE without SNAP (parent)");
	expect_state(c, sc, "MERGE without SNAP (child)");
	expect_fill(p, A, N * PG, 1, 0);
	EQ(read_byte(c, A + 5), 0x55);
}

/*
 *   P: [A .. A+2p) mapped, [A+2p .. A+3p) a hole, [A+3p .. A+4p) mapped
 *   C: changes in every page after the SNAP
 *   dget MERGE over [A, A+4p): -EFAULT, and nothing of P changed, not even the first pages.
 *   A shared read-only parent mapping in the range: -EFAULT too.
 */
Test(dput, merge_into_an_unmapped_parent_range_fails_with_efault_and_changes_nothing)
{
	const uint64_t A = TU_BASE, N = 4;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = merge_setup(p, A, A, N);
	EQ(cowvm_munmap(p, A + 2 * PG, PG), 0);
	for (uint64_t i = 0; i < N; i++)
		write_byte(c, A + i * PG, 0xC0);
	CHECK();
	struct tu_state sp = state_of(p), sc = state_of(c);
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, N * PG), -EFAULT);
	CHECK();
	expect_state(p, sp, "MERGE into a hole (parent)");
	expect_state(c, sc, "MERGE into a hole (child)");
	expect_fill(p, A, 2 * PG, 1, 0);
	expect_fill(p, A + 3 * PG, PG, 1, 3 * PG);
	expect_hole(p, A + 2 * PG);
	struct cowvm_merge_report r = report_of(p);
	EQ(r.pages_shared + r.pages_copied + r.pages_merged + r.conflicts, 0);

	/* a shared read-only mapping where the merge would write */
	EQ(cowvm_mmap(p, A + 2 * PG, PG, PROT_READ, MAP_SHARED_ANON | MAP_FIXED), (int64_t)(A + 2 * PG));
	CHECK();
	sp = state_of(p);
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, N * PG), -EFAULT);
	CHECK();
	expect_state(p, sp, "MERGE into a shared read-only mapping");
	expect_fill(p, A, 2 * PG, 1, 0);

	/* P's first two pages are still merged by a MERGE that avoids the bad page */
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, 2 * PG), 0);
	CHECK();
	EQ(read_byte(p, A), 0xC0);
	EQ(read_byte(p, A + PG), 0xC0);
}

/*
 * A private read-only parent range is written as a ptrace write would be (FOLL_FORCE), as
 * COPY writes its bytes: mm/dput.c's merge_dest_ok refuses only unmapped and shared read-only
 * memory.  (include/cowvm.h says "unshared-but-read-only": see docs/dput.md.)
 */
Test(dput, merge_into_a_private_read_only_parent_range_writes_it_as_ptrace_would)
{
	const uint64_t A = TU_BASE, N = 2;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = merge_setup(p, A, A, N);
	write_byte(c, A + 1, 0xC0);
	write_byte(c, A + PG + 1, 0xC1);
	write_byte(p, A + PG + 2, 0xA1);
	EQ(cowvm_mprotect(p, A, N * PG, PROT_READ), 0);
	CHECK();
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, N * PG), 0);
	CHECK();
	struct cowvm_merge_report r = report_of(p);
	EQ(r.pages_shared, 1);
	EQ(r.pages_merged, 1);
	EQ(read_byte(p, A + 1), 0xC0);
	EQ(read_byte(p, A + PG + 1), 0xC1);
	EQ(read_byte(p, A + PG + 2), 0xA1);
	EQ(pte_writable(p, A), 0);
	EQ(pte_writable(p, A + PG), 0);
	EQ(cowvm_write(p, A, "x", 1), -EFAULT);
}

/*
 * A second SNAP replaces the first: what the child changed before it is no longer a change.
 *
 *   SNAP 1; C writes page 0; SNAP 2; C writes page 1; MERGE: only page 1 comes back
 *
 * The first image is gone: the frame C had before its write to page 0 is held by P alone.
 */
Test(dput, a_new_snapshot_replaces_the_old_one)
{
	const uint64_t A = TU_BASE, N = 2;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = merge_setup(p, A, A, N);
	uint64_t f0 = pfn_of(p, A);
	EQ(frame(f0).refcount, 3); /* P, C, image 1 */
	write_byte(c, A + 1, 0xC0);
	CHECK();
	EQ(frame(f0).refcount, 2); /* P, image 1 */
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	CHECK();
	EQ(frame(f0).refcount, 1); /* P */
	write_byte(c, A + PG + 1, 0xC1);
	CHECK();
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, N * PG), 0);
	CHECK();
	struct cowvm_merge_report r = report_of(p);
	EQ(r.pages_shared + r.pages_copied + r.pages_merged, 1);
	EQ(r.pages_skipped, 1);
	EQ(read_byte(p, A + 1), pattern_byte(1, 1));
	EQ(read_byte(p, A + PG + 1), 0xC1);
}

/* A child that exits with a snapshot frees the image with its mm: every frame comes back. */
Test(dput, a_child_that_exits_with_a_snapshot_leaks_nothing)
{
	const uint64_t A = TU_BASE, N = 8;
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, N * PG, 1);
	struct cowvm_vmstat v0 = vmstat();
	cowvm_task_t *c = tu_spawn();
	EQ(cowvm_dput(p, c, COWVM_COPY, A, A, N * PG), 0);
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	fill(c, A, 3 * PG, 7);
	map_fixed(c, A + 0x400000, 3, PROT_RW, MAP_PRIV_ANON);
	fill(c, A + 0x400000, 3 * PG, 8);
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	fill(c, A + 0x400000, PG, 9);
	CHECK();
	tu_exit(c);
	CHECK();
	struct cowvm_vmstat v1 = vmstat();
	EQ(v1.nr_free_pages, v0.nr_free_pages);
	EQ(v1.nr_anon_pages, v0.nr_anon_pages);
	EQ(v1.nr_page_table_pages, v0.nr_page_table_pages);
	for (uint64_t i = 0; i < N; i++)
		EQ(frame(pfn_of(p, A + i * PG)).refcount, 1);
	expect_fill(p, A, N * PG, 1, 0);
}

/* ==== bad input ================================================================================ */

/*
 * Every call below fails with its errno and changes nothing: the VMAs, RSS, free frames and
 * contents of both processes are as before, and the checker is clean.
 *
 *   P: [A .. A+4p) written (seed 1), with a thread T     C: [A .. A+4p) written (seed 2)
 *   C has a snapshot (so MERGE fails only for its arguments)
 */
#define HI COWVM_TASK_SIZE_MAX
Test(dput, bad_input_to_every_operation_fails_and_changes_nothing_and_zero_bytes_do_nothing)
{
	const uint64_t A = TU_BASE, N = 4;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	cowvm_task_t *t = tu_clone_thread(p);
	map_fixed(p, A, N, PROT_RW, MAP_PRIV_ANON);
	map_fixed(c, A, N, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, N * PG, 1);
	fill(c, A, N * PG, 2);
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	struct cowvm_config cfg = { .phys_bytes = 1ull << 20 };
	cowvm_t *vm2 = cowvm_create(&cfg);
	cr_assert(vm2);
	cowvm_task_t *alien = cowvm_spawn(vm2);
	cr_assert(alien);
	CHECK();

	struct {
		const char *what;
		int get; /* 0 dput, 1 dget */
		cowvm_task_t *pt, *ct;
		int op;
		uint64_t pa, ca, len;
		int err;
	} cases[] = {
		{ "dput COPY, NULL parent", 0, NULL, c, COWVM_COPY, A, A, PG, -EINVAL },
		{ "dput COPY, NULL child", 0, p, NULL, COWVM_COPY, A, A, PG, -EINVAL },
		{ "dput ZERO, NULL parent", 0, NULL, c, COWVM_ZERO, A, A, PG, -EINVAL },
		{ "dput ZERO, NULL child", 0, p, NULL, COWVM_ZERO, A, A, PG, -EINVAL },
		{ "dput SNAP, NULL parent", 0, NULL, c, COWVM_SNAP, 0, 0, 0, -EINVAL },
		{ "dput SNAP, NULL child", 0, p, NULL, COWVM_SNAP, 0, 0, 0, -EINVAL },
		{ "dget COPY, NULL parent", 1, NULL, c, COWVM_COPY, A, A, PG, -EINVAL },
		{ "dget COPY, NULL child", 1, p, NULL, COWVM_COPY, A, A, PG, -EINVAL },
		{ "dget ZERO, NULL parent", 1, NULL, c, COWVM_ZERO, A, A, PG, -EINVAL },
		{ "dget ZERO, NULL child", 1, p, NULL, COWVM_ZERO, A, A, PG, -EINVAL },
		{ "dget MERGE, NULL parent", 1, NULL, c, COWVM_MERGE, A, A, PG, -EINVAL },
		{ "dget MERGE, NULL child", 1, p, NULL, COWVM_MERGE, A, A, PG, -EINVAL },
		{ "dput COPY, tasks of two machines", 0, p, alien, COWVM_COPY, A, A, PG, -EINVAL },
		{ "dget COPY, tasks of two machines", 1, alien, c, COWVM_COPY, A, A, PG, -EINVAL },
		{ "dput MERGE", 0, p, c, COWVM_MERGE, A, A, PG, -EINVAL },
		{ "dget SNAP", 1, p, c, COWVM_SNAP, 0, 0, 0, -EINVAL },
		{ "dput op 0", 0, p, c, 0, A, A, PG, -EINVAL },
		{ "dget op 0", 1, p, c, 0, A, A, PG, -EINVAL },
		{ "dput op 5", 0, p, c, 5, A, A, PG, -EINVAL },
		{ "dget op -1", 1, p, c, -1, A, A, PG, -EINVAL },
		/* beyond user space or wrapping */
		{ "dput COPY, source beyond the task size", 0, p, c, COWVM_COPY, HI - PG, A, 2 * PG, -EINVAL },
		{ "dput COPY, destination beyond the task size", 0, p, c, COWVM_COPY, A, HI - 10, 11, -EINVAL },
		{ "dput COPY, source wraps", 0, p, c, COWVM_COPY, UINT64_MAX - 10, A, 100, -EINVAL },
		{ "dput COPY, destination wraps", 0, p, c, COWVM_COPY, A, UINT64_MAX - PG + 1, 2 * PG, -EINVAL },
		{ "dput COPY, length beyond the task size", 0, p, c, COWVM_COPY, A, A, HI + 1, -EINVAL },
		{ "dput COPY, length UINT64_MAX", 0, p, c, COWVM_COPY, A, A, UINT64_MAX, -EINVAL },
		{ "dget COPY, source beyond the task size", 1, p, c, COWVM_COPY, A, HI - 1, 2, -EINVAL },
		{ "dget COPY, destination wraps", 1, p, c, COWVM_COPY, UINT64_MAX, A, 2, -EINVAL },
		{ "dput ZERO, beyond the task size", 0, p, c, COWVM_ZERO, 0, HI - PG, 2 * PG, -EINVAL },
		{ "dget ZERO, wraps", 1, p, c, COWVM_ZERO, UINT64_MAX - 5, 0, 10, -EINVAL },
		{ "dget MERGE, parent beyond the task size", 1, p, c, COWVM_MERGE, HI, A, PG, -EINVAL },
		{ "dget MERGE, child wraps", 1, p, c, COWVM_MERGE, A, UINT64_MAX - PG + 1, 2 * PG, -EINVAL },
		/* overlapping ranges in one mm: a thread as the child, or the parent itself */
		{ "dput COPY to a thread, overlapping", 0, p, t, COWVM_COPY, A, A + 100, 200, -EINVAL },
		{ "dget COPY from a thread, overlapping", 1, p, t, COWVM_COPY, A + PG, A, 2 * PG, -EINVAL },
		{ "dput COPY to itself, same range", 0, p, p, COWVM_COPY, A, A, PG, -EINVAL },
		{ "dput COPY to itself, one byte in common", 0, p, p, COWVM_COPY, A, A + PG - 1, PG, -EINVAL },
		{ "dget MERGE from a thread", 1, p, t, COWVM_MERGE, A, A + 2 * PG, PG, -EINVAL },
		/* zero bytes: nothing to do, whatever the addresses */
		{ "dput COPY of zero bytes", 0, p, c, COWVM_COPY, A, UINT64_MAX, 0, 0 },
		{ "dget ZERO of zero bytes", 1, p, c, COWVM_ZERO, A, A, 0, 0 },
		{ "dget MERGE of zero bytes", 1, p, c, COWVM_MERGE, A, A, 0, 0 },
		/* MERGE works on whole pages */
		{ "dget MERGE, unaligned parent address", 1, p, c, COWVM_MERGE, A + 1, A, PG, -EINVAL },
		{ "dget MERGE, unaligned child address", 1, p, c, COWVM_MERGE, A, A + 8, PG, -EINVAL },
		{ "dget MERGE, unaligned length", 1, p, c, COWVM_MERGE, A, A, PG + 1, -EINVAL },
	};

	uint8_t pbuf[4 * COWVM_PAGE_SIZE], cbuf[4 * COWVM_PAGE_SIZE];
	EQ(cowvm_read(p, A, pbuf, sizeof pbuf), 0);
	EQ(cowvm_read(c, A, cbuf, sizeof cbuf), 0);
	struct cowvm_merge_report r0 = report_of(p);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const char *why = cases[k].what;
		struct tu_state sp = state_of(p), sc = state_of(c);
		int rc = cases[k].get ? cowvm_dget(cases[k].pt, cases[k].ct, cases[k].op, cases[k].pa,
						   cases[k].ca, cases[k].len)
				      : cowvm_dput(cases[k].pt, cases[k].ct, cases[k].op, cases[k].pa,
						   cases[k].ca, cases[k].len);
		EQ_WHY(rc, cases[k].err, why);
		CHECK();
		expect_state(p, sp, why);
		expect_state(c, sc, why);
		uint8_t buf[4 * COWVM_PAGE_SIZE];
		EQ_WHY(cowvm_read(p, A, buf, sizeof buf), 0, why);
		EQ_WHY(memcmp(buf, pbuf, sizeof buf), 0, why);
		EQ_WHY(cowvm_read(c, A, buf, sizeof buf), 0, why);
		EQ_WHY(memcmp(buf, cbuf, sizeof buf), 0, why);
		struct cowvm_merge_report r = report_of(p);
		EQ_WHY(memcmp(&r, &r0, sizeof r), 0, why);
	}
	EQ(cowvm_merge_report(NULL, &r0), -EINVAL);
	EQ(cowvm_merge_report(p, NULL), -EINVAL);

	/* the snapshot survived every failed call: a MERGE still compares against it (P's
	 * bytes are not the image's, so the child's change to byte 3 is a conflict) */
	write_byte(c, A + 3, 0x33);
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, PG), -EBADE);
	r0 = report_of(p);
	EQ(r0.conflicts, 1);
	EQ(r0.first_conflict, A + 3);
	EQ(r0.pages_merged, 1);
	CHECK();
	cowvm_destroy(vm2);
}
#undef HI

/*
 * Bytes that must be copied one by one into a shared mapping the child may not write: -EACCES,
 * nothing changed.  The page-aligned middle of a page-multiple COPY replaces the destination's
 * mapping whole, so a read-only shared mapping there is no obstacle.
 *
 *   C: [A .. A+2p) private RW | [A+2p .. A+3p) shared R | [A+3p .. A+5p) private RW
 */
Test(dput, copy_of_bytes_into_a_read_only_shared_mapping_fails_with_eacces_and_changes_nothing)
{
	const uint64_t A = TU_BASE;
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *c = tu_spawn();
	map_fixed(p, A, 5, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, 5 * PG, 1);
	map_fixed(c, A, 5, PROT_RW, MAP_PRIV_ANON);
	fill(c, A, 5 * PG, 2);
	map_fixed(c, A + 2 * PG, 1, PROT_READ, MAP_SHARED_ANON);
	expect_zeros(c, A + 2 * PG, PG);
	CHECK();
	struct {
		const char *what;
		uint64_t src, dst, len;
	} cases[] = {
		{ "head page in the shared mapping", A + 100, A + 2 * PG + 100, 2 * PG },
		{ "tail page in the shared mapping", A, A + PG, PG + 100 },
		{ "within the shared page", A + 5, A + 2 * PG + 5, 10 },
		{ "unaligned delta across it", A, A + PG + 1, 2 * PG },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct tu_state sp = state_of(p), sc = state_of(c);
		EQ_WHY(cowvm_dput(p, c, COWVM_COPY, cases[k].src, cases[k].dst, cases[k].len), -EACCES,
		       cases[k].what);
		CHECK();
		expect_state(p, sp, cases[k].what);
		expect_state(c, sc, cases[k].what);
		expect_fill(c, A, 2 * PG, 2, 0);
		expect_zeros(c, A + 2 * PG, PG);
		expect_fill(c, A + 3 * PG, 2 * PG, 2, 3 * PG);
	}
	/* ZERO of bytes in it: the same */
	struct tu_state sc = state_of(c);
	EQ(cowvm_dput(p, c, COWVM_ZERO, 0, A + 2 * PG + 1, 10), -EACCES);
	expect_state(c, sc, "ZERO in a read-only shared page");
	CHECK();
	/* a whole-page middle over it replaces it */
	EQ(cowvm_dput(p, c, COWVM_COPY, A + PG + 7, A + PG + 7, 2 * PG), 0);
	CHECK();
	int shared = -1;
	EQ(prot_of(c, A + 2 * PG, &shared), PROT_RW);
	EQ(shared, 0);
	expect_fill(c, A + PG + 7, 2 * PG, 1, PG + 7);
	expect_fill(c, A + 3 * PG + 7, 2 * PG - 7, 2, 3 * PG + 7);
}

/*
 * Regression: a page the parent already shares with the child (taken COW by an earlier MERGE)
 * is unchanged for the next MERGE; merging it again must not copy it away from the child.
 *
 *   P d ----> frame X <---- C d     after the first MERGE (X is C's write, shared)
 *   second MERGE: skip, no copy, still shared
 */
Test(dput, a_second_merge_keeps_the_page_the_first_one_shared)
{
	const uint64_t A = TU_BASE;
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, 1, PROT_RW, MAP_PRIV_ANON);
	fill(p, A, PG, 1);
	cowvm_task_t *c = tu_spawn();
	EQ(cowvm_dput(p, c, COWVM_COPY, A, A, PG), 0);
	EQ(cowvm_dput(p, c, COWVM_SNAP, 0, 0, 0), 0);
	fill(c, A, PG, 2);
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, PG), 0);
	CHECK();
	uint64_t shared = cowvm_pagemap(c, A) & COWVM_PM_PFN_MASK;
	EQ(cowvm_pagemap(p, A) & COWVM_PM_PFN_MASK, shared);
	struct cowvm_vmstat before = vmstat();
	EQ(cowvm_dget(p, c, COWVM_MERGE, A, A, PG), 0);
	CHECK();
	EQ(vmstat().cow_copies, before.cow_copies);
	EQ(cowvm_pagemap(p, A) & COWVM_PM_PFN_MASK, shared);
	EQ(report_of(p).pages_merged + report_of(p).pages_copied + report_of(p).pages_shared, 0);
	expect_fill(p, A, PG, 2, 0);
}
