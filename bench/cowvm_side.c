/*
 * cowvm_side.c - the cowvm side of every case, through include/cowvm.h only.
 *
 * Each case spawns a fresh process on the machine, maps private anonymous memory, touches it
 * with cowvm_store64 (one 8-byte store per page, as the host side does) and times the region
 * operation alone.  Each checks with cowvm_vmstat that the operation did what it was meant to
 * (one COW copy per page, one reuse per page ...) and that the machine got every frame back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static cowvm_task_t *spawn(cowvm_t *vm)
{
	cowvm_task_t *t = cowvm_spawn(vm);
	if (!t)
		die("cowvm: spawn: %s", strerror(errno));
	return t;
}

static cowvm_task_t *fork_task(cowvm_task_t *t)
{
	cowvm_task_t *c = cowvm_fork(t);
	if (!c)
		die("cowvm: fork: %s", strerror(errno));
	return c;
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

static uint64_t read_pages(cowvm_task_t *t, uint64_t addr, uint64_t pages)
{
	uint64_t sum = 0, v;
	for (uint64_t i = 0; i < pages; i++) {
		if (cowvm_load64(t, addr + i * BENCH_PAGE, &v))
			die("cowvm: load from %#llx failed", (unsigned long long)(addr + i * BENCH_PAGE));
		sum += v;
	}
	return sum;
}

/*
 * The timed regions call these, and only they do, so that a profiler can count exactly the
 * measured operation: valgrind --tool=callgrind --toggle-collect=timed_touch ...
 */
static __attribute__((noinline)) void timed_touch(cowvm_task_t *t, uint64_t addr, uint64_t pages)
{
	touch_pages(t, addr, pages);
}

static __attribute__((noinline)) uint64_t timed_read(cowvm_task_t *t, uint64_t addr, uint64_t pages)
{
	return read_pages(t, addr, pages);
}

static struct cowvm_vmstat vmstat(cowvm_t *vm)
{
	struct cowvm_vmstat s;
	if (cowvm_vmstat(vm, &s))
		die("cowvm: vmstat");
	return s;
}

static struct cowvm_task_stats task_stats(cowvm_task_t *t)
{
	struct cowvm_task_stats s;
	if (cowvm_task_stats(t, &s))
		die("cowvm: task_stats");
	return s;
}

/* Every case ends with the machine holding exactly the free frames it started with. */
static void check_no_leak(cowvm_t *vm, uint64_t free_before, const char *what)
{
	uint64_t now = vmstat(vm).nr_free_pages;
	if (now != free_before)
		die("cowvm: %s leaked %lld frames", what, (long long)(free_before - now));
}

/* ---- the cases -------------------------------------------------------------------------- */

struct result vm_cow_break(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, pages);
	touch_pages(p, addr, pages);
	cowvm_task_t *c = fork_task(p);
	struct cowvm_vmstat s0 = vmstat(vm);
	uint64_t t0 = now_ns();
	timed_touch(p, addr, pages);
	uint64_t t1 = now_ns();
	struct cowvm_vmstat s1 = vmstat(vm);
	exit_task(c);
	exit_task(p);
	check_no_leak(vm, free0, "COW break");
	r.v[0] = (double)(t1 - t0) / (double)pages;
	r.count[0] = s1.cow_copies - s0.cow_copies;
	return r;
}

struct result vm_first_touch(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, pages);
	uint64_t f0 = task_stats(p).min_flt;
	uint64_t t0 = now_ns();
	timed_touch(p, addr, pages);
	uint64_t t1 = now_ns();
	uint64_t f1 = task_stats(p).min_flt;
	exit_task(p);
	check_no_leak(vm, free0, "first touch");
	r.v[0] = (double)(t1 - t0) / (double)pages;
	r.count[0] = f1 - f0;
	return r;
}

struct result vm_zero_read(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, pages);
	struct cowvm_vmstat s0 = vmstat(vm);
	uint64_t t0 = now_ns();
	uint64_t sum = timed_read(p, addr, pages);
	uint64_t t1 = now_ns();
	struct cowvm_vmstat s1 = vmstat(vm);
	uint64_t t2 = now_ns();
	timed_touch(p, addr, pages);
	uint64_t t3 = now_ns();
	struct cowvm_vmstat s2 = vmstat(vm);
	exit_task(p);
	check_no_leak(vm, free0, "zero-page read");
	if (sum != 0)
		die("cowvm: fresh memory read back non-zero");
	r.v[0] = (double)(t1 - t0) / (double)pages;
	r.v[1] = (double)(t3 - t2) / (double)pages;
	r.count[0] = s1.zero_page_maps - s0.zero_page_maps;
	r.count[1] = s2.zero_page_cows - s1.zero_page_cows;
	return r;
}

struct result vm_reuse(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, pages);
	touch_pages(p, addr, pages);
	exit_task(fork_task(p));
	struct cowvm_vmstat s0 = vmstat(vm);
	uint64_t t0 = now_ns();
	timed_touch(p, addr, pages);
	uint64_t t1 = now_ns();
	struct cowvm_vmstat s1 = vmstat(vm);
	exit_task(p);
	check_no_leak(vm, free0, "reuse");
	r.v[0] = (double)(t1 - t0) / (double)pages;
	r.count[0] = s1.pgreuse - s0.pgreuse;
	return r;
}

/* v[0]: total ns of cowvm_fork of a process with `pages` touched (0: an empty process). */
struct result vm_fork(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	if (pages) {
		uint64_t addr = map_region(p, pages);
		touch_pages(p, addr, pages);
	}
	uint64_t t0 = now_ns();
	cowvm_task_t *c = fork_task(p);
	uint64_t t1 = now_ns();
	exit_task(c);
	exit_task(p);
	check_no_leak(vm, free0, "fork");
	r.v[0] = (double)(t1 - t0);
	return r;
}

struct result vm_munmap(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, pages);
	touch_pages(p, addr, pages);
	uint64_t t0 = now_ns();
	int err = cowvm_munmap(p, addr, pages * BENCH_PAGE);
	uint64_t t1 = now_ns();
	if (err)
		die("cowvm: munmap: %s", strerror(-err));
	exit_task(p);
	check_no_leak(vm, free0, "munmap");
	r.v[0] = (double)(t1 - t0);
	return r;
}

/* v[0]: total ns of the exit of a process with `pages` touched (0: an empty process). */
struct result vm_exit(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	if (pages) {
		uint64_t addr = map_region(p, pages);
		touch_pages(p, addr, pages);
	}
	uint64_t t0 = now_ns();
	exit_task(p);
	uint64_t t1 = now_ns();
	check_no_leak(vm, free0, "exit");
	r.v[0] = (double)(t1 - t0);
	return r;
}

/* 8-byte loads, then stores, within one page: every access after the first is a TLB hit. */
struct result vm_tlb_hit(cowvm_t *vm, uint64_t accesses)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, 1);
	touch_pages(p, addr, 1);
	uint64_t v, sum = 0;
	uint64_t m0 = task_stats(p).tlb_misses;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < accesses; i++) {
		if (cowvm_load64(p, addr + ((i * 8) & (BENCH_PAGE - 1)), &v))
			die("cowvm: load failed");
		sum += v;
	}
	uint64_t t1 = now_ns();
	for (uint64_t i = 0; i < accesses; i++)
		if (cowvm_store64(p, addr + ((i * 8) & (BENCH_PAGE - 1)), i))
			die("cowvm: store failed");
	uint64_t t2 = now_ns();
	uint64_t m1 = task_stats(p).tlb_misses;
	exit_task(p);
	check_no_leak(vm, free0, "TLB hit");
	r.v[0] = (double)(t1 - t0) / (double)accesses;
	r.v[1] = (double)(t2 - t1) / (double)accesses;
	r.count[0] = m1 - m0;
	r.count[1] = sum;
	return r;
}

/*
 * A chain of dependent loads a page apart over more pages than the 256-entry TLB holds (each
 * word holds the index of the next page, as on the host side): every load walks.
 */
struct result vm_tlb_miss(cowvm_t *vm, uint64_t pages, uint64_t passes)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, pages);
	for (uint64_t i = 0; i < pages; i++)
		if (cowvm_store64(p, addr + i * BENCH_PAGE + ((i * 64) & (BENCH_PAGE - 1)),
				  (i + 1) % pages))
			die("cowvm: store failed");
	uint64_t idx = 0;
	for (uint64_t i = 0; i < pages; i++) /* one pass to settle caches */
		if (cowvm_load64(p, addr + idx * BENCH_PAGE + ((idx * 64) & (BENCH_PAGE - 1)), &idx))
			die("cowvm: load failed");
	uint64_t m0 = task_stats(p).tlb_misses;
	uint64_t t0 = now_ns();
	for (uint64_t k = 0; k < pages * passes; k++)
		if (cowvm_load64(p, addr + idx * BENCH_PAGE + ((idx * 64) & (BENCH_PAGE - 1)), &idx))
			die("cowvm: load failed");
	uint64_t t1 = now_ns();
	uint64_t m1 = task_stats(p).tlb_misses;
	exit_task(p);
	check_no_leak(vm, free0, "TLB miss");
	r.v[0] = (double)(t1 - t0) / (double)(pages * passes);
	r.count[0] = m1 - m0;
	r.count[1] = idx;
	return r;
}

/* Page-table pages (all levels) the mapping and touching of `pages` added, in bytes per page. */
struct result vm_pagetable(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t before = task_stats(p).nr_ptes;
	uint64_t addr = map_region(p, pages);
	touch_pages(p, addr, pages);
	struct cowvm_task_stats s = task_stats(p);
	exit_task(p);
	check_no_leak(vm, free0, "page tables");
	r.v[0] = (double)((s.nr_ptes - before) * BENCH_PAGE) / (double)pages;
	r.count[0] = s.nr_ptes - before;
	r.count[1] = s.total_vm;
	return r;
}

/* Resident pages of this process (/proc/self/statm, second field). */
static uint64_t resident_pages(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		die("/proc/self/statm: %s", strerror(errno));
	unsigned long long size, resident;
	int n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	if (n != 2)
		die("/proc/self/statm: unreadable");
	return resident;
}

/*
 * The frame array's cost: the growth of this process's RSS when a machine of `frames` frames
 * is created without PREFAULT (its physical memory stays unbacked until used, so what becomes
 * resident is the struct pages and the machine's own small structures), divided by frames.
 */
struct result vm_struct_page(uint64_t frames)
{
	struct result r = { 0 };
	uint64_t before = resident_pages();
	struct cowvm_config cfg = { .phys_bytes = frames * BENCH_PAGE, .flags = COWVM_CONFIG_NO_POISON };
	cowvm_t *vm = cowvm_create(&cfg);
	if (!vm)
		die("cowvm: create of %llu frames: %s", (unsigned long long)frames, strerror(errno));
	uint64_t after = resident_pages();
	cowvm_destroy(vm);
	r.v[0] = (double)((after - before) * (uint64_t)sysconf(_SC_PAGESIZE)) / (double)frames;
	return r;
}

/* ---- Determinator's dput and dget: cowvm only (Linux has no such calls) ------------------
 * The timed regions call these, and only they do (callgrind --toggle-collect=timed_merge ...).
 */
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

/*
 * dput COPY of `pages` touched pages from a parent to a fresh child.
 *  page_multiple: to the same address in an empty child (delta 0): the page-aligned middle is
 *    shared copy-on-write, so only page tables are allocated, about one per 512 pages;
 *  else: to the child's address + 8 bytes, into a range the child mapped and touched beforehand,
 *    so that every byte is copied (two pieces per page) and nothing is allocated.
 * v[0] total ns.  count[0] frames allocated (pgalloc), [1] page-table pages added, [2] COW
 * copies, [3] pages whose first word did not arrive in the child.
 */
struct result vm_dput_copy(cowvm_t *vm, uint64_t pages, bool page_multiple)
{
	struct result r = { 0 };
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
	r.count[3] = words_wrong(c, dst, pages);
	exit_task(c);
	exit_task(p);
	check_no_leak(vm, free0, "dput COPY");
	r.v[0] = (double)(t1 - t0);
	r.count[0] = s1.pgalloc - s0.pgalloc;
	r.count[1] = s1.nr_page_table_pages - s0.nr_page_table_pages;
	r.count[2] = s1.cow_copies - s0.cow_copies;
	return r;
}

/*
 * dput SNAP of a child with `pages` touched: the image copies the child's page tables and
 * shares its frames.  v[0] total ns.  count[0] frames allocated, [1] page-table pages added,
 * [2] the child's page-table pages (the image's should be as many), [3] COW copies.
 */
struct result vm_snap(cowvm_t *vm, uint64_t pages)
{
	struct result r = { 0 };
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
	r.count[2] = task_stats(c).nr_ptes;
	exit_task(c);
	exit_task(p);
	check_no_leak(vm, free0, "dput SNAP");
	r.v[0] = (double)(t1 - t0);
	r.count[0] = s1.pgalloc - s0.pgalloc;
	r.count[1] = s1.nr_page_table_pages - s0.nr_page_table_pages;
	r.count[3] = s1.cow_copies - s0.cow_copies;
	return r;
}

/*
 * MERGE with one changed page.  vm_merge_setup maps and touches `pages` (a multiple of 512) in
 * a parent, 2 MiB aligned, so that the range is exactly pages / 512 PTE tables; the changed
 * page is in the middle one.  Each vm_merge then makes a fresh child, copies the parent's
 * range to the same address (dput COPY: shared copy-on-write), takes its SNAP, lets it write
 * one word of the changed page (one COW copy) and times the dget MERGE of `range_pages` around
 * the changed page (the whole range, or the table holding it) back into the parent, which takes
 * the child's page copy-on-write (pages_shared).
 */
struct vm_merge_case {
	cowvm_task_t *parent;
	uint64_t addr, pages, changed; /* changed: the page index the child writes */
	uint64_t free0;
	uint64_t value;                /* the last value the child wrote */
};

struct vm_merge_case *vm_merge_setup(cowvm_t *vm, uint64_t pages)
{
	struct vm_merge_case *mc = calloc(1, sizeof(*mc));
	if (!mc)
		die("out of memory");
	uint64_t table = 512 * BENCH_PAGE;
	if (pages % 512)
		die("cowvm: merge range of %llu pages is not whole 2 MiB tables", (unsigned long long)pages);
	mc->free0 = vmstat(vm).nr_free_pages;
	mc->parent = spawn(vm);
	uint64_t raw = map_region(mc->parent, pages + 512);
	mc->addr = (raw + table - 1) & ~(table - 1);
	mc->pages = pages;
	mc->changed = pages / 2 + 17;
	touch_pages(mc->parent, mc->addr, pages);
	return mc;
}

void vm_merge_teardown(cowvm_t *vm, struct vm_merge_case *mc)
{
	exit_task(mc->parent);
	check_no_leak(vm, mc->free0, "dget MERGE");
	free(mc);
}

/*
 * v[0] ns of the MERGE.  count[0] the MERGE's return (negated errno), [1] COW copies of the
 * child's write, [2] frames allocated during the MERGE, [3] 1 when the parent reads the
 * child's value afterwards.  *rep: cowvm_merge_report of the MERGE.
 */
struct result vm_merge(cowvm_t *vm, struct vm_merge_case *mc, uint64_t range_pages,
		       struct cowvm_merge_report *rep)
{
	struct result r = { 0 };
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
	mc->value = 0xc0ffee0000000000ull + s0.cow_copies; /* differs from every earlier one */
	if (cowvm_store64(c, where, mc->value))
		die("cowvm: the child's store failed");
	struct cowvm_vmstat s1 = vmstat(vm);
	uint64_t t0 = now_ns();
	err = timed_merge(mc->parent, c, start, len);
	uint64_t t1 = now_ns();
	struct cowvm_vmstat s2 = vmstat(vm);
	if (cowvm_merge_report(mc->parent, rep))
		die("cowvm: merge_report");
	uint64_t v = 0;
	r.count[3] = cowvm_load64(mc->parent, where, &v) == 0 && v == mc->value;
	exit_task(c);
	r.v[0] = (double)(t1 - t0);
	r.count[0] = (uint64_t)-err;
	r.count[1] = s1.cow_copies - s0.cow_copies;
	r.count[2] = s2.pgalloc - s1.pgalloc;
	return r;
}
