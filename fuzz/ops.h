/*
 * ops.h - shorthand for writing operation lists by hand (the sweep's scenarios, the
 * regressions): one macro per operation kind, named after the call.
 */
#ifndef FUZZ_OPS_H
#define FUZZ_OPS_H

#include "driver.h"

#define A 0x40000000ull
#define P(n) ((uint64_t)(n) * 4096)
#define RW (PROT_READ | PROT_WRITE)
#define PRIV (MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
#define SHRD (MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED)

#define SPAWN(s) { .kind = FOP_SPAWN, .slot = (s) }
#define FORK(t, s) { .kind = FOP_FORK, .task = (t), .slot = (s) }
#define THREAD(t, s) { .kind = FOP_THREAD, .task = (t), .slot = (s) }
#define EXIT(t) { .kind = FOP_EXIT, .task = (t) }
#define MMAP(t, a, l, p, f) { .kind = FOP_MMAP, .task = (t), .addr = (a), .len = (l), .arg = (p), .flags = (f) }
#define MUNMAP(t, a, l) { .kind = FOP_MUNMAP, .task = (t), .addr = (a), .len = (l) }
#define MPROTECT(t, a, l, p) { .kind = FOP_MPROTECT, .task = (t), .addr = (a), .len = (l), .arg = (p) }
#define MADVISE(t, a, l, adv) { .kind = FOP_MADVISE, .task = (t), .addr = (a), .len = (l), .arg = (adv) }
#define BRK(t, v) { .kind = FOP_BRK, .task = (t), .addr = (v) }
#define READ(t, a, l) { .kind = FOP_READ, .task = (t), .addr = (a), .len = (l) }
#define WRITE(t, a, l, sd) { .kind = FOP_WRITE, .task = (t), .addr = (a), .len = (l), .seed = (sd) }
#define CFU(t, a, l) { .kind = FOP_COPY_FROM, .task = (t), .addr = (a), .len = (l) }
#define CTU(t, a, l, sd) { .kind = FOP_COPY_TO, .task = (t), .addr = (a), .len = (l), .seed = (sd) }
#define GETU(t, a) { .kind = FOP_GET_USER, .task = (t), .addr = (a), .len = 8 }
#define PUTU(t, a, sd) { .kind = FOP_PUT_USER, .task = (t), .addr = (a), .len = 8, .seed = (sd) }
#define STORE(t, a, sd) { .kind = FOP_STORE64, .task = (t), .addr = (a), .len = 8, .seed = (sd) }
#define LOAD(t, a) { .kind = FOP_LOAD64, .task = (t), .addr = (a), .len = 8 }

#define PIN(t, a, n, fl, ps) { .kind = FOP_PIN, .task = (t), .addr = (a), .len = (n), .arg = (int)(fl), .slot = (ps) }
#define UNPIN(ps) { .kind = FOP_UNPIN, .slot = (ps) }
#define PINREAD(ps, off, l) { .kind = FOP_PIN_IO, .slot = (ps), .addr = (off), .len = (l) }
#define PINWRITE(ps, off, l, sd) { .kind = FOP_PIN_IO, .slot = (ps), .addr = (off), .len = (l), .flags = 1, .seed = (sd) }
#define RREAD(t, a, l) { .kind = FOP_REMOTE, .task = (t), .addr = (a), .len = (l) }
#define RWRITE(t, a, l, sd) { .kind = FOP_REMOTE, .task = (t), .addr = (a), .len = (l), .flags = 1, .seed = (sd) }
/* dput/dget: parent slot p, child slot c, op o (COWVM_COPY ...), parent_addr, child_addr, len */
#define DPUT(p, c, o, pa, ca, l) { .kind = FOP_DPUT, .task = (p), .slot = (c), .arg = (o), .addr = (pa), .seed = (ca), .len = (l) }
#define DGET(p, c, o, pa, ca, l) { .kind = FOP_DGET, .task = (p), .slot = (c), .arg = (o), .addr = (pa), .seed = (ca), .len = (l) }
#define L(...) { __VA_ARGS__ }

/* Copy a list into ops and return its length (inside a builder function). */
#define BUILD(list)                                                        \
	do {                                                               \
		const struct fuzz_op l[] = list;                           \
		memcpy(ops, l, sizeof(l));                                 \
		return sizeof(l) / sizeof(l[0]);                           \
	} while (0)

#endif /* FUZZ_OPS_H */
