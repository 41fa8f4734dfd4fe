#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "engine.h"
#include "runbook.h"
#include "testutil.h"

static int fake_run(struct engine_call *call, const json_t *args, json_t **result,
		    struct st_error *err)
{
	(void)call;
	(void)args;
	(void)err;
	*result = json_object();
	return 0;
}

static const struct engine_arg_spec restart_args[] = {
	{ "container", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "container name" },
	{ "timeout", ENGINE_ARG_DURATION, 0, "10s", "stop timeout" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_arg_spec probe_args[] = {
	{ "url", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "what to probe" },
	{ "retries", ENGINE_ARG_INT, 0, NULL, NULL },
	{ "token", ENGINE_ARG_STRING, ENGINE_ARG_SECRET, NULL, NULL },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct engine_action fakes[] = {
	{ "fake.restart", "restart", restart_args, ENGINE_ACTION_DESTRUCTIVE, fake_run },
	{ "fake.start", "start", restart_args, 0, fake_run },
	{ "fake.probe", "probe", probe_args, ENGINE_ACTION_READ_ONLY, fake_run },
	{ NULL, NULL, NULL, 0, NULL },
};

static int setup(void **state)
{
	struct engine_registry *reg = NULL;
	struct st_error err = { 0 };

	assert_int_equal(engine_registry_new(1, &reg, &err), 0);
	assert_int_equal(engine_registry_add(reg, fakes, &err), 0);
	*state = reg;
	return 0;
}

static int teardown(void **state)
{
	engine_registry_free(*state);
	return 0;
}

static struct runbook *load_ok(void **state, const char *text)
{
	struct runbook *rb = NULL;
	struct st_error err = { 0 };

	if (runbook_load_buffer(*state, "t.yaml", text, strlen(text), &rb, &err) != 0)
		fail_msg("load failed: %s", err.message);
	return rb;
}

/* The load fails with ST_ECONFIG and the message starts with want. */
static void load_fails(void **state, const char *text, const char *want)
{
	struct runbook *rb = NULL;
	struct st_error err = { 0 };

	assert_int_equal(runbook_load_buffer(*state, "t.yaml", text, strlen(text), &rb, &err),
			 ST_ECONFIG);
	assert_null(rb);
	if (strncmp(err.message, want, strlen(want)) != 0)
		fail_msg("message\n  '%s'\ndoes not start with\n  '%s'", err.message, want);
}

static void test_valid_fixture_file(void **state)
{
	struct runbook *rb = NULL;
	struct st_error err = { 0 };
	const struct runbook_step *s;

	assert_int_equal(runbook_load_file(*state, "tests/fixtures/runbooks/full.yaml", &rb, &err), 0);
	assert_string_equal(rb->name, "full");
	assert_string_equal(rb->description, "Exercise every runbook feature");
	assert_string_equal(rb->source, "tests/fixtures/runbooks/full.yaml");
	assert_int_equal(rb->nlocks, 1);
	assert_string_equal(rb->locks[0], "full-test");
	assert_int_equal(rb->nparams, 3);
	assert_true(runbook_find_param(rb, "dir")->required);
	assert_string_equal(json_string_value(runbook_find_param(rb, "greeting")->def), "hello");
	assert_null(runbook_find_param(rb, "skip_note")->def);
	assert_null(runbook_find_param(rb, "nope"));
	assert_int_equal(rb->nsteps, 3);

	s = runbook_find_step(rb, "write");
	assert_ptr_equal(s, &rb->steps[0]);
	assert_string_equal(s->act.action->name, "file.write");
	assert_string_equal(json_string_value(json_object_get(s->act.args, "path")), "${args.dir}/greeting.txt");
	assert_non_null(s->check);
	assert_string_equal(s->check->action->name, "file.exists");
	assert_int_equal(s->on_fail, RUNBOOK_ON_FAIL_ABORT);
	assert_true(json_is_true(json_object_get(s->check->expect, "exists")));
	assert_non_null(s->verify);
	assert_true(s->verify_timeout == 2.0);
	assert_true(s->verify_interval > 0.049 && s->verify_interval < 0.051);
	assert_string_equal(json_string_value(json_object_get(s->verify->expect, "mode")), "0600");
	assert_non_null(s->undo);
	assert_int_equal(s->line, 14);
	assert_int_equal(s->column, 5);

	s = &rb->steps[1];
	assert_string_equal(s->when, "${args.skip_note} != yes");
	assert_true(s->continue_on_error);
	assert_null(s->verify);
	s = &rb->steps[2];
	assert_string_equal(s->confirm, "Overwrite ${args.dir}/final.txt?");
	assert_string_equal(s->confirm_word, "final");
	runbook_free(rb);
}

/* lock: one name or a list; names may take ${args} and ${config} (the
 * engine resolves them when the run starts). */
static void test_lock_list(void **state)
{
	struct runbook *rb = load_ok(state,
		"name: t\n"
		"lock:\n  - backup\n  - \"db:${args.database}\"\n  - svc:backend\n"
		"params: { database: { required: true } }\n"
		"steps: [{name: a, action: sleep, args: {seconds: 1}}]\n");

	assert_int_equal(rb->nlocks, 3);
	assert_string_equal(rb->locks[0], "backup");
	assert_string_equal(rb->locks[1], "db:${args.database}");
	assert_string_equal(rb->locks[2], "svc:backend");
	assert_null(rb->locks[3]);
	runbook_free(rb);
}

static void test_defaults_and_types(void **state)
{
	struct runbook *rb = load_ok(state,
		"name: t\n"
		"steps:\n"
		"  - name: a\n"
		"    action: fake.probe\n"
		"    args: { url: 'http://x', retries: 3 }\n"
		"    verify: { action: fake.probe, args: { url: \"${steps.a.u}\" } }\n");
	const struct runbook_step *s = &rb->steps[0];

	assert_int_equal(rb->nlocks, 0);
	assert_null(rb->locks);
	assert_null(rb->description);
	assert_int_equal(rb->nparams, 0);
	assert_true(s->verify_timeout == RUNBOOK_VERIFY_TIMEOUT);
	assert_true(s->verify_interval == RUNBOOK_VERIFY_INTERVAL);
	assert_null(s->verify->expect);
	assert_int_equal(json_integer_value(json_object_get(s->act.args, "retries")), 3);
	runbook_free(rb);

	/* YAML scalars: plain numbers and booleans get their type, quoted ones and
	 * leading zeros stay text. */
	rb = load_ok(state,
		"name: t\n"
		"steps:\n"
		"  - name: a\n"
		"    action: assert\n"
		"    args: { value: [1, 1.5, true, ~, '2', 0600, -3, x1], expect: 1 }\n");
	{
		char *dump = json_dumps(json_object_get(rb->steps[0].act.args, "value"), JSON_COMPACT);
		assert_string_equal(dump, "[1,1.5,true,null,\"2\",\"0600\",-3,\"x1\"]");
		free(dump);
	}
	runbook_free(rb);
}

static void test_unknown_keys(void **state)
{
	load_fails(state, "name: t\nversion: 2\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:2:1: unknown key 'version' in a runbook (expected name, description, lock, params, steps)");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n    retry: 3\n",
		   "t.yaml:6:5: unknown key 'retry' in step 'a'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    check: { action: fake.probe, args: {url: x}, expect: {a: 1}, onfail: skip }\n",
		   "t.yaml:6:66: unknown key 'onfail' in the check of step 'a'");
	load_fails(state,
		   "name: t\nparams:\n  p: { default: 1, type: int }\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:3:20: unknown key 'type' in parameter 'p'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    verify: { action: fake.probe, args: {url: x}, every: 1s }\n",
		   "t.yaml:6:51: unknown key 'every' in the verify of step 'a'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    undo: { action: sleep, args: {seconds: 1}, expect: {a: 1} }\n",
		   "t.yaml:6:48: unknown key 'expect' in the undo of step 'a'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    confirm: { prompt: sure?, word: yes }\n",
		   "t.yaml:6:31: unknown key 'word' in confirm");
}

static void test_unknown_action(void **state)
{
	load_fails(state, "name: t\nsteps:\n  - name: a\n    action: docker.explode\n",
		   "t.yaml:4:13: unknown action 'docker.explode' in step 'a'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    undo: { action: nope }\n",
		   "t.yaml:6:21: unknown action 'nope' in the undo of step 'a'");
	load_fails(state, "name: t\nsteps:\n  - name: a\n    description: no action\n",
		   "t.yaml:3:5: step 'a' needs an 'action'");
}

static void test_arguments(void **state)
{
	load_fails(state, "name: t\nsteps:\n  - name: a\n    action: fake.start\n    args: { timeout: 5 }\n",
		   "t.yaml:5:11: action 'fake.start' needs argument 'container'");
	load_fails(state, "name: t\nsteps:\n  - name: a\n    action: fake.start\n",
		   "t.yaml:3:5: action 'fake.start' needs argument 'container'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.start\n    args: { container: x, signal: KILL }\n",
		   "t.yaml:5:27: unknown argument 'signal' for action 'fake.start' (it takes: container, timeout)");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.start\n    args: { container: x, timeout: soon }\n",
		   "t.yaml:5:36: argument 'timeout' must be a duration like 30, 500ms, 5m or 2h, not 'soon'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.probe\n    args: { url: x, retries: many }\n",
		   "t.yaml:5:30: argument 'retries' must be an integer, not 'many'");
	/* A secret argument's value is not echoed in the error. */
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.probe\n    args: { url: x, token: [s3cr3t] }\n",
		   "t.yaml:5:28: argument 'token' must be a string, not '***'");
	load_fails(state, "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: [1]\n",
		   "t.yaml:5:11: args must be a mapping, not a sequence");
	/* Templates are type-checked at run time only. */
	runbook_free(load_ok(state,
		"name: t\nparams: {n: {default: 3}}\nsteps:\n  - name: a\n    action: fake.probe\n"
		"    args: { url: x, retries: \"${args.n}\" }\n"));
}

static void test_step_names(void **state)
{
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "  - name: a\n    action: sleep\n    args: {seconds: 2}\n",
		   "t.yaml:6:11: duplicate step name 'a' (first at line 3)");
	load_fails(state, "name: t\nsteps:\n  - action: sleep\n    args: {seconds: 1}\n",
		   "t.yaml:3:5: step 1 has no 'name'");
	load_fails(state, "name: t\nsteps:\n  - name: a.b\n    action: sleep\n    args: {seconds: 1}\n",
		   "t.yaml:3:11: invalid step name 'a.b'");
	load_fails(state, "name: t\nsteps: []\n", "t.yaml:2:8: steps must be a non-empty list");
	load_fails(state, "name: t\n", "t.yaml:1:1: runbook has no 'steps'");
	load_fails(state, "description: x\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:1:1: runbook has no 'name'");
	load_fails(state, "name: 'bad name'\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:1:7: invalid runbook name 'bad name'");
	load_fails(state, "name: t\nlock: ../x\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:2:7: invalid lock name '../x'");
	load_fails(state, "name: t\nlock: [a, ../x]\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:2:11: invalid lock name '../x'");
	load_fails(state, "name: t\nlock: []\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:2:7: lock must be a name or a non-empty list of names");
	/* Locks are taken before any step runs: no step results in their names. */
	load_fails(state, "name: t\nlock: \"db:${steps.a.x}\"\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:2:7: a lock name may use ${args...} and ${config...} only");
	load_fails(state, "name: t\nlock: \"db:${args.nope}\"\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:2:7: unknown parameter 'nope' in '${args.nope}'");
}

static void test_expect_operators(void **state)
{
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    verify:\n      action: fake.probe\n      args: {url: x}\n"
		   "      expect: { status: \"=> 200\" }\n",
		   "t.yaml:9:25: bad comparison operator in '=> 200'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    check: { action: fake.probe, args: {url: x}, expect: { n: \"< many\" } }\n",
		   "t.yaml:6:63: comparison '< many' needs a number after '<'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    check: { action: fake.probe, args: {url: x}, expect: { \"a..b\": 1 } }\n",
		   "t.yaml:6:60: bad result path 'a..b' in expect");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    check: { action: fake.probe, args: {url: x}, expect: {} }\n",
		   "t.yaml:6:58: expect must name at least one result path");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    check: { action: fake.probe, args: {url: x}, on_fail: retry }\n",
		   "t.yaml:6:59: on_fail must be abort or skip");
}

static void test_references(void **state)
{
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.probe\n    args: { url: \"${steps.b.url}\" }\n",
		   "t.yaml:5:18: unknown step 'b' in '${steps.b.url}'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.probe\n    args: { url: \"${steps.b.url}\" }\n"
		   "  - name: b\n    action: fake.probe\n    args: { url: x }\n",
		   "t.yaml:5:18: '${steps.b.url}' uses step 'b', which runs later");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.probe\n    args: { url: \"${steps.a.url}\" }\n",
		   "t.yaml:5:18: '${steps.a.url}' uses the result of step 'a' before it ran");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.probe\n    args: { url: \"http://${args.host}/\" }\n",
		   "t.yaml:5:18: unknown parameter 'host' in '${args.host}'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: fake.probe\n    args: { url: \"${env.PGPASSWORD}\" }\n",
		   "t.yaml:5:18: '${env.PGPASSWORD}': environment variables are not allowed");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    when: \"${args.x} == 1\"\n    action: sleep\n    args: {seconds: 1}\n",
		   "t.yaml:4:11: unknown parameter 'x' in '${args.x}'");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    when: \"${args.x} one\"\n    action: sleep\n    args: {seconds: 1}\n",
		   "t.yaml:4:11: condition '${args.x} one' must be one reference");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    confirm: \"restart ${steps.a.id}?\"\n    action: fake.restart\n"
		   "    args: {container: x}\n",
		   "t.yaml:4:14: '${steps.a.id}' uses the result of step 'a' before it ran");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    check: { action: fake.probe, args: {url: x}, expect: { a: \"> ${args.min}\" } }\n",
		   "t.yaml:6:63: unknown parameter 'min' in '${args.min}'");
	/* verify and undo may read the step's own result; config is checked at run. */
	runbook_free(load_ok(state,
		"name: t\nsteps:\n  - name: a\n    action: fake.start\n    args: { container: \"${config.c}\" }\n"
		"    verify: { action: fake.probe, args: { url: \"${steps.a.url}\" } }\n"
		"    undo: { action: fake.start, args: { container: \"${steps.a.id}\" } }\n"));
}

static void test_safety_rules(void **state)
{
	load_fails(state, "name: t\nsteps:\n  - name: a\n    action: fake.restart\n    args: {container: x}\n",
		   "t.yaml:4:13: step 'a' runs destructive action 'fake.restart' and needs a 'confirm'");
	runbook_free(load_ok(state,
		"name: t\nsteps:\n  - name: a\n    confirm: Restart?\n    action: fake.restart\n    args: {container: x}\n"));
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    check: { action: file.write, args: {path: x, content: y} }\n",
		   "t.yaml:6:22: the check of step 'a' uses action 'file.write', which changes things");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    verify: { action: fake.start, args: {container: x} }\n",
		   "t.yaml:6:23: the verify of step 'a' uses action 'fake.start', which changes things");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    confirm: { prompt: sure, type: two words }\n"
		   "    action: sleep\n    args: {seconds: 1}\n",
		   "t.yaml:4:36: confirm.type must be one word");
	load_fails(state,
		   "name: t\nsteps:\n  - name: a\n    action: sleep\n    args: {seconds: 1}\n"
		   "    verify: { action: fake.probe, args: {url: x}, interval: 0 }\n",
		   "t.yaml:6:61: verify.interval must be more than 0");
}

#define FSTEP "name: t\nsteps:\n  - name: a\n    action: fake.probe\n    args: {url: x}\n"

static void test_finding(void **state)
{
	struct runbook *rb;
	const struct runbook_finding *f;

	rb = load_ok(state, FSTEP
		     "    finding:\n"
		     "      expect: { status: 200 }\n"
		     "      warn_expect: { latency: '< 1' }\n"
		     "      message: 'got ${steps.a.status} from ${config.u}'\n"
		     "      ok: fine\n"
		     "      evidence: [status, body.status]\n"
		     "      fix: 'start it (${steps.a.status})'\n"
		     "      fix_runbook: start-after-db\n"
		     "      fix_params: { wait: '${steps.a.wait}' }\n");
	f = rb->steps[0].finding;
	assert_non_null(f);
	assert_int_equal(f->severity, RUNBOOK_SEVERITY_PROBLEM);
	assert_string_equal(f->message, "got ${steps.a.status} from ${config.u}");
	assert_string_equal(f->ok, "fine");
	assert_string_equal(f->fix_runbook, "start-after-db");
	assert_int_equal(json_array_size(f->evidence), 2);
	assert_int_equal(json_integer_value(json_object_get(f->expect, "status")), 200);
	assert_non_null(json_object_get(f->warn_expect, "latency"));
	assert_non_null(json_object_get(f->fix_params, "wait"));
	runbook_free(rb);

	/* Informational: no expect. */
	rb = load_ok(state, FSTEP "    finding: { message: hello, severity: warn }\n");
	assert_null(rb->steps[0].finding->expect);
	assert_int_equal(rb->steps[0].finding->severity, RUNBOOK_SEVERITY_WARN);
	runbook_free(rb);

	load_fails(state, "name: t\nsteps:\n  - name: a\n    action: fake.start\n    args: {container: x}\n"
		   "    finding: { message: m }\n",
		   "t.yaml:4:13: finding step 'a' uses action 'fake.start', which changes things");
	load_fails(state, FSTEP "    check: { action: fake.probe, args: {url: y} }\n    finding: { message: m }\n",
		   "t.yaml:6:12: finding step 'a' only observes: it takes no 'check'");
	load_fails(state, FSTEP "    continue_on_error: true\n    finding: { message: m }\n",
		   "t.yaml:6:24: finding step 'a' only observes: it takes no 'continue_on_error'");
	load_fails(state, FSTEP "    finding: { expect: { status: 200 } }\n",
		   "t.yaml:6:14: finding needs a 'message'");
	load_fails(state, FSTEP "    finding: { message: m, severity: fatal }\n",
		   "t.yaml:6:38: finding.severity must be warn or problem");
	load_fails(state, FSTEP "    finding: { message: m, warn_expect: { a: 1 } }\n",
		   "t.yaml:6:41: finding.warn_expect needs an 'expect'");
	load_fails(state, FSTEP "    finding: { message: m, severity: warn, expect: {a: 1}, warn_expect: { a: 1 } }\n",
		   "t.yaml:6:73: finding.warn_expect needs severity problem");
	load_fails(state, FSTEP "    finding: { message: m, fix_params: { a: 1 } }\n",
		   "t.yaml:6:40: finding.fix_params needs a 'fix_runbook'");
	load_fails(state, FSTEP "    finding: { message: m, fix_runbook: 'a b' }\n",
		   "t.yaml:6:41: invalid runbook name 'a b' in finding.fix_runbook");
	load_fails(state, FSTEP "    finding: { message: m, evidence: ['a..b'] }\n",
		   "t.yaml:6:39: bad result path in finding.evidence");
	load_fails(state, FSTEP "    finding: { message: m, expect: { status: '=> 1' } }\n",
		   "t.yaml:6:46: ");
	load_fails(state, FSTEP "    finding: { message: '${steps.b.x}' }\n",
		   "t.yaml:6:25: unknown step 'b' in '${steps.b.x}'");
	load_fails(state, FSTEP "    finding: { message: m, bogus: 1 }\n",
		   "t.yaml:6:28: unknown key 'bogus' in finding");
}

static void test_params(void **state)
{
	load_fails(state,
		   "name: t\nparams:\n  p: { required: true, default: 1 }\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:3:33: parameter 'p' is required and has a default: choose one");
	load_fails(state,
		   "name: t\nparams:\n  p: { default: \"${config.x}\" }\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:3:17: default of parameter 'p' cannot use references");
	load_fails(state,
		   "name: t\nparams:\n  'a b': {}\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:3:3: invalid parameter name 'a b'");
	load_fails(state,
		   "name: t\nparams: [a]\nsteps: [{name: a, action: sleep, args: {seconds: 1}}]\n",
		   "t.yaml:2:9: params must be a mapping, not a sequence");
}

static void test_bad_yaml(void **state)
{
	struct runbook *rb = NULL;
	struct st_error err = { 0 };
	const char *text = "name: t\nsteps:\n  - name: a\n   action: [unclosed\n";

	assert_int_equal(runbook_load_buffer(*state, "t.yaml", text, strlen(text), &rb, &err), ST_ECONFIG);
	assert_non_null(strstr(err.message, "t.yaml:4:"));
	load_fails(state, "", "t.yaml: empty runbook");
	load_fails(state, "- a\n- b\n", "t.yaml:1:1: a runbook must be a mapping, not a sequence");
	assert_int_equal(runbook_load_file(*state, "tests/fixtures/runbooks/absent.yaml", &rb, &err),
			 ST_ENOTFOUND);
	assert_int_equal(runbook_load_file(*state, "tests/fixtures/runbooks/unknown-action.yaml", &rb,
					   &err), ST_ECONFIG);
	assert_string_equal(err.message, "tests/fixtures/runbooks/unknown-action.yaml:4:13: "
					 "unknown action 'docker.explode' in step 'one'");
}

static void test_embedded_selftest(void **state)
{
	struct runbook_catalog *cat = NULL;
	struct runbook *rb = NULL;
	struct st_error err = { 0 };
	const struct runbook_entry *e = NULL;
	size_t i;

	assert_true(runbook_embedded_count >= 1);
	assert_int_equal(runbook_catalog_open(*state, NULL, &cat, &err), 0);
	for (i = 0; i < runbook_catalog_count(cat); i++) {
		assert_null(runbook_catalog_at(cat, i)->error); /* every built-in loads */
		if (!strcmp(runbook_catalog_at(cat, i)->name, "selftest"))
			e = runbook_catalog_at(cat, i);
	}
	assert_non_null(e);
	assert_string_equal(e->source, "built-in");
	assert_non_null(e->description);
	assert_int_equal(runbook_catalog_load(cat, "selftest", &rb, &err), 0);
	assert_string_equal(rb->source, "built-in");
	assert_int_equal(rb->nlocks, 1);
	assert_string_equal(rb->locks[0], "selftest");
	runbook_free(rb);
	assert_int_equal(runbook_catalog_load(cat, "no-such-runbook", &rb, &err), ST_ENOTFOUND);
	assert_string_equal(err.message, "unknown runbook 'no-such-runbook'");
	assert_string_equal(err.hint, "see 'spilttea-ops runbook list'");
	runbook_catalog_free(cat);
}

/* The embedded bytes are exactly the files in runbooks/ (UTF-8 included). */
static void test_embedded_bytes_match_files(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < runbook_embedded_count; i++) {
		char *disk = tu_read(runbook_embedded[i].file);

		assert_non_null(disk);
		assert_int_equal(strlen(disk), runbook_embedded[i].len);
		assert_memory_equal(disk, runbook_embedded[i].data, runbook_embedded[i].len);
		assert_int_equal(runbook_embedded[i].data[runbook_embedded[i].len], '\0');
		free(disk);
	}
	assert_null(runbook_embedded[runbook_embedded_count].file);
}

static void test_catalog_dir(void **state)
{
	struct runbook_catalog *cat = NULL;
	struct runbook *rb = NULL;
	struct st_error err = { 0 };
	char *dir = tu_mkdtemp();
	char path[600];
	const struct runbook_entry *e;
	size_t i, n_before;

	assert_int_equal(runbook_catalog_open(*state, NULL, &cat, &err), 0);
	n_before = runbook_catalog_count(cat);
	runbook_catalog_free(cat);

	snprintf(path, sizeof(path), "%s/selftest.yaml", dir);
	tu_write(path, "name: selftest\ndescription: local override\nsteps: [{name: a, action: sleep, args: {seconds: 0}}]\n");
	snprintf(path, sizeof(path), "%s/extra.yml", dir);
	tu_write(path, "name: extra\nsteps: [{name: a, action: sleep, args: {seconds: 0}}]\n");
	snprintf(path, sizeof(path), "%s/broken.yaml", dir);
	tu_write(path, "name: broken\nsteps: [{name: a, action: nope}]\n");
	snprintf(path, sizeof(path), "%s/misnamed.yaml", dir);
	tu_write(path, "name: other\nsteps: [{name: a, action: sleep, args: {seconds: 0}}]\n");
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	tu_write(path, "not a runbook");
	snprintf(path, sizeof(path), "%s/.extra.yaml.AbCdEf.partial", dir);
	tu_write(path, "half");

	assert_int_equal(runbook_catalog_open(*state, dir, &cat, &err), 0);
	assert_int_equal(runbook_catalog_count(cat), n_before + 3);
	for (i = 1; i < runbook_catalog_count(cat); i++)
		assert_true(strcmp(runbook_catalog_at(cat, i - 1)->name, runbook_catalog_at(cat, i)->name) < 0);
	for (i = 0; i < runbook_catalog_count(cat); i++) {
		e = runbook_catalog_at(cat, i);
		if (!strcmp(e->name, "selftest")) {
			assert_true(e->overrides_builtin);
			assert_string_equal(e->description, "local override");
			assert_non_null(strstr(e->source, "/selftest.yaml"));
		} else if (!strcmp(e->name, "broken")) {
			assert_non_null(strstr(e->error, "broken.yaml:2:27: unknown action 'nope'"));
		} else if (!strcmp(e->name, "misnamed")) {
			assert_non_null(strstr(e->error, "runbook name 'other' does not match its file name"));
		} else if (!strcmp(e->name, "extra")) {
			assert_null(e->error);
		}
	}
	assert_int_equal(runbook_catalog_load(cat, "selftest", &rb, &err), 0);
	assert_string_equal(rb->description, "local override");
	runbook_free(rb);
	assert_int_equal(runbook_catalog_load(cat, "broken", &rb, &err), ST_ECONFIG);
	assert_int_equal(runbook_catalog_load(cat, "tests/fixtures/runbooks/sleepy.yaml", &rb, &err), 0);
	assert_string_equal(rb->name, "sleepy");
	runbook_free(rb);
	runbook_catalog_free(cat);

	snprintf(path, sizeof(path), "%s/none", dir);
	assert_int_equal(runbook_catalog_open(*state, path, &cat, &err), ST_ENOTFOUND);
	assert_non_null(strstr(err.message, "cannot read runbooks_dir"));
	tu_rmtree(dir);
	free(dir);
}

static void test_registry(void **state)
{
	struct engine_registry *reg = *state;
	struct st_error err = { 0 };
	static const struct engine_action dup[] = {
		{ "sleep", "again", NULL, 0, fake_run },
		{ NULL, NULL, NULL, 0, NULL },
	};
	static const struct engine_action norun[] = {
		{ "x.norun", "no function", NULL, 0, NULL },
		{ NULL, NULL, NULL, 0, NULL },
	};
	size_t i;
	int seen = 0;

	assert_int_equal(engine_registry_add(reg, dup, &err), ST_ECONFLICT);
	assert_string_equal(err.message, "action 'sleep' is registered twice");
	assert_int_equal(engine_registry_add(reg, norun, &err), ST_EUSAGE);
	assert_null(engine_registry_find(reg, "x.norun"));
	for (i = 0; i < engine_registry_count(reg); i++)
		if (!strcmp(engine_registry_at(reg, i)->name, "file.write"))
			seen = 1;
	assert_true(seen);
	assert_null(engine_registry_at(reg, engine_registry_count(reg)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid_fixture_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults_and_types, setup, teardown),

		cmocka_unit_test_setup_teardown(test_lock_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_action, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_step_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expect_operators, setup, teardown),
		cmocka_unit_test_setup_teardown(test_references, setup, teardown),
		cmocka_unit_test_setup_teardown(test_safety_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_yaml, setup, teardown),
		cmocka_unit_test_setup_teardown(test_embedded_selftest, setup, teardown),
		cmocka_unit_test(test_embedded_bytes_match_files),
		cmocka_unit_test_setup_teardown(test_catalog_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
