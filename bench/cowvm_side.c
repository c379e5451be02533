/*
 * cowvm_side.c - the cowvm side of the fault, process, MMU and memory cases, through
 * include/cowvm.h only.
 *
 * Each case spawns a fresh process on the shared machine, maps private anonymous memory,
 * touches it with cowvm_store64 (one 8-byte store per page, as the host side does) and times
 * the region operation alone.  Each checks with cowvm_vmstat that the operation did what it
 * was meant to (one COW copy per page, one reuse per page ...) and that the machine got every
 * frame back.
 *
 * Warmth: the shared machine's physical memory is populated at create (COWVM_CONFIG_PREFAULT)
 * and stays with this process, so a frame is never a host page fault; the frames a case gets
 * were used and freed by the cases before it, as the host's pages were by its warm-up.
 */
#include <errno.h>
#include <math.h>
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

static __attribute__((noinline)) cowvm_task_t *timed_fork(cowvm_task_t *t)
{
	return fork_task(t);
}

static __attribute__((noinline)) void timed_exit(cowvm_task_t *t)
{
	exit_task(t);
}

static __attribute__((noinline)) int timed_munmap(cowvm_task_t *t, uint64_t addr, uint64_t len)
{
	return cowvm_munmap(t, addr, len);
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

/* ---- the fault cases: v[0] ns per page ---------------------------------------------------- */

void vm_first_touch(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
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
	out->v[0] = (double)(t1 - t0) / (double)pages;
	bench_check(out, "cowvm first touch: faults", f1 - f0, pages);
}

/* v[0] the read fault (zero page), v[1] the write after it. */
void vm_zero_read(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
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
	out->v[0] = (double)(t1 - t0) / (double)pages;
	out->v[1] = (double)(t3 - t2) / (double)pages;
	bench_check(out, "cowvm zero read: sum of what it read", sum, 0);
	bench_check(out, "cowvm zero read: zero-page maps", s1.zero_page_maps - s0.zero_page_maps, pages);
	bench_check(out, "cowvm write after read: zero-page COWs", s2.zero_page_cows - s1.zero_page_cows,
		    pages);
}

void vm_cow_break(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
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
	out->v[0] = (double)(t1 - t0) / (double)pages;
	bench_check(out, "cowvm COW break: COW copies", s1.cow_copies - s0.cow_copies, pages);
}

void vm_reuse(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
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
	out->v[0] = (double)(t1 - t0) / (double)pages;
	bench_check(out, "cowvm reuse: reuses", s1.pgreuse - s0.pgreuse, pages);
}

/* ---- processes ------------------------------------------------------------------------------ */

/* ns of cowvm_fork of a process with `pages` touched (0: an empty process). */
static double fork_once(cowvm_t *vm, uint64_t pages)
{
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	if (pages)
		touch_pages(p, map_region(p, pages), pages);
	uint64_t t0 = now_ns();
	cowvm_task_t *c = timed_fork(p);
	uint64_t t1 = now_ns();
	exit_task(c);
	exit_task(p);
	check_no_leak(vm, free0, "fork");
	return (double)(t1 - t0);
}

/* v[0] ns per mapped page (minus the empty process's fork), v[1] total us, v[2] empty us. */
void vm_fork(const struct bench_env *env, uint64_t bytes, struct sample *out)
{
	uint64_t pages = bytes / BENCH_PAGE;
	double empty = fork_once(env->vm, 0), full = fork_once(env->vm, pages);
	out->v[0] = (full - empty) / (double)pages;
	out->v[1] = full / 1e3;
	out->v[2] = empty / 1e3;
}

void vm_munmap(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, pages);
	touch_pages(p, addr, pages);
	uint64_t t0 = now_ns();
	int err = timed_munmap(p, addr, pages * BENCH_PAGE);
	uint64_t t1 = now_ns();
	if (err)
		die("cowvm: munmap: %s", strerror(-err));
	exit_task(p);
	check_no_leak(vm, free0, "munmap");
	out->v[0] = (double)(t1 - t0) / (double)pages;
}

/* ns of the exit of a process with `pages` touched (0: an empty process). */
static double exit_once(cowvm_t *vm, uint64_t pages)
{
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	if (pages)
		touch_pages(p, map_region(p, pages), pages);
	uint64_t t0 = now_ns();
	timed_exit(p);
	uint64_t t1 = now_ns();
	check_no_leak(vm, free0, "exit");
	return (double)(t1 - t0);
}

/* v[0] ns per page (minus the empty process's exit), v[1] the empty process's exit in us. */
void vm_exit(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	double empty = exit_once(env->vm, 0), full = exit_once(env->vm, pages);
	out->v[0] = (full - empty) / (double)pages;
	out->v[1] = empty / 1e3;
}

/* ---- the MMU -------------------------------------------------------------------------------- */

/* 8-byte loads, then stores, within one page: every access after the first is a TLB hit. */
void vm_tlb_hit(const struct bench_env *env, uint64_t accesses, struct sample *out)
{
	cowvm_t *vm = env->vm;
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
	out->v[0] = (double)(t1 - t0) / (double)accesses;
	out->v[1] = (double)(t2 - t1) / (double)accesses;
	bench_check(out, "cowvm TLB hit: TLB misses", m1 - m0, 0);
	/* the first word is 1 (touch_pages), the rest 0: 1 per pass over the page */
	bench_check(out, "cowvm TLB hit: sum of what it read", sum, (accesses + 511) / 512);
}

/*
 * A chain of dependent loads a page apart over more pages than the TLB holds (each word holds
 * the index of the next page, as on the host side): every load walks the page table.
 */
void vm_tlb_miss(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
	uint64_t passes = tlb_miss_passes(env);
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
	out->v[0] = (double)(t1 - t0) / (double)(pages * passes);
	bench_check(out, "cowvm TLB miss: TLB misses", m1 - m0, pages * passes);
	bench_check(out, "cowvm TLB miss: the chain ends where it started", idx, 0);
}

/* ---- memory overhead ------------------------------------------------------------------------ */

/*
 * v[0] page-table bytes (all levels) per mapped page after mapping and touching `pages`;
 * v[1] sizeof(struct page), from the bytes of host memory the frame array takes per frame.
 */
void vm_pagetable(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	cowvm_t *vm = env->vm;
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t before = task_stats(p).nr_ptes;
	uint64_t addr = map_region(p, pages);
	touch_pages(p, addr, pages);
	struct cowvm_task_stats s = task_stats(p);
	exit_task(p);
	check_no_leak(vm, free0, "page tables");
	out->v[0] = (double)((s.nr_ptes - before) * BENCH_PAGE) / (double)pages;
	struct cowvm_machine_info mi;
	if (cowvm_machine_info(vm, &mi))
		die("cowvm: machine_info");
	out->v[1] = (double)mi.struct_page_bytes;
}

/* A field of /proc/self/status ("VmRSS:", "VmPTE:"), in bytes. */
static uint64_t status_bytes(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		die("/proc/self/status: %s", strerror(errno));
	char line[256];
	unsigned long long kb = 0;
	size_t n = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && sscanf(line + n, " %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/*
 * What a simulated frame costs in host memory beyond its 4 KiB, measured on a machine of
 * `frames` made for the purpose with its physical memory populated (PREFAULT), then every
 * frame used once by a process that touches most of memory:
 *   v[0] host memory per frame that is not the frame itself: the growth of this process's RSS
 *        beyond frames x 4 KiB (struct page, the allocator's own structures);
 *   v[1] the host's page tables for the physical memory, per frame (VmPTE growth);
 *   v[2] cowvm's page tables per mapped page (all levels), as the process touched them;
 *   v[3] the three together, in percent of the 4 KiB frame (target <= 2 %).
 */
void vm_frame_overhead(const struct bench_env *env, uint64_t frames, struct sample *out)
{
	uint64_t rss0 = status_bytes("VmRSS:"), pte0 = status_bytes("VmPTE:");
	struct cowvm_config cfg = { .phys_bytes = frames * BENCH_PAGE,
				    .flags = env->vm_flags | COWVM_CONFIG_PREFAULT };
	cowvm_t *vm = cowvm_create(&cfg);
	if (!vm)
		die("cowvm: create of %llu frames: %s", (unsigned long long)frames, strerror(errno));
	cowvm_task_t *p = spawn(vm);
	uint64_t pages = frames - frames / 16;
	uint64_t addr = map_region(p, pages);
	touch_pages(p, addr, pages);
	struct cowvm_task_stats s = task_stats(p);
	uint64_t rss1 = status_bytes("VmRSS:"), pte1 = status_bytes("VmPTE:");
	exit_task(p);
	cowvm_destroy(vm);
	double per_frame = (double)(rss1 - rss0) / (double)frames - (double)BENCH_PAGE;
	out->v[0] = per_frame > 0 ? per_frame : 0;
	out->v[1] = (double)(pte1 - pte0) / (double)frames;
	out->v[2] = (double)(s.nr_ptes * BENCH_PAGE) / (double)pages;
	out->v[3] = (out->v[0] + out->v[1] + out->v[2]) / (double)BENCH_PAGE * 100.0;
	bench_check(out, "cowvm frame overhead: pages the process mapped", s.rss_anon, pages);
}
