/*
 * deploy_bluegreen.c - the blue/green strategy: the runbook's
 * "Zero-Downtime Deployment Strategy" through the reverse proxy
 * (lib/proxy.h). The default for the service behind the proxy.
 *
 * The service alternates between two ports, proxy.blue_port and
 * proxy.green_port (it reads its port from PORT). Ops, each journaled as
 * an engine step (deploy.h):
 *
 *   start    the new release beside the old one, as NAME-blue or
 *            NAME-green on the port the proxy does not route to now
 *            (undo: remove it)
 *   gate     health gate on the new container, at its own port
 *   logs     scan its first seconds of logs for errors
 *   switch   point the proxy's upstream at it: write, nginx -t, graceful
 *            reload, confirmed once the old workers stopped taking
 *            connections and the proxy answers from the new upstream
 *            (undo: switch back to the old port and let the proxy drain)
 *   watch    for proxy.watch seconds: the service answers 2xx through the
 *            proxy from the new upstream, the new container keeps running,
 *            and the 5xx share of its requests in the proxy's access log
 *            stays below thresholds.error_rate_percent.crit
 *   cutover  wait until the proxy's old workers finished the requests they
 *            held (proxy.drain_timeout), stop and remove the old container,
 *            and give the new one the service's name
 *
 * Any failure up to and including watch undoes in reverse: the proxy goes
 * back to the old container, which never stopped, and the new one is
 * removed. The next deploy starts on the other port: ports alternate.
 *
 * A run that died between switch and cutover leaves the proxy on the new
 * container, still named NAME-COLOUR, and the service's name on the old
 * one, which takes no traffic but holds the other port. The next run's
 * start finishes that cutover first (drain, remove the old NAME, rename
 * NAME-COLOUR to NAME) and then deploys as usual; without that its new
 * container could not bind the port the stale one holds.
 *
 * Once cutover starts stopping the old container, the new one is the only
 * one that can serve: nothing after that point fails the cutover (what
 * could not be removed or renamed is a notice, and the next run finishes
 * it), and the undos of switch and start refuse to route back to, or
 * remove, the only container left.
 */
#include "deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "container.h"
#include "proxy.h"
#include "timeutil.h"

struct bluegreen {
	long old_port;                  /* where the proxy routed at the start, 0: nowhere known */
	long new_port;
	char colour[8];                 /* of the new container: "blue" or "green" */
	char new_name[256];             /* NAME-COLOUR while it runs beside the old one */
	char new_url[600];              /* its health URL at its own port, "" without one */
	char path[512];                 /* health path through the proxy */
	int switched;                   /* the proxy routes to the new container */
	double t_switched_wall;         /* epoch seconds the switch was confirmed */
	int committed;                  /* cutover began stopping the old container: the new
					   one is all that serves, nothing may route away from
					   it or remove it */
};

static int oom(struct st_error *err)
{
	return st_error_set(err, ST_ENOMEM, "out of memory");
}

static struct bluegreen *state(struct deploy_target *t)
{
	if (!t->strategy_state)
		t->strategy_state = calloc(1, sizeof(struct bluegreen));
	return t->strategy_state;
}

static void bg_release(struct deploy_target *t)
{
	free(t->strategy_state);
	t->strategy_state = NULL;
}

static int bg_is_default(const struct deploy_run *run, const struct deploy_target *t)
{
	const struct config_proxy *p = &run->cfg->proxy;

	return p->container && p->service && !strcmp(p->service, t->service);
}

static int bg_check(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	const struct config_proxy *p = &run->cfg->proxy;

	if (!p->container) {
		st_error_set(err, ST_EUSAGE, "blue-green needs a reverse proxy: the configuration has no proxy "
			     "section");
		return st_error_hint(err, "deploy with --strategy recreate, or configure proxy: (see "
				     "config.example.yaml)");
	}
	if (strcmp(p->service, t->service)) {
		st_error_set(err, ST_EUSAGE, "blue-green: the proxy fronts '%s', not '%s'", p->service, t->service);
		return st_error_hint(err, "deploy %s with --strategy recreate", t->service);
	}
	return 0;
}

/* PORT in the Env of an inspect document, 0 when absent. */
static long env_port(const json_t *inspect)
{
	const json_t *env = json_object_get(json_object_get(inspect, "Config"), "Env");
	size_t i;

	for (i = 0; i < json_array_size(env); i++) {
		const char *e = json_string_value(json_array_get(env, i));
		if (e && !strncmp(e, "PORT=", 5))
			return strtol(e + 5, NULL, 10);
	}
	return 0;
}

static int result_obj(json_t **result, json_t *obj, struct st_error *err)
{
	*result = obj;
	return obj ? 0 : oom(err);
}

/* Inspect, with "does not exist" as *out NULL and no error. */
static int inspect_opt(struct docker_client *d, const char *name, json_t **out, struct st_error *err)
{
	int rc = docker_container_inspect(d, name, DOCKER_TIMEOUT_DEFAULT, out, err);

	if (rc == ST_ENOTFOUND) {
		st_error_clear(err);
		*out = NULL;
		return 0;
	}
	return rc;
}

/* ---- start ---------------------------------------------------------------------- */

/*
 * A run that died between its switch and its cutover: the proxy routes to
 * upstream_port, served by a running NAME-<colour of that port>, while NAME
 * is absent or the old container on the other port (no traffic). Finishes
 * that cutover: drain, remove the stale NAME, rename the live one to NAME.
 * Nothing to do (0) in every other state.
 */
static int bg_finish_interrupted(struct deploy_run *run, struct deploy_target *t, long upstream_port,
				 struct st_error *err)
{
	const struct config_proxy *p = &run->cfg->proxy;
	struct docker_client *d = deploy_docker(run);
	json_t *live = NULL, *named = NULL;
	struct st_error e2 = { 0 };
	char live_name[256];
	int rc;

	if (upstream_port != p->blue_port && upstream_port != p->green_port)
		return 0;
	snprintf(live_name, sizeof(live_name), "%s-%s", t->container,
		 upstream_port == p->blue_port ? "blue" : "green");
	if ((rc = inspect_opt(d, live_name, &live, err)) != 0)
		goto out;
	if (!live || !json_is_true(json_object_get(json_object_get(live, "State"), "Running")) ||
	    env_port(live) != upstream_port)
		goto out;
	if ((rc = inspect_opt(d, t->container, &named, err)) != 0)
		goto out;
	if (named && env_port(named) == upstream_port)
		goto out;   /* both claim the port: not a state a deploy leaves; not ours to judge */
	deploy_notice(run, "a deploy that stopped between its switch and cutover left %s serving (port %ld)%s%s: "
		      "finishing that cutover first", live_name, upstream_port,
		      named ? " and the old container under the name " : "", named ? t->container : "");
	if (named) {
		if (proxy_wait_drained(d, p, p->drain_timeout, NULL, &e2) != 0)
			deploy_notice(run, "%s; removing the old container anyway", e2.message);
		if ((rc = deploy_remove_container(run, json_string_value(json_object_get(named, "Id")), err)) != 0) {
			st_error_wrap(err, "cannot remove the stale container '%s' (port %ld, no traffic)",
				      t->container, env_port(named));
			goto out;
		}
	}
	if ((rc = docker_container_rename(d, live_name, t->container, DOCKER_TIMEOUT_DEFAULT, err)) != 0) {
		st_error_wrap(err, "%s serves, but cannot take the name '%s'", live_name, t->container);
		st_error_hint(err, "docker rename %s %s", live_name, t->container);
		goto out;
	}
	/* What runs before this deploy is the interrupted one's release. */
	free(t->previous_image_id);
	t->previous_image_id = NULL;
	if (json_string_value(json_object_get(live, "Image")) &&
	    !(t->previous_image_id = strdup(json_string_value(json_object_get(live, "Image")))))
		rc = oom(err);
out:
	json_decref(live);
	json_decref(named);
	return rc;
}

static int bg_start(struct deploy_run *run, struct deploy_target *t, json_t **result, struct st_error *err)
{
	const struct config_proxy *p = &run->cfg->proxy;
	struct docker_client *d = deploy_docker(run);
	struct bluegreen *bg = state(t);
	json_t *cur = NULL, *img = NULL, *body = NULL;
	struct st_error e2 = { 0 };
	char port_text[16], *id = NULL;
	int rc;

	if (!bg)
		return oom(err);
	/* Where traffic goes now: the upstream file is the truth; the old
	 * container's PORT when the file says nothing we can read. */
	if (proxy_current_port(p, &bg->old_port, &e2) != 0)
		bg->old_port = 0;
	else if ((rc = bg_finish_interrupted(run, t, bg->old_port, err)) != 0)
		goto out;
	/* The container as it is now (the plan's inspect may be stale). */
	rc = docker_container_inspect(d, t->container, DOCKER_TIMEOUT_DEFAULT, &cur, err);
	if (rc == ST_ENOTFOUND) {
		st_error_clear(err);
		cur = NULL;
	} else if (rc) {
		goto out;
	}
	if (cur) {
		const char *image_id = json_string_value(json_object_get(cur, "Image"));

		json_decref(t->old_inspect);
		t->old_inspect = json_incref(cur);
		if (image_id && (rc = docker_image_inspect(d, image_id, DOCKER_TIMEOUT_DEFAULT, &img, err)) != 0 &&
		    rc != ST_ENOTFOUND)
			goto out;
		rc = 0;
		json_decref(t->old_image_inspect);
		t->old_image_inspect = img;
		img = NULL;
		free(t->old_container);
		if (!(t->old_container = strdup(json_string_value(json_object_get(cur, "Id"))))) {
			rc = oom(err);
			goto out;
		}
	}
	if (!bg->old_port)
		bg->old_port = cur ? env_port(cur) : 0;
	bg->new_port = bg->old_port == p->blue_port ? p->green_port : p->blue_port;
	snprintf(bg->colour, sizeof(bg->colour), "%s", bg->new_port == p->blue_port ? "blue" : "green");
	snprintf(bg->new_name, sizeof(bg->new_name), "%s-%s", t->container, bg->colour);
	snprintf(bg->path, sizeof(bg->path), "%s", t->health_url ? proxy_url_path(t->health_url) : "/");
	/* The new container is probed where the proxy will reach it: its own
	 * address and port, the health URL's path (health_url itself may well
	 * point at the proxy, the one address that stays valid). */
	bg->new_url[0] = '\0';
	if (t->health_url)
		snprintf(bg->new_url, sizeof(bg->new_url), "http://%s%s%s:%ld%s",
			 strchr(p->upstream_host, ':') ? "[" : "", p->upstream_host,
			 strchr(p->upstream_host, ':') ? "]" : "", bg->new_port, bg->path);

	if ((rc = deploy_create_body(run, t, t->image_ref ? t->image_ref : t->image_id, &body, err)) != 0)
		goto out;
	snprintf(port_text, sizeof(port_text), "%ld", bg->new_port);
	if ((rc = deploy_body_set_env(body, "PORT", port_text, err)) != 0)
		goto out;
	/* Left by a run that died before its cutover: it takes no traffic
	 * (the proxy routes to the other port), so it goes. */
	if ((rc = docker_container_remove(d, bg->new_name, 1, 0, DOCKER_TIMEOUT_DEFAULT, err)) != 0 &&
	    rc != ST_ENOTFOUND)
		goto out;
	if ((rc = docker_container_create(d, bg->new_name, body, DOCKER_TIMEOUT_DEFAULT, &id, err)) != 0)
		goto out;
	free(t->new_container);
	t->new_container = id;
	id = NULL;
	t->t_started = time_monotonic();
	if ((rc = docker_container_start(d, t->new_container, DOCKER_TIMEOUT_DEFAULT, err)) != 0)
		goto out;
	deploy_notice(run, "started %s on port %ld beside %s (port %ld)", bg->new_name, bg->new_port,
		      t->container, bg->old_port);
	rc = result_obj(result, json_pack("{s:s, s:s, s:i, s:i}", "container", bg->new_name, "colour", bg->colour,
					  "port", (int)bg->new_port, "old_port", (int)bg->old_port), err);
out:
	free(id);
	json_decref(body);
	json_decref(cur);
	json_decref(img);
	return rc;
}

static int bg_start_undo(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	struct bluegreen *bg = state(t);
	int rc;

	if (!t->new_container)
		return 0;
	if (bg && bg->committed) {
		st_error_set(err, ST_ECONFLICT, "not removing %s: the old container was stopped at cutover and "
			     "it is the only one serving '%s'", bg->new_name, t->service);
		return st_error_hint(err, "roll back with a new deploy: spilttea-ops rollback %s", t->service);
	}
	rc = docker_container_remove(deploy_docker(run), t->new_container, 1, 0, DOCKER_TIMEOUT_DEFAULT, err);
	if (rc && rc != ST_ENOTFOUND)
		return rc;
	free(t->new_container);
	t->new_container = NULL;
	return 0;
}

/* ---- gate, logs ------------------------------------------------------------------------ */

static int bg_gate(struct deploy_run *run, struct deploy_target *t, json_t **result, struct st_error *err)
{
	struct bluegreen *bg = state(t);
	struct deploy_gate_report rep;
	int rc;

	rc = deploy_gate(run, t, bg->new_name, bg->new_url[0] ? bg->new_url : NULL, &rep, err);
	if (rc)
		return rc;
	t->t_ready = time_monotonic() - t->t_started;
	return result_obj(result, json_pack("{s:f, s:s?, s:I, s:s?}", "waited", rep.waited, "url",
					    *rep.url ? rep.url : NULL, "status", (json_int_t)rep.status,
					    "docker_health", *rep.docker_health ? rep.docker_health : NULL), err);
}

static int bg_logs(struct deploy_run *run, struct deploy_target *t, json_t **result, struct st_error *err)
{
	struct bluegreen *bg = state(t);
	int rc = deploy_scan_logs(run, t, bg->new_name, err);

	if (rc)
		return rc;
	return result_obj(result, json_pack("{s:f}", "scanned_seconds", run->cfg->deploy.log_scan), err);
}

/* ---- switch ------------------------------------------------------------------------------ */

static int bg_switch(struct deploy_run *run, struct deploy_target *t, json_t **result, struct st_error *err)
{
	struct bluegreen *bg = state(t);
	struct proxy_switch_result sw;
	char dur[32];
	int rc;

	rc = proxy_switch(deploy_docker(run), &run->cfg->proxy, bg->new_port, bg->new_name, bg->path,
			  run->cfg->deploy.health_timeout, run->cancel, &sw, err);
	if (rc) {
		st_error_wrap(err, "switching the proxy to %s failed (it serves from the old container again)",
			      bg->new_name);
		return rc;
	}
	bg->switched = 1;
	bg->t_switched_wall = time_wall();
	t->t_live = sw.t_confirmed;
	deploy_notice(run, "proxy switched to %s (port %ld) %s after the deploy began%s", bg->new_name,
		      bg->new_port, time_format_duration(sw.t_confirmed - t->t_start, dur, sizeof(dur)),
		      sw.confirmed_by_header ? "" : " (the proxy names no upstream: confirmed by status only)");
	return result_obj(result, json_pack("{s:i, s:i, s:f, s:f, s:b}", "from_port", (int)bg->old_port,
					    "to_port", (int)bg->new_port, "reload_seconds",
					    sw.t_reloaded - sw.t_written, "cutover_after", sw.t_confirmed - t->t_start,
					    "confirmed_by_header", sw.confirmed_by_header), err);
}

static int bg_switch_undo(struct deploy_run *run, struct deploy_target *t, struct st_error *err)
{
	const struct config_proxy *p = &run->cfg->proxy;
	struct bluegreen *bg = state(t);
	int rc;

	if (!bg->switched)
		return 0;
	if (bg->committed) {
		st_error_set(err, ST_ECONFLICT, "the old container was stopped at cutover: %s keeps serving on "
			     "port %ld, there is nothing to switch back to", bg->new_name, bg->new_port);
		return st_error_hint(err, "roll back with a new deploy: spilttea-ops rollback %s", t->service);
	}
	if (!bg->old_port) {
		/* Nothing served before this deploy: nothing to route back to. */
		bg->switched = 0;
		return 0;
	}
	rc = proxy_switch(deploy_docker(run), p, bg->old_port, t->container, bg->path,
			  run->cfg->deploy.health_timeout, run->cancel, NULL, err);
	if (rc) {
		st_error_wrap(err, "switching the proxy back to %s (port %ld) failed", t->container, bg->old_port);
		return rc;
	}
	bg->switched = 0;
	deploy_notice(run, "proxy switched back to %s (port %ld)", t->container, bg->old_port);
	/* The new container goes next (start's undo): first let the workers
	 * that still hold its requests finish them. */
	return proxy_wait_drained(deploy_docker(run), p, p->drain_timeout, NULL, err);
}

/* ---- watch --------------------------------------------------------------------------------- */

struct log_count {
	const char *upstream;
	struct proxy_log_stats st;
};

static int count_line(void *ud, const struct docker_log_line *l, struct st_error *err)
{
	struct log_count *c = ud;

	(void)err;
	proxy_log_count(l->text, l->len, c->upstream, &c->st);
	return 0;
}

static int bg_watch(struct deploy_run *run, struct deploy_target *t, json_t **result, struct st_error *err)
{
	const struct config_proxy *p = &run->cfg->proxy;
	struct docker_client *d = deploy_docker(run);
	struct bluegreen *bg = state(t);
	struct log_count lc;
	char want[160], dur[32];
	double end = time_monotonic() + p->watch;
	double crit = run->cfg->thresholds.error_rate_percent.crit, pct = 0;
	size_t probes = 0;
	int rc = 0;

	snprintf(want, sizeof(want), "%s:%ld", p->upstream_host, bg->new_port);
	do {
		struct proxy_answer ans;
		struct container_state cs;

		if (deploy_cancelled(run))
			return st_error_set(err, ST_EABORTED, "interrupted while watching %s", bg->new_name);
		if ((rc = container_state(d, t->new_container, DOCKER_TIMEOUT_DEFAULT, &cs, err)) != 0)
			return rc;
		if (!cs.running || cs.restarting)
			return st_error_set(err, ST_EFAILED, "%s stopped %s after taking traffic (%s, exit %d)",
					    bg->new_name,
					    time_format_duration(time_wall() - bg->t_switched_wall, dur, sizeof(dur)),
					    cs.status, cs.exit_code);
		if ((rc = proxy_request(p, bg->path, 5, &ans, err)) != 0) {
			st_error_wrap(err, "watching %s through the proxy", bg->new_name);
			return rc;
		}
		probes++;
		if (ans.status < 200 || ans.status >= 300 || (ans.upstream[0] && strcmp(ans.upstream, want)))
			/* The path without its query: tokens travel there. */
			return st_error_set(err, ST_EFAILED, "through the proxy, %s%.*s answered %ld%s%s while "
					    "watching %s", p->url, (int)strcspn(bg->path, "?#"), bg->path, ans.status,
					    ans.upstream[0] ? " from " : "", ans.upstream, bg->new_name);
		if (time_monotonic() < end)
			time_sleep(0.5);
	} while (time_monotonic() < end);

	/* The proxy's access log since the switch: 5xx answered by the new
	 * upstream, against the error-rate threshold. */
	memset(&lc, 0, sizeof(lc));
	lc.upstream = want;
	{
		struct docker_logs_opts o = { .since = bg->t_switched_wall - 0.001, .no_stderr = 1, .timeout = 30 };
		struct st_error lerr = { 0 };

		if (docker_container_logs(d, p->container, &o, count_line, &lc, &lerr) != 0)
			deploy_notice(run, "cannot read the proxy's access log: %s", lerr.message);
	}
	if (lc.st.to_upstream)
		pct = 100.0 * (double)lc.st.errors_upstream / (double)lc.st.to_upstream;
	if (lc.st.errors_upstream && pct > crit)
		return st_error_set(err, ST_EFAILED, "%zu of %zu requests through the proxy to %s answered 5xx "
				    "(%.1f%%, over thresholds.error_rate_percent.crit %.1f%%) within %s of the switch",
				    lc.st.errors_upstream, lc.st.to_upstream, bg->new_name, pct, crit,
				    time_format_duration(time_wall() - bg->t_switched_wall, dur, sizeof(dur)));
	return result_obj(result, json_pack("{s:f, s:i, s:i, s:i}", "watched_seconds", p->watch, "probes",
					    (int)probes, "requests", (int)lc.st.to_upstream, "errors_5xx",
					    (int)lc.st.errors_upstream), err);
}

/* ---- cutover ------------------------------------------------------------------------------- */

static int bg_cutover(struct deploy_run *run, struct deploy_target *t, json_t **result, struct st_error *err)
{
	const struct config_proxy *p = &run->cfg->proxy;
	struct docker_client *d = deploy_docker(run);
	struct bluegreen *bg = state(t);
	struct st_error e2 = { 0 };
	size_t left = 0;
	double t0 = time_monotonic();
	int removed = 1, renamed = 1;

	/* Requests the old workers still hold go to the old container: it
	 * stays until they are done. */
	if (proxy_wait_drained(d, p, p->drain_timeout, &left, &e2) != 0)
		deploy_notice(run, "%s; stopping the old container anyway", e2.message);
	/* The commit point: from here on the new container is the one that
	 * serves, whatever fails. Failing the step would make the engine undo
	 * the switch (to a port nothing listens on) and then remove the new
	 * container: a full outage. What is left undone is a notice, and the
	 * next deploy finishes it (bg_finish_interrupted). */
	bg->committed = 1;
	if (t->old_container) {
		st_error_clear(&e2);
		if (deploy_remove_container(run, t->old_container, &e2) != 0) {
			removed = 0;
			deploy_notice(run, "%s serves, but the old container of '%s' could not be removed: %s "
				      "(the next deploy removes it, or: docker rm -f %.12s)", bg->new_name, t->service,
				      e2.message, t->old_container);
		} else {
			free(t->old_container);
			t->old_container = NULL;
		}
	}
	st_error_clear(&e2);
	if (docker_container_rename(d, t->new_container, t->container, DOCKER_TIMEOUT_DEFAULT, &e2) != 0) {
		renamed = 0;
		deploy_notice(run, "%s serves, but cannot take the name '%s': %s (the next deploy renames it, "
			      "or: docker rename %s %s)", bg->new_name, t->container, e2.message, bg->new_name,
			      t->container);
	}
	return result_obj(result, json_pack("{s:s, s:i, s:f, s:i, s:b, s:b}", "container",
					    renamed ? t->container : bg->new_name, "port", (int)bg->new_port,
					    "drain_seconds", time_monotonic() - t0, "draining_left", (int)left,
					    "old_removed", removed, "renamed", renamed), err);
}

static const struct deploy_op bluegreen_ops[] = {
	{ "start", "start the new release beside the old one on the other port", bg_start, bg_start_undo },
	{ "gate", "wait until the new container is running and healthy", bg_gate, NULL },
	{ "logs", "scan the new container's first logs for errors", bg_logs, NULL },
	{ "switch", "point the proxy at the new container (nginx -t, graceful reload)", bg_switch,
	  bg_switch_undo },
	{ "watch", "watch health and errors through the proxy", bg_watch, NULL },
	{ "cutover", "let the proxy drain, remove the old container, rename the new one", bg_cutover, NULL },
	{ NULL, NULL, NULL, NULL },
};

const struct deploy_strategy deploy_bluegreen = {
	.name = "blue-green",
	.summary = "start the new release beside the old one, switch the proxy, then remove the old (no downtime)",
	.is_default = bg_is_default,
	.check = bg_check,
	.ops = bluegreen_ops,
	.release = bg_release,
};
