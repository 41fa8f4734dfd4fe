/*
 * health_checks.c - the tasks behind `spilttea-ops health`: configuration
 * glue, I/O through the clients, judgement through health_eval.c.
 *
 * Every task argument is a private copy of the configuration it needs (see
 * health_checks.h for why), and every blocking call gets the task's
 * remaining time as its timeout.
 */
#include "health_checks.h"
#include "atomic_file.h"
#include "cgroup_stats.h"
#include "docker.h"
#include "health_eval.h"
#include "http.h"
#include "pg.h"
#include "pgstat.h"
#include "redis.h"
#include "sbuf.h"
#include "timeutil.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* ---- small helpers ------------------------------------------------------ */

/* Seconds left before the task's deadline; never 0 so that no client reads
 * 0 as "no limit". */
static double remaining(const struct health_task_run *run)
{
	double r = run->deadline - time_monotonic();

	return r > 0.01 ? r : 0.01;
}

static double min_d(double a, double b)
{
	return a < b ? a : b;
}

static struct health_threshold th_of(const struct config_threshold *t)
{
	struct health_threshold th = { t->warn, t->crit, 1, 1 };

	return th;
}

/* Sets results from..end of the run to status + message (a failure that
 * leaves the remaining checks of the task without an answer). */
static void fail_rest(struct health_task_run *run, size_t from, int status, const char *msg)
{
	size_t i;

	for (i = from; i < run->n_results; i++)
		health_result_set(&run->results[i], status, "%s", msg);
}

/* Marks result i done now (its duration is the time since t0). */
static void done_at(struct health_task_run *run, size_t i, double t0)
{
	if (i < run->n_results)
		run->results[i].duration = time_monotonic() - t0;
}

/* A copy of where a secret lives (never the secret): the task reads it
 * itself, when it needs it, with config_read_secret(). */
static int secret_copy(struct config_secret *dst, const struct config_secret *src)
{
	dst->kind = src->kind;
	dst->ref = src->ref ? strdup(src->ref) : NULL;
	dst->key = src->key ? strdup(src->key) : NULL;
	if ((src->ref && !dst->ref) || (src->key && !dst->key))
		return ST_ENOMEM;
	return 0;
}

static void secret_release(struct config_secret *s)
{
	free(s->ref);
	free(s->key);
}

static struct docker_client *docker_for(const char *host, struct health_task_run *run,
					 struct st_error *err)
{
	struct docker_client *c = NULL;

	if (docker_client_new(host, &c, err) != 0)
		return NULL;
	docker_client_set_timeouts(c, remaining(run), remaining(run));
	return c;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct http_arg {
	char *url;
	int backend;
	struct health_threshold th;
};

static void free_http_arg(void *p)
{
	struct http_arg *a = p;

	free(a->url);
	free(a);
}

static void task_http(void *p, struct health_task_run *run)
{
	struct http_arg *a = p;
	struct http_result res;
	struct st_error err;
	const char *failure = NULL;
	char *shown = health_url_for_display(a->url);
	int rc;

	memset(&res, 0, sizeof(res));
	st_error_clear(&err);
	rc = http_probe(a->url, remaining(run), NULL, &res, &err);
	if (rc)
		failure = res.error[0] ? res.error : err.message;
	if (a->backend)
		rc = health_eval_backend(&run->results[0], shown ? shown : "the health URL", res.status,
					 res.body, res.latency_s, failure, &a->th);
	else
		rc = health_eval_frontend(&run->results[0], shown ? shown : "the frontend URL",
					  res.status, res.latency_s, failure, &a->th);
	if (rc)
		health_result_set(&run->results[0], HEALTH_UNKNOWN, "out of memory");
	http_result_release(&res);
	free(shown);
}

/* ---- one container ------------------------------------------------------- */

struct container_arg {
	char *docker_host;
	char *container;
};

static void free_container_arg(void *p)
{
	struct container_arg *a = p;

	free(a->docker_host);
	free(a->container);
	free(a);
}

static void task_container(void *p, struct health_task_run *run)
{
	struct container_arg *a = p;
	struct docker_client *c;
	struct st_error err;
	json_t *insp = NULL;
	int rc;

	st_error_clear(&err);
	c = docker_for(a->docker_host, run, &err);
	if (!c) {
		health_result_set(&run->results[0], HEALTH_UNKNOWN, "%s", err.message);
		return;
	}
	rc = docker_container_inspect(c, a->container, remaining(run), &insp, &err);
	if (rc == ST_ENOTFOUND)
		health_result_set(&run->results[0], HEALTH_CRITICAL, "no container named '%s'",
				  a->container);
	else if (rc)
		health_result_set(&run->results[0], HEALTH_CRITICAL, "%s", err.message);
	else if (health_eval_container(&run->results[0], a->container, insp, run->prev_state,
				       time_wall(), &run->state))
		health_result_set(&run->results[0], HEALTH_UNKNOWN, "out of memory");
	json_decref(insp);
	docker_client_free(c);
}

/* ---- stats of every container ---------------------------------------------- */

struct stats_arg {
	char *docker_host;
	char **containers;
	size_t n;
	struct health_threshold cpu, mem;
};

static void free_stats_arg(void *p)
{
	struct stats_arg *a = p;
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->containers[i]);
	free(a->containers);
	free(a->docker_host);
	free(a);
}

/* One container's sampling, on its own thread. The fast path reads the
 * container's cgroup files (cgroup_stats.h) when the daemon runs on this
 * host: figures at once instead of at the daemon's next stats tick. Else
 * every container's first API call goes out at once so they share a daemon
 * tick; a container without a usable kept sample asks again right away,
 * which the daemon answers at its next tick. */
struct sampler {
	struct docker_client *c;       /* shared, thread-safe */
	const char *container;         /* borrowed from the task argument */
	struct health_task_run *run;   /* for the deadline */
	struct health_stats_sample kept; /* from the previous run */
	int have_kept;
	pthread_t thread;
	int started;
	int rc;                        /* of the last stats call */
	struct st_error err;
	struct health_stats_sample first, cur;
	double first_done, cur_done;   /* monotonic arrival times */
	int used_kept;                 /* CPU% is against kept, not first */
	int from_cgroup;               /* first came from the cgroup files */
};

/* The cgroup fast path: the running container's full id from inspect,
 * then its cgroup files. Non-zero whenever the API must answer instead
 * (not on this host, not running, gone): the API path then gives the
 * canonical figures and errors. */
static int sample_cgroup(struct sampler *s, struct health_stats_sample *out)
{
	struct cgroup_roots roots = { "/sys/fs/cgroup", "/proc/stat", health_host_ram(), 0 };
	struct st_error ignored;
	json_t *j = NULL;
	const char *id;
	int rc;

	st_error_clear(&ignored);
	rc = docker_container_inspect(s->c, s->container, remaining(s->run), &j, &ignored);
	id = json_string_value(json_object_get(j, "Id"));
	if (rc || !id || !json_is_true(json_object_get(json_object_get(j, "State"), "Running"))) {
		rc = -1;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	rc = cgroup_stats_read(id, &roots, &out->s, &ignored);
	if (rc)
		goto out;
	out->at = out->s.read;
	snprintf(out->id, sizeof(out->id), "%s", id);
	out->running = 1;
out:
	json_decref(j);
	return rc;
}

static int sample_once(struct sampler *s, struct health_stats_sample *out, double *done)
{
	json_t *j = NULL;
	int rc;

	rc = docker_container_stats(s->c, s->container, remaining(s->run), &j, &s->err);
	*done = time_monotonic();
	if (!rc && health_stats_parse(j, time_wall(), out) != 0)
		rc = st_error_set(&s->err, ST_EPROTO, "stats of '%s' are not a stats object",
				  s->container);
	json_decref(j);
	return rc;
}

/* CPU% wants about a second between samples, as docker stats shows it */
#define CGROUP_CPU_WINDOW 1.0

static void *sampler_thread(void *p)
{
	struct sampler *s = p;
	double pct, wait;

	s->from_cgroup = sample_cgroup(s, &s->first) == 0;
	if (s->from_cgroup)
		s->first_done = time_monotonic();
	else
		s->rc = sample_once(s, &s->first, &s->first_done);
	s->cur = s->first;
	s->cur_done = s->first_done;
	if (s->rc || !s->first.running)
		return NULL;
	if (s->have_kept && s->first.at - s->kept.at <= HEALTH_STATS_MAX_AGE &&
	    health_cpu_percent(&s->kept, &s->first, &pct) == 0) {
		s->used_kept = 1;
		return NULL;
	}
	if (s->from_cgroup) {
		wait = min_d(CGROUP_CPU_WINDOW, remaining(s->run) - 0.05);
		if (wait > 0)
			time_sleep(wait);
		if (sample_cgroup(s, &s->cur) == 0) {
			s->cur_done = time_monotonic();
			return NULL;
		}
	}
	s->rc = sample_once(s, &s->cur, &s->cur_done);
	return NULL;
}

/* The previous run's samples that are still young enough, so a run that
 * samples only some containers (another configuration, --check) does not
 * drop the others'. Caller decrefs; NULL on ENOMEM. */
static json_t *kept_samples(const json_t *prev_state)
{
	const json_t *prev = json_object_get(prev_state, "samples");
	json_t *out = json_object(), *v;
	const char *k;
	double now = time_wall();

	json_object_foreach((json_t *)prev, k, v) {
		struct health_stats_sample smp;

		if (!out)
			break;
		if (health_stats_from_json(v, &smp) == 0 && now - smp.at <= HEALTH_STATS_MAX_AGE)
			json_object_set(out, k, v);
	}
	return out;
}

static void task_stats(void *p, struct health_task_run *run)
{
	struct stats_arg *a = p;
	struct docker_client *c;
	struct sampler *s = NULL;
	struct st_error err;
	json_t *samples = NULL;
	double t0 = time_monotonic(), host_ram = health_host_ram();
	size_t i;

	st_error_clear(&err);
	c = docker_for(a->docker_host, run, &err);
	if (!c) {
		fail_rest(run, 0, HEALTH_UNKNOWN, err.message);
		return;
	}
	s = calloc(a->n ? a->n : 1, sizeof(*s));
	samples = kept_samples(run->prev_state);
	if (!s || !samples) {
		fail_rest(run, 0, HEALTH_UNKNOWN, "out of memory");
		goto out;
	}
	for (i = 0; i < a->n; i++) {
		s[i].c = c;
		s[i].container = a->containers[i];
		s[i].run = run;
		s[i].have_kept = health_stats_from_json(json_object_get(samples, a->containers[i]),
							&s[i].kept) == 0;
		st_error_clear(&s[i].err);
		s[i].started = pthread_create(&s[i].thread, NULL, sampler_thread, &s[i]) == 0;
		if (!s[i].started)
			sampler_thread(&s[i]);
	}
	/* every stats call is bounded by the deadline: the joins are too */
	for (i = 0; i < a->n; i++)
		if (s[i].started)
			pthread_join(s[i].thread, NULL);

	for (i = 0; i < a->n; i++) {
		struct health_result *cpu = &run->results[2 * i], *mem = &run->results[2 * i + 1];
		json_t *j;

		if (s[i].rc) {
			int st = s[i].rc == ST_ENOTFOUND ? HEALTH_UNKNOWN : HEALTH_CRITICAL;
			const char *msg = s[i].rc == ST_ENOTFOUND ? "no such container" : s[i].err.message;

			health_result_set(cpu, st, "%s", msg);
			health_result_set(mem, st, "%s", msg);
			continue;
		}
		/* memory is known with the first sample, CPU% with the second */
		if (health_eval_cpu(cpu, a->containers[i], s[i].used_kept ? &s[i].kept : &s[i].first,
				    &s[i].cur, &a->cpu) ||
		    health_eval_memory(mem, a->containers[i], &s[i].first, host_ram, &a->mem)) {
			health_result_set(cpu, HEALTH_UNKNOWN, "out of memory");
			health_result_set(mem, HEALTH_UNKNOWN, "out of memory");
		}
		mem->duration = s[i].first_done - t0;
		cpu->duration = s[i].cur_done - t0;
		if (s[i].cur.running) {
			j = health_stats_to_json(&s[i].cur);
			if (j)
				json_object_set_new(samples, a->containers[i], j);
		}
	}
	run->state = json_pack("{s:O}", "samples", samples);
out:
	json_decref(samples);
	free(s);
	docker_client_free(c);
}

/* How a task connects to its server once it holds the password: params is
 * its client's parameter struct, out where the client puts the connection. */
typedef int (*connect_fn)(void *params, const char *password, void *out, struct st_error *err);

/* The start of the tasks that talk to a server: reads the secret, connects
 * with it (dial(params, password, out)) and forgets it again. 0 when
 * connected; else every result of run says what failed (UNKNOWN when the
 * secret cannot be read, CRITICAL when the connect fails) and the task has
 * nothing more to do. */
static int connect_or_fail(struct health_task_run *run, const struct config_secret *secret,
			   connect_fn dial, void *params, void *out)
{
	struct st_error err;
	char *password = NULL;
	int rc;

	st_error_clear(&err);
	rc = config_read_secret(secret, &password, &err);
	if (rc) {
		fail_rest(run, 0, HEALTH_UNKNOWN, err.message);
		goto out;
	}
	rc = dial(params, password, out, &err);
	config_secret_free(password);
	if (rc)
		fail_rest(run, 0, HEALTH_CRITICAL, err.message);
out:
	return rc;
}

/* ---- Postgres ------------------------------------------------------------- */

struct pg_arg {
	char *host, *user, *database;
	int port;
	struct config_secret password;
	double connect_timeout, statement_timeout;
	struct health_threshold conn;
};

static void free_pg_arg(void *p)
{
	struct pg_arg *a = p;

	free(a->host);
	free(a->user);
	free(a->database);
	secret_release(&a->password);
	free(a);
}

enum { PG_REACHABLE, PG_CONNECTIONS, PG_LONGEST_QUERY, PG_LONGEST_XACT, PG_SIZE };

static json_t *activity_json(const struct pg_activity *list, size_t n)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < n; i++) {
		const struct pg_activity *x = &list[i];
		json_t *o = json_pack("{s:i, s:f, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "pid", x->pid,
				      "duration_s", round(x->duration_s * 1000) / 1000, "state",
				      x->state, "user", x->user, "database", x->database,
				      "application", x->application, "client_addr", x->client_addr,
				      "wait_event", x->wait_event, "query", x->query,
				      "query_truncated", x->query_truncated);
		if (!o || json_array_append_new(arr, o)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* postgres.longest_query / longest_transaction: informational (no
 * threshold in the runbook), the top ones in details. */
static int eval_activity(struct health_result *r, const char *what, const char *label,
			 const char *prom, const char *help, const struct pg_activity *list, size_t n)
{
	struct health_metric *m;
	char d[32];
	json_t *details;

	m = health_result_add_metric(r, label, n ? list[0].duration_s : 0, HEALTH_UNIT_SECONDS, prom,
				     help, NULL, NULL);
	if (!m)
		return ST_ENOMEM;
	m->has_min = 1;
	details = json_pack("{s:o}", what, activity_json(list, n));
	if (!details)
		return ST_ENOMEM;
	health_result_set_details(r, details);
	if (!n)
		return health_result_set(r, HEALTH_OK, "no %s of other sessions", what);
	time_format_duration(list[0].duration_s, d, sizeof(d));
	return health_result_set(r, HEALTH_OK, "%zu %s, longest %s (pid %d, %s%s%s): %.60s%s", n, what,
				 d, list[0].pid, list[0].user[0] ? list[0].user : "?",
				 list[0].state[0] ? ", " : "", list[0].state, list[0].query,
				 strlen(list[0].query) > 60 ? "..." : "");
}

/* connect_fn of PostgreSQL: params a struct pg_params, out a struct pg_conn **. */
static int connect_pg(void *params, const char *password, void *out, struct st_error *err)
{
	struct pg_params *pp = params;

	pp->password = password;
	return pg_connect(pp, out, err);
}

static void task_postgres(void *p, struct health_task_run *run)
{
	struct pg_arg *a = p;
	struct pg_params params;
	struct pg_conn *conn = NULL;
	struct pg_server_info info;
	struct pg_saturation sat;
	struct pg_activity *list = NULL;
	struct st_error err;
	struct health_result *r = run->results;
	struct health_metric *m;
	char up[32], lat[32];
	double t0 = time_monotonic(), took;
	size_t n = 0;
	int rc;

	st_error_clear(&err);
	memset(&params, 0, sizeof(params));
	params.host = a->host;
	params.port = a->port;
	params.user = a->user;
	params.database = a->database;
	params.connect_timeout_s = min_d(a->connect_timeout, remaining(run));
	params.application_name = "spilttea-ops health";
	if (connect_or_fail(run, &a->password, connect_pg, &params, &conn))
		return;

	rc = pg_server_info(conn, min_d(a->statement_timeout, remaining(run)), &info, &err);
	took = time_monotonic() - t0;
	if (rc) {
		health_result_set(&r[PG_REACHABLE], HEALTH_CRITICAL, "%s", err.message);
		health_result_set(&r[PG_SIZE], HEALTH_CRITICAL, "%s", err.message);
	} else {
		m = health_result_add_metric(&r[PG_REACHABLE], "postgres.latency", took,
					     HEALTH_UNIT_SECONDS, "postgres_latency_seconds",
					     "Time to connect to PostgreSQL and run a query.", NULL, NULL);
		if (m)
			m->has_min = 1;
		time_format_duration(info.uptime_s, up, sizeof(up));
		time_format_duration(took, lat, sizeof(lat));
		health_result_set(&r[PG_REACHABLE], HEALTH_OK, "PostgreSQL %s%s, up %s, connected in %s",
				  info.version, info.in_recovery ? " (standby)" : "", up, lat);
		m = health_result_add_metric(&r[PG_SIZE], "postgres.size", (double)info.database_bytes,
					     HEALTH_UNIT_BYTES, "postgres_database_size_bytes",
					     "Size of the database (pg_database_size).", NULL, NULL);
		if (m)
			m->has_min = 1;
		health_result_set(&r[PG_SIZE], HEALTH_OK, "database '%s' is %.1f MiB", info.database,
				  (double)info.database_bytes / 1048576.0);
	}
	done_at(run, PG_REACHABLE, t0);
	done_at(run, PG_SIZE, t0);

	rc = pg_connection_saturation(conn, min_d(a->statement_timeout, remaining(run)), &sat, &err);
	if (rc)
		health_result_set(&r[PG_CONNECTIONS], HEALTH_CRITICAL, "%s", err.message);
	else if (health_eval_pg_connections(&r[PG_CONNECTIONS], sat.in_use, sat.usable,
					    sat.max_connections, sat.superuser_reserved + sat.reserved,
					    &a->conn))
		health_result_set(&r[PG_CONNECTIONS], HEALTH_UNKNOWN, "out of memory");
	done_at(run, PG_CONNECTIONS, t0);

	rc = pg_longest_queries(conn, HEALTH_PG_TOP, min_d(a->statement_timeout, remaining(run)), &list,
				&n, &err);
	if (rc)
		health_result_set(&r[PG_LONGEST_QUERY], HEALTH_CRITICAL, "%s", err.message);
	else if (eval_activity(&r[PG_LONGEST_QUERY], "active queries", "postgres.longest_query",
			       "postgres_longest_query_seconds",
			       "Run time of the longest active query of another session.", list, n))
		health_result_set(&r[PG_LONGEST_QUERY], HEALTH_UNKNOWN, "out of memory");
	free(list);
	list = NULL;
	done_at(run, PG_LONGEST_QUERY, t0);

	rc = pg_longest_transactions(conn, HEALTH_PG_TOP, min_d(a->statement_timeout, remaining(run)),
				     &list, &n, &err);
	if (rc)
		health_result_set(&r[PG_LONGEST_XACT], HEALTH_CRITICAL, "%s", err.message);
	else if (eval_activity(&r[PG_LONGEST_XACT], "open transactions", "postgres.longest_transaction",
			       "postgres_longest_transaction_seconds",
			       "Age of the oldest open transaction of another session.", list, n))
		health_result_set(&r[PG_LONGEST_XACT], HEALTH_UNKNOWN, "out of memory");
	free(list);
	done_at(run, PG_LONGEST_XACT, t0);
	pg_close(conn);
}

/* ---- Redis ---------------------------------------------------------------- */

struct redis_arg {
	char *host, *socket;
	int port, db;
	struct config_secret password;
	double timeout;
	struct health_threshold mem;
};

static void free_redis_arg(void *p)
{
	struct redis_arg *a = p;

	free(a->host);
	free(a->socket);
	secret_release(&a->password);
	free(a);
}

enum { REDIS_REACHABLE, REDIS_MEMORY, REDIS_CLIENTS, REDIS_EVICTIONS };

/* connect_fn of Redis: params a struct redis_params, out a struct redis_conn **. */
static int connect_redis(void *params, const char *password, void *out, struct st_error *err)
{
	struct redis_params *rp = params;

	rp->password = password;
	return redis_connect(rp, out, err);
}

static void task_redis(void *p, struct health_task_run *run)
{
	struct redis_arg *a = p;
	struct redis_params params;
	struct redis_conn *conn = NULL;
	struct redis_info info = REDIS_INFO_INIT;
	struct redis_info_summary sum;
	struct st_error err;
	struct health_result *r = run->results;
	struct health_metric *m;
	redisReply *reply = NULL;
	char up[32], lat[32];
	double t0 = time_monotonic(), took;
	long long maxclients = -1;
	int rc;

	st_error_clear(&err);
	memset(&params, 0, sizeof(params));
	params.host = a->host;
	params.port = a->port;
	params.socket_path = a->socket;
	params.db = a->db;
	params.connect_timeout_s = min_d(a->timeout, remaining(run));
	params.command_timeout_s = min_d(a->timeout, remaining(run));
	if (connect_or_fail(run, &a->password, connect_redis, &params, &conn))
		return;
	redis_set_command_timeout(conn, min_d(a->timeout, remaining(run)), &err);
	rc = redis_info(conn, NULL, &info, &err);
	took = time_monotonic() - t0;
	if (rc) {
		fail_rest(run, 0, HEALTH_CRITICAL, err.message);
		goto out;
	}
	redis_info_summarize(&info, &sum);

	m = health_result_add_metric(&r[REDIS_REACHABLE], "redis.latency", took, HEALTH_UNIT_SECONDS,
				     "redis_latency_seconds", "Time to connect, authenticate and run INFO.",
				     NULL, NULL);
	if (m)
		m->has_min = 1;
	time_format_duration((double)sum.uptime_s, up, sizeof(up));
	time_format_duration(took, lat, sizeof(lat));
	health_result_set(&r[REDIS_REACHABLE], HEALTH_OK, "Redis %s (%s), up %s, answered in %s",
			  sum.version, sum.role, up, lat);
	done_at(run, REDIS_REACHABLE, t0);

	if (health_eval_redis_memory(&r[REDIS_MEMORY], sum.used_memory, sum.maxmemory,
				     sum.maxmemory_policy, &a->mem))
		health_result_set(&r[REDIS_MEMORY], HEALTH_UNKNOWN, "out of memory");
	done_at(run, REDIS_MEMORY, t0);

	/* maxclients is only a bound for the perfdata: a server that refuses
	 * CONFIG (renamed command, ACL) is no failure */
	redis_set_command_timeout(conn, min_d(a->timeout, remaining(run)), &err);
	if (redis_command(conn, &reply, &err, "CONFIG", "GET", "maxclients", NULL) == 0 &&
	    reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[1]->type == REDIS_REPLY_STRING)
		maxclients = strtoll(reply->element[1]->str, NULL, 10);
	if (reply)
		freeReplyObject(reply);
	m = health_result_add_metric(&r[REDIS_CLIENTS], "redis.clients", (double)sum.connected_clients,
				     HEALTH_UNIT_NONE, "redis_connected_clients",
				     "Clients connected to Redis.", NULL, NULL);
	if (m) {
		m->has_min = 1;
		m->has_max = maxclients > 0;
		m->max = (double)maxclients;
	}
	if (maxclients > 0)
		health_result_set(&r[REDIS_CLIENTS], HEALTH_OK, "%lld client%s connected (maxclients %lld), %lld blocked",
				  sum.connected_clients, sum.connected_clients == 1 ? "" : "s", maxclients,
				  sum.blocked_clients);
	else
		health_result_set(&r[REDIS_CLIENTS], HEALTH_OK, "%lld client%s connected, %lld blocked",
				  sum.connected_clients, sum.connected_clients == 1 ? "" : "s",
				  sum.blocked_clients);
	done_at(run, REDIS_CLIENTS, t0);

	if (health_eval_redis_evictions(&r[REDIS_EVICTIONS], sum.evicted_keys,
					redis_info_get(&info, "run_id"), sum.maxmemory_policy,
					run->prev_state, &run->state))
		health_result_set(&r[REDIS_EVICTIONS], HEALTH_UNKNOWN, "out of memory");
	done_at(run, REDIS_EVICTIONS, t0);
out:
	redis_info_release(&info);
	redis_close(conn);
}

/* ---- disks ----------------------------------------------------------------- */

struct disk_arg {
	char *docker_host;    /* set: measure Docker's data root */
	char *path;           /* else: this directory */
	struct health_threshold th;
};

static void free_disk_arg(void *p)
{
	struct disk_arg *a = p;

	free(a->docker_host);
	free(a->path);
	free(a);
}

static void task_disk(void *p, struct health_task_run *run)
{
	struct disk_arg *a = p;
	struct health_result *r = &run->results[0];
	struct docker_client *c = NULL;
	struct st_error err;
	struct statvfs st;
	json_t *info = NULL;
	char *path = NULL, *note = NULL;

	st_error_clear(&err);
	if (a->docker_host) {
		const char *root;

		c = docker_for(a->docker_host, run, &err);
		if (!c || docker_info(c, remaining(run), &info, &err) != 0) {
			health_result_set(r, HEALTH_CRITICAL, "%s", err.message);
			goto out;
		}
		root = json_string_value(json_object_get(info, "DockerRootDir"));
		if (!root || !*root) {
			health_result_set(r, HEALTH_UNKNOWN, "docker info has no DockerRootDir");
			goto out;
		}
		path = strdup(root);
	} else {
		struct stat sbuf;

		path = strdup(a->path);
		/* a backup directory not made yet: measure where it will be */
		while (path && stat(path, &sbuf) != 0 && strcmp(path, "/") != 0) {
			char *slash = strrchr(path, '/');

			if (slash == path)
				slash[1] = '\0';
			else if (slash)
				*slash = '\0';
			else
				break;
		}
		if (path && strcmp(path, a->path) != 0 &&
		    asprintf(&note, "%s does not exist yet: measured %s", a->path, path) < 0)
			note = NULL;
	}
	if (!path) {
		health_result_set(r, HEALTH_UNKNOWN, "out of memory");
		goto out;
	}
	if (statvfs(path, &st) != 0) {
		health_result_set(r, HEALTH_UNKNOWN, "cannot statvfs '%s': %s", path, strerror(errno));
		goto out;
	}
	if (health_eval_disk(r, path, &st, note, &a->th))
		health_result_set(r, HEALTH_UNKNOWN, "out of memory");
out:
	free(path);
	free(note);
	json_decref(info);
	docker_client_free(c);
}

/* ---- docker system df ---------------------------------------------------- */

struct df_arg {
	char *docker_host;
};

static void free_df_arg(void *p)
{
	struct df_arg *a = p;

	free(a->docker_host);
	free(a);
}

static void task_df(void *p, struct health_task_run *run)
{
	struct df_arg *a = p;
	struct docker_client *c;
	struct st_error err;
	json_t *df = NULL;

	st_error_clear(&err);
	c = docker_for(a->docker_host, run, &err);
	if (!c || docker_system_df(c, remaining(run), &df, &err) != 0)
		health_result_set(&run->results[0], HEALTH_CRITICAL, "%s", err.message);
	else if (health_eval_df(&run->results[0], df))
		health_result_set(&run->results[0], HEALTH_UNKNOWN, "out of memory");
	json_decref(df);
	docker_client_free(c);
}

/* ---- backend log error rate ------------------------------------------------ */

struct logs_arg {
	char *docker_host;
	char *container;
	double window;
	struct health_threshold th;
};

static void free_logs_arg(void *p)
{
	struct logs_arg *a = p;

	free(a->docker_host);
	free(a->container);
	free(a);
}

#define LAST_ERRORS 5

struct log_scan {
	struct health_log_count count;
	char last[LAST_ERRORS][201];    /* the last error lines, for -v / json */
	size_t n_last;
	int cur_saved;                  /* the current (split) line is saved already */
};

static int count_line(void *ud, const struct docker_log_line *line, struct st_error *err)
{
	struct log_scan *ls = ud;
	unsigned long long before = ls->count.errors;

	(void)err;
	health_log_count_line(&ls->count, line->text, line->len, line->split);
	/* keep each error line once: for a line over max_line, the piece
	 * where the match was found */
	if (!ls->cur_saved && (ls->count.cur_error || ls->count.errors > before)) {
		char *slot = ls->last[ls->n_last % LAST_ERRORS];

		snprintf(slot, sizeof(ls->last[0]), "%.*s", (int)(line->len < 200 ? line->len : 200),
			 line->text);
		ls->n_last++;
		ls->cur_saved = 1;
	}
	if (!line->split)
		ls->cur_saved = 0;
	return 0;
}

static json_t *last_errors_json(const struct log_scan *ls)
{
	json_t *arr = json_array();
	size_t i, n = ls->n_last < LAST_ERRORS ? ls->n_last : LAST_ERRORS;

	for (i = 0; arr && i < n; i++) {
		size_t k = (ls->n_last - n + i) % LAST_ERRORS;

		if (json_array_append_new(arr, json_string(ls->last[k]))) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static void task_logs(void *p, struct health_task_run *run)
{
	struct logs_arg *a = p;
	struct docker_client *c;
	struct docker_logs_opts o;
	struct log_scan *ls;
	struct st_error err;
	int rc;

	st_error_clear(&err);
	ls = calloc(1, sizeof(*ls));
	if (!ls) {
		health_result_set(&run->results[0], HEALTH_UNKNOWN, "out of memory");
		return;
	}
	c = docker_for(a->docker_host, run, &err);
	if (!c) {
		health_result_set(&run->results[0], HEALTH_UNKNOWN, "%s", err.message);
		free(ls);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.since = time_wall() - a->window;
	o.tail = DOCKER_LOGS_TAIL_ALL;
	o.max_line = 64 * 1024;
	o.timeout = remaining(run);
	rc = docker_container_logs(c, a->container, &o, count_line, ls, &err);
	if (rc == ST_ENOTFOUND)
		health_result_set(&run->results[0], HEALTH_UNKNOWN, "no container named '%s'",
				  a->container);
	else if (rc)
		health_result_set(&run->results[0], HEALTH_CRITICAL, "%s", err.message);
	else if (health_eval_error_rate(&run->results[0], &ls->count, a->window, &a->th))
		health_result_set(&run->results[0], HEALTH_UNKNOWN, "out of memory");
	else
		health_result_set_details(&run->results[0],
					  json_pack("{s:s, s:o}", "container", a->container,
						    "last_error_lines", last_errors_json(ls)));
	free(ls);
	docker_client_free(c);
}

/* ---- building the tasks ------------------------------------------------------ */

struct builder {
	struct health_task *tasks;
	size_t n, cap;
};

/* Appends a task taking ownership of arg (freed with free_arg on failure). */
static struct health_task *add_task(struct builder *b, health_task_fn fn, void *arg,
				    void (*free_arg)(void *), const char *state_key)
{
	struct health_task *t;

	if (!arg)
		return NULL;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		struct health_task *grown = realloc(b->tasks, cap * sizeof(*grown));

		if (!grown) {
			free_arg(arg);
			return NULL;
		}
		b->tasks = grown;
		b->cap = cap;
	}
	t = &b->tasks[b->n++];
	memset(t, 0, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
	t->free_arg = free_arg;
	if (state_key && !(t->state_key = strdup(state_key)))
		return NULL;
	return t;
}

static int add_names(struct health_task *t, ...)
{
	va_list ap;
	const char *name;
	int rc = 0;

	if (!t)
		return ST_ENOMEM;
	va_start(ap, t);
	while (!rc && (name = va_arg(ap, const char *)))
		rc = health_task_add_name(t, name);
	va_end(ap);
	return rc;
}

static int add_name_fmt(struct health_task *t, const char *prefix, const char *suffix)
{
	char *name = NULL;
	int rc;

	if (!t || asprintf(&name, "%s%s", prefix, suffix) < 0)
		return ST_ENOMEM;
	rc = health_task_add_name(t, name);
	free(name);
	return rc;
}

static struct http_arg *http_arg_new(const char *url, int backend, const struct config_threshold *th)
{
	struct http_arg *a = calloc(1, sizeof(*a));

	if (!a || !(a->url = strdup(url))) {
		free(a);
		return NULL;
	}
	a->backend = backend;
	a->th = th_of(th);
	return a;
}

static struct logs_arg *logs_arg_new(const char *dhost, const char *container, double window,
				     const struct config_threshold *th)
{
	struct logs_arg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->docker_host = strdup(dhost);
	a->container = strdup(container);
	a->window = window;
	a->th = th_of(th);
	if (!a->docker_host || !a->container) {
		free_logs_arg(a);
		return NULL;
	}
	return a;
}

static struct container_arg *container_arg_new(const char *dhost, const char *container)
{
	struct container_arg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->docker_host = strdup(dhost);
	a->container = strdup(container);
	if (!a->docker_host || !a->container) {
		free_container_arg(a);
		return NULL;
	}
	return a;
}

static struct stats_arg *stats_arg_new(const struct st_config *cfg)
{
	struct stats_arg *a = calloc(1, sizeof(*a));
	size_t i;

	if (!a)
		return NULL;
	a->containers = calloc(cfg->health.containers.count + 1, sizeof(*a->containers));
	a->docker_host = strdup(cfg->docker.host);
	a->cpu = th_of(&cfg->thresholds.container_cpu_percent);
	a->mem = th_of(&cfg->thresholds.container_memory_percent);
	if (!a->containers || !a->docker_host)
		goto fail;
	for (i = 0; i < cfg->health.containers.count; i++) {
		const struct config_service *svc = config_service(cfg, cfg->health.containers.items[i]);

		if (!svc)
			continue;
		if (!(a->containers[a->n] = strdup(svc->container)))
			goto fail;
		a->n++;
	}
	return a;
fail:
	free_stats_arg(a);
	return NULL;
}

static struct pg_arg *pg_arg_new(const struct st_config *cfg)
{
	struct pg_arg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->host = strdup(cfg->postgres.host);
	a->user = strdup(cfg->postgres.user);
	a->database = strdup(cfg->postgres.database);
	a->port = (int)cfg->postgres.port;
	a->connect_timeout = cfg->postgres.connect_timeout;
	a->statement_timeout = cfg->postgres.statement_timeout;
	a->conn = th_of(&cfg->thresholds.db_connections_percent);
	if (!a->host || !a->user || !a->database || secret_copy(&a->password, &cfg->postgres.password)) {
		free_pg_arg(a);
		return NULL;
	}
	return a;
}

static struct redis_arg *redis_arg_new(const struct st_config *cfg)
{
	struct redis_arg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->host = cfg->redis.host ? strdup(cfg->redis.host) : NULL;
	a->socket = cfg->redis.socket ? strdup(cfg->redis.socket) : NULL;
	a->port = (int)cfg->redis.port;
	a->db = (int)cfg->redis.db;
	a->timeout = cfg->redis.timeout;
	a->mem = th_of(&cfg->thresholds.redis_memory_percent);
	if ((cfg->redis.host && !a->host) || (cfg->redis.socket && !a->socket) ||
	    secret_copy(&a->password, &cfg->redis.password)) {
		free_redis_arg(a);
		return NULL;
	}
	return a;
}

/* docker_host set: Docker's data root; else path. */
static struct disk_arg *disk_arg_new(const char *docker_host, const char *path,
				     const struct config_threshold *th)
{
	struct disk_arg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->docker_host = docker_host ? strdup(docker_host) : NULL;
	a->path = path ? strdup(path) : NULL;
	a->th = th_of(th);
	if ((docker_host && !a->docker_host) || (path && !a->path)) {
		free_disk_arg(a);
		return NULL;
	}
	return a;
}

static struct df_arg *df_arg_new(const char *docker_host)
{
	struct df_arg *a = calloc(1, sizeof(*a));

	if (a && !(a->docker_host = strdup(docker_host))) {
		free(a);
		return NULL;
	}
	return a;
}

int health_tasks_build(const struct st_config *cfg, struct health_task **tasks, size_t *n,
		       struct st_error *err)
{
	const struct config_service *backend = config_service(cfg, "backend");
	const struct config_service *frontend = config_service(cfg, "frontend");
	const char *dhost = cfg->docker.host;
	struct builder b = { NULL, 0, 0 };
	struct stats_arg *stats;
	struct health_task *t;
	size_t i;
	int rc = 0;

	*tasks = NULL;
	*n = 0;

	if (backend && backend->health_url) {
		t = add_task(&b, task_http, http_arg_new(backend->health_url, 1,
							  &cfg->thresholds.api_response_seconds),
			     free_http_arg, NULL);
		if ((rc = add_names(t, "backend.health", (char *)NULL)))
			goto out;
	}
	if (backend) {
		t = add_task(&b, task_logs,
			     logs_arg_new(dhost, backend->container, cfg->health.log_window,
					  &cfg->thresholds.error_rate_percent),
			     free_logs_arg, NULL);
		if ((rc = add_names(t, "backend.error_rate", (char *)NULL)))
			goto out;
	}
	if (frontend && frontend->url) {
		t = add_task(&b, task_http, http_arg_new(frontend->url, 0,
							  &cfg->thresholds.api_response_seconds),
			     free_http_arg, NULL);
		if ((rc = add_names(t, "frontend.reachable", (char *)NULL)))
			goto out;
	}
	for (i = 0; i < cfg->health.containers.count; i++) {
		const struct config_service *svc = config_service(cfg, cfg->health.containers.items[i]);
		char *key = NULL;

		if (!svc)
			continue;
		if (asprintf(&key, "container.%s", svc->container) < 0) {
			rc = ST_ENOMEM;
			goto out;
		}
		t = add_task(&b, task_container, container_arg_new(dhost, svc->container),
			     free_container_arg, key);
		rc = add_names(t, key, (char *)NULL);
		free(key);
		if (rc)
			goto out;
	}
	if (cfg->health.containers.count) {
		stats = stats_arg_new(cfg);
		t = add_task(&b, task_stats, stats, free_stats_arg, "stats");
		rc = t ? 0 : ST_ENOMEM;
		/* t owns stats from here */
		for (i = 0; !rc && i < stats->n; i++) {
			rc = add_name_fmt(t, "container_cpu.", stats->containers[i]);
			if (!rc)
				rc = add_name_fmt(t, "container_memory.", stats->containers[i]);
		}
		if (rc)
			goto out;
	}
	t = add_task(&b, task_postgres, pg_arg_new(cfg), free_pg_arg, NULL);
	if ((rc = add_names(t, "postgres.reachable", "postgres.connections", "postgres.longest_query",
			    "postgres.longest_transaction", "postgres.size", (char *)NULL)))
		goto out;
	t = add_task(&b, task_redis, redis_arg_new(cfg), free_redis_arg, "redis");
	if ((rc = add_names(t, "redis.reachable", "redis.memory", "redis.clients", "redis.evictions",
			    (char *)NULL)))
		goto out;
	t = add_task(&b, task_disk, disk_arg_new(dhost, NULL, &cfg->thresholds.disk_percent),
		     free_disk_arg, NULL);
	if ((rc = add_names(t, "disk.docker_root", (char *)NULL)))
		goto out;
	t = add_task(&b, task_disk, disk_arg_new(NULL, cfg->backup.dir, &cfg->thresholds.disk_percent),
		     free_disk_arg, NULL);
	if ((rc = add_names(t, "disk.backup_dir", (char *)NULL)))
		goto out;
	t = add_task(&b, task_df, df_arg_new(dhost), free_df_arg, NULL);
	rc = add_names(t, "docker.df", (char *)NULL);
out:
	if (rc) {
		health_tasks_free(b.tasks, b.n);
		return st_error_set(err, ST_ENOMEM, "out of memory building the health checks");
	}
	*tasks = b.tasks;
	*n = b.n;
	return 0;
}

void health_tasks_free(struct health_task *tasks, size_t n)
{
	size_t i;

	for (i = 0; tasks && i < n; i++)
		health_task_release(&tasks[i]);
	free(tasks);
}

/* ---- state and the whole run ---------------------------------------------------- */

void health_state_load(const char *state_dir, json_t **out)
{
	char *path = NULL;
	json_t *j = NULL;

	if (state_dir && asprintf(&path, "%s/%s", state_dir, HEALTH_STATE_FILE) >= 0) {
		j = json_load_file(path, 0, NULL);
		free(path);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	*out = j;
}

int health_state_save(const char *state_dir, const json_t *state, struct st_error *err)
{
	char *path = NULL, *text = NULL;
	int rc;

	rc = atomic_file_mkdirs(state_dir, 0700, err);
	if (rc)
		return rc;
	text = json_dumps(state, JSON_COMPACT);
	if (!text || asprintf(&path, "%s/%s", state_dir, HEALTH_STATE_FILE) < 0) {
		free(text);
		return st_error_set(err, ST_ENOMEM, "out of memory saving the health state");
	}
	rc = atomic_file_write_all(path, text, strlen(text), 0600, err);
	free(text);
	free(path);
	return rc;
}

int health_check_run(const struct st_config *cfg, const char *const *select,
		     struct health_report *rep, struct st_error *err)
{
	struct health_task *tasks = NULL;
	struct health_run_opts opts;
	struct st_error ignored;
	json_t *prev = NULL, *next = NULL;
	size_t n = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	/* libcurl's global state before the first thread */
	rc = http_global_init(err);
	if (rc)
		return rc;
	rc = health_tasks_build(cfg, &tasks, &n, err);
	if (rc)
		return rc;
	health_state_load(cfg->state_dir, &prev);
	memset(&opts, 0, sizeof(opts));
	opts.timeout = cfg->health.timeout;
	opts.select = select;
	opts.prev_state = prev;
	rc = health_run(tasks, n, &opts, rep, &next, err);
	free(tasks);
	/* the state only makes the next run faster and spots changes: losing
	 * it is no failure of this run */
	if (!rc && next)
		health_state_save(cfg->state_dir, next, &ignored);
	json_decref(prev);
	json_decref(next);
	return rc;
}

int health_report_config_error(struct health_report *rep, const struct st_error *cause)
{
	memset(rep, 0, sizeof(*rep));
	rep->results = calloc(1, sizeof(*rep->results));
	if (!rep->results || health_result_init(&rep->results[0], "config"))
		return ST_ENOMEM;
	rep->n = 1;
	health_result_set(&rep->results[0], HEALTH_UNKNOWN, "%s",
			  cause && cause->message[0] ? cause->message : "configuration error");
	rep->results[0].duration = 0;
	rep->generated_at = time_wall();
	health_report_update_status(rep);
	return 0;
}
