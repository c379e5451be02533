/*
 * dput_side.c - Determinator's dput and dget (COPY, SNAP, MERGE) on cowvm.  Linux has no such
 * calls, so these cases have no host side; their figures are cowvm's alone.
 *
 * The MERGE case is issue 5's property: a large range with one changed page merges in about
 * the time of a small one, because the unchanged page tables are skipped whole
 * (cowvm_merge_report's tables_skipped says so, and is checked).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static cowvm_task_t *spawn(cowvm_t *vm)
{
	cowvm_task_t *t = cowvm_spawn(vm);
	if (!t)
		die("cowvm: spawn: %s", strerror(errno));
	return t;
}

static void exit_task(cowvm_task_t *t)
{
	int err = cowvm_exit(t);
	if (err)
		die("cowvm: exit: %s", strerror(-err));
}

static uint64_t map_region(cowvm_task_t *t, uint64_t pages)
{
	int64_t addr = cowvm_mmap(t, 0, pages * BENCH_PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS);
	if (addr < 0)
		die("cowvm: mmap of %llu pages: %s", (unsigned long long)pages, strerror((int)-addr));
	return (uint64_t)addr;
}

static void touch_pages(cowvm_task_t *t, uint64_t addr, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		if (cowvm_store64(t, addr + i * BENCH_PAGE, i + 1))
			die("cowvm: store to %#llx failed", (unsigned long long)(addr + i * BENCH_PAGE));
}

static struct cowvm_vmstat vmstat(cowvm_t *vm)
{
	struct cowvm_vmstat s;
	if (cowvm_vmstat(vm, &s))
		die("cowvm: vmstat");
	return s;
}

static void check_no_leak(cowvm_t *vm, uint64_t free_before, const char *what)
{
	uint64_t now = vmstat(vm).nr_free_pages;
	if (now != free_before)
		die("cowvm: %s leaked %lld frames", what, (long long)(free_before - now));
}

/* The timed regions call these, and only they do (callgrind --toggle-collect=timed_merge ...). */
static __attribute__((noinline)) int timed_dput(cowvm_task_t *p, cowvm_task_t *c, int op,
						uint64_t paddr, uint64_t caddr, uint64_t len)
{
	return cowvm_dput(p, c, op, paddr, caddr, len);
}

/* (no op argument: a constant one would make gcc rename it timed_dget.constprop.0) */
static __attribute__((noinline)) int timed_merge(cowvm_task_t *p, cowvm_task_t *c, uint64_t addr,
						 uint64_t len)
{
	return cowvm_dget(p, c, COWVM_MERGE, addr, addr, len);
}

/* Pages (a page apart, from addr) whose first word is not i + 1, as touch_pages wrote it. */
static uint64_t words_wrong(cowvm_task_t *t, uint64_t addr, uint64_t pages)
{
	uint64_t wrong = 0, v;
	for (uint64_t i = 0; i < pages; i++)
		if (cowvm_load64(t, addr + i * BENCH_PAGE, &v) || v != i + 1)
			wrong++;
	return wrong;
}

/* The page tables of n pages: PTE tables (+ 1 when not aligned), 2 PMDs, a PUD, a PGD. */
static uint64_t tables_max(uint64_t pages)
{
	return (pages + 511) / 512 + 1 + 4;
}

/*
 * dput COPY of `pages` touched pages from a parent to a fresh child.
 *  page_multiple: to the same address in an empty child (delta 0): the page-aligned middle is
 *    shared copy-on-write, so only page tables are allocated, about one per 512 pages;
 *  else: to the child's address + 8 bytes, into a range the child mapped and touched beforehand,
 *    so that every byte is copied (two pieces per page) and nothing is allocated.
 * v[0] ns per page, v[1] total us.
 */
static void dput_copy(const struct bench_env *env, uint64_t pages, bool page_multiple,
		      struct sample *out)
{
	cowvm_t *vm = env->vm;
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm), *c = spawn(vm);
	uint64_t addr = map_region(p, pages);
	touch_pages(p, addr, pages);
	uint64_t dst = addr;
	if (!page_multiple) {
		dst = map_region(c, pages + 1) + 8;
		touch_pages(c, dst - 8, pages + 1);
	}
	struct cowvm_vmstat s0 = vmstat(vm);
	uint64_t t0 = now_ns();
	int err = timed_dput(p, c, COWVM_COPY, addr, dst, pages * BENCH_PAGE);
	uint64_t t1 = now_ns();
	struct cowvm_vmstat s1 = vmstat(vm);
	if (err)
		die("cowvm: dput COPY of %llu pages: %s", (unsigned long long)pages, strerror(-err));
	uint64_t wrong = words_wrong(c, dst, pages);
	exit_task(c);
	exit_task(p);
	check_no_leak(vm, free0, "dput COPY");
	out->v[0] = (double)(t1 - t0) / (double)pages;
	out->v[1] = (double)(t1 - t0) / 1e3;
	uint64_t alloc = s1.pgalloc - s0.pgalloc;
	uint64_t tables = s1.nr_page_table_pages - s0.nr_page_table_pages;
	if (page_multiple) {
		bench_check(out, "cowvm dput COPY (COW): frames allocated = page-table pages added",
			    alloc, tables);
		bench_check_max(out, "cowvm dput COPY (COW): page-table pages added", tables,
				tables_max(pages));
	} else {
		bench_check(out, "cowvm dput COPY (bytes): frames allocated", alloc, 0);
	}
	bench_check(out, "cowvm dput COPY: COW copies", s1.cow_copies - s0.cow_copies, 0);
	bench_check(out, "cowvm dput COPY: pages the child reads wrong", wrong, 0);
}

void vm_dput_copy_cow(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	dput_copy(env, pages, true, out);
}

void vm_dput_copy_bytes(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	dput_copy(env, pages, false, out);
}

/*
 * dput SNAP of a child with `pages` touched: the image copies the child's page tables and
 * shares its frames.  v[0] ns per page.
 */
void vm_snap(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm), *c = spawn(vm);
	uint64_t addr = map_region(c, pages);
	touch_pages(c, addr, pages);
	struct cowvm_vmstat s0 = vmstat(vm);
	uint64_t t0 = now_ns();
	int err = timed_dput(p, c, COWVM_SNAP, 0, 0, 0);
	uint64_t t1 = now_ns();
	struct cowvm_vmstat s1 = vmstat(vm);
	if (err)
		die("cowvm: dput SNAP of %llu pages: %s", (unsigned long long)pages, strerror(-err));
	struct cowvm_task_stats ts;
	if (cowvm_task_stats(c, &ts))
		die("cowvm: task_stats");
	exit_task(c);
	exit_task(p);
	check_no_leak(vm, free0, "dput SNAP");
	out->v[0] = (double)(t1 - t0) / (double)pages;
	uint64_t alloc = s1.pgalloc - s0.pgalloc;
	uint64_t tables = s1.nr_page_table_pages - s0.nr_page_table_pages;
	bench_check(out, "cowvm dput SNAP: frames allocated = page-table pages added", alloc, tables);
	bench_check(out, "cowvm dput SNAP: page-table pages added = the child's", tables, ts.nr_ptes);
	bench_check_max(out, "cowvm dput SNAP: page-table pages added", tables, tables_max(pages));
	bench_check(out, "cowvm dput SNAP: COW copies", s1.cow_copies - s0.cow_copies, 0);
}

/*
 * MERGE with one changed page.  A parent maps and touches `pages` (a multiple of 512), 2 MiB
 * aligned, so that the range is exactly pages / 512 PTE tables; the changed page is in the
 * middle one.  Each merge makes a fresh child, copies the parent's range to the same address
 * (dput COPY: shared copy-on-write), takes its SNAP, lets it write one word of the changed page
 * (one COW copy) and times the dget MERGE of the range around the changed page (the whole
 * range, or the one table holding it) back into the parent, which takes the child's page
 * copy-on-write (pages_shared).
 */
struct merge_case {
	cowvm_t *vm;
	cowvm_task_t *parent;
	uint64_t addr, pages, changed; /* changed: the page index the child writes */
};

#define MERGE_SMALL_PAGES 512 /* one PTE table, 2 MiB */
#define MERGE_ITERS 3         /* merges of each size per round; their median is kept */

/* One MERGE of range_pages around the changed page: ns, with the report checked. */
static double merge_once(struct merge_case *mc, uint64_t range_pages, struct sample *out)
{
	cowvm_t *vm = mc->vm;
	uint64_t first = range_pages >= mc->pages ? 0 : (mc->changed & ~511ull);
	if (range_pages > mc->pages)
		range_pages = mc->pages;
	uint64_t start = mc->addr + first * BENCH_PAGE, len = range_pages * BENCH_PAGE;
	uint64_t where = mc->addr + mc->changed * BENCH_PAGE;
	cowvm_task_t *c = spawn(vm);
	int err = cowvm_dput(mc->parent, c, COWVM_COPY, mc->addr, mc->addr, mc->pages * BENCH_PAGE);
	if (!err)
		err = cowvm_dput(mc->parent, c, COWVM_SNAP, 0, 0, 0);
	if (err)
		die("cowvm: merge setup: %s", strerror(-err));
	struct cowvm_vmstat s0 = vmstat(vm);
	uint64_t value = 0xc0ffee0000000000ull + s0.cow_copies; /* differs from every earlier one */
	if (cowvm_store64(c, where, value))
		die("cowvm: the child's store failed");
	struct cowvm_vmstat s1 = vmstat(vm);
	uint64_t t0 = now_ns();
	err = timed_merge(mc->parent, c, start, len);
	uint64_t t1 = now_ns();
	struct cowvm_vmstat s2 = vmstat(vm);
	struct cowvm_merge_report r;
	if (cowvm_merge_report(mc->parent, &r))
		die("cowvm: merge_report");
	uint64_t v = 0;
	bool arrived = cowvm_load64(mc->parent, where, &v) == 0 && v == value;
	exit_task(c);
	const char *what = range_pages == mc->pages ? "cowvm MERGE (large)" : "cowvm MERGE (small)";
	char buf[96];
#define CHECK_MERGE(field, got, want)                               \
	do {                                                        \
		snprintf(buf, sizeof(buf), "%s: %s", what, field);  \
		bench_check(out, buf, got, want);                   \
	} while (0)
	CHECK_MERGE("return (-errno)", (uint64_t)-err, 0);
	CHECK_MERGE("COW copies of the child's write", s1.cow_copies - s0.cow_copies, 1);
	CHECK_MERGE("frames allocated", s2.pgalloc - s1.pgalloc, 0);
	CHECK_MERGE("the parent reads the child's value", arrived, 1);
	CHECK_MERGE("tables_skipped", r.tables_skipped, range_pages / 512 - 1);
	CHECK_MERGE("pages_skipped", r.pages_skipped, 511);
	CHECK_MERGE("pages_shared", r.pages_shared, 1);
	CHECK_MERGE("pages_copied", r.pages_copied, 0);
	CHECK_MERGE("pages_merged", r.pages_merged, 0);
	CHECK_MERGE("conflicts", r.conflicts, 0);
#undef CHECK_MERGE
	return (double)(t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/*
 * v[0] us of the MERGE of one 2 MiB table, v[1] us of the MERGE of all `pages`, v[2] their
 * ratio: MERGE_ITERS of each size on one parent, alternating (which goes first alternates
 * with the round), each with a fresh child; the medians of each size.
 */
void vm_merge(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
	if (pages % 512)
		die("cowvm: merge range of %llu pages is not whole 2 MiB tables", (unsigned long long)pages);
	uint64_t free0 = vmstat(vm).nr_free_pages;
	struct merge_case mc = { .vm = vm, .parent = spawn(vm), .pages = pages };
	uint64_t raw = map_region(mc.parent, pages + 512);
	mc.addr = (raw + 2 * MIB - 1) & ~(2 * MIB - 1);
	mc.changed = pages / 2 + 17;
	touch_pages(mc.parent, mc.addr, pages);

	double t[2][MERGE_ITERS];
	uint64_t range[2] = { MERGE_SMALL_PAGES, pages };
	for (int i = 0; i < MERGE_ITERS; i++)
		for (int k = 0; k < 2; k++) {
			int which = (k + env->round) % 2;
			t[which][i] = merge_once(&mc, range[which], out);
		}
	exit_task(mc.parent);
	check_no_leak(vm, free0, "dget MERGE");
	qsort(t[0], MERGE_ITERS, sizeof(double), cmp_double);
	qsort(t[1], MERGE_ITERS, sizeof(double), cmp_double);
	double small = t[0][MERGE_ITERS / 2], large = t[1][MERGE_ITERS / 2];
	out->v[0] = small / 1e3;
	out->v[1] = large / 1e3;
	out->v[2] = large / small;
}
