/*
 * engine_plan.c - the plan in words, for `runbook show` (references as
 * written) and --dry-run (parameters and configuration resolved, secrets
 * redacted). Nothing runs.
 */
#include "engine.h"
#include "expr.h"
#include "redact.h"
#include "runbook.h"
#include "sbuf.h"
#include "timeutil.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct plan {
	const struct engine_options *opts;
	struct expr_scope scope;
	int resolved;             /* dry-run: params given */
	struct redact_set secrets;/* secret values seen so far, scrubbed from the text */
	struct sbuf line;
};

static void emit(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct plan *p, const char *fmt, ...)
{
	va_list ap;

	sbuf_reset(&p->line);
	va_start(ap, fmt);
	sbuf_vprintf(&p->line, fmt, ap);
	va_end(ap);
	if (p->opts->ui && p->opts->ui->plan)
		p->opts->ui->plan(p->opts->ui->ud, sbuf_str(&p->line));
}

/* A value for display: plain when it reads unambiguously, quoted otherwise. */
static int show_value(struct sbuf *sb, const json_t *v)
{
	char *t = expr_to_text(v);
	const char *c;
	int quote = 0, rc;

	if (!t)
		return ST_ENOMEM;
	if (json_is_string(v)) {
		quote = !*t;
		for (c = t; *c; c++) {
			if (isspace((unsigned char)*c) || *c == '\'' || *c == '"')
				quote = 1;
			/* A plan line must stay one line: escape like JSON. */
			if (iscntrl((unsigned char)*c))
				quote = 2;
		}
	}
	if (quote == 2) {
		char *j = json_dumps(v, JSON_ENCODE_ANY);

		rc = j ? sbuf_puts(sb, j) : ST_ENOMEM;
		free(j);
	} else {
		rc = quote ? sbuf_printf(sb, "'%s'", t) : sbuf_puts(sb, t);
	}
	free(t);
	return rc;
}

static int show_args(struct plan *p, struct sbuf *sb, const struct engine_action *a,
		     const json_t *args)
{
	json_t *red;
	const char *k;
	json_t *v;
	int rc = 0;

	json_object_foreach((json_t *)args, k, v) {
		const struct engine_arg_spec *s = engine_action_arg(a, k);

		if (redact_set_collect(&p->secrets, v, (s && (s->flags & ENGINE_ARG_SECRET)) ||
							       redact_name_is_secret(k)))
			return ST_ENOMEM;
	}
	red = engine_args_redacted(a, args);
	if (!red || redact_set_scrub_json(&p->secrets, red) != 0) {
		json_decref(red);
		return ST_ENOMEM;
	}
	json_object_foreach(red, k, v) {
		if ((rc = sbuf_printf(sb, " %s=", k)) != 0 || (rc = show_value(sb, v)) != 0)
			break;
	}
	json_decref(red);
	return rc;
}

static int show_expect(struct sbuf *sb, const json_t *expect)
{
	const char *k;
	json_t *v;
	int first = 1, rc = 0;

	json_object_foreach((json_t *)expect, k, v) {
		enum expr_op op = EXPR_OP_LITERAL;
		const char *operand;
		struct st_error ignored;

		if ((rc = sbuf_printf(sb, "%s%s ", first ? "" : ", ", k)) != 0)
			break;
		first = 0;
		if (json_is_string(v) &&
		    expr_parse_op(json_string_value(v), &op, &operand, &ignored) == 0 &&
		    op != EXPR_OP_LITERAL)
			rc = sbuf_puts(sb, json_string_value(v));
		else if ((rc = sbuf_puts(sb, json_is_null(v) ? "is absent or " : "== ")) == 0)
			rc = show_value(sb, v);
		if (rc)
			break;
	}
	return rc;
}

/* "ACTION k=v ..." with templates resolved as far as the plan allows. */
static int show_call(struct plan *p, struct sbuf *sb, const struct runbook_call *call,
		     struct st_error *err)
{
	json_t *args = NULL;
	int rc;

	const struct engine_arg_spec *spec;

	if ((rc = expr_resolve(call->args, &p->scope, &args, err)) != 0)
		return rc;
	/* Defaults are part of what will run: show them too. */
	for (spec = call->action->args; spec && spec->name; spec++) {
		json_t *v = json_object_get(args, spec->name);

		if ((!v || json_is_null(v)) && spec->def &&
		    json_object_set_new(args, spec->name, json_string(spec->def))) {
			json_decref(args);
			return st_error_set(err, ST_ENOMEM, "out of memory");
		}
	}
	if ((rc = sbuf_puts(sb, call->action->name)) == 0)
		rc = show_args(p, sb, call->action, args);
	json_decref(args);
	if (rc == 0 && (call->action->flags & ENGINE_ACTION_DESTRUCTIVE))
		rc = sbuf_puts(sb, " (destructive)");
	return rc ? (rc == ST_ENOMEM ? st_error_set(err, ST_ENOMEM, "out of memory") : rc) : 0;
}

static int show_text(struct plan *p, const char *tmpl, char **out, struct st_error *err)
{
	json_t *v = NULL;
	int rc = expr_eval_string(tmpl, &p->scope, &v, err);

	*out = NULL;
	if (rc)
		return rc;
	if (redact_set_scrub_json(&p->secrets, v) == 0)
		*out = expr_to_text(v);
	json_decref(v);
	return *out ? 0 : st_error_set(err, ST_ENOMEM, "out of memory");
}

static int plan_step(struct plan *p, const struct runbook *rb, size_t i, struct st_error *err)
{
	const struct runbook_step *st = &rb->steps[i];
	struct sbuf sb = SBUF_INIT;
	char *text = NULL, *word = NULL;
	char d1[32], d2[32];
	int rc = 0;

	emit(p, "  %zu. %s%s%s", i + 1, st->name, st->description ? ": " : "",
	     st->description ? st->description : "");
	if (st->when) {
		char why[512] = "";
		int holds = -1;

		if (p->resolved &&
		    (rc = expr_condition(st->when, &p->scope, &holds, why, sizeof(why), err)) != 0)
			goto out;
		emit(p, "     when: %s%s", st->when,
		     holds == 1 ? " (holds now)"
		     : holds == 0 ? " (false now: the step will be skipped)" : "");
	}
	if (st->check) {
		sbuf_reset(&sb);
		if ((rc = show_call(p, &sb, st->check, err)) != 0)
			goto out;
		if (st->check->expect && (sbuf_puts(&sb, "; expect ") || show_expect(&sb, st->check->expect)))
			goto nomem;
		emit(p, "     check: %s; otherwise %s", sbuf_str(&sb),
		     st->on_fail == RUNBOOK_ON_FAIL_SKIP ? "skip the step" : "abort the run");
	}
	if (st->confirm) {
		if ((rc = show_text(p, st->confirm, &text, err)) != 0)
			goto out;
		if (st->confirm_word && (rc = show_text(p, st->confirm_word, &word, err)) != 0)
			goto out;
		emit(p, "     confirm: %s%s%s%s%s", text, word ? " (type '" : "", word ? word : "",
		     word ? "')" : "", p->opts->assume_yes ? " [--yes given]" : "");
	}
	sbuf_reset(&sb);
	if ((rc = show_call(p, &sb, &st->act, err)) != 0)
		goto out;
	emit(p, "     run: %s", sbuf_str(&sb));
	if (st->finding) {
		const struct runbook_finding *f = st->finding;
		const char *sev = f->severity == RUNBOOK_SEVERITY_WARN ? "warn" : "problem";

		sbuf_reset(&sb);
		if (!f->expect) {
			if (sbuf_puts(&sb, "informational (always ok)"))
				goto nomem;
		} else if (sbuf_puts(&sb, "ok when ") || show_expect(&sb, f->expect) ||
			   sbuf_printf(&sb, "; otherwise %s", sev)) {
			goto nomem;
		}
		if (f->warn_expect && (sbuf_puts(&sb, "; warn unless ") ||
				       show_expect(&sb, f->warn_expect)))
			goto nomem;
		emit(p, "     finding: %s", sbuf_str(&sb));
		if (f->fix)
			emit(p, "     fix: %s", f->fix);
		if (f->fix_runbook) {
			sbuf_reset(&sb);
			if (sbuf_printf(&sb, "%s", f->fix_runbook))
				goto nomem;
			if (f->fix_params) {
				const char *k;
				json_t *v;

				json_object_foreach(f->fix_params, k, v) {
					if (sbuf_printf(&sb, " %s=", k) || show_value(&sb, v))
						goto nomem;
				}
			}
			emit(p, "     automatic fix: run %s", sbuf_str(&sb));
		}
	}
	if (st->verify) {
		sbuf_reset(&sb);
		if ((rc = show_call(p, &sb, st->verify, err)) != 0)
			goto out;
		if (st->verify->expect && (sbuf_puts(&sb, "; until ") || show_expect(&sb, st->verify->expect)))
			goto nomem;
		emit(p, "     verify: %s (timeout %s, every %s)", sbuf_str(&sb),
		     time_format_duration(st->verify_timeout, d1, sizeof(d1)),
		     time_format_duration(st->verify_interval, d2, sizeof(d2)));
	}
	if (st->undo) {
		sbuf_reset(&sb);
		if ((rc = show_call(p, &sb, st->undo, err)) != 0)
			goto out;
		emit(p, "     undo: %s", sbuf_str(&sb));
	}
	if (st->continue_on_error)
		emit(p, "     on error: continue with the next step");
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory rendering the plan");
out:
	if (rc && rc != ST_ENOMEM)
		st_error_wrap(err, "step '%s'", st->name);
	free(text);
	free(word);
	sbuf_release(&sb);
	return rc;
}

int engine_plan(const struct runbook *rb, const json_t *params, const struct engine_options *opts,
		struct st_error *err)
{
	struct plan p;
	struct sbuf sb = SBUF_INIT;
	size_t i;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.opts = opts;
	p.resolved = params != NULL;
	p.scope.lookup_config = opts->lookup_config;
	p.scope.config_ud = opts->config_ud;
	p.scope.args = params;
	p.scope.keep = EXPR_KEEP_STEPS | (params ? 0 : EXPR_KEEP_ARGS | EXPR_KEEP_CONFIG);
	if (params && (redact_set_collect(&p.secrets, params, 0) ||
		       engine_params_secrets(rb, params, &p.secrets)))
		return st_error_set(err, ST_ENOMEM, "out of memory rendering the plan");

	emit(&p, "runbook %s%s%s", rb->name, rb->description ? ": " : "",
	     rb->description ? rb->description : "");
	emit(&p, "source: %s", rb->source);
	/* The locks the run would take: resolved in a dry run, as written by
	 * runbook show. */
	{
		char **names = NULL;
		const char *const *shown = (const char *const *)rb->locks;

		if (params && rb->nlocks) {
			if ((rc = engine_lock_names(rb, params, opts, &names, err)) != 0)
				goto out;
			shown = (const char *const *)names;
		}
		sbuf_reset(&sb);
		for (i = 0; i < rb->nlocks; i++)
			sbuf_printf(&sb, "%s%s", i ? ", " : "", shown[i]);
		emit(&p, "lock: %s", rb->nlocks ? sbuf_str(&sb) : "none");
		engine_lock_names_free(names);
	}
	if (rb->nparams)
		emit(&p, "params:");
	for (i = 0; i < rb->nparams; i++) {
		const struct runbook_param *par = &rb->params[i];
		const json_t *v = params ? json_object_get(params, par->name) : par->def;

		sbuf_reset(&sb);
		if (sbuf_printf(&sb, "  %s", par->name))
			goto nomem;
		if (v && !json_is_null(v)) {
			if (sbuf_puts(&sb, " = "))
				goto nomem;
			if (par->secret ? sbuf_puts(&sb, REDACTED) : show_value(&sb, v))
				goto nomem;
		}
		if (!params && (par->required || !par->def) &&
		    sbuf_puts(&sb, par->required ? " (required)" : " (optional)"))
			goto nomem;
		if (!params && par->def && sbuf_puts(&sb, " (default)"))
			goto nomem;
		if (par->description && sbuf_printf(&sb, " - %s", par->description))
			goto nomem;
		emit(&p, "%s", sbuf_str(&sb));
	}
	emit(&p, "steps:");
	for (i = 0; i < rb->nsteps; i++)
		if ((rc = plan_step(&p, rb, i, err)) != 0)
			goto out;
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory rendering the plan");
out:
	/* A ${config.*} the plan cannot resolve is a configuration to fix
	 * (exit 2), not a step that failed. */
	if (rc == ST_ENOTFOUND) {
		rc = err->code = ST_ECONFIG;
		if (!err->hint[0])
			st_error_hint(err, "set it in the configuration (see 'spilttea-ops config show')");
	}
	sbuf_release(&sb);
	sbuf_release(&p.line);
	redact_set_release(&p.secrets);
	return rc;
}
