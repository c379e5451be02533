/*
 * fork.c - processes and threads (Linux's kernel/fork.c and kernel/exit.c, the mm parts):
 * spawn a process with an empty mm, fork one (dup_mmap: anon_vma_fork + copy_page_range for
 * every VMA), clone a thread into an mm, and exit (the last thread tears the mm down).
 *
 * Invariants: a task is on vm->tasks and on its mm's thread list from creation to exit; the
 * thread list changes under mmap_lock (write) and task_lock, so a TLB flush holding mmap_lock
 * can walk it; an mm lives while it has threads.
 */
#include "mm.h"

static struct task_struct *task_alloc(struct cowvm *vm, struct mm_struct *mm, int pid)
{
	struct task_struct *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->vm = vm;
	t->mm = mm;
	mmu_init(t);
	pthread_mutex_lock(&vm->task_lock);
	t->tid = ++vm->next_pid;
	t->pid = pid ? pid : t->tid;
	list_add_tail(&t->task_node, &vm->tasks);
	list_add_tail(&t->thread_node, &mm->threads);
	mm->nr_threads++;
	if (mm->nr_threads == 1) {
		mm->tgid = t->pid;
		list_add_tail(&mm->mmlist, &vm->mms);
	}
	pthread_mutex_unlock(&vm->task_lock);
	return t;
}

cowvm_task_t *cowvm_spawn(cowvm_t *vm)
{
	if (!vm) {
		errno = EINVAL;
		return NULL;
	}
	struct mm_struct *mm = mm_alloc(vm);
	if (!mm) {
		errno = ENOMEM;
		return NULL;
	}
	struct task_struct *t = task_alloc(vm, mm, 0);
	if (!t) {
		mm_free(mm);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

/*
 * dup_mmap - copy the parent's address space into the new mm: every VMA but the DONTCOPY
 * ones; WIPEONFORK VMAs arrive empty; the others get chains to the parent's anon_vmas and a
 * copy of the page tables, write-protected on both sides.  Then the parent's TLBs are flushed.
 * Holds the parent's mmap_lock for writing (the child is not visible yet).
 * Returns 0 or -ENOMEM; the caller tears down the partial child.
 */
static int dup_mmap(struct mm_struct *mm, struct mm_struct *oldmm)
{
	int err = 0;
	struct cowvm *vm = oldmm->vm;
	TRACE_SCOPE(vm, NULL, "dup_mmap", TF_NUM("vmas", oldmm->nr_vmas));
	down_write(&oldmm->mmap_lock);
	down_write(&mm->mmap_lock);
	mm->start_brk = oldmm->start_brk;
	mm->brk = oldmm->brk;
	mm->mmap_base = oldmm->mmap_base;
	/* credentials and limits are inherited; mlock is not (def_flags and locked_vm start 0) */
	mm->caps = oldmm->caps;
	memcpy(mm->rlim_memlock, oldmm->rlim_memlock, sizeof(mm->rlim_memlock));
	memcpy(mm->rlim_stack, oldmm->rlim_stack, sizeof(mm->rlim_stack));
	mm->hiwater_vm = oldmm->hiwater_vm;
	mm->hiwater_rss = oldmm->hiwater_rss;
	for (size_t i = 0; i < oldmm->nr_vmas; i++) {
		struct vm_area_struct *mpnt = oldmm->vmas[i];
		if (mpnt->vm_flags & VM_DONTCOPY) {
			trace_note(vm, "not copied", "MADV_DONTFORK (VM_DONTCOPY): the child has no such VMA",
				   TF_HEX("vma", mpnt->vm_start));
			continue;
		}
		if (mpnt->vm_flags & VM_WIPEONFORK)
			trace_note(vm, "wiped", "MADV_WIPEONFORK: the child's VMA starts empty, as a new mapping",
				   TF_HEX("vma", mpnt->vm_start));
		err = copy_vma_cow(mm, mpnt, 0, mpnt->vm_flags & VM_WIPEONFORK);
		if (err)
			break;
	}
	trace_call(vm, "flush_tlb_mm", TF_TEXT("why", "the parent's PTEs lost their write bit"));
	flush_tlb_mm(oldmm);
	up_write(&mm->mmap_lock);
	up_write(&oldmm->mmap_lock);
	return err;
}

cowvm_task_t *cowvm_fork(cowvm_task_t *parent)
{
	if (!parent) {
		errno = EINVAL;
		return NULL;
	}
	current = parent;
	struct cowvm *vm = parent->vm;
	TRACE_SCOPE(vm, parent, "copy_process", TF_NUM("parent", parent->pid));
	struct mm_struct *mm = mm_alloc(vm);
	if (!mm) {
		errno = ENOMEM;
		return NULL;
	}
	mem_cgroup_fork(mm, parent->mm);
	int err = dup_mmap(mm, parent->mm);
	if (err) {
		exit_mmap(mm);
		mm_free(mm);
		errno = -err;
		return NULL;
	}
	struct task_struct *t = task_alloc(vm, mm, 0);
	if (!t) {
		exit_mmap(mm);
		mm_free(mm);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

cowvm_task_t *cowvm_clone_thread(cowvm_task_t *t)
{
	if (!t) {
		errno = EINVAL;
		return NULL;
	}
	current = t;
	down_write(&t->mm->mmap_lock);
	struct task_struct *thread = task_alloc(t->vm, t->mm, t->pid);
	up_write(&t->mm->mmap_lock);
	if (!thread)
		errno = ENOMEM;
	return thread;
}

/* exit: leave the mm (the last thread tears it down: exit_mmap) and free the task. */
int cowvm_exit(cowvm_task_t *t)
{
	if (!t)
		return -EINVAL;
	struct cowvm *vm = t->vm;
	struct mm_struct *mm = t->mm;
	TRACE_SCOPE(vm, t, "do_exit", TF_NUM("pid", t->pid), TF_NUM("tid", t->tid));
	if (current == t)
		current = NULL;
	down_write(&mm->mmap_lock);
	pthread_mutex_lock(&vm->task_lock);
	list_del(&t->task_node);
	list_del(&t->thread_node);
	bool last = --mm->nr_threads == 0;
	if (last)
		list_del(&mm->mmlist);
	if (!last)
		trace_note(vm, "mm stays", "other threads still use the mm", TF_NUM("threads left", mm->nr_threads));
	pthread_mutex_unlock(&vm->task_lock);
	up_write(&mm->mmap_lock);
	free(t);
	if (last) {
		if (mm->snapshot)
			destroy_snapshot(mm->snapshot);
		exit_snapshots(mm);
		exit_mmap(mm);
		mm_free(mm);
	}
	return 0;
}

int cowvm_task_pid(const cowvm_task_t *t)
{
	return t ? t->pid : -EINVAL;
}

int cowvm_task_tid(const cowvm_task_t *t)
{
	return t ? t->tid : -EINVAL;
}
