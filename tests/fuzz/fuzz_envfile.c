/*
 * fuzz_envfile.c - dotenv reading and rewriting (lib/envfile.c). Any bytes
 * parse. For a key of the input (the first and the last writable one, one
 * only ever bare) and a fresh key, and values the writer must quote or
 * refuse (blanks, '#', quotes, '$', '\\', line breaks: a window of them
 * chosen by the input's hash; and values taken from the input),
 * envfile_set(), appending or not:
 *   - succeeds exactly when envfile.h says it must (ST_EUSAGE otherwise);
 *   - yields text that parses to the same entries (key, line, quote style,
 *     export prefix, bare or not), where the key's assignments now hold
 *     the value and every other value is unchanged (plus the appended line);
 *   - leaves every line it did not change byte-identical, keeps the line
 *     ending and the "export " prefix of the lines it changed, changes one
 *     span of them only, and keeps an unquoted value's trailing comment
 *     (with the blank before its '#' when there was one);
 *   - is idempotent: setting the same value again changes no byte.
 * The lines are split here independently of the library (at '\n').
 */
#include "fuzz.h"

#include <string.h>

#include "envfile.h"

#define MAX_LINES 4096

struct lines {
	size_t start[MAX_LINES + 1]; /* start[i]: offset of line i; start[n] == len */
	size_t n;
};

/* Splits text at '\n' (the '\n' belongs to its line). 0 when too many. */
static int split(const char *s, size_t len, struct lines *l)
{
	size_t p = 0;

	l->n = 0;
	while (p < len) {
		const char *nl = memchr(s + p, '\n', len - p);

		if (l->n == MAX_LINES)
			return 0;
		l->start[l->n++] = p;
		p = nl ? (size_t)(nl - s) + 1 : len;
	}
	l->start[l->n] = len;
	return 1;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The first byte of the value on line [a, b) as written (after '=' and
 * blanks), or '\0' when there is none. */
static char raw_value_start(const char *s, size_t a, size_t b)
{
	const char *eq = memchr(s + a, '=', b - a);
	size_t p;

	if (!eq)
		return '\0';
	for (p = (size_t)(eq - s) + 1; p < b && is_blank(s[p]); p++)
		;
	return p < b ? s[p] : '\0';
}

/* What envfile.h promises a quote style can carry literally. */
static int writable(const char *v, char q)
{
	size_t n = strlen(v);

	if (strpbrk(v, "\r\n"))
		return 0;
	if (q == '\'')
		return !strchr(v, '\'');
	if (q == '"')
		return !strpbrk(v, "\"\\$");
	if (n && (is_blank(v[0]) || is_blank(v[n - 1])))
		return 0;
	if (n && (v[0] == '"' || v[0] == '\''))
		return 0;
	return !strpbrk(v, "#$");
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Line i of s as [*a, *b). */
static void line_at(const struct lines *l, size_t i, size_t *a, size_t *b)
{
	*a = l->start[i];
	*b = l->start[i + 1];
}

/* Content of [a, b) without its "\n" or "\r\n" ending: the end offset. */
static size_t content_end(const char *s, size_t a, size_t b)
{
	if (b > a && s[b - 1] == '\n') {
		b--;
		if (b > a && s[b - 1] == '\r')
			b--;
	}
	return b;
}

/* An unquoted assignment line [a, ce) whose value ran into a comment: the
 * offset of its '#' (0 when none). */
static size_t comment_at(const char *s, size_t a, size_t ce)
{
	const char *eq = memchr(s + a, '=', ce - a);
	const char *h;

	if (!eq)
		return 0;
	h = memchr(eq, '#', (size_t)(s + ce - eq));
	return h ? (size_t)(h - s) : 0;
}

static void check_changed_line(const char *os, size_t oa, size_t ob, const char *ns, size_t na,
			       size_t nb, const struct envfile_entry *oe, const char *value)
{
	size_t oce = content_end(os, oa, ob), nce = content_end(ns, na, nb);
	size_t olen = ob - oa, nlen = nb - na, pre = 0, suf = 0;
	const char *vpos;

	/* Same ending. */
	FUZZ_CHECK(ob - oce == nb - nce && !memcmp(os + oce, ns + nce, ob - oce));
	/* One span changed: common prefix and suffix cover the rest of the old line. */
	while (pre < olen && pre < nlen && os[oa + pre] == ns[na + pre])
		pre++;
	while (suf < olen - pre && suf < nlen - pre && os[ob - 1 - suf] == ns[nb - 1 - suf])
		suf++;
	FUZZ_CHECK(nlen - pre - suf <= strlen(value) + 2);
	/* The value is written literally. */
	vpos = memmem(ns + na, nce - na, value, strlen(value));
	FUZZ_CHECK(vpos != NULL);
	/* An unquoted value's comment stays, with its blank before '#'. */
	if (!oe->quote) {
		size_t oh = comment_at(os, oa, oce), nh;

		if (oh) {
			nh = comment_at(ns, na, nce);
			FUZZ_CHECK(nh != 0);
			FUZZ_CHECK(oce - oh == nce - nh && !memcmp(os + oh, ns + nh, oce - oh));
			if (is_blank(os[oh - 1]) || value[0])
				FUZZ_CHECK(is_blank(ns[nh - 1]));
		}
	}
}

/* Everything envfile_set promises for (key, value, append) on text. */
static void check_set(const char *text, size_t len, const struct lines *ol,
		      const struct envfile *old, const char *key, const char *value, int append)
{
	struct sbuf out = SBUF_INIT, again = SBUF_INIT;
	struct st_error err = { 0 };
	struct envfile nef = ENVFILE_INIT;
	struct lines *nl = NULL;
	size_t replaced = 99, replaced2 = 99, assigning = 0, i, j;
	int want_ok = 1, appended, rc;

	for (i = 0; i < old->n; i++) {
		const struct envfile_entry *e = &old->entries[i];
		size_t a, b;
		char first;

		if (e->bare || strcmp(e->key, key))
			continue;
		assigning++;
		line_at(ol, (size_t)e->line - 1, &a, &b);
		first = raw_value_start(text, a, content_end(text, a, b));
		if (!e->quote && (first == '"' || first == '\''))
			want_ok = 0; /* a quote that does not close on its line */
		else if (!writable(value, e->quote))
			want_ok = 0;
	}
	if (!assigning && append && !writable(value, '\0'))
		want_ok = 0;
	appended = !assigning && append;

	rc = envfile_set(text, len, key, value, append, &out, &replaced, &err);
	if (!want_ok) {
		FUZZ_CHECK(rc == ST_EUSAGE && err.code == ST_EUSAGE && err.message[0]);
		FUZZ_CHECK(replaced == 0);
		goto out;
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(replaced == (appended ? 1 : assigning));
	if (!assigning && !append) {
		FUZZ_CHECK(out.len == len && (!len || !memcmp(out.buf, text, len)));
		goto out;
	}

	/* The new text parses to the same entries, the key's holding value. */
	FUZZ_CHECK(envfile_parse(out.buf ? out.buf : "", out.len, &nef, &err) == 0);
	FUZZ_CHECK(nef.n == old->n + (size_t)appended);
	for (i = 0; i < old->n; i++) {
		const struct envfile_entry *o = &old->entries[i], *n = &nef.entries[i];

		FUZZ_CHECK(!strcmp(o->key, n->key) && o->line == n->line && o->quote == n->quote &&
			   o->exported == n->exported && o->bare == n->bare);
		if (!o->bare && !strcmp(o->key, key))
			FUZZ_CHECK(same_str(n->value, value));
		else
			FUZZ_CHECK(same_str(n->value, o->value));
	}
	if (appended) {
		const struct envfile_entry *n = &nef.entries[old->n];

		FUZZ_CHECK(!strcmp(n->key, key) && !n->bare && !n->quote && !n->exported);
	}
	FUZZ_CHECK(same_str(envfile_get(&nef, key), value));

	/* Line by line: untouched lines are byte-identical. */
	nl = malloc(sizeof(*nl));
	FUZZ_CHECK(nl != NULL);
	FUZZ_CHECK(split(out.buf, out.len, nl));
	FUZZ_CHECK(nl->n == ol->n + (size_t)appended);
	for (i = 0, j = 0; i < ol->n; i++) {
		size_t oa, ob, na, nb;
		const struct envfile_entry *oe = NULL;

		line_at(ol, i, &oa, &ob);
		line_at(nl, i, &na, &nb);
		while (j < old->n && (size_t)old->entries[j].line < i + 1)
			j++;
		if (j < old->n && (size_t)old->entries[j].line == i + 1)
			oe = &old->entries[j];
		if (oe && !oe->bare && !strcmp(oe->key, key)) {
			check_changed_line(text, oa, ob, out.buf, na, nb, oe, value);
		} else if (appended && i == ol->n - 1 && (ob == oa || text[ob - 1] != '\n')) {
			/* The last line, when it had no newline, gets one. */
			FUZZ_CHECK(nb - na >= ob - oa && !memcmp(text + oa, out.buf + na, ob - oa));
			FUZZ_CHECK(out.buf[nb - 1] == '\n');
			FUZZ_CHECK(nb - na - (ob - oa) == 1 ||
				   (nb - na - (ob - oa) == 2 && out.buf[nb - 2] == '\r'));
		} else {
			FUZZ_CHECK(ob - oa == nb - na && !memcmp(text + oa, out.buf + na, ob - oa));
		}
	}
	if (appended) {
		size_t na, nb, klen = strlen(key), vlen = strlen(value);

		line_at(nl, ol->n, &na, &nb);
		FUZZ_CHECK(nb - na >= klen + vlen + 2);
		FUZZ_CHECK(!memcmp(out.buf + na, key, klen) && out.buf[na + klen] == '=' &&
			   !memcmp(out.buf + na + klen + 1, value, vlen));
		FUZZ_CHECK(nb - na == klen + vlen + 2 ||
			   (nb - na == klen + vlen + 3 && out.buf[nb - 2] == '\r'));
		FUZZ_CHECK(out.buf[nb - 1] == '\n');
	}

	/* Idempotent: the same value again changes nothing. */
	FUZZ_CHECK(envfile_set(out.buf ? out.buf : "", out.len, key, value, append, &again,
			       &replaced2, &err) == 0);
	FUZZ_CHECK(replaced2 == (appended ? 1 : assigning));
	FUZZ_CHECK(again.len == out.len && (!out.len || !memcmp(again.buf, out.buf, out.len)));
out:
	free(nl);
	envfile_release(&nef);
	sbuf_release(&out);
	sbuf_release(&again);
}

#define NVALUES (sizeof(values) / sizeof(values[0]))
#define VALUES_PER_INPUT 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const values[] = {
		"", "plain", "a b", "x#y", "a #b", "#", "say \"hi\"", "it's", "$HOME", "${X}",
		"back\\slash", " lead", "trail ", "'q", "\"q", "two\nlines", "cr\rx", "tab\tin",
		"=eq", "export", "p@ss:w/rd%!&*()",
	};
	const char *text = (const char *)data;
	struct envfile ef = ENVFILE_INIT;
	struct st_error err = { 0 };
	struct lines *ol = malloc(sizeof(*ol));
	const char *keys[4] = { NULL, NULL, NULL, NULL };
	const char *extra[3] = { NULL, NULL, NULL };
	char fresh[32] = "ST_FUZZ_NEW", own[25];
	size_t i, k, v, first, nkeys = 0;
	int prev_line = 0, taken;

	FUZZ_CHECK(ol != NULL);
	if (!split(text, size, ol))
		goto out;
	FUZZ_CHECK(envfile_parse(text, size, &ef, &err) == 0);
	FUZZ_CHECK(ef.bad_line >= 0 && (size_t)ef.bad_line <= ol->n);
	for (i = 0; i < ef.n; i++) {
		const struct envfile_entry *e = &ef.entries[i];

		FUZZ_CHECK(e->key && e->key[0] && e->line > prev_line && (size_t)e->line <= ol->n);
		FUZZ_CHECK(e->bare == (e->value == NULL));
		FUZZ_CHECK(e->quote == '\0' || e->quote == '\'' || e->quote == '"');
		prev_line = e->line;
	}
	/* Keys: the first and last writable ones, one only ever bare, a fresh one. */
	for (i = 0; i < ef.n; i++)
		if (envfile_key_valid(ef.entries[i].key)) {
			keys[nkeys++] = ef.entries[i].key;
			break;
		}
	for (i = ef.n; i > 0; i--)
		if (envfile_key_valid(ef.entries[i - 1].key)) {
			if (!nkeys || strcmp(keys[0], ef.entries[i - 1].key))
				keys[nkeys++] = ef.entries[i - 1].key;
			break;
		}
	for (i = 0; i < ef.n; i++)
		if (ef.entries[i].bare && envfile_key_valid(ef.entries[i].key) &&
		    !envfile_get(&ef, ef.entries[i].key)) {
			keys[nkeys++] = ef.entries[i].key;
			break;
		}
	for (taken = 1; taken && strlen(fresh) < sizeof(fresh) - 1;) {
		taken = 0;
		for (i = 0; i < ef.n && !taken; i++)
			taken = !strcmp(ef.entries[i].key, fresh);
		if (taken)
			strcat(fresh, "X");
	}
	if (!taken)
		keys[nkeys++] = fresh;
	/* Values from the input: the first and last assigned, its first bytes. */
	for (i = 0; i < ef.n && !extra[0]; i++)
		extra[0] = ef.entries[i].value;
	for (i = ef.n; i > 0 && !extra[1]; i--)
		extra[1] = ef.entries[i - 1].value;
	k = size < sizeof(own) - 1 ? size : sizeof(own) - 1;
	memcpy(own, data, k);
	own[k] = '\0';
	extra[2] = own;

	/* A window of VALUES_PER_INPUT fixed values, where the input's hash
	 * says (each input checks the same ones every time), and the three
	 * from the input: all of them for every input would cost three times
	 * the time per input for little more coverage. */
	first = (size_t)(fuzz_hash(FUZZ_HASH_INIT, data, size) % NVALUES);
	for (k = 0; k < nkeys; k++)
		for (v = 0; v < VALUES_PER_INPUT + 3; v++) {
			const char *value = v < VALUES_PER_INPUT ? values[(first + v) % NVALUES]
								 : extra[v - VALUES_PER_INPUT];

			if (!value)
				continue;
			check_set(text, size, ol, &ef, keys[k], value, 0);
			check_set(text, size, ol, &ef, keys[k], value, 1);
		}
	/* Keys the writer refuses. */
	{
		struct sbuf out = SBUF_INIT;

		FUZZ_CHECK(envfile_set(text, size, "1BAD", "x", 1, &out, NULL, &err) == ST_EUSAGE);
		FUZZ_CHECK(envfile_set(text, size, "A-B", "x", 1, &out, NULL, &err) == ST_EUSAGE);
		FUZZ_CHECK(envfile_set(text, size, "", "x", 1, &out, NULL, &err) == ST_EUSAGE);
		sbuf_release(&out);
	}
out:
	envfile_release(&ef);
	FUZZ_CHECK(ef.n == 0 && ef.entries == NULL);
	free(ol);
	return 0;
}
