#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "sbuf.h"

static const char *lookup(void *ud, const char *path)
{
	(void)ud;
	if (!strcmp(path, "services.backend.health_url"))
		return "http://127.0.0.1:53001/health";
	if (!strcmp(path, "postgres.port"))
		return "55432";
	if (!strcmp(path, "state_dir"))
		return "/var/lib/spilttea-ops";
	return NULL;
}

struct world {
	json_t *args;
	json_t *steps;
	struct expr_scope scope;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	w->args = json_pack("{s:s,s:n,s:i,s:s}", "mode", "fast", "since", "count", 3, "flush", "yes");
	w->steps = json_pack("{s:{s:i,s:[{s:i},{s:i}],s:{s:s},s:b,s:n}}", "probe", "status", 200,
			     "rows", "count", 7, "count", 0, "body", "status", "ok", "healthy", 1,
			     "nothing");
	w->scope.lookup_config = lookup;
	w->scope.args = w->args;
	w->scope.steps = w->steps;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	json_decref(w->args);
	json_decref(w->steps);
	free(w);
	return 0;
}

/* Evaluates text and returns its compact JSON (caller frees). */
static char *eval_json(struct world *w, const char *text)
{
	struct st_error err = { 0 };
	json_t *v = NULL;
	char *s;

	if (expr_eval_string(text, &w->scope, &v, &err) != 0)
		fail_msg("'%s': %s", text, err.message);
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	return s;
}

static void eval_fails(struct world *w, const char *text, int code, const char *msg)
{
	struct st_error err = { 0 };
	json_t *v = NULL;

	assert_int_equal(expr_eval_string(text, &w->scope, &v, &err), code);
	assert_null(v);
	if (!strstr(err.message, msg))
		fail_msg("'%s': message '%s' lacks '%s'", text, err.message, msg);
}

#define EXPECT_JSON(w, text, want) do { \
	char *got_ = eval_json(w, text); \
	assert_string_equal(got_, want); \
	free(got_); \
} while (0)

static void test_interpolation(void **state)
{
	struct world *w = *state;

	EXPECT_JSON(w, "${config.services.backend.health_url}", "\"http://127.0.0.1:53001/health\"");
	EXPECT_JSON(w, "port ${config.postgres.port} in ${args.mode} mode",
		    "\"port 55432 in fast mode\"");
	EXPECT_JSON(w, "status=${steps.probe.status}/${steps.probe.rows.1.count}",
		    "\"status=200/0\"");
	EXPECT_JSON(w, "ok: ${steps.probe.healthy}", "\"ok: true\"");
	EXPECT_JSON(w, "rows ${steps.probe.rows}", "\"rows [{\\\"count\\\":7},{\\\"count\\\":0}]\"");
	EXPECT_JSON(w, "no refs at all", "\"no refs at all\"");
	EXPECT_JSON(w, "", "\"\"");
	EXPECT_JSON(w, "literal $${args.mode} and ${args.mode}", "\"literal ${args.mode} and fast\"");
	EXPECT_JSON(w, "cost: $5 {not a ref}", "\"cost: $5 {not a ref}\"");
}

static void test_single_reference_keeps_type(void **state)
{
	struct world *w = *state;

	EXPECT_JSON(w, "${steps.probe.status}", "200");
	EXPECT_JSON(w, "${args.count}", "3");
	EXPECT_JSON(w, "${steps.probe.healthy}", "true");
	EXPECT_JSON(w, "${steps.probe.rows}", "[{\"count\":7},{\"count\":0}]");
	EXPECT_JSON(w, "${steps.probe.body}", "{\"status\":\"ok\"}");
	EXPECT_JSON(w, "${steps.probe.rows.0.count}", "7");
	EXPECT_JSON(w, "${args.since}", "null"); /* a parameter without a value */
	EXPECT_JSON(w, "${steps.probe.nothing}", "null");
}

static void test_missing_references(void **state)
{
	struct world *w = *state;

	eval_fails(w, "${config.redis.port}", ST_ENOTFOUND, "configuration key 'redis.port' is not set");
	eval_fails(w, "${args.nope}", ST_ENOTFOUND, "unknown parameter 'nope'");
	eval_fails(w, "since ${args.since}", ST_ENOTFOUND, "parameter 'since' has no value");
	eval_fails(w, "${args.mode.x}", ST_ENOTFOUND, "plain value without fields");
	eval_fails(w, "${steps.restart.id}", ST_ENOTFOUND, "step 'restart' has no result");
	eval_fails(w, "${steps.probe.missing}", ST_ENOTFOUND, "the result of step 'probe' has no 'missing'");
	eval_fails(w, "${steps.probe.rows.5.count}", ST_ENOTFOUND, "has no 'rows.5.count'");
	eval_fails(w, "x ${steps.probe.nothing}", ST_ENOTFOUND, "is null");
}

static void test_syntax_errors(void **state)
{
	struct world *w = *state;
	struct st_error err = { 0 };

	eval_fails(w, "${env.POSTGRES_PASSWORD}", ST_ECONFIG, "environment variables are not allowed");
	eval_fails(w, "a ${env.HOME} b", ST_ECONFIG, "environment variables are not allowed");
	eval_fails(w, "${secrets.x}", ST_ECONFIG, "unknown reference '${secrets.x}'");
	eval_fails(w, "${args.mode", ST_ECONFIG, "unterminated '${'");
	eval_fails(w, "${args}", ST_ECONFIG, "incomplete reference '${args}'");
	eval_fails(w, "${args.}", ST_ECONFIG, "incomplete reference");
	eval_fails(w, "${steps.a..b}", ST_ECONFIG, "incomplete reference");
	eval_fails(w, "${args.a b}", ST_ECONFIG, "invalid character ' '");
	eval_fails(w, "${}", ST_ECONFIG, "unknown reference");
	assert_int_equal(expr_scan("${config.a} and ${steps.b.c}", NULL, NULL, &err), 0);
	assert_true(expr_has_refs("x ${a.b}"));
	assert_false(expr_has_refs("x $${a.b}"));
	assert_false(expr_has_refs("$ {a}"));
}

struct seen {
	int n;
	char last[64];
	enum expr_ns ns[8];
};

static int note_ref(void *ud, enum expr_ns ns, const char *path, size_t len, struct st_error *err)
{
	struct seen *s = ud;

	(void)err;
	if (s->n < 8)
		s->ns[s->n] = ns;
	s->n++;
	snprintf(s->last, sizeof(s->last), "%.*s", (int)len, path);
	if (!strncmp(path, "forbidden", len))
		return st_error_set(err, ST_ECONFIG, "no");
	return 0;
}

static void test_scan_reports_each_reference(void **state)
{
	struct seen s = { 0 };
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(expr_scan("${config.a.b}-${args.x}/$${args.skip}/${steps.s.f.0}", note_ref, &s,
				   &err), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ns[0], EXPR_NS_CONFIG);
	assert_int_equal(s.ns[1], EXPR_NS_ARGS);
	assert_int_equal(s.ns[2], EXPR_NS_STEPS);
	assert_string_equal(s.last, "s.f.0");
	assert_int_equal(expr_scan("${args.forbidden}", note_ref, &s, &err), ST_ECONFIG);
}

static void test_keep_namespaces(void **state)
{
	struct world *w = *state;

	w->scope.keep = EXPR_KEEP_STEPS;
	EXPECT_JSON(w, "${steps.later.id}", "\"${steps.later.id}\"");
	EXPECT_JSON(w, "id=${steps.later.id} mode=${args.mode}", "\"id=${steps.later.id} mode=fast\"");
	w->scope.keep = EXPR_KEEP_STEPS | EXPR_KEEP_ARGS | EXPR_KEEP_CONFIG;
	EXPECT_JSON(w, "${config.nope} ${args.nope}", "\"${config.nope} ${args.nope}\"");
	w->scope.keep = 0;
}

static void test_resolve_nested(void **state)
{
	struct world *w = *state;
	struct st_error err = { 0 };
	json_t *tmpl = json_pack("{s:s,s:[s,i,n],s:{s:s}}", "url", "${config.services.backend.health_url}",
				 "list", "${steps.probe.status}", 5, "inner", "count", "${args.count}");
	json_t *out = NULL;
	char *s;

	assert_int_equal(expr_resolve(tmpl, &w->scope, &out, &err), 0);
	s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"inner\":{\"count\":3},\"list\":[200,5,null],"
			       "\"url\":\"http://127.0.0.1:53001/health\"}");
	free(s);
	json_decref(out);
	json_object_set_new(tmpl, "bad", json_string("${steps.none.x}"));
	assert_int_equal(expr_resolve(tmpl, &w->scope, &out, &err), ST_ENOTFOUND);
	assert_null(out);
	json_decref(tmpl);
}

static void test_parse_op(void **state)
{
	struct st_error err = { 0 };
	enum expr_op op;
	const char *operand;

	(void)state;
	assert_int_equal(expr_parse_op("> 0", &op, &operand, &err), 0);
	assert_int_equal(op, EXPR_OP_GT);
	assert_string_equal(operand, "0");
	assert_int_equal(expr_parse_op("<=5", &op, &operand, &err), 0);
	assert_int_equal(op, EXPR_OP_LE);
	assert_string_equal(operand, "5");
	assert_int_equal(expr_parse_op("== ok", &op, &operand, &err), 0);
	assert_int_equal(op, EXPR_OP_EQ);
	assert_int_equal(expr_parse_op("!= 0", &op, &operand, &err), 0);
	assert_int_equal(op, EXPR_OP_NE);
	assert_int_equal(expr_parse_op("~ connection refused", &op, &operand, &err), 0);
	assert_int_equal(op, EXPR_OP_MATCH);
	assert_string_equal(operand, "connection refused");
	assert_int_equal(expr_parse_op("!~ error", &op, &operand, &err), 0);
	assert_int_equal(op, EXPR_OP_NOMATCH);
	assert_int_equal(expr_parse_op(">= ${args.min}", &op, &operand, &err), 0);
	assert_int_equal(op, EXPR_OP_GE);
	assert_int_equal(expr_parse_op("ok", &op, &operand, &err), 0);
	assert_int_equal(op, EXPR_OP_LITERAL);
	assert_string_equal(operand, "ok");

	assert_int_equal(expr_parse_op("=> 5", &op, &operand, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "bad comparison operator in '=> 5'"));
	assert_int_equal(expr_parse_op("=ok", &op, &operand, &err), ST_ECONFIG);
	assert_int_equal(expr_parse_op("===1", &op, &operand, &err), ST_ECONFIG);
	assert_int_equal(expr_parse_op("<>1", &op, &operand, &err), ST_ECONFIG);
	assert_int_equal(expr_parse_op("!ok", &op, &operand, &err), ST_ECONFIG);
	assert_int_equal(expr_parse_op("==", &op, &operand, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "has no value after '=='"));
	assert_int_equal(expr_parse_op("< lots", &op, &operand, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "needs a number"));
}

/* expr_compare on a JSON actual (text parsed) against an expected value. */
static int cmp(const char *actual_json, const json_t *expected, char *why)
{
	struct st_error err = { 0 };
	json_t *a = actual_json ? json_loads(actual_json, JSON_DECODE_ANY, NULL) : NULL;
	int rc;

	if (actual_json)
		assert_non_null(a);
	rc = expr_compare(a, expected, why, 256, &err);
	json_decref(a);
	return rc;
}

static int cmps(const char *actual_json, const char *expected)
{
	char why[256];
	json_t *e = json_string(expected);
	int rc = cmp(actual_json, e, why);

	json_decref(e);
	return rc;
}

static void test_comparisons(void **state)
{
	char why[256];
	json_t *e;

	(void)state;
	assert_int_equal(cmps("5", "> 0"), 1);
	assert_int_equal(cmps("0", "> 0"), 0);
	assert_int_equal(cmps("\"12\"", "> 5"), 1);       /* numeric string */
	assert_int_equal(cmps("4.5", "<= 4.5"), 1);
	assert_int_equal(cmps("5", "< 5"), 0);
	assert_int_equal(cmps("5", ">= 5"), 1);
	assert_int_equal(cmps("\"abc\"", "> 1"), 0);      /* not a number: does not hold */
	assert_int_equal(cmps("\"ok\"", "== ok"), 1);
	assert_int_equal(cmps("\"ok\"", "== OK"), 0);
	assert_int_equal(cmps("200", "== 200"), 1);
	assert_int_equal(cmps("200", "== 200.0"), 1);
	assert_int_equal(cmps("true", "== true"), 1);
	assert_int_equal(cmps("0", "!= 0"), 0);
	assert_int_equal(cmps("3", "!= 0"), 1);
	assert_int_equal(cmps("\"connection refused\"", "~ refused"), 1);
	assert_int_equal(cmps("\"fine\"", "~ refused"), 0);
	assert_int_equal(cmps("\"fine\"", "!~ refused"), 1);
	assert_int_equal(cmps("{\"a\":\"needle\"}", "~ needle"), 1); /* text form of objects */
	assert_int_equal(cmps(NULL, "> 0"), 0);
	assert_int_equal(cmps(NULL, "!= 0"), 0);           /* absent never satisfies an operator */
	assert_int_equal(cmps("\"ok\"", "ok"), 1);        /* literal */
	assert_int_equal(cmps("200", "200"), 1);
	assert_int_equal(cmps("true", "true"), 1);

	e = json_integer(200);
	assert_int_equal(cmp("\"200\"", e, why), 1);
	assert_int_equal(cmp("404", e, why), 0);
	assert_string_equal(why, "expected 200, got 404");
	assert_int_equal(cmp(NULL, e, why), 0);
	assert_string_equal(why, "expected 200, got nothing (absent)");
	json_decref(e);
	e = json_true();
	assert_int_equal(cmp("true", e, why), 1);
	assert_int_equal(cmp("\"true\"", e, why), 1);
	assert_int_equal(cmp("false", e, why), 0);
	json_decref(e);
	e = json_null();
	assert_int_equal(cmp(NULL, e, why), 1);
	assert_int_equal(cmp("null", e, why), 1);
	assert_int_equal(cmp("0", e, why), 0);
	json_decref(e);
	e = json_pack("[i,i]", 1, 2);
	assert_int_equal(cmp("[1,2]", e, why), 1);
	assert_int_equal(cmp("[2,1]", e, why), 0);
	json_decref(e);

	e = json_string("> 0");
	assert_int_equal(cmp("0", e, why), 0);
	assert_string_equal(why, "expected > 0, got 0");
	json_decref(e);
	e = json_string("== ok");
	assert_int_equal(cmp("\"starting\"", e, why), 0);
	assert_string_equal(why, "expected == ok, got 'starting'");
	json_decref(e);
	e = json_string("=> 1");
	assert_int_equal(cmp("1", e, why), ST_ECONFIG);
	json_decref(e);
}

static void test_expect(void **state)
{
	struct st_error err = { 0 };
	json_t *result = json_pack("{s:i,s:{s:s},s:[{s:i}]}", "status", 200, "body", "status",
				   "degraded", "rows", "n", 4);
	json_t *expect = json_pack("{s:i,s:s,s:s}", "status", 200, "rows.0.n", "> 3", "body.status",
				   "== ok");
	json_t *whole = json_pack("{s:s}", ".", "~ degraded");
	char why[256];

	(void)state;
	assert_int_equal(expr_expect(result, expect, why, sizeof(why), &err), 0);
	assert_string_equal(why, "body.status: expected == ok, got 'degraded'");
	json_object_set_new(expect, "body.status", json_string("degraded"));
	assert_int_equal(expr_expect(result, expect, why, sizeof(why), &err), 1);
	assert_int_equal(expr_expect(result, whole, why, sizeof(why), &err), 1);
	json_object_set_new(expect, "missing", json_string("!= x"));
	assert_int_equal(expr_expect(result, expect, why, sizeof(why), &err), 0);
	assert_string_equal(why, "missing: expected != x, got nothing (absent)");
	assert_int_equal(expr_expect(result, json_object_get(result, "status"), why, sizeof(why), &err),
			 ST_ECONFIG);
	json_decref(result);
	json_decref(expect);
	json_decref(whole);
}

static void test_truthy(void **state)
{
	json_t *v;

	(void)state;
#define T(expr_, want) do { v = (expr_); assert_int_equal(expr_truthy(v), want); json_decref(v); } while (0)
	T(json_true(), 1);
	T(json_false(), 0);
	T(json_null(), 0);
	T(json_integer(0), 0);
	T(json_integer(2), 1);
	T(json_real(0.0), 0);
	T(json_string(""), 0);
	T(json_string("no"), 0);
	T(json_string("False"), 0);
	T(json_string("off"), 0);
	T(json_string("0"), 0);
	T(json_string("yes"), 1);
	T(json_array(), 0);
	T(json_pack("[i]", 1), 1);
	T(json_object(), 0);
#undef T
	assert_int_equal(expr_truthy(NULL), 0);
}

static void test_conditions(void **state)
{
	struct world *w = *state;
	struct st_error err = { 0 };
	char why[256];
	int holds;

	assert_int_equal(expr_condition("${args.mode} == fast", &w->scope, &holds, why, sizeof(why), &err), 0);
	assert_int_equal(holds, 1);
	assert_int_equal(expr_condition("${args.mode} == slow", &w->scope, &holds, why, sizeof(why), &err), 0);
	assert_int_equal(holds, 0);
	assert_string_equal(why, "${args.mode}: expected == slow, got 'fast'");
	assert_int_equal(expr_condition("${args.flush}", &w->scope, &holds, why, sizeof(why), &err), 0);
	assert_int_equal(holds, 1);
	assert_int_equal(expr_condition("  ${args.since}", &w->scope, &holds, why, sizeof(why), &err), 0);
	assert_int_equal(holds, 0);
	assert_string_equal(why, "${args.since} is null");
	assert_int_equal(expr_condition("${steps.probe.rows.0.count} > ${args.count}", &w->scope, &holds,
					why, sizeof(why), &err), 0);
	assert_int_equal(holds, 1);
	assert_int_equal(expr_condition("false", &w->scope, &holds, why, sizeof(why), &err), 0);
	assert_int_equal(holds, 0);
	assert_int_equal(expr_condition("true", &w->scope, &holds, why, sizeof(why), &err), 0);
	assert_int_equal(holds, 1);

	w->scope.keep = EXPR_KEEP_STEPS;
	assert_int_equal(expr_condition("${steps.later.x} == 1", &w->scope, &holds, why, sizeof(why), &err), 0);
	assert_int_equal(holds, -1);
	assert_int_equal(expr_condition("${args.count} > ${steps.later.x}", &w->scope, &holds, why,
					sizeof(why), &err), 0);
	assert_int_equal(holds, -1);
	w->scope.keep = 0;

	assert_int_equal(expr_condition("${args.mode} fast", &w->scope, &holds, why, sizeof(why), &err),
			 ST_ECONFIG);
	assert_non_null(strstr(err.message, "must be one reference"));
	assert_int_equal(expr_condition("mode is ${args.mode}", &w->scope, &holds, why, sizeof(why), &err),
			 ST_ECONFIG);
	assert_int_equal(expr_condition("${args.mode} => 1", &w->scope, &holds, why, sizeof(why), &err),
			 ST_ECONFIG);
	assert_int_equal(expr_condition("${steps.none.x} == 1", &w->scope, &holds, why, sizeof(why), &err),
			 ST_ENOTFOUND);
	assert_int_equal(expr_condition_scan("${args.mode} == ${config.x}", NULL, NULL, &err), 0);
	assert_int_equal(expr_condition_scan("${args.mode} == ${env.X}", NULL, NULL, &err), ST_ECONFIG);
}

/* Quoted text evaluates to itself, whatever "${" and "$${" it holds. */
static void test_quote_round_trip(void **state)
{
	static const char *const texts[] = { "", "plain", "a ${args.mode} b", "${", "$${x}", "x${}y",
					      "${steps.q.rows}${config.app.name}", "$$", "end $", "$${args.mode}" };
	struct world *w = *state;
	struct st_error err = { 0 };
	json_t *tmpl, *quoted, *back = NULL;
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct sbuf q = SBUF_INIT;
		json_t *v = NULL;

		assert_int_equal(expr_quote(texts[i], &q), 0);
		assert_int_equal(expr_eval_string(sbuf_str(&q), &w->scope, &v, &err), 0);
		assert_string_equal(json_string_value(v), texts[i]);
		json_decref(v);
		sbuf_release(&q);
	}
	tmpl = json_pack("{s:s,s:[s,i,b,n],s:{s:s},s:f}", "a", "${args.mode}", "b", "x${y", 3, 1,
			 "c", "d", "$${e}", "r", 0.5);
	assert_non_null(tmpl);
	quoted = expr_quote_json(tmpl);
	assert_non_null(quoted);
	assert_string_equal(json_string_value(json_object_get(quoted, "a")), "$${args.mode}");
	assert_int_equal(expr_resolve(quoted, &w->scope, &back, &err), 0);
	assert_true(json_equal(back, tmpl));
	json_decref(back);
	json_decref(quoted);
	json_decref(tmpl);
}

static void test_path_and_text(void **state)
{
	json_t *root = json_pack("{s:[i,{s:s}],s:f}", "a", 1, "b", "c", "r", 0.5);
	char *t;

	(void)state;
	assert_ptr_equal(expr_path_get(root, "."), root);
	assert_ptr_equal(expr_path_get(root, ""), root);
	assert_string_equal(json_string_value(expr_path_get(root, "a.1.b")), "c");
	assert_null(expr_path_get(root, "a.x"));
	assert_null(expr_path_get(root, "a.-1"));
	assert_null(expr_path_get(root, "r.x"));
	assert_null(expr_path_get(NULL, "a"));
	assert_null(expr_path_get(root, "a..1"));
	assert_null(expr_path_get(root, "a.1."));
	assert_null(expr_path_get(root, "a.99999999999"));
	t = expr_to_text(json_object_get(root, "r"));
	assert_string_equal(t, "0.5");
	free(t);
	json_decref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_interpolation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_reference_keeps_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_references, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
		cmocka_unit_test(test_scan_reports_each_reference),
		cmocka_unit_test_setup_teardown(test_keep_namespaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_nested, setup, teardown),
		cmocka_unit_test(test_parse_op),
		cmocka_unit_test(test_comparisons),
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_truthy),
		cmocka_unit_test_setup_teardown(test_conditions, setup, teardown),
		cmocka_unit_test(test_path_and_text),
		cmocka_unit_test_setup_teardown(test_quote_round_trip, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
