/*
 * host_proto.h - what the compare driver (tools/host.c) and a host worker process
 * (tools/host_worker.c) say to each other over their socket.
 *
 * One worker is one real Linux process standing for one scenario process.  The driver sends a
 * command; the worker performs it and answers with one reply.  Operations on memory are timed
 * by the worker itself: getrusage(RUSAGE_THREAD) just before and just after the one system call
 * or the one loop of loads or stores, with nothing else in between that could fault (the
 * worker's stack, buffers, alternate signal stack and code are prefaulted by HOP_WARMUP after
 * it starts and after every fork).
 *
 * Addresses in commands are host addresses: the driver has already translated them (only the
 * heap moves, see host.h).
 */
#ifndef COWVM_TOOLS_HOST_PROTO_H
#define COWVM_TOOLS_HOST_PROTO_H

#include <stdint.h>

#define HOST_WORKER_ENV "COWVM_HOST_WORKER" /* "FD CPU": the socket and the CPU to pin to */
#define HOST_DATA_MAX 65536                  /* bytes of data one command may carry */

enum host_op {
	HOP_WARMUP = 1,   /* prefault everything the measurements touch; reply: the overhead */
	HOP_NOP,          /* an empty measurement (calibration) */
	HOP_MMAP,         /* addr len arg0 = prot arg1 = flags */
	HOP_MUNMAP,       /* addr len */
	HOP_MPROTECT,     /* addr len arg0 = prot */
	HOP_MADVISE,      /* addr len arg0 = advice */
	HOP_BRK,          /* addr = the new break */
	HOP_READ,         /* addr len: load every byte (HW_EACH_PAGE: arg0 bytes at each page) */
	HOP_WRITE,        /* addr len mode data */
	HOP_FORK,         /* carries the child's socket (SCM_RIGHTS); reply: the child's pid */
	HOP_EXIT,         /* reply, then exit_group(0) */
	HOP_COPY_FROM_USER, /* addr len: write(2) of the bytes to a memfd (the kernel reads them) */
	HOP_COPY_TO_USER,   /* addr len mode data: pread(2) from a memfd into the memory */
	HOP_MREMAP,       /* addr = old address, len = old length, arg0 = new length,
			     arg1 = flags, data: the new address (8 bytes) */
	HOP_MLOCK,        /* addr len; arg1 = 0: mlock, 1: mlock2(arg0 = flags), 2: munlock */
	HOP_MLOCKALL,     /* arg0 = flags; arg1 = 1: munlockall */
	HOP_PROCESS_MADVISE, /* addr len (one iovec) arg0 = advice, arg1 = target pid,
				mode = flags (the pidfd is opened outside the measurement) */
	HOP_SETRLIMIT,    /* arg0 = resource, addr = cur, len = max; arg1 = 0: keep the max */
};

/* HOP_WRITE: where the data goes (the same rules as the scenario runner's write_data) */
enum host_write_mode {
	HW_ONCE,          /* the data once, at addr */
	HW_EACH_PAGE,     /* the data at the start of every page of [addr, addr + len) */
	HW_FILL,          /* the data repeated over len bytes from addr */
};

struct host_cmd {
	uint32_t op;
	uint32_t mode;          /* enum host_write_mode */
	uint64_t addr, len;
	int64_t arg0, arg1;
	uint32_t data_len;      /* bytes of data that follow the command on the socket */
	uint32_t pad;
};

struct host_reply {
	int64_t result;         /* the call's result, or -errno; loops: 0 or -EFAULT */
	uint64_t faults;        /* min_flt + maj_flt taken between the two getrusage calls */
	int32_t pid;            /* HELLO and HOP_FORK: the (new) process */
	int32_t pad;
	uint64_t start_brk;     /* HELLO: where the heap starts (the kernel's start_brk) */
	uint64_t brk;           /* HELLO: the break now (== start_brk: the heap is empty) */
};

#endif /* COWVM_TOOLS_HOST_PROTO_H */
