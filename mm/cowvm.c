/*
 * cowvm.c - the machine: create it (physical memory, zero page, LRU, counters) and destroy it
 * (every task left exits first, so all frames come back).
 */
#include <unistd.h>

#include "mm.h"

cowvm_t *cowvm_create(const struct cowvm_config *cfg)
{
	struct cowvm_config def = { 0 };
	if (!cfg)
		cfg = &def;
	uint64_t bytes = cfg->phys_bytes ? cfg->phys_bytes : 64ull << 20;
	if (!PAGE_ALIGNED(bytes) || bytes < (64ull << 10) || bytes > (1ull << 40) ||
	    cfg->nr_cpus > MAX_CPUS ||
	    (cfg->flags & ~(COWVM_CONFIG_NO_POISON | COWVM_CONFIG_PREFAULT | COWVM_CONFIG_NO_SOFT_DIRTY))) {
		errno = EINVAL;
		return NULL;
	}
	unsigned nr_cpus = cfg->nr_cpus;
	if (!nr_cpus) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nr_cpus = n < 1 ? 1 : n > MAX_CPUS ? MAX_CPUS : (unsigned)n;
	}
	struct cowvm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		errno = ENOMEM;
		return NULL;
	}
	int err = page_alloc_init(vm, bytes, cfg->flags, nr_cpus);
	if (err) {
		free(vm);
		errno = -err;
		return NULL;
	}
	spin_lock_init(&vm->lru_lock);
	INIT_LIST_HEAD(&vm->lru_active_anon);
	INIT_LIST_HEAD(&vm->lru_inactive_anon);
	INIT_LIST_HEAD(&vm->lru_unevictable);
	pthread_mutex_init(&vm->task_lock, NULL);
	INIT_LIST_HEAD(&vm->tasks);
	INIT_LIST_HEAD(&vm->mms);
	pthread_mutex_init(&vm->pin_lock, NULL);
	INIT_LIST_HEAD(&vm->pins);
	tlb_init_shootdown();
	return vm;
}

void cowvm_destroy(cowvm_t *vm)
{
	if (!vm)
		return;
	while (!list_empty(&vm->pins))
		cowvm_unpin(list_first_entry(&vm->pins, struct cowvm_pin, node));
	while (!list_empty(&vm->tasks))
		cowvm_exit(list_first_entry(&vm->tasks, struct task_struct, task_node));
	pthread_mutex_destroy(&vm->pin_lock);
	pthread_mutex_destroy(&vm->task_lock);
	page_alloc_exit(vm);
	free(vm);
}
