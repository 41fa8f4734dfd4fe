/* The configuration-to-client glue, against the sandbox through its own
 * config.yaml: what every command relies on to reach the services. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox_env.h"
#include "services.h"

static struct st_config *cfg;

static int setup(void **state)
{
	struct st_error err = { 0 };

	(void)state;
	if (sandbox_require("SPILTTEA_OPS_CONFIG", NULL) != 0)
		return -1;
	if (config_load(getenv("SPILTTEA_OPS_CONFIG"), &cfg, &err) != 0) {
		fprintf(stderr, "cannot load sandbox config: %s\n", err.message);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	config_free(cfg);
	return 0;
}

static void test_lazy_handles_and_reconnect(void **state)
{
	struct st_error err = { 0 };
	struct services s;
	struct pg_conn *pg, *pg2;
	struct redis_conn *r;
	struct docker_client *d;
	long long one = 0;

	(void)state;
	services_init(&s, cfg);
	assert_int_equal(services_pg(&s, &pg, &err), 0);
	assert_int_equal(pg_query_long(pg, "SELECT 1", 0, NULL, 5, &one, &err), 0);
	assert_int_equal(one, 1);
	assert_int_equal(services_pg(&s, &pg2, &err), 0);
	assert_ptr_equal(pg, pg2); /* reused while usable */
	assert_int_equal(services_redis(&s, &r, &err), 0);
	assert_int_equal(redis_command(r, NULL, &err, "PING", NULL), 0);
	assert_int_equal(services_docker(&s, &d, &err), 0);
	assert_int_equal(docker_ping(d, 5, &err), 0);
	services_release(&s);
	assert_null(s.pg);
}

static void test_container_lookup(void **state)
{
	struct st_error err = { 0 };
	const char *c;

	(void)state;
	assert_int_equal(services_container(cfg, "backend", &c, &err), 0);
	assert_string_equal(c, "spilttea-backend");
	assert_int_equal(services_container(cfg, "nope", &c, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "service 'nope' is not configured"));
	assert_non_null(strstr(err.hint, "services:"));
}

static void test_other_database(void **state)
{
	struct st_error err = { 0 };
	struct pg_conn *pg = NULL;
	char *db = NULL;

	(void)state;
	assert_int_equal(services_pg_connect(cfg, "postgres", "spilttea-ops-test", &pg, &err), 0);
	assert_int_equal(pg_query_text(pg, "SELECT current_database()", 0, NULL, 5, &db, &err), 0);
	assert_string_equal(db, "postgres");
	free(db);
	pg_close(pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lazy_handles_and_reconnect),
		cmocka_unit_test(test_container_lookup),
		cmocka_unit_test(test_other_database),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
