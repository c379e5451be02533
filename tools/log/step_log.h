/*
 * step_log.h - the step log: what a scenario run did, line by line, and what the machine looked
 * like.  It is the one data structure between the runner and the renderers:
 *
 *     lang/ (lex, parse)  ->  run/ (executes, records)  ->  log  ->  render/ (text, JSON,
 *                                                                  /proc views, dot, HTML)
 *
 * The runner appends events as the run goes (a line starts, a fault or a kernel step happens,
 * a line returns, an expectation passes or fails, a view is asked for ...) and, where a
 * renderer will need it, a snapshot of the machine (struct log_state: processes, VMAs, page
 * table entries, frames with their mappers, pins, counters).  A renderer reads only the log:
 * it never calls the library or the runner, so every output of a run is a pure function of it.
 * An observer, if one is set, is called after each append, so a console renderer can print as
 * the run goes.
 *
 * Ownership: the log owns its events, messages, states and strings; it points into the
 * scenario (names, operations), which must outlive it.  Everything runs on one host thread.
 */
#ifndef COWVM_TOOLS_STEP_LOG_H
#define COWVM_TOOLS_STEP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cowvm.h"
#include "lang/scenario.h"

/* ---- the machine at one moment ------------------------------------------------------------- */

/* A page with a page-table entry (pages of a VMA without one have the VMA's none_word). */
struct state_page {
	uint64_t addr;
	uint64_t pagemap;          /* the pagemap word (cowvm_pagemap) */
	uint64_t pte;              /* the raw x86-64 PTE (cowvm_pte) */
};

struct state_vma {
	struct cowvm_vma_info info;
	bool has_smaps;            /* cowvm_smaps of the whole VMA succeeded */
	struct cowvm_smaps smaps;
	uint64_t none_word;        /* the pagemap word of its pages that have no PTE */
	int first_page, nr_pages;  /* its pages with a PTE, in log_state.pages, by address */
};

struct state_process {
	int pid;
	const char *name;          /* the task that made it (scenario-owned) */
	int live_threads;
	bool live;                 /* it had a live task: what follows was read */
	uint64_t start_brk, brk;
	uint64_t faults;           /* of all its threads, living or exited */
	struct cowvm_task_stats stats; /* of any live task (rss, mm counters are per process) */
	bool has_rollup;
	struct cowvm_smaps rollup; /* smaps_rollup */
	bool vmas_ok;              /* the VMA list could be read */
	int first_vma, nr_vmas;    /* in log_state.vmas, by address */
	bool *knows_region;        /* by region id: regions it mapped or inherited (owned) */
};

/* A (process, address) that maps a frame, as rmap finds it; pid < 0: a dput SNAP image of
 * the child -pid (cowvm_rmap_walk). */
struct state_mapper {
	int pid;
	uint64_t addr;
};

struct state_frame {
	struct cowvm_frame_info info;
	int first_mapper, nr_mappers; /* in log_state.mappers (none for the zero page) */
};

struct state_pin {
	bool held;
	unsigned foll;             /* COWVM_FOLL_* it was taken with */
	size_t npages;
	uint64_t *pfns;            /* npages frames (owned) */
};

struct state_region {
	bool mapped;
	uint64_t start, length;
};

struct log_state {
	int step;                  /* the step after which it was taken */
	struct cowvm_vmstat vmstat;
	uint64_t zero_pfn;
	bool snapped;              /* a dput SNAP has succeeded in this run */
	struct state_process *processes; /* every process of the run so far, in the order made */
	int nr_processes;
	struct state_vma *vmas;
	int nr_vmas;
	struct state_page *pages;
	int nr_pages;
	struct state_frame *frames; /* anon, shmem, zero-page and pinned-only frames, by pfn */
	int nr_frames;
	struct state_mapper *mappers;
	int nr_mappers;
	struct state_pin *pins;    /* by pin id */
	int nr_pins;
	struct state_region *regions; /* by region id */
	int nr_regions;
};

/* ---- events ------------------------------------------------------------------------------- */

enum log_event_kind {
	LOG_LINE,                  /* a scenario line starts to run */
	LOG_FAULT,                 /* a page fault (the library's tracer) */
	LOG_TRACE,                 /* a kernel step: enter, leave or note (cowvm_set_trace) */
	LOG_PHASE,                 /* a phase of a dput or dget (not a fault) */
	LOG_RESULT,                /* what a line that can fail returned */
	LOG_EXPECT,                /* an expectation (or `check`) held */
	LOG_FAILURE,               /* an expectation failed, or the run did: message */
	LOG_BAD_INPUT,             /* the scenario is bad input: message */
	LOG_VIEW,                  /* `show VIEW ...`: the view of a state */
	LOG_ECHO,                  /* `echo TEXT` */
	LOG_END,                   /* every line ran: the final state, before the teardown */
	LOG_SUMMARY,               /* the run's outcome (the last event) */
};

/* LOG_FAULT and LOG_PHASE */
struct log_fault {
	const char *task;          /* the scenario's name of the task (log-owned) */
	const char *access;        /* faults: read, write, kernel-read, gup-write, unshare,
				      remote-read ...; phases: the call, "dput" or "dget" */
	int pid, tid;
	uint64_t addr;
	uint64_t end;              /* phases: where the region ends in the destination, 0 unknown */
	const char *path[COWVM_TRACE_MAX_PATH]; /* Linux function names, outermost first */
	int npath;
	uint64_t old_pfn, new_pfn; /* faults: the frames before and after (0 = none) */
	const char *outcome;       /* "ok", "SIGSEGV", "OOM", "fixup" ... */
	int depth;                 /* phases: the depth of the step stream they happen at */
	int tree;                  /* faults: the event index of its handle_mm_fault ENTER (its
				      call tree runs from there to this event), -1 if not kept */
};

/*
 * LOG_TRACE: one event of the library's step stream.  The steps of a fault come before its
 * LOG_FAULT (which ends the tree, before handle_mm_fault's LEAVE) and have in_fault set; a
 * renderer prints them with the fault.  Other steps (fork, exit, munmap, mprotect, madvise,
 * dput, pin ...) stand alone.  Strings are the library's (static) except task.
 */
struct log_trace {
	int kind;                  /* COWVM_TRACE_ENTER, _LEAVE, _NOTE */
	int depth;                 /* nesting: 0 outermost */
	const char *name;          /* the Linux function, or what a note found or decided */
	const char *reason;        /* a note's why, or NULL */
	bool decision;             /* the rule that chose a fault's outcome */
	bool in_fault;             /* inside a fault's handle_mm_fault */
	int pid;
	const char *task;          /* depth 0 ENTER: the scenario's name of the task (log-owned) */
	int nfacts;
	struct cowvm_trace_fact facts[COWVM_TRACE_MAX_FACTS];
};

#define LOG_PIN_FRAMES 16          /* frames of a pin kept in its result */

struct log_result {
	int error;                 /* 0 or a positive errno */
	int64_t value;
	bool has_merge;            /* a dget merge: its report */
	struct cowvm_merge_report merge;
	size_t pin_pages;          /* a pin line: pages held, and the first frames */
	uint64_t pin_pfns[LOG_PIN_FRAMES];
};

struct log_view {
	int view;                  /* enum view_kind */
	int process;               /* index in the state's processes, -1: the whole machine */
	bool has_range;
	uint64_t start, length;
	int state;                 /* index in log->states */
};

struct log_summary {
	int status;                /* RUN_OK, RUN_EXPECTATION_FAILED, RUN_BAD_INPUT */
	int expectations, failures;
};

struct log_event {
	enum log_event_kind kind;
	int step;                  /* index in log->steps */
	int line;                  /* the scenario line it belongs to, 0 = none */
	const struct op *op;       /* that line's operation, or NULL */
	char *message;             /* LOG_FAILURE, LOG_BAD_INPUT (owned) */
	union {
		struct log_fault fault;     /* LOG_FAULT, LOG_PHASE */
		struct log_trace trace;     /* LOG_TRACE */
		struct log_result result;   /* LOG_RESULT */
		struct log_view view;       /* LOG_VIEW */
		int state;                  /* LOG_END: index in log->states, -1 */
		struct log_summary summary; /* LOG_SUMMARY */
	};
};

/* One step: a scenario line and the events it caused; step 0 is the start of the run (before
 * any line), the last step may be the end (line 0: teardown, final checks). */
struct log_step {
	int line;
	const struct op *op;
	int first_event, nr_events;
	int state;                 /* the machine after the step, index in log->states, -1 */
};

/* What the runner snapshots (log->capture): states are costly, so only what is asked for. */
#define LOG_CAPTURE_VIEWS 0x1u     /* at `show` lines (always wanted) */
#define LOG_CAPTURE_END   0x2u     /* at the end (--show, --dot) */
#define LOG_CAPTURE_STEPS 0x4u     /* after every step (the explorer, per-step pictures) */
#define LOG_CAPTURE_TRACE 0x8u     /* the library's step stream, as LOG_TRACE events */

struct step_log;
typedef void (*log_observer_fn)(void *arg, const struct step_log *log, const struct log_event *ev);

struct step_log {
	const char *file;          /* the scenario's name, for messages */
	bool file_owned;
	const struct scenario *s;  /* NULL when it could not be parsed */
	unsigned capture;          /* LOG_CAPTURE_* */
	uint64_t zero_pfn;         /* the zero page's frame (the runner sets it) */
	struct log_event *events;
	int nr_events, cap_events;
	struct log_step *steps;
	int nr_steps, cap_steps;
	struct log_state **states;
	int nr_states, cap_states;
	bool lost;                 /* out of memory: some events were shown but not kept */
	log_observer_fn observer;
	void *observer_arg;
};

/* ---- writing (the runner) --------------------------------------------------------------------- */

/* file is copied; s may be NULL.  Starts step 0. */
void log_init(struct step_log *log, const char *file, const struct scenario *s);
void log_free(struct step_log *log);

/* A new step for op (NULL: the end of the run). */
void log_begin_step(struct step_log *log, const struct op *op);
/* Append an event (its step is the current one; strings in ev->fault are copied where the log
 * must own them); the observer sees it.  Returns it, or NULL when it could not be kept. */
const struct log_event *log_append(struct step_log *log, const struct log_event *ev);
/* LOG_FAILURE / LOG_BAD_INPUT with a formatted message. */
void log_message(struct step_log *log, enum log_event_kind kind, int line, const struct op *op,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Keep a state (the log takes it over); its index, or -1 (it was freed). */
int log_add_state(struct step_log *log, struct log_state *st);
void log_state_free(struct log_state *st);

/* ---- reading (the renderers): pure functions of the log ------------------------------------- */

const struct log_state *log_state_at(const struct step_log *log, int index); /* NULL if -1 */

/* The frame's entry in the state, or NULL. */
const struct state_frame *state_frame(const struct log_state *st, uint64_t pfn);
/* The pagemap word and PTE of addr in a VMA of the state. */
uint64_t state_pagemap(const struct log_state *st, const struct state_vma *v, uint64_t addr,
		       uint64_t *pte);
/* The region (id, or -1) that labels [start, end) in a process: one that overlaps it and that
 * the process mapped or inherited.  The heap is not a label here. */
int state_region_at(const struct step_log *log, const struct log_state *st, int process,
		    uint64_t start, uint64_t end);
/* The name column of /proc/PID/maps: [heap], [anon:NAME], [anon_shmem:NAME], /dev/zero ... */
void state_vma_name(const struct step_log *log, const struct log_state *st, int process,
		    const struct cowvm_vma_info *v, char *out, size_t len);
/* The newest process with this pid, or "pid%d" in buf. */
const char *state_process_name(const struct log_state *st, int pid, char *buf, size_t len);
bool state_pin_holds(const struct state_pin *pin, uint64_t pfn);
/* The names of the pins holding frame pfn, ", "-separated, into out ("" if none). */
void state_pins_holding(const struct step_log *log, const struct log_state *st, uint64_t pfn,
			char *out, size_t len);

#endif /* COWVM_TOOLS_STEP_LOG_H */
