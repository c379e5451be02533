/*
 * testutil.h - fixtures and helpers shared by the cowvm tests.
 *
 * Two frameworks use this file.  By default the suites are Criterion suites.  With -DTU_CMOCKA
 * (and -lcmocka) it serves cmocka instead: the thread suite is a cmocka suite because Criterion
 * 2.4 cannot start under ThreadSanitizer (Criterion issue #274).  The helpers are the same in
 * both; their failures go through TU_ASSERT, which is cr_assert under Criterion and fail_msg
 * under cmocka (both end the test on the test's main thread; never call them from another
 * host thread).
 *
 * One machine per test.  A Criterion suite is declared as
 *
 *	TestSuite(name, .init = tu_setup, .fini = tu_teardown);
 *
 * and a cmocka test as cmocka_unit_test_setup_teardown(name, tu_cm_setup, tu_cm_teardown).
 *
 * tu_setup makes a 16 MiB machine (poisoning on) and records nr_free_pages right after
 * cowvm_create.  tu_teardown exits every task the test left, then requires
 *   - cowvm_check() == 0,
 *   - nr_free_pages back to its value right after create (no frame leaked),
 *   - no anon, shmem or zero-page mapping left,
 * and fails the test otherwise.  Under Criterion it aborts the test process (Criterion 2.4
 * reports an assertion that fails in .fini but still counts the test as passed; an abort()
 * there is reported as "crashed during its setup or teardown" and makes the runner exit
 * non-zero.  Verified with 2.4.1.)  Under cmocka it destroys the machine and fails with
 * fail_msg: cmocka 1.1.5 reports "Test teardown failed", counts the test as an error and the
 * run exits non-zero (verified).
 *
 * Tasks are made with tu_spawn / tu_fork / tu_clone_thread so that the fixture can find them;
 * a test that ends a task early uses tu_exit.
 *
 * Helpers that can fail are macros over functions taking the caller's file and line, so that a
 * failed assertion names the line of the test, not of this file.  Only include/cowvm.h is used.
 */
#ifndef COWVM_TESTUTIL_H
#define COWVM_TESTUTIL_H

#ifdef TU_CMOCKA
/* cmocka.h needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* TU_ASSERT(cond, fmt, ...): fail the test with the message unless cond holds.  The message
 * (a string literal format) is required. */
#define TU_ASSERT(cond, ...)                                                                   \
	do {                                                                                   \
		if (!(cond))                                                                   \
			fail_msg(__VA_ARGS__);                                                 \
	} while (0)
#else
#include <criterion/criterion.h>
#define TU_ASSERT(cond, ...) cr_assert(cond, __VA_ARGS__)
#endif
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cowvm.h"

#define PG ((uint64_t)COWVM_PAGE_SIZE)

#define PROT_RW (PROT_READ | PROT_WRITE)
#define MAP_PRIV_ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define MAP_SHARED_ANON (MAP_SHARED | MAP_ANONYMOUS)

/* VM_* bits of struct cowvm_vma_info.flags, as Linux's include/linux/mm.h */
#define TU_VM_READ 0x1ul
#define TU_VM_WRITE 0x2ul
#define TU_VM_SHARED 0x8ul
#define TU_VM_DONTCOPY 0x20000ul
#define TU_VM_WIPEONFORK 0x2000000ul

/* x86-64 PTE bits (cowvm_pte) */
#define TU_PTE_PRESENT 0x1ull
#define TU_PTE_RW 0x2ull
#define TU_PTE_USER 0x4ull
#define TU_PTE_PFN(pte) (((pte) >> 12) & ((1ull << 40) - 1))

/* A fixed, empty, 2 MiB-aligned place for tests that draw their own layout.  1 GiB is far from
 * where a top-down mmap puts its first mappings. */
#define TU_BASE 0x40000000ull

extern cowvm_t *tu_vm;
extern uint64_t tu_free_after_create;

void tu_setup(void);                      /* .init: 16 MiB machine, flags 0 */
void tu_setup_phys(uint64_t phys_bytes);  /* for suites that want another size */
/* A machine with a swap file that cowvm creates in a new directory under /tmp (and must unlink
 * at destroy); teardown also requires every swap slot and swap-cache page to be gone. */
void tu_setup_swap(uint64_t phys_bytes, uint64_t swap_bytes);
const char *tu_swap_file(void);
void tu_teardown(void);                   /* .fini: exit all, check, leak check */
#ifdef TU_CMOCKA
/* The same as cmocka fixtures (state unused): cmocka_unit_test_setup_teardown(name,
 * tu_cm_setup, tu_cm_teardown).  Both return 0 or end with a cmocka failure. */
int tu_cm_setup(void **state);
int tu_cm_teardown(void **state);
#endif

/* ---- tasks ---------------------------------------------------------------------------------- */
cowvm_task_t *tu_try_spawn(void);                     /* NULL + errno allowed */
cowvm_task_t *tu_try_fork(cowvm_task_t *parent);      /* NULL + errno allowed */
cowvm_task_t *tu_try_clone_thread(cowvm_task_t *t);   /* NULL + errno allowed */
#define tu_spawn() tu_spawn_at(__FILE__, __LINE__)
#define tu_fork(p) tu_fork_at(__FILE__, __LINE__, (p))
#define tu_clone_thread(t) tu_clone_thread_at(__FILE__, __LINE__, (t))
#define tu_exit(t) tu_exit_at(__FILE__, __LINE__, (t))
cowvm_task_t *tu_spawn_at(const char *file, int line);
cowvm_task_t *tu_fork_at(const char *file, int line, cowvm_task_t *parent);
cowvm_task_t *tu_clone_thread_at(const char *file, int line, cowvm_task_t *t);
void tu_exit_at(const char *file, int line, cowvm_task_t *t);
int tu_exit_all(void); /* exits every registered task, newest first; 0 or the first error */

/* ---- assertions ---------------------------------------------------------------------------- */

/* The whole-state checker after a step: cowvm_check() == 0, with its sentence on failure. */
#define CHECK() tu_check_at(__FILE__, __LINE__)
void tu_check_at(const char *file, int line);

/* Integer equality that prints both sides. */
#define EQ(got, want)                                                                          \
	do {                                                                                   \
		long long g_ = (long long)(got), w_ = (long long)(want);                       \
		TU_ASSERT(g_ == w_, "%s is %lld (%#llx), expected %s = %lld (%#llx)", #got,    \
			  g_, (unsigned long long)g_, #want, w_, (unsigned long long)w_);      \
	} while (0)
#define NE(got, unwanted)                                                                      \
	do {                                                                                   \
		long long g_ = (long long)(got), w_ = (long long)(unwanted);                   \
		TU_ASSERT(g_ != w_, "%s is %lld (%#llx), must differ from %s", #got, g_,       \
			  (unsigned long long)g_, #unwanted);                                  \
	} while (0)
/* The same with a sentence saying which case of a table failed. */
#define EQ_WHY(got, want, why)                                                                 \
	do {                                                                                   \
		long long g_ = (long long)(got), w_ = (long long)(want);                       \
		TU_ASSERT(g_ == w_, "%s: %s is %lld (%#llx), expected %lld (%#llx)", (why),    \
			  #got, g_, (unsigned long long)g_, w_, (unsigned long long)w_);       \
	} while (0)

/* ---- memory helpers (all assert success) ---------------------------------------------------- */
#define map_anon(t, npages, prot) tu_map_at(__FILE__, __LINE__, (t), 0, (npages), (prot), MAP_PRIV_ANON)
#define map_shared_anon(t, npages, prot)                                                       \
	tu_map_at(__FILE__, __LINE__, (t), 0, (npages), (prot), MAP_SHARED_ANON)
/* MAP_FIXED at addr; flags are MAP_PRIV_ANON or MAP_SHARED_ANON, plus extras */
#define map_fixed(t, addr, npages, prot, flags)                                                \
	tu_map_at(__FILE__, __LINE__, (t), (addr), (npages), (prot), (flags) | MAP_FIXED)
uint64_t tu_map_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint64_t npages,
		   int prot, int flags);

#define write_byte(t, addr, v) tu_write_byte_at(__FILE__, __LINE__, (t), (addr), (v))
#define read_byte(t, addr) tu_read_byte_at(__FILE__, __LINE__, (t), (addr))
void tu_write_byte_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint8_t v);
uint8_t tu_read_byte_at(const char *file, int line, cowvm_task_t *t, uint64_t addr);

/* The test pattern: byte i of a page filled with seed.  Different seeds differ at every byte. */
static inline uint8_t pattern_byte(uint8_t seed, size_t i)
{
	return (uint8_t)(seed + 1 + (i * 7) + (i >> 8));
}
void pattern_fill(void *buf, size_t len, uint8_t seed);

/* fill_page writes a whole page with the pattern; expect_page reads it back and compares; the
 * first `skip` bytes are not compared (a test that overwrote them checks them itself). */
#define fill_page(t, addr, seed) tu_fill_page_at(__FILE__, __LINE__, (t), (addr), (seed))
#define expect_page(t, addr, seed) tu_expect_page_at(__FILE__, __LINE__, (t), (addr), (seed), 0)
#define expect_page_after(t, addr, seed, skip)                                                 \
	tu_expect_page_at(__FILE__, __LINE__, (t), (addr), (seed), (skip))
#define expect_zeros(t, addr, len) tu_expect_zeros_at(__FILE__, __LINE__, (t), (addr), (len))
void tu_fill_page_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint8_t seed);
void tu_expect_page_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, uint8_t seed,
		       size_t skip);
void tu_expect_zeros_at(const char *file, int line, cowvm_task_t *t, uint64_t addr, size_t len);

/* ---- counters and views (assert the call succeeds) ----------------------------------------- */
#define stats(t) tu_stats_at(__FILE__, __LINE__, (t))
#define vmstat() tu_vmstat_at(__FILE__, __LINE__)
#define smaps(t, addr, len) tu_smaps_at(__FILE__, __LINE__, (t), (addr), (len))
#define frame(pfn) tu_frame_at(__FILE__, __LINE__, (pfn))
struct cowvm_task_stats tu_stats_at(const char *file, int line, cowvm_task_t *t);
struct cowvm_vmstat tu_vmstat_at(const char *file, int line);
struct cowvm_smaps tu_smaps_at(const char *file, int line, cowvm_task_t *t, uint64_t addr,
			       uint64_t len);
struct cowvm_frame_info tu_frame_at(const char *file, int line, uint64_t pfn);

static inline uint64_t pagemap(cowvm_task_t *t, uint64_t addr)
{
	return cowvm_pagemap(t, addr);
}
static inline uint64_t pfn_of(cowvm_task_t *t, uint64_t addr)
{
	return cowvm_pagemap(t, addr) & COWVM_PM_PFN_MASK;
}
static inline int pm_present(cowvm_task_t *t, uint64_t addr)
{
	return (cowvm_pagemap(t, addr) & COWVM_PM_PRESENT) != 0;
}
static inline int pm_exclusive(cowvm_task_t *t, uint64_t addr)
{
	return (cowvm_pagemap(t, addr) & COWVM_PM_MMAP_EXCLUSIVE) != 0;
}
static inline int pm_file(cowvm_task_t *t, uint64_t addr)
{
	return (cowvm_pagemap(t, addr) & COWVM_PM_FILE) != 0;
}
static inline int pte_writable(cowvm_task_t *t, uint64_t addr)
{
	uint64_t pte = cowvm_pte(t, addr);
	return (pte & TU_PTE_PRESENT) && (pte & TU_PTE_RW);
}

/* The zero page's frame number, found by scanning the frames for COWVM_FRAME_ZERO (so that the
 * tests learn it independently of any mapping). */
uint64_t zero_pfn(void);

/* The VMA containing addr (asserts there is one). */
#define vma_at(t, addr) tu_vma_at(__FILE__, __LINE__, (t), (addr))
struct cowvm_vma_info tu_vma_at(const char *file, int line, cowvm_task_t *t, uint64_t addr);
int tu_has_vma_at(cowvm_task_t *t, uint64_t addr);

/* Collect up to `max` VMAs in iteration order; returns how many were seen. */
int tu_list_vmas(cowvm_task_t *t, struct cowvm_vma_info *out, int max);

/* ---- "nothing changed" snapshots for failed calls ------------------------------------------ */
struct tu_state {
	uint64_t nr_vmas, total_vm, rss_anon, rss_shmem, min_flt;
	uint64_t nr_free_pages, nr_anon_pages, nr_shmem, nr_zero_page_mappings;
};
#define state_of(t) tu_state_at(__FILE__, __LINE__, (t))
#define expect_state(t, before, why) tu_expect_state_at(__FILE__, __LINE__, (t), (before), (why))
struct tu_state tu_state_at(const char *file, int line, cowvm_task_t *t);
void tu_expect_state_at(const char *file, int line, cowvm_task_t *t, struct tu_state before,
			const char *why);

#endif /* COWVM_TESTUTIL_H */
