/*
 * main.c - cowvm-bench: the host kernel and cowvm side by side, in one run.
 *
 *   cowvm-bench [--quick] [--reps N] [--case NAME,...] [--size LIST|none] [--cpu N]
 *               [--json PATH] [--markdown PATH] [--host-4k]
 *   cowvm-bench --profile CASE [--quick] [--reps N]
 *   cowvm-bench --list
 *
 * The schedule.  Every case of the table (cases.c) runs once per round, and the rounds are the
 * outer loop (round 1 of every case, then round 2 ...), so a burst of other work on the machine
 * spoils one sample of several cases, which the medians drop, rather than every sample of one.
 * Within a case the host and cowvm samples are taken back to back, host first in even rounds
 * and cowvm first in odd ones (so neither side always runs right after the other's work), and
 * then the floors its figures are compared with, over the same number of pages.  Each figure
 * is reported as the median of the rounds (at least 7; 7 by default) with its min-max.
 *
 * Equal warmth.  The host side's pages come from the guest kernel's free lists, touched and
 * freed again just before each sample (host.c: host_warm_pages), so they are backed by the
 * hypervisor and recently used; cowvm's frames are its machine's physical memory, populated
 * at create (COWVM_CONFIG_PREFAULT) and used by the cases before.  Before the first round both
 * sides touch and free twice the largest case's pages, unrecorded.  The floors use memory in
 * the same state (host.c).
 *
 * --size: the cost curve, the same scenario (first touch of an eighth of the machine, fork,
 * COW break of it all, exit) per page on machines of each size, 7 rounds each; its work per
 * page must stay within 25 % over the sizes.  --profile runs only the cowvm side of one case,
 * repeatedly, for perf or callgrind.  --host-4k puts cowvm's physical memory on 4 KiB host pages
 * (COWVM_CONFIG_HOST_4K) instead of transparent huge pages, to measure what the backing is worth.  Results go to a JSON file (build/bench.json) that CI
 * keeps, and to a Markdown table for the README (build/bench.md).
 *
 * The process is pinned to one CPU (the last, which takes fewer interrupts); the host worker,
 * forked before the machine exists, inherits the pinning.  The machine is created while this
 * thread is unpinned, so that any background thread of the library (the pre-zeroing thread of
 * COWVM_CONFIG_PREZERO) may run on the other CPUs; its CPU time is reported.
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

/* ---- checks and samples ------------------------------------------------------------------- */

char check_failures[MAX_CHECK_FAILURES][160];
int nchecks, nfailed;
char skip_reasons[8][200];
int nskips;

void bench_check(struct sample *out, const char *what, uint64_t got, uint64_t want)
{
	out->nchecks++;
	if (got == want)
		return;
	if (out->nfailed++ == 0)
		snprintf(out->failure, sizeof(out->failure), "%s: %llu, expected %llu", what,
			 (unsigned long long)got, (unsigned long long)want);
}

void bench_check_max(struct sample *out, const char *what, uint64_t got, uint64_t max)
{
	out->nchecks++;
	if (got <= max)
		return;
	if (out->nfailed++ == 0)
		snprintf(out->failure, sizeof(out->failure), "%s: %llu, expected <= %llu", what,
			 (unsigned long long)got, (unsigned long long)max);
}

void bench_skip(struct sample *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->failure, sizeof(out->failure), fmt, ap);
	va_end(ap);
	out->skipped = 1;
}

static void sample_init(struct sample *s)
{
	memset(s, 0, sizeof(*s));
	for (int k = 0; k < MAX_CASE_METRICS; k++)
		s->v[k] = NAN;
}

/* Fold a sample's checks into the run's. */
static void sample_checks(const struct sample *s)
{
	nchecks += s->nchecks;
	if (s->nfailed && nfailed < MAX_CHECK_FAILURES)
		snprintf(check_failures[nfailed], sizeof(check_failures[0]), "%s", s->failure);
	nfailed += s->nfailed ? 1 : 0;
}

static void series_add(struct series *s, double v)
{
	if (!isnan(v) && s->n < MAX_REPS)
		s->s[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void series_finish(struct series *s)
{
	if (s->n == 0) {
		s->median = s->min = s->max = NAN;
		return;
	}
	double v[MAX_REPS];
	memcpy(v, s->s, (size_t)s->n * sizeof(*v));
	qsort(v, (size_t)s->n, sizeof(*v), cmp_double);
	s->median = s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
	s->min = v[0];
	s->max = v[s->n - 1];
}

/* ---- figures ----------------------------------------------------------------------------------- */

struct figure figures[MAX_FIGURES];
int nr_figures;
struct curve_series curve[MAX_CURVE_SIZES];
int nr_curve;
double curve_spread = NAN;

static struct figure *figure_of(int case_index, int k)
{
	for (int i = 0; i < nr_figures; i++)
		if (figures[i].case_index == case_index && figures[i].k == k)
			return &figures[i];
	return NULL;
}

static void figures_init(const struct config *c)
{
	for (int i = 0; i < nr_bench_cases; i++) {
		if (!c->selected[i])
			continue;
		const struct bench_case *bc = &bench_cases[i];
		for (int k = 0; k < case_nr_metrics(bc); k++) {
			if (nr_figures == MAX_FIGURES)
				die("more than %d figures", MAX_FIGURES);
			struct figure *f = &figures[nr_figures++];
			memset(f, 0, sizeof(*f));
			f->c = bc;
			f->m = &bc->metrics[k];
			f->case_index = i;
			f->k = k;
		}
	}
}

static void record(int case_index, bool host, const struct sample *s)
{
	sample_checks(s);
	if (s->skipped) {
		bool seen = false;
		for (int i = 0; i < nskips; i++)
			seen |= strncmp(skip_reasons[i], bench_cases[case_index].name,
					strlen(bench_cases[case_index].name)) == 0;
		if (!seen && nskips < 8)
			snprintf(skip_reasons[nskips++], sizeof(skip_reasons[0]), "%s: %s",
				 bench_cases[case_index].name, s->failure);
		return;
	}
	for (int k = 0; k < case_nr_metrics(&bench_cases[case_index]); k++) {
		struct figure *f = figure_of(case_index, k);
		series_add(host ? &f->host : &f->cowvm, s->v[k]);
	}
}

static void finish(void)
{
	for (int i = 0; i < nr_figures; i++) {
		struct figure *f = &figures[i];
		const struct bench_metric *m = f->m;
		series_finish(&f->host);
		series_finish(&f->cowvm);
		series_finish(&f->floor_4k);
		series_finish(&f->floor_vm);
		f->ratio = f->cowvm.median / f->host.median;
		f->floor_ratio = m->floor ? f->cowvm.median / f->floor_vm.median : NAN;
		bool has_target = m->max_host_ratio || m->max_floor_ratio || m->max_value;
		if (f->cowvm.n == 0) {
			f->status = "skipped";
			continue;
		}
		bool met = true;
		if (m->max_host_ratio && !(f->ratio <= m->max_host_ratio))
			met = false;
		if (m->max_floor_ratio && !(f->floor_ratio <= m->max_floor_ratio))
			met = false;
		if (m->max_value && !(f->cowvm.median <= m->max_value))
			met = false;
		f->status = !has_target ? "" : met ? "met" : "missed";
	}
	double lo = INFINITY, hi = 0;
	for (int i = 0; i < nr_curve; i++) {
		struct curve_series *p = &curve[i];
		struct series *all[] = { &p->touch, &p->fork, &p->cow, &p->exit, &p->work,
					 &p->create_ms, &p->destroy_ms };
		for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
			series_finish(all[k]);
		if (p->work.n) {
			lo = p->work.median < lo ? p->work.median : lo;
			hi = p->work.median > hi ? p->work.median : hi;
		}
	}
	if (hi > 0)
		curve_spread = hi / lo;
}

/* ---- the schedule -------------------------------------------------------------------------- */

static void progress(int round, int reps, const char *what)
{
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r%-78s", "");
	fprintf(stderr, "\r  round %d/%d: %s", round + 1, reps, what);
	fflush(stderr);
}

static uint64_t case_param(const struct config *c, const struct bench_case *bc)
{
	return c->quick ? bc->quick_param : bc->param;
}

double case_seconds[256], curve_seconds;

static void run_side(const struct config *c, cowvm_t *vm, int i, bool host, int round)
{
	uint64_t t0 = now_ns();
	const struct bench_case *bc = &bench_cases[i];
	struct sample s;
	sample_init(&s);
	if (host)
		host_run_case(i, case_param(c, bc), round, &s);
	else {
		struct bench_env env = { .quick = c->quick, .round = round, .vm = vm,
					 .vm_flags = c->vm_flags };
		bc->cowvm(&env, case_param(c, bc), &s);
	}
	record(i, host, &s);
	case_seconds[i] += (double)(now_ns() - t0) / 1e9;
}

static void run_floors(const struct config *c, int i)
{
	const struct bench_case *bc = &bench_cases[i];
	bool done[NR_FLOORS] = { false };
	for (int k = 0; k < case_nr_metrics(bc); k++) {
		enum floor_kind kind = bc->metrics[k].floor;
		if (kind == FLOOR_NONE)
			continue;
		static struct sample s[NR_FLOORS];
		if (!done[kind]) {
			sample_init(&s[kind]);
			host_run_floor(kind, case_param(c, bc), c->huge_backing, &s[kind]);
			done[kind] = true;
		}
		struct figure *f = figure_of(i, k);
		series_add(&f->floor_4k, s[kind].v[0]);
		series_add(&f->floor_vm, s[kind].v[1]);
	}
}

static void run_rounds(const struct config *c, cowvm_t *vm)
{
	/* Warm-up, unrecorded: twice the largest fault case's pages, on both sides. */
	uint64_t warm = 0;
	int first_touch = -1;
	for (int i = 0; i < nr_bench_cases; i++)
		if (strcmp(bench_cases[i].name, "first_touch") == 0) {
			first_touch = i;
			warm = 2 * case_param(c, &bench_cases[i]);
		}
	if (first_touch >= 0) {
		struct sample s;
		struct bench_env env = { .quick = c->quick, .vm = vm, .vm_flags = c->vm_flags };
		host_warm(warm);
		sample_init(&s);
		bench_cases[first_touch].cowvm(&env, warm, &s);
	}
	for (int round = 0; round < c->reps; round++) {
		for (int i = 0; i < nr_bench_cases; i++) {
			const struct bench_case *bc = &bench_cases[i];
			if (!c->selected[i])
				continue;
			progress(round, c->reps, bc->name);
			bool host_first = round % 2 == 0;
			for (int side = 0; side < 2; side++) {
				bool host = (side == 0) == host_first;
				if (host && bc->host)
					run_side(c, vm, i, true, round);
				else if (!host && bc->cowvm)
					run_side(c, vm, i, false, round);
			}
			run_floors(c, i);
		}
	}
}

/* The curve: every size once per round, so noise spreads over the sizes as over the cases. */
static void run_curve(const struct config *c)
{
	uint64_t t0 = now_ns();
	nr_curve = c->nr_curve_sizes;
	for (int i = 0; i < nr_curve; i++) {
		memset(&curve[i], 0, sizeof(curve[i]));
		curve[i].phys_bytes = c->curve_sizes[i];
		curve[i].pages = c->curve_sizes[i] / 8 / BENCH_PAGE;
	}
	for (int round = 0; round < c->reps; round++) {
		for (int i = 0; i < nr_curve; i++) {
			struct curve_series *p = &curve[i];
			uint64_t need = p->phys_bytes / 4 + p->phys_bytes / 64 + 256 * MIB;
			if (host_mem_available() < need) {
				if (round == 0 && nskips < 8)
					snprintf(skip_reasons[nskips++], sizeof(skip_reasons[0]),
						 "curve at %llu MiB: needs %llu MiB of host memory",
						 (unsigned long long)(p->phys_bytes / MIB),
						 (unsigned long long)(need / MIB));
				continue;
			}
			char what[64];
			snprintf(what, sizeof(what), "cost curve, %llu MiB machine",
				 (unsigned long long)(p->phys_bytes / MIB));
			progress(round, c->reps, what);
			struct curve_point pt;
			struct sample s;
			sample_init(&s);
			/* Equal warmth: the frames the point will use (its pages, their copies and
			 * tables) come from host memory touched just now, not from memory the VM
			 * handed back to its hypervisor, which costs several times more to touch. */
			host_warm(2 * p->pages + p->pages / 256);
			vm_curve_point(c->vm_flags, p->phys_bytes, &pt, &s);
			sample_checks(&s);
			series_add(&p->touch, pt.touch_ns);
			series_add(&p->fork, pt.fork_ns);
			series_add(&p->cow, pt.cow_ns);
			series_add(&p->exit, pt.exit_ns);
			series_add(&p->work, pt.work_ns);
			series_add(&p->create_ms, pt.create_ms);
			series_add(&p->destroy_ms, pt.destroy_ms);
		}
	}
	curve_seconds = (double)(now_ns() - t0) / 1e9;
}

/* ---- options -------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: cowvm-bench [--quick] [--reps N] [--case NAME,...] [--size LIST|none] [--cpu N]\n"
		"                   [--json PATH] [--markdown PATH] [--host-4k]\n"
		"       cowvm-bench --profile CASE [--quick] [--reps N]\n"
		"       cowvm-bench --list\n"
		"LIST: machine sizes for the cost curve, e.g. 16M,256M,4G\n");
	exit(2);
}

static int case_index(const char *name)
{
	for (int i = 0; i < nr_bench_cases; i++)
		if (strcmp(bench_cases[i].name, name) == 0)
			return i;
	return -1;
}

static uint64_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t mult = 1;
	if (*end == 'K' || *end == 'k')
		mult = KIB, end++;
	else if (*end == 'M' || *end == 'm')
		mult = MIB, end++;
	else if (*end == 'G' || *end == 'g')
		mult = GIB, end++;
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	if (*end || v <= 0)
		die("bad size '%s'", s);
	return (uint64_t)(v * (double)mult);
}

static void parse_sizes(struct config *c, const char *list)
{
	c->nr_curve_sizes = 0;
	if (strcmp(list, "none") == 0)
		return;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		if (c->nr_curve_sizes == MAX_CURVE_SIZES)
			die("at most %d sizes", MAX_CURVE_SIZES);
		uint64_t b = parse_size(tok) & ~(BENCH_PAGE - 1);
		if (b < 16 * MIB)
			die("--size: %s is below 16 MiB", tok);
		c->curve_sizes[c->nr_curve_sizes++] = b;
	}
}

static void select_cases(struct config *c, const char *list)
{
	memset(c->selected, 0, sizeof(c->selected));
	if (!list) {
		for (int i = 0; i < nr_bench_cases; i++) {
			unsigned f = bench_cases[i].flags;
			c->selected[i] = c->quick ? (f & BENCH_QUICK) && !(f & BENCH_BIG) : true;
		}
		return;
	}
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		int i = case_index(tok);
		if (i < 0)
			die("no case '%s' (--list shows them)", tok);
		c->selected[i] = true;
	}
}

static void list_cases(void)
{
	for (int i = 0; i < nr_bench_cases; i++) {
		const struct bench_case *bc = &bench_cases[i];
		printf("%-16s %s%s%s  param %llu (quick %llu)\n", bc->name, bc->host ? "host+" : "",
		       bc->cowvm ? "cowvm" : "", bc->flags & BENCH_BIG ? " (big, full run only)" :
		       bc->flags & BENCH_QUICK ? "" : " (full run only)",
		       (unsigned long long)bc->param, (unsigned long long)bc->quick_param);
		for (int k = 0; k < case_nr_metrics(bc); k++)
			printf("    %-28s %s [%s]\n", bc->metrics[k].key, bc->metrics[k].label,
			       bc->metrics[k].unit);
	}
}

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("cannot pin to CPU %d: %s", cpu, strerror(errno));
}

static void unpin(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	for (long i = 0; i < n && i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* --profile: the cowvm side of one case alone, each repetition's figures on a line. */
static void profile_case(const struct config *c, cowvm_t *vm, const char *name)
{
	int i = case_index(name);
	if (i < 0 || !bench_cases[i].cowvm)
		die("no cowvm case '%s' (--list shows them)", name);
	const struct bench_case *bc = &bench_cases[i];
	for (int rep = 0; rep < c->reps; rep++) {
		struct sample s;
		struct bench_env env = { .quick = c->quick, .round = rep, .vm = vm,
					 .vm_flags = c->vm_flags };
		sample_init(&s);
		bc->cowvm(&env, case_param(c, bc), &s);
		printf("%s %d:", name, rep + 1);
		for (int k = 0; k < case_nr_metrics(bc); k++)
			printf(" %s %.2f", bc->metrics[k].key, s.v[k]);
		printf("%s%s\n", s.nfailed ? "  CHECK FAILED: " : "", s.nfailed ? s.failure : "");
	}
}

int main(int argc, char **argv)
{
	struct config c;
	memset(&c, 0, sizeof(c));
	int reps = 0, cpu = -1;
	bool host_4k = false;
	const char *profile = NULL, *cases = NULL, *sizes = NULL;
	c.json_path = "build/bench.json";
	c.markdown_path = "build/bench.md";

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			c.quick = true;
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc)
			cpu = atoi(argv[++i]);
		else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc)
			cases = argv[++i];
		else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			sizes = argv[++i];
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			c.json_path = argv[++i];
		else if (strcmp(argv[i], "--markdown") == 0 && i + 1 < argc)
			c.markdown_path = argv[++i];
		else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc)
			profile = argv[++i];
		else if (strcmp(argv[i], "--host-4k") == 0)
			host_4k = true;
		else if (strcmp(argv[i], "--list") == 0) {
			list_cases();
			return 0;
		} else
			usage();
	}
	c.reps = 7;
	if (reps) {
		/* --profile keeps no samples, so it may repeat as long as a profiler needs */
		if (reps < 1 || (reps > MAX_REPS && !profile))
			die("--reps must be 1..%d", MAX_REPS);
		c.reps = reps;
	}
	c.phys_bytes = c.quick ? 512 * MIB : 2 * GIB;
	c.vm_flags = COWVM_CONFIG_NO_POISON | COWVM_CONFIG_PREFAULT |
		     (host_4k ? COWVM_CONFIG_HOST_4K : 0);
	select_cases(&c, cases);
	parse_sizes(&c, sizes ? sizes : cases ? "none" :
		    c.quick ? "16M,128M,512M" : "16M,64M,256M,1G,4G,16G");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c.cpu = cpu >= 0 ? cpu : (int)(ncpu > 1 ? ncpu - 1 : 0); /* the last CPU: fewer interrupts */

	struct run_info ri;
	run_info_init(&ri);
	figures_init(&c);

	/* Pinned before the worker is forked (it inherits that); unpinned while the machine is made. */
	pin_to_cpu(c.cpu);
	if (!profile)
		host_worker_start(c.quick);
	unpin();
	struct cowvm_config cfg = { .phys_bytes = c.phys_bytes, .flags = c.vm_flags };
	cowvm_t *vm = cowvm_create(&cfg);
	if (!vm)
		die("cowvm_create of %llu MiB: %s", (unsigned long long)(c.phys_bytes / MIB),
		    strerror(errno));
	pin_to_cpu(c.cpu);
	if (cowvm_machine_info(vm, &c.machine))
		die("cowvm_machine_info");
	c.huge_backing = c.machine.host_huge_bytes > c.machine.phys_bytes / 2;

	if (profile) {
		profile_case(&c, vm, profile);
		cowvm_destroy(vm);
		return 0;
	}
	struct cpu_share share;
	cpu_share_start(&share, c.cpu);
	uint64_t t0 = now_ns();
	run_rounds(&c, vm);
	char why[256];
	if (cowvm_check(vm, why, sizeof(why)))
		die("the machine's invariants broke during the run: %s", why);
	if (cowvm_machine_info(vm, &c.machine))
		die("cowvm_machine_info");
	cowvm_destroy(vm);
	run_curve(&c);
	host_worker_stop();
	cpu_share_end(&share, c.cpu);
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r%-78s\r", "");
	double wall_s = (double)(now_ns() - t0) / 1e9;
	finish();
	print_table(&c, &ri, &share, wall_s);
	write_json(&c, &ri, &share, wall_s);
	write_markdown(&c, &ri, &share, wall_s);
	printf("results written to %s and %s\n", c.json_path, c.markdown_path);
	return nfailed ? 1 : 0;
}
