/*
 * expect.c - `expect` lines: each one is checked against the machine as it is now, and
 * a failure names the line and the value that was found instead.
 *
 *   expect error [ERRNO]           the last operation failed (with ERRNO)
 *   expect result CMP N            the value the last operation returned
 *   expect mem P LOC == DATA       memory as task P reads it (a read through the MMU: it faults
 *                                  like any read of P's would)
 *   expect kbuf == DATA            the kernel buffer of the last copy_from_user or remote_read
 *   expect pin NAME[+N] == DATA    bytes read through a pin's frames (not through page tables)
 *   expect page P LOC PROPERTY...  pagemap / PTE / frame facts of every page in LOC
 *   expect COUNTER [since M] CMP N per-process, per-thread and machine counters
 *   expect merge [P] FIELD CMP N   the report of the last dget merge into P (cowvm_merge_report);
 *                                  first_conflict compares with a location's address
 *
 * Nothing here changes the machine except the reads of `expect mem`.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "run/runner.h"
#include "lang/words.h"
#include "run/swapdev.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)
#define PTE_PRESENT 0x1ull
#define PTE_RW 0x2ull
#define PTE_DIRTY 0x40ull

static bool compare(int64_t got, enum comparison cmp, int64_t want)
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

static void failed(struct run *r, const struct op *op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void failed(struct run *r, const struct op *op, const char *fmt, ...)
{
	char message[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	r->failures++;
	run_failure(r, op, "%s: %s", op->text, message);
}

/* ---- error and result ------------------------------------------------------------------------ */

static bool expect_error(struct run *r, const struct op *op)
{
	const struct expect *e = &op->expect;
	if (!r->last_op) {
		run_bad_input(r, op->line, "'expect error' with no operation before it");
		return false;
	}
	r->result_checked = true;
	if (!r->last_error) {
		failed(r, op, "line %d (`%s`) succeeded", r->last_op->line, r->last_op->text);
		return false;
	}
	if (e->error && e->error != r->last_error) {
		failed(r, op, "line %d failed with %s", r->last_op->line, errno_name(r->last_error));
		return false;
	}
	return true;
}

/* ---- memory ------------------------------------------------------------------------------------ */

/* The index of the first byte of got[0..n) that differs from the data (a fill's pattern starts
 * `offset` bytes in), or n. */
static uint64_t first_mismatch(const struct data *d, uint64_t offset, const uint8_t *got, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint8_t want = d->kind == DATA_FILL ? d->bytes[(offset + i) % d->len] : d->bytes[i];
		if (got[i] != want)
			return i;
	}
	return n;
}

/* A string or byte: n = d->len bytes at addr, as task t reads them (t NULL: the kernel buffer,
 * addr an offset in it). */
static bool check_string(struct run *r, const struct op *op, cowvm_task_t *t, uint64_t addr,
			 const struct data *d)
{
	uint64_t n = d->len;
	uint8_t *got = t ? malloc(n ? n : 1) : r->kbuf + addr;
	bool ok = false;
	if (!got) {
		run_bad_input(r, op->line, "out of memory");
		return false;
	}
	if (t && read_memory(t, addr, got, n)) {
		failed(r, op, "reading %" PRIu64 " bytes at %#" PRIx64 " faulted (EFAULT)", n, addr);
	} else if (first_mismatch(d, 0, got, n) < n) {
		char want[256], found[256];
		format_bytes(want, sizeof want, d->bytes, n);
		format_bytes(found, sizeof found, got, n);
		if (t)
			failed(r, op, "at %#" PRIx64 " found %s, expected %s", addr, found, want);
		else
			failed(r, op, "the kernel buffer holds %s, expected %s", found, want);
	} else {
		ok = true;
	}
	if (t)
		free(got);
	return ok;
}

/* A fill: n bytes at addr, page by page (t NULL: the kernel buffer, addr an offset in it). */
static bool check_fill(struct run *r, const struct op *op, cowvm_task_t *t, uint64_t addr,
		       const struct data *d, uint64_t n)
{
	uint8_t page[COWVM_PAGE_SIZE];
	uint64_t done = 0;
	while (done < n) {
		uint64_t chunk = PG - ((addr + done) & (PG - 1));
		if (chunk > n - done)
			chunk = n - done;
		const uint8_t *got = page;
		if (!t) {
			got = r->kbuf + addr + done;
		} else if (read_memory(t, addr + done, page, chunk)) {
			failed(r, op, "reading %#" PRIx64 " faulted (EFAULT)", addr + done);
			return false;
		}
		uint64_t at = first_mismatch(d, done, got, chunk);
		if (at < chunk) {
			uint8_t want = d->bytes[(done + at) % d->len];
			if (t)
				failed(r, op, "byte at %#" PRIx64 " is 0x%02x, expected 0x%02x",
				       addr + done + at, got[at], want);
			else
				failed(r, op, "kernel buffer byte %" PRIu64 " is 0x%02x, expected 0x%02x",
				       addr + done + at, got[at], want);
			return false;
		}
		done += chunk;
	}
	return true;
}

static bool expect_memory(struct run *r, const struct op *op)
{
	const struct expect *e = &op->expect;
	cowvm_task_t *t = task_of(r, e->task);
	uint64_t start, len;
	if (!t || !resolve_location(r, &e->loc, &start, &len))
		return false;
	const struct data *d = &e->data;
	if (d->kind == DATA_FILL)
		return check_fill(r, op, t, start, d, d->count ? d->count : len);
	if (!location_is_range(&e->loc) || e->loc.size)
		return check_string(r, op, t, start, d);
	for (uint64_t at = start; at < start + len; at += PG)
		if (!check_string(r, op, t, at, d))
			return false;
	return true;
}

/* kbuf[+offset] == DATA: the bytes the last copy_from_user left in its kernel buffer. */
static bool expect_kbuf(struct run *r, const struct op *op)
{
	const struct data *d = &op->expect.data;
	uint64_t offset = (uint64_t)op->expect.loc.offset;
	uint64_t avail = offset <= r->kbuf_len ? r->kbuf_len - offset : 0;
	uint64_t n = d->kind == DATA_FILL ? (d->count ? d->count : avail) : d->len;
	if (offset + n > r->kbuf_len) {
		failed(r, op, "the kernel buffer holds %zu bytes (the last copy_from_user's count)",
		       r->kbuf_len);
		return false;
	}
	return d->kind == DATA_FILL ? check_fill(r, op, NULL, offset, d, n)
				    : check_string(r, op, NULL, offset, d);
}

/* pin NAME[+offset] == DATA: the bytes read through the pin's frames. */
static bool expect_pin(struct run *r, const struct op *op)
{
	const struct expect *e = &op->expect;
	const struct run_pin *rp = pin_of(r, e->pin_ref.pin);
	if (!rp)
		return false;
	const struct data *d = &e->data;
	uint64_t size = rp->npages * PG, offset = e->pin_ref.offset;
	uint64_t avail = offset <= size ? size - offset : 0;
	uint64_t n = d->kind == DATA_FILL ? (d->count ? d->count : avail) : d->len;
	if (offset > size || n > avail) {
		failed(r, op, "pin '%s' holds %" PRIu64 " bytes: %" PRIu64 " at offset %" PRIu64
		       " are past its end", r->s->pin_names[e->pin_ref.pin], size, n, offset);
		return false;
	}
	uint8_t *got = malloc(n ? n : 1);
	if (!got) {
		run_bad_input(r, op->line, "out of memory");
		return false;
	}
	bool ok = false;
	int rc = cowvm_pin_read(rp->pin, offset, got, n);
	uint64_t at = rc ? 0 : first_mismatch(d, 0, got, n);
	if (rc) {
		failed(r, op, "cowvm_pin_read returned %d", rc);
	} else if (at < n && d->kind == DATA_FILL) {
		failed(r, op, "byte %" PRIu64 " of the pin is 0x%02x, expected 0x%02x", offset + at,
		       got[at], d->bytes[at % d->len]);
	} else if (at < n) {
		char want[256], found[256];
		format_bytes(want, sizeof want, d->bytes, n);
		format_bytes(found, sizeof found, got, n);
		failed(r, op, "the pin holds %s, expected %s (frame %" PRIu64 ")", found, want,
		       cowvm_pin_pfn(rp->pin, offset / PG));
	} else {
		ok = true;
	}
	free(got);
	return ok;
}

/* ---- pages --------------------------------------------------------------------------------- */

struct page_facts {
	uint64_t word, pte, pfn;
	unsigned props;        /* PAGE_* that hold */
	struct cowvm_frame_info frame;
	bool has_frame;
};

static void page_facts(struct run *r, cowvm_task_t *t, uint64_t addr, struct page_facts *f)
{
	memset(f, 0, sizeof *f);
	f->word = cowvm_pagemap(t, addr);
	f->pte = cowvm_pte(t, addr);
	if (f->word & COWVM_PM_PRESENT) {
		f->pfn = f->word & COWVM_PM_PFN_MASK;
		f->props |= PAGE_PRESENT;
		if (f->pfn == r->zero_pfn)
			f->props |= PAGE_ZERO;
		f->has_frame = cowvm_frame_info(r->vm, f->pfn, &f->frame) == 0;
		if (f->has_frame && f->frame.anon_exclusive)
			f->props |= PAGE_ANON_EXCLUSIVE;
	}
	if (f->word & COWVM_PM_MMAP_EXCLUSIVE)
		f->props |= PAGE_EXCLUSIVE;
	if (f->word & COWVM_PM_SWAP)
		f->props |= PAGE_SWAPPED;
	if (f->word & COWVM_PM_SOFT_DIRTY)
		f->props |= PAGE_SOFT_DIRTY;
	if (f->word & COWVM_PM_FILE)
		f->props |= PAGE_FILE;
	if ((f->pte & PTE_PRESENT) && (f->pte & PTE_RW))
		f->props |= PAGE_WRITABLE;
	if ((f->pte & PTE_PRESENT) && (f->pte & PTE_DIRTY))
		f->props |= PAGE_DIRTY;
	if (page_in_swap_cache(r->vm, f->word))
		f->props |= PAGE_SWAPCACHE;
}

static const char *const property_names[] = { "present", "exclusive", "zero", "writable",
					       "dirty", "swapped", "anon_exclusive", "soft_dirty",
					       "file", "swapcache" };

/* "present, not exclusive, read-only, frame 6 (refcount 2, mapcount 2)" */
static void describe_page(struct run *r, const struct page_facts *f, char *out, size_t outlen)
{
	size_t n = 0;
	if (!(f->props & PAGE_PRESENT)) {
		snprintf(out, outlen, "not present (pagemap %#" PRIx64 ", pte %#" PRIx64 ")", f->word, f->pte);
		return;
	}
	n += (size_t)snprintf(out + n, outlen - n, "present, %s, %s, frame %" PRIu64,
			      (f->props & PAGE_EXCLUSIVE) ? "exclusive" : "not exclusive",
			      (f->props & PAGE_WRITABLE) ? "writable" : "read-only", f->pfn);
	if (f->props & PAGE_ZERO)
		snprintf(out + n, outlen - n, " (the zero page)");
	else if (f->has_frame) {
		char held[128];
		pins_holding(r, f->pfn, held, sizeof held);
		snprintf(out + n, outlen - n, " (refcount %d, mapcount %d%s%s%s)", f->frame.refcount,
			 f->frame.mapcount, f->frame.anon_exclusive ? ", anon-exclusive" : "",
			 held[0] ? ", held by " : "", held);
	}
}


/*
 * The pagemap word that task `task`'s process had at mark `mark` for the page of region
 * `region` with index `page`.  False (reported) when the mark did not see that page.
 */
static bool word_at_mark(struct run *r, const struct op *op, int task, int region, uint64_t page,
			 uint64_t *word)
{
	const struct run_mark *m = &r->marks[op->expect.frame_mark];
	const char *mark = r->s->mark_names[op->expect.frame_mark];
	if (!m->set) {
		run_bad_input(r, op->line, "mark '%s' was not set (its line failed)", mark);
		return false;
	}
	int process = r->tasks[task].process;
	for (int i = 0; i < m->nr_frames; i++) {
		const struct mark_frames *mf = &m->frames[i];
		if (mf->process != process || mf->region != region)
			continue;
		if (page >= mf->npages)
			break;
		*word = mf->words[page];
		return true;
	}
	failed(r, op, "at mark '%s' %s had no page %" PRIu64 " of region '%s'", mark,
	       r->s->task_names[task], page, r->s->region_names[region]);
	return false;
}

/* frame same as / differs from [Q [LOC]] at mark M, for P's page at addr (page `index` of
 * the expectation's range) */
static bool check_frame_at_mark(struct run *r, const struct op *op, const struct page_facts *f,
				uint64_t addr, uint64_t index)
{
	const struct expect *e = &op->expect;
	const struct location *loc = e->frame_loc.region == -2 ? &e->loc : &e->frame_loc;
	uint64_t start, len;
	if (loc->region < 0) {
		run_bad_input(r, op->line, "'frame ... at mark' needs a region's page, not an address");
		return false;
	}
	if (!resolve_location(r, loc, &start, &len))
		return false;
	const struct run_region *rg = &r->regions[loc->region];
	uint64_t page = ((start & ~(PG - 1)) - rg->start) / PG + index;
	uint64_t then;
	if (!word_at_mark(r, op, e->frame_task, loc->region, page, &then))
		return false;
	bool was = (then & COWVM_PM_PRESENT) != 0;
	bool same = was && (f->props & PAGE_PRESENT) && (then & COWVM_PM_PFN_MASK) == f->pfn;
	if (same != e->frame_differs)
		return true;
	char what[300];
	describe_page(r, f, what, sizeof what);
	if (!was)
		failed(r, op, "page %#" PRIx64 ": %s's %s[%" PRIu64 "] was not present at mark '%s'; now %s",
		       addr, r->s->task_names[e->frame_task], r->s->region_names[loc->region], page,
		       r->s->mark_names[e->frame_mark], what);
	else
		failed(r, op, "page %#" PRIx64 " %s the frame %s's %s[%" PRIu64 "] mapped at mark '%s' "
		       "(frame %" PRIu64 "): now %s", addr, same ? "maps" : "does not map",
		       r->s->task_names[e->frame_task], r->s->region_names[loc->region], page,
		       r->s->mark_names[e->frame_mark], (uint64_t)(then & COWVM_PM_PFN_MASK), what);
	return false;
}

static bool expect_page(struct run *r, const struct op *op)
{
	const struct expect *e = &op->expect;
	cowvm_task_t *t = task_of(r, e->task), *other = NULL;
	uint64_t start, len, other_start = 0, other_len;
	if (!t || !resolve_location(r, &e->loc, &start, &len))
		return false;
	if (e->has_held && !pin_of(r, e->held_pin))
		return false;
	if (e->has_same) {
		if (!(other = task_of(r, e->same_task)))
			return false;
		if (e->same_loc.region == -2)
			other_start = start;
		else if (!resolve_location(r, &e->same_loc, &other_start, &other_len))
			return false;
	}
	uint64_t first = start & ~(PG - 1), end = start + (len ? len : 1);
	for (uint64_t addr = first; addr < end; addr += PG) {
		struct page_facts f, g;
		char what[300];
		page_facts(r, t, addr, &f);
		unsigned missing = e->want_set & ~f.props, unwanted = e->want_clear & f.props;
		if (missing || unwanted) {
			unsigned bits = missing ? missing : unwanted;
			int i = __builtin_ctz(bits);
			describe_page(r, &f, what, sizeof what);
			failed(r, op, "page %#" PRIx64 " is %s%s: %s", addr, missing ? "not " : "",
			       property_names[i], what);
			return false;
		}
		if (e->has_held) {
			bool held = (f.props & PAGE_PRESENT) && pin_holds_frame(&r->pins[e->held_pin], f.pfn);
			if (held == e->held_negated) {
				describe_page(r, &f, what, sizeof what);
				failed(r, op, "page %#" PRIx64 " %s a frame that pin '%s' holds: %s", addr,
				       held ? "maps" : "does not map", r->s->pin_names[e->held_pin], what);
				return false;
			}
		}
		if (e->has_frame_at && !check_frame_at_mark(r, op, &f, addr, (addr - first) / PG))
			return false;
		if (!e->has_same)
			continue;
		uint64_t other_addr = (other_start & ~(PG - 1)) + (addr - first);
		page_facts(r, other, other_addr, &g);
		bool same = (f.props & PAGE_PRESENT) && (g.props & PAGE_PRESENT) && f.pfn == g.pfn;
		if (same == e->same_negated) {
			char theirs[300];
			describe_page(r, &f, what, sizeof what);
			describe_page(r, &g, theirs, sizeof theirs);
			failed(r, op, "page %#" PRIx64 " %s %s's page %#" PRIx64 ": here %s; there %s", addr,
			       same ? "shares a frame with" : "does not share a frame with",
			       r->s->task_names[e->same_task], other_addr, what, theirs);
			return false;
		}
	}
	return true;
}

/* ---- counters -------------------------------------------------------------------------------- */

static uint64_t stats_field(const struct cowvm_task_stats *st, enum counter_kind c)
{
	switch (c) {
	case COUNTER_RSS: return st->rss_anon + st->rss_shmem;
	case COUNTER_RSS_ANON: return st->rss_anon;
	case COUNTER_RSS_SHMEM: return st->rss_shmem;
	case COUNTER_RSS_SWAP: return st->rss_swap;
	case COUNTER_VMAS: return st->nr_vmas;
	case COUNTER_TOTAL_VM: return st->total_vm;
	case COUNTER_PAGE_TABLES: return st->nr_ptes;
	case COUNTER_TLB_MISSES: return st->tlb_misses;
	case COUNTER_THREAD_FAULTS: return st->min_flt + st->maj_flt;
	case COUNTER_MAJFLT: return st->maj_flt;
	case COUNTER_MINFLT: return st->min_flt;
	default: return 0;
	}
}

/* The counter's value now, less its value at the mark if there is one.  False: reported. */
static bool counter_value(struct run *r, const struct op *op, int64_t *out, char *unit, size_t unitlen)
{
	const struct expect *e = &op->expect;
	const struct run_mark *m = e->mark >= 0 ? &r->marks[e->mark] : NULL;
	cowvm_task_t *t = NULL;
	struct cowvm_task_stats st;
	snprintf(unit, unitlen, "%s", "");
	if (m && !m->set) {
		run_bad_input(r, op->line, "mark '%s' was not set (its line failed)",
				 r->s->mark_names[e->mark]);
		return false;
	}
	if (e->task >= 0 && !(t = task_of(r, e->task)))
		return false;
	int process = e->task >= 0 ? r->tasks[e->task].process : -1;
	int instance = e->task >= 0 ? r->tasks[e->task].instance : -1;
	switch (e->counter) {
	case COUNTER_FAULTS:
		*out = (int64_t)process_faults(r, process);
		if (m)
			*out -= process < m->nr_processes ? (int64_t)m->process_faults[process] : 0;
		return true;
	case COUNTER_THREAD_FAULTS: case COUNTER_MAJFLT: case COUNTER_MINFLT:
	case COUNTER_TLB_MISSES:
		cowvm_task_stats(t, &st);
		*out = (int64_t)stats_field(&st, e->counter);
		if (m && instance < m->nr_instances)
			*out -= (int64_t)stats_field(&m->task_stats[instance], e->counter);
		return true;
	case COUNTER_RSS: case COUNTER_RSS_ANON: case COUNTER_RSS_SHMEM: case COUNTER_RSS_SWAP:
	case COUNTER_VMAS: case COUNTER_TOTAL_VM: case COUNTER_PAGE_TABLES:
		cowvm_task_stats(t, &st);
		*out = (int64_t)stats_field(&st, e->counter);
		if (m && process < m->nr_processes)
			*out -= (int64_t)stats_field(&m->process_stats[process], e->counter);
		if (e->counter != COUNTER_VMAS)
			snprintf(unit, unitlen, *out == 1 || *out == -1 ? " page" : " pages");
		return true;
	case COUNTER_VMSTAT: {
		struct cowvm_vmstat vs;
		cowvm_vmstat(r->vm, &vs);
		*out = (int64_t)vmstat_value(&vs, e->field);
		if (m)
			*out -= (int64_t)vmstat_value(&m->vmstat, e->field);
		return true;
	}
	case COUNTER_SMAPS: {
		struct cowvm_smaps sm;
		uint64_t start = 0, len = 0;
		if (e->loc.region != -1 || e->loc.address) {
			if (!resolve_location(r, &e->loc, &start, &len))
				return false;
		}
		if (cowvm_smaps(t, start, len, &sm)) {
			failed(r, op, "cowvm_smaps failed");
			return false;
		}
		*out = (int64_t)smaps_value_kb(&sm, e->field);
		snprintf(unit, unitlen, " kB");
		return true;
	}
	case COUNTER_REFCOUNT:
	case COUNTER_MAPCOUNT: {
		uint64_t start, len;
		struct page_facts f;
		if (e->of_pin) {
			const struct run_pin *rp = pin_of(r, e->pin_ref.pin);
			struct cowvm_frame_info fi;
			uint64_t index = e->pin_ref.offset / PG;
			if (!rp)
				return false;
			if (index >= rp->npages) {
				failed(r, op, "pin '%s' holds %zu page%s: page %" PRIu64 " is past its end",
				       r->s->pin_names[e->pin_ref.pin], rp->npages, rp->npages == 1 ? "" : "s",
				       index);
				return false;
			}
			if (cowvm_frame_info(r->vm, cowvm_pin_pfn(rp->pin, index), &fi)) {
				failed(r, op, "no frame information for the pinned frame");
				return false;
			}
			*out = e->counter == COUNTER_REFCOUNT ? fi.refcount : fi.mapcount;
			return true;
		}
		if (!resolve_location(r, &e->loc, &start, &len))
			return false;
		page_facts(r, t, start, &f);
		if (!f.has_frame) {
			char what[300];
			describe_page(r, &f, what, sizeof what);
			failed(r, op, "page %#" PRIx64 " maps no frame: %s", start & ~(PG - 1), what);
			return false;
		}
		*out = e->counter == COUNTER_REFCOUNT ? f.frame.refcount : f.frame.mapcount;
		return true;
	}
	case COUNTER_MERGE: {
		struct cowvm_merge_report m;
		if (cowvm_merge_report(t, &m)) {
			failed(r, op, "cowvm_merge_report failed");
			return false;
		}
		*out = (int64_t)merge_value(&m, e->field);
		if (e->field != MERGE_FIRST_CONFLICT && strncmp(merge_fields[e->field].name, "pages_", 6) == 0)
			snprintf(unit, unitlen, *out == 1 ? " page" : " pages");
		return true;
	}
	case COUNTER_STATUS: {
		uint64_t kb;
		if (!process_status_kb(r, process, e->field, &kb)) {
			failed(r, op, "/proc/PID/status has no %s line", status_fields[e->field]);
			return false;
		}
		*out = (int64_t)kb;
		if (m) {
			uint64_t then = process < m->nr_processes && m->status_kb
						? m->status_kb[process * nr_status_fields + e->field] : UINT64_MAX;
			if (then == UINT64_MAX) {
				failed(r, op, "%s was not known at mark '%s'", status_fields[e->field],
				       r->s->mark_names[e->mark]);
				return false;
			}
			*out -= (int64_t)then;
		}
		snprintf(unit, unitlen, " kB");
		return true;
	}
	case COUNTER_RESULT:
		if (!r->last_op) {
			run_bad_input(r, op->line, "'expect result' with no operation before it");
			return false;
		}
		r->result_checked = true;
		*out = r->last_result;
		return true;
	}
	return false;
}

static bool expect_counter(struct run *r, const struct op *op)
{
	const struct expect *e = &op->expect;
	int64_t got;
	char unit[16];
	int64_t want = e->value;
	if (!counter_value(r, op, &got, unit, sizeof unit))
		return false;
	bool address = e->counter == COUNTER_MERGE && e->field == MERGE_FIRST_CONFLICT;
	if (address) { /* merge first_conflict == LOC: the location's address */
		uint64_t start, len;
		if (!resolve_location(r, &e->loc, &start, &len))
			return false;
		want = (int64_t)start;
	}
	if (compare(got, e->cmp, want))
		return true;
	if (address)
		failed(r, op, "got %#" PRIx64 "%s, expected %#" PRIx64, (uint64_t)got,
		       got ? "" : " (no conflict)", (uint64_t)want);
	else if (e->counter == COUNTER_RESULT && (got > 0xffff || got < -0xffff))
		failed(r, op, "got %#" PRIx64, (uint64_t)got);
	else
		failed(r, op, "got %" PRId64 "%s", got, unit);
	return false;
}

void run_expect(struct run *r, const struct op *op)
{
	bool ok = false;
	int failures = r->failures;
	r->expectations++;
	switch (op->expect.kind) {
	case EXPECT_ERROR: ok = expect_error(r, op); break;
	case EXPECT_MEMORY: ok = expect_memory(r, op); break;
	case EXPECT_KBUF: ok = expect_kbuf(r, op); break;
	case EXPECT_PAGE: ok = expect_page(r, op); break;
	case EXPECT_COUNTER: ok = expect_counter(r, op); break;
	case EXPECT_PIN: ok = expect_pin(r, op); break;
	}
	if (ok)
		run_expect_passed(r, op);
	else if (failures == r->failures && !r->bad_input)
		failed(r, op, "failed");
}
