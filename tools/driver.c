/*
 * driver.c - one scenario from text to output: parse (lang/), run into a step log (run/),
 * render the log (render/).  The console renderer observes the log, so the trace prints as the
 * run goes; file outputs are rendered from the finished log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "render/render.h"

static struct console console_of(const struct run_opts *opts, FILE *out)
{
	return (struct console){ .out = out, .err = opts->err ? opts->err : stderr,
				 .trace = opts->trace || opts->brief, .brief = opts->brief,
				 .show_at_end = opts->show_at_end,
				 .dot = opts->dot, .dot_dir = opts->dot_dir };
}

/* A scenario that never ran (unreadable, or not parsed): its message and summary. */
static int not_run(const char *name, const struct run_opts *opts, FILE *out, int line,
		   const char *message)
{
	struct step_log log;
	struct console c = console_of(opts, out);
	log_init(&log, name, NULL);
	log.observer = opts->json ? json_event : text_event;
	log.observer_arg = &c;
	log_message(&log, LOG_BAD_INPUT, line, NULL, "%s", message);
	struct log_event ev = { .kind = LOG_SUMMARY };
	ev.summary.status = RUN_BAD_INPUT;
	log_append(&log, &ev);
	if (opts->html)
		html_add_log(opts->html, &log);
	log_free(&log);
	return RUN_BAD_INPUT;
}

/* --dot-steps: a picture of the state after every step; the number of files that could not be
 * written (each reported on standard error). */
static int dot_steps(const struct step_log *log, const struct run_opts *opts, FILE *out)
{
	int written = 0, failed = 0, svgs = 0;
	struct dot_files files;
	for (int i = 0; i < log->nr_steps; i++) {
		const struct log_state *st = log_state_at(log, log->steps[i].state);
		if (!st)
			continue;
		int err = dot_write_step_files(log, st, log->steps[i].line, opts->dot_dir, i, &files);
		if (err) {
			fflush(out);
			fprintf(opts->err ? opts->err : stderr, "%s: cannot write %s: %s\n", log->file,
				files.dot, strerror(err));
			failed++;
			continue;
		}
		written++;
		svgs += files.rendered == 0;
	}
	if (!opts->json && written)
		fprintf(out, "%s: wrote %d step picture%s to %s (NAME-stepN.dot%s)\n", log->file, written,
			written == 1 ? "" : "s", opts->dot_dir ? opts->dot_dir : ".", svgs ? " and .svg" : "");
	return failed;
}

int scenario_run_text(const char *name, const char *text, const struct run_opts *opts, FILE *out)
{
	struct parse_error perr;
	struct scenario *s = scenario_parse(name, text, &perr);
	if (!s)
		return not_run(name, opts, out, perr.line, perr.message);
	if (opts->swap_path) {
		free(s->swap_path);
		if (!(s->swap_path = strdup(opts->swap_path))) {
			scenario_free(s);
			return not_run(name, opts, out, 0, "out of memory");
		}
		s->swap_bytes = opts->swap_bytes;
	}
	s->thp_flags = opts->thp_flags;
	struct step_log log;
	struct console c = console_of(opts, out);
	log_init(&log, s->name, s);
	if (opts->show_at_end || opts->dot)
		log.capture |= LOG_CAPTURE_END;
	if (opts->trace || opts->brief || opts->json)
		log.capture |= LOG_CAPTURE_TRACE;
	if (opts->html)
		log.capture |= LOG_CAPTURE_STEPS | LOG_CAPTURE_TRACE;
	if (opts->dot_steps)
		log.capture |= LOG_CAPTURE_STEPS;
	log.observer = opts->json ? json_event : text_event;
	log.observer_arg = &c;
	run_scenario(s, &log);
	int status = c.status;
	if (opts->html)
		html_add_log(opts->html, &log);
	if (opts->dot_steps && dot_steps(&log, opts, out) && status == RUN_OK)
		status = RUN_EXPECTATION_FAILED;
	log_free(&log);
	scenario_free(s);
	return status;
}

/* The whole of f, NUL-terminated; NULL on a read error or a NUL byte inside. */
static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		char *grown = realloc(buf, cap *= 2);
		if (!grown)
			free(buf);
		buf = grown;
	}
	if (!buf || ferror(f)) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

int scenario_run_file(const char *path, const struct run_opts *opts, FILE *out)
{
	bool is_stdin = !strcmp(path, "-");
	FILE *f = is_stdin ? stdin : fopen(path, "r");
	size_t len = 0;
	char *text = f ? read_all(f, &len) : NULL;
	int error = errno;
	if (f && !is_stdin)
		fclose(f);
	if (!text) {
		char message[300];
		snprintf(message, sizeof message, "cannot read it: %s", strerror(error ? error : EIO));
		return not_run(path, opts, out, 0, message);
	}
	int status;
	if (strlen(text) != len)
		status = not_run(path, opts, out, 0, "it holds a NUL byte: not a scenario text file");
	else
		status = scenario_run_text(is_stdin ? "<stdin>" : path, text, opts, out);
	free(text);
	return status;
}
