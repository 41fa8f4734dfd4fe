/*
 * cmd_rollback_db.c - `spilttea-ops rollback db [--to-backup FILE]`: the
 * runbook's "Database Rollback" the safe way: restore the pre-migration
 * backup (the one the last `migrate up` took, remembered in
 * STATE_DIR/migrate/last.json) through `restore`, which never drops the
 * live database before the restored copy proved complete.
 */
#include "cmd.h"
#include "../lib/config.h"
#include "../lib/migrate.h"

#include <stdio.h>
#include <string.h>

const char cmd_rollback_db_usage[] =
	"database rollback:\n"
	"  spilttea-ops rollback db [--to-backup FILE]\n"
	"restores the backup the last 'migrate up' took before migrating (or FILE, a\n"
	"name in backup.dir or a path) through 'spilttea-ops restore': verified,\n"
	"loaded into a new database, checked, swapped in; the live database is\n"
	"renamed, never dropped. It asks for the database name (or --yes).\n"
	"\n";

int cmd_rollback_db(int argc, char **argv, struct ctx *ctx)
{
	struct migrate_last last;
	struct st_error err = { 0 };
	const char *file = NULL;
	char *restore_argv[3];
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--to-backup") && i + 1 < argc)
			file = argv[++i];
		else if (!strncmp(argv[i], "--to-backup=", 12))
			file = argv[i] + 12;
		else
			return cmd_usage_error(ctx, "unexpected argument '%s'", argv[i]);
	}
	if (!file) {
		if (migrate_last_load(ctx->config->state_dir, &last, &err) != 0) {
			st_error_wrap(&err, "no pre-migration backup to roll back to");
			st_error_hint(&err, "name one: spilttea-ops rollback db --to-backup FILE "
				      "(spilttea-ops backup list)");
			cmd_print_error(ctx, &err);
			return ST_EXIT_ABORTED;
		}
		if (!last.backup_path[0]) {
			st_error_set(&err, ST_EABORTED, "the last migrate up (%s) ran with --no-backup: "
				     "there is no pre-migration backup", last.time);
			st_error_hint(&err, "name one: spilttea-ops rollback db --to-backup FILE "
				      "(spilttea-ops backup list)");
			cmd_print_error(ctx, &err);
			return ST_EXIT_ABORTED;
		}
		file = last.backup_path;
		if (!ctx->quiet)
			printf("rolling the database back to the backup taken before the migrate up of %s (%s):\n  %s\n",
			       last.time, last.result, file);
	}
	restore_argv[0] = "restore";
	restore_argv[1] = (char *)file;
	restore_argv[2] = NULL;
	return cmd_restore(2, restore_argv, ctx);
}
