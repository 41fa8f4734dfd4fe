#include "container.h"
#include "http.h"
#include "text.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int get_int(const json_t *o, const char *key)
{
	return (int)json_integer_value(json_object_get(o, key));
}

/* Docker writes "0001-01-01T00:00:00Z" for "never". */
static void parse_when(const char *s, char *text, size_t size, double *out)
{
	double t = 0;

	*out = 0;
	text[0] = '\0';
	if (!s || !*s || !strncmp(s, "0001-01-01", 10))
		return;
	text_copy(text, size, s);
	if (docker_parse_time(s, strlen(s), &t) == 0)
		*out = t;
}

int container_state_parse(const json_t *inspect, struct container_state *out, struct st_error *err)
{
	const json_t *state = json_object_get(inspect, "State");
	const json_t *config = json_object_get(inspect, "Config");
	const json_t *health = json_object_get(state, "Health");
	const json_t *hc = json_object_get(config, "Healthcheck");
	const json_t *test = json_object_get(hc, "Test");
	const char *name = json_string_value(json_object_get(inspect, "Name"));

	memset(out, 0, sizeof(*out));
	if (!json_is_object(inspect) || !json_is_object(state))
		return st_error_set(err, ST_EPROTO, "container inspect has no State object");
	out->exists = 1;
	if (name && *name == '/')
		name++;
	text_copy(out->name, sizeof(out->name), name);
	text_copy(out->id, sizeof(out->id), json_string_value(json_object_get(inspect, "Id")));
	text_copy(out->status, sizeof(out->status), json_string_value(json_object_get(state, "Status")));
	out->running = json_is_true(json_object_get(state, "Running"));
	out->paused = json_is_true(json_object_get(state, "Paused"));
	out->restarting = json_is_true(json_object_get(state, "Restarting"));
	out->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
	out->exit_code = get_int(state, "ExitCode");
	out->pid = get_int(state, "Pid");
	out->restart_count = get_int(inspect, "RestartCount");
	/* A healthcheck shows as State.Health once the container ran with it;
	 * Config.Healthcheck says so before the first probe too. ["NONE"]
	 * switches off one inherited from the image. */
	if (health && json_is_object(health))
		out->has_healthcheck = 1;
	else if (json_array_size(test) > 0 &&
		 strcmp(json_string_value(json_array_get(test, 0)) ?
			json_string_value(json_array_get(test, 0)) : "NONE", "NONE"))
		out->has_healthcheck = 1;
	if (out->has_healthcheck) {
		const char *hs = json_string_value(json_object_get(health, "Status"));

		text_copy(out->health, sizeof(out->health), hs && *hs ? hs : "starting");
		out->failing_streak = get_int(health, "FailingStreak");
	} else {
		text_copy(out->health, sizeof(out->health), "none");
	}
	parse_when(json_string_value(json_object_get(state, "StartedAt")), out->started_at,
		   sizeof(out->started_at), &out->started);
	parse_when(json_string_value(json_object_get(state, "FinishedAt")), out->finished_at,
		   sizeof(out->finished_at), &out->finished);
	text_copy(out->image, sizeof(out->image), json_string_value(json_object_get(config, "Image")));
	text_copy(out->image_id, sizeof(out->image_id), json_string_value(json_object_get(inspect, "Image")));
	text_copy(out->error, sizeof(out->error), json_string_value(json_object_get(state, "Error")));
	return 0;
}

int container_state(struct docker_client *d, const char *name, double timeout,
		    struct container_state *out, struct st_error *err)
{
	json_t *inspect = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = docker_container_inspect(d, name, timeout, &inspect, err);
	if (rc == ST_ENOTFOUND) {
		st_error_clear(err);
		text_copy(out->name, sizeof(out->name), name);
		text_copy(out->status, sizeof(out->status), "missing");
		text_copy(out->health, sizeof(out->health), "none");
		return 0;
	}
	if (rc == 0)
		rc = container_state_parse(inspect, out, err);
	json_decref(inspect);
	return rc;
}

json_t *container_state_json(const struct container_state *s, double now)
{
	double up = s->running && s->started > 0 && now > s->started ? now - s->started : 0;

	return json_pack("{s:s,s:b,s:b,s:s,s:s,s:i,s:i,s:b,s:s,s:s,s:s,s:s,s:f,s:i,s:s}",
			 "container", s->name, "exists", s->exists, "running", s->running,
			 "status", s->status, "health", s->health, "restart_count", s->restart_count,
			 "exit_code", s->exit_code, "oom_killed", s->oom_killed, "image", s->image,
			 "image_id", s->image_id, "started_at", s->started_at, "finished_at",
			 s->finished_at, "uptime_s", up, "pid", s->pid, "error", s->error);
}

/* Entries from first to the end of log into buf; 0 when they all fit. */
static int health_entries(const json_t *log, size_t first, char *buf, size_t size)
{
	size_t n = json_array_size(log), i, used = 0;
	char line[CONTAINER_EXCERPT_MAX];

	buf[0] = '\0';
	for (i = first; i < n; i++) {
		const json_t *e = json_array_get(log, i);
		const char *o = json_string_value(json_object_get(e, "Output"));
		int w;

		text_one_line(line, sizeof(line), o ? o : "", o ? strlen(o) : 0, 0);
		w = snprintf(buf + used, size - used, "%sexit %d: %s", used ? "; " : "",
			     get_int(e, "ExitCode"), line[0] ? line : "(no output)");
		if (w < 0 || (size_t)w >= size - used) {
			buf[0] = '\0';
			return -1;
		}
		used += (size_t)w;
	}
	return 0;
}

void container_health_log(const json_t *inspect, int entries, char *buf, size_t size)
{
	const json_t *log = json_object_get(json_object_get(json_object_get(inspect, "State"), "Health"),
					    "Log");
	size_t n = json_array_size(log), first;

	if (!size)
		return;
	buf[0] = '\0';
	/* The newest entries matter most: drop older ones until they fit. */
	for (first = n > (size_t)entries ? n - (size_t)entries : 0; first < n; first++)
		if (health_entries(log, first, buf, size) == 0)
			return;
}

int container_health_response_ok(long status, const char *body, size_t len)
{
	json_t *doc;
	const char *s;
	int ok = 1;

	if (status != 200)
		return 0;
	if (!body || !len)
		return 1;
	doc = json_loadb(body, len, 0, NULL);
	if (json_is_object(doc) && json_object_get(doc, "status")) {
		s = json_string_value(json_object_get(doc, "status"));
		ok = s && !strcasecmp(s, "ok");
	}
	json_decref(doc);
	return ok;
}

const char *container_ready_method_name(enum container_ready_method m)
{
	switch (m) {
	case CONTAINER_READY_NONE: return "none";
	case CONTAINER_READY_DOCKER_HEALTH: return "docker-health";
	case CONTAINER_READY_HTTP: return "http";
	case CONTAINER_READY_RUNNING: return "running";
	}
	return "none";
}

struct tail {
	char lines[CONTAINER_LOG_LINES * 4][301];
	int cap, count, next;
};

static int tail_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct tail *t = ud;

	(void)err;
	text_one_line(t->lines[t->next], sizeof(t->lines[0]), l->text, l->len, 0);
	t->next = (t->next + 1) % t->cap;
	if (t->count < t->cap)
		t->count++;
	return 0;
}

int container_log_tail(struct docker_client *d, const char *container, int n, double timeout,
		       char *buf, size_t size, struct st_error *err)
{
	struct docker_logs_opts o;
	struct tail *t = NULL;
	size_t used = 0, need;
	int rc, i, first;

	if (size)
		buf[0] = '\0';
	if (n <= 0 || !size)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	t->cap = n < (int)(sizeof(t->lines) / sizeof(t->lines[0])) ? n
		 : (int)(sizeof(t->lines) / sizeof(t->lines[0]));
	memset(&o, 0, sizeof(o));
	o.tail = t->cap;
	o.max_line = 4096;
	o.timeout = timeout;
	rc = docker_container_logs(d, container, &o, tail_line, t, err);
	if (rc)
		goto out;
	/* Newest last; drop the oldest lines when they do not all fit. */
	first = t->count;
	for (need = 0; first > 0; first--) {
		const char *l = t->lines[(t->next - t->count + first - 1 + t->cap) % t->cap];

		if (need + strlen(l) + 1 >= size)
			break;
		need += strlen(l) + 1;
	}
	for (i = first; i < t->count; i++) {
		const char *l = t->lines[(t->next - t->count + i + t->cap) % t->cap];

		used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "\n" : "", l);
	}
out:
	free(t);
	return rc;
}

/* The one rule for a health answer: 2xx or 3xx, and a 2xx body that is
 * a JSON object with a "status" must say ok. */
static int answer_healthy(long status, const char *body, size_t len)
{
	if (status >= 300 && status < 400)
		return 1;
	if (status < 200 || status >= 300)
		return 0;
	return container_health_response_ok(200, body, len);
}

static enum container_probe_verdict probe_url(const char *url, double timeout, struct container_wait_report *r)
{
	struct http_result res;
	struct st_error perr = { 0 };
	enum container_probe_verdict v;
	int rc;

	memset(&res, 0, sizeof(res));
	rc = http_probe(url, timeout, NULL, &res, &perr);
	/* The form without user:password and query: it goes into messages
	 * and the step's result. */
	text_copy(r->url, sizeof(r->url), res.url);
	r->http_status = rc ? 0 : res.status;
	if (rc) {
		snprintf(r->answer, sizeof(r->answer), "GET %.500s: no response", r->url);
		text_one_line(r->body, sizeof(r->body), res.error[0] ? res.error : perr.message,
			      strlen(res.error[0] ? res.error : perr.message), 0);
		v = CONTAINER_PROBE_NO_ANSWER;
	} else {
		snprintf(r->answer, sizeof(r->answer), "GET %.500s answered %ld", r->url, res.status);
		text_one_line(r->body, sizeof(r->body), res.body ? res.body : "", res.body_len, 0);
		v = answer_healthy(res.status, res.body, res.body_len) ? CONTAINER_PROBE_OK : CONTAINER_PROBE_BAD;
	}
	http_result_release(&res);
	return v;
}

/* A container that stopped or restarted: what it said last. */
static int fail_stopped(struct docker_client *d, const char *container,
			struct container_wait_report *r, int restarted, struct st_error *err)
{
	const struct container_state *s = &r->state;
	struct st_error lerr = { 0 };
	char what[256];
	const char *last;

	if (container_log_tail(d, container, CONTAINER_LOG_LINES, 10, r->logs, sizeof(r->logs), &lerr))
		snprintf(r->logs, sizeof(r->logs), "(logs unavailable: %s)", lerr.message);
	if (restarted && s->running && !s->restarting)
		/* Restarted already: Docker reset its exit code when it started
		 * it again (0 would be a lie); the last log line says why. */
		snprintf(what, sizeof(what), "restarted (restart count %d; it runs again, so Docker no longer "
			 "has its exit code)", s->restart_count);
	else if (restarted)
		snprintf(what, sizeof(what), "is restarting (restart count %d, last exit code %d%s)",
			 s->restart_count, s->exit_code, s->oom_killed ? ", OOMKilled" : "");
	else if (s->paused)
		snprintf(what, sizeof(what), "is paused");
	else if (!strcmp(s->status, "exited") || !strcmp(s->status, "dead"))
		snprintf(what, sizeof(what), "exited with code %d%s%s%.150s", s->exit_code,
			 s->oom_killed ? " (OOMKilled)" : "", s->error[0] ? ": " : "", s->error);
	else
		snprintf(what, sizeof(what), "is not running (status %s%s%.150s)", s->status,
			 s->error[0] ? ": " : "", s->error);
	snprintf(r->reason, sizeof(r->reason), "container '%s' %s", container, what);
	last = strrchr(r->logs, '\n');
	last = last ? last + 1 : r->logs;
	st_error_set(err, ST_EFAILED, "%s; last log line: %s", r->reason, last[0] ? last : "(none)");
	return st_error_hint(err, "spilttea-ops logs, or the last %d lines in the report; docker logs --tail %d %s",
			     CONTAINER_LOG_LINES, CONTAINER_LOG_LINES, container);
}

/* One look at the container: 0 with *ready (Docker's side of it) and
 * *probe (whether the URL or probe is to be asked now), or a failure. */
static int look(struct docker_client *d, const char *container, const struct container_wait_opts *o,
		int have_probe, int *base_restarts, struct container_wait_report *r, int *ready, int *probe,
		struct st_error *err)
{
	json_t *inspect = NULL;
	int rc;

	*ready = 0;
	*probe = 0;
	r->checks++;
	rc = docker_container_inspect(d, container, DOCKER_TIMEOUT_DEFAULT, &inspect, err);
	if (rc == ST_ENOTFOUND) {
		snprintf(r->reason, sizeof(r->reason), "container '%s' does not exist", container);
		st_error_set(err, ST_ENOTFOUND, "%s", r->reason);
		st_error_hint(err, "'spilttea-ops config show' gives services.*.container: "
			      "is the name right, and was the container created?");
		goto out;
	}
	if (rc || (rc = container_state_parse(inspect, &r->state, err)) != 0)
		goto out;
	if (*base_restarts < 0)
		*base_restarts = r->state.restart_count;
	if (!r->state.running || r->state.paused || r->state.restarting ||
	    r->state.restart_count > *base_restarts) {
		rc = fail_stopped(d, container, r, r->state.restarting || r->state.restart_count > *base_restarts,
				  err);
		goto out;
	}
	if (r->state.has_healthcheck) {
		r->method = CONTAINER_READY_DOCKER_HEALTH;
		container_health_log(inspect, 3, r->health_log, sizeof(r->health_log));
		if (!strcmp(r->state.health, "unhealthy")) {
			snprintf(r->reason, sizeof(r->reason), "container '%.128s' is unhealthy: %.600s",
				 container, r->health_log[0] ? r->health_log : "(no health log)");
			st_error_set(err, ST_EFAILED, "%s", r->reason);
			rc = st_error_hint(err, "docker inspect --format '{{json .State.Health}}' %s", container);
			goto out;
		}
		*ready = !strcmp(r->state.health, "healthy");
		*probe = have_probe && o->url_and_health;
		if (!*ready)
			snprintf(r->reason, sizeof(r->reason), "container '%.128s' health is '%s'%s%.580s",
				 container, r->state.health, r->health_log[0] ? ": " : "", r->health_log);
	} else if (have_probe) {
		r->method = CONTAINER_READY_HTTP;
		*ready = 1;
		*probe = 1;
	} else {
		double age = time_wall() - r->state.started;

		r->method = CONTAINER_READY_RUNNING;
		*ready = r->state.started > 0 && age >= CONTAINER_SETTLE_S;
		if (!*ready)
			snprintf(r->reason, sizeof(r->reason), "container '%s' has run for %.1fs, less than %.0fs",
				 container, age > 0 ? age : 0, CONTAINER_SETTLE_S);
	}
out:
	json_decref(inspect);
	return rc;
}

int container_wait(struct docker_client *d, const char *container, const struct container_wait_opts *o,
		   struct container_wait_report *report, struct st_error *err)
{
	struct container_wait_report local;
	struct container_wait_report *r = report ? report : &local;
	const char *url = o->health_url && *o->health_url ? o->health_url : NULL;
	double t0 = time_monotonic(), interval = o->interval_s > 0 ? o->interval_s : 1;
	double timeout = o->timeout_s > 0 ? o->timeout_s : 0, deadline = t0 + timeout;
	int rc = 0, base_restarts = -1, have_probe = url || o->probe;
	char dur[32];

	memset(r, 0, sizeof(*r));
	if (!container && !have_probe)
		return st_error_set(err, ST_EUSAGE, "nothing to wait for: no container, health URL or probe");
	for (;;) {
		enum container_probe_verdict v = CONTAINER_PROBE_OK;
		int ready = 1, probe = 1;

		if (container &&
		    (rc = look(d, container, o, have_probe, &base_restarts, r, &ready, &probe, err)) != 0) {
			/* A daemon that does not answer is ST_ETIMEOUT too, and the
			 * reason of an earlier round (or none) would hide it. */
			if (rc == ST_ETIMEOUT)
				snprintf(r->reason, sizeof(r->reason), "%.700s", err->message);
			goto out;
		}
		if (!container)
			r->method = CONTAINER_READY_HTTP;
		if (probe) {
			double left = deadline - time_monotonic();
			double pt = left < 0.5 ? 0.5 : left > 5 ? 5 : left;

			r->answer[0] = r->body[0] = '\0';
			r->http_status = 0;
			v = o->probe ? o->probe(o->probe_ud, pt, r) : probe_url(url, pt, r);
			r->probes++;
			r->bad_in_row = v == CONTAINER_PROBE_BAD ? r->bad_in_row + 1 : 0;
			if (v != CONTAINER_PROBE_OK) {
				int n = snprintf(r->reason, sizeof(r->reason), "%.500s%s%.200s", r->answer,
						 r->body[0] || v == CONTAINER_PROBE_BAD ? ": " : "",
						 r->body[0] ? r->body : v == CONTAINER_PROBE_BAD ? "(empty body)" : "");

				/* Docker's side too, when it is not ready either. */
				if (!ready && n > 0 && (size_t)n < sizeof(r->reason))
					snprintf(r->reason + n, sizeof(r->reason) - (size_t)n, "; docker health: %s%s%.200s",
						 r->state.health, r->health_log[0] ? ", last probes: " : "", r->health_log);
			}
			if (o->fail_after > 0 && r->bad_in_row >= o->fail_after) {
				size_t alen = strlen(r->answer);
				/* "GET URL answered 500 3 times in a row (after 1.5s): BODY..." */
				const char *rest = !strncmp(r->reason, r->answer, alen) ? r->reason + alen : "";

				rc = st_error_set(err, ST_EFAILED, "%.500s %d times in a row (after %s)%s", r->answer,
						  r->bad_in_row,
						  time_format_duration(time_monotonic() - t0, dur, sizeof(dur)), rest);
				if (container)
					st_error_hint(err, "see its logs: docker logs %s", container);
				goto out;
			}
		}
		if (ready && v == CONTAINER_PROBE_OK)
			break;
		if (time_monotonic() + interval > deadline) {
			rc = st_error_set(err, ST_ETIMEOUT, "not ready within %s: %s",
					  time_format_duration(timeout, dur, sizeof(dur)), r->reason);
			if (container)
				st_error_hint(err, "docker logs --tail %d %s", CONTAINER_LOG_LINES, container);
			goto out;
		}
		if (time_sleep_cancellable(interval, o->cancel)) {
			rc = st_error_set(err, ST_EABORTED, "interrupted while waiting for %s%s%s",
					  container ? "container '" : "", container ? container : r->answer,
					  container ? "'" : "");
			goto out;
		}
	}
	r->ready = 1;
	r->reason[0] = '\0';
out:
	r->waited_s = time_monotonic() - t0;
	return rc;
}

int container_wait_ready_cancel(struct docker_client *d, const char *container,
				const char *health_url, double timeout_s, double interval_s,
				volatile sig_atomic_t *cancel, struct container_wait_report *report,
				struct st_error *err)
{
	struct container_wait_opts o;

	memset(&o, 0, sizeof(o));
	o.health_url = health_url;
	o.timeout_s = timeout_s;
	o.interval_s = interval_s;
	o.cancel = cancel;
	return container_wait(d, container, &o, report, err);
}

int container_wait_ready(struct docker_client *d, const char *container, const char *health_url,
			 double timeout_s, double interval_s, struct container_wait_report *report,
			 struct st_error *err)
{
	return container_wait_ready_cancel(d, container, health_url, timeout_s, interval_s, NULL,
					   report, err);
}
