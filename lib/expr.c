#include "expr.h"
#include "text.h"
#include "sbuf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHOW_MAX 80

/* A reference found in a string: [start, end) covers "${...}", the path
 * after "ns." is [path, path + pathlen). */
struct ref {
	size_t start, end;
	enum expr_ns ns;
	const char *path;
	size_t pathlen;
};

static int valid_path_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* Parses the reference starting at text[i] == '$', text[i+1] == '{'. */
static int parse_ref(const char *text, size_t i, struct ref *r, struct st_error *err)
{
	const char *body = text + i + 2;
	const char *close = strchr(body, '}');
	const char *dot, *p;
	size_t blen, nslen;

	if (!close)
		return st_error_set(err, ST_ECONFIG, "unterminated '${' in '%s'", text);
	blen = (size_t)(close - body);
	for (p = body; p < close; p++)
		if (!valid_path_char(*p))
			return st_error_set(err, ST_ECONFIG,
					    "invalid character '%c' in reference '${%.*s}'", *p, (int)blen, body);
	dot = memchr(body, '.', blen);
	nslen = dot ? (size_t)(dot - body) : blen;
	if (nslen == 3 && !strncmp(body, "env", 3))
		return st_error_set(err, ST_ECONFIG,
				    "'${%.*s}': environment variables are not allowed in runbooks "
				    "(secrets stay in the environment of the actions that need them)",
				    (int)blen, body);
	if (nslen == 6 && !strncmp(body, "config", 6))
		r->ns = EXPR_NS_CONFIG;
	else if (nslen == 4 && !strncmp(body, "args", 4))
		r->ns = EXPR_NS_ARGS;
	else if (nslen == 5 && !strncmp(body, "steps", 5))
		r->ns = EXPR_NS_STEPS;
	else
		return st_error_set(err, ST_ECONFIG,
				    "unknown reference '${%.*s}': use ${config...}, ${args...} or ${steps...}",
				    (int)blen, body);
	if (!dot || dot + 1 == close || dot[1] == '.' || close[-1] == '.' ||
	    memmem(dot, (size_t)(close - dot), "..", 2))
		return st_error_set(err, ST_ECONFIG, "incomplete reference '${%.*s}'", (int)blen, body);
	r->start = i;
	r->end = (size_t)(close - text) + 1;
	r->path = dot + 1;
	r->pathlen = (size_t)(close - dot - 1);
	return 0;
}

int expr_scan(const char *text, expr_ref_fn fn, void *ud, struct st_error *err)
{
	size_t i = 0;
	int rc;

	while (text[i]) {
		struct ref r;

		if (text[i] == '$' && text[i + 1] == '$' && text[i + 2] == '{') {
			i += 3;
			continue;
		}
		if (text[i] != '$' || text[i + 1] != '{') {
			i++;
			continue;
		}
		if ((rc = parse_ref(text, i, &r, err)) != 0)
			return rc;
		if (fn && (rc = fn(ud, r.ns, r.path, r.pathlen, err)) != 0)
			return rc;
		i = r.end;
	}
	return 0;
}

int expr_has_refs(const char *text)
{
	size_t i;

	for (i = 0; text[i]; i++) {
		if (text[i] == '$' && text[i + 1] == '$' && text[i + 2] == '{')
			i += 2;
		else if (text[i] == '$' && text[i + 1] == '{')
			return 1;
	}
	return 0;
}

static const void *json_child(void *ud, const void *node, const char *seg, size_t len, long index)
{
	const json_t *v = node;

	(void)ud;
	if (json_is_object(v))
		return json_object_getn(v, seg, len);
	if (json_is_array(v) && index >= 0)
		return json_array_get(v, (size_t)index);
	return NULL;
}

const json_t *expr_path_get(const json_t *root, const char *path)
{
	return text_path_walk(root, path, json_child, NULL);
}

char *expr_to_text(const json_t *v)
{
	char buf[64];

	if (!v || json_is_null(v))
		return strdup("null");
	switch (json_typeof(v)) {
	case JSON_STRING:
		return strndup(json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return strdup(buf);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
		return strdup(buf);
	case JSON_TRUE:
		return strdup("true");
	case JSON_FALSE:
		return strdup("false");
	default:
		return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	}
}

int expr_number(const json_t *v, double *out)
{
	const char *s;
	char *end;
	double d;

	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return -1;
	errno = 0;
	d = strtod(s, &end);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || *end || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

/* "'${args.x}'" style names for messages. */
static const char *ns_name(enum expr_ns ns)
{
	return ns == EXPR_NS_CONFIG ? "config" : ns == EXPR_NS_ARGS ? "args" : "steps";
}

static int ns_kept(const struct expr_scope *scope, enum expr_ns ns)
{
	unsigned bit = ns == EXPR_NS_CONFIG ? EXPR_KEEP_CONFIG
		     : ns == EXPR_NS_ARGS ? EXPR_KEEP_ARGS : EXPR_KEEP_STEPS;
	return (scope->keep & bit) != 0;
}

/* Value of one reference as a new JSON reference. A missing value is an
 * error except a parameter without a value, which is null (allow_null). */
static int eval_ref(const struct ref *r, const struct expr_scope *scope, int allow_null,
		    json_t **out, struct st_error *err)
{
	char path[512];
	const json_t *v = NULL;
	char *dot;

	*out = NULL;
	if (r->pathlen >= sizeof(path))
		return st_error_set(err, ST_ECONFIG, "reference '${%s.%.40s...}' is too long",
				    ns_name(r->ns), r->path);
	memcpy(path, r->path, r->pathlen);
	path[r->pathlen] = '\0';
	switch (r->ns) {
	case EXPR_NS_CONFIG: {
		const char *s = scope->lookup_config ? scope->lookup_config(scope->config_ud, path) : NULL;

		if (!s) {
			st_error_set(err, ST_ENOTFOUND, "'${config.%s}': configuration key '%s' is not set",
				     path, path);
			return st_error_hint(err, "set '%s' in the configuration file", path);
		}
		*out = json_string(s);
		break;
	}
	case EXPR_NS_ARGS:
		dot = strchr(path, '.');
		if (dot)
			*dot = '\0';
		if (!scope->args || !json_object_get(scope->args, path))
			return st_error_set(err, ST_ENOTFOUND, "'${args.%.*s}': unknown parameter '%s'",
					    (int)r->pathlen, r->path, path);
		if (dot)
			return st_error_set(err, ST_ENOTFOUND,
					    "'${args.%.*s}': parameter '%s' is a plain value without fields",
					    (int)r->pathlen, r->path, path);
		v = json_object_get(scope->args, path);
		if (json_is_null(v) && !allow_null)
			return st_error_set(err, ST_ENOTFOUND, "'${args.%s}': parameter '%s' has no value",
					    path, path);
		*out = json_deep_copy(v);
		break;
	case EXPR_NS_STEPS: {
		const json_t *res;

		dot = strchr(path, '.');
		if (dot)
			*dot = '\0';
		res = scope->steps ? json_object_get(scope->steps, path) : NULL;
		if (!res)
			return st_error_set(err, ST_ENOTFOUND,
					    "'${steps.%.*s}': step '%s' has no result (it did not run)",
					    (int)r->pathlen, r->path, path);
		v = dot ? expr_path_get(res, dot + 1) : res;
		if (!v)
			return st_error_set(err, ST_ENOTFOUND,
					    "'${steps.%.*s}': the result of step '%s' has no '%s'",
					    (int)r->pathlen, r->path, path, dot + 1);
		*out = json_deep_copy(v);
		break;
	}
	}
	if (!*out)
		return st_error_set(err, ST_ENOMEM, "out of memory evaluating '${%s.%s}'",
				    ns_name(r->ns), path);
	return 0;
}

int expr_eval_string(const char *text, const struct expr_scope *scope, json_t **out,
		     struct st_error *err)
{
	struct sbuf sb = SBUF_INIT;
	struct ref r;
	size_t i = 0, lit = 0;
	json_t *v = NULL;
	char *s = NULL;
	int rc = 0;

	*out = NULL;
	/* Exactly one reference: keep the value's type. */
	if (text[0] == '$' && text[1] == '{') {
		if ((rc = parse_ref(text, 0, &r, err)) != 0)
			return rc;
		if (text[r.end] == '\0') {
			if (ns_kept(scope, r.ns))
				*out = json_string(text);
			else if ((rc = eval_ref(&r, scope, 1, out, err)) != 0)
				return rc;
			if (!*out)
				return st_error_set(err, ST_ENOMEM, "out of memory evaluating '%s'", text);
			return 0;
		}
	}
	while (text[i]) {
		if (text[i] == '$' && text[i + 1] == '$' && text[i + 2] == '{') {
			if (sbuf_append(&sb, text + lit, i - lit) || sbuf_puts(&sb, "${"))
				goto nomem;
			i += 3;
			lit = i;
			continue;
		}
		if (text[i] != '$' || text[i + 1] != '{') {
			i++;
			continue;
		}
		if ((rc = parse_ref(text, i, &r, err)) != 0)
			goto out;
		if (sbuf_append(&sb, text + lit, i - lit))
			goto nomem;
		if (ns_kept(scope, r.ns)) {
			if (sbuf_append(&sb, text + r.start, r.end - r.start))
				goto nomem;
		} else {
			if ((rc = eval_ref(&r, scope, 0, &v, err)) != 0)
				goto out;
			if (json_is_null(v)) {
				rc = st_error_set(err, ST_ENOTFOUND, "'%.*s' is null and cannot be part of '%s'",
						  (int)(r.end - r.start), text + r.start, text);
				goto out;
			}
			s = expr_to_text(v);
			if (!s || sbuf_puts(&sb, s))
				goto nomem;
			free(s);
			s = NULL;
			json_decref(v);
			v = NULL;
		}
		i = lit = r.end;
	}
	if (sbuf_append(&sb, text + lit, i - lit))
		goto nomem;
	*out = json_string(sbuf_str(&sb));
	if (!*out)
		goto nomem;
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory evaluating '%s'", text);
out:
	free(s);
	json_decref(v);
	sbuf_release(&sb);
	return rc;
}

int expr_resolve(const json_t *tmpl, const struct expr_scope *scope, json_t **out,
		 struct st_error *err)
{
	json_t *res = NULL, *child = NULL;
	int rc = 0;

	*out = NULL;
	if (json_is_string(tmpl))
		return expr_eval_string(json_string_value(tmpl), scope, out, err);
	if (json_is_object(tmpl)) {
		const char *k;
		json_t *m;

		res = json_object();
		if (!res)
			goto nomem;
		json_object_foreach((json_t *)tmpl, k, m) {
			if ((rc = expr_resolve(m, scope, &child, err)) != 0)
				goto out;
			if (json_object_set_new(res, k, child))
				goto nomem;
			child = NULL;
		}
	} else if (json_is_array(tmpl)) {
		size_t idx;
		json_t *m;

		res = json_array();
		if (!res)
			goto nomem;
		json_array_foreach(tmpl, idx, m) {
			if ((rc = expr_resolve(m, scope, &child, err)) != 0)
				goto out;
			if (json_array_append_new(res, child))
				goto nomem;
			child = NULL;
		}
	} else {
		res = json_deep_copy(tmpl);
		if (!res)
			goto nomem;
	}
	*out = res;
	return 0;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory evaluating arguments");
out:
	json_decref(res);
	return rc;
}

int expr_parse_op(const char *text, enum expr_op *op, const char **operand, struct st_error *err)
{
	static const struct { const char *sym; enum expr_op op; } ops[] = {
		{ "==", EXPR_OP_EQ }, { "!=", EXPR_OP_NE }, { "<=", EXPR_OP_LE }, { ">=", EXPR_OP_GE },
		{ "!~", EXPR_OP_NOMATCH }, { "<", EXPR_OP_LT }, { ">", EXPR_OP_GT }, { "~", EXPR_OP_MATCH },
	};
	const char *p = text;
	size_t i;

	while (isspace((unsigned char)*p))
		p++;
	if (!*p || !strchr("<>=!~", *p)) {
		*op = EXPR_OP_LITERAL;
		*operand = text;
		return 0;
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t n = strlen(ops[i].sym);

		if (strncmp(p, ops[i].sym, n) != 0)
			continue;
		/* "=>", "<>", "==="...: an operator glued to another operator char. */
		if (p[n] && strchr("<>=!~", p[n]))
			break;
		p += n;
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return st_error_set(err, ST_ECONFIG, "comparison '%s' has no value after '%s'",
					    text, ops[i].sym);
		if (ops[i].op >= EXPR_OP_LT && ops[i].op <= EXPR_OP_GE && !expr_has_refs(p)) {
			json_t *tmp = json_string(p);
			double d;
			int bad = !tmp || expr_number(tmp, &d) != 0;

			json_decref(tmp);
			if (bad)
				return st_error_set(err, ST_ECONFIG, "comparison '%s' needs a number after '%s'",
						    text, ops[i].sym);
		}
		*op = ops[i].op;
		*operand = p;
		return 0;
	}
	return st_error_set(err, ST_ECONFIG,
			    "bad comparison operator in '%s': use ==, !=, <, <=, >, >=, ~ or !~", text);
}

static const char *op_sym(enum expr_op op)
{
	switch (op) {
	case EXPR_OP_EQ: return "==";
	case EXPR_OP_NE: return "!=";
	case EXPR_OP_LT: return "<";
	case EXPR_OP_LE: return "<=";
	case EXPR_OP_GT: return ">";
	case EXPR_OP_GE: return ">=";
	case EXPR_OP_MATCH: return "~";
	case EXPR_OP_NOMATCH: return "!~";
	default: return "";
	}
}

/* Short display of a value for messages: strings quoted, long ones cut. */
static void show(const json_t *v, char *buf, size_t size)
{
	char *t;

	if (!v) {
		snprintf(buf, size, "nothing (absent)");
		return;
	}
	t = expr_to_text(v);
	if (!t) {
		snprintf(buf, size, "?");
		return;
	}
	if (json_is_string(v))
		snprintf(buf, size, "'%.*s%s'", SHOW_MAX, t, strlen(t) > SHOW_MAX ? "..." : "");
	else
		snprintf(buf, size, "%.*s%s", SHOW_MAX, t, strlen(t) > SHOW_MAX ? "..." : "");
	free(t);
}

/* Equality of actual with a literal; see expr.h for the rules. */
static int literal_equal(const json_t *actual, const json_t *expected)
{
	double a, b;
	char *ta = NULL, *tb = NULL;
	int eq;

	if (json_is_null(expected))
		return !actual || json_is_null(actual);
	if (!actual)
		return 0;
	if (json_is_object(expected) || json_is_array(expected))
		return json_equal(actual, expected);
	if (expr_number(actual, &a) == 0 && expr_number(expected, &b) == 0)
		return a == b;
	if (json_is_number(expected))
		return 0;
	ta = expr_to_text(actual);
	tb = expr_to_text(expected);
	eq = ta && tb && strcmp(ta, tb) == 0;
	free(ta);
	free(tb);
	return eq;
}

int expr_compare(const json_t *actual, const json_t *expected, char *why, size_t whysize,
		 struct st_error *err)
{
	char got[SHOW_MAX + 16], want[SHOW_MAX + 16];
	enum expr_op op = EXPR_OP_LITERAL;
	const char *operand = NULL;
	json_t *opv = NULL;
	char *text = NULL;
	double a, b;
	int holds = 0;
	int rc;

	if (json_is_string(expected)) {
		if ((rc = expr_parse_op(json_string_value(expected), &op, &operand, err)) != 0)
			return rc;
	}
	if (op == EXPR_OP_LITERAL) {
		holds = literal_equal(actual, expected);
		if (!holds && why) {
			show(expected, want, sizeof(want));
			show(actual, got, sizeof(got));
			snprintf(why, whysize, "expected %s, got %s", want, got);
		}
		return holds;
	}
	opv = json_string(operand);
	if (!opv)
		return st_error_set(err, ST_ENOMEM, "out of memory comparing values");
	if (!actual) {
		holds = 0;
	} else if (op == EXPR_OP_EQ || op == EXPR_OP_NE) {
		holds = literal_equal(actual, opv);
		if (op == EXPR_OP_NE)
			holds = !holds;
	} else if (op == EXPR_OP_MATCH || op == EXPR_OP_NOMATCH) {
		text = expr_to_text(actual);
		if (!text) {
			json_decref(opv);
			return st_error_set(err, ST_ENOMEM, "out of memory comparing values");
		}
		holds = strstr(text, operand) != NULL;
		if (op == EXPR_OP_NOMATCH)
			holds = !holds;
	} else if (expr_number(actual, &a) == 0 && expr_number(opv, &b) == 0) {
		holds = op == EXPR_OP_LT ? a < b : op == EXPR_OP_LE ? a <= b
		      : op == EXPR_OP_GT ? a > b : a >= b;
	}
	if (!holds && why) {
		show(actual, got, sizeof(got));
		snprintf(why, whysize, "expected %s %s, got %s", op_sym(op), operand, got);
	}
	free(text);
	json_decref(opv);
	return holds;
}

int expr_expect(const json_t *result, const json_t *expect, char *why, size_t whysize,
		struct st_error *err)
{
	const char *path;
	json_t *want;
	char reason[256];

	if (!json_is_object(expect))
		return st_error_set(err, ST_ECONFIG, "expect must be a mapping of result paths to values");
	json_object_foreach((json_t *)expect, path, want) {
		int rc = expr_compare(expr_path_get(result, path), want, reason, sizeof(reason), err);

		if (rc < 0)
			return rc;
		if (rc == 0) {
			if (why)
				snprintf(why, whysize, "%s: %s", path, reason);
			return 0;
		}
	}
	return 1;
}

int expr_truthy(const json_t *v)
{
	const char *s;

	if (!v)
		return 0;
	switch (json_typeof(v)) {
	case JSON_TRUE: return 1;
	case JSON_FALSE: return 0;
	case JSON_NULL: return 0;
	case JSON_INTEGER: return json_integer_value(v) != 0;
	case JSON_REAL: return json_real_value(v) != 0.0;
	case JSON_STRING:
		s = json_string_value(v);
		return *s && strcasecmp(s, "false") && strcasecmp(s, "no") && strcasecmp(s, "off") &&
		       strcmp(s, "0");
	case JSON_ARRAY: return json_array_size(v) > 0;
	case JSON_OBJECT: return json_object_size(v) > 0;
	}
	return 0;
}

/* Splits a condition: text starts with a reference (r filled, *rest = what
 * follows, trimmed) or has none at all (*rest = NULL, r unused). */
static int split_condition(const char *text, struct ref *r, const char **rest, int *has_ref,
			   struct st_error *err)
{
	const char *p = text;
	int rc;

	while (isspace((unsigned char)*p))
		p++;
	*has_ref = 0;
	*rest = NULL;
	if (p[0] == '$' && p[1] == '{') {
		if ((rc = parse_ref(p, 0, r, err)) != 0)
			return rc;
		*has_ref = 1;
		*rest = p + r->end;
		while (isspace((unsigned char)**rest))
			(*rest)++;
		/* r is relative to p; make it relative to text. */
		r->start += (size_t)(p - text);
		r->end += (size_t)(p - text);
		if (**rest && !strchr("<>=!~", **rest))
			return st_error_set(err, ST_ECONFIG,
					    "condition '%s' must be one reference, optionally followed by "
					    "a comparison such as '== ok' or '> 0'", text);
		return 0;
	}
	if (expr_has_refs(text))
		return st_error_set(err, ST_ECONFIG,
				    "condition '%s' must start with its reference, e.g. '${args.x} == yes'",
				    text);
	return 0;
}

int expr_condition_scan(const char *text, expr_ref_fn fn, void *ud, struct st_error *err)
{
	struct ref r;
	const char *rest;
	enum expr_op op;
	const char *operand;
	int has_ref, rc;

	if ((rc = split_condition(text, &r, &rest, &has_ref, err)) != 0)
		return rc;
	if (!has_ref)
		return 0;
	if (fn && (rc = fn(ud, r.ns, r.path, r.pathlen, err)) != 0)
		return rc;
	if (*rest) {
		if ((rc = expr_parse_op(rest, &op, &operand, err)) != 0)
			return rc;
		return expr_scan(operand, fn, ud, err);
	}
	return 0;
}

static int scan_kept(void *ud, enum expr_ns ns, const char *path, size_t pathlen,
		     struct st_error *err)
{
	const struct expr_scope *scope = ud;

	(void)path;
	(void)pathlen;
	(void)err;
	/* Positive "stop" value: a kept namespace makes the condition undecided. */
	return ns_kept(scope, ns) ? 1 : 0;
}

int expr_condition(const char *text, const struct expr_scope *scope, int *holds, char *why,
		   size_t whysize, struct st_error *err)
{
	struct ref r;
	const char *rest;
	json_t *left = NULL, *right = NULL, *lit = NULL;
	char reason[256];
	int has_ref, rc;

	*holds = -1;
	if ((rc = split_condition(text, &r, &rest, &has_ref, err)) != 0)
		return rc;
	if (!has_ref) {
		lit = json_string(text);
		if (!lit)
			return st_error_set(err, ST_ENOMEM, "out of memory evaluating '%s'", text);
		*holds = expr_truthy(lit);
		json_decref(lit);
		if (why)
			snprintf(why, whysize, "'%s' is %s", text, *holds ? "true" : "false");
		return 0;
	}
	if (ns_kept(scope, r.ns) || (*rest && expr_scan(rest, scan_kept, (void *)scope, err) > 0)) {
		if (why)
			snprintf(why, whysize, "'%s' is decided when the run gets there", text);
		return 0;
	}
	if ((rc = eval_ref(&r, scope, 1, &left, err)) != 0)
		goto out;
	if (!*rest) {
		*holds = expr_truthy(left);
		if (why) {
			char shown[SHOW_MAX + 16];

			show(left, shown, sizeof(shown));
			snprintf(why, whysize, "%.*s is %s", (int)(r.end - r.start), text + r.start, shown);
		}
		goto out;
	}
	if ((rc = expr_eval_string(rest, scope, &right, err)) != 0)
		goto out;
	rc = expr_compare(left, right, reason, sizeof(reason), err);
	if (rc < 0)
		goto out;
	*holds = rc;
	rc = 0;
	if (why) {
		if (*holds)
			snprintf(why, whysize, "%.*s %s", (int)(r.end - r.start), text + r.start,
				 json_string_value(right));
		else
			snprintf(why, whysize, "%.*s: %s", (int)(r.end - r.start), text + r.start, reason);
	}
out:
	json_decref(left);
	json_decref(right);
	return rc;
}

int expr_quote(const char *text, struct sbuf *out)
{
	const char *p = text;

	while (p && *p) {
		const char *hit = strstr(p, "${");

		if (!hit)
			return sbuf_puts(out, p);
		if (sbuf_append(out, p, (size_t)(hit - p)) || sbuf_puts(out, "$${"))
			return -1;
		p = hit + 2;
	}
	return 0;
}

json_t *expr_quote_json(const json_t *v)
{
	json_t *r = NULL, *e;

	if (json_is_string(v)) {
		struct sbuf b = SBUF_INIT;

		if (expr_quote(json_string_value(v), &b) == 0)
			r = json_string(sbuf_str(&b));
		sbuf_release(&b);
	} else if (json_is_array(v)) {
		size_t i;

		r = json_array();
		json_array_foreach(v, i, e)
			if (!r || json_array_append_new(r, expr_quote_json(e))) {
				json_decref(r);
				return NULL;
			}
	} else if (json_is_object(v)) {
		const char *k;

		r = json_object();
		json_object_foreach((json_t *)v, k, e)
			if (!r || json_object_set_new(r, k, expr_quote_json(e))) {
				json_decref(r);
				return NULL;
			}
	} else {
		r = json_deep_copy(v);
	}
	return r;
}
