/*
 * capture.c - snapshots of the machine for the step log: every process with its VMAs, the page
 * table entries they have, smaps and counters; every anon, shmem, zero-page and pinned-only
 * frame with what rmap finds mapping it; the pins; the regions.  This is the one place where
 * what the renderers show is read from the library (through the public API only), so that
 * they can draw any captured moment without the machine.
 *
 * Cost: one walk of every page of every VMA (cowvm_pte) and of every frame of the machine; the
 * runner captures only the states the log asks for (log->capture).  Out of memory: -1, and the
 * view that wanted the state shows nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/runner.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)

static int collect_one(void *arg, const struct cowvm_vma_info *vma)
{
	struct vma_list *list = arg;
	if (list->count == list->capacity) {
		int cap = list->capacity ? list->capacity * 2 : 16;
		struct cowvm_vma_info *grown = realloc(list->vmas, (size_t)cap * sizeof *grown);
		if (!grown)
			return 1;
		list->vmas = grown;
		list->capacity = cap;
	}
	list->vmas[list->count++] = *vma;
	return 0;
}

bool collect_vmas(cowvm_task_t *t, struct vma_list *list)
{
	memset(list, 0, sizeof *list);
	return cowvm_for_each_vma(t, collect_one, list) == 0;
}

cowvm_task_t *process_task(struct run *r, int process)
{
	for (int i = 0; i < r->s->nr_tasks; i++)
		if (r->tasks[i].task && r->tasks[i].process == process)
			return r->tasks[i].task;
	return NULL;
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

/* Growing arrays of the state. */
#define PUSH(st, arr, nr, cap, val)                                                          \
	do {                                                                                 \
		if ((st)->nr == (cap)) {                                                     \
			int c_ = (cap) ? (cap) * 2 : 32;                                     \
			void *g_ = realloc((st)->arr, (size_t)c_ * sizeof *(st)->arr);       \
			if (!g_)                                                             \
				goto oom;                                                    \
			(st)->arr = g_;                                                      \
			(cap) = c_;                                                          \
		}                                                                            \
		(st)->arr[(st)->nr++] = (val);                                               \
	} while (0)

struct caps {
	int processes, vmas, pages, frames, mappers;
};

struct mapper_walk {
	struct log_state *st;
	struct caps *caps;
	bool oom;
};

static int note_mapper(void *arg, int pid, uint64_t addr)
{
	struct mapper_walk *w = arg;
	struct log_state *st = w->st;
	PUSH(st, mappers, nr_mappers, w->caps->mappers, ((struct state_mapper){ .pid = pid, .addr = addr }));
	return 0;
oom:
	w->oom = true;
	return 1;
}

static bool capture_process(struct run *r, struct log_state *st, struct caps *caps, int p)
{
	const struct run_process *rp = &r->processes[p];
	struct state_process sp = {
		.pid = rp->pid, .name = rp->name, .live_threads = rp->live_threads,
		.start_brk = rp->start_brk, .brk = rp->start_brk, .faults = process_faults(r, p),
		.first_vma = st->nr_vmas,
	};
	sp.knows_region = calloc((size_t)r->s->nr_regions + 1, sizeof(bool));
	if (!sp.knows_region)
		return false;
	memcpy(sp.knows_region, rp->knows_region, (size_t)r->s->nr_regions * sizeof(bool));
	cowvm_task_t *t = process_task(r, p);
	struct vma_list vmas = { 0 };
	if (t) {
		sp.live = true;
		sp.brk = (uint64_t)cowvm_brk(t, 0); /* brk(0) fails and returns the break */
		process_stats(r, p, &sp.stats);
		sp.has_rollup = cowvm_smaps(t, 0, 0, &sp.rollup) == 0;
		sp.vmas_ok = collect_vmas(t, &vmas);
	}
	for (int i = 0; sp.vmas_ok && i < vmas.count; i++) {
		const struct cowvm_vma_info *v = &vmas.vmas[i];
		struct state_vma sv = { .info = *v, .first_page = st->nr_pages };
		sv.has_smaps = cowvm_smaps(t, v->start, v->end - v->start, &sv.smaps) == 0;
		bool none_known = false;
		for (uint64_t a = v->start; a < v->end; a += PG) {
			uint64_t pte = cowvm_pte(t, a);
			if (!pte) {
				if (!none_known)
					sv.none_word = cowvm_pagemap(t, a);
				none_known = true;
				continue;
			}
			struct state_page pg = { .addr = a, .pagemap = cowvm_pagemap(t, a), .pte = pte };
			PUSH(st, pages, nr_pages, caps->pages, pg);
		}
		sv.nr_pages = st->nr_pages - sv.first_page;
		PUSH(st, vmas, nr_vmas, caps->vmas, sv);
	}
	free(vmas.vmas);
	sp.nr_vmas = st->nr_vmas - sp.first_vma;
	PUSH(st, processes, nr_processes, caps->processes, sp);
	return true;
oom:
	free(vmas.vmas);
	free(sp.knows_region);
	return false;
}

int capture_state(struct run *r)
{
	struct log_state *st = calloc(1, sizeof *st);
	struct caps caps = { 0 };
	if (!st)
		return -1;
	cowvm_vmstat(r->vm, &st->vmstat);
	st->zero_pfn = r->zero_pfn;
	st->snapped = r->snapped;
	for (int p = 0; p < r->nr_processes; p++)
		if (!capture_process(r, st, &caps, p))
			goto oom;
	for (uint64_t pfn = 0; pfn < st->vmstat.nr_total_pages; pfn++) {
		struct cowvm_frame_info fi;
		if (cowvm_frame_info(r->vm, pfn, &fi) || (fi.state != COWVM_FRAME_ANON &&
		    fi.state != COWVM_FRAME_SHMEM && fi.state != COWVM_FRAME_ZERO &&
		    fi.state != COWVM_FRAME_PINNED))
			continue;
		struct state_frame sf = { .info = fi, .first_mapper = st->nr_mappers };
		if (fi.state != COWVM_FRAME_ZERO) {
			struct mapper_walk w = { .st = st, .caps = &caps };
			cowvm_rmap_walk(r->vm, pfn, note_mapper, &w);
			if (w.oom)
				goto oom;
		}
		sf.nr_mappers = st->nr_mappers - sf.first_mapper;
		PUSH(st, frames, nr_frames, caps.frames, sf);
	}
	st->pins = calloc((size_t)r->s->nr_pins + 1, sizeof *st->pins);
	st->regions = calloc((size_t)r->s->nr_regions + 1, sizeof *st->regions);
	if (!st->pins || !st->regions)
		goto oom;
	st->nr_pins = r->s->nr_pins;
	for (int i = 0; i < r->s->nr_pins; i++) {
		const struct run_pin *rp = &r->pins[i];
		struct state_pin *sp = &st->pins[i];
		sp->held = rp->pin != NULL;
		sp->foll = rp->foll;
		if (!sp->held)
			continue;
		sp->npages = rp->npages;
		if (!(sp->pfns = calloc(rp->npages ? rp->npages : 1, sizeof *sp->pfns)))
			goto oom;
		for (size_t k = 0; k < rp->npages; k++)
			sp->pfns[k] = cowvm_pin_pfn(rp->pin, k);
	}
	st->nr_regions = r->s->nr_regions;
	for (int i = 0; i < r->s->nr_regions; i++)
		st->regions[i] = (struct state_region){ .mapped = r->regions[i].mapped,
							.start = r->regions[i].start,
							.length = r->regions[i].length };
	return log_add_state(r->log, st);
oom:
	log_state_free(st);
	return -1;
}
