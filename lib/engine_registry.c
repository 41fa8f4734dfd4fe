/*
 * engine_registry.c - the action registry and argument handling shared by
 * the runbook loader (load-time checks) and the executor.
 */
#include "engine.h"
#include "actions.h"
#include "expr.h"
#include "redact.h"
#include "timeutil.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct engine_registry {
	const struct engine_action **actions;
	size_t n, cap;
};

void engine_registry_free(struct engine_registry *reg)
{
	if (!reg)
		return;
	free(reg->actions);
	free(reg);
}

int engine_registry_add(struct engine_registry *reg, const struct engine_action *table,
			struct st_error *err)
{
	const struct engine_action *a;

	for (a = table; a->name; a++) {
		if (!a->run)
			return st_error_set(err, ST_EUSAGE, "action '%s' has no function", a->name);
		if (engine_registry_find(reg, a->name))
			return st_error_set(err, ST_ECONFLICT, "action '%s' is registered twice", a->name);
		if (reg->n == reg->cap) {
			size_t cap = reg->cap ? reg->cap * 2 : 32;
			const struct engine_action **p = realloc(reg->actions, cap * sizeof(*p));

			if (!p)
				return st_error_set(err, ST_ENOMEM, "out of memory registering actions");
			reg->actions = p;
			reg->cap = cap;
		}
		reg->actions[reg->n++] = a;
	}
	return 0;
}

int engine_registry_new(int with_builtins, struct engine_registry **out, struct st_error *err)
{
	struct engine_registry *reg = calloc(1, sizeof(*reg));
	size_t i;
	int rc;

	*out = NULL;
	if (!reg)
		return st_error_set(err, ST_ENOMEM, "out of memory registering actions");
	for (i = 0; with_builtins && actions_builtin_tables[i]; i++) {
		if ((rc = engine_registry_add(reg, actions_builtin_tables[i], err)) != 0) {
			engine_registry_free(reg);
			return rc;
		}
	}
	*out = reg;
	return 0;
}

const struct engine_action *engine_registry_find(const struct engine_registry *reg,
						 const char *name)
{
	size_t i;

	for (i = 0; i < reg->n; i++)
		if (!strcmp(reg->actions[i]->name, name))
			return reg->actions[i];
	return NULL;
}

size_t engine_registry_count(const struct engine_registry *reg)
{
	return reg->n;
}

const struct engine_action *engine_registry_at(const struct engine_registry *reg, size_t i)
{
	return i < reg->n ? reg->actions[i] : NULL;
}

const struct engine_arg_spec *engine_action_arg(const struct engine_action *action,
						const char *name)
{
	const struct engine_arg_spec *s;

	for (s = action->args; s && s->name; s++)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

static const char *type_name(enum engine_arg_type t)
{
	switch (t) {
	case ENGINE_ARG_STRING: return "a string";
	case ENGINE_ARG_INT: return "an integer";
	case ENGINE_ARG_NUMBER: return "a number";
	case ENGINE_ARG_BOOL: return "true or false";
	case ENGINE_ARG_DURATION: return "a duration like 30, 500ms, 5m or 2h";
	case ENGINE_ARG_ARRAY: return "a list";
	case ENGINE_ARG_OBJECT: return "a mapping";
	case ENGINE_ARG_ANY: return "a value";
	}
	return "?";
}

int engine_arg_convert(const struct engine_arg_spec *spec, const json_t *v, json_t **out,
		       struct st_error *err)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	double d;
	char *text;

	*out = NULL;
	switch (spec->type) {
	case ENGINE_ARG_STRING:
		if (json_is_string(v) || json_is_number(v) || json_is_boolean(v)) {
			text = expr_to_text(v);
			*out = text ? json_string(text) : NULL;
			free(text);
		}
		break;
	case ENGINE_ARG_INT:
		if (json_is_integer(v))
			*out = json_integer(json_integer_value(v));
		else if (expr_number(v, &d) == 0 && fabs(d) < 9007199254740992.0 &&
			 d == (double)(json_int_t)d)
			*out = json_integer((json_int_t)d);
		break;
	case ENGINE_ARG_NUMBER:
		if (expr_number(v, &d) == 0)
			*out = json_real(d);
		break;
	case ENGINE_ARG_BOOL:
		if (json_is_boolean(v))
			*out = json_boolean(json_is_true(v));
		else if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")))
			*out = json_true();
		else if (s && (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off")))
			*out = json_false();
		break;
	case ENGINE_ARG_DURATION:
		if (json_is_number(v) && json_number_value(v) >= 0)
			d = json_number_value(v);
		else if (!s || time_parse_duration(s, &d) != 0)
			break;
		if (d > ENGINE_DURATION_MAX) {
			text = expr_to_text(v);
			st_error_set(err, ST_EUSAGE, "argument '%s' must be at most 366d, not '%.40s'",
				     spec->name, text ? text : "?");
			free(text);
			return ST_EUSAGE;
		}
		*out = json_real(d);
		break;
	case ENGINE_ARG_ARRAY:
		if (json_is_array(v))
			*out = json_deep_copy(v);
		break;
	case ENGINE_ARG_OBJECT:
		if (json_is_object(v))
			*out = json_deep_copy(v);
		break;
	case ENGINE_ARG_ANY:
		*out = json_deep_copy(v);
		break;
	}
	if (!*out) {
		char shown[64];
		int secret = (spec->flags & ENGINE_ARG_SECRET) || redact_name_is_secret(spec->name);

		text = expr_to_text(v);
		snprintf(shown, sizeof(shown), "%.40s%s", secret ? REDACTED : text ? text : "?",
			 !secret && text && strlen(text) > 40 ? "..." : "");
		free(text);
		return st_error_set(err, ST_EUSAGE, "argument '%s' must be %s, not '%s'", spec->name,
				    type_name(spec->type), shown);
	}
	return 0;
}

int engine_args_prepare(const struct engine_action *action, const json_t *resolved, json_t **out,
			struct st_error *err)
{
	const struct engine_arg_spec *spec;
	json_t *args = NULL, *conv = NULL, *def = NULL;
	const char *k;
	json_t *v;
	int rc = 0;

	*out = NULL;
	json_object_foreach((json_t *)resolved, k, v) {
		if (!engine_action_arg(action, k))
			return st_error_set(err, ST_EUSAGE, "action '%s' has no argument '%s'",
					    action->name, k);
	}
	args = json_object();
	if (!args)
		return st_error_set(err, ST_ENOMEM, "out of memory preparing arguments");
	for (spec = action->args; spec && spec->name; spec++) {
		v = json_object_get(resolved, spec->name);
		if (!v || json_is_null(v)) {
			if (spec->def) {
				def = json_string(spec->def);
				if (!def) {
					rc = st_error_set(err, ST_ENOMEM, "out of memory preparing arguments");
					goto out;
				}
				v = def;
			} else if (spec->flags & ENGINE_ARG_REQUIRED) {
				rc = st_error_set(err, ST_EUSAGE, "action '%s' needs argument '%s'",
						  action->name, spec->name);
				goto out;
			} else {
				continue;
			}
		}
		if ((rc = engine_arg_convert(spec, v, &conv, err)) != 0)
			goto out;
		if (json_object_set_new(args, spec->name, conv)) {
			rc = st_error_set(err, ST_ENOMEM, "out of memory preparing arguments");
			goto out;
		}
		conv = NULL;
		json_decref(def);
		def = NULL;
	}
	*out = args;
	args = NULL;
out:
	json_decref(def);
	json_decref(args);
	return rc;
}

json_t *engine_args_redacted(const struct engine_action *action, const json_t *args)
{
	json_t *copy = redact_json(args);
	const struct engine_arg_spec *spec;

	if (!copy)
		return NULL;
	for (spec = action->args; spec && spec->name; spec++) {
		if ((spec->flags & ENGINE_ARG_SECRET) && json_object_get(copy, spec->name) &&
		    json_object_set_new(copy, spec->name, json_string(REDACTED))) {
			json_decref(copy);
			return NULL;
		}
	}
	return copy;
}
