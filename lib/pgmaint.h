/*
 * pgmaint.h - the queries of the runbook's "Database Maintenance" (sizes)
 * and "Performance Metrics" (connections, slow queries), for
 * `spilttea-ops db`. The writing ones (VACUUM, ANALYZE, terminating idle
 * connections) are runbook actions (actions_pg.c), run through the engine.
 *
 * Table names are never pasted into SQL: sizes are taken through
 * format('%I.%I', schema, table)::regclass on the server, so mixed-case
 * names like "Post" work (the runbook's schemaname||'.'||tablename breaks
 * on them). Each call is one parameterised query under the caller's
 * timeout; errors as pg.h.
 */
#ifndef ST_PGMAINT_H
#define ST_PGMAINT_H

#include <stddef.h>

#include "error.h"
#include "pg.h"

struct pgmaint_table {
	char schema[64];
	char name[64];
	long long total_bytes;    /* pg_total_relation_size: table, indexes, TOAST */
	long long table_bytes;    /* pg_relation_size: the main fork */
	long long index_bytes;    /* pg_indexes_size */
	long long toast_bytes;    /* the rest: TOAST and its index */
	long long rows_estimate;  /* pg_class.reltuples; -1 when never analyzed */
};

/* Tables of schema (NULL: every schema but the system ones), largest
 * first. *out caller-freed (free()), NULL when *n is 0. */
int pgmaint_table_sizes(struct pg_conn *conn, const char *schema, double timeout_s,
			struct pgmaint_table **out, size_t *n, struct st_error *err);

/* Total size of [schema.]table (pg_total_relation_size), or of the database
 * when table is NULL. A missing table is ST_ENOTFOUND. */
int pgmaint_relation_size(struct pg_conn *conn, const char *schema, const char *table,
			  double timeout_s, long long *bytes, struct st_error *err);

enum pgmaint_group_by {
	PGMAINT_BY_STATE,         /* active, idle, idle in transaction, ... ("unknown": not visible) */
	PGMAINT_BY_APPLICATION,   /* application_name ("" shows as "(none)") */
	PGMAINT_BY_USER,
	PGMAINT_BY_DATABASE,
};

struct pgmaint_group {
	char key[128];
	int count;
};

/* Client backends (ours included) counted by what group_by says, largest
 * group first. *out caller-freed (free()), NULL when *n is 0. */
int pgmaint_connections_by(struct pg_conn *conn, enum pgmaint_group_by by, double timeout_s,
			   struct pgmaint_group **out, size_t *n, struct st_error *err);

/* "1.2 GiB", "532 KiB", "87 B" (binary units) into buf; returns buf. Pure. */
char *pgmaint_format_bytes(long long bytes, char *buf, size_t size);

#endif
