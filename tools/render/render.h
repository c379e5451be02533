/*
 * render.h - the renderers: pure functions of a step log (log/step_log.h), one file each.
 *   text.c    the console in text: each line as it runs (--trace), its faults and phases,
 *             results, views, echo lines, failures on standard error, the summary
 *   json.c    the same events as JSON lines (docs/json.md)
 *   views.c   the /proc views of one state (maps, smaps, pagemap, ptes, frames ...), text or JSON
 *   dot.c     the Graphviz picture of one state (show graph, --dot)
 *   html.c    the explorer: one HTML page for the finished logs of a run (--html)
 *   common.c  what they share: JSON strings, file:line messages
 * A renderer reads the log and writes to its streams or files; it never calls the runner or
 * the library.  A new renderer is one new file and a line here.
 */
#ifndef COWVM_TOOLS_RENDER_H
#define COWVM_TOOLS_RENDER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log/step_log.h"

/* ---- the console: text.c and json.c ------------------------------------------------------------ */

struct console {
	FILE *out, *err;          /* trace, views, summary / failures and bad input */
	bool trace;               /* text: print each line as it runs and every fault */
	bool brief;               /* with trace: one line per fault, no call trees */
	unsigned show_at_end;     /* bit (1 << VIEW_*) per view to show at LOG_END */
	bool dot;                 /* at LOG_END, write the final state as NAME.dot (and .svg) */
	const char *dot_dir;      /* where --dot writes, NULL = the current directory */
	/* the renderer's own state as it walks the log */
	bool line_pending;        /* text --trace: the line is printed only if it faults */
	int extra_failures;       /* outputs that could not be written (a .dot file) */
	int status;               /* at LOG_SUMMARY: the exit status, extra failures included */
	bool json_started;        /* json: the "run" line (the schema version) is out */
};

/* The version of the JSON lines (docs/json.md): a change that can break a script bumps it. */
#define JSON_SCHEMA 1

/* log observers (log_observer_fn): the console renders each event as the run appends it */
void text_event(void *console, const struct step_log *log, const struct log_event *ev);
void json_event(void *console, const struct step_log *log, const struct log_event *ev);

/* ---- views.c ------------------------------------------------------------------------------------- */

/* One `show` (or --show at the end) of a state: text as /proc prints it, or one JSON object per
 * view.  line is the show line's, 0 at the end. */
void render_view(FILE *f, bool json, const struct step_log *log, const struct log_state *st,
		 const struct log_view *v, int line);

/* ---- dot.c --------------------------------------------------------------------------------------- */

/* The state as Graphviz text: processes -> VMAs -> pages -> frames (line 0: "at the end"). */
void dot_graph(FILE *f, const struct step_log *log, const struct log_state *st, int line);

struct dot_files {
	char dot[4096], svg[4096];
	int rendered;             /* 0: the SVG was made; ENOENT: no Graphviz; else why not */
};
/* Write DIR/NAME.dot for the state and render NAME.svg with Graphviz's dot when it is
 * installed.  Returns 0, or the errno of the .dot file that could not be written. */
int dot_write_files(const struct step_log *log, const struct log_state *st, int line,
		    const char *dir, struct dot_files *out);
/* The same as DIR/NAME-stepSTEP.dot and .svg (--dot-steps: the state after step STEP). */
int dot_write_step_files(const struct step_log *log, const struct log_state *st, int line,
			 const char *dir, int step, struct dot_files *out);

/* ---- html.c -------------------------------------------------------------------------------------- */

/* The explorer (`cowvm run --html FILE`): html_open writes the page's head (NULL and *error set
 * when FILE cannot be written), html_add_log the data of one finished log (its states after
 * every step: capture LOG_CAPTURE_STEPS | LOG_CAPTURE_TRACE), html_close the script and the end;
 * it returns 0 or the errno of a failed write. */
struct html_writer;
struct html_writer *html_open(const char *path, int *error);
void html_add_log(struct html_writer *w, const struct step_log *log);
int html_close(struct html_writer *w);
const char *html_path(const struct html_writer *w);

/* ---- common.c ------------------------------------------------------------------------------------ */

void json_string(FILE *f, const char *s);
void json_bytes(FILE *f, const uint8_t *bytes, size_t len);
/* "FILE:LINE: message" (or "FILE: message") on err, after flushing out. */
void console_message(struct console *c, const struct step_log *log, int line, const char *message);

/* The step stream's words: a fact's value as text ("12", "zero", "-", "yes", "0x..."); a
 * trace event's facts as "OPENkey=value, key=valueCLOSE" (nothing without facts), or as one
 * JSON object (numbers; hex as strings; frames as numbers, "zero", or null for none). */
void trace_fact_text(const struct cowvm_trace_fact *f, char *out, size_t len);
void trace_facts_text(FILE *f, const struct log_trace *t, const char *open, const char *close);
void trace_facts_json(FILE *f, const struct log_trace *t);
/* ev's index in log->events, or -1 when it was not kept. */
int log_event_index(const struct step_log *log, const struct log_event *ev);
/* The rule that chose a fault's outcome (its tree's decision note), or NULL. */
const struct log_trace *fault_decision(const struct step_log *log, const struct log_event *ev);
/* A frame as the views say it: "-" (0, none), "zero" (the zero page), else its number. */
void frame_word(uint64_t pfn, uint64_t zero_pfn, char *out, size_t len);

#endif /* COWVM_TOOLS_RENDER_H */
