/*
 * run.c - runs a parsed scenario on a fresh machine: the tasks, the regions, every operation
 * line, and the end of the run (the final state, the invariant checker, teardown), recording
 * each step in the step log (the rules of a run are in run/run.h).  The library's tracer
 * events become log events here, named as the scenario names things.
 * The machine has one CPU so that frame numbers, and so traces, are the same on every host.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include "run/runner.h"
#include "lang/words.h"
#include "run/swapdev.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)
#define MAX_ACCESS_BYTES (64ull << 20) /* one read, write or copy line moves at most this */

/* ---- names to things ---------------------------------------------------------------------- */

cowvm_task_t *task_of(struct run *r, int id)
{
	struct run_task *rt = &r->tasks[id];
	if (!rt->task) {
		run_bad_input(r, r->op ? r->op->line : 0,
				 "process '%s' does not exist: making it at line %d failed",
				 r->s->task_names[id], rt->made_at);
		return NULL;
	}
	return rt->task;
}

struct run_pin *pin_of(struct run *r, int id)
{
	struct run_pin *rp = &r->pins[id];
	if (!rp->pin) {
		run_bad_input(r, r->op ? r->op->line : 0,
				 "pin '%s' is not held: taking it at line %d failed",
				 r->s->pin_names[id], rp->made_at);
		return NULL;
	}
	return rp;
}

bool pin_holds_frame(const struct run_pin *rp, uint64_t pfn)
{
	for (size_t k = 0; rp->pin && k < rp->npages; k++)
		if (cowvm_pin_pfn(rp->pin, k) == pfn)
			return true;
	return false;
}

void pins_holding(struct run *r, uint64_t pfn, char *out, size_t len)
{
	size_t n = 0;
	out[0] = 0;
	for (int i = 0; i < r->s->nr_pins; i++)
		if (pin_holds_frame(&r->pins[i], pfn) && n + strlen(r->s->pin_names[i]) + 3 < len)
			n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "", r->s->pin_names[i]);
}

bool resolve_location(struct run *r, const struct location *loc, uint64_t *start, uint64_t *length)
{
	int line = r->op ? r->op->line : 0;
	if (loc->region < 0) {
		*start = loc->address;
		*length = loc->size ? loc->size : 1;
		return true;
	}
	const char *name = r->s->region_names[loc->region];
	struct run_region *rg = &r->regions[loc->region];
	if (!rg->mapped) {
		run_bad_input(r, line, "region '%s' has no address: its mmap at line %d failed", name,
				 rg->made_at);
		return false;
	}
	uint64_t base = rg->start, len = rg->length;
	if (loc->has_pages) {
		uint64_t pages = rg->length / PG;
		if (loc->last_page >= pages) {
			run_bad_input(r, line, "region '%s' has %" PRIu64 " page%s now: page %" PRIu64
					 " is past its end", name, pages, pages == 1 ? "" : "s",
					 loc->last_page);
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

uint64_t process_faults(struct run *r, int process)
{
	uint64_t total = r->processes[process].exited_faults;
	for (int i = 0; i < r->s->nr_tasks; i++) {
		struct cowvm_task_stats st;
		if (r->tasks[i].task && r->tasks[i].process == process &&
		    cowvm_task_stats(r->tasks[i].task, &st) == 0)
			total += st.min_flt + st.maj_flt;
	}
	return total;
}

bool process_status_kb(struct run *r, int process, int field, uint64_t *kb)
{
	char text[4096];
	cowvm_task_t *t = process_task(r, process);
	return t && cowvm_proc_status(t, text, sizeof text) > 0 && status_value_kb(text, field, kb);
}

bool process_stats(struct run *r, int process, struct cowvm_task_stats *out)
{
	for (int i = 0; i < r->s->nr_tasks; i++)
		if (r->tasks[i].task && r->tasks[i].process == process)
			return cowvm_task_stats(r->tasks[i].task, out) == 0;
	memset(out, 0, sizeof *out);
	return false;
}

/* ---- results ------------------------------------------------------------------------------- */

/* A failed operation that no expect line looked at fails the run. */
static void check_acknowledged(struct run *r)
{
	if (!r->last_op || !r->last_error || r->result_checked)
		return;
	const struct op *op = r->last_op;
	r->result_checked = true;
	r->failures++;
	run_failure(r, op, "`%s` failed with %s; add `expect error %s` after it if that is intended",
		       op->text, errno_name(r->last_error), errno_name(r->last_error));
}

static void set_result(struct run *r, const struct op *op, int error, int64_t value)
{
	r->last_op = op;
	r->last_error = error;
	r->last_result = value;
	r->result_checked = false;
}

/* ---- tasks ---------------------------------------------------------------------------------- */

static int new_process(struct run *r, cowvm_task_t *t, const char *name, const struct run_process *parent)
{
	struct run_process *grown = realloc(r->processes, (size_t)(r->nr_processes + 1) * sizeof *grown);
	if (!grown)
		return -1;
	r->processes = grown;
	struct run_process *p = &r->processes[r->nr_processes];
	memset(p, 0, sizeof *p);
	p->knows_region = calloc((size_t)r->s->nr_regions + 1, sizeof(bool));
	if (!p->knows_region)
		return -1;
	p->pid = cowvm_task_pid(t);
	p->name = name;
	p->live_threads = 1;
	if (parent) {
		memcpy(p->knows_region, parent->knows_region, (size_t)r->s->nr_regions * sizeof(bool));
		p->start_brk = parent->start_brk;
	} else {
		p->start_brk = (uint64_t)cowvm_brk(t, 0); /* brk(0) fails and returns the break */
	}
	return r->nr_processes++;
}

static void bind_task(struct run *r, int id, cowvm_task_t *t, int process)
{
	r->tasks[id].task = t;
	r->tasks[id].process = process;
	r->tasks[id].instance = r->nr_instances++;
}

static void exit_task(struct run *r, int id);

static void run_make_task(struct run *r, const struct op *op)
{
	cowvm_task_t *t = NULL, *from = NULL;
	/* a task still here under this name was expected to fail to be made, and was not (that
	 * expect line has failed the run): end it so that nothing is left behind */
	if (r->tasks[op->new_task].task)
		exit_task(r, op->new_task);
	r->tasks[op->new_task].made_at = op->line;
	if (op->kind != OP_SPAWN && !(from = task_of(r, op->task)))
		return;
	errno = 0;
	t = op->kind == OP_SPAWN ? cowvm_spawn(r->vm) : op->kind == OP_FORK ? cowvm_fork(from)
									  : cowvm_clone_thread(from);
	if (!t) {
		set_result(r, op, errno ? errno : ENOMEM, -1);
		return;
	}
	const char *name = r->s->task_names[op->new_task];
	int process;
	if (op->kind == OP_THREAD) {
		process = r->tasks[op->task].process;
		r->processes[process].live_threads++;
	} else {
		const struct run_process *parent = from ? &r->processes[r->tasks[op->task].process] : NULL;
		struct run_process copy;
		if (parent)
			copy = *parent; /* new_process may move the array */
		if ((process = new_process(r, t, name, parent ? &copy : NULL)) < 0) {
			cowvm_exit(t);
			run_bad_input(r, op->line, "out of memory");
			return;
		}
	}
	bind_task(r, op->new_task, t, process);
	set_result(r, op, 0, cowvm_task_tid(t));
}

static void exit_task(struct run *r, int id)
{
	struct run_task *rt = &r->tasks[id];
	struct cowvm_task_stats st;
	if (cowvm_task_stats(rt->task, &st) == 0)
		r->processes[rt->process].exited_faults += st.min_flt + st.maj_flt;
	r->processes[rt->process].live_threads--;
	cowvm_exit(rt->task);
	rt->task = NULL;
}

static void run_exit(struct run *r, const struct op *op)
{
	if (!task_of(r, op->task))
		return;
	exit_task(r, op->task);
	set_result(r, op, 0, 0);
}

/* ---- memory calls ----------------------------------------------------------------------------- */

static void run_mmap(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	if (!t)
		return;
	struct run_region *rg = &r->regions[op->region];
	rg->made_at = op->line;
	int64_t addr = cowvm_mmap(t, op->address, op->size, op->prot, op->flags);
	if (addr < 0) {
		set_result(r, op, (int)-addr, addr);
		return;
	}
	rg->mapped = true;
	rg->start = (uint64_t)addr;
	rg->length = (op->size + PG - 1) & ~(PG - 1);
	r->processes[r->tasks[op->task].process].knows_region[op->region] = true;
	set_result(r, op, 0, addr);
}

static void run_range_call(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len;
	if (!t || !resolve_location(r, &op->loc, &start, &len))
		return;
	int ret = op->kind == OP_MUNMAP     ? cowvm_munmap(t, start, len)
		  : op->kind == OP_MPROTECT ? cowvm_mprotect(t, start, len, op->prot)
					    : cowvm_madvise(t, start, len, op->advice);
	set_result(r, op, -ret, ret);
}

static void run_brk(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	if (!t)
		return;
	struct run_process *p = &r->processes[r->tasks[op->task].process];
	uint64_t now = (uint64_t)cowvm_brk(t, 0);
	uint64_t want = op->brk_sign == 0  ? p->start_brk + op->size
			: op->brk_sign > 0 ? now + op->size
					   : (op->size > now ? 0 : now - op->size);
	uint64_t got = (uint64_t)cowvm_brk(t, want);
	struct run_region *heap = &r->regions[r->s->heap_region];
	heap->mapped = true;
	heap->made_at = op->line;
	heap->start = p->start_brk;
	heap->length = got > p->start_brk ? ((got - p->start_brk + PG - 1) & ~(PG - 1)) : 0;
	p->knows_region[r->s->heap_region] = true;
	set_result(r, op, got == want ? 0 : ENOMEM, (int64_t)got);
}

/* ---- accesses ---------------------------------------------------------------------------------- */

static bool check_size(struct run *r, const struct op *op, uint64_t len)
{
	if (len <= MAX_ACCESS_BYTES)
		return true;
	run_bad_input(r, op->line, "%" PRIu64 " bytes is more than one line may move (%llu MiB)",
			 len, MAX_ACCESS_BYTES >> 20);
	return false;
}


static int write_data(struct run *r, const struct op *op, cowvm_task_t *t, const struct data *d,
		      uint64_t start, uint64_t len)
{
	if (d->kind == DATA_FILL && !check_size(r, op, d->count ? d->count : len))
		return 0;
	return data_write(t, &op->loc, d, start, len);
}

/* The task, start and length of a reading line (an explicit COUNT wins over the location's
 * extent); false when the line cannot run (its error is reported). */
static bool access_target(struct run *r, const struct op *op, cowvm_task_t **t, uint64_t *start,
			  uint64_t *len)
{
	*t = task_of(r, op->task);
	if (!*t || !resolve_location(r, &op->loc, start, len))
		return false;
	if (op->size)
		*len = op->size;
	return check_size(r, op, *len);
}

static void run_read(struct run *r, const struct op *op)
{
	cowvm_task_t *t;
	uint64_t start, len;
	if (!access_target(r, op, &t, &start, &len))
		return;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		run_bad_input(r, op->line, "out of memory");
		return;
	}
	int ret = read_memory(t, start, buf, len);
	free(buf);
	set_result(r, op, -ret, ret);
}

static void run_write(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len;
	if (!t || !resolve_location(r, &op->loc, &start, &len))
		return;
	int ret = write_data(r, op, t, &op->data, start, len);
	if (!r->bad_input)
		set_result(r, op, -ret, ret);
}

static void run_copy_from_user(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len;
	if (!t || !resolve_location(r, &op->loc, &start, &len) || !check_size(r, op, op->size))
		return;
	uint8_t *kbuf = realloc(r->kbuf, op->size ? op->size : 1);
	if (!kbuf) {
		run_bad_input(r, op->line, "out of memory");
		return;
	}
	r->kbuf = kbuf;
	r->kbuf_len = op->size;
	memset(kbuf, 0xAA, op->size); /* so that the zeroed tail shows */
	size_t left = cowvm_copy_from_user(t, kbuf, start, op->size);
	set_result(r, op, left ? EFAULT : 0, (int64_t)left);
}

/* The bytes DATA stands for when the kernel (or a device) writes it in one go at a place with
 * `avail` bytes: a fill covers its count or all of avail, a byte or string is itself.  NULL
 * (reported) if too large or out of memory. */
static uint8_t *data_buffer(struct run *r, const struct op *op, const struct data *d, uint64_t avail,
			    uint64_t *n)
{
	uint64_t want = d->kind == DATA_FILL ? (d->count ? d->count : avail) : d->len;
	if (!check_size(r, op, want))
		return NULL;
	uint8_t *buf = data_bytes(d, avail, MAX_ACCESS_BYTES, n);
	if (!buf)
		run_bad_input(r, op->line, "out of memory");
	return buf;
}

static void run_copy_to_user(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len, n;
	if (!t || !resolve_location(r, &op->loc, &start, &len))
		return;
	uint8_t *src = data_buffer(r, op, &op->data, len, &n);
	if (!src)
		return;
	size_t left = cowvm_copy_to_user(t, start, src, n);
	free(src);
	set_result(r, op, left ? EFAULT : 0, (int64_t)left);
}

static void run_user_word(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len, value = 0;
	if (!t || !resolve_location(r, &op->loc, &start, &len))
		return;
	int ret = op->kind == OP_GET_USER ? cowvm_get_user(t, start, &value)
					  : cowvm_put_user(t, start, op->value);
	set_result(r, op, -ret, op->kind == OP_GET_USER ? (int64_t)value : ret);
}

/* ---- pins, remote access, clear_refs -------------------------------------------------------------- */

/* pin P LOC [COUNT] FLAGS as NAME: the result is the number of pages held. */
static void run_pin(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len;
	struct run_pin *rp = &r->pins[op->pin];
	/* a pin still held under this name was expected to fail to be taken, and was not (that
	 * expect line has failed the run): release it so that nothing is left behind */
	if (rp->pin)
		cowvm_unpin(rp->pin);
	memset(rp, 0, sizeof *rp);
	rp->made_at = op->line;
	if (!t || !resolve_location(r, &op->loc, &start, &len))
		return;
	size_t npages = op->size ? op->size : location_is_range(&op->loc) ? len / PG : 1;
	errno = 0;
	cowvm_pin_t *pin = cowvm_pin_user_pages(t, start, npages, op->foll);
	if (!pin) {
		int e = errno ? errno : EFAULT;
		set_result(r, op, e, -e);
		return;
	}
	rp->pin = pin;
	rp->npages = npages;
	rp->foll = op->foll;
	set_result(r, op, 0, (int64_t)npages);
}

static void run_unpin(struct run *r, const struct op *op)
{
	struct run_pin *rp = pin_of(r, op->pin);
	if (!rp)
		return;
	cowvm_unpin(rp->pin);
	rp->pin = NULL;
}

/* pin_write NAME[+OFF] DATA: a device's write through the held frames. */
static void run_pin_write(struct run *r, const struct op *op)
{
	struct run_pin *rp = pin_of(r, op->pin_ref.pin);
	uint64_t n, size;
	if (!rp)
		return;
	size = rp->npages * PG;
	uint8_t *buf = data_buffer(r, op, &op->data, op->pin_ref.offset < size ? size - op->pin_ref.offset : 0, &n);
	if (!buf)
		return;
	int ret = cowvm_pin_write(rp->pin, op->pin_ref.offset, buf, n);
	free(buf);
	set_result(r, op, -ret, ret);
}

/* remote_read P LOC [COUNT]: /proc/pid/mem; the bytes go to the kernel buffer (`expect kbuf`).
 * Result: the bytes read; EIO when none could be. */
static void run_remote_read(struct run *r, const struct op *op)
{
	cowvm_task_t *t;
	uint64_t start, len;
	if (!access_target(r, op, &t, &start, &len))
		return;
	uint8_t *kbuf = realloc(r->kbuf, len ? len : 1);
	if (!kbuf) {
		run_bad_input(r, op->line, "out of memory");
		return;
	}
	r->kbuf = kbuf;
	r->kbuf_len = len;
	memset(kbuf, 0xAA, len); /* so that what was not read shows */
	int64_t n = cowvm_access_remote(t, start, kbuf, len, 0);
	set_result(r, op, n < 0 ? (int)-n : 0, n);
}

/* remote_write P LOC DATA: /proc/pid/mem with FOLL_FORCE.  Result: the bytes written. */
static void run_remote_write(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len, n;
	if (!t || !resolve_location(r, &op->loc, &start, &len))
		return;
	uint8_t *buf = data_buffer(r, op, &op->data, len, &n);
	if (!buf)
		return;
	int64_t moved = cowvm_access_remote(t, start, buf, n, 1);
	free(buf);
	set_result(r, op, moved < 0 ? (int)-moved : 0, moved);
}

static void run_clear_refs(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	if (!t)
		return;
	int ret = cowvm_clear_refs(t, (int)op->value);
	set_result(r, op, -ret, ret);
}

/* ---- snapshots ------------------------------------------------------------------------------------ */

/* snapshot P as NAME: a snapshot of P's process; taking NAME again frees the older one. */
static void run_snapshot(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	if (!t)
		return;
	struct run_snapshot *rs = &r->snapshots[op->snapshot];
	if (rs->snap && r->processes[rs->process].live_threads > 0)
		cowvm_snapshot_free(rs->snap);
	rs->snap = cowvm_snapshot(t);
	rs->process = r->tasks[op->task].process;
	rs->made_at = op->line;
	set_result(r, op, rs->snap ? 0 : errno, rs->snap ? 0 : -1);
}

/* restore P NAME: back to the snapshot, which must still exist (its process alive); restoring
 * another process's snapshot is the library's -EINVAL. */
static void run_restore(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	if (!t)
		return;
	const struct run_snapshot *rs = &r->snapshots[op->snapshot];
	const char *name = r->s->snapshot_names[op->snapshot];
	if (!rs->made_at) {
		run_bad_input(r, op->line, "snapshot '%s' is not taken yet", name);
		return;
	}
	if (!rs->snap) {
		run_bad_input(r, op->line, "snapshot '%s' does not exist: taking it at line %d failed",
			      name, rs->made_at);
		return;
	}
	if (r->processes[rs->process].live_threads == 0) {
		run_bad_input(r, op->line, "snapshot '%s' is gone: the process it was taken of (at line %d) "
			      "has exited", name, rs->made_at);
		return;
	}
	int ret = cowvm_restore(t, rs->snap);
	set_result(r, op, -ret, ret);
}

/* ---- dput and dget ------------------------------------------------------------------------------ */

/*
 * dput P C OP ... / dget P C OP ...: Determinator's Put and Get.  The length is the line's SIZE,
 * or the source location's (the parser made sure it is a range then).  The region a COPY or
 * ZERO lands in, or a MERGE merges into, is known to the destination process from then on (it
 * labels its VMAs as mmap's would).
 */
static void run_dput(struct run *r, const struct op *op)
{
	bool get = op->kind == OP_DGET;
	cowvm_task_t *parent = task_of(r, op->task), *child = parent ? task_of(r, op->child) : NULL;
	uint64_t pa = 0, plen = 0, ca = 0, clen = 0;
	bool has_parent_loc = op->dop == COWVM_COPY || op->dop == COWVM_MERGE ||
			      (op->dop == COWVM_ZERO && get);
	bool has_child_loc = op->dop == COWVM_COPY || op->dop == COWVM_MERGE ||
			     (op->dop == COWVM_ZERO && !get);
	if (!child || (has_parent_loc && !resolve_location(r, &op->loc, &pa, &plen)) ||
	    (has_child_loc && !resolve_location(r, &op->child_loc, &ca, &clen)))
		return;
	uint64_t len = op->size;
	if (!len)
		len = op->dop == COWVM_COPY && !get ? plen : op->dop == COWVM_ZERO && get ? plen : clen;
	if (op->dop == COWVM_SNAP)
		len = 0;
	/* the destination: dput's is the child, dget's the parent */
	const struct location *dst_loc = get ? &op->loc : &op->child_loc;
	int dst_task = get ? op->task : op->child;
	r->dput_dst_end = (get ? pa : ca) + len;
	int ret = get ? cowvm_dget(parent, child, op->dop, pa, ca, len)
		      : cowvm_dput(parent, child, op->dop, pa, ca, len);
	r->dput_dst_end = 0;
	if (op->dop == COWVM_MERGE)
		r->has_merge = cowvm_merge_report(parent, &r->merge) == 0;
	if (op->dop == COWVM_SNAP && ret == 0)
		r->snapped = true;
	if (op->dop != COWVM_SNAP && dst_loc->region >= 0 && (ret == 0 || ret == -EBADE))
		r->processes[r->tasks[dst_task].process].knows_region[dst_loc->region] = true;
	set_result(r, op, -ret, ret);
}

/* ---- issue 16: mremap, the mlock family, process_madvise, limits and capabilities ----------- */

/*
 * mremap P LOC [OLDSIZE] NEWSIZE [flags] [as R].  The result is the new address.  With `as R`
 * the region R is defined at the new place (the old region keeps its address: another process
 * may still have it there, or DONTUNMAP left it); without it a whole region follows the mapping.
 */
static void run_mremap(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len;
	if (op->new_region >= 0)
		r->regions[op->new_region].made_at = op->line;
	uint64_t target = 0, tlen;
	if (!t || !resolve_location(r, &op->loc, &start, &len))
		return;
	if ((op->flags & MREMAP_FIXED) && !resolve_location(r, &op->child_loc, &target, &tlen))
		return;
	uint64_t old_len = op->has_old_size ? op->old_size : len;
	int64_t addr = cowvm_mremap(t, start, old_len, op->size, op->flags, target);
	if (addr < 0) {
		set_result(r, op, (int)-addr, addr);
		return;
	}
	int process = r->tasks[op->task].process;
	uint64_t new_len = (op->size + PG - 1) & ~(PG - 1);
	if (op->new_region >= 0) {
		struct run_region *rg = &r->regions[op->new_region];
		rg->mapped = true;
		rg->start = (uint64_t)addr;
		rg->length = new_len;
		r->processes[process].knows_region[op->new_region] = true;
	} else if (location_is_range(&op->loc) && !op->loc.has_pages && !op->loc.size) {
		struct run_region *rg = &r->regions[op->loc.region];
		rg->start = (uint64_t)addr;
		rg->length = new_len;
	}
	set_result(r, op, 0, addr);
}

/* mlock, mlock2, munlock: P LOC [SIZE] */
static void run_mlock(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	uint64_t start, len;
	if (!t || !resolve_location(r, &op->loc, &start, &len))
		return;
	int ret = op->kind == OP_MLOCK    ? cowvm_mlock(t, start, len)
		  : op->kind == OP_MLOCK2 ? cowvm_mlock2(t, start, len, (unsigned)op->flags)
					  : cowvm_munlock(t, start, len);
	set_result(r, op, -ret, ret);
}

static void run_mlockall(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	if (!t)
		return;
	int ret = op->kind == OP_MLOCKALL ? cowvm_mlockall(t, op->flags) : cowvm_munlockall(t);
	set_result(r, op, -ret, ret);
}

/* process_madvise P Q LOC ADVICE: one range; the result is the bytes advised */
static void run_process_madvise(struct run *r, const struct op *op)
{
	cowvm_task_t *caller = task_of(r, op->task), *target = caller ? task_of(r, op->child) : NULL;
	uint64_t start, len;
	if (!target || !resolve_location(r, &op->loc, &start, &len))
		return;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)start, .iov_len = len };
	int64_t ret = cowvm_process_madvise(caller, target, &iov, 1, op->advice, (unsigned)op->flags);
	set_result(r, op, ret < 0 ? (int)-ret : 0, ret);
}

static void run_rlimit(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	struct rlimit rl;
	if (!t)
		return;
	cowvm_getrlimit(t, op->mode, &rl);
	rl.rlim_cur = op->value;
	if (op->has_old_size)
		rl.rlim_max = op->old_size;
	int ret = cowvm_setrlimit(t, op->mode, &rl);
	set_result(r, op, -ret, ret);
}

static void run_caps(struct run *r, const struct op *op)
{
	cowvm_task_t *t = task_of(r, op->task);
	if (!t)
		return;
	int ret = cowvm_set_caps(t, op->value);
	set_result(r, op, -ret, ret);
}

/* Release every pin still held (the end of the run: a pipe closes when its process exits). */
static void release_pins(struct run *r)
{
	for (int i = 0; r->pins && i < r->s->nr_pins; i++) {
		if (r->pins[i].pin)
			cowvm_unpin(r->pins[i].pin);
		r->pins[i].pin = NULL;
	}
}

/* ---- marks, checks ---------------------------------------------------------------------------- */

static void free_mark(struct run_mark *m)
{
	free(m->process_faults);
	free(m->process_stats);
	free(m->task_stats);
	for (int i = 0; i < m->nr_frames; i++)
		free(m->frames[i].words);
	free(m->frames);
	free(m->status_kb);
	memset(m, 0, sizeof *m);
}

/* The frames every live process maps in every mapped region, and the status lines. */
static bool mark_pages(struct run *r, struct run_mark *m)
{
	m->status_kb = malloc(((size_t)r->nr_processes * (size_t)nr_status_fields + 1) * sizeof *m->status_kb);
	m->frames = calloc((size_t)r->nr_processes * ((size_t)r->s->nr_regions + 1) + 1, sizeof *m->frames);
	if (!m->status_kb || !m->frames)
		return false;
	for (int p = 0; p < r->nr_processes; p++) {
		for (int f = 0; f < nr_status_fields; f++)
			if (!process_status_kb(r, p, f, &m->status_kb[p * nr_status_fields + f]))
				m->status_kb[p * nr_status_fields + f] = UINT64_MAX;
		cowvm_task_t *t = process_task(r, p);
		for (int g = 0; t && g < r->s->nr_regions; g++) {
			const struct run_region *rg = &r->regions[g];
			if (!rg->mapped || !rg->length)
				continue;
			struct mark_frames *mf = &m->frames[m->nr_frames];
			mf->process = p;
			mf->region = g;
			mf->npages = rg->length / PG;
			if (!(mf->words = malloc(mf->npages * sizeof *mf->words)))
				return false;
			m->nr_frames++;
			for (uint64_t i = 0; i < mf->npages; i++)
				mf->words[i] = cowvm_pagemap(t, rg->start + i * PG);
		}
	}
	return true;
}

static void run_mark(struct run *r, const struct op *op)
{
	struct run_mark *m = &r->marks[op->mark];
	free_mark(m);
	m->process_faults = calloc((size_t)r->nr_processes + 1, sizeof *m->process_faults);
	m->process_stats = calloc((size_t)r->nr_processes + 1, sizeof *m->process_stats);
	m->task_stats = calloc((size_t)r->nr_instances + 1, sizeof *m->task_stats);
	if (!m->process_faults || !m->process_stats || !m->task_stats) {
		run_bad_input(r, op->line, "out of memory");
		return;
	}
	cowvm_vmstat(r->vm, &m->vmstat);
	m->nr_processes = r->nr_processes;
	m->nr_instances = r->nr_instances;
	for (int i = 0; i < r->nr_processes; i++) {
		m->process_faults[i] = process_faults(r, i);
		process_stats(r, i, &m->process_stats[i]);
	}
	for (int i = 0; i < r->s->nr_tasks; i++)
		if (r->tasks[i].task)
			cowvm_task_stats(r->tasks[i].task, &m->task_stats[r->tasks[i].instance]);
	if (!mark_pages(r, m)) {
		run_bad_input(r, op->line, "out of memory");
		return;
	}
	m->set = true;
}

static bool run_checker(struct run *r, const struct op *op, const char *when)
{
	char why[512];
	if (cowvm_check(r->vm, why, sizeof why) == 0)
		return true;
	r->failures++;
	run_failure(r, op, "the invariant checker %s: %s", when, why);
	return false;
}

static void run_show(struct run *r, const struct op *op)
{
	int process = -1;
	uint64_t start = 0, len = 0;
	if (op->task >= 0) {
		if (!task_of(r, op->task))
			return;
		process = r->tasks[op->task].process;
	}
	if (op->has_loc && !resolve_location(r, &op->loc, &start, &len))
		return;
	struct log_event ev = { .kind = LOG_VIEW, .op = op };
	ev.view = (struct log_view){ .view = op->view, .process = process, .has_range = op->has_loc,
				     .start = start, .length = len, .state = capture_state(r) };
	log_append(r->log, &ev);
}

static void run_echo(struct run *r, const struct op *op)
{
	log_append(r->log, &(struct log_event){ .kind = LOG_ECHO, .op = op });
}

/* The line's result, for the trace and for JSON. */
static void record_result(struct run *r, const struct op *op)
{
	struct log_event ev = { .kind = LOG_RESULT, .op = op };
	ev.result.error = r->last_error;
	ev.result.value = r->last_result;
	ev.result.has_merge = r->has_merge;
	ev.result.merge = r->merge;
	if (op->kind == OP_PIN && r->pins[op->pin].pin) {
		const struct run_pin *rp = &r->pins[op->pin];
		ev.result.pin_pages = rp->npages;
		for (size_t k = 0; k < rp->npages && k < LOG_PIN_FRAMES; k++)
			ev.result.pin_pfns[k] = cowvm_pin_pfn(rp->pin, k);
	}
	log_append(r->log, &ev);
}

static void run_fail_alloc(struct run *r, const struct op *op)
{
	cowvm_fail_alloc(r->vm, op->mode, op->value);
}

static void run_check(struct run *r, const struct op *op)
{
	r->expectations++;
	if (run_checker(r, op, "found a broken invariant"))
		run_expect_passed(r, op);
}

/* What runs each kind of line (lang/parse.c's command table says how it is parsed). */
static void (*const runners[NR_OPS])(struct run *, const struct op *) = {
	[OP_MEMORY] = NULL, /* the machine is made with it */
	[OP_SWAP] = NULL,   /* so is its swap device (run/swapdev.c) */
	[OP_SPAWN] = run_make_task, [OP_FORK] = run_make_task, [OP_THREAD] = run_make_task,
	[OP_EXIT] = run_exit,
	[OP_MMAP] = run_mmap,
	[OP_MUNMAP] = run_range_call, [OP_MPROTECT] = run_range_call, [OP_MADVISE] = run_range_call,
	[OP_BRK] = run_brk,
	[OP_READ] = run_read,
	[OP_WRITE] = run_write,
	[OP_COPY_FROM_USER] = run_copy_from_user,
	[OP_COPY_TO_USER] = run_copy_to_user,
	[OP_GET_USER] = run_user_word, [OP_PUT_USER] = run_user_word,
	[OP_PIN] = run_pin,
	[OP_UNPIN] = run_unpin,
	[OP_PIN_WRITE] = run_pin_write,
	[OP_REMOTE_READ] = run_remote_read,
	[OP_REMOTE_WRITE] = run_remote_write,
	[OP_CLEAR_REFS] = run_clear_refs,
	[OP_DPUT] = run_dput, [OP_DGET] = run_dput,
	[OP_MREMAP] = run_mremap,
	[OP_MLOCK] = run_mlock, [OP_MLOCK2] = run_mlock, [OP_MUNLOCK] = run_mlock,
	[OP_MLOCKALL] = run_mlockall, [OP_MUNLOCKALL] = run_mlockall,
	[OP_PROCESS_MADVISE] = run_process_madvise,
	[OP_RLIMIT] = run_rlimit,
	[OP_CAPS] = run_caps,
	[OP_SNAPSHOT] = run_snapshot,
	[OP_RESTORE] = run_restore,
	[OP_FAIL_ALLOC] = run_fail_alloc,
	[OP_MARK] = run_mark,
	[OP_CHECK] = run_check,
	[OP_SHOW] = run_show,
	[OP_ECHO] = run_echo,
	[OP_EXPECT] = run_expect,
};

static void run_op(struct run *r, const struct op *op)
{
	r->op = op;
	r->has_merge = false;
	if (op_has_result(op->kind))
		check_acknowledged(r);
	log_begin_step(r->log, op);
	log_append(r->log, &(struct log_event){ .kind = LOG_LINE, .op = op });
	if (runners[op->kind])
		runners[op->kind](r, op);
	if (op_has_result(op->kind) && !r->bad_input && r->last_op == op)
		record_result(r, op);
	if ((r->log->capture & LOG_CAPTURE_STEPS) && r->log->steps[r->log->nr_steps - 1].state < 0)
		capture_state(r);
}

/* ---- messages --------------------------------------------------------------------------------- */

void run_failure(struct run *r, const struct op *op, const char *fmt, ...)
{
	char *message = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&message, fmt, ap) < 0)
		message = NULL;
	va_end(ap);
	log_message(r->log, LOG_FAILURE, op ? op->line : 0, op, "%s", message ? message : "out of memory");
	free(message);
}

void run_bad_input(struct run *r, int line, const char *fmt, ...)
{
	char *message = NULL;
	va_list ap;
	r->bad_input = true;
	va_start(ap, fmt);
	if (vasprintf(&message, fmt, ap) < 0)
		message = NULL;
	va_end(ap);
	log_message(r->log, LOG_BAD_INPUT, line, NULL, "%s", message ? message : "out of memory");
	free(message);
}

void run_expect_passed(struct run *r, const struct op *op)
{
	log_append(r->log, &(struct log_event){ .kind = LOG_EXPECT, .op = op });
}

/* ---- the library's tracer ----------------------------------------------------------------------- */

static const char *task_name_by_tid(struct run *r, int tid, int pid, char *buf, size_t len)
{
	for (int i = 0; i < r->s->nr_tasks; i++)
		if (r->tasks[i].task && cowvm_task_tid(r->tasks[i].task) == tid)
			return r->s->task_names[i];
	for (int i = r->nr_processes - 1; i >= 0; i--)
		if (r->processes[i].pid == pid)
			return r->processes[i].name;
	snprintf(buf, len, "pid%d", pid);
	return buf;
}

/*
 * What kind of access a fault served.  The task's own: read, write.  The kernel's: uaccess and
 * populate are kernel-read/-write; GUP for a `pin` line is gup-read/gup-write, and a write fault
 * taken for a pin without `write` is an unshare (FAULT_FLAG_UNSHARE: the event reports it as a
 * write); /proc/pid/mem (remote_read/remote_write) is remote-read/-write.
 */
static const char *access_name(struct run *r, const struct cowvm_fault_event *ev)
{
	if (ev->user)
		return ev->write ? "write" : "read";
	if (r->op && r->op->kind == OP_PIN)
		return !ev->write ? "gup-read" : (r->op->foll & COWVM_FOLL_WRITE) ? "gup-write" : "unshare";
	if (r->op && (r->op->kind == OP_REMOTE_READ || r->op->kind == OP_REMOTE_WRITE))
		return ev->write ? "remote-write" : "remote-read";
	return ev->write ? "kernel-write" : "kernel-read";
}

/*
 * The phases of a dput or dget (mm/dput.c): events whose path starts with "dput", one per
 * region of a COPY or ZERO, given the destination task and where the region starts there.
 * The runner knows where the destination range ends, so each phase gets its extent:
 *   head      [addr, round_up(addr))          the memcpy'd head sliver
 *   middle    [addr, round_down(end))         the page-aligned middle (COW-shared or zeroed)
 *   tail, unaligned   [addr, end)
 */
static uint64_t phase_end(struct run *r, const struct cowvm_fault_event *ev)
{
	const uint64_t pg = COWVM_PAGE_SIZE;
	uint64_t end = r->dput_dst_end;
	const char *what = ev->npath > 1 ? ev->path[1] : "";
	size_t n = strlen(what);
	if (n >= 4 && !strcmp(what + n - 4, "head"))
		end = (ev->addr + pg - 1) & ~(pg - 1);
	else if (n >= 6 && !strcmp(what + n - 6, "middle"))
		end &= ~(pg - 1);
	return end > ev->addr ? end : 0;
}

/* Called inside the fault with the library's locks held: it only appends to the log. */
static void run_tracer(void *arg, const struct cowvm_fault_event *ev)
{
	struct run *r = arg;
	char buf[32];
	bool phase = ev->npath > 0 && !strcmp(ev->path[0], "dput");
	struct log_event le = { .kind = phase ? LOG_PHASE : LOG_FAULT, .op = r->op };
	struct log_fault *f = &le.fault;
	f->task = task_name_by_tid(r, ev->tid, ev->pid, buf, sizeof buf);
	f->access = phase ? (r->op && r->op->kind == OP_DGET ? "dget" : "dput") : access_name(r, ev);
	f->pid = ev->pid;
	f->tid = ev->tid;
	f->addr = ev->addr;
	f->end = phase ? phase_end(r, ev) : 0;
	f->npath = ev->npath < COWVM_TRACE_MAX_PATH ? ev->npath : COWVM_TRACE_MAX_PATH;
	for (int i = 0; i < f->npath; i++)
		f->path[i] = ev->path[i];
	f->old_pfn = ev->old_pfn;
	f->new_pfn = ev->new_pfn;
	f->outcome = ev->outcome;
	f->tree = phase ? -1 : r->fault_tree;
	f->depth = r->trace_depth;
	log_append(r->log, &le);
}

/* The step stream (cowvm_set_trace): each event into the log, as it comes. */
static void run_trace(void *arg, const struct cowvm_trace_event *ev)
{
	struct run *r = arg;
	char buf[32];
	bool fault_enter = ev->kind == COWVM_TRACE_ENTER && !strcmp(ev->name, "handle_mm_fault");
	if (fault_enter)
		r->in_fault = true;
	struct log_event le = { .kind = LOG_TRACE, .op = r->op };
	struct log_trace *t = &le.trace;
	t->kind = ev->kind;
	t->depth = ev->depth;
	t->name = ev->name;
	t->reason = ev->reason;
	t->decision = ev->decision;
	t->in_fault = r->in_fault;
	t->pid = ev->pid;
	if (ev->kind == COWVM_TRACE_ENTER && (ev->depth == 0 || fault_enter) && ev->pid)
		t->task = task_name_by_tid(r, ev->tid, ev->pid, buf, sizeof buf);
	t->nfacts = ev->nfacts < COWVM_TRACE_MAX_FACTS ? ev->nfacts : COWVM_TRACE_MAX_FACTS;
	memcpy(t->facts, ev->facts, (size_t)t->nfacts * sizeof t->facts[0]);
	r->trace_depth = ev->kind == COWVM_TRACE_ENTER ? ev->depth + 1 :
			 ev->kind == COWVM_TRACE_LEAVE ? ev->depth : r->trace_depth;
	const struct log_event *kept = log_append(r->log, &le);
	if (fault_enter)
		r->fault_tree = kept ? (int)(kept - r->log->events) : -1;
	if (ev->kind == COWVM_TRACE_LEAVE && !strcmp(ev->name, "handle_mm_fault")) {
		r->in_fault = false;
		r->fault_tree = -1;
	}
}

/* ---- the whole run ------------------------------------------------------------------------------ */

static uint64_t find_zero_pfn(cowvm_t *vm)
{
	struct cowvm_vmstat vs;
	struct cowvm_frame_info fi;
	cowvm_vmstat(vm, &vs);
	for (uint64_t pfn = 0; pfn < vs.nr_total_pages; pfn++)
		if (cowvm_frame_info(vm, pfn, &fi) == 0 && fi.state == COWVM_FRAME_ZERO)
			return pfn;
	return UINT64_MAX;
}

/* End every task, newest first (threads before the processes they belong to). */
static void exit_all(struct run *r)
{
	int order[r->s->nr_tasks + 1], n = 0;
	for (int i = 0; i < r->s->nr_tasks; i++)
		if (r->tasks[i].task)
			order[n++] = i;
	for (int a = 0; a < n; a++) /* sort by instance, newest first (n is small) */
		for (int b = a + 1; b < n; b++)
			if (r->tasks[order[b]].instance > r->tasks[order[a]].instance) {
				int tmp = order[a];
				order[a] = order[b];
				order[b] = tmp;
			}
	for (int i = 0; i < n; i++)
		exit_task(r, order[i]);
}

static void finish(struct run *r)
{
	r->op = NULL;
	log_begin_step(r->log, NULL);
	if (!r->bad_input) {
		check_acknowledged(r);
		int state = (r->log->capture & (LOG_CAPTURE_END | LOG_CAPTURE_STEPS)) ? capture_state(r) : -1;
		log_append(r->log, &(struct log_event){ .kind = LOG_END, .state = state });
	}
	run_checker(r, NULL, "at the end of the scenario");
	cowvm_fail_alloc(r->vm, COWVM_FAIL_OFF, 0);
	release_pins(r);
	exit_all(r);
	if (run_checker(r, NULL, "after every task exited")) {
		struct cowvm_vmstat vs;
		cowvm_vmstat(r->vm, &vs);
		if (vs.nr_free_pages != r->free_after_create) {
			r->failures++;
			run_failure(r, NULL, "%" PRId64 " frames were not freed when every task exited "
				    "(free %" PRIu64 ", at start %" PRIu64 ")",
				    (int64_t)(r->free_after_create - vs.nr_free_pages), vs.nr_free_pages,
				    r->free_after_create);
		}
	}
}

static void free_run(struct run *r)
{
	for (int i = 0; i < r->nr_processes; i++)
		free(r->processes[i].knows_region);
	free(r->processes);
	for (int i = 0; r->marks && i < r->s->nr_marks; i++)
		free_mark(&r->marks[i]);
	free(r->marks);
	free(r->pins);
	free(r->snapshots);
	free(r->tasks);
	free(r->regions);
	free(r->kbuf);
}

static void summarize(struct run *r, int status)
{
	struct log_event ev = { .kind = LOG_SUMMARY };
	ev.summary = (struct log_summary){ .status = status, .expectations = r->expectations,
					   .failures = r->failures };
	log_append(r->log, &ev);
}

int run_scenario(const struct scenario *s, struct step_log *log)
{
	struct run r = { .s = s, .log = log };
	r.tasks = calloc((size_t)s->nr_tasks + 1, sizeof *r.tasks);
	r.regions = calloc((size_t)s->nr_regions + 1, sizeof *r.regions);
	r.marks = calloc((size_t)s->nr_marks + 1, sizeof *r.marks);
	r.pins = calloc((size_t)s->nr_pins + 1, sizeof *r.pins);
	r.snapshots = calloc((size_t)s->nr_snapshots + 1, sizeof *r.snapshots);
	struct cowvm_config cfg = { .phys_bytes = s->phys_bytes ? s->phys_bytes : RUN_DEFAULT_PHYS_BYTES,
				    .nr_cpus = 1 };
	struct swapdev sd;
	int swap_error = swapdev_setup(&sd, s, &cfg);
	if (r.tasks && r.regions && r.marks && r.pins && r.snapshots && !swap_error)
		r.vm = cowvm_create(&cfg);
	if (!r.vm) {
		int error = swap_error ? -swap_error : errno;
		if (cfg.swap_path)
			run_bad_input(&r, 0, "cannot make a machine of %" PRIu64 " bytes with a swap device "
				      "of %" PRIu64 " bytes at %s: %s", cfg.phys_bytes, cfg.swap_bytes,
				      cfg.swap_path, strerror(error));
		else
			run_bad_input(&r, 0, "cannot make a machine of %" PRIu64 " bytes: %s", cfg.phys_bytes,
				      strerror(error));
		swapdev_release(&sd);
		summarize(&r, RUN_BAD_INPUT);
		free_run(&r);
		return RUN_BAD_INPUT;
	}
	struct cowvm_vmstat vs;
	cowvm_vmstat(r.vm, &vs);
	r.free_after_create = vs.nr_free_pages;
	r.zero_pfn = find_zero_pfn(r.vm);
	log->zero_pfn = r.zero_pfn;
	cowvm_set_tracer(r.vm, run_tracer, &r);
	r.fault_tree = -1;
	if (log->capture & LOG_CAPTURE_TRACE)
		cowvm_set_trace(r.vm, run_trace, &r);
	for (int i = 0; i < s->nr_ops && !r.bad_input; i++)
		run_op(&r, &s->ops[i]);
	finish(&r);
	cowvm_set_tracer(r.vm, NULL, NULL);
	cowvm_set_trace(r.vm, NULL, NULL);
	cowvm_destroy(r.vm);
	swapdev_release(&sd);
	int status = r.bad_input ? RUN_BAD_INPUT : r.failures ? RUN_EXPECTATION_FAILED : RUN_OK;
	summarize(&r, status);
	free_run(&r);
	return status;
}
