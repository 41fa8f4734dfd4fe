/*
 * redact.h - keeping secrets out of plans, journals and error messages.
 *
 * Two rules, applied wherever arguments leave the process (dry-run plan,
 * journal, error text):
 *  - by name (redact_name_is_secret): a value whose key names a secret is
 *    shown as "***" (plus arguments an action declares secret, which the
 *    engine handles);
 *  - by value: the text of every secret value is replaced by "***" in free
 *    text such as error messages, where a service may have echoed it
 *    (struct redact_set). Values shorter than REDACT_MIN_TEXT are hidden
 *    only where they make up a whole value: a secret "1" must not turn
 *    every 1 of a message into ***.
 */
#ifndef ST_REDACT_H
#define ST_REDACT_H

#include <stddef.h>
#include <jansson.h>

#define REDACTED "***"

/* 1 when name looks like it holds a secret, any case: it contains
 * password, passwd, passphrase, secret, token, credential or apikey, or has
 * pass, pwd, pw, key, auth or private as a whole word (words split at
 * '_', '-', '.', digits and camelCase: DB_PASS, apiKey, basicAuth; not
 * monkey, author, keyspace). The one rule for journal, plan, environment
 * variables and result columns. */
int redact_name_is_secret(const char *name);

/* Deep copy of v in which the value of every object member with a secret
 * name is replaced by "***". Caller frees (json_decref); NULL on ENOMEM. */
json_t *redact_json(const json_t *v);

/* Replaces each occurrence of each non-empty secrets[i] in the
 * NUL-terminated text (capacity cap) with "***", in place. */
void redact_text(char *text, size_t cap, const char *const *secrets, size_t n);

/* Secrets shorter than this are not searched for inside longer text. */
#define REDACT_MIN_TEXT 4

/* The secret values of a run or plan: deduplicated, longest first (so
 * "abcdef" is hidden before "abc" could leave "def" behind), no cap. A
 * zeroed struct (REDACT_SET_INIT) is an empty set. */
struct redact_set {
	char **values;       /* owned; sorted by length, longest first */
	size_t n, cap;
};

#define REDACT_SET_INIT { NULL, 0, 0 }

/* Adds a copy of value; NULL, "" and values already held are ignored.
 * 0 or ST_ENOMEM. */
int redact_set_add(struct redact_set *set, const char *value);

/* 1 when value is one of the secrets. */
int redact_set_contains(const struct redact_set *set, const char *value);

/* Adds the string values found under secret names anywhere in v (or every
 * string in v when secret is 1). 0 or ST_ENOMEM. */
int redact_set_collect(struct redact_set *set, const json_t *v, int secret);

/* Replaces each secret of at least REDACT_MIN_TEXT bytes in the
 * NUL-terminated text (capacity cap) with "***", in place. */
void redact_set_scrub(const struct redact_set *set, char *text, size_t cap);

/* In every string value inside v, in place: a value that is a secret
 * becomes "***" (whatever its length), and secrets of at least
 * REDACT_MIN_TEXT bytes inside longer text are replaced as by
 * redact_set_scrub(). 0 or ST_ENOMEM. */
int redact_set_scrub_json(const struct redact_set *set, json_t *v);

/* Frees the values and empties the set. */
void redact_set_release(struct redact_set *set);

/* ---- URLs ---------------------------------------------------------------- */

enum {
	/* Drop "user[:password]@" altogether (a URL shown in a message). */
	REDACT_URL_NO_USERINFO = 1u << 0,
	/* Drop "?query" and "#fragment" too (tokens travel there). */
	REDACT_URL_NO_QUERY = 1u << 1,
};

/*
 * The one way a URL is shown: without flags, "scheme://user:PASSWORD@host"
 * becomes "scheme://user:***@host" (a value of DATABASE_URL in a result)
 * and everything else is kept; flags drop more, as above. The authority
 * ends at the first '/', '?' or '#' after "://", its userinfo at its LAST
 * '@' (passwords may hold '@'). Text without "://" is kept as it is, except
 * that REDACT_URL_NO_USERINFO still drops what precedes such an '@' (a URL
 * missing its scheme) and REDACT_URL_NO_QUERY what follows '?' or '#'.
 * Caller frees; NULL on ENOMEM.
 */
char *redact_url(const char *url, unsigned flags);

#endif
