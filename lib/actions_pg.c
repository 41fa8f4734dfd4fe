/*
 * actions_pg.c - pg.* actions: read-only queries, statements, connection
 * saturation, terminating idle connections, ANALYZE.
 *
 * SQL text is written in the runbook and declared ENGINE_ARG_LITERAL, so a
 * runbook putting "${...}" into it is refused at load: values reach the
 * server only as $1, $2 ... parameters (PQexecParams), identifiers only
 * through pg_quote_ident(). pg.query runs inside a READ ONLY transaction
 * that is always rolled back, so a check or verify cannot write even when
 * its SQL tries to. pg.exec may write anything and is DESTRUCTIVE.
 *
 * READ ONLY is about data only: functions such as pg_terminate_backend,
 * pg_cancel_backend, pg_reload_conf, advisory locks and dblink_exec still
 * act inside it. pg.query refuses the known ones by name (acting_function)
 * and its summary says so; what a user-defined function does is not
 * checked: such calls belong in pg.exec.
 */
#include "actions.h"
#include "actions_util.h"
#include "config.h"
#include "pgmaint.h"
#include "pgstat.h"
#include "services.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static double statement_timeout(const struct engine_call *call, const json_t *args)
{
	double def = call->services ? call->services->cfg->postgres.statement_timeout : 30;

	return actions_arg_num(args, "timeout", def > 0 ? def : 30);
}

/* Functions that act even in a READ ONLY transaction. A trailing '*'
 * matches any name that starts so. */
static const char *const acting_functions[] = {
	"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
	"pg_switch_wal", "pg_create_restore_point", "pg_log_backend_memory_contexts",
	"pg_advisory_*", "pg_try_advisory_*", "pg_logical_emit_message", "pg_notify",
	"dblink_exec", "dblink", "dblink_send_query", "dblink_connect*", "lo_export", "lo_import",
	"pg_file_write", "pg_file_rename", "pg_file_unlink", NULL,
};

static int ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '$';
}

/* The first acting function sql names (as a whole identifier, any case),
 * or NULL. Text in string literals counts too: refusing a harmless query
 * is better than missing a call. */
static const char *acting_function(const char *sql)
{
	size_t i, n;
	const char *p;

	for (i = 0; acting_functions[i]; i++) {
		const char *name = acting_functions[i];
		int prefix;

		n = strlen(name);
		prefix = name[n - 1] == '*';
		if (prefix)
			n--;
		for (p = sql; (p = strcasestr(p, prefix ? "pg_" : name)) != NULL; p++) {
			if ((p > sql && ident_char(p[-1])) || strncasecmp(p, name, n))
				continue;
			if (prefix || !ident_char(p[n]))
				return name;
		}
	}
	return NULL;
}

static int act_query(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err)
{
	struct pg_conn *conn = NULL;
	PGresult *res = NULL;
	char **params = NULL;
	long long max_rows;
	int n = 0, owned = 0, rc, began = 0;
	struct st_error rerr = { 0 };

	const char *acting = acting_function(actions_arg_str(args, "sql"));

	if (acting) {
		st_error_set(err, ST_EUSAGE, "pg.query cannot call %s: it acts even in a read-only "
			     "transaction", acting);
		return st_error_hint(err, "run it with pg.exec (destructive: the step needs confirm), or "
				     "pg.terminate_idle for idle connections");
	}
	if ((rc = actions_arg_range(args, "max_rows", 1000, 0, 100000, &max_rows, err)) != 0 ||
	    (rc = actions_pg_params(json_object_get(args, "params"), &params, &n, err)) != 0 ||
	    (rc = actions_pg_conn(call, actions_arg_str(args, "database"), &conn, &owned, err)) != 0)
		goto out;
	if ((rc = pg_exec(conn, "BEGIN TRANSACTION READ ONLY", 0, NULL, 10, err)) != 0)
		goto out;
	began = 1;
	rc = pg_query(conn, actions_arg_str(args, "sql"), n, (const char *const *)params,
		      statement_timeout(call, args), &res, err);
	if (rc)
		goto out;
	*result = actions_pg_rows(res, (size_t)max_rows);
	if (!*result)
		rc = actions_oom(err);
out:
	/* Nothing to keep: read-only. A failed rollback leaves the connection
	 * unusable, and services_pg() reconnects next time. */
	if (began && pg_usable(conn))
		(void)pg_exec(conn, "ROLLBACK", 0, NULL, 10, &rerr);
	PQclear(res);
	actions_pg_done(conn, owned);
	actions_pg_params_free(params, n);
	return rc;
}

static int act_exec(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	struct pg_conn *conn = NULL;
	PGresult *res = NULL;
	char **params = NULL;
	long long affected = 0;
	const char *tuples;
	int n = 0, owned = 0, rc;

	if ((rc = actions_pg_params(json_object_get(args, "params"), &params, &n, err)) != 0 ||
	    (rc = actions_pg_conn(call, actions_arg_str(args, "database"), &conn, &owned, err)) != 0)
		goto out;
	rc = pg_query(conn, actions_arg_str(args, "sql"), n, (const char *const *)params,
		      statement_timeout(call, args), &res, err);
	if (rc)
		goto out;
	tuples = PQcmdTuples(res);
	if (tuples && *tuples)
		(void)pg_parse_long(tuples, &affected);
	*result = json_pack("{s:I,s:s}", "affected", (json_int_t)affected, "command", PQcmdStatus(res));
	if (!*result)
		rc = actions_oom(err);
out:
	PQclear(res);
	actions_pg_done(conn, owned);
	actions_pg_params_free(params, n);
	return rc;
}

static json_t *activity_pids(const struct pg_activity *a, size_t n)
{
	json_t *pids = json_array();
	size_t i;

	for (i = 0; pids && i < n; i++)
		if (json_array_append_new(pids, json_integer(a[i].pid))) {
			json_decref(pids);
			return NULL;
		}
	return pids;
}

/* Whether PostgreSQL accepts a connection and answers: a server that
 * does not is a result (ok false and why), not an error, so a check can
 * expect it either way. */
static int act_ping(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	struct pg_conn *conn = NULL;
	struct st_error perr = { 0 };
	char *version = NULL;
	double t0 = time_monotonic();
	int owned = 0, rc;

	rc = actions_pg_conn(call, actions_arg_str(args, "database"), &conn, &owned, &perr);
	if (rc == 0)
		rc = pg_query_text(conn, "SHOW server_version", 0, NULL,
				   actions_arg_num(args, "timeout", 5), &version, &perr);
	if (rc == ST_ENOMEM || rc == ST_EUSAGE) {
		*err = perr;
		goto out;
	}
	*result = json_pack("{s:b,s:f,s:s,s:s}", "ok", rc == 0, "latency_s",
			    round((time_monotonic() - t0) * 1000) / 1000, "server_version",
			    version ? version : "", "error", rc ? perr.message : "");
	rc = *result ? 0 : actions_oom(err);
out:
	free(version);
	actions_pg_done(conn, owned);
	return rc;
}

static int act_connections(struct engine_call *call, const json_t *args, json_t **result,
			   struct st_error *err)
{
	struct pg_conn *conn = NULL;
	struct pg_saturation s;
	struct pg_activity *idle = NULL;
	double older = actions_arg_num(args, "idle_older_than", 300);
	double timeout = statement_timeout(call, args);
	size_t nidle = 0;
	json_t *pids = NULL;
	int owned = 0, rc;

	if ((rc = actions_pg_conn(call, NULL, &conn, &owned, err)) != 0 ||
	    (rc = pg_connection_saturation(conn, timeout, &s, err)) != 0 ||
	    (rc = pg_idle_connections(conn, older, timeout, &idle, &nidle, err)) != 0)
		goto out;
	pids = activity_pids(idle, nidle);
	*result = pids ? json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:i,s:O,s:f}",
				   "max_connections", s.max_connections, "usable", s.usable, "in_use",
				   s.in_use, "active", s.active, "idle", s.idle, "idle_in_transaction",
				   s.idle_in_transaction, "unknown", s.unknown, "other", s.other,
				   "in_database", s.in_database, "percent", round(s.percent * 10) / 10,
				   "idle_older_than_s", older, "idle_older", (int)nidle,
				   "idle_older_pids", pids, "longest_idle_s",
				   nidle ? round(idle[0].duration_s * 10) / 10 : 0.0)
		       : NULL;
	if (!*result)
		rc = actions_oom(err);
out:
	json_decref(pids);
	free(idle);
	actions_pg_done(conn, owned);
	return rc;
}

static int act_terminate_idle(struct engine_call *call, const json_t *args, json_t **result,
			      struct st_error *err)
{
	struct pg_conn *conn = NULL;
	struct pg_activity *idle = NULL;
	double older = actions_arg_num(args, "older_than", 300);
	double timeout = statement_timeout(call, args);
	size_t n = 0, i, terminated = 0;
	int *pids = NULL, owned = 0, rc;
	json_t *jp = NULL;

	if ((rc = actions_pg_conn(call, NULL, &conn, &owned, err)) != 0 ||
	    (rc = pg_idle_connections(conn, older, timeout, &idle, &n, err)) != 0)
		goto out;
	if (n) {
		pids = calloc(n, sizeof(*pids));
		if (!pids) {
			rc = actions_oom(err);
			goto out;
		}
		for (i = 0; i < n; i++)
			pids[i] = idle[i].pid;
		/* Re-checked at the moment of terminating: one that went back
		 * to work since the list was read is spared. */
		rc = pg_terminate_backends(conn, pids, n, older, timeout, &terminated, err);
		if (rc)
			goto out;
	}
	jp = activity_pids(idle, n);
	*result = jp ? json_pack("{s:i,s:i,s:O,s:f}", "terminated", (int)terminated, "candidates",
				 (int)n, "pids", jp, "older_than_s", older)
		     : NULL;
	if (!*result)
		rc = actions_oom(err);
out:
	json_decref(jp);
	free(pids);
	free(idle);
	actions_pg_done(conn, owned);
	return rc;
}

static int act_analyze(struct engine_call *call, const json_t *args, json_t **result,
		       struct st_error *err)
{
	const char *table = actions_arg_str(args, "table");
	const char *schema = actions_arg_str(args, "schema");
	struct pg_conn *conn = NULL;
	char *qt = NULL, *qs = NULL, *sql = NULL;
	double t0 = time_monotonic();
	int owned = 0, rc;

	/* "" is "every table", so a runbook can pass an optional parameter. */
	if (table && !*table)
		table = NULL;
	if (schema && !*schema)
		schema = NULL;
	if (schema && !table)
		return st_error_set(err, ST_EUSAGE, "'schema' needs 'table'");
	if ((rc = actions_pg_conn(call, actions_arg_str(args, "database"), &conn, &owned, err)) != 0)
		goto out;
	if (table && ((rc = pg_quote_ident(conn, table, &qt, err)) != 0 ||
		      (schema && (rc = pg_quote_ident(conn, schema, &qs, err)) != 0)))
		goto out;
	if (asprintf(&sql, "ANALYZE%s%s%s%s", qt ? " " : "", qs ? qs : "", qs ? "." : "",
		     qt ? qt : "") < 0) {
		sql = NULL;
		rc = actions_oom(err);
		goto out;
	}
	if ((rc = pg_exec(conn, sql, 0, NULL, actions_arg_num(args, "timeout", 600), err)) != 0)
		goto out;
	*result = json_pack("{s:s,s:b,s:f}", "table", table ? table : "*", "analyzed", 1, "duration_s",
			    time_monotonic() - t0);
	if (!*result)
		rc = actions_oom(err);
out:
	free(sql);
	free(qt);
	free(qs);
	actions_pg_done(conn, owned);
	return rc;
}

/* VACUUM [FULL] [ANALYZE] [table]. VACUUM refuses to run inside a
 * transaction block, so it goes out on its own, in autocommit. */
static int vacuum(struct engine_call *call, const json_t *args, int full, json_t **result,
		  struct st_error *err)
{
	const char *table = actions_arg_str(args, "table");
	const char *schema = actions_arg_str(args, "schema");
	int analyze = actions_arg_bool(args, "analyze", 0);
	double timeout = actions_arg_num(args, "timeout", 3600);
	struct pg_conn *conn = NULL;
	char *qt = NULL, *qs = NULL, *sql = NULL;
	long long before = 0, after = 0;
	double t0;
	int owned = 0, rc;

	if (table && !*table)
		table = NULL;
	if (schema && !*schema)
		schema = NULL;
	if (schema && !table)
		return st_error_set(err, ST_EUSAGE, "'schema' needs 'table'");
	if ((rc = actions_pg_conn(call, actions_arg_str(args, "database"), &conn, &owned, err)) != 0)
		goto out;
	if (PQtransactionStatus(pg_raw(conn)) != PQTRANS_IDLE) {
		rc = st_error_set(err, ST_EFAILED, "cannot vacuum: the connection is inside a transaction");
		goto out;
	}
	if ((rc = pgmaint_relation_size(conn, schema, table, 30, &before, err)) != 0)
		goto out;
	if (table && ((rc = pg_quote_ident(conn, table, &qt, err)) != 0 ||
		      (schema && (rc = pg_quote_ident(conn, schema, &qs, err)) != 0)))
		goto out;
	if (asprintf(&sql, "VACUUM (%s%s%s)%s%s%s%s", full ? "FULL" : "", full && analyze ? ", " : "",
		     analyze ? "ANALYZE" : "", qt ? " " : "", qs ? qs : "", qs ? "." : "",
		     qt ? qt : "") < 0) {
		sql = NULL;
		rc = actions_oom(err);
		goto out;
	}
	/* "VACUUM ()" is not valid: plain VACUUM takes no list. */
	if (!full && !analyze) {
		free(sql);
		if (asprintf(&sql, "VACUUM%s%s%s%s", qt ? " " : "", qs ? qs : "", qs ? "." : "",
			     qt ? qt : "") < 0) {
			sql = NULL;
			rc = actions_oom(err);
			goto out;
		}
	}
	t0 = time_monotonic();
	if ((rc = pg_exec(conn, sql, 0, NULL, timeout, err)) != 0)
		goto out;
	if ((rc = pgmaint_relation_size(conn, schema, table, 30, &after, err)) != 0)
		goto out;
	*result = json_pack("{s:s,s:b,s:b,s:f,s:I,s:I,s:I}", "table", table ? table : "*", "full", full,
			    "analyze", analyze, "duration_s", time_monotonic() - t0, "bytes_before",
			    (json_int_t)before, "bytes_after", (json_int_t)after, "reclaimed_bytes",
			    (json_int_t)(before > after ? before - after : 0));
	if (!*result)
		rc = actions_oom(err);
out:
	free(sql);
	free(qt);
	free(qs);
	actions_pg_done(conn, owned);
	return rc;
}

static int act_vacuum(struct engine_call *call, const json_t *args, json_t **result,
		      struct st_error *err)
{
	return vacuum(call, args, 0, result, err);
}

static int act_vacuum_full(struct engine_call *call, const json_t *args, json_t **result,
			   struct st_error *err)
{
	return vacuum(call, args, 1, result, err);
}

static const struct engine_arg_spec query_args[] = {
	{ "sql", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED | ENGINE_ARG_LITERAL, NULL,
	  "one statement, values as $1, $2 ... (no ${...} in it)" },
	{ "params", ENGINE_ARG_ARRAY, 0, NULL, "values of $1, $2 ...; may use ${...}" },
	{ "database", ENGINE_ARG_STRING, 0, NULL, "another database than postgres.database" },
	{ "timeout", ENGINE_ARG_DURATION, 0, NULL, "statement timeout (default postgres.statement_timeout)" },
	{ "max_rows", ENGINE_ARG_INT, 0, "1000",
	  "rows kept in the result, at most 100000 (count has them all)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec exec_args[] = {
	{ "sql", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED | ENGINE_ARG_LITERAL, NULL,
	  "one statement, values as $1, $2 ... (no ${...} in it)" },
	{ "params", ENGINE_ARG_ARRAY, 0, NULL, "values of $1, $2 ...; may use ${...}" },
	{ "database", ENGINE_ARG_STRING, 0, NULL, "another database than postgres.database" },
	{ "timeout", ENGINE_ARG_DURATION, 0, NULL, "statement timeout (default postgres.statement_timeout)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec ping_args[] = {
	{ "database", ENGINE_ARG_STRING, 0, NULL, "another database than postgres.database" },
	{ "timeout", ENGINE_ARG_DURATION, 0, "5s", "statement timeout" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec connections_args[] = {
	{ "idle_older_than", ENGINE_ARG_DURATION, 0, "5m", "idle connections older than this are listed" },
	{ "timeout", ENGINE_ARG_DURATION, 0, NULL, "statement timeout" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec terminate_args[] = {
	{ "older_than", ENGINE_ARG_DURATION, 0, "5m", "idle for longer than this" },
	{ "timeout", ENGINE_ARG_DURATION, 0, NULL, "statement timeout" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec analyze_args[] = {
	{ "table", ENGINE_ARG_STRING, 0, NULL, "table name as written, e.g. Post (default or '': every table)" },
	{ "schema", ENGINE_ARG_STRING, 0, NULL, "schema of table (default: search_path)" },
	{ "database", ENGINE_ARG_STRING, 0, NULL, "another database than postgres.database" },
	{ "timeout", ENGINE_ARG_DURATION, 0, "10m", "statement timeout" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec vacuum_args[] = {
	{ "table", ENGINE_ARG_STRING, 0, NULL, "table name as written, e.g. Post (default or '': every table)" },
	{ "schema", ENGINE_ARG_STRING, 0, NULL, "schema of table (default: search_path)" },
	{ "analyze", ENGINE_ARG_BOOL, 0, "false", "also update the planner's statistics" },
	{ "database", ENGINE_ARG_STRING, 0, NULL, "another database than postgres.database" },
	{ "timeout", ENGINE_ARG_DURATION, 0, "1h", "statement timeout" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action actions_pg[] = {
	{ "pg.query", "run a query in a read-only transaction (refuses functions that act "
	  "anyway, e.g. pg_terminate_backend); rows as objects", query_args,
	  ENGINE_ACTION_READ_ONLY, act_query },
	{ "pg.exec", "run a statement that may change data; affected row count", exec_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_exec },
	{ "pg.ping", "whether PostgreSQL accepts a connection and answers (ok, error)", ping_args,
	  ENGINE_ACTION_READ_ONLY, act_ping },
	{ "pg.connections", "connection saturation and idle connections", connections_args,
	  ENGINE_ACTION_READ_ONLY, act_connections },
	{ "pg.terminate_idle", "terminate other clients' connections idle for too long",
	  terminate_args, ENGINE_ACTION_DESTRUCTIVE, act_terminate_idle },
	{ "pg.analyze", "ANALYZE a table (or the whole database)", analyze_args, 0, act_analyze },
	{ "pg.vacuum", "VACUUM a table (or the whole database): reclaims space for reuse",
	  vacuum_args, 0, act_vacuum },
	{ "pg.vacuum_full", "VACUUM FULL: rewrites tables, locking each one out while it runs",
	  vacuum_args, ENGINE_ACTION_DESTRUCTIVE, act_vacuum_full },
	{ NULL, NULL, NULL, 0, NULL },
};
