/*
 * report.c - what a run prints and keeps: the facts about the machine it ran on (date, kernel,
 * CPU, commit, and how much of the pinned CPU and of the others went to other work), the
 * table of medians with their min-max, ratios, floors and verdicts, the cost curve, the JSON
 * file with every sample (CI keeps it), and the Markdown table the README shows.
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

static double load1(void)
{
	double l = 0;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = 0;
		fclose(f);
	}
	return l;
}

void cpu_share_start(struct cpu_share *cs, int cpu)
{
	cs->load1_start = load1();
	cs->background_s = 0;
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
	cs->ours_s = own_cpu_seconds() - cs->ours_s - cs->background_s;
	cs->others_busy_s -= cs->background_s; /* ours too, only elsewhere */
	if (cs->others_busy_s < 0)
		cs->others_busy_s = 0;
	cs->load1_end = load1();
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
	ri->nr_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	read_commit(ri);
}

/* ---- the table -------------------------------------------------------------------------------- */

/* Figures in their unit: ns with one decimal (two below 10), us and bytes likewise. */
static void fmt_value(char *out, size_t len, double v)
{
	if (isnan(v))
		snprintf(out, len, "-");
	else if (fabs(v) < 10)
		snprintf(out, len, "%.2f", v);
	else if (fabs(v) < 100000)
		snprintf(out, len, "%.1f", v);
	else
		snprintf(out, len, "%.0f", v);
}

/* "median [min-max]" */
static void fmt_series(char *out, size_t len, const struct series *s, bool spread)
{
	char m[24], lo[24], hi[24];
	fmt_value(m, sizeof(m), s->median);
	if (!spread || s->n < 2) {
		snprintf(out, len, "%s", m);
		return;
	}
	fmt_value(lo, sizeof(lo), s->min);
	fmt_value(hi, sizeof(hi), s->max);
	snprintf(out, len, "%s [%s-%s]", m, lo, hi);
}

static void fmt_ratio(char *out, size_t len, double r)
{
	if (isnan(r) || isinf(r))
		snprintf(out, len, "-");
	else if (r < 0.1)
		snprintf(out, len, "%.3f", r);
	else
		snprintf(out, len, "%.2f", r);
}

static void target_text(const struct bench_metric *m, char *out, size_t len)
{
	out[0] = 0;
	size_t used = 0;
	if (m->max_host_ratio)
		used += (size_t)snprintf(out + used, len - used, "<=%gx host", m->max_host_ratio);
	if (m->max_floor_ratio)
		used += (size_t)snprintf(out + used, len - used, "%s<=%gx floor", used ? ", " : "",
					 m->max_floor_ratio);
	if (m->max_value && strcmp(m->unit, "x") == 0)
		snprintf(out + used, len - used, "%s<=%gx", used ? ", " : "", m->max_value);
	else if (m->max_value)
		snprintf(out + used, len - used, "%s<=%g %s", used ? ", " : "", m->max_value,
			 strcmp(m->unit, "bytes") == 0 ? "B" : strcmp(m->unit, "%") == 0 ? "%" :
			 strcmp(m->unit, "us") == 0 ? "us" : "ns");
}

static const char *floor_name(enum floor_kind k)
{
	return k == FLOOR_MEMCPY ? "memcpy" : k == FLOOR_MEMSET ? "memset" : "";
}

static bool machine_noisy(const struct cpu_share *cs, double wall_s)
{
	return cpu_share_others(cs) + cs->steal_s > 0.02 * wall_s ||
	       cs->others_busy_s > 0.10 * wall_s * cs->nr_other_cpus;
}

static const char *backing_name(int backing)
{
	switch (backing) {
	case COWVM_BACKING_HUGETLB: return "hugetlbfs 2 MiB pages";
	case COWVM_BACKING_THP: return "transparent huge pages";
	default: return "4 KiB pages";
	}
}

void print_table(const struct config *c, const struct run_info *ri,
		 const struct cpu_share *cs, double wall_s)
{
	const struct cowvm_machine_info *mi = &c->machine;
	printf("cowvm-bench  %s  commit %s%s\n", ri->date, ri->commit, ri->dirty ? " (modified)" : "");
	printf("host: Linux %s %s, %s, %d CPUs, pinned to CPU %d\n", ri->kernel, ri->machine,
	       ri->cpu_model, ri->nr_cpus, c->cpu);
	printf("%s run: %d interleaved rounds, medians [min-max]; cowvm machine %llu MiB, "
	       "flags %#x, physical memory on %s (%llu MiB of it huge)\n",
	       c->quick ? "quick" : "full", c->reps, (unsigned long long)(c->phys_bytes / MIB),
	       c->vm_flags, backing_name(mi->host_backing),
	       (unsigned long long)(mi->host_huge_bytes / MIB));
	printf("floors: bare 4 KiB memcpy/memset over as many cold, backed pages; 'floor' is on "
	       "memory backed as cowvm's (%s), the 4 KiB-page floor is in the JSON\n\n",
	       c->huge_backing ? "huge pages" : "4 KiB pages");
	printf("%-52s %-9s %-22s %-22s %8s %9s %8s  %-24s %s\n", "metric", "unit", "host",
	       "cowvm", "cow/host", "floor", "cow/flr", "target", "result");
	for (int i = 0; i < nr_figures; i++) {
		const struct figure *f = &figures[i];
		char h[80], v[80], r[16], fl[32], fr[16], target[64];
		fmt_series(h, sizeof(h), &f->host, true);
		fmt_series(v, sizeof(v), &f->cowvm, true);
		fmt_ratio(r, sizeof(r), f->ratio);
		fmt_value(fl, sizeof(fl), f->m->floor ? f->floor_vm.median : NAN);
		fmt_ratio(fr, sizeof(fr), f->floor_ratio);
		target_text(f->m, target, sizeof(target));
		printf("%-52s %-9s %-22s %-22s %8s %9s %8s  %-24s %s\n", f->m->label, f->m->unit,
		       f->c->host ? h : "-", v, r, fl, fr, target, f->status);
	}
	if (nr_curve) {
		printf("\ncost curve: first touch of an eighth of the machine, fork, COW break of it all, "
		       "exit; ns per touched page, medians of %d; machines lazily backed (flags %#x)\n",
		       c->reps, c->vm_flags & ~COWVM_CONFIG_PREFAULT);
		printf("%10s %9s %10s %10s %10s %10s %10s %8s %10s %10s\n", "machine", "pages", "touch",
		       "fork", "cow", "exit", "work", "x first", "create ms", "destroy ms");
		double base = NAN;
		for (int i = 0; i < nr_curve; i++) {
			const struct curve_series *p = &curve[i];
			if (!p->work.n)
				continue;
			if (isnan(base))
				base = p->work.median;
			printf("%7llu MiB %9llu %10.1f %10.1f %10.1f %10.1f %10.1f %8.2f %10.1f %10.1f\n",
			       (unsigned long long)(p->phys_bytes / MIB), (unsigned long long)p->pages,
			       p->touch.median, p->fork.median, p->cow.median, p->exit.median,
			       p->work.median, p->work.median / base, p->create_ms.median,
			       p->destroy_ms.median);
		}
		if (!isnan(curve_spread))
			printf("work per page, largest / smallest over the sizes: %.2f (target <= 1.25: %s)\n",
			       curve_spread, curve_spread <= 1.25 ? "met" : "missed");
	}
	printf("\n");
	for (int i = 0; i < nr_figures; i++)
		if (figures[i].m->host_note && (i == 0 || figures[i - 1].m->host_note != figures[i].m->host_note))
			printf("no host figure for '%s'...: %s.\n", figures[i].m->label, figures[i].m->host_note);
	for (int i = 0; i < nskips; i++)
		printf("skipped: %s\n", skip_reasons[i]);
	printf("time per case (s):");
	for (int i = 0; i < nr_bench_cases; i++)
		if (case_seconds[i] > 0)
			printf(" %s %.2f", bench_cases[i].name, case_seconds[i]);
	if (nr_curve)
		printf(" curve %.2f", curve_seconds);
	printf("\n");
	printf("background: the library's own threads used %.2f s of CPU (not on the pinned CPU)\n",
	       cs->background_s);
	printf("over the %.1f s run: pinned CPU %d %.1f s ours, %.1f s other processes, %.1f s steal; "
	       "other CPUs busy %.1f s of %.1f s; load average %.2f -> %.2f\n",
	       wall_s, c->cpu, cs->ours_s, cpu_share_others(cs), cs->steal_s, cs->others_busy_s,
	       wall_s * cs->nr_other_cpus, cs->load1_start, cs->load1_end);
	if (machine_noisy(cs, wall_s))
		printf("WARNING: the machine was not idle (shared CPU, cache and memory bandwidth): "
		       "figures are noisy; rerun when it is\n");
	if (nfailed == 0) {
		printf("checks: %d counts (faults, COW copies, reuses, zero-page maps, TLB misses, "
		       "frames and page tables, MERGE reports) all as expected\n", nchecks);
	} else {
		printf("checks: %d of %d samples had counts that differ from what the case meant to cause:\n",
		       nfailed, nchecks);
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

/* Strings written here are ours (labels, uname, cpuinfo): escape quotes and backslashes only. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_series(FILE *f, const struct series *s)
{
	fprintf(f, "{\"median\": ");
	json_number(f, s->median);
	fprintf(f, ", \"min\": ");
	json_number(f, s->min);
	fprintf(f, ", \"max\": ");
	json_number(f, s->max);
	fprintf(f, ", \"samples\": [");
	for (int i = 0; i < s->n; i++) {
		if (i)
			fputs(", ", f);
		json_number(f, s->s[i]);
	}
	fprintf(f, "]}");
}

void write_json(const struct config *c, const struct run_info *ri,
		const struct cpu_share *cs, double wall_s)
{
	const struct cowvm_machine_info *mi = &c->machine;
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
	fprintf(f, ",\n  \"nr_cpus\": %d", ri->nr_cpus);
	fprintf(f, ",\n  \"commit\": ");
	json_string(f, ri->commit);
	fprintf(f, ",\n  \"modified\": %s", ri->dirty ? "true" : "false");
	fprintf(f, ",\n  \"quick\": %s,\n  \"reps\": %d,\n  \"cpu\": %d,\n",
		c->quick ? "true" : "false", c->reps, c->cpu);
	fprintf(f, "  \"cowvm_machine\": {\"phys_bytes\": %llu, \"flags\": %u, \"host_backing\": ",
		(unsigned long long)c->phys_bytes, c->vm_flags);
	json_string(f, backing_name(mi->host_backing));
	fprintf(f, ", \"host_huge_bytes\": %llu, \"struct_page_bytes\": %llu, "
		   "\"mem_map_bytes\": %llu},\n",
		(unsigned long long)mi->host_huge_bytes, (unsigned long long)mi->struct_page_bytes,
		(unsigned long long)mi->mem_map_bytes);
	fprintf(f, "  \"run_seconds\": %.2f,\n  \"pinned_cpu_seconds\": {\"ours\": %.2f, "
		   "\"other_processes\": %.2f, \"steal\": %.2f},\n"
		   "  \"other_cpus_busy_seconds\": %.2f,\n  \"background_cpu_seconds\": %.2f,\n"
		   "  \"load_average\": [%.2f, %.2f],\n  \"noisy\": %s,\n",
		wall_s, cs->ours_s, cpu_share_others(cs), cs->steal_s, cs->others_busy_s,
		cs->background_s, cs->load1_start, cs->load1_end,
		machine_noisy(cs, wall_s) ? "true" : "false");
	fprintf(f, "  \"checks\": {\"total\": %d, \"failed\": %d, \"failures\": [", nchecks, nfailed);
	for (int i = 0; i < nfailed && i < MAX_CHECK_FAILURES; i++) {
		if (i)
			fputs(", ", f);
		json_string(f, check_failures[i]);
	}
	fprintf(f, "]},\n  \"skipped\": [");
	for (int i = 0; i < nskips; i++) {
		if (i)
			fputs(", ", f);
		json_string(f, skip_reasons[i]);
	}
	fprintf(f, "],\n  \"case_seconds\": {");
	bool first = true;
	for (int i = 0; i < nr_bench_cases; i++)
		if (case_seconds[i] > 0) {
			fprintf(f, "%s\"%s\": %.3f", first ? "" : ", ", bench_cases[i].name, case_seconds[i]);
			first = false;
		}
	fprintf(f, "%s\"curve\": %.3f},\n  \"metrics\": {\n", first ? "" : ", ", curve_seconds);
	for (int i = 0; i < nr_figures; i++) {
		const struct figure *fg = &figures[i];
		const struct bench_metric *m = fg->m;
		char target[64];
		target_text(m, target, sizeof(target));
		fprintf(f, "%s    ", i ? ",\n" : "");
		json_string(f, m->key);
		fprintf(f, ": {\"case\": ");
		json_string(f, fg->c->name);
		fprintf(f, ", \"label\": ");
		json_string(f, m->label);
		fprintf(f, ", \"unit\": ");
		json_string(f, m->unit);
		fprintf(f, ",\n      \"host\": ");
		if (fg->c->host)
			json_series(f, &fg->host);
		else
			fprintf(f, "null");
		fprintf(f, ",\n      \"cowvm\": ");
		json_series(f, &fg->cowvm);
		fprintf(f, ",\n      \"ratio\": ");
		json_number(f, fg->ratio);
		if (m->floor) {
			fprintf(f, ", \"floor_kind\": ");
			json_string(f, floor_name(m->floor));
			fprintf(f, ", \"floor_ratio\": ");
			json_number(f, fg->floor_ratio);
			fprintf(f, ",\n      \"floor\": ");
			json_series(f, &fg->floor_vm);
			fprintf(f, ",\n      \"floor_4k\": ");
			json_series(f, &fg->floor_4k);
		}
		fprintf(f, ",\n      \"target\": ");
		json_string(f, target);
		fprintf(f, ", \"status\": ");
		json_string(f, fg->status);
		if (m->host_note) {
			fprintf(f, ", \"host_note\": ");
			json_string(f, m->host_note);
		}
		fputc('}', f);
	}
	fprintf(f, "\n  },\n  \"curve\": {\"spread\": ");
	json_number(f, curve_spread);
	fprintf(f, ", \"target_spread\": 1.25, \"points\": [");
	for (int i = 0; i < nr_curve; i++) {
		const struct curve_series *p = &curve[i];
		fprintf(f, "%s\n    {\"phys_bytes\": %llu, \"pages\": %llu, \"touch\": ", i ? "," : "",
			(unsigned long long)p->phys_bytes, (unsigned long long)p->pages);
		json_series(f, &p->touch);
		fprintf(f, ",\n     \"fork\": ");
		json_series(f, &p->fork);
		fprintf(f, ",\n     \"cow\": ");
		json_series(f, &p->cow);
		fprintf(f, ",\n     \"exit\": ");
		json_series(f, &p->exit);
		fprintf(f, ",\n     \"work\": ");
		json_series(f, &p->work);
		fprintf(f, ",\n     \"create_ms\": ");
		json_series(f, &p->create_ms);
		fprintf(f, ",\n     \"destroy_ms\": ");
		json_series(f, &p->destroy_ms);
		fputc('}', f);
	}
	fprintf(f, "]}\n}\n");
	if (fclose(f))
		fprintf(stderr, "cowvm-bench: writing %s: %s\n", c->json_path, strerror(errno));
}

/* ---- the README's table --------------------------------------------------------------------------- */

void write_markdown(const struct config *c, const struct run_info *ri,
		    const struct cpu_share *cs, double wall_s)
{
	FILE *f = fopen(c->markdown_path, "w");
	if (!f) {
		fprintf(stderr, "cowvm-bench: cannot write %s: %s\n", c->markdown_path, strerror(errno));
		return;
	}
	char day[16];
	snprintf(day, sizeof(day), "%.10s", ri->date);
	fprintf(f, "`make bench`%s, %s, on %s (%d CPUs, %s, Linux %s), commit %s%s: medians of %d "
		   "interleaved rounds [min-max], ns per 4 KiB page unless noted.  The cowvm machine's "
		   "physical memory is on %s.%s\n\n",
		c->quick ? " (quick)" : "", day, ri->cpu_model, ri->nr_cpus, ri->machine, ri->kernel,
		ri->commit, ri->dirty ? " (modified)" : "", c->reps,
		backing_name(c->machine.host_backing),
		machine_noisy(cs, wall_s) ? "  The machine was not idle during the run: the figures "
					    "are noisy." : "");
	fprintf(f, "| metric | unit | host | cowvm | cowvm/host | cowvm/floor | target | holds |\n");
	fprintf(f, "|---|---|---:|---:|---:|---:|---|---|\n");
	for (int i = 0; i < nr_figures; i++) {
		const struct figure *fg = &figures[i];
		char h[80], v[80], r[16], fr[48], target[64];
		fmt_series(h, sizeof(h), &fg->host, true);
		fmt_series(v, sizeof(v), &fg->cowvm, true);
		fmt_ratio(r, sizeof(r), fg->ratio);
		if (fg->m->floor) {
			char x[16];
			fmt_ratio(x, sizeof(x), fg->floor_ratio);
			snprintf(fr, sizeof(fr), "%s (%s)", x, floor_name(fg->m->floor));
		} else {
			snprintf(fr, sizeof(fr), " ");
		}
		target_text(fg->m, target, sizeof(target));
		fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", fg->m->label, fg->m->unit,
			fg->c->host ? h : "-", v, fg->c->host ? r : "-", fr, target,
			strcmp(fg->status, "met") == 0 ? "yes" : strcmp(fg->status, "missed") == 0 ? "**no**" :
			fg->status);
	}
	if (nr_curve) {
		fprintf(f, "\nCost per page against the machine's size (first touch of an eighth of the "
			   "machine, fork, COW break, exit; lazily backed machines):\n\n");
		fprintf(f, "| machine | pages | touch | fork | COW break | exit | work | x smallest |\n");
		fprintf(f, "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		double base = NAN;
		for (int i = 0; i < nr_curve; i++) {
			const struct curve_series *p = &curve[i];
			if (!p->work.n)
				continue;
			if (isnan(base))
				base = p->work.median;
			fprintf(f, "| %llu MiB | %llu | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n",
				(unsigned long long)(p->phys_bytes / MIB), (unsigned long long)p->pages,
				p->touch.median, p->fork.median, p->cow.median, p->exit.median,
				p->work.median, p->work.median / base);
		}
		if (!isnan(curve_spread))
			fprintf(f, "\nLargest / smallest work per page: %.2f (target <= 1.25: %s).\n",
				curve_spread, curve_spread <= 1.25 ? "holds" : "does not hold");
	}
	int met = 0, missed = 0;
	for (int i = 0; i < nr_figures; i++) {
		met += strcmp(figures[i].status, "met") == 0;
		missed += strcmp(figures[i].status, "missed") == 0;
	}
	fprintf(f, "\nTargets: %d hold, %d do not.\n", met, missed);
	if (fclose(f))
		fprintf(stderr, "cowvm-bench: writing %s: %s\n", c->markdown_path, strerror(errno));
}
