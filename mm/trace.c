/*
 * trace.c - the two tracers.
 *   cowvm_set_tracer: one event per fault, with the Linux functions it went through (the
 *     nesting chain), the frames before and after, and how it ended.
 *   cowvm_set_trace: the step stream - ENTER/LEAVE of each kernel step and NOTE events with
 *     what a step found or decided, and why (mm.h: TRACE_SCOPE, trace_call, trace_note).
 * Both cost one predictable branch per step when no function is set.  The stream's nesting is
 * per host thread (a thread-local depth), as a call stack is; the task an event is for is the
 * innermost scope's that named one.
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

/* ---- the step stream ------------------------------------------------------------------------ */

static _Thread_local int trace_depth;
static _Thread_local int trace_pid, trace_tid;

static void trace_emit(struct cowvm *vm, int kind, int depth, const char *name, const char *reason,
		       int decision, const struct cowvm_trace_fact *facts, int nfacts)
{
	cowvm_trace_fn fn = vm->trace;
	if (!fn)
		return;
	struct cowvm_trace_event ev = {
		.kind = kind, .pid = trace_pid, .tid = trace_tid, .depth = depth, .name = name,
		.reason = reason, .decision = decision,
	};
	uint64_t zero = page_to_pfn(vm, vm->zero_page);
	for (int i = 0; i < nfacts && ev.nfacts < COWVM_TRACE_MAX_FACTS; i++) {
		struct cowvm_trace_fact f = facts[i];
		if (f.type == COWVM_FACT_FRAME)
			f.text = f.value == NO_FRAME ? "-" : f.value == zero ? "zero" : NULL;
		ev.facts[ev.nfacts++] = f;
	}
	fn(vm->trace_arg, &ev);
}

void trace_enter_(struct cowvm *vm, struct task_struct *task, struct trace_scope *scope,
		  const char *name, const struct cowvm_trace_fact *facts, int nfacts)
{
	scope->vm = vm;
	scope->name = name;
	scope->pid = trace_pid;
	scope->tid = trace_tid;
	if (task) {
		trace_pid = task->pid;
		trace_tid = task->tid;
	}
	trace_emit(vm, COWVM_TRACE_ENTER, trace_depth++, name, NULL, 0, facts, nfacts);
}

void trace_leave_(struct trace_scope *scope)
{
	trace_emit(scope->vm, COWVM_TRACE_LEAVE, --trace_depth, scope->name, NULL, 0, NULL, 0);
	trace_pid = scope->pid;
	trace_tid = scope->tid;
}

void trace_call_(struct cowvm *vm, const char *name, const struct cowvm_trace_fact *facts, int nfacts)
{
	trace_emit(vm, COWVM_TRACE_ENTER, trace_depth, name, NULL, 0, facts, nfacts);
	trace_emit(vm, COWVM_TRACE_LEAVE, trace_depth, name, NULL, 0, NULL, 0);
}

void trace_note_(struct cowvm *vm, const char *what, const char *why, int decision,
		 const struct cowvm_trace_fact *facts, int nfacts)
{
	trace_emit(vm, COWVM_TRACE_NOTE, trace_depth, what, why, decision, facts, nfacts);
}

void cowvm_set_trace(cowvm_t *vm, cowvm_trace_fn fn, void *arg)
{
	if (!vm)
		return;
	vm->trace_arg = arg;
	vm->trace = fn;
}

void cowvm_set_tracer(cowvm_t *vm, cowvm_tracer_fn fn, void *arg)
{
	if (!vm)
		return;
	vm->tracer_arg = arg;
	vm->tracer = fn;
}
