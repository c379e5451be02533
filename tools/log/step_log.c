/*
 * step_log.c - keeping the step log (appends, states, freeing) and the read-only questions
 * the renderers ask of a state (which region labels an address, what a VMA is called, which
 * pins hold a frame).  Nothing here calls the library: a state is all there is.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/step_log.h"

static bool grow(void **array, int *cap, int need, size_t size)
{
	if (need <= *cap)
		return true;
	int n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	void *g = realloc(*array, (size_t)n * size);
	if (!g)
		return false;
	*array = g;
	*cap = n;
	return true;
}

void log_init(struct step_log *log, const char *file, const struct scenario *s)
{
	memset(log, 0, sizeof *log);
	char *copy = strdup(file ? file : "-");
	log->file = copy ? copy : "-"; /* out of memory: messages still name something */
	log->file_owned = copy != NULL;
	log->s = s;
	log->capture = LOG_CAPTURE_VIEWS;
	log_begin_step(log, NULL);
}

void log_state_free(struct log_state *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->nr_processes; i++)
		free(st->processes[i].knows_region);
	for (int i = 0; i < st->nr_pins; i++)
		free(st->pins[i].pfns);
	free(st->processes);
	free(st->vmas);
	free(st->pages);
	free(st->frames);
	free(st->mappers);
	free(st->pins);
	free(st->regions);
	free(st);
}

void log_free(struct step_log *log)
{
	for (int i = 0; i < log->nr_events; i++)
		free(log->events[i].message);
	for (int i = 0; i < log->nr_states; i++)
		log_state_free(log->states[i]);
	free(log->events);
	free(log->steps);
	free(log->states);
	if (log->file_owned)
		free((char *)log->file);
	memset(log, 0, sizeof *log);
}

void log_begin_step(struct step_log *log, const struct op *op)
{
	if (!grow((void **)&log->steps, &log->cap_steps, log->nr_steps + 1, sizeof *log->steps)) {
		log->lost = true;
		return;
	}
	log->steps[log->nr_steps++] = (struct log_step){
		.line = op ? op->line : 0, .op = op, .first_event = log->nr_events, .state = -1,
	};
}

const struct log_event *log_append(struct step_log *log, const struct log_event *in)
{
	struct log_event ev = *in;
	ev.step = log->nr_steps - 1;
	if (!ev.op && ev.step >= 0 && log->steps[ev.step].op && !ev.line)
		ev.op = log->steps[ev.step].op;
	if (ev.op && !ev.line)
		ev.line = ev.op->line;
	if ((ev.kind == LOG_FAULT || ev.kind == LOG_PHASE) && ev.fault.task) {
		ev.message = strdup(ev.fault.task);
		ev.fault.task = ev.message ? ev.message : "?";
	}
	if (ev.kind == LOG_TRACE && ev.trace.task) {
		ev.message = strdup(ev.trace.task);
		ev.trace.task = ev.message ? ev.message : "?";
	}
	const struct log_event *kept = NULL;
	if (grow((void **)&log->events, &log->cap_events, log->nr_events + 1, sizeof *log->events)) {
		log->events[log->nr_events] = ev;
		kept = &log->events[log->nr_events++];
		if (ev.step >= 0)
			log->steps[ev.step].nr_events = log->nr_events - log->steps[ev.step].first_event;
	} else {
		log->lost = true;
	}
	if (log->observer)
		log->observer(log->observer_arg, log, kept ? kept : &ev);
	if (!kept)
		free(ev.message);
	return kept;
}

void log_message(struct step_log *log, enum log_event_kind kind, int line, const struct op *op,
		 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct log_event ev = { .kind = kind, .line = line, .op = op };
	if (vasprintf(&ev.message, fmt, ap) < 0)
		ev.message = NULL;
	va_end(ap);
	if (!ev.message)
		ev.message = strdup("out of memory");
	log_append(log, &ev);
}

int log_add_state(struct step_log *log, struct log_state *st)
{
	if (!st)
		return -1;
	if (!grow((void **)&log->states, &log->cap_states, log->nr_states + 1, sizeof *log->states)) {
		log_state_free(st);
		log->lost = true;
		return -1;
	}
	st->step = log->nr_steps - 1;
	log->states[log->nr_states] = st;
	if (st->step >= 0)
		log->steps[st->step].state = log->nr_states;
	return log->nr_states++;
}

/* ---- reading -------------------------------------------------------------------------------- */

const struct log_state *log_state_at(const struct step_log *log, int index)
{
	return index >= 0 && index < log->nr_states ? log->states[index] : NULL;
}

const struct state_frame *state_frame(const struct log_state *st, uint64_t pfn)
{
	int lo = 0, hi = st->nr_frames;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (st->frames[mid].info.pfn < pfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < st->nr_frames && st->frames[lo].info.pfn == pfn ? &st->frames[lo] : NULL;
}

uint64_t state_pagemap(const struct log_state *st, const struct state_vma *v, uint64_t addr,
		       uint64_t *pte)
{
	int lo = v->first_page, hi = v->first_page + v->nr_pages;
	addr &= ~(uint64_t)(COWVM_PAGE_SIZE - 1);
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (st->pages[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < v->first_page + v->nr_pages && st->pages[lo].addr == addr) {
		if (pte)
			*pte = st->pages[lo].pte;
		return st->pages[lo].pagemap;
	}
	if (pte)
		*pte = 0;
	return v->none_word;
}

int state_region_at(const struct step_log *log, const struct log_state *st, int process,
		    uint64_t start, uint64_t end)
{
	const bool *knows = st->processes[process].knows_region;
	for (int i = 0; i < st->nr_regions; i++) {
		const struct state_region *rg = &st->regions[i];
		if (i != log->s->heap_region && knows[i] && rg->mapped && rg->start < end &&
		    start < rg->start + rg->length)
			return i;
	}
	return -1;
}

void state_vma_name(const struct step_log *log, const struct log_state *st, int process,
		    const struct cowvm_vma_info *v, char *out, size_t len)
{
	const struct state_process *p = &st->processes[process];
	uint64_t start_brk = p->start_brk, brk = p->live ? p->brk : start_brk;
	int id = state_region_at(log, st, process, v->start, v->end);
	const char *label = id >= 0 ? log->s->region_names[id] : NULL;
	if (!v->shared && v->start <= brk && v->end >= start_brk && brk > start_brk)
		snprintf(out, len, "[heap]");
	else if (label)
		snprintf(out, len, v->shared ? "[anon_shmem:%s]" : "[anon:%s]", label);
	else
		snprintf(out, len, "%s", v->shared ? "/dev/zero (deleted)" : "");
}

const char *state_process_name(const struct log_state *st, int pid, char *buf, size_t len)
{
	for (int i = st->nr_processes - 1; i >= 0; i--)
		if (st->processes[i].pid == pid)
			return st->processes[i].name;
	snprintf(buf, len, "pid%d", pid);
	return buf;
}

bool state_pin_holds(const struct state_pin *pin, uint64_t pfn)
{
	for (size_t k = 0; pin->held && k < pin->npages; k++)
		if (pin->pfns[k] == pfn)
			return true;
	return false;
}

void state_pins_holding(const struct step_log *log, const struct log_state *st, uint64_t pfn,
			char *out, size_t len)
{
	size_t n = 0;
	out[0] = 0;
	for (int i = 0; i < st->nr_pins; i++)
		if (state_pin_holds(&st->pins[i], pfn) && n + strlen(log->s->pin_names[i]) + 3 < len)
			n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "", log->s->pin_names[i]);
}
