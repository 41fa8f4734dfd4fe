#include "actions_util.h"
#include "config.h"
#include "expr.h"
#include "redact.h"
#include "services.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int actions_oom(struct st_error *err)
{
	return st_error_set(err, ST_ENOMEM, "out of memory");
}

static int no_services(const char *what, struct st_error *err)
{
	return st_error_set(err, ST_EUSAGE, "no %s client: this run was started without services", what);
}

/* The shared clients are handed out per call with the call's cancel flag
 * (NULL while undoing: undo must finish), so Ctrl-C reaches a request that
 * waits on a silent daemon or a long SCAN. */
int actions_docker_client(struct engine_call *call, struct docker_client **out, struct st_error *err)
{
	int rc;

	*out = NULL;
	if (!call->services)
		return no_services("docker", err);
	rc = services_docker(call->services, out, err);
	if (!rc)
		docker_client_set_cancel(*out, call->cancel);
	return rc;
}

int actions_redis_conn(struct engine_call *call, struct redis_conn **out, struct st_error *err)
{
	int rc;

	*out = NULL;
	if (!call->services)
		return no_services("redis", err);
	rc = services_redis(call->services, out, err);
	if (!rc)
		redis_set_cancel(*out, call->cancel);
	return rc;
}

int actions_pg_conn(struct engine_call *call, const char *database, struct pg_conn **out,
		    int *owned, struct st_error *err)
{
	*out = NULL;
	*owned = 0;
	if (!call->services)
		return no_services("postgres", err);
	if (!database || !strcmp(database, call->services->cfg->postgres.database))
		return services_pg(call->services, out, err);
	*owned = 1;
	return services_pg_connect(call->services->cfg, database, NULL, out, err);
}

void actions_pg_done(struct pg_conn *conn, int owned)
{
	if (owned)
		pg_close(conn);
}

static const struct st_config *config_of(const struct engine_call *call)
{
	if (call->config)
		return call->config;
	return call->services ? call->services->cfg : NULL;
}

int actions_target(const struct engine_call *call, const json_t *args, const char **container,
		   const char **service, struct st_error *err)
{
	const char *c = actions_arg_str(args, "container");
	const char *s = actions_arg_str(args, "service");
	const struct st_config *cfg = config_of(call);

	*container = NULL;
	if (service)
		*service = NULL;
	if (c && *c && s && *s)
		return st_error_set(err, ST_EUSAGE, "give either 'container' or 'service', not both");
	if (c && *c) {
		*container = c;
		return 0;
	}
	if (!s || !*s)
		return st_error_set(err, ST_EUSAGE, "the action needs 'container' or 'service'");
	if (!cfg)
		return st_error_set(err, ST_ECONFIG, "service '%s' cannot be resolved without a "
				    "configuration", s);
	if (service)
		*service = s;
	return services_container(cfg, s, container, err);
}

const char *actions_service_health_url(const struct engine_call *call, const char *service)
{
	const struct st_config *cfg = config_of(call);
	const struct config_service *svc = cfg && service ? config_service(cfg, service) : NULL;

	return svc ? svc->health_url : NULL;
}

const char *actions_arg_str(const json_t *args, const char *name)
{
	return json_string_value(json_object_get(args, name));
}

double actions_arg_num(const json_t *args, const char *name, double def)
{
	const json_t *v = json_object_get(args, name);

	return json_is_number(v) ? json_number_value(v) : def;
}

long long actions_arg_int(const json_t *args, const char *name, long long def)
{
	const json_t *v = json_object_get(args, name);

	if (json_is_integer(v))
		return json_integer_value(v);
	return json_is_real(v) ? (long long)json_real_value(v) : def;
}

int actions_arg_range(const json_t *args, const char *name, long long def, long long min,
		      long long max, long long *out, struct st_error *err)
{
	long long v = actions_arg_int(args, name, def);

	*out = def;
	if (v < min || v > max)
		return st_error_set(err, ST_EUSAGE, "argument '%s' must be between %lld and %lld, not %lld",
				    name, min, max, v);
	*out = v;
	return 0;
}

int actions_arg_bool(const json_t *args, const char *name, int def)
{
	const json_t *v = json_object_get(args, name);

	return json_is_boolean(v) ? json_is_true(v) : def;
}

json_t *actions_text(const char *data, size_t len)
{
	size_t n;
	char *buf = text_utf8_repair(data, len, &n);
	json_t *v;

	if (!buf)
		return NULL;
	v = json_stringn(buf, n);
	free(buf);
	return v;
}

int actions_tail_init(struct actions_tail *t, size_t cap, struct st_error *err)
{
	memset(t, 0, sizeof(*t));
	t->buf = malloc(cap ? cap : 1);
	if (!t->buf)
		return actions_oom(err);
	t->cap = cap;
	return 0;
}

void actions_tail_add(struct actions_tail *t, const char *data, size_t len)
{
	t->total += len;
	if (!t->cap)
		return;
	if (len >= t->cap) {
		memcpy(t->buf, data + len - t->cap, t->cap);
		t->len = t->cap;
		return;
	}
	if (t->len + len > t->cap) {
		size_t drop = t->len + len - t->cap;

		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->buf + t->len, data, len);
	t->len += len;
}

void actions_tail_release(struct actions_tail *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

char *actions_redact_url_password(const char *value)
{
	const char *scheme = strstr(value, "://");
	const char *auth, *at, *colon, *end;
	size_t n;
	char *out;

	if (!scheme)
		return strdup(value);
	auth = scheme + 3;
	end = auth + strcspn(auth, "/?#");
	/* The last '@' before the path: passwords may contain '@'. */
	for (at = NULL, colon = auth; colon < end; colon++)
		if (*colon == '@')
			at = colon;
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!at || !colon)
		return strdup(value);
	n = (size_t)(colon + 1 - value);
	out = malloc(n + strlen(REDACTED) + strlen(at) + 1);
	if (!out)
		return NULL;
	memcpy(out, value, n);
	strcpy(out + n, REDACTED);
	strcat(out, at);
	return out;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *actions_env_summary(const json_t *env, const json_t *require)
{
	json_t *out = json_object(), *names = json_array(), *vars = json_object(),
	       *hidden = json_array(), *missing = NULL, *v;
	const char **sorted = NULL;
	size_t n = json_array_size(env), i, m = 0;
	int ok = out && names && vars && hidden;

	sorted = calloc(n + 1, sizeof(*sorted));
	ok = ok && sorted;
	for (i = 0; ok && i < n; i++) {
		const char *e = json_string_value(json_array_get(env, i));
		const char *eq = e ? strchr(e, '=') : NULL;
		char *name, *shown;

		if (!e || !eq || eq == e)
			continue;
		name = strndup(e, (size_t)(eq - e));
		if (!name) {
			ok = 0;
			break;
		}
		if (redact_name_is_secret(name)) {
			shown = strdup(REDACTED);
			ok = shown && json_array_append_new(hidden, json_string(name)) == 0;
		} else {
			shown = actions_redact_url_password(eq + 1);
		}
		v = shown ? actions_text(shown, strlen(shown)) : NULL;
		ok = ok && v && json_object_set_new(vars, name, v) == 0;
		free(shown);
		free(name);
	}
	/* Names from the object (deduplicated, as Docker lets the last win). */
	if (ok) {
		const char *k;

		json_object_foreach(vars, k, v)
			sorted[m++] = k;
		qsort(sorted, m, sizeof(*sorted), cmp_str);
		for (i = 0; ok && i < m; i++)
			ok = json_array_append_new(names, json_string(sorted[i])) == 0;
	}
	if (ok && json_is_array(require)) {
		missing = json_array();
		ok = missing != NULL;
		json_array_foreach(require, i, v) {
			const char *want = json_string_value(v);
			const json_t *have = want ? json_object_get(vars, want) : NULL;

			if (!ok || !want)
				continue;
			if (!have || !json_string_length(have))
				ok = json_array_append_new(missing, json_string(want)) == 0;
		}
		ok = ok && json_object_set_new(out, "missing_count",
					       json_integer((json_int_t)json_array_size(missing))) == 0;
		ok = ok && json_object_set(out, "missing", missing) == 0;
	}
	ok = ok && json_object_set_new(out, "count", json_integer((json_int_t)m)) == 0;
	ok = ok && json_object_set(out, "names", names) == 0;
	ok = ok && json_object_set(out, "vars", vars) == 0;
	ok = ok && json_object_set(out, "hidden", hidden) == 0;
	free(sorted);
	json_decref(names);
	json_decref(vars);
	json_decref(hidden);
	json_decref(missing);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

#define PG_PARAMS_MAX 100

void actions_pg_params_free(char **params, int n)
{
	int i;

	for (i = 0; params && i < n; i++)
		free(params[i]);
	free(params);
}

int actions_pg_params(const json_t *params, char ***out, int *n, struct st_error *err)
{
	size_t count = json_array_size(params), i;
	char **p = NULL;
	const json_t *v;

	*out = NULL;
	*n = 0;
	if (params && !json_is_array(params))
		return st_error_set(err, ST_EUSAGE, "params must be a list");
	if (count > PG_PARAMS_MAX)
		return st_error_set(err, ST_EUSAGE, "too many params (%zu, at most %d)", count,
				    PG_PARAMS_MAX);
	if (!count)
		return 0;
	p = calloc(count, sizeof(*p));
	if (!p)
		return actions_oom(err);
	json_array_foreach(params, i, v) {
		if (json_is_null(v))
			continue;
		p[i] = json_is_object(v) || json_is_array(v) ? json_dumps(v, JSON_COMPACT)
							      : expr_to_text(v);
		if (!p[i]) {
			actions_pg_params_free(p, (int)count);
			return actions_oom(err);
		}
	}
	*out = p;
	*n = (int)count;
	return 0;
}

enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26, OID_JSON = 114,
       OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_JSONB = 3802 };

static json_t *pg_value(const PGresult *res, int row, int col)
{
	const char *text = PQgetvalue(res, row, col);
	long long ll;
	double d;
	json_t *v;

	if (PQgetisnull(res, row, col))
		return json_null();
	if (redact_name_is_secret(PQfname(res, col)))
		return json_string(REDACTED);
	switch (PQftype(res, col)) {
	case OID_BOOL:
		return json_boolean(text[0] == 't');
	case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID:
		if (pg_parse_long(text, &ll) == 0)
			return json_integer((json_int_t)ll);
		break;
	case OID_FLOAT4: case OID_FLOAT8:
		if (pg_parse_double(text, &d) == 0)
			return json_real(d);
		break;
	case OID_JSON: case OID_JSONB:
		v = json_loads(text, JSON_DECODE_ANY, NULL);
		if (v)
			return v;
		break;
	}
	return actions_text(text, (size_t)PQgetlength(res, row, col));
}

json_t *actions_pg_rows(const PGresult *res, size_t max_rows)
{
	int nrows = PQntuples(res), ncols = PQnfields(res), r, c;
	json_t *out = json_object(), *rows = json_array(), *cols = json_array(), *row = NULL;
	int ok = out && rows && cols;

	for (c = 0; ok && c < ncols; c++)
		ok = json_array_append_new(cols, json_string(PQfname(res, c))) == 0;
	for (r = 0; ok && r < nrows && (size_t)r < max_rows; r++) {
		row = json_object();
		ok = row != NULL;
		for (c = 0; ok && c < ncols; c++) {
			json_t *v = pg_value(res, r, c);

			ok = v && json_object_set_new(row, PQfname(res, c), v) == 0;
		}
		/* append_new takes row even when it fails; a row not handed over
		 * is ours to free. */
		if (ok)
			ok = json_array_append_new(rows, row) == 0;
		else
			json_decref(row);
		row = NULL;
	}
	ok = ok && json_object_set(out, "rows", rows) == 0;
	ok = ok && json_object_set_new(out, "count", json_integer(nrows)) == 0;
	ok = ok && json_object_set(out, "columns", cols) == 0;
	ok = ok && json_object_set_new(out, "truncated", json_boolean((size_t)nrows > max_rows)) == 0;
	json_decref(rows);
	json_decref(cols);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

int actions_exit_matches(const json_t *expect, int code, struct st_error *err)
{
	size_t i;
	const json_t *v;

	if (!expect || json_is_null(expect))
		return code == 0;
	if (json_is_integer(expect))
		return code == json_integer_value(expect);
	if (json_is_string(expect)) {
		const char *s = json_string_value(expect);
		char *end;
		long l;

		if (!strcasecmp(s, "any"))
			return 1;
		l = strtol(s, &end, 10);
		if (*s && !*end)
			return code == l;
	}
	if (json_is_array(expect) && json_array_size(expect) > 0) {
		json_array_foreach(expect, i, v) {
			if (!json_is_integer(v))
				goto bad;
			if (json_integer_value(v) == code)
				return 1;
		}
		return 0;
	}
bad:
	return st_error_set(err, ST_EUSAGE, "expect_exit must be an exit code, a list of them, or 'any'");
}
