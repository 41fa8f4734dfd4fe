/*
 * engine.c - the step executor and the plan renderer (see engine.h).
 */
#include "engine.h"
#include "expr.h"
#include "journal.h"
#include "lock.h"
#include "redact.h"
#include "runbook.h"
#include "sbuf.h"
#include "text.h"
#include "timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


const char *engine_result_name(enum engine_result r)
{
	switch (r) {
	case ENGINE_RESULT_OK: return "ok";
	case ENGINE_RESULT_SKIPPED: return "skipped";
	case ENGINE_RESULT_FAILED: return "failed";
	case ENGINE_RESULT_UNDONE: return "undone";
	case ENGINE_RESULT_ABORTED: return "aborted";
	case ENGINE_RESULT_DRY_RUN: return "dry-run";
	}
	return "?";
}

const char *engine_finding_status_name(enum engine_finding_status s)
{
	switch (s) {
	case ENGINE_FINDING_OK: return "ok";
	case ENGINE_FINDING_WARN: return "warn";
	case ENGINE_FINDING_PROBLEM: return "problem";
	}
	return "?";
}

const char *engine_phase_name(enum engine_phase p)
{
	switch (p) {
	case ENGINE_PHASE_CHECK: return "check";
	case ENGINE_PHASE_CONFIRM: return "confirm";
	case ENGINE_PHASE_ACT: return "act";
	case ENGINE_PHASE_VERIFY: return "verify";
	case ENGINE_PHASE_UNDO: return "undo";
	}
	return "?";
}

int engine_call_cancelled(const struct engine_call *call)
{
	return call && call->cancel && *call->cancel;
}

int engine_call_sleep(const struct engine_call *call, double seconds, struct st_error *err)
{
	if (time_sleep_cancellable(seconds, call ? call->cancel : NULL) != 0)
		return st_error_set(err, ST_EABORTED, "interrupted");
	return 0;
}

/* ---- parameters ------------------------------------------------------- */

int engine_params_parse(const struct runbook *rb, int argc, char *const *argv, json_t **out,
			struct st_error *err)
{
	json_t *params = json_object(), *v;
	size_t i;
	int a, rc = 0;

	*out = NULL;
	if (!params)
		return st_error_set(err, ST_ENOMEM, "out of memory reading parameters");
	for (a = 0; a < argc; a++) {
		const char *eq = strchr(argv[a], '=');
		char name[128];
		size_t n;

		if (!eq || eq == argv[a] || (size_t)(eq - argv[a]) >= sizeof(name)) {
			rc = st_error_set(err, ST_EUSAGE, "expected key=value, got '%s'", argv[a]);
			st_error_hint(err, "see the parameters with 'spilttea-ops runbook show %s'", rb->name);
			goto out;
		}
		n = (size_t)(eq - argv[a]);
		memcpy(name, argv[a], n);
		name[n] = '\0';
		if (!runbook_find_param(rb, name)) {
			rc = st_error_set(err, ST_EUSAGE, "unknown parameter '%s' for runbook '%s'", name,
					  rb->name);
			st_error_hint(err, "see the parameters with 'spilttea-ops runbook show %s'", rb->name);
			goto out;
		}
		if (json_object_get(params, name)) {
			rc = st_error_set(err, ST_EUSAGE, "parameter '%s' is given twice", name);
			goto out;
		}
		/* JSON (journal, expressions) takes UTF-8 only. */
		if (!text_utf8_valid(eq + 1, strlen(eq + 1))) {
			rc = st_error_set(err, ST_EUSAGE, "parameter '%s' is not valid UTF-8", name);
			st_error_hint(err, "check the terminal's or the script's character encoding");
			goto out;
		}
		v = json_string(eq + 1);
		if (!v || json_object_set_new(params, name, v)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory reading parameters");
			goto out;
		}
	}
	for (i = 0; i < rb->nparams; i++) {
		const struct runbook_param *p = &rb->params[i];

		if (json_object_get(params, p->name))
			continue;
		if (p->required) {
			rc = st_error_set(err, ST_EUSAGE, "runbook '%s' needs parameter '%s'", rb->name,
					  p->name);
			st_error_hint(err, "add %s=VALUE (see 'spilttea-ops runbook show %s')", p->name,
				      rb->name);
			goto out;
		}
		v = p->def ? json_deep_copy(p->def) : json_null();
		if (!v || json_object_set_new(params, p->name, v)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory reading parameters");
			goto out;
		}
	}
	*out = params;
	params = NULL;
out:
	json_decref(params);
	return rc;
}

int engine_params_secrets(const struct runbook *rb, const json_t *params, struct redact_set *set)
{
	size_t i;

	for (i = 0; i < rb->nparams; i++) {
		const json_t *v = json_object_get(params, rb->params[i].name);
		char *text;
		int rc;

		if (!rb->params[i].secret || !v || json_is_null(v))
			continue;
		if (!(text = expr_to_text(v)))
			return ST_ENOMEM;
		rc = redact_set_add(set, text);
		free(text);
		if (rc)
			return rc;
	}
	return 0;
}

json_t *engine_params_redacted(const struct runbook *rb, const json_t *params)
{
	json_t *copy = json_deep_copy(params);
	size_t i;

	for (i = 0; copy && i < rb->nparams; i++) {
		const json_t *v = json_object_get(copy, rb->params[i].name);

		if (rb->params[i].secret && v && !json_is_null(v) &&
		    json_object_set_new(copy, rb->params[i].name, json_string(REDACTED))) {
			json_decref(copy);
			return NULL;
		}
	}
	return copy;
}

/* ---- the run ---------------------------------------------------------- */

struct run {
	const struct runbook *rb;
	const json_t *params;
	const struct engine_options *opts;
	const struct engine_ui *ui;
	struct engine_report *report;
	json_t *results;          /* step name -> act result */
	struct redact_set secrets;/* values to scrub from error text, plan and journal */
	json_t *shown_params;     /* params with secret ones as "***" */
	struct journal *journal;
	struct journal_run jrun;
	unsigned char *acted;     /* acted[i]: step i's act succeeded */
	int skip_code;            /* why the last step was skipped: ST_EUNREACHABLE,
				     ST_ETIMEOUT (deadline), else 0 */
};

static void notice(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notice(struct run *r, const char *fmt, ...)
{
	char msg[ST_ERROR_MESSAGE_MAX];
	va_list ap;

	if (!r->ui || !r->ui->notice)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->ui->notice(r->ui->ud, msg);
}

static void scope_of(const struct run *r, struct expr_scope *s, unsigned keep)
{
	memset(s, 0, sizeof(*s));
	s->lookup_config = r->opts->lookup_config;
	s->config_ud = r->opts->config_ud;
	s->args = r->params;
	s->steps = r->results;
	s->keep = keep;
}

/* Remembers the values of secret arguments (declared, or named like a
 * secret at any depth) so they can be scrubbed wherever they reappear. */
static int collect_arg_secrets(struct run *r, const struct engine_action *a, const json_t *args)
{
	const char *k;
	json_t *m;

	json_object_foreach((json_t *)args, k, m) {
		const struct engine_arg_spec *s = engine_action_arg(a, k);

		if (redact_set_collect(&r->secrets, m, (s && (s->flags & ENGINE_ARG_SECRET)) ||
							       redact_name_is_secret(k)))
			return ST_ENOMEM;
	}
	return 0;
}

static void scrub(struct run *r, char *text, size_t cap)
{
	redact_set_scrub(&r->secrets, text, cap);
}

/* The command line for the journal and the lock file: a word that is a
 * secret, or whose value after '=' is one, shows "***" for it whatever its
 * length (key=value parameters); longer secrets are hidden anywhere.
 * Caller frees; NULL on ENOMEM. */
static char *scrub_command_line(const struct redact_set *secrets, const char *line)
{
	struct sbuf sb = SBUF_INIT;
	const char *p = line;
	char *out = NULL;
	int rc = 0;

	while (*p && !rc) {
		size_t n = strcspn(p, " "), k;
		char *word = strndup(p, n);
		const char *eq;

		if (!word) {
			rc = ST_ENOMEM;
			break;
		}
		eq = strchr(word, '=');
		k = eq ? (size_t)(eq + 1 - word) : 0;
		if (redact_set_contains(secrets, word + k))
			rc = sbuf_append(&sb, word, k) || sbuf_puts(&sb, REDACTED);
		else
			rc = sbuf_puts(&sb, word);
		free(word);
		p += n;
		for (; *p == ' ' && !rc; p++)
			rc = sbuf_puts(&sb, " ");
	}
	if (!rc && (out = sbuf_detach(&sb)) != NULL)
		/* Only secrets longer than "***" are left: the text shrinks. */
		redact_set_scrub(secrets, out, strlen(out) + 1);
	sbuf_release(&sb);
	return out;
}

static void scrub_err(struct run *r, struct st_error *err)
{
	scrub(r, err->message, sizeof(err->message));
	scrub(r, err->hint, sizeof(err->hint));
}

static void jstep(struct run *r, const struct runbook_step *st, const struct engine_action *a,
		  enum engine_phase phase, enum engine_result res, double duration,
		  const json_t *shown, const char *error, int attempts)
{
	struct journal_step js;
	struct st_error jerr = { 0 };

	memset(&js, 0, sizeof(js));
	js.step = st->name;
	js.action = a ? a->name : NULL;
	js.phase = engine_phase_name(phase);
	js.result = engine_result_name(res);
	js.duration = duration;
	js.args = shown;
	js.error = error;
	js.attempts = attempts;
	if (journal_step(r->journal, &r->jrun, &js, &jerr) != 0) {
		if (!r->report->journal_failed)
			notice(r, "warning: %s", jerr.message);
		r->report->journal_failed = 1;
	}
}

/* The journal record of a finding step's act. */
static void jfinding(struct run *r, const struct runbook_step *st, double duration,
		     const json_t *shown, const char *error, const char *status, const char *message)
{
	struct journal_step js;
	struct st_error jerr = { 0 };

	memset(&js, 0, sizeof(js));
	js.step = st->name;
	js.action = st->act.action->name;
	js.phase = engine_phase_name(ENGINE_PHASE_ACT);
	js.result = engine_result_name(error ? ENGINE_RESULT_FAILED : ENGINE_RESULT_OK);
	js.duration = duration;
	js.args = shown;
	js.error = error;
	js.finding = status;
	js.message = message;
	if (journal_step(r->journal, &r->jrun, &js, &jerr) != 0) {
		if (!r->report->journal_failed)
			notice(r, "warning: %s", jerr.message);
		r->report->journal_failed = 1;
	}
}

/* Resolves a call's templates, converts them for its action, and gives the
 * redacted form for the journal. *args and *shown: caller frees. */
static int prepare(struct run *r, const struct runbook_call *call, json_t **args, json_t **shown,
		   struct st_error *err)
{
	struct expr_scope scope;
	json_t *resolved = NULL;
	int rc;

	*args = *shown = NULL;
	scope_of(r, &scope, 0);
	if ((rc = expr_resolve(call->args, &scope, &resolved, err)) != 0)
		goto out;
	if ((rc = engine_args_prepare(call->action, resolved, args, err)) != 0)
		goto out;
	*shown = engine_args_redacted(call->action, *args);
	/* A secret can travel into an innocent argument ("content: ${args.token}"). */
	if (collect_arg_secrets(r, call->action, *args) || !*shown ||
	    redact_set_scrub_json(&r->secrets, *shown) != 0) {
		json_decref(*shown);
		*shown = NULL;
		json_decref(*args);
		*args = NULL;
		rc = st_error_set(err, ST_ENOMEM, "out of memory preparing arguments");
	}
out:
	json_decref(resolved);
	if (rc)
		scrub_err(r, err);
	return rc;
}

static int invoke(struct run *r, const struct runbook_step *st, const struct runbook_call *call,
		  enum engine_phase phase, int attempt, const json_t *args, json_t **result,
		  struct st_error *err)
{
	struct engine_call c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.runbook = r->rb->name;
	c.step = st->name;
	c.phase = phase;
	c.attempt = attempt;
	c.config = r->opts->config;
	c.services = r->opts->services;
	c.lookup_config = r->opts->lookup_config;
	c.config_ud = r->opts->config_ud;
	/* Undo must finish even after an interrupt: it is what cleans up. */
	c.cancel = phase == ENGINE_PHASE_UNDO ? NULL : r->opts->cancel;
	*result = NULL;
	st_error_clear(err);
	rc = call->action->run(&c, args, result, err);
	if (rc) {
		json_decref(*result);
		*result = NULL;
		if (!err->code)
			err->code = rc;
		if (!err->message[0])
			snprintf(err->message, sizeof(err->message), "action '%s' failed (%s)",
				 call->action->name, st_code_name(rc));
		scrub_err(r, err);
		return rc;
	}
	if (!*result)
		*result = json_object();
	if (!*result)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	return 0;
}

static int cancelled(const struct run *r)
{
	return r->opts->cancel && *r->opts->cancel;
}

/* Runs a check. *held: 1 holds, 0 does not (why filled). */
static int run_check(struct run *r, const struct runbook_step *st, int *held, char *why,
		     size_t whysize, struct st_error *err)
{
	const struct runbook_call *call = st->check;
	struct expr_scope scope;
	json_t *args = NULL, *shown = NULL, *result = NULL, *expect = NULL;
	struct st_error aerr = { 0 };
	double t0 = time_monotonic();
	int rc;

	*held = 0;
	if ((rc = prepare(r, call, &args, &shown, err)) != 0)
		goto out;
	scope_of(r, &scope, 0);
	if (call->expect && (rc = expr_resolve(call->expect, &scope, &expect, err)) != 0)
		goto out;
	if (invoke(r, st, call, ENGINE_PHASE_CHECK, 1, args, &result, &aerr) != 0) {
		text_copy(why, whysize, aerr.message);
	} else if (expect) {
		rc = expr_expect(result, expect, why, whysize, err);
		if (rc < 0)
			goto out;
		*held = rc;
		rc = 0;
	} else {
		*held = 1;
	}
	/* Until the action runs, the step's result is what its check found,
	 * so that its confirm can show it (runbook.h). */
	if (*held && result && json_object_set(r->results, st->name, result)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	scrub(r, why, whysize);
	jstep(r, st, call->action, ENGINE_PHASE_CHECK,
	      *held ? ENGINE_RESULT_OK : st->on_fail == RUNBOOK_ON_FAIL_SKIP ? ENGINE_RESULT_SKIPPED
									: ENGINE_RESULT_ABORTED,
	      time_monotonic() - t0, shown, *held ? NULL : why, 0);
out:
	/* The check could not even be evaluated (arguments, expect). */
	if (rc)
		jstep(r, st, call->action, ENGINE_PHASE_CHECK, ENGINE_RESULT_FAILED,
		      time_monotonic() - t0, shown, err->message, 0);
	json_decref(args);
	json_decref(shown);
	json_decref(result);
	json_decref(expect);
	return rc;
}

/* Interpolates a prompt (redact: secrets hidden like in the plan) or the
 * word to type into buf. */
static int text_of(struct run *r, const char *tmpl, int redact, char *buf, size_t size,
		   struct st_error *err)
{
	struct expr_scope scope;
	json_t *v = NULL;
	char *t;
	int rc;

	scope_of(r, &scope, 0);
	if ((rc = expr_eval_string(tmpl, &scope, &v, err)) != 0)
		return rc;
	t = !redact || redact_set_scrub_json(&r->secrets, v) == 0 ? expr_to_text(v) : NULL;
	json_decref(v);
	if (!t)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	snprintf(buf, size, "%s", t);
	free(t);
	return 0;
}

static int run_confirm(struct run *r, const struct runbook_step *st, struct st_error *err)
{
	char prompt[1024], word[128], answer[256];
	double t0 = time_monotonic();
	int rc = 0, asked;

	if (r->opts->assume_yes) {
		jstep(r, st, NULL, ENGINE_PHASE_CONFIRM, ENGINE_RESULT_OK, 0, NULL, NULL, 0);
		return 0;
	}
	if ((rc = text_of(r, st->confirm, 1, prompt, sizeof(prompt), err)) != 0)
		return rc;
	word[0] = '\0';
	if (st->confirm_word && (rc = text_of(r, st->confirm_word, 0, word, sizeof(word), err)) != 0)
		return rc;
	answer[0] = '\0';
	asked = r->ui && r->ui->confirm &&
		r->ui->confirm(r->ui->ud, prompt, st->confirm_word ? word : NULL, answer, sizeof(answer));
	answer[sizeof(answer) - 1] = '\0';
	if (!asked) {
		rc = st_error_set(err, ST_EABORTED,
				  "step '%s' needs confirmation and there is no terminal to ask", st->name);
		st_error_hint(err, "re-run with --yes to confirm: %s", prompt);
	} else if (st->confirm_word && strcmp(answer, word) != 0) {
		rc = st_error_set(err, ST_EABORTED,
				  "confirmation of step '%s' refused: typed '%s', not '%s'", st->name,
				  answer, word);
	} else if (!st->confirm_word && strcasecmp(answer, "y") && strcasecmp(answer, "yes")) {
		rc = st_error_set(err, ST_EABORTED, "confirmation of step '%s' refused", st->name);
	}
	jstep(r, st, NULL, ENGINE_PHASE_CONFIRM, rc ? ENGINE_RESULT_ABORTED : ENGINE_RESULT_OK,
	      time_monotonic() - t0, NULL, rc ? err->message : NULL, 0);
	return rc;
}

/* Polls the verify until its expect holds or the timeout passes. */
static int run_verify(struct run *r, const struct runbook_step *st, int *attempts,
		      struct st_error *err)
{
	const struct runbook_call *call = st->verify;
	struct expr_scope scope;
	json_t *args = NULL, *shown = NULL, *result = NULL, *expect = NULL;
	char why[ST_ERROR_MESSAGE_MAX / 2] = "";
	char dur[32];
	struct st_error aerr = { 0 };
	double t0 = time_monotonic(), deadline = t0 + st->verify_timeout;
	int rc, held = 0;

	*attempts = 0;
	if ((rc = prepare(r, call, &args, &shown, err)) != 0)
		goto done;
	scope_of(r, &scope, 0);
	if (call->expect && (rc = expr_resolve(call->expect, &scope, &expect, err)) != 0)
		goto done;
	for (;;) {
		struct engine_call c = { .cancel = r->opts->cancel };

		(*attempts)++;
		json_decref(result);
		result = NULL;
		if (invoke(r, st, call, ENGINE_PHASE_VERIFY, *attempts, args, &result, &aerr) != 0) {
			text_copy(why, sizeof(why), aerr.message);
		} else if (expect) {
			rc = expr_expect(result, expect, why, sizeof(why), err);
			if (rc < 0)
				goto done;
			held = rc;
			rc = 0;
		} else {
			held = 1;
		}
		if (held)
			break;
		/* why may quote a result (expect) that holds a secret. */
		scrub(r, why, sizeof(why));
		if (cancelled(r)) {
			rc = st_error_set(err, ST_EABORTED, "interrupted while verifying: %s", why);
			goto done;
		}
		if (time_monotonic() + st->verify_interval > deadline) {
			rc = st_error_set(err, ST_EFAILED, "verify did not hold within %s (%d attempt%s): %s",
					  time_format_duration(st->verify_timeout, dur, sizeof(dur)),
					  *attempts, *attempts == 1 ? "" : "s", why);
			goto done;
		}
		if (engine_call_sleep(&c, st->verify_interval, err) != 0) {
			rc = st_error_set(err, ST_EABORTED, "interrupted while verifying: %s", why);
			goto done;
		}
	}
done:
	jstep(r, st, call->action, ENGINE_PHASE_VERIFY, held ? ENGINE_RESULT_OK : ENGINE_RESULT_FAILED,
	      time_monotonic() - t0, shown, held ? NULL : err->message, *attempts);
	json_decref(args);
	json_decref(shown);
	json_decref(result);
	json_decref(expect);
	return rc;
}

static void ui_start(struct run *r, size_t i, enum engine_phase phase)
{
	struct engine_step_event ev;

	if (!r->ui || !r->ui->step_start)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.step = &r->rb->steps[i];
	ev.index = i;
	ev.total = r->rb->nsteps;
	ev.phase = phase;
	r->ui->step_start(r->ui->ud, &ev);
}

static void ui_end(struct run *r, size_t i, enum engine_phase phase, enum engine_result res,
		   double duration, int attempts, const char *detail)
{
	struct engine_step_event ev;

	if (!r->ui || !r->ui->step_end)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.step = &r->rb->steps[i];
	ev.index = i;
	ev.total = r->rb->nsteps;
	ev.phase = phase;
	ev.result = res;
	ev.duration = duration;
	ev.attempts = attempts;
	ev.detail = detail;
	ev.code = res == ENGINE_RESULT_SKIPPED ? r->skip_code : 0;
	r->ui->step_end(r->ui->ud, &ev);
}

enum step_outcome { STEP_DONE, STEP_SKIPPED, STEP_FAILED, STEP_ABORTED };

/* A finding template as redacted text; on a template error, what went
 * wrong (a runbook bug shows instead of hiding the finding). Caller frees. */
static char *finding_text(struct run *r, const char *tmpl)
{
	struct expr_scope scope;
	struct st_error terr = { 0 };
	json_t *v = NULL;
	char *t;

	scope_of(r, &scope, 0);
	if (expr_eval_string(tmpl, &scope, &v, &terr) != 0) {
		scrub_err(r, &terr);
		if (asprintf(&t, "(cannot render: %s)", terr.message) < 0)
			t = NULL;
		return t;
	}
	t = redact_set_scrub_json(&r->secrets, v) == 0 ? expr_to_text(v) : NULL;
	json_decref(v);
	if (t)
		scrub(r, t, strlen(t) + 1);
	return t;
}

/* Does result satisfy an expect template? 1/0 (why filled on 0), < 0 when
 * the expect cannot be evaluated (err). */
static int finding_holds(struct run *r, const json_t *tmpl, const json_t *result, char *why,
			 size_t whysize, struct st_error *err)
{
	struct expr_scope scope;
	json_t *expect = NULL;
	int rc;

	scope_of(r, &scope, 0);
	if ((rc = expr_resolve(tmpl, &scope, &expect, err)) != 0)
		return rc;
	rc = expr_expect(result, expect, why, whysize, err);
	json_decref(expect);
	return rc;
}

/* Adds the value at each path of paths (an array, or the keys of an
 * expect object) to evidence. */
static int add_evidence(json_t *evidence, const json_t *paths, const json_t *result)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_array(paths)) {
		json_array_foreach(paths, i, v) {
			const char *p = json_string_value(v);
			const json_t *val = p && result ? expr_path_get(result, p) : NULL;

			if (p && json_object_set_new(evidence, p, val ? json_deep_copy(val) : json_null()))
				return ST_ENOMEM;
		}
	} else if (json_is_object(paths)) {
		json_object_foreach((json_t *)paths, k, v) {
			const json_t *val = result ? expr_path_get(result, k) : NULL;

			if (json_object_get(evidence, k))
				continue;
			if (json_object_set_new(evidence, k, val ? json_deep_copy(val) : json_null()))
				return ST_ENOMEM;
		}
	}
	return 0;
}

/* A finding step: when, act, judge, report. A value the step needs that is
 * not there (an unset configuration key, a step that did not run) skips
 * it. An action error, or a finding that cannot be judged, is reported as
 * a finding with that error ("cannot check") and fails the step without
 * stopping the run. */
static enum step_outcome run_finding(struct run *r, size_t i, char *detail, size_t dsize,
				     struct st_error *err)
{
	const struct runbook_step *st = &r->rb->steps[i];
	const struct runbook_finding *f = st->finding;
	struct engine_finding ev;
	struct expr_scope scope;
	json_t *args = NULL, *shown = NULL, *result = NULL, *evidence = NULL, *fix_params = NULL;
	char *message = NULL, *fix = NULL, why[ST_ERROR_MESSAGE_MAX] = "";
	struct st_error ferr = { 0 };
	double t0 = time_monotonic();
	enum step_outcome out = STEP_DONE;
	enum engine_finding_status status = ENGINE_FINDING_OK;
	int rc, holds;

	if (st->when) {
		scope_of(r, &scope, 0);
		rc = expr_condition(st->when, &scope, &holds, why, sizeof(why), err);
		if (rc && rc != ST_ENOTFOUND) {
			scrub_err(r, err);
			st_error_wrap(err, "cannot evaluate 'when'");
			goto fail;
		}
		if (rc || !holds) {
			if (rc)
				snprintf(why, sizeof(why), "%s", err->message);
			st_error_clear(err);
			scrub(r, why, sizeof(why));
			snprintf(detail, dsize, "when: %s", why);
			jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_SKIPPED, 0, NULL,
			      detail, 0);
			return STEP_SKIPPED;
		}
	}
	if ((rc = prepare(r, &st->act, &args, &shown, err)) != 0) {
		if (rc != ST_ENOTFOUND)
			goto fail;
		snprintf(detail, dsize, "%s", err->message);
		st_error_clear(err);
		jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_SKIPPED, 0, NULL, detail, 0);
		return STEP_SKIPPED;
	}
	why[0] = '\0';
	if (invoke(r, st, &st->act, ENGINE_PHASE_ACT, 1, args, &result, err) != 0) {
		/* Its service timed out or refused earlier in this run (fail
		 * fast): not checked, rather than waiting out the same timeout
		 * once more. */
		if (err->code == ST_EUNREACHABLE && !cancelled(r)) {
			snprintf(detail, dsize, "%s", err->message);
			st_error_clear(err);
			r->skip_code = ST_EUNREACHABLE;
			jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_SKIPPED,
			      time_monotonic() - t0, shown, detail, 0);
			out = STEP_SKIPPED;
			goto out;
		}
		goto fail;
	}
	if (json_object_set(r->results, st->name, result))
		goto nomem;
	if (f->expect) {
		if ((rc = finding_holds(r, f->expect, result, why, sizeof(why), err)) < 0)
			goto fail;
		if (!rc)
			status = (enum engine_finding_status)f->severity;
	}
	if (status == ENGINE_FINDING_OK && f->warn_expect) {
		if ((rc = finding_holds(r, f->warn_expect, result, why, sizeof(why), err)) < 0)
			goto fail;
		if (!rc)
			status = ENGINE_FINDING_WARN;
	}
	if (status == ENGINE_FINDING_OK)
		why[0] = '\0';
	scrub(r, why, sizeof(why));
	message = finding_text(r, status == ENGINE_FINDING_OK && f->ok ? f->ok : f->message);
	goto judged;
nomem:
	st_error_set(err, ST_ENOMEM, "out of memory");
fail:
	/* Not judged: the finding says why it could not be. */
	out = cancelled(r) ? STEP_ABORTED : STEP_FAILED;
	status = (enum engine_finding_status)f->severity;
	why[0] = '\0';
	message = strdup(st->description ? st->description : st->name);
judged:
	evidence = json_object();
	if (!message || !evidence)
		goto oom;
	if (result && (add_evidence(evidence, f->evidence ? f->evidence : f->expect, result) ||
		       (!f->evidence && add_evidence(evidence, f->warn_expect, result)) ||
		       redact_set_scrub_json(&r->secrets, evidence)))
		goto oom;
	/* What is wrong is not known when the check could not run: no fix. */
	if (status != ENGINE_FINDING_OK && out == STEP_DONE) {
		if (f->fix && !(fix = finding_text(r, f->fix)))
			goto oom;
		scope_of(r, &scope, 0);
		/* Parameters that refer to a result that is not there stay unset. */
		if (f->fix_params && expr_resolve(f->fix_params, &scope, &fix_params, &ferr) != 0)
			fix_params = NULL;
	}
	if (!fix_params && !(fix_params = json_object()))
		goto oom;
	r->report->findings[status]++;
	jfinding(r, st, time_monotonic() - t0, shown, out == STEP_DONE ? NULL : err->message,
		 engine_finding_status_name(status), message);
	if (r->ui && r->ui->finding) {
		memset(&ev, 0, sizeof(ev));
		ev.step = st;
		ev.status = status;
		ev.message = message;
		ev.why = why[0] ? why : NULL;
		ev.error = out == STEP_DONE ? NULL : err->message;
		ev.evidence = evidence;
		ev.fix = fix;
		ev.fix_runbook = status != ENGINE_FINDING_OK && out == STEP_DONE ? f->fix_runbook : NULL;
		ev.fix_params = fix_params;
		r->ui->finding(r->ui->ud, &ev);
	}
	goto out;
oom:
	st_error_set(err, ST_ENOMEM, "out of memory");
	jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_FAILED, time_monotonic() - t0,
	      shown, err->message, 0);
	out = STEP_FAILED;
out:
	json_decref(args);
	json_decref(shown);
	json_decref(result);
	json_decref(evidence);
	json_decref(fix_params);
	free(message);
	free(fix);
	return out;
}

/* One step: when, check, confirm, act, verify. err describes a failed or
 * aborted outcome; *detail a skip. */
static enum step_outcome run_step(struct run *r, size_t i, char *detail, size_t dsize,
				  int *attempts, struct st_error *err)
{
	const struct runbook_step *st = &r->rb->steps[i];
	struct expr_scope scope;
	json_t *args = NULL, *shown = NULL, *result = NULL;
	double t0;
	enum step_outcome out = STEP_DONE;
	int rc, holds;

	*attempts = 0;
	detail[0] = '\0';
	if (st->finding)
		return run_finding(r, i, detail, dsize, err);
	if (st->when) {
		char why[512];

		scope_of(r, &scope, 0);
		if ((rc = expr_condition(st->when, &scope, &holds, why, sizeof(why), err)) != 0) {
			scrub_err(r, err);
			st_error_wrap(err, "cannot evaluate 'when'");
			jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_FAILED, 0, NULL,
			      err->message, 0);
			return STEP_FAILED;
		}
		if (!holds) {
			scrub(r, why, sizeof(why));
			snprintf(detail, dsize, "when: %s", why);
			jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_SKIPPED, 0, NULL,
			      detail, 0);
			return STEP_SKIPPED;
		}
	}
	if (st->check) {
		char why[512] = "";

		if ((rc = run_check(r, st, &holds, why, sizeof(why), err)) != 0)
			return STEP_FAILED;
		if (!holds && st->on_fail == RUNBOOK_ON_FAIL_SKIP) {
			snprintf(detail, dsize, "check: %s", why);
			return STEP_SKIPPED;
		}
		if (!holds) {
			st_error_set(err, ST_EABORTED, "precondition of step '%s' not met: %s", st->name,
				     why);
			return STEP_ABORTED;
		}
	}
	if (cancelled(r)) {
		st_error_set(err, ST_EABORTED, "interrupted before step '%s'", st->name);
		out = STEP_ABORTED;
		goto out;
	}
	if (st->confirm && run_confirm(r, st, err) != 0) {
		out = STEP_ABORTED;
		goto out;
	}

	t0 = time_monotonic();
	if ((rc = prepare(r, &st->act, &args, &shown, err)) != 0) {
		jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_FAILED, 0, NULL,
		      err->message, 0);
		out = STEP_FAILED;
		goto out;
	}
	if (invoke(r, st, &st->act, ENGINE_PHASE_ACT, 1, args, &result, err) != 0) {
		jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_FAILED,
		      time_monotonic() - t0, shown, err->message, 0);
		out = STEP_FAILED;
		goto out;
	}
	jstep(r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_OK, time_monotonic() - t0, shown,
	      NULL, 0);
	if (json_object_set(r->results, st->name, result)) {
		st_error_set(err, ST_ENOMEM, "out of memory");
		out = STEP_FAILED;
		goto out;
	}
	r->acted[i] = 1;
	if (st->verify && run_verify(r, st, attempts, err) != 0)
		out = STEP_FAILED;
out:
	/* A step whose action did not run or failed has no result, not its
	 * check's. */
	if (out != STEP_DONE && !r->acted[i])
		json_object_del(r->results, st->name);
	if (out == STEP_FAILED && cancelled(r))
		out = STEP_ABORTED;
	json_decref(args);
	json_decref(shown);
	json_decref(result);
	return out;
}

/* Compensates every acted step in reverse order. Returns the number of
 * undos that failed; the first failure is described in first. */
static size_t run_undo(struct run *r, struct st_error *first)
{
	size_t i, failed = 0, todo = 0;

	for (i = 0; i < r->rb->nsteps; i++)
		if (r->acted[i] && r->rb->steps[i].undo)
			todo++;
	if (todo == 0)
		return 0;
	notice(r, "undoing %zu completed step%s", todo, todo == 1 ? "" : "s");
	for (i = r->rb->nsteps; i > 0; i--) {
		const struct runbook_step *st = &r->rb->steps[i - 1];
		json_t *args = NULL, *shown = NULL, *result = NULL;
		struct st_error uerr = { 0 };
		double t0 = time_monotonic();
		int rc;

		if (!r->acted[i - 1] || !st->undo)
			continue;
		ui_start(r, i - 1, ENGINE_PHASE_UNDO);
		rc = prepare(r, st->undo, &args, &shown, &uerr);
		if (!rc)
			rc = invoke(r, st, st->undo, ENGINE_PHASE_UNDO, 1, args, &result, &uerr);
		jstep(r, st, st->undo->action, ENGINE_PHASE_UNDO,
		      rc ? ENGINE_RESULT_FAILED : ENGINE_RESULT_UNDONE, time_monotonic() - t0, shown,
		      rc ? uerr.message : NULL, 0);
		ui_end(r, i - 1, ENGINE_PHASE_UNDO, rc ? ENGINE_RESULT_FAILED : ENGINE_RESULT_UNDONE,
		       time_monotonic() - t0, 0, rc ? uerr.message : NULL);
		if (rc) {
			if (failed++ == 0) {
				*first = uerr;
				st_error_wrap(first, "undo of step '%s' failed", st->name);
			}
		} else {
			r->report->undone++;
		}
		json_decref(args);
		json_decref(shown);
		json_decref(result);
	}
	r->report->undo_failed = failed;
	return failed;
}

/* No lock or journal file could be made under state_dir: nothing ran, and
 * what to fix is the configuration or the directory (exit 2, not 1). */
static int state_dir_error(const struct engine_options *opts, struct st_error *err)
{
	if (err->code != ST_EIO)
		return err->code;
	err->code = ST_ECONFIG;
	if (!err->hint[0] || !strstr(err->hint, "state_dir"))
		st_error_hint(err, "check that state_dir '%s' is a directory this user can write",
			      opts->state_dir);
	return ST_ECONFIG;
}

void engine_lock_names_free(char **names)
{
	size_t i;

	for (i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
}

int engine_lock_names(const struct runbook *rb, const json_t *params, const struct engine_options *opts,
		      char ***out, struct st_error *err)
{
	struct redact_set secrets;
	struct expr_scope scope;
	char **names = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	memset(&secrets, 0, sizeof(secrets));
	memset(&scope, 0, sizeof(scope));
	scope.lookup_config = opts->lookup_config;
	scope.config_ud = opts->config_ud;
	scope.args = params;
	if (!(names = calloc(rb->nlocks + 1, sizeof(*names))) || engine_params_secrets(rb, params, &secrets)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < rb->nlocks; i++) {
		json_t *v = NULL;

		if ((rc = expr_eval_string(rb->locks[i], &scope, &v, err)) != 0) {
			if (rc == ST_ENOTFOUND)
				rc = err->code = ST_ECONFIG;
			st_error_wrap(err, "lock '%s'", rb->locks[i]);
			goto out;
		}
		names[i] = expr_to_text(v);
		json_decref(v);
		if (!names[i]) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory");
			goto out;
		}
		if (strcmp(names[i], rb->locks[i])) {
			char shown[256];

			snprintf(shown, sizeof(shown), "%s", names[i]);
			redact_set_scrub(&secrets, shown, sizeof(shown));
			if (strcmp(shown, names[i])) {
				rc = st_error_set(err, ST_EUSAGE, "lock '%s' would carry a secret parameter's value",
						  rb->locks[i]);
				goto out;
			}
		}
		if ((rc = lock_name_valid(names[i], err)) != 0)
			goto out;
	}
	*out = names;
	names = NULL;
out:
	engine_lock_names_free(names);
	redact_set_release(&secrets);
	return rc;
}

static int check_options(const struct engine_options *opts, struct st_error *err)
{
	if (!opts->dry_run && (!opts->state_dir || !*opts->state_dir))
		return st_error_set(err, ST_EUSAGE, "no state_dir to keep the lock and journal in");
	return 0;
}

/* The undo action of step name of runbook rb, or NULL. */
static const char *undo_of(const struct runbook *rb, const char *name)
{
	size_t i;

	for (i = 0; i < rb->nsteps; i++)
		if (!strcmp(rb->steps[i].name, name))
			return rb->steps[i].undo ? rb->steps[i].undo->action->name : NULL;
	return NULL;
}

/* The lock was taken over from pid, which died holding it: its run (in the
 * journal, a start and no end) stopped wherever it was, without undo. Say
 * what it left done, and end it in the journal so that this is said once. */
static void report_unfinished(struct run *r, long long pid)
{
	struct journal_unfinished u;
	struct st_error jerr = { 0 };
	struct sbuf what = SBUF_INIT;
	char why[160];
	size_t i;
	int found = 0, same;

	if (journal_find_unfinished(journal_path(r->journal), pid, &u, &found, &jerr) != 0) {
		notice(r, "warning: cannot look for the run of pid %lld in the journal: %s", pid, jerr.message);
		return;
	}
	if (!found)
		return;
	same = strcmp(u.runbook, r->rb->name) == 0;
	for (i = 0; i < u.nsteps; i++) {
		const char *undo = same ? undo_of(r->rb, u.steps[i]) : NULL;

		sbuf_printf(&what, "%s%s%s%s%s", i ? ", " : "", u.steps[i], undo ? " (its undo " : "",
			    undo ? undo : "", undo ? " never ran)" : "");
	}
	notice(r, "warning: run %s of '%s' (started %s) never finished: its process %lld died %s%s; "
	       "check what it left (journal %s)", u.run, u.runbook[0] ? u.runbook : "?", u.time, pid,
	       u.nsteps ? "after doing " : "before any step acted",
	       u.nsteps ? (sbuf_str(&what)[0] ? sbuf_str(&what) : "(out of memory)") : "",
	       journal_path(r->journal));
	snprintf(why, sizeof(why), "its process %lld died before the run ended (found by run %s)", pid,
		 r->jrun.id);
	if (journal_end_unfinished(r->journal, &u, why, &jerr) != 0)
		notice(r, "warning: %s", jerr.message);
	sbuf_release(&what);
	journal_unfinished_release(&u);
}

int engine_run(const struct runbook *rb, const json_t *params, const struct engine_options *opts,
	       struct engine_report *report, struct st_error *err)
{
	struct engine_report dummy;
	struct run r;
	struct lock_set *locks = NULL;
	char **lock_names = NULL;
	struct lock_takeover takeover;
	char *command_line = NULL;
	struct st_error serr = { 0 }, uerr = { 0 };
	double t0 = time_monotonic();
	size_t i;
	int rc = 0, stopped = 0;
	enum engine_result final = ENGINE_RESULT_OK;

	if (!report)
		report = &dummy;
	memset(report, 0, sizeof(*report));
	st_error_clear(err);
	if ((rc = check_options(opts, err)) != 0)
		return rc;
	if (opts->dry_run)
		return engine_plan(rb, params, opts, err);

	memset(&r, 0, sizeof(r));
	r.rb = rb;
	r.params = params;
	r.opts = opts;
	r.ui = opts->ui;
	r.report = report;
	r.results = json_object();
	r.acted = calloc(rb->nsteps, 1);
	r.shown_params = engine_params_redacted(rb, params);
	if (!r.results || !r.acted || !r.shown_params || redact_set_collect(&r.secrets, params, 0) ||
	    engine_params_secrets(rb, params, &r.secrets)) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory starting the run");
		goto out;
	}
	/* "run rotate api_token=..." puts a secret on the command line too. */
	if (opts->command_line &&
	    !(command_line = scrub_command_line(&r.secrets, opts->command_line))) {
		rc = st_error_set(err, ST_ENOMEM, "out of memory starting the run");
		goto out;
	}

	if (rb->nlocks) {
		if ((rc = engine_lock_names(rb, params, opts, &lock_names, err)) != 0)
			goto out;
		if ((rc = lock_acquire_set(opts->state_dir, (const char *const *)lock_names, rb->nlocks, command_line,
					   &locks, &takeover, err)) != 0) {
			rc = state_dir_error(opts, err);
			goto out;
		}
		if (takeover.stale)
			notice(&r, "%s", takeover.message);
	}
	if ((rc = journal_open(opts->state_dir, &r.journal, err)) != 0) {
		rc = state_dir_error(opts, err);
		goto out;
	}
	r.jrun.runbook = rb->name;
	r.jrun.command_line = command_line;
	r.jrun.incident = opts->incident;
	r.jrun.params = r.shown_params;
	if ((rc = journal_start(r.journal, &r.jrun, err)) != 0) {
		st_error_wrap(err, "refusing to run without a journal");
		rc = state_dir_error(opts, err);
		goto out;
	}
	snprintf(report->run_id, sizeof(report->run_id), "%s", r.jrun.id);
	if (locks && takeover.stale && takeover.previous.pid > 0)
		report_unfinished(&r, takeover.previous.pid);

	for (i = 0; i < rb->nsteps && !stopped; i++) {
		const struct runbook_step *st = &rb->steps[i];
		char detail[ST_ERROR_MESSAGE_MAX];
		double s0 = time_monotonic();
		enum step_outcome o;
		int attempts = 0;

		if (cancelled(&r)) {
			st_error_set(err, ST_EABORTED, "interrupted before step '%s'", st->name);
			final = ENGINE_RESULT_ABORTED;
			stopped = 1;
			break;
		}
		ui_start(&r, i, ENGINE_PHASE_ACT);
		st_error_clear(&serr);
		r.skip_code = 0;
		if (opts->deadline > 0 && time_monotonic() >= opts->deadline) {
			/* Past the run's deadline: the step is not started. */
			snprintf(detail, sizeof(detail), "not started: the run's deadline (%gs) passed",
				 opts->deadline_s);
			r.skip_code = ST_ETIMEOUT;
			jstep(&r, st, st->act.action, ENGINE_PHASE_ACT, ENGINE_RESULT_SKIPPED, 0, NULL,
			      detail, 0);
			o = STEP_SKIPPED;
		} else {
			o = run_step(&r, i, detail, sizeof(detail), &attempts, &serr);
		}
		switch (o) {
		case STEP_DONE:
			report->ok++;
			ui_end(&r, i, ENGINE_PHASE_ACT, ENGINE_RESULT_OK, time_monotonic() - s0, attempts,
			       NULL);
			break;
		case STEP_SKIPPED:
			report->skipped++;
			ui_end(&r, i, ENGINE_PHASE_ACT, ENGINE_RESULT_SKIPPED, time_monotonic() - s0,
			       attempts, detail);
			break;
		case STEP_FAILED:
			report->failed++;
			ui_end(&r, i, ENGINE_PHASE_ACT, ENGINE_RESULT_FAILED, time_monotonic() - s0,
			       attempts, serr.message);
			if (st->finding)
				break;
			if (st->continue_on_error) {
				notice(&r, "step '%s' failed; continuing (continue_on_error)", st->name);
				break;
			}
			*err = serr;
			err->code = ST_EFAILED;
			st_error_wrap(err, "step '%s' failed", st->name);
			final = ENGINE_RESULT_FAILED;
			stopped = 1;
			break;
		case STEP_ABORTED:
			ui_end(&r, i, ENGINE_PHASE_ACT, ENGINE_RESULT_ABORTED, time_monotonic() - s0,
			       attempts, serr.message);
			*err = serr;
			err->code = ST_EABORTED;
			final = ENGINE_RESULT_ABORTED;
			stopped = 1;
			break;
		}
	}
	if (stopped && run_undo(&r, &uerr) > 0) {
		st_error_hint(err, "%s; check its state by hand (journal: %s)", uerr.message,
			      journal_path(r.journal));
	}
	rc = stopped ? err->code : 0;
	scrub_err(&r, err);
	{
		struct st_error jerr = { 0 };

		if (journal_end(r.journal, &r.jrun, engine_result_name(final), rc,
				rc ? err->message : NULL, &jerr) != 0) {
			if (!report->journal_failed)
				notice(&r, "warning: %s", jerr.message);
			report->journal_failed = 1;
		}
	}
out:
	report->duration = time_monotonic() - t0;
	if (opts->keep_results && r.results && report != &dummy)
		report->results = json_incref(r.results);
	journal_close(r.journal);
	lock_release_set(locks);
	engine_lock_names_free(lock_names);
	json_decref(r.results);
	redact_set_release(&r.secrets);
	json_decref(r.shown_params);
	free(r.acted);
	free(command_line);
	return rc;
}
