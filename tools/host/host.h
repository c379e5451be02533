/*
 * host.h - the host side of `cowvm compare`: real Linux processes that replay a scenario, and
 * what /proc shows of them.
 *
 * One worker process (tools/host_worker.c) stands for one scenario process.  host_spawn
 * starts one by executing this program again (a fresh address space, as `spawn` promises);
 * host_fork makes the worker fork itself.  Every worker is pinned to one CPU and has THP
 * disabled.  The driver (this side) reads the workers' /proc files between operations, while
 * they wait for the next command, so that reading never disturbs a measurement.
 *
 * Addresses.  Regions are mapped at the addresses cowvm chose (MAP_FIXED_NOREPLACE): cowvm
 * places mmaps top-down from 0x7ffff7fff000 as a kernel without ASLR would, and the workers
 * run with ASLR, so their own stack, libraries and heap are elsewhere.  A new worker whose own
 * mappings come within a page of an address the scenario uses (host_config.window) is
 * replaced by a fresh one (another random layout).  The heap cannot be placed: each worker's
 * heap starts at its own start_brk, and heap addresses are translated by the difference
 * (host_proc.heap_delta).
 */
#ifndef COWVM_TOOLS_HOST_H
#define COWVM_TOOLS_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "host/host_proto.h"

struct host_interval {
	uint64_t start, end;    /* [start, end) */
};

struct host_config {
	const char *exe;                 /* the worker program; NULL = /proc/self/exe */
	int cpu;                         /* the CPU every worker is pinned to */
	const struct host_interval *window; /* addresses the scenario uses (not the heap) */
	int nr_window;
	uint64_t heap_span;              /* bytes above start_brk the heap may reach */
};

struct host_proc {
	bool live;
	int pid;
	int sock;
	int pidfd;
	uint64_t start_brk;
	uint64_t overhead;               /* faults of an empty measurement (after the warm-up) */
	int respawns;                    /* workers discarded for their layout before this one */
};

struct host {
	struct host_config cfg;
	struct host_proc *procs;
	int nr_procs;
	int kpageflags_fd;               /* -1 when unreadable (not root) */
	char error[512];                 /* what went wrong, for the last call that failed */
};

/* A VMA as /proc/PID/smaps shows it; sizes in kB. */
struct host_vma {
	uint64_t start, end;
	char perms[5];                   /* "rw-p" */
	uint64_t rss, pss, shared_clean, shared_dirty, private_clean, private_dirty, anonymous;
	uint64_t swap, swap_pss;
	uint64_t locked;
	char vmflags[96];                /* "rd wr mr mw me ac" */
};

/* Whether this process can read frame numbers in pagemap (CAP_SYS_ADMIN): tried on a page of
 * its own stack, not guessed from the uid (root in a container may lack the capability). */
bool host_frames_readable(void);

bool host_init(struct host *h, const struct host_config *cfg);
void host_fini(struct host *h);          /* kills every worker left */

/* A new worker (index into h->procs), or -1 with h->error. */
int host_spawn(struct host *h);
/* The worker `parent` forks.  *child is the new index; r is the parent's reply (its fault
 * delta around the fork).  False with h->error if the fork could not be done or answered. */
bool host_fork(struct host *h, int parent, int *child, struct host_reply *r);
/* The worker exits; returns when its address space is gone. */
bool host_exit(struct host *h, int proc);
/* One measured operation (data: cmd->data_len bytes).  r->faults is already net of the
 * worker's overhead. */
bool host_call(struct host *h, int proc, const struct host_cmd *cmd, const void *data,
	       struct host_reply *r);

/* /proc readers.  False with h->error when the file cannot be read. */
bool host_pagemap(struct host *h, int proc, uint64_t addr, uint64_t npages, uint64_t *words);
bool host_kpageflags(struct host *h, uint64_t pfn, uint64_t *flags); /* false: unreadable */
bool host_smaps(struct host *h, int proc, struct host_vma **vmas, int *count); /* free(*vmas) */
/* The same parser over any smaps text (cowvm's cowvm_proc_smaps too); false: out of memory. */
bool host_parse_smaps(FILE *f, struct host_vma **vmas, int *count);
bool host_faults(struct host *h, int proc, uint64_t *faults); /* /proc/PID/stat minflt + majflt */
bool host_majflt(struct host *h, int proc, uint64_t *majflt); /* /proc/PID/stat majflt */
bool host_status(struct host *h, int proc, char *buf, size_t len); /* the text of /proc/PID/status */
/* /proc/PID/mem, as remote_read / remote_write: bytes moved or -errno. */
int64_t host_mem_access(struct host *h, int proc, uint64_t addr, void *buf, uint64_t len, bool write);
int host_clear_refs(struct host *h, int proc, int what); /* 0 or -errno */
/* Which of npages pages from addr map the zero page, by the PAGEMAP_SCAN ioctl (Linux 6.7, no
 * privilege needed; kpageflags needs root).  False when the ioctl is not there. */
bool host_zero_pages(struct host *h, int proc, uint64_t addr, uint64_t npages, bool *zero);

#endif /* COWVM_TOOLS_HOST_H */
