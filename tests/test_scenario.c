/*
 * test_scenario.c - the scenario language and the `cowvm run` runner, in-process.
 *
 *   parser:   good lines become the operations they say; every kind of malformed line is an
 *             error naming its line, never a crash (and garbage never crashes it);
 *   runner:   exit statuses 0 / 1 / 2, failure messages that name file:line and the value found;
 *   examples: every example (examples/ *.cows) passes, and the trace of each shows the kernel path its
 *             story is about (fork-cow: the child's first write is do_wp_page > wp_page_copy,
 *             the parent's write after the child exited is wp_page_reuse; ro-pin-unshare: the
 *             pin's unshare fault; pin-fork-copy: fork copies the pinned page without a fault;
 *             dput-copy: COPY's three regions, head memcpy, COW middle, tail memcpy, as phases).
 *   dput/dget: the lines, their errors, `expect merge`, phase lines that are not faults, and
 *             the snapshot image in `show frames` and the graph.
 *
 * Built with the tools/ sources except tools/cowvm.c (main); run from the top of the tree so
 * that examples/ is found.  Only the tools' own headers and include/cowvm.h are used.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cowvm.h"
#include "driver.h"
#include "lang/scenario.h"

/* ---- helpers -------------------------------------------------------------------------------- */

struct captured {
	int status;
	char *out, *err;
};

static void captured_free(struct captured *c)
{
	free(c->out);
	free(c->err);
}

#define TRACE_FULL 1  /* --trace: call trees */
#define TRACE_BRIEF 2 /* --trace=brief: one line per fault */

/* Run a scenario text (or file, when text is NULL) with out and err captured; trace 0, or
 * TRACE_FULL or TRACE_BRIEF. */
static struct captured run_captured(const char *name, const char *text, int trace, bool json)
{
	struct captured c = { 0 };
	size_t out_len = 0, err_len = 0;
	FILE *out = open_memstream(&c.out, &out_len);
	FILE *err = open_memstream(&c.err, &err_len);
	cr_assert(out && err, "open_memstream failed");
	struct run_opts opts = { .trace = trace == TRACE_FULL, .brief = trace == TRACE_BRIEF, .json = json,
				 .err = err };
	c.status = text ? scenario_run_text(name, text, &opts, out) : scenario_run_file(name, &opts, out);
	fclose(out);
	fclose(err);
	return c;
}

/* Parse text that must be malformed: the error must name `line` and contain `words`. */
static void expect_parse_error(const char *text, int line, const char *words)
{
	struct parse_error err;
	struct scenario *s = scenario_parse("t.cows", text, &err);
	if (s)
		scenario_free(s);
	cr_assert(s == NULL, "parsed, but should fail: %s", text);
	cr_assert(err.line == line, "error on line %d, expected %d (%s) for: %s", err.line, line,
		  err.message, text);
	cr_assert(strstr(err.message, words), "message '%s' lacks '%s' for: %s", err.message, words, text);
}

/* The first trace line at or after `from` that contains every one of the words. */
static const char *find_event(const char *from, const char *a, const char *b)
{
	for (const char *line = from; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[1024];
		if (len >= sizeof buf)
			continue;
		memcpy(buf, line, len);
		buf[len] = 0;
		if (strstr(buf, a) && (!b || strstr(buf, b)))
			return line;
	}
	return NULL;
}

/* The line after `text`'s line in a trace, or NULL. */
static const char *line_after(const char *trace, const char *text)
{
	const char *at = find_event(trace, text, NULL);
	const char *next = at ? strchr(at, '\n') : NULL;
	return next ? next + 1 : NULL;
}

/* ---- the parser ----------------------------------------------------------------------------- */

TestSuite(scenario_parse);

Test(scenario_parse, good_lines_become_the_operations_they_say)
{
	const char *text =
		"# a comment line\n"
		"memory 32 MiB\n"
		"spawn A            # trailing comment\n"
		"\n"
		"mmap A buf 4 pages rw private\n"
		"mmap A shm 8192 r shared at 0x40000000\n"
		"fork A as B\n"
		"thread B T\n"
		"write A buf[1..2] fill \"ab\"\n"
		"write A buf+0x10 \"x\\ty\\x41\"\n"
		"read B buf[3]\n"
		"copy_from_user A buf-16 64\n"
		"madvise A buf[0] dontfork\n"
		"mprotect A buf+0x1000 4096 r-x\n"
		"brk A +2 pages\n"
		"mark m\n"
		"expect faults A since m == 3\n"
		"expect page B buf[0..3] present not exclusive same A\n"
		"expect mem A buf[1] == fill 0xab\n"
		"expect vmstat cow_copies >= 1\n"
		"expect smaps A buf rss == 8 kB\n"
		"expect error EFAULT\n"
		"show ptes A buf[0]\n"
		"echo hello # with a hash\n";
	struct parse_error err;
	struct scenario *s = scenario_parse("good.cows", text, &err);
	cr_assert(s, "parse failed at line %d: %s", err.line, err.message);
	cr_assert_eq(s->phys_bytes, 32ull << 20);
	cr_assert_eq(s->nr_ops, 22);
	cr_assert_eq(s->nr_tasks, 3);
	cr_assert_eq(s->nr_regions, 3); /* buf, shm, heap */

	const struct op *op = &s->ops[2]; /* mmap A buf */
	cr_assert_eq(op->kind, OP_MMAP);
	cr_assert_eq(op->line, 5);
	cr_assert_eq(op->size, 4 * 4096);
	cr_assert_eq(op->prot, PROT_READ | PROT_WRITE);
	cr_assert_eq(op->flags, MAP_PRIVATE | MAP_ANONYMOUS);
	cr_assert_str_eq(op->text, "mmap A buf 4 pages rw private");

	op = &s->ops[3]; /* mmap A shm ... */
	cr_assert_eq(op->flags, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
	cr_assert_eq(op->address, 0x40000000);
	cr_assert_eq(op->prot, PROT_READ);

	op = &s->ops[6]; /* write A buf[1..2] fill "ab" */
	cr_assert_eq(op->kind, OP_WRITE);
	cr_assert(op->loc.has_pages && op->loc.first_page == 1 && op->loc.last_page == 2);
	cr_assert_eq(op->data.kind, DATA_FILL);
	cr_assert_eq(op->data.len, 2);

	op = &s->ops[7]; /* write A buf+0x10 "x\ty\x41" */
	cr_assert(op->loc.has_offset && op->loc.offset == 0x10);
	cr_assert_eq(op->data.len, 4);
	cr_assert(memcmp(op->data.bytes, "x\tyA", 4) == 0);

	op = &s->ops[9]; /* copy_from_user A buf-16 64 */
	cr_assert_eq(op->loc.offset, -16);
	cr_assert_eq(op->size, 64);

	op = &s->ops[11]; /* mprotect with an explicit length */
	cr_assert_eq(op->loc.size, 4096);
	cr_assert_eq(op->prot, PROT_READ | PROT_EXEC);

	op = &s->ops[12]; /* brk A +2 pages */
	cr_assert_eq(op->brk_sign, 1);
	cr_assert_eq(op->size, 8192);

	op = &s->ops[15]; /* expect page ... */
	cr_assert_eq(op->expect.kind, EXPECT_PAGE);
	cr_assert_eq(op->expect.want_set, PAGE_PRESENT);
	cr_assert_eq(op->expect.want_clear, PAGE_EXCLUSIVE);
	cr_assert(op->expect.has_same && !op->expect.same_negated);
	cr_assert_eq(op->expect.same_loc.region, -2);

	op = &s->ops[18]; /* expect smaps A buf rss == 8 kB */
	cr_assert_eq(op->expect.counter, COUNTER_SMAPS);
	cr_assert_eq(op->expect.value, 8);

	op = &s->ops[21];
	cr_assert_eq(op->kind, OP_ECHO);
	cr_assert_str_eq(op->text, "hello # with a hash");
	scenario_free(s);
}

Test(scenario_parse, pin_lines_become_the_operations_they_say)
{
	const char *text =
		"spawn A\n"
		"mmap A buf 4 pages\n"
		"pin A buf[1..2] longterm fast as dma\n"           /* 3 */
		"pin A buf+0x2000 2 pages get write as pipe\n"     /* 4 */
		"pin_write dma[1]+16 \"dev\"\n"                   /* 5 */
		"expect pin dma+4 == fill 0 8\n"                   /* 6 */
		"expect page A buf[1] held_by dma not soft_dirty\n" /* 7 */
		"expect refcount pin pipe[1] == 2\n"               /* 8 */
		"expect mapcount A buf[0] == 1\n"                  /* 9 */
		"unpin dma\n"                                      /* 10 */
		"pin A buf pin as dma\n"                           /* 11: the name is free again */
		"remote_read A buf[3] 16\n"                        /* 12 */
		"remote_write A buf+8 fill 0x41 100\n"             /* 13 */
		"clear_refs A soft_dirty\n"                        /* 14 */
		"clear_refs A 9\n"                                 /* 15: the library says EINVAL */
		"expect error EINVAL\n"
		"expect vmstat gup_fast_fallbacks == 0\n"
		"expect vmstat nr_pinned == 1\n";
	struct parse_error err;
	struct scenario *s = scenario_parse("pins.cows", text, &err);
	cr_assert(s, "parse failed at line %d: %s", err.line, err.message);
	cr_assert_eq(s->nr_pins, 2);
	cr_assert_str_eq(s->pin_names[0], "dma");

	const struct op *op = &s->ops[2];
	cr_assert_eq(op->kind, OP_PIN);
	cr_assert_eq(op->foll, COWVM_FOLL_LONGTERM | COWVM_FOLL_FAST);
	cr_assert_eq(op->size, 0); /* the location's pages */
	cr_assert(op->loc.has_pages && op->loc.first_page == 1 && op->loc.last_page == 2);
	cr_assert_eq(op->pin, 0);

	op = &s->ops[3];
	cr_assert_eq(op->foll, COWVM_FOLL_GET | COWVM_FOLL_WRITE);
	cr_assert_eq(op->size, 2);
	cr_assert(op->loc.has_offset && op->loc.offset == 0x2000);
	cr_assert_eq(op->pin, 1);

	op = &s->ops[4];
	cr_assert_eq(op->kind, OP_PIN_WRITE);
	cr_assert_eq(op->pin_ref.pin, 0);
	cr_assert_eq(op->pin_ref.offset, 4096 + 16);
	cr_assert_eq(op->data.len, 3);

	op = &s->ops[5];
	cr_assert_eq(op->expect.kind, EXPECT_PIN);
	cr_assert_eq(op->expect.pin_ref.offset, 4);
	cr_assert_eq(op->expect.data.kind, DATA_FILL);
	cr_assert_eq(op->expect.data.count, 8);

	op = &s->ops[6];
	cr_assert(op->expect.has_held && !op->expect.held_negated && op->expect.held_pin == 0);
	cr_assert_eq(op->expect.want_clear, PAGE_SOFT_DIRTY);

	op = &s->ops[7];
	cr_assert(op->expect.of_pin);
	cr_assert_eq(op->expect.pin_ref.pin, 1);
	cr_assert_eq(op->expect.pin_ref.offset, 4096);
	cr_assert(!s->ops[8].expect.of_pin);

	cr_assert_eq(s->ops[9].kind, OP_UNPIN);
	cr_assert_eq(s->ops[10].pin, 0);
	cr_assert_eq(s->ops[10].foll, COWVM_FOLL_PIN);
	cr_assert_eq(s->ops[11].kind, OP_REMOTE_READ);
	cr_assert_eq(s->ops[11].size, 16);
	cr_assert_eq(s->ops[12].kind, OP_REMOTE_WRITE);
	cr_assert_eq(s->ops[12].data.count, 100);
	cr_assert_eq(s->ops[13].value, 4);
	cr_assert_eq(s->ops[14].value, 9);
	scenario_free(s);
}

Test(scenario_parse, dput_and_dget_lines_become_the_operations_they_say)
{
	const char *text =
		"spawn P\n"
		"spawn C\n"
		"mmap P src 8 pages\n"
		"mmap C dst 8 pages\n"
		"dput P C copy src+0x100 dst+0x100 0x5f80\n"      /* 5 */
		"dget P C COPY src[7] dst[2]\n"                   /* 6: the source's range gives the length */
		"dput P C zero dst+0x800 2 pages\n"               /* 7 */
		"dget P C zero src[1..2]\n"                       /* 8 */
		"dput P C snap\n"                                 /* 9 */
		"dget P C merge src dst\n"                        /* 10 */
		"expect error EBADE\n"
		"expect merge conflicts == 4\n"                   /* 12: P, from the merge line */
		"expect merge first_conflict == src[3]+8\n"       /* 13 */
		"expect merge C pages_shared >= 1 page\n"         /* 14 */
		"expect merge tables_skipped != 0\n"              /* 15 */
		"dput P C copy 0x40000000 0x50000000 4096\n";     /* 16: absolute addresses */
	struct parse_error err;
	struct scenario *s = scenario_parse("dput.cows", text, &err);
	cr_assert(s, "parse failed at line %d: %s", err.line, err.message);
	cr_assert_eq(s->nr_ops, 16);

	const struct op *op = &s->ops[4];
	cr_assert_eq(op->kind, OP_DPUT);
	cr_assert_eq(op->dop, COWVM_COPY);
	cr_assert_eq(op->task, 0);
	cr_assert_eq(op->child, 1);
	cr_assert(op->loc.region == 0 && op->loc.has_offset && op->loc.offset == 0x100);
	cr_assert(op->child_loc.region == 1 && op->child_loc.has_offset && op->child_loc.offset == 0x100);
	cr_assert_eq(op->size, 0x5f80);

	op = &s->ops[5];
	cr_assert_eq(op->kind, OP_DGET);
	cr_assert_eq(op->dop, COWVM_COPY);
	cr_assert(op->loc.has_pages && op->loc.first_page == 7);
	cr_assert(op->child_loc.has_pages && op->child_loc.first_page == 2);
	cr_assert_eq(op->size, 0); /* the child's range, at run time */

	op = &s->ops[6];
	cr_assert_eq(op->dop, COWVM_ZERO);
	cr_assert_eq(op->child_loc.region, 1); /* dput zero: the child's location */
	cr_assert_eq(op->loc.region, -1);
	cr_assert_eq(op->size, 8192);

	op = &s->ops[7];
	cr_assert_eq(op->dop, COWVM_ZERO);
	cr_assert_eq(op->loc.region, 0); /* dget zero: the parent's */
	cr_assert_eq(op->child_loc.region, -1);

	cr_assert_eq(s->ops[8].dop, COWVM_SNAP);
	cr_assert_eq(s->ops[9].kind, OP_DGET);
	cr_assert_eq(s->ops[9].dop, COWVM_MERGE);
	cr_assert_eq(s->ops[10].expect.error, EBADE);

	op = &s->ops[11];
	cr_assert_eq(op->expect.kind, EXPECT_COUNTER);
	cr_assert_eq(op->expect.counter, COUNTER_MERGE);
	cr_assert_eq(op->expect.task, 0);
	cr_assert_eq(op->expect.value, 4);
	op = &s->ops[12];
	cr_assert_eq(op->expect.counter, COUNTER_MERGE);
	cr_assert(op->expect.loc.region == 0 && op->expect.loc.has_pages && op->expect.loc.offset == 8);
	op = &s->ops[13];
	cr_assert_eq(op->expect.task, 1);
	cr_assert_eq(op->expect.cmp, CMP_GE);
	cr_assert_eq(op->expect.value, 1);
	cr_assert_eq(s->ops[14].expect.cmp, CMP_NE);

	op = &s->ops[15];
	cr_assert(op->loc.region == -1 && op->loc.address == 0x40000000);
	cr_assert(op->child_loc.region == -1 && op->child_loc.address == 0x50000000);
	cr_assert_eq(op->size, 4096);
	scenario_free(s);
}

Test(scenario_parse, units_turn_into_bytes_and_pages)
{
	struct parse_error err;
	struct scenario *s = scenario_parse("u.cows",
		"spawn A\nmmap A a 16KiB\nmmap A b 3 pages\nmmap A c 0x3000\nmmap A d 1 M\n"
		"expect rss A == 8 kB\n", &err);
	cr_assert(s, "%s", err.message);
	cr_assert_eq(s->ops[1].size, 16384);
	cr_assert_eq(s->ops[2].size, 3 * 4096);
	cr_assert_eq(s->ops[3].size, 0x3000);
	cr_assert_eq(s->ops[4].size, 1 << 20);
	cr_assert_eq(s->ops[5].expect.value, 2); /* rss counts pages: 8 kB = 2 */
	scenario_free(s);
}

static const struct {
	const char *text;
	int line;
	const char *words;
} malformed[] = {
	{ "spawn A\nwrte A buf 1\n", 2, "unknown operation 'wrte'" },
	{ "spawn A\nmmap A buf 12x\n", 2, "bad size '12x'" },
	{ "spawn A\nmmap A buf 99999999999999999999999\n", 2, "bad size" },
	{ "spawn A\nmmap A buf 1 page\nread A buf+0xzz\n", 3, "bad offset" },
	{ "spawn A\nmmap A buf 1 page\nput_user A buf twelve\n", 3, "bad number 'twelve'" },
	{ "spawn A\nmmap A buf 1 page\nwrite A buf 256\n", 3, "does not fit in a byte" },
	{ "spawn A\nread A nowhere\n", 2, "unknown region 'nowhere'" },
	{ "spawn A\n\n\nread B 0x1000\n", 4, "unknown process 'B'" },
	{ "spawn A\nexit A\nread A 0x1000\n", 3, "exited at line 2" },
	{ "spawn A\nspawn A\n", 2, "already exists" },
	{ "spawn A\nmmap A b 1 page\nmmap A b 1 page\n", 3, "already defined at line 2" },
	{ "spawn A\nmmap A b 2 pages\nread A b[2]\n", 3, "past its end" },
	{ "spawn A\nmmap A b 2 pages\nread A b[1..0]\n", 3, "ends before it starts" },
	{ "spawn A\nmmap A b 1 page\nwrite A b \"open\n", 3, "unterminated string" },
	{ "spawn A\nmmap A b 1 page\nwrite A b \"\\q\"\n", 3, "bad escape" },
	{ "spawn A\nmmap A b 1 page\nwrite A b+1 fill 0\n", 3, "fill needs a range" },
	{ "spawn A\nmmap A b 1 page\nmprotect A b rwz\n", 3, "unknown protection" },
	{ "spawn A\nmmap A b 1 page\nmadvise A b sometimes\n", 3, "unknown advice" },
	{ "spawn A\nmmap A b 1 page\nmunmap A b+8\n", 3, "needs a length" },
	{ "spawn A\nexpect faults A since nomark == 1\n", 2, "unknown mark" },
	{ "spawn A\nexpect faults A about 1\n", 2, "expected a comparison" },
	{ "spawn A\nexpect vmstat pgfaults == 1\n", 2, "unknown vmstat field" },
	{ "spawn A\nexpect error EWHAT\n", 2, "unknown errno name" },
	{ "spawn A\nexpect page A 0x1000 shiny\n", 2, "unknown page property" },
	{ "spawn A\nexpect page A 0x1000 present not present\n", 2, "both wanted and not" },
	{ "spawn A\nexpect sizes A == 1\n", 2, "unknown expectation" },
	{ "spawn A\nshow mapz A\n", 2, "unknown view" },
	{ "spawn A\nmemory 16 MiB\n", 2, "must come before" },
	{ "memory 1000\n", 1, "multiple of 4 KiB" },
	{ "spawn A\nmmap A heap 1 page\n", 2, "brk region" },
	{ "spawn A\nread A heap\n", 2, "before any brk" },
	{ "spawn 1A\n", 1, "is not a name" },
	{ "spawn A extra\n", 1, "unexpected 'extra'" },
	{ "spawn A\nfork A\n", 2, "missing" },
	{ "\"quoted first\"\n", 1, "starts with an operation" },
	{ "spawn A\nmmap A b 1 page\nwrite A b 'ab'\n", 3, "one character" },
	{ "spawn A\nmmap A b 1 page at 0x1000\nexpect error\nread A b\n", 4, "expects its mmap to fail" },
	{ "spawn A\nfail_alloc next\nfork A B\nexpect error ENOMEM\nexit B\n", 5, "expects making it to fail" },
	{ "spawn A\nexpect rss A == 3 kB\n", 2, "not a whole number of pages" },
	{ "spawn A\nexpect faults A == 3 pages\n", 2, "plain count" },
	{ "spawn A\nexpect refcount A 0x1000 since m == 1\nmark m\n", 2, "cannot be counted since" },
	/* pins */
	{ "spawn A\nmmap A b 1 page\npin A b longterm\n", 3, "missing 'as NAME'" },
	{ "spawn A\nmmap A b 1 page\npin A b sticky as p\n", 3, "unknown pin flag 'sticky'" },
	{ "spawn A\nmmap A b 1 page\npin A b fast fast as p\n", 3, "given twice" },
	{ "spawn A\nmmap A b 1 page\npin A b 0 pages as p\n", 3, "0 pages" },
	{ "spawn A\nmmap A b 1 page\npin A b as 9p\n", 3, "is not a name" },
	{ "spawn A\nmmap A b 1 page\npin A b as p\npin A b as p\n", 4, "already held (taken at line 3)" },
	{ "spawn A\nunpin p\n", 2, "unknown pin 'p'" },
	{ "spawn A\nmmap A b 1 page\npin A b as p\nunpin p\nunpin p\n", 5, "released at line 4" },
	{ "spawn A\nmmap A b 1 page\npin A b as p\nexpect error\nexpect pin p == 1\n", 5,
	  "expects taking it to fail" },
	{ "spawn A\nmmap A b 1 page\npin A b as p\nexpect pin p != 1\n", 4, "with == only" },
	{ "spawn A\nmmap A b 1 page\npin A b as p\npin_write p+zz 1\n", 4, "bad offset" },
	{ "spawn A\nmmap A b 1 page\npin A b as p\npin_write p[x] 1\n", 4, "bad page index" },
	{ "spawn A\nmmap A b 1 page\nexpect page A b held_by q\n", 3, "unknown pin 'q'" },
	{ "spawn A\nmmap A b 1 page\npin A b as p\nexpect page A b held_by p not held_by p\n", 4,
	  "one 'held_by'" },
	{ "spawn A\nclear_refs A dirty\n", 2, "bad clear_refs value" },
	{ "spawn A\nmmap A b 1 page\nremote_write A b+1 fill 0\n", 3, "fill needs a range" },
	{ "spawn A\nremote_read A\n", 2, "missing a location" },
	/* dput and dget */
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndput P C merge b b\n", 4, "dput does not merge" },
	{ "spawn P\nspawn C\ndget P C snap\n", 3, "dget does not snap" },
	{ "spawn P\nspawn C\ndput P C frob\n", 3, "unknown dput operation 'frob'" },
	{ "spawn P\nspawn C\ndget P C\n", 3, "missing an operation" },
	{ "spawn P\ndput P C snap\n", 2, "unknown process 'C'" },
	{ "spawn P\nspawn C\ndput P C snap now\n", 3, "unexpected 'now'" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndput P C copy b\n", 4, "missing a location" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndput P C copy b+1 b\n", 4,
	  "'dput copy' needs a length: give the parent's location a range" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndget P C copy b b+1\n", 4,
	  "'dget copy' needs a length: give the child's location a range" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndget P C merge b b+8\n", 4, "needs a length" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndput P C zero b+8\n", 4, "needs a length" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndput P C zero b 0\n", 4, "a length of 0 bytes" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndput P C copy b b 3 apples\n", 4, "unexpected 'apples'" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndput P C copy b nowhere\n", 4, "unknown region 'nowhere'" },
	{ "spawn P\nspawn C\nmmap P b 2 pages\ndput P C zero b[2]\n", 4, "past its end" },
	{ "spawn P\nexpect merge conflicts == 0\n", 2, "needs a `dget P C merge ...` line" },
	{ "spawn P\nspawn C\nmmap P b 1 page\ndget P C merge b b\nexit P\nexpect merge conflicts == 0\n",
	  6, "process 'P' of the last `dget ... merge` line is gone" },
	{ "spawn P\nspawn C\nmmap P b 1 page\ndget P C merge b b\nexpect merge conflict == 1\n", 5,
	  "unknown merge report field 'conflict'" },
	{ "spawn P\nexpect merge P shared == 1\n", 2, "unknown merge report field 'shared'" },
	{ "spawn P\nspawn C\nmmap P b 1 page\ndget P C merge b b\nexpect merge conflicts == 1 page\n", 5,
	  "plain count" },
	{ "spawn P\nspawn C\nmmap P b 1 page\ndget P C merge b b\nmark m\nexpect merge conflicts since m == 1\n",
	  6, "cannot be counted since" },
	{ "spawn P\nspawn C\nmmap P b 1 page\ndget P C merge b b\nexpect merge first_conflict == elsewhere\n",
	  5, "unknown region 'elsewhere'" },
	{ "spawn P\nspawn C\nmmap P b 1 page\ndget P C merge b b\nexpect error EBADX\n", 5, "unknown errno name" },
	{ "spawn P\nrestore P clean\n", 2, "unknown snapshot 'clean' (take it first with `snapshot P as clean`)" },
	{ "spawn P\nsnapshot P clean\n", 2, "expected 'as NAME'" },
	{ "spawn P\nsnapshot P as 9lives\n", 2, "'9lives' is not a name" },
	{ "spawn P\nsnapshot Q as s\n", 2, "unknown process 'Q'" },
	{ "spawn P\nsnapshot P as s extra\n", 2, "unexpected 'extra'" },
};

Test(scenario_parse, malformed_input_is_an_error_that_names_the_line)
{
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
		expect_parse_error(malformed[i].text, malformed[i].line, malformed[i].words);
}

Test(scenario_parse, the_text_ends_at_its_first_nul)
{
	const char text[] = "spawn A\nread A 0x1000\0 trailing";
	struct parse_error err;
	/* scenario_parse takes a C string: the NUL ends the text, and what came before parses */
	struct scenario *s = scenario_parse("nul.cows", text, &err);
	cr_assert(s);
	cr_assert_eq(s->nr_ops, 2);
	scenario_free(s);
}

Test(scenario_parse, garbage_never_crashes_the_parser)
{
	static const char alphabet[] = "abmspfxwre0123456789[].+-#\"'\\ \n\t=<>!_AB";
	char text[256];
	unsigned seed = 12345;
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(seed % (sizeof text - 1));
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			text[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		text[len] = 0;
		/* prefix a valid start half of the time so that deeper rules get exercised */
		char both[512];
		snprintf(both, sizeof both, "%s%s", round % 2 ? "spawn A\nmmap A b 2 pages\n" : "", text);
		struct parse_error err;
		struct scenario *s = scenario_parse("fuzz.cows", both, &err);
		if (s)
			scenario_free(s);
		else
			cr_assert(err.line >= 1 && err.message[0], "error without a line or message");
		seed = seed * 1103515245u + 12345u;
	}
}

/* ---- the runner ------------------------------------------------------------------------------- */

TestSuite(scenario_run);

Test(scenario_run, a_scenario_whose_expectations_hold_exits_0)
{
	struct captured c = run_captured("ok.cows", "spawn A\nmmap A b 1 page\nwrite A b 7\n"
					 "expect mem A b == 7\nexpect faults A == 1\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "ok.cows: ok (2 expectations)"), "%s", c.out);
	cr_assert_str_eq(c.err, "");
	captured_free(&c);
}

Test(scenario_run, a_failed_expectation_names_the_line_and_the_value_found)
{
	struct captured c = run_captured("fail.cows", "spawn A\nmmap A b 1 page\nwrite A b 7\n"
					 "expect faults A == 5\nexpect mem A b == 8\n", false, false);
	cr_assert_eq(c.status, RUN_EXPECTATION_FAILED);
	cr_assert(strstr(c.err, "fail.cows:4: expect faults A == 5: got 1"), "%s", c.err);
	cr_assert(strstr(c.err, "fail.cows:5: expect mem A b == 8:"), "%s", c.err);
	cr_assert(strstr(c.err, "found \"\\x07\""), "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, an_operation_that_fails_unexpected_fails_the_run)
{
	struct captured c = run_captured("segv.cows", "spawn A\nread A 0x1000\n", false, false);
	cr_assert_eq(c.status, RUN_EXPECTATION_FAILED);
	cr_assert(strstr(c.err, "segv.cows:2: `read A 0x1000` failed with EFAULT"), "%s", c.err);
	captured_free(&c);

	c = run_captured("segv.cows", "spawn A\nread A 0x1000\nexpect error EFAULT\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, expect_error_on_a_success_or_the_wrong_errno_fails)
{
	struct captured c = run_captured("e.cows", "spawn A\nmmap A b 1 page\nexpect error\n"
					 "read A 0x1000\nexpect error ENOMEM\n", false, false);
	cr_assert_eq(c.status, RUN_EXPECTATION_FAILED);
	cr_assert(strstr(c.err, "e.cows:3: expect error: line 2 (`mmap A b 1 page`) succeeded"), "%s", c.err);
	cr_assert(strstr(c.err, "e.cows:5: expect error ENOMEM: line 4 failed with EFAULT"), "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, bad_input_exits_2_with_file_and_line)
{
	struct captured c = run_captured("bad.cows", "spawn A\nbogus line\n", false, false);
	cr_assert_eq(c.status, RUN_BAD_INPUT);
	cr_assert(strstr(c.err, "bad.cows:2: unknown operation 'bogus'"), "%s", c.err);
	cr_assert(strstr(c.out, "bad.cows: bad input"), "%s", c.out);
	captured_free(&c);
}

Test(scenario_run, bad_input_found_while_running_exits_2_and_tears_down)
{
	/* the region's size is known only at run time: brk shrank the heap */
	struct captured c = run_captured("heap.cows", "spawn A\nbrk A +3 pages\nwrite A heap[2] 1\n"
					 "brk A -2 pages\nread A heap[2]\n", false, false);
	cr_assert_eq(c.status, RUN_BAD_INPUT);
	cr_assert(strstr(c.err, "heap.cows:5: region 'heap' has 1 page now"), "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, restore_goes_back_to_the_snapshot_and_reports_what_it_cannot)
{
	/* contents and mappings come back; a second snapshot of the same name replaces the first */
	struct captured c = run_captured("snap.cows",
					 "spawn A\nmmap A b 2 pages\nwrite A b[0] \"one\"\nsnapshot A as s\n"
					 "write A b[0] \"two\"\nmunmap A b[1]\nrestore A s\n"
					 "expect mem A b[0] == \"one\"\nexpect vmas A == 1\n"
					 "write A b[0] \"three\"\nsnapshot A as s\nwrite A b[0] \"four\"\n"
					 "restore A s\nexpect mem A b[0] == \"three\"\ncheck\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s%s", c.out, c.err);
	captured_free(&c);

	/* a pinned page refuses the snapshot: EBUSY, which the scenario can expect */
	c = run_captured("busy.cows", "spawn A\nmmap A b 1 page\nwrite A b 1\npin A b as p\n"
			 "snapshot A as s\nexpect error EBUSY\nunpin p\nsnapshot A as s\nrestore A s\n",
			 false, false);
	cr_assert_eq(c.status, RUN_OK, "%s%s", c.out, c.err);
	captured_free(&c);

	/* a snapshot is gone with its process: restoring to it is bad input, not a crash */
	c = run_captured("gone.cows", "spawn A\nmmap A b 1 page\nfork A B\nsnapshot B as s\nexit B\n"
			 "restore A s\n", false, false);
	cr_assert_eq(c.status, RUN_BAD_INPUT);
	cr_assert(strstr(c.err, "gone.cows:6: snapshot 's' is gone: the process it was taken of (at "
			 "line 4) has exited"), "%s", c.err);
	captured_free(&c);

	/* the same after a failed snapshot */
	c = run_captured("failed.cows", "spawn A\nmmap A b 1 page\nwrite A b 1\npin A b as p\n"
			 "snapshot A as s\nexpect error EBUSY\nrestore A s\n", false, false);
	cr_assert_eq(c.status, RUN_BAD_INPUT);
	cr_assert(strstr(c.err, "failed.cows:7: snapshot 's' does not exist: taking it at line 5 failed"),
		  "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, a_missing_file_is_bad_input)
{
	struct captured c = run_captured("/nonexistent/x.cows", NULL, false, false);
	cr_assert_eq(c.status, RUN_BAD_INPUT);
	cr_assert(strstr(c.err, "cannot read it"), "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, json_output_is_one_object_per_line)
{
	struct captured c = run_captured("j.cows", "spawn A\nmmap A b 1 page\nwrite A b \"q\\\"\"\n"
					 "expect faults A == 1\nshow maps A\n", false, true);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	int lines = 0;
	for (char *line = c.out; *line; line = strchr(line, '\n') + 1) {
		cr_assert(!strncmp(line, "{\"event\":\"", 10), "not a JSON event: %s", line);
		char *end = strchr(line, '\n');
		cr_assert(end && end[-1] == '}', "unterminated JSON line: %s", line);
		lines++;
	}
	cr_assert(lines >= 6);
	cr_assert(strstr(c.out, "\"event\":\"fault\""), "%s", c.out);
	cr_assert(strstr(c.out, "\"path\":[\"handle_mm_fault\""), "%s", c.out);
	cr_assert(strstr(c.out, "\"text\":\"write A b \\\"q\\\\\\\"\\\"\""), "%s", c.out);
	cr_assert(strstr(c.out, "\"event\":\"summary\",\"file\":\"j.cows\",\"status\":\"ok\""), "%s", c.out);
	captured_free(&c);
}

Test(scenario_run, views_print_in_proc_formats)
{
	struct captured c = run_captured("v.cows", "spawn A\nmmap A buf 2 pages\nwrite A buf[0] 1\n"
					 "read A buf[1]\nshow maps A\nshow pagemap A\nshow smaps A\n"
					 "show vmstat\nshow frames A\nshow ptes A buf\nshow status A\n"
					 "show smaps_rollup A\nshow graph\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, " rw-p 00000000 00:00 0 "), "maps line: %s", c.out);
	cr_assert(strstr(c.out, "[anon:buf]"), "%s", c.out);
	cr_assert(strstr(c.out, "Rss:                   4 kB"), "%s", c.out);
	cr_assert(strstr(c.out, "pgfault 2\n"), "%s", c.out);
	cr_assert(strstr(c.out, "zero-page"), "%s", c.out);
	cr_assert(strstr(c.out, "present rw user"), "%s", c.out);
	cr_assert(strstr(c.out, "VmRSS:\t       4 kB"), "%s", c.out);
	cr_assert(strstr(c.out, "[rollup]"), "%s", c.out);
	cr_assert(strstr(c.out, "digraph cowvm {"), "%s", c.out);
	cr_assert(strstr(c.out, "zero page"), "%s", c.out);
	cr_assert(strstr(c.out, " A:"), "frames should list rmap mappers: %s", c.out);
	captured_free(&c);
}

Test(scenario_run, pins_left_held_are_released_when_the_scenario_ends)
{
	/* the run must end without a leak although nothing unpins */
	struct captured c = run_captured("held.cows", "spawn A\nmmap A b 2 pages\nwrite A b 1\n"
					 "pin A b write longterm as dma\npin A b[0] get as pipe\n"
					 "munmap A b\nexpect refcount pin pipe == 1025\n"
					 "expect vmstat nr_pinned == 2\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, pin_operations_report_their_errors_and_values)
{
	struct captured c = run_captured("pinerr.cows",
		"spawn A\nmmap A b 1 page\nwrite A b \"data\"\n"
		"pin A b+1 as p\nexpect error EINVAL\n"            /* not page aligned */
		"pin A 0x1000 as p\nexpect error EFAULT\n"         /* nothing mapped there */
		"pin A b get pin as p\nexpect error EINVAL\n"      /* both kinds */
		"pin A b as p\nexpect result == 1\n"
		"pin_write p \"x\"\nexpect error EPERM\n"          /* a read-only pin */
		"pin_write p+4095 \"xy\"\nexpect error EINVAL\n"
		"expect pin p == \"data\"\n"
		"remote_read A b 4\nexpect result == 4\nexpect kbuf == \"data\"\n"
		"remote_read A 0x1000 4\nexpect error EIO\n"
		"clear_refs A 9\nexpect error EINVAL\n", TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "-> p holds frame "), "%s", c.out);
	cr_assert(strstr(c.out, "-> 4 bytes"), "%s", c.out);
	captured_free(&c);

	/* an unacknowledged failure of a pin line fails the run, as any operation's */
	c = run_captured("pinfail.cows", "spawn A\npin A 0x1000 as p\n", false, false);
	cr_assert_eq(c.status, RUN_EXPECTATION_FAILED);
	cr_assert(strstr(c.err, "pinfail.cows:2: `pin A 0x1000 as p` failed with EFAULT"), "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, a_failed_pin_expectation_names_what_the_pin_holds)
{
	struct captured c = run_captured("pinx.cows", "spawn A\nmmap A b 1 page\nwrite A b \"old\"\n"
					 "pin A b get as pipe\nwrite A b \"new\"\n"
					 "expect pin pipe == \"new\"\nexpect page A b held_by pipe\n",
					 false, false);
	/* an exclusive page is reused by its owner's write, so a plain reference sees it */
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	captured_free(&c);

	/* after fork the write copies: the reference keeps the old data */

	c = run_captured("piny.cows", "spawn A\nmmap A b 1 page\nwrite A b \"old\"\nfork A B\n"
			 "pin A b get as pipe\nwrite A b \"new\"\nexpect pin pipe == \"new\"\n"
			 "expect page A b held_by pipe\n", false, false);
	cr_assert_eq(c.status, RUN_EXPECTATION_FAILED);
	cr_assert(strstr(c.err, "piny.cows:7: expect pin pipe == \"new\": the pin holds \"old\""),
		  "%s", c.err);
	cr_assert(strstr(c.err, "piny.cows:8: expect page A b held_by pipe: page ") &&
		  strstr(c.err, "does not map a frame that pin 'pipe' holds"), "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, traces_name_unshare_gup_and_remote_faults)
{
	struct captured c = run_captured("acc.cows",
		"spawn A\nmmap A b 3 pages\nwrite A b[0] 1\nfork A B\n"
		"pin A b[0] as ro\n"                    /* shared: an unshare */
		"pin A b[1] write as rw\n"              /* none: a GUP write fault */
		"pin A b[2] get as g\n"                 /* none: a GUP read fault (zero page) */
		"mprotect B b r\nremote_write B b[1] 2\nremote_read B b[2] 1\n", TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(find_event(c.out, "A unshare ", "do_wp_page > wp_page_copy"), "%s", c.out);
	cr_assert(find_event(c.out, "A gup-write ", "do_anonymous_page"), "%s", c.out);
	cr_assert(find_event(c.out, "A gup-read ", "do_anonymous_page (frame - -> zero)"), "%s", c.out);
	/* B's pages 1 and 2 were never touched: a forced write faults in a page of its own, a
	 * remote read the zero page */
	cr_assert(find_event(c.out, "B remote-write ", "do_anonymous_page (frame - -> "), "%s", c.out);
	cr_assert(find_event(c.out, "B remote-read ", "do_anonymous_page (frame - -> zero)"), "%s", c.out);
	captured_free(&c);

	c = run_captured("acc.cows", "spawn A\nmmap A b 1 page\nwrite A b 1\nfork A B\n"
			 "pin A b longterm as ro\n", false, true);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "\"access\":\"unshare\""), "%s", c.out);
	captured_free(&c);
}

Test(scenario_run, frames_view_lists_pinned_frames_and_their_holders)
{
	struct captured c = run_captured("fr.cows", "spawn A\nmmap A b 1 page\nwrite A b 1\n"
					 "pin A b get as pipe\nmunmap A b\nshow frames\n"
					 "show vmstat\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "pinned         1        0  "), "%s", c.out);
	cr_assert(strstr(c.out, "[held by pipe]"), "%s", c.out);
	cr_assert(strstr(c.out, "nr_pinned 0\n"), "%s", c.out);
	cr_assert(strstr(c.out, "gup_fast_fallbacks 0\n"), "%s", c.out);
	captured_free(&c);

	c = run_captured("fr.cows", "spawn A\nmmap A b 1 page\nwrite A b 1\npin A b get as pipe\n"
			 "munmap A b\nshow graph\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "label=\"pipe\\nget\"]"), "%s", c.out);
	cr_assert(strstr(c.out, "pinned, ref 1, map 0"), "%s", c.out);
	cr_assert(strstr(c.out, "[style=bold, color=\"#7d3c98\", label=\"held\"]"), "%s", c.out);
	captured_free(&c);

	c = run_captured("fr.cows", "spawn A\nmmap A b 1 page\nwrite A b 1\npin A b as dma\n"
			 "show frames\n", false, true);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "\"refcount\":1025"), "%s", c.out);
	cr_assert(strstr(c.out, "\"held_by\":[\"dma\"]"), "%s", c.out);
	captured_free(&c);
}

Test(scenario_run, soft_dirty_follows_clear_refs_and_the_next_write)
{
	struct captured c = run_captured("sd.cows", "spawn A\nmmap A b 1 page\nwrite A b 1\n"
					 "expect page A b soft_dirty\nclear_refs A 4\n"
					 "expect page A b not soft_dirty not writable\nwrite A b 2\n"
					 "expect page A b soft_dirty writable\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, fork_can_be_retried_after_an_expected_failure)
{
	struct captured c = run_captured("retry.cows", "spawn A\nmmap A b 1 page\nwrite A b 1\n"
					 "fail_alloc next\nfork A B\nexpect error ENOMEM\n"
					 "fork A B\nexpect page B b same A\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, dput_and_dget_report_the_librarys_errors)
{
	struct captured c = run_captured("derr.cows",
		"spawn P\nspawn C\nmmap P b 2 pages at 0x40000000\nwrite P b fill 1\n"
		"mmap C ro 1 page r shared at 0x50000000\n"
		"dget P C merge b b\nexpect error ENOENT\n"                     /* no snap */
		"dput P C copy b b+1 100\nexpect result == 0\n"                 /* two mms: no overlap */
		"dput P P copy b b+1 100\nexpect error EINVAL\n"                /* overlap in one mm */
		"dput P C copy b ro+8 16\nexpect error EACCES\n"                /* shared read-only bytes */
		"dput P C zero 0x7ffffffff000 2 pages\nexpect error EINVAL\n"   /* beyond user space */
		"dput P C snap\nexpect result == 0\n"
		"dget P C merge b+1 b 4096\nexpect error EINVAL\n"              /* not page aligned */
		"dget P C merge 0x60000000 b\nexpect error EFAULT\n"            /* no parent memory */
		"expect merge conflicts == 0\nexpect merge first_conflict == 0\n", false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	captured_free(&c);

	/* the wrong errno is named */
	c = run_captured("derr.cows", "spawn P\nspawn C\ndget P C merge 0 0 4096\nexpect error EBADE\n",
			 false, false);
	cr_assert_eq(c.status, RUN_EXPECTATION_FAILED);
	cr_assert(strstr(c.err, "derr.cows:4: expect error EBADE: line 3 failed with ENOENT"), "%s", c.err);
	captured_free(&c);

	/* an unacknowledged failure of a dput line fails the run, as any operation's */
	c = run_captured("dfail.cows", "spawn P\nspawn C\ndget P C merge 0 0 4096\n", false, false);
	cr_assert_eq(c.status, RUN_EXPECTATION_FAILED);
	cr_assert(strstr(c.err, "dfail.cows:3: `dget P C merge 0 0 4096` failed with ENOENT"), "%s", c.err);
	captured_free(&c);
}

Test(scenario_run, expect_merge_names_the_value_found)
{
	struct captured c = run_captured("mrg.cows",
		"spawn P\nmmap P d 2 pages at 0x40000000\nwrite P d fill '.'\nspawn C\n"
		"dput P C copy d d\ndput P C snap\n"
		"write C d[1]+5 \"ab\"\nwrite P d[1]+5 \"xy\"\nwrite C d[0] \"c\"\n"
		"dget P C merge d d\nexpect error EBADE\n"
		"expect merge conflicts == 2\nexpect merge first_conflict == d[1]+5\n"
		"expect merge pages_shared == 1\nexpect merge pages_merged == 1 page\n"
		"expect merge conflicts == 3\nexpect merge first_conflict == d[1]+6\n"
		"expect merge P pages_copied > 0\n", TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_EXPECTATION_FAILED, "%s", c.err);
	cr_assert(strstr(c.err, "mrg.cows:16: expect merge conflicts == 3: got 2\n"), "%s", c.err);
	cr_assert(strstr(c.err, "mrg.cows:17: expect merge first_conflict == d[1]+6: got 0x40001005, "
			 "expected 0x40001006"), "%s", c.err);
	cr_assert(strstr(c.err, "mrg.cows:18: expect merge P pages_copied > 0: got 0 pages"), "%s", c.err);
	for (int line = 11; line <= 15; line++) {
		char where[32];
		snprintf(where, sizeof where, "mrg.cows:%d:", line);
		cr_assert(!strstr(c.err, where), "line %d should hold: %s", line, c.err);
	}
	/* the trace prints the merge's report as its result */
	cr_assert(strstr(c.out, "-> error EBADE; merge: conflicts 2 (the first at 0x40001005), "
			 "tables_skipped 0, pages_skipped 0, pages_shared 1, pages_copied 0, pages_merged 1"),
		  "%s", c.out);
	captured_free(&c);
}

Test(scenario_run, dput_phases_print_as_phases_not_faults)
{
	struct captured c = run_captured("ph.cows",
		"spawn P\nmmap P s 4 pages at 0x40000000\nwrite P s fill 1\n"
		"spawn C\nmmap C d 4 pages at 0x50000000\n"
		"dput P C copy s+0x10 d+0x10 0x2ff0\n"
		"dget P C copy s[3] d[0] 16\n"
		"dput P C zero d[1..2]\n", TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *head = find_event(c.out, "C dput phase (not a fault): COPY head 0x50000010-0x50001000 (4080 bytes)",
				      ": copy_bytes");
	cr_assert(head, "%s", c.out);
	const char *middle = find_event(head, "C dput phase (not a fault): COPY middle 0x50001000-0x50003000 (2 pages)",
					": split_vma > anon_vma_fork > copy_page_range");
	cr_assert(middle, "%s", c.out);
	/* a range ending on a page boundary has no tail */
	const char *next = line_after(middle, "COPY middle");
	cr_assert(next && !strstr(next, "COPY tail") && strstr(next, "dget P C copy") == next + 6,
		  "%s", c.out);
	/* a page-multiple delta with no whole page inside: bytes only */
	cr_assert(find_event(c.out, "P dget phase (not a fault): COPY bytes 0x40003000-0x40003010 (16 bytes)",
			     ": copy_bytes"), "%s", c.out);
	cr_assert(find_event(c.out, "C dput phase (not a fault): ZERO middle 0x50001000-0x50003000 (2 pages)",
			     ": do_munmap > mmap_region"), "%s", c.out);
	/* no phase line names frames */
	for (const char *l = find_event(c.out, "phase (not a fault)", NULL); l;
	     l = find_event(strchr(l, '\n') + 1, "phase (not a fault)", NULL)) {
		const char *end = strchr(l, '\n');
		cr_assert(!memmem(l, (size_t)(end - l), "frame", 5), "%.*s", (int)(end - l), l);
	}
	captured_free(&c);

	/* JSON: a "phase" event, not a "fault" one */
	c = run_captured("ph.cows", "spawn P\nmmap P s 2 pages at 0x40000000\nspawn C\n"
			 "dput P C copy s s\n", false, true);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "{\"event\":\"phase\",\"file\":\"ph.cows\",\"line\":4,\"call\":\"dput\","
			 "\"process\":\"C\",\"pid\":2,\"tid\":2,\"address\":\"0x40000000\",\"end\":\"0x40002000\","
			 "\"path\":[\"dput\",\"COPY middle\",\"split_vma > anon_vma_fork > copy_page_range\"]"),
		  "%s", c.out);
	cr_assert(!strstr(c.out, "\"event\":\"fault\""), "%s", c.out);
	captured_free(&c);
}

Test(scenario_run, frames_and_graph_label_a_snapshot_image)
{
	const char *text = "spawn P\nmmap P d 1 page at 0x40000000\nwrite P d 1\nspawn C\n"
			   "dput P C copy d d\ndput P C snap\nwrite C d 2\n";
	char buf[512];
	snprintf(buf, sizeof buf, "%sshow frames\nshow frames C d\nshow maps C\n", text);
	struct captured c = run_captured("snap.cows", buf, false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	/* the old frame: P's, and the image's; C has its own copy now */
	cr_assert(strstr(c.out, " P:40000000 C(snapshot):40000000\n"), "%s", c.out);
	cr_assert(strstr(c.out, "[anon:d]"), "C's VMA is labelled with the region copied into it:\n%s", c.out);
	captured_free(&c);

	snprintf(buf, sizeof buf, "%sshow graph\n", text);
	c = run_captured("snap.cows", buf, false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "p1_snap [shape=box, style=\"rounded,dashed\", label=\"C's snapshot image\\n"
			 "(dput SNAP), 1 page\"];"), "%s", c.out);
	cr_assert(strstr(c.out, "p1_snap -> f6 [style=dotted, label=\"snap 40000000\"];"), "%s", c.out);
	captured_free(&c);

	snprintf(buf, sizeof buf, "%sshow frames\n", text);
	c = run_captured("snap.cows", buf, false, true);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "{\"process\":\"C\",\"pid\":2,\"snapshot\":true,\"address\":\"0x40000000\"}"),
		  "%s", c.out);
	captured_free(&c);
}

/* ---- the examples ----------------------------------------------------------------------------- */

TestSuite(scenario_examples);

Test(scenario_examples, every_example_passes)
{
	glob_t g;
	cr_assert_eq(glob("examples/*.cows", 0, NULL, &g), 0, "no examples/*.cows (run from the top of the tree)");
	cr_assert(g.gl_pathc >= 8, "only %zu examples", g.gl_pathc);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct captured c = run_captured(g.gl_pathv[i], NULL, TRACE_BRIEF, false);
		cr_expect_eq(c.status, RUN_OK, "%s: status %d\n%s", g.gl_pathv[i], c.status, c.err);
		captured_free(&c);
	}
	globfree(&g);
}

Test(scenario_examples, fork_cow_copies_on_the_childs_first_write_and_reuses_after_exit)
{
	struct captured c = run_captured("examples/fork-cow.cows", NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *child = find_event(c.out, "B write ", "do_wp_page > wp_page_copy");
	cr_assert(child, "no COW copy by B in:\n%s", c.out);
	const char *reuse = find_event(child, "A write ", "do_wp_page > wp_page_reuse");
	cr_assert(reuse, "no reuse by A after B's copy in:\n%s", c.out);
	const char *exited = find_event(reuse, "exit B", NULL);
	cr_assert(exited, "%s", c.out);
	const char *after_exit = find_event(exited, "A write ", NULL);
	cr_assert(after_exit && find_event(after_exit, "wp_page_reuse", NULL) == after_exit,
		  "A's write after B exited should be wp_page_reuse:\n%s", c.out);
	cr_assert(!find_event(exited, "wp_page_copy", NULL), "a copy after B exited:\n%s", c.out);
	captured_free(&c);
}

static const struct {
	const char *file;
	const char *first, *second; /* a trace line containing both */
} example_paths[] = {
	{ "examples/zero-page.cows", "A read ", "do_anonymous_page (frame - -> zero)" },
	{ "examples/zero-page.cows", "A write ", "do_wp_page > wp_page_copy (frame zero -> " },
	{ "examples/reuse.cows", "A write ", "do_wp_page > wp_page_reuse" },
	{ "examples/mprotect-cow.cows", "A write ", "do_wp_page > wp_page_copy" },
	{ "examples/mprotect-cow.cows", "B write ", "do_wp_page > wp_page_reuse" },
	{ "examples/dontfork.cows", "B read ", "do_user_addr_fault > bad_area [SIGSEGV]" },
	{ "examples/wipeonfork.cows", "B read ", "do_anonymous_page (frame - -> zero)" },
	{ "examples/shared-mapping.cows", "B read ", "do_read_fault > do_fault_around" }, /* cached: mapped around, no shmem_fault */
	{ "examples/shared-mapping.cows", "A write ", "do_shared_fault" },
	{ "examples/copy-from-user-efault.cows", "A kernel-read 0x40001000", "bad_area [fixup]" },
	{ "examples/copy-from-user-efault.cows", "A kernel-write", "bad_area_access_error [fixup]" },
	{ "examples/ro-pin-unshare.cows", "A unshare ", "do_wp_page > wp_page_copy" },
	{ "examples/ro-pin-unshare.cows", "A unshare ", "handle_pte_fault > do_wp_page (frame 7 -> 7)" },
	{ "examples/ro-pin-unshare.cows", "A write ", "do_wp_page > wp_page_reuse (frame 12 -> 12)" },
	{ "examples/vmsplice-child.cows", "A write ", "do_wp_page > wp_page_copy" },
	{ "examples/forced-write.cows", "B remote-write ", "do_wp_page > wp_page_copy" },
	{ "examples/forced-write.cows", "B remote-write ", "do_anonymous_page" },
	{ "examples/soft-dirty-pin.cows", "A write ", "do_wp_page > wp_page_reuse" },
	{ "examples/dput-copy-unaligned.cows", "C dput phase (not a fault): COPY unaligned", ": copy_bytes" },
	{ "examples/dput-zero.cows", "C dput phase (not a fault): ZERO middle", ": do_munmap > mmap_region" },
	{ "examples/dput-zero.cows", "P dget phase (not a fault): ZERO middle", ": do_munmap > mmap_region" },
	{ "examples/dput-merge.cows", "C dput phase (not a fault): COPY middle",
	  ": split_vma > anon_vma_fork > copy_page_range" },
	{ "examples/dput-merge.cows", "-> error EBADE; merge: conflicts 4", "pages_shared 1" },
};

Test(scenario_examples, each_example_trace_shows_its_kernel_path)
{
	for (size_t i = 0; i < sizeof example_paths / sizeof example_paths[0]; i++) {
		struct captured c = run_captured(example_paths[i].file, NULL, TRACE_BRIEF, false);
		cr_expect_eq(c.status, RUN_OK, "%s: %s", example_paths[i].file, c.err);
		cr_expect(find_event(c.out, example_paths[i].first, example_paths[i].second),
			  "%s: no trace line with '%s' and '%s' in:\n%s", example_paths[i].file,
			  example_paths[i].first, example_paths[i].second, c.out);
		captured_free(&c);
	}
}

Test(scenario_examples, ro_pin_unshare_unshares_at_the_pin_and_reuses_at_the_write)
{
	struct captured c = run_captured("examples/ro-pin-unshare.cows", NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	/* the fault comes from the pin line, as an unshare that copies ... */
	const char *pin = line_after(c.out, "pin A buf[0] longterm as dma");
	cr_assert(pin && !strncmp(pin, "      A unshare ", 16) && find_event(pin, "wp_page_copy", NULL) == pin,
		  "the pin should unshare by copying:\n%s", c.out);
	/* ... and the write after it reuses the pinned page */
	const char *write = line_after(c.out, "write A buf[0] \"written after the pin\"");
	cr_assert(write && find_event(write, "A write ", "wp_page_reuse") == write, "%s", c.out);
	captured_free(&c);
}

Test(scenario_examples, pin_fork_copy_copies_at_fork_time_without_a_fault)
{
	struct captured c = run_captured("examples/pin-fork-copy.cows", NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	/* fork is not a fault: the line after `fork A B` is the next line of the scenario */
	const char *after = line_after(c.out, "  fork A B");
	cr_assert(after && strncmp(after, "      ", 6), "fork printed a fault:\n%s", c.out);
	/* and A's write to its pinned page after fork takes no fault either */
	after = line_after(c.out, "write A buf[0] \"the device sees this\"");
	cr_assert(after && strncmp(after, "      ", 6), "A's write faulted:\n%s", c.out);
	captured_free(&c);
}

Test(scenario_examples, reuse_example_never_copies)
{
	struct captured c = run_captured("examples/reuse.cows", NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(!find_event(c.out, "wp_page_copy", NULL), "reuse.cows copied:\n%s", c.out);
	captured_free(&c);
}

/* The three COPY regions, in order, under the dput line; each a phase, not a fault. */
static void expect_copy_regions(const char *file, const char *line)
{
	struct captured c = run_captured(file, NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s: %s", file, c.err);
	const char *at = find_event(c.out, line, NULL);
	cr_assert(at, "%s: no line '%s' in:\n%s", file, line, c.out);
	const char *head = line_after(c.out, line);
	cr_assert(head && find_event(head, "dput phase (not a fault): COPY head", ": copy_bytes") == head,
		  "%s: the head memcpy should follow '%s':\n%s", file, line, c.out);
	const char *middle = line_after(head, "COPY head");
	cr_assert(middle && find_event(middle, "dput phase (not a fault): COPY middle",
				       ": split_vma > anon_vma_fork > copy_page_range") == middle,
		  "%s: the COW middle should follow the head:\n%s", file, c.out);
	const char *tail = line_after(middle, "COPY middle");
	cr_assert(tail && find_event(tail, "dput phase (not a fault): COPY tail", ": copy_bytes") == tail,
		  "%s: the tail memcpy should follow the middle:\n%s", file, c.out);
	captured_free(&c);
}

Test(scenario_examples, dput_copy_shows_the_three_regions_and_cow_breaks_on_both_sides)
{
	expect_copy_regions("examples/dput-copy.cows", "dput P C copy src+0x100 dst+0x100 0x5f80");
	struct captured c = run_captured("examples/dput-copy.cows", NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *copy = find_event(c.out, "dput P C copy", NULL);
	/* the copy itself takes no fault: the head and tail pages were C's own, exclusive */
	const char *fault = find_event(copy, "handle_mm_fault", NULL);
	const char *child = find_event(copy, "C write ", "do_wp_page > wp_page_copy");
	const char *parent = child ? find_event(child, "P write ", "do_wp_page > wp_page_copy") : NULL;
	cr_assert(child && fault == child, "C's write should be the first fault after the copy:\n%s", c.out);
	cr_assert(parent, "P's write should break COW too:\n%s", c.out);
	cr_assert(find_event(parent, "P write ", "do_wp_page > wp_page_reuse"), "%s", c.out);
	cr_assert(find_event(parent, "P dget phase (not a fault): COPY middle", NULL), "%s", c.out);
	captured_free(&c);
}

Test(scenario_examples, each_dput_example_shows_its_regions)
{
	/* unaligned: one region, every byte; no middle, nothing split */
	struct captured c = run_captured("examples/dput-copy-unaligned.cows", NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(find_event(c.out, "COPY unaligned 0x50000180-0x50003180 (12288 bytes)", ": copy_bytes"),
		  "%s", c.out);
	cr_assert(!find_event(c.out, "COPY middle", NULL) && !find_event(c.out, "COPY head", NULL), "%s", c.out);
	captured_free(&c);

	/* zero: the head and tail are cleared in place, the middle replaced */
	c = run_captured("examples/dput-zero.cows", NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *zero = line_after(c.out, "dput P C zero dst+0x800 0x2000");
	cr_assert(zero && find_event(zero, "C dput phase (not a fault): ZERO head 0x50000800-0x50001000 (2048 bytes)",
				     ": copy_bytes") == zero, "%s", c.out);
	cr_assert(find_event(zero, "C dput phase (not a fault): ZERO middle 0x50001000-0x50002000 (1 page)",
			     ": do_munmap > mmap_region"), "%s", c.out);
	cr_assert(find_event(zero, "C dput phase (not a fault): ZERO tail 0x50002000-0x50002800 (2048 bytes)",
			     ": copy_bytes"), "%s", c.out);
	cr_assert(find_event(c.out, "dput P C zero ro+16 32", NULL) &&
		  find_event(line_after(c.out, "dput P C zero ro+16 32"), "-> error EACCES", NULL) ==
			  line_after(c.out, "dput P C zero ro+16 32"), "%s", c.out);
	captured_free(&c);

	/* merge: the fork's COPY is all middle; the merge reports its conflict */
	c = run_captured("examples/dput-merge.cows", NULL, TRACE_BRIEF, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *copy = line_after(c.out, "dput P C copy data data");
	cr_assert(copy && find_event(copy, "COPY middle 0x40000000-0x40004000 (4 pages)", NULL) == copy, "%s", c.out);
	const char *merge = line_after(c.out, "dget P C merge data data");
	cr_assert(merge && find_event(merge, "-> error EBADE; merge: conflicts 4 (the first at 0x40003008)",
				      "pages_skipped 1, pages_shared 1, pages_copied 0, pages_merged 2") == merge,
		  "%s", c.out);
	cr_assert(find_event(c.out, " C(snapshot):40000000", NULL), "%s", c.out);
	captured_free(&c);
}
