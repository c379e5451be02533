/*
 * json.c - the console as JSON lines: one object per event, each with "event" and "file"
 * (docs/json.md).  Failures and bad input also go to standard error in text, as FILE:LINE:
 * message, so that a script and a person both see them.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lang/words.h"
#include "render/render.h"
#include "run/run.h"

static void json_head(FILE *f, const struct step_log *log, const char *event)
{
	fprintf(f, "{\"event\":\"%s\",\"file\":", event);
	json_string(f, log->file);
}

static void json_path(FILE *f, const struct log_fault *lf)
{
	for (int i = 0; i < lf->npath; i++) {
		if (i)
			fputc(',', f);
		json_string(f, lf->path[i]);
	}
}

static void json_fault(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	const struct log_fault *lf = &ev->fault;
	FILE *f = c->out;
	json_head(f, log, "fault");
	fprintf(f, ",\"line\":%d,\"process\":", ev->line);
	json_string(f, lf->task);
	fprintf(f, ",\"pid\":%d,\"tid\":%d,\"access\":\"%s\",\"address\":\"%#" PRIx64 "\",\"path\":[",
		lf->pid, lf->tid, lf->access, lf->addr);
	json_path(f, lf);
	fprintf(f, "],\"old_frame\":%" PRIu64 ",\"new_frame\":%" PRIu64 ",\"outcome\":",
		lf->old_pfn, lf->new_pfn);
	json_string(f, lf->outcome);
	const struct log_trace *rule = fault_decision(log, ev);
	fputs(",\"rule\":", f);
	if (rule)
		json_string(f, rule->name);
	else
		fputs("null", f);
	fprintf(f, ",\"step\":%d}\n", ev->step);
}

/* A step of the library's stream: enter, leave or note (docs/json.md). */
static void json_trace(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	static const char *const kinds[] = { "?", "enter", "leave", "note" };
	const struct log_trace *t = &ev->trace;
	FILE *f = c->out;
	json_head(f, log, kinds[t->kind >= 1 && t->kind <= 3 ? t->kind : 0]);
	fprintf(f, ",\"line\":%d,\"step\":%d,\"depth\":%d,\"in_fault\":%s,\"pid\":%d,", ev->line,
		ev->step, t->depth, t->in_fault ? "true" : "false", t->pid);
	fputs(t->kind == COWVM_TRACE_NOTE ? "\"what\":" : "\"fn\":", f);
	json_string(f, t->name);
	if (t->kind == COWVM_TRACE_NOTE) {
		fputs(",\"why\":", f);
		if (t->reason)
			json_string(f, t->reason);
		else
			fputs("null", f);
		fprintf(f, ",\"decision\":%s", t->decision ? "true" : "false");
	}
	if (t->task) {
		fputs(",\"process\":", f);
		json_string(f, t->task);
	}
	if (t->kind != COWVM_TRACE_LEAVE) {
		fputs(",\"facts\":", f);
		trace_facts_json(f, t);
	}
	fputs("}\n", f);
}

static void json_phase(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	const struct log_fault *lf = &ev->fault;
	FILE *f = c->out;
	json_head(f, log, "phase");
	fprintf(f, ",\"line\":%d,\"call\":\"%s\",\"process\":", ev->line, lf->access);
	json_string(f, lf->task);
	fprintf(f, ",\"pid\":%d,\"tid\":%d,\"address\":\"%#" PRIx64 "\",\"end\":\"%#" PRIx64
		"\",\"path\":[", lf->pid, lf->tid, lf->addr, lf->end);
	json_path(f, lf);
	fprintf(f, "],\"outcome\":");
	json_string(f, lf->outcome);
	fprintf(f, "}\n");
}

static void json_result(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	const struct log_result *res = &ev->result;
	FILE *f = c->out;
	json_head(f, log, "op");
	fprintf(f, ",\"line\":%d,\"text\":", ev->line);
	json_string(f, ev->op->text);
	fprintf(f, ",\"error\":");
	if (res->error)
		json_string(f, errno_name(res->error));
	else
		fputs("null", f);
	fprintf(f, ",\"result\":%" PRId64, res->value);
	if (res->has_merge) {
		fprintf(f, ",\"merge\":{");
		for (int i = 0; i < nr_merge_fields; i++)
			fprintf(f, i == MERGE_FIRST_CONFLICT ? "%s\"%s\":\"%#" PRIx64 "\"" : "%s\"%s\":%" PRIu64,
				i ? "," : "", merge_fields[i].name, merge_value(&res->merge, i));
		fputc('}', f);
	}
	fprintf(f, "}\n");
}

static void json_message(struct console *c, const struct step_log *log, const struct log_event *ev,
			 const char *kind, int line, const char *message)
{
	console_message(c, log, line, message);
	json_head(c->out, log, kind);
	fprintf(c->out, ",\"line\":%d,\"message\":", line);
	json_string(c->out, message);
	fprintf(c->out, "}\n");
	(void)ev;
}

static void json_text_event(struct console *c, const struct step_log *log, const struct log_event *ev,
			    const char *kind, const char *tail)
{
	json_head(c->out, log, kind);
	fprintf(c->out, ",\"line\":%d,\"text\":", ev->line);
	json_string(c->out, ev->op->text);
	fprintf(c->out, "%s}\n", tail);
}

static void json_end(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	const struct log_state *st = log_state_at(log, ev->state);
	for (int v = 0; v < NR_VIEWS; v++)
		if (c->show_at_end & (1u << v)) {
			struct log_view view = { .view = v, .process = -1 };
			render_view(c->out, true, log, st, &view, 0);
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
		json_message(c, log, ev, "failure", 0, message);
		return;
	}
	json_head(c->out, log, "graph");
	fprintf(c->out, ",\"dot\":");
	json_string(c->out, files.dot);
	fprintf(c->out, ",\"svg\":");
	if (files.rendered == 0)
		json_string(c->out, files.svg);
	else
		fputs("null", c->out);
	fprintf(c->out, "}\n");
}

static void json_summary(struct console *c, const struct step_log *log, const struct log_event *ev)
{
	static const char *const words[] = { "ok", "failed", "bad input" };
	int status = ev->summary.status;
	if (status == RUN_OK && c->extra_failures)
		status = RUN_EXPECTATION_FAILED;
	c->status = status;
	json_head(c->out, log, "summary");
	fprintf(c->out, ",\"status\":\"%s\",\"exit\":%d,\"expectations\":%d,\"failed\":%d}\n",
		words[status], status, ev->summary.expectations, ev->summary.failures + c->extra_failures);
	fflush(c->out);
}

void json_event(void *arg, const struct step_log *log, const struct log_event *ev)
{
	struct console *c = arg;
	if (!c->json_started) { /* the first line names the schema */
		c->json_started = true;
		json_head(c->out, log, "run");
		fprintf(c->out, ",\"schema\":%d}\n", JSON_SCHEMA);
	}
	switch (ev->kind) {
	case LOG_LINE: break;
	case LOG_FAULT: json_fault(c, log, ev); break;
	case LOG_TRACE: json_trace(c, log, ev); break;
	case LOG_PHASE: json_phase(c, log, ev); break;
	case LOG_RESULT: json_result(c, log, ev); break;
	case LOG_EXPECT: json_text_event(c, log, ev, "expect", ",\"ok\":true"); break;
	case LOG_FAILURE: json_message(c, log, ev, "failure", ev->line, ev->message); break;
	case LOG_BAD_INPUT: json_message(c, log, ev, "bad_input", ev->line, ev->message); break;
	case LOG_VIEW: render_view(c->out, true, log, log_state_at(log, ev->view.state), &ev->view, ev->line); break;
	case LOG_ECHO: json_text_event(c, log, ev, "echo", ""); break;
	case LOG_END: json_end(c, log, ev); break;
	case LOG_SUMMARY: json_summary(c, log, ev); break;
	}
}
