/*
 * swapdev.c - the swap device of a scenario's machine, and the swap-cache state of a page
 * (swapdev.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/swapdev.h"

int swapdev_setup(struct swapdev *sd, const struct scenario *s, struct cowvm_config *cfg)
{
	memset(sd, 0, sizeof *sd);
	if (!s->swap_bytes)
		return 0;
	cfg->swap_bytes = s->swap_bytes;
	if (s->swap_path) {
		snprintf(sd->path, sizeof sd->path, "%s", s->swap_path);
	} else {
		const char *tmp = getenv("TMPDIR");
		if (!tmp || !*tmp || strlen(tmp) > 40)
			tmp = "/tmp";
		snprintf(sd->dir, sizeof sd->dir, "%s/cowvm-swap-XXXXXX", tmp);
		if (!mkdtemp(sd->dir)) {
			int error = errno;
			sd->dir[0] = 0;
			return -error;
		}
		snprintf(sd->path, sizeof sd->path, "%s/swapfile", sd->dir);
	}
	cfg->swap_path = sd->path;
	return 0;
}

void swapdev_release(struct swapdev *sd)
{
	if (sd->dir[0]) {
		unlink(sd->path); /* cowvm_destroy unlinked it already, unless create failed */
		rmdir(sd->dir);
	}
	sd->dir[0] = 0;
}

bool swapdev_parse_spec(char *spec, const char **path, uint64_t *bytes, char *why, size_t whylen)
{
	char *colon = strrchr(spec, ':');
	if (!colon || colon == spec) {
		snprintf(why, whylen, "'%s': say FILE:SIZE with a unit, e.g. /tmp/swap:64M", spec);
		return false;
	}
	const char *size = colon + 1;
	char *end = NULL;
	errno = 0;
	unsigned long long n = strtoull(size, &end, 10);
	uint64_t unit = 0;
	if (end && end != size && size[0] != '-' && !errno) {
		if (!strcmp(end, "B"))
			unit = 1;
		else if (!strcmp(end, "K") || !strcmp(end, "KiB") || !strcmp(end, "k"))
			unit = 1ull << 10;
		else if (!strcmp(end, "M") || !strcmp(end, "MiB"))
			unit = 1ull << 20;
		else if (!strcmp(end, "G") || !strcmp(end, "GiB"))
			unit = 1ull << 30;
	}
	if (!unit) {
		snprintf(why, whylen, "'%s': the size needs a number and a unit (B, K, M or G), e.g. 64M", size);
		return false;
	}
	if (n > (64ull << 30) / unit || n * unit < (8u << 10) || (n * unit) % COWVM_PAGE_SIZE) {
		snprintf(why, whylen, "'%s': a swap device is a multiple of 4 KiB from 8 KiB to 64 GiB", size);
		return false;
	}
	*colon = 0;
	*path = spec;
	*bytes = n * unit;
	return true;
}

bool page_in_swap_cache(cowvm_t *vm, uint64_t word)
{
	struct cowvm_frame_info fi;
	if (word & COWVM_PM_PRESENT)
		return cowvm_frame_info(vm, word & COWVM_PM_PFN_MASK, &fi) == 0 && fi.swapcache;
	if (!(word & COWVM_PM_SWAP))
		return false;
	struct cowvm_swap_info si;
	if (cowvm_swap_info(vm, &si) || !si.swap_cache_pages)
		return false;
	uint64_t offset = (word & COWVM_PM_PFN_MASK) >> 5; /* type | offset << MAX_SWAPFILES_SHIFT */
	struct cowvm_vmstat vs;
	cowvm_vmstat(vm, &vs);
	for (uint64_t pfn = 0; pfn < vs.nr_total_pages; pfn++)
		if (cowvm_frame_info(vm, pfn, &fi) == 0 && fi.swapcache && fi.swap_offset == offset)
			return true;
	return false;
}
