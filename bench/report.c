/*
 * report.c - what a run prints and keeps: the facts about the machine it ran on (date, kernel,
 * CPU, commit, and how much of the pinned CPU and of the others went to other work), the
 * table of medians with ratios, floors and verdicts, and the JSON file with every sample.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "report.h"

/* ---- was the pinned CPU ours? -------------------------------------------------------------------
 * Pinning keeps us on one CPU but does not keep others off it.  The pinned CPU's busy and steal
 * time (/proc/stat) over the run, against our own CPU time (this process, the worker and its
 * children), says how much of it went to other processes or to the hypervisor.  The other
 * CPUs' busy time matters too: they share the last-level cache and the memory bandwidth, and
 * the cache-missing cases (reuse, COW) slow down by up to half when another CPU is busy.
 */
/* Busy and steal seconds of one CPU (cpu >= 0) or of all of them (cpu < 0), from /proc/stat. */
static void cpu_times(int cpu, double *busy_s, double *steal_s)
{
	*busy_s = *steal_s = 0;
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return;
	char line[512], want[16];
	if (cpu < 0)
		snprintf(want, sizeof(want), "cpu ");
	else
		snprintf(want, sizeof(want), "cpu%d ", cpu);
	unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, want, strlen(want)) != 0)
			continue;
		if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice,
			   &system, &idle, &iowait, &irq, &softirq, &steal) == 8) {
			double hz = (double)sysconf(_SC_CLK_TCK);
			*busy_s = (double)(user + nice + system + irq + softirq) / hz;
			*steal_s = (double)steal / hz;
		}
		break;
	}
	fclose(f);
}

static double own_cpu_seconds(void)
{
	struct rusage self, children;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	double s = 0;
	const struct rusage *r[2] = { &self, &children };
	for (int i = 0; i < 2; i++)
		s += (double)r[i]->ru_utime.tv_sec + (double)r[i]->ru_utime.tv_usec / 1e6 +
		     (double)r[i]->ru_stime.tv_sec + (double)r[i]->ru_stime.tv_usec / 1e6;
	return s;
}

void cpu_share_start(struct cpu_share *cs, int cpu)
{
	double all_busy, all_steal;
	cpu_times(cpu, &cs->busy_s, &cs->steal_s);
	cpu_times(-1, &all_busy, &all_steal);
	cs->others_busy_s = all_busy - cs->busy_s;
	cs->ours_s = own_cpu_seconds();
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cs->nr_other_cpus = n > 1 ? (int)n - 1 : 0;
}

void cpu_share_end(struct cpu_share *cs, int cpu)
{
	double busy, steal, all_busy, all_steal;
	cpu_times(cpu, &busy, &steal);
	cpu_times(-1, &all_busy, &all_steal);
	cs->others_busy_s = (all_busy - busy) - cs->others_busy_s;
	cs->busy_s = busy - cs->busy_s;
	cs->steal_s = steal - cs->steal_s;
	cs->ours_s = own_cpu_seconds() - cs->ours_s;
}

/* Seconds of the pinned CPU that other processes used (clock ticks: about 10 ms resolution). */
static double cpu_share_others(const struct cpu_share *cs)
{
	double others = cs->busy_s - cs->ours_s;
	return others > 0 ? others : 0;
}

/* ---- the run's facts ------------------------------------------------------------------------- */

static void read_cpu_model(char *out, size_t len)
{
	snprintf(out, len, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && colon) {
			colon += 2;
			colon[strcspn(colon, "\n")] = 0;
			snprintf(out, len, "%s", colon);
			break;
		}
	}
	fclose(f);
}

/* The commit measured, when run from the repository (for comparisons across commits). */
static void read_commit(struct run_info *ri)
{
	snprintf(ri->commit, sizeof(ri->commit), "unknown");
	FILE *p = popen("git rev-parse --short HEAD 2>/dev/null", "r");
	if (!p)
		return;
	if (fgets(ri->commit, sizeof(ri->commit), p))
		ri->commit[strcspn(ri->commit, "\n")] = 0;
	else
		snprintf(ri->commit, sizeof(ri->commit), "unknown");
	pclose(p);
	p = popen("git status --porcelain --untracked-files=no 2>/dev/null", "r");
	if (!p)
		return;
	char line[8];
	ri->dirty = fgets(line, sizeof(line), p) != NULL;
	pclose(p);
}

void run_info_init(struct run_info *ri)
{
	memset(ri, 0, sizeof(*ri));
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(ri->date, sizeof(ri->date), "%Y-%m-%dT%H:%M:%S%z", &tm);
	struct utsname u;
	if (uname(&u) == 0) {
		snprintf(ri->kernel, sizeof(ri->kernel), "%s", u.release);
		snprintf(ri->machine, sizeof(ri->machine), "%s", u.machine);
	}
	read_cpu_model(ri->cpu_model, sizeof(ri->cpu_model));
	read_commit(ri);
}

/* ---- the table -------------------------------------------------------------------------------- */

static void print_value(double v, const char *unit)
{
	if (isnan(v))
		printf(" %10s", "-");
	else if (strcmp(unit, "ns/access") == 0 || strcmp(unit, "x") == 0)
		printf(" %10.2f", v);
	else
		printf(" %10.1f", v);
}

static void print_ratio(double r)
{
	if (isnan(r))
		printf(" %9s", "-");
	else
		printf(" %9.3f", r);
}

static void target_text(const struct metric *m, char *out, size_t len)
{
	out[0] = 0;
	size_t used = 0;
	if (m->max_host_ratio)
		used += (size_t)snprintf(out + used, len - used, "<=%gx host", m->max_host_ratio);
	if (m->max_floor_ratio)
		used += (size_t)snprintf(out + used, len - used, "%s<=%gx floor", used ? ", " : "",
					 m->max_floor_ratio);
	if (m->max_cowvm && strcmp(m->unit, "x") == 0)
		snprintf(out + used, len - used, "%s<=%gx", used ? ", " : "", m->max_cowvm);
	else if (m->max_cowvm)
		snprintf(out + used, len - used, "%s<=%g %s", used ? ", " : "", m->max_cowvm,
			 strcmp(m->unit, "bytes") == 0 ? "B" : "ns");
}

static bool metric_used(const struct metric *m)
{
	return m->nhost > 0 || m->ncowvm > 0;
}

void print_table(const struct config *c, const struct run_info *ri,
			const struct cpu_share *cs, double wall_s)
{
	printf("cowvm-bench  %s  commit %s%s\n", ri->date, ri->commit, ri->dirty ? " (modified)" : "");
	printf("host: Linux %s %s, %s, pinned to CPU %d\n", ri->kernel, ri->machine, ri->cpu_model,
	       c->cpu);
	printf("%s run: %llu pages (%llu MiB) per fault/munmap/exit/dput case, %d repetitions, medians; "
	       "cowvm machine %llu MiB, NO_POISON|PREFAULT\n",
	       c->quick ? "quick" : "full", (unsigned long long)c->pages,
	       (unsigned long long)(c->pages * BENCH_PAGE / MIB), c->reps,
	       (unsigned long long)(c->phys_bytes / MIB));
	printf("floor: bare 4 KiB memcpy (COW) / memset (new page) over as many cache-cold pages\n\n");
	printf("%-52s %-9s %10s %10s %9s %10s %9s  %-26s %s\n", "metric", "unit", "host", "cowvm",
	       "cowvm/host", "floor", "cowvm/flr", "target", "result");
	for (int id = 0; id < NR_METRICS; id++) {
		const struct metric *m = &metrics[id];
		if (!metric_used(m))
			continue;
		char target[64];
		target_text(m, target, sizeof(target));
		printf("%-52s %-9s", m->label, m->unit);
		print_value(m->host_med, m->unit);
		print_value(m->cowvm_med, m->unit);
		print_ratio(m->cowvm_med / m->host_med);
		print_value(m->floor_med, m->unit);
		print_ratio(m->floor ? m->cowvm_med / m->floor_med : NAN);
		printf("  %-26s %s\n", target, m->status);
	}
	printf("\nhost struct page: %s.\n", metrics[M_STRUCT_PAGE].host_note);
	printf("dput/dget rows: cowvm only, %s: no host figure ('-').\n",
	       metrics[M_DPUT_COW].host_note);
	if (metric_used(&metrics[M_MERGE_SMALL])) {
		printf("MERGE (median of %d per repetition, each after a fresh dput COPY and SNAP of "
		       "the %llu MiB to a child that writes one page), last report:\n",
		       c->merge_iters, (unsigned long long)(c->merge_pages * BENCH_PAGE / MIB));
		for (int i = 1; i >= 0; i--) {
			const struct cowvm_merge_report *r = &merge_reports[i];
			uint64_t pages = i ? c->merge_pages : c->merge_small_pages;
			printf("  %5llu MiB: tables_skipped %llu of %llu, pages_skipped %llu, "
			       "pages_shared %llu, pages_copied %llu, pages_merged %llu, conflicts %llu\n",
			       (unsigned long long)(pages * BENCH_PAGE / MIB),
			       (unsigned long long)r->tables_skipped, (unsigned long long)(pages / 512),
			       (unsigned long long)r->pages_skipped, (unsigned long long)r->pages_shared,
			       (unsigned long long)r->pages_copied, (unsigned long long)r->pages_merged,
			       (unsigned long long)r->conflicts);
		}
	}
	double others = cpu_share_others(cs);
	bool noisy = others + cs->steal_s > 0.02 * wall_s ||
		     cs->others_busy_s > 0.10 * wall_s * cs->nr_other_cpus;
	printf("over the %.1f s run: pinned CPU %d %.1f s ours, %.1f s other processes, %.1f s steal; "
	       "other CPUs busy %.1f s of %.1f s\n",
	       wall_s, c->cpu, cs->ours_s, others, cs->steal_s, cs->others_busy_s,
	       wall_s * cs->nr_other_cpus);
	if (noisy)
		printf("WARNING: the machine was not idle (shared CPU, cache and memory bandwidth): "
		       "figures are noisy; rerun when it is\n");
	printf("fork and exit per page: minus the empty process's median, divided by the pages.\n");
	if (nfailed == 0) {
		printf("checks: %d counts (faults, COW copies, reuses, zero-page maps, TLB misses, "
		       "frames and page tables of dput, MERGE reports) all as expected\n", nchecks);
	} else {
		printf("checks: %d of %d counts differ from what the case meant to cause:\n", nfailed,
		       nchecks);
		for (int i = 0; i < nfailed && i < MAX_CHECK_FAILURES; i++)
			printf("  %s\n", check_failures[i]);
	}
}

/* ---- the JSON file ------------------------------------------------------------------------------ */

static void json_number(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.6g", v);
}

static void json_merge_report(FILE *f, const struct cowvm_merge_report *r, uint64_t pages)
{
	fprintf(f, "{\"pages\": %llu, \"tables\": %llu, \"tables_skipped\": %llu, "
		   "\"pages_skipped\": %llu, \"pages_shared\": %llu, \"pages_copied\": %llu, "
		   "\"pages_merged\": %llu, \"conflicts\": %llu}",
		(unsigned long long)pages, (unsigned long long)(pages / 512),
		(unsigned long long)r->tables_skipped, (unsigned long long)r->pages_skipped,
		(unsigned long long)r->pages_shared, (unsigned long long)r->pages_copied,
		(unsigned long long)r->pages_merged, (unsigned long long)r->conflicts);
}

static void json_samples(FILE *f, const double *s, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		json_number(f, s[i]);
	}
	fputc(']', f);
}

/* Strings written here are ours (labels, uname, cpuinfo): escape quotes and backslashes only. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

void write_json(const struct config *c, const struct run_info *ri,
		       const struct cpu_share *cs, double wall_s)
{
	FILE *f = fopen(c->json_path, "w");
	if (!f) {
		fprintf(stderr, "cowvm-bench: cannot write %s: %s\n", c->json_path, strerror(errno));
		return;
	}
	fprintf(f, "{\n  \"date\": ");
	json_string(f, ri->date);
	fprintf(f, ",\n  \"kernel\": ");
	json_string(f, ri->kernel);
	fprintf(f, ",\n  \"machine\": ");
	json_string(f, ri->machine);
	fprintf(f, ",\n  \"cpu_model\": ");
	json_string(f, ri->cpu_model);
	fprintf(f, ",\n  \"commit\": ");
	json_string(f, ri->commit);
	fprintf(f, ",\n  \"modified\": %s", ri->dirty ? "true" : "false");
	fprintf(f, ",\n  \"quick\": %s,\n  \"reps\": %d,\n  \"cpu\": %d,\n  \"pages\": %llu,\n"
		   "  \"phys_bytes\": %llu,\n",
		c->quick ? "true" : "false", c->reps, c->cpu, (unsigned long long)c->pages,
		(unsigned long long)c->phys_bytes);
	fprintf(f, "  \"run_seconds\": %.2f,\n  \"pinned_cpu_seconds\": {\"ours\": %.2f, "
		   "\"other_processes\": %.2f, \"steal\": %.2f},\n"
		   "  \"other_cpus_busy_seconds\": %.2f,\n",
		wall_s, cs->ours_s, cpu_share_others(cs), cs->steal_s, cs->others_busy_s);
	fprintf(f, "  \"floors\": {\"memcpy_ns_per_page\": ");
	json_number(f, median(floor_samples[FLOOR_MEMCPY], nfloor[FLOOR_MEMCPY]));
	fprintf(f, ", \"memcpy_samples\": ");
	json_samples(f, floor_samples[FLOOR_MEMCPY], nfloor[FLOOR_MEMCPY]);
	fprintf(f, ", \"memset_ns_per_page\": ");
	json_number(f, median(floor_samples[FLOOR_MEMSET], nfloor[FLOOR_MEMSET]));
	fprintf(f, ", \"memset_samples\": ");
	json_samples(f, floor_samples[FLOOR_MEMSET], nfloor[FLOOR_MEMSET]);
	fprintf(f, "},\n  \"merge_reports\": {\"iters_per_rep\": %d, \"small\": ", c->merge_iters);
	json_merge_report(f, &merge_reports[0], c->merge_small_pages);
	fprintf(f, ", \"large\": ");
	json_merge_report(f, &merge_reports[1], c->merge_pages);
	fprintf(f, "},\n  \"checks\": {\"total\": %d, \"failed\": %d, \"failures\": [", nchecks, nfailed);
	for (int i = 0; i < nfailed && i < MAX_CHECK_FAILURES; i++) {
		if (i)
			fputs(", ", f);
		json_string(f, check_failures[i]);
	}
	fprintf(f, "]},\n  \"metrics\": {\n");
	bool first = true;
	for (int id = 0; id < NR_METRICS; id++) {
		const struct metric *m = &metrics[id];
		if (!metric_used(m))
			continue;
		char target[64];
		target_text(m, target, sizeof(target));
		fprintf(f, "%s    ", first ? "" : ",\n");
		first = false;
		json_string(f, m->key);
		fprintf(f, ": {\"label\": ");
		json_string(f, m->label);
		fprintf(f, ", \"unit\": ");
		json_string(f, m->unit);
		fprintf(f, ", \"host\": ");
		json_number(f, m->host_med);
		fprintf(f, ", \"cowvm\": ");
		json_number(f, m->cowvm_med);
		fprintf(f, ", \"ratio\": ");
		json_number(f, m->cowvm_med / m->host_med);
		fprintf(f, ", \"floor\": ");
		json_number(f, m->floor_med);
		fprintf(f, ", \"floor_ratio\": ");
		json_number(f, m->floor ? m->cowvm_med / m->floor_med : NAN);
		fprintf(f, ", \"target\": ");
		json_string(f, target);
		fprintf(f, ", \"status\": ");
		json_string(f, m->status);
		if (m->cowvm_only)
			fprintf(f, ", \"cowvm_only\": true");
		if (m->host_note) {
			fprintf(f, ", \"host_note\": ");
			json_string(f, m->host_note);
		}
		fprintf(f, ", \"host_samples\": ");
		json_samples(f, m->host, m->nhost);
		fprintf(f, ", \"cowvm_samples\": ");
		json_samples(f, m->cowvm, m->ncowvm);
		fputc('}', f);
	}
	fprintf(f, "\n  }\n}\n");
	if (fclose(f))
		fprintf(stderr, "cowvm-bench: writing %s: %s\n", c->json_path, strerror(errno));
}

