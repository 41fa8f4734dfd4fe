/*
 * compose.c - docker-compose.yml subset -> container create bodies, and a
 * running container as its own definition (see compose.h).
 */
#include "compose.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envfile.h"
#include "sbuf.h"
#include "text.h"
#include "yamltree.h"

/* A compose file is a few kilobytes; anything this large is not one. */
#define COMPOSE_FILE_MAX (4 * 1024 * 1024)

/* Loading state. */
struct cload {
	struct compose_project *p;
	const json_t *vars;          /* interpolation variables after the environment */
	struct st_error *err;
};

#define OOM(c) st_error_set((c)->err, ST_ENOMEM, "out of memory reading the compose file")

/* ---- small helpers -------------------------------------------------------- */

static int is_ext(const char *key)
{
	return !strncmp(key, "x-", 2);
}

/* Removes "." and ".." components and doubled slashes of an absolute
 * path, in place (Docker wants clean bind sources). */
static void clean_abs(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		while (*r == '/')
			r++;
		if (!*r)
			break;
		if (r[0] == '.' && (r[1] == '/' || !r[1])) {
			r++;
		} else if (r[0] == '.' && r[1] == '.' && (r[2] == '/' || !r[2])) {
			r += 2;
			while (w > s && *--w != '/')
				;
		} else {
			*w++ = '/';
			while (*r && *r != '/')
				*w++ = *r++;
		}
	}
	if (w == s)
		*w++ = '/';
	*w = '\0';
}

/* Joins dir and path unless path is absolute, cleaned. Caller frees; NULL
 * on ENOMEM. */
static char *abs_path(const char *dir, const char *path)
{
	struct sbuf sb = SBUF_INIT;
	char *out;
	int rc;

	if (path[0] == '/')
		rc = sbuf_puts(&sb, path);
	else if (path[0] == '~' && (path[1] == '/' || !path[1]) && getenv("HOME"))
		rc = sbuf_printf(&sb, "%s%s", getenv("HOME"), path + 1);
	else
		rc = sbuf_printf(&sb, "%s/%s", dir, path);
	if (rc != 0 || !(out = sbuf_detach(&sb))) {
		sbuf_release(&sb);
		return NULL;
	}
	clean_abs(out);
	return out;
}

/* ---- interpolation ---------------------------------------------------- */

static const char *lookup_var(const struct cload *c, const char *name)
{
	const char *v = getenv(name);

	if (v)
		return v;
	return json_string_value(json_object_get(c->vars, name));
}

static int interp_text(struct cload *c, const struct yt_node *at, const char *s, struct sbuf *out,
		       int depth);

/* ${...} starting after "${" at s; *end set past the closing brace. */
static int interp_braced(struct cload *c, const struct yt_node *at, const char *s, const char **end,
			 struct sbuf *out, int depth)
{
	const char *p = s, *close;
	char name[256], op[3] = "";
	size_t n;
	int nest = 1;
	const char *val;

	while (*p && (isalnum((unsigned char)*p) || *p == '_'))
		p++;
	n = (size_t)(p - s);
	if (n == 0 || n >= sizeof(name) || isdigit((unsigned char)*s))
		return yt_error_at(c->err, ST_ECONFIG, at, "invalid interpolation format in '%s'",
				   at->scalar);
	memcpy(name, s, n);
	name[n] = '\0';
	/* find the matching brace (defaults may nest ${...}) */
	for (close = p; *close; close++) {
		if (close[0] == '$' && close[1] == '{')
			nest++, close++;
		else if (*close == '}' && --nest == 0)
			break;
	}
	if (!*close)
		return yt_error_at(c->err, ST_ECONFIG, at, "unterminated '${' in '%s'", at->scalar);
	*end = close + 1;
	if (p != close) {
		if (p[0] == ':' && strchr("-?+", p[1])) {
			op[0] = ':';
			op[1] = p[1];
			p += 2;
		} else if (strchr("-?+", p[0])) {
			op[0] = p[0];
			p += 1;
		} else {
			return yt_error_at(c->err, ST_ECONFIG, at, "invalid interpolation format in '%s'",
					   at->scalar);
		}
	}
	val = lookup_var(c, name);
	if (!op[0]) {
		return sbuf_puts(out, val ? val : "") ? OOM(c) : 0;
	} else {
		int unset = !val || (op[0] == ':' && !*val);
		char kind = op[op[0] == ':' ? 1 : 0];
		char *word = strndup(p, (size_t)(close - p));
		struct sbuf w = SBUF_INIT;
		int rc = 0;

		if (!word)
			return OOM(c);
		if ((rc = interp_text(c, at, word, &w, depth + 1)) != 0)
			goto done;
		if (kind == '-') {
			rc = sbuf_puts(out, unset ? sbuf_str(&w) : val) ? OOM(c) : 0;
		} else if (kind == '+') {
			rc = sbuf_puts(out, unset ? "" : sbuf_str(&w)) ? OOM(c) : 0;
		} else if (unset) {
			rc = yt_error_at(c->err, ST_ECONFIG, at, "required variable %s is missing a value%s%s",
					 name, w.len ? ": " : "", sbuf_str(&w));
		} else {
			rc = sbuf_puts(out, val) ? OOM(c) : 0;
		}
done:
		free(word);
		sbuf_release(&w);
		return rc;
	}
}

static int interp_text(struct cload *c, const struct yt_node *at, const char *s, struct sbuf *out,
		       int depth)
{
	int rc;

	if (depth > 8)
		return yt_error_at(c->err, ST_ECONFIG, at, "interpolation nested too deep");
	/* An empty text must still give "" (a grown buffer is not terminated). */
	if (sbuf_append(out, "", 0) != 0)
		return OOM(c);
	while (*s) {
		if (s[0] != '$') {
			if (sbuf_append(out, s++, 1) != 0)
				return OOM(c);
		} else if (s[1] == '$') {
			if (sbuf_append(out, "$", 1) != 0)
				return OOM(c);
			s += 2;
		} else if (s[1] == '{') {
			const char *end = s;

			if ((rc = interp_braced(c, at, s + 2, &end, out, depth)) != 0)
				return rc;
			s = end;
		} else if (isalpha((unsigned char)s[1]) || s[1] == '_') {
			char name[256];
			size_t n = 0;
			const char *v;

			s++;
			while ((isalnum((unsigned char)*s) || *s == '_') && n + 1 < sizeof(name))
				name[n++] = *s++;
			name[n] = '\0';
			v = lookup_var(c, name);
			if (sbuf_puts(out, v ? v : "") != 0)
				return OOM(c);
		} else {
			return yt_error_at(c->err, ST_ECONFIG, at, "invalid interpolation format in '%s' "
					   "(write $$ for a literal $)", at->scalar);
		}
	}
	return 0;
}

/* The interpolated text of a scalar node. *out: caller frees. */
static int scalar_of(struct cload *c, const struct yt_node *n, const char *what, char **out)
{
	struct sbuf sb = SBUF_INIT;
	int rc;

	*out = NULL;
	if (!n || n->kind != YT_SCALAR)
		return yt_error_at(c->err, ST_ECONFIG, n, "%s must be a scalar, not a %s", what,
				   n ? yt_kind_name(n->kind) : "nothing");
	if ((rc = interp_text(c, n, n->scalar, &sb, 0)) != 0) {
		sbuf_release(&sb);
		return rc;
	}
	*out = sbuf_detach(&sb);
	return *out ? 0 : OOM(c);
}

/* ---- dotenv ------------------------------------------------------------ */

int compose_read_env_file(const char *path, json_t *obj, struct st_error *err)
{
	struct envfile ef = ENVFILE_INIT;
	size_t i;
	int rc;

	if ((rc = envfile_load(path, &ef, err)) != 0)
		return rc;
	if (ef.bad_line) {
		rc = st_error_set(err, ST_ECONFIG, "%s:%d: expected NAME=value", path, ef.bad_line);
		goto out;
	}
	for (i = 0; i < ef.n; i++) {
		const struct envfile_entry *e = &ef.entries[i];
		/* "NAME" alone: its value from our environment, as docker does. */
		const char *v = e->bare ? getenv(e->key) : e->value;

		if (v && json_object_set_new(obj, e->key, json_string(v))) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory reading '%s'", path);
			goto out;
		}
	}
out:
	envfile_release(&ef);
	return rc;
}

/* ---- command lines ------------------------------------------------------- */

/* Splits a command string the way compose does (shlex: whitespace,
 * quotes, backslashes), into a JSON array. */
static int shell_split(struct cload *c, const struct yt_node *at, const char *s, json_t **out)
{
	json_t *arr = json_array();
	struct sbuf w = SBUF_INIT;
	int in_word = 0, rc = 0;

	if (!arr)
		return OOM(c);
	for (;;) {
		char ch = *s;

		if (!ch || isspace((unsigned char)ch)) {
			if (in_word) {
				if (json_array_append_new(arr, json_string(sbuf_str(&w))))
					goto nomem;
				sbuf_reset(&w);
				in_word = 0;
			}
			if (!ch)
				break;
			s++;
		} else if (ch == '\'' || ch == '"') {
			char q = ch;

			in_word = 1;
			for (s++; *s && *s != q; s++) {
				if (q == '"' && *s == '\\' && (s[1] == '"' || s[1] == '\\' || s[1] == '$'))
					s++;
				if (sbuf_append(&w, s, 1) != 0)
					goto nomem;
			}
			if (!*s) {
				rc = yt_error_at(c->err, ST_ECONFIG, at, "unterminated quote in '%s'", at->scalar);
				goto out;
			}
			s++;
		} else if (ch == '\\' && s[1]) {
			in_word = 1;
			if (sbuf_append(&w, s + 1, 1) != 0)
				goto nomem;
			s += 2;
		} else {
			in_word = 1;
			if (sbuf_append(&w, s++, 1) != 0)
				goto nomem;
		}
		if (!sbuf_str(&w))
			goto nomem;
	}
	*out = arr;
	arr = NULL;
	goto out;
nomem:
	rc = OOM(c);
out:
	sbuf_release(&w);
	json_decref(arr);
	return rc;
}

/* command/entrypoint: a string (split) or a list of strings. */
static int argv_of(struct cload *c, const struct yt_node *n, const char *what, json_t **out)
{
	size_t i;
	char *s = NULL;
	int rc;

	*out = NULL;
	if (n->kind == YT_SCALAR) {
		if ((rc = scalar_of(c, n, what, &s)) != 0)
			return rc;
		rc = shell_split(c, n, s, out);
		free(s);
		return rc;
	}
	if (n->kind != YT_SEQ)
		return yt_error_at(c->err, ST_ECONFIG, n, "%s must be a string or a list", what);
	if (!(*out = json_array()))
		return OOM(c);
	for (i = 0; i < n->count; i++) {
		if ((rc = scalar_of(c, n->values[i], what, &s)) != 0)
			return rc;
		rc = json_array_append_new(*out, json_string(s));
		free(s);
		if (rc)
			return OOM(c);
	}
	return 0;
}

/* ---- durations ------------------------------------------------------------ */

int compose_parse_duration(const char *text, double *seconds)
{
	const char *p = text;
	double total = 0;
	int any = 0;

	if (!p || !*p)
		return -1;
	while (*p) {
		char *end;
		double v;

		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || v < 0)
			return -1;
		p = end;
		if (!strncmp(p, "ms", 2)) {
			v /= 1000;
			p += 2;
		} else if (!strncmp(p, "us", 2)) {
			v /= 1e6;
			p += 2;
		} else if (*p == 'h') {
			v *= 3600;
			p++;
		} else if (*p == 'm') {
			v *= 60;
			p++;
		} else if (*p == 's') {
			p++;
		} else if (*p) {
			return -1;
		} else if (any) {
			return -1;  /* "1m30": the unit of the last number is missing */
		}
		total += v;
		any = 1;
	}
	/* Docker keeps durations as int64 nanoseconds (about 292 years): a
	 * longer one would overflow when converted for the API. */
	if (!(total <= 9e9))
		return -1;
	*seconds = total;
	return 0;
}

static int duration_of(struct cload *c, const struct yt_node *n, const char *what, double *out)
{
	char *s = NULL;
	int rc;

	if ((rc = scalar_of(c, n, what, &s)) != 0)
		return rc;
	if (compose_parse_duration(s, out) != 0)
		rc = yt_error_at(c->err, ST_ECONFIG, n, "%s: '%s' is not a duration (like 30s, 1m30s, 500ms)",
				 what, s);
	free(s);
	return rc;
}

/* ---- one service ------------------------------------------------------------ */

static const char *const service_keys[] = {
	"image", "build", "container_name", "environment", "env_file", "ports", "volumes",
	"depends_on", "healthcheck", "restart", "network_mode", "labels", "command", "entrypoint",
	"init", "user", "working_dir", "stop_signal", "stop_grace_period", "logging", NULL
};

static int known_key(const char *const *keys, const char *k)
{
	for (; *keys; keys++)
		if (!strcmp(*keys, k))
			return 1;
	return 0;
}

static int unknown_key_error(struct cload *c, const struct yt_node *key, const char *where,
			     const char *const *keys)
{
	struct sbuf list = SBUF_INIT;
	const char *const *k;

	for (k = keys; *k; k++)
		if (sbuf_printf(&list, "%s%s", k == keys ? "" : ", ", *k) != 0)
			break;
	yt_error_at(c->err, ST_ECONFIG, key,
		    "%s: key '%s' is not supported: it changes how the container runs and spilttea-ops "
		    "would not reproduce it", where, key->scalar);
	st_error_hint(c->err, "supported keys: %s", sbuf_str(&list));
	sbuf_release(&list);
	return ST_ECONFIG;
}

/* A map or a list of "K=V" (value_required: list items need '='; else
 * "K" alone takes K from the environment) into obj. */
static int kv_into(struct cload *c, const struct yt_node *n, const char *what, int from_env,
		   json_t *obj)
{
	size_t i;
	char *s = NULL;
	int rc = 0;

	if (n->kind == YT_MAP) {
		for (i = 0; i < n->count; i++) {
			const char *k = n->keys[i]->scalar;

			if (yt_is_null(n->values[i]) && n->values[i]->kind == YT_SCALAR) {
				const char *ev = from_env ? getenv(k) : "";

				if (ev && json_object_set_new(obj, k, json_string(ev)))
					return OOM(c);
				continue;
			}
			if ((rc = scalar_of(c, n->values[i], what, &s)) != 0)
				return rc;
			rc = json_object_set_new(obj, k, json_string(s)) ? OOM(c) : 0;
			free(s);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (n->kind != YT_SEQ)
		return yt_error_at(c->err, ST_ECONFIG, n, "%s must be a mapping or a list", what);
	for (i = 0; i < n->count; i++) {
		char *eq;

		if ((rc = scalar_of(c, n->values[i], what, &s)) != 0)
			return rc;
		eq = strchr(s, '=');
		if (eq) {
			*eq = '\0';
			rc = json_object_set_new(obj, s, json_string(eq + 1)) ? OOM(c) : 0;
		} else if (from_env) {
			const char *ev = getenv(s);

			rc = ev && json_object_set_new(obj, s, json_string(ev)) ? OOM(c) : 0;
		} else {
			rc = json_object_set_new(obj, s, json_string("")) ? OOM(c) : 0;
		}
		free(s);
		if (rc)
			return rc;
	}
	return 0;
}

static int set_str(struct cload *c, json_t *o, const char *key, const char *v)
{
	return json_object_set_new(o, key, json_string(v)) ? OOM(c) : 0;
}

static int parse_build(struct cload *c, struct compose_service *svc, const struct yt_node *n)
{
	char *s = NULL;
	size_t i;
	int rc = 0;

	if (n->kind == YT_SCALAR) {
		if ((rc = scalar_of(c, n, "build", &s)) != 0)
			return rc;
		svc->build_context = abs_path(c->p->dir, s);
		free(s);
		return svc->build_context ? 0 : OOM(c);
	}
	if (n->kind != YT_MAP)
		return yt_error_at(c->err, ST_ECONFIG, n, "build must be a path or a mapping");
	for (i = 0; i < n->count; i++) {
		const char *k = n->keys[i]->scalar;
		const struct yt_node *v = n->values[i];

		if (is_ext(k))
			continue;
		if (!strcmp(k, "context")) {
			if ((rc = scalar_of(c, v, "build.context", &s)) != 0)
				return rc;
			free(svc->build_context);
			svc->build_context = abs_path(c->p->dir, s);
			free(s);
			if (!svc->build_context)
				return OOM(c);
		} else if (!strcmp(k, "dockerfile")) {
			free(svc->dockerfile);
			if ((rc = scalar_of(c, v, "build.dockerfile", &svc->dockerfile)) != 0)
				return rc;
		} else if (!strcmp(k, "args")) {
			json_t *args = json_object();
			const char *ak;
			json_t *av;
			size_t j = 0;

			if (!args)
				return OOM(c);
			if ((rc = kv_into(c, v, "build.args", 1, args)) != 0) {
				json_decref(args);
				return rc;
			}
			free(svc->build_args);
			svc->build_args = calloc(json_object_size(args) + 1, sizeof(char *));
			if (!svc->build_args) {
				json_decref(args);
				return OOM(c);
			}
			json_object_foreach(args, ak, av) {
				if (asprintf(&svc->build_args[j], "%s=%s", ak, json_string_value(av)) < 0) {
					svc->build_args[j] = NULL;
					json_decref(args);
					return OOM(c);
				}
				j++;
			}
			json_decref(args);
		} else {
			static const char *const build_keys[] = { "context", "dockerfile", "args", NULL };
			char where[200];

			snprintf(where, sizeof(where), "service '%s' build", svc->name);
			return unknown_key_error(c, n->keys[i], where, build_keys);
		}
	}
	if (!svc->build_context && !(svc->build_context = abs_path(c->p->dir, ".")))
		return OOM(c);
	return 0;
}

static int parse_env_files(struct cload *c, const struct yt_node *n, json_t *env)
{
	size_t i, count = n->kind == YT_SEQ ? n->count : 1;
	int rc = 0;

	if (n->kind == YT_MAP)
		return yt_error_at(c->err, ST_ECONFIG, n, "env_file must be a path or a list");
	for (i = 0; i < count; i++) {
		const struct yt_node *item = n->kind == YT_SEQ ? n->values[i] : n;
		const struct yt_node *pathn = item;
		char *s = NULL, *path;
		int required = 1;

		if (item->kind == YT_MAP) {
			const struct yt_node *r = yt_map_get(item, "required");

			pathn = yt_map_get(item, "path");
			if (!pathn)
				return yt_error_at(c->err, ST_ECONFIG, item, "env_file entry needs 'path'");
			if (r && (rc = yt_get_bool(r, "env_file.required", &required, c->err)) != 0)
				return rc;
		}
		if ((rc = scalar_of(c, pathn, "env_file", &s)) != 0)
			return rc;
		path = abs_path(c->p->dir, s);
		free(s);
		if (!path)
			return OOM(c);
		rc = compose_read_env_file(path, env, c->err);
		if (rc == ST_ENOTFOUND && !required)
			rc = 0;
		else if (rc)
			yt_error_at(c->err, rc, pathn, "%s", c->err->message);
		free(path);
		if (rc)
			return rc;
	}
	return 0;
}

/* A named volume's name as Docker knows it. */
static char *volume_name(struct cload *c, const struct yt_node *root, const char *key)
{
	const struct yt_node *vols = yt_map_get(root, "volumes");
	const struct yt_node *v = vols ? yt_map_get(vols, key) : NULL;
	const struct yt_node *name = v ? yt_map_get(v, "name") : NULL;
	const struct yt_node *ext = v ? yt_map_get(v, "external") : NULL;
	char *s = NULL;

	if (name && scalar_of(c, name, "volumes.name", &s) == 0)
		return s;
	if (ext && ext->kind == YT_SCALAR && !strcmp(ext->scalar, "true"))
		return strdup(key);
	if (asprintf(&s, "%s_%s", c->p->name, key) < 0)
		return NULL;
	return s;
}

static int parse_volumes(struct cload *c, const struct yt_node *root, const struct yt_node *n,
			 json_t *config, json_t *host)
{
	json_t *binds = json_array(), *anon = json_object(), *tmpfs = json_object();
	size_t i;
	int rc = 0;

	if (!binds || !anon || !tmpfs) {
		rc = OOM(c);
		goto out;
	}
	if (n->kind != YT_SEQ) {
		rc = yt_error_at(c->err, ST_ECONFIG, n, "volumes must be a list");
		goto out;
	}
	for (i = 0; i < n->count; i++) {
		const struct yt_node *v = n->values[i];
		char *src = NULL, *dst = NULL, *mode = NULL, *type = NULL, *bind = NULL;
		int ro = 0;

		if (v->kind == YT_SCALAR) {
			char *s = NULL, *p1, *p2;

			if ((rc = scalar_of(c, v, "volumes", &s)) != 0)
				goto out;
			p1 = strchr(s, ':');
			if (!p1) {
				dst = strdup(s);
			} else {
				*p1++ = '\0';
				p2 = strchr(p1, ':');
				if (p2)
					*p2++ = '\0';
				src = strdup(s);
				dst = strdup(p1);
				mode = p2 ? strdup(p2) : NULL;
			}
			free(s);
		} else if (v->kind == YT_MAP) {
			const struct yt_node *t = yt_map_get(v, "type"), *so = yt_map_get(v, "source");
			const struct yt_node *ta = yt_map_get(v, "target"), *r = yt_map_get(v, "read_only");
			size_t j;

			for (j = 0; j < v->count; j++) {
				static const char *const vkeys[] = { "type", "source", "target", "read_only", NULL };

				if (!is_ext(v->keys[j]->scalar) && !known_key(vkeys, v->keys[j]->scalar)) {
					rc = unknown_key_error(c, v->keys[j], "volume", vkeys);
					goto out;
				}
			}
			if (!t || !ta) {
				rc = yt_error_at(c->err, ST_ECONFIG, v, "a volume mapping needs 'type' and 'target'");
				goto out;
			}
			if ((rc = scalar_of(c, t, "volumes.type", &type)) != 0 ||
			    (rc = scalar_of(c, ta, "volumes.target", &dst)) != 0 ||
			    (so && (rc = scalar_of(c, so, "volumes.source", &src)) != 0) ||
			    (r && (rc = yt_get_bool(r, "volumes.read_only", &ro, c->err)) != 0)) {
				free(type);
				free(dst);
				free(src);
				goto out;
			}
			if (strcmp(type, "bind") && strcmp(type, "volume") && strcmp(type, "tmpfs")) {
				rc = yt_error_at(c->err, ST_ECONFIG, t, "volume type '%s' is not supported "
						 "(bind, volume, tmpfs)", type);
				free(type);
				free(dst);
				free(src);
				goto out;
			}
			if (ro)
				mode = strdup("ro");
		} else {
			rc = yt_error_at(c->err, ST_ECONFIG, v, "a volume is a string or a mapping");
			goto out;
		}
		if (!dst) {
			rc = OOM(c);
		} else if (type && !strcmp(type, "tmpfs")) {
			rc = json_object_set_new(tmpfs, dst, json_string(ro ? "ro" : "")) ? OOM(c) : 0;
		} else if (!src || !*src) {
			rc = json_object_set_new(anon, dst, json_object()) ? OOM(c) : 0;
		} else {
			int is_path = src[0] == '/' || src[0] == '.' || src[0] == '~' ||
				      (type && !strcmp(type, "bind"));
			char *host_src = is_path ? abs_path(c->p->dir, src) : volume_name(c, root, src);

			if (!host_src || asprintf(&bind, "%s:%s%s%s", host_src, dst, mode ? ":" : "",
						  mode ? mode : "") < 0)
				rc = OOM(c);
			else if (json_array_append_new(binds, json_string(bind)))
				rc = OOM(c);
			free(host_src);
			free(bind);
		}
		free(src);
		free(dst);
		free(mode);
		free(type);
		if (rc)
			goto out;
	}
	if ((json_array_size(binds) && json_object_set(host, "Binds", binds)) ||
	    (json_object_size(anon) && json_object_set(config, "Volumes", anon)) ||
	    (json_object_size(tmpfs) && json_object_set(host, "Tmpfs", tmpfs)))
		rc = OOM(c);
out:
	json_decref(binds);
	json_decref(anon);
	json_decref(tmpfs);
	return rc;
}

static int add_port(struct cload *c, const struct yt_node *at, json_t *exposed, json_t *bindings,
		    const char *ip, const char *published, const char *target, const char *proto)
{
	char key[64];
	json_t *list, *b;

	if (!*target || strspn(target, "0123456789") != strlen(target) ||
	    (published && *published && strspn(published, "0123456789") != strlen(published)))
		return yt_error_at(c->err, ST_ECONFIG, at, "port '%s' is not supported (single numeric "
				   "ports only: [IP:]HOST:CONTAINER[/PROTO])", at->scalar ? at->scalar : "");
	snprintf(key, sizeof(key), "%s/%s", target, proto && *proto ? proto : "tcp");
	if (json_object_set_new(exposed, key, json_object()))
		return OOM(c);
	list = json_object_get(bindings, key);
	if (!list) {
		if (!(list = json_array()) || json_object_set_new(bindings, key, list))
			return OOM(c);
	}
	b = json_pack("{s:s, s:s}", "HostIp", ip ? ip : "", "HostPort", published ? published : "");
	if (!b || json_array_append_new(list, b))
		return OOM(c);
	return 0;
}

static int parse_ports(struct cload *c, const struct yt_node *n, json_t *config, json_t *host)
{
	json_t *exposed = json_object(), *bindings = json_object();
	size_t i;
	int rc = 0;

	if (!exposed || !bindings) {
		rc = OOM(c);
		goto out;
	}
	if (n->kind != YT_SEQ) {
		rc = yt_error_at(c->err, ST_ECONFIG, n, "ports must be a list");
		goto out;
	}
	for (i = 0; i < n->count && !rc; i++) {
		const struct yt_node *p = n->values[i];
		char *s = NULL, *proto, *parts[3] = { NULL, NULL, NULL };

		if (p->kind == YT_MAP) {
			char *t = NULL, *pub = NULL, *ip = NULL, *pr = NULL;
			const struct yt_node *x;

			if (!(x = yt_map_get(p, "target"))) {
				rc = yt_error_at(c->err, ST_ECONFIG, p, "a port mapping needs 'target'");
				break;
			}
			rc = scalar_of(c, x, "ports.target", &t);
			if (!rc && (x = yt_map_get(p, "published")))
				rc = scalar_of(c, x, "ports.published", &pub);
			if (!rc && (x = yt_map_get(p, "host_ip")))
				rc = scalar_of(c, x, "ports.host_ip", &ip);
			if (!rc && (x = yt_map_get(p, "protocol")))
				rc = scalar_of(c, x, "ports.protocol", &pr);
			if (!rc)
				rc = add_port(c, p, exposed, bindings, ip, pub, t, pr);
			free(t);
			free(pub);
			free(ip);
			free(pr);
			continue;
		}
		if ((rc = scalar_of(c, p, "ports", &s)) != 0)
			break;
		proto = strchr(s, '/');
		if (proto)
			*proto++ = '\0';
		/* [IP:]HOST:CONTAINER, HOST:CONTAINER or CONTAINER; an IPv6 IP is
		 * bracketed. */
		{
			char *c1 = strrchr(s, ':');

			if (!c1) {
				parts[2] = s;
			} else {
				*c1 = '\0';
				parts[2] = c1 + 1;
				c1 = strrchr(s, ':');
				if (c1 && s[0] != '[') {
					*c1 = '\0';
					parts[0] = s;
					parts[1] = c1 + 1;
				} else if (c1 && s[0] == '[') {
					char *rb = strchr(s, ']');

					if (rb && rb[1] == ':') {
						*rb = '\0';
						parts[0] = s + 1;
						parts[1] = rb + 2;
					} else {
						parts[1] = s;
					}
				} else {
					parts[1] = s;
				}
			}
		}
		rc = add_port(c, p, exposed, bindings, parts[0], parts[1], parts[2], proto);
		free(s);
	}
	if (!rc && json_object_size(exposed) &&
	    (json_object_set(config, "ExposedPorts", exposed) ||
	     json_object_set(host, "PortBindings", bindings)))
		rc = OOM(c);
out:
	json_decref(exposed);
	json_decref(bindings);
	return rc;
}

static int parse_healthcheck(struct cload *c, const struct yt_node *n, json_t *config)
{
	static const char *const hkeys[] = { "test", "interval", "timeout", "retries", "start_period",
					     "disable", NULL };
	json_t *hc = json_object(), *test = NULL;
	size_t i;
	int rc = 0;

	if (!hc)
		return OOM(c);
	if (n->kind != YT_MAP) {
		rc = yt_error_at(c->err, ST_ECONFIG, n, "healthcheck must be a mapping");
		goto out;
	}
	for (i = 0; i < n->count && !rc; i++) {
		const char *k = n->keys[i]->scalar;
		const struct yt_node *v = n->values[i];
		double d;
		long l;
		int b;

		if (is_ext(k))
			continue;
		if (!strcmp(k, "test")) {
			json_decref(test);
			test = NULL;
			if (v->kind == YT_SCALAR) {
				char *s = NULL;

				if ((rc = scalar_of(c, v, "healthcheck.test", &s)) != 0)
					break;
				test = json_pack("[s,s]", "CMD-SHELL", s);
				free(s);
				if (!test)
					rc = OOM(c);
			} else if ((rc = argv_of(c, v, "healthcheck.test", &test)) == 0) {
				const char *first = json_string_value(json_array_get(test, 0));

				if (!first || (strcmp(first, "CMD") && strcmp(first, "CMD-SHELL") &&
					       strcmp(first, "NONE")))
					rc = yt_error_at(c->err, ST_ECONFIG, v, "healthcheck.test must start with "
							 "CMD, CMD-SHELL or NONE");
			}
		} else if (!strcmp(k, "interval") || !strcmp(k, "timeout") || !strcmp(k, "start_period")) {
			const char *dk = !strcmp(k, "interval") ? "Interval" :
					 !strcmp(k, "timeout") ? "Timeout" : "StartPeriod";

			if ((rc = duration_of(c, v, k, &d)) == 0 &&
			    json_object_set_new(hc, dk, json_integer((json_int_t)(d * 1e9 + 0.5))))
				rc = OOM(c);
		} else if (!strcmp(k, "retries")) {
			if ((rc = yt_get_long(v, "healthcheck.retries", &l, c->err)) == 0 &&
			    json_object_set_new(hc, "Retries", json_integer(l)))
				rc = OOM(c);
		} else if (!strcmp(k, "disable")) {
			if ((rc = yt_get_bool(v, "healthcheck.disable", &b, c->err)) == 0 && b) {
				json_decref(test);
				if (!(test = json_pack("[s]", "NONE")))
					rc = OOM(c);
			}
		} else {
			rc = unknown_key_error(c, n->keys[i], "healthcheck", hkeys);
		}
	}
	if (!rc && test && json_object_set(hc, "Test", test))
		rc = OOM(c);
	if (!rc && json_object_set(config, "Healthcheck", hc))
		rc = OOM(c);
out:
	json_decref(test);
	json_decref(hc);
	return rc;
}

static int parse_restart(struct cload *c, const struct yt_node *n, json_t *host)
{
	char *s = NULL;
	json_t *pol = NULL;
	int rc;

	if ((rc = scalar_of(c, n, "restart", &s)) != 0)
		return rc;
	if (!strcmp(s, "no") || !strcmp(s, "always") || !strcmp(s, "unless-stopped") ||
	    !strcmp(s, "on-failure")) {
		pol = json_pack("{s:s}", "Name", s);
	} else if (!strncmp(s, "on-failure:", 11) && s[11] &&
		   strspn(s + 11, "0123456789") == strlen(s + 11)) {
		pol = json_pack("{s:s, s:i}", "Name", "on-failure", "MaximumRetryCount", atoi(s + 11));
	} else {
		rc = yt_error_at(c->err, ST_ECONFIG, n, "restart '%s' is not one of no, always, "
				 "on-failure[:N], unless-stopped", s);
		free(s);
		return rc;
	}
	free(s);
	if (!pol || json_object_set_new(host, "RestartPolicy", pol))
		return OOM(c);
	return 0;
}

static int parse_depends(struct cload *c, struct compose_service *svc, const struct yt_node *n)
{
	size_t i;

	if (n->kind != YT_SEQ && n->kind != YT_MAP)
		return yt_error_at(c->err, ST_ECONFIG, n, "depends_on must be a list or a mapping");
	svc->deps = calloc(n->count + 1, sizeof(*svc->deps));
	if (!svc->deps)
		return OOM(c);
	for (i = 0; i < n->count; i++) {
		struct compose_dep *d = &svc->deps[svc->ndeps];
		const struct yt_node *name = n->kind == YT_SEQ ? n->values[i] : n->keys[i];

		if (name->kind != YT_SCALAR)
			return yt_error_at(c->err, ST_ECONFIG, name, "depends_on entries are service names");
		if (!(d->service = strdup(name->scalar)))
			return OOM(c);
		svc->ndeps++;
		d->condition = COMPOSE_STARTED;
		if (n->kind == YT_MAP) {
			const struct yt_node *v = n->values[i], *cond;
			size_t j;

			if (v->kind != YT_MAP)
				return yt_error_at(c->err, ST_ECONFIG, v, "depends_on.%s must be a mapping",
						   d->service);
			for (j = 0; j < v->count; j++) {
				static const char *const dkeys[] = { "condition", "required", "restart", NULL };

				if (!is_ext(v->keys[j]->scalar) && !known_key(dkeys, v->keys[j]->scalar))
					return unknown_key_error(c, v->keys[j], "depends_on", dkeys);
			}
			cond = yt_map_get(v, "condition");
			if (cond) {
				const char *cs = yt_scalar(cond);

				if (cs && !strcmp(cs, "service_healthy"))
					d->condition = COMPOSE_HEALTHY;
				else if (cs && !strcmp(cs, "service_completed_successfully"))
					d->condition = COMPOSE_COMPLETED;
				else if (!cs || strcmp(cs, "service_started"))
					return yt_error_at(c->err, ST_ECONFIG, cond, "condition must be "
							   "service_started, service_healthy or "
							   "service_completed_successfully");
			}
		}
	}
	return 0;
}

static int parse_logging(struct cload *c, const struct yt_node *n, json_t *host)
{
	const struct yt_node *drv, *opts;
	json_t *lc = NULL, *o = NULL;
	char *s = NULL;
	size_t i;
	int rc = 0;

	if (n->kind != YT_MAP)
		return yt_error_at(c->err, ST_ECONFIG, n, "logging must be a mapping");
	for (i = 0; i < n->count; i++) {
		static const char *const lkeys[] = { "driver", "options", NULL };

		if (!is_ext(n->keys[i]->scalar) && !known_key(lkeys, n->keys[i]->scalar))
			return unknown_key_error(c, n->keys[i], "logging", lkeys);
	}
	drv = yt_map_get(n, "driver");
	opts = yt_map_get(n, "options");
	if (!(o = json_object()))
		return OOM(c);
	if (opts && (rc = kv_into(c, opts, "logging.options", 0, o)) != 0)
		goto out;
	if (drv && (rc = scalar_of(c, drv, "logging.driver", &s)) != 0)
		goto out;
	lc = json_pack("{s:s, s:O}", "Type", s ? s : "json-file", "Config", o);
	if (!lc || json_object_set_new(host, "LogConfig", lc))
		rc = OOM(c);
out:
	free(s);
	json_decref(o);
	return rc;
}

static int parse_service(struct cload *c, const struct yt_node *root, const struct yt_node *key,
			 const struct yt_node *n, struct compose_service *svc)
{
	json_t *config = NULL, *host = NULL, *env = NULL, *labels = NULL;
	const struct yt_node *envf, *envn;
	char where[160];
	size_t i;
	int rc = 0;

	svc->line = key->line;
	svc->column = key->column;
	if (!(svc->name = strdup(key->scalar)) || !(svc->build_args = calloc(1, sizeof(char *))))
		return OOM(c);
	snprintf(where, sizeof(where), "service '%s'", svc->name);
	if (n->kind != YT_MAP)
		return yt_error_at(c->err, ST_ECONFIG, n, "%s must be a mapping", where);
	config = json_object();
	host = json_object();
	env = json_object();
	labels = json_object();
	if (!config || !host || !env || !labels) {
		rc = OOM(c);
		goto out;
	}
	/* env_file first, then environment over it, whatever the key order. */
	if ((envf = yt_map_get(n, "env_file")) && (rc = parse_env_files(c, envf, env)) != 0)
		goto out;
	if ((envn = yt_map_get(n, "environment")) && (rc = kv_into(c, envn, "environment", 1, env)) != 0)
		goto out;
	for (i = 0; i < n->count && !rc; i++) {
		const char *k = n->keys[i]->scalar;
		const struct yt_node *v = n->values[i];
		char *s = NULL;

		if (is_ext(k) || !strcmp(k, "env_file") || !strcmp(k, "environment"))
			continue;
		if (!known_key(service_keys, k)) {
			rc = unknown_key_error(c, n->keys[i], where, service_keys);
		} else if (!strcmp(k, "image")) {
			rc = scalar_of(c, v, "image", &svc->image);
		} else if (!strcmp(k, "container_name")) {
			rc = scalar_of(c, v, "container_name", &svc->container_name);
		} else if (!strcmp(k, "build")) {
			rc = parse_build(c, svc, v);
		} else if (!strcmp(k, "ports")) {
			rc = parse_ports(c, v, config, host);
		} else if (!strcmp(k, "volumes")) {
			rc = parse_volumes(c, root, v, config, host);
		} else if (!strcmp(k, "depends_on")) {
			rc = parse_depends(c, svc, v);
		} else if (!strcmp(k, "healthcheck")) {
			rc = parse_healthcheck(c, v, config);
		} else if (!strcmp(k, "restart")) {
			rc = parse_restart(c, v, host);
		} else if (!strcmp(k, "network_mode")) {
			if ((rc = scalar_of(c, v, "network_mode", &s)) == 0)
				rc = set_str(c, host, "NetworkMode", s);
		} else if (!strcmp(k, "labels")) {
			rc = kv_into(c, v, "labels", 0, labels);
		} else if (!strcmp(k, "command") || !strcmp(k, "entrypoint")) {
			json_t *argv = NULL;

			if ((rc = argv_of(c, v, k, &argv)) == 0 &&
			    json_object_set_new(config, k[0] == 'c' ? "Cmd" : "Entrypoint", argv))
				rc = OOM(c);
		} else if (!strcmp(k, "init")) {
			int b;

			if ((rc = yt_get_bool(v, "init", &b, c->err)) == 0 &&
			    json_object_set_new(host, "Init", json_boolean(b)))
				rc = OOM(c);
		} else if (!strcmp(k, "user") || !strcmp(k, "working_dir") || !strcmp(k, "stop_signal")) {
			if ((rc = scalar_of(c, v, k, &s)) == 0)
				rc = set_str(c, config, k[0] == 'u' ? "User" : k[0] == 'w' ? "WorkingDir" :
							  "StopSignal", s);
		} else if (!strcmp(k, "stop_grace_period")) {
			double d;

			if ((rc = duration_of(c, v, k, &d)) == 0 &&
			    json_object_set_new(config, "StopTimeout", json_integer((json_int_t)(d + 0.5))))
				rc = OOM(c);
		} else if (!strcmp(k, "logging")) {
			rc = parse_logging(c, v, host);
		}
		free(s);
	}
	if (rc)
		goto out;
	if (!svc->image && !svc->build_context) {
		rc = yt_error_at(c->err, ST_ECONFIG, key, "%s needs 'image' or 'build'", where);
		goto out;
	}
	if (json_object_size(env)) {
		json_t *list = json_array();
		const char *ek;
		json_t *ev;

		if (!list || json_object_set_new(config, "Env", list)) {
			rc = OOM(c);
			goto out;
		}
		json_object_foreach(env, ek, ev) {
			char *kv = NULL;

			if (asprintf(&kv, "%s=%s", ek, json_string_value(ev)) < 0) {
				rc = OOM(c);
				goto out;
			}
			rc = json_array_append_new(list, json_string(kv)) ? OOM(c) : 0;
			free(kv);
			if (rc)
				goto out;
		}
	}
	if ((json_object_size(labels) && json_object_set(config, "Labels", labels)) ||
	    json_object_set(config, "HostConfig", host)) {
		rc = OOM(c);
		goto out;
	}
	svc->config = config;
	config = NULL;
out:
	json_decref(config);
	json_decref(host);
	json_decref(env);
	json_decref(labels);
	return rc;
}

/* ---- the file ----------------------------------------------------------------- */

static char *project_from_dir(const char *dir)
{
	const char *base = strrchr(dir, '/');
	char *name, *w;
	const char *r;

	base = base ? base + 1 : dir;
	if (!(name = malloc(strlen(base) + 8)))
		return NULL;
	for (r = base, w = name; *r; r++) {
		char ch = (char)tolower((unsigned char)*r);

		if (isalnum((unsigned char)ch) || ch == '_' || ch == '-')
			*w++ = ch;
	}
	*w = '\0';
	if (!*name)
		strcpy(name, "default");
	return name;
}

static int check_top_volumes(struct cload *c, const struct yt_node *vols)
{
	size_t i, j;

	if (vols->kind != YT_MAP)
		return yt_error_at(c->err, ST_ECONFIG, vols, "volumes must be a mapping");
	for (i = 0; i < vols->count; i++) {
		const struct yt_node *v = vols->values[i];

		if (v->kind == YT_SCALAR && yt_is_null(v))
			continue;
		if (v->kind != YT_MAP)
			return yt_error_at(c->err, ST_ECONFIG, v, "volume '%s' must be a mapping or empty",
					   vols->keys[i]->scalar);
		for (j = 0; j < v->count; j++) {
			static const char *const vk[] = { "name", "external", NULL };

			if (!is_ext(v->keys[j]->scalar) && !known_key(vk, v->keys[j]->scalar))
				return unknown_key_error(c, v->keys[j], "top-level volume", vk);
		}
	}
	return 0;
}

void compose_free(struct compose_project *p)
{
	size_t i, j;

	if (!p)
		return;
	for (i = 0; i < p->nservices; i++) {
		struct compose_service *s = &p->services[i];

		free(s->name);
		free(s->container_name);
		free(s->image);
		free(s->build_context);
		free(s->dockerfile);
		for (j = 0; s->build_args && s->build_args[j]; j++)
			free(s->build_args[j]);
		free(s->build_args);
		for (j = 0; j < s->ndeps; j++)
			free(s->deps[j].service);
		free(s->deps);
		json_decref(s->config);
	}
	free(p->services);
	free(p->file);
	free(p->dir);
	free(p->name);
	free(p);
}

int compose_load_buffer(const char *name, const char *dir, const char *data, size_t len,
			const json_t *vars, struct compose_project **out, struct st_error *err)
{
	static const char *const top_keys[] = { "services", "version", "name", "volumes", NULL };
	struct yt_doc *doc = NULL;
	struct cload c = { NULL, vars, err };
	const struct yt_node *root, *services;
	size_t i, j;
	int rc;

	*out = NULL;
	if ((rc = yt_parse_buffer(name, data, len, &doc, err)) != 0)
		return rc;
	if (!(c.p = calloc(1, sizeof(*c.p))) || !(c.p->file = strdup(name)) ||
	    !(c.p->dir = strdup(dir))) {
		rc = OOM(&c);
		goto out;
	}
	root = doc->root;
	if (!root || root->kind != YT_MAP) {
		rc = st_error_set(err, ST_ECONFIG, "%s: a compose file is a mapping with 'services'", name);
		goto out;
	}
	for (i = 0; i < root->count; i++) {
		const char *k = root->keys[i]->scalar;

		if (!is_ext(k) && !known_key(top_keys, k)) {
			rc = unknown_key_error(&c, root->keys[i], "compose file", top_keys);
			goto out;
		}
	}
	if (yt_map_get(root, "name")) {
		if ((rc = scalar_of(&c, yt_map_get(root, "name"), "name", &c.p->name)) != 0)
			goto out;
	} else if (!(c.p->name = project_from_dir(dir))) {
		rc = OOM(&c);
		goto out;
	}
	if (yt_map_get(root, "volumes") && (rc = check_top_volumes(&c, yt_map_get(root, "volumes"))) != 0)
		goto out;
	services = yt_map_get(root, "services");
	if (!services || services->kind != YT_MAP || services->count == 0) {
		rc = yt_error_at(err, ST_ECONFIG, services ? services : root,
				 "'services' must be a mapping with at least one service");
		goto out;
	}
	if (!(c.p->services = calloc(services->count, sizeof(*c.p->services)))) {
		rc = OOM(&c);
		goto out;
	}
	for (i = 0; i < services->count; i++) {
		if (is_ext(services->keys[i]->scalar))
			continue;
		c.p->nservices++;
		if ((rc = parse_service(&c, root, services->keys[i], services->values[i],
					&c.p->services[c.p->nservices - 1])) != 0)
			goto out;
	}
	/* depends_on must name services of the file */
	for (i = 0; i < c.p->nservices; i++) {
		const struct compose_service *s = &c.p->services[i];

		for (j = 0; j < s->ndeps; j++)
			if (!compose_find(c.p, s->deps[j].service)) {
				rc = st_error_set(err, ST_ECONFIG, "%s:%d:%d: service '%s' depends on '%s', "
						  "which the file does not define", name, s->line, s->column,
						  s->name, s->deps[j].service);
				goto out;
			}
	}
	*out = c.p;
	c.p = NULL;
out:
	compose_free(c.p);
	yt_doc_free(doc);
	return rc;
}

int compose_load(const char *path, const char *env_file, struct compose_project **out,
		 struct st_error *err)
{
	char *dir = NULL, *text = NULL, *slash, *dotenv = NULL;
	json_t *vars = NULL;
	size_t size = 0;
	int rc = 0;

	*out = NULL;
	if (path[0] == '/') {
		dir = strdup(path);
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)))
			return st_error_set(err, ST_EIO, "cannot find the current directory: %s", strerror(errno));
		if (asprintf(&dir, "%s/%s", cwd, path) < 0)
			dir = NULL;
	}
	if (!dir || !(vars = json_object())) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((rc = text_read_file(path, COMPOSE_FILE_MAX, 0, "compose file", &text, &size, err)) != 0) {
		if (rc != ST_ENOMEM)
			st_error_hint(err, "check compose_file in the configuration");
		goto out;
	}
	if (env_file) {
		rc = compose_read_env_file(env_file, vars, err);
	} else if (asprintf(&dotenv, "%s/.env", dir) >= 0) {
		rc = compose_read_env_file(dotenv, vars, err);
		if (rc == ST_ENOTFOUND)
			rc = 0;
	} else {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
	}
	if (rc)
		goto out;
	rc = compose_load_buffer(path, dir, text, size, vars, out, err);
out:
	free(text);
	free(dir);
	free(dotenv);
	json_decref(vars);
	return rc;
}

const struct compose_service *compose_find(const struct compose_project *p, const char *name)
{
	size_t i;

	for (i = 0; p && name && i < p->nservices; i++)
		if (!strcmp(p->services[i].name, name))
			return &p->services[i];
	return NULL;
}

int compose_body(const struct compose_service *svc, const char *image, json_t **body,
		 struct st_error *err)
{
	json_t *b = json_deep_copy(svc->config);

	*body = NULL;
	if (!b || json_object_set_new(b, "Image", json_string(image))) {
		json_decref(b);
		return st_error_set(err, ST_ENOMEM, "out of memory");
	}
	*body = b;
	return 0;
}

/* ---- order ---------------------------------------------------------------------- */

int compose_order(const char *const *names, size_t n, compose_deps_fn deps_of, void *ud,
		  size_t *order, struct st_error *err)
{
	unsigned char *done = calloc(n + 1, 1);
	size_t placed = 0, i, j, k;
	int rc = 0;

	if (!done)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	while (placed < n) {
		int progress = 0;

		for (i = 0; i < n; i++) {
			const struct compose_dep *deps = NULL;
			size_t nd = 0;
			int ready = 1;

			if (done[i])
				continue;
			deps_of(ud, names[i], &deps, &nd);
			for (j = 0; j < nd && ready; j++)
				for (k = 0; k < n; k++)
					if (!done[k] && k != i && !strcmp(names[k], deps[j].service))
						ready = 0;
			if (ready) {
				done[i] = 1;
				order[placed++] = i;
				progress = 1;
				break;  /* restart: keeps the given order among ready ones */
			}
		}
		if (!progress) {
			struct sbuf cyc = SBUF_INIT;

			for (i = 0; i < n; i++)
				if (!done[i])
					sbuf_printf(&cyc, "%s%s", cyc.len ? ", " : "", names[i]);
			rc = st_error_set(err, ST_ECONFIG, "depends_on has a cycle between %s", sbuf_str(&cyc));
			sbuf_release(&cyc);
			break;
		}
	}
	free(done);
	return rc;
}

/* ---- the running container as its own definition ------------------------------------ */

static int str_eq(const json_t *a, const json_t *b)
{
	return json_is_string(a) && json_is_string(b) && !strcmp(json_string_value(a), json_string_value(b));
}

/* Equal as JSON, with null, absent, [] and {} all counting as empty. */
static int same(const json_t *a, const json_t *b)
{
	int ea = !a || json_is_null(a) || (json_is_array(a) && !json_array_size(a)) ||
		 (json_is_object(a) && !json_object_size(a));
	int eb = !b || json_is_null(b) || (json_is_array(b) && !json_array_size(b)) ||
		 (json_is_object(b) && !json_object_size(b));

	if (ea || eb)
		return ea && eb;
	return json_equal(a, b);
}

/* Copies key from src to dst unless it is empty. */
static int copy_member(json_t *dst, const json_t *src, const char *key)
{
	json_t *v = json_object_get(src, key);

	if (!v || json_is_null(v))
		return 0;
	return json_object_set(dst, key, v);
}

/* Env entries of the container that are not exactly in the image's Env. */
static json_t *explicit_env(const json_t *cenv, const json_t *ienv)
{
	json_t *out = json_array();
	size_t i, j;

	if (!out)
		return NULL;
	for (i = 0; i < json_array_size(cenv); i++) {
		const json_t *e = json_array_get(cenv, i);
		int inherited = 0;

		for (j = 0; j < json_array_size(ienv) && !inherited; j++)
			inherited = str_eq(e, json_array_get(ienv, j));
		if (!inherited && json_array_append(out, (json_t *)e)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Members of the container's object (Labels, ExposedPorts, Volumes) not
 * present with the same value in the image's. */
static json_t *explicit_members(const json_t *cobj, const json_t *iobj)
{
	json_t *out = json_object();
	const char *k;
	json_t *v;

	if (!out)
		return NULL;
	json_object_foreach((json_t *)cobj, k, v) {
		json_t *iv = json_object_get(iobj, k);

		if (iv && json_equal(iv, v))
			continue;
		if (json_object_set(out, k, v)) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Sets key to v (stealing it) unless v is empty. */
static int set_if_any(json_t *o, const char *key, json_t *v)
{
	if (!v)
		return -1;
	if ((json_is_array(v) && !json_array_size(v)) || (json_is_object(v) && !json_object_size(v))) {
		json_decref(v);
		return 0;
	}
	return json_object_set_new(o, key, v);
}

static int host_network(const char *mode)
{
	return mode && !strcmp(mode, "host");
}

int compose_body_from_inspect(const json_t *container, const json_t *old_image, const char *image,
			      json_t **body, struct st_error *err)
{
	const json_t *cc = json_object_get(container, "Config");
	const json_t *hc = json_object_get(container, "HostConfig");
	const json_t *ic = json_object_get(old_image, "Config");
	const json_t *networks = json_object_get(json_object_get(container, "NetworkSettings"), "Networks");
	const json_t *mounts = json_object_get(container, "Mounts");
	const char *netmode = json_string_value(json_object_get(hc, "NetworkMode"));
	const char *name = json_string_value(json_object_get(container, "Name"));
	json_t *b = NULL, *host = NULL, *binds = NULL;
	int entrypoint_explicit, rc = 0;
	size_t i;

	*body = NULL;
	if (!json_is_object(cc) || !json_is_object(hc))
		return st_error_set(err, ST_EPROTO, "cannot recreate container '%s': its inspect lacks "
				    "Config or HostConfig", name ? name : "?");
	if (!json_is_object(ic))
		ic = NULL;
	if (!(b = json_object()))
		goto nomem;
	if (json_object_set_new(b, "Image", json_string(image)))
		goto nomem;

	/* Cmd and Entrypoint: an explicit entrypoint resets the image's Cmd
	 * (docker run --entrypoint), so both are explicit then. */
	entrypoint_explicit = !same(json_object_get(cc, "Entrypoint"), json_object_get(ic, "Entrypoint"));
	if (entrypoint_explicit) {
		if (copy_member(b, cc, "Entrypoint") || copy_member(b, cc, "Cmd"))
			goto nomem;
		/* An explicit empty Cmd must stay empty, not become the image's. */
		if (!json_object_get(b, "Cmd") && json_object_set_new(b, "Cmd", json_array()))
			goto nomem;
	} else if (!same(json_object_get(cc, "Cmd"), json_object_get(ic, "Cmd"))) {
		if (copy_member(b, cc, "Cmd"))
			goto nomem;
	}
	if (set_if_any(b, "Env", explicit_env(json_object_get(cc, "Env"), json_object_get(ic, "Env"))) ||
	    set_if_any(b, "Labels",
		       explicit_members(json_object_get(cc, "Labels"), json_object_get(ic, "Labels"))) ||
	    set_if_any(b, "ExposedPorts", explicit_members(json_object_get(cc, "ExposedPorts"),
							  json_object_get(ic, "ExposedPorts"))) ||
	    set_if_any(b, "Volumes",
		       explicit_members(json_object_get(cc, "Volumes"), json_object_get(ic, "Volumes"))))
		goto nomem;
	if (!same(json_object_get(cc, "Healthcheck"), json_object_get(ic, "Healthcheck")) &&
	    copy_member(b, cc, "Healthcheck"))
		goto nomem;
	{
		static const char *const own[] = { "WorkingDir", "User", "StopSignal", NULL };
		const char *const *k;

		for (k = own; *k; k++)
			if (!same(json_object_get(cc, *k), json_object_get(ic, *k)) &&
			    json_string_value(json_object_get(cc, *k)) &&
			    *json_string_value(json_object_get(cc, *k)) && copy_member(b, cc, *k))
				goto nomem;
	}
	{
		/* The container's own, never inherited from an image. */
		static const char *const own[] = { "StopTimeout", "Tty", "OpenStdin", "StdinOnce",
						   "AttachStdin", "AttachStdout", "AttachStderr",
						   "Domainname", NULL };
		const char *const *k;

		for (k = own; *k; k++)
			if (copy_member(b, cc, *k))
				goto nomem;
	}
	if (json_is_true(json_object_get(cc, "NetworkDisabled")) &&
	    json_object_set_new(b, "NetworkDisabled", json_true()))
		goto nomem;
	/* A hostname set by the operator (not Docker's default: the short id,
	 * nor the host's own under host networking) is kept. */
	{
		const char *hn = json_string_value(json_object_get(cc, "Hostname"));
		const char *id = json_string_value(json_object_get(container, "Id"));

		if (hn && *hn && !host_network(netmode) && !(id && !strncmp(id, hn, strlen(hn)) && strlen(hn) == 12) &&
		    copy_member(b, cc, "Hostname"))
			goto nomem;
	}

	/* HostConfig as it is, less what only describes this instance. */
	if (!(host = json_deep_copy(hc)))
		goto nomem;
	json_object_del(host, "ContainerIDFile");
	if (json_object_set_new(b, "HostConfig", host))
		goto nomem;

	/* Anonymous volumes (image VOLUMEs, -v /path) would be new and empty
	 * in a new container: bind them by name, as compose does. */
	binds = json_object_get(host, "Binds");
	for (i = 0; i < json_array_size(mounts); i++) {
		const json_t *m = json_array_get(mounts, i);
		const char *type = json_string_value(json_object_get(m, "Type"));
		const char *vname = json_string_value(json_object_get(m, "Name"));
		const char *dst = json_string_value(json_object_get(m, "Destination"));
		int covered = 0;
		size_t j;
		char *bind = NULL;

		if (!type || strcmp(type, "volume") || !vname || !dst)
			continue;
		for (j = 0; j < json_array_size(binds) && !covered; j++) {
			const char *bd = json_string_value(json_array_get(binds, j));
			const char *colon = bd ? strchr(bd, ':') : NULL;

			covered = colon && !strncmp(colon + 1, dst, strlen(dst)) &&
				  (colon[1 + strlen(dst)] == '\0' || colon[1 + strlen(dst)] == ':');
		}
		for (j = 0; j < json_array_size(json_object_get(host, "Mounts")) && !covered; j++)
			covered = str_eq(json_object_get(json_array_get(json_object_get(host, "Mounts"), j),
							 "Target"), json_object_get(m, "Destination"));
		if (covered)
			continue;
		if (!binds) {
			if (!(binds = json_array()) || json_object_set_new(host, "Binds", binds))
				goto nomem;
		}
		if (asprintf(&bind, "%s:%s%s", vname, dst,
			     json_is_false(json_object_get(m, "RW")) ? ":ro" : "") < 0)
			goto nomem;
		rc = json_array_append_new(binds, json_string(bind));
		free(bind);
		if (rc)
			goto nomem;
		/* The Volumes entry for it is now redundant. */
		json_object_del(json_object_get(b, "Volumes"), dst);
	}

	/* The primary network's endpoint (aliases, static addresses). */
	if (json_object_size(networks) > 1) {
		rc = st_error_set(err, ST_EUSAGE, "cannot recreate container '%s': it is attached to %zu "
				  "networks and only one is reproduced", name ? name : "?",
				  json_object_size(networks));
		st_error_hint(err, "describe the service in the compose file (compose_file) instead");
		goto out;
	}
	if (netmode && !host_network(netmode) && strcmp(netmode, "none") &&
	    strncmp(netmode, "container:", 10) && json_object_size(networks) == 1) {
		const char *nname;
		json_t *ep, *ecfg = NULL, *aliases = NULL;
		const char *id = json_string_value(json_object_get(container, "Id"));

		json_object_foreach((json_t *)networks, nname, ep) {
			ecfg = json_object();
			aliases = json_array();
			if (!ecfg || !aliases) {
				json_decref(ecfg);
				json_decref(aliases);
				goto nomem;
			}
			for (i = 0; i < json_array_size(json_object_get(ep, "Aliases")); i++) {
				const char *a = json_string_value(json_array_get(json_object_get(ep, "Aliases"), i));

				/* Docker adds the short id itself. */
				if (a && !(id && strlen(a) == 12 && !strncmp(id, a, 12)))
					json_array_append_new(aliases, json_string(a));
			}
			if (set_if_any(ecfg, "Aliases", aliases) || copy_member(ecfg, ep, "IPAMConfig") ||
			    copy_member(ecfg, ep, "Links") ||
			    json_object_set_new(b, "NetworkingConfig",
						json_pack("{s:{s:o}}", "EndpointsConfig", nname, ecfg))) {
				goto nomem;
			}
		}
	}
	*body = b;
	b = NULL;
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory");
out:
	json_decref(b);
	return rc;
}
