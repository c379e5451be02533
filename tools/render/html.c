/*
 * html.c - the explorer: one self-contained HTML page (`cowvm run --html FILE.html`) for a run
 * of one or more scenarios, rendered from their finished step logs.
 *
 * The page is the static text of html_page.h (style and script inline, no network, it opens
 * from file://) with one <script type="application/json"> element per scenario holding the
 * log as data (below); the script draws the timeline of every step, and for the selected step
 * (the URL fragment #step=N, the arrow keys, a click) each process's VMAs and PTEs, the frames
 * with their mappers and pins, the sharing graph as SVG with a legend, what changed since the
 * previous step, the step's fault trees with their reasons and its expectations.
 *
 * Every text from a scenario reaches the page only inside JSON strings, where <, > and & are
 * written as \u003c, \u003e and \u0026 (so no "</script>" can end the data element), and the
 * script puts it in the document as text nodes and attributes, never as markup.
 *
 * The data of one scenario (the "explorer" format, read only by the page's script):
 *   { file, status ("ok", "failed", "bad input"), expectations, failures, zero_frame,
 *     steps: [ { line, text, op, state (index in states, -1), events: [ ... ] } ],
 *     states: [ { processes: [ { name, pid, live, threads, rss, vmas: [ { start, end, perms,
 *                   name, pages_with_pte, pages: [ { addr, label, pte, frame, present,
 *                   writable, dirty, accessed, soft_dirty, anon_exclusive,
 *                   mapped_exclusively, swap } ] } ] } ],
 *                 frames: [ { frame, state, refcount, mapcount, anon_exclusive, swapcache, lru,
 *                   mapped_by: [ { process, addr, label, snapshot } ], held_by: [ pin ] } ],
 *                 pins: [ { name, held, how, frames } ], vmstat: { name: value } } ] }
 * Frames are words: a number as text, "zero" for the zero page, "-" for none.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lang/words.h"
#include "render/html_page.h"
#include "render/render.h"
#include "run/run.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)
#define MAX_PAGES_PER_VMA 256
#define SWP_EXCLUSIVE_BIT (1ull << 3) /* x86 _PAGE_SWP_EXCLUSIVE (_PAGE_PWT) in a swap PTE */

struct html_writer {
	FILE *f;
	char *path;
	int scenarios;
	int error;               /* the first write error */
};

/* A JSON string that is safe inside <script>: UTF-8 passes through, <, >, & are escaped. */
static void hstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(f, "\\%c", *c);
		else if (*c == '\n')
			fputs("\\n", f);
		else if (*c == '\t')
			fputs("\\t", f);
		else if (*c < 0x20 || *c == 0x7f || *c == '<' || *c == '>' || *c == '&')
			fprintf(f, "\\u%04x", *c);
		else
			fputc(*c, f);
	}
	fputc('"', f);
}

static void hkey(FILE *f, bool *first, const char *key)
{
	fprintf(f, "%s\"%s\":", *first ? "" : ",", key);
	*first = false;
}

static void hkstr(FILE *f, bool *first, const char *key, const char *value)
{
	hkey(f, first, key);
	hstr(f, value);
}

static void hkint(FILE *f, bool *first, const char *key, int64_t value)
{
	hkey(f, first, key);
	fprintf(f, "%" PRId64, value);
}

static void hkbool(FILE *f, bool *first, const char *key, bool value)
{
	hkey(f, first, key);
	fputs(value ? "true" : "false", f);
}

static void hkhex(FILE *f, bool *first, const char *key, uint64_t value)
{
	hkey(f, first, key);
	fprintf(f, "\"%#" PRIx64 "\"", value);
}

static void hkframe(FILE *f, bool *first, const char *key, uint64_t pfn, uint64_t zero_pfn)
{
	char word[24];
	frame_word(pfn, zero_pfn, word, sizeof word);
	hkstr(f, first, key, word);
}

/* ---- events ------------------------------------------------------------------------------------ */

static void trace_json(FILE *f, const struct log_trace *t)
{
	static const char *const kinds[] = { "?", "enter", "leave", "note" };
	bool first = true;
	fputc('{', f);
	hkstr(f, &first, "kind", kinds[t->kind >= 1 && t->kind <= 3 ? t->kind : 0]);
	hkint(f, &first, "depth", t->depth);
	hkstr(f, &first, "name", t->name);
	if (t->reason)
		hkstr(f, &first, "why", t->reason);
	if (t->decision)
		hkbool(f, &first, "decision", true);
	if (t->task && !t->in_fault)
		hkstr(f, &first, "process", t->task);
	if (t->nfacts) {
		hkey(f, &first, "facts");
		fputc('[', f);
		for (int i = 0; i < t->nfacts; i++) {
			char value[256];
			trace_fact_text(&t->facts[i], value, sizeof value);
			fprintf(f, "%s[", i ? "," : "");
			hstr(f, t->facts[i].key);
			fputc(',', f);
			hstr(f, value);
			fputc(']', f);
		}
		fputc(']', f);
	}
	fputc('}', f);
}

static void path_json(FILE *f, bool *first, const struct log_fault *lf, int from)
{
	hkey(f, first, "path");
	fputc('[', f);
	for (int i = from; i < lf->npath; i++) {
		if (i > from)
			fputc(',', f);
		hstr(f, lf->path[i]);
	}
	fputc(']', f);
}

static void fault_json(FILE *f, const struct step_log *log, const struct log_event *ev)
{
	const struct log_fault *lf = &ev->fault;
	const struct log_trace *rule = fault_decision(log, ev);
	int end = log_event_index(log, ev);
	bool first = true;
	hkstr(f, &first, "k", "fault");
	hkstr(f, &first, "process", lf->task);
	hkstr(f, &first, "access", lf->access);
	hkhex(f, &first, "addr", lf->addr);
	path_json(f, &first, lf, 0);
	hkframe(f, &first, "old", lf->old_pfn, log->zero_pfn);
	hkframe(f, &first, "new", lf->new_pfn, log->zero_pfn);
	hkstr(f, &first, "outcome", lf->outcome);
	if (rule)
		hkstr(f, &first, "rule", rule->name);
	hkey(f, &first, "tree");
	fputc('[', f);
	bool any = false;
	for (int i = lf->tree; lf->tree >= 0 && end >= 0 && i < end; i++) {
		const struct log_event *e = &log->events[i];
		if (e->kind != LOG_TRACE || e->trace.kind == COWVM_TRACE_LEAVE)
			continue;
		if (any)
			fputc(',', f);
		trace_json(f, &e->trace);
		any = true;
	}
	fputc(']', f);
}

static void phase_json(FILE *f, const struct log_event *ev)
{
	const struct log_fault *lf = &ev->fault;
	bool first = true;
	hkstr(f, &first, "k", "phase");
	hkstr(f, &first, "process", lf->task);
	hkstr(f, &first, "call", lf->access);
	hkstr(f, &first, "region", lf->npath > 1 ? lf->path[1] : "?");
	hkhex(f, &first, "addr", lf->addr);
	hkhex(f, &first, "end", lf->end);
	path_json(f, &first, lf, 2);
	hkstr(f, &first, "outcome", lf->outcome);
}

static void result_json(FILE *f, const struct step_log *log, const struct log_event *ev)
{
	const struct log_result *res = &ev->result;
	bool first = true;
	hkstr(f, &first, "k", "result");
	if (res->error)
		hkstr(f, &first, "error", errno_name(res->error));
	hkint(f, &first, "value", res->value);
	if (ev->op && ev->op->kind == OP_PIN) {
		hkstr(f, &first, "pin", log->s->pin_names[ev->op->pin]);
		hkey(f, &first, "frames");
		fputc('[', f);
		for (size_t k = 0; k < res->pin_pages && k < LOG_PIN_FRAMES; k++) {
			char word[24];
			frame_word(res->pin_pfns[k], log->zero_pfn, word, sizeof word);
			fprintf(f, "%s", k ? "," : "");
			hstr(f, word);
		}
		fputc(']', f);
	}
	if (res->has_merge) {
		hkey(f, &first, "merge");
		fputc('{', f);
		for (int i = 0; i < nr_merge_fields; i++)
			fprintf(f, "%s\"%s\":%" PRIu64, i ? "," : "", merge_fields[i].name,
				merge_value(&res->merge, i));
		fputc('}', f);
	}
}

/* `show VIEW`: the view's text, as the console prints it. */
static void view_json(FILE *f, const struct step_log *log, const struct log_event *ev)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	bool first = true;
	hkstr(f, &first, "k", "view");
	if (m) {
		render_view(m, false, log, log_state_at(log, ev->view.state), &ev->view, ev->line);
		fclose(m);
		hkstr(f, &first, "text", text);
	}
	free(text);
}

static bool event_json(FILE *f, const struct step_log *log, const struct log_event *ev, bool any)
{
	switch (ev->kind) {
	case LOG_FAULT: case LOG_PHASE: case LOG_RESULT: case LOG_EXPECT: case LOG_FAILURE:
	case LOG_BAD_INPUT: case LOG_VIEW: case LOG_ECHO:
		break;
	case LOG_TRACE:
		if (!ev->trace.in_fault && ev->trace.kind != COWVM_TRACE_LEAVE)
			break;
		return false;
	default:
		return false;
	}
	bool first = true;
	fputs(any ? ",{" : "{", f);
	switch (ev->kind) {
	case LOG_FAULT: fault_json(f, log, ev); break;
	case LOG_PHASE: phase_json(f, ev); break;
	case LOG_RESULT: result_json(f, log, ev); break;
	case LOG_EXPECT:
		hkstr(f, &first, "k", "expect");
		hkstr(f, &first, "text", ev->op ? ev->op->text : "");
		break;
	case LOG_FAILURE:
	case LOG_BAD_INPUT:
		hkstr(f, &first, "k", ev->kind == LOG_FAILURE ? "failure" : "bad_input");
		hkint(f, &first, "line", ev->line);
		hkstr(f, &first, "message", ev->message);
		break;
	case LOG_VIEW: view_json(f, log, ev); break;
	case LOG_ECHO:
		hkstr(f, &first, "k", "echo");
		hkstr(f, &first, "text", ev->op ? ev->op->text : "");
		break;
	case LOG_TRACE:
		hkstr(f, &first, "k", "step");
		hkey(f, &first, "step");
		trace_json(f, &ev->trace);
		break;
	default: break;
	}
	fputc('}', f);
	return true;
}

/* ---- states ------------------------------------------------------------------------------------ */

static const char *frame_state_word(int state)
{
	static const char *const names[] = { "free", "reserved", "zero", "pgtable", "anon", "shmem",
					     "pinned", "swapcache" };
	return state >= 0 && state <= COWVM_FRAME_SWAPCACHE ? names[state] : "?";
}

/* "buf[3]" or "heap[0]" for a page of a named region, else "". */
static void page_label(const struct step_log *log, const struct log_state *st, int process,
		       uint64_t addr, char *out, size_t len)
{
	int id = state_region_at(log, st, process, addr, addr + PG);
	const struct state_process *p = &st->processes[process];
	if (id >= 0)
		snprintf(out, len, "%s[%" PRIu64 "]", log->s->region_names[id],
			 (addr - st->regions[id].start) / PG);
	else if (log->s->heap_region >= 0 && addr >= p->start_brk && p->knows_region[log->s->heap_region])
		snprintf(out, len, "heap[%" PRIu64 "]", (addr - p->start_brk) / PG);
	else
		out[0] = 0;
}

/* The process that made a state's mapper (pid < 0: the child's dput SNAP image). */
static int process_of_pid(const struct log_state *st, int pid)
{
	for (int i = st->nr_processes - 1; i >= 0; i--)
		if (st->processes[i].pid == pid)
			return i;
	return -1;
}

static void page_json(FILE *f, const struct step_log *log, const struct log_state *st, int p,
		      const struct state_page *pg)
{
	uint64_t word = pg->pagemap, pte = pg->pte;
	bool present = word & COWVM_PM_PRESENT, swap = word & COWVM_PM_SWAP;
	uint64_t pfn = present ? word & COWVM_PM_PFN_MASK : 0;
	const struct state_frame *sf = pfn ? state_frame(st, pfn) : NULL;
	char label[200];
	bool first = true;
	page_label(log, st, p, pg->addr, label, sizeof label);
	fputc('{', f);
	hkhex(f, &first, "addr", pg->addr);
	hkstr(f, &first, "label", label);
	hkhex(f, &first, "pte", pte);
	hkframe(f, &first, "frame", pfn, st->zero_pfn);
	hkbool(f, &first, "present", present);
	hkbool(f, &first, "writable", present && (pte & 3) == 3);
	hkbool(f, &first, "dirty", present && (pte & (1ull << 6)));
	hkbool(f, &first, "accessed", present && (pte & (1ull << 5)));
	hkbool(f, &first, "soft_dirty", word & COWVM_PM_SOFT_DIRTY);
	hkbool(f, &first, "anon_exclusive", present ? sf && sf->info.anon_exclusive
						    : swap && (pte & SWP_EXCLUSIVE_BIT));
	hkbool(f, &first, "mapped_exclusively", word & COWVM_PM_MMAP_EXCLUSIVE);
	hkbool(f, &first, "swap", swap);
	fputc('}', f);
}

static void process_json(FILE *f, const struct step_log *log, const struct log_state *st, int p)
{
	const struct state_process *sp = &st->processes[p];
	bool first = true;
	fputc('{', f);
	hkstr(f, &first, "name", sp->name);
	hkint(f, &first, "pid", sp->pid);
	hkbool(f, &first, "live", sp->live && sp->live_threads > 0);
	hkint(f, &first, "threads", sp->live_threads);
	hkint(f, &first, "rss", (int64_t)(sp->stats.rss_anon + sp->stats.rss_shmem));
	hkey(f, &first, "vmas");
	fputc('[', f);
	for (int i = 0; sp->live && sp->vmas_ok && i < sp->nr_vmas; i++) {
		const struct state_vma *sv = &st->vmas[sp->first_vma + i];
		const struct cowvm_vma_info *v = &sv->info;
		char perms[5], name[160];
		bool vf = true;
		prot_to_text(v->prot, perms);
		perms[3] = v->shared ? 's' : 'p';
		perms[4] = 0;
		state_vma_name(log, st, p, v, name, sizeof name);
		fputs(i ? ",{" : "{", f);
		hkhex(f, &vf, "start", v->start);
		hkhex(f, &vf, "end", v->end);
		hkstr(f, &vf, "perms", perms);
		hkstr(f, &vf, "name", name);
		hkint(f, &vf, "pages_with_pte", sv->nr_pages);
		hkey(f, &vf, "pages");
		fputc('[', f);
		for (int k = 0; k < sv->nr_pages && k < MAX_PAGES_PER_VMA; k++) {
			if (k)
				fputc(',', f);
			page_json(f, log, st, p, &st->pages[sv->first_page + k]);
		}
		fputs("]}", f);
	}
	fputs("]}", f);
}

static void frame_json(FILE *f, const struct step_log *log, const struct log_state *st,
		       const struct state_frame *sf)
{
	static const char *const lru[] = { "-", "inactive", "active", "unevictable" };
	const struct cowvm_frame_info *fi = &sf->info;
	bool first = true;
	fputc('{', f);
	hkframe(f, &first, "frame", fi->pfn, st->zero_pfn);
	hkstr(f, &first, "state", frame_state_word(fi->state));
	hkint(f, &first, "refcount", fi->refcount);
	hkint(f, &first, "mapcount", fi->mapcount);
	hkbool(f, &first, "anon_exclusive", fi->anon_exclusive);
	hkbool(f, &first, "swapcache", fi->swapcache);
	hkstr(f, &first, "lru", fi->lru >= 0 && fi->lru <= 3 ? lru[fi->lru] : "?");
	hkey(f, &first, "mapped_by");
	fputc('[', f);
	for (int m = 0; m < sf->nr_mappers; m++) {
		const struct state_mapper *mp = &st->mappers[sf->first_mapper + m];
		int p = process_of_pid(st, mp->pid < 0 ? -mp->pid : mp->pid);
		char buf[32], label[200] = "";
		bool mf = true;
		if (p >= 0 && mp->pid > 0)
			page_label(log, st, p, mp->addr, label, sizeof label);
		fputs(m ? ",{" : "{", f);
		hkstr(f, &mf, "process", p >= 0 ? st->processes[p].name
					       : state_process_name(st, mp->pid, buf, sizeof buf));
		hkhex(f, &mf, "addr", mp->addr);
		hkstr(f, &mf, "label", label);
		hkbool(f, &mf, "snapshot", mp->pid < 0);
		fputc('}', f);
	}
	fputs("],\"held_by\":[", f);
	bool any = false;
	for (int i = 0; i < st->nr_pins; i++)
		if (state_pin_holds(&st->pins[i], fi->pfn)) {
			if (any)
				fputc(',', f);
			hstr(f, log->s->pin_names[i]);
			any = true;
		}
	fputs("]}", f);
}

static void state_json(FILE *f, const struct step_log *log, const struct log_state *st)
{
	fputs("{\"processes\":[", f);
	for (int p = 0; p < st->nr_processes; p++) {
		if (p)
			fputc(',', f);
		process_json(f, log, st, p);
	}
	fputs("],\"frames\":[", f);
	bool any = false;
	for (int i = 0; i < st->nr_frames; i++) {
		const struct state_frame *sf = &st->frames[i];
		if (sf->info.state == COWVM_FRAME_FREE)
			continue;
		if (any)
			fputc(',', f);
		frame_json(f, log, st, sf);
		any = true;
	}
	fputs("],\"pins\":[", f);
	for (int i = 0; i < st->nr_pins; i++) {
		const struct state_pin *sp = &st->pins[i];
		bool first = true;
		char how[40];
		snprintf(how, sizeof how, "%s%s%s", (sp->foll & COWVM_FOLL_GET) ? "get" : "pin",
			 (sp->foll & COWVM_FOLL_WRITE) ? " write" : "",
			 (sp->foll & COWVM_FOLL_LONGTERM) ? " longterm" : "");
		fputs(i ? ",{" : "{", f);
		hkstr(f, &first, "name", log->s->pin_names[i]);
		hkbool(f, &first, "held", sp->held);
		hkstr(f, &first, "how", how);
		hkey(f, &first, "frames");
		fputc('[', f);
		for (size_t k = 0; k < sp->npages && k < MAX_PAGES_PER_VMA; k++) {
			char word[24];
			frame_word(sp->pfns[k], st->zero_pfn, word, sizeof word);
			fprintf(f, "%s", k ? "," : "");
			hstr(f, word);
		}
		fputs("]}", f);
	}
	const struct cowvm_vmstat *vs = &st->vmstat;
	fprintf(f, "],\"vmstat\":{\"nr_free_pages\":%" PRIu64 ",\"nr_anon_pages\":%" PRIu64
		",\"nr_zero_page_mappings\":%" PRIu64 ",\"pgfault\":%" PRIu64 ",\"pgreuse\":%" PRIu64
		",\"cow_copies\":%" PRIu64 ",\"nr_pinned\":%" PRIu64 ",\"tlb_flushes\":%" PRIu64
		",\"pswpout\":%" PRIu64 ",\"pswpin\":%" PRIu64 "}}",
		vs->nr_free_pages, vs->nr_anon_pages, vs->nr_zero_page_mappings, vs->pgfault,
		vs->pgreuse, vs->cow_copies, vs->nr_pinned, vs->tlb_flushes, vs->pswpout, vs->pswpin);
}

static void log_json(FILE *f, const struct step_log *log)
{
	static const char *const words[] = { "ok", "failed", "bad input" };
	struct log_summary sum = { .status = RUN_BAD_INPUT };
	for (int i = log->nr_events - 1; i >= 0; i--)
		if (log->events[i].kind == LOG_SUMMARY) {
			sum = log->events[i].summary;
			break;
		}
	bool first = true;
	fputc('{', f);
	hkstr(f, &first, "file", log->file);
	hkstr(f, &first, "status", words[sum.status >= 0 && sum.status <= 2 ? sum.status : 2]);
	hkint(f, &first, "expectations", sum.expectations);
	hkint(f, &first, "failures", sum.failures);
	hkframe(f, &first, "zero_frame", log->zero_pfn, log->zero_pfn);
	hkbool(f, &first, "lost", log->lost);
	fputs(",\"steps\":[", f);
	for (int s = 0; s < log->nr_steps; s++) {
		const struct log_step *step = &log->steps[s];
		bool sf = true;
		fputs(s ? ",{" : "{", f);
		hkint(f, &sf, "line", step->line);
		hkstr(f, &sf, "text", step->op ? step->op->text : s ? "the end of the run" : "the start");
		hkstr(f, &sf, "op", step->op ? op_name(step->op->kind) : "");
		hkint(f, &sf, "state", step->state);
		fputs(",\"events\":[", f);
		bool any = false;
		for (int e = step->first_event; e < step->first_event + step->nr_events; e++)
			any |= event_json(f, log, &log->events[e], any);
		fputs("]}", f);
	}
	fputs("],\"states\":[", f);
	for (int i = 0; i < log->nr_states; i++) {
		if (i)
			fputc(',', f);
		state_json(f, log, log->states[i]);
	}
	fputs("]}", f);
}

/* ---- the file ----------------------------------------------------------------------------------- */

struct html_writer *html_open(const char *path, int *error)
{
	struct html_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->path = strdup(path))) {
		free(w);
		*error = ENOMEM;
		return NULL;
	}
	if (!(w->f = fopen(path, "w"))) {
		*error = errno;
		free(w->path);
		free(w);
		return NULL;
	}
	fputs(html_page_head, w->f);
	return w;
}

const char *html_path(const struct html_writer *w)
{
	return w->path;
}

void html_add_log(struct html_writer *w, const struct step_log *log)
{
	fprintf(w->f, "<script type=\"application/json\" class=\"cowvm-run\" id=\"run%d\">", w->scenarios++);
	log_json(w->f, log);
	fputs("</script>\n", w->f);
	if (ferror(w->f) && !w->error)
		w->error = EIO;
}

int html_close(struct html_writer *w)
{
	fputs(html_page_tail, w->f);
	int error = w->error;
	if (ferror(w->f) && !error)
		error = EIO;
	if (fclose(w->f) && !error)
		error = errno;
	free(w->path);
	free(w);
	return error;
}
