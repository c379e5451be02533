/*
 * dot.c - the machine as a Graphviz picture: processes -> VMAs -> pages -> frames.
 *
 *   [A pid 1] --> [buf 7ffff7ffd000-.. rw-p] --> (buf[0]) ==rw==> [frame 11]
 *   [B pid 2] --> [buf 7ffff7ffd000-.. rw-p] --> (buf[0]) --ro--> [frame 6]  <- shared: orange
 *                                            --> (buf[1]) --ro--> [zero page] <- grey, doubled
 *
 *   <pin dma> ==held==> [frame 11]                                  <- pins: purple, bold
 *   [B pid 2] --> [B's snapshot image] ..snap..> [frame 6]            <- dput SNAP: dashed, dotted
 *
 * Only present pages are drawn (at most MAX_PAGES_PER_VMA per VMA, then a "+N more" node).  A
 * frame that more than one page maps is filled orange and its edges are red; the zero page is
 * grey with a double border.  Writable PTEs are solid edges, read-only ones dashed.  Each pin
 * the scenario holds is a purple node with a bold edge to every frame it holds (a frame no
 * page maps any more, as after vmsplice and munmap, appears through its pin only).  A child
 * with a dput SNAP image has a dashed "snapshot image" node in its cluster with a dotted edge
 * to every frame the image maps (found by rmap, which reports the image with the child's pid
 * negated): the frames the child has replaced since the SNAP appear through it.
 * `show graph` writes the text where the run's output goes; --dot writes NAME.dot and, when
 * Graphviz's `dot` can be run, renders NAME.svg beside it.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "runner.h"
#include "words.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)
#define MAX_PAGES_PER_VMA 64

extern char **environ;

struct frame_use {
	uint64_t pfn;
	int edges;                /* page nodes in the picture that map it */
};

/* A page of a child's dput SNAP image: rmap reports it with the child's pid negated. */
struct snap_page {
	int pid;                  /* the child's */
	uint64_t addr, pfn;
};

struct graph {
	struct frame_use *frames;
	int nr_frames, capacity;
	struct snap_page *snaps;
	int nr_snaps, snap_capacity;
};

static struct frame_use *frame_use(struct graph *g, uint64_t pfn)
{
	for (int i = 0; i < g->nr_frames; i++)
		if (g->frames[i].pfn == pfn)
			return &g->frames[i];
	if (g->nr_frames == g->capacity) {
		int cap = g->capacity ? g->capacity * 2 : 32;
		struct frame_use *grown = realloc(g->frames, (size_t)cap * sizeof *grown);
		if (!grown)
			return NULL;
		g->frames = grown;
		g->capacity = cap;
	}
	g->frames[g->nr_frames] = (struct frame_use){ .pfn = pfn };
	return &g->frames[g->nr_frames++];
}

/* Count, for every present page that will be drawn, the frame it maps. */
static void count_frames(struct run *r, struct graph *g)
{
	for (int p = 0; p < r->nr_processes; p++) {
		cowvm_task_t *t = process_task(r, p);
		struct vma_list vmas;
		if (!t || !collect_vmas(t, &vmas))
			continue;
		for (int i = 0; i < vmas.count; i++) {
			int drawn = 0;
			for (uint64_t a = vmas.vmas[i].start; a < vmas.vmas[i].end && drawn < MAX_PAGES_PER_VMA;
			     a += PG) {
				uint64_t word = cowvm_pagemap(t, a);
				if (!(word & COWVM_PM_PRESENT))
					continue;
				struct frame_use *u = frame_use(g, word & COWVM_PM_PFN_MASK);
				if (u)
					u->edges++;
				drawn++;
			}
		}
		free(vmas.vmas);
	}
}

struct snap_walk {
	struct graph *g;
	uint64_t pfn;
};

static int note_snapshot(void *arg, int pid, uint64_t addr)
{
	struct snap_walk *w = arg;
	struct graph *g = w->g;
	if (pid >= 0)
		return 0;
	if (g->nr_snaps == g->snap_capacity) {
		int cap = g->snap_capacity ? g->snap_capacity * 2 : 32;
		struct snap_page *grown = realloc(g->snaps, (size_t)cap * sizeof *grown);
		if (!grown)
			return 1;
		g->snaps = grown;
		g->snap_capacity = cap;
	}
	g->snaps[g->nr_snaps++] = (struct snap_page){ .pid = -pid, .addr = addr, .pfn = w->pfn };
	return 0;
}

/* The pages of every SNAP image (an rmap walk of each anonymous frame); their frames are drawn
 * even when no process maps them any more (the child has written its own copy since). */
static void find_snapshots(struct run *r, struct graph *g)
{
	struct cowvm_vmstat vs;
	if (!r->snapped) /* no image was ever made: no need to walk every frame */
		return;
	cowvm_vmstat(r->vm, &vs);
	for (uint64_t pfn = 0; pfn < vs.nr_total_pages; pfn++) {
		struct cowvm_frame_info fi;
		if (cowvm_frame_info(r->vm, pfn, &fi) || fi.state != COWVM_FRAME_ANON)
			continue;
		struct snap_walk w = { .g = g, .pfn = pfn };
		int before = g->nr_snaps;
		cowvm_rmap_walk(r->vm, pfn, note_snapshot, &w);
		if (g->nr_snaps > before)
			frame_use(g, pfn);
	}
}

/* The child's image: a dashed node in its cluster, dotted edges to the frames it keeps. */
static void write_snapshot(struct run *r, FILE *f, FILE *edges, struct graph *g, int p)
{
	const struct run_process *proc = &r->processes[p];
	int pages = 0, drawn = 0;
	for (int i = 0; i < g->nr_snaps; i++)
		pages += g->snaps[i].pid == proc->pid;
	if (!pages)
		return;
	fprintf(f, "\t\tp%d_snap [shape=box, style=\"rounded,dashed\", label=\"%s's snapshot image\\n"
		   "(dput SNAP), %d page%s\"];\n\t\tp%d -> p%d_snap [style=dashed];\n", p, proc->name,
		pages, pages == 1 ? "" : "s", p, p);
	for (int i = 0; i < g->nr_snaps && drawn < MAX_PAGES_PER_VMA; i++) {
		const struct snap_page *sp = &g->snaps[i];
		if (sp->pid != proc->pid)
			continue;
		fprintf(edges, "\tp%d_snap -> f%" PRIu64 " [style=dotted, label=\"snap %" PRIx64 "\"];\n", p,
			sp->pfn, sp->addr);
		drawn++;
	}
	if (pages > drawn)
		fprintf(f, "\t\tp%d_snap_more [shape=plaintext, label=\"+%d more pages\"];\n"
			   "\t\tp%d_snap -> p%d_snap_more;\n", p, pages - drawn, p, p);
}

static bool frame_is_shared(struct run *r, const struct frame_use *u, const struct cowvm_frame_info *fi)
{
	return u->pfn != r->zero_pfn && (u->edges > 1 || fi->mapcount > 1);
}

/* "buf[3]" or "heap[0]" for a page of a named region, else its address. */
static void page_label(struct run *r, int process, uint64_t addr, char *out, size_t len)
{
	int id = region_at(r, process, addr, addr + PG);
	const struct run_process *p = &r->processes[process];
	if (id >= 0)
		snprintf(out, len, "%s[%" PRIu64 "]\\n%" PRIx64, r->s->region_names[id],
			 (addr - r->regions[id].start) / PG, addr);
	else if (r->s->heap_region >= 0 && addr >= p->start_brk && p->knows_region[r->s->heap_region])
		snprintf(out, len, "heap[%" PRIu64 "]\\n%" PRIx64, (addr - p->start_brk) / PG, addr);
	else
		snprintf(out, len, "%" PRIx64, addr);
}

/* The clusters hold processes, VMAs and pages; page -> frame edges go to `edges`, written after
 * them at the top level (a node belongs to every subgraph an edge inside it names, so edges
 * inside a cluster would pull the frames into it). */
static void write_process(struct run *r, FILE *f, FILE *edges, struct graph *g, int p)
{
	cowvm_task_t *t = process_task(r, p);
	struct vma_list vmas;
	const struct run_process *proc = &r->processes[p];
	if (!t || !collect_vmas(t, &vmas))
		return;
	fprintf(f, "\tsubgraph cluster_p%d {\n\t\tlabel=\"%s (pid %d)\"; style=rounded; color=\"#7f8c8d\";\n",
		p, proc->name, proc->pid);
	fprintf(f, "\t\tp%d [shape=box, style=\"rounded,filled\", fillcolor=\"#d6eaf8\", "
		   "label=\"%s\\npid %d, %d thread%s\"];\n", p, proc->name, proc->pid,
		proc->live_threads, proc->live_threads == 1 ? "" : "s");
	for (int i = 0; i < vmas.count; i++) {
		const struct cowvm_vma_info *v = &vmas.vmas[i];
		char perms[4], name[160], label[200];
		prot_to_text(v->prot, perms);
		vma_name(r, p, v, name, sizeof name);
		fprintf(f, "\t\tp%d_v%d [shape=box, label=\"%s%s%" PRIx64 "-%" PRIx64 "\\n%s%c%s%s\"];\n", p,
			i, name, *name ? "\\n" : "", v->start, v->end, perms, v->shared ? 's' : 'p',
			(v->flags & 0x20000) ? " dontfork" : "", (v->flags & 0x2000000) ? " wipeonfork" : "");
		fprintf(f, "\t\tp%d -> p%d_v%d;\n", p, p, i);
		int drawn = 0, more = 0;
		for (uint64_t a = v->start; a < v->end; a += PG) {
			uint64_t word = cowvm_pagemap(t, a);
			if (!(word & COWVM_PM_PRESENT))
				continue;
			if (drawn == MAX_PAGES_PER_VMA) {
				more++;
				continue;
			}
			uint64_t pfn = word & COWVM_PM_PFN_MASK, pte = cowvm_pte(t, a);
			struct frame_use *u = frame_use(g, pfn);
			struct cowvm_frame_info fi = { 0 };
			cowvm_frame_info(r->vm, pfn, &fi);
			bool shared = u && frame_is_shared(r, u, &fi), writable = (pte & 3) == 3;
			page_label(r, p, a, label, sizeof label);
			fprintf(f, "\t\tp%d_v%d_%" PRIx64 " [shape=box, style=rounded, label=\"%s\"];\n", p, i,
				a, label);
			fprintf(f, "\t\tp%d_v%d -> p%d_v%d_%" PRIx64 ";\n", p, i, p, i, a);
			fprintf(edges, "\tp%d_v%d_%" PRIx64 " -> f%" PRIu64 " [style=%s, label=\"%s\"%s];\n", p,
				i, a, pfn, writable ? "solid" : "dashed", writable ? "rw" : "ro",
				shared ? ", color=\"#c0392b\", penwidth=2" : "");
			drawn++;
		}
		if (more)
			fprintf(f, "\t\tp%d_v%d_more [shape=plaintext, label=\"+%d more pages\"];\n"
				   "\t\tp%d_v%d -> p%d_v%d_more;\n", p, i, more, p, i, p, i);
	}
	write_snapshot(r, f, edges, g, p);
	fprintf(f, "\t}\n");
	free(vmas.vmas);
}

/* The pins still held, and an edge to each frame they hold. */
static void write_pins(struct run *r, FILE *f, FILE *edges, struct graph *g)
{
	for (int i = 0; i < r->s->nr_pins; i++) {
		const struct run_pin *rp = &r->pins[i];
		if (!rp->pin)
			continue;
		fprintf(f, "	pin%d [shape=cds, style=filled, fillcolor=\"#d7bde2\", label=\"%s\\n%s%s%s\"];\n",
			i, r->s->pin_names[i], (rp->foll & COWVM_FOLL_GET) ? "get" : "pin",
			(rp->foll & COWVM_FOLL_WRITE) ? " write" : "",
			(rp->foll & COWVM_FOLL_LONGTERM) ? " longterm" : "");
		for (size_t k = 0; k < rp->npages && k < MAX_PAGES_PER_VMA; k++) {
			uint64_t pfn = cowvm_pin_pfn(rp->pin, k);
			if (!frame_use(g, pfn)) /* out of memory: leave the edge out */
				continue;
			fprintf(edges, "\tpin%d -> f%" PRIu64 " [style=bold, color=\"#7d3c98\", label=\"held\"];\n",
				i, pfn);
		}
	}
}

static void write_frames(struct run *r, FILE *f, struct graph *g)
{
	for (int i = 0; i < g->nr_frames; i++) {
		const struct frame_use *u = &g->frames[i];
		struct cowvm_frame_info fi = { 0 };
		cowvm_frame_info(r->vm, u->pfn, &fi);
		if (u->pfn == r->zero_pfn)
			fprintf(f, "\tf%" PRIu64 " [shape=box, style=filled, fillcolor=\"#d5d8dc\", "
				   "peripheries=2, label=\"zero page\\nframe %" PRIu64 "\"];\n", u->pfn, u->pfn);
		else
			fprintf(f, "\tf%" PRIu64 " [shape=box, style=filled, fillcolor=\"%s\", label=\"frame %"
				   PRIu64 "\\n%s, ref %d, map %d%s\"];\n", u->pfn,
				frame_is_shared(r, u, &fi) ? "#f5b041" : "#d5f5e3", u->pfn,
				fi.state == COWVM_FRAME_SHMEM ? "shmem" : fi.state == COWVM_FRAME_PINNED ? "pinned" : "anon",
				fi.refcount, fi.mapcount,
				fi.anon_exclusive ? ", exclusive" : "");
	}
}

void write_graph(struct run *r, FILE *f)
{
	struct graph g = { 0 };
	count_frames(r, &g);
	find_snapshots(r, &g);
	fprintf(f, "digraph cowvm {\n\tgraph [rankdir=LR, fontname=\"Helvetica\", labelloc=t, label=\"");
	for (const char *c = r->s->name; *c; c++)
		fprintf(f, (*c == '"' || *c == '\\') ? "\\%c" : "%c", *c);
	if (r->op)
		fprintf(f, ", line %d", r->op->line);
	else
		fprintf(f, ", at the end");
	fprintf(f, "\"];\n\tnode [fontname=\"Helvetica\", fontsize=10];\n"
		   "\tedge [fontname=\"Helvetica\", fontsize=9];\n");
	char *edge_text = NULL;
	size_t edge_len = 0;
	FILE *edges = open_memstream(&edge_text, &edge_len);
	if (!edges) {
		fprintf(f, "}\n");
		free(g.frames);
		free(g.snaps);
		return;
	}
	for (int p = 0; p < r->nr_processes; p++)
		if (r->processes[p].live_threads > 0)
			write_process(r, f, edges, &g, p);
	write_pins(r, f, edges, &g);
	fclose(edges);
	write_frames(r, f, &g);
	fputs(edge_text, f);
	fprintf(f, "}\n");
	free(edge_text);
	free(g.frames);
	free(g.snaps);
}

/* Run `dot -Tsvg -o svg dotfile`; 0, ENOENT when Graphviz is not installed, or another error. */
static int render_svg(const char *dotfile, const char *svg)
{
	char *argv[] = { "dot", "-Tsvg", "-o", (char *)svg, (char *)dotfile, NULL };
	pid_t pid;
	int status, ret = posix_spawnp(&pid, "dot", NULL, NULL, argv, environ);
	if (ret)
		return ret;
	if (waitpid(pid, &status, 0) < 0)
		return errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return ENOENT;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EIO;
}

void write_graph_files(struct run *r)
{
	const char *dir = r->opts->dot_dir ? r->opts->dot_dir : ".";
	char name[256], dotfile[4096], svg[4096];
	snprintf(name, sizeof name, "%s", r->s->name);
	char *base = basename(name), *dotc = strrchr(base, '.');
	if (dotc && dotc != base)
		*dotc = 0;
	if (!strcmp(base, "<stdin>"))
		base = "stdin";
	snprintf(dotfile, sizeof dotfile, "%s/%s.dot", dir, base);
	snprintf(svg, sizeof svg, "%s/%s.svg", dir, base);
	FILE *f = fopen(dotfile, "w");
	if (!f) {
		r->failures++;
		report_failure(r, NULL, "cannot write %s: %s", dotfile, strerror(errno));
		return;
	}
	write_graph(r, f);
	if (fclose(f)) {
		r->failures++;
		report_failure(r, NULL, "cannot write %s: %s", dotfile, strerror(errno));
		return;
	}
	fflush(r->out);
	int rendered = render_svg(dotfile, svg);
	if (r->opts->json) {
		fprintf(r->out, "{\"event\":\"graph\",\"file\":");
		json_string(r->out, r->s->name);
		fprintf(r->out, ",\"dot\":");
		json_string(r->out, dotfile);
		fprintf(r->out, ",\"svg\":");
		if (rendered == 0)
			json_string(r->out, svg);
		else
			fputs("null", r->out);
		fprintf(r->out, "}\n");
	} else if (rendered == 0) {
		fprintf(r->out, "wrote %s and %s\n", dotfile, svg);
	} else if (rendered == ENOENT) {
		fprintf(r->out, "wrote %s (Graphviz's dot is not installed: no SVG)\n", dotfile);
	} else {
		fprintf(r->out, "wrote %s (dot could not render it: %s)\n", dotfile, strerror(rendered));
	}
}
