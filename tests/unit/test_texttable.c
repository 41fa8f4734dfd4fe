#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "error.h"
#include "pgmaint.h"
#include "texttable.h"

static void test_layout(void **state)
{
	static const char *const headers[] = { "NAME", "SIZE", "NOTE" };
	const char *r1[] = { "Post", "1.2 MiB", "big" };
	const char *r2[] = { "Ünïcode", NULL, "tab\there\nnewline" };
	const char *r3[] = { "x", "", "" };
	struct texttable *t = NULL;
	struct sbuf sb = SBUF_INIT;

	(void)state;
	assert_int_equal(texttable_new(3, headers, &t), 0);
	assert_int_equal(texttable_add_row(t, r1), 0);
	assert_int_equal(texttable_add_row(t, r2), 0);
	assert_int_equal(texttable_add_row(t, r3), 0);
	assert_int_equal(texttable_rows(t), 3);
	assert_int_equal(texttable_render(t, 0, &sb), 0);
	/* Widths count characters, not bytes; control characters become
	 * spaces; no blanks at line ends; the last column is not padded. */
	assert_string_equal(sbuf_str(&sb),
			    "NAME     SIZE     NOTE\n"
			    "Post     1.2 MiB  big\n"
			    "Ünïcode           tab here newline\n"
			    "x\n");
	sbuf_reset(&sb);
	texttable_color_last(t, 0, TEXTTABLE_RED);
	texttable_color_last(t, 9, TEXTTABLE_RED); /* out of range: ignored */
	assert_int_equal(texttable_render(t, 1, &sb), 0);
	assert_non_null(strstr(sbuf_str(&sb), "\033[1mNAME\033[0m     \033[1mSIZE\033[0m"));
	assert_non_null(strstr(sbuf_str(&sb), "\n\033[31mx\033[0m\n"));
	sbuf_release(&sb);
	texttable_free(t);

	assert_int_equal(texttable_width("ab"), 2);
	assert_int_equal(texttable_width("é…"), 2);
	assert_int_equal(texttable_width(NULL), 0);
	assert_int_equal(texttable_new(0, headers, &t), ST_EUSAGE);
	assert_null(t);
	texttable_free(NULL);
}

static void test_format_bytes(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(pgmaint_format_bytes(0, b, sizeof(b)), "0 B");
	assert_string_equal(pgmaint_format_bytes(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(pgmaint_format_bytes(1024, b, sizeof(b)), "1.0 KiB");
	assert_string_equal(pgmaint_format_bytes(8192, b, sizeof(b)), "8.0 KiB");
	assert_string_equal(pgmaint_format_bytes(794624, b, sizeof(b)), "776 KiB");
	assert_string_equal(pgmaint_format_bytes(9017344, b, sizeof(b)), "8.6 MiB");
	assert_string_equal(pgmaint_format_bytes(5LL << 40, b, sizeof(b)), "5.0 TiB");
	assert_string_equal(pgmaint_format_bytes(-1, b, sizeof(b)), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_format_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
