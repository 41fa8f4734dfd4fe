/*
 * incident_db.c - the runbook's investigation queries done right, and its
 * "lock suspicious users" mitigation done safely: ids checked against the
 * schema's id type and passed as one array parameter, in one transaction.
 */
#include "incident.h"
#include "pg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* UTC timestamps as RFC 3339: Prisma's timestamp(3) columns hold UTC. */
#define UTC_TEXT(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* now() in UTC as a timestamp without time zone, like the columns. */
#define NOW_UTC "(now() AT TIME ZONE 'UTC')"

static int oom(struct st_error *err)
{
	return st_error_set(err, ST_ENOMEM, "out of memory");
}

/* A cell as JSON: an integer when it is one, else a string; null for NULL. */
static json_t *cell_value(const PGresult *r, int row, int col)
{
	const char *v;
	long long n;

	if (PQgetisnull(r, row, col))
		return json_null();
	v = PQgetvalue(r, row, col);
	if (pg_parse_long(v, &n) == 0)
		return json_integer((json_int_t)n);
	return json_string(v);
}

static json_t *cell_bool(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return json_null();
	return json_boolean(PQgetvalue(r, row, col)[0] == 't');
}

static json_t *cell_text(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return json_null();
	return json_string(PQgetvalue(r, row, col));
}

enum cell_kind { CELL_VALUE, CELL_TEXT, CELL_BOOL };

struct section {
	const char *name;
	const char *sql;             /* $1 window seconds, [$2 threshold,] last $: limit */
	int with_threshold;
	const char *const *cols;     /* JSON names, NULL-terminated; then a count(*) OVER () column */
	const enum cell_kind *kinds;
};

static const char *const bf_cols[] = { "id", "email", "failedLoginCount", "lastFailedLogin", "isActive", NULL };
static const enum cell_kind bf_kinds[] = { CELL_VALUE, CELL_TEXT, CELL_VALUE, CELL_TEXT, CELL_BOOL };
static const char *const acc_cols[] = { "id", "email", "createdAt", "isActive", NULL };
static const enum cell_kind acc_kinds[] = { CELL_VALUE, CELL_TEXT, CELL_TEXT, CELL_BOOL };
static const char *const post_cols[] = { "id", "title", "authorId", "createdAt", NULL };
static const enum cell_kind post_kinds[] = { CELL_VALUE, CELL_TEXT, CELL_VALUE, CELL_TEXT };
static const char *const rep_cols[] = { "id", "postId", "reporterId", "reason", "createdAt", NULL };
static const enum cell_kind rep_kinds[] = { CELL_VALUE, CELL_VALUE, CELL_VALUE, CELL_TEXT, CELL_TEXT };

static const struct section sections[] = {
	{ "brute_force",
	  "SELECT id::text, email, \"failedLoginCount\", " UTC_TEXT("\"lastFailedLogin\"") ", "
	  "\"isActive\", count(*) OVER () FROM \"User\" "
	  "WHERE \"lastFailedLogin\" > " NOW_UTC " - make_interval(secs => $1::float8) "
	  "AND \"failedLoginCount\" > $2::int "
	  "ORDER BY \"failedLoginCount\" DESC, \"lastFailedLogin\" DESC, id LIMIT $3::int",
	  1, bf_cols, bf_kinds },
	{ "recent_accounts",
	  "SELECT id::text, email, " UTC_TEXT("\"createdAt\"") ", \"isActive\", count(*) OVER () "
	  "FROM \"User\" WHERE \"createdAt\" > " NOW_UTC " - make_interval(secs => $1::float8) "
	  "ORDER BY \"createdAt\" DESC, id LIMIT $2::int",
	  0, acc_cols, acc_kinds },
	{ "recent_posts",
	  "SELECT id::text, title, \"authorId\"::text, " UTC_TEXT("\"createdAt\"") ", count(*) OVER () "
	  "FROM \"Post\" WHERE \"createdAt\" > " NOW_UTC " - make_interval(secs => $1::float8) "
	  "ORDER BY \"createdAt\" DESC, id LIMIT $2::int",
	  0, post_cols, post_kinds },
	{ "reports",
	  "SELECT id::text, \"postId\"::text, \"reporterId\"::text, reason, " UTC_TEXT("\"createdAt\"") ", "
	  "count(*) OVER () FROM \"Report\" "
	  "WHERE \"createdAt\" > " NOW_UTC " - make_interval(secs => $1::float8) "
	  "ORDER BY \"createdAt\" DESC, id LIMIT $2::int",
	  0, rep_cols, rep_kinds },
};

static int run_section(struct pg_conn *pg, const struct section *s,
		       const struct incident_investigate_opts *o, json_t *out, int *failed,
		       struct st_error *err)
{
	char window[64], threshold[32], limit[32];
	const char *params[3];
	struct st_error qerr = { 0 };
	PGresult *r = NULL;
	json_t *sec = NULL, *rows = NULL;
	double w = s->with_threshold ? o->window : o->recent;
	int nparams = 0, row, ncols = 0, rc = 0;

	snprintf(window, sizeof(window), "%.3f", w);
	snprintf(threshold, sizeof(threshold), "%ld", o->threshold);
	snprintf(limit, sizeof(limit), "%ld", o->limit);
	params[nparams++] = window;
	if (s->with_threshold)
		params[nparams++] = threshold;
	params[nparams++] = limit;
	while (s->cols[ncols])
		ncols++;

	sec = json_object();
	rows = json_array();
	if (!sec || !rows || json_object_set_new(sec, "window", json_real(w)) ||
	    (s->with_threshold && json_object_set_new(sec, "threshold", json_integer(o->threshold)))) {
		rc = oom(err);
		goto out;
	}
	if (pg_query(pg, s->sql, nparams, params, o->timeout, &r, &qerr) != 0) {
		*failed = 1;
		if (json_object_set_new(sec, "error", json_string(qerr.message)))
			rc = oom(err);
		goto done;
	}
	for (row = 0; row < PQntuples(r); row++) {
		json_t *obj = json_object();
		int col;

		if (!obj || json_array_append_new(rows, obj)) {
			json_decref(obj);
			rc = oom(err);
			goto out;
		}
		for (col = 0; col < ncols; col++) {
			json_t *v = s->kinds[col] == CELL_BOOL   ? cell_bool(r, row, col)
				    : s->kinds[col] == CELL_TEXT ? cell_text(r, row, col)
								 : cell_value(r, row, col);
			if (!v || json_object_set_new(obj, s->cols[col], v)) {
				rc = oom(err);
				goto out;
			}
		}
	}
	{
		long long total = 0;

		if (PQntuples(r) > 0)
			pg_parse_long(PQgetvalue(r, 0, ncols), &total);
		if (json_object_set_new(sec, "count", json_integer((json_int_t)total)) ||
		    json_object_set(sec, "rows", rows)) {
			rc = oom(err);
			goto out;
		}
	}
done:
	if (json_object_set(out, s->name, sec))
		rc = oom(err);
out:
	PQclear(r);
	json_decref(rows);
	json_decref(sec);
	return rc;
}

int incident_investigate(struct pg_conn *pg, const struct incident_investigate_opts *o,
			 json_t **out, size_t *failed, struct st_error *err)
{
	json_t *res = json_object();
	size_t i, nfailed = 0;
	int rc = 0;

	*out = NULL;
	if (failed)
		*failed = 0;
	if (!res)
		return oom(err);
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		int f = 0;

		if ((rc = run_section(pg, &sections[i], o, res, &f, err)) != 0)
			goto out;
		nfailed += (size_t)f;
	}
	if (nfailed == sizeof(sections) / sizeof(sections[0])) {
		rc = st_error_set(err, ST_ESERVICE, "every investigation query failed: %s",
				  json_string_value(json_object_get(json_object_get(res, "brute_force"),
								    "error")));
		goto out;
	}
	if (failed)
		*failed = nfailed;
	*out = res;
	res = NULL;
out:
	json_decref(res);
	return rc;
}

/* ---- user ids ------------------------------------------------------------------ */

int incident_user_id_syntax_ok(const char *id)
{
	size_t n;

	if (!id)
		return 0;
	n = strlen(id);
	return n >= 1 && n <= 64 &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

int incident_user_id_kind(struct pg_conn *pg, double timeout, enum incident_id_kind *kind,
			  struct st_error *err)
{
	char *type = NULL;
	int rc;

	rc = pg_query_text(pg,
			   "SELECT data_type FROM information_schema.columns "
			   "WHERE table_schema = current_schema() AND table_name = 'User' "
			   "AND column_name = 'id'",
			   0, NULL, timeout, &type, err);
	if (rc == ST_ENOTFOUND) {
		st_error_set(err, ST_ENOTFOUND, "table \"User\" has no column \"id\" in the current schema");
		return st_error_hint(err, "check postgres.database in the configuration");
	}
	if (rc)
		return st_error_wrap(err, "cannot read the type of \"User\".id");
	if (!type)
		rc = st_error_set(err, ST_EPROTO, "\"User\".id has no type");
	else if (!strcmp(type, "integer") || !strcmp(type, "smallint"))
		*kind = INCIDENT_ID_INT;
	else if (!strcmp(type, "bigint"))
		*kind = INCIDENT_ID_BIGINT;
	else if (!strcmp(type, "uuid"))
		*kind = INCIDENT_ID_UUID;
	else if (!strcmp(type, "text") || !strcmp(type, "character varying"))
		*kind = INCIDENT_ID_TEXT;
	else
		rc = st_error_set(err, ST_EPROTO, "\"User\".id has type '%s', which this tool does not know",
				  type);
	free(type);
	return rc;
}

/* Decimal without sign or leading zeros, at most max. */
static int decimal_ok(const char *s, unsigned long long max)
{
	unsigned long long v = 0;
	const char *p;

	if (!*s || (s[0] == '0' && s[1]))
		return 0;
	for (p = s; *p; p++) {
		unsigned d;

		if (*p < '0' || *p > '9')
			return 0;
		d = (unsigned)(*p - '0');
		if (v > (max - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return 1;
}

static int uuid_ok(const char *s)
{
	static const int dash[] = { 8, 13, 18, 23 };
	size_t i, k = 0;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (k < 4 && (int)i == dash[k]) {
			if (s[i] != '-')
				return 0;
			k++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static const char *kind_word(enum incident_id_kind kind)
{
	switch (kind) {
	case INCIDENT_ID_INT: return "an integer id (1 to 2147483647)";
	case INCIDENT_ID_BIGINT: return "a bigint id";
	case INCIDENT_ID_UUID: return "a UUID";
	case INCIDENT_ID_TEXT: return "a text id (letters, digits, '_', '-')";
	}
	return "an id";
}

int incident_user_ids_check(enum incident_id_kind kind, const char *const *ids, size_t n,
			    struct st_error *err)
{
	size_t i, j;

	if (n == 0)
		return st_error_set(err, ST_EUSAGE, "no user ids given");
	for (i = 0; i < n; i++) {
		int ok;

		switch (kind) {
		case INCIDENT_ID_INT: ok = decimal_ok(ids[i], 2147483647ULL); break;
		case INCIDENT_ID_BIGINT: ok = decimal_ok(ids[i], 9223372036854775807ULL); break;
		case INCIDENT_ID_UUID: ok = uuid_ok(ids[i]); break;
		default: ok = incident_user_id_syntax_ok(ids[i]); break;
		}
		if (!ok)
			return st_error_set(err, ST_EUSAGE, "'%s' is not %s", ids[i], kind_word(kind));
		for (j = 0; j < i; j++)
			if (kind == INCIDENT_ID_UUID ? !strcasecmp(ids[i], ids[j]) : !strcmp(ids[i], ids[j]))
				return st_error_set(err, ST_EUSAGE, "user id '%s' is given twice", ids[i]);
	}
	return 0;
}

/* The array parameter: {"7","42"} (every element quoted, so a text id
 * "NULL" stays a string); the ids are checked, so none holds a quote. */
static int array_literal(const char *const *ids, size_t n, struct sbuf *out, struct st_error *err)
{
	size_t i;

	if (sbuf_puts(out, "{"))
		return oom(err);
	for (i = 0; i < n; i++)
		if (sbuf_printf(out, "%s\"%s\"", i ? "," : "", ids[i]))
			return oom(err);
	return sbuf_puts(out, "}") ? oom(err) : 0;
}

/* SQL with the array cast of kind; from a fixed list, never from input. */
static const char *cast_of(enum incident_id_kind kind)
{
	switch (kind) {
	case INCIDENT_ID_INT: return "int[]";
	case INCIDENT_ID_BIGINT: return "bigint[]";
	case INCIDENT_ID_UUID: return "uuid[]";
	case INCIDENT_ID_TEXT: return "text[]";
	}
	return "text[]";
}

int incident_users_find(struct pg_conn *pg, enum incident_id_kind kind, const char *const *ids,
			size_t n, double timeout, json_t **out, struct st_error *err)
{
	struct sbuf arr = SBUF_INIT, sql = SBUF_INIT;
	PGresult *r = NULL;
	json_t *res = NULL, *found, *missing;
	const char *param;
	size_t i;
	int row, rc;

	*out = NULL;
	if ((rc = incident_user_ids_check(kind, ids, n, err)) != 0 ||
	    (rc = array_literal(ids, n, &arr, err)) != 0)
		goto out;
	if (sbuf_printf(&sql, "SELECT id::text, email, \"isActive\" FROM \"User\" "
			      "WHERE id = ANY($1::%s) ORDER BY id", cast_of(kind))) {
		rc = oom(err);
		goto out;
	}
	param = sbuf_str(&arr);
	if ((rc = pg_query(pg, sbuf_str(&sql), 1, &param, timeout, &r, err)) != 0) {
		st_error_wrap(err, "cannot look the users up");
		goto out;
	}
	res = json_pack("{s:[],s:[]}", "found", "missing");
	if (!res) {
		rc = oom(err);
		goto out;
	}
	found = json_object_get(res, "found");
	missing = json_object_get(res, "missing");
	for (row = 0; row < PQntuples(r); row++)
		if (json_array_append_new(found, json_pack("{s:o,s:o,s:o}", "id", cell_value(r, row, 0),
							    "email", cell_text(r, row, 1), "isActive",
							    cell_bool(r, row, 2)))) {
			rc = oom(err);
			goto out;
		}
	for (i = 0; i < n; i++) {
		int hit = 0;

		for (row = 0; row < PQntuples(r) && !hit; row++)
			hit = !strcasecmp(PQgetvalue(r, row, 0), ids[i]);
		if (!hit && json_array_append_new(missing, json_string(ids[i]))) {
			rc = oom(err);
			goto out;
		}
	}
	*out = res;
	res = NULL;
out:
	PQclear(r);
	json_decref(res);
	sbuf_release(&arr);
	sbuf_release(&sql);
	return rc;
}

int incident_users_lock(struct pg_conn *pg, enum incident_id_kind kind, const char *const *ids,
			size_t n, double timeout, json_t **locked, struct st_error *err)
{
	struct sbuf arr = SBUF_INIT, sql = SBUF_INIT;
	struct st_error rerr = { 0 };
	PGresult *r = NULL;
	json_t *res = NULL;
	const char *param;
	int row, rc, in_tx = 0, committing = 0;

	*locked = NULL;
	if ((rc = incident_user_ids_check(kind, ids, n, err)) != 0 ||
	    (rc = array_literal(ids, n, &arr, err)) != 0)
		goto out;
	if (sbuf_printf(&sql, "UPDATE \"User\" SET password = 'LOCKED', \"isActive\" = false "
			      "WHERE id = ANY($1::%s) RETURNING id::text", cast_of(kind))) {
		rc = oom(err);
		goto out;
	}
	param = sbuf_str(&arr);
	if ((rc = pg_exec(pg, "BEGIN", 0, NULL, timeout, err)) != 0)
		goto out;
	in_tx = 1;
	if ((rc = pg_query(pg, sbuf_str(&sql), 1, &param, timeout, &r, err)) != 0)
		goto out;
	if (!(res = json_array())) {
		rc = oom(err);
		goto out;
	}
	for (row = 0; row < PQntuples(r); row++)
		if (json_array_append_new(res, cell_value(r, row, 0))) {
			rc = oom(err);
			goto out;
		}
	committing = 1;
	if ((rc = pg_exec(pg, "COMMIT", 0, NULL, timeout, err)) != 0)
		goto out;
	in_tx = 0;
	*locked = res;
	res = NULL;
out:
	if (in_tx)
		pg_exec(pg, "ROLLBACK", 0, NULL, timeout, &rerr);
	if (rc && committing)
		st_error_wrap(err, "cannot lock the users (the commit failed: whether they are "
				   "locked is unknown, run the command again)");
	else if (rc)
		st_error_wrap(err, "cannot lock the users (nothing was changed)");
	PQclear(r);
	json_decref(res);
	sbuf_release(&arr);
	sbuf_release(&sql);
	return rc;
}
