#include "redact.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int redact_name_is_secret(const char *name)
{
	static const char *const words[] = { "password", "secret", "token", "key" };
	size_t i;

	if (!name)
		return 0;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(name, words[i]))
			return 1;
	return 0;
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

void redact_collect(const json_t *v, int secret, json_t *out)
{
	const char *k;
	json_t *m;
	size_t i;

	if (json_is_string(v) && secret) {
		if (json_string_length(v) > 0)
			json_array_append_new(out, json_string(json_string_value(v)));
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, m)
			redact_collect(m, secret || redact_name_is_secret(k), out);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			redact_collect(m, secret, out);
	}
}

/* Secrets as a C array for redact_text (borrowed strings). */
static size_t secret_list(const json_t *secrets, const char **list, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < json_array_size(secrets) && n < max; i++) {
		const char *s = json_string_value(json_array_get(secrets, i));

		if (s && *s)
			list[n++] = s;
	}
	return n;
}

int redact_json_values(json_t *v, const json_t *secrets)
{
	const char *list[64];
	size_t n = secret_list(secrets, list, 64), i;
	const char *k;
	json_t *m;

	if (n == 0)
		return 0;
	if (json_is_string(v)) {
		size_t len = json_string_length(v), j;
		size_t cap = len * 3 + sizeof(REDACTED);
		char *buf;
		int hit = 0;

		for (j = 0; j < n && !hit; j++)
			hit = strstr(json_string_value(v), list[j]) != NULL;
		if (!hit)
			return 0;
		/* Worst case every character is a one-character secret. */
		buf = malloc(cap);
		if (!buf)
			return -1;
		memcpy(buf, json_string_value(v), len + 1);
		redact_text(buf, cap, list, n);
		hit = json_string_set(v, buf);
		free(buf);
		return hit ? -1 : 0;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, k, m)
			if (redact_json_values(m, secrets))
				return -1;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (redact_json_values(m, secrets))
				return -1;
	}
	return 0;
}
