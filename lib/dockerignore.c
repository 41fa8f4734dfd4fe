/*
 * dockerignore.c - .dockerignore parsing and matching (see dockerignore.h).
 *
 * Each pattern becomes a POSIX extended regular expression the way
 * moby/patternmatcher builds its Go regexp: a star becomes "[^/]" repeated,
 * '?' one "[^/]", a double star followed by more becomes any number of
 * directories (zero included), a trailing double star anything; classes go
 * as written, and characters that are literal in filepath.Match but special
 * in a regexp are escaped.
 */
#include "dockerignore.h"

#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

struct di_pattern {
	char *text;        /* cleaned pattern, without '!' */
	int exception;
	regex_t re;
};

struct dockerignore {
	struct di_pattern *p;
	size_t n;
	int has_exceptions;
};

/* Go's filepath.Clean for '/'-separated paths, in place (never longer). */
static void clean_path(char *s)
{
	size_t n = strlen(s), w = 0, r = 0, dotdot = 0;
	int rooted = n > 0 && s[0] == '/';

	if (n == 0) {
		strcpy(s, ".");
		return;
	}
	if (rooted) {
		w = r = dotdot = 1;
	}
	while (r < n) {
		if (s[r] == '/') {
			r++;
		} else if (s[r] == '.' && (r + 1 == n || s[r + 1] == '/')) {
			r++;
		} else if (s[r] == '.' && s[r + 1] == '.' && (r + 2 == n || s[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				/* back up over the last element */
				w--;
				while (w > dotdot && s[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					s[w++] = '/';
				s[w++] = '.';
				s[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				s[w++] = '/';
			while (r < n && s[r] != '/')
				s[w++] = s[r++];
		}
	}
	if (w == 0)
		s[w++] = '.';
	s[w] = '\0';
}

/* Appends the class starting at *c ('[') to re and advances *c. */
static int copy_class(struct sbuf *re, const char **c)
{
	const char *p = *c;
	int rc;

	rc = sbuf_append(re, p++, 1);
	if (!rc && *p == '^')
		rc = sbuf_append(re, p++, 1);
	if (!rc && *p == ']')
		rc = sbuf_append(re, p++, 1);
	while (!rc && *p && *p != ']') {
		/* '\' escapes are literal inside POSIX brackets: copy the
		 * escaped character alone. */
		if (*p == '\\' && p[1])
			p++;
		rc = sbuf_append(re, p++, 1);
	}
	if (!rc && *p == ']')
		rc = sbuf_append(re, p++, 1);
	*c = p;
	return rc;
}

static int compile(struct di_pattern *p, const char *name, int line, struct st_error *err)
{
	struct sbuf re = SBUF_INIT;
	const char *c = p->text;
	int rc = 0, e;

	if (sbuf_puts(&re, "^") != 0)
		goto nomem;
	while (*c) {
		int ok;

		if (c[0] == '*' && c[1] == '*') {
			c += 2;
			if (*c == '/')
				c++;
			ok = sbuf_puts(&re, *c ? "(.*/)?" : ".*");
		} else if (*c == '*') {
			c++;
			ok = sbuf_puts(&re, "[^/]*");
		} else if (*c == '?') {
			c++;
			ok = sbuf_puts(&re, "[^/]");
		} else if (*c == '[') {
			ok = copy_class(&re, &c);
		} else if (*c == '\\') {
			c++;
			if (!*c)
				ok = sbuf_puts(&re, "\\\\");
			else if (isalnum((unsigned char)*c))
				ok = sbuf_append(&re, c++, 1);
			else
				ok = sbuf_printf(&re, "\\%c", *c++);
		} else if (strchr(".+()|{}$^]", *c)) {
			ok = sbuf_printf(&re, "\\%c", *c++);
		} else {
			ok = sbuf_append(&re, c++, 1);
		}
		if (ok != 0)
			goto nomem;
	}
	if (sbuf_puts(&re, "$") != 0)
		goto nomem;
	e = regcomp(&p->re, sbuf_str(&re), REG_EXTENDED | REG_NOSUB);
	if (e != 0) {
		char msg[128];

		regerror(e, &p->re, msg, sizeof(msg));
		rc = st_error_set(err, ST_ECONFIG, "%s:%d: bad pattern '%s': %s", name, line, p->text,
				  msg);
	}
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory reading %s", name);
out:
	sbuf_release(&re);
	return rc;
}

static void trim(const char **s, size_t *len)
{
	while (*len && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

int dockerignore_parse(const char *name, const char *text, size_t len, struct dockerignore **out,
		       struct st_error *err)
{
	struct dockerignore *di;
	size_t pos = 0, cap = 0;
	int line = 0, rc = 0;

	*out = NULL;
	di = calloc(1, sizeof(*di));
	if (!di)
		return st_error_set(err, ST_ENOMEM, "out of memory reading %s", name);
	while (pos < len) {
		const char *l = text + pos, *nl = memchr(l, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - l) : len - pos;
		struct di_pattern *p;
		int exception = 0;

		pos += ll + (nl ? 1 : 0);
		line++;
		/* A comment is '#' in the very first column, as Docker reads it. */
		if (ll && l[0] == '#')
			continue;
		trim(&l, &ll);
		if (!ll)
			continue;
		if (l[0] == '!') {
			exception = 1;
			l++;
			ll--;
			trim(&l, &ll);
		}
		if (di->n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct di_pattern *np = realloc(di->p, ncap * sizeof(*np));

			if (!np)
				goto nomem;
			di->p = np;
			cap = ncap;
		}
		p = &di->p[di->n];
		memset(p, 0, sizeof(*p));
		p->text = strndup(l, ll);
		if (!p->text)
			goto nomem;
		p->exception = exception;
		if (ll) {
			clean_path(p->text);
			if (p->text[0] == '/' && p->text[1])
				memmove(p->text, p->text + 1, strlen(p->text));
		}
		if ((rc = compile(p, name, line, err)) != 0) {
			free(p->text);
			goto fail;
		}
		di->n++;
		if (exception)
			di->has_exceptions = 1;
	}
	*out = di;
	return 0;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory reading %s", name);
fail:
	dockerignore_free(di);
	return rc;
}

void dockerignore_free(struct dockerignore *di)
{
	size_t i;

	if (!di)
		return;
	for (i = 0; i < di->n; i++) {
		regfree(&di->p[i].re);
		free(di->p[i].text);
	}
	free(di->p);
	free(di);
}

size_t dockerignore_count(const struct dockerignore *di)
{
	return di ? di->n : 0;
}

static int match_one(const struct di_pattern *p, const char *path)
{
	return regexec(&p->re, path, 0, NULL, 0) == 0;
}

/* The pattern matches path or one of its parent directories. */
static int match_or_parent(const struct di_pattern *p, const char *path)
{
	char buf[4096];
	size_t i, n = strlen(path);

	if (match_one(p, path))
		return 1;
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, path, n);
	buf[n] = '\0';
	for (i = 0; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (match_one(p, buf))
			return 1;
		buf[i] = '/';
	}
	return 0;
}

int dockerignore_excluded(const struct dockerignore *di, const char *path)
{
	int matched = 0;
	size_t i;

	if (!di)
		return 0;
	for (i = 0; i < di->n; i++) {
		const struct di_pattern *p = &di->p[i];

		/* An exclusion cannot change an excluded path, nor an exception
		 * an included one. */
		if (p->exception != matched)
			continue;
		if (match_or_parent(p, path))
			matched = !p->exception;
	}
	return matched;
}

int dockerignore_must_descend(const struct dockerignore *di, const char *dir)
{
	size_t i, dl = strlen(dir);

	if (!di || !di->has_exceptions)
		return 0;
	for (i = 0; i < di->n; i++) {
		const struct di_pattern *p = &di->p[i];

		/* Docker's client descends only when an exception's text is dir
		 * itself or a path below it (wildcards like "!**" do not count). */
		if (p->exception && strncmp(p->text, dir, dl) == 0 &&
		    (p->text[dl] == '/' || p->text[dl] == '\0'))
			return 1;
	}
	return 0;
}
