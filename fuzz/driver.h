/*
 * driver.h - plays operations on cowvm and on the reference model (model.h) side by side and
 * checks, after every step, that they agree.
 *
 * An operation (struct fuzz_op) is concrete: its task slot, addresses, lengths and the seed of
 * the bytes it writes are all spelled out, so a list of them replays exactly, prints as text
 * (one line each, parsed back by fuzz_parse_op) and as a C program over the public API.  The
 * generator (fuzz_gen) makes one from a source of choices - a seeded PRNG for fuzz-smoke, or
 * the input bytes for libFuzzer/AFL++ - looking at the model to aim at mapped pages, their
 * edges and the holes next to them, so that collisions are the rule.
 *
 * Operations: spawn, fork, clone_thread, exit; mmap, munmap, mprotect, madvise, brk; the task's
 * reads, writes, 64-bit loads and stores; copy_from_user, copy_to_user, get_user, put_user;
 * pins (pin_user_pages with FOLL_PIN/GET/WRITE/LONGTERM/FAST, unpin, reads and writes through
 * a pin); access_remote (ptrace-style FOLL_FORCE reads and writes); a full comparison;
 * Determinator's dput and dget (COPY, ZERO, SNAP, MERGE) between two tasks; snapshot and
 * restore of a process (checked in full against the model's image after each restore).
 *
 * After each operation fuzz_exec checks:
 *   - the return value and errno against the model's prediction (Linux rules, model.c);
 *   - the bytes a read, load or copy_from_user returned, and that a failed access moved none;
 *   - cowvm_check (every cfg.check_every operations; 1 = after each);
 *   - per process: total_vm = the model's mapped pages, rss_anon + rss_shmem <= total_vm,
 *     runs of pages <= nr_vmas <= pages;
 *   - the pages the operation wrote (contents, through pagemap and reads);
 *   - every cfg.compare_every operations, every process in full: its VMAs against the model's
 *     pages (protection, shared, DONTFORK, WIPEONFORK), every page's contents, and RSS against
 *     the present pages pagemap shows.
 *   - after a fork, parent and child in full.
 * fuzz_finish compares everything, exits every task, checks, drops every pin, checks, and
 * requires the free-frame count of right after create.
 *
 * Fault injection: an operation with inject set runs with COWVM_FAIL_NEXT armed (and a spawn
 * right after it tells whether an allocation met the failure: it fails only if still armed);
 * a run with sweep_armed set (the sweep arms COWVM_FAIL_NTH itself) lets any one operation
 * meet the failure.  Such an operation may fail only in the clean way its call allows (-ENOMEM
 * and nothing changed for the task's own accesses, mmap, munmap; -EFAULT for get/put_user;
 * fork/spawn NULL + ENOMEM; a pin NULL + ENOMEM/EFAULT; a copy or remote access cut short at a
 * page edge; a dput/dget -ENOMEM, COPY/ZERO/MERGE possibly half done), and the model takes the
 * outcome the call reports (after a dput/dget, the destination range as cowvm has it, checked
 * for what must still hold - see op_dput in driver.c).  With fewer than 64 free frames
 * left, the same failures are the machine's real out-of-memory and are accepted too.
 */
#ifndef FUZZ_DRIVER_H
#define FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cowvm.h"
#include "model.h"

#define FUZZ_SLOTS 8                      /* tasks alive at once */
#define FUZZ_MAX_ACCESS (96 * 4096)       /* longest read/write/copy (> cowvm's 64-page chunk) */

enum fuzz_kind {
	FOP_SPAWN, FOP_FORK, FOP_THREAD, FOP_EXIT,
	FOP_MMAP, FOP_MUNMAP, FOP_MPROTECT, FOP_MADVISE, FOP_BRK,
	FOP_READ, FOP_WRITE, FOP_LOAD64, FOP_STORE64,
	FOP_COPY_FROM, FOP_COPY_TO, FOP_GET_USER, FOP_PUT_USER,
	FOP_COMPARE,
	FOP_PIN, FOP_UNPIN, FOP_PIN_IO, FOP_REMOTE,
	FOP_DPUT, FOP_DGET,
	FOP_SNAPSHOT, FOP_RESTORE,
	FOP_NKINDS
};

struct fuzz_op {
	uint8_t kind;   /* enum fuzz_kind */
	uint8_t task;   /* slot of the task making the call; dput/dget: the parent */
	uint8_t slot;   /* spawn/fork/thread: slot the new task takes; pin ops: the pin's slot;
			 * dput/dget: the child's task slot; snapshot/restore: the snapshot's slot */
	uint8_t inject; /* 1: COWVM_FAIL_NEXT armed for this operation */
	int32_t arg;    /* mmap/mprotect: prot; madvise: advice; pin: COWVM_FOLL_*;
			 * dput/dget: the op (COWVM_COPY ...) */
	int32_t flags;  /* mmap: flags; pin_io, remote: 1 = write */
	uint64_t addr, len; /* pin: addr and pages; pin_io: offset into the pinned range;
			     * dput/dget: parent_addr and len */
	uint64_t seed;  /* the bytes written are fuzz_fill(seed); dput/dget: child_addr */
};

#define FUZZ_PINS 8 /* pins held at once */
#define FUZZ_SNAPS 4 /* snapshots held at once */

/* A snapshot the run took: cowvm's handle and the model's image of the process then.  The
 * library frees the handle when the process exits; mm is NULL from then on. */
struct fuzz_snap {
	cowvm_snapshot_t *snap;
	struct model_mm *mm;    /* the process it was taken of */
	struct model_mm *image; /* model_image_take */
};

/*
 * A pin the run holds.  Its bytes are checked against the model when it is taken.  Later it is
 * checked (and written through) only while Linux guarantees that it is coherent with the
 * process: a FOLL_PIN taken for writing or FOLL_LONGTERM (both leave an exclusive page, which
 * fork copies for the child and the process's writes reuse), as long as none of its pages has
 * been unmapped, zapped by MADV_DONTNEED or mapped over.  A FOLL_GET reference or a plain
 * read-only pin (which may hold the zero page) is not coherent after later writes by design.
 */
struct fuzz_pin {
	cowvm_pin_t *pin;
	struct model_mm *mm; /* the process whose pages it holds; NULL once that mm is gone */
	uint64_t addr, npages;
	unsigned flags;
	int coherent;
};

/* Inputs the generator can be told not to make (known divergences, while they are open). */
#define FUZZ_AVOID_UNALIGNED_HINT 0x01u /* mmap hint not page aligned */
#define FUZZ_AVOID_BAD_MMAP_ARGS  0x02u /* mmap with more than one thing wrong */
#define FUZZ_AVOID_MPROTECT_ORDER 0x04u /* mprotect bad prot with len 0 or a wrapping len */
#define FUZZ_AVOID_BRK_HOLE       0x08u /* brk shrink over a range with no mapping */
#define FUZZ_AVOID_INJECT         0x10u /* fault injection */
#define FUZZ_AVOID_COPY_TOP       0x20u /* copies that cross TASK_SIZE_MAX */
/* Tolerate (not avoid): mprotect stopping early with -ENOMEM after merging VMAs; the model
 * then takes the protections cowvm's VMAs show for the range. */
#define FUZZ_AVOID_MPROTECT_MERGE 0x40u
#define FUZZ_AVOID_PIN_SHARED     0x80u /* pins of shared (shmem) pages */
/* dput/dget COPY with a shared middle from a process that has no mapping (cowvm did a memcpy
 * from a NULL VMA array, a UBSan report; fixed) */
#define FUZZ_AVOID_DPUT_EMPTY_SOURCE 0x100u
/* dget MERGE into a parent range with a shared page (cowvm took a shared page whose PTE is not
 * present for zeros, and overwrote or kept it without looking at its bytes; fixed) */
#define FUZZ_AVOID_MERGE_SHMEM       0x200u
/* dput/dget COPY whose source and destination bytes are the same shared memory (two processes
 * mapping one MAP_SHARED object): cowvm copied from the live memory chunk by chunk (fixed for
 * an unaligned delta, and for the head and tail of a page-multiple delta; fixed) */
#define FUZZ_AVOID_DPUT_SHMEM_OVERLAP 0x400u
/* fault injection on dput/dget COPY (cowvm took a source page it could not fault in for a
 * hole: bytes silently not copied, 0 returned; fixed) */
#define FUZZ_AVOID_DPUT_OOM_HOLE     0x800u

/*
 * Divergences found in the library and not fixed yet.  The generator does not make these
 * inputs unless told to (--avoid none / FUZZ_AVOID=none), so that random fuzzing keeps
 * looking for new ones; regress.c still plays each one's reproducer and fails until it is
 * fixed.  When a fix lands, take its bit out of this set.
 */
#define FUZZ_KNOWN 0u /* none open */

struct fuzz_config {
	uint64_t phys_bytes;      /* machine size; 0 = 16 MiB */
	unsigned nr_cpus;         /* 0 = 1 */
	unsigned check_every;     /* cowvm_check after every n-th operation (0 = only at the end) */
	unsigned compare_every;   /* full comparison every n-th operation (0 = only at the end) */
	unsigned max_pages;       /* the generator keeps a process near this many pages; 0 = auto */
	unsigned avoid;           /* FUZZ_AVOID_* (default FUZZ_KNOWN) */
	unsigned inject_one_in;   /* inject before 1 in n allocating operations; 0 = never */
};

struct fuzz_stats {
	uint64_t ops, skipped, by_kind[FOP_NKINDS];
	uint64_t injected;        /* operations that met an injected failure */
	uint64_t natural_oom;     /* -ENOMEM with memory really short */
	uint64_t checks, compares, pages_compared;
	uint64_t long_accesses;   /* accesses of more than 64 pages that went through */
	/* dput/dget */
	uint64_t dput_ok;         /* COPY/ZERO that succeeded */
	uint64_t dput_cow;        /* of them, COPYs with a shared (page-aligned) middle */
	uint64_t snaps, merges;   /* SNAPs taken, MERGEs that returned 0 or -EBADE */
	uint64_t merge_conflicts; /* MERGEs that returned -EBADE */
	uint64_t merge_pages;     /* pages those MERGEs found changed on both sides of the SNAP */
	uint64_t dput_resyncs;    /* dput/dget cut short by -ENOMEM, model resynchronised */
	uint64_t snapshots, restores, snapshot_busy; /* taken; restored; refused for a pin (EBUSY) */
};

struct fuzz_run {
	struct fuzz_config cfg;
	cowvm_t *vm;
	uint64_t free_after_create;
	cowvm_task_t *task[FUZZ_SLOTS];
	struct model_mm *mm[FUZZ_SLOTS];
	uint64_t zero_pfn;        /* learnt from the first zero-page mapping seen */
	struct fuzz_pin pins[FUZZ_PINS];
	struct fuzz_snap snaps[FUZZ_SNAPS];
	int inject_consumed;      /* the last operation with inject set met the failure */
	int sweep_armed;          /* COWVM_FAIL_NTH armed by the sweep and not met yet */
	size_t absorbed_at;       /* the operation that last met an allocation failure */
	int absorbed_ret;         /* and what it returned (-errno, or bytes not copied) */
	struct fuzz_stats st;
	/* the operations played, for reproduction */
	struct fuzz_op *log;
	size_t nlog, logcap;
	int log_fixed;            /* log is a caller's buffer of logcap entries: do not grow it */
	/* the first divergence */
	int failed;
	size_t fail_index;        /* operation number (0-based) */
	char fail_class[32];      /* short tag, stable across minimisation */
	char why[768];
	uint8_t *buf, *buf2, *page;
};

/* A source of choices: a seeded PRNG, or input bytes (then it runs dry). */
struct fuzz_src {
	const uint8_t *data;
	size_t size, pos;
	uint64_t state;
	int from_bytes, dry;
};
void fuzz_src_seed(struct fuzz_src *s, uint64_t seed);
void fuzz_src_bytes(struct fuzz_src *s, const uint8_t *data, size_t size);

/* NULL + message on stderr if the machine cannot be made. */
struct fuzz_run *fuzz_run_new(const struct fuzz_config *cfg);
/* gen.c: make the next operation; -1 when a byte source ran dry. */
int fuzz_gen(struct fuzz_run *r, struct fuzz_src *s, struct fuzz_op *op);
/* Play one operation and check; 0, or -1 on divergence (r->why, r->fail_class). */
int fuzz_exec(struct fuzz_run *r, const struct fuzz_op *op);
/* Compare everything, exit every task, check that no frame leaked; 0 or -1. */
int fuzz_finish(struct fuzz_run *r);
void fuzz_run_free(struct fuzz_run *r); /* destroys the machine */
/* Replay a list from a fresh machine: 0 or -1, *fail_index and r's message on stderr unless quiet. */
int fuzz_replay(const struct fuzz_config *cfg, const struct fuzz_op *ops, size_t n, int quiet,
		char *fail_class, size_t classlen, size_t *fail_index);

/* print.c and helpers */
void fuzz_fill(uint8_t *buf, size_t len, uint64_t seed);
uint64_t fuzz_splitmix(uint64_t *x);
uint64_t fuzz_clamp_len(uint64_t len); /* an access's length as played: at most FUZZ_MAX_ACCESS */
/* The write a write pin makes right after it is taken: offset and length, from op->seed. */
void fuzz_pin_first_write(const struct fuzz_op *op, uint64_t *off, uint64_t *len);
const char *fuzz_kind_name(int kind);
void fuzz_format_op(char *out, size_t outlen, const struct fuzz_op *op);
int fuzz_parse_op(const char *line, struct fuzz_op *op); /* 0 or -1 */
void fuzz_print_ops(FILE *f, const struct fuzz_op *ops, size_t n);
void fuzz_print_c(FILE *f, const struct fuzz_config *cfg, const struct fuzz_op *ops, size_t n);
/* "unaligned-hint,brk-hole,..." | "known" | "none" -> FUZZ_AVOID_* bits; ~0u if unknown */
unsigned fuzz_parse_avoid(const char *list);
const char *fuzz_avoid_name(unsigned bit);
void fuzz_config_default(struct fuzz_config *cfg);

/* sweep.c: fault-injection sweep over the fixed scenarios. */
int fuzz_sweep_count(void);
const char *fuzz_sweep_name(int i);
/* Runs scenario i failing the k-th allocation for k = 1, 2, ... until it completes without
 * meeting the failure.  0 or -1 (message on stderr); *runs = the k values tried. */
int fuzz_sweep_one(const struct fuzz_config *cfg, int i, unsigned *runs, int verbose);

/* regress.c: the minimised reproducers of every divergence found, by name. */
int fuzz_regress_count(void);
const char *fuzz_regress_name(int i);
unsigned fuzz_regress_known(int i); /* its FUZZ_AVOID_* bit while open, else 0 */
/* Plays regression i on a fresh machine: 0 passes, -1 fails (message on stderr unless quiet). */
int fuzz_regress_one(int i, int quiet, char *why, size_t whylen);

#endif /* FUZZ_DRIVER_H */
