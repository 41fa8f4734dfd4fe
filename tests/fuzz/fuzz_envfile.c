/*
 * fuzz_envfile.c - .env parsing and rewriting (lib/envfile.c).
 *
 * Input: the file, optionally followed by a NUL byte and a value (without
 * one the value is "fuzz-value"). For the first keys of the file and for a
 * key it does not have, envfile_set() must either refuse (ST_EUSAGE) or
 * produce a file that parses to the same assignments except the key set,
 * which now reads back as the value; unrelated lines stay byte for byte
 * (a set of an absent key without append changes nothing at all).
 */
#include "fuzz.h"

#include <string.h>

#include "envfile.h"
#include "sbuf.h"

#define NEW_KEY "SPILTTEA_FUZZ_NEW"

/* Every key except skip reads the same in a and b. */
static void same_except(const struct envfile *a, const struct envfile *b, const char *skip)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		const char *va, *vb;

		if (skip && !strcmp(a->entries[i].key, skip))
			continue;
		va = envfile_get(a, a->entries[i].key);
		vb = envfile_get(b, a->entries[i].key);
		if (!vb || strcmp(va, vb) != 0) {
			fprintf(stderr, "key '%s' read '%s' before the rewrite, '%s' after\n",
				a->entries[i].key, va, vb ? vb : "(absent)");
			FUZZ_CHECK(0);
		}
	}
}

static void check_set(const char *text, size_t len, const struct envfile *before, const char *key,
		      const char *value, int append)
{
	struct sbuf out = SBUF_INIT;
	struct envfile after = ENVFILE_INIT;
	struct st_error err = { 0 };
	size_t replaced = 0;
	const char *got;
	int had = envfile_get(before, key) != NULL;
	int rc;

	rc = envfile_set(text, len, key, value, append, &out, &replaced, &err);
	if (rc) {
		FUZZ_CHECK(rc == ST_EUSAGE || rc == ST_ENOMEM);
		FUZZ_CHECK(err.message[0] != '\0');
		goto out;
	}
	if (!had && !append) {
		FUZZ_CHECK(replaced == 0);
		FUZZ_CHECK(out.len == len && (len == 0 || memcmp(out.buf, text, len) == 0));
		goto out;
	}
	FUZZ_CHECK(replaced > 0); /* had, or appended */
	if (envfile_parse(out.buf ? out.buf : "", out.len, &after, &err) != 0)
		goto out;
	got = envfile_get(&after, key);
	if (!got || strcmp(got, value) != 0) {
		fprintf(stderr, "after setting '%s' it reads '%s'\n--- before\n%.*s\n--- after\n%.*s\n", key,
			got ? got : "(absent)", (int)len, text, (int)out.len, out.buf ? out.buf : "");
		FUZZ_CHECK(0);
	}
	same_except(before, &after, key);
	same_except(&after, before, key);
	/* Same number of assignments (plus the appended one). */
	FUZZ_CHECK(after.n == before->n + (had ? 0 : 1));
out:
	envfile_release(&after);
	sbuf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nul;
	struct envfile ef = ENVFILE_INIT;
	struct st_error err = { 0 };
	char *value;
	size_t len = size, i;

	nul = memchr(data, '\0', size);
	if (nul) {
		len = (size_t)(nul - text);
		value = strndup(nul + 1, size - len - 1);
	} else {
		value = strdup("fuzz-value");
	}
	if (!value)
		return 0;
	if (envfile_parse(text, len, &ef, &err) != 0)
		goto out;
	for (i = 0; i < ef.n; i++) {
		FUZZ_CHECK(ef.entries[i].key != NULL && ef.entries[i].value != NULL);
		FUZZ_CHECK(ef.entries[i].line >= 1);
	}
	for (i = 0; i < ef.n && i < 4; i++) {
		if (!envfile_key_valid(ef.entries[i].key))
			continue;
		check_set(text, len, &ef, ef.entries[i].key, value, 0);
		/* Its own value back: still reads the same. */
		check_set(text, len, &ef, ef.entries[i].key, envfile_get(&ef, ef.entries[i].key), 0);
	}
	if (!envfile_get(&ef, NEW_KEY)) {
		check_set(text, len, &ef, NEW_KEY, value, 0);
		check_set(text, len, &ef, NEW_KEY, value, 1);
	}
out:
	envfile_release(&ef);
	free(value);
	return 0;
}
