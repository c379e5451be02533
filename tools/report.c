/*
 * report.c - how a run speaks: the fault trace (and the phases of dput and dget), each line as
 * it runs (--trace), the result of operations, failures and bad input with file:line, the
 * summary, in text or JSON lines.
 *
 * Streams: trace, views and the summary go to `out`; failure messages go to `err` in text (and
 * also to `out` as JSON events under --json).  `out` is flushed before anything is written to
 * `err`, so a terminal shows the two in the order they happened.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "runner.h"
#include "words.h"

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

void format_bytes(char *out, size_t outlen, const uint8_t *bytes, size_t len)
{
	size_t n = 0, max = 48;
	if (outlen < 8)
		return;
	out[n++] = '"';
	for (size_t i = 0; i < len && i < max && n + 8 < outlen; i++) {
		uint8_t c = bytes[i];
		if (c == '"' || c == '\\')
			n += (size_t)snprintf(out + n, outlen - n, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, outlen - n, "\\x%02x", c);
	}
	out[n++] = '"';
	out[n] = 0;
	if (len > max && n + 4 < outlen)
		strcpy(out + n, "...");
}

/* ---- names in events --------------------------------------------------------------------------- */

const char *task_name_by_tid(struct run *r, int tid, int pid)
{
	for (int i = 0; i < r->s->nr_tasks; i++)
		if (r->tasks[i].task && cowvm_task_tid(r->tasks[i].task) == tid)
			return r->s->task_names[i];
	return process_name_by_pid(r, pid);
}

const char *process_name_by_pid(struct run *r, int pid)
{
	static __thread char unnamed[32];
	for (int i = r->nr_processes - 1; i >= 0; i--)
		if (r->processes[i].pid == pid)
			return r->processes[i].name;
	snprintf(unnamed, sizeof unnamed, "pid%d", pid);
	return unnamed;
}

/* ---- the trace ------------------------------------------------------------------------------------ */

/*
 * What kind of access a fault served.  The task's own: read, write.  The kernel's: uaccess and
 * populate are kernel-read/-write; GUP for a `pin` line is gup-read/gup-write, and a write fault
 * taken for a pin without `write` is an unshare (FAULT_FLAG_UNSHARE: the event reports it as a
 * write); /proc/pid/mem (remote_read/remote_write) is remote-read/-write.
 */
static const char *access_name(struct run *r, const struct cowvm_fault_event *ev)
{
	if (ev->user)
		return ev->write ? "write" : "read";
	if (r->op && r->op->kind == OP_PIN)
		return !ev->write ? "gup-read" : (r->op->foll & COWVM_FOLL_WRITE) ? "gup-write" : "unshare";
	if (r->op && (r->op->kind == OP_REMOTE_READ || r->op->kind == OP_REMOTE_WRITE))
		return ev->write ? "remote-write" : "remote-read";
	return ev->write ? "kernel-write" : "kernel-read";
}

/*
 * The phases of a dput or dget (mm/dput.c): events whose path starts with "dput", one per
 * region of a COPY or ZERO, given the destination task and where the region starts there.
 * They are steps of the call, not faults, and carry no frames; they print as "phase" lines
 * (JSON "phase" events).  The runner knows where the destination range ends, so each phase is
 * printed with its extent:
 *   head      [addr, round_up(addr))          the memcpy'd head sliver
 *   middle    [addr, round_down(end))         the page-aligned middle (COW-shared or zeroed)
 *   tail, unaligned   [addr, end)
 */
static bool is_phase(const struct cowvm_fault_event *ev)
{
	return ev->npath > 0 && !strcmp(ev->path[0], "dput");
}

static uint64_t phase_end(struct run *r, const struct cowvm_fault_event *ev)
{
	const uint64_t pg = COWVM_PAGE_SIZE;
	uint64_t end = r->dput_dst_end;
	const char *what = ev->npath > 1 ? ev->path[1] : "";
	size_t n = strlen(what);
	if (n >= 4 && !strcmp(what + n - 4, "head"))
		end = (ev->addr + pg - 1) & ~(pg - 1);
	else if (n >= 6 && !strcmp(what + n - 6, "middle"))
		end &= ~(pg - 1);
	return end > ev->addr ? end : 0;
}

static void report_phase(struct run *r, const struct cowvm_fault_event *ev, const char *name)
{
	FILE *f = r->out;
	const char *call = r->op && r->op->kind == OP_DGET ? "dget" : "dput";
	uint64_t end = phase_end(r, ev);
	if (r->opts->json) {
		fprintf(f, "{\"event\":\"phase\",\"file\":");
		json_string(f, r->s->name);
		fprintf(f, ",\"line\":%d,\"call\":\"%s\",\"process\":", r->op ? r->op->line : 0, call);
		json_string(f, name);
		fprintf(f, ",\"pid\":%d,\"tid\":%d,\"address\":\"%#" PRIx64 "\",\"end\":\"%#" PRIx64
			"\",\"path\":[", ev->pid, ev->tid, ev->addr, end);
		for (int i = 0; i < ev->npath; i++) {
			if (i)
				fputc(',', f);
			json_string(f, ev->path[i]);
		}
		fprintf(f, "],\"outcome\":");
		json_string(f, ev->outcome);
		fprintf(f, "}\n");
		return;
	}
	if (!r->opts->trace)
		return;
	if (r->line_pending && r->op) {
		fprintf(f, "%4d  %s\n", r->op->line, r->op->text);
		r->line_pending = false;
	}
	/*       C dput phase (not a fault): COPY head 0x...064-0x...000 (3996 bytes): copy_bytes */
	fprintf(f, "      %s %s phase (not a fault): %s", name, call, ev->npath > 1 ? ev->path[1] : "?");
	if (end) {
		uint64_t n = end - ev->addr;
		fprintf(f, " %#" PRIx64 "-%#" PRIx64, ev->addr, end);
		if (n % COWVM_PAGE_SIZE == 0 && ev->addr % COWVM_PAGE_SIZE == 0)
			fprintf(f, " (%" PRIu64 " page%s)", n / COWVM_PAGE_SIZE, n == COWVM_PAGE_SIZE ? "" : "s");
		else
			fprintf(f, " (%" PRIu64 " byte%s)", n, n == 1 ? "" : "s");
	} else {
		fprintf(f, " at %#" PRIx64, ev->addr);
	}
	for (int i = 2; i < ev->npath; i++)
		fprintf(f, "%s%s", i > 2 ? " > " : ": ", ev->path[i]);
	if (strcmp(ev->outcome, "ok"))
		fprintf(f, " [%s]", ev->outcome);
	fputc('\n', f);
}

/* The library's tracer: called inside the fault, locks held; format only. */
void report_fault(void *arg, const struct cowvm_fault_event *ev)
{
	struct run *r = arg;
	const char *name = task_name_by_tid(r, ev->tid, ev->pid);
	if (is_phase(ev)) {
		report_phase(r, ev, name);
		return;
	}
	const char *access = access_name(r, ev);
	if (r->opts->json) {
		FILE *f = r->out;
		fprintf(f, "{\"event\":\"fault\",\"file\":");
		json_string(f, r->s->name);
		fprintf(f, ",\"line\":%d,\"process\":", r->op ? r->op->line : 0);
		json_string(f, name);
		fprintf(f, ",\"pid\":%d,\"tid\":%d,\"access\":\"%s\",\"address\":\"%#" PRIx64 "\",\"path\":[",
			ev->pid, ev->tid, access, ev->addr);
		for (int i = 0; i < ev->npath; i++) {
			if (i)
				fputc(',', f);
			json_string(f, ev->path[i]);
		}
		fprintf(f, "],\"old_frame\":%" PRIu64 ",\"new_frame\":%" PRIu64 ",\"outcome\":",
			ev->old_pfn, ev->new_pfn);
		json_string(f, ev->outcome);
		fprintf(f, "}\n");
		return;
	}
	if (!r->opts->trace)
		return;
	FILE *f = r->out;
	if (r->line_pending && r->op) {
		fprintf(f, "%4d  %s\n", r->op->line, r->op->text);
		r->line_pending = false;
	}
	fprintf(f, "      %s %s %#" PRIx64 ":", name, access, ev->addr);
	for (int i = 0; i < ev->npath; i++)
		fprintf(f, "%s%s", i ? " > " : " ", ev->path[i]);
	if (ev->old_pfn || ev->new_pfn)
		fprintf(f, " (frame %" PRIu64 " -> %" PRIu64 ")", ev->old_pfn, ev->new_pfn);
	if (strcmp(ev->outcome, "ok"))
		fprintf(f, " [%s]", ev->outcome);
	fputc('\n', f);
}

/* Lines that only look (expect, mark, check) are printed only if they fault: an `expect mem`
 * reads memory as the process would.  report_fault prints them then. */
void report_line(struct run *r, const struct op *op)
{
	r->line_pending = false;
	if (!r->opts->trace || r->opts->json || op->kind == OP_ECHO)
		return;
	if (op->kind == OP_EXPECT || op->kind == OP_MARK || op->kind == OP_CHECK) {
		r->line_pending = true;
		return;
	}
	fprintf(r->out, "%4d  %s\n", op->line, op->text);
}

void report_op_result(struct run *r, const struct op *op)
{
	FILE *f = r->out;
	if (r->opts->json) {
		fprintf(f, "{\"event\":\"op\",\"file\":");
		json_string(f, r->s->name);
		fprintf(f, ",\"line\":%d,\"text\":", op->line);
		json_string(f, op->text);
		fprintf(f, ",\"error\":");
		if (r->last_error)
			json_string(f, errno_name(r->last_error));
		else
			fputs("null", f);
		fprintf(f, ",\"result\":%" PRId64, r->last_result);
		if (r->has_merge) {
			fprintf(f, ",\"merge\":{");
			for (int i = 0; i < nr_merge_fields; i++)
				fprintf(f, i == MERGE_FIRST_CONFLICT ? "%s\"%s\":\"%#" PRIx64 "\"" : "%s\"%s\":%" PRIu64,
					i ? "," : "", merge_fields[i].name, merge_value(&r->merge, i));
			fputc('}', f);
		}
		fprintf(f, "}\n");
		return;
	}
	if (!r->opts->trace)
		return;
	if (r->has_merge && (!r->last_error || r->last_error == EBADE)) {
		/* -> error EBADE; merge: conflicts 4 (the first at 0x...), pages_shared 1, ... */
		const struct cowvm_merge_report *m = &r->merge;
		fprintf(f, "      -> %s%smerge: conflicts %" PRIu64, r->last_error ? "error " : "",
			r->last_error ? "EBADE; " : "", m->conflicts);
		if (m->conflicts)
			fprintf(f, " (the first at %#" PRIx64 ")", m->first_conflict);
		for (int i = 0; i < nr_merge_fields; i++)
			if (i != 0 && i != MERGE_FIRST_CONFLICT)
				fprintf(f, ", %s %" PRIu64, merge_fields[i].name, merge_value(m, i));
		fputc('\n', f);
	} else if (r->last_error) {
		fprintf(f, "      -> error %s", errno_name(r->last_error));
		if (op->kind == OP_COPY_FROM_USER || op->kind == OP_COPY_TO_USER)
			fprintf(f, " (%" PRId64 " bytes not copied)", r->last_result);
		fputc('\n', f);
	} else if (op->kind == OP_MMAP || op->kind == OP_BRK || op->kind == OP_GET_USER) {
		fprintf(f, "      -> %#" PRIx64 "\n", (uint64_t)r->last_result);
	} else if (op->kind == OP_PIN) {
		const struct run_pin *rp = &r->pins[op->pin];
		fprintf(f, "      -> %s holds frame%s", r->s->pin_names[op->pin], rp->npages == 1 ? "" : "s");
		for (size_t k = 0; k < rp->npages && k < 16; k++)
			fprintf(f, " %" PRIu64, cowvm_pin_pfn(rp->pin, k));
		fputs(rp->npages > 16 ? " ...\n" : "\n", f);
	} else if (op->kind == OP_REMOTE_READ || op->kind == OP_REMOTE_WRITE) {
		fprintf(f, "      -> %" PRId64 " byte%s\n", r->last_result, r->last_result == 1 ? "" : "s");
	}
}

/* ---- failures ------------------------------------------------------------------------------------ */

static void vreport(struct run *r, int line, const char *kind, const char *fmt, va_list ap)
{
	char message[1024];
	vsnprintf(message, sizeof message, fmt, ap);
	fflush(r->out);
	if (line > 0)
		fprintf(r->err, "%s:%d: %s\n", r->s->name, line, message);
	else
		fprintf(r->err, "%s: %s\n", r->s->name, message);
	fflush(r->err);
	if (r->opts->json) {
		fprintf(r->out, "{\"event\":\"%s\",\"file\":", kind);
		json_string(r->out, r->s->name);
		fprintf(r->out, ",\"line\":%d,\"message\":", line);
		json_string(r->out, message);
		fprintf(r->out, "}\n");
	}
}

void report_failure(struct run *r, const struct op *op, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(r, op ? op->line : 0, "failure", fmt, ap);
	va_end(ap);
}

void report_bad_input(struct run *r, int line, const char *fmt, ...)
{
	va_list ap;
	r->bad_input = true;
	va_start(ap, fmt);
	vreport(r, line, "bad_input", fmt, ap);
	va_end(ap);
}

void report_expect_passed(struct run *r, const struct op *op)
{
	if (!r->opts->json)
		return;
	fprintf(r->out, "{\"event\":\"expect\",\"file\":");
	json_string(r->out, r->s->name);
	fprintf(r->out, ",\"line\":%d,\"text\":", op->line);
	json_string(r->out, op->text);
	fprintf(r->out, ",\"ok\":true}\n");
}

void report_summary(struct run *r, int status)
{
	static const char *const words[] = { "ok", "failed", "bad input" };
	if (r->opts->json) {
		fprintf(r->out, "{\"event\":\"summary\",\"file\":");
		json_string(r->out, r->s->name);
		fprintf(r->out, ",\"status\":\"%s\",\"exit\":%d,\"expectations\":%d,\"failed\":%d}\n",
			words[status], status, r->expectations, r->failures);
	} else if (status == RUN_OK) {
		fprintf(r->out, "%s: ok (%d expectation%s)\n", r->s->name, r->expectations,
			r->expectations == 1 ? "" : "s");
	} else if (status == RUN_EXPECTATION_FAILED) {
		fprintf(r->out, "%s: FAILED (%d failure%s; %d expectation%s checked)\n", r->s->name,
			r->failures, r->failures == 1 ? "" : "s", r->expectations,
			r->expectations == 1 ? "" : "s");
	} else {
		fprintf(r->out, "%s: bad input\n", r->s->name);
	}
	fflush(r->out);
}
