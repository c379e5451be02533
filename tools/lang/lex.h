/*
 * scenario_lex.h - splitting one scenario line into tokens, and reading numbers and sizes.
 *
 * Tokens are separated by blanks.  A word is any run of other characters; "a string" may hold
 * blanks and the escapes \n \t \r \0 \\ \" \' \xHH; 'c' is one character (same escapes).
 * '#' outside quotes starts a comment that runs to the end of the line.
 */
#ifndef COWVM_TOOLS_SCENARIO_LEX_H
#define COWVM_TOOLS_SCENARIO_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum token_kind { TOKEN_WORD, TOKEN_STRING, TOKEN_CHAR };

struct token {
	enum token_kind kind;
	char *text;       /* the word, or the source between the quotes (for messages); owned */
	uint8_t *bytes;   /* TOKEN_STRING, TOKEN_CHAR: the bytes meant; owned */
	size_t len;
};

struct token_list {
	struct token *tokens;
	int count;
	char *text;       /* the line without its comment and outer blanks; owned */
};

/* Split line[0..len).  Returns 0, or -1 with a sentence in why (unterminated string, bad
 * escape, out of memory); the list is empty then. */
int split_line(const char *line, size_t len, struct token_list *out, char *why, size_t whylen);
void free_token_list(struct token_list *list);

/* A whole word as an unsigned number: decimal, or hex after 0x.  False if it is not one or
 * does not fit in 64 bits. */
bool parse_number(const char *word, uint64_t *out);

/* A unit word or suffix: "page(s)" 4096, "k" "K" "KiB" "kB" 1024, "M" "MiB" "MB", "G" "GiB"
 * "GB", "B" "byte(s)" 1.  Returns the multiplier, 0 if it is not a unit. */
uint64_t unit_multiplier(const char *word);

/* A number with an optional unit glued to it ("16MiB", "4k", "0x2000").  False if not. */
bool parse_number_with_unit(const char *word, uint64_t *out, bool *had_unit);

bool is_identifier(const char *word);

#endif /* COWVM_TOOLS_SCENARIO_LEX_H */
