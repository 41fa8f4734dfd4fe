/*
 * cmd_db.c - `spilttea-ops db size|connections|slow-queries|kill-idle|
 * vacuum|analyze`: the runbook's "Database Maintenance" and "Database
 * Performance". The reading ones query PostgreSQL directly (lib/pgmaint.h,
 * lib/pgstat.h); the ones that change something run a runbook through the
 * engine (kill-idle-connections, db-vacuum, db-analyze), so they are
 * confirmed, journaled, locked and --dry-run'able like every procedure.
 */
#include "cmd.h"
#include "cmd_engine.h"
#include "../lib/config.h"
#include "../lib/pgmaint.h"
#include "../lib/pgstat.h"
#include "../lib/services.h"
#include "../lib/texttable.h"
#include "../lib/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char db_usage[] =
	"usage: spilttea-ops db size [--schema S]\n"
	"       spilttea-ops db connections\n"
	"       spilttea-ops db slow-queries [--min 5s] [--limit N]\n"
	"       spilttea-ops db kill-idle [--older-than 5m] [--restart-backend]\n"
	"       spilttea-ops db vacuum [--full] [--analyze] [--table T] [--schema S]\n"
	"       spilttea-ops db analyze [--table T] [--schema S]\n"
	"\n"
	"The runbook's Database Maintenance and Database Performance.\n"
	"  size           the database and each table: total, table, indexes, TOAST,\n"
	"                 estimated rows (every schema but the system ones, or --schema)\n"
	"  connections    in use against max_connections; by state, application, user\n"
	"  slow-queries   statements running for --min or longer (default 5s),\n"
	"                 longest first (at most --limit, default 50)\n"
	"  kill-idle      terminate connections idle for longer than --older-than\n"
	"                 (default 5m; runbook kill-idle-connections, confirmed)\n"
	"  vacuum         VACUUM (reclaims space for reuse); --analyze also ANALYZE;\n"
	"                 --full is VACUUM FULL: it rewrites each table under an\n"
	"                 exclusive lock (reads and writes wait) and needs confirmation\n"
	"  analyze        ANALYZE: fresh planner statistics\n"
	"Tables are named as written (Post, not post); no --table means every table.\n"
	"Writing commands run runbooks (db-vacuum, db-analyze, kill-idle-connections):\n"
	"journaled and locked; -n shows the plan, -y confirms.\n"
	"  --format FMT   text (tables, default) or json\n"
	"\n"
	"exit status: 0 done, 1 failed, 2 usage or configuration error, 3 not confirmed,\n"
	"4 another run holds the lock\n"
	"\n"
	"examples:\n"
	"  spilttea-ops db size\n"
	"  spilttea-ops db slow-queries --min 2s --format json\n"
	"  spilttea-ops db kill-idle --older-than 10m --yes\n"
	"  spilttea-ops db vacuum --analyze --table Post\n";

struct dbopts {
	const char *schema;
	const char *table;
	double min_s;
	int limit;
	double older_s;
	const char *older_text;
	int restart_backend;
	int full;
	int analyze;
	int json;
};

static double stmt_timeout(const struct ctx *ctx)
{
	return ctx->config->postgres.statement_timeout > 0 ? ctx->config->postgres.statement_timeout : 30;
}

/* Prints a JSON value (consumed) as indented text. */
static int print_json(json_t *v)
{
	char *s = v ? json_dumps(v, JSON_INDENT(2)) : NULL;

	json_decref(v);
	if (!s) {
		fputs("error: out of memory\n", stderr);
		return ST_EXIT_FAILED;
	}
	puts(s);
	free(s);
	return ST_EXIT_OK;
}

static int print_table(const struct ctx *ctx, struct texttable *t)
{
	struct sbuf sb = SBUF_INIT;
	int rc = texttable_render(t, ctx->color_stdout, &sb);

	if (!rc)
		fputs(sbuf_str(&sb), stdout);
	sbuf_release(&sb);
	return rc ? ST_EXIT_FAILED : ST_EXIT_OK;
}

static int connect_pg(struct ctx *ctx, struct pg_conn **conn)
{
	struct st_error err = { 0 };

	if (services_pg_connect(ctx->config, NULL, NULL, conn, &err) != 0) {
		cmd_print_error(ctx, &err);
		return ST_EXIT_FAILED;
	}
	return ST_EXIT_OK;
}

static int db_size(struct ctx *ctx, const struct dbopts *o)
{
	static const char *const headers[] = { "SCHEMA", "TABLE", "TOTAL", "TABLE DATA", "INDEXES",
					       "TOAST", "ROWS (EST.)" };
	struct pg_conn *conn = NULL;
	struct pg_server_info info;
	struct pgmaint_table *t = NULL;
	struct texttable *tt = NULL;
	struct st_error err = { 0 };
	size_t n = 0, i;
	int status;

	if ((status = connect_pg(ctx, &conn)) != ST_EXIT_OK)
		return status;
	if (pg_server_info(conn, stmt_timeout(ctx), &info, &err) != 0 ||
	    pgmaint_table_sizes(conn, o->schema, stmt_timeout(ctx), &t, &n, &err) != 0) {
		cmd_print_error(ctx, &err);
		status = ST_EXIT_FAILED;
		goto out;
	}
	if (o->json) {
		json_t *tables = json_array();

		for (i = 0; tables && i < n; i++)
			json_array_append_new(tables, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "schema",
								t[i].schema, "table", t[i].name, "total_bytes",
								(json_int_t)t[i].total_bytes, "table_bytes",
								(json_int_t)t[i].table_bytes, "index_bytes",
								(json_int_t)t[i].index_bytes, "toast_bytes",
								(json_int_t)t[i].toast_bytes, "rows_estimate",
								(json_int_t)t[i].rows_estimate));
		status = print_json(tables ? json_pack("{s:s,s:I,s:o}", "database", info.database,
						       "database_bytes", (json_int_t)info.database_bytes,
						       "tables", tables)
					   : NULL);
		goto out;
	}
	{
		char b[32];

		printf("database %s: %s\n\n", info.database,
		       pgmaint_format_bytes(info.database_bytes, b, sizeof(b)));
	}
	if (texttable_new(7, headers, &tt) != 0)
		goto nomem;
	for (i = 0; i < n; i++) {
		char b[4][32], rows[32];
		const char *cells[7];

		snprintf(rows, sizeof(rows), t[i].rows_estimate < 0 ? "?" : "%lld", t[i].rows_estimate);
		cells[0] = t[i].schema;
		cells[1] = t[i].name;
		cells[2] = pgmaint_format_bytes(t[i].total_bytes, b[0], sizeof(b[0]));
		cells[3] = pgmaint_format_bytes(t[i].table_bytes, b[1], sizeof(b[1]));
		cells[4] = pgmaint_format_bytes(t[i].index_bytes, b[2], sizeof(b[2]));
		cells[5] = pgmaint_format_bytes(t[i].toast_bytes, b[3], sizeof(b[3]));
		cells[6] = rows;
		if (texttable_add_row(tt, cells) != 0)
			goto nomem;
	}
	status = print_table(ctx, tt);
	if (!n)
		printf("(no tables%s%s)\n", o->schema ? " in schema " : "", o->schema ? o->schema : "");
	goto out;
nomem:
	fputs("error: out of memory\n", stderr);
	status = ST_EXIT_FAILED;
out:
	texttable_free(tt);
	free(t);
	pg_close(conn);
	return status;
}

static const char *const group_names[] = { "state", "application", "user", "database" };

static int db_connections(struct ctx *ctx, const struct dbopts *o)
{
	struct pg_conn *conn = NULL;
	struct pg_saturation s;
	struct pgmaint_group *g[4] = { NULL, NULL, NULL, NULL };
	size_t ng[4] = { 0, 0, 0, 0 }, i, k;
	struct st_error err = { 0 };
	int status;

	if ((status = connect_pg(ctx, &conn)) != ST_EXIT_OK)
		return status;
	if (pg_connection_saturation(conn, stmt_timeout(ctx), &s, &err) != 0)
		goto fail;
	for (k = 0; k < 4; k++)
		if (pgmaint_connections_by(conn, (enum pgmaint_group_by)k, stmt_timeout(ctx), &g[k], &ng[k],
					   &err) != 0)
			goto fail;
	if (o->json) {
		json_t *out = json_pack("{s:i,s:i,s:i,s:f,s:i,s:i}", "max_connections", s.max_connections,
					"usable", s.usable, "in_use", s.in_use, "percent", s.percent,
					"superuser_reserved", s.superuser_reserved, "not_visible", s.unknown);

		for (k = 0; out && k < 4; k++) {
			json_t *by = json_object();

			for (i = 0; by && i < ng[k]; i++)
				json_object_set_new(by, g[k][i].key, json_integer(g[k][i].count));
			if (by) {
				char key[32];

				snprintf(key, sizeof(key), "by_%s", group_names[k]);
				json_object_set_new(out, key, by);
			}
		}
		status = print_json(out);
		goto out;
	}
	printf("connections: %d in use of %d usable (%.1f%%), max_connections %d, %d reserved for "
	       "superusers\n",
	       s.in_use, s.usable, s.percent, s.max_connections, s.superuser_reserved);
	for (k = 0; k < 4 && status == ST_EXIT_OK; k++) {
		struct texttable *t = NULL;
		char head[32];
		const char *headers[2] = { head, "CONNECTIONS" };

		snprintf(head, sizeof(head), "BY %s", group_names[k]);
		for (i = 0; head[i]; i++)
			if (head[i] >= 'a' && head[i] <= 'z')
				head[i] = (char)(head[i] - 32);
		putchar('\n');
		if (texttable_new(2, headers, &t) != 0) {
			texttable_free(t);
			status = ST_EXIT_FAILED;
			break;
		}
		for (i = 0; i < ng[k]; i++) {
			char num[16];
			const char *cells[2] = { g[k][i].key, num };

			snprintf(num, sizeof(num), "%d", g[k][i].count);
			if (texttable_add_row(t, cells) != 0)
				status = ST_EXIT_FAILED;
		}
		if (status == ST_EXIT_OK)
			status = print_table(ctx, t);
		texttable_free(t);
	}
	if (s.unknown)
		printf("\n%d connections belong to other roles whose state this role may not see\n", s.unknown);
	goto out;
fail:
	cmd_print_error(ctx, &err);
	status = ST_EXIT_FAILED;
out:
	for (k = 0; k < 4; k++)
		free(g[k]);
	pg_close(conn);
	return status;
}

static json_t *activity_json(const struct pg_activity *a)
{
	return json_pack("{s:i,s:f,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b}", "pid", a->pid, "duration_s",
			 a->duration_s, "state", a->state, "user", a->user, "database", a->database,
			 "application", a->application, "client_addr", a->client_addr, "wait_event",
			 a->wait_event, "query", a->query, "query_truncated", a->query_truncated);
}

static int activity_table(struct ctx *ctx, const struct pg_activity *a, size_t n, const char *what)
{
	const char *const headers[] = { "PID", what, "USER", "APPLICATION", "CLIENT", "WAIT", "QUERY" };
	struct texttable *t = NULL;
	size_t i;
	int status;

	if (texttable_new(7, headers, &t) != 0)
		return ST_EXIT_FAILED;
	for (i = 0; i < n; i++) {
		char pid[16], dur[32];
		const char *cells[7] = { pid, dur, a[i].user, a[i].application,
					 a[i].client_addr[0] ? a[i].client_addr : "local", a[i].wait_event,
					 a[i].query };

		snprintf(pid, sizeof(pid), "%d", a[i].pid);
		time_format_duration(a[i].duration_s, dur, sizeof(dur));
		if (texttable_add_row(t, cells) != 0) {
			texttable_free(t);
			return ST_EXIT_FAILED;
		}
	}
	status = print_table(ctx, t);
	texttable_free(t);
	return status;
}

static int db_slow(struct ctx *ctx, const struct dbopts *o)
{
	struct pg_conn *conn = NULL;
	struct pg_activity *a = NULL;
	struct st_error err = { 0 };
	size_t n = 0, i, kept = 0;
	int status;

	if ((status = connect_pg(ctx, &conn)) != ST_EXIT_OK)
		return status;
	/* Longest first, so those above --min are a prefix. */
	if (pg_longest_queries(conn, o->limit, stmt_timeout(ctx), &a, &n, &err) != 0) {
		cmd_print_error(ctx, &err);
		status = ST_EXIT_FAILED;
		goto out;
	}
	while (kept < n && a[kept].duration_s >= o->min_s)
		kept++;
	if (o->json) {
		json_t *arr = json_array();

		for (i = 0; arr && i < kept; i++)
			json_array_append_new(arr, activity_json(&a[i]));
		status = print_json(arr);
		goto out;
	}
	if (!kept) {
		char d[32];

		printf("no statement has been running for %s or longer\n",
		       time_format_duration(o->min_s, d, sizeof(d)));
		goto out;
	}
	status = activity_table(ctx, a, kept, "RUNNING FOR");
out:
	free(a);
	pg_close(conn);
	return status;
}

/* Runs runbook name with the words; prints the outcome unless JSON. */
static int run_named(struct ctx *ctx, const char *name, int argc, char **kv, int json,
		     struct engine_report *report)
{
	struct st_error err = { 0 };
	int rc = cmd_engine_run_named(ctx, name, argc, kv, json, report, &err);

	if (rc) {
		cmd_print_error(ctx, &err);
		return cmd_exit_status(rc);
	}
	return ST_EXIT_OK;
}

static int db_kill_idle(struct ctx *ctx, const struct dbopts *o)
{
	struct pg_conn *conn = NULL;
	struct pg_activity *a = NULL;
	struct engine_report report;
	struct st_error err = { 0 };
	char w1[64], w2[64], d[32];
	char *kv[2] = { w1, w2 };
	size_t n = 0, i;
	json_t *out = NULL, *term;
	int status;

	memset(&report, 0, sizeof(report));
	if ((status = connect_pg(ctx, &conn)) != ST_EXIT_OK)
		return status;
	if (pg_idle_connections(conn, o->older_s, stmt_timeout(ctx), &a, &n, &err) != 0) {
		cmd_print_error(ctx, &err);
		status = ST_EXIT_FAILED;
		goto out;
	}
	pg_close(conn);
	conn = NULL;
	time_format_duration(o->older_s, d, sizeof(d));
	if (!o->json) {
		printf("%zu connection%s idle for more than %s\n", n, n == 1 ? "" : "s", d);
		if (n && (status = activity_table(ctx, a, n, "IDLE FOR")) != ST_EXIT_OK)
			goto out;
		fflush(stdout);
	}
	snprintf(w1, sizeof(w1), "older_than=%s", o->older_text);
	snprintf(w2, sizeof(w2), "restart_backend=%s", o->restart_backend ? "true" : "false");
	if (!n && !o->restart_backend) {
		if (o->json)
			status = print_json(json_pack("{s:[],s:i,s:s}", "candidates", "terminated", 0,
						      "result", "nothing to do"));
		goto out;
	}
	status = run_named(ctx, "kill-idle-connections", 2, kv, o->json, &report);
	term = json_object_get(report.results, "terminate");
	if (o->json) {
		json_t *cand = json_array();

		for (i = 0; cand && i < n; i++)
			json_array_append_new(cand, activity_json(&a[i]));
		out = json_pack("{s:o,s:I,s:s,s:s}", "candidates", cand, "terminated",
				(json_int_t)json_integer_value(json_object_get(term, "terminated")), "result",
				status == ST_EXIT_OK ? (ctx->dry_run ? "dry-run" : "ok") : "failed",
				"run_id", report.run_id);
		if (status == ST_EXIT_OK)
			status = print_json(out);
		else
			json_decref(out);
		out = NULL;
	} else if (status == ST_EXIT_OK && term) {
		printf("terminated %lld of %lld\n", (long long)json_integer_value(json_object_get(term, "terminated")),
		       (long long)json_integer_value(json_object_get(term, "candidates")));
	}
out:
	json_decref(report.results);
	json_decref(out);
	free(a);
	pg_close(conn);
	return status;
}

static int db_vacuum_or_analyze(struct ctx *ctx, const struct dbopts *o, int vacuum)
{
	struct engine_report report;
	char w[4][300];
	char *kv[4] = { w[0], w[1], w[2], w[3] };
	const json_t *res;
	int status, n = 0;

	memset(&report, 0, sizeof(report));
	if (vacuum && o->full && !o->json)
		fprintf(stderr, "%swarning:%s VACUUM FULL rewrites %s under an exclusive lock: reads and "
			"writes wait until it is done. Run it off-peak.\n",
			cmd_color_on(ctx->color_stderr, COLOR_YELLOW), cmd_color_off(ctx->color_stderr),
			o->table ? "the table" : "every table, one after the other,");
	snprintf(w[n++], sizeof(w[0]), "table=%s", o->table ? o->table : "");
	snprintf(w[n++], sizeof(w[0]), "schema=%s", o->schema ? o->schema : "");
	if (vacuum) {
		snprintf(w[n++], sizeof(w[0]), "full=%s", o->full ? "true" : "false");
		snprintf(w[n++], sizeof(w[0]), "analyze=%s", o->analyze ? "true" : "false");
	}
	status = run_named(ctx, vacuum ? "db-vacuum" : "db-analyze", n, kv, o->json, &report);
	res = json_object_get(report.results, vacuum ? (o->full ? "vacuum-full" : "vacuum") : "analyze");
	if (o->json && status == ST_EXIT_OK) {
		json_t *out = res ? json_deep_copy(res) : json_object();

		if (out) {
			json_object_set_new(out, "run_id", json_string(report.run_id));
			json_object_set_new(out, "result", json_string(ctx->dry_run ? "dry-run" : "ok"));
		}
		status = print_json(out);
	} else if (status == ST_EXIT_OK && res && vacuum) {
		char b1[32], b2[32], b3[32], d[32];

		printf("%s %s: %s -> %s, reclaimed %s in %s\n", o->full ? "VACUUM FULL" : "VACUUM",
		       o->table ? o->table : "(every table)",
		       pgmaint_format_bytes((long long)json_integer_value(json_object_get(res, "bytes_before")),
					    b1, sizeof(b1)),
		       pgmaint_format_bytes((long long)json_integer_value(json_object_get(res, "bytes_after")),
					    b2, sizeof(b2)),
		       pgmaint_format_bytes((long long)json_integer_value(json_object_get(res, "reclaimed_bytes")),
					    b3, sizeof(b3)),
		       time_format_duration(json_real_value(json_object_get(res, "duration_s")), d, sizeof(d)));
	}
	json_decref(report.results);
	return status;
}

/* Option value: "--name V" or "--name=V"; *i advanced. NULL when absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (!strcmp(argv[*i], name))
		return *i + 1 < argc ? argv[++*i] : "";
	return NULL;
}

int cmd_db(int argc, char **argv, struct ctx *ctx)
{
	struct dbopts o;
	const char *sub, *v;
	int i;

	if (argc < 2 || !strcmp(argv[1], "--help")) {
		fputs(db_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? ST_EXIT_USAGE : ST_EXIT_OK;
	}
	memset(&o, 0, sizeof(o));
	o.min_s = 5;
	o.limit = 50;
	o.older_s = 300;
	o.older_text = "5m";
	sub = argv[1];
	if (strcmp(sub, "size") && strcmp(sub, "connections") && strcmp(sub, "slow-queries") &&
	    strcmp(sub, "kill-idle") && strcmp(sub, "vacuum") && strcmp(sub, "analyze"))
		return cmd_usage_error(ctx, "unknown db command '%s'", sub);
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		int for_sub = 1;

		if ((v = opt_value(argc, argv, &i, "--schema")) != NULL) {
			for_sub = !strcmp(sub, "size") || !strcmp(sub, "vacuum") || !strcmp(sub, "analyze");
			o.schema = v;
		} else if ((v = opt_value(argc, argv, &i, "--table")) != NULL) {
			for_sub = !strcmp(sub, "vacuum") || !strcmp(sub, "analyze");
			o.table = v;
		} else if ((v = opt_value(argc, argv, &i, "--min")) != NULL) {
			for_sub = !strcmp(sub, "slow-queries");
			if (time_parse_duration(v, &o.min_s) != 0)
				return cmd_usage_error(ctx, "--min '%s' is not a duration (5s, 500ms, 1m)", v);
		} else if ((v = opt_value(argc, argv, &i, "--limit")) != NULL) {
			char *end;
			long n = strtol(v, &end, 10);

			for_sub = !strcmp(sub, "slow-queries");
			if (!*v || *end || n < 1 || n > 10000)
				return cmd_usage_error(ctx, "--limit '%s' is not a number from 1 to 10000", v);
			o.limit = (int)n;
		} else if ((v = opt_value(argc, argv, &i, "--older-than")) != NULL) {
			for_sub = !strcmp(sub, "kill-idle");
			if (time_parse_duration(v, &o.older_s) != 0)
				return cmd_usage_error(ctx, "--older-than '%s' is not a duration (5m, 30s)", v);
			o.older_text = v;
		} else if (!strcmp(a, "--restart-backend")) {
			for_sub = !strcmp(sub, "kill-idle");
			o.restart_backend = 1;
		} else if (!strcmp(a, "--full")) {
			for_sub = !strcmp(sub, "vacuum");
			o.full = 1;
		} else if (!strcmp(a, "--analyze")) {
			for_sub = !strcmp(sub, "vacuum");
			o.analyze = 1;
		} else {
			return cmd_usage_error(ctx, "unknown option '%s' for db %s", a, sub);
		}
		if (!for_sub)
			return cmd_usage_error(ctx, "db %s takes no '%s'", sub, a);
		if (v && !*v)
			return cmd_usage_error(ctx, "option '%s' needs a value", a);
	}
	if (ctx->format && strcmp(ctx->format, "text") && strcmp(ctx->format, "json"))
		return cmd_usage_error(ctx, "db has no format '%s' (text or json)", ctx->format);
	o.json = ctx->format && !strcmp(ctx->format, "json");
	if (o.schema && !o.table && strcmp(sub, "size"))
		return cmd_usage_error(ctx, "--schema needs --table");
	if (!strcmp(sub, "size"))
		return db_size(ctx, &o);
	if (!strcmp(sub, "connections"))
		return db_connections(ctx, &o);
	if (!strcmp(sub, "slow-queries"))
		return db_slow(ctx, &o);
	if (!strcmp(sub, "kill-idle"))
		return db_kill_idle(ctx, &o);
	return db_vacuum_or_analyze(ctx, &o, !strcmp(sub, "vacuum"));
}
