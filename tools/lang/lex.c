/*
 * scenario_lex.c - tokens of one scenario line, numbers and sizes (see scenario_lex.h).
 * Nothing here knows the operations; it never fails on a word it does not understand.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang/lex.h"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Read a quoted token starting at line[*pos] (the quote).  Leaves *pos after the closing one. */
static int read_quoted(const char *line, size_t len, size_t *pos, struct token *tok, char *why,
		       size_t whylen)
{
	char quote = line[*pos];
	size_t start = ++*pos;
	uint8_t *bytes = malloc(len - start + 1);
	size_t n = 0;
	if (!bytes) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	while (*pos < len && line[*pos] != quote) {
		char c = line[(*pos)++];
		if (c != '\\') {
			bytes[n++] = (uint8_t)c;
			continue;
		}
		if (*pos >= len)
			break;
		c = line[(*pos)++];
		switch (c) {
		case 'n': bytes[n++] = '\n'; break;
		case 't': bytes[n++] = '\t'; break;
		case 'r': bytes[n++] = '\r'; break;
		case '0': bytes[n++] = 0; break;
		case '\\': case '"': case '\'': bytes[n++] = (uint8_t)c; break;
		case 'x': {
			int hi = *pos < len ? hex_value(line[*pos]) : -1;
			int lo = *pos + 1 < len ? hex_value(line[*pos + 1]) : -1;
			if (hi < 0 || lo < 0) {
				snprintf(why, whylen, "bad escape: \\x needs two hex digits");
				free(bytes);
				return -1;
			}
			bytes[n++] = (uint8_t)(hi * 16 + lo);
			*pos += 2;
			break;
		}
		default:
			snprintf(why, whylen, "bad escape '\\%c' (known: \\n \\t \\r \\0 \\\\ \\\" \\' \\xHH)", c);
			free(bytes);
			return -1;
		}
	}
	if (*pos >= len) {
		snprintf(why, whylen, "unterminated %s", quote == '"' ? "string" : "character");
		free(bytes);
		return -1;
	}
	tok->kind = quote == '"' ? TOKEN_STRING : TOKEN_CHAR;
	if (tok->kind == TOKEN_CHAR && n != 1) {
		snprintf(why, whylen, "a character literal holds one character (use \"...\" for a string)");
		free(bytes);
		return -1;
	}
	tok->text = strndup(line + start, *pos - start);
	tok->bytes = bytes;
	tok->len = n;
	(*pos)++; /* the closing quote */
	if (!tok->text) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

int split_line(const char *line, size_t len, struct token_list *out, char *why, size_t whylen)
{
	size_t pos = 0, text_end = 0, text_start = SIZE_MAX;
	memset(out, 0, sizeof *out);
	while (pos < len) {
		while (pos < len && isspace((unsigned char)line[pos]))
			pos++;
		if (pos >= len || line[pos] == '#')
			break;
		struct token tok = { 0 };
		if (text_start == SIZE_MAX)
			text_start = pos;
		if (line[pos] == '"' || line[pos] == '\'') {
			if (read_quoted(line, len, &pos, &tok, why, whylen))
				goto fail;
		} else {
			size_t start = pos;
			while (pos < len && !isspace((unsigned char)line[pos]) && line[pos] != '#' &&
			       line[pos] != '"')
				pos++;
			tok.kind = TOKEN_WORD;
			tok.text = strndup(line + start, pos - start);
			if (!tok.text) {
				snprintf(why, whylen, "out of memory");
				goto fail;
			}
		}
		text_end = pos;
		struct token *grown = realloc(out->tokens, (size_t)(out->count + 1) * sizeof *grown);
		if (!grown) {
			free(tok.text);
			free(tok.bytes);
			snprintf(why, whylen, "out of memory");
			goto fail;
		}
		out->tokens = grown;
		out->tokens[out->count++] = tok;
	}
	out->text = text_start == SIZE_MAX ? strdup("") : strndup(line + text_start, text_end - text_start);
	if (!out->text) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	return 0;
fail:
	free_token_list(out);
	return -1;
}

void free_token_list(struct token_list *list)
{
	for (int i = 0; i < list->count; i++) {
		free(list->tokens[i].text);
		free(list->tokens[i].bytes);
	}
	free(list->tokens);
	free(list->text);
	memset(list, 0, sizeof *list);
}

/* Digits of one number at the start of s; *end after them.  Base 16 after 0x, else 10. */
static bool scan_number(const char *s, uint64_t *out, const char **end)
{
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!isxdigit((unsigned char)*s) || (base == 10 && !isdigit((unsigned char)*s)))
		return false;
	errno = 0;
	char *e;
	unsigned long long v = strtoull(s, &e, base);
	if (errno == ERANGE)
		return false;
	*out = v;
	*end = e;
	return true;
}

bool parse_number(const char *word, uint64_t *out)
{
	const char *end;
	return scan_number(word, out, &end) && *end == 0;
}

uint64_t unit_multiplier(const char *word)
{
	static const struct {
		const char *name;
		uint64_t bytes;
	} units[] = {
		{ "page", 4096 }, { "pages", 4096 }, { "k", 1024 },   { "K", 1024 },
		{ "KiB", 1024 },  { "kB", 1024 },    { "KB", 1024 },  { "M", 1 << 20 },
		{ "MiB", 1 << 20 }, { "MB", 1 << 20 }, { "G", 1 << 30 }, { "GiB", 1 << 30 },
		{ "GB", 1 << 30 }, { "B", 1 },       { "byte", 1 },   { "bytes", 1 },
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (!strcmp(word, units[i].name))
			return units[i].bytes;
	return 0;
}

bool parse_number_with_unit(const char *word, uint64_t *out, bool *had_unit)
{
	const char *end;
	uint64_t v;
	*had_unit = false;
	if (!scan_number(word, &v, &end))
		return false;
	if (*end == 0) {
		*out = v;
		return true;
	}
	if (word[0] == '0' && (word[1] == 'x' || word[1] == 'X'))
		return false; /* "0x10B" is ambiguous: no suffix on hex numbers */
	uint64_t mult = unit_multiplier(end);
	if (!mult || (v && mult > UINT64_MAX / v))
		return false;
	*out = v * mult;
	*had_unit = true;
	return true;
}

bool is_identifier(const char *word)
{
	if (!isalpha((unsigned char)word[0]) && word[0] != '_')
		return false;
	for (const char *c = word; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_')
			return false;
	return true;
}
