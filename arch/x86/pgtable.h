/*
 * pgtable.h - the x86-64 page-table format: 4 levels (PGD, PUD, PMD, PTE) of 512 64-bit
 * entries, 48-bit virtual addresses, hardware bits where x86 has them and Linux's software
 * bits where Linux puts them.  Entries live in frames of physical memory and are read and
 * written atomically, because the software MMU (the "hardware") reads them without locks and
 * sets the accessed and dirty bits behind the kernel's back, as a real CPU does.
 */
#ifndef COWVM_PGTABLE_H
#define COWVM_PGTABLE_H

#include <stdbool.h>
#include <stdint.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & PAGE_MASK)
#define PAGE_ALIGNED(x) (((x) & (PAGE_SIZE - 1)) == 0)

#define PTRS_PER_TABLE 512
#define PMD_SHIFT 21
#define PUD_SHIFT 30
#define PGDIR_SHIFT 39
#define PMD_SIZE (1ull << PMD_SHIFT)
#define PUD_SIZE (1ull << PUD_SHIFT)
#define PGDIR_SIZE (1ull << PGDIR_SHIFT)

#define TASK_SIZE_MAX ((1ull << 47) - PAGE_SIZE)

/* Hardware bits. */
#define _PAGE_PRESENT  (1ull << 0)
#define _PAGE_RW       (1ull << 1)
#define _PAGE_USER     (1ull << 2)
#define _PAGE_PWT      (1ull << 3)
#define _PAGE_PCD      (1ull << 4)
#define _PAGE_ACCESSED (1ull << 5)
#define _PAGE_DIRTY    (1ull << 6)
#define _PAGE_PSE      (1ull << 7)
#define _PAGE_GLOBAL   (1ull << 8)
#define _PAGE_PROTNONE _PAGE_GLOBAL /* Linux: mapped, but not present to the hardware */
#define _PAGE_NX       (1ull << 63)
/* Linux's software bits. */
#define _PAGE_SPECIAL    (1ull << 9)  /* _PAGE_BIT_SOFTW1: no struct page to account (zero page) */
#define _PAGE_UFFD_WP    (1ull << 10) /* _PAGE_BIT_SOFTW2 */
#define _PAGE_SOFT_DIRTY (1ull << 11) /* _PAGE_BIT_SOFTW3 */

#define PTE_PFN_MASK 0x000ffffffffff000ull

/* Upper levels point at the next table: present, writable, user (Linux's _PAGE_TABLE). */
#define _PAGE_TABLE (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY)

typedef uint64_t pte_t;   /* one entry at any level; the level says what it means */
typedef uint64_t pgprot_t;

static inline unsigned pgd_index(uint64_t addr) { return (addr >> PGDIR_SHIFT) & 511; }
static inline unsigned pud_index(uint64_t addr) { return (addr >> PUD_SHIFT) & 511; }
static inline unsigned pmd_index(uint64_t addr) { return (addr >> PMD_SHIFT) & 511; }
static inline unsigned pte_index(uint64_t addr) { return (addr >> PAGE_SHIFT) & 511; }

static inline bool pte_none(pte_t pte) { return pte == 0; }
/* The kernel's view: a PROT_NONE PTE still maps its page. */
static inline bool pte_present(pte_t pte) { return pte & (_PAGE_PRESENT | _PAGE_PROTNONE); }
static inline bool pte_write(pte_t pte) { return pte & _PAGE_RW; }
static inline bool pte_dirty(pte_t pte) { return pte & _PAGE_DIRTY; }
static inline bool pte_young(pte_t pte) { return pte & _PAGE_ACCESSED; }
static inline bool pte_special(pte_t pte) { return pte & _PAGE_SPECIAL; }
static inline bool pte_soft_dirty(pte_t pte) { return pte & _PAGE_SOFT_DIRTY; }
static inline uint64_t pte_pfn(pte_t pte) { return (pte & PTE_PFN_MASK) >> PAGE_SHIFT; }

static inline pte_t pfn_pte(uint64_t pfn, pgprot_t prot) { return (pfn << PAGE_SHIFT) | prot; }
static inline pte_t pte_mkwrite(pte_t pte) { return pte | _PAGE_RW; }
static inline pte_t pte_wrprotect(pte_t pte) { return pte & ~_PAGE_RW; }
static inline pte_t pte_mkdirty(pte_t pte) { return pte | _PAGE_DIRTY | _PAGE_SOFT_DIRTY; }
static inline pte_t pte_mkclean(pte_t pte) { return pte & ~_PAGE_DIRTY; }
static inline pte_t pte_mkyoung(pte_t pte) { return pte | _PAGE_ACCESSED; }
static inline pte_t pte_mkold(pte_t pte) { return pte & ~_PAGE_ACCESSED; }
static inline pte_t pte_mkspecial(pte_t pte) { return pte | _PAGE_SPECIAL; }
static inline pte_t pte_mksoft_dirty(pte_t pte) { return pte | _PAGE_SOFT_DIRTY; }
/* Keep the frame and the software state, take the protection bits of a new pgprot. */
static inline pte_t pte_modify(pte_t pte, pgprot_t prot)
{
	const uint64_t keep = PTE_PFN_MASK | _PAGE_DIRTY | _PAGE_SPECIAL | _PAGE_SOFT_DIRTY |
			      _PAGE_UFFD_WP;
	return (pte & keep) | (prot & ~keep);
}

/* Atomic access to entries: the MMU reads and updates them concurrently. */
static inline pte_t ptep_get(const pte_t *ptep) { return __atomic_load_n(ptep, __ATOMIC_ACQUIRE); }
static inline void set_pte(pte_t *ptep, pte_t pte) { __atomic_store_n(ptep, pte, __ATOMIC_RELEASE); }
static inline pte_t ptep_get_and_clear(pte_t *ptep) { return __atomic_exchange_n(ptep, 0, __ATOMIC_ACQ_REL); }
/* Clear RW without losing a dirty bit the MMU sets at the same time. */
/* Clear the accessed bit of a present PTE under its PTL (the MMU may set A/D meanwhile, hence
 * the atomic); whether it was set.  The caller flushes the TLB when it was. */
static inline bool ptep_test_and_clear_young(pte_t *ptep)
{
	return __atomic_fetch_and(ptep, ~_PAGE_ACCESSED, __ATOMIC_ACQ_REL) & _PAGE_ACCESSED;
}
static inline void ptep_set_wrprotect(pte_t *ptep) { __atomic_fetch_and(ptep, ~_PAGE_RW, __ATOMIC_ACQ_REL); }
/* What the MMU does on a walk: set accessed (and dirty on a write). */
static inline void ptep_hw_set_bits(pte_t *ptep, uint64_t bits) { __atomic_fetch_or(ptep, bits, __ATOMIC_ACQ_REL); }

/*
 * Swap PTEs, as x86-64 Linux encodes a non-present entry (arch/x86/include/asm/pgtable_64.h):
 *
 *   bit  63..59   58 ........... 9   8   7   6   5   4   3   2   1   0
 *        TYPE     ~OFFSET            0   0   0   0   0   E   F   SD  0
 *
 * P (0) and PROTNONE (8) are clear, so neither the MMU nor pte_present sees a page.  The offset
 * is stored inverted (so its high bits are set, L1TF), the type in the top 5 bits.  The low bits
 * that mean RW / USER / PWT in a present entry carry, in a swap entry: SD (1) the soft-dirty bit,
 * F (2) uffd-wp, E (3) the page was PageAnonExclusive when it was unmapped.  A swap PTE must never
 * be read with the present-entry helpers (pte_write would read SD).
 */
#define _PAGE_SWP_SOFT_DIRTY _PAGE_RW
#define _PAGE_SWP_UFFD_WP    _PAGE_USER
#define _PAGE_SWP_EXCLUSIVE  _PAGE_PWT
#define SWP_TYPE_BITS        5
#define SWP_OFFSET_FIRST_BIT 9 /* _PAGE_BIT_PROTNONE + 1 */
#define SWP_OFFSET_SHIFT     (SWP_OFFSET_FIRST_BIT + SWP_TYPE_BITS)
#define MAX_SWAPFILES_SHIFT  5
#define SWP_OFFSET_MAX       ((1ull << (64 - SWP_OFFSET_SHIFT)) - 1)

static inline bool is_swap_pte(pte_t pte) { return !pte_none(pte) && !pte_present(pte); }
static inline unsigned __swp_type(pte_t pte) { return (unsigned)(pte >> (64 - SWP_TYPE_BITS)); }
static inline uint64_t __swp_offset(pte_t pte) { return ~pte << SWP_TYPE_BITS >> SWP_OFFSET_SHIFT; }
static inline pte_t __swp_entry_to_pte(unsigned type, uint64_t offset)
{
	return (~offset << SWP_OFFSET_SHIFT >> SWP_TYPE_BITS) | ((uint64_t)type << (64 - SWP_TYPE_BITS));
}
static inline bool pte_swp_exclusive(pte_t pte) { return pte & _PAGE_SWP_EXCLUSIVE; }
static inline pte_t pte_swp_mkexclusive(pte_t pte) { return pte | _PAGE_SWP_EXCLUSIVE; }
static inline pte_t pte_swp_clear_exclusive(pte_t pte) { return pte & ~_PAGE_SWP_EXCLUSIVE; }
static inline bool pte_swp_soft_dirty(pte_t pte) { return pte & _PAGE_SWP_SOFT_DIRTY; }
static inline pte_t pte_swp_mksoft_dirty(pte_t pte) { return pte | _PAGE_SWP_SOFT_DIRTY; }
static inline pte_t pte_swp_clear_soft_dirty(pte_t pte) { return pte & ~_PAGE_SWP_SOFT_DIRTY; }
/* The bits of a swap PTE beyond type and offset (__swp_entry_to_pte gives none of them). */
#define _PAGE_SWP_FLAGS (_PAGE_SWP_SOFT_DIRTY | _PAGE_SWP_UFFD_WP | _PAGE_SWP_EXCLUSIVE)

/*
 * Protections for VMA flags, as x86's protection_map: a private writable mapping is mapped
 * read-only (PAGE_COPY) so that the first write faults and copies; a shared one is mapped
 * writable (PAGE_SHARED).  PROT_NONE maps with _PAGE_PROTNONE and no _PAGE_PRESENT, so the
 * page stays mapped for the kernel while every access by the task faults.
 */
#define PAGE_NONE (_PAGE_PROTNONE | _PAGE_ACCESSED)
#define PAGE_READONLY (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX)
#define PAGE_COPY PAGE_READONLY
#define PAGE_SHARED (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX)

#endif
