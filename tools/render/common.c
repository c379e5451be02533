/*
 * common.c - what the renderers share: JSON string quoting, and the file:line form of
 * failures on standard error.
 */
#include <string.h>

#include "render/render.h"

void json_string(FILE *f, const char *s)
{
	json_bytes(f, (const uint8_t *)s, strlen(s));
}

void json_bytes(FILE *f, const uint8_t *bytes, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = bytes[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c); /* bytes >= 0x80 as the code point of the same value */
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* out is flushed before anything is written to err, so a terminal shows the two in the order
 * they happened. */
void console_message(struct console *c, const struct step_log *log, int line, const char *message)
{
	fflush(c->out);
	if (line > 0)
		fprintf(c->err, "%s:%d: %s\n", log->file, line, message);
	else
		fprintf(c->err, "%s: %s\n", log->file, message);
	fflush(c->err);
}
