/*
 * clash.c - a program that defines, for its own purposes, names the kernel (and so cowvm's
 * core) uses: current, put_page, find_vma, alloc_pages, list_add.  Linked against libcowvm.a
 * and against libcowvm.so, it must link (no duplicate symbol), the library must never call
 * the program's functions or touch its variable (no interposition), and the fork story must
 * come out as Linux tells it: the child's write copies, the parent's then reuses.
 * Exit status 0 when everything held; otherwise a line says what did not.
 */
#include <stdio.h>
#include <string.h>

#include <cowvm.h>

/* The program's own meanings of these names. */
int current = 7;
static int own_calls;
int put_page(int x) { own_calls++; return x + 1; }
const char *find_vma(const char *s) { own_calls++; return s; }
void *alloc_pages(unsigned n) { own_calls++; return n ? NULL : &current; }
int list_add(int a, int b) { own_calls++; return a + b; }

static int failures;

static void expect(int cond, const char *what)
{
	if (!cond) {
		printf("clash: %s\n", what);
		failures++;
	}
}

int main(void)
{
	struct cowvm_config cfg = { 16u << 20, 0, 0, NULL, 0 };
	struct cowvm_vmstat before, after;
	char why[256];
	char p = 0, c = 0;

	cowvm_t *vm = cowvm_create(&cfg);
	expect(vm != NULL, "cowvm_create failed");
	if (!vm)
		return 1;
	cowvm_vmstat(vm, &before);
	cowvm_task_t *parent = cowvm_spawn(vm);
	int64_t buf = cowvm_mmap(parent, 0, 4096, COWVM_PROT_READ | COWVM_PROT_WRITE,
				 COWVM_MAP_PRIVATE | COWVM_MAP_ANONYMOUS);
	expect(buf > 0, "mmap failed");
	expect(cowvm_write(parent, (uint64_t)buf, "A", 1) == 0, "parent's first write failed");
	cowvm_task_t *child = cowvm_fork(parent);
	expect(child != NULL, "fork failed");
	uint64_t shared = cowvm_pagemap(parent, (uint64_t)buf) & COWVM_PM_PFN_MASK;
	expect(shared == (cowvm_pagemap(child, (uint64_t)buf) & COWVM_PM_PFN_MASK),
	       "after fork the two do not share the frame");
	expect(cowvm_write(child, (uint64_t)buf, "B", 1) == 0, "child's write failed");
	expect(cowvm_write(parent, (uint64_t)buf, "C", 1) == 0, "parent's write failed");
	expect(cowvm_read(parent, (uint64_t)buf, &p, 1) == 0 && p == 'C', "parent does not read C");
	expect(cowvm_read(child, (uint64_t)buf, &c, 1) == 0 && c == 'B', "child does not read B");
	expect((cowvm_pagemap(parent, (uint64_t)buf) & COWVM_PM_PFN_MASK) == shared,
	       "the parent's write did not reuse its page");
	cowvm_vmstat(vm, &after);
	expect(after.cow_copies - before.cow_copies == 1, "not exactly one COW copy");
	expect(after.pgreuse - before.pgreuse == 1, "not exactly one reuse");
	expect(cowvm_check(vm, why, sizeof why) == 0, why);
	cowvm_exit(child);
	cowvm_exit(parent);
	cowvm_vmstat(vm, &after);
	expect(after.nr_free_pages == before.nr_free_pages, "frames leaked");
	cowvm_destroy(vm);

	expect(current == 7, "the library wrote the program's `current`");
	expect(own_calls == 0, "the library called one of the program's functions");
	/* and the program's own functions still mean what it says */
	expect(put_page(1) == 2 && list_add(2, 3) == 5 && alloc_pages(0) == &current &&
	       strcmp(find_vma("x"), "x") == 0, "the program's own functions misbehave");
	return failures ? 1 : 0;
}
