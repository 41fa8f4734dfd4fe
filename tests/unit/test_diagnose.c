#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose.h"
#include "runbook.h"

/* Canned findings as the engine hands them over. */
static struct runbook_step step_pg = { .name = "postgres-health", .description = "PostgreSQL is healthy" };
static struct runbook_step step_env = { .name = "backend-env", .description = NULL };
static struct runbook_step step_logs = { .name = "backend-logs", .description = "Logs" };
static struct runbook_step step_idle = { .name = "idle-connections", .description = "Idle" };

static void add(struct diag_issue *is, struct runbook_step *st, enum engine_finding_status s,
		const char *msg, const char *why, const char *error, json_t *evidence, const char *fix,
		const char *fix_runbook, json_t *fix_params)
{
	struct engine_finding f;
	json_t *empty = json_object();

	memset(&f, 0, sizeof(f));
	f.step = st;
	f.status = s;
	f.message = msg;
	f.why = why;
	f.error = error;
	f.evidence = evidence ? evidence : empty;
	f.fix = fix;
	f.fix_runbook = fix_runbook;
	f.fix_params = fix_params ? fix_params : empty;
	assert_int_equal(diag_issue_add_finding(is, &f), 0);
	json_decref(evidence);
	json_decref(fix_params);
	json_decref(empty);
}

/* backend-crash: a problem with a safe fix (twice, deduplicated), a warning
 * with log samples, an ok; db-pool: a warning with its own fix and a check
 * that could not run; email: a runbook that could not run. */
static void build(struct diag_report *rep)
{
	struct diag_issue *is;

	memset(rep, 0, sizeof(*rep));
	assert_int_equal(diag_set_add(&rep->before, "backend-crash", "diagnose-backend-crash",
				      diag_issue_def("backend-crash")->title, &is), 0);
	add(is, &step_pg, ENGINE_FINDING_PROBLEM, "postgres container is exited", "running: expected true, got false",
	    NULL, json_pack("{s:s,s:i,s:s,s:n}", "status", "exited", "exit_code", 0, "error", "", "gone"),
	    "Start PostgreSQL first", "start-after-db", NULL);
	add(is, &step_logs, ENGINE_FINDING_WARN, "3 log lines mention the database", NULL, NULL,
	    json_pack("{s:[s,s]}", "sample",
		      "2026-11-27T23:39:20.944934902Z error: database check failed: connect 127.0.0.1:61432: refused",
		      "2026-11-27T23:39:22.944934902Z error: database check failed: connect 127.0.0.1:61432: refused"),
	    "Read them", NULL, NULL);
	add(is, &step_env, ENGINE_FINDING_OK, "every required variable is set", NULL, NULL,
	    json_pack("{s:i}", "missing_count", 0), NULL, NULL, NULL);
	assert_int_equal(diag_issue_add_skipped(is, "backend-env-file", "backend/.env",
						"'${config.services.backend.env_file}': configuration key 'services.backend.env_file' is not set"),
			 0);
	/* The same fix from another check: one entry, two reasons. */
	add(is, &step_idle, ENGINE_FINDING_PROBLEM, "postgres does not answer", NULL, NULL, NULL, NULL,
	    "start-after-db", NULL);

	assert_int_equal(diag_set_add(&rep->before, "db-pool", "diagnose-db-pool", "Database connection pool exhausted", &is), 0);
	add(is, &step_idle, ENGINE_FINDING_WARN, "2 connections idle for more than 5m", "idle_older: expected 0, got 2",
	    NULL, json_pack("{s:i,s:[i,i]}", "idle_older", 2, "idle_older_pids", 101, 102),
	    "Terminate them", "kill-idle-connections", json_pack("{s:s}", "older_than", "5m"));
	add(is, &step_pg, ENGINE_FINDING_WARN, "Connections", NULL, "cannot connect to postgres", NULL, NULL,
	    NULL, NULL);

	assert_int_equal(diag_set_add(&rep->before, "email", "diagnose-email", NULL, &is), 0);
	assert_int_equal(diag_issue_set_error(is, "unknown runbook 'diagnose-email'"), 0);
}

static void test_model(void **state)
{
	struct diag_report rep;
	size_t c[3];

	(void)state;
	build(&rep);
	assert_int_equal(rep.before.items[0].status, ENGINE_FINDING_PROBLEM);
	assert_int_equal(rep.before.items[1].status, ENGINE_FINDING_WARN);
	assert_int_equal(rep.before.items[2].status, ENGINE_FINDING_PROBLEM);
	assert_string_equal(rep.before.items[2].title, "email");
	assert_string_equal(rep.before.items[0].findings[2].title, "backend-env"); /* no description */
	assert_int_equal(diag_set_status(&rep.before), ENGINE_FINDING_PROBLEM);
	diag_set_count(&rep.before, c);
	assert_int_equal(c[ENGINE_FINDING_OK], 0);
	assert_int_equal(c[ENGINE_FINDING_WARN], 1);
	assert_int_equal(c[ENGINE_FINDING_PROBLEM], 2);

	assert_int_equal(diag_collect_fixes(&rep), 0);
	assert_int_equal(rep.nfixes, 2);
	assert_string_equal(rep.fixes[0].runbook, "start-after-db");
	assert_int_equal(json_array_size(rep.fixes[0].needed_by), 2);
	assert_string_equal(json_string_value(json_array_get(rep.fixes[0].needed_by, 1)),
			    "backend-crash/idle-connections");
	assert_string_equal(rep.fixes[1].runbook, "kill-idle-connections");
	assert_string_equal(json_string_value(json_object_get(rep.fixes[1].params, "older_than")), "5m");
	assert_int_equal(rep.fixes[1].result, DIAG_FIX_PENDING);

	assert_null(diag_issue_def("nope"));
	assert_non_null(diag_issue_def("trending"));
	assert_string_equal(diag_fix_result_name(DIAG_FIX_REFUSED), "refused");
	diag_report_release(&rep);
	assert_int_equal(rep.before.n, 0);
	assert_int_equal(diag_set_status(&rep.before), ENGINE_FINDING_OK);
}

/* A check not run because its service is unreachable (or the deadline
 * passed) is listed as skipped and raises the issue like a check that
 * could not run; a plain skip does not. */
static void test_unchecked(void **state)
{
	struct diag_set set = { 0 };
	struct diag_issue *is;
	json_t *j, *issue;
	struct diag_report rep;

	(void)state;
	assert_int_equal(diag_set_add(&set, "trending", "diagnose-trending", "Trending", &is), 0);
	assert_int_equal(diag_issue_add_skipped(is, "a", NULL, "configuration key 'x' is not set"), 0);
	assert_int_equal(is->status, ENGINE_FINDING_OK);
	assert_int_equal(diag_issue_add_unchecked(is, "posts", "Posts", "postgres unreachable: no answer within 2s",
						  ENGINE_FINDING_WARN), 0);
	assert_int_equal(is->status, ENGINE_FINDING_WARN);
	assert_int_equal(diag_issue_add_unchecked(is, "views", NULL, "not started: the run's deadline (3s) passed",
						  ENGINE_FINDING_PROBLEM), 0);
	assert_int_equal(is->status, ENGINE_FINDING_PROBLEM);
	assert_int_equal(is->nskipped, 3);
	assert_int_equal(is->nfindings, 0);
	memset(&rep, 0, sizeof(rep));
	rep.before = set;
	j = diag_render_json(&rep);
	assert_non_null(j);
	issue = json_array_get(json_object_get(j, "issues"), 0);
	assert_string_equal(json_string_value(json_object_get(issue, "status")), "problem");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(issue, "skipped"), 1), "reason")),
			    "postgres unreachable: no answer within 2s");
	json_decref(j);
	diag_report_release(&rep);
}

static void test_text(void **state)
{
	struct diag_report rep;
	struct diag_render_opts o = { 0, 0, "spilttea-ops diagnose backend-crash", DIAG_PART_ALL };
	char *text;

	(void)state;
	build(&rep);
	assert_int_equal(diag_collect_fixes(&rep), 0);
	text = diag_render_text(&rep, &o);
	assert_non_null(text);
	/* The table: every check, issue named once, columns aligned. */
	assert_non_null(strstr(text,
		"ISSUE          CHECK             STATUS   FINDING\n"
		"backend-crash  postgres-health   problem  postgres container is exited\n"
		"               backend-logs      warn     3 log lines mention the database\n"
		"               backend-env       ok       every required variable is set\n"
		"               idle-connections  problem  postgres does not answer\n"
		"               backend-env-file  -        not checked: '${config.services.backend.env_file}': "
		"configuration key 'services.backend.env_file' is not set\n"
		"db-pool        idle-connections  warn     2 connections idle for more than 5m\n"
		"               postgres-health   warn     cannot check: cannot connect to postgres\n"
		"email          -                 problem  unknown runbook 'diagnose-email'\n"));
	/* Details: why, evidence (empty values left out), fix, safe fix. */
	assert_non_null(strstr(text,
		"\nbackend-crash: Backend container crashes on startup (problem)\n"
		"  problem postgres-health: postgres container is exited\n"
		"      running: expected true, got false\n"
		"      status=exited exit_code=0\n"
		"      fix: Start PostgreSQL first\n"
		"      safe fix: start-after-db\n"
		"  warn backend-logs: 3 log lines mention the database\n"
		"      sample:\n"
		"        2026-11-27T23:39:20.944934902Z error: database check failed: connect 127.0.0.1:61432: refused\n"));
	assert_non_null(strstr(text, "      safe fix: kill-idle-connections older_than=5m\n"));
	assert_non_null(strstr(text, "      cannot check: cannot connect to postgres\n"));
	assert_non_null(strstr(text, "\nemail: email (problem)\n  cannot run diagnose-email: unknown runbook 'diagnose-email'\n"));
	/* ok findings show no details unless verbose. */
	assert_null(strstr(text, "ok backend-env:"));
	assert_non_null(strstr(text, "diagnosis: problem - 3 issues: 2 problem, 1 warning, 0 ok\n"
				     "safe fixes: start-after-db, kill-idle-connections older_than=5m\n"
				     "apply them (each step confirmed): spilttea-ops diagnose backend-crash --fix\n"));
	assert_null(strchr(text, '\033'));
	free(text);

	o.verbose = 1;
	o.color = 1;
	text = diag_render_text(&rep, &o);
	assert_non_null(strstr(text, "\033[32mok\033[0m backend-env: every required variable is set\n"));
	assert_non_null(strstr(text, "\033[31mproblem\033[0m"));
	free(text);

	/* After --fix: the outcome part lists the fixes and the issues checked again. */
	{
		struct diag_issue *is;

		rep.fix_requested = 1;
		rep.fixes[0].result = DIAG_FIX_DONE;
		snprintf(rep.fixes[0].run_id, sizeof(rep.fixes[0].run_id), "20261127_1-1");
		rep.fixes[1].result = DIAG_FIX_REFUSED;
		rep.fixes[1].error = strdup("fix 'kill-idle-connections' not confirmed");
		assert_int_equal(diag_set_add(&rep.after, "backend-crash", "diagnose-backend-crash",
					      "Backend container crashes on startup", &is), 0);
		add(is, &step_pg, ENGINE_FINDING_OK, "postgres is running", NULL, NULL, NULL, NULL, NULL, NULL);
		o.verbose = 0;
		o.color = 0;
		o.part = DIAG_PART_DIAGNOSIS;
		text = diag_render_text(&rep, &o);
		assert_null(strstr(text, "safe fixes:"));
		assert_null(strstr(text, "checked again"));
		free(text);
		o.part = DIAG_PART_OUTCOME;
		text = diag_render_text(&rep, &o);
		assert_non_null(text);
		assert_string_equal(text,
			"\nfixes:\n"
			"  done    start-after-db (for backend-crash/postgres-health, backend-crash/idle-connections) "
			"journal run 20261127_1-1\n"
			"  refused kill-idle-connections older_than=5m (for db-pool/idle-connections)\n"
			"          fix 'kill-idle-connections' not confirmed\n"
			"\nchecked again after the fixes:\n"
			"ISSUE          CHECK            STATUS  FINDING\n"
			"backend-crash  postgres-health  ok      postgres is running\n"
			"\nafter the fixes: ok - 1 issue: 0 problem, 0 warning, 1 ok\n");
		free(text);
	}
	diag_report_release(&rep);
}

static void test_json(void **state)
{
	struct diag_report rep;
	json_t *j, *issue, *f;
	struct diag_issue *is;

	(void)state;
	build(&rep);
	assert_int_equal(diag_collect_fixes(&rep), 0);
	j = diag_render_json(&rep);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "problem");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "counts"), "problem")), 2);
	assert_int_equal(json_array_size(json_object_get(j, "issues")), 3);
	issue = json_array_get(json_object_get(j, "issues"), 0);
	assert_string_equal(json_string_value(json_object_get(issue, "id")), "backend-crash");
	assert_string_equal(json_string_value(json_object_get(issue, "runbook")), "diagnose-backend-crash");
	assert_int_equal(json_array_size(json_object_get(issue, "findings")), 4);
	f = json_array_get(json_object_get(issue, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "check")), "postgres-health");
	assert_string_equal(json_string_value(json_object_get(f, "status")), "problem");
	assert_string_equal(json_string_value(json_object_get(f, "fix_runbook")), "start-after-db");
	assert_true(json_is_object(json_object_get(f, "fix_params")));
	/* JSON keeps the empty evidence the text leaves out. */
	assert_string_equal(json_string_value(json_object_get(json_object_get(f, "evidence"), "error")), "");
	f = json_array_get(json_object_get(issue, "findings"), 2);
	assert_null(json_object_get(f, "fix"));
	assert_null(json_object_get(f, "fix_runbook"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(issue, "skipped"), 0),
							       "check")), "backend-env-file");
	issue = json_array_get(json_object_get(j, "issues"), 2);
	assert_string_equal(json_string_value(json_object_get(issue, "error")), "unknown runbook 'diagnose-email'");
	assert_int_equal(json_array_size(json_object_get(j, "fixes")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "fixes"), 1),
							       "result")), "pending");
	assert_null(json_object_get(j, "after"));
	json_decref(j);

	assert_int_equal(diag_set_add(&rep.after, "db-pool", "diagnose-db-pool", "x", &is), 0);
	j = diag_render_json(&rep);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "after"), "status")), "ok");
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "after"), "issues")), 1);
	json_decref(j);
	diag_report_release(&rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_unchecked),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
