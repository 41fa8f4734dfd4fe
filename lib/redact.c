#include "redact.h"
#include "sbuf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

/* Long enough to mean a secret wherever they appear in a name. */
static const char *const secret_parts[] = { "password", "passwd", "passphrase", "secret", "token",
					    "credential", "apikey" };
/* Short words that do only as a whole word ("key", not "monkey"). */
static const char *const secret_words[] = { "pass", "pwd", "pw", "key", "auth", "private" };

static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Words of a name: split at anything not a letter or digit, between
 * letters and digits, and at camelCase humps ("apiKey", "HTTPAuth"). */
static int has_secret_word(const char *name)
{
	const char *p = name, *start;
	size_t i, len;

	while (*p) {
		while (*p && !is_lower(*p) && !is_upper(*p) && !is_digit(*p))
			p++;
		start = p;
		while (*p && (is_lower(*p) || is_upper(*p) || is_digit(*p))) {
			char c = *p, n = p[1], nn = n ? p[2] : '\0';

			p++;
			if ((is_digit(c) != is_digit(n)) || (is_lower(c) && is_upper(n)) ||
			    (is_upper(c) && is_upper(n) && is_lower(nn)))
				break;
		}
		len = (size_t)(p - start);
		for (i = 0; len && i < sizeof(secret_words) / sizeof(secret_words[0]); i++)
			if (strlen(secret_words[i]) == len && !strncasecmp(start, secret_words[i], len))
				return 1;
	}
	return 0;
}

int redact_name_is_secret(const char *name)
{
	size_t i;

	if (!name)
		return 0;
	for (i = 0; i < sizeof(secret_parts) / sizeof(secret_parts[0]); i++)
		if (strcasestr(name, secret_parts[i]))
			return 1;
	return has_secret_word(name);
}

json_t *redact_json(const json_t *v)
{
	json_t *out = NULL;

	if (!v)
		return NULL;
	if (json_is_object(v)) {
		const char *k;
		json_t *member;

		out = json_object();
		if (!out)
			return NULL;
		/* json_object_foreach needs a non-const object; it does not modify it. */
		json_object_foreach((json_t *)v, k, member) {
			json_t *c = redact_name_is_secret(k) ? json_string(REDACTED) : redact_json(member);

			if (!c || json_object_set_new(out, k, c) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *member;

		out = json_array();
		if (!out)
			return NULL;
		json_array_foreach(v, i, member) {
			json_t *c = redact_json(member);

			if (!c || json_array_append_new(out, c) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	return json_deep_copy(v);
}

void redact_text(char *text, size_t cap, const char *const *secrets, size_t n)
{
	static const size_t rl = sizeof(REDACTED) - 1;
	size_t i;

	if (!text || cap == 0)
		return;
	for (i = 0; i < n; i++) {
		const char *s = secrets[i];
		size_t sl = s ? strlen(s) : 0;
		char *p = text;

		if (sl == 0)
			continue;
		while ((p = strstr(p, s)) != NULL) {
			size_t tail = strlen(p + sl);
			size_t used = (size_t)(p - text);

			if (used + rl + 1 > cap) {
				*p = '\0';
				break;
			}
			/* "***" may be longer than the secret: truncate the tail
			 * rather than overflow a full buffer. */
			if (used + rl + tail + 1 > cap)
				tail = cap - 1 - used - rl;
			memmove(p + rl, p + sl, tail);
			memcpy(p, REDACTED, rl);
			p[rl + tail] = '\0';
			p += rl;
		}
	}
}

int redact_set_add(struct redact_set *set, const char *value)
{
	size_t len, i;
	char *copy;

	if (!value || !*value || redact_set_contains(set, value))
		return 0;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 16;
		char **v = realloc(set->values, cap * sizeof(*v));

		if (!v)
			return ST_ENOMEM;
		set->values = v;
		set->cap = cap;
	}
	if (!(copy = strdup(value)))
		return ST_ENOMEM;
	len = strlen(value);
	for (i = set->n; i > 0 && strlen(set->values[i - 1]) < len; i--)
		set->values[i] = set->values[i - 1];
	set->values[i] = copy;
	set->n++;
	return 0;
}

int redact_set_contains(const struct redact_set *set, const char *value)
{
	size_t i;

	for (i = 0; value && i < set->n; i++)
		if (!strcmp(set->values[i], value))
			return 1;
	return 0;
}

int redact_set_collect(struct redact_set *set, const json_t *v, int secret)
{
	const char *k;
	json_t *m;
	size_t i;

	if (json_is_string(v) && secret)
		return redact_set_add(set, json_string_value(v));
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, m)
			if (redact_set_collect(set, m, secret || redact_name_is_secret(k)))
				return ST_ENOMEM;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (redact_set_collect(set, m, secret))
				return ST_ENOMEM;
	}
	return 0;
}

void redact_set_scrub(const struct redact_set *set, char *text, size_t cap)
{
	size_t i;

	/* Longest first: each pass sees what the longer secrets left. */
	for (i = 0; text && i < set->n; i++)
		if (strlen(set->values[i]) >= REDACT_MIN_TEXT)
			redact_text(text, cap, (const char *const *)&set->values[i], 1);
}

int redact_set_scrub_json(const struct redact_set *set, json_t *v)
{
	const char *k;
	json_t *m;
	size_t i;

	if (set->n == 0)
		return 0;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v), cap;
		char *buf;
		int hit = 0;

		if (redact_set_contains(set, s))
			return json_string_set(v, REDACTED) ? ST_ENOMEM : 0;
		for (i = 0; i < set->n && !hit; i++)
			hit = strlen(set->values[i]) >= REDACT_MIN_TEXT && strstr(s, set->values[i]);
		if (!hit)
			return 0;
		/* "***" is never longer than a secret of REDACT_MIN_TEXT bytes. */
		cap = len + sizeof(REDACTED);
		buf = malloc(cap);
		if (!buf)
			return ST_ENOMEM;
		memcpy(buf, s, len + 1);
		redact_set_scrub(set, buf, cap);
		hit = json_string_set(v, buf);
		free(buf);
		return hit ? ST_ENOMEM : 0;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, k, m)
			if (redact_set_scrub_json(set, m))
				return ST_ENOMEM;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (redact_set_scrub_json(set, m))
				return ST_ENOMEM;
	}
	return 0;
}

void redact_set_release(struct redact_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->values[i]);
	free(set->values);
	memset(set, 0, sizeof(*set));
}

/* ---- URLs ---------------------------------------------------------------- */

char *redact_url(const char *url, unsigned flags)
{
	const char *scheme = strstr(url, "://");
	const char *auth = scheme ? scheme + 3 : url, *end, *at = NULL, *colon, *p, *rest;
	struct sbuf sb = SBUF_INIT;
	int bad;

	end = auth + strcspn(auth, "/?#");
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	bad = sbuf_append(&sb, url, (size_t)(auth - url));
	rest = auth;
	if (at && (flags & REDACT_URL_NO_USERINFO)) {
		rest = at + 1;
	} else if (at && colon && scheme) {
		bad = bad || sbuf_append(&sb, auth, (size_t)(colon + 1 - auth)) || sbuf_puts(&sb, REDACTED);
		rest = at;
	}
	bad = bad || sbuf_append(&sb, rest, flags & REDACT_URL_NO_QUERY ? strcspn(rest, "?#") : strlen(rest));
	if (bad) {
		sbuf_release(&sb);
		return NULL;
	}
	return sbuf_detach(&sb);
}
