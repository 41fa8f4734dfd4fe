#include "sbuf.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sbuf_grow(struct sbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	size_t cap;
	char *p;

	if (need <= sb->cap)
		return 0;
	if (need < sb->len) /* overflow */
		return ST_ENOMEM;
	cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(sb->buf, cap);
	if (!p)
		return ST_ENOMEM;
	sb->buf = p;
	sb->cap = cap;
	return 0;
}

int sbuf_append(struct sbuf *sb, const void *data, size_t len)
{
	if (sbuf_grow(sb, len))
		return ST_ENOMEM;
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
	return 0;
}

int sbuf_puts(struct sbuf *sb, const char *s)
{
	return sbuf_append(sb, s, strlen(s));
}

int sbuf_vprintf(struct sbuf *sb, const char *fmt, va_list ap)
{
	va_list copy;
	int n;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return ST_EIO;
	if (sbuf_grow(sb, (size_t)n))
		return ST_ENOMEM;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = sbuf_vprintf(sb, fmt, ap);
	va_end(ap);
	return rc;
}

void sbuf_reset(struct sbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

void sbuf_release(struct sbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
}

char *sbuf_detach(struct sbuf *sb)
{
	char *s = sb->buf;

	if (!s)
		s = calloc(1, 1);
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
	return s;
}

const char *sbuf_str(const struct sbuf *sb)
{
	return sb->buf ? sb->buf : "";
}
