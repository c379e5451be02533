/*
 * words.c - the tables behind words.h: names of errnos, protections, advice, vmstat and smaps
 * fields.  Lookups are linear: the tables are short and read once per scenario line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lang/scenario.h"
#include "lang/words.h"

static const struct {
	int error;
	const char *name;
} errnos[] = {
	{ EPERM, "EPERM" },     { ENOENT, "ENOENT" },       { ESRCH, "ESRCH" },
	{ EINTR, "EINTR" },     { EIO, "EIO" },             { ENXIO, "ENXIO" },
	{ E2BIG, "E2BIG" },     { EBADF, "EBADF" },         { ECHILD, "ECHILD" },
	{ EAGAIN, "EAGAIN" },   { ENOMEM, "ENOMEM" },       { EACCES, "EACCES" },
	{ EFAULT, "EFAULT" },   { EBUSY, "EBUSY" },         { EEXIST, "EEXIST" },
	{ ENODEV, "ENODEV" },   { EINVAL, "EINVAL" },       { ENFILE, "ENFILE" },
	{ EMFILE, "EMFILE" },   { ENOSPC, "ENOSPC" },       { ERANGE, "ERANGE" },
	{ ENOSYS, "ENOSYS" },   { EOVERFLOW, "EOVERFLOW" }, { EUCLEAN, "EUCLEAN" },
	{ EHWPOISON, "EHWPOISON" }, { EOPNOTSUPP, "EOPNOTSUPP" },
	{ EBADE, "EBADE" },
};

int errno_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
		if (!strcmp(errnos[i].name, name))
			return errnos[i].error;
	return -1;
}

const char *errno_name(int error)
{
	static __thread char other[32];
	for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
		if (errnos[i].error == error)
			return errnos[i].name;
	snprintf(other, sizeof other, "errno %d", error);
	return other;
}

int prot_by_name(const char *name)
{
	if (!strcmp(name, "none"))
		return PROT_NONE;
	if (!*name || strlen(name) > 3)
		return -1;
	int prot = 0;
	for (const char *c = name; *c; c++) {
		int bit = *c == 'r' ? PROT_READ : *c == 'w' ? PROT_WRITE : *c == 'x' ? PROT_EXEC : 0;
		if (*c == '-')
			continue;
		if (!bit || (prot & bit))
			return -1;
		prot |= bit;
	}
	return prot;
}

void prot_to_text(int prot, char out[4])
{
	out[0] = (prot & PROT_READ) ? 'r' : '-';
	out[1] = (prot & PROT_WRITE) ? 'w' : '-';
	out[2] = (prot & PROT_EXEC) ? 'x' : '-';
	out[3] = 0;
}

static const struct {
	int advice;
	const char *name;
} advices[] = {
	{ MADV_NORMAL, "normal" },         { MADV_RANDOM, "random" },
	{ MADV_SEQUENTIAL, "sequential" }, { MADV_WILLNEED, "willneed" },
	{ MADV_DONTNEED, "dontneed" },     { MADV_FREE, "free" },
	{ MADV_DONTFORK, "dontfork" },     { MADV_DOFORK, "dofork" },
	{ MADV_WIPEONFORK, "wipeonfork" }, { MADV_KEEPONFORK, "keeponfork" },
	{ MADV_HUGEPAGE, "hugepage" },     { MADV_NOHUGEPAGE, "nohugepage" },
	/* issue 16: the rest of what programs advise on anonymous memory */
	{ 9, "remove" },                   { 16, "dontdump" },
	{ 17, "dodump" },                  { 20, "cold" },
	{ 21, "pageout" },                 { 22, "populate_read" },
	{ 23, "populate_write" },          { 24, "dontneed_locked" },
};

int advice_by_name(const char *name)
{
	if (!strncmp(name, "MADV_", 5))
		name += 5;
	for (size_t i = 0; i < sizeof advices / sizeof advices[0]; i++)
		if (!strcasecmp(advices[i].name, name))
			return advices[i].advice;
	return -1;
}

const char *advice_name(int advice)
{
	for (size_t i = 0; i < sizeof advices / sizeof advices[0]; i++)
		if (advices[i].advice == advice)
			return advices[i].name;
	return NULL;
}

#define VMSTAT(name) { #name, offsetof(struct cowvm_vmstat, name) }
const struct vmstat_field vmstat_fields[] = {
	VMSTAT(nr_free_pages),    VMSTAT(nr_anon_pages),      VMSTAT(nr_shmem),
	VMSTAT(nr_page_table_pages), VMSTAT(nr_active_anon),  VMSTAT(nr_inactive_anon),
	VMSTAT(nr_zero_page_mappings), VMSTAT(nr_total_pages),
	VMSTAT(pgfault),          VMSTAT(pgmajfault),         VMSTAT(pgreuse),
	VMSTAT(pgalloc),          VMSTAT(pgfree),             VMSTAT(cow_copies),
	VMSTAT(zero_page_maps),   VMSTAT(zero_page_cows),     VMSTAT(tlb_flushes),
	VMSTAT(nr_pinned),        VMSTAT(gup_fast_fallbacks),
	VMSTAT(nr_unevictable),   VMSTAT(nr_mlock),
	VMSTAT(unevictable_pgs_mlocked), VMSTAT(unevictable_pgs_munlocked),
	VMSTAT(nr_swapcached),    VMSTAT(pswpin),             VMSTAT(pswpout),
	VMSTAT(pgscan_kswapd),    VMSTAT(pgscan_direct),
	VMSTAT(pgsteal_kswapd),   VMSTAT(pgsteal_direct),
	VMSTAT(pgactivate),       VMSTAT(pgdeactivate),
};
#undef VMSTAT
const int nr_vmstat_fields = sizeof vmstat_fields / sizeof vmstat_fields[0];

int vmstat_field_by_name(const char *name)
{
	for (int i = 0; i < nr_vmstat_fields; i++)
		if (!strcmp(vmstat_fields[i].name, name))
			return i;
	return -1;
}

uint64_t vmstat_value(const struct cowvm_vmstat *vs, int field)
{
	uint64_t v;
	memcpy(&v, (const char *)vs + vmstat_fields[field].offset, sizeof v);
	return v;
}

#define SMAPS(name, label) { #name, label, offsetof(struct cowvm_smaps, name) }
const struct smaps_field smaps_fields[] = {
	SMAPS(size, "Size:"),
	SMAPS(rss, "Rss:"),
	SMAPS(pss, "Pss:"),
	SMAPS(shared_clean, "Shared_Clean:"),
	SMAPS(shared_dirty, "Shared_Dirty:"),
	SMAPS(private_clean, "Private_Clean:"),
	SMAPS(private_dirty, "Private_Dirty:"),
	SMAPS(referenced, "Referenced:"),
	SMAPS(anonymous, "Anonymous:"),
	SMAPS(swap, "Swap:"),
	SMAPS(swap_pss, "SwapPss:"),
	SMAPS(locked, "Locked:"),
};
#undef SMAPS
const int nr_smaps_fields = sizeof smaps_fields / sizeof smaps_fields[0];

int smaps_field_by_name(const char *name)
{
	for (int i = 0; i < nr_smaps_fields; i++)
		if (!strcasecmp(smaps_fields[i].name, name))
			return i;
	return -1;
}

uint64_t smaps_value_kb(const struct cowvm_smaps *sm, int field)
{
	uint64_t v;
	memcpy(&v, (const char *)sm + smaps_fields[field].offset, sizeof v);
	return v >> 10;
}

static const struct {
	int op;
	const char *name;
} dput_ops[] = {
	{ COWVM_COPY, "copy" }, { COWVM_ZERO, "zero" }, { COWVM_SNAP, "snap" }, { COWVM_MERGE, "merge" },
};

int dput_op_by_name(const char *name)
{
	if (!strncmp(name, "COWVM_", 6))
		name += 6;
	for (size_t i = 0; i < sizeof dput_ops / sizeof dput_ops[0]; i++)
		if (!strcasecmp(dput_ops[i].name, name))
			return dput_ops[i].op;
	return -1;
}

const char *dput_op_name(int op)
{
	for (size_t i = 0; i < sizeof dput_ops / sizeof dput_ops[0]; i++)
		if (dput_ops[i].op == op)
			return dput_ops[i].name;
	return "?";
}

#define MERGE(name) { #name, offsetof(struct cowvm_merge_report, name) }
const struct merge_field merge_fields[] = {
	MERGE(conflicts),     MERGE(first_conflict), MERGE(tables_skipped), MERGE(pages_skipped),
	MERGE(pages_shared),  MERGE(pages_copied),   MERGE(pages_merged),
};
#undef MERGE
const int nr_merge_fields = sizeof merge_fields / sizeof merge_fields[0];

int merge_field_by_name(const char *name)
{
	for (int i = 0; i < nr_merge_fields; i++)
		if (!strcmp(merge_fields[i].name, name))
			return i;
	return -1;
}

uint64_t merge_value(const struct cowvm_merge_report *mr, int field)
{
	uint64_t v;
	memcpy(&v, (const char *)mr + merge_fields[field].offset, sizeof v);
	return v;
}

/* The memory lines of /proc/PID/status that `expect status` reads (all in kB). */
const char *const status_fields[] = {
	"VmPeak", "VmSize", "VmLck", "VmPin", "VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem",
	"VmData", "VmStk", "VmExe", "VmLib", "VmPTE", "VmSwap",
};
const int nr_status_fields = sizeof status_fields / sizeof status_fields[0];

int status_field_by_name(const char *name)
{
	for (int i = 0; i < nr_status_fields; i++)
		if (!strcasecmp(status_fields[i], name))
			return i;
	return -1;
}

bool status_value_kb(const char *text, int field, uint64_t *kb)
{
	size_t n = strlen(status_fields[field]);
	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncmp(line, status_fields[field], n) || line[n] != ':')
			continue;
		unsigned long long v;
		if (sscanf(line + n + 1, "%llu", &v) != 1)
			return false;
		*kb = v;
		return true;
	}
	return false;
}

/* ---- views ------------------------------------------------------------------------------------ */

static const char *const view_names[NR_VIEWS] = {
	[VIEW_MAPS] = "maps",       [VIEW_PTES] = "ptes",       [VIEW_SMAPS] = "smaps",
	[VIEW_SMAPS_ROLLUP] = "smaps_rollup", [VIEW_PAGEMAP] = "pagemap",
	[VIEW_STATUS] = "status",   [VIEW_VMSTAT] = "vmstat",   [VIEW_FRAMES] = "frames",
	[VIEW_GRAPH] = "graph",
};

int view_by_name(const char *name)
{
	for (int v = 0; v < NR_VIEWS; v++)
		if (!strcmp(view_names[v], name))
			return v;
	return -1;
}

const char *view_name(enum view_kind v)
{
	return v < NR_VIEWS ? view_names[v] : "?";
}

bool thp_parse_spec(const char *spec, unsigned *flags, char *why, size_t whylen)
{
	static const struct { const char *key, *value; unsigned mask, bits; } words[] = {
		{ "enabled", "always", COWVM_CONFIG_THP_ENABLED_MASK, COWVM_CONFIG_THP_ALWAYS },
		{ "enabled", "madvise", COWVM_CONFIG_THP_ENABLED_MASK, COWVM_CONFIG_THP_MADVISE },
		{ "enabled", "never", COWVM_CONFIG_THP_ENABLED_MASK, COWVM_CONFIG_THP_NEVER },
		{ "defrag", "always", COWVM_CONFIG_THP_DEFRAG_MASK, COWVM_CONFIG_THP_DEFRAG_ALWAYS },
		{ "defrag", "defer", COWVM_CONFIG_THP_DEFRAG_MASK, COWVM_CONFIG_THP_DEFRAG_DEFER },
		{ "defrag", "defer+madvise", COWVM_CONFIG_THP_DEFRAG_MASK, COWVM_CONFIG_THP_DEFRAG_DEFER_MADVISE },
		{ "defrag", "madvise", COWVM_CONFIG_THP_DEFRAG_MASK, COWVM_CONFIG_THP_DEFRAG_MADVISE },
		{ "defrag", "never", COWVM_CONFIG_THP_DEFRAG_MASK, COWVM_CONFIG_THP_DEFRAG_NEVER },
		{ "use_zero_page", "1", COWVM_CONFIG_THP_NO_ZERO_PAGE, 0 },
		{ "use_zero_page", "0", COWVM_CONFIG_THP_NO_ZERO_PAGE, COWVM_CONFIG_THP_NO_ZERO_PAGE },
	};
	unsigned out = *flags;
	const char *p = spec;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		bool found = false;
		for (size_t i = 0; eq && i < sizeof words / sizeof words[0]; i++) {
			size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
			if (strlen(words[i].key) == klen && !strncmp(words[i].key, p, klen) &&
			    strlen(words[i].value) == vlen && !strncmp(words[i].value, eq + 1, vlen)) {
				out = (out & ~words[i].mask) | words[i].bits;
				found = true;
				break;
			}
		}
		if (!found) {
			snprintf(why, whylen, "'%.*s': say enabled=always|madvise|never, "
				 "defrag=always|defer|defer+madvise|madvise|never or use_zero_page=0|1",
				 (int)n, p);
			return false;
		}
		p += n + (comma != NULL);
		if (comma && !*p) {
			snprintf(why, whylen, "'%s': a trailing comma", spec);
			return false;
		}
	}
	if (p == spec) {
		snprintf(why, whylen, "an empty setting");
		return false;
	}
	*flags = out;
	return true;
}
