/*
 * test_oom.c - running out of frames, and failures injected into the frame allocator.
 *
 * The machine here is tiny: 256 KiB = 64 frames, some of them taken by the zero page and the
 * allocator itself.  A fault that cannot get a frame (out of frames, or an injected allocation
 * failure) is VM_FAULT_OOM: the task's own access (cowvm_read/write/load64/store64) fails with
 * -ENOMEM, where Linux would call the OOM killer (-EFAULT stays for SIGSEGV/SIGBUS), nothing is
 * half-done, and the fault is not counted as the task's minor fault (mm_account_fault skips
 * VM_FAULT_ERROR).  After every task exits every frame is back (the fixture checks).
 */
#include "testutil.h"

static void tiny_setup(void)
{
	tu_setup_phys(256u << 10);
}

TestSuite(oom, .init = tiny_setup, .fini = tu_teardown);

#define A TU_BASE
#define BIG 128 /* pages: twice the machine */

/* Writes page after page of [A, A + BIG pages) until a write fails; returns how many
 * succeeded.  Page i holds byte i + 1 at offset i. */
static uint64_t fill_until_oom(cowvm_task_t *t)
{
	uint64_t i;
	for (i = 0; i < BIG; i++) {
		uint8_t v = (uint8_t)(i + 1);
		struct cowvm_task_stats s0 = stats(t);
		int rc = cowvm_write(t, A + i * PG + i, &v, 1);
		CHECK();
		if (rc != 0) {
			EQ(rc, -ENOMEM);
			EQ(stats(t).min_flt, s0.min_flt);
			EQ(stats(t).rss_anon, s0.rss_anon);
			break;
		}
	}
	cr_assert(i > 0 && i < BIG, "%" PRIu64 " of %d pages written before running out", i, BIG);
	return i;
}

static void expect_filled(cowvm_task_t *t, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		EQ(read_byte(t, A + i * PG + i), (uint8_t)(i + 1));
}

Test(oom, writes_until_memory_runs_out_fail_with_enomem_and_keep_everything_written_before)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, BIG, PROT_RW, MAP_PRIV_ANON);
	uint64_t n = fill_until_oom(t);

	EQ(stats(t).rss_anon, n);
	EQ(pm_present(t, A + n * PG), 0);
	expect_filled(t, n);
	/* still out of memory: the same write fails again, nothing changes */
	struct tu_state before = state_of(t);
	uint8_t v = 0x77;
	EQ(cowvm_write(t, A + n * PG, &v, 1), -ENOMEM);
	CHECK();
	expect_state(t, before, "a second write with no memory left");

	/* freeing one page lets exactly that write through */
	EQ(cowvm_madvise(t, A, PG, MADV_DONTNEED), 0);
	write_byte(t, A + n * PG, v);
	EQ(read_byte(t, A + n * PG), v);
	CHECK();
}

/*
 * MAP_POPULATE of more than the machine has.  Linux ignores a failure to populate (mm_populate's
 * result is dropped) and returns the mapping; returning -ENOMEM with nothing mapped is also
 * accepted here.  Either way: checker clean, no frame lost, and the mapping (if any) usable as
 * far as memory goes.
 */
Test(oom, map_populate_of_more_than_the_machine_has_fails_cleanly)
{
	cowvm_task_t *t = tu_spawn();
	struct tu_state before = state_of(t);
	int64_t a = cowvm_mmap(t, A, BIG * PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED | MAP_POPULATE);
	CHECK();
	if (a < 0) {
		EQ(a, -ENOMEM);
		expect_state(t, before, "a MAP_POPULATE that failed with -ENOMEM");
		return;
	}
	EQ(a, A);
	struct cowvm_task_stats s = stats(t);
	cr_assert(s.rss_anon > 0 && s.rss_anon < BIG, "rss %" PRIu64 " after MAP_POPULATE of %d pages",
		  s.rss_anon, BIG);
	/* every populated page reads zeros */
	for (uint64_t i = 0; i < BIG; i++)
		if (pm_present(t, A + i * PG))
			EQ(read_byte(t, A + i * PG + 17), 0);
	CHECK();
}

Test(oom, fork_with_memory_exhausted_returns_null_with_enomem_and_changes_nothing)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, BIG, PROT_RW, MAP_PRIV_ANON);
	uint64_t n = fill_until_oom(t);
	struct tu_state before = state_of(t);

	errno = 0;
	cowvm_task_t *c = tu_try_fork(t);
	int e = errno;
	cr_assert(c == NULL, "fork succeeded with %" PRIu64 " frames free", before.nr_free_pages);
	EQ(e, ENOMEM);
	CHECK();
	expect_state(t, before, "a failed fork");
	/* the parent's pages are still its own: exclusive and writable without a fault */
	for (uint64_t i = 0; i < n; i++) {
		EQ(pm_exclusive(t, A + i * PG), 1);
		EQ(pte_writable(t, A + i * PG), 1);
	}
	write_byte(t, A + 1, 0x55);
	EQ(stats(t).min_flt, before.min_flt);
	EQ(read_byte(t, A + 1), 0x55);
	expect_filled(t, n);
	CHECK();
}

/*
 * Fork with k = 0 .. 16 frames left.  With few frames fork fails (ENOMEM, nothing changed);
 * with more it succeeds and the child sees the parent's data.  Each round ends with every task
 * gone and every frame back.
 */
Test(oom, fork_near_the_memory_limit_either_succeeds_or_fails_cleanly)
{
	int failed = 0, succeeded = 0;
	for (uint64_t k = 0; k <= 16; k++) {
		cowvm_task_t *t = tu_spawn();
		map_fixed(t, A, BIG, PROT_RW, MAP_PRIV_ANON);
		uint64_t n = 0;
		while (n < BIG && vmstat().nr_free_pages > k) {
			uint8_t v = (uint8_t)(n + 1);
			if (cowvm_write(t, A + n * PG + n, &v, 1) != 0)
				break;
			n++;
		}
		CHECK();
		struct tu_state before = state_of(t);

		errno = 0;
		cowvm_task_t *c = tu_try_fork(t);
		int e = errno;
		CHECK();
		if (c == NULL) {
			cr_assert(e == ENOMEM, "k=%" PRIu64 ": fork failed with errno %d", k, e);
			expect_state(t, before, "a failed fork near the limit");
			failed++;
		} else {
			succeeded++;
			expect_filled(c, n);
			/* a COW break may or may not find a frame; either way it is clean */
			uint8_t v = 0xCC;
			int rc = cowvm_write(c, A, &v, 1);
			cr_assert(rc == 0 || rc == -ENOMEM, "k=%" PRIu64 ": write returned %d", k, rc);
			CHECK();
			EQ(read_byte(t, A), 1);
			tu_exit(c);
			CHECK();
		}
		expect_filled(t, n);
		tu_exit(t);
		CHECK();
		cr_assert(vmstat().nr_free_pages == tu_free_after_create,
			  "k=%" PRIu64 ": %" PRIu64 " frames free after both exited, %" PRIu64
			  " at create", k, vmstat().nr_free_pages, tu_free_after_create);
	}
	cr_assert(failed > 0, "fork never failed, even with no frame left");
	cr_assert(succeeded > 0, "fork never succeeded, even with 16 frames left");
}

/* ---- fault injection: COWVM_FAIL_NEXT ------------------------------------------------------ */

Test(oom, fail_next_on_a_first_write_fault_returns_enomem_and_leaks_nothing)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 2, PROT_RW, MAP_PRIV_ANON);
	write_byte(t, A, 1); /* page tables now exist: the next fault needs one frame */
	struct tu_state before = state_of(t);

	EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_NEXT, 0), 0);
	uint8_t v = 2;
	EQ(cowvm_write(t, A + PG, &v, 1), -ENOMEM);
	CHECK();
	expect_state(t, before, "an injected failure on a first write");
	EQ(pm_present(t, A + PG), 0);

	/* one failure only: the retry succeeds */
	write_byte(t, A + PG, v);
	EQ(read_byte(t, A + PG), 2);
	EQ(stats(t).rss_anon, before.rss_anon + 1);
	CHECK();
}

Test(oom, fail_next_on_a_write_after_read_keeps_the_zero_page)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 1, PROT_RW, MAP_PRIV_ANON);
	EQ(read_byte(t, A), 0);
	struct tu_state before = state_of(t);

	EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_NEXT, 0), 0);
	uint8_t v = 2;
	EQ(cowvm_write(t, A, &v, 1), -ENOMEM);
	CHECK();
	expect_state(t, before, "an injected failure replacing the zero page");
	EQ(pfn_of(t, A), zero_pfn());
	EQ(read_byte(t, A), 0);
	write_byte(t, A, v);
	NE(pfn_of(t, A), zero_pfn());
	CHECK();
}

Test(oom, fail_next_on_a_cow_fault_leaves_both_sides_sharing_the_old_page)
{
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, 1, PROT_RW, MAP_PRIV_ANON);
	fill_page(p, A, 3);
	cowvm_task_t *c = tu_fork(p);
	uint64_t pfn = pfn_of(p, A);
	struct tu_state before = state_of(p);
	struct cowvm_vmstat v0 = vmstat();

	EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_NEXT, 0), 0);
	uint8_t v = 0x99;
	EQ(cowvm_write(p, A, &v, 1), -ENOMEM);
	CHECK();
	expect_state(p, before, "an injected failure in wp_page_copy");
	EQ(vmstat().cow_copies, v0.cow_copies);
	EQ(pfn_of(p, A), pfn);
	EQ(pfn_of(c, A), pfn);
	EQ(frame(pfn).refcount, 2);
	EQ(frame(pfn).mapcount, 2);
	EQ(pte_writable(p, A), 0);
	expect_page(p, A, 3);
	expect_page(c, A, 3);

	write_byte(p, A, v);
	NE(pfn_of(p, A), pfn);
	expect_page(c, A, 3);
	CHECK();
}

Test(oom, fail_next_on_fork_returns_null_with_enomem_and_changes_nothing)
{
	cowvm_task_t *p = tu_spawn();
	map_fixed(p, A, 2, PROT_RW, MAP_PRIV_ANON);
	fill_page(p, A, 1);
	fill_page(p, A + PG, 2);
	struct tu_state before = state_of(p);

	EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_NEXT, 0), 0);
	errno = 0;
	cowvm_task_t *c = tu_try_fork(p);
	int e = errno;
	cr_assert(c == NULL, "fork succeeded despite the injected failure");
	EQ(e, ENOMEM);
	CHECK();
	expect_state(p, before, "an injected failure in fork");
	EQ(pm_exclusive(p, A), 1);
	EQ(pte_writable(p, A), 1);
	expect_page(p, A, 1);
	expect_page(p, A + PG, 2);
	CHECK();
}

/* ---- COWVM_FAIL_AFTER and COWVM_FAIL_CAP -------------------------------------------------------- */

/*
 *   [A  written (page tables made) | A+1p .. A+5p fresh )   all in one page table
 * With FAIL_AFTER 3, the writes to A+1p..A+3p get frames and A+4p, A+5p do not.
 */
Test(oom, fail_after_n_lets_exactly_n_allocations_succeed)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 6, PROT_RW, MAP_PRIV_ANON);
	write_byte(t, A, 1);
	EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_AFTER, 3), 0);
	for (uint64_t i = 1; i < 6; i++) {
		uint8_t v = (uint8_t)i;
		EQ(cowvm_write(t, A + i * PG, &v, 1), i <= 3 ? 0 : -ENOMEM);
		CHECK();
	}
	EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_OFF, 0), 0);
	EQ(stats(t).rss_anon, 4);
	write_byte(t, A + 5 * PG, 5);
	EQ(stats(t).rss_anon, 5);
	CHECK();
}

/* FAIL_CAP n: an allocation fails while n or more frames are in use (in use = the machine's
 * frames minus the free ones). */
Test(oom, fail_cap_refuses_allocations_while_that_many_frames_are_in_use)
{
	cowvm_task_t *t = tu_spawn();
	map_fixed(t, A, 6, PROT_RW, MAP_PRIV_ANON);
	write_byte(t, A, 1);
	struct cowvm_vmstat v = vmstat();
	uint64_t in_use = v.nr_total_pages - v.nr_free_pages;
	EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_CAP, in_use + 2), 0);
	write_byte(t, A + PG, 1);
	write_byte(t, A + 2 * PG, 2);
	uint8_t x = 3;
	EQ(cowvm_write(t, A + 3 * PG, &x, 1), -ENOMEM);
	CHECK();
	/* freeing one frame makes room for one more */
	EQ(cowvm_madvise(t, A + PG, PG, MADV_DONTNEED), 0);
	write_byte(t, A + 3 * PG, 3);
	EQ(cowvm_write(t, A + 4 * PG, &x, 1), -ENOMEM);
	EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_OFF, 0), 0);
	write_byte(t, A + 4 * PG, 4);
	CHECK();
}

/* ---- COWVM_FAIL_NTH sweep --------------------------------------------------------------------- */

/*
 * A small fork + COW scenario, run again and again with the k-th frame allocation failing,
 * k = 1, 2, ... until a run completes without hitting the failure.  Every step may fail; a step
 * that fails must leave things as they were, so a byte-level model of each process's memory
 * (updated only by successful writes) must match at the end.  Checker after every step, all
 * frames back after every run.
 *
 *   P: mmap 4 pages [A, A+4p); write pages 0, 1, 2; read page 3
 *   C = fork(P); G = fork(C)
 *   C writes page 0; P writes page 0; G writes page 1; P writes page 2;
 *   C writes page 3; G writes page 3; P madvise(DONTNEED) page 1; P writes page 1
 */
#define NTASKS 3
#define NPAGES 4

struct model {
	cowvm_task_t *t[NTASKS];
	uint8_t mem[NTASKS][NPAGES]; /* byte 0 of each page */
	int failures;
};

static void step_write(struct model *m, int who, int page, uint8_t v)
{
	if (m->t[who] == NULL)
		return;
	int rc = cowvm_write(m->t[who], A + (uint64_t)page * PG, &v, 1);
	cr_assert(rc == 0 || rc == -ENOMEM, "write returned %d", rc);
	if (rc == 0)
		m->mem[who][page] = v;
	else
		m->failures++;
	CHECK();
}

static void step_read(struct model *m, int who, int page)
{
	if (m->t[who] == NULL)
		return;
	uint8_t v = 0xEE;
	int rc = cowvm_read(m->t[who], A + (uint64_t)page * PG, &v, 1);
	cr_assert(rc == 0 || rc == -ENOMEM, "read returned %d", rc);
	if (rc == 0)
		EQ(v, m->mem[who][page]);
	else
		m->failures++;
	CHECK();
}

static void step_fork(struct model *m, int parent, int child)
{
	if (m->t[parent] == NULL)
		return;
	errno = 0;
	m->t[child] = tu_try_fork(m->t[parent]);
	if (m->t[child] == NULL) {
		cr_assert(errno == ENOMEM, "fork failed with errno %d", errno);
		m->failures++;
	} else {
		memcpy(m->mem[child], m->mem[parent], NPAGES);
	}
	CHECK();
}

static void run_scenario(struct model *m)
{
	memset(m, 0, sizeof *m);
	m->t[0] = tu_try_spawn();
	if (m->t[0] == NULL) {
		cr_assert(errno == ENOMEM, "spawn failed with errno %d", errno);
		m->failures++;
		return;
	}
	int64_t a = cowvm_mmap(m->t[0], A, NPAGES * PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED);
	CHECK();
	if (a < 0) {
		EQ(a, -ENOMEM);
		m->failures++;
		return;
	}
	step_write(m, 0, 0, 0x10);
	step_write(m, 0, 1, 0x11);
	step_write(m, 0, 2, 0x12);
	step_read(m, 0, 3);
	step_fork(m, 0, 1);
	step_fork(m, 1, 2);
	step_write(m, 1, 0, 0x20);
	step_write(m, 0, 0, 0x30);
	step_write(m, 2, 1, 0x41);
	step_write(m, 0, 2, 0x32);
	step_write(m, 1, 3, 0x23);
	step_write(m, 2, 3, 0x43);
	if (m->t[0] != NULL) {
		EQ(cowvm_madvise(m->t[0], A + PG, PG, MADV_DONTNEED), 0);
		m->mem[0][1] = 0;
		CHECK();
	}
	step_write(m, 0, 1, 0x31);
}

Test(oom, fail_nth_sweep_over_a_fork_and_cow_scenario_never_breaks_or_leaks)
{
	struct model m;
	int k;
	for (k = 1; k < 1000; k++) {
		EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_NTH, (uint64_t)k), 0);
		run_scenario(&m);
		EQ(cowvm_fail_alloc(tu_vm, COWVM_FAIL_OFF, 0), 0);
		int failed = m.failures;

		/* with the allocator healthy again, every live task's memory matches the model */
		for (int who = 0; who < NTASKS; who++)
			for (int page = 0; page < NPAGES && m.t[who] != NULL; page++)
				cr_assert(read_byte(m.t[who], A + (uint64_t)page * PG) ==
						  m.mem[who][page],
					  "k=%d: task %d page %d is %#x, model says %#x", k, who, page,
					  read_byte(m.t[who], A + (uint64_t)page * PG),
					  m.mem[who][page]);
		CHECK();
		for (int who = NTASKS - 1; who >= 0; who--)
			if (m.t[who] != NULL)
				tu_exit(m.t[who]);
		CHECK();
		cr_assert(vmstat().nr_free_pages == tu_free_after_create,
			  "k=%d: %" PRIu64 " frames free after the run, %" PRIu64 " at create", k,
			  vmstat().nr_free_pages, tu_free_after_create);
		if (!failed)
			break;
	}
	cr_assert(k > 8, "the scenario finished at k=%d: it should allocate more frames than that",
		  k);
	cr_assert(k < 1000, "the injected failure was still hit at k=%d", k);
}
