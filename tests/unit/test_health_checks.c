/*
 * test_health_checks.c - the configuration glue of health (which checks a
 * configuration yields, their ids and order), the state file kept between
 * runs, and the report of a configuration error. No service is contacted:
 * the tasks are built and released, never run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "health_checks.h"

static char dir[] = "/tmp/test_health_checks.XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct st_config *load(const char *yaml)
{
	char path[256];
	struct st_config *cfg = NULL;
	struct st_error err;
	FILE *f;

	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	if (config_load_file(path, "--config", &cfg, &err) != 0)
		fail_msg("config: %s", err.message);
	return cfg;
}

/* Every id the tasks would produce, space-separated. */
static char *ids(struct health_task *t, size_t n)
{
	static char buf[4096];
	size_t i, j, len = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		for (j = 0; j < t[i].n_names; j++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " " : "",
						t[i].names[j]);
	return buf;
}

#define BASE \
	"state_dir: /srv/st\n" \
	"postgres: { host: db, user: u, database: d, password_env: SPILTTEA_TEST_NOPE }\n" \
	"redis: { host: cache }\n"

static void test_full_configuration(void **state)
{
	struct st_config *cfg;
	struct health_task *t = NULL;
	struct st_error err;
	size_t n = 0;

	(void)state;
	cfg = load(BASE
		   "services:\n"
		   "  postgres: { container: spilttea-postgres }\n"
		   "  redis:    { container: spilttea-redis }\n"
		   "  backend:  { container: spilttea-backend, health_url: 'http://u:p@127.0.0.1:3001/health' }\n"
		   "  frontend: { container: spilttea-frontend, url: 'http://127.0.0.1:3000' }\n");
	assert_int_equal(health_tasks_build(cfg, &t, &n, &err), 0);
	assert_string_equal(ids(t, n),
			    "backend.health backend.error_rate frontend.reachable "
			    "container.spilttea-postgres container.spilttea-redis "
			    "container.spilttea-backend container.spilttea-frontend "
			    "container_cpu.spilttea-postgres container_memory.spilttea-postgres "
			    "container_cpu.spilttea-redis container_memory.spilttea-redis "
			    "container_cpu.spilttea-backend container_memory.spilttea-backend "
			    "container_cpu.spilttea-frontend container_memory.spilttea-frontend "
			    "postgres.reachable postgres.connections postgres.longest_query "
			    "postgres.longest_transaction postgres.size "
			    "redis.reachable redis.memory redis.clients redis.evictions "
			    "disk.docker_root disk.backup_dir docker.df");
	/* stateful tasks carry their key in the state file */
	assert_string_equal(t[3].state_key, "container.spilttea-postgres");
	assert_non_null(t[3].arg);
	health_tasks_free(t, n);
	config_free(cfg);
}

static void test_partial_configuration(void **state)
{
	struct st_config *cfg;
	struct health_task *t = NULL;
	struct st_error err;
	size_t n = 0;

	(void)state;
	/* no health_url, no frontend, two containers checked */
	cfg = load(BASE
		   "services:\n"
		   "  postgres: { container: pg }\n"
		   "  backend:  { container: api }\n"
		   "health: { containers: [backend] }\n");
	assert_int_equal(health_tasks_build(cfg, &t, &n, &err), 0);
	assert_string_equal(ids(t, n),
			    "backend.error_rate container.api container_cpu.api container_memory.api "
			    "postgres.reachable postgres.connections postgres.longest_query "
			    "postgres.longest_transaction postgres.size "
			    "redis.reachable redis.memory redis.clients redis.evictions "
			    "disk.docker_root disk.backup_dir docker.df");
	health_tasks_free(t, n);
	config_free(cfg);
}

static void test_missing_secret_is_the_checks_unknown(void **state)
{
	struct st_config *cfg;
	struct health_report rep;
	struct st_error err;
	const char *sel[] = { "postgres.size", NULL };
	char sd[300];

	(void)state;
	/* the password variable is unset: the postgres checks are UNKNOWN
	 * naming it, and nothing is contacted */
	unsetenv("SPILTTEA_TEST_NOPE");
	snprintf(sd, sizeof(sd), "state_dir: %s/state\n"
		 "postgres: { host: 127.0.0.1, port: 1, user: u, database: d, password_env: SPILTTEA_TEST_NOPE }\n"
		 "redis: { host: cache }\nservices:\n  postgres: { container: pg }\n", dir);
	cfg = load(sd);
	assert_int_equal(health_check_run(cfg, sel, &rep, &err), 0);
	assert_int_equal(rep.n, 1);
	assert_string_equal(rep.results[0].name, "postgres.size");
	assert_int_equal(rep.results[0].status, HEALTH_UNKNOWN);
	assert_non_null(strstr(rep.results[0].summary, "SPILTTEA_TEST_NOPE"));
	assert_int_equal(rep.status, HEALTH_UNKNOWN);
	health_report_release(&rep);
	config_free(cfg);
}

static void test_state_file(void **state)
{
	char sd[300], path[320];
	struct st_error err;
	struct stat st;
	json_t *s, *back;
	FILE *f;

	(void)state;
	snprintf(sd, sizeof(sd), "%s/deep/state", dir);
	health_state_load(sd, &back);           /* missing: empty */
	assert_true(json_is_object(back) && json_object_size(back) == 0);
	json_decref(back);

	s = json_pack("{s:{s:{s:{s:s}}}}", "stats", "samples", "c", "id", "x");
	assert_int_equal(health_state_save(sd, s, &err), 0);
	snprintf(path, sizeof(path), "%s/%s", sd, HEALTH_STATE_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	health_state_load(sd, &back);
	assert_true(json_equal(s, back));
	json_decref(back);
	json_decref(s);

	f = fopen(path, "w");                   /* malformed: empty, no failure */
	assert_non_null(f);
	fputs("{\"stats\": [1, 2", f);
	fclose(f);
	health_state_load(sd, &back);
	assert_int_equal(json_object_size(back), 0);
	json_decref(back);
}

static void test_config_error_report(void **state)
{
	struct health_report rep;
	struct st_error cause;
	struct health_render_opts o = { 0, 0, "1" };
	char *text;

	(void)state;
	st_error_set(&cause, ST_ECONFIG, "c.yaml:3:1: unknown key 'redis.hots'");
	assert_int_equal(health_report_config_error(&rep, &cause), 0);
	assert_int_equal(rep.status, HEALTH_UNKNOWN);
	text = health_render_nagios(&rep, &o);
	assert_string_equal(text, "HEALTH UNKNOWN - config: c.yaml:3:1: unknown key 'redis.hots'\n");
	free(text);
	health_report_release(&rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_configuration),
		cmocka_unit_test(test_partial_configuration),
		cmocka_unit_test(test_missing_secret_is_the_checks_unknown),
		cmocka_unit_test(test_state_file),
		cmocka_unit_test(test_config_error_report),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
