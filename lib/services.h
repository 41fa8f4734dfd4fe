/*
 * services.h - from the configuration to connected clients.
 *
 * Every command and runbook action opens its Docker, PostgreSQL and Redis
 * handles here, so passwords (read from their env/file reference and
 * zeroed after use), timeouts and defaults are applied the same way
 * everywhere. Two layers:
 *
 *   services_*_open/connect(cfg, ...)  one new handle, caller frees
 *   struct services                    per-run, lazily opened, shared by the
 *                                      steps of one run (one thread)
 */
#ifndef ST_SERVICES_H
#define ST_SERVICES_H

#include "config.h"
#include "docker.h"
#include "error.h"
#include "failfast.h"
#include "http.h"
#include "pg.h"
#include "redis.h"

/* A Docker client for docker.host (DOCKER_HOST already applied by the
 * config) with docker.timeout per request. Caller frees with
 * docker_client_free(). Does not connect. */
int services_docker_open(const struct st_config *cfg, struct docker_client **out,
			 struct st_error *err);

/* Connects to PostgreSQL as configured. database NULL means
 * postgres.database (restore and test-restore connect to others);
 * application NULL means "spilttea-ops". Caller frees with pg_close(). */
int services_pg_connect(const struct st_config *cfg, const char *database, const char *application,
			struct pg_conn **out, struct st_error *err);

/* Connects to Redis as configured (AUTH, SELECT db). Caller frees with
 * redis_close(). */
int services_redis_connect(const struct st_config *cfg, struct redis_conn **out,
			   struct st_error *err);

/* The container of a configured service ("backend" -> "spilttea-backend").
 * *container is borrowed from cfg. ST_ECONFIG with a hint when the service
 * is not configured. */
int services_container(const struct st_config *cfg, const char *service, const char **container,
		       struct st_error *err);

/* Per-run handles, opened on first use and closed by services_release().
 * Not thread-safe (the docker client itself is, so services_docker()'s
 * result may be handed to threads). */
struct services {
	const struct st_config *cfg;  /* borrowed */
	struct docker_client *docker; /* owned */
	struct pg_conn *pg;           /* owned */
	struct redis_conn *redis;     /* owned */
	int fail_fast;                /* services_set_fail_fast() */
	struct st_down pg_down;       /* first connect that found no server (failfast.h) */
	struct st_down redis_down;
	struct http_down_set http_down; /* http.probe's host:ports found dead */
};

void services_init(struct services *s, const struct st_config *cfg);
/* Closes the handles; keeps fail_fast and what it learnt. */
void services_release(struct services *s);

/*
 * Fail fast (diagnose): once connecting to PostgreSQL or Redis found no
 * server (err->unreachable: refused, no such socket, no route, no answer
 * in time), or a Docker request got no answer at all (docker.h,
 * docker_client_set_fail_fast), or an http.probe of a host:port got none
 * (http_probe_failfast with http_down), later requests for that service in
 * this run fail at once with ST_EUNREACHABLE, "postgres unreachable: <the
 * first error>" and its hint, instead of each waiting out the same timeout. Off
 * by default: a run that restarts a service and waits for it must retry.
 * Turning it off (or on) forgets what was learnt.
 */
void services_set_fail_fast(struct services *s, int on);

/* Borrowed handles, valid until services_release(). A Postgres or Redis
 * connection that a timeout left unusable is reopened transparently. */
int services_docker(struct services *s, struct docker_client **out, struct st_error *err);
int services_pg(struct services *s, struct pg_conn **out, struct st_error *err);
int services_redis(struct services *s, struct redis_conn **out, struct st_error *err);

#endif
