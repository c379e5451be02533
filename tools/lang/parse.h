/*
 * scenario_parse.h - the parser's state and the helpers its two files share:
 * scenario_parse.c (lines, names, operations) and scenario_parse_expect.c (expect lines).
 * Internal to the parser; the rest of the program uses scenario.h.
 *
 * Every helper that can fail returns false after filling p->err (line and sentence) through
 * parse_fail; the callers stop at the first false.
 */
#ifndef COWVM_TOOLS_SCENARIO_PARSE_H
#define COWVM_TOOLS_SCENARIO_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "lang/scenario.h"
#include "lang/lex.h"

/* TASK_FAILED: the line that made it is followed by `expect error`, so it is not there.  Pins
 * follow the same states (TASK_EXITED: released by unpin). */
enum task_state { TASK_UNBORN, TASK_ALIVE, TASK_EXITED, TASK_FAILED };

struct parser {
	struct scenario *s;
	struct parse_error *err;
	int line;
	struct token_list list;
	int pos;                 /* next token */
	enum task_state *task_state; /* by task id */
	int *task_line;          /* where the task was made or ended */
	int *region_line;        /* where the region was made; -line: that mmap expects to fail */
	uint64_t *region_pages;  /* its size in pages as mmap asked, 0 = not known (heap) */
	enum task_state *pin_state; /* by pin id */
	int *pin_line;           /* where the pin was made or released */
	bool seen_op;            /* an operation other than `memory` came before */
	int last_result_op;      /* index in s->ops of the last operation that can fail, -1 */
	int merge_parent;        /* the parent task of the last `dget P C merge` line, -1 */
};

bool parse_fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* tokens of the current line */
bool parse_at_end(struct parser *p);
struct token *parse_peek(struct parser *p);
const char *parse_peek_word(struct parser *p);   /* NULL at the end or for a quoted token */
bool parse_next_is(struct parser *p, const char *word);
bool take_word(struct parser *p, const char **out, const char *what);
bool parse_expect_end(struct parser *p);         /* nothing may follow */

/* names, checked against the line-by-line state */
bool use_task(struct parser *p, int *out);       /* a task alive here */
bool use_mark(struct parser *p, int *out);
bool use_pin(struct parser *p, int *out);        /* a pin held here */
bool take_pin_ref(struct parser *p, struct pin_ref *ref); /* NAME, NAME[I], either +OFF */

/* locations and data (docs/scenarios.md) */
bool take_location(struct parser *p, struct location *loc);
bool looks_like_location(struct parser *p, const char *w);
bool take_data(struct parser *p, struct data *d);

/* scenario_parse_expect.c: the words after `expect` */
bool parse_expect(struct parser *p, struct op *op);

#endif /* COWVM_TOOLS_SCENARIO_PARSE_H */
