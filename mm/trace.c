/*
 * trace.c - the fault-path tracer: one event per fault, with the Linux functions it went
 * through, the frames before and after, and how it ended.  Costs nothing when no tracer is set.
 */
#include "mm.h"

static const char *outcome_of(unsigned ret, bool user)
{
	if (ret & VM_FAULT_OOM)
		return "OOM";
	if (ret & VM_FAULT_SIGBUS)
		return user ? "SIGBUS" : "fixup";
	if (ret & VM_FAULT_SIGSEGV)
		return user ? "SIGSEGV" : "fixup";
	return "ok";
}

void trace_fault(struct vm_fault *vmf, unsigned result, bool user)
{
	struct task_struct *task = vmf->task;
	struct cowvm *vm = task->vm;
	cowvm_tracer_fn fn = vm->tracer;
	if (!fn)
		return;
	user = user && (vmf->flags & FAULT_FLAG_USER);
	struct cowvm_fault_event ev = {
		.pid = task->pid,
		.tid = task->tid,
		.addr = vmf->real_address,
		.write = (vmf->flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) != 0,
		.user = user,
		.npath = vmf->npath,
		.old_pfn = vmf->old_pfn,
		.new_pfn = vmf->new_pfn,
		.outcome = outcome_of(result, user),
	};
	for (int i = 0; i < vmf->npath; i++)
		ev.path[i] = vmf->path[i];
	fn(vm->tracer_arg, &ev);
}

void trace_event(struct task_struct *task, uint64_t addr, const char *const *path, int npath,
		 const char *outcome)
{
	cowvm_tracer_fn fn = task->vm->tracer;
	if (!fn)
		return;
	struct cowvm_fault_event ev = {
		.pid = task->pid, .tid = task->tid, .addr = addr, .write = 1, .user = 0,
		.npath = npath < COWVM_TRACE_MAX_PATH ? npath : COWVM_TRACE_MAX_PATH, .outcome = outcome,
	};
	for (int i = 0; i < ev.npath; i++)
		ev.path[i] = path[i];
	fn(task->vm->tracer_arg, &ev);
}

void cowvm_set_tracer(cowvm_t *vm, cowvm_tracer_fn fn, void *arg)
{
	if (!vm)
		return;
	vm->tracer_arg = arg;
	vm->tracer = fn;
}
