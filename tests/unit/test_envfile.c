/*
 * test_envfile.c - dotenv reading and the rewrite secret rotation relies
 * on: only the assigned value changes, every other byte stays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/stat.h>

#include "envfile.h"
#include "testutil.h"

/* envfile_set on text; returns the new text (caller frees), *n replaced. */
static char *set(const char *text, const char *key, const char *value, int append, size_t *n)
{
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };

	if (envfile_set(text, strlen(text), key, value, append, &out, n, &err) != 0)
		fail_msg("envfile_set: %s", err.message);
	return sbuf_detach(&out);
}

static void set_fails(const char *text, const char *key, const char *value, const char *want)
{
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };
	size_t n = 99;

	assert_int_equal(envfile_set(text, strlen(text), key, value, 1, &out, &n, &err), ST_EUSAGE);
	if (!strstr(err.message, want))
		fail_msg("'%s' does not contain '%s'", err.message, want);
	sbuf_release(&out);
}

static void test_parse(void **state)
{
	static const char text[] =
		"# backend/.env\n"
		"\n"
		"NODE_ENV=production\r\n"
		"export JWT_SECRET=abc\n"
		"  SMTP_PASSWORD = \"a b # c\"  # trailing\n"
		"AWS_REGION=eu-west-1 # where\n"
		"SINGLE='x\"y'\n"
		"EMPTY=\n"
		"not an assignment\n"
		"=novalue\n"
		"DUP=1\n"
		"DUP=2\n"
		"HASH=#notacomment\n"
		"LAST=no newline";
	struct envfile ef = ENVFILE_INIT;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(envfile_parse(text, strlen(text), &ef, &err), 0);
	assert_string_equal(envfile_get(&ef, "NODE_ENV"), "production");
	assert_string_equal(envfile_get(&ef, "JWT_SECRET"), "abc");
	assert_string_equal(envfile_get(&ef, "SMTP_PASSWORD"), "a b # c");
	assert_string_equal(envfile_get(&ef, "AWS_REGION"), "eu-west-1");
	assert_string_equal(envfile_get(&ef, "SINGLE"), "x\"y");
	assert_string_equal(envfile_get(&ef, "EMPTY"), "");
	assert_string_equal(envfile_get(&ef, "DUP"), "2");
	/* dotenv's rule: '#' starts a comment wherever it is in an unquoted value. */
	assert_string_equal(envfile_get(&ef, "HASH"), "");
	assert_string_equal(envfile_get(&ef, "LAST"), "no newline");
	assert_null(envfile_get(&ef, "not"));
	assert_null(envfile_get(&ef, "MISSING"));
	assert_int_equal(ef.n, 10);
	assert_int_equal(ef.entries[1].exported, 1);
	assert_int_equal(ef.entries[1].line, 4);
	assert_int_equal(ef.entries[2].quote, '"');
	envfile_release(&ef);
}

/* The one parser: what dotenv (the backend), the checklist and compose's
 * variables read out of the same lines (review 2 item 10). */
static void test_parse_like_dotenv(void **state)
{
	static const char text[] =
		"JWT_SECRET= # set me\n"
		"A=abc#def\n"
		"B=\"x # y\"#c\n"
		"C=\"l1\\nl2\\t\\\"q\\\" \\\\ \\$\"\n"
		"D='l1\\n'\n"
		"FROM_ENV\n"
		"  export   SPACED  \r\n"
		"BAD KEY=2\n"
		"E=e\n";
	struct envfile ef = ENVFILE_INIT;
	struct st_error err = { 0 };

	(void)state;
	assert_int_equal(envfile_parse(text, strlen(text), &ef, &err), 0);
	assert_string_equal(envfile_get(&ef, "JWT_SECRET"), "");
	assert_string_equal(envfile_get(&ef, "A"), "abc");
	assert_string_equal(envfile_get(&ef, "B"), "x # y");
	assert_string_equal(envfile_get(&ef, "C"), "l1\nl2\t\"q\" \\ \\$");
	assert_string_equal(envfile_get(&ef, "D"), "l1\\n");
	assert_string_equal(envfile_get(&ef, "E"), "e");
	/* A name alone assigns nothing (compose takes it from its environment). */
	assert_null(envfile_get(&ef, "FROM_ENV"));
	assert_null(envfile_get(&ef, "SPACED"));
	assert_int_equal(ef.n, 8);
	assert_string_equal(ef.entries[5].key, "FROM_ENV");
	assert_true(ef.entries[5].bare);
	assert_null(ef.entries[5].value);
	assert_int_equal(ef.entries[5].line, 6);
	assert_true(ef.entries[6].bare);
	assert_false(ef.entries[7].bare);
	/* The first line that is none of these, for readers that refuse it. */
	assert_int_equal(ef.bad_line, 8);
	envfile_release(&ef);
}

static void test_set_keeps_everything_else(void **state)
{
	static const char text[] =
		"# backend/.env - keep me\n"
		"NODE_ENV=production\n"
		"JWT_SECRET_OLD=keep\n"
		"MY_JWT_SECRET=keep\n"
		"JWT_SECRET=old\n"
		"\n"
		"FRONTEND_URL=http://x\n";
	size_t n;
	char *out;

	(void)state;
	out = set(text, "JWT_SECRET", "new", 0, &n);
	assert_int_equal(n, 1);
	assert_string_equal(out,
			    "# backend/.env - keep me\n"
			    "NODE_ENV=production\n"
			    "JWT_SECRET_OLD=keep\n"
			    "MY_JWT_SECRET=keep\n"
			    "JWT_SECRET=new\n"
			    "\n"
			    "FRONTEND_URL=http://x\n");
	free(out);
}

static void test_set_quotes_export_comments(void **state)
{
	size_t n;
	char *out;

	(void)state;
	out = set("export JWT_SECRET=old\n", "JWT_SECRET", "n3w", 0, &n);
	assert_string_equal(out, "export JWT_SECRET=n3w\n");
	free(out);
	out = set("JWT_SECRET=\"old value\" # rotated monthly\n", "JWT_SECRET", "new", 0, &n);
	assert_string_equal(out, "JWT_SECRET=\"new\" # rotated monthly\n");
	free(out);
	out = set("  JWT_SECRET = 'old'\n", "JWT_SECRET", "a\"b", 0, &n);
	assert_string_equal(out, "  JWT_SECRET = 'a\"b'\n");
	free(out);
	out = set("JWT_SECRET=old   # note\n", "JWT_SECRET", "new", 0, &n);
	assert_string_equal(out, "JWT_SECRET=new   # note\n");
	free(out);
	out = set("JWT_SECRET=\n", "JWT_SECRET", "new", 0, &n);
	assert_string_equal(out, "JWT_SECRET=new\n");
	free(out);
	/* Every assignment (the last one wins for readers; all must change). */
	out = set("A=1\nA=2\n", "A", "3", 0, &n);
	assert_int_equal(n, 2);
	assert_string_equal(out, "A=3\nA=3\n");
	free(out);
}

static void test_set_line_endings(void **state)
{
	size_t n;
	char *out;

	(void)state;
	out = set("A=1\r\nJWT_SECRET=old\r\nB=2\r\n", "JWT_SECRET", "new", 0, &n);
	assert_string_equal(out, "A=1\r\nJWT_SECRET=new\r\nB=2\r\n");
	free(out);
	out = set("A=1\nJWT_SECRET=old", "JWT_SECRET", "new", 0, &n);
	assert_string_equal(out, "A=1\nJWT_SECRET=new");
	free(out);
	/* Appending: after a line ending, in the file's own style. */
	out = set("A=1", "JWT_SECRET", "new", 1, &n);
	assert_int_equal(n, 1);
	assert_string_equal(out, "A=1\nJWT_SECRET=new\n");
	free(out);
	out = set("A=1\r\n", "JWT_SECRET", "new", 1, &n);
	assert_string_equal(out, "A=1\r\nJWT_SECRET=new\r\n");
	free(out);
	out = set("", "JWT_SECRET", "new", 1, &n);
	assert_string_equal(out, "JWT_SECRET=new\n");
	free(out);
	/* Not there and not appending: unchanged. */
	out = set("A=1\n", "JWT_SECRET", "new", 0, &n);
	assert_int_equal(n, 0);
	assert_string_equal(out, "A=1\n");
	free(out);
}

/* Found by fuzz/envfile: a lone CR ending the text ends its last line, so
 * appending after it must complete it to CRLF; "A=1\rK=v\n" would be one
 * line assigning A "1\rK=v" (tests/fuzz/regress/envfile/append-after-*). */
static void test_set_appends_after_lone_cr(void **state)
{
	struct envfile ef = ENVFILE_INIT;
	struct st_error err = { 0 };
	size_t n;
	char *out;

	(void)state;
	out = set("A=1\r", "JWT_SECRET", "new", 1, &n);
	assert_int_equal(n, 1);
	assert_string_equal(out, "A=1\r\nJWT_SECRET=new\r\n");
	assert_int_equal(envfile_parse(out, strlen(out), &ef, &err), 0);
	assert_string_equal(envfile_get(&ef, "A"), "1");
	assert_string_equal(envfile_get(&ef, "JWT_SECRET"), "new");
	envfile_release(&ef);
	free(out);
	out = set("A=1\n\r", "JWT_SECRET", "new", 1, &n);
	assert_string_equal(out, "A=1\n\r\nJWT_SECRET=new\r\n");
	free(out);
	out = set("\r", "JWT_SECRET", "new", 1, &n);
	assert_string_equal(out, "\r\nJWT_SECRET=new\r\n");
	free(out);
	/* A CRLF file whose last line has no ending: the file's ending. */
	out = set("A=1\r\nB=2", "JWT_SECRET", "new", 1, &n);
	assert_string_equal(out, "A=1\r\nB=2\r\nJWT_SECRET=new\r\n");
	free(out);
}

/* Found by fuzz/envfile: "K= # set me" set to v gave "K= v# set me",
 * which compose (it cuts comments only at " #") reads as "v# set me".
 * (tests/fuzz/regress/envfile/value-before-hash-comment) */
static void test_set_keeps_blank_before_comment(void **state)
{
	size_t n;
	char *out;

	(void)state;
	out = set("JWT_SECRET= # set me\n", "JWT_SECRET", "v", 0, &n);
	assert_string_equal(out, "JWT_SECRET= v # set me\n");
	free(out);
	out = set("HASH=#x\r\n", "HASH", "v", 0, &n);
	assert_string_equal(out, "HASH=v #x\r\n");
	free(out);
	out = set("HASH=#x\n", "HASH", "", 0, &n);
	assert_string_equal(out, "HASH= #x\n");
	free(out);
	out = set("K=old #c\n", "K", "new", 0, &n);
	assert_string_equal(out, "K=new #c\n");
	free(out);
	/* Setting it again changes nothing. */
	out = set("K=v #c\nHASH= #x\n", "HASH", "", 0, &n);
	assert_string_equal(out, "K=v #c\nHASH= #x\n");
	free(out);
}

static void test_set_refuses_ambiguous_values(void **state)
{
	(void)state;
	set_fails("K=1\n", "K", "two\nlines", "line break");
	set_fails("K=1\n", "K", "a #b", "'#'");
	set_fails("K=1\n", "K", "a#b", "'#'");
	set_fails("K=1\n", "K", " lead", "blank");
	set_fails("K=1\n", "K", "$HOME", "'$'");
	set_fails("K=1\n", "K", "'q", "starts with a quote");
	set_fails("K=\"1\"\n", "K", "a\"b", "double-quoted");
	set_fails("K=\"1\"\n", "K", "a\\b", "double-quoted");
	set_fails("K='1'\n", "K", "it's", "single quote");
	set_fails("K=\"multi\nline\"\n", "K", "x", "multi-line");
	set_fails("K= 1\n", "K", "#x", "starts a comment");
	set_fails("K=1\n", "1K", "x", "not a variable name");
	set_fails("K=1\n", "K-X", "x", "not a variable name");
	/* What the line's quotes can carry is fine. */
	{
		size_t n;
		char *out = set("K=\"1\"\n", "K", "a b # c", 0, &n);
		assert_string_equal(out, "K=\"a b # c\"\n");
		free(out);
	}
}

static void test_update_file(void **state)
{
	const char *dir = *state;
	char path[512], *text;
	struct st_error err = { 0 };
	struct stat st0, st1;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/backend.env", dir);
	tu_write(path, "# comment\r\nexport JWT_SECRET=\"old\"\r\nB=2");
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(envfile_update(path, "JWT_SECRET", "fresh", 0, &n, &err), 0);
	assert_int_equal(n, 1);
	text = tu_read(path);
	assert_string_equal(text, "# comment\r\nexport JWT_SECRET=\"fresh\"\r\nB=2");
	free(text);
	assert_int_equal(tu_mode(path), 0640);
	assert_int_equal(tu_count_entries(dir), 1); /* no temporary file left */

	/* Nothing to change: the file is not rewritten. */
	assert_int_equal(stat(path, &st0), 0);
	assert_int_equal(envfile_update(path, "NOPE", "x", 0, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(stat(path, &st1), 0);
	assert_int_equal(st0.st_ino, st1.st_ino);

	/* A refused value leaves the file as it was and never shows the value. */
	assert_int_equal(envfile_update(path, "JWT_SECRET", "s3cr3t\nX=1", 0, &n, &err), ST_EUSAGE);
	assert_null(strstr(err.message, "s3cr3t"));
	text = tu_read(path);
	assert_string_equal(text, "# comment\r\nexport JWT_SECRET=\"fresh\"\r\nB=2");
	free(text);

	snprintf(path, sizeof(path), "%s/missing.env", dir);
	assert_int_equal(envfile_update(path, "K", "v", 1, &n, &err), ST_ENOTFOUND);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_load(void **state)
{
	const char *dir = *state;
	char path[512];
	struct envfile ef = ENVFILE_INIT;
	struct st_error err = { 0 };

	snprintf(path, sizeof(path), "%s/.env", dir);
	tu_write(path, "A=1\nB='two'\n");
	assert_int_equal(envfile_load(path, &ef, &err), 0);
	assert_string_equal(envfile_get(&ef, "B"), "two");
	envfile_release(&ef);
	snprintf(path, sizeof(path), "%s/none", dir);
	assert_int_equal(envfile_load(path, &ef, &err), ST_ENOTFOUND);
	assert_true(envfile_key_valid("JWT_SECRET"));
	assert_true(envfile_key_valid("_A1"));
	assert_false(envfile_key_valid("1A"));
	assert_false(envfile_key_valid(""));
	assert_false(envfile_key_valid("A B"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_like_dotenv),
		cmocka_unit_test(test_set_keeps_everything_else),
		cmocka_unit_test(test_set_quotes_export_comments),
		cmocka_unit_test(test_set_line_endings),
		cmocka_unit_test(test_set_appends_after_lone_cr),
		cmocka_unit_test(test_set_keeps_blank_before_comment),
		cmocka_unit_test(test_set_refuses_ambiguous_values),
		tu_dir_test(test_update_file),
		tu_dir_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
