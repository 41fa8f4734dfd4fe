#include "text.h"
#include "error.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t text_utf8_seq(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len, i;
	unsigned cp;

	if (n == 0 || s[0] == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

int text_utf8_valid(const char *s, size_t len)
{
	size_t i = 0, k;

	while (i < len) {
		k = text_utf8_seq(s + i, len - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

size_t text_utf8_cut(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = len, cont = 0, need;

	while (i > 0 && cont < 3 && (s[i - 1] & 0xc0) == 0x80) {
		i--;
		cont++;
	}
	if (i == 0 || s[i - 1] < 0xc0)
		return len;
	need = s[i - 1] >= 0xf0 ? 4 : s[i - 1] >= 0xe0 ? 3 : 2;
	/* The lead byte at i - 1 starts a character that does not fit. */
	return cont + 1 < need ? i - 1 : len;
}

char *text_utf8_repair(const char *data, size_t len, size_t *out_len)
{
	char *buf, *o;
	size_t i = 0, k;

	if (out_len)
		*out_len = 0;
	/* Worst case every byte becomes the 3-byte U+FFFD. */
	buf = malloc(len * 3 + 1);
	if (!buf)
		return NULL;
	o = buf;
	while (i < len) {
		k = text_utf8_seq(data + i, len - i);
		if (k) {
			memcpy(o, data + i, k);
			o += k;
			i += k;
		} else {
			memcpy(o, TEXT_REPLACEMENT, 3);
			o += 3;
			i++;
		}
	}
	*o = '\0';
	if (out_len)
		*out_len = (size_t)(o - buf);
	return buf;
}

void text_copy(char *dst, size_t size, const char *src)
{
	size_t n;

	if (size == 0)
		return;
	n = src ? strnlen(src, size - 1) : 0;
	n = text_utf8_cut(src ? src : "", n);
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void text_one_line(char *dst, size_t size, const char *src, size_t len, unsigned flags)
{
	size_t o = 0, i = 0, k;
	int space = 0;

	if (size == 0)
		return;
	while (i < len && src[i]) {
		unsigned char c = (unsigned char)src[i];

		if ((flags & TEXT_FIRST_LINE) && (c == '\n' || c == '\r'))
			break;
		if (c < 0x20 || c == ' ' || c == 0x7f) {
			space = o > 0;
			i++;
			continue;
		}
		k = text_utf8_seq(src + i, len - i);
		if (o + (space ? 1 : 0) + (k ? k : 1) + 1 > size)
			break;
		if (space)
			dst[o++] = ' ';
		space = 0;
		if (k) {
			memcpy(dst + o, src + i, k);
			o += k;
			i += k;
		} else {
			dst[o++] = '?';
			i++;
		}
	}
	dst[o] = '\0';
	if (flags & TEXT_LOWER_FIRST)
		text_lower_first(dst);
}

void text_lower_first(char *s)
{
	if (s && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'a' && s[1] <= 'z')
		s[0] = (char)(s[0] - 'A' + 'a');
}

uint64_t text_double_to_u64(double v)
{
	if (!(v > 0))
		return 0;
	/* 2^64: the first double above UINT64_MAX. */
	if (v >= 18446744073709551616.0)
		return UINT64_MAX;
	return (uint64_t)v;
}

long long text_double_to_ll(double v)
{
	if (isnan(v))
		return 0;
	/* +-2^63, exactly representable. */
	if (v >= 9223372036854775808.0)
		return LLONG_MAX;
	if (v <= -9223372036854775808.0)
		return LLONG_MIN;
	return (long long)v;
}

char *text_format_number(double v, char *buf, size_t size)
{
	int prec;

	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, size, "%.0f", v);
		return buf;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

const void *text_path_walk(const void *root, const char *path, text_path_child_fn child, void *ud)
{
	const void *cur = root;
	const char *p = path;

	if (!root || !*p || !strcmp(p, "."))
		return root;
	while (cur) {
		size_t len = strcspn(p, "."), i;
		long index = len > 0 && len < 10 ? 0 : -1;

		if (len == 0)
			return NULL;
		for (i = 0; i < len && index >= 0; i++)
			index = p[i] >= '0' && p[i] <= '9' ? index * 10 + (p[i] - '0') : -1;
		cur = child(ud, cur, p, len, index);
		if (!p[len])
			break;
		p += len + 1;
	}
	return cur;
}

/* ---- whole files ------------------------------------------------------ */

void text_free_wiped(char *buf, size_t len)
{
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
}

/* Frees buf (cap bytes allocated), zeroing it first when wipe. */
static void drop_buf(char *buf, size_t cap, int wipe)
{
	if (wipe)
		text_free_wiped(buf, cap);
	else
		free(buf);
}

int text_read_file(const char *path, size_t max, unsigned flags, const char *what, char **out, size_t *len,
		   struct st_error *err)
{
	const int wipe = (flags & TEXT_READ_WIPE) != 0;
	struct stat st;
	char *buf = NULL;
	size_t cap = 0, got = 0;
	int fd, rc = 0;

	*out = NULL;
	if (len)
		*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return st_error_set(err, ST_ENOTFOUND, "%s '%s' does not exist", what, path);
		return st_error_set(err, ST_EIO, "cannot read %s '%s': %s", what, path, strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		rc = st_error_set(err, ST_EIO, "cannot read %s '%s': %s", what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = st_error_set(err, ST_EIO, "%s '%s' is not a regular file", what, path);
		goto out;
	}
	if ((unsigned long long)st.st_size > max) {
		rc = st_error_set(err, ST_EIO, "%s '%s' is larger than %zu bytes", what, path, max);
		goto out;
	}
	/* The size is a first guess: the file may change while it is read,
	 * and one byte more than max tells that it became too large. */
	cap = (size_t)st.st_size + 2;
	for (;;) {
		ssize_t n;

		if (!buf || got + 1 == cap) {
			size_t ncap = buf ? cap * 2 : cap;
			char *nb;

			if (ncap > max + 2)
				ncap = max + 2;
			if (!(nb = malloc(ncap))) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory reading %s '%s'", what, path);
				goto out;
			}
			if (buf) {
				memcpy(nb, buf, got);
				drop_buf(buf, cap, wipe);
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + got, cap - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = st_error_set(err, ST_EIO, "cannot read %s '%s': %s", what, path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > max) {
			rc = st_error_set(err, ST_EIO, "%s '%s' is larger than %zu bytes", what, path, max);
			goto out;
		}
	}
	buf[got] = '\0';
	*out = buf;
	if (len)
		*len = got;
	buf = NULL;
out:
	if (buf)
		drop_buf(buf, cap, wipe);
	close(fd);
	return rc;
}
