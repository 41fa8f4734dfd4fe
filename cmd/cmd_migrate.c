/*
 * cmd_migrate.c - `spilttea-ops migrate status|plan|up|resolve`: the
 * runbook's "Database Migration Deployment" with a verified backup first
 * (lib/migrate.h).
 */
#include "cmd.h"
#include "cmd_backup_hooks.h"
#include "../lib/config.h"
#include "../lib/migrate.h"
#include "../lib/services.h"
#include "../lib/timeutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char migrate_usage[] =
	"usage: spilttea-ops migrate status [--format text|json]\n"
	"       spilttea-ops migrate plan\n"
	"       spilttea-ops migrate up [--no-backup --reason TEXT]\n"
	"       spilttea-ops migrate resolve --rolled-back NAME | --applied NAME\n"
	"\n"
	"Prisma migrations: the folders of migrate.dir (NAME/migration.sql) against\n"
	"the database's _prisma_migrations table.\n"
	"\n"
	"  status    applied, failed (started, never finished, not rolled back),\n"
	"            pending (a folder the table lacks), and migrations the table\n"
	"            has but the folder does not; exit 0 only when nothing is\n"
	"            failed or pending\n"
	"  plan      the SQL of each pending migration, in the order it would run\n"
	"  up        1. stop if a failed migration is recorded\n"
	"            2. take a verified backup (mandatory; --no-backup --reason TEXT\n"
	"               skips it and journals why)\n"
	"            3. run migrate.command (default: npm run prisma:migrate) in the\n"
	"               backend container, streaming its output\n"
	"            4. check its exit code and that nothing is failed or pending\n"
	"            5. restart the backend and wait until it is healthy\n"
	"            A failure after step 2 prints the restore command for the\n"
	"            pre-migration backup; 'spilttea-ops rollback db' runs it.\n"
	"  resolve   Prisma's migrate resolve in the backend container: mark a failed\n"
	"            migration rolled back (after repairing the database by hand), or\n"
	"            a failed/pending one applied\n"
	"\n"
	"Every up and resolve is journaled in state_dir and holds the locks of the\n"
	"database and the backend (db:NAME, svc:backend): no deploy, restore or\n"
	"restart of either runs meanwhile.\n"
	"\n"
	"exit status: 0 done (status: up to date), 1 a step failed (status: failed or\n"
	"pending migrations), 2 usage or configuration error, 3 aborted (a failed\n"
	"migration is recorded, or interrupted), 4 another migrate holds the lock\n"
	"\n"
	"examples:\n"
	"  spilttea-ops migrate status\n"
	"  spilttea-ops migrate plan\n"
	"  spilttea-ops migrate up\n"
	"  spilttea-ops --dry-run migrate up\n"
	"  spilttea-ops migrate resolve --rolled-back 20260201110000_add_report_reviewer\n";

static int fail(struct ctx *ctx, const struct st_error *err)
{
	cmd_print_error(ctx, err);
	return cmd_exit_status(err->code);
}

static void stamp(double t, char *buf, size_t size)
{
	if (t <= 0) {
		buf[0] = '\0';
		return;
	}
	time_format_rfc3339(t, buf, size);
	if (strlen(buf) > 16)
		buf[16] = '\0';       /* "2026-01-10T09:30" */
	if (strlen(buf) > 10)
		buf[10] = ' ';
}

/* The first line of s, at most max bytes. */
static void first_line(const char *s, char *buf, size_t size)
{
	size_t n = strcspn(s ? s : "", "\n");

	snprintf(buf, size, "%.*s", (int)(n > 200 ? 200 : n), s ? s : "");
}

static int print_status_text(struct ctx *ctx, const struct migrate_status *st)
{
	size_t i, w = 4;
	char when[40], logs[256];
	int c = ctx->color_stdout;

	for (i = 0; i < st->count; i++)
		if (strlen(st->entries[i].name) > w)
			w = strlen(st->entries[i].name);
	printf("migrations in %s\n", ctx->config->migrate.dir);
	if (!st->table_exists)
		printf("  (the database has no _prisma_migrations table: nothing applied yet)\n");
	for (i = 0; i < st->count; i++) {
		const struct migrate_entry *e = &st->entries[i];
		enum cmd_color col = e->state == MIGRATE_APPLIED ? COLOR_NONE :
			e->state == MIGRATE_FAILED ? COLOR_RED : e->state == MIGRATE_PENDING ? COLOR_YELLOW : COLOR_DIM;

		stamp(e->finished_at > 0 ? e->finished_at : e->started_at, when, sizeof(when));
		printf("  %s%-11s%s  %-*s", cmd_color_on(c, col), migrate_state_name(e->state),
		       cmd_color_off(c), when[0] ? (int)w : 0, e->name);
		if (when[0])
			printf("  %s", when);
		if (e->modified)
			printf("  (migration.sql changed since it was applied)");
		if (e->state == MIGRATE_MISSING)
			printf("  (no folder: the deployed code is older than the database)");
		if (e->rolled_back_rows && e->state != MIGRATE_ROLLED_BACK)
			printf("  (%zu attempt%s rolled back)", e->rolled_back_rows, e->rolled_back_rows == 1 ? "" : "s");
		if (e->state == MIGRATE_FAILED && e->logs) {
			first_line(e->logs, logs, sizeof(logs));
			printf("\n  %*s  %s", 11 + (int)w, "", logs);
		}
		putchar('\n');
	}
	printf("%zu applied, %zu pending, %zu failed", st->applied, st->pending, st->failed);
	if (st->missing)
		printf(", %zu missing locally", st->missing);
	if (st->rolled_back)
		printf(", %zu rolled back", st->rolled_back);
	printf(": %s\n", migrate_status_clean(st) ? "up to date" :
	       st->failed ? "failed migrations block new ones (migrate resolve, or rollback db)" :
	       "pending migrations (migrate plan, migrate up)");
	return 0;
}

static int print_status_json(struct ctx *ctx, const struct migrate_status *st, struct st_error *err)
{
	json_t *root, *list;
	char *text = NULL;
	char when[40];
	size_t i;
	int rc = 0;

	list = json_array();
	root = json_pack("{s:s, s:b, s:b, s:{s:i, s:i, s:i, s:i, s:i, s:i}}", "dir", ctx->config->migrate.dir,
			 "clean", migrate_status_clean(st), "table_exists", st->table_exists, "counts", "applied",
			 (int)st->applied, "pending", (int)st->pending, "failed", (int)st->failed, "rolled_back",
			 (int)st->rolled_back, "missing", (int)st->missing, "modified", (int)st->modified);
	if (!list || !root)
		goto oom;
	for (i = 0; i < st->count; i++) {
		const struct migrate_entry *e = &st->entries[i];
		json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:i}", "name", e->name, "state",
				      migrate_state_name(e->state), "has_folder", e->has_folder, "modified", e->modified,
				      "rolled_back_attempts", (int)e->rolled_back_rows);
		if (!o)
			goto oom;
		if (e->started_at > 0)
			json_object_set_new(o, "started_at", json_string(time_format_rfc3339(e->started_at, when,
											      sizeof(when))));
		if (e->finished_at > 0)
			json_object_set_new(o, "finished_at", json_string(time_format_rfc3339(e->finished_at, when,
											       sizeof(when))));
		if (e->logs)
			json_object_set_new(o, "logs", json_string(e->logs));
		if (json_array_append_new(list, o) != 0)
			goto oom;
	}
	json_object_set(root, "migrations", list);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		goto oom;
	puts(text);
	goto out;
oom:
	rc = st_error_set(err, ST_ENOMEM, "out of memory");
out:
	free(text);
	json_decref(list);
	json_decref(root);
	return rc;
}

static int connect_status(struct ctx *ctx, struct pg_conn **pg, struct migrate_status *st, struct st_error *err)
{
	int rc = services_pg_connect(ctx->config, NULL, "spilttea-ops-migrate", pg, err);

	if (rc == 0)
		rc = migrate_status_read(ctx->config, *pg, st, err);
	return rc;
}

static int do_status(struct ctx *ctx)
{
	struct migrate_status st;
	struct pg_conn *pg = NULL;
	struct st_error err = { 0 };
	int status;

	memset(&st, 0, sizeof(st));
	if (ctx->format && strcmp(ctx->format, "text") && strcmp(ctx->format, "json")) {
		status = cmd_usage_error(ctx, "migrate status has no format '%s' (text or json)", ctx->format);
		goto out;
	}
	if (connect_status(ctx, &pg, &st, &err) != 0) {
		status = fail(ctx, &err);
		goto out;
	}
	if (ctx->format && !strcmp(ctx->format, "json")) {
		if (print_status_json(ctx, &st, &err) != 0) {
			status = fail(ctx, &err);
			goto out;
		}
	} else {
		print_status_text(ctx, &st);
	}
	status = migrate_status_clean(&st) ? ST_EXIT_OK : ST_EXIT_FAILED;
out:
	migrate_status_release(&st);
	pg_close(pg);
	return status;
}

static int do_plan(struct ctx *ctx)
{
	struct migrate_status st;
	struct pg_conn *pg = NULL;
	struct st_error err = { 0 };
	size_t i;
	int status = ST_EXIT_OK;

	memset(&st, 0, sizeof(st));
	if (connect_status(ctx, &pg, &st, &err) != 0) {
		status = fail(ctx, &err);
		goto out;
	}
	if (st.failed) {
		printf("-- %zu failed migration%s recorded: 'migrate up' will not run until it is resolved\n",
		       st.failed, st.failed == 1 ? "" : "s");
		status = ST_EXIT_FAILED;
	}
	if (!st.pending) {
		printf("-- nothing pending: the database is up to date with %s\n", ctx->config->migrate.dir);
		goto out;
	}
	for (i = 0; i < st.count; i++) {
		const struct migrate_entry *e = &st.entries[i];
		char buf[8192];
		size_t n;
		FILE *f;

		if (e->state != MIGRATE_PENDING)
			continue;
		printf("-- migration %s (%s)\n", e->name, e->path);
		f = fopen(e->path, "r");
		if (!f) {
			st_error_set(&err, ST_EIO, "cannot read '%s'", e->path);
			status = fail(ctx, &err);
			goto out;
		}
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, stdout);
		fclose(f);
		printf("\n");
	}
out:
	migrate_status_release(&st);
	pg_close(pg);
	return status;
}

/* ---- up ---- */

static void ui_step(void *ud, const char *step, const char *what)
{
	struct ctx *ctx = ud;

	if (!ctx->quiet)
		printf("%s-> %s:%s %s\n", cmd_color_on(ctx->color_stdout, COLOR_BOLD), step,
		       cmd_color_off(ctx->color_stdout), what);
	fflush(stdout);
}

static void ui_done(void *ud, const char *step, int ok, const char *detail)
{
	struct ctx *ctx = ud;

	(void)detail;
	if (!ctx->quiet && !ok)
		printf("   %s%s failed%s\n", cmd_color_on(ctx->color_stdout, COLOR_RED), step,
		       cmd_color_off(ctx->color_stdout));
	fflush(stdout);
}

/* The command's own output, as it comes: stdout to stdout, stderr to stderr. */
static void ui_output(void *ud, int stream, const char *data, size_t len)
{
	struct ctx *ctx = ud;

	if (ctx->quiet)
		return;
	fwrite(data, 1, len, stream == 2 ? stderr : stdout);
	fflush(stream == 2 ? stderr : stdout);
}

static int do_up(int argc, char **argv, struct ctx *ctx)
{
	struct migrate_up_request rq;
	struct migrate_up_result res;
	struct cmd_signals sig;
	struct migrate_ui ui;
	struct migrate_status st;
	struct docker_client *docker = NULL;
	struct pg_conn *pg = NULL;
	struct st_error err = { 0 };
	const char *reason = NULL;
	int no_backup = 0, status = ST_EXIT_OK, i, rc;

	memset(&st, 0, sizeof(st));
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--no-backup")) {
			no_backup = 1;
		} else if (!strcmp(argv[i], "--reason") && i + 1 < argc) {
			reason = argv[++i];
		} else if (!strncmp(argv[i], "--reason=", 9)) {
			reason = argv[i] + 9;
		} else {
			status = cmd_usage_error(ctx, "unexpected argument '%s'", argv[i]);
			goto out;
		}
	}
	if (reason && !no_backup) {
		status = cmd_usage_error(ctx, "--reason goes with --no-backup");
		goto out;
	}
	if (no_backup && (!reason || !*reason)) {
		status = cmd_usage_error(ctx, "--no-backup needs --reason TEXT (it is journaled)");
		goto out;
	}
	if (ctx->dry_run) {
		/* The plan: what up would do, from the status as it is now. */
		if (connect_status(ctx, &pg, &st, &err) != 0) {
			status = fail(ctx, &err);
			goto out;
		}
		printf("migrate up (dry run: nothing changes)\n");
		if (st.failed) {
			printf("  would stop: %zu failed migration%s recorded\n", st.failed, st.failed == 1 ? "" : "s");
			goto out;
		}
		if (!st.pending) {
			printf("  nothing pending: nothing to do\n");
			goto out;
		}
		printf("  1. %s\n", no_backup ? "no backup (--no-backup)" : "take a verified backup into backup.dir");
		printf("  2. run in the container of service '%s':", ctx->config->migrate.service);
		for (i = 0; i < (int)ctx->config->migrate.command.count; i++)
			printf(" %s", ctx->config->migrate.command.items[i]);
		printf("\n     pending:");
		for (i = 0; i < (int)st.count; i++)
			if (st.entries[i].state == MIGRATE_PENDING)
				printf(" %s", st.entries[i].name);
		printf("\n  3. check that nothing is failed or pending\n");
		printf("  4. restart the backend and wait until it is healthy\n");
		goto out;
	}
	if ((rc = services_pg_connect(ctx->config, NULL, "spilttea-ops-migrate", &pg, &err)) != 0 ||
	    (rc = services_docker_open(ctx->config, &docker, &err)) != 0) {
		status = fail(ctx, &err);
		goto out;
	}
	memset(&ui, 0, sizeof(ui));
	ui.ud = ctx;
	ui.step = ui_step;
	ui.step_done = ui_done;
	ui.output = ui_output;
	memset(&rq, 0, sizeof(rq));
	rq.cfg = ctx->config;
	rq.docker = docker;
	rq.pg = pg;
	rq.no_backup = no_backup;
	rq.reason = reason;
	rq.backup = cmd_take_backup;
	rq.backup_ud = ctx;
	rq.ui = &ui;
	rq.command_line = ctx->command_line;
	/* A lost session or Ctrl-C: stop with nothing applied when the command
	 * has not started, else see it through (migrate.h); either way the
	 * journal run ends and the lock goes. The backup watches the flag too. */
	rq.cancel = cmd_signals_catch(&sig);
	rc = migrate_up(&rq, &res, &err);
	cmd_signals_restore(&sig);
	if (rc != 0) {
		status = fail(ctx, &err);
		/* The exact command, whole, even when the hint was cut. */
		if (res.restore_command[0])
			fprintf(stderr, "restore the pre-migration backup with:\n  %s\n", res.restore_command);
		goto out;
	}
	if (ctx->quiet)
		goto out;
	if (!res.applied_any)
		printf("nothing pending: the database is up to date\n");
	else
		printf("%zu migration%s applied; backend healthy%s%s\n", res.pending_before,
		       res.pending_before == 1 ? "" : "s", res.backup_name[0] ? "; pre-migration backup " : "",
		       res.backup_name);
out:
	migrate_status_release(&st);
	docker_client_free(docker);
	pg_close(pg);
	return status;
}

static int do_resolve(int argc, char **argv, struct ctx *ctx)
{
	struct docker_client *docker = NULL;
	struct pg_conn *pg = NULL;
	struct st_error err = { 0 };
	struct cmd_signals sig;
	const char *how = NULL, *name = NULL;
	int status = ST_EXIT_OK, rc;

	if (argc == 4 && (!strcmp(argv[2], "--rolled-back") || !strcmp(argv[2], "--applied"))) {
		how = argv[2];
		name = argv[3];
	} else {
		status = cmd_usage_error(ctx, "resolve needs --rolled-back NAME or --applied NAME");
		goto out;
	}
	if (ctx->dry_run) {
		printf("would run in the container of service '%s':", ctx->config->migrate.service);
		for (size_t i = 0; i < ctx->config->migrate.resolve_command.count; i++)
			printf(" %s", ctx->config->migrate.resolve_command.items[i]);
		printf(" %s %s\n", how, name);
		goto out;
	}
	if (services_pg_connect(ctx->config, NULL, "spilttea-ops-migrate", &pg, &err) != 0 ||
	    services_docker_open(ctx->config, &docker, &err) != 0) {
		status = fail(ctx, &err);
		goto out;
	}
	/* The command is short and not cut off half way: a signal only must
	 * not kill the run before its journal end and lock release. */
	cmd_signals_catch(&sig);
	rc = migrate_resolve(ctx->config, docker, pg, how, name, ctx->command_line, ui_output, ctx, NULL, &err);
	cmd_signals_restore(&sig);
	if (rc != 0) {
		status = fail(ctx, &err);
		goto out;
	}
	if (!ctx->quiet)
		printf("migration %s marked %s\n", name, !strcmp(how, "--applied") ? "applied" : "rolled back");
out:
	docker_client_free(docker);
	pg_close(pg);
	return status;
}

int cmd_migrate(int argc, char **argv, struct ctx *ctx)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
		fputs(migrate_usage, stdout);
		return ST_EXIT_OK;
	}
	if (argc < 2)
		return cmd_usage_error(ctx, "migrate needs a subcommand: status, plan, up or resolve");
	if (!strcmp(argv[1], "status") || !strcmp(argv[1], "plan")) {
		if (argc > 2)
			return cmd_usage_error(ctx, "unexpected argument '%s'", argv[2]);
		return !strcmp(argv[1], "status") ? do_status(ctx) : do_plan(ctx);
	}
	if (!strcmp(argv[1], "up"))
		return do_up(argc, argv, ctx);
	if (!strcmp(argv[1], "resolve"))
		return do_resolve(argc, argv, ctx);
	return cmd_usage_error(ctx, "unknown migrate subcommand '%s'", argv[1]);
}
