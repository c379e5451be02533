/*
 * views.c - `show` lines and --show: what the machine looked like at a captured state, in the
 * format of the matching /proc file where there is one, so that habits and scripts carry over:
 *   maps          /proc/PID/maps (anonymous regions named [anon:NAME], as PR_SET_VMA_ANON_NAME)
 *   smaps         /proc/PID/smaps, one block per VMA, with VmFlags
 *   smaps_rollup  /proc/PID/smaps_rollup
 *   status        the memory lines of /proc/PID/status, plus the process's fault counts
 *   pagemap       /proc/PID/pagemap words, one line per page, decoded
 *   ptes          the x86-64 page-table entries, with their bits by name
 *   vmstat        /proc/vmstat (and cowvm's own events)
 *   frames        frames with refcount, mapcount, every (process, address) rmap finds and the
 *                 pins that hold them; frames held only by a pin are listed too; a child's
 *                 dput SNAP image is a mapper of its own, C(snapshot):ADDR
 *   graph         Graphviz text (dot.c)
 * Text views start with a "# ..." line saying whose view it is; under --json each view is one
 * JSON object with the same facts.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "render/render.h"
#include "lang/words.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)

/* What one view of one state is drawn with. */
struct view_ctx {
	FILE *out;
	bool json;
	const struct step_log *log;
	const struct log_state *st;
	int line;                 /* the show line, 0 at the end */
};

/* The VMAs of a process in the state. */
struct vma_list {
	const struct state_vma *vmas;
	int count;
};

/* One /proc/PID/maps line (no newline). */
static void maps_line(struct view_ctx *c, int process, const struct cowvm_vma_info *v, char *out,
		      size_t len)
{
	char perms[4], name[160];
	prot_to_text(v->prot, perms);
	state_vma_name(c->log, c->st, process, v, name, sizeof name);
	int n = snprintf(out, len, "%08" PRIx64 "-%08" PRIx64 " %s%c %08" PRIx64 " %s 0 ", v->start,
			 v->end, perms, v->shared ? 's' : 'p', v->shared ? v->pgoff * PG : 0,
			 v->shared ? "00:01" : "00:00");
	if (*name && n > 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, "%*s%s", n < 73 ? 73 - n : 1, "", name);
}

static void view_header(struct view_ctx *c, enum view_kind view, int process)
{
	if (process >= 0)
		fprintf(c->out, "# %s (pid %d): %s\n", c->st->processes[process].name,
			c->st->processes[process].pid, view_name(view));
	else
		fprintf(c->out, "# %s\n", view_name(view));
}

/* {"event":"view","view":..,"file":..,"line":..,"process":..,"pid":.., then the caller's fields */
static void json_view_start(struct view_ctx *c, enum view_kind view, int process)
{
	fprintf(c->out, "{\"event\":\"view\",\"view\":\"%s\",\"file\":", view_name(view));
	json_string(c->out, c->log->file);
	fprintf(c->out, ",\"line\":%d", c->line);
	if (process >= 0) {
		fprintf(c->out, ",\"process\":");
		json_string(c->out, c->st->processes[process].name);
		fprintf(c->out, ",\"pid\":%d", c->st->processes[process].pid);
	}
}

/* Does [a, a_end) meet the range (when there is one)? */
static bool in_range(bool has_range, uint64_t start, uint64_t length, uint64_t a, uint64_t a_end)
{
	return !has_range || (a < start + length && start < a_end);
}

/* ---- maps, smaps, status --------------------------------------------------------------------- */

static void show_maps(struct view_ctx *c, int process, const struct vma_list *vmas)
{
	char line[300], perms[4], name[160];
	if (c->json) {
		json_view_start(c, VIEW_MAPS, process);
		fprintf(c->out, ",\"rows\":[");
		for (int i = 0; i < vmas->count; i++) {
			const struct cowvm_vma_info *v = &vmas->vmas[i].info;
			prot_to_text(v->prot, perms);
			state_vma_name(c->log, c->st, process, v, name, sizeof name);
			fprintf(c->out, "%s{\"start\":\"%#" PRIx64 "\",\"end\":\"%#" PRIx64
				"\",\"perms\":\"%s%c\",\"offset\":%" PRIu64 ",\"flags\":\"%#lx\",\"name\":",
				i ? "," : "", v->start, v->end, perms, v->shared ? 's' : 'p',
				v->shared ? v->pgoff * PG : 0, v->flags);
			json_string(c->out, name);
			fputc('}', c->out);
		}
		fprintf(c->out, "]}\n");
		return;
	}
	view_header(c, VIEW_MAPS, process);
	for (int i = 0; i < vmas->count; i++) {
		maps_line(c, process, &vmas->vmas[i].info, line, sizeof line);
		fprintf(c->out, "%s\n", line);
	}
}

/* VmFlags: Linux's two-letter mnemonics (fs/proc/task_mmu.c show_smap_vma_flags). */
static void vm_flags_text(unsigned long flags, char *out, size_t len)
{
	static const struct {
		unsigned long bit;
		const char *name;
	} mnemonics[] = {
		{ 0x1, "rd" },        { 0x2, "wr" },        { 0x4, "ex" },        { 0x8, "sh" },
		{ 0x10, "mr" },       { 0x20, "mw" },       { 0x40, "me" },       { 0x80, "ms" },
		{ 0x100, "gd" },      { 0x2000, "lo" },     { 0x8000, "sr" },     { 0x10000, "rr" },
		{ 0x20000, "dc" },    { 0x40000, "de" },    { 0x100000, "ac" },   { 0x200000, "nr" },
		{ 0x2000000, "wf" },  { 0x4000000, "dd" },  { 0x8000000, "sd" },  { 0x20000000, "hg" },
		{ 0x40000000, "nh" }, { 0x80000000ul, "mg" },
	};
	size_t n = 0;
	out[0] = 0;
	for (size_t i = 0; i < sizeof mnemonics / sizeof mnemonics[0]; i++)
		if ((flags & mnemonics[i].bit) && n + 4 < len)
			n += (size_t)snprintf(out + n, len - n, "%s ", mnemonics[i].name);
}

static void smaps_fields_text(struct view_ctx *c, const struct cowvm_smaps *sm)
{
	/* Linux's order; KernelPageSize and MMUPageSize after Size */
	for (int f = 0; f < nr_smaps_fields; f++) {
		fprintf(c->out, "%-16s%8" PRIu64 " kB\n", smaps_fields[f].label, smaps_value_kb(sm, f));
		if (f == 0) {
			fprintf(c->out, "%-16s%8u kB\n", "KernelPageSize:", COWVM_PAGE_SIZE >> 10);
			fprintf(c->out, "%-16s%8u kB\n", "MMUPageSize:", COWVM_PAGE_SIZE >> 10);
		}
	}
}

static void smaps_fields_json(struct view_ctx *c, const struct cowvm_smaps *sm)
{
	for (int f = 0; f < nr_smaps_fields; f++)
		fprintf(c->out, ",\"%s\":%" PRIu64, smaps_fields[f].name, smaps_value_kb(sm, f));
}

static void show_smaps(struct view_ctx *c, int process, const struct vma_list *vmas, bool has_range,
		       uint64_t start, uint64_t length)
{
	char line[300], flags[128], name[160];
	if (c->json) {
		json_view_start(c, VIEW_SMAPS, process);
		fprintf(c->out, ",\"vmas\":[");
	} else {
		view_header(c, VIEW_SMAPS, process);
	}
	bool first = true;
	for (int i = 0; i < vmas->count; i++) {
		const struct cowvm_vma_info *v = &vmas->vmas[i].info;
		const struct cowvm_smaps *sm = &vmas->vmas[i].smaps;
		if (!in_range(has_range, start, length, v->start, v->end) || !vmas->vmas[i].has_smaps)
			continue;
		vm_flags_text(v->flags, flags, sizeof flags);
		if (c->json) {
			state_vma_name(c->log, c->st, process, v, name, sizeof name);
			fprintf(c->out, "%s{\"start\":\"%#" PRIx64 "\",\"end\":\"%#" PRIx64 "\",\"name\":",
				first ? "" : ",", v->start, v->end);
			json_string(c->out, name);
			smaps_fields_json(c, sm);
			fprintf(c->out, ",\"vmflags\":");
			json_string(c->out, flags);
			fputc('}', c->out);
		} else {
			maps_line(c, process, v, line, sizeof line);
			fprintf(c->out, "%s\n", line);
			smaps_fields_text(c, sm);
			fprintf(c->out, "VmFlags: %s\n", flags);
		}
		first = false;
	}
	if (c->json)
		fprintf(c->out, "]}\n");
}

static void show_smaps_rollup(struct view_ctx *c, int process, const struct vma_list *vmas)
{
	const struct state_process *p = &c->st->processes[process];
	if (!p->has_rollup)
		return;
	if (c->json) {
		json_view_start(c, VIEW_SMAPS_ROLLUP, process);
		smaps_fields_json(c, &p->rollup);
		fprintf(c->out, "}\n");
		return;
	}
	view_header(c, VIEW_SMAPS_ROLLUP, process);
	uint64_t lo = vmas->count ? vmas->vmas[0].info.start : 0;
	uint64_t hi = vmas->count ? vmas->vmas[vmas->count - 1].info.end : 0;
	int n = fprintf(c->out, "%08" PRIx64 "-%08" PRIx64 " ---p 00000000 00:00 0 ", lo, hi);
	fprintf(c->out, "%*s[rollup]\n", n < 73 ? 73 - n : 1, "");
	smaps_fields_text(c, &p->rollup);
}

static void show_status(struct view_ctx *c, int process)
{
	const struct state_process *p = &c->st->processes[process];
	const struct cowvm_task_stats *st = &p->stats;
	uint64_t faults = p->faults;
	struct {
		const char *name;
		uint64_t kb;
	} lines[] = {
		{ "VmSize", st->total_vm * 4 },
		{ "VmRSS", (st->rss_anon + st->rss_shmem) * 4 },
		{ "RssAnon", st->rss_anon * 4 },
		{ "RssFile", 0 },
		{ "RssShmem", st->rss_shmem * 4 },
		{ "VmPTE", st->nr_ptes * 4 },
		{ "VmSwap", st->rss_swap * 4 },
	};
	if (c->json) {
		json_view_start(c, VIEW_STATUS, process);
		fprintf(c->out, ",\"threads\":%d", p->live_threads);
		for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
			fprintf(c->out, ",\"%s\":%" PRIu64, lines[i].name, lines[i].kb);
		fprintf(c->out, ",\"vmas\":%" PRIu64 ",\"faults\":%" PRIu64 "}\n", st->nr_vmas, faults);
		return;
	}
	view_header(c, VIEW_STATUS, process);
	fprintf(c->out, "Name:\t%s\nTgid:\t%d\nThreads:\t%d\n", p->name, p->pid, p->live_threads);
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		char label[16];
		snprintf(label, sizeof label, "%s:", lines[i].name);
		fprintf(c->out, "%s\t%8" PRIu64 " kB\n", label, lines[i].kb);
	}
	/* cowvm's additions: /proc/PID/stat has these as fields 10 (minflt) and 12 (majflt) */
	fprintf(c->out, "Vmas:\t%" PRIu64 "\nFaults:\t%" PRIu64 "\n", st->nr_vmas, faults);
}

/* ---- pages: pagemap and PTEs ------------------------------------------------------------------- */

static void pte_bits_text(uint64_t pte, char *out, size_t len)
{
	static const struct {
		uint64_t bit;
		const char *name;
	} bits[] = {
		{ 1ull << 0, "present" },   { 1ull << 1, "rw" },       { 1ull << 2, "user" },
		{ 1ull << 5, "accessed" },  { 1ull << 6, "dirty" },    { 1ull << 8, "protnone" },
		{ 1ull << 9, "special" },   { 1ull << 10, "uffd-wp" }, { 1ull << 11, "soft-dirty" },
		{ 1ull << 63, "nx" },
	};
	size_t n = 0;
	out[0] = 0;
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
		if ((pte & bits[i].bit) && n + 12 < len)
			n += (size_t)snprintf(out + n, len - n, "%s%s", n ? " " : "", bits[i].name);
	if (pte && !(pte & 1) && !(pte & (1ull << 8)) && n + 12 < len)
		snprintf(out + n, len - n, "%sswap-entry", n ? " " : "");
}

static void pagemap_flags_text(struct view_ctx *c, uint64_t word, char *out, size_t len)
{
	size_t n = 0;
	out[0] = 0;
#define FLAG(cond, name)                                                                   \
	if ((cond) && n + 16 < len)                                                        \
		n += (size_t)snprintf(out + n, len - n, "%s%s", n ? " " : "", name)
	FLAG(word & COWVM_PM_PRESENT, "present");
	FLAG(word & COWVM_PM_SWAP, "swapped");
	FLAG(word & COWVM_PM_FILE, "file/shared");
	FLAG(word & COWVM_PM_MMAP_EXCLUSIVE, "exclusive");
	FLAG(word & COWVM_PM_SOFT_DIRTY, "soft-dirty");
	FLAG(word & COWVM_PM_UFFD_WP, "uffd-wp");
	FLAG((word & COWVM_PM_PRESENT) && (word & COWVM_PM_PFN_MASK) == c->st->zero_pfn, "zero-page");
#undef FLAG
}

/* Every page of every VMA in the range; with no range, only pages with something to show. */
static void show_pages(struct view_ctx *c, enum view_kind view, int process,
		       const struct vma_list *vmas, bool has_range, uint64_t start, uint64_t length)
{
	bool json = c->json, first = true;
	char bits[160];
	if (json) {
		json_view_start(c, view, process);
		fprintf(c->out, ",\"rows\":[");
	} else {
		view_header(c, view, process);
		fprintf(c->out, "%-16s %-16s %6s  %s\n", "address", view == VIEW_PTES ? "pte" : "pagemap",
			"frame", view == VIEW_PTES ? "bits" : "flags");
	}
	for (int i = 0; i < vmas->count; i++) {
		const struct state_vma *sv = &vmas->vmas[i];
		const struct cowvm_vma_info *v = &sv->info;
		uint64_t lo = v->start, hi = v->end;
		if (has_range) {
			uint64_t rs = start & ~(PG - 1), re = start + (length ? length : 1);
			lo = lo > rs ? lo : rs;
			hi = hi < re ? hi : re;
		}
		/* without a range only pages with a PTE can show something: walk those */
		int k = sv->first_page, kend = sv->first_page + sv->nr_pages;
		for (uint64_t a = lo; a < hi; a += PG) {
			if (!has_range) {
				while (k < kend && c->st->pages[k].addr < a)
					k++;
				if (k == kend)
					break;
				a = c->st->pages[k].addr;
				if (a >= hi)
					break;
			}
			uint64_t value, frame, pte, word = state_pagemap(c->st, sv, a, &pte);
			if (view == VIEW_PTES) {
				value = pte;
				/* present, or PROT_NONE (mapped, hidden from the hardware) */
				frame = (value & ((1ull << 0) | (1ull << 8))) ? (value >> 12) & ((1ull << 40) - 1) : 0;
				pte_bits_text(value, bits, sizeof bits);
			} else {
				value = word;
				frame = (value & COWVM_PM_PRESENT) ? value & COWVM_PM_PFN_MASK : 0;
				pagemap_flags_text(c, value, bits, sizeof bits);
			}
			bool something = view == VIEW_PTES ? value != 0
							   : (value & (COWVM_PM_PRESENT | COWVM_PM_SWAP)) != 0;
			if (!has_range && !something)
				continue;
			if (json) {
				fprintf(c->out, "%s{\"address\":\"%#" PRIx64 "\",\"%s\":\"%#" PRIx64
					"\",\"frame\":%" PRIu64 ",\"flags\":", first ? "" : ",", a,
					view == VIEW_PTES ? "pte" : "pagemap", value, frame);
				json_string(c->out, bits);
				fputc('}', c->out);
			} else {
				fprintf(c->out, "%-16" PRIx64 " %016" PRIx64 " %6" PRIu64 "  %s\n", a, value,
					frame, something ? bits : "none");
			}
			first = false;
		}
	}
	if (json)
		fprintf(c->out, "]}\n");
}

/* ---- vmstat and frames ----------------------------------------------------------------------- */

static void show_vmstat(struct view_ctx *c)
{
	const struct cowvm_vmstat *vs = &c->st->vmstat;
	if (c->json) {
		json_view_start(c, VIEW_VMSTAT, -1);
		for (int f = 0; f < nr_vmstat_fields; f++)
			fprintf(c->out, ",\"%s\":%" PRIu64, vmstat_fields[f].name, vmstat_value(vs, f));
		fprintf(c->out, "}\n");
		return;
	}
	view_header(c, VIEW_VMSTAT, -1);
	for (int f = 0; f < nr_vmstat_fields; f++)
		fprintf(c->out, "%s %" PRIu64 "\n", vmstat_fields[f].name, vmstat_value(vs, f));
}

/* One mapping rmap found.  A negative pid is a dput SNAP image of that child (cowvm_rmap_walk):
 * shown as C(snapshot):ADDR, in JSON with the child's pid and "snapshot":true. */
static void print_mapper(struct view_ctx *c, const struct state_mapper *m, int index)
{
	int pid = m->pid;
	bool snapshot = pid < 0;
	char buf[32];
	if (snapshot)
		pid = -pid;
	const char *name = state_process_name(c->st, pid, buf, sizeof buf);
	if (c->json) {
		fprintf(c->out, "%s{\"process\":", index ? "," : "");
		json_string(c->out, name);
		fprintf(c->out, ",\"pid\":%d,%s\"address\":\"%#" PRIx64 "\"}", pid,
			snapshot ? "\"snapshot\":true," : "", m->addr);
	} else {
		fprintf(c->out, " %s%s:%" PRIx64, name, snapshot ? "(snapshot)" : "", m->addr);
	}
}

/* The pins holding frame pfn, as JSON strings separated by commas. */
static void json_pins_holding(struct view_ctx *c, uint64_t pfn)
{
	int n = 0;
	for (int i = 0; i < c->st->nr_pins; i++) {
		if (!state_pin_holds(&c->st->pins[i], pfn))
			continue;
		if (n++)
			fputc(',', c->out);
		json_string(c->out, c->log->s->pin_names[i]);
	}
}

static const char *frame_state_name(int state)
{
	static const char *const names[] = { "free", "reserved", "zero", "pgtable", "anon", "shmem",
					     "pinned", "swapcache" };
	return state >= 0 && state <= COWVM_FRAME_SWAPCACHE ? names[state] : "?";
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The frames to list: those a process maps in the range, or every anon, shmem and zero frame
 * and every frame held only by a pin. */
static uint64_t *frames_to_show(struct view_ctx *c, int process, const struct vma_list *vmas,
				bool has_range, uint64_t start, uint64_t length, int *count)
{
	uint64_t *pfns = NULL;
	int n = 0, cap = 0;
	if (process < 0) {
		pfns = malloc(((size_t)c->st->nr_frames + 1) * sizeof *pfns);
		for (int i = 0; pfns && i < c->st->nr_frames; i++)
			pfns[n++] = c->st->frames[i].info.pfn;
		*count = n;
		return pfns;
	}
	for (int i = 0; i < vmas->count; i++) {
		const struct state_vma *v = &vmas->vmas[i];
		for (int k = v->first_page; k < v->first_page + v->nr_pages; k++) {
			uint64_t a = c->st->pages[k].addr, word = c->st->pages[k].pagemap;
			if (!in_range(has_range, start & ~(PG - 1), length ? length : 1, a, a + PG))
				continue;
			if (!(word & COWVM_PM_PRESENT))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				uint64_t *g = realloc(pfns, (size_t)cap * sizeof *g);
				if (!g)
					goto out;
				pfns = g;
			}
			pfns[n++] = word & COWVM_PM_PFN_MASK;
		}
	}
out:
	if (n)
		qsort(pfns, (size_t)n, sizeof *pfns, compare_u64);
	int unique = 0;
	for (int i = 0; i < n; i++)
		if (!unique || pfns[unique - 1] != pfns[i])
			pfns[unique++] = pfns[i];
	*count = unique;
	return pfns;
}

static void show_frames(struct view_ctx *c, int process, const struct vma_list *vmas,
			bool has_range, uint64_t start, uint64_t length)
{
	int n;
	uint64_t *pfns = frames_to_show(c, process, vmas, has_range, start, length, &n);
	bool json = c->json;
	const struct cowvm_vmstat *vs = &c->st->vmstat;
	if (json) {
		json_view_start(c, VIEW_FRAMES, process);
		fprintf(c->out, ",\"rows\":[");
	} else {
		view_header(c, VIEW_FRAMES, process);
		fprintf(c->out, "%6s  %-7s %8s %8s  %-9s %-8s  %s\n", "frame", "state", "refcount",
			"mapcount", "exclusive", "lru", "mapped by (rmap)");
	}
	static const char *const lru_names[] = { "-", "inactive", "active" };
	for (int i = 0; i < n; i++) {
		const struct state_frame *sf = state_frame(c->st, pfns[i]);
		if (!sf)
			continue;
		const struct cowvm_frame_info *fi = &sf->info;
		const char *lru = fi->lru >= 0 && fi->lru <= 2 ? lru_names[fi->lru] : "?";
		if (json) {
			fprintf(c->out, "%s{\"frame\":%" PRIu64 ",\"state\":\"%s\",\"refcount\":%d,"
				"\"mapcount\":%d,\"anon_exclusive\":%s,\"lru\":\"%s\",\"mapped_by\":[",
				i ? "," : "", fi->pfn, frame_state_name(fi->state), fi->refcount, fi->mapcount,
				fi->anon_exclusive ? "true" : "false", lru);
			for (int m = 0; m < sf->nr_mappers; m++)
				print_mapper(c, &c->st->mappers[sf->first_mapper + m], m);
			fprintf(c->out, "],\"held_by\":[");
			json_pins_holding(c, fi->pfn);
			fprintf(c->out, "]");
			if (fi->state == COWVM_FRAME_ZERO)
				fprintf(c->out, ",\"zero_page_mappings\":%" PRIu64, vs->nr_zero_page_mappings);
			fputc('}', c->out);
			continue;
		}
		fprintf(c->out, "%6" PRIu64 "  %-7s %8d %8d  %-9s %-8s ", fi->pfn, frame_state_name(fi->state),
			fi->refcount, fi->mapcount, fi->anon_exclusive ? "yes" : "no", lru);
		if (fi->state == COWVM_FRAME_ZERO)
			fprintf(c->out, " (outside rmap; %" PRIu64 " PTEs map it)", vs->nr_zero_page_mappings);
		else
			for (int m = 0; m < sf->nr_mappers; m++)
				print_mapper(c, &c->st->mappers[sf->first_mapper + m], m);
		char held[256];
		state_pins_holding(c->log, c->st, fi->pfn, held, sizeof held);
		if (held[0])
			fprintf(c->out, " [held by %s]", held);
		fputc('\n', c->out);
	}
	if (json)
		fprintf(c->out, "]}\n");
	free(pfns);
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

static void show_one(struct view_ctx *c, enum view_kind view, int process, bool has_range,
		     uint64_t start, uint64_t length)
{
	struct vma_list vmas = { 0 };
	if (process >= 0) {
		const struct state_process *p = &c->st->processes[process];
		if (!p->live || !p->vmas_ok)
			return;
		vmas.vmas = &c->st->vmas[p->first_vma];
		vmas.count = p->nr_vmas;
	}
	switch (view) {
	case VIEW_MAPS: show_maps(c, process, &vmas); break;
	case VIEW_SMAPS: show_smaps(c, process, &vmas, has_range, start, length); break;
	case VIEW_SMAPS_ROLLUP: show_smaps_rollup(c, process, &vmas); break;
	case VIEW_STATUS: show_status(c, process); break;
	case VIEW_PTES:
	case VIEW_PAGEMAP: show_pages(c, view, process, &vmas, has_range, start, length); break;
	case VIEW_FRAMES: show_frames(c, process, &vmas, has_range, start, length); break;
	case VIEW_VMSTAT: show_vmstat(c); break;
	case VIEW_GRAPH:
	case NR_VIEWS: break;
	}
}

void render_view(FILE *f, bool json, const struct step_log *log, const struct log_state *st,
		 const struct log_view *v, int line)
{
	struct view_ctx c = { .out = f, .json = json, .log = log, .st = st, .line = line };
	enum view_kind view = (enum view_kind)v->view;
	if (!st)
		return;
	if (view == VIEW_GRAPH) {
		if (json) {
			char *text = NULL;
			size_t len = 0;
			FILE *mem = open_memstream(&text, &len);
			if (!mem)
				return;
			dot_graph(mem, log, st, line);
			fclose(mem);
			json_view_start(&c, VIEW_GRAPH, -1);
			fprintf(f, ",\"dot\":");
			json_string(f, text);
			fprintf(f, "}\n");
			free(text);
		} else {
			dot_graph(f, log, st, line);
		}
		return;
	}
	bool per_process = view != VIEW_VMSTAT && !(view == VIEW_FRAMES && v->process < 0);
	if (!per_process || v->process >= 0) {
		show_one(&c, view, v->process, v->has_range, v->start, v->length);
		return;
	}
	for (int p = 0; p < st->nr_processes; p++)
		if (st->processes[p].live_threads > 0)
			show_one(&c, view, p, false, 0, 0);
}
