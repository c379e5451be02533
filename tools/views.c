/*
 * views.c - `show` lines and --show: what the machine looks like, in the format of the matching
 * /proc file where there is one, so that habits and scripts carry over:
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

#include "runner.h"
#include "words.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)

static const char *const view_names[NR_VIEWS] = {
	[VIEW_MAPS] = "maps",       [VIEW_PTES] = "ptes",       [VIEW_SMAPS] = "smaps",
	[VIEW_SMAPS_ROLLUP] = "smaps_rollup", [VIEW_PAGEMAP] = "pagemap",
	[VIEW_STATUS] = "status",   [VIEW_VMSTAT] = "vmstat",   [VIEW_FRAMES] = "frames",
	[VIEW_GRAPH] = "graph",
};

int view_by_name(const char *name)
{
	for (int v = 0; v < NR_VIEWS; v++)
		if (!strcmp(view_names[v], name))
			return v;
	return -1;
}

const char *view_name(enum view_kind v)
{
	return v < NR_VIEWS ? view_names[v] : "?";
}

/* ---- shared pieces ------------------------------------------------------------------------- */

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

/* Copy the VMAs out first: cowvm_for_each_vma holds the mmap_lock while it calls us. */
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

void vma_name(struct run *r, int process, const struct cowvm_vma_info *v, char *out, size_t len)
{
	cowvm_task_t *t = process_task(r, process);
	uint64_t start_brk = r->processes[process].start_brk;
	uint64_t brk = t ? (uint64_t)cowvm_brk(t, 0) : start_brk;
	const char *label = region_label(r, process, v->start, v->end);
	if (!v->shared && v->start <= brk && v->end >= start_brk && brk > start_brk)
		snprintf(out, len, "[heap]");
	else if (label)
		snprintf(out, len, v->shared ? "[anon_shmem:%s]" : "[anon:%s]", label);
	else
		snprintf(out, len, "%s", v->shared ? "/dev/zero (deleted)" : "");
}

/* One /proc/PID/maps line (no newline). */
static void maps_line(struct run *r, int process, const struct cowvm_vma_info *v, char *out,
		      size_t len)
{
	char perms[4], name[160];
	prot_to_text(v->prot, perms);
	vma_name(r, process, v, name, sizeof name);
	int n = snprintf(out, len, "%08" PRIx64 "-%08" PRIx64 " %s%c %08" PRIx64 " %s 0 ", v->start,
			 v->end, perms, v->shared ? 's' : 'p', v->shared ? v->pgoff * PG : 0,
			 v->shared ? "00:01" : "00:00");
	if (*name && n > 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, "%*s%s", n < 73 ? 73 - n : 1, "", name);
}

static void view_header(struct run *r, enum view_kind view, int process)
{
	if (process >= 0)
		fprintf(r->out, "# %s (pid %d): %s\n", r->processes[process].name,
			r->processes[process].pid, view_name(view));
	else
		fprintf(r->out, "# %s\n", view_name(view));
}

/* {"event":"view","view":..,"file":..,"line":..,"process":..,"pid":.., then the caller's fields */
static void json_view_start(struct run *r, enum view_kind view, int process)
{
	fprintf(r->out, "{\"event\":\"view\",\"view\":\"%s\",\"file\":", view_name(view));
	json_string(r->out, r->s->name);
	fprintf(r->out, ",\"line\":%d", r->op ? r->op->line : 0);
	if (process >= 0) {
		fprintf(r->out, ",\"process\":");
		json_string(r->out, r->processes[process].name);
		fprintf(r->out, ",\"pid\":%d", r->processes[process].pid);
	}
}

/* Does [a, a_end) meet the range (when there is one)? */
static bool in_range(bool has_range, uint64_t start, uint64_t length, uint64_t a, uint64_t a_end)
{
	return !has_range || (a < start + length && start < a_end);
}

/* ---- maps, smaps, status --------------------------------------------------------------------- */

static void show_maps(struct run *r, int process, struct vma_list *vmas)
{
	char line[300], perms[4], name[160];
	if (r->opts->json) {
		json_view_start(r, VIEW_MAPS, process);
		fprintf(r->out, ",\"rows\":[");
		for (int i = 0; i < vmas->count; i++) {
			const struct cowvm_vma_info *v = &vmas->vmas[i];
			prot_to_text(v->prot, perms);
			vma_name(r, process, v, name, sizeof name);
			fprintf(r->out, "%s{\"start\":\"%#" PRIx64 "\",\"end\":\"%#" PRIx64
				"\",\"perms\":\"%s%c\",\"offset\":%" PRIu64 ",\"flags\":\"%#lx\",\"name\":",
				i ? "," : "", v->start, v->end, perms, v->shared ? 's' : 'p',
				v->shared ? v->pgoff * PG : 0, v->flags);
			json_string(r->out, name);
			fputc('}', r->out);
		}
		fprintf(r->out, "]}\n");
		return;
	}
	view_header(r, VIEW_MAPS, process);
	for (int i = 0; i < vmas->count; i++) {
		maps_line(r, process, &vmas->vmas[i], line, sizeof line);
		fprintf(r->out, "%s\n", line);
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

static void smaps_fields_text(struct run *r, const struct cowvm_smaps *sm)
{
	/* Linux's order; KernelPageSize and MMUPageSize after Size */
	for (int f = 0; f < nr_smaps_fields; f++) {
		fprintf(r->out, "%-16s%8" PRIu64 " kB\n", smaps_fields[f].label, smaps_value_kb(sm, f));
		if (f == 0) {
			fprintf(r->out, "%-16s%8u kB\n", "KernelPageSize:", COWVM_PAGE_SIZE >> 10);
			fprintf(r->out, "%-16s%8u kB\n", "MMUPageSize:", COWVM_PAGE_SIZE >> 10);
		}
	}
}

static void smaps_fields_json(struct run *r, const struct cowvm_smaps *sm)
{
	for (int f = 0; f < nr_smaps_fields; f++)
		fprintf(r->out, ",\"%s\":%" PRIu64, smaps_fields[f].name, smaps_value_kb(sm, f));
}

static void show_smaps(struct run *r, int process, struct vma_list *vmas, bool has_range,
		       uint64_t start, uint64_t length)
{
	cowvm_task_t *t = process_task(r, process);
	char line[300], flags[128], name[160];
	if (r->opts->json) {
		json_view_start(r, VIEW_SMAPS, process);
		fprintf(r->out, ",\"vmas\":[");
	} else {
		view_header(r, VIEW_SMAPS, process);
	}
	bool first = true;
	for (int i = 0; i < vmas->count; i++) {
		const struct cowvm_vma_info *v = &vmas->vmas[i];
		struct cowvm_smaps sm;
		if (!in_range(has_range, start, length, v->start, v->end) ||
		    cowvm_smaps(t, v->start, v->end - v->start, &sm))
			continue;
		vm_flags_text(v->flags, flags, sizeof flags);
		if (r->opts->json) {
			vma_name(r, process, v, name, sizeof name);
			fprintf(r->out, "%s{\"start\":\"%#" PRIx64 "\",\"end\":\"%#" PRIx64 "\",\"name\":",
				first ? "" : ",", v->start, v->end);
			json_string(r->out, name);
			smaps_fields_json(r, &sm);
			fprintf(r->out, ",\"vmflags\":");
			json_string(r->out, flags);
			fputc('}', r->out);
		} else {
			maps_line(r, process, v, line, sizeof line);
			fprintf(r->out, "%s\n", line);
			smaps_fields_text(r, &sm);
			fprintf(r->out, "VmFlags: %s\n", flags);
		}
		first = false;
	}
	if (r->opts->json)
		fprintf(r->out, "]}\n");
}

static void show_smaps_rollup(struct run *r, int process, struct vma_list *vmas)
{
	struct cowvm_smaps sm;
	cowvm_task_t *t = process_task(r, process);
	if (cowvm_smaps(t, 0, 0, &sm))
		return;
	if (r->opts->json) {
		json_view_start(r, VIEW_SMAPS_ROLLUP, process);
		smaps_fields_json(r, &sm);
		fprintf(r->out, "}\n");
		return;
	}
	view_header(r, VIEW_SMAPS_ROLLUP, process);
	uint64_t lo = vmas->count ? vmas->vmas[0].start : 0;
	uint64_t hi = vmas->count ? vmas->vmas[vmas->count - 1].end : 0;
	int n = fprintf(r->out, "%08" PRIx64 "-%08" PRIx64 " ---p 00000000 00:00 0 ", lo, hi);
	fprintf(r->out, "%*s[rollup]\n", n < 73 ? 73 - n : 1, "");
	smaps_fields_text(r, &sm);
}

static void show_status(struct run *r, int process)
{
	struct cowvm_task_stats st;
	process_stats(r, process, &st);
	uint64_t faults = process_faults(r, process);
	const struct run_process *p = &r->processes[process];
	struct {
		const char *name;
		uint64_t kb;
	} lines[] = {
		{ "VmSize", st.total_vm * 4 },
		{ "VmRSS", (st.rss_anon + st.rss_shmem) * 4 },
		{ "RssAnon", st.rss_anon * 4 },
		{ "RssFile", 0 },
		{ "RssShmem", st.rss_shmem * 4 },
		{ "VmPTE", st.nr_ptes * 4 },
		{ "VmSwap", st.rss_swap * 4 },
	};
	if (r->opts->json) {
		json_view_start(r, VIEW_STATUS, process);
		fprintf(r->out, ",\"threads\":%d", p->live_threads);
		for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
			fprintf(r->out, ",\"%s\":%" PRIu64, lines[i].name, lines[i].kb);
		fprintf(r->out, ",\"vmas\":%" PRIu64 ",\"faults\":%" PRIu64 "}\n", st.nr_vmas, faults);
		return;
	}
	view_header(r, VIEW_STATUS, process);
	fprintf(r->out, "Name:\t%s\nTgid:\t%d\nThreads:\t%d\n", p->name, p->pid, p->live_threads);
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		char label[16];
		snprintf(label, sizeof label, "%s:", lines[i].name);
		fprintf(r->out, "%s\t%8" PRIu64 " kB\n", label, lines[i].kb);
	}
	/* cowvm's additions: /proc/PID/stat has these as fields 10 (minflt) and 12 (majflt) */
	fprintf(r->out, "Vmas:\t%" PRIu64 "\nFaults:\t%" PRIu64 "\n", st.nr_vmas, faults);
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

static void pagemap_flags_text(struct run *r, uint64_t word, char *out, size_t len)
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
	FLAG((word & COWVM_PM_PRESENT) && (word & COWVM_PM_PFN_MASK) == r->zero_pfn, "zero-page");
#undef FLAG
}

/* Every page of every VMA in the range; with no range, only pages with something to show. */
static void show_pages(struct run *r, enum view_kind view, int process, struct vma_list *vmas,
		       bool has_range, uint64_t start, uint64_t length)
{
	cowvm_task_t *t = process_task(r, process);
	bool json = r->opts->json, first = true;
	char bits[160];
	if (json) {
		json_view_start(r, view, process);
		fprintf(r->out, ",\"rows\":[");
	} else {
		view_header(r, view, process);
		fprintf(r->out, "%-16s %-16s %6s  %s\n", "address", view == VIEW_PTES ? "pte" : "pagemap",
			"frame", view == VIEW_PTES ? "bits" : "flags");
	}
	for (int i = 0; i < vmas->count; i++) {
		const struct cowvm_vma_info *v = &vmas->vmas[i];
		uint64_t lo = v->start, hi = v->end;
		if (has_range) {
			uint64_t rs = start & ~(PG - 1), re = start + (length ? length : 1);
			lo = lo > rs ? lo : rs;
			hi = hi < re ? hi : re;
		}
		for (uint64_t a = lo; a < hi; a += PG) {
			uint64_t value, frame;
			if (view == VIEW_PTES) {
				value = cowvm_pte(t, a);
				/* present, or PROT_NONE (mapped, hidden from the hardware) */
				frame = (value & ((1ull << 0) | (1ull << 8))) ? (value >> 12) & ((1ull << 40) - 1) : 0;
				pte_bits_text(value, bits, sizeof bits);
			} else {
				value = cowvm_pagemap(t, a);
				frame = (value & COWVM_PM_PRESENT) ? value & COWVM_PM_PFN_MASK : 0;
				pagemap_flags_text(r, value, bits, sizeof bits);
			}
			bool something = view == VIEW_PTES ? value != 0
							   : (value & (COWVM_PM_PRESENT | COWVM_PM_SWAP)) != 0;
			if (!has_range && !something)
				continue;
			if (json) {
				fprintf(r->out, "%s{\"address\":\"%#" PRIx64 "\",\"%s\":\"%#" PRIx64
					"\",\"frame\":%" PRIu64 ",\"flags\":", first ? "" : ",", a,
					view == VIEW_PTES ? "pte" : "pagemap", value, frame);
				json_string(r->out, bits);
				fputc('}', r->out);
			} else {
				fprintf(r->out, "%-16" PRIx64 " %016" PRIx64 " %6" PRIu64 "  %s\n", a, value,
					frame, something ? bits : "none");
			}
			first = false;
		}
	}
	if (json)
		fprintf(r->out, "]}\n");
}

/* ---- vmstat and frames ----------------------------------------------------------------------- */

static void show_vmstat(struct run *r)
{
	struct cowvm_vmstat vs;
	cowvm_vmstat(r->vm, &vs);
	if (r->opts->json) {
		json_view_start(r, VIEW_VMSTAT, -1);
		for (int f = 0; f < nr_vmstat_fields; f++)
			fprintf(r->out, ",\"%s\":%" PRIu64, vmstat_fields[f].name, vmstat_value(&vs, f));
		fprintf(r->out, "}\n");
		return;
	}
	view_header(r, VIEW_VMSTAT, -1);
	for (int f = 0; f < nr_vmstat_fields; f++)
		fprintf(r->out, "%s %" PRIu64 "\n", vmstat_fields[f].name, vmstat_value(&vs, f));
}

struct mapper_list {
	struct run *r;
	FILE *f;
	bool json;
	int count;
};

/* One mapping rmap found.  A negative pid is a dput SNAP image of that child (cowvm_rmap_walk):
 * shown as C(snapshot):ADDR, in JSON with the child's pid and "snapshot":true. */
static int print_mapper(void *arg, int pid, uint64_t addr)
{
	struct mapper_list *m = arg;
	bool snapshot = pid < 0;
	if (snapshot)
		pid = -pid;
	const char *name = process_name_by_pid(m->r, pid);
	if (m->json) {
		fprintf(m->f, "%s{\"process\":", m->count ? "," : "");
		json_string(m->f, name);
		fprintf(m->f, ",\"pid\":%d,%s\"address\":\"%#" PRIx64 "\"}", pid,
			snapshot ? "\"snapshot\":true," : "", addr);
	} else {
		fprintf(m->f, " %s%s:%" PRIx64, name, snapshot ? "(snapshot)" : "", addr);
	}
	m->count++;
	return 0;
}

/* The pins holding frame pfn, as JSON strings separated by commas. */
static void json_pins_holding(struct run *r, uint64_t pfn)
{
	int n = 0;
	for (int i = 0; i < r->s->nr_pins; i++) {
		if (!pin_holds_frame(&r->pins[i], pfn))
			continue;
		if (n++)
			fputc(',', r->out);
		json_string(r->out, r->s->pin_names[i]);
	}
}

static const char *frame_state_name(int state)
{
	static const char *const names[] = { "free", "reserved", "zero", "pgtable", "anon", "shmem",
					     "pinned" };
	return state >= 0 && state <= COWVM_FRAME_PINNED ? names[state] : "?";
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The frames to list: those a process maps in the range, or every anon, shmem and zero frame
 * and every frame held only by a pin. */
static uint64_t *frames_to_show(struct run *r, int process, struct vma_list *vmas, bool has_range,
				uint64_t start, uint64_t length, int *count)
{
	uint64_t *pfns = NULL;
	int n = 0, cap = 0;
	if (process < 0) {
		struct cowvm_vmstat vs;
		struct cowvm_frame_info fi;
		cowvm_vmstat(r->vm, &vs);
		for (uint64_t pfn = 0; pfn < vs.nr_total_pages; pfn++) {
			if (cowvm_frame_info(r->vm, pfn, &fi) || (fi.state != COWVM_FRAME_ANON &&
			    fi.state != COWVM_FRAME_SHMEM && fi.state != COWVM_FRAME_ZERO &&
			    fi.state != COWVM_FRAME_PINNED))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				uint64_t *g = realloc(pfns, (size_t)cap * sizeof *g);
				if (!g)
					break;
				pfns = g;
			}
			pfns[n++] = pfn;
		}
		*count = n;
		return pfns;
	}
	cowvm_task_t *t = process_task(r, process);
	for (int i = 0; i < vmas->count; i++) {
		const struct cowvm_vma_info *v = &vmas->vmas[i];
		for (uint64_t a = v->start; a < v->end; a += PG) {
			if (!in_range(has_range, start & ~(PG - 1), length ? length : 1, a, a + PG))
				continue;
			uint64_t word = cowvm_pagemap(t, a);
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

static void show_frames(struct run *r, int process, struct vma_list *vmas, bool has_range,
			uint64_t start, uint64_t length)
{
	int n;
	uint64_t *pfns = frames_to_show(r, process, vmas, has_range, start, length, &n);
	bool json = r->opts->json;
	struct cowvm_vmstat vs;
	cowvm_vmstat(r->vm, &vs);
	if (json) {
		json_view_start(r, VIEW_FRAMES, process);
		fprintf(r->out, ",\"rows\":[");
	} else {
		view_header(r, VIEW_FRAMES, process);
		fprintf(r->out, "%6s  %-7s %8s %8s  %-9s %-8s  %s\n", "frame", "state", "refcount",
			"mapcount", "exclusive", "lru", "mapped by (rmap)");
	}
	static const char *const lru_names[] = { "-", "inactive", "active" };
	for (int i = 0; i < n; i++) {
		struct cowvm_frame_info fi;
		if (cowvm_frame_info(r->vm, pfns[i], &fi))
			continue;
		const char *lru = fi.lru >= 0 && fi.lru <= 2 ? lru_names[fi.lru] : "?";
		struct mapper_list m = { .r = r, .f = r->out, .json = json };
		if (json) {
			fprintf(r->out, "%s{\"frame\":%" PRIu64 ",\"state\":\"%s\",\"refcount\":%d,"
				"\"mapcount\":%d,\"anon_exclusive\":%s,\"lru\":\"%s\",\"mapped_by\":[",
				i ? "," : "", fi.pfn, frame_state_name(fi.state), fi.refcount, fi.mapcount,
				fi.anon_exclusive ? "true" : "false", lru);
			if (fi.state != COWVM_FRAME_ZERO)
				cowvm_rmap_walk(r->vm, fi.pfn, print_mapper, &m);
			fprintf(r->out, "],\"held_by\":[");
			json_pins_holding(r, fi.pfn);
			fprintf(r->out, "]");
			if (fi.state == COWVM_FRAME_ZERO)
				fprintf(r->out, ",\"zero_page_mappings\":%" PRIu64, vs.nr_zero_page_mappings);
			fputc('}', r->out);
			continue;
		}
		fprintf(r->out, "%6" PRIu64 "  %-7s %8d %8d  %-9s %-8s ", fi.pfn, frame_state_name(fi.state),
			fi.refcount, fi.mapcount, fi.anon_exclusive ? "yes" : "no", lru);
		if (fi.state == COWVM_FRAME_ZERO)
			fprintf(r->out, " (outside rmap; %" PRIu64 " PTEs map it)", vs.nr_zero_page_mappings);
		else
			cowvm_rmap_walk(r->vm, fi.pfn, print_mapper, &m);
		char held[256];
		pins_holding(r, fi.pfn, held, sizeof held);
		if (held[0])
			fprintf(r->out, " [held by %s]", held);
		fputc('\n', r->out);
	}
	if (json)
		fprintf(r->out, "]}\n");
	free(pfns);
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

static void show_one(struct run *r, enum view_kind view, int process, bool has_range,
		     uint64_t start, uint64_t length)
{
	struct vma_list vmas = { 0 };
	cowvm_task_t *t = process >= 0 ? process_task(r, process) : NULL;
	if (process >= 0 && (!t || !collect_vmas(t, &vmas))) {
		free(vmas.vmas);
		return;
	}
	switch (view) {
	case VIEW_MAPS: show_maps(r, process, &vmas); break;
	case VIEW_SMAPS: show_smaps(r, process, &vmas, has_range, start, length); break;
	case VIEW_SMAPS_ROLLUP: show_smaps_rollup(r, process, &vmas); break;
	case VIEW_STATUS: show_status(r, process); break;
	case VIEW_PTES:
	case VIEW_PAGEMAP: show_pages(r, view, process, &vmas, has_range, start, length); break;
	case VIEW_FRAMES: show_frames(r, process, &vmas, has_range, start, length); break;
	case VIEW_VMSTAT: show_vmstat(r); break;
	case VIEW_GRAPH:
	case NR_VIEWS: break;
	}
	free(vmas.vmas);
}

void show_view(struct run *r, enum view_kind view, int process, bool has_range, uint64_t start,
	       uint64_t length)
{
	if (view == VIEW_GRAPH) {
		if (r->opts->json) {
			char *text = NULL;
			size_t len = 0;
			FILE *mem = open_memstream(&text, &len);
			if (!mem)
				return;
			write_graph(r, mem);
			fclose(mem);
			json_view_start(r, VIEW_GRAPH, -1);
			fprintf(r->out, ",\"dot\":");
			json_string(r->out, text);
			fprintf(r->out, "}\n");
			free(text);
		} else {
			write_graph(r, r->out);
		}
		return;
	}
	bool per_process = view != VIEW_VMSTAT && !(view == VIEW_FRAMES && process < 0);
	if (!per_process || process >= 0) {
		show_one(r, view, process, has_range, start, length);
		return;
	}
	for (int p = 0; p < r->nr_processes; p++)
		if (r->processes[p].live_threads > 0)
			show_one(r, view, p, false, 0, 0);
}
