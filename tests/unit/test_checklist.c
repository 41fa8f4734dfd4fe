/*
 * test_checklist.c - the checklist's pure parts: dotenv variables present,
 * attestation lists, and the text, JSON and JUnit renderings (escaping,
 * counts, one testcase per item).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "checklist.h"

static void test_env_missing(void **state)
{
	static const char env[] =
		"# backend/.env\n"
		"NODE_ENV=production\n"
		"export JWT_SECRET=abc\n"
		"  DATABASE_URL = postgresql://u:p@h/d  \r\n"
		"EMPTY=\n"
		"QUOTED_EMPTY=\"\"\n"
		"QUOTED='x'\n"
		"#COMMENTED=1\n"
		"JWT_SECRET_OLD=zzz\n"
		"AWS_KEY=1\n"
		"AWS_KEY=\n"          /* the last assignment wins */
		"SMTP_PASSWORD=s3cret\n"
		"JWT_PLACEHOLDER= # set me\n"   /* dotenv reads "" */
		"HASHED=#x";
	static const char *const req[] = { "NODE_ENV", "JWT_SECRET", "DATABASE_URL", "EMPTY", "QUOTED_EMPTY",
					   "QUOTED", "COMMENTED", "AWS_KEY", "SMTP_PASSWORD", "JWT", "REDIS_URL",
					   "JWT_PLACEHOLDER", "HASHED" };
	char missing[256];

	(void)state;
	assert_int_equal(checklist_env_missing(env, req, 11, missing, sizeof(missing)), 6);
	assert_string_equal(missing, "EMPTY, QUOTED_EMPTY, COMMENTED, AWS_KEY, JWT, REDIS_URL");
	assert_int_equal(checklist_env_missing(env, req, 13, missing, sizeof(missing)), 8);
	assert_string_equal(missing, "EMPTY, QUOTED_EMPTY, COMMENTED, AWS_KEY, JWT, REDIS_URL, JWT_PLACEHOLDER, "
			    "HASHED");
	assert_int_equal(checklist_env_missing(env, req, 3, missing, sizeof(missing)), 0);
	assert_string_equal(missing, "");
	/* The list is cut, the count is not. */
	assert_int_equal(checklist_env_missing("", req, 11, missing, 12), 11);
	assert_int_equal(strlen(missing), 11);
	assert_int_equal(checklist_env_missing("", req, 0, missing, sizeof(missing)), 0);
}

static void test_attest_parse(void **state)
{
	char **set = NULL;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(checklist_attest_parse("tests,code-review", &set, &err), 0);
	assert_int_equal(checklist_attest_parse(" security-review , tests,,", &set, &err), 0);
	assert_int_equal(checklist_attest_parse("", &set, &err), 0);
	assert_string_equal(set[0], "tests");
	assert_string_equal(set[1], "code-review");
	assert_string_equal(set[2], "security-review");
	assert_null(set[3]);
	assert_int_equal(checklist_attest_parse("ok,bad/name", &set, &err), ST_EUSAGE);
	assert_string_equal(err.message, "attestation 'bad/name' may contain only letters, digits, '_' and '-'");
	assert_string_equal(set[3], "ok");
	checklist_attest_free(set);
}

static void sample(struct checklist_report *r)
{
	struct checklist_item it;
	struct st_error err = { 0 };

	memset(r, 0, sizeof(*r));
	r->started = 1790000000.25;  /* 2026-09-21T14:13:20Z */
	r->duration = 0.5;
	memset(&it, 0, sizeof(it));
	strcpy(it.id, "docker");
	strcpy(it.kind, "machine");
	strcpy(it.title, "Docker daemon reachable");
	strcpy(it.message, "answers at unix:///var/run/docker.sock");
	it.seconds = 0.002;
	assert_int_equal(checklist_add(r, &it, &err), 0);
	memset(&it, 0, sizeof(it));
	strcpy(it.id, "env.backend");
	strcpy(it.kind, "machine");
	strcpy(it.title, "required variables in /srv/<app> & \"co\"");
	it.status = CHECKLIST_FAIL;
	strcpy(it.message, "2 of 4 missing or empty: JWT_SECRET, 'A'\nnext\x01line");
	strcpy(it.hint, "set them <here>");
	assert_int_equal(checklist_add(r, &it, &err), 0);
	memset(&it, 0, sizeof(it));
	strcpy(it.id, "backup");
	strcpy(it.kind, "machine");
	strcpy(it.title, "verified backup before migrations");
	it.status = CHECKLIST_SKIP;
	strcpy(it.message, "no migration pending: no backup needed");
	assert_int_equal(checklist_add(r, &it, &err), 0);
	memset(&it, 0, sizeof(it));
	strcpy(it.id, "attest.tests");
	strcpy(it.kind, "human");
	strcpy(it.title, "all tests passing (npm run test)");
	it.status = CHECKLIST_FAIL;
	strcpy(it.message, "not attested");
	assert_int_equal(checklist_add(r, &it, &err), 0);
}

static void test_counts(void **state)
{
	struct checklist_report r;

	(void)state;
	sample(&r);
	assert_int_equal(r.count, 4);
	assert_int_equal(r.passed, 1);
	assert_int_equal(r.failed, 2);
	assert_int_equal(r.skipped, 1);
	assert_int_equal(checklist_passed(&r), 0);
	assert_string_equal(checklist_status_name(CHECKLIST_SKIP), "skip");
	checklist_report_release(&r);
	assert_int_equal(r.count, 0);
	assert_int_equal(checklist_passed(&r), 1);
}

static void test_text(void **state)
{
	struct checklist_report r;
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };

	(void)state;
	sample(&r);
	assert_int_equal(checklist_render_text(&r, 0, &out, &err), 0);
	assert_non_null(strstr(sbuf_str(&out), "pre-deploy checklist\n"));
	assert_non_null(strstr(sbuf_str(&out), "  ok    docker        Docker daemon reachable: answers at"));
	assert_non_null(strstr(sbuf_str(&out), "  FAIL  attest.tests  all tests passing (npm run test): not attested\n"));
	assert_non_null(strstr(sbuf_str(&out), "hint: set them <here>\n"));
	assert_non_null(strstr(sbuf_str(&out), "4 items: 1 passed, 2 failed, 1 skipped (500ms)\n"));
	assert_null(strstr(sbuf_str(&out), "\033["));
	sbuf_reset(&out);
	assert_int_equal(checklist_render_text(&r, 1, &out, &err), 0);
	assert_non_null(strstr(sbuf_str(&out), "\033[31mFAIL\033[0m"));
	sbuf_release(&out);
	checklist_report_release(&r);
}

static void test_json(void **state)
{
	struct checklist_report r;
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };
	json_error_t jerr;
	json_t *j, *items, *it;

	(void)state;
	sample(&r);
	assert_int_equal(checklist_render_json(&r, &out, &err), 0);
	j = json_loads(sbuf_str(&out), 0, &jerr);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "passed")));
	assert_string_equal(json_string_value(json_object_get(j, "started")), "2026-09-21T14:13:20.250Z");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "counts"), "failed")), 2);
	items = json_object_get(j, "items");
	assert_int_equal(json_array_size(items), 4);
	it = json_array_get(items, 1);
	assert_string_equal(json_string_value(json_object_get(it, "id")), "env.backend");
	assert_string_equal(json_string_value(json_object_get(it, "status")), "fail");
	assert_string_equal(json_string_value(json_object_get(it, "hint")), "set them <here>");
	assert_null(json_object_get(json_array_get(items, 0), "hint"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 3), "kind")), "human");
	json_decref(j);
	sbuf_release(&out);
	checklist_report_release(&r);
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

static void test_junit(void **state)
{
	struct checklist_report r;
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };
	const char *x;

	(void)state;
	sample(&r);
	assert_int_equal(checklist_render_junit(&r, &out, &err), 0);
	x = sbuf_str(&out);
	assert_true(!strncmp(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites ", 50));
	assert_non_null(strstr(x, "tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\" time=\"0.500\">"));
	assert_non_null(strstr(x, "timestamp=\"2026-09-21T14:13:20\""));
	assert_int_equal(count_of(x, "<testcase "), 4);
	assert_int_equal(count_of(x, "</testcase>"), 4);
	assert_int_equal(count_of(x, "<failure "), 2);
	assert_int_equal(count_of(x, "<skipped "), 1);
	assert_non_null(strstr(x, "<testcase classname=\"checklist.human\" name=\"attest.tests\" time=\"0.000\">"));
	/* Escaped: & < > " ' and newlines in attributes; control characters dropped. */
	assert_non_null(strstr(x, "message=\"2 of 4 missing or empty: JWT_SECRET, &apos;A&apos;&#10;nextline\">"
			       "required variables in /srv/&lt;app&gt; &amp; &quot;co&quot;: "));
	assert_non_null(strstr(x, "&#10;hint: set them &lt;here&gt;</failure>"));
	assert_null(strchr(x, '\x01'));
	assert_non_null(strstr(x, "<skipped message=\"no migration pending: no backup needed\"/>"));
	{
		static const char tail[] = "  </testsuite>\n</testsuites>\n";
		assert_true(strlen(x) > sizeof(tail) && !strcmp(x + strlen(x) - (sizeof(tail) - 1), tail));
	}
	sbuf_release(&out);
	checklist_report_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_missing),
		cmocka_unit_test(test_attest_parse),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_junit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
