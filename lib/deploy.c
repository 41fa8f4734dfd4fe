/*
 * deploy.c - deploy and rollback as engine runs: planning, the generic
 * steps (preflight, image, record, commit), the recreate strategy, the
 * health gate and the log scan (see deploy.h).
 */
#include "deploy.h"

#include <errno.h>
#include <pwd.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buildctx.h"
#include "config.h"
#include "container.h"
#include "health_eval.h"
#include "lock.h"
#include "runbook.h"
#include "sbuf.h"
#include "services.h"
#include "text.h"
#include "timeutil.h"


const struct deploy_strategy *const deploy_strategies[] = {
	&deploy_bluegreen,
	&deploy_recreate,
	NULL,
};

const struct deploy_strategy *deploy_strategy_find(const char *name)
{
	size_t i;

	for (i = 0; name && deploy_strategies[i]; i++)
		if (!strcmp(deploy_strategies[i]->name, name))
			return deploy_strategies[i];
	return NULL;
}

/* ---- small helpers ----------------------------------------------------------- */

static int oom(struct st_error *err)
{
	return st_error_set(err, ST_ENOMEM, "out of memory");
}

struct docker_client *deploy_docker(struct deploy_run *run)
{
	return run->docker;
}

int deploy_cancelled(const struct deploy_run *run)
{
	return run->cancel && *run->cancel;
}

void deploy_notice(struct deploy_run *run, const char *fmt, ...)
{
	char msg[ST_ERROR_MESSAGE_MAX];
	va_list ap;

	if (!run->opts->ui || !run->opts->ui->notice)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	run->opts->ui->notice(run->opts->ui->ud, msg);
}

/* Sleeps up to seconds; ST_EABORTED when interrupted. */
static int nap(const struct deploy_run *run, double seconds, struct st_error *err)
{
	double end = time_monotonic() + seconds;

	for (;;) {
		double left = end - time_monotonic();

		if (deploy_cancelled(run))
			return st_error_set(err, ST_EABORTED, "interrupted");
		if (left <= 0)
			return 0;
		time_sleep(left < 0.05 ? left : 0.05);
	}
}

static const char *short_id(const char *id, char *buf, size_t size)
{
	if (!id)
		return "-";
	if (!strncmp(id, "sha256:", 7))
		id += 7;
	snprintf(buf, size, "%.12s", id);
	return buf;
}

/* "repo[:tag][@digest]" -> "repo". Caller frees. */
static char *image_repo_of(const char *image)
{
	const char *slash = strrchr(image, '/'), *colon, *at = strchr(image, '@');
	size_t n = at ? (size_t)(at - image) : strlen(image);

	colon = memrchr(image, ':', n);
	if (colon && (!slash || colon > slash))
		n = (size_t)(colon - image);
	return strndup(image, n);
}

/* Epoch seconds of an RFC 3339 time as Docker writes it
 * ("2026-11-27T22:41:31.123456789Z"); 0 when unparseable or zero. */
static double parse_docker_time(const char *s)
{
	struct tm tm;
	const char *p;
	double frac = 0;
	time_t t;

	if (!s || !*s || !strncmp(s, "0001-", 5))
		return 0;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return 0;
	if (*p == '.') {
		double scale = 0.1;

		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	t = timegm(&tm);
	if (*p == '+' || *p == '-') {
		int hh = 0, mm = 0;

		if (sscanf(p + 1, "%d:%d", &hh, &mm) == 2)
			t -= (*p == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
	}
	return (double)t + frac;
}

static const char *user_name(void)
{
	const char *s = getenv("SUDO_USER");
	struct passwd *pw;

	if (s && *s)
		return s;
	pw = getpwuid(getuid());
	return pw ? pw->pw_name : "unknown";
}

static const char *mode_source(enum deploy_mode m)
{
	return m == DEPLOY_MODE_BUILD ? "build" : m == DEPLOY_MODE_NO_BUILD ? "no-build" : "rollback";
}

/* ---- definitions and create bodies -------------------------------------------- */

int deploy_body_set_env(json_t *body, const char *name, const char *value, struct st_error *err)
{
	json_t *env = json_object_get(body, "Env");
	size_t i, nl = strlen(name);
	char *kv = NULL;

	if (!env) {
		if (!(env = json_array()) || json_object_set_new(body, "Env", env))
			return oom(err);
	}
	for (i = json_array_size(env); i > 0; i--) {
		const char *e = json_string_value(json_array_get(env, i - 1));

		if (e && !strncmp(e, name, nl) && (e[nl] == '=' || e[nl] == '\0'))
			json_array_remove(env, i - 1);
	}
	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return oom(err);
	i = (size_t)json_array_append_new(env, json_string(kv));
	free(kv);
	return i ? oom(err) : 0;
}

int deploy_create_body(struct deploy_run *run, struct deploy_target *t, const char *image,
		       json_t **body, struct st_error *err)
{
	(void)run;
	*body = NULL;
	if (t->def)
		return compose_body(t->def, image, body, err);
	if (!t->old_inspect)
		return st_error_set(err, ST_ENOTFOUND, "container '%s' does not exist and service '%s' has "
				    "no compose definition to create it from", t->container, t->service);
	return compose_body_from_inspect(t->old_inspect, t->old_image_inspect, image, body, err);
}

/* ---- containers ------------------------------------------------------------------ */

/* Inspect, with "does not exist" as *out NULL and no error. */
static int inspect_opt(struct deploy_run *run, const char *name, json_t **out, struct st_error *err)
{
	int rc = docker_container_inspect(run->docker, name, DOCKER_TIMEOUT_DEFAULT, out, err);

	if (rc == ST_ENOTFOUND) {
		st_error_clear(err);
		*out = NULL;
		return 0;
	}
	return rc;
}

int deploy_remove_container(struct deploy_run *run, const char *container, struct st_error *err)
{
	int rc;

	rc = docker_container_stop(run->docker, container, (int)run->cfg->deploy.stop_timeout,
				   DOCKER_TIMEOUT_DEFAULT, err);
	if (rc == ST_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	rc = docker_container_remove(run->docker, container, 1, 0, DOCKER_TIMEOUT_DEFAULT, err);
	return rc == ST_ENOTFOUND ? 0 : rc;
}

/* ---- the health gate --------------------------------------------------------------- */

int deploy_gate(struct deploy_run *run, struct deploy_target *t, const char *container,
		const char *url, struct deploy_gate_report *rep, struct st_error *err)
{
	const struct config_deploy *dc = &run->cfg->deploy;
	struct deploy_gate_report local;
	struct container_wait_report *wr = NULL;
	struct container_wait_opts o;
	int rc = 0;
	char dur[32], *shown = NULL;

	(void)t;
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	/* What messages, the step's result and the journal show: no
	 * user:password, no query (credentials and tokens travel there). */
	if ((url && !(shown = health_url_for_display(url))) || !(wr = calloc(1, sizeof(*wr)))) {
		free(shown);
		return oom(err);
	}
	if (url)
		snprintf(rep->url, sizeof(rep->url), "%s", shown);
	/* Docker's health and the URL must both say healthy; the URL is probed
	 * from the start, so an app answering errors fails fast. */
	memset(&o, 0, sizeof(o));
	o.health_url = url;
	o.timeout_s = dc->health_timeout;
	o.interval_s = dc->health_interval;
	o.cancel = run->cancel;
	o.fail_after = (int)dc->health_fail_after;
	o.url_and_health = 1;
	rc = container_wait(run->docker, container, &o, wr, err);
	rep->waited = wr->waited_s;
	rep->status = wr->http_status;
	snprintf(rep->body, sizeof(rep->body), "%s", wr->body);
	snprintf(rep->docker_health, sizeof(rep->docker_health), "%s",
		 wr->state.has_healthcheck ? wr->state.health : "");
	text_one_line(rep->docker_probe, sizeof(rep->docker_probe), wr->health_log, strlen(wr->health_log), 0);
	if (rc == ST_ETIMEOUT) {
		rc = st_error_set(err, ST_EFAILED, "new container '%s' not healthy within %s: %s", container,
				  time_format_duration(dc->health_timeout, dur, sizeof(dur)), wr->reason);
		st_error_hint(err, "raise deploy.health_timeout if it only starts slowly");
	} else if (rc == ST_EFAILED && wr->bad_in_row > 0) {
		st_error_wrap(err, "new container '%s' failed its health check", container);
	} else if (rc && rc != ST_EABORTED) {
		st_error_wrap(err, "new container failed its health gate after %s",
			      time_format_duration(rep->waited, dur, sizeof(dur)));
	}
	free(wr);
	free(shown);
	return rc;
}

/* ---- the log scan -------------------------------------------------------------------- */

struct scan {
	regex_t *re;
	size_t n;
	char hit[300];
};

static int scan_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct scan *s = ud;
	char line[2048];
	size_t i;

	(void)err;
	snprintf(line, sizeof(line), "%.*s", (int)l->len, l->text);
	for (i = 0; i < s->n; i++)
		if (regexec(&s->re[i], line, 0, NULL, 0) == 0) {
			text_one_line(s->hit, sizeof(s->hit), line, strlen(line), 0);
			return 1;
		}
	return 0;
}

int deploy_scan_logs(struct deploy_run *run, struct deploy_target *t, const char *container,
		     struct st_error *err)
{
	const struct config_deploy *dc = &run->cfg->deploy;
	struct scan s;
	json_t *ins = NULL;
	double started, end;
	size_t i;
	int rc = 0;
	char dur[32];

	(void)t;
	memset(&s, 0, sizeof(s));
	if (dc->log_scan <= 0 || dc->log_error_patterns.count == 0)
		return 0;
	if (!(s.re = calloc(dc->log_error_patterns.count, sizeof(*s.re))))
		return oom(err);
	for (i = 0; i < dc->log_error_patterns.count; i++) {
		if (regcomp(&s.re[i], dc->log_error_patterns.items[i], REG_EXTENDED | REG_ICASE | REG_NOSUB)) {
			rc = st_error_set(err, ST_ECONFIG, "deploy.log_error_patterns: '%s' does not compile",
					  dc->log_error_patterns.items[i]);
			goto out;
		}
		s.n++;
	}
	if ((rc = docker_container_inspect(run->docker, container, DOCKER_TIMEOUT_DEFAULT, &ins, err)) != 0)
		goto out;
	started = parse_docker_time(json_string_value(json_object_get(json_object_get(ins, "State"),
								      "StartedAt")));
	if (started <= 0)
		started = time_wall();
	end = started + dc->log_scan;
	/* The window must have passed before its logs are complete. */
	if (end > time_wall() && (rc = nap(run, end - time_wall(), err)) != 0)
		goto out;
	{
		struct docker_logs_opts o = { .since = started - 1, .until = end, .timeout = 30 };
		struct st_error lerr = { 0 };
		int lrc = docker_container_logs(run->docker, container, &o, scan_line, &s, &lerr);

		if (*s.hit) {
			rc = st_error_set(err, ST_EFAILED, "new container '%s' logged an error within %s of "
					  "its start: %s", container,
					  time_format_duration(dc->log_scan, dur, sizeof(dur)), s.hit);
			st_error_hint(err, "see its logs: docker logs %s (patterns: deploy.log_error_patterns)",
				      container);
		} else if (lrc) {
			*err = lerr;
			rc = lrc;
		}
	}
out:
	json_decref(ins);
	for (i = 0; i < s.n; i++)
		regfree(&s.re[i]);
	free(s.re);
	return rc;
}

/* ---- the recreate strategy ---------------------------------------------------------------- */

static int result_obj(json_t **result, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	*result = json_vpack_ex(NULL, 0, fmt, ap);
	va_end(ap);
	return *result ? 0 : -1;
}

/* Starts the container that ran before again under its own name (after
 * the new one is gone) and waits for it. */
static int restore_old(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	json_t *body = NULL, *ins = NULL;
	char *id = NULL;
	int rc = 0;

	if (t->old_container) {
		const char *name;

		if ((rc = inspect_opt(run, t->old_container, &ins, err)) != 0)
			goto out;
		if (ins) {
			name = json_string_value(json_object_get(ins, "Name"));
			if (name && *name == '/')
				name++;
			if (name && strcmp(name, t->container) &&
			    (rc = docker_container_rename(run->docker, t->old_container, t->container,
							  DOCKER_TIMEOUT_DEFAULT, err)) != 0)
				goto out;
			if ((rc = docker_container_start(run->docker, t->container, DOCKER_TIMEOUT_DEFAULT,
							 err)) != 0)
				goto out;
			t->old_stopped = 0;
			goto wait;
		}
		/* Removed meanwhile (cleanup ran): recreate it below. */
	}
	if (!t->previous_image_id || !t->old_inspect)
		goto out;  /* nothing ran before: nothing to bring back */
	if (t->def)
		rc = compose_body(t->def, t->previous_image_id, &body, err);
	else
		rc = compose_body_from_inspect(t->old_inspect, t->old_image_inspect, t->previous_image_id,
					       &body, err);
	if (rc || (rc = docker_container_create(run->docker, t->container, body, DOCKER_TIMEOUT_DEFAULT,
						 &id, err)) != 0 ||
	    (rc = docker_container_start(run->docker, t->container, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		goto out;
	free(t->old_container);
	t->old_container = id;
	id = NULL;
wait:
	{
		struct deploy_gate_report rep;

		rc = deploy_gate(run, t, t->container, t->health_url, &rep, err);
		if (rc)
			st_error_wrap(err, "the previous container is back but not healthy");
	}
out:
	json_decref(body);
	json_decref(ins);
	free(id);
	return rc;
}

static int recreate_replace_undo(struct deploy_run *run, struct deploy_target *t,
				 struct st_error *err);

static int replace_steps(struct deploy_run *run, struct deploy_target *t, json_t **result,
			 struct st_error *err)
{
	json_t *body = NULL, *cur = NULL, *img = NULL;
	char tmpname[256], oldname[256], *id = NULL, sid[16];
	int rc;

	snprintf(tmpname, sizeof(tmpname), "%s-new-%s", t->container, t->release);
	snprintf(oldname, sizeof(oldname), "%s-old-%s", t->container, t->release);
	/* The container as it is now (the plan's inspect may be stale). */
	if ((rc = inspect_opt(run, t->container, &cur, err)) != 0)
		goto out;
	if (cur) {
		const char *image_id = json_string_value(json_object_get(cur, "Image"));

		json_decref(t->old_inspect);
		t->old_inspect = json_incref(cur);
		if (image_id && (rc = docker_image_inspect(run->docker, image_id, DOCKER_TIMEOUT_DEFAULT,
							   &img, err)) != 0 && rc != ST_ENOTFOUND)
			goto out;
		json_decref(t->old_image_inspect);
		t->old_image_inspect = img;
		img = NULL;
	}
	if ((rc = deploy_create_body(run, t, t->image_ref, &body, err)) != 0)
		goto out;
	/* A temporary container left by a run that died here. */
	if ((rc = docker_container_remove(run->docker, tmpname, 1, 0, DOCKER_TIMEOUT_DEFAULT, err)) != 0 &&
	    rc != ST_ENOTFOUND)
		goto out;
	if ((rc = docker_container_create(run->docker, tmpname, body, DOCKER_TIMEOUT_DEFAULT, &id, err)) != 0)
		goto out;
	t->new_container = id;
	id = NULL;
	if (cur) {
		const char *cid = json_string_value(json_object_get(cur, "Id"));

		if (!(t->old_container = strdup(cid ? cid : t->container))) {
			rc = oom(err);
			goto out;
		}
		t->old_stopped = 1;
		if ((rc = docker_container_stop(run->docker, t->old_container,
						(int)run->cfg->deploy.stop_timeout, DOCKER_TIMEOUT_DEFAULT,
						err)) != 0)
			goto out;
		if ((rc = docker_container_rename(run->docker, t->old_container, oldname,
						  DOCKER_TIMEOUT_DEFAULT, err)) != 0)
			goto out;
	}
	if ((rc = docker_container_rename(run->docker, t->new_container, t->container,
					  DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		goto out;
	t->t_started = time_monotonic();
	if ((rc = docker_container_start(run->docker, t->container, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		goto out;
	if (result_obj(result, "{s:s, s:s, s:s?}", "container", t->container, "id",
		       short_id(t->new_container, sid, sizeof(sid)), "old", cur ? oldname : NULL) != 0)
		rc = oom(err);
out:
	json_decref(body);
	json_decref(cur);
	json_decref(img);
	free(id);
	return rc;
}

/* The engine undoes only acts that succeeded: a replace that fails half way
 * (the new container does not start) puts the old one back itself. */
static int recreate_replace(struct deploy_run *run, struct deploy_target *t, json_t **result,
			    struct st_error *err)
{
	struct st_error uerr = { 0 };
	int rc = replace_steps(run, t, result, err);

	if (rc && (t->new_container || t->old_stopped)) {
		volatile sig_atomic_t *cancel = run->cancel;
		int urc;

		/* An undo, even inside the act: the interrupt that may have
		 * stopped the replacement must not stop putting the old back. */
		run->cancel = NULL;
		urc = recreate_replace_undo(run, t, &uerr);
		run->cancel = cancel;
		if (urc != 0) {
			st_error_hint(err, "putting the old container back failed too: %s", uerr.message);
		} else {
			size_t n = strlen(err->message);

			snprintf(err->message + n, sizeof(err->message) - n,
				 " (the old container was put back)");
		}
	}
	return rc;
}

static int recreate_replace_undo(struct deploy_run *run, struct deploy_target *t,
				 struct st_error *err)
{
	int rc;

	if (t->new_container) {
		rc = docker_container_remove(run->docker, t->new_container, 1, 0, DOCKER_TIMEOUT_DEFAULT, err);
		if (rc && rc != ST_ENOTFOUND)
			return rc;
		free(t->new_container);
		t->new_container = NULL;
	}
	return restore_old(run, t, err);
}

static int recreate_gate(struct deploy_run *run, struct deploy_target *t, json_t **result,
			 struct st_error *err)
{
	struct deploy_gate_report rep;
	int rc = deploy_gate(run, t, t->container, t->health_url, &rep, err);

	if (rc)
		return rc;
	t->t_ready = time_monotonic() - (t->t_started ? t->t_started : time_monotonic());
	t->t_live = time_monotonic();
	if (result_obj(result, "{s:f, s:s?, s:I, s:s?}", "waited", rep.waited, "url",
		       *rep.url ? rep.url : NULL, "status", (json_int_t)rep.status, "docker_health",
		       *rep.docker_health ? rep.docker_health : NULL) != 0)
		return oom(err);
	return 0;
}

static int recreate_logs(struct deploy_run *run, struct deploy_target *t, json_t **result,
			 struct st_error *err)
{
	int rc = deploy_scan_logs(run, t, t->container, err);

	if (!rc && result_obj(result, "{s:f}", "scanned_seconds", run->cfg->deploy.log_scan) != 0)
		rc = oom(err);
	return rc;
}

static int recreate_cleanup(struct deploy_run *run, struct deploy_target *t, json_t **result,
			    struct st_error *err)
{
	int rc;

	(void)result;
	if (!t->old_container)
		return 0;
	if ((rc = docker_container_remove(run->docker, t->old_container, 1, 0, DOCKER_TIMEOUT_DEFAULT,
					  err)) != 0 && rc != ST_ENOTFOUND)
		return rc;
	free(t->old_container);
	t->old_container = NULL;
	return 0;
}

static const struct deploy_op recreate_ops[] = {
	{ "replace", "stop the old container and start the new one under its name", recreate_replace,
	  recreate_replace_undo },
	{ "gate", "wait until the new container is running and healthy", recreate_gate, NULL },
	{ "logs", "scan the new container's first logs for errors", recreate_logs, NULL },
	{ "cleanup", "remove the old container", recreate_cleanup, NULL },
	{ NULL, NULL, NULL, NULL },
};

static int recreate_is_default(const struct deploy_run *run, const struct deploy_target *t)
{
	(void)run;
	(void)t;
	return 1;
}

const struct deploy_strategy deploy_recreate = {
	.name = "recreate",
	.summary = "stop the old container, start the new one under the same name (brief downtime)",
	.is_default = recreate_is_default,
	.check = NULL,
	.ops = recreate_ops,
	.release = NULL,
};

/* ---- generic steps ------------------------------------------------------------------------ */

static int build_progress(void *ud, const char *text)
{
	const struct deploy_run *run = ud;

	if (run->opts->build_output)
		run->opts->build_output(run->opts->build_output_ud, text);
	return 0;
}

/* A service's container: configured, else compose's container_name. */
static const char *container_of(const struct deploy_run *run, const char *service)
{
	const struct config_service *cs = config_service(run->cfg, service);
	const struct compose_service *svc = compose_find(run->compose, service);

	if (cs)
		return cs->container;
	return svc ? svc->container_name : NULL;
}

/* Dependencies of a target: its compose depends_on, or without a compose
 * definition every configured service listed before it (running and, when
 * it has a healthcheck, healthy). */
static int check_dependencies(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	size_t i, n = 0;
	int rc = 0;

	if (t->def)
		n = t->def->ndeps;
	else
		for (i = 0; i < run->cfg->n_services && strcmp(run->cfg->services[i].name, t->service); i++)
			n++;
	for (i = 0; i < n && !rc; i++) {
		const char *dep = t->def ? t->def->deps[i].service : run->cfg->services[i].name;
		enum compose_condition cond = t->def ? t->def->deps[i].condition : COMPOSE_HEALTHY;
		const char *c = container_of(run, dep);
		json_t *ins = NULL;
		const json_t *state, *health;
		const char *hs;

		if (!c) {
			rc = st_error_set(err, ST_EABORTED, "'%s' depends on '%s', which has no container name",
					  t->service, dep);
			break;
		}
		if ((rc = inspect_opt(run, c, &ins, err)) != 0)
			break;
		if (!ins) {
			rc = st_error_set(err, ST_EABORTED, "'%s' needs '%s' but container '%s' does not exist",
					  t->service, dep, c);
			break;
		}
		state = json_object_get(ins, "State");
		health = json_object_get(state, "Health");
		hs = json_string_value(json_object_get(health, "Status"));
		if (cond == COMPOSE_COMPLETED) {
			if (json_is_true(json_object_get(state, "Running")) ||
			    json_integer_value(json_object_get(state, "ExitCode")) != 0)
				rc = st_error_set(err, ST_EABORTED, "'%s' needs '%s' (%s) to have completed "
						  "successfully", t->service, dep, c);
		} else if (!json_is_true(json_object_get(state, "Running"))) {
			rc = st_error_set(err, ST_EABORTED, "'%s' needs '%s' but container '%s' is %s",
					  t->service, dep, c,
					  json_string_value(json_object_get(state, "Status")));
			st_error_hint(err, "start it first, or check it with 'spilttea-ops health'");
		} else if (cond == COMPOSE_HEALTHY && hs && strcmp(hs, "healthy")) {
			rc = st_error_set(err, ST_EABORTED, "'%s' needs '%s' healthy but container '%s' is %s",
					  t->service, dep, c, hs);
			st_error_hint(err, "check it with 'spilttea-ops health'");
		}
		json_decref(ins);
	}
	return rc;
}

static int op_preflight(struct deploy_run *run, struct deploy_target *t, json_t **result,
			struct st_error *err)
{
	json_t *img = NULL;
	char latest[600];
	int rc;

	if ((rc = docker_ping(run->docker, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		return rc;
	if (!t->def && !t->old_inspect)
		return st_error_set(err, ST_EABORTED, "container '%s' does not exist and service '%s' has "
				    "no compose definition to create it from", t->container, t->service);
	switch (run->opts->mode) {
	case DEPLOY_MODE_BUILD:
		buildctx_free(t->build);
		t->build = NULL;
		if ((rc = buildctx_open(t->context, t->def ? t->def->dockerfile : NULL, run->opts->ref,
					run->cancel, &t->build, err)) != 0)
			return rc;
		break;
	case DEPLOY_MODE_NO_BUILD:
		snprintf(latest, sizeof(latest), "%s:latest", t->image_repo);
		rc = docker_image_inspect(run->docker, latest, DOCKER_TIMEOUT_DEFAULT, &img, err);
		if (rc == ST_ENOTFOUND) {
			rc = st_error_set(err, ST_EABORTED, "--no-build: there is no image '%s' to deploy",
					  latest);
			st_error_hint(err, "build it first, or deploy without --no-build");
		}
		if (rc)
			return rc;
		free(t->image_id);
		t->image_id = strdup(json_string_value(json_object_get(img, "Id")));
		json_decref(img);
		if (!t->image_id)
			return oom(err);
		break;
	case DEPLOY_MODE_ROLLBACK:
		rc = docker_image_inspect(run->docker, t->rollback_image_id, DOCKER_TIMEOUT_DEFAULT,
					  &img, err);
		json_decref(img);
		if (rc == ST_ENOTFOUND) {
			rc = st_error_set(err, ST_EABORTED, "the image of release %s (%s) is gone",
					  t->rollback_to, t->rollback_image_id);
			st_error_hint(err, "pick another with 'spilttea-ops rollback --list', or rebuild it "
				      "with 'spilttea-ops deploy %s --ref COMMIT'", t->service);
		}
		if (rc)
			return rc;
		free(t->image_id);
		if (!(t->image_id = strdup(t->rollback_image_id)))
			return oom(err);
		break;
	}
	if ((rc = check_dependencies(run, t, err)) != 0)
		return rc;
	if (result_obj(result, "{s:s?}", "git_commit", t->build ? t->build->git_commit : NULL) != 0)
		return oom(err);
	return 0;
}

/* REPO:latest before this run, so undo can put it back. */
static int remember_latest(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	char latest[600];
	json_t *img = NULL;
	int rc;

	snprintf(latest, sizeof(latest), "%s:latest", t->image_repo);
	rc = docker_image_inspect(run->docker, latest, DOCKER_TIMEOUT_DEFAULT, &img, err);
	if (rc == ST_ENOTFOUND) {
		st_error_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	free(t->previous_latest_id);
	t->previous_latest_id = strdup(json_string_value(json_object_get(img, "Id")));
	json_decref(img);
	return t->previous_latest_id ? 0 : oom(err);
}

static int op_image(struct deploy_run *run, struct deploy_target *t, json_t **result,
		    struct st_error *err)
{
	double t0 = time_monotonic();
	char *tags[3] = { NULL, NULL, NULL }, sid[16];
	int rc;

	if ((rc = remember_latest(run, t, err)) != 0)
		return rc;
	if (asprintf(&tags[0], "%s:%s", t->image_repo, t->release) < 0 ||
	    asprintf(&tags[1], "%s:latest", t->image_repo) < 0) {
		rc = oom(err);
		goto out;
	}
	free(t->image_ref);
	if (!(t->image_ref = strdup(tags[0]))) {
		rc = oom(err);
		goto out;
	}
	if (run->opts->mode == DEPLOY_MODE_BUILD) {
		struct docker_build_opts bo;
		char *id = NULL;

		memset(&bo, 0, sizeof(bo));
		bo.tags = (const char *const *)tags;
		bo.dockerfile = t->build->dockerfile;
		bo.build_args = t->def ? (const char *const *)t->def->build_args : NULL;
		bo.on_progress = build_progress;
		bo.ud = run;
		/* Ctrl-C stops the build, and the git archive feeding it, even
		 * when neither says anything (buildctx.h). */
		t->build->cancel = run->cancel;
		docker_client_set_cancel(run->docker, run->cancel);
		rc = docker_image_build_from(run->docker, &bo, buildctx_produce, t->build, &id, err);
		docker_client_set_cancel(run->docker, NULL);
		if (rc) {
			st_error_wrap(err, "cannot build '%s' from '%s'%s%s", tags[0], t->context,
				      run->opts->ref ? " at " : "", run->opts->ref ? run->opts->ref : "");
			goto out;
		}
		free(t->image_id);
		t->image_id = id;
	} else {
		/* no-build, rollback: the existing image under this release's tag, and latest */
		if ((rc = docker_image_tag(run->docker, t->image_id, t->image_repo, t->release,
					   DOCKER_TIMEOUT_DEFAULT, err)) != 0 ||
		    (rc = docker_image_tag(run->docker, t->image_id, t->image_repo, "latest",
					   DOCKER_TIMEOUT_DEFAULT, err)) != 0)
			goto out;
	}
	t->t_image = time_monotonic() - t0;
	if (result_obj(result, "{s:s, s:s, s:f, s:I}", "image", tags[0], "image_id",
		       short_id(t->image_id, sid, sizeof(sid)), "seconds", t->t_image, "context_entries",
		       t->build ? (json_int_t)t->build->entries : (json_int_t)0) != 0)
		rc = oom(err);
out:
	free(tags[0]);
	free(tags[1]);
	return rc;
}

static int op_image_undo(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	char latest[600];
	int rc;

	/* The release tag stays (the failed release can be looked at); latest
	 * goes back to what it was. */
	if (t->previous_latest_id)
		return docker_image_tag(run->docker, t->previous_latest_id, t->image_repo, "latest",
					DOCKER_TIMEOUT_DEFAULT, err);
	snprintf(latest, sizeof(latest), "%s:latest", t->image_repo);
	rc = docker_image_remove(run->docker, latest, 0, DOCKER_TIMEOUT_DEFAULT, err);
	return rc == ST_ENOTFOUND ? 0 : rc;
}

/* Reloads the history from disk (a concurrent reader never holds it). */
static int reload_history(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	struct release_history *h = NULL;
	int rc = release_history_load(run->cfg->state_dir, t->service, &h, err);

	if (rc)
		return rc;
	release_history_free(t->history);
	t->history = h;
	return 0;
}

static int op_record(struct deploy_run *run, struct deploy_target *t, json_t **result,
		     struct st_error *err)
{
	struct release_record r;
	char now[40], created[40];
	int rc;

	if ((rc = reload_history(run, t, err)) != 0)
		return rc;
	memset(&r, 0, sizeof(r));
	if (*t->initial_id && !release_current(t->history) && t->previous_image_id) {
		/* The very first deploy: what ran before becomes a release, so
		 * rollback has somewhere to go. */
		struct st_error terr = { 0 };
		const char *ct = json_string_value(json_object_get(t->old_inspect, "Created"));
		double when = parse_docker_time(ct);

		snprintf(r.id, sizeof(r.id), "%s", t->initial_id);
		r.image = t->image_repo;
		r.image_id = t->previous_image_id;
		r.time = time_format_rfc3339(when > 0 ? when : time_wall(), created, sizeof(created));
		r.source = (char *)"initial";
		r.status = (char *)"ok";
		if (!release_history_append(t->history, &r))
			return oom(err);
		if (docker_image_tag(run->docker, t->previous_image_id, t->image_repo, t->initial_id,
				     DOCKER_TIMEOUT_DEFAULT, &terr) != 0)
			deploy_notice(run, "cannot tag the image that ran before as %s:%s: %s", t->image_repo,
				      t->initial_id, terr.message);
	}
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", t->release);
	r.image = t->image_repo;
	r.image_id = t->image_id;
	r.previous_image_id = t->previous_image_id;
	r.time = time_format_rfc3339(time_wall(), now, sizeof(now));
	r.user = (char *)user_name();
	r.source = (char *)mode_source(run->opts->mode);
	r.rollback_to = *t->rollback_to ? t->rollback_to : NULL;
	r.git_commit = t->build ? t->build->git_commit : NULL;
	r.git_dirty = t->build ? t->build->git_dirty : 0;
	r.git_ref = run->opts->mode == DEPLOY_MODE_BUILD ? (char *)run->opts->ref : NULL;
	r.strategy = (char *)t->strategy->name;
	r.status = (char *)"pending";
	if (release_history_find(t->history, t->release))
		return st_error_set(err, ST_ECONFLICT, "release %s of '%s' exists already", t->release,
				    t->service);
	if (!release_history_append(t->history, &r))
		return oom(err);
	if ((rc = release_history_save(t->history, err)) != 0)
		return rc;
	if (result_obj(result, "{s:s, s:s?}", "release", t->release, "initial",
		       *t->initial_id && release_history_find(t->history, t->initial_id) ? t->initial_id : NULL))
		return oom(err);
	return 0;
}

static int set_status(struct deploy_run *run, struct deploy_target *t, const char *id,
		      const char *status, const char *error, struct st_error *err)
{
	struct release_record *r;
	int rc;

	if ((rc = reload_history(run, t, err)) != 0)
		return rc;
	if (!(r = release_history_find(t->history, id)))
		return 0;
	if (release_set(&r->status, status, err) || (error && release_set(&r->error, error, err)))
		return ST_ENOMEM;
	return release_history_save(t->history, err);
}

static int op_record_undo(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	return set_status(run, t, t->release, "failed", NULL, err);
}

/* Removes the tags of releases retention lets go. Never fails the deploy:
 * what could not be removed stays and is listed in notices. */
static json_t *prune(struct deploy_run *run, struct deploy_target *t)
{
	const struct release_record *prev = release_previous(t->history);
	size_t *drop, n, i;
	json_t *pruned = json_array();

	if (!pruned || !(drop = calloc(t->history->count + 1, sizeof(*drop))))
		return pruned;
	n = release_retention(t->history, (size_t)run->cfg->deploy.keep_releases, t->image_id,
			      prev ? prev->image_id : t->previous_image_id, drop);
	for (i = 0; i < n; i++) {
		struct release_record *r = &t->history->records[drop[i]];
		struct st_error rerr = { 0 };
		char ref[600];
		int rc;

		/* What this deploy replaced stays too, whatever its record says. */
		if (t->previous_image_id && r->image_id && !strcmp(r->image_id, t->previous_image_id))
			continue;
		snprintf(ref, sizeof(ref), "%s:%s", r->image ? r->image : t->image_repo, r->id);
		rc = docker_image_remove(run->docker, ref, 0, DOCKER_TIMEOUT_DEFAULT, &rerr);
		if (rc == 0 || rc == ST_ENOTFOUND) {
			r->pruned = 1;
			json_array_append_new(pruned, json_string(r->id));
		} else {
			deploy_notice(run, "retention: cannot remove %s: %s", ref, rerr.message);
		}
	}
	free(drop);
	return pruned;
}

static int op_commit(struct deploy_run *run, struct deploy_target *t, json_t **result,
		     struct st_error *err)
{
	struct release_record *r;
	json_t *pruned;
	struct st_error serr = { 0 };
	int rc;

	if ((rc = reload_history(run, t, err)) != 0)
		return rc;
	if (!(r = release_history_find(t->history, t->release)))
		return st_error_set(err, ST_ENOTFOUND, "release %s of '%s' vanished from the history",
				    t->release, t->service);
	if (release_set(&r->status, "ok", err))
		return ST_ENOMEM;
	if (run->opts->mode == DEPLOY_MODE_ROLLBACK && *t->replaced_release) {
		struct release_record *bad = release_history_find(t->history, t->replaced_release);

		if (bad && bad != r && release_set(&bad->status, "rolled-back", err))
			return ST_ENOMEM;
	}
	if ((rc = release_history_save(t->history, err)) != 0)
		return rc;
	pruned = prune(run, t);
	if (json_array_size(pruned) && release_history_save(t->history, &serr) != 0)
		deploy_notice(run, "%s", serr.message);
	if (!pruned || result_obj(result, "{s:s, s:o}", "release", t->release, "pruned", pruned) != 0)
		return oom(err);
	return 0;
}

/* ---- engine actions ------------------------------------------------------------------------- */

static const struct engine_arg_spec op_args[] = {
	{ "service", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "service being deployed" },
	{ "op", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "the step of the deploy" },
	{ "release", ENGINE_ARG_STRING, 0, NULL, "release id (also the image tag)" },
	{ NULL, 0, 0, NULL, NULL },
};

static struct deploy_target *call_target(struct engine_call *call, const json_t *args,
					 struct deploy_run **run, struct st_error *err)
{
	const char *svc = json_string_value(json_object_get(args, "service"));
	size_t i;

	*run = (struct deploy_run *)call->services;   /* svc is its first member */
	if (*run)
		(*run)->cancel = call->cancel;
	for (i = 0; *run && i < (*run)->ntargets; i++)
		if (svc && !strcmp((*run)->targets[i].service, svc))
			return &(*run)->targets[i];
	st_error_set(err, ST_EUSAGE, "deploy step for unknown service '%s'", svc ? svc : "");
	return NULL;
}

static const struct deploy_op *find_op(const struct deploy_target *t, const char *name)
{
	const struct deploy_op *o;

	for (o = t->strategy->ops; name && o->name; o++)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

static int act_check(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err)
{
	struct deploy_run *run;
	struct deploy_target *t = call_target(call, args, &run, err);

	if (!t)
		return ST_EUSAGE;
	return op_preflight(run, t, result, err);
}

static int act_op(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct deploy_run *run;
	struct deploy_target *t = call_target(call, args, &run, err);
	const char *op = json_string_value(json_object_get(args, "op"));
	const struct deploy_op *o;

	if (!t)
		return ST_EUSAGE;
	if (!strcmp(op, "image"))
		return op_image(run, t, result, err);
	if (!strcmp(op, "record"))
		return op_record(run, t, result, err);
	if (!strcmp(op, "commit"))
		return op_commit(run, t, result, err);
	if (!(o = find_op(t, op)))
		return st_error_set(err, ST_EUSAGE, "strategy '%s' has no op '%s'", t->strategy->name, op);
	return o->act(run, t, result, err);
}

static int undo_once(struct deploy_run *run, struct deploy_target *t, const char *op, struct st_error *err)
{
	const struct deploy_op *o;

	if (!strcmp(op, "image"))
		return op_image_undo(run, t, err);
	if (!strcmp(op, "record"))
		return op_record_undo(run, t, err);
	if (!(o = find_op(t, op)) || !o->undo)
		return st_error_set(err, ST_EUSAGE, "strategy '%s' has no undo for '%s'", t->strategy->name, op);
	return o->undo(run, t, err);
}

/* An undo puts the previous release back: when it fails because the
 * daemon did not answer at all (stopped, restarting, hung: no HTTP status),
 * it is tried again every second for up to deploy.health_timeout, and at
 * least UNDO_RETRY_MIN seconds (a daemon that just came back first works
 * through its backlog), rather than leaving the service down. Undos are
 * written to be run again: each clears what it has done, and a request that
 * timed out on our side may have been carried out by the daemon anyway. */
#define UNDO_RETRY_MIN 30.0
static int act_undo(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	struct deploy_run *run;
	struct deploy_target *t = call_target(call, args, &run, err);
	const char *op = json_string_value(json_object_get(args, "op"));
	double deadline;
	char dur[32];
	int rc, told = 0;

	(void)result;
	if (!t || !op)
		return ST_EUSAGE;
	deadline = time_monotonic() + (run->cfg->deploy.health_timeout > UNDO_RETRY_MIN
					       ? run->cfg->deploy.health_timeout
					       : UNDO_RETRY_MIN);
	for (;;) {
		st_error_clear(err);
		rc = undo_once(run, t, op, err);
		if (rc == 0 || (rc != ST_ETIMEOUT && rc != ST_ESERVICE) || err->http_status != 0 ||
		    time_monotonic() + 1 > deadline)
			break;
		if (!told++)
			deploy_notice(run, "undo of '%s-%s': %s; trying again for up to %s", t->service, op,
				      err->message,
				      time_format_duration(deadline - time_monotonic(), dur, sizeof(dur)));
		time_sleep(1);
	}
	return rc;
}

static const struct engine_action deploy_actions[] = {
	{ "deploy.check", "preflight of a deploy: definition, image or context, dependencies",
	  op_args, ENGINE_ACTION_READ_ONLY, act_check },
	{ "deploy.op", "one step of a deploy (build, record, replace, gate, ...)", op_args, 0, act_op },
	{ "deploy.undo", "undo one step of a deploy", op_args, 0, act_undo },
	{ NULL, NULL, NULL, 0, NULL },
};

/* ---- the runbook of one target ------------------------------------------------------------------ */

static int make_call(struct runbook_call *c, const struct engine_action *a, const struct deploy_target *t,
		     const char *op)
{
	memset(c, 0, sizeof(*c));
	c->action = a;
	c->args = json_pack("{s:s, s:s, s:s}", "service", t->service, "op", op, "release", t->release);
	return c->args ? 0 : -1;
}

static struct runbook_call *new_call(const struct engine_action *a, const struct deploy_target *t,
				     const char *op)
{
	struct runbook_call *c = calloc(1, sizeof(*c));

	if (c && make_call(c, a, t, op) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

static int add_step(struct runbook *rb, const struct deploy_target *t, const char *op,
		    const char *description, int with_undo)
{
	struct runbook_step *st = &rb->steps[rb->nsteps];

	memset(st, 0, sizeof(*st));
	if (asprintf(&st->name, "%s-%s", t->service, op) < 0) {
		st->name = NULL;
		return -1;
	}
	rb->nsteps++;
	st->description = strdup(description);
	st->verify_timeout = RUNBOOK_VERIFY_TIMEOUT;
	st->verify_interval = RUNBOOK_VERIFY_INTERVAL;
	if (!st->description || make_call(&st->act, &deploy_actions[1], t, op) != 0)
		return -1;
	if (with_undo && !(st->undo = new_call(&deploy_actions[2], t, op)))
		return -1;
	return 0;
}

static int target_runbook(const struct deploy_run *run, const struct deploy_target *t,
			  struct runbook **out, struct st_error *err)
{
	struct runbook *rb;
	const struct deploy_op *o;
	size_t nops = 0;
	char desc[1024], sid[16];

	*out = NULL;
	for (o = t->strategy->ops; o->name; o++)
		nops++;
	if (!(rb = calloc(1, sizeof(*rb))) || !(rb->steps = calloc(nops + 3, sizeof(*rb->steps))) ||
	    !(rb->name = strdup(run->opts->mode == DEPLOY_MODE_ROLLBACK ? "rollback" : "deploy")) ||
	    !(rb->source = strdup(RUNBOOK_SOURCE_BUILTIN)))
		goto nomem;
	/* The lock is the run's (deploy_execute), held across every target;
	 * the plan shows it, the engine must not take it again. */
	if (run->opts->dry_run) {
		char lock[LOCK_NAME_MAX];

		if (lock_name_service(lock, sizeof(lock), t->service, err) != 0) {
			runbook_free(rb);
			return err->code;
		}
		if (runbook_add_lock(rb, lock, NULL) != 0)
			goto nomem;
	}
	switch (run->opts->mode) {
	case DEPLOY_MODE_BUILD:
		snprintf(desc, sizeof(desc), "build %s:%s (and :latest) from %s%s%s%s", t->image_repo,
			 t->release, t->context, run->opts->ref ? " at git ref '" : "",
			 run->opts->ref ? run->opts->ref : "", run->opts->ref ? "'" : "");
		break;
	case DEPLOY_MODE_NO_BUILD:
		snprintf(desc, sizeof(desc), "deploy the existing %s:latest as release %s", t->image_repo,
			 t->release);
		break;
	case DEPLOY_MODE_ROLLBACK:
		snprintf(desc, sizeof(desc), "tag release %s's image %s as %s:latest and release %s",
			 t->rollback_to, short_id(t->rollback_image_id, sid, sizeof(sid)),
			 t->image_repo, t->release);
		break;
	}
	if (add_step(rb, t, "image", desc, 1) != 0)
		goto nomem;
	if (!(rb->steps[0].check = new_call(&deploy_actions[0], t, "preflight")))
		goto nomem;
	rb->steps[0].on_fail = RUNBOOK_ON_FAIL_ABORT;
	if (asprintf(&rb->steps[0].confirm, "%s '%s' (container %s, strategy %s)?",
		     run->opts->mode == DEPLOY_MODE_ROLLBACK ? "Roll back" : "Deploy", t->service, t->container,
		     t->strategy->name) < 0) {
		rb->steps[0].confirm = NULL;
		goto nomem;
	}
	snprintf(desc, sizeof(desc), "record release %s in the history%s", t->release,
		 *t->initial_id ? " (and the image running now as the first release)" : "");
	if (add_step(rb, t, "record", desc, 1) != 0)
		goto nomem;
	for (o = t->strategy->ops; o->name; o++)
		if (add_step(rb, t, o->name, o->description, o->undo != NULL) != 0)
			goto nomem;
	snprintf(desc, sizeof(desc), "mark release %s live%s; keep the last %ld release images",
		 t->release, run->opts->mode == DEPLOY_MODE_ROLLBACK ? " and the replaced one rolled back" : "",
		 run->cfg->deploy.keep_releases);
	if (add_step(rb, t, "commit", desc, 0) != 0)
		goto nomem;
	*out = rb;
	return 0;
nomem:
	runbook_free(rb);
	return oom(err);
}

/* ---- planning ------------------------------------------------------------------------------------ */

static void release_target(struct deploy_target *t)
{
	if (t->strategy && t->strategy->release)
		t->strategy->release(t);
	free(t->image_repo);
	free(t->context);
	free(t->image_ref);
	free(t->image_id);
	free(t->previous_image_id);
	free(t->previous_latest_id);
	free(t->rollback_image_id);
	json_decref(t->old_inspect);
	json_decref(t->old_image_inspect);
	release_history_free(t->history);
	free(t->new_container);
	free(t->old_container);
	buildctx_free(t->build);
}

static void run_release(struct deploy_run *run)
{
	size_t i;

	for (i = 0; i < run->ntargets; i++)
		release_target(&run->targets[i]);
	free(run->targets);
	compose_free(run->compose);
	services_release(&run->svc);
}

/* Does the service have what this mode needs? */
static int deployable(const struct deploy_run *run, const struct config_service *cs)
{
	const struct compose_service *svc = compose_find(run->compose, cs->name);

	if (run->opts->mode == DEPLOY_MODE_BUILD)
		return cs->build || (svc && svc->build_context);
	return cs->image || (svc && svc->image) || (svc && svc->build_context);
}

static int plan_target(struct deploy_run *run, const struct config_service *cs, struct deploy_target *t,
		       struct st_error *err)
{
	const struct compose_service *svc = compose_find(run->compose, cs->name);
	const struct release_record *cur;
	int rc;

	t->service = cs->name;
	t->container = cs->container;
	t->health_url = cs->health_url ? cs->health_url : cs->url;
	t->def = svc;
	if (cs->image)
		t->image_repo = image_repo_of(cs->image);
	else if (svc && svc->image)
		t->image_repo = image_repo_of(svc->image);
	else if (svc && svc->build_context && run->compose)
		/* compose's own naming for built images */
		rc = asprintf(&t->image_repo, "%s-%s", run->compose->name, cs->name) < 0 ? -1 : 0;
	if (!t->image_repo) {
		rc = st_error_set(err, ST_EUSAGE, "service '%s' has no image repository to tag releases with",
				  cs->name);
		st_error_hint(err, "set services.%s.image in the configuration", cs->name);
		return rc;
	}
	if (cs->build)
		t->context = strdup(cs->build);
	else if (svc && svc->build_context)
		t->context = strdup(svc->build_context);
	if (run->opts->mode == DEPLOY_MODE_BUILD && !t->context) {
		rc = st_error_set(err, ST_EUSAGE, "service '%s' has no build context", cs->name);
		st_error_hint(err, "set services.%s.build (or build: in the compose file), or deploy the "
			      "existing image with --no-build", cs->name);
		return rc;
	}
	/* strategy */
	if (run->opts->strategy) {
		if (!(t->strategy = deploy_strategy_find(run->opts->strategy))) {
			struct sbuf names = SBUF_INIT;
			size_t i;

			for (i = 0; deploy_strategies[i]; i++)
				sbuf_printf(&names, "%s%s", i ? ", " : "", deploy_strategies[i]->name);
			rc = st_error_set(err, ST_EUSAGE, "unknown strategy '%s' (known: %s)", run->opts->strategy,
					  sbuf_str(&names));
			sbuf_release(&names);
			return rc;
		}
	} else {
		size_t i;

		for (i = 0; deploy_strategies[i] && !t->strategy; i++)
			if (deploy_strategies[i]->is_default && deploy_strategies[i]->is_default(run, t))
				t->strategy = deploy_strategies[i];
	}
	if (!t->strategy)
		return st_error_set(err, ST_EUSAGE, "no strategy can deploy '%s'", cs->name);
	/* what runs now */
	if ((rc = inspect_opt(run, t->container, &t->old_inspect, err)) != 0)
		return rc;
	if (t->old_inspect) {
		const char *image_id = json_string_value(json_object_get(t->old_inspect, "Image"));

		if (image_id && !(t->previous_image_id = strdup(image_id)))
			return oom(err);
		if (image_id) {
			rc = docker_image_inspect(run->docker, image_id, DOCKER_TIMEOUT_DEFAULT,
						  &t->old_image_inspect, err);
			if (rc == ST_ENOTFOUND) {
				st_error_clear(err);
				rc = 0;
			}
			if (rc)
				return rc;
		}
	}
	if (t->strategy->check && (rc = t->strategy->check(run, t, err)) != 0)
		return rc;
	/* history, release ids */
	if ((rc = release_history_load(run->cfg->state_dir, t->service, &t->history, err)) != 0)
		return rc;
	cur = release_current(t->history);
	if (cur)
		snprintf(t->replaced_release, sizeof(t->replaced_release), "%s", cur->id);
	if (!cur && t->previous_image_id) {
		double created = parse_docker_time(json_string_value(json_object_get(t->old_inspect, "Created")));

		release_new_id(t->history, created > 0 ? created : time_wall() - 1, t->initial_id,
			       sizeof(t->initial_id));
	}
	release_new_id(t->history, time_wall(), t->release, sizeof(t->release));
	if (!strcmp(t->release, t->initial_id) && strlen(t->release) + 3 < sizeof(t->release))
		strcat(t->release, "_2");
	if (run->opts->mode == DEPLOY_MODE_ROLLBACK) {
		const struct release_record *r;

		if (run->opts->rollback_to) {
			r = release_history_find(t->history, run->opts->rollback_to);
			if (!r) {
				rc = st_error_set(err, ST_EUSAGE, "'%s' has no release '%s'", t->service,
						  run->opts->rollback_to);
				st_error_hint(err, "see them with 'spilttea-ops rollback --list %s'", t->service);
				return rc;
			}
			if (!r->image_id || (strcmp(r->status, "ok") && strcmp(r->status, "rolled-back"))) {
				rc = st_error_set(err, ST_EUSAGE, "release %s of '%s' never went live (%s)", r->id,
						  t->service, r->status);
				return rc;
			}
		} else if (!(r = release_previous(t->history))) {
			rc = st_error_set(err, ST_EABORTED, "'%s' has no earlier release to roll back to",
					  t->service);
			st_error_hint(err, "see the history with 'spilttea-ops rollback --list %s'; a git-based "
				      "rollback is 'spilttea-ops deploy %s --ref COMMIT'", t->service, t->service);
			return rc;
		}
		/* Copies: the history is reloaded by later steps. */
		snprintf(t->rollback_to, sizeof(t->rollback_to), "%s", r->id);
		if (!(t->rollback_image_id = strdup(r->image_id)))
			return oom(err);
	}
	return 0;
}

/* A release to roll back to exists (rollback all skips the others). */
static int has_previous(const struct deploy_run *run, const char *service)
{
	struct release_history *h = NULL;
	struct st_error ignored = { 0 };
	int yes;

	if (release_history_load(run->cfg->state_dir, service, &h, &ignored) != 0)
		return 1;  /* let planning report the unreadable history */
	yes = release_previous(h) != NULL;
	release_history_free(h);
	return yes;
}

static void deps_of(void *ud, const char *name, const struct compose_dep **deps, size_t *n)
{
	const struct compose_service *s = compose_find(ud, name);

	*deps = s ? s->deps : NULL;
	*n = s ? s->ndeps : 0;
}

static int plan_run(struct deploy_run *run, struct st_error *err)
{
	const struct st_config *cfg = run->cfg;
	const struct config_service **chosen = NULL;
	const char **names = NULL;
	size_t n = 0, i, *order = NULL;
	int all = 0, rc = 0;

	if ((rc = services_docker(&run->svc, &run->docker, err)) != 0)
		return rc;
	if (cfg->compose_file && (rc = compose_load(cfg->compose_file, cfg->compose_env_file, &run->compose,
						    err)) != 0)
		return rc;
	if (!(chosen = calloc(cfg->n_services + 1, sizeof(*chosen))) ||
	    !(names = calloc(cfg->n_services + 1, sizeof(*names))) ||
	    !(order = calloc(cfg->n_services + 1, sizeof(*order)))) {
		rc = oom(err);
		goto out;
	}
	if (!run->opts->services || !run->opts->services[0])
		all = 1;
	for (i = 0; !all && run->opts->services[i]; i++)
		if (!strcmp(run->opts->services[i], "all"))
			all = 1;
	if (all) {
		for (i = 0; i < cfg->n_services; i++)
			if (deployable(run, &cfg->services[i]) &&
			    (run->opts->mode != DEPLOY_MODE_ROLLBACK || has_previous(run, cfg->services[i].name)))
				chosen[n++] = &cfg->services[i];
		if (n == 0) {
			rc = st_error_set(err, run->opts->mode == DEPLOY_MODE_ROLLBACK ? ST_EABORTED : ST_EUSAGE,
					  "no service can be %s",
					  run->opts->mode == DEPLOY_MODE_BUILD ? "built (none has a build context)"
					  : run->opts->mode == DEPLOY_MODE_NO_BUILD ? "deployed (none has an image)"
					  : "rolled back (none has an earlier release)");
			if (run->opts->mode == DEPLOY_MODE_ROLLBACK)
				st_error_hint(err, "see the history with 'spilttea-ops rollback --list'");
			goto out;
		}
	} else {
		for (i = 0; run->opts->services[i]; i++) {
			const struct config_service *cs = config_service(cfg, run->opts->services[i]);
			size_t j;

			if (!cs) {
				struct sbuf known = SBUF_INIT;

				for (j = 0; j < cfg->n_services; j++)
					sbuf_printf(&known, "%s%s", j ? ", " : "", cfg->services[j].name);
				rc = st_error_set(err, ST_EUSAGE, "unknown service '%s'", run->opts->services[i]);
				st_error_hint(err, "configured services: %s (or all)", sbuf_str(&known));
				sbuf_release(&known);
				goto out;
			}
			for (j = 0; j < n && chosen[j] != cs; j++)
				;
			if (j == n) {
				if (n >= DEPLOY_MAX_TARGETS) {
					rc = st_error_set(err, ST_EUSAGE, "too many services");
					goto out;
				}
				chosen[n++] = cs;
			}
		}
	}
	for (i = 0; i < n; i++)
		names[i] = chosen[i]->name;
	/* depends_on order (without a compose file: configuration order) */
	if (run->compose) {
		if ((rc = compose_order(names, n, deps_of, run->compose, order, err)) != 0)
			goto out;
	} else {
		size_t k = 0, j;

		for (j = 0; j < cfg->n_services; j++)
			for (i = 0; i < n; i++)
				if (chosen[i] == &cfg->services[j])
					order[k++] = i;
	}
	if (!(run->targets = calloc(n, sizeof(*run->targets)))) {
		rc = oom(err);
		goto out;
	}
	for (i = 0; i < n; i++)
		run->targets[run->ntargets++].service = chosen[order[i]]->name;
out:
	free(chosen);
	free(names);
	free(order);
	return rc;
}

/* Plans each chosen target (under its lock: this reads its history and
 * what runs now). */
static int plan_targets(struct deploy_run *run, struct st_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < run->ntargets && !rc; i++)
		rc = plan_target(run, config_service(run->cfg, run->targets[i].service), &run->targets[i], err);
	return rc;
}

/* svc:SERVICE of every target, taken as one set (lock.h): deploy and
 * rollback exclude everything else that replaces, restarts or execs into
 * the same containers (migrate, restore, incident, restart-backend). */
static int lock_targets(struct deploy_run *run, struct lock_set **locks, struct lock_takeover *takeover,
			struct st_error *err)
{
	char (*names)[LOCK_NAME_MAX] = calloc(run->ntargets + 1, sizeof(*names));
	const char **ptrs = calloc(run->ntargets + 1, sizeof(*ptrs));
	size_t i;
	int rc = 0;

	if (!names || !ptrs) {
		rc = oom(err);
		goto out;
	}
	for (i = 0; i < run->ntargets && !rc; i++) {
		rc = lock_name_service(names[i], sizeof(names[i]), run->targets[i].service, err);
		ptrs[i] = names[i];
	}
	if (!rc)
		rc = lock_acquire_set(run->cfg->state_dir, ptrs, run->ntargets, run->opts->command_line, locks,
				      takeover, err);
out:
	free(names);
	free(ptrs);
	return rc;
}

/* ---- running ------------------------------------------------------------------------------------- */

static void report_target(struct deploy_report *rep, const struct deploy_target *t, const char *result,
			  const struct engine_report *er)
{
	struct deploy_report_target *r;

	if (!rep || rep->ntargets >= DEPLOY_MAX_TARGETS)
		return;
	r = &rep->targets[rep->ntargets++];
	snprintf(r->service, sizeof(r->service), "%s", t->service);
	snprintf(r->release, sizeof(r->release), "%s", t->release);
	snprintf(r->image_id, sizeof(r->image_id), "%s", t->image_id ? t->image_id : "");
	snprintf(r->previous_image_id, sizeof(r->previous_image_id), "%s",
		 t->previous_image_id ? t->previous_image_id : "");
	r->result = result;
	r->t_image = t->t_image;
	r->t_ready = t->t_ready;
	r->t_total = t->t_start ? time_monotonic() - t->t_start : 0;
	if (er)
		snprintf(r->run_id, sizeof(r->run_id), "%s", er->run_id);
}

int deploy_execute(const struct st_config *cfg, const struct deploy_options *opts,
		   struct deploy_report *report, struct st_error *err)
{
	struct deploy_run run;
	struct deploy_report dummy;
	struct engine_registry *reg = NULL;
	struct lock_set *locks = NULL;
	struct lock_takeover takeover;
	double t0 = time_monotonic();
	size_t i;
	int rc = 0;

	memset(&run, 0, sizeof(run));
	services_init(&run.svc, cfg);
	run.cfg = cfg;
	run.opts = opts;
	if (!report)
		report = &dummy;
	memset(report, 0, sizeof(*report));
	st_error_clear(err);
	if ((rc = engine_registry_new(0, &reg, err)) != 0 ||
	    (rc = engine_registry_add(reg, deploy_actions, err)) != 0)
		goto out;
	if ((rc = plan_run(&run, err)) != 0)
		goto out;
	/* The locks come before planning the targets: a second deploy must
	 * not even read the history a first one is about to change. */
	if (!opts->dry_run) {
		if ((rc = lock_targets(&run, &locks, &takeover, err)) != 0)
			goto out;
		if (takeover.stale)
			deploy_notice(&run, "%s", takeover.message);
	}
	if ((rc = plan_targets(&run, err)) != 0)
		goto out;
	for (i = 0; i < run.ntargets; i++) {
		struct deploy_target *t = &run.targets[i];
		struct engine_options eo;
		struct engine_report er;
		struct runbook *rb = NULL;
		json_t *params;
		char sid[16];

		run.current = i;
		t->t_start = time_monotonic();
		if ((rc = target_runbook(&run, t, &rb, err)) != 0)
			goto out;
		params = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?}", "service", t->service, "release",
				   t->release, "image", t->image_repo, "strategy", t->strategy->name, "ref",
				   opts->ref, "to", *t->rollback_to ? t->rollback_to : NULL);
		memset(&eo, 0, sizeof(eo));
		eo.state_dir = cfg->state_dir;
		eo.command_line = opts->command_line;
		eo.dry_run = opts->dry_run;
		eo.assume_yes = opts->assume_yes;
		eo.config = cfg;
		eo.services = &run.svc;
		eo.cancel = opts->cancel;
		eo.ui = opts->ui;
		if (!params) {
			runbook_free(rb);
			rc = oom(err);
			goto out;
		}
		if (opts->dry_run) {
			if (opts->ui && opts->ui->plan) {
				char line[512];

				snprintf(line, sizeof(line), "%s %s (container %s, strategy %s: %s), release %s%s%s:",
					 opts->mode == DEPLOY_MODE_ROLLBACK ? "rollback" : "deploy", t->service,
					 t->container, t->strategy->name, t->strategy->summary, t->release,
					 t->previous_image_id ? ", replacing image " : "",
					 t->previous_image_id ? short_id(t->previous_image_id, sid, sizeof(sid)) : "");
				opts->ui->plan(opts->ui->ud, line);
			}
			rc = engine_plan(rb, params, &eo, err);
			report_target(report, t, "planned", NULL);
		} else {
			rc = engine_run(rb, params, &eo, &er, err);
			if (rc == 0) {
				report_target(report, t, "deployed", &er);
				report->deployed++;
			} else {
				struct st_error serr = { 0 };

				/* Why it failed goes into the history too. */
				if (er.undone > 0 || rc == ST_EFAILED)
					set_status(&run, t, t->release, "failed", err->message, &serr);
				report_target(report, t, er.undone > 0 ? "rolled back" : "failed", &er);
				if (er.undone > 0 && !er.undo_failed)
					report->rolled_back++;
			}
		}
		json_decref(params);
		runbook_free(rb);
		if (rc) {
			for (i++; i < run.ntargets; i++)
				report_target(report, &run.targets[i], "not started", NULL);
			goto out;
		}
	}
out:
	report->duration = time_monotonic() - t0;
	run_release(&run);
	engine_registry_free(reg);
	lock_release_set(locks);
	return rc;
}
