/*
 * scenario_parse_expect.c - the grammar of `expect` lines (docs/scenarios.md, "Expectations"):
 *   expect error [ERRNO] | result CMP N | mem P LOC == DATA | kbuf[+N] == DATA
 *        | pin NAME[+N] == DATA | page P LOC PROPERTY... | COUNTER [since MARK] CMP N [UNIT]
 *        | merge [P] FIELD CMP N | merge [P] first_conflict CMP LOC
 * It checks names and units only; scenario_expect.c does the checking at run time.
 * An `expect error` also tells the parser that the line before it fails, so the task, region or
 * pin that line would have made does not exist (its name is free again).
 */
#include <string.h>

#include "lang/parse.h"
#include "lang/words.h"

/* Whether w (NAME, NAME[I], NAME+N) starts with the name of a pin held here: `refcount pin X`
 * then means the pin X even when a task is called "pin". */
static bool names_a_held_pin(struct parser *p, const char *w)
{
	size_t n = strcspn(w, "[+");
	for (int i = 0; i < p->s->nr_pins; i++)
		if (strlen(p->s->pin_names[i]) == n && !strncmp(p->s->pin_names[i], w, n))
			return p->pin_state[i] == TASK_ALIVE;
	return false;
}

static bool take_comparison(struct parser *p, enum comparison *cmp)
{
	static const struct {
		const char *text;
		enum comparison cmp;
	} ops[] = { { "==", CMP_EQ }, { "=", CMP_EQ }, { "!=", CMP_NE }, { "<", CMP_LT },
		    { "<=", CMP_LE }, { ">", CMP_GT }, { ">=", CMP_GE } };
	const char *w = NULL;
	if (!take_word(p, &w, "a comparison (==, !=, <, <=, >, >=)"))
		return false;
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (!strcmp(w, ops[i].text)) {
			*cmp = ops[i].cmp;
			return true;
		}
	return parse_fail(p, "expected a comparison (==, !=, <, <=, >, >=), found '%s'", w);
}

enum counter_unit { UNIT_COUNT, UNIT_PAGES, UNIT_KB };

/* [-]NUMBER [pages|kB], converted to the counter's unit. */
static bool take_counter_value(struct parser *p, int64_t *out, enum counter_unit unit)
{
	const char *w = NULL;
	if (!take_word(p, &w, "a number"))
		return false;
	bool negative = w[0] == '-';
	uint64_t v;
	if (!parse_number(w + negative, &v) || v > INT64_MAX)
		return parse_fail(p, "bad number '%s'", w);
	const char *u = parse_peek_word(p);
	if (u && (!strcmp(u, "page") || !strcmp(u, "pages") || !strcmp(u, "kB") || !strcmp(u, "KiB"))) {
		bool pages = u[0] == 'p';
		if (unit == UNIT_COUNT)
			return parse_fail(p, "this counter is a plain count, not '%s'", u);
		if (unit == UNIT_KB && pages)
			v *= 4;
		else if (unit == UNIT_PAGES && !pages) {
			if (v % 4)
				return parse_fail(p, "%llu kB is not a whole number of pages", (unsigned long long)v);
			v /= 4;
		}
		p->pos++;
	}
	*out = negative ? -(int64_t)v : (int64_t)v;
	return true;
}

/* After `frame`: same as [Q [LOC]] at mark M | differs from [Q [LOC]] at mark M */
static bool parse_expect_frame(struct parser *p, struct expect *e, bool negated)
{
	const char *w = NULL;
	if (e->has_frame_at)
		return parse_fail(p, "one 'frame ... at mark' per expect line");
	if (negated)
		return parse_fail(p, "'not frame same as' is 'frame differs from'");
	if (!take_word(p, &w, "'same as' or 'differs from' after 'frame'"))
		return false;
	if (!strcmp(w, "same")) {
		e->frame_differs = false;
	} else if (!strcmp(w, "differs")) {
		e->frame_differs = true;
	} else {
		return parse_fail(p, "expected 'frame same as ...' or 'frame differs from ...', found '%s'", w);
	}
	const char *joint = e->frame_differs ? "from" : "as";
	if (!take_word(p, &w, joint) || strcmp(w, joint))
		return parse_fail(p, "expected '%s' after 'frame %s'", joint, e->frame_differs ? "differs" : "same");
	e->has_frame_at = true;
	e->frame_task = e->task;
	e->frame_loc.region = -2;
	if (!parse_next_is(p, "at")) {
		if (!use_task(p, &e->frame_task))
			return false;
		if (!parse_next_is(p, "at") && !take_location(p, &e->frame_loc))
			return false;
	}
	if (!take_word(p, &w, "'at mark M'") || strcmp(w, "at") || !take_word(p, &w, "'mark M'") ||
	    strcmp(w, "mark"))
		return parse_fail(p, "expected 'at mark M' after the frame's page");
	return use_mark(p, &e->frame_mark);
}

static bool parse_expect_page(struct parser *p, struct expect *e)
{
	static const struct {
		const char *name;
		unsigned bit;
	} props[] = {
		{ "present", PAGE_PRESENT }, { "exclusive", PAGE_EXCLUSIVE }, { "zero", PAGE_ZERO },
		{ "writable", PAGE_WRITABLE }, { "dirty", PAGE_DIRTY }, { "swapped", PAGE_SWAPPED },
		{ "anon_exclusive", PAGE_ANON_EXCLUSIVE }, { "soft_dirty", PAGE_SOFT_DIRTY },
		{ "file", PAGE_FILE }, { "swapcache", PAGE_SWAPCACHE },
	};
	if (!use_task(p, &e->task) || !take_location(p, &e->loc))
		return false;
	if (parse_at_end(p))
		return parse_fail(p, "expect page needs at least one property (present, exclusive, zero, "
			       "writable, dirty, swapped, anon_exclusive, soft_dirty, same P [LOC], "
			       "held_by PIN), each may follow 'not'");
	while (!parse_at_end(p)) {
		const char *w = NULL;
		bool negated = false;
		if (!take_word(p, &w, "a page property"))
			return false;
		if (!strcmp(w, "not") || !strcmp(w, "!")) {
			negated = true;
			if (!take_word(p, &w, "a page property after 'not'"))
				return false;
		}
		if (!strcmp(w, "same")) {
			if (e->has_same)
				return parse_fail(p, "one 'same' per expect line");
			e->has_same = true;
			e->same_negated = negated;
			if (!use_task(p, &e->same_task))
				return false;
			bool is_location = looks_like_location(p, parse_peek_word(p));
			if (is_location) {
				if (!take_location(p, &e->same_loc))
					return false;
			} else {
				e->same_loc.region = -2;
			}
			continue;
		}
		if (!strcmp(w, "frame")) {
			if (!parse_expect_frame(p, e, negated))
				return false;
			continue;
		}
		if (!strcmp(w, "held_by")) {
			if (e->has_held)
				return parse_fail(p, "one 'held_by' per expect line");
			e->has_held = true;
			e->held_negated = negated;
			if (!use_pin(p, &e->held_pin))
				return false;
			continue;
		}
		size_t i;
		for (i = 0; i < sizeof props / sizeof props[0]; i++)
			if (!strcmp(w, props[i].name))
				break;
		if (i == sizeof props / sizeof props[0])
			return parse_fail(p, "unknown page property '%s' (present, exclusive, zero, writable, "
				       "dirty, swapped, swapcache, anon_exclusive, soft_dirty, file, same P [LOC], held_by PIN, "
			       "frame same as [P [LOC]] at mark M, frame differs from ... at mark M)", w);
		if (negated)
			e->want_clear |= props[i].bit;
		else
			e->want_set |= props[i].bit;
	}
	if (e->want_set & e->want_clear)
		return parse_fail(p, "a property is both wanted and not wanted");
	return true;
}

/* merge [P] FIELD: P is the parent of the last `dget P C merge` line when it is left out. */
static bool parse_expect_merge(struct parser *p, struct expect *e)
{
	const char *w = parse_peek_word(p);
	bool field_next = w && merge_field_by_name(w) >= 0;
	/* a task named like a field: `expect merge conflicts conflicts == 1` */
	if (field_next && p->pos + 1 < p->list.count && p->list.tokens[p->pos + 1].kind == TOKEN_WORD &&
	    merge_field_by_name(p->list.tokens[p->pos + 1].text) >= 0)
		field_next = false;
	/* a misspelt field rather than a process: `expect merge conflict == 1` */
	if (!field_next && w && p->pos + 1 < p->list.count && p->list.tokens[p->pos + 1].text[0] &&
	    strchr("=!<>", p->list.tokens[p->pos + 1].text[0]))
		return parse_fail(p, "unknown merge report field '%s' (conflicts, first_conflict, "
				  "tables_skipped, pages_skipped, pages_shared, pages_copied, pages_merged)", w);
	if (field_next) {
		int id = p->merge_parent;
		if (id < 0)
			return parse_fail(p, "'expect merge' without a process needs a `dget P C merge ...` "
					  "line before it");
		if (p->task_state[id] != TASK_ALIVE)
			return parse_fail(p, "process '%s' of the last `dget ... merge` line is gone (line %d)",
					  p->s->task_names[id], p->task_line[id]);
		e->task = id;
	} else if (!use_task(p, &e->task)) {
		return false;
	}
	if (!take_word(p, &w, "a merge report field (conflicts, first_conflict, tables_skipped, "
			      "pages_skipped, pages_shared, pages_copied, pages_merged)"))
		return false;
	if ((e->field = merge_field_by_name(w)) < 0)
		return parse_fail(p, "unknown merge report field '%s' (conflicts, first_conflict, "
				  "tables_skipped, pages_skipped, pages_shared, pages_copied, pages_merged)", w);
	return true;
}

static bool parse_expect_counter(struct parser *p, struct expect *e, const char *name)
{
	static const struct {
		const char *name;
		enum counter_kind kind;
		enum counter_unit unit;
		bool markable;
	} counters[] = {
		{ "faults", COUNTER_FAULTS, UNIT_COUNT, true },
		{ "thread_faults", COUNTER_THREAD_FAULTS, UNIT_COUNT, true },
		{ "majflt", COUNTER_MAJFLT, UNIT_COUNT, true },
		{ "minflt", COUNTER_MINFLT, UNIT_COUNT, true },
		{ "rss", COUNTER_RSS, UNIT_PAGES, true },
		{ "rss_anon", COUNTER_RSS_ANON, UNIT_PAGES, true },
		{ "rss_shmem", COUNTER_RSS_SHMEM, UNIT_PAGES, true },
		{ "rss_swap", COUNTER_RSS_SWAP, UNIT_PAGES, true },
		{ "vmas", COUNTER_VMAS, UNIT_COUNT, true },
		{ "total_vm", COUNTER_TOTAL_VM, UNIT_PAGES, true },
		{ "page_tables", COUNTER_PAGE_TABLES, UNIT_PAGES, true },
		{ "tlb_misses", COUNTER_TLB_MISSES, UNIT_COUNT, true },
		{ "vmstat", COUNTER_VMSTAT, UNIT_COUNT, true },
		{ "smaps", COUNTER_SMAPS, UNIT_KB, false },
		{ "refcount", COUNTER_REFCOUNT, UNIT_COUNT, false },
		{ "mapcount", COUNTER_MAPCOUNT, UNIT_COUNT, false },
		{ "result", COUNTER_RESULT, UNIT_COUNT, false },
		{ "merge", COUNTER_MERGE, UNIT_COUNT, false },
		{ "status", COUNTER_STATUS, UNIT_KB, true },
	};
	size_t i;
	for (i = 0; i < sizeof counters / sizeof counters[0]; i++)
		if (!strcmp(name, counters[i].name))
			break;
	if (i == sizeof counters / sizeof counters[0])
		return parse_fail(p, "unknown expectation '%s' (error, result, mem, kbuf, pin, page, faults, "
			       "thread_faults, majflt, minflt, rss, rss_anon, rss_shmem, rss_swap, vmas, total_vm, "
			       "page_tables, tlb_misses, vmstat, smaps, status, refcount, mapcount, merge)", name);
	e->kind = EXPECT_COUNTER;
	e->counter = counters[i].kind;
	e->mark = -1;
	e->task = -1;
	const char *w = NULL;
	enum counter_unit unit = counters[i].unit;
	switch (e->counter) {
	case COUNTER_MERGE:
		if (!parse_expect_merge(p, e))
			return false;
		if (e->field != MERGE_FIRST_CONFLICT && strncmp(merge_fields[e->field].name, "pages_", 6) == 0)
			unit = UNIT_PAGES;
		break;
	case COUNTER_VMSTAT:
		if (!take_word(p, &w, "a vmstat field (pgfault, pgreuse, cow_copies ...)"))
			return false;
		if ((e->field = vmstat_field_by_name(w)) < 0)
			return parse_fail(p, "unknown vmstat field '%s' (see `show vmstat` for the names)", w);
		break;
	case COUNTER_SMAPS:
		if (!use_task(p, &e->task))
			return false;
		if (looks_like_location(p, parse_peek_word(p))) {
			if (!take_location(p, &e->loc))
				return false;
			if (!e->loc.size && !location_is_range(&e->loc))
				e->loc.size = 1;
		}
		if (!take_word(p, &w, "an smaps field (rss, pss, shared_dirty ...)"))
			return false;
		if ((e->field = smaps_field_by_name(w)) < 0)
			return parse_fail(p, "unknown smaps field '%s' (size, rss, pss, shared_clean, shared_dirty, "
				       "private_clean, private_dirty, referenced, anonymous, swap, swap_pss)", w);
		break;
	case COUNTER_REFCOUNT:
	case COUNTER_MAPCOUNT:
		/* refcount pin NAME[I]: of the frame a pin holds (mapped or not) */
		if (parse_next_is(p, "pin") && p->pos + 1 < p->list.count &&
		    p->list.tokens[p->pos + 1].kind == TOKEN_WORD &&
		    names_a_held_pin(p, p->list.tokens[p->pos + 1].text)) {
			p->pos++;
			e->of_pin = true;
			if (!take_pin_ref(p, &e->pin_ref))
				return false;
			break;
		}
		if (!use_task(p, &e->task) || !take_location(p, &e->loc))
			return false;
		break;
	case COUNTER_STATUS:
		if (!use_task(p, &e->task) || !take_word(p, &w, "a status field (VmRSS, RssAnon, VmLck ...)"))
			return false;
		if ((e->field = status_field_by_name(w)) < 0)
			return parse_fail(p, "unknown status field '%s' (VmPeak, VmSize, VmLck, VmPin, VmHWM, "
					  "VmRSS, RssAnon, RssFile, RssShmem, VmData, VmStk, VmExe, VmLib, "
					  "VmPTE, VmSwap)", w);
		break;
	case COUNTER_RESULT:
		break;
	default:
		if (!use_task(p, &e->task))
			return false;
	}
	if (parse_next_is(p, "since")) {
		p->pos++;
		if (!counters[i].markable)
			return parse_fail(p, "'%s' cannot be counted since a mark", name);
		if (!use_mark(p, &e->mark))
			return false;
	}
	if (e->counter == COUNTER_MERGE && e->field == MERGE_FIRST_CONFLICT) /* an address */
		return take_comparison(p, &e->cmp) && take_location(p, &e->loc);
	return take_comparison(p, &e->cmp) && take_counter_value(p, &e->value, unit);
}

bool parse_expect(struct parser *p, struct op *op)
{
	struct expect *e = &op->expect;
	const char *w = NULL;
	e->task = -1;
	e->mark = -1;
	if (!take_word(p, &w, "what to expect (error, mem, page, faults, rss, vmstat ...)"))
		return false;
	if (!strcmp(w, "error")) {
		e->kind = EXPECT_ERROR;
		/* what the failed line would have made is not there: its name is free again */
		struct op *failing = p->last_result_op >= 0 ? &p->s->ops[p->last_result_op] : NULL;
		if (failing && failing->new_task >= 0 && p->task_state[failing->new_task] == TASK_ALIVE) {
			p->task_state[failing->new_task] = TASK_FAILED;
			p->task_line[failing->new_task] = failing->line;
		}
		if (failing && failing->kind == OP_MMAP)
			p->region_line[failing->region] = -failing->line;
		if (failing && failing->kind == OP_MREMAP && failing->new_region >= 0)
			p->region_line[failing->new_region] = -failing->line;
		if (failing && failing->kind == OP_PIN && p->pin_state[failing->pin] == TASK_ALIVE) {
			p->pin_state[failing->pin] = TASK_FAILED;
			p->pin_line[failing->pin] = failing->line;
		}
		if (!parse_at_end(p)) {
			if (!take_word(p, &w, "an errno name"))
				return false;
			if ((e->error = errno_by_name(w)) < 0)
				return parse_fail(p, "unknown errno name '%s' (EFAULT, ENOMEM, EINVAL, "
						  "EEXIST, EACCES ...)", w);
		}
	} else if (!strcmp(w, "mem")) {
		e->kind = EXPECT_MEMORY;
		enum comparison cmp;
		if (!use_task(p, &e->task) || !take_location(p, &e->loc) || !take_comparison(p, &cmp))
			return false;
		if (cmp != CMP_EQ)
			return parse_fail(p, "memory is compared with == only");
		if (!take_data(p, &e->data))
			return false;
		if (e->data.kind == DATA_FILL && !e->data.count && !location_is_range(&e->loc))
			return parse_fail(p, "fill needs a range (REGION or REGION[I..J]) or a length after the value");
	} else if (!strcmp(w, "kbuf") || !strncmp(w, "kbuf+", 5)) {
		e->kind = EXPECT_KBUF;
		enum comparison cmp;
		uint64_t offset = 0;
		if (w[4] && (!parse_number(w + 5, &offset) || offset > INT64_MAX))
			return parse_fail(p, "bad offset in '%s' (kbuf+N, N decimal or 0x hex)", w);
		e->loc.offset = (int64_t)offset;
		if (!take_comparison(p, &cmp))
			return false;
		if (cmp != CMP_EQ)
			return parse_fail(p, "kbuf is compared with == only");
		if (!take_data(p, &e->data))
			return false;
	} else if (!strcmp(w, "pin")) {
		e->kind = EXPECT_PIN;
		enum comparison cmp;
		if (!take_pin_ref(p, &e->pin_ref) || !take_comparison(p, &cmp))
			return false;
		if (cmp != CMP_EQ)
			return parse_fail(p, "what a pin holds is compared with == only");
		if (!take_data(p, &e->data))
			return false;
	} else if (!strcmp(w, "page")) {
		e->kind = EXPECT_PAGE;
		if (!parse_expect_page(p, e))
			return false;
	} else if (!parse_expect_counter(p, e, w)) {
		return false;
	}
	return parse_expect_end(p);
}
