/*
 * texttable.h - plain-text tables for terminals: a header, rows of cells,
 * columns padded to their widest cell (counted in characters, not bytes),
 * optional ANSI colour per cell, the last column never padded.
 *
 *     ISSUE          STATUS   FINDING
 *     backend-crash  problem  backend container is exited
 *
 * Pure: the caller prints what texttable_render() gives. Cells are copied.
 */
#ifndef ST_TEXTTABLE_H
#define ST_TEXTTABLE_H

#include <stddef.h>

#include "sbuf.h"

enum texttable_color {
	TEXTTABLE_PLAIN = 0,
	TEXTTABLE_RED,
	TEXTTABLE_GREEN,
	TEXTTABLE_YELLOW,
	TEXTTABLE_DIM,
	TEXTTABLE_BOLD,
};

struct texttable;

/* A table of ncols columns (1..32) with these headers (ncols strings).
 * *out: caller frees with texttable_free(). 0 or ST_ENOMEM / ST_EUSAGE. */
int texttable_new(size_t ncols, const char *const *headers, struct texttable **out);
void texttable_free(struct texttable *t);

/* Appends a row of ncols cells (NULL is ""). Newlines and tabs in a cell
 * become spaces so a row stays one line. 0 or ST_ENOMEM. */
int texttable_add_row(struct texttable *t, const char *const *cells);

/* Colours one cell of the last row added (when rendering with colour). */
void texttable_color_last(struct texttable *t, size_t col, enum texttable_color color);

size_t texttable_rows(const struct texttable *t);

/* Appends the table to out: the header (bold with colour), then every row,
 * cells separated by two spaces, each line ending with '\n'. No trailing
 * blanks. 0 or ST_ENOMEM. */
int texttable_render(const struct texttable *t, int color, struct sbuf *out);

/* Number of characters (UTF-8 code points) in s. Pure. */
size_t texttable_width(const char *s);

#endif
