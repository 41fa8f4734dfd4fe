/*
 * http.h without a server: what messages and results show of a URL
 * (never user:password, never the query), for answers that never come.
 * The real round trips are in tests/integration/test_http.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http.h"

#define SECRET_URL "http://ops:pa55word@127.0.0.1:1/health?token=t0ken"

static void assert_clean(const char *text)
{
	assert_null(strstr(text, "pa55word"));
	assert_null(strstr(text, "t0ken"));
	assert_null(strstr(text, "ops:"));
}

/* Review item 15: the result and the errors show the safe form only. */
static void test_probe_shows_a_safe_url(void **state)
{
	struct http_result res;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(http_global_init(&err), 0);
	/* Port 1 on loopback: refused at once. */
	assert_int_not_equal(http_probe(SECRET_URL, 2, NULL, &res, &err), 0);
	assert_string_equal(res.url, "http://127.0.0.1:1/health");
	assert_clean(err.message);
	assert_clean(res.error);
	assert_non_null(strstr(err.message, "http://127.0.0.1:1/health"));
	http_result_release(&res);

	/* Not a URL libcurl accepts: the message still hides what it can. */
	assert_int_equal(http_probe("http://ops:pa55word@exa mple/x?token=t0ken", 2, NULL, &res, &err),
			 ST_EUSAGE);
	assert_clean(err.message);
	assert_clean(res.error);
	assert_clean(res.url);
	http_result_release(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_shows_a_safe_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
