/*
 * scenario_parse.c - scenario text -> struct scenario (the grammar of docs/scenarios.md).
 *
 * Each line is split into tokens (scenario_lex.c) and handed to the function of its first word.
 * The parser follows the names line by line, as the run will meet them:
 *   - a task is made by spawn, fork or thread and ends at exit; using it outside that span is an
 *     error naming the line that made or ended it;
 *   - a region is made by mmap (or, for `heap`, by the first brk) and stays known to the end;
 *     mmap may not reuse a name, so one name always means one address;
 *   - a mark is made by `mark` and may be made again (later expectations use the newest);
 *   - a pin is made by `pin ... as NAME` and released by `unpin NAME`; the name can be reused
 *     after that, as a task's can after its exit;
 *   - a snapshot is made by `snapshot P as NAME` (again: the newest counts) and stays known to
 *     the end; whether its process still lives when `restore` uses it is the runner's to say.
 * The first malformed line stops the parse: the message names it and says what was expected.
 * `expect` lines have their own grammar, in scenario_parse_expect.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "cowvm.h"
#include "lang/scenario.h"
#include "lang/lex.h"
#include "lang/parse.h"
#include "lang/words.h"

bool parse_fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
	va_end(ap);
	p->err->line = p->line;
	return false;
}

/* ---- tokens -------------------------------------------------------------------------------- */

bool parse_at_end(struct parser *p)
{
	return p->pos >= p->list.count;
}

struct token *parse_peek(struct parser *p)
{
	return parse_at_end(p) ? NULL : &p->list.tokens[p->pos];
}

/* The next token's word, or NULL if there is none or it is a quoted token. */
const char *parse_peek_word(struct parser *p)
{
	struct token *t = parse_peek(p);
	return t && t->kind == TOKEN_WORD ? t->text : NULL;
}

bool parse_next_is(struct parser *p, const char *word)
{
	const char *w = parse_peek_word(p);
	return w && !strcmp(w, word);
}

/* Take the next token as a word; `what` says what was expected, for the message. */
bool take_word(struct parser *p, const char **out, const char *what)
{
	struct token *t = parse_peek(p);
	if (!t)
		return parse_fail(p, "missing %s at the end of the line", what);
	if (t->kind != TOKEN_WORD)
		return parse_fail(p, "expected %s, found a quoted \"%s\"", what, t->text);
	*out = t->text;
	p->pos++;
	return true;
}

bool parse_expect_end(struct parser *p)
{
	struct token *t = parse_peek(p);
	if (t)
		return parse_fail(p, "unexpected '%s' after a complete '%s' line", t->text,
			    p->list.tokens[0].text);
	return true;
}

/* ---- names --------------------------------------------------------------------------------- */

static int find_name(char **names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return i;
	return -1;
}

/* Add name to names (and grow the parallel arrays by one zeroed element).  -1 on ENOMEM. */
static int add_name(char ***names, int *n, const char *name, void **parallel[], size_t sizes[],
		    int nparallel)
{
	char **grown = realloc(*names, (size_t)(*n + 1) * sizeof *grown);
	if (!grown)
		return -1;
	*names = grown;
	for (int i = 0; i < nparallel; i++) {
		void *g = realloc(*parallel[i], (size_t)(*n + 1) * sizes[i]);
		if (!g)
			return -1;
		memset((char *)g + (size_t)*n * sizes[i], 0, sizes[i]);
		*parallel[i] = g;
	}
	if (!(grown[*n] = strdup(name)))
		return -1;
	return (*n)++;
}

static int task_id(struct parser *p, const char *name)
{
	int id = find_name(p->s->task_names, p->s->nr_tasks, name);
	if (id >= 0)
		return id;
	void **parallel[] = { (void **)&p->task_state, (void **)&p->task_line };
	size_t sizes[] = { sizeof *p->task_state, sizeof *p->task_line };
	return add_name(&p->s->task_names, &p->s->nr_tasks, name, parallel, sizes, 2);
}

static int region_id(struct parser *p, const char *name)
{
	int id = find_name(p->s->region_names, p->s->nr_regions, name);
	if (id >= 0)
		return id;
	void **parallel[] = { (void **)&p->region_line, (void **)&p->region_pages };
	size_t sizes[] = { sizeof *p->region_line, sizeof *p->region_pages };
	return add_name(&p->s->region_names, &p->s->nr_regions, name, parallel, sizes, 2);
}

/* A task that must be alive here. */
bool use_task(struct parser *p, int *out)
{
	const char *name = NULL;
	if (!take_word(p, &name, "a process or thread name"))
		return false;
	int id = find_name(p->s->task_names, p->s->nr_tasks, name);
	if (id < 0 || p->task_state[id] == TASK_UNBORN)
		return parse_fail(p, "unknown process '%s' (make it first with spawn, fork or thread)", name);
	if (p->task_state[id] == TASK_EXITED)
		return parse_fail(p, "process '%s' exited at line %d", name, p->task_line[id]);
	if (p->task_state[id] == TASK_FAILED)
		return parse_fail(p, "process '%s' does not exist: line %d expects making it to fail", name,
			    p->task_line[id]);
	*out = id;
	return true;
}

/* A task that this line makes: the name must be free (unused, or its task exited). */
static bool make_task(struct parser *p, int *out)
{
	const char *name = NULL;
	if (!take_word(p, &name, "the new process's name"))
		return false;
	if (!is_identifier(name))
		return parse_fail(p, "'%s' is not a name (letters, digits and _, not starting with a digit)", name);
	int id = task_id(p, name);
	if (id < 0)
		return parse_fail(p, "out of memory");
	if (p->task_state[id] == TASK_ALIVE)
		return parse_fail(p, "process '%s' already exists (made at line %d)", name, p->task_line[id]);
	p->task_state[id] = TASK_ALIVE;
	p->task_line[id] = p->line;
	*out = id;
	return true;
}

static bool use_region_name(struct parser *p, const char *name, int *out)
{
	int id = find_name(p->s->region_names, p->s->nr_regions, name);
	if (id >= 0 && p->region_line[id] < 0)
		return parse_fail(p, "region '%s' does not exist: line %d expects its mmap to fail", name,
			    -p->region_line[id]);
	if (id < 0 || !p->region_line[id]) {
		if (!strcmp(name, "heap"))
			return parse_fail(p, "region 'heap' is used before any brk");
		return parse_fail(p, "unknown region '%s' (make it first with mmap)", name);
	}
	*out = id;
	return true;
}

static int pin_id(struct parser *p, const char *name)
{
	int id = find_name(p->s->pin_names, p->s->nr_pins, name);
	if (id >= 0)
		return id;
	void **parallel[] = { (void **)&p->pin_state, (void **)&p->pin_line };
	size_t sizes[] = { sizeof *p->pin_state, sizeof *p->pin_line };
	return add_name(&p->s->pin_names, &p->s->nr_pins, name, parallel, sizes, 2);
}

/* The pin `name`, which must be held here. */
static bool use_pin_name(struct parser *p, const char *name, int *out)
{
	int id = find_name(p->s->pin_names, p->s->nr_pins, name);
	if (id < 0 || p->pin_state[id] == TASK_UNBORN)
		return parse_fail(p, "unknown pin '%s' (make it first with `pin P LOC ... as %s`)", name, name);
	if (p->pin_state[id] == TASK_EXITED)
		return parse_fail(p, "pin '%s' was released at line %d", name, p->pin_line[id]);
	if (p->pin_state[id] == TASK_FAILED)
		return parse_fail(p, "pin '%s' does not exist: line %d expects taking it to fail", name,
				  p->pin_line[id]);
	*out = id;
	return true;
}

bool use_pin(struct parser *p, int *out)
{
	const char *name = NULL;
	return take_word(p, &name, "a pin's name") && use_pin_name(p, name, out);
}

/* NAME, NAME[I], NAME+OFF, NAME[I]+OFF: a byte in what a pin holds. */
bool take_pin_ref(struct parser *p, struct pin_ref *ref)
{
	const char *w = NULL;
	memset(ref, 0, sizeof *ref);
	if (!take_word(p, &w, "a pin (NAME, NAME[I], NAME+OFFSET)"))
		return false;
	size_t n = 0;
	while (isalnum((unsigned char)w[n]) || w[n] == '_')
		n++;
	char name[128];
	if (n == 0 || n >= sizeof name)
		return parse_fail(p, "bad pin '%s' (expected NAME, NAME[I] or NAME+OFFSET)", w);
	memcpy(name, w, n);
	name[n] = 0;
	if (!use_pin_name(p, name, &ref->pin))
		return false;
	const char *c = w + n;
	if (*c == '[') {
		uint64_t page;
		char *close = strchr(c, ']');
		char inside[32];
		if (!close || (size_t)(close - c - 1) >= sizeof inside)
			return parse_fail(p, "bad page index in '%s' (expected NAME[I])", w);
		memcpy(inside, c + 1, (size_t)(close - c - 1));
		inside[close - c - 1] = 0;
		if (!parse_number(inside, &page) || page > (1ull << 35))
			return parse_fail(p, "bad page index in '%s' (expected NAME[I])", w);
		ref->has_page = true;
		ref->offset = page * COWVM_PAGE_SIZE;
		c = close + 1;
	}
	if (*c == '+') {
		uint64_t off;
		if (!parse_number(c + 1, &off) || off > (1ull << 47))
			return parse_fail(p, "bad offset in '%s' (NAME+N, N decimal or 0x hex)", w);
		ref->offset += off;
		c = "";
	}
	if (*c)
		return parse_fail(p, "bad pin '%s' (expected NAME, NAME[I] or NAME+OFFSET)", w);
	return true;
}

bool use_mark(struct parser *p, int *out)
{
	const char *name = NULL;
	if (!take_word(p, &name, "a mark name"))
		return false;
	int id = find_name(p->s->mark_names, p->s->nr_marks, name);
	if (id < 0)
		return parse_fail(p, "unknown mark '%s' (set it first with `mark %s`)", name, name);
	*out = id;
	return true;
}

/* ---- numbers, sizes, locations, data ---------------------------------------------------------- */

static bool take_number(struct parser *p, uint64_t *out, const char *what)
{
	const char *w = NULL;
	if (!take_word(p, &w, what))
		return false;
	if (!parse_number(w, out))
		return parse_fail(p, "bad number '%s' for %s (decimal, or hex after 0x)", w, what);
	return true;
}

/* NUMBER[unit] or NUMBER unit-word. */
static bool take_size(struct parser *p, uint64_t *out, const char *what)
{
	const char *w = NULL;
	bool had_unit;
	if (!take_word(p, &w, what))
		return false;
	if (!parse_number_with_unit(w, out, &had_unit))
		return parse_fail(p, "bad size '%s' for %s (a number of bytes, or e.g. '4 pages', '16 KiB')", w, what);
	const char *unit = parse_peek_word(p);
	uint64_t mult = !had_unit && unit ? unit_multiplier(unit) : 0;
	if (mult) {
		if (*out && mult > UINT64_MAX / *out)
			return parse_fail(p, "size '%s %s' does not fit in 64 bits", w, unit);
		*out *= mult;
		p->pos++;
	}
	return true;
}

static bool starts_number(const char *w)
{
	return w && isdigit((unsigned char)w[0]);
}

/*
 * REGION, REGION[I], REGION[I..J], with +N or -N after any of them, or an absolute NUMBER.
 * Page indexes are checked against the region's size when mmap gave one.
 */
static bool parse_location_word(struct parser *p, const char *w, struct location *loc)
{
	memset(loc, 0, sizeof *loc);
	loc->region = -1;
	if (isdigit((unsigned char)w[0])) {
		if (!parse_number(w, &loc->address))
			return parse_fail(p, "bad address '%s' (decimal, or hex after 0x)", w);
		return true;
	}
	size_t n = 0;
	while (isalnum((unsigned char)w[n]) || w[n] == '_')
		n++;
	char name[128];
	if (n == 0 || n >= sizeof name)
		return parse_fail(p, "bad location '%s' (expected REGION, REGION[I], REGION[I..J], "
			       "REGION+OFFSET or an address)", w);
	memcpy(name, w, n);
	name[n] = 0;
	if (!use_region_name(p, name, &loc->region))
		return false;
	const char *c = w + n;
	if (*c == '[') {
		const char *close = strchr(c, ']');
		char inside[64];
		if (!close || (size_t)(close - c - 1) >= sizeof inside)
			return parse_fail(p, "bad page range in '%s' (expected [I] or [I..J])", w);
		memcpy(inside, c + 1, (size_t)(close - c - 1));
		inside[close - c - 1] = 0;
		char *dots = strstr(inside, "..");
		if (dots)
			*dots = 0;
		if (!parse_number(inside, &loc->first_page) ||
		    (dots && !parse_number(dots + 2, &loc->last_page)))
			return parse_fail(p, "bad page index in '%s' (expected [I] or [I..J])", w);
		if (!dots)
			loc->last_page = loc->first_page;
		if (loc->last_page < loc->first_page)
			return parse_fail(p, "page range '%s' ends before it starts", w);
		uint64_t pages = p->region_pages[loc->region];
		if (pages && loc->last_page >= pages)
			return parse_fail(p, "region '%s' has %llu page%s: page %llu is past its end", name,
				    (unsigned long long)pages, pages == 1 ? "" : "s",
				    (unsigned long long)loc->last_page);
		loc->has_pages = true;
		c = close + 1;
	}
	if (*c == '+' || *c == '-') {
		uint64_t off;
		if (!parse_number(c + 1, &off) || off > INT64_MAX)
			return parse_fail(p, "bad offset in '%s' (REGION+N or REGION-N, N decimal or 0x hex)", w);
		loc->has_offset = true;
		loc->offset = *c == '-' ? -(int64_t)off : (int64_t)off;
		c = "";
	}
	if (*c)
		return parse_fail(p, "bad location '%s' (expected REGION, REGION[I], REGION[I..J], "
			       "REGION+OFFSET or an address)", w);
	return true;
}

bool take_location(struct parser *p, struct location *loc)
{
	const char *w = NULL;
	return take_word(p, &w, "a location (REGION, REGION[I..J], REGION+OFFSET or an address)") &&
	       parse_location_word(p, w, loc);
}

/* Whether w would be read as a location: a number, or a defined region's name with an
 * optional [..] or +/- after it. */
bool looks_like_location(struct parser *p, const char *w)
{
	if (!w)
		return false;
	if (starts_number(w))
		return true;
	char name[128];
	size_t n = strcspn(w, "[+-");
	if (n == 0 || n >= sizeof name)
		return false;
	memcpy(name, w, n);
	name[n] = 0;
	int id = find_name(p->s->region_names, p->s->nr_regions, name);
	return id >= 0 && p->region_line[id] > 0;
}

static bool set_bytes(struct parser *p, struct data *d, const uint8_t *bytes, size_t len)
{
	d->bytes = malloc(len ? len : 1);
	if (!d->bytes)
		return parse_fail(p, "out of memory");
	memcpy(d->bytes, bytes, len);
	d->len = len;
	return true;
}

/* One value: a byte number, 'c' or "string". */
static bool take_value_bytes(struct parser *p, struct data *d, const char *what)
{
	struct token *t = parse_peek(p);
	if (!t)
		return parse_fail(p, "missing %s at the end of the line", what);
	p->pos++;
	if (t->kind != TOKEN_WORD)
		return set_bytes(p, d, t->bytes, t->len);
	uint64_t v;
	if (!parse_number(t->text, &v))
		return parse_fail(p, "bad %s '%s' (a byte 0..255, 'c', \"string\" or fill ...)", what, t->text);
	if (v > 255)
		return parse_fail(p, "%llu does not fit in a byte (use a string, or put_user for 8 bytes)",
			    (unsigned long long)v);
	uint8_t b = (uint8_t)v;
	return set_bytes(p, d, &b, 1);
}

/* DATA := BYTE | 'c' | "string" | fill VALUE [COUNT] */
bool take_data(struct parser *p, struct data *d)
{
	memset(d, 0, sizeof *d);
	d->kind = DATA_BYTES;
	if (parse_next_is(p, "fill")) {
		p->pos++;
		d->kind = DATA_FILL;
		if (!take_value_bytes(p, d, "fill value"))
			return false;
		if (d->len == 0)
			return parse_fail(p, "fill needs at least one byte");
		if (starts_number(parse_peek_word(p)))
			return take_size(p, &d->count, "the fill's length");
		return true;
	}
	return take_value_bytes(p, d, "data");
}

/* After a location, the optional explicit SIZE: the tokens from here up to (not including) the
 * last `keep` tokens. */
static bool take_optional_length(struct parser *p, struct location *loc, int keep)
{
	if (p->list.count - p->pos > keep) {
		if (!take_size(p, &loc->size, "the length"))
			return false;
		if (loc->size == 0)
			return parse_fail(p, "a length of 0 bytes");
	}
	if (!loc->size && !location_is_range(loc))
		return parse_fail(p, "'%s' needs a length: give a region or REGION[I..J], or add a size",
			    p->list.tokens[0].text);
	return true;
}

/* ---- operations ------------------------------------------------------------------------------ */

static bool parse_memory(struct parser *p, struct op *op)
{
	if (p->seen_op)
		return parse_fail(p, "'memory' must come before every other operation");
	if (!take_size(p, &op->size, "the memory size"))
		return false;
	if (op->size % COWVM_PAGE_SIZE || op->size < (64u << 10) || op->size > (1ull << 40))
		return parse_fail(p, "memory must be a multiple of 4 KiB from 64 KiB to 1 TiB");
	p->s->phys_bytes = op->size;
	return parse_expect_end(p);
}

static bool parse_spawn(struct parser *p, struct op *op)
{
	return make_task(p, &op->new_task) && parse_expect_end(p);
}

/* fork P Q, thread P T (an optional `as` between them) */
static bool parse_fork_or_thread(struct parser *p, struct op *op)
{
	if (!use_task(p, &op->task))
		return false;
	if (parse_next_is(p, "as"))
		p->pos++;
	return make_task(p, &op->new_task) && parse_expect_end(p);
}

static bool parse_exit(struct parser *p, struct op *op)
{
	if (!use_task(p, &op->task) || !parse_expect_end(p))
		return false;
	p->task_state[op->task] = TASK_EXITED;
	p->task_line[op->task] = p->line;
	return true;
}

/* mmap P R SIZE [PROT] [private|shared] [at ADDR [noreplace]] [hint ADDR] [populate] [noreserve] */
static bool parse_mmap(struct parser *p, struct op *op)
{
	const char *name = NULL;
	if (!use_task(p, &op->task) || !take_word(p, &name, "the region's name"))
		return false;
	if (!is_identifier(name))
		return parse_fail(p, "'%s' is not a name (letters, digits and _, not starting with a digit)", name);
	if (!strcmp(name, "heap"))
		return parse_fail(p, "'heap' is the name of the brk region; choose another");
	int id = find_name(p->s->region_names, p->s->nr_regions, name);
	if (id >= 0 && p->region_line[id] > 0)
		return parse_fail(p, "region '%s' is already defined at line %d", name, p->region_line[id]);
	if (!take_size(p, &op->size, "the mapping's size"))
		return false;
	op->prot = PROT_READ | PROT_WRITE;
	op->flags = MAP_PRIVATE | MAP_ANONYMOUS;
	bool type_given = false, prot_given = false;
	while (!parse_at_end(p)) {
		const char *w = NULL;
		if (!take_word(p, &w, "an mmap option"))
			return false;
		if (!strcmp(w, "private") || !strcmp(w, "shared")) {
			if (type_given)
				return parse_fail(p, "mmap takes one of private or shared");
			type_given = true;
			op->flags = (op->flags & ~(MAP_PRIVATE | MAP_SHARED)) |
				    (w[0] == 'p' ? MAP_PRIVATE : MAP_SHARED);
		} else if (!strcmp(w, "at") || !strcmp(w, "hint")) {
			if (!take_number(p, &op->address, "the address"))
				return false;
			if (w[0] == 'a')
				op->flags |= MAP_FIXED;
		} else if (!strcmp(w, "noreplace")) {
			op->flags = (op->flags & ~MAP_FIXED) | MAP_FIXED_NOREPLACE;
		} else if (!strcmp(w, "populate")) {
			op->flags |= MAP_POPULATE;
		} else if (!strcmp(w, "noreserve")) {
			op->flags |= MAP_NORESERVE;
		} else if (!strcmp(w, "growsdown")) {
			op->flags |= MAP_GROWSDOWN;
		} else if (!strcmp(w, "locked")) {
			op->flags |= MAP_LOCKED;
		} else if (prot_by_name(w) >= 0 && !prot_given) {
			op->prot = prot_by_name(w);
			prot_given = true;
		} else {
			return parse_fail(p, "unknown mmap option '%s' (expected a protection such as rw, "
				       "private, shared, at ADDR, hint ADDR, noreplace, populate, noreserve, "
				       "growsdown, locked)", w);
		}
	}
	if ((op->flags & MAP_FIXED_NOREPLACE) && !op->address)
		return parse_fail(p, "noreplace goes with 'at ADDR'");
	if ((op->flags & MAP_FIXED_NOREPLACE) && (op->flags & MAP_FIXED))
		op->flags &= ~MAP_FIXED;
	if ((id = region_id(p, name)) < 0)
		return parse_fail(p, "out of memory");
	p->region_line[id] = p->line;
	p->region_pages[id] = (op->size + COWVM_PAGE_SIZE - 1) / COWVM_PAGE_SIZE;
	op->region = id;
	return true;
}

static bool parse_munmap(struct parser *p, struct op *op)
{
	return use_task(p, &op->task) && take_location(p, &op->loc) &&
	       take_optional_length(p, &op->loc, 0);
}

static bool parse_mprotect(struct parser *p, struct op *op)
{
	const char *w = NULL;
	uint64_t raw;
	int keep = 1;
	const struct token *last = &p->list.tokens[p->list.count - 1];
	bool grows = last->kind == TOKEN_WORD && (!strcmp(last->text, "growsdown") || !strcmp(last->text, "growsup"));
	if (grows)
		keep = 2;
	if (!use_task(p, &op->task) || !take_location(p, &op->loc) ||
	    !take_optional_length(p, &op->loc, keep) || !take_word(p, &w, "a protection (none, r, rw, rwx ...)"))
		return false;
	if ((op->prot = prot_by_name(w)) < 0) {
		if (!parse_number(w, &raw) || raw > INT32_MAX)
			return parse_fail(p, "unknown protection '%s' (none, or letters of rwx such as r, rw, r-x)", w);
		op->prot = (int)raw;
	}
	if (grows) {
		take_word(p, &w, "growsdown or growsup");
		op->prot |= w[5] == 'd' ? PROT_GROWSDOWN : PROT_GROWSUP;
	}
	return parse_expect_end(p);
}

static bool parse_madvise(struct parser *p, struct op *op)
{
	const char *w = NULL;
	uint64_t raw;
	if (!use_task(p, &op->task) || !take_location(p, &op->loc) ||
	    !take_optional_length(p, &op->loc, 1) || !take_word(p, &w, "an advice (dontneed, dontfork ...)"))
		return false;
	if ((op->advice = advice_by_name(w)) < 0) {
		if (!parse_number(w, &raw) || raw > INT32_MAX)
			return parse_fail(p, "unknown advice '%s' (normal, random, sequential, willneed, dontneed, "
				       "free, dontfork, dofork, wipeonfork, keeponfork, hugepage, nohugepage)", w);
		op->advice = (int)raw;
	}
	return parse_expect_end(p);
}

/* ---- swap (issue 12) -------------------------------------------------------------------------- */

/* swap SIZE: the machine gets a swap device of SIZE bytes (a file the runner makes). */
static bool parse_swap(struct parser *p, struct op *op)
{
	if (p->seen_op)
		return parse_fail(p, "'swap' must come before every operation but 'memory'");
	if (!take_size(p, &op->size, "the swap size"))
		return false;
	if (op->size % COWVM_PAGE_SIZE || op->size < (8u << 10) || op->size > (64ull << 30))
		return parse_fail(p, "swap must be a multiple of 4 KiB from 8 KiB to 64 GiB");
	p->s->swap_bytes = op->size;
	return parse_expect_end(p);
}

/* pageout P LOC [SIZE], cold P LOC [SIZE]: madvise(MADV_PAGEOUT / MADV_COLD) in other words. */
static bool parse_pageout_or_cold(struct parser *p, struct op *op)
{
	op->kind = OP_MADVISE;
	op->advice = !strcmp(p->list.tokens[0].text, "pageout") ? 21 /* MADV_PAGEOUT */ : 20 /* MADV_COLD */;
	return use_task(p, &op->task) && take_location(p, &op->loc) &&
	       take_optional_length(p, &op->loc, 0) && parse_expect_end(p);
}

/* brk P SIZE | +SIZE | -SIZE  (the heap's size, or a change of it) */
static bool parse_brk(struct parser *p, struct op *op)
{
	if (!use_task(p, &op->task))
		return false;
	struct token *t = parse_peek(p);
	if (t && t->kind == TOKEN_WORD && (t->text[0] == '+' || t->text[0] == '-')) {
		op->brk_sign = t->text[0] == '+' ? 1 : -1;
		if (t->text[1] == 0) {
			p->pos++;
		} else {
			memmove(t->text, t->text + 1, strlen(t->text));
		}
	}
	if (!take_size(p, &op->size, "the heap size") || !parse_expect_end(p))
		return false;
	int id = region_id(p, "heap");
	if (id < 0)
		return parse_fail(p, "out of memory");
	if (p->region_line[id] <= 0)
		p->region_line[id] = p->line;
	p->s->heap_region = id;
	return true;
}

/* read P LOC [COUNT] */
static bool parse_read(struct parser *p, struct op *op)
{
	if (!use_task(p, &op->task) || !take_location(p, &op->loc))
		return false;
	if (!parse_at_end(p) && !take_size(p, &op->size, "the byte count"))
		return false;
	return parse_expect_end(p);
}

/* write P LOC DATA, copy_to_user P LOC DATA */
static bool parse_write(struct parser *p, struct op *op)
{
	if (!use_task(p, &op->task) || !take_location(p, &op->loc) || !take_data(p, &op->data))
		return false;
	if (op->data.kind == DATA_FILL && !op->data.count && !location_is_range(&op->loc))
		return parse_fail(p, "fill needs a range (REGION or REGION[I..J]) or a length after the value");
	return parse_expect_end(p);
}

static bool parse_copy_from_user(struct parser *p, struct op *op)
{
	return use_task(p, &op->task) && take_location(p, &op->loc) &&
	       take_size(p, &op->size, "the byte count") && parse_expect_end(p);
}

static bool parse_get_user(struct parser *p, struct op *op)
{
	return use_task(p, &op->task) && take_location(p, &op->loc) && parse_expect_end(p);
}

static bool parse_put_user(struct parser *p, struct op *op)
{
	return use_task(p, &op->task) && take_location(p, &op->loc) &&
	       take_number(p, &op->value, "the 8-byte value") && parse_expect_end(p);
}

/* pin P LOC [COUNT [page|pages]] [get|pin] [write] [longterm] [fast] as NAME */
static bool parse_pin(struct parser *p, struct op *op)
{
	static const struct {
		const char *word;
		unsigned flag;
	} flags[] = {
		{ "get", COWVM_FOLL_GET }, { "pin", COWVM_FOLL_PIN }, { "write", COWVM_FOLL_WRITE },
		{ "longterm", COWVM_FOLL_LONGTERM }, { "fast", COWVM_FOLL_FAST },
	};
	if (!use_task(p, &op->task) || !take_location(p, &op->loc))
		return false;
	if (starts_number(parse_peek_word(p))) {
		if (!take_number(p, &op->size, "the number of pages"))
			return false;
		if (parse_next_is(p, "page") || parse_next_is(p, "pages"))
			p->pos++;
		if (op->size == 0)
			return parse_fail(p, "a pin of 0 pages");
	}
	const char *w = NULL;
	for (;;) {
		if (!take_word(p, &w, "'as NAME' (and before it get, pin, write, longterm, fast)"))
			return false;
		if (!strcmp(w, "as"))
			break;
		size_t i;
		for (i = 0; i < sizeof flags / sizeof flags[0]; i++)
			if (!strcmp(w, flags[i].word))
				break;
		if (i == sizeof flags / sizeof flags[0])
			return parse_fail(p, "unknown pin flag '%s' (get, pin, write, longterm, fast, then "
				       "'as NAME')", w);
		if (op->foll & flags[i].flag)
			return parse_fail(p, "pin flag '%s' given twice", w);
		op->foll |= flags[i].flag;
	}
	if (!take_word(p, &w, "the pin's name after 'as'"))
		return false;
	if (!is_identifier(w))
		return parse_fail(p, "'%s' is not a name (letters, digits and _, not starting with a digit)", w);
	int id = pin_id(p, w);
	if (id < 0)
		return parse_fail(p, "out of memory");
	if (p->pin_state[id] == TASK_ALIVE)
		return parse_fail(p, "pin '%s' is already held (taken at line %d)", w, p->pin_line[id]);
	p->pin_state[id] = TASK_ALIVE;
	p->pin_line[id] = p->line;
	op->pin = id;
	return parse_expect_end(p);
}

static bool parse_unpin(struct parser *p, struct op *op)
{
	if (!use_pin(p, &op->pin) || !parse_expect_end(p))
		return false;
	p->pin_state[op->pin] = TASK_EXITED;
	p->pin_line[op->pin] = p->line;
	return true;
}

/* snapshot P as NAME: take (or take again) snapshot NAME of P's process */
static bool parse_snapshot(struct parser *p, struct op *op)
{
	const char *w = NULL;
	if (!use_task(p, &op->task))
		return false;
	if (!parse_next_is(p, "as"))
		return parse_fail(p, "expected 'as NAME' after the process (snapshot P as NAME)");
	p->pos++;
	if (!take_word(p, &w, "the snapshot's name after 'as'"))
		return false;
	if (!is_identifier(w))
		return parse_fail(p, "'%s' is not a name (letters, digits and _, not starting with a digit)", w);
	op->snapshot = find_name(p->s->snapshot_names, p->s->nr_snapshots, w);
	if (op->snapshot < 0)
		op->snapshot = add_name(&p->s->snapshot_names, &p->s->nr_snapshots, w, NULL, NULL, 0);
	if (op->snapshot < 0)
		return parse_fail(p, "out of memory");
	return parse_expect_end(p);
}

/* restore P NAME: P's process goes back to snapshot NAME */
static bool parse_restore(struct parser *p, struct op *op)
{
	const char *w = NULL;
	if (!use_task(p, &op->task) || !take_word(p, &w, "the snapshot's name (restore P NAME)"))
		return false;
	op->snapshot = find_name(p->s->snapshot_names, p->s->nr_snapshots, w);
	if (op->snapshot < 0)
		return parse_fail(p, "unknown snapshot '%s' (take it first with `snapshot P as %s`)", w, w);
	return parse_expect_end(p);
}

/* pin_write NAME[+OFF] DATA */
static bool parse_pin_write(struct parser *p, struct op *op)
{
	return take_pin_ref(p, &op->pin_ref) && take_data(p, &op->data) && parse_expect_end(p);
}

/* clear_refs P WHAT: 1..5 or all, anon, mapped, soft_dirty, peak_rss (any number is passed on) */
static bool parse_clear_refs(struct parser *p, struct op *op)
{
	static const char *const names[] = { "all", "anon", "mapped", "soft_dirty", "peak_rss" };
	const char *w = NULL;
	if (!use_task(p, &op->task) ||
	    !take_word(p, &w, "what to clear (4 or soft_dirty; 1 all, 2 anon, 3 mapped, 5 peak_rss)"))
		return false;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(w, names[i])) {
			op->value = i + 1;
			return parse_expect_end(p);
		}
	if (!parse_number(w, &op->value) || op->value > INT32_MAX)
		return parse_fail(p, "bad clear_refs value '%s' (1 all, 2 anon, 3 mapped, 4 soft_dirty, "
			       "5 peak_rss)", w);
	return parse_expect_end(p);
}

static bool parse_fail_alloc(struct parser *p, struct op *op)
{
	const char *w = NULL;
	if (!take_word(p, &w, "next, after N, nth N, cap N or off"))
		return false;
	if (!strcmp(w, "next") || !strcmp(w, "off")) {
		op->mode = w[0] == 'n' ? COWVM_FAIL_NEXT : COWVM_FAIL_OFF;
		return parse_expect_end(p);
	}
	if (!strcmp(w, "after"))
		op->mode = COWVM_FAIL_AFTER;
	else if (!strcmp(w, "nth"))
		op->mode = COWVM_FAIL_NTH;
	else if (!strcmp(w, "cap"))
		op->mode = COWVM_FAIL_CAP;
	else
		return parse_fail(p, "unknown fail_alloc mode '%s' (next, after N, nth N, cap N, off)", w);
	return take_number(p, &op->value, "the count") && parse_expect_end(p);
}

static bool parse_mark(struct parser *p, struct op *op)
{
	const char *name = NULL;
	if (!take_word(p, &name, "the mark's name"))
		return false;
	if (!is_identifier(name))
		return parse_fail(p, "'%s' is not a name (letters, digits and _, not starting with a digit)", name);
	int id = find_name(p->s->mark_names, p->s->nr_marks, name);
	if (id < 0 && (id = add_name(&p->s->mark_names, &p->s->nr_marks, name, NULL, NULL, 0)) < 0)
		return parse_fail(p, "out of memory");
	op->mark = id;
	return parse_expect_end(p);
}

static bool parse_check(struct parser *p, struct op *op)
{
	(void)op;
	return parse_expect_end(p);
}

/* show VIEW [P [LOC [SIZE]]] */
static bool parse_show(struct parser *p, struct op *op)
{
	const char *w = NULL;
	if (!take_word(p, &w, "a view (maps, ptes, smaps, smaps_rollup, pagemap, status, vmstat, "
			      "frames, graph)"))
		return false;
	int v = view_by_name(w);
	if (v < 0)
		return parse_fail(p, "unknown view '%s' (maps, ptes, smaps, smaps_rollup, pagemap, status, "
			       "vmstat, frames, graph)", w);
	op->view = (enum view_kind)v;
	op->task = -1;
	if (parse_at_end(p))
		return true;
	if (op->view == VIEW_VMSTAT || op->view == VIEW_GRAPH)
		return parse_fail(p, "'show %s' takes no process: it shows the whole machine", w);
	if (!use_task(p, &op->task))
		return false;
	if (parse_at_end(p))
		return true;
	if (op->view == VIEW_MAPS || op->view == VIEW_STATUS || op->view == VIEW_SMAPS_ROLLUP)
		return parse_fail(p, "'show %s' takes a process but no location", w);
	op->has_loc = true;
	if (!take_location(p, &op->loc))
		return false;
	if (!parse_at_end(p) && !take_optional_length(p, &op->loc, 0))
		return false;
	if (!op->loc.size && !location_is_range(&op->loc))
		op->loc.size = 1;
	return parse_expect_end(p);
}

/*
 * dput P C copy PLOC CLOC [SIZE]      dget P C copy PLOC CLOC [SIZE]
 * dput P C zero CLOC [SIZE]           dget P C zero PLOC [SIZE]
 * dput P C snap                       dget P C merge PLOC CLOC [SIZE]
 * Without SIZE the source's location (copy: dput's PLOC, dget's CLOC; merge: CLOC; zero: its
 * only one) must be a range, whose length is taken.
 */
static bool parse_dput(struct parser *p, struct op *op)
{
	bool get = op->kind == OP_DGET;
	const char *call = get ? "dget" : "dput", *w = NULL;
	const char *ops = get ? "copy, zero or merge" : "copy, zero or snap";
	if (!use_task(p, &op->task) || !use_task(p, &op->child) ||
	    !take_word(p, &w, get ? "an operation (copy, zero, merge)" : "an operation (copy, zero, snap)"))
		return false;
	op->dop = dput_op_by_name(w);
	if (op->dop < 0)
		return parse_fail(p, "unknown %s operation '%s' (%s)", call, w, ops);
	if (op->dop == (get ? COWVM_SNAP : COWVM_MERGE))
		return parse_fail(p, "%s does not %s (it takes %s; %s is %s's)", call, w, ops, w,
				  get ? "dput" : "dget");
	if (op->dop == COWVM_SNAP)
		return parse_expect_end(p);
	const struct location *source;
	if (op->dop == COWVM_ZERO) {
		struct location *loc = get ? &op->loc : &op->child_loc;
		if (!take_location(p, loc))
			return false;
		source = loc;
	} else {
		if (!take_location(p, &op->loc) || !take_location(p, &op->child_loc))
			return false;
		source = op->dop == COWVM_COPY && !get ? &op->loc : &op->child_loc;
	}
	if (!parse_at_end(p)) {
		if (!take_size(p, &op->size, "the length"))
			return false;
		if (op->size == 0)
			return parse_fail(p, "a length of 0 bytes");
	} else if (!location_is_range(source)) {
		return parse_fail(p, "'%s %s' needs a length: give the %s a range (REGION or REGION[I..J]), "
				  "or add a size", call, w, source == &op->loc ? "parent's location" :
				  "child's location");
	}
	if (op->dop == COWVM_MERGE)
		p->merge_parent = op->task;
	return parse_expect_end(p);
}

/* ---- issue 16: mremap, the mlock family, process_madvise, limits and capabilities ----------- */

/* The tokens of a range call (LOC [SIZE]) end `keep` tokens before the end of the line. */
static bool take_range(struct parser *p, struct location *loc, int keep)
{
	return take_location(p, loc) && take_optional_length(p, loc, keep);
}

/* mremap P LOC [OLDSIZE] NEWSIZE [maymove] [fixed LOC] [dontunmap] [flags N] [as R]
 * (fixed takes a location: an address, or where a region or a page of it is) */
static bool parse_mremap(struct parser *p, struct op *op)
{
	uint64_t first;
	if (!use_task(p, &op->task) || !take_location(p, &op->loc) ||
	    !take_size(p, &first, "the new size (or the old size, then the new one)"))
		return false;
	if (starts_number(parse_peek_word(p))) {
		op->has_old_size = true;
		op->old_size = first;
		if (!take_size(p, &op->size, "the new size"))
			return false;
	} else {
		op->size = first;
		if (!location_is_range(&op->loc))
			return parse_fail(p, "mremap of a single address needs the old size before the new one");
	}
	const char *w = NULL, *name = NULL;
	while (!parse_at_end(p)) {
		uint64_t raw;
		if (!take_word(p, &w, "an mremap option"))
			return false;
		if (!strcmp(w, "maymove")) {
			op->flags |= MREMAP_MAYMOVE;
		} else if (!strcmp(w, "fixed")) {
			op->flags |= MREMAP_FIXED;
			if (!take_location(p, &op->child_loc))
				return false;
		} else if (!strcmp(w, "dontunmap")) {
			op->flags |= MREMAP_DONTUNMAP;
		} else if (!strcmp(w, "flags")) {
			if (!take_number(p, &raw, "the flags") || raw > INT32_MAX)
				return parse_fail(p, "bad mremap flags");
			op->flags |= (int)raw;
		} else if (!strcmp(w, "as")) {
			if (!take_word(p, &name, "the new region's name after 'as'"))
				return false;
		} else {
			return parse_fail(p, "unknown mremap option '%s' (maymove, fixed LOC, dontunmap, "
					  "flags N, as REGION)", w);
		}
	}
	if (!name) {
		/* the region follows the mapping: its size is known at run time only */
		if (location_is_range(&op->loc) && !op->loc.has_pages)
			p->region_pages[op->loc.region] = 0;
		return true;
	}
	if (!is_identifier(name) || !strcmp(name, "heap"))
		return parse_fail(p, "'%s' is not a name for a region", name);
	int id = find_name(p->s->region_names, p->s->nr_regions, name);
	if (id >= 0 && p->region_line[id] > 0)
		return parse_fail(p, "region '%s' is already defined at line %d", name, p->region_line[id]);
	if ((id = region_id(p, name)) < 0)
		return parse_fail(p, "out of memory");
	p->region_line[id] = p->line;
	p->region_pages[id] = (op->size + COWVM_PAGE_SIZE - 1) / COWVM_PAGE_SIZE;
	op->new_region = id;
	return true;
}

/* mlock P LOC [SIZE], munlock P LOC [SIZE] */
static bool parse_mlock(struct parser *p, struct op *op)
{
	return use_task(p, &op->task) && take_range(p, &op->loc, 0);
}

/* mlock2 P LOC [SIZE] [onfault | flags N] */
static bool parse_mlock2(struct parser *p, struct op *op)
{
	int keep = 0;
	const struct token *last = &p->list.tokens[p->list.count - 1];
	if (last->kind == TOKEN_WORD && !strcmp(last->text, "onfault"))
		keep = 1;
	else if (p->list.count >= 2 && !strcmp(p->list.tokens[p->list.count - 2].text, "flags"))
		keep = 2;
	if (!use_task(p, &op->task) || !take_range(p, &op->loc, keep))
		return false;
	if (keep == 1) {
		p->pos++;
		op->flags = MLOCK_ONFAULT;
	} else if (keep == 2) {
		uint64_t raw;
		p->pos++;
		if (!take_number(p, &raw, "the flags") || raw > UINT32_MAX)
			return parse_fail(p, "bad mlock2 flags");
		op->flags = (int)raw;
	}
	return parse_expect_end(p);
}

/* mlockall P (current | future | onfault)... | mlockall P N */
static bool parse_mlockall(struct parser *p, struct op *op)
{
	if (!use_task(p, &op->task))
		return false;
	if (parse_at_end(p))
		return parse_fail(p, "mlockall needs current, future and/or onfault (or a number)");
	while (!parse_at_end(p)) {
		const char *w = NULL;
		uint64_t raw;
		take_word(p, &w, "current, future or onfault");
		if (!strcmp(w, "current"))
			op->flags |= MCL_CURRENT;
		else if (!strcmp(w, "future"))
			op->flags |= MCL_FUTURE;
		else if (!strcmp(w, "onfault"))
			op->flags |= MCL_ONFAULT;
		else if (parse_number(w, &raw) && raw <= INT32_MAX)
			op->flags |= (int)raw;
		else
			return parse_fail(p, "unknown mlockall flag '%s' (current, future, onfault, or a number)", w);
	}
	return true;
}

static bool parse_munlockall(struct parser *p, struct op *op)
{
	return use_task(p, &op->task) && parse_expect_end(p);
}

/* process_madvise P Q LOC [SIZE] ADVICE [flags N]: P advises Q's memory (Q may be P) */
static bool parse_process_madvise(struct parser *p, struct op *op)
{
	int keep = 1;
	if (p->list.count >= 2 && !strcmp(p->list.tokens[p->list.count - 2].text, "flags"))
		keep = 3;
	const char *w = NULL;
	uint64_t raw;
	if (!use_task(p, &op->task) || !use_task(p, &op->child) || !take_range(p, &op->loc, keep) ||
	    !take_word(p, &w, "an advice (willneed, cold, pageout ...)"))
		return false;
	if ((op->advice = advice_by_name(w)) < 0) {
		if (!parse_number(w, &raw) || raw > INT32_MAX)
			return parse_fail(p, "unknown advice '%s'", w);
		op->advice = (int)raw;
	}
	if (keep == 3) {
		p->pos++;
		if (!take_number(p, &raw, "the flags") || raw > UINT32_MAX)
			return parse_fail(p, "bad process_madvise flags");
		op->flags = (int)raw;
	}
	return parse_expect_end(p);
}

static bool take_limit(struct parser *p, uint64_t *out, const char *what)
{
	if (parse_next_is(p, "unlimited") || parse_next_is(p, "infinity")) {
		p->pos++;
		*out = RLIM_INFINITY;
		return true;
	}
	return take_size(p, out, what);
}

/* rlimit P memlock|stack CUR [MAX] (sizes, or unlimited); without MAX the hard limit stays */
static bool parse_rlimit(struct parser *p, struct op *op)
{
	const char *w = NULL;
	if (!use_task(p, &op->task) || !take_word(p, &w, "a resource (memlock, stack)"))
		return false;
	if (!strcasecmp(w, "memlock") || !strcasecmp(w, "RLIMIT_MEMLOCK"))
		op->mode = RLIMIT_MEMLOCK;
	else if (!strcasecmp(w, "stack") || !strcasecmp(w, "RLIMIT_STACK"))
		op->mode = RLIMIT_STACK;
	else
		return parse_fail(p, "unknown resource '%s' (memlock, stack)", w);
	if (!take_limit(p, &op->value, "the soft limit"))
		return false;
	if (!parse_at_end(p)) {
		op->has_old_size = true;
		if (!take_limit(p, &op->old_size, "the hard limit"))
			return false;
	}
	return parse_expect_end(p);
}

/* caps P none | CAP... (ipc_lock sys_rawio sys_ptrace sys_nice sys_resource, or CAP_IPC_LOCK) */
static bool parse_caps(struct parser *p, struct op *op)
{
	static const struct {
		const char *name;
		uint64_t cap;
	} caps[] = {
		{ "ipc_lock", COWVM_CAP_IPC_LOCK }, { "sys_rawio", COWVM_CAP_SYS_RAWIO },
		{ "sys_ptrace", COWVM_CAP_SYS_PTRACE }, { "sys_nice", COWVM_CAP_SYS_NICE },
		{ "sys_resource", COWVM_CAP_SYS_RESOURCE },
	};
	if (!use_task(p, &op->task))
		return false;
	if (parse_at_end(p))
		return parse_fail(p, "caps needs 'none' or capability names (ipc_lock, sys_nice ...)");
	while (!parse_at_end(p)) {
		const char *w = NULL;
		take_word(p, &w, "a capability");
		if (!strcmp(w, "none"))
			continue;
		if (!strncasecmp(w, "CAP_", 4))
			w += 4;
		size_t i;
		for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
			if (!strcasecmp(w, caps[i].name))
				break;
		if (i == sizeof caps / sizeof caps[0])
			return parse_fail(p, "unknown capability '%s' (none, ipc_lock, sys_rawio, sys_ptrace, "
					  "sys_nice, sys_resource)", w);
		op->value |= caps[i].cap;
	}
	return true;
}

/* ---- lines ----------------------------------------------------------------------------------- */

/*
 * The commands of the language, one entry each: the word, the kind, whether the line has a
 * result that can fail (CMD_RESULT), and its parser.  A new command is an entry here (and an
 * enum op_kind value), a parse_ function above, and a run_ function in run/run.c's table
 * (tools/README.md, "Adding a command").
 */
#define CMD_RESULT 0x1u
#define CMD_ALIAS 0x2u  /* another word for a kind an earlier entry names (op_name skips it) */
static const struct command {
	const char *name;
	enum op_kind kind;
	unsigned flags;
	bool (*parse)(struct parser *, struct op *);
} commands[] = {
	{ "memory", OP_MEMORY, 0, parse_memory },
	{ "spawn", OP_SPAWN, CMD_RESULT, parse_spawn },
	{ "fork", OP_FORK, CMD_RESULT, parse_fork_or_thread },
	{ "thread", OP_THREAD, CMD_RESULT, parse_fork_or_thread },
	{ "exit", OP_EXIT, CMD_RESULT, parse_exit },
	{ "mmap", OP_MMAP, CMD_RESULT, parse_mmap },
	{ "munmap", OP_MUNMAP, CMD_RESULT, parse_munmap },
	{ "mprotect", OP_MPROTECT, CMD_RESULT, parse_mprotect },
	{ "madvise", OP_MADVISE, CMD_RESULT, parse_madvise },
	{ "pageout", OP_MADVISE, CMD_RESULT | CMD_ALIAS, parse_pageout_or_cold },
	{ "cold", OP_MADVISE, CMD_RESULT | CMD_ALIAS, parse_pageout_or_cold },
	{ "swap", OP_SWAP, 0, parse_swap },
	{ "brk", OP_BRK, CMD_RESULT, parse_brk },
	{ "read", OP_READ, CMD_RESULT, parse_read },
	{ "write", OP_WRITE, CMD_RESULT, parse_write },
	{ "copy_from_user", OP_COPY_FROM_USER, CMD_RESULT, parse_copy_from_user },
	{ "copy_to_user", OP_COPY_TO_USER, CMD_RESULT, parse_write },
	{ "get_user", OP_GET_USER, CMD_RESULT, parse_get_user },
	{ "put_user", OP_PUT_USER, CMD_RESULT, parse_put_user },
	{ "pin", OP_PIN, CMD_RESULT, parse_pin },
	{ "unpin", OP_UNPIN, 0, parse_unpin },
	{ "pin_write", OP_PIN_WRITE, CMD_RESULT, parse_pin_write },
	{ "remote_read", OP_REMOTE_READ, CMD_RESULT, parse_read },
	{ "remote_write", OP_REMOTE_WRITE, CMD_RESULT, parse_write },
	{ "clear_refs", OP_CLEAR_REFS, CMD_RESULT, parse_clear_refs },
	{ "dput", OP_DPUT, CMD_RESULT, parse_dput },
	{ "dget", OP_DGET, CMD_RESULT, parse_dput },
	{ "mremap", OP_MREMAP, CMD_RESULT, parse_mremap },
	{ "mlock", OP_MLOCK, CMD_RESULT, parse_mlock },
	{ "mlock2", OP_MLOCK2, CMD_RESULT, parse_mlock2 },
	{ "munlock", OP_MUNLOCK, CMD_RESULT, parse_mlock },
	{ "mlockall", OP_MLOCKALL, CMD_RESULT, parse_mlockall },
	{ "munlockall", OP_MUNLOCKALL, CMD_RESULT, parse_munlockall },
	{ "process_madvise", OP_PROCESS_MADVISE, CMD_RESULT, parse_process_madvise },
	{ "rlimit", OP_RLIMIT, CMD_RESULT, parse_rlimit },
	{ "caps", OP_CAPS, CMD_RESULT, parse_caps },
	{ "snapshot", OP_SNAPSHOT, CMD_RESULT, parse_snapshot },
	{ "restore", OP_RESTORE, CMD_RESULT, parse_restore },
	{ "fail_alloc", OP_FAIL_ALLOC, 0, parse_fail_alloc },
	{ "mark", OP_MARK, 0, parse_mark },
	{ "check", OP_CHECK, 0, parse_check },
	{ "show", OP_SHOW, 0, parse_show },
	{ "expect", OP_EXPECT, 0, parse_expect },
};
#define NR_COMMANDS (sizeof commands / sizeof commands[0])

static const struct command *command_of(enum op_kind kind)
{
	for (size_t i = 0; i < NR_COMMANDS; i++)
		if (commands[i].kind == kind && !(commands[i].flags & CMD_ALIAS))
			return &commands[i];
	return NULL;
}

bool op_has_result(enum op_kind kind)
{
	const struct command *c = command_of(kind);
	return c && (c->flags & CMD_RESULT);
}

const char *op_name(enum op_kind kind)
{
	const struct command *c = command_of(kind);
	return kind == OP_ECHO ? "echo" : c ? c->name : "?";
}

static bool add_op(struct parser *p, struct op *op)
{
	struct op *grown = realloc(p->s->ops, (size_t)(p->s->nr_ops + 1) * sizeof *grown);
	if (!grown)
		return parse_fail(p, "out of memory");
	p->s->ops = grown;
	p->s->ops[p->s->nr_ops++] = *op;
	return true;
}

/* echo prints the rest of the line as it is written, '#' and quotes included. */
static bool parse_echo_line(struct parser *p, const char *line, size_t len, bool *was_echo)
{
	size_t i = 0;
	while (i < len && isspace((unsigned char)line[i]))
		i++;
	*was_echo = len - i >= 4 && !strncmp(line + i, "echo", 4) &&
		    (len - i == 4 || isspace((unsigned char)line[i + 4]));
	if (!*was_echo)
		return true;
	size_t start = i + 4;
	while (start < len && isspace((unsigned char)line[start]))
		start++;
	while (len > start && isspace((unsigned char)line[len - 1]))
		len--;
	struct op op = { .kind = OP_ECHO, .line = p->line, .task = -1 };
	if (!(op.text = strndup(line + start, len - start)))
		return parse_fail(p, "out of memory");
	if (!add_op(p, &op)) {
		free(op.text);
		return false;
	}
	return true;
}

static bool parse_line(struct parser *p, const char *line, size_t len)
{
	char why[200];
	bool was_echo;
	if (!parse_echo_line(p, line, len, &was_echo))
		return false;
	if (was_echo) {
		p->seen_op = true;
		return true;
	}
	if (split_line(line, len, &p->list, why, sizeof why))
		return parse_fail(p, "%s", why);
	p->pos = 0;
	if (p->list.count == 0)
		return true;
	struct token *first = &p->list.tokens[0];
	if (first->kind != TOKEN_WORD)
		return parse_fail(p, "a line starts with an operation, not a quoted \"%s\"", first->text);
	size_t i;
	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(first->text, commands[i].name))
			break;
	if (i == NR_COMMANDS)
		return parse_fail(p, "unknown operation '%s' (spawn, fork, thread, exit, mmap, munmap, "
			       "mprotect, madvise, brk, read, write, copy_from_user, copy_to_user, "
			       "get_user, put_user, pin, unpin, pin_write, remote_read, remote_write, "
			       "clear_refs, dput, dget, mremap, mlock, mlock2, munlock, mlockall, "
			       "munlockall, process_madvise, rlimit, caps, fail_alloc, mark, check, show, "
			       "echo, expect, memory, swap, pageout, cold)",
			    first->text);
	p->pos = 1;
	struct op op = { .kind = commands[i].kind, .line = p->line, .task = -1, .new_task = -1,
			 .region = -1, .mark = -1, .pin = -1, .child = -1, .new_region = -1 };
	op.loc.region = -1;
	op.child_loc.region = -1;
	op.expect.loc.region = -1;
	bool ok = commands[i].parse(p, &op);
	if (ok && (op.text = strdup(p->list.text)) == NULL)
		ok = parse_fail(p, "out of memory");
	if (ok)
		ok = add_op(p, &op);
	if (!ok) {
		free(op.text);
		free(op.data.bytes);
		free(op.expect.data.bytes);
		return false;
	}
	if (op.kind != OP_MEMORY && op.kind != OP_SWAP)
		p->seen_op = true;
	if (commands[i].flags & CMD_RESULT)
		p->last_result_op = p->s->nr_ops - 1;
	return true;
}

struct scenario *scenario_parse(const char *name, const char *text, struct parse_error *err)
{
	struct parser p = { .err = err, .last_result_op = -1, .merge_parent = -1 };
	memset(err, 0, sizeof *err);
	p.s = calloc(1, sizeof *p.s);
	if (!p.s || !(p.s->name = strdup(name ? name : "-"))) {
		free(p.s);
		snprintf(err->message, sizeof err->message, "out of memory");
		return NULL;
	}
	p.s->heap_region = -1;
	bool ok = true;
	const char *line = text;
	while (ok && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		p.line++;
		if (memchr(line, 0, len)) {
			ok = parse_fail(&p, "a NUL byte in the text");
			break;
		}
		ok = parse_line(&p, line, len);
		free_token_list(&p.list);
		line += len + (end ? 1 : 0);
	}
	free(p.task_state);
	free(p.task_line);
	free(p.region_line);
	free(p.region_pages);
	free(p.pin_state);
	free(p.pin_line);
	if (!ok) {
		scenario_free(p.s);
		return NULL;
	}
	return p.s;
}

void scenario_free(struct scenario *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nr_ops; i++) {
		free(s->ops[i].text);
		free(s->ops[i].data.bytes);
		free(s->ops[i].expect.data.bytes);
	}
	free(s->ops);
	for (int i = 0; i < s->nr_tasks; i++)
		free(s->task_names[i]);
	free(s->task_names);
	for (int i = 0; i < s->nr_regions; i++)
		free(s->region_names[i]);
	free(s->region_names);
	for (int i = 0; i < s->nr_marks; i++)
		free(s->mark_names[i]);
	free(s->mark_names);
	for (int i = 0; i < s->nr_pins; i++)
		free(s->pin_names[i]);
	free(s->pin_names);
	for (int i = 0; i < s->nr_snapshots; i++)
		free(s->snapshot_names[i]);
	free(s->snapshot_names);
	free(s->swap_path);
	free(s->name);
	free(s);
}
