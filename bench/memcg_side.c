/*
 * memcg_side.c - what memory-cgroup charging costs on the two fault paths that charge a page:
 * first touch (do_anonymous_page) and the COW break (wp_page_copy).  Each round runs the same
 * operation on two machines of the same size, one booted with cgroup_disable=memory
 * (COWVM_CONFIG_NO_MEMCG: nothing is charged) and one where the process lives two levels down
 * (/bench/job, memory.max and memory.high set far above what it uses, so every charge walks
 * three page counters and checks both limits), alternating twice and keeping each side's
 * fastest run.  The figures: ns per page on each, and the overhead in percent (target 5 %).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static cowvm_t *machine(const struct bench_env *env, uint64_t pages, bool memcg)
{
	struct cowvm_config cfg = { 0 };
	cfg.phys_bytes = (2 * pages + 8192) * BENCH_PAGE;
	cfg.flags = env->vm_flags | (memcg ? 0 : COWVM_CONFIG_NO_MEMCG);
	cowvm_t *vm = cowvm_create(&cfg);
	if (!vm)
		die("cowvm: create: %s", strerror(errno));
	return vm;
}

/* A process in /bench/job (memcg) or in the root (no memcg), with `pages` mapped. */
static cowvm_task_t *process(cowvm_t *vm, bool memcg, uint64_t pages, uint64_t *addr)
{
	cowvm_task_t *t = cowvm_spawn(vm);
	if (!t)
		die("cowvm: spawn: %s", strerror(errno));
	if (memcg) {
		cowvm_cgroup_t *b = cowvm_cgroup_lookup(vm, "bench");
		if (!b)
			b = cowvm_cgroup_create(cowvm_cgroup_root(vm), "bench");
		cowvm_cgroup_t *j = b ? cowvm_cgroup_lookup(vm, "bench/job") : NULL;
		if (b && !j)
			j = cowvm_cgroup_create(b, "job");
		if (!j || cowvm_cgroup_set(b, COWVM_CGROUP_MEMORY_MAX, 4 * pages * BENCH_PAGE) ||
		    cowvm_cgroup_set(j, COWVM_CGROUP_MEMORY_HIGH, 3 * pages * BENCH_PAGE) ||
		    cowvm_cgroup_attach(j, t))
			die("cowvm: setting up /bench/job failed");
	}
	int64_t a = cowvm_mmap(t, 0, pages * BENCH_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	if (a < 0)
		die("cowvm: mmap: %s", strerror((int)-a));
	*addr = (uint64_t)a;
	return t;
}

static __attribute__((noinline)) void touch(cowvm_task_t *t, uint64_t addr, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		if (cowvm_store64(t, addr + i * BENCH_PAGE, i + 1))
			die("cowvm: store failed");
}

/* ns per page of one first touch (cow = false) or COW break (cow = true) on vm. */
static double run_once(cowvm_t *vm, bool memcg, uint64_t pages, bool cow, struct sample *out)
{
	uint64_t addr;
	cowvm_task_t *p = process(vm, memcg, pages, &addr), *c = NULL;
	if (cow) {
		touch(p, addr, pages);
		c = cowvm_fork(p);
		if (!c)
			die("cowvm: fork: %s", strerror(errno));
	}
	uint64_t t0 = now_ns();
	touch(p, addr, pages);
	uint64_t t1 = now_ns();
	if (memcg) {
		struct cowvm_cgroup_info in;
		cowvm_cgroup_info(cowvm_cgroup_lookup(vm, "bench/job"), &in);
		bench_check(out, "memcg bench: pages charged to /bench/job", in.current / BENCH_PAGE,
			    cow ? 2 * pages : pages);
	}
	if (c)
		cowvm_exit(c);
	cowvm_exit(p);
	return (double)(t1 - t0) / (double)pages;
}

static void memcg_case(const struct bench_env *env, uint64_t pages, struct sample *out, bool cow)
{
	cowvm_t *off = machine(env, pages, false), *on = machine(env, pages, true);
	double best_off = 1e30, best_on = 1e30;
	for (int rep = 0; rep < 2; rep++) {
		bool on_first = (env->round + rep) & 1;
		for (int k = 0; k < 2; k++) {
			bool memcg = on_first ^ (k == 1);
			double ns = run_once(memcg ? on : off, memcg, pages, cow, out);
			if (memcg && ns < best_on)
				best_on = ns;
			if (!memcg && ns < best_off)
				best_off = ns;
		}
	}
	cowvm_destroy(off);
	cowvm_destroy(on);
	out->v[0] = best_off;
	out->v[1] = best_on;
	out->v[2] = 100.0 * (best_on - best_off) / best_off;
}

void vm_memcg_first_touch(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	memcg_case(env, pages, out, false);
}

void vm_memcg_cow_break(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	memcg_case(env, pages, out, true);
}
