#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "journal.h"
#include "redact.h"
#include "text.h"
#include "testutil.h"

struct collected {
	json_t *records;  /* array */
	size_t stop_after;
};

static int collect(void *ud, const json_t *rec, size_t line)
{
	struct collected *c = ud;

	assert_true(line > 0);
	json_array_append(c->records, (json_t *)rec);
	if (c->stop_after && json_array_size(c->records) == c->stop_after)
		return 7;
	return 0;
}

static const char *field(const json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

static void test_run_records(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct journal *j = NULL;
	struct journal_run run;
	struct journal_step step;
	struct collected c = { json_array(), 0 };
	json_t *params = json_pack("{s:s}", "container", "spilttea-backend");
	json_t *args = json_pack("{s:s,s:i}", "container", "spilttea-backend", "timeout", 10);
	char path[600];
	size_t bad = 99;
	const json_t *r;

	memset(&run, 0, sizeof(run));
	run.runbook = "restart-backend";
	run.command_line = "spilttea-ops run restart-backend";
	run.incident = "INC-7";
	run.params = params;
	assert_int_equal(journal_open(dir, &j, &err), 0);
	assert_int_equal(journal_start(j, &run, &err), 0);
	assert_true(run.id[0] != '\0');
	memset(&step, 0, sizeof(step));
	step.step = "restart";
	step.action = "docker.restart";
	step.phase = "act";
	step.result = "ok";
	step.duration = 0.25;
	step.args = args;
	assert_int_equal(journal_step(j, &run, &step, &err), 0);
	step.phase = "verify";
	step.result = "failed";
	step.error = "verify did not hold within 30.0s";
	step.attempts = 3;
	assert_int_equal(journal_step(j, &run, &step, &err), 0);
	assert_int_equal(journal_end(j, &run, "failed", ST_EFAILED, "step 'restart' failed", &err), 0);
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	assert_string_equal(journal_path(j), path);
	journal_close(j);
	assert_int_equal(tu_mode(path), 0600);

	assert_int_equal(journal_foreach(path, collect, &c, &bad, &err), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(json_array_size(c.records), 4);
	r = json_array_get(c.records, 0);
	assert_string_equal(field(r, "type"), "start");
	assert_string_equal(field(r, "run"), run.id);
	assert_string_equal(field(r, "runbook"), "restart-backend");
	assert_string_equal(field(r, "incident"), "INC-7");
	assert_string_equal(field(r, "command"), "spilttea-ops run restart-backend");
	assert_non_null(field(r, "host"));
	assert_true(field(r, "user") || json_object_get(r, "uid"));
	assert_int_equal(json_integer_value(json_object_get(r, "pid")), getpid());
	assert_int_equal(strlen(field(r, "time")), strlen("2026-11-27T22:34:16.123Z"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "params"), "container")),
			    "spilttea-backend");
	r = json_array_get(c.records, 1);
	assert_string_equal(field(r, "type"), "step");
	assert_string_equal(field(r, "phase"), "act");
	assert_string_equal(field(r, "result"), "ok");
	assert_true(json_real_value(json_object_get(r, "duration")) == 0.25);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "args"), "timeout")), 10);
	assert_null(json_object_get(r, "error"));
	r = json_array_get(c.records, 2);
	assert_int_equal(json_integer_value(json_object_get(r, "attempts")), 3);
	assert_string_equal(field(r, "error"), "verify did not hold within 30.0s");
	r = json_array_get(c.records, 3);
	assert_string_equal(field(r, "type"), "end");
	assert_string_equal(field(r, "result"), "failed");
	assert_string_equal(field(r, "code"), "failed");
	assert_string_equal(field(r, "error"), "step 'restart' failed");
	json_decref(c.records);
	json_decref(params);
	json_decref(args);
}

static void test_secrets_never_reach_the_file(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct journal *j = NULL;
	struct journal_run run;
	json_t *params = json_pack("{s:s,s:{s:s,s:[{s:s}]}}", "db_password", "hunter2", "nested",
				   "api_token", "tok-abc", "list", "aws_secret_key", "AKIAXXXX");
	char path[600], *text;

	memset(&run, 0, sizeof(run));
	run.runbook = "rotate";
	run.params = params;
	assert_int_equal(journal_open(dir, &j, &err), 0);
	assert_int_equal(journal_start(j, &run, &err), 0);
	journal_close(j);
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	text = tu_read(path);
	assert_null(strstr(text, "hunter2"));
	assert_null(strstr(text, "tok-abc"));
	assert_null(strstr(text, "AKIAXXXX"));
	assert_non_null(strstr(text, "\"db_password\":\"***\""));
	free(text);
	json_decref(params);
}

static void test_reader_skips_malformed_and_stops(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct collected c = { json_array(), 0 };
	char path[600];
	size_t bad = 0;

	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	tu_write(path, "{\"type\":\"start\"}\nnot json\n\n[1,2]\n{\"type\":\"end\"}\n{\"type\":\"to");
	assert_int_equal(journal_foreach(path, collect, &c, &bad, &err), 0);
	assert_int_equal(json_array_size(c.records), 2);
	assert_int_equal(bad, 3);
	json_decref(c.records);

	c.records = json_array();
	c.stop_after = 1;
	assert_int_equal(journal_foreach(path, collect, &c, NULL, &err), 7);
	assert_int_equal(json_array_size(c.records), 1);
	json_decref(c.records);

	snprintf(path, sizeof(path), "%s/absent.jsonl", dir);
	c.records = json_array();
	c.stop_after = 0;
	assert_int_equal(journal_foreach(path, collect, &c, &bad, &err), 0);
	assert_int_equal(json_array_size(c.records), 0);
	json_decref(c.records);
}

static void test_appends_across_opens(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct journal *a = NULL, *b = NULL;
	struct collected c = { json_array(), 0 };
	json_t *rec = json_pack("{s:s}", "type", "note");
	char path[600];

	assert_int_equal(journal_open(dir, &a, &err), 0);
	assert_int_equal(journal_open(dir, &b, &err), 0);
	assert_int_equal(journal_append(a, rec, &err), 0);
	assert_int_equal(journal_append(b, rec, &err), 0);
	assert_int_equal(journal_append(a, rec, &err), 0);
	journal_close(a);
	journal_close(b);
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	assert_int_equal(journal_foreach(path, collect, &c, NULL, &err), 0);
	assert_int_equal(json_array_size(c.records), 3);
	json_decref(c.records);
	json_decref(rec);
}

static void test_unwritable_state_dir(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct journal *j = NULL;
	char path[600];

	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	assert_int_equal(mkdir(path, 0700), 0); /* a directory where the file goes */
	assert_int_equal(journal_open(dir, &j, &err), ST_EIO);
	assert_null(j);
	assert_non_null(strstr(err.message, "cannot open journal"));
	assert_non_null(strstr(err.hint, "state_dir"));
}

/* Text that is not UTF-8 (a server's message, an error cut in the middle of
 * a character) still gets its record, repaired, not "out of memory". */
static void test_invalid_utf8_is_repaired(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct journal *j = NULL;
	struct journal_run run;
	struct journal_step step;
	struct collected c = { json_array(), 0 };
	char path[600];
	size_t bad = 99;

	memset(&run, 0, sizeof(run));
	run.runbook = "r";
	run.command_line = "spilttea-ops run r x=\xff";
	assert_int_equal(journal_open(dir, &j, &err), 0);
	assert_int_equal(journal_start(j, &run, &err), 0);
	memset(&step, 0, sizeof(step));
	step.step = "s";
	step.phase = "act";
	step.result = "failed";
	step.error = "server said \xc3\xa9t\xc3 \x01\xff";
	assert_int_equal(journal_step(j, &run, &step, &err), 0);
	assert_int_equal(journal_end(j, &run, "failed", ST_EFAILED, "cut \xe2\x82", &err), 0);
	journal_close(j);
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	assert_int_equal(journal_foreach(path, collect, &c, &bad, &err), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(json_array_size(c.records), 3);
	assert_string_equal(field(json_array_get(c.records, 0), "command"),
			    "spilttea-ops run r x=\xef\xbf\xbd");
	assert_string_equal(field(json_array_get(c.records, 1), "error"),
			    "server said \xc3\xa9t\xef\xbf\xbd \x01\xef\xbf\xbd");
	assert_string_equal(field(json_array_get(c.records, 2), "error"), "cut \xef\xbf\xbd\xef\xbf\xbd");
	json_decref(c.records);
}

/* st_error_set and st_error_wrap truncate at a character boundary. */
static void test_error_truncation_keeps_utf8(void **state)
{
	struct st_error err = { 0 };
	char big[1300];
	size_t i;

	(void)state;
	for (i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[i] = '\0';
	/* 1023 and 511 bytes of two-byte characters: the cut falls inside one. */
	st_error_set(&err, ST_EFAILED, "%s", big);
	assert_true(strlen(err.message) < sizeof(err.message));
	assert_true(text_utf8_valid(err.message, strlen(err.message)));
	st_error_hint(&err, "%s", big);
	assert_true(text_utf8_valid(err.hint, strlen(err.hint)));
	st_error_wrap(&err, "step 'z' failed");
	assert_true(text_utf8_valid(err.message, strlen(err.message)));
	assert_non_null(strstr(err.message, "step 'z' failed: \xc3\xa9"));
	st_error_set(&err, ST_EFAILED, "short");
	st_error_wrap(&err, "p%s", big);
	assert_true(text_utf8_valid(err.message, strlen(err.message)));
}

/* A record cut short (disk full, file size limit) must not swallow the
 * next one: the next record starts on a line of its own. */
static void test_short_write_does_not_corrupt_the_next_record(void **state)
{
	const char *dir = *state;
	struct st_error err = { 0 };
	struct journal *j = NULL;
	struct collected c = { json_array(), 0 };
	json_t *big = json_pack("{s:s,s:s}", "type", "note", "text", "");
	json_t *small = json_pack("{s:s}", "type", "after");
	struct rlimit old, lim;
	char path[600], text[2000];
	struct stat st;
	size_t bad = 0;
	void (*prev)(int);

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	json_object_set_new(big, "text", json_string(text));
	assert_int_equal(journal_open(dir, &j, &err), 0);
	assert_int_equal(journal_append(j, small, &err), 0);
	snprintf(path, sizeof(path), "%s/journal.jsonl", dir);
	assert_int_equal(stat(path, &st), 0);
	/* Room for 100 more bytes: the big record is written in part. */
	prev = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size + 100;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(journal_append(j, big, &err), ST_EIO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(journal_append(j, small, &err), 0);
	journal_close(j);
	assert_int_equal(journal_foreach(path, collect, &c, &bad, &err), 0);
	assert_int_equal(bad, 1);                       /* the torn one */
	assert_int_equal(json_array_size(c.records), 2); /* both small ones */
	assert_string_equal(field(json_array_get(c.records, 1), "type"), "after");
	json_decref(c.records);
	json_decref(big);
	json_decref(small);
}

static void test_redact_names(void **state)
{
	(void)state;
	assert_true(redact_name_is_secret("password"));
	assert_true(redact_name_is_secret("PGPASSWORD"));
	assert_true(redact_name_is_secret("jwt_secret"));
	assert_true(redact_name_is_secret("api_token"));
	assert_true(redact_name_is_secret("aws_access_key_id"));
	assert_false(redact_name_is_secret("container"));
	assert_false(redact_name_is_secret("keep_days"));
	assert_false(redact_name_is_secret(NULL));
	/* One rule for journal, plan, environment and columns (review 17):
	 * pass, auth, credential are secret too ... */
	assert_true(redact_name_is_secret("db_pass"));
	assert_true(redact_name_is_secret("SMTP_PASS"));
	assert_true(redact_name_is_secret("smtpPass"));
	assert_true(redact_name_is_secret("AUTH_HEADER"));
	assert_true(redact_name_is_secret("basicAuth"));
	assert_true(redact_name_is_secret("GOOGLE_APPLICATION_CREDENTIALS"));
	assert_true(redact_name_is_secret("apiKey"));
	assert_true(redact_name_is_secret("APIKey"));
	assert_true(redact_name_is_secret("private_key"));
	assert_true(redact_name_is_secret("db_pwd"));
	/* ... and the short words count only as whole words. */
	assert_false(redact_name_is_secret("monkey"));
	assert_false(redact_name_is_secret("keyspace_hits"));
	assert_false(redact_name_is_secret("author"));
	assert_false(redact_name_is_secret("passenger_count"));
	assert_false(redact_name_is_secret("bypass_cache"));
	assert_false(redact_name_is_secret("hotkeys"));
}

static void test_redact_text(void **state)
{
	char buf[64];
	char small[12];
	const char *secrets[] = { "hunter2", "", "pw" };

	(void)state;
	strcpy(buf, "auth failed for hunter2 (hunter2), pw");
	redact_text(buf, sizeof(buf), secrets, 3);
	assert_string_equal(buf, "auth failed for *** (***), ***");

	/* "***" longer than the secret in a full buffer: truncated, never overflowed. */
	strcpy(small, "a pw pw pw");
	redact_text(small, sizeof(small), secrets + 2, 1);
	assert_string_equal(small, "a *** *** p");
	assert_true(strlen(small) < sizeof(small));
}

/* The set of secret values: no cap, no duplicates, longest first, short
 * values hidden only as whole values (review items 2 and 17). */
static void test_redact_set(void **state)
{
	struct redact_set set = REDACT_SET_INIT;
	json_t *v, *doc;
	char buf[128];
	int i;

	(void)state;
	for (i = 0; i < 70; i++) {
		char s[32];

		snprintf(s, sizeof(s), "filler%02d", i);
		assert_int_equal(redact_set_add(&set, s), 0);
		assert_int_equal(redact_set_add(&set, s), 0);
	}
	assert_int_equal(set.n, 70);
	assert_int_equal(redact_set_add(&set, "hunter2"), 0);
	assert_int_equal(redact_set_add(&set, ""), 0);
	assert_int_equal(redact_set_add(&set, NULL), 0);
	assert_int_equal(set.n, 71);
	assert_true(redact_set_contains(&set, "hunter2"));
	assert_false(redact_set_contains(&set, "hunter"));
	v = json_string("password is hunter2, filler69 too");
	assert_int_equal(redact_set_scrub_json(&set, v), 0);
	assert_string_equal(json_string_value(v), "password is ***, *** too");
	json_decref(v);

	/* A secret that starts another is no reason to leave half of it. */
	assert_int_equal(redact_set_add(&set, "abcd"), 0);
	assert_int_equal(redact_set_add(&set, "abcdefgh"), 0);
	snprintf(buf, sizeof(buf), "x abcdefgh y abcd");
	redact_set_scrub(&set, buf, sizeof(buf));
	assert_string_equal(buf, "x *** y ***");

	/* "1" as a secret does not turn every 1 into ***, but a value that is
	 * the secret is still hidden. */
	assert_int_equal(redact_set_add(&set, "1"), 0);
	snprintf(buf, sizeof(buf), "exit code 1 after 10s");
	redact_set_scrub(&set, buf, sizeof(buf));
	assert_string_equal(buf, "exit code 1 after 10s");
	doc = json_pack("{s:s,s:[s,s]}", "a", "1", "b", "10", "1");
	assert_int_equal(redact_set_scrub_json(&set, doc), 0);
	assert_string_equal(json_string_value(json_object_get(doc, "a")), "***");
	assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "b"), 0)), "10");
	assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "b"), 1)), "***");
	json_decref(doc);

	/* Collecting: strings under secret names, or all when secret. */
	doc = json_pack("{s:s,s:{s:s},s:[s]}", "user", "bob", "env", "API_TOKEN", "tok-xyz",
			"list", "item1");
	assert_int_equal(redact_set_collect(&set, doc, 0), 0);
	assert_true(redact_set_contains(&set, "tok-xyz"));
	assert_false(redact_set_contains(&set, "bob"));
	assert_int_equal(redact_set_collect(&set, json_object_get(doc, "list"), 1), 0);
	assert_true(redact_set_contains(&set, "item1"));
	json_decref(doc);
	redact_set_release(&set);
	assert_int_equal(set.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		tu_dir_test(test_run_records),
		tu_dir_test(test_secrets_never_reach_the_file),
		tu_dir_test(test_reader_skips_malformed_and_stops),
		tu_dir_test(test_appends_across_opens),
		tu_dir_test(test_unwritable_state_dir),
		tu_dir_test(test_invalid_utf8_is_repaired),
		cmocka_unit_test(test_error_truncation_keeps_utf8),
		tu_dir_test(test_short_write_does_not_corrupt_the_next_record),
		cmocka_unit_test(test_redact_names),
		cmocka_unit_test(test_redact_text),
		cmocka_unit_test(test_redact_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
