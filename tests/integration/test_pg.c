/* lib/pg and lib/pgstat against the sandbox's PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <string.h>

#include "pg.h"
#include "pgstat.h"
#include "sandbox_env.h"
#include "timeutil.h"

static struct pg_params params;
static char *password;

static struct pg_conn *connect_ok(const char *appname)
{
	struct pg_params p = params;
	struct st_error err = { 0 };
	struct pg_conn *c = NULL;
	int rc;

	p.application_name = appname;
	rc = pg_connect(&p, &c, &err);
	if (rc)
		fail_msg("pg_connect: %s (hint: %s)", err.message, err.hint);
	return c;
}

static void test_connect_and_server_info(void **state)
{
	struct st_error err = { 0 };
	struct pg_server_info info;
	struct pg_conn *c = connect_ok("spilttea-test");
	char label[300];

	(void)state;
	snprintf(label, sizeof(label), "%s:%d", params.host, params.port);
	assert_string_equal(pg_label(c), label);
	assert_int_equal(pg_server_info(c, 5, &info, &err), 0);
	assert_string_equal(info.database, params.database);
	assert_true(info.database_bytes > 1000000); /* an empty PostgreSQL 15 database is ~7 MB */
	assert_true(info.version_num >= 150000);
	assert_true(strncmp(info.version, "15", 2) == 0 || info.version_num >= 160000);
	assert_true(info.uptime_s > 0);
	assert_int_equal(info.in_recovery, 0);
	assert_true(pg_backend_pid(c) > 0);
	pg_close(c);
}

static void test_injection_is_data(void **state)
{
	const char *evil = "x'); DROP TABLE spilttea_test_t; -- \" $1 %s \\";
	const char *weird = "spilttea \"test\" table";
	const char *p1[1];
	struct st_error err = { 0 };
	struct pg_conn *c = connect_ok("spilttea-test");
	char *text = NULL, *ident = NULL, sql[256];
	long long n = 0;

	(void)state;
	p1[0] = evil;
	assert_int_equal(pg_query_text(c, "SELECT $1::text", 1, p1, 5, &text, &err), 0);
	assert_string_equal(text, evil);
	free(text);
	text = NULL;

	/* An identifier with quotes and spaces, through PQescapeIdentifier. */
	assert_int_equal(pg_quote_ident(c, weird, &ident, &err), 0);
	assert_string_equal(ident, "\"spilttea \"\"test\"\" table\"");
	snprintf(sql, sizeof(sql), "CREATE TEMP TABLE %s (v text)", ident);
	assert_int_equal(pg_exec(c, sql, 0, NULL, 5, &err), 0);
	snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES ($1)", ident);
	assert_int_equal(pg_exec(c, sql, 1, p1, 5, &err), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE v = $1", ident);
	assert_int_equal(pg_query_long(c, sql, 1, p1, 5, &n, &err), 0);
	assert_int_equal(n, 1);
	/* The "DROP TABLE" in the data did nothing: the table is still there. */
	snprintf(sql, sizeof(sql), "SELECT v FROM %s", ident);
	assert_int_equal(pg_query_text(c, sql, 0, NULL, 5, &text, &err), 0);
	assert_string_equal(text, evil);
	free(text);
	free(ident);
	pg_close(c);
}

static void test_getters_and_errors(void **state)
{
	struct st_error err = { 0 };
	struct pg_conn *c = connect_ok("spilttea-test");
	const char *p2[2] = { "40", "2" };
	long long n = 0;
	double d = 0;
	char *text = (char *)"unchanged";
	PGresult *res = NULL;

	(void)state;
	assert_int_equal(pg_query_long(c, "SELECT $1::int + $2::int", 2, p2, 5, &n, &err), 0);
	assert_int_equal(n, 42);
	assert_int_equal(pg_query_double(c, "SELECT $1::float8 / 16", 1, p2, 5, &d, &err), 0);
	assert_true(d == 2.5);
	assert_int_equal(pg_query_text(c, "SELECT NULL::text", 0, NULL, 5, &text, &err), 0);
	assert_null(text);
	assert_int_equal(pg_query_long(c, "SELECT 1 WHERE false", 0, NULL, 5, &n, &err), ST_ENOTFOUND);
	assert_int_equal(pg_query_long(c, "SELECT 'abc'", 0, NULL, 5, &n, &err), ST_EPROTO);
	assert_int_equal(pg_query_long(c, "SELECT NULL::int", 0, NULL, 5, &n, &err), ST_EPROTO);

	/* A server error: message and SQLSTATE, connection still usable. */
	assert_int_equal(pg_query(c, "SELECT * FROM spilttea_no_such_table", 0, NULL, 5, &res, &err), ST_ESERVICE);
	assert_null(res);
	assert_string_equal(pg_last_sqlstate(c), "42P01");
	assert_non_null(strstr(err.message, "does not exist"));
	assert_non_null(strstr(err.message, "SQLSTATE 42P01"));
	assert_int_equal(pg_query(c, "SELECT 1", 0, NULL, 5, &res, &err), 0);
	assert_string_equal(pg_last_sqlstate(c), "");
	assert_int_equal(PQntuples(res), 1);
	PQclear(res);
	/* Multiple statements cannot be smuggled through the extended protocol. */
	assert_int_equal(pg_exec(c, "SELECT 1; SELECT 2", 0, NULL, 5, &err), ST_ESERVICE);
	assert_string_equal(pg_last_sqlstate(c), "42601");
	pg_close(c);
}

static void test_statement_timeout(void **state)
{
	struct st_error err = { 0 };
	struct pg_conn *c = connect_ok("spilttea-test");
	char *text = NULL;
	double t0, elapsed;

	(void)state;
	t0 = time_monotonic();
	assert_int_equal(pg_exec(c, "SELECT pg_sleep(5)", 0, NULL, 0.3, &err), ST_ETIMEOUT);
	elapsed = time_monotonic() - t0;
	assert_true(elapsed >= 0.25 && elapsed < 1.5);
	assert_string_equal(pg_last_sqlstate(c), "57014");
	assert_non_null(strstr(err.message, "statement_timeout"));

	/* Still usable, and each call's timeout is what the session holds. */
	assert_int_equal(pg_query_text(c, "SHOW statement_timeout", 0, NULL, 0, &text, &err), 0);
	assert_string_equal(text, "0");
	free(text);
	assert_int_equal(pg_query_text(c, "SHOW statement_timeout", 0, NULL, 2.5, &text, &err), 0);
	assert_string_equal(text, "2500ms");
	free(text);

	/* Set inside a transaction, undone by ROLLBACK, set again after it. */
	assert_int_equal(pg_exec(c, "BEGIN", 0, NULL, 2.5, &err), 0);
	assert_int_equal(pg_query_text(c, "SHOW statement_timeout", 0, NULL, 7, &text, &err), 0);
	assert_string_equal(text, "7s");
	free(text);
	assert_int_equal(pg_exec(c, "ROLLBACK", 0, NULL, 7, &err), 0);
	assert_int_equal(pg_query_text(c, "SHOW statement_timeout", 0, NULL, 7, &text, &err), 0);
	assert_string_equal(text, "7s");
	free(text);

	/* Inside a transaction the timeout cancels too. */
	assert_int_equal(pg_exec(c, "BEGIN", 0, NULL, 5, &err), 0);
	assert_int_equal(pg_exec(c, "SELECT pg_sleep(5)", 0, NULL, 0.2, &err), ST_ETIMEOUT);
	assert_int_equal(pg_exec(c, "ROLLBACK", 0, NULL, 5, &err), 0);
	pg_close(c);
}

/* Host pid of the server process serving c, found by its process title
 * ("postgres: user db 127.0.0.1(PORT) idle"), whose PORT is our socket's.
 * Works for a containerised server too: host root sees every process. */
static pid_t backend_host_pid(struct pg_conn *c)
{
	struct sockaddr_in local;
	socklen_t len = sizeof(local);
	char needle[32], path[300], title[512];
	struct dirent *de;
	pid_t found = -1;
	DIR *proc;

	if (getsockname(PQsocket(pg_raw(c)), (struct sockaddr *)&local, &len) != 0 || local.sin_family != AF_INET)
		return -1;
	snprintf(needle, sizeof(needle), "(%d)", ntohs(local.sin_port));
	proc = opendir("/proc");
	if (!proc)
		return -1;
	while ((de = readdir(proc)) != NULL && found < 0) {
		FILE *f;
		size_t n;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fread(title, 1, sizeof(title) - 1, f);
		fclose(f);
		title[n] = '\0';
		if (strncmp(title, "postgres: ", 10) == 0 && strstr(title, needle))
			found = (pid_t)atoi(de->d_name);
	}
	closedir(proc);
	return found;
}

static void test_server_not_answering(void **state)
{
	struct st_error err = { 0 };
	struct pg_conn *c = connect_ok("spilttea-test-frozen");
	pid_t pid = backend_host_pid(c);
	double t0, elapsed;
	int rc, rc_after;

	(void)state;
	assert_true(pid > 0);
	/* Settle the session's statement_timeout first, so the frozen call is
	 * the query itself. */
	assert_int_equal(pg_exec(c, "SELECT 1", 0, NULL, 0.3, &err), 0);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	t0 = time_monotonic();
	rc = pg_exec(c, "SELECT 1", 0, NULL, 0.3, &err);
	elapsed = time_monotonic() - t0;
	rc_after = pg_exec(c, "SELECT 1", 0, NULL, 0.3, NULL);
	kill(pid, SIGCONT); /* before any assertion can leave the test */
	assert_int_equal(rc, ST_ETIMEOUT);
	assert_true(elapsed >= 0.75 && elapsed < 1.2); /* 0.3 s + 0.5 s grace */
	assert_non_null(strstr(err.message, "did not answer within 0.8s"));
	assert_int_equal(rc_after, ST_ESERVICE); /* unusable from now on */
	pg_close(c);
}

static void test_saturation(void **state)
{
	struct st_error err = { 0 };
	struct pg_conn *c = connect_ok("spilttea-test");
	struct pg_saturation before, after;
	int attempt, grew = 0;

	(void)state;
	/* Other sessions may come and go on a shared server: a few attempts. */
	for (attempt = 0; attempt < 5 && !grew; attempt++) {
		struct pg_conn *extra[3];
		int i;

		assert_int_equal(pg_connection_saturation(c, 5, &before, &err), 0);
		for (i = 0; i < 3; i++)
			extra[i] = connect_ok("spilttea-test-extra");
		assert_int_equal(pg_connection_saturation(c, 5, &after, &err), 0);
		for (i = 0; i < 3; i++)
			pg_close(extra[i]);
		grew = after.in_use - before.in_use == 3 && after.idle - before.idle == 3;
	}
	assert_true(grew);
	assert_true(after.max_connections > 0);
	assert_int_equal(after.usable, after.max_connections - after.superuser_reserved - after.reserved);
	assert_true(after.in_use >= 4);
	assert_true(after.active >= 1); /* our own query */
	assert_int_equal(after.active + after.idle + after.idle_in_transaction + after.other + after.unknown,
			 after.in_use);
	assert_true(after.in_database >= 4 && after.in_database <= after.in_use);
	assert_true(after.percent > 0 && after.percent < 100);
	assert_true(after.percent * after.usable / 100.0 > after.in_use - 0.01);
	pg_close(c);
}

/* Starts sql on c without waiting for it. */
static void send_async(struct pg_conn *c, const char *sql)
{
	if (!PQsendQueryParams(pg_raw(c), sql, 0, NULL, NULL, NULL, NULL, 0))
		fail_msg("PQsendQueryParams: %s", PQerrorMessage(pg_raw(c)));
}

/* Cancels what c runs and consumes its results. */
static void cancel_and_drain(struct pg_conn *c)
{
	PGcancel *cancel = PQgetCancel(pg_raw(c));
	char errbuf[256];
	PGresult *r;

	assert_non_null(cancel);
	assert_int_equal(PQcancel(cancel, errbuf, sizeof(errbuf)), 1);
	PQfreeCancel(cancel);
	while ((r = PQgetResult(pg_raw(c))) != NULL)
		PQclear(r);
}

static void test_longest_queries_and_transactions(void **state)
{
	struct st_error err = { 0 };
	struct pg_conn *c = connect_ok("spilttea-test");
	struct pg_conn *sleeper = connect_ok("spilttea-test-sleeper");
	struct pg_conn *txn = connect_ok("spilttea-test-txn");
	struct pg_activity *list = NULL;
	char sql[512];
	size_t n = 0, i;
	int found = 0, tries;

	(void)state;
	/* A long query text: the list keeps its first 200 characters. */
	snprintf(sql, sizeof(sql), "SELECT pg_sleep(10) /* %0300d */", 0);
	send_async(sleeper, sql);
	assert_int_equal(pg_exec(txn, "BEGIN", 0, NULL, 5, &err), 0);
	assert_int_equal(pg_exec(txn, "SELECT 1", 0, NULL, 5, &err), 0);

	for (tries = 0; tries < 20 && !found; tries++) {
		time_sleep(0.1);
		assert_int_equal(pg_longest_queries(c, 10, 5, &list, &n, &err), 0);
		for (i = 0; i < n; i++) {
			if (list[i].pid != pg_backend_pid(sleeper))
				continue;
			found = 1;
			assert_string_equal(list[i].state, "active");
			assert_string_equal(list[i].application, "spilttea-test-sleeper");
			assert_string_equal(list[i].database, params.database);
			assert_string_equal(list[i].user, params.user);
			assert_true(strncmp(list[i].query, "SELECT pg_sleep(10) /* 000", 26) == 0);
			assert_int_equal(strlen(list[i].query), PG_QUERY_TEXT_CHARS);
			assert_int_equal(list[i].query_truncated, 1);
			assert_true(list[i].duration_s >= 0 && list[i].duration_s < 10);
		}
		for (i = 0; i < n; i++)
			assert_int_not_equal(list[i].pid, pg_backend_pid(c));
		for (i = 1; i < n; i++)
			assert_true(list[i - 1].duration_s >= list[i].duration_s - 0.001);
		free(list);
		list = NULL;
	}
	assert_true(found);

	/* The open transaction, and its age growing. */
	found = 0;
	assert_int_equal(pg_longest_transactions(c, 50, 5, &list, &n, &err), 0);
	for (i = 0; i < n; i++) {
		if (list[i].pid == pg_backend_pid(txn)) {
			found = 1;
			assert_string_equal(list[i].state, "idle in transaction");
			assert_string_equal(list[i].query, "SELECT 1");
			assert_int_equal(list[i].query_truncated, 0);
		}
	}
	free(list);
	list = NULL;
	assert_true(found);

	/* limit is honoured */
	assert_int_equal(pg_longest_transactions(c, 1, 5, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	free(list);

	cancel_and_drain(sleeper);
	assert_int_equal(pg_exec(txn, "ROLLBACK", 0, NULL, 5, &err), 0);
	pg_close(txn);
	pg_close(sleeper);
	pg_close(c);
}

static void test_idle_and_terminate(void **state)
{
	struct st_error err = { 0 };
	struct pg_conn *c = connect_ok("spilttea-test");
	struct pg_conn *idle = connect_ok("spilttea-test-idle");
	struct pg_conn *busy = connect_ok("spilttea-test-busy");
	struct pg_activity *list = NULL;
	int pids[3];
	size_t n = 0, i, terminated = 99;
	int found = 0;

	(void)state;
	assert_int_equal(pg_exec(idle, "SELECT 1", 0, NULL, 5, &err), 0);
	send_async(busy, "SELECT pg_sleep(10)");
	time_sleep(1.2);

	assert_int_equal(pg_idle_connections(c, 1.0, 5, &list, &n, &err), 0);
	for (i = 0; i < n; i++) {
		assert_string_equal(list[i].state, "idle");
		assert_true(list[i].duration_s > 1.0);
		assert_int_not_equal(list[i].pid, pg_backend_pid(busy));
		if (list[i].pid == pg_backend_pid(idle))
			found = 1;
	}
	free(list);
	list = NULL;
	assert_true(found);
	/* Idle for an hour: not that one. */
	assert_int_equal(pg_idle_connections(c, 3600, 5, &list, &n, &err), 0);
	for (i = 0; i < n; i++)
		assert_int_not_equal(list[i].pid, pg_backend_pid(idle));
	free(list);

	/* Ours is never terminated; a busy one is spared when only idle ones
	 * may go; the idle one goes. */
	pids[0] = pg_backend_pid(c);
	pids[1] = pg_backend_pid(busy);
	pids[2] = pg_backend_pid(idle);
	assert_int_equal(pg_terminate_backends(c, pids, 3, 1.0, 5, &terminated, &err), 0);
	assert_int_equal(terminated, 1);
	time_sleep(0.2);
	assert_int_equal(pg_exec(idle, "SELECT 1", 0, NULL, 5, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "connection"));
	assert_int_equal(pg_exec(c, "SELECT 1", 0, NULL, 5, &err), 0);
	/* Unconditional: the busy one goes too. */
	assert_int_equal(pg_terminate_backends(c, pids, 2, -1, 5, &terminated, &err), 0);
	assert_int_equal(terminated, 1);
	assert_int_equal(pg_terminate_backends(c, pids, 0, -1, 5, &terminated, &err), 0);
	assert_int_equal(terminated, 0);
	pg_close(busy);
	pg_close(idle);
	pg_close(c);
}

static void test_refused_fast(void **state)
{
	struct pg_params p = params;
	struct st_error err = { 0 };
	struct pg_conn *c = NULL;
	char label[64];
	double t0, elapsed;

	(void)state;
	p.host = "127.0.0.1";
	p.port = test_closed_port();
	assert_true(p.port > 0);
	t0 = time_monotonic();
	assert_int_equal(pg_connect(&p, &c, &err), ST_ESERVICE);
	elapsed = time_monotonic() - t0;
	assert_null(c);
	assert_true(elapsed < 0.5);
	snprintf(label, sizeof(label), "'127.0.0.1:%d'", p.port);
	assert_non_null(strstr(err.message, label));
	assert_non_null(strstr(err.message, "connection refused"));
	assert_non_null(strstr(err.hint, "spilttea-ops health"));
	assert_null(strstr(err.message, password));
}

static void test_connect_timeout(void **state)
{
	struct pg_params p = params;
	struct st_error err = { 0 };
	struct pg_conn *c = NULL;
	int fillers[4], lfd, port = 0, i;
	double t0, elapsed;

	(void)state;
	lfd = test_full_listener(&port, fillers, 4);
	assert_true(lfd >= 0);
	p.host = "127.0.0.1";
	p.port = port;
	p.connect_timeout_s = 0.5; /* below libpq's own 2 s minimum */
	t0 = time_monotonic();
	assert_int_equal(pg_connect(&p, &c, &err), ST_ETIMEOUT);
	elapsed = time_monotonic() - t0;
	assert_null(c);
	assert_true(elapsed >= 0.45 && elapsed < 1.0);
	assert_non_null(strstr(err.message, "no answer within 0.5s"));
	assert_non_null(strstr(err.hint, "spilttea-ops health"));
	for (i = 0; i < 4; i++)
		close(fillers[i]);
	close(lfd);
}

static void test_wrong_password(void **state)
{
	const char *wrong = "wrong-Pw-4f9c1e";
	struct pg_params p = params;
	struct st_error err = { 0 };
	struct pg_conn *c = NULL;

	(void)state;
	p.password = wrong;
	assert_int_equal(pg_connect(&p, &c, &err), ST_ESERVICE);
	assert_null(c);
	assert_non_null(strstr(err.message, "password authentication failed"));
	assert_null(strstr(err.message, wrong));
	assert_null(strstr(err.hint, wrong));
	assert_null(strstr(err.message, password));
	assert_non_null(strstr(err.hint, "password"));

	/* A database that does not exist names itself. */
	p = params;
	p.database = "spilttea_no_such_db";
	assert_int_equal(pg_connect(&p, &c, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "spilttea_no_such_db"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_and_server_info),
		cmocka_unit_test(test_injection_is_data),
		cmocka_unit_test(test_getters_and_errors),
		cmocka_unit_test(test_statement_timeout),
		cmocka_unit_test(test_server_not_answering),
		cmocka_unit_test(test_saturation),
		cmocka_unit_test(test_longest_queries_and_transactions),
		cmocka_unit_test(test_idle_and_terminate),
		cmocka_unit_test(test_refused_fast),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_wrong_password),
	};
	int rc;

	if (sandbox_require("ST_PG_HOST", "ST_PG_PORT", "ST_PG_USER", "ST_PG_DATABASE", "ST_PG_PASSWORD_FILE",
			    (const char *)NULL) != 0)
		return 1;
	if (sandbox_pg_params(&params, &password) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(password);
	return rc;
}
