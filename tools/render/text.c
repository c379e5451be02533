/*
 * text.c - the console in text: with --trace each line as it runs and every fault and dput
 * phase it caused, and what the line returned; always the views `show` asked for, echo lines,
 * failures and bad input on standard error as FILE:LINE: message, and one summary line.
 * At the end of the run: the --show views and the --dot files.
 *
 * Lines that only look (expect, mark, check) are printed only if they fault: an `expect mem`
 * reads memory as the process would.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lang/words.h"
#include "render/render.h"
#include "run/run.h"

static void pending_line(struct console *c, const struct log_event *ev)
{
	if (c->line_pending && ev->op) {
		fprintf(c->out, "%4d  %s\n", ev->op->line, ev->op->text);
		c->line_pending = false;
	}
}

static void text_line(struct console *c, const struct log_event *ev)
{
	const struct op *op = ev->op;
	c->line_pending = false;
	if (!c->trace || !op || op->kind == OP_ECHO)
		return;
	if (op->kind == OP_EXPECT || op->kind == OP_MARK || op->kind == OP_CHECK) {
		c->line_pending = true;
		return;
	}
	fprintf(c->out, "%4d  %s\n", op->line, op->text);
}

/* One event of the step stream at its depth: a call as its name and facts, a note as
 *     # what: why (facts)          a decision as      why: rule: why (facts) */
static void text_step(FILE *out, const struct log_trace *t, int indent)
{
	if (t->kind == COWVM_TRACE_LEAVE)
		return;
	fprintf(out, "%*s", indent + 2 * t->depth, "");
	if (t->kind == COWVM_TRACE_ENTER) {
		fputs(t->name, out);
		if (t->task && !t->in_fault)
			fprintf(out, " [%s]", t->task);
		trace_facts_text(out, t, "  ", "");
	} else {
		fprintf(out, "%s %s", t->decision ? "why:" : "#", t->name);
		if (t->reason)
			fprintf(out, ": %s", t->reason);
		trace_facts_text(out, t, " (", ")");
	}
	fputc('\n', out);
}

/*
 *       B write 0x7ffff7ffd000: handle_mm_fault > ... > do_wp_page > wp_page_copy (frame 6 -> 12)
 * then, with the full trace, its call tree (the steps from handle_mm_fault's ENTER to this
 * event, which the log keeps before it); with --trace=brief the deciding rule on the line.
 */
static void text_fault(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	const struct log_fault *f = &ev->fault;
	const struct log_trace *rule = fault_decision(log, ev);
	int end = log_event_index(log, ev), depth = 0;
	if (!c->trace)
		return;
	if (f->tree >= 0 && !c->brief)
		depth = log->events[f->tree].trace.depth;
	pending_line(c, ev);
	fprintf(c->out, "%*s%s %s %#" PRIx64 ":", 6 + 2 * depth, "", f->task, f->access, f->addr);
	for (int i = 0; i < f->npath; i++)
		fprintf(c->out, "%s%s", i ? " > " : " ", f->path[i]);
	if (f->old_pfn || f->new_pfn) {
		char from[24], to[24];
		frame_word(f->old_pfn, log->zero_pfn, from, sizeof from);
		frame_word(f->new_pfn, log->zero_pfn, to, sizeof to);
		fprintf(c->out, " (frame %s -> %s)", from, to);
	}
	if (strcmp(f->outcome, "ok"))
		fprintf(c->out, " [%s]", f->outcome);
	if (c->brief && rule)
		fprintf(c->out, "  # %s", rule->name);
	fputc('\n', c->out);
	if (c->brief || f->tree < 0 || end < 0)
		return;
	for (int i = f->tree; i < end; i++)
		if (log->events[i].kind == LOG_TRACE)
			text_step(c->out, &log->events[i].trace, 8);
}

/* A kernel step outside a fault (fork, exit, munmap, a pin's GUP ...), as it comes. */
static void text_trace(struct console *c, const struct log_event *ev)
{
	if (!c->trace || c->brief || ev->trace.in_fault || ev->trace.kind == COWVM_TRACE_LEAVE)
		return;
	pending_line(c, ev);
	text_step(c->out, &ev->trace, 6);
}

/*       C dput phase (not a fault): COPY head 0x...064-0x...000 (3996 bytes): copy_bytes */
static void text_phase(struct console *c, const struct log_event *ev)
{
	const struct log_fault *f = &ev->fault;
	FILE *out = c->out;
	if (!c->trace)
		return;
	pending_line(c, ev);
	fprintf(out, "%*s%s %s phase (not a fault): %s", 6 + (c->brief ? 0 : 2 * f->depth), "", f->task, f->access, f->npath > 1 ? f->path[1] : "?");
	if (f->end) {
		uint64_t n = f->end - f->addr;
		fprintf(out, " %#" PRIx64 "-%#" PRIx64, f->addr, f->end);
		if (n % COWVM_PAGE_SIZE == 0 && f->addr % COWVM_PAGE_SIZE == 0)
			fprintf(out, " (%" PRIu64 " page%s)", n / COWVM_PAGE_SIZE, n == COWVM_PAGE_SIZE ? "" : "s");
		else
			fprintf(out, " (%" PRIu64 " byte%s)", n, n == 1 ? "" : "s");
	} else {
		fprintf(out, " at %#" PRIx64, f->addr);
	}
	for (int i = 2; i < f->npath; i++)
		fprintf(out, "%s%s", i > 2 ? " > " : ": ", f->path[i]);
	if (strcmp(f->outcome, "ok"))
		fprintf(out, " [%s]", f->outcome);
	fputc('\n', out);
}

static void text_result(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	const struct log_result *res = &ev->result;
	const struct op *op = ev->op;
	FILE *f = c->out;
	if (!c->trace || !op)
		return;
	if (res->has_merge && (!res->error || res->error == EBADE)) {
		/* -> error EBADE; merge: conflicts 4 (the first at 0x...), pages_shared 1, ... */
		const struct cowvm_merge_report *m = &res->merge;
		fprintf(f, "      -> %s%smerge: conflicts %" PRIu64, res->error ? "error " : "",
			res->error ? "EBADE; " : "", m->conflicts);
		if (m->conflicts)
			fprintf(f, " (the first at %#" PRIx64 ")", m->first_conflict);
		for (int i = 0; i < nr_merge_fields; i++)
			if (i != 0 && i != MERGE_FIRST_CONFLICT)
				fprintf(f, ", %s %" PRIu64, merge_fields[i].name, merge_value(m, i));
		fputc('\n', f);
	} else if (res->error) {
		fprintf(f, "      -> error %s", errno_name(res->error));
		if (op->kind == OP_COPY_FROM_USER || op->kind == OP_COPY_TO_USER)
			fprintf(f, " (%" PRId64 " bytes not copied)", res->value);
		fputc('\n', f);
	} else if (op->kind == OP_MMAP || op->kind == OP_BRK || op->kind == OP_GET_USER) {
		fprintf(f, "      -> %#" PRIx64 "\n", (uint64_t)res->value);
	} else if (op->kind == OP_PIN) {
		fprintf(f, "      -> %s holds frame%s", log->s->pin_names[op->pin], res->pin_pages == 1 ? "" : "s");
		for (size_t k = 0; k < res->pin_pages && k < LOG_PIN_FRAMES; k++)
			fprintf(f, " %" PRIu64, res->pin_pfns[k]);
		fputs(res->pin_pages > LOG_PIN_FRAMES ? " ...\n" : "\n", f);
	} else if (op->kind == OP_REMOTE_READ || op->kind == OP_REMOTE_WRITE) {
		fprintf(f, "      -> %" PRId64 " byte%s\n", res->value, res->value == 1 ? "" : "s");
	}
}

/* --show and --dot at the end of the run. */
static void text_end(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	const struct log_state *st = log_state_at(log, ev->state);
	for (int v = 0; v < NR_VIEWS; v++)
		if (c->show_at_end & (1u << v)) {
			struct log_view view = { .view = v, .process = -1 };
			render_view(c->out, false, log, st, &view, 0);
		}
	if (!c->dot || !st)
		return;
	struct dot_files files;
	fflush(c->out);
	int err = dot_write_files(log, st, 0, c->dot_dir, &files);
	if (err) {
		char message[4200];
		snprintf(message, sizeof message, "cannot write %s: %s", files.dot, strerror(err));
		c->extra_failures++;
		console_message(c, log, 0, message);
	} else if (files.rendered == 0) {
		fprintf(c->out, "wrote %s and %s\n", files.dot, files.svg);
	} else if (files.rendered == ENOENT) {
		fprintf(c->out, "wrote %s (Graphviz's dot is not installed: no SVG)\n", files.dot);
	} else {
		fprintf(c->out, "wrote %s (dot could not render it: %s)\n", files.dot, strerror(files.rendered));
	}
}

static void text_summary(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	int status = ev->summary.status, failures = ev->summary.failures + c->extra_failures;
	int expectations = ev->summary.expectations;
	if (status == RUN_OK && c->extra_failures)
		status = RUN_EXPECTATION_FAILED;
	c->status = status;
	if (status == RUN_OK)
		fprintf(c->out, "%s: ok (%d expectation%s)\n", log->file, expectations,
			expectations == 1 ? "" : "s");
	else if (status == RUN_EXPECTATION_FAILED)
		fprintf(c->out, "%s: FAILED (%d failure%s; %d expectation%s checked)\n", log->file,
			failures, failures == 1 ? "" : "s", expectations, expectations == 1 ? "" : "s");
	else
		fprintf(c->out, "%s: bad input\n", log->file);
	fflush(c->out);
}

void text_event(void *arg, const struct step_log *log, const struct log_event *ev)
{
	struct console *c = arg;
	switch (ev->kind) {
	case LOG_LINE: text_line(c, ev); break;
	case LOG_FAULT: text_fault(c, log, ev); break;
	case LOG_TRACE: text_trace(c, ev); break;
	case LOG_PHASE: text_phase(c, ev); break;
	case LOG_RESULT: text_result(c, log, ev); break;
	case LOG_EXPECT: break;
	case LOG_FAILURE:
	case LOG_BAD_INPUT: console_message(c, log, ev->line, ev->message); break;
	case LOG_VIEW: render_view(c->out, false, log, log_state_at(log, ev->view.state), &ev->view, ev->line); break;
	case LOG_ECHO: fprintf(c->out, "%s\n", ev->op->text); break;
	case LOG_END: text_end(c, log, ev); break;
	case LOG_SUMMARY: text_summary(c, log, ev); break;
	}
}
