/*
 * test_config.c - the configuration loader: the example file, defaults,
 * every error path with its exact file:line:column and key, secrets,
 * relative paths, the search order, and `spilttea-ops config` end to end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"

#define BIG (3 * PATH_MAX)  /* room for messages quoting tmpdir paths */

static char tmpdir[PATH_MAX];   /* realpath of a fresh directory per test */
static char cfgpath[PATH_MAX + 16];  /* tmpdir/c.yaml */
static char oldcwd[PATH_MAX];

/* A minimal valid file: 9 lines. Error cases append to it or replace parts. */
#define L_STATE "state_dir: /srv/st\n"
#define L_SERVICES "services:\n  postgres:\n    container: pg\n"
#define L_PG "postgres:\n  host: db\n  user: u\n  database: d\n"
#define L_REDIS "redis:\n  host: cache\n"
#define MINIMAL L_STATE L_SERVICES L_PG L_REDIS  /* 10 lines */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	char tmpl[] = "/tmp/st-config-test.XXXXXX";

	(void)state;
	if (!getcwd(oldcwd, sizeof(oldcwd)) || !mkdtemp(tmpl) || !realpath(tmpl, tmpdir))
		return -1;
	snprintf(cfgpath, sizeof(cfgpath), "%s/c.yaml", tmpdir);
	/* scripts/test exports the sandbox's values: tests set their own. */
	unsetenv("DOCKER_HOST");
	unsetenv(CONFIG_ENV_VAR);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (chdir(oldcwd) != 0)
		return -1;
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void write_at(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* tmpdir/name; returns a static buffer. */
static const char *in_tmp(const char *name)
{
	static char buf[BIG];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

static struct st_config *load_ok(const char *text)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };

	write_at(cfgpath, text, 0644);
	if (config_load_file(cfgpath, "--config", &cfg, &err) != 0)
		fail_msg("load failed: %s (hint: %s)", err.message, err.hint);
	assert_non_null(cfg);
	return cfg;
}

static struct st_error last_err; /* of the last load_fail() */

/* Loads text and expects exactly "c.yaml:line:col: msg". Returns the hint. */
static const char *load_fail(const char *text, int line, int col, const char *msg)
{
	struct st_config *cfg = NULL;
	char want[BIG];

	st_error_clear(&last_err);
	write_at(cfgpath, text, 0644);
	assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &last_err), ST_ECONFIG);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s:%d:%d: %s", cfgpath, line, col, msg);
	assert_string_equal(last_err.message, want);
	return last_err.hint;
}

/* ---- the example and defaults ------------------------------------------- */

static void test_example_loads(void **state)
{
	const char *src = getenv("ST_SOURCE_DIR");
	char path[PATH_MAX + 64], srcreal[PATH_MAX], want[PATH_MAX + 64];
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	const struct config_service *be;

	(void)state;
	snprintf(path, sizeof(path), "%s/config.example.yaml", src ? src : oldcwd);
	assert_non_null(realpath(src ? src : oldcwd, srcreal));
	if (config_load_file(path, "--config", &cfg, &err) != 0)
		fail_msg("config.example.yaml: %s", err.message);
	assert_string_equal(cfg->state_dir, "/var/lib/spilttea-ops");
	snprintf(want, sizeof(want), "%s/runbooks", srcreal);
	assert_string_equal(cfg->runbooks_dir, want);
	assert_int_equal(cfg->n_services, 4);
	be = config_service(cfg, "backend");
	assert_non_null(be);
	assert_string_equal(be->container, "spilttea-backend");
	assert_string_equal(be->image, "spilttea-backend");
	snprintf(want, sizeof(want), "%s/backend", srcreal);
	assert_string_equal(be->build, want);
	assert_string_equal(be->health_url, "http://localhost:3001/health");
	assert_null(be->url);
	assert_string_equal(config_service(cfg, "frontend")->url, "http://localhost:3000");
	assert_null(config_service(cfg, "nginx"));
	assert_int_equal(cfg->postgres.password.kind, CONFIG_SECRET_ENV);
	assert_string_equal(cfg->postgres.password.ref, "POSTGRES_PASSWORD");
	assert_string_equal(cfg->postgres.password.key, "postgres.password_env");
	assert_string_equal(cfg->redis.password.ref, "REDIS_PASSWORD");
	assert_null(cfg->redis.socket);
	assert_int_equal(cfg->health.containers.count, 4);
	assert_string_equal(cfg->health.containers.items[3], "frontend");
	config_free(cfg);
}

/* The example documents the defaults: it must mean the same as a file that
 * leaves every optional key out. */
static void test_example_states_the_defaults(void **state)
{
	const char *src = getenv("ST_SOURCE_DIR");
	char path[PATH_MAX + 64];
	struct st_config *ex = NULL, *min;
	struct st_error err = { 0 };

	(void)state;
	snprintf(path, sizeof(path), "%s/config.example.yaml", src ? src : oldcwd);
	assert_int_equal(config_load_file(path, "--config", &ex, &err), 0);
	min = load_ok(MINIMAL);
	assert_string_equal(ex->docker.host, min->docker.host);
	assert_true(ex->docker.timeout == min->docker.timeout);
	assert_true(ex->docker.stream_idle_timeout == min->docker.stream_idle_timeout);
	assert_int_equal(ex->postgres.port, min->postgres.port);
	assert_true(ex->postgres.connect_timeout == min->postgres.connect_timeout);
	assert_true(ex->postgres.statement_timeout == min->postgres.statement_timeout);
	assert_int_equal(ex->redis.port, min->redis.port);
	assert_int_equal(ex->redis.db, min->redis.db);
	assert_true(ex->redis.timeout == min->redis.timeout);
	assert_int_equal(ex->backup.keep_days, min->backup.keep_days);
	assert_int_equal(ex->backup.keep_min, min->backup.keep_min);
	assert_int_equal(ex->backup.via, min->backup.via);
	assert_int_equal(ex->backup.compress, min->backup.compress);
	assert_true(ex->health.timeout == min->health.timeout);
	assert_true(ex->health.log_window == min->health.log_window);
	assert_memory_equal(&ex->thresholds, &min->thresholds, sizeof(ex->thresholds));
	assert_int_equal(ex->deploy.keep_releases, min->deploy.keep_releases);
	assert_true(ex->deploy.health_timeout == min->deploy.health_timeout);
	assert_true(ex->deploy.health_interval == min->deploy.health_interval);
	assert_int_equal(ex->deploy.health_fail_after, min->deploy.health_fail_after);
	assert_true(ex->deploy.log_scan == min->deploy.log_scan);
	assert_int_equal(ex->deploy.stop_timeout, min->deploy.stop_timeout);
	assert_int_equal(ex->deploy.log_error_patterns.count, min->deploy.log_error_patterns.count);
	for (size_t i = 0; i < ex->deploy.log_error_patterns.count; i++)
		assert_string_equal(ex->deploy.log_error_patterns.items[i],
				    min->deploy.log_error_patterns.items[i]);
	assert_null(min->compose_file);
	assert_non_null(ex->compose_file);
	config_free(ex);
	config_free(min);
}

static void test_defaults(void **state)
{
	struct st_config *cfg;
	char want[BIG];

	(void)state;
	cfg = load_ok(MINIMAL);
	assert_string_equal(cfg->path, cfgpath);
	assert_string_equal(cfg->dir, tmpdir);
	assert_string_equal(cfg->source, "--config");
	assert_string_equal(cfg->state_dir, "/srv/st");
	assert_null(cfg->runbooks_dir);
	assert_null(cfg->notify.webhook_url);
	assert_string_equal(cfg->docker.host, "unix:///var/run/docker.sock");
	assert_int_equal(cfg->docker.host_from_env, 0);
	assert_true(cfg->docker.timeout == 30);
	assert_true(cfg->docker.stream_idle_timeout == 600);
	assert_int_equal(cfg->n_services, 1);
	assert_string_equal(cfg->services[0].name, "postgres");
	assert_string_equal(cfg->services[0].container, "pg");
	assert_null(cfg->services[0].image);
	assert_null(cfg->services[0].build);
	assert_string_equal(cfg->postgres.host, "db");
	assert_int_equal(cfg->postgres.port, 5432);
	assert_string_equal(cfg->postgres.user, "u");
	assert_string_equal(cfg->postgres.database, "d");
	assert_int_equal(cfg->postgres.password.kind, CONFIG_SECRET_NONE);
	assert_null(cfg->postgres.password.ref);
	assert_true(cfg->postgres.connect_timeout == 5);
	assert_true(cfg->postgres.statement_timeout == 30);
	assert_string_equal(cfg->redis.host, "cache");
	assert_int_equal(cfg->redis.port, 6379);
	assert_int_equal(cfg->redis.db, 0);
	assert_int_equal(cfg->redis.password.kind, CONFIG_SECRET_NONE);
	assert_null(cfg->redis.socket);
	assert_true(cfg->redis.timeout == 2);
	snprintf(want, sizeof(want), "%s/backups", tmpdir);
	assert_string_equal(cfg->backup.dir, want);
	assert_int_equal(cfg->backup.keep_days, 7);
	assert_int_equal(cfg->backup.keep_min, 3);
	assert_int_equal(cfg->backup.via, CONFIG_VIA_EXEC);
	assert_int_equal(cfg->backup.compress, BACKUP_CODEC_GZIP);
	assert_true(cfg->health.timeout == 5);
	assert_true(cfg->health.log_window == 300);
	assert_int_equal(cfg->health.containers.count, 1);
	assert_string_equal(cfg->health.containers.items[0], "postgres");
	assert_true(cfg->thresholds.api_response_seconds.warn == 1);
	assert_true(cfg->thresholds.api_response_seconds.crit == 2);
	assert_true(cfg->thresholds.error_rate_percent.warn == 0.5);
	assert_true(cfg->thresholds.error_rate_percent.crit == 1);
	assert_true(cfg->thresholds.db_connections_percent.warn == 80);
	assert_true(cfg->thresholds.db_connections_percent.crit == 90);
	assert_true(cfg->thresholds.redis_memory_percent.warn == 80);
	assert_true(cfg->thresholds.redis_memory_percent.crit == 90);
	assert_true(cfg->thresholds.container_cpu_percent.warn == 80);
	assert_true(cfg->thresholds.container_cpu_percent.crit == 95);
	assert_true(cfg->thresholds.container_memory_percent.warn == 80);
	assert_true(cfg->thresholds.container_memory_percent.crit == 95);
	assert_true(cfg->thresholds.disk_percent.warn == 80);
	assert_true(cfg->thresholds.disk_percent.crit == 90);
	config_free(cfg);
}

static void test_values_override_defaults(void **state)
{
	struct st_config *cfg;

	(void)state;
	cfg = load_ok(MINIMAL
		      "docker: { timeout: 500ms, stream_idle_timeout: 0 }\n"
		      "backup: { keep_days: 30, keep_min: 5, via: local, compress: zstd }\n"
		      "health: { timeout: 1.5, log_window: 1h }\n"
		      "thresholds:\n  disk_percent: { warn: 70 }\n  error_rate_percent: { crit: 2.5 }\n");
	assert_true(cfg->docker.timeout > 0.499 && cfg->docker.timeout < 0.501);
	assert_true(cfg->docker.stream_idle_timeout == 0);
	assert_int_equal(cfg->backup.keep_days, 30);
	assert_int_equal(cfg->backup.keep_min, 5);
	assert_int_equal(cfg->backup.via, CONFIG_VIA_LOCAL);
	assert_int_equal(cfg->backup.compress, BACKUP_CODEC_ZSTD);
	assert_string_equal(backup_codec_name(cfg->backup.compress), "zstd");
	assert_true(cfg->health.timeout == 1.5);
	assert_true(cfg->health.log_window == 3600);
	assert_true(cfg->thresholds.disk_percent.warn == 70);
	assert_true(cfg->thresholds.disk_percent.crit == 90);
	assert_true(cfg->thresholds.error_rate_percent.warn == 0.5);
	assert_true(cfg->thresholds.error_rate_percent.crit == 2.5);
	config_free(cfg);
}

static void test_docker_host_env(void **state)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };

	(void)state;
	setenv("DOCKER_HOST", "unix:///tmp/other.sock", 1);
	cfg = load_ok(MINIMAL "docker: { host: 'unix:///run/d.sock' }\n");
	assert_string_equal(cfg->docker.host, "unix:///tmp/other.sock");
	assert_int_equal(cfg->docker.host_from_env, 1);
	config_free(cfg);
	cfg = NULL;

	setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
	write_at(cfgpath, MINIMAL, 0644);
	assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
	assert_string_equal(err.message,
			    "DOCKER_HOST 'tcp://127.0.0.1:2375' is not a unix:// address (only Unix sockets are supported)");
	assert_non_null(strstr(err.hint, "unset DOCKER_HOST"));
	unsetenv("DOCKER_HOST");

	cfg = load_ok(MINIMAL "docker: { host: 'unix:///run/d.sock' }\n");
	assert_string_equal(cfg->docker.host, "unix:///run/d.sock");
	assert_int_equal(cfg->docker.host_from_env, 0);
	config_free(cfg);
	load_fail(MINIMAL "docker:\n  host: tcp://10.0.0.1:2375\n", 12, 9,
		  "docker.host 'tcp://10.0.0.1:2375' is not a unix:// address (only Unix sockets are supported)");
	load_fail(MINIMAL "docker:\n  host: unix://run/d.sock\n", 12, 9,
		  "docker.host 'unix://run/d.sock' needs an absolute socket path after unix://");
}

/* ---- unknown keys --------------------------------------------------------- */

static void test_unknown_top_level(void **state)
{
	const char *hint;

	(void)state;
	hint = load_fail(MINIMAL "bogus: 1\n", 11, 1, "unknown key 'bogus'");
	assert_string_equal(hint, "top-level keys: state_dir, runbooks_dir, docker, services, postgres, "
			    "redis, backup, proxy, migrate, checklist, notify, health, env_files, incident, thresholds, "
			    "compose_file, compose_env_file, deploy");
	load_fail(MINIMAL "thresold: {}\n", 11, 1, "unknown key 'thresold' (did you mean 'thresholds'?)");
	load_fail("State_dir: /x\n" L_SERVICES L_PG L_REDIS, 1, 1,
		  "unknown key 'State_dir' (did you mean 'state_dir'?)");
	/* A dotted key is not a shortcut for nesting. */
	load_fail(MINIMAL "postgres.port: 5433\n", 11, 1, "unknown key 'postgres.port'");
}

static void test_unknown_nested(void **state)
{
	const char *hint;

	(void)state;
	hint = load_fail(MINIMAL "backup:\n  keepdays: 7\n", 12, 3,
			 "unknown key 'backup.keepdays' (did you mean 'keep_days'?)");
	assert_string_equal(hint, "keys under 'backup': dir, keep_days, keep_min, via, compress");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: db\n  prot: 5432\n", 7, 3,
		  "unknown key 'postgres.prot' (did you mean 'port'?)");
	/* Too far from every key: no guess. */
	load_fail(MINIMAL "thresholds:\n  disk_percent:\n    critical: 95\n", 13, 5,
		  "unknown key 'thresholds.disk_percent.critical'");
	hint = load_fail(L_STATE "services:\n  backend:\n    container: b\n    imag: x\n", 5, 5,
			 "unknown key 'services.backend.imag' (did you mean 'image'?)");
	assert_string_equal(hint, "keys under 'services.backend': container, image, build, health_url, url, "
			    "env_file");
	/* The literal password key is never suggested. */
	load_fail(MINIMAL "redis2: 1\n", 11, 1, "unknown key 'redis2' (did you mean 'redis'?)");
}

/* ---- wrong types ----------------------------------------------------------- */

static void test_wrong_types(void **state)
{
	(void)state;
	load_fail(MINIMAL "docker: 5\n", 11, 9, "docker must be a mapping, not a scalar");
	load_fail(MINIMAL "docker: true\n", 11, 9, "docker must be a mapping, not a scalar");
	load_fail("state_dir: [a, b]\n" L_SERVICES L_PG L_REDIS, 1, 12,
		  "state_dir must be a path, not a sequence");
	load_fail(L_STATE "services: [postgres]\n", 2, 11, "services must be a mapping, not a sequence");
	load_fail(L_STATE "services:\n  backend: spilttea-backend\n", 3, 12,
		  "services.backend must be a mapping, not a scalar");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: db\n  port: abc\n", 7, 9,
		  "postgres.port must be an integer, not 'abc'");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: db\n  port: 54.32\n", 7, 9,
		  "postgres.port must be an integer, not '54.32'");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: db\n  port: yes\n", 7, 9,
		  "postgres.port must be an integer, not 'yes'");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: {a: b}\n", 6, 9,
		  "postgres.host must be a string, not a mapping");
	load_fail(MINIMAL "docker:\n  timeout: soon\n", 12, 12,
		  "docker.timeout must be a duration like 30s, 500ms or 5m, not 'soon'");
	load_fail(MINIMAL "thresholds:\n  disk_percent: { warn: high }\n", 12, 25,
		  "thresholds.disk_percent.warn must be a number, not 'high'");
	load_fail(MINIMAL "backup: { via: ssh }\n", 11, 16, "backup.via must be one of exec, local, not 'ssh'");
	load_fail(MINIMAL "backup: { compress: xz }\n", 11, 21,
		  "backup.compress must be one of gzip, zstd, none, not 'xz'");
	load_fail(MINIMAL "health:\n  containers: postgres\n", 12, 15,
		  "health.containers must be a list, not a scalar");
	load_fail(MINIMAL "health:\n  containers: [postgres, [x]]\n", 12, 26,
		  "health.containers[1] must be a string, not sequence");
}

static void test_invalid_values(void **state)
{
	(void)state;
	load_fail(L_STATE "services:\n  pg:\n    container: 'spilttea postgres'\n", 4, 16,
		  "services.pg.container 'spilttea postgres' may contain only letters, digits, '_', '.' and '-'");
	load_fail(L_STATE "services:\n  pg:\n    container: -pg\n", 4, 16,
		  "services.pg.container '-pg' must start with a letter or digit");
	load_fail(L_STATE "services:\n  web:\n    container: w\n    url: localhost:3000\n", 5, 10,
		  "services.web.url 'localhost:3000' must start with http:// or https://");
	load_fail(L_STATE "services:\n  web:\n    container: w\n    health_url: http:///health\n", 5, 17,
		  "services.web.health_url 'http:///health' needs a host");
	load_fail(L_STATE "services:\n  web:\n    container: w\n    image: 'a b'\n", 5, 12,
		  "services.web.image 'a b' must not contain spaces or control characters");
	load_fail(L_STATE "services:\n  a.b:\n    container: w\n", 3, 3,
		  "services name 'a.b' may contain only letters, digits, '_' and '-'");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: ''\n", 6, 9, "postgres.host must not be empty");
	load_fail(L_STATE L_SERVICES "postgres:\n  password_env: 1PW\n", 6, 17,
		  "postgres.password_env '1PW' must not start with a digit");
	load_fail(L_STATE L_SERVICES "postgres:\n  password_env: PG-PW\n", 6, 17,
		  "postgres.password_env 'PG-PW' may contain only letters, digits and '_'");
	load_fail(MINIMAL "notify:\n  webhook_url: hooks.example.com/x\n", 12, 16,
		  "notify.webhook_url 'hooks.example.com/x' must start with http:// or https://");
	{
		struct st_config *cfg = load_ok(MINIMAL "notify: { webhook_url: 'https://hooks.example.com/x' }\n");
		assert_string_equal(cfg->notify.webhook_url, "https://hooks.example.com/x");
		config_free(cfg);
	}
}

/* ---- incident keys --------------------------------------------------------- */

static void test_incident_keys(void **state)
{
	struct st_config *cfg;
	char want[BIG];

	(void)state;
	cfg = load_ok(MINIMAL);
	assert_int_equal(cfg->env_files.count, 0);
	assert_string_equal(cfg->incident.session_pattern, "sess:*");
	assert_int_equal(cfg->incident.failed_logins, 5);
	assert_true(cfg->incident.failed_login_window == 3600);
	assert_true(cfg->incident.restart_timeout == 60);
	assert_int_equal(cfg->incident.trusted_proxies.count, 0);
	assert_string_equal(cfg->incident.firewall_chain, "INPUT");
	assert_null(config_service(cfg, "postgres")->env_file);
	config_free(cfg);

	/* env files are paths: relative ones are made absolute like state_dir. */
	cfg = load_ok(L_STATE "services:\n  backend: { container: b, env_file: backend/.env }\n" L_PG L_REDIS
		      "env_files: [./.env, /etc/spilttea/.env]\n"
		      "incident: { session_pattern: 'session:*', failed_logins: 10, trusted_proxies: [10.0.0.0/8, '::1'],\n"
		      "            firewall_chain: DOCKER-USER }\n");
	snprintf(want, sizeof(want), "%s/.env", tmpdir);
	assert_string_equal(cfg->env_files.items[0], want);
	assert_string_equal(cfg->env_files.items[1], "/etc/spilttea/.env");
	snprintf(want, sizeof(want), "%s/backend/.env", tmpdir);
	assert_string_equal(config_service(cfg, "backend")->env_file, want);
	assert_string_equal(cfg->incident.session_pattern, "session:*");
	assert_int_equal(cfg->incident.failed_logins, 10);
	assert_int_equal(cfg->incident.trusted_proxies.count, 2);
	assert_string_equal(cfg->incident.firewall_chain, "DOCKER-USER");
	config_free(cfg);

	load_fail(MINIMAL "incident: { session_pattern: '*' }\n", 11, 30,
		  "incident.session_pattern '*' matches every key (use 'incident flush-sessions --all' for that)");
	load_fail(MINIMAL "incident:\n  trusted_proxies: [10.0.0.1, 10.0.0.0/33]\n", 12, 31,
		  "incident.trusted_proxies[1]: '10.0.0.0/33' is not an IP address or network (like 10.0.0.1 or "
		  "10.0.0.0/8)");
	load_fail(MINIMAL "incident:\n  firewall_chain: 'INPUT -j ACCEPT'\n", 12, 19,
		  "incident.firewall_chain 'INPUT -j ACCEPT' may contain only letters, digits, '_' and '-' "
		  "(an iptables chain, at most 28 characters)");
	load_fail(MINIMAL "incident:\n  failed_logins: -1\n", 12, 18,
		  "incident.failed_logins must be between 0 and 1000000, not '-1'");
}

/* ---- out of range ---------------------------------------------------------- */

static void test_out_of_range(void **state)
{
	(void)state;
	load_fail(L_STATE L_SERVICES "postgres:\n  host: db\n  port: 0\n", 7, 9,
		  "postgres.port must be between 1 and 65535, not '0'");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: db\n  port: 70000\n", 7, 9,
		  "postgres.port must be between 1 and 65535, not '70000'");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: db\n  port: 99999999999999999999999\n", 7, 9,
		  "postgres.port must be between 1 and 65535, not '99999999999999999999999'");
	load_fail(MINIMAL "backup:\n  keep_days: -1\n", 12, 14,
		  "backup.keep_days must be between 1 and 36500, not '-1'");
	load_fail(MINIMAL "backup:\n  keep_min: 0\n", 12, 13,
		  "backup.keep_min must be between 1 and 100000, not '0'");
	load_fail(L_STATE L_SERVICES L_PG "redis:\n  host: c\n  db: -2\n", 11, 7,
		  "redis.db must be between 0 and 2147483647, not '-2'");
	load_fail(MINIMAL "health:\n  timeout: 0s\n", 12, 12,
		  "health.timeout must be between 1ms and 1h, not '0s'");
	load_fail(MINIMAL "health:\n  timeout: -5s\n", 12, 12,
		  "health.timeout must be between 1ms and 1h, not '-5s'");
	load_fail(MINIMAL "health:\n  log_window: 30d\n", 12, 15,
		  "health.log_window must be between 1s and 7d, not '30d'");
	load_fail(MINIMAL "thresholds:\n  disk_percent: { warn: 150, crit: 160 }\n", 12, 25,
		  "thresholds.disk_percent.warn must be between 0 and 100, not '150'");
	load_fail(MINIMAL "thresholds:\n  disk_percent:\n    crit: 90\n    warn: 95\n", 14, 11,
		  "thresholds.disk_percent: warn (95) must not be above crit (90)");
	/* Only crit written, below the default warn: point at crit. */
	load_fail(MINIMAL "thresholds:\n  db_connections_percent: { crit: 50 }\n", 12, 35,
		  "thresholds.db_connections_percent: warn (80) must not be above crit (50)");
	/* Equal levels are allowed: warn and crit at once. */
	config_free(load_ok(MINIMAL "thresholds: { disk_percent: { warn: 90, crit: 90 } }\n"));
}

/* ---- missing required keys ------------------------------------------------- */

static void test_missing_required(void **state)
{
	const char *hint;

	(void)state;
	load_fail(L_SERVICES L_PG L_REDIS, 1, 1, "missing required key 'state_dir'");
	load_fail("# spilttea-ops\n\n" L_SERVICES L_PG L_REDIS, 3, 1, "missing required key 'state_dir'");
	load_fail(L_STATE L_PG L_REDIS, 1, 1, "missing required key 'services'");
	load_fail(L_STATE "services: {}\n" L_PG L_REDIS, 2, 11, "services must name at least one entry");
	load_fail(L_STATE "services:\n  backend:\n    image: b\n" L_PG L_REDIS, 3, 3,
		  "missing required key 'services.backend.container'");
	load_fail(L_STATE "services:\n  backend:\n" L_PG L_REDIS, 3, 3,
		  "missing required key 'services.backend.container'");
	load_fail(L_STATE L_SERVICES "postgres:\n  user: u\n  database: d\n" L_REDIS, 5, 1,
		  "missing required key 'postgres.host'");
	load_fail(L_STATE L_SERVICES "postgres: { host: h, user: u }\n" L_REDIS, 5, 1,
		  "missing required key 'postgres.database'");
	load_fail(L_STATE L_SERVICES L_REDIS, 1, 1, "missing required key 'postgres'");
	load_fail(L_STATE L_SERVICES L_PG, 1, 1, "missing required key 'redis'");
	hint = load_fail(L_STATE L_SERVICES L_PG "redis:\n  port: 6380\n", 9, 1,
			 "missing required key 'redis.host'");
	assert_non_null(strstr(hint, "redis.socket"));
	/* Written without a value. */
	load_fail("state_dir:\n" L_SERVICES L_PG L_REDIS, 1, 11, "required key 'state_dir' has no value");
	load_fail(L_STATE L_SERVICES "postgres:\n  host: ~\n  user: u\n  database: d\n" L_REDIS, 6, 9,
		  "required key 'postgres.host' has no value");
	load_fail(L_STATE "services:\n" L_PG L_REDIS, 2, 10, "required key 'services' has no value");
}

static void test_empty_or_odd_documents(void **state)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	char want[BIG];

	(void)state;
	write_at(cfgpath, "# nothing yet\n", 0644);
	assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
	snprintf(want, sizeof(want), "%s:1:1: configuration file is empty", cfgpath);
	assert_string_equal(err.message, want);
	assert_non_null(strstr(err.hint, "config.example.yaml"));
	load_fail("- a\n- b\n", 1, 1, "configuration must be a mapping, not a sequence");
	load_fail(MINIMAL "state_dir: /again\n", 11, 1, "duplicate key 'state_dir' (first at line 1)");
	write_at(cfgpath, "a: [1\n", 0644);
	assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
	assert_int_equal(strncmp(err.message, cfgpath, strlen(cfgpath)), 0);
}

static void test_health_containers(void **state)
{
	struct st_config *cfg;
	const char *hint;

	(void)state;
	cfg = load_ok(L_STATE "services:\n  a: { container: a }\n  b: { container: b }\n  c: { container: c }\n"
		      L_PG L_REDIS "health: { containers: [c, a] }\n");
	assert_int_equal(cfg->health.containers.count, 2);
	assert_string_equal(cfg->health.containers.items[0], "c");
	assert_string_equal(cfg->health.containers.items[1], "a");
	config_free(cfg);
	hint = load_fail(MINIMAL "health:\n  containers: [postgres, web]\n", 12, 26,
			 "health.containers[1]: 'web' is not a configured service");
	assert_string_equal(hint, "configured services: postgres");
	load_fail(MINIMAL "health:\n  containers: [postgres, postgres]\n", 12, 26,
		  "health.containers[1]: 'postgres' is listed twice");
	load_fail(MINIMAL "health:\n  containers: []\n", 12, 15,
		  "health.containers must name at least one service (leave it out to check every service)");
}

/* ---- secrets ---------------------------------------------------------------- */

static void test_secret_keys(void **state)
{
	const char *hint;

	(void)state;
	load_fail(L_STATE L_SERVICES L_PG "  password_env: PGPW\n  password_file: pw\n" L_REDIS, 10, 18,
		  "postgres.password_file conflicts with postgres.password_env: give password_env or "
		  "password_file, not both");
	load_fail(L_STATE L_SERVICES L_PG L_REDIS "  password_file: pw\n  password_env: RPW\n", 12, 17,
		  "redis.password_env conflicts with redis.password_file: give password_env or "
		  "password_file, not both");
	hint = load_fail(L_STATE L_SERVICES L_PG "  password: hunter2\n" L_REDIS, 9, 3,
			 "postgres.password: passwords do not belong in the configuration file");
	assert_string_equal(hint, "replace it with 'password_env: NAME' (an environment variable) or "
			    "'password_file: PATH' (a file with mode 0600)");
	assert_null(strstr(hint, "hunter2"));
	assert_null(strstr(last_err.message, "hunter2"));
	load_fail(MINIMAL "  password:\n", 11, 3,
		  "redis.password: passwords do not belong in the configuration file");
	load_fail(L_STATE L_SERVICES L_PG "  password_env: ''\n" L_REDIS, 9, 17,
		  "postgres.password_env must not be empty");
}

static void test_secret_from_env(void **state)
{
	struct st_config *cfg;
	struct st_error err = { 0 };
	char *pw = NULL;

	(void)state;
	cfg = load_ok(L_STATE L_SERVICES L_PG "  password_env: ST_TEST_PG_PW\n" L_REDIS);
	assert_int_equal(cfg->postgres.password.kind, CONFIG_SECRET_ENV);
	setenv("ST_TEST_PG_PW", "s3cr3t value", 1);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), 0);
	assert_string_equal(pw, "s3cr3t value");
	config_secret_free(pw);
	pw = NULL;

	setenv("ST_TEST_PG_PW", "", 1);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), ST_ECONFIG);
	assert_null(pw);
	assert_string_equal(err.message, "environment variable 'ST_TEST_PG_PW' (postgres.password_env) is empty");

	unsetenv("ST_TEST_PG_PW");
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), ST_ECONFIG);
	assert_string_equal(err.message,
			    "environment variable 'ST_TEST_PG_PW' (postgres.password_env) is not set");
	assert_string_equal(err.hint, "export ST_TEST_PG_PW before running spilttea-ops, or use password_file");

	/* No password configured: nothing to read, not an error. */
	pw = (char *)"untouched";
	assert_int_equal(config_read_secret(&cfg->redis.password, &pw, &err), 0);
	assert_null(pw);
	config_free(cfg);
}

static void test_secret_from_file(void **state)
{
	struct st_config *cfg;
	struct st_error err = { 0 };
	char *pw = NULL;
	char want[BIG];

	(void)state;
	assert_int_equal(mkdir(in_tmp("secrets"), 0700), 0);
	cfg = load_ok(L_STATE L_SERVICES L_PG "  password_file: secrets/pg\n" L_REDIS
		      "  password_file: /nonexistent/redis.pw\n");
	snprintf(want, sizeof(want), "%s/secrets/pg", tmpdir);
	assert_int_equal(cfg->postgres.password.kind, CONFIG_SECRET_FILE);
	assert_string_equal(cfg->postgres.password.ref, want);
	assert_string_equal(cfg->postgres.password.key, "postgres.password_file");

	write_at(in_tmp("secrets/pg"), "pa55word\n", 0600);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), 0);
	assert_string_equal(pw, "pa55word");
	config_secret_free(pw);
	pw = NULL;

	/* One trailing newline only; CRLF counts as one. */
	write_at(in_tmp("secrets/pg"), "line\n\n", 0600);
	assert_int_equal(chmod(in_tmp("secrets/pg"), 0400), 0);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), 0);
	assert_string_equal(pw, "line\n");
	config_secret_free(pw);
	pw = NULL;
	assert_int_equal(chmod(in_tmp("secrets/pg"), 0600), 0);
	write_at(in_tmp("secrets/pg"), "dos\r\n", 0600);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), 0);
	assert_string_equal(pw, "dos");
	config_secret_free(pw);
	pw = NULL;
	write_at(in_tmp("secrets/pg"), "no-newline", 0600);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), 0);
	assert_string_equal(pw, "no-newline");
	config_secret_free(pw);
	pw = NULL;

	write_at(in_tmp("secrets/pg"), "pa55word\n", 0644);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), ST_ECONFIG);
	assert_null(pw);
	snprintf(want, sizeof(want),
		 "password file '%s/secrets/pg' (postgres.password_file) has mode 0644: group or others may access it",
		 tmpdir);
	assert_string_equal(err.message, want);
	snprintf(want, sizeof(want), "chmod 600 %s/secrets/pg", tmpdir);
	assert_string_equal(err.hint, want);
	assert_null(strstr(err.message, "pa55word"));

	write_at(in_tmp("secrets/pg"), "pa55word\n", 0640);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "has mode 0640"));

	write_at(in_tmp("secrets/pg"), "\n", 0600);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), ST_ECONFIG);
	snprintf(want, sizeof(want), "password file '%s/secrets/pg' (postgres.password_file) is empty", tmpdir);
	assert_string_equal(err.message, want);

	assert_int_equal(config_read_secret(&cfg->redis.password, &pw, &err), ST_ECONFIG);
	assert_string_equal(err.message, "cannot read password file '/nonexistent/redis.pw' "
			    "(redis.password_file): No such file or directory");
	config_free(cfg);

	cfg = load_ok(L_STATE L_SERVICES L_PG "  password_file: secrets\n" L_REDIS);
	assert_int_equal(config_read_secret(&cfg->postgres.password, &pw, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "is not a regular file"));
	config_free(cfg);
}

/* ---- lookup and rendering --------------------------------------------------- */

static void test_lookup(void **state)
{
	struct st_config *cfg;
	const struct yt_node *n;

	(void)state;
	cfg = load_ok(L_STATE "services:\n  backend:\n    container: be\n" L_PG
		      "  password_env: PGPW\n" L_REDIS "  password_file: ./rpw\n");
	n = config_lookup(cfg, "postgres.host");
	assert_non_null(n);
	assert_string_equal(yt_scalar(n), "db");
	assert_int_equal(n->line, 6);
	assert_int_equal(n->column, 9);
	assert_string_equal(n->file, cfgpath);
	/* Defaults are there too, positioned at their section. */
	n = config_lookup(cfg, "postgres.port");
	assert_string_equal(yt_scalar(n), "5432");
	assert_int_equal(n->line, 6);
	assert_string_equal(yt_scalar(config_lookup(cfg, "services.backend.container")), "be");
	assert_string_equal(yt_scalar(config_lookup(cfg, "health.containers.0")), "backend");
	assert_null(config_lookup(cfg, "health.containers.1"));
	assert_string_equal(yt_scalar(config_lookup(cfg, "thresholds.disk_percent.crit")), "90");
	assert_string_equal(yt_scalar(config_lookup(cfg, "backup.via")), "exec");
	assert_string_equal(yt_scalar(config_lookup(cfg, "health.log_window")), "5m");
	assert_int_equal(config_lookup(cfg, "thresholds")->kind, YT_MAP);
	/* References to secrets are names, not secrets. */
	assert_string_equal(yt_scalar(config_lookup(cfg, "postgres.password_env")), "PGPW");
	assert_string_equal(yt_scalar(config_lookup(cfg, "redis.password_file")), in_tmp("rpw"));
	assert_null(config_lookup(cfg, "redis.password_env"));
	/* The secrets themselves are refused. */
	assert_true(config_path_is_secret("postgres.password"));
	assert_true(config_path_is_secret("redis.password"));
	assert_false(config_path_is_secret("postgres.password_env"));
	assert_false(config_path_is_secret("postgres.host"));
	assert_null(config_lookup(cfg, "postgres.password"));
	assert_null(config_lookup(cfg, "redis.password"));
	assert_null(config_lookup(cfg, "nope"));
	assert_null(config_lookup(cfg, "postgres.host.x"));
	assert_null(config_lookup(cfg, ""));
	config_free(cfg);
}

static void test_relative_paths(void **state)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	char want[BIG];

	(void)state;
	assert_int_equal(mkdir(in_tmp("etc"), 0755), 0);
	write_at(in_tmp("etc/c.yaml"),
		 "state_dir: state\nrunbooks_dir: ./runbooks\n"
		 "services:\n  backend: { container: be, build: ../src/backend }\n"
		 L_PG "redis: { socket: ./run/redis.sock }\nbackup: { dir: . }\n", 0644);
	/* Load by a relative path from another directory. */
	assert_int_equal(chdir(tmpdir), 0);
	assert_int_equal(config_load_file("etc/c.yaml", "--config", &cfg, &err), 0);
	snprintf(want, sizeof(want), "%s/etc", tmpdir);
	assert_string_equal(cfg->dir, want);
	assert_string_equal(cfg->path, "etc/c.yaml");
	snprintf(want, sizeof(want), "%s/etc/state", tmpdir);
	assert_string_equal(cfg->state_dir, want);
	snprintf(want, sizeof(want), "%s/etc/runbooks", tmpdir);
	assert_string_equal(cfg->runbooks_dir, want);
	snprintf(want, sizeof(want), "%s/etc/../src/backend", tmpdir);
	assert_string_equal(cfg->services[0].build, want);
	snprintf(want, sizeof(want), "%s/etc/run/redis.sock", tmpdir);
	assert_string_equal(cfg->redis.socket, want);
	assert_null(cfg->redis.host);
	snprintf(want, sizeof(want), "%s/etc", tmpdir);
	assert_string_equal(cfg->backup.dir, want);
	config_free(cfg);
	assert_int_equal(chdir(oldcwd), 0);
}

static void test_render_round_trip(void **state)
{
	struct st_config *cfg, *again;
	struct sbuf y1 = SBUF_INIT, y2 = SBUF_INIT, js = SBUF_INIT;
	struct st_error err = { 0 };
	json_t *j;
	json_error_t jerr;

	(void)state;
	write_at(in_tmp("pg.pw"), "topsecret\n", 0600);
	cfg = load_ok(L_STATE "services:\n  '123': { container: '0x10', image: 'yes' }\n" L_PG
		      "  password_file: pg.pw\n" L_REDIS "  password_env: R_PW\n"
		      "thresholds: { error_rate_percent: { warn: 0.25 } }\n");
	assert_int_equal(config_render(cfg, CONFIG_FORMAT_YAML, &y1, &err), 0);
	assert_null(strstr(sbuf_str(&y1), "topsecret"));
	assert_non_null(strstr(sbuf_str(&y1), "password_env: R_PW\n"));
	/* Strings that look like numbers or booleans stay strings. */
	assert_non_null(strstr(sbuf_str(&y1), "\"123\":"));
	assert_non_null(strstr(sbuf_str(&y1), "container: \"0x10\"\n"));
	assert_non_null(strstr(sbuf_str(&y1), "image: \"yes\"\n"));

	/* What config show prints is itself a valid configuration meaning the same. */
	write_at(in_tmp("shown.yaml"), sbuf_str(&y1), 0644);
	assert_int_equal(config_load_file(in_tmp("shown.yaml"), "--config", &again, &err), 0);
	assert_int_equal(config_render(again, CONFIG_FORMAT_YAML, &y2, &err), 0);
	assert_string_equal(sbuf_str(&y1), sbuf_str(&y2));
	config_free(again);

	assert_int_equal(config_render(cfg, CONFIG_FORMAT_JSON, &js, &err), 0);
	j = json_loads(sbuf_str(&js), 0, &jerr);
	assert_non_null(j);
	assert_true(json_is_integer(json_object_get(json_object_get(j, "postgres"), "port")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "postgres"), "port")), 5432);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "postgres"), "password_file")),
			    in_tmp("pg.pw"));
	assert_true(json_real_value(json_object_get(json_object_get(json_object_get(j, "thresholds"),
								    "error_rate_percent"), "warn")) == 0.25);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(j, "services"),
								      "123"), "container")), "0x10");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "docker"), "timeout")), "30s");
	assert_null(strstr(sbuf_str(&js), "topsecret"));
	json_decref(j);
	sbuf_release(&y1);
	sbuf_release(&y2);
	sbuf_release(&js);
	config_free(cfg);
}

/* ---- search order ----------------------------------------------------------- */

static void test_search_order(void **state)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	char *path = NULL;
	const char *source = NULL;
	char want[BIG];

	(void)state;
	assert_int_equal(chdir(tmpdir), 0);
	write_at(in_tmp("spilttea-ops.yaml"), MINIMAL, 0644);
	write_at(in_tmp("env.yaml"), MINIMAL, 0644);
	write_at(in_tmp("explicit.yaml"), MINIMAL, 0644);

	/* --config beats everything. */
	setenv(CONFIG_ENV_VAR, in_tmp("env.yaml"), 1);
	assert_int_equal(config_find("explicit.yaml", &path, &source, &err), 0);
	assert_string_equal(path, "explicit.yaml");
	assert_string_equal(source, "--config");
	free(path);

	/* Then the environment variable. */
	assert_int_equal(config_load(NULL, &cfg, &err), 0);
	assert_string_equal(cfg->path, in_tmp("env.yaml"));
	assert_string_equal(cfg->source, "$SPILTTEA_OPS_CONFIG");
	config_free(cfg);

	/* Then ./spilttea-ops.yaml; an empty variable counts as unset. */
	setenv(CONFIG_ENV_VAR, "", 1);
	assert_int_equal(config_load(NULL, &cfg, &err), 0);
	assert_string_equal(cfg->path, CONFIG_LOCAL_PATH);
	assert_string_equal(cfg->source, CONFIG_LOCAL_PATH);
	assert_string_equal(cfg->dir, tmpdir);
	config_free(cfg);
	unsetenv(CONFIG_ENV_VAR);

	/* A named file that does not exist is an error, not a fall-through. */
	assert_int_equal(config_load("missing.yaml", &cfg, &err), ST_ECONFIG);
	assert_null(cfg);
	assert_string_equal(err.message, "configuration file 'missing.yaml' (from --config) does not exist");
	setenv(CONFIG_ENV_VAR, "/nonexistent/c.yaml", 1);
	assert_int_equal(config_load(NULL, &cfg, &err), ST_ECONFIG);
	assert_string_equal(err.message,
			    "configuration file '/nonexistent/c.yaml' (from $SPILTTEA_OPS_CONFIG) does not exist");
	unsetenv(CONFIG_ENV_VAR);

	/* Nothing anywhere (unless this machine has a system-wide file). */
	assert_int_equal(remove(in_tmp("spilttea-ops.yaml")), 0);
	if (access(CONFIG_SYSTEM_PATH, F_OK) == 0) {
		assert_int_equal(config_find(NULL, &path, &source, &err), 0);
		assert_string_equal(path, CONFIG_SYSTEM_PATH);
		free(path);
	} else {
		assert_int_equal(config_load(NULL, &cfg, &err), ST_ECONFIG);
		assert_null(cfg);
		assert_string_equal(err.message, "no configuration file found");
		snprintf(want, sizeof(want), "looked for --config FILE, $SPILTTEA_OPS_CONFIG, "
			 "./spilttea-ops.yaml, /etc/spilttea-ops/config.yaml; copy config.example.yaml "
			 "to one of them");
		assert_string_equal(err.hint, want);
	}
	assert_int_equal(chdir(oldcwd), 0);
}

/* ---- the command, end to end ------------------------------------------------- */

struct run {
	int status;
	char out[16384];
	char err[16384];
};

static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (!f)
		return;
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Runs ST_BINARY with argv in dir, with SPILTTEA_OPS_CONFIG unset. */
static void run_binary(struct run *r, const char *dir, const char *const *args)
{
	const char *bin = getenv("ST_BINARY");
	char *argv[16];
	char outp[PATH_MAX + 64], errp[PATH_MAX + 64];
	pid_t pid;
	int st, i;

	assert_non_null(bin);
	argv[0] = (char *)bin;
	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	snprintf(outp, sizeof(outp), "%s/run.out", tmpdir);
	snprintf(errp, sizeof(errp), "%s/run.err", tmpdir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || chdir(dir) != 0)
			_exit(127);
		unsetenv(CONFIG_ENV_VAR);
		unsetenv("DOCKER_HOST");
		execv(bin, argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	r->status = WEXITSTATUS(st);
	slurp(outp, r->out, sizeof(r->out));
	slurp(errp, r->err, sizeof(r->err));
}

static void test_command(void **state)
{
	static struct run r;
	char want[BIG];
	json_t *j;
	json_error_t jerr;

	(void)state;
	if (!getenv("ST_BINARY"))
		skip();
	write_at(cfgpath, MINIMAL, 0644);
	run_binary(&r, tmpdir, (const char *const[]){ "--config", cfgpath, "config", "check", NULL });
	assert_int_equal(r.status, 0);
	snprintf(want, sizeof(want), "configuration OK: %s\n", cfgpath);
	assert_string_equal(r.out, want);
	assert_string_equal(r.err, "");

	/* Found through ./spilttea-ops.yaml; global option after the command. */
	write_at(in_tmp("spilttea-ops.yaml"), MINIMAL, 0644);
	run_binary(&r, tmpdir, (const char *const[]){ "config", "show", "--format", "json", NULL });
	assert_int_equal(r.status, 0);
	j = json_loads(r.out, 0, &jerr);
	if (!j)
		fail_msg("config show --format json: %s: %s", jerr.text, r.out);
	assert_string_equal(json_string_value(json_object_get(j, "state_dir")), "/srv/st");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "redis"), "port")), 6379);
	json_decref(j);
	run_binary(&r, tmpdir, (const char *const[]){ "config", "show", NULL });
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "# effective configuration from ./spilttea-ops.yaml (found by ./spilttea-ops.yaml)\n"));
	assert_non_null(strstr(r.out, "\n  keep_days: 7\n"));
	assert_int_equal(remove(in_tmp("spilttea-ops.yaml")), 0);

	write_at(cfgpath, MINIMAL "backup:\n  keepdays: 3\n", 0644);
	run_binary(&r, tmpdir, (const char *const[]){ "-c", cfgpath, "config", "check", NULL });
	assert_int_equal(r.status, 2);
	assert_string_equal(r.out, "");
	snprintf(want, sizeof(want),
		 "error: %s:12:3: unknown key 'backup.keepdays' (did you mean 'keep_days'?)\n"
		 "hint: keys under 'backup': dir, keep_days, keep_min, via, compress\n", cfgpath);
	assert_string_equal(r.err, want);

	write_at(cfgpath, MINIMAL, 0644);
	run_binary(&r, tmpdir, (const char *const[]){ "-c", cfgpath, "config", "show", "--format", "xml", NULL });
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "error: config show has no format 'xml' (yaml or json)\n"));
	run_binary(&r, tmpdir, (const char *const[]){ "-c", cfgpath, "config", "frobnicate", NULL });
	assert_int_equal(r.status, 2);

	/* --help needs no configuration. */
	run_binary(&r, "/", (const char *const[]){ "config", "--help", NULL });
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "usage: spilttea-ops config check"));

	if (access(CONFIG_SYSTEM_PATH, F_OK) != 0) {
		assert_int_equal(mkdir(in_tmp("empty"), 0755), 0);
		run_binary(&r, in_tmp("empty"), (const char *const[]){ "config", "check", NULL });
		assert_int_equal(r.status, 2);
		assert_non_null(strstr(r.err, "error: no configuration file found\nhint: looked for --config FILE"));
	}
}

/* A configuration anyone but its owner can write is refused before it is
 * parsed: the group/world bits are checked on the descriptor that is read. */
static void test_writable_file_refused(void **state)
{
	static const mode_t bad[] = { 0664, 0646, 0666, 0620, 0602, 0777 };
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	char want[BIG];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st_error_clear(&err);
		write_at(cfgpath, MINIMAL, bad[i]);
		assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
		assert_null(cfg);
		snprintf(want, sizeof(want), "configuration file '%s' is writable by %s (mode %04o); refusing to use it",
			 cfgpath, (bad[i] & 02) ? "everyone" : "its group", (unsigned)bad[i]);
		assert_string_equal(err.message, want);
		snprintf(want, sizeof(want), "chmod go-w %s", cfgpath);
		assert_string_equal(err.hint, want);
	}
	/* Through config_load (the search order) as well. */
	st_error_clear(&err);
	assert_int_equal(config_load(cfgpath, &cfg, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "is writable by everyone"));
	/* Readable by all is fine, so is owner-only and read-only. */
	for (i = 0; i < 3; i++) {
		static const mode_t good[] = { 0644, 0600, 0444 };

		write_at(cfgpath, MINIMAL, good[i]);
		if (config_load_file(cfgpath, "--config", &cfg, &err) != 0)
			fail_msg("mode %04o: %s", (unsigned)good[i], err.message);
		config_free(cfg);
		cfg = NULL;
	}
	/* A symlink is judged by the file it points at. */
	write_at(in_tmp("real.yaml"), MINIMAL, 0666);
	assert_int_equal(symlink("real.yaml", in_tmp("link.yaml")), 0);
	assert_int_equal(config_load_file(in_tmp("link.yaml"), "--config", &cfg, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "is writable by everyone (mode 0666)"));
}

/* Not a file, too large, binary bytes, huge values: clear errors, no crash. */
static void test_odd_files_and_values(void **state)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	char want[BIG];
	char *big;
	size_t n;

	(void)state;
	/* A directory and a FIFO (opened without blocking). */
	assert_int_equal(mkdir(in_tmp("d.yaml"), 0700), 0);
	assert_int_equal(config_load_file(in_tmp("d.yaml"), "--config", &cfg, &err), ST_ECONFIG);
	snprintf(want, sizeof(want), "%s/d.yaml' is not a regular file", tmpdir);
	assert_non_null(strstr(err.message, want));
	assert_int_equal(mkfifo(in_tmp("f.yaml"), 0600), 0);
	assert_int_equal(config_load_file(in_tmp("f.yaml"), "--config", &cfg, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "is not a regular file"));

	/* Over 4 MiB: refused before it is read. */
	n = 5u * 1024 * 1024;
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, '#', n);
	big[n] = '\0';
	write_at(cfgpath, big, 0600);
	assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "is too large (5242880 bytes, at most 4194304)"));

	/* A 3 MiB value in a key that takes any string loads unchanged. */
	n = 3u * 1024 * 1024;
	{
		struct sbuf b = SBUF_INIT;
		char *v = malloc(n + 1);

		assert_non_null(v);
		memset(v, 'x', n);
		v[n] = '\0';
		sbuf_printf(&b, L_STATE "services:\n  postgres:\n    container: pg\n    image: %s\n" L_PG L_REDIS, v);
		write_at(cfgpath, b.buf, 0600);
		if (config_load_file(cfgpath, "--config", &cfg, &err) != 0)
			fail_msg("3 MiB value: %s", err.message);
		assert_int_equal(strlen(config_service(cfg, "postgres")->image), n);
		config_free(cfg);
		cfg = NULL;
		sbuf_release(&b);
		free(v);
	}
	/* The same in a path: no file has such a name. */
	{
		struct sbuf b = SBUF_INIT;
		char *v = malloc(PATH_MAX + 1);

		assert_non_null(v);
		memset(v, 'p', PATH_MAX);
		v[0] = '/';
		v[PATH_MAX] = '\0';
		sbuf_printf(&b, MINIMAL "runbooks_dir: %s\n", v);
		write_at(cfgpath, b.buf, 0600);
		assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
		snprintf(want, sizeof(want), "%s:11:15: runbooks_dir is longer than a path can be (%d bytes, at most %d)",
			 cfgpath, PATH_MAX, PATH_MAX - 1);
		assert_string_equal(err.message, want);
		v[PATH_MAX - 1] = '\0';
		sbuf_reset(&b);
		sbuf_printf(&b, MINIMAL "runbooks_dir: %s\n", v);
		write_at(cfgpath, b.buf, 0600);
		if (config_load_file(cfgpath, "--config", &cfg, &err) != 0)
			fail_msg("PATH_MAX - 1: %s", err.message);
		config_free(cfg);
		cfg = NULL;
		sbuf_release(&b);
		free(v);
	}
	free(big);

	/* A raw NUL byte, a NUL escape, invalid UTF-8, a C0 control byte. */
	{
		static const char raw_nul[] = L_STATE "services:\n  postgres:\n    container: p\0g\n" L_PG L_REDIS;
		int fd = open(cfgpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, raw_nul, sizeof(raw_nul) - 1), (ssize_t)(sizeof(raw_nul) - 1));
		close(fd);
		assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
		assert_int_equal(strncmp(err.message, cfgpath, strlen(cfgpath)), 0);
		assert_null(cfg);
	}
	load_fail(L_STATE "services:\n  postgres:\n    container: \"p\\0g\"\n" L_PG L_REDIS, 4, 16,
		  "scalar contains a NUL byte");
	write_at(cfgpath, L_STATE "services:\n  postgres:\n    container: p\xff\xfeg\n" L_PG L_REDIS, 0600);
	assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
	assert_int_equal(strncmp(err.message, cfgpath, strlen(cfgpath)), 0);
	write_at(cfgpath, L_STATE "services:\n  postgres:\n    container: p\x01g\n" L_PG L_REDIS, 0600);
	assert_int_equal(config_load_file(cfgpath, "--config", &cfg, &err), ST_ECONFIG);
	assert_int_equal(strncmp(err.message, cfgpath, strlen(cfgpath)), 0);
}

/* The command line: exit 2, the message and the chmod hint on stderr. */
static void test_writable_file_command(void **state)
{
	static struct run r;
	char want[BIG];

	(void)state;
	if (!getenv("ST_BINARY"))
		skip();
	write_at(cfgpath, MINIMAL, 0664);
	run_binary(&r, tmpdir, (const char *const[]){ "--config", cfgpath, "config", "check", NULL });
	assert_int_equal(r.status, 2);
	assert_string_equal(r.out, "");
	snprintf(want, sizeof(want),
		 "error: configuration file '%s' is writable by its group (mode 0664); refusing to use it\n"
		 "hint: chmod go-w %s\n", cfgpath, cfgpath);
	assert_string_equal(r.err, want);
	assert_int_equal(chmod(cfgpath, 0644), 0);
	run_binary(&r, tmpdir, (const char *const[]){ "--config", cfgpath, "config", "check", NULL });
	assert_int_equal(r.status, 0);
}

/* deploy: defaults, the compose file path, log patterns checked as regexes. */
static void test_deploy_keys(void **state)
{
	struct st_config *cfg;
	char want[BIG];

	(void)state;
	cfg = load_ok(MINIMAL);
	assert_int_equal(cfg->deploy.keep_releases, 5);
	assert_true(cfg->deploy.health_timeout == 60);
	assert_true(cfg->deploy.health_interval == 1);
	assert_int_equal(cfg->deploy.health_fail_after, 3);
	assert_true(cfg->deploy.log_scan == 5);
	assert_int_equal(cfg->deploy.stop_timeout, 10);
	assert_int_equal(cfg->deploy.log_error_patterns.count, 2);
	assert_string_equal(cfg->deploy.log_error_patterns.items[0], "\\b(error|fatal|panic)\\b");
	assert_null(cfg->compose_file);
	config_free(cfg);

	cfg = load_ok(MINIMAL "compose_file: compose/docker-compose.yml\n"
		      "deploy: { keep_releases: 2, log_scan: 0, log_error_patterns: ['boom'] }\n");
	snprintf(want, sizeof(want), "%s/compose/docker-compose.yml", tmpdir);
	assert_string_equal(cfg->compose_file, want);
	assert_int_equal(cfg->deploy.keep_releases, 2);
	assert_true(cfg->deploy.log_scan == 0);
	assert_int_equal(cfg->deploy.log_error_patterns.count, 1);
	config_free(cfg);

	load_fail(MINIMAL "deploy:\n  log_error_patterns: ['ok', 'bad(']\n", 12, 30,
		  "deploy.log_error_patterns[1]: 'bad(' is not a regular expression: Unmatched ( or \\(");
	load_fail(MINIMAL "deploy:\n  keep_releases: 0\n", 12, 18,
		  "deploy.keep_releases must be between 1 and 1000, not '0'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_example_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_example_states_the_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_values_override_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_host_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_top_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incident_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_or_odd_documents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_files_and_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writable_file_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_containers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deploy_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_from_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_from_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_render_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
