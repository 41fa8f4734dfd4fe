#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "timeutil.h"

static void test_parse_duration(void **state)
{
	double s;

	(void)state;
	assert_int_equal(time_parse_duration("90", &s), 0);
	assert_true(s == 90);
	assert_int_equal(time_parse_duration("5m", &s), 0);
	assert_true(s == 300);
	assert_int_equal(time_parse_duration("1h", &s), 0);
	assert_true(s == 3600);
	assert_int_equal(time_parse_duration("2d", &s), 0);
	assert_true(s == 172800);
	assert_int_equal(time_parse_duration("250ms", &s), 0);
	assert_true(s > 0.2499 && s < 0.2501);
	assert_int_equal(time_parse_duration("-1s", &s), -1);
	assert_int_equal(time_parse_duration("5 m", &s), -1);
	assert_int_equal(time_parse_duration("", &s), -1);
	assert_int_equal(time_parse_duration("1w", &s), -1);
	/* Finite text, infinite seconds (review 11): refused. */
	assert_int_equal(time_parse_duration("1e306d", &s), -1);
	assert_int_equal(time_parse_duration("1e308h", &s), -1);
}

static void test_formats(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(time_format_rfc3339(1795819456.5, buf, sizeof(buf)), "2026-11-27T22:44:16.500Z");
	/* Rounded to the millisecond, not truncated: 16.1 is a double just
	 * below .1 and printed .099 before (found by fuzz/backup_manifest). */
	assert_string_equal(time_format_rfc3339(1795819456.0 + 0.1, buf, sizeof(buf)), "2026-11-27T22:44:16.100Z");
	assert_string_equal(time_format_rfc3339(66637752255.0 + 0.1, buf, sizeof(buf)), "4081-08-31T06:44:15.100Z");
	assert_string_equal(time_format_rfc3339(1795819456.9996, buf, sizeof(buf)), "2026-11-27T22:44:17.000Z");
	assert_string_equal(time_format_rfc3339(1e300, buf, sizeof(buf)), "9999-12-31T23:59:59.999Z");
	assert_string_equal(time_format_compact(1795819456.5, buf, sizeof(buf)), "20261127_224416");
	assert_string_equal(time_format_duration(0.85, buf, sizeof(buf)), "850ms");
	assert_string_equal(time_format_duration(12.34, buf, sizeof(buf)), "12.3s");
	assert_string_equal(time_format_duration(245, buf, sizeof(buf)), "4m05s");
	assert_string_equal(time_format_duration(3 * 3600 + 12 * 60, buf, sizeof(buf)), "3h12m");
	/* Durations a long cannot hold (they parse: finite) print as days,
	 * not as a wrapped negative number. */
	assert_string_equal(time_format_duration(2e15, buf, sizeof(buf)), "23148148148d");
	{
		double big;

		assert_int_equal(time_parse_duration("99999999999999999999d", &big), 0);
		assert_string_equal(time_format_duration(big, buf, sizeof(buf)), "100000000000000000000d");
	}
}

static void test_format_duration_exact(void **state)
{
	static const char *const texts[] = { "500ms", "30s", "5m", "2h", "7d", "90s", "1500ms",
					     "0s", "1.0000005s", NULL };
	char buf[40];
	double s, back;
	size_t i;

	(void)state;
	for (i = 0; texts[i]; i++) {
		assert_int_equal(time_parse_duration(texts[i], &s), 0);
		assert_string_equal(time_format_duration_exact(s, buf, sizeof(buf)), texts[i]);
		assert_int_equal(time_parse_duration(buf, &back), 0);
		assert_true(back == s);
	}
	assert_string_equal(time_format_duration_exact(3600 * 24 * 2 + 1, buf, sizeof(buf)), "172801s");
	/* Too large for whole milliseconds: still read back exactly. */
	assert_string_equal(time_format_duration_exact(1e20, buf, sizeof(buf)), "1e+20s");
}

static void test_sleep_cancellable(void **state)
{
	volatile sig_atomic_t flag = 0;
	double t0;

	(void)state;
	t0 = time_monotonic();
	assert_int_equal(time_sleep_cancellable(0.06, &flag), 0);
	assert_true(time_monotonic() - t0 >= 0.06);
	assert_int_equal(time_sleep_cancellable(0.01, NULL), 0);
	flag = 1;
	t0 = time_monotonic();
	assert_int_equal(time_sleep_cancellable(5, &flag), -1);
	assert_true(time_monotonic() - t0 < 0.5 * tu_time_scale());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_sleep_cancellable),
		cmocka_unit_test(test_format_duration_exact),
		cmocka_unit_test(test_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
