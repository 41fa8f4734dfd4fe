#include "pgstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A client backend. Without pg_read_all_stats, other roles' rows show
 * backend_type NULL; those with a database (datid) are counted as client
 * backends: background processes other than autovacuum and parallel
 * workers have none, and those are brief.
 */
#define CLIENT_BACKEND "(backend_type = 'client backend' OR (backend_type IS NULL AND datid IS NOT NULL))"

static const char saturation_sql[] =
	"SELECT current_setting('max_connections')::int,"
	" current_setting('superuser_reserved_connections')::int,"
	" coalesce(current_setting('reserved_connections', true), '0')::int,"
	" count(*) FILTER (WHERE " CLIENT_BACKEND "),"
	" count(*) FILTER (WHERE " CLIENT_BACKEND " AND state = 'active'),"
	" count(*) FILTER (WHERE " CLIENT_BACKEND " AND state = 'idle'),"
	" count(*) FILTER (WHERE " CLIENT_BACKEND " AND state LIKE 'idle in transaction%'),"
	" count(*) FILTER (WHERE " CLIENT_BACKEND " AND state IS NULL),"
	" count(*) FILTER (WHERE " CLIENT_BACKEND " AND datname = current_database())"
	" FROM pg_stat_activity";

static int cell_int(const PGresult *res, int row, int col, int *out)
{
	long long v;

	if (PQgetisnull(res, row, col) || pg_parse_long(PQgetvalue(res, row, col), &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

int pg_connection_saturation(struct pg_conn *conn, double timeout_s, struct pg_saturation *out,
			     struct st_error *err)
{
	PGresult *res = NULL;
	int v[9];
	int rc, i;

	memset(out, 0, sizeof(*out));
	rc = pg_query(conn, saturation_sql, 0, NULL, timeout_s, &res, err);
	if (rc)
		goto out;
	if (PQntuples(res) != 1 || PQnfields(res) != 9) {
		rc = st_error_set(err, ST_EPROTO, "connection count query returned %d rows of %d columns",
				  PQntuples(res), PQnfields(res));
		goto out;
	}
	for (i = 0; i < 9; i++) {
		if (cell_int(res, 0, i, &v[i]) != 0) {
			rc = st_error_set(err, ST_EPROTO, "connection count query returned '%.40s' in column %d",
					  PQgetvalue(res, 0, i), i + 1);
			goto out;
		}
	}
	out->max_connections = v[0];
	out->superuser_reserved = v[1];
	out->reserved = v[2];
	out->usable = v[0] - v[1] - v[2];
	if (out->usable < 1)
		out->usable = 1;
	out->in_use = v[3];
	out->active = v[4];
	out->idle = v[5];
	out->idle_in_transaction = v[6];
	out->unknown = v[7];
	out->in_database = v[8];
	out->other = out->in_use - out->active - out->idle - out->idle_in_transaction - out->unknown;
	out->percent = (double)out->in_use * 100.0 / (double)out->usable;
out:
	PQclear(res);
	return rc;
}

/* Columns every activity list returns; start is the column the duration
 * counts from, $2 the query text length in characters, $1 the list's own
 * argument (limit or idle seconds). Only visible client backends. */
#define ACTIVITY_COLUMNS(start)                                                          \
	"SELECT pid,"                                                                    \
	" greatest(0, extract(epoch FROM clock_timestamp() - " start "))::float8,"      \
	" coalesce(state, ''), coalesce(usename::text, ''), coalesce(datname::text, ''),"\
	" coalesce(application_name, ''), coalesce(host(client_addr), ''),"              \
	" coalesce(wait_event_type || ':' || wait_event, ''),"                           \
	" left(coalesce(query, ''), $2::int), length(coalesce(query, '')) > $2::int"     \
	" FROM pg_stat_activity"                                                         \
	" WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"

static const char longest_queries_sql[] =
	ACTIVITY_COLUMNS("query_start")
	" AND state = 'active' AND query_start IS NOT NULL"
	" ORDER BY query_start ASC LIMIT $1::int";

static const char longest_transactions_sql[] =
	ACTIVITY_COLUMNS("xact_start")
	" AND xact_start IS NOT NULL"
	" ORDER BY xact_start ASC LIMIT $1::int";

static const char idle_sql[] =
	ACTIVITY_COLUMNS("state_change")
	" AND state = 'idle'"
	" AND state_change < clock_timestamp() - make_interval(secs => $1::float8)"
	" ORDER BY state_change ASC";

static void copy_cell(char *dst, size_t size, const PGresult *res, int row, int col)
{
	snprintf(dst, size, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static int activity_list(struct pg_conn *conn, const char *sql, const char *arg1, double timeout_s,
			 struct pg_activity **out, size_t *n, struct st_error *err)
{
	PGresult *res = NULL;
	struct pg_activity *list = NULL;
	char chars[16];
	const char *params[2];
	int rc, rows, i;

	*out = NULL;
	*n = 0;
	snprintf(chars, sizeof(chars), "%d", PG_QUERY_TEXT_CHARS);
	params[0] = arg1;
	params[1] = chars;
	rc = pg_query(conn, sql, 2, params, timeout_s, &res, err);
	if (rc)
		goto out;
	rows = PQntuples(res);
	if (PQnfields(res) != 10) {
		rc = st_error_set(err, ST_EPROTO, "activity query returned %d columns", PQnfields(res));
		goto out;
	}
	if (rows == 0)
		goto out;
	list = calloc((size_t)rows, sizeof(*list));
	if (!list) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < rows; i++) {
		struct pg_activity *a = &list[i];

		if (cell_int(res, i, 0, &a->pid) != 0 ||
		    pg_parse_double(PQgetvalue(res, i, 1), &a->duration_s) != 0) {
			rc = st_error_set(err, ST_EPROTO, "activity query returned pid '%.20s', duration '%.20s'",
					  PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
			goto out;
		}
		copy_cell(a->state, sizeof(a->state), res, i, 2);
		copy_cell(a->user, sizeof(a->user), res, i, 3);
		copy_cell(a->database, sizeof(a->database), res, i, 4);
		copy_cell(a->application, sizeof(a->application), res, i, 5);
		copy_cell(a->client_addr, sizeof(a->client_addr), res, i, 6);
		copy_cell(a->wait_event, sizeof(a->wait_event), res, i, 7);
		copy_cell(a->query, sizeof(a->query), res, i, 8);
		a->query_truncated = strcmp(PQgetvalue(res, i, 9), "t") == 0;
	}
	*out = list;
	*n = (size_t)rows;
	list = NULL;
out:
	free(list);
	PQclear(res);
	return rc;
}

int pg_longest_queries(struct pg_conn *conn, int limit, double timeout_s, struct pg_activity **out,
		       size_t *n, struct st_error *err)
{
	char lim[16];

	snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 0);
	return activity_list(conn, longest_queries_sql, lim, timeout_s, out, n, err);
}

int pg_longest_transactions(struct pg_conn *conn, int limit, double timeout_s, struct pg_activity **out,
			    size_t *n, struct st_error *err)
{
	char lim[16];

	snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit : 0);
	return activity_list(conn, longest_transactions_sql, lim, timeout_s, out, n, err);
}

int pg_idle_connections(struct pg_conn *conn, double idle_s, double timeout_s, struct pg_activity **out,
			size_t *n, struct st_error *err)
{
	char secs[32];

	snprintf(secs, sizeof(secs), "%.3f", idle_s > 0 ? idle_s : 0.0);
	return activity_list(conn, idle_sql, secs, timeout_s, out, n, err);
}

/*
 * Only backends we may signal (PostgreSQL's own rule: superuser, or neither
 * side superuser and we hold the target role's privileges or
 * pg_signal_backend), so one foreign pid does not fail the whole statement.
 */
static const char terminate_sql[] =
	"SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid))"
	" FROM pg_stat_activity a"
	" WHERE a.pid = ANY($1::int[]) AND a.pid <> pg_backend_pid()"
	" AND a.backend_type = 'client backend'"
	" AND ($2::float8 IS NULL OR (a.state = 'idle'"
	"      AND a.state_change < clock_timestamp() - make_interval(secs => $2::float8)))"
	" AND ((SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
	"      OR (NOT coalesce((SELECT rolsuper FROM pg_roles r WHERE r.oid = a.usesysid), true)"
	"          AND (pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_signal_backend', 'USAGE'))))";

int pg_terminate_backends(struct pg_conn *conn, const int *pids, size_t npids, double still_idle_s,
			  double timeout_s, size_t *terminated, struct st_error *err)
{
	char *array = NULL, idle[32];
	const char *params[2];
	long long count = 0;
	size_t i, off = 0, cap;
	int rc = 0;

	if (terminated)
		*terminated = 0;
	if (npids == 0)
		goto out;
	/* "{1,2,3}": at most 11 characters per int plus the comma. */
	cap = npids * 12 + 3;
	array = malloc(cap);
	if (!array) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	array[off++] = '{';
	for (i = 0; i < npids; i++)
		off += (size_t)snprintf(array + off, cap - off, i ? ",%d" : "%d", pids[i]);
	array[off++] = '}';
	array[off] = '\0';
	params[0] = array;
	if (still_idle_s >= 0) {
		snprintf(idle, sizeof(idle), "%.3f", still_idle_s);
		params[1] = idle;
	} else {
		params[1] = NULL;
	}
	rc = pg_query_long(conn, terminate_sql, 2, params, timeout_s, &count, err);
	if (rc) {
		st_error_wrap(err, "cannot terminate backends");
		goto out;
	}
	if (terminated)
		*terminated = (size_t)count;
out:
	free(array);
	return rc;
}

static const char server_info_sql[] =
	"SELECT current_database(), pg_database_size(current_database()),"
	" current_setting('server_version'), current_setting('server_version_num')::int,"
	" extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())::float8,"
	" pg_is_in_recovery()";

int pg_server_info(struct pg_conn *conn, double timeout_s, struct pg_server_info *out, struct st_error *err)
{
	PGresult *res = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = pg_query(conn, server_info_sql, 0, NULL, timeout_s, &res, err);
	if (rc)
		goto out;
	if (PQntuples(res) != 1 || PQnfields(res) != 6 ||
	    pg_parse_long(PQgetvalue(res, 0, 1), &out->database_bytes) != 0 ||
	    cell_int(res, 0, 3, &out->version_num) != 0 ||
	    pg_parse_double(PQgetvalue(res, 0, 4), &out->uptime_s) != 0) {
		rc = st_error_set(err, ST_EPROTO, "server information query returned an unexpected row");
		goto out;
	}
	copy_cell(out->database, sizeof(out->database), res, 0, 0);
	copy_cell(out->version, sizeof(out->version), res, 0, 2);
	out->in_recovery = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
out:
	PQclear(res);
	return rc;
}
