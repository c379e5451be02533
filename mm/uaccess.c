/*
 * uaccess.c - the kernel's copies from and to user memory: copy_from_user, copy_to_user,
 * get_user, put_user.  They go through the task's MMU like its own accesses, so faults are
 * resolved by handle_mm_fault (and count as the task's); a fault that cannot be resolved is
 * fixed up through the exception table instead of crashing:
 *   copy_from_user: the number of bytes not copied, and that tail of the buffer zeroed;
 *   copy_to_user:   the number of bytes not copied;
 *   get_user/put_user: -EFAULT (get_user also zeroes the value).
 */
#include "../arch/x86/extable.h"

/* access_ok: the range lies below the user limit and does not wrap. */
static bool access_ok(uint64_t addr, size_t size)
{
	return size <= TASK_SIZE_MAX && addr <= TASK_SIZE_MAX - size;
}

/*
 * The sites.  Each copies page by page, so that a fault leaves an exact count of what moved,
 * as x86's copy routine stops at the faulting page.  Returns the bytes not copied.
 */
static size_t raw_copy_from_user(struct task_struct *t, void *to, uint64_t from, size_t n);
static size_t raw_copy_to_user(struct task_struct *t, uint64_t to, const void *from, size_t n);
static int __get_user_8(struct task_struct *t, uint64_t addr, uint64_t *val);
static int __put_user_8(struct task_struct *t, uint64_t addr, uint64_t val);

static struct exception_table_entry uaccess_table[] = {
	{ (const void *)raw_copy_from_user, EX_TYPE_UACCESS },
	{ (const void *)raw_copy_to_user, EX_TYPE_UACCESS },
	{ (const void *)__get_user_8, EX_TYPE_EFAULT_REG },
	{ (const void *)__put_user_8, EX_TYPE_EFAULT_REG },
};

size_t uaccess_extable(struct exception_table_entry **table)
{
	*table = uaccess_table;
	return sizeof(uaccess_table) / sizeof(uaccess_table[0]);
}

/* Copy [addr, addr + n) in page-sized steps; returns the bytes not moved. */
static size_t copy_user_pages(struct task_struct *t, const void *site, uint64_t addr, void *buf,
			      size_t n, bool write)
{
	uint8_t *b = buf;
	while (n > 0) {
		size_t step = PAGE_SIZE - (addr & (PAGE_SIZE - 1));
		if (step > n)
			step = n;
		uint64_t fault_addr;
		if (mmu_access(t, addr, b, step, write, false, &fault_addr)) {
			const struct exception_table_entry *e = fixup_exception(site, fault_addr);
			if (e->type != EX_TYPE_UACCESS)
				bug("copy site with a non-copy fixup");
			return n;
		}
		addr += step;
		b += step;
		n -= step;
	}
	return 0;
}

static size_t raw_copy_from_user(struct task_struct *t, void *to, uint64_t from, size_t n)
{
	return copy_user_pages(t, (const void *)raw_copy_from_user, from, to, n, false);
}

static size_t raw_copy_to_user(struct task_struct *t, uint64_t to, const void *from, size_t n)
{
	return copy_user_pages(t, (const void *)raw_copy_to_user, to, (void *)from, n, true);
}

static int __get_user_8(struct task_struct *t, uint64_t addr, uint64_t *val)
{
	uint64_t fault_addr;
	if (mmu_access(t, addr, val, sizeof(*val), false, false, &fault_addr)) {
		fixup_exception((const void *)__get_user_8, fault_addr);
		*val = 0;
		return -EFAULT;
	}
	return 0;
}

static int __put_user_8(struct task_struct *t, uint64_t addr, uint64_t val)
{
	uint64_t fault_addr;
	if (mmu_access(t, addr, &val, sizeof(val), true, false, &fault_addr)) {
		fixup_exception((const void *)__put_user_8, fault_addr);
		return -EFAULT;
	}
	return 0;
}

size_t cowvm_copy_from_user(cowvm_task_t *t, void *dst, uint64_t src, size_t n)
{
	if (!t || (!dst && n))
		return n;
	current = t;
	size_t res = n;
	if (access_ok(src, n))
		res = raw_copy_from_user(t, dst, src, n);
	if (res)
		memset((uint8_t *)dst + (n - res), 0, res);
	return res;
}

size_t cowvm_copy_to_user(cowvm_task_t *t, uint64_t dst, const void *src, size_t n)
{
	if (!t || (!src && n))
		return n;
	current = t;
	if (!access_ok(dst, n))
		return n;
	return raw_copy_to_user(t, dst, src, n);
}

int cowvm_get_user(cowvm_task_t *t, uint64_t addr, uint64_t *val)
{
	if (!t || !val)
		return -EINVAL;
	current = t;
	if (!access_ok(addr, sizeof(*val))) {
		*val = 0;
		return -EFAULT;
	}
	return __get_user_8(t, addr, val);
}

int cowvm_put_user(cowvm_task_t *t, uint64_t addr, uint64_t val)
{
	if (!t)
		return -EINVAL;
	current = t;
	if (!access_ok(addr, sizeof(val)))
		return -EFAULT;
	return __put_user_8(t, addr, val);
}
