/*
 * testutil.c - the per-test machine, the task registry, and the helpers of testutil.h.
 *
 * The registry holds every task a test made through tu_spawn/tu_fork/tu_clone_thread, in
 * creation order; tu_teardown exits them newest first (threads and children before the tasks
 * that made them), then checks the machine and the free-frame count.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TU_MAX_TASKS 1024

cowvm_t *tu_vm;
uint64_t tu_free_after_create;

static uint64_t tu_page_tables_after_create;
static cowvm_task_t *tu_tasks[TU_MAX_TASKS];
static int tu_nr_tasks;
static uint64_t tu_zero_pfn = UINT64_MAX;

/* ---- fixture ------------------------------------------------------------------------------- */

static char tu_swap_dir[64];
static char tu_swap_path[96];

static void tu_setup_config(struct cowvm_config cfg)
{
	uint64_t phys_bytes = cfg.phys_bytes;
	struct cowvm_vmstat vs;

	tu_nr_tasks = 0;
	tu_zero_pfn = UINT64_MAX;
	tu_vm = cowvm_create(&cfg);
	TU_ASSERT(tu_vm != NULL, "cowvm_create(%" PRIu64 " bytes) failed: %s", phys_bytes,
		  strerror(errno));
	TU_ASSERT(cowvm_vmstat(tu_vm, &vs) == 0, "cowvm_vmstat after create failed");
	tu_free_after_create = vs.nr_free_pages;
	tu_page_tables_after_create = vs.nr_page_table_pages;
	TU_ASSERT(vs.nr_free_pages > 0 && vs.nr_free_pages < vs.nr_total_pages,
		  "a new machine has %" PRIu64 " free of %" PRIu64 " frames", vs.nr_free_pages,
		  vs.nr_total_pages);
}

void tu_setup_phys(uint64_t phys_bytes)
{
	struct cowvm_config cfg = { .phys_bytes = phys_bytes, .flags = 0, .nr_cpus = 0 };
	tu_setup_config(cfg);
}

void tu_setup_swap(uint64_t phys_bytes, uint64_t swap_bytes)
{
	strcpy(tu_swap_dir, "/tmp/cowvm-test-swap-XXXXXX");
	TU_ASSERT(mkdtemp(tu_swap_dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(tu_swap_path, sizeof tu_swap_path, "%s/swap", tu_swap_dir);
	struct cowvm_config cfg = { .phys_bytes = phys_bytes, .swap_path = tu_swap_path,
				    .swap_bytes = swap_bytes };
	tu_setup_config(cfg);
}

const char *tu_swap_file(void)
{
	return tu_swap_dir[0] ? tu_swap_path : NULL;
}

void tu_setup(void)
{
	tu_setup_phys(16ull << 20);
}

/* A fixture failure.  Criterion: abort the test process (see testutil.h for why not an
 * assertion).  cmocka: the test runs in the runner's process, so the machine is dropped first
 * (the next test makes its own), then fail_msg ends the teardown with a failure. */
static void tu_fatal(const char *what)
{
#ifdef TU_CMOCKA
	cowvm_t *vm = tu_vm;
	tu_vm = NULL;
	tu_nr_tasks = 0;
	cowvm_destroy(vm);
	fail_msg("tu_teardown: %s", what);
#else
	fprintf(stderr, "tu_teardown: %s\n", what);
	fflush(stderr);
	abort();
#endif
}

void tu_teardown(void)
{
	struct cowvm_vmstat vs;
	char why[512] = "";
	char msg[1024];
	int rc;

	if (tu_vm == NULL)
		return;
	cowvm_fail_alloc(tu_vm, COWVM_FAIL_OFF, 0);
	cowvm_set_tracer(tu_vm, NULL, NULL);
	rc = tu_exit_all();
	if (rc != 0) {
		snprintf(msg, sizeof msg, "cowvm_exit of a task left by the test returned %d", rc);
		tu_fatal(msg);
	}
	rc = cowvm_check(tu_vm, why, sizeof why);
	if (rc != 0) {
		snprintf(msg, sizeof msg, "cowvm_check after every task exited: %d: %s", rc, why);
		tu_fatal(msg);
	}
	if (cowvm_vmstat(tu_vm, &vs) != 0)
		tu_fatal("cowvm_vmstat failed");
	if (vs.nr_free_pages != tu_free_after_create) {
		snprintf(msg, sizeof msg,
			 "leak: %" PRIu64 " frames free after every task exited, %" PRIu64
			 " right after create (%" PRId64 " lost)",
			 vs.nr_free_pages, tu_free_after_create,
			 (int64_t)(tu_free_after_create - vs.nr_free_pages));
		tu_fatal(msg);
	}
	if (vs.nr_anon_pages || vs.nr_shmem || vs.nr_zero_page_mappings ||
	    vs.nr_page_table_pages != tu_page_tables_after_create) {
		snprintf(msg, sizeof msg,
			 "after every task exited: nr_anon_pages %" PRIu64 ", nr_shmem %" PRIu64
			 ", nr_zero_page_mappings %" PRIu64 ", nr_page_table_pages %" PRIu64
			 " (%" PRIu64 " after create)",
			 vs.nr_anon_pages, vs.nr_shmem, vs.nr_zero_page_mappings,
			 vs.nr_page_table_pages, tu_page_tables_after_create);
		tu_fatal(msg);
	}
	struct cowvm_swap_info si;
	if (cowvm_swap_info(tu_vm, &si) != 0)
		tu_fatal("cowvm_swap_info failed");
	if (si.used_slots || si.swap_cache_pages || vs.nr_swapcached) {
		snprintf(msg, sizeof msg, "swap leak: %" PRIu64 " slots used, %" PRIu64
			 " swap-cache pages after every task exited", si.used_slots, si.swap_cache_pages);
		tu_fatal(msg);
	}
	cowvm_destroy(tu_vm);
	tu_vm = NULL;
	if (tu_swap_dir[0]) {
		if (access(tu_swap_path, F_OK) == 0)
			tu_fatal("cowvm_destroy left the swap file it created");
		rmdir(tu_swap_dir);
		tu_swap_dir[0] = 0;
	}
}

#ifdef TU_CMOCKA
int tu_cm_setup(void **state)
{
	(void)state;
	tu_setup();
	return 0;
}

int tu_cm_teardown(void **state)
{
	(void)state;
	tu_teardown();
	return 0;
}
#endif

/* ---- tasks --------------------------------------------------------------------------------- */

static void tu_register(cowvm_task_t *t)
{
	if (t == NULL)
		return;
	if (tu_nr_tasks == TU_MAX_TASKS)
		tu_fatal("too many tasks for the test registry");
	tu_tasks[tu_nr_tasks++] = t;
}

static int tu_unregister(cowvm_task_t *t)
{
	for (int i = tu_nr_tasks - 1; i >= 0; i--) {
		if (tu_tasks[i] == t) {
			memmove(&tu_tasks[i], &tu_tasks[i + 1],
				(size_t)(tu_nr_tasks - i - 1) * sizeof tu_tasks[0]);
			tu_nr_tasks--;
			return 0;
		}
	}
	return -1;
}

cowvm_task_t *tu_try_spawn(void)
{
	cowvm_task_t *t = cowvm_spawn(tu_vm);
	tu_register(t);
	return t;
}

cowvm_task_t *tu_try_fork(cowvm_task_t *parent)
{
	cowvm_task_t *t = cowvm_fork(parent);
	tu_register(t);
	return t;
}

cowvm_task_t *tu_try_clone_thread(cowvm_task_t *t)
{
	cowvm_task_t *n = cowvm_clone_thread(t);
	tu_register(n);
	return n;
}

cowvm_task_t *tu_spawn_at(const char *file, int line)
{
	cowvm_task_t *t = tu_try_spawn();
	TU_ASSERT(t != NULL, "%s:%d: cowvm_spawn failed: %s", file, line, strerror(errno));
	return t;
}

cowvm_task_t *tu_fork_at(const char *file, int line, cowvm_task_t *parent)
{
	cowvm_task_t *t = tu_try_fork(parent);
	TU_ASSERT(t != NULL, "%s:%d: cowvm_fork failed: %s", file, line, strerror(errno));
	return t;
}

cowvm_task_t *tu_clone_thread_at(const char *file, int line, cowvm_task_t *t)
{
	cowvm_task_t *n = tu_try_clone_thread(t);
	TU_ASSERT(n != NULL, "%s:%d: cowvm_clone_thread failed: %s", file, line, strerror(errno));
	return n;
}

void tu_exit_at(const char *file, int line, cowvm_task_t *t)
{
	TU_ASSERT(tu_unregister(t) == 0, "%s:%d: tu_exit of a task the test did not make", file,
		  line);
	int rc = cowvm_exit(t);
	TU_ASSERT(rc == 0, "%s:%d: cowvm_exit returned %d", file, line, rc);
}

int tu_exit_all(void)
{
	int first = 0;
	while (tu_nr_tasks > 0) {
		cowvm_task_t *t = tu_tasks[--tu_nr_tasks];
		int rc = cowvm_exit(t);
		if (rc != 0 && first == 0)
			first = rc;
	}
	return first;
}

/* ---- assertions ---------------------------------------------------------------------------- */

void tu_check_at(const char *file, int line)
{
	char why[512] = "";
	int rc = cowvm_check(tu_vm, why, sizeof why);
	TU_ASSERT(rc == 0, "%s:%d: cowvm_check returned %d: %s", file, line, rc, why);
}

/* ---- memory helpers ------------------------------------------------------------------------ */

uint64_t tu_map_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint64_t npages,
		   int prot, int flags)
{
	int64_t a = cowvm_mmap(t, addr, npages * PG, prot, flags);
	TU_ASSERT(a > 0, "%s:%d: cowvm_mmap(%#" PRIx64 ", %" PRIu64 " pages, prot %#x, flags %#x)"
		  " returned %" PRId64, file, line, addr, npages, prot, flags, a);
	TU_ASSERT((uint64_t)a % PG == 0, "%s:%d: cowvm_mmap returned unaligned %#" PRIx64, file,
		  line, (uint64_t)a);
	if (flags & MAP_FIXED)
		TU_ASSERT((uint64_t)a == addr, "%s:%d: MAP_FIXED at %#" PRIx64 " returned %#" PRIx64,
			  file, line, addr, (uint64_t)a);
	return (uint64_t)a;
}

void tu_write_byte_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint8_t v)
{
	int rc = cowvm_write(t, addr, &v, 1);
	TU_ASSERT(rc == 0, "%s:%d: cowvm_write(%#" PRIx64 ") returned %d", file, line, addr, rc);
}

uint8_t tu_read_byte_at(const char *file, int line, cowvm_task_t *t, uint64_t addr)
{
	uint8_t v = 0xEE;
	int rc = cowvm_read(t, addr, &v, 1);
	TU_ASSERT(rc == 0, "%s:%d: cowvm_read(%#" PRIx64 ") returned %d", file, line, addr, rc);
	return v;
}

void pattern_fill(void *buf, size_t len, uint8_t seed)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(seed, i);
}

void tu_fill_page_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint8_t seed)
{
	uint8_t buf[COWVM_PAGE_SIZE];
	pattern_fill(buf, sizeof buf, seed);
	int rc = cowvm_write(t, addr, buf, sizeof buf);
	TU_ASSERT(rc == 0, "%s:%d: filling the page at %#" PRIx64 " returned %d", file, line, addr,
		  rc);
}

void tu_expect_page_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint8_t seed,
		       size_t skip)
{
	uint8_t buf[COWVM_PAGE_SIZE];
	memset(buf, 0xEE, sizeof buf);
	int rc = cowvm_read(t, addr, buf, sizeof buf);
	TU_ASSERT(rc == 0, "%s:%d: reading the page at %#" PRIx64 " returned %d", file, line, addr,
		  rc);
	for (size_t i = skip; i < sizeof buf; i++)
		TU_ASSERT(buf[i] == pattern_byte(seed, i),
			  "%s:%d: page at %#" PRIx64 " byte %zu is %#x, pattern %u has %#x", file,
			  line, addr, i, buf[i], seed, pattern_byte(seed, i));
}

void tu_expect_zeros_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, size_t len)
{
	uint8_t buf[COWVM_PAGE_SIZE];
	while (len > 0) {
		size_t n = len < sizeof buf ? len : sizeof buf;
		memset(buf, 0xEE, n);
		int rc = cowvm_read(t, addr, buf, n);
		TU_ASSERT(rc == 0, "%s:%d: cowvm_read(%#" PRIx64 ", %zu) returned %d", file, line,
			  addr, n, rc);
		for (size_t i = 0; i < n; i++)
			TU_ASSERT(buf[i] == 0, "%s:%d: byte at %#" PRIx64 " is %#x, expected 0", file,
				  line, addr + i, buf[i]);
		addr += n;
		len -= n;
	}
}

/* ---- counters and views -------------------------------------------------------------------- */

struct cowvm_task_stats tu_stats_at(const char *file, int line, cowvm_task_t *t)
{
	struct cowvm_task_stats s;
	memset(&s, 0xA5, sizeof s);
	int rc = cowvm_task_stats(t, &s);
	TU_ASSERT(rc == 0, "%s:%d: cowvm_task_stats returned %d", file, line, rc);
	return s;
}

struct cowvm_vmstat tu_vmstat_at(const char *file, int line)
{
	struct cowvm_vmstat v;
	memset(&v, 0xA5, sizeof v);
	int rc = cowvm_vmstat(tu_vm, &v);
	TU_ASSERT(rc == 0, "%s:%d: cowvm_vmstat returned %d", file, line, rc);
	return v;
}

struct cowvm_smaps tu_smaps_at(const char *file, int line, cowvm_task_t *t, uint64_t addr,
			       uint64_t len)
{
	struct cowvm_smaps s;
	memset(&s, 0xA5, sizeof s);
	int rc = cowvm_smaps(t, addr, len, &s);
	TU_ASSERT(rc == 0, "%s:%d: cowvm_smaps returned %d", file, line, rc);
	return s;
}

struct cowvm_frame_info tu_frame_at(const char *file, int line, uint64_t pfn)
{
	struct cowvm_frame_info f;
	memset(&f, 0xA5, sizeof f);
	int rc = cowvm_frame_info(tu_vm, pfn, &f);
	TU_ASSERT(rc == 0, "%s:%d: cowvm_frame_info(%#" PRIx64 ") returned %d", file, line, pfn,
		  rc);
	TU_ASSERT(f.pfn == pfn, "%s:%d: cowvm_frame_info(%#" PRIx64 ") says pfn %#" PRIx64, file,
		  line, pfn, f.pfn);
	return f;
}

uint64_t zero_pfn(void)
{
	if (tu_zero_pfn != UINT64_MAX)
		return tu_zero_pfn;
	struct cowvm_vmstat v = vmstat();
	uint64_t found = UINT64_MAX;
	int count = 0;
	for (uint64_t pfn = 0; pfn < v.nr_total_pages; pfn++) {
		struct cowvm_frame_info f;
		if (cowvm_frame_info(tu_vm, pfn, &f) != 0)
			continue;
		if (f.state == COWVM_FRAME_ZERO) {
			found = pfn;
			count++;
		}
	}
	TU_ASSERT(count == 1, "the machine has %d frames in state COWVM_FRAME_ZERO, expected 1",
		  count);
	tu_zero_pfn = found;
	return found;
}

struct vma_find {
	uint64_t addr;
	int found;
	struct cowvm_vma_info info;
};

static int tu_find_vma_fn(void *arg, const struct cowvm_vma_info *vma)
{
	struct vma_find *f = arg;
	if (vma->start <= f->addr && f->addr < vma->end) {
		f->found = 1;
		f->info = *vma;
		return 1;
	}
	return 0;
}

int tu_has_vma_at(cowvm_task_t *t, uint64_t addr)
{
	struct vma_find f = { .addr = addr };
	cowvm_for_each_vma(t, tu_find_vma_fn, &f);
	return f.found;
}

struct cowvm_vma_info tu_vma_at(const char *file, int line, cowvm_task_t *t, uint64_t addr)
{
	struct vma_find f = { .addr = addr };
	int rc = cowvm_for_each_vma(t, tu_find_vma_fn, &f);
	TU_ASSERT(rc >= 0, "%s:%d: cowvm_for_each_vma returned %d", file, line, rc);
	TU_ASSERT(f.found, "%s:%d: no VMA contains %#" PRIx64, file, line, addr);
	return f.info;
}

struct vma_list {
	struct cowvm_vma_info *out;
	int max, n;
};

static int tu_list_fn(void *arg, const struct cowvm_vma_info *vma)
{
	struct vma_list *l = arg;
	if (l->n < l->max)
		l->out[l->n] = *vma;
	l->n++;
	return 0;
}

int tu_list_vmas(cowvm_task_t *t, struct cowvm_vma_info *out, int max)
{
	struct vma_list l = { .out = out, .max = max, .n = 0 };
	int rc = cowvm_for_each_vma(t, tu_list_fn, &l);
	TU_ASSERT(rc >= 0, "cowvm_for_each_vma returned %d", rc);
	return l.n;
}

/* ---- snapshots ----------------------------------------------------------------------------- */

struct tu_state tu_state_at(const char *file, int line, cowvm_task_t *t)
{
	struct cowvm_task_stats s = tu_stats_at(file, line, t);
	struct cowvm_vmstat v = tu_vmstat_at(file, line);
	struct tu_state st = {
		.nr_vmas = s.nr_vmas,
		.total_vm = s.total_vm,
		.rss_anon = s.rss_anon,
		.rss_shmem = s.rss_shmem,
		.min_flt = s.min_flt,
		.nr_free_pages = v.nr_free_pages,
		.nr_anon_pages = v.nr_anon_pages,
		.nr_shmem = v.nr_shmem,
		.nr_zero_page_mappings = v.nr_zero_page_mappings,
	};
	return st;
}

#define TU_SAME(field)                                                                         \
	TU_ASSERT(now.field == before.field,                                                   \
		  "%s:%d: %s: " #field " changed from %" PRIu64 " to %" PRIu64, file, line, why,  \
		  before.field, now.field)

void tu_expect_state_at(const char *file, int line, cowvm_task_t *t, struct tu_state before,
			const char *why)
{
	struct tu_state now = tu_state_at(file, line, t);
	TU_SAME(nr_vmas);
	TU_SAME(total_vm);
	TU_SAME(rss_anon);
	TU_SAME(rss_shmem);
	TU_SAME(min_flt);
	TU_SAME(nr_free_pages);
	TU_SAME(nr_anon_pages);
	TU_SAME(nr_shmem);
	TU_SAME(nr_zero_page_mappings);
}
