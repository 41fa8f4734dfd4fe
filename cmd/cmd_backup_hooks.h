/*
 * cmd_backup_hooks.h - the backup module (lib/backup.h) as the callbacks
 * migrate up and the pre-deploy checklist take (lib/migrate.h,
 * lib/checklist.h). ud is the command's struct ctx.
 */
#ifndef ST_CMD_BACKUP_HOOKS_H
#define ST_CMD_BACKUP_HOOKS_H

#include <signal.h>
#include <stddef.h>

#include "../lib/error.h"

struct ctx;

/* The ud of cmd_take_backup_hook(): the command's context and the flag its
 * SIGINT/SIGTERM handler sets (may be NULL). */
struct cmd_backup_hook {
	struct ctx *ctx;
	volatile sig_atomic_t *cancel;
};

/* Takes a full backup of postgres.database with the configured codec and
 * route (backup.via), verified as backup_create() verifies every backup,
 * and writes its path. A one-line progress note goes to stderr unless
 * --quiet. */
int cmd_take_backup(void *ctx, char *path, size_t size, struct st_error *err);

/* The same with hook (struct cmd_backup_hook) as ud: a set *cancel stops
 * the backup (ST_EABORTED), its temporary file removed. */
int cmd_take_backup_hook(void *hook, char *path, size_t size, struct st_error *err);

/* The newest verified full backup in backup.dir: its start time and name.
 * ST_ENOTFOUND when there is none. */
int cmd_find_backup(void *ctx, double *time, char *name, size_t size, struct st_error *err);

#endif
