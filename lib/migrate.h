/*
 * migrate.h - Prisma migrations: what is applied, failed and pending, and
 * applying them the runbook's way, made safe ("Database Migration
 * Deployment", "Migration Best Practices", "Database Rollback").
 *
 * Status compares two sources:
 *   - the migration folders under migrate.dir (NAME/migration.sql, as
 *     `prisma migrate dev` writes them; files such as migration_lock.toml
 *     and folders without migration.sql are not migrations), with the
 *     SHA-256 of each migration.sql (Prisma's checksum);
 *   - the rows of _prisma_migrations, read with libpq (a database without
 *     the table has applied nothing).
 * Per migration name, as Prisma judges it:
 *   applied      a row finished (finished_at set) and not rolled back;
 *                "modified" when its checksum differs from the folder's file
 *   failed       a row started and never finished, not rolled back: Prisma
 *                refuses to apply anything until it is resolved
 *   pending      a folder with no applied or failed row (rows rolled back
 *                with `migrate resolve --rolled-back` do not count)
 *   rolled back  only rolled-back rows and no folder
 *   missing      applied or failed in the database but no folder (the
 *                deployed code is older than the database)
 * The status is clean when nothing is failed or pending.
 *
 * migrate_up() is the runbook's sequence with its safety net: status (a
 * failed migration stops it), a verified backup first (mandatory unless
 * the caller says no_backup and why), the configured command in the
 * backend container through Docker exec with its output streamed, its exit
 * code, status clean again, backend restarted and healthy. Each step is
 * journaled (STATE_DIR/journal.jsonl, runbook "migrate-up"); the run holds
 * the locks db:DATABASE and svc:SERVICE (lock.h: no restore, deploy or
 * restart of the same database or container meanwhile). The
 * pre-migration backup is remembered in
 * STATE_DIR/migrate/last.json for `rollback db`, and every failure after it
 * carries the exact restore command in its hint.
 */
#ifndef ST_MIGRATE_H
#define ST_MIGRATE_H

#include <signal.h>
#include <stddef.h>

#include "config.h"
#include "docker.h"
#include "error.h"
#include "pg.h"

/* ---- status ------------------------------------------------------------- */

struct migrate_folder {
	char *name;                 /* "20260110093000_init"; owned */
	char *path;                 /* absolute path of its migration.sql; owned */
	char checksum[65];          /* SHA-256 of migration.sql, hex */
};

/* One row of _prisma_migrations. Times are epoch seconds, 0 for NULL. */
struct migrate_row {
	char *id;
	char *name;
	char *checksum;
	char *logs;                 /* NULL when none */
	double started_at;
	double finished_at;
	double rolled_back_at;
	long steps;
};

enum migrate_state {
	MIGRATE_APPLIED,
	MIGRATE_FAILED,
	MIGRATE_PENDING,
	MIGRATE_ROLLED_BACK,
	MIGRATE_MISSING,            /* applied or failed in the database, no folder */
};

/* "applied", "failed", "pending", "rolled back", "missing"; static. */
const char *migrate_state_name(enum migrate_state s);

struct migrate_entry {
	char *name;                 /* owned */
	enum migrate_state state;
	int has_folder;
	int was_failed;             /* MISSING: its live row is a failed one */
	int modified;               /* applied, but migration.sql changed since */
	size_t rolled_back_rows;    /* earlier attempts resolved as rolled back */
	char *path;                 /* migration.sql, NULL without folder; owned */
	double started_at;          /* of the row that decided the state, 0 */
	double finished_at;
	char *logs;                 /* failed: the row's logs; owned, NULL */
};

struct migrate_status {
	struct migrate_entry *entries;  /* by name (the order migrations apply in); owned */
	size_t count;
	size_t applied, failed, pending, rolled_back, missing, modified;
	int table_exists;           /* _prisma_migrations exists */
};

/* 1 when nothing is failed or pending. */
int migrate_status_clean(const struct migrate_status *st);

/* Lists dir's migration folders, sorted by name, with checksums. *out is
 * caller-freed with migrate_folders_free(). A missing dir is ST_ENOTFOUND
 * (hint: migrate.dir), unreadable ST_EIO. */
int migrate_scan(const char *dir, struct migrate_folder **out, size_t *count, struct st_error *err);
void migrate_folders_free(struct migrate_folder *f, size_t count);

/* Reads _prisma_migrations (ordered by started_at). A missing table gives
 * zero rows and *table_exists 0. *out: caller frees with
 * migrate_rows_free(). ST_ESERVICE / ST_ETIMEOUT from libpq. */
int migrate_load_rows(struct pg_conn *pg, double timeout, struct migrate_row **out, size_t *count,
		      int *table_exists, struct st_error *err);
void migrate_rows_free(struct migrate_row *r, size_t count);

/* Judges folders against rows as described above (pure). st must be
 * released with migrate_status_release(). 0 or ST_ENOMEM. */
int migrate_status_build(const struct migrate_folder *folders, size_t nfolders,
			 const struct migrate_row *rows, size_t nrows, struct migrate_status *st,
			 struct st_error *err);
void migrate_status_release(struct migrate_status *st);

/* scan + load + build, for the configured dir and database. */
int migrate_status_read(const struct st_config *cfg, struct pg_conn *pg, struct migrate_status *st,
			struct st_error *err);

/* ---- running the backend's migrate commands ------------------------------ */

/* Output of the command, as it arrives (stream 1 stdout, 2 stderr). */
typedef void (*migrate_output_fn)(void *ud, int stream, const char *data, size_t len);

/* Runs argv (argv[0..] then extra, both NULL-terminated; extra may be NULL)
 * in the container of migrate.service through Docker exec, streaming its
 * output, within migrate.timeout. *exit_code gets its status. 0 when it
 * ran, whatever the status. */
int migrate_exec(const struct st_config *cfg, struct docker_client *d, const struct config_list *argv,
		 const char *const *extra, migrate_output_fn out, void *ud, int *exit_code,
		 struct st_error *err);

/* ---- migrate up ----------------------------------------------------------- */

/* Takes a verified backup of the database and writes where it is (its
 * full path) into path. Supplied by cmd/ (lib/backup.h's backup_create).
 * 0, or a negative ST_E* code with err filled. */
typedef int (*migrate_backup_fn)(void *ud, char *path, size_t size, struct st_error *err);

struct migrate_ui {
	void *ud;
	/* A step starts ("status", "backup", "migrate", "verify", "restart",
	 * "health") with one line saying what it does. */
	void (*step)(void *ud, const char *step, const char *what);
	/* The step ended: ok, or failed with err's message. */
	void (*step_done)(void *ud, const char *step, int ok, const char *detail);
	migrate_output_fn output;   /* the command's output; may be NULL */
};

struct migrate_up_request {
	const struct st_config *cfg;
	struct docker_client *docker;   /* borrowed */
	struct pg_conn *pg;             /* borrowed */
	int no_backup;                  /* --no-backup: reason is then required */
	const char *reason;             /* journaled */
	migrate_backup_fn backup;       /* required unless no_backup */
	void *backup_ud;
	const struct migrate_ui *ui;    /* may be NULL */
	const char *command_line;       /* journal and lock; may be NULL */
	double health_timeout;          /* seconds for the restarted backend; <= 0: 120 */
	/* Set by a signal handler; may be NULL. Before the command runs, an
	 * interrupt stops the run with nothing applied (the backup callback
	 * should watch the same flag). Once the command started it runs to
	 * its end (killing Prisma half way leaves a failed migration), and so
	 * do the status check and the restart that make it complete; only the
	 * wait for the restarted backend is cut short. */
	volatile sig_atomic_t *cancel;
};

struct migrate_up_result {
	int applied_any;                /* something was pending and the command ran */
	char backup_path[4096];         /* the pre-migration backup, "" without one */
	char backup_name[256];          /* its base name, "" */
	int exit_code;                  /* of the command, -1 when it did not run */
	size_t pending_before;
	char run_id[48];                /* journal run, "" when none was written */
	char restore_command[4200];     /* "spilttea-ops restore NAME" when a backup exists */
};

/*
 * The sequence described at the top. Errors: ST_EUSAGE (no_backup without
 * a reason), ST_ELOCKED, ST_EABORTED (failed migrations recorded before
 * the start; the hint names `migrate resolve --rolled-back NAME`; or
 * interrupted through rq->cancel: the journal run ends "aborted", the
 * lock is released and last.json says "failed" when the command ran),
 * ST_EFAILED (the backup, the command, the status after it, the restart or
 * the health wait failed: the hint carries res->restore_command), and the
 * clients' codes. Nothing pending: 0 with res->applied_any 0 and no backup.
 */
int migrate_up(const struct migrate_up_request *rq, struct migrate_up_result *res, struct st_error *err);

/* ---- migrate resolve --------------------------------------------------------- */

/*
 * Prisma's `migrate resolve`: migrate.resolve_command plus how
 * ("--rolled-back" or "--applied") and name, in the backend container, its
 * output streamed. Checked first against the status: --rolled-back needs a
 * failed migration, --applied a failed or pending one (ST_EABORTED
 * otherwise, naming its state; ST_ENOTFOUND for an unknown name). Journaled
 * (runbook "migrate-resolve"), under the same locks as migrate up. A non-zero exit of
 * the command is ST_EFAILED; *exit_code (may be NULL) gets it.
 */
int migrate_resolve(const struct st_config *cfg, struct docker_client *d, struct pg_conn *pg,
		    const char *how, const char *name, const char *command_line, migrate_output_fn out,
		    void *ud, int *exit_code, struct st_error *err);

/* ---- the pre-migration backup, for rollback db ----------------------------- */

/* The lock migrate up and migrate resolve run under (lock.h); rollback db
 * holds it too, so that no migration runs under a restore. */
#define MIGRATE_LOCK "migrate"

struct migrate_last {
	char backup_path[4096];         /* "" when the run had none (--no-backup) */
	char time[40];                  /* RFC 3339 of the run */
	char result[16];                /* "ok", "failed", "running" */
	char run_id[48];
};

/* Reads STATE_DIR/migrate/last.json. ST_ENOTFOUND when no migrate up ever
 * ran here; ST_EPROTO when unreadable. */
int migrate_last_load(const char *state_dir, struct migrate_last *out, struct st_error *err);

/* Writes it (atomically, 0600). */
int migrate_last_save(const char *state_dir, const struct migrate_last *m, struct st_error *err);

#endif
