/*
 * run.h - the runner: executes a parsed scenario on a fresh machine and records what happened
 * in a step log (log/step_log.h).  It prints nothing: the renderers read the log.
 *
 * The run keeps to three rules:
 *   - an operation that fails must be acknowledged by an `expect error` or `expect result` line
 *     before the next operation, or the run fails: a scenario never fails silently;
 *   - a failed expectation is counted and the run goes on (exit status 1 at the end); bad input
 *     found only at run time (a region whose mmap failed, a page index past a region that brk
 *     shrank) stops the run (exit status 2);
 *   - the machine is always torn down: pins still held are released, every task exits, then the
 *     checker runs again and every frame must be free again (a leak fails the run).
 */
#ifndef COWVM_TOOLS_RUN_RUN_H
#define COWVM_TOOLS_RUN_RUN_H

#include "lang/scenario.h"
#include "log/step_log.h"

#define RUN_OK 0
#define RUN_EXPECTATION_FAILED 1
#define RUN_BAD_INPUT 2

/*
 * run_scenario - run s on a new machine, appending every event to log (which log_init made for
 * s; log->capture says which states to keep), ending with LOG_SUMMARY.  Returns RUN_OK,
 * RUN_EXPECTATION_FAILED or RUN_BAD_INPUT.  Nothing is left behind: every task is ended and the
 * machine destroyed before it returns.
 */
int run_scenario(const struct scenario *s, struct step_log *log);

/* The machine a scenario runs on when its `memory` line does not say. */
#define RUN_DEFAULT_PHYS_BYTES (16ull << 20)

#endif /* COWVM_TOOLS_RUN_RUN_H */
