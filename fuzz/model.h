/*
 * model.h - the reference model the fuzzer checks cowvm against.
 *
 * It is written from Linux's documented behaviour, not from cowvm's code: an address space is
 * a sorted array of mapped pages, each with its protection, its fork advice and its contents.
 *   - a private page owns its 4 KiB of bytes (NULL = all zero); fork copies them;
 *   - a shared page names a page of a shared object (one MAP_SHARED|MAP_ANONYMOUS mmap); every
 *     process that maps the object sees the object's bytes, so there is nothing to copy;
 *   - MADV_DONTNEED zeroes a private page and leaves a shared one alone; fork leaves out
 *     DONTFORK pages and gives the child zeroed copies of WIPEONFORK pages.
 * There are no VMAs here: a VMA is an implementation detail, and every rule below can be said
 * page by page (Linux applies mprotect/madvise VMA by VMA, which on a range gives the same
 * result as page by page in address order).
 *
 * The functions predict what a call returns (Linux's errno and its order of checks) and, when
 * asked to (apply != 0), change the model as the call changes the process.
 */
#ifndef FUZZ_MODEL_H
#define FUZZ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define MODEL_PAGE 4096ull
#define MODEL_USER_TOP (1ull << 47)                   /* first non-canonical address */
#define MODEL_TASK_SIZE_MAX (MODEL_USER_TOP - MODEL_PAGE) /* as x86-64: a guard page below it */
#define MODEL_MMAP_MIN_ADDR 0x10000ull /* vm.mmap_min_addr for an unprivileged process */
#define MODEL_ANYWHERE UINT64_MAX      /* model_mmap_check: the kernel picks the address */

#define MODEL_PAGE_ALIGN(x) (((x) + MODEL_PAGE - 1) & ~(MODEL_PAGE - 1))

/* One MAP_SHARED|MAP_ANONYMOUS mapping's memory: a shmem object. */
struct model_object {
	unsigned refs;     /* model pages that map one of its pages */
	uint64_t npages;
	uint8_t **data;    /* per page, NULL = zeros */
};

struct model_page {
	uint64_t addr;
	uint8_t prot;       /* PROT_READ | PROT_WRITE | PROT_EXEC bits */
	uint8_t dontfork;   /* MADV_DONTFORK */
	uint8_t wipeonfork; /* MADV_WIPEONFORK */
	struct model_object *obj; /* shared page: its object and page index; else NULL */
	uint64_t index;
	uint8_t *data;      /* private page's bytes, NULL = zeros */
};

/* A dput SNAP image: the bytes of the process's private pages when it was taken (a shared
 * page is not imaged: both sides see the same memory; anything not here reads as zeros). */
struct model_snap {
	size_t n;
	uint64_t *addr;     /* sorted */
	uint8_t **data;     /* per page, NULL = zeros */
};

/* One process's memory. */
struct model_mm {
	unsigned users;     /* threads */
	uint64_t start_brk, brk;
	size_t n, cap;      /* pages[0..n) sorted by addr */
	struct model_page *pages;
	struct model_snap *snap; /* the last dput SNAP of this process, or NULL (fork: none) */
};

struct model_mm *model_mm_new(uint64_t start_brk);
struct model_mm *model_mm_fork(const struct model_mm *parent); /* users = 1 */
void model_mm_put(struct model_mm *mm); /* drop a user; the last one frees */

const struct model_page *model_find(const struct model_mm *mm, uint64_t addr);
size_t model_index(const struct model_mm *mm, uint64_t addr); /* first page at or above addr */
int model_range_free(const struct model_mm *mm, uint64_t addr, uint64_t len);
const uint8_t *model_page_bytes(const struct model_page *p); /* 4 KiB */
size_t model_nr_runs(const struct model_mm *mm); /* maximal runs of contiguous pages */
int model_readable(int prot);
int model_writable(int prot);

/*
 * mmap: returns -errno, or 0 with *where = the address the mapping must get (MAP_FIXED, or a
 * hint that Linux would take) or MODEL_ANYWHERE.  model_mmap_fits says whether an address the
 * kernel chose is acceptable; model_mmap_apply makes the mapping (len already page-aligned
 * is not required).
 */
int model_mmap_check(const struct model_mm *mm, uint64_t addr, uint64_t len, int prot, int flags,
		     uint64_t *where);
int model_mmap_fits(const struct model_mm *mm, uint64_t addr, uint64_t len);
void model_mmap_apply(struct model_mm *mm, uint64_t addr, uint64_t len, int prot, int flags);

int model_munmap(struct model_mm *mm, uint64_t addr, uint64_t len, int apply);
int model_mprotect(struct model_mm *mm, uint64_t addr, uint64_t len, int prot, int apply);
int model_madvise(struct model_mm *mm, uint64_t addr, uint64_t len, int advice, int apply);
uint64_t model_brk(struct model_mm *mm, uint64_t brk, int apply); /* the break after the call */

/*
 * Accesses.  model_first_fault: 1 and *at = the lowest address in [addr, addr + len) whose
 * page the access may not touch (not mapped, not readable / writable, not canonical), or 0.
 * model_read / model_write: the task's own accesses: all or nothing, 0 or -EFAULT.
 * model_copy_nc: bytes a copy_{from,to}_user of n bytes does not copy: the copy stops at the
 * first faulting page; with access_ok set, a range that does not lie below TASK_SIZE_MAX
 * copies nothing (the check the kernel makes before copying).
 */
int model_first_fault(const struct model_mm *mm, uint64_t addr, uint64_t len, int write, uint64_t *at);
int model_read(const struct model_mm *mm, uint64_t addr, void *buf, uint64_t len);
int model_write(struct model_mm *mm, uint64_t addr, const void *buf, uint64_t len, int apply);
uint64_t model_copy_nc(const struct model_mm *mm, uint64_t addr, uint64_t n, int write, int access_ok);
/*
 * access_remote_vm (ptrace, /proc/pid/mem) with FOLL_FORCE, page by page from addr: stops at
 * an unmapped page, at TASK_SIZE_MAX, and for a write at a shared page the process may not
 * write (a private one is written through a COW break whatever its protection; anything
 * mapped is readable, as anonymous VMAs always have VM_MAYREAD).  Returns the bytes it moves.
 */
uint64_t model_remote_len(const struct model_mm *mm, uint64_t addr, uint64_t len, int write);
/* get/pin_user_pages without FOLL_FORCE: every page mapped with PROT_WRITE (write) or
 * PROT_READ (read)?  0 or -EFAULT. */
int model_gup_check(const struct model_mm *mm, uint64_t addr, uint64_t npages, int write);
void model_peek(const struct model_mm *mm, uint64_t addr, void *buf, uint64_t len); /* accessible */
void model_poke(struct model_mm *mm, uint64_t addr, const void *buf, uint64_t len); /* mapped */

/*
 * dput / dget (Determinator's Put and Get; include/cowvm.h is the contract), at byte level.
 *
 * A saved source (model_src_save) is the source range's pages as they were when a COPY began:
 * bytes (a shared page's too: the destination may be the same shared memory), protection,
 * shared object.  A COPY takes bytes only from pages mapped then (holes
 * stay holes), whatever their protection (the kernel reads them as ptrace does).
 *
 * model_dcopy: COPY of len bytes from src in smm to dst in dmm (smm == dmm: one process, two
 * threads).  Returns -errno as cowvm_dput/dget must (0 with len 0 whatever the addresses;
 * -EINVAL for a range beyond TASK_SIZE_MAX or overlapping ranges in one mm; -EACCES when a
 * byte copied one by one - head and tail page, or every byte when dst - src is not a page
 * multiple - lies in a shared page without PROT_WRITE).  With apply (saved from
 * model_src_save(smm, src, len) right before): the destination takes the bytes; the middle
 * (page-multiple delta, whole pages) is replaced page by page by the source's pages (private:
 * a copy of the bytes, same protection, no fork advice; shared: the same object page) or by a
 * hole; a destination page without a mapping that receives bytes gets a private page with the
 * protection of the (first) source page they come from.  Such new pages are listed in *np (if
 * not NULL): their address and the protections (bit 1 << prot) of every source page that gave
 * them bytes, since the contract names "the source VMA's protection" and two source pages
 * may feed one destination page.
 *
 * model_dzero: ZERO of [dst, +len) in dmm: -EINVAL beyond TASK_SIZE_MAX, -EACCES for a partial
 * page that is shared without PROT_WRITE; apply: partial pages' bytes zeroed (a page without
 * a mapping becomes private read-write), whole pages replaced by private read-write zeros.
 *
 * model_snap_take: SNAP of mm (the child).
 *
 * model_dmerge: MERGE of the child's [ca, +len) into the parent at pa.  Returns -EINVAL
 * (unaligned, beyond TASK_SIZE_MAX, one mm), 0 for len 0, -ENOENT (no SNAP), -EFAULT (a parent
 * page unmapped, or shared without PROT_WRITE); when both of the last two hold, *alt gets the
 * other one (the contract does not order them).  With apply, per page of the child's range
 * that is not shared: c = the child's bytes (zeros if unmapped), r = the image's, p = the
 * parent's; c == r: skip; else per byte: c == r keep p; p == r take c; p == c same; else a
 * conflict (p kept).  Pages in ascending order.  res (if not NULL) counts conflicts, the
 * parent address of the first, the pages where c != r and p != c (which cowvm must have
 * examined) and the pages with a conflict.  hook (if not NULL) is asked before each page the
 * merge would change (post != pre) and the page is changed only if it returns nonzero (the
 * driver uses it to follow a MERGE cut short by -ENOMEM).
 */
struct model_src;
struct model_src *model_src_save(const struct model_mm *mm, uint64_t src, uint64_t len);
const struct model_page *model_src_page(const struct model_src *s, uint64_t addr); /* or NULL */
const uint8_t *model_src_bytes(const struct model_src *s, const struct model_page *p); /* as saved */
void model_src_free(struct model_src *s);

struct model_newpage {
	uint64_t addr;
	uint8_t prots; /* bit (1 << prot) for each source page's protection */
};
struct model_newpages {
	size_t n, cap;
	struct model_newpage *p;
};

int model_dcopy(const struct model_mm *smm, uint64_t src, struct model_mm *dmm, uint64_t dst,
		uint64_t len, int apply, const struct model_src *saved, struct model_newpages *np);
int model_dzero(struct model_mm *dmm, uint64_t dst, uint64_t len, int apply);
void model_snap_take(struct model_mm *mm);
void model_snap_free(struct model_snap *snap);
const uint8_t *model_snap_bytes(const struct model_snap *snap, uint64_t addr); /* zeros if none */

struct model_merge_res {
	uint64_t conflicts, first_conflict; /* first: parent address, 0 if none */
	uint64_t pages_changed;  /* c != r and p != c: cowvm must examine and write these */
	uint64_t pages_conflict; /* pages with a conflicting byte */
};
typedef int (*model_merge_hook)(void *arg, uint64_t addr, const uint8_t *pre, const uint8_t *post);
int model_dmerge(struct model_mm *pmm, uint64_t pa, const struct model_mm *cmm, uint64_t ca,
		 uint64_t len, int apply, int *alt, struct model_merge_res *res,
		 model_merge_hook hook, void *arg);

/*
 * Snapshots (cowvm_snapshot / cowvm_restore, include/cowvm.h): an image is a copy of the whole
 * process as it was - every page with its protection, fork advice and bytes, the break; a
 * shared page names its object (holding it), whose bytes are not rolled back: other processes
 * see them.  Restore makes mm that again (its threads and its dput SNAP stay as they are).
 */
struct model_mm *model_image_take(const struct model_mm *mm);
void model_image_restore(struct model_mm *mm, const struct model_mm *image);
void model_image_free(struct model_mm *image);

/* For resynchronising after a dput/dget cut short by -ENOMEM: make addr a private page with
 * these bytes (NULL = zeros) and flags, or a page of obj; or unmap it. */
void model_set_private(struct model_mm *mm, uint64_t addr, int prot, int dontfork, int wipeonfork,
		       const uint8_t *bytes);
void model_set_shared(struct model_mm *mm, uint64_t addr, int prot, int dontfork,
		      struct model_object *obj, uint64_t index);
void model_unmap_page(struct model_mm *mm, uint64_t addr);
void model_object_write(struct model_object *obj, uint64_t index, const uint8_t *bytes); /* 4 KiB */

#endif /* FUZZ_MODEL_H */
