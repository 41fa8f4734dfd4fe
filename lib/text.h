/*
 * text.h - small text helpers every module shares: UTF-8 checks and repair,
 * bounded copies that never cut a character in two, and turning a peer's
 * message (daemon, server, library, process output) into one clean line.
 *
 * Why they matter: error messages and results end up in the journal, which
 * is JSON and must be valid UTF-8 (jansson refuses anything else), and on a
 * terminal, where control characters in a server's text do not belong.
 */
#ifndef ST_TEXT_H
#define ST_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The replacement character U+FFFD in UTF-8, for bytes that are not text. */
#define TEXT_REPLACEMENT "\xef\xbf\xbd"

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 when the
 * bytes there are not one (invalid, overlong, surrogate, cut short, NUL). */
size_t text_utf8_seq(const char *s, size_t n);

/* 1 when the len bytes at s are valid UTF-8 without NUL bytes. */
int text_utf8_valid(const char *s, size_t len);

/* The largest m <= len such that s[0..m) does not end inside a multi-byte
 * character: where to cut a UTF-8 text so that it stays valid. */
size_t text_utf8_cut(const char *s, size_t len);

/* A NUL-terminated copy of len bytes of data that may not be valid UTF-8
 * (process output, log lines, a server's message): each invalid byte and
 * each NUL becomes U+FFFD. *out_len (may be NULL) gets its length. Caller
 * frees; NULL on ENOMEM. */
char *text_utf8_repair(const char *data, size_t len, size_t *out_len);

/* Copies what fits of src (NULL: "") into dst, always terminated, cut at a
 * character boundary. */
void text_copy(char *dst, size_t size, const char *src);

enum {
	/* Stop at the first line end instead of joining the lines. */
	TEXT_FIRST_LINE = 1u << 0,
	/* Lower the first letter when a lower-case letter follows it
	 * ("Connection refused" -> "connection refused"; "FATAL" stays). */
	TEXT_LOWER_FIRST = 1u << 1,
};

/*
 * One clean line from len bytes of src (a NUL ends it early) into dst:
 * leading and trailing white space dropped, every run of white space and
 * control characters (newlines included, unless TEXT_FIRST_LINE stops
 * there) becomes one space, bytes that are not UTF-8 become '?', and the
 * result is cut at a character boundary to fit size.
 */
void text_one_line(char *dst, size_t size, const char *src, size_t len, unsigned flags);

/* v as an integer, clamped to the type's range, NaN as 0. Numbers from
 * JSON answers and state files are not trusted to fit, and converting an
 * out-of-range double is undefined behaviour in C. */
uint64_t text_double_to_u64(double v);
long long text_double_to_ll(double v);

/* The shortest text that strtod() reads back as v ("30", "0.25", "1e+20");
 * returns buf. */
char *text_format_number(double v, char *buf, size_t size);

/* ---- dotted paths ("services.backend.container", "rows.0.count") ---- */

/* One step down a tree: the child of node named by the segment seg (len
 * bytes, not NUL-terminated), or NULL. index is the segment's value when
 * it is a decimal array index (digits only, fewer than 10), else -1. */
typedef const void *(*text_path_child_fn)(void *ud, const void *node, const char *seg, size_t len,
					  long index);

/* Follows path from root through child(): "" and "." are root itself; an
 * empty segment ("a..b", "a.") finds nothing. For JSON values
 * (expr_path_get) and YAML trees (configuration). */
const void *text_path_walk(const void *root, const char *path, text_path_child_fn child, void *ud);

/* Lowers s[0] when s starts with an upper-case letter followed by a
 * lower-case one (a sentence, not an acronym). In place; NULL-safe. */
void text_lower_first(char *s);

/* ---- whole files ---- */

struct st_error;

enum {
	/* The file holds secrets (.env): every buffer that held its bytes is
	 * zeroed before it is freed, and the caller frees the result with
	 * text_free_wiped(). */
	TEXT_READ_WIPE = 1u << 0,
};

/*
 * Reads the whole regular file at path (a symbolic link is followed) into
 * *out, NUL-terminated; *len (may be NULL) gets its length (a NUL byte in
 * the file stays in it). what names the file in messages ("env file",
 * "release history"). Caller frees *out (text_free_wiped() with
 * TEXT_READ_WIPE). Errors: ST_ENOTFOUND "WHAT 'PATH' does not exist",
 * ST_EIO (cannot be read, not a regular file, larger than max bytes),
 * ST_ENOMEM. The one reader of small files for every module.
 */
int text_read_file(const char *path, size_t max, unsigned flags, const char *what, char **out, size_t *len,
		   struct st_error *err);

/* Zeroes len bytes of buf (a secret) and frees it. NULL-safe. */
void text_free_wiped(char *buf, size_t len);

#endif
