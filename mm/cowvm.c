/*
 * cowvm.c - the machine: create it (physical memory, zero page, LRU, counters), destroy it
 * (every task left exits first, so all frames come back), and say what it costs its host.
 */
#include <stdio.h>
#include <unistd.h>

#include "swap.h"

cowvm_t *cowvm_create(const struct cowvm_config *cfg)
{
	struct cowvm_config def = { 0 };
	if (!cfg)
		cfg = &def;
	uint64_t bytes = cfg->phys_bytes ? cfg->phys_bytes : 64ull << 20;
	if (!PAGE_ALIGNED(bytes) || bytes < (64ull << 10) || bytes > (1ull << 40) ||
	    cfg->nr_cpus > MAX_CPUS ||
	    (cfg->flags & ~(COWVM_CONFIG_NO_POISON | COWVM_CONFIG_PREFAULT | COWVM_CONFIG_NO_SOFT_DIRTY |
			    COWVM_CONFIG_HOST_4K | COWVM_CONFIG_NO_MEMCG | COWVM_CONFIG_THP_FLAGS)) ||
	    !thp_config_valid(cfg->flags)) {
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
	if (cfg->swap_path && ((err = swap_init(vm, cfg->swap_path, cfg->swap_bytes)) ||
			       (err = kswapd_run(vm)))) {
		swap_exit(vm);
		page_alloc_exit(vm);
		free(vm);
		errno = -err;
		return NULL;
	}
	pthread_mutex_init(&vm->task_lock, NULL);
	INIT_LIST_HEAD(&vm->tasks);
	INIT_LIST_HEAD(&vm->mms);
	pthread_mutex_init(&vm->pin_lock, NULL);
	INIT_LIST_HEAD(&vm->pins);
	if (mem_cgroup_init(vm)) {
		page_alloc_exit(vm);
		free(vm);
		errno = ENOMEM;
		return NULL;
	}
	tlb_init_shootdown();
	return vm;
}

void cowvm_destroy(cowvm_t *vm)
{
	if (!vm)
		return;
	kswapd_stop(vm);
	while (!list_empty(&vm->pins))
		cowvm_unpin(list_first_entry(&vm->pins, struct cowvm_pin, node));
	while (!list_empty(&vm->tasks))
		cowvm_exit(list_first_entry(&vm->tasks, struct task_struct, task_node));
	pthread_mutex_destroy(&vm->pin_lock);
	pthread_mutex_destroy(&vm->task_lock);
	swap_exit(vm); /* frees the swap cache's pages and slots, which uncharge their groups: before the memcgs go */
	mem_cgroup_exit_vm(vm);
	page_alloc_exit(vm);
	free(vm);
}

/*
 * Resident and huge-page bytes of the host mappings that lie within [start, start + len), from
 * /proc/self/smaps (the physical memory may be several VMAs once parts of it were advised
 * differently).  Zeros when smaps cannot be read.
 */
static void host_backing_of(uint64_t start, uint64_t len, uint64_t *rss, uint64_t *huge)
{
	*rss = *huge = 0;
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return;
	char line[512];
	bool inside = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, kb;
		if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			inside = lo >= start && hi <= start + len;
			continue;
		}
		if (!inside)
			continue;
		if (sscanf(line, "Rss: %llu kB", &kb) == 1)
			*rss += kb << 10;
		else if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
			*huge += kb << 10;
	}
	fclose(f);
}

int cowvm_machine_info(cowvm_t *vm, struct cowvm_machine_info *out)
{
	if (!vm || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->phys_bytes = vm->nr_frames << PAGE_SHIFT;
	out->nr_frames = vm->nr_frames;
	out->struct_page_bytes = sizeof(struct page);
	out->mem_map_bytes = vm->nr_frames * sizeof(struct page);
	out->host_backing = vm->host_backing;
	host_backing_of((uint64_t)(uintptr_t)vm->phys, out->phys_bytes, &out->host_rss_bytes,
			&out->host_huge_bytes);
	if (vm->host_backing == COWVM_BACKING_HUGETLB) /* hugetlbfs pages are not "AnonHuge" */
		out->host_huge_bytes = out->host_rss_bytes = out->phys_bytes;
	return 0;
}
