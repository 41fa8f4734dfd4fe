#include "yamltree.h"
#include "timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define YT_MAX_DEPTH 64

static void node_free(struct yt_node *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->count; i++) {
		if (n->keys)
			node_free(n->keys[i]);
		node_free(n->values[i]);
	}
	free(n->keys);
	free(n->values);
	free(n->scalar);
	free(n);
}

void yt_doc_free(struct yt_doc *doc)
{
	if (!doc)
		return;
	node_free(doc->root);
	free(doc->file);
	free(doc);
}

const char *yt_kind_name(enum yt_kind kind)
{
	switch (kind) {
	case YT_SCALAR: return "scalar";
	case YT_MAP: return "mapping";
	case YT_SEQ: return "sequence";
	}
	return "?";
}

int yt_error_at(struct st_error *err, int code, const struct yt_node *node, const char *fmt, ...)
{
	char msg[ST_ERROR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (node)
		return st_error_set(err, code, "%s:%d:%d: %s", node->file ? node->file : "?",
				    node->line, node->column, msg);
	return st_error_set(err, code, "%s", msg);
}

static struct yt_node *node_new(enum yt_kind kind, const char *file, yaml_mark_t mark)
{
	struct yt_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->kind = kind;
	n->file = file;
	n->line = (int)mark.line + 1;
	n->column = (int)mark.column + 1;
	return n;
}

/* Appends child to parent (a sequence value, or alternately key/value for a
 * mapping). pending_key holds a mapping key until its value arrives. */
static int attach(struct yt_node *parent, struct yt_node **pending_key, struct yt_node *child,
		  struct st_error *err)
{
	struct yt_node **vals;
	struct yt_node **keys;
	size_t i;

	if (parent->kind == YT_MAP && !*pending_key) {
		if (child->kind != YT_SCALAR)
			return yt_error_at(err, ST_ECONFIG, child, "mapping keys must be plain scalars");
		for (i = 0; i < parent->count; i++)
			if (strcmp(parent->keys[i]->scalar, child->scalar) == 0)
				return yt_error_at(err, ST_ECONFIG, child, "duplicate key '%s' (first at line %d)",
						   child->scalar, parent->keys[i]->line);
		*pending_key = child;
		return 0;
	}
	vals = realloc(parent->values, (parent->count + 1) * sizeof(*vals));
	if (!vals)
		return st_error_set(err, ST_ENOMEM, "out of memory parsing yaml");
	parent->values = vals;
	if (parent->kind == YT_MAP) {
		keys = realloc(parent->keys, (parent->count + 1) * sizeof(*keys));
		if (!keys)
			return st_error_set(err, ST_ENOMEM, "out of memory parsing yaml");
		parent->keys = keys;
		parent->keys[parent->count] = *pending_key;
		*pending_key = NULL;
	}
	parent->values[parent->count++] = child;
	return 0;
}

int yt_parse_buffer(const char *name, const char *data, size_t len, struct yt_doc **out,
		    struct st_error *err)
{
	yaml_parser_t parser;
	yaml_event_t event;
	struct yt_doc *doc = NULL;
	struct yt_node *stack[YT_MAX_DEPTH];
	struct yt_node *pending[YT_MAX_DEPTH];
	struct yt_node *n = NULL;
	int depth = 0;
	int docs = 0;
	int done = 0;
	int rc = 0;
	int have_event = 0;

	*out = NULL;
	memset(pending, 0, sizeof(pending));
	if (!yaml_parser_initialize(&parser))
		return st_error_set(err, ST_ENOMEM, "cannot initialise yaml parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

	doc = calloc(1, sizeof(*doc));
	if (!doc || !(doc->file = strdup(name))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory parsing yaml");
		goto out;
	}

	while (!done) {
		if (!yaml_parser_parse(&parser, &event)) {
			rc = st_error_set(err, ST_ECONFIG, "%s:%zu:%zu: %s%s%s", name,
					  parser.problem_mark.line + 1, parser.problem_mark.column + 1,
					  parser.problem ? parser.problem : "syntax error",
					  parser.context ? " " : "", parser.context ? parser.context : "");
			goto out;
		}
		have_event = 1;
		n = NULL;
		switch (event.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				rc = st_error_set(err, ST_ECONFIG, "%s:%zu:%zu: only one yaml document is allowed",
						  name, event.start_mark.line + 1, event.start_mark.column + 1);
				goto out;
			}
			break;
		case YAML_ALIAS_EVENT:
			rc = st_error_set(err, ST_ECONFIG, "%s:%zu:%zu: yaml aliases are not supported",
					  name, event.start_mark.line + 1, event.start_mark.column + 1);
			goto out;
		case YAML_SCALAR_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT: {
			yaml_char_t *anchor = event.type == YAML_SCALAR_EVENT ? event.data.scalar.anchor
					    : event.type == YAML_MAPPING_START_EVENT ? event.data.mapping_start.anchor
					    : event.data.sequence_start.anchor;
			if (anchor) {
				rc = st_error_set(err, ST_ECONFIG, "%s:%zu:%zu: yaml anchors are not supported",
						  name, event.start_mark.line + 1, event.start_mark.column + 1);
				goto out;
			}
			n = node_new(event.type == YAML_SCALAR_EVENT ? YT_SCALAR
				     : event.type == YAML_MAPPING_START_EVENT ? YT_MAP : YT_SEQ,
				     doc->file, event.start_mark);
			if (!n) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory parsing yaml");
				goto out;
			}
			if (event.type == YAML_SCALAR_EVENT) {
				n->scalar = malloc(event.data.scalar.length + 1);
				if (!n->scalar) {
					node_free(n);
					n = NULL;
					rc = st_error_set(err, ST_ENOMEM, "out of memory parsing yaml");
					goto out;
				}
				memcpy(n->scalar, event.data.scalar.value, event.data.scalar.length);
				n->scalar[event.data.scalar.length] = '\0';
				if (strlen(n->scalar) != event.data.scalar.length) {
					rc = yt_error_at(err, ST_ECONFIG, n, "scalar contains a NUL byte");
					node_free(n);
					n = NULL;
					goto out;
				}
				n->quoted = event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
			}
			if (depth == 0) {
				doc->root = n;
			} else if ((rc = attach(stack[depth - 1], &pending[depth - 1], n, err)) != 0) {
				node_free(n);
				n = NULL;
				goto out;
			}
			if (event.type != YAML_SCALAR_EVENT) {
				if (depth >= YT_MAX_DEPTH) {
					rc = yt_error_at(err, ST_ECONFIG, n, "yaml nested deeper than %d levels",
							 YT_MAX_DEPTH);
					goto out;
				}
				pending[depth] = NULL;
				stack[depth++] = n;
			}
			break;
		}
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&event);
		have_event = 0;
	}
	*out = doc;
	doc = NULL;
out:
	if (have_event)
		yaml_event_delete(&event);
	/* A key whose value never arrived is owned by nobody else. */
	while (depth > 0) {
		depth--;
		node_free(pending[depth]);
	}
	yaml_parser_delete(&parser);
	yt_doc_free(doc);
	return rc;
}

int yt_parse_file(const char *path, struct yt_doc **out, struct st_error *err)
{
	FILE *f = NULL;
	char *data = NULL;
	size_t len = 0, cap = 0, n;
	int rc = 0;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		rc = st_error_set(err, errno == ENOENT ? ST_ENOTFOUND : ST_EIO, "cannot read '%s': %s",
				  path, strerror(errno));
		goto out;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *p = realloc(data, cap ? cap * 2 : 8192);
			if (!p) {
				rc = st_error_set(err, ST_ENOMEM, "out of memory reading '%s'", path);
				goto out;
			}
			data = p;
			cap = cap ? cap * 2 : 8192;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		rc = st_error_set(err, ST_EIO, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	rc = yt_parse_buffer(path, data ? data : "", len, out, err);
out:
	if (f)
		fclose(f);
	free(data);
	return rc;
}

struct yt_node *yt_map_get(const struct yt_node *map, const char *key)
{
	size_t i;

	if (!map || map->kind != YT_MAP)
		return NULL;
	for (i = 0; i < map->count; i++)
		if (strcmp(map->keys[i]->scalar, key) == 0)
			return map->values[i];
	return NULL;
}

const char *yt_scalar(const struct yt_node *node)
{
	return node && node->kind == YT_SCALAR ? node->scalar : NULL;
}

int yt_is_null(const struct yt_node *node)
{
	const char *s;

	if (!node || node->kind != YT_SCALAR || node->quoted)
		return 0;
	s = node->scalar;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int want_scalar(const struct yt_node *node, const char *what, const char *type,
		       struct st_error *err)
{
	if (!node)
		return st_error_set(err, ST_ECONFIG, "missing %s", what);
	if (node->kind != YT_SCALAR)
		return yt_error_at(err, ST_ECONFIG, node, "%s must be %s, not a %s", what, type,
				   yt_kind_name(node->kind));
	return 0;
}

int yt_get_bool(const struct yt_node *node, const char *what, int *out, struct st_error *err)
{
	const char *s;
	int rc = want_scalar(node, what, "true or false", err);

	if (rc)
		return rc;
	s = node->scalar;
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
		*out = 1;
	else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
		*out = 0;
	else
		return yt_error_at(err, ST_ECONFIG, node, "%s must be true or false, not '%s'", what, s);
	return 0;
}

int yt_get_long(const struct yt_node *node, const char *what, long *out, struct st_error *err)
{
	char *end;
	long v;
	int rc = want_scalar(node, what, "an integer", err);

	if (rc)
		return rc;
	errno = 0;
	v = strtol(node->scalar, &end, 10);
	if (errno || end == node->scalar || *end)
		return yt_error_at(err, ST_ECONFIG, node, "%s must be an integer, not '%s'", what,
				   node->scalar);
	*out = v;
	return 0;
}

int yt_get_double(const struct yt_node *node, const char *what, double *out, struct st_error *err)
{
	char *end;
	double v;
	int rc = want_scalar(node, what, "a number", err);

	if (rc)
		return rc;
	errno = 0;
	v = strtod(node->scalar, &end);
	if (errno || end == node->scalar || *end || !isfinite(v))
		return yt_error_at(err, ST_ECONFIG, node, "%s must be a number, not '%s'", what,
				   node->scalar);
	*out = v;
	return 0;
}

int yt_get_seconds(const struct yt_node *node, const char *what, double *out, struct st_error *err)
{
	int rc = want_scalar(node, what, "a duration", err);

	if (rc)
		return rc;
	if (time_parse_duration(node->scalar, out) != 0)
		return yt_error_at(err, ST_ECONFIG, node,
				   "%s must be a duration like 30, 500ms, 5m or 2h, not '%s'", what,
				   node->scalar);
	return 0;
}

static int is_int_text(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	/* A leading zero keeps its text: "0600" is a mode, not six hundred. */
	if (s[0] == '0')
		return s[1] == '\0';
	if (!isdigit((unsigned char)*s))
		return 0;
	while (isdigit((unsigned char)*s))
		s++;
	return *s == '\0';
}

static int is_float_text(const char *s)
{
	char *end;
	double d;

	if (!*s || isspace((unsigned char)*s) || !strpbrk(s, ".eE") || strpbrk(s, "xXnN"))
		return 0;
	errno = 0;
	d = strtod(s, &end);
	return !errno && *end == '\0' && isfinite(d) &&
	       (isdigit((unsigned char)*s) || *s == '-' || *s == '+' || *s == '.');
}

static json_t *scalar_json(const struct yt_node *n)
{
	const char *s = n->scalar;
	long long l;

	if (n->quoted)
		return NULL;
	if (yt_is_null(n))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	if (is_int_text(s)) {
		errno = 0;
		l = strtoll(s, NULL, 10);
		return errno == ERANGE ? json_real(strtod(s, NULL)) : json_integer((json_int_t)l);
	}
	if (is_float_text(s))
		return json_real(strtod(s, NULL));
	return NULL;
}

int yt_to_json(const struct yt_node *n, yt_string_fn fn, void *ud, json_t **out,
	       struct st_error *err)
{
	json_t *v = NULL, *child = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (n->kind == YT_SCALAR) {
		v = scalar_json(n);
		if (!v) {
			if (fn && (rc = fn(ud, n, err)) != 0)
				return rc;
			v = json_string(n->scalar);
		}
		if (!v)
			return st_error_set(err, ST_ENOMEM, "out of memory");
		*out = v;
		return 0;
	}
	v = n->kind == YT_MAP ? json_object() : json_array();
	if (!v)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	for (i = 0; i < n->count; i++) {
		if ((rc = yt_to_json(n->values[i], fn, ud, &child, err)) != 0)
			goto fail;
		if (n->kind == YT_MAP ? json_object_set_new(v, n->keys[i]->scalar, child)
				      : json_array_append_new(v, child)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto fail;
		}
	}
	*out = v;
	return 0;
fail:
	json_decref(v);
	return rc;
}
