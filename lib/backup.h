/*
 * backup.h - taking, verifying, loading and swapping database backups
 * (runbook "Backup Procedures", "Automated Backup", "Full Database Restore").
 *
 * backup_create() runs pg_dump - inside the postgres container through a
 * Docker exec (backup.via: exec, the runbook's `docker exec ... pg_dump`),
 * or this host's pg_dump (via: local) - and streams its output through
 * lib/backup_stream.h into a temporary file in the backup directory. It
 * publishes the backup (manifest first, then an atomic rename) only when
 * pg_dump exited 0, its stderr holds no error, the dump ends with its
 * completion trailer, and the file read back decompresses end to end to
 * exactly the dumped bytes, and is durable (fsync). Anything else removes
 * the temporary file and fails with one message saying why.
 *
 * Row counts of "User" and "Post" and the table list go into the manifest.
 * They are taken in the very snapshot pg_dump uses: a REPEATABLE READ
 * transaction exports its snapshot (pg_export_snapshot) and pg_dump runs
 * with --snapshot, while the counts run on that transaction concurrently
 * with the dump. When the snapshot cannot be exported, the counts come from
 * a transaction just before the dump and the manifest says so
 * (counts_in_dump_snapshot: false); restores then compare tables only.
 * The counted tables are locked (ACCESS SHARE) in that transaction before
 * pg_dump starts, so a count never queues behind a migration's ACCESS
 * EXCLUSIVE request; neither that lock, the counts nor pg_dump's locks
 * wait longer than lock_wait.
 *
 * The password reaches pg_dump and psql only through their environment
 * (PGPASSWORD in the exec's Env, or the child's environment): never argv,
 * never a message, never the journal. Two places still see it, by design of
 * Docker and Linux, not of this tool: with via exec, a dockerd running with
 * --debug logs the body of the exec request, Env included (it masks only
 * JSON keys named like a password); and while the tool runs, its
 * /proc/PID/environ is readable by the container's root and postgres users,
 * who can read the database files anyway. A .pgpass would have to be
 * written into the container first, and left there by a killed run; the
 * environment leaves nothing behind. Where the debug log matters, run
 * dockerd without --debug, or use via local (the password then stays in
 * this host's process environment, readable by root and this user only).
 *
 * Restores load a dump into a NEW database (never the live one) by
 * streaming the decompressed file into `psql -X -v ON_ERROR_STOP=1`, and
 * check it against the manifest before anything touches the live database;
 * the swap renames databases in one transaction.
 */
#ifndef ST_BACKUP_H
#define ST_BACKUP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "backup_catalog.h"
#include "backup_stream.h"
#include "error.h"
#include "lock.h"
#include "sbuf.h"

struct st_config;
struct docker_client;
struct pg_conn;

#define BACKUP_LOCK_NAME "backup"
/* Where database operations connect (CREATE/DROP/ALTER DATABASE), and the
 * application_name our sessions show in pg_stat_activity. */
#define BACKUP_MAINTENANCE_DB "postgres"
#define BACKUP_APP_NAME "spilttea-ops backup"
/* Longest live database name a restore handles: NAME_pre_restore_STAMP
 * must fit PostgreSQL's 63-byte identifiers. */
#define BACKUP_DBNAME_MAX 35
/* Seconds an undo or a test-restore waits for a recovering server to drop
 * its scratch database. */
#define BACKUP_DROP_WAIT 20.0

/* ---- progress ---------------------------------------------------------- */

struct backup_progress {
	const char *phase;        /* "dump" or "load" */
	uint64_t bytes_raw;       /* SQL bytes so far */
	uint64_t bytes_total;     /* load: the manifest's raw size; dump: 0 */
	uint64_t estimate;        /* dump: pg_database_size, 0 when unknown */
	double elapsed;           /* seconds */
	int done;                 /* last call of this phase */
};

/* Called from the thread that runs the dump or load, at most every 0.25 s. */
typedef void (*backup_progress_fn)(void *ud, const struct backup_progress *p);

/* ---- backup ------------------------------------------------------------ */

struct backup_request {
	const struct st_config *cfg;      /* borrowed */
	struct docker_client *docker;     /* via exec; borrowed */
	const char *dir;                  /* NULL: cfg->backup.dir */
	const char *database;             /* NULL: cfg->postgres.database */
	enum backup_kind kind;
	enum backup_codec codec;
	int level;                        /* 0: backup_codec_default_level() */
	int via;                          /* enum config_backup_via */
	const char *pg_bin;               /* via local: directory of pg_dump/psql; NULL: the newest
					     /usr/lib/postgresql/N/bin */
	int lock;                         /* 1: take the backup lock in state_dir (and sweep);
					     0: the caller holds it (a restore's safety backup) */
	double lock_wait;                 /* seconds pg_dump and the row counts wait for a table
					     another session locks (a migration); 0: 300 */
	const char *command_line;         /* for the lock file; may be NULL */
	backup_progress_fn progress;      /* may be NULL */
	void *progress_ud;
	volatile sig_atomic_t *cancel;    /* set by a signal handler; may be NULL */
};

struct backup_outcome {
	struct backup_manifest manifest;  /* of the published backup; release it */
	char path[4096];                  /* where it is */
	size_t swept;                     /* leftovers removed at the start */
	struct lock_takeover takeover;    /* a dead run's lock taken over */
	double compress_seconds;          /* worker busy time */
	double verify_seconds;            /* read-back busy time */
};

/* Takes one backup as described above. out is filled (release its
 * manifest with backup_manifest_release(), whatever the result). Errors:
 * ST_ELOCKED (another backup runs), ST_ESERVICE (postgres or docker
 * unreachable, pg_dump failed: the message carries its first error line),
 * ST_EFAILED (no trailer, verification mismatch), ST_EIO (disk full...),
 * ST_EABORTED (cancelled), ST_ECONFIG (secret unreadable). */
int backup_create(const struct backup_request *rq, struct backup_outcome *out, struct st_error *err);

/* ---- verify ------------------------------------------------------------ */

struct backup_check {
	char dir[4096];                   /* directory of the file */
	char name[BACKUP_NAME_MAX];       /* its base name */
	char path[4096];
	struct backup_manifest manifest;  /* release it */
	struct backup_verify_result result;
	int manifest_loaded;
};

/* Resolves file: a path when it holds a '/', else a name in dir. It must
 * be a regular file with this tool's name. 0 or ST_ENOTFOUND / ST_EUSAGE. */
int backup_resolve(const char *dir, const char *file, struct backup_check *out, struct st_error *err);

/*
 * Full verification of file (see backup_resolve) against its manifest:
 * the manifest exists and describes it, the size and SHA-256 match, the
 * whole file decompresses to bytes_raw bytes ending with pg_dump's
 * trailer. With update_manifest, the manifest's verified flag, verified_at
 * and verify_error are rewritten (atomically) with the outcome, so retention
 * stops counting a backup that rotted. ST_EFAILED ("checksum mismatch...")
 * when the file does not match, ST_ENOTFOUND (file or manifest missing),
 * ST_EPROTO (manifest unreadable). out must be released with
 * backup_check_release().
 */
int backup_verify(const char *dir, const char *file, int update_manifest, struct backup_check *out,
		  struct st_error *err);
void backup_check_release(struct backup_check *c);

/* ---- databases (a connection to BACKUP_MAINTENANCE_DB, services_pg_connect) */

/* 1 / 0 in *exists. */
int backup_db_exists(struct pg_conn *conn, const char *name, int *exists, struct st_error *err);

/* CREATE DATABASE name TEMPLATE template0, with the encoding and locale of
 * database like (when given and it exists): LC_COLLATE, LC_CTYPE and the
 * locale provider with its locale (ICU_LOCALE and ICU_RULES, or
 * BUILTIN_LOCALE). ST_ECONFLICT when name exists, or when a setting of like
 * cannot be copied (longer than 63 bytes, unknown provider). */
int backup_db_create(struct pg_conn *conn, const char *name, const char *like, struct st_error *err);

/* DROP DATABASE IF EXISTS name WITH (FORCE). */
int backup_db_drop(struct pg_conn *conn, const char *name, struct st_error *err);

/* backup_db_drop() on a connection of its own to BACKUP_MAINTENANCE_DB,
 * tried again every 0.5 s for up to wait_s seconds while it fails: a
 * server recovering from a crash refuses connections for a moment, and an
 * undo or cleanup must not leave a scratch database behind because of
 * that. The last error when it never succeeds. */
int backup_db_drop_retry(const struct st_config *cfg, const char *name, double wait_s, struct st_error *err);

/* Terminates every other session connected to name; *count (may be NULL). */
int backup_db_terminate(struct pg_conn *conn, const char *name, int *count, struct st_error *err);

/* Renames live -> outgoing and incoming -> live in one transaction, after
 * terminating sessions on both; retries while sessions reconnect (up to
 * about 10 s). Either both renames happen or neither. A live database that
 * does not exist is not renamed (a restore onto a new server); an incoming
 * one that does not exist is ST_ENOTFOUND with require_incoming, else
 * skipped (undoing a swap onto a new server). */
int backup_db_swap(struct pg_conn *conn, const char *live, const char *incoming, const char *outgoing,
		   int require_incoming, struct st_error *err);

/* Databases whose names are prefix + "YYYYmmdd_HHMMSS", sorted. *names:
 * NULL-terminated, caller frees each and the array. */
int backup_db_list_stamped(struct pg_conn *conn, const char *prefix, char ***names, size_t *count,
			   struct st_error *err);

/* Tables (schema.name, sorted) and row counts of "User" and "Post" of a
 * database, as a manifest-shaped record (only tables, counts filled). */
int backup_db_inventory(const struct st_config *cfg, const char *dbname, struct backup_manifest *out,
			struct st_error *err);

/* Compares an inventory with a manifest: same tables, and (full and data
 * backups whose counts are from the dump's snapshot) same row counts.
 * 0 when they match, else ST_EFAILED with what differs. Pure. */
int backup_compare(const struct backup_manifest *want, const struct backup_manifest *got,
		   const char *dbname, struct st_error *err);

/* ---- load -------------------------------------------------------------- */

struct backup_load_request {
	const struct st_config *cfg;
	struct docker_client *docker;
	const char *path;                 /* the backup file */
	const struct backup_manifest *manifest; /* what it must match */
	const char *database;             /* an existing (new, empty) database */
	int via;                          /* exec: psql in the postgres container; local */
	const char *pg_bin;
	backup_progress_fn progress;
	void *progress_ud;
	volatile sig_atomic_t *cancel;
};

/*
 * Streams the decompressed backup into psql -X -v ON_ERROR_STOP=1 on
 * database, verifying SHA-256, size and trailer on the way: a mismatch
 * fails before psql is told the input ended. Fails (ST_EFAILED with psql's
 * first error line) unless psql read everything and exited 0 without an
 * ERROR. The database may hold part of the dump after a failure: it is the
 * caller's scratch database to drop.
 */
int backup_load(const struct backup_load_request *rq, struct st_error *err);

/* ---- test-restore ------------------------------------------------------ */

struct backup_test_result {
	char database[64];                /* the scratch database (dropped again) */
	struct backup_manifest found;     /* its inventory; release it */
	double seconds;
};

/* Loads file (full or schema backup) into a scratch database named
 * DB_testrestore_YYYYmmdd_HHMMSS, compares it with the manifest, and drops
 * it whatever happened. */
int backup_test_restore(const struct st_config *cfg, struct docker_client *docker, const char *dir,
			const char *file, backup_progress_fn progress, void *progress_ud,
			volatile sig_atomic_t *cancel, struct backup_test_result *out,
			struct st_error *err);

/* ---- cron reporting ---------------------------------------------------- */

struct backup_report {
	int ok;
	enum backup_kind kind;
	const char *database;
	double finished;                  /* epoch seconds */
	double duration;
	uint64_t size;                    /* bytes of the backup file, when ok */
	const char *error;                /* when not ok */
};

/* Renders Prometheus textfile metrics for r into out. previous (may be
 * NULL) is the old content of the file: on failure the last success time
 * and size are carried over from it. 0 or ST_ENOMEM. */
int backup_metrics_render(const struct backup_report *r, const char *previous, struct sbuf *out,
			  struct st_error *err);

/* Reads path (may be missing), renders, and writes it atomically (0644:
 * node_exporter reads it). */
int backup_metrics_write(const char *path, const struct backup_report *r, struct st_error *err);

/* The failure webhook body: {"event":"backup_failed","host":...}. Caller frees. */
char *backup_webhook_body(const struct backup_report *r);

#endif
