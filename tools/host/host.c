/*
 * host.c - the driver's side of the host workers (see host.h): starting, forking and ending
 * them, sending them operations, and reading their /proc files.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/host.h"

#define PG 4096ull
#define MAX_RESPAWNS 64
#define EXIT_TIMEOUT_MS 10000
#define REPLY_TIMEOUT_S 60 /* a worker that does not answer within this is taken for hung */

/* The driver's end of a worker's socket: replies time out instead of hanging the run. */
static void set_timeout(int fd)
{
	struct timeval tv = { .tv_sec = REPLY_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

extern char **environ;

static bool fail(struct host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct host *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->error, sizeof h->error, fmt, ap);
	va_end(ap);
	return false;
}

bool host_frames_readable(void)
{
	volatile uint64_t probe = 1;
	uint64_t word = 0;
	probe++;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = pread(fd, &word, 8, (off_t)((uintptr_t)&probe / PG * 8)) == 8;
	close(fd);
	return ok && (word >> 63) && (word & ((1ull << 55) - 1));
}

bool host_init(struct host *h, const struct host_config *cfg)
{
	memset(h, 0, sizeof *h);
	h->cfg = *cfg;
	h->kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	/* workers that outlive their parent worker are handed to us: reap them */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	return true;
}

static void reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void close_proc(struct host_proc *p)
{
	if (p->sock >= 0)
		close(p->sock);
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->sock = p->pidfd = -1;
	p->live = false;
}

void host_fini(struct host *h)
{
	for (int i = 0; i < h->nr_procs; i++) {
		struct host_proc *p = &h->procs[i];
		if (!p->live)
			continue;
		if (p->pidfd >= 0)
			syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
		else
			kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0); /* our child (spawned), or not (forked): ECHILD */
		close_proc(p);
	}
	reap_orphans();
	if (h->kpageflags_fd >= 0)
		close(h->kpageflags_fd);
	free(h->procs);
	h->procs = NULL;
	h->nr_procs = 0;
}

/* ---- messages --------------------------------------------------------------------------------- */

static bool send_all(struct host *h, int fd, const void *buf, size_t n, int pass_fd)
{
	const uint8_t *p = buf;
	bool first = true;
	while (n) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov = { (void *)p, n };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		if (first && pass_fd >= 0) {
			memset(&u, 0, sizeof u);
			msg.msg_control = u.buf;
			msg.msg_controllen = sizeof u.buf;
			struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &pass_fd, sizeof pass_fd);
		}
		ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return fail(h, "the host worker does not listen any more (%s)", strerror(errno));
		first = false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool recv_reply(struct host *h, int fd, struct host_reply *r)
{
	uint8_t *p = (uint8_t *)r;
	size_t n = sizeof *r;
	while (n) {
		ssize_t got = recv(fd, p, n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return fail(h, "the host worker did not answer within %d s", REPLY_TIMEOUT_S);
		if (got <= 0)
			return fail(h, "the host worker died without answering%s",
				    got < 0 ? " (socket error)" : "");
		p += got;
		n -= (size_t)got;
	}
	return true;
}

static bool send_cmd(struct host *h, int fd, const struct host_cmd *c, const void *data, int pass_fd)
{
	return send_all(h, fd, c, sizeof *c, pass_fd) && (!c->data_len || send_all(h, fd, data, c->data_len, -1));
}

static struct host_proc *new_slot(struct host *h)
{
	struct host_proc *grown = realloc(h->procs, (size_t)(h->nr_procs + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	h->procs = grown;
	struct host_proc *p = &h->procs[h->nr_procs];
	memset(p, 0, sizeof *p);
	p->sock = p->pidfd = -1;
	return p;
}

/* ---- the layout of a new worker ---------------------------------------------------------------- */

static bool overlaps(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < b1 && b0 < a1;
}

/* True when none of the worker's own mappings comes within a page of the window, and its heap
 * area (start_brk .. + heap_span, a page either side) is free.  *why says what is in the way. */
static bool layout_clear(struct host *h, int pid, uint64_t start_brk, char *why, size_t whylen)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	bool ok = true;
	while (ok && fgets(line, sizeof line, f)) {
		uint64_t s, e;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64, &s, &e) != 2)
			continue;
		for (int i = 0; i < h->cfg.nr_window && ok; i++) {
			const struct host_interval *w = &h->cfg.window[i];
			if (overlaps(s, e, w->start > PG ? w->start - PG : 0, w->end + PG)) {
				snprintf(why, whylen, "%" PRIx64 "-%" PRIx64 " is near the scenario's %" PRIx64
					 "-%" PRIx64, s, e, w->start, w->end);
				ok = false;
			}
		}
		if (ok && overlaps(s, e, start_brk - PG, start_brk + h->cfg.heap_span + PG)) {
			snprintf(why, whylen, "%" PRIx64 "-%" PRIx64 " is in the way of the heap at %" PRIx64,
				 s, e, start_brk);
			ok = false;
		}
	}
	fclose(f);
	return ok;
}

static bool warm(struct host *h, struct host_proc *p)
{
	struct host_cmd c = { .op = HOP_WARMUP };
	struct host_reply r;
	if (!send_cmd(h, p->sock, &c, NULL, -1) || !recv_reply(h, p->sock, &r))
		return false;
	p->overhead = r.faults;
	return true;
}

/* ---- workers --------------------------------------------------------------------------------- */

int host_spawn(struct host *h)
{
	const char *exe = h->cfg.exe ? h->cfg.exe : "/proc/self/exe";
	char why[256] = "";
	for (int attempt = 0; attempt < MAX_RESPAWNS; attempt++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			return fail(h, "socketpair: %s", strerror(errno)), -1;
		char env[64];
		snprintf(env, sizeof env, "%s=3 %d", HOST_WORKER_ENV, h->cfg.cpu);
		/* no rseq: the kernel would update the rseq area in the worker's TLS on a return to
		 * user mode after a preemption, which after a fork is a copy-on-write fault counted
		 * in the middle of whatever the worker is measuring */
		char tunables[] = "GLIBC_TUNABLES=glibc.pthread.rseq=0";
		char *envp[] = { env, tunables, NULL };
		char *argv[] = { (char *)"cowvm-host-worker", NULL };
		pid_t pid = fork();
		if (pid < 0) {
			close(sv[0]);
			close(sv[1]);
			return fail(h, "fork: %s", strerror(errno)), -1;
		}
		if (pid == 0) {
			if (dup2(sv[1], 3) < 0)
				_exit(127);
			execve(exe, argv, envp);
			_exit(127);
		}
		close(sv[1]);
		set_timeout(sv[0]);
		struct host_reply hello;
		if (!recv_reply(h, sv[0], &hello)) {
			close(sv[0]);
			int status = 0;
			waitpid(pid, &status, 0);
			return fail(h, "the host worker %s did not start (exit status %d)", exe,
				    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)), -1;
		}
		if (hello.result != 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(sv[0]);
			return fail(h, "the host worker has an rseq area registered (GLIBC_TUNABLES was not "
				    "honoured): its updates by the kernel would fault inside measurements"), -1;
		}
		if (hello.brk != hello.start_brk || !hello.start_brk) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(sv[0]);
			return fail(h, "the host worker's heap is not empty at start (start_brk %#" PRIx64
				    ", brk %#" PRIx64 "): something in %s calls malloc before main",
				    hello.start_brk, hello.brk, exe), -1;
		}
		if (!layout_clear(h, pid, hello.start_brk, why, sizeof why)) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(sv[0]);
			continue;
		}
		struct host_proc *p = new_slot(h);
		if (!p) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(sv[0]);
			return fail(h, "out of memory"), -1;
		}
		p->live = true;
		p->pid = pid;
		p->sock = sv[0];
		p->start_brk = hello.start_brk;
		p->respawns = attempt;
		p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		int index = h->nr_procs++;
		if (p->pidfd < 0) {
			fail(h, "pidfd_open: %s", strerror(errno));
			return -1;
		}
		if (!warm(h, p))
			return -1;
		return index;
	}
	return fail(h, "no host worker got an address space clear of the scenario's addresses in %d "
		    "tries (last: %s)", MAX_RESPAWNS, why), -1;
}

bool host_fork(struct host *h, int parent, int *child, struct host_reply *r)
{
	struct host_proc *pp = &h->procs[parent];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return fail(h, "socketpair: %s", strerror(errno));
	set_timeout(sv[0]);
	struct host_cmd c = { .op = HOP_FORK };
	bool ok = send_cmd(h, pp->sock, &c, NULL, sv[1]);
	close(sv[1]);
	if (!ok || !recv_reply(h, pp->sock, r)) {
		close(sv[0]);
		return false;
	}
	if (r->result < 0) {
		close(sv[0]);
		return true; /* the fork failed: the caller compares that */
	}
	struct host_reply hello;
	if (!recv_reply(h, sv[0], &hello)) {
		close(sv[0]);
		return false;
	}
	struct host_proc *p = new_slot(h);
	if (!p) {
		close(sv[0]);
		return fail(h, "out of memory");
	}
	pp = &h->procs[parent]; /* new_slot may have moved it */
	p->live = true;
	p->pid = hello.pid;
	p->sock = sv[0];
	p->start_brk = pp->start_brk;
	p->pidfd = (int)syscall(SYS_pidfd_open, hello.pid, 0);
	*child = h->nr_procs++;
	if (p->pidfd < 0)
		return fail(h, "pidfd_open: %s", strerror(errno));
	/* fork made everything copy-on-write again on both sides: warm both up.  The parent's
	 * fault delta around the fork itself was taken before any of this. */
	uint64_t faults = r->faults;
	if (!warm(h, &h->procs[parent]) || !warm(h, p))
		return false;
	r->faults = faults > h->procs[parent].overhead ? faults - h->procs[parent].overhead : 0;
	return true;
}

bool host_exit(struct host *h, int proc)
{
	struct host_proc *p = &h->procs[proc];
	struct host_cmd c = { .op = HOP_EXIT };
	struct host_reply r;
	if (!send_cmd(h, p->sock, &c, NULL, -1) || !recv_reply(h, p->sock, &r))
		return false;
	/* the pidfd turns readable when the process has exited, after exit_mm */
	struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
	int n;
	do
		n = poll(&pfd, 1, EXIT_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return fail(h, "the host worker %d did not exit", p->pid);
	waitpid(p->pid, NULL, WNOHANG);
	reap_orphans();
	close_proc(p);
	return true;
}

bool host_call(struct host *h, int proc, const struct host_cmd *cmd, const void *data, struct host_reply *r)
{
	struct host_proc *p = &h->procs[proc];
	if (cmd->data_len > HOST_DATA_MAX)
		return fail(h, "%u bytes of data: more than a host command carries (%d)", cmd->data_len,
			    HOST_DATA_MAX);
	if (!send_cmd(h, p->sock, cmd, data, -1) || !recv_reply(h, p->sock, r))
		return false;
	r->faults = r->faults > p->overhead ? r->faults - p->overhead : 0;
	return true;
}

/* ---- /proc ---------------------------------------------------------------------------------- */

bool host_pagemap(struct host *h, int proc, uint64_t addr, uint64_t npages, uint64_t *words)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/pagemap", h->procs[proc].pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(h, "cannot open %s: %s", path, strerror(errno));
	size_t want = npages * sizeof *words;
	ssize_t got = pread(fd, words, want, (off_t)(addr / PG * 8));
	int e = errno;
	close(fd);
	if (got != (ssize_t)want)
		return fail(h, "cannot read %s: %s", path, got < 0 ? strerror(e) : "short read");
	return true;
}

bool host_kpageflags(struct host *h, uint64_t pfn, uint64_t *flags)
{
	if (h->kpageflags_fd < 0)
		return false;
	return pread(h->kpageflags_fd, flags, 8, (off_t)(pfn * 8)) == 8;
}

static uint64_t field_kb(const char *line, const char *name)
{
	size_t n = strlen(name);
	if (strncmp(line, name, n) || line[n] != ':')
		return UINT64_MAX;
	return strtoull(line + n + 1, NULL, 10);
}

bool host_parse_smaps(FILE *f, struct host_vma **vmas, int *count)
{
	char line[512];
	*vmas = NULL;
	*count = 0;
	struct host_vma *list = NULL, *cur = NULL;
	int n = 0, cap = 0;
	while (fgets(line, sizeof line, f)) {
		uint64_t s, e, v;
		char perms[8];
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &s, &e, perms) == 3 && strchr(line, '-') &&
		    line[0] != ' ' && strlen(perms) == 4) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				struct host_vma *grown = realloc(list, (size_t)cap * sizeof *grown);
				if (!grown) {
					free(list);
					return false;
				}
				list = grown;
			}
			cur = &list[n++];
			memset(cur, 0, sizeof *cur);
			cur->start = s;
			cur->end = e;
			memcpy(cur->perms, perms, 5);
			continue;
		}
		if (!cur)
			continue;
		if ((v = field_kb(line, "Rss")) != UINT64_MAX) cur->rss = v;
		else if ((v = field_kb(line, "Pss")) != UINT64_MAX) cur->pss = v;
		else if ((v = field_kb(line, "Shared_Clean")) != UINT64_MAX) cur->shared_clean = v;
		else if ((v = field_kb(line, "Shared_Dirty")) != UINT64_MAX) cur->shared_dirty = v;
		else if ((v = field_kb(line, "Private_Clean")) != UINT64_MAX) cur->private_clean = v;
		else if ((v = field_kb(line, "Private_Dirty")) != UINT64_MAX) cur->private_dirty = v;
		else if ((v = field_kb(line, "Anonymous")) != UINT64_MAX) cur->anonymous = v;
		else if ((v = field_kb(line, "Swap")) != UINT64_MAX) cur->swap = v;
		else if ((v = field_kb(line, "SwapPss")) != UINT64_MAX) cur->swap_pss = v;
		else if ((v = field_kb(line, "Locked")) != UINT64_MAX) cur->locked = v;
		else if (!strncmp(line, "VmFlags:", 8)) {
			const char *f0 = line + 8;
			while (*f0 == ' ')
				f0++;
			size_t k = strcspn(f0, "\n");
			if (k >= sizeof cur->vmflags)
				k = sizeof cur->vmflags - 1;
			memcpy(cur->vmflags, f0, k);
			cur->vmflags[k] = 0;
			while (k && (cur->vmflags[k - 1] == '\n' || cur->vmflags[k - 1] == ' '))
				cur->vmflags[--k] = 0;
		}
	}
	*vmas = list;
	*count = n;
	return true;
}

bool host_smaps(struct host *h, int proc, struct host_vma **vmas, int *count)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/smaps", h->procs[proc].pid);
	FILE *f = fopen(path, "re");
	*vmas = NULL;
	*count = 0;
	if (!f)
		return fail(h, "cannot open %s: %s", path, strerror(errno));
	bool ok = host_parse_smaps(f, vmas, count);
	fclose(f);
	return ok || fail(h, "out of memory");
}

bool host_status(struct host *h, int proc, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", h->procs[proc].pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(h, "cannot open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return fail(h, "cannot read %s", path);
	buf[n] = 0;
	return true;
}

static bool fault_counts(struct host *h, int proc, uint64_t *minor, uint64_t *major);

bool host_faults(struct host *h, int proc, uint64_t *faults)
{
	uint64_t minor, major;
	if (!fault_counts(h, proc, &minor, &major))
		return false;
	*faults = minor + major;
	return true;
}

bool host_majflt(struct host *h, int proc, uint64_t *majflt)
{
	uint64_t minor;
	return fault_counts(h, proc, &minor, majflt);
}

static bool fault_counts(struct host *h, int proc, uint64_t *minor, uint64_t *major)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", h->procs[proc].pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(h, "cannot open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return fail(h, "cannot read %s", path);
	buf[n] = 0;
	/* after "(comm)": state(3) ppid pgrp session tty_nr tpgid flags minflt(10) cminflt majflt(12) */
	char *p = strrchr(buf, ')');
	uint64_t minflt = 0, majflt = 0;
	int field = 2;
	for (char *tok = p ? strtok(p + 1, " ") : NULL; tok; tok = strtok(NULL, " ")) {
		field++;
		if (field == 10)
			minflt = strtoull(tok, NULL, 10);
		if (field == 12) {
			majflt = strtoull(tok, NULL, 10);
			break;
		}
	}
	if (field != 12)
		return fail(h, "cannot parse %s", path);
	*minor = minflt;
	*major = majflt;
	return true;
}

int64_t host_mem_access(struct host *h, int proc, uint64_t addr, void *buf, uint64_t len, bool write)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", h->procs[proc].pid);
	int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		fail(h, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	uint64_t done = 0;
	int64_t ret = 0;
	while (done < len) {
		ssize_t n = write ? pwrite(fd, (uint8_t *)buf + done, len - done, (off_t)(addr + done))
				  : pread(fd, (uint8_t *)buf + done, len - done, (off_t)(addr + done));
		if (n < 0) {
			ret = done ? 0 : -errno;
			break;
		}
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	close(fd);
	return ret < 0 ? ret : (int64_t)done;
}

int host_clear_refs(struct host *h, int proc, int what)
{
	char path[64], text[16];
	snprintf(path, sizeof path, "/proc/%d/clear_refs", h->procs[proc].pid);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int len = snprintf(text, sizeof text, "%d", what);
	ssize_t n = write(fd, text, (size_t)len);
	int e = errno;
	close(fd);
	return n == len ? 0 : -(n < 0 ? e : EIO);
}

/* PAGEMAP_SCAN (linux/fs.h of Linux 6.7; the build's headers may be older) */
struct cmp_page_region {
	uint64_t start, end, categories;
};
struct cmp_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define CMP_PAGEMAP_SCAN _IOWR('f', 16, struct cmp_pm_scan_arg)
#define CMP_PAGE_IS_PFNZERO (1u << 5)

bool host_zero_pages(struct host *h, int proc, uint64_t addr, uint64_t npages, bool *zero)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/pagemap", h->procs[proc].pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(h, "cannot open %s: %s", path, strerror(errno));
	memset(zero, 0, npages * sizeof *zero);
	bool ok = true;
	uint64_t at = addr, end = addr + npages * PG;
	while (ok && at < end) {
		struct cmp_page_region vec[64];
		struct cmp_pm_scan_arg arg = {
			.size = sizeof arg, .start = at, .end = end, .vec = (uint64_t)(uintptr_t)vec,
			.vec_len = 64, .category_mask = CMP_PAGE_IS_PFNZERO,
			.return_mask = CMP_PAGE_IS_PFNZERO,
		};
		long n = ioctl(fd, CMP_PAGEMAP_SCAN, &arg);
		if (n < 0) {
			ok = fail(h, "PAGEMAP_SCAN: %s", strerror(errno));
			break;
		}
		for (long i = 0; i < n; i++)
			for (uint64_t a = vec[i].start; a < vec[i].end; a += PG)
				if (a >= addr && a < end)
					zero[(a - addr) / PG] = true;
		if (arg.walk_end <= at)
			break;
		at = arg.walk_end;
	}
	close(fd);
	return ok;
}
