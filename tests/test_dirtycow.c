/*
 * test_dirtycow.c - the two famous COW bugs as tests:
 *
 *   (a) Dirty COW (CVE-2016-5195) as a race: forced writes (ptrace, /proc/pid/mem: FOLL_FORCE)
 *       into a read-only private page that another process shares, racing MADV_DONTNEED.
 *       In 2016 the forced write's GUP dropped FOLL_WRITE after breaking COW; when
 *       MADV_DONTNEED zapped the new copy before the retry, the retry followed the PTE back to
 *       the shared original - read-only, but FOLL_WRITE was gone - and wrote into it.  The
 *       property: a forced write changes only the writer's private copy; no other process ever
 *       sees it.
 *
 *   (b) "COW can break either way" (CVE-2020-29374) as a property test: across random orders of
 *       fork, GET references (vmsplice), munmap and writes in the processes of a fork tree, a
 *       reference never shows data that a process other than its taker wrote after the
 *       reference was taken.
 *
 * This is a cmocka suite (build with -DTU_CMOCKA, link -lcmocka), like test_threads.c, so that
 * the race also runs under ThreadSanitizer (Criterion 2.4 cannot start there).  cmocka runs the
 * tests one after another in this process, each with the fixture of testutil.h and a time limit
 * of 120 s.  Worker threads never assert: they count errors and keep the first message, which
 * the main thread asserts on after joining them.
 *
 * Sizes (environment variables override them):
 *   COWVM_DIRTYCOW_ROUNDS   forced writes in the race: 10^6; 10^5 under TSan, 2 * 10^5
 *                           under ASan
 *   COWVM_COW_PROP_SEQS     random sequences in (b): 3000; 1000 under TSan
 *   COWVM_COW_PROP_SEED     the first sequence's seed (each next one adds 1)
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define TEST_TIMEOUT 120 /* seconds, per test */

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#if defined(UNDER_TSAN)
#define DIRTYCOW_ROUNDS 100000L
#define PROP_SEQUENCES 1000L
#elif defined(UNDER_ASAN)
#define DIRTYCOW_ROUNDS 200000L
#define PROP_SEQUENCES 3000L
#else
#define DIRTYCOW_ROUNDS 1000000L
#define PROP_SEQUENCES 3000L
#endif
#define PROP_SEED 202029374L

static long env_long(const char *name, long dflt)
{
	const char *s = getenv(name);
	char *end;
	if (!s || !*s)
		return dflt;
	long v = strtol(s, &end, 0);
	return *end || v <= 0 ? dflt : v;
}

static int dirtycow_setup(void **state)
{
	alarm(TEST_TIMEOUT);
	return tu_cm_setup(state);
}

static int dirtycow_teardown(void **state)
{
	alarm(0);
	return tu_cm_teardown(state);
}

struct outcome {
	int errors;
	char first[200];
};

static void failed_at(struct outcome *o, const char *fmt, long long a, long long b)
{
	if (o->errors++ == 0)
		snprintf(o->first, sizeof o->first, fmt, a, b);
}

/* ---- (a) Dirty COW ---------------------------------------------------------------------------- */

/*
 * P maps a private page read-write, fills it, makes it read-only and forks Q:
 *
 *   P mem --ro--> X (the pattern) <--ro-- Q mem          VMA: r--p, may write (VM_MAYWRITE)
 *
 * Q has two threads, as the original exploit's process had: one is the target of the forced
 * writes (the exploit wrote /proc/self/mem), the other calls MADV_DONTNEED.  (A task is one CPU
 * of its process and runs on one host thread at a time, so the two host threads need two tasks
 * of Q.)  Two host threads then race:
 *
 *   writer:   rounds times  cowvm_access_remote(Q, mem, page of round r, 4096, write), and
 *             after half of them, at random, sched_yield
 *   dontneed: until the writer is done  cowvm_madvise(Q', mem, 4096, MADV_DONTNEED) whenever
 *             Q's page is present (it yields when it is not)
 *
 * A forced write lands in Q's own exclusive copy (a COW copy of X the first time, a fresh page
 * after a zap), never in X.  Afterwards:
 *   - P reads the pattern, and still maps X;
 *   - Q reads zeros (the last zap came after the last write) or the last round's page (a write
 *     that lost its page to a zap went into the orphaned page, freed afterwards);
 *   - every write returned 4096 bytes, every madvise 0; the checker is clean; no frame leaked.
 *
 * On a host where the two threads really run at once, the zap follows each new page at once:
 * right into the window between the writer's fault and its retry.  On a host with one CPU's
 * worth of time (the development sandbox: two threads of busy work take twice as long as one)
 * they interleave only when the writer is preempted, at a random point of its call.  The test
 * prints how many of the forced writes faulted: each found its page gone.
 */
struct race {
	cowvm_task_t *target, *advisor;
	uint64_t mem;
	long rounds;
	atomic_int go, writer_done;
	long madvises;
	int target_pid;
	uint64_t rng;     /* the tracer's: it runs on the writer's thread only */
	long yields;      /* the tracer's yields in the window */
	struct outcome writer, dontneed;
};

/*
 * The window.  Dirty COW lives between the forced write's fault (which breaks COW) and GUP's
 * retry of the page-table walk: a zap there must make the retry fault again as a write, never
 * follow whatever the PTE maps next.  The fault tracer runs exactly there (at the end of
 * handle_mm_fault, with only mmap_lock held for reading), so it yields the CPU on every other
 * forced-write fault of Q, at random: on a host with one CPU's worth of time the zapper then
 * runs inside the window; on a host with more it costs a system call.  (Every fault would be a
 * livelock, as in Linux: fault, zap, fault, zap ...)
 */
static void yield_in_the_window(void *arg, const struct cowvm_fault_event *ev)
{
	struct race *r = arg;
	if (ev->pid != r->target_pid || !ev->write || ev->user)
		return;
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	if (r->rng & 1) {
		r->yields++;
		sched_yield();
	}
}

static void forced_page(uint8_t *page, long round)
{
	memset(page, 0x66, PG);
	memcpy(page, &round, sizeof round);
}

static void *forced_writer(void *arg)
{
	struct race *r = arg;
	uint8_t page[COWVM_PAGE_SIZE];
	while (!atomic_load(&r->go))
		sched_yield();
	uint64_t rng = 0xD1C0ull;
	for (long i = 0; i < r->rounds; i++) {
		forced_page(page, i);
		int64_t n = cowvm_access_remote(r->target, r->mem, page, PG, 1);
		if (n != (int64_t)PG)
			failed_at(&r->writer, "round %lld: the forced write returned %lld", i, n);
		/* After half the rounds, at random, let the zapper in between two writes; after the
		 * others the next write finds Q's exclusive copy and writes through it (FOLL_FORCE
		 * follows a read-only PTE of an exclusive anon page without a fault). */
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		if (rng & 1)
			sched_yield();
	}
	atomic_store(&r->writer_done, 1);
	return NULL;
}

static void *dontneed_loop(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&r->go))
		sched_yield();
	while (!atomic_load(&r->writer_done)) {
		/* Nothing to zap: let the writer run (on a host with one CPU's worth of time this
		 * makes every preemption of the writer a zap at a random point inside its call). */
		if (!(cowvm_pagemap(r->advisor, r->mem) & COWVM_PM_PRESENT)) {
			sched_yield();
			continue;
		}
		int rc = cowvm_madvise(r->advisor, r->mem, PG, MADV_DONTNEED);
		if (rc)
			failed_at(&r->dontneed, "madvise %lld returned %lld", r->madvises, rc);
		r->madvises++;
	}
	return NULL;
}

static void dirty_cow_forced_writes_racing_dontneed_never_reach_the_shared_page(void **state)
{
	(void)state;
	cowvm_task_t *p = tu_spawn();
	uint64_t mem = map_anon(p, 1, PROT_RW);
	fill_page(p, mem, 0x5A);
	EQ(cowvm_mprotect(p, mem, PG, PROT_READ), 0);
	cowvm_task_t *q = tu_fork(p);
	cowvm_task_t *q2 = tu_clone_thread(q);
	uint64_t x = pfn_of(p, mem);
	EQ(pfn_of(q, mem), x);
	CHECK();

	/* First, once in order, what each thread does: the forced write copies X for Q only,
	 * the zap drops Q's copy, the next forced write gets Q a fresh page. */
	uint8_t page[COWVM_PAGE_SIZE], got[COWVM_PAGE_SIZE];
	forced_page(page, 7);
	EQ(cowvm_access_remote(q, mem, page, PG, 1), (int64_t)PG);
	CHECK();
	NE(pfn_of(q, mem), x);
	EQ(pte_writable(q, mem), 0); /* still a read-only mapping */
	EQ(frame(pfn_of(q, mem)).anon_exclusive, 1);
	EQ(cowvm_madvise(q2, mem, PG, MADV_DONTNEED), 0);
	CHECK();
	EQ(pm_present(q, mem), 0);
	EQ(cowvm_access_remote(q, mem, page, PG, 1), (int64_t)PG);
	CHECK();
	EQ(cowvm_read(q, mem, got, PG), 0);
	EQ(memcmp(got, page, PG), 0);
	expect_page(p, mem, 0x5A);

	/* Then the race. */
	long rounds = env_long("COWVM_DIRTYCOW_ROUNDS", DIRTYCOW_ROUNDS);
	struct race r = { .target = q, .advisor = q2, .mem = mem, .rounds = rounds,
			  .target_pid = cowvm_task_pid(q), .rng = 0x2016516ull };
	uint64_t faults0 = stats(q).min_flt;
	struct timespec t0, t1;
	pthread_t writer, dontneed;
	int err = pthread_create(&writer, NULL, forced_writer, &r);
	TU_ASSERT(err == 0, "pthread_create: %s", strerror(err));
	err = pthread_create(&dontneed, NULL, dontneed_loop, &r);
	if (err) {
		r.rounds = 0; /* let the writer go home at once */
		atomic_store(&r.go, 1);
		pthread_join(writer, NULL);
		TU_ASSERT(0, "pthread_create: %s", strerror(err));
	}
	cowvm_set_tracer(tu_vm, yield_in_the_window, &r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	atomic_store(&r.go, 1);
	pthread_join(writer, NULL);
	pthread_join(dontneed, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cowvm_set_tracer(tu_vm, NULL, NULL);
	TU_ASSERT(r.writer.errors == 0, "writer: %d errors, first: %s", r.writer.errors, r.writer.first);
	TU_ASSERT(r.dontneed.errors == 0, "dontneed: %d errors, first: %s", r.dontneed.errors,
		  r.dontneed.first);
	CHECK();

	/* P's page is unchanged, and still X */
	expect_page(p, mem, 0x5A);
	EQ(pfn_of(p, mem), x);
	EQ(frame(x).mapcount, 1);
	EQ(frame(x).refcount, 1);

	/* Q reads zeros or the last round's page */
	EQ(cowvm_read(q, mem, got, PG), 0);
	static const uint8_t zeros[COWVM_PAGE_SIZE];
	forced_page(page, rounds - 1);
	TU_ASSERT(memcmp(got, zeros, PG) == 0 || memcmp(got, page, PG) == 0,
		  "Q reads neither zeros nor the last forced write (first bytes %02x %02x, byte 100 "
		  "%02x)", got[0], got[1], got[100]);
	NE(pfn_of(q, mem), x);
	CHECK();

	/* Nor did any forced write land in the zero page (where the 2016 bug sends it for
	 * anonymous memory: after the zap, its retry without FOLL_WRITE read-faults the zero page
	 * in and writes there).  The checker does not look at the zero page's bytes: a fresh
	 * read-only mapping of P's must read zeros. */
	uint64_t fresh = map_anon(p, 1, PROT_READ);
	EQ(read_byte(p, fresh), 0);
	EQ(pfn_of(p, fresh), zero_pfn());
	expect_zeros(p, fresh, PG);
	EQ(cowvm_munmap(p, fresh, PG), 0);

	uint64_t faults = stats(q).min_flt - faults0;
	print_message("[  INFO    ] %ld forced writes, %ld MADV_DONTNEEDs in %.2f s; %llu faults "
		      "of the writer (each found its page gone), %ld yields in the window\n", rounds,
		      r.madvises, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		      (unsigned long long)faults, r.yields);
}

/* ---- (b) CVE-2020-29374: references never see the other side's writes ---------------------- */

/*
 * One page, mapped at the same address in every process of a fork tree (at most MAX_PROCS at
 * once):
 *
 *   mem: [ 1 page, RW, private ]    words 0 and 511 hold the tag of the last store
 *
 * A sequence starts with one process and runs SEQ_OPS random operations, each chosen among
 * those that make sense at that point:
 *
 *   fork X          a new process Y, a COW copy of X's address space
 *   get X           a GET reference (vmsplice) to X's page: cowvm_pin_user_pages(FOLL_GET)
 *   write X         X stores a new tag (writer, mapping generation, sequence number)
 *   munmap X        X unmaps the page
 *   remap X         X maps a fresh page there again (a new generation)
 *   exit X          X exits (never the last process)
 *   drop R          a reference is released
 *
 * After every operation, each reference R (taken by process X, in X's mapping generation g, at
 * time t) must read through the frame it holds:
 *   - the same tag in words 0 and 511 (no torn or foreign page), and
 *   - either what X read at t, or a tag X itself stored later in generation g (a plain
 *     reference is not coherent: X's later writes may or may not show, through reuse).
 * Never a tag stored by another process after t: that is CVE-2020-29374 (COW broken the wrong
 * way).  After the sequence every reference is dropped and every process exits; the checker
 * must be clean and every frame free again.
 */
#define MAX_PROCS 4
#define MAX_REFS 6
#define SEQ_OPS 24
#define LOG_LEN 600

struct proc {
	cowvm_task_t *t;
	int id;          /* unique within the sequence */
	int generation;  /* bumped by munmap and remap */
	bool mapped;
};

struct ref {
	cowvm_pin_t *pin;
	int owner, generation; /* the taker's id and mapping generation */
	uint64_t initial;      /* what the taker read when it took it */
	uint32_t taken;        /* the sequence number then */
};

struct sequence {
	uint64_t mem, rng;
	uint32_t seq;    /* tags' sequence numbers */
	int next_id;
	struct proc procs[MAX_PROCS];
	int nprocs;
	struct ref refs[MAX_REFS];
	int nrefs;
	char log[LOG_LEN];
	size_t loglen;
};

static uint64_t rnd(struct sequence *s)
{
	/* xorshift64* */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545F4914F6CDD1Dull;
}

static void logop(struct sequence *s, const char *what, int id)
{
	if (s->loglen < LOG_LEN - 24)
		s->loglen += (size_t)snprintf(s->log + s->loglen, LOG_LEN - s->loglen, "%s%s %d",
					      s->loglen ? ", " : "", what, id);
}

static uint64_t make_tag(int id, int generation, uint32_t seq)
{
	return ((uint64_t)(uint16_t)id << 48) | ((uint64_t)(uint16_t)generation << 32) | seq;
}

static void read_tags(const char *file, int line, struct sequence *s, cowvm_task_t *t,
		      cowvm_pin_t *pin, uint64_t *first, uint64_t *last)
{
	int rc;
	if (pin) {
		rc = cowvm_pin_read(pin, 0, first, 8);
		if (!rc)
			rc = cowvm_pin_read(pin, PG - 8, last, 8);
	} else {
		rc = cowvm_load64(t, s->mem, first);
		if (!rc)
			rc = cowvm_load64(t, s->mem + PG - 8, last);
	}
	TU_ASSERT(rc == 0, "%s:%d: reading the tags returned %d after: %s", file, line, rc, s->log);
}

/* The property, for every reference. */
static void check_refs(struct sequence *s, uint64_t seed)
{
	for (int i = 0; i < s->nrefs; i++) {
		struct ref *r = &s->refs[i];
		uint64_t first, last;
		read_tags(__FILE__, __LINE__, s, NULL, r->pin, &first, &last);
		TU_ASSERT(first == last, "seed %" PRIu64 ": reference %d holds a torn page (%#" PRIx64
			  " / %#" PRIx64 ") after: %s", seed, i, first, last, s->log);
		if (first == r->initial)
			continue;
		int writer = (int)(first >> 48), generation = (int)((first >> 32) & 0xffff);
		uint32_t when = (uint32_t)first;
		TU_ASSERT(writer == r->owner && generation == r->generation && when > r->taken,
			  "seed %" PRIu64 ": the reference %d taken by process %d (at %u, holding "
			  "%#" PRIx64 ") shows %#" PRIx64 ", stored by process %d at %u, after: %s",
			  seed, i, r->owner, r->taken, r->initial, first, writer, when, s->log);
	}
}

static void run_sequence(uint64_t seed, uint64_t free_before)
{
	struct sequence s = { .rng = seed * 0x9E3779B97F4A7C15ull + 1 };
	s.procs[0].t = tu_spawn();
	s.procs[0].id = s.next_id++;
	s.procs[0].mapped = true;
	s.nprocs = 1;
	s.mem = map_anon(s.procs[0].t, 1, PROT_RW);
	EQ(cowvm_store64(s.procs[0].t, s.mem, make_tag(0, 0, ++s.seq)), 0);
	EQ(cowvm_store64(s.procs[0].t, s.mem + PG - 8, make_tag(0, 0, s.seq)), 0);

	for (int step = 0; step < SEQ_OPS; step++) {
		struct proc *x = &s.procs[rnd(&s) % (uint64_t)s.nprocs];
		switch (rnd(&s) % 10) {
		case 0: case 1: /* fork */
			if (s.nprocs == MAX_PROCS)
				break;
			s.procs[s.nprocs] = *x;
			s.procs[s.nprocs].t = tu_fork(x->t);
			s.procs[s.nprocs].id = s.next_id++;
			logop(&s, "fork", x->id);
			s.nprocs++;
			break;
		case 2: case 3: { /* get */
			if (!x->mapped || s.nrefs == MAX_REFS)
				break;
			struct ref *r = &s.refs[s.nrefs];
			uint64_t last;
			read_tags(__FILE__, __LINE__, &s, x->t, NULL, &r->initial, &last);
			r->pin = cowvm_pin_user_pages(x->t, s.mem, 1, COWVM_FOLL_GET);
			TU_ASSERT(r->pin, "seed %" PRIu64 ": GET failed: %s", seed, strerror(errno));
			r->owner = x->id;
			r->generation = x->generation;
			r->taken = s.seq;
			s.nrefs++;
			logop(&s, "get", x->id);
			break;
		}
		case 4: case 5: case 6: /* write */
			if (!x->mapped)
				break;
			s.seq++;
			EQ(cowvm_store64(x->t, s.mem, make_tag(x->id, x->generation, s.seq)), 0);
			EQ(cowvm_store64(x->t, s.mem + PG - 8, make_tag(x->id, x->generation, s.seq)), 0);
			logop(&s, "write", x->id);
			break;
		case 7: /* munmap or remap */
			if (x->mapped) {
				EQ(cowvm_munmap(x->t, s.mem, PG), 0);
				logop(&s, "munmap", x->id);
			} else {
				map_fixed(x->t, s.mem, 1, PROT_RW, MAP_PRIV_ANON);
				logop(&s, "remap", x->id);
			}
			x->mapped = !x->mapped;
			x->generation++;
			break;
		case 8: /* exit */
			if (s.nprocs == 1)
				break;
			logop(&s, "exit", x->id);
			tu_exit(x->t);
			*x = s.procs[--s.nprocs];
			break;
		case 9: /* drop a reference */
			if (!s.nrefs)
				break;
			int i = (int)(rnd(&s) % (uint64_t)s.nrefs);
			logop(&s, "drop", s.refs[i].owner);
			cowvm_unpin(s.refs[i].pin);
			s.refs[i] = s.refs[--s.nrefs];
			break;
		}
		check_refs(&s, seed);
	}
	CHECK();
	while (s.nrefs)
		cowvm_unpin(s.refs[--s.nrefs].pin);
	while (s.nprocs)
		tu_exit(s.procs[--s.nprocs].t);
	CHECK();
	TU_ASSERT(vmstat().nr_free_pages == free_before,
		  "seed %" PRIu64 ": %" PRIu64 " frames free after the sequence, %" PRIu64
		  " before: %s", seed, vmstat().nr_free_pages, free_before, s.log);
}

static void a_reference_never_shows_writes_by_the_other_side_of_a_fork(void **state)
{
	(void)state;
	long seqs = env_long("COWVM_COW_PROP_SEQS", PROP_SEQUENCES);
	long seed0 = env_long("COWVM_COW_PROP_SEED", PROP_SEED);
	uint64_t free_before = vmstat().nr_free_pages;
	struct cowvm_vmstat v0 = vmstat();
	for (long i = 0; i < seqs; i++)
		run_sequence((uint64_t)(seed0 + i), free_before);
	/* the sequences did break COW both ways: copies and reuses both happened */
	struct cowvm_vmstat v1 = vmstat();
	TU_ASSERT(v1.cow_copies > v0.cow_copies && v1.pgreuse > v0.pgreuse,
		  "%" PRIu64 " copies and %" PRIu64 " reuses in %ld sequences",
		  v1.cow_copies - v0.cow_copies, v1.pgreuse - v0.pgreuse, seqs);
}

/*
 * The property's own sanity: the exact story of CVE-2020-29374 in the order above, so that a
 * broken generator cannot hide that the interesting case is never reached.
 *
 *   P writes A; fork C; C takes a reference; C unmaps; P writes B.
 *   The reference must show A (P's write copies: the page's refcount is 2, not 1).
 */
static void the_cve_2020_29374_order_is_caught_by_the_property(void **state)
{
	(void)state;
	cowvm_task_t *p = tu_spawn();
	uint64_t mem = map_anon(p, 1, PROT_RW);
	EQ(cowvm_store64(p, mem, 0xA), 0);
	cowvm_task_t *c = tu_fork(p);
	cowvm_pin_t *ref = cowvm_pin_user_pages(c, mem, 1, COWVM_FOLL_GET);
	TU_ASSERT(ref, "GET failed: %s", strerror(errno));
	EQ(cowvm_munmap(c, mem, PG), 0);
	CHECK();
	EQ(cowvm_store64(p, mem, 0xB), 0);
	CHECK();
	uint64_t seen = 0;
	EQ(cowvm_pin_read(ref, 0, &seen, 8), 0);
	EQ(seen, 0xA);
	cowvm_unpin(ref);
	CHECK();
}

#define DIRTYCOW_TEST(name) cmocka_unit_test_setup_teardown(name, dirtycow_setup, dirtycow_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DIRTYCOW_TEST(dirty_cow_forced_writes_racing_dontneed_never_reach_the_shared_page),
		DIRTYCOW_TEST(the_cve_2020_29374_order_is_caught_by_the_property),
		DIRTYCOW_TEST(a_reference_never_shows_writes_by_the_other_side_of_a_fork),
	};
	return cmocka_run_group_tests_name("dirtycow", tests, NULL, NULL);
}
