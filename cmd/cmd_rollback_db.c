/*
 * cmd_rollback_db.c - `spilttea-ops rollback db [--to-backup FILE]`: the
 * runbook's "Database Rollback" the safe way: restore the pre-migration
 * backup (the one the last `migrate up` took, remembered in
 * STATE_DIR/migrate/last.json) through `restore`, which never drops the
 * live database before the restored copy proved complete. It holds the
 * migrate lock meanwhile: no migration runs under the restore, and a
 * migrate up that still runs is not rolled back under its feet.
 */
#include "cmd.h"
#include "../lib/config.h"
#include "../lib/lock.h"
#include "../lib/migrate.h"

#include <stdio.h>
#include <string.h>

const char cmd_rollback_db_usage[] =
	"\n"
	"database rollback:\n"
	"  spilttea-ops rollback db [--to-backup FILE]\n"
	"\n"
	"rollback db restores the database from the backup the last 'migrate up' took\n"
	"before migrating (or FILE: a backup name in backup.dir, or a path), through\n"
	"'spilttea-ops restore': verified first, loaded into a new database, checked,\n"
	"then swapped in; the live database is renamed, never dropped. It asks for\n"
	"the database name (or --yes), saying how old the backup is: whatever was\n"
	"written since is lost. It refuses while a migrate up runs.\n"
	"  spilttea-ops rollback db\n"
	"  spilttea-ops rollback db --to-backup backup_20260122_120000.sql.gz --yes\n";

int cmd_rollback_db(int argc, char **argv, struct ctx *ctx)
{
	struct migrate_last last;
	struct st_lock *lock = NULL;
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
	/* No migration may start (or still run) while its database is
	 * restored. A dry run changes nothing and takes no lock. */
	if (!ctx->dry_run &&
	    lock_acquire(ctx->config->state_dir, MIGRATE_LOCK, ctx->command_line, &lock, NULL, &err) != 0) {
		if (err.code == ST_ELOCKED)
			st_error_wrap(&err, "cannot roll the database back while a migration runs");
		cmd_print_error(ctx, &err);
		return cmd_exit_status(err.code);
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
		/* "running" with the lock free: that migrate up died half way. */
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
	lock_release(lock);
	return status;
}
