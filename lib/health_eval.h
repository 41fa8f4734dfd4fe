/*
 * health_eval.h - the judgement part of each health check, kept apart from
 * the I/O so it can be unit-tested with canned Docker JSON and numbers:
 * every function here takes what a client returned and fills one
 * struct health_result (status, summary, metrics, details).
 *
 * All return 0 or ST_ENOMEM. Percentages are 0..100; sizes are bytes.
 */
#ifndef ST_HEALTH_EVAL_H
#define ST_HEALTH_EVAL_H

#include <stddef.h>
#include <sys/statvfs.h>

#include <jansson.h>

#include "docker_stats.h"
#include "health.h"

/* ---- HTTP ------------------------------------------------------------- */

/* backend.health: status 200 and a JSON body with "status": "ok", latency
 * vs th (api_response_seconds). A failed request is CRITICAL with why. */
int health_eval_backend(struct health_result *r, const char *url, long http_status,
			const char *body, double latency, const char *failure,
			const struct health_threshold *th);

/* url as shown in a summary: without user:password, query string and
 * fragment (where tokens live): redact_url() with REDACT_URL_NO_USERINFO and
 * REDACT_URL_NO_QUERY. Caller frees; NULL on ENOMEM. */
char *health_url_for_display(const char *url);

/* frontend.reachable: any 2xx or 3xx answer is reachable; latency vs th. */
int health_eval_frontend(struct health_result *r, const char *url, long http_status,
			 double latency, const char *failure, const struct health_threshold *th);

/* ---- containers ------------------------------------------------------- */

/*
 * container.<name> from GET /containers/{name}/json (inspect). Running and
 * healthy/no healthcheck: OK; health "starting": WARNING; "unhealthy", not
 * running, restarting, paused or dead: CRITICAL. The restart count is
 * compared with the previous run's (prev: {"id", "restart_count"}, may be
 * NULL): when the same container restarted since, WARNING. *state receives
 * the new {"id", "restart_count"} (caller owns; NULL on ENOMEM). now is the
 * wall clock for the uptime.
 */
int health_eval_container(struct health_result *r, const char *container, const json_t *inspect,
			  const json_t *prev, double now, json_t **state);

/* One stats sample of a container, as kept between runs. */
struct health_stats_sample {
	struct docker_stats_sample s;  /* the figures (docker_stats.h) */
	double at;                 /* time_wall() when it arrived */
	int running;               /* CPU and memory figures present (a stopped
				    * container's stats are empty) */
	char id[80];               /* container id the sample belongs to */
};

/* Parses GET /containers/{id}/stats?stream=false&one-shot=true.
 * ST_EPROTO when the body is not a stats object. */
int health_stats_parse(const json_t *stats, double at, struct health_stats_sample *out);

/* The sample as kept in the state file (CPU figures only), and back
 * (ST_EPROTO when malformed). health_stats_to_json: caller owns the result,
 * NULL on ENOMEM. */
json_t *health_stats_to_json(const struct health_stats_sample *s);
int health_stats_from_json(const json_t *j, struct health_stats_sample *out);

/* CPU% of the same container between two samples (docker_stats_cpu_percent:
 * 100% = one core). 0 with *pct set, -1 when they cannot be compared
 * (another container, a restart, the same daemon tick). */
int health_cpu_percent(const struct health_stats_sample *prev, const struct health_stats_sample *cur,
		       double *pct);

/* container_cpu.<name>: prev may be NULL or not comparable: then UNKNOWN
 * "no second sample". interval is cur.at - prev.at, shown in the summary. */
int health_eval_cpu(struct health_result *r, const char *container,
		    const struct health_stats_sample *prev, const struct health_stats_sample *cur,
		    const struct health_threshold *th);

/* container_memory.<name>; host_ram (bytes, 0 unknown) tells an unlimited
 * container (limit >= host RAM) so the summary can say so. */
int health_eval_memory(struct health_result *r, const char *container,
		       const struct health_stats_sample *cur, double host_ram,
		       const struct health_threshold *th);

/* docker.df from GET /system/df: sizes and reclaimable space of images,
 * containers, volumes and build cache, computed as `docker system df`
 * does. Informational: OK unless the body is malformed (UNKNOWN). */
int health_eval_df(struct health_result *r, const json_t *df);

/* ---- disk ------------------------------------------------------------- */

/* disk.* from statvfs of path: used% as df shows it (used / (used +
 * available to unprivileged users)) vs th. note (may be NULL) is appended
 * to the summary ("backup dir does not exist yet, measured /var"). */
int health_eval_disk(struct health_result *r, const char *path, const struct statvfs *st,
		     const char *note, const struct health_threshold *th);

/* ---- logs ------------------------------------------------------------- */

/*
 * Error-line counting for backend.error_rate, streaming: a line is an error
 * line when it contains "error" in any case (the runbook's grep -i error).
 * Blank lines do not count. Lines handed over in pieces (split != 0 on all
 * but the last) count once; a match across pieces is found.
 */
struct health_log_count {
	unsigned long long lines;
	unsigned long long errors;
	unsigned matched;          /* characters of "error" matched so far */
	int cur_error;             /* the line being read matched */
	int cur_nonblank;
};

void health_log_count_line(struct health_log_count *c, const char *text, size_t len, int split);

/* backend.error_rate over window seconds vs th (error_rate_percent).
 * No lines: OK "no log lines in the last 5m". */
int health_eval_error_rate(struct health_result *r, const struct health_log_count *c,
			   double window, const struct health_threshold *th);

/* ---- Postgres and Redis (numbers from lib/pgstat.h and lib/redis.h) --- */

/* postgres.connections: in_use vs usable (max_connections -
 * superuser_reserved_connections - reserved_connections) vs th. */
int health_eval_pg_connections(struct health_result *r, int in_use, int usable, int max_connections,
			       int superuser_reserved, const struct health_threshold *th);

/* redis.memory: used vs maxmemory vs th. maxmemory 0 means no limit: OK,
 * said in the summary, no percentage (and no division by zero). */
int health_eval_redis_memory(struct health_result *r, long long used, long long maxmemory,
			     const char *policy, const struct health_threshold *th);

/* redis.evictions: evicted_keys; WARNING when it grew since the previous
 * run of the same instance (prev {"run_id", "evicted_keys"}, may be NULL).
 * *state gets the new entry (caller owns). */
int health_eval_redis_evictions(struct health_result *r, long long evicted, const char *run_id,
				const char *policy, const json_t *prev, json_t **state);

/* Host RAM in bytes (sysconf), 0 when unknown. */
double health_host_ram(void);

#endif
