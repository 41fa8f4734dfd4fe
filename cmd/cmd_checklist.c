/*
 * cmd_checklist.c - `spilttea-ops deploy --checklist`: CI's pre-deploy
 * checklist (lib/checklist.h). cmd_deploy hands its arguments here when
 * they hold --checklist.
 */
#include "cmd.h"
#include "cmd_backup_hooks.h"
#include "../lib/checklist.h"
#include "../lib/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_checklist_usage[] =
	"  --checklist       the runbook's Pre-Deployment Checklist instead of a\n"
	"                    deploy (for CI): env.NAME (checklist.env_files set every\n"
	"                    required variable), docker, database, migrations.failed,\n"
	"                    migrations.pending, backup (with pending migrations, a\n"
	"                    verified one younger than checklist.backup_max_age),\n"
	"                    disk, attest.NAME (checklist.attestations)\n"
	"  --attest NAME,... the human items that were done (also SPILTTEA_ATTEST)\n"
	"  --backup          take the checklist's backup now\n"
	"  --format junit    JUnit XML, one testcase per item\n";

int cmd_checklist(int argc, char **argv, struct ctx *ctx)
{
	struct checklist_request rq;
	struct checklist_report rep;
	struct sbuf out = SBUF_INIT;
	struct st_error err = { 0 };
	struct cmd_signals sig;
	volatile sig_atomic_t *cancel;
	const char *fmt = ctx->format ? ctx->format : "text";
	const char *env = getenv("SPILTTEA_ATTEST");
	char **attested = NULL;
	int take_backup = 0, from_flag = 0, status = ST_EXIT_OK, i, rc;

	memset(&rep, 0, sizeof(rep));
	if (strcmp(fmt, "text") && strcmp(fmt, "json") && strcmp(fmt, "junit")) {
		status = cmd_usage_error(ctx, "deploy --checklist has no format '%s' (text, json or junit)", fmt);
		goto out;
	}
	for (i = 1; i < argc; i++) {
		const char *list = NULL;

		if (!strcmp(argv[i], "--checklist"))
			continue;
		if (!strcmp(argv[i], "--backup")) {
			take_backup = 1;
			continue;
		}
		if (!strcmp(argv[i], "--attest") && i + 1 < argc)
			list = argv[++i];
		else if (!strncmp(argv[i], "--attest=", 9))
			list = argv[i] + 9;
		if (!list) {
			status = cmd_usage_error(ctx, "'%s' does not go with --checklist", argv[i]);
			goto out;
		}
		from_flag = 1;
		if (checklist_attest_parse(list, &attested, &err) != 0) {
			cmd_print_error(ctx, &err);
			status = cmd_exit_status(err.code);
			goto out;
		}
	}
	if (env && checklist_attest_parse(env, &attested, &err) != 0) {
		st_error_wrap(&err, "SPILTTEA_ATTEST");
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(err.code);
		goto out;
	}
	memset(&rq, 0, sizeof(rq));
	rq.cfg = ctx->config;
	rq.attested = attested;
	rq.attest_source = from_flag && env && *env ? "--attest, SPILTTEA_ATTEST" : from_flag ? "--attest" :
		"SPILTTEA_ATTEST";
	rq.take_backup = take_backup;
	rq.find_backup = cmd_find_backup;
	rq.take = cmd_take_backup;
	rq.backup_ud = ctx;
	/* --backup takes one: an interrupt stops it (and the verdict) cleanly. */
	cancel = cmd_signals_catch(&sig);
	rc = checklist_run(&rq, &rep, &err);
	cmd_signals_restore(&sig);
	if (rc == 0 && *cancel)
		rc = st_error_set(&err, ST_EABORTED, "interrupted: the checklist is incomplete");
	if (rc != 0) {
		cmd_print_error(ctx, &err);
		status = cmd_exit_status(rc);
		goto out;
	}
	if (!strcmp(fmt, "json"))
		rc = checklist_render_json(&rep, &out, &err);
	else if (!strcmp(fmt, "junit"))
		rc = checklist_render_junit(&rep, &out, &err);
	else
		rc = checklist_render_text(&rep, ctx->color_stdout, &out, &err);
	if (rc != 0) {
		cmd_print_error(ctx, &err);
		status = ST_EXIT_FAILED;
		goto out;
	}
	if (!ctx->quiet || strcmp(fmt, "text"))
		fputs(sbuf_str(&out), stdout);
	status = checklist_passed(&rep) ? ST_EXIT_OK : ST_EXIT_FAILED;
out:
	sbuf_release(&out);
	checklist_report_release(&rep);
	checklist_attest_free(attested);
	return status;
}
