/*
 * scenario_data.c - what a `write` line puts in memory and how a `read` line walks it, shared
 * by the runner (scenario_run.c) and the host comparison (compare.c) so both sides of a
 * comparison move exactly the same bytes the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "run/data.h"
#include "cowvm.h"

#define PG COWVM_PAGE_SIZE

/* The bytes a fill puts at [offset, offset + n) of its run. */
void data_fill_bytes(const struct data *d, uint64_t offset, uint8_t *out, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		out[i] = d->bytes[(offset + i) % d->len];
}

/*
 * Write data at the location as task t: a fill covers its count (or len) page by page, as a
 * memset loop would; a byte or string goes at the start, or at the start of every page when
 * the location is a range of pages.  Stops at the first page that faults: its -errno.
 */
int data_write(cowvm_task_t *t, const struct location *loc, const struct data *d, uint64_t start,
	       uint64_t len)
{
	if (d->kind == DATA_FILL) {
		uint64_t total = d->count ? d->count : len, done = 0;
		uint8_t page[PG];
		while (done < total) {
			uint64_t addr = start + done, chunk = PG - (addr & (PG - 1));
			if (chunk > total - done)
				chunk = total - done;
			data_fill_bytes(d, done, page, chunk);
			int ret = cowvm_write(t, addr, page, chunk);
			if (ret)
				return ret;
			done += chunk;
		}
		return 0;
	}
	if (!location_is_range(loc) || loc->size)
		return cowvm_write(t, start, d->bytes, d->len);
	for (uint64_t at = start; at < start + len; at += PG) {
		int ret = cowvm_write(t, at, d->bytes, d->len);
		if (ret)
			return ret;
	}
	return 0;
}

/* The data's bytes in a new buffer (*n of them; a fill of no count covers avail), or NULL. */
uint8_t *data_bytes(const struct data *d, uint64_t avail, uint64_t max, uint64_t *n)
{
	*n = d->kind == DATA_FILL ? (d->count ? d->count : avail) : d->len;
	if (*n > max)
		return NULL;
	uint8_t *buf = malloc(*n ? *n : 1);
	if (!buf)
		return NULL;
	if (d->kind == DATA_FILL)
		data_fill_bytes(d, 0, buf, *n);
	else
		memcpy(buf, d->bytes, *n);
	return buf;
}

/* Read [addr, addr + len) as task t, page by page, into buf (NULL: read and drop). */
int read_memory(cowvm_task_t *t, uint64_t addr, uint8_t *buf, uint64_t len)
{
	uint8_t scratch[PG];
	while (len) {
		uint64_t chunk = PG - (addr & (PG - 1));
		if (chunk > len)
			chunk = len;
		int ret = cowvm_read(t, addr, buf ? buf : scratch, chunk);
		if (ret)
			return ret;
		addr += chunk;
		if (buf)
			buf += chunk;
		len -= chunk;
	}
	return 0;
}
