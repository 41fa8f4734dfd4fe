/*
 * cmd_diagnose.c - `spilttea-ops diagnose [ISSUE...] [--fix]`: the
 * runbook's "Common Issues and Fixes". Each issue is the built-in runbook
 * diagnose-<id> of finding steps, run through the engine (read-only,
 * journaled); --fix then runs the safe fixes the findings name, each step
 * confirmed, and checks the issues again.
 */
#include "cmd.h"
#include "cmd_engine.h"
#include "../lib/actions.h"
#include "../lib/config.h"
#include "../lib/diagnose.h"
#include "../lib/expr.h"
#include "../lib/sbuf.h"
#include "../lib/services.h"
#include "../lib/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char diagnose_usage[] =
	"usage: spilttea-ops diagnose [ISSUE...] [key=value ...] [--since D] [--fix]\n"
	"                             [--timeout D]\n"
	"       spilttea-ops diagnose --list\n"
	"\n"
	"Checks for the runbook's Common Issues and prints what it finds, with the\n"
	"runbook's fix. Each issue is the read-only runbook diagnose-ISSUE\n"
	"('spilttea-ops runbook show diagnose-db-pool'); every check gives ok, warn\n"
	"or problem with its evidence. No ISSUE: all of them.\n"
	"\n"
	"  backend-crash     backend container crashes on startup\n"
	"  frontend-network  frontend shows \"Network Error\" (backend health, CORS)\n"
	"  db-pool           database connection pool exhausted\n"
	"  redis-oom         Redis out of memory\n"
	"  s3-upload         S3 upload failures\n"
	"  email             email verification not sending\n"
	"  trending          trending posts not updating\n"
	"\n"
	"  key=value      a parameter of the diagnose runbooks that declare it:\n"
	"                 since=1h (logs read), idle_older_than=5m (db-pool)\n"
	"  --since D      the same as since=D\n"
	"  --fix          then apply the safe fixes the findings name, each a runbook\n"
	"                 confirmed after its plan is shown (start-after-db,\n"
	"                 kill-idle-connections, clear-cache, analyze-post,\n"
	"                 restart-backend), and check those issues again\n"
	"  --list         list the issues and their runbooks\n"
	"  --timeout D    checks not started within D (default 60s) are reported as\n"
	"                 not checked; one already running ends within its own\n"
	"                 timeouts. A service that times out or refuses is not tried\n"
	"                 again: its other checks are not checked ('unreachable')\n"
	"  --format FMT   text (a table, default) or json (one object)\n"
	"  -v             evidence of the checks that are ok, too\n"
	"  -n, --dry-run  print the plans of the runbooks; run nothing\n"
	"  -y, --yes      confirm every step of the fixes\n"
	"\n"
	"exit status: 0 no problem found (warnings allowed), 1 problems found (with\n"
	"--fix: problems left after the fixes, or a fix failed), 2 usage or\n"
	"configuration error, 3 a fix was refused (not confirmed) or the run was\n"
	"interrupted, 4 a fix's lock is held by another run\n"
	"\n"
	"examples:\n"
	"  spilttea-ops diagnose\n"
	"  spilttea-ops diagnose db-pool idle_older_than=1m --format json\n"
	"  spilttea-ops diagnose redis-oom trending --fix\n";

/* The UI of a diagnose run: findings and skipped checks go into the
 * issue; progress on stderr when it is a terminal. */
struct collect {
	struct ctx *ctx;
	struct diag_issue *issue;
	int progress;
	int rc;                    /* ST_ENOMEM when recording failed */
};

static void col_finding(void *ud, const struct engine_finding *f)
{
	struct collect *c = ud;

	if (diag_issue_add_finding(c->issue, f) != 0)
		c->rc = ST_ENOMEM;
}

static void col_step_start(void *ud, const struct engine_step_event *ev)
{
	struct collect *c = ud;

	if (c->progress) {
		fprintf(stderr, "\r\033[K… %s: %s", c->issue->id, ev->step->name);
		fflush(stderr);
	}
}

static void col_step_end(void *ud, const struct engine_step_event *ev)
{
	struct collect *c = ud;

	if (ev->result != ENGINE_RESULT_SKIPPED || !ev->step->finding)
		return;
	/* Not checked because its service is unreachable or time ran out:
	 * as bad as a check that could not run. */
	if (ev->code ? diag_issue_add_unchecked(c->issue, ev->step->name, ev->step->description,
						ev->detail ? ev->detail : "",
						(enum engine_finding_status)ev->step->finding->severity)
		     : diag_issue_add_skipped(c->issue, ev->step->name, ev->step->description,
					      ev->detail ? ev->detail : ""))
		c->rc = ST_ENOMEM;
}

static void col_notice(void *ud, const char *message)
{
	struct collect *c = ud;

	if (!c->ctx->quiet)
		fprintf(stderr, "%snote:%s %s\n", cmd_color_on(c->ctx->color_stderr, COLOR_YELLOW),
			cmd_color_off(c->ctx->color_stderr), message);
}

static void col_plan(void *ud, const char *line)
{
	(void)ud;
	puts(line);
}

struct diag_run {
	struct ctx *ctx;
	struct runbook_catalog *cat;
	struct services services;
	int json;
	int nwords;
	char **words;              /* key=value */
	unsigned char *used;       /* words[i] declared by some runbook */
	char *since;               /* "since=Ns" replacing the user's when checking again, or NULL */
	double timeout;            /* --timeout: checks start within this many seconds */
};

/* Checks not started within this of a diagnosis are reported as not
 * checked (--timeout). */
#define DIAGNOSE_DEFAULT_TIMEOUT 60.0

#define MAX_WORDS 32

/* The key=value words that rb declares (into argv, borrowed; at most
 * MAX_WORDS + 1). */
static int params_for(struct diag_run *d, const struct runbook *rb, char **argv)
{
	int i, n = 0;

	for (i = 0; i < d->nwords; i++) {
		char name[128];
		const char *eq = strchr(d->words[i], '=');
		size_t len = (size_t)(eq - d->words[i]);

		if (len >= sizeof(name) || (d->since && !strncmp(d->words[i], "since=", 6)))
			continue;
		memcpy(name, d->words[i], len);
		name[len] = '\0';
		if (runbook_find_param(rb, name)) {
			argv[n++] = d->words[i];
			d->used[i] = 1;
		}
	}
	if (d->since && runbook_find_param(rb, "since"))
		argv[n++] = d->since;
	return n;
}

static void base_options(struct diag_run *d, struct engine_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->state_dir = d->ctx->config->state_dir;
	opts->command_line = d->ctx->command_line;
	opts->dry_run = d->ctx->dry_run;
	opts->assume_yes = d->ctx->yes;
	opts->lookup_config = cmd_engine_lookup_config;
	opts->config_ud = d->ctx->config;
	opts->config = d->ctx->config;
	opts->services = &d->services;
	opts->cancel = &cmd_interrupted;
}

/* Runs the diagnose runbook of each issue into set. rbs[i] belongs to
 * ids[i]. */
static int diagnose_all(struct diag_run *d, struct runbook **rbs, const char *const *ids, size_t n,
			struct diag_set *set)
{
	size_t i;
	int rc = 0;
	/* One deadline for the whole diagnosis; a check that is running when
	 * it passes still ends within its own timeouts. */
	double deadline = time_monotonic() + d->timeout;
	struct expr_scope config_scope;

	/* Dead web endpoints cost one timeout together, not one per check;
	 * probing ahead takes at most half the deadline, so the checks that
	 * need no web endpoint still get their turn within --timeout. */
	memset(&config_scope, 0, sizeof(config_scope));
	config_scope.lookup_config = cmd_engine_lookup_config;
	config_scope.config_ud = d->ctx->config;
	if (!d->ctx->dry_run)
		actions_http_probe_ahead(&d->services, rbs, n, &config_scope, d->timeout / 2);
	for (i = 0; i < n && !cmd_interrupted; i++) {
		const struct diag_issue_def *def = diag_issue_def(ids[i]);
		struct engine_options opts;
		struct engine_report report;
		struct engine_ui ui;
		struct collect col;
		struct st_error err = { 0 };
		json_t *params = NULL;
		char *argv[MAX_WORDS + 1];
		int argc = params_for(d, rbs[i], argv);

		memset(&col, 0, sizeof(col));
		col.ctx = d->ctx;
		if ((rc = diag_set_add(set, ids[i], rbs[i]->name,
				       def ? def->title : rbs[i]->description, &col.issue)) != 0)
			return rc;
		col.progress = !d->json && !d->ctx->quiet && !d->ctx->dry_run && isatty(STDERR_FILENO);
		memset(&ui, 0, sizeof(ui));
		ui.ud = &col;
		ui.plan = col_plan;
		ui.step_start = col_step_start;
		ui.step_end = col_step_end;
		ui.notice = col_notice;
		ui.finding = col_finding;
		base_options(d, &opts);
		opts.ui = &ui;
		opts.deadline = deadline;
		opts.deadline_s = d->timeout;
		if (engine_params_parse(rbs[i], argc, argv, &params, &err) == 0 &&
		    engine_run(rbs[i], params, &opts, &report, &err) == 0) {
			snprintf(col.issue->run_id, sizeof(col.issue->run_id), "%s", report.run_id);
		} else {
			snprintf(col.issue->run_id, sizeof(col.issue->run_id), "%s", report.run_id);
			if (diag_issue_set_error(col.issue, err.message) != 0)
				col.rc = ST_ENOMEM;
		}
		json_decref(params);
		if (col.progress) {
			fputs("\r\033[K", stderr);
			fflush(stderr);
		}
		if (col.rc)
			return col.rc;
	}
	return rc;
}

/* Asks whether to apply a fix: 0 yes, ST_EABORTED (err filled) no, or
 * nobody to ask. */
static int confirm_fix(const struct engine_ui *ui, const struct diag_fix *fix, struct st_error *err)
{
	char prompt[512], answer[64] = "";
	struct sbuf who = SBUF_INIT;
	json_t *v;
	size_t i;

	json_array_foreach(fix->needed_by, i, v)
		sbuf_printf(&who, "%s%s", i ? ", " : "", json_string_value(v));
	snprintf(prompt, sizeof(prompt), "Apply the fix '%s' (for %s)?", fix->runbook, sbuf_str(&who));
	sbuf_release(&who);
	if (!ui->confirm(ui->ud, prompt, NULL, answer, sizeof(answer))) {
		st_error_set(err, ST_EABORTED, "fix '%s' needs confirmation and there is no terminal to ask",
			     fix->runbook);
		return st_error_hint(err, "re-run with --yes to apply it");
	}
	if (strcasecmp(answer, "y") && strcasecmp(answer, "yes"))
		return st_error_set(err, ST_EABORTED, "fix '%s' not confirmed", fix->runbook);
	return 0;
}

/* Runs one safe fix through the engine with the terminal UI, after the
 * operator confirmed its plan (or --yes). */
static void run_fix(struct diag_run *d, struct diag_fix *fix)
{
	struct runbook *rb = NULL;
	struct engine_options opts;
	struct engine_report report;
	struct engine_ui ui;
	struct cmd_ui ui_state = { 0 };
	struct ctx quiet_ctx = *d->ctx;
	struct st_error err = { 0 };
	json_t *params = NULL, *v;
	char *argv[64], *words[64];
	const char *k;
	int argc = 0, rc;

	memset(words, 0, sizeof(words));
	if ((rc = runbook_catalog_load(d->cat, fix->runbook, &rb, &err)) != 0)
		goto done;
	json_object_foreach(fix->params, k, v) {
		char *t = expr_to_text(v);

		if (argc == 64 || !t || asprintf(&words[argc], "%s=%s", k, t) < 0) {
			free(t);
			rc = st_error_set(&err, ST_ENOMEM, "out of memory");
			goto done;
		}
		free(t);
		argv[argc] = words[argc];
		argc++;
	}
	if ((rc = engine_params_parse(rb, argc, argv, &params, &err)) != 0)
		goto done;
	/* JSON goes to stdout in one piece: the steps are not shown then. */
	quiet_ctx.quiet = d->ctx->quiet || d->json;
	cmd_engine_ui(&ui_state, &quiet_ctx, &ui);
	base_options(d, &opts);
	opts.ui = &ui;
	if (!quiet_ctx.quiet) {
		printf("\nfix: %s%s%s\n", cmd_color_on(d->ctx->color_stdout, COLOR_BOLD), fix->runbook,
		       cmd_color_off(d->ctx->color_stdout));
		/* The plan is what the operator confirms. */
		if (!d->ctx->yes) {
			opts.dry_run = 1;
			(void)engine_run(rb, params, &opts, NULL, &err);
			opts.dry_run = 0;
		}
	}
	fflush(stdout);
	if (!d->ctx->yes && (rc = confirm_fix(&ui, fix, &err)) != 0)
		goto done;
	/* Confirmed as a whole: its steps run without asking again. */
	opts.assume_yes = 1;
	rc = engine_run(rb, params, &opts, &report, &err);
	snprintf(fix->run_id, sizeof(fix->run_id), "%s", report.run_id);
done:
	fix->result = rc == 0 ? DIAG_FIX_DONE
		      : rc == ST_EABORTED ? DIAG_FIX_REFUSED
		      : rc == ST_ELOCKED ? DIAG_FIX_LOCKED : DIAG_FIX_FAILED;
	if (rc && !fix->error)
		fix->error = strdup(err.message);
	cmd_engine_ui_release(&ui_state);
	for (argc = 0; argc < 64; argc++)
		free(words[argc]);
	json_decref(params);
	runbook_free(rb);
}

static int list_issues(struct ctx *ctx)
{
	const struct diag_issue_def *def;
	json_t *arr;

	if (ctx->format && !strcmp(ctx->format, "json")) {
		char *s;

		arr = json_array();
		for (def = diag_issue_defs; arr && def->id; def++)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:s+}", "id", def->id, "title",
							     def->title, "runbook", "diagnose-", def->id));
		s = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
		if (!s)
			return ST_EXIT_FAILED;
		puts(s);
		free(s);
		json_decref(arr);
		return ST_EXIT_OK;
	}
	for (def = diag_issue_defs; def->id; def++)
		printf("%-17s diagnose-%-17s %s\n", def->id, def->id, def->title);
	return ST_EXIT_OK;
}

/* Issues that a fix ran for, in the order of the diagnosis. */
static size_t fixed_issues(const struct diag_report *rep, const char **ids, struct runbook **rbs,
			   struct runbook **all_rbs)
{
	size_t i, j, k, n = 0;

	for (i = 0; i < rep->before.n; i++) {
		const char *id = rep->before.items[i].id;
		int hit = 0;

		for (j = 0; j < rep->nfixes && !hit; j++) {
			json_t *v;

			/* Something ran only when it was done or failed part-way. */
			if (rep->fixes[j].result != DIAG_FIX_DONE && rep->fixes[j].result != DIAG_FIX_FAILED)
				continue;
			json_array_foreach(rep->fixes[j].needed_by, k, v) {
				const char *w = json_string_value(v);
				size_t len = strlen(id);

				if (w && !strncmp(w, id, len) && w[len] == '/')
					hit = 1;
			}
		}
		if (hit) {
			ids[n] = id;
			rbs[n] = all_rbs[i];
			n++;
		}
	}
	return n;
}

int cmd_diagnose(int argc, char **argv, struct ctx *ctx)
{
	struct engine_registry *reg = NULL;
	struct diag_run d;
	struct diag_report rep;
	struct diag_render_opts ro;
	struct st_error err = { 0 };
	struct cmd_signals sig;
	struct runbook **rbs = NULL, **again_rbs = NULL;
	const char **ids = NULL, **again_ids = NULL;
	char **since_words = NULL;
	struct sbuf command = SBUF_INIT;
	size_t nids = 0, i, nagain;
	int fix = 0, list = 0, status = ST_EXIT_OK, rc;

	memset(&sig, 0, sizeof(sig));
	memset(&d, 0, sizeof(d));
	memset(&rep, 0, sizeof(rep));
	d.ctx = ctx;
	d.timeout = DIAGNOSE_DEFAULT_TIMEOUT;
	services_init(&d.services, ctx->config);
	/* A dead service is reported once, not waited for by every check. */
	services_set_fail_fast(&d.services, 1);
	if (argc >= 2 && !strcmp(argv[1], "--help")) {
		fputs(diagnose_usage, stdout);
		return ST_EXIT_OK;
	}
	ids = calloc((size_t)argc + 8, sizeof(*ids));
	d.words = calloc((size_t)argc + 1, sizeof(*d.words));
	d.used = calloc((size_t)argc + 1, 1);
	since_words = calloc((size_t)argc + 1, sizeof(*since_words));
	if (!ids || !d.words || !d.used || !since_words) {
		fputs("error: out of memory\n", stderr);
		status = ST_EXIT_FAILED;
		goto out;
	}
	if (sbuf_printf(&command, "%s diagnose", ctx->progname))
		goto nomem;
	for (i = 1; i < (size_t)argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--fix")) {
			fix = 1;
		} else if (!strcmp(a, "--list")) {
			list = 1;
		} else if (!strcmp(a, "--since") || !strncmp(a, "--since=", 8)) {
			const char *v = a[7] == '=' ? a + 8 : (i + 1 < (size_t)argc ? argv[++i] : NULL);

			if (!v) {
				status = cmd_usage_error(ctx, "option '--since' needs a value");
				goto out;
			}
			if (d.nwords == MAX_WORDS) {
				status = cmd_usage_error(ctx, "at most %d key=value parameters", MAX_WORDS);
				goto out;
			}
			if (asprintf(&since_words[i], "since=%s", v) < 0) {
				since_words[i] = NULL;
				goto nomem;
			}
			d.words[d.nwords++] = since_words[i];
			if (sbuf_printf(&command, " %s", since_words[i]))
				goto nomem;
		} else if (!strcmp(a, "--timeout") || !strncmp(a, "--timeout=", 10)) {
			const char *v = a[9] == '=' ? a + 10 : (i + 1 < (size_t)argc ? argv[++i] : NULL);

			if (!v || time_parse_duration(v, &d.timeout) != 0 || d.timeout <= 0) {
				status = cmd_usage_error(ctx, "option '--timeout' needs a duration such as 30s or 2m");
				goto out;
			}
		} else if (!strcmp(a, "--")) {
			continue;
		} else if (a[0] == '-') {
			status = cmd_usage_error(ctx, "unknown option '%s'", a);
			goto out;
		} else if (strchr(a, '=') && a[0] != '=') {
			if (d.nwords == MAX_WORDS) {
				status = cmd_usage_error(ctx, "at most %d key=value parameters", MAX_WORDS);
				goto out;
			}
			d.words[d.nwords++] = argv[i];
			if (sbuf_printf(&command, " %s", a))
				goto nomem;
		} else if (!diag_issue_def(a)) {
			status = cmd_usage_error(ctx, "unknown issue '%s' (see 'spilttea-ops diagnose --list')", a);
			goto out;
		} else {
			size_t k;
			int seen = 0;

			for (k = 0; k < nids; k++)
				seen |= !strcmp(ids[k], a);
			if (seen)
				continue;
			ids[nids++] = a;
			if (sbuf_printf(&command, " %s", a))
				goto nomem;
		}
	}
	for (i = 0; i < (size_t)d.nwords; i++) {
		size_t k, len = (size_t)(strchr(d.words[i], '=') - d.words[i]);

		for (k = 0; k < i; k++)
			if (!strncmp(d.words[k], d.words[i], len + 1)) {
				status = cmd_usage_error(ctx, "parameter '%.*s' is given twice", (int)len,
							 d.words[i]);
				goto out;
			}
	}
	if (ctx->format && strcmp(ctx->format, "text") && strcmp(ctx->format, "json")) {
		status = cmd_usage_error(ctx, "diagnose has no format '%s' (text or json)", ctx->format);
		goto out;
	}
	d.json = ctx->format && !strcmp(ctx->format, "json");
	if (list) {
		status = list_issues(ctx);
		goto out;
	}
	if (nids == 0) {
		const struct diag_issue_def *def;

		for (def = diag_issue_defs; def->id; def++)
			ids[nids++] = def->id;
	}
	if (d.json && ctx->dry_run) {
		status = cmd_usage_error(ctx, "--dry-run prints plans as text; drop --format json");
		goto out;
	}
	if (cmd_engine_open(ctx->config, &reg, &d.cat, &err) != 0) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(err.code);
		goto out;
	}
	rbs = calloc(nids, sizeof(*rbs));
	again_rbs = calloc(nids, sizeof(*again_rbs));
	again_ids = calloc(nids, sizeof(*again_ids));
	if (!rbs || !again_rbs || !again_ids)
		goto nomem;
	for (i = 0; i < nids; i++) {
		char name[96];

		snprintf(name, sizeof(name), "diagnose-%s", ids[i]);
		if (runbook_catalog_load(d.cat, name, &rbs[i], &err) != 0) {
			cmd_print_error(ctx, &err);
			status = err.code == ST_ENOMEM ? ST_EXIT_FAILED : ST_EXIT_USAGE;
			goto out;
		}
		{
			char *unused[MAX_WORDS + 1];

			(void)params_for(&d, rbs[i], unused);
		}
	}
	for (i = 0; i < (size_t)d.nwords; i++)
		if (!d.used[i]) {
			status = cmd_usage_error(ctx, "no diagnose runbook of the issues chosen takes '%s'",
						 d.words[i]);
			goto out;
		}

	cmd_signals_catch(&sig);

	if (ctx->dry_run) {
		printf("dry run: nothing will be run, locked or written\n");
		for (i = 0; i < nids; i++) {
			struct engine_options opts;
			struct engine_ui ui;
			json_t *params = NULL;
			char *pargv[MAX_WORDS + 1];
			int pargc = params_for(&d, rbs[i], pargv);

			memset(&ui, 0, sizeof(ui));
			ui.plan = col_plan;
			base_options(&d, &opts);
			opts.ui = &ui;
			putchar('\n');
			if (engine_params_parse(rbs[i], pargc, pargv, &params, &err) != 0 ||
			    engine_run(rbs[i], params, &opts, NULL, &err) != 0) {
				json_decref(params);
				cmd_print_error(ctx, &err);
				status = cmd_exit_status(err.code);
				goto out;
			}
			json_decref(params);
		}
		goto out;
	}

	if ((rc = diagnose_all(&d, rbs, ids, nids, &rep.before)) != 0 ||
	    (rc = diag_collect_fixes(&rep)) != 0)
		goto nomem;
	rep.fix_requested = fix && !cmd_interrupted;

	memset(&ro, 0, sizeof(ro));
	ro.color = ctx->color_stdout;
	ro.verbose = ctx->verbose;
	ro.command = sbuf_str(&command);
	if (!d.json && !ctx->quiet) {
		char *text;

		ro.part = rep.fix_requested ? DIAG_PART_DIAGNOSIS : DIAG_PART_ALL;
		if (!(text = diag_render_text(&rep, &ro)))
			goto nomem;
		fputs(text, stdout);
		free(text);
		if (rep.fix_requested && !rep.nfixes)
			puts("no safe fix to apply");
		fflush(stdout);
	}

	if (rep.fix_requested && rep.nfixes) {
		/* Fixes start services and wait for them: they retry. */
		services_set_fail_fast(&d.services, 0);
		for (i = 0; i < rep.nfixes && !cmd_interrupted; i++)
			run_fix(&d, &rep.fixes[i]);
		/* A fix may have restarted a service under our connections. */
		services_release(&d.services);
		services_init(&d.services, ctx->config);
		services_set_fail_fast(&d.services, 1);
		/* Logs from before and during the fixes tell nothing about their
		 * outcome: checked again, the logs are read from now on. */
		if (asprintf(&d.since, "since=2s") < 0) {
			d.since = NULL;
			goto nomem;
		}
		nagain = fixed_issues(&rep, again_ids, again_rbs, rbs);
		if (!cmd_interrupted && (rc = diagnose_all(&d, again_rbs, again_ids, nagain, &rep.after)) != 0)
			goto nomem;
		if (!d.json && !ctx->quiet) {
			char *text;

			ro.part = DIAG_PART_OUTCOME;
			if (!(text = diag_render_text(&rep, &ro)))
				goto nomem;
			fputs(text, stdout);
			free(text);
		}
	}
	if (d.json) {
		json_t *j = diag_render_json(&rep);
		char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

		json_decref(j);
		if (!s)
			goto nomem;
		puts(s);
		free(s);
	}

	/* The outcome: refused fixes and interruptions first, then what is
	 * still wrong. */
	status = ST_EXIT_OK;
	for (i = 0; i < rep.nfixes; i++) {
		if (rep.fixes[i].result == DIAG_FIX_REFUSED)
			status = ST_EXIT_ABORTED;
		else if (rep.fixes[i].result == DIAG_FIX_LOCKED && status != ST_EXIT_ABORTED)
			status = ST_EXIT_LOCKED;
		else if (rep.fixes[i].result == DIAG_FIX_FAILED && status == ST_EXIT_OK)
			status = ST_EXIT_FAILED;
	}
	if (cmd_interrupted) {
		fputs("error: interrupted\n", stderr);
		status = ST_EXIT_ABORTED;
	} else if (status == ST_EXIT_OK &&
		   diag_set_status(rep.after.n ? &rep.after : &rep.before) == ENGINE_FINDING_PROBLEM) {
		status = ST_EXIT_FAILED;
	}
	/* Issues the fixes did not touch keep their first diagnosis. */
	if (status == ST_EXIT_OK && rep.after.n) {
		for (i = 0; i < rep.before.n; i++) {
			size_t j;
			int again = 0;

			for (j = 0; j < rep.after.n; j++)
				if (!strcmp(rep.after.items[j].id, rep.before.items[i].id))
					again = 1;
			if (!again && rep.before.items[i].status == ENGINE_FINDING_PROBLEM)
				status = ST_EXIT_FAILED;
		}
	}
	goto out;
nomem:
	fputs("error: out of memory\n", stderr);
	status = ST_EXIT_FAILED;
out:
	cmd_signals_restore(&sig);
	diag_report_release(&rep);
	services_release(&d.services);
	for (i = 0; rbs && i < nids; i++)
		runbook_free(rbs[i]);
	free(rbs);
	free(again_rbs);
	free(again_ids);
	free(ids);
	for (i = 0; since_words && i < (size_t)argc; i++)
		free(since_words[i]);
	free(since_words);
	free(d.words);
	free(d.used);
	free(d.since);
	sbuf_release(&command);
	runbook_catalog_free(d.cat);
	engine_registry_free(reg);
	return status;
}
