/* redact_url: the one way URLs are shown (results, health lines, messages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

static void check(const char *url, unsigned flags, const char *want)
{
	char *got = redact_url(url, flags);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_mask_password(void **state)
{
	(void)state;
	check("postgresql://spilttea:hunter2@127.0.0.1:5432/spilttea", 0,
	      "postgresql://spilttea:***@127.0.0.1:5432/spilttea");
	check("redis://:p@ss@w0rd@redis:6379/0", 0, "redis://:***@redis:6379/0");
	check("http://user@host/path?a=b:c@d", 0, "http://user@host/path?a=b:c@d");
	check("https://example.com:8443/x", 0, "https://example.com:8443/x");
	check("not a url: a@b", 0, "not a url: a@b");
	check("", 0, "");
}

static void test_for_display(void **state)
{
	const unsigned f = REDACT_URL_NO_USERINFO | REDACT_URL_NO_QUERY;

	(void)state;
	check("https://user:secret@api.example.com:8443/health?token=abc#x", f,
	      "https://api.example.com:8443/health");
	check("http://127.0.0.1:53001/health", f, "http://127.0.0.1:53001/health");
	check("http://h?k=v", f, "http://h");
	check("http://h#frag", f, "http://h");
	check("not a url", f, "not a url");
	/* The LAST '@' of the authority ends the userinfo. */
	check("https://u:p@ss@host/x", f, "https://host/x");
	/* A URL without its scheme still loses what looks like a password. */
	check("u:pw@host/path?q", f, "host/path");
	/* Only the query, the password masked. */
	check("https://u:pw@host/p?token=1", REDACT_URL_NO_QUERY, "https://u:***@host/p");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mask_password),
		cmocka_unit_test(test_for_display),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
