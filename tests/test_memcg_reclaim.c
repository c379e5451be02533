/*
 * test_memcg_reclaim.c - reclaim within a memory cgroup (try_to_free_mem_cgroup_pages): a group
 * at memory.max with swap configured swaps out its own pages instead of OOM-killing; pages of
 * other groups stay in memory; memory.swap.max bounds what it may swap (0: OOM as without swap);
 * memory.high throttles by reclaim; the swap charge follows the slot (memory.swap.current);
 * events and memory.stat agree.  The machine has a swap file; the fixture requires no frame,
 * slot or swap-cache page left and the checker clean (every used slot charged to one group,
 * memory.swap.current = its subtree's slots).
 *
 *   A = TU_BASE      the group's process's mapping, filled with pattern seeds 10 + i
 */
#include <stdio.h>

#include "testutil.h"

static void setup(void)
{
	tu_setup_swap(16ull << 20, 4ull << 20);
}

TestSuite(memcg_reclaim, .init = setup, .fini = tu_teardown);

#define A TU_BASE
#define PM_SWAP COWVM_PM_SWAP

static struct cowvm_cgroup_info info(cowvm_cgroup_t *cg)
{
	struct cowvm_cgroup_info in;
	cr_assert(cowvm_cgroup_info(cg, &in) == 0);
	return in;
}

static cowvm_cgroup_t *mkgroup(const char *name)
{
	cowvm_cgroup_t *cg = cowvm_cgroup_create(cowvm_cgroup_root(tu_vm), name);
	cr_assert(cg != NULL, "creating %s: %s", name, strerror(errno));
	return cg;
}

static cowvm_task_t *spawn_in(cowvm_cgroup_t *cg)
{
	cowvm_task_t *t = tu_spawn();
	EQ(cowvm_cgroup_attach(cg, t), 0);
	return t;
}

static uint64_t used_slots(void)
{
	struct cowvm_swap_info si;
	EQ(cowvm_swap_info(tu_vm, &si), 0);
	return si.used_slots;
}

static uint64_t swapped_pages(cowvm_task_t *t, uint64_t a, uint64_t n)
{
	uint64_t k = 0;
	for (uint64_t i = 0; i < n; i++)
		k += (pagemap(t, a + i * PG) & PM_SWAP) != 0;
	return k;
}

static void fill(cowvm_task_t *t, uint64_t a, uint64_t n)
{
	map_fixed(t, a, n, PROT_RW, MAP_PRIV_ANON);
	for (uint64_t i = 0; i < n; i++)
		fill_page(t, a + i * PG, (uint8_t)(10 + i));
}

static void expect_filled(cowvm_task_t *t, uint64_t a, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		expect_page(t, a + i * PG, (uint8_t)(10 + i));
}

Test(memcg_reclaim, a_group_at_memory_max_swaps_out_its_own_pages_instead_of_oom)
{
	cowvm_cgroup_t *g = mkgroup("g");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 64 * PG), 0);
	cowvm_task_t *t = spawn_in(g);
	fill(t, A, 200);
	CHECK();
	EQ(cowvm_task_oom_killed(t), 0);
	struct cowvm_cgroup_info in = info(g);
	cr_assert(in.current <= 64 * PG, "memory.current %llu above memory.max", (unsigned long long)in.current);
	/* every slot in use is this group's, and is what memory.swap.current charges */
	EQ(in.swap_current, used_slots() * PG);
	cr_assert(in.swap_current > 0);
	EQ(in.events.oom, 0);
	EQ(in.events.oom_kill, 0);
	cr_assert(in.events.max > 0, "charges hit memory.max");
	uint64_t sw = swapped_pages(t, A, 200);
	EQ(stats(t).rss_swap, sw);
	EQ(stats(t).rss_anon + sw, 200);
	/* each page is in memory (charged to memory.current) or only in its slot */
	cr_assert(sw >= 200 - 64);
	cr_assert(in.pgsteal > 0 && in.pgscan >= in.pgsteal);
	expect_filled(t, A, 200); /* swapped back in, within the limit again */
	CHECK();
	in = info(g);
	cr_assert(in.current <= 64 * PG);
	EQ(in.swap_current, used_slots() * PG);
	EQ(in.events.oom, 0);
	tu_exit(t);
	CHECK();
	EQ(info(g).current, 0);
	EQ(info(g).swap_current, 0); /* the slots went with the process, and their charge */
	EQ(used_slots(), 0);
}

Test(memcg_reclaim, reclaim_within_a_group_leaves_other_groups_pages_alone)
{
	cowvm_cgroup_t *g = mkgroup("g"), *h = mkgroup("h");
	cowvm_task_t *other = spawn_in(h);
	fill(other, A, 100);
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 32 * PG), 0);
	cowvm_task_t *t = spawn_in(g);
	fill(t, A, 150);
	CHECK();
	EQ(swapped_pages(other, A, 100), 0);
	EQ(stats(other).rss_anon, 100);
	EQ(info(h).current, 100 * PG);
	EQ(info(h).swap_current, 0);
	EQ(info(h).pgscan, 0);
	EQ(info(g).swap_current, used_slots() * PG);
	cr_assert(swapped_pages(t, A, 150) >= 150 - 32);
	/* the root counts both groups' memory and swap */
	struct cowvm_cgroup_info r = info(cowvm_cgroup_root(tu_vm));
	EQ(r.swap_current, info(g).swap_current);
	expect_filled(other, A, 100);
	expect_filled(t, A, 150);
	CHECK();
	tu_exit(t);
	tu_exit(other);
}

Test(memcg_reclaim, memory_swap_max_0_means_oom_as_without_swap)
{
	cowvm_cgroup_t *g = mkgroup("g");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 16 * PG), 0);
	EQ(cowvm_cgroup_write(g, "memory.swap.max", "0"), 0);
	cowvm_task_t *t = spawn_in(g);
	map_fixed(t, A, 20, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 16; i++)
		fill_page(t, A + i * PG, (uint8_t)i);
	EQ(info(g).current, 16 * PG);
	uint8_t v = 1;
	EQ(cowvm_write(t, A + 16 * PG, &v, 1), -ENOMEM); /* its own fault kills it */
	EQ(cowvm_task_oom_killed(t), 1);
	struct cowvm_cgroup_info in = info(g);
	EQ(in.swap_current, 0);
	EQ(used_slots(), 0);
	EQ(in.events.oom, 1);
	EQ(in.events.oom_kill, 1);
	EQ(in.current, 0); /* reaped */
	CHECK();
	tu_exit(t);
}

Test(memcg_reclaim, memory_swap_max_bounds_the_swap_out_then_oom)
{
	cowvm_cgroup_t *g = mkgroup("g");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 16 * PG), 0);
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_SWAP_MAX, 8 * PG), 0);
	cowvm_task_t *small = spawn_in(g);
	fill(small, A + 1024 * PG, 2);
	cowvm_task_t *t = spawn_in(g);
	map_fixed(t, A, 40, PROT_RW, MAP_PRIV_ANON);
	int err = 0;
	uint64_t done = 0;
	for (; done < 40 && !err; done++) {
		uint8_t v = (uint8_t)done;
		err = cowvm_write(t, A + done * PG, &v, 1);
	}
	CHECK();
	/* 16 in memory + 8 in swap fit; the next needs the killer, which picks t (the largest) */
	EQ(err, -ENOMEM);
	EQ(cowvm_task_oom_killed(t), 1);
	EQ(cowvm_task_oom_killed(small), 0);
	struct cowvm_cgroup_info in = info(g);
	cr_assert(in.swap_events.max > 0, "a swap-out was refused at memory.swap.max");
	EQ(in.swap_events.fail, in.swap_events.max);
	EQ(in.events.oom_kill, 1);
	cr_assert(in.swap_current <= 8 * PG);
	EQ(in.swap_current, used_slots() * PG);
	char buf[128];
	cr_assert(cowvm_cgroup_read(g, "memory.swap.events", buf, sizeof(buf)) > 0);
	char want[128];
	snprintf(want, sizeof(want), "high 0\nmax %llu\nfail %llu\n", (unsigned long long)in.swap_events.max,
		 (unsigned long long)in.swap_events.fail);
	cr_assert_str_eq(buf, want);
	expect_filled(small, A + 1024 * PG, 2);
	tu_exit(t);
	tu_exit(small);
	CHECK();
	EQ(info(g).swap_current, 0);
}

Test(memcg_reclaim, memory_high_throttles_by_reclaim)
{
	cowvm_cgroup_t *g = mkgroup("g");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_HIGH, 48 * PG), 0);
	cowvm_task_t *t = spawn_in(g);
	fill(t, A, 160);
	CHECK();
	struct cowvm_cgroup_info in = info(g);
	/* charges above high succeed and reclaim: the group never stays far above it */
	cr_assert(in.current <= 48 * PG + 32 * PG, "memory.current %llu", (unsigned long long)in.current);
	cr_assert(in.events.high > 0);
	EQ(in.events.max, 0);
	EQ(in.events.oom, 0);
	EQ(cowvm_task_oom_killed(t), 0);
	EQ(in.swap_current, used_slots() * PG);
	EQ(stats(t).rss_anon + stats(t).rss_swap, 160);
	/* lowering memory.high reclaims down to it */
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_HIGH, 16 * PG), 0);
	cr_assert(info(g).current <= 16 * PG, "memory.current %llu after lowering memory.high",
		  (unsigned long long)info(g).current);
	CHECK();
	expect_filled(t, A, 160);
	tu_exit(t);
}

Test(memcg_reclaim, lowering_memory_max_swaps_out_instead_of_killing)
{
	cowvm_cgroup_t *g = mkgroup("g");
	cowvm_task_t *t = spawn_in(g);
	fill(t, A, 100);
	EQ(info(g).current, 100 * PG);
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 40 * PG), 0);
	CHECK();
	EQ(cowvm_task_oom_killed(t), 0);
	cr_assert(info(g).current <= 40 * PG);
	EQ(info(g).swap_current, used_slots() * PG);
	EQ(info(g).events.oom, 0);
	expect_filled(t, A, 100);
	tu_exit(t);
}

Test(memcg_reclaim, a_parents_limit_reclaims_its_childrens_pages)
{
	cowvm_cgroup_t *p = mkgroup("p");
	cowvm_cgroup_t *c = cowvm_cgroup_create(p, "c");
	cr_assert(c);
	EQ(cowvm_cgroup_set(p, COWVM_CGROUP_MEMORY_MAX, 32 * PG), 0);
	cowvm_task_t *t = spawn_in(c);
	fill(t, A, 80);
	CHECK();
	EQ(cowvm_task_oom_killed(t), 0);
	cr_assert(info(p).current <= 32 * PG);
	EQ(info(c).swap_current, info(p).swap_current); /* charged to c and up */
	EQ(info(p).swap_current, used_slots() * PG);
	cr_assert(info(p).events.max > 0);
	expect_filled(t, A, 80);
	tu_exit(t);
	CHECK();
}

Test(memcg_reclaim, memory_stat_and_swap_current_read_in_the_kernels_format)
{
	cowvm_cgroup_t *g = mkgroup("g");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 32 * PG), 0);
	cowvm_task_t *t = spawn_in(g);
	fill(t, A, 64);
	struct cowvm_cgroup_info in = info(g);
	char buf[4096], want[64];
	cr_assert(cowvm_cgroup_read(g, "memory.swap.current", buf, sizeof(buf)) > 0);
	snprintf(want, sizeof(want), "%llu\n", (unsigned long long)in.swap_current);
	cr_assert_str_eq(buf, want);
	cr_assert(cowvm_cgroup_read(g, "memory.stat", buf, sizeof(buf)) > 0);
	snprintf(want, sizeof(want), "\npgsteal %llu\n", (unsigned long long)in.pgsteal);
	cr_assert(strstr(buf, want), "%s", buf);
	snprintf(want, sizeof(want), "\npgscan_direct %llu\n", (unsigned long long)in.pgscan);
	cr_assert(strstr(buf, want), "%s", buf);
	tu_exit(t);
}
