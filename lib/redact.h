/*
 * redact.h - keeping secrets out of plans, journals and error messages.
 *
 * Two rules, applied wherever arguments leave the process (dry-run plan,
 * journal, error text):
 *  - by name: a value whose key contains "password", "secret", "token" or
 *    "key" (any case) is shown as "***" (plus arguments an action declares
 *    secret, which the engine handles);
 *  - by value: the text of every secret value is replaced by "***" in free
 *    text such as error messages, where a service may have echoed it.
 */
#ifndef ST_REDACT_H
#define ST_REDACT_H

#include <stddef.h>
#include <jansson.h>

#define REDACTED "***"

/* 1 when name looks like it holds a secret (see above). */
int redact_name_is_secret(const char *name);

/* Deep copy of v in which the value of every object member with a secret
 * name is replaced by "***". Caller frees (json_decref); NULL on ENOMEM. */
json_t *redact_json(const json_t *v);

/* Replaces each occurrence of each non-empty secrets[i] in the
 * NUL-terminated text (capacity cap) with "***", in place. */
void redact_text(char *text, size_t cap, const char *const *secrets, size_t n);

/* Appends to out (a JSON array) the string values found under secret
 * names anywhere in v (or every string in v when secret is 1). */
void redact_collect(const json_t *v, int secret, json_t *out);

/* Runs redact_text() over every string value inside v, in place, with the
 * strings of the array secrets. 0 or -1 on ENOMEM. */
int redact_json_values(json_t *v, const json_t *secrets);

#endif
