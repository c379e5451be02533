/*
 * cases.c - the benchmark's cases: one entry each, in the order they run within a round.
 *
 * An entry: name (for --case and --profile), flags (BENCH_QUICK: in the quick run too;
 * BENCH_BIG: needs gigabytes, full run only), its size in the full and the quick run (pages
 * unless the case says otherwise; a case with a floor takes pages), the host and cowvm
 * functions (NULL: no such side), and the figures it returns, in the order of out->v[]:
 *   { key, label, unit, floor, max x host, max x floor, max value, host note }
 * The targets are issue 15's; a figure without one is reported, not judged.
 */
#include <stddef.h>

#include "bench.h"

#define NO_HOST_DPUT "no Linux counterpart (Determinator's dput/dget)"

const struct bench_case bench_cases[] = {
	/* ---- page faults ---- */
	{ "first_touch", BENCH_QUICK, 65536, 8192, host_first_touch, vm_first_touch, {
		{ "first_touch", "first-touch write fault", "ns/page", FLOOR_MEMSET, 0.2, 1.3, 0, NULL },
	} },
	{ "zero_read", BENCH_QUICK, 65536, 8192, host_zero_read, vm_zero_read, {
		{ "zero_page_read", "read fault on fresh memory (zero page)", "ns/page", FLOOR_NONE, 0.1, 0, 0, NULL },
		{ "write_after_read", "write after that read", "ns/page", FLOOR_MEMSET, 0.2, 1.3, 0, NULL },
	} },
	{ "cow_break", BENCH_QUICK, 65536, 8192, host_cow_break, vm_cow_break, {
		{ "cow_break", "COW break after fork (parent writes, child alive)", "ns/page", FLOOR_MEMCPY, 0.2, 1.3, 0, NULL },
	} },
	{ "reuse", BENCH_QUICK, 65536, 8192, host_reuse, vm_reuse, {
		{ "reuse", "write fault, other side exited (reuse)", "ns/page", FLOOR_NONE, 0.1, 0, 0, NULL },
	} },
	/* ---- memory cgroups: what charging costs those two paths ---- */
	{ "memcg_first_touch", BENCH_QUICK, 65536, 8192, NULL, vm_memcg_first_touch, {
		{ "memcg_first_touch_off", "first touch, cgroup_disable=memory", "ns/page", FLOOR_NONE, 0, 0, 0, "cowvm's own cost" },
		{ "memcg_first_touch_on", "first touch, in /bench/job (limits set)", "ns/page", FLOOR_NONE, 0, 0, 0, "cowvm's own cost" },
		{ "memcg_first_touch_pct", "first touch: charging overhead", "%", FLOOR_NONE, 0, 0, 5.0, "cowvm's own cost" },
	} },
	{ "memcg_cow_break", BENCH_QUICK, 65536, 8192, NULL, vm_memcg_cow_break, {
		{ "memcg_cow_break_off", "COW break, cgroup_disable=memory", "ns/page", FLOOR_NONE, 0, 0, 0, "cowvm's own cost" },
		{ "memcg_cow_break_on", "COW break, in /bench/job (limits set)", "ns/page", FLOOR_NONE, 0, 0, 0, "cowvm's own cost" },
		{ "memcg_cow_break_pct", "COW break: charging overhead", "%", FLOOR_NONE, 0, 0, 5.0, "cowvm's own cost" },
	} },
	/* ---- processes ---- */
	{ "fork_64mib", BENCH_QUICK, 64 * MIB, 64 * MIB, host_fork, vm_fork, {
		{ "fork_64mib_per_page", "fork, 64 MiB touched, per mapped page", "ns/page", FLOOR_NONE, 0.3, 0, 0, NULL },
		{ "fork_64mib_total_us", "fork, 64 MiB touched, total", "us", FLOOR_NONE, 0, 0, 0, NULL },
		{ "fork_empty_us", "fork of an empty process (subtracted above)", "us", FLOOR_NONE, 0, 0, 0, NULL },
	} },
	{ "fork_256mib", 0, 256 * MIB, 256 * MIB, host_fork, vm_fork, {
		{ "fork_256mib_per_page", "fork, 256 MiB touched, per mapped page", "ns/page", FLOOR_NONE, 0.3, 0, 0, NULL },
		{ "fork_256mib_total_us", "fork, 256 MiB touched, total", "us", FLOOR_NONE, 0, 0, 0, NULL },
	} },
	{ "fork_1gib", 0, 1 * GIB, 1 * GIB, host_fork, vm_fork, {
		{ "fork_1gib_per_page", "fork, 1 GiB touched, per mapped page", "ns/page", FLOOR_NONE, 0.3, 0, 0, NULL },
		{ "fork_1gib_total_us", "fork, 1 GiB touched, total", "us", FLOOR_NONE, 0, 0, 0, NULL },
	} },
	{ "munmap", BENCH_QUICK, 65536, 8192, host_munmap, vm_munmap, {
		{ "munmap", "munmap of touched memory", "ns/page", FLOOR_NONE, 0.3, 0, 0, NULL },
	} },
	{ "exit", BENCH_QUICK, 65536, 8192, host_exit, vm_exit, {
		{ "exit", "exit of touched memory (minus an empty exit)", "ns/page", FLOOR_NONE, 0.3, 0, 0, NULL },
		{ "exit_empty_us", "exit of an empty process", "us", FLOOR_NONE, 0, 0, 0, NULL },
	} },
	{ "fork_tree", BENCH_QUICK, 10000, 200, host_fork_tree, vm_fork_tree, {
		{ "fork_tree_build_us", "fork tree of 10,000 processes (200 quick), build, per process", "us", FLOOR_NONE, 0, 0, 0, NULL },
		{ "fork_tree_exit_us", "fork tree, every process exits, per process", "us", FLOOR_NONE, 0, 0, 0, NULL },
	} },
	/* ---- the MMU ---- */
	{ "tlb_hit", BENCH_QUICK, 100000000, 5000000, host_tlb_hit, vm_tlb_hit, {
		{ "tlb_hit_load", "TLB-hit load, 8 bytes (cowvm_load64)", "ns/access", FLOOR_NONE, 0, 0, 1.5, NULL },
		{ "tlb_hit_store", "TLB-hit store, 8 bytes (cowvm_store64)", "ns/access", FLOOR_NONE, 0, 0, 1.5, NULL },
	} },
	{ "tlb_miss", BENCH_QUICK, 16384, 16384, host_tlb_miss, vm_tlb_miss, {
		{ "tlb_miss_load", "TLB-miss load chain, page stride, 16384 pages", "ns/access", FLOOR_NONE, 1.5, 0, 0, NULL },
	} },
	/* ---- memory ---- */
	{ "memory", BENCH_QUICK, 16384, 4096, host_pagetable, vm_pagetable, {
		{ "pagetable_bytes_per_page", "page-table bytes per mapped page", "bytes", FLOOR_NONE, 0, 0, 0, NULL },
		{ "struct_page_bytes", "struct page per frame", "bytes", FLOOR_NONE, 0, 0, 64, "sizeof(struct page) on x86-64 Linux, not measured" },
	} },
	{ "frame_overhead", BENCH_QUICK, 65536, 8192, NULL, vm_frame_overhead, {
		{ "frame_metadata_bytes", "host memory per frame beyond its 4 KiB (struct page ...)", "bytes", FLOOR_NONE, 0, 0, 0, "cowvm's own cost" },
		{ "frame_host_pte_bytes", "host page tables per frame of physical memory", "bytes", FLOOR_NONE, 0, 0, 0, "cowvm's own cost" },
		{ "frame_guest_pte_bytes", "cowvm page tables per mapped page", "bytes", FLOOR_NONE, 0, 0, 0, "cowvm's own cost" },
		{ "frame_overhead_pct", "memory overhead per simulated frame", "%", FLOOR_NONE, 0, 0, 2.0, "cowvm's own cost" },
	} },
	/* ---- scale ---- */
	{ "big_cow", BENCH_BIG, 8 * GIB, 8 * GIB, NULL, vm_big_cow, {
		{ "big_first_touch", "16 GiB machine: first touch of an 8 GiB guest", "ns/page", FLOOR_NONE, 0, 0, 0, "cowvm at scale: compare with first_touch" },
		{ "big_fork", "16 GiB machine: fork of the 8 GiB guest, per page", "ns/page", FLOOR_NONE, 0, 0, 0, "cowvm at scale: compare with fork_1gib_per_page" },
		{ "big_cow_break", "16 GiB machine: COW break of the 8 GiB guest", "ns/page", FLOOR_NONE, 0, 0, 0, "cowvm at scale: compare with cow_break" },
		{ "big_exit", "16 GiB machine: exit of parent and child, per page", "ns/page", FLOOR_NONE, 0, 0, 0, "cowvm at scale" },
	} },
	/* ---- snapshot and restore (issue 14): K random page writes, then back ---- */
#define RESTORE_CASE(name, flags, k, restore_target)                                                    \
	{ name, flags, k, k, host_restore, vm_restore, {                                                 \
		{ name "_iter_us", "write " #k " random pages + restore, 1 GiB guest (128 MiB quick)", "us",   \
		  FLOOR_NONE, 0.01, 0, 0, NULL },                                                          \
		{ name "_us", "restore alone after " #k " dirty pages", "us", FLOOR_NONE, 0, 0, restore_target, \
		  "fork+exit has no separate restore" },                                                   \
		{ name "_per_page", "restore per dirty page (vs memcpy of the pages)", "ns/page", FLOOR_MEMCPY, \
		  0, 1.0, 0, "fork+exit has no separate restore" },                                        \
		{ name "_size_ratio", "restore at 1 GiB (128 MiB quick) / at 16 MiB", "x", FLOOR_NONE, 0, 0,  \
		  1.1, "cowvm's own scaling" },                                                            \
	} }
	RESTORE_CASE("restore_k1", 0, 1, 0),
	RESTORE_CASE("restore_k16", BENCH_QUICK, 16, 2.0),
	RESTORE_CASE("restore_k256", 0, 256, 0),
	/* ---- Determinator's dput and dget (cowvm only) ---- */
	{ "dput_copy", BENCH_QUICK, 65536, 8192, NULL, vm_dput_copy_cow, {
		{ "dput_copy_cow", "dput COPY, page-multiple delta (COW)", "ns/page", FLOOR_NONE, 0, 0, 0, NO_HOST_DPUT },
		{ "dput_copy_cow_total_us", "dput COPY, page-multiple delta, total", "us", FLOOR_NONE, 0, 0, 0, NO_HOST_DPUT },
	} },
	{ "dput_copy_bytes", BENCH_QUICK, 65536, 8192, NULL, vm_dput_copy_bytes, {
		{ "dput_copy_bytes", "dput COPY, delta 8 bytes (every byte)", "ns/page", FLOOR_MEMCPY, 0, 0, 0, NO_HOST_DPUT },
		{ "dput_copy_bytes_total_us", "dput COPY, delta 8 bytes, total", "us", FLOOR_NONE, 0, 0, 0, NO_HOST_DPUT },
	} },
	{ "snap", BENCH_QUICK, 65536, 8192, NULL, vm_snap, {
		{ "dput_snap", "dput SNAP of the touched pages", "ns/page", FLOOR_NONE, 0, 0, 0, NO_HOST_DPUT },
	} },
	{ "merge", BENCH_QUICK, 262144, 32768, NULL, vm_merge, {
		{ "dget_merge_2mib_us", "dget MERGE of 2 MiB, one page changed", "us", FLOOR_NONE, 0, 0, 0, NO_HOST_DPUT },
		{ "dget_merge_large_us", "dget MERGE of 1 GiB (128 MiB quick), same page", "us", FLOOR_NONE, 0, 0, 0, NO_HOST_DPUT },
		{ "dget_merge_ratio", "MERGE large / MERGE 2 MiB (above)", "x", FLOOR_NONE, 0, 0, 4.0, NO_HOST_DPUT },
	} },
};

const int nr_bench_cases = (int)(sizeof(bench_cases) / sizeof(bench_cases[0]));
