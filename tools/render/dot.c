/*
 * dot.c - a state of the machine as a Graphviz picture: processes -> VMAs -> pages -> frames.
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
 * Graphviz's `dot` can be run, renders NAME.svg beside it.  Drawn from a captured state only.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lang/words.h"
#include "render/render.h"

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
	const struct step_log *log;
	const struct log_state *st;
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

/* The frame's facts in the state (zeros if it is not there). */
static struct cowvm_frame_info frame_info(struct graph *g, uint64_t pfn)
{
	const struct state_frame *sf = state_frame(g->st, pfn);
	struct cowvm_frame_info fi = { 0 };
	if (sf)
		fi = sf->info;
	return fi;
}

/* The VMAs of a live process (NULL, 0 for one without tasks). */
static const struct state_vma *process_vmas(struct graph *g, int p, int *count)
{
	const struct state_process *sp = &g->st->processes[p];
	*count = sp->live && sp->vmas_ok ? sp->nr_vmas : 0;
	return sp->live && sp->vmas_ok ? &g->st->vmas[sp->first_vma] : NULL;
}

/* Count, for every present page that will be drawn, the frame it maps. */
static void count_frames(struct graph *g)
{
	for (int p = 0; p < g->st->nr_processes; p++) {
		int nv;
		const struct state_vma *vmas = process_vmas(g, p, &nv);
		for (int i = 0; i < nv; i++) {
			int drawn = 0;
			for (int k = vmas[i].first_page; k < vmas[i].first_page + vmas[i].nr_pages &&
			     drawn < MAX_PAGES_PER_VMA; k++) {
				uint64_t word = g->st->pages[k].pagemap;
				if (!(word & COWVM_PM_PRESENT))
					continue;
				struct frame_use *u = frame_use(g, word & COWVM_PM_PFN_MASK);
				if (u)
					u->edges++;
				drawn++;
			}
		}
	}
}

/* The pages of every SNAP image (what rmap found for each anonymous frame); their frames are
 * drawn even when no process maps them any more (the child has written its own copy since). */
static void find_snapshots(struct graph *g)
{
	if (!g->st->snapped) /* no image was ever made */
		return;
	for (int i = 0; i < g->st->nr_frames; i++) {
		const struct state_frame *sf = &g->st->frames[i];
		if (sf->info.state != COWVM_FRAME_ANON)
			continue;
		int before = g->nr_snaps;
		for (int m = sf->first_mapper; m < sf->first_mapper + sf->nr_mappers; m++) {
			const struct state_mapper *mp = &g->st->mappers[m];
			if (mp->pid >= 0)
				continue;
			if (g->nr_snaps == g->snap_capacity) {
				int cap = g->snap_capacity ? g->snap_capacity * 2 : 32;
				struct snap_page *grown = realloc(g->snaps, (size_t)cap * sizeof *grown);
				if (!grown)
					break;
				g->snaps = grown;
				g->snap_capacity = cap;
			}
			g->snaps[g->nr_snaps++] = (struct snap_page){ .pid = -mp->pid, .addr = mp->addr,
								      .pfn = sf->info.pfn };
		}
		if (g->nr_snaps > before)
			frame_use(g, sf->info.pfn);
	}
}

/* The child's image: a dashed node in its cluster, dotted edges to the frames it keeps. */
static void write_snapshot(struct graph *g, FILE *f, FILE *edges, int p)
{
	const struct state_process *proc = &g->st->processes[p];
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

static bool frame_is_shared(struct graph *g, const struct frame_use *u, const struct cowvm_frame_info *fi)
{
	return u->pfn != g->st->zero_pfn && (u->edges > 1 || fi->mapcount > 1);
}

/* "buf[3]" or "heap[0]" for a page of a named region, else its address. */
static void page_label(struct graph *g, int process, uint64_t addr, char *out, size_t len)
{
	const struct step_log *log = g->log;
	int id = state_region_at(log, g->st, process, addr, addr + PG);
	const struct state_process *p = &g->st->processes[process];
	if (id >= 0)
		snprintf(out, len, "%s[%" PRIu64 "]\\n%" PRIx64, log->s->region_names[id],
			 (addr - g->st->regions[id].start) / PG, addr);
	else if (log->s->heap_region >= 0 && addr >= p->start_brk && p->knows_region[log->s->heap_region])
		snprintf(out, len, "heap[%" PRIu64 "]\\n%" PRIx64, (addr - p->start_brk) / PG, addr);
	else
		snprintf(out, len, "%" PRIx64, addr);
}

/* The clusters hold processes, VMAs and pages; page -> frame edges go to `edges`, written after
 * them at the top level (a node belongs to every subgraph an edge inside it names, so edges
 * inside a cluster would pull the frames into it). */
static void write_process(struct graph *g, FILE *f, FILE *edges, int p)
{
	const struct state_process *proc = &g->st->processes[p];
	int nv;
	const struct state_vma *vmas = process_vmas(g, p, &nv);
	if (!proc->live || !proc->vmas_ok)
		return;
	fprintf(f, "\tsubgraph cluster_p%d {\n\t\tlabel=\"%s (pid %d)\"; style=rounded; color=\"#7f8c8d\";\n",
		p, proc->name, proc->pid);
	fprintf(f, "\t\tp%d [shape=box, style=\"rounded,filled\", fillcolor=\"#d6eaf8\", "
		   "label=\"%s\\npid %d, %d thread%s\"];\n", p, proc->name, proc->pid,
		proc->live_threads, proc->live_threads == 1 ? "" : "s");
	for (int i = 0; i < nv; i++) {
		const struct cowvm_vma_info *v = &vmas[i].info;
		char perms[4], name[160], label[200];
		prot_to_text(v->prot, perms);
		state_vma_name(g->log, g->st, p, v, name, sizeof name);
		fprintf(f, "\t\tp%d_v%d [shape=box, label=\"%s%s%" PRIx64 "-%" PRIx64 "\\n%s%c%s%s\"];\n", p,
			i, name, *name ? "\\n" : "", v->start, v->end, perms, v->shared ? 's' : 'p',
			(v->flags & 0x20000) ? " dontfork" : "", (v->flags & 0x2000000) ? " wipeonfork" : "");
		fprintf(f, "\t\tp%d -> p%d_v%d;\n", p, p, i);
		int drawn = 0, more = 0;
		for (int k = vmas[i].first_page; k < vmas[i].first_page + vmas[i].nr_pages; k++) {
			uint64_t a = g->st->pages[k].addr, word = g->st->pages[k].pagemap;
			if (!(word & COWVM_PM_PRESENT))
				continue;
			if (drawn == MAX_PAGES_PER_VMA) {
				more++;
				continue;
			}
			uint64_t pfn = word & COWVM_PM_PFN_MASK, pte = g->st->pages[k].pte;
			struct frame_use *u = frame_use(g, pfn);
			struct cowvm_frame_info fi = frame_info(g, pfn);
			bool shared = u && frame_is_shared(g, u, &fi), writable = (pte & 3) == 3;
			page_label(g, p, a, label, sizeof label);
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
	write_snapshot(g, f, edges, p);
	fprintf(f, "\t}\n");
}

/* The pins still held, and an edge to each frame they hold. */
static void write_pins(struct graph *g, FILE *f, FILE *edges)
{
	for (int i = 0; i < g->st->nr_pins; i++) {
		const struct state_pin *sp = &g->st->pins[i];
		if (!sp->held)
			continue;
		fprintf(f, "	pin%d [shape=cds, style=filled, fillcolor=\"#d7bde2\", label=\"%s\\n%s%s%s\"];\n",
			i, g->log->s->pin_names[i], (sp->foll & COWVM_FOLL_GET) ? "get" : "pin",
			(sp->foll & COWVM_FOLL_WRITE) ? " write" : "",
			(sp->foll & COWVM_FOLL_LONGTERM) ? " longterm" : "");
		for (size_t k = 0; k < sp->npages && k < MAX_PAGES_PER_VMA; k++) {
			uint64_t pfn = sp->pfns[k];
			if (!frame_use(g, pfn)) /* out of memory: leave the edge out */
				continue;
			fprintf(edges, "\tpin%d -> f%" PRIu64 " [style=bold, color=\"#7d3c98\", label=\"held\"];\n",
				i, pfn);
		}
	}
}

static void write_frames(struct graph *g, FILE *f)
{
	for (int i = 0; i < g->nr_frames; i++) {
		const struct frame_use *u = &g->frames[i];
		struct cowvm_frame_info fi = frame_info(g, u->pfn);
		if (u->pfn == g->st->zero_pfn)
			fprintf(f, "\tf%" PRIu64 " [shape=box, style=filled, fillcolor=\"#d5d8dc\", "
				   "peripheries=2, label=\"zero page\\nframe %" PRIu64 "\"];\n", u->pfn, u->pfn);
		else
			fprintf(f, "\tf%" PRIu64 " [shape=box, style=filled, fillcolor=\"%s\", label=\"frame %"
				   PRIu64 "\\n%s, ref %d, map %d%s\"];\n", u->pfn,
				frame_is_shared(g, u, &fi) ? "#f5b041" : "#d5f5e3", u->pfn,
				fi.state == COWVM_FRAME_SHMEM ? "shmem" : fi.state == COWVM_FRAME_PINNED ? "pinned" : "anon",
				fi.refcount, fi.mapcount,
				fi.anon_exclusive ? ", exclusive" : "");
	}
}

/* What the colours and line styles mean, as a small cluster of its own. */
static void write_legend(FILE *f)
{
	fputs("\tsubgraph cluster_legend {\n\t\tlabel=\"legend\"; style=dashed; color=\"#aab7b8\"; fontsize=10;\n"
	      "\t\tnode [fontsize=9];\n"
	      "\t\tlg_proc [shape=box, style=\"rounded,filled\", fillcolor=\"#d6eaf8\", label=\"process\"];\n"
	      "\t\tlg_excl [shape=box, style=filled, fillcolor=\"#d5f5e3\", label=\"frame one PTE maps\"];\n"
	      "\t\tlg_shared [shape=box, style=filled, fillcolor=\"#f5b041\", label=\"frame several PTEs map\"];\n"
	      "\t\tlg_zero [shape=box, style=filled, fillcolor=\"#d5d8dc\", peripheries=2, label=\"zero page\"];\n"
	      "\t\tlg_pin [shape=cds, style=filled, fillcolor=\"#d7bde2\", label=\"pin\"];\n"
	      "\t\tlg_a [shape=point]; lg_b [shape=point]; lg_a -> lg_b [label=\"rw: writable PTE\"];\n"
	      "\t\tlg_c [shape=point]; lg_d [shape=point]; lg_c -> lg_d [style=dashed, label=\"ro: read-only PTE\"];\n"
	      "\t\tlg_e [shape=point]; lg_f [shape=point]; lg_e -> lg_f [color=\"#c0392b\", penwidth=2, label=\"to a shared frame\"];\n"
	      "\t\tlg_g [shape=point]; lg_h [shape=point]; lg_g -> lg_h [style=bold, color=\"#7d3c98\", label=\"held by a pin\"];\n"
	      "\t\tlg_i [shape=point]; lg_j [shape=point]; lg_i -> lg_j [style=dotted, label=\"dput SNAP image\"];\n"
	      "\t}\n", f);
}

void dot_graph(FILE *f, const struct step_log *log, const struct log_state *st, int line)
{
	struct graph g = { .log = log, .st = st };
	count_frames(&g);
	find_snapshots(&g);
	fprintf(f, "digraph cowvm {\n\tgraph [rankdir=LR, fontname=\"Helvetica\", labelloc=t, label=\"");
	for (const char *c = log->file; *c; c++)
		fprintf(f, (*c == '"' || *c == '\\') ? "\\%c" : "%c", *c);
	if (line)
		fprintf(f, ", line %d", line);
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
	for (int p = 0; p < st->nr_processes; p++)
		if (st->processes[p].live_threads > 0)
			write_process(&g, f, edges, p);
	write_pins(&g, f, edges);
	fclose(edges);
	write_frames(&g, f);
	write_legend(f);
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

int dot_write_files(const struct step_log *log, const struct log_state *st, int line,
		    const char *dir, struct dot_files *out)
{
	return dot_write_step_files(log, st, line, dir, -1, out);
}

int dot_write_step_files(const struct step_log *log, const struct log_state *st, int line,
			 const char *dir, int step, struct dot_files *out)
{
	char name[256];
	snprintf(name, sizeof name, "%s", log->file);
	char *base = basename(name), *dotc = strrchr(base, '.');
	if (dotc && dotc != base)
		*dotc = 0;
	if (!strcmp(base, "<stdin>"))
		base = "stdin";
	char suffix[24] = "";
	if (step >= 0)
		snprintf(suffix, sizeof suffix, "-step%d", step);
	snprintf(out->dot, sizeof out->dot, "%s/%s%s.dot", dir ? dir : ".", base, suffix);
	snprintf(out->svg, sizeof out->svg, "%s/%s%s.svg", dir ? dir : ".", base, suffix);
	out->rendered = ENOENT;
	FILE *f = fopen(out->dot, "w");
	if (!f)
		return errno;
	dot_graph(f, log, st, line);
	if (fclose(f))
		return errno;
	out->rendered = render_svg(out->dot, out->svg);
	return 0;
}
