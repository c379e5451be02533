/*
 * gen.c - the operation generator: from a source of choices (a seeded PRNG, or input bytes for
 * libFuzzer/AFL++) it makes the next operation, looking at the model to aim at mapped pages,
 * their neighbours, the arena where fixed and hinted mappings collide, the heap's edge and the
 * ends of user space - so that collisions, page-edge accesses and holes are the rule.
 *
 * Kinds are drawn by weight; an operation that cannot be made (no free slot, no pin) becomes a
 * related one.  cfg.avoid keeps the inputs of open bugs out (FUZZ_KNOWN), cfg.max_pages keeps
 * each process near a size the machine can hold.
 */
#include <errno.h>
#include <string.h>

#include "driver.h"

#define PG 4096ull
/* where MAP_FIXED and hinted mappings collide: 96 pages across a 2 MiB boundary, so that a
 * range there spans two page tables (MERGE skips unchanged tables whole) */
#define ARENA (0x10200000ull - 32 * 4096)
#define ARENA_PAGES 96
#define MAP_TYPE_BITS 0x0f

/* ---- the source of choices --------------------------------------------------------------- */

void fuzz_src_seed(struct fuzz_src *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->state = seed;
}

void fuzz_src_bytes(struct fuzz_src *s, const uint8_t *data, size_t size)
{
	memset(s, 0, sizeof(*s));
	s->data = data;
	s->size = size;
	s->from_bytes = 1;
}

/* A choice in [0, n): from the PRNG, or from as few input bytes as n needs. */
static uint64_t below(struct fuzz_src *s, uint64_t n)
{
	if (n <= 1)
		return 0;
	uint64_t v = 0;
	if (!s->from_bytes) {
		v = fuzz_splitmix(&s->state);
	} else {
		for (uint64_t span = n - 1; span; span >>= 8) {
			uint8_t b = 0;
			if (s->pos < s->size)
				b = s->data[s->pos++];
			else
				s->dry = 1;
			v = (v << 8) | b;
		}
	}
	return v % n;
}

static int chance(struct fuzz_src *s, uint64_t one_in)
{
	return below(s, one_in) == 0;
}

/* ---- the generator -------------------------------------------------------------------------- */

static const unsigned gen_weights[FOP_NKINDS] = {
	[FOP_SPAWN] = 1, [FOP_FORK] = 4, [FOP_THREAD] = 2, [FOP_EXIT] = 3,
	[FOP_MMAP] = 12, [FOP_MUNMAP] = 5, [FOP_MPROTECT] = 6, [FOP_MADVISE] = 7, [FOP_BRK] = 3,
	[FOP_READ] = 10, [FOP_WRITE] = 16, [FOP_LOAD64] = 3, [FOP_STORE64] = 3,
	[FOP_COPY_FROM] = 5, [FOP_COPY_TO] = 6, [FOP_GET_USER] = 2, [FOP_PUT_USER] = 2,
	[FOP_COMPARE] = 1, [FOP_PIN] = 2, [FOP_UNPIN] = 1, [FOP_PIN_IO] = 2, [FOP_REMOTE] = 3,
	[FOP_DPUT] = 5, [FOP_DGET] = 5,
	[FOP_SNAPSHOT] = 1, [FOP_RESTORE] = 2,
};

#define BRK_PAGES 24

static const uint64_t bad_addrs[] = {
	0, 8, 0xfff, MODEL_MMAP_MIN_ADDR - 8, MODEL_TASK_SIZE_MAX - 8, MODEL_TASK_SIZE_MAX - 1,
	MODEL_USER_TOP - 8, MODEL_USER_TOP, MODEL_USER_TOP + PG, 1ull << 63, UINT64_MAX - 7,
	UINT64_MAX,
};
#define NBAD (sizeof(bad_addrs) / sizeof(bad_addrs[0]))

/* A page address: mostly a mapped page or its neighbour, else the arena, the heap's edge, the
 * top or the bottom of user space. */
static uint64_t pick_page(struct fuzz_src *s, const struct model_mm *mm)
{
	uint64_t u = below(s, 32);
	if (mm->n && u < 22) {
		uint64_t a = mm->pages[below(s, mm->n)].addr;
		switch (below(s, 8)) {
		case 0: return a >= PG ? a - PG : a;
		case 1: return a + PG;
		case 2: return a >= 2 * PG ? a - 2 * PG : a;
		default: return a;
		}
	}
	if (u < 28)
		return ARENA + below(s, ARENA_PAGES) * PG;
	if (u < 30) {
		uint64_t top = MODEL_PAGE_ALIGN(mm->brk), back = below(s, 4) * PG;
		return top - back >= MODEL_MMAP_MIN_ADDR ? top - back : top;
	}
	if (u == 30)
		return MODEL_TASK_SIZE_MAX - (1 + below(s, 4)) * PG;
	return MODEL_MMAP_MIN_ADDR + below(s, 4) * PG;
}

static uint64_t pick_access(struct fuzz_src *s, const struct model_mm *mm, unsigned bad_one_in)
{
	if (chance(s, bad_one_in))
		return bad_addrs[below(s, NBAD)];
	uint64_t a = pick_page(s, mm);
	switch (below(s, 4)) {
	case 0: return a;
	case 1: return a + below(s, PG);
	case 2: return a + PG - 1 - below(s, 16);
	default: return a + below(s, 64);
	}
}

static uint64_t pick_len(struct fuzz_src *s)
{
	switch (below(s, 8)) {
	case 0: case 1: case 2: case 3: return 1 + below(s, 64);
	case 4: case 5: return 1 + below(s, PG);
	case 6: return 1 + below(s, 3 * PG);
	default: return 8;
	}
}

/* A long access: over the process's longest run of mapped pages (more pages than cowvm
 * translates in one chunk, when there are that many), sometimes running off its end. */
static void pick_long(struct fuzz_src *s, const struct model_mm *mm, uint64_t *addr, uint64_t *len)
{
	size_t best = 0, best_len = 0;
	for (size_t i = 0, start = 0; i < mm->n; i++) {
		if (i && mm->pages[i].addr != mm->pages[i - 1].addr + PG)
			start = i;
		if (i + 1 - start > best_len)
			best = start, best_len = i + 1 - start;
	}
	*addr = mm->n ? mm->pages[best].addr + below(s, PG) : ARENA;
	*len = best_len * PG - below(s, 2 * PG) + (chance(s, 4) ? below(s, 2 * PG) : 0);
	if (*len < 64 * PG || *len > FUZZ_MAX_ACCESS)
		*len = 64 * PG + 1 + below(s, 16 * PG);
}

static uint64_t pick_range_len(struct fuzz_src *s)
{
	uint64_t len = (1 + below(s, 8)) * PG;
	if (chance(s, 4))
		len -= below(s, PG);
	return len;
}

static uint64_t pick_seed(struct fuzz_src *s)
{
	return s->from_bytes ? below(s, 1ull << 32) : fuzz_splitmix(&s->state);
}

/* ---- dput / dget ---------------------------------------------------------------------------- */

#define DPUT_ZERO_MAX (32 * PG)  /* a ZERO maps its whole middle: keep processes small */
#define DPUT_HUGE (1ull << 30)    /* a COPY over a gigabyte of mostly holes */

static uint64_t pick_dput_len(struct fuzz_src *s)
{
	switch (below(s, 12)) {
	case 0: case 1: return 1 + below(s, 64);
	case 2: case 3: return 1 + below(s, 2 * PG);
	case 4: case 5: return (1 + below(s, 8)) * PG;
	case 6: return (1 + below(s, 8)) * PG + below(s, 32) - 16;
	case 7: case 8: return 1 + below(s, 24 * PG);
	case 9: return 24 * PG + below(s, FUZZ_MAX_ACCESS - 24 * PG);
	case 10: return chance(s, 2) ? 0 : (64 + below(s, 64)) * PG;
	default:
		switch (below(s, 4)) {
		case 0: return DPUT_HUGE;
		case 1: return MODEL_TASK_SIZE_MAX;
		case 2: return UINT64_MAX - below(s, PG);
		default: return MODEL_USER_TOP;
		}
	}
}

/* Mapped pages of mm from addr on, contiguous, at most max. */
static uint64_t mapped_run(const struct model_mm *mm, uint64_t addr, uint64_t max)
{
	uint64_t n = 0;
	for (size_t i = model_index(mm, addr); i < mm->n && n < max && mm->pages[i].addr == addr + n * PG; i++)
		n++;
	return n;
}

/* Do a COPY's source and destination ranges hold one page of one shared object? */
static int shmem_overlap(const struct model_mm *smm, uint64_t src, const struct model_mm *dmm,
			 uint64_t dst, uint64_t len)
{
	if (!len || len > MODEL_TASK_SIZE_MAX || src > MODEL_TASK_SIZE_MAX - len ||
	    dst > MODEL_TASK_SIZE_MAX - len)
		return 0; /* -EINVAL, or nothing to copy */
	for (size_t i = model_index(smm, src & ~(PG - 1)); i < smm->n && smm->pages[i].addr < src + len; i++) {
		const struct model_page *sp = &smm->pages[i];
		if (!sp->obj)
			continue;
		for (size_t j = model_index(dmm, dst & ~(PG - 1)); j < dmm->n && dmm->pages[j].addr < dst + len; j++)
			if (dmm->pages[j].obj == sp->obj && dmm->pages[j].index == sp->index)
				return 1;
	}
	return 0;
}

/*
 * dput/dget: the child is another live task, mostly of another process (a MERGE prefers one
 * with a SNAP); sometimes a thread of the parent's process or the parent itself, where a COPY
 * keeps its two ranges apart (1 in 6 overlapping, which must fail).  COPY addresses: the
 * same address in both, a page-multiple delta (a shared middle), any delta, or an address of
 * the destination's own; lengths from a byte to beyond a chunk, page multiples and not, a
 * gigabyte over holes, and ranges past user space.
 */
static void gen_dput(struct fuzz_run *r, struct fuzz_src *s, struct fuzz_op *op, int get,
		     const int *live, int nlive)
{
	int p = op->task, c = live[below(s, (uint64_t)nlive)];
	uint64_t u = below(s, 20);
	int code = u < 9 ? COWVM_COPY : u < 12 ? COWVM_ZERO : u < 19 ? (get ? COWVM_MERGE : COWVM_SNAP) : 0;
	if (!code) {
		static const int bad[] = { 0, 5, -1, COWVM_SNAP, COWVM_MERGE };
		code = bad[below(s, 5)];
		if (code == (get ? COWVM_MERGE : COWVM_SNAP))
			code = get ? COWVM_SNAP : COWVM_MERGE;
	}
	int want_snap = code == COWVM_MERGE && !chance(s, 4);
	if ((r->mm[c] == r->mm[p] && !chance(s, 4)) || (want_snap && !r->mm[c]->snap)) {
		uint64_t k0 = below(s, (uint64_t)nlive);
		for (int k = 0; k < nlive; k++) {
			int t = live[(k0 + (uint64_t)k) % (uint64_t)nlive];
			if (r->mm[t] != r->mm[p] && (!want_snap || r->mm[t]->snap)) {
				c = t;
				break;
			}
		}
	}
	op->slot = (uint8_t)c;
	op->arg = code;
	const struct model_mm *pmm = r->mm[p], *cmm = r->mm[c];
	uint64_t pa, ca, len;
	switch (code) {
	case COWVM_MERGE: {
		/* mostly a page the child has and the parent maps at the same address (a fork's
		 * layout), over the parent's run of mapped pages from there: a range that can
		 * merge and that the child may have changed */
		uint64_t u2 = below(s, 8);
		pa = ca = pick_page(s, pmm);
		if (u2 < 5 && cmm->n) {
			int found = 0;
			if (cmm->snap && chance(s, 2)) { /* a page the child changed since its SNAP */
				uint64_t k0 = below(s, cmm->n);
				for (size_t k = 0; k < cmm->n && !found; k++) {
					const struct model_page *cp = &cmm->pages[(k0 + k) % cmm->n];
					if (!cp->obj && model_find(pmm, cp->addr) &&
					    memcmp(model_page_bytes(cp), model_snap_bytes(cmm->snap, cp->addr), PG))
						pa = ca = cp->addr, found = 1;
				}
			}
			for (int tries = 0; tries < 4 && !found; tries++) {
				uint64_t a = cmm->pages[below(s, cmm->n)].addr;
				if (model_find(pmm, a))
					pa = ca = a, found = 1;
			}
			if (found && chance(s, 2)) /* start a few pages lower, where the parent maps */
				for (uint64_t back = below(s, 4); back && model_find(pmm, pa - PG); back--)
					pa -= PG, ca -= PG;
			uint64_t n = mapped_run(pmm, pa, 1 + below(s, 32));
			len = (n ? n : 1) * PG;
		} else if (u2 < 7) {
			if (chance(s, 4))
				ca = pick_page(s, cmm);
			len = chance(s, 2) ? (1 + below(s, 8)) * PG : (1 + below(s, 32)) * PG;
		} else if (cmm->n) { /* the child's whole span */
			uint64_t first = cmm->pages[0].addr, last = cmm->pages[cmm->n - 1].addr;
			ca = first;
			pa = chance(s, 4) ? pick_page(s, pmm) : ca;
			len = last - first < 512 * PG ? last - first + PG : 512 * PG;
		} else {
			len = PG;
		}
		if ((r->cfg.avoid & FUZZ_AVOID_MERGE_SHMEM) && len < (1ull << 32)) {
			uint64_t n = 0; /* stop before the parent's first shared page */
			while (n < len / PG) {
				const struct model_page *pg = model_find(pmm, pa + n * PG);
				if (pg && pg->obj)
					break;
				n++;
			}
			len = n * PG;
		}
		if (chance(s, 16)) {
			switch (below(s, 5)) {
			case 0: pa += 1 + below(s, PG - 1); break;
			case 1: ca += 1 + below(s, PG - 1); break;
			case 2: len += 1 + below(s, PG - 1); break;
			case 3: len = 0; break;
			default: len = chance(s, 2) ? MODEL_USER_TOP : MODEL_TASK_SIZE_MAX - ca + PG; break;
			}
		}
		break;
	}
	case COWVM_ZERO: {
		uint64_t a = pick_access(s, get ? pmm : cmm, 16), other = pick_access(s, get ? cmm : pmm, 4);
		len = pick_dput_len(s);
		if (len > DPUT_ZERO_MAX && len <= MODEL_TASK_SIZE_MAX && a <= MODEL_TASK_SIZE_MAX - len)
			len = 1 + below(s, DPUT_ZERO_MAX); /* a valid range: keep it small */
		pa = get ? a : other;
		ca = get ? other : a;
		break;
	}
	case COWVM_SNAP:
		pa = chance(s, 2) ? 0 : pick_page(s, pmm);
		ca = pick_page(s, cmm);
		len = pick_dput_len(s);
		break;
	default: { /* COPY, and the ops the call does not take */
		const struct model_mm *smm = get ? cmm : pmm, *dmm = get ? pmm : cmm;
		uint64_t src = pick_access(s, smm, 16), dst;
		len = pick_dput_len(s);
		switch (below(s, 8)) {
		case 0: case 1: dst = src; break;
		case 2: dst = src + (below(s, 17) - 8) * PG; break;
		case 3: dst = src + below(s, 6 * PG) - 3 * PG; break;
		case 4: case 5: dst = pick_access(s, dmm, 16); break;
		default: dst = pick_page(s, dmm) + (src & (PG - 1)); break;
		}
		if (dmm->n >= r->cfg.max_pages && len > 2 * PG && len <= DPUT_HUGE)
			len = 1 + below(s, 2 * PG);
		/* a valid range of more than a gigabyte (from address 0, say): cowvm's COPY takes a
		 * step per page of the source range, holes included (source_holes_init: 2^35 steps
		 * and a 4 GiB bitmap for the whole of user space) - keep it to a gigabyte */
		if (len > DPUT_HUGE && len <= MODEL_TASK_SIZE_MAX && src <= MODEL_TASK_SIZE_MAX - len &&
		    dst <= MODEL_TASK_SIZE_MAX - len)
			len = DPUT_HUGE;
		if (smm == dmm && !chance(s, 6) && len <= DPUT_HUGE && dst < src + len && src < dst + len) {
			uint64_t gap = below(s, 2 * PG);
			if (chance(s, 2))
				gap &= ~(PG - 1); /* keep a page-multiple delta if there was one */
			dst = chance(s, 2) && src >= len + gap + MODEL_MMAP_MIN_ADDR ? src - len - gap
										     : src + len + gap;
		}
		if ((r->cfg.avoid & FUZZ_AVOID_DPUT_EMPTY_SOURCE) && !smm->n && ((dst - src) & (PG - 1)) == 0 &&
		    len <= MODEL_TASK_SIZE_MAX && MODEL_PAGE_ALIGN(src) < ((src + len) & ~(PG - 1)))
			dst++; /* no shared middle */
		if ((r->cfg.avoid & FUZZ_AVOID_DPUT_SHMEM_OVERLAP) && shmem_overlap(smm, src, dmm, dst, len))
			len = 0;
		pa = get ? dst : src;
		ca = get ? src : dst;
		break;
	}
	}
	op->addr = pa;
	op->seed = ca;
	op->len = len;
}

/* restore: a held snapshot, mostly by a task of its own process (else -EINVAL); -1 if there is
 * none.  Sets op->task and op->slot (the latter is overwritten by the caller for other kinds). */
static int gen_restore(struct fuzz_run *r, struct fuzz_src *s, struct fuzz_op *op)
{
	int held[FUZZ_SNAPS], n = 0;
	for (int i = 0; i < FUZZ_SNAPS; i++)
		if (r->snaps[i].snap)
			held[n++] = i;
	if (!n)
		return -1;
	int i = held[below(s, (uint64_t)n)];
	if (!chance(s, 8))
		for (int t = 0; t < FUZZ_SLOTS; t++)
			if (r->task[t] && r->mm[t] == r->snaps[i].mm) {
				op->task = (uint8_t)t;
				break;
			}
	op->slot = (uint8_t)i;
	return 0;
}

int fuzz_gen(struct fuzz_run *r, struct fuzz_src *s, struct fuzz_op *op)
{
	int live[FUZZ_SLOTS], nlive = 0, free_slot = -1;
	for (int i = 0; i < FUZZ_SLOTS; i++) {
		if (r->task[i])
			live[nlive++] = i;
		else if (free_slot < 0)
			free_slot = i;
	}
	memset(op, 0, sizeof(*op));
	if (!nlive) {
		op->kind = FOP_SPAWN;
		op->slot = (uint8_t)free_slot;
		return 0;
	}
	unsigned total = 0;
	for (int k = 0; k < FOP_NKINDS; k++)
		total += gen_weights[k];
	unsigned w = (unsigned)below(s, total);
	int kind = 0;
	while (w >= gen_weights[kind])
		w -= gen_weights[kind++];
	op->task = (uint8_t)live[below(s, (uint64_t)nlive)];
	const struct model_mm *mm = r->mm[op->task];
	const unsigned avoid = r->cfg.avoid;

	int free_pin = -1, used_pins[FUZZ_PINS], nused = 0;
	for (int i = 0; i < FUZZ_PINS; i++) {
		if (r->pins[i].pin)
			used_pins[nused++] = i;
		else if (free_pin < 0)
			free_pin = i;
	}
	if ((kind == FOP_SPAWN || kind == FOP_FORK || kind == FOP_THREAD) && free_slot < 0)
		kind = FOP_EXIT;
	if (kind == FOP_PIN && free_pin < 0)
		kind = FOP_UNPIN;
	if ((kind == FOP_UNPIN || kind == FOP_PIN_IO) && !nused)
		kind = FOP_PIN;
	if ((kind == FOP_MMAP || kind == FOP_BRK) && mm->n >= r->cfg.max_pages)
		kind = FOP_MUNMAP;
	if (kind == FOP_RESTORE && gen_restore(r, s, op) < 0)
		kind = FOP_SNAPSHOT;
	op->kind = (uint8_t)kind;
	if (kind != FOP_RESTORE)
		op->slot = (uint8_t)(free_slot < 0 ? 0 : free_slot);

	switch (kind) {
	case FOP_MMAP: {
		uint64_t pages = chance(s, 4) ? 1 + below(s, 16) : 1 + below(s, 4);
		if (r->cfg.max_pages >= 256 && chance(s, 16))
			pages = 65 + below(s, 32); /* room for accesses longer than a chunk */
		uint64_t len = pages * PG;
		if (chance(s, 4))
			len -= below(s, PG);
		int flags = MAP_ANONYMOUS | (below(s, 10) < 7 ? MAP_PRIVATE : MAP_SHARED);
		static const int prots[] = {
			PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
			PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE, PROT_WRITE, PROT_EXEC,
			PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC,
			PROT_READ | PROT_WRITE | 0x10, /* an unknown bit: mmap ignores it */
		};
		op->arg = prots[below(s, sizeof(prots) / sizeof(prots[0]))];
		uint64_t u = below(s, 20), addr = 0;
		if (u < 8) {
			flags |= MAP_FIXED;
			addr = pick_page(s, mm);
		} else if (u == 8) {
			flags |= MAP_FIXED_NOREPLACE;
			addr = pick_page(s, mm);
		} else if (u < 13) {
			addr = pick_page(s, mm);
			if (chance(s, 4) && !(avoid & FUZZ_AVOID_UNALIGNED_HINT))
				addr += 1 + below(s, PG - 1);
		}
		if (chance(s, 10))
			flags |= MAP_POPULATE;
		if (chance(s, 20))
			flags |= MAP_NORESERVE;
		if (chance(s, 40)) { /* one thing wrong */
			int solo = !!(avoid & FUZZ_AVOID_BAD_MMAP_ARGS);
			switch (below(s, 8)) {
			case 0: flags &= ~MAP_ANONYMOUS; break;
			case 1: flags &= ~MAP_TYPE_BITS; break;
			case 2: flags = (flags & ~MAP_TYPE_BITS) | MAP_SHARED_VALIDATE; break;
			case 3: len = 0; break;
			case 4: /* unaligned; with solo, not also beyond the top (ENOMEM comes first) */
				flags |= MAP_FIXED;
				addr = (solo ? ARENA + below(s, ARENA_PAGES) * PG : pick_page(s, mm)) +
				       1 + below(s, PG - 1);
				break;
			case 5: flags |= MAP_FIXED; addr = below(s, 16) * PG; break;
			case 6: len = chance(s, 2) ? 1ull << 50 : UINT64_MAX - below(s, PG); break;
			default: flags |= MAP_FIXED; addr = MODEL_TASK_SIZE_MAX - PG; len = 2 * PG; break;
			}
			if (solo && (flags & MAP_TYPE_BITS) != MAP_PRIVATE && (flags & MAP_TYPE_BITS) != MAP_SHARED)
				flags &= ~(MAP_FIXED | MAP_FIXED_NOREPLACE);
			if (solo && !(flags & MAP_ANONYMOUS))
				len = len ? len : PG;
		}
		op->flags = flags;
		op->addr = addr;
		op->len = len;
		break;
	}
	case FOP_MUNMAP:
		op->addr = pick_page(s, mm);
		op->len = chance(s, 8) ? 16 * PG : pick_range_len(s);
		if (chance(s, 30))
			op->addr += 1 + below(s, PG - 1);
		if (chance(s, 30))
			op->len = 0;
		if (chance(s, 40))
			op->len = MODEL_USER_TOP;
		break;
	case FOP_MPROTECT: {
		static const int prots[] = {
			PROT_NONE, PROT_READ, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
			PROT_READ | PROT_WRITE, PROT_WRITE, PROT_EXEC, PROT_READ | PROT_EXEC,
			PROT_READ | PROT_WRITE | PROT_EXEC, PROT_READ | 0x8 /* PROT_SEM */, 0x10 /* bad */,
		};
		op->arg = prots[below(s, sizeof(prots) / sizeof(prots[0]))];
		op->addr = pick_page(s, mm);
		op->len = pick_range_len(s);
		if (chance(s, 30))
			op->addr += 1 + below(s, PG - 1);
		if (chance(s, 30))
			op->len = 0;
		if (chance(s, 60))
			op->len = UINT64_MAX - below(s, 100);
		if ((avoid & FUZZ_AVOID_MPROTECT_ORDER) && op->arg == 0x10 &&
		    (op->len == 0 || op->len > UINT64_MAX - PG))
			op->arg = PROT_READ;
		break;
	}
	case FOP_MADVISE: {
		static const int advices[] = {
			MADV_DONTNEED, MADV_DONTNEED, MADV_DONTNEED, MADV_DONTNEED, MADV_DONTNEED,
			MADV_DONTFORK, MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_WIPEONFORK,
			MADV_KEEPONFORK, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
			MADV_POPULATE_READ, MADV_POPULATE_WRITE, MADV_POPULATE_WRITE,
		};
		static const int bad[] = { 5, 6, 7, 999, -1 };
		op->arg = chance(s, 40) ? bad[below(s, 5)] : advices[below(s, sizeof(advices) / sizeof(advices[0]))];
		op->addr = pick_page(s, mm);
		op->len = pick_range_len(s);
		if (chance(s, 30))
			op->addr += 1 + below(s, PG - 1);
		if (chance(s, 30))
			op->len = 0;
		if (chance(s, 60))
			op->len = UINT64_MAX - below(s, 100);
		break;
	}
	case FOP_BRK: {
		uint64_t u = below(s, 10), v;
		if (u == 0)
			v = 0;
		else if (u == 1)
			v = mm->start_brk - PG * (1 + below(s, 2));
		else if (u == 2)
			v = mm->brk;
		else
			v = mm->start_brk + below(s, BRK_PAGES) * PG + (chance(s, 2) ? below(s, PG) : 0);
		if ((avoid & FUZZ_AVOID_BRK_HOLE) && v >= mm->start_brk && v < mm->brk) {
			uint64_t nb = MODEL_PAGE_ALIGN(v), ob = MODEL_PAGE_ALIGN(mm->brk);
			if (nb != ob && model_range_free(mm, nb, ob - nb))
				v = mm->brk;
		}
		op->addr = v;
		break;
	}
	case FOP_READ: case FOP_WRITE:
		op->addr = pick_access(s, mm, 10);
		op->len = pick_len(s);
		if (chance(s, 16))
			pick_long(s, mm, &op->addr, &op->len);
		op->seed = pick_seed(s);
		break;
	case FOP_COPY_FROM: case FOP_COPY_TO:
		op->addr = pick_access(s, mm, 4);
		op->len = chance(s, 4) ? 1 + below(s, 5 * PG) : pick_len(s);
		if (chance(s, 16))
			pick_long(s, mm, &op->addr, &op->len);
		if ((avoid & FUZZ_AVOID_COPY_TOP) && op->addr < MODEL_TASK_SIZE_MAX &&
		    op->addr + op->len > MODEL_TASK_SIZE_MAX)
			op->addr = MODEL_TASK_SIZE_MAX - op->len - below(s, 16);
		op->seed = pick_seed(s);
		break;
	case FOP_PIN: {
		static const unsigned pin_flags[] = {
			COWVM_FOLL_PIN, COWVM_FOLL_PIN | COWVM_FOLL_WRITE, COWVM_FOLL_PIN | COWVM_FOLL_WRITE,
			COWVM_FOLL_PIN | COWVM_FOLL_LONGTERM, COWVM_FOLL_PIN | COWVM_FOLL_WRITE | COWVM_FOLL_LONGTERM,
			COWVM_FOLL_GET, COWVM_FOLL_GET | COWVM_FOLL_WRITE, 0, COWVM_FOLL_WRITE,
		};
		op->slot = (uint8_t)free_pin;
		op->arg = (int)(pin_flags[below(s, sizeof(pin_flags) / sizeof(pin_flags[0]))] |
				(chance(s, 3) ? COWVM_FOLL_FAST : 0));
		op->addr = pick_page(s, mm);
		op->len = 1 + below(s, 4);
		op->seed = pick_seed(s);
		if (avoid & FUZZ_AVOID_PIN_SHARED)
			for (uint64_t i = 0; i < op->len; i++) {
				const struct model_page *p = model_find(mm, op->addr + i * PG);
				if (p && p->obj) { /* read it remotely instead */
					op->kind = FOP_REMOTE;
					op->len *= PG;
					op->arg = 0;
					break;
				}
			}
		break;
	}
	case FOP_UNPIN:
		op->slot = (uint8_t)used_pins[below(s, (uint64_t)nused)];
		break;
	case FOP_PIN_IO: {
		op->slot = (uint8_t)used_pins[below(s, (uint64_t)nused)];
		const struct fuzz_pin *fp = &r->pins[op->slot];
		uint64_t size = fp->npages * PG;
		int can_write = fp->coherent && fp->mm && (fp->flags & COWVM_FOLL_WRITE);
		op->flags = (can_write && chance(s, 2)) || chance(s, 20); /* the latter may be -EPERM */
		op->addr = below(s, size);
		op->len = 1 + below(s, size - op->addr < 2 * PG ? size - op->addr : 2 * PG);
		if (chance(s, 20)) { /* out of the pinned range: -EINVAL */
			op->addr = size - below(s, 16);
			op->len = 64;
		}
		op->seed = pick_seed(s);
		break;
	}
	case FOP_REMOTE:
		op->addr = pick_access(s, mm, 8);
		op->len = pick_len(s);
		op->flags = (int)below(s, 2);
		op->seed = pick_seed(s);
		break;
	case FOP_DPUT: case FOP_DGET:
		gen_dput(r, s, op, kind == FOP_DGET, live, nlive);
		break;
	case FOP_SNAPSHOT:
		op->slot = (uint8_t)below(s, FUZZ_SNAPS);
		break;
	case FOP_RESTORE:
		break; /* gen_restore chose the task and the slot */
	case FOP_LOAD64: case FOP_STORE64: case FOP_GET_USER: case FOP_PUT_USER:
		op->addr = pick_access(s, mm, 10);
		if (chance(s, 4))
			op->addr = (op->addr & ~(PG - 1)) + PG - 1 - below(s, 7); /* across a page edge */
		op->len = 8;
		op->seed = pick_seed(s);
		break;
	default:
		break;
	}

	int allocating = kind == FOP_SPAWN || kind == FOP_FORK || kind == FOP_READ ||
			 kind == FOP_WRITE || kind == FOP_LOAD64 || kind == FOP_STORE64 ||
			 kind == FOP_COPY_FROM || kind == FOP_COPY_TO || kind == FOP_GET_USER ||
			 kind == FOP_PUT_USER || kind == FOP_MMAP || kind == FOP_PIN || kind == FOP_REMOTE ||
			 kind == FOP_DPUT || kind == FOP_DGET || kind == FOP_SNAPSHOT || kind == FOP_RESTORE;
	if ((avoid & FUZZ_AVOID_DPUT_OOM_HOLE) && (kind == FOP_DPUT || kind == FOP_DGET) &&
	    op->arg == COWVM_COPY)
		allocating = 0;
	if (allocating && r->cfg.inject_one_in && !(avoid & FUZZ_AVOID_INJECT) &&
	    chance(s, r->cfg.inject_one_in))
		op->inject = 1;
	return s->dry ? -1 : 0;
}
