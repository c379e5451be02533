/*
 * main.c - cowvm-bench: the host kernel and cowvm side by side, in one run.
 *
 *   cowvm-bench [--quick] [--reps N] [--pages N] [--cpu N] [--json PATH]
 *   cowvm-bench --profile CASE [--quick] [--reps N] [--pages N]
 *
 * --profile runs only the cowvm side of one case (first_touch, zero_read, cow_break, reuse,
 * fork, munmap, exit, tlb_hit, tlb_miss, dput_copy, dput_copy_bytes, snap, merge_small,
 * merge_large), repeatedly, for perf or callgrind.
 *
 * Determinator's dput and dget (COPY, SNAP, MERGE) are measured on cowvm only: Linux has no
 * such calls, so their rows have no host figure ('-').  The MERGE rows are issue 5's property:
 * a large range with one changed page merges in about the time of a small one, because the
 * unchanged page tables are skipped whole (cowvm_merge_report's tables_skipped says so).
 *
 * The whole program is pinned to one CPU.  A worker process forked first measures the host
 * kernel (host.c); this process then creates one cowvm machine (NO_POISON | PREFAULT, so no
 * debug fill and no host page fault pollutes its figures) and measures the same cases on it
 * (cowvm_side.c).  Each repetition runs every case once, each as host, then cowvm, then the
 * floor, so both sides see the same conditions; the table shows medians.  Every count the cases return
 * (faults, COW copies, reuses, TLB misses) is checked against what the case meant to cause.
 * Results also go to a JSON file (build/bench.json by default) to compare across commits.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "report.h"


void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "cowvm-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- configuration ----------------------------------------------------------------------- */

static void config_init(struct config *c, bool quick)
{
	c->quick = quick;
	if (quick) {
		c->reps = 3;
		c->pages = 16384; /* 64 MiB: still twice the last-level cache */
		c->fork_bytes[0] = 64 * MIB;
		c->nr_fork_sizes = 1;
		c->tlb_hit_accesses = 20000000;
		c->tlb_miss_passes = 4;
		c->phys_bytes = 1536 * MIB; /* the MERGE case's 1 GiB parent */
	} else {
		c->reps = 7;
		c->pages = 65536;
		c->fork_bytes[0] = 64 * MIB;
		c->fork_bytes[1] = 256 * MIB;
		c->fork_bytes[2] = 1024 * MIB;
		c->nr_fork_sizes = 3;
		c->tlb_hit_accesses = 100000000;
		c->tlb_miss_passes = 16;
		c->phys_bytes = 2048 * MIB;
	}
	c->tlb_miss_pages = 16384; /* 64 times the TLB's 256 entries */
	c->merge_pages = 1024 * MIB / BENCH_PAGE;
	c->merge_small_pages = 512; /* one PTE table, 2 MiB */
	c->merge_iters = 3;
	c->struct_page_frames = 1ull << 20; /* a 4 GiB machine */
}

/* ---- metrics ------------------------------------------------------------------------------ */

struct metric metrics[NR_METRICS];
double floor_samples[3][MAX_REPS];
int nfloor[3];

static void metric_def(enum metric_id id, const char *key, const char *label, const char *unit)
{
	struct metric *m = &metrics[id];
	snprintf(m->key, sizeof(m->key), "%s", key);
	snprintf(m->label, sizeof(m->label), "%s", label);
	m->unit = unit;
}

static void metrics_init(const struct config *c)
{
	metric_def(M_FIRST_TOUCH, "first_touch", "first-touch write fault", "ns/page");
	metrics[M_FIRST_TOUCH].floor = FLOOR_MEMSET;
	metrics[M_FIRST_TOUCH].max_host_ratio = 0.2;
	metrics[M_FIRST_TOUCH].max_floor_ratio = 1.5;
	metric_def(M_ZERO_READ, "zero_page_read", "read fault on fresh memory (zero page)", "ns/page");
	metrics[M_ZERO_READ].max_host_ratio = 0.1;
	metric_def(M_WRITE_AFTER_READ, "write_after_read", "write after that read", "ns/page");
	metrics[M_WRITE_AFTER_READ].floor = FLOOR_MEMSET;
	metric_def(M_COW_BREAK, "cow_break", "COW break after fork (parent writes, child alive)",
		   "ns/page");
	metrics[M_COW_BREAK].floor = FLOOR_MEMCPY;
	metrics[M_COW_BREAK].max_host_ratio = 0.2;
	metrics[M_COW_BREAK].max_floor_ratio = 1.5;
	metric_def(M_REUSE, "reuse", "write fault, other side exited (reuse)", "ns/page");
	metrics[M_REUSE].max_host_ratio = 0.1;
	metric_def(M_FORK_EMPTY, "fork_empty_us", "fork of an empty process (subtracted below)", "us");
	for (int i = 0; i < c->nr_fork_sizes; i++) {
		char key[48], label[64];
		unsigned long long mib = c->fork_bytes[i] / MIB;
		snprintf(key, sizeof(key), "fork_%llumib_per_page", mib);
		snprintf(label, sizeof(label), "fork, %llu MiB touched, per mapped page", mib);
		metric_def(M_FORK_PAGE + i, key, label, "ns/page");
		metrics[M_FORK_PAGE + i].max_host_ratio = 0.5;
		snprintf(key, sizeof(key), "fork_%llumib_total_us", mib);
		snprintf(label, sizeof(label), "fork, %llu MiB touched, total", mib);
		metric_def(M_FORK_TOTAL + i, key, label, "us");
	}
	metric_def(M_MUNMAP, "munmap", "munmap of touched memory", "ns/page");
	metric_def(M_EXIT_EMPTY, "exit_empty_us", "exit of an empty process (subtracted below)", "us");
	metric_def(M_EXIT, "exit", "exit of touched memory", "ns/page");
	metric_def(M_TLB_HIT_LOAD, "tlb_hit_load", "TLB-hit load, 8 bytes (cowvm_load64)", "ns/access");
	metrics[M_TLB_HIT_LOAD].max_cowvm = 2.0;
	metric_def(M_TLB_HIT_STORE, "tlb_hit_store", "TLB-hit store, 8 bytes (cowvm_store64)",
		   "ns/access");
	metrics[M_TLB_HIT_STORE].max_cowvm = 2.0;
	char label[64];
	snprintf(label, sizeof(label), "TLB-miss load chain, page stride, %llu pages",
		 (unsigned long long)c->tlb_miss_pages);
	metric_def(M_TLB_MISS, "tlb_miss_load", label, "ns/access");
	metric_def(M_STRUCT_PAGE, "struct_page_bytes", "struct page per frame", "bytes");
	metrics[M_STRUCT_PAGE].max_cowvm = 64.0;
	metrics[M_STRUCT_PAGE].host_note = "sizeof(struct page) on x86-64 Linux, not measurable";
	metric_def(M_PAGETABLE, "pagetable_bytes_per_page", "page-table bytes per mapped page", "bytes");

	/* dput/dget: cowvm only */
	unsigned long long mib = c->pages * BENCH_PAGE / MIB;
	snprintf(label, sizeof(label), "dput COPY %llu MiB, page-multiple delta (COW)", mib);
	metric_def(M_DPUT_COW, "dput_copy_cow", label, "ns/page");
	snprintf(label, sizeof(label), "dput COPY %llu MiB, page-multiple delta, total", mib);
	metric_def(M_DPUT_COW_TOTAL, "dput_copy_cow_total_us", label, "us");
	snprintf(label, sizeof(label), "dput COPY %llu MiB, delta 8 bytes (every byte)", mib);
	metric_def(M_DPUT_BYTES, "dput_copy_bytes", label, "ns/page");
	metrics[M_DPUT_BYTES].floor = FLOOR_MEMCPY;
	snprintf(label, sizeof(label), "dput COPY %llu MiB, delta 8 bytes, total", mib);
	metric_def(M_DPUT_BYTES_TOTAL, "dput_copy_bytes_total_us", label, "us");
	snprintf(label, sizeof(label), "dput SNAP of %llu MiB touched", mib);
	metric_def(M_SNAP, "dput_snap", label, "ns/page");
	char key[48];
	unsigned small = (unsigned)(c->merge_small_pages * BENCH_PAGE / MIB),
		 large = (unsigned)(c->merge_pages * BENCH_PAGE / MIB);
	snprintf(key, sizeof(key), "dget_merge_%umib_one_page_us", small);
	snprintf(label, sizeof(label), "dget MERGE of %u MiB, one page changed", small);
	metric_def(M_MERGE_SMALL, key, label, "us");
	snprintf(key, sizeof(key), "dget_merge_%umib_one_page_us", large);
	snprintf(label, sizeof(label), "dget MERGE of %u MiB, the same page changed", large);
	metric_def(M_MERGE_LARGE, key, label, "us");
	snprintf(key, sizeof(key), "dget_merge_%umib_over_%umib", large, small);
	snprintf(label, sizeof(label), "MERGE %u MiB / MERGE %u MiB (above)", large, small);
	metric_def(M_MERGE_RATIO, key, label, "x");
	metrics[M_MERGE_RATIO].max_cowvm = 4.0;
	for (int id = M_DPUT_COW; id <= M_MERGE_RATIO; id++) {
		metrics[id].cowvm_only = true;
		metrics[id].host_note = "no Linux counterpart (Determinator's dput/dget)";
	}
}

static void record(enum metric_id id, bool host, double value)
{
	struct metric *m = &metrics[id];
	if (host && m->nhost < MAX_REPS)
		m->host[m->nhost++] = value;
	else if (!host && m->ncowvm < MAX_REPS)
		m->cowvm[m->ncowvm++] = value;
}

static void record_floor(enum floor_kind kind, double value)
{
	if (nfloor[kind] < MAX_REPS)
		floor_samples[kind][nfloor[kind]++] = value;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double median(const double *samples, int n)
{
	if (n == 0)
		return NAN;
	double s[MAX_REPS];
	memcpy(s, samples, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- checks: each case caused what it was meant to ------------------------------------------ */

char check_failures[MAX_CHECK_FAILURES][128];
int nchecks, nfailed;
struct cowvm_merge_report merge_reports[2];

static void check(const char *what, uint64_t got, uint64_t want)
{
	nchecks++;
	if (got == want)
		return;
	if (nfailed < MAX_CHECK_FAILURES)
		snprintf(check_failures[nfailed], sizeof(check_failures[0]), "%s: %llu, expected %llu",
			 what, (unsigned long long)got, (unsigned long long)want);
	nfailed++;
}

static void check_at_most(const char *what, uint64_t got, uint64_t max)
{
	nchecks++;
	if (got <= max)
		return;
	if (nfailed < MAX_CHECK_FAILURES)
		snprintf(check_failures[nfailed], sizeof(check_failures[0]), "%s: %llu, expected <= %llu",
			 what, (unsigned long long)got, (unsigned long long)max);
	nfailed++;
}

/* ---- the schedule -------------------------------------------------------------------------- */

static void progress(int rep, int reps, const char *what)
{
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r%-70s", "");
	fprintf(stderr, "\r  repetition %d/%d: %s", rep + 1, reps, what);
	fflush(stderr);
}

/*
 * One repetition of each case: the host, then cowvm, then the floor where one applies.  The
 * repetitions are the outer loop (rep 1 of every case, then rep 2 ...), so that a burst of
 * other work on the machine spoils one or two samples of each case, which the medians drop,
 * rather than every sample of one case.
 */
static void rep_faults(const struct config *c, cowvm_t *vm)
{
	uint64_t n = c->pages;
	struct result h, v;

	h = host_first_touch(n);
	check("host first touch: faults", h.count[0], n);
	record(M_FIRST_TOUCH, true, h.v[0]);
	v = vm_first_touch(vm, n);
	check("cowvm first touch: faults", v.count[0], n);
	record(M_FIRST_TOUCH, false, v.v[0]);
	record_floor(FLOOR_MEMSET, floor_memset(n).v[0]);

	h = host_zero_read(n);
	check("host zero read: faults", h.count[0], n);
	check("host write after read: faults", h.count[1], n);
	record(M_ZERO_READ, true, h.v[0]);
	record(M_WRITE_AFTER_READ, true, h.v[1]);
	v = vm_zero_read(vm, n);
	check("cowvm zero read: zero-page maps", v.count[0], n);
	check("cowvm write after read: zero-page COWs", v.count[1], n);
	record(M_ZERO_READ, false, v.v[0]);
	record(M_WRITE_AFTER_READ, false, v.v[1]);

	h = host_cow_break(n);
	check("host COW break: faults", h.count[0], n);
	record(M_COW_BREAK, true, h.v[0]);
	v = vm_cow_break(vm, n);
	check("cowvm COW break: COW copies", v.count[0], n);
	record(M_COW_BREAK, false, v.v[0]);
	record_floor(FLOOR_MEMCPY, floor_memcpy(n).v[0]);

	h = host_reuse(n);
	check("host reuse: faults", h.count[0], n);
	record(M_REUSE, true, h.v[0]);
	v = vm_reuse(vm, n);
	check("cowvm reuse: reuses", v.count[0], n);
	record(M_REUSE, false, v.v[0]);
}

static void rep_processes(const struct config *c, cowvm_t *vm)
{
	uint64_t n = c->pages;

	record(M_FORK_EMPTY, true, host_fork(0).v[0] / 1e3);
	record(M_FORK_EMPTY, false, vm_fork(vm, 0).v[0] / 1e3);
	for (int i = 0; i < c->nr_fork_sizes; i++) {
		uint64_t pages = c->fork_bytes[i] / BENCH_PAGE;
		record(M_FORK_TOTAL + i, true, host_fork(pages).v[0] / 1e3);
		record(M_FORK_TOTAL + i, false, vm_fork(vm, pages).v[0] / 1e3);
	}
	record(M_MUNMAP, true, host_munmap(n).v[0] / (double)n);
	record(M_MUNMAP, false, vm_munmap(vm, n).v[0] / (double)n);
	record(M_EXIT_EMPTY, true, host_exit(0).v[0] / 1e3);
	record(M_EXIT_EMPTY, false, vm_exit(vm, 0).v[0] / 1e3);
	record(M_EXIT, true, host_exit(n).v[0]); /* total ns; per page in finish() */
	record(M_EXIT, false, vm_exit(vm, n).v[0]);
}

static void rep_mmu(const struct config *c, cowvm_t *vm)
{
	struct result h, v;

	h = host_tlb_hit(c->tlb_hit_accesses);
	record(M_TLB_HIT_LOAD, true, h.v[0]);
	record(M_TLB_HIT_STORE, true, h.v[1]);
	v = vm_tlb_hit(vm, c->tlb_hit_accesses);
	check("cowvm TLB hit: TLB misses", v.count[0], 0);
	record(M_TLB_HIT_LOAD, false, v.v[0]);
	record(M_TLB_HIT_STORE, false, v.v[1]);
	h = host_tlb_miss(c->tlb_miss_pages, c->tlb_miss_passes);
	record(M_TLB_MISS, true, h.v[0]);
	v = vm_tlb_miss(vm, c->tlb_miss_pages, c->tlb_miss_passes);
	check("cowvm TLB miss: TLB misses", v.count[0], c->tlb_miss_pages * c->tlb_miss_passes);
	record(M_TLB_MISS, false, v.v[0]);
}

static void rep_memory_overhead(const struct config *c, cowvm_t *vm)
{
	record(M_PAGETABLE, true, host_pagetable(c->pages).v[0]);
	record(M_PAGETABLE, false, vm_pagetable(vm, c->pages).v[0]);
	record(M_STRUCT_PAGE, true, 64.0);
	record(M_STRUCT_PAGE, false, vm_struct_page(c->struct_page_frames).v[0]);
}

/*
 * dput/dget, cowvm only.  COPY with a page-multiple delta shares the middle copy-on-write: it
 * allocates page tables only (about one per 512 pages: pgalloc must not grow like the range);
 * with a delta of 8 bytes every byte is copied into memory the child touched beforehand
 * (nothing allocated), next to the memcpy floor of as many pages.  SNAP copies page tables
 * (as many as the child has) and no data.
 */
static void rep_dput(const struct config *c, cowvm_t *vm)
{
	/* the tables of n pages: PTE tables (+ 1 when not aligned), 2 PMDs, a PUD, a PGD */
	uint64_t n = c->pages, tables_max = (n + 511) / 512 + 1 + 4;
	struct result v;

	v = vm_dput_copy(vm, n, true);
	check("cowvm dput COPY (COW): frames allocated = page-table pages added", v.count[0],
	      v.count[1]);
	check_at_most("cowvm dput COPY (COW): page-table pages added", v.count[1], tables_max);
	check("cowvm dput COPY (COW): COW copies", v.count[2], 0);
	check("cowvm dput COPY (COW): pages the child reads wrong", v.count[3], 0);
	record(M_DPUT_COW, false, v.v[0] / (double)n);
	record(M_DPUT_COW_TOTAL, false, v.v[0] / 1e3);

	v = vm_dput_copy(vm, n, false);
	check("cowvm dput COPY (bytes): frames allocated", v.count[0], 0);
	check("cowvm dput COPY (bytes): COW copies", v.count[2], 0);
	check("cowvm dput COPY (bytes): pages the child reads wrong", v.count[3], 0);
	record(M_DPUT_BYTES, false, v.v[0] / (double)n);
	record(M_DPUT_BYTES_TOTAL, false, v.v[0] / 1e3);

	v = vm_snap(vm, n);
	check("cowvm dput SNAP: frames allocated = page-table pages added", v.count[0], v.count[1]);
	check("cowvm dput SNAP: page-table pages added = the child's", v.count[1], v.count[2]);
	check_at_most("cowvm dput SNAP: page-table pages added", v.count[1], tables_max);
	check("cowvm dput SNAP: COW copies", v.count[3], 0);
	record(M_SNAP, false, v.v[0] / (double)n);
}

/* The report a MERGE of `range` pages (whole 2 MiB tables) with one changed page should give. */
static void check_merge(const char *what, const struct result *v,
			const struct cowvm_merge_report *r, uint64_t range)
{
	char buf[64];
#define CHECK_MERGE(field, got, want)                                          \
	do {                                                                   \
		snprintf(buf, sizeof(buf), "cowvm MERGE %s: %s", what, field); \
		check(buf, got, want);                                         \
	} while (0)
	CHECK_MERGE("return (-errno)", v->count[0], 0);
	CHECK_MERGE("COW copies of the child's write", v->count[1], 1);
	CHECK_MERGE("frames allocated", v->count[2], 0);
	CHECK_MERGE("the parent reads the child's value", v->count[3], 1);
	CHECK_MERGE("tables_skipped", r->tables_skipped, range / 512 - 1);
	CHECK_MERGE("pages_skipped", r->pages_skipped, 511);
	CHECK_MERGE("pages_shared", r->pages_shared, 1);
	CHECK_MERGE("pages_copied", r->pages_copied, 0);
	CHECK_MERGE("pages_merged", r->pages_merged, 0);
	CHECK_MERGE("conflicts", r->conflicts, 0);
#undef CHECK_MERGE
}

/*
 * MERGE of the whole large range and of the one table holding the changed page, on one
 * parent: merge_iters of each, alternating (which goes first alternates with the
 * repetition), each with a fresh child; the repetition keeps the median of each size and
 * their ratio.
 */
static void rep_merge(const struct config *c, cowvm_t *vm, int rep)
{
	double t[2][MAX_REPS];
	uint64_t range[2] = { c->merge_small_pages, c->merge_pages };
	struct vm_merge_case *mc = vm_merge_setup(vm, c->merge_pages);
	for (int i = 0; i < c->merge_iters; i++) {
		for (int k = 0; k < 2; k++) {
			int which = (k + rep) % 2;
			struct result v = vm_merge(vm, mc, range[which], &merge_reports[which]);
			check_merge(which ? "large" : "small", &v, &merge_reports[which], range[which]);
			t[which][i] = v.v[0];
		}
	}
	vm_merge_teardown(vm, mc);
	double small = median(t[0], c->merge_iters), large = median(t[1], c->merge_iters);
	record(M_MERGE_SMALL, false, small / 1e3);
	record(M_MERGE_LARGE, false, large / 1e3);
	record(M_MERGE_RATIO, false, large / small);
}

static void run_all(const struct config *c, cowvm_t *vm)
{
	/* Warm-up, unrecorded: memory back from the hypervisor, the machine's frames in use once. */
	host_warm(2 * c->pages);
	vm_first_touch(vm, c->pages);

	for (int rep = 0; rep < c->reps; rep++) {
		progress(rep, c->reps, "page faults");
		rep_faults(c, vm);
		progress(rep, c->reps, "fork, munmap, exit");
		rep_processes(c, vm);
		progress(rep, c->reps, "TLB hit and miss");
		rep_mmu(c, vm);
		progress(rep, c->reps, "memory overhead");
		rep_memory_overhead(c, vm);
		progress(rep, c->reps, "dput COPY and SNAP");
		rep_dput(c, vm);
		progress(rep, c->reps, "dget MERGE");
		rep_merge(c, vm, rep);
	}
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r%-70s\r", "");
}

/*
 * Medians, the derived per-page figures (fork and exit minus the empty process, whose cost
 * is the process and not its memory), and the verdicts.
 */
static void finish(const struct config *c)
{
	for (int id = 0; id < NR_METRICS; id++) {
		struct metric *m = &metrics[id];
		m->host_med = median(m->host, m->nhost);
		m->cowvm_med = median(m->cowvm, m->ncowvm);
	}
	for (int i = 0; i < c->nr_fork_sizes; i++) {
		struct metric *total = &metrics[M_FORK_TOTAL + i], *page = &metrics[M_FORK_PAGE + i];
		double pages = (double)(c->fork_bytes[i] / BENCH_PAGE);
		for (int k = 0; k < total->nhost; k++)
			record(M_FORK_PAGE + i, true,
			       (total->host[k] - metrics[M_FORK_EMPTY].host_med) * 1e3 / pages);
		for (int k = 0; k < total->ncowvm; k++)
			record(M_FORK_PAGE + i, false,
			       (total->cowvm[k] - metrics[M_FORK_EMPTY].cowvm_med) * 1e3 / pages);
		page->host_med = median(page->host, page->nhost);
		page->cowvm_med = median(page->cowvm, page->ncowvm);
	}
	struct metric *e = &metrics[M_EXIT];
	for (int k = 0; k < e->nhost; k++)
		e->host[k] = (e->host[k] - metrics[M_EXIT_EMPTY].host_med * 1e3) / (double)c->pages;
	for (int k = 0; k < e->ncowvm; k++)
		e->cowvm[k] = (e->cowvm[k] - metrics[M_EXIT_EMPTY].cowvm_med * 1e3) / (double)c->pages;
	e->host_med = median(e->host, e->nhost);
	e->cowvm_med = median(e->cowvm, e->ncowvm);

	for (int id = 0; id < NR_METRICS; id++) {
		struct metric *m = &metrics[id];
		m->floor_med = m->floor ? median(floor_samples[m->floor], nfloor[m->floor]) : NAN;
		bool has_target = m->max_host_ratio || m->max_floor_ratio || m->max_cowvm;
		bool met = true;
		if (m->max_host_ratio && !(m->cowvm_med <= m->max_host_ratio * m->host_med))
			met = false;
		if (m->max_floor_ratio && !(m->cowvm_med <= m->max_floor_ratio * m->floor_med))
			met = false;
		if (m->max_cowvm && !(m->cowvm_med <= m->max_cowvm))
			met = false;
		m->status = !has_target ? "" : met ? "met" : "missed";
	}
}

/* ---- main ----------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: cowvm-bench [--quick] [--reps N] [--pages N] [--cpu N] [--json PATH]\n"
			"       cowvm-bench --profile CASE [--quick] [--reps N] [--pages N]\n"
			"CASE: first_touch zero_read cow_break reuse fork munmap exit tlb_hit tlb_miss\n"
			"      dput_copy dput_copy_bytes snap merge_small merge_large\n");
	exit(2);
}

/* --profile: the cowvm side of one case alone, each repetition's figure on a line. */
static void profile_case(const struct config *c, cowvm_t *vm, const char *name)
{
	uint64_t n = c->pages;
	struct vm_merge_case *mc = NULL;
	if (strncmp(name, "merge_", 6) == 0)
		mc = vm_merge_setup(vm, c->merge_pages);
	for (int rep = 0; rep < c->reps; rep++) {
		struct result r;
		struct cowvm_merge_report mr;
		if (strcmp(name, "first_touch") == 0)
			r = vm_first_touch(vm, n);
		else if (strcmp(name, "zero_read") == 0)
			r = vm_zero_read(vm, n);
		else if (strcmp(name, "cow_break") == 0)
			r = vm_cow_break(vm, n);
		else if (strcmp(name, "reuse") == 0)
			r = vm_reuse(vm, n);
		else if (strcmp(name, "fork") == 0)
			r = vm_fork(vm, n);
		else if (strcmp(name, "munmap") == 0)
			r = vm_munmap(vm, n);
		else if (strcmp(name, "exit") == 0)
			r = vm_exit(vm, n);
		else if (strcmp(name, "tlb_hit") == 0)
			r = vm_tlb_hit(vm, c->tlb_hit_accesses);
		else if (strcmp(name, "tlb_miss") == 0)
			r = vm_tlb_miss(vm, c->tlb_miss_pages, c->tlb_miss_passes);
		else if (strcmp(name, "dput_copy") == 0)
			r = vm_dput_copy(vm, n, true);
		else if (strcmp(name, "dput_copy_bytes") == 0)
			r = vm_dput_copy(vm, n, false);
		else if (strcmp(name, "snap") == 0)
			r = vm_snap(vm, n);
		else if (strcmp(name, "merge_small") == 0)
			r = vm_merge(vm, mc, c->merge_small_pages, &mr);
		else if (strcmp(name, "merge_large") == 0)
			r = vm_merge(vm, mc, c->merge_pages, &mr);
		else
			usage();
		printf("%s %d: %.2f %.2f (counts %llu %llu)\n", name, rep + 1, r.v[0], r.v[1],
		       (unsigned long long)r.count[0], (unsigned long long)r.count[1]);
	}
	if (mc)
		vm_merge_teardown(vm, mc);
}

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("cannot pin to CPU %d: %s", cpu, strerror(errno));
}

int main(int argc, char **argv)
{
	struct config c;
	bool quick = false;
	int reps = 0, cpu = -1;
	const char *json_path = "build/bench.json", *profile = NULL;
	uint64_t pages = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc)
			cpu = atoi(argv[++i]);
		else if (strcmp(argv[i], "--pages") == 0 && i + 1 < argc)
			pages = strtoull(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json_path = argv[++i];
		else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc)
			profile = argv[++i];
		else
			usage();
	}
	config_init(&c, quick);
	if (reps) {
		/* --profile keeps no samples, so it may repeat as long as a profiler needs */
		if (reps < 1 || (reps > MAX_REPS && !profile))
			die("--reps must be 1..%d", MAX_REPS);
		c.reps = reps;
	}
	if (pages) {
		if (pages * BENCH_PAGE * 3 > c.phys_bytes)
			die("--pages %llu does not fit a %llu MiB machine", (unsigned long long)pages,
			    (unsigned long long)(c.phys_bytes / MIB));
		c.pages = pages;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c.cpu = cpu >= 0 ? cpu : (int)(ncpu > 1 ? ncpu - 1 : 0); /* the last CPU: fewer interrupts */
	c.json_path = json_path;
	pin_to_cpu(c.cpu);

	struct run_info ri;
	run_info_init(&ri);
	metrics_init(&c);

	/* The worker first: nothing large exists yet, so its forks copy nothing of ours. */
	if (!profile)
		host_worker_start();
	struct cowvm_config cfg = {
		.phys_bytes = c.phys_bytes,
		.flags = COWVM_CONFIG_NO_POISON | COWVM_CONFIG_PREFAULT,
	};
	cowvm_t *vm = cowvm_create(&cfg);
	if (!vm)
		die("cowvm_create of %llu MiB: %s", (unsigned long long)(c.phys_bytes / MIB),
		    strerror(errno));

	if (profile) {
		profile_case(&c, vm, profile);
		cowvm_destroy(vm);
		return 0;
	}
	struct cpu_share share;
	cpu_share_start(&share, c.cpu);
	uint64_t t0 = now_ns();
	run_all(&c, vm);
	host_worker_stop();
	cpu_share_end(&share, c.cpu);
	double wall_s = (double)(now_ns() - t0) / 1e9;
	finish(&c);
	char why[256];
	if (cowvm_check(vm, why, sizeof(why)))
		die("the machine's invariants broke during the run: %s", why);
	print_table(&c, &ri, &share, wall_s);
	cowvm_destroy(vm);
	write_json(&c, &ri, &share, wall_s);
	printf("results written to %s\n", c.json_path);
	return 0;
}
