/*
 * test_explorer.c - `cowvm run --html`, the explorer, in a real browser: Debian's chromium,
 * headless, with --dump-dom (the DOM after the page's script ran) and --screenshot.
 *
 * For three examples (fork-cow, the dput COPY of dput-copy, the pinned page at fork of
 * pin-fork-copy) the page is generated and
 *   - opened once at #walk: the page steps through every step with the → key, as a person
 *     would, and records what each step showed; the test checks that every step was reached
 *     in order, the fragment followed, and no script error or console.error happened;
 *   - opened at #step=N for named steps (found by their scenario line in the timeline), where
 *     the test asserts what the page shows through its data-* attributes: "after line 27 the
 *     frame B's buf[0] maps is mapped by B only, refcount 1", "after the fork the pinned frame
 *     is held by dma, refcount 1025, and B has its own copy" ...;
 *   - screenshots kept as build/explorer-NAME-stepN.png.
 * Also: text from a scenario cannot inject markup; an unwritable FILE exits 2; --dot-steps
 * writes one Graphviz picture per step, with a legend.
 * Skipped with a message when /usr/bin/chromium is missing (CI installs it).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "testutil.h"

#ifndef TEST_BUILD_DIR
#define TEST_BUILD_DIR "build"
#endif
#define CHROMIUM "/usr/bin/chromium"

static void need_chromium(void)
{
	if (access(CHROMIUM, X_OK))
		cr_skip_test("no " CHROMIUM " (Debian's chromium; .ci/run installs it): explorer not tested in a browser");
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	cr_assert(f, "cannot read %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	cr_assert(buf);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = 0;
	fclose(f);
	return buf;
}

/* `cowvm run --html OUT FILE...`, quietly; its exit status. */
static int run_html(const char *out, const char *file, const char *file2)
{
	char *argv[] = { "run", "--html", (char *)out, (char *)file, (char *)file2, NULL };
	fflush(stdout);
	int saved = dup(1), null = open("/dev/null", 1);
	dup2(null, 1);
	int status = run_command(file2 ? 5 : 4, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(null);
	return status;
}

/* Load file://PATH#FRAGMENT in headless chromium; the DOM after the script ran (or, with
 * png, a screenshot and NULL). */
static char *browse(const char *html, const char *fragment, const char *png)
{
	char abs[4096], cmd[16384], dom[4200], profile[] = "/tmp/cowvm-explorer-XXXXXX";
	cr_assert(realpath(html, abs), "realpath %s", html);
	cr_assert(mkdtemp(profile));
	snprintf(dom, sizeof dom, "%s.dom", html);
	snprintf(cmd, sizeof cmd,
		 "timeout 60 " CHROMIUM " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
		 "--disable-background-networking --disable-component-update --disable-sync "
		 "--user-data-dir=%s %s%s %s 'file://%s#%s' >%s 2>/dev/null; rm -rf %s",
		 profile, png ? "--window-size=1280,900 --screenshot=" : "--dump-dom", png ? png : "",
		 "", abs, fragment, png ? "/dev/null" : dom, profile);
	int rc = system(cmd);
	cr_assert_eq(rc, 0, "chromium failed (%d): %s", rc, cmd);
	if (png)
		return NULL;
	char *text = read_file(dom);
	unlink(dom);
	cr_assert(strstr(text, "</html>"), "no DOM from chromium for %s#%s", html, fragment);
	return text;
}

/* No script error and no console.error on the page. */
static void no_errors(const char *dom, const char *where)
{
	cr_assert(strstr(dom, "<pre id=\"errors\" data-count=\"0\"></pre>"), "script errors at %s: %.400s", where,
		  strstr(dom, "<pre id=\"errors\"") ? strstr(dom, "<pre id=\"errors\"") : "(no #errors)");
}

/* The opening tag <TAG ...> that contains every needle (NULL-terminated), copied; NULL if none. */
static char *find_tag(const char *dom, const char *tag, const char *const *needles)
{
	char open[32];
	snprintf(open, sizeof open, "<%s ", tag);
	for (const char *at = strstr(dom, open); at; at = strstr(at + 1, open)) {
		const char *end = strchr(at, '>');
		if (!end)
			return NULL;
		size_t n = (size_t)(end - at);
		char *t = strndup(at, n);
		bool all = true;
		for (int i = 0; needles[i] && all; i++)
			all = strstr(t, needles[i]) != NULL;
		if (all)
			return t;
		free(t);
	}
	return NULL;
}

/* The value of attribute NAME in a tag (one of four static buffers, so two can be compared). */
static const char *attr(const char *tag, const char *name)
{
	static char values[4][256];
	static int next;
	char *value = values[next++ % 4];
	char key[64];
	snprintf(key, sizeof key, " %s=\"", name);
	const char *at = strstr(tag, key);
	cr_assert(at, "no %s in %s", name, tag);
	at += strlen(key);
	const char *end = strchr(at, '"');
	snprintf(value, sizeof values[0], "%.*s", (int)(end - at), at);
	return value;
}

/* The global step of the first timeline entry of scenario line `line`. */
static int step_of_line(const char *dom, int line)
{
	char needle[64];
	snprintf(needle, sizeof needle, "data-line=\"%d\"", line);
	const char *const n[] = { needle, "data-step=", NULL };
	char *t = find_tag(dom, "li", n);
	cr_assert(t, "no timeline entry for line %d", line);
	int step = atoi(attr(t, "data-step"));
	free(t);
	return step;
}

/* #walk: every step reached in order by the → key, with no error; returns the step count. */
static int walk_every_step(const char *html)
{
	char *dom = browse(html, "walk", NULL);
	no_errors(dom, "#walk");
	const char *w = strstr(dom, "<pre id=\"walk\" data-done=\"1\" data-steps=\"");
	cr_assert(w, "the walk did not finish: %.300s", strstr(dom, "<pre id=\"walk\""));
	int steps = atoi(w + strlen("<pre id=\"walk\" data-done=\"1\" data-steps=\""));
	cr_assert_gt(steps, 10);
	const char *at = w;
	for (int i = 0; i < steps; i++) {
		char want[32];
		snprintf(want, sizeof want, "step=%d line=", i);
		const char *hit = strstr(at, want);
		cr_assert(hit, "the walk never showed step %d of %d", i, steps);
		at = hit + 1;
	}
	/* and the timeline lists them all */
	char last[48];
	snprintf(last, sizeof last, "id=\"step%d\"", steps - 1);
	cr_assert(strstr(dom, last), "the timeline lacks step %d", steps - 1);
	free(dom);
	return steps;
}

static char *at_step(const char *html, int step)
{
	char frag[32], want[64];
	snprintf(frag, sizeof frag, "step=%d", step);
	char *dom = browse(html, frag, NULL);
	no_errors(dom, frag);
	snprintf(want, sizeof want, "<main id=\"view\" data-step=\"%d\"", step);
	cr_assert(strstr(dom, want), "#%s did not select step %d", frag, step);
	return dom;
}

/* The PTE row of PROCESS's page LABEL, copied. */
static char *pte_row(const char *dom, const char *process, const char *label)
{
	char p[64], l[64];
	snprintf(p, sizeof p, "data-process=\"%s\"", process);
	snprintf(l, sizeof l, "data-page=\"%s\"", label);
	const char *const n[] = { p, l, "data-addr=", NULL };
	char *t = find_tag(dom, "tr", n);
	cr_assert(t, "no PTE row for %s %s", process, label);
	return t;
}

static char *frame_row(const char *dom, const char *frame)
{
	char f[64];
	snprintf(f, sizeof f, "data-frame=\"%s\" data-state=", frame);
	const char *const n[] = { f, NULL };
	char *t = find_tag(dom, "tr", n);
	cr_assert(t, "no frame row for frame %s", frame);
	return t;
}

static void screenshot(const char *html, const char *name, int step)
{
	char png[256], frag[32];
	snprintf(png, sizeof png, TEST_BUILD_DIR "/explorer-%s-step%d.png", name, step);
	snprintf(frag, sizeof frag, "step=%d", step);
	unlink(png);
	browse(html, frag, png);
	cr_assert_eq(access(png, R_OK), 0, "no screenshot %s", png);
}

Test(explorer, fork_cow_every_step_and_the_cow_break_at_line_27)
{
	need_chromium();
	const char *html = TEST_BUILD_DIR "/explorer-fork-cow.html";
	cr_assert_eq(run_html(html, "examples/fork-cow.cows", NULL), 0);
	walk_every_step(html);
	char *dom = browse(html, "step=0", NULL);
	int fork_step = step_of_line(dom, 22), write_step = step_of_line(dom, 27);
	free(dom);

	/* line 22 (after fork): A's buf[0] frame is mapped by A and B, read-only both, mapcount 2 */
	dom = at_step(html, fork_step);
	char *a = pte_row(dom, "A", "buf[0]"), *b = pte_row(dom, "B", "buf[0]");
	char frame[32];
	snprintf(frame, sizeof frame, "%s", attr(a, "data-frame"));
	cr_assert_str_eq(attr(b, "data-frame"), frame);
	cr_assert_str_eq(attr(a, "data-writable"), "0");
	cr_assert_str_eq(attr(b, "data-anon-exclusive"), "0");
	char *f = frame_row(dom, frame);
	cr_assert_str_eq(attr(f, "data-mapped-by"), "A B");
	cr_assert_str_eq(attr(f, "data-mapcount"), "2");
	cr_assert(strstr(dom, "data-held=\"1\" data-failed=\"0\""), "line 22's expectation is not shown as held");
	free(a); free(b); free(f); free(dom);

	/* line 27: B's write copies: B's buf[0] is a new frame, mapped by B only, refcount 1,
	 * writable and anon-exclusive, highlighted as changed; the fault tree says copy */
	dom = at_step(html, write_step);
	b = pte_row(dom, "B", "buf[0]");
	cr_assert_str_neq(attr(b, "data-frame"), frame, "B still maps the shared frame after line 27");
	cr_assert_str_eq(attr(b, "data-writable"), "1");
	cr_assert_str_eq(attr(b, "data-anon-exclusive"), "1");
	cr_assert_str_eq(attr(b, "data-changed"), "1");
	f = frame_row(dom, attr(b, "data-frame"));
	cr_assert_str_eq(attr(f, "data-mapped-by"), "B");
	cr_assert_str_eq(attr(f, "data-refcount"), "1");
	cr_assert_str_eq(attr(f, "data-mapcount"), "1");
	char *old = frame_row(dom, frame);
	cr_assert_str_eq(attr(old, "data-mapped-by"), "A", "the old frame keeps A only");
	cr_assert(strstr(dom, "data-rule=\"copy"), "no fault with the copy rule at line 27");
	cr_assert(strstr(dom, "wp_page_copy"), "the call tree lacks wp_page_copy");
	cr_assert(strstr(dom, "data-node=\"frame:"), "no sharing graph");
	free(b); free(f); free(old); free(dom);
	screenshot(html, "fork-cow", fork_step);
	screenshot(html, "fork-cow", write_step);
}

Test(explorer, dput_copy_shares_the_middle)
{
	need_chromium();
	const char *html = TEST_BUILD_DIR "/explorer-dput-copy.html";
	cr_assert_eq(run_html(html, "examples/dput-copy.cows", NULL), 0);
	walk_every_step(html);
	char *dom = browse(html, "step=0", NULL);
	int step = step_of_line(dom, 35);
	free(dom);
	/* line 35, dput COPY: C's dst[3] maps P's src[3] frame (mapcount 2, P and C), read-only;
	 * the head page is C's own; the phases are on the page */
	dom = at_step(html, step);
	char *c3 = pte_row(dom, "C", "dst[3]"), *p3 = pte_row(dom, "P", "src[3]"), *c0 = pte_row(dom, "C", "dst[0]"),
	     *p0 = pte_row(dom, "P", "src[0]");
	cr_assert_str_eq(attr(c3, "data-frame"), attr(p3, "data-frame"));
	cr_assert_str_eq(attr(c3, "data-writable"), "0");
	cr_assert_str_eq(attr(c3, "data-changed"), "1");
	char *f = frame_row(dom, attr(c3, "data-frame"));
	cr_assert_str_eq(attr(f, "data-mapcount"), "2");
	cr_assert(!strcmp(attr(f, "data-mapped-by"), "P C") || !strcmp(attr(f, "data-mapped-by"), "C P"),
		  "the middle frame is mapped by %s", attr(f, "data-mapped-by"));
	char frame0[32];
	snprintf(frame0, sizeof frame0, "%s", attr(c0, "data-frame"));
	cr_assert_str_neq(frame0, attr(p0, "data-frame"), "the head page is shared");
	cr_assert(strstr(dom, "COPY middle"), "the dput phases are not shown");
	free(c3); free(p3); free(c0); free(p0); free(f); free(dom);
	screenshot(html, "dput-copy", step);
}

Test(explorer, pinned_page_is_copied_at_fork)
{
	need_chromium();
	const char *html = TEST_BUILD_DIR "/explorer-pin-fork-copy.html";
	cr_assert_eq(run_html(html, "examples/pin-fork-copy.cows", NULL), 0);
	walk_every_step(html);
	char *dom = browse(html, "step=0", NULL);
	int step = step_of_line(dom, 25);
	free(dom);
	/* line 25, fork: A keeps its pinned frame (held by dma, refcount 1025, writable), B got a
	 * copy of its own (refcount 1); buf[1] is shared as usual */
	dom = at_step(html, step);
	char *a0 = pte_row(dom, "A", "buf[0]"), *b0 = pte_row(dom, "B", "buf[0]"), *b1 = pte_row(dom, "B", "buf[1]");
	cr_assert_str_eq(attr(a0, "data-writable"), "1");
	cr_assert_str_neq(attr(a0, "data-frame"), attr(b0, "data-frame"));
	char *fa = frame_row(dom, attr(a0, "data-frame"));
	cr_assert_str_eq(attr(fa, "data-held-by"), "dma");
	cr_assert_str_eq(attr(fa, "data-refcount"), "1025");
	cr_assert_str_eq(attr(fa, "data-mapped-by"), "A");
	char *fb = frame_row(dom, attr(b0, "data-frame"));
	cr_assert_str_eq(attr(fb, "data-refcount"), "1");
	cr_assert_str_eq(attr(fb, "data-mapped-by"), "B");
	cr_assert_str_eq(attr(fb, "data-held-by"), "");
	char *f1 = frame_row(dom, attr(b1, "data-frame"));
	cr_assert_str_eq(attr(f1, "data-mapped-by"), "A B");
	cr_assert(strstr(dom, "data-node=\"pin:dma\""), "the pin is not in the sharing graph");
	free(a0); free(b0); free(b1); free(fa); free(fb); free(f1); free(dom);
	screenshot(html, "pin-fork-copy", step);
}

Test(explorer, scenario_text_cannot_inject_markup)
{
	need_chromium();
	const char *src = TEST_BUILD_DIR "/explorer-inject.cows", *html = TEST_BUILD_DIR "/explorer-inject.html";
	FILE *f = fopen(src, "w");
	cr_assert(f);
	fputs("spawn A\necho </script><img src=x onerror=\"cowvmError('injected')\"> & <b>bold</b>\n"
	      "mmap A buf 1 page rw private\nexpect rss A == 3 pages\n", f);
	fclose(f);
	cr_assert_eq(run_html(html, src, NULL), 1, "the failing expectation should fail the run");
	char *raw = read_file(html);
	cr_assert(!strstr(raw, "<img src=x"), "scenario text reached the file as markup");
	free(raw);
	char *dom = browse(html, "step=2", NULL);
	no_errors(dom, "step=2");
	cr_assert(!strstr(dom, "<img") && !strstr(dom, "<b>bold"), "scenario text became markup");
	cr_assert(strstr(dom, "&lt;img src=x"), "the echo text is not shown as text");
	free(dom);
	dom = browse(html, "step=4", NULL);
	cr_assert(strstr(dom, "data-expect=\"failed\""), "the failed expectation is not shown as failed");
	cr_assert(strstr(dom, "data-held=\"0\" data-failed=\"1\""));
	free(dom);
}

Test(explorer, unwritable_file_exits_2)
{
	cr_assert_eq(run_html("/nonexistent-dir/x.html", "examples/fork-cow.cows", NULL), 2);
	/* and two scenarios make one page with both */
	const char *html = TEST_BUILD_DIR "/explorer-two.html";
	cr_assert_eq(run_html(html, "examples/fork-cow.cows", "examples/reuse.cows"), 0);
	char *raw = read_file(html);
	cr_assert(strstr(raw, "id=\"run0\"") && strstr(raw, "id=\"run1\"") && !strstr(raw, "id=\"run2\""));
	cr_assert(strstr(raw, "examples/reuse.cows"));
	free(raw);
}

/* --dot-steps: NAME-stepN.dot after every step, each with the legend; the step after line 27
 * of fork-cow draws B's new frame, mapped once (green), and the old one no longer shared. */
Test(explorer, dot_steps_writes_a_picture_per_step_with_a_legend)
{
	char dir[] = "/tmp/cowvm-dotsteps-XXXXXX";
	cr_assert(mkdtemp(dir));
	char *argv[] = { "run", "--dot-steps", "--dot-dir", dir, "examples/fork-cow.cows", NULL };
	fflush(stdout);
	int saved = dup(1), null = open("/dev/null", 1);
	dup2(null, 1);
	int status = run_command(5, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(null);
	cr_assert_eq(status, 0);
	char path[4200];
	/* step 13 is `mark` (line 26) and 14 the write of line 27, as in the explorer's timeline */
	snprintf(path, sizeof path, "%s/fork-cow-step13.dot", dir);
	char *before = read_file(path);
	snprintf(path, sizeof path, "%s/fork-cow-step14.dot", dir);
	char *after = read_file(path);
	cr_assert(strstr(after, "line 27\""), "step 14 is not line 27: %.200s", after);
	cr_assert(strstr(after, "subgraph cluster_legend") && strstr(after, "rw: writable PTE"), "no legend");
	cr_assert(strstr(before, "frame 6\\nanon, ref 2, map 2"), "after fork frame 6 is shared: %s", before);
	cr_assert(strstr(after, "frame 6\\nanon, ref 1, map 1"), "after B's write frame 6 is A's alone: %s", after);
	cr_assert(strstr(after, "frame 12\\nanon, ref 1, map 1, exclusive"), "B's copy: %s", after);
	cr_assert(!strstr(before, "frame 12\\n"), "frame 12 exists before the write");
	free(before);
	free(after);
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	cr_assert_eq(system(path), 0);
	/* a --dot-dir that does not exist is bad input */
	char *bad[] = { "run", "--dot", "--dot-dir", "/nonexistent-dir", "examples/fork-cow.cows", NULL };
	cr_assert_eq(run_command(5, bad), 2);
}
