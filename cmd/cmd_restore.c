/*
 * cmd_restore.c - `spilttea-ops restore FILE` and `restore cleanup`: the
 * runbook's "Full Database Restore", done without ever dropping the live
 * database first. The steps are the runbooks runbooks/restore.yaml and
 * runbooks/restore-cleanup.yaml (actions in lib/actions_backup.c), run by
 * the engine, so confirmation, --dry-run, the journal and the lock behave as
 * in `run` (which runs them too, given the parameters).
 */
#include "cmd.h"
#include "cmd_backup.h"
#include "cmd_engine.h"
#include "../lib/backup.h"
#include "../lib/config.h"
#include "../lib/runbook.h"
#include "../lib/services.h"
#include "../lib/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char restore_usage[] =
	"usage: spilttea-ops restore FILE [--database NAME] [--from-database NAME]\n"
	"                            [--keep-old] [--yes]\n"
	"       spilttea-ops restore cleanup [--database NAME] [--yes]\n"
	"\n"
	"Restores a full backup without ever dropping the live database first:\n"
	"  1. verify FILE against its manifest (size, SHA-256, decompression, trailer)\n"
	"     and that it is a full backup of the database it replaces\n"
	"  2. after a typed confirmation of the database name, create NAME_restore_STAMP\n"
	"     and back up the live database (skipped when there is none: a new server)\n"
	"  3. stream the dump into psql -v ON_ERROR_STOP=1 on NAME_restore_STAMP\n"
	"  4. check its tables and the row counts of \"User\" and \"Post\" (manifest)\n"
	"  5. stop the backend, end remaining sessions, rename NAME to\n"
	"     NAME_pre_restore_STAMP and the restored copy to NAME in one transaction,\n"
	"     start the backend, wait until its health URL answers\n"
	"A failure before step 5 leaves the live database untouched and drops the\n"
	"copy; a failure after the swap swaps back. Every step is journaled.\n"
	"\n"
	"  FILE             a backup name in backup.dir, or a path (manifest beside it)\n"
	"  --database NAME  the database to replace (default: postgres.database)\n"
	"  --from-database NAME\n"
	"                   the database FILE is a backup of, when that is another\n"
	"                   one (without it, such a backup is refused)\n"
	"  --keep-old       keep the replaced database as NAME_pre_restore_STAMP\n"
	"                   (the default; 'restore cleanup' drops such copies)\n"
	"  -y, --yes        confirm without a terminal (scripts)\n"
	"  -n, --dry-run    print the steps with their arguments; change nothing\n"
	"\n"
	"restore cleanup drops the NAME_pre_restore_*, NAME_restore_* and\n"
	"NAME_testrestore_* databases that restores and test-restores left behind.\n"
	"\n"
	"exit status: 0 done, 1 a step failed (see the undo lines), 2 usage or\n"
	"configuration error, 3 aborted (bad backup, confirmation refused,\n"
	"interrupted), 4 a backup or restore holds the lock\n"
	"\n"
	"examples:\n"
	"  spilttea-ops backup list\n"
	"  spilttea-ops restore backup_20260122_020000.sql.gz\n"
	"  spilttea-ops --dry-run restore backup_20260122_020000.sql.gz\n"
	"  spilttea-ops restore /mnt/offsite/backup_20260122_020000.sql.gz --yes\n"
	"  spilttea-ops restore cleanup\n";

/* One typed confirmation covers the run: later steps that need one (stop
 * the backend, swap) are answered with the word already typed. */
struct restore_ui {
	struct cmd_ui base;
	struct engine_ui inner;
	int confirmed;
};

static int restore_confirm(void *ud, const char *prompt, const char *word, char *answer, size_t size)
{
	struct restore_ui *u = ud;

	if (u->confirmed) {
		snprintf(answer, size, "%s", word ? word : "yes");
		return 1;
	}
	if (!u->inner.confirm(u->inner.ud, prompt, word, answer, size))
		return 0;
	u->confirmed = word ? strcmp(answer, word) == 0 : 1;
	return 1;
}

static void fwd_plan(void *ud, const char *line)
{
	struct restore_ui *u = ud;
	u->inner.plan(u->inner.ud, line);
}

static void fwd_start(void *ud, const struct engine_step_event *ev)
{
	struct restore_ui *u = ud;
	u->inner.step_start(u->inner.ud, ev);
}

static void fwd_end(void *ud, const struct engine_step_event *ev)
{
	struct restore_ui *u = ud;
	u->inner.step_end(u->inner.ud, ev);
}

static void fwd_notice(void *ud, const char *msg)
{
	struct restore_ui *u = ud;
	u->inner.notice(u->inner.ud, msg);
}

static int run_plan(struct ctx *ctx, const char *name, char **kv, int nkv, const char *done_msg)
{
	struct engine_registry *reg = NULL;
	struct runbook_catalog *cat = NULL;
	struct runbook *rb = NULL;
	struct services sv;
	struct engine_options opts;
	struct engine_report report;
	struct restore_ui ui;
	struct engine_ui eui;
	struct cmd_signals sig;
	struct st_error err = { 0 };
	json_t *params = NULL;
	int rc;

	memset(&report, 0, sizeof(report));
	services_init(&sv, ctx->config);
	if ((rc = cmd_engine_open(ctx->config, &reg, &cat, &err)) != 0 ||
	    (rc = runbook_catalog_load(cat, name, &rb, &err)) != 0 ||
	    (rc = engine_params_parse(rb, nkv, kv, &params, &err)) != 0)
		goto out;

	memset(&ui, 0, sizeof(ui));
	cmd_engine_ui(&ui.base, ctx, &ui.inner);
	memset(&eui, 0, sizeof(eui));
	eui.ud = &ui;
	eui.plan = fwd_plan;
	eui.step_start = fwd_start;
	eui.step_end = fwd_end;
	eui.notice = fwd_notice;
	eui.confirm = restore_confirm;

	memset(&opts, 0, sizeof(opts));
	opts.state_dir = ctx->config->state_dir;
	opts.command_line = ctx->command_line;
	opts.dry_run = ctx->dry_run;
	opts.assume_yes = ctx->yes;
	opts.lookup_config = cmd_engine_lookup_config;
	opts.config_ud = ctx->config;
	opts.config = ctx->config;
	opts.services = &sv;
	opts.ui = &eui;
	opts.cancel = cmd_signals_catch(&sig);
	if (ctx->dry_run && !ctx->quiet)
		printf("dry run: nothing will be run, locked or written\n");
	rc = engine_run(rb, params, &opts, &report, &err);
	cmd_signals_restore(&sig);
	if (rc == 0 && !ctx->quiet && !ctx->dry_run) {
		char dur[32];

		printf("%s (%s, journal run %s)\n", done_msg,
		       time_format_duration(report.duration, dur, sizeof(dur)), report.run_id);
	}
out:
	if (rc) {
		/* Aborted before anything was done and nothing said why next: the
		 * backup itself failed its check. */
		if (rc == ST_EABORTED && !err.hint[0] && report.ok == 0)
			st_error_hint(&err, "see the backups with 'spilttea-ops backup list'; check one "
				      "with 'spilttea-ops backup verify FILE'");
		cmd_print_error(ctx, &err);
		if (!ctx->quiet && report.run_id[0])
			fprintf(stderr, "%s stopped: %zu ok, %zu failed, %zu undone%s (journal run %s)\n",
				rb ? rb->name : name, report.ok, report.failed, report.undone,
				report.undo_failed ? ", UNDO FAILED: check the databases by hand" : "",
				report.run_id);
	}
	json_decref(params);
	runbook_free(rb);
	runbook_catalog_free(cat);
	engine_registry_free(reg);
	services_release(&sv);
	return cmd_exit_status(rc);
}

static char *kv(const char *key, const char *value)
{
	size_t n = strlen(key) + strlen(value) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s=%s", key, value);
	return s;
}

int cmd_restore(int argc, char **argv, struct ctx *ctx)
{
	const char *file = NULL, *db = NULL, *from = NULL;
	char *params[6] = { NULL };
	char stamp[32], done[512];
	int i, np = 0, cleanup = 0, status = ST_EXIT_OK;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help")) {
			fputs(restore_usage, stdout);
			return ST_EXIT_OK;
		}
		if (!strcmp(a, "--database") || !strncmp(a, "--database=", 11)) {
			if (a[10] == '=')
				db = a + 11;
			else if (i + 1 < argc)
				db = argv[++i];
			else
				return cmd_usage_error(ctx, "option '--database' needs a value");
		} else if (!strcmp(a, "--from-database") || !strncmp(a, "--from-database=", 16)) {
			if (a[15] == '=')
				from = a + 16;
			else if (i + 1 < argc)
				from = argv[++i];
			else
				return cmd_usage_error(ctx, "option '--from-database' needs a value");
		} else if (!strcmp(a, "--keep-old")) {
			continue; /* the default, accepted for scripts that say so */
		} else if (!strcmp(a, "--")) {
			continue;
		} else if (a[0] == '-') {
			return cmd_usage_error(ctx, "unknown option '%s'", a);
		} else if (!file && !cleanup && !strcmp(a, "cleanup")) {
			cleanup = 1;
		} else if (!file && !cleanup) {
			file = a;
		} else {
			return cmd_usage_error(ctx, "unexpected argument '%s'", a);
		}
	}
	if (ctx->format && strcmp(ctx->format, "text"))
		return cmd_usage_error(ctx, "restore has no format '%s' (only text)", ctx->format);
	if (!file && !cleanup)
		return cmd_usage_error(ctx, "restore needs a backup FILE (see 'spilttea-ops backup list')");
	if (!db)
		db = ctx->config->postgres.database;
	if (strlen(db) > BACKUP_DBNAME_MAX || !*db)
		return cmd_usage_error(ctx, "database name '%s' is longer than %d bytes: the restored and "
				       "old copies' names would not fit", db, BACKUP_DBNAME_MAX);
	if (from && (cleanup || !*from))
		return cmd_usage_error(ctx, cleanup ? "restore cleanup takes no --from-database"
					       : "option '--from-database' needs a value");
	if (cleanup) {
		if (!(params[np++] = kv("database", db))) {
			status = ST_EXIT_FAILED;
			goto out;
		}
		snprintf(done, sizeof(done), "old copies of '%s' dropped", db);
		status = run_plan(ctx, "restore-cleanup", params, np, done);
		goto out;
	}
	{
		/* The name, the place and the file type are checked before
		 * anything is planned, so a dry run refuses what the run would
		 * (a path out of backup.dir to a file not named like a backup,
		 * a symlink, a missing file); the run's precondition checks
		 * them again, and verifies the contents. */
		struct backup_check chk;
		struct st_error err = { 0 };
		int rc = backup_resolve(ctx->config->backup.dir, file, &chk, &err);

		backup_check_release(&chk);
		if (rc) {
			cmd_print_error(ctx, &err);
			return cmd_exit_status(rc);
		}
	}
	if (!config_service(ctx->config, "backend")) {
		struct st_error err = { 0 };

		st_error_set(&err, ST_ECONFIG, "restore stops the backend during the swap, but services.backend "
			     "is not configured");
		st_error_hint(&err, "add services.backend.container to %s", ctx->config->path);
		cmd_print_error(ctx, &err);
		return ST_EXIT_USAGE;
	}
	time_format_compact(time_wall(), stamp, sizeof(stamp));
	if (!(params[np++] = kv("file", file)) || !(params[np++] = kv("database", db)) ||
	    !(params[np++] = kv("stamp", stamp)) || (from && !(params[np++] = kv("from_database", from)))) {
		status = ST_EXIT_FAILED;
		goto out;
	}
	snprintf(done, sizeof(done), "restored into '%s'; the previous database is kept as %s_pre_restore_%s "
		 "('spilttea-ops restore cleanup' drops it)", db, db, stamp);
	status = run_plan(ctx, "restore", params, np, done);
out:
	for (i = 0; i < np; i++)
		free(params[i]);
	return status;
}
