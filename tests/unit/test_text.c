#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "text.h"
#include "testutil.h"

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

/* text_read_file: the one whole-file reader (review 2 item 30). */
/* Daemon numbers out of an integer's range clamp instead of being UB
 * (CI's fuzzer found 6.8e125 as a container's memory usage). */
static void test_double_to_integer(void **state)
{
	(void)state;
	assert_true(text_double_to_u64(6.8272e125) == UINT64_MAX);
	assert_true(text_double_to_u64(18446744073709551616.0) == UINT64_MAX);
	assert_true(text_double_to_u64(18446744073709549568.0) == 18446744073709549568ull);
	assert_true(text_double_to_u64(-1.0) == 0);
	assert_true(text_double_to_u64(NAN) == 0);
	assert_true(text_double_to_u64(-INFINITY) == 0);
	assert_true(text_double_to_u64(INFINITY) == UINT64_MAX);
	assert_true(text_double_to_u64(1234.9) == 1234);
	assert_true(text_double_to_ll(1e300) == LLONG_MAX);
	assert_true(text_double_to_ll(-1e300) == LLONG_MIN);
	assert_true(text_double_to_ll(9223372036854775808.0) == LLONG_MAX);
	assert_true(text_double_to_ll(-9223372036854775808.0) == LLONG_MIN);
	assert_true(text_double_to_ll(NAN) == 0);
	assert_true(text_double_to_ll(-42.7) == -42);
}

static void test_read_file(void **state)
{
	struct st_error err = { 0 };
	char *dir = tu_mkdtemp(), path[600], link[600], *text = NULL;
	size_t len = 99;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/missing.env", dir);
	assert_int_equal(text_read_file(path, 100, 0, "env file", &text, &len, &err), ST_ENOTFOUND);
	assert_null(text);
	assert_int_equal(len, 0);
	assert_non_null(strstr(err.message, "env file '"));
	assert_non_null(strstr(err.message, "/missing.env' does not exist"));

	/* A directory is not a regular file. */
	assert_int_equal(text_read_file(dir, 100, 0, "env file", &text, &len, &err), ST_EIO);
	assert_non_null(strstr(err.message, "is not a regular file"));

	/* Empty: "" and length 0, not NULL. */
	snprintf(path, sizeof(path), "%s/empty", dir);
	tu_write(path, "");
	assert_int_equal(text_read_file(path, 100, TEXT_READ_WIPE, "file", &text, &len, &err), 0);
	assert_non_null(text);
	assert_string_equal(text, "");
	assert_int_equal(len, 0);
	text_free_wiped(text, len);

	/* Every byte, a NUL included, and a terminating NUL after them. */
	snprintf(path, sizeof(path), "%s/bytes", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite("A=1\0B=2\n", 1, 8, f), 8);
	fclose(f);
	assert_int_equal(text_read_file(path, 8, 0, "file", &text, &len, &err), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(text, "A=1\0B=2\n", 9);
	free(text);

	/* One byte over max is refused, at max it is read. */
	assert_int_equal(text_read_file(path, 7, 0, "release history", &text, &len, &err), ST_EIO);
	assert_null(text);
	assert_non_null(strstr(err.message, "release history '"));
	assert_non_null(strstr(err.message, "' is larger than 7 bytes"));

	/* A symbolic link is followed (a release layout's shared .env). */
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(text_read_file(link, 100, 0, "file", &text, NULL, &err), 0);
	assert_string_equal(text, "A=1");
	free(text);

	/* A regular file whose size says 0 (procfs): the buffer, sized from
	 * the size, grows as the bytes come. */
	assert_int_equal(text_read_file("/proc/self/status", 1 << 20, TEXT_READ_WIPE, "file", &text, &len, &err), 0);
	assert_true(len > 100);
	assert_int_equal(strncmp(text, "Name:", 5), 0);
	assert_int_equal(strlen(text), len);
	text_free_wiped(text, len);

	/* A large file, in one piece. */
	snprintf(path, sizeof(path), "%s/big", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	for (int i = 0; i < 100000; i++)
		fputc('a' + i % 26, f);
	fclose(f);
	assert_int_equal(text_read_file(path, 100000, TEXT_READ_WIPE, "file", &text, &len, &err), 0);
	assert_int_equal(len, 100000);
	assert_int_equal(text[99999], 'a' + 99999 % 26);
	assert_int_equal(text[100000], '\0');
	text_free_wiped(text, len);
	text_free_wiped(NULL, 0);

	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_seq_and_valid),
		cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_repair),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_one_line),
		cmocka_unit_test(test_double_to_integer),
		cmocka_unit_test(test_read_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
