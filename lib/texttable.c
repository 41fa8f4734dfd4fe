/*
 * texttable.c - see texttable.h.
 */
#include "texttable.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

#define TEXTTABLE_MAX_COLS 32

struct texttable {
	size_t ncols;
	char **cells;             /* (nrows + 1) * ncols; row 0 is the header */
	unsigned char *colors;    /* same shape */
	size_t nrows;             /* data rows */
	size_t stored;            /* rows stored, header included */
	size_t cap;               /* rows allocated, header included */
};

size_t texttable_width(const char *s)
{
	size_t n = 0;

	for (; s && *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* A copy with control characters as spaces (caller frees). */
static char *cell_copy(const char *s)
{
	char *c = strdup(s ? s : ""), *p;

	for (p = c; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return c;
}

static int add(struct texttable *t, const char *const *cells)
{
	size_t i, row = t->stored;

	if (row + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
		unsigned char *k;

		if (!c)
			return ST_ENOMEM;
		t->cells = c;
		k = realloc(t->colors, cap * t->ncols);
		if (!k)
			return ST_ENOMEM;
		t->colors = k;
		t->cap = cap;
	}
	for (i = 0; i < t->ncols; i++) {
		t->cells[row * t->ncols + i] = cell_copy(cells[i]);
		t->colors[row * t->ncols + i] = TEXTTABLE_PLAIN;
		if (!t->cells[row * t->ncols + i]) {
			while (i-- > 0)
				free(t->cells[row * t->ncols + i]);
			return ST_ENOMEM;
		}
	}
	t->stored++;
	return 0;
}

int texttable_new(size_t ncols, const char *const *headers, struct texttable **out)
{
	struct texttable *t;
	int rc;

	*out = NULL;
	if (ncols == 0 || ncols > TEXTTABLE_MAX_COLS)
		return ST_EUSAGE;
	t = calloc(1, sizeof(*t));
	if (!t)
		return ST_ENOMEM;
	t->ncols = ncols;
	if ((rc = add(t, headers)) != 0) {
		texttable_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void texttable_free(struct texttable *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->stored * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->colors);
	free(t);
}

int texttable_add_row(struct texttable *t, const char *const *cells)
{
	int rc = add(t, cells);

	if (rc == 0)
		t->nrows++;
	return rc;
}

void texttable_color_last(struct texttable *t, size_t col, enum texttable_color color)
{
	if (t->nrows && col < t->ncols)
		t->colors[t->nrows * t->ncols + col] = (unsigned char)color;
}

size_t texttable_rows(const struct texttable *t)
{
	return t->nrows;
}

static const char *ansi(int color)
{
	switch (color) {
	case TEXTTABLE_RED: return "\033[31m";
	case TEXTTABLE_GREEN: return "\033[32m";
	case TEXTTABLE_YELLOW: return "\033[33m";
	case TEXTTABLE_DIM: return "\033[2m";
	case TEXTTABLE_BOLD: return "\033[1m";
	default: return "";
	}
}

int texttable_render(const struct texttable *t, int color, struct sbuf *out)
{
	size_t widths[TEXTTABLE_MAX_COLS] = { 0 };
	size_t r, c;
	int rc = 0;

	for (r = 0; r <= t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			size_t w = texttable_width(t->cells[r * t->ncols + c]);

			if (w > widths[c])
				widths[c] = w;
		}
	for (r = 0; r <= t->nrows && !rc; r++) {
		size_t pending = 0; /* blanks owed before the next non-empty cell */

		for (c = 0; c < t->ncols && !rc; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			int k = r == 0 ? TEXTTABLE_BOLD : t->colors[r * t->ncols + c];
			size_t w = texttable_width(cell);

			if (*cell) {
				for (; pending && !rc; pending--)
					rc = sbuf_puts(out, " ");
				if (!rc && color && k)
					rc = sbuf_puts(out, ansi(k));
				if (!rc)
					rc = sbuf_puts(out, cell);
				if (!rc && color && k)
					rc = sbuf_puts(out, "\033[0m");
			}
			if (c + 1 < t->ncols)
				pending += widths[c] - w + 2;
		}
		if (!rc)
			rc = sbuf_puts(out, "\n");
	}
	return rc ? ST_ENOMEM : 0;
}
