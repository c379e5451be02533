/*
 * test_trace.c - the reasoned fault trace: the library's step stream (cowvm_set_trace) and the
 * three ways `cowvm run` renders it from the step log.
 *
 *   stream:  ENTER and LEAVE pair up, depth returns to 0, notes carry reasons; nothing is
 *            reported once the function is cleared;
 *   --trace: the COW break of fork-cow is seed 000's figure 4-20 in the order cowvm performs
 *            it, with the right nesting and the reason it copied; the parent's later write
 *            says why it reused; seed 003's do_anonymous_page (zero page on read, a zeroed
 *            page on write); fork's and exit's counts;
 *   --trace=brief: one line per fault with its rule;
 *   --json:  every line parses as JSON (a small parser below), the first names schema 1,
 *            enter/leave balance, the decision is a note and the fault names its rule.
 *
 * Built with the tools' sources (as test_scenario); run from the top of the tree.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cowvm.h"
#include "driver.h"
#include "testutil.h"

/* ---- running a scenario with its output captured ---------------------------------------------- */

struct captured {
	int status;
	char *out, *err;
};

static struct captured run_mode(const char *name, const char *text, bool trace, bool brief, bool json)
{
	struct captured c = { 0 };
	size_t out_len = 0, err_len = 0;
	FILE *out = open_memstream(&c.out, &out_len);
	FILE *err = open_memstream(&c.err, &err_len);
	cr_assert(out && err, "open_memstream failed");
	struct run_opts opts = { .trace = trace, .brief = brief, .json = json, .err = err };
	c.status = text ? scenario_run_text(name, text, &opts, out) : scenario_run_file(name, &opts, out);
	fclose(out);
	fclose(err);
	return c;
}

static void captured_free(struct captured *c)
{
	free(c->out);
	free(c->err);
}

/* The start of the first line at or after from that contains text, or NULL. */
static const char *line_with(const char *from, const char *text)
{
	const char *at = from ? strstr(from, text) : NULL;
	if (!at)
		return NULL;
	while (at > from && at[-1] != '\n')
		at--;
	return at;
}

static int indent_of(const char *line)
{
	int n = 0;
	while (line[n] == ' ')
		n++;
	return n;
}

static const char *next_line(const char *line)
{
	const char *nl = strchr(line, '\n');
	return nl ? nl + 1 : NULL;
}

/* One expected line of a call tree: it starts (after its indentation) with `start`, sits
 * `depth` levels below the tree's first line, and contains `also` if given. */
struct tree_line {
	const char *start;
	int depth;
	const char *also;
};

/*
 * The lines of the tree that begins at `root` (the lines after it that are indented deeper)
 * contain the expected lines in this order, each at its depth (2 columns a level).  Lines in
 * between are allowed; a line missing, out of order or at the wrong depth fails.
 */
static void expect_tree(const char *root, const struct tree_line *want, int n, const char *all)
{
	cr_assert(root, "no tree root in:\n%s", all);
	int base = indent_of(root);
	const char *line = root;
	for (int k = 0; k < n; k++) {
		bool found = false;
		for (; line && *line; line = next_line(line)) {
			int ind = indent_of(line);
			if (line != root && ind <= base)
				break; /* the tree ended */
			const char *nl = strchr(line, '\n');
			size_t len = nl ? (size_t)(nl - line) : strlen(line);
			char buf[2048];
			if (len >= sizeof buf)
				len = sizeof buf - 1;
			memcpy(buf, line, len);
			buf[len] = 0;
			if (!strncmp(buf + ind, want[k].start, strlen(want[k].start)) &&
			    (!want[k].also || strstr(buf, want[k].also))) {
				cr_assert_eq(ind, base + 2 * want[k].depth, "'%s' at indent %d, expected %d:\n%s",
					     want[k].start, ind, base + 2 * want[k].depth, all);
				found = true;
				line = next_line(line);
				break;
			}
		}
		cr_assert(found, "the tree lacks '%s'%s%s (depth %d) in order:\n%s", want[k].start,
			  want[k].also ? " with " : "", want[k].also ? want[k].also : "", want[k].depth, all);
	}
}

/* The text of the tree under root (root's line and the deeper lines after it), malloc'd. */
static char *tree_text(const char *root)
{
	int base = indent_of(root);
	const char *line = next_line(root);
	while (line && *line && indent_of(line) > base)
		line = next_line(line);
	size_t len = line ? (size_t)(line - root) : strlen(root);
	char *s = strndup(root, len);
	cr_assert(s);
	return s;
}

/* ---- the library's stream ---------------------------------------------------------------------- */

struct stream_count {
	int enters, leaves, notes, decisions, depth, max_depth, bad_depth;
	int copy_decisions, reuse_decisions;
};

static void count_event(void *arg, const struct cowvm_trace_event *ev)
{
	struct stream_count *n = arg;
	switch (ev->kind) {
	case COWVM_TRACE_ENTER:
		if (ev->depth != n->depth)
			n->bad_depth++;
		n->enters++;
		n->depth++;
		if (n->depth > n->max_depth)
			n->max_depth = n->depth;
		break;
	case COWVM_TRACE_LEAVE:
		n->leaves++;
		n->depth--;
		if (ev->depth != n->depth)
			n->bad_depth++;
		break;
	case COWVM_TRACE_NOTE:
		n->notes++;
		if (ev->depth != n->depth)
			n->bad_depth++;
		if (ev->decision) {
			n->decisions++;
			n->copy_decisions += !strcmp(ev->name, "copy");
			n->reuse_decisions += !strcmp(ev->name, "reuse");
			if (!ev->reason || !*ev->reason)
				n->bad_depth++;
		}
		break;
	}
}

Test(trace_stream, enters_and_leaves_pair_up_and_decisions_carry_reasons)
{
	static struct stream_count n;
	tu_setup();
	memset(&n, 0, sizeof n);
	cowvm_task_t *a = tu_spawn();
	int64_t buf = cowvm_mmap(a, 0, 2 * COWVM_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
	cr_assert(buf > 0);
	cowvm_set_trace(tu_vm, count_event, &n);
	cr_assert_eq(cowvm_write(a, (uint64_t)buf, "x", 1), 0);   /* a new page */
	cowvm_task_t *b = tu_fork(a);
	cr_assert_eq(cowvm_write(b, (uint64_t)buf, "y", 1), 0);   /* copy */
	cr_assert_eq(cowvm_write(a, (uint64_t)buf, "z", 1), 0);   /* reuse */
	tu_exit(b);
	cowvm_set_trace(tu_vm, NULL, NULL);
	int enters = n.enters;
	cr_assert_eq(cowvm_write(a, (uint64_t)buf + COWVM_PAGE_SIZE, "w", 1), 0); /* not traced */

	cr_assert_eq(n.enters, n.leaves, "%d enters, %d leaves", n.enters, n.leaves);
	cr_assert_eq(n.depth, 0);
	cr_assert_eq(n.bad_depth, 0, "events at the wrong depth or decisions without a reason");
	cr_assert_eq(n.enters, enters, "events after the trace function was cleared");
	cr_assert(n.max_depth >= 6, "the COW break nests 6 deep, saw %d", n.max_depth);
	cr_assert_eq(n.copy_decisions, 1);
	cr_assert_eq(n.reuse_decisions, 1);
	cr_assert_eq(n.decisions, 3, "new page, copy, reuse: %d decisions", n.decisions);
	tu_teardown();
}

/* ---- --trace ------------------------------------------------------------------------------------ */

Test(trace_text, fork_cow_break_is_figure_4_20_in_order_with_nesting_and_reason)
{
	struct captured c = run_mode("examples/fork-cow.cows", NULL, true, false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *line27 = line_with(c.out, "  27  write B buf[0]");
	const char *header = line_with(line27, "B write 0x7ffff7ffd000: ");
	cr_assert(header, "%s", c.out);
	cr_assert(strstr(header, "do_wp_page > wp_page_copy (frame 6 -> 12)"), "%s", c.out);
	const char *root = line_with(header, "handle_mm_fault  ");
	cr_assert(root == next_line(header), "the tree follows its fault's line:\n%s", c.out);
	static const struct tree_line fig[] = {
		{ "__handle_mm_fault", 1, NULL },
		{ "handle_pte_fault", 2, NULL },
		{ "# pte present", 3, "bits=read-only" },
		{ "do_wp_page", 3, NULL },
		{ "vm_normal_page", 4, "frame=6" },
		{ "why: copy", 4, "anon-exclusive=no, mapcount=2, refcount=2, swap-cache=no" },
		{ "wp_page_copy", 4, "old=6" },
		{ "anon_vma_prepare", 5, NULL },
		{ "# found", 6, NULL },
		{ "alloc_page_vma", 5, "frame=12" },
		{ "cow_user_page", 5, "from=6, to=12" },
		{ "ptep_clear_flush", 5, NULL },
		{ "flush_tlb_page", 6, NULL },
		{ "page_add_new_anon_rmap", 5, "frame=12" },
		{ "lru_cache_add_active", 5, "frame=12" },
		{ "set_pte_at", 5, "pte=writable dirty young" },
		{ "page_remove_rmap", 5, "frame=6, mapcount=1" },
	};
	expect_tree(root, fig, sizeof fig / sizeof fig[0], c.out);

	/* A's write afterwards: reuse, with the rule that allowed it, and no copy */
	const char *reuse = line_with(line_with(c.out, "  36  write A buf[0]"), "handle_mm_fault  ");
	static const struct tree_line reused[] = {
		{ "do_wp_page", 3, NULL },
		{ "why: reuse", 4, "refcount 1" },
		{ "wp_page_reuse", 4, "frame=6" },
		{ "ptep_set_access_flags", 5, "pte=writable" },
	};
	expect_tree(reuse, reused, sizeof reused / sizeof reused[0], c.out);
	char *tree = tree_text(reuse);
	cr_assert(!strstr(tree, "wp_page_copy") && !strstr(tree, "cow_user_page"), "reuse copied:\n%s", tree);
	cr_assert(strstr(tree, "anon-exclusive=no, mapcount=1, refcount=1"), "%s", tree);
	free(tree);

	/* after B exited, A's write to the other page reuses too */
	const char *after = line_with(line_with(c.out, "  48  write A buf[1]"), "handle_mm_fault  ");
	static const struct tree_line last[] = { { "why: reuse", 4, NULL }, { "wp_page_reuse", 4, "frame=7" } };
	expect_tree(after, last, 2, c.out);
	captured_free(&c);
}

Test(trace_text, do_anonymous_page_maps_the_zero_page_on_read_and_a_zeroed_page_on_write)
{
	struct captured c = run_mode("anon.cows", "spawn A\nmmap A b 2 pages\nread A b[0]\nwrite A b[1] 1\n"
				     "write A b[0] 2\n", true, false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *read = line_with(line_with(c.out, "read A b[0]"), "handle_mm_fault  ");
	static const struct tree_line zero[] = {
		{ "# pte none", 3, "frame=-" },
		{ "do_anonymous_page", 3, NULL },
		{ "why: zero page", 4, "read-only" },
		{ "set_pte_at", 4, "frame=zero, pte=read-only young special" },
	};
	expect_tree(read, zero, sizeof zero / sizeof zero[0], c.out);
	cr_assert(line_with(c.out, "A read 0x") && strstr(line_with(c.out, "A read 0x"), "(frame - -> zero)"),
		  "the zero page is named, no frame is '-':\n%s", c.out);

	const char *write = line_with(line_with(c.out, "write A b[1] 1"), "handle_mm_fault  ");
	static const struct tree_line fresh[] = {
		{ "do_anonymous_page", 3, NULL },
		{ "why: new page", 4, NULL },
		{ "anon_vma_prepare", 4, NULL },
		{ "# new", 5, "anon_vma=1" },
		{ "alloc_zeroed_user_page", 4, "frame=" },
		{ "page_add_new_anon_rmap", 4, "anon-exclusive=yes" },
		{ "lru_cache_add_active", 4, "list=active anon" },
		{ "set_pte_at", 4, "pte=writable dirty young" },
	};
	expect_tree(write, fresh, sizeof fresh / sizeof fresh[0], c.out);

	/* a write over the zero page: wp_page_copy with a zeroed page, nothing to remove */
	const char *over = line_with(line_with(c.out, "write A b[0] 2"), "handle_mm_fault  ");
	static const struct tree_line cow_zero[] = {
		{ "vm_normal_page", 4, "frame=zero" },
		{ "why: copy", 4, "the zero page is never written" },
		{ "wp_page_copy", 4, "old=zero" },
		{ "# found", 6, NULL },
		{ "alloc_zeroed_user_page", 5, NULL },
		{ "set_pte_at", 5, NULL },
		{ "# zero page", 5, "nothing to remove" },
	};
	expect_tree(over, cow_zero, sizeof cow_zero / sizeof cow_zero[0], c.out);
	captured_free(&c);
}

/*
 *   b: [ written | written | written | read (zero page) ]   fork A B, then B exits, then A
 */
Test(trace_text, fork_and_exit_print_their_steps_with_counts)
{
	struct captured c = run_mode("fx.cows", "spawn A\nmmap A b 4 pages\nwrite A b[0..2] 1\nread A b[3]\n"
				     "fork A B\nexit B\nexit A\n", true, false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *fork = line_with(c.out, "copy_process [A]");
	static const struct tree_line forked[] = {
		{ "dup_mmap", 1, "vmas=1" },
		{ "anon_vma_fork", 2, NULL },
		{ "copy_page_range", 2, "cow=yes" },
		{ "# copied", 3, "ptes shared=4, write-protected=3, made non-exclusive=3, pinned pages copied=0, "
				 "zero page=1" },
		{ "flush_tlb_mm", 2, NULL },
	};
	expect_tree(fork, forked, sizeof forked / sizeof forked[0], c.out);

	/* B's exit frees only its page tables (the PUD, PMD and PTE tables): A still maps the
	 * pages; A's exit frees the three pages and its tables */
	static const struct tree_line exit_b[] = {
		{ "exit_mmap", 1, "vmas=1, rss=3" },
		{ "unmap_page_range", 2, NULL },
		{ "zap_pte_range", 3, "ptes cleared=4, anon=3, shmem=0, zero page=1, last mapping gone=0" },
		{ "tlb_finish_mmu", 2, "frames freed=3" },
	};
	expect_tree(line_with(c.out, "do_exit [B]"), exit_b, sizeof exit_b / sizeof exit_b[0], c.out);
	static const struct tree_line exit_a[] = {
		{ "zap_pte_range", 3, "ptes cleared=4, anon=3, shmem=0, zero page=1, last mapping gone=3" },
		{ "tlb_finish_mmu", 2, "frames freed=6" },
	};
	expect_tree(line_with(c.out, "do_exit [A]"), exit_a, sizeof exit_a / sizeof exit_a[0], c.out);
	captured_free(&c);

	/* a pinned page is copied at fork, the other shared */
	c = run_mode("examples/pin-fork-copy.cows", NULL, true, false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	static const struct tree_line pinned[] = {
		{ "copy_page_range", 2, NULL },
		{ "copy_present_page", 3, "refcount=1025" },
		{ "why: copy at fork", 4, "may be pinned" },
		{ "alloc_page_vma", 4, NULL },
		{ "page_add_new_anon_rmap", 4, NULL },
		{ "# copied", 3, "ptes shared=1, write-protected=1, made non-exclusive=1, pinned pages copied=1" },
	};
	expect_tree(line_with(c.out, "copy_process [A]"), pinned, sizeof pinned / sizeof pinned[0], c.out);
	captured_free(&c);
}

Test(trace_text, pin_munmap_mprotect_madvise_and_dput_print_their_steps)
{
	struct captured c = run_mode("ops.cows", "spawn A\nmmap A b 4 pages\nwrite A b[0..3] 1\nfork A B\n"
				     "pin A b[0] as ro\nunpin ro\nmprotect A b[1] r\nmadvise A b[2] dontneed\n"
				     "munmap A b[3]\n", true, false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	static const struct tree_line pin[] = {
		{ "follow_page_pte", 1, "must unshare" },
		{ "A unshare 0x", 1, "wp_page_copy" },
		{ "handle_mm_fault", 2, "access=unshare" },
		{ "why: unshare", 6, "read-only pin" },
		{ "follow_page_pte", 1, "result=held" },
		{ "# held", 1, "pin bias" },
	};
	expect_tree(line_with(c.out, "pin_user_pages [A]"), pin, sizeof pin / sizeof pin[0], c.out);
	cr_assert(line_with(c.out, "unpin_user_pages") &&
		  strstr(line_with(c.out, "# released"), "its refcount=1"), "%s", c.out);
	static const struct tree_line prot[] = { { "change_protection", 1, "ptes changed=0, made writable=0, tlb flushed=no" } };
	expect_tree(line_with(c.out, "do_mprotect_pkey [A]"), prot, 1, c.out);
	static const struct tree_line adv[] = {
		{ "madvise_vma_behavior", 1, NULL },
		{ "unmap_page_range", 1, NULL },
		{ "zap_pte_range", 2, "ptes cleared=1" },
	};
	expect_tree(line_with(c.out, "do_madvise [A]"), adv, 3, c.out);
	static const struct tree_line unmap[] = {
		{ "do_munmap", 1, NULL },
		{ "zap_pte_range", 3, "ptes cleared=1, anon=1" },
		{ "tlb_finish_mmu", 2, NULL },
	};
	expect_tree(line_with(c.out, "munmap [A]"), unmap, 3, c.out);
	captured_free(&c);

	c = run_mode("examples/dput-copy.cows", NULL, true, false, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	const char *dput = line_with(c.out, "dput [P]");
	cr_assert(dput && strstr(dput, "op=COPY"), "%s", c.out);
	static const struct tree_line copy[] = {
		{ "C dput phase (not a fault): COPY head", 1, NULL },
		{ "C dput phase (not a fault): COPY middle", 1, NULL },
		{ "do_munmap", 1, NULL },
		{ "anon_vma_fork", 1, NULL },
		{ "copy_page_range", 1, NULL },
		{ "# copied", 2, "ptes shared=5" },
		{ "C dput phase (not a fault): COPY tail", 1, NULL },
	};
	expect_tree(dput, copy, sizeof copy / sizeof copy[0], c.out);
	captured_free(&c);
}

Test(trace_text, brief_prints_one_line_per_fault_with_its_rule)
{
	struct captured c = run_mode("examples/fork-cow.cows", NULL, false, true, false);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(!strstr(c.out, "handle_mm_fault  ") && !strstr(c.out, "copy_process"),
		  "brief printed call trees:\n%s", c.out);
	int faults = 0;
	for (const char *l = c.out; l && *l; l = next_line(l))
		faults += !strncmp(l, "      A write ", 14) || !strncmp(l, "      B write ", 14);
	cr_assert_eq(faults, 5, "%d fault lines:\n%s", faults, c.out);
	const char *copy = line_with(c.out, "B write 0x7ffff7ffd000");
	cr_assert(copy && !strncmp(strstr(copy, "(frame 6 -> 12)"), "(frame 6 -> 12)  # copy\n", 24), "%s", c.out);
	cr_assert(strstr(line_with(c.out, "  36  write A"), "wp_page_reuse (frame 6 -> 6)  # reuse"), "%s", c.out);
	captured_free(&c);
}

/* ---- --json --------------------------------------------------------------------------------------- */

/* A small JSON reader: enough to say whether a text is one valid JSON value. */
static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

static const char *json_str(const char *p)
{
	if (*p != '"')
		return NULL;
	for (p++; *p && *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)p[i]))
						return NULL;
				p += 4;
			} else if (!strchr("\"\\/bfnrt", *p) || !*p) {
				return NULL;
			}
		}
	}
	return *p == '"' ? p + 1 : NULL;
}

static const char *json_value(const char *p)
{
	p = json_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		p = json_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				p = json_str(json_ws(p));
				if (!p || *(p = json_ws(p)) != ':')
					return NULL;
				p++;
			}
			p = json_value(p);
			if (!p)
				return NULL;
			p = json_ws(p);
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p++;
		}
	}
	if (*p == '"')
		return json_str(p);
	if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	const char *start = p;
	if (*p == '-')
		p++;
	while (isdigit((unsigned char)*p) || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-')
		p++;
	return p > start ? p : NULL;
}

Test(trace_json, every_line_parses_names_schema_1_and_carries_the_steps)
{
	struct captured c = run_mode("examples/fork-cow.cows", NULL, false, false, true);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	int lines = 0, enters = 0, leaves = 0;
	for (char *line = c.out; line && *line; line = (char *)next_line(line)) {
		char *nl = strchr(line, '\n');
		cr_assert(nl, "unterminated line");
		*nl = 0;
		const char *end = json_value(line);
		cr_assert(end && *json_ws(end) == 0, "not one JSON value: %s", line);
		if (lines == 0)
			cr_assert(!strncmp(line, "{\"event\":\"run\",\"file\":\"examples/fork-cow.cows\",\"schema\":1}", 58),
				  "the first line names the schema: %s", line);
		enters += !strncmp(line, "{\"event\":\"enter\"", 16);
		leaves += !strncmp(line, "{\"event\":\"leave\"", 16);
		*nl = '\n';
		lines++;
	}
	cr_assert(enters > 50 && enters == leaves, "%d enters, %d leaves", enters, leaves);
	cr_assert(strstr(c.out, "\"what\":\"copy\",\"why\":\"not anon-exclusive and refcount above 1"),
		  "%s", c.out);
	cr_assert(strstr(c.out, "\"decision\":true,\"facts\":{\"anon-exclusive\":false,\"mapcount\":2,"
			 "\"refcount\":2,\"swap-cache\":false}"), "%s", c.out);
	cr_assert(strstr(c.out, "\"fn\":\"cow_user_page\",\"facts\":{\"from\":6,\"to\":12,\"bytes\":4096}"),
		  "%s", c.out);
	cr_assert(strstr(c.out, "\"new_frame\":12,\"outcome\":\"ok\",\"rule\":\"copy\""), "%s", c.out);
	cr_assert(strstr(c.out, "\"rule\":\"reuse\""), "%s", c.out);
	cr_assert(strstr(c.out, "\"fn\":\"copy_page_range\""), "%s", c.out);
	captured_free(&c);

	/* the zero page is "zero", no frame null */
	c = run_mode("z.cows", "spawn A\nmmap A b 1 page\nread A b\n", false, false, true);
	cr_assert_eq(c.status, RUN_OK, "%s", c.err);
	cr_assert(strstr(c.out, "\"frame\":null"), "%s", c.out);
	cr_assert(strstr(c.out, "\"fn\":\"set_pte_at\",\"facts\":{\"frame\":\"zero\""), "%s", c.out);
	captured_free(&c);
}
