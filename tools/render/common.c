/*
 * common.c - what the renderers share: JSON string quoting, the file:line form of failures
 * on standard error, and the words of the step stream (facts, a fault's deciding rule).
 */
#include <inttypes.h>
#include <string.h>

#include "render/render.h"

void json_string(FILE *f, const char *s)
{
	json_bytes(f, (const uint8_t *)s, strlen(s));
}

void json_bytes(FILE *f, const uint8_t *bytes, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = bytes[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c); /* bytes >= 0x80 as the code point of the same value */
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* out is flushed before anything is written to err, so a terminal shows the two in the order
 * they happened. */
void console_message(struct console *c, const struct step_log *log, int line, const char *message)
{
	fflush(c->out);
	if (line > 0)
		fprintf(c->err, "%s:%d: %s\n", log->file, line, message);
	else
		fprintf(c->err, "%s: %s\n", log->file, message);
	fflush(c->err);
}

/* ---- the step stream ---------------------------------------------------------------------------- */

void trace_fact_text(const struct cowvm_trace_fact *f, char *out, size_t len)
{
	switch (f->type) {
	case COWVM_FACT_HEX: snprintf(out, len, "%#" PRIx64, f->value); break;
	case COWVM_FACT_BOOL: snprintf(out, len, "%s", f->value ? "yes" : "no"); break;
	case COWVM_FACT_FRAME:
		if (f->text)
			snprintf(out, len, "%s", f->text);
		else
			snprintf(out, len, "%" PRIu64, f->value);
		break;
	case COWVM_FACT_TEXT: snprintf(out, len, "%s", f->text ? f->text : ""); break;
	default: snprintf(out, len, "%" PRIu64, f->value); break;
	}
}

void trace_facts_text(FILE *f, const struct log_trace *t, const char *open, const char *close)
{
	char value[256];
	for (int i = 0; i < t->nfacts; i++) {
		trace_fact_text(&t->facts[i], value, sizeof value);
		fprintf(f, "%s%s=%s", i ? ", " : open, t->facts[i].key, value);
	}
	if (t->nfacts)
		fputs(close, f);
}

void trace_facts_json(FILE *f, const struct log_trace *t)
{
	fputc('{', f);
	for (int i = 0; i < t->nfacts; i++) {
		const struct cowvm_trace_fact *fact = &t->facts[i];
		if (i)
			fputc(',', f);
		json_string(f, fact->key);
		fputc(':', f);
		switch (fact->type) {
		case COWVM_FACT_NUMBER: fprintf(f, "%" PRIu64, fact->value); break;
		case COWVM_FACT_HEX: fprintf(f, "\"%#" PRIx64 "\"", fact->value); break;
		case COWVM_FACT_BOOL: fputs(fact->value ? "true" : "false", f); break;
		case COWVM_FACT_FRAME:
			if (fact->text && !strcmp(fact->text, "-"))
				fputs("null", f);
			else if (fact->text)
				json_string(f, fact->text);
			else
				fprintf(f, "%" PRIu64, fact->value);
			break;
		default: json_string(f, fact->text ? fact->text : ""); break;
		}
	}
	fputc('}', f);
}

int log_event_index(const struct step_log *log, const struct log_event *ev)
{
	if (ev < log->events || ev >= log->events + log->nr_events)
		return -1;
	return (int)(ev - log->events);
}

const struct log_trace *fault_decision(const struct step_log *log, const struct log_event *ev)
{
	int end = log_event_index(log, ev), from = ev->fault.tree;
	if (from < 0 || end < 0)
		return NULL;
	for (int i = from; i < end; i++) {
		const struct log_event *e = &log->events[i];
		if (e->kind == LOG_TRACE && e->trace.kind == COWVM_TRACE_NOTE && e->trace.decision)
			return &e->trace;
	}
	return NULL;
}

void frame_word(uint64_t pfn, uint64_t zero_pfn, char *out, size_t len)
{
	if (pfn == 0)
		snprintf(out, len, "-");
	else if (pfn == zero_pfn)
		snprintf(out, len, "zero");
	else
		snprintf(out, len, "%" PRIu64, pfn);
}
