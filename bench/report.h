/*
 * report.h - what main.c (the schedule) and report.c (the table and the JSON file) share:
 * the configuration of a run, the metrics with their samples and targets, the checks, and the
 * facts about the machine the run happened on.
 */
#ifndef COWVM_BENCH_REPORT_H
#define COWVM_BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/utsname.h>

#include "../include/cowvm.h"

#define MAX_REPS 31
#define MAX_FORK_SIZES 3
#define MAX_CHECK_FAILURES 64
#define MIB (1ull << 20)

struct config {
	bool quick;
	int reps;
	int cpu;
	const char *json_path;
	uint64_t pages;              /* pages per fault, munmap and exit case */
	uint64_t fork_bytes[MAX_FORK_SIZES];
	int nr_fork_sizes;
	uint64_t tlb_hit_accesses;
	uint64_t tlb_miss_pages, tlb_miss_passes;
	uint64_t struct_page_frames;
	uint64_t phys_bytes;         /* the measured machine */
	/* dput/dget (cowvm only): COPY and SNAP use `pages`; MERGE a parent of merge_pages, one
	 * page changed, merged over all of them and over merge_small_pages around the change */
	uint64_t merge_pages, merge_small_pages;
	int merge_iters;             /* merges of each size per repetition (their median is kept) */
};

/* ---- metrics: filled by main.c, printed by report.c --------------------------------------- */

enum metric_id {
	M_FIRST_TOUCH, M_ZERO_READ, M_WRITE_AFTER_READ, M_COW_BREAK, M_REUSE,
	M_FORK_EMPTY,
	M_FORK_PAGE, M_FORK_TOTAL = M_FORK_PAGE + MAX_FORK_SIZES,
	M_MUNMAP = M_FORK_TOTAL + MAX_FORK_SIZES, M_EXIT_EMPTY, M_EXIT,
	M_TLB_HIT_LOAD, M_TLB_HIT_STORE, M_TLB_MISS,
	M_STRUCT_PAGE, M_PAGETABLE,
	M_DPUT_COW, M_DPUT_COW_TOTAL, M_DPUT_BYTES, M_DPUT_BYTES_TOTAL, M_SNAP,
	M_MERGE_SMALL, M_MERGE_LARGE, M_MERGE_RATIO,
	NR_METRICS
};

enum floor_kind { FLOOR_NONE, FLOOR_MEMCPY, FLOOR_MEMSET };

struct metric {
	char key[48];         /* the JSON name */
	char label[64];
	const char *unit;
	enum floor_kind floor;
	double max_host_ratio;  /* target: cowvm <= this x host (0: none) */
	double max_floor_ratio; /* target: cowvm <= this x floor (0: none) */
	double max_cowvm;       /* target: cowvm <= this, in the metric's unit (0: none) */
	const char *host_note;  /* the host figure is not measured but documented */
	bool cowvm_only;        /* no host counterpart (dput/dget): the host column is '-' */
	double host[MAX_REPS], cowvm[MAX_REPS];
	int nhost, ncowvm;
	/* medians, filled at the end */
	double host_med, cowvm_med, floor_med;
	const char *status;     /* "met", "missed" or "" */
};

extern struct metric metrics[NR_METRICS];
extern double floor_samples[3][MAX_REPS];
extern int nfloor[3];
extern char check_failures[MAX_CHECK_FAILURES][128];
extern int nchecks, nfailed;
/* The last MERGE of each size (0: merge_small_pages, 1: merge_pages): did the shortcut work? */
extern struct cowvm_merge_report merge_reports[2];

double median(const double *samples, int n); /* NAN for no samples */

/* ---- the machine the run happened on (report.c) ------------------------------------------- */

struct run_info {
	char date[64];
	char kernel[sizeof(((struct utsname *)0)->release)];
	char machine[sizeof(((struct utsname *)0)->machine)];
	char cpu_model[128];
	char commit[64];
	bool dirty;
};
void run_info_init(struct run_info *ri);

struct cpu_share {
	double busy_s, steal_s, ours_s;
	double others_busy_s;   /* the other CPUs: they share the caches and memory bandwidth */
	int nr_other_cpus;
};
void cpu_share_start(struct cpu_share *cs, int cpu);
void cpu_share_end(struct cpu_share *cs, int cpu);

/* ---- output (report.c) ---------------------------------------------------------------------- */

void print_table(const struct config *c, const struct run_info *ri, const struct cpu_share *cs,
		 double wall_s);
void write_json(const struct config *c, const struct run_info *ri, const struct cpu_share *cs,
		double wall_s);

#endif
