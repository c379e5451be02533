/*
 * swapdev.h - the swap device of a scenario's machine (`swap SIZE`, `cowvm run --swap FILE:SIZE`)
 * and the swap-cache state of a page, shared by the runner and the host comparison.
 */
#ifndef COWVM_TOOLS_RUN_SWAPDEV_H
#define COWVM_TOOLS_RUN_SWAPDEV_H

#include <stdbool.h>
#include <stdint.h>

#include "cowvm.h"
#include "lang/scenario.h"

/* Where a machine's swap file lives: the scenario's own path (--swap), or a file in a temporary
 * directory made for the run and removed by swapdev_release. */
struct swapdev {
	char dir[64];      /* the temporary directory, "" when the path was given */
	char path[4096];
};

/*
 * swapdev_setup - fill cfg->swap_path/swap_bytes for scenario s (nothing when it has no swap).
 * 0, or -errno when the temporary directory cannot be made.  cowvm_create then creates the file
 * (and cowvm_destroy unlinks it); swapdev_release removes the directory after cowvm_destroy.
 */
int swapdev_setup(struct swapdev *sd, const struct scenario *s, struct cowvm_config *cfg);
void swapdev_release(struct swapdev *sd);

/*
 * swapdev_parse_spec - "FILE:SIZE" (SIZE with a unit: 64M, 512K, 1G, 4096B) into path and bytes.
 * False with a sentence in why on a malformed spec (no colon, no unit, not a multiple of 4 KiB,
 * out of 8 KiB .. 64 GiB).  *path points into spec (the part before the last colon, NUL-ended
 * in place).
 */
bool swapdev_parse_spec(char *spec, const char **path, uint64_t *bytes, char *why, size_t whylen);

/* Whether the page a pagemap word names is in the swap cache: a present page with PG_swapcache,
 * or a swap PTE whose slot has a page in the swap cache. */
bool page_in_swap_cache(cowvm_t *vm, uint64_t pagemap_word);

#endif /* COWVM_TOOLS_RUN_SWAPDEV_H */
