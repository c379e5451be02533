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
 *  - every region is private anonymous memory with MADV_NOHUGEPAGE;
 *  - before a case allocates pages, host_warm_pages touches and frees as many, so they come
 *    from the guest's free lists and not from memory the VM handed back to its host;
 *  - faults are counted around the region operation only, after the stack has been faulted
 *    in (fork leaves the caller's stack write-protected too);
 *  - the child of a fork blocks on a pipe, so that if it runs first it costs a few
 *    microseconds and not its exit.
 */
#include <errno.h>
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

/* ---- the cases -------------------------------------------------------------------------- */

static struct result do_cow_break(uint64_t pages)
{
	struct result r = { 0 };
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
	r.v[0] = (double)(t1 - t0) / (double)pages;
	r.count[0] = f1 - f0;
	return r;
}

static struct result do_first_touch(uint64_t pages)
{
	struct result r = { 0 };
	host_warm_pages(pages);
	char *p = map_region(pages);
	minor_faults();
	uint64_t f0 = minor_faults();
	uint64_t t0 = now_ns();
	touch_pages(p, pages);
	uint64_t t1 = now_ns();
	uint64_t f1 = minor_faults();
	unmap_region(p, pages);
	r.v[0] = (double)(t1 - t0) / (double)pages;
	r.count[0] = f1 - f0;
	return r;
}

static struct result do_zero_read(uint64_t pages)
{
	struct result r = { 0 };
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
	r.v[0] = (double)(t1 - t0) / (double)pages;
	r.v[1] = (double)(t3 - t2) / (double)pages;
	r.count[0] = f1 - f0;
	r.count[1] = f2 - f1;
	return r;
}

static struct result do_reuse(uint64_t pages)
{
	struct result r = { 0 };
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
	r.v[0] = (double)(t1 - t0) / (double)pages;
	r.count[0] = f1 - f0;
	return r;
}

/* fork() as the parent sees it: from the call to its return, the PTEs written since. */
static struct result do_fork(uint64_t pages)
{
	struct result r = { 0 };
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
	r.v[0] = (double)(t1 - t0);
	return r;
}

static struct result do_munmap(uint64_t pages)
{
	struct result r = { 0 };
	host_warm_pages(pages);
	char *p = map_region(pages);
	touch_pages(p, pages);
	uint64_t t0 = now_ns();
	unmap_region(p, pages);
	uint64_t t1 = now_ns();
	r.v[0] = (double)(t1 - t0);
	return r;
}

/*
 * The exit of a process that has `pages` touched: the child notes the time just before
 * _exit in a shared page; the parent, blocked in waitpid, notes when it returns (the child's
 * mm is torn down before it becomes a zombie).  Includes one switch back to the parent.
 */
static struct result do_exit(uint64_t pages)
{
	struct result r = { 0 };
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
	r.v[0] = (double)(t1 - *stamp);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	munmap((void *)stamp, BENCH_PAGE);
	return r;
}

/* A plain load and store, 8 bytes at a time within one page: the hardware's TLB hit. */
static struct result do_tlb_hit(uint64_t accesses)
{
	struct result r = { 0 };
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
	r.v[0] = (double)(t1 - t0) / (double)accesses;
	r.v[1] = (double)(t2 - t1) / (double)accesses;
	r.count[0] = sum;
	return r;
}

/*
 * A chain of dependent loads a page apart (each word holds the index of the next page), the
 * line within the page varying so the data spreads over the cache: the latency of a load
 * whose translation misses, as the software MMU's walk is measured on the cowvm side.
 */
static struct result do_tlb_miss(uint64_t pages, uint64_t passes)
{
	struct result r = { 0 };
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
	r.v[0] = (double)(t1 - t0) / (double)(pages * passes);
	r.count[0] = idx;
	return r;
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

static struct result do_pagetable(uint64_t pages)
{
	struct result r = { 0 };
	host_warm_pages(pages);
	uint64_t before = vm_pte_bytes();
	char *p = map_region(pages);
	touch_pages(p, pages);
	uint64_t after = vm_pte_bytes();
	unmap_region(p, pages);
	r.v[0] = (double)(after - before) / (double)pages;
	return r;
}

static void fill_words(char *p, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		*(volatile uint64_t *)(p + i * BENCH_PAGE) = i + 1;
}

/*
 * The floors: copy or clear whole 4 KiB pages that are mapped (no fault in the timing) but
 * not in the cache, as the pages a fault hands out are.  The regions are larger than the
 * last-level cache in the full run; the loop starts with the pages touched longest ago.
 */
static struct result do_floor_memcpy(uint64_t pages)
{
	struct result r = { 0 };
	char *src = map_region(pages), *dst = map_region(pages);
	fill_words(src, pages);
	fill_words(dst, pages);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < pages; i++)
		memcpy(dst + i * BENCH_PAGE, src + i * BENCH_PAGE, BENCH_PAGE);
	__asm__ volatile("" ::: "memory");
	uint64_t t1 = now_ns();
	unmap_region(src, pages);
	unmap_region(dst, pages);
	r.v[0] = (double)(t1 - t0) / (double)pages;
	return r;
}

static struct result do_floor_memset(uint64_t pages)
{
	struct result r = { 0 };
	char *dst = map_region(pages);
	fill_words(dst, pages);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < pages; i++)
		memset(dst + i * BENCH_PAGE, 0, BENCH_PAGE);
	__asm__ volatile("" ::: "memory");
	uint64_t t1 = now_ns();
	unmap_region(dst, pages);
	r.v[0] = (double)(t1 - t0) / (double)pages;
	return r;
}

/* ---- the worker --------------------------------------------------------------------------- */

enum host_op {
	OP_QUIT, OP_COW_BREAK, OP_FIRST_TOUCH, OP_ZERO_READ, OP_REUSE, OP_FORK, OP_MUNMAP,
	OP_EXIT, OP_TLB_HIT, OP_TLB_MISS, OP_PAGETABLE, OP_WARM, OP_FLOOR_MEMCPY, OP_FLOOR_MEMSET
};

struct host_request {
	int op;
	uint64_t a, b;
};

static int request_fd = -1, reply_fd = -1;
static pid_t worker_pid = -1;

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

static struct result dispatch(const struct host_request *req)
{
	struct result r = { 0 };
	switch (req->op) {
	case OP_COW_BREAK: return do_cow_break(req->a);
	case OP_FIRST_TOUCH: return do_first_touch(req->a);
	case OP_ZERO_READ: return do_zero_read(req->a);
	case OP_REUSE: return do_reuse(req->a);
	case OP_FORK: return do_fork(req->a);
	case OP_MUNMAP: return do_munmap(req->a);
	case OP_EXIT: return do_exit(req->a);
	case OP_TLB_HIT: return do_tlb_hit(req->a);
	case OP_TLB_MISS: return do_tlb_miss(req->a, req->b);
	case OP_PAGETABLE: return do_pagetable(req->a);
	case OP_WARM: host_warm_pages(req->a); return r;
	case OP_FLOOR_MEMCPY: return do_floor_memcpy(req->a);
	case OP_FLOOR_MEMSET: return do_floor_memset(req->a);
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
		struct result r = dispatch(&req);
		write_all(out, &r, sizeof(r), "host worker");
	}
}

void host_worker_start(void)
{
	int to_worker[2], from_worker[2];
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

static struct result host_call(int op, uint64_t a, uint64_t b)
{
	struct host_request req = { .op = op, .a = a, .b = b };
	struct result r;
	write_all(request_fd, &req, sizeof(req), "host worker");
	read_all(reply_fd, &r, sizeof(r), "host worker");
	return r;
}

struct result host_cow_break(uint64_t pages) { return host_call(OP_COW_BREAK, pages, 0); }
struct result host_first_touch(uint64_t pages) { return host_call(OP_FIRST_TOUCH, pages, 0); }
struct result host_zero_read(uint64_t pages) { return host_call(OP_ZERO_READ, pages, 0); }
struct result host_reuse(uint64_t pages) { return host_call(OP_REUSE, pages, 0); }
struct result host_fork(uint64_t pages) { return host_call(OP_FORK, pages, 0); }
struct result host_munmap(uint64_t pages) { return host_call(OP_MUNMAP, pages, 0); }
struct result host_exit(uint64_t pages) { return host_call(OP_EXIT, pages, 0); }
struct result host_tlb_hit(uint64_t accesses) { return host_call(OP_TLB_HIT, accesses, 0); }
struct result host_tlb_miss(uint64_t pages, uint64_t passes) { return host_call(OP_TLB_MISS, pages, passes); }
struct result host_pagetable(uint64_t pages) { return host_call(OP_PAGETABLE, pages, 0); }
struct result host_warm(uint64_t pages) { return host_call(OP_WARM, pages, 0); }
struct result floor_memcpy(uint64_t pages) { return host_call(OP_FLOOR_MEMCPY, pages, 0); }
struct result floor_memset(uint64_t pages) { return host_call(OP_FLOOR_MEMSET, pages, 0); }
