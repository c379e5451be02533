/*
 * words.h - the words of the scenario language that name kernel things: errno names, mmap
 * protections, madvise advice, dput/dget operations, and the fields of vmstat, smaps and the
 * merge report with where to find them in the library's structs.  One table each, so that the parser, the runner and the views agree.
 */
#ifndef COWVM_TOOLS_WORDS_H
#define COWVM_TOOLS_WORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cowvm.h"

int errno_by_name(const char *name);  /* "EFAULT" -> EFAULT, -1 if unknown */
const char *errno_name(int error);    /* EFAULT -> "EFAULT"; "errno 123" style for others */

/* "none", or letters from "rwx" and "-" in any order ("r", "rw", "rw-", "r-x") -> PROT_*; -1 */
int prot_by_name(const char *name);
void prot_to_text(int prot, char out[4]); /* "rw-" as /proc/pid/maps */

/* "enabled=always,defrag=never,use_zero_page=0" (any of them, in any order; the sysfs words
 * of /sys/kernel/mm/transparent_hugepage/) -> COWVM_CONFIG_THP_* bits replacing those in
 * *flags; false with a reason in why on an unknown key or value. */
bool thp_parse_spec(const char *spec, unsigned *flags, char *why, size_t whylen);
int advice_by_name(const char *name); /* "dontfork" or "MADV_DONTFORK" -> MADV_DONTFORK; -1 */
const char *advice_name(int advice);  /* "dontfork"; NULL if unknown */

struct vmstat_field {
	const char *name;   /* as /proc/vmstat spells it, or cowvm's own */
	size_t offset;      /* in struct cowvm_vmstat */
};
extern const struct vmstat_field vmstat_fields[];
extern const int nr_vmstat_fields;
int vmstat_field_by_name(const char *name); /* index, -1 */
uint64_t vmstat_value(const struct cowvm_vmstat *vs, int field);

struct smaps_field {
	const char *name;   /* as an expect line spells it (lower case) */
	const char *label;  /* as /proc/pid/smaps prints it */
	size_t offset;      /* in struct cowvm_smaps (bytes) */
};
extern const struct smaps_field smaps_fields[];
extern const int nr_smaps_fields;
int smaps_field_by_name(const char *name); /* index, -1 */
uint64_t smaps_value_kb(const struct cowvm_smaps *sm, int field);

/* The memory fields of /proc/PID/status ("VmRSS", "RssAnon", "VmLck" ...), for `expect status`. */
extern const char *const status_fields[];
extern const int nr_status_fields;
int status_field_by_name(const char *name); /* index (any case), -1 */
/* The field's value in kB from the text of a status file; false if the line is not there. */
bool status_value_kb(const char *text, int field, uint64_t *kb);

/* dput / dget operations: "copy" (or "COPY", "COWVM_COPY") -> COWVM_COPY ...; -1 if unknown */
int dput_op_by_name(const char *name);
const char *dput_op_name(int op);     /* COWVM_COPY -> "copy"; "?" if unknown */

/* The fields of cowvm_merge_report, for `expect merge FIELD` and the trace. */
struct merge_field {
	const char *name;   /* as the struct spells it: conflicts, first_conflict, pages_shared ... */
	size_t offset;      /* in struct cowvm_merge_report */
};
extern const struct merge_field merge_fields[];
extern const int nr_merge_fields;
#define MERGE_FIRST_CONFLICT 1 /* the index of first_conflict: an address, not a count */
int merge_field_by_name(const char *name); /* index, -1 */
uint64_t merge_value(const struct cowvm_merge_report *mr, int field);

#endif /* COWVM_TOOLS_WORDS_H */
