/*
 * backup_actions.h - the restore procedure as engine steps: C actions
 * (backup.*) and the two runbooks that use them, `restore` and
 * `restore-cleanup` ("Database Rollback > Full Database Restore", done so
 * that a failed restore never costs the live database).
 *
 * The restore runbook, step by step (each journaled, each failure undoing
 * what was done, in reverse):
 *   create-database  precondition: the file matches its manifest (size,
 *                    SHA-256, full decompression, trailer) and is a full
 *                    backup, else the run aborts (exit 3) before anything;
 *                    then typed confirmation of the database name, and
 *                    NAME_restore_STAMP is created empty   (undo: drop it)
 *   safety-backup    a backup of the live database (verified like any
 *                    other); skipped when there is none (a new server)
 *   load             the dump streamed into psql -v ON_ERROR_STOP=1 there,
 *                    verified again on the way
 *   check-restored   its tables and the row counts of "User" and "Post"
 *                    equal the manifest's
 *   stop-backend     (undo: start it)
 *   swap             live -> NAME_pre_restore_STAMP, restored -> live, in one
 *                    transaction after ending remaining sessions (undo: back)
 *   start-backend    and wait until it is healthy  (undo: stop it)
 * Up to the swap the live database is never touched; after it, a failure
 * swaps back. The old database stays as NAME_pre_restore_STAMP until
 * `restore cleanup` (the restore-cleanup runbook) drops it.
 *
 * Both runbooks hold the "backup" lock, so no backup, prune or second
 * restore runs meanwhile; the safety backup runs under it.
 *
 * These actions need a struct backup_services as engine_options.services;
 * they are registered only by the restore command (engine_registry_add),
 * not among the built-in actions of `run`.
 */
#ifndef ST_BACKUP_ACTIONS_H
#define ST_BACKUP_ACTIONS_H

#include "backup.h"
#include "engine.h"
#include "services.h"

/* engine_options.services of a restore: the per-run clients, plus where
 * dump and load progress goes. */
struct backup_services {
	struct services base;             /* first: lib/services.h, lazily opened */
	backup_progress_fn progress;      /* dump/load progress, may be NULL */
	void *progress_ud;
};

/* backup.verify, backup.create, backup.db_create, backup.db_drop,
 * backup.load, backup.db_compare, backup.container_stop,
 * backup.container_start, backup.db_swap, backup.db_unswap,
 * backup.service_health, backup.db_cleanup. NULL-terminated. */
extern const struct engine_action actions_backup[];

/* The runbooks as YAML (file names "restore.yaml", "restore-cleanup.yaml"
 * in messages); static. */
extern const char backup_restore_runbook[];
extern const char backup_cleanup_runbook[];

/* Length limit of the live database name, so NAME_pre_restore_STAMP fits
 * PostgreSQL's 63-byte identifiers. */
#define BACKUP_RESTORE_DBNAME_MAX 35

#endif
