/*
 * scenario.h - a scenario as the parser leaves it: the product of the language (tools/lang/),
 * read by the runner (tools/run/), the renderers and the host comparison.  The language itself
 * is documented in docs/scenarios.md.
 *
 * A scenario is a list of operations, one per line.  Names (tasks, regions, marks) are turned
 * into small integers by the parser, which also checks that every name is defined before it is
 * used, so the runner never meets an unknown name.  What only the run can tell (a region whose
 * mmap failed, a page index beyond a region that brk shrank) the runner reports itself.
 *
 * Ownership: a struct scenario owns every string and array it points to; scenario_free frees
 * them all.
 *
 * Names are of five kinds: tasks, regions, marks, pins (a pin or GET reference made by
 * `pin ... as NAME`, released by `unpin NAME`) and snapshots (`snapshot P as NAME`, which a
 * later `restore P NAME` goes back to).
 */
#ifndef COWVM_TOOLS_LANG_SCENARIO_H
#define COWVM_TOOLS_LANG_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- what a line can say ------------------------------------------------------------------ */

enum op_kind {
	OP_MEMORY,          /* memory SIZE: the machine's physical memory (before any other op) */
	OP_SWAP,            /* swap SIZE: the machine has a swap device of SIZE (before any op) */
	OP_SPAWN,           /* spawn P */
	OP_FORK,            /* fork P Q */
	OP_THREAD,          /* thread P T */
	OP_EXIT,            /* exit P */
	OP_MMAP,            /* mmap P R SIZE [prot] [private|shared] [at ADDR] ... */
	OP_MUNMAP,          /* munmap P LOC [SIZE] */
	OP_MPROTECT,        /* mprotect P LOC [SIZE] PROT */
	OP_MADVISE,         /* madvise P LOC [SIZE] ADVICE */
	OP_BRK,             /* brk P [+|-]SIZE */
	OP_READ,            /* read P LOC [COUNT] */
	OP_WRITE,           /* write P LOC DATA */
	OP_COPY_FROM_USER,  /* copy_from_user P LOC COUNT */
	OP_COPY_TO_USER,    /* copy_to_user P LOC DATA */
	OP_GET_USER,        /* get_user P LOC */
	OP_PUT_USER,        /* put_user P LOC VALUE */
	OP_PIN,             /* pin P LOC [COUNT] [get|pin] [write] [longterm] [fast] as NAME */
	OP_UNPIN,           /* unpin NAME */
	OP_PIN_WRITE,       /* pin_write NAME[+OFF] DATA: a device writes through the pin */
	OP_REMOTE_READ,     /* remote_read P LOC [COUNT]: /proc/pid/mem read, into the kbuf */
	OP_REMOTE_WRITE,    /* remote_write P LOC DATA: /proc/pid/mem write (FOLL_FORCE) */
	OP_CLEAR_REFS,      /* clear_refs P WHAT (1..5, 4 = soft-dirty) */
	OP_DPUT,            /* dput P C copy PLOC CLOC [SIZE] | zero CLOC [SIZE] | snap */
	OP_DGET,            /* dget P C copy PLOC CLOC [SIZE] | zero PLOC [SIZE] | merge PLOC CLOC [SIZE] */
	OP_MREMAP,          /* mremap P LOC [OLDSIZE] NEWSIZE [maymove] [fixed LOC] [dontunmap] [as R] */
	OP_MLOCK,           /* mlock P LOC [SIZE] */
	OP_MLOCK2,          /* mlock2 P LOC [SIZE] [onfault | FLAGS] */
	OP_MUNLOCK,         /* munlock P LOC [SIZE] */
	OP_MLOCKALL,        /* mlockall P current|future|onfault... | FLAGS */
	OP_MUNLOCKALL,      /* munlockall P */
	OP_PROCESS_MADVISE, /* process_madvise P Q LOC [SIZE] ADVICE [flags N]: P advises Q's memory */
	OP_RLIMIT,          /* rlimit P memlock|stack CUR|unlimited [MAX|unlimited] */
	OP_CAPS,            /* caps P none | ipc_lock sys_nice ... (the process's capabilities) */
	OP_SNAPSHOT,        /* snapshot P as NAME: cowvm_snapshot of P's process */
	OP_RESTORE,         /* restore P NAME: cowvm_restore of P's process to snapshot NAME */
	OP_FAIL_ALLOC,      /* fail_alloc next | after N | nth N | cap N | off */
	OP_MARK,            /* mark M */
	OP_CHECK,           /* check */
	OP_SHOW,            /* show VIEW [P [LOC]] */
	OP_ECHO,            /* echo TEXT */
	OP_EXPECT,          /* expect ... */
	NR_OPS
};

/* Whether a line of this kind has a result that can fail (`expect error` / `expect result`
 * may follow it; a failure nothing checks fails the run).  lang/parse.c's command table. */
bool op_has_result(enum op_kind kind);
const char *op_name(enum op_kind kind); /* the command word: "mmap" */

/*
 * A place in a task's address space:
 *   REGION            the whole region (a range), starting at its first byte
 *   REGION[I]         page I of it (a range of one page)
 *   REGION[I..J]      pages I to J, both included (a range)
 *   any of these +N   the single address N bytes further (no longer a range); -N goes back
 *   NUMBER            an absolute address
 */
struct location {
	int region;              /* region id, or -1 for an absolute address */
	bool has_pages;          /* [I] or [I..J] was given */
	uint64_t first_page, last_page;
	bool has_offset;         /* +N or -N was given */
	int64_t offset;
	uint64_t address;        /* the absolute address (region == -1) */
	uint64_t size;           /* an explicit length in bytes after the location, 0 = none */
};

/* A location with no offset names a range of pages; with one, a single address. */
static inline bool location_is_range(const struct location *loc)
{
	return loc->region >= 0 && !loc->has_offset;
}

/* Bytes to write or to compare: one byte, a string, or a pattern repeated over a length. */
enum data_kind { DATA_BYTES, DATA_FILL };
struct data {
	enum data_kind kind;
	uint8_t *bytes;          /* owned */
	size_t len;
	uint64_t count;          /* DATA_FILL: bytes to cover; 0 = the location's range */
};

enum view_kind {
	VIEW_MAPS, VIEW_PTES, VIEW_SMAPS, VIEW_SMAPS_ROLLUP, VIEW_PAGEMAP, VIEW_STATUS,
	VIEW_VMSTAT, VIEW_FRAMES, VIEW_GRAPH, NR_VIEWS
};

/* Page properties that `expect page` can ask for (each may be negated with `not`). */
enum page_property {
	PAGE_PRESENT = 1u << 0,
	PAGE_EXCLUSIVE = 1u << 1,      /* pagemap bit 56: mapped exactly once */
	PAGE_ZERO = 1u << 2,           /* maps the zero page */
	PAGE_WRITABLE = 1u << 3,       /* the PTE has RW */
	PAGE_DIRTY = 1u << 4,          /* the PTE has D */
	PAGE_SWAPPED = 1u << 5,        /* pagemap bit 62 */
	PAGE_ANON_EXCLUSIVE = 1u << 6, /* the frame has PageAnonExclusive */
	PAGE_SOFT_DIRTY = 1u << 7,     /* pagemap bit 55 */
	PAGE_FILE = 1u << 8,           /* pagemap bit 61: file page or shared anonymous memory */
	PAGE_SWAPCACHE = 1u << 9,      /* its page (mapped, or its swap slot's) is in the swap cache */
};

/* A place in what a pin holds: NAME, NAME[I] (page I of it), either +OFF bytes further. */
struct pin_ref {
	int pin;                 /* pin id */
	uint64_t offset;         /* bytes from the start of the pin's first page */
	bool has_page;           /* [I] was given: a one-page range (for counters, held pages) */
};

enum counter_kind {
	COUNTER_FAULTS,          /* process: min_flt + maj_flt of all its threads, living or not */
	COUNTER_THREAD_FAULTS,   /* one thread's min_flt + maj_flt */
	COUNTER_MAJFLT,          /* one task's maj_flt (majflt in /proc/PID/stat) */
	COUNTER_MINFLT,          /* one task's min_flt */
	COUNTER_RSS,             /* process: rss_anon + rss_shmem, pages */
	COUNTER_RSS_ANON, COUNTER_RSS_SHMEM, COUNTER_RSS_SWAP,
	COUNTER_VMAS, COUNTER_TOTAL_VM, COUNTER_PAGE_TABLES,
	COUNTER_TLB_MISSES,      /* one thread's */
	COUNTER_VMSTAT,          /* field = index into the vmstat field table */
	COUNTER_SMAPS,           /* field = index into the smaps field table, kB */
	COUNTER_REFCOUNT, COUNTER_MAPCOUNT, /* of the frame a page maps, or a pin holds */
	COUNTER_RESULT,          /* the value the last operation returned */
	COUNTER_MERGE,           /* field = index into the merge field table (cowvm_merge_report
				    of task's process); first_conflict compares with loc */
	COUNTER_STATUS,          /* field = index into the status field table: a line of
				    /proc/PID/status (cowvm_proc_status), kB */
};

enum comparison { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

enum expect_kind {
	EXPECT_ERROR,            /* expect error [ERRNO] */
	EXPECT_MEMORY,           /* expect mem P LOC == DATA */
	EXPECT_KBUF,             /* expect kbuf == DATA */
	EXPECT_PAGE,             /* expect page P LOC props... */
	EXPECT_COUNTER,          /* expect COUNTER [since M] CMP N, expect merge [P] FIELD CMP N */
	EXPECT_PIN,              /* expect pin NAME[+OFF] == DATA: bytes read through the pin */
};

struct expect {
	enum expect_kind kind;
	int error;                      /* EXPECT_ERROR: the errno, 0 = any */
	int task;                       /* the task the expectation looks at, -1 = none */
	struct location loc;
	struct data data;               /* EXPECT_MEMORY, EXPECT_KBUF */
	unsigned want_set, want_clear;  /* EXPECT_PAGE: properties that must hold / must not */
	bool has_same, same_negated;    /* EXPECT_PAGE: same [not] frame as another task's page */
	int same_task;
	struct location same_loc;       /* region == -2: the same location as loc */
	bool has_held, held_negated;    /* EXPECT_PAGE: [not] held_by PIN */
	int held_pin;
	bool has_frame_at, frame_differs; /* EXPECT_PAGE: frame same as / differs from ... at mark */
	int frame_task;                 /* whose page at the mark (the expectation's task by default) */
	struct location frame_loc;      /* region == -2: the same location as loc */
	int frame_mark;
	bool of_pin;                    /* EXPECT_COUNTER refcount/mapcount: of the frame pin_ref holds */
	struct pin_ref pin_ref;         /* EXPECT_PIN, and the counters of_pin */
	enum counter_kind counter;      /* EXPECT_COUNTER */
	int field;
	int mark;                       /* since this mark, -1 = absolute */
	enum comparison cmp;
	int64_t value;
};

struct op {
	enum op_kind kind;
	int line;
	char *text;                /* the line as written, without comment and outer blanks */
	int task;                  /* the task that acts, -1 = none */
	int new_task;              /* spawn, fork, thread: the task that is made */
	int region;                /* mmap: the region it defines */
	struct location loc;       /* dput/dget: the parent's location (copy, dget zero, merge) */
	uint64_t size;             /* memory, mmap, brk: bytes; read, copy_from_user, remote_read:
				      count; pin: pages (0 = the location's); dput/dget: bytes
				      (0 = the length of the source location, a range) */
	int brk_sign;              /* brk: 0 absolute heap size, +1 grow, -1 shrink */
	int prot, flags, advice;   /* mmap, mprotect, madvise; flags: mremap's MREMAP_*, mlock2's,
				      mlockall's MCL_*, process_madvise's */
	uint64_t address;          /* mmap at/hint */
	struct data data;          /* write, copy_to_user, pin_write, remote_write */
	uint64_t value;            /* put_user value; fail_alloc n; clear_refs what; rlimit cur;
				      caps: the COWVM_CAP_* mask */
	unsigned foll;             /* pin: COWVM_FOLL_* */
	int pin;                   /* pin, unpin: the pin it makes or releases */
	int snapshot;              /* snapshot, restore: the snapshot it takes or goes back to */
	struct pin_ref pin_ref;    /* pin_write */
	int mode;                  /* fail_alloc: COWVM_FAIL_*; rlimit: RLIMIT_MEMLOCK or _STACK */
	int mark;                  /* mark */
	enum view_kind view;       /* show */
	bool has_loc;              /* show: a location was given */
	int child;                 /* dput, dget: the child task (op->task is the parent);
				      process_madvise: the target */
	int dop;                   /* dput, dget: COWVM_COPY, COWVM_ZERO, COWVM_SNAP, COWVM_MERGE */
	struct location child_loc; /* dput/dget: the child's (copy, dput zero, merge); mremap:
				      the `fixed` target */
	bool has_old_size;         /* mremap: OLDSIZE was given (old_size, may be 0) */
	uint64_t old_size;         /* mremap: old_len; rlimit: the hard limit */
	int new_region;            /* mremap `as R`: the region it defines at the new place, -1 */
	struct expect expect;
};

struct scenario {
	char *name;                /* the file name, for messages */
	uint64_t phys_bytes;       /* `memory`, 0 = the default */
	uint64_t swap_bytes;       /* `swap` (or the driver's --swap), 0 = no swap device */
	char *swap_path;           /* the swap file (--swap FILE:SIZE); NULL = a file in a temporary
				      directory the runner makes and removes */
	struct op *ops;
	int nr_ops;
	char **task_names;         /* id -> name */
	int nr_tasks;
	char **region_names;
	int nr_regions;
	int heap_region;           /* the id of the built-in region `heap`, -1 if never used */
	char **mark_names;
	int nr_marks;
	char **pin_names;          /* pins: made by `pin ... as NAME` */
	int nr_pins;
	char **snapshot_names;     /* snapshots: made by `snapshot P as NAME` */
	int nr_snapshots;
};

struct parse_error {
	int line;
	char message[256];
};

/*
 * scenario_parse - turn the text of a scenario into operations.  Returns NULL with *err filled
 * (line and a sentence) on the first malformed line; allocation failure is reported the same
 * way, as line 0.
 */
struct scenario *scenario_parse(const char *name, const char *text, struct parse_error *err);
void scenario_free(struct scenario *s);

/* View names as the `show` line and --show spell them; -1 for an unknown name. */
int view_by_name(const char *name);
const char *view_name(enum view_kind v);

#endif /* COWVM_TOOLS_LANG_SCENARIO_H */
