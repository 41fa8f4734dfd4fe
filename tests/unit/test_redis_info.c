/* redis_info_parse() and its getters on canned bytes: no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

/* INFO everything from redis-server 7.0.15 (maxmemory 64mb, keys in db0
 * and db2, a few errors), bytes as sent: CRLF line ends. */
#define FIXTURE "tests/fixtures/redis7-info-everything.txt"

static char *read_fixture(size_t *len)
{
	const char *dir = getenv("ST_SOURCE_DIR");
	char path[4096];
	char *buf;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", FIXTURE);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static void parse_ok(const char *text, size_t len, struct redis_info *info)
{
	struct st_error err = { 0 };

	assert_int_equal(redis_info_parse(text, len, info, &err), 0);
}

static void test_fixture_crlf(void **state)
{
	struct redis_info info;
	struct redis_info_summary s;
	struct st_error err = { 0 };
	size_t len, i;
	char *text = read_fixture(&len);
	long long v = 0;
	double d = 0;

	(void)state;
	assert_non_null(memmem(text, len, "\r\n", 2)); /* the fixture really is CRLF */
	parse_ok(text, len, &info);
	assert_int_equal(info.ignored, 0);
	assert_true(info.n > 150);
	for (i = 0; i < info.n; i++) {
		assert_null(strchr(info.entries[i].key, '\r'));
		assert_null(strchr(info.entries[i].value, '\r'));
		assert_null(strchr(info.entries[i].section, '\r'));
	}
	assert_string_equal(redis_info_get(&info, "redis_version"), "7.0.15");
	assert_string_equal(redis_info_get(&info, "maxmemory_policy"), "noeviction");
	assert_string_equal(redis_info_get(&info, "config_file"), ""); /* empty value */
	assert_int_equal(redis_info_get_ll(&info, "maxmemory", &v, &err), 0);
	assert_int_equal(v, 67108864);
	assert_int_equal(redis_info_get_ll(&info, "used_memory", &v, &err), 0);
	assert_int_equal(v, 1092272);
	assert_int_equal(redis_info_get_double(&info, "mem_fragmentation_ratio", &d, &err), 0);
	assert_true(d > 0);
	/* Sections: case-insensitive, and a key is only found in its own. */
	assert_string_equal(redis_info_get_in(&info, "memory", "used_memory"), "1092272");
	assert_string_equal(redis_info_get_in(&info, "Memory", "used_memory"), "1092272");
	assert_null(redis_info_get_in(&info, "Server", "used_memory"));
	/* Keyspace lines and their fields. */
	assert_string_equal(redis_info_get_in(&info, "Keyspace", "db0"), "keys=3,expires=1,avg_ttl=3599948");
	assert_int_equal(redis_info_get_field_ll(&info, "db0", "keys", &v, &err), 0);
	assert_int_equal(v, 3);
	assert_int_equal(redis_info_get_field_ll(&info, "db0", "avg_ttl", &v, &err), 0);
	assert_int_equal(v, 3599948);
	assert_int_equal(redis_info_get_field_ll(&info, "db2", "expires", &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(redis_info_get_field_ll(&info, "errorstat_WRONGPASS", "count", &v, &err), 0);
	assert_int_equal(v, 4);

	redis_info_summarize(&info, &s);
	assert_string_equal(s.version, "7.0.15");
	assert_string_equal(s.role, "master");
	assert_string_equal(s.maxmemory_policy, "noeviction");
	assert_int_equal(s.maxmemory, 67108864);
	assert_int_equal(s.used_memory, 1092272);
	assert_true(s.memory_percent > 1.62 && s.memory_percent < 1.63);
	assert_true(s.connected_clients >= 1);
	assert_int_equal(s.evicted_keys, 0);
	assert_true(s.keyspace_hits >= 1);
	assert_true(s.keyspace_misses >= 1);
	assert_true(s.used_memory_rss > 0 && s.used_memory_peak > 0 && s.uptime_s >= 0);
	assert_int_equal(s.blocked_clients, 0);
	assert_int_equal(s.rejected_connections, 0);
	assert_int_equal(s.keys, 4);
	assert_int_equal(s.expires, 1);
	redis_info_release(&info);
	assert_null(info.entries);
	assert_int_equal(info.n, 0);
	free(text);
}

static void test_fixture_lf_same_as_crlf(void **state)
{
	struct redis_info crlf, lf;
	size_t len, i, o = 0;
	char *text = read_fixture(&len);
	char *stripped = malloc(len + 1);

	(void)state;
	assert_non_null(stripped);
	for (i = 0; i < len; i++)
		if (text[i] != '\r')
			stripped[o++] = text[i];
	parse_ok(text, len, &crlf);
	parse_ok(stripped, o, &lf);
	assert_int_equal(crlf.n, lf.n);
	for (i = 0; i < crlf.n; i++) {
		assert_string_equal(crlf.entries[i].section, lf.entries[i].section);
		assert_string_equal(crlf.entries[i].key, lf.entries[i].key);
		assert_string_equal(crlf.entries[i].value, lf.entries[i].value);
	}
	redis_info_release(&crlf);
	redis_info_release(&lf);
	free(stripped);
	free(text);
}

static void test_missing_and_bad_numbers(void **state)
{
	static const char text[] =
		"# Memory\r\n"
		"used_memory_human:1.04M\r\n"
		"huge:99999999999999999999\r\n"
		"negative:-5\r\n"
		"spaced: 12\r\n"
		"ratio:inf\r\n"
		"empty:\r\n"
		"maxmemory:0\r\n";
	struct redis_info info;
	struct redis_info_summary s;
	struct st_error err = { 0 };
	long long v = 7;
	double d = 7;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &info);
	assert_null(redis_info_get(&info, "used_memory"));
	assert_int_equal(redis_info_get_ll(&info, "used_memory", &v, &err), ST_ENOTFOUND);
	assert_non_null(strstr(err.message, "'used_memory'"));
	assert_int_equal(redis_info_get_ll(&info, "used_memory_human", &v, &err), ST_EPROTO);
	assert_int_equal(redis_info_get_ll(&info, "huge", &v, &err), ST_EPROTO);
	assert_int_equal(redis_info_get_ll(&info, "spaced", &v, &err), ST_EPROTO);
	assert_int_equal(redis_info_get_ll(&info, "empty", &v, &err), ST_EPROTO);
	assert_int_equal(v, 7); /* untouched on failure */
	assert_int_equal(redis_info_get_ll(&info, "negative", &v, NULL), 0);
	assert_int_equal(v, -5);
	assert_int_equal(redis_info_get_double(&info, "ratio", &d, &err), ST_EPROTO);
	assert_int_equal(redis_info_get_double(&info, "used_memory_human", &d, &err), ST_EPROTO);
	assert_int_equal(redis_info_get_double(&info, "nothing", &d, &err), ST_ENOTFOUND);
	assert_true(d == 7);

	/* maxmemory 0 is "no limit": no percentage, and nothing divides by 0.
	 * What INFO lacks is -1. */
	redis_info_summarize(&info, &s);
	assert_int_equal(s.maxmemory, 0);
	assert_int_equal(s.used_memory, -1);
	assert_true(s.memory_percent == -1);
	assert_int_equal(s.connected_clients, -1);
	assert_int_equal(s.evicted_keys, -1);
	assert_string_equal(s.version, "");
	assert_int_equal(s.keys, 0);
	redis_info_release(&info);
}

static void test_malformed_lines(void **state)
{
	static const char text[] =
		"\r\n"
		"no colon on this line\r\n"
		":value_without_key\r\n"
		"   \r\n"
		"#\r\n"
		"before_nul:x\0y\r\n"
		"#   Spaced Section  \r\n"
		"executable:/opt/redis:7/bin/redis-server\r\n"
		"lf_only:1\n"
		"\n"
		"cr_inside:a\rb\r\n"
		"last_without_newline:42";
	struct redis_info info;
	long long v = 0;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &info);
	assert_int_equal(info.ignored, 3); /* no colon, empty key, embedded NUL */
	assert_int_equal(info.n, 4);
	assert_null(redis_info_get(&info, "before_nul"));
	assert_string_equal(info.entries[0].section, "Spaced Section");
	assert_string_equal(redis_info_get(&info, "executable"), "/opt/redis:7/bin/redis-server");
	assert_string_equal(redis_info_get_in(&info, "spaced section", "lf_only"), "1");
	assert_string_equal(redis_info_get(&info, "cr_inside"), "a\rb");
	assert_int_equal(redis_info_get_ll(&info, "last_without_newline", &v, NULL), 0);
	assert_int_equal(v, 42);
	redis_info_release(&info);
}

static void test_empty_input(void **state)
{
	struct redis_info info;
	struct redis_info_summary s;

	(void)state;
	parse_ok("", 0, &info);
	assert_int_equal(info.n, 0);
	assert_null(redis_info_get(&info, "anything"));
	redis_info_summarize(&info, &s);
	assert_int_equal(s.used_memory, -1);
	redis_info_release(&info);
	redis_info_release(&info); /* twice is fine */
	redis_info_release(NULL);
}

static void test_keyspace_fields(void **state)
{
	static const char text[] =
		"# Keyspace\r\n"
		"db0:keys=10,expires=2,avg_ttl=0\r\n"
		"db15:keys=5,expires=5,avg_ttl=100,subexpiry=0\r\n"
		"dbx:keys=1000\r\n"
		"db1:keys=,expires=abc\r\n"
		"db2:expires=1\r\n";
	struct redis_info info;
	struct redis_info_summary s;
	struct st_error err = { 0 };
	long long v = 0;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &info);
	assert_int_equal(redis_info_get_field_ll(&info, "db15", "avg_ttl", &v, &err), 0);
	assert_int_equal(v, 100);
	assert_int_equal(redis_info_get_field_ll(&info, "db15", "subexpiry", &v, &err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(redis_info_get_field_ll(&info, "db0", "key", &v, &err), ST_ENOTFOUND); /* prefix only */
	assert_int_equal(redis_info_get_field_ll(&info, "db0", "nope", &v, &err), ST_ENOTFOUND);
	assert_non_null(strstr(err.message, "'nope'"));
	assert_int_equal(redis_info_get_field_ll(&info, "db9", "keys", &v, &err), ST_ENOTFOUND);
	assert_int_equal(redis_info_get_field_ll(&info, "db1", "keys", &v, &err), ST_EPROTO);
	assert_int_equal(redis_info_get_field_ll(&info, "db1", "expires", &v, &err), ST_EPROTO);
	assert_int_equal(redis_info_field_ll("a=1,b=2", "b", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(redis_info_field_ll("", "b", &v), ST_ENOTFOUND);
	/* Sums over dbN lines only ("dbx" is not one), skipping bad fields. */
	redis_info_summarize(&info, &s);
	assert_int_equal(s.keys, 15);
	assert_int_equal(s.expires, 8);
	redis_info_release(&info);
}

static void test_huge_values(void **state)
{
	const size_t big = 4 * 1024 * 1024;
	const size_t nkeys = 100000;
	struct redis_info info;
	struct st_error err = { 0 };
	char *text = malloc(big + 64);
	size_t o = 0, i;
	char *many;
	long long v = 0;

	(void)state;
	assert_non_null(text);
	o += (size_t)sprintf(text, "# Big\r\nhuge:");
	memset(text + o, 'v', big);
	o += big;
	o += (size_t)sprintf(text + o, "\r\nafter:1\r\n");
	parse_ok(text, o, &info);
	assert_int_equal(info.n, 2);
	assert_int_equal(strlen(redis_info_get(&info, "huge")), big);
	assert_int_equal(redis_info_get_ll(&info, "huge", &v, &err), ST_EPROTO);
	assert_string_equal(redis_info_get(&info, "after"), "1");
	redis_info_release(&info);
	free(text);

	/* Many entries: the table grows. */
	many = malloc(nkeys * 32);
	assert_non_null(many);
	for (o = 0, i = 0; i < nkeys; i++)
		o += (size_t)sprintf(many + o, "k%zu:%zu\n", i, i);
	parse_ok(many, o, &info);
	assert_int_equal(info.n, nkeys);
	assert_int_equal(redis_info_get_ll(&info, "k99999", &v, &err), 0);
	assert_int_equal(v, 99999);
	redis_info_release(&info);
	free(many);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_crlf),
		cmocka_unit_test(test_fixture_lf_same_as_crlf),
		cmocka_unit_test(test_missing_and_bad_numbers),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_keyspace_fields),
		cmocka_unit_test(test_huge_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
