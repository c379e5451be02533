/*
 * compare.c - `cowvm compare`: every scenario runs three times.
 *
 *   1. As `cowvm run` runs it (scenario_run_text): its expect lines must hold on cowvm, and
 *      what only a run can tell about bad input is found here.
 *   2. A dry replay on cowvm, to learn every address the scenario will use, so that the host
 *      workers can be given address spaces clear of them (host.h).
 *   3. The comparison: each operation line runs on a cowvm machine (through the public API,
 *      with the runner's rules for locations and data) and then on the host, in the host
 *      worker that stands for the same process; after it, both sides are observed and every
 *      difference is recorded with the step and the line:
 *        - the operation's outcome (success or the errno; bytes moved by remote access);
 *        - the fault delta of every live process over that step (the acting process measures
 *          itself around exactly the one operation; the others are idle);
 *        - per page of every region in every live process: pagemap present, swapped, file
 *          (bit 61: shared memory), exclusively mapped (bit 56), and the zero page or not;
 *        - the sharing structure: which (process, page) pairs map the same frame, compared as
 *          partitions, never as frame numbers (frame numbers need root on the host);
 *        - per VMA that meets a region: its bounds and permissions, and its smaps Rss, Pss,
 *          Shared/Private Clean/Dirty and Anonymous.
 *
 * An operation the host cannot replay the way cowvm means it (a GUP pin, dput/dget, fault
 * injection, soft-dirty, threads) ends the comparison of that scenario at that line: what came
 * before it was compared, and the summary says where and why it stopped.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#include "host/compare.h"
#include "cowvm.h"
#include "host/host.h"
#include "host/host_swap.h"
#include "run/swapdev.h"
#include "lang/scenario.h"
#include "driver.h"
#include "lang/words.h"
#include "run/data.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)
#define DEFAULT_PHYS_BYTES (16ull << 20) /* as the runner's */
#define MAX_ACCESS_BYTES (64ull << 20)
#define KPF_ZERO_PAGE 24
#define PM_PFN ((1ull << 55) - 1)
#define PM_EXCLUSIVE (1ull << 56)
#define PM_FILE (1ull << 61)
#define PM_SWAP (1ull << 62)
#define PM_PRESENT (1ull << 63)
#define HEAP_MARGIN (16 * PG)
#define NR_SMAPS_KB 10 /* smaps_kb_names */

/* ---- state ---------------------------------------------------------------------------------- */

struct cproc {
	bool live;
	const char *name;          /* the task that made it */
	cowvm_task_t *t;           /* its one task (threads end the comparison) */
	uint64_t start_brk;        /* cowvm's */
	int host;                  /* index in host.procs, -1 */
	uint64_t cow_before, host_before; /* faults before the step */
	bool host_before_ok;
	uint64_t cow_maj_before, host_maj_before; /* major faults before the step */
	bool host_maj_ok;
};

struct cregion {
	bool mapped;
	uint64_t start, length;
};

struct diff {
	int step, line;
	const char *op;            /* the line's text (scenario-owned) */
	char what[72];
	char cowvm[64], host[64];
};

struct obs_page {
	uint64_t word;             /* pagemap word (frame number included when readable) */
	int zero;                  /* 1, 0, or -1 unknown */
};

struct obs_vma {
	uint64_t start, end;       /* cowvm addresses */
	char perms[5];
	uint64_t kb[NR_SMAPS_KB];  /* smaps_kb_names order */
	char vmflags[96];          /* the VmFlags line's letters */
};

static const char *const smaps_kb_names[NR_SMAPS_KB] = {
	"Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Anonymous",
	"Locked", "Swap", "SwapPss",
};

struct slot {
	int region;
	uint64_t page;
	uint64_t addr;             /* cowvm address */
};

/* A mark, on both sides: the pagemap words of every slot of every process, and the status
 * lines (for `expect page ... frame ... at mark M` and `expect status ... since M`). */
struct cmark {
	bool set;
	struct slot *slots;        /* owned */
	int nslots, nprocs;
	uint64_t *words[2];        /* [proc * nslots + i]; 0 cowvm, 1 host */
	uint64_t *status[2];       /* [proc * nr_status_fields + f], UINT64_MAX unknown */
};

struct cmp {
	const struct scenario *s;
	const struct compare_opts *o;
	FILE *out;
	bool dry;                  /* pass 2: cowvm only, collecting the window */
	cowvm_t *vm;
	int *task_proc;            /* scenario task id -> process index, -1 */
	struct cproc *procs;
	int nr_procs;
	struct cregion *regions;
	uint64_t heap_max;         /* the most the heap has held, bytes */
	uint64_t heap_span;        /* from the dry run: the heap window */

	/* host */
	bool host_on;
	struct host host;
	bool host_ready;
	bool frames;               /* the host's frame numbers are readable */
	int zero_mode;             /* 2 kpageflags, 1 PAGEMAP_SCAN, 0 not known */

	/* the window, collected by the dry run */
	struct host_interval *win;
	int nr_win, cap_win;

	/* the run */
	int step;
	const struct op *op;
	bool stopped;              /* the replay ended early (see stop_line) */
	int stop_line;
	char stop_why[240];
	bool failed;               /* the host side could not be driven or read: bad */
	char fail_why[600];
	struct diff *diffs;
	int nr_diffs, cap_diffs;
	uint64_t observations;
	uint8_t *kbuf;
	char trace[512];           /* --verbose: this step's fault counts */
	struct cmark *marks;       /* by mark id */
	struct swapdev swapdev;    /* cowvm's swap file, for a scenario with a `swap` line */
};

/* ---- small helpers --------------------------------------------------------------------------- */

static void fail_host(struct cmp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_host(struct cmp *c, const char *fmt, ...)
{
	if (c->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->fail_why, sizeof c->fail_why, fmt, ap);
	va_end(ap);
	c->failed = true;
	c->host_on = false;
	c->stopped = true;
	c->stop_line = c->op ? c->op->line : 0;
}

/* The replay cannot go on past this line (see the comment at the top). */
static void stop_at(struct cmp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stop_at(struct cmp *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->stop_why, sizeof c->stop_why, fmt, ap);
	va_end(ap);
	c->stopped = true;
	c->stop_line = c->op ? c->op->line : 0;
}

static void add_diff(struct cmp *c, const char *what, const char *cv, const char *hv)
{
	if (c->nr_diffs == c->cap_diffs) {
		int cap = c->cap_diffs ? c->cap_diffs * 2 : 32;
		struct diff *grown = realloc(c->diffs, (size_t)cap * sizeof *grown);
		if (!grown)
			return;
		c->diffs = grown;
		c->cap_diffs = cap;
	}
	struct diff *d = &c->diffs[c->nr_diffs++];
	d->step = c->step;
	d->line = c->op ? c->op->line : 0;
	d->op = c->op ? c->op->text : "";
	snprintf(d->what, sizeof d->what, "%s", what);
	snprintf(d->cowvm, sizeof d->cowvm, "%s", cv);
	snprintf(d->host, sizeof d->host, "%s", hv);
}

static void cmp_u64(struct cmp *c, const char *what, uint64_t cv, uint64_t hv)
{
	c->observations++;
	if (cv == hv)
		return;
	char a[32], b[32];
	snprintf(a, sizeof a, "%" PRIu64, cv);
	snprintf(b, sizeof b, "%" PRIu64, hv);
	add_diff(c, what, a, b);
}

static void cmp_bool(struct cmp *c, const char *what, bool cv, bool hv)
{
	c->observations++;
	if (cv != hv)
		add_diff(c, what, cv ? "yes" : "no", hv ? "yes" : "no");
}

static const char *outcome_text(int error, char *buf, size_t len)
{
	if (!error)
		snprintf(buf, len, "ok");
	else
		snprintf(buf, len, "%s", errno_name(error));
	return buf;
}

static void add_window(struct cmp *c, uint64_t start, uint64_t len)
{
	if (!c->dry || !len)
		return;
	/* heap addresses are translated, not reserved */
	if (c->nr_procs && start >= c->procs[0].start_brk && start < c->procs[0].start_brk + (1ull << 40))
		return;
	if (c->nr_win == c->cap_win) {
		int cap = c->cap_win ? c->cap_win * 2 : 16;
		struct host_interval *grown = realloc(c->win, (size_t)cap * sizeof *grown);
		if (!grown)
			return;
		c->win = grown;
		c->cap_win = cap;
	}
	uint64_t end = start + len < start ? UINT64_MAX : start + len;
	c->win[c->nr_win++] = (struct host_interval){ start & ~(PG - 1), (end + PG - 1) & ~(PG - 1) };
}

static int interval_cmp(const void *a, const void *b)
{
	const struct host_interval *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void merge_window(struct cmp *c)
{
	if (!c->nr_win)
		return;
	qsort(c->win, (size_t)c->nr_win, sizeof *c->win, interval_cmp);
	int n = 0;
	for (int i = 1; i < c->nr_win; i++) {
		if (c->win[i].start <= c->win[n].end) {
			if (c->win[i].end > c->win[n].end)
				c->win[n].end = c->win[i].end;
		} else {
			c->win[++n] = c->win[i];
		}
	}
	c->nr_win = n + 1;
}

/* ---- addresses ------------------------------------------------------------------------------- */

static int64_t heap_delta(struct cmp *c, int p)
{
	if (c->dry || c->procs[p].host < 0)
		return 0;
	return (int64_t)(c->host.procs[c->procs[p].host].start_brk - c->procs[p].start_brk);
}

static bool in_heap_area(struct cmp *c, int p, uint64_t addr)
{
	uint64_t sb = c->procs[p].start_brk;
	return addr >= sb && addr - sb < c->heap_span;
}

/* A cowvm address of process p, as the host worker has it. */
static uint64_t to_host(struct cmp *c, int p, uint64_t addr)
{
	return in_heap_area(c, p, addr) ? addr + (uint64_t)heap_delta(c, p) : addr;
}

/* A host address of process p's worker, as cowvm has it. */
static uint64_t from_host(struct cmp *c, int p, uint64_t addr)
{
	uint64_t back = addr - (uint64_t)heap_delta(c, p);
	return heap_delta(c, p) && in_heap_area(c, p, back) ? back : addr;
}

/* The runner's resolve_location: the address and length a location means now. */
static bool resolve(struct cmp *c, const struct location *loc, uint64_t *start, uint64_t *length)
{
	if (loc->region < 0) {
		*start = loc->address;
		*length = loc->size ? loc->size : 1;
		return true;
	}
	struct cregion *rg = &c->regions[loc->region];
	if (!rg->mapped) {
		stop_at(c, "region '%s' has no address here", c->s->region_names[loc->region]);
		return false;
	}
	uint64_t base = rg->start, len = rg->length;
	if (loc->has_pages) {
		if (loc->last_page >= rg->length / PG) {
			stop_at(c, "page %" PRIu64 " is past the end of region '%s'", loc->last_page,
				c->s->region_names[loc->region]);
			return false;
		}
		base += loc->first_page * PG;
		len = (loc->last_page - loc->first_page + 1) * PG;
	}
	if (loc->has_offset) {
		base += (uint64_t)loc->offset;
		len = 1;
	}
	if (loc->size)
		len = loc->size;
	*start = base;
	*length = len;
	return true;
}

/* ---- processes ------------------------------------------------------------------------------- */

static uint64_t cow_majflt(struct cmp *c, int p)
{
	struct cowvm_task_stats st;
	if (!c->procs[p].live || cowvm_task_stats(c->procs[p].t, &st))
		return 0;
	return st.maj_flt;
}

static uint64_t cow_faults(struct cmp *c, int p)
{
	struct cowvm_task_stats st;
	if (!c->procs[p].live || cowvm_task_stats(c->procs[p].t, &st))
		return 0;
	return st.min_flt + st.maj_flt;
}

static int new_proc(struct cmp *c, cowvm_task_t *t, const char *name, int parent)
{
	struct cproc *grown = realloc(c->procs, (size_t)(c->nr_procs + 1) * sizeof *grown);
	if (!grown)
		return -1;
	c->procs = grown;
	struct cproc *p = &c->procs[c->nr_procs];
	memset(p, 0, sizeof *p);
	p->live = true;
	p->name = name;
	p->t = t;
	p->host = -1;
	p->start_brk = parent >= 0 ? c->procs[parent].start_brk : (uint64_t)cowvm_brk(t, 0);
	return c->nr_procs++;
}

/* ---- the operations ------------------------------------------------------------------------- */

/* What one side did. */
struct outcome {
	bool done;                 /* the side ran the operation */
	int error;                 /* 0 or an errno */
	bool has_value;            /* value is compared too */
	int64_t value;
	bool measured;             /* faults is the acting process's own measurement */
	uint64_t faults;
};

static uint8_t *data_buffer(const struct data *d, uint64_t avail, uint64_t *n)
{
	return data_bytes(d, avail, MAX_ACCESS_BYTES, n);
}

static int read_memory_drop(cowvm_task_t *t, uint64_t addr, uint64_t len)
{
	return read_memory(t, addr, NULL, len);
}

/* Send one measured command to process p's worker. */
static void host_do(struct cmp *c, int p, struct host_cmd *cmd, const void *data, struct outcome *h)
{
	struct host_reply r;
	if (!c->host_on)
		return;
	if (!host_call(&c->host, c->procs[p].host, cmd, data, &r)) {
		fail_host(c, "host worker of %s: %s", c->procs[p].name, c->host.error);
		return;
	}
	h->done = true;
	h->error = r.result < 0 ? (int)-r.result : 0;
	h->value = r.result;
	h->measured = true;
	h->faults = r.faults;
}

/* cmd for data: the pattern and how it is laid out (the runner's rules). */
static void data_cmd(const struct op *op, struct host_cmd *cmd, uint64_t start, uint64_t len)
{
	const struct data *d = &op->data;
	cmd->op = HOP_WRITE;
	cmd->addr = start;
	cmd->data_len = (uint32_t)d->len;
	if (d->kind == DATA_FILL) {
		cmd->mode = HW_FILL;
		cmd->len = d->count ? d->count : len;
	} else if (!location_is_range(&op->loc) || op->loc.size) {
		cmd->mode = HW_ONCE;
		cmd->len = d->len;
	} else {
		cmd->mode = HW_EACH_PAGE;
		cmd->len = len;
	}
}

static void op_mmap(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	int64_t addr = cowvm_mmap(c->procs[p].t, op->address, op->size, op->prot, op->flags);
	cw->done = true;
	cw->error = addr < 0 ? (int)-addr : 0;
	if (op->flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) || op->address)
		add_window(c, op->address, op->size);
	if (addr >= 0) {
		struct cregion *rg = &c->regions[op->region];
		rg->mapped = true;
		rg->start = (uint64_t)addr;
		rg->length = (op->size + PG - 1) & ~(PG - 1);
		add_window(c, rg->start, rg->length);
	}
	struct host_cmd cmd = { .op = HOP_MMAP, .len = op->size, .arg0 = op->prot };
	int flags = op->flags & ~(MAP_FIXED | MAP_FIXED_NOREPLACE);
	if (addr >= 0) {
		/* where cowvm put it: MAP_FIXED stays MAP_FIXED (it may replace), else NOREPLACE */
		cmd.addr = to_host(c, p, (uint64_t)addr);
		cmd.arg1 = flags | ((op->flags & MAP_FIXED) ? MAP_FIXED : MAP_FIXED_NOREPLACE);
	} else {
		/* cowvm refused: the host gets the call as written */
		cmd.addr = op->address ? to_host(c, p, op->address) : 0;
		cmd.arg1 = op->flags;
	}
	host_do(c, p, &cmd, NULL, hs);
	if (hs->done && !hs->error && addr >= 0 && (uint64_t)hs->value != cmd.addr) {
		char a[32], b[32];
		snprintf(a, sizeof a, "%#" PRIx64, (uint64_t)addr);
		snprintf(b, sizeof b, "%#" PRIx64, from_host(c, p, (uint64_t)hs->value));
		add_diff(c, "mmap address", a, b);
	}
}

static void op_range_call(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	uint64_t start, len;
	if (!resolve(c, &op->loc, &start, &len))
		return;
	if (op->loc.region < 0)
		add_window(c, start, len);
	cowvm_task_t *t = c->procs[p].t;
	int ret = op->kind == OP_MUNMAP ? cowvm_munmap(t, start, len)
		  : op->kind == OP_MPROTECT ? cowvm_mprotect(t, start, len, op->prot)
					    : cowvm_madvise(t, start, len, op->advice);
	cw->done = true;
	cw->error = -ret;
	struct host_cmd cmd = { .addr = to_host(c, p, start), .len = len };
	cmd.op = op->kind == OP_MUNMAP ? HOP_MUNMAP : op->kind == OP_MPROTECT ? HOP_MPROTECT : HOP_MADVISE;
	cmd.arg0 = op->kind == OP_MPROTECT ? op->prot : op->advice;
	host_do(c, p, &cmd, NULL, hs);
}

static void op_brk(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	cowvm_task_t *t = c->procs[p].t;
	uint64_t sb = c->procs[p].start_brk;
	uint64_t now = (uint64_t)cowvm_brk(t, 0);
	uint64_t want = op->brk_sign == 0  ? sb + op->size
			: op->brk_sign > 0 ? now + op->size
					   : (op->size > now ? 0 : now - op->size);
	uint64_t got = (uint64_t)cowvm_brk(t, want);
	cw->done = true;
	cw->error = got == want ? 0 : ENOMEM;
	cw->has_value = true;
	cw->value = (int64_t)(got - sb);
	struct cregion *heap = &c->regions[c->s->heap_region];
	heap->mapped = true;
	heap->start = sb;
	heap->length = got > sb ? ((got - sb + PG - 1) & ~(PG - 1)) : 0;
	if (heap->length > c->heap_max)
		c->heap_max = heap->length;
	if (want > sb && want - sb > c->heap_max && want - sb < (1ull << 40))
		c->heap_max = (want - sb + PG - 1) & ~(PG - 1); /* a refused growth: its room, too */
	if (!c->host_on)
		return;
	uint64_t hsb = c->host.procs[c->procs[p].host].start_brk;
	uint64_t hwant = want >= sb ? want - sb + hsb : want;
	struct host_cmd cmd = { .op = HOP_BRK, .addr = hwant };
	host_do(c, p, &cmd, NULL, hs);
	if (hs->done) {
		uint64_t hgot = (uint64_t)hs->value;
		hs->error = hgot == hwant ? 0 : ENOMEM;
		hs->has_value = true;
		hs->value = (int64_t)(hgot - hsb);
	}
}

static void op_read(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	uint64_t start, len;
	if (!resolve(c, &op->loc, &start, &len))
		return;
	if (op->size)
		len = op->size;
	if (op->loc.region < 0)
		add_window(c, start, len);
	int ret = read_memory_drop(c->procs[p].t, start, len);
	cw->done = true;
	cw->error = -ret;
	struct host_cmd cmd = { .op = HOP_READ, .addr = to_host(c, p, start), .len = len };
	host_do(c, p, &cmd, NULL, hs);
}

/* expect mem P LOC == DATA reads what it compares (the runner's expect_memory), as P. */
static void op_expect_mem(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	const struct expect *e = &op->expect;
	const struct data *d = &e->data;
	uint64_t start, len;
	if (!resolve(c, &e->loc, &start, &len))
		return;
	struct host_cmd cmd = { .op = HOP_READ, .addr = to_host(c, p, start) };
	int ret = 0;
	if (d->kind == DATA_FILL || !location_is_range(&e->loc) || e->loc.size) {
		cmd.len = d->kind == DATA_FILL ? (d->count ? d->count : len) : d->len;
		ret = read_memory_drop(c->procs[p].t, start, cmd.len);
	} else {
		cmd.mode = HW_EACH_PAGE;
		cmd.len = len;
		cmd.arg0 = (int64_t)d->len;
		for (uint64_t at = start; at < start + len && !ret; at += PG)
			ret = read_memory_drop(c->procs[p].t, at, d->len);
	}
	if (e->loc.region < 0)
		add_window(c, start, cmd.len);
	cw->done = true;
	cw->error = -ret;
	host_do(c, p, &cmd, NULL, hs);
}

static void op_write(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	uint64_t start, len;
	if (!resolve(c, &op->loc, &start, &len))
		return;
	struct host_cmd cmd = { 0 };
	data_cmd(op, &cmd, start, len);
	if (op->loc.region < 0)
		add_window(c, start, cmd.mode == HW_EACH_PAGE ? len : cmd.len);
	int ret = data_write(c->procs[p].t, &op->loc, &op->data, start, len);
	cw->done = true;
	cw->error = -ret;
	cmd.addr = to_host(c, p, start);
	host_do(c, p, &cmd, op->data.bytes, hs);
}

/* copy_from_user, get_user: the kernel reads the process's memory.  On the host: write(2) of
 * that memory to a memfd, which copies it with copy_from_user (faults count the same). */
static void op_kernel_read(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	uint64_t start, len, n = op->kind == OP_GET_USER ? 8 : op->size;
	if (!resolve(c, &op->loc, &start, &len))
		return;
	if (op->loc.region < 0)
		add_window(c, start, n);
	if (op->kind == OP_GET_USER) {
		uint64_t v;
		cw->error = -cowvm_get_user(c->procs[p].t, start, &v);
	} else {
		uint8_t *kbuf = realloc(c->kbuf, n ? n : 1);
		if (!kbuf) {
			stop_at(c, "out of memory");
			return;
		}
		c->kbuf = kbuf;
		cw->error = cowvm_copy_from_user(c->procs[p].t, kbuf, start, n) ? EFAULT : 0;
	}
	cw->done = true;
	struct host_cmd cmd = { .op = HOP_COPY_FROM_USER, .addr = to_host(c, p, start), .len = n };
	host_do(c, p, &cmd, NULL, hs);
	if (hs->done && !hs->error && (uint64_t)hs->value != n)
		hs->error = EFAULT;
}

/* copy_to_user, put_user: the kernel writes.  On the host: pread(2) from a memfd into it. */
static void op_kernel_write(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	uint64_t start, len, n;
	if (!resolve(c, &op->loc, &start, &len))
		return;
	uint8_t value[8], *buf;
	if (op->kind == OP_PUT_USER) {
		for (int i = 0; i < 8; i++)
			value[i] = (uint8_t)(op->value >> (8 * i));
		buf = value;
		n = 8;
		cw->error = -cowvm_put_user(c->procs[p].t, start, op->value);
	} else {
		if (!(buf = data_buffer(&op->data, len, &n))) {
			stop_at(c, "the data is too large to replay");
			return;
		}
		cw->error = cowvm_copy_to_user(c->procs[p].t, start, buf, n) ? EFAULT : 0;
	}
	cw->done = true;
	if (op->loc.region < 0)
		add_window(c, start, n);
	struct host_cmd cmd = { .op = HOP_COPY_TO_USER, .addr = to_host(c, p, start), .len = n };
	/* the worker repeats the pattern over n bytes */
	cmd.data_len = op->kind == OP_PUT_USER ? 8 : (uint32_t)op->data.len;
	host_do(c, p, &cmd, op->kind == OP_PUT_USER ? value : op->data.bytes, hs);
	if (buf != value)
		free(buf);
	if (hs->done && !hs->error && (uint64_t)hs->value != n)
		hs->error = EFAULT;
}

/* remote_read / remote_write: /proc/PID/mem, done by this program (not by the worker). */
static void op_remote(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	uint64_t start, len, n;
	if (!resolve(c, &op->loc, &start, &len))
		return;
	uint8_t *buf;
	bool write = op->kind == OP_REMOTE_WRITE;
	if (write) {
		buf = data_buffer(&op->data, len, &n);
	} else {
		n = op->size ? op->size : len;
		buf = n <= MAX_ACCESS_BYTES ? malloc(n ? n : 1) : NULL;
	}
	if (!buf) {
		stop_at(c, "the data is too large to replay");
		return;
	}
	if (op->loc.region < 0)
		add_window(c, start, n);
	int64_t moved = cowvm_access_remote(c->procs[p].t, start, buf, n, write);
	cw->done = true;
	cw->error = moved < 0 ? (int)-moved : 0;
	cw->has_value = true;
	cw->value = moved < 0 ? 0 : moved;
	if (c->host_on) {
		int64_t hm = host_mem_access(&c->host, c->procs[p].host, to_host(c, p, start), buf, n, write);
		hs->done = true;
		hs->error = hm < 0 ? (int)-hm : 0;
		hs->has_value = true;
		hs->value = hm < 0 ? 0 : hm;
	}
	free(buf);
}

/* ---- issue 16: mremap, the mlock family, process_madvise, rlimits ---------------------------- */

/*
 * mremap: where cowvm moved the mapping the host is told to move it too (MREMAP_MAYMOVE |
 * MREMAP_FIXED at cowvm's address, which the window keeps free on the host), as op_mmap places
 * mappings; a resize in place stays one; a call cowvm refused goes to the host as written.
 */
static void op_mremap(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	uint64_t start, len;
	if (!resolve(c, &op->loc, &start, &len))
		return;
	uint64_t old_len = op->has_old_size ? op->old_size : len, target = 0, tlen;
	if ((op->flags & MREMAP_FIXED) && !resolve(c, &op->child_loc, &target, &tlen))
		return;
	if (op->loc.region < 0)
		add_window(c, start, old_len);
	if (op->flags & MREMAP_FIXED)
		add_window(c, target, op->size);
	int64_t addr = cowvm_mremap(c->procs[p].t, start, old_len, op->size, op->flags, target);
	cw->done = true;
	cw->error = addr < 0 ? (int)-addr : 0;
	uint64_t new_len = (op->size + PG - 1) & ~(PG - 1);
	if (addr >= 0) {
		add_window(c, (uint64_t)addr, new_len);
		if (op->new_region >= 0) {
			struct cregion *rg = &c->regions[op->new_region];
			rg->mapped = true;
			rg->start = (uint64_t)addr;
			rg->length = new_len;
		} else if (location_is_range(&op->loc) && !op->loc.has_pages && !op->loc.size) {
			c->regions[op->loc.region].start = (uint64_t)addr;
			c->regions[op->loc.region].length = new_len;
		}
	}
	struct host_cmd cmd = { .op = HOP_MREMAP, .addr = to_host(c, p, start), .len = old_len,
				.arg0 = (int64_t)op->size, .arg1 = op->flags, .data_len = 8 };
	uint64_t new_addr = target ? to_host(c, p, target) : 0;
	if (addr >= 0 && (uint64_t)addr != start) {
		cmd.arg1 |= MREMAP_MAYMOVE | MREMAP_FIXED;
		new_addr = to_host(c, p, (uint64_t)addr);
	}
	host_do(c, p, &cmd, &new_addr, hs);
	if (hs->done && !hs->error && addr >= 0 && from_host(c, p, (uint64_t)hs->value) != (uint64_t)addr) {
		char a[32], b[32];
		snprintf(a, sizeof a, "%#" PRIx64, (uint64_t)addr);
		snprintf(b, sizeof b, "%#" PRIx64, from_host(c, p, (uint64_t)hs->value));
		add_diff(c, "mremap address", a, b);
	}
}

static void op_mlock(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	cowvm_task_t *t = c->procs[p].t;
	struct host_cmd cmd = { .op = HOP_MLOCK };
	int ret;
	if (op->kind == OP_MLOCKALL || op->kind == OP_MUNLOCKALL) {
		ret = op->kind == OP_MLOCKALL ? cowvm_mlockall(t, op->flags) : cowvm_munlockall(t);
		cmd.op = HOP_MLOCKALL;
		cmd.arg0 = op->flags;
		cmd.arg1 = op->kind == OP_MUNLOCKALL;
	} else {
		uint64_t start, len;
		if (!resolve(c, &op->loc, &start, &len))
			return;
		if (op->loc.region < 0)
			add_window(c, start, len);
		ret = op->kind == OP_MLOCK    ? cowvm_mlock(t, start, len)
		      : op->kind == OP_MLOCK2 ? cowvm_mlock2(t, start, len, (unsigned)op->flags)
					      : cowvm_munlock(t, start, len);
		cmd.addr = to_host(c, p, start);
		cmd.len = len;
		cmd.arg0 = op->flags;
		cmd.arg1 = op->kind == OP_MLOCK ? 0 : op->kind == OP_MLOCK2 ? 1 : 2;
	}
	cw->done = true;
	cw->error = -ret;
	host_do(c, p, &cmd, NULL, hs);
}

/* process_madvise P Q LOC ADVICE: the result (bytes advised) is compared too.  The faults of
 * the target are counted by compare_faults as any idle process's. */
static void op_process_madvise(struct cmp *c, const struct op *op, int p, struct outcome *cw,
			       struct outcome *hs)
{
	uint64_t start, len;
	int q = c->task_proc[op->child];
	if (q < 0 || !resolve(c, &op->loc, &start, &len))
		return;
	if (op->loc.region < 0)
		add_window(c, start, len);
	struct iovec iov = { .iov_base = (void *)(uintptr_t)start, .iov_len = len };
	int64_t ret = cowvm_process_madvise(c->procs[p].t, c->procs[q].t, &iov, 1, op->advice,
					    (unsigned)op->flags);
	cw->done = true;
	cw->error = ret < 0 ? (int)-ret : 0;
	cw->has_value = true;
	cw->value = ret;
	if (!c->host_on)
		return;
	struct host_cmd cmd = { .op = HOP_PROCESS_MADVISE, .addr = to_host(c, q, start), .len = len,
				.arg0 = op->advice, .arg1 = c->host.procs[c->procs[q].host].pid,
				.mode = (uint32_t)op->flags };
	host_do(c, p, &cmd, NULL, hs);
	hs->has_value = true;
}

static void op_rlimit(struct cmp *c, const struct op *op, int p, struct outcome *cw, struct outcome *hs)
{
	cowvm_task_t *t = c->procs[p].t;
	struct rlimit rl;
	cowvm_getrlimit(t, op->mode, &rl);
	rl.rlim_cur = op->value;
	if (op->has_old_size)
		rl.rlim_max = op->old_size;
	cw->done = true;
	cw->error = -cowvm_setrlimit(t, op->mode, &rl);
	struct host_cmd cmd = { .op = HOP_SETRLIMIT, .addr = op->value, .len = op->old_size,
				.arg0 = op->mode, .arg1 = op->has_old_size };
	host_do(c, p, &cmd, NULL, hs);
}

/* Operations the host cannot replay as cowvm means them. */
static const char *host_cannot(const struct op *op)
{
	switch (op->kind) {
	case OP_THREAD:
		return "threads are not replayed on the host";
	case OP_PIN:
	case OP_UNPIN:
	case OP_PIN_WRITE:
		return "GUP pins are cowvm-only (no system call takes one on demand)";
	case OP_DPUT:
	case OP_DGET:
		return "dput/dget are cowvm-only (Determinator's Put and Get)";
	case OP_SNAPSHOT:
	case OP_RESTORE:
		return "snapshots are cowvm-only (the host has no system call that rolls an address space back)";
	case OP_FAIL_ALLOC:
		return op->mode == COWVM_FAIL_OFF ? NULL : "allocation failures are injected in cowvm only";
	case OP_CLEAR_REFS:
		return op->value == 4 ? "soft-dirty: the host kernel is built without it" : NULL;
	case OP_MLOCKALL:
		return (op->flags & MCL_CURRENT) ? "mlockall(MCL_CURRENT) would lock and populate the host "
			"worker's own program, stack and buffers too: its faults and VmLck cannot compare" : NULL;
	case OP_CAPS:
		return "capabilities: the host workers run without any (they cannot be given one)";
	default:
		return NULL;
	}
}

/* ---- observing -------------------------------------------------------------------------------- */

static int build_slots(struct cmp *c, struct slot **out)
{
	int n = 0, cap = 0;
	struct slot *slots = NULL;
	for (int r = 0; r < c->s->nr_regions; r++) {
		uint64_t start, length;
		if (r == c->s->heap_region) {
			if (!c->nr_procs || !c->heap_max)
				continue;
			start = c->procs[0].start_brk; /* the same in every cowvm process */
			length = c->heap_max;
		} else {
			if (!c->regions[r].mapped)
				continue;
			start = c->regions[r].start;
			length = c->regions[r].length;
		}
		for (uint64_t pg = 0; pg < length / PG; pg++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				struct slot *grown = realloc(slots, (size_t)cap * sizeof *grown);
				if (!grown) {
					free(slots);
					*out = NULL;
					return -1;
				}
				slots = grown;
			}
			slots[n++] = (struct slot){ r, pg, start + pg * PG };
		}
	}
	*out = slots;
	return n;
}

static void slot_name(struct cmp *c, int p, const struct slot *sl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s[%" PRIu64 "]", c->procs[p].name, c->s->region_names[sl->region], sl->page);
}

static void observe_cowvm(struct cmp *c, int p, const struct slot *slots, int n, struct obs_page *pages)
{
	for (int i = 0; i < n; i++) {
		uint64_t w = cowvm_pagemap(c->procs[p].t, slots[i].addr);
		struct cowvm_frame_info fi;
		pages[i].word = w;
		pages[i].zero = (w & PM_PRESENT) && cowvm_frame_info(c->vm, w & PM_PFN, &fi) == 0 &&
				fi.state == COWVM_FRAME_ZERO;
	}
}

static bool observe_host(struct cmp *c, int p, const struct slot *slots, int n, struct obs_page *pages)
{
	enum { CHUNK = 4096 };
	int hp = c->procs[p].host;
	uint64_t *words = malloc(CHUNK * sizeof *words);
	bool *zero = malloc(CHUNK * sizeof *zero);
	bool ok = words && zero;
	if (!ok)
		fail_host(c, "out of memory");
	for (int i = 0; ok && i < n;) {
		/* a run of consecutive slots is one read */
		int j = i + 1;
		while (j < n && j - i < CHUNK && slots[j].addr == slots[j - 1].addr + PG)
			j++;
		uint64_t haddr = to_host(c, p, slots[i].addr);
		if (!host_pagemap(&c->host, hp, haddr, (uint64_t)(j - i), words)) {
			fail_host(c, "%s", c->host.error);
			ok = false;
			break;
		}
		bool zero_ok = c->zero_mode == 1 && host_zero_pages(&c->host, hp, haddr, (uint64_t)(j - i), zero);
		for (int k = i; k < j; k++) {
			uint64_t w = words[k - i], flags;
			pages[k].word = w;
			if (!(w & PM_PRESENT) || (w & PM_SWAP))
				pages[k].zero = 0;
			else if (c->zero_mode == 2)
				pages[k].zero = host_kpageflags(&c->host, w & PM_PFN, &flags)
							? (int)((flags >> KPF_ZERO_PAGE) & 1) : -1;
			else if (zero_ok)
				pages[k].zero = zero[k - i];
			else
				pages[k].zero = -1;
		}
		i = j;
	}
	free(words);
	free(zero);
	return ok;
}


/* Does [s, e) meet a slot range of this step (a region or the heap window)? */
static bool meets_slots(const struct slot *slots, int n, uint64_t s, uint64_t e)
{
	for (int i = 0; i < n; i++)
		if (slots[i].addr < e && s < slots[i].addr + PG)
			return true;
	return false;
}

/* cowvm's VMAs that meet the slots, read from its smaps text (cowvm_proc_smaps) with the host's
 * parser, so that both sides are read the same way. */
static int cowvm_vmas(struct cmp *c, int p, const struct slot *slots, int ns, struct obs_vma **out)
{
	*out = NULL;
	int64_t need = cowvm_proc_smaps(c->procs[p].t, NULL, 0);
	char *text = need >= 0 ? malloc((size_t)need + 1) : NULL;
	if (!text || cowvm_proc_smaps(c->procs[p].t, text, (size_t)need + 1) != need) {
		free(text);
		return 0;
	}
	FILE *f = fmemopen(text, (size_t)need, "r");
	struct host_vma *hv = NULL;
	int hn = 0;
	bool ok = f && host_parse_smaps(f, &hv, &hn);
	if (f)
		fclose(f);
	free(text);
	struct obs_vma *v = ok ? calloc((size_t)hn + 1, sizeof *v) : NULL;
	int n = 0;
	for (int i = 0; v && i < hn; i++) {
		if (!meets_slots(slots, ns, hv[i].start, hv[i].end))
			continue;
		struct obs_vma *o = &v[n++];
		o->start = hv[i].start;
		o->end = hv[i].end;
		memcpy(o->perms, hv[i].perms, 5);
		uint64_t kb[NR_SMAPS_KB] = { hv[i].rss, hv[i].pss, hv[i].shared_clean, hv[i].shared_dirty,
					     hv[i].private_clean, hv[i].private_dirty, hv[i].anonymous,
					     hv[i].locked, hv[i].swap, hv[i].swap_pss };
		memcpy(o->kb, kb, sizeof kb);
		memcpy(o->vmflags, hv[i].vmflags, sizeof o->vmflags);
	}
	free(hv);
	*out = v;
	return v ? n : 0;
}

static int host_vmas(struct cmp *c, int p, const struct slot *slots, int ns, struct obs_vma **out)
{
	struct host_vma *hv;
	int hn;
	*out = NULL;
	if (!host_smaps(&c->host, c->procs[p].host, &hv, &hn)) {
		fail_host(c, "%s", c->host.error);
		return -1;
	}
	struct obs_vma *v = calloc((size_t)hn + 1, sizeof *v);
	int n = 0;
	for (int i = 0; v && i < hn; i++) {
		uint64_t s = from_host(c, p, hv[i].start), e = hv[i].end - hv[i].start + s;
		if (!meets_slots(slots, ns, s, e))
			continue;
		struct obs_vma *o = &v[n++];
		o->start = s;
		o->end = e;
		memcpy(o->perms, hv[i].perms, 5);
		uint64_t kb[NR_SMAPS_KB] = { hv[i].rss, hv[i].pss, hv[i].shared_clean, hv[i].shared_dirty,
					     hv[i].private_clean, hv[i].private_dirty, hv[i].anonymous,
					     hv[i].locked, hv[i].swap, hv[i].swap_pss };
		memcpy(o->kb, kb, sizeof kb);
		memcpy(o->vmflags, hv[i].vmflags, sizeof o->vmflags);
	}
	free(hv);
	*out = v;
	return v ? n : -1;
}

/* "A buf[0..1]" for a VMA inside one region, else its bounds. */
static void vma_name(struct cmp *c, int p, const struct slot *slots, int ns, const struct obs_vma *v,
		     char *buf, size_t len)
{
	int first = -1, last = -1;
	for (int i = 0; i < ns; i++)
		if (slots[i].addr >= v->start && slots[i].addr < v->end) {
			if (first < 0)
				first = i;
			last = i;
		}
	if (first >= 0 && slots[first].region == slots[last].region &&
	    slots[last].addr + PG == v->end && slots[first].addr == v->start) {
		if (first == last)
			snprintf(buf, len, "%s VMA %s[%" PRIu64 "]", c->procs[p].name,
				 c->s->region_names[slots[first].region], slots[first].page);
		else
			snprintf(buf, len, "%s VMA %s[%" PRIu64 "..%" PRIu64 "]", c->procs[p].name,
				 c->s->region_names[slots[first].region], slots[first].page, slots[last].page);
	} else {
		snprintf(buf, len, "%s VMA %" PRIx64 "-%" PRIx64, c->procs[p].name, v->start, v->end);
	}
}

static void compare_vmas(struct cmp *c, int p, const struct slot *slots, int ns)
{
	struct obs_vma *cv = NULL, *hv = NULL;
	int cn = cowvm_vmas(c, p, slots, ns, &cv);
	int hn = host_vmas(c, p, slots, ns, &hv);
	if (hn < 0) {
		free(cv);
		return;
	}
	int i = 0, j = 0;
	char name[96], what[160], a[64], b[64];
	while (i < cn || j < hn) {
		if (j >= hn || (i < cn && cv[i].start < hv[j].start)) {
			vma_name(c, p, slots, ns, &cv[i], name, sizeof name);
			snprintf(what, sizeof what, "%s", name);
			snprintf(a, sizeof a, "%s", cv[i].perms);
			c->observations++;
			add_diff(c, what, a, "(no VMA starts there)");
			i++;
			continue;
		}
		if (i >= cn || hv[j].start < cv[i].start) {
			vma_name(c, p, slots, ns, &hv[j], name, sizeof name);
			snprintf(b, sizeof b, "%s", hv[j].perms);
			c->observations++;
			add_diff(c, name, "(no VMA starts there)", b);
			j++;
			continue;
		}
		vma_name(c, p, slots, ns, &cv[i], name, sizeof name);
		c->observations++;
		if (cv[i].end != hv[j].end) {
			snprintf(what, sizeof what, "%s: end", name);
			snprintf(a, sizeof a, "%" PRIx64, cv[i].end);
			snprintf(b, sizeof b, "%" PRIx64, hv[j].end);
			add_diff(c, what, a, b);
		}
		c->observations++;
		if (strcmp(cv[i].perms, hv[j].perms)) {
			snprintf(what, sizeof what, "%s: perms", name);
			add_diff(c, what, cv[i].perms, hv[j].perms);
		}
		for (int k = 0; k < NR_SMAPS_KB; k++) {
			snprintf(what, sizeof what, "%s: %s kB", name, smaps_kb_names[k]);
			cmp_u64(c, what, cv[i].kb[k], hv[j].kb[k]);
		}
		c->observations++;
		if (strcmp(cv[i].vmflags, hv[j].vmflags)) {
			snprintf(what, sizeof what, "%s: VmFlags", name);
			add_diff(c, what, cv[i].vmflags, hv[j].vmflags);
		}
		i++;
		j++;
	}
	free(cv);
	free(hv);
}

/* ---- the sharing structure ------------------------------------------------------------------ */

struct member {
	uint64_t pfn;
	int e;
};

static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	if (x->pfn != y->pfn)
		return x->pfn < y->pfn ? -1 : 1;
	return x->e - y->e;
}

/* rep[e] = the first element mapping the same frame as e, over the elements in `in`. */
static void representatives(const struct obs_page *pages, const bool *in, int n, int *rep)
{
	struct member *m = malloc((size_t)(n + 1) * sizeof *m);
	int k = 0;
	for (int e = 0; m && e < n; e++) {
		rep[e] = -1;
		if (in[e])
			m[k++] = (struct member){ pages[e].word & PM_PFN, e };
	}
	if (!m)
		return;
	qsort(m, (size_t)k, sizeof *m, member_cmp);
	for (int i = 0; i < k; i++)
		rep[m[i].e] = (i > 0 && m[i].pfn == m[i - 1].pfn) ? rep[m[i - 1].e] : m[i].e;
	free(m);
}

/* "with A buf[0], B buf[0]" or "alone" */
static void class_text(struct cmp *c, const struct slot *slots, int ns, const int *procs_of,
		       const int *rep, int n, int e, char *buf, size_t len)
{
	size_t used = 0;
	int shown = 0, more = 0;
	buf[0] = 0;
	for (int f = 0; f < n; f++) {
		if (f == e || rep[f] < 0 || rep[f] != rep[e])
			continue;
		char name[64];
		slot_name(c, procs_of[f], &slots[f % ns], name, sizeof name);
		if (used + strlen(name) + 8 < len && shown < 3) {
			used += (size_t)snprintf(buf + used, len - used, "%s%s", shown ? ", " : "with ", name);
			shown++;
		} else {
			more++;
		}
	}
	if (!shown)
		snprintf(buf, len, "alone");
	else if (more)
		snprintf(buf + used, len - used, " +%d", more);
}

/* ---- one step's observation ------------------------------------------------------------------ */

static void compare_state(struct cmp *c)
{
	struct slot *slots;
	int ns = build_slots(c, &slots);
	if (ns < 0) {
		fail_host(c, "out of memory");
		return;
	}
	int live[c->nr_procs + 1], nl = 0;
	for (int p = 0; p < c->nr_procs; p++)
		if (c->procs[p].live)
			live[nl++] = p;
	int n = nl * ns;
	struct obs_page *cp = calloc((size_t)n + 1, sizeof *cp), *hp = calloc((size_t)n + 1, sizeof *hp);
	int *procs_of = calloc((size_t)n + 1, sizeof *procs_of);
	if (!cp || !hp || !procs_of) {
		fail_host(c, "out of memory");
		goto out;
	}
	for (int k = 0; k < nl; k++) {
		for (int i = 0; i < ns; i++)
			procs_of[k * ns + i] = live[k];
		observe_cowvm(c, live[k], slots, ns, cp + k * ns);
		if (!observe_host(c, live[k], slots, ns, hp + k * ns))
			goto out;
	}
	/* per page: the pagemap bits and the zero page */
	char what[96];
	for (int e = 0; e < n; e++) {
		const struct slot *sl = &slots[e % ns];
		char name[64];
		slot_name(c, procs_of[e], sl, name, sizeof name);
		uint64_t cw = cp[e].word, hw = hp[e].word;
		static const struct { uint64_t bit; const char *name; } bits[] = {
			{ PM_PRESENT, "present" }, { PM_SWAP, "swapped" },
			{ PM_FILE, "shared memory (pagemap 61)" }, { PM_EXCLUSIVE, "exclusive (pagemap 56)" },
		};
		for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
			snprintf(what, sizeof what, "%s %s", name, bits[b].name);
			cmp_bool(c, what, cw & bits[b].bit, hw & bits[b].bit);
		}
		if (hp[e].zero >= 0) {
			snprintf(what, sizeof what, "%s zero page", name);
			cmp_bool(c, what, cp[e].zero, hp[e].zero);
		}
		if (c->frames && (hw & PM_PRESENT) && !hp[e].zero && !(hw & PM_PFN) && !c->failed)
			fail_host(c, "%s: the host shows frame number 0 for a present page, although frame "
				  "numbers should be readable (root)", name);
	}
	/* the sharing structure: over the pages that map a real frame on both sides */
	if (c->frames && !c->failed) {
		bool *in = calloc((size_t)n + 1, sizeof *in);
		int *crep = calloc((size_t)n + 1, sizeof *crep), *hrep = calloc((size_t)n + 1, sizeof *hrep);
		bool *reported = calloc((size_t)n + 1, sizeof *reported);
		int *c2h = calloc((size_t)n + 1, sizeof *c2h), *h2c = calloc((size_t)n + 1, sizeof *h2c);
		if (in && crep && hrep && reported && c2h && h2c) {
			for (int e = 0; e < n; e++)
				in[e] = (cp[e].word & PM_PRESENT) && cp[e].zero != 1 &&
					(hp[e].word & PM_PRESENT) && hp[e].zero != 1;
			representatives(cp, in, n, crep);
			representatives(hp, in, n, hrep);
			/* equal partitions: rep maps one-to-one between the sides */
			for (int e = 0; e < n; e++)
				c2h[e] = h2c[e] = -1;
			for (int e = 0; e < n; e++) {
				if (!in[e])
					continue;
				int a = crep[e], b = hrep[e];
				bool ok = (c2h[a] < 0 || c2h[a] == b) && (h2c[b] < 0 || h2c[b] == a);
				if (c2h[a] < 0)
					c2h[a] = b;
				if (h2c[b] < 0)
					h2c[b] = a;
				c->observations++;
				if (ok || reported[e])
					continue;
				char name[64], x[64], y[64];
				slot_name(c, procs_of[e], &slots[e % ns], name, sizeof name);
				snprintf(what, sizeof what, "%s frame shared", name);
				class_text(c, slots, ns, procs_of, crep, n, e, x, sizeof x);
				class_text(c, slots, ns, procs_of, hrep, n, e, y, sizeof y);
				add_diff(c, what, x, y);
				for (int f = 0; f < n; f++)
					if (in[f] && (crep[f] == a || hrep[f] == b))
						reported[f] = true;
			}
		}
		free(c2h);
		free(h2c);
		free(in);
		free(crep);
		free(hrep);
		free(reported);
	}
	for (int k = 0; k < nl && !c->failed; k++)
		compare_vmas(c, live[k], slots, ns);
out:
	free(cp);
	free(hp);
	free(procs_of);
	free(slots);
}

/* ---- one step ----------------------------------------------------------------------------------- */

static void snapshot_faults(struct cmp *c)
{
	for (int p = 0; p < c->nr_procs; p++) {
		struct cproc *pr = &c->procs[p];
		if (!pr->live)
			continue;
		pr->cow_before = cow_faults(c, p);
		pr->host_before_ok = c->host_on && pr->host >= 0 &&
				     host_faults(&c->host, pr->host, &pr->host_before);
		if (c->s->swap_bytes) {
			pr->cow_maj_before = cow_majflt(c, p);
			pr->host_maj_ok = pr->host_before_ok &&
					  host_majflt(&c->host, pr->host, &pr->host_maj_before);
		}
	}
}

static void compare_faults(struct cmp *c, int actor, const struct outcome *hs, int born)
{
	char what[96];
	for (int p = 0; p < c->nr_procs && !c->failed; p++) {
		struct cproc *pr = &c->procs[p];
		if (!pr->live || p == born)
			continue;
		uint64_t cd = cow_faults(c, p) - pr->cow_before, hd;
		if (p == actor && hs->measured) {
			hd = hs->faults;
		} else {
			uint64_t now;
			if (!pr->host_before_ok || !host_faults(&c->host, pr->host, &now)) {
				fail_host(c, "%s", c->host.error);
				return;
			}
			hd = now - pr->host_before;
		}
		snprintf(what, sizeof what, "faults of %s", pr->name);
		cmp_u64(c, what, cd, hd);
		uint64_t hmaj;
		if (c->s->swap_bytes && pr->host_maj_ok && host_majflt(&c->host, pr->host, &hmaj)) {
			/* with swap, major faults apart (swap-ins read from the device) */
			snprintf(what, sizeof what, "major faults of %s", pr->name);
			cmp_u64(c, what, cow_majflt(c, p) - pr->cow_maj_before, hmaj - pr->host_maj_before);
		}
		size_t used = strlen(c->trace);
		snprintf(c->trace + used, sizeof c->trace - used, " %s %" PRIu64 "/%" PRIu64, pr->name, cd, hd);
	}
}

/* ---- expectations on both sides ------------------------------------------------------------- */

static void free_marks(struct cmp *c)
{
	for (int i = 0; c->marks && i < c->s->nr_marks; i++) {
		struct cmark *m = &c->marks[i];
		free(m->slots);
		for (int k = 0; k < 2; k++) {
			free(m->words[k]);
			free(m->status[k]);
		}
	}
	free(c->marks);
	c->marks = NULL;
}

/* The status text of process p on one side (0 cowvm, 1 host). */
static bool side_status(struct cmp *c, int p, int side, char *buf, size_t len)
{
	if (side == 0)
		return cowvm_proc_status(c->procs[p].t, buf, len) > 0;
	return host_status(&c->host, c->procs[p].host, buf, len);
}

static void mark_both(struct cmp *c, const struct op *op)
{
	struct cmark *m = &c->marks[op->mark];
	free(m->slots);
	for (int k = 0; k < 2; k++) {
		free(m->words[k]);
		free(m->status[k]);
	}
	memset(m, 0, sizeof *m);
	int ns = build_slots(c, &m->slots);
	if (ns < 0) {
		fail_host(c, "out of memory");
		return;
	}
	m->nslots = ns;
	m->nprocs = c->nr_procs;
	for (int k = 0; k < 2; k++) {
		m->words[k] = calloc((size_t)c->nr_procs * (size_t)ns + 1, sizeof *m->words[k]);
		m->status[k] = malloc(((size_t)c->nr_procs * (size_t)nr_status_fields + 1) * sizeof *m->status[k]);
		if (!m->words[k] || !m->status[k]) {
			fail_host(c, "out of memory");
			return;
		}
	}
	struct obs_page *pages = calloc((size_t)ns + 1, sizeof *pages);
	if (!pages) {
		fail_host(c, "out of memory");
		return;
	}
	for (int p = 0; p < c->nr_procs; p++) {
		for (int k = 0; k < 2; k++) {
			char text[4096];
			bool live = c->procs[p].live && side_status(c, p, k, text, sizeof text);
			for (int f = 0; f < nr_status_fields; f++) {
				uint64_t kb;
				m->status[k][p * nr_status_fields + f] =
					live && status_value_kb(text, f, &kb) ? kb : UINT64_MAX;
			}
			if (!c->procs[p].live)
				continue;
			if (k == 0)
				observe_cowvm(c, p, m->slots, ns, pages);
			else if (!observe_host(c, p, m->slots, ns, pages))
				break;
			for (int i = 0; i < ns; i++)
				m->words[k][p * ns + i] = pages[i].word;
		}
	}
	free(pages);
	m->set = !c->failed;
}

/* One page's pagemap word and zero-page state on one side; false if it cannot be read. */
static bool side_page(struct cmp *c, int p, int side, uint64_t addr, struct obs_page *pg)
{
	struct slot sl = { .region = -1, .addr = addr };
	if (side == 0) {
		observe_cowvm(c, p, &sl, 1, pg);
		return true;
	}
	return observe_host(c, p, &sl, 1, pg);
}

/* The word slot (region, page) of process p had at mark m on one side; false if not seen. */
static bool word_at_cmark(const struct cmark *m, int p, int side, int region, uint64_t page, uint64_t *w)
{
	if (!m->set || p >= m->nprocs)
		return false;
	for (int i = 0; i < m->nslots; i++)
		if (m->slots[i].region == region && m->slots[i].page == page) {
			*w = m->words[side][p * m->nslots + i];
			return true;
		}
	return false;
}

/*
 * Whether `expect page` holds on one side, over what both sides can show: the pagemap bits
 * (present, exclusive, swapped, file), the zero page, and with frame numbers `same` and
 * `frame ... at mark`.  The PTE bits (writable, dirty), PageAnonExclusive, pins and soft-dirty
 * (the host is built without it) are cowvm's alone.  -1: it could not be evaluated.
 */
static int page_holds(struct cmp *c, const struct op *op, int side)
{
	const struct expect *e = &op->expect;
	int p = c->task_proc[e->task];
	uint64_t start, len, ostart = 0, olen;
	if (p < 0 || !resolve(c, &e->loc, &start, &len))
		return -1;
	int q = e->has_same ? c->task_proc[e->same_task] : -1;
	if (e->has_same) {
		if (q < 0 || !c->frames)
			return -1;
		if (e->same_loc.region == -2)
			ostart = start;
		else if (!resolve(c, &e->same_loc, &ostart, &olen))
			return -1;
	}
	const struct location *floc = e->frame_loc.region == -2 ? &e->loc : &e->frame_loc;
	uint64_t fstart = 0;
	int fp = e->has_frame_at ? c->task_proc[e->frame_task] : -1;
	if (e->has_frame_at) {
		if (!c->frames || fp < 0 || floc->region < 0 || !resolve(c, floc, &fstart, &olen))
			return -1;
	}
	static const struct { unsigned prop; uint64_t bit; } bits[] = {
		{ PAGE_PRESENT, PM_PRESENT }, { PAGE_EXCLUSIVE, PM_EXCLUSIVE }, { PAGE_SWAPPED, PM_SWAP },
		{ PAGE_FILE, PM_FILE },
	};
	uint64_t first = start & ~(PG - 1), end = start + (len ? len : 1);
	for (uint64_t addr = first; addr < end; addr += PG) {
		struct obs_page pg, og;
		if (!side_page(c, p, side, addr, &pg))
			return -1;
		for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
			bool has = (pg.word & bits[b].bit) != 0;
			if (((e->want_set & bits[b].prop) && !has) || ((e->want_clear & bits[b].prop) && has))
				return 0;
		}
		if ((e->want_set | e->want_clear) & PAGE_ZERO) {
			if (pg.zero < 0)
				return -1;
			if (((e->want_set & PAGE_ZERO) && !pg.zero) || ((e->want_clear & PAGE_ZERO) && pg.zero))
				return 0;
		}
		bool present = pg.word & PM_PRESENT;
		uint64_t pfn = pg.word & PM_PFN;
		if (e->has_same) {
			if (!side_page(c, q, side, (ostart & ~(PG - 1)) + (addr - first), &og))
				return -1;
			bool same = present && (og.word & PM_PRESENT) && (og.word & PM_PFN) == pfn;
			if (same == e->same_negated)
				return 0;
		}
		if (e->has_frame_at) {
			const struct cregion *rg = &c->regions[floc->region];
			uint64_t page = ((fstart & ~(PG - 1)) - rg->start) / PG + (addr - first) / PG, then;
			if (!word_at_cmark(&c->marks[e->frame_mark], fp, side, floc->region, page, &then))
				return -1;
			bool same = present && (then & PM_PRESENT) && (then & PM_PFN) == pfn;
			if (same == e->frame_differs)
				return 0;
		}
	}
	return 1;
}

/* `expect status P FIELD [since M]` on one side: the value (or its change); false if the host
 * cannot have it: absolute values only of the lines the worker adds nothing to (VmLck, VmPin,
 * VmSwap), any line since a mark. */
static bool status_on(struct cmp *c, const struct op *op, int side, int64_t *out)
{
	const struct expect *e = &op->expect;
	int p = c->task_proc[e->task];
	const char *name = status_fields[e->field];
	if (p < 0)
		return false;
	if (e->mark < 0 && strcmp(name, "VmLck") && strcmp(name, "VmPin") && strcmp(name, "VmSwap"))
		return false;
	char text[4096];
	uint64_t kb;
	if (!side_status(c, p, side, text, sizeof text) || !status_value_kb(text, e->field, &kb))
		return false;
	*out = (int64_t)kb;
	if (e->mark >= 0) {
		const struct cmark *m = &c->marks[e->mark];
		uint64_t then = m->set && p < m->nprocs ? m->status[side][p * nr_status_fields + e->field]
							 : UINT64_MAX;
		if (then == UINT64_MAX)
			return false;
		*out -= (int64_t)then;
	}
	return true;
}

static bool cmp_holds(int64_t got, enum comparison cmp, int64_t want)
{
	switch (cmp) {
	case CMP_EQ: return got == want;
	case CMP_NE: return got != want;
	case CMP_LT: return got < want;
	case CMP_LE: return got <= want;
	case CMP_GT: return got > want;
	case CMP_GE: return got >= want;
	}
	return false;
}

/* An expect line that looks at state: what it says is evaluated on both sides and compared. */
static void expect_both(struct cmp *c, const struct op *op)
{
	const struct expect *e = &op->expect;
	char what[96];
	if (e->kind == EXPECT_PAGE) {
		int cv = page_holds(c, op, 0);
		int hv = cv >= 0 && !c->failed ? page_holds(c, op, 1) : -1;
		if (cv < 0 || hv < 0)
			return;
		c->observations++;
		snprintf(what, sizeof what, "expect page (line %d) holds", op->line);
		if (cv != hv)
			add_diff(c, what, cv ? "yes" : "no", hv ? "yes" : "no");
	} else if (e->kind == EXPECT_COUNTER && e->counter == COUNTER_STATUS) {
		int64_t cv, hv;
		if (!status_on(c, op, 0, &cv) || !status_on(c, op, 1, &hv))
			return;
		c->observations++;
		snprintf(what, sizeof what, "status %s %s%s kB (line %d)", c->procs[c->task_proc[e->task]].name,
			 status_fields[e->field], e->mark >= 0 ? " change" : "", op->line);
		if (cv != hv) {
			char a[32], b[32];
			snprintf(a, sizeof a, "%" PRId64 "%s", cv, cmp_holds(cv, e->cmp, e->value) ? "" : " (fails)");
			snprintf(b, sizeof b, "%" PRId64 "%s", hv, cmp_holds(hv, e->cmp, e->value) ? "" : " (fails)");
			add_diff(c, what, a, b);
		}
	}
}

static bool changes_state(const struct op *op)
{
	switch (op->kind) {
	case OP_EXPECT:
		return op->expect.kind == EXPECT_MEMORY; /* a read by the process */
	case OP_MEMORY: case OP_SWAP: case OP_MARK: case OP_CHECK: case OP_SHOW: case OP_ECHO:
		return false;
	default:
		return true;
	}
}

static void run_step(struct cmp *c, const struct op *op)
{
	c->op = op;
	if (!c->dry && c->host_on && op->kind == OP_MARK) {
		mark_both(c, op);
		return;
	}
	if (!c->dry && c->host_on && op->kind == OP_EXPECT && op->expect.kind != EXPECT_MEMORY) {
		expect_both(c, op);
		return;
	}
	if (!changes_state(op))
		return;
	const char *why = host_cannot(op);
	if (why) {
		stop_at(c, "%s", why);
		return;
	}
	c->step++;
	int task = op->kind == OP_EXPECT ? op->expect.task : op->task;
	int p = task >= 0 ? c->task_proc[task] : -1;
	int born = -1;
	struct outcome cw = { 0 }, hs = { 0 };
	if (c->host_on)
		snapshot_faults(c);
	switch (op->kind) {
	case OP_SPAWN: {
		cowvm_task_t *t = cowvm_spawn(c->vm);
		cw.done = true;
		cw.error = t ? 0 : ENOMEM;
		if (!t)
			break;
		born = new_proc(c, t, c->s->task_names[op->new_task], -1);
		if (born < 0) {
			cowvm_exit(t);
			fail_host(c, "out of memory");
			break;
		}
		c->task_proc[op->new_task] = born;
		if (c->host_on) {
			int hp = host_spawn(&c->host);
			if (hp < 0) {
				fail_host(c, "cannot start a host worker: %s", c->host.error);
				break;
			}
			c->procs[born].host = hp;
			hs.done = true;
		}
		break;
	}
	case OP_FORK: {
		cowvm_task_t *t = cowvm_fork(c->procs[p].t);
		cw.done = true;
		cw.error = t ? 0 : ENOMEM;
		if (t) {
			born = new_proc(c, t, c->s->task_names[op->new_task], p);
			if (born < 0) {
				cowvm_exit(t);
				fail_host(c, "out of memory");
				break;
			}
			c->task_proc[op->new_task] = born;
		}
		if (c->host_on) {
			struct host_reply r;
			int child = -1;
			if (!host_fork(&c->host, c->procs[p].host, &child, &r)) {
				fail_host(c, "host fork in %s: %s", c->procs[p].name, c->host.error);
				break;
			}
			hs.done = true;
			hs.error = r.result < 0 ? (int)-r.result : 0;
			hs.measured = true;
			hs.faults = r.faults;
			if (born >= 0)
				c->procs[born].host = child;
			if ((born >= 0) != (child >= 0)) {
				/* one side has a process the other has not: compare the outcome, then stop */
				char a[48], b[48];
				add_diff(c, "result", outcome_text(cw.error, a, sizeof a),
					 outcome_text(hs.error, b, sizeof b));
				stop_at(c, "the fork succeeded on one side only");
			}
		}
		break;
	}
	case OP_EXIT:
		cowvm_exit(c->procs[p].t);
		c->procs[p].live = false;
		c->task_proc[op->task] = -1;
		cw.done = true;
		if (c->host_on) {
			if (!host_exit(&c->host, c->procs[p].host)) {
				fail_host(c, "exit of %s: %s", c->procs[p].name, c->host.error);
				break;
			}
			hs.done = true;
		}
		break;
	case OP_MMAP: op_mmap(c, op, p, &cw, &hs); break;
	case OP_MUNMAP: case OP_MPROTECT: case OP_MADVISE: op_range_call(c, op, p, &cw, &hs); break;
	case OP_BRK: op_brk(c, op, p, &cw, &hs); break;
	case OP_READ: op_read(c, op, p, &cw, &hs); break;
	case OP_EXPECT: op_expect_mem(c, op, p, &cw, &hs); break;
	case OP_WRITE: op_write(c, op, p, &cw, &hs); break;
	case OP_COPY_FROM_USER: case OP_GET_USER: op_kernel_read(c, op, p, &cw, &hs); break;
	case OP_COPY_TO_USER: case OP_PUT_USER: op_kernel_write(c, op, p, &cw, &hs); break;
	case OP_REMOTE_READ: case OP_REMOTE_WRITE: op_remote(c, op, p, &cw, &hs); break;
	case OP_MREMAP: op_mremap(c, op, p, &cw, &hs); break;
	case OP_MLOCK: case OP_MLOCK2: case OP_MUNLOCK: case OP_MLOCKALL: case OP_MUNLOCKALL:
		op_mlock(c, op, p, &cw, &hs);
		break;
	case OP_PROCESS_MADVISE: op_process_madvise(c, op, p, &cw, &hs); break;
	case OP_RLIMIT: op_rlimit(c, op, p, &cw, &hs); break;
	case OP_CLEAR_REFS: {
		int ret = cowvm_clear_refs(c->procs[p].t, (int)op->value);
		cw.done = true;
		cw.error = -ret;
		if (c->host_on) {
			ret = host_clear_refs(&c->host, c->procs[p].host, (int)op->value);
			hs.done = true;
			hs.error = -ret;
		}
		break;
	}
	case OP_FAIL_ALLOC:
		cowvm_fail_alloc(c->vm, op->mode, op->value);
		return;
	default:
		stop_at(c, "compare does not replay this operation");
		return;
	}
	if (c->stopped || !c->host_on || !cw.done)
		return;
	char a[48], b[48];
	int before = c->nr_diffs;
	c->trace[0] = 0;
	c->observations++;
	if (cw.error != hs.error)
		add_diff(c, "result", outcome_text(cw.error, a, sizeof a), outcome_text(hs.error, b, sizeof b));
	if (cw.has_value && hs.has_value && !cw.error && !hs.error)
		cmp_u64(c, "result value", (uint64_t)cw.value, (uint64_t)hs.value);
	compare_faults(c, p, &hs, born);
	if (!c->failed)
		compare_state(c);
	if (c->o->verbose)
		fprintf(c->out, "  step %d line %d `%s`: %s/%s, faults (cowvm/host)%s%s%s\n", c->step, op->line,
			op->text, outcome_text(cw.error, a, sizeof a), outcome_text(hs.error, b, sizeof b),
			c->trace[0] ? c->trace : " -", c->nr_diffs > before ? ": " : "",
			c->nr_diffs > before ? "DIFFERENT" : "");
}

/* ---- the replay -------------------------------------------------------------------------------- */

static void release(struct cmp *c)
{
	if (c->vm)
		cowvm_destroy(c->vm);
	c->vm = NULL;
	swapdev_release(&c->swapdev);
	if (c->host_ready)
		host_fini(&c->host);
	c->host_ready = false;
	free_marks(c);
	free(c->task_proc);
	free(c->procs);
	free(c->regions);
	free(c->kbuf);
	c->task_proc = NULL;
	c->procs = NULL;
	c->regions = NULL;
	c->kbuf = NULL;
	c->nr_procs = 0;
}

static int lowest_cpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set))
		return 0;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			return i;
	return 0;
}

/* One replay: dry (cowvm only) or with the host. */
static bool replay(struct cmp *c, bool dry)
{
	const struct scenario *s = c->s;
	c->dry = dry;
	c->step = 0;
	c->stopped = false;
	c->heap_max = 0;
	c->task_proc = malloc(((size_t)s->nr_tasks + 1) * sizeof *c->task_proc);
	c->regions = calloc((size_t)s->nr_regions + 1, sizeof *c->regions);
	c->marks = calloc((size_t)s->nr_marks + 1, sizeof *c->marks);
	for (int i = 0; c->task_proc && i < s->nr_tasks; i++)
		c->task_proc[i] = -1;
	/* built as the host is: without soft-dirty (no `sd` in VmFlags, pagemap bit 55 clear) */
	struct cowvm_config cfg = { .phys_bytes = s->phys_bytes ? s->phys_bytes : DEFAULT_PHYS_BYTES,
				    .nr_cpus = 1, .flags = COWVM_CONFIG_NO_SOFT_DIRTY };
	int swap_error = swapdev_setup(&c->swapdev, s, &cfg);
	if (c->task_proc && c->regions && c->marks && !swap_error)
		c->vm = cowvm_create(&cfg);
	if (!c->vm) {
		if (swap_error)
			errno = -swap_error;
		fail_host(c, "cannot make a cowvm machine: %s", strerror(errno));
		release(c);
		return false;
	}
	cpu_set_t saved;
	bool pinned = false;
	if (!dry) {
		/* this program runs on the workers' CPU too: what it does to their memory
		 * (/proc/PID/mem) must not leave page references in another CPU's LRU batches */
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(lowest_cpu(), &one);
		pinned = sched_getaffinity(0, sizeof saved, &saved) == 0 &&
			 sched_setaffinity(0, sizeof one, &one) == 0;
		struct host_config hc = { .exe = c->o->worker_exe, .cpu = lowest_cpu(), .window = c->win,
					  .nr_window = c->nr_win, .heap_span = c->heap_span };
		host_init(&c->host, &hc);
		c->host_ready = true;
		c->host_on = true;
		c->frames = host_frames_readable();
		/* kpageflags needs the frame numbers that pagemap shows only with CAP_SYS_ADMIN
		 * (root without it can open kpageflags, but reads frame 0 everywhere) */
		c->zero_mode = c->frames && c->host.kpageflags_fd >= 0 ? 2 : 1;
	}
	for (int i = 0; i < s->nr_ops && !c->stopped; i++)
		run_step(c, &s->ops[i]);
	if (dry)
		c->heap_span = c->heap_max + HEAP_MARGIN;
	release(c);
	if (pinned)
		sched_setaffinity(0, sizeof saved, &saved);
	return !c->failed;
}

/* ---- the report -------------------------------------------------------------------------------- */

static void clip(char *out, size_t len, const char *in)
{
	size_t n = strlen(in);
	if (n < len) {
		memcpy(out, in, n + 1);
		return;
	}
	memcpy(out, in, len - 4);
	memcpy(out + len - 4, "...", 4);
}

static void print_table(struct cmp *c, int max_rows)
{
	FILE *f = c->out;
	fprintf(f, "  %4s %5s  %-26s %-38s | %-30s | %s\n", "step", "line", "operation", "observation",
		"cowvm", "host");
	for (int i = 0; i < c->nr_diffs && i < max_rows; i++) {
		struct diff *d = &c->diffs[i];
		char op[27], what[39], a[31], b[31];
		clip(op, sizeof op, d->op);
		clip(what, sizeof what, d->what);
		clip(a, sizeof a, d->cowvm);
		clip(b, sizeof b, d->host);
		fprintf(f, "  %4d %5d  %-26s %-38s | %-30s | %s\n", d->step, d->line, op, what, a, b);
	}
	if (c->nr_diffs > max_rows)
		fprintf(f, "  ... and %d more differences\n", c->nr_diffs - max_rows);
}

/* Run the scenario as `cowvm run` does: its expectations, and its bad input. */
static int run_expectations(const char *name, const char *text, char **errors)
{
	size_t len = 0;
	FILE *err = open_memstream(errors, &len);
	FILE *out = fopen("/dev/null", "w");
	if (!err || !out) {
		if (err)
			fclose(err);
		if (out)
			fclose(out);
		return RUN_BAD_INPUT;
	}
	struct run_opts ro = { .err = err };
	int status = scenario_run_text(name, text, &ro, out);
	fclose(err);
	fclose(out);
	return status;
}

static void indent(FILE *f, const char *text)
{
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		fprintf(f, "  %.*s\n", (int)n, p);
		p += n + (nl ? 1 : 0);
	}
}

int compare_text(const char *name, const char *text, const struct compare_opts *opts,
		 struct compare_totals *totals)
{
	FILE *out = opts->out ? opts->out : stdout;
	struct compare_totals local = { 0 };
	struct compare_totals *t = totals ? totals : &local;
	t->scenarios++;

	char *errors = NULL;
	int run_status = run_expectations(name, text, &errors);
	if (run_status == RUN_BAD_INPUT) {
		fprintf(out, "%s: bad input\n", name);
		indent(out, errors ? errors : "");
		free(errors);
		t->bad++;
		return COMPARE_BAD_INPUT;
	}
	struct parse_error perr;
	struct scenario *s = scenario_parse(name, text, &perr);
	if (!s) {
		fprintf(out, "%s:%d: %s\n", name, perr.line, perr.message);
		free(errors);
		t->bad++;
		return COMPARE_BAD_INPUT;
	}
	struct cmp c = { .s = s, .o = opts, .out = out };
	int status = COMPARE_AGREE;
	bool ok = replay(&c, true);
	if (ok && s->swap_bytes) {
		/* a scenario with a swap device needs one on the host too, or it is not compared */
		char why[200];
		if (!host_swap_on(s->swap_bytes > (1u << 20) ? s->swap_bytes : 1u << 20, why, sizeof why)) {
			fprintf(out, "%s: SKIPPED: it has a `swap` line and the host has no swap device for "
				"it: %s\n", name, why);
			if (run_status == RUN_EXPECTATION_FAILED) {
				fprintf(out, "  its expect lines fail on cowvm (as `cowvm run` reports them):\n");
				indent(out, errors ? errors : "");
			}
			t->swap_skipped++;
			free(errors);
			free(c.diffs);
			free(c.win);
			scenario_free(s);
			return run_status == RUN_EXPECTATION_FAILED || opts->require_swap ? COMPARE_DIVERGE
											   : COMPARE_AGREE;
		}
	}
	if (ok) {
		merge_window(&c);
		/* the dry run's notes are not the comparison's */
		c.nr_diffs = 0;
		c.observations = 0;
		ok = replay(&c, false);
	}
	if (s->swap_bytes)
		host_swap_off();
	t->steps += (uint64_t)c.step;
	t->observations += c.observations;
	t->differences += (uint64_t)c.nr_diffs;
	if (c.frames)
		t->frames_compared = true;
	else if (ok)
		t->frames_skipped = true;
	if (!ok) {
		fprintf(out, "%s: cannot compare (line %d): %s\n", name, c.stop_line, c.fail_why);
		status = COMPARE_BAD_INPUT;
		t->bad++;
	} else {
		bool expect_failed = run_status == RUN_EXPECTATION_FAILED;
		if (c.nr_diffs) {
			fprintf(out, "%s: DIVERGES: %d difference%s in %d steps (%" PRIu64 " observations)\n",
				name, c.nr_diffs, c.nr_diffs == 1 ? "" : "s", c.step, c.observations);
			print_table(&c, opts->max_rows > 0 ? opts->max_rows : 50);
			status = COMPARE_DIVERGE;
		} else {
			fprintf(out, "%s: %s (%d steps, %" PRIu64 " observations%s)\n", name,
				expect_failed ? "FAILS on cowvm, the host agrees" : "agree", c.step,
				c.observations, c.frames ? "" : "; sharing classes not compared");
		}
		if (c.stopped) {
			t->skipped_ops++;
			const struct op *op = NULL;
			for (int i = 0; i < s->nr_ops; i++)
				if (s->ops[i].line == c.stop_line)
					op = &s->ops[i];
			fprintf(out, "  skipped on the host from line %d on: `%s`: %s\n", c.stop_line,
				op ? op->text : "?", c.stop_why);
		}
		if (expect_failed) {
			fprintf(out, "  its expect lines fail on cowvm (as `cowvm run` reports them):\n");
			indent(out, errors ? errors : "");
			status = COMPARE_DIVERGE;
		}
		if (status == COMPARE_AGREE)
			t->agree++;
		else
			t->diverge++;
	}
	free(errors);
	free(c.diffs);
	free(c.win);
	scenario_free(s);
	return status;
}

int compare_file(const char *path, const struct compare_opts *opts, struct compare_totals *totals)
{
	bool is_stdin = !strcmp(path, "-");
	FILE *f = is_stdin ? stdin : fopen(path, "r");
	FILE *out = opts->out ? opts->out : stdout;
	if (!f) {
		fprintf(out, "%s: cannot read it: %s\n", path, strerror(errno));
		if (totals) {
			totals->scenarios++;
			totals->bad++;
		}
		return COMPARE_BAD_INPUT;
	}
	char *text = NULL;
	size_t cap = 0, n = 0;
	bool ok = true;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *grown = realloc(text, cap = cap ? cap * 2 : 8192);
			if (!grown) {
				ok = false;
				break;
			}
			text = grown;
		}
		size_t got = fread(text + n, 1, cap - n - 1, f);
		n += got;
		if (!got)
			break;
	}
	if (ferror(f) || !text)
		ok = false;
	else
		text[n] = 0;
	if (!is_stdin)
		fclose(f);
	int status;
	if (!ok || strlen(text) != n) {
		fprintf(out, "%s: cannot read it as a scenario text\n", path);
		if (totals) {
			totals->scenarios++;
			totals->bad++;
		}
		status = COMPARE_BAD_INPUT;
	} else {
		status = compare_text(is_stdin ? "<stdin>" : path, text, opts, totals);
	}
	free(text);
	return status;
}

/* ---- the command ------------------------------------------------------------------------------ */

static void compare_usage(FILE *f)
{
	fputs("usage: cowvm compare [OPTIONS] FILE...\n"
	      "Run each scenario FILE on cowvm and on the host kernel (real processes, one per\n"
	      "scenario process, real fork/mmap/munmap/mprotect/madvise/brk and real loads and\n"
	      "stores) and compare the two after every step: the operation's outcome, each\n"
	      "process's minor faults, per page the pagemap bits (present, swapped, shared memory,\n"
	      "exclusively mapped) and the zero page, which pages share a frame (as root), and\n"
	      "per VMA its bounds, permissions and smaps (Rss, Pss, Shared/Private Clean/Dirty,\n"
	      "Anonymous).  The expect lines are checked on cowvm (as `cowvm run` does).\n"
	      "Operations the host cannot replay (pins, dput/dget, fail_alloc, soft-dirty,\n"
	      "threads) end the comparison of that scenario at their line, and it says so.\n"
	      "See docs/fidelity.md.\n"
	      "\n"
	      "  --require-frames  fail (status 2) unless frame numbers are readable (root), so\n"
	      "                    that the sharing structure is compared, never skipped\n"
	      "  --require-swap    a scenario with a `swap` line that cannot have a host swap\n"
	      "                    device (not root, swapon refused) is a failure (status 1), not\n"
	      "                    a skip.  With the device (a file in a temporary directory,\n"
	      "                    swapon'ed for the scenario, swapoff'ed and removed after it, at\n"
	      "                    exit and on a fatal signal) page-cluster is 0 while it runs\n"
	      "  --verbose         a line for every step: outcomes and fault counts on both sides\n"
	      "  --max-rows N      differences printed per scenario (default 50)\n"
	      "  --worker PROGRAM  the host worker program (default: this one)\n"
	      "  -h, --help        this text\n"
	      "\n"
	      "Exit status: 0 every scenario agrees; 1 a difference (or an expect line failed on\n"
	      "cowvm); 2 bad input, or the host side could not be set up or read.\n", f);
}

int compare_command(int argc, char **argv)
{
	static const struct option options[] = {
		{ "require-frames", no_argument, NULL, 'r' }, { "verbose", no_argument, NULL, 'v' },
		{ "require-swap", no_argument, NULL, 'R' },
		{ "max-rows", required_argument, NULL, 'm' }, { "worker", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
	};
	struct compare_opts opts = { .out = stdout };
	int ch;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (ch) {
		case 'r': opts.require_frames = true; break;
		case 'R': opts.require_swap = true; break;
		case 'v': opts.verbose = true; break;
		case 'm': opts.max_rows = atoi(optarg); break;
		case 'w': opts.worker_exe = optarg; break;
		case 'h': compare_usage(stdout); return 0;
		default:
			fprintf(stderr, "cowvm compare: %s '%s' (see cowvm compare --help)\n",
				ch == ':' ? "missing argument for" : "unknown option", argv[optind - 1]);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "cowvm compare: no scenario file given (see cowvm compare --help)\n");
		return 2;
	}
	bool frames = host_frames_readable();
	if (opts.require_frames && !frames) {
		fprintf(stderr, "cowvm compare: --require-frames: frame numbers are not readable here "
				"(/proc/PID/pagemap hides them without CAP_SYS_ADMIN: run as root)\n");
		return 2;
	}
	FILE *nb = fopen("/proc/sys/kernel/numa_balancing", "re");
	int numa = 0;
	if (nb) {
		if (fscanf(nb, "%d", &numa) != 1)
			numa = 0;
		fclose(nb);
	}
	if (numa)
		fprintf(stderr, "cowvm compare: warning: NUMA balancing is on; its hinting faults would be "
				"counted on the host (echo 0 > /proc/sys/kernel/numa_balancing)\n");
	fflush(stdout);
	struct compare_totals t = { 0 };
	int worst = COMPARE_AGREE;
	for (int i = optind; i < argc; i++) {
		int status = compare_file(argv[i], &opts, &t);
		if (status > worst)
			worst = status;
		fflush(stdout);
	}
	printf("compare: %d scenario%s: %d agree, %d diverge, %d bad input, %d skipped; %" PRIu64 " steps, %" PRIu64
	       " observations, %" PRIu64 " difference%s\n", t.scenarios, t.scenarios == 1 ? "" : "s",
	       t.agree, t.diverge, t.bad, t.swap_skipped, t.steps, t.observations, t.differences,
	       t.differences == 1 ? "" : "s");
	if (t.frames_skipped)
		printf("compare: SKIPPED: the sharing structure (which pages map the same frame) was not "
		       "compared: frame numbers need root (CAP_SYS_ADMIN)\n");
	else if (t.frames_compared)
		printf("compare: sharing structure compared (frame numbers readable)\n");
	if (t.swap_skipped)
		printf("compare: SKIPPED: %d scenario%s with a `swap` line not compared: no host swap "
		       "device (see above)\n", t.swap_skipped, t.swap_skipped == 1 ? "" : "s");
	if (t.skipped_ops)
		printf("compare: %" PRIu64 " scenario%s stopped early on the host at an operation it "
		       "cannot replay (see above)\n", t.skipped_ops, t.skipped_ops == 1 ? "" : "s");
	return worst;
}
