#include "services.h"

#include <stdlib.h>
#include <string.h>

int services_docker_open(const struct st_config *cfg, struct docker_client **out,
			 struct st_error *err)
{
	int rc;

	*out = NULL;
	rc = docker_client_new(cfg->docker.host, out, err);
	if (rc)
		return rc;
	/* Streams (exec, logs, build) stay unlimited: a default would cut a
	 * multi-hour backup or restore short. Callers bound their own. */
	docker_client_set_timeouts(*out, cfg->docker.timeout, DOCKER_TIMEOUT_NONE);
	/* but a stream that goes silent for longer than this has stalled. */
	docker_client_set_stream_idle(*out, cfg->docker.stream_idle_timeout, "docker.stream_idle_timeout");
	return 0;
}

int services_pg_connect(const struct st_config *cfg, const char *database, const char *application,
			struct pg_conn **out, struct st_error *err)
{
	struct pg_params params;
	char *password = NULL;
	int rc;

	*out = NULL;
	rc = config_read_secret(&cfg->postgres.password, &password, err);
	if (rc)
		goto out;
	memset(&params, 0, sizeof(params));
	params.host = cfg->postgres.host;
	params.port = (int)cfg->postgres.port;
	params.user = cfg->postgres.user;
	params.database = database ? database : cfg->postgres.database;
	params.password = password;
	params.connect_timeout_s = cfg->postgres.connect_timeout;
	params.application_name = application;
	rc = pg_connect(&params, out, err);
out:
	config_secret_free(password);
	return rc;
}

int services_redis_connect(const struct st_config *cfg, struct redis_conn **out,
			   struct st_error *err)
{
	struct redis_params params;
	char *password = NULL;
	int rc;

	*out = NULL;
	rc = config_read_secret(&cfg->redis.password, &password, err);
	if (rc)
		goto out;
	memset(&params, 0, sizeof(params));
	params.host = cfg->redis.host;
	params.port = (int)cfg->redis.port;
	params.socket_path = cfg->redis.socket;
	params.db = (int)cfg->redis.db;
	params.password = password;
	params.connect_timeout_s = cfg->redis.timeout;
	params.command_timeout_s = cfg->redis.timeout;
	rc = redis_connect(&params, out, err);
out:
	config_secret_free(password);
	return rc;
}

int services_container(const struct st_config *cfg, const char *service, const char **container,
		       struct st_error *err)
{
	const struct config_service *svc = config_service(cfg, service);

	*container = NULL;
	if (!svc) {
		st_error_set(err, ST_ECONFIG, "service '%s' is not configured", service);
		return st_error_hint(err, "add it under 'services:' in %s", cfg->path);
	}
	*container = svc->container;
	return 0;
}

void services_set_fail_fast(struct services *s, int on)
{
	s->fail_fast = on;
	st_down_reset(&s->pg_down, on);
	st_down_reset(&s->redis_down, on);
	http_down_reset(&s->http_down, on);
	if (s->docker)
		docker_client_set_fail_fast(s->docker, on);
}

void services_init(struct services *s, const struct st_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
}

void services_release(struct services *s)
{
	docker_client_free(s->docker);
	pg_close(s->pg);
	redis_close(s->redis);
	s->docker = NULL;
	s->pg = NULL;
	s->redis = NULL;
}

int services_docker(struct services *s, struct docker_client **out, struct st_error *err)
{
	int rc = 0;

	if (!s->docker && (rc = services_docker_open(s->cfg, &s->docker, err)) == 0)
		docker_client_set_fail_fast(s->docker, s->fail_fast);
	*out = s->docker;
	return rc;
}

int services_pg(struct services *s, struct pg_conn **out, struct st_error *err)
{
	int rc = 0;

	if (s->pg && !pg_usable(s->pg)) {
		pg_close(s->pg);
		s->pg = NULL;
	}
	if (!s->pg && (rc = st_down_check(&s->pg_down, "postgres", err)) == 0 &&
	    (rc = services_pg_connect(s->cfg, NULL, NULL, &s->pg, err)) != 0)
		st_down_note(&s->pg_down, err);
	*out = s->pg;
	return rc;
}

int services_redis(struct services *s, struct redis_conn **out, struct st_error *err)
{
	int rc = 0;

	if (s->redis && !redis_usable(s->redis)) {
		redis_close(s->redis);
		s->redis = NULL;
	}
	if (!s->redis && (rc = st_down_check(&s->redis_down, "redis", err)) == 0 &&
	    (rc = services_redis_connect(s->cfg, &s->redis, err)) != 0)
		st_down_note(&s->redis_down, err);
	*out = s->redis;
	return rc;
}
