/*
 * pagewalk.c - walk_page_range: visit every PTE slot of a range whose PTE table exists,
 * skipping missing tables 2 MiB at a time, with the page-table lock held per table.
 */
#include "mm.h"

int walk_page_range(struct mm_struct *mm, uint64_t start, uint64_t end, pte_entry_fn fn, void *arg)
{
	for (uint64_t addr = start; addr < end;) {
		uint64_t next = (addr + PMD_SIZE) & ~(PMD_SIZE - 1);
		if (next > end || next == 0)
			next = end;
		pte_t *pte = pte_offset_map(mm, addr);
		if (pte) {
			spin_lock(&mm->page_table_lock);
			for (; addr < next; addr += PAGE_SIZE, pte++) {
				int ret = fn(pte, addr, arg);
				if (ret) {
					spin_unlock(&mm->page_table_lock);
					return ret;
				}
			}
			spin_unlock(&mm->page_table_lock);
		}
		addr = next;
	}
	return 0;
}
