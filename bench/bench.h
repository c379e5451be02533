/*
 * bench.h - what the benchmark's files share.
 *
 * The program measures every operation twice in one run, on the host kernel and on cowvm,
 * with the same sizes, plus the physical floor (bare 4 KiB memcpy/memset) where one applies:
 *   host.c         the host kernel, measured in a worker process forked before cowvm exists
 *                  (so that no fork it makes copies the page tables of cowvm's memory);
 *   cowvm_side.c   the same operations on a cowvm machine, through include/cowvm.h only, and
 *                  Determinator's dput/dget (COPY, SNAP, MERGE), which have no host side;
 *   main.c         options, the schedule (host, cowvm, floor, rep after rep), the checks,
 *                  medians and verdicts;
 *   report.c       the run's facts (kernel, CPU, commit, how idle the machine was), the table
 *                  and the JSON file (report.h holds what main.c and report.c share).
 * Every figure is in nanoseconds unless a metric's unit says otherwise.
 */
#ifndef COWVM_BENCH_H
#define COWVM_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../include/cowvm.h"

#define BENCH_PAGE 4096ull

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Stop the program: a benchmark that cannot set up its case has nothing to report. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * One measurement of one case.  v[] are the figures (what each holds is said at each
 * function), count[] the events the case caused, so the caller can check that it measured
 * what it meant to (one fault per page, one COW copy per page ...).
 */
struct result {
	double v[4];
	uint64_t count[4];
};

/* ---- the host kernel (host.c): each call runs in the worker process --------------------- */

void host_worker_start(void); /* fork the worker; call before anything large is allocated */
void host_worker_stop(void);

/* Each returns ns per page (v[0]) and the minor faults of the timed region (count[0]). */
struct result host_cow_break(uint64_t pages);   /* parent writes after fork, child alive */
struct result host_first_touch(uint64_t pages); /* write to fresh memory */
struct result host_zero_read(uint64_t pages);   /* v[0] read fault, v[1] write after it */
struct result host_reuse(uint64_t pages);       /* write after fork, child gone */
struct result host_fork(uint64_t pages);        /* v[0] total ns of fork() with pages touched */
struct result host_munmap(uint64_t pages);      /* v[0] total ns */
struct result host_exit(uint64_t pages);        /* v[0] total ns of a process's exit */
struct result host_tlb_hit(uint64_t accesses);  /* v[0] load, v[1] store, ns per access */
struct result host_tlb_miss(uint64_t pages, uint64_t passes); /* v[0] ns per access */
struct result host_pagetable(uint64_t pages);   /* v[0] page-table bytes per mapped page */
struct result host_warm(uint64_t pages);        /* take memory back from the hypervisor */
/* The floors, on fresh (prefaulted, cache-cold) pages: v[0] ns per 4 KiB page. */
struct result floor_memcpy(uint64_t pages);
struct result floor_memset(uint64_t pages);

/* ---- cowvm (cowvm_side.c) -------------------------------------------------------------- */

/* The same cases on machine vm; each leaves the machine as it found it (checked). */
struct result vm_cow_break(cowvm_t *vm, uint64_t pages);   /* count[0] COW copies */
struct result vm_first_touch(cowvm_t *vm, uint64_t pages); /* count[0] faults */
struct result vm_zero_read(cowvm_t *vm, uint64_t pages);   /* count[0] zero maps, [1] zero COWs */
struct result vm_reuse(cowvm_t *vm, uint64_t pages);       /* count[0] reuses */
struct result vm_fork(cowvm_t *vm, uint64_t pages);
struct result vm_munmap(cowvm_t *vm, uint64_t pages);
struct result vm_exit(cowvm_t *vm, uint64_t pages);
struct result vm_tlb_hit(cowvm_t *vm, uint64_t accesses);  /* count[0] TLB misses */
struct result vm_tlb_miss(cowvm_t *vm, uint64_t pages, uint64_t passes); /* count[0] misses */
struct result vm_pagetable(cowvm_t *vm, uint64_t pages);
/* v[0] bytes of host memory per frame that a machine's frame array costs (RSS growth). */
struct result vm_struct_page(uint64_t frames);

/*
 * Determinator's dput and dget (cowvm only: Linux has no counterpart, so these cases have no
 * host side).  v[0] total ns of the timed call; what count[] holds is said at each function.
 */
struct result vm_dput_copy(cowvm_t *vm, uint64_t pages, bool page_multiple);
struct result vm_snap(cowvm_t *vm, uint64_t pages);
/* MERGE with one changed page: a parent with `pages` touched, then merges of ranges of it. */
struct vm_merge_case;
struct vm_merge_case *vm_merge_setup(cowvm_t *vm, uint64_t pages);
struct result vm_merge(cowvm_t *vm, struct vm_merge_case *mc, uint64_t range_pages,
		       struct cowvm_merge_report *rep);
void vm_merge_teardown(cowvm_t *vm, struct vm_merge_case *mc);

#endif
