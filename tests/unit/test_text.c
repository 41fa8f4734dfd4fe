#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static void test_utf8_seq_and_valid(void **state)
{
	(void)state;
	assert_int_equal(text_utf8_seq("a", 1), 1);
	assert_int_equal(text_utf8_seq("\xc3\xa9", 2), 2);
	assert_int_equal(text_utf8_seq("\xc3\xa9", 1), 0);            /* cut short */
	assert_int_equal(text_utf8_seq("\xe2\x82\xac", 3), 3);        /* euro sign */
	assert_int_equal(text_utf8_seq("\xf0\x9f\x8d\xb5", 4), 4);    /* teacup */
	assert_int_equal(text_utf8_seq("\xc0\xaf", 2), 0);            /* overlong */
	assert_int_equal(text_utf8_seq("\xed\xa0\x80", 3), 0);        /* surrogate */
	assert_int_equal(text_utf8_seq("\xff", 1), 0);
	assert_int_equal(text_utf8_seq("", 1), 0);                     /* NUL */
	assert_true(text_utf8_valid("caf\xc3\xa9", 5));
	assert_false(text_utf8_valid("caf\xc3", 4));
	assert_false(text_utf8_valid("a\0b", 3));
}

static void test_utf8_cut(void **state)
{
	const char *s = "ab\xc3\xa9\xe2\x82\xac";   /* a b é € */

	(void)state;
	assert_int_equal(text_utf8_cut(s, 7), 7);
	assert_int_equal(text_utf8_cut(s, 6), 4);   /* inside the euro sign */
	assert_int_equal(text_utf8_cut(s, 5), 4);
	assert_int_equal(text_utf8_cut(s, 4), 4);
	assert_int_equal(text_utf8_cut(s, 3), 2);   /* inside é */
	assert_int_equal(text_utf8_cut(s, 0), 0);
	assert_int_equal(text_utf8_cut("\x80\x80", 2), 2); /* not ours to fix */
}

static void test_repair(void **state)
{
	size_t n = 0;
	char *r;

	(void)state;
	r = text_utf8_repair("ok \xff\xc3\xa9\0x", 8, &n);
	assert_non_null(r);
	assert_int_equal(n, strlen(r));
	assert_string_equal(r, "ok " TEXT_REPLACEMENT "\xc3\xa9" TEXT_REPLACEMENT "x");
	free(r);
	r = text_utf8_repair("", 0, &n);
	assert_string_equal(r, "");
	assert_int_equal(n, 0);
	free(r);
}

static void test_copy(void **state)
{
	char small[5];

	(void)state;
	text_copy(small, sizeof(small), "abc\xc3\xa9");  /* é would be cut in two */
	assert_string_equal(small, "abc");
	text_copy(small, sizeof(small), NULL);
	assert_string_equal(small, "");
	text_copy(small, sizeof(small), "abcd");
	assert_string_equal(small, "abcd");
}

static void test_one_line(void **state)
{
	char buf[32];
	const char *msg = "  Connection refused\r\n\tIs the server\x1b[31m running?  \n";

	(void)state;
	text_one_line(buf, sizeof(buf), msg, strlen(msg), 0);
	assert_string_equal(buf, "Connection refused Is the serve");
	text_one_line(buf, sizeof(buf), msg, strlen(msg), TEXT_FIRST_LINE | TEXT_LOWER_FIRST);
	assert_string_equal(buf, "connection refused");
	text_one_line(buf, sizeof(buf), "a\x1b[31mb \xff c", 11, 0);
	assert_string_equal(buf, "a [31mb ? c");
	/* Cut at a character boundary, never in the middle of one. */
	text_one_line(buf, 6, "abcd\xc3\xa9", 6, 0);
	assert_string_equal(buf, "abcd");
	/* A NUL ends the text. */
	text_one_line(buf, sizeof(buf), "ab\0cd", 5, 0);
	assert_string_equal(buf, "ab");
	text_one_line(buf, sizeof(buf), "FATAL: no", 9, TEXT_LOWER_FIRST);
	assert_string_equal(buf, "FATAL: no");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_seq_and_valid),
		cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_repair),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
