/* .dockerignore matching: the cases Docker's own client documents and
 * tests (patternmatcher), comments, exceptions, "**", cleaning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dockerignore.h"

static struct dockerignore *parse(const char *text)
{
	struct dockerignore *di = NULL;
	struct st_error err = { 0 };

	if (dockerignore_parse(".dockerignore", text, strlen(text), &di, &err) != 0)
		fail_msg("parse failed: %s", err.message);
	return di;
}

/* "+path" must be sent, "-path" excluded. */
static void expect(const char *text, const char *const *cases)
{
	struct dockerignore *di = parse(text);

	for (; *cases; cases++) {
		int want = (*cases)[0] == '-';
		int got = dockerignore_excluded(di, *cases + 1);

		if (got != want)
			fail_msg("patterns [%s]: '%s' %s, expected %s", text, *cases + 1,
				 got ? "excluded" : "sent", want ? "excluded" : "sent");
	}
	dockerignore_free(di);
}

static void test_empty(void **state)
{
	(void)state;
	expect("", (const char *const[]){ "+a", "+a/b", "+.git", NULL });
	expect("\n\n   \n# only a comment\n", (const char *const[]){ "+a", NULL });
}

static void test_comments_and_spaces(void **state)
{
	(void)state;
	/* '#' counts only in the first column; surrounding spaces go. */
	expect("# secret.txt\n  node_modules  \n  #notacomment\n",
	       (const char *const[]){ "+secret.txt", "-node_modules", "-node_modules/x/y.js",
				      "-#notacomment", NULL });
}

static void test_star_and_question(void **state)
{
	(void)state;
	expect("*.log\n",
	       (const char *const[]){ "-a.log", "+dir/a.log", "+a.log.txt", "+alog", NULL });
	expect("*/*.md\n",
	       (const char *const[]){ "+README.md", "-docs/x.md", "+docs/sub/x.md", NULL });
	expect("file?.txt\n",
	       (const char *const[]){ "-file1.txt", "+file12.txt", "+file/.txt", NULL });
	expect("[a-c].txt\n[^a-c].bin\n",
	       (const char *const[]){ "-b.txt", "+d.txt", "-x.bin", "+a.bin", NULL });
}

static void test_double_star(void **state)
{
	(void)state;
	expect("**/*.go\n",
	       (const char *const[]){ "-main.go", "-a/b/c.go", "+a/b/c.goo", NULL });
	expect("a/**/z\n",
	       (const char *const[]){ "-a/z", "-a/b/z", "-a/b/c/z", "+b/a/z", NULL });
	expect("build/**\n",
	       (const char *const[]){ "-build/x", "-build/a/b", "+builder", NULL });
	expect("**\n!keep\n", (const char *const[]){ "-x", "-a/b", "+keep", NULL });
}

static void test_parent_directories(void **state)
{
	(void)state;
	/* Excluding a directory excludes everything below it. */
	expect("docs\n",
	       (const char *const[]){ "-docs", "-docs/a/b.md", "+docsx", "+a/docs", NULL });
	expect("/tmp/\n./cache/../.cache\n",
	       (const char *const[]){ "-tmp/x", "-.cache/y", "+cache", NULL });
}

static void test_exceptions(void **state)
{
	(void)state;
	expect("*.md\n!README.md\n",
	       (const char *const[]){ "-CHANGES.md", "+README.md", NULL });
	/* Last match wins, in both directions. */
	expect("*.md\n!README*.md\nREADME-secret.md\n",
	       (const char *const[]){ "-CHANGES.md", "+README.md", "-README-secret.md", NULL });
	expect("docs\n!docs/keep.txt\n",
	       (const char *const[]){ "-docs/x", "+docs/keep.txt", NULL });
	expect("!   spaced\nspaced\n", (const char *const[]){ "-spaced", NULL });
}

static void test_escapes_and_literals(void **state)
{
	(void)state;
	expect("a.b\n(x)+y\n\\*lit\n",
	       (const char *const[]){ "-a.b", "+aXb", "-(x)+y", "-*lit", "+alit", NULL });
}

static void test_descend(void **state)
{
	struct dockerignore *di;

	(void)state;
	di = parse("vendor\n!vendor/keep\n");
	assert_int_equal(dockerignore_count(di), 2);
	assert_true(dockerignore_excluded(di, "vendor"));
	assert_true(dockerignore_must_descend(di, "vendor"));
	assert_false(dockerignore_must_descend(di, "other"));
	assert_false(dockerignore_must_descend(di, "vend"));
	dockerignore_free(di);

	/* Docker's client does not descend for wildcard exceptions. */
	di = parse("vendor\n!**/keep\n");
	assert_false(dockerignore_must_descend(di, "vendor"));
	dockerignore_free(di);

	di = parse("vendor\n");
	assert_false(dockerignore_must_descend(di, "vendor"));
	dockerignore_free(di);
}

static void test_bad_pattern(void **state)
{
	struct dockerignore *di = NULL;
	struct st_error err = { 0 };
	const char *text = "ok\n[unclosed\n";

	(void)state;
	assert_int_equal(dockerignore_parse("ctx/.dockerignore", text, strlen(text), &di, &err),
			 ST_ECONFIG);
	assert_null(di);
	assert_non_null(strstr(err.message, "ctx/.dockerignore:2:"));
	assert_non_null(strstr(err.message, "[unclosed"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_comments_and_spaces),
		cmocka_unit_test(test_star_and_question),
		cmocka_unit_test(test_double_star),
		cmocka_unit_test(test_parent_directories),
		cmocka_unit_test(test_exceptions),
		cmocka_unit_test(test_escapes_and_literals),
		cmocka_unit_test(test_descend),
		cmocka_unit_test(test_bad_pattern),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
