/*
 * scale.c - cowvm at scale: a fork tree of thousands of processes, a 16 GiB machine whose
 * 8 GiB guest is touched, forked and COW-broken, and the cost curve over machine sizes
 * (--size): the same scenario per page on machines from 16 MiB to 16 GiB, which must stay flat.
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

static void touch_pages(cowvm_task_t *t, uint64_t addr, uint64_t pages, uint64_t seed)
{
	for (uint64_t i = 0; i < pages; i++)
		if (cowvm_store64(t, addr + i * BENCH_PAGE, i + seed))
			die("cowvm: store to %#llx failed", (unsigned long long)(addr + i * BENCH_PAGE));
}

static struct cowvm_vmstat vmstat(cowvm_t *vm)
{
	struct cowvm_vmstat s;
	if (cowvm_vmstat(vm, &s))
		die("cowvm: vmstat");
	return s;
}

/*
 * A fork tree of `processes` on the shared machine, shaped as the host's (host.c): process k
 * is forked by process (k - 1) / 2, then writes one word of the page the root touched (a COW
 * break: one page of its own).  v[0] us per process to build the tree, v[1] us per process to
 * tear it down (children before their parents).
 */
void vm_fork_tree(const struct bench_env *env, uint64_t processes, struct sample *out)
{
	cowvm_t *vm = env->vm;
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t **t = calloc(processes, sizeof(*t));
	if (!t)
		die("out of memory");
	struct cowvm_vmstat s0 = vmstat(vm);
	uint64_t t0 = now_ns();
	t[0] = spawn(vm);
	uint64_t addr = map_region(t[0], 1);
	touch_pages(t[0], addr, 1, 1);
	for (uint64_t k = 1; k < processes; k++) {
		t[k] = fork_task(t[(k - 1) / 2]);
		if (cowvm_store64(t[k], addr + k % 512 * 8, k))
			die("cowvm: store in process %llu failed", (unsigned long long)k);
	}
	uint64_t t1 = now_ns();
	struct cowvm_vmstat s1 = vmstat(vm);
	for (uint64_t k = processes; k-- > 0;)
		exit_task(t[k]);
	uint64_t t2 = now_ns();
	free(t);
	if (vmstat(vm).nr_free_pages != free0)
		die("cowvm: fork tree leaked frames");
	out->v[0] = (double)(t1 - t0) / 1e3 / (double)processes;
	out->v[1] = (double)(t2 - t1) / 1e3 / (double)processes;
	bench_check(out, "cowvm fork tree: COW copies (one per forked process)",
		    s1.cow_copies - s0.cow_copies, processes - 1);
}

/*
 * One machine of phys_bytes made for the purpose, and the scenario of the issue: a process
 * first-touches guest_pages, forks, writes them all again (one COW copy each, the child alive),
 * and both exit.  Times per touched page; the machine's create and destroy apart.
 */
static void cow_scenario(unsigned flags, uint64_t phys_bytes, uint64_t guest_pages,
			 struct curve_point *pt, struct sample *out)
{
	struct cowvm_config cfg = { .phys_bytes = phys_bytes, .flags = flags };
	uint64_t t0 = now_ns();
	cowvm_t *vm = cowvm_create(&cfg);
	if (!vm)
		die("cowvm: create of %llu MiB: %s", (unsigned long long)(phys_bytes / MIB),
		    strerror(errno));
	uint64_t t1 = now_ns();
	uint64_t free0 = vmstat(vm).nr_free_pages;
	cowvm_task_t *p = spawn(vm);
	uint64_t addr = map_region(p, guest_pages);
	uint64_t t2 = now_ns();
	touch_pages(p, addr, guest_pages, 1);
	uint64_t t3 = now_ns();
	cowvm_task_t *c = fork_task(p);
	uint64_t t4 = now_ns();
	struct cowvm_vmstat s0 = vmstat(vm);
	uint64_t t5 = now_ns();
	touch_pages(p, addr, guest_pages, 2);
	uint64_t t6 = now_ns();
	struct cowvm_vmstat s1 = vmstat(vm);
	uint64_t t7 = now_ns();
	exit_task(c);
	exit_task(p);
	uint64_t t8 = now_ns();
	uint64_t free1 = vmstat(vm).nr_free_pages;
	cowvm_destroy(vm);
	uint64_t t9 = now_ns();
	double n = (double)guest_pages;
	pt->phys_bytes = phys_bytes;
	pt->pages = guest_pages;
	pt->touch_ns = (double)(t3 - t2) / n;
	pt->fork_ns = (double)(t4 - t3) / n;
	pt->cow_ns = (double)(t6 - t5) / n;
	pt->exit_ns = (double)(t8 - t7) / n;
	pt->work_ns = pt->touch_ns + pt->fork_ns + pt->cow_ns;
	pt->create_ms = (double)(t1 - t0) / 1e6;
	pt->destroy_ms = (double)(t9 - t8) / 1e6;
	bench_check(out, "cowvm COW scenario: COW copies", s1.cow_copies - s0.cow_copies, guest_pages);
	bench_check(out, "cowvm COW scenario: frames back after exit", free1, free0);
}

/*
 * The 16 GiB machine: an 8 GiB guest touched, forked and COW-broken, on a machine of twice
 * the guest.  (The guest is 8 GiB less 32 MiB: the parent's and the child's page tables and the
 * two reserved frames need 32 MiB of the 16 GiB, and the copies need the rest.)  The machine
 * has the shared machine's flags.  v[0] first touch, v[1] fork, v[2] COW break, v[3] exit of
 * both, all ns per guest page.  Skipped when the host has not the memory.
 */
void vm_big_cow(const struct bench_env *env, uint64_t guest_bytes, struct sample *out)
{
	uint64_t phys = 2 * guest_bytes, pages = (guest_bytes - 32 * MIB) / BENCH_PAGE;
	uint64_t need = phys + phys / 64 + 512 * MIB;
	uint64_t avail = host_mem_available();
	if (avail < need) {
		bench_skip(out, "needs %llu MiB of host memory, %llu MiB available",
			   (unsigned long long)(need / MIB), (unsigned long long)(avail / MIB));
		return;
	}
	struct curve_point pt;
	cow_scenario(env->vm_flags, phys, pages, &pt, out);
	out->v[0] = pt.touch_ns;
	out->v[1] = pt.fork_ns;
	out->v[2] = pt.cow_ns;
	out->v[3] = pt.exit_ns;
}

/*
 * One point of the cost curve: a machine of phys_bytes, lazily backed (the flags without
 * PREFAULT: what a machine made for a scenario gets), and the COW scenario over an eighth of
 * it.
 */
void vm_curve_point(unsigned vm_flags, uint64_t phys_bytes, struct curve_point *out,
		    struct sample *checks)
{
	cow_scenario(vm_flags & ~COWVM_CONFIG_PREFAULT, phys_bytes, phys_bytes / 8 / BENCH_PAGE, out,
		     checks);
}
