/*
 * actions_redis.c - redis.* actions: INFO, PING, counting and deleting keys
 * by pattern (SCAN + UNLINK, never KEYS).
 */
#include "actions.h"
#include "actions_util.h"
#include "timeutil.h"

#include <math.h>
#include <string.h>

static int act_info(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	struct redis_info info = REDIS_INFO_INIT;
	struct redis_info_summary s;
	struct redis_conn *conn;
	json_t *raw = NULL;
	size_t i;
	int rc;

	if ((rc = actions_redis_conn(call, &conn, err)) != 0 ||
	    (rc = redis_info(conn, actions_arg_str(args, "section"), &info, err)) != 0)
		goto out;
	redis_info_summarize(&info, &s);
	raw = json_object();
	for (i = 0; raw && i < info.n; i++) {
		json_t *v;

		if (json_object_get(raw, info.entries[i].key))
			continue;
		v = actions_text(info.entries[i].value, strlen(info.entries[i].value));
		if (!v || json_object_set_new(raw, info.entries[i].key, v)) {
			json_decref(raw);
			raw = NULL;
		}
	}
	*result = raw ? json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O}",
				  "version", s.version, "role", s.role, "uptime_s", (json_int_t)s.uptime_s,
				  "used_memory", (json_int_t)s.used_memory, "used_memory_rss",
				  (json_int_t)s.used_memory_rss, "used_memory_peak",
				  (json_int_t)s.used_memory_peak, "maxmemory", (json_int_t)s.maxmemory,
				  "maxmemory_policy", s.maxmemory_policy, "memory_percent",
				  s.memory_percent < 0 ? s.memory_percent : round(s.memory_percent * 10) / 10,
				  "connected_clients", (json_int_t)s.connected_clients, "blocked_clients",
				  (json_int_t)s.blocked_clients, "rejected_connections",
				  (json_int_t)s.rejected_connections, "evicted_keys",
				  (json_int_t)s.evicted_keys, "expired_keys", (json_int_t)s.expired_keys,
				  "keyspace_hits", (json_int_t)s.keyspace_hits, "keyspace_misses",
				  (json_int_t)s.keyspace_misses, "keys", (json_int_t)s.keys, "expires",
				  (json_int_t)s.expires, "raw", raw)
		      : NULL;
	if (!*result)
		rc = actions_oom(err);
out:
	json_decref(raw);
	redis_info_release(&info);
	return rc;
}

static int act_ping(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	struct redis_conn *conn;
	double t0 = time_monotonic();
	int rc;

	(void)args;
	if ((rc = actions_redis_conn(call, &conn, err)) != 0 ||
	    (rc = redis_command(conn, NULL, err, "PING", NULL)) != 0)
		return rc;
	*result = json_pack("{s:b,s:f}", "pong", 1, "latency_s", time_monotonic() - t0);
	return *result ? 0 : actions_oom(err);
}

static int act_count(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err)
{
	const char *pattern = actions_arg_str(args, "pattern");
	struct redis_conn *conn;
	long long n = 0;
	int rc;

	if ((rc = actions_redis_conn(call, &conn, err)) != 0 ||
	    (rc = redis_count_matching(conn, pattern, &n, err)) != 0)
		return rc;
	*result = json_pack("{s:s,s:I}", "pattern", pattern, "count", (json_int_t)n);
	return *result ? 0 : actions_oom(err);
}

static int act_delete(struct engine_call *call, const json_t *args, json_t **result,
		      struct st_error *err)
{
	const char *pattern = actions_arg_str(args, "pattern");
	struct redis_conn *conn;
	long long n = 0;
	int rc;

	if (!*pattern)
		return st_error_set(err, ST_EUSAGE, "pattern must not be empty ('*' for every key)");
	if ((rc = actions_redis_conn(call, &conn, err)) != 0)
		return rc;
	rc = redis_delete_matching(conn, pattern, &n, err);
	if (rc)
		return st_error_wrap(err, "stopped after deleting %lld key%s", n, n == 1 ? "" : "s");
	*result = json_pack("{s:s,s:I}", "pattern", pattern, "deleted", (json_int_t)n);
	return *result ? 0 : actions_oom(err);
}

static const struct engine_arg_spec info_args[] = {
	{ "section", ENGINE_ARG_STRING, 0, NULL, "INFO section: memory, clients, all ... (default set)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec pattern_args[] = {
	{ "pattern", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "glob as SCAN MATCH takes it: cache:*" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action actions_redis[] = {
	{ "redis.info", "INFO: memory, clients, hit counts, keys; raw fields", info_args,
	  ENGINE_ACTION_READ_ONLY, act_info },
	{ "redis.ping", "PING the server", NULL, ENGINE_ACTION_READ_ONLY, act_ping },
	{ "redis.count_matching", "count keys matching a pattern (SCAN)", pattern_args,
	  ENGINE_ACTION_READ_ONLY, act_count },
	{ "redis.delete_matching", "delete keys matching a pattern (SCAN + UNLINK)", pattern_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_delete },
	{ NULL, NULL, NULL, 0, NULL },
};
