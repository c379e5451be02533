/*
 * huge_memory.c - transparent huge pages: the policy of /sys/kernel/mm/transparent_hugepage/
 * (enabled, defrag, use_zero_page; set once per machine in cowvm_config.flags) and
 * thp_vma_allowable_order, which decides whether a VMA may hold a PMD-sized anonymous folio.
 * Huge mappings themselves (do_huge_pmd_anonymous_page and what follows) are not built yet:
 * docs/fidelity.md says what that changes.
 */
#include <stdio.h>

#include "mm.h"

bool thp_config_valid(unsigned flags)
{
	unsigned enabled = flags & COWVM_CONFIG_THP_ENABLED_MASK;
	unsigned defrag = flags & COWVM_CONFIG_THP_DEFRAG_MASK;
	return enabled != (COWVM_CONFIG_THP_ALWAYS | COWVM_CONFIG_THP_NEVER) &&
	       defrag <= COWVM_CONFIG_THP_DEFRAG_NEVER;
}

/*
 * thp_vma_allowable_order(vma, vm_flags, TVA_SMAPS, PMD_ORDER) for anonymous memory: the
 * global policy (always: unless VM_NOHUGEPAGE; madvise: VM_HUGEPAGE; never: no), private
 * anonymous memory only (shared anonymous memory is shmem, whose own policy shmem_enabled is
 * "never" on this host), not a VMA that says VM_NOHUGEPAGE, and (outside a fault) the VMA
 * holds at least one aligned 2 MiB range.
 */
bool thp_vma_allowable(const struct vm_area_struct *vma, unsigned long vm_flags, bool in_pf)
{
	unsigned enabled = vma->vm_mm->vm->flags & COWVM_CONFIG_THP_ENABLED_MASK;
	if (vma->vm_file || (vm_flags & VM_NOHUGEPAGE) || enabled == COWVM_CONFIG_THP_NEVER)
		return false;
	if (enabled == COWVM_CONFIG_THP_MADVISE && !(vm_flags & VM_HUGEPAGE))
		return false;
	if (in_pf)
		return true;
	uint64_t first = (vma->vm_start + PMD_SIZE - 1) & ~(PMD_SIZE - 1);
	return first >= vma->vm_start && first + PMD_SIZE <= vma->vm_end && first + PMD_SIZE > first;
}

/* The sysfs text: each choice, the current one in brackets. */
static int sysfs_choice(char *buf, size_t len, const char *const *names, int n, int current)
{
	size_t used = 0;
	for (int i = 0; i < n; i++) {
		int w = snprintf(buf + used, len - used, i == current ? "%s[%s]" : "%s%s",
				 i ? " " : "", names[i]);
		if (w < 0 || (size_t)w >= len - used)
			return -ERANGE;
		used += (size_t)w;
	}
	if (used + 2 > len)
		return -ERANGE;
	buf[used++] = '\n';
	buf[used] = '\0';
	return (int)used;
}

int cowvm_thp_setting(cowvm_t *vm, const char *name, char *buf, size_t len)
{
	if (!vm || !name || !buf)
		return -EINVAL;
	if (len == 0)
		return -ERANGE;
	if (!strcmp(name, "enabled")) {
		static const char *const names[] = { "always", "madvise", "never" };
		unsigned e = vm->flags & COWVM_CONFIG_THP_ENABLED_MASK;
		return sysfs_choice(buf, len, names, 3, e == COWVM_CONFIG_THP_ALWAYS ? 0 :
				    e == COWVM_CONFIG_THP_NEVER ? 2 : 1);
	}
	if (!strcmp(name, "defrag")) {
		static const char *const names[] = { "always", "defer", "defer+madvise", "madvise", "never" };
		static const int pos[] = { 3, 0, 1, 2, 4 }; /* by COWVM_CONFIG_THP_DEFRAG_* >> 16 */
		unsigned d = (vm->flags & COWVM_CONFIG_THP_DEFRAG_MASK) >> 16;
		return sysfs_choice(buf, len, names, 5, pos[d]);
	}
	if (!strcmp(name, "use_zero_page")) {
		int w = snprintf(buf, len, "%d\n", (vm->flags & COWVM_CONFIG_THP_NO_ZERO_PAGE) ? 0 : 1);
		return w < 0 || (size_t)w >= len ? -ERANGE : w;
	}
	return -EINVAL;
}
