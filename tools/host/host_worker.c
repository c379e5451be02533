/*
 * host_worker.c - a host worker: one real Linux process that stands for one scenario process
 * while `cowvm compare` replays a scenario on the host kernel (tools/host.c drives it; the
 * protocol is tools/host_proto.h).
 *
 * The driver starts a worker by executing its own program with HOST_WORKER_ENV set; the
 * constructor below sees it before main() and never returns.  Children made by HOP_FORK are
 * real fork()s of a worker and run the same loop.
 *
 * What makes the fault counts exact:
 *   - the process has no capabilities (cowvm models an unprivileged process);
 *   - the process is pinned to one CPU (per-CPU LRU batches otherwise sometimes hold a
 *     reference that turns a reuse into a copy) and THP is off for the whole mm
 *     (PR_SET_THP_DISABLE: like MADV_NOHUGEPAGE on every region, without changing VMA flags);
 *   - a measurement is getrusage(RUSAGE_THREAD) as a raw system call, then the operation, then
 *     getrusage again.  The operation is a raw system call, or a loop of loads or stores whose
 *     first access to each page goes through a probe instruction with a fixup (as the kernel's
 *     exception table): a SIGSEGV there returns -EFAULT instead of killing the worker;
 *   - everything the measurement touches besides the target memory (this stack, the static
 *     buffers, the alternate signal stack, the code of every operation and the signal return
 *     path) is faulted in by HOP_WARMUP, which the driver sends after the worker starts and to
 *     both sides after every fork (fork makes all of it copy-on-write again).  The warm-up then
 *     measures an empty operation and reports what it cost (the driver subtracts it; it is 0).
 *
 * The worker never calls malloc (the heap must hold only what the scenario's brk put there)
 * and, after it started, uses libc only between measurements.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "host/host_proto.h"

/* The loops below must stay loops: a call into libc's memset would run code that a fresh fork
 * child has not mapped yet. */
#pragma GCC optimize("no-tree-loop-distribute-patterns")

/* Nothing in a measurement may touch memory the operation does not: no sanitizer shadow
 * (make asan-test builds this file with ASan and UBSan). */
#define NO_SAN __attribute__((no_sanitize("address", "undefined"), noinline))

#define PG 4096ull
#define STACK_PREFAULT (256u << 10) /* bytes of stack below the loop's frame made private */

/* ---- raw system calls (no errno, no libc code inside a measurement) ------------------------- */

static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* ---- probes: one load or store that may fault, with a fixup --------------------------------- */

/* int host_probe_load(const volatile void *addr, uint8_t *out);   0 or -EFAULT
 * int host_probe_store(volatile void *addr, unsigned value);        0 or -EFAULT
 * A SIGSEGV or SIGBUS at one of the two *_insn labels resumes at host_probe_fixup. */
__asm__(".text\n"
	".p2align 4\n"
	".globl host_probe_load\n"
	".hidden host_probe_load\n"
	".type host_probe_load,@function\n"
	"host_probe_load:\n"
	"	xorl %eax, %eax\n"
	".globl host_probe_load_insn\n"
	".hidden host_probe_load_insn\n"
	"host_probe_load_insn:\n"
	"	movzbl (%rdi), %ecx\n"
	"	movb %cl, (%rsi)\n"
	"	ret\n"
	".globl host_probe_store\n"
	".hidden host_probe_store\n"
	".type host_probe_store,@function\n"
	"host_probe_store:\n"
	"	xorl %eax, %eax\n"
	".globl host_probe_store_insn\n"
	".hidden host_probe_store_insn\n"
	"host_probe_store_insn:\n"
	"	movb %sil, (%rdi)\n"
	"	ret\n"
	".globl host_probe_fixup\n"
	".hidden host_probe_fixup\n"
	"host_probe_fixup:\n"
	"	movl $-14, %eax\n"
	"	ret\n");
int host_probe_load(const volatile void *addr, uint8_t *out);
int host_probe_store(volatile void *addr, unsigned value);
extern const char host_probe_load_insn[], host_probe_store_insn[], host_probe_fixup[];

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *ip = &uc->uc_mcontext.gregs[REG_RIP];
	(void)si;
	if (*ip == (greg_t)(uintptr_t)host_probe_load_insn || *ip == (greg_t)(uintptr_t)host_probe_store_insn) {
		*ip = (greg_t)(uintptr_t)host_probe_fixup;
		return;
	}
	/* a real crash of the worker: die of the signal (the driver reports it) */
	sys2(SYS_kill, sys1(SYS_getpid, 0), sig == SIGBUS ? SIGBUS : SIGSEGV);
	sys1(SYS_exit_group, 128 + sig);
}

/* ---- state (static: no malloc) ------------------------------------------------------------ */

static int sock = -1;               /* to the driver */
static int memfd = -1;              /* copy_from_user / copy_to_user go through it */
static uint8_t data[HOST_DATA_MAX]; /* the command's data */
static struct host_cmd cmd;
static struct host_reply reply;
static struct rusage ru_before, ru_after;
static uint8_t altstack[64 << 10] __attribute__((aligned(64)));
static volatile uint8_t *scratch;   /* 3 pages: rw, none, rw (for the warm-up) */
static volatile uint8_t sink;
static struct iovec pm_iov;         /* process_madvise's one range */
static struct rlimit rlim;
extern const char __executable_start[], etext[]; /* the linker's: this program's code */

static uint64_t faults_of(const struct rusage *ru)
{
	return (uint64_t)ru->ru_minflt + (uint64_t)ru->ru_majflt;
}

#define MEASURE_BEGIN() sys2(SYS_getrusage, RUSAGE_THREAD, &ru_before)
#define MEASURE_END() sys2(SYS_getrusage, RUSAGE_THREAD, &ru_after)

/* ---- the loops -------------------------------------------------------------------------------- */

/* Store n bytes at addr: byte k is pat[(k + off) % plen].  The first store to each page is a
 * probe.  0 or -EFAULT (the bytes before the faulting page are written). */
NO_SAN static long store_range(uint64_t addr, uint64_t n, const uint8_t *pat, uint64_t plen, uint64_t off)
{
	uint64_t k = 0;
	while (k < n) {
		uint64_t a = addr + k, chunk = PG - (a & (PG - 1));
		if (chunk > n - k)
			chunk = n - k;
		if (host_probe_store((volatile void *)(uintptr_t)a, pat[(k + off) % plen]))
			return -EFAULT;
		volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)a;
		for (uint64_t i = 1; i < chunk; i++)
			p[i] = pat[(k + i + off) % plen];
		k += chunk;
	}
	return 0;
}

/* Load every byte of [addr, addr + n). */
NO_SAN static long load_range(uint64_t addr, uint64_t n)
{
	uint64_t k = 0;
	uint8_t b = 0, acc = 0;
	while (k < n) {
		uint64_t a = addr + k, chunk = PG - (a & (PG - 1));
		if (chunk > n - k)
			chunk = n - k;
		if (host_probe_load((const volatile void *)(uintptr_t)a, &b))
			return -EFAULT;
		const volatile uint8_t *p = (const volatile uint8_t *)(uintptr_t)a;
		acc ^= b;
		for (uint64_t i = 1; i < chunk; i++)
			acc ^= p[i];
		k += chunk;
	}
	sink = acc;
	return 0;
}

NO_SAN static long do_read(void)
{
	if (cmd.mode != HW_EACH_PAGE)
		return load_range(cmd.addr, cmd.len);
	for (uint64_t at = cmd.addr; at < cmd.addr + cmd.len; at += PG) {
		long r = load_range(at, (uint64_t)cmd.arg0);
		if (r)
			return r;
	}
	return 0;
}

NO_SAN static long do_write(void)
{
	uint64_t plen = cmd.data_len ? cmd.data_len : 1;
	if (!cmd.data_len)
		data[0] = 0;
	switch (cmd.mode) {
	case HW_FILL:
		return store_range(cmd.addr, cmd.len, data, plen, 0);
	case HW_EACH_PAGE:
		for (uint64_t at = cmd.addr; at < cmd.addr + cmd.len; at += PG) {
			long r = store_range(at, plen, data, plen, 0);
			if (r)
				return r;
		}
		return 0;
	default:
		return store_range(cmd.addr, plen, data, plen, 0);
	}
}

/* The data a copy_to_user puts, laid out in the memfd first (outside the measurement). */
static long prepare_memfd(uint64_t n)
{
	uint64_t plen = cmd.data_len ? cmd.data_len : 1;
	static uint8_t chunk[PG];
	if (!cmd.data_len)
		data[0] = 0;
	if (ftruncate(memfd, 0) || ftruncate(memfd, (off_t)(n ? n : 1)))
		return -errno;
	for (uint64_t done = 0; done < n;) {
		uint64_t c = n - done < PG ? n - done : PG;
		for (uint64_t i = 0; i < c; i++)
			chunk[i] = data[(done + i) % plen];
		if (pwrite(memfd, chunk, c, (off_t)done) != (ssize_t)c)
			return -EIO;
		done += c;
	}
	return 0;
}

/* Run the command, timed. */
NO_SAN static void run_measured(void)
{
	long r = 0;
	switch (cmd.op) {
	case HOP_NOP:
		MEASURE_BEGIN();
		MEASURE_END();
		break;
	case HOP_MMAP:
		MEASURE_BEGIN();
		r = sys6(SYS_mmap, (long)cmd.addr, (long)cmd.len, cmd.arg0, cmd.arg1, -1, 0);
		MEASURE_END();
		break;
	case HOP_MUNMAP:
		MEASURE_BEGIN();
		r = sys2(SYS_munmap, cmd.addr, cmd.len);
		MEASURE_END();
		break;
	case HOP_MPROTECT:
		MEASURE_BEGIN();
		r = sys3(SYS_mprotect, cmd.addr, cmd.len, cmd.arg0);
		MEASURE_END();
		break;
	case HOP_MADVISE:
		MEASURE_BEGIN();
		r = sys3(SYS_madvise, cmd.addr, cmd.len, cmd.arg0);
		MEASURE_END();
		break;
	case HOP_BRK:
		MEASURE_BEGIN();
		r = sys1(SYS_brk, cmd.addr);
		MEASURE_END();
		break;
	case HOP_READ:
		MEASURE_BEGIN();
		r = do_read();
		MEASURE_END();
		break;
	case HOP_WRITE:
		MEASURE_BEGIN();
		r = do_write();
		MEASURE_END();
		break;
	case HOP_COPY_FROM_USER:
		if ((r = sys2(SYS_ftruncate, memfd, 0)) != 0)
			break;
		MEASURE_BEGIN();
		r = sys4(SYS_pwrite64, memfd, cmd.addr, cmd.len, 0);
		MEASURE_END();
		break;
	case HOP_COPY_TO_USER:
		if ((r = prepare_memfd(cmd.len)) != 0)
			break;
		MEASURE_BEGIN();
		r = sys4(SYS_pread64, memfd, cmd.addr, cmd.len, 0);
		MEASURE_END();
		break;
	case HOP_MREMAP: {
		uint64_t new_addr;
		memcpy(&new_addr, data, sizeof new_addr);
		MEASURE_BEGIN();
		r = sys6(SYS_mremap, (long)cmd.addr, (long)cmd.len, cmd.arg0, cmd.arg1, (long)new_addr, 0);
		MEASURE_END();
		break;
	}
	case HOP_MLOCK:
		MEASURE_BEGIN();
		if (cmd.arg1 == 0)
			r = sys2(SYS_mlock, cmd.addr, cmd.len);
		else if (cmd.arg1 == 1)
			r = sys3(SYS_mlock2, cmd.addr, cmd.len, cmd.arg0);
		else
			r = sys2(SYS_munlock, cmd.addr, cmd.len);
		MEASURE_END();
		break;
	case HOP_MLOCKALL:
		MEASURE_BEGIN();
		r = cmd.arg1 ? sys1(SYS_munlockall, 0) : sys1(SYS_mlockall, cmd.arg0);
		MEASURE_END();
		break;
	case HOP_PROCESS_MADVISE: {
		long pidfd = sys2(SYS_pidfd_open, cmd.arg1, 0);
		if (pidfd < 0) {
			r = pidfd;
			ru_after = ru_before;
			break;
		}
		pm_iov.iov_base = (void *)(uintptr_t)cmd.addr;
		pm_iov.iov_len = cmd.len;
		MEASURE_BEGIN();
		r = sys6(SYS_process_madvise, pidfd, (long)&pm_iov, 1, cmd.arg0, cmd.mode, 0);
		MEASURE_END();
		sys1(SYS_close, pidfd);
		break;
	}
	case HOP_SETRLIMIT:
		if ((r = sys4(SYS_prlimit64, 0, cmd.arg0, 0, &rlim)) != 0) {
			ru_after = ru_before;
			break;
		}
		rlim.rlim_cur = cmd.addr;
		if (cmd.arg1)
			rlim.rlim_max = cmd.len;
		MEASURE_BEGIN();
		r = sys4(SYS_prlimit64, 0, cmd.arg0, &rlim, 0);
		MEASURE_END();
		break;
	default:
		r = -ENOSYS;
		ru_after = ru_before;
	}
	reply.result = r;
	reply.faults = faults_of(&ru_after) - faults_of(&ru_before);
}

/* ---- fork ------------------------------------------------------------------------------------ */

/* getrusage, fork, getrusage in one block: after fork returns in the parent every page is
 * copy-on-write, and the compiler must not spill anything to the stack in between.  (The
 * kernel's copy of the second rusage to user memory faults, but after it took the counts.) */
NO_SAN static long measured_fork(void)
{
	long ret;
	__asm__ volatile("movl $98, %%eax\n\t" /* getrusage(RUSAGE_THREAD, &ru_before) */
			 "movl $1, %%edi\n\t"
			 "movq %[b], %%rsi\n\t"
			 "syscall\n\t"
			 "movl $57, %%eax\n\t" /* fork() */
			 "syscall\n\t"
			 "movq %%rax, %%r12\n\t"
			 "movl $98, %%eax\n\t" /* getrusage(RUSAGE_THREAD, &ru_after) */
			 "movl $1, %%edi\n\t"
			 "movq %[a], %%rsi\n\t"
			 "syscall\n\t"
			 "movq %%r12, %%rax\n\t"
			 : "=&a"(ret)
			 : [b] "r"(&ru_before), [a] "r"(&ru_after)
			 : "rdi", "rsi", "rdx", "rcx", "r11", "r12", "memory");
	return ret;
}

/* ---- messages ---------------------------------------------------------------------------------- */

static void die(void)
{
	sys1(SYS_exit_group, 111);
	__builtin_unreachable();
}

static void send_all(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = send(sock, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die();
		p += w;
		n -= (size_t)w;
	}
}

static void recv_all(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = recv(sock, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die(); /* the driver is gone */
		p += r;
		n -= (size_t)r;
	}
}

/* The command, and the descriptor that came with it (HOP_FORK), or -1. */
static int recv_cmd(void)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { &cmd, sizeof cmd };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof u.buf };
	ssize_t r;
	do
		r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		die();
	int fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(c), sizeof fd);
	if ((size_t)r < sizeof cmd)
		recv_all((uint8_t *)&cmd + r, sizeof cmd - (size_t)r);
	if (cmd.data_len > HOST_DATA_MAX)
		die();
	if (cmd.data_len)
		recv_all(data, cmd.data_len);
	return fd;
}

static void send_reply(void)
{
	send_all(&reply, sizeof reply);
}

/* ---- warm-up ------------------------------------------------------------------------------------- */

static void __attribute__((noinline)) touch_stack(void)
{
	volatile uint8_t below[STACK_PREFAULT];
	for (size_t i = 0; i < sizeof below; i += 512)
		below[i] = 0;
	sink = below[0];
}

static void touch(volatile uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 512)
		p[i] = p[i];
	if (n)
		p[n - 1] = p[n - 1];
}

/*
 * Make private, and map, everything a measurement may touch besides its target: the stack,
 * the static buffers, the alternate signal stack (and the signal frame and return path: one
 * real SIGSEGV through a probe), and the code of every operation (each run once on the scratch
 * pages).  Then measure an empty operation a few times: what it costs is the overhead.
 */
static void warmup(void)
{
	struct host_cmd saved = cmd;
	uint8_t b;
	touch_stack();
	touch((volatile uint8_t *)altstack, sizeof altstack);
	touch((volatile uint8_t *)data, sizeof data);
	touch((volatile uint8_t *)&ru_before, sizeof ru_before);
	touch((volatile uint8_t *)&ru_after, sizeof ru_after);
	touch((volatile uint8_t *)&reply, sizeof reply);
	touch((volatile uint8_t *)&cmd, sizeof cmd);
	touch((volatile uint8_t *)&sink, 1);
	touch((volatile uint8_t *)&pm_iov, sizeof pm_iov);
	touch((volatile uint8_t *)&rlim, sizeof rlim);
	for (int round = 0; round < 2; round++) {
		/* each operation's code path, on the scratch pages */
		static const struct host_cmd ops[] = {
			{ .op = HOP_NOP },
			{ .op = HOP_MPROTECT, .len = PG, .arg0 = PROT_READ | PROT_WRITE },
			{ .op = HOP_MADVISE, .len = PG, .arg0 = MADV_NORMAL },
			{ .op = HOP_READ, .len = PG },
			{ .op = HOP_READ, .len = PG, .mode = HW_EACH_PAGE, .arg0 = 8 },
			{ .op = HOP_WRITE, .len = 2 * PG, .mode = HW_FILL },
			{ .op = HOP_WRITE, .len = PG, .mode = HW_EACH_PAGE },
			{ .op = HOP_WRITE, .len = 8, .mode = HW_ONCE },
			{ .op = HOP_COPY_FROM_USER, .len = 16 },
			{ .op = HOP_COPY_TO_USER, .len = 16 },
			{ .op = HOP_BRK },
			{ .op = HOP_MMAP, .len = PG, .arg0 = PROT_READ | PROT_WRITE,
			  .arg1 = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED },
		};
		for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
			cmd = ops[i];
			cmd.addr = (uint64_t)(uintptr_t)scratch;
			cmd.data_len = 1;
			data[0] = 0x5a;
			if (cmd.op == HOP_BRK)
				cmd.addr = 0; /* brk(0): asks, changes nothing */
			if (cmd.op == HOP_MMAP)
				cmd.addr = (uint64_t)(uintptr_t)scratch + 2 * PG; /* replaces page 2 */
			if (cmd.op == HOP_WRITE && cmd.mode == HW_FILL)
				cmd.addr = (uint64_t)(uintptr_t)scratch + PG - 1; /* one byte, then page 1 faults */
			run_measured();
		}
		/* the probes' fixups: page 1 of the scratch pages is PROT_NONE */
		host_probe_load(scratch + PG, &b);
		host_probe_store(scratch + PG, 0);
		/* the munmap path (a length of 0 is refused: changes nothing) */
		cmd.op = HOP_MUNMAP;
		cmd.addr = (uint64_t)(uintptr_t)scratch;
		cmd.len = 0;
		run_measured();
	}
	/* all of this program's code, measured_fork's included: a fork child has none of it
	 * mapped (text is file memory, which fork does not copy), and fault-around maps it in
	 * 64 KiB blocks */
	for (const volatile char *p = __executable_start; p < etext; p += PG)
		sink = (uint8_t)*p;
	/* the overhead: the cheapest empty measurement */
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 5; i++) {
		cmd.op = HOP_NOP;
		run_measured();
		if (reply.faults < best)
			best = reply.faults;
	}
	cmd = saved;
	reply.result = 0;
	reply.faults = best;
}

/* ---- the loop ---------------------------------------------------------------------------------- */

extern const unsigned int __rseq_size __attribute__((weak)); /* glibc 2.35 */

static void hello(void)
{
	memset(&reply, 0, sizeof reply);
	/* the driver checks that rseq is off (see host.c) */
	reply.result = &__rseq_size ? (int64_t)__rseq_size : 0;
	reply.pid = (int32_t)sys1(SYS_getpid, 0);
	reply.brk = (uint64_t)sys1(SYS_brk, 0);
	/* start_brk: field 47 of /proc/self/stat */
	char buf[2048];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	reply.start_brk = 0;
	if (n > 0) {
		buf[n] = 0;
		char *p = strrchr(buf, ')');
		int field = 2;
		while (p && *p && field < 47) {
			if (*p == ' ')
				field++;
			p++;
		}
		if (p && field == 47)
			reply.start_brk = strtoull(p, NULL, 10);
	}
	send_reply();
}

static void __attribute__((noreturn)) serve(void)
{
	for (;;) {
		int fd = recv_cmd();
		memset(&reply, 0, sizeof reply);
		switch (cmd.op) {
		case HOP_WARMUP:
			warmup();
			send_reply();
			break;
		case HOP_EXIT:
			send_reply();
			sys1(SYS_exit_group, 0);
			break;
		case HOP_FORK: {
			if (fd < 0) {
				reply.result = -EBADF;
				send_reply();
				break;
			}
			long pid = measured_fork();
			if (pid == 0) {
				/* the child: talk to the driver on the socket that came with the command */
				close(sock);
				sock = fd;
				hello();
				break;
			}
			close(fd);
			reply.result = pid < 0 ? pid : 0;
			reply.pid = pid < 0 ? 0 : (int32_t)pid;
			reply.faults = faults_of(&ru_after) - faults_of(&ru_before);
			send_reply();
			break;
		}
		default:
			if (fd >= 0)
				close(fd);
			run_measured();
			send_reply();
		}
	}
}

__attribute__((constructor)) static void host_worker_entry(void)
{
	const char *env = getenv(HOST_WORKER_ENV);
	if (!env)
		return;
	char *end;
	sock = (int)strtol(env, &end, 10);
	int cpu = (int)strtol(end, NULL, 10);

	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set))
		die();
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		die();
	/* no capabilities: cowvm's processes are unprivileged (e.g. a MAP_FIXED mapping below
	 * mmap_min_addr is EPERM without CAP_SYS_RAWIO), and the driver is root only to read /proc */
	struct { uint32_t version; int pid; } caphdr = { 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0 };
	struct { uint32_t effective, permitted, inheritable; } capdata[2];
	memset(capdata, 0, sizeof capdata);
	if (syscall(SYS_capset, &caphdr, capdata))
		die();
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* children are reaped by the kernel: the driver watches them through pidfds */
	signal(SIGCHLD, SIG_IGN);
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	if (sigaltstack(&ss, NULL) || sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
		die();
	void *s = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED || mprotect((char *)s + PG, PG, PROT_NONE))
		die();
	scratch = s;
	memfd = (int)syscall(SYS_memfd_create, "cowvm-compare", 1u /* MFD_CLOEXEC */);
	if (memfd < 0)
		die();
	hello();
	serve();
}
