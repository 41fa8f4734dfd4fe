/* lib/redis against the sandbox's Redis. Keys live under
 * "spilttea-test:<pid>:" and are removed by the tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>

#include "redis.h"
#include "sandbox_env.h"
#include "timeutil.h"

#define NSCAN 10000
#define NDECOY 500

static struct redis_params params;
static char *password;
static char prefix[64];

static struct redis_conn *connect_ok(void)
{
	struct st_error err = { 0 };
	struct redis_conn *c = NULL;

	if (redis_connect(&params, &c, &err) != 0)
		fail_msg("redis_connect: %s (hint: %s)", err.message, err.hint);
	return c;
}

static void test_connect_and_info(void **state)
{
	struct st_error err = { 0 };
	struct redis_conn *c = connect_ok();
	struct redis_info info;
	struct redis_info_summary s;
	redisReply *r = NULL;
	long long maxmemory = 0;
	char label[300];

	(void)state;
	snprintf(label, sizeof(label), "%s:%d", params.host, params.port);
	assert_string_equal(redis_label(c), label);
	assert_int_equal(redis_info(c, NULL, &info, &err), 0);
	redis_info_summarize(&info, &s);
	assert_int_equal(strncmp(s.version, "7.", 2), 0);
	assert_true(s.used_memory > 0);
	assert_true(s.connected_clients >= 1);
	assert_true(s.evicted_keys >= 0);
	assert_true(s.keyspace_hits >= 0 && s.keyspace_misses >= 0);
	assert_true(s.maxmemory_policy[0] != '\0');
	/* The sandbox runs with maxmemory 64mb; INFO agrees with CONFIG GET. */
	assert_int_equal(s.maxmemory, 67108864);
	assert_int_equal(redis_command(c, &r, &err, "CONFIG", "GET", "maxmemory", (char *)NULL), 0);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 2);
	maxmemory = strtoll(r->element[1]->str, NULL, 10);
	freeReplyObject(r);
	assert_int_equal(maxmemory, s.maxmemory);
	assert_true(s.memory_percent > 0 && s.memory_percent < 100);
	redis_info_release(&info);

	/* One section only. */
	assert_int_equal(redis_info(c, "memory", &info, &err), 0);
	assert_non_null(redis_info_get_in(&info, "Memory", "used_memory"));
	assert_null(redis_info_get(&info, "redis_version"));
	redis_info_release(&info);
	redis_close(c);
}

static void test_commands_binary_safe(void **state)
{
	struct st_error err = { 0 };
	struct redis_conn *c = connect_ok();
	const char value[] = "a\0b %s %n \r\n*1\r\n";
	char key[128];
	const char *argv[3];
	size_t lens[3];
	redisReply *r = NULL;

	(void)state;
	snprintf(key, sizeof(key), "%sbinary", prefix);
	argv[0] = "SET";
	argv[1] = key;
	argv[2] = value;
	lens[0] = 3;
	lens[1] = strlen(key);
	lens[2] = sizeof(value) - 1;
	assert_int_equal(redis_command_argv(c, 3, argv, lens, &r, &err), 0);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	assert_int_equal(redis_command(c, &r, &err, "GET", key, (char *)NULL), 0);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_int_equal(r->len, sizeof(value) - 1);
	assert_memory_equal(r->str, value, sizeof(value) - 1);
	freeReplyObject(r);

	/* An error reply is a failure with the server's text. */
	assert_int_equal(redis_command(c, &r, &err, "INCR", key, (char *)NULL), ST_ESERVICE);
	assert_null(r);
	assert_non_null(strstr(err.message, "'INCR'"));
	assert_non_null(strstr(err.message, "not an integer"));
	/* ... and the connection goes on. */
	assert_int_equal(redis_command(c, NULL, &err, "DEL", key, (char *)NULL), 0);
	assert_int_equal(redis_command(c, &r, &err, "EXISTS", key, (char *)NULL), 0);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	redis_close(c);
}

static void test_select_db(void **state)
{
	struct st_error err = { 0 };
	struct redis_params p = params;
	struct redis_conn *c0 = connect_ok(), *c3 = NULL;
	redisReply *r = NULL;
	char key[128];

	(void)state;
	p.db = 3;
	assert_int_equal(redis_connect(&p, &c3, &err), 0);
	snprintf(key, sizeof(key), "%sdb3", prefix);
	assert_int_equal(redis_command(c3, NULL, &err, "SET", key, "x", (char *)NULL), 0);
	assert_int_equal(redis_command(c0, &r, &err, "EXISTS", key, (char *)NULL), 0);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	assert_int_equal(redis_command(c3, &r, &err, "EXISTS", key, (char *)NULL), 0);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_int_equal(redis_command(c3, NULL, &err, "DEL", key, (char *)NULL), 0);
	redis_close(c3);
	redis_close(c0);
}

static void test_auth_errors(void **state)
{
	const char *wrong = "wrong-Redis-Pw-77d1";
	struct st_error err = { 0 };
	struct redis_params p = params;
	struct redis_conn *c = NULL;
	char label[300];

	(void)state;
	snprintf(label, sizeof(label), "'%s:%d'", params.host, params.port);
	p.password = wrong;
	assert_int_equal(redis_connect(&p, &c, &err), ST_ESERVICE);
	assert_null(c);
	assert_non_null(strstr(err.message, "WRONGPASS"));
	assert_non_null(strstr(err.message, label));
	assert_null(strstr(err.message, wrong));
	assert_null(strstr(err.hint, wrong));
	assert_non_null(strstr(err.hint, "password"));

	p.password = NULL;
	assert_int_equal(redis_connect(&p, &c, &err), ST_ESERVICE);
	assert_null(c);
	assert_non_null(strstr(err.message, "NOAUTH"));
	assert_null(strstr(err.message, password));
}

/* Records which of the NSCAN keys a scan reported, and anything else. */
struct seen {
	char *hit;
	size_t plen;
	const char *pfx;
	long long calls, reported, strays;
};

static int record_keys(void *ud, const char *const *keys, const size_t *lens, size_t n, struct st_error *err)
{
	struct seen *s = ud;
	size_t i;

	(void)err;
	s->calls++;
	for (i = 0; i < n; i++) {
		long idx;
		char *end;

		s->reported++;
		assert_int_equal(strlen(keys[i]), lens[i]);
		if (lens[i] <= s->plen || memcmp(keys[i], s->pfx, s->plen) != 0) {
			s->strays++;
			continue;
		}
		idx = strtol(keys[i] + s->plen, &end, 10);
		if (*end || idx < 0 || idx >= NSCAN)
			s->strays++;
		else
			s->hit[idx] = 1;
	}
	return 0;
}

static void make_keys(struct redis_conn *c, const char *kind, int count)
{
	struct st_error err = { 0 };
	const char *argv[1 + 2 * 500];
	char (*names)[96] = calloc(500, sizeof(*names));
	int i, j;

	assert_non_null(names);
	/* MSET in batches of 500 keys. */
	for (i = 0; i < count; i += 500) {
		int n = count - i < 500 ? count - i : 500;

		argv[0] = "MSET";
		for (j = 0; j < n; j++) {
			snprintf(names[j], sizeof(names[j]), "%s%s:%d", prefix, kind, i + j);
			argv[1 + 2 * j] = names[j];
			argv[2 + 2 * j] = "v";
		}
		if (redis_command_argv(c, 1 + 2 * n, argv, NULL, NULL, &err) != 0)
			fail_msg("MSET: %s", err.message);
	}
	free(names);
}

static volatile sig_atomic_t scan_cancel;

/* Ctrl-C during the first batch. */
static int cancel_in_first(void *ud, const char *const *keys, const size_t *lens, size_t n,
			   struct st_error *err)
{
	(void)keys;
	(void)lens;
	(void)n;
	(void)err;
	(*(int *)ud)++;
	scan_cancel = 1;
	return 0;
}

static int stop_after_first(void *ud, const char *const *keys, const size_t *lens, size_t n, struct st_error *err)
{
	(void)keys;
	(void)lens;
	(void)n;
	(void)err;
	++*(int *)ud;
	return 1;
}

static int fail_in_callback(void *ud, const char *const *keys, const size_t *lens, size_t n, struct st_error *err)
{
	(void)ud;
	(void)keys;
	(void)lens;
	(void)n;
	return st_error_set(err, ST_EABORTED, "stopped by the callback");
}

static void test_scan_and_delete(void **state)
{
	struct st_error err = { 0 };
	struct redis_conn *c = connect_ok();
	struct seen s;
	char pattern[160], decoys[160], pfx[100];
	long long n = 0, deleted = 0;
	int i, calls = 0;
	double t0;

	(void)state;
	make_keys(c, "scan", NSCAN);
	make_keys(c, "decoy", NDECOY);
	make_keys(c, "scanx", 10); /* "scan:*" must not match "scanx:..." */

	snprintf(pfx, sizeof(pfx), "%sscan:", prefix);
	snprintf(pattern, sizeof(pattern), "%s*", pfx);
	snprintf(decoys, sizeof(decoys), "%sdecoy:*", prefix);
	memset(&s, 0, sizeof(s));
	s.hit = calloc(NSCAN, 1);
	s.pfx = pfx;
	s.plen = strlen(pfx);
	assert_non_null(s.hit);
	t0 = time_monotonic();
	assert_int_equal(redis_scan(c, pattern, 500, record_keys, &s, &err), 0);
	assert_true(time_monotonic() - t0 < 5);
	assert_int_equal(s.strays, 0);
	for (i = 0; i < NSCAN; i++)
		if (!s.hit[i])
			fail_msg("SCAN missed key %d", i);
	assert_true(s.reported >= NSCAN); /* SCAN may repeat a key, never more than that */
	assert_true(s.calls > 1);         /* batches, not one reply */
	free(s.hit);

	assert_int_equal(redis_count_matching(c, decoys, &n, &err), 0);
	assert_int_equal(n, NDECOY);

	/* The callback stops the scan early, or fails it. */
	assert_int_equal(redis_scan(c, pattern, 100, stop_after_first, &calls, &err), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(redis_scan(c, pattern, 100, fail_in_callback, NULL, &err), ST_EABORTED);
	assert_string_equal(err.message, "stopped by the callback");

	/* An interrupt stops a scan between batches, not after the whole
	 * keyspace (review item 5); deleting does not start at all. */
	redis_set_cancel(c, &scan_cancel);
	calls = 0;
	assert_int_equal(redis_scan(c, pattern, 100, cancel_in_first, &calls, &err), ST_EABORTED);
	assert_int_equal(calls, 1);
	assert_non_null(strstr(err.message, "interrupted"));
	assert_int_equal(redis_delete_matching(c, pattern, &deleted, &err), ST_EABORTED);
	assert_int_equal(deleted, 0);
	scan_cancel = 0;
	redis_set_cancel(c, NULL);

	/* Delete exactly the matching keys. */
	assert_int_equal(redis_delete_matching(c, "", &deleted, &err), ST_EUSAGE);
	assert_int_equal(redis_delete_matching(c, pattern, &deleted, &err), 0);
	assert_int_equal(deleted, NSCAN);
	assert_int_equal(redis_count_matching(c, pattern, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(redis_count_matching(c, decoys, &n, &err), 0);
	assert_int_equal(n, NDECOY);
	snprintf(pattern, sizeof(pattern), "%sscanx:*", prefix);
	assert_int_equal(redis_count_matching(c, pattern, &n, &err), 0);
	assert_int_equal(n, 10);

	/* Clean up everything this test made. */
	snprintf(pattern, sizeof(pattern), "%s*", prefix);
	assert_int_equal(redis_delete_matching(c, pattern, &deleted, &err), 0);
	assert_int_equal(deleted, NDECOY + 10);
	redis_close(c);
}

static void test_refused_fast(void **state)
{
	struct st_error err = { 0 };
	struct redis_params p = params;
	struct redis_conn *c = NULL;
	double t0, elapsed;

	(void)state;
	p.host = "127.0.0.1";
	p.port = test_closed_port();
	t0 = time_monotonic();
	assert_int_equal(redis_connect(&p, &c, &err), ST_ESERVICE);
	elapsed = time_monotonic() - t0;
	assert_null(c);
	assert_true(elapsed < 0.5);
	assert_non_null(strstr(err.message, "connection refused"));
	assert_non_null(strstr(err.hint, "spilttea-ops health"));
}

static void test_connect_timeout(void **state)
{
	struct st_error err = { 0 };
	struct redis_params p = params;
	struct redis_conn *c = NULL;
	int fillers[4], lfd, port = 0, i;
	double t0, elapsed;

	(void)state;
	lfd = test_full_listener(&port, fillers, 4);
	assert_true(lfd >= 0);
	p.host = "127.0.0.1";
	p.port = port;
	p.connect_timeout_s = 0.5;
	t0 = time_monotonic();
	assert_int_equal(redis_connect(&p, &c, &err), ST_ETIMEOUT);
	elapsed = time_monotonic() - t0;
	assert_null(c);
	assert_true(elapsed >= 0.45 && elapsed < 1.2);
	assert_non_null(strstr(err.message, "timed out"));
	for (i = 0; i < 4; i++)
		close(fillers[i]);
	close(lfd);
}

static void test_command_timeout(void **state)
{
	struct st_error err = { 0 };
	struct redis_params p = params;
	struct redis_conn *c = NULL;
	redisReply *r = NULL;
	char key[128];
	double t0, elapsed;

	(void)state;
	p.command_timeout_s = 0.5;
	assert_int_equal(redis_connect(&p, &c, &err), 0);
	snprintf(key, sizeof(key), "%sempty-list", prefix);
	t0 = time_monotonic();
	/* BLPOP blocks 3 s on an empty list: longer than the timeout. */
	assert_int_equal(redis_command(c, &r, &err, "BLPOP", key, "3", (char *)NULL), ST_ETIMEOUT);
	elapsed = time_monotonic() - t0;
	assert_null(r);
	assert_true(elapsed >= 0.45 && elapsed < 1.2);
	assert_non_null(strstr(err.message, "'BLPOP'"));
	/* The reply may still come: the connection refuses more commands. */
	assert_int_equal(redis_command(c, &r, &err, "PING", (char *)NULL), ST_ESERVICE);
	assert_non_null(strstr(err.message, "reconnect"));
	redis_close(c);

	/* A longer timeout lets the same command finish. */
	assert_int_equal(redis_connect(&p, &c, &err), 0);
	assert_int_equal(redis_set_command_timeout(c, 3, &err), 0);
	t0 = time_monotonic();
	assert_int_equal(redis_command(c, &r, &err, "BLPOP", key, "1", (char *)NULL), 0);
	assert_int_equal(r->type, REDIS_REPLY_NIL);
	assert_true(time_monotonic() - t0 >= 0.9);
	freeReplyObject(r);
	redis_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_and_info),
		cmocka_unit_test(test_commands_binary_safe),
		cmocka_unit_test(test_select_db),
		cmocka_unit_test(test_auth_errors),
		cmocka_unit_test(test_scan_and_delete),
		cmocka_unit_test(test_refused_fast),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_command_timeout),
	};
	int rc;

	if (sandbox_require("ST_REDIS_HOST", "ST_REDIS_PORT", "ST_REDIS_PASSWORD_FILE", (const char *)NULL) != 0)
		return 1;
	if (sandbox_redis_params(&params, &password) != 0)
		return 1;
	snprintf(prefix, sizeof(prefix), "spilttea-test:%d:", (int)getpid());
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(password);
	return rc;
}
