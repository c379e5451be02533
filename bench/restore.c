/*
 * restore.c - the snapshot fuzzer's loop (issue 14), both sides in one file because they are
 * one experiment: a guest with 1 GiB mapped and fully touched (128 MiB in the quick run),
 * each iteration writes K random pages then goes back.
 *
 *   cowvm:  cowvm_snapshot once; per iteration K cowvm_store64 (each a COW fault) and
 *           cowvm_restore.  Figures: the whole iteration, the restore alone, the restore per
 *           dirty page (against memcpy of K pages, the floor of a copy-based restore), and the
 *           restore at this size over the restore of a 16 MiB guest (flat = no term that grows
 *           with the guest).
 *   host:   what fork-server fuzzers do: a real process of the same size forks, the child
 *           writes the K pages and exits, the parent waits.  Only the whole iteration has a
 *           host figure.
 *
 * Pages are drawn from a xorshift sequence, distinct within an iteration.  The first iteration
 * of each run is checked: the dirty list has the K pages, the restore empties it, each write
 * faulted once.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define SMALL_GUEST (16 * MIB)

static uint64_t guest_bytes(const struct bench_env *env)
{
	return env->quick ? 128 * MIB : 1 * GIB;
}

static int iterations(uint64_t k)
{
	return k >= 256 ? 300 : 3000;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* k distinct page numbers below npages. */
static void pick_pages(uint64_t *seed, uint64_t npages, uint64_t k, uint64_t *out)
{
	for (uint64_t i = 0; i < k; i++) {
		uint64_t p;
		bool again;
		do {
			p = xorshift(seed) % npages;
			again = false;
			for (uint64_t j = 0; j < i; j++)
				again |= out[j] == p;
		} while (again);
		out[i] = p;
	}
}

struct restore_figures {
	double iter_ns, restore_ns;
};

/* The loop on a fresh guest of `bytes` in vm. */
static void restore_loop(cowvm_t *vm, uint64_t bytes, uint64_t k, int iters, struct sample *out,
			 struct restore_figures *fig)
{
	cowvm_task_t *t = cowvm_spawn(vm);
	if (!t)
		die("cowvm_spawn failed");
	int64_t base = cowvm_mmap(t, 0, bytes, COWVM_PROT_READ | COWVM_PROT_WRITE,
				  COWVM_MAP_PRIVATE | COWVM_MAP_ANONYMOUS | COWVM_MAP_POPULATE);
	if (base < 0)
		die("cowvm_mmap of %llu MiB: %lld", (unsigned long long)(bytes / MIB), (long long)base);
	uint64_t npages = bytes / BENCH_PAGE;
	cowvm_snapshot_t *snap = cowvm_snapshot(t);
	if (!snap)
		die("cowvm_snapshot failed");
	uint64_t *pages = malloc(k * sizeof(*pages)), seed = 0x9e3779b97f4a7c15ull ^ k ^ bytes;
	if (!pages)
		die("out of memory");
	uint64_t write_ns = 0, restore_ns = 0;
	for (int it = 0; it < iters; it++) {
		pick_pages(&seed, npages, k, pages);
		struct cowvm_task_stats before;
		if (it == 0)
			cowvm_task_stats(t, &before);
		uint64_t t0 = now_ns();
		for (uint64_t i = 0; i < k; i++)
			cowvm_store64(t, (uint64_t)base + pages[i] * BENCH_PAGE, (uint64_t)it);
		uint64_t t1 = now_ns();
		if (it == 0) {
			struct cowvm_task_stats after;
			cowvm_task_stats(t, &after);
			bench_check(out, "restore loop: one fault per written page", after.min_flt - before.min_flt, k);
			bench_check(out, "restore loop: dirty pages before restore",
				    (uint64_t)cowvm_dirty_pages(t, snap, NULL, 0), k);
		}
		uint64_t t2 = now_ns();
		int err = cowvm_restore(t, snap);
		uint64_t t3 = now_ns();
		if (err)
			die("cowvm_restore: %d", err);
		if (it == 0)
			bench_check(out, "restore loop: dirty pages after restore",
				    (uint64_t)cowvm_dirty_pages(t, snap, NULL, 0), 0);
		write_ns += t1 - t0;
		restore_ns += t3 - t2;
	}
	fig->restore_ns = (double)restore_ns / iters;
	fig->iter_ns = (double)(write_ns + restore_ns) / iters;
	free(pages);
	cowvm_snapshot_free(snap);
	cowvm_exit(t);
}

void vm_restore(const struct bench_env *env, uint64_t k, struct sample *out)
{
	struct restore_figures big, small;
	restore_loop(env->vm, guest_bytes(env), k, iterations(k), out, &big);
	restore_loop(env->vm, SMALL_GUEST, k, iterations(k), out, &small);
	out->v[0] = big.iter_ns / 1e3;
	out->v[1] = big.restore_ns / 1e3;
	out->v[2] = big.restore_ns / (double)k;
	out->v[3] = big.restore_ns / small.restore_ns;
}

/* The host: fork + child writes k pages + exit + wait, on a touched process of the same size. */
void host_restore(const struct bench_env *env, uint64_t k, struct sample *out)
{
	uint64_t bytes = guest_bytes(env), npages = bytes / BENCH_PAGE;
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap of %llu MiB failed", (unsigned long long)(bytes / MIB));
	for (uint64_t i = 0; i < npages; i++)
		p[i * BENCH_PAGE] = 1;
	uint64_t *pages = malloc(k * sizeof(*pages)), seed = 0x9e3779b97f4a7c15ull ^ k ^ bytes;
	if (!pages)
		die("out of memory");
	int iters = 20;
	uint64_t total = 0;
	for (int it = 0; it < iters; it++) {
		pick_pages(&seed, npages, k, pages);
		uint64_t t0 = now_ns();
		pid_t pid = fork();
		if (pid < 0)
			die("fork failed");
		if (pid == 0) {
			for (uint64_t i = 0; i < k; i++)
				*(volatile uint64_t *)(p + pages[i] * BENCH_PAGE) = (uint64_t)it;
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
			die("the fork-server child failed");
		total += now_ns() - t0;
	}
	out->v[0] = (double)total / iters / 1e3;
	out->v[1] = out->v[2] = out->v[3] = NAN;
	free(pages);
	munmap(p, bytes);
}
