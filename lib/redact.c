#include "redact.h"

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
