/*
 * cmd_rollback_db.c - `spilttea-ops rollback db [--to-backup FILE]`: the
 * runbook's "Database Rollback" the safe way: restore the pre-migration
 * backup (the one the last `migrate up` took, remembered in
 * STATE_DIR/migrate/last.json) through `restore`, which never drops the
 * live database before the restored copy proved complete. The restore
 * holds the database's and the backend's locks (the ones migrate up takes),
 * so no migration runs under it; rollback db looks at them first so that a
 * migrate up that still runs gets a clear refusal, not a restore prompt.
 */
#include "cmd.h"
#include "../lib/config.h"
#include "../lib/lock.h"
#include "../lib/migrate.h"

#include <stdio.h>
#include <string.h>

const char cmd_rollback_db_usage[] =
	"database rollback:\n"
	"  spilttea-ops rollback db [--to-backup FILE]\n"
	"restores the backup the last 'migrate up' took before migrating (or FILE, a\n"
	"name in backup.dir or a path) through 'spilttea-ops restore': verified,\n"
	"loaded into a new database, checked, swapped in; the live database is\n"
	"renamed, never dropped. It asks for the database name (or --yes), saying\n"
	"how old the backup is: what was written since is lost. It refuses while a\n"
	"migrate up runs.\n"
	"\n";

int cmd_rollback_db(int argc, char **argv, struct ctx *ctx)
{
	struct migrate_last last;
	struct st_error err = { 0 };
	const char *file = NULL;
	char *restore_argv[3];
	int i, status;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--to-backup") && i + 1 < argc)
			file = argv[++i];
		else if (!strncmp(argv[i], "--to-backup=", 12))
			file = argv[i] + 12;
		else
			return cmd_usage_error(ctx, "unexpected argument '%s'", argv[i]);
	}
	/* A migrate up that still runs holds these: refuse before any prompt.
	 * Released at once, since the restore takes them itself (flock locks
	 * of one process conflict with each other); a migration starting in
	 * between still meets the restore's own locks. A dry run changes
	 * nothing and takes no lock. */
	if (!ctx->dry_run) {
		char db[LOCK_NAME_MAX], svc[LOCK_NAME_MAX];
		const char *names[2] = { db, svc };
		struct lock_set *set = NULL;

		if (lock_name_db(db, sizeof(db), ctx->config->postgres.database, &err) != 0 ||
		    lock_name_service(svc, sizeof(svc), ctx->config->migrate.service, &err) != 0 ||
		    lock_acquire_set(ctx->config->state_dir, names, 2, ctx->command_line, &set, NULL,
				     &err) != 0) {
			if (err.code == ST_ELOCKED)
				st_error_wrap(&err, "cannot roll the database back while a migration runs");
			cmd_print_error(ctx, &err);
			return cmd_exit_status(err.code);
		}
		lock_release_set(set);
	}
	if (!file) {
		if (migrate_last_load(ctx->config->state_dir, &last, &err) != 0) {
			st_error_wrap(&err, "no pre-migration backup to roll back to");
			st_error_hint(&err, "name one: spilttea-ops rollback db --to-backup FILE "
				      "(spilttea-ops backup list)");
			cmd_print_error(ctx, &err);
			status = ST_EXIT_ABORTED;
			goto out;
		}
		if (!last.backup_path[0]) {
			st_error_set(&err, ST_EABORTED, "the last migrate up (%s) ran with --no-backup: "
				     "there is no pre-migration backup", last.time);
			st_error_hint(&err, "name one: spilttea-ops rollback db --to-backup FILE "
				      "(spilttea-ops backup list)");
			cmd_print_error(ctx, &err);
			status = ST_EXIT_ABORTED;
			goto out;
		}
		file = last.backup_path;
		/* "running" with its locks free: that migrate up died half way. */
		if (!strcmp(last.result, "running"))
			fprintf(stderr, "warning: the migrate up of %s never finished (it was killed): the "
				"database may be half migrated\n", last.time);
		if (!ctx->quiet)
			printf("rolling the database back to the backup taken before the migrate up of %s (%s):\n  %s\n",
			       last.time, !strcmp(last.result, "running") ? "unfinished" : last.result, file);
	}
	restore_argv[0] = "restore";
	restore_argv[1] = (char *)file;
	restore_argv[2] = NULL;
	status = cmd_restore(2, restore_argv, ctx);
out:
	return status;
}
