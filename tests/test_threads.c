/*
 * test_threads.c - several tasks on several host threads, and TLB coherence between the tasks
 * (CPUs) of one mm.
 *
 * The first tests are sequential (one host thread driving two tasks of one mm) and pin down
 * TLB shootdowns exactly: a change made through one task must be seen by the other task even
 * though that task has the old translation cached.  The last tests run tasks on host pthreads
 * at once; they keep well under a few seconds (also under ThreadSanitizer).  Worker threads
 * never call asserts (cmocka's, like Criterion's, end the test from the test's main thread):
 * they count errors and keep the first message, which the main thread asserts on after joining
 * every thread it started.
 *
 * This is a cmocka suite (build with -DTU_CMOCKA, link -lcmocka): Criterion 2.4 cannot start
 * under ThreadSanitizer.  cmocka runs the tests one after another in this process; each has the
 * fixture of testutil.h and a time limit of 60 s (as the Criterion suite's .timeout), after which
 * SIGALRM ends the run.  Command-line arguments are ignored.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define TEST_TIMEOUT 60 /* seconds, per test */

static int threads_setup(void **state)
{
	alarm(TEST_TIMEOUT);
	return tu_cm_setup(state);
}

static int threads_teardown(void **state)
{
	alarm(0);
	return tu_cm_teardown(state);
}

/* ---- tasks of one mm, one host thread ------------------------------------------------------- */

static void clone_thread_shares_the_address_space_and_counts_faults_per_thread(void **state)
{
	(void)state;
	cowvm_task_t *t1 = tu_spawn();
	cowvm_task_t *t2 = tu_clone_thread(t1);
	EQ(cowvm_task_pid(t2), cowvm_task_pid(t1));
	NE(cowvm_task_tid(t2), cowvm_task_tid(t1));
	EQ(cowvm_task_tid(t1), cowvm_task_pid(t1)); /* the first thread's tid is the tgid */

	uint64_t a = map_anon(t1, 2, PROT_RW);
	EQ(stats(t2).nr_vmas, stats(t1).nr_vmas);
	struct cowvm_task_stats s1 = stats(t1), s2 = stats(t2);
	fill_page(t1, a, 1);
	expect_page(t2, a, 1); /* present already: a TLB miss in t2, not a fault */
	EQ(stats(t1).min_flt - s1.min_flt, 1);
	EQ(stats(t2).min_flt, s2.min_flt);
	fill_page(t2, a + PG, 2);
	EQ(stats(t2).min_flt - s2.min_flt, 1);
	EQ(stats(t1).min_flt - s1.min_flt, 1);
	expect_page(t1, a + PG, 2);
	EQ(stats(t1).rss_anon, 2); /* RSS is the process's */
	EQ(stats(t2).rss_anon, 2);

	/* the first thread may exit first; the mm lives on with the second */
	tu_exit(t1);
	CHECK();
	expect_page(t2, a, 1);
	expect_page(t2, a + PG, 2);
	CHECK();
}

/* Each case: t2 caches a translation of page x, then t1 changes the mapping; t2's next access
 * must see the change. */
static void a_change_made_through_one_thread_is_seen_through_the_other_threads_tlb(void **state)
{
	(void)state;
	static const char *const what[] = {
		"mprotect(R) by t1 revokes t2's cached write access",
		"munmap by t1 revokes t2's cached read access",
		"MADV_DONTNEED by t1 makes t2 read zeros",
		"MAP_FIXED by t1 replaces the page t2 had cached",
	};
	for (int i = 0; i < 4; i++) {
		const char *why = what[i];
		cowvm_task_t *t1 = tu_spawn();
		cowvm_task_t *t2 = tu_clone_thread(t1);
		uint64_t x = map_anon(t1, 1, PROT_RW);
		fill_page(t1, x, 1);
		write_byte(t2, x, 0x22); /* t2 now caches a writable translation */
		EQ_WHY(read_byte(t2, x), 0x22, why);
		uint8_t v = 0x33, r = 0xEE;

		switch (i) {
		case 0:
			EQ_WHY(cowvm_mprotect(t1, x, PG, PROT_READ), 0, why);
			EQ_WHY(cowvm_write(t2, x, &v, 1), -EFAULT, why);
			EQ_WHY(read_byte(t2, x), 0x22, why);
			break;
		case 1:
			EQ_WHY(cowvm_munmap(t1, x, PG), 0, why);
			EQ_WHY(cowvm_read(t2, x, &r, 1), -EFAULT, why);
			EQ_WHY(cowvm_write(t2, x, &v, 1), -EFAULT, why);
			EQ_WHY(r, 0xEE, why);
			break;
		case 2:
			EQ_WHY(cowvm_madvise(t1, x, PG, MADV_DONTNEED), 0, why);
			EQ_WHY(read_byte(t2, x), 0, why);
			expect_zeros(t2, x, PG);
			break;
		case 3:
			map_fixed(t1, x, 1, PROT_RW, MAP_PRIV_ANON);
			EQ_WHY(read_byte(t2, x), 0, why);
			write_byte(t2, x, v);
			EQ_WHY(read_byte(t1, x), v, why);
			break;
		}
		CHECK();
		tu_exit(t2);
		tu_exit(t1);
		CHECK();
	}
}

/*
 * Fork write-protects the parent's PTEs: a sibling thread holding a writable translation must
 * lose it, or its next write would land in the page the child now shares.
 */
static void fork_by_one_thread_write_protects_the_page_for_the_other_thread_too(void **state)
{
	(void)state;
	cowvm_task_t *t1 = tu_spawn();
	cowvm_task_t *t2 = tu_clone_thread(t1);
	uint64_t x = map_anon(t1, 1, PROT_RW);
	fill_page(t1, x, 1);
	write_byte(t2, x, 0x22); /* cached writable in t2 */

	cowvm_task_t *c = tu_fork(t1);
	CHECK();
	uint64_t shared = pfn_of(c, x);
	struct cowvm_task_stats s2 = stats(t2);
	write_byte(t2, x, 0x99);
	CHECK();
	EQ(stats(t2).min_flt - s2.min_flt, 1); /* a COW fault, not a silent store */
	EQ(read_byte(c, x), 0x22);
	expect_page_after(c, x, 1, 1);
	EQ(pfn_of(c, x), shared);
	NE(pfn_of(t1, x), shared);
	EQ(read_byte(t1, x), 0x99);
	CHECK();
}

/*
 * wp_page_copy clears and flushes the old PTE before installing the new one: a sibling thread
 * that cached the old (read-only, shared) frame must read the new frame afterwards.
 */
static void a_cow_break_by_one_thread_is_seen_by_the_other_thread(void **state)
{
	(void)state;
	cowvm_task_t *t1 = tu_spawn();
	cowvm_task_t *t2 = tu_clone_thread(t1);
	uint64_t x = map_anon(t1, 1, PROT_RW);
	fill_page(t1, x, 1);
	cowvm_task_t *c = tu_fork(t1);
	expect_page(t2, x, 1); /* t2 caches the shared frame, read-only */

	write_byte(t1, x, 0x55);
	CHECK();
	EQ(read_byte(t2, x), 0x55);
	EQ(read_byte(c, x), pattern_byte(1, 0));
	/* and t2's write goes to the new frame too, without another copy */
	struct cowvm_vmstat v0 = vmstat();
	write_byte(t2, x + 1, 0x66);
	EQ(vmstat().cow_copies, v0.cow_copies);
	EQ(read_byte(t1, x + 1), 0x66);
	expect_page(c, x, 1);
	CHECK();
}

/* ---- host threads at once ------------------------------------------------------------------- */

/*
 * Starting host threads.  cmocka runs every test in this one process, so a test must never end
 * with a thread of its own still running (a failed assertion longjmps out of the test, and the
 * fixture then destroys the machine).  run_threads starts them all and joins every one it
 * started before it returns; the test asserts afterwards.
 *
 * The start gate lets threads begin together once all are running (as a barrier would), and
 * lets them go home without doing anything when one of them could not be started (a barrier
 * would keep them waiting for it for ever).
 */
struct start_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state; /* 0 closed, 1 go, -1 stop */
};

static void gate_init(struct start_gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->state = 0;
}

static void gate_destroy(struct start_gate *g)
{
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
}

static void gate_open(struct start_gate *g, int state)
{
	pthread_mutex_lock(&g->lock);
	g->state = state;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Waits until the gate opens; true: go, false: stop. */
static bool gate_wait(struct start_gate *g)
{
	pthread_mutex_lock(&g->lock);
	while (g->state == 0)
		pthread_cond_wait(&g->cond, &g->lock);
	bool go = g->state > 0;
	pthread_mutex_unlock(&g->lock);
	return go;
}

struct thread_spec {
	const char *name;
	void *(*fn)(void *);
	void *arg;
};

#define MAX_THREADS 3

/*
 * Runs spec[0 .. n) on host threads: creates them in order, opens the gate (if any) when all
 * are created, joins them.  Returns 0, or the error of the first pthread_create that failed
 * with *which its index; then the gate says stop, and the threads already started are joined
 * all the same.
 */
static int run_threads(const struct thread_spec *spec, int n, struct start_gate *gate, int *which)
{
	pthread_t th[MAX_THREADS];
	int started, err = 0;
	if (n > MAX_THREADS)
		return EINVAL;
	for (started = 0; started < n; started++) {
		err = pthread_create(&th[started], NULL, spec[started].fn, spec[started].arg);
		if (err != 0)
			break;
	}
	*which = started;
	if (gate)
		gate_open(gate, err == 0 ? 1 : -1);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return err;
}

/* After run_threads: the threads all started (they have all been joined either way). */
#define EXPECT_STARTED(err, spec, which)                                                       \
	TU_ASSERT((err) == 0, "pthread_create for %s failed: %s",                              \
		  (spec)[(which)].name, strerror(err))

struct worker {
	cowvm_task_t *t;
	uint64_t base;    /* this worker's own pages */
	int npages;
	int iters;        /* at least this many iterations ... */
	atomic_int *churn_rounds; /* ... and on until the churner has done MIN_CHURN rounds */
	int ran;          /* iterations actually run */
	uint64_t seed;
	int errors;
	char first[160];
	atomic_int *done; /* workers finished */
	struct start_gate *start;
};

#define MIN_CHURN 100
#define MAX_ITERS 2000000

static void worker_error(struct worker *w, const char *fmt, int i, long long a, long long b)
{
	if (w->errors++ == 0)
		snprintf(w->first, sizeof w->first, fmt, i, a, b);
}

/* Store a value at a moving slot of its own pages and read it back, iters times; the last
 * value of every slot is checked by the main thread. */
static void *store_load_worker(void *arg)
{
	struct worker *w = arg;
	int i = 0;
	if (!gate_wait(w->start)) {
		w->ran = 0;
		atomic_fetch_add(w->done, 1);
		return NULL;
	}
	for (i = 0; i < MAX_ITERS; i++) {
		if (i >= w->iters && atomic_load(w->churn_rounds) >= MIN_CHURN)
			break;
		uint64_t slot = (uint64_t)i % ((uint64_t)w->npages * (PG / 8));
		uint64_t addr = w->base + slot * 8;
		uint64_t v = w->seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull), got = 0;
		int rc = cowvm_store64(w->t, addr, v);
		if (rc != 0)
			worker_error(w, "iteration %d: store64 returned %lld (%lld)", i, rc, 0);
		rc = cowvm_load64(w->t, addr, &got);
		if (rc != 0 || got != v)
			worker_error(w, "iteration %d: load64 returned %lld, value %#llx", i, rc,
				     (long long)got);
	}
	w->ran = i;
	atomic_fetch_add(w->done, 1);
	return NULL;
}

struct churner {
	cowvm_task_t *t;
	uint64_t x;       /* a region of its own that it keeps unmapping and remapping */
	atomic_int *done;
	int nworkers;
	atomic_int rounds;
	int errors;
	char first[160];
	struct start_gate *start;
};

static void churn_error(struct churner *c, const char *what, long long rc)
{
	if (c->errors++ == 0)
		snprintf(c->first, sizeof c->first, "round %d: %s returned %lld",
			 atomic_load(&c->rounds), what, rc);
}

/* munmap / mmap(MAP_FIXED) / mprotect(R) / mprotect(RW) of its own region: every one of these
 * changes the shared mm and makes the others' TLBs flush. */
static void *churn_worker(void *arg)
{
	struct churner *c = arg;
	if (!gate_wait(c->start))
		return NULL;
	while (atomic_load(c->done) < c->nworkers) {
		uint8_t v = (uint8_t)atomic_load(&c->rounds), r = 0;
		long long rc;
		if ((rc = cowvm_munmap(c->t, c->x, 2 * PG)) != 0)
			churn_error(c, "munmap", rc);
		if ((rc = cowvm_mmap(c->t, c->x, 2 * PG, PROT_RW, MAP_PRIV_ANON | MAP_FIXED)) !=
		    (long long)c->x)
			churn_error(c, "mmap MAP_FIXED", rc);
		if ((rc = cowvm_read(c->t, c->x, &r, 1)) != 0 || r != 0)
			churn_error(c, "read of the new mapping (or it was not zero)", rc);
		if ((rc = cowvm_write(c->t, c->x + PG, &v, 1)) != 0)
			churn_error(c, "write", rc);
		if ((rc = cowvm_mprotect(c->t, c->x, 2 * PG, PROT_READ)) != 0)
			churn_error(c, "mprotect R", rc);
		if ((rc = cowvm_write(c->t, c->x + PG, &v, 1)) != -EFAULT)
			churn_error(c, "write to the read-only region", rc);
		if ((rc = cowvm_mprotect(c->t, c->x, 2 * PG, PROT_RW)) != 0)
			churn_error(c, "mprotect RW", rc);
		if ((rc = cowvm_read(c->t, c->x + PG, &r, 1)) != 0 || r != v)
			churn_error(c, "read back (or wrong value)", rc);
		atomic_fetch_add(&c->rounds, 1);
	}
	return NULL;
}

/*
 * One process, three tasks on three host threads:
 *   w1, w2: store/load 10^4 times (and on until the churner has done MIN_CHURN rounds) in
 *           their own two pages of one shared region
 *   churn:  munmap/mmap/mprotect of a separate region, forcing TLB shootdowns all along
 */
static void two_threads_keep_their_data_while_a_third_remaps_memory_of_the_same_mm(void **state)
{
	(void)state;
	cowvm_task_t *t1 = tu_spawn();
	cowvm_task_t *t2 = tu_clone_thread(t1);
	cowvm_task_t *t3 = tu_clone_thread(t1);
	uint64_t w = map_anon(t1, 4, PROT_RW);
	uint64_t x = map_anon(t1, 2, PROT_RW);
	struct cowvm_vmstat v0 = vmstat();
	atomic_int done = 0;
	struct start_gate start;
	gate_init(&start);
	struct churner ch = { .t = t3, .x = x, .done = &done, .nworkers = 2, .start = &start };
	atomic_init(&ch.rounds, 0);
	struct worker wk[2] = {
		{ .t = t1, .base = w, .npages = 2, .iters = 10000, .seed = 0x1111, .done = &done,
		  .churn_rounds = &ch.rounds, .start = &start },
		{ .t = t2, .base = w + 2 * PG, .npages = 2, .iters = 10000, .seed = 0x2222,
		  .done = &done, .churn_rounds = &ch.rounds, .start = &start },
	};
	const struct thread_spec th[3] = {
		{ "worker 1", store_load_worker, &wk[0] },
		{ "worker 2", store_load_worker, &wk[1] },
		{ "churn", churn_worker, &ch },
	};

	int which, err = run_threads(th, 3, &start, &which);
	gate_destroy(&start);
	EXPECT_STARTED(err, th, which);

	TU_ASSERT(wk[0].errors == 0, "worker 1: %d errors, first: %s", wk[0].errors, wk[0].first);
	TU_ASSERT(wk[1].errors == 0, "worker 2: %d errors, first: %s", wk[1].errors, wk[1].first);
	TU_ASSERT(ch.errors == 0, "churn: %d errors, first: %s", ch.errors, ch.first);
	TU_ASSERT(atomic_load(&ch.rounds) >= MIN_CHURN || wk[0].ran == MAX_ITERS,
		  "the churning thread ran %d rounds", atomic_load(&ch.rounds));
	CHECK();

	/* every slot holds the value of the last iteration that wrote it, seen from any thread */
	for (int k = 0; k < 2; k++) {
		uint64_t slots = (uint64_t)wk[k].npages * (PG / 8);
		for (uint64_t slot = 0; slot < slots; slot++) {
			uint64_t last = 0;
			int have = 0;
			for (int i = wk[k].ran - 1; i >= 0; i--) {
				if ((uint64_t)i % slots == slot) {
					last = wk[k].seed ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
					have = 1;
					break;
				}
			}
			if (!have)
				continue;
			uint64_t got = 0;
			EQ(cowvm_load64(t3, wk[k].base + slot * 8, &got), 0);
			EQ(got, last);
		}
	}
	EQ(stats(t1).rss_anon, 4 + 1); /* the workers' pages, and the churn region's last page */
	TU_ASSERT(vmstat().tlb_flushes > v0.tlb_flushes, "no TLB flush was counted");
	CHECK();
}

struct cow_worker {
	cowvm_task_t *t;
	uint64_t base;
	int npages, rounds;
	uint8_t mark;
	int errors;
	char first[160];
};

/* Write its mark into every page (the first round breaks COW), then re-check them. */
static void *cow_breaker(void *arg)
{
	struct cow_worker *w = arg;
	for (int r = 0; r < w->rounds; r++) {
		for (int i = 0; i < w->npages; i++) {
			uint8_t v = (uint8_t)(w->mark + r), got = 0;
			uint64_t addr = w->base + (uint64_t)i * PG + (uint64_t)(r % 64);
			int rc = cowvm_write(w->t, addr, &v, 1);
			if (rc == 0)
				rc = cowvm_read(w->t, addr, &got, 1);
			if ((rc != 0 || got != v) && w->errors++ == 0)
				snprintf(w->first, sizeof w->first,
					 "round %d page %d: rc %d, read %#x, wrote %#x", r, i, rc, got,
					 v);
		}
	}
	return NULL;
}

/*
 * Parent and child, on two host threads at once, both write every one of 64 pages they share
 * after fork.  For each page the first writer copies; the second copies too or reuses the
 * original (if the first writer's copy is complete by then): never both reuse.
 */
static void parent_and_child_break_cow_on_the_same_pages_at_the_same_time(void **state)
{
	(void)state;
	const int n = 64, rounds = 50;
	cowvm_task_t *p = tu_spawn();
	uint64_t a = map_anon(p, (uint64_t)n, PROT_RW);
	for (int i = 0; i < n; i++)
		fill_page(p, a + (uint64_t)i * PG, 7);
	cowvm_task_t *c = tu_fork(p);
	struct cowvm_task_stats p0 = stats(p), c0 = stats(c);
	struct cowvm_vmstat v0 = vmstat();

	struct cow_worker wp = { .t = p, .base = a, .npages = n, .rounds = rounds, .mark = 0x10 };
	struct cow_worker wc = { .t = c, .base = a, .npages = n, .rounds = rounds, .mark = 0x80 };
	const struct thread_spec th[2] = {
		{ "parent", cow_breaker, &wp },
		{ "child", cow_breaker, &wc },
	};
	int which, err = run_threads(th, 2, NULL, &which);
	EXPECT_STARTED(err, th, which);
	TU_ASSERT(wp.errors == 0, "parent: %d errors, first: %s", wp.errors, wp.first);
	TU_ASSERT(wc.errors == 0, "child: %d errors, first: %s", wc.errors, wc.first);
	CHECK();

	struct cowvm_vmstat v1 = vmstat();
	uint64_t copies = v1.cow_copies - v0.cow_copies, reuses = v1.pgreuse - v0.pgreuse;
	TU_ASSERT(copies + reuses == 2 * (uint64_t)n && copies >= (uint64_t)n,
		  "%" PRIu64 " copies and %" PRIu64 " reuses for %d pages written by both sides",
		  copies, reuses, n);
	EQ(stats(p).min_flt - p0.min_flt, n);
	EQ(stats(c).min_flt - c0.min_flt, n);
	EQ(stats(p).rss_anon, n);
	EQ(stats(c).rss_anon, n);

	for (int i = 0; i < n; i++) {
		uint64_t x = a + (uint64_t)i * PG;
		NE(pfn_of(p, x), pfn_of(c, x));
		EQ(frame(pfn_of(p, x)).mapcount, 1);
		EQ(frame(pfn_of(c, x)).mapcount, 1);
		for (int r = 0; r < 64; r++) {
			int last = r + ((rounds - 1 - r) / 64) * 64; /* last round that wrote offset r */
			if (last >= rounds)
				continue;
			EQ(read_byte(p, x + (uint64_t)r), (uint8_t)(0x10 + last));
			EQ(read_byte(c, x + (uint64_t)r), (uint8_t)(0x80 + last));
		}
		/* bytes never written keep the pattern, in both */
		EQ(read_byte(p, x + 100), pattern_byte(7, 100));
		EQ(read_byte(c, x + 100), pattern_byte(7, 100));
	}
	CHECK();
}

/*
 * Two threads of one process race to first-touch the same 64 pages, each writing its own byte.
 * Whoever loses a race finds the PTE already set (do_anonymous_page re-checks under the PTL) and
 * must drop its page: RSS ends at exactly 64 pages and no frame leaks (the fixture checks).
 */
static void two_threads_racing_to_first_touch_the_same_pages_map_each_page_once(void **state)
{
	(void)state;
	const int n = 64;
	cowvm_task_t *t1 = tu_spawn();
	cowvm_task_t *t2 = tu_clone_thread(t1);
	uint64_t a = map_anon(t1, (uint64_t)n, PROT_RW);
	struct cowvm_task_stats s1 = stats(t1), s2 = stats(t2);
	struct cowvm_vmstat v0 = vmstat();

	struct cow_worker w1 = { .t = t1, .base = a, .npages = n, .rounds = 1, .mark = 0x11 };
	struct cow_worker w2 = { .t = t2, .base = a + 2048, .npages = n, .rounds = 1, .mark = 0x22 };
	const struct thread_spec th[2] = {
		{ "thread 1", cow_breaker, &w1 },
		{ "thread 2", cow_breaker, &w2 },
	};
	int which, err = run_threads(th, 2, NULL, &which);
	EXPECT_STARTED(err, th, which);
	TU_ASSERT(w1.errors == 0, "thread 1: %d errors, first: %s", w1.errors, w1.first);
	TU_ASSERT(w2.errors == 0, "thread 2: %d errors, first: %s", w2.errors, w2.first);
	CHECK();

	EQ(stats(t1).rss_anon, n);
	EQ(vmstat().nr_anon_pages - v0.nr_anon_pages, n);
	uint64_t faults = (stats(t1).min_flt - s1.min_flt) + (stats(t2).min_flt - s2.min_flt);
	TU_ASSERT(faults >= (uint64_t)n && faults <= 2 * (uint64_t)n,
		  "%" PRIu64 " faults for %d pages touched by two threads", faults, n);
	for (int i = 0; i < n; i++) {
		uint64_t x = a + (uint64_t)i * PG;
		EQ(read_byte(t1, x), 0x11);
		EQ(read_byte(t2, x + 2048), 0x22);
		EQ(pm_exclusive(t1, x), 1);
		EQ(frame(pfn_of(t1, x)).mapcount, 1);
	}
	CHECK();
}


/* ---- stack growth and mlock racing with faults ---------------------------------------------- */

struct stack_toucher {
	cowvm_task_t *t;
	uint64_t top;     /* the stack's first page; this thread writes below it */
	int first, step;  /* pages first, first + step, ... below top */
	int n;
	int errors;
};

static void *stack_touch_worker(void *arg)
{
	struct stack_toucher *w = arg;
	for (int i = 0; i < w->n; i++) {
		uint64_t addr = w->top - (uint64_t)(w->first + i * w->step + 1) * PG;
		uint8_t v = (uint8_t)(w->first + i * w->step);
		if (cowvm_write(w->t, addr, &v, 1) != 0)
			w->errors++;
	}
	return NULL;
}

struct locker {
	cowvm_task_t *t;
	uint64_t addr;
	int rounds, errors;
};

static void *mlock_churn_worker(void *arg)
{
	struct locker *l = arg;
	for (int i = 0; i < l->rounds; i++) {
		if (cowvm_mlock(l->t, l->addr, 8 * PG) != 0 || cowvm_munlock(l->t, l->addr, 4 * PG) != 0 ||
		    cowvm_madvise(l->t, l->addr, 8 * PG, MADV_POPULATE_WRITE) != 0 ||
		    cowvm_munlockall(l->t) != 0)
			l->errors++;
	}
	return NULL;
}

/*
 * Two threads grow one MAP_GROWSDOWN stack at the same time, interleaving their pages (each
 * fault below the stack takes mmap_lock for writing to expand it, then faults under the read
 * lock), while a third locks, unlocks and populates another region: every byte lands, the stack
 * ends where the lowest touch was, and every invariant holds.
 */
static void threads_growing_one_stack_and_mlocking_race_without_losing_a_byte(void **state)
{
	(void)state;
	cowvm_task_t *t1 = tu_spawn();
	cowvm_task_t *t2 = tu_clone_thread(t1);
	cowvm_task_t *t3 = tu_clone_thread(t1);
	uint64_t top = TU_BASE + 0x10000000;
	EQ(cowvm_mmap(t1, top, PG, PROT_RW, MAP_PRIV_ANON | MAP_GROWSDOWN | MAP_FIXED), top);
	uint64_t region = map_anon(t1, 8, PROT_RW);
	enum { N = 300 };
	struct stack_toucher a = { t1, top, 0, 2, N, 0 }, b = { t2, top, 1, 2, N, 0 };
	struct locker l = { t3, region, 200, 0 };
	const struct thread_spec spec[] = {
		{ "stack toucher 1", stack_touch_worker, &a },
		{ "stack toucher 2", stack_touch_worker, &b },
		{ "mlock churner", mlock_churn_worker, &l },
	};
	int which;
	int err = run_threads(spec, 3, NULL, &which);
	EXPECT_STARTED(err, spec, which);
	EQ(a.errors, 0);
	EQ(b.errors, 0);
	EQ(l.errors, 0);
	EQ(vma_at(t1, top).start, top - 2 * N * PG);
	for (int i = 0; i < 2 * N; i++)
		EQ(read_byte(t1, top - (uint64_t)(i + 1) * PG), (uint8_t)i);
	EQ(stats(t1).locked_vm, 0);
	CHECK();
}

#define THREADS_TEST(name) cmocka_unit_test_setup_teardown(name, threads_setup, threads_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		THREADS_TEST(clone_thread_shares_the_address_space_and_counts_faults_per_thread),
		THREADS_TEST(a_change_made_through_one_thread_is_seen_through_the_other_threads_tlb),
		THREADS_TEST(fork_by_one_thread_write_protects_the_page_for_the_other_thread_too),
		THREADS_TEST(a_cow_break_by_one_thread_is_seen_by_the_other_thread),
		THREADS_TEST(two_threads_keep_their_data_while_a_third_remaps_memory_of_the_same_mm),
		THREADS_TEST(parent_and_child_break_cow_on_the_same_pages_at_the_same_time),
		THREADS_TEST(two_threads_racing_to_first_touch_the_same_pages_map_each_page_once),
		THREADS_TEST(threads_growing_one_stack_and_mlocking_race_without_losing_a_byte),
	};
	return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
