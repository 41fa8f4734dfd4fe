/*
 * actions_util.h - what every service action needs: its clients, the
 * container it targets, argument getters, and shaping service output into
 * JSON results that are safe to keep (valid UTF-8, bounded, no secrets).
 *
 * For lib/actions_<module>.c files. Clients come from the run's
 * struct services (engine_call.services, set up by cmd/ and released
 * after the run), so every step of a run shares one Docker client, one
 * Postgres and one Redis connection.
 */
#ifndef ST_ACTIONS_UTIL_H
#define ST_ACTIONS_UTIL_H

#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "docker.h"
#include "engine.h"
#include "error.h"
#include "pg.h"
#include "redis.h"

/* The two arguments by which every docker.* action names its container:
 * `container: spilttea-backend` or `service: backend` (the container of a
 * configured service). Exactly one is needed; actions_target() checks. */
#define ACTIONS_TARGET_ARGS                                                                   \
	{ "container", ENGINE_ARG_STRING, 0, NULL, "container name (or give service)" },      \
	{ "service", ENGINE_ARG_STRING, 0, NULL,                                              \
	  "configured service whose container it is, e.g. backend (or give container)" }

/* Borrowed clients from call->services, opened on first use, interrupted
 * by call->cancel (docker_client_set_cancel, redis_set_cancel). ST_EUSAGE
 * when the run has no services (engine_options.services NULL). */
int actions_docker_client(struct engine_call *call, struct docker_client **out, struct st_error *err);
int actions_redis_conn(struct engine_call *call, struct redis_conn **out, struct st_error *err);

/* A Postgres connection to database (NULL: the configured one). For the
 * configured database it is the run's shared connection; for another one
 * a new connection that actions_pg_done() closes. *owned says which. */
int actions_pg_conn(struct engine_call *call, const char *database, struct pg_conn **out,
		    int *owned, struct st_error *err);
void actions_pg_done(struct pg_conn *conn, int owned);

/* The container named by args' container or service (ACTIONS_TARGET_ARGS).
 * *container is borrowed from args or the configuration; *service (may be
 * NULL) gets the service name or NULL. ST_EUSAGE when neither or both are
 * given, ST_ECONFIG for an unknown service. */
int actions_target(const struct engine_call *call, const json_t *args, const char **container,
		   const char **service, struct st_error *err);

/* The configured health URL of a service, NULL when none; borrowed. */
const char *actions_service_health_url(const struct engine_call *call, const char *service);

/* Argument getters for prepared args (engine_args_prepare has converted
 * them): NULL / def when absent. Strings are borrowed from args. */
const char *actions_arg_str(const json_t *args, const char *name);
double actions_arg_num(const json_t *args, const char *name, double def);
long long actions_arg_int(const json_t *args, const char *name, long long def);
int actions_arg_bool(const json_t *args, const char *name, int def);

/* An integer argument (def when absent) that must lie in [min, max], for
 * sizes and counts that are cast to size_t or int: *out, or ST_EUSAGE
 * "argument 'NAME' must be between MIN and MAX, not V". */
int actions_arg_range(const json_t *args, const char *name, long long def, long long min,
		      long long max, long long *out, struct st_error *err);

/* ST_ENOMEM with "out of memory" (for `return actions_oom(err)`). */
int actions_oom(struct st_error *err);

/* A JSON string of len bytes of data that may not be valid UTF-8 (process
 * output, log lines): invalid bytes and NULs become U+FFFD. Caller frees;
 * NULL on ENOMEM. */
json_t *actions_text(const char *data, size_t len);

/* The last cap bytes of a stream (exec output). */
struct actions_tail {
	char *buf;            /* owned; cap bytes */
	size_t cap;
	size_t len;           /* bytes held, <= cap */
	unsigned long long total; /* bytes seen */
};

/* 0 or ST_ENOMEM. */
int actions_tail_init(struct actions_tail *t, size_t cap, struct st_error *err);
void actions_tail_add(struct actions_tail *t, const char *data, size_t len);
void actions_tail_release(struct actions_tail *t);

/* ---- environment ---- */

/* value with the password of a URL's user:password@ replaced by "***"
 * ("postgresql://app:***@db:5432/app"); other values unchanged: redact_url()
 * without flags. Caller frees; NULL on ENOMEM. */
char *actions_redact_url_password(const char *value);

/*
 * The docker.env result from a container's Config.Env (array of
 * "NAME=value"): {count, names: [sorted], vars: {NAME: value, or "***" when
 * redact_name_is_secret(NAME)},
 * hidden: [names shown as ***]} and, when require (array of names, may be
 * NULL) is given, {missing: [...], missing_count, missing_text} (missing_text:
 * "A, B" or "none", for messages). A variable set to "" counts as missing.
 * Caller frees; NULL on ENOMEM.
 */
json_t *actions_env_summary(const json_t *env, const json_t *require);

/*
 * Adds to an actions_env_summary() result, for the diagnose checks:
 *   names_like (may be NULL): {matched: [names starting with it], matched_text:
 *   "A, B" or "none"} - names only;
 *   origins (may be NULL): object NAME -> a configured service (its url,
 *   else its health_url) or a URL; adds {origins: {NAME: {value, origin,
 *   expected, expected_from, same, inactive_port}}, origin_mismatches} where
 *   same says whether NAME's value has the expected origin
 *   (actions_url_origin). An unset NAME is a mismatch. When the configured
 *   proxy fronts the service (proxy.service, proxy.url), the proxy's origin
 *   is expected (expected_from "proxy") and the service's own origin counts
 *   only while the proxy routes to its port: one of proxy.blue_port /
 *   green_port that the upstream file does not name is a mismatch
 *   (inactive_port true).
 * 0, ST_EUSAGE (bad origins), ST_ECONFIG (a service without URL), ST_ENOMEM.
 */
int actions_env_extras(const struct engine_call *call, json_t *summary, const json_t *origins,
		       const char *names_like, struct st_error *err);

/* The origin of an http(s) URL as a browser compares it (CORS): scheme and
 * host lowercased, user:password@ dropped, the scheme's default port
 * dropped, path/query/fragment ignored: "HTTP://Api.Example:80/x" ->
 * "http://api.example". 0, or -1 when url is not http(s) or does not fit
 * size. Pure. */
int actions_url_origin(const char *url, char *out, size_t size);

/* ---- postgres ---- */

/* Text parameters from a JSON array (strings as they are, numbers and
 * booleans as text, null as SQL NULL, arrays/objects as JSON text). *out
 * (n entries, each malloc'ed or NULL) is freed with actions_pg_params_free.
 * ST_EUSAGE when params is not an array or has more than 100. */
int actions_pg_params(const json_t *params, char ***out, int *n, struct st_error *err);
void actions_pg_params_free(char **params, int n);

/* Rows of a tuples result as {rows: [{column: value}...], count, columns,
 * truncated}: at most max_rows rows (count is the full number). Integers,
 * floats and booleans become JSON numbers/booleans, json/jsonb parsed,
 * NULL null, everything else a string. Columns named like secrets
 * (password, token ...) read "***". Caller frees; NULL on ENOMEM. */
json_t *actions_pg_rows(const PGresult *res, size_t max_rows);

/* ---- docker exec ---- */

/* Whether exit code satisfies expect: absent/NULL means 0; an integer; an
 * array of integers; or "any". 1 yes, 0 no, ST_EUSAGE for another shape. */
int actions_exit_matches(const json_t *expect, int code, struct st_error *err);

#endif
