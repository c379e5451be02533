/*
 * compare.h - `cowvm compare FILE...`: run each scenario on cowvm and on the host kernel (real
 * processes, tools/host.h) and compare the two after every step.  docs/fidelity.md says what is
 * compared, how, and which differences are known.
 */
#ifndef COWVM_TOOLS_COMPARE_H
#define COWVM_TOOLS_COMPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define COMPARE_AGREE 0
#define COMPARE_DIVERGE 1
#define COMPARE_BAD_INPUT 2 /* also: the host side could not be set up or read */

struct compare_opts {
	FILE *out;                /* the table and the summaries; NULL = stdout */
	const char *worker_exe;   /* program run as a host worker; NULL = /proc/self/exe */
	bool require_frames;      /* no frame numbers (not root) is an error, not a skip */
	bool verbose;             /* a line for every step, not only the differences */
	bool require_swap;        /* a scenario with `swap` and no host swap device fails */
	int max_rows;             /* differences printed per scenario; 0 = 50 */
};

/* What one or more compare_* calls found, summed. */
struct compare_totals {
	int scenarios, agree, diverge, bad;
	int swap_skipped;         /* scenarios with a `swap` line not compared: no host swap */
	uint64_t steps, observations, differences, skipped_ops;
	bool frames_compared;     /* sharing classes were compared (frame numbers readable) */
	bool frames_skipped;      /* ... or they were not */
};

/* Compare one scenario (text, named name for messages) / one file ("-" = standard input).
 * Returns COMPARE_*; adds to *totals when it is not NULL. */
int compare_text(const char *name, const char *text, const struct compare_opts *opts,
		 struct compare_totals *totals);
int compare_file(const char *path, const struct compare_opts *opts, struct compare_totals *totals);

int compare_command(int argc, char **argv); /* `cowvm compare [OPTIONS] FILE...` */

#endif /* COWVM_TOOLS_COMPARE_H */
