/*
 * test_config_release.c - the configuration keys of blue/green deploys,
 * migrations and the pre-deploy checklist (proxy.*, migrate.*,
 * checklist.*): defaults, the example, and each error with its position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

#define BIG (3 * PATH_MAX)

static char *tmpdir;
static char cfgpath[PATH_MAX];

#define MINIMAL "state_dir: /srv/st\n" \
	"services:\n  postgres:\n    container: pg\n  backend:\n    container: be\n" \
	"postgres:\n  host: db\n  user: u\n  database: d\n" \
	"redis:\n  host: cache\n"   /* 12 lines */

static int setup(void **state)
{
	(void)state;
	tmpdir = tu_mkdtemp();
	if (!tmpdir)
		return -1;
	snprintf(cfgpath, sizeof(cfgpath), "%s/c.yaml", tmpdir);
	unsetenv("DOCKER_HOST");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
	return 0;
}

static void write_cfg(const char *text)
{
	FILE *f = fopen(cfgpath, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static struct st_config *load_ok(const char *text)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };

	write_cfg(text);
	if (config_load_file(cfgpath, "--config", &cfg, &err) != 0)
		fail_msg("load failed: %s (hint: %s)", err.message, err.hint);
	return cfg;
}

/* Expects exactly "c.yaml:line:col: msg". */
static void load_fail(const char *text, int line, int col, const char *msg)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	char want[BIG];

	write_cfg(text);
	assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s:%d:%d: %s", cfgpath, line, col, msg);
	assert_string_equal(err.message, want);
}

static void assert_list(const struct config_list *l, const char *const *want)
{
	size_t n = 0;

	while (want[n]) {
		assert_true(n < l->count);
		assert_string_equal(l->items[n], want[n]);
		n++;
	}
	assert_int_equal(l->count, n);
}

static void test_defaults(void **state)
{
	struct st_config *cfg;
	char want[BIG];
	static const char *const cmd[] = { "npm", "run", "prisma:migrate", NULL };
	static const char *const res[] = { "npx", "prisma", "migrate", "resolve", NULL };
	static const char *const att[] = { "tests", "code-review", "security-review", NULL };

	(void)state;
	cfg = load_ok(MINIMAL);
	/* No proxy section: no proxy, but its defaults are in place. */
	assert_null(cfg->proxy.container);
	assert_null(cfg->proxy.url);
	assert_null(cfg->proxy.upstream_file);
	assert_string_equal(cfg->proxy.service, "backend");
	assert_string_equal(cfg->proxy.upstream_host, "127.0.0.1");
	assert_non_null(strstr(cfg->proxy.upstream_template, "server {host}:{port};"));
	assert_int_equal(cfg->proxy.blue_port, 3001);
	assert_int_equal(cfg->proxy.green_port, 3002);
	assert_true(cfg->proxy.watch == 10);
	assert_true(cfg->proxy.drain_timeout == 30);
	snprintf(want, sizeof(want), "%s/prisma/migrations", tmpdir);
	assert_string_equal(cfg->migrate.dir, want);
	assert_string_equal(cfg->migrate.service, "backend");
	assert_list(&cfg->migrate.command, cmd);
	assert_list(&cfg->migrate.resolve_command, res);
	assert_true(cfg->migrate.timeout == 600);
	assert_int_equal(cfg->checklist.n_env_files, 0);
	assert_list(&cfg->checklist.attestations, att);
	assert_true(cfg->checklist.backup_max_age == 86400);
	assert_true(cfg->checklist.disk_min_free_percent == 10);
	config_free(cfg);
}

/* config.example.yaml states the defaults of these keys. */
static void test_example(void **state)
{
	const char *src = getenv("ST_SOURCE_DIR");
	char path[PATH_MAX];
	struct st_config *ex = NULL, *min;
	struct st_error err = { 0 };
	size_t i;

	(void)state;
	snprintf(path, sizeof(path), "%s/config.example.yaml", src ? src : ".");
	if (config_load_file(path, "--config", &ex, &err) != 0)
		fail_msg("config.example.yaml: %s", err.message);
	min = load_ok(MINIMAL);
	assert_string_equal(ex->proxy.container, "spilttea-proxy");
	assert_string_equal(ex->proxy.upstream_template, min->proxy.upstream_template);
	assert_string_equal(ex->proxy.upstream_host, min->proxy.upstream_host);
	assert_string_equal(ex->proxy.service, min->proxy.service);
	assert_int_equal(ex->proxy.blue_port, min->proxy.blue_port);
	assert_int_equal(ex->proxy.green_port, min->proxy.green_port);
	assert_true(ex->proxy.watch == min->proxy.watch);
	assert_true(ex->proxy.drain_timeout == min->proxy.drain_timeout);
	assert_string_equal(ex->migrate.service, min->migrate.service);
	assert_true(ex->migrate.timeout == min->migrate.timeout);
	assert_int_equal(ex->migrate.command.count, min->migrate.command.count);
	for (i = 0; i < ex->migrate.command.count; i++)
		assert_string_equal(ex->migrate.command.items[i], min->migrate.command.items[i]);
	assert_int_equal(ex->migrate.resolve_command.count, min->migrate.resolve_command.count);
	assert_int_equal(ex->checklist.attestations.count, min->checklist.attestations.count);
	assert_true(ex->checklist.backup_max_age == min->checklist.backup_max_age);
	assert_true(ex->checklist.disk_min_free_percent == min->checklist.disk_min_free_percent);
	assert_int_equal(ex->checklist.n_env_files, 2);
	assert_string_equal(ex->checklist.env_files[1].name, "backend");
	assert_int_equal(ex->checklist.env_files[1].required.count, 4);
	config_free(ex);
	config_free(min);
}

static void test_values(void **state)
{
	struct st_config *cfg;
	char want[BIG];

	(void)state;
	cfg = load_ok(MINIMAL
		      "proxy:\n"
		      "  container: px\n"
		      "  url: http://127.0.0.1:8080\n"
		      "  upstream_file: nginx/up.conf\n"
		      "  upstream_template: 'server {host}:{port};'\n"
		      "  blue_port: 4001\n"
		      "  green_port: 4002\n"
		      "  watch: 0s\n"
		      "migrate:\n"
		      "  command: [standin-migrate, deploy]\n"
		      "checklist:\n"
		      "  env_files:\n"
		      "    backend: { path: backend/.env, required: [DATABASE_URL, JWT_SECRET] }\n"
		      "  attestations: []\n"
		      "  backup_max_age: 2h\n");
	assert_string_equal(cfg->proxy.container, "px");
	snprintf(want, sizeof(want), "%s/nginx/up.conf", tmpdir);
	assert_string_equal(cfg->proxy.upstream_file, want);
	assert_int_equal(cfg->proxy.blue_port, 4001);
	assert_true(cfg->proxy.watch == 0);
	assert_int_equal(cfg->migrate.command.count, 2);
	assert_string_equal(cfg->migrate.command.items[0], "standin-migrate");
	assert_int_equal(cfg->migrate.resolve_command.count, 4);
	assert_int_equal(cfg->checklist.n_env_files, 1);
	snprintf(want, sizeof(want), "%s/backend/.env", tmpdir);
	assert_string_equal(cfg->checklist.env_files[0].path, want);
	assert_string_equal(cfg->checklist.env_files[0].required.items[1], "JWT_SECRET");
	assert_int_equal(cfg->checklist.attestations.count, 0);
	assert_true(cfg->checklist.backup_max_age == 7200);
	config_free(cfg);
}

static void test_errors(void **state)
{
	(void)state;
	load_fail(MINIMAL "proxy:\n  container: px\n  upstream_file: /u.conf\n", 13, 1,
		  "missing required key 'proxy.url'");
	load_fail(MINIMAL "proxy:\n  url: http://x\n  upstream_file: /u.conf\n", 13, 1,
		  "missing required key 'proxy.container'");
	load_fail(MINIMAL "proxy:\n  container: px\n  url: http://x\n  upstream_file: /u\n"
		  "  service: frontend\n", 17, 3,
		  "proxy.service: 'frontend' is not a configured service");
	load_fail(MINIMAL "proxy:\n  container: px\n  url: http://x\n  upstream_file: /u\n"
		  "  blue_port: 5000\n  green_port: 5000\n", 18, 3,
		  "proxy.green_port must differ from proxy.blue_port (5000): the old and the new "
		  "container run side by side");
	load_fail(MINIMAL "proxy:\n  container: px\n  url: http://x\n  upstream_file: /u\n"
		  "  upstream_template: 'server 127.0.0.1:3001;'\n", 17, 3,
		  "proxy.upstream_template must contain {port}");
	load_fail(MINIMAL "proxy:\n  container: px\n  url: ftp://x\n", 15, 8,
		  "proxy.url 'ftp://x' must start with http:// or https://");
	load_fail(MINIMAL "migrate:\n  command: []\n", 14, 12, "migrate.command must not be empty");
	load_fail(MINIMAL "checklist:\n  env_files:\n    be: { required: [A] }\n", 15, 5,
		  "missing required key 'checklist.env_files.be.path'");
	load_fail(MINIMAL "checklist:\n  env_files:\n    be: { path: x, required: [OK, 9BAD] }\n", 15,
		  35, "checklist.env_files.be.required[1] '9BAD' must not start with a digit");
	load_fail(MINIMAL "checklist:\n  attestations: [tests, 'code review']\n", 14, 25,
		  "checklist.attestations[1] 'code review' may contain only letters, digits, '_' and '-'");
	load_fail(MINIMAL "checklist:\n  backup_max_age: 10s\n", 14, 19,
		  "checklist.backup_max_age must be between 1m and 365d, not '10s'");
	load_fail(MINIMAL "checklist:\n  disk_min_free_percent: 101\n", 14, 26,
		  "checklist.disk_min_free_percent must be between 0 and 100, not '101'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_example, setup, teardown),
		cmocka_unit_test_setup_teardown(test_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
