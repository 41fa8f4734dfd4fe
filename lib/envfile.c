/*
 * envfile.c - dotenv files: a lenient line scanner shared by the reader and
 * the rewriter, so both agree on where a value starts and ends.
 */
#include "envfile.h"
#include "atomic_file.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENVFILE_MAX_SIZE (16 * 1024 * 1024)

/* Where the parts of one assignment line are, as offsets into the text. */
struct line_scan {
	size_t key, key_end;        /* the name */
	size_t value, value_end;    /* the value as written, quotes included */
	char quote;                 /* '\0', '\'' or '"' */
	int exported;
	int unterminated;           /* an opening quote without its closing one on this line */
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

int envfile_key_valid(const char *name)
{
	const char *p;

	if (!name || !*name || (*name >= '0' && *name <= '9'))
		return 0;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

enum { LINE_NONE = 0, LINE_ASSIGN = 1, LINE_BARE = 2, LINE_BAD = 3 };

/* Scans s[ls, ce) (one line without its ending): LINE_ASSIGN when it
 * assigns a variable, LINE_BARE for a name alone (ls_out filled for both,
 * without a value for LINE_BARE), LINE_NONE for blank lines and comments,
 * LINE_BAD for anything else. */
static int scan_line(const char *s, size_t ls, size_t ce, struct line_scan *ls_out)
{
	struct line_scan l;
	size_t p = ls;

	memset(&l, 0, sizeof(l));
	while (p < ce && is_blank(s[p]))
		p++;
	if (p >= ce || s[p] == '#')
		return LINE_NONE;
	if (ce - p > 7 && !memcmp(s + p, "export", 6) && is_blank(s[p + 6])) {
		l.exported = 1;
		p += 6;
		while (p < ce && is_blank(s[p]))
			p++;
	}
	l.key = p;
	while (p < ce && is_key_char(s[p]))
		p++;
	l.key_end = p;
	if (l.key_end == l.key)
		return LINE_BAD;
	while (p < ce && is_blank(s[p]))
		p++;
	if (p >= ce) {
		*ls_out = l;
		return LINE_BARE;
	}
	if (s[p] != '=')
		return LINE_BAD;
	p++;
	while (p < ce && is_blank(s[p]))
		p++;
	l.value = p;
	if (p < ce && (s[p] == '"' || s[p] == '\'')) {
		char q = s[p];
		size_t e = p + 1;

		while (e < ce && s[e] != q) {
			if (q == '"' && s[e] == '\\' && e + 1 < ce)
				e++;
			e++;
		}
		if (e < ce) {
			l.quote = q;
			l.value_end = e + 1;
		} else {
			/* A multi-line value (dotenv allows it): the rest of the
			 * line is all we know. */
			l.unterminated = 1;
			l.value_end = ce;
		}
	} else {
		size_t e = p;

		/* dotenv: the first '#' starts a comment, blank before it or not. */
		while (e < ce && s[e] != '#')
			e++;
		while (e > p && is_blank(s[e - 1]))
			e--;
		l.value_end = e;
	}
	*ls_out = l;
	return LINE_ASSIGN;
}

/* Calls fn for each line: [ls, ce) its content, [ce, le) its ending
 * ("\n", "\r\n" or "" for a last line without one). */
typedef int (*line_fn)(void *ud, const char *s, size_t ls, size_t ce, size_t le);

static int each_line(const char *s, size_t len, line_fn fn, void *ud)
{
	size_t ls = 0;
	int rc;

	while (ls < len) {
		const char *nl = memchr(s + ls, '\n', len - ls);
		size_t le = nl ? (size_t)(nl - s) + 1 : len;
		size_t ce = nl ? le - 1 : len;

		if (ce > ls && s[ce - 1] == '\r')
			ce--;
		if ((rc = fn(ud, s, ls, ce, le)) != 0)
			return rc;
		ls = le;
	}
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

struct parse_state {
	struct envfile *ef;
	size_t cap;
	int line;
};

static char *dup_range(const char *s, size_t a, size_t b)
{
	char *r = malloc(b - a + 1);

	if (r) {
		memcpy(r, s + a, b - a);
		r[b - a] = '\0';
	}
	return r;
}

/* The text of a double-quoted value s[a, b) with \n \r \t \" \\ read;
 * other backslashes stay. Caller frees. */
static char *dup_unescaped(const char *s, size_t a, size_t b)
{
	char *r = malloc(b - a + 1), *w = r;
	size_t i;

	if (!r)
		return NULL;
	for (i = a; i < b; i++) {
		char c = s[i];

		if (c == '\\' && i + 1 < b && strchr("nrt\"\\", s[i + 1])) {
			c = s[++i];
			c = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
		}
		*w++ = c;
	}
	*w = '\0';
	return r;
}

static int parse_line(void *ud, const char *s, size_t ls, size_t ce, size_t le)
{
	struct parse_state *ps = ud;
	struct envfile_entry *e;
	struct line_scan l;
	size_t a, b;
	int kind;

	(void)le;
	ps->line++;
	kind = scan_line(s, ls, ce, &l);
	if (kind == LINE_BAD && !ps->ef->bad_line)
		ps->ef->bad_line = ps->line;
	if (kind != LINE_ASSIGN && kind != LINE_BARE)
		return 0;
	if (ps->ef->n == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 16;
		struct envfile_entry *ne = realloc(ps->ef->entries, ncap * sizeof(*ne));

		if (!ne)
			return ST_ENOMEM;
		ps->ef->entries = ne;
		ps->cap = ncap;
	}
	e = &ps->ef->entries[ps->ef->n];
	memset(e, 0, sizeof(*e));
	a = l.value;
	b = l.value_end;
	if (l.quote) {
		a++;
		b--;
	} else if (l.unterminated) {
		a++;
	}
	e->key = dup_range(s, l.key, l.key_end);
	if (kind == LINE_BARE)
		e->bare = 1;
	else
		e->value = l.quote == '"' ? dup_unescaped(s, a, b) : dup_range(s, a, b);
	if (!e->key || (!e->bare && !e->value)) {
		free(e->key);
		free(e->value);
		return ST_ENOMEM;
	}
	e->line = ps->line;
	e->quote = l.quote;
	e->exported = l.exported;
	ps->ef->n++;
	return 0;
}

int envfile_parse(const char *text, size_t len, struct envfile *out, struct st_error *err)
{
	struct parse_state ps = { out, 0, 0 };

	out->entries = NULL;
	out->n = 0;
	out->bad_line = 0;
	if (each_line(text, len, parse_line, &ps) != 0) {
		envfile_release(out);
		return st_error_set(err, ST_ENOMEM, "out of memory reading an env file");
	}
	return 0;
}

const char *envfile_get(const struct envfile *ef, const char *key)
{
	size_t i;

	for (i = ef->n; i > 0; i--)
		if (!ef->entries[i - 1].bare && !strcmp(ef->entries[i - 1].key, key))
			return ef->entries[i - 1].value;
	return NULL;
}

void envfile_release(struct envfile *ef)
{
	size_t i;

	if (!ef)
		return;
	for (i = 0; i < ef->n; i++) {
		free(ef->entries[i].key);
		if (ef->entries[i].value) {
			/* Values are secrets more often than not. */
			explicit_bzero(ef->entries[i].value, strlen(ef->entries[i].value));
			free(ef->entries[i].value);
		}
	}
	free(ef->entries);
	ef->entries = NULL;
	ef->n = 0;
	ef->bad_line = 0;
}

int envfile_load(const char *path, struct envfile *out, struct st_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	out->entries = NULL;
	out->n = 0;
	out->bad_line = 0;
	if ((rc = text_read_file(path, ENVFILE_MAX_SIZE, TEXT_READ_WIPE, "env file", &text, &len, err)) != 0)
		return rc;
	rc = envfile_parse(text, len, out, err);
	text_free_wiped(text, len);
	return rc;
}

/* ---- rewriting ---------------------------------------------------------- */

/* Why value cannot be written literally in quote style q; NULL when it can. */
static const char *unwritable(const char *value, char q)
{
	size_t n = strlen(value);

	if (strpbrk(value, "\r\n"))
		return "contains a line break";
	switch (q) {
	case '\'':
		if (strchr(value, '\''))
			return "contains a single quote, which a single-quoted value cannot hold";
		return NULL;
	case '"':
		if (strpbrk(value, "\"\\$"))
			return "contains '\"', '\\' or '$', which readers of double-quoted values "
			       "treat differently";
		return NULL;
	default:
		if (n && (is_blank(value[0]) || is_blank(value[n - 1])))
			return "starts or ends with a blank, which an unquoted value loses";
		if (n && (value[0] == '"' || value[0] == '\''))
			return "starts with a quote";
		if (strchr(value, '#'))
			return "contains '#', which starts a comment in an unquoted value";
		if (strchr(value, '$'))
			return "contains '$', which docker compose expands in an unquoted value";
		return NULL;
	}
}

struct set_state {
	const char *key;
	const char *value;
	struct sbuf *out;
	size_t replaced;
	int crlf;                   /* the last line ending seen was CRLF (or a lone CR) */
	int ends_with_newline;      /* the text ends with '\n' */
	int ends_with_cr;           /* the text ends with a lone '\r' (read as a line end) */
	struct st_error *err;
	int line;
};

static int set_line(void *ud, const char *s, size_t ls, size_t ce, size_t le)
{
	struct set_state *st = ud;
	struct line_scan l;
	const char *why;
	size_t klen = strlen(st->key);

	st->line++;
	if (le > ce)
		st->crlf = s[ce] == '\r';
	st->ends_with_newline = le > ce && s[le - 1] == '\n';
	st->ends_with_cr = le > ce && s[le - 1] == '\r';
	if (scan_line(s, ls, ce, &l) != LINE_ASSIGN || l.key_end - l.key != klen ||
	    memcmp(s + l.key, st->key, klen) != 0)
		return sbuf_append(st->out, s + ls, le - ls);
	if (l.unterminated)
		return st_error_set(st->err, ST_EUSAGE,
				    "line %d assigns '%s' a value whose quote does not close on that "
				    "line (a multi-line value): edit it by hand", st->line, st->key);
	if ((why = unwritable(st->value, l.quote)))
		return st_error_set(st->err, ST_EUSAGE, "the new value of '%s' %s (line %d)", st->key,
				    why, st->line);
	if (sbuf_append(st->out, s + ls, l.value - ls) ||
	    (l.quote && sbuf_append(st->out, &l.quote, 1)) || sbuf_puts(st->out, st->value) ||
	    (l.quote && sbuf_append(st->out, &l.quote, 1)))
		return ST_ENOMEM;
	/* An unquoted value right before its comment ("HASH=#x", "K= # set
	 * me"): compose cuts a comment only at " #" and would read the '#' on
	 * as part of the new value, so a blank goes in between. */
	if (!l.quote && l.value_end < ce && s[l.value_end] == '#' &&
	    !is_blank(*st->value ? st->value[strlen(st->value) - 1] : s[l.value - 1]) &&
	    sbuf_append(st->out, " ", 1))
		return ST_ENOMEM;
	if (sbuf_append(st->out, s + l.value_end, le - l.value_end))
		return ST_ENOMEM;
	st->replaced++;
	return 0;
}

int envfile_set(const char *text, size_t len, const char *key, const char *value, int append,
		struct sbuf *out, size_t *replaced, struct st_error *err)
{
	struct set_state st;
	const char *why;
	int rc;

	if (replaced)
		*replaced = 0;
	if (!envfile_key_valid(key))
		return st_error_set(err, ST_EUSAGE, "'%s' is not a variable name (letters, digits, '_')",
				    key ? key : "");
	if (!value)
		return st_error_set(err, ST_EUSAGE, "no value for '%s'", key);
	memset(&st, 0, sizeof(st));
	st.key = key;
	st.value = value;
	st.out = out;
	st.err = err;
	st.ends_with_newline = 1;
	rc = each_line(text, len, set_line, &st);
	if (rc) {
		if (rc == ST_ENOMEM && err && !err->code)
			st_error_set(err, ST_ENOMEM, "out of memory rewriting an env file");
		return rc;
	}
	if (st.replaced == 0 && append) {
		if ((why = unwritable(value, '\0')))
			return st_error_set(err, ST_EUSAGE, "the new value of '%s' %s", key, why);
		/* A last line without '\n' gets one first: "\n" after a lone '\r'
		 * (which ends a line only at the end of the text: "A=1\rK=v"
		 * would be one line assigning A), else the file's ending. */
		if ((!st.ends_with_newline &&
		     sbuf_puts(out, st.ends_with_cr || !st.crlf ? "\n" : "\r\n")) ||
		    sbuf_printf(out, "%s=%s%s", key, value, st.crlf ? "\r\n" : "\n"))
			return st_error_set(err, ST_ENOMEM, "out of memory rewriting an env file");
		st.replaced = 1;
	}
	if (replaced)
		*replaced = st.replaced;
	return 0;
}

int envfile_update(const char *path, const char *key, const char *value, int append,
		   size_t *replaced, struct st_error *err)
{
	struct sbuf out = SBUF_INIT;
	char *text = NULL;
	size_t len = 0, n = 0;
	int rc;

	if (replaced)
		*replaced = 0;
	if ((rc = text_read_file(path, ENVFILE_MAX_SIZE, TEXT_READ_WIPE, "env file", &text, &len, err)) != 0)
		return rc;
	if ((rc = envfile_set(text, len, key, value, append, &out, &n, err)) != 0) {
		st_error_wrap(err, "cannot update '%s'", path);
		goto out;
	}
	if (n == 0)
		goto out;
	rc = atomic_file_write_all(path, out.buf, out.len, 0600 | ATOMIC_FILE_PRESERVE_MODE, err);
	if (rc)
		goto out;
	if (replaced)
		*replaced = n;
out:
	text_free_wiped(text, len);
	if (out.buf)
		explicit_bzero(out.buf, out.cap);
	sbuf_release(&out);
	return rc;
}
