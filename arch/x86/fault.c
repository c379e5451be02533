/*
 * fault.c - the page-fault trap handler (arch/x86/mm/fault.c): find the VMA (growing a stack
 * down to the address, as lock_mm_and_find_vma does), check the access against it
 * (access_error), and call handle_mm_fault.  What it cannot resolve is the task's
 * SIGSEGV when the task itself made the access, or a kernel fault that uaccess fixes up
 * through the exception table.
 */
#include "../../mm/mm.h"

/* x86 access_error: a write needs VM_WRITE; a read needs any access right (x86 cannot map
 * write-only or exec-only pages, so those are readable). */
static bool access_error(bool write, const struct vm_area_struct *vma)
{
	if (write)
		return !(vma->vm_flags & VM_WRITE);
	return !(vma->vm_flags & VM_ACCESS_FLAGS);
}

static void trace_bad_area(struct task_struct *task, uint64_t address, bool write, bool user,
			   const char *why)
{
	struct vm_fault vmf = { .task = task, .address = address & PAGE_MASK,
				.real_address = address, .flags = write ? FAULT_FLAG_WRITE : 0 };
	trace_step(&vmf, "do_user_addr_fault");
	trace_step(&vmf, why);
	if (user)
		vmf.flags |= FAULT_FLAG_USER;
	trace_fault(&vmf, VM_FAULT_SIGSEGV, user);
}

unsigned do_user_addr_fault(struct task_struct *task, uint64_t address, bool write, bool user)
{
	struct mm_struct *mm = task->mm;
	const char *why = NULL;
	unsigned ret;

	if (address >= TASK_SIZE_MAX) {
		why = "bad_area_nosemaphore";
		goto bad;
	}
	down_read(&mm->mmap_lock);
	struct vm_area_struct *vma = find_vma(mm, address);
	if (vma && vma->vm_start > address && (vma->vm_flags & VM_GROWSDOWN)) {
		/* lock_mm_and_find_vma: expand the stack under the write lock, then fault as usual
		 * under the read lock (the VMA is looked up again: it may have changed between). */
		up_read(&mm->mmap_lock);
		down_write(&mm->mmap_lock);
		vma = find_vma(mm, address);
		int err = vma && vma->vm_start > address ? expand_downwards(vma, address) : 0;
		up_write(&mm->mmap_lock);
		down_read(&mm->mmap_lock);
		vma = err ? NULL : find_vma(mm, address);
	}
	if (!vma || vma->vm_start > address) {
		up_read(&mm->mmap_lock);
		why = "bad_area";
		goto bad;
	}
	if (access_error(write, vma)) {
		up_read(&mm->mmap_lock);
		why = "bad_area_access_error";
		goto bad;
	}
	unsigned flags = (write ? FAULT_FLAG_WRITE : 0) | (user ? FAULT_FLAG_USER : 0);
	ret = handle_mm_fault(vma, address, flags, task);
	up_read(&mm->mmap_lock);
	return ret & VM_FAULT_ERROR;
bad:
	if (task->vm->tracer)
		trace_bad_area(task, address, write, user, why);
	return VM_FAULT_SIGSEGV;
}
