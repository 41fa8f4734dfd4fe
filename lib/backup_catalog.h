/*
 * backup_catalog.h - what lies in a backup directory: file names, the
 * manifest beside each backup, listing, the retention policy and pruning.
 *
 * Names: backup_YYYYmmdd_HHMMSS[_schema|_data].sql[.gz|.zst], the time in
 * UTC when the dump started. The manifest of FILE is FILE.json. A backup
 * counts as this tool's only when its name has exactly that shape; nothing
 * else in the directory is ever listed as a backup, verified or deleted.
 * While a backup is written it is a temporary file of lib/atomic_file.h
 * (".backup_....XXXXXX.partial"), renamed into place only once complete and
 * verified; its manifest is written (atomically) before that rename, so a
 * backup file under its final name always has its manifest.
 *
 * Retention (backup_retention_plan) is a pure function over a listing:
 *   - only files with this tool's name AND a readable manifest may go;
 *   - per database (the manifest's) and kind (full, schema, data), the
 *     newest keep_min backups whose manifest says verified (and whose size
 *     matches it) are always kept, whatever their age: fresh backups of a
 *     scratch database never push out the live database's last good ones;
 *   - of the rest, those older than keep_days are deleted.
 * So a week of failed runs can never rotate out the last good backups, and
 * a file someone else put in the directory is never touched.
 */
#ifndef ST_BACKUP_CATALOG_H
#define ST_BACKUP_CATALOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backup_stream.h"
#include "error.h"

#define BACKUP_NAME_MAX 96
#define BACKUP_MANIFEST_SUFFIX ".json"
#define BACKUP_MANIFEST_FORMAT 1

enum backup_kind {
	BACKUP_KIND_FULL = 0,
	BACKUP_KIND_SCHEMA = 1,
	BACKUP_KIND_DATA = 2,
};
#define BACKUP_KIND_COUNT 3

/* "full", "schema", "data"; static. */
const char *backup_kind_name(enum backup_kind kind);
/* 0, or ST_EUSAGE for anything else. */
int backup_kind_parse(const char *name, enum backup_kind *out, struct st_error *err);

/* ---- names ------------------------------------------------------------- */

struct backup_name {
	time_t time;               /* UTC epoch seconds of the name's timestamp */
	enum backup_kind kind;
	enum backup_codec codec;
};

/* Writes the file name for a backup started at t into out (at least
 * BACKUP_NAME_MAX bytes). Returns out. */
char *backup_name_format(double t, enum backup_kind kind, enum backup_codec codec, char *out,
			 size_t size);

/* 0 when name (a base name) is exactly one of this tool's backup names,
 * filling out (may be NULL); -1 otherwise (manifests and partials too). */
int backup_name_parse(const char *name, struct backup_name *out);

/* name + ".json" into out. Returns out, or NULL when it does not fit. */
char *backup_manifest_name(const char *name, char *out, size_t size);

/* 1 for a leftover temporary file of a backup or manifest write
 * (".backup_....XXXXXX.partial"). */
int backup_is_partial_name(const char *name);

/* ---- manifest ---------------------------------------------------------- */

struct backup_table_count {
	char *table;               /* "User" (unqualified, public schema); owned */
	long long rows;
};

struct backup_manifest {
	int format;                /* BACKUP_MANIFEST_FORMAT */
	char name[BACKUP_NAME_MAX];
	char database[128];
	char server_version[96];
	char pg_dump_version[96];
	enum backup_kind kind;
	enum backup_codec codec;
	int level;
	uint64_t bytes_raw;
	uint64_t bytes_compressed;
	char sha256[65];
	double started;            /* epoch seconds */
	double duration;           /* seconds */
	char tool_version[32];
	char via[8];               /* "exec" or "local" */
	int verified;              /* the file was read back and matched when written, or at the
				      last backup verify */
	double verified_at;        /* epoch seconds, 0 when never */
	char verify_error[256];    /* why the last verify failed, "" */
	/* Taken in the snapshot pg_dump used (pg_export_snapshot), so they
	 * describe exactly the dumped data; snapshot_shared says so. */
	int snapshot_shared;
	char **tables;             /* "public.User", sorted; owned */
	size_t ntables;
	struct backup_table_count *counts; /* owned */
	size_t ncounts;
};

/* Frees what the manifest owns (tables, counts) and zeroes it. NULL-safe. */
void backup_manifest_release(struct backup_manifest *m);

/* Adds a table name / a row count (copied). 0 or ST_ENOMEM. */
int backup_manifest_add_table(struct backup_manifest *m, const char *table, struct st_error *err);
int backup_manifest_add_count(struct backup_manifest *m, const char *table, long long rows,
			      struct st_error *err);
/* Row count recorded for table, or -1 when none. */
long long backup_manifest_count(const struct backup_manifest *m, const char *table);

/* The manifest as JSON (stable keys). New reference, NULL on ENOMEM. */
json_t *backup_manifest_to_json(const struct backup_manifest *m);

/* Parses a manifest. ST_EPROTO ("manifest 'x': missing sha256"...) when a
 * required member is missing or of the wrong type. m must be released. */
int backup_manifest_from_json(const json_t *j, const char *what, struct backup_manifest *m,
			      struct st_error *err);

/* Largest manifest accepted (bytes). */
#define BACKUP_MANIFEST_MAX (16 * 1024 * 1024)

/* Parses the bytes of a manifest file (len bytes, need not be
 * NUL-terminated; duplicate keys refused); what names it in errors. Pure:
 * backup_manifest_load reads the file and calls it. ST_EPROTO when it is not
 * JSON or not a valid manifest (backup_manifest_from_json). m must be
 * released. */
int backup_manifest_parse(const char *data, size_t len, const char *what, struct backup_manifest *m,
			  struct st_error *err);

/* Reads DIR/NAME.json. ST_ENOTFOUND when it does not exist, ST_EPROTO when
 * it is not a valid manifest, ST_EIO. m must be released. */
int backup_manifest_load(const char *dir, const char *name, struct backup_manifest *m,
			 struct st_error *err);

/* Writes DIR/<m->name>.json atomically with mode 0600. */
int backup_manifest_save(const char *dir, const struct backup_manifest *m, struct st_error *err);

/* ---- listing ----------------------------------------------------------- */

struct backup_entry {
	char name[BACKUP_NAME_MAX];
	int ours;                  /* the name is one of this tool's backup names */
	struct backup_name parsed; /* valid when ours */
	uint64_t size;             /* of the backup file */
	int has_manifest;          /* its manifest exists and parses */
	char manifest_error[256];  /* why not, when ours and !has_manifest */
	int verified;              /* manifest says verified and its size matches the file */
	struct backup_manifest manifest; /* when has_manifest; owned */
};

struct backup_listing {
	struct backup_entry *entries; /* this tool's backups, newest first; owned */
	size_t count;
	size_t foreign;            /* other regular files in the directory (never touched) */
	size_t partials;           /* leftover temporary files */
};

/* Lists dir. A missing directory is an empty listing. The listing must be
 * released with backup_listing_release(). ST_EIO, ST_ENOMEM. */
int backup_list(const char *dir, struct backup_listing *out, struct st_error *err);
void backup_listing_release(struct backup_listing *l);

/* Finds an entry by name; borrowed, NULL when absent. */
const struct backup_entry *backup_listing_find(const struct backup_listing *l, const char *name);

/* ---- retention --------------------------------------------------------- */

struct backup_retention {
	long keep_days;            /* >= 1 */
	long keep_min;             /* >= 1, per database and kind */
};

enum backup_verdict {
	BACKUP_KEEP_FOREIGN,       /* not this tool's name: never touched */
	BACKUP_KEEP_NO_MANIFEST,   /* this tool's name but no readable manifest: never deleted */
	BACKUP_KEEP_NEWEST,        /* among the newest keep_min verified of its database and kind */
	BACKUP_KEEP_YOUNG,         /* not older than keep_days */
	BACKUP_DELETE_OLD,         /* older than keep_days and not protected */
};

/* One line of explanation for a verdict; static. */
const char *backup_verdict_text(enum backup_verdict v);
int backup_verdict_deletes(enum backup_verdict v);

/*
 * The policy over n entries (any order, foreign ones included): fills
 * verdicts[i] for entries[i]. now is epoch seconds; age comes from the
 * name's timestamp. Pure: reads nothing but its arguments.
 */
void backup_retention_plan(const struct backup_entry *entries, size_t n, double now,
			   const struct backup_retention *policy, enum backup_verdict *verdicts);

/* Deletes the backup file and then its manifest (a crash in between leaves
 * a manifest without a backup, which backup_sweep() removes), then fsyncs
 * the directory. ST_EIO. */
int backup_delete(const char *dir, const char *name, struct st_error *err);

/*
 * Start-of-run cleanup (the caller holds the backup lock): removes
 * leftover temporary files (".backup_*.partial") and manifests whose backup
 * file is gone. *removed (may be NULL) counts them. Foreign files stay.
 */
int backup_sweep(const char *dir, size_t *removed, struct st_error *err);

#endif
