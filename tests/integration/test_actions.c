/*
 * The service actions and container_wait_ready() against the sandbox:
 * each action on real Docker, PostgreSQL and Redis, failure paths included
 * (unknown and stopped containers, SQL errors, writes refused in pg.query,
 * Redis down), and readiness of stand-in containers this test creates
 * (spilttea-test-act-*: healthy, unhealthy, no healthcheck with a URL,
 * exiting at start). Whatever it stops it starts again and waits for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>

#include "actions_util.h"
#include "config.h"
#include "container.h"
#include "engine.h"
#include "redact.h"
#include "http.h"
#include "services.h"
#include "timeutil.h"
#include "sandbox_env.h"

#define STANDIN_IMAGE "spilttea-sandbox/standin:1"

static struct st_config *cfg;
static struct engine_registry *reg;
static struct services svc;

static volatile sig_atomic_t *run_cancel; /* engine_call.cancel for run(); NULL: none */

/* Runs action name with args given as JSON text, like a step's act. */
static int run(const char *name, const char *args_json, json_t **result, struct st_error *err)
{
	const struct engine_action *a = engine_registry_find(reg, name);
	struct engine_call call;
	json_t *raw, *args = NULL;
	int rc;

	*result = NULL;
	if (!a)
		fail_msg("no action '%s'", name);
	raw = json_loads(args_json, 0, NULL);
	if (!raw)
		fail_msg("bad test JSON: %s", args_json);
	memset(&call, 0, sizeof(call));
	call.runbook = "test";
	call.step = name;
	call.phase = ENGINE_PHASE_ACT;
	call.attempt = 1;
	call.config = cfg;
	call.services = &svc;
	call.cancel = run_cancel;
	st_error_clear(err);
	rc = engine_args_prepare(a, raw, &args, err);
	if (rc == 0)
		rc = a->run(&call, args, result, err);
	json_decref(raw);
	json_decref(args);
	return rc;
}

static json_t *run_ok(const char *name, const char *args_json)
{
	struct st_error err = { 0 };
	json_t *r = NULL;

	if (run(name, args_json, &r, &err) != 0)
		fail_msg("%s %s: %s", name, args_json, err.message);
	return r;
}

static const char *str(const json_t *o, const char *path)
{
	json_t *v = (json_t *)o;
	char buf[128], *p, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = strtok_r(buf, ".", &save); p && v; p = strtok_r(NULL, ".", &save))
		v = json_is_array(v) ? json_array_get(v, (size_t)atoi(p)) : json_object_get(v, p);
	return json_string_value(v);
}

static long long num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : (long long)json_number_value(v);
}

static struct docker_client *docker(void)
{
	struct docker_client *d = NULL;
	struct st_error err = { 0 };

	if (services_docker(&svc, &d, &err) != 0)
		fail_msg("docker: %s", err.message);
	return d;
}

/* ---- test containers from the stand-in image ---- */

enum hc { HC_IMAGE_FAST, HC_NONE };

static void remove_container(const char *name)
{
	struct st_error err = { 0 };

	(void)docker_container_remove(docker(), name, 1, 1, 30, &err);
}

/* Creates and starts a stand-in on port with extra env ("K=V" ...,
 * NULL-terminated). HC_IMAGE_FAST: the image's probe every 300 ms, one
 * failure is unhealthy; HC_NONE: no healthcheck at all. */
static void standin(const char *name, int port, enum hc hc, const char *const *env)
{
	struct st_error err = { 0 };
	json_t *cfgj, *envj;
	char *id = NULL, portenv[32];
	size_t i;

	remove_container(name);
	snprintf(portenv, sizeof(portenv), "PORT=%d", port);
	envj = json_pack("[s,s]", portenv, "STANDIN_ROLE=backend");
	for (i = 0; env && env[i]; i++)
		json_array_append_new(envj, json_string(env[i]));
	cfgj = json_pack("{s:s,s:o,s:{s:s},s:{s:s,s:b}}", "Image", STANDIN_IMAGE, "Env", envj, "Labels",
			 "spilttea-test", "1", "HostConfig", "NetworkMode", "host", "Init", 1);
	if (hc == HC_NONE)
		json_object_set_new(cfgj, "Healthcheck", json_pack("{s:[s]}", "Test", "NONE"));
	else
		json_object_set_new(cfgj, "Healthcheck",
				    json_pack("{s:[s,s,s],s:I,s:I,s:I,s:i}", "Test", "CMD",
					      "/usr/local/bin/standin", "probe", "Interval",
					      (json_int_t)300000000, "Timeout", (json_int_t)3000000000LL,
					      "StartPeriod", (json_int_t)1000000, "Retries", 1));
	if (docker_container_create(docker(), name, cfgj, 30, &id, &err) != 0)
		fail_msg("create %s: %s", name, err.message);
	free(id);
	json_decref(cfgj);
	if (docker_container_start(docker(), name, 30, &err) != 0)
		fail_msg("start %s: %s", name, err.message);
}

/* ---- container_wait_ready ---- */

static void test_wait_healthcheck(void **state)
{
	struct container_wait_report rep;
	struct st_error err = { 0 };
	int port = test_closed_port();

	(void)state;
	standin("spilttea-test-act-hc", port, HC_IMAGE_FAST, NULL);
	assert_int_equal(container_wait_ready(docker(), "spilttea-test-act-hc", NULL, 20, 0.2, &rep,
					      &err), 0);
	assert_true(rep.ready);
	assert_int_equal(rep.method, CONTAINER_READY_DOCKER_HEALTH);
	assert_string_equal(rep.state.health, "healthy");
	assert_string_equal(rep.reason, "");
	remove_container("spilttea-test-act-hc");
}

static void test_wait_unhealthy(void **state)
{
	static const char *const env[] = { "STANDIN_HEALTH_STATUS=500", NULL };
	struct container_wait_report rep;
	struct st_error err = { 0 };
	int port = test_closed_port();
	double t0 = time_monotonic();

	(void)state;
	standin("spilttea-test-act-sick", port, HC_IMAGE_FAST, env);
	assert_int_equal(container_wait_ready(docker(), "spilttea-test-act-sick", NULL, 30, 0.2, &rep,
					      &err), ST_EFAILED);
	/* At once when Docker says unhealthy, long before the timeout. */
	assert_true(time_monotonic() - t0 < 15);
	assert_false(rep.ready);
	assert_string_equal(rep.state.health, "unhealthy");
	assert_non_null(strstr(err.message, "container 'spilttea-test-act-sick' is unhealthy: exit 1"));
	assert_non_null(strstr(rep.health_log, "exit 1"));
	assert_non_null(strstr(err.hint, "docker inspect"));
	remove_container("spilttea-test-act-sick");
}

static void test_wait_url(void **state)
{
	static const char *const sick[] = { "STANDIN_HEALTH_STATUS=503", NULL };
	struct container_wait_report rep;
	struct st_error err = { 0 };
	char url[128];
	int port = test_closed_port();

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
	standin("spilttea-test-act-url", port, HC_NONE, NULL);
	assert_int_equal(container_wait_ready(docker(), "spilttea-test-act-url", url, 20, 0.2, &rep,
					      &err), 0);
	assert_int_equal(rep.method, CONTAINER_READY_HTTP);
	assert_int_equal(rep.http_status, 200);
	assert_string_equal(rep.url, url);
	assert_string_equal(rep.state.health, "none");

	/* A 503 never becomes ready: the error names URL, status and body. */
	standin("spilttea-test-act-url", port, HC_NONE, sick);
	assert_int_equal(container_wait_ready(docker(), "spilttea-test-act-url", url, 2, 0.3, &rep,
					      &err), ST_ETIMEOUT);
	assert_int_equal(rep.http_status, 503);
	assert_non_null(strstr(err.message, "not ready within 2.0s: GET "));
	assert_non_null(strstr(err.message, url));
	assert_non_null(strstr(err.message, "answered 503: {\"status\":\"error\""));
	assert_non_null(strstr(rep.body, "\"status\":\"error\""));

	/* Without healthcheck and URL: running for 2 s is ready. */
	standin("spilttea-test-act-url", port, HC_NONE, NULL);
	assert_int_equal(container_wait_ready(docker(), "spilttea-test-act-url", NULL, 10, 0.2, &rep,
					      &err), 0);
	assert_int_equal(rep.method, CONTAINER_READY_RUNNING);
	assert_true(time_wall() - rep.state.started >= CONTAINER_SETTLE_S);
	remove_container("spilttea-test-act-url");
}

static void test_wait_exits(void **state)
{
	static const char *const env[] = { "STANDIN_EXIT_AT_START=3", NULL };
	struct container_wait_report rep;
	struct st_error err = { 0 };
	double t0;

	(void)state;
	standin("spilttea-test-act-exit", test_closed_port(), HC_NONE, env);
	t0 = time_monotonic();
	assert_int_equal(container_wait_ready(docker(), "spilttea-test-act-exit", NULL, 30, 0.2, &rep,
					      &err), ST_EFAILED);
	assert_true(time_monotonic() - t0 < 10);
	assert_int_equal(rep.state.exit_code, 3);
	assert_non_null(strstr(err.message, "container 'spilttea-test-act-exit' exited with code 3"));
	assert_non_null(strstr(err.message, "last log line: "));
	assert_true(strlen(rep.logs) > 0);
	assert_non_null(strstr(rep.logs, "STANDIN_EXIT_AT_START"));
	remove_container("spilttea-test-act-exit");

	assert_int_equal(container_wait_ready(docker(), "spilttea-test-no-such", NULL, 5, 0.2, &rep,
					      &err), ST_ENOTFOUND);
	assert_string_equal(err.message, "container 'spilttea-test-no-such' does not exist");
}

/* ---- docker.* ---- */

/* The backend's env file the sandbox gave it; caller frees. */
static char *read_backend_env(void)
{
	char path[512], *text;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/backend.env", sandbox_env("ST_SANDBOX_DIR"));
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	if (!text || fread(text, 1, (size_t)n, f) != (size_t)n)
		fail_msg("cannot read %s", path);
	fclose(f);
	return text;
}

static void test_docker_inspect_env(void **state)
{
	struct st_error err = { 0 };
	json_t *r;
	char *dump, *secret = NULL, *line, *save = NULL, *envtext;

	(void)state;
	r = run_ok("docker.inspect", "{\"service\":\"backend\"}");
	assert_string_equal(str(r, "container"), "spilttea-backend");
	assert_string_equal(str(r, "service"), "backend");
	assert_true(json_is_true(json_object_get(r, "running")));
	assert_string_equal(str(r, "status"), "running");
	assert_non_null(str(r, "image_id"));
	json_decref(r);

	r = run_ok("docker.inspect", "{\"container\":\"spilttea-test-no-such\"}");
	assert_true(json_is_false(json_object_get(r, "exists")));
	assert_string_equal(str(r, "status"), "missing");
	json_decref(r);

	assert_int_equal(run("docker.inspect", "{\"service\":\"nope\"}", &r, &err), ST_ECONFIG);
	assert_int_equal(run("docker.inspect", "{}", &r, &err), ST_EUSAGE);

	r = run_ok("docker.env", "{\"service\":\"backend\",\"require\":[\"JWT_SECRET\",\"DATABASE_URL\","
				  "\"SPILTTEA_TEST_MISSING\"]}");
	assert_string_equal(str(r, "vars.JWT_SECRET"), "***");
	assert_int_equal(num(r, "missing_count"), 1);
	assert_string_equal(str(r, "missing.0"), "SPILTTEA_TEST_MISSING");
	assert_non_null(str(r, "vars.DATABASE_URL"));
	/* No value of a secret variable anywhere in the result. */
	dump = json_dumps(r, JSON_COMPACT);
	envtext = read_backend_env();
	for (line = strtok_r(envtext, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (!eq || !eq[1])
			continue;
		*eq = '\0';
		if (redact_name_is_secret(line) && strlen(eq + 1) >= 4) {
			secret = eq + 1;
			if (strstr(dump, secret))
				fail_msg("value of %s appears in docker.env's result", line);
		}
		if (!strcmp(line, "DATABASE_URL"))
			assert_non_null(strstr(str(r, "vars.DATABASE_URL"), ":***@"));
	}
	assert_non_null(secret); /* the env file had secrets to look for */
	free(envtext);
	free(dump);
	json_decref(r);
}

static void test_docker_exec(void **state)
{
	struct st_error err = { 0 };
	json_t *r;

	(void)state;
	r = run_ok("docker.exec", "{\"service\":\"postgres\",\"command\":[\"sh\",\"-c\","
				  "\"echo out; echo \\\"$GREETING\\\" >&2; exit 3\"],"
				  "\"env\":{\"GREETING\":\"hi there\"},\"expect_exit\":3}");
	assert_int_equal(num(r, "exit_code"), 3);
	assert_string_equal(str(r, "stdout"), "out\n");
	assert_string_equal(str(r, "stderr"), "hi there\n");
	json_decref(r);

	/* Default expectation is exit 0; the error carries the last stderr line. */
	assert_int_equal(run("docker.exec", "{\"container\":\"spilttea-postgres\",\"command\":[\"sh\","
			     "\"-c\",\"echo first >&2; echo 'no such thing' >&2; exit 2\"]}", &r, &err),
			 ST_EFAILED);
	assert_string_equal(err.message, "'sh' in container 'spilttea-postgres' exited with 2: no such thing");
	/* A last line with control characters and bytes that are not UTF-8
	 * becomes one clean line (the journal takes only valid UTF-8). */
	assert_int_equal(run("docker.exec", "{\"container\":\"spilttea-postgres\",\"command\":[\"sh\","
			     "\"-c\",\"printf 'bad\\\\033[31m\\\\001red \\\\377\\\\n' >&2; exit 2\"]}", &r, &err),
			 ST_EFAILED);
	assert_string_equal(err.message, "'sh' in container 'spilttea-postgres' exited with 2: bad [31m red ?");

	/* Output beyond max_output keeps its end. */
	r = run_ok("docker.exec", "{\"service\":\"postgres\",\"max_output\":1000,\"command\":[\"sh\","
				  "\"-c\",\"head -c 200000 /dev/zero | tr '\\\\0' a; echo END\"]}");
	assert_int_equal(num(r, "stdout_bytes"), 200004);
	assert_int_equal(strlen(str(r, "stdout")), 1000);
	assert_non_null(strstr(str(r, "stdout"), "aaaEND\n"));
	assert_true(json_is_true(json_object_get(r, "stdout_truncated")));
	json_decref(r);

	assert_int_equal(run("docker.exec", "{\"container\":\"spilttea-test-no-such\",\"command\":[\"true\"]}",
			     &r, &err), ST_ENOTFOUND);
	assert_int_equal(run("docker.exec", "{\"service\":\"postgres\",\"command\":[]}", &r, &err),
			 ST_EUSAGE);
}

static volatile sig_atomic_t exec_cancel;

static void *cancel_soon(void *arg)
{
	(void)arg;
	time_sleep(0.3);
	exec_cancel = 1;
	return NULL;
}

/* Ctrl-C reaches a command that prints nothing (review item 5: it was
 * seen only when output arrived, so at the 5-minute timeout). */
static void test_docker_exec_interrupted(void **state)
{
	struct st_error err = { 0 };
	json_t *r = NULL;
	pthread_t t;
	double t0;

	(void)state;
	exec_cancel = 0;
	run_cancel = &exec_cancel;
	assert_int_equal(pthread_create(&t, NULL, cancel_soon, NULL), 0);
	t0 = time_monotonic();
	assert_int_equal(run("docker.exec", "{\"service\":\"postgres\",\"command\":[\"sleep\",\"4\"]}", &r,
			     &err), ST_EABORTED);
	assert_true(time_monotonic() - t0 < 2.5);
	assert_non_null(strstr(err.message, "interrupted while running 'sleep'"));
	assert_non_null(strstr(err.message, "may still be running"));
	pthread_join(t, NULL);
	/* The client is not left interrupted for the next call (an undo). */
	run_cancel = NULL;
	r = run_ok("docker.exec", "{\"service\":\"postgres\",\"command\":[\"true\"]}");
	json_decref(r);
}

static void test_docker_lifecycle(void **state)
{
	struct st_error err = { 0 };
	json_t *r;
	char before[64];

	(void)state;
	standin("spilttea-test-act-life", test_closed_port(), HC_NONE, NULL);
	r = run_ok("docker.stop", "{\"container\":\"spilttea-test-act-life\",\"timeout\":\"5s\"}");
	assert_true(json_is_true(json_object_get(r, "was_running")));
	assert_true(json_is_false(json_object_get(r, "running")));
	assert_string_equal(str(r, "status"), "exited");
	json_decref(r);

	/* A stopped container: exec refused, wait_ready fails at once. */
	assert_int_equal(run("docker.exec", "{\"container\":\"spilttea-test-act-life\",\"command\":[\"true\"]}",
			     &r, &err), ST_ECONFLICT);
	assert_int_equal(run("docker.wait_ready", "{\"container\":\"spilttea-test-act-life\",\"timeout\":5}",
			     &r, &err), ST_EFAILED);
	assert_non_null(strstr(err.message, "exited with code"));

	r = run_ok("docker.start", "{\"container\":\"spilttea-test-act-life\"}");
	assert_true(json_is_false(json_object_get(r, "was_running")));
	assert_true(json_is_true(json_object_get(r, "running")));
	snprintf(before, sizeof(before), "%s", str(r, "started_at"));
	json_decref(r);
	/* Starting a running container is fine and changes nothing. */
	r = run_ok("docker.start", "{\"container\":\"spilttea-test-act-life\"}");
	assert_true(json_is_true(json_object_get(r, "was_running")));
	assert_string_equal(str(r, "started_at"), before);
	json_decref(r);

	r = run_ok("docker.restart", "{\"container\":\"spilttea-test-act-life\",\"timeout\":2}");
	assert_true(json_is_true(json_object_get(r, "running")));
	assert_string_equal(str(r, "previous_started_at"), before);
	assert_string_not_equal(str(r, "started_at"), before);
	json_decref(r);

	r = run_ok("docker.wait_ready", "{\"container\":\"spilttea-test-act-life\",\"timeout\":10,"
					"\"interval\":\"200ms\"}");
	assert_true(json_is_true(json_object_get(r, "ready")));
	assert_string_equal(str(r, "method"), "running");
	json_decref(r);
	remove_container("spilttea-test-act-life");

	assert_int_equal(run("docker.restart", "{\"container\":\"spilttea-test-no-such\"}", &r, &err),
			 ST_ENOTFOUND);
	assert_int_equal(run("docker.stop", "{\"container\":\"spilttea-test-no-such\"}", &r, &err),
			 ST_ENOTFOUND);
}

static void test_docker_wait_service(void **state)
{
	json_t *r;

	(void)state;
	/* The backend has a healthcheck: Docker's health decides. */
	r = run_ok("docker.wait_ready", "{\"service\":\"backend\",\"timeout\":30}");
	assert_string_equal(str(r, "method"), "docker-health");
	assert_string_equal(str(r, "health"), "healthy");
	json_decref(r);
}

static void test_docker_logs_grep(void **state)
{
	struct http_result res;
	struct st_error err = { 0 };
	json_t *r;
	char url[256];
	long long before;
	int i;

	(void)state;
	r = run_ok("docker.logs_grep", "{\"service\":\"backend\",\"since\":0,"
				       "\"patterns\":[\"GET /status/418\",\"ZZZ-NEVER-LOGGED\"]}");
	before = json_integer_value(json_object_get(json_object_get(r, "counts"), "GET /status/418"));
	json_decref(r);
	snprintf(url, sizeof(url), "%s/status/418", sandbox_env("ST_BACKEND_URL"));
	for (i = 0; i < 3; i++) {
		assert_int_equal(http_probe(url, 5, NULL, &res, &err), 0);
		assert_int_equal(res.status, 418);
		http_result_release(&res);
	}
	/* Case-insensitive; counted per pattern; newest lines sampled. The
	 * stand-in logs after answering and Docker copies logs
	 * asynchronously: give the last line a moment. */
	for (i = 0; i < 20; i++) {
		r = run_ok("docker.logs_grep", "{\"service\":\"backend\",\"since\":0,\"sample\":2,"
					       "\"patterns\":[\"get /STATUS/418\",\"ZZZ-NEVER-LOGGED\"]}");
		if (num(r, "matches") >= before + 3)
			break;
		json_decref(r);
		time_sleep(0.1);
	}
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "counts"),
							    "get /STATUS/418")), before + 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "counts"),
							    "ZZZ-NEVER-LOGGED")), 0);
	assert_int_equal(num(r, "matches"), before + 3);
	assert_true(num(r, "lines") >= num(r, "matches"));
	assert_int_equal(json_array_size(json_object_get(r, "sample")), 2);
	assert_non_null(strstr(str(r, "sample.1"), "\"GET /status/418 HTTP/1.1\" 418"));
	json_decref(r);

	/* since: lines older than the window are not read. */
	time_sleep(1.5);
	r = run_ok("docker.logs_grep", "{\"service\":\"backend\",\"since\":\"1s\","
				       "\"pattern\":\"GET /status/418\"}");
	assert_int_equal(num(r, "matches"), 0);
	json_decref(r);

	assert_int_equal(run("docker.logs_grep", "{\"service\":\"backend\",\"pattern\":\"(\"}", &r, &err),
			 ST_EUSAGE);
	assert_int_equal(run("docker.logs_grep", "{\"service\":\"backend\"}", &r, &err), ST_EUSAGE);
	assert_int_equal(run("docker.logs_grep", "{\"container\":\"spilttea-test-no-such\",\"pattern\":\"x\"}",
			     &r, &err), ST_ENOTFOUND);
}

/* ---- pg.* ---- */

static void test_pg_query(void **state)
{
	struct st_error err = { 0 };
	json_t *r;

	(void)state;
	r = run_ok("pg.query", "{\"sql\":\"SELECT count(*) AS n, $1::text AS echo FROM \\\"User\\\" "
			       "WHERE id > $2\",\"params\":[\"x'; DROP TABLE \\\"User\\\"; --\",0]}");
	assert_int_equal(num(r, "count"), 1);
	assert_true(json_integer_value(json_object_get(json_array_get(json_object_get(r, "rows"), 0),
						       "n")) > 0);
	assert_string_equal(str(r, "rows.0.echo"), "x'; DROP TABLE \"User\"; --");
	json_decref(r);

	/* A write inside pg.query is refused by the read-only transaction. */
	assert_int_equal(run("pg.query", "{\"sql\":\"CREATE TABLE spilttea_test_ro (a int)\"}", &r, &err),
			 ST_ESERVICE);
	assert_non_null(strstr(err.message, "read-only transaction"));
	r = run_ok("pg.query", "{\"sql\":\"SELECT to_regclass('spilttea_test_ro') IS NULL AS absent\"}");
	assert_true(json_is_true(json_object_get(json_array_get(json_object_get(r, "rows"), 0), "absent")));
	json_decref(r);

	assert_int_equal(run("pg.query", "{\"sql\":\"SELEC 1\"}", &r, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "syntax error"));
	assert_int_equal(run("pg.query", "{\"sql\":\"SELECT 1; SELECT 2\"}", &r, &err), ST_ESERVICE);
	assert_int_equal(run("pg.query", "{\"sql\":\"SELECT pg_sleep(3)\",\"timeout\":\"300ms\"}", &r,
			     &err), ST_ETIMEOUT);
	/* The connection is usable again after each failure. */
	r = run_ok("pg.query", "{\"sql\":\"SELECT current_database() AS db\",\"database\":\"postgres\"}");
	assert_string_equal(str(r, "rows.0.db"), "postgres");
	json_decref(r);
	r = run_ok("pg.query", "{\"sql\":\"SELECT current_database() AS db, "
			       "current_setting('transaction_read_only') AS ro\"}");
	assert_string_equal(str(r, "rows.0.db"), sandbox_env("ST_PG_DATABASE"));
	assert_string_equal(str(r, "rows.0.ro"), "on");
	json_decref(r);
}

static void test_pg_exec_analyze(void **state)
{
	struct st_error err = { 0 };
	json_t *r;

	(void)state;
	(void)run("pg.exec", "{\"sql\":\"DROP TABLE IF EXISTS spilttea_test_actions\"}", &r, &err);
	json_decref(r);
	json_decref(run_ok("pg.exec", "{\"sql\":\"CREATE TABLE spilttea_test_actions (a int, b text)\"}"));
	r = run_ok("pg.exec", "{\"sql\":\"INSERT INTO spilttea_test_actions SELECT g, $1 FROM "
			      "generate_series(1, $2::int) g\",\"params\":[\"x\",7]}");
	assert_int_equal(num(r, "affected"), 7);
	assert_string_equal(str(r, "command"), "INSERT 0 7");
	json_decref(r);
	r = run_ok("pg.exec", "{\"sql\":\"DELETE FROM spilttea_test_actions WHERE a > $1\",\"params\":[5]}");
	assert_int_equal(num(r, "affected"), 2);
	json_decref(r);

	r = run_ok("pg.analyze", "{\"table\":\"Post\"}");
	assert_true(json_is_true(json_object_get(r, "analyzed")));
	json_decref(r);
	json_decref(run_ok("pg.analyze", "{\"table\":\"spilttea_test_actions\",\"schema\":\"public\"}"));
	/* The name is an identifier, never SQL. */
	assert_int_equal(run("pg.analyze", "{\"table\":\"Post\\\"; DROP TABLE spilttea_test_actions; --\"}",
			     &r, &err), ST_ESERVICE);
	assert_non_null(strstr(err.message, "does not exist"));
	r = run_ok("pg.query", "{\"sql\":\"SELECT count(*) AS n FROM spilttea_test_actions\"}");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(r, "rows"), 0),
							    "n")), 5);
	json_decref(r);
	json_decref(run_ok("pg.exec", "{\"sql\":\"DROP TABLE spilttea_test_actions\"}"));
	assert_int_equal(run("pg.exec", "{\"sql\":\"DROP TABLE spilttea_test_actions\"}", &r, &err),
			 ST_ESERVICE);
}

static void test_pg_connections_terminate(void **state)
{
	struct pg_params p;
	struct pg_conn *idle[3] = { NULL, NULL, NULL };
	struct st_error err = { 0 };
	char *password = NULL, argsj[128];
	json_t *r, *pids;
	long long in_use;
	size_t i, j;
	int found;

	(void)state;
	r = run_ok("pg.connections", "{}");
	in_use = num(r, "in_use");
	assert_true(num(r, "max_connections") > 0);
	json_decref(r);
	assert_int_equal(sandbox_pg_params(&p, &password), 0);
	p.application_name = "spilttea-test-idle";
	for (i = 0; i < 3; i++)
		assert_int_equal(pg_connect(&p, &idle[i], &err), 0);
	time_sleep(1.2);
	r = run_ok("pg.connections", "{\"idle_older_than\":\"1s\"}");
	assert_true(num(r, "in_use") >= in_use + 3);
	assert_true(num(r, "idle_older") >= 3);
	json_decref(r);

	snprintf(argsj, sizeof(argsj), "{\"older_than\":\"1s\"}");
	r = run_ok("pg.terminate_idle", argsj);
	assert_true(num(r, "terminated") >= 3);
	pids = json_object_get(r, "pids");
	for (i = 0; i < 3; i++) {
		found = 0;
		for (j = 0; j < json_array_size(pids); j++)
			found |= json_integer_value(json_array_get(pids, j)) == pg_backend_pid(idle[i]);
		assert_true(found);
		/* Really gone: the next query on it fails. */
		assert_int_not_equal(pg_exec(idle[i], "SELECT 1", 0, NULL, 5, &err), 0);
	}
	json_decref(r);
	/* Our own connection survived. */
	json_decref(run_ok("pg.query", "{\"sql\":\"SELECT 1 AS one\"}"));
	r = run_ok("pg.terminate_idle", "{\"older_than\":\"1h\"}");
	assert_int_equal(num(r, "terminated"), 0);
	json_decref(r);
	for (i = 0; i < 3; i++)
		pg_close(idle[i]);
	free(password);
}

/* ---- redis.* ---- */

static void test_redis(void **state)
{
	struct redis_conn *rc = NULL;
	struct st_error err = { 0 };
	char key[64];
	json_t *r;
	int i;

	(void)state;
	r = run_ok("redis.ping", "{}");
	assert_true(json_is_true(json_object_get(r, "pong")));
	json_decref(r);
	r = run_ok("redis.info", "{\"section\":\"memory\"}");
	assert_true(num(r, "used_memory") > 0);
	assert_int_equal(num(r, "maxmemory"), 64 * 1024 * 1024);
	assert_non_null(str(r, "raw.used_memory_human"));
	json_decref(r);
	r = run_ok("redis.info", "{}");
	assert_non_null(str(r, "version"));
	json_decref(r);

	assert_int_equal(services_redis(&svc, &rc, &err), 0);
	for (i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "spilttea-test:act:%d", i);
		assert_int_equal(redis_command(rc, NULL, &err, "SET", key, "v", NULL), 0);
	}
	assert_int_equal(redis_command(rc, NULL, &err, "SET", "spilttea-test:keep", "v", NULL), 0);
	r = run_ok("redis.count_matching", "{\"pattern\":\"spilttea-test:act:*\"}");
	assert_int_equal(num(r, "count"), 5);
	json_decref(r);
	r = run_ok("redis.delete_matching", "{\"pattern\":\"spilttea-test:act:*\"}");
	assert_int_equal(num(r, "deleted"), 5);
	json_decref(r);
	r = run_ok("redis.count_matching", "{\"pattern\":\"spilttea-test:act:*\"}");
	assert_int_equal(num(r, "count"), 0);
	json_decref(r);
	r = run_ok("redis.count_matching", "{\"pattern\":\"spilttea-test:keep\"}");
	assert_int_equal(num(r, "count"), 1);
	json_decref(r);
	assert_int_equal(redis_command(rc, NULL, &err, "DEL", "spilttea-test:keep", NULL), 0);
	assert_int_equal(run("redis.delete_matching", "{\"pattern\":\"\"}", &r, &err), ST_EUSAGE);
}

/* Redis down: the actions fail with the server named; after it is back
 * the run's connection is reopened by itself. */
static void test_redis_down(void **state)
{
	struct st_error err = { 0 };
	json_t *r;
	int rc;

	(void)state;
	json_decref(run_ok("redis.ping", "{}"));
	json_decref(run_ok("docker.stop", "{\"service\":\"redis\",\"timeout\":5}"));
	rc = run("redis.ping", "{}", &r, &err);
	assert_true(rc == ST_ESERVICE || rc == ST_ETIMEOUT);
	rc = run("redis.info", "{}", &r, &err);
	assert_true(rc == ST_ESERVICE || rc == ST_ETIMEOUT);
	assert_non_null(strstr(err.message, sandbox_env("ST_REDIS_PORT")));
	json_decref(run_ok("docker.start", "{\"service\":\"redis\"}"));
	r = run_ok("docker.wait_ready", "{\"service\":\"redis\",\"timeout\":60,\"interval\":\"250ms\"}");
	assert_string_equal(str(r, "health"), "healthy");
	json_decref(r);
	json_decref(run_ok("redis.ping", "{}"));
}

/* ---- http.probe ---- */

static void test_http_probe(void **state)
{
	char args[256];
	json_t *r;

	(void)state;
	snprintf(args, sizeof(args), "{\"url\":\"%s/health\"}", sandbox_env("ST_BACKEND_URL"));
	r = run_ok("http.probe", args);
	assert_int_equal(num(r, "status"), 200);
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_string_equal(str(r, "body.status"), "ok");
	assert_true(json_real_value(json_object_get(r, "latency_s")) > 0);
	json_decref(r);

	snprintf(args, sizeof(args), "{\"url\":\"%s/status/503\"}", sandbox_env("ST_BACKEND_URL"));
	r = run_ok("http.probe", args);
	assert_int_equal(num(r, "status"), 503);
	assert_true(json_is_false(json_object_get(r, "ok")));
	json_decref(r);

	snprintf(args, sizeof(args), "{\"url\":\"%s/status/503\",\"expect_status\":503}",
		 sandbox_env("ST_BACKEND_URL"));
	r = run_ok("http.probe", args);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);

	snprintf(args, sizeof(args), "{\"url\":\"%s/health\",\"expect_body\":\"no-such-text\"}",
		 sandbox_env("ST_BACKEND_URL"));
	r = run_ok("http.probe", args);
	assert_true(json_is_false(json_object_get(r, "ok")));
	assert_true(json_is_false(json_object_get(r, "body_match")));
	json_decref(r);

	/* Nothing listening: a result, not an error. */
	snprintf(args, sizeof(args), "{\"url\":\"http://u:pw@127.0.0.1:%d/health\",\"timeout\":2}",
		 test_closed_port());
	r = run_ok("http.probe", args);
	assert_int_equal(num(r, "status"), 0);
	assert_true(json_is_false(json_object_get(r, "ok")));
	assert_true(strlen(str(r, "error")) > 0);
	assert_non_null(strstr(str(r, "url"), "u:***@"));
	json_decref(r);
}

static int teardown_group(void **state)
{
	(void)state;
	remove_container("spilttea-test-act-hc");
	remove_container("spilttea-test-act-sick");
	remove_container("spilttea-test-act-url");
	remove_container("spilttea-test-act-exit");
	remove_container("spilttea-test-act-life");
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_healthcheck),
		cmocka_unit_test(test_wait_unhealthy),
		cmocka_unit_test(test_wait_url),
		cmocka_unit_test(test_wait_exits),
		cmocka_unit_test(test_docker_inspect_env),
		cmocka_unit_test(test_docker_exec),
		cmocka_unit_test(test_docker_exec_interrupted),
		cmocka_unit_test(test_docker_lifecycle),
		cmocka_unit_test(test_docker_wait_service),
		cmocka_unit_test(test_docker_logs_grep),
		cmocka_unit_test(test_pg_query),
		cmocka_unit_test(test_pg_exec_analyze),
		cmocka_unit_test(test_pg_connections_terminate),
		cmocka_unit_test(test_redis),
		cmocka_unit_test(test_redis_down),
		cmocka_unit_test(test_http_probe),
	};
	struct st_error err = { 0 };
	int rc;

	if (sandbox_require("SPILTTEA_OPS_CONFIG", "ST_BACKEND_URL", "ST_PG_PASSWORD_FILE",
			    "ST_PG_DATABASE", "ST_REDIS_PORT", NULL) != 0)
		return 1;
	if (http_global_init(&err) != 0 || config_load(NULL, &cfg, &err) != 0 ||
	    engine_registry_new(1, &reg, &err) != 0) {
		fprintf(stderr, "error: %s\n", err.message);
		return 1;
	}
	services_init(&svc, cfg);
	rc = cmocka_run_group_tests(tests, NULL, teardown_group);
	services_release(&svc);
	engine_registry_free(reg);
	config_free(cfg);
	return rc;
}
