/*
 * host.c - the host kernel's side of every case, and the memcpy/memset floors.
 *
 * All of it runs in a worker process forked at start-up, before the cowvm machine (gigabytes of
 * prefaulted memory) exists: a fork made by the process holding the machine would copy its page
 * tables too, and the host's fork and COW figures would measure that.  The worker inherits the
 * CPU pinning; the main process waits on the pipe while the worker measures, so the two never
 * compete for the CPU.
 *
 * How each case is kept honest (reference/host-kernel-notes.md):
 *  - every region is private anonymous memory with MADV_NOHUGEPAGE (the host kernel's 4 KiB
 *    fault path is what cowvm models);
 *  - warmth: before a case allocates pages, host_warm_pages touches and frees as many, so they
 *    come from the guest kernel's free lists, backed by the hypervisor and recently used, and
 *    not from memory the VM handed back to its host (which costs 10x more to touch again);
 *  - faults are counted around the region operation only, after the stack has been faulted
 *    in (fork leaves the caller's stack write-protected too); each case checks the count;
 *  - the child of a fork blocks on a pipe, so that if it runs first it costs a few
 *    microseconds and not its exit.
 *
 * The floors are the bare copy or clear of the same number of 4 KiB pages in memory that is in
 * the state the cases' pages are in: mapped and backed (populated, so no fault is timed), last
 * written one word per page, and cache-cold (the regions are twice the last-level cache and
 * the loop starts with the pages written longest ago).  Each is measured twice: on 4 KiB host
 * pages, as the host cases' memory is, and on memory backed as cowvm's physical memory is
 * (transparent huge pages when the machine got them), since a copy into memory without TLB
 * misses is cheaper and cowvm must be held to the floor of its own memory.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static char *map_region(uint64_t pages)
{
	char *p = mmap(NULL, pages * BENCH_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("host: mmap of %llu pages: %s", (unsigned long long)pages, strerror(errno));
	if (madvise(p, pages * BENCH_PAGE, MADV_NOHUGEPAGE))
		die("host: MADV_NOHUGEPAGE: %s", strerror(errno));
	return p;
}

static void unmap_region(char *p, uint64_t pages)
{
	if (munmap(p, pages * BENCH_PAGE))
		die("host: munmap: %s", strerror(errno));
}

/* One 8-byte store per page: the user's write that faults. */
static void touch_pages(char *p, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		*(volatile uint64_t *)(p + i * BENCH_PAGE) = i + 1;
}

static uint64_t read_pages(char *p, uint64_t pages)
{
	uint64_t sum = 0;
	for (uint64_t i = 0; i < pages; i++)
		sum += *(volatile uint64_t *)(p + i * BENCH_PAGE);
	return sum;
}

static uint64_t minor_faults(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		die("host: getrusage: %s", strerror(errno));
	return (uint64_t)ru.ru_minflt;
}

/* The top of the worker loop's frame: every case's stack lies below it. */
static volatile char *stack_base;

/*
 * After fork the parent's own pages are write-protected too: its stack, and the thread area
 * where the kernel writes the rseq CPU number whenever the thread is scheduled back in (a
 * preemption inside the timed loop would otherwise add one COW fault to the count).  Fault
 * both in before the count starts.  Writing cpu_id_start back unchanged is harmless: the
 * program is pinned, so the kernel would write the same value.
 *
 * The stack: minor_faults() writes the pages below this frame; each page from here up to the
 * worker loop's frame is written too (a byte read and written back unchanged), because the
 * case's frame may straddle a page boundary and the timed region writes to it (clock_gettime's
 * timespec): with the wrong stack offset (ASLR) that was one COW fault more in one run of
 * two or three.
 */
static void fault_in_own_pages(void)
{
	minor_faults();
	volatile char here = 0;
	for (uintptr_t a = (uintptr_t)&here & ~(uintptr_t)(BENCH_PAGE - 1);
	     stack_base && a <= (uintptr_t)stack_base; a += BENCH_PAGE) {
		volatile char *b = (volatile char *)(a > (uintptr_t)&here ? a : (uintptr_t)&here);
		*b = *b;
	}
	if (__rseq_size > 0) {
		volatile uint32_t *cpu_id_start =
			(volatile uint32_t *)((char *)__builtin_thread_pointer() + __rseq_offset);
		*cpu_id_start = *cpu_id_start;
	}
}

/* Touch and free as many pages as the case will allocate. */
static void host_warm_pages(uint64_t pages)
{
	if (!pages)
		return;
	char *p = map_region(pages);
	touch_pages(p, pages);
	unmap_region(p, pages);
}

static void make_pipe(int fd[2])
{
	if (pipe(fd))
		die("host: pipe: %s", strerror(errno));
}

/* A child that waits on the pipe (until its write end closes) and then exits. */
static pid_t fork_waiting_child(int fd[2])
{
	pid_t pid = fork();
	if (pid < 0)
		die("host: fork: %s", strerror(errno));
	if (pid == 0) {
		char c;
		close(fd[1]);
		while (read(fd[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("host: waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("host: child %d failed (status %#x)", (int)pid, status);
}

/* ---- the fault cases: v[0] ns per page, the fault count checked ------------------------------ */

void host_first_touch(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	(void)env;
	host_warm_pages(pages);
	char *p = map_region(pages);
	minor_faults();
	uint64_t f0 = minor_faults();
	uint64_t t0 = now_ns();
	touch_pages(p, pages);
	uint64_t t1 = now_ns();
	uint64_t f1 = minor_faults();
	unmap_region(p, pages);
	out->v[0] = (double)(t1 - t0) / (double)pages;
	bench_check(out, "host first touch: faults", f1 - f0, pages);
}

/* v[0] the read fault (zero page), v[1] the write after it. */
void host_zero_read(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	(void)env;
	host_warm_pages(pages);
	char *p = map_region(pages);
	minor_faults();
	uint64_t f0 = minor_faults();
	uint64_t t0 = now_ns();
	uint64_t sum = read_pages(p, pages);
	uint64_t t1 = now_ns();
	uint64_t f1 = minor_faults();
	uint64_t t2 = now_ns();
	touch_pages(p, pages);
	uint64_t t3 = now_ns();
	uint64_t f2 = minor_faults();
	unmap_region(p, pages);
	if (sum != 0)
		die("host: fresh memory read back non-zero");
	out->v[0] = (double)(t1 - t0) / (double)pages;
	out->v[1] = (double)(t3 - t2) / (double)pages;
	bench_check(out, "host zero read: faults", f1 - f0, pages);
	bench_check(out, "host write after read: faults", f2 - f1, pages);
}

void host_cow_break(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	(void)env;
	host_warm_pages(2 * pages);
	char *p = map_region(pages);
	touch_pages(p, pages);
	int fd[2];
	make_pipe(fd);
	pid_t pid = fork_waiting_child(fd);
	close(fd[0]);
	fault_in_own_pages();
	uint64_t f0 = minor_faults();
	uint64_t t0 = now_ns();
	touch_pages(p, pages);
	uint64_t t1 = now_ns();
	uint64_t f1 = minor_faults();
	close(fd[1]);
	reap(pid);
	unmap_region(p, pages);
	out->v[0] = (double)(t1 - t0) / (double)pages;
	bench_check(out, "host COW break: faults", f1 - f0, pages);
}

void host_reuse(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	(void)env;
	host_warm_pages(pages);
	char *p = map_region(pages);
	touch_pages(p, pages);
	pid_t pid = fork();
	if (pid < 0)
		die("host: fork: %s", strerror(errno));
	if (pid == 0)
		_exit(0);
	reap(pid);
	fault_in_own_pages();
	uint64_t f0 = minor_faults();
	uint64_t t0 = now_ns();
	touch_pages(p, pages);
	uint64_t t1 = now_ns();
	uint64_t f1 = minor_faults();
	unmap_region(p, pages);
	out->v[0] = (double)(t1 - t0) / (double)pages;
	bench_check(out, "host reuse: faults", f1 - f0, pages);
}

/* ---- processes ------------------------------------------------------------------------------ */

/* ns of fork() as the parent sees it: from the call to its return, with `pages` touched. */
static double fork_once(uint64_t pages)
{
	char *p = NULL;
	if (pages) {
		host_warm_pages(pages);
		p = map_region(pages);
		touch_pages(p, pages);
	}
	int fd[2];
	make_pipe(fd);
	uint64_t t0 = now_ns();
	pid_t pid = fork_waiting_child(fd);
	uint64_t t1 = now_ns();
	close(fd[0]);
	close(fd[1]);
	reap(pid);
	if (pages)
		unmap_region(p, pages);
	return (double)(t1 - t0);
}

/* v[0] ns per mapped page (minus the empty process's fork), v[1] total us, v[2] empty us. */
void host_fork(const struct bench_env *env, uint64_t bytes, struct sample *out)
{
	(void)env;
	uint64_t pages = bytes / BENCH_PAGE;
	double empty = fork_once(0), full = fork_once(pages);
	out->v[0] = (full - empty) / (double)pages;
	out->v[1] = full / 1e3;
	out->v[2] = empty / 1e3;
}

void host_munmap(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	(void)env;
	host_warm_pages(pages);
	char *p = map_region(pages);
	touch_pages(p, pages);
	uint64_t t0 = now_ns();
	unmap_region(p, pages);
	uint64_t t1 = now_ns();
	out->v[0] = (double)(t1 - t0) / (double)pages;
}

/*
 * ns of the exit of a process that has `pages` touched: the child notes the time just before
 * _exit in a shared page; the parent, blocked in waitpid, notes when it returns (the child's
 * mm is torn down before it becomes a zombie).  Includes one switch back to the parent.
 */
static double exit_once(uint64_t pages)
{
	volatile uint64_t *stamp = mmap(NULL, BENCH_PAGE, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stamp == MAP_FAILED)
		die("host: mmap: %s", strerror(errno));
	*stamp = 0;
	host_warm_pages(pages);
	int ready[2], go[2];
	make_pipe(ready);
	make_pipe(go);
	pid_t pid = fork();
	if (pid < 0)
		die("host: fork: %s", strerror(errno));
	if (pid == 0) {
		char c = 'r';
		if (pages)
			touch_pages(map_region(pages), pages);
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		*stamp = now_ns();
		_exit(0);
	}
	char c;
	if (read(ready[0], &c, 1) != 1 || write(go[1], &c, 1) != 1)
		die("host: exit case: pipe: %s", strerror(errno));
	reap(pid);
	uint64_t t1 = now_ns();
	double ns = (double)(t1 - *stamp);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	munmap((void *)stamp, BENCH_PAGE);
	return ns;
}

/* v[0] ns per page (minus the empty process's exit), v[1] the empty process's exit in us. */
void host_exit(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	(void)env;
	double empty = exit_once(0), full = exit_once(pages);
	out->v[0] = (full - empty) / (double)pages;
	out->v[1] = empty / 1e3;
}

/*
 * A fork tree of `processes` processes (this one included): each process forks children
 * until the tree is complete (a binary tree in creation order), touches one page of its own,
 * and waits; the last one to be ready wakes the root.  v[0] us per process to build the tree
 * (fork, the child's first page), v[1] us per process to tear it down (every process exits,
 * each parent reaps its children).  The processes count themselves in a shared page.
 */
struct tree_shared {
	_Atomic uint64_t ready;
	_Atomic uint64_t t_built;       /* written by the last process ready, after counting */
};

static void tree_node(uint64_t id, uint64_t total, struct tree_shared *sh, int release_fd, char *page)
{
	pid_t kids[2];
	int nkids = 0;
	for (uint64_t k = 2 * id + 1; k <= 2 * id + 2 && k < total; k++) {
		pid_t pid = fork();
		if (pid < 0)
			_exit(2);
		if (pid == 0) {
			tree_node(k, total, sh, release_fd, page);
			_exit(0); /* not reached */
		}
		kids[nkids++] = pid;
	}
	page[id % 512 * 8] = 1; /* one private page written (COW-broken) per process */
	if (atomic_fetch_add(&sh->ready, 1) + 1 == total)
		sh->t_built = now_ns();
	char c;
	while (read(release_fd, &c, 1) < 0 && errno == EINTR)
		;
	int status, bad = 0;
	for (int i = 0; i < nkids; i++)
		if (waitpid(kids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			bad = 1;
	if (id != 0)
		_exit(bad);
}

void host_fork_tree(const struct bench_env *env, uint64_t processes, struct sample *out)
{
	(void)env;
	struct tree_shared *sh = mmap(NULL, BENCH_PAGE, PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("host: mmap: %s", strerror(errno));
	char *page = map_region(1);
	touch_pages(page, 1);
	int fd[2];
	make_pipe(fd);
	uint64_t t0 = now_ns();
	pid_t root = fork();
	if (root < 0)
		die("host: fork: %s", strerror(errno));
	if (root == 0) {
		close(fd[1]);
		tree_node(0, processes, sh, fd[0], page);
		_exit(0);
	}
	close(fd[0]);
	while (atomic_load(&sh->ready) < processes || atomic_load(&sh->t_built) == 0)
		usleep(200);
	uint64_t t1 = atomic_load(&sh->t_built);
	uint64_t t2 = now_ns();
	close(fd[1]); /* every process's read returns 0: the tree exits bottom-up */
	reap(root);
	uint64_t t3 = now_ns();
	out->v[0] = (double)(t1 - t0) / 1e3 / (double)processes;
	out->v[1] = (double)(t3 - t2) / 1e3 / (double)processes;
	bench_check(out, "host fork tree: processes ready", atomic_load(&sh->ready), processes);
	unmap_region(page, 1);
	munmap(sh, BENCH_PAGE);
}

/* ---- the MMU -------------------------------------------------------------------------------- */

/* A plain load and store, 8 bytes at a time within one page: the hardware's TLB hit. */
void host_tlb_hit(const struct bench_env *env, uint64_t accesses, struct sample *out)
{
	(void)env;
	char *p = map_region(1);
	touch_pages(p, 1);
	uint64_t sum = 0;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < accesses; i++)
		sum += *(volatile uint64_t *)(p + ((i * 8) & (BENCH_PAGE - 1)));
	uint64_t t1 = now_ns();
	for (uint64_t i = 0; i < accesses; i++)
		*(volatile uint64_t *)(p + ((i * 8) & (BENCH_PAGE - 1))) = i;
	uint64_t t2 = now_ns();
	unmap_region(p, 1);
	out->v[0] = (double)(t1 - t0) / (double)accesses;
	out->v[1] = (double)(t2 - t1) / (double)accesses;
	/* the first word is 1 (touch_pages), the rest 0: 1 per pass over the page */
	bench_check(out, "host TLB hit: sum of what it read", sum, (accesses + 511) / 512);
}

uint64_t tlb_miss_passes(const struct bench_env *env)
{
	return env->quick ? 4 : 16;
}

/*
 * A chain of dependent loads a page apart (each word holds the index of the next page), the
 * line within the page varying so the data spreads over the cache: the latency of a load
 * whose translation misses, as the software MMU's walk is measured on the cowvm side.
 */
void host_tlb_miss(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	uint64_t passes = tlb_miss_passes(env);
	host_warm_pages(pages);
	char *p = map_region(pages);
	for (uint64_t i = 0; i < pages; i++)
		*(volatile uint64_t *)(p + i * BENCH_PAGE + ((i * 64) & (BENCH_PAGE - 1))) =
			(i + 1) % pages;
	uint64_t idx = 0;
	for (uint64_t i = 0; i < pages; i++) /* one pass to settle caches */
		idx = *(volatile uint64_t *)(p + idx * BENCH_PAGE + ((idx * 64) & (BENCH_PAGE - 1)));
	uint64_t t0 = now_ns();
	for (uint64_t k = 0; k < pages * passes; k++)
		idx = *(volatile uint64_t *)(p + idx * BENCH_PAGE + ((idx * 64) & (BENCH_PAGE - 1)));
	uint64_t t1 = now_ns();
	unmap_region(p, pages);
	out->v[0] = (double)(t1 - t0) / (double)(pages * passes);
	bench_check(out, "host TLB miss: the chain ends where it started", idx, 0);
}

/* VmPTE of /proc/self/status, in bytes. */
static uint64_t vm_pte_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		die("host: /proc/self/status: %s", strerror(errno));
	char line[256];
	unsigned long long kb = 0;
	bool found = false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPTE: %llu kB", &kb) == 1) {
			found = true;
			break;
		}
	fclose(f);
	if (!found)
		die("host: no VmPTE in /proc/self/status");
	return kb * 1024;
}

/* v[0] page-table bytes per mapped page; v[1] struct page bytes (Linux x86-64: 64, not measured). */
void host_pagetable(const struct bench_env *env, uint64_t pages, struct sample *out)
{
	(void)env;
	host_warm_pages(pages);
	uint64_t before = vm_pte_bytes();
	char *p = map_region(pages);
	touch_pages(p, pages);
	uint64_t after = vm_pte_bytes();
	unmap_region(p, pages);
	out->v[0] = (double)(after - before) / (double)pages;
	out->v[1] = 64.0;
}

uint64_t host_mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	char line[256];
	unsigned long long kb = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/* ---- the floors ------------------------------------------------------------------------------ */

/* `pages` mapped, backed and written one word each; huge: transparent huge pages if it can. */
static char *floor_region(uint64_t pages, bool huge, void **raw, size_t *rawlen)
{
	size_t len = pages * BENCH_PAGE, align = 2 * MIB;
	*rawlen = len + align;
	*raw = mmap(NULL, *rawlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*raw == MAP_FAILED)
		die("host: mmap of %llu pages: %s", (unsigned long long)pages, strerror(errno));
	char *p = (char *)(((uintptr_t)*raw + align - 1) & ~(uintptr_t)(align - 1));
	if (madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) && huge)
		madvise(p, len, MADV_NOHUGEPAGE);
	madvise(p, len, MADV_POPULATE_WRITE); /* where it is not supported, the writes fault it in */
	for (uint64_t i = 0; i < pages; i++)
		*(volatile uint64_t *)(p + i * BENCH_PAGE) = i + 1;
	return p;
}

static double floor_once(enum floor_kind kind, uint64_t pages, bool huge)
{
	void *raw_dst, *raw_src = NULL;
	size_t len_dst, len_src = 0;
	char *src = kind == FLOOR_MEMCPY ? floor_region(pages, huge, &raw_src, &len_src) : NULL;
	char *dst = floor_region(pages, huge, &raw_dst, &len_dst);
	uint64_t t0 = now_ns();
	if (kind == FLOOR_MEMCPY)
		for (uint64_t i = 0; i < pages; i++)
			memcpy(dst + i * BENCH_PAGE, src + i * BENCH_PAGE, BENCH_PAGE);
	else
		for (uint64_t i = 0; i < pages; i++)
			memset(dst + i * BENCH_PAGE, 0, BENCH_PAGE);
	__asm__ volatile("" ::: "memory");
	uint64_t t1 = now_ns();
	munmap(raw_dst, len_dst);
	if (raw_src)
		munmap(raw_src, len_src);
	return (double)(t1 - t0) / (double)pages;
}

static void floor_run(enum floor_kind kind, uint64_t pages, bool huge_backing, struct sample *out)
{
	out->v[0] = floor_once(kind, pages, false);
	out->v[1] = huge_backing ? floor_once(kind, pages, true) : out->v[0];
}

/* ---- the worker --------------------------------------------------------------------------- */

enum host_op { OP_QUIT, OP_CASE, OP_FLOOR, OP_WARM };

struct host_request {
	int op;
	int index;              /* OP_CASE: the case; OP_FLOOR: the floor kind */
	int round;
	int huge;               /* OP_FLOOR: cowvm's memory has huge pages */
	uint64_t param;
};

static int request_fd = -1, reply_fd = -1;
static pid_t worker_pid = -1;
static bool worker_quick;

static void read_all(int fd, void *buf, size_t len, const char *who)
{
	char *b = buf;
	while (len > 0) {
		ssize_t n = read(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s: pipe closed", who);
		b += n;
		len -= (size_t)n;
	}
}

static void write_all(int fd, const void *buf, size_t len, const char *who)
{
	const char *b = buf;
	while (len > 0) {
		ssize_t n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s: pipe: %s", who, strerror(errno));
		b += n;
		len -= (size_t)n;
	}
}

static void dispatch(const struct host_request *req, struct sample *out)
{
	struct bench_env env = { .quick = worker_quick, .round = req->round };
	switch (req->op) {
	case OP_CASE:
		if (req->index < 0 || req->index >= nr_bench_cases || !bench_cases[req->index].host)
			die("host worker: no host side for case %d", req->index);
		bench_cases[req->index].host(&env, req->param, out);
		return;
	case OP_FLOOR:
		floor_run((enum floor_kind)req->index, req->param, req->huge, out);
		return;
	case OP_WARM:
		host_warm_pages(req->param);
		return;
	}
	die("host worker: unknown request %d", req->op);
}

static void worker_loop(int in, int out)
{
	stack_base = __builtin_frame_address(0); /* above its locals (cases may be inlined here) */
	now_ns(); /* the vDSO's data page faults in on first use: not inside a case */
	minor_faults();
	for (;;) {
		struct host_request req;
		read_all(in, &req, sizeof(req), "host worker");
		if (req.op == OP_QUIT)
			_exit(0);
		struct sample s;
		memset(&s, 0, sizeof(s));
		for (int k = 0; k < MAX_CASE_METRICS; k++)
			s.v[k] = __builtin_nan("");
		dispatch(&req, &s);
		write_all(out, &s, sizeof(s), "host worker");
	}
}

void host_worker_start(bool quick)
{
	int to_worker[2], from_worker[2];
	worker_quick = quick;
	make_pipe(to_worker);
	make_pipe(from_worker);
	fflush(NULL);
	worker_pid = fork();
	if (worker_pid < 0)
		die("fork of the host worker: %s", strerror(errno));
	if (worker_pid == 0) {
		close(to_worker[1]);
		close(from_worker[0]);
		worker_loop(to_worker[0], from_worker[1]);
	}
	close(to_worker[0]);
	close(from_worker[1]);
	request_fd = to_worker[1];
	reply_fd = from_worker[0];
}

void host_worker_stop(void)
{
	if (worker_pid < 0)
		return;
	struct host_request req = { .op = OP_QUIT };
	write_all(request_fd, &req, sizeof(req), "host worker");
	reap(worker_pid);
	close(request_fd);
	close(reply_fd);
	worker_pid = -1;
}

static void host_call(const struct host_request *req, struct sample *out)
{
	if (worker_pid < 0)
		die("host worker not running");
	write_all(request_fd, req, sizeof(*req), "host worker");
	read_all(reply_fd, out, sizeof(*out), "host worker");
}

void host_run_case(int index, uint64_t param, int round, struct sample *out)
{
	struct host_request req = { .op = OP_CASE, .index = index, .round = round, .param = param };
	host_call(&req, out);
}

void host_run_floor(enum floor_kind kind, uint64_t pages, bool huge_backing, struct sample *out)
{
	struct host_request req = { .op = OP_FLOOR, .index = kind, .huge = huge_backing,
				    .param = pages };
	host_call(&req, out);
}

void host_warm(uint64_t pages)
{
	struct host_request req = { .op = OP_WARM, .param = pages };
	struct sample s;
	host_call(&req, &s);
}
