/*
 * cmd_run.c - `spilttea-ops run NAME|FILE [key=value...]`: one runbook,
 * step by step, through lib/engine.h.
 */
#include "cmd.h"
#include "cmd_engine.h"
#include "../lib/config.h"
#include "../lib/incident.h"
#include "../lib/services.h"
#include "../lib/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char run_usage[] =
	"usage: spilttea-ops run NAME|FILE [key=value ...] [--incident ID]\n"
	"\n"
	"Runs a runbook step by step. For each step: its condition (when), its\n"
	"precondition (check: abort or skip), a confirmation when it loses data or\n"
	"interrupts service, the action, then its postcondition (verify, polled until\n"
	"it holds or times out). When a step fails, the steps already done are undone\n"
	"in reverse order. Every run is journaled in STATE_DIR/journal.jsonl and holds\n"
	"the runbook's lock, so two conflicting runs cannot overlap.\n"
	"\n"
	"  NAME|FILE       a runbook from 'spilttea-ops runbook list', or a YAML file\n"
	"  key=value       parameters (see them with 'spilttea-ops runbook show NAME')\n"
	"  --incident ID   record an incident id with the run in the journal\n"
	"\n"
	"global options that matter here:\n"
	"  -n, --dry-run   print the plan with resolved arguments (secrets as ***);\n"
	"                  run nothing, take no lock, write nothing\n"
	"  -y, --yes       confirm every step (needed when there is no terminal)\n"
	"  -q, --quiet     print nothing on success, one line on failure\n"
	"\n"
	"exit status: 0 done, 1 a step failed, 2 usage, configuration or runbook\n"
	"error, 3 aborted (precondition not met, confirmation refused, interrupted),\n"
	"4 another run holds the lock\n"
	"\n"
	"examples:\n"
	"  spilttea-ops run selftest\n"
	"  spilttea-ops --dry-run run ./procedures/rotate.yaml dir=/srv/app\n"
	"  spilttea-ops run restart-backend --yes --incident INC-42\n";

static int load_error(const struct ctx *ctx, const struct st_error *err)
{
	cmd_print_error(ctx, err);
	/* Whatever stops a runbook from loading (unknown name, bad file,
	 * unreadable runbooks_dir) is a usage or configuration error. */
	return err->code == ST_ENOMEM ? ST_EXIT_FAILED : ST_EXIT_USAGE;
}

int cmd_run(int argc, char **argv, struct ctx *ctx)
{
	struct engine_registry *reg = NULL;
	struct runbook_catalog *cat = NULL;
	struct runbook *rb = NULL;
	json_t *params = NULL;
	struct st_error err = { 0 };
	struct engine_options opts;
	struct engine_report report;
	struct engine_ui ui;
	struct cmd_ui ui_state = { 0 };
	struct services services;
	struct cmd_signals sig;
	volatile sig_atomic_t *cancel;
	const char *target = NULL, *incident = NULL;
	char **kv = NULL;
	int nkv = 0, i, rc;
	int status = ST_EXIT_OK;

	services_init(&services, ctx->config);
	memset(&sig, 0, sizeof(sig));

	if (argc >= 2 && !strcmp(argv[1], "--help")) {
		fputs(run_usage, stdout);
		return ST_EXIT_OK;
	}
	kv = calloc((size_t)argc + 1, sizeof(*kv));
	if (!kv) {
		st_error_set(&err, ST_ENOMEM, "out of memory");
		cmd_print_error(ctx, &err);
		return ST_EXIT_FAILED;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			continue;
		if (!strcmp(a, "--incident")) {
			if (i + 1 >= argc) {
				status = cmd_usage_error(ctx, "option '--incident' needs a value");
				goto out;
			}
			incident = argv[++i];
		} else if (!strncmp(a, "--incident=", 11)) {
			incident = a + 11;
		} else if (a[0] == '-' && a[1]) {
			status = cmd_usage_error(ctx, "unknown option '%s'", a);
			goto out;
		} else if (!target) {
			target = a;
		} else {
			kv[nkv++] = argv[i];
		}
	}
	if (!target) {
		status = cmd_usage_error(ctx, "run needs a runbook name or file");
		goto out;
	}
	/* The id goes to the journal, where 'incident report' picks the runs
	 * of an incident by it: the same ids as 'incident --incident' only
	 * (no newlines, escapes or paths in a report). */
	if (incident && !incident_id_valid(incident)) {
		status = cmd_usage_error(ctx, "'%s' is not an incident id (letters, digits, '.', '_', '-'; "
					 "at most %d characters)", incident, INCIDENT_ID_MAX - 1);
		goto out;
	}
	if (ctx->format && strcmp(ctx->format, "text")) {
		status = cmd_usage_error(ctx, "run has no format '%s' (only text)", ctx->format);
		goto out;
	}
	/* From here on a signal stops the run cleanly, also one that comes
	 * while the runbooks load: the engine then stops before the first
	 * step. */
	cancel = cmd_signals_catch(&sig);

	if (cmd_engine_open(ctx->config, &reg, &cat, &err) != 0 ||
	    runbook_catalog_load(cat, target, &rb, &err) != 0 ||
	    engine_params_parse(rb, nkv, kv, &params, &err) != 0) {
		status = load_error(ctx, &err);
		goto out;
	}

	cmd_engine_ui(&ui_state, ctx, &ui);
	memset(&opts, 0, sizeof(opts));
	opts.state_dir = ctx->config->state_dir;
	opts.command_line = ctx->command_line;
	opts.incident = incident;
	opts.dry_run = ctx->dry_run;
	opts.assume_yes = ctx->yes;
	opts.lookup_config = cmd_engine_lookup_config;
	opts.config_ud = ctx->config;
	opts.config = ctx->config;
	/* Opened on first use only: a dry run or a runbook of file actions
	 * connects to nothing. */
	opts.services = &services;
	opts.cancel = cancel;
	opts.ui = &ui;

	if (ctx->dry_run && !ctx->quiet)
		printf("dry run: nothing will be run, locked or written\n");
	rc = engine_run(rb, params, &opts, &report, &err);
	if (rc) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(rc);
		if (!ctx->quiet && !ctx->dry_run && report.run_id[0])
			fprintf(stderr, "runbook %s stopped: %zu ok, %zu skipped, %zu failed, %zu undone "
				"(journal run %s)\n", rb->name, report.ok, report.skipped, report.failed,
				report.undone, report.run_id);
		goto out;
	}
	if (!ctx->quiet && !ctx->dry_run) {
		char dur[32];

		char failed[64] = "";

		char findings[96] = "";

		if (report.failed)
			snprintf(failed, sizeof(failed), ", %zu failed (the run went on)", report.failed);
		if (report.findings[0] + report.findings[1] + report.findings[2])
			snprintf(findings, sizeof(findings), "; findings: %zu ok, %zu warn, %zu problem",
				 report.findings[ENGINE_FINDING_OK], report.findings[ENGINE_FINDING_WARN],
				 report.findings[ENGINE_FINDING_PROBLEM]);
		printf("runbook %s done: %zu ok, %zu skipped%s in %s (journal run %s)%s\n", rb->name,
		       report.ok, report.skipped, failed,
		       time_format_duration(report.duration, dur, sizeof(dur)), report.run_id, findings);
	}
out:
	cmd_engine_ui_release(&ui_state);
	services_release(&services);
	cmd_signals_restore(&sig);
	json_decref(params);
	runbook_free(rb);
	runbook_catalog_free(cat);
	engine_registry_free(reg);
	free(kv);
	return status;
}
