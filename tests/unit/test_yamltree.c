#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "yamltree.h"

static struct yt_doc *parse_ok(const char *text)
{
	struct yt_doc *doc = NULL;
	struct st_error err = { 0 };

	assert_int_equal(yt_parse_buffer("t.yaml", text, strlen(text), &doc, &err), 0);
	assert_non_null(doc);
	return doc;
}

static void parse_fail(const char *text, const char *expect)
{
	struct yt_doc *doc = NULL;
	struct st_error err = { 0 };

	assert_int_equal(yt_parse_buffer("t.yaml", text, strlen(text), &doc, &err), ST_ECONFIG);
	assert_null(doc);
	if (!strstr(err.message, expect))
		fail_msg("message '%s' lacks '%s'", err.message, expect);
}

static void test_nested_with_positions(void **state)
{
	struct yt_doc *doc;
	struct yt_node *pg, *port, *list;

	(void)state;
	doc = parse_ok("a: 1\npostgres:\n  host: localhost\n  port: 5432\nlist: [x, 'y', \"\"]\n");
	pg = yt_map_get(doc->root, "postgres");
	assert_non_null(pg);
	assert_int_equal(pg->kind, YT_MAP);
	port = yt_map_get(pg, "port");
	assert_string_equal(yt_scalar(port), "5432");
	assert_int_equal(port->line, 4);
	assert_int_equal(port->column, 9);
	list = yt_map_get(doc->root, "list");
	assert_int_equal(list->kind, YT_SEQ);
	assert_int_equal(list->count, 3);
	assert_false(list->values[0]->quoted);
	assert_true(list->values[1]->quoted);
	assert_false(yt_is_null(list->values[2])); /* quoted empty string is not null */
	assert_null(yt_map_get(doc->root, "missing"));
	yt_doc_free(doc);
}

static void test_typed_readers(void **state)
{
	struct yt_doc *doc;
	struct st_error err = { 0 };
	long l;
	double d;
	int b;

	(void)state;
	doc = parse_ok("n: 42\nf: 0.5\nb: yes\nd: 5m\nms: 250ms\nbad: 12x\nm: {a: 1}\nz: ~\n");
	assert_int_equal(yt_get_long(yt_map_get(doc->root, "n"), "n", &l, &err), 0);
	assert_int_equal(l, 42);
	assert_int_equal(yt_get_double(yt_map_get(doc->root, "f"), "f", &d, &err), 0);
	assert_true(d == 0.5);
	assert_int_equal(yt_get_bool(yt_map_get(doc->root, "b"), "b", &b, &err), 0);
	assert_int_equal(b, 1);
	assert_int_equal(yt_get_seconds(yt_map_get(doc->root, "d"), "d", &d, &err), 0);
	assert_true(d == 300);
	assert_int_equal(yt_get_seconds(yt_map_get(doc->root, "ms"), "ms", &d, &err), 0);
	assert_true(d > 0.249 && d < 0.251);
	assert_int_equal(yt_get_long(yt_map_get(doc->root, "bad"), "x.bad", &l, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "t.yaml:6:6: x.bad must be an integer"));
	assert_int_equal(yt_get_double(yt_map_get(doc->root, "m"), "m", &d, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "not a mapping"));
	assert_true(yt_is_null(yt_map_get(doc->root, "z")));
	yt_doc_free(doc);
}

static void test_errors(void **state)
{
	(void)state;
	parse_fail("a: 1\na: 2\n", "t.yaml:2:1: duplicate key 'a' (first at line 1)");
	parse_fail("a: [1, 2\n", "t.yaml:");
	parse_fail("a: &x 1\nb: *x\n", "anchors are not supported");
	parse_fail("a: 1\n---\nb: 2\n", "only one yaml document");
	parse_fail("? [a]\n: 1\n", "mapping keys must be plain scalars");
	parse_fail("a:\n  - b\n  c: d\n", "t.yaml:");
}

static void test_empty_document(void **state)
{
	struct yt_doc *doc;

	(void)state;
	doc = parse_ok("");
	assert_null(doc->root);
	yt_doc_free(doc);
}

static int refuse_bad(void *ud, const struct yt_node *n, struct st_error *err)
{
	(*(int *)ud)++;
	if (!strcmp(n->scalar, "bad"))
		return yt_error_at(err, ST_ECONFIG, n, "no '%s' here", n->scalar);
	return 0;
}

static void test_to_json(void **state)
{
	static const char doc[] =
		"a: [~, null, '', true, False, 42, -7, 0600, 0, 1.5, 2e3, 99999999999999999999, "
		"'42', \"true\", 0x10, .inf, hello]\n"
		"m: { k: v }\n";
	struct yt_doc *d = NULL;
	struct st_error err = { 0 };
	json_t *j = NULL;
	char *text;
	int strings = 0;

	(void)state;
	assert_int_equal(yt_parse_buffer("t.yaml", doc, strlen(doc), &d, &err), 0);
	assert_int_equal(yt_to_json(d->root, refuse_bad, &strings, &j, &err), 0);
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(text,
		"{\"a\":[null,null,\"\",true,false,42,-7,\"0600\",0,1.5,2000.0,1e20,\"42\",\"true\","
		"\"0x10\",\".inf\",\"hello\"],\"m\":{\"k\":\"v\"}}");
	assert_int_equal(strings, 8); /* '', 0600, '42', "true", 0x10, .inf, hello, v */
	free(text);
	json_decref(j);
	yt_doc_free(d);
	assert_int_equal(yt_parse_buffer("t.yaml", "x: [ok, bad]\n", 13, &d, &err), 0);
	assert_int_equal(yt_to_json(d->root, refuse_bad, &strings, &j, &err), ST_ECONFIG);
	assert_null(j);
	assert_string_equal(err.message, "t.yaml:1:9: no 'bad' here");
	yt_doc_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_json),
		cmocka_unit_test(test_nested_with_positions),
		cmocka_unit_test(test_typed_readers),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_empty_document),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
