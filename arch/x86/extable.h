/*
 * extable.h - exception-table entries: a user-access site and the kind of fixup it gets.
 */
#ifndef COWVM_EXTABLE_H
#define COWVM_EXTABLE_H

#include "../../mm/mm.h"

enum ex_type {
	EX_TYPE_UACCESS,    /* a copy: stop, report the bytes not copied */
	EX_TYPE_EFAULT_REG, /* get_user/put_user: -EFAULT, and the value register zeroed */
};

struct exception_table_entry {
	const void *insn;   /* the site */
	enum ex_type type;
};

/* Provided by mm/uaccess.c: its sites.  Returns the entry count. */
size_t uaccess_extable(struct exception_table_entry **table);
const struct exception_table_entry *search_exception_tables(const void *insn);
const struct exception_table_entry *fixup_exception(const void *insn, uint64_t address);

#endif
