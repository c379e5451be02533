/*
 * driver.h - reading and running one scenario end to end, as `cowvm run` does: the language
 * parses it (lang/), the runner runs it into a step log (run/), and the console renderer
 * (render/) prints the log as it grows.  compare and the tests use it too.
 */
#ifndef COWVM_TOOLS_DRIVER_H
#define COWVM_TOOLS_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "run/run.h"

struct run_opts {
	bool trace;             /* print each line as it runs, and every kernel step as a call
				   tree with its reasons (faults, fork, exit, munmap ...) */
	bool brief;             /* print each line and one line per fault (--trace=brief) */
	bool json;              /* JSON lines instead of text on `out` */
	unsigned show_at_end;   /* bit (1 << VIEW_*) per view to show when the scenario ends */
	bool dot;               /* write the final state as Graphviz (and SVG when dot exists) */
	bool dot_steps;         /* --dot-steps: NAME-stepN.dot (and .svg) after every step */
	const char *dot_dir;    /* where --dot and --dot-steps write, NULL = the current directory */
	struct html_writer *html; /* --html: each scenario's finished log is added to the page */
	FILE *err;              /* failures and bad input; NULL = stderr */
	const char *swap_path;  /* --swap FILE:SIZE: every scenario's machine swaps to FILE ... */
	uint64_t swap_bytes;    /* ... of SIZE bytes (its own `swap` line's size is replaced) */
	unsigned thp_flags;     /* --thp: COWVM_CONFIG_THP_* for every scenario's machine */
};

/*
 * scenario_run_text / scenario_run_file - parse and run one scenario on a new machine, writing
 * the trace, views and a summary line to out and failures to opts->err.  Return RUN_OK,
 * RUN_EXPECTATION_FAILED or RUN_BAD_INPUT.  Nothing is left behind: every task is ended and the
 * machine destroyed before they return.
 */
int scenario_run_text(const char *name, const char *text, const struct run_opts *opts, FILE *out);
int scenario_run_file(const char *path, const struct run_opts *opts, FILE *out);

#endif /* COWVM_TOOLS_DRIVER_H */
