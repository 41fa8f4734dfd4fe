/*
 * Service actions without services: argument specs and flags, the literal
 * SQL rule at load, result shaping (inspect summaries, env filtering, rows,
 * output tails) and the container readiness rules, on canned data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "actions.h"
#include "actions_util.h"
#include "config.h"
#include "container.h"
#include "engine.h"
#include "redact.h"
#include "runbook.h"
#include "testutil.h"

/* ---- registry: names, flags, specs ---- */

static const struct engine_action *find(const struct engine_registry *reg, const char *name)
{
	const struct engine_action *a = engine_registry_find(reg, name);

	if (!a)
		fail_msg("action '%s' is not registered", name);
	return a;
}

static void test_flags(void **state)
{
	static const char *const read_only[] = { "docker.inspect", "docker.wait_ready",
		"docker.logs_grep", "docker.env", "pg.query", "pg.ping", "pg.connections", "redis.info",
		"redis.ping", "redis.count_matching", "http.probe", "envfile.read", NULL };
	static const char *const destructive[] = { "docker.stop", "docker.restart", "pg.exec",
		"pg.terminate_idle", "pg.vacuum_full", "redis.delete_matching", NULL };
	static const char *const neither[] = { "docker.start", "docker.exec", "pg.analyze", "pg.vacuum",
		NULL };
	struct engine_registry *reg = NULL;
	struct st_error err = { 0 };
	size_t i;

	(void)state;
	assert_int_equal(engine_registry_new(1, &reg, &err), 0);
	for (i = 0; read_only[i]; i++)
		assert_int_equal(find(reg, read_only[i])->flags, ENGINE_ACTION_READ_ONLY);
	for (i = 0; destructive[i]; i++)
		assert_int_equal(find(reg, destructive[i])->flags, ENGINE_ACTION_DESTRUCTIVE);
	for (i = 0; neither[i]; i++)
		assert_int_equal(find(reg, neither[i])->flags, 0);
	/* Every docker action takes container or service. */
	for (i = 0; i < engine_registry_count(reg); i++) {
		const struct engine_action *a = engine_registry_at(reg, i);

		if (strncmp(a->name, "docker.", 7))
			continue;
		assert_non_null(engine_action_arg(a, "container"));
		assert_non_null(engine_action_arg(a, "service"));
	}
	assert_true(find(reg, "pg.query")->flags == ENGINE_ACTION_READ_ONLY);
	assert_true(engine_action_arg(find(reg, "pg.query"), "sql")->flags & ENGINE_ARG_LITERAL);
	assert_true(engine_action_arg(find(reg, "pg.exec"), "sql")->flags & ENGINE_ARG_LITERAL);
	engine_registry_free(reg);
}

static void test_args_prepare(void **state)
{
	struct engine_registry *reg = NULL;
	struct st_error err = { 0 };
	json_t *in, *out = NULL;

	(void)state;
	assert_int_equal(engine_registry_new(1, &reg, &err), 0);
	in = json_pack("{s:s}", "container", "x");
	assert_int_equal(engine_args_prepare(find(reg, "docker.exec"), in, &out, &err), ST_EUSAGE);
	assert_string_equal(err.message, "action 'docker.exec' needs argument 'command'");
	json_decref(in);

	in = json_pack("{s:s,s:s}", "service", "backend", "timeout", "2m");
	assert_int_equal(engine_args_prepare(find(reg, "docker.wait_ready"), in, &out, &err), 0);
	assert_true(json_real_value(json_object_get(out, "timeout")) == 120.0);
	assert_true(json_real_value(json_object_get(out, "interval")) == 1.0);
	json_decref(out);
	json_decref(in);

	in = json_pack("{s:s,s:s}", "container", "x", "timeout", "soon");
	assert_int_equal(engine_args_prepare(find(reg, "docker.stop"), in, &out, &err), ST_EUSAGE);
	assert_string_equal(err.message, "argument 'timeout' must be a duration like 30, 500ms, 5m or "
					 "2h, not 'soon'");
	json_decref(in);

	in = json_pack("{s:s}", "older_than", "10m");
	assert_int_equal(engine_args_prepare(find(reg, "pg.terminate_idle"), in, &out, &err), 0);
	assert_true(json_real_value(json_object_get(out, "older_than")) == 600.0);
	json_decref(out);
	json_decref(in);

	in = json_object();
	assert_int_equal(engine_args_prepare(find(reg, "pg.terminate_idle"), in, &out, &err), 0);
	assert_true(json_real_value(json_object_get(out, "older_than")) == 300.0);
	json_decref(out);
	json_decref(in);
	engine_registry_free(reg);
}

/* ---- load-time rules ---- */

static int load(const char *text, struct st_error *err)
{
	struct engine_registry *reg = NULL;
	struct runbook *rb = NULL;
	int rc;

	assert_int_equal(engine_registry_new(1, &reg, err), 0);
	rc = runbook_load_buffer(reg, "t.yaml", text, strlen(text), &rb, err);
	runbook_free(rb);
	engine_registry_free(reg);
	return rc;
}

/* Runs action name with args (JSON text) without services: what it checks
 * before it needs a client. */
static int run_without_services(struct engine_registry *reg, const char *name, const char *json,
				struct st_error *err)
{
	const struct engine_action *a = find(reg, name);
	struct engine_call call;
	json_t *raw = json_loads(json, 0, NULL), *args = NULL, *result = NULL;
	int rc;

	memset(&call, 0, sizeof(call));
	call.phase = ENGINE_PHASE_ACT;
	rc = engine_args_prepare(a, raw, &args, err);
	if (rc == 0)
		rc = a->run(&call, args, &result, err);
	json_decref(raw);
	json_decref(args);
	json_decref(result);
	return rc;
}

/* Numbers out of range are refused, not cast into nonsense (review 11). */
static void test_out_of_range_args(void **state)
{
	struct engine_registry *reg = NULL;
	struct st_error err = { 0 };
	const struct engine_arg_spec *timeout;
	json_t *v, *out = NULL;

	(void)state;
	assert_int_equal(engine_registry_new(1, &reg, &err), 0);
	assert_int_equal(run_without_services(reg, "docker.exec",
					      "{\"container\":\"x\",\"command\":[\"true\"],\"max_output\":-1}",
					      &err), ST_EUSAGE);
	assert_string_equal(err.message, "argument 'max_output' must be between 0 and 16777216, not -1");
	assert_int_equal(run_without_services(reg, "docker.exec",
					      "{\"container\":\"x\",\"command\":[\"true\"],"
					      "\"max_output\":1e18}", &err), ST_EUSAGE);
	assert_int_equal(run_without_services(reg, "docker.logs_grep",
					      "{\"container\":\"x\",\"pattern\":\"a\",\"sample\":-5}", &err),
			 ST_EUSAGE);
	assert_string_equal(err.message, "argument 'sample' must be between 0 and 1000, not -5");
	assert_int_equal(run_without_services(reg, "pg.query", "{\"sql\":\"select 1\",\"max_rows\":-1}",
					      &err), ST_EUSAGE);
	assert_string_equal(err.message, "argument 'max_rows' must be between 0 and 100000, not -1");
	/* Durations: at most a year; a stop grace of 1e300s would overflow. */
	timeout = engine_action_arg(find(reg, "docker.stop"), "timeout");
	v = json_real(1e300);
	assert_int_equal(engine_arg_convert(timeout, v, &out, &err), ST_EUSAGE);
	assert_string_equal(err.message, "argument 'timeout' must be at most 366d, not '1e+300'");
	json_decref(v);
	v = json_string("400d");
	assert_int_equal(engine_arg_convert(timeout, v, &out, &err), ST_EUSAGE);
	json_decref(v);
	v = json_string("366d");
	assert_int_equal(engine_arg_convert(timeout, v, &out, &err), 0);
	json_decref(out);
	json_decref(v);
	engine_registry_free(reg);
}

/* A READ ONLY transaction still lets some functions act (review item 18):
 * pg.query refuses them by name, before connecting. */
static void test_pg_query_refuses_acting_functions(void **state)
{
	static const char *const bad[] = {
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
		"select PG_CANCEL_BACKEND (42)",
		"SELECT pg_reload_conf()",
		"SELECT pg_advisory_lock(1)",
		"SELECT pg_try_advisory_xact_lock(1)",
		"SELECT * FROM dblink_exec('host=x', 'DROP TABLE t')",
		"SELECT \"pg_terminate_backend\"(1)",
		NULL,
	};
	struct engine_registry *reg = NULL;
	struct st_error err = { 0 };
	char json[300];
	size_t i;

	(void)state;
	assert_int_equal(engine_registry_new(1, &reg, &err), 0);
	for (i = 0; bad[i]; i++) {
		json_t *j = json_pack("{s:s}", "sql", bad[i]);
		char *text = json_dumps(j, JSON_COMPACT);

		snprintf(json, sizeof(json), "%s", text);
		free(text);
		json_decref(j);
		if (run_without_services(reg, "pg.query", json, &err) != ST_EUSAGE ||
		    !strstr(err.message, "pg.query cannot call"))
			fail_msg("not refused: %s (%s)", bad[i], err.message);
	}
	/* Names that only contain one, and ordinary catalog queries, pass on
	 * (to fail here for want of a connection). */
	assert_int_equal(run_without_services(reg, "pg.query",
					      "{\"sql\":\"SELECT my_pg_reload_conf_log, count(*) FROM "
					      "pg_stat_activity\"}", &err), ST_EUSAGE);
	assert_string_equal(err.message, "no postgres client: this run was started without services");
	engine_registry_free(reg);
}

static void test_sql_literal(void **state)
{
	struct st_error err = { 0 };

	(void)state;
	/* Values through params: fine. */
	assert_int_equal(load("name: t\nparams:\n  id: { default: 1 }\nsteps:\n"
			      "  - name: q\n    action: pg.query\n"
			      "    args: { sql: 'SELECT $1::int AS n', params: ['${args.id}'] }\n", &err), 0);
	/* Interpolated into the text: refused where it is written. */
	assert_int_equal(load("name: t\nparams:\n  id: { default: 1 }\nsteps:\n"
			      "  - name: q\n    action: pg.query\n"
			      "    args: { sql: 'SELECT * FROM \"User\" WHERE id = ${args.id}' }\n", &err),
			 ST_ECONFIG);
	assert_string_equal(err.message, "t.yaml:7:18: argument 'sql' of action 'pg.query' must be "
					 "written out, without '${...}': pass values as parameters "
					 "($1, $2 ...)");
	/* Also in a verify, for pg.exec, and for the escaped form. */
	assert_int_equal(load("name: t\nsteps:\n  - name: q\n    action: pg.exec\n"
			      "    args: { sql: 'DELETE FROM x WHERE a = $${b}' }\n"
			      "    confirm: sure?\n", &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "t.yaml:5:"));
	assert_int_equal(load("name: t\nsteps:\n  - name: a\n    action: pg.analyze\n"
			      "    verify:\n      action: pg.query\n"
			      "      args: { sql: 'SELECT ${steps.a.table}' }\n", &err), ST_ECONFIG);
	/* pg.exec is destructive: without confirm the runbook is refused. */
	assert_int_equal(load("name: t\nsteps:\n  - name: q\n    action: pg.exec\n"
			      "    args: { sql: 'DELETE FROM x' }\n", &err), ST_ECONFIG);
	/* A read-only action only in check/verify. */
	assert_int_equal(load("name: t\nsteps:\n  - name: a\n    action: docker.start\n"
			      "    args: { service: backend }\n    verify:\n"
			      "      action: docker.restart\n      args: { service: backend }\n", &err),
			 ST_ECONFIG);
}

/* ---- container state ---- */

static const char inspect_running[] =
	"{\"Id\":\"abc123\",\"Name\":\"/spilttea-backend\",\"RestartCount\":2,"
	"\"Image\":\"sha256:feed\",\"Config\":{\"Image\":\"spilttea-sandbox/backend:latest\","
	"\"Healthcheck\":{\"Test\":[\"CMD\",\"standin\",\"probe\"]}},"
	"\"State\":{\"Status\":\"running\",\"Running\":true,\"Paused\":false,\"Restarting\":false,"
	"\"OOMKilled\":false,\"Dead\":false,\"Pid\":4242,\"ExitCode\":0,\"Error\":\"\","
	"\"StartedAt\":\"2026-11-27T22:34:16.123456789Z\",\"FinishedAt\":\"0001-01-01T00:00:00Z\","
	"\"Health\":{\"Status\":\"unhealthy\",\"FailingStreak\":3,\"Log\":["
	"{\"ExitCode\":0,\"Output\":\"ok\"},"
	"{\"ExitCode\":1,\"Output\":\"probe: 500\\n  {\\\"status\\\":\\\"error\\\"}\\n\"},"
	"{\"ExitCode\":1,\"Output\":\"\"}]}}}";

static void test_state_parse(void **state)
{
	struct container_state s;
	struct st_error err = { 0 };
	json_t *in = json_loads(inspect_running, 0, NULL), *out;
	char log[256];

	(void)state;
	assert_non_null(in);
	assert_int_equal(container_state_parse(in, &s, &err), 0);
	assert_string_equal(s.name, "spilttea-backend");
	assert_string_equal(s.status, "running");
	assert_true(s.running);
	assert_true(s.has_healthcheck);
	assert_string_equal(s.health, "unhealthy");
	assert_int_equal(s.failing_streak, 3);
	assert_int_equal(s.restart_count, 2);
	assert_int_equal(s.pid, 4242);
	assert_string_equal(s.image, "spilttea-sandbox/backend:latest");
	assert_string_equal(s.image_id, "sha256:feed");
	assert_string_equal(s.finished_at, "");
	assert_true(s.started > 1795000000.0);

	container_health_log(in, 2, log, sizeof(log));
	assert_string_equal(log, "exit 1: probe: 500 {\"status\":\"error\"}; exit 1: (no output)");
	container_health_log(in, 2, log, 22);
	assert_string_equal(log, "exit 1: (no output)");  /* the newest that fit, none cut */
	container_health_log(in, 1, log, 12);
	assert_string_equal(log, "");

	out = container_state_json(&s, s.started + 90);
	assert_int_equal(json_integer_value(json_object_get(out, "restart_count")), 2);
	assert_true(json_real_value(json_object_get(out, "uptime_s")) == 90.0);
	assert_string_equal(json_string_value(json_object_get(out, "health")), "unhealthy");
	assert_true(json_is_true(json_object_get(out, "exists")));
	json_decref(out);
	json_decref(in);

	/* Exited, OOM, no healthcheck (disabled with NONE). */
	in = json_loads("{\"Name\":\"/w\",\"Config\":{\"Healthcheck\":{\"Test\":[\"NONE\"]}},"
			"\"State\":{\"Status\":\"exited\",\"Running\":false,\"OOMKilled\":true,"
			"\"ExitCode\":137,\"StartedAt\":\"2026-11-27T22:00:00Z\","
			"\"FinishedAt\":\"2026-11-27T22:00:05Z\"}}", 0, NULL);
	assert_int_equal(container_state_parse(in, &s, &err), 0);
	assert_false(s.running);
	assert_true(s.oom_killed);
	assert_int_equal(s.exit_code, 137);
	assert_false(s.has_healthcheck);
	assert_string_equal(s.health, "none");
	assert_true(s.finished - s.started == 5.0);
	out = container_state_json(&s, s.finished + 100);
	assert_true(json_real_value(json_object_get(out, "uptime_s")) == 0.0);
	json_decref(out);
	json_decref(in);

	/* A healthcheck configured but not yet reported: starting. */
	in = json_loads("{\"Config\":{\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"]}},"
			"\"State\":{\"Status\":\"running\",\"Running\":true}}", 0, NULL);
	assert_int_equal(container_state_parse(in, &s, &err), 0);
	assert_string_equal(s.health, "starting");
	json_decref(in);

	in = json_loads("{\"Name\":\"/x\"}", 0, NULL);
	assert_int_equal(container_state_parse(in, &s, &err), ST_EPROTO);
	json_decref(in);
}

static void test_health_response(void **state)
{
	(void)state;
	assert_true(container_health_response_ok(200, "{\"status\":\"ok\",\"db\":true}", 27));
	assert_true(container_health_response_ok(200, "{\"status\":\"OK\"}", 15));
	assert_false(container_health_response_ok(200, "{\"status\":\"error\"}", 18));
	assert_false(container_health_response_ok(200, "{\"status\":1}", 12));
	assert_true(container_health_response_ok(200, "{\"uptime\":5}", 12));
	assert_true(container_health_response_ok(200, "healthy", 7));
	assert_true(container_health_response_ok(200, "", 0));
	assert_false(container_health_response_ok(204, "", 0));
	assert_false(container_health_response_ok(503, "{\"status\":\"ok\"}", 15));
	assert_string_equal(container_ready_method_name(CONTAINER_READY_HTTP), "http");
	assert_string_equal(container_ready_method_name(CONTAINER_READY_DOCKER_HEALTH), "docker-health");
}

/* ---- environment ---- */

static void test_env_secret_names(void **state)
{
	(void)state;
	assert_true(redact_name_is_secret("JWT_SECRET"));
	assert_true(redact_name_is_secret("POSTGRES_PASSWORD"));
	assert_true(redact_name_is_secret("SMTP_PASS"));
	assert_true(redact_name_is_secret("AWS_SECRET_ACCESS_KEY"));
	assert_true(redact_name_is_secret("AWS_ACCESS_KEY_ID"));
	assert_true(redact_name_is_secret("GITHUB_TOKEN"));
	assert_true(redact_name_is_secret("api_key"));
	assert_true(redact_name_is_secret("GOOGLE_APPLICATION_CREDENTIALS"));
	assert_false(redact_name_is_secret("SMTP_HOST"));
	assert_false(redact_name_is_secret("DATABASE_URL"));
	assert_false(redact_name_is_secret("PORT"));
}

static void test_redact_url(void **state)
{
	char *s;

	(void)state;
	s = actions_redact_url_password("postgresql://spilttea:hunter2@127.0.0.1:5432/spilttea");
	assert_string_equal(s, "postgresql://spilttea:***@127.0.0.1:5432/spilttea");
	free(s);
	s = actions_redact_url_password("redis://:p@ss@w0rd@redis:6379/0");
	assert_string_equal(s, "redis://:***@redis:6379/0");
	free(s);
	s = actions_redact_url_password("http://user@host/path?a=b:c@d");
	assert_string_equal(s, "http://user@host/path?a=b:c@d");
	free(s);
	s = actions_redact_url_password("https://example.com:8443/x");
	assert_string_equal(s, "https://example.com:8443/x");
	free(s);
	s = actions_redact_url_password("not a url: a@b");
	assert_string_equal(s, "not a url: a@b");
	free(s);
}

static void test_env_summary(void **state)
{
	json_t *env = json_pack("[s,s,s,s,s,s,s,s,s]", "PORT=3001",
				"DATABASE_URL=postgresql://app:s3cret@db:5432/app", "JWT_SECRET=abcdef",
				"SMTP_HOST=smtp.example.com", "SMTP_PASS=pw", "EMPTY=", "PORT=3002",
				"garbage", "API_TOKEN=");
	/* API_TOKEN is shown as *** but set to "": it is missing all the same. */
	json_t *req = json_pack("[s,s,s,s,s]", "PORT", "SMTP_PASS", "EMPTY", "AWS_REGION", "API_TOKEN");
	json_t *out = actions_env_summary(env, req);
	char *dump;

	(void)state;
	assert_non_null(out);
	dump = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
	assert_null(strstr(dump, "s3cret"));
	assert_null(strstr(dump, "abcdef"));
	assert_null(strstr(dump, "\"pw\""));
	assert_string_equal(dump,
		"{\"count\":7,\"hidden\":[\"JWT_SECRET\",\"SMTP_PASS\",\"API_TOKEN\"],"
		"\"missing\":[\"EMPTY\",\"AWS_REGION\",\"API_TOKEN\"],\"missing_count\":3,"
		"\"missing_text\":\"EMPTY, AWS_REGION, API_TOKEN\","
		"\"names\":[\"API_TOKEN\",\"DATABASE_URL\",\"EMPTY\",\"JWT_SECRET\",\"PORT\",\"SMTP_HOST\","
		"\"SMTP_PASS\"],"
		"\"vars\":{\"API_TOKEN\":\"***\",\"DATABASE_URL\":\"postgresql://app:***@db:5432/app\","
		"\"EMPTY\":\"\",\"JWT_SECRET\":\"***\",\"PORT\":\"3002\",\"SMTP_HOST\":\"smtp.example.com\","
		"\"SMTP_PASS\":\"***\"}}");
	free(dump);
	json_decref(out);
	out = actions_env_summary(env, NULL);
	assert_null(json_object_get(out, "missing"));
	json_decref(out);
	json_decref(env);
	json_decref(req);
}

static void test_url_origin(void **state)
{
	char o[64];

	(void)state;
	assert_int_equal(actions_url_origin("HTTP://Api.Example.COM:80/x?y#z", o, sizeof(o)), 0);
	assert_string_equal(o, "http://api.example.com");
	assert_int_equal(actions_url_origin("https://a.b:443", o, sizeof(o)), 0);
	assert_string_equal(o, "https://a.b");
	assert_int_equal(actions_url_origin("https://a.b:8443/", o, sizeof(o)), 0);
	assert_string_equal(o, "https://a.b:8443");
	assert_int_equal(actions_url_origin("http://127.0.0.1:3001", o, sizeof(o)), 0);
	assert_string_equal(o, "http://127.0.0.1:3001");
	assert_int_equal(actions_url_origin("http://u:p@w@host:03001/p", o, sizeof(o)), 0);
	assert_string_equal(o, "http://host:3001");
	assert_int_equal(actions_url_origin("http://[::1]:3000/", o, sizeof(o)), 0);
	assert_string_equal(o, "http://[::1]:3000");
	/* localhost and 127.0.0.1 are different origins to a browser. */
	assert_int_equal(actions_url_origin("http://localhost:3001", o, sizeof(o)), 0);
	assert_string_equal(o, "http://localhost:3001");
	assert_int_equal(actions_url_origin("ftp://a.b", o, sizeof(o)), -1);
	assert_int_equal(actions_url_origin("localhost:3001", o, sizeof(o)), -1);
	assert_int_equal(actions_url_origin("http://", o, sizeof(o)), -1);
	assert_int_equal(actions_url_origin("http://a:", o, sizeof(o)), -1);
	assert_int_equal(actions_url_origin("http://a:12x", o, sizeof(o)), -1);
	assert_int_equal(actions_url_origin("http://[::1", o, sizeof(o)), -1);
	assert_int_equal(actions_url_origin("http://a-very-long-host-name.example", o, 16), -1);
	assert_int_equal(actions_url_origin(NULL, o, sizeof(o)), -1);
}

static void test_env_extras(void **state)
{
	json_t *env = json_pack("[s,s,s,s]", "AWS_REGION=eu-west-1", "AWS_SECRET_ACCESS_KEY=xyz",
				"FRONTEND_URL=http://LOCALHOST:3000/", "VITE_API_URL=http://localhost:3002");
	json_t *sum = actions_env_summary(env, NULL);
	json_t *origins = json_pack("{s:s,s:s,s:s}", "FRONTEND_URL", "http://localhost:3000/app",
				    "VITE_API_URL", "http://localhost:3001", "MISSING_URL",
				    "https://x.example");
	struct st_error err = { 0 };
	json_t *o;

	(void)state;
	assert_int_equal(actions_env_extras(NULL, sum, origins, "AWS_", &err), 0);
	assert_string_equal(json_string_value(json_object_get(sum, "matched_text")),
			    "AWS_REGION, AWS_SECRET_ACCESS_KEY");
	assert_int_equal(json_integer_value(json_object_get(sum, "origin_mismatches")), 2);
	o = json_object_get(json_object_get(sum, "origins"), "FRONTEND_URL");
	assert_true(json_is_true(json_object_get(o, "same")));
	assert_string_equal(json_string_value(json_object_get(o, "origin")), "http://localhost:3000");
	o = json_object_get(json_object_get(sum, "origins"), "VITE_API_URL");
	assert_true(json_is_false(json_object_get(o, "same")));
	assert_string_equal(json_string_value(json_object_get(o, "expected")), "http://localhost:3001");
	o = json_object_get(json_object_get(sum, "origins"), "MISSING_URL");
	assert_true(json_is_false(json_object_get(o, "same")));
	assert_true(json_is_null(json_object_get(o, "value")));
	json_decref(origins);

	/* A service name needs a configuration to look its URL up. */
	origins = json_pack("{s:s}", "FRONTEND_URL", "frontend");
	assert_int_equal(actions_env_extras(NULL, sum, origins, NULL, &err), ST_ECONFIG);
	assert_string_equal(err.message, "service 'frontend' has neither url nor health_url");
	json_decref(origins);
	origins = json_pack("{s:i}", "FRONTEND_URL", 1);
	assert_int_equal(actions_env_extras(NULL, sum, origins, NULL, &err), ST_EUSAGE);
	json_decref(origins);
	json_decref(sum);
	json_decref(env);
}

/* Behind a blue/green proxy the proxy's origin is the address to use; the
 * service's own port counts only while the proxy routes to it. */
static void check_origin(const struct engine_call *call, const char *value, int same, int inactive)
{
	char line[300];
	json_t *env, *sum, *origins, *o;
	struct st_error err = { 0 };

	snprintf(line, sizeof(line), "VITE_API_URL=%s", value);
	env = json_pack("[s]", line);
	sum = actions_env_summary(env, NULL);
	origins = json_pack("{s:s}", "VITE_API_URL", "backend");
	assert_int_equal(actions_env_extras(call, sum, origins, NULL, &err), 0);
	o = json_object_get(json_object_get(sum, "origins"), "VITE_API_URL");
	assert_int_equal(json_is_true(json_object_get(o, "same")), same);
	assert_int_equal(json_is_true(json_object_get(o, "inactive_port")), inactive);
	assert_int_equal(json_integer_value(json_object_get(sum, "origin_mismatches")), !same);
	assert_string_equal(json_string_value(json_object_get(o, "expected")), "http://127.0.0.1:8080");
	assert_string_equal(json_string_value(json_object_get(o, "expected_from")), "proxy");
	json_decref(origins);
	json_decref(sum);
	json_decref(env);
}

static void test_env_extras_proxy(void **state)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	struct engine_call call;
	char *dir = tu_mkdtemp(), path[600], up[600], conf[2048];

	(void)state;
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	snprintf(up, sizeof(up), "%s/upstream.conf", dir);
	snprintf(conf, sizeof(conf),
		 "state_dir: /tmp\nservices:\n"
		 "  backend: { container: b, health_url: 'http://127.0.0.1:4001/health' }\n"
		 "proxy:\n  container: px\n  url: http://127.0.0.1:8080\n  upstream_file: %s\n"
		 "  upstream_template: 'upstream be { server {host}:{port}; }'\n"
		 "  blue_port: 4001\n  green_port: 4002\n"
		 "postgres: { host: h, user: u, database: d }\nredis: { host: h }\n", up);
	tu_write(path, conf);
	assert_int_equal(config_load_file(path, "--config", &cfg, &err), 0);
	memset(&call, 0, sizeof(call));
	call.config = cfg;

	/* No upstream file yet: the proxy and the configured port both count. */
	check_origin(&call, "http://127.0.0.1:8080/api", 1, 0);
	check_origin(&call, "http://127.0.0.1:4001", 1, 0);
	check_origin(&call, "http://localhost:8080", 0, 0);

	/* The proxy routes to blue (4001), the configured port. */
	tu_write(up, "upstream be { server 127.0.0.1:4001; }\n");
	check_origin(&call, "http://127.0.0.1:8080", 1, 0);
	check_origin(&call, "http://127.0.0.1:4001/", 1, 0);
	check_origin(&call, "http://127.0.0.1:4002", 0, 0);

	/* A blue/green deploy moved it to green: the configured blue port is
	 * stale, the proxy still right. */
	tu_write(up, "upstream be { server 127.0.0.1:4002; }\n");
	check_origin(&call, "http://127.0.0.1:8080", 1, 0);
	check_origin(&call, "http://127.0.0.1:4001", 0, 1);
	check_origin(&call, "http://127.0.0.1:4002", 0, 0);
	config_free(cfg);
	cfg = NULL;

	/* health_url through the proxy (the sandbox's): only the proxy counts. */
	snprintf(conf, sizeof(conf),
		 "state_dir: /tmp\nservices:\n"
		 "  backend: { container: b, health_url: 'http://127.0.0.1:8080/health' }\n"
		 "proxy:\n  container: px\n  url: http://127.0.0.1:8080\n  upstream_file: %s\n"
		 "  upstream_template: 'upstream be { server {host}:{port}; }'\n"
		 "  blue_port: 4001\n  green_port: 4002\n"
		 "postgres: { host: h, user: u, database: d }\nredis: { host: h }\n", up);
	tu_write(path, conf);
	assert_int_equal(config_load_file(path, "--config", &cfg, &err), 0);
	call.config = cfg;
	check_origin(&call, "http://127.0.0.1:8080", 1, 0);
	check_origin(&call, "http://127.0.0.1:4001", 0, 0);
	check_origin(&call, "http://127.0.0.1:4002", 0, 0);
	config_free(cfg);
	tu_rmtree(dir);
	free(dir);
}

/* ---- text shaping ---- */

static void test_text_and_tail(void **state)
{
	struct actions_tail t;
	struct st_error err = { 0 };
	json_t *s;
	char big[100];

	(void)state;
	s = actions_text("ok \xc3\xa9 \xff\xfe end\0x", 14);
	assert_string_equal(json_string_value(s), "ok \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end\xef\xbf\xbdx");
	json_decref(s);
	s = actions_text("cut \xe2\x82", 6);  /* a sequence cut by a tail */
	assert_string_equal(json_string_value(s), "cut \xef\xbf\xbd\xef\xbf\xbd");
	json_decref(s);

	assert_int_equal(actions_tail_init(&t, 8, &err), 0);
	actions_tail_add(&t, "abc", 3);
	actions_tail_add(&t, "defgh", 5);
	assert_int_equal(t.len, 8);
	assert_memory_equal(t.buf, "abcdefgh", 8);
	actions_tail_add(&t, "ij", 2);
	assert_memory_equal(t.buf, "cdefghij", 8);
	memset(big, 'z', sizeof(big));
	big[99] = '!';
	actions_tail_add(&t, big, sizeof(big));
	assert_int_equal(t.len, 8);
	assert_memory_equal(t.buf, "zzzzzzz!", 8);
	assert_int_equal(t.total, 110);
	actions_tail_release(&t);
}

static void test_exit_matches(void **state)
{
	struct st_error err = { 0 };
	json_t *v;

	(void)state;
	assert_int_equal(actions_exit_matches(NULL, 0, &err), 1);
	assert_int_equal(actions_exit_matches(NULL, 1, &err), 0);
	v = json_integer(3);
	assert_int_equal(actions_exit_matches(v, 3, &err), 1);
	assert_int_equal(actions_exit_matches(v, 0, &err), 0);
	json_decref(v);
	v = json_pack("[i,i]", 0, 2);
	assert_int_equal(actions_exit_matches(v, 2, &err), 1);
	assert_int_equal(actions_exit_matches(v, 1, &err), 0);
	json_decref(v);
	v = json_string("any");
	assert_int_equal(actions_exit_matches(v, 255, &err), 1);
	json_decref(v);
	v = json_string("1");
	assert_int_equal(actions_exit_matches(v, 1, &err), 1);
	json_decref(v);
	v = json_string("sometimes");
	assert_int_equal(actions_exit_matches(v, 0, &err), ST_EUSAGE);
	json_decref(v);
	v = json_pack("[s]", "x");
	assert_int_equal(actions_exit_matches(v, 0, &err), ST_EUSAGE);
	json_decref(v);
}

/* ---- postgres shaping ---- */

static void test_pg_params(void **state)
{
	struct st_error err = { 0 };
	json_t *p = json_pack("[s,i,b,n,f,{s:i}]", "a'b", 42, 1, 1.5, "k", 1);
	char **out = NULL;
	int n = 0;

	(void)state;
	assert_int_equal(actions_pg_params(p, &out, &n, &err), 0);
	assert_int_equal(n, 6);
	assert_string_equal(out[0], "a'b");
	assert_string_equal(out[1], "42");
	assert_string_equal(out[2], "true");
	assert_null(out[3]);
	assert_string_equal(out[4], "1.5");
	assert_string_equal(out[5], "{\"k\":1}");
	actions_pg_params_free(out, n);
	json_decref(p);
	assert_int_equal(actions_pg_params(NULL, &out, &n, &err), 0);
	assert_int_equal(n, 0);
	p = json_string("x");
	assert_int_equal(actions_pg_params(p, &out, &n, &err), ST_EUSAGE);
	json_decref(p);
}

/* jansson allocator that fails once alloc_budget allocations are spent
 * (-1: never) and counts what is still allocated. */
static long alloc_budget = -1, allocs_live;

static void *counting_malloc(size_t n)
{
	void *p;

	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	p = malloc(n);
	if (p)
		allocs_live++;
	return p;
}

static void counting_free(void *p)
{
	if (p)
		allocs_live--;
	free(p);
}

static void test_pg_rows(void **state)
{
	PGresAttDesc cols[6];
	static const char *const names[] = { "id", "ratio", "active", "meta", "passwordHash", "title" };
	static const Oid types[] = { 20, 701, 16, 3802, 25, 25 };
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	json_t *out;
	char *dump;
	int i, leaked_at = -1;

	(void)state;
	memset(cols, 0, sizeof(cols));
	for (i = 0; i < 6; i++) {
		cols[i].name = (char *)names[i];
		cols[i].typid = types[i];
		cols[i].typlen = -1;
	}
	assert_int_equal(PQsetResultAttrs(res, 6, cols), 1);
	assert_int_equal(PQsetvalue(res, 0, 0, "9007199254740993", 16), 1);
	assert_int_equal(PQsetvalue(res, 0, 1, "0.25", 4), 1);
	assert_int_equal(PQsetvalue(res, 0, 2, "t", 1), 1);
	assert_int_equal(PQsetvalue(res, 0, 3, "{\"a\":[1]}", 9), 1);
	assert_int_equal(PQsetvalue(res, 0, 4, "$2b$10$hash", 11), 1);
	assert_int_equal(PQsetvalue(res, 0, 5, "caf\xc3\xa9", 5), 1);
	assert_int_equal(PQsetvalue(res, 1, 0, "2", 1), 1);
	assert_int_equal(PQsetvalue(res, 1, 1, NULL, -1), 1);
	assert_int_equal(PQsetvalue(res, 1, 2, "f", 1), 1);
	assert_int_equal(PQsetvalue(res, 1, 3, NULL, -1), 1);
	assert_int_equal(PQsetvalue(res, 1, 4, NULL, -1), 1);
	assert_int_equal(PQsetvalue(res, 1, 5, "x", 1), 1);

	out = actions_pg_rows(res, 10);
	dump = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(dump,
		"{\"columns\":[\"id\",\"ratio\",\"active\",\"meta\",\"passwordHash\",\"title\"],"
		"\"count\":2,\"rows\":["
		"{\"active\":true,\"id\":9007199254740993,\"meta\":{\"a\":[1]},\"passwordHash\":\"***\","
		"\"ratio\":0.25,\"title\":\"caf\xc3\xa9\"},"
		"{\"active\":false,\"id\":2,\"meta\":null,\"passwordHash\":null,\"ratio\":null,"
		"\"title\":\"x\"}],\"truncated\":false}");
	free(dump);
	json_decref(out);
	out = actions_pg_rows(res, 1);
	assert_int_equal(json_array_size(json_object_get(out, "rows")), 1);
	assert_int_equal(json_integer_value(json_object_get(out, "count")), 2);
	assert_true(json_is_true(json_object_get(out, "truncated")));
	json_decref(out);

	/* Out of memory at every allocation in turn: NULL or a whole result,
	 * and nothing left allocated (review 12: a half-built row leaked). */
	json_set_alloc_funcs(counting_malloc, counting_free);
	for (i = 0; i < 200 && leaked_at < 0; i++) {
		long before = allocs_live;

		alloc_budget = i;
		out = actions_pg_rows(res, 10);
		json_decref(out);
		if (allocs_live != before)
			leaked_at = i;
	}
	alloc_budget = -1;
	json_set_alloc_funcs(malloc, free);
	PQclear(res);
	if (leaked_at >= 0)
		fail_msg("allocations leaked when allocation %d failed", leaked_at);
}

/* ---- envfile.read ---- */

static void test_envfile_read(void **state)
{
	struct engine_registry *reg = NULL;
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	struct engine_call call;
	const struct engine_action *a;
	char *dir = tu_mkdtemp(), path[600], env[600], *dump;
	json_t *args, *res = NULL;

	(void)state;
	assert_int_equal(engine_registry_new(1, &reg, &err), 0);
	a = find(reg, "envfile.read");
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	snprintf(env, sizeof(env), "%s/backend.env", dir);
	tu_write(path, "state_dir: /tmp\nservices:\n  frontend: { container: f, url: 'http://127.0.0.1:3000' }\n"
		       "postgres: { host: h, user: u, database: d }\nredis: { host: h }\n");
	tu_write(env, "# backend/.env\nexport DATABASE_URL=postgresql://app:s3cret@db/app\n"
		      "JWT_SECRET='topsecret'\nFRONTEND_URL=http://localhost:3000 # wrong host\n"
		      "SMTP_PASSWORD=\nAWS_REGION=eu-west-1\n");
	chmod(env, 0640);
	assert_int_equal(config_load_file(path, "--config", &cfg, &err), 0);
	memset(&call, 0, sizeof(call));
	call.config = cfg;

	args = json_pack("{s:s,s:[s,s,s],s:s,s:{s:s}}", "path", env, "require", "JWT_SECRET",
			 "SMTP_PASSWORD", "REDIS_URL", "names_like", "AWS_", "origins", "FRONTEND_URL",
			 "frontend");
	assert_int_equal(a->run(&call, args, &res, &err), 0);
	dump = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
	assert_null(strstr(dump, "s3cret"));
	assert_null(strstr(dump, "topsecret"));
	free(dump);
	assert_true(json_is_true(json_object_get(res, "exists")));
	assert_string_equal(json_string_value(json_object_get(res, "mode")), "0640");
	assert_string_equal(json_string_value(json_object_get(res, "missing_text")), "SMTP_PASSWORD, REDIS_URL");
	assert_string_equal(json_string_value(json_object_get(res, "matched_text")), "AWS_REGION");
	assert_int_equal(json_integer_value(json_object_get(res, "origin_mismatches")), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(res, "origins"),
									      "FRONTEND_URL"), "expected")),
			    "http://127.0.0.1:3000");
	json_decref(res);
	json_decref(args);

	/* A file that is not there is a result: everything required is missing. */
	args = json_pack("{s:s+,s:[s]}", "path", dir, "/nope.env", "require", "JWT_SECRET");
	assert_int_equal(a->run(&call, args, &res, &err), 0);
	assert_true(json_is_false(json_object_get(res, "exists")));
	assert_int_equal(json_integer_value(json_object_get(res, "missing_count")), 1);
	json_decref(res);
	json_decref(args);

	config_free(cfg);
	engine_registry_free(reg);
	tu_rmtree(dir);
	free(dir);
}

/* ---- container / service resolution ---- */

static void test_target(void **state)
{
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	struct engine_call call;
	char *dir = tu_mkdtemp(), path[600];
	const char *c, *s;
	json_t *a;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "state_dir: %s\nservices:\n  backend: { container: sb-backend, "
		"health_url: 'http://127.0.0.1:1/health' }\n  redis: { container: sb-redis }\n"
		"postgres: { host: 127.0.0.1, user: u, database: d }\nredis: { host: 127.0.0.1 }\n", dir);
	fclose(f);
	assert_int_equal(config_load_file(path, "--config", &cfg, &err), 0);
	memset(&call, 0, sizeof(call));
	call.config = cfg;

	a = json_pack("{s:s}", "service", "backend");
	assert_int_equal(actions_target(&call, a, &c, &s, &err), 0);
	assert_string_equal(c, "sb-backend");
	assert_string_equal(s, "backend");
	assert_string_equal(actions_service_health_url(&call, s), "http://127.0.0.1:1/health");
	json_decref(a);
	a = json_pack("{s:s}", "container", "other");
	assert_int_equal(actions_target(&call, a, &c, &s, &err), 0);
	assert_string_equal(c, "other");
	assert_null(s);
	json_decref(a);
	a = json_pack("{s:s}", "service", "redis");
	assert_int_equal(actions_target(&call, a, &c, &s, &err), 0);
	assert_null(actions_service_health_url(&call, s));
	json_decref(a);
	a = json_pack("{s:s}", "service", "nope");
	assert_int_equal(actions_target(&call, a, &c, &s, &err), ST_ECONFIG);
	assert_string_equal(err.message, "service 'nope' is not configured");
	json_decref(a);
	a = json_pack("{s:s,s:s}", "service", "backend", "container", "x");
	assert_int_equal(actions_target(&call, a, &c, &s, &err), ST_EUSAGE);
	json_decref(a);
	a = json_object();
	assert_int_equal(actions_target(&call, a, &c, &s, &err), ST_EUSAGE);
	assert_string_equal(err.message, "the action needs 'container' or 'service'");
	json_decref(a);
	/* No services in the run: a clear error, not a crash. */
	{
		struct docker_client *d;

		assert_int_equal(actions_docker_client(&call, &d, &err), ST_EUSAGE);
		assert_string_equal(err.message, "no docker client: this run was started without services");
	}
	config_free(cfg);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_args_prepare),
		cmocka_unit_test(test_sql_literal),
		cmocka_unit_test(test_state_parse),
		cmocka_unit_test(test_health_response),
		cmocka_unit_test(test_env_secret_names),
		cmocka_unit_test(test_redact_url),
		cmocka_unit_test(test_env_summary),
		cmocka_unit_test(test_url_origin),
		cmocka_unit_test(test_env_extras_proxy),
		cmocka_unit_test(test_env_extras),
		cmocka_unit_test(test_envfile_read),
		cmocka_unit_test(test_text_and_tail),
		cmocka_unit_test(test_exit_matches),
		cmocka_unit_test(test_pg_params),
		cmocka_unit_test(test_out_of_range_args),
		cmocka_unit_test(test_pg_query_refuses_acting_functions),
		cmocka_unit_test(test_pg_rows),
		cmocka_unit_test(test_target),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
