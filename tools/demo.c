/*
 * demo.c - `cowvm demo`: the seeds' stories played on a small machine, every fault printed as
 * the kernel path it takes.  (The same stories, with expectations, are in examples/.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "cowvm.h"

static const char *name_of(int pid, int parent_pid)
{
	return pid == parent_pid ? "parent" : "child";
}

static int parent_pid;

static void print_event(void *arg, const struct cowvm_fault_event *ev)
{
	(void)arg;
	printf("  %-6s %s %#" PRIx64 ": ", name_of(ev->pid, parent_pid), ev->write ? "write" : "read ",
	       ev->addr);
	for (int i = 0; i < ev->npath; i++)
		printf("%s%s", i ? " > " : "", ev->path[i]);
	if (ev->old_pfn || ev->new_pfn)
		printf(" (frame %" PRIu64 " -> %" PRIu64 ")", ev->old_pfn, ev->new_pfn);
	if (strcmp(ev->outcome, "ok"))
		printf(" [%s]", ev->outcome);
	putchar('\n');
}

static uint64_t pfn(cowvm_task_t *t, uint64_t addr)
{
	return cowvm_pagemap(t, addr) & COWVM_PM_PFN_MASK;
}

static int demo(void)
{
	struct cowvm_config cfg = { .phys_bytes = 16u << 20 };
	cowvm_t *vm = cowvm_create(&cfg);
	if (!vm) {
		perror("cowvm_create");
		return 2;
	}
	cowvm_set_tracer(vm, print_event, NULL);
	cowvm_task_t *parent = cowvm_spawn(vm);
	parent_pid = cowvm_task_pid(parent);
	int64_t buf = cowvm_mmap(parent, 0, 2 * COWVM_PAGE_SIZE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS);
	char c;

	printf("1. A read of untouched memory maps the shared zero page (seed 003):\n");
	cowvm_read(parent, (uint64_t)buf, &c, 1);
	printf("2. A write after it replaces the zero page with a fresh zeroed page:\n");
	cowvm_write(parent, (uint64_t)buf, "A", 1);
	printf("3. fork copies page-table entries only; both sides now share frame %" PRIu64 ":\n",
	       pfn(parent, (uint64_t)buf));
	cowvm_task_t *child = cowvm_fork(parent);
	printf("   parent frame %" PRIu64 ", child frame %" PRIu64 "\n", pfn(parent, (uint64_t)buf),
	       pfn(child, (uint64_t)buf));
	printf("4. The child writes: a COW fault copies the page (seed 000's do_wp_page):\n");
	cowvm_write(child, (uint64_t)buf, "B", 1);
	cowvm_read(parent, (uint64_t)buf, &c, 1);
	printf("   parent still reads '%c'; ", c);
	cowvm_read(child, (uint64_t)buf, &c, 1);
	printf("child reads '%c'\n", c);
	printf("5. The parent writes: it is now the page's only user, so it is reused, not copied:\n");
	cowvm_write(parent, (uint64_t)buf, "C", 1);
	printf("6. A kernel copy from a bad user pointer returns -EFAULT through the exception table"
	       " (seed 001):\n");
	char kbuf[16];
	size_t left = cowvm_copy_from_user(parent, kbuf, 0x1000, sizeof kbuf);
	printf("   copy_from_user(0x1000, 16) left %zu bytes uncopied\n", left);

	struct cowvm_vmstat vs;
	cowvm_vmstat(vm, &vs);
	printf("vmstat: pgfault %" PRIu64 ", pgreuse %" PRIu64 ", cow copies %" PRIu64
	       ", zero-page maps %" PRIu64 "\n", vs.pgfault, vs.pgreuse, vs.cow_copies, vs.zero_page_maps);
	char why[256];
	int bad = cowvm_check(vm, why, sizeof why);
	printf("invariant checker: %s\n", bad ? why : "clean");
	cowvm_destroy(vm);
	return bad ? 1 : 0;
}

int demo_command(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: cowvm demo   (it takes no arguments)\n");
		return 2;
	}
	return demo();
}
