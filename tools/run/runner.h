/*
 * runner.h - the runner's own state, shared by the files that make it up (internal to run/;
 * the rest of the program sees run/run.h and the step log):
 *   run.c      the machine, the tasks, the operations, the end of the run
 *   expect.c   expect lines
 *   capture.c  snapshots of the machine for the step log (struct log_state)
 *
 * Everything runs on one host thread: the scenario's tasks take turns, one line at a time.
 * The tracer is called by the library in the middle of a fault, with its locks held, so it only
 * appends to the log: it never calls back into the library.
 */
#ifndef COWVM_TOOLS_RUN_RUNNER_H
#define COWVM_TOOLS_RUN_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cowvm.h"
#include "lang/scenario.h"
#include "log/step_log.h"
#include "run/data.h"
#include "run/run.h"

/* A task the scenario named.  Indexed by the scenario's task id; a name can be reused after its
 * task exited, so `instance` tells the two apart (marks are kept by instance). */
struct run_task {
	cowvm_task_t *task;       /* NULL before it is made, after it exits, or if making it failed */
	int process;              /* index into run.processes */
	int instance;             /* unique over the run */
	int made_at;              /* line that made it, for messages */
};

/* A process: the tasks that share one mm. */
struct run_process {
	int pid;
	const char *name;         /* the name of the task that made it (scenario-owned) */
	int live_threads;
	uint64_t exited_faults;   /* faults of its threads that exited (RUSAGE_SELF keeps them) */
	uint64_t start_brk;       /* where its heap starts */
	bool *knows_region;       /* regions it mapped or inherited, to label its VMAs */
};

/* Where a region is; one address for every process that has it (mmap never reuses a name). */
struct run_region {
	bool mapped;              /* the mmap (or brk) that defines it has succeeded */
	uint64_t start, length;
	int made_at;              /* the line that defined it */
};

/* A pin or GET reference the scenario took (`pin ... as NAME`), by pin id. */
struct run_pin {
	cowvm_pin_t *pin;         /* NULL before it is taken, after unpin, or if taking it failed */
	size_t npages;
	unsigned foll;            /* COWVM_FOLL_* it was taken with */
	int made_at;              /* the line that took it */
};

/* The pagemap words of one region's pages in one process at a mark (frame identity across
 * steps: `expect page ... frame same as ... at mark M`). */
struct mark_frames {
	int process, region;
	uint64_t npages;
	uint64_t *words;          /* owned */
};

/* Counters at a mark, for `since`. */
struct run_mark {
	bool set;
	struct cowvm_vmstat vmstat;
	int nr_processes;         /* entries below; processes made later count from 0 */
	uint64_t *process_faults;
	struct cowvm_task_stats *process_stats; /* rss, vmas, ... of the process at the mark */
	int nr_instances;
	struct cowvm_task_stats *task_stats;    /* by task instance */
	struct mark_frames *frames;             /* every mapped region in every live process */
	int nr_frames;
	uint64_t *status_kb;                    /* [process * nr_status_fields + field], or
						   UINT64_MAX when the line is missing */
};

struct run {
	const struct scenario *s;
	struct step_log *log;
	cowvm_t *vm;
	uint64_t zero_pfn;
	uint64_t free_after_create;

	struct run_task *tasks;         /* by task id */
	struct run_process *processes;
	int nr_processes;
	int nr_instances;
	struct run_region *regions;     /* by region id */
	struct run_mark *marks;         /* by mark id */
	struct run_pin *pins;           /* by pin id */
	struct run_snapshot *snapshots; /* by snapshot id */

	const struct op *op;            /* the line being run */
	/* the last operation that can fail: its result, for expect error / expect result */
	const struct op *last_op;
	int last_error;                 /* 0 or a positive errno */
	int64_t last_result;
	bool result_checked;            /* an expect error/result looked at it */
	uint8_t *kbuf;                  /* copy_from_user's and remote_read's destination */
	size_t kbuf_len;
	/* the dput or dget line being run: the end of its destination range, for the extents of
	 * the phase events (run_tracer); the report of a merge, for its result */
	uint64_t dput_dst_end;
	struct cowvm_merge_report merge;
	bool has_merge;                 /* merge holds the report of op (a dget merge) */
	bool snapped;                   /* a dput snap succeeded: the graph looks for images */

	int expectations, failures;
	bool bad_input;                 /* a runtime error in the scenario itself: stop */
	/* the step stream: inside a fault (between handle_mm_fault's ENTER and LEAVE), and the
	 * index of that ENTER in the log (-1: not kept) */
	bool in_fault;
	int fault_tree;
	int trace_depth;                /* the stream's depth now (ENTER +1, LEAVE -1) */
};

/* A snapshot the scenario took (`snapshot P as NAME`), by snapshot id.  The library frees it
 * when its process exits, so the runner keeps the process to know whether it still may be used. */
struct run_snapshot {
	cowvm_snapshot_t *snap;   /* NULL before it is taken, or if taking it failed */
	int process;              /* index into run.processes */
	int made_at;              /* the line that took it */
};

/* ---- run.c ------------------------------------------------------------------------ */

/* The address and length a location means now.  A location that is not a range gets length 1
 * (or its explicit size).  False, with bad input reported, if the region is not mapped or a page
 * index is past its end. */
bool resolve_location(struct run *r, const struct location *loc, uint64_t *start, uint64_t *length);

/* The task behind a scenario task id (the parser made sure it is alive; a failed fork or
 * spawn leaves it NULL, which is reported as bad input). */
cowvm_task_t *task_of(struct run *r, int id);

/* The pin behind a scenario pin id (NULL, reported as bad input, if taking it failed). */
struct run_pin *pin_of(struct run *r, int id);

/* Whether a pin (held or not) holds frame pfn in any of its pages. */
bool pin_holds_frame(const struct run_pin *rp, uint64_t pfn);

/* The names of the pins holding frame pfn, ", "-separated, into out ("" if none). */
void pins_holding(struct run *r, uint64_t pfn, char *out, size_t len);

/* Faults of a process (all its threads, living or exited). */
uint64_t process_faults(struct run *r, int process);

/* The value in kB of a /proc/PID/status field of a process; false if it has no task left. */
bool process_status_kb(struct run *r, int process, int field, uint64_t *kb);

/* Stats of any live task of a process (rss and mm counters are per process). */
bool process_stats(struct run *r, int process, struct cowvm_task_stats *out);

/* ---- expect.c ---------------------------------------------------------------------- */

void run_expect(struct run *r, const struct op *op);

/* The VMAs of t's process, in address order (copied out: cowvm_for_each_vma holds the
 * mmap_lock while it calls back).  False if the list could not be made. */
struct vma_list {
	struct cowvm_vma_info *vmas; /* owned: free(list.vmas) */
	int count, capacity;
};
bool collect_vmas(cowvm_task_t *t, struct vma_list *list);

/* Any live task of the process, or NULL when it has none left. */
cowvm_task_t *process_task(struct run *r, int process);

/* An expectation failed, or the run did: a LOG_FAILURE for file:line (the caller counts it). */
void run_failure(struct run *r, const struct op *op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The scenario is bad input: the run stops after this line. */
void run_bad_input(struct run *r, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void run_expect_passed(struct run *r, const struct op *op);

/* ---- capture.c --------------------------------------------------------------------------------- */

/* A snapshot of the machine now, kept in the log; its index, or -1 (out of memory). */
int capture_state(struct run *r);

/* bytes as a C-like literal for messages: "ab\x00c", at most 48 bytes then "..." */
void format_bytes(char *out, size_t outlen, const uint8_t *bytes, size_t len);

#endif /* COWVM_TOOLS_RUN_RUNNER_H */
