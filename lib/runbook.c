#include "runbook.h"
#include "engine.h"
#include "expr.h"
#include "lock.h"
#include "redact.h"
#include "sbuf.h"
#include "yamltree.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* State while loading one runbook. */
struct loader {
	const struct engine_registry *reg;
	struct runbook *rb;
	const struct yt_node *steps_node;
	size_t step;          /* index of the step being loaded */
	int allow_self;       /* verify and undo may use the step's own result */
};

static const char *const top_keys[] = { "name", "description", "lock", "params", "steps", NULL };
static const char *const param_keys[] = { "description", "default", "required", "secret", NULL };
static const char *const step_keys[] = { "name", "description", "action", "args", "when", "check",
					 "verify", "undo", "confirm", "continue_on_error", "finding",
					 NULL };
static const char *const check_keys[] = { "action", "args", "expect", "on_fail", NULL };
static const char *const verify_keys[] = { "action", "args", "expect", "timeout", "interval", NULL };
static const char *const undo_keys[] = { "action", "args", NULL };
static const char *const confirm_keys[] = { "prompt", "type", NULL };
static const char *const finding_keys[] = { "expect", "warn_expect", "severity", "message", "ok",
					    "evidence", "fix", "fix_runbook", "fix_params", NULL };

static int valid_name(const char *s)
{
	const char *p;

	if (!s || !*s || strlen(s) > 64)
		return 0;
	for (p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return 0;
	return 1;
}

/* Rejects keys of map not in allowed; what names the mapping ("step 'x'"). */
static int check_keys_of(const struct yt_node *map, const char *const *allowed, const char *what,
			 struct st_error *err)
{
	size_t i, j;

	for (i = 0; i < map->count; i++) {
		const char *k = map->keys[i]->scalar;
		int ok = 0;
		struct sbuf list = SBUF_INIT;
		int rc;

		for (j = 0; allowed[j]; j++)
			if (!strcmp(k, allowed[j]))
				ok = 1;
		if (ok)
			continue;
		for (j = 0; allowed[j]; j++)
			if (sbuf_printf(&list, "%s%s", j ? ", " : "", allowed[j]))
				break;
		rc = yt_error_at(err, ST_ECONFIG, map->keys[i], "unknown key '%s' in %s (expected %s)", k,
				 what, sbuf_str(&list));
		sbuf_release(&list);
		return rc;
	}
	return 0;
}

static int want_map(const struct yt_node *n, const char *what, struct st_error *err)
{
	if (n->kind != YT_MAP)
		return yt_error_at(err, ST_ECONFIG, n, "%s must be a mapping, not a %s", what,
				   yt_kind_name(n->kind));
	return 0;
}

static int get_string(const struct yt_node *n, const char *what, char **out, struct st_error *err)
{
	if (n->kind != YT_SCALAR)
		return yt_error_at(err, ST_ECONFIG, n, "%s must be a string, not a %s", what,
				   yt_kind_name(n->kind));
	if (yt_is_null(n))
		return yt_error_at(err, ST_ECONFIG, n, "%s must not be empty", what);
	*out = strdup(n->scalar);
	if (!*out)
		return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
	return 0;
}

/* Repositions an error produced without a position (expr, arg checks). */
static int at(struct st_error *err, const struct yt_node *n, int rc)
{
	char msg[ST_ERROR_MESSAGE_MAX];

	if (rc == ST_ENOMEM)
		return rc;
	snprintf(msg, sizeof(msg), "%s", err->message);
	return yt_error_at(err, ST_ECONFIG, n, "%s", msg);
}

static int ref_check(void *ud, enum expr_ns ns, const char *path, size_t pathlen,
		     struct st_error *err)
{
	struct loader *ld = ud;
	const char *dot = memchr(path, '.', pathlen);
	size_t n = dot ? (size_t)(dot - path) : pathlen;
	char name[128];
	size_t i;

	if (ns == EXPR_NS_CONFIG)
		return 0;
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, path, n);
	name[n] = '\0';
	if (ns == EXPR_NS_ARGS) {
		if (runbook_find_param(ld->rb, name))
			return 0;
		return st_error_set(err, ST_ECONFIG, "unknown parameter '%s' in '${args.%.*s}'", name,
				    (int)pathlen, path);
	}
	for (i = 0; i < ld->steps_node->count; i++) {
		const char *s = yt_scalar(yt_map_get(ld->steps_node->values[i], "name"));

		if (!s || strcmp(s, name))
			continue;
		if (i < ld->step || (i == ld->step && ld->allow_self))
			return 0;
		if (i == ld->step)
			return st_error_set(err, ST_ECONFIG,
					    "'${steps.%.*s}' uses the result of step '%s' before it ran; "
					    "only its verify, undo and finding can (and its confirm, "
					    "what its check found)", (int)pathlen, path, name);
		return st_error_set(err, ST_ECONFIG,
				    "'${steps.%.*s}' uses step '%s', which runs later", (int)pathlen, path,
				    name);
	}
	return st_error_set(err, ST_ECONFIG, "unknown step '%s' in '${steps.%.*s}'", name,
			    (int)pathlen, path);
}

static int scan_refs(struct loader *ld, const struct yt_node *n, const char *text,
		     struct st_error *err)
{
	int rc = expr_scan(text, ref_check, ld, err);

	return rc ? at(err, n, rc) : 0;
}

/* yt_to_json callback: every reference in a string is checked. */
static int check_string_refs(void *ud, const struct yt_node *n, struct st_error *err)
{
	return scan_refs(ud, n, n->scalar, err);
}

/* YAML -> JSON (yamltree's core schema), checking every reference in
 * strings on the way. */
static int to_json(struct loader *ld, const struct yt_node *n, json_t **out, struct st_error *err)
{
	int rc = yt_to_json(n, check_string_refs, ld, out, err);

	if (rc == ST_ENOMEM)
		st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
	return rc;
}

static int valid_result_path(const char *p)
{
	if (!strcmp(p, "."))
		return 1;
	if (!*p || *p == '.')
		return 0;
	for (; *p; p++) {
		if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
			return 0;
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return 0;
	}
	return 1;
}

static int load_expect(struct loader *ld, const struct yt_node *n, json_t **out,
		       struct st_error *err)
{
	json_t *exp = NULL;
	size_t i;
	int rc;

	if ((rc = want_map(n, "expect", err)) != 0)
		return rc;
	if (n->count == 0)
		return yt_error_at(err, ST_ECONFIG, n, "expect must name at least one result path");
	for (i = 0; i < n->count; i++) {
		const struct yt_node *k = n->keys[i], *v = n->values[i];

		if (!valid_result_path(k->scalar))
			return yt_error_at(err, ST_ECONFIG, k,
					   "bad result path '%s' in expect: use field names joined by "
					   "dots ('body.status', 'rows.0.count') or '.'", k->scalar);
		if (v->kind == YT_SCALAR && !yt_is_null(v)) {
			enum expr_op op;
			const char *operand;

			if ((rc = expr_parse_op(v->scalar, &op, &operand, err)) != 0)
				return at(err, v, rc);
		}
	}
	if ((rc = to_json(ld, n, &exp, err)) != 0)
		return rc;
	*out = exp;
	return 0;
}

/* "${" anywhere in v, escaped "$${" included: text that must be literal
 * has no business with either. */
static int has_dollar_brace(const json_t *v)
{
	const char *k;
	json_t *m;
	size_t i;

	if (json_is_string(v))
		return strstr(json_string_value(v), "${") != NULL;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, m)
			if (strstr(k, "${") || has_dollar_brace(m))
				return 1;
	}
	if (json_is_array(v))
		json_array_foreach(v, i, m)
			if (has_dollar_brace(m))
				return 1;
	return 0;
}

/* expr_scan callback: a parameter referenced from a secret value is secret. */
static int mark_secret_ref(void *ud, enum expr_ns ns, const char *path, size_t pathlen,
			   struct st_error *err)
{
	struct runbook *rb = ud;
	const char *dot = memchr(path, '.', pathlen);
	size_t n = dot ? (size_t)(dot - path) : pathlen, i;

	(void)err;
	if (ns != EXPR_NS_ARGS)
		return 0;
	for (i = 0; i < rb->nparams; i++)
		if (strlen(rb->params[i].name) == n && !strncmp(rb->params[i].name, path, n))
			rb->params[i].secret = 1;
	return 0;
}

/* Marks the parameters that v passes on where they are secret: everything
 * in v when secret, else under secret-sounding keys. v's references were
 * checked by to_json already. */
static void mark_secret_params(struct runbook *rb, const json_t *v, int secret)
{
	struct st_error ignored;
	const char *k;
	json_t *m;
	size_t i;

	if (json_is_string(v) && secret)
		(void)expr_scan(json_string_value(v), mark_secret_ref, rb, &ignored);
	else if (json_is_object(v))
		json_object_foreach((json_t *)v, k, m)
			mark_secret_params(rb, m, secret || redact_name_is_secret(k));
	else if (json_is_array(v))
		json_array_foreach(v, i, m)
			mark_secret_params(rb, m, secret);
}

static int load_args(struct loader *ld, const struct engine_action *action,
		     const struct yt_node *args, const struct yt_node *owner, json_t **out,
		     struct st_error *err)
{
	const struct engine_arg_spec *spec;
	json_t *obj = NULL, *tmp = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (args && !yt_is_null(args) && (rc = want_map(args, "args", err)) != 0)
		return rc;
	if (args && args->kind == YT_MAP) {
		for (i = 0; i < args->count; i++) {
			const char *k = args->keys[i]->scalar;

			if (engine_action_arg(action, k))
				continue;
			{
				struct sbuf list = SBUF_INIT;

				for (spec = action->args; spec && spec->name; spec++)
					sbuf_printf(&list, "%s%s", list.len ? ", " : "", spec->name);
				rc = yt_error_at(err, ST_ECONFIG, args->keys[i],
						 "unknown argument '%s' for action '%s' (it takes: %s)", k,
						 action->name, list.len ? sbuf_str(&list) : "no arguments");
				sbuf_release(&list);
				return rc;
			}
		}
		if ((rc = to_json(ld, args, &obj, err)) != 0)
			return rc;
	} else {
		obj = json_object();
		if (!obj)
			return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
	}
	for (spec = action->args; spec && spec->name; spec++) {
		json_t *v = json_object_get(obj, spec->name);
		const struct yt_node *vn = yt_map_get(args, spec->name);

		if (!v || json_is_null(v)) {
			if ((spec->flags & ENGINE_ARG_REQUIRED) && !spec->def) {
				rc = yt_error_at(err, ST_ECONFIG, args && args->kind == YT_MAP ? args : owner,
						 "action '%s' needs argument '%s'", action->name,
						 spec->name);
				goto out;
			}
			continue;
		}
		if ((spec->flags & ENGINE_ARG_LITERAL) && has_dollar_brace(v)) {
			rc = yt_error_at(err, ST_ECONFIG, vn ? vn : owner,
					 "argument '%s' of action '%s' must be written out, without "
					 "'${...}': pass values as parameters ($1, $2 ...)", spec->name,
					 action->name);
			goto out;
		}
		/* A literal can be type-checked now; templates only at run time. */
		mark_secret_params(ld->rb, v, (spec->flags & ENGINE_ARG_SECRET) ||
						  redact_name_is_secret(spec->name));
		if (json_is_string(v) && expr_has_refs(json_string_value(v)))
			continue;
		if ((json_is_object(v) || json_is_array(v)) && has_dollar_brace(v) &&
		    spec->type != ENGINE_ARG_ARRAY && spec->type != ENGINE_ARG_OBJECT)
			continue;
		if ((rc = engine_arg_convert(spec, v, &tmp, err)) != 0) {
			rc = at(err, vn ? vn : owner, rc);
			goto out;
		}
		json_decref(tmp);
		tmp = NULL;
	}
	*out = obj;
	obj = NULL;
out:
	json_decref(obj);
	return rc;
}

/* action + args (+ expect) of a step, check, verify or undo. */
static int load_call(struct loader *ld, const struct yt_node *map, const char *what,
		     int read_only, int with_expect, struct runbook_call *call, struct st_error *err)
{
	const struct yt_node *an = yt_map_get(map, "action");
	const struct yt_node *en;
	char *name = NULL;
	int rc;

	call->line = map->line;
	call->column = map->column;
	if (!an)
		return yt_error_at(err, ST_ECONFIG, map, "%s needs an 'action'", what);
	if ((rc = get_string(an, "action", &name, err)) != 0)
		return rc;
	call->action = engine_registry_find(ld->reg, name);
	if (!call->action) {
		rc = yt_error_at(err, ST_ECONFIG, an, "unknown action '%s' in %s", name, what);
		st_error_hint(err, "see the actions in 'spilttea-ops runbook actions'");
		free(name);
		return rc;
	}
	free(name);
	if (read_only && !(call->action->flags & ENGINE_ACTION_READ_ONLY))
		return yt_error_at(err, ST_ECONFIG, an,
				   "%s uses action '%s', which changes things: checks and verifies "
				   "take read-only actions", what, call->action->name);
	if ((rc = load_args(ld, call->action, yt_map_get(map, "args"), map, &call->args, err)) != 0)
		return rc;
	en = yt_map_get(map, "expect");
	if (en && with_expect && (rc = load_expect(ld, en, &call->expect, err)) != 0)
		return rc;
	return 0;
}

static int load_sub(struct loader *ld, const struct yt_node *n, const char *const *keys,
		    const char *what, int read_only, int with_expect, struct runbook_call **out,
		    struct st_error *err)
{
	struct runbook_call *call;
	int rc;

	if ((rc = want_map(n, what, err)) != 0 || (rc = check_keys_of(n, keys, what, err)) != 0)
		return rc;
	call = calloc(1, sizeof(*call));
	if (!call)
		return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
	*out = call;
	return load_call(ld, n, what, read_only, with_expect, call, err);
}

static int load_confirm(struct loader *ld, struct runbook_step *st, const struct yt_node *n,
			struct st_error *err)
{
	const struct yt_node *p, *t;
	int rc;

	if (n->kind == YT_SCALAR) {
		if ((rc = get_string(n, "confirm", &st->confirm, err)) != 0)
			return rc;
		return scan_refs(ld, n, st->confirm, err);
	}
	if ((rc = want_map(n, "confirm", err)) != 0 ||
	    (rc = check_keys_of(n, confirm_keys, "confirm", err)) != 0)
		return rc;
	p = yt_map_get(n, "prompt");
	t = yt_map_get(n, "type");
	if (!p)
		return yt_error_at(err, ST_ECONFIG, n, "confirm needs a 'prompt'");
	if ((rc = get_string(p, "confirm.prompt", &st->confirm, err)) != 0 ||
	    (rc = scan_refs(ld, p, st->confirm, err)) != 0)
		return rc;
	if (t) {
		if ((rc = get_string(t, "confirm.type", &st->confirm_word, err)) != 0 ||
		    (rc = scan_refs(ld, t, st->confirm_word, err)) != 0)
			return rc;
		if (strpbrk(st->confirm_word, " \t\n"))
			return yt_error_at(err, ST_ECONFIG, t, "confirm.type must be one word");
	}
	return 0;
}

/* A template string of a finding (message, ok, fix). */
static int finding_text(struct loader *ld, const struct yt_node *map, const char *key,
			char **out, struct st_error *err)
{
	const struct yt_node *v = yt_map_get(map, key);
	char what[64];
	int rc;

	if (!v)
		return 0;
	snprintf(what, sizeof(what), "finding.%s", key);
	if ((rc = get_string(v, what, out, err)) != 0)
		return rc;
	return scan_refs(ld, v, *out, err);
}

/* The finding of a step; its templates may use the step's own result
 * (ld->allow_self is set). */
static int load_finding(struct loader *ld, struct runbook_step *st, const struct yt_node *n,
			struct st_error *err)
{
	static const char *const forbidden[] = { "check", "confirm", "verify", "undo",
						 "continue_on_error", NULL };
	const struct yt_node *step = ld->steps_node->values[ld->step], *v;
	struct runbook_finding *f;
	size_t i;
	int rc;

	for (i = 0; forbidden[i]; i++)
		if ((v = yt_map_get(step, forbidden[i])) != NULL)
			return yt_error_at(err, ST_ECONFIG, v,
					   "finding step '%s' only observes: it takes no '%s'", st->name,
					   forbidden[i]);
	if (!(st->act.action->flags & ENGINE_ACTION_READ_ONLY))
		return yt_error_at(err, ST_ECONFIG, yt_map_get(step, "action"),
				   "finding step '%s' uses action '%s', which changes things: findings "
				   "take read-only actions", st->name, st->act.action->name);
	if ((rc = want_map(n, "finding", err)) != 0 ||
	    (rc = check_keys_of(n, finding_keys, "finding", err)) != 0)
		return rc;
	f = calloc(1, sizeof(*f));
	if (!f)
		return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
	st->finding = f;
	f->line = n->line;
	f->column = n->column;
	f->severity = RUNBOOK_SEVERITY_PROBLEM;
	if ((v = yt_map_get(n, "severity")) != NULL) {
		const char *sv = yt_scalar(v);

		if (sv && !strcmp(sv, "warn"))
			f->severity = RUNBOOK_SEVERITY_WARN;
		else if (!sv || strcmp(sv, "problem"))
			return yt_error_at(err, ST_ECONFIG, v, "finding.severity must be warn or problem");
	}
	if ((v = yt_map_get(n, "expect")) != NULL && (rc = load_expect(ld, v, &f->expect, err)) != 0)
		return rc;
	if ((v = yt_map_get(n, "warn_expect")) != NULL) {
		if (!f->expect)
			return yt_error_at(err, ST_ECONFIG, v, "finding.warn_expect needs an 'expect'");
		if (f->severity == RUNBOOK_SEVERITY_WARN)
			return yt_error_at(err, ST_ECONFIG, v,
					   "finding.warn_expect needs severity problem (it is the step "
					   "below it)");
		if ((rc = load_expect(ld, v, &f->warn_expect, err)) != 0)
			return rc;
	}
	if (!yt_map_get(n, "message"))
		return yt_error_at(err, ST_ECONFIG, n, "finding needs a 'message'");
	if ((rc = finding_text(ld, n, "message", &f->message, err)) != 0 ||
	    (rc = finding_text(ld, n, "ok", &f->ok, err)) != 0 ||
	    (rc = finding_text(ld, n, "fix", &f->fix, err)) != 0)
		return rc;
	if ((v = yt_map_get(n, "evidence")) != NULL) {
		if (v->kind != YT_SEQ)
			return yt_error_at(err, ST_ECONFIG, v, "finding.evidence must be a list of result paths");
		for (i = 0; i < v->count; i++)
			if (v->values[i]->kind != YT_SCALAR || !valid_result_path(v->values[i]->scalar))
				return yt_error_at(err, ST_ECONFIG, v->values[i],
						   "bad result path in finding.evidence: use field names "
						   "joined by dots ('rows.0.count')");
		if ((rc = to_json(ld, v, &f->evidence, err)) != 0)
			return rc;
	}
	if ((v = yt_map_get(n, "fix_runbook")) != NULL) {
		if ((rc = get_string(v, "finding.fix_runbook", &f->fix_runbook, err)) != 0)
			return rc;
		if (!valid_name(f->fix_runbook))
			return yt_error_at(err, ST_ECONFIG, v,
					   "invalid runbook name '%s' in finding.fix_runbook", f->fix_runbook);
	}
	if ((v = yt_map_get(n, "fix_params")) != NULL) {
		if (!f->fix_runbook)
			return yt_error_at(err, ST_ECONFIG, v, "finding.fix_params needs a 'fix_runbook'");
		if ((rc = want_map(v, "finding.fix_params", err)) != 0 ||
		    (rc = to_json(ld, v, &f->fix_params, err)) != 0)
			return rc;
	}
	return 0;
}

static int load_step(struct loader *ld, const struct yt_node *n, struct runbook_step *st,
		     struct st_error *err)
{
	const struct yt_node *v;
	char what[128];
	int rc;

	st->line = n->line;
	st->column = n->column;
	st->verify_timeout = RUNBOOK_VERIFY_TIMEOUT;
	st->verify_interval = RUNBOOK_VERIFY_INTERVAL;
	/* name was validated by the first pass. */
	st->name = strdup(yt_scalar(yt_map_get(n, "name")));
	if (!st->name)
		return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
	snprintf(what, sizeof(what), "step '%s'", st->name);
	if ((rc = check_keys_of(n, step_keys, what, err)) != 0)
		return rc;
	if ((v = yt_map_get(n, "description")) && !yt_is_null(v) &&
	    (rc = get_string(v, "description", &st->description, err)) != 0)
		return rc;
	ld->allow_self = 0;
	if ((v = yt_map_get(n, "when")) != NULL) {
		if (v->kind != YT_SCALAR || yt_is_null(v))
			return yt_error_at(err, ST_ECONFIG, v,
					   "when must be a condition like \"${args.x} == yes\"");
		if ((rc = expr_condition_scan(v->scalar, ref_check, ld, err)) != 0)
			return at(err, v, rc);
		if (!(st->when = strdup(v->scalar)))
			return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
	}
	if ((v = yt_map_get(n, "check")) != NULL) {
		snprintf(what, sizeof(what), "the check of step '%s'", st->name);
		if ((rc = load_sub(ld, v, check_keys, what, 1, 1, &st->check, err)) != 0)
			return rc;
		if ((v = yt_map_get(v, "on_fail")) != NULL) {
			const char *s = yt_scalar(v);

			if (s && !strcmp(s, "abort"))
				st->on_fail = RUNBOOK_ON_FAIL_ABORT;
			else if (s && !strcmp(s, "skip"))
				st->on_fail = RUNBOOK_ON_FAIL_SKIP;
			else
				return yt_error_at(err, ST_ECONFIG, v, "on_fail must be abort or skip");
		}
	}
	/* A confirm may show what the step's own check found. */
	ld->allow_self = st->check != NULL;
	if ((v = yt_map_get(n, "confirm")) != NULL && (rc = load_confirm(ld, st, v, err)) != 0)
		return rc;
	ld->allow_self = 0;
	snprintf(what, sizeof(what), "step '%s'", st->name);
	if ((rc = load_call(ld, n, what, 0, 0, &st->act, err)) != 0)
		return rc;
	if ((st->act.action->flags & ENGINE_ACTION_DESTRUCTIVE) && !st->confirm)
		return yt_error_at(err, ST_ECONFIG, yt_map_get(n, "action"),
				   "step '%s' runs destructive action '%s' and needs a 'confirm'",
				   st->name, st->act.action->name);
	ld->allow_self = 1;
	if ((v = yt_map_get(n, "verify")) != NULL) {
		const struct yt_node *t;

		snprintf(what, sizeof(what), "the verify of step '%s'", st->name);
		if ((rc = load_sub(ld, v, verify_keys, what, 1, 1, &st->verify, err)) != 0)
			return rc;
		if ((t = yt_map_get(v, "timeout")) &&
		    (rc = yt_get_seconds(t, "verify.timeout", &st->verify_timeout, err)) != 0)
			return rc;
		if ((t = yt_map_get(v, "interval")) &&
		    (rc = yt_get_seconds(t, "verify.interval", &st->verify_interval, err)) != 0)
			return rc;
		if (st->verify_interval <= 0)
			return yt_error_at(err, ST_ECONFIG, t, "verify.interval must be more than 0");
	}
	if ((v = yt_map_get(n, "undo")) != NULL) {
		snprintf(what, sizeof(what), "the undo of step '%s'", st->name);
		if ((rc = load_sub(ld, v, undo_keys, what, 0, 0, &st->undo, err)) != 0)
			return rc;
	}
	if ((v = yt_map_get(n, "continue_on_error")) != NULL &&
	    (rc = yt_get_bool(v, "continue_on_error", &st->continue_on_error, err)) != 0)
		return rc;
	if ((v = yt_map_get(n, "finding")) != NULL && (rc = load_finding(ld, st, v, err)) != 0)
		return rc;
	return 0;
}

static int load_params(struct loader *ld, const struct yt_node *n, struct st_error *err)
{
	struct runbook *rb = ld->rb;
	size_t i;
	int rc;

	if ((rc = want_map(n, "params", err)) != 0)
		return rc;
	rb->params = calloc(n->count ? n->count : 1, sizeof(*rb->params));
	if (!rb->params)
		return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
	for (i = 0; i < n->count; i++) {
		const struct yt_node *k = n->keys[i], *p = n->values[i], *v;
		struct runbook_param *par = &rb->params[rb->nparams];
		char what[128];

		if (!valid_name(k->scalar))
			return yt_error_at(err, ST_ECONFIG, k,
					   "invalid parameter name '%s': use letters, digits, '-' and '_'",
					   k->scalar);
		if (!(par->name = strdup(k->scalar)))
			return st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
		par->secret = redact_name_is_secret(par->name);
		rb->nparams++;
		snprintf(what, sizeof(what), "parameter '%s'", k->scalar);
		if (yt_is_null(p))
			continue;
		if ((rc = want_map(p, what, err)) != 0 || (rc = check_keys_of(p, param_keys, what, err)) != 0)
			return rc;
		if ((v = yt_map_get(p, "description")) && !yt_is_null(v) &&
		    (rc = get_string(v, "description", &par->description, err)) != 0)
			return rc;
		if ((v = yt_map_get(p, "required")) &&
		    (rc = yt_get_bool(v, "required", &par->required, err)) != 0)
			return rc;
		if ((v = yt_map_get(p, "secret")) != NULL) {
			int secret;

			/* Only ever adds: a secret-sounding name stays hidden. */
			if ((rc = yt_get_bool(v, "secret", &secret, err)) != 0)
				return rc;
			par->secret |= secret;
		}
		if ((v = yt_map_get(p, "default")) != NULL) {
			if (v->kind != YT_SCALAR)
				return yt_error_at(err, ST_ECONFIG, v, "default of %s must be a plain value",
						   what);
			if (expr_has_refs(v->scalar))
				return yt_error_at(err, ST_ECONFIG, v, "default of %s cannot use references",
						   what);
			if ((rc = to_json(ld, v, &par->def, err)) != 0)
				return rc;
			if (par->required)
				return yt_error_at(err, ST_ECONFIG, v,
						   "%s is required and has a default: choose one", what);
		}
	}
	return 0;
}

/* First pass over steps: names exist, are valid and unique, so references
 * to steps can be checked wherever they appear. */
static int check_step_names(const struct yt_node *steps, struct st_error *err)
{
	size_t i, j;

	for (i = 0; i < steps->count; i++) {
		const struct yt_node *s = steps->values[i], *nn;
		int rc;

		if ((rc = want_map(s, "a step", err)) != 0)
			return rc;
		nn = yt_map_get(s, "name");
		if (!nn)
			return yt_error_at(err, ST_ECONFIG, s, "step %zu has no 'name'", i + 1);
		if (nn->kind != YT_SCALAR || !valid_name(nn->scalar))
			return yt_error_at(err, ST_ECONFIG, nn,
					   "invalid step name '%s': use letters, digits, '-' and '_'",
					   nn->kind == YT_SCALAR ? nn->scalar : "");
		for (j = 0; j < i; j++) {
			const struct yt_node *prev = yt_map_get(steps->values[j], "name");

			if (!strcmp(prev->scalar, nn->scalar))
				return yt_error_at(err, ST_ECONFIG, nn,
						   "duplicate step name '%s' (first at line %d)", nn->scalar,
						   prev->line);
		}
	}
	return 0;
}

static void call_release(struct runbook_call *c)
{
	if (!c)
		return;
	json_decref(c->args);
	json_decref(c->expect);
}

static void call_free(struct runbook_call *c)
{
	call_release(c);
	free(c);
}

static void finding_free(struct runbook_finding *f)
{
	if (!f)
		return;
	json_decref(f->expect);
	json_decref(f->warn_expect);
	free(f->message);
	free(f->ok);
	json_decref(f->evidence);
	free(f->fix);
	free(f->fix_runbook);
	json_decref(f->fix_params);
	free(f);
}

void runbook_free(struct runbook *rb)
{
	size_t i;

	if (!rb)
		return;
	for (i = 0; i < rb->nsteps; i++) {
		struct runbook_step *s = &rb->steps[i];

		free(s->name);
		free(s->description);
		call_release(&s->act);
		free(s->when);
		call_free(s->check);
		call_free(s->verify);
		call_free(s->undo);
		free(s->confirm);
		free(s->confirm_word);
		finding_free(s->finding);
	}
	free(rb->steps);
	for (i = 0; i < rb->nparams; i++) {
		free(rb->params[i].name);
		free(rb->params[i].description);
		json_decref(rb->params[i].def);
	}
	free(rb->params);
	free(rb->name);
	free(rb->description);
	free(rb->source);
	for (i = 0; i < rb->nlocks; i++)
		free(rb->locks[i]);
	free(rb->locks);
	free(rb);
}

int runbook_add_lock(struct runbook *rb, const char *name, struct st_error *err)
{
	char **locks = realloc(rb->locks, (rb->nlocks + 2) * sizeof(*locks));

	if (!locks)
		return st_error_set(err, ST_ENOMEM, "out of memory");
	rb->locks = locks;
	if (!(locks[rb->nlocks] = strdup(name)))
		return st_error_set(err, ST_ENOMEM, "out of memory");
	locks[++rb->nlocks] = NULL;
	return 0;
}

/* Locks are taken before the first step: their names may use parameters
 * and the configuration, not results. */
static int lock_ref_check(void *ud, enum expr_ns ns, const char *path, size_t pathlen, struct st_error *err)
{
	if (ns == EXPR_NS_STEPS)
		return st_error_set(err, ST_ECONFIG, "a lock name may use ${args...} and ${config...} only "
				    "(locks are taken before any step runs)");
	return ref_check(ud, ns, path, pathlen, err);
}

static int load_lock(struct loader *ld, const struct yt_node *n, struct st_error *err)
{
	char *name = NULL;
	int rc;

	if ((rc = get_string(n, "lock", &name, err)) != 0)
		return rc;
	/* With references it is checked once resolved (engine_run). */
	rc = expr_has_refs(name) ? expr_scan(name, lock_ref_check, ld, err) : lock_name_valid(name, err);
	if (rc)
		rc = at(err, n, rc);
	else
		rc = runbook_add_lock(ld->rb, name, err);
	free(name);
	return rc;
}

/* lock: NAME, or a non-empty list of names. */
static int load_locks(struct loader *ld, const struct yt_node *v, struct st_error *err)
{
	size_t i;
	int rc = 0;

	if (v->kind == YT_SCALAR && !yt_is_null(v))
		return load_lock(ld, v, err);
	if (v->kind != YT_SEQ || v->count == 0)
		return yt_error_at(err, ST_ECONFIG, v, "lock must be a name or a non-empty list of names");
	for (i = 0; i < v->count && !rc; i++)
		rc = load_lock(ld, v->values[i], err);
	return rc;
}

static int load_doc(const struct engine_registry *reg, const struct yt_doc *doc,
		    struct runbook **out, struct st_error *err)
{
	const struct yt_node *root = doc->root, *v, *steps;
	struct loader ld;
	struct runbook *rb = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (!root)
		return st_error_set(err, ST_ECONFIG, "%s: empty runbook", doc->file);
	if ((rc = want_map(root, "a runbook", err)) != 0 ||
	    (rc = check_keys_of(root, top_keys, "a runbook", err)) != 0)
		return rc;
	rb = calloc(1, sizeof(*rb));
	if (!rb || !(rb->source = strdup(doc->file)))
		goto nomem;
	memset(&ld, 0, sizeof(ld));
	ld.reg = reg;
	ld.rb = rb;

	v = yt_map_get(root, "name");
	if (!v) {
		rc = yt_error_at(err, ST_ECONFIG, root, "runbook has no 'name'");
		goto out;
	}
	if ((rc = get_string(v, "name", &rb->name, err)) != 0)
		goto out;
	if (!valid_name(rb->name)) {
		rc = yt_error_at(err, ST_ECONFIG, v,
				 "invalid runbook name '%s': use letters, digits, '-' and '_'", rb->name);
		goto out;
	}
	if ((v = yt_map_get(root, "description")) && !yt_is_null(v) &&
	    (rc = get_string(v, "description", &rb->description, err)) != 0)
		goto out;
	if ((v = yt_map_get(root, "params")) && !yt_is_null(v) &&
	    (rc = load_params(&ld, v, err)) != 0)
		goto out;
	/* After params: lock names may use them. */
	if ((v = yt_map_get(root, "lock")) != NULL && (rc = load_locks(&ld, v, err)) != 0)
		goto out;
	steps = yt_map_get(root, "steps");
	if (!steps) {
		rc = yt_error_at(err, ST_ECONFIG, root, "runbook has no 'steps'");
		goto out;
	}
	if (steps->kind != YT_SEQ || steps->count == 0) {
		rc = yt_error_at(err, ST_ECONFIG, steps, "steps must be a non-empty list");
		goto out;
	}
	if ((rc = check_step_names(steps, err)) != 0)
		goto out;
	ld.steps_node = steps;
	rb->steps = calloc(steps->count, sizeof(*rb->steps));
	if (!rb->steps)
		goto nomem;
	for (i = 0; i < steps->count; i++) {
		ld.step = i;
		rb->nsteps = i + 1;
		if ((rc = load_step(&ld, steps->values[i], &rb->steps[i], err)) != 0)
			goto out;
	}
	*out = rb;
	rb = NULL;
	goto out;
nomem:
	rc = st_error_set(err, ST_ENOMEM, "out of memory loading runbook");
out:
	runbook_free(rb);
	return rc;
}

int runbook_load_buffer(const struct engine_registry *reg, const char *file, const char *data,
			size_t len, struct runbook **out, struct st_error *err)
{
	struct yt_doc *doc = NULL;
	int rc;

	*out = NULL;
	if ((rc = yt_parse_buffer(file, data, len, &doc, err)) != 0)
		return rc;
	rc = load_doc(reg, doc, out, err);
	yt_doc_free(doc);
	return rc;
}

int runbook_load_file(const struct engine_registry *reg, const char *path, struct runbook **out,
		      struct st_error *err)
{
	struct yt_doc *doc = NULL;
	int rc;

	*out = NULL;
	if ((rc = yt_parse_file(path, &doc, err)) != 0) {
		if (rc == ST_ENOTFOUND)
			st_error_hint(err, "see 'spilttea-ops runbook list' for the known runbooks");
		return rc;
	}
	rc = load_doc(reg, doc, out, err);
	yt_doc_free(doc);
	return rc;
}

const struct runbook_step *runbook_find_step(const struct runbook *rb, const char *name)
{
	size_t i;

	for (i = 0; i < rb->nsteps; i++)
		if (!strcmp(rb->steps[i].name, name))
			return &rb->steps[i];
	return NULL;
}

const struct runbook_param *runbook_find_param(const struct runbook *rb, const char *name)
{
	size_t i;

	for (i = 0; i < rb->nparams; i++)
		if (!strcmp(rb->params[i].name, name))
			return &rb->params[i];
	return NULL;
}
