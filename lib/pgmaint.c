/*
 * pgmaint.c - database sizes and connection counts (pgmaint.h).
 */
#include "pgmaint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long cell_ll(const PGresult *res, int row, int col)
{
	long long v = -1;

	if (!PQgetisnull(res, row, col))
		(void)pg_parse_long(PQgetvalue(res, row, col), &v);
	return v;
}

static void cell_copy(const PGresult *res, int row, int col, char *dst, size_t size)
{
	snprintf(dst, size, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

int pgmaint_table_sizes(struct pg_conn *conn, const char *schema, double timeout_s,
			struct pgmaint_table **out, size_t *n, struct st_error *err)
{
	/* Each relation goes through format('%I.%I')::regclass on the server:
	 * quoted as an identifier, never pasted into the statement. */
	static const char sql[] =
		"SELECT t.schemaname, t.tablename,"
		"       pg_total_relation_size(r.oid), pg_relation_size(r.oid), pg_indexes_size(r.oid),"
		"       CASE WHEN c.reltuples < 0 THEN -1 ELSE c.reltuples::bigint END"
		"  FROM pg_tables t"
		"  CROSS JOIN LATERAL (SELECT format('%I.%I', t.schemaname, t.tablename)::regclass::oid AS oid) r"
		"  JOIN pg_class c ON c.oid = r.oid"
		" WHERE CASE WHEN $1::text IS NULL"
		"            THEN t.schemaname NOT IN ('pg_catalog', 'information_schema')"
		"                 AND t.schemaname NOT LIKE 'pg_toast%'"
		"            ELSE t.schemaname = $1::text END"
		" ORDER BY 3 DESC, 1, 2";
	const char *params[1] = { schema };
	PGresult *res = NULL;
	struct pgmaint_table *v = NULL;
	int rows, i, rc;

	*out = NULL;
	*n = 0;
	if ((rc = pg_query(conn, sql, 1, params, timeout_s, &res, err)) != 0)
		return rc;
	rows = PQntuples(res);
	if (rows > 0 && !(v = calloc((size_t)rows, sizeof(*v)))) {
		PQclear(res);
		return st_error_set(err, ST_ENOMEM, "out of memory");
	}
	for (i = 0; i < rows; i++) {
		cell_copy(res, i, 0, v[i].schema, sizeof(v[i].schema));
		cell_copy(res, i, 1, v[i].name, sizeof(v[i].name));
		v[i].total_bytes = cell_ll(res, i, 2);
		v[i].table_bytes = cell_ll(res, i, 3);
		v[i].index_bytes = cell_ll(res, i, 4);
		v[i].toast_bytes = v[i].total_bytes - v[i].table_bytes - v[i].index_bytes;
		if (v[i].toast_bytes < 0)
			v[i].toast_bytes = 0;
		v[i].rows_estimate = cell_ll(res, i, 5);
	}
	PQclear(res);
	*out = v;
	*n = (size_t)rows;
	return 0;
}

int pgmaint_relation_size(struct pg_conn *conn, const char *schema, const char *table,
			  double timeout_s, long long *bytes, struct st_error *err)
{
	const char *params[2] = { schema ? schema : table, table };
	int rc;

	if (!table)
		return pg_query_long(conn, "SELECT pg_database_size(current_database())", 0, NULL,
				     timeout_s, bytes, err);
	rc = pg_query_long(conn,
			   schema ? "SELECT coalesce(pg_total_relation_size(to_regclass(format('%I.%I', $1::text, $2::text))), -1)"
				  : "SELECT coalesce(pg_total_relation_size(to_regclass(format('%I', $1::text))), -1)",
			   schema ? 2 : 1, params, timeout_s, bytes, err);
	if (rc == 0 && *bytes < 0) {
		rc = st_error_set(err, ST_ENOTFOUND, "table '%s%s%s' does not exist", schema ? schema : "",
				  schema ? "." : "", table);
		st_error_hint(err, "see the tables with 'spilttea-ops db size'");
	}
	return rc;
}

int pgmaint_connections_by(struct pg_conn *conn, enum pgmaint_group_by by, double timeout_s,
			   struct pgmaint_group **out, size_t *n, struct st_error *err)
{
	static const char *const sql[] = {
		[PGMAINT_BY_STATE] =
			"SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity"
			" WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC, 1",
		[PGMAINT_BY_APPLICATION] =
			"SELECT coalesce(nullif(application_name, ''), '(none)'), count(*)"
			"  FROM pg_stat_activity WHERE backend_type = 'client backend'"
			" GROUP BY 1 ORDER BY 2 DESC, 1",
		[PGMAINT_BY_USER] =
			"SELECT coalesce(usename::text, '(unknown)'), count(*) FROM pg_stat_activity"
			" WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC, 1",
		[PGMAINT_BY_DATABASE] =
			"SELECT coalesce(datname::text, '(none)'), count(*) FROM pg_stat_activity"
			" WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC, 1",
	};
	PGresult *res = NULL;
	struct pgmaint_group *v = NULL;
	int rows, i, rc;

	*out = NULL;
	*n = 0;
	if ((unsigned)by > PGMAINT_BY_DATABASE)
		return st_error_set(err, ST_EUSAGE, "unknown grouping");
	if ((rc = pg_query(conn, sql[by], 0, NULL, timeout_s, &res, err)) != 0)
		return rc;
	rows = PQntuples(res);
	if (rows > 0 && !(v = calloc((size_t)rows, sizeof(*v)))) {
		PQclear(res);
		return st_error_set(err, ST_ENOMEM, "out of memory");
	}
	for (i = 0; i < rows; i++) {
		cell_copy(res, i, 0, v[i].key, sizeof(v[i].key));
		v[i].count = (int)cell_ll(res, i, 1);
	}
	PQclear(res);
	*out = v;
	*n = (size_t)rows;
	return 0;
}

char *pgmaint_format_bytes(long long bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 0) {
		snprintf(buf, size, "?");
		return buf;
	}
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%lld B", bytes);
	else
		snprintf(buf, size, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}
