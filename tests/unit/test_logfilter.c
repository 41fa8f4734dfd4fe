#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "logfilter.h"

static unsigned cls(const char *line)
{
	return logcat_classify(line, strlen(line));
}

#define B(c) LOGCAT_BIT(LOGCAT_##c)

static void test_runbook_greps(void **state)
{
	(void)state;
	/* The runbook's greps, case-insensitive. */
	assert_int_equal(cls("2026-11-27T22:41:31Z error: database check failed"), B(ERROR) | B(DB));
	assert_int_equal(cls("TypeError: cannot read properties of undefined"), B(ERROR));
	assert_int_equal(cls("[Nest] WARN deprecated option"), B(WARN));
	assert_int_equal(cls("Warning: low disk"), B(WARN));
	assert_int_equal(cls("PrismaClientInitializationError: Can't reach database server"),
			 B(ERROR) | B(DB));
	assert_int_equal(cls("UnauthorizedException: jwt expired"), B(AUTH) | B(ERROR));
	assert_int_equal(cls("403 Forbidden resource"), B(AUTH));
	assert_int_equal(cls("JWT malformed"), B(AUTH));
	assert_int_equal(cls("Access to fetch blocked by CORS policy"), B(CORS));
	assert_int_equal(cls("S3 upload: credentials expired"), B(S3));
	assert_int_equal(cls("uploading to s3://spilttea-uploads/x.png"), B(S3));
	assert_int_equal(cls("AWS SDK retrying"), B(S3));
	assert_int_equal(cls("Nodemailer: message sent"), B(EMAIL));
	assert_int_equal(cls("sending e-mail to a@b"), B(EMAIL));
	assert_int_equal(cls("SMTP connection closed"), B(EMAIL));
	assert_int_equal(cls("POST /posts/12/view 201"), B(VIEW));
	assert_int_equal(cls("viewCount incremented for 12"), B(VIEW));
	assert_int_equal(cls("fatal: out of memory"), B(ERROR));
	assert_int_equal(cls("unhandled exception"), B(ERROR));
	assert_int_equal(cls("listening on 127.0.0.1:3001"), 0);
	assert_int_equal(cls(""), 0);
}

static void test_word_start(void **state)
{
	(void)state;
	/* Short terms must start a word; long ones match anywhere, as grep. */
	assert_int_equal(cls("GET /posts3 200"), 0);
	assert_int_equal(cls("a review of the app"), 0);
	assert_int_equal(cls("preview ready"), 0);
	assert_int_equal(cls("lawsuit filed"), 0);
	assert_int_equal(cls("decors updated"), 0);
	assert_int_equal(cls("xjwt"), 0);
	assert_int_equal(cls("ERRORS: 3"), B(ERROR));
	assert_int_equal(cls("myemailservice"), B(EMAIL));
	/* Case of the text does not matter, nor a word start after punctuation. */
	assert_int_equal(cls("[cors] origin refused"), B(CORS));
	assert_int_equal(cls("S3Client: AccessDenied"), B(S3));
}

static void test_access_lines(void **state)
{
	const char *l500 = "127.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"GET /status/500 HTTP/1.1\" 500 18 "
			   "\"-\" \"curl/7.88.1\" \"-\" rt=0.001";
	const char *l401 = "10.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"POST /auth/login HTTP/1.1\" 401 40 "
			   "\"-\" \"Mozilla\" \"-\" rt=0.003";
	const char *l404 = "10.0.0.1 - - [27/Nov/2026:22:41:31 +0000] \"GET /x HTTP/2.0\" 404 40 \"-\" \"-\" \"-\"";

	(void)state;
	assert_int_equal(logcat_http_status(l500, strlen(l500)), 500);
	assert_int_equal(cls(l500), B(ERROR));
	assert_int_equal(logcat_http_status(l401, strlen(l401)), 401);
	assert_int_equal(cls(l401), B(AUTH));
	assert_int_equal(logcat_http_status(l404, strlen(l404)), 404);
	assert_int_equal(cls(l404), 0);
	assert_int_equal(logcat_http_status("HTTP/1.1\" 20", 12), 0);
	assert_int_equal(logcat_http_status("no request here", 15), 0);
	assert_int_equal(logcat_http_status("\"GET / HTTP/1.1\" 5000 1", 23), 0);
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(logcat_classify("error", 3), 0);
	assert_int_equal(logcat_http_status(l500, 45), 0);
}

static void test_names(void **state)
{
	enum logcat c;
	size_t i;

	(void)state;
	for (i = 0; i < LOGCAT_COUNT; i++) {
		assert_int_equal(logcat_parse(logcat_name((enum logcat)i), &c), 0);
		assert_int_equal(c, i);
		assert_true(strlen(logcat_terms((enum logcat)i)) > 0);
	}
	assert_int_equal(logcat_parse("errors", &c), 0);
	assert_int_equal(c, LOGCAT_ERROR);
	assert_int_equal(logcat_parse("WARNINGS", &c), 0);
	assert_int_equal(c, LOGCAT_WARN);
	assert_int_equal(logcat_parse("database", &c), 0);
	assert_int_equal(c, LOGCAT_DB);
	assert_int_equal(logcat_parse("nodemailer", &c), 0);
	assert_int_equal(c, LOGCAT_EMAIL);
	assert_int_equal(logcat_parse("aws", &c), 0);
	assert_int_equal(c, LOGCAT_S3);
	assert_int_equal(logcat_parse("nope", &c), -1);
	assert_int_equal(logcat_parse(NULL, &c), -1);
	assert_string_equal(logcat_name(LOGCAT_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runbook_greps),
		cmocka_unit_test(test_word_start),
		cmocka_unit_test(test_access_lines),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
