/*
 * host_swap.h - a swap file on the host for `cowvm compare` of scenarios with a `swap` line:
 * made in a mkdtemp directory, given a mkswap header, swapon'ed, and always swapoff'ed and
 * removed again (after the scenario, at exit, and from the handlers of the fatal signals).
 * While it is on, /proc/sys/vm/page-cluster is 0 (no swap readahead: a swap-in reads only the
 * faulting page, as cowvm does) and is restored with it.
 */
#ifndef COWVM_TOOLS_HOST_SWAP_H
#define COWVM_TOOLS_HOST_SWAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Enable a host swap file of `bytes`.  True when it is on; false with the reason in why (not
 * root, swapon refused ...), nothing left behind. */
bool host_swap_on(uint64_t bytes, char *why, size_t whylen);
/* Swap it off and remove it (a no-op when none is on). */
void host_swap_off(void);

#endif /* COWVM_TOOLS_HOST_SWAP_H */
