/*
 * test_rmap.c - reverse mapping: cowvm_rmap_walk finds exactly the (process, address) pairs that
 * map a frame, through fork, COW breaks, reuse, VMA splits and exits; and every anon frame's
 * index is the linear page index of each mapping: (addr - vm_start) / 4096 + vm_pgoff.
 */
#include "testutil.h"

#include <stdarg.h>

TestSuite(rmap, .init = tu_setup, .fini = tu_teardown);

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

#define expect_rmap(pfn, ...) tu_expect_rmap(__FILE__, __LINE__, (pfn), __VA_ARGS__, NULL)

/*
 * expect_rmap(pfn, task1, addr1, task2, addr2, ..., NULL): the walk returns exactly these
 * (pid of task, address) pairs, in any order, each once.
 */
static void tu_expect_rmap(const char *file, int line, uint64_t pfn, ...)
{
	struct hits h = { 0 };
	int want_pid[MAX_HITS];
	uint64_t want_addr[MAX_HITS];
	int nwant = 0;
	va_list ap;

	va_start(ap, pfn);
	for (;;) {
		cowvm_task_t *t = va_arg(ap, cowvm_task_t *);
		if (t == NULL)
			break;
		cr_assert(nwant < MAX_HITS);
		want_pid[nwant] = cowvm_task_pid(t);
		want_addr[nwant] = va_arg(ap, uint64_t);
		nwant++;
	}
	va_end(ap);

	int rc = cowvm_rmap_walk(tu_vm, pfn, collect_fn, &h);
	cr_assert(rc == h.n, "%s:%d: rmap_walk(%#" PRIx64 ") returned %d after %d calls", file,
		  line, pfn, rc, h.n);
	cr_assert(h.n == nwant, "%s:%d: rmap_walk(%#" PRIx64 ") found %d mappings, expected %d",
		  file, line, pfn, h.n, nwant);
	int used[MAX_HITS] = { 0 };
	for (int i = 0; i < nwant; i++) {
		int found = 0;
		for (int j = 0; j < h.n && !found; j++) {
			if (!used[j] && h.pid[j] == want_pid[i] && h.addr[j] == want_addr[i]) {
				used[j] = 1;
				found = 1;
			}
		}
		cr_assert(found, "%s:%d: rmap_walk(%#" PRIx64 ") did not report pid %d at %#" PRIx64,
			  file, line, pfn, want_pid[i], want_addr[i]);
	}
}

/* The frame's index equals the linear page index of addr in t's VMA. */
#define expect_index(t, addr) tu_expect_index(__FILE__, __LINE__, (t), (addr))
static void tu_expect_index(const char *file, int line, cowvm_task_t *t, uint64_t addr)
{
	struct cowvm_vma_info v = tu_vma_at(file, line, t, addr);
	uint64_t pfn = pfn_of(t, addr);
	struct cowvm_frame_info f = tu_frame_at(file, line, pfn);
	uint64_t want = (addr - v.start) / PG + v.pgoff;
	cr_assert(f.index == want,
		  "%s:%d: frame %#" PRIx64 " at %#" PRIx64 " has index %#" PRIx64
		  ", linear page index in [%#" PRIx64 ", %#" PRIx64 ") pgoff %#" PRIx64 " is %#" PRIx64,
		  file, line, pfn, addr, f.index, v.start, v.end, v.pgoff, want);
}

/*
 *   P: [a | a+1p (pattern) | a+2p )
 *   C = fork(P), G = fork(C): the frame at a+1p is mapped by all three
 * then G, P, C write it in that order.
 */
Test(rmap, rmap_walk_follows_a_frame_through_three_generations_and_their_cow_breaks)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 3, PROT_RW);
	uint64_t x = a + PG;
	fill_page(p, x, 1);
	cowvm_task_t *c = tu_fork(p);
	cowvm_task_t *g = tu_fork(c);
	CHECK();
	NE(cowvm_task_pid(p), cowvm_task_pid(c));
	NE(cowvm_task_pid(c), cowvm_task_pid(g));
	NE(cowvm_task_pid(p), cowvm_task_pid(g));
	uint64_t orig = pfn_of(p, x);
	expect_rmap(orig, p, x, c, x, g, x);
	expect_index(p, x);
	expect_index(g, x);

	write_byte(g, x, 0x47);
	CHECK();
	uint64_t gpfn = pfn_of(g, x);
	expect_rmap(orig, p, x, c, x);
	expect_rmap(gpfn, g, x);
	expect_index(g, x);

	write_byte(p, x, 0x50);
	CHECK();
	uint64_t ppfn = pfn_of(p, x);
	expect_rmap(orig, c, x);
	expect_rmap(ppfn, p, x);

	write_byte(c, x, 0x43); /* reuse: the original frame moves to C's anon_vma */
	CHECK();
	EQ(pfn_of(c, x), orig);
	expect_rmap(orig, c, x);
	expect_index(c, x);
	expect_rmap(gpfn, g, x);
}

/* A COW copy made in the child lives in the child's own anon_vma; a fork of the child must
 * still find it in the grandchild (anon_vma_fork links the grandchild to the child's). */
Test(rmap, a_page_copied_in_a_child_is_found_in_the_grandchild_after_the_child_forks)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 2, PROT_RW);
	fill_page(p, a, 1);
	fill_page(p, a + PG, 2);
	cowvm_task_t *c = tu_fork(p);
	write_byte(c, a, 0xC0); /* C's own copy */
	uint64_t cpfn = pfn_of(c, a);
	expect_rmap(cpfn, c, a);

	cowvm_task_t *g = tu_fork(c);
	CHECK();
	expect_rmap(cpfn, c, a, g, a);
	expect_rmap(pfn_of(p, a + PG), p, a + PG, c, a + PG, g, a + PG);
	expect_rmap(pfn_of(p, a), p, a);

	tu_exit(c);
	CHECK();
	expect_rmap(cpfn, g, a);
	EQ(read_byte(g, a), 0xC0);
}

/* After the other side exits, the survivor's write reuses the page (folio_move_anon_rmap moves
 * it to the survivor's own anon_vma); a later fork must find it in both. */
Test(rmap, a_reused_page_is_found_again_after_the_next_fork)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	fill_page(p, a, 1);
	cowvm_task_t *c = tu_fork(p);
	uint64_t pfn = pfn_of(p, a);
	tu_exit(p);
	write_byte(c, a, 2);
	EQ(pfn_of(c, a), pfn);
	expect_rmap(pfn, c, a);
	expect_index(c, a);

	cowvm_task_t *d = tu_fork(c);
	CHECK();
	expect_rmap(pfn, c, a, d, a);
}

Test(rmap, frame_index_is_the_linear_page_index_in_every_vma_kind)
{
	cowvm_task_t *t = tu_spawn();
	uint64_t a = map_anon(t, 5, PROT_RW);
	uint64_t s = map_shared_anon(t, 3, PROT_RW);
	for (uint64_t i = 0; i < 5; i += 2) {
		write_byte(t, a + i * PG, 1);
		expect_index(t, a + i * PG);
		EQ(frame(pfn_of(t, a + i * PG)).index, a / PG + i); /* private: pgoff = a >> 12 */
	}
	for (uint64_t i = 0; i < 3; i++) {
		write_byte(t, s + i * PG, 1);
		expect_index(t, s + i * PG);
		EQ(frame(pfn_of(t, s + i * PG)).index, i); /* shmem: offset in the object */
	}
	CHECK();
}

/*
 *   P and C after fork:     [a    |a+1p |a+2p |a+3p )     one VMA each, four shared frames
 *   P munmaps a+1p:     P:  [a    )     [a+2p |a+3p )     the tail VMA has pgoff + 2
 *   C mprotects a+3p R: C:  [a    |a+1p |a+2p )[a+3p )
 */
Test(rmap, rmap_walk_reports_the_right_addresses_after_vmas_are_split)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 4, PROT_RW);
	for (int i = 0; i < 4; i++)
		fill_page(p, a + (uint64_t)i * PG, (uint8_t)i);
	cowvm_task_t *c = tu_fork(p);
	uint64_t pfn[4];
	for (int i = 0; i < 4; i++)
		pfn[i] = pfn_of(p, a + (uint64_t)i * PG);

	EQ(cowvm_munmap(p, a + PG, PG), 0);
	CHECK();
	EQ(vma_at(p, a + 2 * PG).start, a + 2 * PG);
	EQ(vma_at(p, a + 2 * PG).pgoff, vma_at(p, a).pgoff + 2);
	expect_rmap(pfn[0], p, a, c, a);
	expect_rmap(pfn[1], c, a + PG);
	expect_rmap(pfn[2], p, a + 2 * PG, c, a + 2 * PG);
	expect_rmap(pfn[3], p, a + 3 * PG, c, a + 3 * PG);
	expect_index(p, a + 3 * PG);
	expect_index(c, a + 3 * PG);

	EQ(cowvm_mprotect(c, a + 3 * PG, PG, PROT_READ), 0);
	CHECK();
	expect_rmap(pfn[3], p, a + 3 * PG, c, a + 3 * PG);
	expect_index(c, a + 3 * PG);

	/* a COW break in the split tail still finds the right pages */
	write_byte(p, a + 3 * PG, 0x33);
	CHECK();
	expect_rmap(pfn[3], c, a + 3 * PG);
	expect_rmap(pfn_of(p, a + 3 * PG), p, a + 3 * PG);
	expect_index(p, a + 3 * PG);
	expect_page(c, a + 3 * PG, 3);
}

Test(rmap, a_page_mapped_by_two_threads_of_one_process_is_one_mapping)
{
	cowvm_task_t *p = tu_spawn();
	cowvm_task_t *t2 = tu_clone_thread(p);
	EQ(cowvm_task_pid(t2), cowvm_task_pid(p));
	uint64_t a = map_anon(p, 1, PROT_RW);
	write_byte(t2, a, 1);
	CHECK();
	expect_rmap(pfn_of(p, a), p, a);
	expect_rmap(pfn_of(p, a), t2, a);
}

Test(rmap, rmap_walk_finds_every_process_mapping_a_shared_anonymous_page)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t s = map_shared_anon(p, 1, PROT_RW);
	write_byte(p, s, 1);
	uint64_t pfn = pfn_of(p, s);
	cowvm_task_t *c = tu_fork(p);
	expect_rmap(pfn, p, s); /* the child has not touched it yet: no PTE */
	EQ(read_byte(c, s), 1);
	CHECK();
	expect_rmap(pfn, p, s, c, s);
	tu_exit(p);
	CHECK();
	expect_rmap(pfn, c, s);
}

static int stop_fn(void *arg, int pid, uint64_t addr)
{
	(void)pid;
	(void)addr;
	(*(int *)arg)++;
	return 1;
}

Test(rmap, rmap_walk_ends_when_the_function_returns_nonzero)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	write_byte(p, a, 1);
	tu_fork(p);
	tu_fork(p);
	EQ(frame(pfn_of(p, a)).mapcount, 3);
	int calls = 0;
	cowvm_rmap_walk(tu_vm, pfn_of(p, a), stop_fn, &calls);
	EQ(calls, 1);
	CHECK();
}

Test(rmap, the_zero_page_has_no_reverse_mappings)
{
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, 1, PROT_RW);
	EQ(read_byte(p, a), 0);
	EQ(pfn_of(p, a), zero_pfn());
	struct hits h = { 0 };
	EQ(cowvm_rmap_walk(tu_vm, zero_pfn(), collect_fn, &h), 0);
	EQ(h.n, 0);
	CHECK();
}
