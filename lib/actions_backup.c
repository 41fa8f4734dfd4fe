/*
 * actions_backup.c - backup.* actions: what runbooks/restore.yaml and
 * runbooks/restore-cleanup.yaml are made of ("Database Rollback > Full
 * Database Restore" without ever dropping the live database first).
 *
 *   backup.verify      a backup against its manifest (size, SHA-256, full
 *                      decompression, trailer), optionally of a given kind
 *                      and database; says when it was taken (taken, age)
 *   backup.create      a verified backup (the run holds the backup lock)
 *   backup.db_create   an empty database from template0, encoding and
 *                      locale of another; says whether that one exists
 *   backup.db_drop     drop a database (ending its sessions)
 *   backup.load        stream a backup into psql -v ON_ERROR_STOP=1,
 *                      verifying it again on the way
 *   backup.db_compare  tables and row counts of "User" and "Post" against a
 *                      manifest
 *   backup.db_swap     live -> outgoing, incoming -> live, one transaction
 *   backup.db_unswap   its undo
 *   backup.db_cleanup  drop the copies restores and test-restores left
 * Databases are created, dropped and renamed over a connection to the
 * "postgres" database (BACKUP_MAINTENANCE_DB).
 */
#include "actions.h"
#include "actions_util.h"
#include "backup.h"
#include "config.h"
#include "services.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg_str(const json_t *args, const char *name)
{
	return actions_arg_str(args, name);
}

static int config_of(struct engine_call *call, const struct st_config **out, struct st_error *err)
{
	*out = call->config ? call->config : call->services ? call->services->cfg : NULL;
	if (!*out)
		return st_error_set(err, ST_EUSAGE, "backup actions need the configuration");
	return 0;
}

/* The Docker client, when pg_dump/psql run in the container. */
static int docker_for_tools(struct engine_call *call, const struct st_config *cfg,
			    struct docker_client **out, struct st_error *err)
{
	*out = NULL;
	return cfg->backup.via == CONFIG_VIA_EXEC ? actions_docker_client(call, out, err) : 0;
}

static json_t *counts_json(const struct backup_manifest *m)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && i < m->ncounts; i++)
		json_object_set_new(o, m->counts[i].table, json_integer(m->counts[i].rows));
	return o;
}

/* ---- backup.verify ------------------------------------------------------ */

static int act_verify(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	const struct st_config *cfg;
	struct backup_check c;
	const char *kind = arg_str(args, "kind"), *db = arg_str(args, "database"),
		   *from = arg_str(args, "from_database");
	char taken[40], age_text[32];
	double age;
	int rc;

	memset(&c, 0, sizeof(c));
	if ((rc = config_of(call, &cfg, err)) != 0)
		return rc;
	if ((rc = backup_verify(cfg->backup.dir, arg_str(args, "file"), 0, &c, err)) != 0)
		goto out;
	/* A backup restores over the database it was taken of, or over
	 * another one only when the operator named the one it came from. */
	if (from && *from)
		db = from;
	if (db && *db && strcmp(db, c.manifest.database) != 0) {
		/* The way out is in the message: a failed check keeps no hint. */
		rc = st_error_set(err, ST_EFAILED, "'%s' is a backup of database '%s', not of '%s'%s%s%s", c.name,
				  c.manifest.database, db, from && *from ? "" : " (to restore it anyway, name "
				  "its database: --from-database ", from && *from ? "" : c.manifest.database,
				  from && *from ? "" : ")");
		goto out;
	}
	if (kind && *kind && strcmp(kind, backup_kind_name(c.manifest.kind)) != 0) {
		rc = st_error_set(err, ST_EFAILED, "'%s' is a %s backup; this needs a %s backup", c.name,
				  backup_kind_name(c.manifest.kind), kind);
		goto out;
	}
	/* When it was taken and how long ago: what a restore of it discards. */
	age = time_wall() - c.manifest.started;
	time_format_rfc3339(c.manifest.started, taken, sizeof(taken));
	time_format_duration(age > 0 ? age : 0, age_text, sizeof(age_text));
	*result = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:b,s:s,s:s,s:f}", "name", c.name, "path",
			    c.path, "kind", backup_kind_name(c.manifest.kind), "database", c.manifest.database,
			    "sha256", c.manifest.sha256, "bytes_raw", (json_int_t)c.manifest.bytes_raw,
			    "bytes_compressed", (json_int_t)c.manifest.bytes_compressed, "tables",
			    (json_int_t)c.manifest.ntables, "rows", counts_json(&c.manifest),
			    "counts_in_dump_snapshot", c.manifest.snapshot_shared, "taken", taken, "age", age_text,
			    "age_seconds", age);
	rc = *result ? 0 : actions_oom(err);
out:
	backup_check_release(&c);
	return rc;
}

/* ---- backup.create ------------------------------------------------------- */

static int act_create(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	const struct st_config *cfg;
	struct backup_request rq;
	struct backup_outcome out;
	int rc;

	memset(&rq, 0, sizeof(rq));
	if ((rc = config_of(call, &cfg, err)) != 0 || (rc = docker_for_tools(call, cfg, &rq.docker, err)) != 0)
		return rc;
	rq.cfg = cfg;
	rq.database = arg_str(args, "database");
	if ((rc = backup_kind_parse(arg_str(args, "kind"), &rq.kind, err)) != 0)
		return rc;
	rq.codec = cfg->backup.compress;
	rq.via = cfg->backup.via;
	rq.lock = 0; /* the run holds the backup lock (lock: backup) */
	rq.cancel = call->cancel;
	rc = backup_create(&rq, &out, err);
	if (rc == 0) {
		*result = json_pack("{s:s,s:s,s:I,s:s}", "name", out.manifest.name, "path", out.path, "bytes",
				    (json_int_t)out.manifest.bytes_compressed, "sha256", out.manifest.sha256);
		rc = *result ? 0 : actions_oom(err);
	}
	backup_manifest_release(&out.manifest);
	return rc;
}

/* ---- databases ----------------------------------------------------------- */

/* A connection to the maintenance database; close with actions_pg_done(). */
static int admin_connect(struct engine_call *call, struct pg_conn **conn, int *owned, struct st_error *err)
{
	return actions_pg_conn(call, BACKUP_MAINTENANCE_DB, conn, owned, err);
}

static int act_db_create(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct pg_conn *conn = NULL;
	const char *name = arg_str(args, "name"), *like = arg_str(args, "like");
	int rc, owned = 0, like_exists = 0;

	if ((rc = admin_connect(call, &conn, &owned, err)) == 0 && like && *like)
		rc = backup_db_exists(conn, like, &like_exists, err);
	if (rc == 0 && (rc = backup_db_create(conn, name, like_exists ? like : NULL, err)) == 0) {
		*result = json_pack("{s:s,s:b}", "database", name, "like_exists", like_exists);
		rc = *result ? 0 : actions_oom(err);
	}
	actions_pg_done(conn, owned);
	return rc;
}

static int act_db_drop(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	struct pg_conn *conn = NULL;
	const char *name = arg_str(args, "name");
	int rc, owned = 0;

	if ((rc = admin_connect(call, &conn, &owned, err)) == 0)
		rc = backup_db_drop(conn, name, err);
	actions_pg_done(conn, owned);
	/* Mostly an undo after a failed load: when that failure was the server
	 * crashing, it refuses connections until its recovery ends. */
	if (rc != 0 && rc != ST_EUSAGE && call->services) {
		st_error_clear(err);
		rc = backup_db_drop_retry(call->services->cfg, name, BACKUP_DROP_WAIT, err);
	}
	if (rc == 0) {
		*result = json_pack("{s:s,s:b}", "database", name, "dropped", 1);
		rc = *result ? 0 : actions_oom(err);
	}
	return rc;
}

static int swap(struct engine_call *call, const json_t *args, int back, json_t **result,
		struct st_error *err)
{
	struct pg_conn *conn = NULL;
	const char *live = arg_str(args, "live"), *in = arg_str(args, "incoming"), *outg = arg_str(args, "outgoing");
	int rc, owned = 0;

	if ((rc = admin_connect(call, &conn, &owned, err)) != 0)
		goto out;
	/* Back: the restored database returns to its scratch name and the
	 * original takes its name again. */
	rc = back ? backup_db_swap(conn, live, outg, in, 0, err) : backup_db_swap(conn, live, in, outg, 1, err);
	if (rc == 0) {
		*result = json_pack("{s:s,s:s}", "live", live, "kept_as", back ? in : outg);
		rc = *result ? 0 : actions_oom(err);
	}
out:
	actions_pg_done(conn, owned);
	return rc;
}

static int act_db_swap(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	return swap(call, args, 0, result, err);
}

static int act_db_unswap(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	return swap(call, args, 1, result, err);
}

static int act_db_cleanup(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	static const char *const infixes[] = { "_pre_restore_", "_restore_", "_testrestore_" };
	const char *db = arg_str(args, "database");
	struct pg_conn *conn = NULL;
	json_t *dropped = json_array();
	size_t k, i;
	int owned = 0, rc = dropped ? 0 : actions_oom(err);

	if (rc == 0)
		rc = admin_connect(call, &conn, &owned, err);
	for (k = 0; rc == 0 && k < sizeof(infixes) / sizeof(infixes[0]); k++) {
		char prefix[128], **names = NULL;
		size_t n = 0;

		snprintf(prefix, sizeof(prefix), "%s%s", db, infixes[k]);
		if ((rc = backup_db_list_stamped(conn, prefix, &names, &n, err)) != 0)
			break;
		for (i = 0; i < n; i++) {
			if (rc == 0 && (rc = backup_db_drop(conn, names[i], err)) == 0)
				json_array_append_new(dropped, json_string(names[i]));
			free(names[i]);
		}
		free(names);
	}
	if (rc == 0) {
		*result = json_pack("{s:O,s:I}", "dropped", dropped, "count", (json_int_t)json_array_size(dropped));
		rc = *result ? 0 : actions_oom(err);
	}
	json_decref(dropped);
	actions_pg_done(conn, owned);
	return rc;
}

/* ---- load and compare ---------------------------------------------------- */

static int act_load(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	const struct st_config *cfg;
	struct backup_check c;
	struct backup_load_request lr;
	double t0 = time_monotonic();
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&lr, 0, sizeof(lr));
	if ((rc = config_of(call, &cfg, err)) != 0 ||
	    (rc = backup_resolve(cfg->backup.dir, arg_str(args, "file"), &c, err)) != 0 ||
	    (rc = backup_manifest_load(c.dir, c.name, &c.manifest, err)) != 0 ||
	    (rc = docker_for_tools(call, cfg, &lr.docker, err)) != 0)
		goto out;
	lr.cfg = cfg;
	lr.path = c.path;
	lr.manifest = &c.manifest;
	lr.database = arg_str(args, "database");
	lr.via = cfg->backup.via;
	lr.cancel = call->cancel;
	if ((rc = backup_load(&lr, err)) != 0)
		goto out;
	*result = json_pack("{s:s,s:I,s:f}", "database", lr.database, "bytes_raw",
			    (json_int_t)c.manifest.bytes_raw, "seconds", time_monotonic() - t0);
	rc = *result ? 0 : actions_oom(err);
out:
	backup_check_release(&c);
	return rc;
}

static int act_db_compare(struct engine_call *call, const json_t *args, json_t **result, struct st_error *err)
{
	const struct st_config *cfg;
	struct backup_check c;
	struct backup_manifest found;
	const char *db = arg_str(args, "database");
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&found, 0, sizeof(found));
	if ((rc = config_of(call, &cfg, err)) != 0 ||
	    (rc = backup_resolve(cfg->backup.dir, arg_str(args, "file"), &c, err)) != 0 ||
	    (rc = backup_manifest_load(c.dir, c.name, &c.manifest, err)) != 0 ||
	    (rc = backup_db_inventory(cfg, db, &found, err)) != 0 ||
	    (rc = backup_compare(&c.manifest, &found, db, err)) != 0)
		goto out;
	*result = json_pack("{s:s,s:b,s:I,s:o}", "database", db, "match", 1, "tables",
			    (json_int_t)found.ntables, "rows", counts_json(&found));
	rc = *result ? 0 : actions_oom(err);
out:
	backup_manifest_release(&found);
	backup_check_release(&c);
	return rc;
}

/* ---- the table ----------------------------------------------------------- */

static const struct engine_arg_spec verify_args[] = {
	{ "file", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "backup name in backup.dir, or a path" },
	{ "kind", ENGINE_ARG_STRING, 0, NULL, "require this kind: full, schema or data" },
	{ "database", ENGINE_ARG_STRING, 0, NULL, "require a backup of this database" },
	{ "from_database", ENGINE_ARG_STRING, 0, NULL,
	  "require a backup of this database instead (restoring one database's backup into another)" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec create_args[] = {
	{ "database", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "database to back up" },
	{ "kind", ENGINE_ARG_STRING, 0, "full", "full, schema or data" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec db_create_args[] = {
	{ "name", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "new database (must not exist)" },
	{ "like", ENGINE_ARG_STRING, 0, NULL, "take encoding and locale from this database" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec db_drop_args[] = {
	{ "name", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "database to drop" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec load_args[] = {
	{ "file", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "backup name in backup.dir, or a path" },
	{ "database", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "new, empty database to load into" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec compare_args[] = {
	{ "database", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "database to inspect" },
	{ "file", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "backup whose manifest it must match" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec swap_args[] = {
	{ "live", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "the live database's name" },
	{ "incoming", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "database that becomes live" },
	{ "outgoing", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL, "name the old live database keeps" },
	{ NULL, 0, 0, NULL, NULL },
};
static const struct engine_arg_spec cleanup_args[] = {
	{ "database", ENGINE_ARG_STRING, ENGINE_ARG_REQUIRED, NULL,
	  "live database whose NAME_pre_restore_*, NAME_restore_* and NAME_testrestore_* copies go" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct engine_action actions_backup[] = {
	{ "backup.verify", "check a backup against its manifest (size, SHA-256, decompression, trailer)",
	  verify_args, ENGINE_ACTION_READ_ONLY, act_verify },
	{ "backup.create", "take a verified backup (under the run's backup lock)", create_args, 0, act_create },
	{ "backup.db_create", "create an empty database from template0", db_create_args, 0, act_db_create },
	{ "backup.db_drop", "drop a database, ending its sessions", db_drop_args, ENGINE_ACTION_DESTRUCTIVE,
	  act_db_drop },
	{ "backup.load", "stream a verified backup into psql -v ON_ERROR_STOP=1", load_args, 0, act_load },
	{ "backup.db_compare", "compare a database's tables and row counts with a manifest", compare_args,
	  ENGINE_ACTION_READ_ONLY, act_db_compare },
	{ "backup.db_swap", "rename live -> outgoing and incoming -> live in one transaction", swap_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_db_swap },
	{ "backup.db_unswap", "undo backup.db_swap", swap_args, 0, act_db_unswap },
	{ "backup.db_cleanup", "drop the copies restores and test-restores left of a database", cleanup_args,
	  ENGINE_ACTION_DESTRUCTIVE, act_db_cleanup },
	{ NULL, NULL, NULL, 0, NULL },
};
