/*
 * runner.h - the state of one scenario run, shared by the files that make it up:
 *   scenario_run.c     the machine, the tasks, the operations, the end of the run
 *   scenario_expect.c  expect lines
 *   views.c            show lines and --show (text as /proc prints it, or JSON)
 *   dot.c              the Graphviz picture (show graph, --dot)
 *   report.c           how events, failures and summaries are written (text or JSON)
 *
 * Everything runs on one host thread: the scenario's tasks take turns, one line at a time.
 * The tracer is called by the library in the middle of a fault, with its locks held, so it only
 * formats and writes: it never calls back into the library.
 */
#ifndef COWVM_TOOLS_RUNNER_H
#define COWVM_TOOLS_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cowvm.h"
#include "scenario.h"

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

/* Counters at a mark, for `since`. */
struct run_mark {
	bool set;
	struct cowvm_vmstat vmstat;
	int nr_processes;         /* entries below; processes made later count from 0 */
	uint64_t *process_faults;
	struct cowvm_task_stats *process_stats; /* rss, vmas, ... of the process at the mark */
	int nr_instances;
	struct cowvm_task_stats *task_stats;    /* by task instance */
};

struct run {
	const struct scenario *s;
	const struct run_opts *opts;
	FILE *out, *err;
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

	const struct op *op;            /* the line being run */
	bool line_pending;              /* --trace: op's line is printed only if it faults */
	/* the last operation that can fail: its result, for expect error / expect result */
	const struct op *last_op;
	int last_error;                 /* 0 or a positive errno */
	int64_t last_result;
	bool result_checked;            /* an expect error/result looked at it */
	uint8_t *kbuf;                  /* copy_from_user's and remote_read's destination */
	size_t kbuf_len;
	/* the dput or dget line being run: the end of its destination range, for the extents of
	 * the phase events (report_fault); the report of a merge, for its result */
	uint64_t dput_dst_end;
	struct cowvm_merge_report merge;
	bool has_merge;                 /* merge holds the report of op (a dget merge) */
	bool snapped;                   /* a dput snap succeeded: the graph looks for images */

	int expectations, failures;
	bool bad_input;                 /* a runtime error in the scenario itself: stop */
};

/* ---- scenario_run.c ------------------------------------------------------------------------ */

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

/* Stats of any live task of a process (rss and mm counters are per process). */
bool process_stats(struct run *r, int process, struct cowvm_task_stats *out);

/* Read [addr, addr + len) as task t would, page by page.  0 or -EFAULT. */

/* The region (id, or -1) / its name (or NULL) that labels [start, end) in a process: one that
 * overlaps it and that the process mapped or inherited.  The heap is not a label here. */
int region_at(struct run *r, int process, uint64_t start, uint64_t end);
const char *region_label(struct run *r, int process, uint64_t start, uint64_t end);

/* ---- scenario_expect.c ---------------------------------------------------------------------- */

void run_expect(struct run *r, const struct op *op);

/* ---- views.c / dot.c ------------------------------------------------------------------------- */

struct vma_list {
	struct cowvm_vma_info *vmas; /* owned: free(list.vmas) */
	int count, capacity;
};
/* The VMAs of t's process, in address order.  False if the list could not be made. */
bool collect_vmas(cowvm_task_t *t, struct vma_list *list);

/* Any live task of the process, or NULL when it has none left. */
cowvm_task_t *process_task(struct run *r, int process);

/* The name column of /proc/PID/maps: [heap], [anon:NAME], [anon_shmem:NAME], /dev/zero ... */
void vma_name(struct run *r, int process, const struct cowvm_vma_info *v, char *out, size_t len);

/* Show a view for one process (process index), or every live process when process < 0.  With
 * a location (has_range), only [start, start + length). */
void show_view(struct run *r, enum view_kind view, int process, bool has_range, uint64_t start,
	       uint64_t length);

/* The machine as Graphviz text: processes -> VMAs -> pages -> frames. */
void write_graph(struct run *r, FILE *f);
/* --dot: write <dir>/<scenario>.dot and render <scenario>.svg when `dot` is on the PATH. */
void write_graph_files(struct run *r);

/* ---- report.c -------------------------------------------------------------------------------- */

void report_fault(void *arg, const struct cowvm_fault_event *ev); /* the tracer */
void report_line(struct run *r, const struct op *op);              /* --trace: the line run */
void report_op_result(struct run *r, const struct op *op);         /* --json: what it returned */
/* An expectation failed (1) or a scenario line was bad input (2): write file:line: message. */
void report_failure(struct run *r, const struct op *op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void report_bad_input(struct run *r, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void report_expect_passed(struct run *r, const struct op *op);      /* --json only */
void report_summary(struct run *r, int status);
const char *task_name_by_tid(struct run *r, int tid, int pid);
const char *process_name_by_pid(struct run *r, int pid);

/* JSON helpers: a quoted, escaped string; bytes as a string. */
void json_string(FILE *f, const char *s);
void json_bytes(FILE *f, const uint8_t *bytes, size_t len);

/* bytes as a C-like literal for messages: "ab\x00c", at most max bytes then "..." */
void format_bytes(char *out, size_t outlen, const uint8_t *bytes, size_t len);

#endif /* COWVM_TOOLS_RUNNER_H */
