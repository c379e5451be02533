/*
 * extable.c - the exception table (arch/x86/mm/extable.c): for each kernel site that touches
 * user memory, what to do when the access faults and handle_mm_fault cannot resolve it.  A
 * fault at a site with no entry is a kernel bug (an oops), and stops the program.
 *
 * In cowvm a "site" is the uaccess primitive that made the access, identified by its address,
 * as the faulting instruction's address identifies it in the kernel.  The table is sorted once
 * (sort_main_extable) and searched by binary search (search_exception_tables).
 */
#include "extable.h"

#include <stdlib.h>

static struct exception_table_entry *ex_table;
static size_t ex_table_len;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static int cmp_entry(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct exception_table_entry *)a)->insn;
	uintptr_t y = (uintptr_t)((const struct exception_table_entry *)b)->insn;
	return x < y ? -1 : x > y;
}

static void sort_main_extable(void)
{
	ex_table_len = uaccess_extable(&ex_table);
	qsort(ex_table, ex_table_len, sizeof(*ex_table), cmp_entry);
}

const struct exception_table_entry *search_exception_tables(const void *insn)
{
	pthread_once(&ex_once, sort_main_extable);
	size_t lo = 0, hi = ex_table_len;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if ((uintptr_t)ex_table[mid].insn == (uintptr_t)insn)
			return &ex_table[mid];
		if ((uintptr_t)ex_table[mid].insn < (uintptr_t)insn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* kernelmode_fixup_or_oops: the entry for the site, or an oops. */
const struct exception_table_entry *fixup_exception(const void *insn, uint64_t address)
{
	const struct exception_table_entry *e = search_exception_tables(insn);
	if (!e)
		bug("unable to handle page fault for user address %#llx at a site with no fixup",
		    (unsigned long long)address);
	return e;
}
