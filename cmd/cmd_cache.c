/*
 * cmd_cache.c - `spilttea-ops cache info|clear`: the runbook's "Redis
 * Metrics" (INFO stats / memory / clients) and the "Redis out of memory"
 * fix done safely: keys deleted by pattern with SCAN + UNLINK through the
 * clear-cache runbook (confirmed, journaled, locked), never KEYS or
 * FLUSHALL.
 */
#include "cmd.h"
#include "cmd_engine.h"
#include "../lib/config.h"
#include "../lib/redis.h"
#include "../lib/services.h"
#include "../lib/texttable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char cache_usage[] =
	"usage: spilttea-ops cache info\n"
	"       spilttea-ops cache clear PATTERN\n"
	"\n"
	"  info    Redis memory (used, peak, maxmemory, policy), clients, hit rate,\n"
	"          evictions and keys (the runbook's INFO memory / stats / clients)\n"
	"  clear   delete the keys matching PATTERN (a SCAN MATCH glob: 'cache:*')\n"
	"          with SCAN + UNLINK: their count first, then a confirmation; runs\n"
	"          the runbook clear-cache (journaled, locked). -n prints the count only.\n"
	"          Not the runbook's FLUSHALL: sessions and rate limits stay.\n"
	"  --format FMT   text (default) or json\n"
	"\n"
	"exit status: 0 done, 1 failed, 2 usage or configuration error, 3 not confirmed,\n"
	"4 another run holds the lock\n"
	"\n"
	"examples:\n"
	"  spilttea-ops cache info\n"
	"  spilttea-ops cache clear 'cache:*'\n"
	"  spilttea-ops cache clear 'cache:trending:*' --yes --format json\n";

static int connect_redis(struct ctx *ctx, struct redis_conn **conn)
{
	struct st_error err = { 0 };

	if (services_redis_connect(ctx->config, conn, &err) != 0) {
		cmd_print_error(ctx, &err);
		return ST_EXIT_FAILED;
	}
	return ST_EXIT_OK;
}

/* 100 * hits / lookups, or -1 without lookups. */
static double hit_rate(const struct redis_info_summary *s)
{
	long long lookups = s->keyspace_hits + s->keyspace_misses;

	if (s->keyspace_hits < 0 || s->keyspace_misses < 0 || lookups <= 0)
		return -1;
	return 100.0 * (double)s->keyspace_hits / (double)lookups;
}

static int cache_info(struct ctx *ctx, int json)
{
	struct redis_conn *conn = NULL;
	struct redis_info info = REDIS_INFO_INIT;
	struct redis_info_summary s;
	struct st_error err = { 0 };
	const char *used_h, *max_h, *peak_h, *rss_h;
	double rate;
	int status;

	if ((status = connect_redis(ctx, &conn)) != ST_EXIT_OK)
		return status;
	if (redis_info(conn, NULL, &info, &err) != 0) {
		cmd_print_error(ctx, &err);
		status = ST_EXIT_FAILED;
		goto out;
	}
	redis_info_summarize(&info, &s);
	rate = hit_rate(&s);
	used_h = redis_info_get(&info, "used_memory_human");
	max_h = redis_info_get(&info, "maxmemory_human");
	peak_h = redis_info_get(&info, "used_memory_peak_human");
	rss_h = redis_info_get(&info, "used_memory_rss_human");
	if (json) {
		json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
				      "version", s.version, "used_memory", (json_int_t)s.used_memory,
				      "used_memory_peak", (json_int_t)s.used_memory_peak,
				      "used_memory_rss", (json_int_t)s.used_memory_rss, "maxmemory",
				      (json_int_t)s.maxmemory, "maxmemory_policy", s.maxmemory_policy,
				      "memory_percent", s.memory_percent, "connected_clients",
				      (json_int_t)s.connected_clients, "blocked_clients",
				      (json_int_t)s.blocked_clients, "rejected_connections",
				      (json_int_t)s.rejected_connections, "keyspace_hits",
				      (json_int_t)s.keyspace_hits, "keyspace_misses",
				      (json_int_t)s.keyspace_misses, "evicted_keys", (json_int_t)s.evicted_keys,
				      "expired_keys", (json_int_t)s.expired_keys, "keys", (json_int_t)s.keys,
				      "expires", (json_int_t)s.expires);
		char *text;

		if (o)
			json_object_set_new(o, "hit_rate_percent", rate < 0 ? json_null() : json_real(rate));
		text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
		json_decref(o);
		if (!text) {
			fputs("error: out of memory\n", stderr);
			status = ST_EXIT_FAILED;
			goto out;
		}
		puts(text);
		free(text);
		goto out;
	}
	{
		static const char *const headers[] = { "", "" };
		struct texttable *t = NULL;
		struct sbuf sb = SBUF_INIT;
		char v[5][256];
		const char *rows[5][2] = { { "memory", v[0] }, { "clients", v[1] }, { "hit rate", v[2] },
					   { "evictions", v[3] }, { "keys", v[4] } };
		size_t i;
		int rc;

		if (s.maxmemory > 0)
			snprintf(v[0], sizeof(v[0]), "%s of %s (%.1f%%), peak %s, rss %s, policy %s",
				 used_h ? used_h : "?", max_h ? max_h : "?", s.memory_percent,
				 peak_h ? peak_h : "?", rss_h ? rss_h : "?", s.maxmemory_policy);
		else
			snprintf(v[0], sizeof(v[0]), "%s (no maxmemory), peak %s, rss %s, policy %s",
				 used_h ? used_h : "?", peak_h ? peak_h : "?", rss_h ? rss_h : "?",
				 s.maxmemory_policy);
		snprintf(v[1], sizeof(v[1]), "%lld connected, %lld blocked, %lld connections rejected",
			 s.connected_clients, s.blocked_clients, s.rejected_connections);
		if (rate < 0)
			snprintf(v[2], sizeof(v[2]), "no lookups yet");
		else
			snprintf(v[2], sizeof(v[2]), "%.1f%% (%lld hits, %lld misses)", rate, s.keyspace_hits,
				 s.keyspace_misses);
		snprintf(v[3], sizeof(v[3]), "%lld keys evicted, %lld expired", s.evicted_keys,
			 s.expired_keys);
		snprintf(v[4], sizeof(v[4]), "%lld (%lld with a TTL)", s.keys, s.expires);
		rc = texttable_new(2, headers, &t);
		for (i = 0; !rc && i < 5; i++)
			rc = texttable_add_row(t, rows[i]);
		if (!rc)
			rc = texttable_render(t, 0, &sb);
		/* The header row of this key/value table is empty: skip it. */
		if (!rc) {
			const char *body = strchr(sbuf_str(&sb), '\n');

			printf("redis %s at %s\n%s", s.version, redis_label(conn), body ? body + 1 : "");
		}
		sbuf_release(&sb);
		texttable_free(t);
		if (rc)
			status = ST_EXIT_FAILED;
	}
out:
	redis_info_release(&info);
	redis_close(conn);
	return status;
}

static int cache_clear(struct ctx *ctx, const char *pattern, int json)
{
	struct redis_conn *conn = NULL;
	struct engine_report report;
	struct st_error err = { 0 };
	long long matched = 0, deleted = 0;
	char word[600];
	char *kv[1] = { word };
	const json_t *del;
	int status, rc;

	memset(&report, 0, sizeof(report));
	if (!*pattern)
		return cmd_usage_error(ctx, "the pattern is empty ('*' is every key)");
	if ((size_t)snprintf(word, sizeof(word), "pattern=%s", pattern) >= sizeof(word))
		return cmd_usage_error(ctx, "the pattern is too long");
	if ((status = connect_redis(ctx, &conn)) != ST_EXIT_OK)
		return status;
	rc = redis_count_matching(conn, pattern, &matched, &err);
	redis_close(conn);
	if (rc) {
		cmd_print_error(ctx, &err);
		return ST_EXIT_FAILED;
	}
	if (!json) {
		printf("%lld key%s match%s '%s'\n", matched, matched == 1 ? "" : "s", matched == 1 ? "es" : "",
		       pattern);
		if (!strcmp(pattern, "*") && matched)
			fprintf(stderr, "%swarning:%s '*' is every key: sessions and rate-limit counters too\n",
				cmd_color_on(ctx->color_stderr, COLOR_YELLOW), cmd_color_off(ctx->color_stderr));
		fflush(stdout);
	}
	if (ctx->dry_run || matched == 0) {
		if (json) {
			json_t *o = json_pack("{s:s,s:I,s:I,s:s}", "pattern", pattern, "matched",
					      (json_int_t)matched, "deleted", (json_int_t)0, "result",
					      ctx->dry_run ? "dry-run" : "nothing to do");
			char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;

			json_decref(o);
			if (s)
				puts(s);
			free(s);
		} else if (!matched) {
			puts("nothing to delete");
		}
		return ST_EXIT_OK;
	}
	rc = cmd_engine_run_named(ctx, "clear-cache", 1, kv, json, &report, &err);
	if (rc) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(rc);
		goto out;
	}
	del = json_object_get(json_object_get(report.results, "delete"), "deleted");
	deleted = json_integer_value(del);
	if (json) {
		json_t *o = json_pack("{s:s,s:I,s:I,s:s,s:s}", "pattern", pattern, "matched",
				      (json_int_t)matched, "deleted", (json_int_t)deleted, "result", "ok",
				      "run_id", report.run_id);
		char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;

		json_decref(o);
		if (!s) {
			status = ST_EXIT_FAILED;
			goto out;
		}
		puts(s);
		free(s);
	} else {
		printf("deleted %lld key%s matching '%s'\n", deleted, deleted == 1 ? "" : "s", pattern);
	}
out:
	json_decref(report.results);
	return status;
}

int cmd_cache(int argc, char **argv, struct ctx *ctx)
{
	int json;

	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fputs(cache_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? ST_EXIT_USAGE : ST_EXIT_OK;
	}
	if (ctx->format && strcmp(ctx->format, "text") && strcmp(ctx->format, "json"))
		return cmd_usage_error(ctx, "cache has no format '%s' (text or json)", ctx->format);
	json = ctx->format && !strcmp(ctx->format, "json");
	if (!strcmp(argv[1], "info")) {
		if (argc > 2)
			return cmd_usage_error(ctx, "cache info takes no arguments");
		return cache_info(ctx, json);
	}
	if (!strcmp(argv[1], "clear")) {
		if (argc != 3 || (argv[2][0] == '-' && argv[2][1]))
			return cmd_usage_error(ctx, "cache clear needs one PATTERN, e.g. 'cache:*'");
		return cache_clear(ctx, argv[2], json);
	}
	return cmd_usage_error(ctx, "unknown cache command '%s'", argv[1]);
}
