/*
 * cmd_runbook.c - `spilttea-ops runbook list|show|check|actions`: the
 * runbooks and actions there are, and what a runbook would do.
 *
 * These work without a configuration (built-in runbooks only); with one,
 * runbooks_dir adds to and overrides the built-ins.
 */
#include "cmd.h"
#include "cmd_engine.h"
#include "../lib/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char runbook_usage[] =
	"usage: spilttea-ops runbook list [--format text|json|names]\n"
	"       spilttea-ops runbook show NAME|FILE\n"
	"       spilttea-ops runbook check NAME|FILE...\n"
	"       spilttea-ops runbook actions [--format text|json]\n"
	"\n"
	"  list     the runbooks: built-in ones and those in the configured\n"
	"           runbooks_dir (which override built-ins of the same name)\n"
	"  show     the plan in words: parameters, then each step with its\n"
	"           condition, check, confirmation, action, verify and undo\n"
	"  check    load runbook files and report every error as FILE:LINE:COLUMN\n"
	"  actions  the actions runbook steps can use, with their arguments\n"
	"\n"
	"A NAME is looked up in the catalog; anything with a '/' or ending in .yaml\n"
	"or .yml is a file. Run one with 'spilttea-ops run NAME'.\n"
	"\n"
	"exit status: 0 ok, 2 usage error or invalid runbook\n"
	"\n"
	"examples:\n"
	"  spilttea-ops runbook list\n"
	"  spilttea-ops runbook show selftest\n"
	"  spilttea-ops runbook check ./runbooks/*.yaml\n";

static int fail(const struct ctx *ctx, const struct st_error *err)
{
	cmd_print_error(ctx, err);
	return err->code == ST_ENOMEM ? ST_EXIT_FAILED : ST_EXIT_USAGE;
}

/* choices: what the error lists ("text or json") */
static int want_format(const struct ctx *ctx, const char *sub, int json_ok, const char *choices,
		       int *json)
{
	*json = 0;
	if (!ctx->format || !strcmp(ctx->format, "text"))
		return 0;
	if (json_ok && !strcmp(ctx->format, "json")) {
		*json = 1;
		return 0;
	}
	return cmd_usage_error(ctx, "runbook %s has no format '%s' (%s)", sub, ctx->format, choices);
}

static int print_json(json_t *v)
{
	char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	if (!s)
		return ST_EXIT_FAILED;
	puts(s);
	free(s);
	return ST_EXIT_OK;
}

static int do_list(struct ctx *ctx, const struct runbook_catalog *cat)
{
	size_t i, n = runbook_catalog_count(cat), wname = 4, wsrc = 6;
	json_t *arr;
	int json, rc;

	/* One name a line: what shell completion asks for. */
	if (ctx->format && !strcmp(ctx->format, "names")) {
		for (i = 0; i < n; i++)
			puts(runbook_catalog_at(cat, i)->name);
		return ST_EXIT_OK;
	}
	if ((rc = want_format(ctx, "list", 1, "text, json or names", &json)) != 0)
		return rc;
	if (json) {
		arr = json_array();
		for (i = 0; arr && i < n; i++) {
			const struct runbook_entry *e = runbook_catalog_at(cat, i);

			json_array_append_new(arr, json_pack("{s:s,s:s?,s:s,s:b,s:s?}", "name", e->name,
							     "description", e->description, "source", e->source,
							     "overrides_builtin", e->overrides_builtin,
							     "error", e->error));
		}
		rc = print_json(arr);
		json_decref(arr);
		return rc;
	}
	for (i = 0; i < n; i++) {
		const struct runbook_entry *e = runbook_catalog_at(cat, i);

		if (strlen(e->name) > wname)
			wname = strlen(e->name);
		if (strlen(e->source) > wsrc)
			wsrc = strlen(e->source);
	}
	if (n == 0) {
		if (!ctx->quiet)
			puts("no runbooks");
		return ST_EXIT_OK;
	}
	printf("%s%-*s  %-*s  %s%s\n", cmd_color_on(ctx->color_stdout, COLOR_BOLD), (int)wname, "NAME",
	       (int)wsrc, "SOURCE", "DESCRIPTION", cmd_color_off(ctx->color_stdout));
	for (i = 0; i < n; i++) {
		const struct runbook_entry *e = runbook_catalog_at(cat, i);

		if (e->error)
			printf("%-*s  %-*s  %sINVALID:%s %s\n", (int)wname, e->name, (int)wsrc, e->source,
			       cmd_color_on(ctx->color_stdout, COLOR_RED), cmd_color_off(ctx->color_stdout),
			       e->error);
		else
			printf("%-*s  %-*s  %s%s\n", (int)wname, e->name, (int)wsrc, e->source,
			       e->description ? e->description : "",
			       e->overrides_builtin ? " (overrides the built-in)" : "");
	}
	return ST_EXIT_OK;
}

static void plan_line(void *ud, const char *line)
{
	(void)ud;
	puts(line);
}

static int do_show(struct ctx *ctx, const struct runbook_catalog *cat, int argc, char **argv,
		   const struct st_config *cfg)
{
	struct engine_options opts;
	struct engine_ui ui;
	struct runbook *rb = NULL;
	struct st_error err = { 0 };
	int json, rc;

	if ((rc = want_format(ctx, "show", 0, "only text", &json)) != 0)
		return rc;
	if (argc != 3)
		return cmd_usage_error(ctx, argc < 3 ? "runbook show needs a runbook name or file"
					  : "runbook show takes one runbook");
	if (runbook_catalog_load(cat, argv[2], &rb, &err) != 0)
		return fail(ctx, &err);
	memset(&ui, 0, sizeof(ui));
	ui.plan = plan_line;
	memset(&opts, 0, sizeof(opts));
	opts.ui = &ui;
	opts.lookup_config = cfg ? cmd_engine_lookup_config : NULL;
	opts.config_ud = (void *)cfg;
	rc = engine_plan(rb, NULL, &opts, &err) ? fail(ctx, &err) : ST_EXIT_OK;
	runbook_free(rb);
	return rc;
}

static int do_check(struct ctx *ctx, const struct runbook_catalog *cat, int argc, char **argv)
{
	int i, json, rc, status = ST_EXIT_OK;

	if ((rc = want_format(ctx, "check", 0, "only text", &json)) != 0)
		return rc;
	if (argc < 3)
		return cmd_usage_error(ctx, "runbook check needs at least one runbook file or name");
	for (i = 2; i < argc; i++) {
		struct runbook *rb = NULL;
		struct st_error err = { 0 };

		if (runbook_catalog_load(cat, argv[i], &rb, &err) != 0) {
			rc = fail(ctx, &err);
			if (status == ST_EXIT_OK || rc == ST_EXIT_FAILED)
				status = rc;
			continue;
		}
		if (!ctx->quiet)
			printf("%s: OK (runbook %s, %zu step%s)\n", argv[i], rb->name, rb->nsteps,
			       rb->nsteps == 1 ? "" : "s");
		runbook_free(rb);
	}
	return status;
}

static const char *arg_type(enum engine_arg_type t)
{
	switch (t) {
	case ENGINE_ARG_STRING: return "string";
	case ENGINE_ARG_INT: return "integer";
	case ENGINE_ARG_NUMBER: return "number";
	case ENGINE_ARG_BOOL: return "bool";
	case ENGINE_ARG_DURATION: return "duration";
	case ENGINE_ARG_ARRAY: return "list";
	case ENGINE_ARG_OBJECT: return "mapping";
	case ENGINE_ARG_ANY: return "any";
	}
	return "?";
}

static int do_actions(struct ctx *ctx, const struct engine_registry *reg)
{
	size_t i, n = engine_registry_count(reg);
	json_t *arr = NULL;
	int json, rc;

	if ((rc = want_format(ctx, "actions", 1, "text or json", &json)) != 0)
		return rc;
	if (json)
		arr = json_array();
	for (i = 0; i < n; i++) {
		const struct engine_action *a = engine_registry_at(reg, i);
		const struct engine_arg_spec *s;
		json_t *args = json ? json_array() : NULL;

		if (!json)
			printf("%s%s%s%s  %s\n", cmd_color_on(ctx->color_stdout, COLOR_BOLD), a->name,
			       cmd_color_off(ctx->color_stdout),
			       (a->flags & ENGINE_ACTION_DESTRUCTIVE) ? " (destructive: needs confirm)"
			       : (a->flags & ENGINE_ACTION_READ_ONLY) ? " (read-only)" : "",
			       a->summary ? a->summary : "");
		for (s = a->args; s && s->name; s++) {
			if (json) {
				json_array_append_new(args, json_pack("{s:s,s:s,s:b,s:b,s:s?,s:s?}", "name",
								      s->name, "type", arg_type(s->type),
								      "required", !!(s->flags & ENGINE_ARG_REQUIRED),
								      "secret", !!(s->flags & ENGINE_ARG_SECRET),
								      "default", s->def, "summary", s->summary));
				continue;
			}
			printf("    %-14s %s%s%s%s%s%s%s\n", s->name, arg_type(s->type),
			       (s->flags & ENGINE_ARG_REQUIRED) ? ", required" : "",
			       (s->flags & ENGINE_ARG_SECRET) ? ", secret" : "",
			       s->def ? ", default " : "", s->def ? s->def : "",
			       s->summary ? ": " : "", s->summary ? s->summary : "");
		}
		if (json)
			json_array_append_new(arr, json_pack("{s:s,s:s?,s:b,s:b,s:o}", "name", a->name,
							     "summary", a->summary, "destructive",
							     !!(a->flags & ENGINE_ACTION_DESTRUCTIVE), "read_only",
							     !!(a->flags & ENGINE_ACTION_READ_ONLY), "args", args));
	}
	if (json) {
		rc = print_json(arr);
		json_decref(arr);
		return rc;
	}
	return ST_EXIT_OK;
}

int cmd_runbook(int argc, char **argv, struct ctx *ctx)
{
	struct engine_registry *reg = NULL;
	struct runbook_catalog *cat = NULL;
	struct st_config *cfg = NULL;
	struct st_error err = { 0 };
	const char *sub = argc >= 2 ? argv[1] : NULL;
	int status;

	if (sub && (!strcmp(sub, "--help") || !strcmp(sub, "help"))) {
		fputs(runbook_usage, stdout);
		return ST_EXIT_OK;
	}
	if (!sub)
		return cmd_usage_error(ctx, "runbook needs a subcommand: list, show, check or actions");
	if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "check") && strcmp(sub, "actions"))
		return cmd_usage_error(ctx, "unknown runbook subcommand '%s'", sub);
	if ((!strcmp(sub, "list") || !strcmp(sub, "actions")) && argc > 2)
		return cmd_usage_error(ctx, "unexpected argument '%s'", argv[2]);
	if (cmd_engine_optional_config(ctx, &cfg, &err) != 0 ||
	    cmd_engine_open(cfg, &reg, &cat, &err) != 0) {
		status = fail(ctx, &err);
		goto out;
	}
	if (!strcmp(sub, "list"))
		status = do_list(ctx, cat);
	else if (!strcmp(sub, "show"))
		status = do_show(ctx, cat, argc, argv, cfg);
	else if (!strcmp(sub, "check"))
		status = do_check(ctx, cat, argc, argv);
	else
		status = do_actions(ctx, reg);
out:
	runbook_catalog_free(cat);
	engine_registry_free(reg);
	config_free(cfg);
	return status;
}
