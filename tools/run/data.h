/*
 * data.h - what a `write` line puts in memory and how a `read` line walks it (run/data.c),
 * shared by the runner and the host comparison (host/compare.c) so that both sides of a
 * comparison move exactly the same bytes the same way.
 */
#ifndef COWVM_TOOLS_RUN_DATA_H
#define COWVM_TOOLS_RUN_DATA_H

#include <stdint.h>

#include "cowvm.h"
#include "lang/scenario.h"

void data_fill_bytes(const struct data *d, uint64_t offset, uint8_t *out, uint64_t n);
int data_write(cowvm_task_t *t, const struct location *loc, const struct data *d, uint64_t start,
	       uint64_t len);
uint8_t *data_bytes(const struct data *d, uint64_t avail, uint64_t max, uint64_t *n);
int read_memory(cowvm_task_t *t, uint64_t addr, uint8_t *buf, uint64_t len);

#endif /* COWVM_TOOLS_RUN_DATA_H */
