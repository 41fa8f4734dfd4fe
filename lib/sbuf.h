/*
 * sbuf.h - a growable, always NUL-terminated byte buffer.
 *
 * The buffer owns buf; release it with sbuf_release(). A zeroed struct
 * (SBUF_INIT) is a valid empty buffer. Growth failures are reported as
 * ST_ENOMEM so callers can propagate them like any other error.
 */
#ifndef ST_SBUF_H
#define ST_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct sbuf {
	char *buf;   /* NUL-terminated when len > 0 or after any append; owned */
	size_t len;
	size_t cap;
};

#define SBUF_INIT { NULL, 0, 0 }

/* Ensures room for extra more bytes plus the terminator. 0 or ST_ENOMEM. */
int sbuf_grow(struct sbuf *sb, size_t extra);
int sbuf_append(struct sbuf *sb, const void *data, size_t len);
int sbuf_puts(struct sbuf *sb, const char *s);
int sbuf_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbuf_vprintf(struct sbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void sbuf_reset(struct sbuf *sb);          /* len = 0, keeps the allocation */
void sbuf_release(struct sbuf *sb);        /* frees and zeroes */
/* Hands the string to the caller (caller frees) and leaves sb empty.
 * Returns an empty allocated string for an empty buffer, NULL on ENOMEM. */
char *sbuf_detach(struct sbuf *sb);
/* "" when empty, never NULL; borrowed. */
const char *sbuf_str(const struct sbuf *sb);

#endif
