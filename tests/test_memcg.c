/*
 * test_memcg.c - memory cgroups: where pages are charged (first touch, COW copy, shmem, never
 * the zero page), when they are uncharged (at free, not at an unmap while another process maps
 * them), fork and moves, memory.max with the group's OOM killer, memory.oom.group, nested
 * limits, memory.high, the files' text, and errno for bad input.  The checker (every user page
 * charged to exactly one group, counters = sums) runs after each step; the fixture checks that
 * no frame leaks.
 */
#include <stdio.h>

#include "testutil.h"

TestSuite(memcg, .init = tu_setup, .fini = tu_teardown);

#define A TU_BASE

static struct cowvm_cgroup_info info(cowvm_cgroup_t *cg)
{
	struct cowvm_cgroup_info in;
	cr_assert(cowvm_cgroup_info(cg, &in) == 0);
	return in;
}

/* memory.current in pages */
static uint64_t current_pages(cowvm_cgroup_t *cg)
{
	return info(cg).current / PG;
}

static cowvm_cgroup_t *mkgroup(cowvm_cgroup_t *parent, const char *name)
{
	cowvm_cgroup_t *cg = cowvm_cgroup_create(parent ? parent : cowvm_cgroup_root(tu_vm), name);
	cr_assert(cg != NULL, "creating %s: %s", name, strerror(errno));
	return cg;
}

static cowvm_task_t *spawn_in(cowvm_cgroup_t *cg)
{
	cowvm_task_t *t = tu_spawn();
	EQ(cowvm_cgroup_attach(cg, t), 0);
	return t;
}

static void write_pages(cowvm_task_t *t, uint64_t addr, uint64_t n, uint8_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		write_byte(t, addr + i * PG, (uint8_t)(seed + i));
}

Test(memcg, first_touch_write_is_charged_and_a_zero_page_read_is_not)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	cowvm_task_t *t = spawn_in(g);
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	for (int i = 0; i < 4; i++)
		EQ(read_byte(t, A + i * PG), 0);
	CHECK();
	EQ(current_pages(g), 0);
	EQ(info(g).anon, 0);
	EQ(info(g).pgfault, 4);
	write_pages(t, A + 4 * PG, 3, 1);
	CHECK();
	EQ(current_pages(g), 3);
	EQ(info(g).anon, 3 * PG);
	EQ(info(g).pgfault, 7);
	/* a write over a zero-page read replaces it: that page is charged now */
	write_byte(t, A, 9);
	EQ(current_pages(g), 4);
	/* the root counts its descendants */
	EQ(current_pages(cowvm_cgroup_root(tu_vm)), 4);
	CHECK();
}

Test(memcg, cow_copy_is_charged_to_the_group_of_the_process_that_writes)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g"), *h = mkgroup(NULL, "h");
	cowvm_task_t *p = spawn_in(g);
	map_fixed(p, A, 4, PROT_RW, MAP_PRIV_ANON);
	write_pages(p, A, 4, 1);
	cowvm_task_t *c = tu_fork(p);
	EQ(cowvm_cgroup_attach(h, c), 0);
	EQ(current_pages(g), 4); /* fork shares, charges nothing */
	EQ(current_pages(h), 0);
	write_pages(c, A, 2, 50);
	CHECK();
	EQ(stats(c).rss_anon, 4);
	EQ(current_pages(h), 2); /* the two copies */
	EQ(current_pages(g), 4); /* the originals stay charged where they were */
	/* the parent's write to a page the child copied away reuses it: no new charge */
	write_byte(p, A, 77);
	EQ(current_pages(g), 4);
	/* ... and to a page still shared it copies, charged to the parent's group */
	write_byte(p, A + 3 * PG, 78);
	EQ(current_pages(g), 5);
	CHECK();
}

Test(memcg, unmap_while_another_process_maps_the_page_keeps_the_charge_until_the_free)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g"), *h = mkgroup(NULL, "h");
	cowvm_task_t *p = spawn_in(g);
	map_fixed(p, A, 4, PROT_RW, MAP_PRIV_ANON);
	write_pages(p, A, 4, 1);
	cowvm_task_t *c = tu_fork(p);
	EQ(cowvm_cgroup_attach(h, c), 0);
	EQ(cowvm_munmap(p, A, 4 * PG), 0);
	CHECK();
	EQ(current_pages(g), 4); /* the child still maps all four */
	EQ(current_pages(h), 0);
	EQ(cowvm_munmap(c, A, 2 * PG), 0);
	EQ(current_pages(g), 2); /* two freed */
	tu_exit(c);
	EQ(current_pages(g), 0);
	CHECK();
}

Test(memcg, a_forked_child_is_in_its_parents_group)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	cowvm_task_t *p = spawn_in(g);
	cowvm_task_t *c = tu_fork(p);
	cr_assert(cowvm_task_cgroup(c) == g);
	EQ(info(g).nr_procs, 2);
	char buf[64], want[64];
	snprintf(want, sizeof(want), "%d\n%d\n", cowvm_task_pid(p), cowvm_task_pid(c));
	EQ(cowvm_cgroup_read(g, "cgroup.procs", buf, sizeof(buf)), strlen(want));
	cr_assert_str_eq(buf, want);
	/* a thread is in its process's group: moving it moves the process */
	cowvm_task_t *th = tu_clone_thread(c);
	cr_assert(cowvm_task_cgroup(th) == g);
	EQ(cowvm_cgroup_attach(cowvm_cgroup_root(tu_vm), th), 0);
	cr_assert(cowvm_task_cgroup(c) == cowvm_cgroup_root(tu_vm));
	EQ(info(g).nr_procs, 1);
	CHECK();
}

Test(memcg, moving_a_process_leaves_its_pages_charged_where_they_are)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g"), *h = mkgroup(NULL, "h");
	cowvm_task_t *t = spawn_in(g);
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	write_pages(t, A, 3, 1);
	EQ(cowvm_cgroup_attach(h, t), 0);
	EQ(current_pages(g), 3);
	EQ(current_pages(h), 0);
	write_pages(t, A + 3 * PG, 2, 10);
	EQ(current_pages(g), 3);
	EQ(current_pages(h), 2);
	CHECK();
	/* g has no process but holds pages: it can be removed, its pages stay counted above it */
	EQ(cowvm_cgroup_destroy(g), 0);
	EQ(current_pages(cowvm_cgroup_root(tu_vm)), 5);
	CHECK();
	EQ(cowvm_munmap(t, A, 8 * PG), 0);
	EQ(current_pages(h), 0);
	EQ(current_pages(cowvm_cgroup_root(tu_vm)), 0);
	CHECK();
	/* the name is free again */
	cowvm_cgroup_t *g2 = mkgroup(NULL, "g");
	EQ(current_pages(g2), 0);
}

Test(memcg, shared_memory_pages_are_charged_once_to_the_group_that_faults_them_in)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g"), *h = mkgroup(NULL, "h");
	cowvm_task_t *p = spawn_in(g);
	uint64_t a = map_shared_anon(p, 4, PROT_RW);
	cowvm_task_t *c = tu_fork(p);
	EQ(cowvm_cgroup_attach(h, c), 0);
	write_pages(p, a, 2, 1);  /* allocated by p: g */
	write_pages(c, a + 2 * PG, 1, 5); /* allocated by c: h */
	EQ(read_byte(c, a), 1);   /* found in the object: no charge */
	CHECK();
	EQ(current_pages(g), 2);
	EQ(current_pages(h), 1);
	EQ(info(g).shmem, 2 * PG);
	EQ(info(g).anon, 0);
	tu_exit(p);
	EQ(current_pages(g), 2); /* the object lives on in c */
	tu_exit(c);
	EQ(current_pages(g), 0);
	EQ(current_pages(h), 0);
}

/*
 * memory.max of 32 pages; A holds 20, B 8.  B's next pages reach the limit: the group's OOM
 * killer takes A (the highest badness), its pages come back, and B's writes go on.
 */
Test(memcg, at_memory_max_the_oom_killer_kills_the_largest_process_and_the_write_succeeds)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 32 * PG), 0);
	cowvm_task_t *a = spawn_in(g), *b = spawn_in(g);
	map_fixed(a, A, 20, PROT_RW, MAP_PRIV_ANON);
	map_fixed(b, A, 16, PROT_RW, MAP_PRIV_ANON);
	write_pages(a, A, 20, 1);
	write_pages(b, A, 8, 1);
	EQ(current_pages(g), 28);
	EQ(info(g).events.max, 0);
	write_pages(b, A + 8 * PG, 8, 100); /* 36 pages wanted */
	CHECK();
	EQ(cowvm_task_oom_killed(a), 1);
	EQ(cowvm_task_oom_killed(b), 0);
	EQ(stats(a).rss_anon, 0);
	EQ(current_pages(g), 16);
	struct cowvm_cgroup_info in = info(g);
	cr_assert(in.events.max >= 1, "max events %llu", (unsigned long long)in.events.max);
	EQ(in.events.oom, 1);
	EQ(in.events.oom_kill, 1);
	EQ(in.events.oom_group_kill, 0);
	for (int i = 0; i < 16; i++)
		EQ(read_byte(b, A + i * PG), (uint8_t)(i < 8 ? 1 + i : 100 + i - 8));
	/* the killed process's accesses fail from now on */
	uint8_t v;
	EQ(cowvm_read(a, A, &v, 1), -EFAULT);
	EQ(cowvm_write(a, A, &v, 1), -EFAULT);
	CHECK();
}

Test(memcg, a_process_killed_by_its_own_fault_sees_enomem_then_efault)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 4 * PG), 0);
	cowvm_task_t *t = spawn_in(g);
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	write_pages(t, A, 4, 1);
	uint8_t v = 5;
	EQ(cowvm_write(t, A + 4 * PG, &v, 1), -ENOMEM);
	EQ(cowvm_task_oom_killed(t), 1);
	EQ(current_pages(g), 0);
	EQ(info(g).events.oom_kill, 1);
	EQ(cowvm_read(t, A, &v, 1), -EFAULT);
	CHECK();
}

/* Pages a process shares with one outside the group stay with the other process. */
Test(memcg, an_oom_kill_leaves_the_pages_other_processes_map)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, 8, PROT_RW, MAP_PRIV_ANON);
	write_pages(p, A, 8, 1);
	cowvm_task_t *c = tu_fork(p);
	EQ(cowvm_cgroup_attach(g, c), 0);
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 2 * PG), 0);
	write_pages(c, A, 2, 40); /* two copies charged to g */
	uint8_t v = 1;
	EQ(cowvm_write(c, A + 2 * PG, &v, 1), -ENOMEM); /* a third: c is the only candidate */
	EQ(cowvm_task_oom_killed(c), 1);
	EQ(current_pages(g), 0);
	for (int i = 0; i < 8; i++)
		EQ(read_byte(p, A + i * PG), (uint8_t)(1 + i));
	EQ(stats(p).rss_anon, 8);
	CHECK();
}

Test(memcg, memory_oom_group_kills_every_process_of_the_group)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	cowvm_cgroup_t *sub = mkgroup(g, "sub");
	cowvm_cgroup_t *other = mkgroup(NULL, "other");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 16 * PG), 0);
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_OOM_GROUP, 1), 0);
	cowvm_task_t *a = spawn_in(g), *b = spawn_in(sub), *bystander = spawn_in(other);
	map_fixed(a, A, 16, PROT_RW, MAP_PRIV_ANON);
	map_fixed(b, A, 16, PROT_RW, MAP_PRIV_ANON);
	map_fixed(bystander, A, 4, PROT_RW, MAP_PRIV_ANON);
	write_pages(bystander, A, 4, 1);
	write_pages(a, A, 10, 1);
	write_pages(b, A, 6, 1);
	uint8_t v = 1;
	EQ(cowvm_write(b, A + 6 * PG, &v, 1), -ENOMEM); /* b dies with its group */
	EQ(cowvm_task_oom_killed(a), 1);
	EQ(cowvm_task_oom_killed(b), 1);
	EQ(cowvm_task_oom_killed(bystander), 0);
	EQ(current_pages(g), 0);
	EQ(current_pages(other), 4);
	struct cowvm_cgroup_info in = info(g);
	EQ(in.events.oom_kill, 2);
	EQ(in.events.oom_group_kill, 1);
	EQ(in.events_local.oom_kill, 1); /* a was g's own; b was sub's */
	EQ(info(sub).events.oom_kill, 1);
	CHECK();
}

/*
 *   root
 *    └─ p (max 16 pages)
 *        ├─ c: t1 holds 10
 *        └─ d: t2 holds 6, wants one more -> p is at its limit: p's OOM killer takes t1
 */
Test(memcg, a_parents_limit_applies_to_its_children_and_its_oom_picks_among_all_of_them)
{
	cowvm_cgroup_t *p = mkgroup(NULL, "p");
	cowvm_cgroup_t *c = mkgroup(p, "c"), *d = mkgroup(p, "d");
	EQ(cowvm_cgroup_set(p, COWVM_CGROUP_MEMORY_MAX, 16 * PG), 0);
	cowvm_task_t *t1 = spawn_in(c), *t2 = spawn_in(d);
	map_fixed(t1, A, 10, PROT_RW, MAP_PRIV_ANON);
	map_fixed(t2, A, 8, PROT_RW, MAP_PRIV_ANON);
	write_pages(t1, A, 10, 1);
	write_pages(t2, A, 6, 1);
	EQ(current_pages(p), 16);
	EQ(current_pages(c), 10);
	EQ(current_pages(d), 6);
	write_byte(t2, A + 6 * PG, 7);
	EQ(cowvm_task_oom_killed(t1), 1);
	EQ(cowvm_task_oom_killed(t2), 0);
	EQ(current_pages(p), 7);
	cr_assert(info(p).events.max >= 1);
	EQ(info(c).events.max, 0);
	EQ(info(d).events.max, 0);
	EQ(info(p).events.oom, 1);
	EQ(info(c).events.oom_kill, 1);
	EQ(info(p).events.oom_kill, 1);
	EQ(info(d).events.oom_kill, 0);
	EQ(info(p).nr_descendants, 2);
	CHECK();
	/* a child's own lower limit applies before its parent's */
	EQ(cowvm_cgroup_set(d, COWVM_CGROUP_MEMORY_MAX, 7 * PG), 0);
	uint8_t v = 1;
	EQ(cowvm_write(t2, A + 7 * PG, &v, 1), -ENOMEM); /* t2 is d's only process */
	EQ(info(d).events.oom, 1);
	EQ(info(p).events.oom, 2); /* counted up the tree */
	CHECK();
}

Test(memcg, above_memory_high_charges_succeed_and_count_high_events)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_HIGH, 4 * PG), 0);
	cowvm_task_t *t = spawn_in(g);
	map_fixed(t, A, 8, PROT_RW, MAP_PRIV_ANON);
	write_pages(t, A, 6, 1);
	EQ(current_pages(g), 6);
	EQ(info(g).events.high, 2);
	EQ(info(g).events.max, 0);
	EQ(cowvm_task_oom_killed(t), 0);
	CHECK();
}

Test(memcg, lowering_memory_max_below_current_oom_kills_until_the_group_fits)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	cowvm_task_t *small = spawn_in(g), *big = spawn_in(g);
	map_fixed(small, A, 8, PROT_RW, MAP_PRIV_ANON);
	map_fixed(big, A, 8, PROT_RW, MAP_PRIV_ANON);
	write_pages(small, A, 3, 1);
	write_pages(big, A, 6, 1);
	EQ(cowvm_cgroup_write(g, "memory.max", "16K"), 0);
	EQ(cowvm_task_oom_killed(big), 1);
	EQ(cowvm_task_oom_killed(small), 0);
	EQ(current_pages(g), 3);
	EQ(info(g).events.oom_kill, 1);
	char buf[32];
	cowvm_cgroup_read(g, "memory.max", buf, sizeof(buf));
	cr_assert_str_eq(buf, "16384\n");
	CHECK();
}

Test(memcg, the_files_read_in_the_kernels_format)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	cowvm_cgroup_t *sub = mkgroup(g, "sub");
	char buf[4096];
	cowvm_cgroup_read(g, "memory.max", buf, sizeof(buf));
	cr_assert_str_eq(buf, "max\n");
	EQ(cowvm_cgroup_write(g, "memory.max", "4M\n"), 0);
	cowvm_cgroup_read(g, "memory.max", buf, sizeof(buf));
	cr_assert_str_eq(buf, "4194304\n");
	EQ(cowvm_cgroup_write(g, "memory.max", "max"), 0);
	cowvm_cgroup_read(g, "memory.max", buf, sizeof(buf));
	cr_assert_str_eq(buf, "max\n");
	EQ(cowvm_cgroup_write(g, "memory.high", "10000"), 0); /* rounded down to pages */
	cowvm_cgroup_read(g, "memory.high", buf, sizeof(buf));
	cr_assert_str_eq(buf, "8192\n");
	cowvm_task_t *t = spawn_in(sub);
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	write_byte(t, A, 1);
	cowvm_cgroup_read(g, "memory.current", buf, sizeof(buf));
	cr_assert_str_eq(buf, "4096\n");
	cowvm_cgroup_read(g, "memory.events", buf, sizeof(buf));
	cr_assert_str_eq(buf, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n");
	cowvm_cgroup_read(g, "memory.oom.group", buf, sizeof(buf));
	cr_assert_str_eq(buf, "0\n");
	cowvm_cgroup_read(g, "memory.swap.current", buf, sizeof(buf));
	cr_assert_str_eq(buf, "0\n");
	EQ(cowvm_cgroup_read(g, "memory.stat", buf, sizeof(buf)), strlen(buf));
	cr_assert(!strncmp(buf, "anon 4096\nfile 0\n", 17), "memory.stat: %s", buf);
	cr_assert(strstr(buf, "\nactive_anon 4096\n"), "memory.stat: %s", buf);
	cr_assert(strstr(buf, "\npgfault 1\npgmajfault 0\n"), "memory.stat: %s", buf);
	/* snprintf rules: the full length even when the buffer is short */
	int64_t n = cowvm_cgroup_read(g, "memory.events", buf, 5);
	EQ(n, strlen("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"));
	EQ(strlen(buf), 4);
	char path[64];
	cowvm_cgroup_path(sub, path, sizeof(path));
	cr_assert_str_eq(path, "/g/sub");
	cr_assert(cowvm_cgroup_lookup(tu_vm, "g/sub") == sub);
	cr_assert(cowvm_cgroup_lookup(tu_vm, "/") == cowvm_cgroup_root(tu_vm));
}

Test(memcg, bad_input_gets_linuxs_errno_and_changes_nothing)
{
	cowvm_cgroup_t *root = cowvm_cgroup_root(tu_vm);
	const char *bad[] = { "", ".", "..", "a/b", "x\ny" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		cr_assert(cowvm_cgroup_create(root, bad[i]) == NULL, "name %zu accepted", i);
		EQ(errno, EINVAL);
	}
	errno = 0;
	cr_assert(cowvm_cgroup_create(NULL, "x") == NULL);
	EQ(errno, EINVAL);
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	errno = 0;
	cr_assert(cowvm_cgroup_create(root, "g") == NULL);
	EQ(errno, EEXIST);
	EQ(cowvm_cgroup_destroy(root), -EINVAL);
	EQ(cowvm_cgroup_destroy(NULL), -EINVAL);
	cowvm_cgroup_t *sub = mkgroup(g, "sub");
	EQ(cowvm_cgroup_destroy(g), -EBUSY);
	cowvm_task_t *t = spawn_in(sub);
	EQ(cowvm_cgroup_destroy(sub), -EBUSY);
	EQ(cowvm_cgroup_set(root, COWVM_CGROUP_MEMORY_MAX, PG), -EINVAL);
	EQ(cowvm_cgroup_set(g, 99, PG), -EINVAL);
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_OOM_GROUP, 2), -EINVAL);
	uint64_t v;
	EQ(cowvm_cgroup_get(g, 0, &v), -EINVAL);
	EQ(cowvm_cgroup_get(g, COWVM_CGROUP_MEMORY_MAX, NULL), -EINVAL);
	EQ(cowvm_cgroup_write(g, "memory.max", "12Q"), -EINVAL);
	EQ(cowvm_cgroup_write(g, "memory.max", "-1"), -EINVAL);
	EQ(cowvm_cgroup_write(g, "memory.max", ""), -EINVAL);
	EQ(cowvm_cgroup_write(g, "memory.oom.group", "yes"), -EINVAL);
	EQ(cowvm_cgroup_write(g, "memory.nonsense", "1"), -ENOENT);
	EQ(cowvm_cgroup_write(root, "memory.max", "1M"), -ENOENT);
	EQ(cowvm_cgroup_get(g, COWVM_CGROUP_MEMORY_MAX, &v), 0);
	EQ(v, COWVM_CGROUP_UNLIMITED);
	char buf[16];
	EQ(cowvm_cgroup_read(root, "memory.current", buf, sizeof(buf)), -ENOENT);
	EQ(cowvm_cgroup_read(g, "memory.bogus", buf, sizeof(buf)), -ENOENT);
	EQ(cowvm_cgroup_attach(NULL, t), -EINVAL);
	EQ(cowvm_cgroup_attach(g, NULL), -EINVAL);
	errno = 0;
	cr_assert(cowvm_cgroup_lookup(tu_vm, "g/none") == NULL);
	EQ(errno, ENOENT);
	EQ(cowvm_task_oom_killed(NULL), -EINVAL);
	cr_assert(cowvm_task_cgroup(t) == sub);
	CHECK();
	/* empty it and it can go */
	EQ(cowvm_cgroup_attach(root, t), 0);
	EQ(cowvm_cgroup_destroy(sub), 0);
	EQ(cowvm_cgroup_destroy(g), 0);
	CHECK();
}

/* fork copies a pinned page for the child at once (copy_present_page), under the page-table
 * locks: the copy is charged to the parent's group without waiting, and at the limit the fork
 * fails with ENOMEM, changing nothing. */
Test(memcg, fork_of_a_pinned_page_at_the_groups_limit_fails_with_enomem)
{
	cowvm_cgroup_t *g = mkgroup(NULL, "g");
	cowvm_task_t *p = spawn_in(g);
	map_fixed(p, A, 2, PROT_RW, MAP_PRIV_ANON);
	write_pages(p, A, 2, 1);
	cowvm_pin_t *pin = cowvm_pin_user_pages(p, A, 1, COWVM_FOLL_WRITE | COWVM_FOLL_LONGTERM);
	cr_assert(pin != NULL);
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 2 * PG), 0);
	errno = 0;
	cr_assert(tu_try_fork(p) == NULL);
	EQ(errno, ENOMEM);
	EQ(cowvm_task_oom_killed(p), 0);
	EQ(current_pages(g), 2);
	CHECK();
	EQ(cowvm_cgroup_set(g, COWVM_CGROUP_MEMORY_MAX, 3 * PG), 0);
	cowvm_task_t *c = tu_fork(p);
	EQ(current_pages(g), 3);
	cr_assert(pfn_of(c, A) != pfn_of(p, A));
	CHECK();
	cowvm_unpin(pin);
}
