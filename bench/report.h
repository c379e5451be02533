/*
 * report.h - what main.c (the schedule) and report.c (the table, the JSON and the Markdown)
 * share: the configuration of a run, the samples of every figure, the curve, the checks, and
 * the facts about the machine the run happened on.
 */
#ifndef COWVM_BENCH_REPORT_H
#define COWVM_BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/utsname.h>

#include "bench.h"

#define MAX_CHECK_FAILURES 64
#define MAX_CURVE_SIZES 16

struct config {
	bool quick;
	int reps;
	int cpu;
	const char *json_path, *markdown_path;
	uint64_t phys_bytes;            /* the shared machine */
	unsigned vm_flags;              /* its COWVM_CONFIG_* */
	bool selected[256];             /* cases that run (by index) */
	uint64_t curve_sizes[MAX_CURVE_SIZES];
	int nr_curve_sizes;
	bool huge_backing;              /* the shared machine got host huge pages */
	struct cowvm_machine_info machine;
};

/* The samples of one figure on one side, and their statistics. */
struct series {
	double s[MAX_REPS];
	int n;
	double median, min, max;        /* NAN without samples */
};

/* One figure of one case. */
struct figure {
	const struct bench_case *c;
	const struct bench_metric *m;
	int case_index, k;
	struct series host, cowvm;
	struct series floor_4k, floor_vm; /* the case's floor on 4 KiB pages / on cowvm's backing */
	double ratio, floor_ratio;      /* cowvm median / host median, / floor_vm median */
	const char *status;             /* "met", "missed", "" (no target), "skipped" */
};

#define MAX_FIGURES 128
extern struct figure figures[MAX_FIGURES];
extern int nr_figures;

/* The cost curve: one point per machine size. */
struct curve_series {
	uint64_t phys_bytes, pages;
	struct series touch, fork, cow, exit, work, create_ms, destroy_ms;
};
extern struct curve_series curve[MAX_CURVE_SIZES];
extern int nr_curve;
extern double curve_spread;     /* max / min of the work medians over the sizes */

extern double case_seconds[256]; /* wall time each case took over the run, both sides */
extern double curve_seconds;
extern char check_failures[MAX_CHECK_FAILURES][160];
extern int nchecks, nfailed;
extern char skip_reasons[8][200];
extern int nskips;

void series_finish(struct series *s);

/* ---- the machine the run happened on (report.c) ------------------------------------------- */

struct run_info {
	char date[64];
	char kernel[sizeof(((struct utsname *)0)->release)];
	char machine[sizeof(((struct utsname *)0)->machine)];
	char cpu_model[128];
	int nr_cpus;
	char commit[64];
	bool dirty;
};
void run_info_init(struct run_info *ri);

struct cpu_share {
	double busy_s, steal_s, ours_s;
	double others_busy_s;   /* the other CPUs: they share the caches and memory bandwidth */
	int nr_other_cpus;
	double background_s;    /* CPU the library's own threads used (on other CPUs), main.c adds */
	double load1_start, load1_end;
};
void cpu_share_start(struct cpu_share *cs, int cpu);
void cpu_share_end(struct cpu_share *cs, int cpu);

/* ---- output (report.c) ---------------------------------------------------------------------- */

void print_table(const struct config *c, const struct run_info *ri, const struct cpu_share *cs,
		 double wall_s);
void write_json(const struct config *c, const struct run_info *ri, const struct cpu_share *cs,
		double wall_s);
void write_markdown(const struct config *c, const struct run_info *ri, const struct cpu_share *cs,
		    double wall_s);

#endif
