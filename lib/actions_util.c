#include "actions_util.h"
#include "config.h"
#include "expr.h"
#include "proxy.h"
#include "redact.h"
#include "services.h"
#include "text.h"

#include <stdio.h>
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
	return json_is_real(v) ? text_double_to_ll(json_real_value(v)) : def;
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
	return redact_url(value, 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* key: the strings of list joined by ", " ("none" when empty), for
 * messages. 0 or -1. */
static int set_joined(json_t *obj, const char *key, const json_t *list)
{
	char *text = NULL;
	size_t len = 0, i;
	FILE *m = open_memstream(&text, &len);
	json_t *v;
	int rc;

	if (!m)
		return -1;
	json_array_foreach(list, i, v)
		fprintf(m, "%s%s", i ? ", " : "", json_string_value(v) ? json_string_value(v) : "");
	if (!json_array_size(list))
		fputs("none", m);
	if (fclose(m) != 0) {
		free(text);
		return -1;
	}
	rc = json_object_set_new(obj, key, json_string(text));
	free(text);
	return rc;
}

json_t *actions_env_summary(const json_t *env, const json_t *require)
{
	json_t *out = json_object(), *names = json_array(), *vars = json_object(),
	       *hidden = json_array(), *empty = json_object(), *missing = NULL, *v;
	const char **sorted = NULL;
	size_t n = json_array_size(env), i, m = 0;
	int ok = out && names && vars && hidden && empty;

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
		/* "***" hides whether a secret is set to "": remember it. */
		if (ok && !eq[1])
			ok = json_object_set_new(empty, name, json_true()) == 0;
		else if (ok)
			json_object_del(empty, name);
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
			if (!have || !json_string_length(have) || json_object_get(empty, want))
				ok = json_array_append_new(missing, json_string(want)) == 0;
		}
		ok = ok && json_object_set_new(out, "missing_count",
					       json_integer((json_int_t)json_array_size(missing))) == 0;
		ok = ok && json_object_set(out, "missing", missing) == 0;
		ok = ok && set_joined(out, "missing_text", missing) == 0;
	}
	ok = ok && json_object_set_new(out, "count", json_integer((json_int_t)m)) == 0;
	ok = ok && json_object_set(out, "names", names) == 0;
	ok = ok && json_object_set(out, "vars", vars) == 0;
	ok = ok && json_object_set(out, "hidden", hidden) == 0;
	free(sorted);
	json_decref(names);
	json_decref(vars);
	json_decref(hidden);
	json_decref(empty);
	json_decref(missing);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

int actions_url_origin(const char *url, char *out, size_t size)
{
	const char *p = url, *auth, *end, *at, *host, *host_end, *port = NULL;
	char scheme[8];
	size_t n, i;
	int w;

	if (!url || size == 0)
		return -1;
	auth = strstr(url, "://");
	if (!auth || (size_t)(auth - url) >= sizeof(scheme) || auth == url)
		return -1;
	for (i = 0; p < auth; p++, i++)
		scheme[i] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
	scheme[i] = '\0';
	if (strcmp(scheme, "http") && strcmp(scheme, "https"))
		return -1;
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	/* user:password@ is not part of an origin (and may hold a secret). */
	at = memrchr(auth, '@', (size_t)(end - auth));
	host = at ? at + 1 : auth;
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end)
			return -1;
		host_end++;
		if (host_end < end && *host_end != ':')
			return -1;
	} else {
		host_end = memchr(host, ':', (size_t)(end - host));
		if (!host_end)
			host_end = end;
	}
	if (host_end == host)
		return -1;
	if (host_end < end) {
		port = host_end + 1;
		if (port == end || (size_t)(end - port) > 5 || strspn(port, "0123456789") < (size_t)(end - port))
			return -1;
		while (port < end - 1 && *port == '0')
			port++;
		/* The scheme's default port is the same origin as no port. */
		if ((!strcmp(scheme, "http") && end - port == 2 && !strncmp(port, "80", 2)) ||
		    (!strcmp(scheme, "https") && end - port == 3 && !strncmp(port, "443", 3)))
			port = NULL;
	}
	n = (size_t)(host_end - host);
	w = snprintf(out, size, "%s://", scheme);
	if (w < 0 || (size_t)w + n + 1 > size)
		return -1;
	for (i = 0; i < n; i++)
		out[w + i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 32 : host[i]);
	out[w + n] = '\0';
	if (port && (size_t)snprintf(out + w + n, size - (size_t)w - n, ":%.*s", (int)(end - port),
				     port) >= size - (size_t)w - n)
		return -1;
	return 0;
}

/* The URL a service is reached at: url, else health_url; NULL when neither. */
static const char *service_url(const struct st_config *cfg, const char *name)
{
	const struct config_service *svc = cfg ? config_service(cfg, name) : NULL;

	if (!svc)
		return NULL;
	return svc->url ? svc->url : svc->health_url;
}

/* The proxy in front of service name (proxy.service, with a url), else NULL. */
static const struct config_proxy *fronting_proxy(const struct st_config *cfg, const char *name)
{
	const struct config_proxy *px = cfg ? &cfg->proxy : NULL;

	if (!px || !px->container || !px->url || !px->service || strcmp(px->service, name))
		return NULL;
	return px;
}

/* The port of an origin from actions_url_origin ("http://h:3001" -> 3001),
 * 0 when it has none (the scheme's default). */
static long origin_port(const char *origin)
{
	const char *colon = strrchr(origin + strcspn(origin, ":") + 3, ':');

	if (!colon || strchr(colon, ']'))
		return 0;
	return strtol(colon + 1, NULL, 10);
}

/* Whether an origin names one of the proxy's blue/green ports that the proxy
 * does not route to now (a blue/green deploy moved the service away). An
 * upstream file that cannot be read tells nothing: 0. */
static int inactive_colour(const struct config_proxy *px, const char *origin)
{
	struct st_error ignored = { 0 };
	long port = origin_port(origin), active;

	if (!port || (port != px->blue_port && port != px->green_port))
		return 0;
	if (proxy_current_port(px, &active, &ignored) != 0)
		return 0;
	return port != active;
}

int actions_env_extras(const struct engine_call *call, json_t *summary, const json_t *origins,
		       const char *names_like, struct st_error *err)
{
	const json_t *vars = json_object_get(summary, "vars");
	json_t *matched = NULL, *checked = NULL, *v;
	const char *k;
	size_t i, mismatches = 0;
	int rc = 0;

	if (names_like) {
		const json_t *names = json_object_get(summary, "names");

		if (!(matched = json_array()))
			goto nomem;
		json_array_foreach(names, i, v) {
			const char *name = json_string_value(v);

			if (name && !strncmp(name, names_like, strlen(names_like)) &&
			    json_array_append(matched, v))
				goto nomem;
		}
		if (json_object_set(summary, "matched", matched) ||
		    set_joined(summary, "matched_text", matched))
			goto nomem;
	}
	if (!origins)
		goto out;
	if (!json_is_object(origins)) {
		rc = st_error_set(err, ST_EUSAGE, "origins must map variable names to a service or a URL");
		goto out;
	}
	if (!(checked = json_object()))
		goto nomem;
	json_object_foreach((json_t *)origins, k, v) {
		const char *want = json_string_value(v);
		const char *value = json_string_value(json_object_get(vars, k));
		const char *expected_url;
		const struct config_proxy *px = NULL;
		char have_o[512], want_o[512], proxy_o[512];
		json_t *entry;
		int same, have_ok, inactive = 0;

		if (!want || !*want) {
			rc = st_error_set(err, ST_EUSAGE, "origins.%s must be a service name or a URL", k);
			goto out;
		}
		expected_url = strstr(want, "://") ? want : service_url(call ? call->config : NULL, want);
		if (!expected_url) {
			rc = st_error_set(err, ST_ECONFIG, "service '%s' has neither url nor health_url", want);
			st_error_hint(err, "set services.%s.url in the configuration", want);
			goto out;
		}
		if (actions_url_origin(expected_url, want_o, sizeof(want_o)) != 0) {
			rc = st_error_set(err, ST_EUSAGE, "'%s' is not an http(s) URL", expected_url);
			goto out;
		}
		/* Behind a proxy (blue/green), the proxy's origin is the one that
		 * stays valid: it is expected, and the service's own origin is
		 * accepted only while the proxy routes to that port. */
		if (!strstr(want, "://") && (px = fronting_proxy(call ? call->config : NULL, want)) &&
		    actions_url_origin(px->url, proxy_o, sizeof(proxy_o)) != 0) {
			rc = st_error_set(err, ST_ECONFIG, "proxy url '%s' is not an http(s) URL", px->url);
			st_error_hint(err, "correct proxy.url in the configuration");
			goto out;
		}
		have_ok = value && actions_url_origin(value, have_o, sizeof(have_o)) == 0;
		same = have_ok && !strcmp(have_o, want_o);
		if (px && same && strcmp(have_o, proxy_o) && inactive_colour(px, have_o)) {
			same = 0;
			inactive = 1;
		}
		if (px && have_ok && !strcmp(have_o, proxy_o))
			same = 1;
		if (!same)
			mismatches++;
		entry = json_pack("{s:s?,s:s?,s:s,s:s,s:b,s:b}", "value", value, "origin",
				  have_ok ? have_o : NULL, "expected", px ? proxy_o : want_o,
				  "expected_from", px ? "proxy" : want, "same", same, "inactive_port",
				  inactive);
		if (!entry || json_object_set_new(checked, k, entry))
			goto nomem;
	}
	if (json_object_set(summary, "origins", checked) ||
	    json_object_set_new(summary, "origin_mismatches", json_integer((json_int_t)mismatches)))
		goto nomem;
	goto out;
nomem:
	rc = actions_oom(err);
out:
	json_decref(matched);
	json_decref(checked);
	return rc;
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
