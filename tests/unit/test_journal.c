#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "journal.h"
#include "redact.h"
#include "testutil.h"

static int setup(void **state)
{
	*state = tu_mkdtemp();
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state)
{
	tu_rmtree(*state);
	free(*state);
	return 0;
}

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_never_reach_the_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_skips_malformed_and_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_appends_across_opens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_state_dir, setup, teardown),
		cmocka_unit_test(test_redact_names),
		cmocka_unit_test(test_redact_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
