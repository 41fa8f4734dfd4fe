/*
 * cmd_backup_hooks.h - the backup module (lib/backup.h) as the callbacks
 * migrate up and the pre-deploy checklist take (lib/migrate.h,
 * lib/checklist.h). ud is the command's struct ctx.
 */
#ifndef ST_CMD_BACKUP_HOOKS_H
#define ST_CMD_BACKUP_HOOKS_H

#include <stddef.h>

#include "../lib/error.h"

/* Takes a full backup of postgres.database with the configured codec and
 * route (backup.via), verified as backup_create() verifies every backup,
 * and writes its path. A one-line progress note goes to stderr unless
 * --quiet. */
int cmd_take_backup(void *ctx, char *path, size_t size, struct st_error *err);

/* The newest verified full backup of postgres.database in backup.dir: its
 * start time and name. ST_ENOTFOUND when there is none. */
int cmd_find_backup(void *ctx, double *time, char *name, size_t size, struct st_error *err);

#endif
