/*
 * smoke_main.c - fuzz-smoke: the regressions, deterministic seeded operation sequences against
 * the model, then the fault-injection sweep.
 *
 *   fuzz-smoke [--ops N] [--per-seed M] [--seed S] [--first-seed S] [--jobs J]
 *              [--phys MIB] [--max-pages N] [--check-every N] [--compare-every N] [--inject-one-in N]
 *              [--avoid LIST] [--no-sweep | --sweep-only] [--no-regress | --regress-only]
 *              [--no-minimize] [--verbose]
 *   fuzz-smoke --replay FILE      play an operation list (as written on failure)
 *   fuzz-smoke --c FILE           print an operation list as a C program over the public API
 *
 * Defaults: first the regressions (regress.c: every bug found so far, minimised; one whose
 * bug is still open fails the run unless FUZZ_KNOWN_OK=1); then 100000 operations as seeds
 * 1, 2, ... of 2500 operations each, two seeds at a time (each in its own process, so that a
 * crash is reported with its seed and operation), on machines of 4, 8 or 16 MiB (by seed)
 * with 1 or 2 CPUs, cowvm_check after every operation, the open bugs' inputs avoided
 * (FUZZ_KNOWN); then the sweep.  --seed S runs that seed alone (with --ops N operations) -
 * the command a failure report gives.  FUZZ_AVOID in the environment is read as --avoid.
 *
 * On a divergence or crash: the seed, the operation index, what differed, the command that
 * repeats it, and the operations written to /tmp/fuzz-smoke-SEED.ops; then the list is
 * minimised (each candidate replayed in a child process, same failure class required) and
 * written as .min.ops and as a C program .min.c.  Exit status 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

/* Sanitizer settings that do not depend on the environment: any UBSan report stops the
 * process (the Makefile builds without -fno-sanitize-recover), so it fails its seed. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* LeakSanitizer's check, when built with ASan (weak: absent otherwise). */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

struct options {
	uint64_t ops, per_seed, seed, first_seed;
	int one_seed, jobs, sweep, random, regress, minimize, verbose;
	uint64_t phys_mib;
	struct fuzz_config cfg;
	const char *replay, *print_c, *avoid;
};

/* What a worker leaves for the parent (shared memory). */
struct job {
	volatile uint64_t ops_done;
	volatile size_t nlog;
	int status; /* 0 ok, 1 divergence */
	size_t fail_index;
	char cls[32];
	char why[768];
	struct fuzz_stats st;
	size_t logcap;
	struct fuzz_op log[];
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fuzz-smoke [--ops N] [--per-seed M] [--seed S] [--first-seed S] [--jobs J]\n"
		"                  [--phys MIB] [--max-pages N] [--check-every N] [--compare-every N]\n"
		"                  [--inject-one-in N]\n"
		"                  [--avoid LIST] [--no-sweep | --sweep-only] [--no-regress | --regress-only]\n"
		"                  [--no-minimize] [--verbose]\n"
		"   LIST: none | known | unaligned-hint,bad-mmap-args,mprotect-order,brk-hole,\n"
		"         mprotect-merge,inject,copy-top,pin-shared,dput-empty-source,\n"
		"         merge-shmem,dput-shmem-overlap,dput-oom-hole\n"
		"         (default: known, the open bugs)\n"
		"       fuzz-smoke --replay FILE | --c FILE\n");
	exit(2);
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		usage();
	return v;
}

/* The machine a seed runs on, unless --phys says. */
static struct fuzz_config seed_config(const struct options *o, uint64_t seed)
{
	struct fuzz_config c = o->cfg;
	static const uint64_t mib[3] = { 4, 8, 16 };
	c.phys_bytes = (o->phys_mib ? o->phys_mib : mib[seed % 3]) << 20;
	c.nr_cpus = 1 + (unsigned)((seed / 3) % 2);
	return c;
}

static void run_seed(const struct options *o, uint64_t seed, uint64_t nops, struct job *job)
{
	struct fuzz_config cfg = seed_config(o, seed);
	struct fuzz_run *r = fuzz_run_new(&cfg);
	if (!r)
		_exit(3);
	r->log = job->log;
	r->logcap = job->logcap;
	r->log_fixed = 1;
	struct fuzz_src src;
	fuzz_src_seed(&src, seed);
	for (uint64_t i = 0; i < nops && !r->failed; i++) {
		struct fuzz_op op;
		fuzz_gen(r, &src, &op);
		/* fuzz_exec logs the operation before anything else: if it crashes, the parent
		 * must already count it */
		job->nlog = r->nlog < r->logcap ? r->nlog + 1 : r->nlog;
		job->ops_done = i + 1;
		fuzz_exec(r, &op);
		job->nlog = r->nlog;
	}
	if (!r->failed)
		fuzz_finish(r);
	job->st = r->st;
	job->status = r->failed;
	job->fail_index = r->fail_index;
	snprintf(job->cls, sizeof(job->cls), "%s", r->fail_class);
	snprintf(job->why, sizeof(job->why), "%s", r->why);
	r->log = NULL;
	fuzz_run_free(r);
	/* host memory the library (or the model) lost: workers _exit, so check here */
	if (!job->status && __lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) {
		job->status = 1;
		job->fail_index = job->nlog;
		snprintf(job->cls, sizeof(job->cls), "host-leak");
		snprintf(job->why, sizeof(job->why), "LeakSanitizer found host memory not freed "
			 "after cowvm_destroy (report above)");
	}
	_exit(job->status);
}

/* ---- minimisation ------------------------------------------------------------------------------ */

static void crash_class(char *out, size_t len, int st)
{
	if (WIFSIGNALED(st))
		snprintf(out, len, "crash-sig%d", WTERMSIG(st));
	else
		snprintf(out, len, "crash-exit%d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* Replay in a child process: does it fail the same way?  (A crash is class "crash-SIGn".) */
static int fails_same(const struct fuzz_config *cfg, const struct fuzz_op *ops, size_t n,
		      const char *cls)
{
	int fd[2];
	if (pipe(fd))
		return 0;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		close(fd[0]);
		if (!freopen("/dev/null", "w", stderr))
			_exit(4);
		char c[32] = "";
		size_t at;
		int ret = fuzz_replay(cfg, ops, n, 1, c, sizeof(c), &at);
		if (write(fd[1], c, sizeof(c)) < 0)
			_exit(4);
		_exit(ret ? 1 : 0);
	}
	close(fd[1]);
	char got[32] = "";
	ssize_t rd = read(fd[0], got, sizeof(got));
	close(fd[0]);
	int st;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (rd <= 0 || !got[0]) /* died before saying why: a crash (ASan exits 1) */
		crash_class(got, sizeof(got), st);
	return !strcmp(got, cls);
}

/* Remove chunks of operations while the failure stays; returns the new length. */
static size_t minimize(const struct fuzz_config *cfg, struct fuzz_op *ops, size_t n, const char *cls,
		       double budget)
{
	double deadline = now() + budget;
	struct fuzz_op *tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return n;
	for (size_t chunk = n / 2 ? n / 2 : 1;; chunk = chunk / 2 ? chunk / 2 : 1) {
		int changed = 0;
		for (size_t start = 0; start < n && now() < deadline;) {
			size_t len = start + chunk <= n ? chunk : n - start;
			memcpy(tmp, ops, start * sizeof(*ops));
			memcpy(tmp + start, ops + start + len, (n - start - len) * sizeof(*ops));
			if (n - len > 0 && fails_same(cfg, tmp, n - len, cls)) {
				memcpy(ops, tmp, (n - len) * sizeof(*ops));
				n -= len;
				changed = 1;
			} else {
				start += len;
			}
		}
		if (now() >= deadline || (chunk == 1 && !changed))
			break;
	}
	/* then make each operation plainer: no injection */
	for (size_t i = 0; i < n && now() < deadline; i++) {
		if (!ops[i].inject)
			continue;
		ops[i].inject = 0;
		if (!fails_same(cfg, ops, n, cls))
			ops[i].inject = 1;
	}
	free(tmp);
	return n;
}

static void write_ops(const char *path, const struct fuzz_config *cfg, const struct fuzz_op *ops,
		      size_t n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "# cowvm fuzz ops phys=%llu cpus=%u\n", (unsigned long long)cfg->phys_bytes,
		cfg->nr_cpus);
	fuzz_print_ops(f, ops, n);
	fclose(f);
}

static void report_failure(const struct options *o, uint64_t seed, struct job *job, int st)
{
	struct fuzz_config cfg = seed_config(o, seed);
	size_t n = job->nlog;
	char cls[32];
	int crashed = !(WIFEXITED(st) && WEXITSTATUS(st) == 1 && job->status == 1);
	size_t at = crashed ? (n ? n - 1 : 0) : job->fail_index;
	if (crashed)
		crash_class(cls, sizeof(cls), st);
	else
		snprintf(cls, sizeof(cls), "%s", job->cls);
	fprintf(stderr, "\nfuzz-smoke: FAILURE seed %llu, operation %zu: [%s] %s\n",
		(unsigned long long)seed, at, cls,
		!crashed ? job->why : WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "crashed (see the sanitizer report above)");
	char extra[160] = "";
	if (o->phys_mib)
		snprintf(extra, sizeof(extra), " --phys %llu", (unsigned long long)o->phys_mib);
	if (o->avoid)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " --avoid %s", o->avoid);
	fprintf(stderr, "  repeat: fuzz-smoke --seed %llu --ops %llu%s (per-seed settings as in this run)\n",
		(unsigned long long)seed, (unsigned long long)(job->ops_done), extra);
	if (n > at + 1)
		n = at + 1;
	char path[128];
	snprintf(path, sizeof(path), "/tmp/fuzz-smoke-%llu.ops", (unsigned long long)seed);
	write_ops(path, &cfg, job->log, n);
	fprintf(stderr, "  operations 0..%zu: %s (fuzz-smoke --replay %s)\n", n ? n - 1 : 0, path, path);
	size_t show = n < 12 ? n : 12;
	fprintf(stderr, "  last %zu operations:\n", show);
	for (size_t i = n - show; i < n; i++) {
		char line[256];
		fuzz_format_op(line, sizeof(line), &job->log[i]);
		fprintf(stderr, "    %6zu %s\n", i, line);
	}
	/* minimise the first failure of each kind only (class + operation), at most four */
	static char seen[16][48];
	static int nseen;
	char sig[48];
	snprintf(sig, sizeof(sig), "%s/%s", cls, n ? fuzz_kind_name(job->log[n - 1].kind) : "-");
	for (int i = 0; i < nseen; i++)
		if (!strcmp(seen[i], sig)) {
			fprintf(stderr, "  (same kind of failure as one already minimised: %s)\n", sig);
			return;
		}
	if (nseen < 16)
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", sig);
	if (!o->minimize || !n || nseen > 4)
		return;
	if (!fails_same(&cfg, job->log, n, cls)) {
		fprintf(stderr, "  (the replayed list does not fail the same way; not minimised)\n");
		return;
	}
	size_t m = minimize(&cfg, job->log, n, cls, 120.0);
	snprintf(path, sizeof(path), "/tmp/fuzz-smoke-%llu.min.ops", (unsigned long long)seed);
	write_ops(path, &cfg, job->log, m);
	char cpath[128];
	snprintf(cpath, sizeof(cpath), "/tmp/fuzz-smoke-%llu.min.c", (unsigned long long)seed);
	FILE *f = fopen(cpath, "w");
	if (f) {
		fuzz_print_c(f, &cfg, job->log, m);
		fclose(f);
	}
	fprintf(stderr, "  minimised to %zu operations: %s, as C: %s\n", m, path, cpath);
	if (m <= 40)
		for (size_t i = 0; i < m; i++) {
			char line[256];
			fuzz_format_op(line, sizeof(line), &job->log[i]);
			fprintf(stderr, "    %s\n", line);
		}
	if (!crashed) { /* say what the minimal list shows */
		char c[32];
		size_t idx;
		fprintf(stderr, "  minimal list fails with: ");
		fuzz_replay(&cfg, job->log, m, 0, c, sizeof(c), &idx);
	}
}

/* ---- the random phase ---------------------------------------------------------------------------- */

static int run_random(const struct options *o, struct fuzz_stats *total, unsigned *nseeds)
{
	uint64_t per = o->one_seed ? o->ops : o->per_seed;
	uint64_t seeds = o->one_seed ? 1 : (o->ops + per - 1) / per;
	size_t logcap = per < 200000 ? per : 200000;
	size_t jobsize = sizeof(struct job) + logcap * sizeof(struct fuzz_op);
	int jobs = o->jobs < 1 ? 1 : o->jobs;
	struct job *slot_job[64];
	pid_t slot_pid[64];
	uint64_t slot_seed[64];
	int failures = 0;
	if (jobs > 64)
		jobs = 64;
	for (int j = 0; j < jobs; j++) {
		slot_job[j] = mmap(NULL, jobsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (slot_job[j] == MAP_FAILED) {
			perror("mmap");
			exit(3);
		}
		slot_pid[j] = 0;
	}
	uint64_t next = 0, done = 0;
	double t0 = now(), last_print = t0;
	while (done < seeds) {
		for (int j = 0; j < jobs && next < seeds; j++) {
			if (slot_pid[j])
				continue;
			uint64_t seed = o->one_seed ? o->seed : o->first_seed + next;
			uint64_t nops = o->one_seed ? o->ops : (o->ops - next * per < per ? o->ops - next * per : per);
			next++;
			memset(slot_job[j], 0, sizeof(struct job));
			slot_job[j]->logcap = logcap;
			slot_seed[j] = seed;
			fflush(NULL);
			pid_t pid = fork();
			if (pid < 0) {
				perror("fork");
				exit(3);
			}
			if (pid == 0)
				run_seed(o, seed, nops, slot_job[j]);
			slot_pid[j] = pid;
		}
		int st;
		pid_t pid = wait(&st);
		if (pid < 0)
			break;
		int j;
		for (j = 0; j < jobs && slot_pid[j] != pid; j++)
			;
		if (j == jobs)
			continue;
		slot_pid[j] = 0;
		done++;
		struct job *job = slot_job[j];
		total->ops += job->ops_done;
		(*nseeds)++;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			total->injected += job->st.injected;
			total->natural_oom += job->st.natural_oom;
			total->checks += job->st.checks;
			total->compares += job->st.compares;
			total->pages_compared += job->st.pages_compared;
			total->long_accesses += job->st.long_accesses;
			total->dput_ok += job->st.dput_ok;
			total->dput_cow += job->st.dput_cow;
			total->snaps += job->st.snaps;
			total->merges += job->st.merges;
			total->merge_conflicts += job->st.merge_conflicts;
			total->merge_pages += job->st.merge_pages;
			total->dput_resyncs += job->st.dput_resyncs;
			total->snapshots += job->st.snapshots;
			total->restores += job->st.restores;
			total->snapshot_busy += job->st.snapshot_busy;
			for (int k = 0; k < FOP_NKINDS; k++)
				total->by_kind[k] += job->st.by_kind[k];
		} else {
			failures++;
			report_failure(o, slot_seed[j], job, st);
		}
		if (o->verbose || now() - last_print > 10) {
			last_print = now();
			fprintf(stderr, "fuzz-smoke: %llu/%llu seeds, %llu operations, %.0f ops/s\n",
				(unsigned long long)done, (unsigned long long)seeds,
				(unsigned long long)total->ops, total->ops / (now() - t0));
		}
	}
	for (int j = 0; j < jobs; j++)
		munmap(slot_job[j], jobsize);
	return failures;
}

/* ---- the sweep ----------------------------------------------------------------------------------- */

static int run_sweep(const struct options *o, unsigned *nruns)
{
	struct fuzz_config cfg = o->cfg;
	cfg.phys_bytes = (o->phys_mib ? o->phys_mib : 4) << 20;
	cfg.nr_cpus = 1;
	int failures = 0;
	for (int i = 0; i < fuzz_sweep_count(); i++) {
		int fd[2];
		if (pipe(fd))
			exit(3);
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			close(fd[0]);
			unsigned runs = 0;
			int ret = fuzz_sweep_one(&cfg, i, &runs, o->verbose);
			if (write(fd[1], &runs, sizeof(runs)) < 0)
				_exit(4);
			_exit(ret ? 1 : 0);
		}
		close(fd[1]);
		unsigned runs = 0;
		if (read(fd[0], &runs, sizeof(runs)) != sizeof(runs))
			runs = 0;
		close(fd[0]);
		int st;
		waitpid(pid, &st, 0);
		*nruns += runs;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			fprintf(stderr, "sweep: %-48s %4u runs (allocations 1..%u failed in turn), clean\n",
				fuzz_sweep_name(i), runs, runs ? runs - 1 : 0);
		} else {
			failures++;
			fprintf(stderr, "sweep: %-48s FAILED%s%s\n", fuzz_sweep_name(i),
				WIFSIGNALED(st) ? ": " : "", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "");
		}
	}
	return failures;
}

/* ---- the regressions ------------------------------------------------------------------------------ */

/* Each in a child process, so that a crash is a failure with a name. */
static int run_regress(const struct options *o, int *open_bugs)
{
	int failures = 0;
	for (int i = 0; i < fuzz_regress_count(); i++) {
		int fd[2];
		if (pipe(fd))
			exit(3);
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			close(fd[0]);
			char why[1024] = "";
			int ret = fuzz_regress_one(i, !o->verbose, why, sizeof(why));
			if (write(fd[1], why, strlen(why) + 1) < 0)
				_exit(4);
			_exit(ret ? 1 : 0);
		}
		close(fd[1]);
		char why[1024] = "";
		ssize_t rd = read(fd[0], why, sizeof(why) - 1);
		why[rd > 0 ? rd : 0] = 0;
		close(fd[0]);
		int st;
		waitpid(pid, &st, 0);
		unsigned known = fuzz_regress_known(i);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			fprintf(stderr, "regress: %-46s ok%s\n", fuzz_regress_name(i),
				known ? " (fixed? take its bit out of FUZZ_KNOWN)" : "");
			continue;
		}
		failures++;
		if (known)
			(*open_bugs)++;
		fprintf(stderr, "regress: %-46s FAILED%s%s%s\n    %s\n", fuzz_regress_name(i),
			known ? " (open bug; random runs avoid it: " : "", known ? fuzz_avoid_name(known) : "",
			known ? ")" : "", why[0] ? why : "crashed");
	}
	return failures;
}

/* ---- replay and conversion --------------------------------------------------------------------- */

static struct fuzz_op *read_ops(const char *path, struct fuzz_config *cfg, size_t *n)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(2);
	}
	size_t cap = 1024;
	struct fuzz_op *ops = malloc(cap * sizeof(*ops));
	char line[512];
	*n = 0;
	while (ops && fgets(line, sizeof(line), f)) {
		unsigned long long phys;
		unsigned cpus;
		if (sscanf(line, "# cowvm fuzz ops phys=%llu cpus=%u", &phys, &cpus) == 2) {
			cfg->phys_bytes = phys;
			cfg->nr_cpus = cpus;
			continue;
		}
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (*n == cap) {
			cap *= 2;
			ops = realloc(ops, cap * sizeof(*ops));
			if (!ops)
				break;
		}
		if (fuzz_parse_op(line, &ops[*n])) {
			fprintf(stderr, "%s: cannot parse: %s", path, line);
			exit(2);
		}
		(*n)++;
	}
	fclose(f);
	if (!ops)
		exit(3);
	return ops;
}

int main(int argc, char **argv)
{
	struct options o = { .ops = 100000, .per_seed = 2500, .first_seed = 1, .jobs = 2, .sweep = 1,
			     .random = 1, .regress = 1, .minimize = 1 };
	fuzz_config_default(&o.cfg);
	const char *env = getenv("FUZZ_AVOID");
	if (env && *env && (o.cfg.avoid = fuzz_parse_avoid(env)) == ~0u)
		usage();
	if (env && *env)
		o.avoid = env;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
		if (ARG("--ops"))
			o.ops = num(v);
		else if (ARG("--per-seed"))
			o.per_seed = num(v);
		else if (ARG("--seed"))
			o.seed = num(v), o.one_seed = 1;
		else if (ARG("--first-seed"))
			o.first_seed = num(v);
		else if (ARG("--jobs"))
			o.jobs = (int)num(v);
		else if (ARG("--phys"))
			o.phys_mib = num(v);
		else if (ARG("--check-every"))
			o.cfg.check_every = (unsigned)num(v);
		else if (ARG("--compare-every"))
			o.cfg.compare_every = (unsigned)num(v);
		else if (ARG("--max-pages"))
			o.cfg.max_pages = (unsigned)num(v);
		else if (ARG("--inject-one-in"))
			o.cfg.inject_one_in = (unsigned)num(v);
		else if (ARG("--avoid")) {
			if ((o.cfg.avoid = fuzz_parse_avoid(v)) == ~0u)
				usage();
			o.avoid = v;
		} else if (ARG("--replay"))
			o.replay = v;
		else if (ARG("--c"))
			o.print_c = v;
		else if (!strcmp(a, "--no-sweep"))
			o.sweep = 0;
		else if (!strcmp(a, "--sweep-only"))
			o.random = 0, o.regress = 0;
		else if (!strcmp(a, "--no-regress"))
			o.regress = 0;
		else if (!strcmp(a, "--regress-only"))
			o.random = 0, o.sweep = 0;
		else if (!strcmp(a, "--no-minimize"))
			o.minimize = 0;
		else if (!strcmp(a, "--verbose"))
			o.verbose = 1;
		else
			usage();
	}
	if (o.one_seed)
		o.sweep = 0, o.regress = 0;
	if (!o.per_seed)
		usage();

	if (o.replay || o.print_c) {
		struct fuzz_config cfg = o.cfg;
		size_t n;
		struct fuzz_op *ops = read_ops(o.replay ? o.replay : o.print_c, &cfg, &n);
		if (o.phys_mib)
			cfg.phys_bytes = o.phys_mib << 20;
		if (o.print_c) {
			fuzz_print_c(stdout, &cfg, ops, n);
			free(ops);
			return 0;
		}
		size_t at;
		char cls[32];
		int ret = fuzz_replay(&cfg, ops, n, 0, cls, sizeof(cls), &at);
		printf("fuzz-smoke: replayed %zu operations: %s\n", n, ret ? "FAILED" : "clean");
		free(ops);
		return ret ? 1 : 0;
	}

	double t0 = now();
	struct fuzz_stats total = { 0 };
	unsigned nseeds = 0, sweep_runs = 0;
	int failures = 0, sweep_failures = 0, regress_failures = 0, open_bugs = 0;
	if (o.regress) {
		regress_failures = run_regress(&o, &open_bugs);
		printf("fuzz-smoke: regressions: %d, %d failed (%d of them open bugs listed in FUZZ_KNOWN)\n",
		       fuzz_regress_count(), regress_failures, open_bugs);
		t0 = now();
	}
	if (o.random)
		failures = run_random(&o, &total, &nseeds);
	double t1 = now();
	if (o.random) {
		printf("fuzz-smoke: %llu operations, %u seeds, %d failures (%.1f s, %.0f ops/s; "
		       "%llu injected failures met, %llu real OOMs, %llu checks, %llu full compares, "
		       "%llu pages compared, %llu accesses over 64 pages)\n",
		       (unsigned long long)total.ops, nseeds, failures, t1 - t0,
		       total.ops / (t1 - t0 > 0 ? t1 - t0 : 1), (unsigned long long)total.injected,
		       (unsigned long long)total.natural_oom, (unsigned long long)total.checks,
		       (unsigned long long)total.compares, (unsigned long long)total.pages_compared,
		       (unsigned long long)total.long_accesses);
		printf("fuzz-smoke: dput/dget: %llu COPY/ZERO done (%llu with a shared middle), %llu SNAPs, "
		       "%llu MERGEs (%llu with conflicts, %llu pages to merge), %llu cut short by -ENOMEM and followed\n",
		       (unsigned long long)total.dput_ok, (unsigned long long)total.dput_cow,
		       (unsigned long long)total.snaps, (unsigned long long)total.merges,
		       (unsigned long long)total.merge_conflicts, (unsigned long long)total.merge_pages,
		       (unsigned long long)total.dput_resyncs);
		printf("fuzz-smoke: snapshots: %llu taken (%llu refused for a pin), %llu restores checked "
		       "in full against the model's image\n", (unsigned long long)total.snapshots,
		       (unsigned long long)total.snapshot_busy, (unsigned long long)total.restores);
		if (o.verbose) {
			for (int k = 0; k < FOP_NKINDS; k++)
				printf("  %-15s %llu\n", fuzz_kind_name(k), (unsigned long long)total.by_kind[k]);
		}
	}
	if (o.sweep) {
		sweep_failures = run_sweep(&o, &sweep_runs);
		printf("fuzz-smoke: sweep: %d scenarios, %u injection runs, %d failures (%.1f s)\n",
		       fuzz_sweep_count(), sweep_runs, sweep_failures, now() - t1);
	}
	fflush(stdout);
	/* FUZZ_KNOWN_OK=1: the open bugs' regressions are reported but do not fail the run */
	const char *ok = getenv("FUZZ_KNOWN_OK");
	if (ok && !strcmp(ok, "1"))
		regress_failures -= open_bugs;
	return failures || sweep_failures || regress_failures ? 1 : 0;
}
