/*
 * actions_docker.c - docker.* actions: container state, start/stop/restart,
 * waiting until ready, exec, log search, environment names.
 *
 * Every action names its container with `container:` or `service:`
 * (ACTIONS_TARGET_ARGS). Flags: stop and restart interrupt service, so they
 * are DESTRUCTIVE (a step using them needs `confirm`); start brings service
 * back and exec runs whatever it is given, so neither is read-only nor
 * destructive; inspect, wait_ready, logs_grep and env change nothing and may
 * serve as check or verify.
 */
#include "actions.h"
#include "actions_util.h"
#include "container.h"
#include "text.h"
#include "timeutil.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds "service" to a result when the step named one. */
static int with_service(json_t *result, const char *service, struct st_error *err)
{
	if (!result)
		return actions_oom(err);
	if (service && json_object_set_new(result, "service", json_string(service)))
		return actions_oom(err);
	return 0;
}

static int act_inspect(struct engine_call *call, const json_t *args, json_t **result,
		       struct st_error *err)
{
	struct docker_client *d;
	struct container_state st;
	const char *name, *service;
	int rc;

	if ((rc = actions_target(call, args, &name, &service, err)) != 0 ||
	    (rc = actions_docker_client(call, &d, err)) != 0 ||
	    (rc = container_state(d, name, DOCKER_TIMEOUT_DEFAULT, &st, err)) != 0)
		return rc;
	if (!st.exists)
		snprintf(st.name, sizeof(st.name), "%s", name);
	*result = container_state_json(&st, time_wall());
	return with_service(*result, service, err);
}

/* start / stop / restart: the state before, the action, the state after
 * (state_unknown: true, with the error, when it could not be read back). */
enum lifecycle { LC_START, LC_STOP, LC_RESTART };

static int lifecycle(struct engine_call *call, const json_t *args, enum lifecycle what,
		     json_t **result, struct st_error *err)
{
	struct docker_client *d;
	struct container_state before, after;
	const char *name, *service;
	int grace = (int)(actions_arg_num(args, "timeout", 10) + 0.5);
	int rc;

	if ((rc = actions_target(call, args, &name, &service, err)) != 0 ||
	    (rc = actions_docker_client(call, &d, err)) != 0 ||
	    (rc = container_state(d, name, DOCKER_TIMEOUT_DEFAULT, &before, err)) != 0)
		return rc;
	if (!before.exists) {
		st_error_set(err, ST_ENOTFOUND, "container '%s' does not exist", name);
		return st_error_hint(err, "'spilttea-ops health' lists the containers; "
				     "is services.%s.container right?", service ? service : "NAME");
	}
	if (what == LC_START)
		rc = docker_container_start(d, name, DOCKER_TIMEOUT_DEFAULT, err);
	else if (what == LC_STOP)
		rc = docker_container_stop(d, name, grace, DOCKER_TIMEOUT_DEFAULT, err);
	else
		rc = docker_container_restart(d, name, grace, DOCKER_TIMEOUT_DEFAULT, err);
	if (rc)
		return rc;
	if (container_state(d, name, DOCKER_TIMEOUT_DEFAULT, &after, err) != 0) {
		/* The state changed; only reading it back failed. Failing the step
		 * would skip its undo and report a stopped service as running:
		 * succeed, and say what is not known. */
		*result = json_pack("{s:s,s:b,s:s}", "container", name, "state_unknown", 1, "error",
				    err->message);
		st_error_clear(err);
	} else {
		*result = container_state_json(&after, time_wall());
		if (*result && json_object_set_new(*result, "state_unknown", json_false())) {
			json_decref(*result);
			*result = NULL;
		}
	}
	if (*result && (json_object_set_new(*result, "was_running", json_boolean(before.running)) ||
			json_object_set_new(*result, "previous_started_at",
					    json_string(before.started_at)))) {
		json_decref(*result);
		*result = NULL;
	}
	return with_service(*result, service, err);
}

static int act_start(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err)
{
	return lifecycle(call, args, LC_START, result, err);
}

static int act_stop(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	return lifecycle(call, args, LC_STOP, result, err);
}

static int act_restart(struct engine_call *call, const json_t *args, json_t **result,
		       struct st_error *err)
{
	return lifecycle(call, args, LC_RESTART, result, err);
}

static int act_wait_ready(struct engine_call *call, const json_t *args, json_t **result,
			  struct st_error *err)
{
	struct docker_client *d;
	struct container_wait_report rep;
	const char *name, *service, *url = actions_arg_str(args, "health_url");
	int rc;

	if ((rc = actions_target(call, args, &name, &service, err)) != 0 ||
	    (rc = actions_docker_client(call, &d, err)) != 0)
		return rc;
	if (!url)
		url = actions_service_health_url(call, service);
	rc = container_wait_ready_cancel(d, name, url && *url ? url : NULL,
					 actions_arg_num(args, "timeout", 60),
					 actions_arg_num(args, "interval", 1), call->cancel, &rep, err);
	if (rc)
		return rc;
	*result = json_pack("{s:s,s:b,s:s,s:f,s:i,s:s,s:s,s:i,s:s,s:s}", "container", name, "ready", 1,
			    "method", container_ready_method_name(rep.method), "waited_s", rep.waited_s,
			    "checks", rep.checks, "status", rep.state.status, "health", rep.state.health,
			    "restart_count", rep.state.restart_count, "started_at", rep.state.started_at,
			    "image_id", rep.state.image_id);
	if (*result && rep.method == CONTAINER_READY_HTTP &&
	    (json_object_set_new(*result, "url", json_string(rep.url)) ||
	     json_object_set_new(*result, "http_status", json_integer(rep.http_status)))) {
		json_decref(*result);
		*result = NULL;
	}
	return with_service(*result, service, err);
}

/* ---- exec ---- */

/* Largest max_output: the kept output lives in memory and in the result. */
#define EXEC_OUTPUT_MAX (16 * 1024 * 1024)

struct exec_ctx {
	struct actions_tail out, err;
	volatile sig_atomic_t *cancel;
};

static int exec_stdout(void *ud, const char *data, size_t len)
{
	struct exec_ctx *x = ud;

	actions_tail_add(&x->out, data, len);
	return x->cancel && *x->cancel;
}

static int exec_stderr(void *ud, const char *data, size_t len)
{
	struct exec_ctx *x = ud;

	actions_tail_add(&x->err, data, len);
	return x->cancel && *x->cancel;
}

/* The last non-empty line of a tail, for error messages: one clean line
 * (no control characters, valid UTF-8), its end kept when too long. */
static void last_line(const struct actions_tail *t, char *buf, size_t size)
{
	size_t end = t->len, start;

	while (end > 0 && (t->buf[end - 1] == '\n' || t->buf[end - 1] == '\r' || t->buf[end - 1] == ' '))
		end--;
	start = end;
	while (start > 0 && t->buf[start - 1] != '\n')
		start--;
	if (end - start >= size)
		start = end - (size - 1);
	text_one_line(buf, size, t->buf + start, end - start, 0);
}

static int act_exec(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	const json_t *command = json_object_get(args, "command");
	const json_t *env = json_object_get(args, "env");
	const json_t *expect = json_object_get(args, "expect_exit");
	long long cap;
	size_t i, n;
	struct exec_ctx x;
	struct docker_exec_opts o;
	struct docker_exec_result res;
	struct docker_client *d;
	const char *name, *service, *k;
	const char **argv = NULL, **envv = NULL;
	char **envs = NULL, tailline[200];
	json_t *v, *jo = NULL, *je = NULL;
	double t0 = time_monotonic();
	int rc, match;

	memset(&x, 0, sizeof(x));
	memset(&res, 0, sizeof(res));
	x.cancel = call->cancel;
	if ((rc = actions_target(call, args, &name, &service, err)) != 0 ||
	    (rc = actions_arg_range(args, "max_output", 64 * 1024, 0, EXEC_OUTPUT_MAX, &cap, err)) != 0)
		return rc;
	if ((rc = actions_exit_matches(expect, 0, err)) < 0)
		return rc;
	n = json_array_size(command);
	if (!n)
		return st_error_set(err, ST_EUSAGE, "command must be a non-empty list, e.g. [sh, -c, 'date']");
	argv = calloc(n + 1, sizeof(*argv));
	envs = calloc(json_object_size(env) + 1, sizeof(*envs));
	envv = calloc(json_object_size(env) + 1, sizeof(*envv));
	if (!argv || !envs || !envv) {
		rc = actions_oom(err);
		goto out;
	}
	json_array_foreach(command, i, v) {
		argv[i] = json_string_value(v);
		if (!argv[i]) {
			rc = st_error_set(err, ST_EUSAGE, "command item %zu is not a string", i + 1);
			goto out;
		}
	}
	i = 0;
	json_object_foreach((json_t *)env, k, v) {
		const char *val = json_string_value(v);

		if (!val) {
			rc = st_error_set(err, ST_EUSAGE, "env '%s' must be a string", k);
			goto out;
		}
		if (asprintf(&envs[i], "%s=%s", k, val) < 0) {
			envs[i] = NULL;
			rc = actions_oom(err);
			goto out;
		}
		envv[i] = envs[i];
		i++;
	}
	if ((rc = actions_tail_init(&x.out, (size_t)cap, err)) != 0 ||
	    (rc = actions_tail_init(&x.err, (size_t)cap, err)) != 0 ||
	    (rc = actions_docker_client(call, &d, err)) != 0)
		goto out;
	memset(&o, 0, sizeof(o));
	o.argv = argv;
	o.env = i ? envv : NULL;
	o.user = actions_arg_str(args, "user");
	o.workdir = actions_arg_str(args, "workdir");
	o.on_stdout = exec_stdout;
	o.on_stderr = exec_stderr;
	o.ud = &x;
	o.timeout = actions_arg_num(args, "timeout", 300);
	rc = docker_exec(d, name, &o, &res, err);
	if (rc) {
		if (rc == ST_EABORTED && x.cancel && *x.cancel)
			st_error_set(err, ST_EABORTED, "interrupted while running '%s' in container '%s' "
				     "(it may still be running there)", argv[0], name);
		goto out;
	}
	match = actions_exit_matches(expect, res.exit_code, err);
	if (match == 0) {
		last_line(x.err.len ? &x.err : &x.out, tailline, sizeof(tailline));
		rc = st_error_set(err, ST_EFAILED, "'%s' in container '%s' exited with %d%s%s", argv[0],
				  name, res.exit_code, tailline[0] ? ": " : "", tailline);
		goto out;
	}
	jo = actions_text(x.out.buf, x.out.len);
	je = actions_text(x.err.buf, x.err.len);
	*result = jo && je ? json_pack("{s:s,s:i,s:O,s:O,s:I,s:I,s:b,s:b,s:f}", "container", name,
				       "exit_code", res.exit_code, "stdout", jo, "stderr", je,
				       "stdout_bytes", (json_int_t)res.stdout_bytes, "stderr_bytes",
				       (json_int_t)res.stderr_bytes, "stdout_truncated",
				       res.stdout_bytes > x.out.len, "stderr_truncated",
				       res.stderr_bytes > x.err.len, "duration_s",
				       time_monotonic() - t0)
			   : NULL;
	rc = with_service(*result, service, err);
out:
	json_decref(jo);
	json_decref(je);
	for (i = 0; envs && envs[i]; i++)
		free(envs[i]);
	free(envs);
	free(envv);
	free(argv);
	actions_tail_release(&x.out);
	actions_tail_release(&x.err);
	return rc;
}

/* ---- logs_grep ---- */

#define GREP_PATTERNS_MAX 32

struct grep {
	regex_t re[GREP_PATTERNS_MAX];
	const char *pattern[GREP_PATTERNS_MAX];
	long long count[GREP_PATTERNS_MAX];
	size_t n;
	long long lines, matches;
	json_t *sample;           /* the newest matching lines */
	size_t sample_max;
	volatile sig_atomic_t *cancel;
};

static int grep_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct grep *g = ud;
	int hit = 0;
	size_t i;

	if (g->cancel && *g->cancel)
		return st_error_set(err, ST_EABORTED, "interrupted");
	g->lines++;
	for (i = 0; i < g->n; i++) {
		if (regexec(&g->re[i], l->text, 0, NULL, 0) == 0) {
			g->count[i]++;
			hit = 1;
		}
	}
	if (!hit)
		return 0;
	g->matches++;
	if (!g->sample_max)
		return 0;
	{
		char line[600];
		size_t len = l->len > 500 ? 500 : l->len;
		int w = snprintf(line, sizeof(line), "%s%s", l->timestamp, l->timestamp[0] ? " " : "");
		json_t *s;

		memcpy(line + w, l->text, len);
		s = actions_text(line, (size_t)w + len);
		if (!s || json_array_append_new(g->sample, s))
			return actions_oom(err);
		if (json_array_size(g->sample) > g->sample_max)
			json_array_remove(g->sample, 0);
	}
	return 0;
}

static int act_logs_grep(struct engine_call *call, const json_t *args, json_t **result,
			 struct st_error *err)
{
	const json_t *patterns = json_object_get(args, "patterns");
	const char *one = actions_arg_str(args, "pattern");
	double since = actions_arg_num(args, "since", 3600);
	struct docker_logs_opts o;
	struct docker_client *d;
	struct grep *g;
	const char *name, *service;
	json_t *counts = NULL, *v;
	long long sample;
	size_t i;
	int rc;

	g = calloc(1, sizeof(*g));
	if (!g)
		return actions_oom(err);
	g->cancel = call->cancel;
	if ((rc = actions_target(call, args, &name, &service, err)) != 0 ||
	    (rc = actions_arg_range(args, "sample", 10, 0, 1000, &sample, err)) != 0)
		goto out;
	g->sample_max = (size_t)sample;
	if (one)
		g->pattern[g->n++] = one;
	json_array_foreach(patterns, i, v) {
		if (g->n >= GREP_PATTERNS_MAX) {
			rc = st_error_set(err, ST_EUSAGE, "at most %d patterns", GREP_PATTERNS_MAX);
			goto out;
		}
		if (!json_is_string(v)) {
			rc = st_error_set(err, ST_EUSAGE, "patterns must be a list of strings");
			goto out;
		}
		g->pattern[g->n++] = json_string_value(v);
	}
	if (!g->n) {
		rc = st_error_set(err, ST_EUSAGE, "logs_grep needs 'pattern' or 'patterns'");
		goto out;
	}
	for (i = 0; i < g->n; i++) {
		int e = regcomp(&g->re[i], g->pattern[i], REG_EXTENDED | REG_ICASE | REG_NOSUB);

		if (e) {
			char why[128];

			regerror(e, &g->re[i], why, sizeof(why));
			g->n = i;
			rc = st_error_set(err, ST_EUSAGE, "bad pattern '%s': %s", g->pattern[i], why);
			goto out;
		}
	}
	g->sample = json_array();
	counts = json_object();
	if (!g->sample || !counts) {
		rc = actions_oom(err);
		goto out;
	}
	if ((rc = actions_docker_client(call, &d, err)) != 0)
		goto out;
	memset(&o, 0, sizeof(o));
	o.since = since > 0 ? time_wall() - since : 0;
	o.timestamps = 1;
	o.max_line = 64 * 1024;
	o.timeout = actions_arg_num(args, "timeout", 60);
	rc = docker_container_logs(d, name, &o, grep_line, g, err);
	if (rc)
		goto out;
	for (i = 0; i < g->n; i++)
		if (json_object_set_new(counts, g->pattern[i], json_integer(g->count[i]))) {
			rc = actions_oom(err);
			goto out;
		}
	*result = json_pack("{s:s,s:f,s:I,s:I,s:O,s:O}", "container", name, "since_s", since, "lines",
			    (json_int_t)g->lines, "matches", (json_int_t)g->matches, "counts", counts,
			    "sample", g->sample);
	rc = with_service(*result, service, err);
out:
	for (i = 0; i < g->n; i++)
		regfree(&g->re[i]);
	json_decref(g->sample);
	json_decref(counts);
	free(g);
	return rc;
}

static int act_env(struct engine_call *call, const json_t *args, json_t **result,
		   struct st_error *err)
{
	struct docker_client *d;
	const char *name, *service;
	json_t *inspect = NULL;
	int rc;

	if ((rc = actions_target(call, args, &name, &service, err)) != 0 ||
	    (rc = actions_docker_client(call, &d, err)) != 0 ||
	    (rc = docker_container_inspect(d, name, DOCKER_TIMEOUT_DEFAULT, &inspect, err)) != 0)
		return rc;
	*result = actions_env_summary(json_object_get(json_object_get(inspect, "Config"), "Env"),
				      json_object_get(args, "require"));
	json_decref(inspect);
	if (*result && json_object_set_new(*result, "container", json_string(name))) {
		json_decref(*result);
		*result = NULL;
	}
	if (*result && (rc = actions_env_extras(call, *result, json_object_get(args, "origins"),
						actions_arg_str(args, "names_like"), err)) != 0) {
		json_decref(*result);
		*result = NULL;
		return rc;
	}
	return with_service(*result, service, err);
}

static const struct engine_arg_spec target_args[] = {
	ACTIONS_TARGET_ARGS,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec stop_args[] = {
	ACTIONS_TARGET_ARGS,
	{ "timeout", ENGINE_ARG_DURATION, 0, "10s", "grace period before SIGKILL" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec wait_args[] = {
	ACTIONS_TARGET_ARGS,
	{ "health_url", ENGINE_ARG_STRING, 0, NULL,
	  "URL to probe when the container has no healthcheck (default: the service's health_url)" },
	{ "timeout", ENGINE_ARG_DURATION, 0, "60s", "longest wait" },
	{ "interval", ENGINE_ARG_DURATION, 0, "1s", "time between checks" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec exec_args[] = {
	ACTIONS_TARGET_ARGS,
	{ "command", ENGINE_ARG_ARRAY, ENGINE_ARG_REQUIRED, NULL, "argv, e.g. [psql, -c, 'select 1']" },
	{ "env", ENGINE_ARG_OBJECT, 0, NULL, "extra environment, NAME: value" },
	{ "user", ENGINE_ARG_STRING, 0, NULL, "user or uid[:gid] to run as" },
	{ "workdir", ENGINE_ARG_STRING, 0, NULL, "working directory" },
	{ "expect_exit", ENGINE_ARG_ANY, 0, NULL, "exit code(s) that count as success (default 0; 'any')" },
	{ "timeout", ENGINE_ARG_DURATION, 0, "5m", "longest run" },
	{ "max_output", ENGINE_ARG_INT, 0, "65536",
	  "bytes kept of the end of stdout and of stderr (at most 16 MiB)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec logs_grep_args[] = {
	ACTIONS_TARGET_ARGS,
	{ "since", ENGINE_ARG_DURATION, 0, "1h", "how far back (0: all)" },
	{ "pattern", ENGINE_ARG_STRING, 0, NULL, "extended regular expression, case-insensitive" },
	{ "patterns", ENGINE_ARG_ARRAY, 0, NULL, "several; a line counts once in matches" },
	{ "sample", ENGINE_ARG_INT, 0, "10", "newest matching lines kept (at most 1000)" },
	{ "timeout", ENGINE_ARG_DURATION, 0, "60s", "longest read" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec env_args[] = {
	ACTIONS_TARGET_ARGS,
	{ "require", ENGINE_ARG_ARRAY, 0, NULL, "names that must be set (result: missing)" },
	{ "names_like", ENGINE_ARG_STRING, 0, NULL, "prefix: names starting with it (result: matched)" },
	{ "origins", ENGINE_ARG_OBJECT, 0, NULL,
	  "NAME: service or URL whose origin NAME's URL must have (result: origins)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action actions_docker[] = {
	{ "docker.inspect", "a container's state (a missing one is exists: false)", target_args,
	  ENGINE_ACTION_READ_ONLY, act_inspect },
	{ "docker.start", "start a container (running already is fine)", target_args, 0, act_start },
	{ "docker.stop", "stop a container (SIGTERM, SIGKILL after timeout)", stop_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_stop },
	{ "docker.restart", "restart a container", stop_args, ENGINE_ACTION_DESTRUCTIVE, act_restart },
	{ "docker.wait_ready", "wait until a container runs and is healthy", wait_args,
	  ENGINE_ACTION_READ_ONLY, act_wait_ready },
	{ "docker.exec", "run a command in a container; fails on an unexpected exit code", exec_args,
	  0, act_exec },
	{ "docker.logs_grep", "count and sample log lines matching patterns", logs_grep_args,
	  ENGINE_ACTION_READ_ONLY, act_logs_grep },
	{ "docker.env", "a container's environment: names, values of non-secret ones", env_args,
	  ENGINE_ACTION_READ_ONLY, act_env },
	{ NULL, NULL, NULL, 0, NULL },
};
