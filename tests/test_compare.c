/*
 * test_compare.c - `cowvm compare`: scenarios replayed on the host kernel, in-process.
 *
 *   agreement:  scenarios of the corpus (tests/scenarios/) agree, with every kind of
 *               observation made (faults, pagemap bits, the zero page, sharing classes as root,
 *               VMAs and smaps);
 *   divergence: a difference is found, reported as a row naming the step, the line and both
 *               values, and the status is 1 (a machine too small for the scenario: cowvm runs
 *               out of memory where the host does not);
 *   input:      bad scenarios give 2; operations the host cannot replay end the comparison at
 *               their line and say so; expect lines that fail on cowvm give 1;
 *   no root:    run as an unprivileged user (in a child, when the suite runs as root), the
 *               sharing classes are skipped and said to be, and --require-frames refuses with 2.
 *
 * The host workers are this very program, executed again: tools/host_worker.c's constructor
 * takes over before Criterion's main.  Built with the tools/ sources except tools/cowvm.c;
 * run from the top of the tree so that tests/scenarios/ is found.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/compare.h"
#include "host/host.h"

struct result {
	int status;
	char *out;
	struct compare_totals totals;
};

static struct result compare_captured(const char *name, const char *text)
{
	struct result r = { 0 };
	size_t len = 0;
	FILE *out = open_memstream(&r.out, &len);
	cr_assert(out, "open_memstream failed");
	struct compare_opts opts = { .out = out };
	r.status = text ? compare_text(name, text, &opts, &r.totals) : compare_file(name, &opts, &r.totals);
	fclose(out);
	return r;
}

/* A row of the difference table: the line number, the observation, both values. */
static void expect_row(const struct result *r, int line, const char *what, const char *cowvm,
		       const char *host)
{
	char needle[32];
	snprintf(needle, sizeof needle, " %5d  ", line);
	for (const char *p = strstr(r->out, needle); p; p = strstr(p + 1, needle)) {
		const char *end = strchr(p, '\n');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char row[512];
		if (n >= sizeof row)
			continue;
		memcpy(row, p, n);
		row[n] = 0;
		char *bar = strchr(row, '|');
		if (!bar || !strstr(row, what))
			continue;
		char *bar2 = strchr(bar + 1, '|');
		if (bar2 && strstr(bar, cowvm) && strstr(bar2, host) && strstr(bar, cowvm) < bar2)
			return;
	}
	cr_assert_fail("no row for line %d '%s' cowvm '%s' host '%s' in:\n%s", line, what, cowvm, host,
		       r->out);
}

/* ---- agreement ------------------------------------------------------------------------------- */

Test(compare, corpus_scenarios_agree)
{
	static const char *const files[] = {
		"tests/scenarios/fork-tree-three-levels.cows",
		"tests/scenarios/zero-then-write.cows",
		"tests/scenarios/write-order-three-permutations.cows",
		"tests/scenarios/shared-anon-fork.cows",
		"tests/scenarios/brk-fork.cows",
		"tests/scenarios/mprotect-r-rw-r-around-fork.cows",
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		struct result r = compare_captured(files[i], NULL);
		cr_assert_eq(r.status, COMPARE_AGREE, "%s: status %d:\n%s", files[i], r.status, r.out);
		cr_assert(strstr(r.out, ": agree ("), "%s", r.out);
		cr_assert_gt(r.totals.observations, 50, "%s: only %lu observations", files[i],
			     (unsigned long)r.totals.observations);
		if (host_frames_readable())
			cr_assert(r.totals.frames_compared && !r.totals.frames_skipped,
				  "frame numbers are readable: the sharing classes must be compared:\n%s", r.out);
		free(r.out);
	}
}

/* Every kind of observation, on a scenario small enough to count them by hand: one process,
 * one page written.  Step 3 (the write) compares the result, A's faults, the page's 4 pagemap
 * bits and the zero page, its sharing class (root), the VMA's bounds, perms, 10 smaps fields
 * (Locked, Swap and SwapPss too) and VmFlags. */
Test(compare, observations_are_made)
{
	struct result r = compare_captured("one.cows", "spawn A\nmmap A buf 1 page\nwrite A buf 1\n");
	cr_assert_eq(r.status, COMPARE_AGREE, "%s", r.out);
	cr_assert_eq(r.totals.steps, 3);
	/* spawn: the result; mmap: result, faults, 5 page bits, VMA 13; write: the same + class */
	uint64_t want = 1 + (1 + 1 + 5 + 13) + (1 + 1 + 5 + 13) + (host_frames_readable() ? 1 : 0);
	cr_assert_eq(r.totals.observations, want, "%lu observations, expected %lu:\n%s",
		     (unsigned long)r.totals.observations, (unsigned long)want, r.out);
	free(r.out);
}

/* ---- divergence ------------------------------------------------------------------------------ */

/* cowvm's machine has 64 KiB here (14 usable frames after its reserved and zero pages and page
 * tables); the host has plenty.  The write of 32 pages runs out on cowvm only. */
Test(compare, a_difference_is_a_row_and_status_1)
{
	const char *text = "memory 64 KiB\n"
			   "spawn A\n"
			   "mmap A buf 32 pages\n"
			   "write A buf fill 1\n"
			   "expect error ENOMEM\n";
	struct result r = compare_captured("small.cows", text);
	cr_assert_eq(r.status, COMPARE_DIVERGE, "%s", r.out);
	cr_assert(strstr(r.out, "small.cows: DIVERGES"), "%s", r.out);
	expect_row(&r, 4, "result", "ENOMEM", "ok");
	expect_row(&r, 4, "A buf[31] present", "no", "yes");
	free(r.out);
}

/* The same shortage seen through expect lines: each is evaluated on both sides (pagemap bits,
 * frames at a mark, status changes), and where the two disagree that is a row. */
Test(compare, expectations_are_evaluated_on_both_sides)
{
	const char *text = "memory 64 KiB\n"
			   "spawn A\n"
			   "mmap A buf 16 pages\n"
			   "mark m\n"
			   "write A buf fill 1\n"
			   "expect error ENOMEM\n"
			   "expect page A buf[15] not present\n"
			   "expect status A RssAnon since m < 64 kB\n"
			   "write A buf[0] 2\n"
			   "mark w\n"
			   "expect page A buf[15] frame same as at mark w\n";
	struct result r = compare_captured("small.cows", text);
	cr_assert_eq(r.status, COMPARE_DIVERGE, "%s", r.out);
	expect_row(&r, 7, "expect page (line 7) holds", "yes", "no");
	expect_row(&r, 8, "status A RssAnon change kB (line 8)", "40", "64 (fails)");
	if (host_frames_readable())
		expect_row(&r, 11, "expect page (line 11) holds", "no", "yes");
	free(r.out);
}

/* ---- input --------------------------------------------------------------------------------- */

Test(compare, bad_input_is_status_2)
{
	struct result r = compare_captured("bad.cows", "spawn A\nwrite B buf 1\n");
	cr_assert_eq(r.status, COMPARE_BAD_INPUT, "%s", r.out);
	cr_assert(strstr(r.out, "bad.cows"), "%s", r.out);
	free(r.out);
	r = compare_captured("tests/scenarios/no-such-file.cows", NULL);
	cr_assert_eq(r.status, COMPARE_BAD_INPUT, "%s", r.out);
	free(r.out);
}

Test(compare, host_cannot_replay_ends_the_comparison_there)
{
	struct result r = compare_captured("pin.cows", "spawn A\n"
						       "mmap A buf 1 page\n"
						       "write A buf 1\n"
						       "pin A buf longterm as p\n"
						       "write A buf 2\n"
						       "unpin p\n");
	cr_assert_eq(r.status, COMPARE_AGREE, "%s", r.out);
	cr_assert(strstr(r.out, "skipped on the host from line 4 on: `pin A buf longterm as p`"), "%s", r.out);
	cr_assert_eq(r.totals.steps, 3, "the three lines before the pin are compared");
	cr_assert_eq(r.totals.skipped_ops, 1);
	free(r.out);
}

Test(compare, failed_expectation_is_status_1)
{
	struct result r = compare_captured("expect.cows", "spawn A\n"
							  "mmap A buf 1 page\n"
							  "write A buf 1\n"
							  "expect faults A == 2\n");
	cr_assert_eq(r.status, COMPARE_DIVERGE, "%s", r.out);
	cr_assert(strstr(r.out, "FAILS on cowvm, the host agrees"), "%s", r.out);
	cr_assert(strstr(r.out, "expect.cows:4"), "%s", r.out);
	free(r.out);
}

/* ---- without root ------------------------------------------------------------------------------ */

Test(compare, without_root_sharing_classes_are_skipped_and_said_to_be)
{
	if (!host_frames_readable()) {
		struct result r = compare_captured("tests/scenarios/fork-tree-wide.cows", NULL);
		cr_assert_eq(r.status, COMPARE_AGREE, "%s", r.out);
		cr_assert(r.totals.frames_skipped && !r.totals.frames_compared);
		cr_assert(strstr(r.out, "sharing classes not compared"), "%s", r.out);
		free(r.out);
		return;
	}
	/* frame numbers are readable (root): do it as nobody, in a child */
	int pipefd[2];
	cr_assert_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(pipefd[0]);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 2); /* compare_command's refusal is expected */
		if (setgid(65534) || setuid(65534))
			_exit(10);
		/* the workers are this program: nobody must be able to run it, and read the corpus */
		if (access("/proc/self/exe", X_OK) || access("tests/scenarios/fork-tree-wide.cows", R_OK))
			_exit(77);
		FILE *out = fdopen(pipefd[1], "w");
		struct compare_totals t = { 0 };
		struct compare_opts opts = { .out = out };
		int status = compare_file("tests/scenarios/fork-tree-wide.cows", &opts, &t);
		fprintf(out, "\nstatus=%d skipped=%d compared=%d\n", status, t.frames_skipped, t.frames_compared);
		fclose(out);
		char *argv[] = { "compare", "--require-frames", "tests/scenarios/fork-tree-wide.cows", NULL };
		int rc = compare_command(3, argv);
		_exit(rc == 2 ? 0 : 20 + rc);
	}
	close(pipefd[1]);
	char buf[8192];
	size_t n = 0;
	ssize_t got;
	while (n < sizeof buf - 1 && (got = read(pipefd[0], buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)got;
	buf[n] = 0;
	close(pipefd[0]);
	int wstatus;
	waitpid(pid, &wstatus, 0);
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 77)
		cr_skip_test("user nobody cannot run this program or read tests/scenarios/ here");
	cr_assert(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
		  "as nobody, --require-frames must give 2 (child status %d):\n%s", wstatus, buf);
	cr_assert(strstr(buf, "status=0 skipped=1 compared=0"), "%s", buf);
	cr_assert(strstr(buf, "sharing classes not compared"), "%s", buf);
}
