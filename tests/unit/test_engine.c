#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "journal.h"
#include "lock.h"
#include "runbook.h"
#include "sbuf.h"
#include "testutil.h"
#include "timeutil.h"

/* ---- fake actions: every call is logged as "phase:step[:id]" ---------- */

static struct sbuf call_log;
static int probe_calls;
static volatile sig_atomic_t cancel_flag;

static void log_call(const struct engine_call *call, const char *id)
{
	sbuf_printf(&call_log, "%s%s:%s%s%s", call_log.len ? "|" : "", engine_phase_name(call->phase),
		    call->step, id ? ":" : "", id ? id : "");
}

static int fake_do(struct engine_call *call, const json_t *args, json_t **result,
		   struct st_error *err)
{
	const char *id = json_string_value(json_object_get(args, "id"));
	const json_t *res = json_object_get(args, "result");

	log_call(call, id);
	if (json_is_true(json_object_get(args, "cancel")))
		cancel_flag = 1;
	if (json_is_true(json_object_get(args, "fail"))) {
		const char *echo = json_string_value(json_object_get(args, "echo"));
		return st_error_set(err, ST_ESERVICE, "service refused%s%s", echo ? " " : "",
				    echo ? echo : "");
	}
	*result = res ? json_deep_copy(res) : json_pack("{s:s,s:i}", "id", id ? id : "", "n", 41);
	return 0;
}

static int fake_probe(struct engine_call *call, const json_t *args, json_t **result,
		      struct st_error *err)
{
	json_int_t after = json_integer_value(json_object_get(args, "ready_after"));

	(void)err;
	log_call(call, NULL);
	probe_calls++;
	*result = json_pack("{s:b,s:i}", "ready", probe_calls >= after, "calls", probe_calls);
	return 0;
}

static const struct engine_arg_spec do_args[] = {
	{ "id", ENGINE_ARG_STRING, 0, NULL, NULL },
	{ "result", ENGINE_ARG_ANY, 0, NULL, NULL },
	{ "fail", ENGINE_ARG_BOOL, 0, NULL, NULL },
	{ "cancel", ENGINE_ARG_BOOL, 0, NULL, NULL },
	{ "echo", ENGINE_ARG_STRING, 0, NULL, NULL },
	{ "password", ENGINE_ARG_STRING, 0, NULL, NULL },
	{ "credential", ENGINE_ARG_STRING, ENGINE_ARG_SECRET, NULL, NULL },
	{ "n", ENGINE_ARG_INT, 0, NULL, NULL },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec probe_args[] = {
	{ "ready_after", ENGINE_ARG_INT, 0, "1", NULL },
	{ NULL, 0, 0, NULL, NULL },
};

static int fake_broken(struct engine_call *call, const json_t *args, json_t **result,
		       struct st_error *err)
{
	(void)args;
	(void)result;
	log_call(call, NULL);
	return st_error_set(err, ST_ESERVICE, "cannot connect");
}

static int fake_gone(struct engine_call *call, const json_t *args, json_t **result,
		     struct st_error *err)
{
	(void)args;
	(void)result;
	log_call(call, NULL);
	return st_error_set(err, ST_EUNREACHABLE, "postgres unreachable: no answer within 2s");
}

static const struct engine_action fakes[] = {
	{ "t.broken", "always fails", NULL, ENGINE_ACTION_READ_ONLY, fake_broken },
	{ "t.gone", "its service is known to be down", NULL, ENGINE_ACTION_READ_ONLY, fake_gone },
	{ "t.do", "does something", do_args, 0, fake_do },
	{ "t.destroy", "loses data", do_args, ENGINE_ACTION_DESTRUCTIVE, fake_do },
	{ "t.probe", "looks", probe_args, ENGINE_ACTION_READ_ONLY, fake_probe },
	{ "t.peek", "looks, or fails echoing", do_args, ENGINE_ACTION_READ_ONLY, fake_do },
	{ "t.look", "returns its result argument", do_args, ENGINE_ACTION_READ_ONLY, fake_do },
	{ NULL, NULL, NULL, 0, NULL },
};

/* ---- fake UI ------------------------------------------------------------ */

struct ui_rec {
	struct sbuf plan;
	struct sbuf events;      /* "start:a|end:a:ok|..." */
	struct sbuf notices;
	int asked;
	int can_ask;
	const char *answer;
	char last_prompt[512];
	char last_word[128];
	int last_attempts;
	char last_detail[1024];
	struct sbuf codes;       /* "step:code|..." of every step_end with a code */
	struct sbuf findings;    /* "step:status:message[:why][:error][:fix][:fix_runbook params]|..." */
	json_t *evidence;        /* step -> evidence */
};

static void ui_plan(void *ud, const char *line)
{
	struct ui_rec *u = ud;

	sbuf_printf(&u->plan, "%s\n", line);
}

static void ui_start(void *ud, const struct engine_step_event *ev)
{
	struct ui_rec *u = ud;

	sbuf_printf(&u->events, "%s%s:%s", u->events.len ? "|" : "",
		    ev->phase == ENGINE_PHASE_UNDO ? "undo-start" : "start", ev->step->name);
}

static void ui_end(void *ud, const struct engine_step_event *ev)
{
	struct ui_rec *u = ud;

	sbuf_printf(&u->events, "|%s:%s:%s", ev->phase == ENGINE_PHASE_UNDO ? "undo-end" : "end",
		    ev->step->name, engine_result_name(ev->result));
	u->last_attempts = ev->attempts;
	snprintf(u->last_detail, sizeof(u->last_detail), "%s", ev->detail ? ev->detail : "");
	if (ev->code)
		sbuf_printf(&u->codes, "%s%s:%s", u->codes.len ? "|" : "", ev->step->name,
			    st_code_name(ev->code));
}

static void ui_notice(void *ud, const char *msg)
{
	struct ui_rec *u = ud;

	sbuf_printf(&u->notices, "%s\n", msg);
}

static int ui_confirm(void *ud, const char *prompt, const char *word, char *answer, size_t size)
{
	struct ui_rec *u = ud;

	u->asked++;
	snprintf(u->last_prompt, sizeof(u->last_prompt), "%s", prompt);
	snprintf(u->last_word, sizeof(u->last_word), "%s", word ? word : "");
	if (!u->can_ask)
		return 0;
	snprintf(answer, size, "%s", u->answer ? u->answer : "");
	return 1;
}

static void ui_finding(void *ud, const struct engine_finding *f)
{
	struct ui_rec *u = ud;
	char *params = json_dumps(f->fix_params, JSON_COMPACT | JSON_SORT_KEYS);

	sbuf_printf(&u->findings, "%s%s:%s:%s", u->findings.len ? "|" : "", f->step->name,
		    engine_finding_status_name(f->status), f->message);
	if (f->why)
		sbuf_printf(&u->findings, ":why=%s", f->why);
	if (f->error)
		sbuf_printf(&u->findings, ":error=%s", f->error);
	if (f->fix)
		sbuf_printf(&u->findings, ":fix=%s", f->fix);
	if (f->fix_runbook)
		sbuf_printf(&u->findings, ":run=%s %s", f->fix_runbook, params);
	free(params);
	if (!u->evidence)
		u->evidence = json_object();
	json_object_set(u->evidence, f->step->name, (json_t *)f->evidence);
}

static const char *lookup(void *ud, const char *path)
{
	(void)ud;
	if (!strcmp(path, "db"))
		return "spilttea";
	if (!strcmp(path, "services.backend.container"))
		return "spilttea-backend";
	return NULL;
}

struct fx {
	struct engine_registry *reg;
	char *dir;
	struct ui_rec ui_rec;
	struct engine_ui ui;
	struct engine_options opts;
	struct engine_report report;
	struct st_error err;
	struct runbook *rb;
	json_t *params;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct st_error err = { 0 };

	assert_int_equal(engine_registry_new(1, &fx->reg, &err), 0);
	assert_int_equal(engine_registry_add(fx->reg, fakes, &err), 0);
	fx->dir = tu_mkdtemp();
	fx->ui.ud = &fx->ui_rec;
	fx->ui.plan = ui_plan;
	fx->ui.step_start = ui_start;
	fx->ui.step_end = ui_end;
	fx->ui.notice = ui_notice;
	fx->ui.confirm = ui_confirm;
	fx->ui.finding = ui_finding;
	fx->ui_rec.can_ask = 1;
	fx->opts.state_dir = fx->dir;
	fx->opts.command_line = "spilttea-ops run test";
	fx->opts.lookup_config = lookup;
	fx->opts.cancel = &cancel_flag;
	fx->opts.ui = &fx->ui;
	sbuf_reset(&call_log);
	probe_calls = 0;
	cancel_flag = 0;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	runbook_free(fx->rb);
	json_decref(fx->params);
	engine_registry_free(fx->reg);
	tu_rmtree(fx->dir);
	free(fx->dir);
	sbuf_release(&fx->ui_rec.plan);
	sbuf_release(&fx->ui_rec.events);
	sbuf_release(&fx->ui_rec.notices);
	sbuf_release(&fx->ui_rec.findings);
	sbuf_release(&fx->ui_rec.codes);
	json_decref(fx->ui_rec.evidence);
	sbuf_release(&call_log);
	free(fx);
	return 0;
}

/* Loads text and parses key=value params (NULL-terminated list). */
static void load(struct fx *fx, const char *text, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;
	struct st_error err = { 0 };

	if (runbook_load_buffer(fx->reg, "t.yaml", text, strlen(text), &fx->rb, &err) != 0)
		fail_msg("load: %s", err.message);
	va_start(ap, text);
	while (argc < 16 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	if (engine_params_parse(fx->rb, argc, argv, &fx->params, &err) != 0)
		fail_msg("params: %s", err.message);
}

static int run(struct fx *fx)
{
	return engine_run(fx->rb, fx->params, &fx->opts, &fx->report, &fx->err);
}

/* All journal records of the run as an array (caller frees). */
static int collect(void *ud, const json_t *rec, size_t line)
{
	(void)line;
	json_array_append((json_t *)ud, (json_t *)rec);
	return 0;
}

static json_t *journal_records(struct fx *fx)
{
	json_t *all = json_array();
	struct st_error err = { 0 };
	char path[600];
	size_t bad = 0;

	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->dir);
	assert_int_equal(journal_foreach(path, collect, all, &bad, &err), 0);
	assert_int_equal(bad, 0);
	return all;
}

/* "phase:step:result" of every step record, joined with '|' (caller frees). */
static char *journal_steps(struct fx *fx)
{
	json_t *all = journal_records(fx), *r;
	struct sbuf sb = SBUF_INIT;
	size_t i;

	json_array_foreach(all, i, r) {
		if (strcmp(json_string_value(json_object_get(r, "type")), "step"))
			continue;
		sbuf_printf(&sb, "%s%s:%s:%s", sb.len ? "|" : "",
			    json_string_value(json_object_get(r, "phase")),
			    json_string_value(json_object_get(r, "step")),
			    json_string_value(json_object_get(r, "result")));
	}
	json_decref(all);
	return sbuf_detach(&sb);
}

static const char *end_result(struct fx *fx, char *buf, size_t size)
{
	json_t *all = journal_records(fx);
	json_t *last = json_array_get(all, json_array_size(all) - 1);

	assert_string_equal(json_string_value(json_object_get(last, "type")), "end");
	snprintf(buf, size, "%s", json_string_value(json_object_get(last, "result")));
	json_decref(all);
	return buf;
}

#define ASSERT_LOG(want) assert_string_equal(sbuf_str(&call_log), want)
#define ASSERT_JOURNAL(fx, want) do { \
	char *j_ = journal_steps(fx); \
	assert_string_equal(j_, want); \
	free(j_); \
} while (0)

/* ---- tests ---------------------------------------------------------------- */

static void test_order_and_results(void **state)
{
	struct fx *fx = *state;
	char buf[32];

	load(fx,
	     "name: t\nlock: t\nsteps:\n"
	     "  - { name: a, action: t.do, args: { id: first } }\n"
	     "  - { name: b, action: t.do, args: { id: \"${steps.a.id}-${config.db}\", n: \"${steps.a.n}\" } }\n"
	     "  - { name: c, action: t.do, args: { id: \"${steps.b.id}\" } }\n", NULL);
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("act:a:first|act:b:first-spilttea|act:c:first-spilttea");
	assert_string_equal(sbuf_str(&fx->ui_rec.events),
			    "start:a|end:a:ok|start:b|end:b:ok|start:c|end:c:ok");
	assert_int_equal(fx->report.ok, 3);
	assert_int_equal(fx->report.failed, 0);
	assert_true(fx->report.run_id[0] != '\0');
	ASSERT_JOURNAL(fx, "act:a:ok|act:b:ok|act:c:ok");
	assert_string_equal(end_result(fx, buf, sizeof(buf)), "ok");
	/* The lock is released (its file removed) when the run ends. */
	{
		char path[700];
		snprintf(path, sizeof(path), "%s/locks/t.lock", fx->dir);
		assert_int_equal(access(path, F_OK), -1);
	}
}

static void test_check_abort(void **state)
{
	struct fx *fx = *state;
	char buf[32];

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: x }\n"
	     "    undo: { action: t.do, args: { id: undo-a } }\n"
	     "  - name: b\n    action: t.do\n    args: { id: y }\n"
	     "    check: { action: t.probe, args: { ready_after: 99 }, expect: { ready: true } }\n"
	     "  - { name: c, action: t.do, args: { id: z } }\n", NULL);
	assert_int_equal(run(fx), ST_EABORTED);
	assert_string_equal(fx->err.message,
			    "precondition of step 'b' not met: ready: expected true, got false");
	/* b and c never acted; a, which did, was compensated. */
	ASSERT_LOG("act:a:x|check:b|undo:a:undo-a");
	ASSERT_JOURNAL(fx, "act:a:ok|check:b:aborted|undo:a:undone");
	assert_string_equal(end_result(fx, buf, sizeof(buf)), "aborted");
	assert_string_equal(sbuf_str(&fx->ui_rec.events),
			    "start:a|end:a:ok|start:b|end:b:aborted|undo-start:a|undo-end:a:undone");
}

static void test_check_abort_first_step_acts_nothing(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: x }\n"
	     "    check: { action: t.probe, args: { ready_after: 2 }, expect: { calls: \"> 1\" } }\n",
	     NULL);
	assert_int_equal(run(fx), ST_EABORTED);
	ASSERT_LOG("check:a");
	assert_int_equal(fx->report.ok, 0);
}

static void test_check_skip(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: x }\n"
	     "    check: { action: t.probe, expect: { ready: false }, on_fail: skip }\n"
	     "  - { name: b, action: t.do, args: { id: y } }\n", NULL);
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("check:a|act:b:y");
	assert_int_equal(fx->report.skipped, 1);
	assert_int_equal(fx->report.ok, 1);
	ASSERT_JOURNAL(fx, "check:a:skipped|act:b:ok");
	assert_string_equal(sbuf_str(&fx->ui_rec.events), "start:a|end:a:skipped|start:b|end:b:ok");
}

static void test_verify_polls_until_it_holds(void **state)
{
	struct fx *fx = *state;
	json_t *all, *r;
	size_t i;
	int seen = 0;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: x }\n"
	     "    verify: { action: t.probe, args: { ready_after: 3 }, expect: { ready: true },"
	     " timeout: 5s, interval: 10ms }\n", NULL);
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("act:a:x|verify:a|verify:a|verify:a");
	assert_int_equal(fx->ui_rec.last_attempts, 3);
	ASSERT_JOURNAL(fx, "act:a:ok|verify:a:ok");
	all = journal_records(fx);
	json_array_foreach(all, i, r)
		if (json_integer_value(json_object_get(r, "attempts")) == 3)
			seen = 1;
	assert_true(seen);
	json_decref(all);
}

static void test_verify_timeout_undoes_the_step(void **state)
{
	struct fx *fx = *state;
	const char *want = "step 'a' failed: verify did not hold within 1.0s (";

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: x }\n"
	     "    verify: { action: t.probe, args: { ready_after: 1000 }, expect: { ready: true },"
	     " timeout: 1s, interval: 20ms }\n"
	     "    undo: { action: t.do, args: { id: \"${steps.a.id}\" } }\n", NULL);
	assert_int_equal(run(fx), ST_EFAILED);
	if (strncmp(fx->err.message, want, strlen(want)))
		fail_msg("message '%s'", fx->err.message);
	assert_non_null(strstr(fx->err.message, "attempts): ready: expected true, got false"));
	/* Polled again and again, never more often than the interval: at
	 * most 1 + 1s / 20ms. (The window is a second, not less: on a loaded
	 * machine under ASan a 150 ms window held only two polls.) */
	assert_true(probe_calls >= 3 && probe_calls <= 51);
	assert_non_null(strstr(sbuf_str(&call_log), "|undo:a:x"));
	ASSERT_JOURNAL(fx, "act:a:ok|verify:a:failed|undo:a:undone");
	assert_int_equal(fx->report.undone, 1);
}

static void test_unresolvable_verify_and_failing_check(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: x }\n"
	     "    check: { action: t.broken, on_fail: skip }\n"
	     "  - name: b\n    action: t.do\n    args: { id: y }\n"
	     "    verify: { action: t.probe, args: { ready_after: \"${steps.b.missing}\" } }\n"
	     "    undo: { action: t.do, args: { id: ub } }\n", NULL);
	assert_int_equal(run(fx), ST_EFAILED);
	/* The check's action failing counts as "not met": a is skipped. */
	ASSERT_LOG("check:a|act:b:y|undo:b:ub");
	assert_string_equal(fx->err.message,
			    "step 'b' failed: '${steps.b.missing}': the result of step 'b' has no 'missing'");
	ASSERT_JOURNAL(fx, "check:a:skipped|act:b:ok|verify:b:failed|undo:b:undone");
}

static void test_undo_in_reverse_order(void **state)
{
	struct fx *fx = *state;
	char buf[32];

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: a }\n"
	     "    undo: { action: t.do, args: { id: ua } }\n"
	     "  - { name: b, action: t.do, args: { id: b } }\n"
	     "  - name: c\n    action: t.do\n    args: { id: c }\n"
	     "    undo: { action: t.do, args: { id: uc } }\n"
	     "  - name: d\n    action: t.do\n    args: { id: d, fail: true }\n"
	     "    undo: { action: t.do, args: { id: ud } }\n"
	     "  - { name: e, action: t.do, args: { id: e } }\n", NULL);
	assert_int_equal(run(fx), ST_EFAILED);
	assert_string_equal(fx->err.message, "step 'd' failed: service refused");
	ASSERT_LOG("act:a:a|act:b:b|act:c:c|act:d:d|undo:c:uc|undo:a:ua");
	ASSERT_JOURNAL(fx, "act:a:ok|act:b:ok|act:c:ok|act:d:failed|undo:c:undone|undo:a:undone");
	assert_string_equal(end_result(fx, buf, sizeof(buf)), "failed");
	assert_int_equal(fx->report.ok, 3);
	assert_int_equal(fx->report.failed, 1);
	assert_int_equal(fx->report.undone, 2);
	assert_non_null(strstr(sbuf_str(&fx->ui_rec.notices), "undoing 2 completed steps"));
}

static void test_failed_undo_is_reported(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: a }\n"
	     "    undo: { action: t.do, args: { id: ua } }\n"
	     "  - name: b\n    action: t.do\n    args: { id: b }\n"
	     "    undo: { action: t.do, args: { id: ub, fail: true } }\n"
	     "  - { name: c, action: t.do, args: { id: c, fail: true } }\n", NULL);
	assert_int_equal(run(fx), ST_EFAILED);
	ASSERT_LOG("act:a:a|act:b:b|act:c:c|undo:b:ub|undo:a:ua");
	ASSERT_JOURNAL(fx, "act:a:ok|act:b:ok|act:c:failed|undo:b:failed|undo:a:undone");
	assert_int_equal(fx->report.undo_failed, 1);
	assert_non_null(strstr(fx->err.hint, "undo of step 'b' failed: service refused"));
	assert_non_null(strstr(fx->err.hint, "check its state by hand"));
}

static const char *confirm_rb =
	"name: t\nsteps:\n"
	"  - { name: a, action: t.do, args: { id: a } }\n"
	"  - name: wipe\n    confirm: \"Wipe ${config.services.backend.container}?\"\n"
	"    action: t.destroy\n    args: { id: w }\n";

static void test_confirm_refused(void **state)
{
	struct fx *fx = *state;

	load(fx, confirm_rb, NULL);
	fx->ui_rec.answer = "n";
	assert_int_equal(run(fx), ST_EABORTED);
	assert_string_equal(fx->err.message, "confirmation of step 'wipe' refused");
	assert_string_equal(fx->ui_rec.last_prompt, "Wipe spilttea-backend?");
	assert_string_equal(fx->ui_rec.last_word, "");
	ASSERT_LOG("act:a:a");
	ASSERT_JOURNAL(fx, "act:a:ok|confirm:wipe:aborted");
}

static void test_confirm_accepted(void **state)
{
	struct fx *fx = *state;

	load(fx, confirm_rb, NULL);
	fx->ui_rec.answer = "YES";
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("act:a:a|act:wipe:w");
	ASSERT_JOURNAL(fx, "act:a:ok|confirm:wipe:ok|act:wipe:ok");
}

static void test_no_terminal_without_yes(void **state)
{
	struct fx *fx = *state;

	load(fx, confirm_rb, NULL);
	fx->ui_rec.can_ask = 0;
	assert_int_equal(run(fx), ST_EABORTED);
	assert_string_equal(fx->err.message,
			    "step 'wipe' needs confirmation and there is no terminal to ask");
	assert_string_equal(fx->err.hint, "re-run with --yes to confirm: Wipe spilttea-backend?");
	ASSERT_LOG("act:a:a");

	/* No UI at all is the same as no terminal. */
	sbuf_reset(&call_log);
	fx->opts.ui = NULL;
	assert_int_equal(run(fx), ST_EABORTED);
	ASSERT_LOG("act:a:a");
}

static void test_yes_confirms_without_asking(void **state)
{
	struct fx *fx = *state;

	load(fx, confirm_rb, NULL);
	fx->ui_rec.can_ask = 0;
	fx->opts.assume_yes = 1;
	assert_int_equal(run(fx), 0);
	assert_int_equal(fx->ui_rec.asked, 0);
	ASSERT_LOG("act:a:a|act:wipe:w");
}

static void test_typed_confirmation(void **state)
{
	struct fx *fx = *state;
	static const char *wrong[] = { "yes", "spilttea ", "Spilttea", "" };
	size_t i;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: drop\n    confirm: { prompt: \"Drop database ${config.db}\", type: \"${config.db}\" }\n"
	     "    action: t.destroy\n    args: { id: d }\n", NULL);
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		fx->ui_rec.answer = wrong[i];
		assert_int_equal(run(fx), ST_EABORTED);
		assert_non_null(strstr(fx->err.message, "confirmation of step 'drop' refused: typed '"));
		assert_string_equal(fx->ui_rec.last_word, "spilttea");
		assert_string_equal(fx->ui_rec.last_prompt, "Drop database spilttea");
	}
	ASSERT_LOG("");
	fx->ui_rec.answer = "spilttea";
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("act:drop:d");
}

static void test_dry_run_changes_nothing(void **state)
{
	struct fx *fx = *state;
	const char *plan;

	load(fx,
	     "name: t\ndescription: demo\nlock: t\n"
	     "params:\n  db_password: { required: true }\n  who: { default: ops }\n"
	     "steps:\n"
	     "  - name: a\n    description: first\n    action: t.do\n"
	     "    args: { id: \"${args.who}@${config.db}\", password: \"${args.db_password}\","
	     " credential: cred-xyz, echo: \"pw is ${args.db_password}\" }\n"
	     "    check: { action: t.probe, expect: { ready: true } }\n"
	     "    verify: { action: t.probe, expect: { calls: \"> 0\" }, timeout: 5s, interval: 1s }\n"
	     "    undo: { action: t.do, args: { id: \"${steps.a.id}\" } }\n"
	     "  - name: b\n    when: \"${args.who} == root\"\n    confirm: { prompt: sure?, type: \"${config.db}\" }\n"
	     "    action: t.destroy\n    args: { id: \"${steps.a.n}\" }\n"
	     "    continue_on_error: true\n",
	     "db_password=hunter2", NULL);
	fx->opts.dry_run = 1;
	fx->ui_rec.can_ask = 0;
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("");
	assert_int_equal(probe_calls, 0);
	assert_int_equal(fx->ui_rec.asked, 0);
	assert_int_equal(tu_count_entries(fx->dir), 0); /* no lock, no journal, nothing */
	plan = sbuf_str(&fx->ui_rec.plan);
	assert_null(strstr(plan, "hunter2"));
	assert_null(strstr(plan, "cred-xyz"));
	assert_string_equal(plan,
		"runbook t: demo\n"
		"source: t.yaml\n"
		"lock: t\n"
		"params:\n"
		"  db_password = ***\n"
		"  who = ops\n"
		"steps:\n"
		"  1. a: first\n"
		"     check: t.probe ready_after=1; expect ready == true; otherwise abort the run\n"
		"     run: t.do id=ops@spilttea password=*** credential=*** echo='pw is ***'\n"
		"     verify: t.probe ready_after=1; until calls > 0 (timeout 5.0s, every 1.0s)\n"
		"     undo: t.do id=${steps.a.id}\n"
		"  2. b\n"
		"     when: ${args.who} == root (false now: the step will be skipped)\n"
		"     confirm: sure? (type 'spilttea')\n"
		"     run: t.destroy id=${steps.a.n} (destructive)\n"
		"     on error: continue with the next step\n");
}

static void test_show_keeps_references(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };

	load(fx,
	     "name: t\nparams:\n  who: { default: ops, description: the user }\n  n: { required: true }\n"
	     "  opt: {}\nsteps:\n  - { name: a, action: t.do, args: { id: \"${args.who}@${config.db}\" } }\n",
	     "n=1", NULL);
	assert_int_equal(engine_plan(fx->rb, NULL, &fx->opts, &err), 0);
	assert_string_equal(sbuf_str(&fx->ui_rec.plan),
		"runbook t\n"
		"source: t.yaml\n"
		"lock: none\n"
		"params:\n"
		"  who = ops (default) - the user\n"
		"  n (required)\n"
		"  opt (optional)\n"
		"steps:\n"
		"  1. a\n"
		"     run: t.do id=${args.who}@${config.db}\n");
	assert_int_equal(tu_count_entries(fx->dir), 0);
}

static void test_dry_run_reports_missing_config(void **state)
{
	struct fx *fx = *state;

	load(fx, "name: t\nsteps:\n  - { name: a, action: t.do, args: { id: \"${config.nope}\" } }\n",
	     NULL);
	fx->opts.dry_run = 1;
	/* A configuration to fix: exit 2 (review item 9), not a failed step. */
	assert_int_equal(run(fx), ST_ECONFIG);
	assert_string_equal(fx->err.message,
			    "step 'a': '${config.nope}': configuration key 'nope' is not set");
	ASSERT_LOG("");
}

static void test_journal_is_json_without_secrets(void **state)
{
	struct fx *fx = *state;
	char path[600], *text, *line, *save = NULL;
	int lines = 0;

	load(fx,
	     "name: t\nparams:\n  db_password: { required: true }\nsteps:\n"
	     "  - { name: a, action: t.do, args: { id: a, password: \"${args.db_password}\","
	     " credential: cred-xyz } }\n"
	     "  - { name: b, action: t.do, args: { id: \"${args.db_password}\", fail: true,"
	     " echo: \"login with hunter2 and cred-xyz\" } }\n",
	     "db_password=hunter2", NULL);
	fx->opts.command_line = "spilttea-ops run t db_password=hunter2";
	assert_int_equal(run(fx), ST_EFAILED);
	assert_null(strstr(fx->err.message, "hunter2"));
	assert_null(strstr(fx->err.message, "cred-xyz"));
	assert_string_equal(fx->err.message, "step 'b' failed: service refused login with *** and ***");
	assert_null(strstr(fx->ui_rec.last_detail, "hunter2"));
	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->dir);
	text = tu_read(path);
	assert_null(strstr(text, "hunter2"));
	assert_null(strstr(text, "cred-xyz"));
	assert_non_null(strstr(text, "\"command\":\"spilttea-ops run t db_password=***\""));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t jerr;
		json_t *rec = json_loads(line, 0, &jerr);

		if (!rec)
			fail_msg("journal line is not JSON: %s", line);
		assert_true(json_is_object(rec));
		json_decref(rec);
		lines++;
	}
	assert_int_equal(lines, 4); /* start, a, b, end */
	free(text);
	assert_int_equal(tu_mode(path), 0600);
}

/* A long message of two-byte characters is cut inside one by the error
 * record; the journal still gets the step and end records (review: they
 * were dropped as "out of memory"). */
static void test_journal_keeps_records_with_cut_utf8(void **state)
{
	struct fx *fx = *state;
	struct sbuf rb = SBUF_INIT;
	char buf[32];
	int i;

	sbuf_puts(&rb, "name: t\nsteps:\n  - name: one\n    action: fail\n    args:\n      message: \"");
	for (i = 0; i < 600; i++)
		sbuf_puts(&rb, "\xc3\xa9");
	sbuf_puts(&rb, "\"\n");
	load(fx, sbuf_str(&rb), NULL);
	sbuf_release(&rb);
	assert_int_equal(run(fx), ST_EFAILED);
	assert_int_equal(fx->report.journal_failed, 0);
	ASSERT_JOURNAL(fx, "act:one:failed");
	assert_string_equal(end_result(fx, buf, sizeof(buf)), "failed");
}

/* More than 64 secrets: the earliest (a parameter) is still scrubbed
 * (review item 2: the list was capped and kept only the last 64). */
static void test_many_secrets(void **state)
{
	struct fx *fx = *state;
	struct sbuf rb = SBUF_INIT;
	char *journal, path[600];
	int i;

	sbuf_puts(&rb, "name: t\nparams:\n  db_password: { required: true }\nsteps:\n");
	for (i = 0; i < 70; i++)
		sbuf_printf(&rb, "  - { name: s%d, action: t.do, args: { id: s%d, password: tok%03d } }\n", i,
			    i, i);
	sbuf_puts(&rb, "  - { name: z, action: t.do, args: { fail: true, echo: \"login with hunter2 or tok001\" } }\n");
	load(fx, sbuf_str(&rb), "db_password=hunter2", NULL);
	sbuf_release(&rb);
	assert_int_equal(run(fx), ST_EFAILED);
	assert_string_equal(fx->err.message, "step 'z' failed: service refused login with *** or ***");
	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->dir);
	journal = tu_read(path);
	assert_null(strstr(journal, "hunter2"));
	assert_null(strstr(journal, "tok001"));
	free(journal);
}

/* A parameter is secret when it feeds a secret argument (declared, or under
 * a secret name at any depth) or says secret: true, whatever its own name;
 * then it never shows: not in the journal's start record, the command
 * line, the plan's parameters, nor in steps before the one that uses it
 * (review item 1). */
#define SECRET_PARAMS_RUNBOOK \
	"name: t\nlock: t\nparams:\n  x: { required: true }\n  y: { required: true }\n" \
	"  z: { required: true, secret: true }\n  who: { default: ops }\n" \
	"steps:\n" \
	"  - { name: early, action: t.do, args: { id: \"${args.x} ${args.y} ${args.z} ${args.who}\" } }\n" \
	"  - { name: env, action: t.do, args: { result: { env: { PGPASSWORD: \"${args.x}\" } } } }\n" \
	"  - { name: cred, action: t.do, args: { credential: \"pre-${args.y}\" } }\n"

static void test_secret_params_found_at_load(void **state)
{
	struct fx *fx = *state;
	const struct runbook_param *p;
	char path[600], *text;

	load(fx, SECRET_PARAMS_RUNBOOK, "x=hunter22", "y=sw0rdfish", "z=zebra-99", NULL);
	assert_non_null(p = runbook_find_param(fx->rb, "x"));
	assert_true(p->secret);
	assert_true(runbook_find_param(fx->rb, "y")->secret);
	assert_true(runbook_find_param(fx->rb, "z")->secret);
	assert_false(runbook_find_param(fx->rb, "who")->secret);
	fx->opts.command_line = "spilttea-ops run t x=hunter22 y=sw0rdfish z=zebra-99 who=ops";
	assert_int_equal(run(fx), 0);
	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->dir);
	text = tu_read(path);
	assert_null(strstr(text, "hunter22"));
	assert_null(strstr(text, "sw0rdfish"));
	assert_null(strstr(text, "zebra-99"));
	assert_non_null(strstr(text, "\"command\":\"spilttea-ops run t x=*** y=*** z=*** who=ops\""));
	assert_non_null(strstr(text, "\"params\":{\"x\":\"***\",\"y\":\"***\",\"z\":\"***\",\"who\":\"ops\"}"));
	assert_non_null(strstr(text, "\"id\":\"*** *** *** ops\""));
	free(text);
}

static void test_secret_params_in_the_plan(void **state)
{
	struct fx *fx = *state;
	const char *plan;

	load(fx, SECRET_PARAMS_RUNBOOK, "x=hunter22", "y=sw0rdfish", "z=zebra-99", NULL);
	fx->opts.dry_run = 1;
	assert_int_equal(run(fx), 0);
	plan = sbuf_str(&fx->ui_rec.plan);
	assert_null(strstr(plan, "hunter22"));
	assert_null(strstr(plan, "sw0rdfish"));
	assert_null(strstr(plan, "zebra-99"));
	assert_non_null(strstr(plan, "  x = ***\n  y = ***\n  z = ***\n  who = ops\n"));
	assert_non_null(strstr(plan, "run: t.do id='*** *** *** ops'"));
}

/* file.write's content may be a whole .env file: never in plan or journal
 * (review item 13). */
static void test_file_content_is_not_shown(void **state)
{
	struct fx *fx = *state;
	char rb[600], path[600], *text;

	snprintf(rb, sizeof(rb),
		 "name: t\nsteps:\n  - name: w\n    action: file.write\n"
		 "    args: { path: \"%s/out.env\", content: \"JWT=abc.def.ghi\\n\" }\n", fx->dir);
	load(fx, rb, NULL);
	fx->opts.dry_run = 1;
	assert_int_equal(run(fx), 0);
	assert_null(strstr(sbuf_str(&fx->ui_rec.plan), "abc.def"));
	assert_non_null(strstr(sbuf_str(&fx->ui_rec.plan), "content=***"));
	fx->opts.dry_run = 0;
	assert_int_equal(run(fx), 0);
	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->dir);
	text = tu_read(path);
	assert_null(strstr(text, "abc.def"));
	free(text);
}

/* The confirmation prompt is redacted like the plan (review item 14). */
static void test_confirm_prompt_is_redacted(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nparams:\n  db_password: { required: true }\nsteps:\n"
	     "  - { name: a, confirm: \"Rotate to ${args.db_password}?\", action: t.do, args: { id: a } }\n",
	     "db_password=hunter2", NULL);
	fx->ui_rec.answer = "y";
	assert_int_equal(run(fx), 0);
	assert_string_equal(fx->ui_rec.last_prompt, "Rotate to ***?");
	fx->ui_rec.can_ask = 0;
	assert_int_equal(run(fx), ST_EABORTED);
	assert_null(strstr(fx->err.hint, "hunter2"));
}

/* Interrupted while verifying: the reason journaled is redacted too
 * (review item 16). */
static void test_interrupted_verify_is_redacted(void **state)
{
	struct fx *fx = *state;
	char path[600], *text;

	load(fx,
	     "name: t\nparams:\n  db_password: { required: true }\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: a }\n"
	     "    verify: { action: t.peek, args: { cancel: true, id: \"${args.db_password}\" },"
	     " expect: { id: nope }, timeout: 5s, interval: 10ms }\n",
	     "db_password=hunter2", NULL);
	assert_int_equal(run(fx), ST_EABORTED);
	assert_null(strstr(fx->err.message, "hunter2"));
	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->dir);
	text = tu_read(path);
	assert_non_null(strstr(text, "interrupted while verifying: id: expected"));
	assert_null(strstr(text, "hunter2"));
	free(text);
}

static void test_when(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nparams:\n  mode: { default: safe }\nsteps:\n"
	     "  - { name: a, action: t.do, args: { id: a, result: { count: 0 } } }\n"
	     "  - { name: b, when: \"${steps.a.count} > 0\", action: t.do, args: { id: b } }\n"
	     "  - { name: c, when: \"${args.mode} == safe\", action: t.do, args: { id: c } }\n"
	     "  - { name: d, when: \"${args.mode}\", action: t.do, args: { id: d } }\n", NULL);
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("act:a:a|act:c:c|act:d:d");
	assert_int_equal(fx->report.skipped, 1);
	ASSERT_JOURNAL(fx, "act:a:ok|act:b:skipped|act:c:ok|act:d:ok");
	assert_string_equal(sbuf_str(&fx->ui_rec.events),
			    "start:a|end:a:ok|start:b|end:b:skipped|start:c|end:c:ok|start:d|end:d:ok");
}

static void test_when_that_cannot_be_evaluated_fails(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - { name: a, action: t.do, args: { id: a } }\n"
	     "  - { name: b, when: \"${steps.a.missing} > 0\", action: t.do, args: { id: b } }\n", NULL);
	assert_int_equal(run(fx), ST_EFAILED);
	assert_string_equal(fx->err.message,
			    "step 'b' failed: cannot evaluate 'when': '${steps.a.missing}': "
			    "the result of step 'a' has no 'missing'");
}

static void test_continue_on_error(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: a }\n"
	     "    undo: { action: t.do, args: { id: ua } }\n"
	     "  - { name: b, action: t.do, args: { id: b, fail: true }, continue_on_error: true }\n"
	     "  - { name: c, action: t.do, args: { id: c } }\n", NULL);
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("act:a:a|act:b:b|act:c:c");
	assert_int_equal(fx->report.failed, 1);
	assert_int_equal(fx->report.ok, 2);
	assert_non_null(strstr(sbuf_str(&fx->ui_rec.notices), "step 'b' failed; continuing"));
}

static void test_findings(void **state)
{
	struct fx *fx = *state;
	json_t *all, *r, *ev;
	size_t i, nfind = 0;

	load(fx,
	     "name: t\nparams: { limit: { default: 5 } }\nsteps:\n"
	     "  - name: a\n    action: t.look\n    args: { result: { n: 3, state: up } }\n"
	     "    finding: { expect: { n: '< ${args.limit}' }, message: 'n is ${steps.a.n}', ok: 'all good' }\n"
	     "  - name: b\n    action: t.look\n    args: { result: { n: 7 } }\n"
	     "    finding:\n      expect: { n: '< 10' }\n      warn_expect: { n: '< 5' }\n"
	     "      message: 'n is ${steps.b.n}'\n      fix: 'lower it'\n"
	     "  - name: c\n    action: t.look\n    args: { result: { n: 9, deep: { v: x } } }\n"
	     "    finding:\n      expect: { n: '< ${args.limit}' }\n      message: 'n is ${steps.c.n}'\n"
	     "      evidence: [n, deep.v, nowhere]\n"
	     "      fix: 'restart (n ${steps.c.n} from ${config.db})'\n      fix_runbook: restart-backend\n"
	     "      fix_params: { wait: '${steps.c.n}s', grace: '${steps.a.n}' }\n"
	     "  - name: d\n    action: t.look\n    args: { result: { n: 1 } }\n"
	     "    finding: { message: 'informational ${steps.d.n}', severity: warn }\n"
	     "  - name: e\n    description: E works\n    action: t.broken\n"
	     "    finding: { expect: { n: 0 }, message: 'never ${steps.e.n}', severity: warn, fix: 'fix e',"
	     " fix_runbook: analyze-post }\n"
	     "  - name: f\n    when: '${steps.e.n} == 1'\n    action: t.look\n"
	     "    finding: { message: f }\n"
	     "  - name: g\n    action: t.look\n    args: { id: '${config.nope}' }\n"
	     "    finding: { message: g }\n"
	     "  - name: h\n    when: '${steps.a.n} > 100'\n    action: t.look\n"
	     "    finding: { message: h }\n"
	     "  - { name: after, action: t.do, args: { id: '${steps.c.n}' } }\n", NULL);
	assert_int_equal(run(fx), 0);
	assert_string_equal(sbuf_str(&fx->ui_rec.findings),
			    "a:ok:all good"
			    "|b:warn:n is 7:why=n: expected < 5, got 7:fix=lower it"
			    "|c:problem:n is 9:why=n: expected < 5, got 9:fix=restart (n 9 from spilttea)"
			    ":run=restart-backend {\"grace\":3,\"wait\":\"9s\"}"
			    "|d:ok:informational 1"
			    "|e:warn:E works:error=cannot connect");
	/* Steps after the failed probe still run; skipped ones say why. */
	ASSERT_LOG("act:a|act:b|act:c|act:d|act:e|act:after:9");
	assert_string_equal(sbuf_str(&fx->ui_rec.events),
			    "start:a|end:a:ok|start:b|end:b:ok|start:c|end:c:ok|start:d|end:d:ok"
			    "|start:e|end:e:failed|start:f|end:f:skipped|start:g|end:g:skipped"
			    "|start:h|end:h:skipped|start:after|end:after:ok");
	assert_int_equal(fx->report.findings[ENGINE_FINDING_OK], 2);
	assert_int_equal(fx->report.findings[ENGINE_FINDING_WARN], 2);
	assert_int_equal(fx->report.findings[ENGINE_FINDING_PROBLEM], 1);
	assert_int_equal(fx->report.failed, 1);
	assert_int_equal(fx->report.skipped, 3);
	assert_string_equal(fx->ui_rec.last_detail, "");
	/* Evidence: the listed paths (absent ones null), else expect's paths. */
	ev = fx->ui_rec.evidence;
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "c"), "n")), 9);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "c"), "deep.v")), "x");
	assert_true(json_is_null(json_object_get(json_object_get(ev, "c"), "nowhere")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "b"), "n")), 7);
	assert_int_equal(json_object_size(json_object_get(ev, "d")), 0);
	assert_int_equal(json_object_size(json_object_get(ev, "e")), 0);
	/* The journal keeps every finding with its message. */
	all = journal_records(fx);
	json_array_foreach(all, i, r) {
		const char *f = json_string_value(json_object_get(r, "finding"));

		if (!f)
			continue;
		nfind++;
		if (!strcmp(json_string_value(json_object_get(r, "step")), "c")) {
			assert_string_equal(f, "problem");
			assert_string_equal(json_string_value(json_object_get(r, "message")), "n is 9");
		}
		if (!strcmp(json_string_value(json_object_get(r, "step")), "e")) {
			assert_string_equal(json_string_value(json_object_get(r, "result")), "failed");
			assert_string_equal(json_string_value(json_object_get(r, "error")), "cannot connect");
		}
	}
	assert_int_equal(nfind, 5);
	json_decref(all);
	ASSERT_JOURNAL(fx, "act:a:ok|act:b:ok|act:c:ok|act:d:ok|act:e:failed|act:f:skipped|act:g:skipped"
		       "|act:h:skipped|act:after:ok");
}

/* A finding step whose service was found unreachable earlier in the run
 * (ST_EUNREACHABLE, fail fast) is skipped with that error, not judged as
 * "cannot check"; a plain step failing so still fails. */
static void test_finding_unreachable_is_skipped(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.gone\n    finding: { message: a }\n"
	     "  - name: b\n    action: t.look\n    args: { result: { n: 1 } }\n"
	     "    finding: { expect: { n: 1 }, message: b }\n"
	     "  - name: c\n    action: t.gone\n    finding: { message: c, severity: warn }\n", NULL);
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("act:a|act:b|act:c");
	assert_string_equal(sbuf_str(&fx->ui_rec.findings), "b:ok:b");
	assert_string_equal(sbuf_str(&fx->ui_rec.events),
			    "start:a|end:a:skipped|start:b|end:b:ok|start:c|end:c:skipped");
	assert_string_equal(sbuf_str(&fx->ui_rec.codes), "a:unreachable|c:unreachable");
	assert_string_equal(fx->ui_rec.last_detail, "postgres unreachable: no answer within 2s");
	assert_int_equal(fx->report.skipped, 2);
	assert_int_equal(fx->report.failed, 0);
	runbook_free(fx->rb);
	json_decref(fx->params);
	fx->rb = NULL;
	fx->params = NULL;
	load(fx, "name: t\nsteps:\n  - name: a\n    action: t.gone\n", NULL);
	assert_int_equal(run(fx), ST_EFAILED);
	assert_non_null(strstr(fx->err.message, "postgres unreachable"));
}

/* Steps not started by the run's deadline are skipped (code ST_ETIMEOUT)
 * without calling their action. */
static void test_deadline_skips_the_rest(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.look\n    finding: { message: a }\n"
	     "  - name: b\n    action: t.look\n    finding: { message: b }\n", NULL);
	fx->opts.deadline = time_monotonic() - 0.001;
	fx->opts.deadline_s = 3;
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("");
	assert_string_equal(sbuf_str(&fx->ui_rec.findings), "");
	assert_string_equal(sbuf_str(&fx->ui_rec.events), "start:a|end:a:skipped|start:b|end:b:skipped");
	assert_string_equal(sbuf_str(&fx->ui_rec.codes), "a:timeout|b:timeout");
	assert_string_equal(fx->ui_rec.last_detail, "not started: the run's deadline (3s) passed");
	/* A deadline still ahead changes nothing. */
	runbook_free(fx->rb);
	json_decref(fx->params);
	fx->rb = NULL;
	fx->params = NULL;
	sbuf_reset(&fx->ui_rec.events);
	sbuf_reset(&fx->ui_rec.codes);
	load(fx, "name: t\nsteps:\n  - name: a\n    action: t.look\n    finding: { message: a }\n", NULL);
	fx->opts.deadline = time_monotonic() + 600;
	assert_int_equal(run(fx), 0);
	assert_string_equal(sbuf_str(&fx->ui_rec.events), "start:a|end:a:ok");
	assert_string_equal(sbuf_str(&fx->ui_rec.codes), "");
}

/* Secrets never reach a finding's message or evidence; a finding shows in
 * the plan. */
static void test_finding_secrets_and_plan(void **state)
{
	struct fx *fx = *state;
	char *dump;

	load(fx,
	     "name: t\nparams: { api_token: { required: true } }\nsteps:\n"
	     "  - name: a\n    action: t.look\n    args: { id: '${args.api_token}', result: { echo: '${args.api_token}' } }\n"
	     "    finding: { expect: { echo: none }, message: 'got ${steps.a.echo}', fix: 'not ${args.api_token}',"
	     " fix_runbook: restart-backend }\n",
	     "api_token=hunter2", NULL);
	assert_int_equal(run(fx), 0);
	assert_null(strstr(sbuf_str(&fx->ui_rec.findings), "hunter2"));
	assert_non_null(strstr(sbuf_str(&fx->ui_rec.findings), "a:problem:got ***"));
	dump = json_dumps(fx->ui_rec.evidence, JSON_COMPACT);
	assert_null(strstr(dump, "hunter2"));
	free(dump);

	fx->opts.dry_run = 1;
	assert_int_equal(run(fx), 0);
	assert_non_null(strstr(sbuf_str(&fx->ui_rec.plan),
			       "     finding: ok when echo == none; otherwise problem\n"
			       "     fix: not ${args.api_token}\n"
			       "     automatic fix: run restart-backend\n"));
}

static void test_keep_results(void **state)
{
	struct fx *fx = *state;

	load(fx, "name: t\nsteps:\n  - { name: a, action: t.do, args: { id: x, result: { deleted: 7 } } }\n"
		 "  - { name: b, when: '${steps.a.deleted} > 10', action: t.do, args: { id: y } }\n", NULL);
	assert_int_equal(run(fx), 0);
	assert_null(fx->report.results);
	fx->opts.keep_results = 1;
	assert_int_equal(run(fx), 0);
	assert_non_null(fx->report.results);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(fx->report.results, "a"),
							    "deleted")), 7);
	assert_null(json_object_get(fx->report.results, "b"));
	json_decref(fx->report.results);
}

static void test_locked_run_does_nothing(void **state)
{
	struct fx *fx = *state;
	struct st_lock *held = NULL;
	struct st_error err = { 0 };
	char path[600];

	load(fx, "name: t\nlock: backup\nsteps:\n  - { name: a, action: t.do, args: { id: a } }\n", NULL);
	assert_int_equal(lock_acquire(fx->dir, "backup", "spilttea-ops backup", &held, NULL, &err), 0);
	assert_int_equal(run(fx), ST_ELOCKED);
	assert_non_null(strstr(fx->err.message, "backup is locked by pid"));
	assert_non_null(strstr(fx->err.message, "(spilttea-ops backup)"));
	ASSERT_LOG("");
	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->dir);
	assert_int_equal(access(path, F_OK), -1);
	lock_release(held);
	assert_int_equal(run(fx), 0);
}

/* Several locks, named from the run's parameters (review 2 item 4): held
 * for the whole run, refused as a whole when one is taken. */
static void test_lock_list_from_params(void **state)
{
	struct fx *fx = *state;
	struct st_lock *held = NULL;
	struct st_error err = { 0 };
	char path[600];

	load(fx, "name: t\nlock: [backup, \"db:${args.db}\", svc:backend]\n"
	     "params: { db: { required: true } }\n"
	     "steps:\n  - { name: a, action: t.do, args: { id: a } }\n", "db=spilttea", NULL);
	assert_int_equal(lock_acquire(fx->dir, "db:spilttea", "spilttea-ops migrate up", &held, NULL, &err), 0);
	assert_int_equal(run(fx), ST_ELOCKED);
	assert_non_null(strstr(fx->err.message, "db:spilttea is locked by pid"));
	ASSERT_LOG("");
	/* Nothing of the set stays held. */
	snprintf(path, sizeof(path), "%s/locks/backup.lock", fx->dir);
	assert_int_equal(access(path, F_OK), -1);
	lock_release(held);
	assert_int_equal(lock_acquire(fx->dir, "svc:backend", "spilttea-ops deploy", &held, NULL, &err), 0);
	assert_int_equal(run(fx), ST_ELOCKED);
	assert_non_null(strstr(fx->err.message, "svc:backend is locked by pid"));
	lock_release(held);
	assert_int_equal(run(fx), 0);
	ASSERT_LOG("act:a:a");
}

/* A lock name that is not one once resolved is a usage error, before
 * anything runs. */
static void test_lock_name_resolving_to_garbage(void **state)
{
	struct fx *fx = *state;

	load(fx, "name: t\nlock: \"db:${args.db}\"\nparams: { db: { required: true } }\n"
	     "steps:\n  - { name: a, action: t.do, args: { id: a } }\n", "db=../../etc", NULL);
	assert_int_equal(run(fx), ST_EUSAGE);
	assert_non_null(strstr(fx->err.message, "invalid lock name 'db:../../etc'"));
	ASSERT_LOG("");
}

static void test_stale_lock_is_reported(void **state)
{
	struct fx *fx = *state;
	char path[600];

	load(fx, "name: t\nlock: deploy\nsteps:\n  - { name: a, action: t.do, args: { id: a } }\n", NULL);
	snprintf(path, sizeof(path), "%s/locks", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/locks/deploy.lock", fx->dir);
	/* pid 2^22 + 1 is above the default pid_max: nobody runs it. */
	tu_write(path, "pid=4194305\nstarted=1700000000\ncommand=spilttea-ops deploy\n");
	assert_int_equal(run(fx), 0);
	assert_non_null(strstr(sbuf_str(&fx->ui_rec.notices),
			       "stale lock from pid 4194305 (not running), taking it over"));
}

/* A run killed between steps (SIGKILL, a lost terminal) leaves its lock file
 * and a journal run without an end. The next run under the lock says what
 * that run left done and never undid, and ends it in the journal so that
 * this is said once (review 2 item 20: a restore killed after stopping the
 * backend left it stopped, and the next restore said nothing). */
static void test_unfinished_run_is_reported_once(void **state)
{
	struct fx *fx = *state;
	json_t *all, *r;
	char path[600];
	size_t i, ends = 0;

	load(fx,
	     "name: t\nlock: backup\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: a }\n"
	     "    undo: { action: t.do, args: { id: undo-a } }\n"
	     "  - name: stop\n    action: t.do\n    args: { id: s }\n"
	     "    undo: { action: t.look, args: { id: undo-s } }\n"
	     "  - name: swap\n    action: t.do\n    args: { id: w }\n"
	     "    undo: { action: t.do, args: { id: undo-w } }\n"
	     "  - { name: b, action: t.do, args: { id: b } }\n", NULL);
	snprintf(path, sizeof(path), "%s/locks", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/locks/backup.lock", fx->dir);
	tu_write(path, "pid=4194305\nstarted=1700000000\ncommand=spilttea-ops restore x\n");
	snprintf(path, sizeof(path), "%s/journal.jsonl", fx->dir);
	/* An earlier run of the same pid that ended, then the one that died
	 * after 'stop' (its 'swap' was undone before it died). */
	tu_write(path,
		 "{\"type\":\"start\",\"run\":\"r1\",\"time\":\"2026-11-01T00:00:00.000Z\",\"pid\":4194305,\"runbook\":\"t\"}\n"
		 "{\"type\":\"step\",\"run\":\"r1\",\"step\":\"a\",\"phase\":\"act\",\"result\":\"ok\"}\n"
		 "{\"type\":\"end\",\"run\":\"r1\",\"result\":\"ok\"}\n"
		 "{\"type\":\"start\",\"run\":\"r2\",\"time\":\"2026-11-28T02:00:00.000Z\",\"pid\":4194305,\"runbook\":\"t\"}\n"
		 "{\"type\":\"step\",\"run\":\"r2\",\"step\":\"a\",\"phase\":\"act\",\"result\":\"ok\"}\n"
		 "{\"type\":\"step\",\"run\":\"other\",\"step\":\"x\",\"phase\":\"act\",\"result\":\"ok\"}\n"
		 "{\"type\":\"step\",\"run\":\"r2\",\"step\":\"stop\",\"phase\":\"act\",\"result\":\"ok\"}\n"
		 "{\"type\":\"step\",\"run\":\"r2\",\"step\":\"swap\",\"phase\":\"check\",\"result\":\"ok\"}\n"
		 "{\"type\":\"step\",\"run\":\"r2\",\"step\":\"swap\",\"phase\":\"act\",\"result\":\"ok\"}\n"
		 "{\"type\":\"step\",\"run\":\"r2\",\"step\":\"swap\",\"phase\":\"undo\",\"result\":\"undone\"}\n");
	assert_int_equal(run(fx), 0);
	assert_non_null(strstr(sbuf_str(&fx->ui_rec.notices),
			       "warning: run r2 of 't' (started 2026-11-28T02:00:00.000Z) never finished: its "
			       "process 4194305 died after doing a (its undo t.do never ran), stop (its undo "
			       "t.look never ran); check what it left (journal "));
	/* r2 now has an end record, written by this run. */
	all = journal_records(fx);
	json_array_foreach(all, i, r) {
		if (strcmp(json_string_value(json_object_get(r, "type")), "end") ||
		    strcmp(json_string_value(json_object_get(r, "run")), "r2"))
			continue;
		ends++;
		assert_string_equal(json_string_value(json_object_get(r, "result")), "aborted");
		assert_non_null(strstr(json_string_value(json_object_get(r, "error")),
				       "its process 4194305 died before the run ended (found by run "));
	}
	json_decref(all);
	assert_int_equal(ends, 1);

	/* The same stale lock again: nothing left to report. */
	sbuf_reset(&fx->ui_rec.notices);
	snprintf(path, sizeof(path), "%s/locks/backup.lock", fx->dir);
	tu_write(path, "pid=4194305\nstarted=1700000000\ncommand=spilttea-ops restore x\n");
	assert_int_equal(run(fx), 0);
	assert_non_null(strstr(sbuf_str(&fx->ui_rec.notices), "stale lock from pid 4194305"));
	assert_null(strstr(sbuf_str(&fx->ui_rec.notices), "never finished"));
}

/* A confirm may show what the step's check found: until the action runs,
 * the step's result is the check's; afterwards the action's. A step whose
 * action failed has neither: a later step using it fails as for a step
 * that did not run. */
static void test_confirm_shows_what_the_check_found(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: wipe\n"
	     "    check: { action: t.look, args: { result: { age: 3d04h } } }\n"
	     "    confirm: \"Wipe a backup ${steps.wipe.age} old?\"\n"
	     "    action: t.destroy\n    args: { id: w }\n"
	     "  - { name: next, action: t.do, args: { id: \"${steps.wipe.id}\" } }\n"
	     "  - name: broken\n"
	     "    check: { action: t.look, args: { result: { id: from-check } } }\n"
	     "    action: t.do\n    args: { id: x, fail: true }\n    continue_on_error: true\n"
	     "  - { name: after, action: t.do, args: { id: \"${steps.broken.id}\" } }\n", NULL);
	fx->ui_rec.answer = "yes";
	assert_int_equal(run(fx), ST_EFAILED);
	assert_string_equal(fx->ui_rec.last_prompt, "Wipe a backup 3d04h old?");
	/* 'after' cannot run: broken has no result (and not its check's). */
	assert_non_null(strstr(fx->err.message, "step 'broken' has no result (it did not run)"));
	ASSERT_LOG("check:wipe|act:wipe:w|act:next:w|check:broken|act:broken:x");
}

static void test_confirm_uses_own_result_only_after_a_check(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	const char *text = "name: t\nsteps:\n"
			   "  - name: wipe\n    confirm: \"Wipe ${steps.wipe.age}?\"\n"
			   "    action: t.destroy\n    args: { id: w }\n";

	assert_int_not_equal(runbook_load_buffer(fx->reg, "t.yaml", text, strlen(text), &fx->rb, &err), 0);
	assert_non_null(strstr(err.message, "uses the result of step 'wipe' before it ran"));
}

static void test_interrupt_stops_and_undoes(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nsteps:\n"
	     "  - name: a\n    action: t.do\n    args: { id: a, cancel: true }\n"
	     "    undo: { action: t.do, args: { id: ua } }\n"
	     "  - { name: b, action: t.do, args: { id: b } }\n", NULL);
	assert_int_equal(run(fx), ST_EABORTED);
	assert_string_equal(fx->err.message, "interrupted before step 'b'");
	ASSERT_LOG("act:a:a|undo:a:ua");
}

static void test_interrupted_sleep(void **state)
{
	struct fx *fx = *state;
	double t0 = time(NULL);

	load(fx,
	     "name: t\nsteps:\n"
	     "  - { name: a, action: t.do, args: { id: a, cancel: true }, continue_on_error: true }\n"
	     "  - { name: b, action: sleep, args: { seconds: 30 } }\n", NULL);
	/* cancel is set by a, checked before b: the sleep never starts. */
	assert_int_equal(run(fx), ST_EABORTED);
	assert_true(time(NULL) - t0 < 5);
	{
		struct engine_call call = { .cancel = &cancel_flag };
		struct st_error err = { 0 };

		assert_int_equal(engine_call_sleep(&call, 30, &err), ST_EABORTED);
		cancel_flag = 0;
		assert_int_equal(engine_call_sleep(&call, 0.01, &err), 0);
	}
}

static void test_params(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	json_t *p = NULL;
	char *ok[] = { "name=x", "count=3" };
	char *bad_word[] = { "name" };
	char *unknown[] = { "name=x", "colour=red" };
	char *twice[] = { "name=x", "name=y" };

	static const char text[] =
		"name: t\nparams:\n  name: { required: true }\n  count: { default: 1 }\n  opt: {}\n"
		"steps: [{name: a, action: sleep, args: {seconds: 0}}]\n";

	assert_int_equal(runbook_load_buffer(fx->reg, "t.yaml", text, strlen(text), &fx->rb, &err), 0);
	assert_int_equal(engine_params_parse(fx->rb, 2, ok, &p, &err), 0);
	assert_string_equal(json_string_value(json_object_get(p, "name")), "x");
	assert_string_equal(json_string_value(json_object_get(p, "count")), "3");
	assert_true(json_is_null(json_object_get(p, "opt")));
	json_decref(p);
	assert_int_equal(engine_params_parse(fx->rb, 1, ok, &p, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(p, "count")), 1);
	json_decref(p);
	assert_int_equal(engine_params_parse(fx->rb, 0, NULL, &p, &err), ST_EUSAGE);
	assert_string_equal(err.message, "runbook 't' needs parameter 'name'");
	assert_string_equal(err.hint, "add name=VALUE (see 'spilttea-ops runbook show t')");
	assert_int_equal(engine_params_parse(fx->rb, 1, bad_word, &p, &err), ST_EUSAGE);
	assert_string_equal(err.message, "expected key=value, got 'name'");
	assert_int_equal(engine_params_parse(fx->rb, 2, unknown, &p, &err), ST_EUSAGE);
	assert_string_equal(err.message, "unknown parameter 'colour' for runbook 't'");
	assert_int_equal(engine_params_parse(fx->rb, 2, twice, &p, &err), ST_EUSAGE);
	assert_null(p);
}

static void test_run_time_argument_types(void **state)
{
	struct fx *fx = *state;

	load(fx,
	     "name: t\nparams:\n  n: { default: three }\nsteps:\n"
	     "  - { name: a, action: t.do, args: { id: a, n: \"${args.n}\" } }\n", NULL);
	assert_int_equal(run(fx), ST_EFAILED);
	assert_string_equal(fx->err.message,
			    "step 'a' failed: argument 'n' must be an integer, not 'three'");
	ASSERT_LOG("");
	ASSERT_JOURNAL(fx, "act:a:failed");
}

static void test_needs_state_dir(void **state)
{
	struct fx *fx = *state;

	load(fx, "name: t\nsteps:\n  - { name: a, action: t.do, args: { id: a } }\n", NULL);
	fx->opts.state_dir = NULL;
	assert_int_equal(run(fx), ST_EUSAGE);
	ASSERT_LOG("");
}

/* A state_dir where no lock or journal can be made: nothing runs, and it is
 * a configuration error (exit 2), not a failed run (review item 9). */
static void test_unusable_state_dir(void **state)
{
	struct fx *fx = *state;
	char file[600], bad[700];

	load(fx, "name: t\nlock: t\nsteps:\n  - { name: a, action: t.do, args: { id: a } }\n", NULL);
	snprintf(file, sizeof(file), "%s/file", fx->dir);
	tu_write(file, "x");
	snprintf(bad, sizeof(bad), "%s/state", file);
	fx->opts.state_dir = bad;
	assert_int_equal(run(fx), ST_ECONFIG);
	assert_non_null(strstr(fx->err.hint, "state_dir"));
	ASSERT_LOG("");
	runbook_free(fx->rb);
	json_decref(fx->params);
	load(fx, "name: t\nsteps:\n  - { name: a, action: t.do, args: { id: a } }\n", NULL);
	assert_int_equal(run(fx), ST_ECONFIG);
	ASSERT_LOG("");
	fx->opts.state_dir = fx->dir;
}

/* A parameter that is not UTF-8 is a usage error that says so. */
static void test_params_must_be_utf8(void **state)
{
	struct fx *fx = *state;
	struct st_error err = { 0 };
	char *argv[] = { "who=caf\xe9" };
	json_t *params = NULL;

	load(fx, "name: t\nparams:\n  who: {}\nsteps:\n  - { name: a, action: t.do, args: { id: a } }\n",
	     NULL);
	assert_int_equal(engine_params_parse(fx->rb, 1, argv, &params, &err), ST_EUSAGE);
	assert_null(params);
	assert_string_equal(err.message, "parameter 'who' is not valid UTF-8");
}

static const char *lookup_state_dir(void *ud, const char *path)
{
	return !strcmp(path, "state_dir") ? ud : NULL;
}

static void test_selftest_runbook(void **state)
{
	struct fx *fx = *state;
	struct runbook_catalog *cat = NULL;
	struct st_error err = { 0 };
	char path[600], *text;

	assert_int_equal(runbook_catalog_open(fx->reg, NULL, &cat, &err), 0);
	assert_int_equal(runbook_catalog_load(cat, "selftest", &fx->rb, &err), 0);
	runbook_catalog_free(cat);
	assert_int_equal(engine_params_parse(fx->rb, 0, NULL, &fx->params, &err), 0);
	fx->opts.lookup_config = NULL;
	assert_int_equal(run(fx), ST_EFAILED);
	assert_non_null(strstr(fx->err.message, "configuration key 'state_dir' is not set"));

	fx->opts.lookup_config = lookup_state_dir;
	fx->opts.config_ud = fx->dir;
	assert_int_equal(run(fx), 0);
	snprintf(path, sizeof(path), "%s/selftest.probe", fx->dir);
	text = tu_read(path);
	assert_string_equal(text, "spilttea-ops selftest\n");
	free(text);
	assert_int_equal(tu_mode(path), 0600);
	ASSERT_JOURNAL(fx, "act:write-probe:failed|act:write-probe:ok|verify:write-probe:ok");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_order_and_results),
		T(test_check_abort),
		T(test_check_abort_first_step_acts_nothing),
		T(test_check_skip),
		T(test_verify_polls_until_it_holds),
		T(test_verify_timeout_undoes_the_step),
		T(test_unresolvable_verify_and_failing_check),
		T(test_undo_in_reverse_order),
		T(test_failed_undo_is_reported),
		T(test_confirm_refused),
		T(test_confirm_accepted),
		T(test_no_terminal_without_yes),
		T(test_yes_confirms_without_asking),
		T(test_typed_confirmation),
		T(test_dry_run_changes_nothing),
		T(test_show_keeps_references),
		T(test_dry_run_reports_missing_config),
		T(test_journal_is_json_without_secrets),
		T(test_journal_keeps_records_with_cut_utf8),
		T(test_many_secrets),
		T(test_secret_params_found_at_load),
		T(test_secret_params_in_the_plan),
		T(test_file_content_is_not_shown),
		T(test_confirm_prompt_is_redacted),
		T(test_interrupted_verify_is_redacted),
		T(test_when),
		T(test_when_that_cannot_be_evaluated_fails),
		T(test_continue_on_error),
		T(test_findings),
		T(test_finding_unreachable_is_skipped),
		T(test_deadline_skips_the_rest),
		T(test_finding_secrets_and_plan),
		T(test_keep_results),
		T(test_locked_run_does_nothing),
		T(test_lock_list_from_params),
		T(test_lock_name_resolving_to_garbage),
		T(test_stale_lock_is_reported),
		T(test_unfinished_run_is_reported_once),
		T(test_confirm_shows_what_the_check_found),
		T(test_confirm_uses_own_result_only_after_a_check),
		T(test_interrupt_stops_and_undoes),
		T(test_interrupted_sleep),
		T(test_params),
		T(test_run_time_argument_types),
		T(test_needs_state_dir),
		T(test_unusable_state_dir),
		T(test_params_must_be_utf8),
		T(test_selftest_runbook),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
