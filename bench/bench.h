/*
 * bench.h - what the benchmark's files share: the case table, the samples a case returns,
 * the checks a case makes, and the functions each side offers.
 *
 * A case is one entry of bench_cases[] (cases.c): a name, its size in the full and the quick
 * run, a function for the host kernel and one for cowvm (either may be NULL), and up to
 * MAX_CASE_METRICS figures it returns each round, each with its unit, floor and targets.  The
 * schedule (main.c) runs every case once per round, host and cowvm back to back in an order
 * that alternates with the round, then the floors the case's figures are compared with; the
 * report (report.c) gives each figure's median and min-max over the rounds.
 *
 *   host.c         the host kernel's side, run in a worker process forked before cowvm exists
 *                  (so that no fork it makes copies the page tables of cowvm's memory), and
 *                  the memcpy/memset floors;
 *   cowvm_side.c   the same operations on cowvm, through include/cowvm.h only;
 *   dput_side.c    Determinator's dput/dget (COPY, SNAP, MERGE): cowvm only;
 *   restore.c      snapshot/restore loops (issue 14), both sides: cowvm_restore against a
 *                  host fork server;
 *   scale.c        scale: fork trees of thousands of processes, a 16 GiB machine, the cost
 *                  curve over machine sizes (--size), the memory a frame costs;
 *   cases.c        the table;  main.c the schedule;  report.c the table, JSON and Markdown.
 *
 * Adding a case: write `void my_case(const struct bench_env *env, uint64_t param,
 * struct sample *out)` for each side that has one (out->v[k] is the k-th figure; check the
 * counts the operation must cause with bench_check), declare it below, and add one entry to
 * bench_cases[] naming its figures.  Nothing else changes: the schedule, the medians, the
 * table, the JSON and the Markdown pick it up.
 */
#ifndef COWVM_BENCH_H
#define COWVM_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../include/cowvm.h"

#define BENCH_PAGE 4096ull
#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define MAX_CASE_METRICS 4
#define MAX_REPS 31

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Stop the program: a benchmark that cannot set up its case has nothing to report. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * One round of one case on one side: v[k] is the case's k-th figure (NAN: none this round),
 * and the checks the case made.  The sample crosses the pipe from the host worker as bytes,
 * so it holds no pointers.
 */
struct sample {
	double v[MAX_CASE_METRICS];
	int nchecks, nfailed;
	char failure[160];              /* the first failed check */
	int skipped;                    /* 1: the case could not run here (reason in failure[]) */
};

/* The check a case makes on the events it caused (faults, COW copies, frames ...). */
void bench_check(struct sample *out, const char *what, uint64_t got, uint64_t want);
void bench_check_max(struct sample *out, const char *what, uint64_t got, uint64_t max);
/* The case cannot run on this machine (not enough memory ...): no figures, a reason. */
void bench_skip(struct sample *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What a case function is given. */
struct bench_env {
	bool quick;
	int round;
	cowvm_t *vm;                    /* the shared machine (cowvm side; NULL in the worker) */
	unsigned vm_flags;              /* COWVM_CONFIG_* of that machine, for machines a case makes */
};

typedef void (*bench_fn)(const struct bench_env *env, uint64_t param, struct sample *out);

enum floor_kind { FLOOR_NONE, FLOOR_MEMCPY, FLOOR_MEMSET, NR_FLOORS };

struct bench_metric {
	const char *key;                /* JSON name; unique over the table */
	const char *label;
	const char *unit;               /* ns/page, ns/access, us, bytes, %, x */
	enum floor_kind floor;          /* compared with this floor (same pages, same memory) */
	double max_host_ratio;          /* target: cowvm <= this x host (0: none) */
	double max_floor_ratio;         /* target: cowvm <= this x floor (0: none) */
	double max_value;               /* target: cowvm <= this, in the unit (0: none) */
	const char *host_note;          /* why there is no measured host figure, if there is none */
};

/* case flags */
#define BENCH_QUICK 0x1u                /* part of the quick run too */
#define BENCH_BIG   0x2u                /* needs gigabytes: full run only, skipped without them */

struct bench_case {
	const char *name;               /* for --case and --profile */
	unsigned flags;
	uint64_t param, quick_param;    /* the case's size (pages, bytes, processes) in each run */
	bench_fn host, cowvm;           /* a case with a floor takes pages as its param */
	struct bench_metric metrics[MAX_CASE_METRICS];
};

extern const struct bench_case bench_cases[];
extern const int nr_bench_cases;

static inline int case_nr_metrics(const struct bench_case *c)
{
	int n = 0;
	while (n < MAX_CASE_METRICS && c->metrics[n].key)
		n++;
	return n;
}

/* ---- the host kernel (host.c): each call runs in the worker process --------------------- */

void host_worker_start(bool quick); /* fork the worker; before anything large is allocated */
void host_worker_stop(void);
/* Run bench_cases[index].host in the worker. */
void host_run_case(int index, uint64_t param, int round, struct sample *out);
/* A floor over `pages` fresh, cache-cold pages, in ns per 4 KiB page: v[0] on 4 KiB host
 * pages (the host cases' memory), v[1] on memory backed as cowvm's physical memory is
 * (transparent huge pages when huge_backing, else 4 KiB pages too). */
void host_run_floor(enum floor_kind kind, uint64_t pages, bool huge_backing, struct sample *out);
void host_warm(uint64_t pages); /* take memory back from the hypervisor */

void host_first_touch(const struct bench_env *, uint64_t pages, struct sample *);
void host_zero_read(const struct bench_env *, uint64_t pages, struct sample *);
void host_cow_break(const struct bench_env *, uint64_t pages, struct sample *);
void host_reuse(const struct bench_env *, uint64_t pages, struct sample *);
void host_fork(const struct bench_env *, uint64_t bytes, struct sample *);
void host_munmap(const struct bench_env *, uint64_t pages, struct sample *);
void host_exit(const struct bench_env *, uint64_t pages, struct sample *);
void host_tlb_hit(const struct bench_env *, uint64_t accesses, struct sample *);
void host_tlb_miss(const struct bench_env *, uint64_t pages, struct sample *);
void host_pagetable(const struct bench_env *, uint64_t pages, struct sample *);
void host_fork_tree(const struct bench_env *, uint64_t processes, struct sample *);
void host_restore(const struct bench_env *, uint64_t k, struct sample *); /* restore.c */

/* ---- cowvm (cowvm_side.c, dput_side.c, scale.c) ------------------------------------------ */

void vm_first_touch(const struct bench_env *, uint64_t pages, struct sample *);
void vm_zero_read(const struct bench_env *, uint64_t pages, struct sample *);
void vm_cow_break(const struct bench_env *, uint64_t pages, struct sample *);
void vm_reuse(const struct bench_env *, uint64_t pages, struct sample *);
void vm_fork(const struct bench_env *, uint64_t bytes, struct sample *);
void vm_munmap(const struct bench_env *, uint64_t pages, struct sample *);
void vm_exit(const struct bench_env *, uint64_t pages, struct sample *);
void vm_tlb_hit(const struct bench_env *, uint64_t accesses, struct sample *);
void vm_tlb_miss(const struct bench_env *, uint64_t pages, struct sample *);
void vm_pagetable(const struct bench_env *, uint64_t pages, struct sample *);
void vm_frame_overhead(const struct bench_env *, uint64_t frames, struct sample *);

void vm_dput_copy_cow(const struct bench_env *, uint64_t pages, struct sample *);
/* memcg_side.c */
void vm_memcg_first_touch(const struct bench_env *, uint64_t pages, struct sample *);
void vm_memcg_cow_break(const struct bench_env *, uint64_t pages, struct sample *);
void vm_dput_copy_bytes(const struct bench_env *, uint64_t pages, struct sample *);
void vm_snap(const struct bench_env *, uint64_t pages, struct sample *);
void vm_merge(const struct bench_env *, uint64_t pages, struct sample *);

void vm_fork_tree(const struct bench_env *, uint64_t processes, struct sample *);
void vm_restore(const struct bench_env *, uint64_t k, struct sample *); /* restore.c */
void vm_big_cow(const struct bench_env *, uint64_t guest_bytes, struct sample *);

/* The cost curve (--size): one machine of phys_bytes, made for the round. */
struct curve_point {
	uint64_t phys_bytes, pages;     /* machine size; pages touched (phys_bytes / 8) */
	double touch_ns, fork_ns, cow_ns, exit_ns; /* per touched page */
	double work_ns;                 /* touch + fork + cow, per page: the figure kept flat */
	double create_ms, destroy_ms;   /* the machine's own set-up and teardown */
};
void vm_curve_point(unsigned vm_flags, uint64_t phys_bytes, struct curve_point *out,
		    struct sample *checks);

/* How often the TLB-miss chain is walked: enough for a stable figure, short enough for --quick. */
uint64_t tlb_miss_passes(const struct bench_env *env);
/* MemAvailable of /proc/meminfo, in bytes (0 if unknown). */
uint64_t host_mem_available(void);

#endif
